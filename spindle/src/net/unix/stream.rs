//! [`UnixStream`].

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use socket2::{Domain, SockAddr, SockRef, Socket, Type};

use crate::io::Dir;
use crate::net::backoff::{self, Backoff};
use crate::net::evented::{self, Evented};

/// A Unix-domain stream connection:
/// [`std::os::unix::net::UnixStream`] whose calls park the calling
/// coroutine, not its worker, while they wait (on a plain OS thread, they
/// block the thread).
///
/// `Read` and `Write` are implemented for `&UnixStream` too. Writes never
/// raise `SIGPIPE` (`std`'s do: they use `write(2)`): writing to a
/// connection the peer has closed fails with `BrokenPipe`. Timeouts make
/// a waiting call fail with [`ErrorKind::TimedOut`](io::ErrorKind::TimedOut)
/// (where `std` says `WouldBlock`).
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use spindle::net::UnixStream;
///
/// let rt = spindle::Runtime::builder().workers(1).build()?;
/// rt.block_on(|| -> std::io::Result<()> {
///     let (mut a, mut b) = UnixStream::pair()?;
///     let echo = spindle::spawn(move || -> std::io::Result<()> {
///         let mut buf = [0; 5];
///         b.read_exact(&mut buf)?; // parks until `a` writes
///         b.write_all(&buf)
///     });
///     a.write_all(b"hello")?;
///     let mut reply = [0; 5];
///     a.read_exact(&mut reply)?;
///     assert_eq!(&reply, b"hello");
///     echo.join().unwrap()
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UnixStream {
    inner: Evented<std::os::unix::net::UnixStream>,
}

impl UnixStream {
    /// Connects to the socket bound to the file system path `path`.
    ///
    /// While the listener's backlog is full, Linux refuses the connection
    /// with `EAGAIN` and has no readiness to wait for; the call then
    /// retries with back-off (sleeps from 1 ms, up to 10 ms), as a
    /// blocking `std` connect would wait in the kernel.
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        UnixStream::connect_raw(&SockAddr::unix(path)?)
    }

    /// Connects to `addr` (a path, or on Linux an abstract name); see
    /// [`connect`](Self::connect).
    pub fn connect_addr(addr: &SocketAddr) -> io::Result<UnixStream> {
        UnixStream::connect_raw(&super::raw_addr(addr)?)
    }

    fn connect_raw(addr: &SockAddr) -> io::Result<UnixStream> {
        let sock = Socket::new(Domain::UNIX, Type::STREAM.nonblocking(), None)?;
        let stream = UnixStream {
            inner: Evented::nonblocking(std::os::unix::net::UnixStream::from(sock)),
        };
        let mut backoff = Backoff::new(backoff::PEER_MAX);
        loop {
            match SockRef::from(stream.inner.get()).connect(addr) {
                Ok(()) => return Ok(stream),
                // Linux completes Unix connects at once; other systems may
                // go on in the background.
                Err(e) if evented::in_progress(&e) => {
                    stream.inner.io(Dir::Write, None, evented::finish_connect)?;
                    return Ok(stream);
                }
                // The backlog is full; the socket is still unconnected.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    backoff.sleep(None);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// A pair of connected sockets, as
    /// [`std::os::unix::net::UnixStream::pair`].
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        Ok((UnixStream::from_new(a)?, UnixStream::from_new(b)?))
    }

    /// Wraps a stream spindle made (accepted, or half of a pair).
    pub(super) fn from_new(stream: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        Ok(UnixStream {
            inner: Evented::new(stream)?,
        })
    }

    /// The address of the peer.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get().peer_addr()
    }

    /// The local address of the socket.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get().local_addr()
    }

    /// Shuts down the reading half, the writing half or both. After
    /// `Shutdown::Write` the peer reads the end of the stream (`Ok(0)`).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.get().shutdown(how)
    }

    /// Another handle to the same connection (`dup(2)`), with its own
    /// reactor registration; settings (timeouts, non-blocking mode) are
    /// shared.
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        Ok(UnixStream {
            inner: self
                .inner
                .try_clone(std::os::unix::net::UnixStream::try_clone)?,
        })
    }

    /// Bounds how long each read waits for data; `None` (the default)
    /// waits as long as it takes. A read that times out fails with
    /// [`ErrorKind::TimedOut`](io::ErrorKind::TimedOut) (`std` on Unix:
    /// `WouldBlock`). `Some(Duration::ZERO)` is an error, as in `std`.
    /// Shared with [`try_clone`](Self::try_clone)s and kept by
    /// [`into_std`](Self::into_std).
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.inner.set_read_timeout(dur)
    }

    /// Bounds how long each write waits for room in the send buffer; as
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

    /// Wraps a connected `std` stream, in blocking or non-blocking mode
    /// (the descriptor is made non-blocking; the spindle stream waits
    /// unless [`set_nonblocking`](Self::set_nonblocking) says otherwise).
    /// Read and write timeouts set on it are kept.
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        Ok(UnixStream {
            inner: Evented::from_std(stream)?,
        })
    }

    /// Deregisters the stream from the reactor and returns it as a `std`
    /// stream in blocking mode (non-blocking if
    /// [`set_nonblocking(true)`](Self::set_nonblocking) was called), with
    /// its timeouts. As for
    /// [`TcpStream::into_std`](crate::net::TcpStream::into_std), convert
    /// its clones too.
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixStream> {
        self.inner.into_inner()
    }
}

socket_conversions!(UnixStream, std::os::unix::net::UnixStream);

impl Read for &UnixStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(|mut s| s.read(buf))
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.inner.read(|mut s| s.read_vectored(bufs))
    }
}

impl Write for &UnixStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(|s| evented::send(s, buf))
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.inner.write(|s| evented::send_vectored(s, bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for UnixStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }
}

impl Write for UnixStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
