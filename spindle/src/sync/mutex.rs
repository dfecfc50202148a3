//! A mutual-exclusion lock that parks the coroutine, with Go's fairness.
//!
//! # The algorithm
//!
//! The lock is one atomic state word and a wait queue (a [`WaitList`])
//! behind a small internal lock. The uncontended path touches only the
//! word: `lock` is one compare-and-swap `0 → LOCKED` (Acquire), `unlock`
//! one compare-and-swap `LOCKED → 0` (Release). Anything else in the word
//! (waiters, a woken waiter, starvation mode) makes that compare-and-swap
//! fail and sends the caller to the cold slow path, which is Go's
//! `sync.Mutex` (`src/sync/mutex.go`) on spindle's wait queues:
//!
//! - **Normal mode.** Unlock clears `LOCKED` and, if some waiter is parked
//!   and none is already awake, wakes the first one (`WOKEN` says one is
//!   awake, so each unlock does not wake another). The woken waiter does
//!   not own the lock: it competes for it with newly arriving lockers,
//!   which usually win (they are running, and their cache holds the
//!   line). That barging is what makes normal mode fast. A waiter that
//!   loses goes back to the *front* of the queue.
//! - **Starvation mode.** A waiter that has waited longer than the
//!   starvation threshold (1 ms) sets `STARVING` when it queues again. From
//!   then on, unlock hands the lock directly to the first waiter: it
//!   leaves `LOCKED` set and finishes the waiter's claim with a hand-off
//!   token, so there is no moment at which a newcomer could take the lock;
//!   newcomers queue at the back. Starvation mode ends when the lock is
//!   handed to the last waiter, or to one that waited less than the
//!   threshold (the queue is moving again).
//!
//! Before parking, a locker spins briefly (`SPIN_ROUNDS` rounds of
//! `SPIN_PAUSES` pause instructions) if that can help: on a plain thread,
//! or in a coroutine whose runtime has more than one worker, the owner may
//! be running on another CPU and release the lock within nanoseconds. With
//! a single worker the owner is a coroutine of this very thread, which
//! cannot run while we spin, so the locker queues at once. A spinner that
//! sees parked waiters sets `WOKEN`, so the unlock it is waiting for does
//! not also wake a sleeper to compete with it (Go does the same).
//!
//! # The state word
//!
//! | bit           | meaning                                   | set by                                   | cleared by |
//! | ------------- | ----------------------------------------- | ---------------------------------------- | ---------- |
//! | `LOCKED`      | someone owns the lock                     | the locker's CAS                         | normal-mode unlock; starvation-mode unlock only when no waiter is left to take it |
//! | `HAS_WAITERS` | the wait queue is not empty               | a waiter, under the queue lock, in the CAS that checks `LOCKED` | whoever empties the queue, under the queue lock |
//! | `WOKEN`       | a woken waiter or a spinner will retry: unlock wakes nobody else | normal-mode unlock (to wake one); a spinner that sees parked waiters | that party, in its next CAS (acquiring, queueing, or giving up) |
//! | `STARVING`    | starvation mode: unlock hands off         | a waiter that waited too long, under the queue lock, in a CAS that checks `LOCKED` | the hand-off (queue now empty); the new owner (waited briefly); the unlock that found no waiter |
//!
//! Invariants (they are what makes the protocol lose no wake-up):
//!
//! 1. `HAS_WAITERS` is set exactly when the queue is non-empty, whenever the
//!    queue lock is free: it changes only under that lock.
//! 2. `STARVING` implies `LOCKED`. It is set only by a CAS that sees
//!    `LOCKED`, and the only unlock that clears `LOCKED` in starvation mode
//!    clears `STARVING` with it. So a free mutex is never owed to anyone,
//!    and a newcomer that finds it free may take it.
//! 3. A waiter parks only after a CAS that saw `LOCKED` set `HAS_WAITERS`
//!    (or found it set). The owner's unlock then fails its fast-path CAS
//!    and, in the slow path, takes the queue lock, under which the waiter
//!    linked its node: the node is found.
//! 4. While `WOKEN` is set, some party that is not parked will look at
//!    the lock again, and it clears `WOKEN` only in a CAS that either takes
//!    the lock or sees `LOCKED` (so an owner exists whose unlock will wake
//!    the next waiter).
//!
//! # Memory orderings
//!
//! Acquiring CASes are Acquire and releasing ones Release, pairing with
//! each other. A hand-off passes the critical section's writes through
//! the waiter's state word instead: the claim's finish is a Release store
//! that the waiter's `wait` reads with Acquire. Every other change of the
//! word is a Relaxed read-modify-write: the bits it moves are either
//! ordered by the queue lock (`HAS_WAITERS`, `STARVING`) or publish no
//! data (`WOKEN`), and being read-modify-writes they never break the
//! release sequence that an unlock heads.
//!
//! # Poisoning
//!
//! None, as in parking_lot, tokio and Go: [`Mutex::lock`] returns the guard
//! directly. A coroutine that panics while holding a guard unlocks the
//! mutex while it unwinds, like any other owner that drops its guard. The
//! data may be half-updated; code that must know can keep a flag in the
//! data (set at the start of an update, cleared at its end) or wrap the
//! mutex in a type that records `std::thread::panicking()` in its guard's
//! drop. Poisoning also relies on std's per-thread panic count, which a
//! coroutine parked mid-unwind leaves set for its whole worker thread
//! (ARCHITECTURE.md, invariant 6), so it could report panics that did not
//! happen in the critical section.

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::pin::pin;
use std::time::{Duration, Instant};

