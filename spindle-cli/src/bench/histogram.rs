//! A log-linear histogram of nanosecond values, in the manner of
//! HdrHistogram: exact below 128 ns, and above that 64 buckets per power
//! of two, so a bucket is never wider than 1/64 of the values it holds.
//! Quantiles are reported as the middle of their bucket, within 0.8 % of
//! the true value.
//!
//! `sched_latency` records millions of wake-ups across a thousand
//! coroutines: a sorted vector of every sample (what `timers` uses for its
//! 100,000) would take tens of megabytes and a long sort, while each
//! coroutine's histogram here is a few kilobytes, filled without sharing a
//! cache line with any other, and merged once at the end.
//!
//! # Layout
//!
//! A value `v` goes to bucket
//!
//! | `v`              | bucket                                              |
//! | ---------------- | --------------------------------------------------- |
//! | `< 128`          | `v` (width 1)                                       |
//! | `[2^k, 2^(k+1))`, `k ≥ 7` | `64 · (k − 6) + (v >> (k − 6))`, width `2^(k − 6)` |
//!
//! so bucket indices grow with `v` without gaps (127 → 127, 128 → 128,
//! 255 → 191, 256 → 192). The count vector grows to the highest bucket
//! used: latencies up to 10 ms need about 1,300 buckets.

/// Bits of precision kept above the exact range: values are grouped by
/// their top `SUB_BITS` bits.
const SUB_BITS: u32 = 7;
/// Values below this are counted exactly.
const EXACT: u64 = 1 << SUB_BITS;
/// Buckets per power of two above the exact range.
const HALF: u64 = EXACT / 2;

/// The bucket of `v` (see the module docs).
fn index(v: u64) -> usize {
    if v < EXACT {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros();
    let shift = msb - (SUB_BITS - 1);
    // `v >> shift` keeps the top SUB_BITS bits: a value in [HALF, EXACT).
    (u64::from(shift) * HALF + (v >> shift)) as usize
}

/// The smallest value in bucket `i` and the bucket's width.
fn bucket(i: usize) -> (u64, u64) {
    let i = i as u64;
    if i < EXACT {
        return (i, 1);
    }
    let shift = i / HALF - 1;
    ((i % HALF + HALF) << shift, 1 << shift)
}

/// Counts of nanosecond values, with their exact maximum.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Histogram {
    /// An empty histogram (allocates nothing until the first value).
    pub fn new() -> Histogram {
        Histogram::default()
    }

    /// Counts one value.
    pub fn record(&mut self, v: u64) {
        let i = index(v);
        if i >= self.counts.len() {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] += 1;
        self.total += 1;
        self.max = self.max.max(v);
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        if other.counts.len() > self.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// Values counted.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// Whether no value was counted.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The `q`-quantile by nearest rank (the smallest value with at least
    /// `q` of the values at or below it, as `timers` computes it), reported
    /// as the middle of its bucket and never above the maximum. `None` when
    /// empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (low, width) = bucket(i);
                return Some((low + width / 2).min(self.max));
            }
        }
        unreachable!("the counts add up to the total")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_narrow() {
        let mut last = 0;
        for v in [0, 1, 127, 128, 129, 255, 256, 1_000, 1 << 20, u64::MAX] {
            let i = index(v);
            assert!(i >= last, "indices grow with values");
            last = i;
            let (low, width) = bucket(i);
            assert!(
                low <= v && v - low < width,
                "{v} in bucket {i} = {low}+{width}"
            );
            assert!(
                width == 1 || width * 64 <= low,
                "at most 1/64 of its values"
            );
        }
        assert_eq!(
            [index(127), index(128), index(255), index(256)],
            [127, 128, 191, 192]
        );
        // Every bucket starts where the previous one ended.
        for i in 1..2_000 {
            let (prev, width) = bucket(i - 1);
            assert_eq!(bucket(i).0, prev + width, "bucket {i}");
        }
    }

    #[test]
    fn quantiles_match_the_nearest_rank_within_a_bucket() {
        let mut h = Histogram::new();
        assert_eq!(h.quantile(0.5), None);
        for v in 1..=100 {
            h.record(v);
        }
        // Exact range: the same answers as timers' sorted-vector quantile.
        assert_eq!(h.quantile(0.5), Some(50));
        assert_eq!(h.quantile(0.99), Some(99));
        assert_eq!(h.quantile(1.0), Some(100));
        let mut big = Histogram::new();
        for v in 0..10_000u64 {
            big.record(v * 1_000);
        }
        let p99 = big.quantile(0.99).unwrap() as f64;
        let want = 9_899_000.0;
        assert!((p99 - want).abs() / want < 0.01, "{p99}");
        assert_eq!(big.quantile(1.0), Some(9_999_000));
    }

    #[test]
    fn merging_adds_counts() {
        let (mut a, mut b) = (Histogram::new(), Histogram::new());
        a.record(5);
        b.record(1_000_000);
        b.record(7);
        a.merge(&b);
        assert_eq!((a.len(), a.quantile(1.0)), (3, Some(1_000_000)));
        assert_eq!(a.quantile(0.5), Some(7));
        assert!(!a.is_empty() && Histogram::new().is_empty());
    }
}
