//! Tests that crash on purpose or need a quiet process, each in a child
//! process: the test binary runs itself again with `--exact <this test>`
//! and an environment variable that tells the test to do the child's part,
//! then the parent checks how the child ended and what it printed. (Model:
//! rayon-core's `tests/stack_overflow_crash.rs`.)

use std::hint::black_box;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};

use corosensei::{Coroutine, Yielder};

use super::*;

/// Tells a re-executed test binary which crash to perform.
const CHILD_VAR: &str = "SPINDLE_STACK_CRASH_TEST";

/// The crash this process was started to perform, if it is a child.
fn child_mode() -> Option<String> {
    std::env::var(CHILD_VAR).ok()
}

/// Runs the test `name` of this module in a child process in `mode`.
fn run_child(name: &str, mode: &str) -> Output {
    // The test's path as libtest knows it: module path without the crate.
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    let test = format!("{module}::{name}");
    Command::new(std::env::current_exe().expect("current_exe"))
        .args(["--exact", &test, "--nocapture", "--test-threads=1"])
        .env(CHILD_VAR, mode)
        .output()
        .expect("spawn the child test process")
}

/// Recurses until the stack runs out.
#[inline(never)]
fn recurse(n: u64) -> u64 {
    let frame = [n as u8; 512];
    black_box(&frame);
    if black_box(n) == u64::MAX {
        return 0;
    }
    recurse(n + 1) + u64::from(frame[1])
}

/// Describes a child's death for assertion messages.
fn describe(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn overflow_is_reported_with_the_coroutine_name() {
    let mode = child_mode();
    if let Some(m @ ("overflow" | "overflow-mprotect")) = mode.as_deref() {
        if m == "overflow-mprotect" {
            // What a kernel before 6.13 does.
            sys::force_guard_mode(sys::GuardMode::Mprotect);
        }
        install_handler();
        install_handler(); // idempotent
        let _alt = AltStack::install().expect("altstack");
        let mut pool = LocalPool::new();
        // The second slot of a region: with MADV_GUARD_INSTALL its guard is
        // installed when it is carved, not when the region is mapped (the
        // first slot's is, as the probe).
        let _first = pool.take(reserve(64 << 10).unwrap()).unwrap();
        let stack = pool.take(reserve(64 << 10).unwrap()).unwrap();
        let info = Box::new(GuardInfo::new(
            42,
            Some("deep-recursion".into()),
            std::panic::Location::caller(),
        ));
        info.attach(&stack);
        let mut co = Coroutine::with_stack(stack, |_: &Yielder<(), ()>, ()| recurse(0));
        // SAFETY: `info` outlives the resume and is reset right after.
        unsafe { set_current(&*info) };
        co.resume(());
        // SAFETY: null is always allowed.
        unsafe { set_current(std::ptr::null()) };
        return; // not reached: the child aborts
    }
    for mode in ["overflow", "overflow-mprotect"] {
        let out = run_child("overflow_is_reported_with_the_coroutine_name", mode);
        let err = String::from_utf8_lossy(&out.stderr);
        let died = out.status.signal();
        assert_eq!(died, Some(libc::SIGABRT), "{mode}: {}", describe(&out));
        for want in [
            "spindle: coroutine 42 \"deep-recursion\" (spawned at ",
            "crash_tests.rs:",
            "overflowed its stack of 65536 bytes.",
            "SPINDLE_STACK_SIZE=<bytes>",
        ] {
            assert!(err.contains(want), "{mode}: {}", describe(&out));
        }
    }
}

#[test]
fn other_faults_go_to_the_previous_handler() {
    if child_mode().as_deref() == Some("segv") {
        install_handler();
        let _alt = AltStack::install().expect("altstack");
        let mut pool = LocalPool::new();
        let stack = pool.take(reserve(64 << 10).unwrap()).unwrap();
        let info = GuardInfo::new(7, None, std::panic::Location::caller());
        info.attach(&stack);
        // SAFETY: `info` lives until the end of this function.
        unsafe { set_current(&info) };
        let other = pool.take(reserve(64 << 10).unwrap()).unwrap();
        // A guard page, but not the current coroutine's: not an overflow.
        // SAFETY: the address is `other`'s guard page: the write faults
        // before any memory changes, which is what this test checks.
        unsafe { std::ptr::write_volatile(other.guard_range().0 as *mut u8, 1) };
        return; // not reached
    }
    let out = run_child("other_faults_go_to_the_previous_handler", "segv");
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGSEGV),
        "{}",
        describe(&out)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("overflowed its stack"), "{}", describe(&out));
}

