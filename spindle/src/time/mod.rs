//! Time: sleeping without blocking the worker.
//!
//! Each worker keeps the deadlines of its sleeping coroutines in a 4-ary
//! heap ([`heap`]) and checks it between coroutines and before it sleeps;
//! no thread per sleeper.

pub(crate) mod heap;

use std::time::{Duration, Instant};

use crate::park::{self, WaitReason};

/// Puts the calling coroutine to sleep for at least `dur`; its worker runs
/// other coroutines meanwhile. On a plain OS thread, sleeps the thread.
///
/// ```
/// use std::time::{Duration, Instant};
/// let rt = spindle::Runtime::builder().workers(1).build().unwrap();
/// rt.block_on(|| {
///     let t = Instant::now();
///     spindle::sleep(Duration::from_millis(5));
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

/// Puts the calling coroutine to sleep until `deadline` (returns at once if
/// it has passed).
pub fn sleep_until(deadline: Instant) {
    if crate::scheduler::worker::current_task().is_none() {
        let now = Instant::now();
        if deadline > now {
            std::thread::sleep(deadline - now);
        }
        return;
    }
    while Instant::now() < deadline {
        park::park_reason(WaitReason::Sleep, Some(deadline));
    }
}
