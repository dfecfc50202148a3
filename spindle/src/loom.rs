//! std-or-loom primitives.
//!
//! The only place that imports `std::sync` atomics for the runtime's
//! protocols. Under `--cfg loom` the same names come from [loom], so the
//! protocols built on them (today: the park state word, see
//! [`crate::park::state`]) can be model-checked by `tests/loom_park.rs`.
//!
//! [loom]: https://docs.rs/loom

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU32, Ordering};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, Ordering};
