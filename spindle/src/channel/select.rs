//! `select!`: wait on several channel operations, complete exactly one.
//!
//! The algorithm (crossbeam's shape on spindle's wait queues; Go's
//! `selectgo` does the same with every channel locked at once):
//!
//! 1. **Try** every arm once, in a random order, each under its own
//!    channel's lock; the first that can complete now does, and wins. The
//!    random order is Go's fairness: among ready arms each wins equally
//!    often.
//! 2. With nothing ready and a `default` arm (or a deadline already past),
//!    return without waiting.
//! 3. **Register**: make one waiter and, per arm (same order), a node in
//!    that channel's wait list, each checking under that channel's lock
//!    whether the arm became possible meanwhile (a partner that is not one
//!    of our own nodes, room, a value, disconnection). If one did, *abort*
//!    the waiter and go back to 1; the abort is a compare-and-swap that
//!    fails only if a partner already claimed us, in which case we take
//!    that instead.
//! 4. **Wait** until a partner claims the waiter through one of its nodes
//!    and completes that arm's operation (moves a value into or out of the
//!    arm's slot), or the deadline passes (abort).
//! 5. **Unregister** every node still linked, each under its channel's
//!    lock (wait-queue invariant 4), and report the winner.
//!
//! A partner claims our waiter at most once (the claim is a CAS), so at
//! most one arm completes: a losing arm's value stays in its slot (sends)
//! or none is put there (receives), and a timed-out select completes
//! nothing.

use std::cell::{Cell, UnsafeCell};
use std::pin::pin;
use std::time::{Duration, Instant};

use super::chan::{Fail, Slot};
use super::{Receiver, RecvError, SendError, Sender};
use crate::park::{self, WaitReason};
use crate::sync::wait::{Node, Waiter, Woken};

/// How a `select!` ends when no arm is ready. Used by the macro.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub enum SelectMode {
    /// Wait until an arm completes.
    Block,
    /// Do not wait (`default =>`).
    Default,
    /// Wait until this deadline (`default(timeout) =>`).
    Deadline(Instant),
}

impl SelectMode {
    /// `default(timeout) =>`: wait at most `timeout` from now.
    pub fn timeout(timeout: Duration) -> SelectMode {
        match Instant::now().checked_add(timeout) {
            Some(d) => SelectMode::Deadline(d),
            None => SelectMode::Block,
        }
    }
}

/// One arm, type-erased for [`run_select`]. Used by the macro.
#[doc(hidden)]
pub struct Arm<'a>(&'a mut dyn ArmOps);

/// What the select loop asks of an arm.
trait ArmOps {
    /// Tries the operation now (none of our nodes is linked); on success
    /// the arm holds its result.
    fn try_now(&mut self) -> bool;
    /// Under the channel's lock: returns `true` if the operation looks
    /// possible now (then `node` is not linked), or links `node`.
    fn register(&mut self, node: &Node, me: *const Waiter) -> bool;
    /// Unlinks `node` if a partner did not pop it.
    fn unregister(&mut self, node: &Node);
    /// A partner claimed us through this arm's node and completed the
    /// operation (or found the channel disconnected): take the result
    /// from the slot.
    fn completed(&mut self);
    /// The slot partners move values into or out of.
    fn slot(&self) -> usize;
    /// When a time channel's value is due (nobody will send it: the
    /// select must wake up then), as seen by the last `register`.
    fn due(&self) -> Option<Instant> {
        None
    }
}

/// A `recv(rx) -> res => ..` arm. Used by the macro.
#[doc(hidden)]
pub struct RecvArm<'a, T> {
    rx: &'a Receiver<T>,
    slot: Slot<T>,
    result: Option<Result<T, RecvError>>,
    /// A time channel's due time, as seen at registration.
    due: Option<Instant>,
}

/// A `send(tx, value) -> res => ..` arm. Used by the macro.
#[doc(hidden)]
pub struct SendArm<'a, T> {
    tx: &'a Sender<T>,
    /// The value, until a receiver takes it.
    slot: Slot<T>,
    result: Option<Result<(), SendError<T>>>,
}

impl<'a, T> RecvArm<'a, T> {
    /// An arm receiving from `rx`.
    pub fn new(rx: &'a Receiver<T>) -> Self {
        RecvArm {
            rx,
            slot: UnsafeCell::new(None),
            result: None,
            due: None,
        }
    }

