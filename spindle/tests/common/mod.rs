//! Test support shared by the sync and channel tests: run one scenario
//! from coroutines (on runtimes with 1, 2 and 4 workers) and from plain OS
//! threads, so every primitive is exercised both ways.
#![allow(dead_code)]

use std::time::Duration;

/// Who runs a scenario's units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Coroutines on a fresh runtime with this many workers; the scenario
    /// itself runs in `block_on`.
    Coroutines {
        /// Worker threads.
        workers: usize,
    },
    /// Plain OS threads; no runtime is involved.
    Threads,
}

/// A unit started by [`Mode::spawn`].
pub enum Unit<T> {
    Coroutine(spindle::JoinHandle<T>),
    Thread(std::thread::JoinHandle<T>),
}

impl<T> Unit<T> {
    /// Waits for the unit, like `JoinHandle::join`.
    pub fn join(self) -> std::thread::Result<T> {
        match self {
            Unit::Coroutine(h) => h.join(),
            Unit::Thread(h) => h.join(),
        }
    }
}

impl Mode {
    /// Starts a unit: a coroutine or an OS thread.
    #[track_caller]
    pub fn spawn<T, F>(self, f: F) -> Unit<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        match self {
            Mode::Coroutines { .. } => Unit::Coroutine(spindle::spawn(f)),
            Mode::Threads => Unit::Thread(std::thread::spawn(f)),
        }
    }

    /// `n` for coroutines, a smaller count for OS threads (which cost
    /// megabytes and tens of microseconds each).
    pub fn scale(self, n: usize) -> usize {
        match self {
            Mode::Coroutines { .. } => n,
            Mode::Threads => n.clamp(1, 16),
        }
    }

    /// Whether units are coroutines.
    pub fn is_coroutines(self) -> bool {
        matches!(self, Mode::Coroutines { .. })
    }
}

/// Every mode a scenario runs in.
pub const MODES: [Mode; 4] = [
    Mode::Coroutines { workers: 1 },
    Mode::Coroutines { workers: 2 },
    Mode::Coroutines { workers: 4 },
    Mode::Threads,
];

/// Runs `scenario` once per [`MODES`] entry: inside `block_on` on a fresh
/// runtime for coroutines, on a fresh OS thread otherwise. Panics (with
/// the mode in the message) if the scenario panics, or if it is still
/// running after `limit` (a hang is a failure, not a stuck CI).
pub fn each_mode<F>(limit: Duration, scenario: F)
where
    F: Fn(Mode) + Send + Sync + Clone + 'static,
{
    for mode in MODES {
        run_in(mode, limit, scenario.clone());
    }
}

/// Runs `scenario` in one mode; see [`each_mode`].
pub fn run_in<F>(mode: Mode, limit: Duration, scenario: F)
where
    F: FnOnce(Mode) + Send + 'static,
{
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    // The runtime's handle, for a snapshot of its coroutines on a hang.
    let (handle_tx, handle_rx) = std::sync::mpsc::channel();
    let runner = std::thread::spawn(move || {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match mode {
            Mode::Coroutines { workers } => {
                let rt = spindle::Runtime::builder()
                    .workers(workers)
                    .build()
                    .expect("runtime");
                let _ = handle_tx.send(rt.handle().clone());
                rt.block_on(move || scenario(mode));
            }
            Mode::Threads => scenario(mode),
        }));
        let _ = done_tx.send(());
        result
    });
    match done_rx.recv_timeout(limit) {
        Ok(()) => {
            if let Err(p) = runner.join().expect("runner thread") {
                eprintln!("scenario failed in mode {mode:?}");
                std::panic::resume_unwind(p);
            }
        }
        Err(_) => {
            if let Ok(handle) = handle_rx.try_recv() {
                eprintln!("coroutines of the hung runtime: {:#?}", handle.snapshot());
            }
            panic!("scenario still running after {limit:?} in mode {mode:?} (hang?)")
        }
    }
}
