//! Crashes through the public API, each in a child process: the test binary
//! runs itself again with `--exact <test>` and an environment variable that
//! tells the test to play the child's part; the parent then checks how the
//! child ended and what it printed. (Scenarios from rayon-core's
//! `tests/stack_overflow_crash.rs`: a deep recursion must die with a clear
//! message, not a bare SIGSEGV.)
//!
//! - a coroutine that overflows its stack aborts the process with a report
//!   naming it and saying how to give it more stack;
//! - running out of address space (`ulimit -v`) makes `Builder::spawn`
//!   return an `OutOfMemory` error naming the limit, and `spindle::spawn`
//!   panic with the same message, as `std::thread::spawn` does.

use std::hint::black_box;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};

/// Tells a re-executed test binary which part to play.
const CHILD_VAR: &str = "SPINDLE_RT_CRASH_CHILD";

/// The part this process was started to play, if it is a child.
fn child_mode() -> Option<String> {
    std::env::var(CHILD_VAR).ok()
}

/// Runs the test `name` of this file in a child process in `mode`, with
/// its output captured.
fn run_child(name: &str, mode: &str) -> Output {
    Command::new(std::env::current_exe().expect("current_exe"))
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD_VAR, mode)
        .output()
        .expect("spawn the child test process")
}

/// Describes a child's end for assertion messages.
fn describe(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Recurses until the stack runs out: each frame holds a KiB the optimiser
/// cannot drop, and the addition after the call keeps it from becoming a
/// loop.
#[inline(never)]
fn recurse(n: u64) -> u64 {
    let frame = [n as u8; 1024];
    black_box(&frame);
    if black_box(n) == u64::MAX {
        return 0;
    }
    recurse(n + 1) + u64::from(frame[n as usize % 1024])
}

#[test]
fn stack_overflow_aborts_with_the_coroutine_named() {
    if child_mode().as_deref() == Some("overflow") {
        let h = spindle::Builder::new()
            .name("deep".into())
            .stack_size(64 * 1024)
            .spawn(|| recurse(0))
            .expect("spawn");
        let _ = h.join();
        println!("child: the overflow did not abort");
        return;
    }
    let out = run_child("stack_overflow_aborts_with_the_coroutine_named", "overflow");
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "the child must abort: {}",
        describe(&out)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "overflowed its stack",
        "\"deep\"",
        "rt_crash.rs:",
        "65536 bytes",
        "Builder::stack_size",
        "SPINDLE_STACK_SIZE",
    ] {
        assert!(err.contains(want), "missing {want:?}: {}", describe(&out));
    }
}

/// This process's virtual size in bytes (VmSize).
fn vm_size() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmSize:"))
        .expect("VmSize");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("VmSize in kB");
    kib * 1024
}

/// Sets the soft address-space limit (`ulimit -v`) to `bytes`, at most
/// the hard limit, which stays as it is (`None`: as high as the hard limit).
fn set_rlimit_as(bytes: Option<u64>) {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `rl` is a valid, writable rlimit.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut rl) };
    assert_eq!(rc, 0, "getrlimit: {}", std::io::Error::last_os_error());
    rl.rlim_cur = bytes.map_or(rl.rlim_max, |b| b.min(rl.rlim_max));
    // SAFETY: `rl` is a valid rlimit that outlives the call.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_AS, &rl) };
    assert_eq!(rc, 0, "setrlimit: {}", std::io::Error::last_os_error());
}

#[test]
fn address_space_exhaustion_is_a_clear_spawn_error() {
    const BUILDER: &str = "child: Builder::spawn failed: ";
    const SPAWN: &str = "child: spindle::spawn panicked: ";
    if child_mode().as_deref() == Some("rlimit") {
        // Start the default runtime (worker threads, their stacks and
        // malloc arenas) before the limit, so only stacks run out.
        spindle::spawn(|| ()).join().unwrap();
        set_rlimit_as(Some(vm_size() + (512 << 20)));
        let mut parked = Vec::new();
        let err = loop {
            match spindle::Builder::new().spawn(spindle::park) {
                Ok(h) if parked.len() < 1_000_000 => parked.push(h),
                Ok(_) => panic!("RLIMIT_AS did not limit spawning"),
                Err(e) => break e,
            }
        };
        // A stack may come free meanwhile: a worker that starts one of the
        // parked coroutines on a stack from its own cache gives the
        // reservation back. So spawn until `spindle::spawn` fails too.
        let mut late = 0;
        let payload = loop {
            match std::panic::catch_unwind(|| spindle::spawn(spindle::park)) {
                Ok(h) if late < 10_000 => {
                    parked.push(h);
                    late += 1;
                }
                Ok(_) => panic!("spindle::spawn kept working after Builder::spawn failed"),
                Err(payload) => break payload,
            }
        };
        // Lift the limit again before formatting and printing.
        set_rlimit_as(None);
        assert_eq!(err.kind(), std::io::ErrorKind::OutOfMemory, "{err}");
        let msg = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .expect("a string panic payload");
        println!(
            "child: {} coroutines parked ({late} after the first error)",
            parked.len()
        );
        println!("{BUILDER}{err}");
        println!("{SPAWN}{msg}");
        // The parked coroutines are left to the process exit.
        std::mem::forget(parked);
        return;
    }
    let out = run_child("address_space_exhaustion_is_a_clear_spawn_error", "rlimit");
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = |prefix: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line: {}", describe(&out)))
            .to_string()
    };
    let (builder, spawn) = (line(BUILDER), line(SPAWN));
    for want in ["ulimit -v", "RLIMIT_AS"] {
        assert!(
            builder.contains(want),
            "missing {want:?}: {}",
            describe(&out)
        );
    }
    assert_eq!(
        spawn,
        builder,
        "spindle::spawn must panic with Builder::spawn's message: {}",
        describe(&out)
    );
}
