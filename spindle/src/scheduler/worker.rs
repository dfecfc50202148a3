//! One worker: an OS thread that runs coroutines.
//!
//! The worker owns a [`Context`], reachable from the coroutines it runs
//! through a thread-local pointer. Only this thread touches the context's
//! `RefCell`s and `Cell`s; no borrow of them is held across a switch into
//! a coroutine (the coroutine's own runtime calls borrow them too).
//!
//! The loop, in order of preference at each step ("tick", a pick):
//!
//! 1. every 61st tick: the global injector first (fairness, as in Go), and
//!    due timers;
//! 2. the inbox, drained into `ready`, when its flag is set;
//! 3. the `next` slot, at most 3 times in a row (so two coroutines waking
//!    each other cannot starve the rest);
//! 4. `ready` and `fresh`, alternating which goes first, so neither started
//!    nor new coroutines starve;
//! 5. the injector and due timers; then search (steal) and sleep.

use std::cell::{Cell, RefCell, UnsafeCell};
use std::collections::VecDeque;
use std::ptr::{self, NonNull};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use corosensei::CoroutineResult;
use crossbeam_deque::{Steal, Worker as Deque};

use super::{AWAKE, NOTIFIED_SEARCHING, Remote, SLEEPING, Shared};
use crate::clock;
use crate::coroutine::alloc;
use crate::coroutine::task::{self, Header, RawCo, Stage, Suspend, TaskRef};
use crate::park::state::{DONE, NEW, QUEUED, RUNNING, State};
use crate::policy::{BUDGET, RunQueue, SchedData, Why};
use crate::stack::{self, LocalPool};
use crate::sys::futex;
use crate::time::heap::TimerHeap;

/// How often (in ticks) the injector and timers are checked first.
const GLOBAL_INTERVAL: u32 = 61;
/// How many times in a row the `next` slot may be taken.
const MAX_NEXT_STREAK: u32 = 3;
/// How many timer wake-ups may run in a row before one pick from `ready`
/// or `fresh`.
const MAX_TIMED_STREAK: u32 = 32;
/// `epoll_wait` takes whole milliseconds and mio rounds a timeout up: an
/// idle worker driving the reactor wakes this much before its next timer
/// and waits the rest on the futex, whose timeout is in nanoseconds.
const EPOLL_GRAIN: Duration = Duration::from_millis(1);
/// Search rounds (with growing pauses, ~2 µs in all) before sleeping.
const SPIN_ROUNDS: u32 = 3;
/// Under a policy, runtime calls per clock read in `turn_over`.
const CLOCK_STRIDE: u32 = 8;
/// How often a sleeping extra worker wakes to see whether it may retire.
const EXTRA_RECHECK: Duration = Duration::from_millis(100);
/// One resume in this many is timed for run-time accounting.
const RUN_TIME_SAMPLE: u64 = 16;
/// Coroutine ids a worker reserves at a time.
const ID_BLOCK: u64 = 1024;

/// A pending timed park.
pub(crate) struct Timer {
    pub(crate) task: TaskRef,
    pub(crate) generation: u64,
}

impl Timer {
    /// Whether firing this timer would do nothing: its coroutine parked
    /// again since (its generation moved on) or finished.
    pub(crate) fn is_stale(&self) -> bool {
        let h = self.task.header();
        h.park_gen.load(Ordering::Relaxed) != self.generation
            || State::lifecycle(h.state.load_relaxed()) == DONE
    }
}

/// A worker's own state.
pub(crate) struct Context {
    /// The runtime.
    pub(crate) shared: Arc<Shared>,
    /// This worker's index.
    pub(crate) index: usize,
    /// This worker's shared part (`shared.remotes[index]`), cached.
    remote: *const Remote,
    ready: UnsafeCell<VecDeque<TaskRef>>,
    next: Cell<Option<TaskRef>>,
    fresh: Deque<TaskRef>,
    timers: RefCell<TimerHeap<Timer>>,
    /// Coroutines woken by their timer, in deadline order. They run before
    /// `ready` and `fresh` (at most `MAX_TIMED_STREAK` in a row): a timer
    /// is a promise about time, and a worker saturated by new coroutines
    /// must not make every sleeper late (README, protocol 5).
    timed: UnsafeCell<VecDeque<TaskRef>>,
    /// Picks from `timed` in a row.
    timed_streak: Cell<u32>,
    pool: RefCell<LocalPool>,
    /// Ticks until the next injector-and-timers check (a countdown from
    /// `GLOBAL_INTERVAL`, cheaper than a modulo on every tick).
    until_global: Cell<u32>,
    /// Upper bound on `fresh`'s length as seen by this worker (pushes minus
    /// its own pops; steals only make it an overestimate). Zero means the
    /// deque is empty, and the pop is skipped.
    fresh_hint: Cell<usize>,
    next_streak: Cell<u32>,
    /// Coroutine ids reserved by this worker: the next one, and the end
    /// of the block (`coroutine::reserve_ids`).
    ids: Cell<(u64, u64)>,
    /// State of the run-time sampling generator.
    rng: Cell<u64>,
    /// Resumes until the next timed one.
    sample_in: Cell<u64>,
    /// Recycled task memory (see `coroutine::alloc`).
    task_cache: UnsafeCell<alloc::Cache>,
    /// Spare vector the inbox is drained into.
    spare: RefCell<Vec<TaskRef>>,
    /// Whether a policy other than `Fifo` runs (its queue is
    /// `Remote::policy`). Under `Fifo` the worker runs on `next`, `ready`,
    /// `timed` and `fresh` directly; under a policy those stay empty (but
    /// `fresh`, whose new coroutines are admitted at each pick): every
    /// runnable coroutine goes through the policy's queue.
    policy: bool,
    /// Runtime calls left in this turn (see `coop`).
    budget: Cell<u32>,
    /// Under a policy: when this turn's slice ends (runtime-clock ns;
    /// `u64::MAX` for none).
    slice_end: Cell<u64>,
    /// Under a policy: when this worker's next timer is due (ns, or
    /// `u64::MAX`): a runtime call past it ends the turn, so the woken
    /// coroutine can be ordered against the running one.
    next_due: Cell<u64>,
    /// Why the last `Suspend::Forced` ended a turn.
    forced: Cell<Why>,
    /// Whether turns are recorded (`runtime::Builder::trace_turns`).
    tracing: bool,
    /// `policy.is_some() || tracing`: whether turns are timed.
    timed_turns: bool,
    /// An extra worker started by the monitor; it retires when idle,
    /// owning nothing, with no worker held.
    extra: bool,
}

