//! Shutdown: parked coroutines are unwound so their destructors run;
//! coroutines that never started are dropped unrun; joins see `Cancelled`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use spindle::{Cancelled, Runtime};

struct CountDrop(Arc<AtomicUsize>);
impl Drop for CountDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn dropping_the_runtime_unwinds_parked_and_sleeping_coroutines() {
    let drops = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let rt = Runtime::builder().build().unwrap();
    let mut handles = Vec::new();
    for i in 0..50 {
        let (d, s) = (drops.clone(), started.clone());
        handles.push(rt.spawn(move || {
            let _guard = CountDrop(d);
            s.fetch_add(1, Ordering::SeqCst);
            if i % 2 == 0 {
                loop {
                    spindle::park();
                }
            } else {
                spindle::sleep(Duration::from_secs(3600));
            }
        }));
    }
    while started.load(Ordering::SeqCst) < 50 {
        std::thread::yield_now();
    }
    // Let them all reach their blocking call.
    rt.block_on(|| {
        for _ in 0..100 {
            spindle::yield_now();
        }
    });
    drop(rt);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        50,
        "every parked coroutine's destructors ran"
    );
    for h in handles {
        let err = h.join().unwrap_err();
        assert!(err.downcast_ref::<Cancelled>().is_some());
    }
}

#[test]
fn unstarted_coroutines_are_dropped_unrun() {
    let drops = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicUsize::new(0));
    let rt = Runtime::builder().workers(1).build().unwrap();
    let handles = rt.block_on(|| {
        // Spawned from a coroutine that never yields afterwards: they stay
        // queued until shutdown.
        (0..10)
            .map(|_| {
                let guard = CountDrop(drops.clone());
                let ran = ran.clone();
                spindle::spawn(move || {
                    let _g = guard;
                    ran.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect::<Vec<_>>()
    });
    // block_on returned: its coroutine ended, and the ten may or may not
    // have run yet; either way, after the drop every one is accounted for.
    drop(rt);
    let mut cancelled = 0;
    for h in handles {
        match h.join() {
            Ok(()) => {}
            Err(e) => {
                assert!(e.downcast_ref::<Cancelled>().is_some());
                cancelled += 1;
            }
        }
    }
    assert_eq!(ran.load(Ordering::SeqCst) + cancelled, 10);
    assert_eq!(drops.load(Ordering::SeqCst), 10);
}

#[test]
fn spawn_after_shutdown_gives_a_cancelled_handle() {
    let rt = Runtime::builder().build().unwrap();
    let handle = rt.handle().clone();
    drop(rt);
    let h = handle.spawn(|| 1);
    assert!(h.join().unwrap_err().downcast_ref::<Cancelled>().is_some());
}

#[test]
fn destructors_may_block_while_unwinding() {
    // A destructor that joins another coroutine during shutdown.
    struct JoinOnDrop(Option<spindle::JoinHandle<u32>>, Arc<AtomicUsize>);
    impl Drop for JoinOnDrop {
        fn drop(&mut self) {
            if let Some(h) = self.0.take() {
                // The child is cancelled too; joining it still returns.
                let _ = h.join();
                self.1.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    let done = Arc::new(AtomicUsize::new(0));
    let rt = Runtime::builder().build().unwrap();
    let d = done.clone();
    let started = Arc::new(AtomicUsize::new(0));
    let s = started.clone();
    rt.spawn(move || {
        let child = spindle::spawn(|| {
            spindle::sleep(Duration::from_secs(3600));
            7
        });
        let _g = JoinOnDrop(Some(child), d);
        s.fetch_add(1, Ordering::SeqCst);
        loop {
            spindle::park();
        }
    });
    while started.load(Ordering::SeqCst) == 0 {
        std::thread::yield_now();
    }
    drop(rt);
    assert_eq!(done.load(Ordering::SeqCst), 1);
}

#[test]
fn shutdown_timeout_gives_up_on_a_coroutine_that_never_yields() {
    let rt = Runtime::builder().workers(2).build().unwrap();
    let started = Arc::new(AtomicUsize::new(0));
    let s = started.clone();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let st = stop.clone();
    rt.spawn(move || {
        s.store(1, Ordering::SeqCst);
        // No runtime call: cannot be unwound.
        while !st.load(Ordering::Relaxed) {
            std::hint::spin_loop();
        }
    });
    while started.load(Ordering::SeqCst) == 0 {
        std::thread::yield_now();
    }
    rt.shutdown_timeout(Duration::from_millis(50));
    // Returned although the coroutine still runs; let it end.
    stop.store(true, Ordering::Relaxed);
}

/// Regression: a coroutine that once caught a panic must still be unwound
/// by shutdown when it parks afterwards.
#[test]
fn a_coroutine_that_caught_a_panic_is_still_cancelled() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    let started = Arc::new(AtomicUsize::new(0));
    let s = started.clone();
    let h = rt.spawn(move || {
        let _g = CountDrop(d);
        let caught = std::panic::catch_unwind(|| panic!("caught on purpose"));
        assert!(caught.is_err());
        s.store(1, Ordering::SeqCst);
        loop {
            spindle::park();
        }
    });
    while started.load(Ordering::SeqCst) == 0 {
        std::thread::yield_now();
    }
    drop(rt);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    assert!(h.join().unwrap_err().downcast_ref::<Cancelled>().is_some());
}
