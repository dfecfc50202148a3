//! `spindle lab`: what a process, a thread and a coroutine cost on this
//! machine to create, to switch, to keep alive, to serve an idle
//! connection, to take a lock and to hand a value to another of their
//! kind, beside the textbook figures, with a verdict per row.
//!
//! Every figure comes from the measuring functions of [`crate::bench`] (one
//! implementation of each measurement), with smaller counts and 3
//! repetitions after a warm-up so the whole lab takes seconds, not minutes.
//! Like is compared with like: all rows run on one CPU (coroutines on a
//! 1-worker runtime); the same pinned pipe ping-pong runs between two
//! threads and between two processes, so their difference is what switching
//! address spaces costs; memory rows each run in a fresh copy of this
//! program. The idle-connection rows hold up to 10,000 connections to an
//! echo server in that copy (a coroutine or an OS thread per connection;
//! both ends of each in the one process, so the descriptor limit may cap
//! the count, which the row then says). The lock rows take the unit's own
//! kind of mutex (spindle's, std's, a process-shared pthread mutex), the
//! hand-off rows pass a token over its own kind of channel (spindle's
//! rendezvous channel, std's `sync_channel(0)`, a pipe). The wake-up rows
//! put thousands of units to sleep for 1–100 ms each and show how late
//! the 99th percentile woke.
//!
//! A last section, "scheduling policies" ([`policies`]), runs one small
//! scenario under every scheduling policy and shows them side by side, as a
//! table and as a Gantt chart written to `spindle-lab-policies.svg` in the
//! current directory.

mod gantt;
mod policies;
mod row;

use std::io::IsTerminal;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::bench::busy::Busy;
use crate::bench::chan_pingpong::{self, Peer};
use crate::bench::os::Pinned;
use crate::bench::{
    BenchArgs, BenchError, System, Workload, idle_conns, idle_memory, in_child, median_of, mutex,
    per, runtime, spawn_join, timers, value_of, r#yield,
};
use row::{Kind, Row, Textbook};

