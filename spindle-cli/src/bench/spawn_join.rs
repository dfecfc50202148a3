//! `spawn_join`: spawn N units that each add 1 to a shared atomic counter,
//! then join all of them; `ns_per_op` = total / N.
//!
//! Rows: spindle coroutines (N = 100,000), OS threads (N = 10,000), OS
//! processes by fork + `_exit` + waitpid (N = 1,000, the counter lives in a
//! shared page) and, separately, posix_spawn of `/bin/true` (N = 200, which
//! cannot touch a counter: every child's exit status 0 is the check).

use std::ffi::CStr;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::os::{self, Pinned, SharedCounter};
use super::{BenchArgs, BenchError, REPS, Record, System, check, median_of, per, runtime};

/// Units per repetition for each row when `--n` is not given.
pub const DEFAULT_N_SPINDLE: u64 = 100_000;
/// OS threads per repetition.
pub const DEFAULT_N_THREAD: u64 = 10_000;
/// Forked processes per repetition.
pub const DEFAULT_N_FORK: u64 = 1_000;
/// posix_spawn'ed `/bin/true` processes per repetition.
pub const DEFAULT_N_POSIX_SPAWN: u64 = 200;

/// One repetition with spindle coroutines; must run inside a coroutine
/// (`Runtime::block_on`). Every coroutine is spawned before the first join.
pub fn coroutines(n: u64) -> Result<Duration, BenchError> {
    let counter = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let counter = Arc::clone(&counter);
            spindle::spawn(move || {
                counter.fetch_add(1, Ordering::Relaxed);
            })
        })
        .collect();
    let mut joined = 0;
    for h in handles {
        if h.join().is_ok() {
            joined += 1;
        }
    }
    let elapsed = start.elapsed();
    check("coroutines joined without panic", joined, n)?;
    // Relaxed suffices: every increment happened before its coroutine
    // finished, and `join` synchronises with that finish.
    check("counter", counter.load(Ordering::Relaxed), n)?;
    Ok(elapsed)
}

/// One repetition with `std::thread`s (default stack size). Every thread
/// is spawned before the first join.
pub fn threads(n: u64) -> Result<Duration, BenchError> {
    let counter = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut handles = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let counter = Arc::clone(&counter);
        handles.push(std::thread::Builder::new().spawn(move || {
            counter.fetch_add(1, Ordering::Relaxed);
        })?);
    }
    let mut joined = 0;
    for h in handles {
        if h.join().is_ok() {
            joined += 1;
        }
    }
    let elapsed = start.elapsed();
    check("threads joined without panic", joined, n)?;
    // Relaxed suffices: `join` synchronises with each thread's end.
    check("counter", counter.load(Ordering::Relaxed), n)?;
    Ok(elapsed)
}

/// One repetition with `fork`: each child adds 1 to a counter in a shared
/// page and `_exit(0)`s; all are forked before the first `waitpid`.
pub fn forks(n: u64) -> Result<Duration, BenchError> {
    let shared = SharedCounter::new()?;
    let counter = shared.get();
    let start = Instant::now();
    let mut pids = Vec::with_capacity(n as usize);
    for _ in 0..n {
        // An atomic add is async-signal-safe.
        match os::fork_run(|| {
            counter.fetch_add(1, Ordering::Relaxed);
            0
        }) {
            Ok(pid) => pids.push(pid),
            Err(e) => {
                reap(&pids);
                return Err(e.into());
            }
        }
    }
    let mut ok = 0;
    for &pid in &pids {
        if os::wait_ok(pid)? {
            ok += 1;
        }
    }
    let elapsed = start.elapsed();
    check("children exited with status 0", ok, n)?;
    // Relaxed suffices: waitpid orders the children's writes before us.
    check("counter", counter.load(Ordering::Relaxed), n)?;
    Ok(elapsed)
}

/// One repetition of `posix_spawn("/bin/true")`; all are spawned before the
/// first `waitpid`.
pub fn posix_spawns(n: u64) -> Result<Duration, BenchError> {
    const TRUE: &CStr = c"/bin/true";
    let argv = [TRUE.as_ptr().cast_mut(), std::ptr::null_mut()];
    unsafe extern "C" {
        static environ: *const *mut libc::c_char;
    }
    let start = Instant::now();
    let mut pids = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let mut pid = 0;
        // SAFETY: `TRUE` and `argv` are NUL-terminated and outlive the call;
        // `environ` is the process's environment, which nothing here
        // modifies concurrently; null file actions and attributes mean
        // the defaults.
        let rc = unsafe {
            libc::posix_spawn(
                &mut pid,
                TRUE.as_ptr(),
                std::ptr::null(),
                std::ptr::null(),
                argv.as_ptr(),
                environ,
            )
        };
        if rc != 0 {
            reap(&pids);
            return Err(io::Error::from_raw_os_error(rc).into());
        }
        pids.push(pid);
    }
    let mut ok = 0;
    for &pid in &pids {
        if os::wait_ok(pid)? {
            ok += 1;
        }
    }
    let elapsed = start.elapsed();
    check("/bin/true exited with status 0", ok, n)?;
    Ok(elapsed)
}

/// Waits for children already started before an error is returned.
fn reap(pids: &[libc::pid_t]) {
    for &pid in pids {
        let _ = os::wait_ok(pid);
    }
}

/// `spindle bench spawn_join`.
pub fn run(args: &BenchArgs, mut emit: impl FnMut(Record)) -> Result<(), BenchError> {
    let mut record = |system, n, workers, total| {
        emit(Record {
            workload: "spawn_join",
            system,
            n,
            workers,
            metric: "ns_per_op",
            value: per(total, n),
        })
    };
    match args.system {
        System::Spindle => {
            let n = args.n.unwrap_or(DEFAULT_N_SPINDLE);
            let rt = runtime(args.workers)?;
            let total = rt.block_on(move || median_of(REPS, || coroutines(n)))?;
            record("spindle", n, args.workers, total);
        }
        System::Thread => {
            let n = args.n.unwrap_or(DEFAULT_N_THREAD);
            let pin = Pinned::first(args.workers as usize)?;
            let total = median_of(REPS, || threads(n))?;
            record("thread", n, pin.cpus() as u64, total);
        }
        System::Process => {
            // `--n` sets both counts.
            let pin = Pinned::first(args.workers as usize)?;
            let cpus = pin.cpus() as u64;
            let n = args.n.unwrap_or(DEFAULT_N_FORK);
            let total = median_of(REPS, || forks(n))?;
            record("process", n, cpus, total);
            let n = args.n.unwrap_or(DEFAULT_N_POSIX_SPAWN);
            let total = median_of(REPS, || posix_spawns(n))?;
            record("process-posix_spawn", n, cpus, total);
        }
    }
    Ok(())
}
