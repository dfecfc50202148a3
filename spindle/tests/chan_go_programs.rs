//! Go's channel programs (`test/chan/*.go`, `test/ken/chan1.go`),
//! re-expressed for spindle's channels: the scenarios, not the code. Each
//! test names its source program; every scenario runs from coroutines (1,
//! 2 and 4 workers) and from plain OS threads (`common::each_mode`).
//!
//! Go's programs may leave goroutines blocked forever when `main` returns;
//! here every pipeline shuts down instead, the Rust way: when the consumer
//! drops its `Receiver`, the stage feeding it gets `SendError`, returns
//! and drops its own `Receiver`, and so on upstream. Every unit is joined,
//! so these tests also check that disconnection wakes parked senders and
//! receivers at every stage.
//!
//! The `select!` programs (`select*.go`) live in `select_go.rs`; Go's
//! `perm.go` (compile-time channel directions) and `powser*.go` (power
//! series, a long-running benchmark) are not re-expressed.

mod common;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering::SeqCst};
use std::time::Duration;

use common::{Mode, Unit};
use spindle::channel::{Receiver, RecvError, Sender, TryRecvError, bounded, unbounded};
use spindle::select;

/// A scenario still running after this long is a hang, not a slow test.
const LIMIT: Duration = Duration::from_secs(60);

/// `coroutines` when units are coroutines, `threads` for OS threads.
fn per_mode(mode: Mode, coroutines: usize, threads: usize) -> usize {
    if mode.is_coroutines() {
        coroutines
    } else {
        threads
    }
}

/// The first `n` primes, by trial division (the reference answer).
fn first_primes(n: usize) -> Vec<u64> {
    let mut primes: Vec<u64> = Vec::with_capacity(n);
    let mut k = 2;
    while primes.len() < n {
        if primes
            .iter()
            .take_while(|&&p| p * p <= k)
            .all(|&p| k % p != 0)
        {
            primes.push(k);
        }
        k += 1;
    }
    primes
}

fn join_all<T>(units: Vec<Unit<T>>) {
    for u in units {
        u.join().unwrap();
    }
}

/// Go test/chan/sieve1.go: the concurrent prime sieve. A generator sends
/// 2, 3, 4, ...; every prime found starts a filter unit that removes its
/// multiples from the stream, chained through one-slot channels. Go's
/// version checks the first 25 primes; coroutines take the first 300
/// (300 filter units). Dropping the primes receiver then shuts the whole
/// chain down through disconnection.
#[test]
fn sieve1() {
    fn generate(out: Sender<u64>) {
        let mut i = 2;
        while out.send(i).is_ok() {
            i += 1;
        }
    }

    fn filter(input: Receiver<u64>, out: Sender<u64>, prime: u64) {
        for i in input {
            if i % prime != 0 && out.send(i).is_err() {
                return;
            }
        }
    }

    fn sieve(mode: Mode, primes: Sender<u64>) {
        let (s, mut r) = bounded(1);
        let mut units = vec![mode.spawn(move || generate(s))];
        loop {
            let prime = r.recv().expect("the chain only stops when we drop it");
            if primes.send(prime).is_err() {
                break;
            }
            let (s1, r1) = bounded(1);
            let input = std::mem::replace(&mut r, r1);
            units.push(mode.spawn(move || filter(input, s1, prime)));
        }
        // The last filter (or the generator) now fails its next send,
        // returns and drops its input: the chain folds up front to back.
        drop(r);
        join_all(units);
    }

    common::each_mode(LIMIT, |mode| {
        let want = first_primes(per_mode(mode, 300, 25));
        let (s, r) = bounded(1);
        let sieve = mode.spawn(move || sieve(mode, s));
        let got: Vec<u64> = r.iter().take(want.len()).collect();
        assert_eq!(got, want);
        drop(r);
        sieve.join().unwrap();
    });
}

