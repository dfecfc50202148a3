//! The channel itself: one lock over a buffer and two wait lists.
//!
//! Go's design (`runtime/chan.go`), on spindle's wait queues
//! ([`crate::sync::wait`]):
//!
//! - `buf` holds up to `cap` values (`usize::MAX` for unbounded; 0 for a
//!   rendezvous channel, whose values only ever pass hand to hand);
//! - `receivers` lists parked receivers, each node's `data` pointing at an
//!   empty slot (`Option<T>`) on the receiver's stack;
//! - `senders` lists parked senders, each node's `data` pointing at a slot
//!   holding the value it offers.
//!
//! At most one list is non-empty while the buffer is neither full nor
//! empty, and values never wait in the buffer while a receiver waits, so a
//! sender that finds a parked receiver hands the value straight into its
//! slot, and FIFO order holds. A receiver that takes from a full buffer
//! refills it from the first parked sender.
//!
//! Every hand-off follows the wait-queue protocol: the waker pops and
//! claims a node under the lock, reads the node's slot pointer and arm,
//! and moves the value after unlocking (the claimed waiter cannot return
//! before the claim finishes), then finishes the claim, which unparks.
//! Disconnection claims every parked party of the other side and finishes
//! without touching its slot: a receiver then finds its slot empty (no
//! more values: `Disconnected`), a sender finds its value still there
//! (nobody will receive it: the error gives it back).
//!
//! User values are never dropped under the lock: a value refused is
//! returned in the error; buffered values are dropped with the channel.

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::loom::{AtomicUsize, Ordering, RawGuard, RawLock, raw_lock};
use crate::park::WaitReason;
use crate::sync::wait::{Claim, Node, WaitList, wait_in};

/// Why an operation did not complete (the value, if any, goes back to the
/// caller inside the public error types).
pub(crate) enum Fail {
    /// Would block (try_*), or the deadline passed.
    NotReady,
    /// The other side is gone.
    Disconnected,
}

pub(crate) struct Chan<T> {
    state: RawLock<State<T>>,
    /// Buffer capacity: `usize::MAX` for unbounded, 0 for rendezvous.
    pub(crate) cap: usize,
    /// Live `Sender`s (plus one that never drops, for `never()`).
    pub(crate) senders: AtomicUsize,
    /// Live `Receiver`s.
    pub(crate) receivers: AtomicUsize,
}

pub(crate) struct State<T> {
    pub(crate) buf: VecDeque<T>,
    pub(crate) receivers: WaitList,
    pub(crate) senders: WaitList,
    /// Every sender is gone: receivers drain `buf`, then fail.
    pub(crate) tx_gone: bool,
    /// Every receiver is gone: sends fail at once.
    pub(crate) rx_gone: bool,
    /// For the time channels (`after`, `at`, `tick`): the value due next.
    pub(crate) timer: Option<Timer<T>>,
}

/// A time channel's schedule. Nothing runs in the background: a value is
/// made when a receiver looks and it is due, and a receiver that waits
/// sets its wake-up to the due time. So a time channel costs nothing but
/// its memory, and dropping its receivers frees it at once.
pub(crate) struct Timer<T> {
    /// When the next value is due; `None` once an `after`/`at` delivered.
    next: Option<Instant>,
    /// `tick`'s period; `None` for `after`/`at`.
    period: Option<Duration>,
    /// Makes the value from the due time (the identity, for
    /// `Receiver<Instant>`; a function pointer keeps `Chan<T>` generic).
    make: fn(Instant) -> T,
}

impl<T> Timer<T> {
    pub(crate) fn new(first: Instant, period: Option<Duration>, make: fn(Instant) -> T) -> Self {
        Timer {
            next: Some(first),
            period,
            make,
        }
    }

    /// When a value is due, if one ever is again.
    pub(crate) fn due(&self) -> Option<Instant> {
        self.next
    }

