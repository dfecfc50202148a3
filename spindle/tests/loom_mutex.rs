//! loom models of `Mutex`, `Condvar` and `RwLock`, run on spindle's real
//! code: under `--cfg loom` their state words are loom atomics, their
//! internal locks loom mutexes, their waiters park loom threads (which
//! play plain OS threads), and loom explores the interleavings.
//!
//! ```text
//! RUSTFLAGS="--cfg loom -C debug-assertions" CARGO_TARGET_DIR=target/loom \
//!     cargo test -p spindle --test loom_mutex --release
//! ```
//!
//! What is checked:
//! - mutual exclusion, and that each critical section sees the previous
//!   one's writes: the protected counter is a `loom::cell::UnsafeCell`,
//!   so two unordered accesses make loom report a data race (a missing
//!   Acquire or Release would show here too), and the final count is
//!   exact;
//! - no lost wake-up: a waiter that is never woken parks forever, and loom
//!   reports the deadlock;
//! - the same with starvation mode forced (threshold zero), where every
//!   unlock with waiters hands the lock over directly;
//! - a `notify_one` sent after the condition changed under the mutex
//!   always reaches the waiter;
//! - a writer and readers of an `RwLock` never overlap, and none of them
//!   waits forever.
//!
//! Spinning is compiled out under loom (it adds interleavings that prove
//! nothing), and time does not pass, so no model uses timeouts.
#![cfg(loom)]

use std::time::Duration;

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;
use spindle::sync::{Condvar, Mutex, RwLock};

/// Explores with a preemption bound, so each model stays well under a
/// minute while covering the interleavings where wake-ups get lost (they
/// need only one or two preemptions). `LOOM_MAX_PREEMPTIONS` overrides it.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(3);
    }
    b.check(f);
}

/// A counter guarded by a spindle mutex that protects nothing itself: the
/// count lives in a loom cell, so that loom checks every access is ordered
/// after the previous one.
struct Counter {
    lock: Mutex<()>,
    count: UnsafeCell<u32>,
}

// SAFETY: `count` is only accessed with `lock` held (what the models check).
unsafe impl Sync for Counter {}

impl Counter {
    fn new(lock: Mutex<()>) -> Arc<Counter> {
        Arc::new(Counter {
            lock,
            count: UnsafeCell::new(0),
        })
    }

    fn increment(&self) {
        let _g = self.lock.lock();
        // SAFETY: the lock is held.
        self.count.with_mut(|c| unsafe { *c += 1 });
    }

    fn get(&self) -> u32 {
        let _g = self.lock.lock();
        // SAFETY: the lock is held.
        self.count.with(|c| unsafe { *c })
    }
}

/// Three threads (two spawned and the model's own) increment the counter;
/// the spawned ones twice, so that one of them can find the lock held
/// again after it was woken (the re-queue at the front).
fn contend(counter: Arc<Counter>) {
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let counter = counter.clone();
            thread::spawn(move || {
                counter.increment();
                counter.increment();
            })
        })
        .collect();
    counter.increment();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(counter.get(), 5);
}

/// (a) Normal mode: barging, wake one waiter per unlock (`WOKEN`), the
/// woken waiter competing again.
#[test]
fn mutex_excludes_and_wakes() {
    model(|| contend(Counter::new(Mutex::new(()))));
}

/// (b) Starvation mode from the first wait on: unlock hands the lock to
/// the first waiter without releasing it; the last hand-off (or an unlock
/// that finds nobody) leaves starvation mode.
#[test]
fn mutex_starvation_hand_off() {
    model(|| {
        contend(Counter::new(Mutex::with_starvation_threshold(
            (),
            Duration::ZERO,
        )))
    });
}

/// (c) One waiter, one `notify_one`: the waiter checks the flag under the
/// mutex and waits; the notifier sets it under the mutex and notifies
/// (after unlocking, the harder order: the count read that lets
/// `notify_one` skip the lock must still see the waiter).
#[test]
fn condvar_notify_one_is_not_lost() {
    model(|| {
        let pair = Arc::new((Mutex::new(false), Condvar::new()));
        let notifier = {
            let pair = pair.clone();
            thread::spawn(move || {
                let (flag, cv) = &*pair;
                *flag.lock() = true;
                cv.notify_one();
            })
        };
        let (flag, cv) = &*pair;
        let mut g = flag.lock();
        while !*g {
            g = cv.wait(g);
        }
        drop(g);
        notifier.join().unwrap();
    });
}

/// (d) A writer and two readers: they never overlap (the data is a loom
/// cell, written by the writer and read by the readers), and whatever the
/// order, everyone gets in (a lost grant is a deadlock).
#[test]
fn rwlock_writer_and_readers() {
    struct Shared {
        lock: RwLock<()>,
        value: UnsafeCell<u32>,
    }
    // SAFETY: `value` is written under the write lock, read under a read
    // lock (what the model checks).
    unsafe impl Sync for Shared {}

    model(|| {
        let s = Arc::new(Shared {
            lock: RwLock::new(()),
            value: UnsafeCell::new(0),
        });
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let s = s.clone();
                thread::spawn(move || {
                    let _r = s.lock.read();
                    // SAFETY: a read lock is held.
                    s.value.with(|v| unsafe { *v })
                })
            })
            .collect();
        {
            let _w = s.lock.write();
            // SAFETY: the write lock is held.
            s.value.with_mut(|v| unsafe { *v = 1 });
        }
        for r in readers {
            let seen = r.join().unwrap();
            assert!(seen == 0 || seen == 1);
        }
    });
}
