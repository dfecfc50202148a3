//! A fake worker for the policies' unit tests.
//!
//! [`Sim`] drives a [`RunQueue<u32>`] the way the worker loop does — `pop`,
//! `slice`, `charge`, `push` — with items numbered from 0, their
//! [`SchedData`] in a `Vec`, and a clock that moves only by the run time
//! each test says a turn took. Nothing here reads the real clock, so every
//! order a test asserts is exact and repeatable.
//!
//! [`stress`] is the no-starvation property check: an overloaded worker
//! (more arrivals than it can run) with a few CPU-bound items, measuring
//! how often each queued item is *bypassed* — how many items that became
//! ready after it ran before it. A policy starves an item exactly when
//! that count grows without bound; the tests bound it by the arrivals in a
//! window of fake time each policy documents (its aging horizon).

use super::{Priority, RunQueue, SchedData, Why};

/// How a simulated turn ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// `yield_now`: pushed again with `Why::Yielded`.
    Yield,
    /// Slice or budget ran out: pushed again with `Why::Preempted`.
    Preempt,
    /// A wake-up cut the turn short: pushed again with `Why::Interrupted`.
    Interrupt,
    /// Blocked: charged as the end of a burst, not pushed (wake it later
    /// with [`Sim::wake`]).
    Park,
}

/// A microsecond and a millisecond on the fake clock (ns).
pub(crate) const US: u64 = 1_000;
pub(crate) const MS: u64 = 1_000_000;

/// Scheduling data of a fresh coroutine with priority `p` and `nice`.
pub(crate) fn sched(p: Priority, nice: i8) -> SchedData {
    SchedData {
        rank: p.rank() as u8,
        nice,
        ..SchedData::default()
    }
}

/// A fake worker around the queue `q`.
pub(crate) struct Sim<Q> {
    /// The queue under test.
    pub(crate) q: Q,
    /// Each item's scheduling data, indexed by item.
    pub(crate) s: Vec<SchedData>,
    /// The fake clock, in ns.
    pub(crate) now: u64,
    /// Run time charged to each item so far, in ns.
    pub(crate) cpu: Vec<u64>,
    /// Whether each item is in the queue (a popped item is not).
    queued: Vec<bool>,
    /// How many items are queued, to check `len`.
    len: usize,
}

impl<Q: RunQueue<u32>> Sim<Q> {
    /// A worker with an empty queue at time 0.
    pub(crate) fn new(q: Q) -> Sim<Q> {
        Sim {
            q,
            s: Vec::new(),
            now: 0,
            cpu: Vec::new(),
            queued: Vec::new(),
            len: 0,
        }
    }

    /// Spawns an item with scheduling data `s` (`Why::New`); returns it.
    pub(crate) fn spawn_with(&mut self, s: SchedData) -> u32 {
        let i = self.s.len() as u32;
        self.s.push(s);
        self.cpu.push(0);
        self.queued.push(false);
        self.push(i, Why::New);
        i
    }

    /// Spawns an item of the default priority and nice 0.
    pub(crate) fn spawn(&mut self) -> u32 {
        self.spawn_with(sched(Priority::default(), 0))
    }

    /// Spawns `n` default items; returns them in spawn order.
    pub(crate) fn spawn_n(&mut self, n: usize) -> Vec<u32> {
        (0..n).map(|_| self.spawn()).collect()
    }

    /// Wakes the parked item `i` (`Why::Woken`).
    pub(crate) fn wake(&mut self, i: u32) {
        self.push(i, Why::Woken);
    }

    /// Moves the clock forward `ns` with nothing running.
    pub(crate) fn advance(&mut self, ns: u64) {
        self.now += ns;
    }

    /// Pushes `i` and checks the queue's length.
    pub(crate) fn push(&mut self, i: u32, why: Why) {
        assert!(!self.queued[i as usize], "item {i} pushed twice");
        self.queued[i as usize] = true;
        self.len += 1;
        self.q.push(i, &mut self.s[i as usize], why, self.now);
        assert_eq!(self.q.len(), self.len, "len after pushing {i}");
    }

