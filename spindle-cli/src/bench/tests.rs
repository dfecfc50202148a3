//! Tests of the helpers and of every measurement at small counts: each
//! row's correctness check passes, and `run` prints the JSON line
//! WORKLOADS.md specifies.

use super::chan_pingpong::Peer;
use super::*;

#[test]
fn median_odd_and_even() {
    let ms = Duration::from_millis;
    assert_eq!(median(&mut [ms(5), ms(1), ms(3)]), ms(3));
    assert_eq!(
        median(&mut [ms(4), ms(1), ms(3), ms(2)]),
        Duration::from_micros(2500)
    );
}

#[test]
fn json_line_round_trips_through_value_of() {
    let r = Record {
        workload: "spawn_join",
        system: "spindle",
        n: 100_000,
        workers: 1,
        metric: "ns_per_op",
        value: 123.456,
    };
    let line = r.to_json();
    assert_eq!(
        line,
        "{\"workload\":\"spawn_join\",\"system\":\"spindle\",\"n\":100000,\
         \"workers\":1,\"metric\":\"ns_per_op\",\"value\":123.5}"
    );
    assert_eq!(value_of(&line, "ns_per_op"), Some(123.5));
    assert_eq!(value_of(&line, "spawn_s"), None);
}

#[test]
fn json_numbers_and_strings() {
    assert_eq!(json_num(0.000_123_4), "0.000123");
    assert_eq!(json_num(2.5), "2.5");
    assert_eq!(json_num(f64::NAN), "null");
    assert_eq!(json_str("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
}

#[test]
fn check_reports_both_values() {
    assert!(check("x", 1, 1).is_ok());
    let err = check("sum", 1, 2).unwrap_err().to_string();
    assert!(err.contains("got 1, want 2"), "{err}");
}

#[test]
fn skynet_sizes() {
    assert!(skynet::is_power_of_ten(1));
    assert!(skynet::is_power_of_ten(1_000_000));
    assert!(!skynet::is_power_of_ten(50));
    assert!(!skynet::is_power_of_ten(0));
}

#[test]
fn os_rows_measure_and_check_at_small_counts() {
    assert!(spawn_join::threads(50).unwrap() > Duration::ZERO);
    assert!(spawn_join::forks(5).unwrap() > Duration::ZERO);
    assert!(spawn_join::posix_spawns(3).unwrap() > Duration::ZERO);
    assert!(r#yield::futex_threads(1_001).unwrap() > Duration::ZERO);
    assert!(r#yield::pipe_pingpong(200, Peer::Thread).unwrap() > Duration::ZERO);
    assert!(r#yield::pipe_pingpong(200, Peer::Process).unwrap() > Duration::ZERO);
    let idle = idle_memory::threads(20).unwrap();
    assert!(idle.spawn_s > 0.0);
}

#[test]
fn pinning_narrows_and_restores() {
    let all = os::Pinned::first(usize::MAX).unwrap().cpus();
    {
        let pin = os::Pinned::first(1).unwrap();
        assert_eq!(pin.cpus(), 1);
    }
    assert_eq!(os::Pinned::first(usize::MAX).unwrap().cpus(), all);
    assert!(os::vm_rss().unwrap() > 0);
}

#[test]
fn shared_mutex_is_shared_across_fork() {
    let m = os::SharedMutex::new().unwrap();
    let pid = os::fork_run(|| i32::from(m.with(|v| *v += 41).is_none())).unwrap();
    assert!(os::wait_ok(pid).unwrap());
    assert_eq!(m.with(|v| *v + 1), Some(42));
}

#[test]
fn finish_line_is_read_by_the_last_unit() {
    let start = os::monotonic_ns();
    let line = mutex::FinishLine::new(2);
    line.cross();
    assert_eq!(line.since(start), None, "one unit has not crossed");
    line.cross();
    assert!(line.since(start).is_some());
}

#[test]
fn mutex_os_rows_check_at_small_counts() {
    assert!(mutex::threads(8, 100).unwrap() > Duration::ZERO);
    assert!(mutex::processes(4, 100).unwrap() > Duration::ZERO);
}

#[test]
fn chan_pingpong_os_rows_check_at_small_counts() {
    assert!(chan_pingpong::threads(100).unwrap() > Duration::ZERO);
    assert!(chan_pingpong::pipes(100, Peer::Thread).unwrap() > Duration::ZERO);
    assert!(chan_pingpong::pipes(100, Peer::Process).unwrap() > Duration::ZERO);
}

#[test]
fn spindle_rows_check_at_small_counts() {
    for workers in [1, 2] {
        let rt = runtime(workers).unwrap();
        rt.block_on(|| {
            assert!(mutex::coroutines(20, 100).unwrap() > Duration::ZERO);
            assert!(chan_pingpong::coroutines(200).unwrap() > Duration::ZERO);
            assert!(skynet::coroutines(1_000).unwrap() > Duration::ZERO);
        });
    }
}

/// Runs `spindle bench` in-process with a tiny `--n` and returns its lines.
fn bench_lines(workload: Workload, system: System, workers: u64, n: u64) -> Vec<Record> {
    let args = BenchArgs {
        workload,
        workers,
        n: Some(n),
        system,
        serve: None,
        sched: Default::default(),
    };
    let mut records = Vec::new();
    let emit = |r| records.push(r);
    match workload {
        Workload::Mutex => mutex::run(&args, emit),
        Workload::ChanPingpong => chan_pingpong::run(&args, emit),
        _ => unreachable!("only the workloads tested here"),
    }
    .unwrap();
    records
}

#[test]
fn new_workloads_print_their_json_lines() {
    let systems = [System::Spindle, System::Thread, System::Process];
    let cases = [
        (Workload::Mutex, "mutex", "ns_per_lock", 3),
        (
            Workload::ChanPingpong,
            "chan_pingpong",
            "ns_per_roundtrip",
            50,
        ),
    ];
    for (workload, id, metric, n) in cases {
        assert_eq!(workload.id(), id);
        for system in systems {
            let records = bench_lines(workload, system, 2, n);
            assert_eq!(records.len(), 1, "{id} {system:?}: one line");
            let r = &records[0];
            assert_eq!(
                (r.workload, r.system, r.n, r.metric),
                (id, system.id(), n, metric)
            );
            // OS rows report the CPUs they could use: at most the 2 asked.
            assert!((1..=2).contains(&r.workers), "{r:?}");
            assert!(r.value > 0.0, "{r:?}");
            let line = r.to_json();
            for field in ["workload", "system", "n", "workers", "metric", "value"] {
                assert!(line.contains(&format!("\"{field}\":")), "{line}");
            }
            assert_eq!(
                value_of(&line, metric),
                Some(r.value).map(|v| json_num(v).parse().unwrap())
            );
        }
    }
}

/// `sched_latency` with tiny parameters: every policy, then the
/// `no-yield` variant, prints its three lines with the run's fields. No
/// assertion on the figures: they are the policy's and the machine's.
#[test]
fn sched_latency_prints_three_lines_per_policy() {
    for (policy, hogs, workers) in [
        (None, None, 1),
        (
            Some(sched_latency::PolicyName::Mlfq),
            Some(sched_latency::Hogs::NoYield),
            2,
        ),
    ] {
        let args = BenchArgs {
            workload: Workload::SchedLatency,
            workers,
            n: None,
            system: System::Spindle,
            serve: None,
            sched: SchedArgs {
                policy,
                hogs,
                interactive: Some(8),
                work_us: Some(5),
                secs: Some(0.05),
            },
        };
        let mut lines = Vec::new();
        sched_latency::run(&args, |l| lines.push(l)).unwrap();
        let runs = if policy.is_some() {
            1
        } else {
            spindle::policy::Policy::all().len()
        };
        assert_eq!(lines.len(), 3 * runs);
        for (l, metric) in lines.iter().zip(
            ["p50_wake_us", "p99_wake_us", "cpu_loops_per_sec"]
                .iter()
                .cycle(),
        ) {
            let r = &l.record;
            assert_eq!(
                (r.workload, r.system, r.n, r.workers),
                ("sched_latency", "spindle", 8, workers)
            );
            assert_eq!(r.metric, *metric);
            assert_eq!(l.hogs, hogs.unwrap_or(sched_latency::Hogs::Yield).id());
            let json = l.to_json();
            for field in [
                "\"policy\":",
                "\"hogs\":",
                "\"forced_yields\":",
                "\"interactive\":8,",
            ] {
                assert!(json.contains(field), "{json}");
            }
            assert!(
                value_of(&json, metric).is_some() || json.contains("\"value\":null"),
                "{json}"
            );
        }
        if let Some(p) = policy {
            assert_eq!(lines[0].policy, p.id());
        }
    }
}

#[test]
fn sched_latency_flags_belong_to_it() {
    let mut args = BenchArgs {
        workload: Workload::Skynet,
        workers: 1,
        n: Some(1_000),
        system: System::Spindle,
        serve: None,
        sched: SchedArgs {
            secs: Some(1.0),
            ..SchedArgs::default()
        },
    };
    assert!(matches!(run(&args), Err(BenchError::Usage(_))));
    args.workload = Workload::SchedLatency;
    // `--n` is not how sched_latency is sized; --secs must be positive.
    assert!(matches!(run(&args), Err(BenchError::Usage(_))));
    args.n = None;
    args.sched.secs = Some(0.0);
    assert!(matches!(run(&args), Err(BenchError::Usage(_))));
    args.system = System::Thread;
    assert!(matches!(run(&args), Err(BenchError::Usage(_))));
}
