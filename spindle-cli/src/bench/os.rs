//! The few OS facilities the baselines need, wrapped once: CPU affinity,
//! the resident set size, pipes, and a shared-memory counter and mutex that
//! survive `fork`.

use std::cell::UnsafeCell;
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

/// Bytes of the shared mappings below: one page, more than either needs.
const SHARED_PAGE: usize = 4096;

/// Maps one zeroed, page-aligned `MAP_SHARED` anonymous page: after `fork`,
/// parent and children see the same memory.
fn map_shared_page() -> io::Result<*mut libc::c_void> {
    // SAFETY: an anonymous mapping with no address hint touches no existing
    // memory.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            SHARED_PAGE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(p)
}

/// Unmaps a page from [`map_shared_page`].
///
/// # Safety
///
/// `p` came from `map_shared_page`, is unmapped only once, and no reference
/// into the page outlives the call.
unsafe fn unmap_shared_page(p: *mut libc::c_void) {
    // SAFETY: the caller's contract: `p` is a live mapping of SHARED_PAGE
    // bytes that nothing refers to any more.
    unsafe { libc::munmap(p, SHARED_PAGE) };
}

/// A `T` in a `MAP_SHARED` anonymous page: after `fork`, parent and
/// children see the same `T`. It is shared only if its state is inline
/// (atomics, not pointers into the heap, which each process has its own
/// copy of). Dropped (its destructor run, the page unmapped) by the
/// process that made it; forked children `_exit` without dropping it.
pub struct Shared<T: Sync> {
    ptr: *mut T,
}

impl<T: Sync> Shared<T> {
    /// Maps one shared page and moves `value` into it.
    pub fn new(value: T) -> io::Result<Shared<T>> {
        const {
            assert!(size_of::<T>() <= SHARED_PAGE && align_of::<T>() <= SHARED_PAGE);
        }
        let ptr: *mut T = map_shared_page()?.cast();
        // SAFETY: the fresh mapping is writable, large enough and, being
        // page-aligned, aligned enough for `T` (checked above).
        unsafe { ptr.write(value) };
        Ok(Shared { ptr })
    }
}

impl<T: Sync> std::ops::Deref for Shared<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: `ptr` holds the `T` written in `new`, live until drop;
        // `T: Sync` makes shared references from several threads (and,
        // for inline state, processes) sound.
        unsafe { &*self.ptr }
    }
}

impl<T: Sync> Drop for Shared<T> {
    fn drop(&mut self) {
        // SAFETY: `ptr` holds the `T` written in `new`, dropped once here;
        // the page is unmapped once, and no reference from `deref`
        // outlives `self`.
        unsafe {
            self.ptr.drop_in_place();
            unmap_shared_page(self.ptr.cast());
        }
    }
}

/// A `u64` counter in a `MAP_SHARED` anonymous page: after `fork`, parent
/// and children increment the same memory.
pub struct SharedCounter(Shared<AtomicU64>);

impl SharedCounter {
    /// Maps one shared page holding a zeroed counter.
    pub fn new() -> io::Result<SharedCounter> {
        Ok(SharedCounter(Shared::new(AtomicU64::new(0))?))
    }

    /// The counter.
    pub fn get(&self) -> &AtomicU64 {
        &self.0
    }
}

/// A `u64` guarded by a `pthread_mutex_t` with `PTHREAD_PROCESS_SHARED`,
/// both in one `MAP_SHARED` anonymous page: the textbook way for processes
/// to share a lock. After `fork`, parent and children lock the same mutex
/// and increment the same integer.
///
/// With glibc the lock is a compare-and-swap on a word of the page, and a
/// contended lock sleeps in a (non-private) futex on that word: the same
/// kernel mechanism `std::sync::Mutex` uses between threads, without its
/// brief spinning. Neither lock nor unlock allocates or takes any lock of
/// the C library, so a forked child of a multi-threaded parent may call
/// them (POSIX does not list them as async-signal-safe; glibc's are, for
/// this mutex type).
pub struct SharedMutex(Shared<Guarded>);

