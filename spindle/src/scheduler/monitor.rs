//! The monitor thread (Go's sysmon), one per runtime.
//!
//! It never touches a worker's private queues and never switches a stack
//! (DESIGN.md, "Preemption"). Each round it
//!
//! 1. polls the reactor if no worker has for [`POLL_GAP`] (idle workers
//!    wait in `epoll_wait`, busy ones poll every 61 ticks; if every worker
//!    runs coroutines that take long between runtime calls, readiness
//!    would wait for them), as Go's sysmon does every 10 ms;
//! 2. watches each worker's turn: a worker whose turn counter has not
//!    moved while a coroutine runs has been held by that one turn since
//!    the monitor first saw it so. After half the hold threshold the
//!    turn is marked (`Remote::preempt`): its next runtime call yields
//!    (`coop`). After the whole threshold the worker is *held*: that
//!    coroutine makes no runtime call (a loop without `checkpoint()`), or
//!    it is stuck in a blocking system call — unless the worker's thread
//!    spent that time waiting for a CPU: a thread that was on the CPU for
//!    less than half the threshold and is runnable (not asleep in the
//!    kernel) was preempted by the kernel, because the machine has more
//!    runnable threads than CPUs. Its coroutine is not at fault and one
//!    more thread could only make the overload worse, so the monitor
//!    keeps watching (the turn's CPU time is read from the thread's CPU
//!    clock). Otherwise the monitor
//!    a. reports it once per turn, through the runtime's hook (by default
//!    a warning on stderr naming the coroutine, its spawn location, how
//!    long it has held the worker, whether it is on the CPU or in the
//!    kernel, and the remedy);
//!    b. moves the worker's stealable coroutines — not yet started, or
//!    migratable and woken — to the injector, where other workers find
//!    them;
//!    c. starts an extra worker thread (up to the runtime's cap) per held
//!    worker, so new work, moved work and their timers and I/O keep
//!    running while the kernel time-slices the threads; extra workers
//!    retire once no worker is held and they own no coroutine.
//!
//! Coroutines that have started on a held worker stay there (soundness by
//! affinity, DESIGN.md): they wait for it, as everything on a blocked
//! Node.js event loop waits.
//!
//! It sleeps with back-off, from [`MIN_SLEEP`] while it keeps finding
//! work to [`MAX_SLEEP`] while it does not, never longer than a quarter of
//! the hold threshold while a worker is busy, and exits at shutdown
//! (`Shared::begin_shutdown` unparks it).

use std::fmt;
use std::panic::Location;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::Shared;
use crate::CoroutineId;
use crate::coroutine::task::TaskRef;

/// Poll the reactor if nobody has for this long.
pub(crate) const POLL_GAP: Duration = Duration::from_millis(10);
/// The shortest sleep between checks.
const MIN_SLEEP: Duration = Duration::from_micros(20);
/// The longest sleep between checks.
const MAX_SLEEP: Duration = Duration::from_millis(10);
/// The default hold threshold (`runtime::Builder::hold_threshold`).
pub(crate) const DEFAULT_HOLD_THRESHOLD: Duration = Duration::from_millis(10);

/// What the runtime does with a held-worker report.
pub(crate) type HeldHook = Arc<dyn Fn(&HeldWorker) + Send + Sync>;

/// The default hook: one warning on stderr.
pub(crate) fn default_hook() -> HeldHook {
    Arc::new(|report: &HeldWorker| eprintln!("{report}"))
}

/// The monitor's decisions, counted for `Handle::metrics`.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) held_reports: AtomicU64,
    pub(crate) extra_started: AtomicU64,
    pub(crate) extra_retired: AtomicU64,
    pub(crate) moved: AtomicU64,
}

/// A worker held by one coroutine's turn, as the monitor reports it (see
/// [`runtime::Builder::on_held_worker`](crate::runtime::Builder::on_held_worker)).
///
/// Its `Display` is the warning spindle prints by default.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HeldWorker {
    /// The worker's index.
    pub worker: usize,
    /// The coroutine holding it.
    pub coroutine: CoroutineId,
    /// Its name, if it has one.
    pub name: Option<String>,
    /// Where it was spawned.
    pub spawn_location: &'static Location<'static>,
    /// How long it has held the worker without a runtime call (at least;
    /// the monitor looks every few milliseconds).
    pub held_for: Duration,
    /// `Some(true)` if the worker thread is blocked in the kernel (a
    /// blocking system call), `Some(false)` if it is running on the CPU,
    /// `None` if that could not be read.
    pub in_system_call: Option<bool>,
}

impl fmt::Display for HeldWorker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match &self.name {
            Some(n) => format!(" ({n:?})"),
            None => String::new(),
        };
        write!(
            f,
            "spindle: worker {} has been held for {} ms by coroutine {}{} spawned at {}, ",
            self.worker,
            self.held_for.as_millis(),
            self.coroutine,
            name,
            self.spawn_location,
        )?;
        match self.in_system_call {
            Some(true) => write!(
                f,
                "which is blocked in a system call; run blocking calls with \
                 spindle::blocking::run(|| ...) so they do not hold a worker"
            )?,
            _ => write!(
                f,
                "which makes no runtime call; call spindle::checkpoint() in its \
                 loop so other coroutines get turns"
            )?,
        }
        write!(
            f,
            ". Coroutines that started on worker {} wait for it; new and \
             migratable ones move to other workers.",
            self.worker
        )
    }
}