    /// The arm for [`run_select`].
    pub fn arm(&mut self) -> Arm<'_> {
        Arm(self)
    }

    /// Whether this arm was chosen.
    pub fn won(&self) -> bool {
        self.result.is_some()
    }

    /// The chosen arm's result.
    pub fn into_result(self) -> Result<T, RecvError> {
        self.result
            .expect("select!: result of an arm that was not chosen")
    }
}

impl<'a, T> SendArm<'a, T> {
    /// An arm offering `v` to `tx`.
    pub fn new(tx: &'a Sender<T>, v: T) -> Self {
        SendArm {
            tx,
            slot: UnsafeCell::new(Some(v)),
            result: None,
        }
    }

    /// The arm for [`run_select`].
    pub fn arm(&mut self) -> Arm<'_> {
        Arm(self)
    }

    /// Whether this arm was chosen.
    pub fn won(&self) -> bool {
        self.result.is_some()
    }

    /// The chosen arm's result.
    pub fn into_result(self) -> Result<(), SendError<T>> {
        self.result
            .expect("select!: result of an arm that was not chosen")
    }
}

/// Whether `n` is one of the select's own nodes.
fn mine(n: &Node, me: *const Waiter) -> bool {
    std::ptr::eq(n.waiter(), me)
}

impl<T> ArmOps for RecvArm<'_, T> {
    fn try_now(&mut self) -> bool {
        let chan = self.rx.chan();
        let mut st = chan.lock();
        let r = chan.recv_locked(&mut st, |_| false);
        drop(st);
        self.result = match r {
            Ok(take) => Some(Ok(take.complete())),
            Err(Fail::Disconnected) => Some(Err(RecvError)),
            Err(Fail::NotReady) => return false,
        };
        true
    }

    fn register(&mut self, node: &Node, me: *const Waiter) -> bool {
        let mut st = self.rx.chan().lock();
        let timer_due = st.timer.as_ref().and_then(|t| t.due());
        self.due = timer_due;
        let ready = !st.buf.is_empty()
            || timer_due.is_some_and(|d| d <= Instant::now())
            || st.tx_gone
            || st
                .senders
                .iter()
                .any(|n| !mine(n, me) && n.waiter().is_waiting());
        if !ready {
            // SAFETY: wait-queue invariants 1 and 4: the node lives in
            // `run_select`'s frame until every node is unregistered.
            unsafe { st.receivers.push_back(node) };
        }
        ready
    }

    fn unregister(&mut self, node: &Node) {
        self.rx.chan().lock().receivers.remove(node);
    }

    fn completed(&mut self) {
        self.result = Some(self.slot.get_mut().take().ok_or(RecvError));
    }

    fn slot(&self) -> usize {
        self.slot.get() as usize
    }

    fn due(&self) -> Option<Instant> {
        self.due
    }
}

impl<T> ArmOps for SendArm<'_, T> {
    fn try_now(&mut self) -> bool {
        let Some(v) = self.slot.get_mut().take() else {
            return false;
        };
        let chan = self.tx.chan();
        let mut st = chan.lock();
        let r = chan.send_locked(&mut st, v, |_| false);
        drop(st);
        self.result = match r {
            Ok(give) => {
                give.complete();
                Some(Ok(()))
            }
            Err((v, Fail::Disconnected)) => Some(Err(SendError(v))),
            Err((v, Fail::NotReady)) => {
                *self.slot.get_mut() = Some(v);
                return false;
            }
        };
        true
    }

    fn register(&mut self, node: &Node, me: *const Waiter) -> bool {
        let chan = self.tx.chan();
        let mut st = chan.lock();
        let ready = st.rx_gone
            || st.buf.len() < chan.cap
            || st
                .receivers
                .iter()
                .any(|n| !mine(n, me) && n.waiter().is_waiting());
        if !ready {
            // SAFETY: as for `RecvArm::register`.
            unsafe { st.senders.push_back(node) };
        }
        ready
    }

    fn unregister(&mut self, node: &Node) {
        self.tx.chan().lock().senders.remove(node);
    }

    fn completed(&mut self) {
        self.result = Some(match self.slot.get_mut().take() {
            None => Ok(()),
            Some(v) => Err(SendError(v)),
        });
    }

    fn slot(&self) -> usize {
        self.slot.get() as usize
    }
}

