//! Coroutine-local storage: `coroutine_local!`, shaped like `thread_local!`.
//!
//! Each coroutine has its own lazily created copy of every key it touches,
//! kept in a small map in its header and dropped when the coroutine
//! finishes (on its own stack, so destructors may block). On a thread that
//! is not running a coroutine, the thread gets its own copy, like a
//! `thread_local!`.
//!
//! # Invariants (this is an unsafe module)
//!
//! - A coroutine's map is touched only by that coroutine (task.rs
//!   invariant 2); a thread's map only by that thread.
//! - Values are boxed and never moved or removed while the owner runs
//!   user code, so a `&T` handed to `with` stays valid even if the map's
//!   vector grows during the call. Removal happens only in
//!   `destroy_current`, after the coroutine's closure has returned.

use std::any::Any;
use std::cell::UnsafeCell;
use std::fmt;
use std::ptr::NonNull;

use crate::coroutine::task::Header;
use crate::scheduler::worker;

/// The values of one coroutine (or thread), keyed by the key's address.
type Entries = Vec<(usize, Box<dyn Any>)>;

/// The per-coroutine (or per-thread) values. Boxed and created on first
/// use: most coroutines use none, and the map sits in every coroutine's
/// header (8 bytes instead of a vector's 24).
#[derive(Default)]
pub(crate) struct LocalMap {
    entries: Option<Box<Entries>>,
}

impl LocalMap {
    pub(crate) fn new() -> LocalMap {
        LocalMap { entries: None }
    }

    fn get(&self, key: usize) -> Option<*const dyn Any> {
        self.entries
            .as_ref()?
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| &**v as *const dyn Any)
    }
}

thread_local! {
    static THREAD_MAP: UnsafeCell<LocalMap> = UnsafeCell::new(LocalMap::new());
}

/// A key for coroutine-local values, declared with [`coroutine_local!`](crate::coroutine_local).
pub struct LocalKey<T: 'static> {
    init: fn() -> T,
}

/// The error [`LocalKey::try_with`] returns on a thread whose thread-local
/// copy has already been destroyed (during thread exit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccessError;

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("coroutine-local value accessed on a thread after its destruction")
    }
}

impl std::error::Error for AccessError {}

impl<T: 'static> LocalKey<T> {
    #[doc(hidden)]
    pub const fn new(init: fn() -> T) -> LocalKey<T> {
        LocalKey { init }
    }

    /// Calls `f` with this coroutine's value, creating it on first use.
    ///
    /// # Panics
    ///
    /// On a plain thread during its exit, after its copy was destroyed
    /// (use [`try_with`](Self::try_with) there).
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        self.try_with(f)
            .expect("cannot access a coroutine-local value after its destruction")
    }

    /// Like [`with`](Self::with), but returns an error instead of panicking
    /// on a thread that is exiting.
    pub fn try_with<R>(&'static self, f: impl FnOnce(&T) -> R) -> Result<R, AccessError> {
        let key = self as *const LocalKey<T> as usize;
        let map: *mut LocalMap = match worker::current_task() {
            // SAFETY: invariant 1: the running coroutine owns its map.
            Some(h) => unsafe { &raw mut (*h.as_ref().run.get()).locals },
            None => THREAD_MAP.try_with(|m| m.get()).map_err(|_| AccessError)?,
        };
        // SAFETY: invariant 1 (only we touch `map`); the shared borrow ends
        // before user code runs.
        let found = unsafe { (*map).get(key) };
        let ptr = match found {
            Some(p) => p,
            None => {
                // `init` may use other keys (or this one): no borrow of the
                // map is held while it runs.
                let value: Box<dyn Any> = Box::new((self.init)());
                // SAFETY: invariant 1; a short exclusive borrow.
                unsafe {
                    match (*map).get(key) {
                        Some(p) => p, // initialised recursively; ours is dropped
                        None => {
                            let p = &*value as *const dyn Any;
                            (*map)
                                .entries
                                .get_or_insert_with(Default::default)
                                .push((key, value));
                            p
                        }
                    }
                }
            }
        };
        // SAFETY: invariant 2: the boxed value lives until the owner ends;
        // it was created as a `T` for this key.
        let value = unsafe { &*ptr }
            .downcast_ref::<T>()
            .expect("coroutine-local key type mismatch");
        Ok(f(value))
    }

    /// Calls `f` with this coroutine's (or thread's) value if one was
    /// created already, and returns `None` without creating one otherwise
    /// (also on a thread that is exiting). For hot paths that only read a
    /// value most coroutines never set, such as the deadline scope every
    /// socket call consults (`time::current_deadline`).
    pub(crate) fn with_existing<R>(&'static self, f: impl FnOnce(&T) -> R) -> Option<R> {
        let key = self as *const LocalKey<T> as usize;
        let map: *const LocalMap = match worker::current_task() {
            // SAFETY: invariant 1: the running coroutine owns its map.
            Some(h) => unsafe { &raw const (*h.as_ref().run.get()).locals },
            None => THREAD_MAP.try_with(|m| m.get().cast_const()).ok()?,
        };
        // SAFETY: invariant 1; the shared borrow ends before `f` runs.
        let ptr = unsafe { (*map).get(key) }?;
        // SAFETY: invariant 2, as in `try_with`.
        let value = unsafe { &*ptr }
            .downcast_ref::<T>()
            .expect("coroutine-local key type mismatch");
        Some(f(value))
    }
}

