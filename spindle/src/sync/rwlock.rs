//! A reader-writer lock that parks the coroutine, fair to both sides.
//!
//! # The algorithm
//!
//! One atomic state word, and two wait queues (readers, writers) behind a
//! small internal lock. The fast paths touch only the word: a reader adds
//! `READER` if no writer holds *or waits*; a writer sets `WRITER` if the
//! word is 0; unlocking undoes that. Whenever someone is queued, the
//! waiting bits send the next unlock to the slow path, which hands the
//! lock over directly (under the internal lock, finishing the waiters'
//! claims), with the same policy as Go's `sync.RWMutex`:
//!
//! - **A waiting writer blocks new readers**, so a stream of overlapping
//!   readers cannot starve it: readers already inside finish, and the
//!   last one hands the lock to the first waiting writer.
//! - **A writer's unlock admits every waiting reader** before the next
//!   writer, so a stream of writers cannot starve readers either. The next
//!   writer then waits for that batch of readers.
//! - Writers are served in arrival order; readers of one batch enter
//!   together.
//!
//! Nobody barges past a hand-off: while a queue is non-empty the fast
//! paths fail, and the lock goes from its last holder straight to the
//! waiters chosen above.
//!
//! # The state word
//!
//! | bits              | meaning                               | changed by |
//! | ----------------- | ------------------------------------- | ---------- |
//! | `WRITER`          | a writer holds the lock               | the writer's CAS; a hand-off to a writer (queue lock held); the writer's unlock |
//! | `WRITERS_WAITING` | the writer queue is not empty         | under the queue lock only |
//! | `READERS_WAITING` | the reader queue is not empty         | under the queue lock only |
//! | `READER` × n      | n readers hold the lock (bits 3 and up) | a reader's CAS; admission of queued readers (queue lock held); a reader's unlock |
//!
//! Invariants (why no waiter is forgotten):
//!
//! 1. Each waiting bit is set exactly when its queue is non-empty, whenever
//!    the queue lock is free.
//! 2. A waiter links itself only after a CAS that set its waiting bit
//!    while the lock was held (or owed to earlier waiters), under the queue
//!    lock; so the unlock that frees the lock sees a waiting bit and takes
//!    the slow path, which runs [`RawRwLock::grant`] under the same lock.
//! 3. `grant` leaves the lock either held or with both queues empty. The
//!    only other way the lock becomes free with waiters queued is a last
//!    reader's unlock, which then calls `grant` itself; and every waiter
//!    that gives up calls `grant` too, in case it was what others waited
//!    behind.
//!
//! # Memory orderings
//!
//! Acquiring CASes are Acquire, releasing ones Release. A hand-off passes
//! the releasing side's critical section through the waiter's state word
//! (the claim's Release finish, the waiter's Acquire). `grant` first loads
//! the word with Acquire: every change of the word is a read-modify-write,
//! so that load synchronises with every unlock before it (a last reader's
//! unlock is Release, and earlier readers' unlocks head release sequences
//! that its own decrement continues), and the hand-off then carries all of
//! it to the new owner.
//!
//! # Poisoning
//!
//! None, for the reasons given in the [`Mutex`](super::Mutex) docs.

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::pin::pin;
use std::time::{Duration, Instant};

use crate::loom::{AtomicUsize, Ordering};
use crate::park::{self, WaitReason};
use crate::sync::mutex::Abort;
use crate::sync::wait::{Claim, Node, WaitList, Waiter, Woken};

/// A writer holds the lock.
const WRITER: usize = 1;
/// The writer queue is not empty.
const WRITERS_WAITING: usize = 1 << 1;
/// The reader queue is not empty.
const READERS_WAITING: usize = 1 << 2;
/// One reader holding the lock; the count takes the remaining bits.
const READER: usize = 1 << 3;
/// The reader count's bits.
const READERS: usize = !(READER - 1);

/// Claim token: the lock (in the mode asked for) is yours.
const GRANTED: usize = 1;

/// The two wait queues, guarded together by one internal lock.
struct Queues {
    readers: WaitList,
    writers: WaitList,
}

/// The lock without the data.
struct RawRwLock {
    /// The state word (see the module docs).
    state: AtomicUsize,
    /// The writing owner's [`park::current_owner_tag`] (0: a plain
    /// thread, readers, or none), for introspection only: Relaxed.
    owner: AtomicUsize,
    queues: crate::loom::Mutex<Queues>,
}