thread_local! {
    static CONTEXT: Cell<*const Context> = const { Cell::new(ptr::null()) };
}

/// The context of the worker running on this thread, if any.
///
/// Not inlined, on purpose (DESIGN.md, "Soundness"): a migratable coroutine
/// may resume on another thread, and an inlined thread-local access could
/// let the compiler reuse the old thread's address after a switch.
#[inline(never)]
pub(crate) fn context() -> Option<*const Context> {
    let p = CONTEXT.with(|c| c.get());
    if p.is_null() { None } else { Some(p) }
}

/// [`context`], inlined into the caller, or null: only for callers that
/// are themselves `#[inline(never)]` and do not use the pointer after a
/// switch (`coop::charge`).
#[inline(always)]
pub(crate) fn context_raw() -> *const Context {
    CONTEXT.with(|c| c.get())
}

/// The stack-overflow report's view of the coroutine running on this
/// thread (registered with `stack::set_resolver`): reads only this thread's
/// const thread-local and the worker's `current` pointer, so it is
/// async-signal-safe. `current` is non-null only while that coroutine runs,
/// and the worker holds a reference to it meanwhile.
pub(crate) fn current_guard() -> *const stack::GuardInfo {
    match current_task() {
        // SAFETY: see above; the header outlives its running period.
        Some(h) => unsafe { &raw const (*h.as_ptr()).guard },
        None => ptr::null(),
    }
}

/// The coroutine running on this thread, if any.
#[inline(never)]
pub(crate) fn current_task() -> Option<NonNull<Header>> {
    let p = CONTEXT.with(|c| c.get());
    if p.is_null() {
        return None;
    }
    // SAFETY: a non-null CONTEXT points at the live context of this
    // thread's worker loop (set in `run`, cleared before it returns).
    NonNull::new(unsafe { (*(*p).remote).current.load(Ordering::Relaxed) })
}

impl Context {
    /// A context for worker `index`, with its local queue of new
    /// coroutines (whose stealer is already in `shared`).
    pub(crate) fn new(
        shared: Arc<Shared>,
        index: usize,
        fresh: Deque<TaskRef>,
        extra: bool,
    ) -> Context {
        let remote: *const Remote = &*shared.remotes[index];
        let policy = shared.remotes[index].policy.is_some();
        let tracing = shared.trace.is_some();
        // The worker caches stacks of its runtime's default size.
        let pool =
            LocalPool::with_size(shared.config.stack_size).unwrap_or_else(|_| LocalPool::new());
        Context {
            shared,
            index,
            remote,
            ready: UnsafeCell::new(VecDeque::with_capacity(256)),
            next: Cell::new(None),
            fresh,
            timers: RefCell::new(TimerHeap::new()),
            timed: UnsafeCell::new(VecDeque::new()),
            timed_streak: Cell::new(0),
            pool: RefCell::new(pool),
            until_global: Cell::new(GLOBAL_INTERVAL),
            fresh_hint: Cell::new(0),
            ids: Cell::new((0, 0)),
            next_streak: Cell::new(0),
            sample_in: Cell::new(1),
            rng: Cell::new(
                0x9E37_79B9_7F4A_7C15 ^ (index as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9),
            ),
            spare: RefCell::new(Vec::new()),
            task_cache: UnsafeCell::new(alloc::Cache::new()),
            budget: Cell::new(BUDGET),
            slice_end: Cell::new(u64::MAX),
            next_due: Cell::new(u64::MAX),
            forced: Cell::new(Why::Preempted),
            timed_turns: tracing || policy,
            policy,
            tracing,
            extra,
        }
    }

    /// Takes this worker's queue of new coroutines (empty once it has
    /// retired), so an extra worker's slot can be started again.
    pub(crate) fn take_fresh(&mut self) -> Deque<TaskRef> {
        std::mem::replace(&mut self.fresh, Deque::new_fifo())
    }

    /// Runs `f` on this worker's task-memory cache.
    ///
    /// # Safety
    /// Called on this worker's thread; `f` must not reach this function
    /// again (it only pushes or pops a block).
    #[inline]
    pub(crate) unsafe fn with_task_cache<R>(&self, f: impl FnOnce(&mut alloc::Cache) -> R) -> R {
        // SAFETY: per the contract, no other reference to the cache exists.
        f(unsafe { &mut *self.task_cache.get() })
    }

