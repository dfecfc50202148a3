//! Go's `select` programs (`test/chan/select*.go`), re-expressed for
//! spindle's `select!`: the scenarios, not the code. Each test names its
//! source program; every scenario runs from coroutines (1, 2 and 4
//! workers) and from plain OS threads (`common::each_mode`).
//!
//! Go's nil channel (never ready) is `never()` in a receive arm, and in a
//! send arm a sender to a rendezvous channel whose receiver is alive but
//! never receives. Go's `close` is dropping every `Sender`; Go panics when
//! sending on a closed channel, where spindle's send (and a send arm)
//! returns the value in `SendError` once every `Receiver` is gone.
//! `select5.go` (a generator of select programs) is not re-expressed.

mod common;

use std::cell::Cell;
use std::time::{Duration, Instant};

use spindle::channel::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, Sender, bounded, never, unbounded,
};
use spindle::select;

/// A scenario still running after this long is a hang, not a slow test.
const LIMIT: Duration = Duration::from_secs(60);

/// How long an operation that must block is given before it is declared
/// blocked (Go's select3.go waits 0.1 s).
const BLOCK: Duration = Duration::from_millis(50);

/// Asserts that `f` returned only after at least [`BLOCK`]: it blocked.
fn assert_blocked<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let v = f();
    assert!(
        start.elapsed() >= BLOCK,
        "{what}: returned before the timeout"
    );
    v
}

/// Go test/chan/select.go: the value expressions of every send arm are
/// evaluated exactly once per select, whichever arm (or `default`) wins;
/// a winning arm disables itself (Go: sets its channel to nil) and the
/// loop ends at the first `default`.
#[test]
fn select_evaluates_each_send_value_once() {
    common::each_mode(LIMIT, |_mode| {
        let counter = Cell::new(0);
        let shift = Cell::new(0);
        let value = || {
            counter.set(counter.get() + 1);
            1u32 << shift.get()
        };
        let (nil, _keep) = bounded::<u32>(0);
        let send_all = |mut a: Option<&Sender<u32>>, mut b: Option<&Sender<u32>>| {
            let mut sent = 0;
            loop {
                select! {
                    send(a.unwrap_or(&nil), value()) -> res => { res.unwrap(); sent += 1; a = None; }
                    send(b.unwrap_or(&nil), value()) -> res => { res.unwrap(); sent += 1; b = None; }
                    default => break,
                }
                shift.set(shift.get() + 1);
            }
            sent
        };
        let (a_s, a_r) = bounded::<u32>(1);
        let (b_s, b_r) = bounded::<u32>(1);
        assert_eq!(send_all(Some(&a_s), Some(&b_s)), 2);
        let (av, bv) = (a_r.recv().unwrap(), b_r.recv().unwrap());
        assert_eq!(av | bv, 3, "one value per shift");
        assert_eq!(send_all(Some(&a_s), None), 1);
        // 3 selects of 2 sends, then 2 selects of 2 sends.
        assert_eq!(counter.get(), 10);
    });
}

/// Go test/chan/select2.go: a long stream through a select whose other
/// arm never fires. (Go also checks that the losing arm leaks no memory;
/// that is not measured here.)
#[test]
fn select_with_idle_arm_stream() {
    common::each_mode(LIMIT, |mode| {
        let n = if mode.is_coroutines() {
            100_000
        } else {
            20_000
        };
        let (s, r) = unbounded::<u32>();
        let (_dummy_s, dummy_r) = unbounded::<u32>();
        for _round in 0..2 {
            let sender = {
                let s = s.clone();
                mode.spawn(move || {
                    for i in 0..n {
                        s.send(i).unwrap();
                    }
                })
            };
            for i in 0..n {
                select! {
                    recv(r) -> v => assert_eq!(v, Ok(i)),
                    recv(dummy_r) -> v => panic!("dummy: {v:?}"),
                }
            }
            sender.join().unwrap();
        }
    });
}

