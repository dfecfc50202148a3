//! `sched_latency`: how soon a scheduling policy lets an interactive
//! coroutine run after its sleep ends, while CPU-bound coroutines keep
//! every worker busy, and what that costs the CPU-bound ones.
//!
//! ```text
//! spindle bench sched_latency --workers N [--policy NAME] [--hogs yield|no-yield]
//!                             [--interactive 1000] [--work-us 10] [--secs 10]
//! ```
//!
//! The load, for `--secs` seconds on a runtime of `--workers` workers with
//! the policy `--policy` (every policy in turn when it is not given):
//!
//! - **hogs**: 2 CPU-bound coroutines per worker, each looping over 1 µs of
//!   hashing ([`busy`](super::busy), calibrated to this machine) and
//!   counting its loops. With `--hogs yield` (the default) each loop ends
//!   with `spindle::checkpoint()`, the explicit yield point: it returns at
//!   once unless the coroutine's slice or budget has run out. With
//!   `--hogs no-yield` the loop makes no runtime call at all; it only reads
//!   the stop flag. Such a hog holds its worker until the run ends; the
//!   monitor is what keeps the rest of the program moving (it reports the
//!   held worker, moves what it may elsewhere and starts extra workers), so
//!   in that variant the interactive coroutines are spawned *migratable*:
//!   a parked one may be rescued from a held worker. The monitor may then
//!   start one extra worker per hog (`Builder::max_extra_workers`; the
//!   default, one per worker, would go to the hogs that had not started
//!   yet, which are moved first and hold their new workers in turn, and
//!   leave none for the interactive coroutines); the kernel time-slices
//!   all those threads on the machine's CPUs.
//! - **interactive**: `--interactive` coroutines, each looping: sleep 1 ms,
//!   read the clock, record `wake latency = now − the sleep's due time`
//!   (due = the clock before the call + 1 ms), then `--work-us` µs of
//!   hashing. Coroutine `i` of `n` first sleeps `i/n` ms unmeasured, so
//!   their wake-ups are spread over the millisecond as independent
//!   clients' would be, not one burst.
//!
//! Under `priority`, interactive coroutines get `Priority::realtime(0)` and
//! hogs `Priority::normal(0)`: the textbook use of the classes (a latency-
//! sensitive task above batch work), under which a woken interactive
//! coroutine should run at its worker's next runtime call. Under
//! `fair` every coroutine has nice 0, so the interactive ones are favoured
//! only by their small virtual run time. The other policies take no
//! per-coroutine settings.
//!
//! # The default load does not fit 2 CPUs
//!
//! The issue's defaults, 1,000 interactive coroutines each doing 10 µs of
//! work per ~1 ms sleep, ask for 1,000 × 10 µs / 1.01 ms ≈ 9.9 CPU-seconds
//! per second: five times what this 2-core machine has, before the hogs
//! take anything. Every policy then runs an overloaded queue, and the
//! wake latency measures how long that queue is (the interactive
//! coroutines wake later, so they ask for less, and the system settles
//! where they use whatever the policy lets them have). The bench keeps the
//! defaults so the figures can be set beside the issue's; to see a
//! policy's latency rather than an overload, run a load that fits:
//! `interactive × work_us / 1,000 µs` well below `--workers`, e.g.
//! `--interactive 100` with `--workers 2` (≈1 of 2 CPUs) or
//! `--interactive 50` with `--workers 1` (≈½ CPU). `--secs 1` keeps a smoke
//! run short.
//!
//! # Output
//!
//! One JSON line per metric, in WORKLOADS.md's format (`workload`,
//! `system`, `n` = interactive coroutines, `workers`, `metric`, `value`)
//! plus `policy`, `hogs`, `interactive`, `work_us`, `secs` and
//! `forced_yields` (the runtime's count of yields it asked for at a
//! checkpoint or other runtime call). Metrics: `p50_wake_us` and
//! `p99_wake_us` (over every wake-up of every interactive coroutine;
//! `null` if none ever woke) and `cpu_loops_per_sec` (all hogs' loops per
//! second of the run, i.e. microseconds of hashing per second: at most
//! `workers × 1,000,000`). The run's details (p99.9, maximum, wake-ups,
//! the monitor's counters, the calibration) go to stderr.
//!
//! Unlike the other workloads this is one long run, not the median of 5:
//! each percentile is already over up to millions of wake-ups. A launcher
//! coroutine spawns the load (hogs first) and returns; the calling OS
//! thread keeps time, so it is on time even while every worker is held,
//! and no coroutine but the load's competes for the workers.
//!
//! The Go reference, the same load with goroutines on `GOMAXPROCS` Ps and
//! the same flags and JSON lines, is `bench/go/sched_latency` (`cd
//! bench/go/sched_latency && go run . --workers 2`).
//!
//! Correctness: every coroutine must finish (none panicked) and no sleep
//! may end before it was due; otherwise the bench exits with status 3.

