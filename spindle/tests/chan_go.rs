//! Go's runtime channel tests (`src/runtime/chan_test.go`), re-expressed
//! for spindle's channels: the scenarios, not the code. Each test names
//! the Go test it comes from; every scenario runs from coroutines (1, 2
//! and 4 workers) and from plain OS threads (`common::each_mode`).
//!
//! Go's vocabulary maps onto spindle's as follows:
//!
//! | Go | spindle |
//! | --- | --- |
//! | `make(chan T, n)` | `bounded(n)` (0: rendezvous) |
//! | `close(c)` | drop every `Sender` |
//! | `v, ok := <-c` with `ok == false` | `Err(RecvError)` / `Disconnected` |
//! | `select { ... default: }` | `select! { ..., default => ... }` |
//! | a nil channel (never ready) | `never()` for a receive arm; a sender to a rendezvous channel nobody receives from for a send arm |
//! | `go f()` | `mode.spawn(f)` (a coroutine or an OS thread) |
//!
//! Tests that only make sense for Go's garbage-collected stacks
//! (`TestShrinkStackDuringBlockedSend`, `TestSelectStackAdjust`) and
//! `TestChanSendInterface` (interface values) are not re-expressed.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use common::Mode;
use spindle::channel::{Receiver, RecvError, Sender, TryRecvError, TrySendError, bounded, never};
use spindle::select;

/// A scenario still running after this long is a hang, not a slow test.
const LIMIT: Duration = Duration::from_secs(60);

