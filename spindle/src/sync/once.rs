//! [`Once`] and [`OnceLock`]: one-time initialisation; concurrent callers
//! park while one of them runs the initialiser.
//!
//! # Algorithm
//!
//! | field           | guarded by    | meaning                                          |
//! | --------------- | ------------- | ------------------------------------------------ |
//! | `done`          | atomic        | the initialiser returned; set once, never cleared (except through `&mut`) |
//! | `state.running` | internal lock | a caller is running the initialiser now          |
//! | `state.runner`  | internal lock | that caller's owner tag (for introspection)      |
//! | `state.waiters` | internal lock | callers parked until the run ends, oldest first  |
//!
//! The fast path is one Acquire load of `done`, which pairs with the
//! Release store the runner makes after its initialiser returned: whoever
//! sees `done` sees everything the initialiser wrote (the value of a
//! [`OnceLock`]).
//!
//! Otherwise, under the lock: if `done` is set, return; if nobody runs the
//! initialiser, become the runner (`running = true`), unlock, and run it
//! **with no internal lock held**; if somebody runs it, link a node and
//! park ([`WaitReason::Once`]). When the run ends, the runner takes the
//! lock, clears `running`, and:
//!
//! - if the initialiser returned: sets `done` and claims every waiter;
//! - if it panicked: claims *one* waiter (the oldest), which retries and,
//!   unless a newcomer got there first, becomes the next runner. The other
//!   waiters stay parked: whoever runs next wakes them when it finishes.
//!
//! Claims are finished after unlocking. A woken waiter re-checks from the
//! start; it is never handed anything, so a waiter that was woken only to
//! find a newcomer running parks again, and a newcomer that started the
//! run owes the remaining waiters the same wake-up. The baton cannot be
//! dropped: a claimed waiter always takes the lock again before it could
//! park (and so before shutdown could cancel it), and finds either `done`,
//! a runner that will wake it, or no runner, when it becomes one.
//!
//! # Why a panic leaves it incomplete (and not poisoned)
//!
//! `std::sync::Once` poisons itself when the initialiser panics (every later
//! `call_once` panics); Go's `sync.Once` counts the panicking call as done
//! (later calls do nothing, so the initialisation silently never happens).
//! spindle instead leaves the `Once` incomplete, so the next caller retries,
//! as `std::sync::OnceLock::get_or_init` does. This keeps the one guarantee
//! callers rely on: when `call_once` returns, an initialiser has run to
//! completion. A transient failure (a full disk, a missing file that a
//! retry would find) does not make the value unusable for the life of the
//! program, and `Once` and `OnceLock` behave alike. With no poisoning there
//! is no `call_once_force`, so no `OnceState` either.

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::pin::pin;

use super::notify::Wakeups;
use super::wait::{Node, WaitList, Waiter, Woken};
use crate::loom::{AtomicBool, Mutex, Ordering, lock};
use crate::park::{self, WaitReason};

/// Runs a one-time initialisation, for coroutines and threads, shaped like
/// [`std::sync::Once`].
///
/// The first caller of [`call_once`](Once::call_once) runs its closure;
/// callers that come while it runs wait for it (their coroutine is parked,
/// or, from a plain OS thread, the thread is; the wait records
/// [`WaitReason::Once`]); callers that come after it finished return at
/// once. When `call_once` returns, a closure has run to completion, and
/// everything it wrote is visible to the caller.
///
/// **If the closure panics**, the panic propagates to its caller and the
/// `Once` stays incomplete: one of the waiting callers (or the next caller)
/// runs its own closure instead. Unlike `std`, a `Once` is never poisoned;
/// the module documentation explains why.
///
/// Calling `call_once` on the same `Once` from inside its closure waits for
/// itself forever.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use spindle::sync::Once;
///
/// static INIT: Once = Once::new();
/// static RUNS: AtomicUsize = AtomicUsize::new(0);
///
/// let rt = spindle::Runtime::builder().workers(2).build().unwrap();
/// rt.block_on(|| {
///     spindle::scope(|s| {
///         for _ in 0..10 {
///             s.spawn(|| {
///                 INIT.call_once(|| {
///                     RUNS.fetch_add(1, Ordering::Relaxed);
///                 });
///                 assert!(INIT.is_completed());
///             });
///         }
///     });
/// });
/// assert_eq!(RUNS.load(Ordering::Relaxed), 1);
/// ```
pub struct Once {
    /// Set (Release) when an initialiser returned; see the module docs.
    done: AtomicBool,
    state: Mutex<State>,
}

