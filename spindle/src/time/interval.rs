//! [`Interval`]: ticks at a fixed period, with a policy for ticks missed
//! while the caller was busy.
//!
//! An interval is a schedule, not a timer running in the background: it
//! holds the time of its next tick, and [`Interval::tick`] sleeps until
//! then ([`sleep_until`](super::sleep_until)) and computes the one after.
//! Nothing happens between calls, so an interval costs nothing while its
//! owner does other work, and dropping it cancels nothing.
//!
//! # Missed ticks
//!
//! A tick is *missed* when the caller asks for it so late that the tick
//! after it is already due: `tick()` returns at or after `deadline +
//! period`. Lateness shorter than a period is absorbed (the next tick keeps
//! its place in the schedule, so small delays never add up to drift). For
//! missed ticks, [`MissedTickBehavior`] decides when the next tick is due:
//!
//! ```text
//!  period p, ticks due at 0, p, 2p, ...; the caller is busy from just after
//!  the tick at 0 until 3.5p, then calls tick() in a loop:
//!
//!  Burst  returns p (at 3.5p), 2p, 3p (at once), then 4p (at 4p), 5p, ...
//!  Delay  returns p (at 3.5p), then 4.5p, 5.5p, ...     (schedule restarts)
//!  Skip   returns p (at 3.5p), then 4p, 5p, ...         (2p and 3p dropped)
//! ```
//!
//! `tick()` returns the time the tick was *due*, not the time it returned,
//! so a caller can tell a late tick from a punctual one.
//!
//! tokio's `Interval` offers the same three behaviours (Burst is its
//! default too). It treats every tick more than 5 ms late as missed; here
//! a tick counts as missed only once the next one is due, which needs no
//! constant and gives the same schedule whenever the lateness is under a
//! period.

use std::time::{Duration, Instant};

use super::sleep_until;

/// What an [`Interval`] does after the caller missed one or more ticks
/// (asked for a tick after the next one was already due).
///
/// ```
/// use std::time::Duration;
/// use spindle::time::{MissedTickBehavior, interval};
///
/// let rt = spindle::Runtime::builder().workers(1).build().unwrap();
/// rt.block_on(|| {
///     let period = Duration::from_millis(2);
///     let mut ticks = interval(period);
///     ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
///     let first = ticks.tick();
///     spindle::sleep(period * 5); // busy: the ticks at 2, 4, 6 and 8 ms are missed
///     let late = ticks.tick(); // the tick due at 2 ms, at once
///     let next = ticks.tick(); // the first tick due after the catch-up
///     assert_eq!(late, first + period);
///     assert!(next >= first + period * 5);
///     assert_eq!((next - first).as_nanos() % period.as_nanos(), 0);
/// });
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MissedTickBehavior {
    /// Catch up: the missed ticks are returned back to back, as fast as the
    /// caller asks for them, until the schedule is in the future again.
    /// The number of ticks over time stays exactly one per period, and the
    /// schedule never shifts. Good for counting ("one tick = one period
    /// elapsed"); the default, as in tokio.
    #[default]
    Burst,
    /// Restart the schedule: the next tick is due one period after the
    /// late tick was returned, and later ticks follow from there. The
    /// gap between two ticks is never less than a period, and the schedule
    /// shifts by the lateness. Good for "wait at least a period between
    /// rounds" (polling, rate limits).
    Delay,
    /// Drop the missed ticks: the next tick is the first one of the
    /// original schedule that is still in the future. The schedule never
    /// shifts and ticks never come in bursts, but some are never returned.
    /// Good for work aligned to the original schedule (redraw every frame,
    /// report every second); Go's `time.Ticker` drops ticks the same way.
    Skip,
}

