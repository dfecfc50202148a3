//! [`Semaphore`]: a counting semaphore with FIFO hand-off.
//!
//! # Algorithm
//!
//! One internal lock guards the whole state:
//!
//! | field     | meaning                                                          |
//! | --------- | ---------------------------------------------------------------- |
//! | `permits` | permits in the pool, not held by anyone                          |
//! | `waiters` | acquirers that could not be served, oldest first; each node's `data` is how many permits it asks for |
//!
//! The rule that makes it fair: **permits are taken from the pool directly
//! only when nobody waits.** An acquirer that finds waiters queues behind
//! them even if the pool could serve it, so a waiter asking for many
//! permits at the head of the queue is not starved by a stream of small
//! acquires that would otherwise keep the pool just below its need. (Go's
//! `golang.org/x/sync/semaphore.Weighted` follows the same rule.)
//!
//! Releasing puts the permits back in the pool, then *hands them off*:
//! while the waiter at the head asks for no more than the pool holds, the
//! releaser takes its permits out of the pool, pops and claims it, all
//! under the lock. The permits belong to the waiter from that moment; the
//! claim is finished (the waiter unparked) after the lock is released. So
//! a waiter whose timeout fires after it was claimed still gets its permits
//! ([`Waiter::wait`] returns the token rather than a time-out in that
//! case), and a waiter that aborted first was never given any: every
//! permit is always in exactly one place, the pool, a claimed waiter, or a
//! [`SemaphorePermit`].
//!
//! The hand-off stops at the first waiter it cannot serve, even if a later
//! one asks for less (that is the FIFO rule again). Whenever the head
//! changes otherwise, because the head waiter gave up (timed out or was
//! cancelled), the one that gave up runs the hand-off after unlinking
//! itself, so the waiters behind it are served if the pool allows: no
//! permits sit in the pool while a waiter that they would satisfy waits at
//! the head.
//!
//! Permits are counted in `usize`. Adding permits beyond `usize::MAX` in
//! the pool panics (after the lock is released).

use std::fmt;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::notify::Wakeups;
use super::wait::{Node, WaitList, Waiter, Woken};
use crate::loom::{Mutex, lock};
use crate::park::{self, WaitReason};

/// A counting semaphore for coroutines and threads.
///
/// A semaphore holds a number of permits. [`acquire`](Semaphore::acquire)
/// takes one, waiting if none is available; the returned
/// [`SemaphorePermit`] puts it back when dropped. The
/// [`acquire_many`](Semaphore::acquire_many) family takes several at once
/// (all or nothing). A waiting caller's coroutine is parked (its worker
/// runs others), or, called from a plain OS thread, the thread is; the wait
/// records [`WaitReason::Semaphore`].
///
/// **Fair (FIFO):** waiters are served in arrival order, and while anyone
/// waits a new acquirer queues behind them instead of taking permits from
/// the pool, so a large [`acquire_many`](Semaphore::acquire_many) is not
/// starved by a stream of small acquires. In return, a permit released
/// while a large request waits at the head of the queue stays in the pool,
/// reserved for it, until enough accumulate: [`try_acquire`] fails then,
/// even though [`available_permits`](Semaphore::available_permits) is not
/// zero.
///
/// [`acquire_owned`](Semaphore::acquire_owned) and its variants, called on
/// an `Arc<Semaphore>`, return an [`OwnedSemaphorePermit`] instead, which
/// holds the `Arc` and so can move into a spawned coroutine.
///
/// [`try_acquire`]: Semaphore::try_acquire
///
/// # Examples
///
/// At most two workers inside at once:
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use spindle::sync::Semaphore;
///
/// let rt = spindle::Runtime::builder().workers(2).build().unwrap();
/// rt.block_on(|| {
///     let sem = Arc::new(Semaphore::new(2));
///     let inside = Arc::new(AtomicUsize::new(0));
///     let handles: Vec<_> = (0..10)
///         .map(|_| {
///             let (sem, inside) = (sem.clone(), inside.clone());
///             spindle::spawn(move || {
///                 let _permit = sem.acquire(); // parks while two are inside
///                 assert!(inside.fetch_add(1, Ordering::SeqCst) < 2);
///                 spindle::yield_now();
///                 inside.fetch_sub(1, Ordering::SeqCst);
///             }) // the permit goes back here
///         })
///         .collect();
///     for h in handles {
///         h.join().unwrap();
///     }
///     assert_eq!(sem.available_permits(), 2);
/// });
/// ```
pub struct Semaphore {
    state: Mutex<State>,
}

