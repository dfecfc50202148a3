//! Multilevel feedback queue: OSTEP's rules 1–5.
//!
//! State: one FIFO queue per level (level 0 at the top) and a bitmap of
//! the non-empty ones, so `pop` is one `trailing_zeros`; the boost epoch
//! (a `u16` counter) and the time of the next boost. Per coroutine, in its
//! `SchedData`: `level`, `used` (run time charged at that level, over any
//! number of turns and parks) and `epoch` (the boost its level belongs
//! to).
//!
//! Boosts are applied lazily, when a call sees `now` past the due time
//! (`pop`, `push`, `slice` and `charge` all look): the queued coroutines
//! move to level 0 at once (each level appended in order behind level 0,
//! so their relative order is kept), and the epoch is bumped. Parked or
//! running coroutines are not in the queue; their `SchedData` still names
//! the old epoch, and the first call that sees it (`push` at wake-up,
//! `slice`, `charge`) puts them at level 0 with nothing used. So a boost
//! costs O(levels) plus the queue moves, never a walk over every
//! coroutine. After 65,536 boosts the epoch wraps: a coroutine parked for
//! exactly that many boosts keeps its level, until the next boost.

use std::collections::VecDeque;
use std::time::Duration;

use super::{MIN_SLICE_NS, RunQueue, SchedData, Why, nanos, take_from};

/// The most levels: the bitmap is a `u32`.
const MAX_LEVELS: u8 = 32;
/// The longest slice: the run time used at a level is a `u32` of ns.
const MAX_SLICE: Duration = Duration::from_secs(4);

/// Settings of [`Policy::Mlfq`](super::Policy::Mlfq): a multilevel
/// feedback queue, which learns from each coroutine's past which ones are
/// interactive and favours them, without being told.
///
/// # The rule (OSTEP, "Scheduling: The Multi-Level Feedback Queue")
///
/// 1. A coroutine at a higher level runs before one at a lower level
///    (level 0 is the top).
/// 2. At the same level, round robin with the level's slice.
/// 3. A new coroutine starts at the top.
/// 4. Once a coroutine has used up its allotment at a level — here, the
///    level's slice — it moves down one level, *however many times it gave
///    up the CPU on the way* (yielding or parking just before the slice
///    ends does not keep it on top: run time adds up across turns).
/// 5. Every `boost_period`, every coroutine goes back to the top (so
///    CPU-bound ones cannot starve, and one that turns interactive is
///    noticed).
///
/// An interactive coroutine therefore stays on top as long as it uses less
/// than the top slice per boost period: with the defaults, less than 2 ms
/// every 100 ms (2% of a worker). A CPU-bound one sinks to the bottom in
/// 2 + 4 = 6 ms of run time, and runs there with 8 ms slices whenever
/// nothing above is ready; at each boost it is queued at the top again,
/// behind what was there and ahead of everything that arrives later.
///
/// A turn cut short because a coroutine was woken goes to the back of its
/// level, as an ended slice does (round robin within a level), keeping the
/// allotment it used: right after a boost, a woken interactive coroutine
/// runs before the rest of a CPU-bound one's top-level turn.
///
/// A slice is what is left of the allotment at the coroutine's level (a
/// coroutine that used 1.5 ms of its 2 ms before parking gets 0.5 ms next
/// time), but never less than 50 µs, so an allotment that is all but spent
/// does not make it yield at every runtime call.
///
/// # Under work stealing
///
/// Each worker has its own levels, boost clock and epoch: the rules hold
/// among the coroutines of one worker. A coroutine stolen before it ever
/// ran enters the thief's queue as new, at the top. A migratable
/// coroutine moved to another worker while parked is boosted to that
/// worker's top, since its epoch does not match there.
///
/// # Measured
///
/// `sched_latency` (BENCHMARKS.md), 100 interactive coroutines beside 2
/// checkpointing CPU-bound ones per worker, 2 workers: p99 wake-up
/// 281–387 µs (round robin: 15.8 ms; Go 1.19: 39–78 ms), the CPU-bound
/// ones keeping 0.84–0.91 of the 2 CPUs. In `spindle lab`'s chart the two
/// CPU-bound coroutines sink after their first turns and the interactive
/// one runs the moment it wakes.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use spindle::policy::{Mlfq, Policy};
///
/// let mlfq = Mlfq {
///     boost_period: Duration::from_millis(50),
///     ..Mlfq::default()
/// };
/// let rt = spindle::Runtime::builder()
///     .workers(1)
///     .policy(Policy::Mlfq(mlfq))
///     .build()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mlfq {
    /// How many levels, 1–32. One level is plain round robin.
    pub levels: u8,
    /// Each level's slice, which is also its allotment (rule 4), from the
    /// top down; exactly one per level, each above zero and at most 4 s.
    pub slices: Vec<Duration>,
    /// How often everything goes back to the top (rule 5).
    pub boost_period: Duration,
}

