//! Scheduling policies: the rule that orders each worker's ready
//! coroutines.
//!
//! A runtime runs one policy, chosen when it is built:
//!
//! ```
//! use std::time::Duration;
//! use spindle::policy::Policy;
//!
//! let rt = spindle::Runtime::builder()
//!     .workers(1)
//!     .policy(Policy::RoundRobin { slice: Duration::from_millis(2) })
//!     .build()?;
//! let n = rt.block_on(|| {
//!     let h = spindle::spawn(|| (0..1000u64).inspect(|_| spindle::checkpoint()).sum::<u64>());
//!     h.join().unwrap()
//! });
//! assert_eq!(n, 499_500);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! | policy | textbook rule |
//! | --- | --- |
//! | [`Policy::Fifo`] (default) | first come, first served; a coroutine runs until it blocks, yields, or spends its budget |
//! | [`Policy::RoundRobin`] | FIFO with time slices: past its slice a coroutine goes to the back at its next runtime call |
//! | [`Policy::Priority`] | classes `Realtime > Normal > Idle` ([`Priority`]), levels inside each; the best non-empty level always runs first (SCHED_FIFO / SCHED_RR) |
//! | [`Policy::Mlfq`] | multilevel feedback queue (OSTEP's rules 1–5) |
//! | [`Policy::Fair`] | Linux's CFS: least weighted virtual run time first, weights from `nice` |
//! | [`Policy::ShortestFirst`] | shortest predicted CPU burst first, the prediction an exponential average of past bursts |
//!
//! # Under work stealing
//!
//! Each worker orders *its own* ready coroutines; there is no global queue
//! across workers (that would put a lock on every switch). Started
//! coroutines stay on their worker (DESIGN.md, "Soundness"), so a policy's
//! promise holds per worker: with 2 workers, a `Realtime` coroutine runs
//! before every `Normal` one *of its worker*, while the other worker may be
//! running a `Normal` one. Idle workers steal only coroutines that have not
//! started yet; under every policy but `Fifo`, a worker moves its new
//! coroutines into its policy's queue at its next scheduling decision, so
//! they are ordered with the rest, and idle workers steal them from there
//! (about half, oldest-ranked first) as long as they have not started.
//!
//! # Preemption
//!
//! spindle never interrupts a coroutine (DESIGN.md, "Preemption"): a
//! coroutine whose turn is over yields at its next *runtime call* — a
//! channel operation, lock, socket call, spawn,
//! [`yield_now`](crate::yield_now) or [`checkpoint`](crate::checkpoint).
//! Under `Fifo` a turn is over after [`BUDGET`] runtime calls; under the
//! other policies, when its slice is spent, or as soon as a wake-up
//! arrives that the policy may rank higher (so an interactive coroutine
//! does not wait for a CPU hog's slice to end). Under every policy, a turn
//! the monitor has seen running for half the hold threshold (5 ms by
//! default) ends at its next runtime call. A CPU loop should call
//! `checkpoint()` once per iteration; one that makes no runtime call holds
//! its worker until it ends, and the runtime's monitor warns about it and
//! moves other work away (see
//! [`runtime::Builder::hold_threshold`](crate::runtime::Builder::hold_threshold)).
//!
//! The policy is the worker's queue discipline; the `RunQueue` trait it
//! implements is internal for now, so its shape can still change.

mod fair;
mod min_heap;
mod mlfq;
mod priority;
mod round_robin;
mod shortest_first;

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::coroutine::task::TaskRef;

pub use fair::Fair;
pub use mlfq::Mlfq;
pub use shortest_first::ShortestFirst;

/// Runtime calls a coroutine may make in one turn under [`Policy::Fifo`]
/// before it yields at the next one (tokio's coop budget is 128 as well).
/// The other policies end turns by time slice instead.
pub const BUDGET: u32 = 128;