    /// Pops the next item without running it (to read an order); it is
    /// then parked, as far as the simulation is concerned.
    pub(crate) fn pop(&mut self) -> Option<u32> {
        let i = self.q.pop(self.now)?;
        assert!(self.queued[i as usize], "popped {i}, which is not queued");
        self.queued[i as usize] = false;
        self.len -= 1;
        assert_eq!(self.q.len(), self.len, "len after popping {i}");
        Some(i)
    }

    /// Pops everything; the order it came out in.
    pub(crate) fn pop_all(&mut self) -> Vec<u32> {
        std::iter::from_fn(|| self.pop()).collect()
    }

    /// One turn: pops the next item, asks `f` (given the item and its
    /// slice) how long it runs and how its turn ends, advances the clock,
    /// charges it and pushes it again unless it parked. Returns the item
    /// and its slice, or `None` if the queue was empty.
    pub(crate) fn turn(
        &mut self,
        f: impl FnOnce(u32, Option<u64>) -> (u64, End),
    ) -> Option<(u32, Option<u64>)> {
        let i = self.pop()?;
        let slice = self.q.slice(&mut self.s[i as usize], self.now);
        let (ran, end) = f(i, slice);
        self.now += ran;
        self.cpu[i as usize] += ran;
        self.q
            .charge(&mut self.s[i as usize], ran, end == End::Park, self.now);
        let why = match end {
            End::Yield => Why::Yielded,
            End::Preempt => Why::Preempted,
            End::Interrupt => Why::Interrupted,
            End::Park => return Some((i, slice)),
        };
        self.push(i, why);
        Some((i, slice))
    }

    /// One turn of `ran` ns ending as `end`; returns the item that ran.
    /// Panics if the queue is empty.
    pub(crate) fn run(&mut self, ran: u64, end: End) -> u32 {
        self.turn(|_, _| (ran, end)).expect("queue is empty").0
    }

    /// One turn that uses its whole slice and is preempted; returns the
    /// item and the slice. Panics if the queue is empty or the slice is
    /// unlimited.
    pub(crate) fn run_slice(&mut self) -> (u32, u64) {
        let (i, slice) = self
            .turn(|_, slice| (slice.expect("a limited slice"), End::Preempt))
            .expect("queue is empty");
        (i, slice.unwrap())
    }
}

/// A small deterministic generator (xorshift64*), so the property tests
/// need no dependency and replay exactly.
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator from a non-zero seed.
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// A number in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32;
        lo + x % (hi - lo + 1)
    }
}

/// Counts, for each push, how many later pushes were popped before it
/// (a Fenwick tree over push numbers: a pop adds 1 at its push number).
struct Bypass {
    tree: Vec<u32>,
    pops: u64,
}

impl Bypass {
    fn new(pushes: usize) -> Bypass {
        Bypass {
            tree: vec![0; pushes + 1],
            pops: 0,
        }
    }

    /// The push numbered `n` (from 0) was popped.
    fn popped(&mut self, n: usize) {
        self.pops += 1;
        let mut k = n + 1;
        while k < self.tree.len() {
            self.tree[k] += 1;
            k += k & k.wrapping_neg();
        }
    }

    /// How many pushes numbered above `n` have been popped.
    fn after(&self, n: usize) -> u64 {
        let (mut k, mut upto) = (n + 1, 0u64);
        while k > 0 {
            upto += u64::from(self.tree[k]);
            k -= k & k.wrapping_neg();
        }
        self.pops - upto
    }
}

/// What [`stress`] measured.
pub(crate) struct Stress {
    /// The most times one queued item was bypassed (items still queued at
    /// the end included).
    pub(crate) max_bypass: u64,
    /// Turns the CPU-bound items got, in all.
    pub(crate) hog_turns: u64,
    /// The policy's clock at every push, in order: the fake time, or the
    /// clock the policy ages by (Fair: `min_vruntime`).
    pub(crate) push_clock: Vec<u64>,
}

impl std::fmt::Debug for Stress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stress")
            .field("max_bypass", &self.max_bypass)
            .field("hog_turns", &self.hog_turns)
            .field("pushes", &self.push_clock.len())
            .field("clock_at_end", &self.push_clock.last())
            .finish()
    }
}

