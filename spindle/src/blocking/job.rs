//! Tasks and how their results get back: [`JoinHandle`] for
//! [`spawn`](super::Pool::spawn), a slot on the caller's stack for
//! [`run`](super::Pool::run).
//!
//! # Invariants (this is an unsafe module)
//!
//! 1. A [`RunJob`] points at a [`RunSlot`] on its caller's stack. It is
//!    made only by [`RunJob::new`], whose caller promises not to leave its
//!    frame (neither return nor unwind) until the job has run and finished
//!    its claim on the slot's waiter, unless the job came back to it unrun
//!    (a refused submission).
//! 2. The pool never drops a task unrun: a queued task is run even after
//!    the pool's last handle is dropped (`thread.rs`), and a refused one goes
//!    back to its submitter.
//! 3. A [`RunJob`] touches its slot only before it finishes the claim: the
//!    finish's Release store is its last access (wait.rs invariant 3), after
//!    which the caller may return and free the slot.

use std::fmt;
use std::io::Write as _;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::Arc;
use std::thread;

use crate::loom::{Mutex, lock};
use crate::park::{self, WaitReason};
use crate::sync::wait::{Node, WaitList, Waiter, Woken};

/// A value handed from one thread to another under a waiter's claim (a
/// task into an idle thread's slot or out of a waiting caller's, a result
/// into the slot of `run`'s caller): std's `UnsafeCell`, or loom's in
/// models, which reports any two accesses the hand-off does not order.
pub(super) struct HandOffCell<T> {
    #[cfg(not(loom))]
    cell: std::cell::UnsafeCell<T>,
    #[cfg(loom)]
    cell: loom::cell::UnsafeCell<T>,
}

impl<T> HandOffCell<T> {
    /// A cell holding `value`.
    pub(super) fn new(value: T) -> HandOffCell<T> {
        HandOffCell {
            #[cfg(not(loom))]
            cell: std::cell::UnsafeCell::new(value),
            #[cfg(loom)]
            cell: loom::cell::UnsafeCell::new(value),
        }
    }

    /// Puts `value` in, returning what was there.
    ///
    /// # Safety
    ///
    /// The caller has the cell to itself: it holds the claim on the
    /// waiter that owns the cell, or it is that waiter and nobody holds a
    /// claim (none was made, or it was finished, which the waiter saw).
    #[cfg(not(loom))]
    pub(super) unsafe fn replace(&self, value: T) -> T {
        // SAFETY: exclusive access, by the caller's guarantee.
        std::mem::replace(unsafe { &mut *self.cell.get() }, value)
    }

    /// As above; loom checks that the caller's guarantee holds.
    ///
    /// # Safety
    ///
    /// As above.
    #[cfg(loom)]
    pub(super) unsafe fn replace(&self, value: T) -> T {
        // SAFETY: exclusive access, by the caller's guarantee.
        self.cell
            .with_mut(|p| std::mem::replace(unsafe { &mut *p }, value))
    }
}

/// A unit of work for a pool thread. `run` catches the panics of the
/// user's closure itself (and hands them to whoever waits); it returns
/// whether the closure panicked, for the pool's metrics.
pub(super) trait Job: Send {
    fn run(self: Box<Self>) -> bool;
}

/// A task as the pool stores it.
///
/// `'static` in type only for [`RunJob`]s, which borrow from a caller that
/// waits for them (invariant 1).
pub(super) type Task = Box<dyn Job>;

/// What can be submitted: kept in its own type until the pool takes it,
/// so that a refused task goes back to its submitter as it was.
pub(super) trait IntoTask: Send {
    fn into_task(self) -> Task;
}

/// The task of [`Pool::spawn`](super::Pool::spawn): runs `f` and stores its
/// result (or panic) in the packet its [`JoinHandle`] shares.
pub(super) struct SpawnJob<F, T> {
    pub(super) f: F,
    pub(super) packet: Arc<Packet<T>>,
}

impl<F, T> Job for SpawnJob<F, T>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    fn run(self: Box<Self>) -> bool {
        let SpawnJob { f, packet } = *self;
        let result = catch_unwind(AssertUnwindSafe(f));
        let panicked = result.is_err();
        packet.complete(result);
        // Dropping `packet` may drop the result, if the handle is gone (a
        // detached task): the pool thread catches a panic from that too.
        panicked
    }
}

impl<F, T> IntoTask for Box<SpawnJob<F, T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    fn into_task(self) -> Task {
        self
    }
}

/// The result of a spawned task and its joiner, shared by the task and the
/// [`JoinHandle`].
pub(super) struct Packet<T> {
    state: Mutex<PacketState<T>>,
}

