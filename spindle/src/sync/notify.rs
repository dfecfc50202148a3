//! [`Notify`]: wake one waiter or all of them, with one stored permit so a
//! `notify_one` that comes before the `wait` is not lost.
//!
//! # Algorithm
//!
//! One internal lock guards the whole state:
//!
//! | field      | meaning                                                        |
//! | ---------- | -------------------------------------------------------------- |
//! | `notified` | a `notify_one` found nobody to wake and left a permit          |
//! | `waiters`  | the callers of `wait`, oldest first (FIFO)                     |
//!
//! Invariant: while `notified` is set, no node in `waiters` is waiting (it
//! holds at most nodes of waiters that gave up and have not unlinked
//! themselves yet). A `wait` that finds the permit consumes it instead of
//! queueing, and `notify_one` sets it only after
//! [`pop_claim`](super::wait::WaitList::pop_claim) found no waiter to claim.
//!
//! - `wait`: under the lock, take the permit if there is one and return;
//!   otherwise link a node and park (see [`wait`](super::wait) for the
//!   protocol). Being claimed *is* the notification: nothing else is handed
//!   over, so a waiter returns only when notified (no spurious wake-ups) or
//!   when its deadline passes.
//! - `notify_one`: under the lock, claim the oldest waiter still waiting; if
//!   there is none, store the permit (a second one is absorbed: permits do
//!   not accumulate). The claim is finished (the waiter unparked) after the
//!   lock is released.
//! - `notify_all`: under the lock, claim every waiter linked at that moment.
//!   It leaves the permit alone: it wakes those who wait *now*, and a
//!   `wait` that starts after it returns waits for the next notification.
//!
//! A waiter that times out races the notifier for its own waiter word (see
//! [`Waiter::wait`]): either it aborts first, and `notify_one` passes over
//! it to the next waiter or the permit, or it was claimed first, and its
//! `wait_timeout` reports the notification (`true`) even if the deadline
//! has passed meanwhile. Either way no notification is lost.
//!
//! The module also holds [`Wakeups`], the small batch of claims that this
//! and the other primitives of `sync` finish after releasing their lock.

use std::fmt;
use std::time::{Duration, Instant};

use super::wait::{Claim, WaitList, wait_in};
use crate::loom::{Mutex, lock};
use crate::park::WaitReason;

/// A notification for coroutines and threads: [`wait`](Notify::wait)
/// blocks until [`notify_one`](Notify::notify_one) or
/// [`notify_all`](Notify::notify_all) is called.
///
/// Shaped like tokio's `Notify`, but blocking: the caller's coroutine is
/// parked (its worker runs others), or, called from a plain OS thread, the
/// thread is. The wait records [`WaitReason::Notify`].
///
/// - [`notify_one`](Notify::notify_one) wakes the longest-waiting caller of
///   `wait`. If nobody waits, it stores **one** permit, and the next `wait`
///   consumes it and returns at once: a notification sent before the wait
///   is not lost. Permits do not accumulate: two `notify_one` calls with
///   nobody waiting let one `wait` through, not two.
/// - [`notify_all`](Notify::notify_all) wakes every caller that is waiting
///   at that moment and stores nothing: a `wait` that starts later waits
///   for the next notification.
///
/// `wait` never returns spuriously: only a notification (or, for
/// [`wait_timeout`](Notify::wait_timeout), its deadline) ends it.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use spindle::sync::Notify;
///
/// let rt = spindle::Runtime::builder().workers(1).build().unwrap();
/// rt.block_on(|| {
///     let ready = Arc::new(Notify::new());
///     let r = ready.clone();
///     let waiter = spindle::spawn(move || {
///         r.wait(); // parks until notified
///         "notified"
///     });
///     // Whether or not the coroutine waits yet, the notification counts:
///     // if it does not, a permit is stored and its `wait` returns at once.
///     ready.notify_one();
///     assert_eq!(waiter.join().unwrap(), "notified");
/// });
/// ```
pub struct Notify {
    state: Mutex<State>,
}

struct State {
    /// The stored permit (see the module docs for the invariant).
    notified: bool,
    waiters: WaitList,
}

impl Notify {
    /// A `Notify` with no stored permit.
    ///
    /// ```
    /// static READY: spindle::sync::Notify = spindle::sync::Notify::new();
    /// READY.notify_one();
    /// READY.wait(); // the stored permit: returns at once
    /// ```
    #[cfg(not(loom))]
    pub const fn new() -> Notify {
        Notify {
            state: Mutex::new(State {
                notified: false,
                waiters: WaitList::new(),
            }),
        }
    }

