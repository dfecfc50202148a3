//! Scheduling: stealing, affinity (soundness), yielding, sleeping,
//! park/unpark races, snapshots, coroutine-local storage.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use spindle::Runtime;
use spindle::runtime::CoroutineState;

fn rt() -> Runtime {
    Runtime::builder().build().expect("runtime")
}

/// A coroutine spawns many, then holds its worker thread without any
/// runtime call until all of them ran: only possible if the other worker
/// stole them (new coroutines are stealable).
#[test]
fn new_coroutines_are_stolen_by_an_idle_worker() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let done = rt.block_on(|| {
        let ran = Arc::new(AtomicUsize::new(0));
        // Fewer than a turn's budget of runtime calls (128): spawning is
        // one, and a turn that spent its budget would run some of the new
        // coroutines here, before the spin below holds the worker.
        let n = 100;
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let ran = ran.clone();
                spindle::spawn(move || {
                    ran.fetch_add(1, Ordering::SeqCst);
                    std::thread::current().id()
                })
            })
            .collect();
        // Hold this worker (no runtime call) until the others ran, with a
        // generous bound so a broken scheduler fails instead of hanging.
        let me = std::thread::current().id();
        let deadline = Instant::now() + Duration::from_secs(60);
        while ran.load(Ordering::SeqCst) < n && Instant::now() < deadline {
            std::hint::spin_loop();
        }
        let all_ran = ran.load(Ordering::SeqCst) == n;
        let threads: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        all_ran && threads.iter().all(|&t| t != me)
    });
    assert!(
        done,
        "another worker must have stolen and run every new coroutine"
    );
}

