//! Blocking-style I/O on non-blocking sockets: the reactor and the
//! per-socket registration every `spindle::net` type is built on.
//!
//! A socket is kept in non-blocking mode. An I/O call tries the system
//! call; on `EAGAIN` it waits for readiness and tries again:
//!
//! - in a coroutine, it parks the coroutine on the socket's readiness in
//!   its runtime's [`reactor`] (registering the socket there on first
//!   use), so the worker runs other coroutines meanwhile;
//! - on a plain OS thread, it blocks the thread in `poll(2)` on that one
//!   descriptor, so the socket behaves like its `std` twin.
//!
//! Timeouts (`set_read_timeout`-style) bound both waits and give
//! `io::ErrorKind::TimedOut`.

pub(crate) mod reactor;

use std::io;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::park::{self, WaitReason};
use crate::scheduler::worker;
use reactor::{Reactor, ScheduledIo};

/// Which readiness an operation waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
    Read,
    Write,
}

/// A socket's registration with a runtime's reactor, made on first use
/// from a coroutine. Owned by the socket type, next to its descriptor.
#[derive(Default)]
pub(crate) struct Registration {
    reg: OnceLock<Reg>,
    /// Serialises the first registration; see [`get`](Self::get).
    init: Mutex<()>,
}

struct Reg {
    reactor: Arc<Reactor>,
    io: Arc<ScheduledIo>,
}

impl Registration {
    /// An unregistered socket.
    pub(crate) const fn new() -> Registration {
        Registration {
            reg: OnceLock::new(),
            init: Mutex::new(()),
        }
    }

    /// Runs `op`, a non-blocking system call on `fd`, until it does not
    /// fail with `WouldBlock` (or `Interrupted`), waiting for `dir`
    /// readiness in between; gives up with `TimedOut` after `timeout`.
    pub(crate) fn io<R>(
        &self,
        fd: RawFd,
        dir: Dir,
        timeout: Option<Duration>,
        op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        self.io_marking(fd, dir, timeout, |_| false, op)
    }

    /// [`io`](Self::io) for a TCP read of `len` bytes: a read that returns
    /// fewer (and more than none) marks the socket drained, and the next
    /// read waits for an event first (see the reactor's module docs).
    pub(crate) fn read_stream(
        &self,
        fd: RawFd,
        timeout: Option<Duration>,
        len: usize,
        op: impl FnMut() -> io::Result<usize>,
    ) -> io::Result<usize> {
        self.io_marking(fd, Dir::Read, timeout, |&n| n > 0 && n < len, op)
    }

    /// [`io`](Self::io), marking the side drained when `drained(&result)`.
    /// Every call parks without trying while its side is drained (only TCP
    /// reads mark, so for other calls this holds only for a TCP peek,
    /// which would fail with `EAGAIN` then too).
    #[inline(always)]
    fn io_marking<R>(
        &self,
        fd: RawFd,
        dir: Dir,
        timeout: Option<Duration>,
        drained: impl Fn(&R) -> bool,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        let deadline = deadline(timeout);
        if park::current_coroutine().is_none() {
            return loop {
                match op() {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        poll_fd(fd, dir, deadline)?;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    r => break r,
                }
            };
        }
        let reg = self.get(fd)?;
        let (side, reason) = match dir {
            Dir::Read => (&reg.io.read, WaitReason::IoRead),
            Dir::Write => (&reg.io.write, WaitReason::IoWrite),
        };
        loop {
            let seen = side.seen();
            if side.is_drained(seen) {
                side.wait(seen, reason, deadline)?;
                continue;
            }
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    side.wait(seen, reason, deadline)?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(r) => {
                    if drained(&r) {
                        side.mark_drained(seen);
                    }
                    return Ok(r);
                }
                r => return r,
            }
        }
    }

    /// The registration with the calling coroutine's runtime, made now if
    /// this is the socket's first wait.
    fn get(&self, fd: RawFd) -> io::Result<&Reg> {
        let cx = worker::context().expect("a coroutine runs on a worker");
        // SAFETY: `context()` is the live context of this worker thread.
        let shared = unsafe { &(*cx).shared };
        let reactor = &shared.reactor;
        if let Some(reg) = self.reg.get() {
            return Registration::same_reactor(reg, reactor);
        }
        // Two coroutines on two workers may make a shared socket's first
        // wait at once (a `&TcpStream` read in one and written in the
        // other). epoll takes a descriptor once: the second EPOLL_CTL_ADD
        // would fail with EEXIST. So the first registration is serialised:
        // the lock is held across one epoll_ctl (never a park), and only
        // until the registration is published.
        let _init = self.init.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(reg) = self.reg.get() {
            return Registration::same_reactor(reg, reactor);
        }
        let io = reactor.register(fd).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("spindle: cannot register the socket with the reactor (epoll_ctl: {e})"),
            )
        })?;
        Ok(self.reg.get_or_init(|| Reg {
            reactor: reactor.clone(),
            io,
        }))
    }

    /// `reg`, if it is with `reactor` (the caller's runtime's).
    fn same_reactor<'a>(reg: &'a Reg, reactor: &Arc<Reactor>) -> io::Result<&'a Reg> {
        if !Arc::ptr_eq(&reg.reactor, reactor) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "spindle: this socket was first used on another runtime; \
                 a socket waits on one runtime's reactor, so use it from \
                 coroutines of that runtime (or from plain threads)",
            ));
        }
        Ok(reg)
    }

    /// Removes the socket from its reactor; call before closing `fd`.
    pub(crate) fn deregister(&mut self, fd: RawFd) {
        if let Some(reg) = self.reg.take() {
            reg.reactor.deregister(fd, reg.io);
        }
    }
}

