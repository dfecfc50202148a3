//! Basic channel behaviour, from coroutines and from plain threads: the
//! properties the rest of spindle (and its users) lean on first.

mod common;

use std::time::Duration;

use common::{Mode, each_mode};
use spindle::channel::{self, RecvTimeoutError, TryRecvError, TrySendError};

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn rendezvous_ping_pong() {
    each_mode(LIMIT, |mode| {
        let (ping_tx, ping_rx) = channel::bounded::<u32>(0);
        let (pong_tx, pong_rx) = channel::bounded::<u32>(0);
        let n = mode.scale(10_000) as u32;
        let echo = mode.spawn(move || {
            for v in ping_rx.iter() {
                pong_tx.send(v + 1).unwrap();
            }
        });
        for i in 0..n {
            ping_tx.send(i).unwrap();
            assert_eq!(pong_rx.recv().unwrap(), i + 1);
        }
        drop(ping_tx);
        echo.join().unwrap();
    });
}

#[test]
fn disconnect_drains_then_fails() {
    each_mode(LIMIT, |_| {
        let (tx, rx) = channel::bounded(4);
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        drop(tx);
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
        assert!(rx.recv().is_err());
    });
}

#[test]
fn send_without_receiver_gives_the_value_back() {
    each_mode(LIMIT, |mode| {
        let (tx, rx) = channel::bounded::<String>(0);
        let blocked = {
            let tx = tx.clone();
            mode.spawn(move || tx.send("kept".to_string()))
        };
        // Let the sender park (any order works; the error must carry the value).
        std::thread::sleep(Duration::from_millis(5));
        drop(rx);
        let err = blocked.join().unwrap().unwrap_err();
        assert_eq!(err.into_inner(), "kept");
        assert_eq!(
            tx.try_send("x".into()),
            Err(TrySendError::Disconnected("x".into()))
        );
    });
}

#[test]
fn timeouts_consume_nothing() {
    each_mode(LIMIT, |_| {
        let (tx, rx) = channel::bounded::<i32>(0);
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(2)),
            Err(RecvTimeoutError::Timeout)
        );
        assert!(
            tx.send_timeout(5, Duration::from_millis(2))
                .unwrap_err()
                .is_timeout()
        );
        let (tx, rx) = channel::bounded::<i32>(1);
        tx.send(1).unwrap();
        assert_eq!(
            tx.send_timeout(2, Duration::from_millis(2))
                .unwrap_err()
                .into_inner(),
            2
        );
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    });
}

#[test]
fn select_picks_a_ready_arm_and_loses_nothing() {
    each_mode(LIMIT, |mode| {
        let (tx1, rx1) = channel::unbounded::<u32>();
        let (tx2, rx2) = channel::unbounded::<u32>();
        let n = mode.scale(2_000) as u32;
        let p1 = mode.spawn(move || (0..n).for_each(|i| tx1.send(i).unwrap()));
        let p2 = mode.spawn(move || (0..n).for_each(|i| tx2.send(i).unwrap()));
        let (mut a, mut b) = (0, 0);
        let (mut open1, mut open2) = (true, true);
        while open1 || open2 {
            spindle::select! {
                recv(if open1 { rx1.clone() } else { channel::never() }) -> v => match v {
                    Ok(v) => { assert_eq!(v, a); a += 1 }
                    Err(_) => open1 = false,
                },
                recv(if open2 { rx2.clone() } else { channel::never() }) -> v => match v {
                    Ok(v) => { assert_eq!(v, b); b += 1 }
                    Err(_) => open2 = false,
                },
            }
        }
        assert_eq!((a, b), (n, n));
        p1.join().unwrap();
        p2.join().unwrap();
    });
}

#[test]
fn select_send_and_recv_on_one_rendezvous_channel() {
    each_mode(LIMIT, |mode| {
        let (tx, rx) = channel::bounded::<u32>(0);
        let n = mode.scale(1_000) as u32;
        let peers: Vec<_> = (0..2)
            .map(|_| {
                let (tx, rx) = (tx.clone(), rx.clone());
                mode.spawn(move || {
                    let (mut sent, mut got) = (0, 0);
                    for i in 0..n {
                        spindle::select! {
                            send(tx, i) -> r => { r.unwrap(); sent += 1 }
                            recv(rx) -> r => { r.unwrap(); got += 1 }
                        }
                    }
                    (sent, got)
                })
            })
            .collect();
        let totals: Vec<(u32, u32)> = peers.into_iter().map(|p| p.join().unwrap()).collect();
        // Every value sent was received by the other peer.
        assert_eq!(totals[0].0 + totals[1].0, totals[0].1 + totals[1].1);
        let _ = Mode::Threads;
    });
}