struct PacketState<T> {
    /// Set once, by the task; taken once, by `join`.
    result: Option<thread::Result<T>>,
    /// The caller of `join`, while it waits (at most one: `join` takes the
    /// handle by value).
    joiner: WaitList,
}

impl<T> Packet<T> {
    pub(super) fn new() -> Packet<T> {
        Packet {
            state: Mutex::new(PacketState {
                result: None,
                joiner: WaitList::new(),
            }),
        }
    }

    /// Stores the result and wakes the joiner, if it waits.
    fn complete(&self, result: thread::Result<T>) {
        let mut st = lock(&self.state);
        debug_assert!(st.result.is_none(), "a task completes once");
        // Overwrites `None`: no user value is dropped under the lock.
        st.result = Some(result);
        let claim = st.joiner.pop_claim(|_| false).map(|(_, claim)| claim);
        drop(st);
        // Unpark after unlocking, so the joiner does not wake into our lock.
        drop(claim);
    }
}

/// An owned permission to join a task of a blocking [`Pool`](super::Pool):
/// returned by [`blocking::spawn`](super::spawn) and
/// [`Pool::spawn`](super::Pool::spawn), shaped like
/// [`std::thread::JoinHandle`].
///
/// Dropping it detaches the task: it still runs, and its result is
/// dropped when it is done.
///
/// ```
/// let rt = spindle::Runtime::builder().workers(1).build().unwrap();
/// rt.block_on(|| {
///     let h = spindle::blocking::spawn(|| {
///         std::thread::sleep(std::time::Duration::from_millis(1)); // blocks a pool thread, not the worker
///         "slept"
///     });
///     let other = spindle::spawn(|| "ran meanwhile");
///     assert_eq!(other.join().unwrap(), "ran meanwhile");
///     assert_eq!(h.join().unwrap(), "slept");
///
///     let h = spindle::blocking::spawn(|| panic!("boom"));
///     assert!(h.join().is_err()); // the panic, as a payload; the pool goes on
/// });
/// ```
pub struct JoinHandle<T> {
    packet: Arc<Packet<T>>,
}

impl<T> JoinHandle<T> {
    pub(super) fn new(packet: Arc<Packet<T>>) -> JoinHandle<T> {
        JoinHandle { packet }
    }

    /// Waits for the task to finish and returns its value, or `Err` with
    /// its panic payload if it panicked.
    ///
    /// From a coroutine this parks the coroutine (recording
    /// [`WaitReason::Blocking`](crate::WaitReason::Blocking)); from an OS
    /// thread it blocks the thread. If the runtime shuts down meanwhile,
    /// the coroutine is unwound from here as from any blocking call; the
    /// task is then detached.
    ///
    /// A task that joins another task of its own pool holds a thread while
    /// it waits: if every thread does that, the pool deadlocks. Call
    /// [`Pool::run`](super::Pool::run) from a task instead (it runs inline
    /// on the pool's own threads).
    pub fn join(self) -> thread::Result<T> {
        loop {
            let mut st = lock(&self.packet.state);
            if let Some(result) = st.result.take() {
                return result;
            }
            let waiter = pin!(Waiter::new());
            let node = pin!(Node::new(&waiter, 0, 0));
            // SAFETY: `node` is new (so unlinked) and pinned in this frame;
            // below, we unlink it ourselves unless the task popped it
            // (wait.rs invariant 4), before the frame ends.
            unsafe { st.joiner.push_back(&node) };
            drop(st);
            match waiter.wait(WaitReason::Blocking, None) {
                // The task claimed us after storing its result: the next
                // round takes it.
                Woken::Token(_) => {}
                Woken::TimedOut | Woken::Cancelled => {
                    lock(&self.packet.state).joiner.remove(&node);
                    // Unwinds (the runtime shuts down), now that the node is
                    // unlinked and no lock is held; dropping `self` on the
                    // way detaches the task.
                    park::cancellation_point();
                }
            }
        }
    }