struct State {
    /// A caller runs the initialiser now.
    running: bool,
    /// Its owner tag ([`park::current_owner_tag`]), recorded by waiters as
    /// what they are blocked on.
    runner: usize,
    /// Callers parked until the run ends.
    waiters: WaitList,
}

impl Once {
    /// A `Once` whose initialisation has not run.
    #[cfg(not(loom))]
    pub const fn new() -> Once {
        Once {
            done: AtomicBool::new(false),
            state: Mutex::new(State {
                running: false,
                runner: 0,
                waiters: WaitList::new(),
            }),
        }
    }

    /// A `Once` whose initialisation has not run (not `const` under loom,
    /// whose atomics and locks are not).
    #[cfg(loom)]
    pub fn new() -> Once {
        Once {
            done: AtomicBool::new(false),
            state: Mutex::new(State {
                running: false,
                runner: 0,
                waiters: WaitList::new(),
            }),
        }
    }

    /// Runs `f` if no call to `call_once` has completed its closure yet,
    /// waiting for a concurrent call that runs its closure; see the type's
    /// docs.
    ///
    /// # Panics
    ///
    /// If `f` panics (the panic propagates, and the `Once` stays
    /// incomplete).
    pub fn call_once<F: FnOnce()>(&self, f: F) {
        if self.is_completed() {
            return;
        }
        let mut f = Some(f);
        // Not generic, so each caller's closure costs only this adapter.
        self.call_once_slow(&mut || (f.take().expect("runs at most once"))());
    }

    /// Whether a closure passed to [`call_once`](Once::call_once) has
    /// completed. If `true`, everything it wrote is visible to the caller.
    pub fn is_completed(&self) -> bool {
        // Acquire: pairs with the runner's Release store in
        // `RunGuard::drop`, so the initialiser's writes are visible.
        self.done.load(Ordering::Acquire)
    }

    #[cold]
    fn call_once_slow(&self, f: &mut dyn FnMut()) {
        loop {
            let mut st = lock(&self.state);
            // Relaxed: `done` is stored under this lock, whose acquisition
            // orders the initialiser's writes before us.
            if self.done.load(Ordering::Relaxed) {
                return;
            }
            if !st.running {
                st.running = true;
                st.runner = park::current_owner_tag();
                drop(st);
                // Run it with no internal lock held; the guard ends the run
                // even if `f` panics.
                let mut guard = RunGuard {
                    once: self,
                    completed: false,
                };
                f();
                guard.completed = true;
                return;
            }
            let waiter = pin!(Waiter::new());
            let node = pin!(Node::new(&waiter, 0, 0));
            // SAFETY: `node` is new (so unlinked) and pinned on this stack
            // frame; the runner pops it when it claims us, and otherwise we
            // unlink it below before the frame ends (wait.rs invariant 4).
            unsafe { st.waiters.push_back(&node) };
            let runner = st.runner;
            drop(st);

            park::set_blocked_on(self as *const Once as usize, runner);
            let woken = waiter.wait(WaitReason::Once, None);
            park::set_blocked_on(0, 0);
            match woken {
                // The run ended: look again.
                Woken::Token(_) => {}
                Woken::TimedOut | Woken::Cancelled => {
                    // Cancelled (no deadline was given): we were not
                    // claimed, so no baton was passed to us.
                    lock(&self.state).waiters.remove(&node);
                    // Unwinds (the runtime shuts down), now that the node
                    // is unlinked and no lock is held. If it does not after
                    // all, look again.
                    park::cancellation_point();
                }
            }
        }
    }
}