use crate::loom::{AtomicU32, AtomicUsize, Ordering};
use crate::park::{self, WaitReason};
use crate::sync::wait::{Node, WaitList, Waiter, Woken};

/// Someone owns the lock.
const LOCKED: u32 = 1;
/// The wait queue is not empty.
const HAS_WAITERS: u32 = 1 << 1;
/// A woken waiter (or a spinner) will retry; unlock need not wake anyone.
const WOKEN: u32 = 1 << 2;
/// Starvation mode: unlock hands the lock to the first waiter.
const STARVING: u32 = 1 << 3;

/// Claim token: the lock is yours (`LOCKED` was never cleared).
const HANDOFF: usize = 1;
/// Claim token: the lock was released; compete for it again. (A claim
/// dropped unfinished says 0, which is also a retry, never ownership.)
const RETRY: usize = 2;

/// How long a waiter may wait before the mutex switches to starvation
/// mode; Go's `starvationThresholdNs`.
const STARVATION_THRESHOLD: Duration = Duration::from_millis(1);

/// Spin rounds before parking (Go's `active_spin`), and pause instructions
/// per round (`active_spin_cnt`).
const SPIN_ROUNDS: u32 = 4;
const SPIN_PAUSES: u32 = 30;

/// Why a timed or cancellable acquisition gave up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Abort {
    /// The deadline passed.
    TimedOut,
    /// Shutdown cancelled the coroutine: call
    /// [`park::cancellation_point`], then retry if it returns.
    Cancelled,
}

/// The lock without the data: what [`Mutex`] and [`Condvar`](super::Condvar)
/// use.
pub(crate) struct RawMutex {
    /// The state word (see the module docs).
    state: AtomicU32,
    /// The owner's [`park::current_owner_tag`] (0: a plain thread, or
    /// none), for introspection only: Relaxed.
    owner: AtomicUsize,
    /// The starvation threshold in nanoseconds; immutable.
    starve_after_ns: u64,
    /// The parked lockers, in the order they will be served.
    waiters: crate::loom::Mutex<WaitList>,
}

impl RawMutex {
    #[cfg(not(loom))]
    const fn with_threshold_ns(starve_after_ns: u64) -> RawMutex {
        RawMutex {
            state: AtomicU32::new(0),
            owner: AtomicUsize::new(0),
            starve_after_ns,
            waiters: crate::loom::Mutex::new(WaitList::new()),
        }
    }

