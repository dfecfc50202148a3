//! The runtime: worker threads, their shared state, and the default
//! runtime.
//!
//! ```
//! let rt = spindle::Runtime::builder().workers(2).build()?;
//! let answer = rt.block_on(|| {
//!     let h = spindle::spawn(|| 6 * 7);
//!     h.join().unwrap()
//! });
//! assert_eq!(answer, 42);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Shutdown
//!
//! Dropping a [`Runtime`] (or calling [`Runtime::shutdown_timeout`]) shuts
//! it down:
//!
//! 1. coroutines that have not started never will: their closures are
//!    dropped unrun and their `join` returns `Err` with [`Cancelled`];
//! 2. every started coroutine (parked, sleeping, or ready) is woken on its
//!    own worker and unwound from the blocking call it is in, so its
//!    destructors run; its `join` returns `Err(Cancelled)`. Blocking calls
//!    made while unwinding (in destructors) keep working as long as what
//!    they wait for can still happen; a coroutine that catches the unwind
//!    and blocks again is unwound again at that call;
//! 3. the call waits for all of that to finish. A coroutine that never
//!    reaches a blocking call (a `loop {}` without runtime calls) cannot be
//!    unwound: `drop` then waits for it forever, while
//!    `shutdown_timeout` gives up after its timeout, leaving such
//!    coroutines and their workers behind (their memory is leaked, never
//!    freed under them).
//!
//! Spawning on a runtime that is shutting down returns a handle whose
//! `join` returns `Err(Cancelled)`.
//!
//! [`Cancelled`]: crate::Cancelled

use crate::io::reactor::Reactor;
use std::io;
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_deque::Worker as Deque;

use crate::clock;
use crate::coroutine::{self, Builder as CoBuilder, JoinHandle};
use crate::introspect;
use crate::park::WaitReason;
use crate::policy::Policy;
use crate::scheduler::monitor::HeldHook;
pub use crate::scheduler::monitor::HeldWorker;
use crate::scheduler::{Config, Context, Shared, worker};
use crate::stack;

/// A spindle runtime: a pool of worker threads running coroutines.
///
/// See the [module docs](self) for shutdown.
pub struct Runtime {
    handle: Handle,
    threads: Vec<thread::JoinHandle<()>>,
}

/// Configures and builds a [`Runtime`].
#[derive(Default, Clone)]
#[must_use = "a Builder does nothing until `build` is called"]
pub struct Builder {
    workers: Option<usize>,
    stack_size: Option<usize>,
    policy: Policy,
    hold_threshold: Option<Duration>,
    max_extra_workers: Option<usize>,
    trace_turns: usize,
    on_held: Option<HeldHook>,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("workers", &self.workers)
            .field("stack_size", &self.stack_size)
            .field("policy", &self.policy)
            .field("hold_threshold", &self.hold_threshold)
            .field("max_extra_workers", &self.max_extra_workers)
            .field("trace_turns", &self.trace_turns)
            .field("on_held_worker", &self.on_held.is_some())
            .finish()
    }
}

/// A cheap, cloneable reference to a runtime, for spawning onto it from
/// anywhere.
#[derive(Clone)]
pub struct Handle {
    pub(crate) shared: Arc<Shared>,
}

impl Builder {
    /// Sets the number of worker threads (the `GOMAXPROCS` of spindle).
    ///
    /// Default: the `SPINDLE_WORKERS` environment variable if set, else
    /// the available parallelism of the machine.
    pub fn workers(mut self, n: usize) -> Builder {
        self.workers = Some(n);
        self
    }

    /// Sets the default usable stack size of coroutines spawned on this
    /// runtime. Default: `SPINDLE_STACK_SIZE`, else 256 KiB.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Sets the scheduling policy (see [`policy`](crate::policy)).
    /// Default: [`Policy::Fifo`].
    pub fn policy(mut self, policy: impl Into<Policy>) -> Builder {
        self.policy = policy.into();
        self
    }

