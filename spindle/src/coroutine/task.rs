//! The coroutine's heap header and its reference-counted handle.
//!
//! # Layout
//!
//! One allocation per coroutine, `Task<F, T>`, `#[repr(C)]` with the
//! type-erased [`Header`] first so a `NonNull<Header>` can stand for the
//! whole task; the vtable recovers `F` and `T` where needed:
//!
//! ```text
//!  TaskRef ──► ┌──────────────────────────────┐
//!              │ Header                       │  state word, refcount, vtable,
//!              │                              │  identity, owner worker, run state
//!              ├──────────────────────────────┤
//!              │ f:   Option<F>   (closure)   │  taken when the coroutine starts
//!              │ out: Option<thread::Result<T>>│  written when it returns
//!              └──────────────────────────────┘
//! ```
//!
//! # Invariants (this is an unsafe module)
//!
//! 1. `refs` counts live `TaskRef`s (including the one inside `JoinHandle`);
//!    the task is freed by `vtable.dealloc` when it drops to zero.
//! 2. `run` (the corosensei coroutine, its stack, the yielder, locals) is
//!    touched only by the worker that currently runs or resumes the
//!    coroutine, and only while no other worker can: a started coroutine is
//!    resumed only by its owner worker, or, if migratable, by the single
//!    worker that dequeued it after the `PARKED → QUEUED` CAS.
//! 3. `f` is taken exactly once, by `vtable.run` (on the coroutine's stack)
//!    or `vtable.cancel` (never started); `out` is written before the state
//!    word becomes `DONE` (Release) and read only after observing `DONE`
//!    (Acquire), by the single `JoinHandle`.
//! 4. A started coroutine that has not finished is never dropped (that
//!    would unwind it on whatever thread drops it): if one remains at
//!    deallocation it is leaked, stack included (`Header::drop`).
//! 5. A header still linked in the registry is never freed: the registry
//!    reads linked headers under its shard locks without holding a
//!    reference (`introspect::registry`). Only a started coroutine that
//!    never finished can be linked when its last reference drops (`finish`
//!    unlinks while its caller holds a reference); that one is leaked whole.

use std::any::Any;
use std::cell::UnsafeCell;
use std::panic::{AssertUnwindSafe, Location};
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicI8, AtomicU8, AtomicU64, AtomicUsize, Ordering, fence};
use std::thread;

use corosensei::{Coroutine as Co, Yielder};

use crate::coroutine::alloc;
use crate::coroutine::local::LocalMap;
use crate::introspect::registry::Links;
use crate::park::Unparker;
use crate::park::state::State;
use crate::policy::SchedData;
use crate::scheduler::Shared;
use crate::stack::{GuardInfo, Reservation, Stack};

/// Why a coroutine handed control back to its worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Suspend {
    /// `yield_now`: requeue at the back.
    Yield,
    /// `park`: the worker commits the park (see `park::state`).
    Park,
    /// A runtime call found the turn over (`scheduler::coop`): requeue as
    /// the worker's policy says (`Context::forced` tells why).
    Forced,
}

/// The corosensei coroutine type every spindle coroutine runs as.
pub(crate) type RawCo = Co<(), Suspend, (), Stack>;

/// Owner worker index of a coroutine that has not started yet.
pub(crate) const NO_WORKER: usize = usize::MAX;

/// Functions that know the task's concrete `F` and `T`.
pub(crate) struct VTable {
    /// Runs the closure to completion on the coroutine's stack and stores
    /// its output (or panic payload).
    run: unsafe fn(NonNull<Header>),
    /// Drops a never-started closure and stores `Err(payload)`
    /// (`Cancelled` when none is given).
    cancel: unsafe fn(NonNull<Header>, Option<Box<dyn Any + Send>>),
    /// Moves the output into `*mut Option<thread::Result<T>>`.
    take_output: unsafe fn(NonNull<Header>, *mut ()),
    /// Frees the allocation.
    dealloc: unsafe fn(NonNull<Header>),
}

/// A coroutine's stack, from spawn to end: one field, since a coroutine
/// holds either a reservation or a running coroutine, never both.
pub(crate) enum Stage {
    /// Spawned: the stack reserved at spawn, until the coroutine starts.
    Reserved(Reservation),
    /// Started: the corosensei coroutine on its stack.
    Running(RawCo),
    /// Finished, cancelled unstarted, or failed to start.
    Gone,
}

