//! The few OS facilities the baselines need, wrapped once: CPU affinity,
//! the resident set size, pipes, and a shared-memory counter that survives
//! `fork`.

use std::io;
use std::marker::PhantomData;
use std::sync::atomic::AtomicU64;

/// Pins the calling OS thread to a subset of the CPUs it may run on, and
/// restores the previous mask when dropped.
///
/// `sched_setaffinity(0, ..)` changes only the calling thread; threads it
/// spawns and processes it forks afterwards inherit the mask, which is how
/// the baselines put both ends of a ping-pong on one CPU. The guard is
/// `!Send` because restoring the mask from another thread would pin the
/// wrong thread.
pub struct Pinned {
    old: libc::cpu_set_t,
    cpus: usize,
    _not_send: PhantomData<*const ()>,
}

impl Pinned {
    /// Restricts the calling thread to the first `k` CPUs of its current
    /// mask (fewer if fewer are allowed; see [`Pinned::cpus`]).
    pub fn first(k: usize) -> io::Result<Pinned> {
        let old = current_mask()?;
        // SAFETY: an all-zero `cpu_set_t` is a valid, empty set.
        let mut new: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        let mut cpus = 0;
        for cpu in 0..libc::CPU_SETSIZE as usize {
            if cpus == k.max(1) {
                break;
            }
            // SAFETY: `cpu` is below CPU_SETSIZE, the capacity of the set.
            if unsafe { libc::CPU_ISSET(cpu, &old) } {
                // SAFETY: as above.
                unsafe { libc::CPU_SET(cpu, &mut new) };
                cpus += 1;
            }
        }
        set_mask(&new)?;
        Ok(Pinned {
            old,
            cpus,
            _not_send: PhantomData,
        })
    }

    /// How many CPUs the calling thread may now use.
    pub fn cpus(&self) -> usize {
        self.cpus
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        // Restoring a mask the kernel gave us cannot fail in practice; if it
        // does, the process keeps the narrower mask, which only slows it.
        let _ = set_mask(&self.old);
    }
}

/// The calling thread's CPU mask.
fn current_mask() -> io::Result<libc::cpu_set_t> {
    // SAFETY: an all-zero `cpu_set_t` is a valid, empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a live, writable `cpu_set_t` of the size we pass.
    let rc = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(set)
}

/// Sets the calling thread's CPU mask.
fn set_mask(set: &libc::cpu_set_t) -> io::Result<()> {
    // SAFETY: `set` points to a valid `cpu_set_t` of the size we pass.
    let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The process's resident set size in bytes, read from `VmRSS` in
/// `/proc/self/status` (the figure WORKLOADS.md names).
pub fn vm_rss() -> io::Result<u64> {
    status_bytes("VmRSS")
}

/// The process's page-table size in bytes (`VmPTE` in `/proc/self/status`):
/// kernel memory that `VmRSS` does not count.
pub fn vm_pte() -> io::Result<u64> {
    status_bytes("VmPTE")
}

/// A `kB` field of `/proc/self/status`, in bytes.
fn status_bytes(field: &str) -> io::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))
        .ok_or_else(|| io::Error::other(format!("no {field} line in /proc/self/status")))?;
    let kib: u64 = line[field.len() + 1..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .map_err(|e| io::Error::other(format!("cannot parse {line:?}: {e}")))?;
    Ok(kib * 1024)
}

/// One direction of a pipe: a read end and a write end, closed on drop.
pub struct Pipe {
    /// The read end.
    pub read: i32,
    /// The write end.
    pub write: i32,
}

impl Pipe {
    /// Opens a pipe whose ends are closed in exec'd children.
    pub fn new() -> io::Result<Pipe> {
        let mut fds = [0i32; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Pipe {
            read: fds[0],
            write: fds[1],
        })
    }
}

impl Pipe {
    /// Closes the read end now (a no-op if already closed).
    pub fn close_read(&mut self) {
        close(&mut self.read);
    }

    /// Closes the write end now (a no-op if already closed): a reader at
    /// the other end then sees end of file once no other copy is open.
    pub fn close_write(&mut self) {
        close(&mut self.write);
    }
}

/// Closes `*fd` unless it is -1, then sets it to -1.
fn close(fd: &mut i32) {
    if *fd >= 0 {
        // SAFETY: `*fd` was opened by `Pipe::new`, is owned by the pipe, and
        // is set to -1 right after, so it is closed exactly once.
        unsafe { libc::close(*fd) };
        *fd = -1;
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        self.close_read();
        self.close_write();
    }
}

/// Writes one byte to `fd`; async-signal-safe, so a forked child may call
/// it. Returns false on error or end of file.
pub fn put_byte(fd: i32) -> bool {
    let b = 1u8;
    // SAFETY: `b` is a live one-byte buffer.
    unsafe { libc::write(fd, (&raw const b).cast(), 1) == 1 }
}

/// Reads one byte from `fd`; async-signal-safe, so a forked child may call
/// it. Returns false on error or end of file.
pub fn get_byte(fd: i32) -> bool {
    let mut b = 0u8;
    // SAFETY: `b` is a live, writable one-byte buffer.
    unsafe { libc::read(fd, (&raw mut b).cast(), 1) == 1 }
}

/// A `u64` counter in a `MAP_SHARED` anonymous page: after `fork`, parent
/// and children increment the same memory.
pub struct SharedCounter {
    ptr: *mut AtomicU64,
}

impl SharedCounter {
    /// Maps one shared page holding a zeroed counter.
    pub fn new() -> io::Result<SharedCounter> {
        // SAFETY: an anonymous mapping with no address hint touches no
        // existing memory.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(SharedCounter { ptr: p.cast() })
    }

    /// The counter. Fresh anonymous pages are zeroed, and page alignment
    /// satisfies `AtomicU64`'s.
    pub fn get(&self) -> &AtomicU64 {
        // SAFETY: `ptr` points to a live, aligned, zero-initialised mapping
        // that outlives `&self`; AtomicU64 permits shared mutation.
        unsafe { &*self.ptr }
    }
}

impl Drop for SharedCounter {
    fn drop(&mut self) {
        // SAFETY: `ptr` is the start of the 4096-byte mapping made in `new`,
        // and no reference from `get` outlives `self`.
        unsafe { libc::munmap(self.ptr.cast(), 4096) };
    }
}

/// Waits for `pid` and returns whether it exited with status 0.
pub fn wait_ok(pid: libc::pid_t) -> io::Result<bool> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a live, writable int.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            return Ok(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// `fork()`; in the child, runs `child` (which must only make
/// async-signal-safe calls: the parent may have other threads) and
/// `_exit`s with its status. Returns the child's pid in the parent.
pub fn fork_run(child: impl FnOnce() -> i32) -> io::Result<libc::pid_t> {
    // SAFETY: the child runs only `child`, which callers restrict to
    // async-signal-safe operations, then `_exit`s without running
    // destructors or atexit handlers.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        let status = child();
        // SAFETY: `_exit` ends the child immediately; always sound.
        unsafe { libc::_exit(status) };
    }
    Ok(pid)
}