    /// How long one coroutine may hold a worker without a runtime call
    /// before the monitor reports it and moves work away from that worker
    /// (see [`on_held_worker`](Self::on_held_worker)). A turn that reaches
    /// half of it is asked to yield at its next runtime call. Default
    /// 10 ms (Go's sysmon preempts after 10 ms as well).
    pub fn hold_threshold(mut self, threshold: Duration) -> Builder {
        self.hold_threshold = Some(threshold);
        self
    }

    /// The most extra worker threads the monitor may run at once while
    /// workers are held (one per held worker). Default: the number of
    /// workers. Zero turns the rescue off (reports still happen).
    pub fn max_extra_workers(mut self, n: usize) -> Builder {
        self.max_extra_workers = Some(n);
        self
    }

    /// Records the first `max` turns (which coroutine ran on which worker,
    /// from when to when), for [`Handle::turns`]: the data of a Gantt
    /// chart. Costs two clock reads per switch while on. Default: off.
    pub fn trace_turns(mut self, max: usize) -> Builder {
        self.trace_turns = max;
        self
    }

    /// What to do when the monitor finds a worker held (see
    /// [`hold_threshold`](Self::hold_threshold)); called on the monitor
    /// thread, once per held turn. Default: print the report (its
    /// `Display`) to stderr.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// let reports = Arc::new(Mutex::new(Vec::new()));
    /// let sink = reports.clone();
    /// let rt = spindle::Runtime::builder()
    ///     .workers(1)
    ///     .on_held_worker(move |r| sink.lock().unwrap().push(r.to_string()))
    ///     .build()?;
    /// # drop(rt);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn on_held_worker(mut self, f: impl Fn(&HeldWorker) + Send + Sync + 'static) -> Builder {
        self.on_held = Some(Arc::new(f));
        self
    }

    /// Starts the worker threads.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for zero workers, a malformed `SPINDLE_WORKERS`, or
    /// a policy with invalid settings; the OS error if a worker thread
    /// cannot be started.
    pub fn build(self) -> io::Result<Runtime> {
        if let Err(e) = self.policy.validate() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("spindle: {e}"),
            ));
        }
        if self.hold_threshold.is_some_and(|t| t.is_zero()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "spindle: Builder::hold_threshold must be above zero (default 10 ms)",
            ));
        }
        let workers = match self.workers {
            Some(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "spindle: a runtime needs at least one worker (Builder::workers(0))",
                ));
            }
            Some(n) => n,
            None => workers_from_env()?,
        };
        let stack_size =
            stack::normalize_size(self.stack_size.unwrap_or_else(stack::default_stack_size));
        clock::init();
        // SAFETY: `current_guard` only reads this thread's const thread-local
        // and an atomic, and returns null or a live header's guard info.
        unsafe { stack::set_resolver(worker::current_guard) };
        stack::install_handler();
        install_panic_hook();
        let reactor = Arc::new(Reactor::new()?);
        let max_extra_workers = self.max_extra_workers.unwrap_or(workers);
        // Under Fifo a worker pops its newest new coroutine (cache-warm);
        // under a policy new coroutines are admitted in spawn order.
        let new_deque = || {
            if self.policy == Policy::Fifo {
                Deque::new_lifo()
            } else {
                Deque::new_fifo()
            }
        };
        let mut deques: Vec<Deque<_>> = (0..workers + max_extra_workers)
            .map(|_| new_deque())
            .collect();
        let stealers = deques.iter().map(|d| d.stealer()).collect();
        let extra_deques: Vec<_> = (workers..workers + max_extra_workers)
            .zip(deques.split_off(workers))
            .rev()
            .collect();
        let shared = Arc::new(Shared::new(
            Config {
                workers,
                stack_size,
                policy: self.policy,
                hold_threshold: self
                    .hold_threshold
                    .unwrap_or(crate::scheduler::monitor::DEFAULT_HOLD_THRESHOLD),
                max_extra_workers,
                on_held: self
                    .on_held
                    .unwrap_or_else(crate::scheduler::monitor::default_hook),
            },
            stealers,
            reactor,
            self.trace_turns,
        ));
        *shared
            .spare_deques
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = extra_deques;
        let mut threads = Vec::with_capacity(workers);
        for (index, deque) in deques.into_iter().enumerate() {
            let shared2 = shared.clone();
            let spawned = thread::Builder::new()
                .name(format!("spindle-worker-{index}"))
                .spawn(move || {
                    run_worker(shared2, index, deque, false);
                });
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => {
                    let rt = Runtime {
                        handle: Handle { shared },
                        threads,
                    };
                    drop(rt);
                    return Err(io::Error::new(
                        e.kind(),
                        format!("spindle: cannot start worker thread {index}: {e}"),
                    ));
                }
            }
        }
        let shared2 = shared.clone();
        let monitor = thread::Builder::new()
            .name("spindle-monitor".into())
            .spawn(move || crate::scheduler::monitor::run(shared2));
        match monitor {
            Ok(t) => {
                let _ = shared.monitor.set(t.thread().clone());
                threads.push(t);
            }
            Err(e) => {
                drop(Runtime {
                    handle: Handle { shared },
                    threads,
                });
                return Err(io::Error::new(
                    e.kind(),
                    format!("spindle: cannot start the monitor thread: {e}"),
                ));
            }
        }
        Ok(Runtime {
            handle: Handle { shared },
            threads,
        })
    }
}

