//! The reactor: one epoll instance (through mio) per runtime, and the
//! per-socket readiness state that parks and wakes coroutines.
//!
//! **Who polls.** There is no reactor thread. A worker about to sleep
//! (nothing to run) becomes the *driver* if no other worker is: it waits
//! in `epoll_wait` instead of on its futex, with the timeout of its next
//! timer. Busy workers poll without waiting every 61st scheduling tick
//! (with the injector check) while any socket is registered, so readiness
//! is seen even when no worker is idle. A wake-up for a worker that is the
//! driver (work in its inbox, a shutdown) goes through mio's `Waker` (an
//! eventfd) instead of the futex; see `Shared::wake_worker`.
//!
//! **Readiness.** Each socket is registered once, edge-triggered, for
//! reading and writing. Its [`ScheduledIo`] has one [`Direction`] per
//! side: an event counter and a wait list. An I/O call reads the counter,
//! tries the system call, and on `EAGAIN` parks unless the counter moved
//! meanwhile (checked under the wait list's lock, where the reactor bumps
//! it), so an edge is never lost between the try and the park. The driver
//! bumps the counter and claims every waiter of that side on each event.
//!
//! **Drained streams.** A TCP read that returns fewer bytes than asked
//! (but more than none) emptied the receive queue: the kernel copies
//! until the buffer is full or the queue is empty. The reader records the
//! count it read before that call ([`Direction::mark_drained`]); while the
//! count has not moved since, the next read skips the system call that
//! would fail with `EAGAIN` and parks at once (tokio clears its readiness
//! the same way). No wake-up is lost: bytes that arrived before the short
//! read were taken by it, and bytes that arrive after it raise a new edge,
//! which moves the count (collected before the park's check) or wakes the
//! parked reader (after). That argument is about bytes; three states
//! make the next read return at once without new bytes, and the skip is
//! off for good on a socket once an event has reported one of them:
//! end-of-stream (a FIN that came with the last bytes is reported by the
//! same edge, and a read after the short one returns 0 with no edge to
//! come), an error (a reset), and urgent data (a TCP read stops early at
//! the out-of-band mark, with bytes left behind; sockets are registered
//! for `EPOLLPRI` so that it is reported). The event sets the flag before
//! it bumps the count, so a reader that has read the count sees the flag.
//! Only a short read of more than zero bytes marks. Datagram reads (a
//! short datagram says nothing about the queue), peeks and Unix-domain
//! stream reads (which stop at a message that carries descriptors or
//! other credentials) never mark.
//!
//! **Tokens.** An event's token is the address of its `ScheduledIo`. A
//! socket that deregisters hands its `Arc` to the reactor, which drops it
//! only after the next complete poll: an event collected by an
//! `epoll_wait` that raced with the deregistration still finds it alive.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Registry, Token, Waker};

use crate::loom::{RawLock, raw_lock};
use crate::park::WaitReason;
use crate::sync::wait::{Node, WaitList, wait_in};

/// The token of the reactor's own waker.
const WAKER: Token = Token(0);

/// Events taken per `epoll_wait`.
const EVENTS: usize = 1024;

/// One runtime's epoll instance.
pub(crate) struct Reactor {
    /// The driver's side: whoever holds this lock may poll.
    driver: std::sync::Mutex<Driver>,
    /// Registers and deregisters sockets, from any thread.
    registry: Registry,
    /// Interrupts the driver's `epoll_wait`.
    waker: Waker,
    /// Deregistered sockets' states, dropped after the next full poll.
    retired: std::sync::Mutex<Vec<Arc<ScheduledIo>>>,
    /// Whether a worker is blocked in `epoll_wait` (waiting, not just
    /// polling): `Shared::wake_worker` uses the waker for it.
    pub(crate) blocked: AtomicBool,
    /// When a poll last ended, in nanoseconds since `epoch` (for the
    /// monitor thread).
    last_poll: AtomicU64,
    epoch: Instant,
    /// Registered sockets (idle workers skip polling while there are none).
    sockets: std::sync::atomic::AtomicUsize,
}

struct Driver {
    poll: Poll,
    events: Events,
}

