//! The M:N scheduler: workers, run queues, stealing, idle and wake-up.
//!
//! The protocols (submit → wake, searching → sleeping) and why they cannot
//! lose a wake-up are written down in `README.md` beside this file.
//!
//! Queues, by who may touch them:
//!
//! | queue      | holds                                  | pushed by                 | popped by            |
//! |------------|----------------------------------------|---------------------------|----------------------|
//! | `ready`    | started coroutines ready to resume     | the owner worker          | the owner worker     |
//! | `next`     | the one just woken by a local coroutine| the owner worker          | the owner worker     |
//! | `inbox`    | started coroutines woken from elsewhere| any thread                | the owner worker     |
//! | `fresh`    | new coroutines (LIFO); migratables from the injector | the owner worker (spawn)  | owner; others steal half (FIFO end) |
//! | `injector` | spawns from non-workers; migratables   | any thread                | any worker           |

pub(crate) mod coop;
mod idle;
mod inbox;
pub(crate) mod monitor;
pub(crate) mod worker;

use std::sync::atomic::{
    AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_deque::{Injector, Stealer};
use crossbeam_utils::CachePadded;

use crate::coroutine::task::{Header, TaskRef};
use crate::introspect::registry::Registry;
use crate::io::reactor::Reactor;
use crate::sys::futex;

pub(crate) use idle::Idle;
use inbox::Inbox;
pub(crate) use worker::Context;

/// A worker's futex word: awake.
const AWAKE: u32 = 0;
/// A worker's futex word: asleep (or about to be).
pub(crate) const SLEEPING: u32 = 1;
/// A worker's futex word: woken for its inbox or shutdown.
const NOTIFIED: u32 = 2;
/// A worker's futex word: woken by `notify_one` and counted as searching.
const NOTIFIED_SEARCHING: u32 = 3;

/// Runtime-wide settings the scheduler needs.
#[derive(Clone)]
pub(crate) struct Config {
    /// Number of workers.
    pub(crate) workers: usize,
    /// Default usable stack size of coroutines spawned on this runtime.
    pub(crate) stack_size: usize,
    /// The scheduling policy.
    pub(crate) policy: crate::policy::Policy,
    /// The monitor reports a worker held this long by one turn.
    pub(crate) hold_threshold: Duration,
    /// At most this many extra workers run at once.
    pub(crate) max_extra_workers: usize,
    /// What the monitor does with a held-worker report.
    pub(crate) on_held: monitor::HeldHook,
}

/// The turns recorded for `runtime::Builder::trace_turns`.
pub(crate) struct Trace {
    pub(crate) max: usize,
    pub(crate) turns: Vec<crate::runtime::Turn>,
}

/// The part of a worker other threads can see.
pub(crate) struct Remote {
    /// Remote wake-ups of started coroutines owned by this worker.
    inbox: Inbox,
    /// Steals from this worker's queue of new coroutines.
    stealer: Stealer<TaskRef>,
    /// Futex word: `AWAKE`, `SLEEPING`, `NOTIFIED`, `NOTIFIED_SEARCHING`.
    pub(crate) sleep: AtomicU32,
    /// Set while this worker sleeps in the reactor's `epoll_wait` rather
    /// than on `sleep` (set before SLEEPING is published).
    polling: AtomicBool,
    /// The coroutine running now (introspection only; Relaxed).
    pub(crate) current: AtomicPtr<Header>,
    /// Coroutines spawned on this worker (written by it only).
    pub(crate) spawned: AtomicU64,
    /// Coroutines this worker started (written by it only).
    pub(crate) started: AtomicU64,
    /// Turns begun (written by it only): the monitor sees a turn that
    /// does not end as an unchanged count with `current` set.
    pub(crate) turns: AtomicU64,
    /// Set by the monitor when the current turn has run too long: the
    /// next runtime call yields (see `coop`), and clears it.
    pub(crate) preempt: AtomicBool,
    /// Turns ended by `coop` (slice, budget, preempt flag; written by it
    /// only).
    pub(crate) forced_yields: AtomicU64,
    /// The worker thread's kernel thread id (0 while no thread runs it),
    /// for the monitor's look at `/proc`.
    pub(crate) tid: AtomicI32,
    /// Whether a thread runs this slot (extra slots come and go).
    pub(crate) active: AtomicBool,
    /// The scheduling policy's queue of this worker (`None` under
    /// `Fifo`); see `Context::queue`.
    pub(crate) policy: Option<Mutex<Box<dyn crate::policy::RunQueue<TaskRef>>>>,
}

/// State shared by all workers of one runtime and every handle to it.
///
/// Aligned to 128 bytes so that, inside its `Arc`, the reference count
/// (touched by every spawn and task drop) does not share a cache line with
/// the fields every worker reads on its hot path.
#[repr(align(128))]
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) remotes: Box<[CachePadded<Remote>]>,
    pub(crate) injector: Injector<TaskRef>,
    pub(crate) idle: Idle,
    pub(crate) registry: Registry,
    /// The runtime's epoll instance (see `io::reactor`).
    pub(crate) reactor: Arc<Reactor>,
    /// The monitor thread, unparked at shutdown.
    pub(crate) monitor: std::sync::OnceLock<std::thread::Thread>,
    shutdown: AtomicBool,
    /// Coroutines spawned from outside the workers.
    other_spawned: AtomicU64,
    /// Coroutines that finished without starting (cancelled).
    other_settled: AtomicU64,
    /// When shutdown gives up on coroutines that do not finish.
    pub(crate) shutdown_deadline: Mutex<Option<Instant>>,
    /// The runtime clock's zero (policies and traces count ns from it).
    pub(crate) started: Instant,
    /// Recorded turns, if tracing.
    pub(crate) trace: Option<Mutex<Trace>>,
    /// Workers the monitor currently finds held.
    pub(crate) held: AtomicUsize,
    /// Extra workers running now.
    pub(crate) extra_alive: AtomicUsize,
    /// The monitor's decisions, for `Handle::metrics`.
    pub(crate) counters: monitor::Counters,
    /// Queues of the extra worker slots not running (taken by the monitor
    /// to start one, given back when it retires).
    pub(crate) spare_deques: Mutex<Vec<(usize, crossbeam_deque::Worker<TaskRef>)>>,
    /// Threads of extra workers, joined at shutdown.
    pub(crate) extra_threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// Timers of migratable coroutines: any worker, and the monitor, fire
    /// them, so a held worker cannot keep one from waking.
    shared_timers: Mutex<crate::time::heap::TimerHeap<worker::Timer>>,
    /// When the earliest of `shared_timers` is due (runtime-clock ns;
    /// `u64::MAX` for none): checked without the lock.
    shared_due: AtomicU64,
}

