//! The blocking pool: OS threads for calls that would stall a worker.
//!
//! A coroutine that calls something that blocks its OS thread — a read
//! from a regular file, `getaddrinfo`, a C library, a long computation —
//! stops its whole worker, and every coroutine bound to that worker waits
//! with it. [`run`] moves such a call to a pool of plain OS threads and
//! parks only the calling coroutine until it is done, as Go's runtime does
//! for system calls and libuv does for file I/O; [`spawn`] starts one
//! without waiting and returns a [`JoinHandle`].
//!
//! ```
//! let rt = spindle::Runtime::builder().workers(1).build().unwrap();
//! rt.block_on(|| {
//!     // Borrows `dir` and runs on a pool thread; the worker runs other
//!     // coroutines meanwhile.
//!     let dir = std::env::temp_dir();
//!     let is_dir = spindle::blocking::run(|| std::fs::metadata(&dir).map(|m| m.is_dir()));
//!     assert!(is_dir.unwrap());
//!
//!     // A 'static task, joined later.
//!     let h = spindle::blocking::spawn(|| (1..=10u64).product::<u64>());
//!     assert_eq!(h.join().unwrap(), 3_628_800);
//! });
//! ```
//!
//! The pool is process-wide and independent of any [`Runtime`]: the
//! [`global`] pool serves [`spawn`], [`run`] and [`fs`](crate::fs) from
//! every runtime and from plain threads. Configure it with [`configure`]
//! before its first use, or build pools of your own with
//! [`Pool::builder`].
//!
//! # The knobs
//!
//! | knob | default | meaning |
//! | --- | --- | --- |
//! | [`core_threads`](Builder::core_threads) | 0 | threads started by `build` and never retired |
//! | [`max_threads`](Builder::max_threads) | 512 (`SPINDLE_BLOCKING_THREADS`) | most threads at once: the most tasks running at once |
//! | [`queue_capacity`](Builder::queue_capacity) | 1024 | tasks waiting for a thread once `max_threads` are busy (`None`: unbounded) |
//! | [`keep_alive`](Builder::keep_alive) | 10 s | how long a thread beyond the core ones stays idle before it exits |
//! | [`rejection`](Builder::rejection) | [`Rejection::Wait`] | what `spawn` and `run` do when threads and queue are all taken |
//!
//! # Where a task goes
//!
//! A submitted task goes, in this order: to an idle thread (handed over
//! directly); to a new thread, if fewer than `max_threads` are alive; to
//! the queue, if it has room; and otherwise the pool is *full* and the
//! rejection policy decides: [`Wait`](Rejection::Wait) parks the caller
//! until a thread takes a queued task and so makes room (callers are served
//! in order), [`Error`](Rejection::Error) refuses the task
//! ([`Pool::try_spawn`] always does), and
//! [`CallerRuns`](Rejection::CallerRuns) runs it on the caller.
//!
//! Threads are preferred to the queue (as in tokio and Go, unlike Java's
//! `ThreadPoolExecutor`, which queues until the queue is full and only
//! then grows): blocking calls wait on the outside world, not on a CPU,
//! so a call queued behind a slow one while threads could still be started
//! would wait for nothing. The queue is for bursts beyond `max_threads`.
//!
//! # Waiting
//!
//! [`JoinHandle::join`], [`run`] and a full pool's `Wait` park the calling
//! coroutine, recording [`WaitReason::Blocking`](crate::WaitReason::Blocking)
//! (its worker runs other coroutines meanwhile); on a plain thread they
//! block the thread. Pool threads are plain threads: a task may use
//! spindle's primitives and channels, which then block the pool thread.
//!
//! # Failures
//!
//! - A panicking task does not take its thread down: the panic is caught
//!   and handed to [`JoinHandle::join`] (as `Err`) or resumed in the caller
//!   of [`run`], and the thread goes on with the next task.
//! - If the OS refuses a new thread (the process is at `RLIMIT_NPROC`, out
//!   of memory for stacks, ...) while other threads of the pool are alive,
//!   the task is queued for them (or the pool counts as full) and the pool
//!   prints one warning naming the limits; with no thread alive, nothing
//!   could ever run the task, so [`spawn`] and [`run`] panic, and
//!   [`Pool::try_spawn`] and the [`fs`](crate::fs) functions return an
//!   error naming the limits. Never a hang.
//!
//! # How it works
//!
//! One internal lock guards the pool's state (`shared.rs`; the threads' loop
//! is in `thread.rs`):
//!
//! | field        | meaning                                                              |
//! | ------------ | -------------------------------------------------------------------- |
//! | `queue`      | tasks waiting for a thread, oldest first; at most `queue_capacity`   |
//! | `starting`   | the first tasks of threads started but not running yet, one each     |
//! | `idle`       | threads waiting for a task (a wait list: `sync/wait.rs`)             |
//! | `submitters` | callers waiting for room under [`Rejection::Wait`] (a wait list)     |
//! | `alive`      | threads started and not exited                                       |
//! | `busy`       | threads that hold a task (running it, or about to)                   |
//!
//! Invariants, each kept by every change under the lock:
//!
//! 1. `idle` holds a waiting thread only while `queue` and `submitters`
//!    are empty: a thread goes idle only after finding both empty, and a
//!    submitter gives its task to an idle thread before it would queue it
//!    or wait.
//! 2. `submitters` holds a waiting caller only while the pool is full: no
//!    idle thread, no room for a new one (or the OS refused one), the
//!    queue at capacity.
//! 3. `queue` is non-empty only while `alive > 0`, and an alive thread
//!    exits only when it finds `queue` and `submitters` empty: so every
//!    queued task and every waiting caller is served.
//!
//! A task reaches an idle thread, and a waiting caller hands its task to
//! the pool, by the wait-queue hand-off of [`sync`](crate::sync): the
//! giver claims the waiter under the lock, moves the task through a slot
//! on the waiter's stack, and finishes the claim, which wakes it. So a
//! thread whose keep-alive runs out just as it is given a task either got
//! the task (and runs it) or had already given up (and the giver passes
//! over it): no task is lost, and none waits for a thread that left.
//!
//! A new thread is started under the lock, and its first task goes to
//! `starting` rather than into the thread's closure: if the OS refuses the
//! thread, std drops the closure, and the task must come back to its
//! submitter intact (to be queued, or returned by `try_spawn`).
//!
//! # Designs rejected
//!
//! - *A lock-free queue* (crossbeam's injector, as tokio's scheduler
//!   uses) with atomic counts of idle threads: the pool's lock is taken
//!   about twice per task, and a task is a blocking call of microseconds
//!   at least, so the lock is not what limits a blocking pool (tokio's is
//!   a mutex too). One lock keeps the invariants above simple and the
//!   metrics exact.
//! - *`run` only for `'static` closures*, as tokio's `spawn_blocking`:
//!   [`fs`](crate::fs) would then copy every read and write through a
//!   buffer of its own, as tokio's does (an async caller can be cancelled
//!   at any await, so it cannot lend its buffer). A spindle caller cannot
//!   leave `run` early (see [`Pool::run`]), so it lends its buffer, as Go
//!   and libuv callers do.
//! - *Running `run` on the caller when it is a plain thread* (it may
//!   block): then `max_threads` would not bound the calls running at once.
//!   The [`fs`](crate::fs) functions do run on a plain-thread caller, as
//!   std's would: they promise std's behaviour, not a bound.
//!
//! [`Runtime`]: crate::Runtime