impl Reactor {
    pub(crate) fn new() -> io::Result<Reactor> {
        let poll = Poll::new().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "spindle: cannot create the I/O reactor (epoll_create1: {e}); \
                     if the process is out of file descriptors, raise `ulimit -n`"
                ),
            )
        })?;
        let registry = poll.registry().try_clone()?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        Ok(Reactor {
            driver: std::sync::Mutex::new(Driver {
                poll,
                events: Events::with_capacity(EVENTS),
            }),
            registry,
            waker,
            retired: std::sync::Mutex::new(Vec::new()),
            blocked: AtomicBool::new(false),
            last_poll: AtomicU64::new(0),
            epoch: Instant::now(),
            sockets: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// Registers `fd` for edge-triggered read and write readiness.
    pub(crate) fn register(&self, fd: std::os::fd::RawFd) -> io::Result<Arc<ScheduledIo>> {
        let io = Arc::new(ScheduledIo::default());
        let token = Token(Arc::as_ptr(&io) as usize);
        self.registry.register(
            &mut mio::unix::SourceFd(&fd),
            token,
            Interest::READABLE | Interest::WRITABLE | Interest::PRIORITY,
        )?;
        self.sockets.fetch_add(1, Ordering::Relaxed);
        Ok(io)
    }

    /// Deregisters `fd`; its state is dropped after the next full poll.
    pub(crate) fn deregister(&self, fd: std::os::fd::RawFd, io: Arc<ScheduledIo>) {
        // Errors (the fd was closed already) leave nothing registered.
        let _ = self.registry.deregister(&mut mio::unix::SourceFd(&fd));
        self.sockets.fetch_sub(1, Ordering::Relaxed);
        self.retired
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(io);
    }

    /// Polls for events and wakes their waiters, waiting at most `timeout`
    /// (`None`: until an event or a [`wake`](Self::wake)). Returns `false`
    /// at once if another thread is the driver.
    pub(crate) fn poll(&self, timeout: Option<Duration>) -> bool {
        self.poll_unless(timeout, || false)
    }

    /// Polls for events and wakes their waiters, waiting at most `timeout`
    /// (`None`: until an event or a [`wake`](Self::wake)) unless `woken()`
    /// holds once this thread is the driver. Returns `false` at once if
    /// another thread is the driver.
    ///
    /// A worker going to sleep here passes "my sleep word was moved": a
    /// waker that moves it wakes the driver through the eventfd, but an
    /// eventfd edge is reported to one `epoll_wait` only, and until this
    /// thread holds the driver lock another poller (the monitor, a busy
    /// worker's zero-timeout poll) may take that edge and drop it. Checked
    /// after the lock is taken, `woken()` sees every move made before;
    /// a move after it is followed by a `wake` that only this thread can
    /// collect, since it holds the lock until its wait ends.
    pub(crate) fn poll_unless(&self, timeout: Option<Duration>, woken: impl Fn() -> bool) -> bool {
        let Ok(mut driver) = self.driver.try_lock() else {
            return false;
        };
        let driver = &mut *driver;
        // Sockets deregistered before this poll started cannot appear in
        // it; drop them once it is done.
        let retired = std::mem::take(&mut *self.retired.lock().unwrap_or_else(|e| e.into_inner()));
        let timeout = if timeout != Some(Duration::ZERO) && woken() {
            Some(Duration::ZERO)
        } else {
            timeout
        };
        let waits = timeout != Some(Duration::ZERO);
        if waits {
            self.blocked.store(true, Ordering::SeqCst);
        }
        let r = driver.poll.poll(&mut driver.events, timeout);
        if waits {
            self.blocked.store(false, Ordering::SeqCst);
        }
        if let Err(e) = r
            && e.kind() != io::ErrorKind::Interrupted
        {
            // epoll_wait fails only on programming errors (EBADF, EFAULT,
            // EINVAL); nothing to recover.
            panic!("spindle: epoll_wait failed: {e}");
        }
        for event in driver.events.iter() {
            if event.token() == WAKER {
                continue;
            }
            // SAFETY: the token is the address of a `ScheduledIo` that is
            // either registered (its socket holds an `Arc`) or retired (in
            // `retired`, or in the list taken above, which outlives this
            // loop): see the module docs.
            let io = unsafe { &*(event.token().0 as *const ScheduledIo) };
            if event.is_read_closed() || event.is_error() || event.is_priority() {
                io.read.no_skip.store(true, Ordering::Relaxed);
            }
            if event.is_readable()
                || event.is_read_closed()
                || event.is_error()
                || event.is_priority()
            {
                io.read.wake();
            }
            if event.is_writable() || event.is_write_closed() || event.is_error() {
                io.write.wake();
            }
        }
        drop(retired);
        let now = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last_poll.store(now, Ordering::Relaxed);
        true
    }

    /// How long since a poll last ended (zero while a worker waits in
    /// `epoll_wait`: it is as good as polling).
    pub(crate) fn since_last_poll(&self) -> Duration {
        if self.blocked.load(Ordering::Relaxed) {
            return Duration::ZERO;
        }
        let last = Duration::from_nanos(self.last_poll.load(Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(last)
    }

    /// Whether any socket is registered (a hint, for idle workers).
    pub(crate) fn has_sockets(&self) -> bool {
        self.sockets.load(Ordering::Relaxed) != 0
    }

    /// Interrupts a driver blocked in [`poll`](Self::poll).
    pub(crate) fn wake(&self) {
        // Fails only if the eventfd's counter would overflow, and then the
        // driver has a wake-up pending anyway.
        let _ = self.waker.wake();
    }
}

/// A registered socket's readiness, one [`Direction`] per side.
#[derive(Default)]
pub(crate) struct ScheduledIo {
    pub(crate) read: Direction,
    pub(crate) write: Direction,
}

/// One side of a socket: an event counter and the parked waiters.
pub(crate) struct Direction {
    /// Bumped (under `waiters`' lock) by every event for this side.
    events: AtomicU64,
    waiters: RawLock<WaitList>,
    /// The event count at which a short stream read found this side
    /// drained ([`NOT_DRAINED`]: none); see the module docs.
    drained: AtomicU64,
    /// Set (before its count is bumped) by an event that reported the
    /// side closed, an error or urgent data: a read may return at once
    /// without new bytes, so a short read no longer proves the next one
    /// would block (see the module docs).
    no_skip: AtomicBool,
}

/// `Direction::drained` before any short read.
const NOT_DRAINED: u64 = u64::MAX;

impl Default for Direction {
    fn default() -> Self {
        Direction {
            events: AtomicU64::new(0),
            waiters: RawLock::new(WaitList::new()),
            drained: AtomicU64::new(NOT_DRAINED),
            no_skip: AtomicBool::new(false),
        }
    }
}

impl Direction {
    /// The event count, read before trying a system call.
    pub(crate) fn seen(&self) -> u64 {
        self.events.load(Ordering::Acquire)
    }

    /// Whether a short stream read found this side drained at event count
    /// `seen` (the caller's [`seen`](Self::seen)): a read now would fail
    /// with `EAGAIN` until the next event.
    ///
    /// Relaxed loads: `no_skip` is set before the bump of the count the
    /// caller read with Acquire, so it is seen if that event was; a stale
    /// `drained` only costs a system call.
    pub(crate) fn is_drained(&self, seen: u64) -> bool {
        self.drained.load(Ordering::Relaxed) == seen && !self.no_skip.load(Ordering::Relaxed)
    }

    /// Records that a stream read begun at event count `seen` returned
    /// fewer bytes than asked, and more than none.
    pub(crate) fn mark_drained(&self, seen: u64) {
        self.drained.store(seen, Ordering::Relaxed);
    }

    /// Records an event and wakes every waiter.
    fn wake(&self) {
        let mut waiters = raw_lock(&self.waiters);
        self.events.fetch_add(1, Ordering::Release);
        while let Some((_, claim)) = waiters.pop_claim(|_| false) {
            claim.finish(0);
        }
    }

    /// Parks until an event newer than `seen`, or `deadline`.
    ///
    /// Returns `Err(TimedOut)` at the deadline; unwinds (after leaving the
    /// wait list) if shutdown cancels the coroutine.
    pub(crate) fn wait(
        &self,
        seen: u64,
        reason: WaitReason,
        deadline: Option<Instant>,
    ) -> io::Result<()> {
        let waiters = raw_lock(&self.waiters);
        if self.events.load(Ordering::Acquire) != seen {
            return Ok(()); // an event arrived since the caller's try
        }
        let unlink = |node: &Node| {
            raw_lock(&self.waiters).remove(node);
        };
        if wait_in(waiters, |w| w, 0, reason, deadline, 0, unlink).is_some() {
            return Ok(());
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "spindle: the socket's timeout (or an enclosing deadline) passed",
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    /// Stress for the driver's wait (scheduler/README.md, protocol 2c): a
    /// worker going to sleep as the reactor's driver is woken through the
    /// eventfd, whose event another thread's zero-timeout poll could take
    /// before the worker's `epoll_wait`. Here a thread polls without pause
    /// while a plain thread and a coroutine exchange messages, so the one
    /// worker goes to sleep and is woken for each of them. (The window is
    /// nanoseconds wide; `tests/loom_driver_wake.rs` is the check that
    /// finds the bug, this runs the real code through the same path.)
    #[test]
    fn a_wake_up_is_not_lost_to_another_poller() {
        let rt = crate::Runtime::builder().workers(1).build().unwrap();
        let shared = rt.handle().shared.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let poller = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    shared.reactor.poll(Some(Duration::ZERO));
                }
            })
        };
        // A registered socket: the idle worker sleeps at once instead of
        // spinning first (`Context::idle`).
        let sockets = rt.block_on(|| {
            let l = crate::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
            let (s, _) = l.accept().unwrap();
            (l, c, s)
        });
        let (to_co, from_main) = crate::channel::bounded::<u32>(0);
        let (to_main, from_co) = crate::channel::bounded::<u32>(0);
        let echo = rt.spawn(move || {
            for v in from_main.iter() {
                to_main.send(v + 1).unwrap();
            }
        });
        let word = &rt.handle().shared.remotes[0].sleep;
        for i in 0..10_000 {
            // Each message arrives while the worker is going to sleep or
            // asleep, never while it runs.
            while word.load(Ordering::SeqCst) != crate::scheduler::SLEEPING {
                std::hint::spin_loop();
            }
            to_co.send(i).unwrap();
            assert_eq!(
                from_co.recv_timeout(Duration::from_secs(20)),
                Ok(i + 1),
                "round trip {i}: the worker was never woken"
            );
        }
        drop(to_co);
        echo.join().unwrap();
        stop.store(true, Ordering::Relaxed);
        poller.join().unwrap();
        drop(sockets);
    }
}
