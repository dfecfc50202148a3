//! Networking: TCP, UDP and Unix-domain sockets whose blocking calls park
//! the coroutine, not the thread.
//!
//! The types are shaped like their `std` twins ([`std::net`] and
//! [`std::os::unix::net`]) and are used the same way: `accept`, `read`,
//! `write`, `recv_from` look blocking. Called from a coroutine, a call
//! that would block parks the coroutine until the socket is ready, and its
//! worker runs other coroutines meanwhile; called from a plain OS thread,
//! it blocks the thread, like the `std` type would.
//!
//! ```
//! use std::io::{Read, Write};
//! use spindle::net::{TcpListener, TcpStream};
//!
//! let rt = spindle::Runtime::builder().workers(1).build()?;
//! rt.block_on(|| -> std::io::Result<()> {
//!     let listener = TcpListener::bind("127.0.0.1:0")?;
//!     let addr = listener.local_addr()?;
//!     // An echo server: one coroutine per connection.
//!     spindle::spawn(move || {
//!         for stream in listener.incoming() {
//!             let mut stream = stream.unwrap();
//!             spindle::spawn(move || {
//!                 let mut buf = [0; 1024];
//!                 loop {
//!                     match stream.read(&mut buf) {
//!                         Ok(0) | Err(_) => break,
//!                         Ok(n) => stream.write_all(&buf[..n]).unwrap(),
//!                     }
//!                 }
//!             });
//!         }
//!     });
//!     let mut client = TcpStream::connect(addr)?;
//!     client.write_all(b"hello")?;
//!     let mut reply = [0; 5];
//!     client.read_exact(&mut reply)?;
//!     assert_eq!(&reply, b"hello");
//!     Ok(())
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # How a call waits
//!
//! Every socket holds a `std` socket in non-blocking mode and a
//! registration with the reactor (`crate::io`). A call runs the
//! non-blocking system call; on `EAGAIN` it waits for the socket's
//! readiness and tries again:
//!
//! - in a coroutine, it parks on the socket's readiness in its runtime's
//!   reactor (the socket is registered with epoll, edge-triggered, on its
//!   first wait and removed before its descriptor closes), recording
//!   [`WaitReason::IoRead`](crate::WaitReason::IoRead) or
//!   [`WaitReason::IoWrite`](crate::WaitReason::IoWrite) for
//!   [`runtime::snapshot`](crate::runtime::snapshot);
//! - on a plain OS thread, it blocks in `poll(2)` on that descriptor.
//!
//! A socket waits on one runtime's reactor: once used from a coroutine of
//! one runtime, it can be used from that runtime's coroutines and from
//! plain threads, but not from another runtime's coroutines (the call
//! fails with `InvalidInput`).
//!
//! Sharing is as in `std`: `Read` and `Write` are implemented for `&TcpStream`
//! (and `&UnixStream`), so one coroutine can read while another writes;
//! readiness wakes every coroutine waiting on that side, and those that
//! find nothing to do wait again. [`TcpStream::try_clone`] and its
//! siblings duplicate the descriptor (`dup(2)`), and the clone has its own
//! registration, so clones can wait in different coroutines and runtimes.
//!
//! # Timeouts
//!
//! `set_read_timeout` and `set_write_timeout` bound each call's wait, as
//! `SO_RCVTIMEO` does for a blocking socket. **A call whose timeout passes
//! fails with [`ErrorKind::TimedOut`](std::io::ErrorKind::TimedOut)**,
//! where `std` on Unix reports `WouldBlock` (and on Windows `TimedOut`);
//! portable code that accepts both works unchanged. Timeouts are settings
//! of the socket, shared with its clones (as the kernel's are); spindle
//! keeps them itself, since a non-blocking descriptor ignores the
//! kernel's, and writes them to the kernel when `into_std` hands the
//! socket back, so it keeps them. `from_std` adopts the kernel's.
//!
//! `set_nonblocking(true)` makes calls fail with `WouldBlock` instead of
//! waiting, as in `std`. The descriptor itself is non-blocking either way.
//!
//! # Errors and resource exhaustion
//!
//! | event | result |
//! | --- | --- |
//! | the peer closed its side | `read` returns `Ok(0)` (end of file) |
//! | the peer reset the connection | `ConnectionReset` |
//! | writing after the peer closed | `BrokenPipe`; never a `SIGPIPE` (sends pass `MSG_NOSIGNAL`) |
//! | a read or write timeout passed | `TimedOut` |
//! | `accept` with no descriptor left (`EMFILE`, `ENFILE`) | `accept` returns the error; [`Incoming`] backs off and retries, see below |
//!
//! An accept loop must not spin when the process runs out of file
//! descriptors: the listening socket stays readable while connections wait
//! in its backlog, so retrying at once would burn a core without making
//! progress. [`TcpListener::accept`] (and [`UnixListener::accept`]) return
//! the error unchanged, as `std` does. The iterators [`Incoming`] and
//! [`UnixIncoming`] (from `incoming()`), the intended way to write an accept
//! loop, handle it instead: on `EMFILE`, `ENFILE`, `ENOBUFS` or `ENOMEM`
//! they sleep (1 ms, doubling up to 100 ms, reset after a success) and
//! retry, so connections are served again as soon as descriptors free up;
//! the first time this happens on a listener they print one line to
//! standard error naming the limit and the remedy (raise `ulimit -n`).
//! They also skip connections that were aborted before they could be
//! accepted (`ECONNABORTED`, `EPROTO`), as Go's accept loop does; any other
//! error is yielded.
//!
//! A slow client (one that trickles bytes, "slowloris") holds only its own
//! coroutine: its reads park until bytes arrive. Bound how long a
//! connection may take with the read timeout.
//!
//! # Name resolution
//!
//! Functions taking [`ToSocketAddrs`](std::net::ToSocketAddrs) resolve host
//! names with the system resolver (`getaddrinfo`), which blocks the
//! calling thread, so in a coroutine it holds its worker while it runs.
//! Pass [`SocketAddr`](std::net::SocketAddr)s (or IP literals, which need
//! no lookup) on hot paths.

