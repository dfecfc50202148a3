//! The monitor thread: a worker held by a coroutine that makes no runtime
//! call is reported by name, and new coroutines, migratable ones, their
//! timers and their I/O keep running on an extra worker; coroutines that
//! started on the held worker wait for it (soundness by affinity).
//!
//! Scenario after Go's runtime test `TestPreemptionGC`/sysmon hand-off: a
//! tight loop must not stop the rest of the program; spindle cannot
//! preempt it, so it moves work around it instead.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use spindle::channel;
use spindle::policy::{Mlfq, Policy};
use spindle::runtime::{HeldWorker, Runtime};

/// Waits (on the test thread) until `cond` holds, at most `limit`.
fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    cond()
}

/// A one-worker runtime whose held-worker reports are collected.
fn runtime() -> (Runtime, Arc<Mutex<Vec<HeldWorker>>>) {
    runtime_with(Policy::Fifo)
}

fn runtime_with(policy: Policy) -> (Runtime, Arc<Mutex<Vec<HeldWorker>>>) {
    let reports = Arc::new(Mutex::new(Vec::new()));
    let sink = reports.clone();
    let rt = Runtime::builder()
        .workers(1)
        .policy(policy)
        .hold_threshold(Duration::from_millis(10))
        .on_held_worker(move |r| sink.lock().unwrap().push(r.clone()))
        .build()
        .unwrap();
    (rt, reports)
}

/// Spawns a named coroutine that spins without any runtime call until
/// `stop` is set; returns once it runs.
fn spawn_hog(rt: &Runtime, stop: &Arc<AtomicBool>) -> spindle::JoinHandle<()> {
    let running = Arc::new(AtomicBool::new(false));
    let (r, s) = (running.clone(), stop.clone());
    let h = spindle::Builder::new()
        .name("hog".into())
        .spawn_on(rt.handle(), move || {
            r.store(true, Ordering::SeqCst);
            while !s.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        })
        .unwrap();
    assert!(wait_for(Duration::from_secs(10), || running.load(Ordering::SeqCst)));
    h
}

#[test]
fn a_held_worker_is_named_and_new_work_runs_elsewhere() {
    held_worker_scenario(Policy::Fifo);
}

#[test]
fn the_rescue_works_under_a_policy_too() {
    // Under a policy, new and migratable coroutines sit in the worker's
    // policy queue, not only in its deque; the monitor takes them there.
    held_worker_scenario(Policy::RoundRobin {
        slice: Duration::from_millis(2),
    });
    held_worker_scenario(Policy::Mlfq(Mlfq::default()));
}

fn held_worker_scenario(policy: Policy) {
    let (rt, reports) = runtime_with(policy);
    // Started on worker 0 before the hog: it must wait for the hog.
    let (to_old, old_rx) = channel::unbounded::<u32>();
    let (old_tx, from_old) = channel::unbounded::<u32>();
    let old = rt.spawn(move || {
        for v in old_rx.iter() {
            old_tx.send(v + 1).unwrap();
        }
    });
    to_old.send(1).unwrap();
    assert_eq!(from_old.recv_timeout(Duration::from_secs(10)), Ok(2));

    // A migratable coroutine that started on worker 0 and sleeps through
    // the hog's start: its timer is not the held worker's to fire.
    let (slept_tx, slept_rx) = channel::unbounded::<&'static str>();
    // SAFETY: the coroutine holds nothing thread-bound across its calls.
    let sleeper = unsafe { spindle::Builder::new().migratable() };
    sleeper
        .spawn_on(rt.handle(), move || {
            slept_tx.send("started").unwrap();
            spindle::sleep(Duration::from_millis(30));
            slept_tx.send("slept").unwrap();
        })
        .unwrap();
    assert_eq!(
        slept_rx.recv_timeout(Duration::from_secs(10)),
        Ok("started")
    );

    let stop = Arc::new(AtomicBool::new(false));
    let hog = spawn_hog(&rt, &stop);
    assert_eq!(slept_rx.recv_timeout(Duration::from_secs(20)), Ok("slept"));

    // New coroutines run: with a timer, and with socket I/O.
    let (tx, rx) = channel::unbounded::<&'static str>();
    let tx2 = tx.clone();
    rt.spawn(move || {
        spindle::sleep(Duration::from_millis(5));
        tx2.send("timer").unwrap();
    });
    let tx3 = tx.clone();
    rt.spawn(move || {
        let listener = spindle::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = spindle::spawn(move || {
            let mut c = spindle::net::TcpStream::connect(addr).unwrap();
            c.write_all(b"ping").unwrap();
            let mut buf = [0; 4];
            c.read_exact(&mut buf).unwrap();
            buf
        });
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0; 4];
        s.read_exact(&mut buf).unwrap();
        s.write_all(b"pong").unwrap();
        assert_eq!(&client.join().unwrap(), b"pong");
        tx3.send("io").unwrap();
    });
    // A migratable coroutine that parks and is woken from outside.
    let (wake_tx, wake_rx) = channel::bounded::<()>(0);
    let tx4 = tx.clone();
    // SAFETY: the coroutine holds nothing thread-bound across its calls.
    let mig = unsafe { spindle::Builder::new().migratable() };
    mig.spawn_on(rt.handle(), move || {
        wake_rx.recv().unwrap();
        spindle::sleep(Duration::from_millis(1));
        tx4.send("migratable").unwrap();
    })
    .unwrap();
    wake_tx.send(()).unwrap();

    let mut got: Vec<_> = (0..3)
        .map(|_| {
            rx.recv_timeout(Duration::from_secs(20))
                .expect("rescued work ran")
        })
        .collect();
    got.sort_unstable();
    assert_eq!(got, ["io", "migratable", "timer"]);

    // The coroutine that started on the held worker waits for it: its
    // reply cannot come while the hog spins.
    to_old.send(10).unwrap();
    assert!(from_old.recv_timeout(Duration::from_millis(50)).is_err());

    let report = reports.lock().unwrap()[0].clone();
    assert_eq!(report.worker, 0);
    assert_eq!(report.name.as_deref(), Some("hog"));
    assert_eq!(report.spawn_location.file(), file!());
    assert!(report.held_for >= Duration::from_millis(10));
    assert_eq!(report.in_system_call, Some(false));
    let text = report.to_string();
    assert!(
        text.contains("\"hog\"") && text.contains("checkpoint()"),
        "{text}"
    );

    let m = rt.handle().metrics();
    assert!(m.held_workers >= 1 && m.extra_workers_started >= 1, "{m:?}");

    stop.store(true, Ordering::Relaxed);
    hog.join().unwrap();
    assert_eq!(from_old.recv_timeout(Duration::from_secs(10)), Ok(11));
    // The pressure is gone: the extra worker retires.
    assert!(wait_for(Duration::from_secs(10), || {
        rt.handle().metrics().extra_workers_alive == 0
    }));
    assert!(rt.handle().metrics().extra_workers_retired >= 1);
    drop(to_old);
    old.join().unwrap();
}

