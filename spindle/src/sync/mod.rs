//! Synchronisation primitives that park the coroutine, not the thread.
//!
//! Shaped like `std::sync` (and Go's `sync` where Go's behaviour is
//! better): each blocking call parks the calling coroutine, so its worker
//! runs other coroutines meanwhile; called from a plain OS thread, it
//! parks the thread. Every wait records its own
//! [`WaitReason`](crate::WaitReason), shown by
//! [`runtime::snapshot`](crate::runtime::snapshot).
//!
//! All of them are built on one wait-queue protocol (`wait.rs`), the same
//! one the [`channel`](crate::channel)s use.

pub(crate) mod wait;

mod barrier;
mod condvar;
mod mutex;
mod notify;
mod once;
mod rwlock;
mod semaphore;
mod wait_group;

pub use barrier::*;
pub use condvar::*;
pub use mutex::*;
pub use notify::*;
pub use once::*;
pub use rwlock::*;
pub use semaphore::*;
pub use wait_group::*;
