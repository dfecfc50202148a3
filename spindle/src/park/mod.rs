//! The one park/unpark protocol every blocking call uses.
//!
//! A blocking call in a coroutine parks the coroutine: its worker runs
//! others until an [`Unparker`] wakes it. The same call on a plain OS thread
//! (one that is not a spindle worker) parks the thread instead, with
//! `std::thread::park`. Both follow `std::thread::park`'s token semantics:
//! an unpark that arrives before the park is remembered, so the park
//! returns at once; a park may also return spuriously, so callers re-check
//! their condition in a loop.
//!
//! The coroutine side's state machine lives in [`state`].

mod reason;
pub(crate) mod state;

use std::ptr::NonNull;
use std::time::{Duration, Instant};

pub use reason::WaitReason;

use crate::coroutine::Cancelled;
use crate::coroutine::task::{Header, Suspend, TaskRef};
use crate::scheduler::worker;

/// Wakes one parked coroutine or thread.
///
/// Obtained with [`unparker`] (for whoever calls it) or
/// [`Coroutine::unparker`](crate::Coroutine::unparker). Cheap to clone,
/// `Send` and `Sync`: hand it to whoever must wake the parked party.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
///
/// let rt = spindle::Runtime::builder().workers(1).build().unwrap();
/// rt.block_on(|| {
///     let ready = Arc::new(AtomicBool::new(false));
///     let me = spindle::unparker();
///     let flag = ready.clone();
///     spindle::spawn(move || {
///         flag.store(true, Ordering::Release);
///         me.unpark();
///     });
///     while !ready.load(Ordering::Acquire) {
///         spindle::park();
///     }
/// });
/// ```
#[derive(Clone)]
pub struct Unparker(Inner);

#[derive(Clone)]
enum Inner {
    Coroutine(TaskRef),
    Thread(crate::loom::thread::Thread),
}

impl Unparker {
    /// Makes the parked party runnable, or, if it is not parked, makes its
    /// next park return at once.
    pub fn unpark(&self) {
        match &self.0 {
            Inner::Coroutine(t) => unpark_task(t),
            Inner::Thread(t) => t.unpark(),
        }
    }

    pub(crate) fn for_task(t: TaskRef) -> Unparker {
        Unparker(Inner::Coroutine(t))
    }
}

impl std::fmt::Debug for Unparker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Inner::Coroutine(t) => write!(f, "Unparker(coroutine {})", t.header().id()),
            Inner::Thread(t) => write!(f, "Unparker(thread {:?})", t.id()),
        }
    }
}

/// Unparks a coroutine: enqueues it if it was parked.
pub(crate) fn unpark_task(t: &TaskRef) {
    // SAFETY: `t` keeps the coroutine alive during the call.
    unsafe { unpark_with(t.as_ptr(), || {}) }
}

/// Unparks the coroutine at `hp`, running `publish` between the state
/// transition and the enqueue: a wait queue stores its hand-off's
/// completion there, after which the woken coroutine may return from its
/// wait and finish (unless it was parked: then it stays alive until it is
/// enqueued and run).
///
/// A PARKED coroutine owns one reference to itself, left by its worker;
/// whoever moves it PARKED → QUEUED adopts that reference for the run
/// queue, so a wake-up needs no reference of the waker's own.
///
/// # Safety
/// The coroutine cannot finish before `publish` has run (someone holds a
/// reference, or it waits for what `publish` stores).
pub(crate) unsafe fn unpark_with(hp: NonNull<Header>, publish: impl FnOnce()) {
    // SAFETY: alive until `publish` by the caller's guarantee.
    let wake = unsafe { hp.as_ref() }.state.unpark();
    publish();
    if wake == state::Wake::Schedule {
        // SAFETY: PARKED → QUEUED by us: we own the parked coroutine's
        // reference, and it cannot run (let alone finish) before we
        // enqueue it.
        schedule_owned(unsafe { TaskRef::adopt(hp) });
    }
}

/// Enqueues a woken task, handing over the caller's reference.
fn schedule_owned(t: TaskRef) {
    if let Some(cx) = worker::context() {
        // SAFETY: `context()` is the live context of this thread's worker.
        let cx = unsafe { &*cx };
        if std::sync::Arc::ptr_eq(&cx.shared, &t.header().rt) {
            // Our worker's runtime outlives this call; the task's header,
            // which may be freed once it is queued, is not used after.
            cx.schedule_from_worker(t);
            return;
        }
    }
    // From elsewhere, keep the runtime alive ourselves: once queued, the
    // task may run, finish and drop its reference to it.
    let rt = t.header().rt.clone();
    rt.schedule(t);
}

