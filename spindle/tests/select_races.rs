//! `select!` racing other units: stress, pairing, fairness,
//! linearizability, timeouts racing hand-offs. Re-expresses
//! crossbeam-channel's `tests/select_macro.rs` (and `tests/select.rs`,
//! the same scenarios through crossbeam's `Select` struct) and
//! `tests/zero.rs`: the scenarios, not the code. The rules of a single
//! select are in `select.rs`. Each test names its source test; every
//! scenario runs from coroutines (1, 2 and 4 workers) and from plain OS
//! threads (`common::each_mode`).
//!
//! crossbeam's versions sleep hundreds of milliseconds to order events;
//! here ordering comes from channels and joins, and sleeps only give a
//! unit time to park where the outcome does not depend on it. Fairness is
//! checked with wide bounds (each arm at least half, or a fiftieth, of an
//! even share over 10,000 rounds), which a uniform choice misses with
//! negligible probability.

mod common;

use std::any::Any;
use std::time::Duration;

use common::Mode;
use spindle::channel::{Receiver, RecvError, TryRecvError, bounded, unbounded};
use spindle::select;

/// A scenario still running after this long is a hang, not a slow test.
const LIMIT: Duration = Duration::from_secs(60);

/// A timeout no correct scenario gets near: reaching it fails the test.
const FOREVER: Duration = Duration::from_secs(30);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `coroutines` when units are coroutines, `threads` for OS threads.
fn per_mode(mode: Mode, coroutines: usize, threads: usize) -> usize {
    if mode.is_coroutines() {
        coroutines
    } else {
        threads
    }
}

/// The same rule under concurrency: a consumer polls with a short-timeout
/// select while a producer sends a sequence, pausing now and then; every
/// value must arrive exactly once and in order, however the timeouts
/// interleave with the hand-offs (crossbeam-channel tests/select_macro.rs
/// stress_timeout_two_threads, for rendezvous, one-slot and unbounded
/// channels).
#[test]
fn timeouts_racing_hand_offs_lose_nothing() {
    common::each_mode(LIMIT, |mode| {
        let n = per_mode(mode, 2_000, 500);
        for cap in [Some(0), Some(1), None] {
            let (s, r) = match cap {
                Some(c) => bounded::<usize>(c),
                None => unbounded(),
            };
            let producer = mode.spawn(move || {
                for i in 0..n {
                    if i % 100 == 0 {
                        spindle::sleep(ms(1));
                    }
                    loop {
                        select! {
                            send(s, i) -> res => { res.unwrap(); break; }
                            default(Duration::from_micros(50)) => {}
                        }
                    }
                }
            });
            let mut next = 0;
            while next < n {
                select! {
                    recv(r) -> v => { assert_eq!(v, Ok(next), "cap {cap:?}"); next += 1; }
                    default(Duration::from_micros(50)) => {}
                }
            }
            producer.join().unwrap();
            assert_eq!(r.try_recv(), Err(TryRecvError::Disconnected));
        }
    });
}

/// crossbeam-channel tests/select_macro.rs unblocks: a select blocked on
/// rendezvous channels completes when a partner arrives, for receive arms
/// and for send arms.
#[test]
fn blocked_select_is_completed_by_a_partner() {
    common::each_mode(LIMIT, |mode| {
        let (s1, r1) = bounded::<i32>(0);
        let (s2, r2) = bounded::<i32>(0);
        let unit = {
            let s2 = s2.clone();
            mode.spawn(move || {
                spindle::sleep(ms(5));
                s2.send(2).unwrap();
            })
        };
        select! {
            recv(r1) -> _ => panic!(),
            recv(r2) -> v => assert_eq!(v, Ok(2)),
            default(FOREVER) => panic!("timed out"),
        }
        unit.join().unwrap();

        let unit = mode.spawn(move || {
            spindle::sleep(ms(5));
            assert_eq!(r1.recv(), Ok(1));
        });
        select! {
            send(s1, 1) -> res => res.unwrap(),
            send(s2, 2) -> _ => panic!(),
            default(FOREVER) => panic!("timed out"),
        }
        unit.join().unwrap();
    });
}

/// crossbeam-channel tests/select_macro.rs both_ready: a select with a
/// receive arm and a send arm on two rendezvous channels, run twice
/// against a partner that sends on one and then receives on the other:
/// each select completes one of them, together both.
#[test]
fn send_and_recv_arms_both_complete() {
    common::each_mode(LIMIT, |mode| {
        let (s1, r1) = bounded::<i32>(0);
        let (s2, r2) = bounded::<i32>(0);
        let unit = mode.spawn(move || {
            spindle::sleep(ms(5));
            s1.send(1).unwrap();
            assert_eq!(r2.recv(), Ok(2));
        });
        let mut done = [false; 2];
        for _ in 0..2 {
            select! {
                recv(r1) -> v => { assert_eq!(v, Ok(1)); done[0] = true; }
                send(s2, 2) -> res => { res.unwrap(); done[1] = true; }
            }
        }
        assert_eq!(done, [true, true]);
        unit.join().unwrap();
    });
}