/// Go test/chan/select3.go: which operations block and which never do.
/// "Blocks" is checked through the timed form of the same operation
/// (`recv_timeout`, `send_timeout`, a `default(timeout)` arm) returning
/// only after its timeout; "never blocks" by the plain form returning.
#[test]
fn select_blocking_semantics() {
    common::each_mode(LIMIT, |_mode| {
        let (nil_s, _nil_keep) = bounded::<i32>(0);
        let closed = {
            let (_, r) = bounded::<i32>(0);
            r
        };

        // Sending or receiving on a nil channel blocks.
        assert_blocked("nil send", || {
            assert_eq!(
                nil_s.send_timeout(7, BLOCK),
                Err(SendTimeoutError::Timeout(7))
            )
        });
        assert_blocked("nil recv", || {
            assert_eq!(
                never::<i32>().recv_timeout(BLOCK),
                Err(RecvTimeoutError::Timeout)
            )
        });

        // A nil channel in a select is never selected.
        select! {
            send(nil_s, 7) -> _ => unreachable!(),
            default => {}
        }
        select! {
            recv(never::<i32>()) -> _ => unreachable!(),
            default => {}
        }

        // Sending to a buffered channel with room never blocks.
        let (s, _r) = bounded::<i32>(1);
        s.send(7).unwrap();

        // Receiving from a closed channel never blocks, and keeps
        // reporting the close.
        for _ in 0..10 {
            assert_eq!(closed.recv(), Err(RecvError));
        }

        // Sending to a channel nobody can receive from fails (Go panics).
        let (s, r) = bounded::<i32>(1);
        drop(r);
        assert_eq!(s.send(7), Err(SendError(7)));

        // Receiving from a channel with nothing to receive blocks.
        let (_s, r) = bounded::<i32>(0);
        assert_blocked("recv on empty", || {
            assert_eq!(r.recv_timeout(BLOCK), Err(RecvTimeoutError::Timeout))
        });

        // A select with no operation at all blocks (here: until its
        // timeout).
        assert_blocked("empty select", || select! { default(BLOCK) => {} });

        // A select with only nil channels blocks.
        assert_blocked("nil recv select", || {
            select! {
                recv(never::<i32>()) -> _ => unreachable!(),
                default(BLOCK) => {}
            }
        });
        assert_blocked("nil send select", || {
            select! {
                send(nil_s, 7) -> _ => unreachable!(),
                default(BLOCK) => {}
            }
        });
        assert_blocked("nil send and recv select", || {
            select! {
                recv(never::<i32>()) -> _ => unreachable!(),
                send(nil_s, 7) -> _ => unreachable!(),
                default(BLOCK) => {}
            }
        });

        // A select on a channel that is not ready blocks.
        assert_blocked("not-ready select", || {
            select! {
                recv(r) -> _ => unreachable!(),
                default(BLOCK) => {}
            }
        });

        // A select with a default never blocks.
        select! { default => {} }

        // A select with a ready channel takes it, not the default.
        let (s, r) = bounded::<i32>(1);
        select! {
            send(s, 7) -> res => res.unwrap(),
            default => unreachable!(),
        }
        select! {
            recv(r) -> v => assert_eq!(v, Ok(7)),
            default => unreachable!(),
        }

        // A closed channel in a select behaves like the plain operation.
        select! { recv(closed) -> v => assert_eq!(v, Err(RecvError)) }
        let (s, r) = bounded::<i32>(0);
        drop(r);
        select! { send(s, 7) -> res => assert_eq!(res, Err(SendError(7))) }

        // A select does not pair its own send with its own receive.
        let (s, r) = bounded::<i32>(0);
        assert_blocked("self select", || {
            select! {
                send(s, 1) -> _ => unreachable!(),
                recv(r) -> _ => unreachable!(),
                default(BLOCK) => {}
            }
        });
    });
}

/// Go test/chan/select4.go: a select with one ready and one idle receive
/// takes the ready one.
#[test]
fn select_takes_the_ready_arm() {
    common::each_mode(LIMIT, |_mode| {
        let (s, r) = bounded::<i32>(1);
        let (_s1, r1) = bounded::<i32>(0);
        s.send(42).unwrap();
        select! {
            recv(r1) -> _ => panic!("BUG"),
            recv(r) -> v => assert_eq!(v, Ok(42)),
        }
    });
}

/// Go test/chan/select6.go (issue 2075): a select that lost on c1 must
/// leave c1's queue, so later sends on c1 reach the plain receivers
/// queued there, not the select that already returned.
#[test]
fn select_loser_leaves_the_queue() {
    common::each_mode(LIMIT, |mode| {
        let (c1_s, c1_r) = bounded::<bool>(0);
        let (c2_s, c2_r) = bounded::<bool>(0);
        let (c3_s, c3_r) = bounded::<bool>(0);
        let first = {
            let c1_r = c1_r.clone();
            mode.spawn(move || c1_r.recv().unwrap())
        };
        let selector = mode.spawn(move || {
            select! {
                recv(c1_r) -> _ => panic!("dummy"),
                recv(c2_r) -> _ => c3_s.send(true).unwrap(),
            }
            c1_r.recv().unwrap()
        });
        let sender = mode.spawn(move || c2_s.send(true).unwrap());
        assert_eq!(c3_r.recv(), Ok(true));
        c1_s.send(true).unwrap();
        c1_s.send(true).unwrap();
        assert!(first.join().unwrap());
        assert!(selector.join().unwrap());
        sender.join().unwrap();
    });
}

