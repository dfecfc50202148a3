//! A loom model of the park protocol, run on the real state word
//! (`spindle/src/park/state.rs`, re-exported for loom as `spindle::__loom`).
//!
//! Run with (debug assertions on, so `state.rs`'s own `debug_assert`s on
//! the lifecycle are checked too; a separate target directory, so the
//! normal build cache is not invalidated):
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
//! `Wake::Schedule` enqueues the coroutine: it bumps a push counter
//! (Release, as a run queue's push publishes the task) and wakes the
//! waiting worker through a `loom::sync::Notify`. The worker blocks on it
//! rather than spinning with `yield_now`, so a wake-up that never comes
//! shows up as a deadlock that loom reports, and waiting adds no steps to
//! interleave.
//!
//! What is checked, over every interleaving loom explores (all of them for
//! model (a); for (b) and (c), those with at most [`PREEMPTIONS`]
//! preemptions, see [`model`]):
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

use spindle::__loom::{CANCELLED, JOIN_WAITING, NOTIFIED, RUNNING, State, Wake, new_state};

/// One coroutine as the model sees it: its state word and the run queue
/// it goes to when an unparker gets `Wake::Schedule`. Shared by all the
/// model's threads through one `Arc` (every `Arc` operation is one more
/// step for loom to interleave).
struct Coroutine {
    state: State,
    /// How many times the coroutine was enqueued.
    pushes: AtomicUsize,
    /// Wakes the worker blocked in [`Coroutine::wait_scheduled`].
    ready: Notify,
    /// Written by an unparker before `unpark`, read by the coroutine after
    /// its park returned.
    message: UnsafeCell<u32>,
    /// Written by the coroutine before parking, read by the party that
    /// schedules it (as a worker resuming a migratable coroutine would
    /// touch its stack).
    parked_data: UnsafeCell<u32>,
    /// Bumped (Relaxed, so it orders nothing) by every thread between two
    /// protocol steps; see [`Coroutine::step`].
    steps: AtomicUsize,
}

impl Coroutine {
    /// A started coroutine (`NEW → RUNNING`).
    fn running() -> Arc<Coroutine> {
        let state = new_state();
        assert!(state.start(), "a new coroutine is claimed once");
        Arc::new(Coroutine {
            state,
            pushes: AtomicUsize::new(0),
            ready: Notify::new(),
            message: UnsafeCell::new(0),
            parked_data: UnsafeCell::new(0),
            steps: AtomicUsize::new(0),
        })
    }

    /// Marks a point between two protocol steps where another thread may
    /// run. Needed for loom 0.7's DPOR to explore every order of the steps:
    /// it remembers only the last access to an atomic, so when a thread
    /// does a Relaxed load and then a CAS (as `unpark` does), its own load
    /// hides the other thread's earlier load and loom never tries running
    /// the CAS first (tokio-rs/loom#392). Without these, model (a) never
    /// took the path where the token arrives before `take_token`. An RMW
    /// on one shared counter makes every pair of steps dependent, so loom
    /// tries both orders; being Relaxed, it adds no happens-before edge
    /// that could hide a missing one in `state.rs`.
    fn step(&self) {
        self.steps.fetch_add(1, Ordering::Relaxed);
    }

    /// An unparker (or, with `cancel`, shutdown): wakes the coroutine and
    /// enqueues it if the state word says so.
    fn wake(&self, cancel: bool) -> Wake {
        self.step();
        let wake = if cancel {
            self.state.cancel()
        } else {
            self.state.unpark()
        };
        self.step();
        if wake == Wake::Schedule {
            let seen = self.parked_data.with(|d| {
                // SAFETY: the coroutine wrote it before `commit_park`'s
                // Release, which the winning PARKED → QUEUED CAS acquired,
                // and touches it again only once resumed, which needs the
                // push below.
                unsafe { *d }
            });
            assert_eq!(seen, 7, "the parker's writes are visible");
            // Release: publishes the coroutine, as a real run queue's push
            // does; pairs with the Acquire in `wait_scheduled`.
            self.pushes.fetch_add(1, Ordering::Release);
            self.ready.notify();
        }
        wake
    }

