//! [`Builder`]: a pool's settings, checked once by `build`.

use std::io;
use std::time::Duration;

use super::pool::Pool;

/// What [`Pool::spawn`] and [`Pool::run`] do when the pool is full: every
/// thread it may have is busy and its queue is at capacity.
///
/// ```
/// use spindle::blocking::{Pool, Rejection};
///
/// // At most one task at a time, none queued: a second one runs on the caller.
/// let pool = Pool::builder()
///     .max_threads(1)
///     .queue_capacity(0)
///     .rejection(Rejection::CallerRuns)
///     .build()?;
/// assert_eq!(pool.run(|| 1 + 1), 2);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rejection {
    /// Wait until a thread takes a queued task and so makes room: park the
    /// calling coroutine (recording
    /// [`WaitReason::Blocking`](crate::WaitReason::Blocking)) or block the
    /// calling thread. Callers are served in the order they came. The
    /// default: backpressure that loses no work.
    ///
    /// A task that spawns onto its own pool and waits for that task can
    /// deadlock a full pool this way (every thread waiting for room only
    /// its own tasks could make); [`Pool::run`] from a pool's own thread
    /// runs inline and is safe.
    #[default]
    Wait,
    /// Refuse the task: [`Pool::spawn`] and [`Pool::run`] panic with a
    /// message saying the pool is full (as `std::thread::spawn` panics when
    /// the OS refuses a thread), the [`fs`](crate::fs) functions return an
    /// `io::Error` of kind `WouldBlock`. Use [`Pool::try_spawn`] to get the
    /// task back instead.
    Error,
    /// Run the task on the caller, as Java's `CallerRunsPolicy` does: a
    /// natural brake on whoever submits too fast. From a coroutine this
    /// blocks its worker (and every coroutine waiting for that worker) for
    /// as long as the task runs.
    CallerRuns,
}

/// Configures and builds a [`Pool`].
///
/// ```
/// use std::time::Duration;
/// use spindle::blocking::{Pool, Rejection};
///
/// let pool = Pool::builder()
///     .core_threads(1)
///     .max_threads(8)
///     .queue_capacity(64)
///     .keep_alive(Duration::from_secs(1))
///     .rejection(Rejection::Error)
///     .thread_name("resolver")
///     .build()?;
/// assert_eq!(pool.metrics().threads_alive, 1); // the core thread
/// assert_eq!(pool.run(|| std::thread::current().name().map(String::from)).as_deref(), Some("resolver"));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
#[must_use = "a Builder does nothing until `build` is called"]
pub struct Builder {
    core_threads: usize,
    max_threads: Option<usize>,
    queue_capacity: Option<usize>,
    keep_alive: Duration,
    rejection: Rejection,
    thread_name: String,
    stack_size: Option<usize>,
}

/// A pool's settings, checked.
#[derive(Debug)]
pub(super) struct Config {
    pub(super) core_threads: usize,
    pub(super) max_threads: usize,
    /// `None`: unbounded.
    pub(super) queue_capacity: Option<usize>,
    pub(super) keep_alive: Duration,
    pub(super) rejection: Rejection,
    pub(super) thread_name: String,
    pub(super) stack_size: Option<usize>,
}

/// The default [`Builder::max_threads`], as Go's default limit on threads
/// is 10,000 and tokio's blocking pool's 512: enough that blocking calls
/// rarely queue, few enough to stay well below per-user thread limits.
const DEFAULT_MAX_THREADS: usize = 512;

/// The default [`Builder::queue_capacity`]: a burst of twice the threads.
const DEFAULT_QUEUE_CAPACITY: usize = 1024;

/// The default [`Builder::keep_alive`], as in tokio.
const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(10);

/// Overrides [`DEFAULT_MAX_THREADS`] for pools built without
/// [`Builder::max_threads`].
const MAX_THREADS_VAR: &str = "SPINDLE_BLOCKING_THREADS";

impl Default for Builder {
    fn default() -> Builder {
        Builder::new()
    }
}

