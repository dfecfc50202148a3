//! `skynet`: a root unit spawns 10 children, each spawns 10, down 6 levels
//! to 1,000,000 leaves; each leaf returns its ordinal, each parent sums its
//! children's results, and the root's sum must be 499,999,500,000.
//! `ms_total` is the median of 5 runs after a warm-up.
//!
//! Each parent makes one `spindle::channel::bounded(10)` channel, hands a
//! `Sender` to each of its ten children, and sums the ten values it
//! receives; the children's `JoinHandle`s are dropped (detached), as Go's
//! skynet never joins its goroutines. The capacity of ten means no child
//! ever waits for its parent: it sends and ends. (Go's original uses an
//! unbuffered channel, where each child waits until its parent takes the
//! value; the sum and the shape of the tree are the same.) A child that
//! panics drops its sender without sending, so its parent's sum comes out
//! short and the root's check fails.
//!
//! WORKLOADS.md defines no OS-thread or OS-process row (a million threads
//! or processes is not a workload they can run).

use std::time::{Duration, Instant};

use super::{BenchArgs, BenchError, REPS, Record, System, check, median_of, runtime};

/// Leaves when `--n` is not given.
pub const DEFAULT_LEAVES: u64 = 1_000_000;

/// Children per node.
const FANOUT: u64 = 10;

/// The subtree of `size` leaves numbered from `first`: a leaf returns its
/// number, an inner node spawns its ten children and sums the values they
/// send it.
fn node(first: u64, size: u64) -> u64 {
    if size == 1 {
        return first;
    }
    let child = size / FANOUT;
    let (tx, rx) = spindle::channel::bounded(FANOUT as usize);
    for i in 0..FANOUT {
        let tx = tx.clone();
        // Cannot fail: the parent keeps `rx` until it has all ten values.
        spindle::spawn(move || {
            let _ = tx.send(node(first + i * child, child));
        });
    }
    // Our own sender goes, so that if a child dies without sending, the
    // channel disconnects once the others are done instead of hanging.
    drop(tx);
    rx.iter().take(FANOUT as usize).sum()
}

/// One run over `leaves` leaves (a power of 10); must run inside a
/// coroutine, which acts as the root.
pub fn coroutines(leaves: u64) -> Result<Duration, BenchError> {
    let start = Instant::now();
    let sum = node(0, leaves);
    let elapsed = start.elapsed();
    check("skynet sum", sum, leaves * (leaves - 1) / 2)?;
    Ok(elapsed)
}

/// Whether `n` is a power of 10 (1 included).
pub fn is_power_of_ten(mut n: u64) -> bool {
    while n >= FANOUT && n % FANOUT == 0 {
        n /= FANOUT;
    }
    n == 1
}

/// `spindle bench skynet`.
pub fn run(args: &BenchArgs, mut emit: impl FnMut(Record)) -> Result<(), BenchError> {
    if args.system != System::Spindle {
        return Err(super::no_row(args));
    }
    let leaves = args.n.unwrap_or(DEFAULT_LEAVES);
    if !is_power_of_ten(leaves) {
        return Err(BenchError::Usage(format!(
            "skynet needs --n to be a power of 10 (leaves of a 10-ary tree), not {leaves}"
        )));
    }
    let rt = runtime(args.workers)?;
    let total = rt.block_on(move || median_of(REPS, || coroutines(leaves)))?;
    emit(Record {
        workload: "skynet",
        system: "spindle",
        n: leaves,
        workers: args.workers,
        metric: "ms_total",
        value: total.as_secs_f64() * 1e3,
    });
    Ok(())
}