    // loom's atomics and locks have no `const fn new`.
    #[cfg(loom)]
    fn with_threshold_ns(starve_after_ns: u64) -> RawMutex {
        RawMutex {
            state: AtomicU32::new(0),
            owner: AtomicUsize::new(0),
            starve_after_ns,
            waiters: crate::loom::Mutex::new(WaitList::new()),
        }
    }

    /// Acquires the lock, parking as long as it takes. A coroutine that
    /// shutdown cancels unwinds from here (without the lock).
    #[inline]
    pub(crate) fn lock(&self) {
        // Acquire: pairs with the Release of the unlock that freed it.
        if self
            .state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
        self.owner
            .store(park::current_owner_tag(), Ordering::Relaxed);
    }

    #[cold]
    #[inline(never)]
    fn lock_contended(&self) {
        while let Err(abort) = self.lock_slow(None) {
            debug_assert_eq!(abort, Abort::Cancelled, "no deadline, no timeout");
            // Unwinds, unless this coroutine may not unwind now; then
            // keep waiting.
            park::cancellation_point();
        }
    }

    /// Takes the lock if it is free.
    #[inline]
    pub(crate) fn try_lock(&self) -> bool {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            // A free mutex is owed to nobody (invariant 2), so taking it
            // jumps no queue that starvation mode protects.
            if state & LOCKED != 0 {
                return false;
            }
            // Acquire: as in `lock`.
            match self.state.compare_exchange_weak(
                state,
                state | LOCKED,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(s) => state = s,
            }
        }
        self.owner
            .store(park::current_owner_tag(), Ordering::Relaxed);
        true
    }

    /// Acquires the lock unless `deadline` passes first. Never loses
    /// ownership: if the lock was handed over as the deadline passed, it
    /// is taken.
    pub(crate) fn lock_until(&self, deadline: Instant) -> bool {
        if self.try_lock() {
            return true;
        }
        loop {
            match self.lock_slow(Some(deadline)) {
                Ok(()) => break,
                Err(Abort::TimedOut) => return false,
                Err(Abort::Cancelled) => park::cancellation_point(),
            }
        }
        self.owner
            .store(park::current_owner_tag(), Ordering::Relaxed);
        true
    }

    /// Releases the lock.
    ///
    /// # Safety
    /// The caller owns the lock (acquired it and has not released it).
    #[inline]
    pub(crate) unsafe fn unlock(&self) {
        self.owner.store(0, Ordering::Relaxed);
        // Release: publishes the critical section to the next locker's
        // Acquire. Fails when any other bit is set: then the slow path.
        if self
            .state
            .compare_exchange(LOCKED, 0, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            self.unlock_slow();
        }
    }

    /// The address introspection reports for this lock.
    fn resource(&self) -> usize {
        self as *const RawMutex as usize
    }

    /// How many lockers are parked (for `Debug`).
    fn waiters(&self) -> usize {
        crate::loom::lock(&self.waiters).len()
    }

    /// The contended acquisition: spin, queue, park; repeat after a
    /// normal-mode wake-up, return on a hand-off.
    #[cold]
    #[inline(never)]
    fn lock_slow(&self, deadline: Option<Instant>) -> Result<(), Abort> {
        // Whether we hold `WOKEN` (set for us by an unlock that woke us,
        // or by ourselves while spinning): our next CAS must clear it.
        let mut woken = false;
        let mut spins = 0;
        // When we first queued: for starvation, and to re-queue at the
        // front after losing a race (Go's LIFO re-queue).
        let mut queued_at: Option<Instant> = None;
        let may_spin = spinning_may_help();
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & LOCKED == 0 {
                // Free, so owed to nobody (invariant 2): take it.
                let new = (state | LOCKED) & !if woken { WOKEN } else { 0 };
                // Acquire: pairs with the Release of the unlock that freed it.
                match self.state.compare_exchange_weak(
                    state,
                    new,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Ok(()),
                    Err(s) => {
                        state = s;
                        continue;
                    }
                }
            }
            // In starvation mode the lock goes to the queue: spinning
            // cannot win it.
            if may_spin && spins < SPIN_ROUNDS && state & STARVING == 0 {
                if !woken
                    && state & (WOKEN | HAS_WAITERS) == HAS_WAITERS
                    && self
                        .state
                        .compare_exchange_weak(
                            state,
                            state | WOKEN,
                            Ordering::Relaxed,
                            Ordering::Relaxed,
                        )
                        .is_ok()
                {
                    woken = true;
                }
                for _ in 0..SPIN_PAUSES {
                    std::hint::spin_loop();
                }
                spins += 1;
                state = self.state.load(Ordering::Relaxed);
                continue;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return self.give_up(woken);
            }

            let first = queued_at.unwrap_or_else(Instant::now);
            let starving = nanos_since(first) >= u128::from(self.starve_after_ns);
            let waiter = pin!(Waiter::new());
            let node = pin!(Node::new(&waiter, 0, 0));
            if !self.enqueue(&node, woken, starving, queued_at.is_some()) {
                // The lock was released meanwhile: take it (our CAS also
                // clears `WOKEN` if we hold it).
                state = self.state.load(Ordering::Relaxed);
                continue;
            }
            // `enqueue` cleared `WOKEN` if we held it; every way out of
            // the wait below either returns or sets `woken` anew.
            queued_at = Some(first);

            park::set_blocked_on(self.resource(), self.owner.load(Ordering::Relaxed));
            let woke = waiter.wait(WaitReason::Mutex, deadline);
            park::set_blocked_on(0, 0);
            match woke {
                Woken::Token(HANDOFF) => {
                    // Ours, with `LOCKED` never cleared; the claim's
                    // Release/Acquire published the critical section.
                    // Go's rule for leaving starvation mode: the queue
                    // moves again if we did not wait long. (If we were the
                    // last waiter, the unlock already left it.)
                    if nanos_since(first) < u128::from(self.starve_after_ns) {
                        self.state.fetch_and(!STARVING, Ordering::Relaxed);
                    }
                    return Ok(());
                }
                Woken::Token(_) => {
                    // Normal mode: the unlock cleared `LOCKED` and left
                    // `WOKEN` set for us. Compete again, spinning anew.
                    woken = true;
                    spins = 0;
                    state = self.state.load(Ordering::Relaxed);
                }
                Woken::TimedOut | Woken::Cancelled => {
                    let mut waiters = crate::loom::lock(&self.waiters);
                    waiters.remove(&node);
                    if waiters.is_empty() {
                        // Invariant 1.
                        self.state.fetch_and(!HAS_WAITERS, Ordering::Relaxed);
                    }
                    drop(waiters);
                    return Err(if woke == Woken::Cancelled {
                        Abort::Cancelled
                    } else {
                        Abort::TimedOut
                    });
                }
            }
        }
    }

    /// Links `node` into the queue if the lock is still held, announcing
    /// it in the state word first; returns `false` (not linked) if the
    /// lock is free. Clears `WOKEN` if we hold it (`woken`), sets
    /// `STARVING` if we are `starving`.
    fn enqueue(&self, node: &Node, woken: bool, starving: bool, front: bool) -> bool {
        let mut waiters = crate::loom::lock(&self.waiters);
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & LOCKED == 0 {
                return false;
            }
            let mut new = state | HAS_WAITERS;
            if woken {
                new &= !WOKEN;
            }
            if starving {
                new |= STARVING;
            }
            // Relaxed: the queue lock orders this against the unlocker's
            // slow path, which is all that reads the node (invariant 3).
            match self
                .state
                .compare_exchange_weak(state, new, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(s) => state = s,
            }
        }
        // SAFETY: `node` and its waiter are pinned in `lock_slow`'s frame,
        // which removes the node (invariant 4 of `wait.rs`) before they
        // go: a hand-off pops it, and an aborted wait locks the queue and
        // removes it. It is linked nowhere else.
        unsafe {
            if front {
                waiters.push_front(node);
            } else {
                waiters.push_back(node);
            }
        }
        true
    }

    /// A locker whose deadline passed before it queued. If it holds
    /// `WOKEN` it must hand that duty on (invariant 4): it clears the bit
    /// only while `LOCKED` is set, and takes the lock if it is free.
    fn give_up(&self, woken: bool) -> Result<(), Abort> {
        if !woken {
            return Err(Abort::TimedOut);
        }
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            let attempt = if state & LOCKED == 0 {
                // Acquire: as in `lock`.
                self.state.compare_exchange_weak(
                    state,
                    (state | LOCKED) & !WOKEN,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                )
            } else {
                self.state.compare_exchange_weak(
                    state,
                    state & !WOKEN,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
            };
            match attempt {
                // We took the (free) lock: better than a timeout.
                Ok(old) if old & LOCKED == 0 => return Ok(()),
                // The owner's unlock will wake the next waiter.
                Ok(_) => return Err(Abort::TimedOut),
                Err(s) => state = s,
            }
        }
    }

    /// The unlock when any bit besides `LOCKED` is set.
    #[cold]
    #[inline(never)]
    fn unlock_slow(&self) {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & STARVING != 0 {
                // Only we (the owner) or a hand-off recipient clear it,
                // so it stays set until `hand_off` looks.
                self.hand_off();
                return;
            }
            // Wake one waiter unless one is awake already.
            let wake = state & (HAS_WAITERS | WOKEN) == HAS_WAITERS;
            let new = (state & !LOCKED) | if wake { WOKEN } else { 0 };
            // Release: as in `unlock`.
            match self
                .state
                .compare_exchange_weak(state, new, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => {
                    if wake {
                        self.wake_one();
                    }
                    return;
                }
                Err(s) => state = s,
            }
        }
    }

    /// Normal mode: wakes the first waiter that can be woken, for it to
    /// compete for the (already released) lock. We hold `WOKEN`.
    fn wake_one(&self) {
        let mut waiters = crate::loom::lock(&self.waiters);
        let claim = waiters.pop_claim(|_| false).map(|(_, claim)| claim);
        match claim {
            Some(claim) => {
                if waiters.is_empty() {
                    // Invariant 1. `WOKEN` stays: the claimed waiter owns it.
                    self.state.fetch_and(!HAS_WAITERS, Ordering::Relaxed);
                }
                drop(waiters);
                claim.finish(RETRY);
            }
            None => {
                // Every waiter gave up (and `pop_claim` unlinked them all):
                // nobody to wake, nobody to hold `WOKEN`.
                self.state
                    .fetch_and(!(HAS_WAITERS | WOKEN), Ordering::Relaxed);
            }
        }
    }

    /// Starvation mode: gives the lock to the first waiter, leaving
    /// `LOCKED` set.
    fn hand_off(&self) {
        let mut waiters = crate::loom::lock(&self.waiters);
        let claim = waiters.pop_claim(|_| false).map(|(_, claim)| claim);
        match claim {
            Some(claim) => {
                if waiters.is_empty() {
                    // The last waiter: starvation is over (Go's rule).
                    self.state
                        .fetch_and(!(HAS_WAITERS | STARVING), Ordering::Relaxed);
                }
                drop(waiters);
                // Release (inside `finish`): our critical section is
                // visible to the new owner's Acquire in `wait`.
                claim.finish(HANDOFF);
            }
            None => {
                // Every waiter gave up: unlock, leaving starvation mode in
                // the same step (invariant 2). Release: as in `unlock`.
                self.state
                    .fetch_and(!(LOCKED | HAS_WAITERS | STARVING), Ordering::Release);
            }
        }
    }
}

