//! Scoped coroutines: spawn coroutines that borrow from the caller.
//!
//! Shaped like `std::thread::scope`. The scope waits, at its end, until
//! every coroutine spawned in it has finished *and* its closure and result
//! have been dropped, so nothing can touch the borrowed data afterwards.
//!
//! # Invariants (this is an unsafe module)
//!
//! - `ScopeData::running` counts live `Packet`s. A packet lives inside the
//!   coroutine's closure and inside its `ScopedJoinHandle`; it is dropped
//!   only after the closure ran (or was dropped unrun) and the result was
//!   taken or dropped. So `running == 0` means nothing of `'scope` is left.
//! - The wait at the end of `scope` cannot be unwound: it runs in a
//!   `NoUnwind` section (shutdown cancels the coroutine at its next park
//!   after the scope returned), and panics from the body are caught first.

use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, Location, catch_unwind, resume_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;

use super::task::TaskRef;
use super::{Builder, Cancelled, CoroutineId, spawn_raw, wait_done};
use crate::park::{self, NoUnwind, Unparker, WaitReason};
use crate::runtime;
use crate::scheduler::Shared;

struct ScopeData {
    running: AtomicUsize,
    a_panicked: AtomicBool,
    owner: Unparker,
}

impl ScopeData {
    fn decrement(&self) {
        // Release: the packet's drop (result included) happens before the
        // scope owner's Acquire load sees zero.
        if self.running.fetch_sub(1, Ordering::Release) == 1 {
            self.owner.unpark();
        }
    }
}

/// A scope to spawn coroutines that may borrow from outside it; see
/// [`scope`].
pub struct Scope<'scope, 'env: 'scope> {
    data: Arc<ScopeData>,
    shared: Arc<Shared>,
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

/// An owned permission to join a scoped coroutine.
pub struct ScopedJoinHandle<'scope, T> {
    task: TaskRef,
    packet: Arc<Packet<'scope, T>>,
}

struct Packet<'scope, T> {
    scope: Arc<ScopeData>,
    result: UnsafeCell<Option<thread::Result<T>>>,
    _marker: PhantomData<&'scope ()>,
}

// SAFETY: the result is written once by the coroutine before its packet
// reference is dropped, and read by the handle only after the coroutine is
// DONE (which happens after that drop); `T: Send` moves between them.
unsafe impl<T: Send> Sync for Packet<'_, T> {}

impl<T> Drop for Packet<'_, T> {
    fn drop(&mut self) {
        let unhandled = matches!(self.result.get_mut(), Some(Err(_)));
        // A panicking destructor of the result must not skip the count.
        if catch_unwind(AssertUnwindSafe(|| *self.result.get_mut() = None)).is_err() {
            self.scope.a_panicked.store(true, Ordering::Relaxed);
        }
        if unhandled {
            self.scope.a_panicked.store(true, Ordering::Relaxed);
        }
        self.scope.decrement();
    }
}

/// Creates a scope for spawning coroutines that borrow from the caller's
/// stack, like [`std::thread::scope`].
///
/// Every coroutine spawned in the scope is joined before `scope` returns:
/// explicitly through its handle, or automatically at the end. If any
/// automatically joined coroutine panicked, `scope` panics after all have
/// finished. From a coroutine the wait parks the coroutine; from an OS
/// thread it blocks the thread. Scoped coroutines run on the current
/// runtime (or the default runtime outside one).
///
/// ```
/// let rt = spindle::Runtime::builder().workers(2).build().unwrap();
/// rt.block_on(|| {
///     let mut data = vec![1, 2, 3];
///     let total = std::sync::atomic::AtomicU32::new(0);
///     spindle::scope(|s| {
///         s.spawn(|| total.fetch_add(data.iter().sum::<u32>(), std::sync::atomic::Ordering::Relaxed));
///         s.spawn(|| total.fetch_add(10, std::sync::atomic::Ordering::Relaxed));
///     });
///     data.push(4); // the borrows ended with the scope
///     assert_eq!(total.into_inner(), 16);
/// });
/// ```
#[track_caller]
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    let shared = match runtime::current_or_default() {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    scope_on(shared, WaitReason::Scope, f)
}