mod builder;
mod error;
mod job;
mod pool;
mod shared;
mod thread;

use std::io;
use std::sync::OnceLock;

pub use builder::{Builder, Rejection};
pub use error::{ConfigureError, Rejected};
pub use job::JoinHandle;
pub use pool::{Pool, PoolMetrics};

/// The process-wide pool behind [`spawn`], [`run`] and
/// [`fs`](crate::fs); set once, by [`configure`] or on first use.
static GLOBAL: OnceLock<Pool> = OnceLock::new();

/// Runs `f` on a thread of the [`global`] pool and returns its result,
/// parking the calling coroutine (or blocking the calling thread) until
/// it is done. Shorthand for `global().run(f)`; see [`Pool::run`].
///
/// `f` may borrow from the caller: the caller does not return, and cannot
/// be unwound, while `f` runs (see [`Pool::run`] for why this is sound).
///
/// # Panics
///
/// If `f` panics, the panic is resumed in the caller, as
/// [`std::thread::scope`] does with its threads' panics. Also panics if
/// the pool is full under [`Rejection::Error`], or cannot start a thread
/// and has none (see [`Rejected`]).
///
/// ```
/// let rt = spindle::Runtime::builder().workers(1).build().unwrap();
/// rt.block_on(|| {
///     let mut buf = vec![0u8; 16];
///     let n = spindle::blocking::run(|| {
///         // Anything that blocks its thread: here, filling a borrowed buffer.
///         buf.fill(7);
///         buf.len()
///     });
///     assert_eq!((n, buf[0]), (16, 7));
/// });
/// ```
#[track_caller]
pub fn run<'env, F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'env,
    T: Send + 'env,
{
    global().run(f)
}

