//! `mutex`: 1,000 units each take one shared mutex 1,000 times and
//! increment the integer it guards; the final value is checked, and
//! `ns_per_lock` = total / (units × 1,000), per lock/unlock pair.
//!
//! Rows (`--n` sets the number of units in each; the locks per unit stay
//! 1,000):
//! - spindle: coroutines on a runtime with `--workers` workers, sharing a
//!   `spindle::sync::Mutex<u64>`;
//! - thread: OS threads sharing a `std::sync::Mutex<u64>`, restricted to
//!   `--workers` CPUs;
//! - process: forked processes sharing a `pthread_mutex_t` with
//!   `PTHREAD_PROCESS_SHARED` and the integer, both in a `MAP_SHARED` page
//!   ([`os::SharedMutex`]), restricted to `--workers` CPUs.
//!
//! # What the clock covers
//!
//! The locking only. Creating a thread or forking a process costs as much
//! as thousands of uncontended locks, and so does ending one; a unit that
//! ends while others still lock takes CPU time from them (measured here:
//! exits inside the timed window made the process row four times slower).
//! So every repetition runs the same five steps in every row:
//!
//! 1. each unit is created, reports its arrival, and waits at the start
//!    gate;
//! 2. once all have arrived, the clock starts and the gate opens: all
//!    units race for the lock at once;
//! 3. after its last unlock, each unit crosses the [`FinishLine`]; the
//!    last one across reads the clock (the end of the timed window) and
//!    reports that it has;
//! 4. each unit then waits at the exit gate, which opens on that report;
//! 5. the units are joined (waited for) and the result is checked.
//!
//! The gates and reports use each row's own kind of primitive: spindle
//! channels (a gate is a channel whose sender is dropped), std's `RwLock`
//! (write-locked until it opens) and `mpsc`, and pipes (a gate opens when
//! its last write end is closed). Each unit drops its end of a report
//! channel as soon as it is done with it, so a unit that died would show
//! up as a disconnected channel, a failed check, instead of a hang. A
//! coroutine is cheap enough to create and end that the gates change
//! little for spindle, but it gets the same treatment.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, mpsc};
use std::time::Duration;

use super::os::{self, Pinned, Pipe, Shared, SharedMutex};
use super::{BenchArgs, BenchError, REPS, Record, System, check, median_of, per, runtime};

/// Units per repetition when `--n` is not given.
pub const DEFAULT_UNITS: u64 = 1_000;
/// Lock/unlock pairs each unit makes.
pub const LOCKS_PER_UNIT: u64 = 1_000;

/// Where a repetition's clock stops: each unit crosses it after its last
/// unlock, and the last one across reads the clock
/// ([`os::monotonic_ns`], one clock for every process). Its state is two
/// inline atomics, so the process row can keep it in a shared page.
pub struct FinishLine {
    left: AtomicU64,
    at_ns: AtomicU64,
}

impl FinishLine {
    /// A line that `units` units will cross.
    pub fn new(units: u64) -> FinishLine {
        FinishLine {
            left: AtomicU64::new(units),
            at_ns: AtomicU64::new(0),
        }
    }

    /// Counts the calling unit across; the last one reads the clock and
    /// gets `true`. Async-signal-safe, so a forked child may call it.
    pub fn cross(&self) -> bool {
        // Relaxed: the decrements are read-modify-writes of one word, so
        // exactly one unit sees 1, and it crosses after every other unit
        // has (each after its own last unlock). The time is read by the
        // parent only after that unit's report (a channel send, or a pipe
        // write) has reached it, which orders this store before the load.
        let last = self.left.fetch_sub(1, Ordering::Relaxed) == 1;
        if last {
            self.at_ns.store(os::monotonic_ns(), Ordering::Relaxed);
        }
        last
    }

    /// The time from `start_ns` until the last unit crossed, or `None` if
    /// some unit has not crossed. Call only after the last one's report.
    pub fn since(&self, start_ns: u64) -> Option<Duration> {
        let at = self.at_ns.load(Ordering::Relaxed);
        (self.left.load(Ordering::Relaxed) == 0)
            .then(|| Duration::from_nanos(at.saturating_sub(start_ns)))
    }
}

/// What the parent saw of one repetition, for [`Outcome::check`].
struct Outcome {
    units: u64,
    locks: u64,
    /// Units that reported their arrival at the start gate.
    arrived: u64,
    /// Whether the last unit across the finish line reported it.
    crossed: bool,
    /// Units that ended normally.
    finished: u64,
    /// The integer the mutex guards, after all ended.
    value: u64,
    /// When the clock started ([`os::monotonic_ns`]).
    start_ns: u64,
}