/// How long ago `since` was, in nanoseconds: how long a waiter has waited.
/// Always 0 under loom, where time does not pass (as in
/// `loom::thread::park_until`): a model must not behave differently
/// depending on how fast it happens to run.
fn nanos_since(since: Instant) -> u128 {
    if cfg!(loom) {
        0
    } else {
        since.elapsed().as_nanos()
    }
}

/// Whether a locker that finds the lock held should spin before parking:
/// only if the owner may be running on another CPU right now.
fn spinning_may_help() -> bool {
    // Under loom, spinning is only more interleavings that prove nothing.
    if cfg!(loom) {
        return false;
    }
    match crate::scheduler::worker::context() {
        // A plain thread: the owner may run anywhere.
        None => true,
        // With one worker, the owner is a coroutine of this thread: it
        // cannot release the lock while we spin.
        Some(cx) => {
            // SAFETY: `context()` is the live context of this thread's
            // worker, used before any switch.
            let cx = unsafe { &*cx };
            cx.shared.config.workers > 1
        }
    }
}

/// A mutual-exclusion lock protecting a `T`, for coroutines and threads.
///
/// [`lock`](Mutex::lock) parks the calling coroutine while another holds
/// the lock, so its worker runs other coroutines meanwhile; from a plain
/// OS thread it parks the thread. The uncontended lock and unlock are one
/// atomic instruction each.
///
/// **Fairness**, as Go's `sync.Mutex`: newly arriving lockers may take
/// the lock ahead of parked ones (fast), but a waiter that has waited more
/// than 1 ms switches the mutex to starvation mode, where unlock hands the
/// lock directly to the oldest waiter. No waiter waits forever.
///
/// **No poisoning**: [`lock`](Mutex::lock) returns the guard itself. A
/// coroutine that panics in its critical section releases the lock as it
/// unwinds; the data may be left half-updated, so if that matters, record
/// it in the data (see the module source for why spindle does not
/// poison).
///
/// The guard is `!Send`, like std's: it is released by whoever acquired
/// it. A guard may be held across blocking calls (`sleep`, `recv`,
/// `yield_now`): the coroutine stays on its worker.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use spindle::sync::Mutex;
///
/// let rt = spindle::Runtime::builder().workers(2).build().unwrap();
/// let total = rt.block_on(|| {
///     let counter = Arc::new(Mutex::new(0u64));
///     let handles: Vec<_> = (0..10)
///         .map(|_| {
///             let counter = counter.clone();
///             spindle::spawn(move || {
///                 for _ in 0..100 {
///                     *counter.lock() += 1;
///                 }
///             })
///         })
///         .collect();
///     for h in handles {
///         h.join().unwrap();
///     }
///     *counter.lock()
/// });
/// assert_eq!(total, 1000);
/// ```
#[repr(C)] // `raw` first: the mutex's address is the one introspection reports.
pub struct Mutex<T: ?Sized> {
    raw: RawMutex,
    data: UnsafeCell<T>,
}

