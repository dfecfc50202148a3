//! Shortest predicted burst first (SRTF), with aging.
//!
//! State: a min-heap of entries ordered by (deadline, push number), each
//! with the time its coroutine became ready and the slice it has left; and
//! the running coroutine's ready time and slice left, from its `pop` to
//! its push or park. Per coroutine, `SchedData::key` is its predicted
//! burst τ in ns and `SchedData::used` its current burst so far.
//!
//! A *burst* is the run time from a wake-up (or the start) to the next
//! park, summed over every turn in between: yielding and preemption do not
//! end it. At each park, τ ← α·burst + (1 − α)·τ; a new coroutine starts
//! with τ = `initial`.
//!
//! The order is on each entry's deadline, ready time + `aging` ×
//! remaining, where remaining is the predicted rest of the burst
//! (τ − used), at most one slice. A burst that has already run longer than
//! predicted (and was made to yield, or yielded) is CPU-bound for now: its
//! remaining is one whole slice, the most there is. So among coroutines
//! ready at the same time, the shortest remaining burst runs first; one
//! that became ready d earlier goes before those whose remaining is less
//! than d / `aging` shorter; and nothing that becomes ready after a
//! coroutine's deadline goes before it (see [`ShortestFirst`]).

use std::time::Duration;

use super::min_heap::MinHeap;
use super::{MIN_SLICE_NS, RunQueue, SchedData, Why, nanos};

/// Settings of [`Policy::ShortestFirst`](super::Policy::ShortestFirst):
/// the coroutine with the shortest predicted CPU burst runs first.
///
/// # The rule
///
/// Shortest-job-first, and its preemptive form shortest-remaining-time-
/// first (SRTF), are optimal for average waiting time but need each job's
/// length; a scheduler predicts the next CPU burst from the past ones with
/// an exponential average (Silberschatz et al., "Operating System
/// Concepts", CPU scheduling):
///
/// τ' = α·t + (1 − α)·τ
///
/// where t is the burst just ended and τ the previous prediction. α is
/// `alpha_permille / 1000`: 1 follows only the last burst, 0 never learns,
/// ½ (the default) weighs the last burst as much as all history. A burst
/// is the run time between a wake-up and the next park, over as many
/// turns as it takes; a new coroutine is predicted `initial`.
///
/// The ready coroutine with the least *remaining* predicted burst
/// (τ minus what it has run of this burst) runs first, for at most
/// `slice`. A burst already longer than predicted counts as a whole slice
/// remaining: the coroutine is CPU-bound for now, and would otherwise look
/// like the shortest of all.
///
/// Pure SRTF starves long jobs while short ones keep arriving. Here each
/// coroutine, when it becomes ready at time t with remaining r, gets the
/// deadline t + `aging`·min(r, `slice`), and the least deadline runs first.
/// Among coroutines ready together that is SRTF; and since a coroutine
/// that becomes ready later gets a deadline no earlier than that moment,
/// **no coroutine is passed by one that became ready after its deadline**:
/// it waits at most `aging × slice` (80 ms with the defaults) plus one
/// turn of each coroutine queued ahead of it by then.
///
/// # Under work stealing
///
/// Each worker orders its own coroutines. The prediction lives in the
/// coroutine's header and goes where it goes: a coroutine stolen before it
/// started has only `initial`; a migratable one moved while parked keeps
/// its history.
///
/// # Measured
///
/// `sched_latency` (BENCHMARKS.md), 100 interactive coroutines beside
/// checkpointing hogs: p99 wake-up 99–159 µs with 2 workers, but 7.0–7.7
/// ms with 1: there the aging bound lets each CPU-bound coroutine, once
/// it has waited `aging × slice`, run a whole slice ahead of later
/// wake-ups (the price of not starving it).
///
/// # Example
///
/// ```
/// use spindle::policy::{Policy, ShortestFirst};
///
/// let sf = ShortestFirst {
///     alpha_permille: 250, // learn more slowly
///     ..ShortestFirst::default()
/// };
/// let rt = spindle::Runtime::builder()
///     .workers(1)
///     .policy(Policy::ShortestFirst(sf))
///     .build()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShortestFirst {
    /// α of the exponential average, in thousandths (0–1000).
    pub alpha_permille: u16,
    /// The predicted burst of a coroutine that has not run yet.
    pub initial: Duration,
    /// The longest turn; also the most "remaining" a burst can count.
    pub slice: Duration,
    /// The aging factor F (at least 1): a coroutine ready at t with
    /// remaining r has the deadline t + F·r. Larger is closer to pure SRTF
    /// and lets long bursts wait longer.
    pub aging: u32,
}