/// The capacities TestChan walks: Go tries every capacity below 200 (20 in
/// `-short` mode); every small one and a few large ones cover the same
/// code paths (rendezvous, a one-slot buffer, buffers that never fill).
fn capacities() -> impl Iterator<Item = usize> {
    (0..20).chain([50, 100, 199])
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `iterations` for coroutines, fewer for OS threads (each costs a
/// `clone(2)` and megabytes of stack).
fn per_mode(mode: Mode, coroutines: usize, threads: usize) -> usize {
    if mode.is_coroutines() {
        coroutines
    } else {
        threads
    }
}

/// Go's nil channel in a send arm: a sender whose receiver is kept alive
/// but never receives, so the arm is never ready (a dropped receiver
/// would make the arm ready with an error instead).
fn nil_sender<T>() -> (Sender<T>, Receiver<T>) {
    bounded(0)
}

/// Picks `live` while it is wanted, else the never-ready stand-in, like
/// Go code that sets a channel variable to nil to disable its case.
fn pick<'a, C>(wanted: bool, live: &'a C, nil: &'a C) -> &'a C {
    if wanted { live } else { nil }
}

/// Go src/runtime/chan_test.go TestChan, part 1: receiving from an empty
/// channel blocks (both receive forms), and a non-blocking receive
/// (`select` with `default`, `try_recv`) does not.
#[test]
fn chan_recv_from_empty_blocks() {
    common::each_mode(LIMIT, |mode| {
        for cap in capacities() {
            let (s, r) = bounded::<i32>(cap);
            let returned = Arc::new(AtomicUsize::new(0));
            let receivers: Vec<_> = (0..2)
                .map(|_| {
                    let (r, returned) = (r.clone(), returned.clone());
                    mode.spawn(move || {
                        let v = r.recv();
                        returned.fetch_add(1, SeqCst);
                        v
                    })
                })
                .collect();
            spindle::sleep(ms(1));
            // Nothing was sent: neither receiver can have returned.
            assert_eq!(
                returned.load(SeqCst),
                0,
                "cap {cap}: recv on empty returned"
            );
            assert_eq!(r.try_recv(), Err(TryRecvError::Empty), "cap {cap}");
            select! {
                recv(r) -> v => panic!("cap {cap}: select received {v:?} from an empty channel"),
                default => {}
            }
            s.send(0).unwrap();
            s.send(0).unwrap();
            for u in receivers {
                assert_eq!(u.join().unwrap(), Ok(0), "cap {cap}");
            }
        }
    });
}

/// Go src/runtime/chan_test.go TestChan, part 2: sending to a full
/// channel blocks until a receive makes room, and a non-blocking send
/// (`select` with `default`, `try_send`) does not, nor does it leave its
/// value behind.
#[test]
fn chan_send_to_full_blocks() {
    common::each_mode(LIMIT, |mode| {
        for cap in capacities() {
            let (s, r) = bounded::<i32>(cap);
            for i in 0..cap {
                s.send(i as i32).unwrap();
            }
            let sent = Arc::new(AtomicBool::new(false));
            let sender = {
                let (s, sent) = (s.clone(), sent.clone());
                mode.spawn(move || {
                    s.send(-1).unwrap();
                    sent.store(true, SeqCst);
                })
            };
            spindle::sleep(ms(1));
            assert!(
                !sent.load(SeqCst),
                "cap {cap}: send to a full channel returned"
            );
            assert_eq!(s.try_send(-2), Err(TrySendError::Full(-2)), "cap {cap}");
            select! {
                send(s, -3) -> res => panic!("cap {cap}: select sent to a full channel: {res:?}"),
                default => {}
            }
            // The oldest value comes out first; the parked sender's value
            // (not -2 or -3) takes the freed slot.
            let first = r.recv().unwrap();
            assert_eq!(first, if cap == 0 { -1 } else { 0 }, "cap {cap}");
            sender.join().unwrap();
            assert!(sent.load(SeqCst));
            let rest: Vec<i32> = r.try_iter().collect();
            let want: Vec<i32> = if cap == 0 {
                vec![]
            } else {
                (1..cap as i32).chain([-1]).collect()
            };
            assert_eq!(rest, want, "cap {cap}");
        }
    });
}

/// Go src/runtime/chan_test.go TestChan, part 3: a closed channel still
/// delivers what it buffered, in order, and then reports the close to
/// every form of receive.
#[test]
fn chan_closed_drains_then_disconnects() {
    common::each_mode(LIMIT, |_mode| {
        for cap in capacities() {
            let (s, r) = bounded::<usize>(cap);
            for i in 0..cap {
                s.send(i).unwrap();
            }
            drop(s);
            for i in 0..cap {
                assert_eq!(r.recv(), Ok(i), "cap {cap}");
            }
            assert_eq!(r.recv(), Err(RecvError), "cap {cap}");
            assert_eq!(r.try_recv(), Err(TryRecvError::Disconnected), "cap {cap}");
            select! {
                recv(r) -> v => assert_eq!(v, Err(RecvError)),
                default => panic!("cap {cap}: a closed channel must make its arm ready"),
            }
        }
    });
}

/// Go src/runtime/chan_test.go TestChan, part 4: closing a channel wakes
/// the receivers blocked on it, with the "closed" result.
#[test]
fn chan_close_unblocks_recv() {
    common::each_mode(LIMIT, |mode| {
        for cap in capacities() {
            let (s, r) = bounded::<i32>(cap);
            let receivers: Vec<_> = (0..2)
                .map(|_| {
                    let r = r.clone();
                    mode.spawn(move || r.recv())
                })
                .collect();
            spindle::sleep(ms(1));
            drop(s);
            for u in receivers {
                assert_eq!(u.join().unwrap(), Err(RecvError), "cap {cap}");
            }
        }
    });
}

/// Go src/runtime/chan_test.go TestChan, part 5: 100 values from one
/// sender arrive uncorrupted and in order, through both receive forms
/// (Go's `<-c` and `v, ok := <-c`; here `recv` and a one-arm `select!`).
#[test]
fn chan_fifo_single_producer() {
    common::each_mode(LIMIT, |mode| {
        for cap in capacities() {
            let (s, r) = bounded::<i32>(cap);
            for form in 0..2 {
                let producer = {
                    let s = s.clone();
                    mode.spawn(move || {
                        for i in 0..100 {
                            s.send(i).unwrap();
                        }
                    })
                };
                for i in 0..100 {
                    let v = if form == 0 {
                        r.recv()
                    } else {
                        select! { recv(r) -> v => v }
                    };
                    assert_eq!(v, Ok(i), "cap {cap}, form {form}");
                }
                producer.join().unwrap();
            }
        }
    });
}

/// Go src/runtime/chan_test.go TestChan, part 6: 4 producers send 0..1000
/// each, 4 consumers receive 1000 each; every value arrives exactly 4
/// times.
#[test]
fn chan_many_producers_many_consumers() {
    const P: usize = 4;
    const L: usize = 1000;
    common::each_mode(LIMIT, |mode| {
        for cap in capacities() {
            let (s, r) = bounded::<usize>(cap);
            let producers: Vec<_> = (0..P)
                .map(|_| {
                    let s = s.clone();
                    mode.spawn(move || {
                        for i in 0..L {
                            s.send(i).unwrap();
                        }
                    })
                })
                .collect();
            let consumers: Vec<_> = (0..P)
                .map(|_| {
                    let r = r.clone();
                    mode.spawn(move || {
                        let mut seen = HashMap::new();
                        for _ in 0..L {
                            *seen.entry(r.recv().unwrap()).or_insert(0) += 1;
                        }
                        seen
                    })
                })
                .collect();
            let mut total = vec![0usize; L];
            for c in consumers {
                for (v, n) in c.join().unwrap() {
                    total[v] += n;
                }
            }
            for p in producers {
                p.join().unwrap();
            }
            assert!(total.iter().all(|&n| n == P), "cap {cap}: {total:?}");
            assert_eq!(r.try_recv(), Err(TryRecvError::Empty));
        }
    });
}

/// Go src/runtime/chan_test.go TestChan, part 7: `len` and `cap` of an
/// empty and of a filled channel.
#[test]
fn chan_len_and_capacity() {
    common::each_mode(LIMIT, |_mode| {
        for cap in capacities() {
            let (s, r) = bounded::<usize>(cap);
            assert_eq!((s.len(), s.capacity()), (0, Some(cap)), "cap {cap}");
            assert_eq!((r.len(), r.capacity()), (0, Some(cap)), "cap {cap}");
            assert!(s.is_empty() && r.is_empty());
            for i in 0..cap {
                s.send(i).unwrap();
            }
            assert_eq!((s.len(), r.len()), (cap, cap), "cap {cap}");
            // A rendezvous channel has no room at all: always full.
            assert!(s.is_full() && r.is_full(), "cap {cap}");
            assert_eq!(s.is_empty(), cap == 0, "cap {cap}");
        }
    });
}

/// Go src/runtime/chan_test.go TestNonblockRecvRace: a channel holding one
/// value is closed while another unit does a non-blocking receive; the
/// receive must never take `default` (the channel is either holding the
/// value or closed, and both are "ready").
#[test]
fn nonblock_recv_race() {
    common::each_mode(LIMIT, |mode| {
        for _ in 0..per_mode(mode, 10_000, 1_000) {
            let (s, r) = bounded::<i32>(1);
            s.send(1).unwrap();
            let racer = {
                let r = r.clone();
                mode.spawn(move || {
                    select! {
                        recv(r) -> _ => {}
                        default => panic!("channel is not ready"),
                    }
                })
            };
            drop(s);
            let _ = r.recv();
            racer.join().unwrap();
        }
    });
}

/// Go src/runtime/chan_test.go TestNonblockSelectRace: a select must act
/// on the channels' state at one moment, not over a smeared window. From
/// the moment the racer starts, at least one of c1, c2 is always ready
/// (c2 is filled before c1 may be drained), so the racer's non-blocking
/// select must always receive.
#[test]
fn nonblock_select_race() {
    common::each_mode(LIMIT, |mode| {
        let (done_s, done_r) = bounded::<bool>(1);
        for _ in 0..per_mode(mode, 10_000, 1_000) {
            let (s1, r1) = bounded::<i32>(1);
            let (s2, r2) = bounded::<i32>(1);
            s1.send(1).unwrap();
            let racer = {
                let (r1, r2, done) = (r1.clone(), r2.clone(), done_s.clone());
                mode.spawn(move || {
                    let got = select! {
                        recv(r1) -> _ => true,
                        recv(r2) -> _ => true,
                        default => false,
                    };
                    done.send(got).unwrap();
                })
            };
            s2.send(1).unwrap();
            select! {
                recv(r1) -> _ => {}
                default => {}
            }
            assert!(done_r.recv().unwrap(), "no channel was ready");
            racer.join().unwrap();
        }
    });
}

/// Go src/runtime/chan_test.go TestNonblockSelectRace2: as
/// `nonblock_select_race`, but c2 becomes ready by being closed.
#[test]
fn nonblock_select_race_close() {
    common::each_mode(LIMIT, |mode| {
        let (done_s, done_r) = bounded::<bool>(1);
        for _ in 0..per_mode(mode, 10_000, 1_000) {
            let (s1, r1) = bounded::<i32>(1);
            let (s2, r2) = bounded::<i32>(0);
            s1.send(1).unwrap();
            let racer = {
                let (r1, r2, done) = (r1.clone(), r2.clone(), done_s.clone());
                mode.spawn(move || {
                    let got = select! {
                        recv(r1) -> _ => true,
                        recv(r2) -> _ => true,
                        default => false,
                    };
                    done.send(got).unwrap();
                })
            };
            drop(s2);
            select! {
                recv(r1) -> _ => {}
                default => {}
            }
            assert!(done_r.recv().unwrap(), "no channel was ready");
            racer.join().unwrap();
        }
    });
}

/// Go src/runtime/chan_test.go TestSelfSelect: two units select over a
/// send and a receive on the same channel (arms in both orders); this
/// must neither crash nor deadlock, and on a rendezvous channel a select
/// must never receive its own value.
#[test]
fn self_select() {
    common::each_mode(LIMIT, |mode| {
        for cap in [0, 10] {
            let (s, r) = bounded::<usize>(cap);
            let units: Vec<_> = (0..2)
                .map(|p| {
                    let (s, r) = (s.clone(), r.clone());
                    mode.spawn(move || {
                        let own = |v: Result<usize, RecvError>| {
                            assert!(!(cap == 0 && v == Ok(p)), "self receive");
                        };
                        for i in 0..1000 {
                            if p == 0 || i % 2 == 0 {
                                select! {
                                    send(s, p) -> res => res.unwrap(),
                                    recv(r) -> v => own(v),
                                }
                            } else {
                                select! {
                                    recv(r) -> v => own(v),
                                    send(s, p) -> res => res.unwrap(),
                                }
                            }
                        }
                    })
                })
                .collect();
            for u in units {
                u.join().unwrap();
            }
        }
    });
}

/// Go src/runtime/chan_test.go TestSelectStress: on four channels
/// (capacities 0, 0, 2, 3), four units send N values each, four receive
/// N each, one sends N on every channel through a single select and one
/// receives N from every channel through a single select, dropping each
/// channel from its select once done with it. Everything interleaves
/// chaotically and nothing may deadlock; every unit finishes its exact
/// count.
#[test]
fn select_stress() {
    common::each_mode(LIMIT, |mode| {
        let n = per_mode(mode, 20_000, 5_000);
        let chans: Vec<(Sender<usize>, Receiver<usize>)> =
            [0, 0, 2, 3].into_iter().map(bounded).collect();
        let mut units = Vec::new();
        for (s, r) in &chans {
            let s = s.clone();
            units.push(mode.spawn(move || {
                for i in 0..n {
                    s.send(i).unwrap();
                }
            }));
            let r = r.clone();
            units.push(mode.spawn(move || {
                for _ in 0..n {
                    r.recv().unwrap();
                }
            }));
        }
        let senders: Vec<Sender<usize>> = chans.iter().map(|c| c.0.clone()).collect();
        units.push(mode.spawn(move || {
            let (nil, _keep) = nil_sender::<usize>();
            let mut sent = [0usize; 4];
            for _ in 0..4 * n {
                let k = select! {
                    send(pick(sent[3] < n, &senders[3], &nil), 0) -> res => { res.unwrap(); 3 }
                    send(pick(sent[2] < n, &senders[2], &nil), 0) -> res => { res.unwrap(); 2 }
                    send(pick(sent[0] < n, &senders[0], &nil), 0) -> res => { res.unwrap(); 0 }
                    send(pick(sent[1] < n, &senders[1], &nil), 0) -> res => { res.unwrap(); 1 }
                };
                sent[k] += 1;
            }
            assert_eq!(sent, [n; 4]);
        }));
        let receivers: Vec<Receiver<usize>> = chans.iter().map(|c| c.1.clone()).collect();
        units.push(mode.spawn(move || {
            let nil = never::<usize>();
            let mut got = [0usize; 4];
            for _ in 0..4 * n {
                let k = select! {
                    recv(pick(got[0] < n, &receivers[0], &nil)) -> v => { v.unwrap(); 0 }
                    recv(pick(got[1] < n, &receivers[1], &nil)) -> v => { v.unwrap(); 1 }
                    recv(pick(got[2] < n, &receivers[2], &nil)) -> v => { v.unwrap(); 2 }
                    recv(pick(got[3] < n, &receivers[3], &nil)) -> v => { v.unwrap(); 3 }
                };
                got[k] += 1;
            }
            assert_eq!(got, [n; 4]);
        }));
        for u in units {
            u.join().unwrap();
        }
        for (_, r) in &chans {
            assert_eq!(r.try_recv(), Err(TryRecvError::Empty));
        }
    });
}

/// Go src/runtime/chan_test.go TestSelectFairness: a unit selects over two
/// never-ready channels and two always-ready ones (filled with 1s and
/// 2s); over 10,000 trials the ready ones must each win a fair share. Go
/// allows 10 sigma; here each side must win at least 30% (a fair coin
/// falls below that with probability far under 1e-80).
#[test]
fn select_fairness() {
    const TRIALS: usize = 10_000;
    common::each_mode(LIMIT, |mode| {
        let (s1, r1) = bounded::<u8>(TRIALS + 1);
        let (s2, r2) = bounded::<u8>(TRIALS + 1);
        for _ in 0..TRIALS + 1 {
            s1.send(1).unwrap();
            s2.send(2).unwrap();
        }
        let (_s3, r3) = bounded::<u8>(0);
        let (_s4, r4) = bounded::<u8>(0);
        let (out_s, out_r) = bounded::<u8>(0);
        let (done_s, done_r) = bounded::<u8>(0);
        let chooser = mode.spawn(move || {
            loop {
                let b = select! {
                    recv(r3) -> m => m.unwrap(),
                    recv(r4) -> m => m.unwrap(),
                    recv(r1) -> m => m.unwrap(),
                    recv(r2) -> m => m.unwrap(),
                };
                select! {
                    send(out_s, b) -> res => res.unwrap(),
                    recv(done_r) -> _ => return,
                }
            }
        });
        let mut counts = [0usize; 2];
        for _ in 0..TRIALS {
            match out_r.recv().unwrap() {
                b @ (1 | 2) => counts[usize::from(b - 1)] += 1,
                b => panic!("unexpected value {b} on channel"),
            }
        }
        // Closing `done` makes the chooser's second select return.
        drop(done_s);
        chooser.join().unwrap();
        assert!(
            counts.iter().all(|&c| c * 10 >= TRIALS * 3),
            "unfair select: in {TRIALS} trials the counts were {counts:?}"
        );
    });
}

/// Go src/runtime/chan_test.go TestPseudoRandomSend: a select with two
/// send arms on the same channel (values 1 and 0) must pick between them
/// pseudo-randomly, both when the receiver is waiting (rendezvous) and
/// when the buffer has room.
#[test]
fn pseudo_random_send() {
    const N: usize = 100;
    common::each_mode(LIMIT, |mode| {
        for cap in [0, N] {
            let (s, r) = bounded::<usize>(cap);
            let receiver = mode.spawn(move || {
                (0..N)
                    .map(|_| {
                        spindle::yield_now();
                        r.recv().unwrap()
                    })
                    .collect::<Vec<_>>()
            });
            for _ in 0..N {
                select! {
                    send(s, 1) -> res => res.unwrap(),
                    send(s, 0) -> res => res.unwrap(),
                }
            }
            let got = receiver.join().unwrap();
            let ones = got.iter().sum::<usize>();
            let zeros = N - ones;
            assert!(
                zeros > N / 10 && ones > N / 10,
                "want pseudo-random, got {zeros} zeros and {ones} ones (cap {cap})"
            );
        }
    });
}

/// Go src/runtime/chan_test.go TestMultiConsumer: 23 workers range over a
/// work channel (some yield on particular values, to disturb the order)
/// and forward every value to a result channel; a feeder sends the work
/// and closes it; the results channel closes when the last worker ends.
/// The count and the sum of the results must match exactly.
#[test]
fn multi_consumer() {
    const NWORK: usize = 23;
    const PN: [usize; 10] = [2, 3, 7, 11, 13, 17, 19, 23, 27, 31];
    common::each_mode(LIMIT, |mode| {
        let niter = per_mode(mode, 271_828, 50_000);
        let (q_s, q_r) = bounded::<usize>(NWORK * 3);
        let (r_s, r_r) = bounded::<usize>(NWORK * 3);
        let workers: Vec<_> = (0..NWORK)
            .map(|w| {
                let (q_r, r_s) = (q_r.clone(), r_s.clone());
                mode.spawn(move || {
                    for v in &q_r {
                        // Mess with the FIFO-ish nature of the loop.
                        if PN[w % PN.len()] == v {
                            spindle::yield_now();
                        }
                        r_s.send(v).unwrap();
                    }
                })
            })
            .collect();
        // Only the workers hold result senders now: the results channel
        // closes exactly when the last worker is done.
        drop((q_r, r_s));
        let feeder = mode.spawn(move || {
            let mut expect = 0;
            for i in 0..niter {
                let v = PN[i % PN.len()];
                expect += v;
                q_s.send(v).unwrap();
            }
            expect
        });
        let (mut n, mut sum) = (0, 0);
        for v in r_r {
            n += 1;
            sum += v;
        }
        let expect = feeder.join().unwrap();
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!((n, sum), (niter, expect));
    });
}

/// Go src/runtime/chan_test.go TestSelectDuplicateChannel: a select may
/// wait on the same channel twice. Unit A waits on `c` (twice) and `d`;
/// unit B then waits on `c`. Waking A through `d` must remove both of A's
/// entries from `c`'s queue, so the later send on `c` reaches B, not the
/// long-gone A.
#[test]
fn select_duplicate_channel() {
    common::each_mode(LIMIT, |mode| {
        let (c_s, c_r) = bounded::<i32>(0);
        let (d_s, d_r) = bounded::<i32>(0);
        let (e_s, e_r) = bounded::<i32>(0);
        let a = {
            let c_r = c_r.clone();
            mode.spawn(move || {
                let from = select! {
                    recv(c_r) -> _ => 'c',
                    recv(c_r) -> _ => 'c',
                    recv(d_r) -> v => { assert_eq!(v, Ok(7)); 'd' }
                };
                e_s.send(9).unwrap();
                from
            })
        };
        spindle::sleep(ms(1)); // let A queue on c first
        let b = mode.spawn(move || c_r.recv());
        spindle::sleep(ms(1)); // let B queue on c behind A
        d_s.send(7).unwrap(); // wakes A, which leaves c's queue
        assert_eq!(e_r.recv(), Ok(9));
        c_s.send(8).unwrap(); // must reach B
        assert_eq!(a.join().unwrap(), 'd');
        assert_eq!(b.join().unwrap(), Ok(8));
    });
}