impl RawRwLock {
    #[cfg(not(loom))]
    const fn new() -> RawRwLock {
        RawRwLock {
            state: AtomicUsize::new(0),
            owner: AtomicUsize::new(0),
            queues: crate::loom::Mutex::new(Queues {
                readers: WaitList::new(),
                writers: WaitList::new(),
            }),
        }
    }

    #[cfg(loom)]
    fn new() -> RawRwLock {
        RawRwLock {
            state: AtomicUsize::new(0),
            owner: AtomicUsize::new(0),
            queues: crate::loom::Mutex::new(Queues {
                readers: WaitList::new(),
                writers: WaitList::new(),
            }),
        }
    }

    /// The address introspection reports for this lock.
    fn resource(&self) -> usize {
        self as *const RawRwLock as usize
    }

    /// Takes a read lock if no writer holds or waits.
    #[inline]
    fn try_read(&self) -> bool {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & (WRITER | WRITERS_WAITING) != 0 {
                return false;
            }
            let new = state
                .checked_add(READER)
                .expect("spindle::sync::RwLock: too many readers");
            // Acquire: pairs with the Release of the last writer's unlock.
            match self
                .state
                .compare_exchange_weak(state, new, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(s) => state = s,
            }
        }
    }

    /// Takes the write lock if nobody holds or waits for the lock.
    #[inline]
    fn try_write(&self) -> bool {
        // Acquire: pairs with the Release of the previous unlock.
        let ok = self
            .state
            .compare_exchange(0, WRITER, Ordering::Acquire, Ordering::Relaxed)
            .is_ok();
        if ok {
            self.owner
                .store(park::current_owner_tag(), Ordering::Relaxed);
        }
        ok
    }

    /// Takes a read lock, parking until `deadline` at most.
    fn read(&self, deadline: Option<Instant>) -> bool {
        self.try_read() || self.acquire_slow(false, deadline)
    }

    /// Takes the write lock, parking until `deadline` at most.
    fn write(&self, deadline: Option<Instant>) -> bool {
        if self.try_write() {
            return true;
        }
        let ok = self.acquire_slow(true, deadline);
        if ok {
            self.owner
                .store(park::current_owner_tag(), Ordering::Relaxed);
        }
        ok
    }

    /// Queues and parks until granted the lock (`write`: exclusively) or
    /// `deadline` passes. Handles cancellation: unwinds, or keeps waiting
    /// if this coroutine may not unwind now.
    #[cold]
    #[inline(never)]
    fn acquire_slow(&self, write: bool, deadline: Option<Instant>) -> bool {
        loop {
            match self.wait_for_grant(write, deadline) {
                Ok(()) => return true,
                Err(Abort::TimedOut) => return false,
                Err(Abort::Cancelled) => park::cancellation_point(),
            }
        }
    }

    fn wait_for_grant(&self, write: bool, deadline: Option<Instant>) -> Result<(), Abort> {
        let (blocking, waiting_bit, reason) = if write {
            // A writer waits for any holder, and behind any waiter.
            (!0, WRITERS_WAITING, WaitReason::RwLockWrite)
        } else {
            (
                WRITER | WRITERS_WAITING,
                READERS_WAITING,
                WaitReason::RwLockRead,
            )
        };
        let waiter = pin!(Waiter::new());
        let node = pin!(Node::new(&waiter, 0, 0));
        {
            let mut queues = crate::loom::lock(&self.queues);
            let mut state = self.state.load(Ordering::Relaxed);
            loop {
                // Free for us after all (the holder left meanwhile)?
                let take = state & blocking == 0;
                let (new, ordering) = if take {
                    let one = if write { WRITER } else { READER };
                    let new = state
                        .checked_add(one)
                        .expect("spindle::sync::RwLock: too many readers");
                    (new, Ordering::Acquire)
                } else {
                    (state | waiting_bit, Ordering::Relaxed)
                };
                // Acquire when taking the lock: pairs with the Release of
                // the unlock that freed it. Relaxed when announcing a
                // waiter: the queue lock orders it (invariant 2).
                match self
                    .state
                    .compare_exchange_weak(state, new, ordering, Ordering::Relaxed)
                {
                    Ok(_) if take => return Ok(()),
                    Ok(_) => break,
                    Err(s) => state = s,
                }
            }
            let list = if write {
                &mut queues.writers
            } else {
                &mut queues.readers
            };
            // SAFETY: `node` and `waiter` are pinned in this frame, which
            // unlinks the node before they go (invariant 4 of `wait.rs`):
            // a grant pops it, or the abort below removes it under the
            // lock. It is linked nowhere else.
            unsafe { list.push_back(&node) };
        }

        park::set_blocked_on(self.resource(), self.owner.load(Ordering::Relaxed));
        let woke = waiter.wait(reason, deadline);
        park::set_blocked_on(0, 0);
        match woke {
            Woken::Token(token) => {
                debug_assert_eq!(token, GRANTED);
                Ok(())
            }
            Woken::TimedOut | Woken::Cancelled => {
                let mut queues = crate::loom::lock(&self.queues);
                let list = if write {
                    &mut queues.writers
                } else {
                    &mut queues.readers
                };
                list.remove(&node);
                if list.is_empty() {
                    self.state.fetch_and(!waiting_bit, Ordering::Relaxed);
                }
                // Readers may have queued behind us (invariant 3).
                let claim = if write {
                    self.grant(&mut queues, false)
                } else {
                    None
                };
                drop(queues);
                if let Some(claim) = claim {
                    claim.finish(GRANTED);
                }
                Err(if woke == Woken::Cancelled {
                    Abort::Cancelled
                } else {
                    Abort::TimedOut
                })
            }
        }
    }

    /// Releases a read lock.
    ///
    /// # Safety
    /// The caller holds a read lock.
    #[inline]
    unsafe fn read_unlock(&self) {
        // Release: publishes the reader's critical section (its reads)
        // to the next writer, through `grant`'s Acquire or the writer's.
        let prev = self.state.fetch_sub(READER, Ordering::Release);
        debug_assert!(prev & READERS != 0, "read_unlock without a reader");
        // The last reader out, with someone queued: hand the lock over.
        if prev & READERS == READER && prev & (WRITERS_WAITING | READERS_WAITING) != 0 {
            self.unlock_slow(false);
        }
    }

    /// Releases the write lock.
    ///
    /// # Safety
    /// The caller holds the write lock.
    #[inline]
    unsafe fn write_unlock(&self) {
        self.owner.store(0, Ordering::Relaxed);
        // Release: publishes the critical section to the next locker.
        if self
            .state
            .compare_exchange(WRITER, 0, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            self.unlock_slow(true);
        }
    }

    #[cold]
    #[inline(never)]
    fn unlock_slow(&self, writer: bool) {
        let mut queues = crate::loom::lock(&self.queues);
        if writer {
            // Release: as in `write_unlock`. Nobody can take the lock
            // before `grant` does while a waiting bit is set (the fast
            // paths fail, and the slow ones need the queue lock); if the
            // waiters left meanwhile, there is nothing to grant anyway.
            self.state.fetch_and(!WRITER, Ordering::Release);
        }
        let claim = self.grant(&mut queues, writer);
        drop(queues);
        if let Some(claim) = claim {
            claim.finish(GRANTED);
        }
    }

    /// Hands the lock to waiters if it is theirs now (see the module docs
    /// for the policy); `after_writer`: a writer just released it, so
    /// queued readers go first. Returns a writer's claim, to be finished
    /// once the queue lock is released; readers are admitted at once.
    ///
    /// Called with the queue lock held (invariant 3: afterwards the lock
    /// is held, or both queues are empty).
    fn grant(&self, queues: &mut Queues, after_writer: bool) -> Option<Claim> {
        // Acquire: see "Memory orderings" in the module docs.
        let state = self.state.load(Ordering::Acquire);
        if state & WRITER != 0 {
            // Its unlock will grant.
            return None;
        }
        let free = state & READERS == 0;
        if free && !after_writer {
            if let Some(claim) = self.grant_writer(queues) {
                return Some(claim);
            }
        }
        if free || queues.writers.is_empty() {
            let admitted = self.admit_readers(queues);
            if admitted == 0 && free && after_writer {
                return self.grant_writer(queues);
            }
        }
        None
    }

    /// Gives the (free) lock to the first writer that is still waiting.
    fn grant_writer(&self, queues: &mut Queues) -> Option<Claim> {
        let (_, claim) = queues.writers.pop_claim(|_| false)?;
        let empty = if queues.writers.is_empty() {
            WRITERS_WAITING
        } else {
            0
        };
        // Nobody else changes the word now: `WRITERS_WAITING` was set, so
        // the fast paths fail, and the lock is free, so no unlock runs.
        // The RMW keeps that an assumption rather than a requirement.
        let _ = self
            .state
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                Some((s | WRITER) & !empty)
            });
        Some(claim)
    }

    /// Admits every queued reader that is still waiting; returns how many.
    fn admit_readers(&self, queues: &mut Queues) -> usize {
        let mut admitted = 0;
        // Finished under the lock: an admitted reader never needs this
        // lock to proceed, and no claim has to be kept (allocated) until
        // after it is released. Each reader is counted in the word before
        // its claim says it holds the lock.
        while let Some((_, claim)) = queues.readers.pop_claim(|_| false) {
            self.state.fetch_add(READER, Ordering::Relaxed);
            claim.finish(GRANTED);
            admitted += 1;
        }
        self.state.fetch_and(!READERS_WAITING, Ordering::Relaxed);
        admitted
    }
}

