//! loom models of the rendezvous channel and `select!`, run on spindle's
//! real channel code: under `--cfg loom` its lock is loom's mutex, its
//! waiters park loom threads, and loom explores the interleavings.
//!
//! ```text
//! RUSTFLAGS="--cfg loom -C debug-assertions" CARGO_TARGET_DIR=target/loom \
//!     cargo test -p spindle --test loom_channel --release
//! ```
//!
//! What is checked: no lost wake-up (a parked party that is never woken
//! makes loom report a deadlock), no double delivery and no lost value
//! (every value sent is received exactly once), disconnection wakes
//! parked receivers and gives refused values back, and a select takes at
//! most one value.
#![cfg(loom)]

use loom::thread;
use spindle::channel::{self, RecvError};

/// Explores with a preemption bound, so each model stays well under a
/// minute while covering the interleavings where wake-ups get lost (they
/// need only one or two preemptions).
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(f);
}

/// A rendezvous hand-off between two threads: the value arrives, and the
/// sender returns only after it was taken.
#[test]
fn rendezvous_hand_off() {
    model(|| {
        let (tx, rx) = channel::bounded::<u32>(0);
        let t = thread::spawn(move || tx.send(7).unwrap());
        assert_eq!(rx.recv(), Ok(7));
        t.join().unwrap();
    });
}

/// Two senders race to one receiver: each value is received exactly once.
#[test]
fn two_senders_exactly_once() {
    model(|| {
        let (tx, rx) = channel::bounded::<u32>(0);
        let tx2 = tx.clone();
        let a = thread::spawn(move || tx.send(1).unwrap());
        let b = thread::spawn(move || tx2.send(2).unwrap());
        let x = rx.recv().unwrap();
        let y = rx.recv().unwrap();
        assert_eq!(x + y, 3);
        assert_ne!(x, y);
        a.join().unwrap();
        b.join().unwrap();
    });
}

/// The last sender leaving wakes a parked receiver with `Disconnected`,
/// after the receiver has drained what was sent.
#[test]
fn disconnect_wakes_receiver() {
    model(|| {
        let (tx, rx) = channel::bounded::<u32>(1);
        let t = thread::spawn(move || {
            tx.send(5).unwrap();
            drop(tx);
        });
        assert_eq!(rx.recv(), Ok(5));
        assert_eq!(rx.recv(), Err(RecvError));
        t.join().unwrap();
    });
}

/// The last receiver leaving gives a parked sender its value back.
#[test]
fn disconnect_returns_the_value() {
    model(|| {
        let (tx, rx) = channel::bounded::<u32>(0);
        let t = thread::spawn(move || tx.send(9));
        drop(rx);
        assert_eq!(t.join().unwrap().unwrap_err().into_inner(), 9);
    });
}

/// A select over two rendezvous channels, each with a sender: the select
/// takes exactly one value, and the other stays for a plain receive.
#[test]
fn select_takes_one_value() {
    model(|| {
        let (tx1, rx1) = channel::bounded::<u32>(0);
        let (tx2, rx2) = channel::bounded::<u32>(0);
        let a = thread::spawn(move || tx1.send(1).unwrap());
        let b = thread::spawn(move || tx2.send(2).unwrap());
        let first = spindle::select! {
            recv(rx1) -> v => v.unwrap(),
            recv(rx2) -> v => v.unwrap(),
        };
        let second = if first == 1 {
            rx2.recv().unwrap()
        } else {
            rx1.recv().unwrap()
        };
        assert_eq!(first + second, 3);
        a.join().unwrap();
        b.join().unwrap();
    });
}

/// A select that sends races a plain receiver and a plain sender on the
/// same rendezvous channel: every value is delivered exactly once.
#[test]
fn select_send_races_plain_send() {
    model(|| {
        let (tx, rx) = channel::bounded::<u32>(0);
        let tx2 = tx.clone();
        let a = thread::spawn(move || {
            spindle::select! {
                send(tx2, 1) -> r => r.unwrap(),
            }
        });
        let b = thread::spawn(move || tx.send(2).unwrap());
        let x = rx.recv().unwrap();
        let y = rx.recv().unwrap();
        assert_eq!(x + y, 3);
        a.join().unwrap();
        b.join().unwrap();
    });
}
