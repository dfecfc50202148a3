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

#[cfg(loom)]
pub(crate) use loom::sync::{Mutex as RawLock, MutexGuard as RawGuard};
/// The lock of the channels' internal state: a spin lock outside loom
/// (see [`spin`]), loom's mutex in models.
#[cfg(not(loom))]
pub(crate) use spin::{SpinGuard as RawGuard, SpinLock as RawLock};

/// Locks a [`RawLock`].
#[cfg(not(loom))]
#[inline]
pub(crate) fn raw_lock<T>(m: &RawLock<T>) -> RawGuard<'_, T> {
    m.lock()
}

/// Locks a [`RawLock`].
#[cfg(loom)]
pub(crate) fn raw_lock<T>(m: &RawLock<T>) -> RawGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

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

/// A test-and-test-and-set spin lock for critical sections of a few dozen
/// instructions (a channel's buffer and wait lists).
///
/// Cheaper than `std::sync::Mutex` where it matters: unlocking is a plain
/// Release store, not a read-modify-write, and a channel hand-off locks
/// twice per message. Waiting spins with exponential back-off, then
/// yields the OS thread (the holder is another thread that was preempted;
/// no coroutine ever parks while holding one).
#[cfg(not(loom))]
mod spin {
    use std::cell::UnsafeCell;
    use std::ops::{Deref, DerefMut};
    use std::sync::atomic::{AtomicBool, Ordering};

    pub(crate) struct SpinLock<T> {
        locked: AtomicBool,
        value: UnsafeCell<T>,
    }

    // SAFETY: the lock gives one thread at a time access to `value`.
    unsafe impl<T: Send> Send for SpinLock<T> {}
    // SAFETY: as above: `&SpinLock` only hands out exclusive access.
    unsafe impl<T: Send> Sync for SpinLock<T> {}

    pub(crate) struct SpinGuard<'a, T> {
        lock: &'a SpinLock<T>,
    }

    impl<T> SpinLock<T> {
        pub(crate) const fn new(value: T) -> SpinLock<T> {
            SpinLock {
                locked: AtomicBool::new(false),
                value: UnsafeCell::new(value),
            }
        }

        #[inline]
        pub(crate) fn lock(&self) -> SpinGuard<'_, T> {
            // Acquire: pairs with the Release in `SpinGuard::drop`.
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                self.lock_contended();
            }
            SpinGuard { lock: self }
        }

        #[cold]
        #[inline(never)]
        fn lock_contended(&self) {
            let mut step = 0u32;
            loop {
                // Test before test-and-set: spin on a shared cache line.
                while self.locked.load(Ordering::Relaxed) {
                    if step < 7 {
                        for _ in 0..1u32 << step {
                            std::hint::spin_loop();
                        }
                        step += 1;
                    } else {
                        std::thread::yield_now();
                    }
                }
                if self
                    .locked
                    .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return;
                }
            }
        }
    }

    impl<T> Deref for SpinGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            // SAFETY: the guard holds the lock.
            unsafe { &*self.lock.value.get() }
        }
    }

    impl<T> DerefMut for SpinGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            // SAFETY: the guard holds the lock.
            unsafe { &mut *self.lock.value.get() }
        }
    }

    impl<T> Drop for SpinGuard<'_, T> {
        #[inline]
        fn drop(&mut self) {
            self.lock.locked.store(false, Ordering::Release);
        }
    }
}