/// crossbeam-channel tests/select_macro.rs stress_recv: one unit feeds an
/// unbounded and a bounded(5) channel alternately, waiting for an ack
/// after each value; a select over both must see every value, in order.
#[test]
fn stress_recv() {
    common::each_mode(LIMIT, |mode| {
        let count = per_mode(mode, 10_000, 2_000);
        let (s1, r1) = unbounded();
        let (s2, r2) = bounded(5);
        let (ack_s, ack_r) = bounded::<()>(100);
        let unit = mode.spawn(move || {
            for i in 0..count {
                s1.send(i).unwrap();
                ack_r.recv().unwrap();
                s2.send(i).unwrap();
                ack_r.recv().unwrap();
            }
        });
        for i in 0..count {
            for _ in 0..2 {
                select! {
                    recv(r1) -> v => assert_eq!(v, Ok(i)),
                    recv(r2) -> v => assert_eq!(v, Ok(i)),
                }
                ack_s.send(()).unwrap();
            }
        }
        unit.join().unwrap();
    });
}

/// crossbeam-channel tests/select_macro.rs stress_send: a select over
/// sends on two rendezvous channels, against a partner that receives from
/// each in turn.
#[test]
fn stress_send() {
    common::each_mode(LIMIT, |mode| {
        let count = per_mode(mode, 10_000, 2_000);
        let (s1, r1) = bounded(0);
        let (s2, r2) = bounded(0);
        let (ack_s, ack_r) = bounded::<()>(100);
        let unit = mode.spawn(move || {
            for i in 0..count {
                assert_eq!(r1.recv(), Ok(i));
                assert_eq!(r2.recv(), Ok(i));
                ack_r.recv().unwrap();
            }
        });
        for i in 0..count {
            for _ in 0..2 {
                select! {
                    send(s1, i) -> res => res.unwrap(),
                    send(s2, i) -> res => res.unwrap(),
                }
            }
            ack_s.send(()).unwrap();
        }
        unit.join().unwrap();
    });
}

/// crossbeam-channel tests/select_macro.rs stress_mixed: a select over a
/// receive and a send on two rendezvous channels, against a partner that
/// sends on one and receives from the other.
#[test]
fn stress_mixed() {
    common::each_mode(LIMIT, |mode| {
        let count = per_mode(mode, 10_000, 2_000);
        let (s1, r1) = bounded(0);
        let (s2, r2) = bounded(0);
        let (ack_s, ack_r) = bounded::<()>(100);
        let unit = mode.spawn(move || {
            for i in 0..count {
                s1.send(i).unwrap();
                assert_eq!(r2.recv(), Ok(i));
                ack_r.recv().unwrap();
            }
        });
        for i in 0..count {
            for _ in 0..2 {
                select! {
                    recv(r1) -> v => assert_eq!(v, Ok(i)),
                    send(s2, i) -> res => res.unwrap(),
                }
            }
            ack_s.send(()).unwrap();
        }
        unit.join().unwrap();
    });
}

/// crossbeam-channel tests/select_macro.rs matching,
/// matching_with_leftover: many units each select over a receive and a
/// send on one rendezvous channel; they pair up among themselves (never a
/// unit with itself), and an extra plain send pairs with the odd one out.
#[test]
fn selects_pair_among_themselves() {
    common::each_mode(LIMIT, |mode| {
        for (units, extra) in [(44, false), (55, true)] {
            let (s, r) = bounded::<usize>(0);
            let handles: Vec<_> = (0..units)
                .map(|i| {
                    let (s, r) = (s.clone(), r.clone());
                    mode.spawn(move || {
                        select! {
                            recv(r) -> v => assert_ne!(v, Ok(i), "received its own value"),
                            send(s, i) -> res => res.unwrap(),
                        }
                    })
                })
                .collect();
            if extra {
                s.send(usize::MAX).unwrap();
            }
            for h in handles {
                h.join().unwrap();
            }
            assert_eq!(r.try_recv(), Err(TryRecvError::Empty));
        }
    });
}