/// Runs a select over `arms`; returns the index of the arm that completed
/// (its `won()` is then true), or `None` if none did (default or
/// timeout). Used by the macro.
pub fn run_select(arms: &mut [Arm<'_>], mode: SelectMode) -> Option<usize> {
    crate::scheduler::coop::charge();
    let n = arms.len();
    let mut order_buf = [0usize; 16];
    let mut order_vec = Vec::new();
    let order: &mut [usize] = if n <= order_buf.len() {
        &mut order_buf[..n]
    } else {
        order_vec.resize(n, 0);
        &mut order_vec
    };
    shuffle(order);
    let deadline = match mode {
        SelectMode::Deadline(d) => Some(d),
        _ => None,
    };
    loop {
        for &i in order.iter() {
            if arms[i].0.try_now() {
                return Some(i);
            }
        }
        let now_only = match mode {
            SelectMode::Block => false,
            SelectMode::Default => true,
            SelectMode::Deadline(d) => Instant::now() >= d,
        };
        match block(arms, order, deadline, now_only) {
            Blocked::Won(i) => return Some(i),
            Blocked::Retry => {}
            Blocked::NothingReady => return None,
        }
    }
}

/// How a registration pass ended.
enum Blocked {
    /// A partner completed this arm for us.
    Won(usize),
    /// An arm became ready while registering: try them all again.
    Retry,
    /// Every arm was registered and none became ready before we gave up
    /// (the deadline passed, or `default`): at that instant nothing was
    /// ready, since any partner arriving after an arm's registration
    /// would have claimed us.
    NothingReady,
}

/// Steps 3–5: registers, waits (unless `now_only`), unregisters.
///
/// With `now_only` (a `default` arm, or a deadline already past) the
/// registration pass still runs: the first pass tried the arms one after
/// another, each under its own lock, so a value could have moved from an
/// arm not yet tried to one already tried, and "nothing is ready" would
/// be a lie (Go's TestNonblockSelectRace). Being registered on every arm
/// at the moment we abort makes the answer true at that moment.
fn block(
    arms: &mut [Arm<'_>],
    order: &[usize],
    deadline: Option<Instant>,
    now_only: bool,
) -> Blocked {
    let waiter = pin!(Waiter::new());
    let me: *const Waiter = &*waiter;
    // Capacity fixed up front: the nodes never move once linked.
    let mut nodes: Vec<Node> = Vec::with_capacity(order.len());
    let mut ready = false;
    for &i in order {
        nodes.push(Node::new(&waiter, i, arms[i].0.slot()));
        let node = nodes.last().expect("just pushed");
        if arms[i].0.register(node, me) {
            // Not linked: drop it so only linked-or-popped nodes remain.
            nodes.pop();
            ready = true;
            break;
        }
    }
    // Time channels have no sender to wake us: wake when one is due.
    let wake = order
        .iter()
        .filter_map(|&i| arms[i].0.due())
        .chain(deadline)
        .min();
    let woken = if (ready || now_only) && waiter.abort() {
        None
    } else {
        // Not ready, or a partner claimed us before we could abort: then
        // this returns its hand-off at once.
        Some(waiter.wait(WaitReason::Select, wake))
    };
    for node in &nodes {
        arms[node.arm].0.unregister(node);
    }
    match woken {
        Some(Woken::Token(i)) => {
            arms[i].0.completed();
            Blocked::Won(i)
        }
        Some(Woken::Cancelled) => {
            drop(nodes);
            park::cancellation_point();
            Blocked::Retry
        }
        // A time channel became due: take it in the next pass.
        Some(Woken::TimedOut) if wake != deadline => Blocked::Retry,
        Some(Woken::TimedOut) => Blocked::NothingReady,
        None if ready => Blocked::Retry,
        None => Blocked::NothingReady,
    }
}

/// Puts `0..order.len()` in a uniformly random order (Fisher–Yates).
fn shuffle(order: &mut [usize]) {
    for (i, slot) in order.iter_mut().enumerate() {
        *slot = i;
    }
    // loom replays executions and needs them deterministic: keep the
    // source order there.
    if cfg!(loom) {
        return;
    }
    for i in (1..order.len()).rev() {
        let j = (next_random() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
}

/// A per-thread xorshift generator: fair enough for arm order, and free
/// of shared state. Not inlined, so no thread-local address is kept
/// across a coroutine switch by its caller.
#[inline(never)]
fn next_random() -> u64 {
    thread_local! {
        static STATE: Cell<u64> = const { Cell::new(0) };
    }
    STATE.with(|s| {
        let mut x = s.get();
        if x == 0 {
            // Seed from this thread's stack address and the clock.
            let addr = &x as *const u64 as u64;
            let t = Instant::now().elapsed().as_nanos() as u64;
            x = (addr ^ t.rotate_left(32)) | 1;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        x
    })
}

/// Waits on several channel operations and completes exactly one.
///
/// Arms, in any number and mix (crossbeam-channel's syntax):
///
/// - `recv(rx) -> res => body`: `res` is `Result<T, RecvError>`; the arm
///   is ready when a value is available or the channel is disconnected
///   (empty with every sender gone);
/// - `send(tx, value) -> res => body`: `res` is
///   `Result<(), SendError<T>>`; ready when the value can be handed over
///   or every receiver is gone (the value comes back in the error);
/// - `default => body`: run when no arm is ready now (never waits);
/// - `default(timeout) => body`: run when no arm became ready within
///   `timeout` (a `Duration`).
///
/// When several arms are ready, one is chosen uniformly at random (Go's
/// fairness). The channel and value expressions are evaluated once, in
/// order, before anything else; a send arm that is not chosen drops its
/// value without sending it, and a receive arm that is not chosen
/// consumes nothing. Bodies may `break`, `continue` or `return` in the
/// enclosing function. In a coroutine a waiting select parks the
/// coroutine ([`WaitReason::Select`](crate::WaitReason::Select)); on a
/// plain thread it parks the thread.
///
/// ```
/// use std::time::Duration;
/// use spindle::channel::{bounded, unbounded};
///
/// let rt = spindle::Runtime::builder().workers(1).build().unwrap();
/// rt.block_on(|| {
///     let (tx1, rx1) = unbounded::<i32>();
///     let (tx2, rx2) = bounded::<&str>(0);
///     spindle::spawn(move || tx1.send(7).unwrap());
///     let got = spindle::select! {
///         recv(rx1) -> v => v.unwrap(),
///         recv(rx2) -> _ => unreachable!("nobody sends on rx2"),
///         default(Duration::from_secs(10)) => panic!("timed out"),
///     };
///     assert_eq!(got, 7);
///     // Nobody receives from rx2 and no arm is ready: `default` runs.
///     spindle::select! {
///         send(tx2, "hi") -> _ => unreachable!(),
///         default => {}
///     }
/// });
/// ```
#[macro_export]
macro_rules! select {
    ($($tokens:tt)*) => {
        $crate::__select_parse!(() () $($tokens)*)
    };
}

/// Parses `select!` arms into `[name ctor pat {body}]` groups and the
/// default spec. Not public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_parse {
    // recv arms
    (($($arms:tt)*) ($($def:tt)*) recv($r:expr) -> $p:pat => $body:block, $($rest:tt)*) => {
        $crate::__select_parse!(
            ($($arms)* [__arm __chan ($r) (recv) ($p) {$body}])
            ($($def)*) $($rest)*)
    };
    (($($arms:tt)*) ($($def:tt)*) recv($r:expr) -> $p:pat => $body:block $($rest:tt)*) => {
        $crate::__select_parse!(
            ($($arms)* [__arm __chan ($r) (recv) ($p) {$body}])
            ($($def)*) $($rest)*)
    };
    (($($arms:tt)*) ($($def:tt)*) recv($r:expr) -> $p:pat => $body:expr, $($rest:tt)*) => {
        $crate::__select_parse!(
            ($($arms)* [__arm __chan ($r) (recv) ($p) {$body}])
            ($($def)*) $($rest)*)
    };
    (($($arms:tt)*) ($($def:tt)*) recv($r:expr) -> $p:pat => $body:expr) => {
        $crate::__select_parse!(
            ($($arms)* [__arm __chan ($r) (recv) ($p) {$body}])
            ($($def)*))
    };
    // send arms
    (($($arms:tt)*) ($($def:tt)*) send($s:expr, $v:expr) -> $p:pat => $body:block, $($rest:tt)*) => {
        $crate::__select_parse!(
            ($($arms)* [__arm __chan ($s) (send $v) ($p) {$body}])
            ($($def)*) $($rest)*)
    };
    (($($arms:tt)*) ($($def:tt)*) send($s:expr, $v:expr) -> $p:pat => $body:block $($rest:tt)*) => {
        $crate::__select_parse!(
            ($($arms)* [__arm __chan ($s) (send $v) ($p) {$body}])
            ($($def)*) $($rest)*)
    };
    (($($arms:tt)*) ($($def:tt)*) send($s:expr, $v:expr) -> $p:pat => $body:expr, $($rest:tt)*) => {
        $crate::__select_parse!(
            ($($arms)* [__arm __chan ($s) (send $v) ($p) {$body}])
            ($($def)*) $($rest)*)
    };
    (($($arms:tt)*) ($($def:tt)*) send($s:expr, $v:expr) -> $p:pat => $body:expr) => {
        $crate::__select_parse!(
            ($($arms)* [__arm __chan ($s) (send $v) ($p) {$body}])
            ($($def)*))
    };
    // default arms (at most one)
    (($($arms:tt)*) () default => $body:block, $($rest:tt)*) => {
        $crate::__select_parse!(($($arms)*) (default {$body}) $($rest)*)
    };
    (($($arms:tt)*) () default => $body:block $($rest:tt)*) => {
        $crate::__select_parse!(($($arms)*) (default {$body}) $($rest)*)
    };
    (($($arms:tt)*) () default => $body:expr, $($rest:tt)*) => {
        $crate::__select_parse!(($($arms)*) (default {$body}) $($rest)*)
    };
    (($($arms:tt)*) () default => $body:expr) => {
        $crate::__select_parse!(($($arms)*) (default {$body}))
    };
    (($($arms:tt)*) () default($t:expr) => $body:block, $($rest:tt)*) => {
        $crate::__select_parse!(($($arms)*) (timeout ($t) {$body}) $($rest)*)
    };
    (($($arms:tt)*) () default($t:expr) => $body:block $($rest:tt)*) => {
        $crate::__select_parse!(($($arms)*) (timeout ($t) {$body}) $($rest)*)
    };
    (($($arms:tt)*) () default($t:expr) => $body:expr, $($rest:tt)*) => {
        $crate::__select_parse!(($($arms)*) (timeout ($t) {$body}) $($rest)*)
    };
    (($($arms:tt)*) () default($t:expr) => $body:expr) => {
        $crate::__select_parse!(($($arms)*) (timeout ($t) {$body}))
    };
    (($($arms:tt)*) ($($def:tt)+) default $($rest:tt)*) => {
        ::core::compile_error!("select!: more than one `default` arm")
    };
    // done
    (($($arms:tt)*) ($($def:tt)*)) => {
        $crate::__select_emit!(($($arms)*) ($($def)*))
    };
    (($($arms:tt)*) ($($def:tt)*) $($rest:tt)+) => {
        ::core::compile_error!(
            "select!: expected `recv(rx) -> res => body`, `send(tx, value) -> res => body`, \
             `default => body` or `default(timeout) => body`"
        )
    };
}

/// Expands parsed `select!` arms. Not public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_emit {
    (($($arms:tt)*) ()) => {
        $crate::__select_emit!(@go ($($arms)*)
            ($crate::channel::__private::SelectMode::Block)
            { ::core::unreachable!("select!: a blocking select returned without a winner") })
    };
    (($($arms:tt)*) (default $dbody:tt)) => {
        $crate::__select_emit!(@go ($($arms)*)
            ($crate::channel::__private::SelectMode::Default) $dbody)
    };
    (($($arms:tt)*) (timeout ($t:expr) $dbody:tt)) => {
        $crate::__select_emit!(@go ($($arms)*)
            ($crate::channel::__private::SelectMode::timeout($t)) $dbody)
    };
    (@go ($([$name:ident $ch:ident ($c:expr) $kind:tt ($p:pat) $body:tt])*) ($mode:expr) $dbody:tt) => {
        // One `match` over every channel expression: temporaries in them
        // (even nested ones) live until the select is over.
        match ($( &$c, )*) {
            ($( $ch, )*) => {
                $( let mut $name = $crate::__select_arm!($ch $kind); )*
                let _ = $crate::channel::__private::run_select(
                    &mut [$( $name.arm() ),*],
                    $mode,
                );
                $( if $name.won() { let $p = $name.into_result(); $body } else )*
                $dbody
            }
        }
    };
}

/// Builds one `select!` arm. Not public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_arm {
    ($ch:ident (recv)) => {
        $crate::channel::__private::RecvArm::new($ch)
    };
    ($ch:ident (send $v:expr)) => {
        $crate::channel::__private::SendArm::new($ch, $v)
    };
}
