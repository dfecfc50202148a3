//! Coroutine stacks: lazily committed, guard-paged, carved from large
//! regions and reused through per-worker pools, plus the handler that names
//! the coroutine whose stack overflowed.
//!
//! # Life of a stack
//!
//! ```text
//!  Builder::spawn ── reserve(size) ──────────► Reservation  (may map a region;
//!      on a worker: LocalPool::reserve_claim ─┘              errors surface here)
//!  worker, first run ── LocalPool::take(r) ──► Stack  (worker cache, global
//!                                                      list, or a fresh slot)
//!  coroutine finished ── LocalPool::give(stack)  (pages stay committed for reuse)
//! ```
//!
//! # What the runtime calls, and when
//!
//! - Once, before the first coroutine runs: [`install_handler`].
//! - On each worker thread, at start: [`AltStack::install`] (keep it until
//!   the thread ends; it is not `Send`) and [`LocalPool::new`].
//! - At spawn: [`reserve`] (a claim; the stack itself is taken at first
//!   run); return its error from `Builder::spawn`.
//! - Before a coroutine's first run, on the worker that runs it:
//!   [`LocalPool::take`], then [`GuardInfo::attach`] on the coroutine's
//!   header.
//! - Once, before the first resume: [`set_resolver`] with a function that
//!   finds the running coroutine's [`GuardInfo`] from what the worker
//!   already records (no per-switch cost). Code that drives coroutines
//!   itself (the tests) uses `set_current` around each resume instead.
//! - When the coroutine is done: `Coroutine::into_stack`, then
//!   [`LocalPool::give`].
//!
//! # One region, many slots
//!
//! A region is one `mmap` (a few dozen MiB of address space, committed only
//! where touched), cut into slots of one guard page plus the usable size:
//!
//! ```text
//!  region start                                                      region end
//!  │ G │ stack 0       │ G │ stack 1       │ G │ stack 2       │ ... │ G │ stack n-1 │
//!  low addresses ─────────────────────────────────────────────────► high addresses
//!
//!  one slot:
//!            limit()                                     base()
//!            │                                             │
//!            ▼                                             ▼
//!            ┌─────────────┬───────────────────────────────┐
//!            │ guard page  │ usable: `size` bytes          │
//!            │ (faults)    │        ◄──── grows down ───── │
//!            └─────────────┴───────────────────────────────┘
//!            guard_range()  only the pages touched are committed
//! ```
//!
//! A stack that overflows runs into its own guard page; one that overruns
//! its base (upwards, which well-formed code never does) hits the next
//! slot's guard.
//!
//! # Memory is retained
//!
//! Stacks are never unmapped in steady state: a finished coroutine's stack,
//! with its touched pages still committed, goes back to a free list for the
//! next spawn, so spawning does not call `mmap` or fault in fresh pages.
//! The price: the peak number of stacks in use, and the pages they touched,
//! stay mapped for the life of the process.
//!
//! # Invariants the unsafe code relies on
//!
//! - A slot is owned by exactly one of: its region's uncarved tail, one free
//!   list (global or a [`LocalPool`]'s cache), or one [`Stack`] (possibly
//!   held by a [`Reservation`]). Moving a slot between owners is a move of
//!   the value that names it, so two live `Stack`s never share memory.
//! - Regions are never unmapped, so a slot's memory outlives every `Stack`,
//!   and the guard page below each slot is installed before the slot is
//!   handed out (when its region is mapped, or when it is first carved:
//!   `region.rs`, "Guards") and never removed.
//! - Accounting (see `region.rs`): per size class, the slots that can still
//!   be handed out, minus outstanding [`Reservation`]s, never goes below 0,
//!   so [`LocalPool::take`] always finds a slot for a reservation.

mod altstack;
#[cfg(test)]
mod crash_tests;
mod overflow;
mod pool;
mod region;
mod sys;
#[cfg(test)]
mod tests;

use std::num::NonZeroUsize;
use std::sync::OnceLock;

pub(crate) use altstack::AltStack;
#[cfg(test)]
pub(crate) use overflow::set_current;
pub(crate) use overflow::{GuardInfo, install_handler, set_resolver};
pub(crate) use pool::LocalPool;
// For introspection (stack memory per size class).
#[cfg_attr(not(test), allow(unused_imports))]
pub(crate) use region::{ClassStats, stats};

use region::Class;

/// The smallest usable stack size handed out: 32 KiB; smaller requests are
/// rounded up to it. A panic needs room of its own: formatting and
/// unwinding fit in 16 KiB, but with `RUST_BACKTRACE=1` the first
/// backtrace (symbolization) needed 20–24 KiB when measured (Rust 1.95,
/// x86_64, debug and release), so 16 KiB stacks would turn a panic into a
/// stack overflow. The larger minimum costs address space only: untouched
/// pages are never committed.
pub(crate) const MIN_STACK_SIZE: usize = 32 << 10;

/// The usable stack size when neither the environment nor the builder
/// chooses one.
const DEFAULT_STACK_SIZE: usize = 256 << 10;

/// The environment variable that overrides [`default_stack_size`].
const STACK_SIZE_VAR: &str = "SPINDLE_STACK_SIZE";