use std::io;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::ValueEnum;
use spindle::JoinHandle;
use spindle::policy::{Policy, Priority};
use spindle::runtime::Metrics;

use super::busy::{Busy, spin};
use super::histogram::Histogram;
use super::{BenchArgs, BenchError, Record, System, check, json_num, json_str};

/// Interactive coroutines when `--interactive` is not given (the issue's).
pub const DEFAULT_INTERACTIVE: u64 = 1_000;
/// Busy work per wake-up when `--work-us` is not given, in µs.
pub const DEFAULT_WORK_US: u64 = 10;
/// Run time when `--secs` is not given.
pub const DEFAULT_SECS: f64 = 10.0;
/// CPU-bound coroutines per worker.
pub const HOGS_PER_WORKER: u64 = 2;
/// How long an interactive coroutine sleeps each time.
pub const SLEEP: Duration = Duration::from_millis(1);
/// The work of one hog loop.
pub const LOOP_WORK: Duration = Duration::from_micros(1);

/// A policy named on the command line (`--policy`); the names are
/// `spindle::policy::Policy`'s.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum PolicyName {
    /// First in, first out: the default fast path.
    Fifo,
    /// Round robin with time slices.
    RoundRobin,
    /// Strict priority classes (Realtime > Normal > Idle).
    Priority,
    /// Multi-level feedback queue.
    Mlfq,
    /// Weighted fair share by virtual run time.
    Fair,
    /// Shortest predicted burst first.
    ShortestFirst,
}

impl PolicyName {
    /// The policy's name, as `Policy::name` and `Policy::from_str` spell it.
    pub fn id(self) -> &'static str {
        match self {
            PolicyName::Fifo => "fifo",
            PolicyName::RoundRobin => "round-robin",
            PolicyName::Priority => "priority",
            PolicyName::Mlfq => "mlfq",
            PolicyName::Fair => "fair",
            PolicyName::ShortestFirst => "shortest-first",
        }
    }

    /// The policy with the library's default parameters.
    pub fn policy(self) -> Result<Policy, BenchError> {
        Policy::from_str(self.id()).map_err(|e| {
            BenchError::Usage(format!(
                "spindle does not know the policy `{}`: {e}",
                self.id()
            ))
        })
    }
}

/// What the CPU-bound coroutines do between loops (`--hogs`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Hogs {
    /// Call `spindle::checkpoint()` after every loop.
    Yield,
    /// Make no runtime call at all; interactive coroutines are migratable.
    NoYield,
}

impl Hogs {
    /// The flag's value, for the JSON lines.
    pub fn id(self) -> &'static str {
        match self {
            Hogs::Yield => "yield",
            Hogs::NoYield => "no-yield",
        }
    }
}

/// One run's parameters.
#[derive(Clone, Debug)]
pub struct Load {
    /// Worker threads.
    pub workers: u64,
    /// The policy of the runtime.
    pub policy: Policy,
    /// What hogs do between loops.
    pub hogs: Hogs,
    /// Interactive coroutines.
    pub interactive: u64,
    /// Busy work per wake-up.
    pub work: Duration,
    /// How long the load runs.
    pub run_for: Duration,
}

/// What one run measured.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Every interactive wake-up's latency, in ns.
    pub wake: Histogram,
    /// Interactive coroutines that never completed a sleep (starved).
    pub never_woke: u64,
    /// All hogs' loops.
    pub loops: u64,
    /// From the first spawn to the stop signal.
    pub elapsed: Duration,
    /// The runtime's counters at the end.
    pub metrics: Metrics,
}

impl Outcome {
    /// The `q`-quantile of wake latency in µs (NaN, printed `null`, when
    /// nothing woke).
    pub fn wake_us(&self, q: f64) -> f64 {
        self.wake.quantile(q).map_or(f64::NAN, |ns| ns as f64 / 1e3)
    }

    /// Hog loops per second of the run.
    pub fn loops_per_sec(&self) -> f64 {
        self.loops as f64 / self.elapsed.as_secs_f64()
    }
}

/// A CPU-bound coroutine that offers the runtime a switch after every loop.
fn hog_checkpoint(stop: &AtomicBool, rounds: u64) -> u64 {
    let (mut loops, mut x) = (0, 1);
    // Relaxed: the flag publishes no data (the result goes back through
    // `join`, which synchronizes); a stale read costs one more loop.
    while !stop.load(Ordering::Relaxed) {
        x = spin(rounds, x);
        loops += 1;
        spindle::checkpoint();
    }
    loops
}

/// A CPU-bound coroutine that never calls into the runtime until the end.
fn hog_no_yield(stop: &AtomicBool, rounds: u64) -> u64 {
    let (mut loops, mut x) = (0, 1);
    // Relaxed, as in `hog_checkpoint`.
    while !stop.load(Ordering::Relaxed) {
        x = spin(rounds, x);
        loops += 1;
    }
    loops
}

