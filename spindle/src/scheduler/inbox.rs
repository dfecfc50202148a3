//! A worker's inbox: wake-ups of its coroutines that come from other
//! threads.
//!
//! A mutex-protected vector plus a flag the owner checks without locking.
//! The owner drains the whole batch at once, so each wake-up costs one
//! uncontended lock on each side. (Measured cheap enough for now; an
//! intrusive MPSC queue through the coroutine header is the next step if
//! cross-worker wake-ups show up in a profile.)

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::coroutine::task::TaskRef;

/// See the module docs.
pub(crate) struct Inbox {
    items: Mutex<Vec<TaskRef>>,
    nonempty: AtomicBool,
}

impl Inbox {
    pub(crate) fn new() -> Inbox {
        Inbox {
            items: Mutex::new(Vec::new()),
            nonempty: AtomicBool::new(false),
        }
    }

    /// Adds a woken coroutine.
    pub(crate) fn push(&self, t: TaskRef) {
        let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        items.push(t);
        // Release under the lock: the owner's Acquire load of the flag
        // sees the item (it then takes the lock anyway).
        self.nonempty.store(true, Ordering::Release);
    }

    /// Cheap check for the owner's loop.
    #[inline]
    pub(crate) fn has_items(&self) -> bool {
        self.nonempty.load(Ordering::Acquire)
    }

    /// Moves every pending item into `out`.
    pub(crate) fn drain_into(&self, out: &mut Vec<TaskRef>) {
        let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        self.nonempty.store(false, Ordering::Relaxed);
        std::mem::swap(&mut *items, out);
    }
}