/// Wraps the panic hook (once per process) so a panicking coroutine is
/// marked as unwinding before the previous hook runs; see
/// `park::check_cancelled` for why std's own panic count cannot tell.
///
/// A hook the program installs later replaces this one; then a coroutine
/// that panics and blocks in a destructor while the runtime shuts down may
/// abort the process instead of finishing its unwind. Install your hook
/// before building the first runtime to keep both.
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::thread::panicking() {
            return; // set_hook would panic here; run without the wrapper
        }
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            crate::park::note_panic();
            prev(info);
        }));
    });
}

fn workers_from_env() -> io::Result<usize> {
    match std::env::var("SPINDLE_WORKERS") {
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("spindle: SPINDLE_WORKERS={v:?} is not a positive number of workers"),
            )),
        },
        Err(_) => Ok(thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

/// A worker thread's body: worker slot `index` of `shared`, with its queue
/// of new coroutines. Returns that queue if the worker was an extra one
/// that retired (so the slot can start again), `None` after shutdown.
pub(crate) fn run_worker(
    shared: Arc<Shared>,
    index: usize,
    deque: Deque<crate::coroutine::task::TaskRef>,
    extra: bool,
) -> Option<Deque<crate::coroutine::task::TaskRef>> {
    let remote = &shared.remotes[index];
    remote.tid.store(
        rustix::thread::gettid().as_raw_nonzero().get(),
        std::sync::atomic::Ordering::Relaxed,
    );
    remote
        .active
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let _altstack = match stack::AltStack::install() {
        Ok(a) => Some(a),
        Err(e) => {
            eprintln!(
                "spindle: worker {index}: no alternate signal stack ({e}); \
                 stack overflows will not be reported by name"
            );
            None
        }
    };
    let mut cx = Context::new(shared.clone(), index, deque, extra);
    cx.run();
    (extra && !shared.is_shutdown()).then(|| cx.take_fresh())
}

impl Runtime {
    /// A builder for a runtime.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// A runtime with default settings.
    ///
    /// # Errors
    ///
    /// As [`Builder::build`].
    pub fn new() -> io::Result<Runtime> {
        Builder::default().build()
    }

    /// A handle to this runtime.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Runs `f` as a coroutine on this runtime and blocks the calling
    /// thread (or parks the calling coroutine) until it returns, then
    /// returns its value. If `f` panics, the panic resumes here.
    ///
    /// `f` may borrow from the caller: the call does not return before the
    /// coroutine has finished and dropped everything it captured.
    ///
    /// # Panics
    ///
    /// If `f` panics, if the runtime is shutting down (the coroutine
    /// then never runs), or if no stack can be had (see
    /// [`Builder::spawn`](crate::Builder::spawn)).
    #[track_caller]
    pub fn block_on<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        let shared = self.handle.shared.clone();
        // The coroutine's spawn location (in snapshots and held-worker
        // reports) is the caller's.
        let location = std::panic::Location::caller();
        let r = coroutine::scope_on(shared, WaitReason::BlockOn, |s| {
            match s.spawn_at(crate::Builder::new(), location, f) {
                Ok(h) => h.join(),
                Err(e) => panic!("{e}"),
            }
        });
        match r {
            Ok(v) => v,
            Err(p) if p.is::<coroutine::Cancelled>() => {
                panic!("spindle: block_on on a runtime that is shutting down")
            }
            Err(p) => std::panic::resume_unwind(p),
        }
    }

    /// Spawns a coroutine on this runtime; see [`spindle::spawn`](crate::spawn).
    ///
    /// # Panics
    ///
    /// If no stack can be had (see [`Builder::spawn`](crate::Builder::spawn)).
    #[track_caller]
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.handle.spawn(f)
    }

    /// A snapshot of this runtime's live coroutines.
    pub fn snapshot(&self) -> Snapshot {
        self.handle.snapshot()
    }

    /// Shuts down (see the [module docs](self)), giving coroutines at most
    /// `timeout` to unwind; workers still busy after that are left behind.
    pub fn shutdown_timeout(mut self, timeout: Duration) {
        self.shutdown(Some(Instant::now() + timeout));
    }

    fn shutdown(&mut self, deadline: Option<Instant>) {
        let shared = self.handle.shared.clone();
        if shared.is_shutdown() && self.threads.is_empty() {
            return;
        }
        shared.begin_shutdown(deadline);
        let inside = worker::context().is_some_and(|cx| {
            // SAFETY: `context()` is the live context of this thread.
            Arc::ptr_eq(unsafe { &(*cx).shared }, &shared)
        });
        if inside {
            // Dropped from one of its own coroutines: the workers cannot be
            // joined from here (one of them is us). They finish on their
            // own; the calling coroutine is cancelled at its next park.
            self.threads.clear();
            return;
        }
        let join = |t: thread::JoinHandle<()>| match deadline {
            None => {
                let _ = t.join();
            }
            Some(d) => {
                while !t.is_finished() && Instant::now() < d {
                    thread::sleep(Duration::from_millis(1));
                }
                if t.is_finished() {
                    let _ = t.join();
                }
            }
        };
        // The monitor is among these: once it has ended, no extra worker
        // starts, and every extra worker's thread is in `extra_threads`.
        for t in std::mem::take(&mut self.threads) {
            join(t);
        }
        let extra = std::mem::take(
            &mut *shared
                .extra_threads
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for t in extra {
            join(t);
        }
        // Coroutines spawned from outside while shutdown began may still
        // sit in queues: complete them, so no join waits forever.
        shared.cancel_all_queued();
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.shutdown(None);
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("workers", &self.handle.shared.config.workers)
            .finish_non_exhaustive()
    }
}

