//! The memory system calls behind stacks — map, guard, unmap — and the
//! error messages that explain their failures to the user.
//!
//! # Invariants the unsafe code relies on
//!
//! - [`map`] returns a fresh private anonymous mapping that nothing else in
//!   the process knows about; its caller owns it until it calls [`unmap`].
//! - [`install_guard`] and [`unmap`] are only called on page-aligned ranges
//!   inside such a mapping, which no Rust reference points into and no
//!   coroutine runs on.
//!
//! # Guard pages
//!
//! Linux 6.13 added `madvise(MADV_GUARD_INSTALL)`: the range faults on any
//! access, but the mapping is not split, so a guard costs no kernel memory
//! map (VMA). Older kernels reject it with `EINVAL`; the first such answer
//! switches the process to `mprotect(PROT_NONE)`, which splits the mapping:
//! each guarded stack then costs two maps, and `vm.max_map_count` (65,530 by
//! default) caps the number of live stacks near 32,000.

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, Ordering};

use rustix::io::Errno;
use rustix::mm::{self, Advice, MapFlags, MprotectFlags, ProtFlags};

/// `MADV_GUARD_INSTALL` (Linux 6.13+; not yet in the libc crate).
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// The size of a memory page, a power of two.
pub(super) fn page_size() -> usize {
    // Cached: the libc lookup behind it costs ~150 instructions, and it is
    // asked on every spawn. Racing first calls store the same value.
    static PAGE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let p = PAGE.load(std::sync::atomic::Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    let p = rustix::param::page_size();
    PAGE.store(p, std::sync::atomic::Ordering::Relaxed);
    p
}

/// How this process installs guard pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GuardMode {
    /// `madvise(MADV_GUARD_INSTALL)`: no extra kernel memory map per guard.
    Madvise,
    /// `mprotect(PROT_NONE)`: splits the mapping, two maps per stack.
    Mprotect,
}

/// 0: not probed yet, 1: [`GuardMode::Madvise`], 2: [`GuardMode::Mprotect`].
/// Relaxed: the value is a hint that every thread may probe again on its
/// own (the probe is idempotent); it publishes no other memory.
static GUARD_MODE: AtomicU8 = AtomicU8::new(0);

/// The guard mode in use, or `None` before the first guard was installed.
pub(crate) fn guard_mode() -> Option<GuardMode> {
    match GUARD_MODE.load(Ordering::Relaxed) {
        1 => Some(GuardMode::Madvise),
        2 => Some(GuardMode::Mprotect),
        _ => None,
    }
}

/// Makes this process use `mode` from now on, as if probed (tests of the
/// `mprotect` fallback on kernels that have MADV_GUARD_INSTALL).
#[cfg(test)]
pub(super) fn force_guard_mode(mode: GuardMode) {
    let v = match mode {
        GuardMode::Madvise => 1,
        GuardMode::Mprotect => 2,
    };
    GUARD_MODE.store(v, Ordering::Relaxed);
}

/// Why a guard page could not be installed.
#[derive(Clone, Copy, Debug)]
pub(super) struct GuardError {
    /// The mechanism that failed.
    pub(super) mode: GuardMode,
    /// The system call's error.
    pub(super) errno: Errno,
}

/// Maps `len` bytes (a multiple of the page size) of readable, writable,
/// lazily committed memory for stacks, asking the kernel not to back it
/// with transparent huge pages (a stack must not commit 2 MiB).
pub(super) fn map(len: usize) -> Result<NonNull<u8>, Errno> {
    let flags = MapFlags::PRIVATE | MapFlags::NORESERVE | MapFlags::STACK;
    // SAFETY: a null hint lets the kernel choose an unused range, so no
    // existing memory is replaced; the result is a fresh mapping.
    let ptr = unsafe {
        mm::mmap_anonymous(
            std::ptr::null_mut(),
            len,
            ProtFlags::READ | ProtFlags::WRITE,
            flags,
        )
    }?;
    // SAFETY: `ptr..ptr+len` is the mapping just created, owned by us.
    match unsafe { mm::madvise(ptr, len, Advice::LinuxNoHugepage) } {
        // EINVAL: a kernel built without transparent huge pages.
        Ok(()) | Err(Errno::INVAL) => {}
        Err(e) => {
            // SAFETY: as above; nothing points into the mapping yet.
            unsafe { unmap(ptr.cast(), len) };
            return Err(e);
        }
    }
    // mmap never returns null on success (MAP_FIXED is not used).
    NonNull::new(ptr.cast()).ok_or(Errno::NOMEM)
}

/// Unmaps a range; errors are ignored (the range then stays mapped, which
/// only wastes address space).
///
/// # Safety
///
/// `ptr..ptr+len` must be page-aligned, inside a mapping made by [`map`],
/// and nothing may use it afterwards.
pub(super) unsafe fn unmap(ptr: *mut u8, len: usize) {
    // SAFETY: guaranteed by the caller.
    let _ = unsafe { mm::munmap(ptr.cast(), len) };
}

