//! Size classes: the regions of one stack size, their global free list,
//! and the accounting that lets `reserve` promise a stack in advance.
//!
//! # Accounting
//!
//! Each class keeps one counter, `available`:
//!
//! ```text
//!  available = slots in the global free list + uncarved slots
//!              - outstanding claims (Reservations not yet taken)
//! ```
//!
//! | operation                          | resource          | `available`          |
//! | ---------------------------------- | ----------------- | -------------------- |
//! | claim (`reserve`)                  |                   | -1, only if it is >0 |
//! | map a region of n slots            | +n uncarved       | +n, after            |
//! | take from free list / carve        | -1 (a claim held) | (the claim is spent) |
//! | release to the free list           | +1                | +1, after            |
//! | a worker cache hit spends a claim  |                   | +1 (unclaim)         |
//! | a cached stack backs a reservation |                   | (no claim made)      |
//!
//! `available` is only decremented by a claim and only while positive, the
//! resource only shrinks by a claim holder, and every increment of the
//! resource happens before the matching increment of `available`; so the
//! free list plus the uncarved slots always hold at least one slot per
//! outstanding claim, and taking with a claim cannot fail. Slots cached by a
//! worker's `LocalPool` are outside this count (invisible to other
//! workers); a worker spends a claim on its cache by un-claiming.
//!
//! Orderings: increments are `Release` and a successful claim is `Acquire`,
//! so a thread whose claim consumed an increment also sees (through the
//! `state` mutex it then locks) the slot that increment announced.
//!
//! # Guards
//!
//! With `madvise(MADV_GUARD_INSTALL)` (`sys`, "Guard pages") a slot's guard
//! is installed when the slot is first carved, not when its region is
//! mapped: claims reserve slots at spawn, so a burst of 100,000 spawns
//! whose coroutines run one after another on a few recycled stacks would
//! otherwise pay 100,000 guard system calls (and the page tables behind
//! them) for slots it never uses. With the `mprotect` fallback every guard
//! is installed at mapping, as each one costs kernel memory maps, and
//! running out of those must show at `reserve` (spawn), not later.
//!
//! Invariants the unsafe code relies on: see the module docs of `stack`;
//! here, every base in `free` and every slot in `uncarved` lies in a region
//! this class mapped and never unmaps; every base in `free` is guarded; a
//! slot in `uncarved` is guarded if it lies below its span's
//! `unguarded_from`, and is guarded by `take_claimed` before it is handed
//! out otherwise.

use std::io;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use super::sys;

/// The address space a region aims for; the slot count is derived from it.
const REGION_BYTES: usize = 64 << 20;
/// At most this many slots per region, so that mapping one (and installing
/// its guards, ~1 µs each) stays well under a millisecond.
const MAX_SLOTS_PER_REGION: usize = 512;

/// One stack size: its regions, free list and accounting.
pub(crate) struct Class {
    /// Usable bytes per stack (normalized).
    size: usize,
    /// Bytes per slot: one guard page plus `size`.
    slot: usize,
    /// Slots a region of this class aims for.
    slots_per_region: usize,
    /// Claimable slots; see the module docs.
    available: AtomicUsize,
    /// The global free list and the uncarved slots.
    state: Mutex<State>,
    /// Held while mapping a new region, so only one thread maps at a time.
    grow: Mutex<()>,
    /// Regions mapped so far (statistics).
    regions: AtomicUsize,
    /// Slots mapped so far (statistics).
    slots: AtomicUsize,
    /// Guard pages installed so far (statistics).
    guarded: AtomicUsize,
}

/// The part of a class behind its mutex.
struct State {
    /// Bases of free stacks; LIFO, so recently used (committed) ones first.
    free: Vec<NonZeroUsize>,
    /// Parts of regions not cut into stacks yet.
    uncarved: Vec<Span>,
}

/// `left` not yet carved slots, the lowest starting at `next`.
struct Span {
    /// Address of the next slot (its guard page).
    next: usize,
    /// Slots left in this span.
    left: usize,
    /// Slots at or above this address have no guard yet (`usize::MAX`:
    /// all were guarded when mapped).
    unguarded_from: usize,
}

/// A snapshot of one size class, for introspection.
#[cfg_attr(not(test), allow(dead_code, reason = "for introspection"))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ClassStats {
    /// Usable bytes per stack.
    pub(crate) size: usize,
    /// Regions mapped.
    pub(crate) regions: usize,
    /// Slots mapped (each a guard page plus `size` bytes of address space).
    pub(crate) slots: usize,
    /// Slots that `reserve` can still promise without mapping.
    pub(crate) available: usize,
    /// Stacks in the global free list.
    pub(crate) free: usize,
    /// Slots whose guard page is installed.
    pub(crate) guarded: usize,
}