impl Stage {
    /// Takes the stage out, leaving `Gone`.
    pub(crate) fn take(&mut self) -> Stage {
        std::mem::replace(self, Stage::Gone)
    }
}

/// State touched only by the worker running the coroutine (invariant 2).
pub(crate) struct RunState {
    /// The stack: reserved, then running.
    pub(crate) stage: Stage,
    /// The coroutine's yielder, set on its first instruction.
    pub(crate) yielder: *const Yielder<(), Suspend>,
    /// Coroutine-local storage.
    pub(crate) locals: LocalMap,
    /// Depth of sections that must not be unwound by shutdown (scope waits).
    pub(crate) no_unwind: u32,
    /// Set once the coroutine panicked or was cancelled: shutdown never
    /// starts a second unwind in it (see `park::check_cancelled`).
    pub(crate) unwinding: bool,
}

/// The type-erased part of every task.
///
/// Fields are ordered by who touches them when (`repr(C)` keeps the
/// order): the first 64 bytes hold what every wake-up, start and finish
/// touches, so a coroutine stolen by another worker costs few cache-line
/// transfers; identity and introspection come last. (Aligning the header
/// to 64 bytes as well was measured slower: the larger blocks cost more
/// cache misses than the alignment saved.)
#[repr(C)]
pub(crate) struct Header {
    // -- line 0: the state word, counts, ownership, registry links --------
    /// The park protocol's state word.
    pub(crate) state: State,
    /// Introspection: the last wait reason (a `WaitReason as u8`).
    pub(crate) wait_reason: AtomicU8,
    /// Whether the scheduler may move it between workers while parked.
    pub(crate) migratable: bool,
    /// Its nice value (−20..=19), written by `Coroutine::set_nice` from
    /// anywhere, copied into `sched` by its worker at each turn.
    pub(crate) nice: AtomicI8,
    refs: AtomicUsize,
    vtable: &'static VTable,
    /// The worker it runs on (its owner once started), or `NO_WORKER`.
    pub(crate) worker: AtomicUsize,
    /// Which registry shard holds this task (its worker's, set at start;
    /// `usize::MAX` before).
    pub(crate) shard: AtomicUsize,
    /// Registry list links, guarded by the registry shard's lock.
    pub(crate) links: UnsafeCell<Links>,
    /// Incremented at every park, so the timer of an earlier park is ignored.
    pub(crate) park_gen: AtomicU64,
    // -- lines 1-2: what the running worker and the coroutine touch -------
    /// See [`RunState`].
    pub(crate) run: UnsafeCell<RunState>,
    /// Introspection: times resumed.
    pub(crate) scheduled: AtomicU64,
    /// Introspection: clock ticks spent running (sampled).
    pub(crate) run_ticks: AtomicU64,
    // -- colder: joining, identity, introspection ---------------------------
    /// Introspection: the address of the primitive it waits on (a lock, a
    /// channel), or 0; see `park::set_blocked_on`.
    pub(crate) blocked_on: AtomicUsize,
    /// Introspection: the header address of the coroutine holding that
    /// primitive when it parked (0 if unknown or a plain thread).
    pub(crate) blocked_owner: AtomicUsize,
    /// The joiner's unparker: written once by the single joiner before it
    /// sets `JOIN_WAITING` in the state word, taken once by the finishing
    /// worker after `complete` saw that bit (Acquire); never touched
    /// concurrently.
    joiner: UnsafeCell<Option<Unparker>>,
    /// The runtime it belongs to.
    pub(crate) rt: Arc<Shared>,
    /// Id, name and spawn location (read by the stack-overflow handler
    /// too), and the guard page and size of the stack once attached.
    pub(crate) guard: GuardInfo,
    /// Scheduling-policy data; touched only by the worker that queues or
    /// runs the coroutine (like `run`, invariant 2).
    pub(crate) sched: UnsafeCell<SchedData>,
}

// SAFETY: the shared fields are atomics or immutable; `run` is touched only
// by the one worker running the coroutine (invariant 2); `links` only under
// the registry shard's lock.
unsafe impl Send for Header {}
// SAFETY: as above.
unsafe impl Sync for Header {}

impl Header {
    /// The coroutine's unique id.
    pub(crate) fn id(&self) -> u64 {
        self.guard.id
    }

    /// The name given with `Builder::name`.
    pub(crate) fn name(&self) -> Option<&str> {
        self.guard.name.as_deref()
    }