/// Default usable stack size: the `SPINDLE_STACK_SIZE` environment variable
/// (bytes; a plain integer or one with a `K`/`KiB`/`M`/`MiB`/`G`/`GiB`
/// suffix, any case), else 256 KiB; normalized by [`normalize_size`].
/// Read once; an invalid value is ignored with one warning on stderr.
pub(crate) fn default_stack_size() -> usize {
    static SIZE: OnceLock<usize> = OnceLock::new();
    *SIZE.get_or_init(|| {
        let size = match std::env::var(STACK_SIZE_VAR) {
            Err(std::env::VarError::NotPresent) => DEFAULT_STACK_SIZE,
            Ok(v) => parse_size(&v).unwrap_or_else(|| {
                eprintln!(
                    "spindle: ignoring {STACK_SIZE_VAR}={v:?}: expected a size in bytes such \
                     as 262144, 256K or 1MiB; using {}",
                    sys::human(DEFAULT_STACK_SIZE as u64)
                );
                DEFAULT_STACK_SIZE
            }),
            Err(std::env::VarError::NotUnicode(v)) => {
                eprintln!(
                    "spindle: ignoring {STACK_SIZE_VAR}={v:?}: not valid UTF-8; using {}",
                    sys::human(DEFAULT_STACK_SIZE as u64)
                );
                DEFAULT_STACK_SIZE
            }
        };
        normalize_size(size)
    })
}

/// Parses "262144", "256K", "256 KiB", "1m", "1MiB", "2G": a positive byte
/// count. `None` for anything else, zero, or an overflow.
fn parse_size(s: &str) -> Option<usize> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(digits);
    let num: usize = num.parse().ok()?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return None,
    };
    let bytes = num.checked_mul(1usize << shift)?;
    (bytes > 0).then_some(bytes)
}

/// Rounds a requested usable size up to whole pages, and to at least
/// [`MIN_STACK_SIZE`] (32 KiB). Sizes too close to `usize::MAX` to round
/// saturate at the largest page multiple (and then fail in [`reserve`]).
pub(crate) fn normalize_size(size: usize) -> usize {
    let page = sys::page_size();
    let size = size.max(MIN_STACK_SIZE);
    size.checked_next_multiple_of(page)
        .unwrap_or(usize::MAX & !(page - 1))
}

/// A coroutine stack: `usable_size()` bytes with one guard page below them,
/// carved from a region. Owned and `Send`; moving it moves the ownership
/// of the memory. Dropping it (rather than [`LocalPool::give`]) returns it
/// to its size class's global free list.
pub(crate) struct Stack {
    /// The highest address of the slot, where the stack starts.
    base: NonZeroUsize,
    /// The size class the slot belongs to.
    class: &'static Class,
}

impl Stack {
    /// The number of usable bytes, guard page excluded.
    pub(crate) fn usable_size(&self) -> usize {
        self.class.size()
    }

    /// `[start, end)` of the guard page just below the usable bytes.
    pub(crate) fn guard_range(&self) -> (usize, usize) {
        let end = self.base.get() - self.class.size();
        (end - sys::page_size(), end)
    }

    /// Gives up ownership without returning the slot anywhere; the caller
    /// now owns the slot at `base` of `class`.
    fn into_raw(self) -> (NonZeroUsize, &'static Class) {
        let me = std::mem::ManuallyDrop::new(self);
        (me.base, me.class)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.class.release(std::iter::once(self.base));
    }
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (guard, _) = self.guard_range();
        f.debug_struct("Stack")
            .field("base", &format_args!("{:#x}", self.base))
            .field("guard", &format_args!("{guard:#x}"))
            .field("usable_size", &self.usable_size())
            .finish()
    }
}

// SAFETY: `base()` is the top of a slot of `usable_size()` writable bytes
// (at least MIN_STACK_SIZE, above corosensei's minimum) that this `Stack`
// owns exclusively (module invariant 1) and that stays mapped (regions are
// never unmapped). `limit()` is the bottom of the guard page below them, which
// faults on any access (installed before the slot was handed out). Both are
// page-aligned, hence aligned to STACK_ALIGNMENT (16).
unsafe impl corosensei::stack::Stack for Stack {
    #[inline]
    fn base(&self) -> corosensei::stack::StackPointer {
        self.base
    }

    #[inline]
    fn limit(&self) -> corosensei::stack::StackPointer {
        let (guard_start, _) = self.guard_range();
        // Slots start above address 0: the region's mapping is never at 0.
        NonZeroUsize::new(guard_start).unwrap_or(self.base)
    }
}

/// Proof that one stack of a given size can be handed out, taken when a
/// coroutine is spawned so that running out of memory or maps is reported
/// by `Builder::spawn`. Turn it into a [`Stack`] with [`LocalPool::take`]
/// (on any worker); dropping it un-reserves. `Send`.
///
/// It is a claim on the class's slots (see `region.rs`), never a stack:
/// binding cached stacks to queued coroutines at spawn was measured slower
/// (a burst of spawns then starts on cold stacks from the global list).
pub(crate) struct Reservation {
    /// The claim backing the promise.
    claim: Claim,
}

/// One claim on a size class's slots; dropping it gives the claim back.
struct Claim(&'static Class);

impl Claim {
    /// Ends the claim without giving it back: the caller takes a slot for
    /// it, or returns it itself.
    fn spend(self) -> &'static Class {
        std::mem::ManuallyDrop::new(self).0
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.0.unclaim(1);
    }
}

impl Reservation {
    /// The usable size of the stack this reservation will become.
    pub(crate) fn size(&self) -> usize {
        self.claim.0.size()
    }
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation")
            .field("size", &self.size())
            .finish()
    }
}

/// Reserves one stack of `size` usable bytes (normalized with
/// [`normalize_size`]). Cheap (one atomic on a counter shared by all
/// threads) unless the size class is exhausted; then it maps a new region,
/// and reports failure as an [`std::io::ErrorKind::OutOfMemory`] error that
/// says what ran out. On a worker thread, [`LocalPool::reserve_claim`] is
/// cheaper.
pub(crate) fn reserve(size: usize) -> std::io::Result<Reservation> {
    let class = region::class_for(normalize_size(size))?;
    class.claim_one()?;
    Ok(Reservation {
        claim: Claim(class),
    })
}
