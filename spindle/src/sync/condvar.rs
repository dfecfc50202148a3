//! A condition variable for spindle's [`Mutex`].
//!
//! # The algorithm
//!
//! A `Condvar` is a wait queue (a [`WaitList`]) behind a small internal
//! lock, plus a count of its nodes that notifiers read without the lock.
//!
//! `wait(guard)`:
//!
//! 1. links a node for the caller into the queue (under the internal lock);
//! 2. *then* releases the mutex;
//! 3. parks until a notifier claims the node, or the timeout passes;
//! 4. locks the mutex again.
//!
//! Because the node is linked before the mutex is released, a notifier
//! that changes the condition under the mutex and then notifies always
//! finds it: no notification is lost between "checked the condition" and
//! "went to sleep".
//!
//! `notify_one` claims the first node whose waiter has not given up (a
//! timed-out waiter races the notifier by compare-and-swap on its waiter,
//! so a notification goes either to a waiter that returns as notified, or
//! to the next one); `notify_all` claims every node queued when it was
//! called. A claimed waiter is unlinked by the notifier, so it never
//! touches the queue again: waking it is the claim's finish.
//!
//! # Skipping the lock when nobody waits
//!
//! `notify_*` first reads the node count with a Relaxed load and returns
//! if it is 0, as parking_lot's `Condvar` does. A waiter publishes its node
//! (count included) before it releases the mutex; a notifier that must
//! wake it changed the condition under that mutex after the waiter
//! released it, so the count's update happens before the notifier's load.
//! A notifier that does not synchronise through the mutex has no
//! guarantee with any condition variable.
//!
//! # Spurious wake-ups
//!
//! This implementation returns from a wait only when notified, timed out,
//! or (in a coroutine that shutdown cancels but that may not unwind at
//! that moment) early. Callers must still re-check their condition in a
//! loop, as with every condition variable: another locker may have changed
//! it between the notification and the re-lock. [`Condvar::wait_while`]
//! does the loop.

use std::fmt;
use std::pin::pin;
use std::time::{Duration, Instant};

use crate::loom::{AtomicUsize, Ordering};
use crate::park::{self, WaitReason};
use crate::sync::wait::{Node, WaitList, Waiter, Woken};
use crate::sync::{Mutex, MutexGuard};

/// Claim token of a notification.
const NOTIFIED: usize = 1;

/// Whether a timed wait on a [`Condvar`] returned because of the timeout.
///
/// ```
/// use std::time::Duration;
/// use spindle::sync::{Condvar, Mutex};
///
/// let (m, cv) = (Mutex::new(()), Condvar::new());
/// let (_guard, res) = cv.wait_timeout(m.lock(), Duration::from_millis(1));
/// assert!(res.timed_out());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// Whether the wait ended because the timeout passed (for the
    /// `_while` variants: with the condition still true).
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

/// A condition variable: parks coroutines (or threads) until another
/// notifies them, for use with spindle's [`Mutex`].
///
/// Shaped like [`std::sync::Condvar`]. Waiting parks the calling
/// coroutine, not its worker. A waiter is queued before the mutex is
/// released, so a notification sent after a condition change made under
/// the mutex is never lost. Waits may return spuriously (see the module
/// source): re-check the condition, or use [`wait_while`](Condvar::wait_while).
///
/// One condition variable may be used with several mutexes (unlike std's,
/// which panics); each wait re-locks the mutex its guard came from.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use spindle::sync::{Condvar, Mutex};
///
/// let rt = spindle::Runtime::builder().workers(1).build().unwrap();
/// rt.block_on(|| {
///     let pair = Arc::new((Mutex::new(false), Condvar::new()));
///     let pair2 = pair.clone();
///     spindle::spawn(move || {
///         let (ready, cv) = &*pair2;
///         *ready.lock() = true;
///         cv.notify_one();
///     });
///     let (ready, cv) = &*pair;
///     let guard = cv.wait_while(ready.lock(), |ready| !*ready);
///     assert!(*guard);
/// });
/// ```
pub struct Condvar {
    /// How many nodes `queue` holds, updated under its lock; read without
    /// it by `notify_*` (see the module docs).
    len: AtomicUsize,
    queue: crate::loom::Mutex<WaitList>,
}

impl Condvar {
    /// A condition variable with no waiters.
    #[cfg(not(loom))]
    pub const fn new() -> Condvar {
        Condvar {
            len: AtomicUsize::new(0),
            queue: crate::loom::Mutex::new(WaitList::new()),
        }
    }

    /// A condition variable with no waiters.
    #[cfg(loom)]
    pub fn new() -> Condvar {
        Condvar {
            len: AtomicUsize::new(0),
            queue: crate::loom::Mutex::new(WaitList::new()),
        }
    }