impl Default for ShortestFirst {
    /// α = 500‰, `initial` 1 ms, `slice` 10 ms, `aging` 8.
    ///
    /// α = ½ is the textbook's choice. A new coroutine is presumed fairly
    /// short: ahead of CPU-bound ones (a whole slice remaining) and behind
    /// those proven interactive (tens of µs). The slice is
    /// `Policy::RoundRobin`'s. With aging 8, a burst predicted 1 ms longer
    /// than another goes second unless it became ready 8 ms earlier, and
    /// no coroutine is passed by arrivals for more than 80 ms.
    fn default() -> ShortestFirst {
        ShortestFirst {
            alpha_permille: 500,
            initial: Duration::from_millis(1),
            slice: Duration::from_millis(10),
            aging: 8,
        }
    }
}

impl ShortestFirst {
    /// Checks the settings; the error names the one that is wrong.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.alpha_permille > 1000 {
            return Err(format!(
                "ShortestFirst::alpha_permille is in thousandths, 0-1000, not {}",
                self.alpha_permille
            ));
        }
        if self.slice.is_zero() {
            return Err("ShortestFirst::slice must be above zero (10 ms is the default)".into());
        }
        if self.aging == 0 {
            return Err(
                "ShortestFirst::aging must be at least 1 (8 is the default); \
                 0 would ignore the predictions and run first come, first served"
                    .into(),
            );
        }
        Ok(())
    }
}

/// A queued coroutine, filed under its deadline.
struct Entry<T> {
    /// When it became ready, kept through an interrupted turn.
    ready_at: u64,
    /// What it has left of its slice: a whole one, or the rest of an
    /// interrupted turn.
    slice_left: u64,
    item: T,
}

/// The running coroutine's entry fields, from its `pop` to its push (an
/// interrupted turn keeps them) or park.
#[derive(Clone, Copy)]
struct Running {
    ready_at: u64,
    slice_left: u64,
}

/// A worker's queue under `Policy::ShortestFirst`.
pub(crate) struct Queue<T> {
    heap: MinHeap<Entry<T>>,
    running: Option<Running>,
    /// α in thousandths.
    alpha: u64,
    /// `initial`, `slice`, in ns.
    initial: u64,
    slice: u64,
    aging: u64,
}

impl<T> Queue<T> {
    /// An empty queue with the (validated) settings `sf`.
    pub(crate) fn new(sf: ShortestFirst) -> Queue<T> {
        Queue {
            heap: MinHeap::new(),
            running: None,
            alpha: u64::from(sf.alpha_permille.min(1000)),
            initial: nanos(sf.initial),
            slice: nanos(sf.slice),
            aging: u64::from(sf.aging),
        }
    }

    /// The predicted rest of `s`'s burst, at most a slice; a whole slice
    /// once the burst has outrun its prediction.
    fn remaining(&self, s: &SchedData) -> u64 {
        let (tau, used) = (s.key, u64::from(s.used));
        if used > 0 && used >= tau {
            self.slice
        } else {
            (tau - used).min(self.slice)
        }
    }
}

impl<T: Send> RunQueue<T> for Queue<T> {
    fn push(&mut self, item: T, s: &mut SchedData, why: Why, now: u64) {
        let (ready_at, slice_left) = match why {
            Why::New => {
                s.key = self.initial;
                s.used = 0;
                (now, self.slice)
            }
            Why::Woken => (now, self.slice),
            Why::Yielded | Why::Preempted => {
                self.running = None;
                (now, self.slice)
            }
            // It keeps its place: its ready time, so its deadline only
            // moves earlier as its remaining burst shrinks, and the rest of
            // its slice, so a run of interruptions cannot add up to more
            // than one slice.
            Why::Interrupted => match self.running.take() {
                Some(r) => (r.ready_at, r.slice_left.max(MIN_SLICE_NS.min(self.slice))),
                None => (now, self.slice),
            },
        };
        let deadline = ready_at.saturating_add(self.aging.saturating_mul(self.remaining(s)));
        self.heap.push(
            deadline,
            Entry {
                ready_at,
                slice_left,
                item,
            },
        );
    }

    fn pop(&mut self, _now: u64) -> Option<T> {
        let (_, entry) = self.heap.pop()?;
        self.running = Some(Running {
            ready_at: entry.ready_at,
            slice_left: entry.slice_left,
        });
        Some(entry.item)
    }

    fn len(&self) -> usize {
        self.heap.len()
    }

