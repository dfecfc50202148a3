//! crossbeam-channel's many-unit per-flavor scenarios (`tests/zero.rs`,
//! `tests/array.rs`, `tests/list.rs`: spsc, mpmc, stress_oneshot,
//! stress_iter, stress_timeout_two_threads, drops, channel_through_channel),
//! re-expressed for spindle's channels: the scenarios, not the code. The
//! single operations are in `chan_crossbeam.rs`; million-message stress in
//! `chan_stress.rs`. Each test names its source; every scenario runs from
//! coroutines (1, 2 and 4 workers) and from plain OS threads
//! (`common::each_mode`), over every flavor: rendezvous (`bounded(0)`,
//! crossbeam's "zero"), buffered (`bounded(n)`, "array") and `unbounded`
//! ("list").

mod common;

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use common::Mode;
use spindle::channel::{
    Receiver, RecvError, RecvTimeoutError, SendTimeoutError, Sender, bounded, unbounded,
};

/// A scenario still running after this long is a hang, not a slow test.
const LIMIT: Duration = Duration::from_secs(60);

/// crossbeam's three channel implementations, as spindle spells them.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Flavor {
    /// `bounded(0)`: every value passes hand to hand.
    Zero,
    /// `bounded(n)`, n > 0.
    Array(usize),
    /// `unbounded()`.
    List,
}

use Flavor::{Array, List, Zero};

const FLAVORS: [Flavor; 4] = [Zero, Array(1), Array(16), List];

fn chan<T>(f: Flavor) -> (Sender<T>, Receiver<T>) {
    match f {
        Zero => bounded(0),
        Array(n) => bounded(n),
        List => unbounded(),
    }
}

/// How many values `f` buffers (`usize::MAX`: no limit).
fn room(f: Flavor) -> usize {
    match f {
        Zero => 0,
        Array(n) => n,
        List => usize::MAX,
    }
}

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

/// crossbeam-channel tests/{zero,array,list}.rs spsc: one sender, one
/// receiver, a long sequence in order, then the disconnection.
#[test]
fn spsc() {
    common::each_mode(LIMIT, |mode| {
        let count = per_mode(mode, 100_000, 20_000);
        for f in FLAVORS {
            let (s, r) = chan::<usize>(f);
            let receiver = mode.spawn(move || {
                for i in 0..count {
                    assert_eq!(r.recv(), Ok(i));
                }
                assert_eq!(r.recv(), Err(RecvError));
            });
            for i in 0..count {
                s.send(i).unwrap();
            }
            drop(s);
            receiver.join().unwrap();
        }
    });
}

/// crossbeam-channel tests/{zero,array,list}.rs mpmc: four senders each
/// send 0..COUNT, four receivers each take COUNT values; every value is
/// received exactly four times.
#[test]
fn mpmc() {
    const UNITS: usize = 4;
    common::each_mode(LIMIT, |mode| {
        let count = per_mode(mode, 25_000, 5_000);
        for f in FLAVORS {
            let (s, r) = chan::<usize>(f);
            let seen: Arc<Vec<AtomicUsize>> =
                Arc::new((0..count).map(|_| AtomicUsize::new(0)).collect());
            let mut units = Vec::new();
            for _ in 0..UNITS {
                let (r, seen) = (r.clone(), seen.clone());
                units.push(mode.spawn(move || {
                    for _ in 0..count {
                        seen[r.recv().unwrap()].fetch_add(1, SeqCst);
                    }
                }));
                let s = s.clone();
                units.push(mode.spawn(move || {
                    for i in 0..count {
                        s.send(i).unwrap();
                    }
                }));
            }
            for u in units {
                u.join().unwrap();
            }
            assert!(seen.iter().all(|c| c.load(SeqCst) == UNITS), "{f:?}");
        }
    });
}

/// crossbeam-channel tests/{zero,array,list}.rs stress_oneshot: a fresh
/// channel per round, one value passed between two fresh units.
#[test]
fn stress_oneshot() {
    common::each_mode(LIMIT, |mode| {
        let rounds = per_mode(mode, 10_000, 500);
        for f in FLAVORS {
            for i in 0..rounds {
                let (s, r) = chan::<usize>(f);
                let receiver = mode.spawn(move || r.recv().unwrap());
                let sender = mode.spawn(move || s.send(i).unwrap());
                assert_eq!(receiver.join().unwrap(), i);
                sender.join().unwrap();
            }
        }
    });
}