    /// Releases the guard's mutex, parks until notified, and locks the
    /// mutex again.
    ///
    /// May return without a notification (see the type's docs).
    ///
    /// # Panics
    ///
    /// Does not panic. In a coroutine that runtime shutdown cancels while
    /// it waits, unwinds with [`Cancelled`](crate::Cancelled), without the
    /// lock.
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.wait_until(guard, None).0
    }

    /// Waits until `condition` returns `false`, re-checking it (with the
    /// lock held) after every wake-up. Returns at once if it is already
    /// `false`.
    ///
    /// ```
    /// use spindle::sync::{Condvar, Mutex};
    /// let (m, cv) = (Mutex::new(3), Condvar::new());
    /// let g = cv.wait_while(m.lock(), |n| *n == 0); // already non-zero
    /// assert_eq!(*g, 3);
    /// ```
    pub fn wait_while<'a, T: ?Sized, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: F,
    ) -> MutexGuard<'a, T>
    where
        F: FnMut(&mut T) -> bool,
    {
        while condition(&mut *guard) {
            guard = self.wait(guard);
        }
        guard
    }

    /// Like [`wait`](Condvar::wait), but gives up after `timeout`. The
    /// result says whether the timeout passed (at least `timeout` after
    /// the call) rather than a notification arriving.
    pub fn wait_timeout<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> (MutexGuard<'a, T>, WaitTimeoutResult) {
        let (guard, timed_out) = self.wait_until(guard, Instant::now().checked_add(timeout));
        (guard, WaitTimeoutResult(timed_out))
    }

    /// Like [`wait_while`](Condvar::wait_while), but gives up after
    /// `timeout` in all. The result says whether it gave up with the
    /// condition still `true`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use spindle::sync::{Condvar, Mutex};
    /// let (m, cv) = (Mutex::new(false), Condvar::new());
    /// let (g, res) = cv.wait_timeout_while(m.lock(), Duration::from_millis(1), |set| !*set);
    /// assert!(res.timed_out() && !*g);
    /// ```
    pub fn wait_timeout_while<'a, T: ?Sized, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        timeout: Duration,
        mut condition: F,
    ) -> (MutexGuard<'a, T>, WaitTimeoutResult)
    where
        F: FnMut(&mut T) -> bool,
    {
        let deadline = Instant::now().checked_add(timeout);
        while condition(&mut *guard) {
            let timed_out;
            (guard, timed_out) = self.wait_until(guard, deadline);
            if timed_out {
                let still = condition(&mut *guard);
                return (guard, WaitTimeoutResult(still));
            }
        }
        (guard, WaitTimeoutResult(false))
    }

    /// Wakes one waiter, if any waits: the one that has waited longest.
    pub fn notify_one(&self) {
        // Relaxed: see the module docs.
        if self.len.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut queue = crate::loom::lock(&self.queue);
        let claim = queue.pop_claim(|_| false).map(|(_, claim)| claim);
        self.len.store(queue.len(), Ordering::Relaxed);
        drop(queue);
        if let Some(claim) = claim {
            claim.finish(NOTIFIED);
        }
    }

    /// Wakes every waiter queued now.
    pub fn notify_all(&self) {
        // Relaxed: see the module docs.
        if self.len.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut queue = crate::loom::lock(&self.queue);
        // Finished under the lock: a woken waiter goes on to lock its
        // mutex, never this queue, so nobody stalls on us meanwhile, and
        // claims need no allocation to be kept until after the unlock.
        while let Some((_, claim)) = queue.pop_claim(|_| false) {
            claim.finish(NOTIFIED);
        }
        self.len.store(0, Ordering::Relaxed);
    }

    /// The wait: queue, unlock, park, re-lock. Returns whether it timed
    /// out.
    fn wait_until<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Option<Instant>,
    ) -> (MutexGuard<'a, T>, bool) {
        let waiter = pin!(Waiter::new());
        let node = pin!(Node::new(&waiter, 0, 0));
        {
            let mut queue = crate::loom::lock(&self.queue);
            // SAFETY: `node` and `waiter` are pinned in this frame, which
            // unlinks the node before they go (invariant 4 of `wait.rs`):
            // a notifier pops it, or the abort below removes it under the
            // lock. It is linked nowhere else.
            unsafe { queue.push_back(&node) };
            self.len.store(queue.len(), Ordering::Relaxed);
        }
        // Only now: a notifier that saw the condition under the mutex
        // finds the node.
        let mutex: &'a Mutex<T> = MutexGuard::unlock(guard);

        park::set_blocked_on(self as *const Condvar as usize, 0);
        let woke = waiter.wait(WaitReason::Condvar, deadline);
        park::set_blocked_on(0, 0);
        let timed_out = match woke {
            Woken::Token(_) => false,
            Woken::TimedOut | Woken::Cancelled => {
                let mut queue = crate::loom::lock(&self.queue);
                queue.remove(&node);
                self.len.store(queue.len(), Ordering::Relaxed);
                drop(queue);
                if woke == Woken::Cancelled {
                    // Unwinds without the lock (the caller's guard is
                    // gone). If it may not unwind now, this wait ends
                    // early, as a spurious wake-up.
                    park::cancellation_point();
                }
                woke == Woken::TimedOut
            }
        };
        (mutex.lock(), timed_out)
    }
}

impl Default for Condvar {
    fn default() -> Condvar {
        Condvar::new()
    }
}

/// Shows how many callers wait: `Condvar { waiters: 0, .. }`.
impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let waiters = crate::loom::lock(&self.queue).len();
        f.debug_struct("Condvar")
            .field("waiters", &waiters)
            .finish_non_exhaustive()
    }
}