impl Builder {
    /// The default settings (see each setter for its default).
    pub fn new() -> Builder {
        Builder {
            core_threads: 0,
            max_threads: None,
            queue_capacity: Some(DEFAULT_QUEUE_CAPACITY),
            keep_alive: DEFAULT_KEEP_ALIVE,
            rejection: Rejection::Wait,
            thread_name: String::from("spindle-blocking"),
            stack_size: None,
        }
    }

    /// Threads started by [`build`](Builder::build) and kept for the
    /// pool's life, however long they stay idle. Default: 0 (threads are
    /// started on demand and all retire when idle).
    pub fn core_threads(mut self, n: usize) -> Builder {
        self.core_threads = n;
        self
    }

    /// The most threads the pool has at once, and so the most tasks
    /// running at once. At least 1, and at least `core_threads`.
    ///
    /// Default: the `SPINDLE_BLOCKING_THREADS` environment variable if set,
    /// else 512.
    pub fn max_threads(mut self, n: usize) -> Builder {
        self.max_threads = Some(n);
        self
    }

    /// How many tasks may wait for a thread once `max_threads` are busy;
    /// `None` for no limit (then the pool is never full, and the
    /// [`rejection`](Builder::rejection) policy never applies). `0` makes
    /// every task wait for (or be refused) a free thread. Default: 1024.
    pub fn queue_capacity(mut self, capacity: impl Into<Option<usize>>) -> Builder {
        self.queue_capacity = capacity.into();
        self
    }

    /// How long a thread beyond the `core_threads` stays idle before it
    /// exits. Default: 10 s.
    pub fn keep_alive(mut self, keep_alive: Duration) -> Builder {
        self.keep_alive = keep_alive;
        self
    }

    /// What [`Pool::spawn`] and [`Pool::run`] do when the pool is full.
    /// Default: [`Rejection::Wait`].
    pub fn rejection(mut self, rejection: Rejection) -> Builder {
        self.rejection = rejection;
        self
    }

    /// The name of the pool's threads (as `std::thread::current().name()`
    /// shows it; the OS sees its first 15 bytes). Default:
    /// `"spindle-blocking"`.
    pub fn thread_name(mut self, name: impl Into<String>) -> Builder {
        self.thread_name = name.into();
        self
    }

    /// The stack size of the pool's threads, in bytes. Default: std's
    /// (2 MiB, or `RUST_MIN_STACK`).
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Builds the pool and starts its `core_threads`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for `max_threads(0)`, `core_threads` above
    /// `max_threads`, a thread name with a NUL byte, or a malformed
    /// `SPINDLE_BLOCKING_THREADS`; the OS error (with the limits that may
    /// cause it) if a core thread cannot be started.
    pub fn build(self) -> io::Result<Pool> {
        let invalid = |msg: String| Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        let max_threads = match self.max_threads {
            Some(0) => {
                return invalid(
                    "spindle: a blocking pool needs at least one thread (Builder::max_threads(0))"
                        .into(),
                );
            }
            Some(n) => n,
            None => max_threads_from_env()?,
        };
        if self.core_threads > max_threads {
            return invalid(format!(
                "spindle: a blocking pool's core_threads ({}) exceed its max_threads ({max_threads})",
                self.core_threads
            ));
        }
        if self.thread_name.contains('\0') {
            return invalid(format!(
                "spindle: a thread name cannot contain a NUL byte: {:?}",
                self.thread_name
            ));
        }
        Pool::new(Config {
            core_threads: self.core_threads,
            max_threads,
            queue_capacity: self.queue_capacity,
            keep_alive: self.keep_alive,
            rejection: self.rejection,
            thread_name: self.thread_name,
            stack_size: self.stack_size,
        })
    }
}

fn max_threads_from_env() -> io::Result<usize> {
    match std::env::var(MAX_THREADS_VAR) {
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "spindle: {MAX_THREADS_VAR}={v:?} is not a positive number of blocking threads"
                ),
            )),
        },
        Err(_) => Ok(DEFAULT_MAX_THREADS),
    }
}
