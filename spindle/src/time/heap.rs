//! A 4-ary min-heap of timers, keyed by deadline.
//!
//! Each worker owns one `TimerHeap` for the coroutines sleeping on it. The
//! heap is touched only by its worker thread, so it has no locks and no
//! atomics: timers are armed by the coroutine running on that worker, and
//! cancelled lazily (a stale entry is ignored when it fires).
//!
//! # Ordering
//!
//! Entries are ordered by `(deadline, seq)`, where `seq` is a per-heap
//! counter assigned by [`TimerHeap::push`]. Two timers with the same
//! deadline therefore fire in the order they were armed, which keeps
//! `sleep`-based tests and round-robin patterns deterministic. The counter is
//! a `u64`: at one push per nanosecond it would take 584 years to wrap, so it
//! is never reset.
//!
//! # Cancellation is lazy
//!
//! There is no `remove`. A cancelled or re-armed timer stays in the heap
//! until its deadline passes and [`TimerHeap::pop_expired`] hands it back;
//! the runtime keeps a generation number in the value `T` and drops entries
//! whose generation is stale. This keeps the heap free of back-pointers
//! (no index stored in the coroutine, no fix-up on every move), and makes
//! cancelling O(1): the canceller does nothing at all.
//!
//! # Compaction: stale entries do not pile up
//!
//! Left alone, a stale entry occupies its slot (and keeps its value, a
//! reference to the coroutine's task block) until its deadline. With long
//! timeouts that are nearly always cancelled early, the common shape of a
//! `recv_timeout(60 s)` loop on a busy channel, the heap would grow with
//! the number of *cancellations* per timeout, not with the number of
//! pending timers: a million cancelled 60 s timeouts per second is sixty
//! million entries. So the heap can drop its stale entries in bulk
//! ([`TimerHeap::compact`], given a predicate that recognises them):
//!
//! 1. **When.** After a push, once the heap has grown by half since it
//!    was last looked at ([`TimerHeap::compaction_due`], one comparison);
//!    and on an idle worker, at most once a second
//!    ([`TimerHeap::compaction_due_idle`]), for stale entries that pushes
//!    no longer reveal (a million sleepers woken early, then nothing). Never
//!    below `COMPACT_MIN` entries.
//! 2. **Whether.** It samples `SAMPLES` (16) entries at pseudo-random
//!    positions (different ones each time) and compacts only if a quarter
//!    or more are stale. A heap of live timers, even a growing one, is
//!    never scanned: a check costs 16 predicate calls.
//! 3. **How.** One pass moves the stale values out (into a vector the
//!    caller drops after releasing its borrow of the heap: dropping a value
//!    may free a task) and Floyd's bottom-up heapify restores the order,
//!    O(n) together.
//!
//! So memory stays proportional to the number of pending timers: after
//! a check the heap holds at most 1.5 times what it held then, and a check
//! that finds a quarter stale brings it down to the live ones. The time is
//! amortised O(1) per push: a scan of n entries follows at least n/3
//! pushes since the last check. (Redis expires keys by the same kind of
//! sampling: look at a few, sweep only when many of them are dead.)
//!
//! The owner makes the two checks: the worker, in `fire_timers` (after a
//! push shows up there) and before it sleeps. Until `scheduler/worker.rs`
//! calls them, stale entries still leave only at their deadlines.
//!
//! # Why 4-ary
//!
//! The children of node `i` are `4i + 1 ..= 4i + 4` and its parent is
//! `(i - 1) / 4`. Compared with a binary heap:
//!
//! * the tree is half as deep (`log4 n` levels), so `push`, the common
//!   operation, does half the comparisons and moves while sifting up;
//! * `pop` compares four children per level instead of two over half as many
//!   levels, the same number of comparisons, but with half the moves, and
//!   the four children are adjacent in memory: for a word-sized `T` an entry
//!   is 32 bytes and a group of children is 128 bytes, one pair of cache
//!   lines (or three when the group straddles a line), where a binary heap
//!   touches a new line at every level.
//!
//! Go's runtime uses a 4-ary heap for its per-P timers for the same reasons
//! (`src/runtime/time.go`, `siftupTimer` and `siftdownTimer`).
//!
//! # Why not a timing wheel
//!
//! A hierarchical timing wheel (tokio's, the Linux kernel's) arms and
//! cancels in O(1), but rounds every deadline to its slot (tokio's finest
//! slot is 1 ms), knows the earliest deadline only to a slot, and
//! re-files entries as they move to finer levels. The worker needs the
//! exact earliest deadline as its sleep's timeout, cancellation is already
//! O(1) here (lazy), and at a million pending timers a push or pop walks
//! ten levels: O(log n) is cheap enough that the wheel's rounding buys
//! nothing.
//!
//! # Complexity
//!
//! | operation | cost |
//! | --- | --- |
//! | [`push`](TimerHeap::push) | O(log4 n) comparisons and moves, amortised O(1) allocation |
//! | [`peek_deadline`](TimerHeap::peek_deadline) | O(1) |
//! | [`pop_expired`](TimerHeap::pop_expired) | O(1) when nothing has expired, else O(log4 n) moves and at most 4 comparisons per level |
//! | [`len`](TimerHeap::len), [`is_empty`](TimerHeap::is_empty) | O(1) |
//! | [`compaction_due`](TimerHeap::compaction_due), [`compaction_due_idle`](TimerHeap::compaction_due_idle) | O(1) |
//! | [`compact`](TimerHeap::compact) | 16 predicate calls; when a quarter of those are stale, O(n) (amortised O(1) per push) |
//!
//! The backing `Vec` shrinks only in [`compact`](TimerHeap::compact), and
//! only when it holds less than a quarter of its capacity: a worker's heap
//! otherwise settles at the size of its busiest moment, and shrinking
//! would only trade memory for reallocations on the next burst.