/// Which rule orders each worker's ready coroutines.
///
/// See the [module docs](self). Parsed from the names the CLI uses:
/// `fifo`, `round-robin`, `priority`, `mlfq`, `fair`, `shortest-first`
/// (each with its default settings).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Policy {
    /// First come, first served: ready coroutines run in the order they
    /// became ready, each until it blocks, yields, or spends its budget of
    /// [`BUDGET`] runtime calls. The scheduler's fast path: a coroutine
    /// woken by the one running goes next (a cache-warm hand-off, at most
    /// 3 times in a row) and new coroutines alternate with started ones.
    ///
    /// Measured (`sched_latency`, BENCHMARKS.md; 100 interactive
    /// coroutines beside 2 checkpointing CPU-bound ones per worker): p99
    /// wake-up 0.6–1.1 ms, the CPU-bound ones getting the most CPU of any
    /// policy but round robin.
    #[default]
    Fifo,
    /// Round robin: FIFO order, and a coroutine that has run for `slice`
    /// goes to the back of the queue at its next runtime call. The slice
    /// should be 1–10 ms; shorter ones cost more switches.
    ///
    /// Measured (`sched_latency`, BENCHMARKS.md, 10 ms slices): a woken
    /// interactive coroutine waits for the CPU-bound ones' slices, p99
    /// 16–18 ms; in exchange the CPU-bound ones get the most CPU of any
    /// policy (0.87–0.90 of each worker).
    RoundRobin {
        /// How long a coroutine may run before it gives way.
        slice: Duration,
    },
    /// Priority classes: every ready `Realtime` coroutine runs before any
    /// `Normal` one, and `Idle` ones run only when nothing else is ready
    /// (they may starve; that is the rule). Within a class, higher levels
    /// first; within a level, FIFO with a 10 ms slice (like SCHED_RR).
    /// Set per coroutine with [`Builder::priority`](crate::Builder::priority).
    ///
    /// Measured (`sched_latency`, BENCHMARKS.md; 100 `Realtime`
    /// interactive coroutines beside `Normal` CPU-bound ones): p99 wake-up
    /// 87–889 µs with 2 workers, 169–210 µs with 1 — where the realtime
    /// load fills the worker and the `Normal` coroutines get almost
    /// nothing, as the rule says.
    Priority,
    /// Multilevel feedback queue; see [`Mlfq`].
    Mlfq(Mlfq),
    /// Weighted fair share (Linux CFS); see [`Fair`].
    Fair(Fair),
    /// Shortest predicted burst first; see [`ShortestFirst`].
    ShortestFirst(ShortestFirst),
}

impl Policy {
    /// The policy's name as [`FromStr`] and the CLI spell it.
    pub fn name(&self) -> &'static str {
        match self {
            Policy::Fifo => "fifo",
            Policy::RoundRobin { .. } => "round-robin",
            Policy::Priority => "priority",
            Policy::Mlfq(_) => "mlfq",
            Policy::Fair(_) => "fair",
            Policy::ShortestFirst(_) => "shortest-first",
        }
    }

    /// Every policy with its default settings, in the order the docs list
    /// them.
    pub fn all() -> Vec<Policy> {
        vec![
            Policy::Fifo,
            Policy::RoundRobin {
                slice: DEFAULT_SLICE,
            },
            Policy::Priority,
            Policy::Mlfq(Mlfq::default()),
            Policy::Fair(Fair::default()),
            Policy::ShortestFirst(ShortestFirst::default()),
        ]
    }

    /// Checks the settings; the error says which one is wrong.
    pub(crate) fn validate(&self) -> Result<(), String> {
        match self {
            Policy::RoundRobin { slice } if slice.is_zero() => {
                Err("Policy::RoundRobin needs a slice above zero (1-10 ms is usual)".into())
            }
            Policy::Mlfq(m) => m.validate(),
            Policy::Fair(f) => f.validate(),
            Policy::ShortestFirst(s) => s.validate(),
            _ => Ok(()),
        }
    }

    /// The per-worker queue for this policy; `None` for `Fifo`, which the
    /// worker runs on its own fast path.
    pub(crate) fn queue(&self) -> Option<Box<dyn RunQueue<TaskRef>>> {
        match self {
            Policy::Fifo => None,
            Policy::RoundRobin { slice } => Some(Box::new(round_robin::Queue::new(*slice))),
            Policy::Priority => Some(Box::new(priority::Queue::new())),
            Policy::Mlfq(m) => Some(Box::new(mlfq::Queue::new(m.clone()))),
            Policy::Fair(f) => Some(Box::new(fair::Queue::new(f.clone()))),
            Policy::ShortestFirst(s) => Some(Box::new(shortest_first::Queue::new(s.clone()))),
        }
    }
}

