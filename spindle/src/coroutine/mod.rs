//! Coroutines: spawning, joining, identity, yielding.
//!
//! Shaped like `std::thread`: [`spawn`] returns a [`JoinHandle`] whose
//! [`join`](JoinHandle::join) gives back the closure's value or its panic
//! payload; [`Builder`] names a coroutine, sizes its stack and reports
//! resource exhaustion as an `io::Error`; [`scope`] lets coroutines borrow
//! from the caller.

pub(crate) mod alloc;
pub(crate) mod local;
mod scope;
pub(crate) mod task;

use crossbeam_utils::CachePadded;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::num::NonZeroU64;
use std::panic::Location;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

pub use local::{AccessError, LocalKey};
pub(crate) use scope::scope_on;
pub use scope::{Scope, ScopedJoinHandle, scope};
pub use task::Cancelled;

use crate::park::{self, Unparker, WaitReason};
use crate::policy::{Priority, SchedData};
use crate::runtime;
use crate::scheduler::{Shared, worker};
use crate::stack;
use task::{Suspend, TaskRef};

/// A coroutine's unique identifier, never reused within a process.
///
/// Ids are not in spawn order: each worker draws them in blocks (one
/// shared counter update per block, not per spawn).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CoroutineId(NonZeroU64);

impl CoroutineId {
    /// The id as a number (1, 2, 3, … in spawn order across the process).
    pub fn as_u64(self) -> u64 {
        self.0.get()
    }

    pub(crate) fn from_raw(v: u64) -> CoroutineId {
        CoroutineId(NonZeroU64::new(v).expect("coroutine ids start at 1"))
    }
}

impl fmt::Display for CoroutineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Reserves `n` consecutive coroutine ids and returns the first. Workers
/// reserve blocks of them (`Context::next_id`): a spawn on a worker then
/// touches no shared counter, whose cache line would otherwise move
/// between cores on every spawn.
pub(crate) fn reserve_ids(n: u64) -> u64 {
    static NEXT: CachePadded<AtomicU64> = CachePadded::new(AtomicU64::new(1));
    NEXT.fetch_add(n, Ordering::Relaxed)
}

/// Configures a coroutine before spawning it, like `std::thread::Builder`.
///
/// ```
/// let rt = spindle::Runtime::builder().workers(1).build().unwrap();
/// let h = rt.block_on(|| {
///     spindle::Builder::new()
///         .name("parser".into())
///         .stack_size(64 * 1024)
///         .spawn(|| spindle::current().name().map(String::from))
///         .expect("spawn failed")
///         .join()
///         .unwrap()
/// });
/// assert_eq!(h.as_deref(), Some("parser"));
/// ```
#[derive(Debug, Default)]
#[must_use = "a Builder does nothing until `spawn` is called"]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
    migratable: bool,
    priority: Priority,
    nice: i8,
}

impl Builder {
    /// A builder with default settings: no name, the runtime's stack size
    /// (256 KiB unless `SPINDLE_STACK_SIZE` or the runtime's builder says
    /// otherwise), affine to the worker it first runs on.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the coroutine; the name shows in snapshots, panic messages of
    /// `join`, and the stack-overflow report.
    pub fn name(mut self, name: String) -> Builder {
        self.name = Some(name);
        self
    }

    /// Sets the usable stack size in bytes (rounded up to whole pages,
    /// at least 32 KiB). Stacks are committed lazily: only the pages a
    /// coroutine touches cost memory.
    pub fn stack_size(mut self, size: usize) -> Builder {
        self.stack_size = Some(size);
        self
    }

    /// Sets its priority under [`Policy::Priority`](crate::policy::Policy::Priority)
    /// (other policies ignore it). Default: `Priority::normal(0)`.
    ///
    /// ```
    /// use spindle::policy::{Policy, Priority};
    /// let rt = spindle::Runtime::builder().workers(1).policy(Policy::Priority).build().unwrap();
    /// rt.block_on(|| {
    ///     let urgent = spindle::Builder::new()
    ///         .priority(Priority::realtime(0))
    ///         .spawn(|| "runs before every Normal coroutine of its worker")
    ///         .unwrap();
    ///     urgent.join().unwrap();
    /// });
    /// ```
    pub fn priority(mut self, priority: Priority) -> Builder {
        self.priority = priority;
        self
    }