/// When a call with the socket's `timeout` must give up: that timeout
/// from now, or an enclosing `time::timeout` scope's deadline, whichever
/// ends first.
fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    let own = timeout.and_then(|t| Instant::now().checked_add(t));
    match (own, crate::time::current_deadline()) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Blocks the calling thread until `fd` is ready for `dir` or `deadline`.
fn poll_fd(fd: RawFd, dir: Dir, deadline: Option<Instant>) -> io::Result<()> {
    let events = match dir {
        Dir::Read => libc::POLLIN,
        Dir::Write => libc::POLLOUT,
    };
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let timeout_ms = match deadline {
        None => -1,
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(timed_out());
            }
            // Round up, so we never wake before the deadline.
            i32::try_from(left.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX)
        }
    };
    // SAFETY: `pfd` is a valid pollfd for the duration of the call.
    let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(());
        }
        return Err(e);
    }
    if n == 0 && deadline.is_some_and(|d| Instant::now() >= d) {
        return Err(timed_out());
    }
    Ok(())
}

fn timed_out() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "spindle: the socket's timeout (or an enclosing deadline) passed",
    )
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    use super::{Dir, Registration};

    /// A coroutine accepting and echoing on non-blocking std sockets parks
    /// on readiness (with one worker, the client coroutine runs while the
    /// server waits) and is woken by the reactor.
    #[test]
    fn echo_through_the_reactor() {
        let rt = crate::Runtime::builder().workers(1).build().unwrap();
        rt.block_on(|| {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.set_nonblocking(true).unwrap();
            let addr = listener.local_addr().unwrap();
            let server = crate::spawn(move || {
                let reg = Registration::new();
                let (mut s, _) = reg
                    .io(listener.as_raw_fd(), Dir::Read, None, || listener.accept())
                    .unwrap();
                s.set_nonblocking(true).unwrap();
                let sreg = Registration::new();
                let fd = s.as_raw_fd();
                let mut buf = [0u8; 64];
                loop {
                    let n = sreg.io(fd, Dir::Read, None, || s.read(&mut buf)).unwrap();
                    if n == 0 {
                        break;
                    }
                    sreg.io(fd, Dir::Write, None, || s.write_all(&buf[..n]))
                        .unwrap();
                }
            });
            let client = crate::spawn(move || {
                let mut c = TcpStream::connect(addr).unwrap();
                c.set_nonblocking(true).unwrap();
                let reg = Registration::new();
                let fd = c.as_raw_fd();
                for i in 0..100u8 {
                    reg.io(fd, Dir::Write, None, || c.write(&[i; 10])).unwrap();
                    let mut got = [0u8; 10];
                    let mut have = 0;
                    while have < 10 {
                        have += reg
                            .io(fd, Dir::Read, None, || c.read(&mut got[have..]))
                            .unwrap();
                    }
                    assert_eq!(got, [i; 10]);
                }
            });
            client.join().unwrap();
            server.join().unwrap();
        });
    }
}