/// Go test/chan/sieve2.go: an Eratosthenes sieve over odd numbers. One
/// unit merges the multiples of every prime found so far (one generator
/// unit per prime, merged through a min-heap) into a stream of
/// composites; another walks the odd candidates against that stream and
/// reports the survivors, feeding each one back to the merger through a
/// proxy unit whose `select!` has a send arm that is disabled while its
/// buffer is empty (Go's nil channel). The feedback loop would deadlock
/// without the proxy's unbounded buffer.
#[test]
fn sieve2() {
    /// Sends start, start + step, ... until the receiver goes away.
    fn progression(mode: Mode, start: u64, step: u64, cap: usize) -> (Receiver<u64>, Unit<()>) {
        let (s, r) = bounded(cap);
        let unit = mode.spawn(move || {
            let mut n = start;
            while s.send(n).is_ok() {
                n += step;
            }
        });
        (r, unit)
    }

    /// A sender that never blocks its user: values wait in the proxy's own
    /// queue until `out` takes them.
    fn send_proxy(mode: Mode, out: Sender<u64>) -> (Sender<u64>, Unit<()>) {
        let (proxy_s, proxy_r) = bounded::<u64>(10);
        let unit = mode.spawn(move || {
            let mut queue = VecDeque::new();
            // Go's nil channel: never ready while the queue is empty.
            let (nil, _keep) = bounded::<u64>(0);
            loop {
                let head = queue.front().copied();
                let target = if head.is_some() { &out } else { &nil };
                select! {
                    recv(proxy_r) -> v => match v {
                        Ok(v) => queue.push_back(v),
                        Err(RecvError) => return,
                    },
                    send(target, head.unwrap_or(0)) -> res => {
                        if res.is_err() {
                            return;
                        }
                        queue.pop_front();
                    }
                }
            }
        });
        (proxy_s, unit)
    }

    /// Merges the odd multiples (from p*p on) of every prime received into
    /// one increasing, duplicate-free stream of composites. When prime p
    /// arrives, every composite up to p*p has a prime factor at most p, so
    /// everything up to p*p in the heap is final and can be sent.
    fn merge(mode: Mode, primes: Receiver<u64>, composites: Sender<u64>) {
        let mut streams = Vec::new();
        let mut generators = Vec::new();
        let mut heap = BinaryHeap::new();
        let mut last = 0;
        'run: for p in &primes {
            let (m, unit) = progression(mode, p * p, 2 * p, 10);
            generators.push(unit);
            heap.push(Reverse((p * p, streams.len())));
            streams.push(m);
            while let Some(&Reverse((c, i))) = heap.peek() {
                if c > p * p {
                    break;
                }
                heap.pop();
                if c != last {
                    if composites.send(c).is_err() {
                        break 'run;
                    }
                    last = c;
                }
                let Ok(next) = streams[i].recv() else {
                    break 'run;
                };
                heap.push(Reverse((next, i)));
            }
        }
        drop(streams);
        join_all(generators);
    }

    /// Walks the odd candidates from 5 against the composites; survivors
    /// are primes, sent to `out` and fed back to the merger.
    fn sift(mode: Mode, composites: Receiver<u64>, feedback: Sender<u64>, out: Sender<u64>) {
        let (feedback, proxy) = send_proxy(mode, feedback);
        let (candidates, odds) = progression(mode, 5, 2, 50);
        let mut p = candidates.recv().unwrap();
        'run: for c in &composites {
            while p < c {
                if feedback.send(p).is_err() || out.send(p).is_err() {
                    break 'run;
                }
                p = candidates.recv().unwrap();
            }
            if p == c {
                p = candidates.recv().unwrap();
            }
        }
        drop((feedback, candidates));
        join_all(vec![proxy, odds]);
    }

    common::each_mode(LIMIT, |mode| {
        let want = first_primes(1000);
        let (out_s, out_r) = bounded(10);
        out_s.send(2).unwrap();
        out_s.send(3).unwrap();
        let (composites_s, composites_r) = bounded(50);
        let (primes_s, primes_r) = bounded(10);
        primes_s.send(3).unwrap();
        let merger = mode.spawn(move || merge(mode, primes_r, composites_s));
        let sifter = mode.spawn(move || sift(mode, composites_r, primes_s, out_s));
        let got: Vec<u64> = out_r.iter().take(want.len()).collect();
        assert_eq!(got, want);
        // Shutdown: the sifter fails to send, and every other stage
        // follows through disconnection.
        drop(out_r);
        sifter.join().unwrap();
        merger.join().unwrap();
    });
}

/// Go test/chan/fifo.go AsynchFifo: values sent into a buffered channel
/// come out in order.
#[test]
fn fifo_asynchronous() {
    common::each_mode(LIMIT, |mode| {
        let n = per_mode(mode, 10_000, 1_000);
        let (s, r) = bounded(n);
        for i in 0..n {
            s.send(i).unwrap();
        }
        for i in 0..n {
            assert_eq!(r.recv(), Ok(i));
        }
    });
}

