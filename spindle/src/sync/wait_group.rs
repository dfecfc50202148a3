//! [`WaitGroup`]: Go's `sync.WaitGroup`: wait until a counter of
//! outstanding work drops to zero.
//!
//! # Algorithm
//!
//! One internal lock guards the state:
//!
//! | field     | meaning                                                    |
//! | --------- | ---------------------------------------------------------- |
//! | `count`   | outstanding work: raised by `add`, lowered by `done`      |
//! | `waiters` | callers of `wait` parked until `count` is 0, oldest first  |
//!
//! `wait` returns at once if `count` is 0; otherwise it links a node and
//! parks. The `add` (or `done`) that brings `count` to 0 claims every node
//! under the lock and finishes the claims after unlocking. Because the
//! zeroing and the claiming happen in one critical section, the parties
//! released are exactly those that waited for *this* zero: an `add` that
//! starts the next round right after cannot hold them back (they were
//! claimed already), and a `wait` that comes after that `add` waits for
//! the next zero.
//!
//! A negative count is a bug in the caller, reported as Go reports it:
//! `add` panics with "sync: negative WaitGroup counter", after releasing
//! the lock and leaving the count as it was.

use std::fmt;
use std::time::{Duration, Instant};

use super::notify::Wakeups;
use super::wait::{WaitList, wait_in};
use crate::loom::{Mutex, lock};
use crate::park::WaitReason;

/// Waits for a collection of coroutines or threads to finish, like Go's
/// `sync.WaitGroup`.
///
/// The counter starts at zero. Whoever starts a piece of work calls
/// [`add`](WaitGroup::add)`(1)` (or `add(n)` for `n` of them) before
/// starting it; the work calls [`done`](WaitGroup::done) when it finishes;
/// [`wait`](WaitGroup::wait) blocks until the counter is back to zero. A
/// waiting caller's coroutine is parked (its worker runs others), or,
/// called from a plain OS thread, the thread is; the wait records
/// [`WaitReason::WaitGroup`].
///
/// Methods take `&self`: share the group by reference (in a
/// [`spindle::scope`](crate::scope), as below) or through an `Arc`. It is
/// deliberately not `Clone` (unlike crossbeam's `WaitGroup`, where each
/// clone is a unit of work): the counter is explicit, as in Go.
///
/// # Go's rules apply
///
/// - An `add` with a positive delta that finds the counter at zero must
///   *happen before* the `wait` it is meant to hold back: call `add` before
///   spawning the work, not inside it. Otherwise `wait` may see zero and
///   return before the work has even started.
/// - The counter must never go negative: a `done` without its `add` panics
///   with `"sync: negative WaitGroup counter"`.
///
/// Go also asks that a reused group's new `add` calls happen after every
/// previous `wait` returned. spindle does not need that rule: the callers
/// of `wait` are released at the moment the counter reaches zero, so a
/// later `add` cannot hold them back.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use spindle::sync::WaitGroup;
///
/// let rt = spindle::Runtime::builder().workers(2).build().unwrap();
/// rt.block_on(|| {
///     let wg = WaitGroup::new();
///     let finished = AtomicUsize::new(0);
///     spindle::scope(|s| {
///         for _ in 0..10 {
///             wg.add(1); // before spawning, never inside the coroutine
///             s.spawn(|| {
///                 finished.fetch_add(1, Ordering::Relaxed);
///                 wg.done();
///             });
///         }
///         wg.wait(); // parks until all ten called `done`
///         assert_eq!(finished.load(Ordering::Relaxed), 10);
///     });
/// });
/// ```
pub struct WaitGroup {
    state: Mutex<State>,
}

struct State {
    /// Outstanding work.
    count: usize,
    /// Callers of `wait` parked until `count` is 0.
    waiters: WaitList,
}

impl WaitGroup {
    /// A group with a zero counter.
    ///
    /// ```
    /// static WG: spindle::sync::WaitGroup = spindle::sync::WaitGroup::new();
    /// WG.wait(); // zero: returns at once
    /// ```
    #[cfg(not(loom))]
    pub const fn new() -> WaitGroup {
        WaitGroup {
            state: Mutex::new(State {
                count: 0,
                waiters: WaitList::new(),
            }),
        }
    }

    /// A group with a zero counter (not `const` under loom, whose locks are
    /// not).
    #[cfg(loom)]
    pub fn new() -> WaitGroup {
        WaitGroup {
            state: Mutex::new(State {
                count: 0,
                waiters: WaitList::new(),
            }),
        }
    }

    /// Adds `delta` (which may be negative) to the counter. If the counter
    /// becomes zero, every caller blocked in [`wait`](WaitGroup::wait) is
    /// released.
    ///
    /// See the type's docs for when `add` must be called.
    ///
    /// # Panics
    ///
    /// With `"sync: negative WaitGroup counter"` if the counter would go
    /// below zero, and with `"sync: WaitGroup counter overflow"` if it would
    /// go past `usize::MAX`. The counter is left unchanged then.
    #[track_caller]
    pub fn add(&self, delta: isize) {
        let mut wakeups = Wakeups::new();
        let mut st = lock(&self.state);
        let count = match st.count.checked_add_signed(delta) {
            Some(count) => count,
            None => {
                drop(st);
                if delta < 0 {
                    panic!("sync: negative WaitGroup counter");
                }
                panic!("sync: WaitGroup counter overflow");
            }
        };
        st.count = count;
        if count == 0 {
            wakeups.claim_all(&mut st.waiters);
        }
        drop(st);
        wakeups.finish_all();
    }

    /// Lowers the counter by one: `add(-1)`.
    ///
    /// # Panics
    ///
    /// With `"sync: negative WaitGroup counter"` if the counter is zero.
    #[track_caller]
    pub fn done(&self) {
        self.add(-1);
    }

    /// Blocks until the counter is zero; returns at once if it is.
    pub fn wait(&self) {
        while !self.wait_until(None) {}
    }

    /// Like [`wait`](WaitGroup::wait), but gives up after `timeout`.
    /// Returns `true` if the counter reached zero, `false` if the timeout
    /// passed first.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        // A timeout too large for `Instant` is no timeout.
        self.wait_until(Instant::now().checked_add(timeout))
    }

    /// The counter now, for debugging and tests: it may change at once, so
    /// decisions must not rest on it (use [`wait`](WaitGroup::wait)).
    pub fn count(&self) -> usize {
        lock(&self.state).count
    }

    /// Waits until the counter is zero or `deadline`; returns whether it
    /// reached zero.
    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        let st = lock(&self.state);
        if st.count == 0 {
            return true;
        }
        // The `add` that zeroes the counter claims every waiter.
        wait_in(
            st,
            |st| &mut st.waiters,
            0,
            WaitReason::WaitGroup,
            deadline,
            self as *const WaitGroup as usize,
            |node| {
                lock(&self.state).waiters.remove(node);
            },
        )
        .is_some()
    }
}

impl Default for WaitGroup {
    fn default() -> WaitGroup {
        WaitGroup::new()
    }
}

impl fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = lock(&self.state);
        let (count, waiters) = (st.count, st.waiters.len());
        drop(st);
        f.debug_struct("WaitGroup")
            .field("count", &count)
            .field("waiters", &waiters)
            .finish()
    }
}
