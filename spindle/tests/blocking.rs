//! The blocking pool (`spindle::blocking`): each scenario runs from
//! coroutines (runtimes with 1, 2 and 4 workers) and from plain OS threads
//! (see `common::each_mode`), except those about runtime shutdown and the
//! one that needs a child process.
//!
//! Scenarios are re-expressed (not copied) from:
//! - tokio `tokio/tests/task_blocking.rs` (`basic_blocking`) and
//!   `tokio/tests/rt_metrics.rs` (`num_blocking_threads`,
//!   `num_idle_blocking_threads`, `blocking_queue_depth`);
//! - the JSR-166 TCK's `ThreadPoolExecutorTest` (`testGetLargestPoolSize`,
//!   `testSaturatedExecute*` for the abort and caller-runs policies,
//!   `testAllowCoreThreadTimeOut`, `testKeepAliveTime`);
//! - Rust `library/std/src/thread/tests.rs` (`test_try_panic_message_*`:
//!   a panic reaches the joiner as its payload);
//! - Go `src/runtime/chan_test.go` (`TestChan`: a send on a full buffer
//!   blocks until a receive makes room, in FIFO order), for
//!   `Rejection::Wait`.
//!
//! Timing is never asserted on. Where a scenario must know that tasks are
//! running, queued or waiting before it goes on, it polls the pool's
//! metrics (exact, read under the pool's lock); pool tasks that must stay
//! busy wait on a [`Gate`].

mod common;

use std::any::Any;
use std::os::unix::process::ExitStatusExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::Duration;

use common::{Mode, each_mode};
use spindle::WaitReason;
use spindle::blocking::{self, ConfigureError, Pool, PoolMetrics, Rejection};
use spindle::runtime::CoroutineState;

/// A hang fails the test instead of stalling CI.
const LIMIT: Duration = Duration::from_secs(60);

/// A door pool tasks wait at (blocking their pool thread, which is what
/// pool threads are for) until the test opens it.
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    fn wait(&self) {
        let (open, cv) = &*self.0;
        let mut open = open.lock().unwrap();
        while !*open {
            open = cv.wait(open).unwrap();
        }
    }

    fn open(&self) {
        let (open, cv) = &*self.0;
        *open.lock().unwrap() = true;
        cv.notify_all();
    }
}

