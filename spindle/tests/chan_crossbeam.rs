//! crossbeam-channel's per-flavor tests (`tests/zero.rs`, `tests/array.rs`,
//! `tests/list.rs`, with `tests/iter.rs` and `tests/same_channel.rs`),
//! re-expressed for spindle's channels: the scenarios, not the code. This
//! file has the single operations (their blocking, timeouts, errors,
//! disconnection, `len`/`capacity`, iterators); the many-unit scenarios
//! (spsc, mpmc, drops, stress) are in `chan_crossbeam_mpmc.rs`. Each test
//! names its source; every scenario runs from coroutines (1, 2 and 4
//! workers) and from plain OS threads (`common::each_mode`), and most of
//! them over every flavor: rendezvous (`bounded(0)`, crossbeam's "zero"),
//! buffered (`bounded(n)`, "array") and `unbounded` ("list").
//!
//! crossbeam orders events with sleeps of up to 1.5 s; here the order
//! comes from channels and joins. A sleep is used only where the claim is
//! "this has *not* happened" (a send to a full channel has not returned),
//! which holds however long the sleep. Timeouts are asserted only as
//! "returned after at least the timeout". crossbeam's `golang.rs` is
//! covered by `chan_go.rs`, `chan_go_programs.rs` and `select_go.rs`; its
//! `select*.rs` by `select.rs` and `select_races.rs`; its `after.rs`,
//! `tick.rs` and `never.rs` by `chan_time.rs`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::{Duration, Instant};

use common::Mode;
use spindle::channel::{
    Receiver, RecvError, RecvTimeoutError, SendError, SendTimeoutError, Sender, TryRecvError,
    TrySendError, bounded, unbounded,
};

/// A scenario still running after this long is a hang, not a slow test.
const LIMIT: Duration = Duration::from_secs(60);

/// A timeout no correct scenario gets near.
const FOREVER: Duration = Duration::from_secs(30);

/// crossbeam's three channel implementations, as spindle spells them.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Flavor {
    /// `bounded(0)`: every value passes hand to hand.
    Zero,
    /// `bounded(n)`, n > 0.
    Array(usize),
    /// `unbounded()`.
    List,
}

use Flavor::{Array, List, Zero};

const FLAVORS: [Flavor; 4] = [Zero, Array(1), Array(16), List];

fn chan<T>(f: Flavor) -> (Sender<T>, Receiver<T>) {
    match f {
        Zero => bounded(0),
        Array(n) => bounded(n),
        List => unbounded(),
    }
}

