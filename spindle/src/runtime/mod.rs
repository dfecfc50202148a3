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
#[derive(Debug, Default, Clone)]
#[must_use = "a Builder does nothing until `build` is called"]
pub struct Builder {
    workers: Option<usize>,
    stack_size: Option<usize>,
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

    /// Starts the worker threads.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for zero workers or a malformed `SPINDLE_WORKERS`;
    /// the OS error if a worker thread cannot be started.
    pub fn build(self) -> io::Result<Runtime> {
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
        let deques: Vec<Deque<_>> = (0..workers).map(|_| Deque::new_lifo()).collect();
        let shared = Arc::new(Shared::new(
            Config {
                workers,
                stack_size,
            },
            deques.iter().map(|d| d.stealer()).collect(),
            reactor,
        ));
        let mut threads = Vec::with_capacity(workers);
        for (index, deque) in deques.into_iter().enumerate() {
            let shared2 = shared.clone();
            let spawned = thread::Builder::new()
                .name(format!("spindle-worker-{index}"))
                .spawn(move || worker_main(shared2, index, deque));
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

fn worker_main(shared: Arc<Shared>, index: usize, deque: Deque<crate::coroutine::task::TaskRef>) {
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
    let cx = Context::new(shared, index, deque);
    cx.run();
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
    /// If `f` panics, or if the runtime is shutting down (the coroutine
    /// then never runs).
    pub fn block_on<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        let shared = self.handle.shared.clone();
        let r = coroutine::scope_on(shared, WaitReason::BlockOn, |s| s.spawn(f).join());
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
        for t in std::mem::take(&mut self.threads) {
            match deadline {
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
            }
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