/// The running coroutine's header, or `None` on a plain thread.
#[inline]
pub(crate) fn current_coroutine() -> Option<NonNull<Header>> {
    worker::current_task()
}

/// Parks the running coroutine at `hp` like [`park_reason`], but never
/// unwinds: if shutdown cancelled it (and it may unwind now, see
/// [`check_cancelled`]) this returns at once instead. For wait queues,
/// which must unlink their nodes before the coroutine unwinds; they call
/// [`cancellation_point`] afterwards.
///
/// Returns `true` if the caller should give up waiting because of
/// cancellation.
pub(crate) fn park_current_raw(
    hp: NonNull<Header>,
    reason: WaitReason,
    deadline: Option<Instant>,
) -> bool {
    // SAFETY: the running coroutine's header is alive while it runs.
    let h = unsafe { hp.as_ref() };
    if must_unwind(h) {
        return true;
    }
    // Not `park_coroutine`: its cancellation check after the suspend would
    // unwind out of the wait queue's frame with the node still linked.
    park_coroutine_unchecked(hp, reason, deadline);
    must_unwind(h)
}

/// Parks a plain thread until unparked or `deadline` (spurious returns
/// allowed).
pub(crate) fn park_thread_raw(deadline: Option<Instant>) {
    park_thread(deadline);
}

/// An [`Unparker`] for the calling coroutine, or for the calling thread if
/// it is not a coroutine.
pub fn unparker() -> Unparker {
    match worker::current_task() {
        // SAFETY: the running coroutine is alive while it runs.
        Some(h) => Unparker::for_task(unsafe { TaskRef::from_ptr(h) }),
        None => Unparker(Inner::Thread(crate::loom::thread::current())),
    }
}

/// Blocks the calling coroutine (or thread) until an [`Unparker`] for it
/// is used, or returns at once if one was used since the last park.
///
/// May return spuriously: call it in a loop that checks your condition.
/// Shaped like [`std::thread::park`].
pub fn park() {
    park_reason(WaitReason::Park, None);
}

/// Like [`park`], but returns after `dur` at the latest.
pub fn park_timeout(dur: Duration) {
    park_reason(WaitReason::Park, Instant::now().checked_add(dur));
}

/// The park every blocking call in spindle goes through: records `reason`,
/// and wakes at `deadline` if one is given.
///
/// In a coroutine that shutdown cancelled, this unwinds with [`Cancelled`]
/// (outside sections marked with [`NoUnwind`]).
pub(crate) fn park_reason(reason: WaitReason, deadline: Option<Instant>) {
    match worker::current_task() {
        Some(h) => park_coroutine(h, reason, deadline),
        None => park_thread(deadline),
    }
}

fn park_thread(deadline: Option<Instant>) {
    match deadline {
        None => crate::loom::thread::park(),
        Some(d) => crate::loom::thread::park_until(d),
    }
}

/// Unwinds with [`Cancelled`] if the calling coroutine was cancelled by
/// shutdown and may unwind now (see [`check_cancelled`]); does nothing on
/// a plain thread.
pub(crate) fn cancellation_point() {
    if let Some(hp) = worker::current_task() {
        // SAFETY: the running coroutine's header is alive while it runs.
        check_cancelled(unsafe { hp.as_ref() });
    }
}