/// How many values `f` buffers (`usize::MAX`: no limit).
fn room(f: Flavor) -> usize {
    match f {
        Zero => 0,
        Array(n) => n,
        List => usize::MAX,
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `coroutines` when units are coroutines, `threads` for OS threads.
fn per_mode(mode: Mode, coroutines: usize, threads: usize) -> usize {
    if mode.is_coroutines() {
        coroutines
    } else {
        threads
    }
}

/// Receives with `try_recv`, yielding between attempts, until a value or
/// a disconnection arrives (a unit to pair with must first park).
fn try_recv_until_ready<T>(r: &Receiver<T>) -> Result<T, TryRecvError> {
    loop {
        match r.try_recv() {
            Err(TryRecvError::Empty) => spindle::yield_now(),
            other => return other,
        }
    }
}

/// crossbeam-channel tests/{zero,array,list}.rs smoke: a non-blocking
/// send succeeds only where there is room (never on a rendezvous channel
/// with nobody receiving), and the value comes back out.
#[test]
fn smoke() {
    common::each_mode(LIMIT, |_mode| {
        for f in FLAVORS {
            let (s, r) = chan::<i32>(f);
            if f == Zero {
                assert_eq!(s.try_send(7), Err(TrySendError::Full(7)));
                assert_eq!(r.try_recv(), Err(TryRecvError::Empty));
            } else {
                s.try_send(7).unwrap();
                assert_eq!(r.try_recv(), Ok(7));
                s.send(8).unwrap();
                assert_eq!(r.recv(), Ok(8));
                assert_eq!(r.try_recv(), Err(TryRecvError::Empty));
            }
        }
    });
}

/// crossbeam-channel tests/{zero,array,list}.rs capacity.
#[test]
fn capacity() {
    common::each_mode(LIMIT, |_mode| {
        for cap in 0..10 {
            let (s, r) = bounded::<()>(cap);
            assert_eq!((s.capacity(), r.capacity()), (Some(cap), Some(cap)));
        }
        let (s, r) = unbounded::<()>();
        assert_eq!((s.capacity(), r.capacity()), (None, None));
    });
}

/// crossbeam-channel tests/{zero,array,list}.rs len_empty_full: a
/// rendezvous channel is always empty and always full; a buffered one
/// goes from empty to full and back; an unbounded one is never full.
#[test]
fn len_empty_full() {
    common::each_mode(LIMIT, |mode| {
        let (s, r) = bounded::<i32>(0);
        let check_zero = |s: &Sender<i32>, r: &Receiver<i32>| {
            assert_eq!((s.len(), r.len()), (0, 0));
            assert!(s.is_empty() && r.is_empty() && s.is_full() && r.is_full());
        };
        check_zero(&s, &r);
        let unit = {
            let s = s.clone();
            mode.spawn(move || s.send(0).unwrap())
        };
        assert_eq!(r.recv(), Ok(0));
        unit.join().unwrap();
        check_zero(&s, &r);

        let (s, r) = bounded::<i32>(2);
        let state = |s: &Sender<i32>| (s.len(), s.is_empty(), s.is_full());
        assert_eq!(state(&s), (0, true, false));
        s.send(0).unwrap();
        assert_eq!(state(&s), (1, false, false));
        s.send(0).unwrap();
        assert_eq!(state(&s), (2, false, true));
        assert_eq!((r.len(), r.is_empty(), r.is_full()), (2, false, true));
        r.recv().unwrap();
        assert_eq!(state(&s), (1, false, false));

        let (s, r) = unbounded::<i32>();
        assert_eq!(state(&s), (0, true, false));
        for _ in 0..1000 {
            s.send(0).unwrap();
        }
        assert_eq!(state(&s), (1000, false, false));
        assert_eq!((r.len(), r.is_full()), (1000, false));
    });
}

/// crossbeam-channel tests/zero.rs len: under a steady stream through a
/// rendezvous channel, `len` is 0 on both sides at every moment.
#[test]
fn zero_len_stays_zero() {
    common::each_mode(LIMIT, |mode| {
        let count = per_mode(mode, 25_000, 5_000);
        let (s, r) = bounded::<usize>(0);
        let receiver = {
            let r = r.clone();
            mode.spawn(move || {
                for i in 0..count {
                    assert_eq!(r.recv(), Ok(i));
                    assert_eq!(r.len(), 0);
                }
            })
        };
        for i in 0..count {
            s.send(i).unwrap();
            assert_eq!(s.len(), 0);
        }
        receiver.join().unwrap();
        assert_eq!((s.len(), r.len()), (0, 0));
    });
}

/// crossbeam-channel tests/{zero,array,list}.rs try_recv: nothing yet,
/// then a value from a sender (a parked one, on a rendezvous channel),
/// then the disconnection once the sender is gone.
#[test]
fn try_recv() {
    common::each_mode(LIMIT, |mode| {
        for f in FLAVORS {
            let (s, r) = chan::<i32>(f);
            assert_eq!(r.try_recv(), Err(TryRecvError::Empty));
            let sender = mode.spawn(move || s.send(7).unwrap());
            assert_eq!(try_recv_until_ready(&r), Ok(7), "{f:?}");
            sender.join().unwrap();
            assert_eq!(r.try_recv(), Err(TryRecvError::Disconnected));
        }
    });
}

/// crossbeam-channel tests/{zero,array,list}.rs recv: values sent with
/// pauses in between arrive in order to a blocked receiver, then the
/// disconnection.
#[test]
fn recv() {
    common::each_mode(LIMIT, |mode| {
        for f in FLAVORS {
            let (s, r) = chan::<i32>(f);
            let sender = mode.spawn(move || {
                for v in [7, 8, 9] {
                    spindle::sleep(ms(1));
                    s.send(v).unwrap();
                }
            });
            assert_eq!(r.recv(), Ok(7));
            assert_eq!(r.recv(), Ok(8));
            assert_eq!(r.recv(), Ok(9));
            assert_eq!(r.recv(), Err(RecvError));
            sender.join().unwrap();
        }
    });
}

/// crossbeam-channel tests/{zero,array,list}.rs recv_timeout: an empty
/// channel times out (no earlier than the timeout) and the timed-out
/// receive takes nothing sent afterwards; a value arriving in time is
/// received; a disconnection is reported as such.
#[test]
fn recv_timeout() {
    common::each_mode(LIMIT, |mode| {
        for f in FLAVORS {
            let (s, r) = chan::<i32>(f);
            let start = Instant::now();
            assert_eq!(r.recv_timeout(ms(10)), Err(RecvTimeoutError::Timeout));
            assert!(start.elapsed() >= ms(10));
            // The timed-out receiver is gone from the channel.
            if f == Zero {
                assert_eq!(s.try_send(1), Err(TrySendError::Full(1)));
            } else {
                s.send(1).unwrap();
                assert_eq!(r.try_recv(), Ok(1));
            }
            let sender = mode.spawn(move || {
                spindle::sleep(ms(1));
                s.send(7).unwrap();
            });
            assert_eq!(r.recv_timeout(FOREVER), Ok(7));
            sender.join().unwrap();
            assert_eq!(r.recv_timeout(FOREVER), Err(RecvTimeoutError::Disconnected));
            assert_eq!(
                r.recv_deadline(Instant::now()),
                Err(RecvTimeoutError::Disconnected)
            );
        }
    });
}

/// crossbeam-channel tests/{zero,array,list}.rs try_send: succeeds while
/// there is room (on a rendezvous channel: only while a receiver is
/// parked), then reports the receivers' disconnection with the value.
#[test]
fn try_send() {
    common::each_mode(LIMIT, |mode| {
        for f in FLAVORS {
            let (s, r) = chan::<usize>(f);
            for i in 0..room(f).min(100) {
                s.try_send(i).unwrap();
            }
            if f != List {
                assert_eq!(s.try_send(100), Err(TrySendError::Full(100)), "{f:?}");
            }
            let expected = room(f).min(100);
            let receiver = mode.spawn(move || {
                for i in 0..expected {
                    assert_eq!(r.recv(), Ok(i));
                }
                // One more, through a parked receive.
                assert_eq!(r.recv(), Ok(1000));
            });
            loop {
                match s.try_send(1000) {
                    Ok(()) => break,
                    Err(TrySendError::Full(_)) => spindle::yield_now(),
                    Err(e) => panic!("{e:?}"),
                }
            }
            receiver.join().unwrap();
            assert_eq!(s.try_send(9), Err(TrySendError::Disconnected(9)));
        }
    });
}

/// crossbeam-channel tests/{zero,array,list}.rs send: a send to a full
/// channel (any send to a rendezvous channel) does not return until a
/// receiver takes a value; it then completes.
#[test]
fn send_blocks_until_received() {
    common::each_mode(LIMIT, |mode| {
        for f in [Zero, Array(1), Array(16)] {
            let (s, r) = chan::<usize>(f);
            for i in 0..room(f) {
                s.send(i).unwrap();
            }
            let returned = Arc::new(AtomicBool::new(false));
            let sender = {
                let returned = returned.clone();
                mode.spawn(move || {
                    s.send(usize::MAX).unwrap();
                    returned.store(true, SeqCst);
                })
            };
            spindle::sleep(ms(5));
            assert!(
                !returned.load(SeqCst),
                "{f:?}: send to a full channel returned"
            );
            let first = r.recv().unwrap();
            assert_eq!(first, if f == Zero { usize::MAX } else { 0 });
            sender.join().unwrap();
            assert!(returned.load(SeqCst));
            let rest: Vec<usize> = r.iter().collect();
            let want: Vec<usize> = match f {
                Zero => vec![],
                _ => (1..room(f)).chain([usize::MAX]).collect(),
            };
            assert_eq!(rest, want, "{f:?}");
        }
    });
}

/// crossbeam-channel tests/{zero,array,list}.rs send_timeout: a send that
/// cannot complete times out (no earlier than the timeout), gives its
/// value back and leaves nothing in the channel; a receiver arriving in
/// time takes the value; with the receivers gone the value comes back as
/// `Disconnected`.
#[test]
fn send_timeout() {
    common::each_mode(LIMIT, |mode| {
        for f in [Zero, Array(1), Array(16)] {
            let (s, r) = chan::<usize>(f);
            for i in 0..room(f) {
                s.send(i).unwrap();
            }
            let start = Instant::now();
            assert_eq!(s.send_timeout(7, ms(10)), Err(SendTimeoutError::Timeout(7)));
            assert!(start.elapsed() >= ms(10));
            assert_eq!(r.len(), room(f), "the timed-out value is not in the buffer");
            let n = room(f) + 1;
            let receiver = mode.spawn(move || {
                spindle::sleep(ms(1));
                r.iter().take(n).collect::<Vec<usize>>()
            });
            assert_eq!(s.send_timeout(8, FOREVER), Ok(()));
            let got = receiver.join().unwrap();
            let want: Vec<usize> = (0..room(f)).chain([8]).collect();
            assert_eq!(got, want, "{f:?}");
            // The receiver is gone with its unit.
            assert_eq!(
                s.send_timeout(9, FOREVER),
                Err(SendTimeoutError::Disconnected(9))
            );
            assert_eq!(
                s.send_deadline(10, Instant::now()),
                Err(SendTimeoutError::Disconnected(10))
            );
        }
        // Unbounded: never full, never times out.
        let (s, r) = unbounded::<usize>();
        assert_eq!(s.send_timeout(1, Duration::ZERO), Ok(()));
        assert_eq!(r.try_recv(), Ok(1));
    });
}

/// crossbeam-channel tests/{zero,array,list}.rs disconnect_wakes_sender,
/// disconnect_wakes_receiver: a parked send returns its value once the
/// last receiver is dropped; a parked receive fails once the last sender
/// is dropped.
#[test]
fn disconnect_wakes_parked_parties() {
    common::each_mode(LIMIT, |mode| {
        for f in [Zero, Array(1), Array(16)] {
            let (s, r) = chan::<usize>(f);
            for i in 0..room(f) {
                s.send(i).unwrap();
            }
            let sender = mode.spawn(move || s.send(usize::MAX));
            spindle::sleep(ms(2));
            drop(r);
            assert_eq!(sender.join().unwrap(), Err(SendError(usize::MAX)), "{f:?}");
        }
        for f in FLAVORS {
            let (s, r) = chan::<()>(f);
            let receiver = mode.spawn(move || r.recv());
            spindle::sleep(ms(2));
            drop(s);
            assert_eq!(receiver.join().unwrap(), Err(RecvError), "{f:?}");
        }
    });
}

/// crossbeam-channel tests/iter.rs nested_recv_iter, recv_iter_break,
/// recv_try_iter, recv_into_iter_owned, recv_into_iter_borrowed: `iter`
/// and both `IntoIterator`s end on disconnection (after the buffered
/// values); `try_iter` ends at the first empty moment.
#[test]
fn iterators_end_on_disconnect() {
    common::each_mode(LIMIT, |mode| {
        for f in FLAVORS {
            let (s, r) = chan::<usize>(f);
            let (total_s, total_r) = chan::<usize>(f);
            let summer = mode.spawn(move || {
                let mut acc = 0;
                for x in r.iter() {
                    acc += x;
                }
                total_s.send(acc).unwrap();
            });
            for i in 0..=3 {
                s.send(i).unwrap();
            }
            drop(s);
            assert_eq!(total_r.recv(), Ok(6));
            summer.join().unwrap();

            // Owned and borrowed `for` loops, and `iter` with a break.
            let (s, r) = chan::<usize>(f);
            let producer = mode.spawn(move || {
                for i in 0..10 {
                    s.send(i).unwrap();
                }
            });
            let first: Vec<usize> = r.iter().take(3).collect();
            assert_eq!(first, [0, 1, 2]);
            let mut rest = Vec::new();
            for x in &r {
                rest.push(x);
                if x == 5 {
                    break;
                }
            }
            assert_eq!(rest, [3, 4, 5]);
            let tail: Vec<usize> = r.into_iter().collect();
            assert_eq!(tail, [6, 7, 8, 9]);
            producer.join().unwrap();
        }

        // try_iter takes what is there and stops; a later value is seen by
        // a later try_iter.
        let (s, r) = unbounded::<usize>();
        for i in 0..3 {
            s.send(i).unwrap();
        }
        assert_eq!(r.try_iter().collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(r.try_iter().count(), 0);
        s.send(3).unwrap();
        assert_eq!(r.try_iter().collect::<Vec<_>>(), [3]);
        drop(s);
        assert_eq!(r.try_iter().count(), 0);
    });
}

/// crossbeam-channel tests/same_channel.rs: clones are the same channel;
/// two channels never are.
#[test]
fn same_channel() {
    common::each_mode(LIMIT, |_mode| {
        for f in FLAVORS {
            let (s1, r1) = chan::<usize>(f);
            let (s2, r2) = chan::<usize>(f);
            assert!(s1.same_channel(&s1.clone()) && r1.same_channel(&r1.clone()));
            assert!(!s1.same_channel(&s2) && !r1.same_channel(&r2));
        }
    });
}

/// crossbeam-channel's error types: accessors, conversions, and that
/// their messages say what happened.
#[test]
fn error_types() {
    common::each_mode(LIMIT, |_mode| {
        let full = TrySendError::Full(1);
        let gone = TrySendError::Disconnected(2);
        assert!(full.is_full() && !full.is_disconnected() && full.into_inner() == 1);
        assert!(gone.is_disconnected() && !gone.is_full() && gone.into_inner() == 2);
        let late = SendTimeoutError::Timeout(3);
        let gone = SendTimeoutError::Disconnected(4);
        assert!(late.is_timeout() && !late.is_disconnected() && late.into_inner() == 3);
        assert!(gone.is_disconnected() && !gone.is_timeout() && gone.into_inner() == 4);
        assert_eq!(SendError(5).into_inner(), 5);
        assert!(TryRecvError::Empty.is_empty() && !TryRecvError::Empty.is_disconnected());
        assert!(TryRecvError::Disconnected.is_disconnected());
        assert!(RecvTimeoutError::Timeout.is_timeout());
        assert!(RecvTimeoutError::Disconnected.is_disconnected());

        assert_eq!(
            TrySendError::from(SendError(6)),
            TrySendError::Disconnected(6)
        );
        assert_eq!(
            SendTimeoutError::from(SendError(7)),
            SendTimeoutError::Disconnected(7)
        );
        assert_eq!(TryRecvError::from(RecvError), TryRecvError::Disconnected);
        assert_eq!(
            RecvTimeoutError::from(RecvError),
            RecvTimeoutError::Disconnected
        );

        // Non-empty messages, and usable as `dyn Error` without `T: Debug`.
        struct Opaque;
        let errors: Vec<Box<dyn std::error::Error>> = vec![
            Box::new(SendError(Opaque)),
            Box::new(TrySendError::Full(Opaque)),
            Box::new(TrySendError::Disconnected(Opaque)),
            Box::new(SendTimeoutError::Timeout(Opaque)),
            Box::new(SendTimeoutError::Disconnected(Opaque)),
            Box::new(RecvError),
            Box::new(TryRecvError::Empty),
            Box::new(TryRecvError::Disconnected),
            Box::new(RecvTimeoutError::Timeout),
            Box::new(RecvTimeoutError::Disconnected),
        ];
        for e in errors {
            assert!(!e.to_string().is_empty());
            assert!(!format!("{e:?}").is_empty());
        }
    });
}
