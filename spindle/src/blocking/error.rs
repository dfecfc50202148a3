//! Why the pool refused a task, and why [`configure`](super::configure)
//! failed.

use std::error::Error;
use std::fmt;
use std::io;

/// Why the pool did not take a task (internal; carried by [`Rejected`]).
#[derive(Debug)]
pub(super) enum Reason {
    /// Every thread the pool may have is busy and its queue is at
    /// capacity; the figures are those seen at that moment.
    Full {
        busy: usize,
        max_threads: usize,
        queued: usize,
        capacity: usize,
    },
    /// The pool has no thread and the OS refused to start one.
    NoThread(io::Error),
}

impl Reason {
    /// The message for the OS's refusal to start a pool thread.
    pub(super) fn no_thread_message(e: &io::Error) -> String {
        format!(
            "spindle: the blocking pool cannot start a thread ({e}) and has none running. \
             The process may be at its thread limit (RLIMIT_NPROC: `ulimit -u`; \
             /proc/sys/kernel/threads-max; a cgroup's pids.max) or out of address space \
             for thread stacks (RLIMIT_AS: `ulimit -v`; blocking::Builder::stack_size)"
        )
    }

    /// As an `io::Error`: `WouldBlock` for a full pool (the call would
    /// have had to wait, and the policy said not to), the OS's own kind
    /// for a thread it refused.
    pub(super) fn into_io_error(self) -> io::Error {
        let msg = self.to_string();
        match self {
            Reason::Full { .. } => io::Error::new(io::ErrorKind::WouldBlock, msg),
            Reason::NoThread(e) => io::Error::new(e.kind(), msg),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Full {
                busy,
                max_threads,
                queued,
                capacity,
            } => write!(
                f,
                "spindle: the blocking pool is full ({busy} threads busy, at most \
                 {max_threads}; {queued} tasks queued, queue capacity {capacity}); retry \
                 later, raise blocking::Builder::max_threads or queue_capacity, or choose \
                 Rejection::Wait to wait for room"
            ),
            Reason::NoThread(e) => f.write_str(&Reason::no_thread_message(e)),
        }
    }
}

/// The error of [`Pool::try_spawn`](super::Pool::try_spawn): the pool did
/// not take the task, which comes back with the error.
///
/// Either the pool is [full](Rejected::is_full) (every thread it may have
/// is busy and its queue is at capacity: retry later, or raise the limits),
/// or it has no thread and the OS refused to start one
/// ([`thread_error`](Rejected::thread_error); the message names the limits
/// that cause it).
///
/// ```
/// use std::sync::mpsc;
/// use spindle::blocking::Pool;
///
/// let pool = Pool::builder().max_threads(1).queue_capacity(0).build()?;
/// let (release, gate) = mpsc::channel::<()>();
/// let busy = pool.spawn(move || gate.recv().unwrap()); // holds the only thread
///
/// let err = pool.try_spawn(|| "later").unwrap_err();
/// assert!(err.is_full());
/// println!("{err}"); // says the pool is full and what to do
/// let task = err.into_inner(); // the closure, unrun
///
/// release.send(()).unwrap();
/// busy.join().unwrap();
/// assert_eq!(pool.spawn(task).join().unwrap(), "later");
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Rejected<F> {
    pub(super) task: F,
    pub(super) reason: Reason,
}

impl<F> Rejected<F> {
    /// Whether the pool was full (rather than unable to start a thread).
    pub fn is_full(&self) -> bool {
        matches!(self.reason, Reason::Full { .. })
    }

    /// The OS's error, if the pool has no thread and could not start one.
    pub fn thread_error(&self) -> Option<&io::Error> {
        match &self.reason {
            Reason::NoThread(e) => Some(e),
            Reason::Full { .. } => None,
        }
    }

    /// The task, unrun.
    pub fn into_inner(self) -> F {
        self.task
    }
}

impl<F> fmt::Debug for Rejected<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rejected")
            .field("reason", &self.reason)
            .finish_non_exhaustive()
    }
}

impl<F> fmt::Display for Rejected<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.reason, f)
    }
}

impl<F> Error for Rejected<F> {}

impl<F> From<Rejected<F>> for io::Error {
    /// `WouldBlock` for a full pool, the OS's error kind for a thread it
    /// refused; the message as [`Display`](fmt::Display) shows it. The task
    /// is dropped.
    fn from(r: Rejected<F>) -> io::Error {
        r.reason.into_io_error()
    }
}

/// The error of [`configure`](super::configure).
///
/// ```
/// use spindle::blocking::{self, ConfigureError, Pool};
///
/// let _ = blocking::global(); // the global pool is in use from here on
/// let err = blocking::configure(Pool::builder().max_threads(4)).unwrap_err();
/// assert!(matches!(err, ConfigureError::AlreadyStarted));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigureError {
    /// The global pool was used (or configured) before: its settings stay
    /// as they are. Configure it before anything uses it.
    AlreadyStarted,
    /// The builder is invalid or could not start its core threads (the
    /// error of [`Builder::build`](super::Builder::build)).
    Build(io::Error),
}

impl fmt::Display for ConfigureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigureError::AlreadyStarted => f.write_str(
                "spindle: the global blocking pool is already in use; call \
                 blocking::configure before the first blocking or fs call",
            ),
            ConfigureError::Build(e) => write!(f, "{e}"),
        }
    }
}

impl Error for ConfigureError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            ConfigureError::AlreadyStarted => None,
            ConfigureError::Build(e) => Some(e),
        }
    }
}
