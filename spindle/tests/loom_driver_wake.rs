//! A loom model of how a worker that goes to sleep as the reactor's driver
//! is woken (`Context::sleep`, `Shared::wake_worker`,
//! `Reactor::poll_unless`), with a second poller beside it (the monitor's
//! zero-timeout poll, or a busy worker's).
//!
//! Unlike the other loom files this one models the protocol, not the real
//! code: epoll cannot run under loom. Its two waits are modelled by what
//! they guarantee:
//! - the eventfd edge: `Reactor::wake` makes one event pending, and the
//!   first `epoll_wait` to run takes it (edge-triggered: a later one does
//!   not see it again), whoever that is; a waiting `epoll_wait` returns
//!   when one is made pending;
//! - the futex: a wait on the sleep word returns once the word is not
//!   `SLEEPING`, and a wake after the word moved is never lost.
//!
//! The real code orders its store-then-load handshakes (sleep word and
//! inbox; `polling` and sleep word) with SeqCst operations and fences.
//! loom models SeqCst as acquire/release, under which those handshakes
//! (the store-buffering pattern) may both miss, so the model makes each of
//! those loads a read-modify-write, which loom models exactly and which
//! forbids the same outcomes.
//!
//! [`a_wake_up_reaches_the_driver`] checks the protocol as built.
//! [`the_model_finds_the_lost_wake_up`] runs it without the re-check made
//! once the sleeper holds the driver lock, the bug that hung a worker
//! with a coroutine in its inbox (one run in about 60 of the select
//! stress tests under CPU contention): the poller takes the edge meant for
//! the sleeper, which then waits for ever, and loom must report the
//! deadlock. loom's report aborts the process (its runtime panics again
//! while unwinding), so that model runs in a child process of this test
//! binary, and the test checks that the child died reporting it.
//!
//! Run with:
//!
//! ```text
//! RUSTFLAGS="--cfg loom -C debug-assertions" CARGO_TARGET_DIR=target/loom \
//!     cargo test -p spindle --test loom_driver_wake --release
//! ```
#![cfg(loom)]

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

const AWAKE: usize = 0;
const SLEEPING: usize = 1;
const NOTIFIED: usize = 2;

/// One worker's sleep state and the reactor, as the protocol sees them.
#[derive(Default)]
struct Model {
    /// The worker's sleep word.
    sleep: AtomicUsize,
    /// Set while the worker may wait in `epoll_wait`.
    polling: AtomicBool,
    /// Work pushed for the worker (its inbox is non-empty).
    inbox: AtomicBool,
    /// Whoever holds this may poll (`Reactor::driver`).
    driver: Mutex<()>,
    /// A pending eventfd event, and `epoll_wait` waiting for one.
    edge: Mutex<bool>,
    edge_cv: Condvar,
    /// The futex the worker waits on when another thread is the driver.
    futex: Mutex<()>,
    futex_cv: Condvar,
}

impl Model {
    /// `Context::sleep` up to its wait; returns when woken. With
    /// `recheck`, the sleep word is read again once the driver lock is
    /// held (`Reactor::poll_unless`).
    fn sleep(&self, recheck: bool) {
        self.sleep.swap(SLEEPING, SeqCst);
        if self.inbox.fetch_or(false, SeqCst) {
            return; // has_visible_work
        }
        self.polling.swap(true, SeqCst);
        if self.sleep.fetch_or(0, SeqCst) != SLEEPING {
            return; // woken_first
        }
        let polled = match self.driver.try_lock() {
            Ok(_driver) => {
                if !(recheck && self.sleep.fetch_or(0, SeqCst) != SLEEPING) {
                    // epoll_wait with no timeout: until an event, which
                    // it takes.
                    let mut edge = self.edge.lock().unwrap();
                    while !*edge {
                        edge = self.edge_cv.wait(edge).unwrap();
                    }
                    *edge = false;
                }
                true
            }
            Err(_) => false,
        };
        self.polling.store(false, SeqCst);
        if !polled {
            let mut g = self.futex.lock().unwrap();
            while self.sleep.load(SeqCst) == SLEEPING {
                g = self.futex_cv.wait(g).unwrap();
            }
        }
        self.sleep.store(AWAKE, SeqCst);
    }

    /// `Shared::schedule_remote`: push, then `wake_worker`.
    fn submit(&self) {
        self.inbox.swap(true, SeqCst);
        if self
            .sleep
            .compare_exchange(SLEEPING, NOTIFIED, SeqCst, SeqCst)
            .is_ok()
        {
            if self.polling.fetch_or(false, SeqCst) {
                // Reactor::wake: an eventfd write.
                *self.edge.lock().unwrap() = true;
                self.edge_cv.notify_one();
            } else {
                let _g = self.futex.lock().unwrap();
                self.futex_cv.notify_all();
            }
        }
    }

    /// Another thread's zero-timeout poll: if it gets the driver lock, it
    /// takes whatever event is pending (and ignores the waker's).
    fn poll_zero(&self) {
        if let Ok(_driver) = self.driver.try_lock() {
            *self.edge.lock().unwrap() = false;
        }
    }
}

fn scenario(recheck: bool) {
    loom::model(move || {
        let m = Arc::new(Model::default());
        let waker = {
            let m = m.clone();
            thread::spawn(move || m.submit())
        };
        let poller = {
            let m = m.clone();
            thread::spawn(move || m.poll_zero())
        };
        m.sleep(recheck);
        waker.join().unwrap();
        poller.join().unwrap();
        // Woken with work to do (or found it before sleeping).
        assert!(m.inbox.load(SeqCst));
    });
}

#[test]
fn a_wake_up_reaches_the_driver() {
    scenario(true);
}

/// Set in the child process that runs the model without the re-check.
const CHILD: &str = "SPINDLE_LOOM_DRIVER_WAKE_CHILD";

#[test]
fn the_model_finds_the_lost_wake_up() {
    if std::env::var_os(CHILD).is_some() {
        scenario(false);
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "the_model_finds_the_lost_wake_up",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && text.contains("deadlock"),
        "the model without the re-check should deadlock; the child said:\n{text}"
    );
}
