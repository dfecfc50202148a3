//! The alternate signal stack each worker thread installs, so that the
//! overflow handler (`overflow.rs`) has a stack to run on when a coroutine's
//! stack is full.
//!
//! ```text
//!  mapping:  │ guard page │ usable: 64 KiB (or the kernel's minimum × 4) │
//!            low                                                       high
//! ```
//!
//! # Invariants the unsafe code relies on
//!
//! - An [`AltStack`] is used only on the thread that installed it (it is
//!   not `Send`) and is uninstalled, with the thread's previous alternate
//!   stack restored, before its memory is unmapped; if uninstalling fails
//!   the memory is leaked instead.
//! - A signal handler never drops an `AltStack`, so the thread is not
//!   running on it when it is uninstalled.

use std::io;
use std::marker::PhantomData;
use std::ptr::{self, NonNull};

use super::sys;

/// The usable size of an [`AltStack`]: the handler needs little, but the
/// handler it chains to (Rust's) formats a message.
const ALT_STACK_SIZE: usize = 64 << 10;

/// The auxiliary vector entry with the kernel's minimum signal stack size
/// (grows with the CPU's vector registers; not in the libc crate).
const AT_MINSIGSTKSZ: libc::c_ulong = 51;

/// A per-worker alternate signal stack: the overflow handler runs on it,
/// since the overflowed stack has no room left. Installed on the current
/// thread by [`AltStack::install`]; dropping it restores the thread's
/// previous alternate stack and unmaps it. Not `Send`: it belongs to the
/// thread that installed it and must be dropped there.
pub(crate) struct AltStack {
    /// Start of the mapping (the guard page).
    map: NonNull<u8>,
    /// Length of the mapping (guard page included).
    len: usize,
    /// The thread's alternate stack before ours.
    prev: libc::stack_t,
    /// Ties the value to its thread.
    _not_send: PhantomData<*const ()>,
}

impl AltStack {
    /// Maps an alternate signal stack (64 KiB, or the system minimum if
    /// larger, plus a guard page) and installs it on the current thread.
    pub(crate) fn install() -> io::Result<AltStack> {
        let page = sys::page_size();
        // SAFETY: getauxval has no preconditions; 0 means "not provided".
        let min = unsafe { libc::getauxval(AT_MINSIGSTKSZ) } as usize;
        let size = ALT_STACK_SIZE
            .max(min.saturating_mul(4))
            .max(libc::SIGSTKSZ)
            .next_multiple_of(page);
        let len = size + page;
        let map = sys::map(len).map_err(|e| sys::map_error(e, size))?;
        // SAFETY: the first page of the fresh mapping holds nothing.
        if let Err(e) = unsafe { sys::install_guard(map.as_ptr(), page) } {
            // SAFETY: the mapping is ours and unused.
            unsafe { sys::unmap(map.as_ptr(), len) };
            return Err(sys::guard_error(e, size));
        }
        let new = libc::stack_t {
            // SAFETY: `page < len`, so this stays inside the mapping.
            ss_sp: unsafe { map.as_ptr().add(page) }.cast(),
            ss_flags: 0,
            ss_size: size,
        };
        // SAFETY: an all-zero stack_t is a valid value to overwrite.
        let mut prev: libc::stack_t = unsafe { std::mem::zeroed() };
        // SAFETY: `new` describes writable memory we own for as long as it
        // stays installed (until Drop); `prev` is writable.
        if unsafe { libc::sigaltstack(&new, &mut prev) } != 0 {
            let err = io::Error::last_os_error();
            // SAFETY: the mapping was not installed, so nothing uses it.
            unsafe { sys::unmap(map.as_ptr(), len) };
            return Err(err);
        }
        Ok(AltStack {
            map,
            len,
            prev,
            _not_send: PhantomData,
        })
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        let mut prev = self.prev;
        if prev.ss_flags & libc::SS_DISABLE != 0 {
            prev = libc::stack_t {
                ss_sp: ptr::null_mut(),
                ss_flags: libc::SS_DISABLE,
                ss_size: 0,
            };
        }
        // SAFETY: we are on the installing thread (AltStack is !Send) and not
        // running on the alternate stack (a handler never drops it); `prev`
        // is what the thread had before, still owned by whoever installed it.
        if unsafe { libc::sigaltstack(&prev, ptr::null_mut()) } == 0 {
            // SAFETY: the mapping is no longer the thread's alternate stack.
            unsafe { sys::unmap(self.map.as_ptr(), self.len) };
        }
        // Otherwise leak the mapping: it may still be installed.
    }
}

impl std::fmt::Debug for AltStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AltStack").field("len", &self.len).finish()
    }
}
