//! [`Pool`]: the handle a user holds, and [`PoolMetrics`]. What the handle
//! and the pool's threads share, and how a submitted task is placed, is in
//! `shared.rs`; the threads' loop is in `thread.rs`.

use std::fmt;
use std::io;
use std::panic::resume_unwind;
use std::pin::pin;
use std::sync::Arc;

use super::builder::{Builder, Config};
use super::error::{Reason, Rejected};
use super::job::{Job, JoinHandle, Packet, RunJob, RunSlot, SpawnJob};
use super::shared::{Shared, Submitted};
use crate::park::NoUnwind;

/// A pool of OS threads that run blocking calls, so coroutines need not.
///
/// Most programs use the process-wide pool through
/// [`blocking::run`](super::run), [`blocking::spawn`](super::spawn) and
/// [`fs`](crate::fs). A pool of your own keeps one kind of call from
/// taking every thread of another (a slow NFS mount from DNS lookups, say),
/// or gives it its own limits. See the [module docs](super) for how tasks
/// are placed and what the knobs do.
///
/// Dropping the pool lets its threads finish the tasks already submitted
/// (queued ones included), then exit; it does not wait for them.
///
/// ```
/// use spindle::blocking::Pool;
///
/// let rt = spindle::Runtime::builder().workers(1).build()?;
/// let pool = Pool::builder().max_threads(4).build()?;
/// let total: u64 = rt.block_on(|| {
///     let handles: Vec<_> = (1..=4u64).map(|i| pool.spawn(move || i * 10)).collect();
///     handles.into_iter().map(|h| h.join().unwrap()).sum()
/// });
/// assert_eq!(total, 100);
/// assert!(pool.metrics().threads_alive <= 4);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Pool {
    shared: Arc<Shared>,
}

/// A pool's figures at one moment, from [`Pool::metrics`]: all read under
/// the pool's lock, so they agree with each other.
///
/// Gauges (`threads_*`, `queue_depth`, `waiting_submitters`) start at 0
/// (`threads_alive` at `core_threads`) and go up and down; counters
/// (`tasks_*`, `thread_*`, `submit_waits`) start at 0 and only grow.
///
/// ```
/// let pool = spindle::blocking::Pool::builder().build()?;
/// pool.run(|| ());
/// let m = pool.metrics();
/// assert_eq!((m.threads_alive, m.threads_started, m.queue_depth), (1, 1, 0));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolMetrics {
    /// Threads started and not exited (gauge).
    pub threads_alive: usize,
    /// Threads that hold a task: running it, or about to (gauge).
    pub threads_busy: usize,
    /// Threads waiting for a task, or about to (gauge;
    /// `threads_alive - threads_busy`).
    pub threads_idle: usize,
    /// Tasks waiting in the queue for a thread (gauge).
    pub queue_depth: usize,
    /// Callers parked until the pool has room, under
    /// [`Rejection::Wait`](super::Rejection::Wait) (gauge).
    pub waiting_submitters: usize,
    /// Threads the pool started (counter).
    pub threads_started: u64,
    /// Times the OS refused the pool a thread (counter).
    pub thread_start_failures: u64,
    /// Tasks that ran to their end on a pool thread, panicked or not
    /// (counter; a task is counted just after it ends, so a joiner may see
    /// its result a moment before the count).
    pub tasks_completed: u64,
    /// Of `tasks_completed`, those that panicked (counter).
    pub tasks_panicked: u64,
    /// Tasks refused: by [`Pool::try_spawn`] or
    /// [`Rejection::Error`](super::Rejection::Error) when full, or because
    /// no thread could be started (counter).
    pub tasks_rejected: u64,
    /// Tasks run on their caller under
    /// [`Rejection::CallerRuns`](super::Rejection::CallerRuns) (counter).
    pub tasks_run_on_caller: u64,
    /// Callers that had to wait for room under
    /// [`Rejection::Wait`](super::Rejection::Wait) (counter).
    pub submit_waits: u64,
}

impl Pool {
    /// A [`Builder`] with the default settings.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// Builds the pool from checked settings and starts its core threads.
    pub(super) fn new(config: Config) -> io::Result<Pool> {
        let pool = Pool {
            shared: Shared::new(config),
        };
        // On failure, dropping the pool lets the threads started so far
        // exit.
        pool.shared.start_core_threads()?;
        Ok(pool)
    }

