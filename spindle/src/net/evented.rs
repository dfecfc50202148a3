//! [`Evented`]: what every socket type of this module is made of.
//!
//! A `std` socket in non-blocking mode, its registration with a reactor,
//! and the settings that a blocking `std` socket keeps in the kernel but
//! that spindle must apply itself, because the descriptor never blocks:
//!
//! | setting | kept in | read by |
//! | --- | --- | --- |
//! | read timeout | [`Options`] (`SO_RCVTIMEO` after `into_std`) | every wait for readability |
//! | write timeout | [`Options`] (`SO_SNDTIMEO` after `into_std`) | every wait for writability |
//! | "non-blocking" as the user sees it | [`Options`] | every call: fail with `WouldBlock` instead of waiting |
//! | "exhaustion reported" (listeners) | [`Options`] | the accept loop's one-time message |
//!
//! The options sit behind an `Arc` shared by a socket and its
//! `try_clone`s, so a setting changed on one applies to all of them, as
//! `std` documents for its clones (whose settings live in the shared
//! kernel socket).
//!
//! **Dropping.** The registration must leave the reactor before the
//! descriptor closes. epoll drops an entry by itself only when the last
//! descriptor of the open socket closes; while a duplicate lives (a
//! `try_clone`, a forked child's copy), the entry stays and goes on
//! reporting events under a token whose state the reactor frees after the
//! next poll that follows a deregistration, and never without one.
//! [`Evented`] declares its registration before its socket, and fields
//! drop in declaration order, so the registration's `Drop` runs first.
//! `Evented` itself has no `Drop`, so [`into_inner`](Evented::into_inner)
//! can move the socket out after deregistering.

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
// Plain settings, not a synchronisation protocol: nothing is published
// with them, every access is Relaxed, and the sockets around them cannot
// run under loom anyway, so std's atomics are used directly (loom's shim
// has no 64-bit atomic).
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use socket2::SockRef;

use crate::io::{Dir, Registration};

/// A `std` socket `S` in non-blocking mode, registered with the reactor on
/// its first wait.
pub(crate) struct Evented<S: AsFd> {
    /// Declared first: dropped (deregistered) before `sock` closes.
    reg: FdRegistration,
    sock: S,
    opts: Arc<Options>,
}

/// A [`Registration`] with the descriptor it is for, removed from the
/// reactor when dropped.
struct FdRegistration {
    reg: Registration,
    fd: RawFd,
}

impl Drop for FdRegistration {
    fn drop(&mut self) {
        self.reg.deregister(self.fd);
    }
}

/// Settings shared by a socket and its clones; see the module docs.
#[derive(Default)]
pub(crate) struct Options {
    read_timeout: TimeoutCell,
    write_timeout: TimeoutCell,
    nonblocking: AtomicBool,
    /// Set once the accept loop has reported descriptor exhaustion.
    exhaustion_reported: AtomicBool,
}

impl Options {
    /// Writes the settings to the kernel socket, for a blocking `std`
    /// socket to behave as the spindle one did. (Kept out of the setters:
    /// a server that sets a timeout before each read would pay a system
    /// call for it every time.)
    fn apply(&self, sock: &impl AsFd) -> io::Result<()> {
        let r = SockRef::from(sock);
        r.set_read_timeout(self.read_timeout.get())?;
        r.set_write_timeout(self.write_timeout.get())?;
        r.set_nonblocking(self.nonblocking.load(Relaxed))
    }

    /// Whether descriptor exhaustion was already reported; marks it
    /// reported.
    pub(crate) fn exhaustion_reported(&self) -> bool {
        self.exhaustion_reported.swap(true, Relaxed)
    }
}

/// An `Option<Duration>` in one atomic word: nanoseconds, [`NO_TIMEOUT`]
/// for `None`. Durations past `u64::MAX - 1` ns (584 years) are clamped.
struct TimeoutCell(AtomicU64);

const NO_TIMEOUT: u64 = u64::MAX;

impl Default for TimeoutCell {
    fn default() -> Self {
        TimeoutCell(AtomicU64::new(NO_TIMEOUT))
    }
}