/// The slice of `Policy::RoundRobin` from [`FromStr`] and [`Policy::all`],
/// and of `Priority` within a level.
pub const DEFAULT_SLICE: Duration = Duration::from_millis(10);

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Policy {
    type Err = String;

    fn from_str(s: &str) -> Result<Policy, String> {
        Policy::all()
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown scheduling policy {s:?}; one of: fifo, round-robin, \
                     priority, mlfq, fair, shortest-first"
                )
            })
    }
}

impl From<Mlfq> for Policy {
    fn from(m: Mlfq) -> Policy {
        Policy::Mlfq(m)
    }
}

impl From<Fair> for Policy {
    fn from(f: Fair) -> Policy {
        Policy::Fair(f)
    }
}

impl From<ShortestFirst> for Policy {
    fn from(s: ShortestFirst) -> Policy {
        Policy::ShortestFirst(s)
    }
}

/// A priority class of [`Policy::Priority`]; ignored by other policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Class {
    /// Runs only when no `Normal` or `Realtime` coroutine of its worker is
    /// ready; may starve.
    Idle = 0,
    /// The default class.
    #[default]
    Normal = 1,
    /// Runs before every `Normal` and `Idle` coroutine of its worker.
    Realtime = 2,
}

/// A coroutine's priority under [`Policy::Priority`]: a class, and a level
/// inside it (0–7, higher runs first). Other policies ignore it.
///
/// ```
/// use spindle::policy::{Class, Priority};
/// let p = Priority::realtime(3);
/// assert_eq!((p.class(), p.level()), (Class::Realtime, 3));
/// assert!(Priority::realtime(0) > Priority::normal(7));
/// assert_eq!(Priority::default(), Priority::normal(0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Priority {
    class: Class,
    level: u8,
}

impl Priority {
    /// The highest level inside a class.
    pub const MAX_LEVEL: u8 = 7;

    /// A priority in `class` at `level` (clamped to [`MAX_LEVEL`](Self::MAX_LEVEL)).
    pub const fn new(class: Class, level: u8) -> Priority {
        let level = if level > Self::MAX_LEVEL {
            Self::MAX_LEVEL
        } else {
            level
        };
        Priority { class, level }
    }

    /// `Realtime` at `level`.
    pub const fn realtime(level: u8) -> Priority {
        Priority::new(Class::Realtime, level)
    }

    /// `Normal` at `level`.
    pub const fn normal(level: u8) -> Priority {
        Priority::new(Class::Normal, level)
    }

    /// `Idle` at `level`.
    pub const fn idle(level: u8) -> Priority {
        Priority::new(Class::Idle, level)
    }

    /// The class.
    pub const fn class(self) -> Class {
        self.class
    }

    /// The level inside the class.
    pub const fn level(self) -> u8 {
        self.level
    }

    /// 0 (idle, level 0) to 23 (realtime, level 7): the index of its
    /// queue in the priority policy.
    pub(crate) const fn rank(self) -> usize {
        self.class as usize * (Self::MAX_LEVEL as usize + 1) + self.level as usize
    }
}

