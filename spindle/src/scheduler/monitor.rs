//! The monitor thread (Go's sysmon), one per runtime.
//!
//! Today it has one job: make sure the reactor is polled. Idle workers
//! wait in `epoll_wait` and busy ones poll every 61 scheduling ticks, but
//! if every worker runs coroutines that take long between runtime calls,
//! readiness would wait for them; the monitor polls (without waiting)
//! whenever nobody has for [`POLL_GAP`], as Go's sysmon does every 10 ms.
//! Woken coroutines go to their own workers' inboxes. Scheduling policies
//! and preemption will give it more to do (see the repository's issues).
//!
//! It sleeps with back-off, from [`MIN_SLEEP`] while it keeps finding
//! work to [`MAX_SLEEP`] while it does not, and exits at shutdown
//! (`Shared::begin_shutdown` unparks it).

use std::sync::Arc;
use std::time::Duration;

use super::Shared;

/// Poll the reactor if nobody has for this long.
pub(crate) const POLL_GAP: Duration = Duration::from_millis(10);
/// The shortest sleep between checks.
const MIN_SLEEP: Duration = Duration::from_micros(20);
/// The longest sleep between checks.
const MAX_SLEEP: Duration = Duration::from_millis(10);

/// The monitor thread's body.
pub(crate) fn run(shared: Arc<Shared>) {
    let mut sleep = MIN_SLEEP;
    while !shared.is_shutdown() {
        let polled = shared.reactor.since_last_poll() >= POLL_GAP
            && shared.reactor.poll(Some(Duration::ZERO));
        sleep = if polled {
            MIN_SLEEP
        } else {
            (sleep * 2).min(MAX_SLEEP)
        };
        std::thread::park_timeout(sleep);
    }
}
