//! Loom models of [`Semaphore`] and [`Notify`], run on the real code: under
//! `--cfg loom` their internal locks and atomics are loom's, and a loom
//! thread calling them parks as a plain OS thread does (loom's `park`), so
//! loom explores the interleavings of the wait-queue protocol
//! (`src/sync/wait.rs`) as these primitives use it.
//!
//! Run with (a separate target directory, so the normal build cache is not
//! invalidated):
//!
//! ```text
//! RUSTFLAGS="--cfg loom -C debug-assertions" CARGO_TARGET_DIR=target/loom \
//!     cargo test -p spindle --test loom_semaphore --release
//! ```
//!
//! What is checked, over the interleavings loom explores (bounded to
//! [`PREEMPTIONS`] preemptions; `LOOM_MAX_PREEMPTIONS` overrides):
//! - no lost wake-up: a waiter that should be served always is (otherwise
//!   loom reports a deadlock: every thread parked);
//! - permits are never exceeded, and are conserved when a timed-out
//!   acquire races the release that would serve it;
//! - the orderings: what a permit's previous holder (or a notifier) wrote
//!   is visible to the next holder (or the woken waiter): loom's
//!   `UnsafeCell` reports a data race otherwise;
//! - `notify_one` wakes one waiter, not two, and is not lost if it comes
//!   first.
//!
//! Time does not pass under loom, so the only timeouts modelled are zero
//! ones (`Duration::ZERO`: the deadline has passed when the wait starts).
#![cfg(loom)]

use std::time::Duration;

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::thread;

use spindle::sync::{Notify, Semaphore};

/// The default preemption bound of [`model`] (tokio's loom tests use 2 to
/// 4): the whole file takes about 10 s on a 2-core VM with it, and about
/// 6 minutes unbounded (`LOOM_MAX_PREEMPTIONS=100`), which also passes.
/// Each of seven bugs planted to try these models (a release that does not
/// hand off, a hand-off that leaves the permits in the pool, a head waiter
/// that gives up without handing on, permits taken for a waiter that had
/// aborted, a `notify_one` that stores no permit, one that wakes every
/// waiter, a `wait` that does not consume the permit) was caught with a
/// bound of 3.
const PREEMPTIONS: usize = 5;

/// Runs `f` under loom with at most [`PREEMPTIONS`] preemptions, unless
/// `LOOM_MAX_PREEMPTIONS` says otherwise.
fn model<F>(f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(PREEMPTIONS);
    }
    builder.check(f);
}

/// The number of callers queued, from the `Debug` output (the state is
/// private; this is the test's window into it).
fn waiters(x: &impl std::fmt::Debug) -> usize {
    let s = format!("{x:?}");
    let at = s.find("waiters: ").expect("a waiters field") + "waiters: ".len();
    let digits: String = s[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap()
}

/// One permit, three parties (two threads and the model's own): the
/// permit is a lock. Each increments a counter in a loom `UnsafeCell`
/// while holding it, so loom reports any overlap of two holders, and any
/// hand-off that does not order the previous holder's write before the
/// next holder's read. Everyone gets through (no lost wake-up).
#[test]
fn semaphore_one_permit_is_exclusive() {
    model(|| {
        let sem = Arc::new(Semaphore::new(1));
        let data = Arc::new(UnsafeCell::new(0usize));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (sem, data) = (sem.clone(), data.clone());
                thread::spawn(move || {
                    let _permit = sem.acquire();
                    // SAFETY: the one permit excludes other holders.
                    data.with_mut(|d| unsafe { *d += 1 });
                })
            })
            .collect();
        {
            let _permit = sem.acquire();
            // SAFETY: as above.
            data.with_mut(|d| unsafe { *d += 1 });
        }
        for t in threads {
            t.join().unwrap();
        }
        // SAFETY: every other holder has finished (joined).
        assert_eq!(data.with(|d| unsafe { *d }), 3);
        assert_eq!(sem.available_permits(), 1);
        assert_eq!(waiters(&*sem), 0);
    });
}