/// Go test/chan/select7.go: every pairing of three ways to receive (plain,
/// one-arm select, two-arm select with an idle channel) with three ways
/// to send (the same three) on a rendezvous channel, the receiver
/// discarding the value.
#[test]
fn select_send_recv_forms() {
    fn recv1(r: spindle::channel::Receiver<i32>) {
        r.recv().unwrap();
    }
    fn recv2(r: spindle::channel::Receiver<i32>) {
        select! { recv(r) -> v => { v.unwrap(); } }
    }
    fn recv3(r: spindle::channel::Receiver<i32>) {
        let (_idle_s, idle_r) = bounded::<i32>(0);
        select! {
            recv(r) -> v => { v.unwrap(); }
            recv(idle_r) -> _ => unreachable!(),
        }
    }
    fn send1(s: &Sender<i32>) {
        s.send(1).unwrap();
    }
    fn send2(s: &Sender<i32>) {
        select! { send(s, 1) -> res => res.unwrap() }
    }
    fn send3(s: &Sender<i32>) {
        let (idle_s, _idle_r) = bounded::<i32>(0);
        select! {
            send(s, 1) -> res => res.unwrap(),
            send(idle_s, 1) -> _ => unreachable!(),
        }
    }
    type Recv = fn(spindle::channel::Receiver<i32>);
    type Send = fn(&Sender<i32>);

    common::each_mode(LIMIT, |mode| {
        for recv in [recv1 as Recv, recv2, recv3] {
            for send in [send1 as Send, send2, send3] {
                let (s, r) = bounded::<i32>(0);
                let receiver = mode.spawn(move || recv(r));
                spindle::yield_now();
                send(&s);
                receiver.join().unwrap();
            }
        }
    });
}

/// Go test/chan/select8.go: `break` inside a select arm, for selects of
/// one, two and three cases with and without `default`. In Rust, `break`
/// and `continue` in an arm body belong to the caller's loop (the macro
/// must not wrap the bodies in a loop of its own), and `return` returns
/// from the caller's function.
#[test]
fn select_arms_control_the_callers_loop() {
    fn first_value(r: &spindle::channel::Receiver<i32>) -> i32 {
        loop {
            select! {
                recv(r) -> v => return v.unwrap(),
                default => spindle::yield_now(),
            }
        }
    }

    common::each_mode(LIMIT, |mode| {
        let (s, r) = bounded::<i32>(0);
        let producer = {
            let s = s.clone();
            mode.spawn(move || while s.send(5).is_ok() {})
        };

        // One case: `continue` and `break` act on the `for`.
        let mut fell_through = 0;
        for i in 0..10 {
            select! {
                recv(r) -> v => {
                    assert_eq!(v, Ok(5));
                    if i % 2 == 0 {
                        continue;
                    }
                    if i == 5 {
                        break;
                    }
                }
            }
            fell_through += 1;
        }
        assert_eq!(fell_through, 2, "i = 1 and 3 reach the end of the body");

        // Only a default.
        let mut n = 0;
        loop {
            n += 1;
            select! { default => if n == 3 { break } else { continue } }
        }
        assert_eq!(n, 3);

        // A receive and a default; labelled `continue` and `break` reach
        // the outer of two loops.
        let mut received = 0;
        'outer: loop {
            for _ in 0..2 {
                select! {
                    recv(r) -> v => {
                        assert_eq!(v, Ok(5));
                        received += 1;
                        if received == 3 {
                            break 'outer;
                        }
                        continue 'outer;
                    }
                    default => spindle::yield_now(),
                }
            }
        }
        assert_eq!(received, 3);

        // A receive, a send that is never ready (nobody receives from `s`
        // but this select itself) and a default.
        for _ in 0..3 {
            select! {
                recv(r) -> v => { assert_eq!(v, Ok(5)); break; }
                send(s, 10) -> _ => panic!("unreachable"),
                default => spindle::yield_now(),
            }
        }

        assert_eq!(first_value(&r), 5);
        drop(r);
        producer.join().unwrap();
    });
}