    /// The worker blocks until the coroutine was enqueued. If no one ever
    /// enqueues it, loom reports a deadlock: a lost wake-up.
    fn wait_scheduled(&self) {
        while self.pushes.load(Ordering::Acquire) == 0 {
            self.ready.wait(); // may wake spuriously: re-check
        }
    }

    /// One park, as `park_coroutine` and the worker do it. Returns whether
    /// the coroutine went through `PARKED` (and was resumed from the queue).
    fn park_once(&self) -> bool {
        self.parked_data.with_mut(|d| {
            // SAFETY: only the coroutine touches it before it parks.
            unsafe { *d = 7 }
        });
        self.step();
        if self.state.take_token() {
            return false; // an unpark came first: park returns at once
        }
        // The coroutine suspends; its worker, after the switch:
        self.step();
        if !self.state.commit_park() {
            return false; // a token arrived meanwhile: resumed at once
        }
        // PARKED (or already QUEUED): only a Wake::Schedule brings it back.
        self.step();
        self.wait_scheduled();
        // `resume_queued` debug-asserts QUEUED (the CI builds this model
        // with `-C debug-assertions`).
        self.state.resume_queued();
        true
    }

    /// What the unpark(s) left behind, once every waker was joined.
    fn check_end(&self, went_through_queue: bool, wakes: &[Wake]) -> u32 {
        let pushes = self.pushes.load(Ordering::Relaxed);
        assert!(
            pushes <= 1,
            "one park was scheduled {pushes} times: {wakes:?}"
        );
        assert_eq!(pushes, usize::from(went_through_queue), "{wakes:?}");
        let word = self.state.load_relaxed();
        assert_eq!(State::lifecycle(word), RUNNING, "{wakes:?}");
        word
    }
}

/// Runs `f` under loom with at most [`PREEMPTIONS`] preemptions, unless
/// `LOOM_MAX_PREEMPTIONS` says otherwise. The models with three threads
/// ran for minutes each unbounded on a 2-core VM, a few seconds bounded
/// to 3. Run them exhaustively with `LOOM_MAX_PREEMPTIONS=100`.
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

/// The default bound of [`model`]; tokio's loom tests use 2 to 4. Each of
/// eight bugs planted in `state.rs` to try these models (a pending token
/// ignored by `commit_park`, a non-atomic read-modify-write in `unpark`, a
/// cancel dropped when a token is pending, an unpark that re-queues a
/// `QUEUED` coroutine, and four orderings weakened to Relaxed or Release)
/// was caught with a bound of 2.
const PREEMPTIONS: usize = 3;

/// Spawns one loom thread per entry of `cancel`: an unparker (`false`) or
/// shutdown's cancel (`true`).
fn spawn_wakers(co: &Arc<Coroutine>, cancel: &[bool]) -> Vec<thread::JoinHandle<Wake>> {
    cancel
        .iter()
        .map(|&cancel| {
            let co = co.clone();
            thread::spawn(move || co.wake(cancel))
        })
        .collect()
}

/// (a) One coroutine parks, one thread unparks it: the coroutine always
/// resumes, is scheduled at most once, and data flows both ways.
#[test]
fn unpark_is_never_lost() {
    loom::model(|| {
        let co = Coroutine::running();
        let unparker = {
            let co = co.clone();
            thread::spawn(move || {
                co.message.with_mut(|m| {
                    // SAFETY: no one else accesses `message` until the
                    // coroutine's park returns, which is ordered after the
                    // `unpark` below (what this model checks).
                    unsafe { *m = 42 }
                });
                co.wake(false)
            })
        };
        let went_through_queue = co.park_once();
        // Park returned, and in this model never spuriously: either the
        // coroutine consumed the unparker's token (Acquire, paired with the
        // Release in `unpark`), or it was resumed from the queue after that
        // unpark scheduled it (`resume_queued`'s Acquire, and the queue's).
        let seen = co.message.with(|m| {
            // SAFETY: the unparker wrote it before `unpark`, which happens
            // before this read on every path above (what loom checks).
            unsafe { *m }
        });
        assert_eq!(seen, 42, "the unparker's writes are visible");
        let wakes = [unparker.join().unwrap()];
        let word = co.check_end(went_through_queue, &wakes);
        assert_eq!(word & NOTIFIED, 0, "the one token was consumed");
    });
}