/// DESIGN.md "Soundness": a coroutine stays on the worker where it first
/// ran, so an `Rc`, a `RefCell` borrow and a reference into a thread-local
/// held across blocking calls are only ever used from that thread.
#[test]
fn rc_refcell_and_thread_local_never_change_thread() {
    thread_local! {
        static TL: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    }
    let rt = Runtime::builder().workers(2).build().unwrap();
    let violations = Arc::new(AtomicUsize::new(0));
    let v = violations.clone();
    rt.block_on(move || {
        let handles: Vec<_> = (0..16)
            .map(|i| {
                let v = v.clone();
                spindle::spawn(move || {
                    let home = std::thread::current().id();
                    let rc = Rc::new(Cell::new(0u32));
                    let cell = RefCell::new(0u32);
                    let borrow = cell.borrow_mut();
                    // A raw pointer into this thread's thread-local, kept
                    // across every blocking call below.
                    let tl: *const RefCell<Vec<u32>> = TL.with(|t| t as *const _);
                    for k in 0..2_000u32 {
                        rc.set(rc.get() + 1);
                        if k % 3 == 0 {
                            spindle::yield_now();
                        } else if k % 3 == 1 {
                            spindle::spawn(|| ()).join().unwrap();
                        } else {
                            spindle::sleep(Duration::from_micros(10));
                        }
                        if std::thread::current().id() != home || TL.with(|t| t as *const _) != tl {
                            v.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    drop(borrow);
                    (i, rc.get())
                })
            })
            .collect();
        // Load on both workers meanwhile.
        let spinners: Vec<_> = (0..4)
            .map(|_| {
                spindle::spawn(|| {
                    for _ in 0..20_000 {
                        spindle::yield_now();
                    }
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap().1, 2_000);
        }
        for s in spinners {
            s.join().unwrap();
        }
    });
    assert_eq!(violations.load(Ordering::SeqCst), 0);
}

#[test]
fn yield_now_interleaves_coroutines_on_one_worker() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let log = rt.block_on(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let hs: Vec<_> = (0..3)
            .map(|i| {
                let log = log.clone();
                spindle::spawn(move || {
                    for _ in 0..3 {
                        log.lock().unwrap().push(i);
                        spindle::yield_now();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        Arc::try_unwrap(log).unwrap().into_inner().unwrap()
    });
    // Every coroutine ran three times, and none ran all three in a row
    // while the others were ready.
    for i in 0..3 {
        assert_eq!(log.iter().filter(|&&x| x == i).count(), 3);
    }
    assert!(
        log.windows(3).all(|w| !(w[0] == w[1] && w[1] == w[2])),
        "{log:?}"
    );
}

#[test]
fn sleep_parks_without_blocking_the_worker() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    rt.block_on(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        let sleeper = spindle::spawn(move || {
            let t = Instant::now();
            spindle::sleep(Duration::from_millis(20));
            assert!(t.elapsed() >= Duration::from_millis(20));
            f.load(Ordering::SeqCst)
        });
        // With one worker, this runs while the sleeper sleeps.
        spindle::spawn(move || flag.store(true, Ordering::SeqCst))
            .join()
            .unwrap();
        assert!(
            sleeper.join().unwrap(),
            "the other coroutine ran during the sleep"
        );
        spindle::sleep_until(Instant::now() - Duration::from_millis(1)); // past: returns
    });
}

#[test]
fn many_sleepers_wake_in_deadline_order() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let order = rt.block_on(|| {
        let order = Arc::new(Mutex::new(Vec::new()));
        let hs: Vec<_> = [30u64, 10, 20]
            .into_iter()
            .map(|ms| {
                let order = order.clone();
                spindle::spawn(move || {
                    spindle::sleep(Duration::from_millis(ms));
                    order.lock().unwrap().push(ms);
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        Arc::try_unwrap(order).unwrap().into_inner().unwrap()
    });
    assert_eq!(order, [10, 20, 30]);
}

#[test]
fn unpark_before_park_is_not_lost() {
    let rt = rt();
    rt.block_on(|| {
        let me = spindle::unparker();
        me.unpark();
        spindle::park(); // returns at once: the token was stored
        let u = spindle::current().unparker();
        let h = spindle::spawn(move || u.unpark());
        h.join().unwrap();
        spindle::park();
    });
    // The same on a plain thread.
    let u = spindle::unparker();
    u.unpark();
    spindle::park();
}

#[test]
fn park_timeout_returns() {
    let rt = rt();
    rt.block_on(|| {
        let t = Instant::now();
        spindle::park_timeout(Duration::from_millis(5));
        // May return spuriously, but never hangs; usually after 5 ms.
        assert!(t.elapsed() < Duration::from_secs(30));
    });
}

/// No lost wake-up: coroutines and threads race to unpark coroutines that
/// park in a loop on a counter; every round must finish.
#[test]
fn park_unpark_races_from_threads_and_coroutines() {
    let rt = rt();
    let rounds = 20_000usize;
    let waiters = 4;
    let counters: Arc<Vec<AtomicUsize>> =
        Arc::new((0..waiters).map(|_| AtomicUsize::new(0)).collect());
    let unparkers: Arc<Mutex<Vec<Option<spindle::Unparker>>>> =
        Arc::new(Mutex::new(vec![None; waiters]));
    let mut handles = Vec::new();
    for w in 0..waiters {
        let (counters, unparkers) = (counters.clone(), unparkers.clone());
        handles.push(rt.spawn(move || {
            unparkers.lock().unwrap()[w] = Some(spindle::unparker());
            let mut seen = 0;
            while seen < rounds {
                // Wait for the producer's next increment.
                while counters[w].load(Ordering::Acquire) == seen {
                    spindle::park();
                }
                seen = counters[w].load(Ordering::Acquire);
            }
        }));
    }
    while unparkers.lock().unwrap().iter().any(Option::is_none) {
        std::thread::yield_now();
    }
    let us: Vec<spindle::Unparker> = unparkers
        .lock()
        .unwrap()
        .iter()
        .map(|u| u.clone().unwrap())
        .collect();
    // Half the producers are OS threads, half coroutines.
    let mut producers = Vec::new();
    for w in 0..waiters {
        let (counters, u) = (counters.clone(), us[w].clone());
        let body = move || {
            for _ in 0..rounds {
                counters[w].fetch_add(1, Ordering::Release);
                u.unpark();
            }
        };
        if w % 2 == 0 {
            let t = std::thread::spawn(body);
            producers.push(Box::new(move || t.join().is_ok()) as Box<dyn FnOnce() -> bool>);
        } else {
            let h = rt.spawn(body);
            producers.push(Box::new(move || h.join().is_ok()));
        }
    }
    for p in producers {
        assert!(p());
    }
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn snapshot_shows_states_reasons_and_counters() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    rt.block_on(|| {
        let sleeper = spindle::Builder::new()
            .name("sleepy".into())
            .spawn(|| spindle::sleep(Duration::from_secs(3600)))
            .unwrap();
        let parked = spindle::spawn(|| {
            loop {
                spindle::park();
            }
        });
        // Let both start and block (the order they start in is the
        // scheduler's business; wait until it has happened).
        let me = spindle::current().id();
        let mut snap = spindle::runtime::snapshot();
        for _ in 0..1000 {
            let blocked = snap
                .coroutines
                .iter()
                .filter(|c| {
                    matches!(
                        c.state,
                        CoroutineState::Sleeping | CoroutineState::Blocked(_)
                    )
                })
                .count();
            if blocked == 2 {
                break;
            }
            spindle::yield_now();
            snap = spindle::runtime::snapshot();
        }
        let find = |id| snap.coroutines.iter().find(|c| c.id == id).expect("listed");
        assert_eq!(find(me).state, CoroutineState::Running);
        let s = find(sleeper.id());
        assert_eq!(s.state, CoroutineState::Sleeping);
        assert_eq!(s.name.as_deref(), Some("sleepy"));
        assert_eq!(s.worker, Some(0));
        assert!(s.times_scheduled >= 1);
        assert!(s.location.file().ends_with("rt_sched.rs"));
        assert_eq!(
            find(parked.id()).state,
            CoroutineState::Blocked(spindle::WaitReason::Park)
        );
        assert_eq!(snap.workers, 1);
        // Leave them to shutdown (which unwinds them).
    });
}

#[test]
fn coroutine_local_is_per_coroutine_and_dropped_at_end() {
    struct Noisy(Arc<AtomicUsize>);
    impl Drop for Noisy {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    spindle::coroutine_local! {
        static N: Cell<u32> = Cell::new(0);
        static D: RefCell<Option<Noisy>> = RefCell::new(None);
    }
    let rt = rt();
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    rt.block_on(move || {
        let hs: Vec<_> = (0..10u32)
            .map(|i| {
                let d = d.clone();
                spindle::spawn(move || {
                    D.with(|x| *x.borrow_mut() = Some(Noisy(d)));
                    for _ in 0..i {
                        N.with(|n| n.set(n.get() + 1));
                        spindle::yield_now();
                    }
                    N.with(Cell::get)
                })
            })
            .collect();
        for (i, h) in hs.into_iter().enumerate() {
            assert_eq!(h.join().unwrap(), i as u32);
        }
    });
    assert_eq!(drops.load(Ordering::SeqCst), 10);
    // On a plain thread, a per-thread copy.
    N.with(|n| n.set(5));
    assert_eq!(N.with(Cell::get), 5);
}

#[test]
fn migratable_coroutines_run_to_completion() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let total = rt.block_on(|| {
        let hs: Vec<_> = (0..50u64)
            .map(|i| {
                // SAFETY: the closure holds nothing thread-bound across its
                // blocking calls (only a u64).
                unsafe { spindle::Builder::new().migratable() }
                    .spawn(move || {
                        let mut acc = 0;
                        for k in 0..100 {
                            acc += k;
                            spindle::yield_now();
                            if k % 10 == 0 {
                                spindle::sleep(Duration::from_micros(50));
                            }
                        }
                        acc + i
                    })
                    .unwrap()
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    });
    assert_eq!(total, 50 * 4950 + 1225);
}

/// Regression: a sleeping worker woken on its own just as `notify_one`
/// picked it used to keep a "searching" count forever, after which no
/// spawn from outside woke any worker again (a hang). Many workers on few
/// CPUs make the window likely.
#[test]
fn spawns_from_a_thread_keep_waking_sleeping_workers() {
    let rt = Runtime::builder().workers(8).build().unwrap();
    for i in 0..30_000u64 {
        let h = rt.spawn(move || {
            let kids: Vec<_> = (0..3).map(|k| spindle::spawn(move || i + k)).collect();
            kids.into_iter().map(|k| k.join().unwrap()).sum::<u64>()
        });
        assert_eq!(h.join().unwrap(), 3 * i + 3);
    }
}