// SAFETY: the mutex moves `T` between threads (whoever locks it gets
// `&mut T`), so `T: Send` is required, and is enough: access is exclusive.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
// SAFETY: as above; `&Mutex<T>` gives `&mut T` to one locker at a time.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

impl<T> Mutex<T> {
    /// A new, unlocked mutex holding `value`.
    ///
    /// ```
    /// static COUNT: spindle::sync::Mutex<u32> = spindle::sync::Mutex::new(0);
    /// *COUNT.lock() += 1;
    /// assert_eq!(*COUNT.lock(), 1);
    /// ```
    #[cfg(not(loom))]
    pub const fn new(value: T) -> Mutex<T> {
        Mutex {
            raw: RawMutex::with_threshold_ns(STARVATION_THRESHOLD.as_nanos() as u64),
            data: UnsafeCell::new(value),
        }
    }

    /// A new, unlocked mutex holding `value`.
    #[cfg(loom)]
    pub fn new(value: T) -> Mutex<T> {
        Mutex {
            raw: RawMutex::with_threshold_ns(STARVATION_THRESHOLD.as_nanos() as u64),
            data: UnsafeCell::new(value),
        }
    }

    /// A mutex that enters starvation mode after `threshold` instead of
    /// 1 ms. With `Duration::ZERO` every parked waiter is served in FIFO
    /// order by direct hand-off. For tests and models; not a tuning knob.
    #[doc(hidden)]
    pub fn with_starvation_threshold(value: T, threshold: Duration) -> Mutex<T> {
        Mutex {
            raw: RawMutex::with_threshold_ns(
                u64::try_from(threshold.as_nanos()).unwrap_or(u64::MAX),
            ),
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the mutex, returning the data.
    ///
    /// ```
    /// let m = spindle::sync::Mutex::new(vec![1]);
    /// assert_eq!(m.into_inner(), [1]);
    /// ```
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Acquires the lock, parking the calling coroutine (or thread) until
    /// it is available.
    ///
    /// Locking a mutex the caller already holds deadlocks, as with std's.
    ///
    /// # Panics
    ///
    /// Does not panic. In a coroutine that runtime shutdown cancels while
    /// it waits, unwinds with [`Cancelled`](crate::Cancelled) (without
    /// the lock).
    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        crate::scheduler::coop::charge();
        self.raw.lock();
        MutexGuard::new(self)
    }

    /// Acquires the lock if it is free right now.
    ///
    /// ```
    /// let m = spindle::sync::Mutex::new(1);
    /// let g = m.try_lock().unwrap();
    /// assert!(m.try_lock().is_none());
    /// drop(g);
    /// assert!(m.try_lock().is_some());
    /// ```
    #[inline]
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.raw.try_lock().then(|| MutexGuard::new(self))
    }