#[test]
fn rust_thread_overflow_is_still_reported() {
    if child_mode().as_deref() == Some("thread") {
        install_handler();
        let t = std::thread::Builder::new()
            .name("deep-thread".into())
            .stack_size(128 << 10)
            .spawn(|| recurse(0))
            .unwrap();
        let _ = t.join();
        return; // not reached
    }
    let out = run_child("rust_thread_overflow_is_still_reported", "thread");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "{}",
        describe(&out)
    );
    assert!(err.contains("thread 'deep-thread'"), "{}", describe(&out));
    assert!(
        err.contains("has overflowed its stack"),
        "{}",
        describe(&out)
    );
}

/// This process's virtual size in bytes (VmSize).
fn vm_size() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmSize:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

#[test]
fn address_space_limit_gives_a_clear_error() {
    const OK: &str = "child: reserve failed cleanly: ";
    if child_mode().as_deref() == Some("rlimit") {
        let size = 256 << 10;
        let mut held = Vec::with_capacity(100_000);
        held.push(reserve(size).unwrap()); // the class exists before the limit
        let limit = vm_size() + (48 << 20);
        let rl = libc::rlimit {
            rlim_cur: limit,
            rlim_max: libc::RLIM_INFINITY,
        };
        // SAFETY: `rl` is a valid rlimit.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &rl) }, 0);
        let err = loop {
            match reserve(size) {
                Ok(r) if held.len() < held.capacity() => held.push(r),
                Ok(_) => panic!("RLIMIT_AS did not limit stack reservations"),
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), std::io::ErrorKind::OutOfMemory);
        println!("{OK}{} reserved; {err}", held.len());
        return;
    }
    let out = run_child("address_space_limit_gives_a_clear_error", "rlimit");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(stdout.contains(OK), "{}", describe(&out));
    for want in [
        "RLIMIT_AS",
        "ulimit -v",
        "out of memory or address space",
        "256 KiB",
    ] {
        assert!(
            stdout.contains(want),
            "missing {want:?}: {}",
            describe(&out)
        );
    }
}

#[test]
fn map_count_limit_gives_a_clear_error() {
    const OK: &str = "child: reserve failed cleanly: ";
    if child_mode().as_deref() == Some("maps") {
        // What a kernel before 6.13 does: two maps per guarded stack.
        sys::force_guard_mode(sys::GuardMode::Mprotect);
        let mut held = Vec::with_capacity(200_000);
        let err = loop {
            match reserve(MIN_STACK_SIZE) {
                Ok(r) if held.len() < held.capacity() => held.push(r),
                Ok(_) => panic!("vm.max_map_count did not limit stack reservations"),
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), std::io::ErrorKind::OutOfMemory);
        println!("{OK}{} reserved; {err}", held.len());
        return;
    }
    let out = run_child("map_count_limit_gives_a_clear_error", "maps");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(stdout.contains(OK), "{}", describe(&out));
    for want in [
        "vm.max_map_count = ",
        "sysctl -w vm.max_map_count=262144",
        "6.13",
    ] {
        assert!(
            stdout.contains(want),
            "missing {want:?}: {}",
            describe(&out)
        );
    }
}

/// The number of kernel memory maps of this process.
fn map_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

#[test]
fn guard_pages_add_no_memory_maps() {
    const SKIP: &str = "MADV_GUARD_INSTALL unavailable (kernel before 6.13): skipped";
    if child_mode().as_deref() == Some("maps-count") {
        let size = 40 << 10;
        let mut pool = LocalPool::new();
        let first = pool.take(reserve(size).unwrap()).unwrap(); // probes the guard mode
        if sys::guard_mode() != Some(sys::GuardMode::Madvise) {
            println!("{SKIP}");
            return;
        }
        let before = map_count();
        let stacks: Vec<_> = (0..1000)
            .map(|_| pool.take(reserve(size).unwrap()).unwrap())
            .collect();
        for s in &stacks {
            let top = corosensei::stack::Stack::base(s).get() - 1;
            // SAFETY: the top byte of a stack this test owns.
            unsafe { std::ptr::write_volatile(top as *mut u8, 1) };
        }
        let after = map_count();
        println!("maps: {before} before, {after} after 1,000 stacks");
        assert!(
            after < before + 10,
            "1,000 guarded stacks added {} maps",
            after - before
        );
        drop((first, stacks));
        return;
    }
    let out = run_child("guard_pages_add_no_memory_maps", "maps-count");
    assert!(out.status.success(), "{}", describe(&out));
    if String::from_utf8_lossy(&out.stdout).contains(SKIP) {
        eprintln!("{SKIP}");
    }
}
