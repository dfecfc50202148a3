//! `idle_memory`: spawn N units that each block on one shared latch until
//! all exist; `bytes_per_unit` = (VmRSS after - VmRSS before) / N, and
//! `spawn_s` = seconds from the first spawn until all N are blocked.
//!
//! Rows: spindle coroutines at N = 10,000, 100,000 and 1,000,000, and OS
//! threads (default stack size) at N = 10,000; WORKLOADS.md defines no
//! process row. One measurement per N, no median: the figure is a memory
//! delta, and a second run in the same process would reuse pages the first
//! left resident. For the same reason, when several N are measured each
//! runs in a fresh copy of this program ([`super::in_child`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use super::os::{Pinned, vm_pte, vm_rss};
use super::{BenchArgs, BenchError, Record, System, check, in_child, runtime};

/// The N measured for spindle when `--n` is not given.
pub const DEFAULT_NS_SPINDLE: [u64; 3] = [10_000, 100_000, 1_000_000];
/// The N measured for OS threads when `--n` is not given.
pub const DEFAULT_N_THREAD: u64 = 10_000;

/// What one measurement found.
#[derive(Copy, Clone, Debug)]
pub struct Idle {
    /// Resident-set growth per blocked unit, in bytes.
    pub bytes_per_unit: f64,
    /// Seconds from the first spawn until all units were blocked.
    pub spawn_s: f64,
    /// Page-table growth per blocked unit, in bytes: kernel memory that
    /// VmRSS does not count (guard pages installed with
    /// `MADV_GUARD_INSTALL` live in page tables, for instance).
    pub page_tables_per_unit: f64,
}

/// Resident set and page tables, read together.
fn usage() -> Result<(u64, u64), BenchError> {
    Ok((vm_rss()?, vm_pte()?))
}

impl Idle {
    /// The measurement from usage before and after `n` units blocked.
    fn new(n: u64, before: (u64, u64), after: (u64, u64), spawn_s: f64) -> Idle {
        let per_unit = |a: u64, b: u64| a.saturating_sub(b) as f64 / n as f64;
        Idle {
            bytes_per_unit: per_unit(after.0, before.0),
            spawn_s,
            page_tables_per_unit: per_unit(after.1, before.1),
        }
    }
}

/// The latch the coroutines wait on, built from `spindle::park` and
/// `Unparker`s (spindle's sync primitives come in a later issue).
struct Latch {
    released: AtomicBool,
    waiters: Mutex<Vec<spindle::Unparker>>,
}

impl Latch {
    /// Blocks the calling coroutine until [`Latch::release`]; calls
    /// `arrived` once it is registered.
    fn wait(&self, arrived: impl FnOnce()) {
        {
            let mut waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
            // Checked under the lock `release` takes after setting the flag:
            // either we see the flag here, or our unparker is in the list
            // before `release` drains it.
            if self.released.load(Ordering::Relaxed) {
                return;
            }
            waiters.push(spindle::current().unparker());
        }
        arrived();
        // Acquire pairs with the Release store in `release`. An unpark that
        // lands before `park` is kept, and a spurious wake-up loops.
        while !self.released.load(Ordering::Acquire) {
            spindle::park();
        }
    }

    /// Wakes every waiter, present and future.
    fn release(&self) {
        self.released.store(true, Ordering::Release);
        let waiters = std::mem::take(&mut *self.waiters.lock().unwrap_or_else(|e| e.into_inner()));
        for w in waiters {
            w.unpark();
        }
    }
}

/// One measurement with `n` spindle coroutines; must run inside a
/// coroutine. The caller yields until every coroutine has registered on the
/// latch, reads VmRSS, then releases and joins them all.
pub fn coroutines(n: u64) -> Result<Idle, BenchError> {
    let latch = Arc::new(Latch {
        released: AtomicBool::new(false),
        waiters: Mutex::new(Vec::with_capacity(n as usize)),
    });
    let arrived = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::with_capacity(n as usize);
    let before = usage()?;
    let start = Instant::now();
    for _ in 0..n {
        let (latch, arrived) = (Arc::clone(&latch), Arc::clone(&arrived));
        handles.push(spindle::spawn(move || {
            latch.wait(|| {
                arrived.fetch_add(1, Ordering::Relaxed);
            })
        }));
    }
    while arrived.load(Ordering::Relaxed) < n {
        spindle::yield_now();
    }
    let spawn_s = start.elapsed().as_secs_f64();
    let after = usage()?;
    latch.release();
    let joined = handles.into_iter().filter_map(|h| h.join().ok()).count() as u64;
    check("coroutines joined without panic", joined, n)?;
    Ok(Idle::new(n, before, after, spawn_s))
}

