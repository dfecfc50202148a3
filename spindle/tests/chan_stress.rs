//! Channel stress: millions of messages between many producers and
//! consumers, every one accounted for. In the spirit of Go's
//! `src/runtime/chan_test.go` TestChan (its 4 × 4 "receive what we send"
//! part) and crossbeam-channel's `tests/{zero,array,list}.rs` mpmc, scaled
//! up.
//!
//! Each message is a distinct id. Producer `p` of `P` sends ids `p`,
//! `p + P`, `p + 2P`, ... so the id names its producer and its place in
//! that producer's sequence. Consumers mark each id in a shared bitmap
//! (`fetch_or`: a bit already set is a duplicate) and check that, per
//! producer, the ids *they* receive increase (the channel is FIFO, so
//! two values of one producer taken by one consumer come out in the order
//! they went in). At the end every bit is set and the counts add up
//! exactly.
//!
//! Coroutines move 2,000,000 messages per flavor; plain OS threads, which
//! park through the kernel for every rendezvous, 200,000. Every scenario
//! runs from coroutines (1, 2 and 4 workers) and from OS threads
//! (`common::each_mode`).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use common::Mode;
use spindle::channel::{Receiver, RecvError, Sender, bounded, never, unbounded};
use spindle::select;

/// A scenario still running after this long is a hang, not a slow test.
const LIMIT: Duration = Duration::from_secs(120);

const PRODUCERS: usize = 4;
const CONSUMERS: usize = 4;

/// Messages per scenario.
fn total(mode: Mode) -> usize {
    if mode.is_coroutines() {
        2_000_000
    } else {
        200_000
    }
}

/// One bit per message id: set when the id is received.
struct Seen {
    words: Vec<AtomicU64>,
    total: usize,
}

impl Seen {
    fn new(total: usize) -> Arc<Seen> {
        Arc::new(Seen {
            words: (0..total.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
            total,
        })
    }

    /// Marks `id`; panics if it was already marked (a duplicate).
    fn mark(&self, id: usize) {
        assert!(id < self.total, "id {id} was never sent");
        let bit = 1u64 << (id % 64);
        let before = self.words[id / 64].fetch_or(bit, Relaxed);
        assert!(before & bit == 0, "id {id} received twice");
    }

    /// Panics unless every id was marked.
    fn assert_complete(&self) {
        for (i, w) in self.words.iter().enumerate() {
            let want = if (i + 1) * 64 <= self.total {
                u64::MAX
            } else {
                (1u64 << (self.total % 64)) - 1
            };
            let missing = want & !w.load(Relaxed);
            assert!(
                missing == 0,
                "id {} never arrived",
                i * 64 + missing.trailing_zeros() as usize
            );
        }
    }
}

/// A consumer's record: what it saw, checking per-producer order.
struct Tally {
    seen: Arc<Seen>,
    last: [Option<usize>; PRODUCERS],
    count: usize,
}

impl Tally {
    fn new(seen: Arc<Seen>) -> Tally {
        Tally {
            seen,
            last: [None; PRODUCERS],
            count: 0,
        }
    }