    /// The ready queue.
    ///
    /// An `UnsafeCell` rather than a `RefCell` because it sits on the
    /// switch path: every use is one queue operation in a single statement
    /// on this worker's thread, never held across a switch or user code,
    /// so no two references to it ever coexist.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    fn ready(&self) -> &mut VecDeque<TaskRef> {
        // SAFETY: see above.
        unsafe { &mut *self.ready.get() }
    }

    /// The queue of timer wake-ups; an `UnsafeCell` for the same reason
    /// as `ready` (one operation per statement, this thread only).
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    fn timed(&self) -> &mut VecDeque<TaskRef> {
        // SAFETY: as in `ready`.
        unsafe { &mut *self.timed.get() }
    }

    /// Whether a coroutine is ready to run here (after a reactor poll
    /// woke some onto this worker).
    fn has_runnable(&self) -> bool {
        // SAFETY: `next` is only touched by this worker's thread; we put
        // back what we took.
        let next = self.next.take();
        let some = next.is_some();
        self.next.set(next);
        some || !self.ready().is_empty()
            || self.remote().inbox.has_items()
            || self.queue().is_some_and(|q| q.len() > 0)
    }

    /// This worker's shared part.
    #[inline]
    fn remote(&self) -> &Remote {
        // SAFETY: points into `self.shared.remotes`, which lives as long as
        // `self.shared` (an Arc we hold) and is never reallocated.
        unsafe { &*self.remote }
    }

    /// A fresh coroutine id, from this worker's reserved block.
    pub(crate) fn next_id(&self) -> u64 {
        let (mut next, mut end) = self.ids.get();
        if next == end {
            next = crate::coroutine::reserve_ids(ID_BLOCK);
            end = next + ID_BLOCK;
        }
        self.ids.set((next + 1, end));
        next
    }

    /// Pushes a new coroutine spawned on this worker.
    pub(crate) fn push_new(&self, task: TaskRef) {
        let r = self.remote();
        // Only this worker writes its counter: load + store, no RMW.
        r.spawned
            .store(r.spawned.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        self.fresh.push(task);
        self.fresh_hint.set(self.fresh_hint.get() + 1);
        if self.shared.multi_worker() {
            self.shared.notify_one();
        }
    }

    /// Enqueues a coroutine woken by a coroutine of this worker: into the
    /// `next` slot, the previous occupant going to the back of `ready`.
    /// Schedules a woken coroutine of this worker's runtime from this
    /// worker: into the `next` slot if it belongs here (or may move),
    /// else to its owner's inbox.
    pub(crate) fn schedule_from_worker(&self, task: TaskRef) {
        let h = task.header();
        if h.migratable && !self.policy {
            // Never into a private queue: `fresh` is stealable, so if this
            // worker gets held by a coroutine that makes no runtime call,
            // others (or the monitor) can take it.
            h.worker.store(self.index, Ordering::Relaxed);
            self.push_stealable(task);
        } else if h.worker.load(Ordering::Relaxed) == self.index || h.migratable {
            h.worker.store(self.index, Ordering::Relaxed);
            self.schedule_local(task);
        } else {
            self.shared.schedule_remote(task);
        }
    }

    /// Enqueues a woken coroutine of this worker: into the `next` slot
    /// (the previous occupant to the back of `ready`), or into the policy.
    pub(crate) fn schedule_local(&self, task: TaskRef) {
        if self.policy {
            self.admit(task, Why::Woken);
        } else if let Some(prev) = self.next.replace(Some(task)) {
            self.ready().push_back(prev);
        }
    }

    /// Pushes a runnable coroutine where other workers can steal it.
    fn push_stealable(&self, task: TaskRef) {
        self.fresh.push(task);
        self.fresh_hint.set(self.fresh_hint.get() + 1);
        if self.shared.multi_worker() {
            self.shared.notify_one();
        }
    }

    /// Puts a coroutine that is still runnable after its turn back in
    /// line: under a policy, as the policy orders it; else a migratable
    /// one into the injector (fair, and out of reach of a held worker),
    /// the others to the back of `ready`.
    #[inline(always)]
    fn requeue<const TIMED: bool>(&self, task: TaskRef, why: Why) {
        if TIMED && self.policy {
            // What arrived during the turn came first.
            self.admit_pending();
            self.admit(task, why);
        } else if task.header().migratable {
            self.shared.injector.push(task);
            self.shared.notify_one();
        } else {
            self.ready().push_back(task);
        }
    }

    /// The policy's queue, locked; `None` under `Fifo`.
    ///
    /// A lock rather than a `RefCell` because other threads take from it:
    /// idle workers steal not-yet-started coroutines, the monitor moves
    /// new and migratable ones off a held worker. Uncontended otherwise;
    /// never held across a switch or while taking another worker's queue.
    fn queue(&self) -> Option<std::sync::MutexGuard<'_, Box<dyn RunQueue<TaskRef>>>> {
        let q = self.remote().policy.as_ref()?;
        Some(q.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Hands a runnable coroutine to the policy's queue.
    fn admit(&self, task: TaskRef, why: Why) {
        let Some(mut q) = self.queue() else {
            unreachable!("admit without a policy")
        };
        let now = self.shared.now_ns();
        // SAFETY: the coroutine is runnable and in this worker's hands,
        // and we hold this worker's queue lock (`Header::sched`).
        let s = unsafe { sched_data(&task) };
        s.nice = task.header().nice.load(Ordering::Relaxed);
        q.push(task, s, why, now);
    }

    /// Reserves a stack for a coroutine spawned on this worker, from the
    /// worker's local claim credits when it can (see `LocalPool`).
    pub(crate) fn reserve_stack(&self, size: usize) -> std::io::Result<stack::Reservation> {
        self.pool.borrow_mut().reserve_claim(size)
    }

    /// Registers a timer that unparks `task` at `deadline` unless it parked
    /// again since (its generation moved on).
    ///
    /// A migratable coroutine's timer goes to the runtime's shared heap,
    /// so any worker (or the monitor) can fire it even if this worker is
    /// held by then.
    pub(crate) fn add_timer(&self, deadline: Instant, task: TaskRef, generation: u64) {
        if task.header().migratable {
            self.shared
                .add_shared_timer(deadline, Timer { task, generation });
            return;
        }
        self.timers
            .borrow_mut()
            .push(deadline, Timer { task, generation });
    }

    /// The worker thread's main function.
    pub(crate) fn run(&self) {
        CONTEXT.with(|c| c.set(self));
        let retired = if self.timed_turns {
            self.run_loop::<true>()
        } else {
            self.run_loop::<false>()
        };
        if !retired {
            self.shutdown();
        }
        CONTEXT.with(|c| c.set(ptr::null()));
    }

    /// The loop until shutdown (returns false) or an extra worker's
    /// retirement (true). `TIMED` is `timed_turns`, fixed per runtime:
    /// compiled twice so the `Fifo` loop without tracing carries no
    /// branch for policies and turn timing.
    fn run_loop<const TIMED: bool>(&self) -> bool {
        while !self.shared.is_shutdown() {
            if let Some(task) = self.next_task::<TIMED>() {
                self.run_task::<TIMED>(task);
            } else if self.extra && self.may_retire() {
                return true;
            } else {
                self.idle();
            }
        }
        false
    }

    /// `run_task` for the cold callers (stealing, shutdown).
    fn run_task_any(&self, task: TaskRef) {
        if self.timed_turns {
            self.run_task::<true>(task);
        } else {
            self.run_task::<false>(task);
        }
    }

    /// `next_task` for the cold callers (shutdown).
    fn next_task_any(&self) -> Option<TaskRef> {
        if self.timed_turns {
            self.next_task::<true>()
        } else {
            self.next_task::<false>()
        }
    }

    /// An extra worker may retire once no worker is held and it has
    /// nothing queued and no coroutine of its own alive (started ones
    /// never leave their worker).
    fn may_retire(&self) -> bool {
        self.shared.held_workers() == 0
            && self.fresh.is_empty()
            && !self.has_runnable()
            && self.timers.borrow().is_empty()
            && self.shared.registry.owned_by(self.index).is_empty()
    }

    #[inline(always)]
    fn next_task<const TIMED: bool>(&self) -> Option<TaskRef> {
        if TIMED && self.policy {
            return self.next_task_policy();
        }
        if self.global_turn() {
            if let Some(t) = self.pop_injector() {
                return Some(t);
            }
            self.fire_timers();
        }
        let remote = self.remote();
        if remote.inbox.has_items() {
            let mut spare = self.spare.borrow_mut();
            remote.inbox.drain_into(&mut spare);
            self.ready().extend(spare.drain(..));
        }
        let streak = self.next_streak.get();
        if let Some(t) = self.next.take() {
            if streak < MAX_NEXT_STREAK {
                self.next_streak.set(streak + 1);
                return Some(t);
            }
            self.ready().push_back(t);
        }
        self.next_streak.set(0);
        // Timer wake-ups first, but at most MAX_TIMED_STREAK in a row, so
        // a flood of expiring timers cannot starve the other queues.
        let timed_streak = self.timed_streak.get();
        if timed_streak < MAX_TIMED_STREAK {
            if let Some(t) = self.timed().pop_front() {
                self.timed_streak.set(timed_streak + 1);
                return Some(t);
            }
        }
        self.timed_streak.set(0);
        // Alternate between the two (the countdown's parity is as good a
        // coin as a tick counter of its own).
        let local = if self.until_global.get() & 1 == 0 {
            self.ready().pop_front().or_else(|| self.pop_fresh())
        } else {
            self.pop_fresh().or_else(|| self.ready().pop_front())
        };
        if local.is_some() {
            return local;
        }
        if let Some(t) = self.pop_injector() {
            return Some(t);
        }
        // Also what a streak cut left in `timed`: nothing else is queued.
        self.fire_timers();
        self.timed().pop_front()
    }

    /// Counts a pick; every `GLOBAL_INTERVAL`-th one polls the reactor
    /// without waiting (readiness must be seen even when no worker is
    /// idle; skipped if another worker is the driver) and returns true:
    /// the caller then looks at the injector and the timers first.
    #[inline(always)]
    fn global_turn(&self) -> bool {
        let until_global = self.until_global.get() - 1;
        self.until_global.set(until_global);
        if until_global != 0 {
            return false;
        }
        self.until_global.set(GLOBAL_INTERVAL);
        // Without sockets there is nothing to see, and the system call
        // would cost a busy worker more than its picks in between.
        if self.shared.reactor.has_sockets() {
            self.shared.reactor.poll(Some(Duration::ZERO));
        }
        true
    }

    /// `next_task` under a policy: wake-ups and new coroutines are
    /// admitted into the policy's queue, which picks.
    fn next_task_policy(&self) -> Option<TaskRef> {
        if self.global_turn() {
            if let Some(t) = self.pop_injector() {
                self.admit_any(t);
            }
            self.fire_timers();
        }
        // Timers first at every pick (not every 61st): a turn cut short
        // because a timer was due must find its coroutine admitted.
        let due = self.timers.borrow().peek_deadline();
        if due.is_some_and(|d| d <= Instant::now()) {
            self.fire_timers();
        }
        self.admit_pending();
        let now = self.shared.now_ns();
        if let Some(t) = self.queue().and_then(|mut q| q.pop(now)) {
            return Some(t);
        }
        if let Some(t) = self.pop_injector() {
            self.admit_any(t);
        } else {
            self.fire_timers();
        }
        self.admit_pending();
        self.queue().and_then(|mut q| q.pop(now))
    }

    /// Admits what arrived since the last pick: the inbox's wake-ups and
    /// this worker's new coroutines.
    fn admit_pending(&self) {
        let remote = self.remote();
        if remote.inbox.has_items() {
            let mut spare = self.spare.borrow_mut();
            remote.inbox.drain_into(&mut spare);
            for t in spare.drain(..) {
                self.admit(t, Why::Woken);
            }
        }
        while let Some(t) = self.pop_fresh() {
            self.admit_any(t);
        }
    }

    /// Admits a coroutine from `fresh` or the injector: new, or a woken
    /// migratable one.
    fn admit_any(&self, t: TaskRef) {
        let why = if State::lifecycle(t.header().state.load_relaxed()) == NEW {
            Why::New
        } else {
            Why::Woken
        };
        self.admit(t, why);
    }

    /// Pops the newest new coroutine, skipping the deque when the hint
    /// says it is empty.
    #[inline(always)]
    fn pop_fresh(&self) -> Option<TaskRef> {
        let hint = self.fresh_hint.get();
        if hint == 0 {
            return None;
        }
        let t = self.fresh.pop();
        self.fresh_hint.set(if t.is_some() { hint - 1 } else { 0 });
        t
    }

    fn pop_injector(&self) -> Option<TaskRef> {
        loop {
            match self.shared.injector.steal_batch_and_pop(&self.fresh) {
                Steal::Success(t) => {
                    self.fresh_hint.set(self.fresh.len());
                    return Some(t);
                }
                Steal::Empty => return None,
                Steal::Retry => continue,
            }
        }
    }

    /// Unparks every coroutine whose timer is due; returns whether any was.
    fn fire_timers(&self) -> bool {
        let shared_fired = self.shared.fire_shared_timers();
        let mut timers = self.timers.borrow_mut();
        if timers.is_empty() {
            return shared_fired;
        }
        let now = Instant::now();
        let mut fired = false;
        while let Some((_, t)) = timers.pop_expired(now) {
            let h = t.task.header();
            if h.park_gen.load(Ordering::Relaxed) == t.generation
                && h.state.unpark() == crate::park::state::Wake::Schedule
            {
                fired = true;
                // Its timer is here, so it parked here: this is its worker
                // (a migratable one makes it so).
                h.worker.store(self.index, Ordering::Relaxed);
                // SAFETY: PARKED → QUEUED by us: we own the reference the
                // parked coroutine kept (see `resume`).
                let woken = unsafe { TaskRef::adopt(t.task.as_ptr()) };
                if self.policy {
                    self.admit(woken, Why::Woken);
                } else if h.migratable {
                    self.push_stealable(woken);
                } else {
                    self.timed().push_back(woken);
                }
            }
        }
        // Cancelled timers must not pile up (time/heap.rs, "Compaction"):
        // O(1) unless the heap grew by half since the last look.
        if timers.compaction_due() {
            let mut stale = Vec::new();
            timers.compact(now, Timer::is_stale, &mut stale);
            // Dropping may free tasks: not under the heap's borrow.
            drop(timers);
            drop(stale);
        }
        fired
    }

    /// Whether to time the next resume: a countdown to the next sample,
    /// redrawn (xorshift, 1..=2*RUN_TIME_SAMPLE-1, mean RUN_TIME_SAMPLE)
    /// after each one, so alternating coroutines are sampled fairly.
    #[inline]
    fn sample_next(&self) -> bool {
        let left = self.sample_in.get();
        if left > 1 {
            self.sample_in.set(left - 1);
            return false;
        }
        let x = self.random();
        self.sample_in.set(1 + x % (2 * RUN_TIME_SAMPLE - 1));
        true
    }

    /// The next value of this worker's xorshift generator.
    fn random(&self) -> u64 {
        let mut x = self.rng.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.set(x);
        x
    }

    /// Resumes (or starts) one coroutine until it yields, parks or ends.
    ///
    /// Written as compares for the two common states (a yielded coroutine
    /// is `RUNNING`, a woken one `QUEUED`) with the rest out of line: a
    /// `match` on the lifecycle compiled to an indirect jump per switch.
    #[inline(always)]
    fn run_task<const TIMED: bool>(&self, task: TaskRef) {
        let h = task.header();
        let lifecycle = State::lifecycle(h.state.load_relaxed());
        if lifecycle == QUEUED {
            h.state.resume_queued();
        } else if lifecycle != RUNNING && !self.prepare_other(&task, lifecycle) {
            return;
        }
        if h.migratable {
            // It may have come from the injector (woken, or yielded): this
            // worker is its home now.
            h.worker.store(self.index, Ordering::Relaxed);
        }
        self.resume::<TIMED>(task);
    }

    /// `run_task` for a coroutine neither yielded nor woken: starts a new
    /// one; returns false if there is nothing to resume.
    #[inline(never)]
    fn prepare_other(&self, task: &TaskRef, lifecycle: u32) -> bool {
        match lifecycle {
            NEW if self.shared.is_shutdown() => {
                task.cancel_unstarted();
                false
            }
            NEW => self.start(task),
            DONE => false,
            _ => unreachable!("a parked coroutine was queued"),
        }
    }

    /// Gives a new coroutine its stack; returns false if it cannot run.
    #[inline(never)]
    fn start(&self, task: &TaskRef) -> bool {
        let h = task.header();
        if !h.state.start() {
            return false; // cancelled by shutdown meanwhile
        }
        let r = self.remote();
        r.started
            .store(r.started.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        let hp = task.as_ptr();
        // SAFETY: we won the NEW → RUNNING claim: this worker alone owns
        // the run state now (task.rs invariant 2).
        let run = unsafe { &mut *h.run.get() };
        let Stage::Reserved(reservation) = run.stage.take() else {
            unreachable!("a new coroutine without a stack reservation")
        };
        let stack = match self.pool.borrow_mut().take(reservation) {
            Ok(s) => s,
            Err(e) => {
                self.fail_start(task, e);
                return false;
            }
        };
        h.worker.store(self.index, Ordering::Relaxed);
        h.guard.attach(&stack);
        self.shared.registry.insert(task, self.index);
        run.stage = Stage::Running(RawCo::with_stack(stack, move |y, ()| {
            // SAFETY: the worker holds a TaskRef while it resumes us, so the
            // header is alive; this runs once, on our own stack.
            unsafe {
                (*hp.as_ref().run.get()).yielder = y;
                task::run_body(hp);
                crate::coroutine::local::destroy_current(hp);
            }
        }));
        true
    }

    #[cold]
    fn fail_start(&self, task: &TaskRef, e: std::io::Error) {
        let h = task.header();
        eprintln!("spindle: coroutine {} could not start: {e}", h.id());
        // Completes through the cancel path, with the error as the payload
        // (the task is RUNNING, so cancel_unstarted would refuse).
        crate::coroutine::fail_unstarted(task, e);
    }

    #[inline(always)]
    fn resume<const TIMED: bool>(&self, task: TaskRef) {
        let h = task.header();
        let hp: *const Header = h;
        let remote = self.remote();
        // Relaxed: read by this thread (`current_task`) and, as a hint
        // only, by snapshots.
        remote.current.store(hp.cast_mut(), Ordering::Relaxed);
        // The monitor tells turns apart by this count (only we write it).
        remote
            .turns
            .store(remote.turns.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        // Under a policy the budget counts calls to the next clock read.
        self.budget
            .set(if TIMED && self.policy { 1 } else { BUDGET });
        let turn_start = if TIMED { self.begin_turn(&task) } else { 0 };
        // SAFETY: task.rs invariant 2: this worker runs the coroutine; we
        // take raw pointers to disjoint fields so the coroutine's own
        // accesses to `run` (yielder, locals) do not alias a `&mut`.
        let stage = unsafe { ptr::addr_of_mut!((*h.run.get()).stage) };
        h.scheduled
            .store(h.scheduled.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        // Run time is sampled: reading the clock costs ~20 ns here, more
        // than a switch, so one resume in RUN_TIME_SAMPLE is timed and
        // charged RUN_TIME_SAMPLE times over, chosen pseudo-randomly so
        // coroutines that alternate are sampled fairly (Go samples its
        // scheduler tracking the same way).
        let sampled = self.sample_next();
        let t0 = if sampled { clock::ticks() } else { 0 };
        // SAFETY: as above; a started coroutine is `Running`.
        let result = match unsafe { &mut *stage } {
            Stage::Running(co) => co.resume(()),
            _ => unreachable!("resumed a coroutine that is not running"),
        };
        if sampled {
            let dt = clock::ticks().wrapping_sub(t0) * RUN_TIME_SAMPLE;
            h.run_ticks
                .store(h.run_ticks.load(Ordering::Relaxed) + dt, Ordering::Relaxed);
        }
        remote.current.store(ptr::null_mut(), Ordering::Relaxed);
        if TIMED {
            let runnable = matches!(
                result,
                CoroutineResult::Yield(Suspend::Yield | Suspend::Forced)
            );
            self.end_turn(&task, turn_start, !runnable);
        }
        // Compares, most frequent first (a `match` compiled to an indirect
        // jump per switch).
        let CoroutineResult::Yield(why) = result else {
            // SAFETY: invariant 2; the coroutine has returned, so nothing
            // on its stack is live.
            let Stage::Running(co) = (unsafe { &mut *stage }).take() else {
                unreachable!("a finished coroutine vanished")
            };
            self.pool.borrow_mut().give(co.into_stack());
            task.finish();
            return;
        };
        if why == Suspend::Yield {
            self.requeue::<TIMED>(task, Why::Yielded);
        } else if why == Suspend::Park {
            if h.state.commit_park() {
                // PARKED: the coroutine keeps this reference; the unparker
                // that moves it to QUEUED adopts it for the run queue
                // (`park::unpark_task`), so a wake-up costs no
                // reference-count traffic.
                std::mem::forget(task);
            } else if self.policy {
                // A token arrived while it was switching out.
                self.admit(task, Why::Woken);
            } else if h.migratable {
                // The same, for one that must stay out of reach of a held
                // worker.
                self.push_stealable(task);
            } else {
                // A token arrived while it was switching out.
                self.ready().push_front(task);
            }
        } else {
            remote.forced_yields.store(
                remote.forced_yields.load(Ordering::Relaxed) + 1,
                Ordering::Relaxed,
            );
            if !self.policy {
                // A turn that spent its budget was CPU-bound: the timers
                // would otherwise wait for the 61st tick, up to 61 budgets
                // (milliseconds) late. One clock read per 128 runtime calls.
                self.fire_timers();
            }
            self.requeue::<TIMED>(task, self.forced.get());
        }
    }

    /// Starts a turn under a policy or tracing: asks the policy for the
    /// slice, notes when the next timer is due; returns the start time.
    fn begin_turn(&self, task: &TaskRef) -> u64 {
        let now = self.shared.now_ns();
        if let Some(mut q) = self.queue() {
            // SAFETY: we run this coroutine, and hold our queue lock.
            let s = unsafe { sched_data(task) };
            s.nice = task.header().nice.load(Ordering::Relaxed);
            let slice = q.slice(s, now);
            self.slice_end
                .set(slice.map_or(u64::MAX, |d| now.saturating_add(d)));
            let due = self
                .timers
                .borrow()
                .peek_deadline()
                .map_or(u64::MAX, |d| self.shared.instant_ns(d));
            self.next_due.set(due);
        }
        now
    }

    /// Ends a turn begun by `begin_turn`: charges the policy, records the
    /// turn if tracing. `parked` says the turn ended in a park or return.
    fn end_turn(&self, task: &TaskRef, start: u64, parked: bool) {
        let now = self.shared.now_ns();
        let ran = now.saturating_sub(start);
        if let Some(mut q) = self.queue() {
            // SAFETY: as in `begin_turn`.
            let s = unsafe { sched_data(task) };
            q.charge(s, ran, parked, now);
        }
        if self.tracing {
            self.shared
                .record_turn(self.index, task.header().id(), start, now);
        }
    }

    /// Whether the running coroutine's turn is over at this runtime call,
    /// and why (`coop::charge` calls this on every runtime call).
    ///
    /// Under `Fifo` a turn lasts [`BUDGET`] runtime calls; under a policy
    /// its slice replaces the budget (a loop that calls `checkpoint()`
    /// millions of times a second must still get its whole slice). Under
    /// both, the monitor's mark ends it.
    #[inline]
    pub(crate) fn turn_over(&self) -> Option<Why> {
        let remote = self.remote();
        if remote.preempt.load(Ordering::Relaxed) {
            // Consumed here rather than cleared at every resume: a mark
            // left by a turn that ended without a runtime call costs the
            // next turn one early yield, and the switch path one load less.
            remote.preempt.store(false, Ordering::Relaxed);
            return Some(Why::Preempted);
        }
        if !self.policy {
            let b = self.budget.get();
            if b <= 1 {
                return Some(Why::Preempted);
            }
            self.budget.set(b - 1);
            return None;
        }
        if remote.inbox.has_items() {
            return Some(Why::Interrupted);
        }
        // The clock costs ~20 ns here, more than a tight loop's iteration:
        // read it at every CLOCK_STRIDE-th call (the first call of a turn
        // reads it), so a slice or a due timer is noticed at most that many
        // calls late.
        let b = self.budget.get();
        if b > 1 {
            self.budget.set(b - 1);
            return None;
        }
        self.budget.set(CLOCK_STRIDE);
        let now = self.shared.now_ns();
        if now >= self.slice_end.get() {
            Some(Why::Preempted)
        } else if now >= self.next_due.get() {
            Some(Why::Interrupted)
        } else {
            None
        }
    }

    /// Records why the coroutine about to suspend with `Suspend::Forced`
    /// gave way.
    pub(crate) fn set_forced(&self, why: Why) {
        self.forced.set(why);
    }

    /// No local work: steal if allowed to search, else sleep until woken.
    fn idle(&self) {
        // Spin a little before sleeping, as Go's findrunnable does: a
        // futex sleep and wake costs microseconds, and work (a stealable
        // spawn, a wake-up in the inbox) often arrives within that.
        //
        // The inbox is watched during the spin, not only between rounds: a
        // coroutine here that waits for one on another worker (a channel
        // ping-pong across workers) is woken through it, and each wake-up
        // noticed a round late costs the whole round, microseconds.
        //
        // With sockets registered, one round and no spin: one look at
        // the reactor (which nobody else may be polling) and one search,
        // then sleep, which for the reactor's driver means `epoll_wait`,
        // woken by the next event as soon as a spin would see it. Spinning
        // there bought no latency and took the CPU from the threads that
        // produce the events: with 2 workers beside a load generator on 2
        // CPUs, `tcp_echo` served 15% more messages per second without
        // it (BENCHMARKS.md). Channel-only programs, whose wake-ups come
        // through the inbox, spin and make no system call here.
        let remote = self.remote();
        let sockets = self.shared.reactor.has_sockets();
        for round in 0..SPIN_ROUNDS {
            if sockets && self.shared.reactor.poll(Some(Duration::ZERO)) && self.has_runnable() {
                return;
            }
            if self.shared.idle.try_begin_search() && self.search_and_run() {
                return;
            }
            if sockets {
                break;
            }
            for _ in 0..(64 << round) {
                std::hint::spin_loop();
                if remote.inbox.has_items() {
                    return;
                }
            }
            if !self.fresh.is_empty() || self.shared.is_shutdown() {
                return;
            }
        }
        self.sleep();
    }

    /// Searches (already counted as a searcher) and runs what it finds;
    /// returns whether it found anything.
    fn search_and_run(&self) -> bool {
        let found = self.steal();
        let last = self.shared.idle.end_search();
        match found {
            Some(t) => {
                if last {
                    // Go's resetspinning: there may be more; keep one looking.
                    self.shared.notify_one();
                }
                self.run_task_any(t);
                true
            }
            None => false,
        }
    }

    /// Steals half of another worker's new coroutines, or from the injector.
    fn steal(&self) -> Option<TaskRef> {
        let remotes = &self.shared.remotes;
        let n = remotes.len();
        let start = self.random() as usize % n.max(1);
        for k in 0..n {
            let i = (start + k) % n;
            if i == self.index {
                continue;
            }
            loop {
                match remotes[i].stealer.steal_batch_and_pop(&self.fresh) {
                    Steal::Success(t) => {
                        self.fresh_hint.set(self.fresh.len());
                        return Some(t);
                    }
                    Steal::Empty => break,
                    Steal::Retry => continue,
                }
            }
        }
        self.pop_injector().or_else(|| self.steal_admitted(start))
    }

    /// Under a policy: steals about half of another worker's admitted but
    /// not-yet-started coroutines from its policy queue (at most 32);
    /// runs the first, admits the rest here.
    fn steal_admitted(&self, start: usize) -> Option<TaskRef> {
        if !self.policy {
            return None;
        }
        let remotes = &self.shared.remotes;
        let n = remotes.len();
        let mut stolen = Vec::new();
        for k in 0..n {
            let i = (start + k) % n;
            if i == self.index || !remotes[i].active.load(Ordering::Relaxed) {
                continue;
            }
            let Some(q) = &remotes[i].policy else {
                continue;
            };
            let mut q = q.lock().unwrap_or_else(|e| e.into_inner());
            let max = q.len().div_ceil(2).min(32);
            let mut is_new = |t: &TaskRef| State::lifecycle(t.header().state.load_relaxed()) == NEW;
            q.take_if(&mut is_new, max, &mut stolen);
            drop(q);
            if !stolen.is_empty() {
                break;
            }
        }
        let mut stolen = stolen.into_iter();
        let first = stolen.next()?;
        for t in stolen {
            self.admit(t, Why::New);
        }
        Some(first)
    }

    /// Sleeps on the futex until woken or until the next timer is due.
    fn sleep(&self) {
        // Idle: a good time to drop cancelled timers that no push would
        // reveal (time/heap.rs, "Compaction"); at most once a second.
        let now = Instant::now();
        let mut timers = self.timers.borrow_mut();
        if timers.compaction_due_idle(now) {
            let mut stale = Vec::new();
            timers.compact(now, Timer::is_stale, &mut stale);
            drop(timers);
            drop(stale);
        } else {
            drop(timers);
        }
        let shared = &self.shared;
        let remote = &shared.remotes[self.index];
        // Publish SLEEPING, register, then re-check (README, protocol 2).
        remote.sleep.store(SLEEPING, Ordering::SeqCst);
        shared.idle.add_sleeper(self.index);
        std::sync::atomic::fence(Ordering::SeqCst);
        let local_due = self.timers.borrow().peek_deadline();
        let due = match (local_due, self.shared.shared_timer_due()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mut timeout = due.map(|d| d.saturating_duration_since(Instant::now()));
        if self.extra {
            // An extra worker looks again now and then whether it may
            // retire (its last coroutine may have ended elsewhere in time).
            timeout = Some(timeout.map_or(EXTRA_RECHECK, |t| t.min(EXTRA_RECHECK)));
        }
        let must_stay = shared.is_shutdown()
            || shared.has_visible_work(self.index)
            || timeout == Some(Duration::ZERO);
        if !must_stay {
            // Become the reactor's driver if no other worker is: wait in
            // epoll_wait (woken by I/O, a timer, or `wake_worker` through
            // the reactor's waker) instead of on the futex.
            remote.polling.store(true, Ordering::SeqCst);
            let woken_first = remote.sleep.load(Ordering::SeqCst) != SLEEPING;
            // A timer due within EPOLL_GRAIN is waited for on the futex
            // alone; a later one ends the epoll wait EPOLL_GRAIN early.
            let precise = timeout.is_some_and(|t| t < EPOLL_GRAIN);
            // Woken between the check above and the driver lock: see
            // `Reactor::poll_unless`.
            let woken = || remote.sleep.load(Ordering::SeqCst) != SLEEPING;
            if woken_first
                || precise
                || !shared
                    .reactor
                    .poll_unless(timeout.map(|t| t - EPOLL_GRAIN), woken)
            {
                remote.polling.store(false, Ordering::SeqCst);
                if !woken_first {
                    futex::wait(&remote.sleep, SLEEPING, timeout);
                }
            }
            remote.polling.store(false, Ordering::SeqCst);
        }
        let word = shared
            .idle
            .wake_up(self.index, || remote.sleep.swap(AWAKE, Ordering::SeqCst));
        if word == NOTIFIED_SEARCHING {
            // `notify_one` took us off the list and counted us as searching.
            self.search_and_run();
        }
        self.fire_timers();
    }

    /// Shutdown: cancel everything this worker owns and run the
    /// cancelled coroutines until they have unwound (README, "Shutdown").
    fn shutdown(&self) {
        let deadline = *self
            .shared
            .shutdown_deadline
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        loop {
            // New coroutines never start once shutdown began.
            while let Some(t) = self.fresh.pop() {
                self.drop_queued(t);
            }
            while let Some(t) = self.pop_injector() {
                self.drop_queued(t);
            }
            for t in self.shared.registry.owned_by(self.index) {
                if t.header().state.cancel() == crate::park::state::Wake::Schedule {
                    // SAFETY: PARKED → QUEUED by us: we own the reference
                    // the parked coroutine kept (see `run_task`).
                    self.schedule_local(unsafe { TaskRef::adopt(t.as_ptr()) });
                }
            }
            while let Some(t) = self.next_task_any() {
                self.run_task_any(t);
            }
            if self.shared.registry.owned_by(self.index).is_empty() {
                break;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            // Wait for wake-ups from other workers' unwinding coroutines.
            let remote = &self.shared.remotes[self.index];
            remote.sleep.store(SLEEPING, Ordering::SeqCst);
            std::sync::atomic::fence(Ordering::SeqCst);
            if !remote.inbox.has_items() {
                let until_timer = self.timers.borrow().peek_deadline();
                let wake_at = match (until_timer, deadline) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                let timeout = wake_at
                    .map(|d| d.saturating_duration_since(Instant::now()))
                    .unwrap_or(Duration::from_millis(100));
                futex::wait(&remote.sleep, SLEEPING, Some(timeout));
            }
            remote.sleep.store(AWAKE, Ordering::SeqCst);
            self.fire_timers();
        }
    }

    /// A task dequeued during shutdown: never start a new one; a woken
    /// migratable one is adopted and run so it can unwind.
    fn drop_queued(&self, t: TaskRef) {
        let h = t.header();
        if State::lifecycle(h.state.load_relaxed()) == NEW {
            t.cancel_unstarted();
        } else if State::lifecycle(h.state.load_relaxed()) != DONE {
            h.worker.store(self.index, Ordering::Relaxed);
            if self.policy {
                self.admit(t, Why::Woken);
            } else {
                self.ready().push_back(t);
            }
        }
    }
}

/// The scheduling data of a coroutine, not tied to the borrow of `task`
/// (the reference is moved into a queue while the data is in use).
///
/// # Safety
/// The caller is the worker that runs `task`, or holds it runnable, and
/// holds its own queue lock (`Remote::policy`): `Header::sched` is touched
/// only under the lock of the queue the coroutine is in or about to enter
/// (thieves and the monitor take coroutines out without touching it). The
/// result is used only while the task is alive.
unsafe fn sched_data<'a>(task: &TaskRef) -> &'a mut SchedData {
    // SAFETY: per the contract.
    unsafe { &mut *task.header().sched.get() }
}

impl Drop for Context {
    fn drop(&mut self) {
        // Queues may still hold references (e.g. a timer of a coroutine
        // that was leaked because it would not finish); dropping them here
        // only decrements counts, it never unwinds a coroutine elsewhere.
        while let Some(t) = self.fresh.pop() {
            t.cancel_unstarted();
        }
        if let Some(mut q) = self.queue() {
            let mut queued = Vec::new();
            q.drain(&mut queued);
            drop(q);
            for t in queued {
                if State::lifecycle(t.header().state.load_relaxed()) == NEW {
                    t.cancel_unstarted();
                }
            }
        }
    }
}