/// The OS threads' latch: how many arrived and whether released, under one
/// mutex; the threads wait on `released`, the spawner on `all_arrived`
/// (signalled by the last arrival only, to avoid a thundering herd).
struct ThreadLatch {
    state: Mutex<(u64, bool)>,
    released: Condvar,
    all_arrived: Condvar,
}

impl ThreadLatch {
    /// Sets the latch and wakes every thread.
    fn release(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.released.notify_all();
    }
}

/// One measurement with `n` OS threads (default stack size) blocked on a
/// Mutex + Condvar latch.
pub fn threads(n: u64) -> Result<Idle, BenchError> {
    let latch = Arc::new(ThreadLatch {
        state: Mutex::new((0, false)),
        released: Condvar::new(),
        all_arrived: Condvar::new(),
    });
    let mut handles = Vec::with_capacity(n as usize);
    let before = usage()?;
    let start = Instant::now();
    for _ in 0..n {
        let shared = Arc::clone(&latch);
        let spawned = std::thread::Builder::new().spawn(move || {
            let latch = shared;
            let mut s = latch.state.lock().unwrap_or_else(|e| e.into_inner());
            s.0 += 1;
            if s.0 == n {
                latch.all_arrived.notify_one();
            }
            while !s.1 {
                s = latch.released.wait(s).unwrap_or_else(|e| e.into_inner());
            }
        });
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => {
                latch.release();
                handles.into_iter().for_each(|h| drop(h.join()));
                return Err(e.into());
            }
        }
    }
    {
        let mut s = latch.state.lock().unwrap_or_else(|e| e.into_inner());
        while s.0 < n {
            s = latch.all_arrived.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }
    let spawn_s = start.elapsed().as_secs_f64();
    let after = usage()?;
    latch.release();
    let joined = handles.into_iter().filter_map(|h| h.join().ok()).count() as u64;
    check("threads joined without panic", joined, n)?;
    Ok(Idle::new(n, before, after, spawn_s))
}

/// Emits the two lines of one measurement.
/// The page-table figure, which is not a metric of WORKLOADS.md, goes to
/// stderr as a note.
fn emit_idle(emit: &mut impl FnMut(Record), system: &'static str, n: u64, workers: u64, m: Idle) {
    eprintln!(
        "note: {system} idle_memory n={n}: page tables (VmPTE, not part of VmRSS) grew by \
         {:.0} bytes per unit",
        m.page_tables_per_unit
    );
    for (metric, value) in [("bytes_per_unit", m.bytes_per_unit), ("spawn_s", m.spawn_s)] {
        emit(Record {
            workload: "idle_memory",
            system,
            n,
            workers,
            metric,
            value,
        });
    }
}

/// `spindle bench idle_memory`.
pub fn run(args: &BenchArgs, mut emit: impl FnMut(Record)) -> Result<(), BenchError> {
    match (args.system, args.n) {
        (System::Spindle, Some(n)) => {
            let rt = runtime(args.workers)?;
            let m = rt.block_on(move || coroutines(n))?;
            emit_idle(&mut emit, "spindle", n, args.workers, m);
        }
        (System::Spindle, None) => {
            for n in DEFAULT_NS_SPINDLE {
                let out = in_child(&child_args(args, n))?;
                // Relayed as they are: the child printed our own format.
                print!("{}", out.stdout);
                eprint!("{}", out.stderr);
            }
        }
        (System::Thread, n) => {
            let n = n.unwrap_or(DEFAULT_N_THREAD);
            let pin = Pinned::first(args.workers as usize)?;
            let m = threads(n)?;
            emit_idle(&mut emit, "thread", n, pin.cpus() as u64, m);
        }
        (System::Process, _) => return Err(super::no_row(args)),
    }
    Ok(())
}

/// The arguments that make a child measure `args` at `n` units.
pub fn child_args(args: &BenchArgs, n: u64) -> Vec<String> {
    vec![
        "idle_memory".into(),
        "--system".into(),
        args.system.id().into(),
        "--workers".into(),
        args.workers.to_string(),
        "--n".into(),
        n.to_string(),
    ]
}