/// Every class ever used; classes live for the process (regions are
/// retained), so they are leaked and handed out as `&'static`.
static CLASSES: Mutex<Vec<&'static Class>> = Mutex::new(Vec::new());

/// The class of [`super::default_stack_size`], the one reached without a lock.
pub(super) fn default_class() -> &'static Class {
    static DEFAULT: OnceLock<&'static Class> = OnceLock::new();
    DEFAULT.get_or_init(|| lookup(super::default_stack_size()))
}

/// The class of a normalized `size`.
pub(super) fn class_for(size: usize) -> io::Result<&'static Class> {
    let default = default_class();
    if size == default.size {
        return Ok(default);
    }
    if size
        .checked_add(sys::page_size())
        .is_none_or(|s| s > isize::MAX as usize)
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("spindle: coroutine stack size of {size} bytes is too large"),
        ));
    }
    Ok(lookup(size))
}

/// Finds or creates the class of `size`, which must not overflow a slot.
fn lookup(size: usize) -> &'static Class {
    let mut classes = lock(&CLASSES);
    if let Some(c) = classes.iter().find(|c| c.size == size) {
        return c;
    }
    let slot = size + sys::page_size();
    let class: &'static Class = Box::leak(Box::new(Class {
        size,
        slot,
        slots_per_region: (REGION_BYTES / slot).clamp(1, MAX_SLOTS_PER_REGION),
        available: AtomicUsize::new(0),
        state: Mutex::new(State {
            free: Vec::new(),
            uncarved: Vec::new(),
        }),
        grow: Mutex::new(()),
        regions: AtomicUsize::new(0),
        slots: AtomicUsize::new(0),
        guarded: AtomicUsize::new(0),
    }));
    classes.push(class);
    class
}

/// Statistics of every size class used so far.
#[cfg_attr(not(test), allow(dead_code, reason = "for introspection"))]
pub(crate) fn stats() -> Vec<ClassStats> {
    lock(&CLASSES).iter().map(|c| c.stats()).collect()
}

