//! The stack overflow report: a SIGSEGV/SIGBUS handler that recognises a
//! fault in the guard page of the coroutine running on this thread, names
//! the coroutine, and aborts.
//!
//! ```text
//!  worker thread                         kernel
//!  set_current(&header.guard)
//!  resume ──► coroutine recurses ──► touches its guard page ──► SIGSEGV
//!                                                                 │
//!  handler, on this thread's AltStack (the coroutine stack is full)◄┘
//!    si_addr in CURRENT's guard range?  yes: write(2) the report, abort()
//!                                        no: chain to the previous handler
//!  set_current(null) after the coroutine suspends
//! ```
//!
//! # Invariants the unsafe code relies on
//!
//! - `CURRENT` is null or points to a [`GuardInfo`] that stays valid, and is
//!   not mutated except through its atomics, until `set_current` replaces
//!   it (the contract of the unsafe [`set_current`]). When it is null, the
//!   resolver registered with the unsafe [`set_resolver`] (the runtime's
//!   way: it reads the worker's record of its running coroutine) gives
//!   such a pointer or null.
//! - `PREV[i]` is written once, before our handler is installed for that
//!   signal, and only read afterwards.
//! - The handler calls only async-signal-safe functions (`write`,
//!   `sigaction`, `raise`, `abort`, the previous handler), allocates
//!   nothing, takes no lock and formats integers by hand.
//!
//! The handler runs on the thread's alternate signal stack (`altstack.rs`),
//! since the overflowed stack has no room left; every worker installs one.

use std::cell::Cell;
use std::io;
use std::panic::Location;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};

/// What the overflow report says about the coroutine running on a thread.
/// It lives in the coroutine's heap header, so it stays valid while the
/// coroutine runs. The guard range is attached when the coroutine gets its
/// stack (at its first run), hence the atomics: the runtime can set it
/// through a shared reference.
#[repr(C)]
pub(crate) struct GuardInfo {
    /// Start of the guard page, 0 while no stack is attached.
    guard_start: AtomicUsize,
    /// End of the guard page (exclusive).
    guard_end: AtomicUsize,
    /// Usable stack size in bytes.
    stack_size: AtomicUsize,
    /// The coroutine's id.
    pub(crate) id: u64,
    /// The coroutine's name, if it has one.
    pub(crate) name: Option<Box<str>>,
    /// Where the coroutine was spawned.
    pub(crate) location: &'static Location<'static>,
}

impl GuardInfo {
    /// Describes coroutine `id`; no stack is attached yet.
    pub(crate) fn new(
        id: u64,
        name: Option<Box<str>>,
        location: &'static Location<'static>,
    ) -> Self {
        GuardInfo {
            guard_start: AtomicUsize::new(0),
            guard_end: AtomicUsize::new(0),
            stack_size: AtomicUsize::new(0),
            id,
            name,
            location,
        }
    }

    /// Records the guard page and size of the stack the coroutine runs on.
    /// Call it before the first `set_current` with this info.
    pub(crate) fn attach(&self, stack: &super::Stack) {
        let (start, end) = stack.guard_range();
        // Relaxed: the handler reads these on this same thread, after
        // `set_current` and the resume, which are ordered after the stores.
        self.guard_start.store(start, Ordering::Relaxed);
        self.guard_end.store(end, Ordering::Relaxed);
        self.stack_size
            .store(stack.usable_size(), Ordering::Relaxed);
    }

    /// Usable size of the attached stack in bytes; 0 before one is attached.
    pub(crate) fn stack_size(&self) -> usize {
        self.stack_size.load(Ordering::Relaxed)
    }

    /// `[start, end)` of the attached guard page; `(0, 0)` if none.
    pub(crate) fn guard_range(&self) -> (usize, usize) {
        (
            self.guard_start.load(Ordering::Relaxed),
            self.guard_end.load(Ordering::Relaxed),
        )
    }
}