/// What the monitor remembers about one worker slot.
#[derive(Clone, Copy)]
struct Watch {
    /// The worker's turn count when last seen.
    turns: u64,
    /// When that turn was first seen running.
    since: Instant,
    /// Whether this turn was marked for preemption.
    marked: bool,
    /// Whether this turn was reported as holding the worker.
    reported: bool,
    /// The worker thread's CPU time when the turn was first seen (`None`
    /// if its CPU clock could not be read).
    cpu: Option<Duration>,
}

impl Watch {
    fn new(turns: u64, now: Instant, cpu: Option<Duration>) -> Watch {
        Watch {
            turns,
            since: now,
            marked: false,
            reported: false,
            cpu,
        }
    }
}

/// The monitor thread's body.
pub(crate) fn run(shared: Arc<Shared>) {
    let threshold = shared.config.hold_threshold;
    let now = Instant::now();
    let mut watch = vec![Watch::new(0, now, None); shared.remotes.len()];
    let mut sleep = MIN_SLEEP;
    let mut was_held = false;
    while !shared.is_shutdown() {
        let polled = shared.reactor.since_last_poll() >= POLL_GAP
            && shared.reactor.poll(Some(Duration::ZERO));
        // Migratable coroutines' timers must fire even if every worker
        // is held.
        let fired = shared.fire_shared_timers();
        let (busy, held) = watch_workers(&shared, &mut watch, threshold);
        shared.held.store(held, Ordering::Relaxed);
        if held > 0 {
            start_extra_workers(&shared, held);
        } else if was_held {
            // Pressure gone: wake idle extra workers so they can retire.
            for (i, r) in shared.remotes.iter().enumerate() {
                if i >= shared.config.workers && r.active.load(Ordering::Relaxed) {
                    shared.wake_worker(i);
                }
            }
        }
        was_held = held > 0;
        sleep = if polled || fired || held > 0 {
            MIN_SLEEP.max(threshold / 8)
        } else {
            (sleep * 2).min(MAX_SLEEP)
        };
        if busy {
            sleep = sleep.min(threshold / 4);
        }
        std::thread::park_timeout(sleep);
    }
}

/// Looks at every worker's turn; returns whether any worker runs a
/// coroutine, and how many are held.
fn watch_workers(shared: &Shared, watch: &mut [Watch], threshold: Duration) -> (bool, usize) {
    let now = Instant::now();
    let mut busy = false;
    let mut held = 0;
    for (i, (r, w)) in shared.remotes.iter().zip(watch.iter_mut()).enumerate() {
        let turns = r.turns.load(Ordering::Relaxed);
        let current = r.current.load(Ordering::Relaxed);
        if current.is_null() || turns != w.turns || !r.active.load(Ordering::Relaxed) {
            // A turn's CPU time is measured from here; the clock is read
            // only while a coroutine runs.
            let cpu = if current.is_null() {
                None
            } else {
                thread_cpu_time(r.tid.load(Ordering::Relaxed))
            };
            *w = Watch::new(turns, now, cpu);
            busy |= !current.is_null();
            continue;
        }
        busy = true;
        let held_for = now.saturating_duration_since(w.since);
        if held_for >= threshold / 2 && !w.marked {
            w.marked = true;
            r.preempt.store(true, Ordering::Relaxed);
        }
        // Once reported, the turn stays held (and its thread is not read
        // again each round).
        if held_for < threshold
            || (!w.reported && preempted_by_kernel(r.tid.load(Ordering::Relaxed), w, threshold))
        {
            continue;
        }
        held += 1;
        if !w.reported {
            w.reported = true;
            report(shared, i, current as usize, held_for);
        }
        // With no other worker slot (one worker, no extra workers allowed)
        // moving would only take work out of the held worker's own order.
        if shared.remotes.len() > 1 {
            move_stealable(shared, i);
        }
    }
    (busy, held)
}

/// Reports worker `i` held by the coroutine at header address `current`.
fn report(shared: &Shared, i: usize, current: usize, held_for: Duration) {
    // The header is read through a reference the registry hands out, never
    // through the raw pointer: the coroutine may finish meanwhile.
    let Some(task) = shared
        .registry
        .owned_by(i)
        .into_iter()
        .find(|t: &TaskRef| t.as_ptr().as_ptr() as usize == current)
    else {
        return;
    };
    let h = task.header();
    let tid = shared.remotes[i].tid.load(Ordering::Relaxed);
    let report = HeldWorker {
        worker: i,
        coroutine: CoroutineId::from_raw(h.id()),
        name: h.name().map(String::from),
        spawn_location: h.location(),
        held_for,
        in_system_call: in_system_call(tid),
    };
    shared.counters.held_reports.fetch_add(1, Ordering::Relaxed);
    drop(task);
    (shared.config.on_held)(&report);
}