/// A reader-writer lock protecting a `T`, for coroutines and threads:
/// many readers at once, or one writer.
///
/// Blocking calls park the calling coroutine (or thread). Fair both ways,
/// like Go's `sync.RWMutex`: once a writer waits, new readers queue
/// behind it, so readers cannot starve writers; when a writer unlocks,
/// every reader that was waiting gets in before the next writer, so
/// writers cannot starve readers. A reader that asks for a read lock while
/// a writer waits therefore blocks even if other readers hold the lock:
/// taking a read lock twice in one coroutine can deadlock.
///
/// No poisoning (see [`Mutex`](super::Mutex)). Guards are `!Send`.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use spindle::sync::RwLock;
///
/// let rt = spindle::Runtime::builder().workers(2).build().unwrap();
/// rt.block_on(|| {
///     let config = Arc::new(RwLock::new(String::from("v1")));
///     let readers: Vec<_> = (0..4)
///         .map(|_| {
///             let config = config.clone();
///             spindle::spawn(move || config.read().len())
///         })
///         .collect();
///     config.write().push_str("-patched");
///     for r in readers {
///         let len = r.join().unwrap();
///         assert!(len == 2 || len == 10);
///     }
///     assert_eq!(*config.read(), "v1-patched");
/// });
/// ```
#[repr(C)] // `raw` first: the lock's address is the one introspection reports.
pub struct RwLock<T: ?Sized> {
    raw: RawRwLock,
    data: UnsafeCell<T>,
}