impl TimeoutCell {
    fn get(&self) -> Option<Duration> {
        match self.0.load(Relaxed) {
            NO_TIMEOUT => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }

    fn set(&self, t: Option<Duration>) {
        let v = t.map_or(NO_TIMEOUT, |d| {
            u64::try_from(d.as_nanos()).map_or(NO_TIMEOUT - 1, |n| n.min(NO_TIMEOUT - 1))
        });
        self.0.store(v, Relaxed);
    }
}

impl<S: AsFd> Evented<S> {
    /// Wraps `sock`, putting it in non-blocking mode, with fresh settings
    /// (for sockets spindle created: accepted, connected, bound).
    pub(crate) fn new(sock: S) -> io::Result<Evented<S>> {
        SockRef::from(&sock).set_nonblocking(true)?;
        Ok(Evented::with_options(sock, Arc::default()))
    }

    /// Wraps `sock`, which is non-blocking already (made with
    /// `SOCK_NONBLOCK`), with fresh settings.
    pub(crate) fn nonblocking(sock: S) -> Evented<S> {
        Evented::with_options(sock, Arc::default())
    }

    /// Wraps a socket made elsewhere: like [`new`](Self::new), but the
    /// timeouts already set on it (`SO_RCVTIMEO`, `SO_SNDTIMEO`) are kept.
    pub(crate) fn from_std(sock: S) -> io::Result<Evented<S>> {
        let opts = Options::default();
        let r = SockRef::from(&sock);
        // Reading them cannot fail on an open socket; if it did, there
        // would be no timeout known to keep.
        opts.read_timeout.set(r.read_timeout().unwrap_or(None));
        opts.write_timeout.set(r.write_timeout().unwrap_or(None));
        r.set_nonblocking(true)?;
        Ok(Evented::with_options(sock, Arc::new(opts)))
    }

    fn with_options(sock: S, opts: Arc<Options>) -> Evented<S> {
        let fd = sock.as_fd().as_raw_fd();
        Evented {
            reg: FdRegistration {
                reg: Registration::new(),
                fd,
            },
            sock,
            opts,
        }
    }

    /// Duplicates the descriptor with `dup` (a `std` `try_clone`): the
    /// clone has its own registration and shares the settings.
    pub(crate) fn try_clone(&self, dup: impl FnOnce(&S) -> io::Result<S>) -> io::Result<Self> {
        // The duplicate shares the open socket, so it is non-blocking
        // already.
        Ok(Evented::with_options(dup(&self.sock)?, self.opts.clone()))
    }

    /// Deregisters the socket and returns it with its settings in the
    /// kernel: blocking again unless the user asked for non-blocking mode,
    /// with its timeouts as `SO_RCVTIMEO` and `SO_SNDTIMEO`.
    pub(crate) fn into_inner(self) -> io::Result<S> {
        let Evented { reg, sock, opts } = self;
        drop(reg);
        opts.apply(&sock)?;
        Ok(sock)
    }

    /// Like [`into_inner`](Self::into_inner), for `IntoRawFd`, which
    /// cannot fail: should the socket refuse a setting (an open socket
    /// does not), it is handed over without it.
    pub(crate) fn into_inner_lossy(self) -> S {
        let Evented { reg, sock, opts } = self;
        drop(reg);
        let _ = opts.apply(&sock);
        sock
    }

    /// The `std` socket, for calls that never wait.
    pub(crate) fn get(&self) -> &S {
        &self.sock
    }

    /// The shared settings.
    pub(crate) fn options(&self) -> &Options {
        &self.opts
    }

    /// Runs `op` until it does not fail with `WouldBlock`, waiting for
    /// readability in between, for at most the read timeout.
    pub(crate) fn read<R>(&self, op: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        self.io(Dir::Read, self.opts.read_timeout.get(), op)
    }

    /// [`read`](Self::read) for a TCP stream read into buffers of `len`
    /// bytes in all: a shorter read marks the socket drained, so the next
    /// read parks without trying (see `io::reactor`'s module docs).
    pub(crate) fn read_stream(
        &self,
        len: usize,
        mut op: impl FnMut(&S) -> io::Result<usize>,
    ) -> io::Result<usize> {
        crate::scheduler::coop::charge();
        if self.is_nonblocking() {
            return op(&self.sock);
        }
        let timeout = self.opts.read_timeout.get();
        self.reg
            .reg
            .read_stream(self.reg.fd, timeout, len, || op(&self.sock))
    }