/// Locks, ignoring poison: no code panics while holding these locks with
/// the protected data half-updated (pushes and pops are single steps).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Class {
    /// Usable bytes per stack.
    pub(super) fn size(&self) -> usize {
        self.size
    }

    /// A snapshot for introspection.
    #[cfg_attr(not(test), allow(dead_code, reason = "for introspection"))]
    pub(super) fn stats(&self) -> ClassStats {
        let free = lock(&self.state).free.len();
        ClassStats {
            size: self.size,
            regions: self.regions.load(Ordering::Relaxed),
            slots: self.slots.load(Ordering::Relaxed),
            available: self.available.load(Ordering::Relaxed),
            free,
            guarded: self.guarded.load(Ordering::Relaxed),
        }
    }

    /// Claims up to `max` slots without mapping; returns how many.
    pub(super) fn try_claim(&self, max: usize) -> usize {
        let mut cur = self.available.load(Ordering::Relaxed);
        loop {
            let n = cur.min(max);
            if n == 0 {
                return 0;
            }
            // Acquire on success: pairs with the Release increment that
            // made these slots claimable (module docs).
            match self.available.compare_exchange_weak(
                cur,
                cur - n,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return n,
                Err(now) => cur = now,
            }
        }
    }

    /// Gives back `n` claims (or announces `n` new slots).
    pub(super) fn unclaim(&self, n: usize) {
        // Release: pairs with the Acquire of `try_claim`.
        self.available.fetch_add(n, Ordering::Release);
    }

    /// Claims one slot, mapping a new region if the class is exhausted.
    pub(super) fn claim_one(&self) -> io::Result<()> {
        if self.try_claim(1) == 1 {
            return Ok(());
        }
        let _grow = lock(&self.grow);
        // Another thread may have mapped a region while we waited.
        if self.try_claim(1) == 1 {
            return Ok(());
        }
        let span = self.map_region()?;
        let n = span.left;
        lock(&self.state).uncarved.push(span);
        self.regions.fetch_add(1, Ordering::Relaxed);
        self.slots.fetch_add(n, Ordering::Relaxed);
        // Keep one of the new slots as our claim.
        self.unclaim(n - 1);
        Ok(())
    }

    /// Maps and guards a region: `slots_per_region` slots, or fewer if the
    /// address space is short (halving down to one slot). Returns its slots.
    fn map_region(&self) -> io::Result<Span> {
        let mut want = self.slots_per_region;
        let (start, mut count) = loop {
            match sys::map(want * self.slot) {
                Ok(p) => break (p.as_ptr(), want),
                Err(e) if e == rustix::io::Errno::NOMEM && want > 1 => want /= 2,
                Err(e) => return Err(sys::map_error(e, self.size)),
            }
        };
        let page = sys::page_size();
        // The first guard also finds out how guards are installed here.
        let mut guarded = count;
        for i in 0..count {
            if i == 1 && sys::guard_mode() == Some(sys::GuardMode::Madvise) {
                // The others are installed as the slots are carved (module
                // docs, "Guards").
                guarded = 1;
                break;
            }
            // SAFETY: slot `i` lies inside the mapping just made (i < count
            // slots of `self.slot` bytes); its first page is the guard, and
            // no one has seen this memory yet.
            let r = unsafe { sys::install_guard(start.add(i * self.slot), page) };
            if let Err(e) = r {
                let err = sys::guard_error(e, self.size);
                let tail = (count - i) * self.slot;
                // SAFETY: slots `i..count` are inside our mapping, unguarded
                // and never handed out; nothing will use them.
                unsafe { sys::unmap(start.add(i * self.slot), tail) };
                if i == 0 {
                    return Err(err);
                }
                // Keep the slots that did get a guard; the next region will
                // report the error.
                count = i;
                break;
            }
        }
        self.guarded
            .fetch_add(guarded.min(count), Ordering::Relaxed);
        Ok(Span {
            next: start as usize,
            left: count,
            unguarded_from: if guarded < count {
                start as usize + guarded * self.slot
            } else {
                usize::MAX
            },
        })
    }

    /// Pops a stack for a claim the caller holds (the claim is spent), and up
    /// to `extra` more from the free list, claimed here, into `out`.
    ///
    /// Fails if a freshly carved slot's guard cannot be installed (the
    /// kernel is out of memory for page tables), or, as an internal error,
    /// if the accounting invariant was broken.
    pub(super) fn take_claimed(
        &'static self,
        extra: usize,
        out: &mut Vec<super::Stack>,
    ) -> io::Result<super::Stack> {
        let extra = self.try_claim(extra);
        let mut st = lock(&self.state);
        let (got, unguarded) = match st.free.pop() {
            Some(base) => (Some(base), false),
            None => match Self::carve(&mut st.uncarved, self.slot) {
                Some((base, unguarded)) => (Some(base), unguarded),
                None => (None, false),
            },
        };
        let more = extra.min(st.free.len());
        let at = st.free.len() - more;
        out.extend(
            st.free
                .drain(at..)
                .map(|base| super::Stack { base, class: self }),
        );
        drop(st);
        // Give back the extra claims the free list could not cover.
        if extra > more {
            self.unclaim(extra - more);
        }
        let base = got.ok_or_else(|| {
            io::Error::other(format!(
                "spindle: internal error: a reserved {} stack found no free or unused slot \
                 (stack accounting is broken; please report this bug)",
                sys::human(self.size as u64)
            ))
        })?;
        if unguarded {
            // Outside the lock: a system call. On failure the slot is
            // dropped from use (it is never handed out unguarded).
            let page = sys::page_size();
            // SAFETY: the slot's lowest page lies in a region this class
            // mapped; the slot was just carved, so nothing uses it.
            unsafe { sys::install_guard((base.get() - self.slot) as *mut u8, page) }
                .map_err(|e| sys::guard_error(e, self.size))?;
            self.guarded.fetch_add(1, Ordering::Relaxed);
        }
        Ok(super::Stack { base, class: self })
    }

    /// Cuts the next slot off the uncarved spans; returns its stack base
    /// and whether its guard is still to be installed.
    fn carve(uncarved: &mut Vec<Span>, slot: usize) -> Option<(NonZeroUsize, bool)> {
        let span = uncarved.last_mut()?;
        let unguarded = span.next >= span.unguarded_from;
        let base = span.next + slot;
        span.next += slot;
        span.left -= 1;
        if span.left == 0 {
            uncarved.pop();
        }
        Some((NonZeroUsize::new(base)?, unguarded))
    }

    /// Puts stacks of this class back on the global free list.
    pub(super) fn release(&self, bases: impl Iterator<Item = NonZeroUsize>) {
        let mut st = lock(&self.state);
        let before = st.free.len();
        st.free.extend(bases);
        let n = st.free.len() - before;
        drop(st);
        self.unclaim(n);
    }
}
