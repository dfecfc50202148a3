//! Time channels and deadlines: `after`, `at`, `tick`, `never`, and the
//! `_timeout`/`_deadline` operations. Re-expresses crossbeam-channel's
//! `tests/after.rs`, `tests/tick.rs` and `tests/never.rs` (scenarios, not
//! code) against spindle's documented behaviour, which differs from
//! crossbeam's where noted:
//!
//! - `after(d)` / `at(t)` deliver one `Instant` (when they fired) and then
//!   stay connected and empty; capacity 1.
//! - `tick(d)` delivers an `Instant` every `d`, dropping ticks while the
//!   receiver is behind (at most one waits: capacity 1), like Go's
//!   `time.Ticker` (crossbeam's `tick` behaves the same); `tick(0)`
//!   panics.
//! - `never()` never delivers and never disconnects.
//!
//! Times are only asserted as lower bounds ("no earlier than"), never as
//! upper bounds. Every scenario runs from coroutines (1, 2 and 4 workers)
//! and from plain OS threads (`common::each_mode`).

mod common;

use std::time::{Duration, Instant};

use spindle::channel::{
    RecvTimeoutError, SendTimeoutError, TryRecvError, after, at, bounded, never, tick,
};
use spindle::select;

/// A scenario still running after this long is a hang, not a slow test.
const LIMIT: Duration = Duration::from_secs(60);

/// A timeout no correct scenario gets near.
const FOREVER: Duration = Duration::from_secs(30);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Waits (sleeping, so other units run) until `done` holds.
fn wait_until(mut done: impl FnMut() -> bool) {
    while !done() {
        spindle::sleep(ms(1));
    }
}

/// crossbeam-channel tests/after.rs fire, recv: nothing before the
/// duration; then one `Instant`, no earlier than the duration after the
/// call; then nothing more, and the channel stays connected.
#[test]
fn after_fires_once() {
    common::each_mode(LIMIT, |_mode| {
        let start = Instant::now();
        let r = after(ms(20));
        assert_eq!(r.try_recv(), Err(TryRecvError::Empty));
        let fired = r.recv().unwrap();
        assert!(fired >= start + ms(20), "fired early");
        assert!(Instant::now() >= fired);
        assert_eq!(r.try_recv(), Err(TryRecvError::Empty), "stays connected");
        select! {
            recv(r) -> _ => panic!("after delivers once"),
            default => {}
        }
        select! {
            recv(r) -> _ => panic!("after delivers once"),
            recv(after(ms(10))) -> v => assert!(v.is_ok()),
        }
        assert_eq!(r.recv_timeout(ms(5)), Err(RecvTimeoutError::Timeout));
    });
}

/// crossbeam-channel tests/after.rs capacity, len_empty_full: capacity 1;
/// empty before firing, full (one value) after, empty once received.
#[test]
fn after_len_and_capacity() {
    common::each_mode(LIMIT, |_mode| {
        for d in [0, 1, 5] {
            assert_eq!(after(ms(d)).capacity(), Some(1));
        }
        let r = after(ms(10));
        assert_eq!((r.len(), r.is_empty(), r.is_full()), (0, true, false));
        wait_until(|| !r.is_empty());
        assert_eq!((r.len(), r.is_empty(), r.is_full()), (1, false, true));
        r.try_recv().unwrap();
        assert_eq!((r.len(), r.is_empty(), r.is_full()), (0, true, false));
    });
}

/// crossbeam-channel tests/after.rs recv_timeout: a receive timing out
/// before the timer fires, one that gets the timer's value, and one that
/// times out after it (not `Disconnected`: the channel stays connected).
#[test]
fn after_recv_timeout() {
    common::each_mode(LIMIT, |_mode| {
        let start = Instant::now();
        let r = after(ms(40));
        assert_eq!(r.recv_timeout(ms(10)), Err(RecvTimeoutError::Timeout));
        assert!(start.elapsed() >= ms(10));
        let fired = r.recv_timeout(FOREVER).unwrap();
        assert!(fired >= start + ms(40));
        let before = Instant::now();
        assert_eq!(r.recv_timeout(ms(10)), Err(RecvTimeoutError::Timeout));
        assert!(before.elapsed() >= ms(10));
    });
}