    fn slice(&mut self, _s: &mut SchedData, _now: u64) -> Option<u64> {
        Some(self.running.map_or(self.slice, |r| r.slice_left))
    }

    fn charge(&mut self, s: &mut SchedData, ran: u64, parked: bool, _now: u64) {
        let burst = u64::from(s.used).saturating_add(ran);
        if parked {
            // The burst is over: fold it into the prediction.
            let (a, tau) = (u128::from(self.alpha), u128::from(s.key));
            let next = (a * u128::from(burst) + (1000 - a) * tau) / 1000;
            // A weighted mean of two u64s fits a u64.
            s.key = next as u64;
            s.used = 0;
            self.running = None;
        } else {
            s.used = u32::try_from(burst).unwrap_or(u32::MAX);
            if let Some(r) = &mut self.running {
                r.slice_left = r.slice_left.saturating_sub(ran);
            }
        }
    }

    fn drain(&mut self, out: &mut Vec<T>) {
        out.extend(self.heap.drain().map(|e| e.item));
        self.running = None;
    }

    fn take_if(&mut self, pred: &mut dyn FnMut(&T) -> bool, max: usize, out: &mut Vec<T>) {
        out.extend(
            self.heap
                .take_if(|e| pred(&e.item), max)
                .into_iter()
                .map(|e| e.item),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{End, MS, Sim, US, sched, stress};
    use super::super::{Priority, RunQueue};
    use super::{Queue, ShortestFirst};
    use std::time::Duration;

    fn sim() -> Sim<Queue<u32>> {
        Sim::new(Queue::new(ShortestFirst::default()))
    }

    #[test]
    fn the_prediction_is_an_exponential_average_of_bursts() {
        let mut sim = sim();
        let a = sim.spawn();
        assert_eq!(sim.s[a as usize].key, MS);
        // τ' = ½·200 µs + ½·1 ms.
        sim.run(200 * US, End::Park);
        assert_eq!(sim.s[a as usize].key, 600 * US);
        // A burst spans turns: 1 ms yielded + 500 µs preempted + 1.5 ms
        // parked is one 3 ms burst: τ' = ½·3 ms + ½·600 µs.
        sim.wake(a);
        sim.run(MS, End::Yield);
        sim.run(500 * US, End::Preempt);
        assert_eq!(sim.s[a as usize].used, 1_500 * US as u32);
        sim.run(1_500 * US, End::Park);
        assert_eq!(
            (sim.s[a as usize].key, sim.s[a as usize].used),
            (1_800 * US, 0)
        );

        let mut sim = Sim::new(Queue::new(ShortestFirst {
            alpha_permille: 250,
            ..ShortestFirst::default()
        }));
        let b = sim.spawn();
        // τ' = ¼·5 ms + ¾·1 ms.
        sim.run(5 * MS, End::Park);
        assert_eq!(sim.s[b as usize].key, 2 * MS);
        sim.wake(b);
        // τ' = ¼·0 + ¾·2 ms.
        sim.run(0, End::Park);
        assert_eq!(sim.s[b as usize].key, 1_500 * US);
    }

    #[test]
    fn the_shortest_predicted_burst_goes_first() {
        let mut sim = sim();
        let [a, b] = [sim.spawn(), sim.spawn()];
        sim.run(100 * US, End::Park); // a: τ = 550 µs
        sim.run(2 * MS, End::Park); // b: τ = 1.5 ms
        assert_eq!(
            [sim.s[a as usize].key, sim.s[b as usize].key],
            [550 * US, 1_500 * US]
        );
        sim.wake(b);
        sim.wake(a);
        let c = sim.spawn(); // τ = 1 ms
        assert_eq!(sim.pop_all(), [a, c, b]);
    }

    #[test]
    fn remaining_time_shrinks_as_a_burst_runs() {
        let mut sim = sim();
        let [a, b] = [sim.spawn(), sim.spawn()];
        // Both predicted 1 ms; `a` has run 900 µs of it and yields: 100 µs
        // left, ahead of `b`'s 1 ms even though `b` has waited longer.
        assert_eq!(sim.run(900 * US, End::Yield), a);
        assert_eq!(sim.pop_all(), [a, b]);
    }

    #[test]
    fn a_burst_past_its_prediction_counts_a_whole_slice() {
        let mut sim = sim();
        let [a, b] = [sim.spawn(), sim.spawn()];
        let (who, slice) = sim.run_slice();
        assert_eq!((who, slice), (a, 10 * MS));
        // `a` outran its 1 ms: deadline now + 8·10 ms, behind `b` (ready at
        // 0 with 1 ms: deadline 8 ms) and a newcomer (now + 8 ms).
        let c = sim.spawn();
        assert_eq!(sim.pop_all(), [b, c, a]);
    }

    #[test]
    fn aging_bounds_how_long_later_short_bursts_go_first() {
        let mut sim = sim();
        let long = sim.spawn();
        sim.run_slice();
        let t0 = sim.now;
        let deadline = t0 + 8 * 10 * MS;
        // A new coroutine (τ = 1 ms, deadline now + 8 ms) arrives before
        // every pop and runs 20 µs. Each passes `long` until one arrives
        // with a deadline no earlier than `long`'s (the tie goes to the
        // older push).
        let mut passed = 0;
        loop {
            let now = sim.now;
            let short = sim.spawn();
            let (who, _) = sim.turn(|_, _| (20 * US, End::Park)).unwrap();
            if who == long {
                assert!(now + 8 * MS >= deadline, "ran early, at {now}");
                assert!(now + 8 * MS < deadline + 20 * US, "ran late, at {now}");
                break;
            }
            assert_eq!(who, short);
            passed += 1;
        }
        assert_eq!(passed, (deadline - 8 * MS - t0) / (20 * US));
    }

    #[test]
    fn interrupted_keeps_its_ready_time_and_slice() {
        let mut sim = sim();
        let [a, b] = [sim.spawn(), sim.spawn()];
        // `a`, ready at 0 like `b`, runs 300 µs of its predicted 1 ms and
        // is interrupted: deadline 0 + 8·700 µs, ahead of `b`'s 8 ms, with
        // 9.7 ms of its slice left.
        assert_eq!(sim.run(300 * US, End::Interrupt), a);
        let (who, slice) = sim.turn(|_, _| (0, End::Interrupt)).unwrap();
        assert_eq!((who, slice), (a, Some(9_700 * US)));
        // Past its prediction, `a` counts a whole slice from its ready
        // time (deadline 80 ms): behind `b`.
        assert_eq!(sim.run(MS, End::Interrupt), a);
        assert_eq!(sim.pop_all(), [b, a]);
    }

    #[test]
    fn interruptions_add_up_to_one_slice() {
        let mut sim = sim();
        let a = sim.spawn();
        // Cut short every 2 ms: the slices left are 10, 8, 6, 4 and 2 ms,
        // and the turn that uses up the last is preempted.
        let mut slices = Vec::new();
        loop {
            let (_, slice) = sim
                .turn(|_, slice| match slice.unwrap() {
                    s if s > 2 * MS => (2 * MS, End::Interrupt),
                    s => (s, End::Preempt),
                })
                .unwrap();
            slices.push(slice.unwrap() / MS);
            if slice == Some(2 * MS) {
                break;
            }
        }
        assert_eq!(slices, [10, 8, 6, 4, 2]);
        assert_eq!(
            sim.turn(|_, _| (0, End::Yield)).unwrap(),
            (a, Some(10 * MS))
        );
    }

    #[test]
    fn validate_names_the_wrong_setting() {
        let d = ShortestFirst::default();
        assert_eq!(d.validate(), Ok(()));
        let bad = |f: fn(&mut ShortestFirst)| {
            let mut s = ShortestFirst::default();
            f(&mut s);
            s.validate().unwrap_err()
        };
        assert!(bad(|s| s.alpha_permille = 1001).contains("0-1000, not 1001"));
        assert!(bad(|s| s.slice = Duration::ZERO).contains("slice"));
        assert!(bad(|s| s.aging = 0).contains("aging"));
    }

    #[test]
    fn drain_empties_it() {
        let mut sim = sim();
        sim.spawn_n(3);
        let mut out = Vec::new();
        sim.q.drain(&mut out);
        out.sort_unstable();
        assert_eq!((out, sim.q.len()), (vec![0, 1, 2], 0));
    }

    #[test]
    fn no_starvation_bypass_is_bounded_by_the_aging_horizon() {
        let d = sched(Priority::default(), 0);
        for seed in 1..=4 {
            let r = stress(
                Queue::new(ShortestFirst::default()),
                d,
                d,
                seed,
                20_000,
                |_, now| now,
            );
            // Nothing that became ready after an item's deadline, at most
            // aging × slice after it was queued, runs before it.
            let bound = r.pushes_within(80 * MS);
            assert!(r.max_bypass < bound, "seed {seed}: {r:?}, bound {bound}");
            assert!(r.push_clock.len() as u64 > 10 * bound, "{r:?}");
            assert!(r.hog_turns > 0);
        }
    }
}
