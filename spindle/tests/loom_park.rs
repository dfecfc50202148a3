//! A loom model of the park protocol, run on the real state word
//! (`spindle/src/park/state.rs`, re-exported for loom as `spindle::__loom`).
//!
//! Run with:
//!
//! ```text
//! RUSTFLAGS="--cfg loom -C debug-assertions" CARGO_TARGET_DIR=target/loom \
//!     cargo test -p spindle --test loom_park --release
//! ```
//!
//! The coroutine side is played by one loom thread doing what a coroutine
//! and its worker do, in order:
//!
//! ```text
//!  coroutine: take_token()? ── yes ──► park returns
//!             no: suspend
//!  worker:    commit_park()? ── no (token arrived meanwhile) ──► resume it at once
//!             yes: PARKED; wait until an unparker enqueued it,
//!                  then resume_queued() and resume it
//! ```
//!
//! Unparkers (and shutdown's cancel) are other loom threads; one that gets
//! `Wake::Schedule` enqueues the coroutine: a [`Queue`] counts the pushes
//! (Release, as a run queue's push publishes the task) and wakes the
//! waiting worker through a `loom::sync::Notify`. The worker blocks on it
//! rather than spinning with `yield_now`: a spin loop multiplies the
//! interleavings (with three threads the models ran for minutes), while a
//! blocked thread costs none, and a wake-up that never comes shows up as a
//! deadlock that loom reports.
//!
//! What is checked, over every interleaving loom explores:
//! - no lost wake-up: a parked coroutine is always scheduled (otherwise its
//!   worker waits forever and loom fails the execution with a deadlock);
//! - at most one party gets `Wake::Schedule` per park, so a coroutine is
//!   never queued twice, whether unparkers race each other or shutdown;
//! - the orderings: what the unparker wrote before `unpark` is visible to the
//!   coroutine once its park returns, and what the coroutine wrote before
//!   parking is visible to the unparker that schedules it (loom's
//!   `UnsafeCell` reports a data race otherwise).
#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::{Arc, Notify};
use loom::thread;

use spindle::__loom::{CANCELLED, NOTIFIED, PARKED, QUEUED, RUNNING, State, Wake};

/// The lifecycle bits of a raw state word.
fn lifecycle(word: u32) -> u32 {
    State::lifecycle(word)
}

/// A started coroutine's state word (`NEW → RUNNING`).
fn running() -> State {
    let s = State::new();
    assert!(s.start(), "a new coroutine is claimed once");
    assert_eq!(lifecycle(s.load_relaxed()), RUNNING);
    s
}

/// The run queue the coroutine goes to when an unparker gets
/// `Wake::Schedule`: it only counts the pushes, and wakes the worker that
/// waits for the coroutine to come back.
struct Queue {
    /// How many times the coroutine was enqueued.
    pushes: AtomicUsize,
    /// Wakes the worker blocked in [`Queue::wait`].
    ready: Notify,
}

impl Queue {
    fn new() -> Queue {
        Queue {
            pushes: AtomicUsize::new(0),
            ready: Notify::new(),
        }
    }

    /// What the party that got `Wake::Schedule` does.
    fn push(&self) {
        // Release: publishes the coroutine, as a real queue's push does;
        // pairs with the Acquire in `wait`.
        self.pushes.fetch_add(1, Ordering::Release);
        self.ready.notify();
    }

    /// The worker blocks until the coroutine was enqueued.
    fn wait(&self) {
        while self.pushes.load(Ordering::Acquire) == 0 {
            self.ready.wait(); // may wake spuriously: re-check
        }
    }

    /// How many times it was enqueued (after every pusher was joined).
    fn pushes(&self) -> usize {
        self.pushes.load(Ordering::Relaxed)
    }
}

/// Unparks (or cancels) the coroutine and enqueues it if told to; returns
/// what the state word said.
fn wake(state: &State, queue: &Queue, cancel: bool) -> Wake {
    let wake = if cancel {
        state.cancel()
    } else {
        state.unpark()
    };
    if wake == Wake::Schedule {
        queue.push();
    }
    wake
}

/// One park by the coroutine side, as `park_coroutine` and the worker do
/// it. Returns whether the coroutine went through `PARKED` (and was then
/// resumed from the queue).
fn park_once(state: &State, queue: &Queue) -> bool {
    if state.take_token() {
        return false; // an unpark came first: park returns at once
    }
    // The coroutine suspends; its worker, after the switch:
    if !state.commit_park() {
        return false; // a token arrived meanwhile: resumed at once
    }
    // PARKED, or already QUEUED by an unparker that won the race.
    let now = lifecycle(state.load_relaxed());
    assert!(
        now == PARKED || now == QUEUED,
        "lifecycle {now} after commit_park"
    );
    // Only a Wake::Schedule puts it back in a queue; if none comes, this
    // waits forever and loom reports the deadlock.
    queue.wait();
    assert_eq!(lifecycle(state.load_relaxed()), QUEUED);
    state.resume_queued();
    true
}