    /// A `Notify` with no stored permit (not `const` under loom, whose
    /// locks are not).
    #[cfg(loom)]
    pub fn new() -> Notify {
        Notify {
            state: Mutex::new(State {
                notified: false,
                waiters: WaitList::new(),
            }),
        }
    }

    /// Wakes the longest-waiting caller of [`wait`](Notify::wait), or, if
    /// nobody waits, stores a permit that the next `wait` consumes (at most
    /// one permit is stored).
    pub fn notify_one(&self) {
        let mut st = lock(&self.state);
        let claim = st.waiters.pop_claim(|_| false).map(|(_, claim)| claim);
        if claim.is_none() {
            st.notified = true;
        }
        drop(st);
        // Finishing the claim unparks the waiter: done after unlocking, so
        // it does not wake up only to find the lock still held.
        drop(claim);
    }

    /// Wakes every caller of [`wait`](Notify::wait) that is waiting now.
    /// Stores no permit: a `wait` that starts after this call waits for the
    /// next notification.
    pub fn notify_all(&self) {
        let mut wakeups = Wakeups::new();
        let mut st = lock(&self.state);
        wakeups.claim_all(&mut st.waiters);
        drop(st);
        wakeups.finish_all();
    }

    /// Blocks until notified: returns at once if a permit is stored
    /// (consuming it), otherwise parks until a [`notify_one`](Self::notify_one)
    /// chooses this caller or a [`notify_all`](Self::notify_all) wakes it.
    pub fn wait(&self) {
        while !self.wait_until(None) {}
    }

    /// Like [`wait`](Notify::wait), but gives up after `timeout`. Returns
    /// `true` if notified, `false` if the timeout passed first (a
    /// notification that races the timeout is never lost: it either counts
    /// for this call, which then returns `true`, or goes to another waiter
    /// or the stored permit).
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        // A timeout too large for `Instant` is no timeout.
        self.wait_until(Instant::now().checked_add(timeout))
    }

    /// Waits until notified or `deadline`; returns whether notified.
    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        let mut st = lock(&self.state);
        if st.notified {
            st.notified = false;
            return true;
        }
        // A notifier that claims us spends its notification on us; a wait
        // that gives up was never claimed, so none is lost.
        wait_in(
            st,
            |st| &mut st.waiters,
            0,
            WaitReason::Notify,
            deadline,
            self as *const Notify as usize,
            |node| {
                lock(&self.state).waiters.remove(node);
            },
        )
        .is_some()
    }
}

impl Default for Notify {
    fn default() -> Notify {
        Notify::new()
    }
}

impl fmt::Debug for Notify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = lock(&self.state);
        let (notified, waiters) = (st.notified, st.waiters.len());
        drop(st);
        f.debug_struct("Notify")
            .field("notified", &notified)
            .field("waiters", &waiters)
            .finish()
    }
}

/// Claims to finish once the primitive's lock is released, so that woken
/// parties do not run straight into the lock their waker still holds (as
/// tokio's `WakeList` does for wakers).
///
/// Holds up to [`Wakeups::CAPACITY`] claims inline; a wake-up of more
/// parties than that finishes each full batch under the caller's lock,
/// which is correct (a claim may be finished at any time) but makes the
/// woken parties wait for that lock a little.
///
/// Dropping it finishes what it holds (with token 0), so claims are
/// finished even if the caller unwinds.
pub(super) struct Wakeups {
    claims: [Option<Claim>; Wakeups::CAPACITY],
    len: usize,
}

impl Wakeups {
    /// Claims held before a batch is finished under the lock.
    const CAPACITY: usize = 16;

    /// An empty batch.
    pub(super) fn new() -> Wakeups {
        Wakeups {
            claims: [const { None }; Wakeups::CAPACITY],
            len: 0,
        }
    }

    /// Adds a claim (whose hand-off the caller has done) to be finished
    /// with token 0.
    pub(super) fn push(&mut self, claim: Claim) {
        if self.len == Wakeups::CAPACITY {
            self.finish_all();
        }
        self.claims[self.len] = Some(claim);
        self.len += 1;
    }

    /// Claims every waiter linked into `list` (called under its lock),
    /// emptying it: the release of a barrier's generation, a `notify_all`.
    pub(super) fn claim_all(&mut self, list: &mut WaitList) {
        while let Some((_, claim)) = list.pop_claim(|_| false) {
            self.push(claim);
        }
    }

    /// Finishes every claim held (unparking their waiters).
    pub(super) fn finish_all(&mut self) {
        for claim in &mut self.claims[..self.len] {
            drop(claim.take());
        }
        self.len = 0;
    }
}

impl Drop for Wakeups {
    fn drop(&mut self) {
        self.finish_all();
    }
}
