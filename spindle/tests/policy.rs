//! Scheduling policies on a real runtime: one worker, coroutines that
//! yield or park at known points, and the order the policy runs them in.
//!
//! The policies' queues have exact unit tests on a fake clock
//! (`spindle/src/policy/*.rs`); these check what a user sees. Scenarios
//! after the textbook examples (OSTEP chapters 7–9: FIFO vs. round robin,
//! MLFQ's rules, proportional share).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use spindle::policy::{Fair, Mlfq, Policy, Priority, ShortestFirst};
use spindle::{Builder, CoroutineId, JoinHandle, Runtime};

type Log = Arc<Mutex<Vec<&'static str>>>;

fn runtime(policy: impl Into<Policy>) -> Runtime {
    Runtime::builder()
        .workers(1)
        .policy(policy)
        // Turns in these tests are a few ms; keep the monitor out of them.
        .hold_threshold(Duration::from_secs(5))
        .trace_turns(100_000)
        .build()
        .unwrap()
}

/// Spins for `d` of wall time, calling `checkpoint()` as a CPU loop should.
fn busy(d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        spindle::checkpoint();
    }
}

/// Spawns, from a coroutine of the highest priority (so none of them runs
/// before all are queued), one coroutine per `(name, priority, nice)`,
/// each running `body(name)`; waits for all.
fn run_all(
    rt: &Runtime,
    units: Vec<(&'static str, Priority, i8)>,
    body: impl Fn(&'static str) + Send + Sync + 'static,
) -> Vec<CoroutineId> {
    let body = Arc::new(body);
    rt.block_on(move || {
        let spawner = Builder::new()
            .priority(Priority::realtime(Priority::MAX_LEVEL))
            .spawn(move || {
                units
                    .into_iter()
                    .map(|(name, p, nice)| {
                        let body = body.clone();
                        Builder::new()
                            .name(name.into())
                            .priority(p)
                            .nice(nice)
                            .spawn(move || body(name))
                            .unwrap()
                    })
                    .collect::<Vec<JoinHandle<()>>>()
            })
            .unwrap();
        let handles = spawner.join().unwrap();
        let ids = handles.iter().map(|h| h.id()).collect();
        for h in handles {
            h.join().unwrap();
        }
        ids
    })
}

fn logger(log: &Log, rounds: usize) -> impl Fn(&'static str) + Send + Sync + 'static {
    let log = log.clone();
    move |name| {
        for _ in 0..rounds {
            log.lock().unwrap().push(name);
            spindle::yield_now();
        }
    }
}

#[test]
fn round_robin_rotates_in_arrival_order() {
    let rt = runtime(Policy::RoundRobin {
        slice: Duration::from_millis(2),
    });
    let log = Log::default();
    let n = Priority::normal(0);
    run_all(
        &rt,
        vec![("a", n, 0), ("b", n, 0), ("c", n, 0)],
        logger(&log, 3),
    );
    assert_eq!(
        *log.lock().unwrap(),
        ["a", "b", "c", "a", "b", "c", "a", "b", "c"]
    );
}

#[test]
fn round_robin_slices_cpu_loops() {
    let slice = Duration::from_millis(2);
    let rt = runtime(Policy::RoundRobin { slice });
    let n = Priority::normal(0);
    let ids = run_all(&rt, vec![("a", n, 0), ("b", n, 0)], |_| {
        busy(Duration::from_millis(20))
    });
    let turns: Vec<_> = rt
        .handle()
        .turns()
        .into_iter()
        .filter(|t| ids.contains(&t.coroutine))
        .collect();
    // Each turn but a coroutine's last lasts its whole slice, and the two
    // take turns.
    for (i, t) in turns.iter().enumerate() {
        let last = !turns[i + 1..].iter().any(|u| u.coroutine == t.coroutine);
        assert!(last || t.end - t.start >= slice, "{t:?}");
    }
    let owners: Vec<_> = turns.iter().map(|t| t.coroutine).collect();
    let alternations = owners.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(alternations >= 8, "{owners:?}");
}

#[test]
fn priority_runs_realtime_then_normal_then_idle() {
    let rt = runtime(Policy::Priority);
    let log = Log::default();
    run_all(
        &rt,
        vec![
            ("idle", Priority::idle(0), 0),
            ("normal", Priority::normal(0), 0),
            ("normal-high", Priority::normal(5), 0),
            ("realtime", Priority::realtime(0), 0),
        ],
        logger(&log, 3),
    );
    let expected: Vec<_> = ["realtime", "normal-high", "normal", "idle"]
        .into_iter()
        .flat_map(|n| [n; 3])
        .collect();
    assert_eq!(*log.lock().unwrap(), expected);
}

#[test]
fn priority_never_runs_idle_while_normal_is_ready() {
    let rt = runtime(Policy::Priority);
    let log = Log::default();
    let mut units: Vec<_> = (0..3).map(|_| ("idle", Priority::idle(0), 0)).collect();
    units.extend((0..3).map(|_| ("normal", Priority::normal(0), 0)));
    run_all(&rt, units, logger(&log, 50));
    let log = log.lock().unwrap();
    let first_idle = log.iter().position(|&n| n == "idle").unwrap();
    assert_eq!(
        first_idle, 150,
        "an idle coroutine ran while normal ones were ready"
    );
}

#[test]
fn mlfq_demotes_a_cpu_hog_and_keeps_an_interactive_coroutine_on_top() {
    // OSTEP rule 4: the hog uses up its allotment at the top level in its
    // first turn and is demoted; from then on the short-turn coroutine,
    // still at the top, runs before it every time (rule 1).
    let rt = runtime(Mlfq::default());
    let log = Log::default();
    let l = log.clone();
    let n = Priority::normal(0);
    run_all(&rt, vec![("hog", n, 0), ("short", n, 0)], move |name| {
        if name == "hog" {
            for _ in 0..3 {
                l.lock().unwrap().push("hog");
                busy(Duration::from_millis(5));
            }
        } else {
            for _ in 0..50 {
                l.lock().unwrap().push("short");
                spindle::yield_now();
            }
        }
    });
    let log = log.lock().unwrap();
    let mut expected = vec!["hog"];
    expected.extend(["short"; 50]);
    expected.extend(["hog"; 2]);
    assert_eq!(*log, expected);
}

#[test]
fn round_robin_interleaves_the_same_pair() {
    // The contrast to the MLFQ test: without feedback, the hog and the
    // short coroutine share the worker turn by turn.
    let rt = runtime(Policy::RoundRobin {
        slice: Duration::from_millis(2),
    });
    let n = Priority::normal(0);
    let ids = run_all(&rt, vec![("hog", n, 0), ("short", n, 0)], move |name| {
        if name == "hog" {
            busy(Duration::from_millis(15));
        } else {
            for _ in 0..5 {
                spindle::yield_now();
            }
        }
    });
    let owners: Vec<_> = rt
        .handle()
        .turns()
        .iter()
        .filter(|t| ids.contains(&t.coroutine))
        .map(|t| {
            if t.coroutine == ids[0] {
                "hog"
            } else {
                "short"
            }
        })
        .collect();
    // hog, short, hog, short, ...: the short one's 6 turns, each after a
    // slice of the hog.
    let expected: Vec<_> = std::iter::repeat_n(["hog", "short"], 6).flatten().collect();
    assert_eq!(owners[..12], expected[..], "{owners:?}");
}

#[test]
fn fair_shares_cpu_by_nice_weight() {
    // CFS: nice 0 (weight 1024) and nice 5 (weight 335) competing for one
    // worker get CPU in the ratio of their weights.
    let rt = runtime(Fair::default());
    let n = Priority::normal(0);
    let deadline = Instant::now() + Duration::from_millis(600);
    let ids = run_all(&rt, vec![("nice0", n, 0), ("nice5", n, 5)], move |_| {
        while Instant::now() < deadline {
            spindle::checkpoint();
        }
    });
    let cpu = |id| -> Duration {
        rt.handle()
            .turns()
            .iter()
            .filter(|t| t.coroutine == id)
            .map(|t| t.end - t.start)
            .sum()
    };
    let ratio = cpu(ids[0]).as_secs_f64() / cpu(ids[1]).as_secs_f64();
    let expected = 1024.0 / 335.0;
    assert!(
        (ratio / expected - 1.0).abs() < 0.15,
        "CPU ratio {ratio:.2}, weights say {expected:.2}"
    );
}

#[test]
fn shortest_first_runs_the_short_burst_first_once_it_has_learned() {
    let rt = runtime(ShortestFirst::default());
    let order = rt.block_on(|| {
        let (go_long, long_rx) = spindle::channel::unbounded::<()>();
        let (go_short, short_rx) = spindle::channel::unbounded::<()>();
        let (done_tx, done_rx) = spindle::channel::unbounded::<&'static str>();
        let d = done_tx.clone();
        let long = spindle::spawn(move || {
            for () in long_rx.iter() {
                d.send("long").unwrap();
                let end = Instant::now() + Duration::from_millis(2);
                while Instant::now() < end {
                    std::hint::spin_loop();
                }
            }
        });
        let short = spindle::spawn(move || {
            for () in short_rx.iter() {
                done_tx.send("short").unwrap();
            }
        });
        let mut order = Vec::new();
        for _ in 0..10 {
            // Both become ready together, the long one first.
            go_long.send(()).unwrap();
            go_short.send(()).unwrap();
            order.push((done_rx.recv().unwrap(), done_rx.recv().unwrap()));
        }
        drop((go_long, go_short));
        long.join().unwrap();
        short.join().unwrap();
        order
    });
    // After a few bursts the predictions tell them apart: short first.
    assert!(
        order[5..].iter().all(|&o| o == ("short", "long")),
        "{order:?}"
    );
}