std::thread_local! {
    /// The guard info of the coroutine running on this thread, or null.
    /// Const-initialised and without destructor: a plain TLS slot, cheap to
    /// set and safe to read from a signal handler.
    static CURRENT: Cell<*const GuardInfo> = const { Cell::new(ptr::null()) };
}

/// Tells the overflow handler which coroutine runs on this thread: call it
/// with the coroutine's info right before resuming it and with null right
/// after it suspends or returns. Costs one thread-local store.
///
/// # Safety
///
/// `info` must be null, or point to a `GuardInfo` that stays valid and is
/// not mutated (other than through [`GuardInfo::attach`]) until the next
/// `set_current` call on this thread.
#[cfg_attr(
    not(test),
    allow(
        dead_code,
        reason = "the runtime uses set_resolver; tests drive corosensei directly"
    )
)]
pub(crate) unsafe fn set_current(info: *const GuardInfo) {
    CURRENT.set(info);
}

/// How the handler finds the running coroutine's info when `set_current`
/// was not used: a function the runtime registers once, which reads what
/// the worker already records on every switch (so the switch itself pays
/// nothing extra). Null until registered.
static RESOLVER: AtomicPtr<()> = AtomicPtr::new(ptr::null_mut());

/// Registers `f` as the way to find the `GuardInfo` of the coroutine
/// running on the calling thread (null if none).
///
/// # Safety
///
/// `f` must be async-signal-safe (read memory only: no allocation, lock or
/// lazily initialised thread-local), and return null or a pointer that
/// satisfies the same contract as [`set_current`]'s argument.
pub(crate) unsafe fn set_resolver(f: fn() -> *const GuardInfo) {
    RESOLVER.store(f as *mut (), Ordering::Release);
}

/// The signals handled: a guard page access raises SIGSEGV; SIGBUS is
/// handled the same way for architectures and kernels that raise it.
const SIGNALS: [libc::c_int; 2] = [libc::SIGSEGV, libc::SIGBUS];

/// The handlers installed before ours, one per entry of [`SIGNALS`].
static PREV: [OnceLock<libc::sigaction>; 2] = [OnceLock::new(), OnceLock::new()];

/// Installs the process-wide SIGSEGV and SIGBUS handler, once (later calls
/// do nothing). Faults that are not a spindle guard page go to the handler
/// that was installed before (Rust's own, which reports main-thread and
/// thread stack overflows, or the default action).
pub(crate) fn install_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for (i, &sig) in SIGNALS.iter().enumerate() {
            // SAFETY: an all-zero sigaction is a valid value (SIG_DFL, no
            // flags, empty mask).
            let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
            // SAFETY: querying only (null new action); `old` is writable.
            if unsafe { libc::sigaction(sig, ptr::null(), &mut old) } != 0 {
                continue; // cannot happen for these signals; leave them alone
            }
            // Written before our handler can run (invariant 2).
            let _ = PREV[i].set(old);
            // SAFETY: as above.
            let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
            new.sa_sigaction = handler as *const () as libc::sighandler_t;
            new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            // SAFETY: `new.sa_mask` is a valid sigset to clear.
            unsafe { libc::sigemptyset(&mut new.sa_mask) };
            // SAFETY: `handler` has the SA_SIGINFO signature and is
            // async-signal-safe (invariant 3).
            unsafe { libc::sigaction(sig, &new, ptr::null_mut()) };
        }
    });
}

/// The SIGSEGV/SIGBUS handler.
extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
    // Cannot fail: the key is const-initialised and has no destructor.
    let mut current = CURRENT.get();
    if current.is_null() {
        let r = RESOLVER.load(Ordering::Acquire);
        if !r.is_null() {
            // SAFETY: only `set_resolver` stores here, always a
            // `fn() -> *const GuardInfo`, async-signal-safe by its contract.
            let f: fn() -> *const GuardInfo = unsafe { std::mem::transmute(r) };
            current = f();
        }
    }
    // A positive si_code: a real fault, not a signal sent by kill/raise.
    if code > 0 && !current.is_null() {
        // SAFETY: non-null CURRENT points to a live GuardInfo (invariant 1).
        let g = unsafe { &*current };
        let (start, end) = g.guard_range();
        if start <= addr && addr < end {
            report(g);
            // SAFETY: abort is async-signal-safe and never returns.
            unsafe { libc::abort() };
        }
    }
    let i = usize::from(sig != libc::SIGSEGV);
    // SAFETY: forwarding the kernel's arguments for the same signal.
    unsafe { chain(sig, info, ctx, PREV[i].get()) };
}