use std::cmp::Ordering;
use std::time::{Duration, Instant};

/// Number of children per node.
const ARITY: usize = 4;
/// Heaps smaller than this are never compacted: their stale entries cost
/// at most this many slots (32 bytes each for a word-sized value).
const COMPACT_MIN: usize = 4096;
/// Entries sampled to estimate the share of stale ones.
const SAMPLES: usize = 16;
/// Compact when at least this many samples are stale: a quarter.
const STALE_SAMPLES: usize = SAMPLES / 4;
/// An idle worker samples a heap again after this long at the earliest.
const IDLE_RECHECK: Duration = Duration::from_secs(1);

/// A 4-ary min-heap of `(deadline, value)` pairs, earliest deadline first,
/// ties in insertion order.
///
/// Single-threaded by design: one per worker, no interior synchronisation.
/// See the [module documentation](self) for the ordering, lazy cancellation
/// and cost of each operation.
pub(crate) struct TimerHeap<T> {
    /// The heap, in the usual implicit layout: the root at index 0 and the
    /// children of `i` at `ARITY * i + 1 ..= ARITY * i + ARITY`.
    entries: Vec<Entry<T>>,
    /// The sequence number the next [`push`](Self::push) will use.
    next_seq: u64,
    /// The length at which [`compaction_due`](Self::compaction_due)
    /// becomes true: half again the length after the last check.
    check_at: usize,
    /// When [`compact`](Self::compact) last sampled the heap.
    checked: Option<Instant>,
    /// How many times [`compact`](Self::compact) sampled the heap: moves
    /// the sample's positions even when no push happened in between.
    samples_taken: u64,
}

/// One armed timer.
struct Entry<T> {
    /// When the timer fires.
    deadline: Instant,
    /// Insertion order, the tie-breaker between equal deadlines; unique
    /// within a heap, so no two entries have the same key.
    seq: u64,
    /// What the runtime stored: typically the coroutine and the generation
    /// that was current when the timer was armed.
    value: T,
}

impl<T> Entry<T> {
    /// The heap order: whether `self` fires before `other`, earliest deadline
    /// first, then first pushed first. Strict, and total because `seq` is
    /// unique.
    fn fires_before(&self, other: &Self) -> bool {
        match self.deadline.cmp(&other.deadline) {
            Ordering::Less => true,
            Ordering::Greater => false,
            Ordering::Equal => self.seq < other.seq,
        }
    }
}

impl<T> TimerHeap<T> {
    /// An empty heap; does not allocate until the first push.
    pub(crate) fn new() -> Self {
        Self {
            entries: Vec::new(),
            next_seq: 0,
            check_at: COMPACT_MIN,
            checked: None,
            samples_taken: 0,
        }
    }