/// What an interactive coroutine reports: its wake latencies, and how many
/// of its sleeps ended early (a runtime bug the check rejects).
type Report = (Histogram, u64);

/// An interactive coroutine: after `offset`, sleep [`SLEEP`], record how
/// late it woke, hash for `rounds`, until `stop`.
fn interactive(stop: &AtomicBool, offset: Duration, rounds: u64) -> Report {
    let (mut wake, mut early) = (Histogram::new(), 0);
    spindle::sleep(offset);
    let mut x = 1;
    // Relaxed, as in `hog_checkpoint`.
    while !stop.load(Ordering::Relaxed) {
        let due = Instant::now() + SLEEP;
        spindle::sleep(SLEEP);
        match Instant::now().checked_duration_since(due) {
            Some(late) => wake.record(late.as_nanos() as u64),
            None => early += 1,
        }
        x = spin(rounds, x);
    }
    (wake, early)
}

/// The load's coroutines: hogs (returning their loops) and interactive
/// ones.
type Spawned = (Vec<JoinHandle<u64>>, Vec<JoinHandle<Report>>);

/// Spawns the load's coroutines on the current runtime: the hogs first,
/// then the interactive ones. Runs in a launcher coroutine, so the
/// coroutines start out in its worker's queues, where idle workers steal
/// them, as a program's own spawns do.
fn spawn_load(load: &Load, stop: &Arc<AtomicBool>, busy: Busy) -> io::Result<Spawned> {
    let is_priority = matches!(load.policy, Policy::Priority);
    let is_fair = matches!(load.policy, Policy::Fair(_));
    let loop_rounds = busy.rounds(LOOP_WORK);
    let work_rounds = busy.rounds(load.work);
    let mut hogs = Vec::new();
    for i in 0..load.workers * HOGS_PER_WORKER {
        let mut b = spindle::Builder::new().name(format!("hog {i}"));
        if is_priority {
            b = b.priority(Priority::normal(0));
        } else if is_fair {
            b = b.nice(0);
        }
        let stop = Arc::clone(stop);
        hogs.push(match load.hogs {
            Hogs::Yield => b.spawn(move || hog_checkpoint(&stop, loop_rounds))?,
            Hogs::NoYield => b.spawn(move || hog_no_yield(&stop, loop_rounds))?,
        });
    }
    let mut interactives = Vec::new();
    for i in 0..load.interactive {
        let mut b = spindle::Builder::new();
        if is_priority {
            b = b.priority(Priority::realtime(0));
        } else if is_fair {
            b = b.nice(0);
        }
        if load.hogs == Hogs::NoYield {
            // SAFETY: an interactive coroutine holds, across its sleeps,
            // only a histogram (a Vec), an Arc and plain integers: nothing
            // thread-bound (no Rc, no thread-local reference, no lock
            // guard), so it may resume on any worker.
            b = unsafe { b.migratable() };
        }
        let stop = Arc::clone(stop);
        let offset = Duration::from_nanos(SLEEP.as_nanos() as u64 * i / load.interactive);
        interactives.push(b.spawn(move || interactive(&stop, offset, work_rounds))?);
    }
    Ok((hogs, interactives))
}

/// Runs `load` once on a fresh runtime. A launcher coroutine spawns the
/// load; the calling thread (not a coroutine, so it keeps time even while
/// every worker is held) waits out the run, stops it and joins.
pub fn measure(load: &Load, busy: Busy) -> Result<Outcome, BenchError> {
    let mut builder = spindle::Runtime::builder()
        .workers(load.workers as usize)
        .policy(load.policy.clone());
    if load.hogs == Hogs::NoYield {
        // See the module docs: room for every hog's worker and then some.
        builder = builder.max_extra_workers((load.workers * HOGS_PER_WORKER) as usize);
    }
    let rt = builder.build()?;
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let (hogs, interactives) = rt.block_on(|| spawn_load(load, &stop, busy))?;

    std::thread::sleep(load.run_for.saturating_sub(start.elapsed()));
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed();

    let spawned = hogs.len() + interactives.len();
    let mut finished = 0;
    let mut loops = 0;
    for h in hogs {
        if let Ok(n) = h.join() {
            loops += n;
            finished += 1;
        }
    }
    let (mut wake, mut early, mut never_woke) = (Histogram::new(), 0, 0);
    for h in interactives {
        if let Ok((w, e)) = h.join() {
            never_woke += u64::from(w.is_empty() && e == 0);
            wake.merge(&w);
            early += e;
            finished += 1;
        }
    }
    check("coroutines that finished", finished, spawned as u64)?;
    if early > 0 {
        return Err(BenchError::Check(format!(
            "{early} sleeps of {SLEEP:?} ended before they were due"
        )));
    }
    Ok(Outcome {
        wake,
        never_woke,
        loops,
        elapsed,
        metrics: rt.handle().metrics(),
    })
}

