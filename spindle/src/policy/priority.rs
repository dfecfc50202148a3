//! Priority classes: `Realtime > Normal > Idle`, eight levels in each.
//!
//! The textbook rule (POSIX `SCHED_FIFO`/`SCHED_RR`, and `SCHED_IDLE` for
//! the bottom class): the highest non-empty priority always runs first;
//! within one priority, round robin with a slice of
//! [`DEFAULT_SLICE`](super::DEFAULT_SLICE). A lower priority runs only
//! when every higher one is empty, so `Idle` coroutines may starve — that
//! is the rule, not a bug.
//!
//! State: 24 FIFO queues indexed by `Priority::rank` (0 = idle level 0 …
//! 23 = realtime level 7), and a bitmap with bit `r` set while queue `r`
//! is non-empty, so `pop` finds the best queue with one `leading_zeros`
//! whatever the number of coroutines. Per coroutine, `SchedData::used` is
//! the run time of its current slice: a turn cut short by a wake-up (in
//! practice, by a better-ranked coroutine becoming ready) goes back to the
//! *front* of its level with the rest of its slice, as POSIX specifies for
//! a preempted `SCHED_RR` thread; every other push goes to the back with a
//! fresh slice.
//!
//! The rank is read at each push, so a priority changed while a coroutine
//! runs or sleeps applies from its next push.

use std::collections::VecDeque;

use super::{DEFAULT_SLICE, MIN_SLICE_NS, RunQueue, SchedData, Why, nanos, take_from};

/// How many ranks there are: 3 classes of `Priority::MAX_LEVEL + 1` levels.
const RANKS: usize = 24;

/// A worker's queue under `Policy::Priority`.
pub(crate) struct Queue<T> {
    queues: [VecDeque<T>; RANKS],
    /// Bit `r` is set iff `queues[r]` is non-empty.
    occupied: u32,
    len: usize,
}

impl<T> Queue<T> {
    /// An empty queue.
    pub(crate) fn new() -> Queue<T> {
        Queue {
            queues: std::array::from_fn(|_| VecDeque::new()),
            occupied: 0,
            len: 0,
        }
    }
}

impl<T: Send> RunQueue<T> for Queue<T> {
    fn push(&mut self, item: T, s: &mut SchedData, why: Why, _now: u64) {
        let rank = usize::from(s.rank).min(RANKS - 1);
        if why == Why::Interrupted {
            self.queues[rank].push_front(item);
        } else {
            s.used = 0;
            self.queues[rank].push_back(item);
        }
        self.occupied |= 1 << rank;
        self.len += 1;
    }

    fn pop(&mut self, _now: u64) -> Option<T> {
        if self.occupied == 0 {
            return None;
        }
        let rank = 31 - self.occupied.leading_zeros() as usize;
        let queue = &mut self.queues[rank];
        let item = queue.pop_front();
        debug_assert!(item.is_some(), "bit {rank} set for an empty queue");
        if queue.is_empty() {
            self.occupied &= !(1 << rank);
        }
        self.len -= 1;
        item
    }

    fn len(&self) -> usize {
        self.len
    }

    fn slice(&mut self, s: &mut SchedData, _now: u64) -> Option<u64> {
        let left = nanos(DEFAULT_SLICE).saturating_sub(u64::from(s.used));
        Some(left.max(MIN_SLICE_NS))
    }

    fn charge(&mut self, s: &mut SchedData, ran: u64, _parked: bool, _now: u64) {
        s.used = s
            .used
            .saturating_add(u32::try_from(ran).unwrap_or(u32::MAX));
    }

    fn drain(&mut self, out: &mut Vec<T>) {
        for queue in self.queues.iter_mut().rev() {
            out.extend(queue.drain(..));
        }
        self.occupied = 0;
        self.len = 0;
    }