impl MissedTickBehavior {
    /// When the tick after one due at `due` and returned at `now` is due.
    fn next_after(self, due: Instant, now: Instant, period: Duration) -> Instant {
        let regular = add(due, period);
        if now < regular {
            // Not missed: whatever the lateness, keep the schedule.
            return regular;
        }
        match self {
            MissedTickBehavior::Burst => regular,
            MissedTickBehavior::Delay => add(now, period),
            MissedTickBehavior::Skip => {
                // The first `due + k * period` strictly after `now`.
                let behind = (now - due).as_nanos();
                let k = behind / period.as_nanos() + 1;
                add(due, nanos(k * period.as_nanos()))
            }
        }
    }
}

/// Ticks at a fixed period: [`tick`](Interval::tick) parks the calling
/// coroutine (or sleeps the calling thread) until the next tick is due.
///
/// Made by [`interval`] (first tick at once) or [`interval_at`] (first tick
/// at a given time). What happens after the caller falls behind is chosen
/// with [`set_missed_tick_behavior`](Interval::set_missed_tick_behavior);
/// see [`MissedTickBehavior`].
///
/// An `Interval` is a plain value: it holds the next tick's time and
/// nothing else, so it can be moved to another coroutine or thread, and
/// costs nothing between ticks. An enclosing [`deadline_scope`]
/// does not shorten a tick's wait.
///
/// [`deadline_scope`]: super::deadline_scope
///
/// ```
/// use std::time::{Duration, Instant};
///
/// let rt = spindle::Runtime::builder().workers(1).build().unwrap();
/// rt.block_on(|| {
///     let period = Duration::from_millis(2);
///     let mut every = spindle::time::interval(period);
///     let start = every.tick(); // the first tick is due at once
///     for i in 1..=3 {
///         let due = every.tick();
///         assert_eq!(due, start + period * i);
///         assert!(Instant::now() >= due);
///     }
/// });
/// ```
#[derive(Clone, Debug)]
pub struct Interval {
    /// When the next tick is due.
    next: Instant,
    period: Duration,
    missed: MissedTickBehavior,
}

/// An [`Interval`] whose first tick is due now (the first
/// [`tick`](Interval::tick) returns at once), and every `period` after.
///
/// # Panics
///
/// If `period` is zero.
///
/// ```
/// use std::time::Duration;
///
/// let rt = spindle::Runtime::builder().workers(1).build().unwrap();
/// rt.block_on(|| {
///     let mut every = spindle::time::interval(Duration::from_millis(1));
///     let a = every.tick();
///     let b = every.tick();
///     assert_eq!(b - a, Duration::from_millis(1));
/// });
/// ```
#[track_caller]
pub fn interval(period: Duration) -> Interval {
    interval_at(Instant::now(), period)
}

/// An [`Interval`] whose first tick is due at `start`, and every `period`
/// after.
///
/// # Panics
///
/// If `period` is zero.
///
/// ```
/// use std::time::{Duration, Instant};
///
/// let rt = spindle::Runtime::builder().workers(1).build().unwrap();
/// rt.block_on(|| {
///     let start = Instant::now() + Duration::from_millis(3);
///     let mut every = spindle::time::interval_at(start, Duration::from_millis(1));
///     assert_eq!(every.tick(), start);
///     assert!(Instant::now() >= start);
/// });
/// ```
#[track_caller]
pub fn interval_at(start: Instant, period: Duration) -> Interval {
    assert!(
        !period.is_zero(),
        "spindle::time::interval: the period must not be zero"
    );
    Interval {
        next: start,
        period,
        missed: MissedTickBehavior::default(),
    }
}

impl Interval {
    /// Waits until the next tick is due and returns the time it was due
    /// (at or before the time it returns); returns at once if it is
    /// already due. Then schedules the tick after it: one period later,
    /// or, if this tick was missed, as the
    /// [missed-tick behaviour](MissedTickBehavior) says.
    ///
    /// In a coroutine it parks (the worker runs other coroutines); on a
    /// plain thread it sleeps the thread. A coroutine waiting here when its
    /// runtime shuts down is unwound; the interval is left as it was.
    pub fn tick(&mut self) -> Instant {
        let due = self.next;
        sleep_until(due);
        self.next = self.missed.next_after(due, Instant::now(), self.period);
        due
    }

