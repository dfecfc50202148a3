//! `spindle bench`: the workloads of `shared/bench/WORKLOADS.md`, each with a
//! spindle row and the OS-thread / OS-process baselines, printed as the JSON
//! lines that file specifies.
//!
//! Each workload file holds one function per measurement (one repetition,
//! returning what it measured) and a `run` that repeats them for the bench.
//! `spindle lab` calls the same measurement functions with smaller counts.

pub mod busy;
pub mod chan_pingpong;
pub mod histogram;
pub mod http_hello;
pub mod idle_conns;
pub mod idle_memory;
pub mod mutex;
pub mod os;
pub mod sched_latency;
pub mod server;
pub mod skynet;
pub mod spawn_join;
pub mod tcp_echo;
pub mod timers;
pub mod r#yield;

use std::fmt;
use std::io;
use std::time::Duration;

use clap::{Args, ValueEnum};

/// Repetitions whose median a bench row reports (after one warm-up).
pub const REPS: usize = 5;

/// A workload of WORKLOADS.md implemented here.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum Workload {
    /// Spawn N units that each add 1 to a shared counter, join them all.
    SpawnJoin,
    /// Two units on one worker (one CPU) switching back and forth.
    Yield,
    /// Resident memory per unit blocked on one shared latch.
    IdleMemory,
    /// The skynet recursion: 1,000,000 leaves summed up a 10-ary tree.
    Skynet,
    /// Two units passing a token back and forth over rendezvous channels.
    ChanPingpong,
    /// Many units incrementing one integer under one mutex.
    Mutex,
    /// Many units each sleeping 1–100 ms: how late they wake.
    Timers,
    /// An echo server under the shared load generator's 1,000 connections.
    TcpEcho,
    /// An HTTP/1.1 keep-alive server answering `GET /`, under wrk.
    HttpHello,
    /// Not in WORKLOADS.md (the issue of scheduling policies defines it):
    /// interactive coroutines' wake-up latency beside CPU-bound ones, per
    /// scheduling policy.
    SchedLatency,
    /// Not in WORKLOADS.md: resident memory per idle connection of an echo
    /// server, for `spindle lab`'s "serve 10,000 idle connections" rows.
    #[value(hide = true)]
    IdleConns,
}

impl Workload {
    /// The workload's id in WORKLOADS.md and in the JSON lines.
    pub fn id(self) -> &'static str {
        match self {
            Workload::SpawnJoin => "spawn_join",
            Workload::Yield => "yield",
            Workload::IdleMemory => "idle_memory",
            Workload::Skynet => "skynet",
            Workload::ChanPingpong => "chan_pingpong",
            Workload::Mutex => "mutex",
            Workload::Timers => "timers",
            Workload::TcpEcho => "tcp_echo",
            Workload::HttpHello => "http_hello",
            Workload::SchedLatency => "sched_latency",
            Workload::IdleConns => "idle_conns",
        }
    }
}

/// The thing measured: spindle's coroutines or an OS baseline.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum System {
    /// spindle coroutines on a `Runtime` with `--workers` workers.
    Spindle,
    /// OS threads (std), restricted to `--workers` CPUs.
    Thread,
    /// OS processes (fork, posix_spawn, pipes), restricted to `--workers` CPUs.
    Process,
}

impl System {
    /// The row's `system` field.
    pub fn id(self) -> &'static str {
        match self {
            System::Spindle => "spindle",
            System::Thread => "thread",
            System::Process => "process",
        }
    }
}

/// Arguments of `spindle bench`.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// The workload to run (see shared/bench/WORKLOADS.md).
    pub workload: Workload,
    /// Worker threads of the spindle runtime; for the OS rows, the number of
    /// CPUs the process may use (`yield` always uses one).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub workers: u64,
    /// Number of units (switches for `yield`, leaves for `skynet`, round
    /// trips for `chan_pingpong`, connections for `tcp_echo` and
    /// `http_hello`) instead of the workload's default.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub n: Option<u64>,
    /// Which row to measure.
    #[arg(long, value_enum, default_value_t = System::Spindle)]
    pub system: System,
    /// `tcp_echo`, `http_hello`: run only the server, on 127.0.0.1:PORT,
    /// until killed (no load, no JSON lines), for an outside load
    /// generator.
    #[arg(long, value_name = "PORT")]
    pub serve: Option<u16>,
    /// The flags of `sched_latency`.
    #[command(flatten)]
    pub sched: SchedArgs,
}