/// Hands a fault that is not ours to the handler installed before ours.
///
/// # Safety
///
/// Must be called from the handler of `sig`, with the kernel's arguments.
unsafe fn chain(
    sig: libc::c_int,
    info: *mut libc::siginfo_t,
    ctx: *mut libc::c_void,
    prev: Option<&libc::sigaction>,
) {
    let action = prev.map_or(libc::SIG_DFL, |p| p.sa_sigaction);
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let sent = unsafe { (*info).si_code } <= 0; // by kill/raise, not a fault
    if action == libc::SIG_IGN && sent {
        // What SIG_IGN would have done with a sent signal.
    } else if action == libc::SIG_DFL || action == libc::SIG_IGN {
        // Restore the default action and return: the faulting instruction
        // runs again and the fault now kills the process with `sig` (a
        // fault cannot be ignored). A sent signal is sent again instead.
        // SAFETY: an all-zero sigaction is SIG_DFL with no flags.
        let dfl: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: sigaction and raise are async-signal-safe; the raised
        // signal stays pending (blocked in this handler) until we return.
        unsafe {
            libc::sigaction(sig, &dfl, ptr::null_mut());
            if sent {
                libc::raise(sig);
            }
        }
    } else if prev.is_some_and(|p| p.sa_flags & libc::SA_SIGINFO != 0) {
        // SAFETY: with SA_SIGINFO the previous handler has this signature.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(action) };
        f(sig, info, ctx);
    } else {
        // SAFETY: without SA_SIGINFO the previous handler takes the signal.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(action) };
        f(sig);
    }
}

/// Writes the overflow report for `g` to stderr, async-signal-safely.
fn report(g: &GuardInfo) {
    let mut w = Writer::new();
    w.str("\nspindle: coroutine ");
    w.u64(g.id);
    if let Some(name) = &g.name {
        w.str(" \"");
        w.str(name);
        w.str("\"");
    }
    w.str(" (spawned at ");
    w.str(g.location.file());
    w.str(":");
    w.u64(g.location.line().into());
    w.str(":");
    w.u64(g.location.column().into());
    w.str(") overflowed its stack of ");
    w.u64(g.stack_size.load(Ordering::Relaxed) as u64);
    w.str(" bytes.\nspindle: raise it for this coroutine with Builder::stack_size, ");
    w.str("or for all with SPINDLE_STACK_SIZE=<bytes>.\n");
    w.flush();
}

/// A fixed buffer in front of `write(2)` on stderr: no allocation, no lock.
struct Writer {
    /// Bytes not yet written.
    buf: [u8; 256],
    /// How many of `buf` are used.
    len: usize,
}

impl Writer {
    /// An empty buffer.
    fn new() -> Self {
        Writer {
            buf: [0; 256],
            len: 0,
        }
    }

    /// Appends `s`, writing out whenever the buffer fills.
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    /// Appends raw bytes, writing out whenever the buffer fills.
    fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.len == self.buf.len() {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
    }

    /// Appends `n` in decimal.
    fn u64(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.bytes(&digits[i..]);
    }

    /// Writes the buffer to fd 2, retrying on EINTR and partial writes.
    fn flush(&mut self) {
        let mut at = 0;
        while at < self.len {
            let rest = &self.buf[at..self.len];
            // SAFETY: `rest` is a valid, initialised byte slice.
            let n = unsafe { libc::write(2, rest.as_ptr().cast(), rest.len()) };
            if n > 0 {
                at += n as usize;
            } else if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            } else {
                break; // stderr is gone; nothing more to do
            }
        }
        self.len = 0;
    }
}
