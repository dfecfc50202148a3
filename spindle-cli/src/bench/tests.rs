//! Tests of the helpers and of the OS-thread / OS-process measurements
//! at small counts (the spindle rows are exercised by running the bench).

use super::r#yield::Peer;
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