/// Lets other units run: yields the coroutine, or naps the thread.
fn pause(mode: Mode) {
    if mode.is_coroutines() {
        spindle::yield_now();
    } else {
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// Pauses until `cond` holds (a hang fails the scenario's limit).
fn wait_for(mode: Mode, mut cond: impl FnMut() -> bool) {
    while !cond() {
        pause(mode);
    }
}

/// Pauses until the pool's metrics satisfy `cond`, and returns them.
fn wait_metrics(mode: Mode, pool: &Pool, cond: impl Fn(&PoolMetrics) -> bool) -> PoolMetrics {
    loop {
        let m = pool.metrics();
        if cond(&m) {
            return m;
        }
        pause(mode);
    }
}

/// A panic payload's message.
fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("<not a string>")
}

/// The state `snapshot()` reports for coroutine `id`.
fn state_of(id: spindle::CoroutineId) -> Option<CoroutineState> {
    spindle::runtime::snapshot()
        .coroutines
        .iter()
        .find(|c| c.id == id)
        .map(|c| c.state)
}

// ------------------------------------------------------------ parking

// tokio task_blocking.rs `basic_blocking`: a blocking call runs on the
// pool, and the runtime keeps running other tasks meanwhile. The task
// blocks until another unit sends to it: with one worker, that unit can
// only run if the caller of `run` parked instead of blocking the worker.
// While it waits, the caller shows as `Blocked(Blocking)`.
#[test]
fn run_parks_the_caller_while_others_run() {
    each_mode(LIMIT, |mode| {
        let pool = Arc::new(Pool::builder().max_threads(2).build().unwrap());
        let (tx, rx) = mpsc::channel::<u32>();
        let me = mode.is_coroutines().then(|| spindle::current().id());
        let helper = {
            let pool = pool.clone();
            mode.spawn(move || {
                // The task is on a pool thread, its caller waiting.
                wait_metrics(mode, &pool, |m| m.threads_busy == 1);
                if let Some(id) = me {
                    wait_for(mode, || {
                        state_of(id) == Some(CoroutineState::Blocked(WaitReason::Blocking))
                    });
                }
                tx.send(42).unwrap();
            })
        };
        let got = pool.run(move || rx.recv().unwrap());
        assert_eq!(got, 42);
        helper.join().unwrap();
    });
}

// The same with `spawn` and `join`: the joiner parks; the task's other
// party runs meanwhile.
#[test]
fn join_parks_the_caller_while_others_run() {
    each_mode(LIMIT, |mode| {
        let (tx, rx) = mpsc::channel::<&'static str>();
        let task = blocking::spawn(move || rx.recv().unwrap());
        assert!(!task.is_finished());
        let helper = mode.spawn(move || tx.send("done").unwrap());
        assert_eq!(task.join().unwrap(), "done");
        helper.join().unwrap();
    });
}

// ------------------------------------------------------------ limits

// JSR-166 TCK ThreadPoolExecutorTest `testGetLargestPoolSize`, made exact:
// however many callers submit at once, at most `max_threads` tasks run at
// once, and that many do (the first three wait inside for each other).
#[test]
fn max_threads_is_respected_exactly() {
    each_mode(LIMIT, |mode| {
        const MAX: usize = 3;
        let pool = Arc::new(
            Pool::builder()
                .max_threads(MAX)
                .queue_capacity(None)
                .build()
                .unwrap(),
        );
        let inside = Arc::new(AtomicUsize::new(0));
        let max = Arc::new(AtomicUsize::new(0));
        let units = mode.scale(24);
        let handles: Vec<_> = (0..units)
            .map(|_| {
                let (pool, inside, max) = (pool.clone(), inside.clone(), max.clone());
                mode.spawn(move || {
                    pool.spawn(move || {
                        let now = inside.fetch_add(1, SeqCst) + 1;
                        max.fetch_max(now, SeqCst);
                        // The first MAX tasks leave only once all are in.
                        while max.load(SeqCst) < MAX {
                            std::thread::sleep(Duration::from_micros(50));
                        }
                        inside.fetch_sub(1, SeqCst);
                    })
                })
            })
            .collect();
        let tasks: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        for t in tasks {
            t.join().unwrap();
        }
        assert_eq!(max.load(SeqCst), MAX);
        let m = wait_metrics(mode, &pool, |m| m.tasks_completed == units as u64);
        assert_eq!(m.threads_started, MAX as u64);
        assert_eq!(m.threads_alive, MAX); // the keep-alive is 10 s
        assert_eq!((m.queue_depth, m.tasks_rejected), (0, 0));
    });
}

// JSR-166 TCK `testSaturatedExecute` (AbortPolicy) and tokio rt_metrics
// `blocking_queue_depth`: with every thread busy, tasks queue up to the
// capacity; beyond it, `try_spawn` hands the task back, and under
// `Rejection::Error` `spawn` and `run` panic saying the pool is full.
// Everything accepted still runs.
#[test]
fn a_full_queue_rejects_under_the_error_policy() {
    each_mode(LIMIT, |mode| {
        let pool = Pool::builder()
            .max_threads(2)
            .queue_capacity(3)
            .rejection(Rejection::Error)
            .build()
            .unwrap();
        let gate = Gate::default();
        let ran = Arc::new(AtomicUsize::new(0));
        let gated = || {
            let (gate, ran) = (gate.clone(), ran.clone());
            move || {
                gate.wait();
                ran.fetch_add(1, SeqCst);
            }
        };
        let mut handles = vec![pool.spawn(gated()), pool.spawn(gated())];
        wait_metrics(mode, &pool, |m| m.threads_busy == 2);
        for _ in 0..3 {
            handles.push(pool.spawn(gated()));
        }
        let m = pool.metrics();
        assert_eq!((m.threads_alive, m.threads_busy, m.queue_depth), (2, 2, 3));

        let rejected = pool.try_spawn(|| "unrun").unwrap_err();
        assert!(rejected.is_full());
        assert!(rejected.thread_error().is_none());
        assert!(rejected.to_string().contains("full"), "{rejected}");
        assert_eq!((rejected.into_inner())(), "unrun");

        let payload = catch_unwind(AssertUnwindSafe(|| pool.spawn(|| ()))).unwrap_err();
        assert!(panic_message(&*payload).contains("blocking pool is full"));
        let payload = catch_unwind(AssertUnwindSafe(|| pool.run(|| ()))).unwrap_err();
        assert!(panic_message(&*payload).contains("max_threads"));
        assert_eq!(pool.metrics().tasks_rejected, 3);

        gate.open();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(ran.load(SeqCst), 5);
        // Room again: accepted.
        assert_eq!(pool.try_spawn(|| 7).unwrap().join().unwrap(), 7);
    });
}

// JSR-166 TCK `testSaturatedExecute2` (CallerRunsPolicy): a full pool
// runs the task on the caller: `spawn` returns a finished handle, `run`
// returns having run it right there.
#[test]
fn a_full_pool_runs_on_the_caller_under_caller_runs() {
    each_mode(LIMIT, |mode| {
        let pool = Pool::builder()
            .max_threads(1)
            .queue_capacity(1)
            .rejection(Rejection::CallerRuns)
            .build()
            .unwrap();
        let gate = Gate::default();
        let busy = [(); 2].map(|_| {
            let gate = gate.clone();
            pool.spawn(move || gate.wait())
        });
        wait_metrics(mode, &pool, |m| m.threads_busy == 1 && m.queue_depth == 1);

        let me = std::thread::current().id();
        let h = pool.spawn(|| std::thread::current().id());
        assert!(h.is_finished(), "ran on the caller before spawn returned");
        assert_eq!(h.join().unwrap(), me);
        assert_eq!(pool.run(|| std::thread::current().id()), me);
        // `try_spawn` never runs on the caller.
        assert!(pool.try_spawn(|| ()).unwrap_err().is_full());
        let m = pool.metrics();
        assert_eq!((m.tasks_run_on_caller, m.tasks_rejected), (2, 1));

        gate.open();
        for h in busy {
            h.join().unwrap();
        }
        // Not full any more: back on the pool.
        assert_ne!(pool.run(|| std::thread::current().id()), me);
    });
}

// Go chan_test.go `TestChan` (a send on a full buffer blocks until a
// receive makes room; blocked senders go in order), for
// `Rejection::Wait`: each caller parks (with one worker, the test itself
// keeps running, so it is not the worker that blocks) until a thread takes
// a queued task, and the waiting callers' tasks run in the order they
// came. Also with `queue_capacity(0)`, where a waiting caller hands its
// task straight to the thread that frees up.
#[test]
fn a_full_pool_makes_callers_wait_in_order() {
    each_mode(LIMIT, |mode| {
        for capacity in [0, 1] {
            let pool = Arc::new(
                Pool::builder()
                    .max_threads(1)
                    .queue_capacity(capacity)
                    .rejection(Rejection::Wait)
                    .build()
                    .unwrap(),
            );
            let gate = Gate::default();
            let order = Arc::new(Mutex::new(Vec::new()));
            let mut tasks = Vec::new();
            for i in 0..=capacity {
                let (gate, order) = (gate.clone(), order.clone());
                tasks.push(pool.spawn(move || {
                    gate.wait();
                    order.lock().unwrap().push(i);
                }));
            }
            wait_metrics(mode, &pool, |m| {
                m.threads_busy == 1 && m.queue_depth == capacity
            });

            let waiters = 3;
            let returned = Arc::new(AtomicUsize::new(0));
            let submitters: Vec<_> = (0..waiters)
                .map(|k| {
                    let (p, order, returned) = (pool.clone(), order.clone(), returned.clone());
                    let unit = mode.spawn(move || {
                        let h = p.spawn(move || order.lock().unwrap().push(capacity + 1 + k));
                        returned.fetch_add(1, SeqCst);
                        h
                    });
                    // One at a time, so their order is known.
                    wait_metrics(mode, &pool, |m| m.waiting_submitters == k + 1);
                    unit
                })
                .collect();
            assert_eq!(returned.load(SeqCst), 0, "no room yet: every caller waits");
            assert_eq!(pool.metrics().submit_waits, waiters as u64);

            gate.open();
            for s in submitters {
                tasks.push(s.join().unwrap());
            }
            for t in tasks {
                t.join().unwrap();
            }
            let want: Vec<usize> = (0..capacity + 1 + waiters).collect();
            assert_eq!(*order.lock().unwrap(), want);
            let m = pool.metrics();
            assert_eq!(
                (m.waiting_submitters, m.queue_depth, m.tasks_rejected),
                (0, 0, 0)
            );
        }
    });
}

// ------------------------------------------------------------ keep-alive

// JSR-166 TCK `testAllowCoreThreadTimeOut` / `testKeepAliveTime` and tokio
// rt_metrics `num_idle_blocking_threads`: threads beyond the core ones
// exit once idle for the keep-alive; the core ones stay. A pool used again
// starts threads again.
#[test]
fn idle_threads_retire_down_to_the_core() {
    each_mode(LIMIT, |mode| {
        for core in [0, 1] {
            let pool = Pool::builder()
                .core_threads(core)
                .max_threads(4)
                .keep_alive(Duration::from_millis(20))
                .build()
                .unwrap();
            assert_eq!(
                pool.metrics().threads_alive,
                core,
                "core threads start at build"
            );
            let gate = Gate::default();
            let tasks: Vec<_> = (0..4)
                .map(|_| {
                    let gate = gate.clone();
                    pool.spawn(move || gate.wait())
                })
                .collect();
            wait_metrics(mode, &pool, |m| m.threads_busy == 4);
            gate.open();
            for t in tasks {
                t.join().unwrap();
            }
            wait_metrics(mode, &pool, |m| {
                m.threads_alive == core && m.threads_busy == 0
            });
            // The core thread never retires: still there after many
            // keep-alives.
            std::thread::sleep(Duration::from_millis(100));
            assert_eq!(pool.metrics().threads_alive, core);

            assert_eq!(pool.run(|| 5), 5);
            // Counted just after the task ends, so possibly after `run`
            // returned.
            let m = wait_metrics(mode, &pool, |m| m.tasks_completed == 5);
            assert_eq!(m.threads_started, if core == 0 { 5 } else { 4 });
        }
    });
}

// ------------------------------------------------------------ panics

// std thread tests `test_try_panic_message_*`: a panicking task's payload
// reaches `join` as `Err`, and `run` resumes it in the caller; the thread
// that ran it goes on serving (one thread, started once).
#[test]
fn panics_reach_the_caller_and_the_pool_survives() {
    each_mode(LIMIT, |_mode| {
        let pool = Pool::builder().max_threads(1).build().unwrap();
        let first = pool.run(|| std::thread::current().id());

        let err = pool
            .spawn(|| -> u8 { panic!("task failed") })
            .join()
            .unwrap_err();
        assert_eq!(panic_message(&*err), "task failed");

        let payload = catch_unwind(AssertUnwindSafe(|| {
            pool.run(|| -> u8 { std::panic::panic_any(String::from("run failed")) })
        }))
        .unwrap_err();
        assert_eq!(panic_message(&*payload), "run failed");

        // A result whose destructor panics, dropped on the pool thread
        // because its handle was dropped first.
        struct Bomb;
        impl Drop for Bomb {
            fn drop(&mut self) {
                panic!("dropping the result");
            }
        }
        let gate = Gate::default();
        let h = {
            let gate = gate.clone();
            pool.spawn(move || {
                gate.wait();
                Bomb
            })
        };
        drop(h);
        gate.open();

        assert_eq!(pool.run(|| std::thread::current().id()), first);
        let m = pool.metrics();
        assert_eq!((m.threads_started, m.threads_alive), (1, 1));
        assert_eq!(m.tasks_panicked, 3);
    });
}

// ------------------------------------------------------------ handles

// std `JoinHandle` drop semantics: dropping the handle detaches the task,
// which still runs; its result is dropped when it is done.
#[test]
fn dropping_a_handle_detaches_the_task() {
    each_mode(LIMIT, |_mode| {
        struct Counted(Arc<AtomicUsize>);
        impl Drop for Counted {
            fn drop(&mut self) {
                self.0.fetch_add(1, SeqCst);
            }
        }
        let dropped = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::channel();
        let d = dropped.clone();
        drop(blocking::spawn(move || {
            tx.send("ran").unwrap();
            Counted(d)
        }));
        assert_eq!(rx.recv().unwrap(), "ran");
        while dropped.load(SeqCst) == 0 {
            std::thread::yield_now();
        }
        assert_eq!(dropped.load(SeqCst), 1);
    });
}

// `run` borrows from the caller (like `std::thread::scope`), mutably too;
// a `run` from a pool's own thread runs inline, so a one-thread pool does
// not deadlock on it; a task may use another pool.
#[test]
fn run_borrows_and_nests() {
    each_mode(LIMIT, |_mode| {
        let mut words = vec![String::from("a")];
        let len = blocking::run(|| {
            words.push(String::from("b"));
            words.len()
        });
        assert_eq!((len, words.len()), (2, 2));

        let pool = Arc::new(Pool::builder().max_threads(1).build().unwrap());
        let other = Pool::builder().max_threads(1).build().unwrap();
        let p = pool.clone();
        let (outer, inner, elsewhere) = pool.run(move || {
            let outer = std::thread::current().id();
            let inner = p.run(|| std::thread::current().id());
            let elsewhere = other.run(|| std::thread::current().id());
            (outer, inner, elsewhere)
        });
        assert_eq!(outer, inner, "inline on its own pool");
        assert_ne!(outer, elsewhere);
    });
}

// ------------------------------------------------------------ stress

// Many callers at once through a small pool that is often full (every
// caller ends up waiting for room at times): every call runs exactly once
// and the figures add up.
#[test]
fn many_callers_exact_counts() {
    each_mode(LIMIT, |mode| {
        let pool = Arc::new(
            Pool::builder()
                .max_threads(3)
                .queue_capacity(4)
                .build()
                .unwrap(),
        );
        let units = mode.scale(64);
        let rounds = 40;
        let sum = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..units)
            .map(|u| {
                let (pool, sum) = (pool.clone(), sum.clone());
                mode.spawn(move || {
                    for r in 0..rounds {
                        let v = u * rounds + r;
                        if r % 2 == 0 {
                            // Borrows `sum`.
                            let got = pool.run(|| {
                                sum.fetch_add(v, SeqCst);
                                v
                            });
                            assert_eq!(got, v);
                        } else {
                            let s = sum.clone();
                            pool.spawn(move || s.fetch_add(v, SeqCst)).join().unwrap();
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let n = units * rounds;
        assert_eq!(sum.load(SeqCst), n * (n - 1) / 2);
        let m = wait_metrics(mode, &pool, |m| m.tasks_completed == n as u64);
        assert!(m.threads_started <= 3 && m.threads_alive <= 3);
        assert_eq!(
            (m.tasks_rejected, m.tasks_panicked, m.queue_depth),
            (0, 0, 0)
        );
    });
}

// ------------------------------------------------------------ global pool

// The process-wide pool: built on first use, after which `configure` is
// too late and says so.
#[test]
fn the_global_pool_is_configured_before_first_use() {
    assert_eq!(blocking::run(|| 1 + 1), 2);
    assert!(blocking::global().metrics().threads_started >= 1);
    let err = blocking::configure(Pool::builder().max_threads(8)).unwrap_err();
    assert!(matches!(err, ConfigureError::AlreadyStarted), "{err}");
    assert!(err.to_string().contains("before the first"));
}

// The handles can be shared and sent, as std's are.
#[test]
fn handles_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Pool>();
    send_sync::<blocking::JoinHandle<Vec<u8>>>();
    send_sync::<PoolMetrics>();
    send_sync::<blocking::Rejected<fn()>>();
}

// Settings that cannot work are refused by `build`, with `InvalidInput`.
#[test]
fn invalid_settings_are_refused() {
    for builder in [
        Pool::builder().max_threads(0),
        Pool::builder().core_threads(3).max_threads(2),
        Pool::builder().thread_name("a\0b"),
    ] {
        let err = builder.build().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
    }
}

// ------------------------------------------------------------ thread limits

/// A stack no system can map (128 TiB): thread creation fails every time,
/// deterministically, as it does at a thread limit.
const IMPOSSIBLE_STACK: usize = 1 << 47;

// A pool that cannot start any thread reports it at once (never waits for
// a thread that will not come): `try_spawn` hands the task back with the
// OS's error, `spawn` and `run` panic naming the limits, and a pool whose
// core threads cannot start is not built.
#[test]
fn no_thread_at_all_is_an_error_not_a_hang() {
    each_mode(LIMIT, |_mode| {
        let pool = Pool::builder()
            .stack_size(IMPOSSIBLE_STACK)
            .build()
            .unwrap();
        let err = pool.try_spawn(|| ()).unwrap_err();
        assert!(!err.is_full());
        assert!(err.thread_error().is_some());
        let msg = err.to_string();
        for want in [
            "cannot start a thread",
            "RLIMIT_NPROC",
            "ulimit -u",
            "RLIMIT_AS",
        ] {
            assert!(msg.contains(want), "missing {want:?}: {msg}");
        }
        let io: std::io::Error = err.into();
        assert!(io.to_string().contains("RLIMIT_NPROC"));

        let payload = catch_unwind(AssertUnwindSafe(|| pool.spawn(|| ()))).unwrap_err();
        assert!(panic_message(&*payload).contains("RLIMIT_NPROC"));
        let payload = catch_unwind(AssertUnwindSafe(|| pool.run(|| ()))).unwrap_err();
        assert!(panic_message(&*payload).contains("RLIMIT_NPROC"));
        let m = pool.metrics();
        assert_eq!(
            (m.threads_alive, m.thread_start_failures, m.tasks_rejected),
            (0, 3, 3)
        );

        let err = Pool::builder()
            .core_threads(1)
            .stack_size(IMPOSSIBLE_STACK)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("core thread 1 of 1"), "{err}");
    });
}

/// Tells a re-executed test binary which part to play.
const CHILD_VAR: &str = "SPINDLE_BLOCKING_TEST_CHILD";

/// Runs the test `name` of this file in a child process, output captured.
fn run_child(name: &str) -> Output {
    Command::new(std::env::current_exe().expect("current_exe"))
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD_VAR, name)
        .output()
        .expect("spawn the child test process")
}

/// This process's virtual size in bytes (VmSize).
fn vm_size() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmSize in kB");
    kib * 1024
}

/// Sets the soft address-space limit (`ulimit -v`); `None`: as high as
/// the hard limit.
fn set_rlimit_as(bytes: Option<u64>) {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `rl` is a valid, writable rlimit.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut rl) }, 0);
    rl.rlim_cur = bytes.map_or(rl.rlim_max, |b| b.min(rl.rlim_max));
    // SAFETY: `rl` is a valid rlimit that outlives the call.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &rl) }, 0);
}

