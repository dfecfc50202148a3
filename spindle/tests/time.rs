//! `spindle::time`: `sleep`/`sleep_until`, `Interval` and its missed-tick
//! behaviours, deadline scopes, and many timers at once. Every scenario
//! that can runs from coroutines (runtimes with 1, 2 and 4 workers) and
//! from plain OS threads (`common::each_mode`).
//!
//! Scenarios are re-expressed (not copied) from:
//! - Go `src/time/sleep_test.go` (`TestSleep`: a sleep never ends early,
//!   even when something else wakes the sleeper; `TestAfterQueuing`: many
//!   timers of different durations all fire; `TestAfterStress`);
//! - tokio `tokio/tests/time_interval.rs` (`burst`, `delay`, `skip`,
//!   `reset`, `interval_zero_duration`), which runs on a paused clock; here
//!   the clock is real, so a deliberately blocked consumer stands in for
//!   `advance`;
//! - tokio `tokio/tests/time_sleep.rs` (`immediate_sleep`,
//!   `delayed_sleep_level_0`, `exactly_max`);
//! - Go `src/context/context_test.go` (`XTestDeadline`: a child's deadline
//!   is never later than its parent's) for the nesting of deadline scopes.
//!
//! Times are only asserted as lower bounds ("not before"), never as upper
//! bounds; where a scenario needs "the consumer fell behind", a unit blocks
//! it on a channel until a known time has passed.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::{Mode, Unit, each_mode, run_in};
use spindle::runtime::CoroutineState;
use spindle::time::{self, MissedTickBehavior, current_deadline, deadline_scope};