/// Makes `addr..addr+len` fault on any access.
///
/// # Safety
///
/// The range must be page-aligned, inside a mapping made by [`map`], and
/// hold nothing anyone will read or write.
pub(super) unsafe fn install_guard(addr: *mut u8, len: usize) -> Result<(), GuardError> {
    if GUARD_MODE.load(Ordering::Relaxed) != 2 {
        let mut retries = 0;
        loop {
            // SAFETY: guaranteed by the caller; MADV_GUARD_INSTALL only
            // discards the (unused) contents of the range.
            let r = unsafe { libc::madvise(addr.cast(), len, MADV_GUARD_INSTALL) };
            if r == 0 {
                GUARD_MODE.store(1, Ordering::Relaxed);
                return Ok(());
            }
            let errno = Errno::from_io_error(&io::Error::last_os_error()).unwrap_or(Errno::INVAL);
            match errno {
                // The kernel asks to retry when it raced with a page fault.
                Errno::AGAIN | Errno::INTR if retries < 100 => retries += 1,
                // Older kernel: it does not know the advice value.
                Errno::INVAL => {
                    GUARD_MODE.store(2, Ordering::Relaxed);
                    break;
                }
                errno => {
                    let mode = GuardMode::Madvise;
                    return Err(GuardError { mode, errno });
                }
            }
        }
    }
    // SAFETY: guaranteed by the caller.
    unsafe { mm::mprotect(addr.cast(), len, MprotectFlags::empty()) }.map_err(|errno| GuardError {
        mode: GuardMode::Mprotect,
        errno,
    })
}

/// `bytes` for people: "256 KiB", "8 MiB", "10000 bytes".
pub(super) fn human(bytes: u64) -> String {
    const KIB: u64 = 1 << 10;
    const MIB: u64 = 1 << 20;
    match bytes {
        0 => "0 bytes".to_string(),
        b if b % MIB == 0 => format!("{} MiB", b / MIB),
        b if b % KIB == 0 => format!("{} KiB", b / KIB),
        b => format!("{b} bytes"),
    }
}

/// The soft RLIMIT_AS of this process, for error messages.
fn rlimit_as() -> String {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `rl` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut rl) } != 0 {
        return "unknown".to_string();
    }
    if rl.rlim_cur == libc::RLIM_INFINITY {
        "unlimited".to_string()
    } else {
        let kib = rl.rlim_cur / 1024; // the unit of `ulimit -v`
        format!("{kib} KiB")
    }
}

/// The current vm.max_map_count, for error messages.
fn max_map_count() -> String {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}

/// The process's number of memory maps, if it is within 1% of
/// vm.max_map_count (then an mmap ENOMEM means that limit, not memory).
fn near_map_limit() -> Option<(usize, usize)> {
    let max: usize = max_map_count().parse().ok()?;
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let count = maps.lines().count();
    (count + max / 100 >= max).then_some((count, max))
}

/// The error `reserve` returns when mapping a region of stacks failed.
pub(super) fn map_error(errno: Errno, stack_size: usize) -> io::Error {
    let size = human(stack_size as u64);
    let near_limit = if errno == Errno::NOMEM {
        near_map_limit()
    } else {
        None
    };
    let msg = if let Some((count, max)) = near_limit {
        format!(
            "spindle: cannot map memory for coroutine stacks ({size} each + guard page): \
             the process has {count} kernel memory maps, at the limit vm.max_map_count = \
             {max} (mmap: {}). On kernels without MADV_GUARD_INSTALL (before Linux 6.13) \
             each guarded stack costs two maps. Raise the limit with `sysctl -w \
             vm.max_map_count=262144`, or run fewer coroutines at once",
            io::Error::from(errno),
        )
    } else if errno == Errno::NOMEM {
        format!(
            "spindle: cannot map memory for coroutine stacks ({size} each + guard page): \
             out of memory or address space (mmap: {}). Check `ulimit -v` (RLIMIT_AS, \
             currently {}) and free memory, or use smaller stacks (Builder::stack_size / \
             SPINDLE_STACK_SIZE)",
            io::Error::from(errno),
            rlimit_as(),
        )
    } else {
        format!(
            "spindle: cannot map memory for coroutine stacks ({size} each + guard page) \
             (mmap: {}). Use smaller stacks (Builder::stack_size / SPINDLE_STACK_SIZE)",
            io::Error::from(errno),
        )
    };
    io::Error::new(io::ErrorKind::OutOfMemory, msg)
}

/// The error `reserve` returns when guard pages could not be installed.
pub(super) fn guard_error(e: GuardError, stack_size: usize) -> io::Error {
    let size = human(stack_size as u64);
    let err = io::Error::from(e.errno);
    let msg = match (e.mode, e.errno) {
        (GuardMode::Mprotect, Errno::NOMEM) => format!(
            "spindle: cannot install the guard page of a coroutine stack: the process ran \
             out of kernel memory maps (vm.max_map_count = {}; mprotect: {err}). On kernels \
             without MADV_GUARD_INSTALL (before Linux 6.13) each guarded stack costs two \
             maps. Raise the limit with `sysctl -w vm.max_map_count=262144`, or run fewer \
             coroutines at once",
            max_map_count(),
        ),
        (GuardMode::Mprotect, _) => format!(
            "spindle: cannot install the guard page of a coroutine stack ({size}) \
             (mprotect: {err})"
        ),
        (GuardMode::Madvise, _) => format!(
            "spindle: cannot install the guard page of a coroutine stack ({size}): out of \
             kernel memory for page tables (madvise(MADV_GUARD_INSTALL): {err}). Free \
             memory, or run fewer coroutines at once"
        ),
    };
    io::Error::new(io::ErrorKind::OutOfMemory, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human(256 << 10), "256 KiB");
        assert_eq!(human(8 << 20), "8 MiB");
        assert_eq!(human(10_000), "10000 bytes");
    }

    #[test]
    fn max_map_count_error_names_the_sysctl() {
        let e = GuardError {
            mode: GuardMode::Mprotect,
            errno: Errno::NOMEM,
        };
        let msg = guard_error(e, 256 << 10).to_string();
        assert!(msg.contains("vm.max_map_count = "), "{msg}");
        assert!(msg.contains("sysctl -w vm.max_map_count=262144"), "{msg}");
        assert!(msg.contains("before Linux 6.13"), "{msg}");
    }
}