/// The flags only `sched_latency` takes (see [`sched_latency`] for the
/// load they shape); `None` means the workload's default.
#[derive(Args, Debug, Clone, Default)]
pub struct SchedArgs {
    /// `sched_latency`: the scheduling policy; every policy in turn when
    /// not given.
    #[arg(long, value_enum)]
    pub policy: Option<sched_latency::PolicyName>,
    /// `sched_latency`: whether the CPU-bound coroutines call
    /// `spindle::checkpoint()` in their loop (`yield`, the default) or make
    /// no runtime call at all (`no-yield`: the monitor must rescue the
    /// interactive ones).
    #[arg(long, value_enum)]
    pub hogs: Option<sched_latency::Hogs>,
    /// `sched_latency`: interactive coroutines (default 1,000, which
    /// overloads 2 CPUs: see the workload's docs).
    #[arg(long, value_name = "N")]
    pub interactive: Option<u64>,
    /// `sched_latency`: microseconds of work after each wake-up (default 10).
    #[arg(long = "work-us", value_name = "US")]
    pub work_us: Option<u64>,
    /// `sched_latency`: seconds the load runs, per policy (default 10).
    #[arg(long, value_name = "SECS")]
    pub secs: Option<f64>,
}

impl SchedArgs {
    /// Whether any flag was given.
    fn any(&self) -> bool {
        let SchedArgs {
            policy,
            hogs,
            interactive,
            work_us,
            secs,
        } = self;
        policy.is_some()
            || hogs.is_some()
            || interactive.is_some()
            || work_us.is_some()
            || secs.is_some()
    }
}

/// Why a bench could not produce a result.
#[derive(Debug)]
pub enum BenchError {
    /// A correctness check failed (wrong count or sum): exit status 3.
    Check(String),
    /// The workload has no row for the requested system, or the arguments
    /// do not fit it: a usage error, exit status 2.
    Usage(String),
    /// The OS or the runtime refused something.
    Io(io::Error),
}