    /// Sets its nice value, −20 (most CPU) to 19 (least), clamped; the
    /// weight [`Policy::Fair`](crate::policy::Policy::Fair) shares CPU by
    /// (Linux's table: each step is about 10% of CPU between two
    /// competitors). Other policies ignore it. Default 0; change it later
    /// with [`Coroutine::set_nice`].
    pub fn nice(mut self, nice: i8) -> Builder {
        self.nice = nice.clamp(-20, 19);
        self
    }

    /// Lets the scheduler move this coroutine to another worker while it
    /// is parked (to balance load, or to rescue it from a worker held by a
    /// coroutine that never yields).
    ///
    /// # Safety
    ///
    /// By default a coroutine runs on one OS thread from start to end, so
    /// holding thread-bound state across a blocking call is fine. A
    /// migratable coroutine may resume on a different OS thread after any
    /// blocking call (park, join, sleep, yield, and every channel, lock or
    /// I/O call built on them). The caller promises that, at every such
    /// call, the coroutine holds nothing that must stay on one thread:
    /// no `Rc`, `RefCell` borrow or other `!Send` value that is used again
    /// after the call (this includes values kept in
    /// [`coroutine_local!`](crate::coroutine_local) storage, which travel
    /// with the coroutine), no reference into a `thread_local!` value (or a
    /// guard such as `stdout().lock()`), no `MutexGuard` of a mutex that
    /// requires unlock on the locking thread, and no thread-identity
    /// assumption (e.g. `std::thread::current()` compared before and
    /// after). Breaking the promise is undefined behaviour.
    pub unsafe fn migratable(mut self) -> Builder {
        self.migratable = true;
        self
    }

    /// Spawns the coroutine on the current runtime (the one whose coroutine
    /// calls this), or on the process-wide default runtime when called from
    /// a thread that is not a spindle worker.
    ///
    /// # Errors
    ///
    /// When a stack cannot be had: the error (kind `OutOfMemory`) says
    /// which limit was hit (memory, address space `ulimit -v`, or the
    /// kernel's memory map limit `vm.max_map_count`) and how to raise it.
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        match worker::context() {
            // On a worker: borrow its runtime, no reference-count traffic.
            // SAFETY: `context()` is the live context of this thread, alive
            // for the duration of this call.
            Some(cx) => self.spawn_on_shared(unsafe { &(*cx).shared }, f),
            None => self.spawn_on_shared(&runtime::current_or_default()?, f),
        }
    }

    /// Spawns the coroutine on the runtime of `handle`.
    ///
    /// # Errors
    ///
    /// As [`Builder::spawn`].
    #[track_caller]
    pub fn spawn_on<F, T>(self, handle: &runtime::Handle, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.spawn_on_shared(&handle.shared, f)
    }

    #[track_caller]
    fn spawn_on_shared<F, T>(self, shared: &Arc<Shared>, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let location = Location::caller();
        // 'static bounds: the task may outlive every caller frame.
        let task = spawn_raw(shared, self, location, f)?;
        Ok(JoinHandle {
            task,
            _marker: PhantomData,
        })
    }
}

/// Allocates a task, reserves its stack, registers and submits it.
///
/// `F` and `T` may borrow: callers that pass non-`'static` closures
/// (`scope`) must not let anything borrowed end before the closure and its
/// output are consumed or dropped.
pub(crate) fn spawn_raw<F, T>(
    shared: &Arc<Shared>,
    b: Builder,
    location: &'static Location<'static>,
    f: F,
) -> io::Result<TaskRef>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    crate::scheduler::coop::charge();
    let size = stack::normalize_size(b.stack_size.unwrap_or(shared.config.stack_size));
    let cx = worker::context().filter(|&cx| {
        // SAFETY: `context()` is the live context of this thread.
        Arc::ptr_eq(unsafe { &(*cx).shared }, shared)
    });
    // A claim, not a cached stack: the stack is taken when the coroutine
    // first runs, from the hot end of that worker's cache. (Binding cached
    // stacks to queued coroutines at spawn made a burst of spawns run on
    // cold stacks from the global list: measured slower.) On a worker the
    // claim comes from its local credits, without a shared atomic.
    let reservation = match cx {
        // SAFETY: `cx` is this thread's live context; the worker holds no
        // borrow of its pool while a coroutine runs.
        Some(cx) => unsafe { (*cx).reserve_stack(size) }?,
        None => stack::reserve(size)?,
    };
    let task = task::allocate(
        task::Spec {
            id: match cx {
                // SAFETY: as above.
                Some(cx) => unsafe { (*cx).next_id() },
                None => reserve_ids(1),
            },
            name: b.name.map(String::into_boxed_str),
            location,
            migratable: b.migratable,
            reservation,
            sched: SchedData {
                rank: b.priority.rank() as u8,
                nice: b.nice,
                ..SchedData::default()
            },
            rt: shared.clone(),
        },
        f,
        2,
    );
    // SAFETY: `allocate` counted two references: `task` (the caller's) and
    // this one for the queue.
    let queued = unsafe { TaskRef::adopt(task.as_ptr()) };
    if shared.is_shutdown() {
        // The coroutine never runs.
        drop(queued);
        task.cancel_unstarted();
        return Ok(task);
    }
    match cx {
        // SAFETY: as above.
        Some(cx) => unsafe { (*cx).push_new(queued) },
        None => shared.submit_remote(queued),
    }
    Ok(task)
}

