//! Channels: multi-producer multi-consumer queues that park the coroutine.
//!
//! Shaped like [crossbeam-channel]: [`bounded`] (including `bounded(0)`, a
//! rendezvous channel where every send waits for a receiver),
//! [`unbounded`], cloneable [`Sender`]s and [`Receiver`]s, blocking,
//! non-blocking and timed operations, and the [`select!`](crate::select!)
//! macro. A blocking operation parks the calling coroutine (its worker runs
//! other coroutines meanwhile), or the calling thread if it is not a
//! coroutine, so coroutines and plain threads can talk over one channel.
//!
//! Closing follows Go: when every [`Sender`] is dropped, receivers drain
//! what is buffered and then get a disconnection error; when every
//! [`Receiver`] is dropped, sends fail at once and give the value back in
//! the error.
//!
//! ```
//! use spindle::channel;
//!
//! let rt = spindle::Runtime::builder().workers(2).build().unwrap();
//! rt.block_on(|| {
//!     let (tx, rx) = channel::bounded(0);
//!     for i in 0..4 {
//!         let tx = tx.clone();
//!         spindle::spawn(move || tx.send(i).unwrap());
//!     }
//!     drop(tx); // the loop below ends when every sender is gone
//!     let mut got: Vec<i32> = rx.iter().collect();
//!     got.sort();
//!     assert_eq!(got, [0, 1, 2, 3]);
//! });
//! ```
//!
//! # How it works
//!
//! One lock per channel over a buffer and two wait lists (parked senders,
//! parked receivers), as in Go's `runtime/chan.go`; a sender that finds a
//! parked receiver hands the value directly into the receiver's stack
//! slot. `select!` registers on every channel it waits for and the first
//! channel to claim it wins, by compare-and-swap on its waiter, so a
//! losing arm never consumes a message.
//!
//! [crossbeam-channel]: https://docs.rs/crossbeam-channel

mod chan;
mod error;
mod select;
mod timer;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chan::{Chan, Fail};
pub use error::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
pub use timer::{after, at, never, tick};

#[doc(hidden)]
pub mod __private {
    pub use super::select::{Arm, RecvArm, SelectMode, SendArm, run_select};
}

/// A channel that holds at most `cap` values; `bounded(0)` is a
/// rendezvous channel, where each send waits for a receiver to take the
/// value (Go's unbuffered channel).
///
/// ```
/// use spindle::channel::{bounded, TrySendError};
///
/// let (tx, rx) = bounded(1);
/// tx.send(1).unwrap();
/// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
/// assert_eq!(rx.recv(), Ok(1));
/// ```
pub fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    // usize::MAX means "unbounded" inside; nobody can buffer that many.
    pair(Chan::new(cap.min(usize::MAX - 1), 1))
}

/// A channel with no limit on buffered values: sends never wait.
///
/// ```
/// let (tx, rx) = spindle::channel::unbounded();
/// for i in 0..1000 {
///     tx.send(i).unwrap();
/// }
/// drop(tx);
/// assert_eq!(rx.iter().sum::<i32>(), 499_500);
/// ```
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    pair(Chan::new(usize::MAX, 1))
}

fn pair<T>(chan: Chan<T>) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(chan);
    (Sender { chan: chan.clone() }, Receiver { chan })
}

/// The sending side of a channel. Clone it for more senders; the channel
/// disconnects for receivers when the last one is dropped.
///
/// ```
/// let rt = spindle::Runtime::builder().workers(2).build().unwrap();
/// rt.block_on(|| {
///     let (tx, rx) = spindle::channel::bounded(0);
///     let producers: Vec<_> = (0..3)
///         .map(|i| {
///             let tx = tx.clone();
///             spindle::spawn(move || tx.send(i).unwrap()) // parks until received
///         })
///         .collect();
///     drop(tx);
///     assert_eq!(rx.iter().sum::<i32>(), 3);
///     producers.into_iter().for_each(|p| p.join().unwrap());
/// });
/// ```
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