    /// Whether the task has finished (without blocking). Once it returns
    /// `true`, [`join`](JoinHandle::join) returns at once.
    pub fn is_finished(&self) -> bool {
        lock(&self.packet.state).result.is_some()
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Where the task of [`Pool::run`](super::Pool::run) leaves its result, on
/// the caller's stack.
pub(super) struct RunSlot<T> {
    waiter: Waiter,
    /// Written by the job between its claim on `waiter` and the finish;
    /// read by the caller after `waiter.wait` returned the token.
    result: HandOffCell<Option<thread::Result<T>>>,
}

impl<T> RunSlot<T> {
    /// A slot for the calling coroutine (or thread) to wait on.
    pub(super) fn new() -> RunSlot<T> {
        RunSlot {
            waiter: Waiter::new(),
            result: HandOffCell::new(None),
        }
    }

    /// Waits until the job has stored the result, and takes it.
    ///
    /// The wait is not cut short by a deadline (there is none) nor by
    /// shutdown: the caller runs it inside a `NoUnwind` section, where a
    /// cancelled coroutine parks as usual (`park::must_unwind` is false).
    pub(super) fn wait(&self) -> thread::Result<T> {
        match self.waiter.wait(WaitReason::Blocking, None) {
            Woken::Token(_) => {}
            Woken::TimedOut | Woken::Cancelled => {
                // Cannot happen (see above). Returning would let the caller
                // free the slot the job still writes to, and unwinding
                // would too: there is no sound way on.
                abort("spindle: blocking::run's wait ended early; aborting");
            }
        }
        // SAFETY: the token means the job's finish (Release) happened
        // before our Acquire in `wait`, after its write of the result, and
        // that the job touches the slot no more (invariant 3).
        unsafe { self.result.replace(None) }.expect("the job stores a result before finishing")
    }
}

/// The task of [`Pool::run`](super::Pool::run): runs `f` and leaves its
/// result in the caller's [`RunSlot`].
pub(super) struct RunJob<'env, F, T> {
    f: F,
    slot: *const RunSlot<T>,
    _env: PhantomData<&'env RunSlot<T>>,
}

// SAFETY: the job moves `F: Send` to the pool thread and a `T: Send` back
// through the slot; the slot's waiter is `Sync`, and the caller keeps the
// slot alive until the job is done with it (invariant 1).
unsafe impl<F: Send, T: Send> Send for RunJob<'_, F, T> {}

impl<'env, F, T> RunJob<'env, F, T>
where
    F: FnOnce() -> T + Send + 'env,
    T: Send + 'env,
{
    /// A job that runs `f` and stores its result in `slot`.
    ///
    /// # Safety
    ///
    /// The caller does not leave the frame that holds `slot` (neither
    /// returns nor unwinds) until `slot.wait()` returned, unless the job
    /// came back to it unrun (invariant 1). The slot must not move
    /// meanwhile.
    pub(super) unsafe fn new(f: F, slot: &RunSlot<T>) -> RunJob<'env, F, T> {
        RunJob {
            f,
            slot,
            _env: PhantomData,
        }
    }

    /// The closure, for a job that came back unrun (to run on the caller).
    pub(super) fn into_inner(self) -> F {
        self.f
    }
}

impl<'env, F, T> Job for RunJob<'env, F, T>
where
    F: FnOnce() -> T + Send + 'env,
    T: Send + 'env,
{
    fn run(self: Box<Self>) -> bool {
        let RunJob { f, slot, .. } = *self;
        let result = catch_unwind(AssertUnwindSafe(f));
        let panicked = result.is_err();
        // SAFETY: invariant 1: the caller waits in `slot.wait()` until we
        // finish the claim below, so the slot is alive until then; only a
        // local (not an argument) borrows it, and not past the finish.
        let slot = unsafe { &*slot };
        let Some(claim) = slot.waiter.try_claim() else {
            // The waiter never gives up (see `RunSlot::wait`); had it done
            // so, its frame could be gone. Nothing sound remains to do.
            abort("spindle: blocking::run's caller stopped waiting; aborting");
        };
        // SAFETY: our claim gives us the slot until we finish it; the
        // caller reads the result only after the finish.
        let empty = unsafe { slot.result.replace(Some(result)) };
        debug_assert!(empty.is_none(), "a job stores one result");
        // The last access to the slot (invariant 3).
        claim.finish(0);
        panicked
    }
}

impl<'env, F, T> IntoTask for Box<RunJob<'env, F, T>>
where
    F: FnOnce() -> T + Send + 'env,
    T: Send + 'env,
{
    fn into_task(self) -> Task {
        let task: Box<dyn Job + 'env> = self;
        // SAFETY: only the lifetime changes. The pool may hold the task
        // past `'env` in type only: its caller waits until the task ran
        // (invariant 1), and the pool runs every task it took (invariant 2).
        // This is how `std::thread::Builder::spawn_scoped` erases a scoped
        // closure's lifetime.
        unsafe { std::mem::transmute::<Box<dyn Job + 'env>, Task>(task) }
    }
}

/// Ends the process after a broken invariant from which neither returning
/// nor unwinding is sound. Writes without `eprintln!`, which panics if
/// stderr is closed.
#[cold]
fn abort(msg: &str) -> ! {
    let _ = writeln!(std::io::stderr(), "{msg}");
    std::process::abort()
}
