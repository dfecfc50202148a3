//! `select!` rules, one select at a time, re-expressing crossbeam-channel's
//! `tests/select_macro.rs` (and the scenarios of `tests/select.rs`, which
//! drives the same machinery through crossbeam's `Select` struct): the
//! scenarios, not the code. Selects racing other units (stress, pairing,
//! fairness, linearizability) are in `select_races.rs`. Each test names
//! its source test; every scenario runs from coroutines (1, 2 and 4
//! workers) and from plain OS threads (`common::each_mode`).
//!
//! crossbeam's versions sleep hundreds of milliseconds to order events;
//! here ordering comes from channels and joins, and sleeps only give a
//! unit time to park where the outcome does not depend on it. Timeouts are
//! only asserted as "returned after at least the timeout".
//!
//! The rules checked, from the macro's documentation: a ready arm is
//! taken; with several ready, one is chosen uniformly at random; a
//! disconnected channel makes its arm ready (with an error, a send arm's
//! error giving the value back); `default` runs only if nothing is ready
//! now and `default(timeout)` only if nothing became ready in time; a
//! losing, defaulted or timed-out arm consumes nothing and sends nothing;
//! every channel and value expression is evaluated exactly once.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use spindle::channel::{
    RecvError, SendError, TryRecvError, TrySendError, after, bounded, never, unbounded,
};
use spindle::select;

/// A scenario still running after this long is a hang, not a slow test.
const LIMIT: Duration = Duration::from_secs(60);

/// A timeout no correct scenario gets near: reaching it fails the test.
const FOREVER: Duration = Duration::from_secs(30);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A value that counts its drops, to see which send values a select kept,
/// delivered or dropped.
#[derive(Debug)]
struct Tracked(Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, SeqCst);
    }
}

/// crossbeam-channel tests/select_macro.rs smoke1, smoke2: the one ready
/// arm among idle ones is taken, with its value.
#[test]
fn ready_arm_is_taken() {
    common::each_mode(LIMIT, |_mode| {
        let (s1, r1) = unbounded::<usize>();
        let (s2, r2) = unbounded::<usize>();
        s1.send(1).unwrap();
        select! {
            recv(r1) -> v => assert_eq!(v, Ok(1)),
            recv(r2) -> _ => panic!(),
        }
        s2.send(2).unwrap();
        select! {
            recv(r1) -> _ => panic!(),
            recv(r2) -> v => assert_eq!(v, Ok(2)),
        }

        let idle: Vec<_> = (0..4).map(|_| unbounded::<i32>()).collect();
        let (s5, r5) = unbounded::<i32>();
        s5.send(5).unwrap();
        select! {
            recv(idle[0].1) -> _ => panic!(),
            recv(idle[1].1) -> _ => panic!(),
            recv(idle[2].1) -> _ => panic!(),
            recv(idle[3].1) -> _ => panic!(),
            recv(r5) -> v => assert_eq!(v, Ok(5)),
        }
    });
}

/// crossbeam-channel tests/select_macro.rs disconnected: a channel whose
/// senders are all gone makes its receive arm ready with `Err`, both when
/// that happens while the select waits and when it happened before; a
/// channel still holding a value delivers it first.
#[test]
fn disconnected_recv_arm_is_ready() {
    common::each_mode(LIMIT, |mode| {
        let (s1, r1) = unbounded::<i32>();
        let (s2, r2) = unbounded::<i32>();
        let (go_s, go_r) = bounded::<()>(0);
        let unit = mode.spawn(move || {
            drop(s1);
            go_r.recv().unwrap();
            s2.send(5).unwrap();
            go_r.recv().unwrap();
            // Dropping s2 now disconnects r2 under a waiting select.
        });
        select! {
            recv(r1) -> v => assert_eq!(v, Err(RecvError)),
            recv(r2) -> _ => panic!("nothing was sent on r2 yet"),
            default(FOREVER) => panic!("timed out"),
        }
        go_s.send(()).unwrap();
        assert_eq!(r2.recv(), Ok(5));
        // Disconnected before the select started: ready at once.
        select! {
            recv(r1) -> v => assert_eq!(v, Err(RecvError)),
            default => panic!("a disconnected arm must be ready"),
        }
        go_s.send(()).unwrap();
        select! {
            recv(r2) -> v => assert_eq!(v, Err(RecvError)),
            default(FOREVER) => panic!("timed out"),
        }
        unit.join().unwrap();

        // A buffered value still comes before the disconnection.
        let (s, r) = unbounded::<i32>();
        s.send(1).unwrap();
        drop(s);
        select! { recv(r) -> v => assert_eq!(v, Ok(1)) }
        select! { recv(r) -> v => assert_eq!(v, Err(RecvError)) }
    });
}