impl Handle {
    /// The runtime of the calling coroutine.
    ///
    /// # Panics
    ///
    /// Outside a coroutine (use [`Handle::try_current`]).
    pub fn current() -> Handle {
        Handle::try_current().expect(
            "spindle: Handle::current() called outside a coroutine; \
             keep the Runtime's handle (Runtime::handle) where you need it",
        )
    }

    /// The runtime of the calling coroutine, if any.
    pub fn try_current() -> Option<Handle> {
        let cx = worker::context()?;
        // SAFETY: `context()` is the live context of this thread.
        let shared = unsafe { (*cx).shared.clone() };
        Some(Handle { shared })
    }

    /// Spawns a coroutine on this runtime.
    ///
    /// # Panics
    ///
    /// If no stack can be had (see [`Builder::spawn`](crate::Builder::spawn)).
    #[track_caller]
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        match CoBuilder::new().spawn_on(self, f) {
            Ok(h) => h,
            Err(e) => panic!("{e}"),
        }
    }

    /// A snapshot of this runtime's live coroutines.
    pub fn snapshot(&self) -> Snapshot {
        introspect::snapshot_of(&self.shared)
    }

    /// The number of worker threads.
    pub fn workers(&self) -> usize {
        self.shared.config.workers
    }

    /// The scheduling policy this runtime runs.
    pub fn policy(&self) -> &Policy {
        &self.shared.config.policy
    }

    /// The scheduler's and the monitor's counters so far.
    ///
    /// ```
    /// let rt = spindle::Runtime::builder().workers(1).build()?;
    /// rt.block_on(|| {
    ///     // A CPU loop that calls checkpoint() gives way every BUDGET calls.
    ///     for _ in 0..1000 {
    ///         spindle::checkpoint();
    ///     }
    /// });
    /// assert!(rt.handle().metrics().forced_yields >= 1000 / spindle::policy::BUDGET as u64);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn metrics(&self) -> Metrics {
        let s = &self.shared;
        let c = &s.counters;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        Metrics {
            forced_yields: s.remotes.iter().map(|r| load(&r.forced_yields)).sum(),
            held_workers: load(&c.held_reports),
            extra_workers_started: load(&c.extra_started),
            extra_workers_retired: load(&c.extra_retired),
            extra_workers_alive: s.extra_alive.load(std::sync::atomic::Ordering::Relaxed),
            coroutines_moved: load(&c.moved),
        }
    }

    /// The turns recorded so far (see [`Builder::trace_turns`]), in the
    /// order they ended; empty if tracing is off.
    pub fn turns(&self) -> Vec<Turn> {
        match &self.shared.trace {
            Some(t) => t.lock().unwrap_or_else(|e| e.into_inner()).turns.clone(),
            None => Vec::new(),
        }
    }
}

