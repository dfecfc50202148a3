//! Futex wait and wake on a 32-bit word: how an idle worker sleeps.
//!
//! The kernel checks `*word == expected` atomically with going to sleep, so a
//! wake that changes the word before the wait is never lost; every caller
//! still re-checks its condition after returning (spurious wake-ups and
//! `EINTR` are allowed).

use std::sync::atomic::AtomicU32;
use std::time::Duration;

use rustix::thread::futex;

/// Sleeps while `*word == expected`, at most `timeout` if one is given.
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|d| futex::Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: d.subsec_nanos() as _,
    });
    // EAGAIN (the word changed), EINTR and ETIMEDOUT all mean "look again".
    let _ = futex::wait(word, futex::Flags::PRIVATE, expected, ts.as_ref());
}

/// Wakes at most one thread sleeping on `word`.
pub(crate) fn wake_one(word: &AtomicU32) {
    let _ = futex::wake(word, futex::Flags::PRIVATE, 1);
}
