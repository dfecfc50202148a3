//! Channels that deliver the time: [`after`], [`at`], [`tick`], and
//! [`never`], for `select!` timeouts and periodic work.
//!
//! Each timer channel is a `bounded(1)` channel fed by a small coroutine
//! that sleeps until the due time (on the runtime of the coroutine that
//! creates it, or on the default runtime when called from a plain thread).
//! The feeding coroutine stops when the receivers are gone, at its next
//! due time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::chan::Chan;
use super::{Receiver, Sender, TrySendError, bounded};

/// A channel that delivers one [`Instant`] (the time it fired) after
/// `d`, and then nothing more (it stays connected and empty, like
/// crossbeam's).
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

/// A channel that delivers one [`Instant`] (the time it fired) at `when`.
pub fn at(when: Instant) -> Receiver<Instant> {
    // Two senders counted, one of which is never dropped: the channel
    // stays connected after its one delivery (receivers see it empty, as
    // crossbeam's `after` does), and is freed with its last handle.
    let chan = Arc::new(Chan::new(1, 2));
    let tx = Sender::from_chan(chan.clone());
    spindle_timer(move || {
        crate::sleep_until(when);
        let _ = tx.try_send(Instant::now());
    });
    Receiver::from_chan(chan)
}

/// A channel that delivers an [`Instant`] every `d`; if the receiver falls
/// behind, ticks are dropped (at most one waits in the channel), like Go's
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
    let (tx, rx) = bounded(1);
    spindle_timer(move || {
        let mut next = Instant::now() + d;
        loop {
            crate::sleep_until(next);
            let now = Instant::now();
            match tx.try_send(now) {
                Ok(()) | Err(TrySendError::Full(_)) => {}
                Err(TrySendError::Disconnected(_)) => return,
            }
            next += d;
            if next <= now {
                // Fell behind by more than a period: skip the missed ticks.
                next = now + d;
            }
        }
    });
    rx
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

/// Starts the coroutine that feeds a timer channel.
fn spindle_timer(f: impl FnOnce() + Send + 'static) {
    if let Err(e) = crate::Builder::new()
        .name("spindle-timer".into())
        .stack_size(crate::stack::MIN_STACK_SIZE)
        .spawn(f)
    {
        panic!("spindle::channel: cannot start a timer coroutine: {e}");
    }
}