/// crossbeam-channel tests/select_macro.rs channel_through_channel: a
/// chain of channels, each sent (boxed as `dyn Any`) through the previous
/// one by a select, for capacities 0, 1 and 2.
#[test]
fn channel_through_channel() {
    type T = Box<dyn Any + Send>;
    common::each_mode(LIMIT, |mode| {
        let count = per_mode(mode, 1_000, 200);
        for cap in 0..3 {
            let (s, r) = bounded::<T>(cap);
            let sender = mode.spawn(move || {
                let mut s = s;
                for _ in 0..count {
                    let (new_s, new_r) = bounded::<T>(cap);
                    let boxed: T = Box::new(Some(new_r));
                    select! { send(s, boxed) -> res => assert!(res.is_ok()) }
                    s = new_s;
                }
            });
            let mut r = r;
            for _ in 0..count {
                r = select! {
                    recv(r) -> v => v
                        .unwrap()
                        .downcast_mut::<Option<Receiver<T>>>()
                        .unwrap()
                        .take()
                        .unwrap()
                };
            }
            sender.join().unwrap();
            assert_eq!(r.recv().err(), Some(RecvError));
        }
    });
}

/// crossbeam-channel tests/select_macro.rs linearizable_default,
/// linearizable_timeout: once c1 holds a value, one of c1 and c2 holds a
/// value at every instant (the partner fills c2 before it may drain c1),
/// so a non-blocking select over both (or one with a zero timeout) must
/// never report "nothing ready".
#[test]
fn selects_are_linearizable() {
    common::each_mode(LIMIT, |mode| {
        let count = per_mode(mode, 10_000, 2_000);
        for (step, zero_timeout) in [(0, false), (1, false), (0, true), (1, true)] {
            let (start_s, start_r) = bounded::<()>(0);
            let (end_s, end_r) = bounded::<()>(0);
            let ((s1, r1), (s2, r2)) = if step == 0 {
                (bounded::<i32>(1), bounded::<i32>(1))
            } else {
                (unbounded(), unbounded())
            };
            let (r1c, r2c) = (r1.clone(), r2.clone());
            let unit = mode.spawn(move || {
                for _ in 0..count {
                    start_s.send(()).unwrap();
                    s1.send(1).unwrap();
                    let got = if zero_timeout {
                        select! {
                            recv(r1c) -> v => v.is_ok(),
                            recv(r2c) -> v => v.is_ok(),
                            default(Duration::ZERO) => false,
                        }
                    } else {
                        select! {
                            recv(r1c) -> v => v.is_ok(),
                            recv(r2c) -> v => v.is_ok(),
                            default => false,
                        }
                    };
                    assert!(got, "neither channel was ready");
                    end_s.send(()).unwrap();
                    let _ = r2c.try_recv();
                }
            });
            for _ in 0..count {
                start_r.recv().unwrap();
                s2.send(1).unwrap();
                let _ = r1.try_recv();
                end_r.recv().unwrap();
            }
            unit.join().unwrap();
        }
    });
}

/// crossbeam-channel tests/select_macro.rs fairness1, fairness_recv: with
/// a bounded, an unbounded and a one-slot channel (refilled after every
/// round) all ready, each arm wins a fair share (at least half of an equal
/// split).
#[test]
fn fairness_between_ready_receives() {
    const COUNT: usize = 10_000;
    common::each_mode(LIMIT, |_mode| {
        let (s1, r1) = bounded::<()>(COUNT);
        let (s2, r2) = unbounded::<()>();
        let (s3, r3) = bounded::<()>(1);
        for _ in 0..COUNT {
            s1.send(()).unwrap();
            s2.send(()).unwrap();
        }
        let mut hits = [0usize; 3];
        for _ in 0..COUNT {
            let _ = s3.try_send(());
            select! {
                recv(r1) -> _ => hits[0] += 1,
                recv(r2) -> _ => hits[1] += 1,
                recv(r3) -> _ => hits[2] += 1,
                default => panic!("all three arms are ready"),
            }
        }
        assert!(hits.iter().all(|&h| h >= COUNT / 3 / 2), "{hits:?}");
    });
}

/// crossbeam-channel tests/select_macro.rs fairness_send: two always-ready
/// send arms each win at least a quarter of the time.
#[test]
fn fairness_between_ready_sends() {
    const COUNT: usize = 10_000;
    common::each_mode(LIMIT, |_mode| {
        let (s1, _r1) = bounded::<()>(COUNT);
        let (s2, _r2) = unbounded::<()>();
        let mut hits = [0usize; 2];
        for _ in 0..COUNT {
            select! {
                send(s1, ()) -> _ => hits[0] += 1,
                send(s2, ()) -> _ => hits[1] += 1,
            }
        }
        assert!(hits.iter().all(|&h| h >= COUNT / 4), "{hits:?}");
    });
}

