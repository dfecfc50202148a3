//! std-or-loom primitives.
//!
//! The only place that imports `std::sync` atomics, locks and thread
//! parking for the runtime's protocols. Under `--cfg loom` the same names
//! come from [loom], so the protocols built on them (the park state word,
//! see [`crate::park::state`]; the wait queues of [`crate::sync`] and
//! [`crate::channel`]) can be model-checked by `tests/loom_*.rs`, where loom
//! threads play plain OS threads calling spindle's primitives.
//!
//! [loom]: https://docs.rs/loom

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};

/// Locks an internal lock, ignoring poison: spindle never runs user code
/// (nor anything else that can panic) while holding one.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Thread parking for plain OS threads (loom threads in models).
pub(crate) mod thread {
    #[cfg(not(loom))]
    pub(crate) use std::thread::{Thread, current, park};

    #[cfg(loom)]
    pub(crate) use loom::thread::{Thread, current, park};

    /// Parks until `deadline` at the latest. Under loom, time does not
    /// pass: this is a plain park, so models wait for a notification.
    #[cfg(not(loom))]
    pub(crate) fn park_until(deadline: std::time::Instant) {
        let now = std::time::Instant::now();
        if deadline > now {
            std::thread::park_timeout(deadline - now);
        }
    }

    #[cfg(loom)]
    pub(crate) fn park_until(_deadline: std::time::Instant) {
        loom::thread::park();
    }
}