// SAFETY: the lock hands `&mut T` (a writer) and `T`'s ownership between
// threads: `T: Send`.
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}
// SAFETY: readers on several threads share `&T` at once (`T: Sync`), and
// a writer gets `&mut T` (`T: Send`).
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}

impl<T> RwLock<T> {
    /// A new, unlocked lock holding `value`.
    ///
    /// ```
    /// static TABLE: spindle::sync::RwLock<Vec<u32>> = spindle::sync::RwLock::new(Vec::new());
    /// TABLE.write().push(1);
    /// assert_eq!(TABLE.read().len(), 1);
    /// ```
    #[cfg(not(loom))]
    pub const fn new(value: T) -> RwLock<T> {
        RwLock {
            raw: RawRwLock::new(),
            data: UnsafeCell::new(value),
        }
    }

    /// A new, unlocked lock holding `value`.
    #[cfg(loom)]
    pub fn new(value: T) -> RwLock<T> {
        RwLock {
            raw: RawRwLock::new(),
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the lock, returning the data.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Acquires a shared read lock, parking while a writer holds the lock
    /// or waits for it.
    ///
    /// # Panics
    ///
    /// If the number of readers would overflow (not reachable in
    /// practice). In a coroutine that runtime shutdown cancels while it
    /// waits, unwinds with [`Cancelled`](crate::Cancelled).
    #[inline]
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        crate::scheduler::coop::charge();
        self.raw.read(None);
        RwLockReadGuard::new(self)
    }

    /// Acquires a read lock if no writer holds or waits for the lock.
    #[inline]
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        self.raw.try_read().then(|| RwLockReadGuard::new(self))
    }

