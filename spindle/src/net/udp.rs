//! [`UdpSocket`].

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use crate::net::evented::Evented;

/// A UDP socket: [`std::net::UdpSocket`] whose receives park the calling
/// coroutine until a datagram arrives, and whose sends park while the send
/// buffer is full (on a plain OS thread, they block the thread).
///
/// Timeouts make a waiting call fail with
/// [`ErrorKind::TimedOut`](io::ErrorKind::TimedOut) (where `std` on Unix
/// says `WouldBlock`).
///
/// # Examples
///
/// ```
/// use spindle::net::UdpSocket;
///
/// let rt = spindle::Runtime::builder().workers(1).build()?;
/// rt.block_on(|| -> std::io::Result<()> {
///     let server = UdpSocket::bind("127.0.0.1:0")?;
///     let addr = server.local_addr()?;
///     // An echo server in its own coroutine.
///     spindle::spawn(move || {
///         let mut buf = [0; 512];
///         let (n, from) = server.recv_from(&mut buf).unwrap();
///         server.send_to(&buf[..n], from).unwrap();
///     });
///     let client = UdpSocket::bind("127.0.0.1:0")?;
///     client.connect(addr)?;
///     client.send(b"ping")?;
///     let mut buf = [0; 512];
///     let n = client.recv(&mut buf)?; // parks until the echo arrives
///     assert_eq!(&buf[..n], b"ping");
///     Ok(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UdpSocket {
    inner: Evented<std::net::UdpSocket>,
}