impl Outcome {
    /// Checks every count and returns the timed window.
    fn check(self, finish: &FinishLine) -> Result<Duration, BenchError> {
        check("units at the start gate", self.arrived, self.units)?;
        check("finish reported", u64::from(self.crossed), 1)?;
        check("units finished", self.finished, self.units)?;
        check(
            "value guarded by the mutex",
            self.value,
            self.units * self.locks,
        )?;
        finish
            .since(self.start_ns)
            .ok_or_else(|| BenchError::Check("a unit never crossed the finish line".into()))
    }
}

/// One repetition with `units` spindle coroutines, each locking a shared
/// `spindle::sync::Mutex<u64>` `locks` times to add 1. Must run inside a
/// coroutine (`Runtime::block_on`).
pub fn coroutines(units: u64, locks: u64) -> Result<Duration, BenchError> {
    use spindle::channel::{bounded, unbounded};
    let mutex = Arc::new(spindle::sync::Mutex::new(0u64));
    let finish = Arc::new(FinishLine::new(units));
    // A gate is a channel nobody sends on: receiving parks until its only
    // sender is dropped, which disconnects it and wakes every receiver.
    let (open_start, start_gate) = bounded::<()>(0);
    let (open_exit, exit_gate) = bounded::<()>(0);
    let (arrive, arrivals) = unbounded::<()>();
    let (report, reported) = bounded::<()>(1);
    let handles: Vec<_> = (0..units)
        .map(|_| {
            let (mutex, finish) = (Arc::clone(&mutex), Arc::clone(&finish));
            let (start_gate, exit_gate) = (start_gate.clone(), exit_gate.clone());
            let (arrive, report) = (arrive.clone(), report.clone());
            spindle::spawn(move || {
                // The sends cannot fail: the parent keeps both receivers
                // until it has what it waits for.
                let _ = arrive.send(());
                drop(arrive);
                // Err(RecvError) is the gate opening.
                let _ = start_gate.recv();
                for _ in 0..locks {
                    *mutex.lock() += 1;
                }
                if finish.cross() {
                    let _ = report.send(());
                }
                drop(report);
                let _ = exit_gate.recv();
            })
        })
        .collect();
    drop((arrive, report));
    let arrived = arrivals.iter().take(units as usize).count() as u64;
    let start_ns = os::monotonic_ns();
    drop(open_start);
    let crossed = reported.recv().is_ok();
    drop(open_exit);
    let finished = handles.into_iter().filter_map(|h| h.join().ok()).count() as u64;
    let value = *mutex.lock();
    Outcome {
        units,
        locks,
        arrived,
        crossed,
        finished,
        value,
        start_ns,
    }
    .check(&finish)
}

/// One repetition with `units` OS threads (default stack size), each
/// locking a shared `std::sync::Mutex<u64>` `locks` times to add 1. Runs
/// on the CPUs the calling thread may use (the threads inherit its mask).
pub fn threads(units: u64, locks: u64) -> Result<Duration, BenchError> {
    let mutex = Arc::new(Mutex::new(0u64));
    let finish = Arc::new(FinishLine::new(units));
    // A gate is an `RwLock` write-locked here: each unit takes (and drops)
    // a read lock, which waits for the write unlock that wakes them all.
    let start_gate = Arc::new(RwLock::new(()));
    let exit_gate = Arc::new(RwLock::new(()));
    // The guards open their gates when dropped.
    let start_closed = start_gate.write().unwrap_or_else(|e| e.into_inner());
    let exit_closed = exit_gate.write().unwrap_or_else(|e| e.into_inner());
    let (arrive, arrivals) = mpsc::channel::<()>();
    let (report, reported) = mpsc::channel::<()>();
    let mut handles = Vec::with_capacity(units as usize);
    for _ in 0..units {
        let (mutex, finish) = (Arc::clone(&mutex), Arc::clone(&finish));
        let (start_gate, exit_gate) = (Arc::clone(&start_gate), Arc::clone(&exit_gate));
        let (arrive, report) = (arrive.clone(), report.clone());
        let spawned = std::thread::Builder::new().spawn(move || {
            let _ = arrive.send(());
            drop(arrive);
            drop(start_gate.read());
            for _ in 0..locks {
                *mutex.lock().unwrap_or_else(|e| e.into_inner()) += 1;
            }
            if finish.cross() {
                let _ = report.send(());
            }
            drop(report);
            drop(exit_gate.read());
        });
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => {
                // Open both gates so the threads already started end.
                drop((start_closed, exit_closed));
                handles.into_iter().for_each(|h| drop(h.join()));
                return Err(e.into());
            }
        }
    }
    drop((arrive, report));
    let arrived = arrivals.iter().take(units as usize).count() as u64;
    let start_ns = os::monotonic_ns();
    drop(start_closed);
    let crossed = reported.recv().is_ok();
    drop(exit_closed);
    let finished = handles.into_iter().filter_map(|h| h.join().ok()).count() as u64;
    let value = *mutex.lock().unwrap_or_else(|e| e.into_inner());
    Outcome {
        units,
        locks,
        arrived,
        crossed,
        finished,
        value,
        start_ns,
    }
    .check(&finish)
}