    /// Acquires a read lock, waiting at most `timeout`; `None` if it
    /// timed out.
    pub fn read_timeout(&self, timeout: Duration) -> Option<RwLockReadGuard<'_, T>> {
        self.raw
            .read(Instant::now().checked_add(timeout))
            .then(|| RwLockReadGuard::new(self))
    }

    /// Acquires the exclusive write lock, parking until every reader and
    /// writer before it is done.
    ///
    /// # Panics
    ///
    /// Does not panic. In a coroutine that runtime shutdown cancels while
    /// it waits, unwinds with [`Cancelled`](crate::Cancelled).
    #[inline]
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        crate::scheduler::coop::charge();
        self.raw.write(None);
        RwLockWriteGuard::new(self)
    }

    /// Acquires the write lock if nobody holds or waits for the lock.
    ///
    /// ```
    /// let lock = spindle::sync::RwLock::new(0);
    /// let r = lock.read();
    /// assert!(lock.try_write().is_none());
    /// drop(r);
    /// *lock.try_write().unwrap() += 1;
    /// ```
    #[inline]
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        self.raw.try_write().then(|| RwLockWriteGuard::new(self))
    }

    /// Acquires the write lock, waiting at most `timeout`; `None` if it
    /// timed out.
    ///
    /// ```
    /// use std::time::Duration;
    /// let lock = spindle::sync::RwLock::new(0);
    /// let _r = lock.read();
    /// assert!(lock.write_timeout(Duration::from_millis(1)).is_none());
    /// ```
    pub fn write_timeout(&self, timeout: Duration) -> Option<RwLockWriteGuard<'_, T>> {
        self.raw
            .write(Instant::now().checked_add(timeout))
            .then(|| RwLockWriteGuard::new(self))
    }

    /// The data, through an exclusive borrow: no locking needed.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> RwLock<T> {
        RwLock::new(T::default())
    }
}

impl<T> From<T> for RwLock<T> {
    fn from(value: T) -> RwLock<T> {
        RwLock::new(value)
    }
}

/// Shows the data (if a read lock can be had now) and how many readers
/// and writers are parked:
/// `RwLock { data: 1, readers_waiting: 0, writers_waiting: 0, .. }`.
impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (readers, writers) = {
            let queues = crate::loom::lock(&self.raw.queues);
            (queues.readers.len(), queues.writers.len())
        };
        let mut d = f.debug_struct("RwLock");
        match self.try_read() {
            Some(guard) => d.field("data", &&*guard),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.field("readers_waiting", &readers)
            .field("writers_waiting", &writers)
            .finish_non_exhaustive()
    }
}

/// A shared read lock on a [`RwLock`]; released when dropped.
///
/// `!Send`; `Sync` when `T` is.
///
/// ```
/// let lock = spindle::sync::RwLock::new(5);
/// let (a, b) = (lock.read(), lock.read());
/// assert_eq!(*a + *b, 10);
/// ```
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: it only gives `&T`.
unsafe impl<T: ?Sized + Sync> Sync for RwLockReadGuard<'_, T> {}

impl<'a, T: ?Sized> RwLockReadGuard<'a, T> {
    fn new(lock: &'a RwLock<T>) -> RwLockReadGuard<'a, T> {
        RwLockReadGuard {
            lock,
            _not_send: PhantomData,
        }
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: a read lock is held: no writer, so no `&mut T`.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the guard holds a read lock.
        unsafe { self.lock.raw.read_unlock() };
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// The exclusive write lock on a [`RwLock`]; released when dropped.
///
/// `!Send`; `Sync` when `T` is.
///
/// ```
/// let lock = spindle::sync::RwLock::new(vec![1]);
/// lock.write().push(2);
/// assert_eq!(*lock.read(), [1, 2]);
/// ```
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: `&RwLockWriteGuard` only gives `&T`.
unsafe impl<T: ?Sized + Sync> Sync for RwLockWriteGuard<'_, T> {}

impl<'a, T: ?Sized> RwLockWriteGuard<'a, T> {
    fn new(lock: &'a RwLock<T>) -> RwLockWriteGuard<'a, T> {
        RwLockWriteGuard {
            lock,
            _not_send: PhantomData,
        }
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the write lock is held: no other borrow exists.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the write lock is held, and `&mut self` makes this the
        // only borrow through the guard.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the guard holds the write lock.
        unsafe { self.lock.raw.write_unlock() };
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