impl Shared {
    /// Builds the shared state; `stealers` come from the workers' local
    /// queues, in worker order.
    pub(crate) fn new(
        config: Config,
        stealers: Vec<Stealer<TaskRef>>,
        reactor: Arc<Reactor>,
        trace_turns: usize,
    ) -> Shared {
        // Every slot, the extra workers' included.
        let n = stealers.len();
        Shared {
            remotes: stealers
                .into_iter()
                .map(|stealer| {
                    CachePadded::new(Remote {
                        inbox: Inbox::new(),
                        stealer,
                        sleep: AtomicU32::new(AWAKE),
                        polling: AtomicBool::new(false),
                        current: AtomicPtr::new(std::ptr::null_mut()),
                        spawned: AtomicU64::new(0),
                        started: AtomicU64::new(0),
                        turns: AtomicU64::new(0),
                        preempt: AtomicBool::new(false),
                        forced_yields: AtomicU64::new(0),
                        tid: AtomicI32::new(0),
                        active: AtomicBool::new(false),
                        policy: config.policy.queue().map(Mutex::new),
                    })
                })
                .collect(),
            injector: Injector::new(),
            idle: Idle::new(config.workers, n),
            registry: Registry::new(n),
            reactor,
            monitor: std::sync::OnceLock::new(),
            shutdown: AtomicBool::new(false),
            other_spawned: AtomicU64::new(0),
            other_settled: AtomicU64::new(0),
            shutdown_deadline: Mutex::new(None),
            started: Instant::now(),
            trace: (trace_turns > 0).then(|| {
                Mutex::new(Trace {
                    max: trace_turns,
                    turns: Vec::new(),
                })
            }),
            held: AtomicUsize::new(0),
            extra_alive: AtomicUsize::new(0),
            counters: monitor::Counters::default(),
            spare_deques: Mutex::new(Vec::new()),
            extra_threads: Mutex::new(Vec::new()),
            shared_timers: Mutex::new(crate::time::heap::TimerHeap::new()),
            shared_due: AtomicU64::new(u64::MAX),
            config,
        }
    }

    /// Nanoseconds on the runtime clock.
    #[inline]
    pub(crate) fn now_ns(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    /// `t` on the runtime clock (0 if before it started).
    pub(crate) fn instant_ns(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.started).as_nanos() as u64
    }