#[test]
fn a_blocking_system_call_is_reported_as_one() {
    let (rt, reports) = runtime();
    let h = spindle::Builder::new()
        .name("sleeper".into())
        .spawn_on(rt.handle(), || {
            std::thread::sleep(Duration::from_millis(300))
        })
        .unwrap();
    assert!(wait_for(Duration::from_secs(10), || !reports
        .lock()
        .unwrap()
        .is_empty()));
    let report = reports.lock().unwrap()[0].clone();
    assert_eq!(report.in_system_call, Some(true));
    assert!(report.to_string().contains("spindle::blocking::run"));
    h.join().unwrap();
}

#[test]
fn a_long_turn_yields_at_its_next_runtime_call() {
    // Go's sysmon `preemptone`: a turn the monitor has seen running for
    // half the hold threshold is marked and ends at its next runtime call,
    // whatever the policy says (here a round robin whose slice, 10 s, is
    // far longer than the turn; no extra workers, so nothing else can run
    // `other`).
    let rt = Runtime::builder()
        .workers(1)
        .hold_threshold(Duration::from_millis(20))
        .max_extra_workers(0)
        .on_held_worker(|_| {})
        .policy(Policy::RoundRobin {
            slice: Duration::from_secs(10),
        })
        .build()
        .unwrap();
    let handle = rt.handle().clone();
    let (ran_before, calls) = rt.block_on(move || {
        let other_ran = Arc::new(AtomicBool::new(false));
        let o = other_ran.clone();
        let other = spindle::spawn(move || o.store(true, Ordering::SeqCst));
        // First without runtime calls, past the mark...
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(30) {
            std::hint::spin_loop();
        }
        let ran_before = other_ran.load(Ordering::SeqCst);
        // ...then making them: one of them ends the turn (the first, unless
        // the monitor was slow to look).
        let mut calls = 0u64;
        while handle.metrics().forced_yields == 0 {
            spindle::checkpoint();
            calls += 1;
            assert!(start.elapsed() < Duration::from_secs(30), "never marked");
        }
        assert!(
            other_ran.load(Ordering::SeqCst),
            "the turn ended but `other` did not run"
        );
        other.join().unwrap();
        (ran_before, calls)
    });
    assert!(!ran_before);
    assert!(calls >= 1);
}