    /// Where it was spawned.
    pub(crate) fn location(&self) -> &'static Location<'static> {
        self.guard.location
    }
}

impl Drop for Header {
    fn drop(&mut self) {
        if let Stage::Running(co) = self.run.get_mut().stage.take() {
            if co.done() {
                drop(co);
            } else {
                // Invariant 4: never unwind a coroutine off its worker.
                std::mem::forget(co);
            }
        }
    }
}

#[repr(C)]
struct Task<F, T> {
    header: Header,
    f: UnsafeCell<Option<F>>,
    out: UnsafeCell<Option<thread::Result<T>>>,
}

/// The payload that [`JoinHandle::join`](crate::JoinHandle::join) returns in
/// `Err` when the runtime shut down before the coroutine finished: either
/// it never started (its closure was dropped unrun) or it was parked and was
/// unwound so its destructors ran.
///
/// ```
/// let rt = spindle::Runtime::builder().workers(1).build().unwrap();
/// let h = rt.spawn(|| loop { spindle::park() });
/// drop(rt);
/// let err = h.join().unwrap_err();
/// assert!(err.downcast_ref::<spindle::Cancelled>().is_some());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled;

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the coroutine was cancelled because its runtime shut down")
    }
}

impl<F, T> Task<F, T>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    const VTABLE: VTable = VTable {
        run: Self::run,
        cancel: Self::cancel,
        take_output: Self::take_output,
        dealloc: Self::dealloc,
    };

    /// # Safety
    /// `h` points at a live `Task<F, T>`; called once, on the coroutine.
    unsafe fn run(h: NonNull<Header>) {
        // SAFETY: per the contract `h` is a `Task<F, T>` (repr(C), header first).
        let task = unsafe { h.cast::<Task<F, T>>().as_ref() };
        // SAFETY: invariant 3: `f` is taken once, by us, on the owner.
        let f = unsafe { (*task.f.get()).take() }.expect("coroutine started twice");
        let out = std::panic::catch_unwind(AssertUnwindSafe(f));
        // SAFETY: invariant 3: `out` is written before DONE is published.
        unsafe { *task.out.get() = Some(out) };
    }

    /// # Safety
    /// `h` points at a live `Task<F, T>` that never started.
    unsafe fn cancel(h: NonNull<Header>, payload: Option<Box<dyn Any + Send>>) {
        // SAFETY: as in `run`.
        let task = unsafe { h.cast::<Task<F, T>>().as_ref() };
        // SAFETY: invariant 3: a never-started task's `f` is ours.
        let f = unsafe { (*task.f.get()).take() };
        // A panicking destructor of a captured value must not unwind into
        // the scheduler; report it through join like a panic in the body.
        let dropped = std::panic::catch_unwind(AssertUnwindSafe(|| drop(f)));
        let payload: Box<dyn Any + Send> = match dropped {
            Ok(()) => payload.unwrap_or_else(|| Box::new(Cancelled)),
            Err(p) => p,
        };
        // SAFETY: invariant 3.
        unsafe { *task.out.get() = Some(Err(payload)) };
    }

    /// # Safety
    /// `h` is a `Task<F, T>` in state DONE; `dst` is a `*mut Option<thread::Result<T>>`.
    unsafe fn take_output(h: NonNull<Header>, dst: *mut ()) {
        // SAFETY: as in `run`.
        let task = unsafe { h.cast::<Task<F, T>>().as_ref() };
        // SAFETY: invariant 3: DONE was observed with Acquire by the caller.
        let out = unsafe { (*task.out.get()).take() };
        // SAFETY: the caller passes a valid, typed destination.
        unsafe { *dst.cast::<Option<thread::Result<T>>>() = out };
    }

    /// # Safety
    /// The last reference to `h`, a `Task<F, T>` allocated by `allocate`.
    unsafe fn dealloc(h: NonNull<Header>) {
        let p = h.cast::<Task<F, T>>();
        // SAFETY: initialised in `allocate`; this is the last reference.
        unsafe { std::ptr::drop_in_place(p.as_ptr()) };
        // SAFETY: the memory came from `alloc::allocate` with this layout.
        unsafe { alloc::deallocate(p.cast(), std::alloc::Layout::new::<Task<F, T>>()) };
    }
}

