//! [`UnixListener`] and its accept loop, [`UnixIncoming`].

use std::io;
use std::os::unix::net::SocketAddr;
use std::path::Path;

use super::UnixStream;
use crate::net::backoff::{self, Backoff};
use crate::net::evented::Evented;

/// A Unix-domain stream server, listening for connections:
/// [`std::os::unix::net::UnixListener`] whose
/// [`accept`](UnixListener::accept) parks the calling coroutine until a
/// connection arrives (on a plain OS thread, it blocks the thread).
///
/// Write accept loops with [`incoming`](UnixListener::incoming), which
/// backs off instead of spinning when descriptors run out, as
/// [`TcpListener::incoming`](crate::net::TcpListener::incoming) does.
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use spindle::net::{UnixListener, UnixStream};
///
/// let path = std::env::temp_dir().join(format!("spindle-doc-{}.sock", std::process::id()));
/// let rt = spindle::Runtime::builder().workers(1).build()?;
/// rt.block_on(|| -> std::io::Result<()> {
///     let listener = UnixListener::bind(&path)?;
///     let client_path = path.clone();
///     let client = spindle::spawn(move || -> std::io::Result<String> {
///         let mut s = UnixStream::connect(&client_path)?;
///         let mut greeting = String::new();
///         s.read_to_string(&mut greeting)?;
///         Ok(greeting)
///     });
///     let (mut conn, _addr) = listener.accept()?;
///     conn.write_all(b"hi")?;
///     drop(conn);
///     assert_eq!(client.join().unwrap()?, "hi");
///     Ok(())
/// })?;
/// std::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UnixListener {
    inner: Evented<std::os::unix::net::UnixListener>,
}

impl UnixListener {
    /// Creates a listener bound to the file system path `path`, which must
    /// not exist yet (remove a stale socket file first); as
    /// [`std::os::unix::net::UnixListener::bind`].
    ///
    /// The kernel queues up to 1,024 connections for `accept` (`std` asks
    /// for 128), as [`TcpListener::bind`](crate::net::TcpListener::bind)
    /// explains.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        UnixListener::from_new(std::os::unix::net::UnixListener::bind(path)?)
    }

    /// Creates a listener bound to `addr` (a path, or on Linux an abstract
    /// name), as [`std::os::unix::net::UnixListener::bind_addr`].
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixListener> {
        UnixListener::from_new(std::os::unix::net::UnixListener::bind_addr(addr)?)
    }

    fn from_new(listener: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        crate::net::deepen_backlog(&listener)?;
        Ok(UnixListener {
            inner: Evented::new(listener)?,
        })
    }

    /// Accepts a connection, waiting for one if none is pending; returns it
    /// with the peer's address (usually unnamed).
    ///
    /// Errors are returned unchanged, including running out of file
    /// descriptors; [`incoming`](Self::incoming) backs off on those, see
    /// [`TcpListener::accept`](crate::net::TcpListener::accept).
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (stream, addr) = self.inner.read(|l| l.accept())?;
        Ok((UnixStream::from_new(stream)?, addr))
    }

    /// An endless iterator over incoming connections: the accept loop. On
    /// `EMFILE`, `ENFILE`, `ENOBUFS` or `ENOMEM` it backs off (1 ms,
    /// doubling up to 100 ms) and retries, reporting the first time on
    /// standard error with the remedy (`ulimit -n`); it skips aborted
    /// connections and yields every other error. See
    /// [`TcpListener::incoming`](crate::net::TcpListener::incoming).
    pub fn incoming(&self) -> UnixIncoming<'_> {
        UnixIncoming {
            listener: self,
            backoff: Backoff::new(backoff::ACCEPT_MAX),
        }
    }

    /// The address this listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get().local_addr()
    }

    /// Another handle to the same listening socket (`dup(2)`), with its own
    /// reactor registration; settings are shared.
    pub fn try_clone(&self) -> io::Result<UnixListener> {
        Ok(UnixListener {
            inner: self
                .inner
                .try_clone(std::os::unix::net::UnixListener::try_clone)?,
        })
    }

    /// Takes the socket's pending error (`SO_ERROR`), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.get().take_error()
    }

    /// With `true`, [`accept`](Self::accept) fails with `WouldBlock`
    /// instead of waiting when no connection is pending; with `false`
    /// (the default) it waits. Shared with [`try_clone`](Self::try_clone)s.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.inner.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Wraps a `std` listener, in blocking or non-blocking mode (the
    /// descriptor is made non-blocking; the spindle listener waits unless
    /// [`set_nonblocking`](Self::set_nonblocking) says otherwise).
    pub fn from_std(listener: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        Ok(UnixListener {
            inner: Evented::from_std(listener)?,
        })
    }

    /// Deregisters the listener from the reactor and returns it as a `std`
    /// listener in blocking mode (non-blocking if
    /// [`set_nonblocking(true)`](Self::set_nonblocking) was called). As for
    /// [`TcpListener::into_std`](crate::net::TcpListener::into_std),
    /// convert its clones too.
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixListener> {
        self.inner.into_inner()
    }
}

socket_conversions!(UnixListener, std::os::unix::net::UnixListener);

/// The accept loop of a [`UnixListener`]: an endless iterator of
/// connections, from [`UnixListener::incoming`]. Never returns `None`;
/// backs off instead of spinning when descriptors run out.
///
/// ```
/// use spindle::net::{UnixListener, UnixStream};
///
/// let rt = spindle::Runtime::builder().workers(1).build()?;
/// rt.block_on(|| -> std::io::Result<()> {
///     let path = std::env::temp_dir().join(format!("spindle-doc-inc-{}.sock", std::process::id()));
///     let listener = UnixListener::bind(&path)?;
///     let p = path.clone();
///     spindle::spawn(move || UnixStream::connect(p).unwrap());
///     let mut incoming: spindle::net::UnixIncoming<'_> = listener.incoming();
///     let conn = incoming.next().unwrap()?;
///     assert_eq!(conn.local_addr()?.as_pathname(), Some(path.as_path()));
///     std::fs::remove_file(&path)
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct UnixIncoming<'a> {
    listener: &'a UnixListener,
    backoff: Backoff,
}

impl Iterator for UnixIncoming<'_> {
    type Item = io::Result<UnixStream>;

    fn next(&mut self) -> Option<io::Result<UnixStream>> {
        let l = self.listener;
        Some(
            backoff::accept_with_backoff(
                l.inner.options(),
                &mut self.backoff,
                l.inner.get(),
                || l.accept(),
            )
            .map(|(stream, _)| stream),
        )
    }
}
