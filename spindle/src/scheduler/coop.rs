//! Cooperative preemption: where a coroutine's turn ends if it does not
//! end it itself.
//!
//! spindle never interrupts a coroutine between instructions (DESIGN.md,
//! "Preemption": a signal could land while it holds the allocator's lock).
//! Instead every *runtime call* — a channel operation, a lock, a socket
//! call, a spawn, [`checkpoint`](crate::checkpoint) — calls [`charge`]
//! (on entry) or [`charge_done`] (channel operations, once they completed
//! without parking: a park ends the turn anyway), which ends the turn
//! there if
//!
//! - the turn used up its budget of [`BUDGET`](crate::policy::BUDGET)
//!   runtime calls (so a coroutine whose calls never block, say a
//!   producer on a channel that always has room, still takes turns, as
//!   tokio's coop budget does);
//! - the monitor marked the turn as too long (`Remote::preempt`, set after
//!   half the hold threshold, Go's sysmon `preemptone`);
//! - under a scheduling policy: its slice ran out, or a wake-up arrived
//!   (an inbox push, a timer due) that the policy may rank higher.
//!
//! The turn ends with `Suspend::Forced`; the worker counts it and gives
//! the coroutine back to the policy. A call is charged on entry, before it
//! takes anything, so ending the turn there is as safe as any park.

use super::worker::{self, Context};
use crate::coroutine::task::Suspend;
use crate::park;
use crate::policy::Why;

/// Charges one runtime call to the running coroutine's turn, and ends the
/// turn here if it is over. Does nothing on a thread that is not running
/// a coroutine.
///
/// Not inlined, like `worker::context`: a migratable coroutine may resume
/// on another thread after the switch inside, and the thread-local read
/// here must not be reused by a caller after it. The fast path is a
/// thread-local read, a flag load and a counter decrement.
#[inline(never)]
pub(crate) fn charge() {
    charge_and(true);
}

/// [`charge`] for a call that has already done its work (a channel
/// operation that completed without parking): ends the turn if it is over
/// but never unwinds, so a cancelled coroutine does not drop the value it
/// just received; it sees the cancellation at its next blocking call.
/// A call that parks needs no charge at all: parking ends the turn.
#[inline(never)]
pub(crate) fn charge_done() {
    charge_and(false);
}

#[inline(always)]
fn charge_and(unwind: bool) {
    let cx = worker::context_raw();
    if cx.is_null() {
        return;
    }
    // SAFETY: a non-null context pointer is this thread's live worker
    // context; it outlives this call.
    let cx = unsafe { &*cx };
    if let Some(why) = cx.turn_over() {
        end_turn(cx, why, unwind);
    }
}

/// Ends the running coroutine's turn: it suspends with `Suspend::Forced`
/// and its worker requeues it as `why` says. With `unwind`, a cancel that
/// arrived meanwhile unwinds it here, as after `yield_now`.
#[cold]
#[inline(never)]
fn end_turn(cx: &Context, why: Why, unwind: bool) {
    let Some(hp) = worker::current_task() else {
        return;
    };
    cx.set_forced(why);
    // SAFETY: the running coroutine's header is alive while it runs.
    let h = unsafe { hp.as_ref() };
    park::suspend(h, Suspend::Forced);
    if unwind {
        park::check_cancelled(h);
    }
}
