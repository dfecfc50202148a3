//! [`Barrier`]: `n` parties wait for each other, generation after
//! generation.
//!
//! # Algorithm
//!
//! One internal lock guards the state:
//!
//! | field     | meaning                                                       |
//! | --------- | ------------------------------------------------------------- |
//! | `arrived` | parties of the current generation that called `wait`          |
//! | `waiters` | those of them parked, oldest first (`arrived - 1` of them, between two arrivals) |
//!
//! A caller of `wait` counts itself in `arrived` under the lock. If it is
//! not the last of its generation it links a node and parks. The last
//! arrival is the leader: it resets `arrived` to 0, which *is* the start of
//! the next generation, and claims every node in `waiters` under the same
//! lock, finishing the claims (unparking their owners) after unlocking.
//!
//! Generations cannot mix: the leader empties `waiters` and resets
//! `arrived` in one critical section, so a party of the next generation,
//! which must take the lock to arrive, finds an empty list and a zero
//! count, even if the parties it is released with have not run yet.
//!
//! A parked party does not give up (there is no timeout) except when
//! runtime shutdown cancels its coroutine. It then leaves the generation
//! if it can: if its node is still linked, it unlinks it and un-counts
//! itself, so the generation still needs `n` parties; if the leader popped
//! it first, the generation has completed with it counted, and it just
//! unwinds.

use std::fmt;
use std::pin::pin;

use super::notify::Wakeups;
use super::wait::{Node, WaitList, Waiter, Woken};
use crate::loom::{Mutex, lock};
use crate::park::{self, WaitReason};

/// Lets a fixed number of coroutines or threads wait for each other, like
/// [`std::sync::Barrier`].
///
/// Each call to [`wait`](Barrier::wait) blocks until `n` calls (the
/// barrier's *generation*) have been made; then all return, and the next
/// `n` calls form the next generation: the barrier is reusable. Exactly one
/// call per generation, the last to arrive, gets a [`BarrierWaitResult`]
/// for which [`is_leader`](BarrierWaitResult::is_leader) is `true`.
///
/// A waiting caller's coroutine is parked (its worker runs others), or,
/// called from a plain OS thread, the thread is; the wait records
/// [`WaitReason::Barrier`].
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use spindle::sync::Barrier;
///
/// let rt = spindle::Runtime::builder().workers(2).build().unwrap();
/// rt.block_on(|| {
///     let barrier = Arc::new(Barrier::new(5));
///     let handles: Vec<_> = (0..5)
///         .map(|_| {
///             let b = barrier.clone();
///             // Parks until all five have arrived.
///             spindle::spawn(move || b.wait().is_leader())
///         })
///         .collect();
///     let leaders = handles
///         .into_iter()
///         .map(|h| h.join().unwrap())
///         .filter(|&leader| leader)
///         .count();
///     assert_eq!(leaders, 1);
/// });
/// ```
pub struct Barrier {
    /// Parties per generation (at least 1).
    n: usize,
    state: Mutex<State>,
}

struct State {
    /// Parties of the current generation that arrived.
    arrived: usize,
    /// The parked ones.
    waiters: WaitList,
}

/// What [`Barrier::wait`] returns: whether this caller was the
/// generation's leader.
///
/// ```
/// let b = spindle::sync::Barrier::new(1);
/// assert!(b.wait().is_leader()); // alone in each generation
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BarrierWaitResult {
    leader: bool,
}

impl BarrierWaitResult {
    /// Whether this caller was the leader of its generation: the last to
    /// arrive, exactly one per generation.
    pub fn is_leader(&self) -> bool {
        self.leader
    }
}

impl Barrier {
    /// A barrier for `n` parties per generation. `n` of 0 is taken as 1
    /// (every call returns at once, as leader), as in `std`.
    ///
    /// ```
    /// static START: spindle::sync::Barrier = spindle::sync::Barrier::new(1);
    /// assert!(START.wait().is_leader());
    /// ```
    #[cfg(not(loom))]
    pub const fn new(n: usize) -> Barrier {
        Barrier {
            n: if n == 0 { 1 } else { n },
            state: Mutex::new(State {
                arrived: 0,
                waiters: WaitList::new(),
            }),
        }
    }

    /// A barrier for `n` parties per generation (not `const` under loom,
    /// whose locks are not).
    #[cfg(loom)]
    pub fn new(n: usize) -> Barrier {
        Barrier {
            n: n.max(1),
            state: Mutex::new(State {
                arrived: 0,
                waiters: WaitList::new(),
            }),
        }
    }

    /// Blocks until `n` parties (this one included) have called `wait` in
    /// this generation, then returns in all of them; the last to arrive
    /// is the leader.
    pub fn wait(&self) -> BarrierWaitResult {
        loop {
            let mut st = lock(&self.state);
            st.arrived += 1;
            if st.arrived == self.n {
                // The leader: release the generation and start the next.
                st.arrived = 0;
                let mut wakeups = Wakeups::new();
                wakeups.claim_all(&mut st.waiters);
                drop(st);
                wakeups.finish_all();
                return BarrierWaitResult { leader: true };
            }
            let waiter = pin!(Waiter::new());
            let node = pin!(Node::new(&waiter, 0, 0));
            // SAFETY: `node` is new (so unlinked) and pinned on this stack
            // frame; the leader pops it when it claims us, and otherwise we
            // unlink it below before the frame ends (wait.rs invariant 4).
            unsafe { st.waiters.push_back(&node) };
            drop(st);

            park::set_blocked_on(self as *const Barrier as usize, 0);
            let woken = waiter.wait(WaitReason::Barrier, None);
            park::set_blocked_on(0, 0);
            match woken {
                Woken::Token(_) => return BarrierWaitResult { leader: false },
                Woken::TimedOut | Woken::Cancelled => {
                    // Only cancellation (no deadline was given). Leave the
                    // generation if it has not completed without us.
                    let mut st = lock(&self.state);
                    let left = st.waiters.remove(&node);
                    if left {
                        st.arrived -= 1;
                    }
                    drop(st);
                    // Unwinds (the runtime shuts down), now that the node
                    // is unlinked and no lock is held.
                    park::cancellation_point();
                    if !left {
                        // Counted in a generation that completed.
                        return BarrierWaitResult { leader: false };
                    }
                    // Not unwound after all: arrive again.
                }
            }
        }
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let arrived = lock(&self.state).arrived;
        f.debug_struct("Barrier")
            .field("n", &self.n)
            .field("arrived", &arrived)
            .finish()
    }
}