    /// Acquires the lock, waiting at most `timeout`; `None` if it timed
    /// out. If the lock is handed to the caller just as the timeout
    /// expires, the caller gets it (ownership is never lost).
    ///
    /// ```
    /// use std::time::Duration;
    /// let m = spindle::sync::Mutex::new(());
    /// let _held = m.lock();
    /// assert!(m.lock_timeout(Duration::from_millis(1)).is_none());
    /// ```
    pub fn lock_timeout(&self, timeout: Duration) -> Option<MutexGuard<'_, T>> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.raw.lock_until(deadline).then(|| MutexGuard::new(self)),
            None => Some(self.lock()),
        }
    }

    /// The data, through an exclusive borrow: no locking needed.
    ///
    /// ```
    /// let mut m = spindle::sync::Mutex::new(1);
    /// *m.get_mut() += 1;
    /// assert_eq!(*m.lock(), 2);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Mutex<T> {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(value: T) -> Mutex<T> {
        Mutex::new(value)
    }
}

/// Shows the data (if the lock is free) and how many callers are parked
/// in `lock`: `Mutex { data: 1, waiters: 0, .. }`.
impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let waiters = self.raw.waiters();
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Some(guard) => d.field("data", &&*guard),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.field("waiters", &waiters).finish_non_exhaustive()
    }
}

