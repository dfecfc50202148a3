//! One worker, two CPU-bound loops and a latency-sensitive ticker, under
//! each scheduling policy: how late the ticker wakes, and how the CPU is
//! shared. Then a loop that never makes a runtime call, and the monitor's
//! warning about it.
//!
//! ```text
//! cargo run --release --example policies
//! ```
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use spindle::policy::{Policy, Priority};
use spindle::{Builder, Runtime};

const RUN: Duration = Duration::from_millis(300);

fn main() {
    println!("policy          ticker p99 late   batch A loops   batch B loops (nice 5 / Idle)");
    for policy in Policy::all() {
        let (p99, a, b) = run(policy.clone());
        println!(
            "{:<15} {:>11.0} µs   {:>13}   {:>13}",
            policy.name(),
            p99,
            a,
            b
        );
    }
    held_worker();
}

/// The workload under `policy`: returns the ticker's p99 lateness in µs
/// and each batch loop's iteration count.
fn run(policy: Policy) -> (f64, u64, u64) {
    let rt = Runtime::builder()
        .workers(1)
        .policy(policy)
        .build()
        .expect("runtime");
    let stop = Arc::new(AtomicBool::new(false));
    let counts = [Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0))];
    let (stop2, counts2) = (stop.clone(), counts.clone());
    let late = rt.block_on(move || {
        // Two batch loops: B is nice 5 (Fair) and Idle (Priority).
        for (i, count) in counts2.into_iter().enumerate() {
            let stop = stop2.clone();
            let b = Builder::new().name(format!("batch {i}"));
            let b = if i == 0 {
                b
            } else {
                b.nice(5).priority(Priority::idle(0))
            };
            b.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    count.fetch_add(1, Ordering::Relaxed);
                    // A CPU loop's yield point: returns at once unless
                    // the turn is over.
                    spindle::checkpoint();
                }
            })
            .expect("spawn");
        }
        // The ticker: sleeps 2 ms, notes how late it woke.
        let ticker = Builder::new()
            .name("ticker".into())
            .priority(Priority::realtime(0))
            .spawn(|| {
                let mut late = Vec::new();
                let end = Instant::now() + RUN;
                while Instant::now() < end {
                    let due = Instant::now() + Duration::from_millis(2);
                    spindle::sleep_until(due);
                    late.push(due.elapsed().as_secs_f64() * 1e6);
                }
                late
            })
            .expect("spawn");
        let mut late = ticker.join().expect("ticker");
        stop2.store(true, Ordering::Relaxed);
        late.sort_by(f64::total_cmp);
        late[late.len() * 99 / 100]
    });
    let [a, b] = counts.map(|c| c.load(Ordering::Relaxed));
    (late, a, b)
}

/// A coroutine that loops without any runtime call holds its worker; the
/// runtime's monitor names it on stderr after 10 ms and keeps new work
/// running on an extra worker thread.
fn held_worker() {
    println!("\nA loop without checkpoint() on a one-worker runtime:");
    let rt = Runtime::builder().workers(1).build().expect("runtime");
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let hog = Builder::new()
        .name("busy-loop".into())
        .spawn_on(rt.handle(), move || {
            // (Bounded, so the runtime's shutdown cannot wait forever for
            // it should main end early: a loop without runtime calls
            // cannot be cancelled.)
            let end = Instant::now() + Duration::from_secs(2);
            while !s.load(Ordering::Relaxed) && Instant::now() < end {
                std::hint::spin_loop();
            }
        })
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(50));
    // Spawned after the hog took the only worker: runs on an extra one.
    let t = Instant::now();
    let h = rt.spawn(|| spindle::sleep(Duration::from_millis(5)));
    h.join().expect("join");
    println!(
        "a new coroutine still ran (and slept 5 ms) in {:?}",
        t.elapsed()
    );
    stop.store(true, Ordering::Relaxed);
    hog.join().expect("hog");
    println!("{:?}", rt.handle().metrics());
}