impl From<io::Error> for BenchError {
    fn from(e: io::Error) -> Self {
        BenchError::Io(e)
    }
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BenchError::Check(m) => write!(f, "correctness check failed: {m}"),
            BenchError::Usage(m) => write!(f, "{m}"),
            BenchError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Fails with [`BenchError::Check`] unless `got == want`.
pub fn check(what: &str, got: u64, want: u64) -> Result<(), BenchError> {
    if got == want {
        Ok(())
    } else {
        Err(BenchError::Check(format!("{what}: got {got}, want {want}")))
    }
}

/// One JSON line of WORKLOADS.md.
#[derive(Debug, Clone)]
pub struct Record {
    /// Workload id.
    pub workload: &'static str,
    /// The thing measured (`spindle`, `thread`, `process`, ...).
    pub system: &'static str,
    /// Units (or switches, or leaves) in one repetition.
    pub n: u64,
    /// Workers (spindle) or CPUs (OS rows) the run could use.
    pub workers: u64,
    /// Metric name, exactly as WORKLOADS.md spells it.
    pub metric: &'static str,
    /// The measured value.
    pub value: f64,
}

impl Record {
    /// The record as one line of JSON (no trailing newline).
    pub fn to_json(&self) -> String {
        format!(
            "{{\"workload\":{},\"system\":{},\"n\":{},\"workers\":{},\"metric\":{},\"value\":{}}}",
            json_str(self.workload),
            json_str(self.system),
            self.n,
            self.workers,
            json_str(self.metric),
            json_num(self.value),
        )
    }
}

/// `s` as a JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `v` as a JSON number, rounded to a precision that fits its size
/// (Rust's `Display` for f64 never uses an exponent, so this is valid JSON).
/// Non-finite values become `null`.
pub fn json_num(v: f64) -> String {
    if !v.is_finite() {
        return "null".to_string();
    }
    let scale = if v.abs() >= 100.0 {
        10.0
    } else if v.abs() >= 1.0 {
        1000.0
    } else {
        1_000_000.0
    };
    format!("{}", (v * scale).round() / scale)
}

/// Runs `measure` once to warm up, then `reps` times, and returns the
/// median of the timed repetitions.
pub fn median_of(
    reps: usize,
    mut measure: impl FnMut() -> Result<Duration, BenchError>,
) -> Result<Duration, BenchError> {
    measure()?;
    let mut times = (0..reps.max(1))
        .map(|_| measure())
        .collect::<Result<Vec<_>, _>>()?;
    Ok(median(&mut times))
}

/// The median of `xs` (the mean of the middle two for an even count).
pub fn median(xs: &mut [Duration]) -> Duration {
    xs.sort_unstable();
    let mid = xs.len() / 2;
    if xs.len() % 2 == 1 {
        xs[mid]
    } else {
        (xs[mid - 1] + xs[mid]) / 2
    }
}

/// Nanoseconds per unit: `total / n`.
pub fn per(total: Duration, n: u64) -> f64 {
    total.as_nanos() as f64 / n as f64
}

/// A spindle runtime with `workers` workers.
pub fn runtime(workers: u64) -> Result<spindle::Runtime, BenchError> {
    Ok(spindle::Runtime::builder()
        .workers(workers as usize)
        .build()?)
}

/// Runs `spindle bench`, printing each JSON line to stdout as soon as it is
/// measured.
pub fn run(args: &BenchArgs) -> Result<(), BenchError> {
    let emit = |r: Record| println!("{}", r.to_json());
    if args.serve.is_some() && !matches!(args.workload, Workload::TcpEcho | Workload::HttpHello) {
        return Err(BenchError::Usage(format!(
            "--serve runs the server of a socket workload (tcp_echo, http_hello); `{}` has none",
            args.workload.id()
        )));
    }
    if args.sched.any() && args.workload != Workload::SchedLatency {
        return Err(BenchError::Usage(format!(
            "--policy, --hogs, --interactive, --work-us and --secs shape the `sched_latency` \
             load; `{}` takes none of them",
            args.workload.id()
        )));
    }
    match args.workload {
        Workload::SpawnJoin => spawn_join::run(args, emit),
        Workload::Yield => r#yield::run(args, emit),
        Workload::IdleMemory => idle_memory::run(args, emit),
        Workload::Skynet => skynet::run(args, emit),
        Workload::ChanPingpong => chan_pingpong::run(args, emit),
        Workload::Mutex => mutex::run(args, emit),
        Workload::Timers => timers::run(args, emit),
        Workload::TcpEcho => tcp_echo::run(args, emit),
        Workload::HttpHello => http_hello::run(args, emit),
        Workload::IdleConns => idle_conns::run(args, emit),
        Workload::SchedLatency => sched_latency::run(args, |l| println!("{}", l.to_json())),
    }
}

/// The usage error for a workload that WORKLOADS.md defines no row for.
pub fn no_row(args: &BenchArgs) -> BenchError {
    BenchError::Usage(format!(
        "the `{}` workload has no `{}` row in WORKLOADS.md (its table shows \"—\"); \
         run it with `--system spindle`",
        args.workload.id(),
        args.system.id()
    ))
}

/// What a child `spindle bench` printed.
pub struct ChildOutput {
    /// Its JSON lines.
    pub stdout: String,
    /// Its notes.
    pub stderr: String,
}

/// Runs `spindle bench <args>` in a fresh copy of this program and returns
/// what it printed, so that a memory measurement starts from a clean process
/// (a second measurement in the same process would reuse pages the first
/// one left resident). A child's correctness failure is reported as ours.
pub fn in_child(args: &[String]) -> Result<ChildOutput, BenchError> {
    let out = std::process::Command::new(std::env::current_exe()?)
        .arg("bench")
        .args(args)
        .output()?;
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    let (stdout, stderr) = (text(out.stdout), text(out.stderr));
    let what = format!("`spindle bench {}`", args.join(" "));
    match out.status.code() {
        Some(0) => Ok(ChildOutput { stdout, stderr }),
        Some(3) => Err(BenchError::Check(format!("{what}: {}", stderr.trim()))),
        _ => Err(BenchError::Io(io::Error::other(format!(
            "{what} exited with {}: {}",
            out.status,
            stderr.trim()
        )))),
    }
}

/// The `value` of the first JSON line with `"metric":"<metric>"` in
/// `lines` (as printed by [`Record::to_json`], possibly with more fields
/// after `value`).
pub fn value_of(lines: &str, metric: &str) -> Option<f64> {
    let key = format!("\"metric\":{}", json_str(metric));
    let line = lines.lines().find(|l| l.contains(&key))?;
    let rest = &line[line.find("\"value\":")? + "\"value\":".len()..];
    // The value ends at the next field or at the end of the object.
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

#[cfg(test)]
mod tests;