/// Two permits: one party takes both at once, two take one each. The
/// permits held never exceed two, everyone gets through whatever the
/// order (the large request queues behind small ones or the small ones
/// behind it), and all permits come back.
#[test]
fn semaphore_acquire_many_vs_single() {
    model(|| {
        let sem = Arc::new(Semaphore::new(2));
        let held = Arc::new(AtomicUsize::new(0));
        let take = |sem: &Semaphore, held: &AtomicUsize, n: usize| {
            let permit = sem.acquire_many(n);
            assert!(
                held.fetch_add(n, SeqCst) + n <= 2,
                "more than 2 permits held"
            );
            held.fetch_sub(n, SeqCst);
            drop(permit);
        };
        let big = {
            let (sem, held) = (sem.clone(), held.clone());
            thread::spawn(move || take(&sem, &held, 2))
        };
        let small = {
            let (sem, held) = (sem.clone(), held.clone());
            thread::spawn(move || take(&sem, &held, 1))
        };
        take(&sem, &held, 1);
        big.join().unwrap();
        small.join().unwrap();
        assert_eq!(sem.available_permits(), 2);
        assert_eq!(waiters(&*sem), 0);
    });
}

/// A zero-timeout acquire races the release that could serve it: either
/// it aborts first (and gets nothing, and the permit stays in the pool) or
/// the releaser claims it first (and it keeps the permit even though its
/// deadline has passed). The permit is never lost nor doubled.
#[test]
fn semaphore_timeout_racing_release_conserves_permits() {
    model(|| {
        let sem = Arc::new(Semaphore::new(0));
        let timed = {
            let sem = sem.clone();
            thread::spawn(move || {
                let got = sem.acquire_timeout(Duration::ZERO);
                let n = got.as_ref().map_or(0, |p| p.num_permits());
                // Keep it out of the pool, to count it below.
                if let Some(p) = got {
                    p.forget();
                }
                n
            })
        };
        sem.add_permits(1);
        let got = timed.join().unwrap();
        assert_eq!(got + sem.available_permits(), 1, "the permit is conserved");
        assert_eq!(waiters(&*sem), 0);
    });
}

/// A large request at the head gives up (zero timeout) while a small one
/// may wait behind it and a release comes: the small one is served in
/// every interleaving, by the release or by the head's leaving (which
/// must hand the pool on, as nothing else would).
#[test]
fn semaphore_head_giving_up_serves_the_next() {
    model(|| {
        let sem = Arc::new(Semaphore::new(1));
        let held = sem.acquire_many(1);
        let big = {
            let sem = sem.clone();
            thread::spawn(move || {
                // Never gets 2 of a semaphore of 1.
                assert!(sem.acquire_many_timeout(2, Duration::ZERO).is_none());
            })
        };
        let small = {
            let sem = sem.clone();
            thread::spawn(move || drop(sem.acquire()))
        };
        drop(held);
        big.join().unwrap();
        small.join().unwrap();
        assert_eq!(sem.available_permits(), 1);
        assert_eq!(waiters(&*sem), 0);
    });
}

/// `notify_one` racing the waiter's arrival is never lost: it either wakes
/// the parked waiter or leaves the permit its `wait` consumes. What the
/// notifier wrote before notifying is visible after the wait.
#[test]
fn notify_one_racing_wait_is_never_lost() {
    model(|| {
        let notify = Arc::new(Notify::new());
        let data = Arc::new(UnsafeCell::new(0usize));
        let waiter = {
            let (notify, data) = (notify.clone(), data.clone());
            thread::spawn(move || {
                notify.wait();
                // SAFETY: written before the notification, read after it.
                data.with(|d| assert_eq!(unsafe { *d }, 1));
            })
        };
        // SAFETY: the waiter reads only after the notification below.
        data.with_mut(|d| unsafe { *d = 1 });
        notify.notify_one();
        waiter.join().unwrap();
        assert_eq!(waiters(&*notify), 0);
    });
}

/// Two waiters, two `notify_one`s: the first wakes exactly one (whether it
/// finds a parked waiter or leaves the permit for the next `wait`), so one
/// is through and the other is not until the second notification, which
/// wakes it.
///
/// The second `notify_one` comes after one waiter is through: two with
/// nobody waiting yet would leave one permit, not two (permits do not
/// accumulate), and the second waiter would rightly wait forever.
#[test]
fn notify_one_wakes_exactly_one_of_two() {
    model(|| {
        let notify = Arc::new(Notify::new());
        let woken = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (notify, woken) = (notify.clone(), woken.clone());
                thread::spawn(move || {
                    notify.wait();
                    woken.fetch_add(1, SeqCst);
                })
            })
            .collect();
        notify.notify_one();
        while woken.load(SeqCst) == 0 {
            thread::yield_now();
        }
        assert_eq!(woken.load(SeqCst), 1, "one notify_one woke both");
        notify.notify_one();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(woken.load(SeqCst), 2);
        assert_eq!(waiters(&*notify), 0);
    });
}
