//! Cooperative preemption: the budget of runtime calls per turn, and
//! `checkpoint()`.
//!
//! Scenario after tokio's coop tests (`tokio/src/runtime/coop.rs`): a
//! task whose operations never block still gives way after its budget.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use spindle::Runtime;
use spindle::policy::BUDGET;

#[test]
fn checkpoint_gives_way_after_the_budget_under_fifo() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    rt.block_on(move || {
        // Spawned from a coroutine, so both are queued before either runs.
        let units: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|name| {
                let log = l.clone();
                spindle::spawn(move || {
                    for _ in 0..4 * BUDGET {
                        log.lock().unwrap().push(name);
                        spindle::checkpoint();
                    }
                })
            })
            .collect();
        for u in units {
            u.join().unwrap();
        }
    });
    let log = log.lock().unwrap();
    // Turns of exactly BUDGET iterations. Under Fifo a new coroutine and a
    // started one alternate in taking the worker, so a run may be two
    // turns long, never more.
    let runs: Vec<(&str, usize)> = log
        .chunk_by(|x, y| x == y)
        .map(|c| (c[0], c.len()))
        .collect();
    assert!(runs.len() >= 4, "{runs:?}");
    assert!(
        runs.iter()
            .all(|&(_, n)| n % BUDGET as usize == 0 && n <= 2 * BUDGET as usize),
        "{runs:?}"
    );
    assert!(rt.handle().metrics().forced_yields >= 7);
}

#[test]
fn a_producer_that_never_blocks_still_gives_way() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let sent_before_other_ran = rt.block_on(|| {
        let (tx, rx) = spindle::channel::unbounded();
        let other_ran = Arc::new(AtomicBool::new(false));
        let o = other_ran.clone();
        let other = spindle::spawn(move || o.store(true, Ordering::SeqCst));
        let mut sent = 0;
        while !other_ran.load(Ordering::SeqCst) {
            tx.send(sent).unwrap();
            sent += 1;
            assert!(sent < 10 * BUDGET, "the producer never gave way");
        }
        other.join().unwrap();
        drop(rx);
        sent
    });
    assert!(
        sent_before_other_ran <= 2 * BUDGET,
        "{sent_before_other_ran}"
    );
}

#[test]
fn checkpoint_outside_a_coroutine_does_nothing() {
    for _ in 0..1000 {
        spindle::checkpoint();
    }
}