/// One JSON line of `sched_latency`: WORKLOADS.md's fields and the run's.
#[derive(Clone, Debug)]
pub struct Line {
    /// The common fields.
    pub record: Record,
    /// The policy's name (`go` for the Go reference).
    pub policy: String,
    /// `yield` or `no-yield`.
    pub hogs: &'static str,
    /// Interactive coroutines.
    pub interactive: u64,
    /// Busy work per wake-up, in µs.
    pub work_us: u64,
    /// Run time in seconds.
    pub secs: f64,
    /// Yields the runtime asked for.
    pub forced_yields: u64,
}

impl Line {
    /// The line as JSON (no trailing newline).
    pub fn to_json(&self) -> String {
        let common = self.record.to_json();
        format!(
            "{},\"policy\":{},\"hogs\":{},\"interactive\":{},\"work_us\":{},\"secs\":{},\
             \"forced_yields\":{}}}",
            common.strip_suffix('}').unwrap_or(&common),
            json_str(&self.policy),
            json_str(self.hogs),
            self.interactive,
            self.work_us,
            json_num(self.secs),
            self.forced_yields,
        )
    }
}

/// `--secs` as a duration, if it is a positive number of seconds.
fn run_for(secs: f64) -> Result<Duration, BenchError> {
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| BenchError::Usage(format!("--secs must be positive, not {secs}")))
}

/// `spindle bench sched_latency`.
pub fn run(args: &BenchArgs, mut emit: impl FnMut(Line)) -> Result<(), BenchError> {
    if args.system != System::Spindle {
        return Err(BenchError::Usage(format!(
            "`sched_latency` has only a spindle row (`--system {}` has no policies); its \
             reference is the Go program in bench/go/sched_latency",
            args.system.id()
        )));
    }
    if args.n.is_some() {
        return Err(BenchError::Usage(
            "`sched_latency` counts its coroutines with --interactive, not --n".into(),
        ));
    }
    let s = &args.sched;
    let interactive = s.interactive.unwrap_or(DEFAULT_INTERACTIVE);
    let work_us = s.work_us.unwrap_or(DEFAULT_WORK_US);
    let secs = s.secs.unwrap_or(DEFAULT_SECS);
    let hogs = s.hogs.unwrap_or(Hogs::Yield);
    let run_for = run_for(secs)?;
    let policies = match s.policy {
        Some(name) => vec![name.policy()?],
        None => Policy::all(),
    };
    let busy = Busy::calibrate();
    eprintln!(
        "sched_latency: {:.0} hash rounds per µs; {} hogs and {interactive} interactive \
         coroutines asking for ≈{:.1} CPU-seconds per second on {} workers",
        busy.rounds_per_us(),
        args.workers * HOGS_PER_WORKER,
        interactive as f64 * work_us as f64 / SLEEP.as_micros() as f64,
        args.workers,
    );
    for policy in policies {
        let name = policy.name().to_string();
        let load = Load {
            workers: args.workers,
            policy,
            hogs,
            interactive,
            work: Duration::from_micros(work_us),
            run_for,
        };
        let out = measure(&load, busy)?;
        let m = &out.metrics;
        let us = |q| match out.wake_us(q) {
            v if v.is_nan() => "—".to_string(),
            v => format!("{v:.0} µs"),
        };
        eprintln!(
            "sched_latency {name} hogs={} workers={} interactive={interactive}: wake p50 {}, \
             p99 {}, p99.9 {}, max {} over {} wake-ups ({} coroutines never woke); hogs \
             {:.0} loops/s; forced yields {}, held workers {}, extra workers started {} \
             retired {}, coroutines moved {}",
            hogs.id(),
            args.workers,
            us(0.5),
            us(0.99),
            us(0.999),
            us(1.0),
            out.wake.len(),
            out.never_woke,
            out.loops_per_sec(),
            m.forced_yields,
            m.held_workers,
            m.extra_workers_started,
            m.extra_workers_retired,
            m.coroutines_moved,
        );
        for (metric, value) in [
            ("p50_wake_us", out.wake_us(0.5)),
            ("p99_wake_us", out.wake_us(0.99)),
            ("cpu_loops_per_sec", out.loops_per_sec()),
        ] {
            emit(Line {
                record: Record {
                    workload: "sched_latency",
                    system: "spindle",
                    n: interactive,
                    workers: args.workers,
                    metric,
                    value,
                },
                policy: name.clone(),
                hogs: hogs.id(),
                interactive,
                work_us,
                secs,
                forced_yields: m.forced_yields,
            });
        }
    }
    Ok(())
}
