//! Spawning and joining: results, panics, ids, names, scopes.
//!
//! Scenarios re-expressed from std's `thread` tests and tokio's
//! `tests/rt_common.rs` (spawn_many, join from outside, panic isolation).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use spindle::Runtime;

/// A runtime with the worker count from `SPINDLE_WORKERS` (CI runs the
/// suite with 1 and 2).
fn rt() -> Runtime {
    Runtime::builder().build().expect("runtime")
}

#[test]
fn join_returns_value_from_coroutine_and_thread() {
    let rt = rt();
    // From a plain thread (the test thread): blocks the thread.
    let h = rt.spawn(|| 40 + 2);
    assert_eq!(h.join().unwrap(), 42);
    // From a coroutine: parks the coroutine.
    let v = rt.block_on(|| spindle::spawn(|| "hi".to_string()).join().unwrap());
    assert_eq!(v, "hi");
}

#[test]
fn panic_is_isolated_and_payload_reaches_join() {
    let rt = rt();
    let bad = rt.spawn(|| -> u32 { std::panic::panic_any(7u32) });
    let good = rt.spawn(|| 1u32);
    let err = bad.join().unwrap_err();
    assert_eq!(err.downcast_ref::<u32>(), Some(&7));
    assert_eq!(good.join().unwrap(), 1);
    // The runtime carries on after the panic.
    assert_eq!(rt.block_on(|| spindle::spawn(|| 5).join().unwrap()), 5);
    let n = std::hint::black_box(3);
    let msg = rt
        .spawn(move || -> () { panic!("boom {n}") })
        .join()
        .unwrap_err();
    assert_eq!(
        msg.downcast_ref::<String>().map(String::as_str),
        Some("boom 3")
    );
}

#[test]
fn block_on_resumes_the_panic() {
    let rt = rt();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(|| panic!("inner"))
    }));
    assert_eq!(*r.unwrap_err().downcast_ref::<&str>().unwrap(), "inner");
    assert_eq!(rt.block_on(|| 3), 3);
}

#[test]
fn block_on_may_borrow() {
    let rt = rt();
    let mut v = vec![1, 2, 3];
    let sum: i32 = rt.block_on(|| v.iter().sum());
    v.push(sum);
    assert_eq!(v, [1, 2, 3, 6]);
}

#[test]
fn is_finished_id_name_and_location() {
    let rt = rt();
    rt.block_on(|| {
        let h = spindle::Builder::new()
            .name("worker-a".into())
            .spawn(|| {
                let me = spindle::current();
                (
                    me.id(),
                    me.name().map(String::from),
                    me.spawn_location().line(),
                )
            })
            .unwrap();
        let id = h.id();
        let (seen_id, name, spawned_at) = h.join().unwrap();
        assert_eq!(seen_id, id);
        assert_eq!(name.as_deref(), Some("worker-a"));
        // The location is the caller's `spawn`, a few lines above.
        assert!(
            (line!() - 20..line!()).contains(&spawned_at),
            "{spawned_at}"
        );
        let h2 = spindle::spawn(|| ());
        assert_ne!(h2.id(), id);
        while !h2.is_finished() {
            spindle::yield_now();
        }
        h2.join().unwrap();
    });
    assert!(spindle::try_current().is_none());
}

#[test]
fn block_on_records_its_callers_location() {
    // Snapshots and held-worker reports name where a coroutine came from;
    // for `block_on`'s coroutine that is the line calling it.
    let rt = rt();
    let (line, loc) = (line!(), rt.block_on(|| spindle::current().spawn_location()));
    assert_eq!((loc.file(), loc.line()), (file!(), line));
}

#[test]
fn scope_borrows_and_joins_everything() {
    let rt = rt();
    rt.block_on(|| {
        let mut counts = vec![0usize; 8];
        let total = AtomicUsize::new(0);
        spindle::scope(|s| {
            for (i, c) in counts.iter_mut().enumerate() {
                let total = &total;
                s.spawn(move || {
                    for _ in 0..=i {
                        *c += 1;
                        total.fetch_add(1, Ordering::Relaxed);
                        spindle::yield_now();
                    }
                });
            }
            let h = s.spawn(|| 99);
            assert_eq!(h.join().unwrap(), 99);
        });
        assert_eq!(counts, [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(total.load(Ordering::Relaxed), 36);
    });
}

#[test]
fn scope_from_a_plain_thread_and_panicking_child() {
    let data = [1u64, 2, 3];
    // Outside a coroutine `scope` uses the default runtime.
    let r = std::panic::catch_unwind(|| {
        spindle::scope(|s| {
            s.spawn(|| data.iter().sum::<u64>());
            s.spawn(|| panic!("child"));
        })
    });
    assert!(r.is_err(), "an unjoined panicking child makes scope panic");
    let sum = spindle::scope(|s| s.spawn(|| data.iter().sum::<u64>()).join().unwrap());
    assert_eq!(sum, 6);
}

#[test]
fn a_million_spawns_all_joined() {
    let rt = rt();
    let n = 1_000_000;
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let joined = rt.block_on(move || {
        let mut handles = Vec::with_capacity(10_000);
        let mut joined = 0;
        for _ in 0..n {
            let c = c.clone();
            handles.push(spindle::spawn(move || {
                c.fetch_add(1, Ordering::Relaxed);
            }));
            if handles.len() == 10_000 {
                for h in handles.drain(..) {
                    h.join().unwrap();
                    joined += 1;
                }
            }
        }
        for h in handles {
            h.join().unwrap();
            joined += 1;
        }
        joined
    });
    assert_eq!(joined, n);
    assert_eq!(count.load(Ordering::Relaxed), n);
}

#[test]
fn detached_coroutines_still_run() {
    let rt = rt();
    let count = Arc::new(AtomicUsize::new(0));
    for _ in 0..100 {
        let c = count.clone();
        drop(rt.spawn(move || {
            c.fetch_add(1, Ordering::SeqCst);
        }));
    }
    rt.block_on(|| {
        while count.load(Ordering::SeqCst) < 100 {
            spindle::yield_now();
        }
    });
}

#[test]
fn spawn_outside_any_runtime_uses_the_default_one() {
    let h = spindle::spawn(|| spindle::current().id());
    let id = h.id();
    assert_eq!(h.join().unwrap(), id);
    assert!(spindle::runtime::default_handle().unwrap().workers() >= 1);
}

#[test]
fn zero_workers_is_a_clear_error() {
    let e = Runtime::builder().workers(0).build().unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("at least one worker"), "{e}");
}

#[test]
fn nested_block_on_from_a_coroutine_of_another_runtime() {
    let outer = rt();
    let inner = rt();
    let v = outer.block_on(|| inner.block_on(|| spindle::spawn(|| 11).join().unwrap()) + 1);
    assert_eq!(v, 12);
}