    fn take_if(&mut self, pred: &mut dyn FnMut(&T) -> bool, max: usize, out: &mut Vec<T>) {
        let mut left = max;
        for rank in (0..RANKS).rev() {
            let before = out.len();
            take_from(&mut self.queues[rank], pred, &mut left, out);
            self.len -= out.len() - before;
            if self.queues[rank].is_empty() {
                self.occupied &= !(1 << rank);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{End, Sim, sched, stress};
    use super::super::{Class, DEFAULT_SLICE, Priority, nanos};
    use super::Queue;

    fn sim() -> Sim<Queue<u32>> {
        Sim::new(Queue::new())
    }

    fn spawn(sim: &mut Sim<Queue<u32>>, p: Priority) -> u32 {
        sim.spawn_with(sched(p, 0))
    }

    #[test]
    fn realtime_first_then_normal_then_idle() {
        let mut sim = sim();
        let idle = spawn(&mut sim, Priority::idle(7));
        let normal = spawn(&mut sim, Priority::normal(0));
        let rt = spawn(&mut sim, Priority::realtime(0));
        assert_eq!(sim.pop_all(), [rt, normal, idle]);
    }

    #[test]
    fn higher_levels_first_fifo_within_a_level() {
        let mut sim = sim();
        let a = spawn(&mut sim, Priority::normal(2));
        let b = spawn(&mut sim, Priority::normal(5));
        let c = spawn(&mut sim, Priority::normal(2));
        let d = spawn(&mut sim, Priority::normal(5));
        let e = spawn(&mut sim, Priority::realtime(1));
        let f = spawn(&mut sim, Priority::realtime(0));
        assert_eq!(sim.pop_all(), [e, f, b, d, a, c]);
    }

    #[test]
    fn round_robin_within_a_level_with_the_default_slice() {
        let mut sim = sim();
        let a = spawn(&mut sim, Priority::normal(3));
        let b = spawn(&mut sim, Priority::normal(3));
        let low = spawn(&mut sim, Priority::normal(2));
        let slice = nanos(DEFAULT_SLICE);
        let turns: Vec<_> = (0..4).map(|_| sim.run_slice()).collect();
        assert_eq!(turns, [(a, slice), (b, slice), (a, slice), (b, slice)]);
        assert_eq!(sim.pop_all(), [a, b, low]);
    }

    #[test]
    fn idle_never_runs_while_normal_is_ready() {
        let mut sim = sim();
        let idle = spawn(&mut sim, Priority::idle(7));
        let n1 = spawn(&mut sim, Priority::normal(0));
        let n2 = spawn(&mut sim, Priority::normal(0));
        for k in 0..1000 {
            // The normal ones yield, park and are woken, are preempted:
            // every way back into the queue.
            let (i, _) = sim
                .turn(|_, slice| match k % 3 {
                    0 => (10_000, End::Yield),
                    1 => (slice.unwrap(), End::Preempt),
                    _ => (20_000, End::Park),
                })
                .unwrap();
            assert_ne!(i, idle, "turn {k}");
            if k % 3 == 2 {
                sim.wake(i);
            }
        }
        assert!(sim.cpu[n1 as usize] > 0 && sim.cpu[n2 as usize] > 0);
        assert_eq!(sim.pop_all(), [n1, n2, idle]);
    }

    #[test]
    fn a_wake_up_of_a_better_rank_runs_next() {
        let mut sim = sim();
        let n = spawn(&mut sim, Priority::normal(0));
        let rt = spawn(&mut sim, Priority::realtime(0));
        assert_eq!(sim.run(10_000, End::Park), rt);
        sim.wake(rt);
        // `n` was not running when `rt` woke: `rt` still goes first.
        assert_eq!(sim.pop_all(), [rt, n]);
    }

    #[test]
    fn interrupted_keeps_its_place_and_the_rest_of_its_slice() {
        let mut sim = sim();
        let a = spawn(&mut sim, Priority::normal(4));
        let b = spawn(&mut sim, Priority::normal(4));
        let slice = nanos(DEFAULT_SLICE);
        assert_eq!(sim.run(slice / 4, End::Interrupt), a);
        let (i, left) = sim.run_slice();
        assert_eq!((i, left), (a, slice - slice / 4));
        assert_eq!(sim.pop_all(), [b, a]);
    }

    #[test]
    fn class_and_level_map_to_distinct_ranks() {
        let mut ranks: Vec<_> = [Class::Idle, Class::Normal, Class::Realtime]
            .into_iter()
            .flat_map(|c| (0..=Priority::MAX_LEVEL).map(move |l| Priority::new(c, l).rank()))
            .collect();
        assert_eq!(ranks, (0..super::RANKS).collect::<Vec<_>>());
        ranks.dedup();
        assert_eq!(ranks.len(), super::RANKS);
    }

    #[test]
    fn drain_empties_every_level_best_first() {
        let mut sim = sim();
        let i = spawn(&mut sim, Priority::idle(0));
        let n = spawn(&mut sim, Priority::normal(0));
        let r = spawn(&mut sim, Priority::realtime(7));
        let mut out = Vec::new();
        super::super::RunQueue::drain(&mut sim.q, &mut out);
        assert_eq!(out, [r, n, i]);
        assert_eq!(super::super::RunQueue::len(&sim.q), 0);
        assert_eq!(super::super::RunQueue::pop(&mut sim.q, 0), None);
    }

    #[test]
    fn idle_starves_under_overload_that_is_the_rule() {
        // The other policies' no-starvation workload, with the CPU-bound
        // items in the idle class: once the first arrival is queued they
        // never run again, and everything that arrives bypasses them.
        let r = stress(
            Queue::new(),
            sched(Priority::idle(0), 0),
            sched(Priority::normal(0), 0),
            1,
            20_000,
            |_, now| now,
        );
        assert!(r.hog_turns <= 3, "{r:?}");
        assert!(r.max_bypass >= 19_000, "{r:?}");
    }
}