    /// Takes the value due at `now`, if any. A tick that fell behind by
    /// more than a period skips the missed ticks (one is delivered late,
    /// the next comes at the next multiple of the period), like Go's
    /// `time.Ticker`.
    fn poll(&mut self, now: Instant) -> Option<T> {
        let due = self.next.filter(|&d| d <= now)?;
        self.next = self.period.map(|p| {
            let behind = now.duration_since(due).as_nanos();
            let periods = behind / p.as_nanos().max(1) + 1;
            let skip = u64::try_from(periods.saturating_mul(p.as_nanos())).unwrap_or(u64::MAX);
            due.checked_add(Duration::from_nanos(skip))
                .unwrap_or(now + p)
        });
        Some((self.make)(due))
    }
}

/// A slot on a parked party's stack: empty for a receiver, holding the
/// offered value for a sender.
pub(crate) type Slot<T> = UnsafeCell<Option<T>>;

impl<T> Chan<T> {
    pub(crate) fn new(cap: usize, senders: usize) -> Chan<T> {
        Chan::with_timer(cap, senders, None)
    }

    /// A time channel: no `Sender` (one is counted that never drops, so
    /// it never disconnects); values come from `timer`.
    pub(crate) fn timer(timer: Timer<T>) -> Chan<T> {
        Chan::with_timer(1, 1, Some(timer))
    }

    fn with_timer(cap: usize, senders: usize, timer: Option<Timer<T>>) -> Chan<T> {
        Chan {
            state: RawLock::new(State {
                buf: VecDeque::new(),
                receivers: WaitList::new(),
                senders: WaitList::new(),
                tx_gone: false,
                rx_gone: false,
                timer,
            }),
            cap,
            senders: AtomicUsize::new(senders),
            receivers: AtomicUsize::new(1),
        }
    }

