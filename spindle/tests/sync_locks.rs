//! `Mutex`, `RwLock` and `Condvar`, each scenario run from coroutines
//! (runtimes with 1, 2 and 4 workers) and from plain OS threads (see
//! `common::each_mode`), unless it is about coroutines only.
//!
//! Scenarios are re-expressed (not copied) from:
//! - Go `src/sync/mutex_test.go` (`TestMutex`/`HammerMutex`,
//!   `TestMutexFairness`);
//! - Go `src/sync/rwmutex_test.go` (`TestParallelReaders`,
//!   `TestRWMutex`/`HammerRWMutex`);
//! - Go `src/sync/cond_test.go` (`TestCondSignal`,
//!   `TestCondSignalGenerations`, `TestCondBroadcast`,
//!   `TestCondSignalStealing`);
//! - Rust `library/std/tests/sync/condvar.rs` (`wait_timeout`,
//!   `wait_while` and `wait_timeout_while`).
//!
//! Timing is never asserted on, except that a timed-out call returned only
//! after its timeout. Where a scenario must know that a party is parked
//! before it goes on, it polls the primitive's `Debug` output, which shows
//! how many callers are queued: a window into the state that keeps the
//! scenarios deterministic without sleeping.

mod common;

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use common::{Mode, each_mode, run_in};
use spindle::WaitReason;
use spindle::runtime::CoroutineState;
use spindle::sync::{Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A hang fails the test instead of stalling CI.
const LIMIT: Duration = Duration::from_secs(60);

/// A timeout short enough to keep the suite fast.
const SHORT: Duration = Duration::from_millis(20);

/// The coroutine modes only (for scenarios about coroutines).
const COROUTINE_MODES: [Mode; 3] = [
    Mode::Coroutines { workers: 1 },
    Mode::Coroutines { workers: 2 },
    Mode::Coroutines { workers: 4 },
];

/// Lets other units run: yields the coroutine, or naps the thread (16
/// spinning threads would starve the ones they wait for on a small
/// machine).
fn pause(mode: Mode) {
    if mode.is_coroutines() {
        spindle::yield_now();
    } else {
        std::thread::sleep(Duration::from_micros(20));
    }
}

/// Pauses until `cond` holds.
fn wait_for(mode: Mode, mut cond: impl FnMut() -> bool) {
    while !cond() {
        pause(mode);
    }
}

/// The value of the `field: N` entry in `x`'s `Debug` output (how many
/// callers are queued).
fn debug_field(x: &impl Debug, field: &str) -> usize {
    let s = format!("{x:?}");
    let key = format!("{field}: ");
    let at = s
        .find(&key)
        .unwrap_or_else(|| panic!("no `{field}` in {s}"))
        + key.len();
    s[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("`{field}` is not a number in {s}"))
}

/// Pauses until `x` shows `n` in its `field` (see [`debug_field`]).
fn wait_queued(mode: Mode, x: &impl Debug, field: &str, n: usize) {
    wait_for(mode, || debug_field(x, field) == n);
}

// ---------------------------------------------------------------- Mutex

// Go src/sync/mutex_test.go TestMutex (HammerMutex): many units increment
// a non-atomic counter under the lock, now and then with a failed or
// successful try_lock, and now and then parking inside the critical
// section; the count is exact.
#[test]
fn mutex_mutual_exclusion_stress() {
    each_mode(LIMIT, |mode| {
        let units = mode.scale(100);
        const ROUNDS: u64 = 1_000;
        let counter = Arc::new(Mutex::new(0u64));
        let handles: Vec<_> = (0..units)
            .map(|_| {
                let counter = counter.clone();
                mode.spawn(move || {
                    for i in 0..ROUNDS {
                        if i % 3 == 0
                            && let Some(mut g) = counter.try_lock()
                        {
                            *g += 1;
                            continue;
                        }
                        let mut g = counter.lock();
                        let seen = *g;
                        if i % 250 == 0 {
                            // Others park behind us meanwhile.
                            pause(mode);
                        }
                        *g = seen + 1;
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(*counter.lock(), units as u64 * ROUNDS);
        assert_eq!(debug_field(&*counter, "waiters"), 0);
    });
}

// Go src/sync/mutex_test.go TestMutex (the TryLock checks): try_lock fails
// while another unit holds the lock, and succeeds once it is released.
#[test]
fn mutex_try_lock() {
    each_mode(LIMIT, |mode| {
        let m = Arc::new(Mutex::new(0));
        let held = m.lock();
        let m2 = m.clone();
        let failed = mode.spawn(move || m2.try_lock().is_none()).join().unwrap();
        assert!(failed, "try_lock succeeded while the lock was held");
        drop(held);
        let m2 = m.clone();
        let got = mode
            .spawn(move || m2.try_lock().map(|mut g| *g += 1).is_some())
            .join()
            .unwrap();
        assert!(got, "try_lock failed on a free mutex");
        assert_eq!(*m.lock(), 1);
    });
}

// lock_timeout gives up no earlier than its timeout while the lock stays
// held, and takes a free lock at once.
#[test]
fn mutex_lock_timeout_expires() {
    each_mode(LIMIT, |mode| {
        let m = Arc::new(Mutex::new(()));
        assert!(m.lock_timeout(SHORT).is_some(), "a free lock is taken");
        let held = m.lock();
        let m2 = m.clone();
        let waited = mode
            .spawn(move || {
                let start = Instant::now();
                assert!(m2.lock_timeout(SHORT).is_none());
                start.elapsed()
            })
            .join()
            .unwrap();
        assert!(waited >= SHORT, "gave up after {waited:?}");
        drop(held);
        assert_eq!(debug_field(&*m, "waiters"), 0, "the timed-out waiter left");
        assert!(m.try_lock().is_some());
    });
}

// A timeout racing an unlock (and, with a zero starvation threshold, a
// direct hand-off) never loses the lock: each unit that got a guard counts
// one, and once all are done the mutex is free and nobody is queued.
#[test]
fn mutex_lock_timeout_never_loses_ownership() {
    each_mode(LIMIT, |mode| {
        for threshold in [None, Some(Duration::ZERO)] {
            let m = Arc::new(match threshold {
                None => Mutex::new(0u64),
                Some(t) => Mutex::with_starvation_threshold(0u64, t),
            });
            let rounds = if mode.is_coroutines() { 200 } else { 50 };
            let got = Arc::new(AtomicUsize::new(0));
            for round in 0..rounds {
                let held = m.lock();
                let waiters: Vec<_> = (0..3u64)
                    .map(|k| {
                        let (m, got) = (m.clone(), got.clone());
                        mode.spawn(move || {
                            let timeout = Duration::from_micros(20 * ((round + k) % 5));
                            if let Some(mut g) = m.lock_timeout(timeout) {
                                *g += 1;
                                got.fetch_add(1, SeqCst);
                            }
                        })
                    })
                    .collect();
                // Release at about the time the waiters give up.
                for _ in 0..round % 4 {
                    pause(mode);
                }
                drop(held);
                for w in waiters {
                    w.join().unwrap();
                }
                assert!(m.try_lock().is_some(), "round {round}: the lock was lost");
            }
            assert_eq!(*m.lock(), got.load(SeqCst) as u64);
            assert_eq!(debug_field(&*m, "waiters"), 0);
        }
    });
}

// A coroutine parked on a mutex parks only itself: with one worker, other
// coroutines still run while it waits.
#[test]
fn mutex_blocked_coroutine_does_not_block_worker() {
    run_in(Mode::Coroutines { workers: 1 }, LIMIT, |_| {
        let m = Arc::new(Mutex::new(0));
        let held = m.lock();
        let m2 = m.clone();
        let blocked = spindle::spawn(move || *m2.lock() += 1);
        wait_queued(Mode::Coroutines { workers: 1 }, &*m, "waiters", 1);
        // The only worker is free to run this one to its end.
        let ran = spindle::spawn(|| 7).join().unwrap();
        assert_eq!(ran, 7);
        assert!(!blocked.is_finished());
        drop(held);
        blocked.join().unwrap();
        assert_eq!(*m.lock(), 1);
    });
}

// Go src/sync/mutex_test.go TestMutexFairness: one unit keeps the lock
// almost all the time (it pauses while holding it, then relocks at once);
// another wants it ten times and must get it every time. Starvation mode
// is what guarantees that; without it the holder, always running when the
// lock is released, would barge ahead forever. The holder gives up after
// far more rounds than starvation mode needs (each round lasts at least
// 100 µs, the threshold is 1 ms): that is the bound asserted.
#[test]
fn mutex_fairness() {
    each_mode(LIMIT, |mode| {
        const GIVE_UP: usize = 10 * 1_000;
        let m = Arc::new(Mutex::new(()));
        let done = Arc::new(AtomicBool::new(false));
        let holder = {
            let (m, done) = (m.clone(), done.clone());
            mode.spawn(move || {
                let mut rounds = 0;
                while !done.load(SeqCst) && rounds < GIVE_UP {
                    let _g = m.lock();
                    spindle::sleep(Duration::from_micros(100));
                    rounds += 1;
                }
                rounds
            })
        };
        let wanter = {
            let (m, done) = (m.clone(), done.clone());
            mode.spawn(move || {
                for _ in 0..10 {
                    spindle::sleep(Duration::from_micros(100));
                    drop(m.lock());
                }
                done.store(true, SeqCst);
            })
        };
        wanter.join().unwrap();
        let rounds = holder.join().unwrap();
        assert!(rounds < GIVE_UP, "the other unit starved: {rounds} rounds");
    });
}

// With the starvation threshold at zero every queued waiter is served by
// direct hand-off: the unlock leaves the lock locked for the first waiter
// (so even try_lock right after it fails), waiters are served in arrival
// order, and a newcomer queues behind them instead of barging.
#[test]
fn mutex_starvation_hands_off_in_fifo_order() {
    each_mode(LIMIT, |mode| {
        let m = Arc::new(Mutex::with_starvation_threshold(Vec::new(), Duration::ZERO));
        let release_first = Arc::new(AtomicBool::new(false));
        let held = m.lock();
        let mut units = Vec::new();
        for i in 0..3 {
            let (m2, release_first) = (m.clone(), release_first.clone());
            units.push(mode.spawn(move || {
                let mut g = m2.lock();
                g.push(i);
                if i == 0 {
                    // Keep the handed-over lock until the owner has tried
                    // to take it back.
                    wait_for(mode, || release_first.load(SeqCst));
                }
            }));
            wait_queued(mode, &*m, "waiters", i + 1);
        }
        drop(held);
        assert!(
            m.try_lock().is_none(),
            "the unlock released the lock instead of handing it over"
        );
        // A newcomer, while the first waiter owns the lock.
        let m2 = m.clone();
        units.push(mode.spawn(move || m2.lock().push(3)));
        wait_queued(mode, &*m, "waiters", 3);
        release_first.store(true, SeqCst);
        for u in units {
            u.join().unwrap();
        }
        assert_eq!(*m.lock(), [0, 1, 2, 3]);
    });
}

// A coroutine blocked on a mutex shows in a snapshot as blocked on that
// mutex, with the coroutine that holds it as owner.
#[test]
fn mutex_snapshot_names_the_owner() {
    for mode in COROUTINE_MODES {
        run_in(mode, LIMIT, move |mode| {
            let m = Arc::new(Mutex::new(()));
            let held = m.lock();
            let me = spindle::current().id();
            let m2 = m.clone();
            let waiter = spindle::spawn(move || drop(m2.lock()));
            let id = waiter.id();
            let resource = Arc::as_ptr(&m) as usize;
            wait_for(mode, || {
                spindle::runtime::snapshot()
                    .coroutines
                    .iter()
                    .any(|c| c.id == id && c.state == CoroutineState::Blocked(WaitReason::Mutex))
            });
            let snap = spindle::runtime::snapshot();
            let info = snap.coroutines.iter().find(|c| c.id == id).unwrap();
            let on = info.blocked_on.expect("blocked_on is recorded");
            assert_eq!(on.resource, resource);
            assert_eq!(on.owner, Some(me));
            drop(held);
            waiter.join().unwrap();
        });
    }
}

// A guard may be held across yield_now (and other parks): the coroutine
// stays on its worker, and the others wait for it. Two workers, so that
// the waiters really run in parallel with the holder.
#[test]
fn mutex_guard_held_across_yield() {
    fn assert_sync<T: Sync>() {}
    assert_sync::<MutexGuard<'static, u32>>();
    run_in(Mode::Coroutines { workers: 2 }, LIMIT, |_| {
        let m = Arc::new(Mutex::new(0u64));
        let handles: Vec<_> = (0..20)
            .map(|_| {
                let m = m.clone();
                spindle::spawn(move || {
                    for _ in 0..50 {
                        let mut g = m.lock();
                        let seen = *g;
                        spindle::yield_now();
                        spindle::yield_now();
                        *g = seen + 1;
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(*m.lock(), 20 * 50);
    });
}

// The std-shaped conveniences.
#[test]
fn mutex_conveniences() {
    let mut m: Mutex<Vec<u8>> = Mutex::default();
    m.get_mut().push(1);
    assert_eq!(format!("{m:?}"), "Mutex { data: [1], waiters: 0, .. }");
    {
        let g = m.lock();
        assert_eq!(format!("{m:?}"), "Mutex { data: <locked>, waiters: 0, .. }");
        assert_eq!(format!("{g:?}"), "[1]");
    }
    assert_eq!(m.into_inner(), [1]);
    let m = Mutex::from(5);
    assert_eq!(*m.lock(), 5);
}

// Runtime shutdown cancels a coroutine parked in lock, RwLock::write and
// Condvar::wait: each unwinds and leaves its queue, and the primitives
// work on afterwards.
#[test]
fn cancelled_waiters_leave_their_queues() {
    let m = Arc::new(Mutex::new(0));
    let rw = Arc::new(RwLock::new(0));
    let cv = Arc::new((Mutex::new(false), Condvar::new()));
    let (held, read) = (m.lock(), rw.read());
    let rt = spindle::Runtime::builder().workers(1).build().unwrap();
    let m2 = m.clone();
    let a = rt.spawn(move || *m2.lock() += 1);
    let rw2 = rw.clone();
    let b = rt.spawn(move || *rw2.write() += 1);
    let cv2 = cv.clone();
    let c = rt.spawn(move || drop(cv2.1.wait_while(cv2.0.lock(), |set| !*set)));
    wait_queued(Mode::Threads, &*m, "waiters", 1);
    wait_queued(Mode::Threads, &*rw, "writers_waiting", 1);
    wait_queued(Mode::Threads, &cv.1, "waiters", 1);
    drop(rt);
    for h in [a, b, c] {
        let err = h.join().unwrap_err();
        assert!(err.is::<spindle::Cancelled>(), "unwound with Cancelled");
    }
    assert_eq!(debug_field(&*m, "waiters"), 0);
    assert_eq!(debug_field(&*rw, "writers_waiting"), 0);
    assert_eq!(debug_field(&cv.1, "waiters"), 0);
    drop((held, read));
    *m.lock() += 1;
    *rw.write() += 1;
    assert!(!*cv.0.lock(), "the cancelled wait left the mutex unlocked");
    assert_eq!((*m.lock(), *rw.read()), (1, 1));
}

// ---------------------------------------------------------------- RwLock

// Go src/sync/rwmutex_test.go TestParallelReaders: readers hold the read
// lock at the same time (each waits, holding it, until all are inside).
#[test]
fn rwlock_parallel_readers() {
    each_mode(LIMIT, |mode| {
        let n = mode.scale(8);
        let lock = Arc::new(RwLock::new(()));
        let inside = Arc::new(AtomicUsize::new(0));
        let readers: Vec<_> = (0..n)
            .map(|_| {
                let (lock, inside) = (lock.clone(), inside.clone());
                mode.spawn(move || {
                    let _r = lock.read();
                    inside.fetch_add(1, SeqCst);
                    wait_for(mode, || inside.load(SeqCst) == n);
                })
            })
            .collect();
        for r in readers {
            r.join().unwrap();
        }
    });
}

// Go src/sync/rwmutex_test.go TestRWMutex (HammerRWMutex): readers and
// writers hammer one lock; an activity counter proves that a writer is
// always alone and readers never meet a writer; the counts are exact.
#[test]
fn rwlock_hammer() {
    each_mode(LIMIT, |mode| {
        const WRITER: usize = 10_000;
        let (writers, readers) = (mode.scale(10).min(4), mode.scale(40).min(12));
        let rounds = if mode.is_coroutines() { 500 } else { 200 };
        let lock = Arc::new(RwLock::new(0u64));
        let activity = Arc::new(AtomicUsize::new(0));
        let mut units = Vec::new();
        for w in 0..writers {
            let (lock, activity) = (lock.clone(), activity.clone());
            units.push(mode.spawn(move || {
                for i in 0..rounds {
                    let mut g = lock.write();
                    assert_eq!(
                        activity.fetch_add(WRITER, SeqCst),
                        0,
                        "a writer met someone"
                    );
                    *g += 1;
                    if (i + w) % 50 == 0 {
                        pause(mode);
                    }
                    activity.fetch_sub(WRITER, SeqCst);
                }
            }));
        }
        for r in 0..readers {
            let (lock, activity) = (lock.clone(), activity.clone());
            units.push(mode.spawn(move || {
                let mut seen = 0;
                for i in 0..rounds {
                    let g = lock.read();
                    let a = activity.fetch_add(1, SeqCst);
                    assert!(a < WRITER, "a reader met a writer");
                    assert!(*g >= seen, "writes went backwards");
                    seen = *g;
                    if (i + r) % 50 == 0 {
                        pause(mode);
                    }
                    activity.fetch_sub(1, SeqCst);
                }
            }));
        }
        for u in units {
            u.join().unwrap();
        }
        assert_eq!(*lock.read(), (writers * rounds) as u64);
        let s = format!("{lock:?}");
        assert!(s.contains("readers_waiting: 0, writers_waiting: 0"), "{s}");
    });
}

// Writers are not starved by readers: once a writer waits, new readers
// queue behind it (even try_read fails), and it gets the lock as soon as
// the readers already inside are done; a stream of overlapping readers
// cannot keep it out.
#[test]
fn rwlock_waiting_writer_blocks_new_readers() {
    each_mode(LIMIT, |mode| {
        let lock = Arc::new(RwLock::new(0));
        let first = lock.read();
        let lock2 = lock.clone();
        let writer = mode.spawn(move || *lock2.write() += 1);
        wait_queued(mode, &*lock, "writers_waiting", 1);
        assert!(
            lock.try_read().is_none(),
            "a reader passed a waiting writer"
        );
        let lock2 = lock.clone();
        let late_reader = mode.spawn(move || *lock2.read());
        wait_queued(mode, &*lock, "readers_waiting", 1);
        drop(first);
        writer.join().unwrap();
        assert_eq!(
            late_reader.join().unwrap(),
            1,
            "the reader came after the writer"
        );
    });
}

// Go src/sync/rwmutex_test.go (writer starvation, as a stream): readers
// keep overlapping read locks going without a gap; a writer must still get
// in, which ends the stream.
#[test]
fn rwlock_writer_not_starved_by_reader_stream() {
    each_mode(LIMIT, |mode| {
        let lock = Arc::new(RwLock::new(false));
        let n = mode.scale(4).min(4);
        let readers: Vec<_> = (0..n)
            .map(|_| {
                let lock = lock.clone();
                mode.spawn(move || {
                    let mut rounds = 0u64;
                    loop {
                        let r = lock.read();
                        if *r {
                            return rounds;
                        }
                        pause(mode);
                        drop(r);
                        rounds += 1;
                    }
                })
            })
            .collect();
        // Let the stream start, then write.
        pause(mode);
        *lock.write() = true;
        for r in readers {
            r.join().unwrap();
        }
    });
}

// Readers are not starved by writers: when a writer unlocks, every reader
// waiting then gets in before the next writer (which waits for them).
#[test]
fn rwlock_writer_unlock_admits_waiting_readers_first() {
    each_mode(LIMIT, |mode| {
        let lock = Arc::new(RwLock::new(Vec::new()));
        let log = Arc::new(Mutex::new(Vec::new()));
        let held = lock.write();
        let mut units = Vec::new();
        for i in 0..2 {
            let (lock2, log) = (lock.clone(), log.clone());
            units.push(mode.spawn(move || {
                let r = lock2.read();
                log.lock().push(format!("r{i}:{}", r.len()));
            }));
            wait_queued(mode, &*lock, "readers_waiting", i + 1);
        }
        let (lock2, log2) = (lock.clone(), log.clone());
        units.push(mode.spawn(move || {
            let mut w = lock2.write();
            w.push(());
            log2.lock().push("w".to_string());
        }));
        wait_queued(mode, &*lock, "writers_waiting", 1);
        drop(held);
        for u in units {
            u.join().unwrap();
        }
        let log = log.lock();
        assert_eq!(log.len(), 3);
        assert_eq!(
            log[2], "w",
            "the writer went before waiting readers: {log:?}"
        );
        assert!(log[..2].iter().all(|e| e.ends_with(":0")), "{log:?}");
    });
}

// A writer that times out while readers wait behind it lets them in:
// they only waited because of it.
#[test]
fn rwlock_timeouts_and_try() {
    each_mode(LIMIT, |mode| {
        let lock = Arc::new(RwLock::new(0));
        {
            let _w = lock.try_write().unwrap();
            assert!(lock.try_read().is_none());
            assert!(lock.try_write().is_none());
            let start = Instant::now();
            assert!(lock.read_timeout(SHORT).is_none());
            assert!(start.elapsed() >= SHORT);
        }
        let held = lock.read();
        assert!(lock.try_read().is_some(), "readers share");
        assert!(lock.try_write().is_none());
        let lock2 = lock.clone();
        let writer = mode.spawn(move || {
            let start = Instant::now();
            let got = lock2.write_timeout(SHORT).is_some();
            (got, start.elapsed())
        });
        wait_queued(mode, &*lock, "writers_waiting", 1);
        let lock2 = lock.clone();
        let reader = mode.spawn(move || *lock2.read());
        // The reader is queued behind the writer, then let in when the
        // writer gives up, while `held` is still held.
        let (got, waited) = writer.join().unwrap();
        assert!(!got && waited >= SHORT, "write_timeout: {got}, {waited:?}");
        assert_eq!(reader.join().unwrap(), 0);
        drop(held);
        let s = format!("{lock:?}");
        assert_eq!(
            s,
            "RwLock { data: 0, readers_waiting: 0, writers_waiting: 0, .. }"
        );
        assert!(lock.write_timeout(SHORT).is_some());
    });
}

// A reader blocked by a writer shows in a snapshot, with the writer as
// owner.
#[test]
fn rwlock_snapshot_names_the_writer() {
    for mode in COROUTINE_MODES {
        run_in(mode, LIMIT, move |mode| {
            fn assert_sync<T: Sync>() {}
            assert_sync::<RwLockReadGuard<'static, u32>>();
            assert_sync::<RwLockWriteGuard<'static, u32>>();
            let lock = Arc::new(RwLock::new(()));
            let held = lock.write();
            let me = spindle::current().id();
            let lock2 = lock.clone();
            let reader = spindle::spawn(move || drop(lock2.read()));
            let id = reader.id();
            wait_for(mode, || {
                spindle::runtime::snapshot().coroutines.iter().any(|c| {
                    c.id == id
                        && c.state == CoroutineState::Blocked(WaitReason::RwLockRead)
                        && c.blocked_on.is_some_and(|b| b.owner == Some(me))
                })
            });
            drop(held);
            reader.join().unwrap();
        });
    }
}

// ---------------------------------------------------------------- Condvar

/// A mutex-protected state and its condition variable.
struct Shared<T> {
    state: Mutex<T>,
    cv: Condvar,
}

fn shared<T>(state: T) -> Arc<Shared<T>> {
    Arc::new(Shared {
        state: Mutex::new(state),
        cv: Condvar::new(),
    })
}

/// What the signal tests count, all under the mutex.
#[derive(Default)]
struct Tickets {
    /// Units that are waiting (set before they wait, under the lock).
    waiting: usize,
    /// Signals not yet taken by a waiter.
    tickets: usize,
    /// Units that took a ticket.
    awake: usize,
}

// Go src/sync/cond_test.go TestCondSignal: each notify_one wakes one of
// the waiting units. Every waiter needs a ticket to finish, so a lost
// notification shows as a hang.
#[test]
fn condvar_signal() {
    each_mode(LIMIT, |mode| {
        let n = mode.scale(10);
        let s = shared(Tickets::default());
        let units: Vec<_> = (0..n)
            .map(|_| {
                let s = s.clone();
                mode.spawn(move || {
                    let mut g = s.state.lock();
                    g.waiting += 1;
                    g = s.cv.wait_while(g, |t| t.tickets == 0);
                    g.tickets -= 1;
                    g.awake += 1;
                })
            })
            .collect();
        // `waiting` is raised under the lock, which is released only by
        // waiting: once it reads n, all are in `wait`.
        wait_for(mode, || s.state.lock().waiting == n);
        for i in 0..n {
            s.state.lock().tickets += 1;
            s.cv.notify_one();
            wait_for(mode, || s.state.lock().awake == i + 1);
        }
        for u in units {
            u.join().unwrap();
        }
    });
}

// Go src/sync/cond_test.go TestCondSignalGenerations: waiters are woken in
// the order they started waiting, one per notify_one.
#[test]
fn condvar_signal_wakes_in_arrival_order() {
    each_mode(LIMIT, |mode| {
        let n = mode.scale(10);
        let s = shared(Vec::new());
        let mut units = Vec::new();
        for i in 0..n {
            let s2 = s.clone();
            units.push(mode.spawn(move || {
                let g = s2.state.lock();
                let mut g = s2.cv.wait(g);
                g.push(i);
            }));
            wait_queued(mode, &s.cv, "waiters", i + 1);
        }
        for i in 0..n {
            s.cv.notify_one();
            wait_for(mode, || s.state.lock().len() == i + 1);
            assert_eq!(s.state.lock()[i], i, "woken out of order");
        }
        for u in units {
            u.join().unwrap();
        }
    });
}

// Go src/sync/cond_test.go TestCondBroadcast: rounds in which all units
// wait and one notify_all wakes every one of them. (The units report to
// the main unit on a second condition variable.)
#[test]
fn condvar_broadcast() {
    each_mode(LIMIT, |mode| {
        #[derive(Default)]
        struct Round {
            generation: usize,
            waiting: usize,
            awake: usize,
        }
        let n = mode.scale(50);
        const ROUNDS: usize = 20;
        let s = shared(Round::default());
        let to_main = Arc::new(Condvar::new());
        let units: Vec<_> = (0..n)
            .map(|_| {
                let (s, to_main) = (s.clone(), to_main.clone());
                mode.spawn(move || {
                    for _ in 0..ROUNDS {
                        let mut g = s.state.lock();
                        let generation = g.generation;
                        g.waiting += 1;
                        to_main.notify_one();
                        g = s.cv.wait_while(g, |r| r.generation == generation);
                        g.awake += 1;
                        to_main.notify_one();
                    }
                })
            })
            .collect();
        for round in 1..=ROUNDS {
            let mut g = to_main.wait_while(s.state.lock(), |r| r.waiting < n * round);
            // Everyone is in `wait` (they released the lock only there).
            g.generation += 1;
            s.cv.notify_all();
            drop(to_main.wait_while(g, |r| r.awake < n * round));
        }
        for u in units {
            u.join().unwrap();
        }
    });
}

// Go src/sync/cond_test.go TestCondSignalStealing: a notify_one sent while
// a unit waits wakes that unit, even if another unit starts waiting right
// after (the later waiter cannot steal the notification).
#[test]
fn condvar_signal_is_not_stolen() {
    each_mode(LIMIT, |mode| {
        let rounds = if mode.is_coroutines() { 100 } else { 20 };
        for _ in 0..rounds {
            let s = shared((false, false)); // (first waiting, stop)
            let s2 = s.clone();
            let first = mode.spawn(move || {
                let mut g = s2.state.lock();
                g.0 = true;
                drop(s2.cv.wait(g)); // no predicate: one wake-up is enough
            });
            wait_for(mode, || s.state.lock().0);
            // `first` set its flag under the lock, and released the lock
            // only by waiting.
            s.cv.notify_one();
            let s2 = s.clone();
            let second = mode.spawn(move || {
                let g = s2.state.lock();
                drop(s2.cv.wait_while(g, |st| !st.1));
            });
            first.join().unwrap();
            s.state.lock().1 = true;
            s.cv.notify_all();
            second.join().unwrap();
        }
    });
}

// Rust library/std/tests/sync/condvar.rs wait_timeout: without a
// notification the wait times out after at least its timeout, and a
// notification sent before a wait is not remembered; with one, it does
// not time out.
#[test]
fn condvar_wait_timeout() {
    each_mode(LIMIT, |mode| {
        let s = shared(0);
        s.cv.notify_one();
        s.cv.notify_all();
        let start = Instant::now();
        let (g, res) = s.cv.wait_timeout(s.state.lock(), SHORT);
        assert!(res.timed_out());
        assert!(start.elapsed() >= SHORT);
        drop(g);
        assert_eq!(debug_field(&s.cv, "waiters"), 0);

        let s2 = s.clone();
        let notifier = mode.spawn(move || {
            wait_queued(mode, &s2.cv, "waiters", 1);
            *s2.state.lock() = 1;
            s2.cv.notify_one();
        });
        let (g, res) =
            s.cv.wait_timeout_while(s.state.lock(), Duration::from_secs(30), |v| *v == 0);
        assert!(!res.timed_out());
        assert_eq!(*g, 1);
        drop(g);
        notifier.join().unwrap();
    });
}

// Rust library/std/tests/sync/condvar.rs wait_while and
// wait_timeout_while: the predicate is checked under the lock before and
// after each wake-up; a timed-out wait_timeout_while reports whether the
// condition still held.
#[test]
fn condvar_wait_while() {
    each_mode(LIMIT, |mode| {
        let s = shared(0u32);
        let s2 = s.clone();
        let counter = mode.spawn(move || {
            for _ in 0..5 {
                wait_queued(mode, &s2.cv, "waiters", 1);
                *s2.state.lock() += 1;
                s2.cv.notify_all();
            }
        });
        let g = s.cv.wait_while(s.state.lock(), |v| *v < 5);
        assert_eq!(*g, 5);
        drop(g);
        counter.join().unwrap();

        let start = Instant::now();
        let (g, res) = s.cv.wait_timeout_while(s.state.lock(), SHORT, |v| *v < 6);
        assert!(res.timed_out() && *g == 5);
        assert!(start.elapsed() >= SHORT);
        let (g, res) = s.cv.wait_timeout_while(g, SHORT, |v| *v < 5);
        assert!(!res.timed_out() && *g == 5, "already true: no wait");
    });
}

// A bounded queue between producers and consumers, on one mutex and two
// condition variables: every item arrives exactly once.
#[test]
fn condvar_producer_consumer() {
    each_mode(LIMIT, |mode| {
        use std::collections::VecDeque;
        let (producers, consumers) = (mode.scale(8).min(4), mode.scale(8).min(4));
        const ITEMS: usize = 500;
        const CAP: usize = 4;
        let q = Arc::new((Mutex::new(VecDeque::new()), Condvar::new(), Condvar::new()));
        let mut units = Vec::new();
        for p in 0..producers {
            let q = q.clone();
            units.push(mode.spawn(move || {
                let (m, not_empty, not_full) = &*q;
                for i in 0..ITEMS {
                    let mut g = not_full.wait_while(m.lock(), |q| q.len() == CAP);
                    g.push_back(Some(p * ITEMS + i));
                    drop(g);
                    not_empty.notify_one();
                }
                0
            }));
        }
        let total = producers * ITEMS;
        let taken = Arc::new(AtomicUsize::new(0));
        for _ in 0..consumers {
            let (q, taken) = (q.clone(), taken.clone());
            units.push(mode.spawn(move || {
                let (m, not_empty, not_full) = &*q;
                let mut sum = 0;
                loop {
                    let mut g = not_empty.wait_while(m.lock(), |q| q.is_empty());
                    let item = g.pop_front().unwrap();
                    drop(g);
                    not_full.notify_one();
                    match item {
                        Some(v) => {
                            sum += v;
                            taken.fetch_add(1, SeqCst);
                        }
                        None => return sum, // the end marker
                    }
                }
            }));
        }
        let producers_done: Vec<_> = units.drain(..producers).collect();
        for p in producers_done {
            p.join().unwrap();
        }
        {
            let (m, not_empty, _) = &*q;
            let mut g = m.lock();
            for _ in 0..consumers {
                g.push_back(None);
            }
            drop(g);
            not_empty.notify_all();
        }
        let sum: usize = units.into_iter().map(|u| u.join().unwrap()).sum();
        assert_eq!(taken.load(SeqCst), total);
        assert_eq!(sum, total * (total - 1) / 2);
    });
}