/// Whether the worker thread `tid`, whose turn `w` has lasted a whole
/// hold threshold, spent it waiting for a CPU rather than holding one:
/// on the CPU for less than half the threshold, and runnable (neither
/// asleep in a system call, nor unreadable).
fn preempted_by_kernel(tid: i32, w: &Watch, threshold: Duration) -> bool {
    let (Some(start), Some(now)) = (w.cpu, thread_cpu_time(tid)) else {
        return false;
    };
    now.saturating_sub(start) < threshold / 2 && in_system_call(tid) == Some(false)
}

/// The CPU time thread `tid` of this process has used, from its CPU clock
/// (`None` for no thread, or one that has exited).
fn thread_cpu_time(tid: i32) -> Option<Duration> {
    if tid <= 0 {
        return None;
    }
    // The kernel's clock id for a thread's CPU time (its ABI, what glibc's
    // `pthread_getcpuclockid` computes): the inverted tid shifted left by
    // 3, with CPUCLOCK_PERTHREAD_MASK (4) | CPUCLOCK_SCHED (2). Built from
    // the tid rather than from a `pthread_t`, so a thread that has exited
    // meanwhile gives EINVAL instead of a read of freed memory.
    let clock = (!tid << 3) | 6;
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return None;
    }
    Some(Duration::new(
        u64::try_from(ts.tv_sec).ok()?,
        u32::try_from(ts.tv_nsec).ok()?,
    ))
}

/// Whether thread `tid` of this process sleeps in the kernel (state `S`
/// or `D` in `/proc/self/task/<tid>/stat`) rather than runs.
fn in_system_call(tid: i32) -> Option<bool> {
    if tid == 0 {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // The state follows the command name, which is in parentheses and
    // may itself contain spaces or parentheses.
    let state = stat[stat.rfind(')')? + 1..].split_whitespace().next()?;
    Some(matches!(state, "S" | "D"))
}

/// Moves worker `i`'s stealable coroutines to the injector: its deque of
/// new ones, and under a policy the new and migratable ones its policy
/// queue holds.
fn move_stealable(shared: &Shared, i: usize) {
    let r = &shared.remotes[i];
    let mut moved = 0u64;
    loop {
        match r.stealer.steal() {
            crossbeam_deque::Steal::Success(t) => {
                shared.injector.push(t);
                moved += 1;
            }
            crossbeam_deque::Steal::Empty => break,
            crossbeam_deque::Steal::Retry => {}
        }
    }
    if let Some(q) = &r.policy {
        let mut out = Vec::new();
        let mut movable = |t: &TaskRef| {
            let h = t.header();
            h.migratable
                || crate::park::state::State::lifecycle(h.state.load_relaxed())
                    == crate::park::state::NEW
        };
        q.lock()
            .unwrap_or_else(|e| e.into_inner())
            .take_if(&mut movable, usize::MAX, &mut out);
        moved += out.len() as u64;
        for t in out {
            shared.injector.push(t);
        }
    }
    if moved > 0 {
        shared.counters.moved.fetch_add(moved, Ordering::Relaxed);
        shared.notify_one();
    }
}

/// Starts extra workers until there is one per held worker (up to the
/// cap).
fn start_extra_workers(shared: &Arc<Shared>, held: usize) {
    let want = held.min(shared.config.max_extra_workers);
    while shared.extra_alive.load(Ordering::Relaxed) < want {
        let Some((slot, deque)) = shared
            .spare_deques
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
        else {
            return;
        };
        shared.remotes[slot].active.store(true, Ordering::SeqCst);
        shared.extra_alive.fetch_add(1, Ordering::SeqCst);
        let shared2 = shared.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("spindle-extra-{slot}"))
            .spawn(move || {
                let deque = crate::runtime::run_worker(shared2.clone(), slot, deque, true);
                retire(&shared2, slot, deque);
            });
        match spawned {
            Ok(t) => {
                shared
                    .counters
                    .extra_started
                    .fetch_add(1, Ordering::Relaxed);
                let mut threads = shared
                    .extra_threads
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                // Threads of retired workers have ended: nothing to join.
                threads.retain(|t| !t.is_finished());
                threads.push(t);
            }
            Err(e) => {
                eprintln!("spindle: monitor: cannot start an extra worker thread: {e}");
                shared.remotes[slot].active.store(false, Ordering::SeqCst);
                shared.extra_alive.fetch_sub(1, Ordering::SeqCst);
                return;
            }
        }
    }
}

/// An extra worker's thread ended: its slot is free again.
fn retire(shared: &Shared, slot: usize, deque: Option<crossbeam_deque::Worker<TaskRef>>) {
    shared.remotes[slot].active.store(false, Ordering::SeqCst);
    shared.remotes[slot].tid.store(0, Ordering::Relaxed);
    if let Some(deque) = deque {
        shared
            .spare_deques
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((slot, deque));
    }
    shared.extra_alive.fetch_sub(1, Ordering::SeqCst);
    shared
        .counters
        .extra_retired
        .fetch_add(1, Ordering::Relaxed);
}