impl UdpSocket {
    /// Creates a socket bound to `addr` (the first of its addresses that
    /// can be bound), as [`std::net::UdpSocket::bind`] does.
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            inner: Evented::new(std::net::UdpSocket::bind(addr)?)?,
        })
    }

    /// Sets the default destination of [`send`](Self::send) and the only
    /// source [`recv`](Self::recv) accepts. Does not wait: UDP has no
    /// handshake.
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        self.inner.get().connect(addr)
    }

    /// Sends `buf` as one datagram to `addr` (its first address, as in
    /// `std`), waiting while the send buffer is full; returns the bytes
    /// sent.
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let addr = addr.to_socket_addrs()?.next().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "no addresses to send data to")
        })?;
        self.inner.write(|s| s.send_to(buf, addr))
    }

    /// Receives one datagram, waiting for one; returns its length and
    /// sender. A datagram longer than `buf` is truncated (the rest is
    /// lost).
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.inner.read(|s| s.recv_from(buf))
    }

    /// Like [`recv_from`](Self::recv_from), but leaves the datagram queued.
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.inner.read(|s| s.peek_from(buf))
    }

    /// Sends `buf` as one datagram to the [`connect`](Self::connect)ed
    /// address, waiting while the send buffer is full.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(|s| s.send(buf))
    }

    /// Receives one datagram from the [`connect`](Self::connect)ed
    /// address, waiting for one.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(|s| s.recv(buf))
    }

    /// Like [`recv`](Self::recv), but leaves the datagram queued.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(|s| s.peek(buf))
    }

    /// The [`connect`](Self::connect)ed address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get().peer_addr()
    }

    /// The address this socket is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get().local_addr()
    }

    /// Another handle to the same socket (`dup(2)`), with its own reactor
    /// registration; settings (timeouts, non-blocking mode) are shared.
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            inner: self.inner.try_clone(std::net::UdpSocket::try_clone)?,
        })
    }

    /// Bounds how long each receive waits; `None` (the default) waits as
    /// long as it takes. A receive that times out fails with
    /// [`ErrorKind::TimedOut`](io::ErrorKind::TimedOut) (`std` on Unix:
    /// `WouldBlock`). `Some(Duration::ZERO)` is an error, as in `std`.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use spindle::net::UdpSocket;
    ///
    /// let rt = spindle::Runtime::builder().workers(1).build()?;
    /// rt.block_on(|| -> std::io::Result<()> {
    ///     let socket = UdpSocket::bind("127.0.0.1:0")?;
    ///     socket.set_read_timeout(Some(Duration::from_millis(10)))?;
    ///     let start = Instant::now();
    ///     let err = socket.recv_from(&mut [0; 64]).unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    ///     assert!(start.elapsed() >= Duration::from_millis(10));
    ///     Ok(())
    /// })?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.inner.set_read_timeout(dur)
    }

    /// Bounds how long each send waits for room in the send buffer; as
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

    /// Sets `SO_BROADCAST`: whether datagrams may go to a broadcast
    /// address.
    pub fn set_broadcast(&self, broadcast: bool) -> io::Result<()> {
        self.inner.get().set_broadcast(broadcast)
    }

    /// `SO_BROADCAST`; see [`set_broadcast`](Self::set_broadcast).
    pub fn broadcast(&self) -> io::Result<bool> {
        self.inner.get().broadcast()
    }

    /// Sets `IP_MULTICAST_LOOP`: whether IPv4 multicast datagrams sent
    /// from this socket are looped back to local listeners.
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.inner.get().set_multicast_loop_v4(on)
    }

    /// `IP_MULTICAST_LOOP`; see
    /// [`set_multicast_loop_v4`](Self::set_multicast_loop_v4).
    pub fn multicast_loop_v4(&self) -> io::Result<bool> {
        self.inner.get().multicast_loop_v4()
    }

    /// Sets `IP_MULTICAST_TTL`: how many hops IPv4 multicast datagrams
    /// may take (1, the default, keeps them on the local network).
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        self.inner.get().set_multicast_ttl_v4(ttl)
    }

    /// `IP_MULTICAST_TTL`; see
    /// [`set_multicast_ttl_v4`](Self::set_multicast_ttl_v4).
    pub fn multicast_ttl_v4(&self) -> io::Result<u32> {
        self.inner.get().multicast_ttl_v4()
    }

    /// Sets `IPV6_MULTICAST_LOOP`: whether IPv6 multicast datagrams sent
    /// from this socket are looped back to local listeners.
    pub fn set_multicast_loop_v6(&self, on: bool) -> io::Result<()> {
        self.inner.get().set_multicast_loop_v6(on)
    }

    /// `IPV6_MULTICAST_LOOP`; see
    /// [`set_multicast_loop_v6`](Self::set_multicast_loop_v6).
    pub fn multicast_loop_v6(&self) -> io::Result<bool> {
        self.inner.get().multicast_loop_v6()
    }

    /// Joins the IPv4 multicast group `multiaddr` on the interface with
    /// address `interface` (`0.0.0.0`: the system chooses).
    pub fn join_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.inner.get().join_multicast_v4(multiaddr, interface)
    }

    /// Joins the IPv6 multicast group `multiaddr` on the interface with
    /// index `interface` (0: the system chooses).
    pub fn join_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.inner.get().join_multicast_v6(multiaddr, interface)
    }

    /// Leaves a group joined with
    /// [`join_multicast_v4`](Self::join_multicast_v4).
    pub fn leave_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.inner.get().leave_multicast_v4(multiaddr, interface)
    }

    /// Leaves a group joined with
    /// [`join_multicast_v6`](Self::join_multicast_v6).
    pub fn leave_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.inner.get().leave_multicast_v6(multiaddr, interface)
    }

    /// Sets `IP_TTL`, the time-to-live of outgoing datagrams.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.get().set_ttl(ttl)
    }

    /// `IP_TTL`; see [`set_ttl`](Self::set_ttl).
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.get().ttl()
    }

    /// Takes the socket's pending error (`SO_ERROR`), if any: for a
    /// connected socket, e.g. `ConnectionRefused` after an ICMP "port
    /// unreachable".
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
    pub fn from_std(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            inner: Evented::from_std(socket)?,
        })
    }

    /// Deregisters the socket from the reactor and returns it as a `std`
    /// socket in blocking mode (non-blocking if
    /// [`set_nonblocking(true)`](Self::set_nonblocking) was called), with
    /// its timeouts. As for [`TcpStream::into_std`](crate::net::TcpStream::into_std),
    /// convert its clones too.
    pub fn into_std(self) -> io::Result<std::net::UdpSocket> {
        self.inner.into_inner()
    }
}

socket_conversions!(UdpSocket, std::net::UdpSocket);