/// Starts `f` on a thread of the [`global`] pool and returns a handle to
/// join it. Shorthand for `global().spawn(f)`; see [`Pool::spawn`].
///
/// # Panics
///
/// If the pool is full under [`Rejection::Error`], or cannot start a
/// thread and has none (see [`Rejected`]); [`Pool::try_spawn`] returns
/// these as errors instead.
///
/// ```
/// let rt = spindle::Runtime::builder().workers(1).build().unwrap();
/// rt.block_on(|| {
///     let h = spindle::blocking::spawn(|| std::thread::current().name().map(String::from));
///     // ... do other work; then park until it is done:
///     assert_eq!(h.join().unwrap().as_deref(), Some("spindle-blocking"));
/// });
/// ```
#[track_caller]
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    global().spawn(f)
}

/// The process-wide pool, built on first use: with the settings given to
/// [`configure`], or else with [`Builder::new`]'s defaults (its
/// `max_threads` from `SPINDLE_BLOCKING_THREADS` if set).
///
/// # Panics
///
/// If the pool cannot be built on first use: `SPINDLE_BLOCKING_THREADS` is
/// not a positive number.
///
/// ```
/// let pool = spindle::blocking::global();
/// assert_eq!(pool.run(|| 6 * 7), 42);
/// assert!(pool.metrics().threads_alive >= 1);
/// ```
pub fn global() -> &'static Pool {
    match try_global() {
        Ok(pool) => pool,
        Err(e) => panic!("{e}"),
    }
}

/// [`global`], with a failure to build it as an error (for `fs`, whose
/// calls return `io::Result`).
pub(crate) fn try_global() -> io::Result<&'static Pool> {
    if let Some(pool) = GLOBAL.get() {
        return Ok(pool);
    }
    // Building starts no thread (no core threads by default), so a pool
    // that loses the race to `set` below is dropped having cost nothing.
    let pool = Builder::new().build()?;
    let _ = GLOBAL.set(pool);
    Ok(GLOBAL.get().expect("the global pool was just set"))
}

/// Sets up the [`global`] pool with `builder`'s settings. Call it before
/// the pool's first use (the first [`spawn`], [`run`], [`global`] or
/// [`fs`](crate::fs) call), for example at the top of `main`.
///
/// # Errors
///
/// [`ConfigureError::AlreadyStarted`] if the global pool is in use already
/// (its settings stay as they are); [`ConfigureError::Build`] if `builder`
/// is invalid or cannot start its core threads.
///
/// ```
/// use std::time::Duration;
/// use spindle::blocking::{self, ConfigureError, Pool, Rejection};
///
/// let configured = blocking::configure(
///     Pool::builder()
///         .max_threads(64)
///         .queue_capacity(256)
///         .keep_alive(Duration::from_secs(30))
///         .rejection(Rejection::Wait),
/// );
/// match configured {
///     Ok(()) => assert_eq!(blocking::global().run(|| 1), 1),
///     // Too late: something used the global pool first.
///     Err(ConfigureError::AlreadyStarted) => {}
///     Err(e) => panic!("{e}"),
/// }
/// ```
pub fn configure(builder: Builder) -> Result<(), ConfigureError> {
    if GLOBAL.get().is_some() {
        return Err(ConfigureError::AlreadyStarted);
    }
    let pool = builder.build().map_err(ConfigureError::Build)?;
    // Lost a race with a first use or another `configure`: dropping our
    // pool shuts its core threads down.
    GLOBAL.set(pool).map_err(|_| ConfigureError::AlreadyStarted)
}

/// Runs `f` for [`fs`](crate::fs): on the calling thread if it is not a
/// coroutine (a plain thread may block; hopping to the pool would add two
/// thread switches and nothing else), else on the global pool, with every
/// way the pool can refuse reported as an `io::Error`.
pub(crate) fn run_io<'env, F, T>(f: F) -> io::Result<T>
where
    F: FnOnce() -> io::Result<T> + Send + 'env,
    T: Send + 'env,
{
    if crate::park::current_coroutine().is_none() {
        return f();
    }
    try_global()?.try_run_io(f)
}