struct State {
    /// Permits in the pool.
    permits: usize,
    /// Acquirers waiting; `Node::data` is the number of permits asked for.
    waiters: WaitList,
}

impl Semaphore {
    /// A semaphore with `permits` permits.
    ///
    /// ```
    /// static POOL: spindle::sync::Semaphore = spindle::sync::Semaphore::new(4);
    /// assert_eq!(POOL.available_permits(), 4);
    /// ```
    #[cfg(not(loom))]
    pub const fn new(permits: usize) -> Semaphore {
        Semaphore {
            state: Mutex::new(State {
                permits,
                waiters: WaitList::new(),
            }),
        }
    }

    /// A semaphore with `permits` permits (not `const` under loom, whose
    /// locks are not).
    #[cfg(loom)]
    pub fn new(permits: usize) -> Semaphore {
        Semaphore {
            state: Mutex::new(State {
                permits,
                waiters: WaitList::new(),
            }),
        }
    }

    /// Takes one permit, waiting until one is available (and every earlier
    /// waiter has been served).
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        self.acquire_many(1)
    }

    /// Takes one permit if one is available and nobody waits; never
    /// blocks.
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.try_acquire_many(1)
    }

    /// Like [`acquire`](Semaphore::acquire), but gives up after `timeout`
    /// and returns `None`. A permit released as the timeout fires is never
    /// lost: it is either handed to this call, which then returns it, or
    /// left to others.
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<SemaphorePermit<'_>> {
        self.acquire_many_timeout(1, timeout)
    }

    /// Takes `n` permits at once, waiting until `n` are available (and
    /// every earlier waiter has been served). Permits are not taken one by
    /// one: until all `n` can be had, none is.
    ///
    /// If `n` is more than the semaphore will ever hold, this waits forever
    /// (or until [`add_permits`](Semaphore::add_permits) makes it possible),
    /// and every later acquirer waits behind it.
    pub fn acquire_many(&self, n: usize) -> SemaphorePermit<'_> {
        crate::scheduler::coop::charge();
        loop {
            if let Some(permit) = self.acquire_until(n, None) {
                return permit;
            }
        }
    }

    /// Takes `n` permits if that many are available and nobody waits;
    /// never blocks.
    pub fn try_acquire_many(&self, n: usize) -> Option<SemaphorePermit<'_>> {
        let mut st = lock(&self.state);
        self.take_if_free(&mut st, n)
    }

    /// Like [`acquire_many`](Semaphore::acquire_many), but gives up after
    /// `timeout` and returns `None`, having taken no permit.
    pub fn acquire_many_timeout(&self, n: usize, timeout: Duration) -> Option<SemaphorePermit<'_>> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.acquire_until(n, Some(deadline)),
            // A timeout too large for `Instant` is no timeout.
            None => Some(self.acquire_many(n)),
        }
    }

    /// Adds `n` permits to the pool, serving waiters in order as far as
    /// the pool allows.
    ///
    /// # Panics
    ///
    /// If the pool would hold more than `usize::MAX` permits.
    pub fn add_permits(&self, n: usize) {
        self.release(n);
    }

    /// The permits in the pool now (a snapshot: it may change at once).
    ///
    /// Permits reserved for a waiter that needs more than the pool holds
    /// are counted (see the type's docs on fairness).
    pub fn available_permits(&self) -> usize {
        lock(&self.state).permits
    }

    /// Like [`acquire`](Semaphore::acquire), but the permit holds an `Arc`
    /// of the semaphore instead of a borrow, so it can be moved into a
    /// coroutine (`spawn` wants `'static`) and released there.
    ///
    /// See [`OwnedSemaphorePermit`] for an example.
    pub fn acquire_owned(self: Arc<Self>) -> OwnedSemaphorePermit {
        self.acquire_many_owned(1)
    }

    /// Like [`acquire_many`](Semaphore::acquire_many), with an owned permit
    /// (see [`acquire_owned`](Semaphore::acquire_owned)).
    pub fn acquire_many_owned(self: Arc<Self>, n: usize) -> OwnedSemaphorePermit {
        let permits = self.acquire_many(n).detach();
        OwnedSemaphorePermit { sem: self, permits }
    }

    /// Like [`try_acquire`](Semaphore::try_acquire), with an owned permit
    /// (see [`acquire_owned`](Semaphore::acquire_owned)).
    pub fn try_acquire_owned(self: Arc<Self>) -> Option<OwnedSemaphorePermit> {
        self.try_acquire_many_owned(1)
    }

    /// Like [`try_acquire_many`](Semaphore::try_acquire_many), with an
    /// owned permit (see [`acquire_owned`](Semaphore::acquire_owned)).
    pub fn try_acquire_many_owned(self: Arc<Self>, n: usize) -> Option<OwnedSemaphorePermit> {
        let permits = self.try_acquire_many(n)?.detach();
        Some(OwnedSemaphorePermit { sem: self, permits })
    }

    /// The fast path: takes `n` permits if nobody waits and the pool has
    /// them.
    fn take_if_free(&self, st: &mut State, n: usize) -> Option<SemaphorePermit<'_>> {
        if st.waiters.is_empty() && st.permits >= n {
            st.permits -= n;
            Some(SemaphorePermit {
                sem: self,
                permits: n,
            })
        } else {
            None
        }
    }

    /// Takes `n` permits, waiting until `deadline` if given. `None` if the
    /// deadline passed, or if shutdown cancelled the wait and the
    /// coroutine may not unwind (the caller then retries or gives up).
    fn acquire_until(&self, n: usize, deadline: Option<Instant>) -> Option<SemaphorePermit<'_>> {
        let mut st = lock(&self.state);
        if let Some(permit) = self.take_if_free(&mut st, n) {
            return Some(permit);
        }
        let waiter = pin!(Waiter::new());
        let node = pin!(Node::new(&waiter, 0, n));
        // SAFETY: `node` is new (so unlinked) and pinned on this stack
        // frame; a releaser pops it when it claims us, and otherwise we
        // unlink it below before the frame ends (wait.rs invariant 4).
        unsafe { st.waiters.push_back(&node) };
        drop(st);

        park::set_blocked_on(self as *const Semaphore as usize, 0);
        let woken = waiter.wait(WaitReason::Semaphore, deadline);
        park::set_blocked_on(0, 0);
        match woken {
            // A releaser took our `n` permits out of the pool for us before
            // it finished the claim.
            Woken::Token(_) => Some(SemaphorePermit {
                sem: self,
                permits: n,
            }),
            Woken::TimedOut | Woken::Cancelled => {
                // Aborted: nobody claimed us, so no permit was taken for
                // us. Leave the queue; if we were at its head, asking for
                // more than the pool holds, those behind us may be served
                // now.
                let mut wakeups = Wakeups::new();
                let mut st = lock(&self.state);
                st.waiters.remove(&node);
                Self::hand_off(&mut st, &mut wakeups);
                drop(st);
                wakeups.finish_all();
                if woken == Woken::Cancelled {
                    // Unwinds (the runtime shuts down), now that the node is
                    // unlinked and no lock is held.
                    park::cancellation_point();
                }
                None
            }
        }
    }

    /// Returns `n` permits to the pool and serves the waiters they allow.
    fn release(&self, n: usize) {
        let mut wakeups = Wakeups::new();
        let mut st = lock(&self.state);
        let Some(permits) = st.permits.checked_add(n) else {
            drop(st);
            panic!("Semaphore: more than usize::MAX permits");
        };
        st.permits = permits;
        Self::hand_off(&mut st, &mut wakeups);
        drop(st);
        wakeups.finish_all();
    }

    /// Serves waiters from the head of the queue while the pool can: takes
    /// each one's permits out of the pool and claims it (the claims go to
    /// `wakeups`, to be finished after unlocking). Stops at the first
    /// waiter asking for more than the pool holds.
    fn hand_off(st: &mut State, wakeups: &mut Wakeups) {
        while let Some(head) = st.waiters.front() {
            let want = head.data;
            // Not waiting means aborted (a claimed waiter is never linked),
            // for good: drop its node as it would itself, so that it does
            // not hold up the queue meanwhile.
            if head.waiter().is_waiting() && want > st.permits {
                break;
            }
            // Claim the head itself, not whoever `pop_claim` would find
            // behind it: only the head may be served.
            let claim = st.waiters.pop_front().and_then(|n| n.waiter().try_claim());
            if let Some(claim) = claim {
                // The hand-off: the permits are the waiter's from now on,
                // even if its timeout fires before the claim is finished.
                st.permits -= want;
                wakeups.push(claim);
            }
            // Else it aborted since we looked: it finds its node unlinked.
        }
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = lock(&self.state);
        let (permits, waiters) = (st.permits, st.waiters.len());
        drop(st);
        f.debug_struct("Semaphore")
            .field("permits", &permits)
            .field("waiters", &waiters)
            .finish()
    }
}