/// What a new task is made of, before it is allocated.
pub(crate) struct Spec {
    pub(crate) id: u64,
    pub(crate) name: Option<Box<str>>,
    pub(crate) location: &'static Location<'static>,
    pub(crate) migratable: bool,
    pub(crate) reservation: Reservation,
    /// Its priority and nice value (see `policy`).
    pub(crate) sched: SchedData,
    pub(crate) rt: Arc<Shared>,
}

/// Allocates a task running `f`, with `refs` counted references of which
/// the returned one is the first; the caller turns the others into
/// `TaskRef`s with [`TaskRef::adopt`] (spawn needs two: the handle and the
/// queue's, and counting them here saves an atomic increment per spawn).
///
/// `F` and `T` need not be `'static`: the caller guarantees that the task's
/// closure and output are consumed or dropped before anything they borrow
/// goes away (`spawn` requires `'static`; `scope` waits).
pub(crate) fn allocate<F, T>(spec: Spec, f: F, refs: usize) -> TaskRef
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    // Allocate first and build the value in the write, so the compiler can
    // write the fields straight into the block instead of building the task
    // on the stack and copying it over.
    let p = alloc::allocate(std::alloc::Layout::new::<Task<F, T>>()).cast::<Task<F, T>>();
    // SAFETY: `p` is fresh memory with `Task<F, T>`'s layout.
    unsafe {
        p.as_ptr().write(Task::<F, T> {
            header: Header {
                state: State::new(),
                refs: AtomicUsize::new(refs),
                vtable: &Task::<F, T>::VTABLE,
                guard: GuardInfo::new(spec.id, spec.name, spec.location),
                migratable: spec.migratable,
                nice: AtomicI8::new(spec.sched.nice),
                sched: UnsafeCell::new(spec.sched),
                worker: AtomicUsize::new(NO_WORKER),
                rt: spec.rt,
                run: UnsafeCell::new(RunState {
                    stage: Stage::Reserved(spec.reservation),
                    yielder: std::ptr::null(),
                    locals: LocalMap::new(),
                    no_unwind: 0,
                    unwinding: false,
                }),
                joiner: UnsafeCell::new(None),
                wait_reason: AtomicU8::new(0),
                scheduled: AtomicU64::new(0),
                run_ticks: AtomicU64::new(0),
                park_gen: AtomicU64::new(0),
                blocked_on: AtomicUsize::new(0),
                blocked_owner: AtomicUsize::new(0),
                links: UnsafeCell::new(Links::default()),
                shard: AtomicUsize::new(usize::MAX),
            },
            f: UnsafeCell::new(Some(f)),
            out: UnsafeCell::new(None),
        })
    };
    // repr(C) puts the header first.
    TaskRef(p.cast::<Header>())
}

/// Runs the task's closure on the current (coroutine) stack and stores its
/// output. Called once, by the coroutine's entry function.
///
/// # Safety
/// `h` is a live task started by the calling worker.
pub(crate) unsafe fn run_body(h: NonNull<Header>) {
    // SAFETY: the caller guarantees liveness; the vtable matches the type.
    unsafe { (h.as_ref().vtable.run)(h) }
}

/// A counted reference to a task (the runtime's `Arc<Header>`).
pub(crate) struct TaskRef(NonNull<Header>);

// SAFETY: the header is Send + Sync (above) and the refcount is atomic.
unsafe impl Send for TaskRef {}
// SAFETY: as above.
unsafe impl Sync for TaskRef {}