    /// Runs `op` until it does not fail with `WouldBlock`, waiting for
    /// writability in between, for at most the write timeout.
    pub(crate) fn write<R>(&self, op: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        self.io(Dir::Write, self.opts.write_timeout.get(), op)
    }

    /// Runs `op`, waiting for `dir` readiness for at most `timeout`
    /// whenever it fails with `WouldBlock`; in non-blocking mode, runs it
    /// once.
    pub(crate) fn io<R>(
        &self,
        dir: Dir,
        timeout: Option<Duration>,
        mut op: impl FnMut(&S) -> io::Result<R>,
    ) -> io::Result<R> {
        crate::scheduler::coop::charge();
        if self.is_nonblocking() {
            return op(&self.sock);
        }
        self.reg
            .reg
            .io(self.reg.fd, dir, timeout, || op(&self.sock))
    }

    pub(crate) fn read_timeout(&self) -> Option<Duration> {
        self.opts.read_timeout.get()
    }

    pub(crate) fn write_timeout(&self) -> Option<Duration> {
        self.opts.write_timeout.get()
    }

    /// Sets the read timeout; `Some(0)` is an error, as in `std`.
    pub(crate) fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        check_timeout(t)?;
        self.opts.read_timeout.set(t);
        Ok(())
    }

    /// Sets the write timeout; `Some(0)` is an error, as in `std`.
    pub(crate) fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        check_timeout(t)?;
        self.opts.write_timeout.set(t);
        Ok(())
    }

    /// Makes calls fail with `WouldBlock` instead of waiting (or wait
    /// again).
    pub(crate) fn set_nonblocking(&self, nonblocking: bool) {
        self.opts.nonblocking.store(nonblocking, Relaxed);
    }

    /// Whether calls fail with `WouldBlock` instead of waiting.
    pub(crate) fn is_nonblocking(&self) -> bool {
        self.opts.nonblocking.load(Relaxed)
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.reg.fd
    }
}

/// `std`'s rule: a zero timeout would mean "never wait", which is what
/// non-blocking mode is for.
pub(crate) fn check_timeout(t: Option<Duration>) -> io::Result<()> {
    if t == Some(Duration::ZERO) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot set a 0 duration timeout",
        ));
    }
    Ok(())
}

/// The error of a send that gave up at its write timeout, for sends that
/// back off instead of waiting on the reactor (whose waits give the same
/// kind).
pub(crate) fn write_timed_out() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "spindle: the socket's write timeout passed",
    )
}

/// `EINPROGRESS`: a non-blocking `connect` started and goes on.
pub(crate) fn in_progress(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EINPROGRESS)
}

/// The operation for a non-blocking `connect` in progress: done once the
/// socket has a peer; its error if it failed; `WouldBlock` meanwhile.
pub(crate) fn finish_connect(sock: &impl AsFd) -> io::Result<()> {
    let r = SockRef::from(sock);
    if let Some(e) = r.take_error()? {
        return Err(e);
    }
    match r.peer_addr() {
        Ok(_) => Ok(()),
        // Not connected yet (or failed since `take_error`: the next try
        // takes that error, and its event has woken the wait already).
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Err(io::ErrorKind::WouldBlock.into()),
        Err(e) => Err(e),
    }
}

/// `send(2)` with `MSG_NOSIGNAL`: writing to a connection the peer has
/// closed fails with `EPIPE` (`BrokenPipe`) instead of raising `SIGPIPE`,
/// which would kill a process that has not ignored it (a Rust `main`
/// ignores it, but a library cannot count on that; `std`'s `Write` for
/// Unix-domain streams uses `write(2)`, which raises it).
pub(crate) fn send(sock: &impl AsFd, buf: &[u8]) -> io::Result<usize> {
    SockRef::from(sock).send_with_flags(buf, libc::MSG_NOSIGNAL)
}

/// `sendmsg(2)` with `MSG_NOSIGNAL`; see [`send`].
pub(crate) fn send_vectored(sock: &impl AsFd, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
    SockRef::from(sock).send_vectored_with_flags(bufs, libc::MSG_NOSIGNAL)
}
