//! [`TcpListener`] and its accept loop, [`Incoming`].

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

use socket2::SockRef;

use super::TcpStream;
use crate::net::backoff::{self, Backoff};
use crate::net::evented::Evented;

/// A TCP socket server, listening for connections: [`std::net::TcpListener`]
/// whose [`accept`](TcpListener::accept) parks the calling coroutine until
/// a connection arrives (on a plain OS thread, it blocks the thread).
///
/// Write accept loops with [`incoming`](TcpListener::incoming): when the
/// process runs out of file descriptors, it backs off instead of spinning
/// and reports the problem once (see the [module docs](crate::net)).
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use spindle::net::{TcpListener, TcpStream};
///
/// let rt = spindle::Runtime::builder().workers(1).build()?;
/// rt.block_on(|| -> std::io::Result<()> {
///     let listener = TcpListener::bind("127.0.0.1:0")?;
///     let addr = listener.local_addr()?;
///     let client = spindle::spawn(move || -> std::io::Result<String> {
///         let mut s = TcpStream::connect(addr)?;
///         let mut greeting = String::new();
///         s.read_to_string(&mut greeting)?;
///         Ok(greeting)
///     });
///     let (mut conn, peer) = listener.accept()?;
///     assert_eq!(peer, conn.peer_addr()?);
///     conn.write_all(b"hi")?;
///     drop(conn); // the client reads to the end
///     assert_eq!(client.join().unwrap()?, "hi");
///     Ok(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct TcpListener {
    pub(super) inner: Evented<std::net::TcpListener>,
}

impl TcpListener {
    /// Creates a listener bound to `addr` (the first of its addresses that
    /// can be bound), as [`std::net::TcpListener::bind`] does.
    ///
    /// The kernel queues up to 1,024 connections for `accept` (`listen(2)`'s
    /// backlog, capped by `net.core.somaxconn`), as tokio's listener does,
    /// where `std` asks for 128: a server of coroutines is built for bursts
    /// of clients, and with a full queue the kernel drops handshakes, which
    /// clients then retry only after a second or more.
    ///
    /// Port 0 asks the system for a free port; read it with
    /// [`local_addr`](TcpListener::local_addr).
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        let listener = std::net::TcpListener::bind(addr)?;
        crate::net::deepen_backlog(&listener)?;
        Ok(TcpListener {
            inner: Evented::new(listener)?,
        })
    }

    /// Accepts a connection, waiting for one if none is pending; returns it
    /// with the peer's address.
    ///
    /// Errors are returned unchanged, as `std` returns them, including
    /// running out of file descriptors (`EMFILE`, "Too many open files"):
    /// retrying at once would spin, since the listener stays readable
    /// while connections wait in its backlog. [`incoming`](Self::incoming)
    /// handles that case.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (sock, addr) = self.inner.read(|l| {
            // accept4 makes the connection non-blocking and close-on-exec
            // in the same call.
            SockRef::from(l).accept4(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
        })?;
        let addr = addr.as_socket().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "accepted a non-IP address")
        })?;
        let stream = TcpStream {
            inner: Evented::nonblocking(std::net::TcpStream::from(sock)),
        };
        Ok((stream, addr))
    }

    /// An endless iterator over incoming connections: the accept loop.
    ///
    /// Unlike a loop over [`accept`](Self::accept), it keeps serving when
    /// the process runs out of file descriptors (`EMFILE`), or the system
    /// does (`ENFILE`), or socket memory runs out (`ENOBUFS`, `ENOMEM`): it
    /// sleeps (1 ms, doubling up to 100 ms) and tries again, so pending
    /// connections are accepted as soon as descriptors free up, and prints
    /// once per listener a line on standard error naming the limit and how
    /// to raise it (`ulimit -n`). It skips connections aborted before they
    /// were accepted (`ECONNABORTED`), and yields every other error.
    ///
    /// ```
    /// use spindle::net::{TcpListener, TcpStream};
    ///
    /// let rt = spindle::Runtime::builder().workers(1).build()?;
    /// rt.block_on(|| -> std::io::Result<()> {
    ///     let listener = TcpListener::bind("127.0.0.1:0")?;
    ///     let addr = listener.local_addr()?;
    ///     let clients: Vec<_> = (0..3)
    ///         .map(|_| spindle::spawn(move || TcpStream::connect(addr).map(drop)))
    ///         .collect();
    ///     for conn in listener.incoming().take(3) {
    ///         let conn = conn?;
    ///         spindle::spawn(move || drop(conn)); // serve it
    ///     }
    ///     for c in clients {
    ///         c.join().unwrap()?;
    ///     }
    ///     Ok(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming {
            listener: self,
            backoff: Backoff::new(backoff::ACCEPT_MAX),
        }
    }

    /// The address this listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get().local_addr()
    }

    /// Another handle to the same listening socket (`dup(2)`), with its own
    /// reactor registration; settings such as non-blocking mode are
    /// shared.
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        Ok(TcpListener {
            inner: self.inner.try_clone(std::net::TcpListener::try_clone)?,
        })
    }

    /// Sets `IP_TTL` for the connections this listener accepts.
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
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        Ok(TcpListener {
            inner: Evented::from_std(listener)?,
        })
    }

    /// Deregisters the listener from the reactor and returns it as a `std`
    /// listener in blocking mode (non-blocking if
    /// [`set_nonblocking(true)`](Self::set_nonblocking) was called).
    ///
    /// Blocking mode belongs to the socket, not the descriptor: a
    /// [`try_clone`](Self::try_clone) of this listener still in use would
    /// then block its worker thread in `accept`; convert it too.
    pub fn into_std(self) -> io::Result<std::net::TcpListener> {
        self.inner.into_inner()
    }
}

socket_conversions!(TcpListener, std::net::TcpListener);

/// The accept loop of a [`TcpListener`]: an endless iterator of
/// connections, from [`TcpListener::incoming`].
///
/// It never returns `None`. Running out of descriptors does not end it or
/// make it spin: it backs off and reports once, see
/// [`TcpListener::incoming`].
///
/// ```
/// use spindle::net::{TcpListener, TcpStream};
///
/// let rt = spindle::Runtime::builder().workers(1).build()?;
/// rt.block_on(|| -> std::io::Result<()> {
///     let listener = TcpListener::bind("127.0.0.1:0")?;
///     let addr = listener.local_addr()?;
///     spindle::spawn(move || TcpStream::connect(addr).unwrap());
///     let mut incoming: spindle::net::Incoming<'_> = listener.incoming();
///     let conn = incoming.next().unwrap()?;
///     assert_eq!(conn.local_addr()?, addr);
///     Ok(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
    backoff: Backoff,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;

    fn next(&mut self) -> Option<io::Result<TcpStream>> {
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