/// crossbeam-channel tests/select_macro.rs default_when_disconnected: a
/// disconnected arm is ready, so `default` (or a timeout) does not run;
/// a send arm whose receivers are gone gives its value back.
#[test]
fn disconnected_arms_beat_default() {
    common::each_mode(LIMIT, |_mode| {
        let (_, r) = unbounded::<i32>();
        select! {
            recv(r) -> v => assert_eq!(v, Err(RecvError)),
            default => panic!(),
        }
        select! {
            recv(r) -> v => assert_eq!(v, Err(RecvError)),
            default(FOREVER) => panic!(),
        }
        let (s, _) = bounded::<i32>(0);
        select! {
            send(s, 7) -> res => assert_eq!(res, Err(SendError(7))),
            default => panic!(),
        }
        select! {
            send(s, 8) -> res => assert_eq!(res, Err(SendError(8))),
            default(FOREVER) => panic!(),
        }
    });
}

/// crossbeam-channel tests/select_macro.rs default, default_only: with
/// nothing ready `default` runs at once; it does not once an arm is ready
/// (a value, or a disconnection); a select of only `default` runs it.
#[test]
fn default_arm() {
    common::each_mode(LIMIT, |_mode| {
        let (s1, r1) = unbounded::<i32>();
        let (s2, r2) = unbounded::<i32>();
        let took_default = select! {
            recv(r1) -> _ => false,
            recv(r2) -> _ => false,
            default => true,
        };
        assert!(took_default);
        drop(s1);
        select! {
            recv(r1) -> v => assert_eq!(v, Err(RecvError)),
            recv(r2) -> _ => panic!(),
            default => panic!(),
        }
        s2.send(2).unwrap();
        select! {
            recv(r2) -> v => assert_eq!(v, Ok(2)),
            default => panic!(),
        }
        select! {
            recv(r2) -> _ => panic!(),
            default => {}
        }
        assert_eq!(select! { default => 7 }, 7);
    });
}

/// crossbeam-channel tests/select_macro.rs timeout, default_only: with
/// nothing ready the timeout arm runs, no earlier than its timeout; a
/// value that arrives within the timeout wins instead.
#[test]
fn timeout_arm() {
    common::each_mode(LIMIT, |mode| {
        let (_s1, r1) = unbounded::<i32>();
        let (s2, r2) = unbounded::<i32>();
        let (go_s, go_r) = bounded::<()>(0);
        let unit = mode.spawn(move || {
            go_r.recv().unwrap();
            s2.send(2).unwrap();
        });

        let start = Instant::now();
        select! {
            recv(r1) -> _ => panic!(),
            recv(r2) -> _ => panic!("nothing was sent yet"),
            default(ms(20)) => {}
        }
        assert!(start.elapsed() >= ms(20));

        go_s.send(()).unwrap();
        select! {
            recv(r1) -> _ => panic!(),
            recv(r2) -> v => assert_eq!(v, Ok(2)),
            default(FOREVER) => panic!("timed out"),
        }
        unit.join().unwrap();

        // No arms at all: just the timeout.
        let start = Instant::now();
        select! { default(ms(20)) => {} }
        assert!(start.elapsed() >= ms(20));

        // A zero timeout behaves like `default`.
        select! {
            recv(r1) -> _ => panic!(),
            default(Duration::ZERO) => {}
        }
    });
}

/// The "timeout arm never consumes" rule, the other half of crossbeam's
/// `timeout`/`linearizable_timeout` scenarios: after a select timed out,
/// nothing of it is left in any channel. A timed-out receive does not
/// take a value sent afterwards (on a rendezvous channel: is no longer a
/// partner for `try_send`); a timed-out send leaves no value behind and
/// its value is dropped exactly once.
#[test]
fn timed_out_arms_leave_nothing_behind() {
    common::each_mode(LIMIT, |_mode| {
        for cap in [Some(0), Some(1), None] {
            let (s, r) = match cap {
                Some(c) => bounded::<i32>(c),
                None => unbounded(),
            };
            select! {
                recv(r) -> _ => panic!(),
                default(ms(5)) => {}
            }
            match cap {
                Some(0) => assert_eq!(s.try_send(1), Err(TrySendError::Full(1))),
                _ => {
                    s.send(1).unwrap();
                    assert_eq!(r.try_recv(), Ok(1));
                }
            }
        }

        // Send arms that time out: rendezvous (nobody receives) and full.
        let drops = Arc::new(AtomicUsize::new(0));
        for cap in [0, 1] {
            let (s, r) = bounded::<Tracked>(cap);
            if cap == 1 {
                s.send(Tracked(drops.clone())).unwrap();
            }
            let before = drops.load(SeqCst);
            select! {
                send(s, Tracked(drops.clone())) -> _ => panic!(),
                default(ms(5)) => {}
            }
            assert_eq!(drops.load(SeqCst), before + 1, "the value was dropped once");
            assert_eq!(r.len(), cap);
            if cap == 1 {
                drop(r.try_recv().unwrap());
            }
            assert!(matches!(r.try_recv(), Err(TryRecvError::Empty)));
        }
    });
}

