//! Waiting out conditions that readiness does not signal.
//!
//! Three failures leave a socket "ready" (or never make it ready) while
//! retrying at once cannot succeed, so waiting for readiness would either
//! spin or hang:
//!
//! - `accept` failing with `EMFILE`/`ENFILE` (no descriptor left) or
//!   `ENOBUFS`/`ENOMEM`: the listener stays readable while its backlog is
//!   not empty, and nothing signals when a descriptor frees up;
//! - a Unix stream `connect` failing with `EAGAIN`: the listener's backlog
//!   is full, and the connecting socket has no readiness to wait for;
//! - a Unix datagram `send_to` failing with `EAGAIN`: the receiver's queue
//!   is full, and Linux arranges a wake-up only for connected senders.
//!
//! For these, the caller sleeps with exponential back-off ([`Backoff`]:
//! 1 ms, doubling up to 100 ms for accept and 10 ms for the others) and
//! retries, as Go's `net/http` server
//! does after a failed accept. The sleep parks a coroutine (its worker runs
//! the coroutines that will free the resource) or sleeps a plain thread.

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use super::evented::Options;

/// The first sleep.
const FIRST: Duration = Duration::from_millis(1);
/// The longest sleep of an accept loop: how late it may notice that
/// descriptors freed up. Long enough that a process out of descriptors
/// for minutes spends no measurable CPU on retries.
pub(crate) const ACCEPT_MAX: Duration = Duration::from_millis(100);
/// The longest sleep of a Unix `connect` or `send_to` waiting for room
/// at its peer: a busy peer usually makes room within milliseconds.
pub(crate) const PEER_MAX: Duration = Duration::from_millis(10);

/// Exponential back-off between retries.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    /// Sleeps of 1 ms, doubling up to `max`.
    pub(crate) const fn new(max: Duration) -> Backoff {
        Backoff { next: FIRST, max }
    }

    /// Starts again from the shortest sleep (after a success).
    pub(crate) fn reset(&mut self) {
        self.next = FIRST;
    }

    /// Sleeps for the next delay, cut short at `deadline`; returns `false`
    /// without sleeping if `deadline` has passed.
    pub(crate) fn sleep(&mut self, deadline: Option<Instant>) -> bool {
        let mut d = self.next;
        if let Some(deadline) = deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            d = d.min(left);
        }
        crate::sleep(d);
        self.next = (self.next * 2).min(self.max);
        true
    }
}

/// Whether an `accept` error means the process or the system ran out of
/// descriptors or socket memory: retrying at once cannot succeed.
pub(crate) fn is_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Whether an `accept` error concerns only the connection being accepted
/// (it was aborted or reset while it waited in the backlog): the accept
/// loop goes on with the next one.
pub(crate) fn is_aborted_connection(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ECONNABORTED | libc::EPROTO))
}

/// Prints, once per listener, why its accept loop is backing off and what
/// to do about it.
pub(crate) fn report_exhaustion(opts: &Options, listener: &dyn fmt::Debug, e: &io::Error) {
    if opts.exhaustion_reported() {
        return;
    }
    let remedy = match e.raw_os_error() {
        Some(libc::EMFILE) => format!(
            "the process has no file descriptor left (soft limit RLIMIT_NOFILE = {}); \
             raise it with `ulimit -n` (LimitNOFILE= for a systemd service), \
             or close idle connections sooner",
            nofile_limit()
        ),
        Some(libc::ENFILE) => "the system's file table is full; raise `fs.file-max` \
                               (sysctl) or close descriptors elsewhere"
            .to_string(),
        _ => "the kernel is out of memory for sockets; check `net.ipv4.tcp_mem` \
              and the memory of the machine"
            .to_string(),
    };
    eprintln!(
        "spindle: accept on {listener:?} failed: {e}: {remedy}. Pending connections \
         wait in the backlog; accepting resumes as descriptors free up (retrying every \
         {} ms at most). This is reported once per listener.",
        ACCEPT_MAX.as_millis()
    );
}

/// The soft `RLIMIT_NOFILE`, for the message above.
fn nofile_limit() -> String {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `rl` is a valid, writable rlimit for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
        return "unknown".to_string();
    }
    if rl.rlim_cur == libc::RLIM_INFINITY {
        "unlimited".to_string()
    } else {
        rl.rlim_cur.to_string()
    }
}

/// One turn of an accept loop (what `Incoming::next` does): runs
/// `accept` until it yields a connection or an error worth returning.
/// Exhaustion is reported once and waited out with `backoff`; aborted
/// connections are skipped.
pub(crate) fn accept_with_backoff<T>(
    opts: &Options,
    backoff: &mut Backoff,
    listener: &dyn fmt::Debug,
    mut accept: impl FnMut() -> io::Result<T>,
) -> io::Result<T> {
    loop {
        match accept() {
            Ok(conn) => {
                backoff.reset();
                return Ok(conn);
            }
            Err(e) if is_exhaustion(&e) => {
                report_exhaustion(opts, listener, &e);
                backoff.sleep(None);
            }
            Err(e) if is_aborted_connection(&e) => {}
            Err(e) => return Err(e),
        }
    }
}