    /// Starts `f` on a pool thread and returns a handle to join it.
    ///
    /// If the pool is full, the [`Rejection`](super::Rejection) policy
    /// decides: `Wait` parks the calling coroutine (or blocks the thread)
    /// until there is room, `CallerRuns` runs `f` right here (the handle is
    /// then finished), and `Error` panics.
    ///
    /// # Panics
    ///
    /// If the pool is full under
    /// [`Rejection::Error`](super::Rejection::Error), or it cannot start a
    /// thread and has none; the message says which, and what to do (see
    /// [`Rejected`]). [`try_spawn`](Pool::try_spawn) returns these instead.
    ///
    /// ```
    /// let pool = spindle::blocking::Pool::builder().build()?;
    /// let h = pool.spawn(|| std::fs::metadata("/").map(|m| m.is_dir()));
    /// assert!(h.join().unwrap()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let packet = Arc::new(Packet::new());
        let job = Box::new(SpawnJob {
            f,
            packet: packet.clone(),
        });
        match self.shared.submit(job, Some(self.shared.config.rejection)) {
            Submitted::Accepted => {}
            // Catches a panic and completes the packet, as on a pool thread.
            Submitted::RunHere(job) => {
                Job::run(job);
            }
            Submitted::Refused(reason, job) => {
                drop(job);
                panic!("{reason}");
            }
        }
        JoinHandle::new(packet)
    }

    /// Starts `f` on a pool thread if the pool takes it at once: never
    /// waits for room and never runs `f` on the caller, whatever the
    /// [`Rejection`](super::Rejection) policy.
    ///
    /// # Errors
    ///
    /// [`Rejected`], with `f` inside, if the pool is full (every thread it
    /// may have is busy and the queue is at capacity) or has no thread and
    /// cannot start one.
    ///
    /// ```
    /// let pool = spindle::blocking::Pool::builder().build()?;
    /// match pool.try_spawn(|| 2 + 2) {
    ///     Ok(h) => assert_eq!(h.join().unwrap(), 4),
    ///     Err(rejected) => eprintln!("{rejected}"), // full: back off
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_spawn<F, T>(&self, f: F) -> Result<JoinHandle<T>, Rejected<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let packet = Arc::new(Packet::new());
        let job = Box::new(SpawnJob {
            f,
            packet: packet.clone(),
        });
        match self.shared.submit(job, None) {
            Submitted::Accepted => Ok(JoinHandle::new(packet)),
            Submitted::Refused(reason, job) => {
                let SpawnJob { f, .. } = *job;
                Err(Rejected { task: f, reason })
            }
            Submitted::RunHere(_) => unreachable!("no policy, no caller-runs"),
        }
    }

    /// Runs `f` on a pool thread and returns its result, parking the
    /// calling coroutine (or blocking the calling thread) until it is done.
    ///
    /// Called from a thread of this very pool (a task that calls `run`),
    /// `f` runs inline: the caller is a blocking thread already, and
    /// waiting for another could deadlock a full pool.
    ///
    /// # Borrowing
    ///
    /// `f` may borrow from the caller (it need not be `'static`), as the
    /// closures of [`std::thread::scope`] may. This is sound because the
    /// caller cannot leave `run` while `f` runs: a plain thread is blocked;
    /// a coroutine waits in a section that runtime shutdown does not unwind
    /// (as at the end of [`spindle::scope`](crate::scope)), and a runtime
    /// that gives up on a coroutine leaks its stack rather than free it.
    /// The price: a runtime shutting down waits for a `run` in progress.
    ///
    /// # Panics
    ///
    /// If `f` panics, the panic is resumed here, in the caller, as
    /// [`std::thread::scope`] does. Also panics if the pool is full under
    /// [`Rejection::Error`](super::Rejection::Error), or cannot start a
    /// thread and has none (see [`Rejected`]).
    ///
    /// ```
    /// let pool = spindle::blocking::Pool::builder().build()?;
    /// let rt = spindle::Runtime::builder().workers(1).build()?;
    /// let mut lines = Vec::new();
    /// rt.block_on(|| {
    ///     // Borrows `lines` mutably; the coroutine parks meanwhile.
    ///     pool.run(|| lines.extend(["a", "b"].map(String::from)));
    /// });
    /// assert_eq!(lines, ["a", "b"]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn run<'env, F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send + 'env,
        T: Send + 'env,
    {
        match self.run_inner(f) {
            Ok(value) => value,
            Err(reason) => panic!("{reason}"),
        }
    }

    /// [`run`](Pool::run) for `fs`: a refusal is an `io::Error`.
    pub(super) fn try_run_io<'env, F, T>(&self, f: F) -> io::Result<T>
    where
        F: FnOnce() -> io::Result<T> + Send + 'env,
        T: Send + 'env,
    {
        self.run_inner(f)
            .unwrap_or_else(|reason| Err(reason.into_io_error()))
    }

    /// Runs `f` as [`run`](Pool::run) does; a panic of `f` is resumed, a
    /// refusal returned.
    fn run_inner<'env, F, T>(&self, f: F) -> Result<T, Reason>
    where
        F: FnOnce() -> T + Send + 'env,
        T: Send + 'env,
    {
        if self.shared.is_current_thread() {
            return Ok(f());
        }
        let slot = pin!(RunSlot::new());
        // SAFETY: we leave this frame only after `slot.wait()` returned,
        // or with the job back unrun: `submit` returns it, or (cancelled
        // while waiting for room) drops it without the pool having taken
        // it; nothing between a successful submission and the wait can
        // unwind, and the wait itself cannot (`NoUnwind`). `slot` is
        // pinned.
        let job = Box::new(unsafe { RunJob::new(f, &slot) });
        match self.shared.submit(job, Some(self.shared.config.rejection)) {
            Submitted::Accepted => {}
            Submitted::RunHere(job) => return Ok((job.into_inner())()),
            Submitted::Refused(reason, job) => {
                drop(job);
                return Err(reason);
            }
        }
        let result = {
            let _no_unwind = NoUnwind::enter();
            slot.wait()
        };
        // A shutdown that came meanwhile unwinds the coroutine at its next
        // blocking call.
        match result {
            Ok(value) => Ok(value),
            Err(payload) => resume_unwind(payload),
        }
    }

    /// The pool's figures now (see [`PoolMetrics`]).
    pub fn metrics(&self) -> PoolMetrics {
        self.shared.metrics()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.shut_down();
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("config", &self.shared.config)
            .field("metrics", &self.metrics())
            .finish()
    }
}