/// Linux's `sched_prio_to_weight`: the CFS weight of nice −20 ..= 19
/// (nice 0 is 1024; each step is about 1.25×, so one nice level is about
/// 10% of CPU between two competitors).
pub const NICE_WEIGHTS: [u32; 40] = [
    88761, 71755, 56483, 46273, 36291, // -20 .. -16
    29154, 23254, 18705, 14949, 11916, // -15 .. -11
    9548, 7620, 6100, 4904, 3906, // -10 .. -6
    3121, 2501, 1991, 1586, 1277, // -5 .. -1
    1024, 820, 655, 526, 423, // 0 .. 4
    335, 272, 215, 172, 137, // 5 .. 9
    110, 87, 70, 56, 45, // 10 .. 14
    36, 29, 23, 18, 15, // 15 .. 19
];

/// The CFS weight of `nice` (clamped to −20..=19).
pub fn nice_weight(nice: i8) -> u32 {
    NICE_WEIGHTS[(nice.clamp(-20, 19) + 20) as usize]
}

// ---------------------------------------------------------------------------
// The seam: what the worker loop calls.
// ---------------------------------------------------------------------------

/// The shortest slice a queue hands out, in ns. A coroutine whose slice
/// (or MLFQ allotment) is all but used up still gets this much, so it is
/// not made to yield at every runtime call for the last few microseconds;
/// it is the most a turn can overrun a slice (besides the distance to the
/// next runtime call).
pub(crate) const MIN_SLICE_NS: u64 = 50_000;

/// Moves items of `q` for which `pred` holds into `out`, front first, at
/// most `*left` of them (decremented), keeping the order of the rest: the
/// `take_if` of the queues built on `VecDeque`s.
pub(crate) fn take_from<T>(
    q: &mut VecDeque<T>,
    pred: &mut dyn FnMut(&T) -> bool,
    left: &mut usize,
    out: &mut Vec<T>,
) {
    if *left == 0 || q.is_empty() {
        return;
    }
    let mut keep = VecDeque::with_capacity(q.len());
    for item in q.drain(..) {
        if *left > 0 && pred(&item) {
            *left -= 1;
            out.push(item);
        } else {
            keep.push_back(item);
        }
    }
    *q = keep;
}

/// A fresh id for a policy queue (never 0), for `SchedData::home`.
pub(crate) fn next_queue_id() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(1);
    loop {
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        if id != 0 {
            return id;
        }
    }
}

/// `d` in whole nanoseconds, saturating at `u64::MAX` (585 years).
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Per-coroutine scheduling data, kept in its header.
///
/// Touched only by the worker that holds the coroutine in its queues or
/// runs it (and by the coroutine itself, for `set_nice`), like the header's
/// run state (`coroutine::task`, invariant 2).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SchedData {
    /// `Priority::rank` of its priority.
    pub(crate) rank: u8,
    /// Its nice value, −20..=19.
    pub(crate) nice: i8,
    /// MLFQ: its queue level (0 = top).
    pub(crate) level: u8,
    /// MLFQ: the boost epoch its level belongs to (a boost moves every
    /// coroutine whose epoch is older to the top, lazily).
    pub(crate) epoch: u16,
    /// Run time charged and not yet consumed by the policy, in ns,
    /// saturating: RoundRobin's and Priority's slice used so far (kept
    /// through an interrupted turn); MLFQ's allotment used at its level;
    /// ShortestFirst's current burst so far.
    pub(crate) used: u32,
    /// The policy's sort key: Fair's virtual run time; ShortestFirst's
    /// predicted burst τ in ns.
    pub(crate) key: u64,
    /// The id of the policy queue that last filed it (0: none yet), so a
    /// queue can tell a coroutine that comes from another worker (a
    /// migratable one, or a new one a thief took): Fair places it afresh
    /// instead of comparing virtual run times of two different clocks.
    pub(crate) home: u16,
}