impl TaskRef {
    /// The header.
    #[inline]
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: invariant 1: we hold a reference, so the task is alive.
        unsafe { self.0.as_ref() }
    }

    /// The raw pointer, for identity and the thread-local "current".
    #[inline]
    pub(crate) fn as_ptr(&self) -> NonNull<Header> {
        self.0
    }

    /// A new reference from a raw header pointer.
    ///
    /// # Safety
    /// `h` must point at a live task (someone holds a reference).
    pub(crate) unsafe fn from_ptr(h: NonNull<Header>) -> TaskRef {
        // SAFETY: the caller guarantees liveness.
        let hdr = unsafe { h.as_ref() };
        hdr.refs.fetch_add(1, Ordering::Relaxed);
        TaskRef(h)
    }

    /// Takes over a reference that was leaked with `mem::forget`.
    ///
    /// # Safety
    /// `h` must carry a forgotten count that this call now owns.
    pub(crate) unsafe fn adopt(h: NonNull<Header>) -> TaskRef {
        TaskRef(h)
    }

    /// Completes a never-started task with `Err(Cancelled)`, wakes its
    /// joiner and drops it from the registry. Does nothing if a worker
    /// started it first (the claim is a CAS on the state word).
    pub(crate) fn cancel_unstarted(&self) {
        let h = self.header();
        if !h.state.start() {
            return;
        }
        h.rt.count_settled_unstarted();
        // SAFETY: we won the NEW → RUNNING claim, so no worker runs it and
        // its `f` is ours (invariant 3).
        unsafe { (h.vtable.cancel)(self.0, None) };
        // SAFETY: never started, so no worker touches `run`; the
        // reservation goes back (no stack was taken).
        drop(unsafe { (*h.run.get()).stage.take() });
        self.finish();
    }

    /// Completes a task that its worker claimed but could not start (no
    /// stack), with `payload` as the error `join` returns.
    pub(crate) fn fail_with(&self, payload: Box<dyn Any + Send>) {
        // SAFETY: the calling worker claimed the task (NEW → RUNNING) and
        // never ran it, so its `f` is still there and ours (invariant 3).
        unsafe { (self.header().vtable.cancel)(self.0, Some(payload)) };
        self.finish();
    }

    /// Publishes DONE, wakes the joiner if it waits, and leaves the
    /// registry.
    pub(crate) fn finish(&self) {
        let h = self.header();
        if h.state.complete() {
            // SAFETY: the joiner stored the slot before setting
            // JOIN_WAITING, which `complete` saw (Acquire), and never
            // touches it again; `finish` runs once, so we are the only
            // reader (see the field's docs).
            let waiter = unsafe { (*h.joiner.get()).take() };
            if let Some(u) = waiter {
                u.unpark();
            }
        }
        h.rt.registry.remove(self);
    }

    /// Stores the joiner's unparker; returns whether the task is done by
    /// now (then no wake-up will come, and none is needed).
    pub(crate) fn register_joiner(&self, u: Unparker) -> bool {
        let h = self.header();
        // SAFETY: there is one joiner (join consumes its handle), and the
        // finishing worker reads the slot only after seeing JOIN_WAITING,
        // which is set below, so no access overlaps ours.
        unsafe { *h.joiner.get() = Some(u) };
        !h.state.set_join_waiting()
    }

    /// Takes the output of a DONE task.
    ///
    /// # Safety
    /// `T` must be the task's output type, and the state must be DONE.
    pub(crate) unsafe fn take_output<T>(&self) -> Option<thread::Result<T>> {
        let mut out: Option<thread::Result<T>> = None;
        // SAFETY: the caller guarantees the type and DONE.
        unsafe { (self.header().vtable.take_output)(self.0, (&raw mut out).cast()) };
        out
    }
}

impl Clone for TaskRef {
    fn clone(&self) -> TaskRef {
        // Relaxed: a new reference is made from an existing one, which
        // keeps the task alive (as in `Arc::clone`).
        self.header().refs.fetch_add(1, Ordering::Relaxed);
        TaskRef(self.0)
    }
}

impl Drop for TaskRef {
    fn drop(&mut self) {
        // Release/Acquire: as in `Arc::drop`, every use of the task through
        // other references happens before the deallocation.
        if self.header().refs.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        fence(Ordering::Acquire);
        if self.header().shard.load(Ordering::Relaxed) != usize::MAX {
            // Invariant 5: abandoned while started (a queue dropped after a
            // shutdown timed out); the registry still lists it.
            return;
        }
        let dealloc = self.header().vtable.dealloc;
        // SAFETY: this was the last reference (invariant 1), and nothing
        // else can reach the task (invariant 5).
        unsafe { dealloc(self.0) };
    }
}

impl std::fmt::Debug for TaskRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TaskRef({})", self.header().id())
    }
}

#[cfg(test)]
mod tests {
    use super::Header;

    /// The hot fields fill the first cache line and the header stays small:
    /// a million parked coroutines pay for every byte.
    #[test]
    fn header_layout_keeps_the_hot_line_and_size() {
        assert_eq!(std::mem::offset_of!(Header, run), 64);
        // 232 before the two introspection words of `blocked_on` (the
        // wait-for graph for deadlock reports), 248 before the scheduling
        // policy's 24 bytes.
        assert!(size_of::<Header>() <= 272, "{}", size_of::<Header>());
    }
}
