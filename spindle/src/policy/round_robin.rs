//! Round robin: one FIFO queue and a time slice.
//!
//! The textbook rule: ready coroutines wait in arrival order; the one at
//! the front runs for at most one slice, and if it is still runnable then
//! it goes to the back. spindle cannot interrupt a coroutine (see the
//! [module docs](super#preemption)), so "at most one slice" means: the
//! first runtime call after the slice is spent makes it yield.
//!
//! State: the queue, and per coroutine `SchedData::used`, the run time of
//! its current slice. A turn cut short by a wake-up (`Why::Interrupted`)
//! keeps both its place at the front and the rest of its slice, as POSIX
//! asks of a preempted `SCHED_RR` thread; every other push starts a fresh
//! slice at the back. Nothing else about a coroutine matters, so no
//! coroutine waits for more than one slice of each one queued ahead of it.

use std::collections::VecDeque;
use std::time::Duration;

use super::{MIN_SLICE_NS, RunQueue, SchedData, Why, nanos, take_from};

/// A worker's queue under `Policy::RoundRobin`.
pub(crate) struct Queue<T> {
    queue: VecDeque<T>,
    /// The slice, in ns.
    slice: u64,
}

impl<T> Queue<T> {
    /// An empty queue handing out `slice` (validated as non-zero).
    pub(crate) fn new(slice: Duration) -> Queue<T> {
        Queue {
            queue: VecDeque::new(),
            slice: nanos(slice),
        }
    }
}

impl<T: Send> RunQueue<T> for Queue<T> {
    fn push(&mut self, item: T, s: &mut SchedData, why: Why, _now: u64) {
        if why == Why::Interrupted {
            self.queue.push_front(item);
        } else {
            s.used = 0;
            self.queue.push_back(item);
        }
    }

    fn pop(&mut self, _now: u64) -> Option<T> {
        self.queue.pop_front()
    }

    fn len(&self) -> usize {
        self.queue.len()
    }

    fn slice(&mut self, s: &mut SchedData, _now: u64) -> Option<u64> {
        let left = self.slice.saturating_sub(u64::from(s.used));
        Some(left.max(MIN_SLICE_NS.min(self.slice)))
    }

    fn charge(&mut self, s: &mut SchedData, ran: u64, _parked: bool, _now: u64) {
        s.used = s
            .used
            .saturating_add(u32::try_from(ran).unwrap_or(u32::MAX));
    }

    fn drain(&mut self, out: &mut Vec<T>) {
        out.extend(self.queue.drain(..));
    }

    fn take_if(&mut self, pred: &mut dyn FnMut(&T) -> bool, max: usize, out: &mut Vec<T>) {
        take_from(&mut self.queue, pred, &mut { max }, out);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{End, MS, Sim, sched, stress};
    use super::super::{Priority, RunQueue};
    use super::Queue;
    use std::time::Duration;

    fn sim() -> Sim<Queue<u32>> {
        Sim::new(Queue::new(Duration::from_millis(2)))
    }

    #[test]
    fn rotates_in_arrival_order_with_the_slice() {
        let mut sim = sim();
        sim.spawn_n(3);
        let turns: Vec<_> = (0..6).map(|_| sim.run_slice()).collect();
        assert_eq!(
            turns,
            [
                (0, 2 * MS),
                (1, 2 * MS),
                (2, 2 * MS),
                (0, 2 * MS),
                (1, 2 * MS),
                (2, 2 * MS)
            ]
        );
    }

    #[test]
    fn yielded_and_woken_go_to_the_back() {
        let mut sim = sim();
        sim.spawn_n(3);
        assert_eq!(sim.run(10_000, End::Yield), 0);
        assert_eq!(sim.run(10_000, End::Park), 1);
        sim.wake(1);
        assert_eq!(sim.pop_all(), [2, 0, 1]);
    }

    #[test]
    fn interrupted_keeps_its_place_and_the_rest_of_its_slice() {
        let mut sim = sim();
        sim.spawn_n(3);
        assert_eq!(sim.run(MS / 2, End::Interrupt), 0);
        let (i, slice) = sim.run_slice();
        assert_eq!((i, slice), (0, 3 * MS / 2));
        // Preempted, it starts a fresh slice at the back.
        assert_eq!(sim.pop_all(), [1, 2, 0]);
        assert_eq!(sim.q.slice(&mut sim.s[0], sim.now), Some(2 * MS));
    }

    #[test]
    fn a_spent_slice_still_gets_the_minimum() {
        let mut sim = sim();
        sim.spawn();
        sim.run(2 * MS - 1_000, End::Interrupt);
        assert_eq!(sim.run_slice(), (0, super::MIN_SLICE_NS));
    }

    #[test]
    fn drain_empties_it() {
        let mut q = Queue::new(Duration::from_millis(1));
        let mut s = sched(Priority::default(), 0);
        for i in 0..4u32 {
            q.push(i, &mut s, super::Why::New, 0);
        }
        let mut out = Vec::new();
        q.drain(&mut out);
        assert_eq!((out, q.len()), (vec![0, 1, 2, 3], 0));
    }

    #[test]
    fn no_starvation_nobody_is_bypassed() {
        let d = sched(Priority::default(), 0);
        for seed in 1..=4 {
            let r = stress(
                Queue::new(Duration::from_millis(2)),
                d,
                d,
                seed,
                20_000,
                |_, now| now,
            );
            // FIFO: nothing that became ready later ever runs first.
            assert_eq!(r.max_bypass, 0, "seed {seed}: {r:?}");
            assert!(r.hog_turns > 0);
        }
    }
}