/// crossbeam-channel tests/select_macro.rs preflight2, preflight3: a value
/// sent before the select is taken even though every sender is gone; then
/// the arm reports the disconnection.
#[test]
fn value_before_disconnection() {
    common::each_mode(LIMIT, |_mode| {
        let (s, r) = unbounded();
        drop(s.clone());
        s.send(()).unwrap();
        drop(s);
        select! { recv(r) -> v => assert_eq!(v, Ok(())) }
        assert_eq!(r.try_recv(), Err(TryRecvError::Disconnected));
        select! { recv(r) -> v => assert_eq!(v, Err(RecvError)) }
    });
}

/// crossbeam-channel tests/select_macro.rs duplicate_operations: arms may
/// name the same channel more than once, for receiving and sending; every
/// arm eventually wins.
#[test]
fn same_channel_in_several_arms() {
    common::each_mode(LIMIT, |_mode| {
        let (s, r) = unbounded::<i32>();
        let mut hit = [false; 4];
        let mut rounds = 0;
        while hit.iter().any(|h| !h) {
            rounds += 1;
            assert!(rounds < 10_000, "an arm never won: {hit:?}");
            select! {
                recv(r) -> v => { v.unwrap(); hit[0] = true; }
                recv(r) -> v => { v.unwrap(); hit[1] = true; }
                send(s, 0) -> res => { res.unwrap(); hit[2] = true; }
                send(s, 0) -> res => { res.unwrap(); hit[3] = true; }
            }
        }
    });
}

/// crossbeam-channel tests/select_macro.rs send_recv_same_channel: a
/// select never pairs its own send arm with its own receive arm on a
/// rendezvous channel (so it times out); on an unbounded channel only the
/// send is ready.
#[test]
fn send_and_recv_arms_on_one_channel() {
    common::each_mode(LIMIT, |_mode| {
        let (s, r) = bounded::<i32>(0);
        let start = Instant::now();
        select! {
            send(s, 0) -> _ => panic!(),
            recv(r) -> _ => panic!(),
            default(ms(20)) => {}
        }
        assert!(start.elapsed() >= ms(20));

        let (s, r) = unbounded::<i32>();
        select! {
            send(s, 0) -> res => res.unwrap(),
            recv(r) -> _ => panic!(),
            default(FOREVER) => panic!(),
        }
        assert_eq!(r.try_recv(), Ok(0));
    });
}

/// The rule for values of send arms that do not win: a losing arm's
/// value is dropped without being sent, as is every value when `default`
/// runs; a send arm that fails on a disconnected channel hands its value
/// back in the error. Each value is dropped exactly once.
#[test]
fn losing_send_values_are_dropped_once() {
    common::each_mode(LIMIT, |_mode| {
        let drops = Arc::new(AtomicUsize::new(0));
        let t = || Tracked(drops.clone());
        let (s1, r1) = bounded::<Tracked>(1);
        let (s2, r2) = bounded::<Tracked>(1);
        s2.send(t()).unwrap(); // s2 is full: only s1 can win

        select! {
            send(s1, t()) -> res => res.unwrap(),
            send(s2, t()) -> _ => panic!(),
        }
        assert_eq!(drops.load(SeqCst), 1, "the losing value, once");
        assert_eq!((r1.len(), r2.len()), (1, 1));

        // Both full now: `default` runs and both values are dropped.
        select! {
            send(s1, t()) -> _ => panic!(),
            send(s2, t()) -> _ => panic!(),
            default => assert_eq!(drops.load(SeqCst), 1, "dropped after the body"),
        }
        assert_eq!(drops.load(SeqCst), 3);

        // Disconnected: the value comes back, the body decides its fate.
        // (Buffered values live until the channel itself goes, with its
        // last handle: see the channel module's docs.)
        drop(r1);
        assert_eq!(drops.load(SeqCst), 3);
        select! {
            send(s1, t()) -> res => {
                let SendError(v) = res.unwrap_err();
                assert_eq!(drops.load(SeqCst), 3);
                drop(v);
                assert_eq!(drops.load(SeqCst), 4);
            }
        }
        drop(s1);
        assert_eq!(
            drops.load(SeqCst),
            5,
            "the buffered value went with the channel"
        );
        drop((r2, s2));
        assert_eq!(drops.load(SeqCst), 6);
    });
}