/// crossbeam-channel tests/select_macro.rs fairness2: a sender selects over
/// an unbounded, a one-slot and a rendezvous channel, offering the first
/// two only while they are empty (otherwise the arm is switched off with
/// a never-ready stand-in); a receiver selects over all three. Each
/// channel carries a share of the traffic.
#[test]
fn fairness_across_flavors() {
    common::each_mode(LIMIT, |mode| {
        let count = per_mode(mode, 10_000, 2_000);
        let (s1, r1) = unbounded::<()>();
        let (s2, r2) = bounded::<()>(1);
        let (s3, r3) = bounded::<()>(0);
        let unit = mode.spawn(move || {
            let (nil, _keep) = bounded::<()>(0);
            for _ in 0..count {
                let a = if s1.is_empty() { &s1 } else { &nil };
                let b = if s2.is_empty() { &s2 } else { &nil };
                select! {
                    send(a, ()) -> res => res.unwrap(),
                    send(b, ()) -> res => res.unwrap(),
                    send(s3, ()) -> res => res.unwrap(),
                }
            }
            // Kept alive until joined: a disconnected channel would make
            // its (empty) arm ready on the receiving side.
            (s1, s2, s3)
        });
        let mut hits = [0usize; 3];
        for _ in 0..count {
            select! {
                recv(r1) -> v => { v.unwrap(); hits[0] += 1; }
                recv(r2) -> v => { v.unwrap(); hits[1] += 1; }
                recv(r3) -> v => { v.unwrap(); hits[2] += 1; }
            }
        }
        unit.join().unwrap();
        assert!(hits.iter().all(|&h| h >= count / 3 / 50), "{hits:?}");
    });
}

/// crossbeam-channel tests/zero.rs fairness_duplicates: five arms on one
/// rendezvous channel, receiving on one side and sending on the other;
/// every arm wins a fair share on both sides.
#[test]
fn fairness_between_duplicate_arms() {
    common::each_mode(LIMIT, |mode| {
        let count = per_mode(mode, 10_000, 5_000);
        let (s, r) = bounded::<()>(0);
        let receiver = mode.spawn(move || {
            let mut hits = [0usize; 5];
            for _ in 0..count {
                select! {
                    recv(r) -> _ => hits[0] += 1,
                    recv(r) -> _ => hits[1] += 1,
                    recv(r) -> _ => hits[2] += 1,
                    recv(r) -> _ => hits[3] += 1,
                    recv(r) -> _ => hits[4] += 1,
                }
            }
            hits
        });
        let mut hits = [0usize; 5];
        for _ in 0..count {
            select! {
                send(s, ()) -> _ => hits[0] += 1,
                send(s, ()) -> _ => hits[1] += 1,
                send(s, ()) -> _ => hits[2] += 1,
                send(s, ()) -> _ => hits[3] += 1,
                send(s, ()) -> _ => hits[4] += 1,
            }
        }
        let theirs = receiver.join().unwrap();
        for h in [hits, theirs] {
            assert!(h.iter().all(|&x| x >= count / 5 / 2), "{h:?}");
        }
    });
}

/// crossbeam-channel tests/zero.rs recv_in_send: a send arm's value
/// expression may itself block (here: receive from the same rendezvous
/// channel); the select starts only once it is evaluated.
#[test]
fn send_value_expression_may_block() {
    common::each_mode(LIMIT, |mode| {
        let (s, r) = bounded::<()>(0);
        let receiver = {
            let r = r.clone();
            mode.spawn(move || {
                spindle::sleep(ms(2));
                r.recv()
            })
        };
        let sender = {
            let s = s.clone();
            mode.spawn(move || {
                spindle::sleep(ms(5));
                s.send(()).unwrap();
            })
        };
        select! { send(s, r.recv().unwrap()) -> res => res.unwrap() }
        assert_eq!(receiver.join().unwrap(), Ok(()));
        sender.join().unwrap();
    });
}

/// Cross-checks that a value sent by a plain `send` while a select waits
/// on a bounded channel goes to the select (crossbeam-channel
/// tests/select_macro.rs cloning2: a sender clone dropped under a waiting
/// select does not disconnect it).
#[test]
fn dropping_a_sender_clone_does_not_disconnect() {
    common::each_mode(LIMIT, |mode| {
        let (s1, r1) = unbounded::<()>();
        let (s2, r2) = unbounded::<()>();
        let unit = mode.spawn(move || {
            select! {
                recv(r1) -> _ => panic!("r1 is still connected"),
                recv(r2) -> v => v.unwrap(),
            }
        });
        spindle::sleep(ms(5));
        drop(s1.clone());
        s2.send(()).unwrap();
        unit.join().unwrap();
        drop(s1);
    });
}