// Go's `debug.SetMaxThreads` limit, met from outside (`ulimit -v` leaves
// no room for another thread stack), in a child process: with a thread
// alive, tasks the pool cannot start threads for queue for that thread,
// all of them run, and the pool warns once, naming the limits.
#[test]
fn thread_limit_with_a_thread_alive_queues_the_tasks() {
    const NAME: &str = "thread_limit_with_a_thread_alive_queues_the_tasks";
    if std::env::var(CHILD_VAR).as_deref() == Ok(NAME) {
        let pool = Pool::builder()
            .max_threads(4)
            .stack_size(256 << 20)
            .build()
            .unwrap();
        let gate = Gate::default();
        let mut tasks = Vec::new();
        let (started, running) = mpsc::channel();
        {
            let gate = gate.clone();
            tasks.push(pool.spawn(move || {
                started.send(()).unwrap();
                gate.wait();
            }));
        }
        // The thread has set itself up (std maps its signal stack) and runs
        // the task. Then: room for small allocations, not for a 256 MiB
        // stack.
        running.recv().unwrap();
        set_rlimit_as(Some(vm_size() + (64 << 20)));
        for i in 0..3 {
            let gate = gate.clone();
            tasks.push(pool.spawn(move || {
                gate.wait();
                assert!(i < 3);
            }));
        }
        let m = pool.metrics();
        set_rlimit_as(None);
        gate.open();
        let results: Vec<_> = tasks.into_iter().map(|t| t.join().is_ok()).collect();
        println!(
            "child: alive {} queued {} failures {} results {results:?}",
            m.threads_alive, m.queue_depth, m.thread_start_failures
        );
        return;
    }
    let out = run_child(NAME);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let describe = || {
        format!(
            "status {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            out.status
        )
    };
    assert!(
        out.status.success(),
        "signal {:?}: {}",
        out.status.signal(),
        describe()
    );
    assert!(
        stdout.contains("child: alive 1 queued 3 failures 3 results [true, true, true, true]"),
        "{}",
        describe()
    );
    assert_eq!(
        stderr.matches("cannot start thread").count(),
        1,
        "{}",
        describe()
    );
    for want in ["RLIMIT_NPROC", "RLIMIT_AS", "serve the queue"] {
        assert!(stderr.contains(want), "missing {want:?}: {}", describe());
    }
}

