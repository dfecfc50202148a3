//! `timers`: N units each sleep a random 1–100 ms and record how late they
//! woke: `lateness = wake − (call + duration)`, where `wake` is the first
//! clock reading after the sleep returned. Metrics: `p50_late_us` and
//! `p99_late_us` over the units of a repetition, and `total_ms`, from the
//! first spawn to the last join.
//!
//! Rows (`--n` sets the units):
//! - spindle: 100,000 coroutines on a runtime with `--workers` workers,
//!   each calling `spindle::time::sleep`;
//! - thread: 10,000 OS threads (default stack size), each calling
//!   `std::thread::sleep`, restricted to `--workers` CPUs.
//!
//! The durations are the same in every row and run: drawn from a
//! xorshift64 generator with a fixed seed, uniform over [1 ms, 100 ms) in
//! microsecond steps (whole milliseconds would make a thousand units share
//! each deadline, a burst no real program has). Unit `i` sleeps the `i`-th
//! duration, and units are spawned in order, each starting its sleep as
//! soon as it runs.
//!
//! Correctness: every unit must report (none lost, none panicked) and none
//! may wake before its duration is over; otherwise the bench exits with
//! status 3. Each row prints the median of each metric over 5 repetitions
//! after a warm-up (which also pays for first-touching the stacks); the
//! figures of every repetition, with the 99.9th percentile and the
//! maximum, go to stderr.

use std::time::{Duration, Instant};

use super::os::Pinned;
use super::{BenchArgs, BenchError, REPS, Record, System, check, no_row, runtime};

/// Units per repetition of the spindle row when `--n` is not given.
pub const DEFAULT_N_SPINDLE: u64 = 100_000;
/// Units per repetition of the thread row.
pub const DEFAULT_N_THREAD: u64 = 10_000;
/// The generator's seed: every row and every run sleeps the same durations.
pub const SEED: u64 = 0x9E37_79B9_7F4A_7C15;

/// Shortest sleep.
const MIN_SLEEP: Duration = Duration::from_millis(1);
/// Sleeps are shorter than this.
const MAX_SLEEP: Duration = Duration::from_millis(100);

/// The durations unit `0..n` sleep: uniform over [1 ms, 100 ms) in whole
/// microseconds, from [`SEED`].
pub fn durations(n: u64) -> Vec<Duration> {
    let span = (MAX_SLEEP - MIN_SLEEP).as_micros() as u64;
    let mut x = SEED;
    (0..n)
        .map(|_| {
            // Marsaglia's xorshift64; the modulo bias (2^64 mod 99,000)
            // is far below anything measured here.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            MIN_SLEEP + Duration::from_micros(x % span)
        })
        .collect()
}

/// Sleeps `d` with `sleep` and returns how late it woke, in nanoseconds
/// (negative: early, which the check rejects).
fn late_ns(d: Duration, sleep: impl FnOnce(Duration)) -> i64 {
    let start = Instant::now();
    sleep(d);
    let slept = start.elapsed();
    // Both fit an i64 of nanoseconds for 292 years.
    slept.as_nanos() as i64 - d.as_nanos() as i64
}

/// What one repetition measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lateness {
    /// Median lateness.
    pub p50: Duration,
    /// 99th-percentile lateness.
    pub p99: Duration,
    /// 99.9th-percentile lateness (stderr only).
    pub p999: Duration,
    /// Worst lateness (stderr only).
    pub max: Duration,
    /// First spawn to last join.
    pub total: Duration,
}

/// The `q`-quantile of ascending `sorted` (nearest rank: the smallest value
/// with at least `q` of the values at or below it).
fn quantile(sorted: &[u64], q: f64) -> u64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Checks one repetition's reports (one per unit that finished) and
/// summarises them.
fn summarise(n: u64, reports: Vec<i64>, total: Duration) -> Result<Lateness, BenchError> {
    check("units that woke and reported", reports.len() as u64, n)?;
    if let Some(&early) = reports.iter().min().filter(|&&ns| ns < 0) {
        let count = reports.iter().filter(|&&ns| ns < 0).count();
        return Err(BenchError::Check(format!(
            "{count} units woke before their sleep was over (the earliest by {} µs)",
            early.unsigned_abs() as f64 / 1e3
        )));
    }
    let mut late: Vec<u64> = reports.into_iter().map(|ns| ns as u64).collect();
    late.sort_unstable();
    let at = |q| Duration::from_nanos(quantile(&late, q));
    Ok(Lateness {
        p50: at(0.5),
        p99: at(0.99),
        p999: at(0.999),
        max: at(1.0),
        total,
    })
}

/// One repetition with `n` spindle coroutines; must run inside a coroutine
/// (`Runtime::block_on`). The caller spawns every unit, then joins them
/// in order.
pub fn coroutines(n: u64) -> Result<Lateness, BenchError> {
    let durations = durations(n);
    let start = Instant::now();
    let handles: Vec<_> = durations
        .into_iter()
        .map(|d| spindle::spawn(move || late_ns(d, spindle::time::sleep)))
        .collect();
    let reports: Vec<i64> = handles.into_iter().filter_map(|h| h.join().ok()).collect();
    summarise(n, reports, start.elapsed())
}