    /// Records one turn, if tracing has room.
    pub(crate) fn record_turn(&self, worker: usize, id: u64, start: u64, end: u64) {
        let Some(trace) = &self.trace else { return };
        let mut t = trace.lock().unwrap_or_else(|e| e.into_inner());
        if t.turns.len() < t.max {
            t.turns.push(crate::runtime::Turn {
                worker,
                coroutine: crate::CoroutineId::from_raw(id),
                start: Duration::from_nanos(start),
                end: Duration::from_nanos(end),
            });
        }
    }

    /// Whether more than one worker thread may run (new work is worth
    /// announcing to the others).
    #[inline]
    pub(crate) fn multi_worker(&self) -> bool {
        self.config.workers > 1 || self.extra_alive.load(Ordering::Relaxed) > 0
    }

    /// Arms a migratable coroutine's timer (see `Context::add_timer`).
    pub(crate) fn add_shared_timer(&self, deadline: Instant, timer: worker::Timer) {
        let mut heap = self.shared_timers.lock().unwrap_or_else(|e| e.into_inner());
        heap.push(deadline, timer);
        let due = heap
            .peek_deadline()
            .map_or(u64::MAX, |d| self.instant_ns(d));
        self.shared_due.store(due, Ordering::Release);
    }

    /// When the earliest shared timer is due, if any.
    pub(crate) fn shared_timer_due(&self) -> Option<Instant> {
        match self.shared_due.load(Ordering::Acquire) {
            u64::MAX => None,
            ns => Some(self.started + Duration::from_nanos(ns)),
        }
    }

    /// Fires the shared timers that are due; returns whether any woke a
    /// coroutine. Cheap when none is due (one atomic load).
    pub(crate) fn fire_shared_timers(self: &Arc<Self>) -> bool {
        let due = self.shared_due.load(Ordering::Acquire);
        // `u64::MAX`: no shared timer at all, so no clock read either.
        if due == u64::MAX || due > self.now_ns() {
            return false;
        }
        let mut fired = Vec::new();
        {
            let mut heap = self.shared_timers.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            while let Some((_, t)) = heap.pop_expired(now) {
                fired.push(t);
            }
            let due = heap
                .peek_deadline()
                .map_or(u64::MAX, |d| self.instant_ns(d));
            self.shared_due.store(due, Ordering::Release);
        }
        let mut woke = false;
        for t in fired {
            if !t.is_stale() && t.task.header().state.unpark() == crate::park::state::Wake::Schedule
            {
                woke = true;
                // SAFETY: PARKED → QUEUED by us: we own the reference the
                // parked coroutine kept (see `Context::resume`).
                self.schedule(unsafe { TaskRef::adopt(t.task.as_ptr()) });
            }
        }
        woke
    }