/// Permits taken from a [`Semaphore`]; dropping it puts them back (and
/// serves waiters they allow).
///
/// Returned by [`Semaphore::acquire`] and its variants.
/// [`forget`](SemaphorePermit::forget) keeps the permits out of the pool
/// for good instead.
///
/// # Examples
///
/// ```
/// use spindle::sync::Semaphore;
///
/// let sem = Semaphore::new(3);
/// let two = sem.acquire_many(2);
/// assert_eq!(two.num_permits(), 2);
/// assert_eq!(sem.available_permits(), 1);
/// drop(two);
/// assert_eq!(sem.available_permits(), 3);
///
/// sem.acquire().forget(); // the semaphore now holds 2 permits in all
/// assert_eq!(sem.available_permits(), 2);
/// ```
#[must_use = "dropping the permit releases it at once"]
pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
    permits: usize,
}

impl SemaphorePermit<'_> {
    /// How many permits this holds.
    pub fn num_permits(&self) -> usize {
        self.permits
    }

    /// Keeps the permits out of the semaphore for good: the semaphore
    /// holds that many fewer from now on (until
    /// [`add_permits`](Semaphore::add_permits) adds some).
    pub fn forget(mut self) {
        self.permits = 0;
    }

    /// Takes the permits out of this guard, for an owned one to hold.
    fn detach(mut self) -> usize {
        std::mem::take(&mut self.permits)
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        if self.permits > 0 {
            self.sem.release(self.permits);
        }
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit")
            .field("permits", &self.permits)
            .finish_non_exhaustive()
    }
}