/// One repetition with `n` OS threads (default stack size), on the CPUs
/// the calling thread may use (the threads inherit its mask).
pub fn threads(n: u64) -> Result<Lateness, BenchError> {
    let durations = durations(n);
    let start = Instant::now();
    let mut handles = Vec::with_capacity(n as usize);
    for d in durations {
        // A failed spawn ends the repetition; the threads already started
        // end on their own within 100 ms, and are joined first.
        match std::thread::Builder::new().spawn(move || late_ns(d, std::thread::sleep)) {
            Ok(h) => handles.push(h),
            Err(e) => {
                handles.into_iter().for_each(|h| drop(h.join()));
                return Err(e.into());
            }
        }
    }
    let reports: Vec<i64> = handles.into_iter().filter_map(|h| h.join().ok()).collect();
    summarise(n, reports, start.elapsed())
}

/// Runs `measure` once to warm up and `reps` times more; returns every
/// timed repetition.
pub fn repeat(
    reps: usize,
    mut measure: impl FnMut() -> Result<Lateness, BenchError>,
) -> Result<Vec<Lateness>, BenchError> {
    measure()?;
    (0..reps.max(1)).map(|_| measure()).collect()
}

/// The median of one metric over `reps`.
pub fn median_by(reps: &[Lateness], metric: impl Fn(&Lateness) -> Duration) -> Duration {
    let mut xs: Vec<Duration> = reps.iter().map(metric).collect();
    super::median(&mut xs)
}

/// `spindle bench timers`.
pub fn run(args: &BenchArgs, mut emit: impl FnMut(Record)) -> Result<(), BenchError> {
    let (system, n, workers, reps) = match args.system {
        System::Spindle => {
            let n = args.n.unwrap_or(DEFAULT_N_SPINDLE);
            let rt = runtime(args.workers)?;
            let reps = rt.block_on(move || repeat(REPS, || coroutines(n)))?;
            ("spindle", n, args.workers, reps)
        }
        System::Thread => {
            let n = args.n.unwrap_or(DEFAULT_N_THREAD);
            let pin = Pinned::first(args.workers as usize)?;
            let reps = repeat(REPS, || threads(n))?;
            ("thread", n, pin.cpus() as u64, reps)
        }
        System::Process => return Err(no_row(args)),
    };
    let us = |d: Duration| d.as_nanos() as f64 / 1e3;
    for (i, r) in reps.iter().enumerate() {
        eprintln!(
            "timers {system} workers={workers} n={n} rep {}: p50 {:.0} µs, p99 {:.0} µs, \
             p99.9 {:.0} µs, max {:.0} µs, total {:.1} ms",
            i + 1,
            us(r.p50),
            us(r.p99),
            us(r.p999),
            us(r.max),
            r.total.as_secs_f64() * 1e3,
        );
    }
    let record = |metric, value| Record {
        workload: "timers",
        system,
        n,
        workers,
        metric,
        value,
    };
    emit(record("p50_late_us", us(median_by(&reps, |r| r.p50))));
    emit(record("p99_late_us", us(median_by(&reps, |r| r.p99))));
    emit(record(
        "total_ms",
        median_by(&reps, |r| r.total).as_secs_f64() * 1e3,
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::Workload;

    #[test]
    fn durations_are_fixed_and_in_range() {
        let a = durations(10_000);
        assert_eq!(a, durations(10_000), "same seed, same durations");
        assert!(a.iter().all(|d| (MIN_SLEEP..MAX_SLEEP).contains(d)));
        // Spread over the whole range, not bunched.
        assert!(a.iter().any(|d| *d < Duration::from_millis(5)));
        assert!(a.iter().any(|d| *d > Duration::from_millis(95)));
        assert_eq!(durations(3), a[..3]);
    }

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let xs: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&xs, 0.5), 50);
        assert_eq!(quantile(&xs, 0.99), 99);
        assert_eq!(quantile(&xs, 1.0), 100);
        assert_eq!(quantile(&[7], 0.5), 7);
    }

    #[test]
    fn the_check_rejects_lost_and_early_units() {
        let ok = summarise(3, vec![5_000, 1_000, 3_000], Duration::from_millis(9)).unwrap();
        assert_eq!(ok.p50, Duration::from_micros(3));
        assert_eq!(ok.max, Duration::from_micros(5));
        let lost = summarise(3, vec![1, 2], Duration::ZERO).unwrap_err();
        assert!(matches!(lost, BenchError::Check(_)), "{lost}");
        let early = summarise(2, vec![10, -2_000], Duration::ZERO).unwrap_err();
        assert!(early.to_string().contains("1 units woke before"), "{early}");
    }

    #[test]
    fn both_rows_measure_and_print_three_lines() {
        for system in [System::Spindle, System::Thread] {
            let args = BenchArgs {
                workload: Workload::Timers,
                workers: 2,
                n: Some(50),
                system,
                serve: None,
                sched: Default::default(),
            };
            let mut records = Vec::new();
            run(&args, |r| records.push(r)).unwrap();
            let metrics: Vec<_> = records.iter().map(|r| r.metric).collect();
            assert_eq!(metrics, ["p50_late_us", "p99_late_us", "total_ms"]);
            for r in &records {
                assert_eq!((r.workload, r.system, r.n), ("timers", system.id(), 50));
                assert!(r.value >= 0.0 && (1..=2).contains(&r.workers), "{r:?}");
            }
            // Every unit slept at least 1 ms; the slowest up to 100 ms.
            assert!(records[2].value >= 1.0);
        }
        let process = BenchArgs {
            workload: Workload::Timers,
            workers: 1,
            n: Some(5),
            system: System::Process,
            serve: None,
            sched: Default::default(),
        };
        assert!(matches!(run(&process, |_| {}), Err(BenchError::Usage(_))));
    }
}