/// crossbeam-channel tests/after.rs recv_two, stress_clone: clones of an
/// `after` channel share its one value: of two units selecting over two
/// timers, each gets exactly one.
#[test]
fn after_value_goes_to_one_receiver() {
    common::each_mode(LIMIT, |mode| {
        let r1 = after(ms(5));
        let r2 = after(ms(5));
        let units: Vec<_> = (0..2)
            .map(|_| {
                let (r1, r2) = (r1.clone(), r2.clone());
                mode.spawn(move || {
                    select! {
                        recv(r1) -> v => { v.unwrap(); 1 }
                        recv(r2) -> v => { v.unwrap(); 2 }
                    }
                })
            })
            .collect();
        let mut got: Vec<i32> = units.into_iter().map(|u| u.join().unwrap()).collect();
        got.sort();
        assert_eq!(got, [1, 2]);
        assert_eq!(r1.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(r2.try_recv(), Err(TryRecvError::Empty));
    });
}

/// crossbeam-channel tests/after.rs select, ready: the earlier of two
/// timers wins a select (the other is a timer that never fires within
/// the test); `after(0)` fires.
#[test]
fn after_in_select() {
    common::each_mode(LIMIT, |_mode| {
        let start = Instant::now();
        let winner = select! {
            recv(after(ms(5))) -> v => v.unwrap(),
            recv(after(FOREVER)) -> _ => panic!("the later timer won"),
        };
        assert!(winner >= start + ms(5));
        assert!(after(Duration::ZERO).recv().is_ok());
    });
}

/// crossbeam-channel tests/after.rs (the `at` variant): fires no earlier
/// than the given instant; an instant in the past fires at once.
#[test]
fn at_fires_at_the_instant() {
    common::each_mode(LIMIT, |_mode| {
        let when = Instant::now() + ms(15);
        let fired = at(when).recv().unwrap();
        assert!(fired >= when);
        let past = Instant::now() - ms(100);
        let fired = at(past).recv_timeout(FOREVER).unwrap();
        assert!(fired >= past);
        assert_eq!(at(past).capacity(), Some(1));
    });
}

/// crossbeam-channel tests/tick.rs fire, intervals, recv_two: the k-th
/// tick comes no earlier than k periods after the call, and ticks are
/// increasing.
#[test]
fn tick_intervals() {
    common::each_mode(LIMIT, |_mode| {
        let period = ms(5);
        let start = Instant::now();
        let r = tick(period);
        let mut last = start;
        for k in 1..=5u32 {
            let t = r.recv().unwrap();
            assert!(t >= start + period * k, "tick {k} came early");
            assert!(t > last);
            last = t;
        }
        assert_eq!(r.capacity(), Some(1));
    });
}

/// crossbeam-channel tests/tick.rs len_empty_full, try_recv, and Go's
/// `time.Ticker`: a receiver that falls behind finds at most one tick
/// waiting (the rest were dropped), and ticks keep coming afterwards.
#[test]
fn tick_drops_ticks_for_a_slow_receiver() {
    common::each_mode(LIMIT, |_mode| {
        let period = ms(2);
        let r = tick(period);
        spindle::sleep(period * 15);
        assert!(r.len() <= 1);
        wait_until(|| r.is_full());
        assert_eq!(r.len(), 1);
        assert_eq!(r.try_iter().count(), 1, "at most one tick waits");
        let drained = r.recv().unwrap();
        assert!(r.recv().unwrap() > drained, "ticks keep coming");
    });
}

/// The tick channel's documented panic: a zero period.
#[test]
fn tick_zero_period_panics() {
    common::each_mode(LIMIT, |_mode| {
        let result = std::panic::catch_unwind(|| tick(Duration::ZERO));
        assert!(result.is_err());
    });
}

/// crossbeam-channel tests/tick.rs select: a loop selecting over a data
/// channel and a ticker gets all the data and some ticks; a timer arm
/// (`after`) ends it.
#[test]
fn tick_in_select_loop() {
    common::each_mode(LIMIT, |mode| {
        let (s, r) = bounded::<u32>(0);
        let producer = mode.spawn(move || {
            for i in 0..20 {
                spindle::sleep(ms(1));
                s.send(i).unwrap();
            }
        });
        let ticker = tick(ms(3));
        let mut got = Vec::new();
        while got.len() < 20 {
            // How many ticks come in between depends on timing.
            select! {
                recv(r) -> v => got.push(v.unwrap()),
                recv(ticker) -> t => assert!(t.is_ok()),
            }
        }
        producer.join().unwrap();
        assert_eq!(got, (0..20).collect::<Vec<_>>());
        assert!(ticker.recv().is_ok(), "the ticker still runs");
    });
}

/// crossbeam-channel tests/never.rs smoke, optional, capacity,
/// len_empty_full, try_recv, recv_timeout: `never()` delivers nothing,
/// never disconnects (not even through clones being dropped), has
/// capacity 0, and makes a select arm that is never chosen.
#[test]
#[allow(clippy::unnecessary_literal_unwrap)] // `None.unwrap_or` is the point
fn never_delivers_nothing() {
    common::each_mode(LIMIT, |_mode| {
        let r = never::<i32>();
        assert_eq!(r.capacity(), Some(0));
        assert_eq!((r.len(), r.is_empty()), (0, true));
        assert_eq!(r.try_recv(), Err(TryRecvError::Empty));
        drop(r.clone());
        assert_eq!(r.try_recv(), Err(TryRecvError::Empty));
        let start = Instant::now();
        assert_eq!(r.recv_timeout(ms(10)), Err(RecvTimeoutError::Timeout));
        assert!(start.elapsed() >= ms(10));

        // `optional`: an arm switched off by substituting `never()`.
        let (s, data) = bounded::<i32>(1);
        s.send(1).unwrap();
        let maybe: Option<&spindle::channel::Receiver<i32>> = None;
        let nil = never();
        select! {
            recv(maybe.unwrap_or(&nil)) -> _ => panic!(),
            recv(data) -> v => assert_eq!(v, Ok(1)),
        }
        select! {
            recv(r) -> _ => panic!(),
            recv(after(ms(5))) -> v => assert!(v.is_ok()),
        }
        // `tick_n`: a counting loop whose timer arm is never ready.
        let mut n = 0;
        while n < 3 {
            select! {
                recv(never::<Instant>()) -> _ => panic!(),
                default => n += 1,
            }
        }
    });
}

/// Deadlines in the past: an operation that is ready now still completes
/// (crossbeam's `recv_deadline`/`send_deadline` try once first); one that
/// is not times out at once.
#[test]
fn past_deadlines() {
    common::each_mode(LIMIT, |mode| {
        let past = Instant::now() - ms(10);
        let (s, r) = bounded::<i32>(1);
        assert_eq!(r.recv_deadline(past), Err(RecvTimeoutError::Timeout));
        assert_eq!(s.send_deadline(1, past), Ok(()));
        assert_eq!(s.send_deadline(2, past), Err(SendTimeoutError::Timeout(2)));
        assert_eq!(r.recv_deadline(past), Ok(1));
        assert_eq!(s.send_timeout(3, Duration::ZERO), Ok(()));
        assert_eq!(r.recv_timeout(Duration::ZERO), Ok(3));

        // Deadlines beyond the clock's range wait like the plain call.
        let (s, r) = bounded::<i32>(0);
        let sender = mode.spawn(move || s.send_timeout(4, Duration::MAX));
        assert_eq!(r.recv_timeout(Duration::MAX), Ok(4));
        assert_eq!(sender.join().unwrap(), Ok(()));
    });
}
