//! What a pool's handle and its threads share: the state behind the one
//! lock, and how a submitted task is placed. The state and its invariants
//! are described in the [module docs](super#how-it-works).
//!
//! # Who changes what (all under the one lock)
//!
//! | field        | grows                                         | shrinks                                      |
//! | ------------ | --------------------------------------------- | -------------------------------------------- |
//! | `queue`      | a submitter finding no idle thread, no room for a new one | a thread looking for work      |
//! | `starting`   | a submitter starting a thread for its task    | that thread, first thing                     |
//! | `idle`       | a thread finding no work                      | a submitter (claims it), shutdown, keep-alive |
//! | `submitters` | a caller finding the pool full (`Wait`)       | a thread taking from the queue (claims it)   |
//! | `alive`      | whoever starts a thread                       | the thread itself, as it exits               |
//! | `busy`       | a thread taking work; a submitter handing work to an idle thread or starting one | the thread finding no work |

use std::collections::VecDeque;
use std::io::{self, Write as _};
use std::pin::pin;
use std::sync::Arc;

use super::builder::{Config, Rejection};
use super::error::Reason;
use super::job::{HandOffCell, IntoTask, Task};
use super::pool::PoolMetrics;
use crate::loom::{Mutex, MutexGuard, lock};
use crate::park::{self, WaitReason};
use crate::sync::wait::{Claim, Node, WaitList, Waiter, Woken};

/// What a pool's threads and its handle share.
pub(super) struct Shared {
    pub(super) state: Mutex<State>,
    pub(super) config: Config,
}

/// The pool's state; see the module docs for the invariants.
pub(super) struct State {
    pub(super) queue: VecDeque<Task>,
    /// One first task per thread started with one and not yet running.
    pub(super) starting: VecDeque<Task>,
    /// Idle threads; each node's `data` is the address of its thread's
    /// [`Slot`], which a submitter fills between claim and finish.
    pub(super) idle: WaitList,
    /// Callers waiting for room ([`Rejection::Wait`]); each node's `data`
    /// is the address of the caller's [`Slot`], holding its task, which a
    /// thread takes between claim and finish.
    pub(super) submitters: WaitList,
    pub(super) alive: usize,
    pub(super) busy: usize,
    /// The [`Pool`](super::Pool) was dropped: threads exit when they find no work.
    pub(super) shutdown: bool,
    /// A failure to start a thread while others were alive was reported.
    pub(super) warned: bool,
    pub(super) counters: Counters,
}

/// The monotonic figures of [`PoolMetrics`].
#[derive(Clone, Copy, Default)]
pub(super) struct Counters {
    pub(super) threads_started: u64,
    pub(super) thread_start_failures: u64,
    pub(super) tasks_completed: u64,
    pub(super) tasks_panicked: u64,
    pub(super) tasks_rejected: u64,
    pub(super) tasks_run_on_caller: u64,
    pub(super) submit_waits: u64,
}

/// A task handed over through a waiter (see [`State::idle`] and
/// [`State::submitters`]).
pub(super) type Slot = HandOffCell<Option<Task>>;

/// Tokens an idle thread is woken with.
pub(super) const GIVEN: usize = 0;
pub(super) const SHUT_DOWN: usize = 1;

/// How a submission went.
pub(super) enum Submitted<J> {
    /// A thread has the task, or will: it is queued, or given to an idle
    /// thread or to a new one.
    Accepted,
    /// The pool is full and the policy is [`Rejection::CallerRuns`].
    RunHere(J),
    /// The pool did not take the task.
    Refused(Reason, J),
}

/// Where [`Shared::admit`] put a task.
enum Admit<J> {
    /// Queued, or given to a thread being started.
    Placed,
    /// An idle thread is claimed: move `job` into its slot, then finish
    /// the claim (after unlocking).
    HandOff {
        claim: Claim,
        slot: *const Slot,
        job: J,
    },
    Full(J),
    NoThread(io::Error, J),
}