/// What a [`SharedMutex`] page holds: the lock and the integer it guards.
struct Guarded {
    mutex: UnsafeCell<libc::pthread_mutex_t>,
    value: UnsafeCell<u64>,
}

// SAFETY: `value` is only accessed with `mutex` held (`SharedMutex::with`),
// and a pthread mutex may be locked and unlocked from any thread.
unsafe impl Sync for Guarded {}

impl Drop for Guarded {
    fn drop(&mut self) {
        // SAFETY: the mutex is initialised (by `SharedMutex::new`, or still
        // all zeroes, which glibc's PTHREAD_MUTEX_INITIALIZER is) and, as
        // `with` never returns holding it, unlocked unless a child died
        // holding it, when destroying it is still harmless with glibc.
        unsafe { libc::pthread_mutex_destroy(self.mutex.get()) };
    }
}

/// Maps a pthread return code to a `Result`.
fn pthread(rc: i32) -> io::Result<()> {
    match rc {
        0 => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

impl SharedMutex {
    /// Maps one shared page and initialises in it, in place, a
    /// process-shared mutex guarding 0.
    pub fn new() -> io::Result<SharedMutex> {
        let shared = Shared::new(Guarded {
            // SAFETY: all zeroes is a valid `pthread_mutex_t` bit pattern
            // (glibc's static initialiser); it is initialised properly
            // below, before any use.
            mutex: UnsafeCell::new(unsafe { std::mem::zeroed() }),
            value: UnsafeCell::new(0),
        })?;
        // SAFETY: all zeroes is valid storage for `pthread_mutexattr_init`.
        let mut attr: libc::pthread_mutexattr_t = unsafe { std::mem::zeroed() };
        // SAFETY: `attr` is live and initialised by the first call before
        // the others read it; the mutex is initialised in place, at the
        // address every process will use, before anyone locks it (nobody
        // else has the page yet). The attribute object is destroyed once
        // the mutex is initialised: the mutex keeps no reference to it.
        unsafe {
            pthread(libc::pthread_mutexattr_init(&mut attr))?;
            let rc = pthread(libc::pthread_mutexattr_setpshared(
                &mut attr,
                libc::PTHREAD_PROCESS_SHARED,
            ))
            .and_then(|()| pthread(libc::pthread_mutex_init(shared.mutex.get(), &attr)));
            libc::pthread_mutexattr_destroy(&mut attr);
            rc?;
        }
        Ok(SharedMutex(shared))
    }

    /// Locks the mutex, runs `f` on the guarded integer, unlocks. Returns
    /// `None` if the lock could not be taken (it cannot fail for a
    /// correctly initialised normal mutex; checked anyway). Callable from a
    /// forked child as long as `f` is. A panic in `f` leaves the mutex
    /// locked (there is no poisoning): keep `f` trivial.
    pub fn with<R>(&self, f: impl FnOnce(&mut u64) -> R) -> Option<R> {
        let g = &*self.0;
        // SAFETY: the mutex was initialised in `new` and lives in the page
        // while `self` does.
        if unsafe { libc::pthread_mutex_lock(g.mutex.get()) } != 0 {
            return None;
        }
        // SAFETY: every access to `value`, in this process or another,
        // holds the mutex, which we now hold: this is the only reference.
        let r = f(unsafe { &mut *g.value.get() });
        // SAFETY: locked by this thread just above.
        unsafe { libc::pthread_mutex_unlock(g.mutex.get()) };
        Some(r)
    }
}

/// The `CLOCK_MONOTONIC` time in nanoseconds: one clock for every process
/// of the machine, so a time read in a child can be compared with one read
/// in its parent. Async-signal-safe, so a forked child may call it.
pub fn monotonic_ns() -> u64 {
    // SAFETY: all zeroes is a valid `timespec`.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: `ts` is a live, writable `timespec`; CLOCK_MONOTONIC always
    // exists on Linux, so the call cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
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