/// Completes a task whose start failed (no stack could be had) with the
/// error as its panic payload, so `join` reports it.
pub(crate) fn fail_unstarted(task: &TaskRef, e: io::Error) {
    // The task is claimed (RUNNING) by the worker that failed to start it;
    // its closure is dropped unrun and the error becomes the payload.
    let msg = format!("spindle: coroutine could not start: {e}");
    task.fail_with(Box::new(msg));
}

/// Spawns a coroutine and returns a handle to join it.
///
/// Runs on the current runtime when called from a coroutine, else on the
/// process-wide default runtime (started on first use with one worker per
/// CPU, or `SPINDLE_WORKERS`). The coroutine starts on whichever worker
/// gets to it first and stays there to its end (see the crate docs,
/// "Soundness"), so holding an `Rc` or a thread-local across blocking calls
/// inside it is fine.
///
/// # Panics
///
/// If no stack can be had (out of memory, address space or memory maps),
/// with the message of [`Builder::spawn`]'s error, as `std::thread::spawn`
/// panics when the OS refuses a thread.
///
/// ```
/// let rt = spindle::Runtime::builder().workers(2).build().unwrap();
/// let sum: u64 = rt.block_on(|| {
///     let handles: Vec<_> = (1..=10).map(|i| spindle::spawn(move || i * i)).collect();
///     handles.into_iter().map(|h| h.join().unwrap()).sum()
/// });
/// assert_eq!(sum, 385);
/// ```
#[track_caller]
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match Builder::new().spawn(f) {
        Ok(h) => h,
        Err(e) => panic!("{e}"),
    }
}

/// An owned permission to join a coroutine: wait for it to finish and take
/// its result. Dropping the handle detaches the coroutine; it keeps running.
pub struct JoinHandle<T> {
    task: TaskRef,
    _marker: PhantomData<fn() -> T>,
}

// SAFETY: the handle only moves a `T: Send` out of the task, once.
unsafe impl<T: Send> Send for JoinHandle<T> {}
// SAFETY: `&JoinHandle` only reads atomics (is_finished, id).
unsafe impl<T: Send> Sync for JoinHandle<T> {}

impl<T> JoinHandle<T> {
    /// Waits for the coroutine to finish and returns its result: `Ok` with
    /// its value, or `Err` with its panic payload (the runtime and every
    /// other coroutine carry on after a panic), or `Err` with
    /// [`Cancelled`] if the runtime shut down before it finished.
    ///
    /// From a coroutine this parks the coroutine; from an OS thread it
    /// blocks the thread.
    pub fn join(self) -> thread::Result<T> {
        // A runtime call like any other: a loop joining thousands of
        // finished coroutines must still give other coroutines turns.
        crate::scheduler::coop::charge();
        wait_done(&self.task, WaitReason::Join);
        // SAFETY: `T` is the task's output type (set by `spawn`), the state
        // is DONE, and `join` consumes the only handle.
        unsafe { self.task.take_output::<T>() }
            .expect("a finished coroutine's output was already taken")
    }

    /// Whether the coroutine has finished (without blocking).
    pub fn is_finished(&self) -> bool {
        self.task.header().state.is_done()
    }

    /// The coroutine's id.
    pub fn id(&self) -> CoroutineId {
        CoroutineId::from_raw(self.task.header().id())
    }

    /// A handle to the coroutine itself (id, name, unpark).
    pub fn coroutine(&self) -> Coroutine {
        Coroutine {
            task: self.task.clone(),
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id())
            .finish_non_exhaustive()
    }
}

