//! Channels that deliver the time: [`after`], [`at`], [`tick`], and
//! [`never`], for `select!` timeouts and periodic work.
//!
//! A time channel runs nothing in the background: it holds its schedule,
//! a receiver that looks when a value is due takes it, and a receiver that
//! waits (alone or in a `select!`) sets its wake-up to the due time. So
//! creating one costs an allocation, works the same from coroutines and
//! threads, and dropping its receivers frees everything at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Receiver;
use super::chan::{Chan, Timer};

/// A channel that delivers one [`Instant`] (the time it was due) after
/// `d`, and then nothing more (it stays connected and empty, like
/// crossbeam's). `after(Duration::ZERO)` is ready at once.
///
/// ```
/// use std::time::Duration;
///
/// let rt = spindle::Runtime::builder().workers(1).build().unwrap();
/// rt.block_on(|| {
///     let (_tx, rx) = spindle::channel::bounded::<i32>(1);
///     let timeout = spindle::channel::after(Duration::from_millis(5));
///     spindle::select! {
///         recv(rx) -> _ => unreachable!("nobody sends"),
///         recv(timeout) -> t => assert!(t.is_ok()),
///     }
/// });
/// ```
pub fn after(d: Duration) -> Receiver<Instant> {
    match Instant::now().checked_add(d) {
        Some(when) => at(when),
        None => never(),
    }
}

/// A channel that delivers one [`Instant`] (the time it was due) at `when`.
pub fn at(when: Instant) -> Receiver<Instant> {
    Receiver::from_chan(Arc::new(Chan::timer(Timer::new(when, None, identity))))
}

/// A channel that delivers an [`Instant`] (the time it was due) every
/// `d`; if the receiver falls behind, ticks are dropped (one waits in the
/// channel, the next is due at the next multiple of `d`), like Go's
/// `time.Ticker`.
///
/// # Panics
/// If `d` is zero.
///
/// ```
/// use std::time::Duration;
///
/// let rt = spindle::Runtime::builder().workers(1).build().unwrap();
/// rt.block_on(|| {
///     let ticks = spindle::channel::tick(Duration::from_millis(1));
///     let first = ticks.recv().unwrap();
///     let second = ticks.recv().unwrap();
///     assert!(second > first);
/// });
/// ```
pub fn tick(d: Duration) -> Receiver<Instant> {
    assert!(
        !d.is_zero(),
        "spindle::channel::tick: the period must not be zero"
    );
    let first = Instant::now() + d;
    Receiver::from_chan(Arc::new(Chan::timer(Timer::new(first, Some(d), identity))))
}

/// A channel that never delivers and never disconnects: a `select!` arm
/// that is never chosen (for arms that are switched off).
///
/// ```
/// use std::time::Duration;
/// use spindle::channel::{never, RecvTimeoutError};
///
/// let rx = never::<i32>();
/// assert_eq!(rx.recv_timeout(Duration::from_millis(1)), Err(RecvTimeoutError::Timeout));
/// ```
pub fn never<T>() -> Receiver<T> {
    // One sender that is never dropped, and none to drop.
    Receiver::from_chan(Arc::new(Chan::new(0, 1)))
}

fn identity(t: Instant) -> Instant {
    t
}
