//! A pool's threads: how one starts, and its loop: run a task, take the
//! next (from the queue, or from a caller waiting for room), or wait idle
//! for one until the keep-alive runs out.

use std::cell::Cell;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::Arc;
use std::time::Instant;

use super::job::{HandOffCell, Task};
use super::shared::{GIVEN, Shared, Slot, State};
use crate::loom::lock;
use crate::park::WaitReason;
use crate::sync::wait::{Claim, Node, Waiter, Woken};

#[cfg(not(loom))]
std::thread_local! {
    /// The address of the [`Shared`] of the pool this thread belongs to
    /// (0 elsewhere): a `run` on a pool's own thread runs inline.
    static CURRENT: Cell<usize> = const { Cell::new(0) };
}

#[cfg(loom)]
loom::thread_local! {
    static CURRENT: Cell<usize> = Cell::new(0);
}

impl Shared {
    /// Whether the calling thread is one of this pool's.
    pub(super) fn is_current_thread(&self) -> bool {
        let me = self as *const Shared as usize;
        CURRENT.try_with(|c| c.get() == me).unwrap_or(false)
    }

    /// Starts a pool thread (under the lock, so the thread count and the
    /// `starting` queue change together with the start). The caller
    /// counts it in `alive` (and `busy`, with a first task) on success.
    pub(super) fn start_thread(
        self: &Arc<Self>,
        st: &mut State,
        with_task: bool,
    ) -> io::Result<()> {
        let shared = Arc::clone(self);
        let started = spawn_thread(
            self.config.thread_name.clone(),
            self.config.stack_size,
            move || shared.thread_main(with_task),
        );
        match started {
            Ok(()) => st.counters.threads_started += 1,
            Err(_) => st.counters.thread_start_failures += 1,
        }
        started
    }

    /// A pool thread: runs its first task if it was started with one, then
    /// whatever [`next_task`](Shared::next_task) gives it.
    fn thread_main(self: Arc<Self>, with_task: bool) {
        CURRENT.with(|c| c.set(Arc::as_ptr(&self) as usize));
        let mut task = if with_task {
            let first = lock(&self.state).starting.pop_front();
            Some(first.expect("a thread started with a task finds it in `starting`"))
        } else {
            None
        };
        loop {
            let panicked = task.map(run_task);
            match self.next_task(panicked) {
                Some(next) => task = Some(next),
                None => return,
            }
        }
    }

    /// After a task (`finished` says whether it panicked) or at a thread's
    /// start (`None`): the thread's next task, waiting idle for one if
    /// need be, or `None` when the thread should exit.
    fn next_task(&self, finished: Option<bool>) -> Option<Task> {
        let mut st = lock(&self.state);
        // Whether this thread is counted in `busy`.
        let mut busy = false;
        if let Some(panicked) = finished {
            st.counters.tasks_completed += 1;
            st.counters.tasks_panicked += u64::from(panicked);
            busy = true;
        }
        let mut timed_out = false;
        loop {
            let (task, claim) = st.take_next();
            if let Some(task) = task {
                if !busy {
                    st.busy += 1;
                }
                drop(st);
                // Wake the submitter whose task we moved, after unlocking.
                drop(claim);
                return Some(task);
            }
            if busy {
                st.busy -= 1;
                busy = false;
            }
            // Invariant 3: exit only with the queue and submitters empty,
            // as `take_next` just found them.
            if st.shutdown || (timed_out && st.alive > self.config.core_threads) {
                st.alive -= 1;
                return None;
            }
            let slot: std::pin::Pin<&mut Slot> = pin!(HandOffCell::new(None));
            let waiter = pin!(Waiter::new());
            let node = pin!(Node::new(&waiter, 0, &*slot as *const Slot as usize));
            // SAFETY: `node` is new (so unlinked), and it and `slot` are
            // pinned in this frame; below, we unlink the node ourselves
            // unless a submitter or shutdown popped it (wait.rs invariant
            // 4), before the frame ends.
            unsafe { st.idle.push_back(&node) };
            // Threads beyond the core ones retire after `keep_alive` idle.
            let deadline = if st.alive > self.config.core_threads {
                Instant::now().checked_add(self.config.keep_alive)
            } else {
                None
            };
            drop(st);
            let woken = waiter.wait(WaitReason::Blocking, deadline);
            if woken == Woken::Token(GIVEN) {
                // SAFETY: the submitter filled the slot before finishing
                // its claim, whose Release our wait's Acquire saw; nobody
                // touches the slot any more.
                let task = unsafe { slot.replace(None) };
                // The submitter counted us in `busy`.
                return Some(task.expect("a claimed idle thread is given a task"));
            }
            st = lock(&self.state);
            // Popped already if we were woken (`SHUT_DOWN`); still linked
            // if the keep-alive ran out.
            st.idle.remove(&node);
            timed_out |= matches!(woken, Woken::TimedOut | Woken::Cancelled);
        }
    }
}

impl State {
    /// The next task for a thread that looks for work, and the claim on the
    /// submitter whose task it took (to finish after unlocking): the
    /// queue's oldest; and if a caller waits for room, its task joins the
    /// queue (or is the one taken, with the queue empty: capacity 0).
    fn take_next(&mut self) -> (Option<Task>, Option<Claim>) {
        let next = self.queue.pop_front();
        // Invariant 2: callers wait only while the pool is full, so taking
        // a task (or being idle-bound with capacity 0) makes room for one.
        let Some((node, claim)) = self.submitters.pop_claim(|_| false) else {
            return (next, None);
        };
        // SAFETY: the node is valid while we hold the lock (wait.rs
        // invariant 4), and our claim gives us the submitter's slot until
        // we finish it (invariant 3).
        let offered = unsafe { (*(node.data as *const Slot)).replace(None) };
        let offered = offered.expect("a waiting submitter offers a task");
        match next {
            Some(task) => {
                self.queue.push_back(offered);
                (Some(task), Some(claim))
            }
            None => (Some(offered), Some(claim)),
        }
    }
}

/// Runs one task on a pool thread. Tasks catch the panics of their own
/// closures; this catches the rest (a result's destructor that panics,
/// dropped because the task was detached), so the thread survives.
fn run_task(task: Task) -> bool {
    match catch_unwind(AssertUnwindSafe(|| task.run())) {
        Ok(panicked) => panicked,
        Err(payload) => {
            // A payload whose destructor panics too is leaked rather than
            // let the second panic out.
            if let Err(again) = catch_unwind(AssertUnwindSafe(|| drop(payload))) {
                std::mem::forget(again);
            }
            true
        }
    }
}

/// Starts an OS thread (a loom thread in models).
#[cfg(not(loom))]
fn spawn_thread(
    name: String,
    stack_size: Option<usize>,
    f: impl FnOnce() + Send + 'static,
) -> io::Result<()> {
    let mut builder = std::thread::Builder::new().name(name);
    if let Some(bytes) = stack_size {
        builder = builder.stack_size(bytes);
    }
    builder.spawn(f).map(drop)
}

#[cfg(loom)]
fn spawn_thread(
    name: String,
    stack_size: Option<usize>,
    f: impl FnOnce() + Send + 'static,
) -> io::Result<()> {
    let mut builder = loom::thread::Builder::new().name(name);
    if let Some(bytes) = stack_size {
        builder = builder.stack_size(bytes);
    }
    builder.spawn(f).map(drop)
}