/// Why a coroutine is pushed into the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Why {
    /// It was spawned and has not run yet.
    New,
    /// It was woken from a park (a wait, sleep or I/O ended).
    Woken,
    /// It yielded (`yield_now`), by its own choice.
    Yielded,
    /// It was made to yield: its slice or budget ran out at a runtime call.
    /// It goes behind the coroutines of its own rank.
    Preempted,
    /// Its turn was cut short at a runtime call because something became
    /// ready that the policy may want to run first (a wake-up arrived).
    /// Round robin and `Priority` keep its place, ahead of the coroutines
    /// of its own rank, with the rest of its slice; MLFQ puts it behind its
    /// level (so a coroutine woken at the same level goes first).
    Interrupted,
}

/// A worker's ready queue, ordered by a policy.
///
/// The worker calls, for each turn of a coroutine: `pop` (it picks),
/// `slice` (how long the coroutine may run), then after the turn `charge`
/// with the time it ran, and `push` again if it is still runnable (with
/// `Why::Yielded` or `Why::Preempted`), or later with `Why::Woken` when a
/// park ends. Times are nanoseconds on the runtime's monotonic clock.
///
/// Generic over the queued item so the policies can be unit-tested with
/// plain numbers; the worker uses `TaskRef`. An item's `SchedData` is
/// passed in at `push`, `slice` and `charge` only: a queue that needs a
/// key at `pop` keeps a copy in its own entry.
///
/// One item runs at a time: after a `pop`, the next `slice` and `charge`
/// are that item's, and so is a push with `Yielded`, `Preempted` or
/// `Interrupted` (other items may be pushed, `New` or `Woken`, in
/// between). A queue may keep state about that running item from its
/// `pop` to its push or park, as ShortestFirst does. `Interrupted` means
/// the turn ended before its slice did; a turn that used up its slice is
/// `Preempted`, even if a wake-up arrived too.
pub(crate) trait RunQueue<T>: Send {
    /// `item` became runnable; `s` is its scheduling data.
    fn push(&mut self, item: T, s: &mut SchedData, why: Why, now: u64);
    /// The next item to run, if any.
    fn pop(&mut self, now: u64) -> Option<T>;
    /// How many items are queued.
    fn len(&self) -> usize;
    /// How long the item just popped may run before its next runtime call
    /// makes it yield, in ns; `None` for no limit (only the budget).
    fn slice(&mut self, s: &mut SchedData, now: u64) -> Option<u64>;
    /// The item ran `ran` ns in its last turn; `parked` says whether it
    /// ended the turn by blocking (a CPU burst ends there) rather than by
    /// yielding or being preempted. Called before it is pushed again.
    fn charge(&mut self, s: &mut SchedData, ran: u64, parked: bool, now: u64);
    /// Removes every queued item (shutdown).
    fn drain(&mut self, out: &mut Vec<T>);
    /// Moves up to `max` items for which `pred` holds into `out`, in the
    /// order `pop` would return them, keeping the order of the rest: idle
    /// workers steal not-yet-started coroutines this way, and the monitor
    /// takes new and migratable ones off a held worker.
    fn take_if(&mut self, pred: &mut dyn FnMut(&T) -> bool, max: usize, out: &mut Vec<T>);
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_policy_validates_and_builds_an_empty_queue() {
        for p in Policy::all() {
            assert_eq!(p.validate(), Ok(()), "{p}");
            assert_eq!(p.to_string().parse::<Policy>(), Ok(p.clone()));
            match p.queue() {
                None => assert_eq!(p, Policy::Fifo),
                Some(mut q) => {
                    assert_eq!((q.len(), q.pop(0).is_none()), (0, true), "{p}");
                }
            }
        }
        let bad = Policy::RoundRobin {
            slice: Duration::ZERO,
        };
        assert!(bad.validate().unwrap_err().contains("slice above zero"));
        assert!(
            "lottery"
                .parse::<Policy>()
                .unwrap_err()
                .contains("one of: fifo")
        );
    }

    #[test]
    fn sched_data_fits_in_24_bytes() {
        assert!(std::mem::size_of::<SchedData>() <= 24);
    }
}