/// (a) One coroutine parks, one thread unparks it: the coroutine always
/// resumes, is scheduled at most once, and data flows both ways.
#[test]
fn unpark_is_never_lost() {
    loom::model(|| {
        let state = Arc::new(running());
        let queue = Arc::new(Queue::new());
        // Written by the unparker before `unpark`, read by the coroutine
        // after its park returned.
        let message = Arc::new(UnsafeCell::new(0u32));
        // Written by the coroutine before parking, read by the unparker
        // that schedules it (as a worker resuming a migratable coroutine
        // would touch its stack).
        let parked_data = Arc::new(UnsafeCell::new(0u32));

        let unparker = {
            let (state, queue) = (state.clone(), queue.clone());
            let (message, parked_data) = (message.clone(), parked_data.clone());
            thread::spawn(move || {
                message.with_mut(|m| {
                    // SAFETY: no one else accesses `message` until the
                    // coroutine's park returns, which is ordered after the
                    // `unpark` below (what this model checks).
                    unsafe { *m = 42 }
                });
                let seen = match state.unpark() {
                    Wake::Schedule => parked_data.with(|d| {
                        // SAFETY: the coroutine wrote it before
                        // `commit_park`'s Release, which our winning CAS
                        // acquired, and does not touch it again before it
                        // is resumed, which needs the push below.
                        unsafe { *d }
                    }),
                    Wake::Nothing => return,
                };
                assert_eq!(seen, 7, "the parker's writes are visible");
                queue.push();
            })
        };

        parked_data.with_mut(|d| {
            // SAFETY: only the coroutine touches it before it parks.
            unsafe { *d = 7 }
        });
        let went_through_queue = park_once(&state, &queue);
        // Park returned, and in this model never spuriously: either the
        // coroutine consumed the unparker's token (Acquire, paired with the
        // Release in `unpark`), or it was resumed from the queue after that
        // unpark scheduled it (`resume_queued`'s Acquire, and the queue's).
        let seen = message.with(|m| {
            // SAFETY: the unparker wrote it before `unpark`, which happens
            // before this read on every path above (what loom checks).
            unsafe { *m }
        });
        assert_eq!(seen, 42, "the unparker's writes are visible");
        unparker.join().unwrap();
        assert_eq!(queue.pushes(), usize::from(went_through_queue));
        let word = state.load_relaxed();
        assert_eq!(lifecycle(word), RUNNING);
        assert_eq!(word & NOTIFIED, 0, "the one token was consumed");
    });
}

/// (b) Two unparkers race for one park: at most one gets
/// `Wake::Schedule`; the coroutine resumes; the loser leaves a token or
/// nothing, never a second enqueue.
#[test]
fn racing_unparkers_schedule_at_most_once() {
    loom::model(|| {
        let state = Arc::new(running());
        let queue = Arc::new(Queue::new());

        let unparkers: Vec<_> = (0..2)
            .map(|_| {
                let (state, queue) = (state.clone(), queue.clone());
                thread::spawn(move || wake(&state, &queue, false))
            })
            .collect();

        let went_through_queue = park_once(&state, &queue);
        let wakes: Vec<Wake> = unparkers.into_iter().map(|u| u.join().unwrap()).collect();
        let n = queue.pushes();
        assert!(n <= 1, "scheduled {n} times for one park: {wakes:?}");
        assert_eq!(n, usize::from(went_through_queue));
        assert_eq!(lifecycle(state.load_relaxed()), RUNNING);
    });
}

/// (c) Shutdown's cancel races an unpark for one park: their `Schedule`s
/// never both fire, the coroutine resumes, and the cancel is never lost.
#[test]
fn cancel_and_unpark_schedule_at_most_once() {
    loom::model(|| {
        let state = Arc::new(running());
        let queue = Arc::new(Queue::new());

        let wakers: Vec<_> = [true, false]
            .into_iter()
            .map(|cancel| {
                let (state, queue) = (state.clone(), queue.clone());
                thread::spawn(move || wake(&state, &queue, cancel))
            })
            .collect();

        let went_through_queue = park_once(&state, &queue);
        let wakes: Vec<Wake> = wakers.into_iter().map(|w| w.join().unwrap()).collect();
        let n = queue.pushes();
        assert!(
            n <= 1,
            "cancel and unpark both scheduled one park: {wakes:?}"
        );
        assert_eq!(n, usize::from(went_through_queue));
        let word = state.load_relaxed();
        assert_eq!(lifecycle(word), RUNNING);
        assert!(state.is_cancelled(), "the cancel is never lost");
        assert_ne!(word & CANCELLED, 0);
    });
}