/// Go test/chan/fifo.go SynchFifo: a chain of units, each waiting for its
/// predecessor's token before receiving from a shared rendezvous channel;
/// unit i must receive exactly value i.
#[test]
fn fifo_synchronous() {
    common::each_mode(LIMIT, |mode| {
        let n = per_mode(mode, 1_000, 50);
        let (s, r) = bounded::<usize>(0);
        let (start, mut token) = bounded::<()>(0);
        let mut units = Vec::new();
        for i in 0..n {
            let (next_s, next_r) = bounded::<()>(0);
            let (r, input) = (r.clone(), std::mem::replace(&mut token, next_r));
            units.push(mode.spawn(move || {
                input.recv().unwrap();
                assert_eq!(r.recv(), Ok(i));
                next_s.send(()).unwrap();
            }));
        }
        start.send(()).unwrap();
        for i in 0..n {
            s.send(i).unwrap();
        }
        token.recv().unwrap();
        join_all(units);
    });
}

/// Go test/chan/goroutines.go: a chain of units, each passing one value
/// from its right neighbour to its left; a value sent at the right end
/// must come out at the left. Go builds 10,000 goroutines.
#[test]
fn goroutine_chain() {
    common::each_mode(LIMIT, |mode| {
        let n = per_mode(mode, 10_000, 200);
        let (leftmost_s, leftmost_r) = bounded::<u32>(0);
        let mut left = leftmost_s;
        let mut units = Vec::with_capacity(n);
        for _ in 0..n {
            let (right_s, right_r) = bounded::<u32>(0);
            let l = std::mem::replace(&mut left, right_s);
            units.push(mode.spawn(move || l.send(right_r.recv().unwrap()).unwrap()));
        }
        left.send(1).unwrap();
        assert_eq!(leftmost_r.recv(), Ok(1));
        join_all(units);
    });
}

/// Go test/chan/nonblock.go: for a rendezvous and a one-slot channel of
/// several element types, non-blocking operations retried in a loop
/// (here: `select!` with `default`) eventually pair with a blocking
/// receiver or sender in another unit, and deliver the right value. The
/// retry loop has no bound of its own (a hang fails the scenario limit).
#[test]
fn nonblock() {
    fn pause() {
        spindle::yield_now();
        spindle::sleep(Duration::from_micros(20));
    }

    fn round<T>(mode: Mode, buffer: usize, to_receiver: T, from_sender: T)
    where
        T: Clone + PartialEq + Debug + Send + 'static,
    {
        let (s, r) = bounded::<T>(buffer);
        let (sync_s, sync_r) = bounded::<()>(0);
        select! {
            recv(r) -> v => panic!("received {v:?} before anyone sent"),
            default => {}
        }

        // A blocking receiver, and non-blocking sends until one lands.
        let receiver = {
            let (r, sync_s, want) = (r.clone(), sync_s.clone(), to_receiver.clone());
            mode.spawn(move || {
                assert_eq!(r.recv(), Ok(want));
                sync_s.send(()).unwrap();
            })
        };
        loop {
            select! {
                send(s, to_receiver.clone()) -> res => { res.unwrap(); break; }
                default => pause(),
            }
        }
        sync_r.recv().unwrap();
        receiver.join().unwrap();

        // A blocking sender, and non-blocking receives until one lands.
        let sender = {
            let (s, want) = (s.clone(), from_sender.clone());
            mode.spawn(move || {
                s.send(want).unwrap();
                sync_s.send(()).unwrap();
            })
        };
        if buffer > 0 {
            // The send completes into the buffer on its own.
            sync_r.recv().unwrap();
        }
        loop {
            select! {
                recv(r) -> v => { assert_eq!(v, Ok(from_sender.clone())); break; }
                default => pause(),
            }
        }
        if buffer == 0 {
            sync_r.recv().unwrap();
        }
        sender.join().unwrap();
    }

    common::each_mode(LIMIT, |mode| {
        for buffer in 0..2 {
            round::<i32>(mode, buffer, 123, 234);
            round::<i64>(mode, buffer, 123_456, 234_567);
            round::<bool>(mode, buffer, true, true);
            round::<String>(mode, buffer, "hello".into(), "hello again".into());
        }
    });
}