impl Default for Mlfq {
    /// 3 levels with slices of 2, 4 and 8 ms, and a boost every 100 ms.
    ///
    /// The slices double downwards, as in OSTEP's examples: short at the
    /// top, where interactive coroutines live and a wake-up should not
    /// wait long behind another one; long at the bottom, where CPU-bound
    /// coroutines amortise their switches. 100 ms bounds how long later
    /// arrivals can pass a demoted coroutine, while keeping the cost of a
    /// boost small: each CPU-bound coroutine then spends 6 ms on the upper
    /// levels, competing with interactive ones, so at most 6% of each
    /// period per CPU-bound coroutine.
    fn default() -> Mlfq {
        Mlfq {
            levels: 3,
            slices: [2, 4, 8].map(Duration::from_millis).to_vec(),
            boost_period: Duration::from_millis(100),
        }
    }
}

impl Mlfq {
    /// Checks the settings; the error names the one that is wrong.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.levels == 0 || self.levels > MAX_LEVELS {
            return Err(format!(
                "Mlfq::levels must be 1-{MAX_LEVELS}, not {}",
                self.levels
            ));
        }
        if self.slices.len() != usize::from(self.levels) {
            return Err(format!(
                "Mlfq::slices needs one slice per level: {} slices for {} levels",
                self.slices.len(),
                self.levels
            ));
        }
        if let Some(i) = self.slices.iter().position(Duration::is_zero) {
            return Err(format!(
                "Mlfq::slices[{i}] is zero; every level needs a slice above zero"
            ));
        }
        if let Some(i) = self.slices.iter().position(|&d| d > MAX_SLICE) {
            return Err(format!(
                "Mlfq::slices[{i}] is {:?}; a slice may be at most {MAX_SLICE:?}",
                self.slices[i]
            ));
        }
        if self.boost_period.is_zero() {
            return Err(
                "Mlfq::boost_period must be above zero (100 ms is the default); \
                 without boosts a demoted coroutine could starve"
                    .into(),
            );
        }
        Ok(())
    }
}

/// A worker's queue under `Policy::Mlfq`.
pub(crate) struct Queue<T> {
    /// One FIFO per level, level 0 first.
    queues: Vec<VecDeque<T>>,
    /// Bit `l` is set iff `queues[l]` is non-empty.
    occupied: u32,
    len: usize,
    /// Each level's slice and allotment, in ns.
    slices: Vec<u64>,
    boost_period: u64,
    /// When the next boost is due; `None` until the first call gives the
    /// time (the queue is built before the clock is read).
    next_boost: Option<u64>,
    /// How many boosts there have been, wrapping.
    epoch: u16,
}

impl<T> Queue<T> {
    /// An empty queue with the (validated) settings `m`.
    pub(crate) fn new(m: Mlfq) -> Queue<T> {
        Queue {
            queues: m.slices.iter().map(|_| VecDeque::new()).collect(),
            occupied: 0,
            len: 0,
            slices: m.slices.iter().map(|&d| nanos(d)).collect(),
            boost_period: nanos(m.boost_period),
            next_boost: None,
            epoch: 0,
        }
    }

    /// Rule 5, if a boost is due: everything queued moves to level 0, and
    /// the new epoch sends the rest there when they are next seen.
    fn boost_if_due(&mut self, now: u64) {
        let due = *self
            .next_boost
            .get_or_insert(now.saturating_add(self.boost_period));
        if now < due {
            return;
        }
        self.epoch = self.epoch.wrapping_add(1);
        // From now, not from `due`: after an idle spell one boost is
        // enough, and the period is measured from the last one.
        self.next_boost = Some(now.saturating_add(self.boost_period));
        if let Some((top, lower)) = self.queues.split_first_mut() {
            for queue in lower {
                top.append(queue);
            }
        }
        self.occupied = u32::from(self.len > 0);
    }