/// Ends a run of the initialiser: publishes completion and wakes every
/// waiter, or, if the initialiser panicked, wakes one waiter to retry.
struct RunGuard<'a> {
    once: &'a Once,
    completed: bool,
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        let mut wakeups = Wakeups::new();
        let mut st = lock(&self.once.state);
        st.running = false;
        st.runner = 0;
        if self.completed {
            // Release: pairs with the Acquire load in `is_completed`.
            self.once.done.store(true, Ordering::Release);
            wakeups.claim_all(&mut st.waiters);
        } else if let Some((_, claim)) = st.waiters.pop_claim(|_| false) {
            // The initialiser panicked: pass the baton to the oldest
            // waiter; the rest wait for the run it starts.
            wakeups.push(claim);
        }
        drop(st);
        wakeups.finish_all();
    }
}

impl Default for Once {
    fn default() -> Once {
        Once::new()
    }
}

impl fmt::Debug for Once {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Once")
            .field("completed", &self.is_completed())
            .finish_non_exhaustive()
    }
}

/// A cell written once, for coroutines and threads, shaped like
/// [`std::sync::OnceLock`].
///
/// [`get_or_init`](OnceLock::get_or_init) returns the value, running its
/// closure to create it if the cell is empty; callers that come while
/// another one's closure runs wait for it (their coroutine is parked, or,
/// from a plain OS thread, the thread is; the wait records
/// [`WaitReason::Once`]). The closure runs with no internal lock held.
///
/// If the closure panics, the panic propagates to its caller and the cell
/// stays empty: one of the waiting callers (or the next caller) runs its own
/// closure instead, as in `std`.
///
/// # Examples
///
/// ```
/// use spindle::sync::OnceLock;
///
/// static CONFIG: OnceLock<String> = OnceLock::new();
///
/// let rt = spindle::Runtime::builder().workers(2).build().unwrap();
/// rt.block_on(|| {
///     let handles: Vec<_> = (0..4)
///         .map(|i| {
///             spindle::spawn(move || {
///                 // One closure runs; the others' callers wait for it.
///                 CONFIG.get_or_init(|| format!("set by {i}")).len()
///             })
///         })
///         .collect();
///     for h in handles {
///         assert_eq!(h.join().unwrap(), "set by 0".len());
///     }
/// });
/// assert!(CONFIG.get().unwrap().starts_with("set by "));
/// assert_eq!(CONFIG.set("late".to_string()), Err("late".to_string()));
/// ```
pub struct OnceLock<T> {
    once: Once,
    /// Written once, by the runner of `once`, before `once` completes; read
    /// only after it completed (or through `&mut self`).
    value: UnsafeCell<MaybeUninit<T>>,
    /// The cell owns a `T` (for the drop check; `MaybeUninit` does not say
    /// so).
    _owns: PhantomData<T>,
}

// SAFETY: sharing the cell shares `&T` between threads (needs `T: Sync`)
// and lets any of them write the value that another one may later take out
// or drop (needs `T: Send`), as for `std::sync::OnceLock`.
unsafe impl<T: Sync + Send> Sync for OnceLock<T> {}
// SAFETY: moving the cell moves the `T`.
unsafe impl<T: Send> Send for OnceLock<T> {}

// A panicking initialiser leaves the cell empty, never half-written.
impl<T: RefUnwindSafe + UnwindSafe> RefUnwindSafe for OnceLock<T> {}
impl<T: UnwindSafe> UnwindSafe for OnceLock<T> {}

impl<T> OnceLock<T> {
    /// An empty cell.
    #[cfg(not(loom))]
    pub const fn new() -> OnceLock<T> {
        OnceLock {
            once: Once::new(),
            value: UnsafeCell::new(MaybeUninit::uninit()),
            _owns: PhantomData,
        }
    }

    /// An empty cell (not `const` under loom, whose atomics and locks are
    /// not).
    #[cfg(loom)]
    pub fn new() -> OnceLock<T> {
        OnceLock {
            once: Once::new(),
            value: UnsafeCell::new(MaybeUninit::uninit()),
            _owns: PhantomData,
        }
    }

