//! The min-heap `Fair` and `ShortestFirst` file coroutines in: least key
//! first, equal keys first come, first served (a push number breaks ties).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A min-heap of entries `E` by `(key, push number)`.
pub(crate) struct MinHeap<E> {
    heap: BinaryHeap<Keyed<E>>,
    /// Push counter, the tie-breaker.
    seq: u64,
}

/// An entry with its key; ordered by `(key, seq)` reversed, because
/// `BinaryHeap` is a max-heap.
struct Keyed<E> {
    key: u64,
    seq: u64,
    entry: E,
}

impl<E> Keyed<E> {
    fn order(&self) -> (u64, u64) {
        (self.key, self.seq)
    }
}

impl<E> PartialEq for Keyed<E> {
    fn eq(&self, other: &Self) -> bool {
        self.order() == other.order()
    }
}

impl<E> Eq for Keyed<E> {}

impl<E> PartialOrd for Keyed<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Keyed<E> {
    fn cmp(&self, other: &Self) -> Ordering {
        other.order().cmp(&self.order())
    }
}

impl<E> MinHeap<E> {
    pub(crate) fn new() -> MinHeap<E> {
        MinHeap {
            heap: BinaryHeap::new(),
            seq: 0,
        }
    }

    /// Files `entry` under `key`, after every entry already filed under it.
    pub(crate) fn push(&mut self, key: u64, entry: E) {
        self.seq += 1;
        self.heap.push(Keyed {
            key,
            seq: self.seq,
            entry,
        });
    }

    /// The entry with the least key, and that key.
    pub(crate) fn pop(&mut self) -> Option<(u64, E)> {
        self.heap.pop().map(|k| (k.key, k.entry))
    }

    /// The least key.
    pub(crate) fn peek_key(&self) -> Option<u64> {
        self.heap.peek().map(|k| k.key)
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Every key, in no order.
    #[cfg(test)]
    pub(crate) fn keys(&self) -> impl Iterator<Item = u64> + '_ {
        self.heap.iter().map(|k| k.key)
    }

    /// Removes every entry, in no order.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = E> + '_ {
        self.heap.drain().map(|k| k.entry)
    }

    /// Removes up to `max` entries for which `pred` holds, least key
    /// first (`RunQueue::take_if`). Rare (stealing, the monitor's rescue),
    /// so it rebuilds the heap.
    pub(crate) fn take_if(&mut self, mut pred: impl FnMut(&E) -> bool, max: usize) -> Vec<E> {
        let mut entries = std::mem::take(&mut self.heap).into_vec();
        entries.sort_unstable_by_key(Keyed::order);
        let mut taken = Vec::new();
        let mut keep = Vec::with_capacity(entries.len());
        for k in entries {
            if taken.len() < max && pred(&k.entry) {
                taken.push(k.entry);
            } else {
                keep.push(k);
            }
        }
        self.heap = BinaryHeap::from(keep);
        taken
    }
}