    /// Arms a timer: `value` will be returned by [`pop_expired`] once `now`
    /// reaches `deadline`, after every entry with an earlier deadline and
    /// every entry with the same deadline pushed before it.
    ///
    /// A deadline in the past is fine: it is expired on the next
    /// [`pop_expired`].
    ///
    /// [`pop_expired`]: Self::pop_expired
    pub(crate) fn push(&mut self, deadline: Instant, value: T) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.entries.push(Entry {
            deadline,
            seq,
            value,
        });
        self.sift_up(self.entries.len() - 1);
    }

    /// The earliest deadline in the heap, stale entries included; `None`
    /// when the heap is empty.
    ///
    /// The worker uses it to bound how long it may park.
    pub(crate) fn peek_deadline(&self) -> Option<Instant> {
        self.entries.first().map(|entry| entry.deadline)
    }

    /// Removes and returns the earliest entry if its deadline is at or
    /// before `now`; `None` when the heap is empty or the earliest deadline
    /// is still in the future.
    ///
    /// Call it in a loop to drain every expired timer; entries come out in
    /// `(deadline, insertion)` order.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<(Instant, T)> {
        if self.entries.first()?.deadline > now {
            return None;
        }
        // Move the last leaf to the root and let it sink: the classic
        // `swap_remove` pop.
        let entry = self.entries.swap_remove(0);
        if !self.entries.is_empty() {
            self.sift_down(0);
        }
        Some((entry.deadline, entry.value))
    }

    /// The number of entries, stale ones included.
    #[cfg_attr(
        not(test),
        allow(dead_code, reason = "used by tests and introspection later")
    )]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the heap holds no entries at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether [`compact`](Self::compact) should look at the heap after a
    /// push: it grew by half since the last look (and holds at least
    /// `COMPACT_MIN` entries).
    #[cfg_attr(
        not(test),
        allow(dead_code, reason = "until scheduler/worker.rs calls it")
    )]
    pub(crate) fn compaction_due(&self) -> bool {
        self.entries.len() >= self.check_at
    }

    /// Whether an idle worker should have [`compact`](Self::compact) look
    /// at the heap: it holds at least `COMPACT_MIN` entries and was not
    /// looked at in the last second. Catches stale entries that no push
    /// reveals (timers cancelled after the heap stopped growing).
    #[cfg_attr(
        not(test),
        allow(dead_code, reason = "until scheduler/worker.rs calls it")
    )]
    pub(crate) fn compaction_due_idle(&self, now: Instant) -> bool {
        self.entries.len() >= COMPACT_MIN
            && self
                .checked
                .is_none_or(|at| now.saturating_duration_since(at) >= IDLE_RECHECK)
    }

    /// Looks at `SAMPLES` entries at pseudo-random positions and, if a quarter
    /// or more of them are stale, removes every entry whose value
    /// `is_stale` says is, moving those values into `removed`, and restores
    /// the heap order. Returns how many were removed (0 when the sample
    /// says the heap is mostly live).
    ///
    /// The values are handed out rather than dropped so the caller can
    /// drop them after releasing its borrow of the heap: dropping the
    /// runtime's timer value may free a task, and that must not re-enter
    /// the heap. `is_stale` must not panic (the heap would be left out of
    /// order); it is called at most once per entry plus `SAMPLES` times.
    ///
    /// The relative order of the entries that stay is unchanged: `seq`
    /// still breaks ties between equal deadlines.
    #[cfg_attr(
        not(test),
        allow(dead_code, reason = "until scheduler/worker.rs calls it")
    )]
    pub(crate) fn compact(
        &mut self,
        now: Instant,
        mut is_stale: impl FnMut(&T) -> bool,
        removed: &mut Vec<T>,
    ) -> usize {
        self.checked = Some(now);
        self.samples_taken += 1;
        let len = self.entries.len();
        let stale_samples = if len < SAMPLES {
            // Tiny heaps (only reachable by calling this directly): look
            // at everything.
            self.entries.iter().filter(|e| is_stale(&e.value)).count() * SAMPLES / len.max(1)
        } else {
            // Pseudo-random positions (a splitmix64 stream seeded by the
            // push and check counters), so no pattern in the layout (leaves
            // sit roughly in push order) lines up with the sample, and
            // repeated checks of an unchanged heap look at other entries.
            let mut seed = self
                .next_seq
                .wrapping_add(self.samples_taken.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            (0..SAMPLES)
                .filter(|_| {
                    seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
                    let mut z = seed;
                    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                    z ^= z >> 31;
                    is_stale(&self.entries[(z % len as u64) as usize].value)
                })
                .count()
        };
        let mut count = 0;
        if stale_samples >= STALE_SAMPLES {
            let mut i = 0;
            while i < self.entries.len() {
                if is_stale(&self.entries[i].value) {
                    // The last entry moves into slot `i`: look at it next.
                    removed.push(self.entries.swap_remove(i).value);
                    count += 1;
                } else {
                    i += 1;
                }
            }
            self.heapify();
            if self.entries.len() < self.entries.capacity() / 4 {
                self.entries.shrink_to(self.entries.len() * 2);
            }
        }
        self.check_at = COMPACT_MIN.max(self.entries.len() + self.entries.len() / 2);
        count
    }

    /// Restores the heap order of the whole array: Floyd's bottom-up
    /// construction, sifting down every parent from the last one to the
    /// root, O(n) in all.
    fn heapify(&mut self) {
        let len = self.entries.len();
        if len < 2 {
            return;
        }
        for index in (0..=(len - 2) / ARITY).rev() {
            self.sift_down(index);
        }
    }

    /// Restores the heap order after the entry at `index` may have become
    /// smaller than its parent (after a push).
    fn sift_up(&mut self, mut index: usize) {
        while index > 0 {
            let parent = (index - 1) / ARITY;
            if !self.entries[index].fires_before(&self.entries[parent]) {
                break;
            }
            self.entries.swap(parent, index);
            index = parent;
        }
    }

    /// Restores the heap order after the entry at `index` may have become
    /// larger than one of its children (after a pop).
    fn sift_down(&mut self, mut index: usize) {
        let len = self.entries.len();
        loop {
            let first_child = ARITY * index + 1;
            if first_child >= len {
                break;
            }
            let end = (first_child + ARITY).min(len);
            let mut smallest = first_child;
            for child in first_child + 1..end {
                if self.entries[child].fires_before(&self.entries[smallest]) {
                    smallest = child;
                }
            }
            if !self.entries[smallest].fires_before(&self.entries[index]) {
                break;
            }
            self.entries.swap(index, smallest);
            index = smallest;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TimerHeap;
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant};

    /// Marsaglia's xorshift64: enough randomness for shuffling deadlines,
    /// deterministic for a given seed, and no dependency.
    struct XorShift(u64);

    impl XorShift {
        fn new(seed: u64) -> Self {
            assert_ne!(seed, 0, "xorshift gets stuck at zero");
            Self(seed)
        }

        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        /// A value in `0..bound`; the modulo bias is irrelevant here.
        fn below(&mut self, bound: u64) -> u64 {
            self.next() % bound
        }
    }

    fn at(base: Instant, nanos: u64) -> Instant {
        base + Duration::from_nanos(nanos)
    }

    /// Checks the heap property on every parent/child pair.
    fn assert_heap_order<T>(heap: &TimerHeap<T>) {
        for (index, entry) in heap.entries.iter().enumerate().skip(1) {
            let parent = &heap.entries[(index - 1) / super::ARITY];
            assert!(parent.fires_before(entry), "heap order broken at {index}");
        }
    }

    #[test]
    fn empty_heap() {
        let mut heap = TimerHeap::<u32>::new();
        assert!(heap.is_empty());
        assert_eq!(heap.len(), 0);
        assert_eq!(heap.peek_deadline(), None);
        assert_eq!(heap.pop_expired(Instant::now()), None);
    }

    #[test]
    fn pops_in_deadline_order() {
        let base = Instant::now();
        let mut heap = TimerHeap::new();
        for (nanos, value) in [(50, 'e'), (10, 'a'), (40, 'd'), (20, 'b'), (30, 'c')] {
            heap.push(at(base, nanos), value);
            assert_heap_order(&heap);
        }
        assert_eq!(heap.len(), 5);
        assert_eq!(heap.peek_deadline(), Some(at(base, 10)));

        let far = at(base, 1_000);
        let mut popped = Vec::new();
        while let Some((deadline, value)) = heap.pop_expired(far) {
            assert_heap_order(&heap);
            popped.push((deadline, value));
        }
        assert_eq!(
            popped,
            [
                (at(base, 10), 'a'),
                (at(base, 20), 'b'),
                (at(base, 30), 'c'),
                (at(base, 40), 'd'),
                (at(base, 50), 'e'),
            ]
        );
        assert!(heap.is_empty());
    }

    #[test]
    fn pop_expired_only_returns_due_entries() {
        let base = Instant::now();
        let mut heap = TimerHeap::new();
        heap.push(at(base, 100), "later");
        heap.push(at(base, 10), "soon");

        assert_eq!(heap.pop_expired(at(base, 9)), None);
        assert_eq!(heap.len(), 2, "a miss must not remove anything");
        // The deadline itself counts as expired.
        assert_eq!(heap.pop_expired(at(base, 10)), Some((at(base, 10), "soon")));
        assert_eq!(heap.pop_expired(at(base, 99)), None);
        assert_eq!(heap.peek_deadline(), Some(at(base, 100)));
        assert_eq!(
            heap.pop_expired(at(base, 500)),
            Some((at(base, 100), "later"))
        );
        assert_eq!(heap.pop_expired(at(base, 500)), None);
    }

    #[test]
    fn past_deadlines_expire_immediately() {
        let now = Instant::now();
        let mut heap = TimerHeap::new();
        heap.push(now, 1);
        heap.push(now - Duration::from_secs(1), 0);
        assert_eq!(
            heap.pop_expired(now),
            Some((now - Duration::from_secs(1), 0))
        );
        assert_eq!(heap.pop_expired(now), Some((now, 1)));
    }

    #[test]
    fn ties_pop_in_insertion_order() {
        let base = Instant::now();
        let mut heap = TimerHeap::new();
        // Two deadlines, interleaved, 500 entries each: each deadline's
        // entries must come out in push order.
        for i in 0..1_000u32 {
            let deadline = if i % 2 == 0 { at(base, 7) } else { at(base, 3) };
            heap.push(deadline, i);
        }
        let far = at(base, 10);
        let odd: Vec<u32> = (0..500).map(|_| heap.pop_expired(far).unwrap().1).collect();
        let even: Vec<u32> = (0..500).map(|_| heap.pop_expired(far).unwrap().1).collect();
        assert_eq!(odd, (0..1_000).filter(|i| i % 2 == 1).collect::<Vec<_>>());
        assert_eq!(even, (0..1_000).filter(|i| i % 2 == 0).collect::<Vec<_>>());
        assert!(heap.is_empty());
    }

    #[test]
    fn ties_stay_fifo_across_pops() {
        // Entries with one deadline pushed before and after some pops still
        // come out in push order.
        let base = Instant::now();
        let deadline = at(base, 5);
        let mut heap = TimerHeap::new();
        for i in 0..10 {
            heap.push(deadline, i);
        }
        for i in 0..5 {
            assert_eq!(heap.pop_expired(deadline), Some((deadline, i)));
        }
        for i in 10..20 {
            heap.push(deadline, i);
        }
        for i in 5..20 {
            assert_eq!(heap.pop_expired(deadline), Some((deadline, i)));
        }
        assert!(heap.is_empty());
    }

    /// A million random pushes, then every pop, against a stably sorted
    /// `Vec`: stable sorting by deadline is exactly `(deadline, insertion)`
    /// order, so the two sequences must be equal element for element.
    #[test]
    fn randomized_against_sorted_vec() {
        const N: u32 = 1_000_000;
        let base = Instant::now();
        let mut rng = XorShift::new(0x9E37_79B9_7F4A_7C15);
        let mut heap = TimerHeap::new();
        let mut expected = Vec::with_capacity(N as usize);
        for value in 0..N {
            // 100_000 distinct deadlines for a million entries: about ten
            // entries share each deadline, so ties are exercised throughout.
            let deadline = at(base, rng.below(100_000));
            heap.push(deadline, value);
            expected.push((deadline, value));
        }
        assert_eq!(heap.len(), N as usize);
        expected.sort_by_key(|&(deadline, _)| deadline);

        let far = at(base, 100_000);
        for (i, want) in expected.iter().enumerate() {
            assert_eq!(heap.peek_deadline(), Some(want.0));
            let got = heap.pop_expired(far);
            assert_eq!(got, Some(*want), "pop number {i}");
        }
        assert!(heap.is_empty());
        assert_eq!(heap.pop_expired(far), None);
    }

    /// Pushes and pops interleaved with a clock that moves forward, as a
    /// worker uses the heap, against a `BTreeMap` keyed like the heap.
    #[test]
    fn randomized_interleaved_against_model() {
        let base = Instant::now();
        let mut rng = XorShift::new(0x2545_F491_4F6C_DD1D);
        let mut heap = TimerHeap::new();
        let mut model: BTreeMap<(u64, u64), u64> = BTreeMap::new();
        let mut now = 0u64;
        let mut seq = 0u64;
        for step in 0..200_000u64 {
            match rng.below(10) {
                // Arm a timer up to 1µs ahead, sometimes in the past.
                0..=5 => {
                    let nanos = (now + rng.below(1_000)).saturating_sub(100);
                    heap.push(at(base, nanos), step);
                    model.insert((nanos, seq), step);
                    seq += 1;
                }
                // Let time pass.
                6 => now += rng.below(200),
                // Drain one expired timer, if any.
                _ => {
                    let want = match model.first_key_value() {
                        Some((&(nanos, seq), &value)) if nanos <= now => {
                            model.remove(&(nanos, seq));
                            Some((at(base, nanos), value))
                        }
                        _ => None,
                    };
                    assert_eq!(heap.pop_expired(at(base, now)), want, "step {step}");
                }
            }
            assert_eq!(heap.len(), model.len());
            assert_eq!(
                heap.peek_deadline(),
                model.keys().next().map(|&(nanos, _)| at(base, nanos))
            );
        }
        assert_heap_order(&heap);
    }

    /// Pushes `n` entries with random deadlines and values `0..n`.
    fn random_heap(n: u32, seed: u64) -> (Instant, TimerHeap<u32>) {
        let base = Instant::now();
        let mut rng = XorShift::new(seed);
        let mut heap = TimerHeap::new();
        for value in 0..n {
            heap.push(at(base, rng.below(50_000)), value);
        }
        (base, heap)
    }

    #[test]
    fn compaction_removes_exactly_the_stale_entries_and_keeps_the_order() {
        let (base, mut heap) = random_heap(10_000, 0x1234_5678);
        // What the heap would pop without compaction, minus the stale ones.
        let mut reference = TimerHeap::new();
        for entry in &heap.entries {
            reference.entries.push(super::Entry {
                deadline: entry.deadline,
                seq: entry.seq,
                value: entry.value,
            });
        }
        let is_stale = |v: &u32| v % 3 != 0;
        assert!(heap.compaction_due());
        let mut removed = Vec::new();
        let n = heap.compact(base, is_stale, &mut removed);
        assert_eq!(n, removed.len());
        removed.sort_unstable();
        assert_eq!(removed, (0..10_000).filter(is_stale).collect::<Vec<_>>());
        assert_eq!(heap.len(), 10_000 - n);
        assert_heap_order(&heap);
        assert!(!heap.compaction_due(), "{} entries left", heap.len());

        let far = at(base, 100_000);
        while let Some((deadline, value)) = reference.pop_expired(far) {
            if !is_stale(&value) {
                assert_eq!(heap.pop_expired(far), Some((deadline, value)));
            }
        }
        assert!(heap.is_empty());
    }

    #[test]
    fn a_live_heap_is_sampled_not_scanned() {
        let (base, mut heap) = random_heap(100_000, 0xDEAD_BEEF);
        let mut calls = 0;
        let mut removed = Vec::new();
        let n = heap.compact(
            base,
            |_| {
                calls += 1;
                false
            },
            &mut removed,
        );
        assert_eq!((n, calls), (0, super::SAMPLES));
        assert_eq!(heap.len(), 100_000);
        assert!(!heap.compaction_due());
    }

    /// A thousand "coroutines" each re-arm a timer over and over (each
    /// re-arm cancels the previous one), the worker compacting when told
    /// to: the heap stays near its minimum size instead of growing with
    /// the number of cancellations, and the predicate calls stay a
    /// constant number per push.
    #[test]
    fn cancelled_timers_do_not_pile_up() {
        const UNITS: usize = 1_000;
        const PUSHES: u64 = 1_000_000;
        let base = Instant::now();
        let mut rng = XorShift::new(0x5EED);
        let mut generation = vec![0u64; UNITS];
        let mut heap = TimerHeap::new();
        let mut removed = Vec::new();
        let (mut calls, mut max_len) = (0u64, 0);
        for _ in 0..PUSHES {
            let unit = rng.below(UNITS as u64) as usize;
            generation[unit] += 1;
            // Far in the future: nothing ever expires, as with 60 s
            // timeouts cancelled within microseconds.
            heap.push(
                at(base, 1_000_000 + rng.below(1_000)),
                (unit, generation[unit]),
            );
            if heap.compaction_due() {
                heap.compact(
                    base,
                    |&(unit, g)| {
                        calls += 1;
                        generation[unit] != g
                    },
                    &mut removed,
                );
                removed.clear();
            }
            max_len = max_len.max(heap.len());
        }
        assert!(max_len <= super::COMPACT_MIN, "grew to {max_len}");
        assert!(calls <= 3 * PUSHES, "{calls} predicate calls");
        assert_heap_order(&heap);
        // Every unit's latest timer is still there.
        let mut live: Vec<_> = std::iter::from_fn(|| heap.pop_expired(at(base, 2_000_000)))
            .map(|(_, v)| v)
            .filter(|&(unit, g)| generation[unit] == g)
            .collect();
        live.sort_unstable();
        assert_eq!(
            live,
            (0..UNITS).map(|u| (u, generation[u])).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_growing_live_heap_costs_a_few_samples() {
        let base = Instant::now();
        let mut heap = TimerHeap::new();
        let (mut calls, mut checks) = (0, 0);
        let mut removed = Vec::new();
        for value in 0..1_000_000u64 {
            heap.push(at(base, value % 977), value);
            if heap.compaction_due() {
                checks += 1;
                heap.compact(
                    base,
                    |_| {
                        calls += 1;
                        false
                    },
                    &mut removed,
                );
            }
        }
        assert!(removed.is_empty());
        assert_eq!(heap.len(), 1_000_000);
        // Once per growth by half from 4096: log1.5(1e6 / 4096) < 15.
        assert!(checks <= 15, "{checks} checks");
        assert_eq!(calls, checks * super::SAMPLES);
    }

    #[test]
    fn idle_checks_wait_for_size_and_a_second() {
        let (base, mut heap) = random_heap(100, 7);
        assert!(!heap.compaction_due_idle(base), "too small to bother");
        let (base, mut big) = random_heap(5_000, 7);
        assert!(big.compaction_due_idle(base), "never looked at");
        let mut removed = Vec::new();
        assert_eq!(big.compact(base, |_| false, &mut removed), 0);
        assert!(!big.compaction_due_idle(base + Duration::from_millis(999)));
        assert!(big.compaction_due_idle(base + Duration::from_secs(1)));
        // Everything stale: all of it goes, and the memory with it.
        let later = base + Duration::from_secs(1);
        assert_eq!(big.compact(later, |_| true, &mut removed), 5_000);
        assert!(big.is_empty() && big.entries.capacity() <= 1);
        assert!(!big.compaction_due_idle(later));
        // A small heap can still be compacted directly.
        assert_eq!(heap.compact(base, |v| v % 2 == 0, &mut removed), 50);
        assert_heap_order(&heap);
    }

    #[test]
    fn dropping_the_heap_drops_its_values() {
        use std::rc::Rc;
        let shared = Rc::new(());
        let mut heap = TimerHeap::new();
        let base = Instant::now();
        for i in 0..100 {
            heap.push(at(base, i % 7), Rc::clone(&shared));
        }
        for _ in 0..40 {
            assert!(heap.pop_expired(at(base, 10)).is_some());
        }
        assert_eq!(Rc::strong_count(&shared), 61);
        drop(heap);
        assert_eq!(Rc::strong_count(&shared), 1);
    }
}
