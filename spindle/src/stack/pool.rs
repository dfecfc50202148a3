//! The per-worker cache of free stacks.
//!
//! Each worker owns one [`LocalPool`] and touches it only from its own
//! thread, so the hot path (a finished coroutine's stack going back, a
//! new coroutine starting on a cached stack, a spawn claiming a slot from
//! the worker's credits with [`LocalPool::reserve_claim`]) is a `Vec` push
//! and pop or a counter: no lock, no shared cache line. The cache is LIFO: the stack freed last has the most pages
//! committed and in the CPU's caches.
//!
//! ```text
//!  reserve_claim(size): local credit ──► a batch of claims on the class
//!  take(r):              cache ──► global free list (refill a batch)
//!                        ──► carve a fresh slot; a claim not needed for a
//!                        fresh slot becomes a local credit
//!  give(s):              cache (up to CACHE_MAX) ──► spill the colder half
//!                        to the global free list
//! ```
//!
//! The cache holds only stacks of one size class (the default one); other
//! sizes go straight to and from their class's global free list.
//!
//! Invariants the unsafe code relies on: none beyond `stack`'s; this file
//! has no unsafe code. A cached stack is owned by the pool like any `Stack`
//! value, and the pool gives every one back to the global list on drop.

use std::io;

use super::region::{self, Class};
use super::{Claim, Reservation, Stack};

/// Stacks a worker keeps before handing some to the global free list.
const CACHE_MAX: usize = 128;
/// Stacks moved at once between a worker's cache and the global free list,
/// so that a worker that frees what another spawns takes the global lock
/// once per batch rather than once per stack.
const BATCH: usize = 32;

/// A per-worker cache of free stacks of one size (the default one).
/// Not shared: a worker owns one. `Send`, so it can be built on one thread
/// and moved to the worker's.
pub(crate) struct LocalPool {
    /// The class whose stacks are cached.
    class: &'static Class,
    /// Free stacks, the most recently freed last.
    cache: Vec<Stack>,
    /// Claims on `class` this worker holds without a reservation: taken
    /// from `available` (so the accounting stays exact) and handed out by
    /// [`LocalPool::reserve_claim`] without touching the shared counter.
    /// A claim whose coroutine started on a cached stack comes back here
    /// instead of to the shared counter. At most `CREDITS_MAX`.
    pub(super) credits: usize,
}

/// Most claims a worker keeps locally before giving half back.
const CREDITS_MAX: usize = 256;
/// `CREDITS_MAX`, for the accounting test.
#[cfg(test)]
pub(super) const CREDITS_MAX_FOR_TESTS: usize = CREDITS_MAX;
/// How many claims a worker takes from the shared counter at once.
const CREDITS_BATCH: usize = 64;

impl LocalPool {
    /// A pool caching stacks of [`super::default_stack_size`].
    pub(crate) fn new() -> Self {
        Self::with_class(region::default_class())
    }

    /// A pool caching stacks of `size` (normalized) instead of the
    /// default size, for a runtime configured with another default.
    #[cfg_attr(
        not(test),
        allow(
            dead_code,
            reason = "for a runtime whose Builder sets another stack size"
        )
    )]
    pub(crate) fn with_size(size: usize) -> io::Result<Self> {
        Ok(Self::with_class(region::class_for(super::normalize_size(
            size,
        ))?))
    }

    /// A pool caching stacks of `class`.
    fn with_class(class: &'static Class) -> Self {
        LocalPool {
            class,
            cache: Vec::with_capacity(CACHE_MAX),
            credits: 0,
        }
    }

    /// Reserves a stack of `size` like [`super::reserve`], from this
    /// worker's credits when `size` is the cached size: no shared atomic in
    /// the common case. The claim is an ordinary one (the coroutine may
    /// start on any worker).
    pub(crate) fn reserve_claim(&mut self, size: usize) -> io::Result<Reservation> {
        if size != self.class.size() {
            return super::reserve(size);
        }
        if self.credits == 0 {
            // Take a batch; fall back to the one-at-a-time path (which maps
            // a new region, or reports exhaustion) when the class is short.
            let got = self.class.try_claim(CREDITS_BATCH);
            if got == 0 {
                return super::reserve(size);
            }
            self.credits = got;
        }
        self.credits -= 1;
        Ok(Reservation {
            claim: Claim(self.class),
        })
    }

    /// Keeps one more claim locally, giving half back past the limit.
    fn add_credit(&mut self) {
        self.credits += 1;
        if self.credits > CREDITS_MAX {
            let back = self.credits / 2;
            self.credits -= back;
            self.class.unclaim(back);
        }
    }

    /// The usable size of the stacks this pool caches.
    #[cfg_attr(not(test), allow(dead_code, reason = "for introspection"))]
    pub(crate) fn cached_size(&self) -> usize {
        self.class.size()
    }

    /// The number of stacks in this worker's cache.
    #[cfg_attr(not(test), allow(dead_code, reason = "for introspection"))]
    pub(crate) fn cached(&self) -> usize {
        self.cache.len()
    }

    /// Turns a reservation into a stack: from this
    /// worker's cache (LIFO, hot), then the global free list (taking a
    /// batch for the cache), then a fresh slot. Never maps memory.
    ///
    /// Fails if a fresh slot's guard page cannot be installed (the kernel
    /// is out of memory), or if the reservation cannot be honoured, which
    /// the accounting rules out (an internal error, reported rather than
    /// panicking).
    pub(crate) fn take(&mut self, r: Reservation) -> io::Result<Stack> {
        let claim = r.claim;
        if std::ptr::eq(claim.0, self.class) {
            if let Some(s) = self.cache.pop() {
                // The claim was not needed: a cached stack is outside the
                // count (`region.rs`). Keep the claim as a local credit
                // rather than giving it back to the shared counter.
                claim.spend();
                self.add_credit();
                return Ok(s);
            }
        }
        // From here the claim is spent on the slot taken below.
        let class = claim.spend();
        let extra = if std::ptr::eq(class, self.class) {
            BATCH.min(CACHE_MAX - self.cache.len())
        } else {
            0
        };
        // Refilled stacks come out oldest first; the cache's top stays the
        // most recently freed one.
        class.take_claimed(extra, &mut self.cache)
    }

    /// Returns a stack after its coroutine finished; its pages stay
    /// committed for the next coroutine. Stacks of another size, and the
    /// colder half of a full cache, go to their global free list.
    pub(crate) fn give(&mut self, s: Stack) {
        if !std::ptr::eq(s.class, self.class) {
            drop(s); // `Stack::drop` returns it to its class's free list.
            return;
        }
        if self.cache.len() == CACHE_MAX {
            self.spill(CACHE_MAX / 2);
        }
        self.cache.push(s);
    }

    /// Moves the `n` coldest cached stacks to the global free list.
    fn spill(&mut self, n: usize) {
        let n = n.min(self.cache.len());
        let bases = self.cache.drain(..n).map(|s| s.into_raw().0);
        self.class.release(bases);
    }
}

impl Default for LocalPool {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for LocalPool {
    /// Gives every cached stack back to the global free list, and every
    /// credit back to the shared counter.
    fn drop(&mut self) {
        self.spill(self.cache.len());
        if self.credits > 0 {
            self.class.unclaim(self.credits);
        }
    }
}

impl std::fmt::Debug for LocalPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalPool")
            .field("size", &self.class.size())
            .field("cached", &self.cache.len())
            .finish()
    }
}