/// The receiving side of a channel. Clone it for more receivers (each
/// value goes to exactly one of them); sends fail once the last one is
/// dropped.
///
/// ```
/// use spindle::channel::{unbounded, TryRecvError};
///
/// let (tx, rx) = unbounded();
/// let rx2 = rx.clone();
/// tx.send("a").unwrap();
/// tx.send("b").unwrap();
/// assert_eq!(rx.recv(), Ok("a"));
/// assert_eq!(rx2.try_recv(), Ok("b")); // each value goes to one receiver
/// drop(tx);
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
/// ```
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Sender<T> {
    /// Sends `v`, waiting (parking) while the channel is full or, for a
    /// rendezvous channel, until a receiver takes it.
    ///
    /// Fails only if every receiver is gone; the value comes back in the
    /// error.
    pub fn send(&self, v: T) -> Result<(), SendError<T>> {
        self.chan.send(v, None).map_err(|(v, _)| SendError(v))
    }

    /// Sends `v` if that is possible without waiting.
    pub fn try_send(&self, v: T) -> Result<(), TrySendError<T>> {
        self.chan.try_send(v).map_err(|(v, f)| match f {
            Fail::NotReady => TrySendError::Full(v),
            Fail::Disconnected => TrySendError::Disconnected(v),
        })
    }

    /// Like [`send`](Self::send), but gives up after `timeout`.
    pub fn send_timeout(&self, v: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        match Instant::now().checked_add(timeout) {
            Some(d) => self.send_deadline(v, d),
            None => self.send(v).map_err(SendTimeoutError::from),
        }
    }

    /// Like [`send`](Self::send), but gives up at `deadline`.
    pub fn send_deadline(&self, v: T, deadline: Instant) -> Result<(), SendTimeoutError<T>> {
        self.chan.send(v, Some(deadline)).map_err(|(v, f)| match f {
            Fail::NotReady => SendTimeoutError::Timeout(v),
            Fail::Disconnected => SendTimeoutError::Disconnected(v),
        })
    }

    /// How many values are buffered (always 0 for a rendezvous channel).
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// Whether no value is buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the buffer is full (always true for a rendezvous channel).
    pub fn is_full(&self) -> bool {
        self.len() == self.chan.cap
    }

    /// The buffer's capacity; `None` for an unbounded channel.
    pub fn capacity(&self) -> Option<usize> {
        (self.chan.cap != usize::MAX).then_some(self.chan.cap)
    }

    /// Whether both sides belong to the same channel.
    pub fn same_channel(&self, other: &Sender<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }

    pub(crate) fn chan(&self) -> &Chan<T> {
        &self.chan
    }
}

impl<T> Receiver<T> {
    /// Receives a value, waiting (parking) until one is sent.
    ///
    /// Fails once the channel is empty and every sender is gone.
    pub fn recv(&self) -> Result<T, RecvError> {
        self.chan.recv(None).map_err(|_| RecvError)
    }

    /// Receives a value if one is ready now.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.chan.try_recv().map_err(|f| match f {
            Fail::NotReady => TryRecvError::Empty,
            Fail::Disconnected => TryRecvError::Disconnected,
        })
    }

    /// Like [`recv`](Self::recv), but gives up after `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use spindle::channel::{bounded, RecvTimeoutError};
    ///
    /// let (_tx, rx) = bounded::<i32>(1);
    /// let r = rx.recv_timeout(Duration::from_millis(5));
    /// assert_eq!(r, Err(RecvTimeoutError::Timeout));
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        match Instant::now().checked_add(timeout) {
            Some(d) => self.recv_deadline(d),
            None => self.recv().map_err(RecvTimeoutError::from),
        }
    }

    /// Like [`recv`](Self::recv), but gives up at `deadline`.
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.chan.recv(Some(deadline)).map_err(|f| match f {
            Fail::NotReady => RecvTimeoutError::Timeout,
            Fail::Disconnected => RecvTimeoutError::Disconnected,
        })
    }

    /// A blocking iterator: yields values until the channel is empty and
    /// every sender is gone.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// A non-blocking iterator over the values ready now.
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }

    /// How many values are buffered (always 0 for a rendezvous channel).
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// Whether no value is buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the buffer is full (always true for a rendezvous channel).
    pub fn is_full(&self) -> bool {
        self.len() == self.chan.cap
    }

    /// The buffer's capacity; `None` for an unbounded channel.
    pub fn capacity(&self) -> Option<usize> {
        (self.chan.cap != usize::MAX).then_some(self.chan.cap)
    }

    /// Whether both sides belong to the same channel.
    pub fn same_channel(&self, other: &Receiver<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }

    pub(crate) fn chan(&self) -> &Chan<T> {
        &self.chan
    }

    pub(crate) fn from_chan(chan: Arc<Chan<T>>) -> Receiver<T> {
        Receiver { chan }
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.add_sender();
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.chan.add_receiver();
        Receiver {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.chan.drop_sender() {
            self.chan.disconnect_senders();
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        if self.chan.drop_receiver() {
            self.chan.disconnect_receivers();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("Sender { .. }")
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad("Receiver { .. }")
    }
}

/// The blocking iterator of [`Receiver::iter`].
///
/// ```
/// let (tx, rx) = spindle::channel::unbounded();
/// (1..=3).for_each(|i| tx.send(i).unwrap());
/// drop(tx);
/// assert_eq!(rx.iter().collect::<Vec<_>>(), [1, 2, 3]);
/// ```
#[derive(Debug)]
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

/// The non-blocking iterator of [`Receiver::try_iter`].
///
/// ```
/// let (tx, rx) = spindle::channel::unbounded();
/// tx.send(1).unwrap();
/// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1]); // does not wait for more
/// ```
#[derive(Debug)]
pub struct TryIter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

/// The owning blocking iterator of a [`Receiver`].
///
/// ```
/// let (tx, rx) = spindle::channel::bounded(2);
/// tx.send('x').unwrap();
/// drop(tx);
/// for c in rx {
///     assert_eq!(c, 'x');
/// }
/// ```
#[derive(Debug)]
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}