impl Stress {
    /// The most pushes within any `window` of the clock: a policy whose
    /// aging horizon is `window` lets an item be bypassed at most this
    /// often (everything pushed within the horizon after it, no later).
    pub(crate) fn pushes_within(&self, window: u64) -> u64 {
        let t = &self.push_clock;
        let (mut lo, mut most) = (0, 0);
        for hi in 0..t.len() {
            while t[hi] - t[lo] > window {
                lo += 1;
            }
            most = most.max(hi - lo + 1);
        }
        most as u64
    }
}

/// The no-starvation workload: 3 CPU-bound items (`hog`) that always use
/// their whole slice (2 ms when the policy gives none), and before every
/// pop 0–2 new items (`short`, mean 1 a pop: more than the worker can
/// run, so the queue only grows) that each run 5–100 µs and end, one in
/// four after a 0.5–3 ms sleep and a second burst. Runs `pops` turns;
/// `clock` reads the clock the policy ages by, from the queue and the fake
/// time, at every push.
pub(crate) fn stress<Q: RunQueue<u32>>(
    q: Q,
    hog: SchedData,
    short: SchedData,
    seed: u64,
    pops: usize,
    clock: impl Fn(&Q, u64) -> u64,
) -> Stress {
    let mut sim = Sim::new(q);
    let mut rng = Rng::new(seed);
    // Per item: its latest push number, whether it is a hog, and whether
    // it has slept once already.
    let mut push_no: Vec<usize> = Vec::new();
    let mut is_hog = Vec::new();
    let mut slept = Vec::new();
    let mut sleeping: Vec<(u64, u32)> = Vec::new();
    // At most 5 pushes a pop: 2 arrivals, a hog, and wake-ups (each
    // arrival sleeps at most once).
    let mut bypass = Bypass::new(pops * 5 + 16);
    let mut push_clock = Vec::new();
    let (mut max_bypass, mut hog_turns) = (0, 0);

    let mut record = |sim: &Sim<Q>, push_no: &mut Vec<usize>, i: u32| {
        push_no.resize(sim.s.len(), 0);
        push_no[i as usize] = push_clock.len();
        push_clock.push(clock(&sim.q, sim.now));
    };
    for _ in 0..3 {
        let i = sim.spawn_with(hog);
        record(&sim, &mut push_no, i);
        is_hog.push(true);
        slept.push(false);
    }
    for _ in 0..pops {
        for _ in 0..rng.range(0, 2) {
            let i = sim.spawn_with(short);
            record(&sim, &mut push_no, i);
            is_hog.push(false);
            slept.push(false);
        }
        sleeping.sort_unstable_by(|a, b| b.cmp(a));
        while sleeping.last().is_some_and(|&(at, _)| at <= sim.now) {
            let (_, i) = sleeping.pop().unwrap();
            sim.wake(i);
            record(&sim, &mut push_no, i);
        }
        let burst = rng.range(5_000, 100_000);
        let sleeps = rng.range(0, 3) == 0;
        let (i, _) = sim
            .turn(|i, slice| {
                if is_hog[i as usize] {
                    (slice.unwrap_or(2_000_000), End::Preempt)
                } else {
                    (burst, End::Park)
                }
            })
            .expect("the queue only grows");
        let n = push_no[i as usize];
        max_bypass = max_bypass.max(bypass.after(n));
        bypass.popped(n);
        if is_hog[i as usize] {
            hog_turns += 1;
            record(&sim, &mut push_no, i);
        } else if sleeps && !slept[i as usize] {
            slept[i as usize] = true;
            sleeping.push((sim.now + rng.range(500_000, 3_000_000), i));
        }
    }
    // Items still queued count too: a starved one is never popped.
    for (i, &n) in push_no.iter().enumerate() {
        if sim.queued[i] {
            max_bypass = max_bypass.max(bypass.after(n));
        }
    }
    Stress {
        max_bypass,
        hog_turns,
        push_clock,
    }
}