    /// Applies a boost `s` has missed while it was not in the queue.
    fn catch_up(&self, s: &mut SchedData) {
        if s.epoch != self.epoch {
            s.epoch = self.epoch;
            s.level = 0;
            s.used = 0;
        }
    }

    /// `s`'s level, clamped to the bottom one.
    fn level(&self, s: &SchedData) -> usize {
        usize::from(s.level).min(self.queues.len() - 1)
    }
}

impl<T: Send> RunQueue<T> for Queue<T> {
    fn push(&mut self, item: T, s: &mut SchedData, why: Why, now: u64) {
        self.boost_if_due(now);
        if why == Why::New {
            // Rule 3.
            s.epoch = self.epoch;
            s.level = 0;
            s.used = 0;
        } else {
            self.catch_up(s);
        }
        // An interrupted turn (a wake-up arrived) goes to the back of its
        // level like any other: rule 2 is round robin, and a coroutine woken
        // at the same level — after a boost, an interactive one beside a
        // CPU-bound one — runs before the rest of the long turn, not after
        // it. Its allotment use is kept, so it cannot gain by this.
        let level = self.level(s);
        self.queues[level].push_back(item);
        self.occupied |= 1 << level;
        self.len += 1;
    }

    fn pop(&mut self, now: u64) -> Option<T> {
        self.boost_if_due(now);
        if self.occupied == 0 {
            return None;
        }
        // Rule 1: the top non-empty level; rule 2: its front.
        let level = self.occupied.trailing_zeros() as usize;
        let queue = &mut self.queues[level];
        let item = queue.pop_front();
        debug_assert!(item.is_some(), "bit {level} set for an empty level");
        if queue.is_empty() {
            self.occupied &= !(1 << level);
        }
        self.len -= 1;
        item
    }

    fn len(&self) -> usize {
        self.len
    }

    fn slice(&mut self, s: &mut SchedData, now: u64) -> Option<u64> {
        self.boost_if_due(now);
        self.catch_up(s);
        let allotment = self.slices[self.level(s)];
        let left = allotment.saturating_sub(u64::from(s.used));
        Some(left.max(MIN_SLICE_NS.min(allotment)))
    }

    fn charge(&mut self, s: &mut SchedData, ran: u64, _parked: bool, now: u64) {
        // A boost during the turn counts: the turn is charged at the top.
        self.boost_if_due(now);
        self.catch_up(s);
        // Rule 4: run time adds up whether the turn ended by parking,
        // yielding or preemption.
        let level = self.level(s);
        let used = u64::from(s.used).saturating_add(ran);
        if used >= self.slices[level] {
            // One level per allotment; the bottom level keeps its
            // coroutines and just starts a new slice.
            s.level = (level + 1).min(self.queues.len() - 1) as u8;
            s.used = 0;
        } else {
            // Below the allotment, so at most `MAX_SLICE`: it fits.
            s.used = u32::try_from(used).unwrap_or(u32::MAX);
        }
    }

    fn drain(&mut self, out: &mut Vec<T>) {
        for queue in &mut self.queues {
            out.extend(queue.drain(..));
        }
        self.occupied = 0;
        self.len = 0;
    }

