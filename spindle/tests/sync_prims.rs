//! `Semaphore`, `Barrier`, `WaitGroup`, `Once`, `OnceLock` and `Notify`,
//! each scenario run from coroutines (runtimes with 1, 2 and 4 workers) and
//! from plain OS threads (see `common::each_mode`).
//!
//! Scenarios are re-expressed (not copied) from:
//! - Go `golang.org/x/sync/semaphore/semaphore_test.go` (the weighted
//!   semaphore, which has the same FIFO rule as ours);
//! - Go `src/sync/mutex_test.go` `HammerSemaphore` (the stress test);
//! - Rust `library/std/tests/sync/barrier.rs` (Go has no barrier);
//! - Go `src/sync/waitgroup_test.go`;
//! - Go `src/sync/once_test.go` and Rust `library/std/tests/sync/once_lock.rs`;
//! - tokio `tokio/tests/sync_notify.rs`.
//!
//! Timing is never asserted on, except that a timed-out call returned only
//! after its timeout. Where a scenario must know that a party is parked
//! before it goes on, it polls the primitive's `Debug` output (which shows
//! how many callers are queued): a test-only window into the state, so the
//! scenarios are deterministic without sleeping.

mod common;

use std::fmt::Debug;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Mode, each_mode};
use spindle::WaitReason;
use spindle::runtime::CoroutineState;
use spindle::sync::{Barrier, Notify, Once, OnceLock, Semaphore, WaitGroup};

/// A hang fails the test instead of stalling CI.
const LIMIT: Duration = Duration::from_secs(60);

/// A timeout short enough to keep the suite fast.
const SHORT: Duration = Duration::from_millis(20);

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
/// callers are queued, how many arrived at a barrier).
fn debug_field(x: &impl Debug, field: &str) -> usize {
    let s = format!("{x:?}");
    let key = format!("{field}: ");
    let at = s
        .find(&key)
        .unwrap_or_else(|| panic!("no `{field}` in {s}"))
        + key.len();
    let digits: String = s[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap()
}

fn waiters(x: &impl Debug) -> usize {
    debug_field(x, "waiters")
}

/// A panic payload's message.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("<not a string>")
}