/// Parks the caller until `task` is DONE.
pub(crate) fn wait_done(task: &TaskRef, reason: WaitReason) {
    if task.header().state.is_done() {
        return;
    }
    if task.register_joiner(park::unparker()) {
        return;
    }
    while !task.header().state.is_done() {
        park::park_reason(reason, None);
    }
}

/// A handle to a coroutine: its identity, and a way to unpark it.
///
/// Returned by [`current`] and [`JoinHandle::coroutine`].
#[derive(Clone)]
pub struct Coroutine {
    task: TaskRef,
}

impl Coroutine {
    /// Its unique id.
    pub fn id(&self) -> CoroutineId {
        CoroutineId::from_raw(self.task.header().id())
    }

    /// Its name, if it was given one with [`Builder::name`].
    pub fn name(&self) -> Option<&str> {
        self.task.header().name()
    }

    /// Where it was spawned.
    pub fn spawn_location(&self) -> &'static Location<'static> {
        self.task.header().location()
    }

    /// Its nice value (see [`Builder::nice`]).
    pub fn nice(&self) -> i8 {
        self.task
            .header()
            .nice
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Changes its nice value (−20..=19, clamped); it takes effect at its
    /// next turn. Only [`Policy::Fair`](crate::policy::Policy::Fair) looks
    /// at it.
    ///
    /// ```
    /// let rt = spindle::Runtime::builder().workers(1).build().unwrap();
    /// rt.block_on(|| {
    ///     spindle::current().set_nice(5);
    ///     assert_eq!(spindle::current().nice(), 5);
    /// });
    /// ```
    pub fn set_nice(&self, nice: i8) {
        self.task
            .header()
            .nice
            .store(nice.clamp(-20, 19), std::sync::atomic::Ordering::Relaxed);
    }

    /// Unparks it (see [`Unparker::unpark`]).
    pub fn unpark(&self) {
        park::unpark_task(&self.task);
    }

    /// An [`Unparker`] for it.
    pub fn unparker(&self) -> Unparker {
        Unparker::for_task(self.task.clone())
    }
}

impl fmt::Debug for Coroutine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Coroutine")
            .field("id", &self.id())
            .field("name", &self.name())
            .finish()
    }
}

/// The calling coroutine, or `None` on a thread that is not running a
/// spindle coroutine.
pub fn try_current() -> Option<Coroutine> {
    let h = worker::current_task()?;
    // SAFETY: the running coroutine is alive while it runs.
    let task = unsafe { TaskRef::from_ptr(h) };
    Some(Coroutine { task })
}

/// The calling coroutine.
///
/// # Panics
///
/// When called outside a coroutine (use [`try_current`] there).
///
/// ```
/// let rt = spindle::Runtime::builder().workers(1).build().unwrap();
/// let id = rt.block_on(|| spindle::current().id());
/// assert!(id.as_u64() > 0);
/// ```
pub fn current() -> Coroutine {
    try_current().expect(
        "spindle::current() was called outside a coroutine; \
         use spindle::try_current() where that can happen",
    )
}

/// The yield point for CPU-bound loops: ends the calling coroutine's turn
/// here if it is over — its budget of [`BUDGET`](crate::policy::BUDGET)
/// runtime calls is spent, its policy's time slice ran out, a wake-up
/// arrived that the policy may rank higher, or the monitor found the turn
/// too long — and otherwise returns at once (a few nanoseconds). Every
/// other runtime call (channels, locks, sockets, spawn) does the same on
/// entry; a loop that makes none should call this once per iteration.
///
/// Does nothing outside a coroutine.
///
/// ```
/// let rt = spindle::Runtime::builder().workers(1).build().unwrap();
/// let sum = rt.block_on(|| {
///     let mut sum = 0u64;
///     for i in 0..1_000_000u64 {
///         sum = sum.wrapping_add(i * i);
///         spindle::checkpoint(); // other coroutines get turns
///     }
///     sum
/// });
/// assert!(sum > 0);
/// ```
pub fn checkpoint() {
    crate::scheduler::coop::charge();
}

/// Lets the worker run other ready coroutines before this one continues.
///
/// Outside a coroutine, yields the OS thread (`std::thread::yield_now`).
pub fn yield_now() {
    match worker::current_task() {
        Some(hp) => {
            // SAFETY: the running coroutine is alive while it runs.
            let h = unsafe { hp.as_ref() };
            park::suspend(h, Suspend::Yield);
            // A cancel that arrived before or during the yield is seen here.
            park::check_cancelled(h);
        }
        None => thread::yield_now(),
    }
}
