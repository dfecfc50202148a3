//! The registry of live coroutines: what snapshots, shutdown and later
//! `ps`/deadlock reports read.
//!
//! Sharded intrusive lists: one shard per worker plus one for spawns from
//! outside the workers, each behind its own spin lock, so a spawn locks only
//! its own worker's shard (uncontended in the common case: one
//! compare-and-swap, and a plain store to unlock) and no allocation is made
//! per coroutine. A coroutine is linked by its worker when it starts (into
//! that worker's shard) and unlinked when it finishes (by the same worker,
//! unless it is migratable), so each worker's shard lock stays on its own
//! core. Coroutines not started yet live only in run queues; snapshots
//! count them from per-worker counters (`introspect`).
//!
//! The registry holds no counted reference (that cost two atomic
//! read-modify-writes per coroutine): a linked coroutine is kept alive by
//! whoever runs, queues or parks it, and one that everybody abandoned (left
//! in a queue when a shutdown timed out) is leaked by `TaskRef`'s drop
//! instead of freed while linked.
//!
//! # Invariants (this is an unsafe module)
//!
//! - A header's `links` are read or written only under its shard's lock.
//! - A linked header is alive: it is linked by its starting worker, which
//!   holds a reference; it is unlinked by `remove`, called from `finish`
//!   by a thread that holds a reference until `remove` returns; and the
//!   last `TaskRef` of a header that is still linked leaks it
//!   (`task.rs`, invariant 5).

use std::ptr::{self, NonNull};
use std::sync::atomic::Ordering;

use crossbeam_utils::CachePadded;

use crate::coroutine::task::{Header, TaskRef};
use crate::loom::{RawGuard, RawLock, raw_lock};
use crate::park::state::{DONE, NEW, State};

/// List links inside each coroutine header.
///
/// Whether a header is linked is told by its `shard` field (`usize::MAX`
/// when not), set and reset under the shard's lock.
#[derive(Debug)]
pub(crate) struct Links {
    prev: *const Header,
    next: *const Header,
}

impl Default for Links {
    fn default() -> Links {
        Links {
            prev: ptr::null(),
            next: ptr::null(),
        }
    }
}

struct Shard {
    head: *const Header,
    len: usize,
}

// SAFETY: the raw pointers are only followed under the shard's lock, and
// point at headers the registry keeps alive (module invariants).
unsafe impl Send for Shard {}

/// See the module docs.
pub(crate) struct Registry {
    shards: Box<[CachePadded<RawLock<Shard>>]>,
}

impl Registry {
    /// A registry with `n` shards.
    pub(crate) fn new(n: usize) -> Registry {
        Registry {
            shards: (0..n.max(1))
                .map(|_| {
                    CachePadded::new(RawLock::new(Shard {
                        head: ptr::null(),
                        len: 0,
                    }))
                })
                .collect(),
        }
    }

    fn lock(&self, i: usize) -> RawGuard<'_, Shard> {
        raw_lock(&self.shards[i])
    }

    /// Links `task` into shard `shard` (its worker's). The caller holds a
    /// reference to it (invariant 2).
    pub(crate) fn insert(&self, task: &TaskRef, shard: usize) {
        let h = task.header();
        h.shard.store(shard, Ordering::Relaxed);
        let mut shard = self.lock(shard);
        let hp: *const Header = h;
        // SAFETY: invariant 1: we hold the shard lock for `h` and for the
        // current head.
        unsafe {
            let links = &mut *h.links.get();
            links.prev = ptr::null();
            links.next = shard.head;
            if let Some(head) = shard.head.as_ref() {
                (*head.links.get()).prev = hp;
            }
        }
        shard.head = hp;
        shard.len += 1;
    }

    /// Unlinks `task` if linked. The caller holds a reference to it until
    /// this returns (invariant 2).
    pub(crate) fn remove(&self, task: &TaskRef) {
        let h = task.header();
        let i = h.shard.load(Ordering::Relaxed);
        if i == usize::MAX {
            return; // never linked (never started)
        }
        let mut shard = self.lock(i);
        // Re-read under the lock: only `insert` and `remove` change it, and
        // `remove` runs once per started coroutine (from `finish`).
        if h.shard.load(Ordering::Relaxed) != i {
            return;
        }
        // SAFETY: invariant 1: under the shard lock; neighbours are linked
        // and therefore alive (invariant 2).
        unsafe {
            let links = &mut *h.links.get();
            match links.prev.as_ref() {
                Some(p) => (*p.links.get()).next = links.next,
                None => shard.head = links.next,
            }
            if let Some(n) = links.next.as_ref() {
                (*n.links.get()).prev = links.prev;
            }
            *links = Links::default();
        }
        h.shard.store(usize::MAX, Ordering::Relaxed);
        shard.len -= 1;
    }

    /// Calls `f` on every live coroutine, shard by shard, under the shard
    /// lock: `f` must be short and must not spawn or finish coroutines.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&Header)) {
        for i in 0..self.shards.len() {
            let shard = self.lock(i);
            let mut p = shard.head;
            // SAFETY: invariants 1 and 2: linked headers are alive and their
            // links are stable while we hold the lock.
            while let Some(h) = unsafe { p.as_ref() } {
                f(h);
                // SAFETY: as above.
                p = unsafe { (*h.links.get()).next };
            }
        }
    }

    /// Started, unfinished coroutines owned by worker `w` (for shutdown).
    pub(crate) fn owned_by(&self, w: usize) -> Vec<TaskRef> {
        let mut out = Vec::new();
        self.for_each(|h| {
            let lc = State::lifecycle(h.state.load_relaxed());
            if lc != NEW && lc != DONE && h.worker.load(Ordering::Relaxed) == w {
                // SAFETY: linked, hence alive (invariant 2).
                out.push(unsafe { TaskRef::from_ptr(NonNull::from(h)) });
            }
        });
        out
    }

    /// Number of live coroutines.
    pub(crate) fn len(&self) -> usize {
        (0..self.shards.len()).map(|i| self.lock(i).len).sum()
    }
}
