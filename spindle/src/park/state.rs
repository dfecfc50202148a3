//! The coroutine state word: lifecycle plus the unpark token.
//!
//! Every coroutine header holds one `AtomicU32`, laid out as:
//!
//! | bits | name        | meaning                                                        | who sets it                  |
//! |------|-------------|----------------------------------------------------------------|------------------------------|
//! | 0..3 | lifecycle   | `NEW`, `RUNNING`, `PARKED`, `QUEUED` or `DONE` (below)          | see the transitions          |
//! | 3    | `NOTIFIED`  | an unpark token: the next `park` returns at once               | any unparker; cleared by the owner |
//! | 4    | `CANCELLED` | the runtime is shutting down and asked the coroutine to unwind | the shutting-down worker      |
//! | 5    | `JOIN_WAITING` | the joiner stored its unparker and waits for `DONE`         | the single joiner             |
//!
//! Lifecycle values:
//!
//! - `NEW`: spawned, not started; lives in a queue of new coroutines and may
//!   be stolen by any worker.
//! - `RUNNING`: started; running on its worker, or yielded and waiting in
//!   that worker's ready queue. An unpark only sets `NOTIFIED`.
//! - `PARKED`: suspended in `park`, in no queue. Only an unpark (or cancel)
//!   moves it on, and exactly one of them does: the one whose CAS wins.
//! - `QUEUED`: unparked; sits in a ready queue or inbox, not yet resumed.
//! - `DONE`: finished; its output (if any) is published.
//!
//! Transitions and who makes them:
//!
//! ```text
//!   NEW ──start (first worker, CAS)──► RUNNING ──commit_park (owner, after switch)──► PARKED
//!                                  ▲   │                                           │
//!            resume_queued (owner) │   └──complete (owner)──► DONE                 │ unpark / cancel
//!                                  │                                               ▼ (any thread, CAS)
//!                                  └──────────────────────────────────────────── QUEUED
//! ```
//!
//! Why no wake-up is lost: the coroutine never marks itself `PARKED`. It
//! suspends first, and its worker moves it `RUNNING → PARKED` afterwards
//! with a CAS that fails if an unpark set `NOTIFIED` in between; the worker
//! then clears the token and resumes it straight away. Conversely an unpark
//! that finds `PARKED` wins the CAS to `QUEUED` and is the only party that
//! enqueues the coroutine, so it is never queued twice. The model is checked
//! by `tests/loom_park.rs`.

use crate::loom::{AtomicU32, Ordering};

/// Spawned, not started.
pub(crate) const NEW: u32 = 0;
/// Started; running or yielded.
pub const RUNNING: u32 = 1;
/// Suspended in `park`, in no queue.
pub(crate) const PARKED: u32 = 2;
/// Unparked and queued, not yet resumed.
pub(crate) const QUEUED: u32 = 3;
/// Finished.
pub(crate) const DONE: u32 = 4;
const LIFECYCLE: u32 = 0b111;
/// An unpark token is pending.
pub const NOTIFIED: u32 = 1 << 3;
/// Shutdown asked the coroutine to unwind.
pub const CANCELLED: u32 = 1 << 4;
/// The joiner waits for `DONE`; its unparker is in the header.
pub const JOIN_WAITING: u32 = 1 << 5;

/// What an unpark or cancel asks of its caller.
#[derive(Debug, PartialEq, Eq)]
pub enum Wake {
    /// The coroutine was parked: the caller now owns the duty to enqueue it.
    Schedule,
    /// Nothing to enqueue: the token was recorded, or the coroutine is done.
    Nothing,
}

/// The atomic state word of one coroutine.
#[derive(Debug)]
pub struct State(AtomicU32);

impl State {
    /// A new, not yet started coroutine.
    pub(crate) fn new() -> State {
        State(AtomicU32::new(NEW))
    }

    /// The raw word, for introspection (Relaxed: a snapshot may be stale).
    pub fn load_relaxed(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }

    /// The lifecycle part of a raw word.
    pub fn lifecycle(word: u32) -> u32 {
        word & LIFECYCLE
    }