/// Records what the calling coroutine is about to wait on, for
/// introspection: the address of the primitive and the header address of
/// the coroutine that holds it (0 if unknown). Cleared by the next call
/// with `(0, 0)`. A no-op on plain threads.
pub(crate) fn set_blocked_on(resource: usize, owner: usize) {
    if let Some(hp) = worker::current_task() {
        // SAFETY: the running coroutine's header is alive while it runs.
        let h = unsafe { hp.as_ref() };
        h.blocked_on
            .store(resource, std::sync::atomic::Ordering::Relaxed);
        h.blocked_owner
            .store(owner, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The header address of the calling coroutine, or 0 on a plain thread:
/// what lock owners record (see [`set_blocked_on`]).
#[inline]
pub(crate) fn current_owner_tag() -> usize {
    match worker::current_task() {
        Some(hp) => hp.as_ptr() as usize,
        None => 0,
    }
}

fn park_coroutine(hp: NonNull<Header>, reason: WaitReason, deadline: Option<Instant>) {
    // SAFETY: the running coroutine's header is alive while it runs.
    let h = unsafe { hp.as_ref() };
    check_cancelled(h);
    park_coroutine_unchecked(hp, reason, deadline);
    check_cancelled(h);
}

/// The park itself, without [`park_coroutine`]'s cancellation checks (so
/// it never unwinds): for [`park_current_raw`].
fn park_coroutine_unchecked(hp: NonNull<Header>, reason: WaitReason, deadline: Option<Instant>) {
    // SAFETY: the running coroutine's header is alive while it runs.
    let h = unsafe { hp.as_ref() };
    if h.state.take_token() {
        return;
    }
    // Only this coroutine writes its generation (Relaxed load + store);
    // timers read it to ignore themselves after a later park.
    let generation = h.park_gen.load(std::sync::atomic::Ordering::Relaxed) + 1;
    h.park_gen
        .store(generation, std::sync::atomic::Ordering::Relaxed);
    if let Some(d) = deadline {
        if d <= Instant::now() {
            return;
        }
        let cx = worker::context().expect("a coroutine runs on a worker");
        // SAFETY: the context of the worker running us is alive; it is
        // used before we switch away.
        unsafe { (*cx).add_timer(d, TaskRef::from_ptr(hp), generation) };
    }
    h.wait_reason
        .store(reason as u8, std::sync::atomic::Ordering::Relaxed);
    suspend(h, Suspend::Park);
}

/// Switches from the running coroutine back to its worker.
pub(crate) fn suspend(h: &Header, why: Suspend) {
    // SAFETY: task.rs invariant 2: the yielder is set on the coroutine's
    // first instruction and only the running coroutine reads it; it lives
    // on this coroutine's stack, which is the one we are on.
    unsafe {
        let y = (*h.run.get()).yielder;
        (*y).suspend(why);
    }
}

/// Unwinds with [`Cancelled`] if shutdown cancelled this coroutine, unless
/// it is inside a [`NoUnwind`] section or is (or was) unwinding already: a
/// destructor that blocks during an unwind must not start a second one,
/// which would abort the process.
///
/// Whether *this coroutine* unwinds cannot be read from
/// `std::thread::panicking()`: std counts panics per OS thread, and another
/// coroutine of the same worker may be parked in the middle of its own
/// unwind. So the coroutine's own flag is used, set when this function
/// raises and by the panic hook the runtime installs (see
/// `runtime::install_panic_hook`).
pub(crate) fn check_cancelled(h: &Header) {
    if must_unwind(h) {
        // SAFETY: invariant 2; the run state is only touched by the coroutine.
        unsafe { (*h.run.get()).unwinding = true };
        std::panic::resume_unwind(Box::new(Cancelled));
    }
}

/// Whether shutdown cancelled this coroutine and it may unwind now (see
/// [`check_cancelled`]).
fn must_unwind(h: &Header) -> bool {
    if !h.state.is_cancelled() {
        return false;
    }
    // SAFETY: invariant 2; the run state is only touched by the coroutine.
    let run = unsafe { &mut *h.run.get() };
    if run.unwinding && !std::thread::panicking() {
        // No coroutine on this thread is unwinding, so neither are we: a
        // panic we saw start was caught. (While `panicking()` is true it is
        // ambiguous, and the flag stays, erring on the side of no abort.)
        run.unwinding = false;
    }
    run.no_unwind == 0 && !run.unwinding
}

/// Records that the running coroutine (if any) started to panic; called
/// from the runtime's panic hook.
pub(crate) fn note_panic() {
    if let Some(hp) = worker::current_task() {
        // SAFETY: the hook runs on the panicking coroutine's own stack.
        unsafe { (*hp.as_ref().run.get()).unwinding = true };
    }
}

/// Marks a section in which shutdown must not unwind the coroutine,
/// because unwinding would free memory that other coroutines still use
/// (the wait at the end of a `scope`, and in `block_on`). Parks inside it
/// behave normally; cancellation resumes at the next park after it.
pub(crate) struct NoUnwind(Option<NonNull<Header>>);

impl NoUnwind {
    pub(crate) fn enter() -> NoUnwind {
        let h = worker::current_task();
        if let Some(hp) = h {
            // SAFETY: invariant 2: only the running coroutine touches it.
            unsafe { (*hp.as_ref().run.get()).no_unwind += 1 };
        }
        NoUnwind(h)
    }
}

impl Drop for NoUnwind {
    fn drop(&mut self) {
        if let Some(hp) = self.0 {
            // SAFETY: as in `enter`; a NoUnwind never leaves its coroutine
            // (it is not Send).
            unsafe { (*hp.as_ref().run.get()).no_unwind -= 1 };
        }
    }
}
