//! What channels do to coroutines specifically: a blocked channel
//! operation parks the coroutine, not its worker; the park is visible in
//! `runtime::snapshot()` with its own wait reason; coroutines and plain
//! threads share channels; shutdown unwinds coroutines parked in channel
//! operations and leaves the channels consistent.
//!
//! Go's runtime shows the same states in goroutine dumps (`chan receive`,
//! `chan send`, `select`: `waitReason` in `src/runtime/runtime2.go`);
//! these tests pin spindle's equivalents. Each scenario runs on runtimes
//! with 1, 2 and 4 workers (`common::run_in`).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use common::Mode;
use spindle::channel::{
    RecvError, RecvTimeoutError, TryRecvError, TrySendError, after, bounded, tick,
};
use spindle::runtime::CoroutineState;
use spindle::{CoroutineId, WaitReason, select};

/// A scenario still running after this long is a hang, not a slow test.
const LIMIT: Duration = Duration::from_secs(60);

const WORKERS: [usize; 3] = [1, 2, 4];

/// Runs `scenario` inside `block_on` on runtimes of 1, 2 and 4 workers.
fn each_runtime<F>(scenario: F)
where
    F: Fn() + Send + Sync + Clone + 'static,
{
    for workers in WORKERS {
        let scenario = scenario.clone();
        common::run_in(Mode::Coroutines { workers }, LIMIT, move |_| scenario());
    }
}

/// The state `snapshot()` reports for coroutine `id` (`None`: not listed).
fn state_of(id: CoroutineId) -> Option<CoroutineState> {
    spindle::runtime::snapshot()
        .coroutines
        .iter()
        .find(|c| c.id == id)
        .map(|c| c.state)
}

/// Sleeps until coroutine `id` is reported in `want` (a hang here fails
/// the scenario's limit).
fn wait_for_state(id: CoroutineId, want: CoroutineState) {
    while state_of(id) != Some(want) {
        spindle::sleep(Duration::from_millis(1));
    }
}

/// Go `waitReasonChanReceive`, `waitReasonChanSend`, `waitReasonSelect`
/// (src/runtime/runtime2.go, shown by goroutine dumps): a coroutine parked
/// in `recv` is `Blocked(ChannelRecv)`, in `send` on a full channel
/// `Blocked(ChannelSend)`, in a `select!` `Blocked(Select)`, also with
/// timeouts; once released they run on and finish.
#[test]
fn blocked_channel_operations_show_in_snapshot() {
    each_runtime(|| {
        let (s, r) = bounded::<i32>(0);
        let (full_s, full_r) = bounded::<i32>(1);
        full_s.send(0).unwrap();
        let (idle_s, idle_r) = bounded::<i32>(0);

        let receiver = {
            let r = r.clone();
            spindle::spawn(move || r.recv())
        };
        let sender = {
            let full_s = full_s.clone();
            spindle::spawn(move || full_s.send(1))
        };
        let selector = {
            let (r, idle_r) = (r.clone(), idle_r.clone());
            spindle::spawn(move || {
                select! {
                    recv(r) -> v => v,
                    recv(idle_r) -> _ => unreachable!(),
                }
            })
        };
        let timed = {
            let idle_r = idle_r.clone();
            spindle::spawn(move || idle_r.recv_timeout(Duration::from_secs(30)))
        };
        let timed_select = spindle::spawn(move || {
            select! {
                recv(idle_r) -> v => v,
                default(Duration::from_secs(30)) => unreachable!(),
            }
        });

        wait_for_state(
            receiver.id(),
            CoroutineState::Blocked(WaitReason::ChannelRecv),
        );
        wait_for_state(
            sender.id(),
            CoroutineState::Blocked(WaitReason::ChannelSend),
        );
        wait_for_state(selector.id(), CoroutineState::Blocked(WaitReason::Select));
        wait_for_state(timed.id(), CoroutineState::Blocked(WaitReason::ChannelRecv));
        wait_for_state(
            timed_select.id(),
            CoroutineState::Blocked(WaitReason::Select),
        );
        assert_eq!(WaitReason::ChannelRecv.as_str(), "chan_recv");
        assert_eq!(WaitReason::ChannelSend.as_str(), "chan_send");
        assert_eq!(WaitReason::Select.as_str(), "select");

        // Release them all.
        s.send(1).unwrap();
        s.send(2).unwrap();
        let mut got = [
            receiver.join().unwrap().unwrap(),
            selector.join().unwrap().unwrap(),
        ];
        got.sort();
        assert_eq!(got, [1, 2]);
        assert_eq!(full_r.recv(), Ok(0));
        assert_eq!(sender.join().unwrap(), Ok(()));
        // Disconnecting releases the timed waits before their timeouts.
        drop(idle_s);
        assert_eq!(timed.join().unwrap(), Err(RecvTimeoutError::Disconnected));
        assert_eq!(timed_select.join().unwrap(), Err(RecvError));
    });
}

