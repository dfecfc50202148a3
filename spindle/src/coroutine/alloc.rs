//! Recycled memory for task allocations.
//!
//! Every spawn allocates one task (header + closure + output slot) and
//! every join frees it. Going through the global allocator each time costs
//! more than the rest of a spawn, and with glibc a burst of 100,000 spawns
//! followed by their joins makes the worker's arena grow and shrink again
//! (mprotect, madvise, page faults) on every burst. Like Go, which keeps
//! dead goroutine descriptors on per-P free lists, spindle keeps freed task
//! blocks in size classes: a per-worker cache, spilling to a global list.
//! Memory of the peak number of live tasks is kept for reuse (a few hundred
//! bytes per task); blocks larger than the largest class go straight to the
//! global allocator.
//!
//! # Invariants (this is an unsafe module)
//!
//! - Every block in a list was allocated by `std::alloc::alloc` with the
//!   layout of its class (`class_layout`), is not in use, and appears once.

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::ptr::NonNull;
use std::sync::Mutex;

use crate::scheduler::worker;

/// Class `i` holds blocks of `(i + 1) * GRANULE` bytes.
const GRANULE: usize = 64;
/// Number of classes: blocks up to 2 KiB are recycled.
const CLASSES: usize = 32;
/// Alignment of every recycled block.
const ALIGN: usize = 16;
/// A worker keeps at most this many blocks per class before spilling half.
const LOCAL_CAP: usize = 4096;

struct Blocks(Vec<NonNull<u8>>);

// SAFETY: the pointers are unused blocks owned by the list (invariant 1);
// moving them between threads moves that ownership.
unsafe impl Send for Blocks {}

static GLOBAL: [Mutex<Blocks>; CLASSES] = [const { Mutex::new(Blocks(Vec::new())) }; CLASSES];

/// A worker's own cache of free task blocks, one list per class. Lives in
/// the worker's context, so the common spawn and join touch no lock and no
/// thread-local lookup beyond the worker's own.
pub(crate) struct Cache([Vec<NonNull<u8>>; CLASSES]);

impl Cache {
    pub(crate) fn new() -> Cache {
        Cache([const { Vec::new() }; CLASSES])
    }

    fn pop(&mut self, class: usize) -> Option<NonNull<u8>> {
        if let Some(p) = self.0[class].pop() {
            return Some(p);
        }
        // Refill a batch from the global list.
        let mut g = lock(class);
        let take = g.0.len().min(LOCAL_CAP / 2);
        let at = g.0.len() - take;
        self.0[class].extend(g.0.drain(at..));
        self.0[class].pop()
    }

    fn push(&mut self, class: usize, p: NonNull<u8>) {
        let list = &mut self.0[class];
        if list.len() >= LOCAL_CAP {
            let half = list.len() / 2;
            lock(class).0.extend(list.drain(half..));
        }
        list.push(p);
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        for (class, list) in self.0.iter_mut().enumerate() {
            if !list.is_empty() {
                lock(class).0.append(list);
            }
        }
    }
}

fn lock(class: usize) -> std::sync::MutexGuard<'static, Blocks> {
    GLOBAL[class].lock().unwrap_or_else(|e| e.into_inner())
}

fn class_of(layout: Layout) -> Option<usize> {
    if layout.align() > ALIGN || layout.size() == 0 {
        return None;
    }
    let class = layout.size().div_ceil(GRANULE) - 1;
    (class < CLASSES).then_some(class)
}

fn class_layout(class: usize) -> Layout {
    // Cannot fail: a small multiple of 64 with a small power-of-two alignment.
    Layout::from_size_align((class + 1) * GRANULE, ALIGN).expect("valid class layout")
}

/// Allocates memory for `layout`, recycled if possible: from the calling
/// worker's cache, or the global list on other threads.
pub(crate) fn allocate(layout: Layout) -> NonNull<u8> {
    let Some(class) = class_of(layout) else {
        return raw_alloc(layout);
    };
    let recycled = match worker::context() {
        // SAFETY: the worker's context is alive and only this thread uses
        // its cache; the borrow ends within this call.
        Some(cx) => unsafe { (*cx).with_task_cache(|c| c.pop(class)) },
        None => lock(class).0.pop(),
    };
    recycled.unwrap_or_else(|| raw_alloc(class_layout(class)))
}

/// Returns memory obtained from [`allocate`] with the same `layout`.
///
/// # Safety
/// `p` came from `allocate(layout)` and is no longer used.
pub(crate) unsafe fn deallocate(p: NonNull<u8>, layout: Layout) {
    let Some(class) = class_of(layout) else {
        // SAFETY: allocated by `raw_alloc(layout)` (the caller's contract).
        unsafe { dealloc(p.as_ptr(), layout) };
        return;
    };
    match worker::context() {
        // SAFETY: as in `allocate`.
        Some(cx) => unsafe { (*cx).with_task_cache(|c| c.push(class, p)) },
        None => lock(class).0.push(p),
    }
}

fn raw_alloc(layout: Layout) -> NonNull<u8> {
    // SAFETY: task layouts are never zero-sized (the header alone is not).
    NonNull::new(unsafe { alloc(layout) }).unwrap_or_else(|| handle_alloc_error(layout))
}