#[test]
fn extra_workers_come_and_go_without_losing_work() {
    // Stress: rounds of hogs that hold workers for a few thresholds while
    // hundreds of small coroutines (yielding, sleeping, passing values over
    // a channel, some migratable) are spawned from outside; every one must
    // finish exactly once, under Fifo and under a policy, and the extra
    // workers started on the way must all retire.
    for policy in [Policy::Fifo, Policy::Mlfq(Mlfq::default())] {
        let rt = Runtime::builder()
            .workers(2)
            .policy(policy.clone())
            .hold_threshold(Duration::from_millis(2))
            .max_extra_workers(3)
            .on_held_worker(|_| {})
            .build()
            .unwrap();
        let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut expected = 0;
        for round in 0..6 {
            let held_before = rt.handle().metrics().held_workers;
            let stops: Vec<_> = (0..2)
                .map(|_| {
                    let stop = Arc::new(AtomicBool::new(false));
                    let s = stop.clone();
                    rt.spawn(move || {
                        while !s.load(Ordering::Relaxed) {
                            std::hint::spin_loop();
                        }
                    });
                    stop
                })
                .collect();
            let (tx, rx) = channel::bounded::<usize>(4);
            let mut handles = Vec::new();
            for i in 0..150 {
                let (done, tx, rx) = (done.clone(), tx.clone(), rx.clone());
                let body = move || {
                    match i % 3 {
                        0 => spindle::yield_now(),
                        1 => spindle::sleep(Duration::from_micros(200)),
                        _ => {
                            tx.send(i).unwrap();
                            rx.recv().unwrap();
                        }
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                };
                let b = spindle::Builder::new();
                let h = if (i + round) % 4 == 0 {
                    // SAFETY: the body holds nothing thread-bound across
                    // its calls.
                    unsafe { b.migratable() }.spawn_on(rt.handle(), body)
                } else {
                    b.spawn_on(rt.handle(), body)
                };
                handles.push(h.unwrap());
                expected += 1;
            }
            // Keep the hogs going until the monitor has reported a held
            // worker in this round (an event, not a guess at how long).
            let reported = held_before + 1;
            assert!(
                wait_for(Duration::from_secs(30), || {
                    rt.handle().metrics().held_workers >= reported
                }),
                "{policy}: no held worker reported in round {round}"
            );
            for s in &stops {
                s.store(true, Ordering::Relaxed);
            }
            for h in handles {
                h.join().unwrap();
            }
        }
        assert_eq!(done.load(Ordering::Relaxed), expected, "{policy}");
        assert!(
            wait_for(Duration::from_secs(10), || rt
                .handle()
                .metrics()
                .extra_workers_alive
                == 0),
            "{policy}: {:?}",
            rt.handle().metrics()
        );
        let m = rt.handle().metrics();
        assert_eq!(
            m.extra_workers_started, m.extra_workers_retired,
            "{policy}: {m:?}"
        );
        assert!(
            m.extra_workers_started >= 1 && m.held_workers >= 1,
            "{policy}: {m:?}"
        );
    }
}

/// This thread's CPU time.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(r, 0);
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Restricts the calling thread (and the threads it starts from now on)
/// to one CPU; returns its previous mask.
fn pin_to_one_cpu() -> libc::cpu_set_t {
    // SAFETY: plain calls on this thread's affinity with valid, owned
    // cpu_set_t buffers.
    unsafe {
        let mut old: libc::cpu_set_t = std::mem::zeroed();
        let size = std::mem::size_of::<libc::cpu_set_t>();
        assert_eq!(libc::sched_getaffinity(0, size, &mut old), 0);
        let cpu = (0..libc::CPU_SETSIZE as usize)
            .find(|&c| libc::CPU_ISSET(c, &old))
            .expect("some CPU is allowed");
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut one);
        assert_eq!(libc::sched_setaffinity(0, size, &one), 0);
        old
    }
}

#[test]
fn a_worker_the_kernel_preempts_is_not_held() {
    // A turn that lasts past the hold threshold only because the kernel
    // gave its thread a fraction of a CPU (more runnable threads than
    // CPUs) is not its coroutine's fault, and one more thread would only
    // make the overload worse: no report, no extra worker. Here the
    // worker shares one CPU with six spinning threads (a seventh of it),
    // and its coroutine spins for 7 ms of CPU time, under half the
    // threshold, which takes it about seven times as long on the clock.
    let threshold = Duration::from_millis(20);
    let old_mask = pin_to_one_cpu();
    let stop = Arc::new(AtomicBool::new(false));
    let hogs: Vec<_> = (0..6)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    let reports = Arc::new(Mutex::new(Vec::new()));
    let sink = reports.clone();
    // Its worker and monitor threads inherit the one-CPU mask.
    let rt = Runtime::builder()
        .workers(1)
        .hold_threshold(threshold)
        .on_held_worker(move |r| sink.lock().unwrap().push(r.clone()))
        .build()
        .unwrap();
    // SAFETY: restores this thread's own mask, saved above.
    unsafe {
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &old_mask);
    }
    // Until one turn has outlasted twice the threshold on the clock (the
    // first, unless the spinning threads are slow to start).
    let mut longest = Duration::ZERO;
    for _ in 0..20 {
        let wall = rt.block_on(|| {
            let (start, cpu) = (Instant::now(), thread_cpu_time());
            while thread_cpu_time() - cpu < Duration::from_millis(7) {
                std::hint::spin_loop();
            }
            start.elapsed()
        });
        longest = longest.max(wall);
        if longest >= 2 * threshold {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for h in hogs {
        h.join().unwrap();
    }
    assert!(
        longest >= 2 * threshold,
        "the worker was never short of CPU (longest turn {longest:?})"
    );
    assert!(
        reports.lock().unwrap().is_empty(),
        "{:?}",
        reports.lock().unwrap()
    );
    assert_eq!(rt.handle().metrics().extra_workers_started, 0);
}
