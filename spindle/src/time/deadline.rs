//! Deadline scopes: one deadline for every socket call made inside a
//! closure, without passing it to each call.
//!
//! ```text
//!  timeout(5 s, || {                         current_deadline() = now + 5 s
//!      read_request(&stream)?;               ─┐ socket calls fail with TimedOut
//!      deadline_scope(now + 60 s, || {        │ once now + 5 s has passed:
//!          write_reply(&stream)              ─┘ the earlier deadline wins
//!      })
//!  })                                        current_deadline() = None again
//! ```
//!
//! # State
//!
//! One `Cell<Option<Instant>>` per coroutine (a [`coroutine_local!`]), or
//! per thread on plain threads (the same key falls back to a thread-local
//! there): the *effective* deadline, the earliest of all enclosing scopes'.
//! Entering a scope stores `min(outer, new)` and keeps `outer` in a guard
//! on the caller's stack; the guard's `Drop` stores `outer` back, on a
//! normal return and on unwinding alike. Scopes end in the reverse order
//! they began (the guard is not exposed), so this single cell is exact and
//! no stack of deadlines is needed.
//!
//! The cell is created by the first scope a coroutine enters; reading it
//! ([`current_deadline`]) never creates it, so coroutines that never use a
//! scope pay one lookup in an empty map per socket call, and no memory.
//!
//! Being coroutine-local, a scope follows its coroutine across parks and
//! is invisible to every other coroutine, including those spawned inside
//! it: like Go's `context.Context`, a deadline reaches another coroutine
//! only if it is passed along (`deadline_scope(d, ...)` in the child).
//!
//! [`coroutine_local!`]: crate::coroutine_local

use std::cell::Cell;
use std::time::{Duration, Instant};

crate::coroutine_local! {
    /// The effective deadline of the innermost scope of this coroutine
    /// (or thread); `None` outside every scope.
    static DEADLINE: Cell<Option<Instant>> = Cell::new(None);
}

/// Runs `f` with a deadline `dur` from now on every socket call it makes
/// (see [`current_deadline`] for which calls honour it), and returns what
/// `f` returns.
///
/// Shorthand for [`deadline_scope`]`(Instant::now() + dur, f)`; a `dur`
/// too large for the clock adds no deadline.
///
/// ```
/// use std::time::{Duration, Instant};
/// use spindle::time;
///
/// let rt = spindle::Runtime::builder().workers(1).build().unwrap();
/// rt.block_on(|| {
///     let before = Instant::now();
///     let d = time::timeout(Duration::from_secs(2), || time::current_deadline());
///     let d = d.expect("inside the scope");
///     assert!(d >= before + Duration::from_secs(2));
///     assert_eq!(time::current_deadline(), None, "restored on exit");
/// });
/// ```
pub fn timeout<R>(dur: Duration, f: impl FnOnce() -> R) -> R {
    match Instant::now().checked_add(dur) {
        Some(deadline) => deadline_scope(deadline, f),
        None => f(),
    }
}

/// Runs `f` with `deadline` on every socket call it makes (see
/// [`current_deadline`] for which calls honour it), and returns what `f`
/// returns.
///
/// Scopes nest, and the earliest deadline wins: an inner scope can
/// shorten the time left, never extend it. When `f` returns or unwinds,
/// the enclosing scope's deadline (or none) is in force again.
///
/// The scope belongs to the calling coroutine (or thread, outside a
/// coroutine): coroutines spawned inside `f` do not inherit it.
///
/// ```
/// use std::time::{Duration, Instant};
/// use spindle::time::{current_deadline, deadline_scope};
///
/// let rt = spindle::Runtime::builder().workers(1).build().unwrap();
/// rt.block_on(|| {
///     let soon = Instant::now() + Duration::from_secs(1);
///     let later = soon + Duration::from_secs(9);
///     deadline_scope(soon, || {
///         deadline_scope(later, || assert_eq!(current_deadline(), Some(soon)));
///         spindle::spawn(|| assert_eq!(current_deadline(), None))
///             .join()
///             .unwrap();
///     });
///     assert_eq!(current_deadline(), None);
/// });
/// ```
pub fn deadline_scope<R>(deadline: Instant, f: impl FnOnce() -> R) -> R {
    let entered = DEADLINE.try_with(|cell| {
        let outer = cell.get();
        cell.set(Some(outer.map_or(deadline, |o| o.min(deadline))));
        Restore { outer }
    });
    // `Err` only on a plain thread that is exiting (its thread-locals are
    // being destroyed): there is nowhere to record a scope, so `f` runs
    // without one.
    let _restore = entered.ok();
    f()
}

/// Puts the enclosing scope's deadline back when a scope ends.
struct Restore {
    outer: Option<Instant>,
}

impl Drop for Restore {
    fn drop(&mut self) {
        // Runs on the stack of the coroutine (or thread) that entered the
        // scope: a coroutine never changes identity, so this is its cell.
        let _ = DEADLINE.try_with(|cell| cell.set(self.outer));
    }
}

/// The deadline in force for the calling coroutine (or thread): the
/// earliest deadline of the [`deadline_scope`]s and [`timeout`]s it is
/// inside, or `None` outside all of them.
///
/// # Which calls honour it
///
/// - **Socket I/O** of the `spindle::net` types (connect, accept, read,
///   write, send, receive): a call made after the deadline, or still
///   waiting when it passes, fails with [`std::io::ErrorKind::TimedOut`];
///   a socket's own `set_read_timeout`/`set_write_timeout`, if shorter,
///   still applies.
/// - **Nothing else waits on it by itself**: [`sleep`](super::sleep),
///   [`Interval::tick`](super::Interval::tick), joins, and the channel and
///   [`sync`](crate::sync) operations ignore it. Those have their own
///   timed forms; pass the scope's deadline to them, e.g.
///   `rx.recv_deadline(d)` or `mutex.lock_timeout(d - Instant::now())`
///   with `d` from this function.
///
/// Your own blocking code can honour scopes the same way: read this
/// function before waiting and give up at the deadline.
///
/// ```
/// use std::time::{Duration, Instant};
/// use spindle::channel::{RecvTimeoutError, bounded};
/// use spindle::time;
///
/// /// Receives, honouring the caller's deadline scope, if any.
/// fn recv_in_scope(rx: &spindle::channel::Receiver<u32>) -> Result<u32, RecvTimeoutError> {
///     match time::current_deadline() {
///         Some(d) => rx.recv_deadline(d),
///         None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
///     }
/// }
///
/// let rt = spindle::Runtime::builder().workers(1).build().unwrap();
/// rt.block_on(|| {
///     let (_tx, rx) = bounded::<u32>(1);
///     let r = time::timeout(Duration::from_millis(5), || recv_in_scope(&rx));
///     assert_eq!(r, Err(RecvTimeoutError::Timeout));
/// });
/// ```
pub fn current_deadline() -> Option<Instant> {
    DEADLINE.with_existing(Cell::get).flatten()
}