    pub(crate) fn lock(&self) -> RawGuard<'_, State<T>> {
        raw_lock(&self.state)
    }

    /// Sends `v` if that is possible without waiting; gives it back
    /// otherwise.
    pub(crate) fn try_send(&self, v: T) -> Result<(), (T, Fail)> {
        let mut st = self.lock();
        let r = self.send_locked(&mut st, v, |_| false);
        drop(st);
        r.map(Give::complete)
    }

    /// The non-blocking part of a send, under the lock. `skip` excludes
    /// nodes of the caller's own `select!`. A hand-off to a parked receiver
    /// is completed by the caller, after unlocking, with [`Give::complete`].
    #[inline]
    pub(crate) fn send_locked(
        &self,
        st: &mut State<T>,
        v: T,
        skip: impl Fn(&Node) -> bool,
    ) -> Result<Give<T>, (T, Fail)> {
        if st.rx_gone {
            return Err((v, Fail::Disconnected));
        }
        if let Some((node, claim)) = st.receivers.pop_claim(&skip) {
            return Ok(Give::Handoff {
                slot: node.data as *const Slot<T>,
                arm: node.arm,
                claim,
                v,
            });
        }
        if st.buf.len() < self.cap {
            st.buf.push_back(v);
            return Ok(Give::Buffered);
        }
        Err((v, Fail::NotReady))
    }

    /// Sends `v`, parking until a receiver or buffer room takes it, the
    /// deadline passes, or every receiver is gone.
    pub(crate) fn send(&self, v: T, deadline: Option<Instant>) -> Result<(), (T, Fail)> {
        let mut st = self.lock();
        match self.send_locked(&mut st, v, |_| false) {
            Ok(give) => {
                drop(st);
                give.complete();
                // Charged only when it did not park (a park ends the turn).
                crate::scheduler::coop::charge_done();
                Ok(())
            }
            Err((v, Fail::NotReady)) if deadline.is_none_or(|d| d > Instant::now()) => {
                self.send_slow(st, v, deadline)
            }
            Err(e) => {
                drop(st);
                // A loop of sends that fail at once must still give way.
                crate::scheduler::coop::charge_done();
                Err(e)
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn send_slow(
        &self,
        st: RawGuard<'_, State<T>>,
        v: T,
        deadline: Option<Instant>,
    ) -> Result<(), (T, Fail)> {
        // The slot outlives the wait: a claiming receiver takes the value
        // from it before the claim finishes (wait-queue invariant 3).
        let slot: Slot<T> = UnsafeCell::new(Some(v));
        let claimed = wait_in(
            st,
            |st| &mut st.senders,
            slot.get() as usize,
            WaitReason::ChannelSend,
            deadline,
            0,
            |node| {
                self.lock().senders.remove(node);
            },
        );
        match (claimed, slot.into_inner()) {
            // Claimed: the receiver took the value.
            (Some(_), None) => Ok(()),
            // Claimed by disconnection, which leaves the value.
            (Some(_), Some(v)) => Err((v, Fail::Disconnected)),
            // Gave up, so nobody claimed us: the value is still ours.
            (None, v) => Err((
                v.expect("an aborted sender keeps its value"),
                Fail::NotReady,
            )),
        }
    }

    /// Receives a value if that is possible without waiting.
    pub(crate) fn try_recv(&self) -> Result<T, Fail> {
        let mut st = self.lock();
        let r = self.recv_locked(&mut st, |_| false);
        drop(st);
        r.map(Take::complete)
    }

    /// The non-blocking part of a receive, under the lock; completed by
    /// the caller, after unlocking, with [`Take::complete`].
    #[inline]
    pub(crate) fn recv_locked(
        &self,
        st: &mut State<T>,
        skip: impl Fn(&Node) -> bool,
    ) -> Result<Take<T>, Fail> {
        if let Some(timer) = &mut st.timer {
            return match timer.poll(Instant::now()) {
                Some(v) => Ok(Take::Buffered(v, None)),
                None => Err(Fail::NotReady),
            };
        }
        if let Some(v) = st.buf.pop_front() {
            // Room now: move the first parked sender's value in.
            let refilled = st.senders.pop_claim(&skip).map(|(node, claim)| {
                let slot = node.data as *const Slot<T>;
                // SAFETY: wait-queue invariant 3: the claimed sender waits
                // until the claim finishes, so its slot is alive and holds
                // its value, which only we take.
                let w = unsafe { (*(*slot).get()).take() };
                st.buf.push_back(w.expect("a parked sender offers a value"));
                (claim, node.arm)
            });
            return Ok(Take::Buffered(v, refilled));
        }
        if let Some((node, claim)) = st.senders.pop_claim(&skip) {
            return Ok(Take::Handoff {
                slot: node.data as *const Slot<T>,
                arm: node.arm,
                claim,
            });
        }
        Err(if st.tx_gone {
            Fail::Disconnected
        } else {
            Fail::NotReady
        })
    }

    /// Receives, parking until a value arrives, the deadline passes, or
    /// every sender is gone and the buffer is drained.
    pub(crate) fn recv(&self, deadline: Option<Instant>) -> Result<T, Fail> {
        let mut st = self.lock();
        match self.recv_locked(&mut st, |_| false) {
            Ok(take) => {
                drop(st);
                let v = take.complete();
                // Charged only when it did not park, after the hand-off
                // completed, and without unwinding: `v` is kept.
                crate::scheduler::coop::charge_done();
                Ok(v)
            }
            Err(Fail::NotReady) if deadline.is_none_or(|d| d > Instant::now()) => {
                if st.timer.is_some() {
                    drop(st);
                    return self.recv_timer(deadline);
                }
                self.recv_slow(st, deadline)
            }
            Err(e) => {
                drop(st);
                crate::scheduler::coop::charge_done();
                Err(e)
            }
        }
    }

    /// A time channel's blocking receive: waits until the value is due
    /// (or `deadline`), then takes it.
    #[cold]
    fn recv_timer(&self, deadline: Option<Instant>) -> Result<T, Fail> {
        loop {
            let mut st = self.lock();
            match self.recv_locked(&mut st, |_| false) {
                Err(Fail::NotReady) => {}
                done => return done.map(Take::complete),
            }
            let due = st.timer.as_ref().and_then(Timer::due);
            let wake = match (due, deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if wake.is_some_and(|w| w <= Instant::now()) {
                if due.is_some_and(|d| d <= Instant::now()) {
                    continue; // due now: take it
                }
                return Err(Fail::NotReady); // the caller's deadline
            }
            // Nobody sends on a time channel, so this wakes at `wake`.
            match self.recv_slow(st, wake) {
                Err(Fail::NotReady) if deadline.is_none_or(|d| d > Instant::now()) => {}
                done => return done,
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn recv_slow(&self, st: RawGuard<'_, State<T>>, deadline: Option<Instant>) -> Result<T, Fail> {
        let slot: Slot<T> = UnsafeCell::new(None);
        let claimed = wait_in(
            st,
            |st| &mut st.receivers,
            slot.get() as usize,
            WaitReason::ChannelRecv,
            deadline,
            0,
            |node| {
                self.lock().receivers.remove(node);
            },
        );
        match claimed {
            // Claimed: a sender filled the slot, or disconnection left it
            // empty.
            Some(_) => slot.into_inner().ok_or(Fail::Disconnected),
            None => Err(Fail::NotReady),
        }
    }

    /// The last `Sender` is gone: wake every parked receiver (each finds
    /// its slot empty, or drains the buffer first).
    pub(crate) fn disconnect_senders(&self) {
        let mut st = self.lock();
        st.tx_gone = true;
        while let Some((node, claim)) = st.receivers.pop_claim(|_| false) {
            claim.finish(node.arm);
        }
    }

    /// The last `Receiver` is gone: wake every parked sender (each finds
    /// its value still in its slot and gets it back).
    pub(crate) fn disconnect_receivers(&self) {
        let mut st = self.lock();
        st.rx_gone = true;
        while let Some((node, claim)) = st.senders.pop_claim(|_| false) {
            claim.finish(node.arm);
        }
    }

    /// Buffered values.
    pub(crate) fn len(&self) -> usize {
        let st = self.lock();
        match &st.timer {
            Some(t) => usize::from(t.due().is_some_and(|d| d <= Instant::now())),
            None => st.buf.len(),
        }
    }

    pub(crate) fn add_sender(&self) {
        self.senders.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_receiver(&self) {
        self.receivers.fetch_add(1, Ordering::Relaxed);
    }

    /// Returns whether this was the last sender.
    pub(crate) fn drop_sender(&self) -> bool {
        self.senders.fetch_sub(1, Ordering::AcqRel) == 1
    }

    /// Returns whether this was the last receiver.
    pub(crate) fn drop_receiver(&self) -> bool {
        self.receivers.fetch_sub(1, Ordering::AcqRel) == 1
    }
}

/// A send decided under the lock, completed after unlocking.
pub(crate) enum Give<T> {
    /// The value went into the buffer.
    Buffered,
    /// A parked receiver was claimed: move `v` into its slot and finish.
    Handoff {
        slot: *const Slot<T>,
        arm: usize,
        claim: Claim,
        v: T,
    },
}

impl<T> Give<T> {
    pub(crate) fn complete(self) {
        if let Give::Handoff {
            slot,
            arm,
            claim,
            v,
        } = self
        {
            // SAFETY: wait-queue invariant 3: the claimed receiver waits
            // until the claim finishes, so its slot is alive, and only we
            // write it meanwhile.
            unsafe { *(*slot).get() = Some(v) };
            claim.finish(arm);
        }
    }
}

/// A receive decided under the lock, completed after unlocking.
pub(crate) enum Take<T> {
    /// Taken from the buffer; a parked sender whose value refilled it is
    /// to be released.
    Buffered(T, Option<(Claim, usize)>),
    /// A parked sender was claimed: take the value from its slot and
    /// finish.
    Handoff {
        slot: *const Slot<T>,
        arm: usize,
        claim: Claim,
    },
}

impl<T> Take<T> {
    pub(crate) fn complete(self) -> T {
        match self {
            Take::Buffered(v, refilled) => {
                if let Some((claim, arm)) = refilled {
                    claim.finish(arm);
                }
                v
            }
            Take::Handoff { slot, arm, claim } => {
                // SAFETY: as in `Give::complete`; the slot holds the
                // sender's value until we take it.
                let v = unsafe { (*(*slot).get()).take() };
                claim.finish(arm);
                v.expect("a parked sender offers a value")
            }
        }
    }
}