// ------------------------------------------------------------ shutdown

// Runtime shutdown (runtime module docs, "Shutdown"): a coroutine parked
// in `join` is unwound like at any blocking call (the task is detached
// and runs on), while a coroutine inside `run` is not unwound until its
// closure returned, since the closure may borrow from its stack: the
// runtime's drop waits for it.
#[test]
fn shutdown_unwinds_joiners_and_waits_for_run() {
    let rt = spindle::Runtime::builder().workers(1).build().unwrap();
    let (joined_gate, run_gate) = (Gate::default(), Gate::default());
    let run_finished = Arc::new(AtomicBool::new(false));
    let pool = Arc::new(Pool::builder().build().unwrap());
    let joiner = {
        let (pool, gate) = (pool.clone(), joined_gate.clone());
        rt.spawn(move || pool.spawn(move || gate.wait()).join())
    };
    let runner = {
        let (pool, gate, finished) = (pool.clone(), run_gate.clone(), run_finished.clone());
        rt.spawn(move || {
            let mut borrowed = 0u8;
            pool.run(|| {
                gate.wait();
                borrowed = 1;
                finished.store(true, SeqCst);
            });
            borrowed
        })
    };
    wait_metrics(Mode::Threads, &pool, |m| m.threads_busy == 2);
    let opener = {
        let gate = run_gate.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            gate.open();
        })
    };
    drop(rt);
    assert!(
        run_finished.load(SeqCst),
        "the runtime's drop returned before `run`'s closure"
    );
    opener.join().unwrap();
    let err = joiner.join().unwrap_err();
    assert!(err.is::<spindle::Cancelled>());
    // After `run` the coroutine makes no blocking call: it ends normally,
    // having seen the closure's write.
    assert_eq!(runner.join().unwrap(), 1);
    // The detached task still runs when let through.
    joined_gate.open();
    wait_metrics(Mode::Threads, &pool, |m| m.tasks_completed == 2);
}