/// One repetition with `units` forked processes, each locking a shared
/// process-shared pthread mutex `locks` times to add 1 to the integer it
/// guards in the same shared page ([`SharedMutex`]). Runs on the CPUs the
/// calling thread may use (the children inherit its mask).
///
/// A gate is a pipe the children read: closing the parent's write end,
/// the last one once each child has closed its own copy, makes every read
/// return end of file at once. Arrivals and the finish report are bytes
/// on two more pipes; each child closes its write end of each right after
/// its byte (or, for the report, after the finish line), so a child that
/// died shows up as end of file instead of a hang.
pub fn processes(units: u64, locks: u64) -> Result<Duration, BenchError> {
    let shared = SharedMutex::new()?;
    let finish = Shared::new(FinishLine::new(units))?;
    let (mut start_gate, mut exit_gate) = (Pipe::new()?, Pipe::new()?);
    let (mut arrivals, mut reported) = (Pipe::new()?, Pipe::new()?);
    let (start_r, start_w) = (start_gate.read, start_gate.write);
    let (exit_r, exit_w) = (exit_gate.read, exit_gate.write);
    let (arrive, report) = (arrivals.write, reported.write);
    let mut pids = Vec::with_capacity(units as usize);
    for _ in 0..units {
        // The child makes only close, read, write, clock_gettime and
        // pthread lock/unlock calls on a process-shared mutex, which are
        // safe in a forked child of a multi-threaded process (see
        // `SharedMutex`).
        let forked = os::fork_run(|| {
            let close = |fd| {
                // SAFETY: `fd` is the child's own copy of a pipe end,
                // closed once and not used after.
                unsafe { libc::close(fd) };
            };
            // The gates' write ends are the parent's alone.
            close(start_w);
            close(exit_w);
            let arrived = os::put_byte(arrive);
            close(arrive);
            // End of file is the gate opening; a byte instead would be a
            // bug in the parent: fail rather than guess.
            if !arrived || os::get_byte(start_r) {
                return 2;
            }
            for _ in 0..locks {
                if shared.with(|v| *v += 1).is_none() {
                    return 1;
                }
            }
            if finish.cross() && !os::put_byte(report) {
                return 3;
            }
            close(report);
            if os::get_byte(exit_r) {
                return 2;
            }
            0
        });
        match forked {
            Ok(pid) => pids.push(pid),
            Err(e) => {
                // Open both gates so the children already forked end.
                start_gate.close_write();
                exit_gate.close_write();
                pids.iter().for_each(|&pid| drop(os::wait_ok(pid)));
                return Err(e.into());
            }
        }
    }
    // From here only the children hold write ends of the report pipes.
    arrivals.close_write();
    reported.close_write();
    let mut arrived = 0;
    while arrived < units && os::get_byte(arrivals.read) {
        arrived += 1;
    }
    let start_ns = os::monotonic_ns();
    start_gate.close_write();
    let crossed = os::get_byte(reported.read);
    exit_gate.close_write();
    let mut finished = 0;
    for &pid in &pids {
        finished += u64::from(os::wait_ok(pid)?);
    }
    let value = shared.with(|v| *v).unwrap_or(0);
    Outcome {
        units,
        locks,
        arrived,
        crossed,
        finished,
        value,
        start_ns,
    }
    .check(&finish)
}

/// `spindle bench mutex`.
pub fn run(args: &BenchArgs, mut emit: impl FnMut(Record)) -> Result<(), BenchError> {
    let units = args.n.unwrap_or(DEFAULT_UNITS);
    let locks = LOCKS_PER_UNIT;
    let (system, workers, total) = match args.system {
        System::Spindle => {
            let rt = runtime(args.workers)?;
            let total = rt.block_on(move || median_of(REPS, || coroutines(units, locks)))?;
            ("spindle", args.workers, total)
        }
        System::Thread => {
            let pin = Pinned::first(args.workers as usize)?;
            let total = median_of(REPS, || threads(units, locks))?;
            ("thread", pin.cpus() as u64, total)
        }
        System::Process => {
            let pin = Pinned::first(args.workers as usize)?;
            let total = median_of(REPS, || processes(units, locks))?;
            ("process", pin.cpus() as u64, total)
        }
    };
    emit(Record {
        workload: "mutex",
        system,
        n: units,
        workers,
        metric: "ns_per_lock",
        value: per(total, units * locks),
    });
    Ok(())
}