/// A scenario still running after this long is a hang, not a slow test.
const LIMIT: Duration = Duration::from_secs(60);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A deterministic stream of small numbers (Marsaglia's xorshift64).
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

// ---------------------------------------------------------------- sleep

/// Go sleep_test.go TestSleep and tokio time_sleep.rs
/// delayed_sleep_level_0: units sleeping for many different durations
/// (zero included) each return no earlier than asked, by `sleep` and by
/// `sleep_until`.
#[test]
fn sleep_never_returns_early() {
    each_mode(LIMIT, |mode| {
        let units: Vec<_> = (0..mode.scale(64) as u64)
            .map(|i| {
                mode.spawn(move || {
                    let d = Duration::from_micros(i * 397 % 15_000);
                    let start = Instant::now();
                    time::sleep(d);
                    assert!(start.elapsed() >= d, "sleep({d:?}) returned early");
                    let deadline = Instant::now() + d;
                    time::sleep_until(deadline);
                    assert!(Instant::now() >= deadline, "sleep_until returned early");
                })
            })
            .collect();
        for u in units {
            u.join().unwrap();
        }
    });
}

/// Go sleep_test.go TestSleep (an interrupt during the sleep): a sleeper
/// that is unparked over and over while it sleeps still sleeps its full
/// time; in a coroutine each unpark only makes it re-arm its timer.
#[test]
fn unparking_a_sleeper_does_not_cut_its_sleep_short() {
    each_mode(LIMIT, |mode| {
        let state = Arc::new(AtomicUsize::new(0));
        let flag = Arc::clone(&state);
        let sleeper = mode.spawn(move || {
            flag.store(1, SeqCst);
            let start = Instant::now();
            time::sleep(ms(30));
            let slept = start.elapsed();
            flag.store(2, SeqCst);
            slept
        });
        let wake: Box<dyn Fn()> = match &sleeper {
            Unit::Coroutine(h) => {
                let u = h.coroutine().unparker();
                Box::new(move || u.unpark())
            }
            Unit::Thread(h) => {
                let t = h.thread().clone();
                Box::new(move || t.unpark())
            }
        };
        while state.load(SeqCst) != 2 {
            wake();
            spindle::yield_now();
        }
        let slept = sleeper.join().unwrap();
        assert!(slept >= ms(30), "woke after {slept:?}");
    });
}

/// tokio time_sleep.rs immediate_sleep and exactly_max: a zero sleep and a
/// deadline in the past return (at once); a sleep too long for the clock
/// parks until shutdown unwinds it.
#[test]
fn zero_past_and_endless_sleeps() {
    each_mode(LIMIT, |_mode| {
        for _ in 0..1_000 {
            time::sleep(Duration::ZERO);
            time::sleep_until(Instant::now() - ms(1));
        }
    });
    let rt = spindle::Runtime::builder().workers(1).build().unwrap();
    let forever = rt.spawn(|| time::sleep(Duration::MAX));
    rt.block_on(|| {
        let asleep = |c: &spindle::runtime::CoroutineInfo| {
            c.id == forever.id() && c.state == CoroutineState::Sleeping
        };
        while !spindle::runtime::snapshot().coroutines.iter().any(asleep) {
            spindle::yield_now();
        }
    });
    drop(rt);
    let err = forever.join().unwrap_err();
    assert!(err.downcast_ref::<spindle::Cancelled>().is_some());
}

// ------------------------------------------------------------- Interval

/// tokio time_interval.rs (the first tick, then the regular schedule): the
/// first tick of `interval` is due at once; each later one is due exactly a
/// period after the one before, and returns no earlier than it is due.
#[test]
fn interval_ticks_on_a_fixed_schedule() {
    each_mode(LIMIT, |_mode| {
        let period = ms(3);
        let before = Instant::now();
        let mut every = time::interval(period);
        let first = every.tick();
        assert!(first >= before && first <= Instant::now());
        for i in 1..=10 {
            let due = every.tick();
            assert_eq!(due, first + period * i);
            assert!(Instant::now() >= due, "tick {i} returned early");
        }
        assert_eq!(every.period(), period);
        assert_eq!(every.missed_tick_behavior(), MissedTickBehavior::Burst);
    });
}

/// What a consumer saw around being blocked: the time it was released and
/// the ticks it got afterwards.
struct Blocked {
    start: Instant,
    period: Duration,
    released: Instant,
    ticks: Vec<Instant>,
}

/// The consumer ticks once (at `start`), then waits on a channel until a
/// blocking unit has slept until `start + 3.5 periods` and lets it go
/// (so the ticks due at 1, 2 and 3 periods are missed), then takes four
/// more ticks.
fn tick_after_being_blocked(mode: Mode, behavior: MissedTickBehavior) -> Blocked {
    let period = ms(10);
    let start = Instant::now();
    let mut every = time::interval_at(start, period);
    every.set_missed_tick_behavior(behavior);
    assert_eq!(every.tick(), start);
    let (let_go, wait) = spindle::channel::bounded::<()>(0);
    let blocker = mode.spawn(move || {
        time::sleep_until(start + period * 7 / 2);
        let_go.send(()).unwrap();
    });
    wait.recv().unwrap();
    let released = Instant::now();
    assert!(released >= start + period * 7 / 2);
    let ticks = (0..4).map(|_| every.tick()).collect();
    blocker.join().unwrap();
    Blocked {
        start,
        period,
        released,
        ticks,
    }
}

/// tokio time_interval.rs burst: the missed ticks come back to back, each
/// with the time it was due, and the schedule is unchanged afterwards.
#[test]
fn interval_burst_catches_up_on_missed_ticks() {
    each_mode(LIMIT, |mode| {
        let b = tick_after_being_blocked(mode, MissedTickBehavior::Burst);
        let due: Vec<Instant> = (1..=4).map(|k| b.start + b.period * k).collect();
        assert_eq!(b.ticks, due);
        // The first three were overdue when the consumer came back.
        assert!(b.ticks[2] < b.released);
    });
}

/// tokio time_interval.rs delay: the late tick is returned at once, and
/// the schedule restarts a period after it; later ticks are at least a
/// period apart.
#[test]
fn interval_delay_restarts_the_schedule() {
    each_mode(LIMIT, |mode| {
        let b = tick_after_being_blocked(mode, MissedTickBehavior::Delay);
        assert_eq!(b.ticks[0], b.start + b.period);
        // Burst would give 2 periods, Skip 4 periods: both before this.
        assert!(b.ticks[1] >= b.released + b.period);
        for pair in b.ticks[1..].windows(2) {
            assert!(pair[1] >= pair[0] + b.period);
        }
    });
}

/// tokio time_interval.rs skip: the late tick is returned at once, the
/// ticks missed meanwhile are dropped, and the schedule keeps its phase.
#[test]
fn interval_skip_drops_missed_ticks() {
    each_mode(LIMIT, |mode| {
        let b = tick_after_being_blocked(mode, MissedTickBehavior::Skip);
        assert_eq!(b.ticks[0], b.start + b.period);
        let p = b.period.as_nanos();
        for (i, &t) in b.ticks[1..].iter().enumerate() {
            assert_eq!((t - b.start).as_nanos() % p, 0, "tick {i} off the schedule");
        }
        // The ticks due at 2 and 3 periods were dropped.
        assert!(b.ticks[1] > b.released);
        assert!(b.ticks[1] >= b.start + b.period * 4);
        for pair in b.ticks[1..].windows(2) {
            assert!(pair[1] > pair[0]);
        }
    });
}

/// tokio time_interval.rs reset and reset_at: after `reset` the next tick
/// is due one period after the call; after `reset_at` at the given time.
#[test]
fn interval_reset() {
    each_mode(LIMIT, |_mode| {
        let period = ms(5);
        let mut every = time::interval(period);
        every.tick();
        let before = Instant::now();
        every.reset();
        let after = Instant::now();
        let due = every.tick();
        assert!(due >= before + period && due <= after + period);
        assert!(Instant::now() >= due);
        assert_eq!(every.tick(), due + period);

        let at = Instant::now() + ms(2);
        every.reset_at(at);
        assert_eq!(every.tick(), at);
        assert_eq!(every.tick(), at + period);
    });
}

/// tokio time_interval.rs (an interval starting in the past, Burst): the
/// ticks since the start are all due; they come out in order.
#[test]
fn interval_at_in_the_past_bursts_from_its_start() {
    each_mode(LIMIT, |_mode| {
        let period = ms(4);
        let start = Instant::now() - period * 5;
        let mut every = time::interval_at(start, period);
        for k in 0..8 {
            assert_eq!(every.tick(), start + period * k);
        }
    });
}

/// tokio time_interval.rs interval_zero_duration.
#[test]
#[should_panic(expected = "period must not be zero")]
fn interval_with_a_zero_period_panics() {
    let _ = time::interval(Duration::ZERO);
}

// ------------------------------------------------------- deadline scopes

/// Go context_test.go XTestDeadline: scopes nest; an inner scope can
/// shorten the deadline, never extend it; each scope's end restores the
/// enclosing one; `timeout` passes the closure's result through.
#[test]
fn deadline_scopes_nest_and_restore() {
    each_mode(LIMIT, |_mode| {
        assert_eq!(current_deadline(), None);
        let before = Instant::now();
        let got = time::timeout(Duration::from_secs(10), || {
            let outer = current_deadline().expect("inside timeout");
            assert!(outer >= before + Duration::from_secs(10));
            assert!(outer <= Instant::now() + Duration::from_secs(10));
            deadline_scope(outer + Duration::from_secs(5), || {
                assert_eq!(current_deadline(), Some(outer), "not extended");
                let sooner = outer - Duration::from_secs(5);
                deadline_scope(sooner, || {
                    assert_eq!(current_deadline(), Some(sooner), "shortened");
                    time::timeout(Duration::from_secs(3600), || {
                        assert_eq!(current_deadline(), Some(sooner));
                    });
                    assert_eq!(current_deadline(), Some(sooner));
                });
                assert_eq!(current_deadline(), Some(outer), "restored");
            });
            assert_eq!(current_deadline(), Some(outer));
            42
        });
        assert_eq!(got, 42);
        assert_eq!(current_deadline(), None, "restored to none");
        // A duration beyond the clock's range adds no deadline.
        time::timeout(Duration::MAX, || assert_eq!(current_deadline(), None));
    });
}

/// A scope that ends by unwinding restores the enclosing deadline too.
#[test]
fn deadline_scopes_are_restored_after_a_panic() {
    each_mode(LIMIT, |_mode| {
        let outer = Instant::now() + Duration::from_secs(60);
        deadline_scope(outer, || {
            let r = catch_unwind(AssertUnwindSafe(|| {
                deadline_scope(outer - Duration::from_secs(30), || {
                    time::timeout(ms(1), || panic!("inside two scopes"));
                })
            }));
            assert!(r.is_err());
            assert_eq!(current_deadline(), Some(outer));
        });
        let r = catch_unwind(|| time::timeout(ms(1), || panic!("inside one scope")));
        assert!(r.is_err());
        assert_eq!(current_deadline(), None);
    });
}

/// Scopes belong to their coroutine (or thread): units interleaving on one
/// worker each keep their own deadline across parks, and a unit spawned
/// inside a scope does not inherit it.
#[test]
fn deadline_scopes_belong_to_their_unit() {
    each_mode(LIMIT, |mode| {
        let base = Instant::now() + Duration::from_secs(100);
        let units: Vec<_> = (0..mode.scale(32) as u32)
            .map(|i| {
                mode.spawn(move || {
                    let mine = base + Duration::from_secs(u64::from(i));
                    deadline_scope(mine, || {
                        for round in 0..20 {
                            assert_eq!(current_deadline(), Some(mine), "round {round}");
                            if round % 2 == 0 {
                                spindle::yield_now();
                            } else {
                                time::sleep(Duration::from_micros(200));
                            }
                        }
                        let child = mode.spawn(current_deadline);
                        assert_eq!(child.join().unwrap(), None, "not inherited");
                        assert_eq!(current_deadline(), Some(mine));
                    });
                    assert_eq!(current_deadline(), None);
                })
            })
            .collect();
        for u in units {
            u.join().unwrap();
        }
    });
}

/// The scope bounds socket calls, not sleeps: a sleep inside a shorter
/// scope still sleeps its full time.
#[test]
fn sleep_ignores_the_deadline_scope() {
    each_mode(LIMIT, |_mode| {
        let start = Instant::now();
        time::timeout(ms(1), || time::sleep(ms(20)));
        assert!(start.elapsed() >= ms(20));
    });
}

// ----------------------------------------------------------- many timers

/// Go sleep_test.go TestAfterQueuing, scaled up: thousands of units
/// sleeping until deadlines spread over 50 ms all wake, none early, each
/// once.
#[test]
fn many_sleepers_all_wake_on_time() {
    each_mode(LIMIT, |mode| {
        let n = mode.scale(20_000);
        let woke = Arc::new(AtomicUsize::new(0));
        let base = Instant::now() + ms(20);
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let units: Vec<_> = (0..n)
            .map(|_| {
                let deadline = base + Duration::from_micros(rng.below(50_000));
                let woke = Arc::clone(&woke);
                mode.spawn(move || {
                    time::sleep_until(deadline);
                    assert!(Instant::now() >= deadline, "woke early");
                    woke.fetch_add(1, SeqCst);
                })
            })
            .collect();
        for u in units {
            u.join().unwrap();
        }
        assert_eq!(woke.load(SeqCst), n);
    });
}

/// How many coroutines `a_million_pending_timers` parks at once:
/// `SPINDLE_TEST_TIMERS`, or 200,000 (about 2.5 s for both runtimes). With
/// `SPINDLE_TEST_TIMERS=1000000` the test takes about 16 s here, most of
/// it the first touch of a million coroutines' stack pages (4.5 GB of
/// RSS), so the default is smaller; the heap's unit tests push a million
/// entries.
fn pending_timers() -> usize {
    std::env::var("SPINDLE_TEST_TIMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000)
}

/// Go sleep_test.go TestAfterStress, at scale: `pending_timers()`
/// coroutines all wait in a 60 s `park_timeout` at once (that many pending
/// timers on one worker's heap, or on two), then every one is woken early
/// by an unpark, which cancels its timer, and sleeps until a deadline
/// spread over 100 ms. All must wake, none early; the cancelled 60 s
/// timers must delay neither the sleepers nor the runtime's shutdown.
#[test]
fn a_million_pending_timers() {
    for workers in [1, 2] {
        run_in(Mode::Coroutines { workers }, LIMIT, |_mode| {
            let n = pending_timers();
            let arrived = Arc::new(spindle::sync::WaitGroup::new());
            arrived.add(n as isize);
            let base = Arc::new(OnceLock::new());
            let woke = Arc::new(AtomicUsize::new(0));
            let units: Vec<_> = (0..n as u64)
                .map(|i| {
                    let (arrived, base, woke) = (arrived.clone(), base.clone(), woke.clone());
                    spindle::spawn(move || {
                        arrived.done();
                        // Woken early by the unpark below: the timer of the
                        // park it ends is cancelled.
                        let base: Instant = loop {
                            if let Some(&base) = base.get() {
                                break base;
                            }
                            spindle::park_timeout(Duration::from_secs(60));
                        };
                        let deadline = base + Duration::from_micros(i * 7_919 % 100_000);
                        time::sleep_until(deadline);
                        assert!(Instant::now() >= deadline, "woke early");
                        woke.fetch_add(1, SeqCst);
                    })
                })
                .collect();
            arrived.wait();
            // The first deadline leaves time for every unit to take its
            // turn and re-arm; one that re-arms later only wakes at once.
            base.set(Instant::now() + ms(500)).unwrap();
            for u in &units {
                u.coroutine().unpark();
            }
            for u in units {
                u.join().unwrap();
            }
            assert_eq!(woke.load(SeqCst), n);
        });
    }
}