    /// The value, if the cell holds one; never blocks.
    pub fn get(&self) -> Option<&T> {
        if self.once.is_completed() {
            // SAFETY: completed, so the value was written, and the Acquire
            // load in `is_completed` made the write visible; it is not
            // written again while `&self` lives.
            Some(unsafe { (*self.value.get()).assume_init_ref() })
        } else {
            None
        }
    }

    /// The value, mutably, if the cell holds one.
    pub fn get_mut(&mut self) -> Option<&mut T> {
        if self.once.is_completed() {
            // SAFETY: completed, so written; `&mut self` excludes every
            // other access.
            Some(unsafe { self.value.get_mut().assume_init_mut() })
        } else {
            None
        }
    }

    /// Stores `value` if the cell is empty; otherwise gives it back as
    /// `Err(value)`. Waits if another caller is initialising the cell (and
    /// stores `value` if that caller's closure panics).
    pub fn set(&self, value: T) -> Result<(), T> {
        let mut value = Some(value);
        self.get_or_init(|| value.take().expect("runs at most once"));
        match value {
            None => Ok(()),
            Some(value) => Err(value),
        }
    }

    /// The value; if the cell is empty, runs `f`, stores its result and
    /// returns that. If another caller's closure is running, waits for it
    /// instead, and runs `f` only if that one panics.
    ///
    /// # Panics
    ///
    /// If `f` panics (the panic propagates and the cell stays empty).
    pub fn get_or_init<F: FnOnce() -> T>(&self, f: F) -> &T {
        if let Some(value) = self.get() {
            return value;
        }
        self.once.call_once(|| {
            let value = f();
            // SAFETY: we are the runner of `once`, so nobody else writes
            // the cell, and nobody reads it until `once` completes, which
            // happens after this write, when the closure returns.
            unsafe { (*self.value.get()).write(value) };
        });
        // SAFETY: `call_once` returned, so `once` completed: the value was
        // written, and its write is visible (ordered by `once`'s lock or
        // its Acquire load).
        unsafe { (*self.value.get()).assume_init_ref() }
    }

    /// The value, consuming the cell.
    pub fn into_inner(mut self) -> Option<T> {
        self.take()
    }

    /// Takes the value out, leaving the cell empty.
    pub fn take(&mut self) -> Option<T> {
        if !self.once.is_completed() {
            return None;
        }
        // The fresh `Once` makes the cell empty before the value is read
        // out, so it cannot be dropped twice.
        self.once = Once::new();
        // SAFETY: it was completed, so the value was written; the cell is
        // now marked empty, so nothing reads or drops it again.
        Some(unsafe { self.value.get_mut().assume_init_read() })
    }
}

impl<T> Drop for OnceLock<T> {
    fn drop(&mut self) {
        if self.once.is_completed() {
            // SAFETY: completed, so written; we are the last user.
            unsafe { self.value.get_mut().assume_init_drop() };
        }
    }
}

impl<T> Default for OnceLock<T> {
    fn default() -> OnceLock<T> {
        OnceLock::new()
    }
}

impl<T> From<T> for OnceLock<T> {
    /// A cell holding `value`.
    fn from(value: T) -> OnceLock<T> {
        let cell = OnceLock::new();
        // Fresh, so empty: the value is stored (without waiting).
        let _ = cell.set(value);
        cell
    }
}

impl<T: Clone> Clone for OnceLock<T> {
    fn clone(&self) -> OnceLock<T> {
        match self.get() {
            Some(value) => OnceLock::from(value.clone()),
            None => OnceLock::new(),
        }
    }
}

impl<T: PartialEq> PartialEq for OnceLock<T> {
    fn eq(&self, other: &OnceLock<T>) -> bool {
        self.get() == other.get()
    }
}

impl<T: Eq> Eq for OnceLock<T> {}

impl<T: fmt::Debug> fmt::Debug for OnceLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_tuple("OnceLock");
        match self.get() {
            Some(value) => d.field(value),
            None => d.field(&format_args!("<uninit>")),
        };
        d.finish()
    }
}