/// Proof of holding a [`Mutex`]'s lock; gives access to the data, and
/// releases the lock when dropped.
///
/// `!Send`, like std's guard: the lock is released where it was taken.
/// `Sync` when `T` is, since sharing `&MutexGuard` shares only `&T`.
///
/// ```
/// let m = spindle::sync::Mutex::new(String::from("a"));
/// let mut g = m.lock();
/// g.push('b');
/// assert_eq!(*g, "ab");
/// ```
///
/// ```compile_fail,E0277
/// fn send<T: Send>(_: T) {}
/// let m = spindle::sync::Mutex::new(0);
/// send(m.lock()); // a guard cannot move to another thread
/// ```
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MutexGuard<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
    /// `!Send` (a raw pointer is neither `Send` nor `Sync`; `Sync` is
    /// given back below).
    _not_send: PhantomData<*const ()>,
}

// SAFETY: `&MutexGuard<T>` only gives `&T`, which may be shared across
// threads when `T: Sync`.
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// A guard for a mutex whose lock the caller just acquired.
    #[inline]
    fn new(mutex: &'a Mutex<T>) -> MutexGuard<'a, T> {
        MutexGuard {
            mutex,
            _not_send: PhantomData,
        }
    }

    /// Releases the lock and returns the mutex (for
    /// [`Condvar::wait`](super::Condvar::wait), which locks it again).
    pub(crate) fn unlock(guard: MutexGuard<'a, T>) -> &'a Mutex<T> {
        let mutex = guard.mutex;
        std::mem::forget(guard);
        // SAFETY: the guard proved we hold the lock, and is gone.
        unsafe { mutex.raw.unlock() };
        mutex
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock, so no `&mut T` exists elsewhere.
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock, and `&mut self` makes this the
        // only borrow through it.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the guard holds the lock.
        unsafe { self.mutex.raw.unlock() };
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}
