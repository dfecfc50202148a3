//! Time: sleeping, periodic ticks and deadlines, without blocking the
//! worker.
//!
//! ```
//! use std::time::Duration;
//! use spindle::time::{self, MissedTickBehavior};
//!
//! let rt = spindle::Runtime::builder().workers(1).build().unwrap();
//! rt.block_on(|| {
//!     // Wait, parking only this coroutine.
//!     time::sleep(Duration::from_millis(2));
//!
//!     // Do something every 5 ms; if a round overruns, skip the ticks it
//!     // missed instead of catching up with a burst.
//!     let mut every = time::interval(Duration::from_millis(5));
//!     every.set_missed_tick_behavior(MissedTickBehavior::Skip);
//!     for _ in 0..3 {
//!         every.tick();
//!     }
//!
//!     // Give every socket call inside the closure one shared deadline.
//!     time::timeout(Duration::from_secs(1), || {
//!         assert!(time::current_deadline().is_some());
//!     });
//!     assert_eq!(time::current_deadline(), None);
//! });
//! ```
//!
//! | item | what it does |
//! | --- | --- |
//! | [`sleep`], [`sleep_until`] | park the calling coroutine (or sleep the calling thread) until a time |
//! | [`interval`], [`interval_at`], [`Interval`], [`MissedTickBehavior`] | ticks at a fixed period, with a choice of what to do after falling behind |
//! | [`timeout`], [`deadline_scope`], [`current_deadline`] | a deadline for the socket calls made inside a closure |
//!
//! Channels that deliver the time (for `select!`) are in
//! [`channel`](crate::channel): [`after`](crate::channel::after),
//! [`at`](crate::channel::at), [`tick`](crate::channel::tick).
//!
//! # How a coroutine's timer works
//!
//! No thread runs per sleeper and nothing runs in the background. Each
//! worker keeps the deadlines of the coroutines parked on it with a
//! timeout in a 4-ary min-heap (`heap`): a timed park pushes
//! `(deadline, coroutine, park generation)` before the coroutine switches
//! out, in O(log n). The worker pops the due entries and unparks their
//! coroutines:
//!
//! - between coroutines, every 61st scheduling decision, and whenever it
//!   runs out of other work;
//! - before it sleeps, it uses the earliest deadline as its sleep's timeout.
//!
//! A park that ends early (an [`Unparker`](crate::Unparker) woke it, or a
//! channel operation with a timeout succeeded) leaves its entry in the
//! heap: cancellation is O(1) and lazy. Each park bumps the coroutine's
//! park generation, so an entry whose generation is old is recognised and
//! dropped when it comes due instead of waking the coroutine's later park.
//!
//! # Precision
//!
//! A timer never fires early: [`sleep`] and [`sleep_until`] return at or
//! after their deadline, whatever wakes the coroutine in between. How late
//! they return depends on how soon the worker looks at its heap: a worker
//! that runs one coroutine for a long stretch without a runtime call
//! (no `yield_now`, channel, lock, I/O or sleep) cannot fire timers
//! meanwhile, as a single-threaded event loop cannot. On plain threads
//! these functions use the OS's sleep.
//!
//! The `timers` workload of `spindle bench` measures the lateness:
//! 100,000 coroutines each sleeping 1–100 ms.

mod deadline;
pub(crate) mod heap;
mod interval;

use std::time::{Duration, Instant};

use crate::park::{self, WaitReason};

pub use deadline::{current_deadline, deadline_scope, timeout};
pub use interval::{Interval, MissedTickBehavior, interval, interval_at};

/// Puts the calling coroutine to sleep for at least `dur`; its worker runs
/// other coroutines meanwhile. On a plain OS thread, sleeps the thread.
///
/// Never returns early: a stray [`Unparker::unpark`](crate::Unparker::unpark)
/// aimed at the sleeping coroutine only makes it re-arm its timer. A
/// duration too large for the clock (such as [`Duration::MAX`]) sleeps
/// forever. `sleep(Duration::ZERO)` returns at once, without yielding.
///
/// An enclosing [`deadline_scope`] or [`timeout`] does not shorten a sleep
/// (see [`current_deadline`] for which calls it bounds).
///
/// A coroutine asleep when its runtime shuts down is unwound from here
/// (see [`Runtime`](crate::Runtime)).
///
/// ```
/// use std::time::{Duration, Instant};
/// let rt = spindle::Runtime::builder().workers(1).build().unwrap();
/// rt.block_on(|| {
///     let t = Instant::now();
///     spindle::time::sleep(Duration::from_millis(5));
///     assert!(t.elapsed() >= Duration::from_millis(5));
/// });
/// ```
pub fn sleep(dur: Duration) {
    match Instant::now().checked_add(dur) {
        Some(deadline) => sleep_until(deadline),
        // Beyond the clock's range: sleep "forever", in bounded steps.
        None => loop {
            sleep_until(Instant::now() + Duration::from_secs(86_400 * 365));
        },
    }
}

/// Puts the calling coroutine to sleep until `deadline`; returns at once
/// if it has passed. On a plain OS thread, sleeps the thread.
///
/// Like [`sleep`], never returns before `deadline`.
///
/// ```
/// use std::time::{Duration, Instant};
/// let rt = spindle::Runtime::builder().workers(1).build().unwrap();
/// rt.block_on(|| {
///     let deadline = Instant::now() + Duration::from_millis(3);
///     spindle::time::sleep_until(deadline);
///     assert!(Instant::now() >= deadline);
/// });
/// ```
pub fn sleep_until(deadline: Instant) {
    if crate::scheduler::worker::current_task().is_none() {
        let now = Instant::now();
        if deadline > now {
            // `thread::sleep` itself never returns early (it retries
            // after signals).
            std::thread::sleep(deadline - now);
        }
        return;
    }
    // A park may return before the deadline (an unpark token, a timer of
    // an earlier park that found the same generation): re-check, re-arm.
    while Instant::now() < deadline {
        park::park_reason(WaitReason::Sleep, Some(deadline));
    }
}