    /// Claims a `NEW` coroutine: `NEW → RUNNING`, by the worker that first
    /// resumes it or by shutdown cancelling it unrun. Returns `false` if
    /// someone else claimed it first.
    pub fn start(&self) -> bool {
        let mut cur = self.0.load(Ordering::Relaxed);
        loop {
            if cur & LIFECYCLE != NEW {
                return false;
            }
            // Acquire: the closure was written by the spawner before the
            // task was published; the queue already orders that, this
            // keeps the claim self-contained. Flags are preserved.
            match self.0.compare_exchange_weak(
                cur,
                cur - NEW + RUNNING,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// In `park`, before suspending: consumes a pending token.
    ///
    /// Returns `true` if there was one, in which case `park` returns at once.
    pub fn take_token(&self) -> bool {
        // Relaxed first look; the Acquire RMW pairs with the Release in
        // `unpark` so what the unparker wrote before unparking is visible.
        if self.0.load(Ordering::Relaxed) & NOTIFIED == 0 {
            return false;
        }
        self.0.fetch_and(!NOTIFIED, Ordering::Acquire) & NOTIFIED != 0
    }

    /// By the owner worker right after the coroutine suspended to park:
    /// `RUNNING → PARKED` unless a token arrived meanwhile.
    ///
    /// Returns `false` if a token was pending; it is consumed and the
    /// coroutine must be resumed again (it re-checks its condition).
    pub fn commit_park(&self) -> bool {
        let mut cur = self.0.load(Ordering::Relaxed);
        loop {
            if cur & NOTIFIED != 0 {
                // Acquire: pairs with the unparker's Release.
                self.0.fetch_and(!NOTIFIED, Ordering::Acquire);
                return false;
            }
            debug_assert_eq!(cur & LIFECYCLE, RUNNING);
            let new = (cur & !LIFECYCLE) | PARKED;
            // Release: everything the coroutine wrote before parking is
            // visible to the unparker that wins the PARKED → QUEUED CAS (and
            // through it to whichever worker resumes a migratable coroutine).
            match self
                .0
                .compare_exchange_weak(cur, new, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// From any thread: wakes the coroutine or leaves it a token.
    pub fn unpark(&self) -> Wake {
        self.transition(0)
    }

    /// From the shutting-down worker: sets `CANCELLED` and wakes the
    /// coroutine like an unpark.
    pub fn cancel(&self) -> Wake {
        self.transition(CANCELLED)
    }

    fn transition(&self, extra: u32) -> Wake {
        let mut cur = self.0.load(Ordering::Relaxed);
        loop {
            let new = match cur & LIFECYCLE {
                DONE => return Wake::Nothing,
                PARKED => (cur & !LIFECYCLE) | QUEUED | extra,
                _ if cur & NOTIFIED != 0 && cur & extra == extra => return Wake::Nothing,
                _ => cur | NOTIFIED | extra,
            };
            // AcqRel: Acquire pairs with `commit_park`'s Release (we may be
            // about to enqueue the coroutine); Release pairs with the
            // Acquire in `take_token` / `commit_park` / `resume_queued`.
            match self
                .0
                .compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) if cur & LIFECYCLE == PARKED => return Wake::Schedule,
                Ok(_) => return Wake::Nothing,
                Err(actual) => cur = actual,
            }
        }
    }

    /// `QUEUED → RUNNING`, by the worker about to resume a woken coroutine.
    pub fn resume_queued(&self) {
        // Acquire: pairs with the unparker's Release.
        let prev = self.0.fetch_sub(QUEUED - RUNNING, Ordering::Acquire);
        debug_assert_eq!(prev & LIFECYCLE, QUEUED);
    }

    /// `RUNNING → DONE`, by the owner after the coroutine returned.
    /// Returns whether the joiner waits (`JOIN_WAITING` was set): then the
    /// caller must wake it.
    ///
    /// The join hand-off needs no fence: [`set_join_waiting`] and this are
    /// read-modify-writes of the same word, so one of them comes first in
    /// its modification order, and the second sees what the first did:
    /// either this sees `JOIN_WAITING` (and wakes the joiner) or the
    /// joiner sees `DONE` (and does not wait).
    ///
    /// [`set_join_waiting`]: State::set_join_waiting
    pub fn complete(&self) -> bool {
        // Release: publishes the output written by the coroutine to
        // whoever observes DONE with Acquire (`is_done`). Acquire: if the
        // joiner waits, the unparker it stored before is visible.
        let prev = self.0.fetch_add(DONE - RUNNING, Ordering::AcqRel);
        debug_assert_eq!(prev & LIFECYCLE, RUNNING);
        prev & JOIN_WAITING != 0
    }

    /// By the single joiner, after storing its unparker: asks
    /// [`complete`](State::complete) to wake it. Returns `false` if the
    /// coroutine is done already (no wake-up will come, and none is
    /// needed: its output is visible).
    pub fn set_join_waiting(&self) -> bool {
        // Release: publishes the stored unparker to `complete`. Acquire:
        // if DONE came first, its output is visible.
        self.0.fetch_or(JOIN_WAITING, Ordering::AcqRel) & LIFECYCLE != DONE
    }

    /// Whether the coroutine finished; Acquire so its output is visible.
    pub(crate) fn is_done(&self) -> bool {
        self.0.load(Ordering::Acquire) & LIFECYCLE == DONE
    }

    /// Whether shutdown asked this coroutine to unwind.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed) & CANCELLED != 0
    }
}