    fn take_if(&mut self, pred: &mut dyn FnMut(&T) -> bool, max: usize, out: &mut Vec<T>) {
        let mut left = max;
        for level in 0..self.queues.len() {
            let before = out.len();
            take_from(&mut self.queues[level], pred, &mut left, out);
            self.len -= out.len() - before;
            if self.queues[level].is_empty() {
                self.occupied &= !(1 << level);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{End, MS, Sim, US, sched, stress};
    use super::super::{Priority, RunQueue};
    use super::{Mlfq, Queue};
    use std::time::Duration;

    fn sim() -> Sim<Queue<u32>> {
        Sim::new(Queue::new(Mlfq::default()))
    }

    #[test]
    fn a_cpu_heavy_coroutine_sinks_level_by_level() {
        let mut sim = sim();
        let h = sim.spawn();
        let mut trace = Vec::new();
        for _ in 0..4 {
            let (_, slice) = sim.run_slice();
            trace.push((slice, sim.s[h as usize].level));
        }
        assert_eq!(trace, [(2 * MS, 1), (4 * MS, 2), (8 * MS, 2), (8 * MS, 2)]);
    }

    #[test]
    fn an_interactive_coroutine_stays_on_top_and_goes_first() {
        let mut sim = sim();
        let i = sim.spawn();
        let h = sim.spawn();
        let mut wake_at: Option<u64> = None;
        let mut pops = Vec::new();
        // 90 ms, under one boost period: `i` runs 10 µs and sleeps 1 ms;
        // `h` always wants the CPU, and its turn is cut short when `i`
        // wakes up.
        while sim.now < 90 * MS {
            if wake_at.is_some_and(|t| t <= sim.now) {
                wake_at = None;
                sim.wake(i);
            }
            let both_queued = sim.q.len() == 2;
            let h_below = sim.s[h as usize].level > sim.s[i as usize].level;
            let now = sim.now;
            let (who, _) = sim
                .turn(|who, slice| {
                    let slice = slice.unwrap();
                    match wake_at {
                        _ if who == i => (10 * US, End::Park),
                        Some(t) if t - now < slice => (t - now, End::Interrupt),
                        _ => (slice, End::Preempt),
                    }
                })
                .unwrap();
            pops.push(who);
            if both_queued && h_below {
                assert_eq!(who, i, "at {now} ns");
            }
            if who == i {
                wake_at = Some(sim.now + MS);
            }
        }
        // `h` shares the top until its 2 ms there are used (over two
        // turns, the first cut short by `i`'s wake-up); from then on `i`
        // goes first at every wake-up.
        assert_eq!(pops[..6], [i, h, h, i, h, i]);
        assert_eq!(sim.s[i as usize].level, 0);
        assert_eq!(sim.s[h as usize].level, 2);
        assert!(pops.iter().filter(|&&p| p == i).count() > 80);
    }

    #[test]
    fn giving_up_the_cpu_does_not_keep_a_coroutine_on_top() {
        let mut sim = sim();
        let a = sim.spawn();
        // Rule 4: 500 µs turns, yielding; the allotment adds up.
        for k in 1..=4 {
            assert_eq!(sim.run(500 * US, End::Yield), a);
            assert_eq!(sim.s[a as usize].level, u8::from(k == 4), "turn {k}");
        }
        // Parking keeps what was used at the level too.
        assert_eq!(sim.run(3 * MS, End::Park), a);
        sim.wake(a);
        assert_eq!(sim.s[a as usize].used, 3 * MS as u32);
        let (_, slice) = sim.run_slice();
        assert_eq!((slice, sim.s[a as usize].level), (MS, 2));
    }

    #[test]
    fn the_slice_is_what_is_left_of_the_allotment_at_least_50_us() {
        let mut sim = sim();
        let a = sim.spawn();
        sim.run(1_990 * US, End::Park);
        sim.wake(a);
        assert_eq!(sim.run_slice(), (a, super::MIN_SLICE_NS));
        assert_eq!(sim.s[a as usize].level, 1);
    }

    #[test]
    fn higher_levels_first_round_robin_within_one() {
        let mut sim = sim();
        let [a, b, c] = [sim.spawn(), sim.spawn(), sim.spawn()];
        // `a` and `b` sink to level 1; `c` stays on top.
        assert_eq!(sim.run_slice().0, a);
        assert_eq!(sim.run_slice().0, b);
        let order: Vec<_> = (0..5).map(|_| sim.run(100 * US, End::Yield)).collect();
        assert_eq!(order, [c, c, c, c, c]);
        assert_eq!(sim.run(2 * MS, End::Yield), c);
        assert_eq!(sim.pop_all(), [a, b, c]);
    }

    #[test]
    fn an_interrupted_turn_goes_behind_its_level_and_keeps_its_allotment_use() {
        let mut sim = sim();
        let [a, b] = [sim.spawn(), sim.spawn()];
        assert_eq!(sim.run(MS, End::Interrupt), a);
        assert_eq!(sim.s[a as usize].used, MS as u32);
        assert_eq!(sim.pop_all(), [b, a]);
    }

    #[test]
    fn a_boost_moves_queued_coroutines_to_the_top() {
        let mut sim = sim();
        let [a, b] = [sim.spawn(), sim.spawn()];
        // `a` sinks to the bottom; `b` stays on top, parked.
        assert_eq!(sim.run_slice().0, a);
        assert_eq!(sim.run(100 * US, End::Park), b);
        assert_eq!(sim.run_slice().0, a);
        assert_eq!(sim.s[a as usize].level, 2);
        // Without a boost a new coroutine goes before `a`...
        let c = sim.spawn();
        assert_eq!(sim.pop_all(), [c, a]);
        sim.wake(a);
        sim.wake(c);
        // ...with one, `a` moves to the top behind `c`, which was there
        // already, and ahead of what arrives later; it gets the top slice.
        sim.advance(100 * MS);
        let d = sim.spawn();
        assert_eq!(sim.pop(), Some(c));
        let turn = sim.turn(|_, _| (0, End::Preempt)).unwrap();
        assert_eq!(turn, (a, Some(2 * MS)));
        assert_eq!(sim.s[a as usize].level, 0);
        assert_eq!(sim.pop_all(), [d, a]);
    }

    #[test]
    fn a_boost_reaches_parked_and_running_coroutines_lazily() {
        let mut sim = sim();
        let [a, b] = [sim.spawn(), sim.spawn()];
        assert_eq!(sim.run_slice().0, a);
        assert_eq!(sim.run(5 * MS, End::Park), b);
        assert_eq!([sim.s[a as usize].level, sim.s[b as usize].level], [1, 1]);
        // `a` is running when the boost falls due (at 100 ms): its turn is
        // charged at the top, and moves it down one level from there.
        let now = sim.now;
        let (who, slice) = sim.turn(|_, _| (100 * MS - now + 1, End::Preempt)).unwrap();
        assert_eq!((who, slice), (a, Some(4 * MS)));
        assert_eq!((sim.s[a as usize].level, sim.s[a as usize].used), (1, 0));
        // `b` slept through it: back at the top when it wakes, nothing used.
        sim.wake(b);
        assert_eq!((sim.s[b as usize].level, sim.s[b as usize].used), (0, 0));
        assert_eq!(sim.pop_all(), [b, a]);
    }

    #[test]
    fn validate_names_the_wrong_setting() {
        let ok = Mlfq::default();
        assert_eq!(ok.validate(), Ok(()));
        let bad = |f: fn(&mut Mlfq)| {
            let mut m = Mlfq::default();
            f(&mut m);
            m.validate().unwrap_err()
        };
        assert!(bad(|m| m.levels = 0).contains("levels must be 1-32, not 0"));
        assert!(bad(|m| m.levels = 4).contains("3 slices for 4 levels"));
        assert!(bad(|m| m.slices[1] = Duration::ZERO).contains("slices[1] is zero"));
        assert!(bad(|m| m.slices[2] = Duration::from_secs(5)).contains("slices[2] is 5s"));
        assert!(bad(|m| m.boost_period = Duration::ZERO).contains("boost_period"));
        let one = Mlfq {
            levels: 1,
            slices: vec![Duration::from_millis(1)],
            ..Mlfq::default()
        };
        assert_eq!(one.validate(), Ok(()));
    }

    #[test]
    fn drain_empties_every_level() {
        let mut sim = sim();
        let [a, b] = [sim.spawn(), sim.spawn()];
        sim.run_slice();
        let mut out = Vec::new();
        sim.q.drain(&mut out);
        assert_eq!((out, sim.q.len()), (vec![b, a], 0));
        assert_eq!(sim.q.pop(sim.now), None);
    }

    #[test]
    fn no_starvation_bypass_is_bounded_by_the_boost_period() {
        let d = sched(Priority::default(), 0);
        let m = Mlfq {
            boost_period: Duration::from_millis(20),
            ..Mlfq::default()
        };
        for seed in 1..=4 {
            let r = stress(Queue::new(m.clone()), d, d, seed, 20_000, |_, now| now);
            // An item is bypassed only by what arrives before the next
            // boost, which comes at most one period (plus the turn that
            // is running, at most 8 ms) after it was queued.
            let bound = r.pushes_within(28 * MS);
            assert!(r.max_bypass <= bound, "seed {seed}: {r:?}, bound {bound}");
            assert!(r.push_clock.len() as u64 > 10 * bound, "{r:?}");
            assert!(r.hog_turns > 0);
        }
    }
}