    /// Workers the monitor finds held now.
    pub(crate) fn held_workers(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// Whether shutdown has begun.
    pub(crate) fn is_shutdown(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    /// Begins shutdown: no new coroutine will start; every worker is woken
    /// to cancel its coroutines.
    pub(crate) fn begin_shutdown(&self, deadline: Option<Instant>) {
        *self
            .shutdown_deadline
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = deadline;
        self.shutdown.store(true, Ordering::SeqCst);
        for i in 0..self.remotes.len() {
            self.wake_worker(i);
        }
        if let Some(m) = self.monitor.get() {
            m.unpark();
        }
    }

    /// Submits a new, not-yet-started coroutine spawned from outside this
    /// runtime's workers.
    pub(crate) fn submit_remote(&self, task: TaskRef) {
        self.other_spawned.fetch_add(1, Ordering::Relaxed);
        self.injector.push(task);
        // SeqCst: pairs with `begin_shutdown`'s store. If shutdown began
        // before our push could be seen by the final sweep, we see the flag
        // and cancel what is queued ourselves (claims make this safe).
        if self.shutdown.load(Ordering::SeqCst) {
            self.cancel_injected();
            return;
        }
        self.notify_one();
    }

    /// Cancels every not-yet-started coroutine in the injector.
    pub(crate) fn cancel_injected(&self) {
        loop {
            match self.injector.steal() {
                crossbeam_deque::Steal::Success(t) => t.cancel_unstarted(),
                crossbeam_deque::Steal::Empty => break,
                crossbeam_deque::Steal::Retry => {}
            }
        }
    }

    /// Cancels every not-yet-started coroutine left in any queue; the last
    /// step of shutdown, after the workers stopped.
    pub(crate) fn cancel_all_queued(&self) {
        self.cancel_injected();
        for r in self.remotes.iter() {
            loop {
                match r.stealer.steal() {
                    crossbeam_deque::Steal::Success(t) => t.cancel_unstarted(),
                    crossbeam_deque::Steal::Empty => break,
                    crossbeam_deque::Steal::Retry => {}
                }
            }
        }
    }

    /// Counts a coroutine that finished without starting (cancelled).
    pub(crate) fn count_settled_unstarted(&self) {
        self.other_settled.fetch_add(1, Ordering::Relaxed);
    }

    /// Coroutines spawned but not started (approximate while it changes).
    pub(crate) fn unstarted(&self) -> u64 {
        let mut spawned = self.other_spawned.load(Ordering::Relaxed);
        let mut settled = self.other_settled.load(Ordering::Relaxed);
        for r in self.remotes.iter() {
            spawned += r.spawned.load(Ordering::Relaxed);
            settled += r.started.load(Ordering::Relaxed);
        }
        spawned.saturating_sub(settled)
    }

    /// Enqueues a coroutine that an unpark moved `PARKED → QUEUED`.
    ///
    /// A non-migratable coroutine goes back to its owner worker: locally
    /// into the `next` slot when the waker runs on that worker, otherwise
    /// into the owner's inbox (and the owner is woken if asleep). A
    /// migratable one goes wherever it can run soonest.
    pub(crate) fn schedule(self: &Arc<Shared>, task: TaskRef) {
        if let Some(cx) = worker::context() {
            // SAFETY: `context()` returns the live context of this thread.
            let cx = unsafe { &*cx };
            if Arc::ptr_eq(&cx.shared, self) {
                cx.schedule_from_worker(task);
                return;
            }
        }
        self.schedule_remote(task);
    }

    /// [`schedule`](Self::schedule) from a thread that is not one of this
    /// runtime's workers, or for a coroutine of another worker.
    pub(crate) fn schedule_remote(&self, task: TaskRef) {
        let h = task.header();
        if h.migratable {
            self.injector.push(task);
            self.notify_one();
            return;
        }
        let owner = h.worker.load(Ordering::Relaxed);
        self.remotes[owner].inbox.push(task);
        self.wake_worker(owner);
    }

    /// Wakes worker `i` if it sleeps (it will look at its inbox).
    ///
    /// Pairs with the sleeping side in `Context::sleep`: the caller made
    /// its work visible (inbox push, shutdown flag) before this SeqCst
    /// fence; the worker stores `SLEEPING` and fences before re-checking.
    /// One of the two sees the other.
    pub(crate) fn wake_worker(&self, i: usize) {
        let r = &self.remotes[i];
        fence(Ordering::SeqCst);
        if r.sleep.load(Ordering::Relaxed) == SLEEPING
            && r.sleep
                .compare_exchange(SLEEPING, NOTIFIED, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
        {
            self.wake_sleeper(i);
        }
    }

    /// Wakes worker `i`, whose word we just moved from SLEEPING. It waits
    /// on its futex, or in `epoll_wait` if it is the reactor's driver: it
    /// sets `polling`, then re-reads its word (SeqCst), and skips the wait
    /// if it was moved already; so if our move came after that read, we
    /// see `polling` set here and interrupt the poll.
    fn wake_sleeper(&self, i: usize) {
        let r = &self.remotes[i];
        if r.polling.load(Ordering::SeqCst) {
            self.reactor.wake();
        } else {
            futex::wake_one(&r.sleep);
        }
    }

    /// New stealable work appeared (a spawn, or a migratable wake-up):
    /// wakes one sleeping worker unless one is already searching, and
    /// counts it as searching so a burst of spawns wakes one, not all.
    pub(crate) fn notify_one(&self) {
        // SeqCst fence: pairs with the fence in `Idle::end_search` /
        // `Context::sleep`: a searcher that stops, or a worker going to
        // sleep, re-checks the queues after its fence; we check the
        // counters after ours. Either it sees our work or we see it.
        fence(Ordering::SeqCst);
        if !self.idle.should_wake() {
            return;
        }
        // The worker is counted as searching on our behalf; it learns so
        // from its word and ends the search itself. Taking it off the list
        // and marking its word happen under one lock (see `pop_sleeper`).
        let marked = self.idle.pop_sleeper(|i| {
            self.remotes[i]
                .sleep
                .swap(NOTIFIED_SEARCHING, Ordering::SeqCst)
        });
        if let Some((i, SLEEPING)) = marked {
            self.wake_sleeper(i);
        }
    }

    /// Whether any queue another worker could take from holds work, or
    /// worker `me`'s inbox does: the re-check before sleeping.
    fn has_visible_work(&self, me: usize) -> bool {
        !self.injector.is_empty()
            || self.remotes[me].inbox.has_items()
            || self
                .remotes
                .iter()
                .enumerate()
                .any(|(i, r)| i != me && !r.stealer.is_empty())
    }
}