/// crossbeam-channel tests/select_macro.rs nesting: a select inside an arm
/// body of a select, four deep, each step using the previous one's
/// result.
#[test]
fn nested_selects() {
    common::each_mode(LIMIT, |_mode| {
        let (s, r) = unbounded::<i32>();
        select! {
            send(s, 0) -> res => {
                res.unwrap();
                select! {
                    recv(r) -> v => {
                        assert_eq!(v, Ok(0));
                        select! {
                            send(s, 1) -> res => {
                                res.unwrap();
                                select! { recv(r) -> v => assert_eq!(v, Ok(1)) }
                            }
                        }
                    }
                }
            }
        }
    });
}

/// crossbeam-channel tests/select_macro.rs references, deref, once_*,
/// evaluate, result_types, infer_types: channel expressions may be owned
/// temporaries or any depth of references, each evaluated exactly once;
/// the select is an expression with the winning body's value; results
/// have the documented types.
#[test]
#[allow(clippy::unnecessary_literal_unwrap)] // `Some(..).unwrap_or` is the point
fn arm_expressions() {
    common::each_mode(LIMIT, |_mode| {
        let (s, r) = unbounded::<i32>();
        select! {
            send(&&&&s, 0) -> _ => {}
            recv(&&&&r) -> _ => {}
        }
        // (crossbeam also accepts `recv(Some(&r).unwrap_or(&never()))`; this
        // macro does not extend the life of a temporary nested inside the
        // expression, so the stand-in gets a name.)
        let nil = never();
        select! {
            recv(Some(&r).unwrap_or(&nil)) -> _ => {}
            default => {}
        }

        // Each expression is evaluated once, in order.
        let evaluated = std::cell::RefCell::new(Vec::new());
        let log = |what: &'static str| evaluated.borrow_mut().push(what);
        let v = select! {
            recv({ log("recv channel"); &r }) -> _ => "recv",
            send({ log("send channel"); &s }, { log("send value"); 1 }) -> _ => "send",
            default => "default",
        };
        assert_eq!(v, "send", "only the send arm was ready");
        assert_eq!(
            *evaluated.borrow(),
            ["recv channel", "send channel", "send value"]
        );
        let v: String = select! {
            recv(r) -> v => format!("got {}", v.unwrap()),
            default => "nothing".to_string(),
        };
        assert_eq!(v, "got 1");

        // Owned temporaries, moved into the select.
        let (once_s, once_r) = unbounded::<i32>();
        let get_r = move || once_r;
        let get_s = move || once_s;
        select! { send(get_s(), 5) -> res => res.unwrap() }
        // The moved-in sender is gone with the select: 5, then the end.
        let r = get_r();
        select! { recv(r) -> v => assert_eq!(v, Ok(5)) }
        select! { recv(r) -> v => assert_eq!(v, Err(RecvError)) }

        // The documented result types.
        let (s, _r) = bounded::<i32>(0);
        let (_s, r) = bounded::<i32>(0);
        select! {
            recv(r) -> res => { let _: Result<i32, RecvError> = res; }
            send(s, 0) -> res => { let _: Result<(), SendError<i32>> = res; }
            default(Duration::ZERO) => {}
        }
    });
}

/// crossbeam-channel tests/select_macro.rs (the `after` arm idiom of the
/// `after.rs` select test): an `after` channel as a timeout arm fires no
/// earlier than its duration, and not while another arm is ready.
#[test]
fn after_as_timeout_arm() {
    common::each_mode(LIMIT, |_mode| {
        let (_s, r) = bounded::<i32>(0);
        let start = Instant::now();
        let fired = select! {
            recv(r) -> _ => panic!(),
            recv(after(ms(20))) -> t => t.unwrap(),
        };
        assert!(fired >= start + ms(20));
        assert!(start.elapsed() >= ms(20));

        let (s, r) = bounded::<i32>(1);
        s.send(1).unwrap();
        select! {
            recv(r) -> v => assert_eq!(v, Ok(1)),
            recv(after(FOREVER)) -> _ => panic!(),
        }
    });
}

/// Arms whose body is a block may be followed by a comma, as in
/// crossbeam (`recv(r) -> v => { .. },`), and arms may mix both styles.
#[test]
fn block_bodies_with_trailing_commas() {
    let (tx, rx) = spindle::channel::unbounded::<i32>();
    tx.send(1).unwrap();
    let got = spindle::select! {
        recv(rx) -> v => { v.unwrap() },
        default => { 0 },
    };
    assert_eq!(got, 1);
    let got = spindle::select! {
        recv(rx) -> _ => { 1 }
        default(std::time::Duration::from_millis(1)) => { 2 },
    };
    assert_eq!(got, 2);
}