/// (b) Two unparkers race for one park: at most one gets
/// `Wake::Schedule`; the coroutine resumes; the loser leaves a token or
/// nothing, never a second enqueue.
#[test]
fn racing_unparkers_schedule_at_most_once() {
    model(|| {
        let co = Coroutine::running();
        let wakers = spawn_wakers(&co, &[false, false]);
        let went_through_queue = co.park_once();
        let wakes: Vec<Wake> = wakers.into_iter().map(|w| w.join().unwrap()).collect();
        co.check_end(went_through_queue, &wakes);
    });
}

/// (c) Shutdown's cancel races an unpark for one park: their `Schedule`s
/// never both fire, the coroutine resumes, and the cancel is never lost.
#[test]
fn cancel_and_unpark_schedule_at_most_once() {
    model(|| {
        let co = Coroutine::running();
        let wakers = spawn_wakers(&co, &[true, false]);
        let went_through_queue = co.park_once();
        let wakes: Vec<Wake> = wakers.into_iter().map(|w| w.join().unwrap()).collect();
        let word = co.check_end(went_through_queue, &wakes);
        assert!(co.state.is_cancelled(), "the cancel is never lost");
        assert_ne!(word & CANCELLED, 0);
    });
}

/// (d) The join hand-off (`TaskRef::finish` and `register_joiner`): the
/// joiner stores its unparker and sets `JOIN_WAITING`; the finishing worker
/// publishes the output and moves the word to `DONE`. Whatever the order,
/// a joiner that waits is woken (else loom reports a deadlock), the
/// finisher reads the unparker only when the joiner stored it first, and
/// the joiner always sees the output (loom reports a data race on either
/// cell otherwise). No fence: both sides are read-modify-writes of the one
/// word.
#[test]
fn join_hand_off_is_never_lost() {
    loom::model(|| {
        let co = Coroutine::running();
        // The joiner's unparker slot, and the coroutine's output.
        let slot = Arc::new(UnsafeCell::new(0u32));
        let output = Arc::new(UnsafeCell::new(0u32));
        let finisher = {
            let (co, slot, output) = (co.clone(), slot.clone(), output.clone());
            thread::spawn(move || {
                output.with_mut(|o| {
                    // SAFETY: the joiner reads it only after seeing DONE
                    // (what loom checks).
                    unsafe { *o = 42 }
                });
                co.step();
                if co.state.complete() {
                    let unparker = slot.with(|s| {
                        // SAFETY: written before JOIN_WAITING, which
                        // `complete` saw (what loom checks).
                        unsafe { *s }
                    });
                    assert_eq!(unparker, 9, "the joiner's unparker is visible");
                    co.pushes.fetch_add(1, Ordering::Release);
                    co.ready.notify();
                }
            })
        };
        slot.with_mut(|s| {
            // SAFETY: the finisher reads it only after seeing JOIN_WAITING.
            unsafe { *s = 9 }
        });
        co.step();
        if co.state.set_join_waiting() {
            // Not done yet: wait for the wake-up (a lost one deadlocks).
            co.wait_scheduled();
        }
        let seen = output.with(|o| {
            // SAFETY: DONE was observed with Acquire, directly or through
            // the wake-up (what loom checks).
            unsafe { *o }
        });
        assert_eq!(seen, 42, "the output is visible to the joiner");
        finisher.join().unwrap();
        let word = co.state.load_relaxed();
        assert_ne!(word & JOIN_WAITING, 0);
        assert!(co.pushes.load(Ordering::Relaxed) <= 1);
    });
}