/// Asserts that a timed call returned `false`/`None` only after `timeout`.
fn assert_timed_out(started: Instant, timeout: Duration, returned_in_time: bool) {
    assert!(!returned_in_time, "the call should have timed out");
    assert!(
        started.elapsed() >= timeout,
        "timed out after {:?}, before its timeout of {timeout:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------- Semaphore

// Go x/sync/semaphore TestWeighted (holders never exceed the size), made
// exact: the first PERMITS holders wait for each other inside, so the
// maximum is reached, and it is never exceeded.
#[test]
fn semaphore_limits_concurrency_exactly() {
    each_mode(LIMIT, |mode| {
        const PERMITS: usize = 3;
        let units = mode.scale(24);
        let rounds = 20;
        let sem = Arc::new(Semaphore::new(PERMITS));
        let inside = Arc::new(AtomicUsize::new(0));
        let max = Arc::new(AtomicUsize::new(0));
        let entries = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..units)
            .map(|_| {
                let (sem, inside, max, entries) =
                    (sem.clone(), inside.clone(), max.clone(), entries.clone());
                mode.spawn(move || {
                    for _ in 0..rounds {
                        let permit = sem.acquire();
                        assert_eq!(permit.num_permits(), 1);
                        let now = inside.fetch_add(1, SeqCst) + 1;
                        assert!(now <= PERMITS, "{now} inside with {PERMITS} permits");
                        max.fetch_max(now, SeqCst);
                        entries.fetch_add(1, SeqCst);
                        // The first PERMITS holders cannot leave before all
                        // of them are inside.
                        wait_for(mode, || max.load(SeqCst) == PERMITS);
                        inside.fetch_sub(1, SeqCst);
                        drop(permit);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(max.load(SeqCst), PERMITS);
        assert_eq!(entries.load(SeqCst), units * rounds);
        assert_eq!(sem.available_permits(), PERMITS);
    });
}

// Go x/sync/semaphore TestWeightedTryAcquire, plus the permit's API.
#[test]
fn semaphore_try_acquire_and_permits() {
    each_mode(LIMIT, |_mode| {
        let sem = Semaphore::new(2);
        let one = sem.acquire();
        let two = sem.try_acquire().expect("one permit left");
        assert!(sem.try_acquire().is_none());
        assert!(sem.try_acquire_many(1).is_none());
        drop((one, two));
        let both = sem.try_acquire_many(2).expect("both back");
        assert_eq!(both.num_permits(), 2);
        assert!(sem.try_acquire_many(3).is_none());
        drop(both);
        assert_eq!(sem.available_permits(), 2);

        // `forget` keeps permits out; `add_permits` brings new ones.
        sem.acquire().forget();
        assert_eq!(sem.available_permits(), 1);
        sem.add_permits(4);
        assert_eq!(sem.available_permits(), 5);
        let zero = sem.acquire_many(0);
        assert_eq!(zero.num_permits(), 0);
        drop(zero);
        assert_eq!(sem.available_permits(), 5);
    });
}

// tokio tokio/tests/sync_semaphore_owned.rs (try_acquire, forget,
// stress_test): owned permits taken before spawning bound how many units
// run at once, and come back when the units end.
#[test]
fn semaphore_owned_permits_bound_spawned_units() {
    each_mode(LIMIT, |mode| {
        const PERMITS: usize = 3;
        let sem = Arc::new(Semaphore::new(PERMITS));
        let inside = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..mode.scale(100))
            .map(|_| {
                let permit = sem.clone().acquire_owned();
                let inside = inside.clone();
                mode.spawn(move || {
                    let now = inside.fetch_add(1, SeqCst) + 1;
                    assert!(now <= PERMITS, "{now} running with {PERMITS} permits");
                    pause(mode);
                    inside.fetch_sub(1, SeqCst);
                    drop(permit);
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(sem.available_permits(), PERMITS);

        let two = sem.clone().try_acquire_many_owned(2).expect("free");
        assert_eq!(two.num_permits(), 2);
        assert!(Arc::ptr_eq(two.semaphore(), &sem));
        assert!(sem.clone().try_acquire_many_owned(2).is_none());
        two.forget();
        assert_eq!(sem.available_permits(), 1);
        let last = sem.clone().try_acquire_owned().expect("one left");
        assert!(sem.clone().try_acquire_owned().is_none());
        drop(last);
        drop(sem.clone().acquire_many_owned(1));
        assert_eq!(sem.available_permits(), 1);
    });
}

// Go x/sync/semaphore TestLargeAcquireDoesntStarve, made deterministic: a
// large request at the head keeps released permits for itself; a later
// small request and `try_acquire` wait behind it even though the pool
// could serve them.
#[test]
fn semaphore_fifo_hand_off() {
    each_mode(LIMIT, |mode| {
        let sem = Arc::new(Semaphore::new(0));
        let order = Arc::new(Mutex::new(Vec::new()));
        let go = Arc::new(AtomicBool::new(false));
        let big = {
            let (sem, order, go) = (sem.clone(), order.clone(), go.clone());
            mode.spawn(move || {
                let permit = sem.acquire_many(3);
                order.lock().unwrap().push("big");
                wait_for(mode, || go.load(SeqCst));
                drop(permit);
            })
        };
        wait_for(mode, || waiters(&*sem) == 1);
        let small = {
            let (sem, order) = (sem.clone(), order.clone());
            mode.spawn(move || {
                let _permit = sem.acquire();
                order.lock().unwrap().push("small");
            })
        };
        wait_for(mode, || waiters(&*sem) == 2);

        sem.add_permits(1);
        // The head needs 3: the permit stays in the pool, reserved.
        assert_eq!(sem.available_permits(), 1);
        assert_eq!(waiters(&*sem), 2);
        assert!(
            sem.try_acquire().is_none(),
            "newcomers queue behind waiters"
        );

        sem.add_permits(2);
        // Handed to the head under the lock, before `add_permits` returned.
        assert_eq!(sem.available_permits(), 0);
        assert_eq!(waiters(&*sem), 1);
        assert!(!order.lock().unwrap().contains(&"small"));

        go.store(true, SeqCst);
        big.join().unwrap();
        small.join().unwrap();
        assert_eq!(*order.lock().unwrap(), ["big", "small"]);
        assert_eq!(sem.available_permits(), 3);
    });
}

// Go x/sync/semaphore TestLargeAcquireDoesntStarve: a stream of small
// acquires does not starve a large one (an unfair semaphore would hang
// here, which `each_mode` turns into a failure).
#[test]
fn semaphore_large_acquire_not_starved() {
    each_mode(LIMIT, |mode| {
        const N: usize = 4;
        let sem = Arc::new(Semaphore::new(N));
        let running = Arc::new(AtomicBool::new(true));
        let ops = Arc::new(AtomicUsize::new(0));
        let all = sem.acquire_many(N);
        let units = mode.scale(8);
        let handles: Vec<_> = (0..units)
            .map(|_| {
                let (sem, running, ops) = (sem.clone(), running.clone(), ops.clone());
                mode.spawn(move || {
                    while running.load(SeqCst) {
                        let permit = sem.acquire();
                        ops.fetch_add(1, SeqCst);
                        pause(mode);
                        drop(permit);
                    }
                })
            })
            .collect();
        drop(all);
        // Let the stream of small acquires get going.
        wait_for(mode, || ops.load(SeqCst) >= 4 * units);
        let big = sem.acquire_many(N);
        assert_eq!(big.num_permits(), N);
        running.store(false, SeqCst);
        drop(big);
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(sem.available_permits(), N);
    });
}

// Go x/sync/semaphore TestAllocCancelDoesntStarve: when a large request at
// the head gives up, the smaller ones behind it that the pool can serve
// are served at once (nobody releases anything here).
#[test]
fn semaphore_timed_out_head_lets_others_through() {
    each_mode(LIMIT, |mode| {
        let sem = Arc::new(Semaphore::new(10));
        let held = sem.acquire();
        let timeout = Duration::from_millis(100);
        let big = {
            let sem = sem.clone();
            mode.spawn(move || {
                let t = Instant::now();
                let got = sem.acquire_many_timeout(10, timeout);
                assert_timed_out(t, timeout, got.is_some());
            })
        };
        wait_for(mode, || waiters(&*sem) == 1);
        let small = {
            let sem = sem.clone();
            mode.spawn(move || sem.acquire().num_permits())
        };
        assert_eq!(small.join().unwrap(), 1);
        big.join().unwrap();
        drop(held);
        assert_eq!(sem.available_permits(), 10);
    });
}

// Go x/sync/semaphore TestWeightedAcquire (an acquire bounded by a context
// deadline fails when the permits do not come).
#[test]
fn semaphore_timeout_returns_none() {
    each_mode(LIMIT, |_mode| {
        let sem = Semaphore::new(2);
        let held = sem.acquire();
        let t = Instant::now();
        assert_timed_out(t, SHORT, sem.acquire_many_timeout(2, SHORT).is_some());
        assert_eq!(sem.available_permits(), 1, "a time-out takes nothing");
        let other = sem.acquire_timeout(SHORT).expect("one permit is free");
        let t = Instant::now();
        assert_timed_out(t, SHORT, sem.acquire_timeout(SHORT).is_some());
        drop((held, other));
        assert_eq!(sem.available_permits(), 2);
        assert_eq!(waiters(&sem), 0);
    });
}

// The claim-or-abort race (see wait.rs), in the style of Go's
// TestWeighted: timed acquires race releases; a permit handed to a waiter
// whose timeout fires is kept by it, so permits are conserved and every
// attempt is accounted for.
#[test]
fn semaphore_timeouts_lose_no_permits() {
    each_mode(LIMIT, |mode| {
        const PERMITS: usize = 3;
        let units = mode.scale(16);
        let rounds = 200;
        let sem = Arc::new(Semaphore::new(PERMITS));
        let inside = Arc::new(AtomicUsize::new(0));
        let acquired = Arc::new(AtomicUsize::new(0));
        let timed_out = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..units)
            .map(|u| {
                let (sem, inside, acquired, timed_out) = (
                    sem.clone(),
                    inside.clone(),
                    acquired.clone(),
                    timed_out.clone(),
                );
                mode.spawn(move || {
                    for r in 0..rounds {
                        let n = 1 + (u + r) % 2;
                        let timeout = Duration::from_micros(((u * 31 + r * 17) % 200) as u64);
                        match sem.acquire_many_timeout(n, timeout) {
                            Some(permit) => {
                                assert_eq!(permit.num_permits(), n);
                                let now = inside.fetch_add(n, SeqCst) + n;
                                assert!(now <= PERMITS, "{now} permits held of {PERMITS}");
                                pause(mode);
                                inside.fetch_sub(n, SeqCst);
                                acquired.fetch_add(1, SeqCst);
                            }
                            None => {
                                timed_out.fetch_add(1, SeqCst);
                            }
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(
            acquired.load(SeqCst) + timed_out.load(SeqCst),
            units * rounds
        );
        assert_eq!(sem.available_permits(), PERMITS);
        assert_eq!(waiters(&*sem), 0);
        assert!(sem.try_acquire_many(PERMITS).is_some());
    });
}

// Go src/sync/mutex_test.go HammerSemaphore / TestSemaphore, scaled up:
// 200 units x 1,000 acquire/release of one or two permits, with exact
// accounting.
#[test]
fn semaphore_stress_exact_accounting() {
    each_mode(LIMIT, |mode| {
        const PERMITS: usize = 5;
        let units = mode.scale(200);
        let loops = 1_000;
        let sem = Arc::new(Semaphore::new(PERMITS));
        let inside = Arc::new(AtomicUsize::new(0));
        let taken = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..units)
            .map(|u| {
                let (sem, inside, taken) = (sem.clone(), inside.clone(), taken.clone());
                mode.spawn(move || {
                    let mut mine = 0;
                    for i in 0..loops {
                        let n = 1 + (u + i) % 2;
                        let permit = sem.acquire_many(n);
                        let now = inside.fetch_add(n, SeqCst) + n;
                        assert!(now <= PERMITS, "{now} permits held of {PERMITS}");
                        inside.fetch_sub(n, SeqCst);
                        drop(permit);
                        mine += n;
                    }
                    taken.fetch_add(mine, SeqCst);
                    mine
                })
            })
            .collect();
        let total: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        let expected: usize = (0..units)
            .map(|u| (0..loops).map(|i| 1 + (u + i) % 2).sum::<usize>())
            .sum();
        assert_eq!(total, expected);
        assert_eq!(taken.load(SeqCst), expected);
        assert_eq!(sem.available_permits(), PERMITS);
    });
}

// ------------------------------------------------------------------ Barrier

// Rust library/std/tests/sync/barrier.rs test_barrier: nobody passes
// before the last party arrives, and exactly one is the leader (here the
// last to arrive, which the scenario arranges).
#[test]
fn barrier_one_leader_nobody_passes_early() {
    each_mode(LIMIT, |mode| {
        let n = mode.scale(10);
        let barrier = Arc::new(Barrier::new(n));
        let passed = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..n - 1)
            .map(|_| {
                let (barrier, passed) = (barrier.clone(), passed.clone());
                mode.spawn(move || {
                    let r = barrier.wait();
                    passed.fetch_add(1, SeqCst);
                    r.is_leader()
                })
            })
            .collect();
        wait_for(mode, || debug_field(&*barrier, "arrived") == n - 1);
        assert_eq!(passed.load(SeqCst), 0, "passed before the last arrival");
        let mine = barrier.wait();
        assert!(mine.is_leader(), "the last to arrive leads");
        let others = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|&leader| leader)
            .count();
        assert_eq!(others, 0);
        assert_eq!(passed.load(SeqCst), n - 1);
        assert_eq!(debug_field(&*barrier, "arrived"), 0);
    });
}

// Rust library/std/tests/sync/barrier.rs test_barrier, over many
// generations of one barrier: in each, everybody arrived before anybody
// passed, and there is exactly one leader.
#[test]
fn barrier_generations() {
    each_mode(LIMIT, |mode| {
        let n = mode.scale(8);
        const GENERATIONS: usize = 50;
        let barrier = Arc::new(Barrier::new(n));
        let arrived: Arc<Vec<AtomicUsize>> =
            Arc::new((0..GENERATIONS).map(|_| AtomicUsize::new(0)).collect());
        let leaders: Arc<Vec<AtomicUsize>> =
            Arc::new((0..GENERATIONS).map(|_| AtomicUsize::new(0)).collect());
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let (barrier, arrived, leaders) =
                    (barrier.clone(), arrived.clone(), leaders.clone());
                mode.spawn(move || {
                    for g in 0..GENERATIONS {
                        arrived[g].fetch_add(1, SeqCst);
                        let r = barrier.wait();
                        assert_eq!(arrived[g].load(SeqCst), n, "generation {g}");
                        if r.is_leader() {
                            leaders[g].fetch_add(1, SeqCst);
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        for g in 0..GENERATIONS {
            assert_eq!(leaders[g].load(SeqCst), 1, "leaders of generation {g}");
        }
    });
}

// Rust std's Barrier::new(0) and new(1): every call leads, nobody waits.
#[test]
fn barrier_of_one_never_waits() {
    each_mode(LIMIT, |_mode| {
        for n in [0, 1] {
            let b = Barrier::new(n);
            for _ in 0..3 {
                assert!(b.wait().is_leader());
            }
        }
    });
}

// ---------------------------------------------------------------- WaitGroup

// Go src/sync/waitgroup_test.go TestWaitGroup: two groups ping-pong; the
// second group's waiters are not released before its last `done`, and the
// groups are reused round after round.
#[test]
fn wait_group_ping_pong() {
    each_mode(LIMIT, |mode| {
        let wg1 = Arc::new(WaitGroup::new());
        let wg2 = Arc::new(WaitGroup::new());
        let n = mode.scale(16);
        for _round in 0..8 {
            let exited = Arc::new(AtomicUsize::new(0));
            wg1.add(n as isize);
            wg2.add(n as isize);
            let handles: Vec<_> = (0..n)
                .map(|_| {
                    let (wg1, wg2, exited) = (wg1.clone(), wg2.clone(), exited.clone());
                    mode.spawn(move || {
                        wg1.done();
                        wg2.wait();
                        exited.fetch_add(1, SeqCst);
                    })
                })
                .collect();
            wg1.wait();
            for i in 0..n {
                assert_eq!(
                    exited.load(SeqCst),
                    0,
                    "WaitGroup released group too soon (after {i} of {n} done)"
                );
                wg2.done();
            }
            for h in handles {
                h.join().unwrap();
            }
            assert_eq!(exited.load(SeqCst), n);
            assert_eq!((wg1.count(), wg2.count()), (0, 0));
        }
    });
}

// Go src/sync/waitgroup_test.go TestWaitGroupMisuse: a `done` without its
// `add` panics with Go's message, leaving the counter as it was.
#[test]
fn wait_group_misuse_panics() {
    each_mode(LIMIT, |_mode| {
        let wg = WaitGroup::new();
        wg.add(1);
        wg.done();
        let err = catch_unwind(|| wg.done()).unwrap_err();
        assert_eq!(panic_message(&*err), "sync: negative WaitGroup counter");
        assert_eq!(wg.count(), 0);
        wg.add(2);
        let err = catch_unwind(|| wg.add(-3)).unwrap_err();
        assert_eq!(panic_message(&*err), "sync: negative WaitGroup counter");
        assert_eq!(wg.count(), 2, "left as it was");
        wg.add(-2);
        wg.wait(); // still usable, still zero
    });
}

// The same misuse, as Go's test states it: the panic is the test's outcome.
#[test]
#[should_panic(expected = "sync: negative WaitGroup counter")]
fn wait_group_negative_counter_panics() {
    WaitGroup::new().done();
}

// Go src/sync/waitgroup_test.go TestWaitGroupRace (many `done`s racing one
// `wait`), with `wait_timeout` on both sides of the zero.
#[test]
fn wait_group_wait_timeout() {
    each_mode(LIMIT, |mode| {
        let wg = Arc::new(WaitGroup::new());
        assert!(wg.wait_timeout(SHORT), "zero: returns at once");
        let n = mode.scale(50);
        wg.add(n as isize + 1);
        let t = Instant::now();
        assert_timed_out(t, SHORT, wg.wait_timeout(SHORT));
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let wg = wg.clone();
                mode.spawn(move || wg.done())
            })
            .collect();
        wait_for(mode, || wg.count() == 1);
        assert_timed_out(Instant::now(), SHORT, wg.wait_timeout(SHORT));
        wg.done();
        assert!(wg.wait_timeout(Duration::from_secs(30)));
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(waiters(&*wg), 0);
    });
}

// Go's rule that a reused group's `add` must follow the previous `wait`
// is not needed here (see WaitGroup's docs): waiters are released at the
// zero itself, so an `add` right after it cannot hold them back.
#[test]
fn wait_group_add_after_zero_does_not_hold_back_waiters() {
    each_mode(LIMIT, |mode| {
        let wg = Arc::new(WaitGroup::new());
        wg.add(1);
        let waiters_done: Vec<_> = (0..mode.scale(4))
            .map(|_| {
                let wg = wg.clone();
                mode.spawn(move || wg.wait())
            })
            .collect();
        let k = waiters_done.len();
        wait_for(mode, || waiters(&*wg) == k);
        wg.done();
        wg.add(1); // the next round starts before the waiters ran
        for h in waiters_done {
            h.join().unwrap();
        }
        assert_eq!(wg.count(), 1);
        wg.done();
    });
}

// --------------------------------------------------------- Once, OnceLock

// Go src/sync/once_test.go TestOnce: many units race `call_once`; the
// initialiser runs exactly once, and every caller returns after it.
#[test]
fn once_runs_exactly_once() {
    each_mode(LIMIT, |mode| {
        let once = Arc::new(Once::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..mode.scale(32))
            .map(|_| {
                let (once, runs) = (once.clone(), runs.clone());
                mode.spawn(move || {
                    once.call_once(|| {
                        // Slow, so that the others park meanwhile.
                        for _ in 0..10 {
                            pause(mode);
                        }
                        runs.fetch_add(1, SeqCst);
                    });
                    assert!(once.is_completed());
                    assert_eq!(runs.load(SeqCst), 1);
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(runs.load(SeqCst), 1);
    });
}

// Go src/sync/once_test.go TestOncePanic, with spindle's documented choice:
// a panicking initialiser leaves the Once incomplete (Go counts it as done;
// std poisons), so the next call runs its own initialiser, and once one
// completes no other runs.
#[test]
fn once_panic_leaves_it_incomplete() {
    each_mode(LIMIT, |_mode| {
        let once = Once::new();
        let r = catch_unwind(AssertUnwindSafe(|| {
            once.call_once(|| panic!("init failed"))
        }));
        assert!(r.is_err());
        assert!(!once.is_completed());
        let mut ran = false;
        once.call_once(|| ran = true);
        assert!(ran, "the next call retries");
        assert!(once.is_completed());
        once.call_once(|| panic!("not called once completed"));
    });
}

// Rust std OnceLock's contract (library/std/tests/sync/once_lock.rs
// sync_once_cell_get_or_init) under a panicking first initialiser: callers
// that wait while it runs are not stranded; exactly one of them runs its
// own initialiser next, and all see its value.
#[test]
fn once_lock_panicking_initialiser_passes_to_a_waiter() {
    each_mode(LIMIT, |mode| {
        let cell = Arc::new(OnceLock::new());
        let started = Arc::new(AtomicBool::new(false));
        let release = Arc::new(AtomicBool::new(false));
        let first = {
            let (cell, started, release) = (cell.clone(), started.clone(), release.clone());
            mode.spawn(move || {
                catch_unwind(AssertUnwindSafe(|| {
                    cell.get_or_init(|| {
                        started.store(true, SeqCst);
                        wait_for(mode, || release.load(SeqCst));
                        panic!("first initialiser fails")
                    });
                }))
                .is_err()
            })
        };
        wait_for(mode, || started.load(SeqCst));
        let runs = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..mode.scale(8))
            .map(|i| {
                let (cell, runs) = (cell.clone(), runs.clone());
                mode.spawn(move || {
                    *cell.get_or_init(|| {
                        runs.fetch_add(1, SeqCst);
                        i
                    })
                })
            })
            .collect();
        // Give them time to queue (not needed for the outcome).
        for _ in 0..20 {
            pause(mode);
        }
        assert!(cell.get().is_none());
        release.store(true, SeqCst);
        assert!(
            first.join().unwrap(),
            "the first initialiser's panic propagates"
        );
        let values: Vec<usize> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(runs.load(SeqCst), 1);
        let v = *cell.get().unwrap();
        assert!(values.iter().all(|&x| x == v), "{values:?} vs {v}");
    });
}

// Rust library/std/tests/sync/once_lock.rs (sync_once_cell,
// sync_once_cell_drop, sync_once_cell_into_inner, ...): the cell's API,
// and that its value is dropped exactly once.
#[test]
fn once_lock_api_and_drop() {
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, SeqCst);
        }
    }
    each_mode(LIMIT, |_mode| {
        let drops = Arc::new(AtomicUsize::new(0));
        let cell = OnceLock::new();
        assert!(cell.get().is_none());
        assert!(cell.set(Counted(drops.clone())).is_ok());
        let rejected = cell.set(Counted(drops.clone())).unwrap_err();
        drop(rejected);
        assert_eq!(drops.load(SeqCst), 1, "the rejected value was given back");
        assert!(cell.get().is_some());
        drop(cell);
        assert_eq!(drops.load(SeqCst), 2);

        let mut cell = OnceLock::from(5);
        *cell.get_mut().unwrap() += 1;
        assert_eq!(cell.get(), Some(&6));
        assert_eq!(cell.clone(), cell);
        assert_eq!(cell.take(), Some(6));
        assert_eq!(cell.get(), None);
        assert_eq!(*cell.get_or_init(|| 7), 7);
        assert_eq!(*cell.get_or_init(|| unreachable!()), 7);
        assert_eq!(cell.into_inner(), Some(7));
        assert_eq!(OnceLock::<u8>::new().into_inner(), None);
        assert_eq!(format!("{:?}", OnceLock::from(1)), "OnceLock(1)");
    });
}

// ------------------------------------------------------------------- Notify

// tokio tokio/tests/sync_notify.rs notify_notified_one: a `notify_one`
// with nobody waiting is stored; permits do not accumulate.
#[test]
fn notify_before_wait_is_not_lost() {
    each_mode(LIMIT, |_mode| {
        let notify = Notify::new();
        notify.notify_one();
        notify.notify_one();
        notify.wait(); // consumes the one stored permit
        let t = Instant::now();
        assert_timed_out(t, SHORT, notify.wait_timeout(SHORT));
        notify.notify_one();
        assert!(notify.wait_timeout(SHORT));
    });
}

// tokio sync_notify.rs notify_one racing the waiter's arrival, many
// times: the wake-up is never lost, whichever comes first.
#[test]
fn notify_one_racing_wait_is_never_lost() {
    each_mode(LIMIT, |mode| {
        for _ in 0..mode.scale(200) {
            let notify = Arc::new(Notify::new());
            let n = notify.clone();
            let unit = mode.spawn(move || n.wait());
            notify.notify_one();
            unit.join().unwrap();
        }
    });
}

// tokio sync_notify.rs notify_one (FIFO) and the "exactly one" half of
// notify_waiters vs notify_one: with two parked waiters, `notify_one` wakes
// the older and only it; the other needs a second notification.
#[test]
fn notify_one_wakes_exactly_one_in_order() {
    each_mode(LIMIT, |mode| {
        let notify = Arc::new(Notify::new());
        let woken = Arc::new(Mutex::new(Vec::new()));
        let spawn_waiter = |id: usize| {
            let (notify, woken) = (notify.clone(), woken.clone());
            mode.spawn(move || {
                notify.wait();
                woken.lock().unwrap().push(id);
            })
        };
        let first = spawn_waiter(1);
        wait_for(mode, || waiters(&*notify) == 1);
        let second = spawn_waiter(2);
        wait_for(mode, || waiters(&*notify) == 2);

        notify.notify_one();
        first.join().unwrap();
        assert_eq!(*woken.lock().unwrap(), [1]);
        assert_eq!(waiters(&*notify), 1, "the second still waits");
        notify.notify_one();
        second.join().unwrap();
        assert_eq!(*woken.lock().unwrap(), [1, 2]);
    });
}

// tokio sync_notify.rs notify_waiters: `notify_all` wakes every current
// waiter and stores nothing for later ones.
#[test]
fn notify_all_wakes_current_waiters_only() {
    each_mode(LIMIT, |mode| {
        let notify = Arc::new(Notify::new());
        let k = mode.scale(20);
        let handles: Vec<_> = (0..k)
            .map(|_| {
                let notify = notify.clone();
                mode.spawn(move || notify.wait())
            })
            .collect();
        wait_for(mode, || waiters(&*notify) == k);
        notify.notify_all();
        for h in handles {
            h.join().unwrap();
        }
        let t = Instant::now();
        assert_timed_out(t, SHORT, notify.wait_timeout(SHORT));
        assert_eq!(waiters(&*notify), 0);
    });
}

// ------------------------------------------- introspection and shutdown

// Each primitive records its own wait reason (and the primitive's address;
// for Once, the coroutine running the initialiser), as a snapshot shows.
#[test]
fn each_primitive_records_its_wait_reason() {
    each_mode(LIMIT, |mode| {
        if !mode.is_coroutines() {
            return; // plain threads have no snapshot
        }
        let sem = Arc::new(Semaphore::new(0));
        let barrier = Arc::new(Barrier::new(2));
        let wg = Arc::new(WaitGroup::new());
        let once = Arc::new(Once::new());
        let notify = Arc::new(Notify::new());
        let release = Arc::new(AtomicBool::new(false));
        wg.add(1);

        let expect_blocked = |h: &spindle::JoinHandle<()>, reason: WaitReason, resource: usize| {
            wait_for(mode, || {
                spindle::runtime::snapshot().coroutines.iter().any(|c| {
                    c.id == h.id()
                        && c.state == CoroutineState::Blocked(reason)
                        && c.blocked_on.is_some_and(|b| b.resource == resource)
                })
            });
        };

        let s = sem.clone();
        let h_sem = spindle::spawn(move || drop(s.acquire()));
        expect_blocked(&h_sem, WaitReason::Semaphore, Arc::as_ptr(&sem) as usize);
        let b = barrier.clone();
        let h_barrier = spindle::spawn(move || {
            b.wait();
        });
        expect_blocked(
            &h_barrier,
            WaitReason::Barrier,
            Arc::as_ptr(&barrier) as usize,
        );
        let w = wg.clone();
        let h_wg = spindle::spawn(move || w.wait());
        expect_blocked(&h_wg, WaitReason::WaitGroup, Arc::as_ptr(&wg) as usize);
        let n = notify.clone();
        let h_notify = spindle::spawn(move || n.wait());
        expect_blocked(&h_notify, WaitReason::Notify, Arc::as_ptr(&notify) as usize);

        let started = Arc::new(AtomicBool::new(false));
        let (o, r, st) = (once.clone(), release.clone(), started.clone());
        let runner = spindle::spawn(move || {
            o.call_once(|| {
                st.store(true, SeqCst);
                wait_for(mode, || r.load(SeqCst));
            })
        });
        wait_for(mode, || started.load(SeqCst));
        let o = once.clone();
        let h_once = spindle::spawn(move || o.call_once(|| unreachable!()));
        expect_blocked(&h_once, WaitReason::Once, Arc::as_ptr(&once) as usize);
        let runner_id = runner.id();
        let owner_recorded = spindle::runtime::snapshot().coroutines.iter().any(|c| {
            c.id == h_once.id() && c.blocked_on.is_some_and(|b| b.owner == Some(runner_id))
        });
        assert!(
            owner_recorded,
            "a Once waiter names the coroutine running the initialiser"
        );

        sem.add_permits(1);
        barrier.wait();
        wg.done();
        notify.notify_one();
        release.store(true, SeqCst);
        for h in [h_sem, h_barrier, h_wg, h_notify, runner, h_once] {
            h.join().unwrap();
        }
    });
}

// Runtime shutdown unwinds coroutines parked on each primitive; each
// unlinks itself first, so the primitives stay consistent and usable from
// plain threads afterwards (the barrier un-counts its cancelled parties,
// the Once is left incomplete for the next caller).
#[test]
fn shutdown_unwinds_waiters_and_leaves_primitives_consistent() {
    let sem = Arc::new(Semaphore::new(0));
    let barrier = Arc::new(Barrier::new(3));
    let wg = Arc::new(WaitGroup::new());
    let once = Arc::new(Once::new());
    let notify = Arc::new(Notify::new());
    wg.add(1);
    let rt = spindle::Runtime::builder().workers(2).build().unwrap();
    let mut handles = Vec::new();
    for _ in 0..2 {
        let (sem, barrier, wg, once, notify) = (
            sem.clone(),
            barrier.clone(),
            wg.clone(),
            once.clone(),
            notify.clone(),
        );
        handles.push(rt.spawn(move || drop(sem.acquire_many(2))));
        handles.push(rt.spawn(move || {
            barrier.wait();
        }));
        handles.push(rt.spawn(move || wg.wait()));
        handles.push(rt.spawn(move || once.call_once(spindle::park)));
        handles.push(rt.spawn(move || notify.wait()));
    }
    // Wait until all ten are parked (the Once has a runner and one waiter).
    let parked = || {
        waiters(&*sem) == 2
            && debug_field(&*barrier, "arrived") == 2
            && waiters(&*wg) == 2
            && waiters(&*notify) == 2
    };
    while !parked()
        || rt
            .snapshot()
            .coroutines
            .iter()
            .filter(|c| matches!(c.state, CoroutineState::Blocked(_)))
            .count()
            < 10
    {
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(rt);
    for h in handles {
        assert!(h.join().unwrap_err().is::<spindle::Cancelled>());
    }
    assert_eq!(waiters(&*sem), 0);
    assert_eq!(sem.available_permits(), 0);
    assert_eq!(debug_field(&*barrier, "arrived"), 0);
    assert_eq!(waiters(&*wg), 0);
    assert_eq!(waiters(&*notify), 0);
    assert!(!once.is_completed());

    // Still usable, from plain threads.
    sem.add_permits(2);
    drop(sem.acquire_many(2));
    let b = barrier.clone();
    let t = std::thread::spawn(move || b.wait().is_leader());
    let t2 = {
        let b = barrier.clone();
        std::thread::spawn(move || b.wait().is_leader())
    };
    let me = barrier.wait().is_leader();
    let leaders = [me, t.join().unwrap(), t2.join().unwrap()];
    assert_eq!(leaders.iter().filter(|&&l| l).count(), 1);
    wg.done();
    wg.wait();
    let mut ran = false;
    once.call_once(|| ran = true);
    assert!(ran);
    notify.notify_one();
    notify.wait();
}