/// The conversions every socket type has, as its `std` twin `$std` has
/// them: descriptor traits, `From<$std>`, and `Debug` (the twin's, which
/// shows the addresses and the descriptor).
macro_rules! socket_conversions {
    ($ty:ident, $std:ty) => {
        impl std::os::fd::AsFd for $ty {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                self.inner.get().as_fd()
            }
        }

        impl std::os::fd::AsRawFd for $ty {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                self.inner.fd()
            }
        }

        /// Deregisters the socket and gives up its descriptor, in blocking
        /// mode (unless `set_nonblocking(true)` was called), like `into_std`.
        impl std::os::fd::IntoRawFd for $ty {
            fn into_raw_fd(self) -> std::os::fd::RawFd {
                std::os::fd::IntoRawFd::into_raw_fd(self.inner.into_inner_lossy())
            }
        }

        /// Takes ownership of a socket descriptor, as `from_std` does.
        impl std::os::fd::FromRawFd for $ty {
            unsafe fn from_raw_fd(fd: std::os::fd::RawFd) -> $ty {
                // SAFETY: `FromRawFd`'s contract, passed on to our caller:
                // `fd` is an open socket of this kind that the caller owns.
                <$ty>::from(unsafe { <$std as std::os::fd::FromRawFd>::from_raw_fd(fd) })
            }
        }

        /// Like `from_std`, which fails only if the descriptor cannot be
        /// made non-blocking: never, for an open socket.
        impl From<$std> for $ty {
            fn from(sock: $std) -> $ty {
                <$ty>::from_std(sock).expect("spindle: cannot make an open socket non-blocking")
            }
        }

        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(self.inner.get(), f)
            }
        }
    };
}

mod backoff;
mod evented;
mod tcp;
mod udp;
mod unix;

pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixDatagram, UnixIncoming, UnixListener, UnixStream};

/// The `listen(2)` backlog of spindle's listeners: tokio's 1,024, where
/// `std` asks for 128 (the kernel caps it at `net.core.somaxconn`).
const BACKLOG: i32 = 1024;

/// Raises a freshly bound `std` listener's backlog to [`BACKLOG`]: on
/// Linux, `listen(2)` on a listening socket sets its backlog again.
fn deepen_backlog(listener: &impl std::os::fd::AsFd) -> std::io::Result<()> {
    socket2::SockRef::from(listener).listen(BACKLOG)
}
