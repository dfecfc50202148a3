//! [`TcpStream`].

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use socket2::{Domain, Protocol, SockRef, Socket, Type};

use crate::io::Dir;
use crate::net::evented::{self, Evented};

/// A TCP connection: [`std::net::TcpStream`] whose calls park the calling
/// coroutine, not its worker, while they wait (on a plain OS thread, they
/// block the thread).
///
/// `Read` and `Write` are implemented for `&TcpStream` too, so one
/// coroutine may read while another writes through a shared reference
/// (e.g. an `Arc<TcpStream>`). Writes never raise `SIGPIPE`: writing to a
/// connection the peer has closed fails with `BrokenPipe`.
///
/// Read and write timeouts make a waiting call fail with
/// [`ErrorKind::TimedOut`](io::ErrorKind::TimedOut) (where `std` on Unix
/// says `WouldBlock`); see [`set_read_timeout`](Self::set_read_timeout).
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use std::sync::Arc;
/// use spindle::net::{TcpListener, TcpStream};
///
/// let rt = spindle::Runtime::builder().workers(1).build()?;
/// rt.block_on(|| -> std::io::Result<()> {
///     let listener = TcpListener::bind("127.0.0.1:0")?;
///     let mut client = TcpStream::connect(listener.local_addr()?)?;
///     let (server, _) = listener.accept()?;
///     // Read and write one connection from two coroutines at once.
///     let server = Arc::new(server);
///     let reader = server.clone();
///     let r = spindle::spawn(move || {
///         let mut got = [0; 4];
///         (&*reader).read_exact(&mut got).map(|()| got)
///     });
///     (&*server).write_all(b"pong")?;
///     client.write_all(b"ping")?;
///     assert_eq!(&r.join().unwrap()?, b"ping");
///     let mut got = [0; 4];
///     client.read_exact(&mut got)?;
///     assert_eq!(&got, b"pong");
///     Ok(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct TcpStream {
    pub(super) inner: Evented<std::net::TcpStream>,
}

