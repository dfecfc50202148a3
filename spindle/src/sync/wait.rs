//! Wait queues: how every blocking primitive parks its callers and hands
//! them a result.
//!
//! A caller that must wait creates a [`Waiter`] on its own stack (its
//! coroutine's stack, or its thread's), links one [`Node`] per thing it
//! waits for into the primitive's [`WaitList`] under the primitive's lock,
//! unlocks, and calls [`Waiter::wait`]. Whoever makes progress possible
//! pops a node under that lock, *claims* its waiter with [`Waiter::try_claim`]
//! (a compare-and-swap, so of several nodes of one `select!` only one
//! wins), does the hand-off (moves a value into the waiter's slot, passes
//! lock ownership, grants permits), and finishes the claim, which
//! publishes a token and unparks the waiter.
//!
//! The waiter's state word:
//!
//! | state            | meaning                                   | set by                 |
//! | ---------------- | ----------------------------------------- | ---------------------- |
//! | `WAITING`        | linked, nobody has chosen it              | `Waiter::new`          |
//! | `ABORTED`        | gave up (timeout, cancellation)           | the waiter, by CAS     |
//! | `CLAIMED`        | a waker chose it and is handing off       | the waker, by CAS      |
//! | `DONE + token`   | hand-off complete; the token says what    | the waker (Release)    |
//!
//! `WAITING → ABORTED` and `WAITING → CLAIMED` race by compare-and-swap,
//! so a waiter that times out either aborts (and nobody hands it anything)
//! or sees that it was claimed and waits the few instructions until the
//! hand-off is done: a timed-out `recv` never loses a message, a timed-out
//! `lock` never loses ownership.
//!
//! # Invariants (the unsafe code in this module and its users relies on them)
//!
//! 1. A `Waiter` and its `Node`s are pinned where they were created (the
//!    waiting party's stack; a parked coroutine's stack does not move) and
//!    outlive every access below.
//! 2. A node is linked into at most one list at a time, and its links are
//!    read or written only by someone holding the lock that guards that
//!    list.
//! 3. A waker touches a node only while holding its list's lock, and
//!    touches the waiter only between a successful `try_claim` and the
//!    [`Claim`]'s finish; the finish's Release store of `DONE + token` is
//!    its last access (the unparker it then uses was moved out before).
//! 4. The waiting party frees its waiter and nodes only after `wait`
//!    returned and, for every list a node of it was linked into and was not
//!    popped by the claiming waker, after it locked that list and removed
//!    the node ([`WaitList::remove`]). A waker that pops a node and fails to
//!    claim it touches it no more once it releases the lock.
//!
//! So a node is always valid while linked, a claimed waiter is valid until
//! its claim finishes, and nobody parks on memory that might be freed.

use std::cell::UnsafeCell;
use std::marker::PhantomPinned;
use std::ptr;
use std::time::Instant;

use std::ptr::NonNull;

use crate::coroutine::task::Header;
use crate::loom::{AtomicUsize, Ordering, thread};
use crate::park::{self, WaitReason};

const WAITING: usize = 0;
const ABORTED: usize = 1;
const CLAIMED: usize = 2;
const DONE: usize = 3;

/// How a [`Waiter::wait`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Woken {
    /// A waker finished a claim with this token.
    Token(usize),
    /// The deadline passed first; the waiter is aborted.
    TimedOut,
    /// Shutdown cancelled the coroutine; the waiter is aborted. The caller
    /// unlinks its nodes, releases its locks, then calls
    /// [`park::cancellation_point`], which unwinds.
    Cancelled,
}

/// One blocking call's wait: who to wake, and whether it was chosen.
pub(crate) struct Waiter {
    state: AtomicUsize,
    /// Who waits; a thread's handle is taken by the claiming waker
    /// (invariant 3).
    who: UnsafeCell<Who>,
    _pinned: PhantomPinned,
}

/// The waiting party.
enum Who {
    /// A coroutine, by header address: it cannot finish while it waits,
    /// and a claimed waiter waits (spinning, never parking) until its
    /// claim finishes, so the waker needs no reference of its own (see
    /// `park::unpark_with`).
    Coroutine(NonNull<Header>),
    /// A plain thread.
    Thread(Option<thread::Thread>),
}

// SAFETY: `unparker` is taken only by the one waker whose CAS moved
// `state` to CLAIMED; everything else is atomic.
unsafe impl Sync for Waiter {}
// SAFETY: as above; an `Unparker` is `Send`.
unsafe impl Send for Waiter {}