impl<T: 'static> fmt::Debug for LocalKey<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKey").finish_non_exhaustive()
    }
}

/// Drops the finishing coroutine's values, on its own stack. Destructors
/// that create values again are run again, a few rounds at most; what
/// remains after that is leaked rather than looping forever.
///
/// # Safety
/// `h` is the running coroutine, after its closure returned.
pub(crate) unsafe fn destroy_current(h: NonNull<Header>) {
    // SAFETY: invariant 1.
    if unsafe { (*h.as_ref().run.get()).locals.entries.is_none() } {
        return; // the common case: no coroutine-locals were used
    }
    for _ in 0..4 {
        // SAFETY: invariant 1; the map is taken whole, so destructors that
        // touch keys see a fresh, empty map.
        let Some(entries) = (unsafe { &mut (*h.as_ref().run.get()).locals.entries }).take() else {
            return;
        };
        for (_, v) in *entries {
            // A panicking destructor must not unwind out of the coroutine's
            // base (nothing would catch it).
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(v))).is_err() {
                eprintln!("spindle: a coroutine-local destructor panicked; the panic was ignored");
            }
        }
    }
    // SAFETY: as above.
    std::mem::forget(unsafe { &mut (*h.as_ref().run.get()).locals.entries }.take());
}

/// Declares coroutine-local keys, shaped like [`std::thread_local!`].
///
/// Each coroutine sees its own value, created on first use by the
/// initialiser and dropped when the coroutine finishes. Outside a coroutine,
/// each thread has its own value.
///
/// ```
/// use std::cell::Cell;
///
/// spindle::coroutine_local! {
///     static COUNTER: Cell<u32> = Cell::new(0);
/// }
///
/// let rt = spindle::Runtime::builder().workers(1).build().unwrap();
/// let counts: Vec<u32> = rt.block_on(|| {
///     let hs: Vec<_> = (0..3)
///         .map(|i| {
///             spindle::spawn(move || {
///                 for _ in 0..=i {
///                     COUNTER.with(|c| c.set(c.get() + 1));
///                     spindle::yield_now();
///                 }
///                 COUNTER.with(|c| c.get())
///             })
///         })
///         .collect();
///     hs.into_iter().map(|h| h.join().unwrap()).collect()
/// });
/// assert_eq!(counts, [1, 2, 3]);
/// ```
#[macro_export]
macro_rules! coroutine_local {
    () => {};
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr; $($rest:tt)*) => {
        $crate::coroutine_local!($(#[$attr])* $vis static $name: $t = $init);
        $crate::coroutine_local!($($rest)*);
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr) => {
        $(#[$attr])*
        $vis static $name: $crate::LocalKey<$t> = {
            fn __init() -> $t {
                $init
            }
            $crate::LocalKey::new(__init)
        };
    };
}