/// Permits taken from an `Arc<`[`Semaphore`]`>`; like [`SemaphorePermit`],
/// but it holds the `Arc` instead of a borrow, so it is `'static` and can
/// be moved into a coroutine.
///
/// Returned by [`Semaphore::acquire_owned`] and its variants. Dropping it
/// puts the permits back; [`forget`](OwnedSemaphorePermit::forget) keeps
/// them out for good instead.
///
/// # Examples
///
/// At most four coroutines of a thousand running at once, the permit
/// taken before each is spawned:
///
/// ```
/// use std::sync::Arc;
/// use spindle::sync::Semaphore;
///
/// let rt = spindle::Runtime::builder().workers(2).build().unwrap();
/// rt.block_on(|| {
///     let slots = Arc::new(Semaphore::new(4));
///     let handles: Vec<_> = (0..1000)
///         .map(|i| {
///             let permit = slots.clone().acquire_owned(); // parks while 4 run
///             spindle::spawn(move || {
///                 let _permit = permit; // released when the coroutine ends
///                 i * 2
///             })
///         })
///         .collect();
///     let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
///     assert_eq!(sum, 999_000);
///     assert_eq!(slots.available_permits(), 4);
/// });
/// ```
#[must_use = "dropping the permit releases it at once"]
pub struct OwnedSemaphorePermit {
    sem: Arc<Semaphore>,
    permits: usize,
}

impl OwnedSemaphorePermit {
    /// How many permits this holds.
    pub fn num_permits(&self) -> usize {
        self.permits
    }

    /// The semaphore the permits came from.
    pub fn semaphore(&self) -> &Arc<Semaphore> {
        &self.sem
    }

    /// Keeps the permits out of the semaphore for good, as
    /// [`SemaphorePermit::forget`] does.
    pub fn forget(mut self) {
        self.permits = 0;
    }
}

impl Drop for OwnedSemaphorePermit {
    fn drop(&mut self) {
        if self.permits > 0 {
            self.sem.release(self.permits);
        }
    }
}

impl fmt::Debug for OwnedSemaphorePermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedSemaphorePermit")
            .field("permits", &self.permits)
            .finish_non_exhaustive()
    }
}