/// Arguments of `spindle lab`.
#[derive(Args, Debug, Clone)]
pub struct LabArgs {
    /// Print the rows as JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Repetitions (after one warm-up) whose median a lab row shows.
const LAB_REPS: usize = 3;

/// One row to measure: its description and how to measure it.
struct Step {
    cost: &'static str,
    unit: &'static str,
    how: String,
    metric: &'static str,
    n: u64,
    kind: Kind,
    textbook: Option<Textbook>,
    measure: Box<dyn FnOnce() -> Result<f64, BenchError>>,
}

/// A time row: `measure` returns the median total for `n` operations.
fn timed(
    cost: &'static str,
    unit: &'static str,
    how: String,
    metric: &'static str,
    n: u64,
    textbook: Option<Textbook>,
    measure: impl FnOnce() -> Result<Duration, BenchError> + 'static,
) -> Step {
    Step {
        cost,
        unit,
        how,
        metric,
        n,
        kind: Kind::Time,
        textbook,
        measure: Box::new(move || measure().map(|t| per(t, n))),
    }
}

/// A memory row: `idle_memory` at `n` units, measured in a fresh process.
fn kept(unit: &'static str, system: System, n: u64, textbook: Option<Textbook>) -> Step {
    let how = match system {
        System::Thread => format!("{n} blocked on a Condvar, RSS growth / {n}"),
        _ => format!("{n} parked on a latch, RSS growth / {n}"),
    };
    let args = BenchArgs {
        workload: Workload::IdleMemory,
        workers: 1,
        n: Some(n),
        system,
        serve: None,
        sched: Default::default(),
    };
    Step {
        cost: "keep alive",
        unit,
        how,
        metric: "bytes_per_unit",
        n,
        kind: Kind::Memory,
        textbook,
        measure: Box::new(move || {
            let out = in_child(&idle_memory::child_args(&args, n))?;
            value_of(&out.stdout, "bytes_per_unit").ok_or_else(|| {
                BenchError::Io(std::io::Error::other(format!(
                    "no bytes_per_unit line in {:?}",
                    out.stdout
                )))
            })
        }),
    }
}

/// A memory row: an echo server holding up to 10,000 idle connections, one
/// `unit` each, measured in a fresh process (`spindle bench idle_conns`).
/// Both ends of every connection live in that process, so when the hard
/// descriptor limit leaves no room for 20,000 descriptors, fewer
/// connections are opened, and the row says so.
fn served(unit: &'static str, system: System) -> Step {
    let want = idle_conns::DEFAULT_CONNS;
    let (n, hard) = idle_conns::max_conns(want).unwrap_or((0, 0));
    let mut how = format!("{n} idle TCP connections, a {unit} each, RSS growth / {n}");
    if n < want {
        how += &format!(
            " (fd limit {hard} < 2 × {want} + {})",
            idle_conns::RESERVED_FDS
        );
    }
    Step {
        cost: "serve an idle connection",
        unit,
        how,
        metric: "bytes_per_conn",
        n,
        kind: Kind::Memory,
        textbook: None,
        measure: Box::new(move || {
            let out = in_child(&idle_conns::child_args(system, n))?;
            value_of(&out.stdout, "bytes_per_conn").ok_or_else(|| {
                BenchError::Io(std::io::Error::other(format!(
                    "no bytes_per_conn line in {:?}",
                    out.stdout
                )))
            })
        }),
    }
}

/// On one CPU: the measurement runs with the calling thread pinned.
fn pinned<T>(f: impl FnOnce() -> Result<T, BenchError>) -> Result<T, BenchError> {
    let _pin = Pinned::first(1)?;
    f()
}

/// A timer row: the median over [`LAB_REPS`] repetitions of the 99th
/// percentile of how late `n` units sleeping 1–100 ms woke (`spindle bench
/// timers`, which reports the same figure in µs as `p99_late_us`).
fn late(
    unit: &'static str,
    how: String,
    n: u64,
    measure: impl FnOnce() -> Result<Vec<timers::Lateness>, BenchError> + 'static,
) -> Step {
    Step {
        cost: "wake from sleep (p99 late)",
        unit,
        how,
        metric: "p99_late_ns",
        n,
        kind: Kind::Time,
        textbook: None,
        measure: Box::new(move || {
            let reps = measure()?;
            Ok(timers::median_by(&reps, |r| r.p99).as_nanos() as f64)
        }),
    }
}

/// The lab's rows, in the order they are measured and shown.
fn steps() -> Vec<Step> {
    const SWITCHES_CO: u64 = 200_000;
    const SWITCHES_OS: u64 = 50_000;
    const SPAWN_CO: u64 = 100_000;
    const SPAWN_THREAD: u64 = 2_000;
    const SPAWN_FORK: u64 = 200;
    const SPAWN_POSIX: u64 = 100;
    // Lock rows: units × locks per unit; the figure is per lock.
    const LOCK_UNITS: u64 = 100;
    const LOCKS: u64 = mutex::LOCKS_PER_UNIT;
    const HANDOFF_CO: u64 = 100_000;
    const HANDOFF_OS: u64 = 10_000;
    const SLEEPERS_CO: u64 = 10_000;
    const SLEEPERS_OS: u64 = 1_000;
    vec![
        timed(
            "create+join",
            "coroutine",
            format!("spindle::spawn + join ×{SPAWN_CO}, 1 worker"),
            "ns_per_op",
            SPAWN_CO,
            None,
            || runtime(1)?.block_on(|| median_of(LAB_REPS, || spawn_join::coroutines(SPAWN_CO))),
        ),
        timed(
            "create+join",
            "thread",
            format!("std::thread::spawn + join ×{SPAWN_THREAD}, 1 CPU"),
            "ns_per_op",
            SPAWN_THREAD,
            Some(row::THREAD_CREATE),
            || pinned(|| median_of(LAB_REPS, || spawn_join::threads(SPAWN_THREAD))),
        ),
        timed(
            "create+join",
            "process",
            format!("fork + _exit + waitpid ×{SPAWN_FORK}, 1 CPU"),
            "ns_per_op",
            SPAWN_FORK,
            None,
            || pinned(|| median_of(LAB_REPS, || spawn_join::forks(SPAWN_FORK))),
        ),
        timed(
            "create+join",
            "process",
            format!("posix_spawn /bin/true + waitpid ×{SPAWN_POSIX}, 1 CPU"),
            "ns_per_op",
            SPAWN_POSIX,
            None,
            || pinned(|| median_of(LAB_REPS, || spawn_join::posix_spawns(SPAWN_POSIX))),
        ),
        timed(
            "switch",
            "coroutine",
            format!("yield_now between 2 ×{SWITCHES_CO}, 1 worker"),
            "ns_per_switch",
            SWITCHES_CO,
            Some(row::GOROUTINE_SWITCH),
            || runtime(1)?.block_on(|| median_of(LAB_REPS, || r#yield::coroutines(SWITCHES_CO))),
        ),
        timed(
            "switch",
            "thread",
            format!("Mutex+Condvar turns ×{SWITCHES_OS}, 1 CPU"),
            "ns_per_switch",
            SWITCHES_OS,
            Some(row::THREAD_SWITCH),
            || median_of(LAB_REPS, || r#yield::futex_threads(SWITCHES_OS)),
        ),
        timed(
            "switch",
            "thread",
            format!("1-byte pipe ping-pong ×{SWITCHES_OS}, 1 CPU"),
            "ns_per_switch",
            SWITCHES_OS,
            Some(row::THREAD_SWITCH),
            || {
                median_of(LAB_REPS, || {
                    r#yield::pipe_pingpong(SWITCHES_OS, Peer::Thread)
                })
            },
        ),
        timed(
            "switch",
            "process",
            format!("1-byte pipe ping-pong ×{SWITCHES_OS}, 1 CPU"),
            "ns_per_switch",
            SWITCHES_OS,
            Some(row::PROCESS_SWITCH),
            || {
                median_of(LAB_REPS, || {
                    r#yield::pipe_pingpong(SWITCHES_OS, Peer::Process)
                })
            },
        ),
        kept(
            "coroutine",
            System::Spindle,
            10_000,
            Some(row::GOROUTINE_STACK),
        ),
        kept(
            "coroutine",
            System::Spindle,
            100_000,
            Some(row::GOROUTINE_STACK),
        ),
        kept("thread", System::Thread, 10_000, None),
        served("coroutine", System::Spindle),
        served("thread", System::Thread),
        timed(
            "lock+unlock",
            "coroutine",
            format!("spindle::sync::Mutex, {LOCK_UNITS} × {LOCKS} locks, 1 worker"),
            "ns_per_lock",
            LOCK_UNITS * LOCKS,
            Some(row::MUTEX_LOCK),
            || {
                runtime(1)?
                    .block_on(|| median_of(LAB_REPS, || mutex::coroutines(LOCK_UNITS, LOCKS)))
            },
        ),
        timed(
            "lock+unlock",
            "thread",
            format!("std::sync::Mutex, {LOCK_UNITS} × {LOCKS} locks, 1 CPU"),
            "ns_per_lock",
            LOCK_UNITS * LOCKS,
            Some(row::MUTEX_LOCK),
            || pinned(|| median_of(LAB_REPS, || mutex::threads(LOCK_UNITS, LOCKS))),
        ),
        timed(
            "lock+unlock",
            "process",
            format!("process-shared pthread mutex, {LOCK_UNITS} × {LOCKS} locks, 1 CPU"),
            "ns_per_lock",
            LOCK_UNITS * LOCKS,
            Some(row::MUTEX_LOCK),
            || pinned(|| median_of(LAB_REPS, || mutex::processes(LOCK_UNITS, LOCKS))),
        ),
        timed(
            "send+reply",
            "coroutine",
            format!("spindle::channel::bounded(0) ping-pong ×{HANDOFF_CO}, 1 worker"),
            "ns_per_roundtrip",
            HANDOFF_CO,
            None,
            || {
                runtime(1)?
                    .block_on(|| median_of(LAB_REPS, || chan_pingpong::coroutines(HANDOFF_CO)))
            },
        ),
        timed(
            "send+reply",
            "thread",
            format!("mpsc::sync_channel(0) ping-pong ×{HANDOFF_OS}, 1 CPU"),
            "ns_per_roundtrip",
            HANDOFF_OS,
            None,
            || pinned(|| median_of(LAB_REPS, || chan_pingpong::threads(HANDOFF_OS))),
        ),
        timed(
            "send+reply",
            "process",
            format!("1-byte pipe ping-pong ×{HANDOFF_OS}, 1 CPU"),
            "ns_per_roundtrip",
            HANDOFF_OS,
            None,
            || pinned(|| median_of(LAB_REPS, || chan_pingpong::pipes(HANDOFF_OS, Peer::Process))),
        ),
        late(
            "coroutine",
            format!("{SLEEPERS_CO} spindle::time::sleep of 1–100 ms, 1 worker"),
            SLEEPERS_CO,
            || {
                runtime(1)?
                    .block_on(|| timers::repeat(LAB_REPS, || timers::coroutines(SLEEPERS_CO)))
            },
        ),
        late(
            "thread",
            format!("{SLEEPERS_OS} std::thread::sleep of 1–100 ms, 1 CPU"),
            SLEEPERS_OS,
            || pinned(|| timers::repeat(LAB_REPS, || timers::threads(SLEEPERS_OS))),
        ),
    ]
}

/// Runs `spindle lab`: measures every row, then prints the table (or the
/// JSON lines). Fails with the first correctness failure, after printing.
pub fn run(args: &LabArgs) -> Result<(), BenchError> {
    let steps = steps();
    let all_policies = spindle::policy::Policy::all();
    let bar = ProgressBar::new((steps.len() + all_policies.len()) as u64);
    if std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} measuring {msg}") {
            bar.set_style(style);
        }
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    // The OS rows are measured first: a fork copies the parent's page
    // tables, and once spindle has run, its stack regions (kept for reuse)
    // make those tables large, which would charge the OS rows for spindle.
    let mut order: Vec<usize> = (0..steps.len()).collect();
    order.sort_by_key(|&i| steps[i].unit == "coroutine");
    let mut steps: Vec<Option<Step>> = steps.into_iter().map(Some).collect();
    let mut rows: Vec<Option<Row>> = vec![None; steps.len()];
    let mut failure = None;
    for i in order {
        let Some(step) = steps[i].take() else {
            continue;
        };
        bar.set_message(format!("{} of a {}", step.cost, step.unit));
        let value = (step.measure)();
        bar.inc(1);
        let value = value.map_err(|e| {
            let text = e.to_string();
            if failure.is_none() || matches!(e, BenchError::Check(_)) {
                failure = Some(e);
            }
            text
        });
        rows[i] = Some(Row {
            cost: step.cost,
            unit: step.unit,
            how: step.how,
            metric: step.metric,
            n: step.n,
            kind: step.kind,
            value,
            textbook: step.textbook,
        });
    }
    let rows: Vec<Row> = rows.into_iter().flatten().collect();
    // Spindle rows, so measured after the OS rows (see above).
    let busy = Busy::calibrate();
    let mut runs = Vec::with_capacity(all_policies.len());
    for policy in all_policies {
        let name = policy.name().to_string();
        bar.set_message(format!("the {name} policy"));
        let run = policies::measure(policy, busy);
        bar.inc(1);
        runs.push(run.map_err(|e| {
            let text = e.to_string();
            if failure.is_none() || matches!(e, BenchError::Check(_)) {
                failure = Some(e);
            }
            (name, text)
        }));
    }
    bar.finish_and_clear();
    let measured: Vec<_> = runs
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .cloned()
        .collect();
    let svg_note = match std::fs::write(policies::SVG_FILE, policies::svg(&measured)) {
        Ok(()) => format!(
            "The Gantt chart of every policy is in {}.",
            policies::SVG_FILE
        ),
        Err(e) => {
            let note = format!(
                "The Gantt chart could not be written to {}: {e}",
                policies::SVG_FILE
            );
            failure.get_or_insert(BenchError::Io(e));
            note
        }
    };
    if args.json {
        for r in &rows {
            println!("{}", r.to_json());
        }
        for r in &measured {
            println!("{}", r.to_json(policies::SVG_FILE));
        }
    } else {
        print_report(&rows);
        policies::print_table(&runs, &svg_note);
    }
    failure.map_or(Ok(()), Err)
}

/// The table, with a header naming the machine and footnotes naming the
/// textbook's sources.
fn print_report(rows: &[Row]) {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!(
        "What a process, a thread and a coroutine cost on this machine \
         ({cpus} CPUs, Linux {}); every row ran on one CPU.\n",
        kernel.trim()
    );
    row::print_table(rows);
    let pipe = |unit| {
        rows.iter()
            .find(|r| r.cost == "switch" && r.unit == unit && r.how.contains("pipe"))
            .and_then(|r| r.value.clone().ok())
    };
    if let (Some(p), Some(t)) = (pipe("process"), pipe("thread")) {
        // A difference of two measured figures, so it can come out negative
        // when the two are within noise of each other.
        let extra = if p > t {
            format!("adds {} per switch here", row::time(p - t))
        } else {
            format!(
                "adds nothing measurable here ({} vs {})",
                row::time(p),
                row::time(t)
            )
        };
        println!(
            "\nSwitching address spaces (the process pipe ping-pong beside the same \
             between two threads) {extra}."
        );
    }
    println!(
        "\nTextbook figures (operating-systems course material): thread switch 1–5 µs, process switch \
         10–50 µs, goroutine switch ~100 ns, goroutine stack 2 KB (\"~\" and single figures \
         count as held within a factor of 2).\n\
         Memory is resident memory (VmRSS) only: kernel page tables are not in it \
         (`spindle bench idle_memory` reports them on stderr), nor are socket buffers.\n\
         * commonly cited, outside that course material (lock/unlock: Jeff Dean's \"Latency \
         numbers every programmer should know\"). Each time is the median of {LAB_REPS} runs \
         after a warm-up; `spindle bench` measures the same with larger counts."
    );
}
