//! spindle: Go-style green threads for plain blocking Rust.
//!
//! Write ordinary blocking code — `spawn`, `join`, `sleep`, `park` — and run
//! a million of it at once. Each [`spawn`] creates a stackful coroutine;
//! coroutines are multiplexed M:N onto a pool of worker OS threads, and a
//! blocking call parks the coroutine instead of the thread. No `async`, no
//! function colouring.
//!
//! ```
//! use std::time::Duration;
//!
//! let rt = spindle::Runtime::builder().workers(2).build()?;
//! let total: u64 = rt.block_on(|| {
//!     let handles: Vec<_> = (0..1000u64)
//!         .map(|i| {
//!             spindle::spawn(move || {
//!                 spindle::sleep(Duration::from_millis(1)); // parks, does not block the worker
//!                 i
//!             })
//!         })
//!         .collect();
//!     handles.into_iter().map(|h| h.join().unwrap()).sum()
//! });
//! assert_eq!(total, 499_500);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # What is here
//!
//! | module / item | what it gives |
//! | --- | --- |
//! | [`spawn`], [`Builder`], [`JoinHandle`], [`scope`] | coroutines shaped like `std::thread` |
//! | [`yield_now`], [`checkpoint`], [`sleep`], [`sleep_until`] | giving way (the explicit yield point for CPU loops) and waiting, without blocking the worker |
//! | [`policy`] | scheduling policies per runtime: FIFO, round robin, priority classes, MLFQ, CFS-style fair share with nice, shortest predicted burst first |
//! | [`time`] | sleeping, [`Interval`](time::Interval)s with a missed-tick policy, deadline scopes ([`time::timeout`]) for socket calls |
//! | [`park`], [`park_timeout`], [`Unparker`], [`unparker`] | the primitive every blocking call is built on, for your own |
//! | [`current`], [`Coroutine`], [`coroutine_local!`] | identity and coroutine-local storage |
//! | [`Runtime`], [`runtime`] | worker pools, the default runtime, shutdown, snapshots, metrics, the monitor's held-worker reports, turn traces |
//! | [`channel`], [`select!`] | crossbeam-shaped MPMC channels (bounded, rendezvous, unbounded, timers) and Go's `select` |
//! | [`sync`] | `Mutex`, `RwLock`, `Condvar`, `Semaphore`, `Barrier`, `WaitGroup`, `Once`, `OnceLock`, `Notify` that park the coroutine |
//! | [`blocking`] | a process-wide pool of OS threads for calls that would block a worker: `run`, `spawn`, `Pool` with its limits and metrics |
//! | [`fs`] | `std::fs`'s functions and `File`, their calls run on the blocking pool |
//! | [`net`] | `TcpListener`, `TcpStream`, `UdpSocket`, `UnixListener`, `UnixStream`, `UnixDatagram` shaped like `std`'s, parking on the reactor; accept loops that survive running out of descriptors |
//! | [`main`], [`test`] (feature `macros`, on by default) | `#[spindle::main]`, `#[spindle::test]` |
//!
//! Worker processes (supervised children with IPC) are being built (see the
//! repository's issues); they are not in this release.
//!
//! # Preemption
//!
//! spindle never interrupts a coroutine between two instructions (that is
//! not sound in Rust: the interrupted code may hold the allocator's lock).
//! A coroutine's turn ends at a *runtime call* — a channel operation, a
//! lock, a socket call, a spawn, [`yield_now`] or [`checkpoint`] — once its
//! budget of 128 calls or its policy's time slice is spent. A CPU loop
//! should call [`checkpoint`] in each iteration. One that makes no runtime
//! call at all holds its worker: after 10 ms the runtime's monitor thread
//! prints a warning naming it, moves that worker's not-yet-started and
//! [migratable](Builder::migratable) coroutines to other workers and starts
//! an extra worker thread for them and for new work. Coroutines that had
//! started on the held worker wait for it (they never change threads; see
//! "Soundness").
//!
//! # Soundness
//!
//! A coroutine runs on one worker thread from its first instruction to its
//! end. Idle workers steal only coroutines that have not started yet (their
//! closure is `Send` and they hold nothing thread-bound), so an `Rc`, a
//! `RefCell` borrow or a reference to a `thread_local!` held across a
//! blocking call is as safe as in a plain thread. Moving a parked coroutine
//! between threads is an explicit, `unsafe` opt-in:
//! [`Builder::migratable`].
//!
//! Each coroutine's stack has a guard page; overflowing it aborts the
//! process with a message naming the coroutine (id, name, spawn location,
//! stack size) and how to give it a bigger stack. A panic in a coroutine is
//! caught at its base and handed to whoever joins it.
//!
//! # Environment
//!
//! | variable | effect |
//! | --- | --- |
//! | `SPINDLE_WORKERS` | worker threads of runtimes built without [`runtime::Builder::workers`] (default: one per CPU) |
//! | `SPINDLE_STACK_SIZE` | default usable stack size in bytes (`K`/`M` suffixes accepted; default 256 KiB) |
//! | `SPINDLE_BLOCKING_THREADS` | most threads of blocking pools built without [`blocking::Builder::max_threads`], the global one included (default 512) |

#![warn(missing_docs)]

pub mod blocking;
pub mod channel;
mod clock;
mod coroutine;
pub mod fs;
mod introspect;
mod io;
mod loom;
pub mod net;
mod park;
pub mod policy;
pub mod runtime;
mod scheduler;
mod stack;
pub mod sync;
mod sys;
pub mod time;

pub use coroutine::{
    AccessError, Builder, Cancelled, Coroutine, CoroutineId, JoinHandle, LocalKey, Scope,
    ScopedJoinHandle, checkpoint, current, scope, spawn, try_current, yield_now,
};
pub use park::{Unparker, WaitReason, park, park_timeout, unparker};
pub use runtime::Runtime;
pub use time::{sleep, sleep_until};

#[cfg(feature = "macros")]
pub use spindle_macros::{main, test};

/// The park state word, exposed only to the loom model in
/// `tests/loom_park.rs` (built with `RUSTFLAGS="--cfg loom"`); not public API.
#[cfg(loom)]
#[doc(hidden)]
pub mod __loom {
    pub use crate::park::state::{CANCELLED, JOIN_WAITING, NOTIFIED, RUNNING, State, Wake};

    /// A new coroutine's state word (`State::new` stays crate-private: a
    /// public `new` without `Default` would trip clippy under loom).
    pub fn new_state() -> State {
        State::new()
    }
}
