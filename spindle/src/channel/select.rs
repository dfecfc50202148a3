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
}

/// A `recv(rx) -> res => ..` arm. Used by the macro.
#[doc(hidden)]
pub struct RecvArm<'a, T> {
    rx: &'a Receiver<T>,
    slot: Slot<T>,
    result: Option<Result<T, RecvError>>,
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
        let ready = !st.buf.is_empty()
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
        match mode {
            SelectMode::Default => return None,
            SelectMode::Deadline(d) if Instant::now() >= d => return None,
            _ => {}
        }
        if let Some(i) = block(arms, order, deadline) {
            return Some(i);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
    }
}

/// Steps 3–5: registers, waits, unregisters. `None` means "start over"
/// (an arm became ready while registering), or the deadline passed.
fn block(arms: &mut [Arm<'_>], order: &[usize], deadline: Option<Instant>) -> Option<usize> {
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
    let woken = if ready && waiter.abort() {
        None
    } else {
        Some(waiter.wait(WaitReason::Select, deadline))
    };
    for node in &nodes {
        arms[node.arm].0.unregister(node);
    }
    match woken {
        Some(Woken::Token(i)) => {
            arms[i].0.completed();
            Some(i)
        }
        Some(Woken::Cancelled) => {
            drop(nodes);
            park::cancellation_point();
            None
        }
        Some(Woken::TimedOut) | None => None,
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
    (($($arms:tt)*) ($($def:tt)*) recv($r:expr) -> $p:pat => $body:block $(,)? $($rest:tt)*) => {
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
    (($($arms:tt)*) ($($def:tt)*) send($s:expr, $v:expr) -> $p:pat => $body:block $(,)? $($rest:tt)*) => {
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
    (($($arms:tt)*) () default => $body:block $(,)? $($rest:tt)*) => {
        $crate::__select_parse!(($($arms)*) (default {$body}) $($rest)*)
    };
    (($($arms:tt)*) () default => $body:expr, $($rest:tt)*) => {
        $crate::__select_parse!(($($arms)*) (default {$body}) $($rest)*)
    };
    (($($arms:tt)*) () default => $body:expr) => {
        $crate::__select_parse!(($($arms)*) (default {$body}))
    };
    (($($arms:tt)*) () default($t:expr) => $body:block $(,)? $($rest:tt)*) => {
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
    (($([$name:ident $ch:ident ($c:expr) $kind:tt ($p:pat) $body:tt])*) ()) => {{
        $(
            // `let` extends the life of a temporary channel expression.
            let $ch = &$c;
            let mut $name = $crate::__select_arm!($ch $kind);
        )*
        let _ = $crate::channel::__private::run_select(
            &mut [$( $name.arm() ),*],
            $crate::channel::__private::SelectMode::Block,
        );
        $( if $name.won() { let $p = $name.into_result(); $body } else )*
        { ::core::unreachable!("select!: a blocking select returned without a winner") }
    }};
    (($([$name:ident $ch:ident ($c:expr) $kind:tt ($p:pat) $body:tt])*) (default $dbody:tt)) => {{
        $(
            // `let` extends the life of a temporary channel expression.
            let $ch = &$c;
            let mut $name = $crate::__select_arm!($ch $kind);
        )*
        let _ = $crate::channel::__private::run_select(
            &mut [$( $name.arm() ),*],
            $crate::channel::__private::SelectMode::Default,
        );
        $( if $name.won() { let $p = $name.into_result(); $body } else )*
        $dbody
    }};
    (($([$name:ident $ch:ident ($c:expr) $kind:tt ($p:pat) $body:tt])*) (timeout ($t:expr) $dbody:tt)) => {{
        $(
            // `let` extends the life of a temporary channel expression.
            let $ch = &$c;
            let mut $name = $crate::__select_arm!($ch $kind);
        )*
        let _ = $crate::channel::__private::run_select(
            &mut [$( $name.arm() ),*],
            $crate::channel::__private::SelectMode::timeout($t),
        );
        $( if $name.won() { let $p = $name.into_result(); $body } else )*
        $dbody
    }};
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