impl TcpStream {
    /// Opens a connection to `addr`, trying each of its addresses in turn
    /// until one connects, as [`std::net::TcpStream::connect`] does. The
    /// connection is made without blocking the worker: the calling
    /// coroutine parks until the handshake completes or fails.
    ///
    /// Host names are resolved with the system resolver, which blocks the
    /// worker while it runs (see the [module docs](crate::net#name-resolution)).
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        let mut last = None;
        for addr in addr.to_socket_addrs()? {
            match TcpStream::connect_addr(&addr, None) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "could not resolve to any addresses",
            )
        }))
    }

    /// Opens a connection to `addr`, giving up with
    /// [`ErrorKind::TimedOut`](io::ErrorKind::TimedOut) after `timeout`,
    /// as [`std::net::TcpStream::connect_timeout`] does. A zero `timeout`
    /// is an error (`InvalidInput`).
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        evented::check_timeout(Some(timeout))?;
        TcpStream::connect_addr(addr, Some(timeout))
    }

    /// A non-blocking `connect`, then a wait for writability: the
    /// handshake's end (success or failure) makes the socket writable.
    fn connect_addr(addr: &SocketAddr, timeout: Option<Duration>) -> io::Result<TcpStream> {
        let sock = Socket::new(
            Domain::for_address(*addr),
            Type::STREAM.nonblocking(),
            Some(Protocol::TCP),
        )?;
        let stream = TcpStream {
            inner: Evented::nonblocking(std::net::TcpStream::from(sock)),
        };
        match SockRef::from(stream.inner.get()).connect(&(*addr).into()) {
            Ok(()) => return Ok(stream),
            // EINTR: the handshake goes on regardless, as with EINPROGRESS.
            Err(e) if evented::in_progress(&e) || e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        stream
            .inner
            .io(Dir::Write, timeout, evented::finish_connect)?;
        Ok(stream)
    }

    /// The remote address of the connection.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get().peer_addr()
    }

    /// The local address of the connection.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get().local_addr()
    }

    /// Shuts down the reading half, the writing half or both. After
    /// `Shutdown::Write` the peer reads the end of the stream (`Ok(0)`).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.get().shutdown(how)
    }

    /// Another handle to the same connection (`dup(2)`): both read and
    /// write the same stream of bytes. The clone has its own reactor
    /// registration, so the two can wait in different coroutines (or
    /// runtimes); settings (timeouts, non-blocking mode) are shared.
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream {
            inner: self.inner.try_clone(std::net::TcpStream::try_clone)?,
        })
    }

    /// Bounds how long each read (`read`, `peek`, ...) waits for data;
    /// `None` (the default) waits as long as it takes.
    ///
    /// A read that times out fails with
    /// [`ErrorKind::TimedOut`](io::ErrorKind::TimedOut); `std` on Unix
    /// reports `WouldBlock` instead. `Some(Duration::ZERO)` is an error
    /// (`InvalidInput`), as in `std`. The setting is shared with
    /// [`try_clone`](Self::try_clone)s and kept by [`into_std`](Self::into_std).
    ///
    /// ```
    /// use std::io::Read;
    /// use std::time::{Duration, Instant};
    /// use spindle::net::{TcpListener, TcpStream};
    ///
    /// let rt = spindle::Runtime::builder().workers(1).build()?;
    /// rt.block_on(|| -> std::io::Result<()> {
    ///     let listener = TcpListener::bind("127.0.0.1:0")?;
    ///     let mut quiet = TcpStream::connect(listener.local_addr()?)?;
    ///     quiet.set_read_timeout(Some(Duration::from_millis(10)))?;
    ///     let start = Instant::now();
    ///     let err = quiet.read(&mut [0; 8]).unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    ///     assert!(start.elapsed() >= Duration::from_millis(10));
    ///     Ok(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.inner.set_read_timeout(dur)
    }

    /// Bounds how long each write waits for room in the send buffer;
    /// `None` (the default) waits as long as it takes. A write that times
    /// out fails with [`ErrorKind::TimedOut`](io::ErrorKind::TimedOut);
    /// otherwise as [`set_read_timeout`](Self::set_read_timeout).
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

    /// Reads without consuming: the next read returns the same bytes.
    /// Waits for data like `read`.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(|s| s.peek(buf))
    }

    /// Sets `TCP_NODELAY`: with `true`, small writes are sent at once
    /// instead of being coalesced (Nagle's algorithm is off).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.inner.get().set_nodelay(nodelay)
    }

    /// `TCP_NODELAY`; see [`set_nodelay`](Self::set_nodelay).
    pub fn nodelay(&self) -> io::Result<bool> {
        self.inner.get().nodelay()
    }

    /// Sets `IP_TTL`, the time-to-live of outgoing packets.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.get().set_ttl(ttl)
    }

    /// `IP_TTL`; see [`set_ttl`](Self::set_ttl).
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.get().ttl()
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
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream {
            inner: Evented::from_std(stream)?,
        })
    }

    /// Deregisters the stream from the reactor and returns it as a `std`
    /// stream in blocking mode (non-blocking if
    /// [`set_nonblocking(true)`](Self::set_nonblocking) was called), with
    /// its timeouts.
    ///
    /// Blocking mode belongs to the socket, not the descriptor: a
    /// [`try_clone`](Self::try_clone) of this stream still in use would
    /// then block its worker thread in its calls; convert it too.
    pub fn into_std(self) -> io::Result<std::net::TcpStream> {
        self.inner.into_inner()
    }
}

socket_conversions!(TcpStream, std::net::TcpStream);

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read_stream(buf.len(), |mut s| s.read(buf))
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        // `readv` takes at most UIO_MAXIOV (1,024) buffers, and std passes
        // no more: past that a short read proves nothing, and a length of
        // 0 never marks.
        let len = if bufs.len() <= 1024 {
            bufs.iter().map(|b| b.len()).sum()
        } else {
            0
        };
        self.inner.read_stream(len, |mut s| s.read_vectored(bufs))
    }
}

impl Write for &TcpStream {
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

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }
}

impl Write for TcpStream {
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