impl Waiter {
    /// A waiter for the calling coroutine (or thread).
    pub(crate) fn new() -> Waiter {
        Waiter {
            state: AtomicUsize::new(WAITING),
            who: UnsafeCell::new(match park::current_coroutine() {
                Some(hp) => Who::Coroutine(hp),
                None => Who::Thread(Some(thread::current())),
            }),
            _pinned: PhantomPinned,
        }
    }

    /// Chooses this waiter, if nobody has chosen it and it has not given
    /// up. The returned claim must be finished (dropping it finishes with
    /// token 0).
    pub(crate) fn try_claim(&self) -> Option<Claim> {
        // Acquire: see what the waiter wrote before linking its node (a
        // value it offers, its slot); it is published to us by the list's
        // lock already, but a select's other lists are not ours.
        if self
            .state
            .compare_exchange(WAITING, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return None;
        }
        // SAFETY: invariant 3: our CAS made us the only one to take it.
        let who = match unsafe { &mut *self.who.get() } {
            Who::Coroutine(hp) => Woke::Coroutine(*hp),
            Who::Thread(t) => Woke::Thread(t.take()),
        };
        Some(Claim {
            waiter: self,
            who,
            token: 0,
        })
    }

    /// Gives up before waiting (a `select!` that found an arm ready while
    /// registering). Returns `false` if a waker claimed it first: then
    /// [`wait`](Self::wait) returns the hand-off at once.
    pub(crate) fn abort(&self) -> bool {
        self.state
            .compare_exchange(WAITING, ABORTED, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    /// Whether nobody has claimed it and it has not aborted (a hint: it may
    /// change at once, except under the lock of a list it is linked into
    /// for a waiter that does not select).
    pub(crate) fn is_waiting(&self) -> bool {
        self.state.load(Ordering::Relaxed) == WAITING
    }

    /// Parks until a waker finishes a claim on this waiter, `deadline`
    /// passes, or shutdown cancels the coroutine.
    ///
    /// Records `reason` for introspection. Never unwinds (see [`Woken`]).
    pub(crate) fn wait(&self, reason: WaitReason, deadline: Option<Instant>) -> Woken {
        // SAFETY: only the waker's `try_claim` writes `who`, and only the
        // thread handle, which we do not read.
        let coroutine = match unsafe { &*self.who.get() } {
            Who::Coroutine(hp) => Some(*hp),
            Who::Thread(_) => None,
        };
        let mut cancelled = false;
        loop {
            // Acquire: pairs with the finish's Release, so the hand-off
            // (the value in our slot, the lock ownership) is visible.
            let s = self.state.load(Ordering::Acquire);
            if s >= DONE {
                return Woken::Token(s - DONE);
            }
            if s == CLAIMED {
                // A waker is between its claim and its finish: a few
                // instructions, after which it publishes and (if we
                // parked) enqueues us. Never park here: the waker has no
                // reference to our coroutine after it publishes (see
                // `Who::Coroutine`).
                std::hint::spin_loop();
                #[cfg(loom)]
                loom::thread::yield_now();
                continue;
            }
            let expired = deadline.is_some_and(|d| Instant::now() >= d);
            if expired || cancelled {
                if self
                    .state
                    .compare_exchange(WAITING, ABORTED, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
                {
                    return if cancelled {
                        Woken::Cancelled
                    } else {
                        Woken::TimedOut
                    };
                }
                continue;
            }
            match coroutine {
                Some(hp) => cancelled = park::park_current_raw(hp, reason, deadline),
                None => park::park_thread_raw(deadline),
            }
        }
    }
}

/// A waker's exclusive right to hand something to a [`Waiter`]; finishing
/// it (explicitly or by drop) publishes the token and unparks the waiter.
#[must_use = "a claim must be finished, or the waiter waits on the hand-off forever"]
pub(crate) struct Claim {
    waiter: *const Waiter,
    who: Woke,
    token: usize,
}

/// Whom a finished claim wakes.
enum Woke {
    Coroutine(NonNull<Header>),
    Thread(Option<thread::Thread>),
}

impl Claim {
    /// Finishes the hand-off with `token`, which the waiter's
    /// [`Waiter::wait`] returns.
    pub(crate) fn finish(mut self, token: usize) {
        self.token = token;
        // Drop does the work.
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let (waiter, done) = (self.waiter, DONE + self.token);
        // Release: the hand-off written before is visible to the waiter's
        // Acquire load.
        let publish = || {
            // SAFETY: invariant 3: the waiter is alive until this store,
            // which is our last access to it.
            unsafe { (*waiter).state.store(done, Ordering::Release) }
        };
        match &mut self.who {
            // SAFETY: the claimed coroutine waits (without parking again)
            // until `publish` has run.
            Woke::Coroutine(hp) => unsafe { park::unpark_with(*hp, publish) },
            Woke::Thread(t) => {
                let t = t.take();
                publish();
                if let Some(t) = t {
                    t.unpark();
                }
            }
        }
    }
}

/// The whole wait of a blocking call that waits in one list: links a
/// fresh node (with `data`) into the list `list` picks from the primitive's
/// locked state, releases `guard`, and parks. Returns the claim's token,
/// or `None` if the wait gave up (timed out); on giving up, `unlink`
/// (which takes the primitive's lock and removes the node) runs before
/// this returns, and a coroutine cancelled by shutdown then unwinds.
///
/// `resource`, if not 0, is recorded for snapshots (`set_blocked_on`).
pub(crate) fn wait_in<G, S>(
    mut guard: G,
    list: impl FnOnce(&mut S) -> &mut WaitList,
    data: usize,
    reason: WaitReason,
    deadline: Option<Instant>,
    resource: usize,
    unlink: impl FnOnce(&Node),
) -> Option<usize>
where
    G: std::ops::DerefMut<Target = S>,
{
    let waiter = std::pin::pin!(Waiter::new());
    let node = std::pin::pin!(Node::new(&waiter, 0, data));
    // SAFETY: invariants 1 and 4: `node` is new (so unlinked) and pinned in
    // this frame; a waker pops it when it claims us, and otherwise
    // `unlink` removes it below, before the frame ends.
    unsafe { list(&mut guard).push_back(&node) };
    drop(guard);
    if resource != 0 {
        park::set_blocked_on(resource, 0);
    }
    let woken = waiter.wait(reason, deadline);
    if resource != 0 {
        park::set_blocked_on(0, 0);
    }
    match woken {
        Woken::Token(t) => Some(t),
        Woken::TimedOut | Woken::Cancelled => {
            unlink(&node);
            if woken == Woken::Cancelled {
                // Unwinds (the runtime shuts down), now that the node is
                // unlinked and the caller's lock is released.
                park::cancellation_point();
            }
            None
        }
    }
}

#[derive(Clone, Copy)]
struct Links {
    prev: *const Node,
    next: *const Node,
    linked: bool,
}

/// One waiter's entry in one [`WaitList`].
pub(crate) struct Node {
    links: UnsafeCell<Links>,
    waiter: *const Waiter,
    /// Which of its waiter's nodes this is (the `select!` arm), returned
    /// to the waiter as the token by wakers that want to say so.
    pub(crate) arm: usize,
    /// What the waiter asks or offers, by primitive: a slot for a value, a
    /// number of permits, a mode. Written before linking, read by wakers
    /// under the lock.
    pub(crate) data: usize,
    _pinned: PhantomPinned,
}

// SAFETY: the links are guarded by the list's lock (invariant 2); the rest
// is immutable after creation.
unsafe impl Sync for Node {}
// SAFETY: as above.
unsafe impl Send for Node {}

impl Node {
    /// A node for `waiter`; `arm` and `data` as the primitive defines them.
    pub(crate) fn new(waiter: &Waiter, arm: usize, data: usize) -> Node {
        Node {
            links: UnsafeCell::new(Links {
                prev: ptr::null(),
                next: ptr::null(),
                linked: false,
            }),
            waiter,
            arm,
            data,
            _pinned: PhantomPinned,
        }
    }

    /// The node's waiter.
    pub(crate) fn waiter(&self) -> &Waiter {
        // SAFETY: invariant 1: the waiter outlives its nodes' accesses.
        unsafe { &*self.waiter }
    }

    /// Whether it is in a list. Only meaningful under that list's lock.
    pub(crate) fn is_linked(&self) -> bool {
        // SAFETY: invariant 2: the caller holds the list's lock (or owns
        // the node and knows it was never linked).
        unsafe { (*self.links.get()).linked }
    }
}

/// An intrusive FIFO of [`Node`]s, guarded by its primitive's lock (every
/// method is called with that lock held: invariant 2).
pub(crate) struct WaitList {
    head: *const Node,
    tail: *const Node,
    len: usize,
}

// SAFETY: it is only reached through its primitive's lock; the nodes it
// points to are `Sync`.
unsafe impl Send for WaitList {}

impl Default for WaitList {
    fn default() -> Self {
        WaitList::new()
    }
}

impl WaitList {
    /// An empty list.
    pub(crate) const fn new() -> WaitList {
        WaitList {
            head: ptr::null(),
            tail: ptr::null(),
            len: 0,
        }
    }

    /// Whether no node is linked.
    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_null()
    }

    /// How many nodes are linked.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Links `node` at the back.
    ///
    /// # Safety
    /// `node` is not linked anywhere, stays where it is until unlinked, and
    /// its owner follows invariant 4 before freeing it.
    pub(crate) unsafe fn push_back(&mut self, node: &Node) {
        // SAFETY: invariant 2 (we hold the lock); the tail, if any, is a
        // linked node and so alive (invariant 1).
        unsafe {
            let l = &mut *node.links.get();
            debug_assert!(!l.linked);
            *l = Links {
                prev: self.tail,
                next: ptr::null(),
                linked: true,
            };
            match self.tail.as_ref() {
                Some(t) => (*t.links.get()).next = node,
                None => self.head = node,
            }
        }
        self.tail = node;
        self.len += 1;
    }

    /// Links `node` at the front (a waiter that was woken, lost the race
    /// for the resource, and keeps its place: Go's LIFO re-queue for
    /// waiters that already waited).
    ///
    /// # Safety
    /// As for [`push_back`](Self::push_back).
    pub(crate) unsafe fn push_front(&mut self, node: &Node) {
        // SAFETY: as in `push_back`.
        unsafe {
            let l = &mut *node.links.get();
            debug_assert!(!l.linked);
            *l = Links {
                prev: ptr::null(),
                next: self.head,
                linked: true,
            };
            match self.head.as_ref() {
                Some(h) => (*h.links.get()).prev = node,
                None => self.tail = node,
            }
        }
        self.head = node;
        self.len += 1;
    }

    /// The first node, still linked.
    pub(crate) fn front(&self) -> Option<&Node> {
        // SAFETY: linked nodes are alive (invariant 1).
        unsafe { self.head.as_ref() }
    }

    /// Unlinks and returns the first node. It stays valid while the caller
    /// holds the lock (invariant 4).
    pub(crate) fn pop_front(&mut self) -> Option<&Node> {
        let n = self.front()? as *const Node;
        // SAFETY: `n` is linked here.
        unsafe {
            self.unlink(&*n);
            Some(&*n)
        }
    }

    /// Unlinks `node` if it is linked (into this list: a node of the
    /// caller's, which knows which list it used). Returns whether it was.
    pub(crate) fn remove(&mut self, node: &Node) -> bool {
        if !node.is_linked() {
            return false;
        }
        // SAFETY: linked, and (by the caller's knowledge) into this list.
        unsafe { self.unlink(node) };
        true
    }

    /// Pops nodes until one whose waiter it can claim; nodes of waiters
    /// that gave up or were chosen elsewhere are dropped from the list on
    /// the way. `skip(node)` lets a `select!` skip its own other arms
    /// (returns `true` to leave the node where it is and look further).
    pub(crate) fn pop_claim(&mut self, skip: impl Fn(&Node) -> bool) -> Option<(&Node, Claim)> {
        let mut cur = self.head;
        while !cur.is_null() {
            // SAFETY: linked nodes are alive (invariant 1).
            let n = unsafe { &*cur };
            // SAFETY: invariant 2.
            let next = unsafe { (*n.links.get()).next };
            if skip(n) {
                cur = next;
                continue;
            }
            // SAFETY: `n` is linked here.
            unsafe { self.unlink(n) };
            if let Some(c) = n.waiter().try_claim() {
                return Some((n, c));
            }
            cur = next;
        }
        None
    }

    /// Iterates over the linked nodes, front to back.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Node> + '_ {
        let mut cur = self.head;
        std::iter::from_fn(move || {
            // SAFETY: linked nodes are alive (invariant 1).
            let n = unsafe { cur.as_ref()? };
            // SAFETY: invariant 2.
            cur = unsafe { (*n.links.get()).next };
            Some(n)
        })
    }

    /// # Safety
    /// `node` is linked into this list.
    unsafe fn unlink(&mut self, node: &Node) {
        // SAFETY: invariant 2; neighbours are linked and so alive.
        unsafe {
            let l = *node.links.get();
            debug_assert!(l.linked);
            match l.prev.as_ref() {
                Some(p) => (*p.links.get()).next = l.next,
                None => self.head = l.next,
            }
            match l.next.as_ref() {
                Some(n) => (*n.links.get()).prev = l.prev,
                None => self.tail = l.prev,
            }
            *node.links.get() = Links {
                prev: ptr::null(),
                next: ptr::null(),
                linked: false,
            };
        }
        self.len -= 1;
    }
}
