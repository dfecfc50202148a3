//! loom models of the blocking pool, run on spindle's real code: under
//! `--cfg loom` the pool's lock and the waiters' state words are loom's,
//! the pool's threads are loom threads, and callers (loom threads playing
//! plain OS threads) park as threads do, so loom explores the
//! interleavings of the pool's hand-offs.
//!
//! ```text
//! RUSTFLAGS="--cfg loom -C debug-assertions" CARGO_TARGET_DIR=target/loom \
//!     cargo test -p spindle --test loom_blocking --release
//! ```
//!
//! What is checked, over the interleavings loom explores (bounded to
//! [`PREEMPTIONS`] preemptions; `LOOM_MAX_PREEMPTIONS` overrides):
//! - no lost wake-up and no stranded task: a joiner, a caller of `run`, an
//!   idle thread given a task, a caller waiting for room, and an idle
//!   thread told to shut down are always woken (otherwise loom reports a
//!   deadlock, every thread parked), and every thread exits once the pool
//!   is dropped (loom requires every thread to finish);
//! - each task runs once and its result reaches its caller: what the task
//!   wrote is visible to the caller after `join` or `run` returns (the
//!   writes go to a `loom::cell::UnsafeCell`, so a missing Acquire or
//!   Release in a hand-off is reported as a data race);
//! - a thread started for a task, a thread handed a task while idle, and a
//!   thread that finishes a task and takes a waiting caller's task each
//!   run the task they are given (a hand-off that gave a thread nothing
//!   would panic on its `expect`).
//!
//! Time does not pass under loom, and the keep-alive (10 s) never runs out
//! in a model: idle threads wait until they are given a task or the pool
//! is dropped.
#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;

use spindle::blocking::{Pool, Rejection};

/// The default preemption bound: the whole file takes about 6 s with it
/// (2 s with 4, 6 minutes with 8, which also passes). Each of five bugs
/// planted to try these models was caught with a bound of 3: a task that
/// completes without waking its joiner, a submitter that fills an idle
/// thread's slot after finishing its claim (a data race on the slot), a
/// thread that takes a waiting caller's task without finishing its claim
/// on it, a shutdown that does not wake idle threads, and a `run` task
/// that finishes its claim before storing its result (a data race).
const PREEMPTIONS: usize = 5;

/// Runs `f` under loom with at most [`PREEMPTIONS`] preemptions, unless
/// `LOOM_MAX_PREEMPTIONS` says otherwise.
fn model<F>(f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(PREEMPTIONS);
    }
    builder.check(f);
}

/// A cell a task writes and its caller reads after the hand-off: loom
/// reports a data race if the hand-off does not order them.
struct Cell(UnsafeCell<u32>);

// SAFETY: the models access it from a task and then from its caller, which
// the pool's hand-off orders (what the models check).
unsafe impl Sync for Cell {}

impl Cell {
    fn new() -> Arc<Cell> {
        Arc::new(Cell(UnsafeCell::new(0)))
    }

    fn set(&self, v: u32) {
        self.0.with_mut(|p| {
            // SAFETY: see `impl Sync`.
            unsafe { *p = v }
        });
    }

    fn get(&self) -> u32 {
        self.0.with(|p| {
            // SAFETY: see `impl Sync`.
            unsafe { *p }
        })
    }
}

/// `spawn` starts a thread for the task (no thread yet); `join` races the
/// task's completion (registering before it, or finding the result); then
/// the dropped pool's idle thread is told to exit, racing its going idle.
#[test]
fn spawn_join_and_shutdown() {
    model(|| {
        let pool = Pool::builder().max_threads(1).build().unwrap();
        let cell = Cell::new();
        let c = cell.clone();
        let h = pool.spawn(move || {
            c.set(7);
            7
        });
        assert_eq!(h.join().unwrap(), 7);
        assert_eq!(cell.get(), 7);
        drop(pool);
    });
}

/// A core thread is started at `build` and goes idle; `run` either hands
/// its task to the idle thread (claim, fill the slot, finish) or, if the
/// thread is not idle yet, queues it for the thread to find. The caller
/// waits on its own stack slot, claimed by the task without a list.
#[test]
fn run_hands_off_to_an_idle_thread() {
    model(|| {
        let pool = Pool::builder()
            .core_threads(1)
            .max_threads(1)
            .build()
            .unwrap();
        let cell = Cell::new();
        let got = pool.run(|| {
            cell.set(1);
            cell.get() + 1
        });
        assert_eq!((got, cell.get()), (2, 1));
        drop(pool);
    });
}

/// One thread, no queue, `Rejection::Wait`: two callers of `run` race, and
/// whoever finds the thread busy waits for room; the thread, done with the
/// first task, takes the waiting caller's task from its slot and wakes it.
#[test]
fn a_caller_waits_for_room_and_its_task_is_taken() {
    model(|| {
        let pool = Arc::new(
            Pool::builder()
                .max_threads(1)
                .queue_capacity(0)
                .rejection(Rejection::Wait)
                .build()
                .unwrap(),
        );
        let (a, b) = (Cell::new(), Cell::new());
        let other = {
            let (pool, b) = (pool.clone(), b.clone());
            thread::spawn(move || {
                pool.run(|| b.set(2));
                b.get()
            })
        };
        pool.run(|| a.set(1));
        assert_eq!(a.get(), 1);
        assert_eq!(other.join().unwrap(), 2);
        drop(pool);
    });
}

/// One thread, one queue slot, `Rejection::Wait`: with one task running
/// and one queued, a third caller waits; the thread, taking the queued
/// task, moves the waiting caller's task into the queue and wakes it (or,
/// in other interleavings, the third caller finds room and queues).
#[test]
fn a_waiting_callers_task_joins_the_queue() {
    model(|| {
        let pool = Arc::new(
            Pool::builder()
                .max_threads(1)
                .queue_capacity(1)
                .rejection(Rejection::Wait)
                .build()
                .unwrap(),
        );
        let cells = [Cell::new(), Cell::new(), Cell::new()];
        let handles: Vec<_> = cells[..2]
            .iter()
            .zip(1..)
            .map(|(cell, v)| {
                let cell = cell.clone();
                pool.spawn(move || cell.set(v))
            })
            .collect();
        let other = {
            let (pool, cell) = (pool.clone(), cells[2].clone());
            thread::spawn(move || {
                pool.run(|| cell.set(3));
                cell.get()
            })
        };
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!((cells[0].get(), cells[1].get()), (1, 2));
        assert_eq!(other.join().unwrap(), 3);
        drop(pool);
    });
}

/// A detached task (its handle dropped before it ends) still runs, and its
/// thread exits after the pool is dropped even though nobody joins.
#[test]
fn a_detached_task_runs_and_its_thread_exits() {
    model(|| {
        let pool = Pool::builder().max_threads(1).build().unwrap();
        let done = Arc::new(loom::sync::atomic::AtomicBool::new(false));
        let d = done.clone();
        drop(pool.spawn(move || d.store(true, loom::sync::atomic::Ordering::Release)));
        // A second task, joined: the one thread runs the first before it.
        pool.spawn(|| ()).join().unwrap();
        assert!(done.load(loom::sync::atomic::Ordering::Acquire));
        drop(pool);
    });
}
