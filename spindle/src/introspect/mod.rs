//! Introspection: what the runtime can tell about its coroutines.
//!
//! [`snapshot`](crate::runtime::snapshot) walks the registry (one lock per
//! shard, held briefly) and reads each coroutine's atomics; it never stops
//! the workers. The figures are a consistent-enough picture, not an atomic
//! one: a coroutine may change state while the walk goes on.

pub(crate) mod registry;

use std::panic::Location;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::clock;
use crate::coroutine::CoroutineId;
use crate::coroutine::task::NO_WORKER;
use crate::park::WaitReason;
use crate::park::state::{DONE, NEW, PARKED, QUEUED, RUNNING, State};
use crate::scheduler::Shared;

/// What a coroutine is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CoroutineState {
    /// Runnable, waiting for its worker (includes not yet started).
    Ready,
    /// Running on its worker right now.
    Running,
    /// Parked, for the given reason.
    Blocked(WaitReason),
    /// Parked in `sleep` until a deadline.
    Sleeping,
    /// Finished (seen only briefly: finished coroutines leave the registry).
    Done,
}

/// One live coroutine, as seen by a [`Snapshot`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CoroutineInfo {
    /// Its id.
    pub id: CoroutineId,
    /// Its name, if given.
    pub name: Option<String>,
    /// Where it was spawned.
    pub location: &'static Location<'static>,
    /// What it is doing.
    pub state: CoroutineState,
    /// The worker it is bound to (`None` before it starts).
    pub worker: Option<usize>,
    /// How many times it was resumed (starts at 0, only grows).
    pub times_scheduled: u64,
    /// Total time it ran on a worker (starts at 0, only grows).
    pub run_time: Duration,
    /// Usable stack size in bytes.
    pub stack_size: usize,
    /// While [`Blocked`](CoroutineState::Blocked) on a primitive of
    /// [`sync`](crate::sync): which one, and (for locks) who held it when
    /// the coroutine parked. `None` for other waits: a channel has no
    /// owner to wait for.
    pub blocked_on: Option<BlockedOn>,
}

/// What a blocked coroutine waits on (see [`CoroutineInfo::blocked_on`]):
/// enough to draw a wait-for graph across a [`Snapshot`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BlockedOn {
    /// The address of the primitive (a [`Mutex`](crate::sync::Mutex), an
    /// [`RwLock`](crate::sync::RwLock), a
    /// [`Semaphore`](crate::sync::Semaphore), ...): equal addresses in one
    /// snapshot mean the same primitive.
    pub resource: usize,
    /// The coroutine that held the lock (or ran the `Once` initialiser)
    /// when this one parked, if it is a coroutine of this runtime (not a
    /// plain thread) and still alive; `None` for primitives without an
    /// owner.
    pub owner: Option<CoroutineId>,
}

/// The live coroutines of one runtime at one moment.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Snapshot {
    /// Every started, unfinished coroutine, in no particular order.
    pub coroutines: Vec<CoroutineInfo>,
    /// How many coroutines were spawned but have not started yet (they
    /// are `Ready`; a coroutine is listed in `coroutines` from its first
    /// run on). Counted from per-worker counters, so it may be off by the
    /// spawns and starts happening while the snapshot is taken.
    pub unstarted: u64,
    /// The runtime's number of workers.
    pub workers: usize,
}

pub(crate) fn snapshot_of(shared: &Shared) -> Snapshot {
    let running: Vec<usize> = shared
        .remotes
        .iter()
        .map(|r| r.current.load(Ordering::Relaxed) as usize)
        .collect();
    let mut coroutines = Vec::with_capacity(shared.registry.len());
    // Header address → id, to name lock owners without dereferencing a
    // recorded address (its coroutine may have finished since).
    let mut ids = std::collections::HashMap::new();
    let mut owners = Vec::new();
    shared.registry.for_each(|h| {
        ids.insert(h as *const _ as usize, h.id());
        let word = h.state.load_relaxed();
        let worker = h.worker.load(Ordering::Relaxed);
        let reason =
            WaitReason::from_u8(h.wait_reason.load(Ordering::Relaxed)).unwrap_or(WaitReason::Park);
        let state = match State::lifecycle(word) {
            NEW | QUEUED => CoroutineState::Ready,
            RUNNING if running.contains(&(h as *const _ as usize)) => CoroutineState::Running,
            RUNNING => CoroutineState::Ready,
            PARKED if reason == WaitReason::Sleep => CoroutineState::Sleeping,
            PARKED => CoroutineState::Blocked(reason),
            DONE => CoroutineState::Done,
            _ => CoroutineState::Ready,
        };
        coroutines.push(CoroutineInfo {
            id: CoroutineId::from_raw(h.id()),
            name: h.name().map(String::from),
            location: h.location(),
            state,
            worker: (worker != NO_WORKER).then_some(worker),
            times_scheduled: h.scheduled.load(Ordering::Relaxed),
            run_time: Duration::from_nanos(clock::ticks_to_nanos(
                h.run_ticks.load(Ordering::Relaxed),
            )),
            stack_size: h.guard.stack_size(),
            blocked_on: None,
        });
        if let CoroutineState::Blocked(_) = state {
            let resource = h.blocked_on.load(Ordering::Relaxed);
            if resource != 0 {
                owners.push((
                    coroutines.len() - 1,
                    resource,
                    h.blocked_owner.load(Ordering::Relaxed),
                ));
            }
        }
    });
    for (i, resource, owner) in owners {
        coroutines[i].blocked_on = Some(BlockedOn {
            resource,
            owner: ids.get(&owner).map(|&id| CoroutineId::from_raw(id)),
        });
    }
    Snapshot {
        coroutines,
        unstarted: shared.unstarted(),
        workers: shared.config.workers,
    }
}