/// Go test/chan/doubleselect.go: a sender selects over four rendezvous
/// channels for each value; four mux units forward what they get to one
/// channel. If two arms of one select could both fire, a value would
/// arrive twice. Every value must arrive exactly once.
#[test]
fn double_select() {
    common::each_mode(LIMIT, |mode| {
        let n = per_mode(mode, 20_000, 5_000);
        let (c1, r1) = bounded::<usize>(0);
        let (c2, r2) = bounded::<usize>(0);
        let (c3, r3) = bounded::<usize>(0);
        let (c4, r4) = bounded::<usize>(0);
        let (mux_s, mux_r) = bounded::<usize>(0);
        let mut units = Vec::new();
        for r in [r1, r2, r3, r4] {
            let out = mux_s.clone();
            units.push(mode.spawn(move || {
                for v in r {
                    out.send(v).unwrap();
                }
            }));
        }
        drop(mux_s);
        units.push(mode.spawn(move || {
            for i in 0..n {
                select! {
                    send(c1, i) -> res => res.unwrap(),
                    send(c2, i) -> res => res.unwrap(),
                    send(c3, i) -> res => res.unwrap(),
                    send(c4, i) -> res => res.unwrap(),
                }
            }
            // Dropping c1..c4 ends the muxes, which closes `mux`.
        }));
        let mut seen = vec![false; n];
        for v in mux_r {
            assert!(!seen[v], "got duplicate value {v}");
            seen[v] = true;
        }
        assert!(seen.iter().all(|&s| s), "values went missing");
        join_all(units);
    });
}

/// Go test/chan/zerosize.go: channels of zero-sized types can be made
/// (Go's whole test), and, going further, carry exact counts of values in
/// every flavor, with `len` counting them.
#[test]
fn zero_sized_messages() {
    common::each_mode(LIMIT, |mode| {
        let _ = bounded::<[u8; 0]>(0);
        let _ = bounded::<[u8; 0]>(1);
        let _ = bounded::<()>(0);
        let _ = bounded::<()>(1);

        for ((s, r), n) in [
            (bounded::<()>(16), 16),
            (bounded(1000), 1000),
            (unbounded(), 1000),
        ] {
            for _ in 0..n {
                s.send(()).unwrap();
            }
            assert_eq!((s.len(), r.len()), (n, n));
            assert_eq!(r.try_iter().count(), n);
            assert_eq!(r.try_recv(), Err(TryRecvError::Empty));
        }

        let (s, r) = bounded::<[u8; 0]>(0);
        let producer = mode.spawn(move || {
            for _ in 0..1000 {
                s.send([]).unwrap();
            }
        });
        assert_eq!(r.iter().count(), 1000);
        producer.join().unwrap();
    });
}

/// Go test/chan/sendstmt.go chanchan: a select arm sends on a channel
/// that was itself just received from a channel of channels.
#[test]
fn send_on_received_channel() {
    common::each_mode(LIMIT, |_mode| {
        let (cc_s, cc_r) = bounded::<Sender<i32>>(1);
        let (s, r) = bounded::<i32>(1);
        cc_s.send(s).unwrap();
        select! {
            send(cc_r.recv().unwrap(), 2) -> res => res.unwrap(),
            default => panic!("nonblock"),
        }
        assert_eq!(r.recv(), Ok(2));
    });
}

/// Go test/ken/chan1.go: ten receivers select on one channel with a
/// two-slot buffer; the sender marks each value "sent" before sending it
/// and each receiver marks it "received", checking it was marked sent
/// and never received before.
#[test]
fn ken_chan1() {
    const N: usize = 1000;
    const M: usize = 10;
    const W: usize = 2;
    common::each_mode(LIMIT, |mode| {
        let marks: Arc<Vec<AtomicU8>> = Arc::new((0..N).map(|_| AtomicU8::new(0)).collect());
        let (s, r) = bounded::<usize>(W);
        let receivers: Vec<_> = (0..M)
            .map(|_| {
                let (r, marks) = (r.clone(), marks.clone());
                mode.spawn(move || {
                    let mut got = 0;
                    loop {
                        select! {
                            recv(r) -> v => match v {
                                Ok(v) => {
                                    let was = marks[v].swap(2, SeqCst);
                                    assert_eq!(was, 1, "value {v} received in state {was}");
                                    got += 1;
                                }
                                Err(RecvError) => return got,
                            }
                        }
                    }
                })
            })
            .collect();
        drop(r);
        for (v, mark) in marks.iter().enumerate() {
            assert_eq!(mark.swap(1, SeqCst), 0);
            s.send(v).unwrap();
        }
        drop(s);
        let total: usize = receivers.into_iter().map(|u| u.join().unwrap()).sum();
        assert_eq!(total, N);
        assert!(marks.iter().all(|m| m.load(SeqCst) == 2));
    });
}