/// crossbeam-channel tests/{zero,array,list}.rs stress_iter: one unit
/// keeps asking (`try_send` on a request channel) and drains responses
/// with `try_iter`; the other answers each request through `iter`, until
/// enough responses arrived and the asker hangs up.
#[test]
fn stress_iter() {
    common::each_mode(LIMIT, |mode| {
        let count = per_mode(mode, 1_000, 500);
        for f in FLAVORS {
            let (request_s, request_r) = chan::<()>(f);
            let (response_s, response_r) = chan::<usize>(f);
            let asker = mode.spawn(move || {
                let mut total = 0;
                loop {
                    for x in response_r.try_iter() {
                        total += x;
                        if total == count {
                            return total;
                        }
                    }
                    let _ = request_s.try_send(());
                    spindle::yield_now();
                }
            });
            for _ in request_r.iter() {
                if response_s.send(1).is_err() {
                    break;
                }
            }
            assert_eq!(asker.join().unwrap(), count);
        }
    });
}

/// crossbeam-channel tests/{zero,array,list}.rs stress_timeout_two_threads:
/// a sender and a receiver both retry with short timeouts, pausing every
/// other value; every value arrives once, in order.
#[test]
fn stress_timeout_two_units() {
    const COUNT: usize = 100;
    common::each_mode(LIMIT, |mode| {
        for f in FLAVORS {
            let (s, r) = chan::<usize>(f);
            let sender = mode.spawn(move || {
                for i in 0..COUNT {
                    if i % 2 == 0 {
                        spindle::sleep(ms(1));
                    }
                    let mut v = i;
                    loop {
                        match s.send_timeout(v, Duration::from_micros(200)) {
                            Ok(()) => break,
                            Err(SendTimeoutError::Timeout(back)) => v = back,
                            Err(e) => panic!("{e:?}"),
                        }
                    }
                }
            });
            for i in 0..COUNT {
                if i % 2 == 0 {
                    spindle::sleep(ms(1));
                }
                loop {
                    match r.recv_timeout(Duration::from_micros(200)) {
                        Ok(x) => {
                            assert_eq!(x, i, "{f:?}");
                            break;
                        }
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(e) => panic!("{e:?}"),
                    }
                }
            }
            sender.join().unwrap();
        }
    });
}

/// crossbeam-channel tests/{zero,array,list}.rs drops: every value is
/// dropped exactly once, whether it was received (and dropped by the
/// receiver) or still buffered when the channel went away.
#[test]
fn drops() {
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    #[derive(Debug)]
    struct DropCounter;
    impl Drop for DropCounter {
        fn drop(&mut self) {
            DROPS.fetch_add(1, SeqCst);
        }
    }

    // Scenarios in different modes run one after another, but the test
    // harness may run other tests at once: DROPS is this test's own.
    common::each_mode(LIMIT, |mode| {
        // A fixed pseudo-random sequence (no dependency, reproducible).
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rand = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for f in FLAVORS {
            for _ in 0..per_mode(mode, 20, 5) {
                let steps = rand(2_000);
                let extra = if f == Zero {
                    0
                } else {
                    rand(room(f).min(50) + 1)
                };
                DROPS.store(0, SeqCst);
                let (s, r) = chan::<DropCounter>(f);
                let receiver = {
                    let r = r.clone();
                    mode.spawn(move || {
                        for _ in 0..steps {
                            drop(r.recv().unwrap());
                        }
                    })
                };
                for _ in 0..steps {
                    s.send(DropCounter).unwrap();
                }
                receiver.join().unwrap();
                for _ in 0..extra {
                    s.send(DropCounter).unwrap();
                }
                assert_eq!(DROPS.load(SeqCst), steps, "{f:?}");
                drop((s, r));
                assert_eq!(DROPS.load(SeqCst), steps + extra, "{f:?}");
            }
        }
    });
}

/// crossbeam-channel tests/{zero,array,list}.rs channel_through_channel: a
/// chain of channels, each (boxed as `dyn Any`) sent through the previous
/// one.
#[test]
fn channel_through_channel() {
    type T = Box<dyn Any + Send>;
    common::each_mode(LIMIT, |mode| {
        let count = per_mode(mode, 1_000, 200);
        for f in FLAVORS {
            let (s, r) = chan::<T>(f);
            let sender = mode.spawn(move || {
                let mut s = s;
                for _ in 0..count {
                    let (new_s, new_r) = chan::<T>(f);
                    s.send(Box::new(Some(new_r))).unwrap();
                    s = new_s;
                }
            });
            let mut r = r;
            for _ in 0..count {
                r = r
                    .recv()
                    .unwrap()
                    .downcast_mut::<Option<Receiver<T>>>()
                    .unwrap()
                    .take()
                    .unwrap();
            }
            sender.join().unwrap();
            assert!(r.recv().is_err());
        }
    });
}