/// The scheduler's and the monitor's counters ([`Handle::metrics`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Turns ended at a runtime call because the slice, the budget of
    /// runtime calls, or the monitor's mark said so.
    pub forced_yields: u64,
    /// Held workers the monitor reported (see [`Builder::hold_threshold`]).
    pub held_workers: u64,
    /// Extra worker threads the monitor started.
    pub extra_workers_started: u64,
    /// Extra worker threads that retired.
    pub extra_workers_retired: u64,
    /// Extra worker threads running now.
    pub extra_workers_alive: usize,
    /// Coroutines the monitor moved off held workers.
    pub coroutines_moved: u64,
}

/// One turn: a coroutine ran on a worker from `start` to `end` (times
/// since the runtime was built). See [`Builder::trace_turns`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Turn {
    /// The worker's index (extra workers come after the regular ones).
    pub worker: usize,
    /// The coroutine.
    pub coroutine: crate::CoroutineId,
    /// When the turn began.
    pub start: Duration,
    /// When it ended.
    pub end: Duration,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("workers", &self.workers())
            .finish_non_exhaustive()
    }
}

/// The process-wide default runtime, started on first use.
///
/// It is never dropped: at process exit its workers simply stop.
///
/// # Errors
///
/// As [`Builder::build`] (e.g. a malformed `SPINDLE_WORKERS`).
pub fn default_handle() -> io::Result<Handle> {
    static DEFAULT: OnceLock<Runtime> = OnceLock::new();
    if let Some(rt) = DEFAULT.get() {
        return Ok(rt.handle.clone());
    }
    let rt = Builder::default().build()?;
    // If another thread won the race, ours is dropped (shut down) here.
    Ok(DEFAULT.get_or_init(|| rt).handle.clone())
}

/// The runtime of the calling coroutine, or the default runtime.
pub(crate) fn current_or_default() -> io::Result<Arc<Shared>> {
    match worker::context() {
        // SAFETY: `context()` is the live context of this thread.
        Some(cx) => Ok(unsafe { (*cx).shared.clone() }),
        None => default_handle().map(|h| h.shared),
    }
}

/// A snapshot of the live coroutines of the current runtime (the calling
/// coroutine's, else the default runtime).
///
/// ```
/// let rt = spindle::Runtime::builder().workers(1).build().unwrap();
/// let snap = rt.block_on(spindle::runtime::snapshot);
/// // The block_on coroutine itself is running.
/// assert!(snap.coroutines.iter().any(|c| c.state == spindle::runtime::CoroutineState::Running));
/// ```
pub fn snapshot() -> Snapshot {
    match current_or_default() {
        Ok(s) => introspect::snapshot_of(&s),
        Err(_) => Snapshot {
            coroutines: Vec::new(),
            unstarted: 0,
            workers: 0,
        },
    }
}

pub use crate::introspect::{BlockedOn, CoroutineInfo, CoroutineState, Snapshot};