/// [`scope`] on a given runtime, recording `reason` while it waits.
pub(crate) fn scope_on<'env, F, T>(shared: Arc<Shared>, reason: WaitReason, f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    let scope = Scope {
        data: Arc::new(ScopeData {
            running: AtomicUsize::new(0),
            a_panicked: AtomicBool::new(false),
            owner: park::unparker(),
        }),
        shared,
        scope: PhantomData,
        env: PhantomData,
    };
    let result = catch_unwind(AssertUnwindSafe(|| f(&scope)));
    {
        let _no_unwind = NoUnwind::enter();
        // Acquire: pairs with the Release in `decrement`.
        while scope.data.running.load(Ordering::Acquire) != 0 {
            park::park_reason(reason, None);
        }
    }
    match result {
        Err(e) => resume_unwind(e),
        Ok(_) if scope.data.a_panicked.load(Ordering::Relaxed) => {
            panic!("a scoped coroutine panicked")
        }
        Ok(r) => r,
    }
}

impl<'scope> Scope<'scope, '_> {
    /// Spawns a scoped coroutine; see [`spindle::spawn`](crate::spawn).
    ///
    /// # Panics
    ///
    /// If no stack can be had (see [`Builder::spawn`]).
    #[track_caller]
    pub fn spawn<F, T>(&'scope self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        match self.spawn_with(Builder::new(), f) {
            Ok(h) => h,
            Err(e) => panic!("{e}"),
        }
    }

    /// Spawns a scoped coroutine configured by `builder`.
    ///
    /// # Errors
    ///
    /// As [`Builder::spawn`].
    #[track_caller]
    pub fn spawn_with<F, T>(
        &'scope self,
        builder: Builder,
        f: F,
    ) -> std::io::Result<ScopedJoinHandle<'scope, T>>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        self.spawn_at(builder, Location::caller(), f)
    }

    /// [`spawn_with`](Self::spawn_with), recording `location` as the spawn
    /// location (for callers that are themselves `#[track_caller]` but
    /// spawn from a closure, such as `Runtime::block_on`).
    pub(crate) fn spawn_at<F, T>(
        &'scope self,
        builder: Builder,
        location: &'static Location<'static>,
        f: F,
    ) -> std::io::Result<ScopedJoinHandle<'scope, T>>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let packet: Arc<Packet<'scope, T>> = Arc::new(Packet {
            scope: self.data.clone(),
            result: UnsafeCell::new(None),
            _marker: PhantomData,
        });
        self.data.running.fetch_add(1, Ordering::Relaxed);
        let inner = packet.clone();
        let body = move || {
            let r = catch_unwind(AssertUnwindSafe(f));
            // SAFETY: module invariant: only the coroutine writes the
            // result, before dropping its packet reference.
            unsafe { *inner.result.get() = Some(r) };
            drop(inner);
        };
        // The closure borrows 'scope data: sound because the scope waits
        // until every packet (one lives in `body`) is dropped (invariant 1).
        match spawn_raw(&self.shared, builder, location, body) {
            Ok(task) => Ok(ScopedJoinHandle { task, packet }),
            Err(e) => Err(e), // `body` was dropped: its packet reference too
        }
    }
}

impl<T> ScopedJoinHandle<'_, T> {
    /// Waits for the coroutine and returns its result, like
    /// [`JoinHandle::join`](crate::JoinHandle::join).
    pub fn join(mut self) -> thread::Result<T> {
        wait_done(&self.task, WaitReason::Join);
        // The coroutine's packet reference is gone once it is DONE.
        let packet =
            Arc::get_mut(&mut self.packet).expect("scoped coroutine still holds its packet");
        packet
            .result
            .get_mut()
            .take()
            .unwrap_or_else(|| Err(Box::new(Cancelled)))
    }

    /// Whether the coroutine has finished.
    pub fn is_finished(&self) -> bool {
        self.task.header().state.is_done()
    }

    /// The coroutine's id.
    pub fn id(&self) -> CoroutineId {
        CoroutineId::from_raw(self.task.header().id())
    }
}

impl<T> std::fmt::Debug for ScopedJoinHandle<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScopedJoinHandle")
            .field("id", &self.id())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope")
            .field("running", &self.data.running.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}