/// Go's scheduler property that a goroutine blocked on a channel does not
/// hold its P: on one worker, a receiver that parks first lets the sender
/// (spawned after it) run; and a thousand parked receivers on that worker
/// all get their values from one sender there.
#[test]
fn blocked_receivers_do_not_block_their_worker() {
    common::run_in(Mode::Coroutines { workers: 1 }, LIMIT, |_| {
        let (s, r) = bounded::<usize>(0);
        let receiver = spindle::spawn(move || r.recv());
        spindle::yield_now(); // let it park first
        let sender = spindle::spawn(move || s.send(7));
        assert_eq!(receiver.join().unwrap(), Ok(7));
        assert_eq!(sender.join().unwrap(), Ok(()));

        // block_on's own coroutine parked in recv while another sends.
        let (s, r) = bounded::<usize>(0);
        let sender = spindle::spawn(move || s.send(8));
        assert_eq!(r.recv(), Ok(8));
        sender.join().unwrap().unwrap();

        let (s, r) = bounded::<usize>(0);
        let receivers: Vec<_> = (0..1000)
            .map(|_| {
                let r = r.clone();
                spindle::spawn(move || r.recv().unwrap())
            })
            .collect();
        let sender = spindle::spawn(move || {
            for i in 0..1000 {
                s.send(i).unwrap();
            }
        });
        let mut got: Vec<usize> = receivers.into_iter().map(|h| h.join().unwrap()).collect();
        sender.join().unwrap();
        got.sort();
        assert_eq!(got, (0..1000).collect::<Vec<_>>());
    });
}

/// Coroutines and plain OS threads talk over the same rendezvous channel,
/// in both directions, with the coroutine and the thread each parking.
#[test]
fn coroutines_and_threads_share_channels() {
    each_runtime(|| {
        let (to_thread_s, to_thread_r) = bounded::<u32>(0);
        let (to_co_s, to_co_r) = bounded::<u32>(0);
        let thread = std::thread::spawn(move || {
            for v in to_thread_r {
                to_co_s.send(v * 2).unwrap();
            }
        });
        let coroutine = spindle::spawn(move || {
            let mut sum = 0;
            for v in 0..1000 {
                to_thread_s.send(v).unwrap();
                sum += to_co_r.recv().unwrap();
            }
            sum
        });
        assert_eq!(coroutine.join().unwrap(), 999_000);
        // Joining a plain thread blocks this worker briefly; the thread
        // is already done (its channel closed with the coroutine).
        thread.join().unwrap();
    });
}

/// Time channels run nothing in the background (the timer module's
/// docs): ten thousand pending `after`s and a live ticker add no
/// coroutine, and a select with an `after` arm among many still wakes at
/// its due time.
#[test]
fn time_channels_start_no_coroutines() {
    each_runtime(|| {
        let before = spindle::runtime::snapshot().coroutines.len();
        let pending: Vec<_> = (0..10_000)
            .map(|_| after(Duration::from_secs(60)))
            .collect();
        let ticker = tick(Duration::from_millis(1));
        ticker.recv().unwrap();
        assert_eq!(spindle::runtime::snapshot().coroutines.len(), before);
        let soon = after(Duration::from_millis(2));
        let fired = spindle::select! {
            recv(pending[0]) -> _ => false,
            recv(soon) -> t => t.is_ok(),
        };
        assert!(fired);
        drop((pending, ticker));
    });
}

/// Shutdown (Runtime's module docs, "Shutdown"): coroutines parked in
/// `recv`, `send` and `select!` are unwound (their destructors run, their
/// `join` reports the cancellation), and they leave the channels as if
/// they had never waited: a later `try_send` finds no receiver to hand
/// to, a later `try_recv` no sender.
#[test]
fn shutdown_unwinds_parked_channel_operations() {
    struct Guard(Arc<AtomicUsize>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.fetch_add(1, SeqCst);
        }
    }

    for workers in WORKERS {
        let rt = spindle::Runtime::builder()
            .workers(workers)
            .build()
            .unwrap();
        let unwound = Arc::new(AtomicUsize::new(0));
        let (s, r) = bounded::<i32>(0);
        let (full_s, full_r) = bounded::<i32>(1);
        full_s.send(0).unwrap();
        let handles = {
            let (r, full_s, unwound) = (r.clone(), full_s.clone(), unwound.clone());
            rt.block_on(move || {
                let g = || Guard(unwound.clone());
                let (r1, r2, full_s3) = (r.clone(), r.clone(), full_s.clone());
                let (g1, g2, g3, g4) = (g(), g(), g(), g());
                let handles = vec![
                    spindle::spawn(move || {
                        let _g = g1;
                        let _ = r1.recv();
                    }),
                    spindle::spawn(move || {
                        let _g = g2;
                        let _ = full_s.send(1);
                    }),
                    spindle::spawn(move || {
                        let _g = g3;
                        // Neither arm can complete: nobody sends, and
                        // the one-slot channel is full.
                        select! {
                            recv(r2) -> _ => {}
                            send(full_s3, 5) -> _ => {}
                        }
                    }),
                    spindle::spawn(move || {
                        let _g = g4;
                        let _ = r.recv_timeout(Duration::from_secs(30));
                    }),
                ];
                // Let them all park.
                while spindle::runtime::snapshot()
                    .coroutines
                    .iter()
                    .filter(|c| matches!(c.state, CoroutineState::Blocked(_)))
                    .count()
                    < 4
                {
                    spindle::sleep(Duration::from_millis(1));
                }
                handles
            })
        };
        drop(rt);
        assert_eq!(
            unwound.load(SeqCst),
            4,
            "{workers} workers: destructors ran"
        );
        for h in handles {
            assert!(h.join().is_err(), "a cancelled coroutine's join reports it");
        }
        // Nobody is left waiting in either channel.
        assert_eq!(s.try_send(1), Err(TrySendError::Full(1)));
        assert_eq!(r.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(full_s.try_send(2), Err(TrySendError::Full(2)));
        assert_eq!(full_r.recv(), Ok(0));
        assert_eq!(full_r.try_recv().ok(), None);
        drop(s);
        assert_eq!(r.recv(), Err(RecvError));
    }
}