    /// Restarts the schedule: the next tick is due one period from now.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let rt = spindle::Runtime::builder().workers(1).build().unwrap();
    /// rt.block_on(|| {
    ///     let period = Duration::from_millis(2);
    ///     let mut every = spindle::time::interval(period);
    ///     every.tick();
    ///     let before = Instant::now();
    ///     every.reset();
    ///     assert!(every.tick() >= before + period);
    /// });
    /// ```
    pub fn reset(&mut self) {
        self.next = add(Instant::now(), self.period);
    }

    /// Moves the next tick to `deadline`; later ticks follow every period
    /// from there. A deadline in the past makes the next tick due at once.
    pub fn reset_at(&mut self, deadline: Instant) {
        self.next = deadline;
    }

    /// The period between ticks.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// What this interval does after missed ticks
    /// ([`Burst`](MissedTickBehavior::Burst) unless changed).
    pub fn missed_tick_behavior(&self) -> MissedTickBehavior {
        self.missed
    }

    /// Sets what this interval does after missed ticks; applies from the
    /// next [`tick`](Self::tick) on.
    pub fn set_missed_tick_behavior(&mut self, behavior: MissedTickBehavior) {
        self.missed = behavior;
    }
}

/// `t + d`, or roughly 30 years after `t` if that does not fit in an
/// `Instant` (a period so long its next tick never comes in practice).
fn add(t: Instant, d: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(86_400 * 365 * 30);
    t.checked_add(d)
        .unwrap_or_else(|| t.checked_add(FAR).unwrap_or(t))
}

/// `n` nanoseconds as a `Duration`, saturating at `Duration::MAX`.
fn nanos(n: u128) -> Duration {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    match u64::try_from(n / NANOS_PER_SEC) {
        Ok(secs) => Duration::new(secs, (n % NANOS_PER_SEC) as u32),
        Err(_) => Duration::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn punctual_or_slightly_late_ticks_keep_the_schedule() {
        let t0 = Instant::now();
        for b in [
            MissedTickBehavior::Burst,
            MissedTickBehavior::Delay,
            MissedTickBehavior::Skip,
        ] {
            assert_eq!(b.next_after(t0, t0, ms(10)), t0 + ms(10));
            // 9.999 ms late: the next tick is not due yet, nothing missed.
            let now = t0 + ms(10) - Duration::from_micros(1);
            assert_eq!(b.next_after(t0, now, ms(10)), t0 + ms(10));
        }
    }

    #[test]
    fn missed_ticks_follow_the_behaviour() {
        let t0 = Instant::now();
        let p = ms(10);
        let now = t0 + ms(35);
        assert_eq!(
            MissedTickBehavior::Burst.next_after(t0, now, p),
            t0 + ms(10)
        );
        assert_eq!(MissedTickBehavior::Delay.next_after(t0, now, p), now + p);
        assert_eq!(MissedTickBehavior::Skip.next_after(t0, now, p), t0 + ms(40));
        // Exactly on a later tick: that tick is not "after now", skip to
        // the one after it.
        assert_eq!(
            MissedTickBehavior::Skip.next_after(t0, t0 + ms(30), p),
            t0 + ms(40)
        );
        // Exactly one period late counts as missed.
        assert_eq!(
            MissedTickBehavior::Delay.next_after(t0, t0 + p, p),
            t0 + p + p
        );
    }

    #[test]
    fn huge_periods_saturate() {
        let t0 = Instant::now();
        let far = MissedTickBehavior::Burst.next_after(t0, t0, Duration::MAX);
        assert!(far > t0 + Duration::from_secs(86_400 * 365));
        assert_eq!(nanos(u128::MAX), Duration::MAX);
        assert_eq!(nanos(1_500_000_000), Duration::from_millis(1500));
    }
}