impl Shared {
    /// The shared part of a new pool, with no thread yet.
    pub(super) fn new(config: Config) -> Arc<Shared> {
        Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                starting: VecDeque::new(),
                idle: WaitList::new(),
                submitters: WaitList::new(),
                alive: 0,
                busy: 0,
                shutdown: false,
                warned: false,
                counters: Counters::default(),
            }),
            config,
        })
    }

    /// Starts the core threads (at `build`).
    pub(super) fn start_core_threads(self: &Arc<Self>) -> io::Result<()> {
        let core = self.config.core_threads;
        for i in 0..core {
            let mut st = lock(&self.state);
            if let Err(e) = self.start_thread(&mut st, false) {
                return Err(io::Error::new(
                    e.kind(),
                    format!(
                        "spindle: cannot start core thread {} of {core} of a blocking pool: {}",
                        i + 1,
                        Reason::no_thread_message(&e)
                    ),
                ));
            }
            st.alive += 1;
        }
        Ok(())
    }

    /// The figures of [`Pool::metrics`](super::Pool::metrics).
    pub(super) fn metrics(&self) -> PoolMetrics {
        let st = lock(&self.state);
        let c = st.counters;
        PoolMetrics {
            threads_alive: st.alive,
            threads_busy: st.busy,
            threads_idle: st.alive - st.busy,
            queue_depth: st.queue.len(),
            waiting_submitters: st.submitters.len(),
            threads_started: c.threads_started,
            thread_start_failures: c.thread_start_failures,
            tasks_completed: c.tasks_completed,
            tasks_panicked: c.tasks_panicked,
            tasks_rejected: c.tasks_rejected,
            tasks_run_on_caller: c.tasks_run_on_caller,
            submit_waits: c.submit_waits,
        }
    }

    /// The pool's handle is gone: threads exit once they find no work.
    pub(super) fn shut_down(&self) {
        let mut st = lock(&self.state);
        st.shutdown = true;
        // Busy threads see the flag when they run out of work; idle ones
        // are woken to see it.
        let mut claims = Vec::with_capacity(st.idle.len());
        while let Some((_, claim)) = st.idle.pop_claim(|_| false) {
            claims.push(claim);
        }
        drop(st);
        for claim in claims {
            claim.finish(SHUT_DOWN);
        }
    }

    /// Offers `job` to the pool and, if it is full, applies `policy`
    /// (`None`: refuse).
    pub(super) fn submit<J: IntoTask>(
        self: &Arc<Self>,
        job: J,
        policy: Option<Rejection>,
    ) -> Submitted<J> {
        let mut warning = None;
        let mut st = lock(&self.state);
        let outcome = match self.admit(&mut st, job, &mut warning) {
            Admit::Placed => {
                drop(st);
                Submitted::Accepted
            }
            Admit::HandOff { claim, slot, job } => {
                drop(st);
                // SAFETY: our claim on the idle thread's waiter gives us
                // its slot until we finish the claim (wait.rs invariant 3);
                // the slot is empty (a thread takes what it is given before
                // it idles again), so nothing is dropped here.
                let empty = unsafe { (*slot).replace(Some(job.into_task())) };
                debug_assert!(empty.is_none(), "an idle thread's slot is empty");
                claim.finish(GIVEN);
                Submitted::Accepted
            }
            Admit::NoThread(e, job) => {
                st.counters.tasks_rejected += 1;
                drop(st);
                Submitted::Refused(Reason::NoThread(e), job)
            }
            Admit::Full(job) => match policy {
                None | Some(Rejection::Error) => {
                    st.counters.tasks_rejected += 1;
                    let reason = Reason::Full {
                        busy: st.busy,
                        max_threads: self.config.max_threads,
                        queued: st.queue.len(),
                        capacity: self.config.queue_capacity.unwrap_or(usize::MAX),
                    };
                    drop(st);
                    Submitted::Refused(reason, job)
                }
                Some(Rejection::CallerRuns) => {
                    st.counters.tasks_run_on_caller += 1;
                    drop(st);
                    Submitted::RunHere(job)
                }
                Some(Rejection::Wait) => {
                    st.counters.submit_waits += 1;
                    return self.wait_for_room(st, job.into_task(), warning);
                }
            },
        };
        warn(warning);
        outcome
    }

    /// Places `job` (under the lock): with an idle thread, a new thread,
    /// or in the queue, in that order (see the module docs for why).
    /// Sets `warning` if a thread could not be started while others are
    /// alive, the first time that happens.
    fn admit<J: IntoTask>(
        self: &Arc<Self>,
        st: &mut State,
        job: J,
        warning: &mut Option<String>,
    ) -> Admit<J> {
        // Invariant 1: an idle thread means an empty queue, so handing the
        // task over jumps no queued task.
        if let Some((node, claim)) = st.idle.pop_claim(|_| false) {
            st.busy += 1;
            return Admit::HandOff {
                claim,
                slot: node.data as *const Slot,
                job,
            };
        }
        if st.alive < self.config.max_threads {
            match self.start_thread(st, true) {
                Ok(()) => {
                    st.alive += 1;
                    st.busy += 1;
                    // The new thread takes it first thing (it waits for our
                    // lock to do so).
                    st.starting.push_back(job.into_task());
                    return Admit::Placed;
                }
                // Invariant 3: nothing may be queued with no thread alive.
                Err(e) if st.alive == 0 => return Admit::NoThread(e, job),
                Err(e) => {
                    if !st.warned {
                        st.warned = true;
                        *warning = Some(format!(
                            "spindle: the blocking pool cannot start thread {} ({e}); its {} \
                             running threads serve the queue meanwhile (this is reported once). \
                             The process may be at its thread limit (RLIMIT_NPROC: `ulimit -u`; \
                             /proc/sys/kernel/threads-max; a cgroup's pids.max) or out of \
                             address space for thread stacks (RLIMIT_AS: `ulimit -v`)",
                            st.alive + 1,
                            st.alive
                        ));
                    }
                }
            }
        }
        if self
            .config
            .queue_capacity
            .is_none_or(|cap| st.queue.len() < cap)
        {
            st.queue.push_back(job.into_task());
            return Admit::Placed;
        }
        Admit::Full(job)
    }

    /// Parks the caller until a thread takes `task` from it (the pool is
    /// full and the policy is [`Rejection::Wait`]). Called with the lock
    /// held; releases it.
    fn wait_for_room<J>(
        &self,
        mut st: MutexGuard<'_, State>,
        task: Task,
        warning: Option<String>,
    ) -> Submitted<J> {
        let slot: std::pin::Pin<&mut Slot> = pin!(HandOffCell::new(Some(task)));
        let waiter = pin!(Waiter::new());
        let node = pin!(Node::new(&waiter, 0, &*slot as *const Slot as usize));
        // SAFETY: `node` is new (so unlinked), and it and `slot` are pinned
        // in this frame; below, we unlink the node ourselves unless a
        // thread popped it (wait.rs invariant 4), before the frame ends.
        unsafe { st.submitters.push_back(&node) };
        drop(st);
        warn(warning);
        match waiter.wait(WaitReason::Blocking, None) {
            // A thread claimed us and took the task from the slot.
            Woken::Token(_) => Submitted::Accepted,
            Woken::TimedOut | Woken::Cancelled => {
                lock(&self.state).submitters.remove(&node);
                // SAFETY: we aborted, so nobody claimed us: nobody took the
                // task, and nobody will touch the slot again.
                let task = unsafe { slot.replace(None) };
                // The task (user values) is dropped with no lock held.
                drop(task);
                // There is no deadline, so this is shutdown cancelling the
                // coroutine: `Woken::Cancelled` is returned only when the
                // coroutine may unwind, and this unwinds.
                park::cancellation_point();
                unreachable!("a cancelled wait unwinds at its cancellation point")
            }
        }
    }
}

/// Prints a warning without ever panicking (`eprintln!` panics if stderr
/// is closed): callers may have a task in the pool that borrows their
/// frame, so they must not unwind here.
pub(super) fn warn(warning: Option<String>) {
    if let Some(msg) = warning {
        let _ = writeln!(io::stderr(), "{msg}");
    }
}