    fn take(&mut self, id: usize) {
        self.seen.mark(id);
        let (p, seq) = (id % PRODUCERS, id / PRODUCERS);
        if let Some(prev) = self.last[p] {
            assert!(seq > prev, "producer {p}: {seq} received after {prev}");
        }
        self.last[p] = Some(seq);
        self.count += 1;
    }
}

/// The ids producer `p` sends, in order.
fn ids(p: usize, total: usize) -> impl Iterator<Item = usize> {
    (p..total).step_by(PRODUCERS)
}

/// PRODUCERS × CONSUMERS over one channel made by `make`: plain `send`
/// and `recv`, consumers running until the channel disconnects.
fn mpmc(mode: Mode, make: fn() -> (Sender<usize>, Receiver<usize>)) {
    let total = total(mode);
    let seen = Seen::new(total);
    let (s, r) = make();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let s = s.clone();
            mode.spawn(move || {
                for id in ids(p, total) {
                    s.send(id).unwrap();
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|_| {
            let (r, seen) = (r.clone(), seen.clone());
            mode.spawn(move || {
                let mut tally = Tally::new(seen);
                for id in r {
                    tally.take(id);
                }
                tally.count
            })
        })
        .collect();
    drop((s, r));
    for p in producers {
        p.join().unwrap();
    }
    let received: usize = consumers.into_iter().map(|c| c.join().unwrap()).sum();
    assert_eq!(received, total);
    seen.assert_complete();
}

/// Go src/runtime/chan_test.go TestChan ("send 1000 integers in 4
/// goroutines, ensure that we receive what we send") and crossbeam-channel
/// tests/zero.rs mpmc, on a rendezvous channel: every message is a
/// hand-off between a parked and a running unit.
#[test]
fn mpmc_rendezvous() {
    common::each_mode(LIMIT, |mode| mpmc(mode, || bounded(0)));
}

/// As `mpmc_rendezvous`, on a one-slot channel (crossbeam-channel
/// tests/array.rs mpmc): producers and consumers park and refill through
/// a buffer that is almost always full or empty.
#[test]
fn mpmc_one_slot() {
    common::each_mode(LIMIT, |mode| mpmc(mode, || bounded(1)));
}

/// As `mpmc_rendezvous`, on a 16-slot channel (crossbeam-channel
/// tests/array.rs mpmc).
#[test]
fn mpmc_buffered() {
    common::each_mode(LIMIT, |mode| mpmc(mode, || bounded(16)));
}

/// As `mpmc_rendezvous`, on an unbounded channel (crossbeam-channel
/// tests/list.rs mpmc): only consumers ever park.
#[test]
fn mpmc_unbounded() {
    common::each_mode(LIMIT, |mode| mpmc(mode, unbounded));
}

/// Go src/runtime/chan_test.go TestSelectStress and crossbeam-channel
/// tests/select_macro.rs stress_mixed, with exact accounting: producers
/// offer each message to a rendezvous channel and a 16-slot channel at
/// once (a select with two send arms), consumers select over both. When a
/// channel disconnects, a consumer switches its arm off (`never()`, Go's
/// nil channel) and drains the other. Every message arrives exactly once,
/// exactly as many through each channel as went into it, and in producer
/// order per consumer and channel (across the two channels there is no
/// order: a buffered value may be overtaken by a later direct hand-off).
#[test]
fn select_mpmc() {
    common::each_mode(LIMIT, |mode| {
        let total = total(mode);
        let seen = Seen::new(total);
        let (zero_s, zero_r) = bounded::<usize>(0);
        let (buf_s, buf_r) = bounded::<usize>(16);
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let (zero_s, buf_s) = (zero_s.clone(), buf_s.clone());
                mode.spawn(move || {
                    let mut via = [0usize; 2];
                    for id in ids(p, total) {
                        select! {
                            send(zero_s, id) -> res => { res.unwrap(); via[0] += 1; }
                            send(buf_s, id) -> res => { res.unwrap(); via[1] += 1; }
                        }
                    }
                    via
                })
            })
            .collect();
        let consumers: Vec<_> = (0..CONSUMERS)
            .map(|_| {
                let (zero_r, buf_r, seen) = (zero_r.clone(), buf_r.clone(), seen.clone());
                mode.spawn(move || {
                    let nil = never::<usize>();
                    let mut tallies = [Tally::new(seen.clone()), Tally::new(seen)];
                    let mut open = [true, true];
                    while open[0] || open[1] {
                        let a = if open[0] { &zero_r } else { &nil };
                        let b = if open[1] { &buf_r } else { &nil };
                        select! {
                            recv(a) -> v => match v {
                                Ok(id) => tallies[0].take(id),
                                Err(RecvError) => open[0] = false,
                            },
                            recv(b) -> v => match v {
                                Ok(id) => tallies[1].take(id),
                                Err(RecvError) => open[1] = false,
                            },
                        }
                    }
                    [tallies[0].count, tallies[1].count]
                })
            })
            .collect();
        drop((zero_s, zero_r, buf_s, buf_r));
        let mut sent = [0usize; 2];
        for p in producers {
            let via = p.join().unwrap();
            sent[0] += via[0];
            sent[1] += via[1];
        }
        let mut received = [0usize; 2];
        for c in consumers {
            let got = c.join().unwrap();
            received[0] += got[0];
            received[1] += got[1];
        }
        assert_eq!(sent, received, "per channel: what went in came out");
        assert_eq!(received[0] + received[1], total);
        seen.assert_complete();
    });
}
