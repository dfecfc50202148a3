//! [`UnixDatagram`].

use std::io;
use std::net::Shutdown;
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::net::backoff::{self, Backoff};
use crate::net::evented::{self, Evented};

/// A Unix-domain datagram socket:
/// [`std::os::unix::net::UnixDatagram`] whose receives park the calling
/// coroutine until a datagram arrives, and whose sends park while the
/// receiver has no room (on a plain OS thread, they block the thread).
///
/// Timeouts make a waiting call fail with
/// [`ErrorKind::TimedOut`](io::ErrorKind::TimedOut) (where `std` says
/// `WouldBlock`).
///
/// # Examples
///
/// ```
/// use spindle::net::UnixDatagram;
///
/// let rt = spindle::Runtime::builder().workers(1).build()?;
/// rt.block_on(|| -> std::io::Result<()> {
///     let (a, b) = UnixDatagram::pair()?;
///     let reader = spindle::spawn(move || {
///         let mut buf = [0; 16];
///         let n = b.recv(&mut buf).unwrap(); // parks until `a` sends
///         buf[..n].to_vec()
///     });
///     a.send(b"datagram")?;
///     assert_eq!(reader.join().unwrap(), b"datagram");
///     Ok(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UnixDatagram {
    inner: Evented<std::os::unix::net::UnixDatagram>,
}

impl UnixDatagram {
    /// Creates a socket bound to the file system path `path`, which must
    /// not exist yet; as [`std::os::unix::net::UnixDatagram::bind`].
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
        UnixDatagram::from_new(std::os::unix::net::UnixDatagram::bind(path)?)
    }

    /// Creates a socket bound to `addr` (a path, or on Linux an abstract
    /// name), as [`std::os::unix::net::UnixDatagram::bind_addr`].
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixDatagram> {
        UnixDatagram::from_new(std::os::unix::net::UnixDatagram::bind_addr(addr)?)
    }

    /// Creates a socket bound to no address: it can send, but nobody can
    /// address a datagram to it.
    pub fn unbound() -> io::Result<UnixDatagram> {
        UnixDatagram::from_new(std::os::unix::net::UnixDatagram::unbound()?)
    }

    /// A pair of connected sockets, as
    /// [`std::os::unix::net::UnixDatagram::pair`].
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = std::os::unix::net::UnixDatagram::pair()?;
        Ok((UnixDatagram::from_new(a)?, UnixDatagram::from_new(b)?))
    }

    fn from_new(socket: std::os::unix::net::UnixDatagram) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            inner: Evented::new(socket)?,
        })
    }

    /// Sets the default destination of [`send`](Self::send) and the only
    /// source [`recv`](Self::recv) accepts. Does not wait.
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        self.inner.get().connect(path)
    }

    /// Like [`connect`](Self::connect), to an address (a path, or on Linux
    /// an abstract name).
    pub fn connect_addr(&self, addr: &SocketAddr) -> io::Result<()> {
        self.inner.get().connect_addr(addr)
    }

    /// Sends `buf` as one datagram to the socket bound to `path`, waiting
    /// while the receiver's queue is full; returns the bytes sent.
    ///
    /// Linux signals room at the receiver only to senders
    /// [`connect`](Self::connect)ed to it, so an addressed send that finds
    /// the queue full retries with back-off (sleeps from 1 ms, up to
    /// 10 ms) until it fits or the write timeout passes; a connected
    /// [`send`](Self::send) waits for readiness instead.
    pub fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        let path = path.as_ref();
        self.send_with_backoff(|s| s.send_to(buf, path))
    }

    /// Like [`send_to`](Self::send_to), to an address (a path, or on Linux
    /// an abstract name).
    pub fn send_to_addr(&self, buf: &[u8], addr: &SocketAddr) -> io::Result<usize> {
        self.send_with_backoff(|s| s.send_to_addr(buf, addr))
    }

    /// Runs an addressed send, retrying with back-off while it fails with
    /// `WouldBlock`; see [`send_to`](Self::send_to).
    fn send_with_backoff(
        &self,
        mut op: impl FnMut(&std::os::unix::net::UnixDatagram) -> io::Result<usize>,
    ) -> io::Result<usize> {
        if self.inner.is_nonblocking() {
            return op(self.inner.get());
        }
        let deadline = self
            .inner
            .write_timeout()
            .and_then(|t| Instant::now().checked_add(t));
        let mut backoff = Backoff::new(backoff::PEER_MAX);
        loop {
            match op(self.inner.get()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !backoff.sleep(deadline) {
                        return Err(evented::write_timed_out());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => return r,
            }
        }
    }

    /// Receives one datagram, waiting for one; returns its length and
    /// sender. A datagram longer than `buf` is truncated.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.inner.read(|s| s.recv_from(buf))
    }

    /// Sends `buf` as one datagram to the [`connect`](Self::connect)ed
    /// socket, waiting while it has no room.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(|s| s.send(buf))
    }

    /// Receives one datagram, waiting for one.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(|s| s.recv(buf))
    }

    /// The [`connect`](Self::connect)ed address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get().peer_addr()
    }

    /// The address this socket is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get().local_addr()
    }

    /// Shuts down receiving, sending or both: waiting receives return
    /// `Ok(0)`, sends fail with `BrokenPipe`.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.get().shutdown(how)
    }

    /// Another handle to the same socket (`dup(2)`), with its own reactor
    /// registration; settings (timeouts, non-blocking mode) are shared.
    pub fn try_clone(&self) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            inner: self
                .inner
                .try_clone(std::os::unix::net::UnixDatagram::try_clone)?,
        })
    }

    /// Bounds how long each receive waits; `None` (the default) waits as
    /// long as it takes. A receive that times out fails with
    /// [`ErrorKind::TimedOut`](io::ErrorKind::TimedOut) (`std`:
    /// `WouldBlock`). `Some(Duration::ZERO)` is an error, as in `std`.
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.inner.set_read_timeout(dur)
    }

    /// Bounds how long each send waits for room; as
    /// [`set_read_timeout`](Self::set_read_timeout).
    pub fn set_write_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.inner.set_write_timeout(dur)
    }

    /// The read timeout; see [`set_read_timeout`](Self::set_read_timeout).
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.inner.read_timeout())
    }

    /// The write timeout; see [`set_write_timeout`](Self::set_write_timeout).
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.inner.write_timeout())
    }

    /// Takes the socket's pending error (`SO_ERROR`), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.get().take_error()
    }

    /// With `true`, calls fail with `WouldBlock` instead of waiting; with
    /// `false` (the default) they wait. Shared with
    /// [`try_clone`](Self::try_clone)s.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.inner.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Wraps a `std` socket, in blocking or non-blocking mode (the
    /// descriptor is made non-blocking; the spindle socket waits unless
    /// [`set_nonblocking`](Self::set_nonblocking) says otherwise). Read and
    /// write timeouts set on it are kept.
    pub fn from_std(socket: std::os::unix::net::UnixDatagram) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            inner: Evented::from_std(socket)?,
        })
    }

    /// Deregisters the socket from the reactor and returns it as a `std`
    /// socket in blocking mode (non-blocking if
    /// [`set_nonblocking(true)`](Self::set_nonblocking) was called), with
    /// its timeouts. As for
    /// [`TcpStream::into_std`](crate::net::TcpStream::into_std), convert
    /// its clones too.
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixDatagram> {
        self.inner.into_inner()
    }
}

socket_conversions!(UnixDatagram, std::os::unix::net::UnixDatagram);
