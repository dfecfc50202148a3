//! Busy work measured in time: rounds of a cheap integer hash (a
//! multiply–xorshift step, the finaliser of MurmurHash3), calibrated once
//! per process to rounds per microsecond, so that "1 µs of work" and
//! "10 µs of work" mean that much CPU time on this machine, whatever the
//! compiler makes of the loop.
//!
//! Spinning on the clock instead ("work until 10 µs have passed") would
//! count time the thread spent preempted by the kernel as work done; the
//! `no-yield` variant of `sched_latency` runs more threads than CPUs, so
//! that would flatter it. The Go reference (`bench/go/sched_latency`)
//! calibrates its own hash the same way, so a "loop" means a microsecond
//! of CPU in both.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// The multiplier of the hash step (MurmurHash3's `fmix64`).
const K: u64 = 0xff51_afd7_ed55_8ccd;
/// Rounds timed by one calibration sample.
const SAMPLE_ROUNDS: u64 = 1 << 21;
/// Calibration samples; the fastest one counts.
const SAMPLES: usize = 5;

/// `rounds` dependent hash steps from `x`. Each step needs the previous
/// one's result, so the loop can be neither vectorised nor skipped, and
/// `black_box` keeps the compiler from computing it ahead of time.
#[inline(never)]
pub fn spin(rounds: u64, x: u64) -> u64 {
    let mut x = black_box(x);
    for _ in 0..black_box(rounds) {
        x ^= x >> 33;
        x = x.wrapping_mul(K);
    }
    black_box(x)
}

/// Busy work calibrated to this machine.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Busy {
    /// Hash rounds that take one microsecond of CPU.
    rounds_per_us: f64,
}

impl Busy {
    /// Times [`spin`] a few times on the calling thread and keeps the
    /// fastest sample: the others were slowed by interruptions (the
    /// machine is shared; a preempted sample only ever looks slower).
    /// Takes about 5 ms.
    pub fn calibrate() -> Busy {
        let fastest = (0..SAMPLES)
            .map(|_| {
                let start = Instant::now();
                spin(SAMPLE_ROUNDS, 1);
                start.elapsed()
            })
            .min()
            .unwrap_or(Duration::from_millis(1))
            .max(Duration::from_nanos(1));
        Busy {
            rounds_per_us: SAMPLE_ROUNDS as f64 / (fastest.as_nanos() as f64 / 1e3),
        }
    }

    /// Busy work that takes `rounds_per_us` rounds per microsecond (for
    /// tests, which must not depend on the machine's speed).
    #[cfg(test)]
    pub fn with_rate(rounds_per_us: f64) -> Busy {
        Busy { rounds_per_us }
    }

    /// Hash rounds per microsecond.
    pub fn rounds_per_us(&self) -> f64 {
        self.rounds_per_us
    }

    /// The rounds that take `d` of CPU (at least one).
    pub fn rounds(&self, d: Duration) -> u64 {
        ((d.as_nanos() as f64 / 1e3 * self.rounds_per_us).round() as u64).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spin_is_the_hash_and_rounds_scale() {
        assert_eq!(spin(0, 42), 42);
        let mut x = 7u64;
        x ^= x >> 33;
        x = x.wrapping_mul(K);
        assert_eq!(spin(1, 7), x);
        let busy = Busy::with_rate(300.0);
        assert_eq!(busy.rounds(Duration::from_micros(10)), 3_000);
        assert_eq!(busy.rounds(Duration::ZERO), 1);
        assert!(Busy::calibrate().rounds_per_us() > 0.0);
    }
}
