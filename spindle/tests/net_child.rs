//! `spindle::net` error paths that need a process of their own: the test
//! binary runs itself again with `--exact <test>` and an environment
//! variable that tells the test to play the child's part (as
//! `rt_crash.rs` does); the parent checks how the child ended and what it
//! printed.
//!
//! - Running out of file descriptors (`RLIMIT_NOFILE` lowered in the
//!   child): an accept loop over `incoming()` must not spin, must say once
//!   what happened and how to fix it (`ulimit -n`), and must serve the
//!   waiting clients once descriptors free up. Re-expressed from Go
//!   `src/net/http/serve_test.go` `TestAcceptMaxFds` (the server keeps
//!   accepting after `EMFILE`) and the back-off of Go's
//!   `net/http.Server.Serve`.
//! - `SIGPIPE` restored to its default action (death), as in a process
//!   that embeds spindle without Rust's `main`: writing to a closed peer
//!   must fail with `BrokenPipe`, not kill the process. Re-expressed from
//!   Go `src/os/signal/signal_test.go` `TestSIGPIPE`-style checks and std
//!   `net/tcp/tests.rs` `write_close`.

use std::io::{self, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use spindle::net::{TcpListener, TcpStream, UnixStream};

/// Tells a re-executed test binary which part to play.
const CHILD_VAR: &str = "SPINDLE_NET_CHILD";

/// The part this process was started to play, if it is a child.
fn child_mode() -> Option<String> {
    std::env::var(CHILD_VAR).ok()
}

/// How long a child may run: a hang is a failure, not a stuck CI.
const CHILD_LIMIT: Duration = Duration::from_secs(60);

/// Runs the test `name` of this file in a child process in `mode`, with
/// its output captured; kills it if it runs past [`CHILD_LIMIT`].
fn run_child(name: &str, mode: &str) -> Output {
    let mut child = Command::new(std::env::current_exe().expect("current_exe"))
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD_VAR, mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the child test process");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            buf
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + CHILD_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if Instant::now() >= deadline {
            child.kill().expect("kill the child");
            let status = child.wait().expect("wait for the child");
            let out = Output {
                status,
                stdout: stdout.join().unwrap(),
                stderr: stderr.join().unwrap(),
            };
            panic!("the child ran past {CHILD_LIMIT:?}: {}", describe(&out));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
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

/// The descriptor limit that leaves exactly `free` numbers for new
/// descriptors: new ones take the lowest free numbers below the limit,
/// and the ones open at or above it stay usable.
fn limit_leaving(free: usize) -> u64 {
    let open: std::collections::BTreeSet<u64> = std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    // (The one read_dir held is listed but free again: one more may fit.)
    (0..)
        .filter(|fd| !open.contains(fd))
        .nth(free)
        .expect("descriptor numbers are endless")
}

/// Sets the soft `RLIMIT_NOFILE` (the hard one stays).
fn set_nofile(limit: u64) {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `rl` is a valid, writable rlimit.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) };
    assert_eq!(rc, 0, "getrlimit: {}", io::Error::last_os_error());
    rl.rlim_cur = limit.min(rl.rlim_max);
    // SAFETY: `rl` is a valid rlimit that outlives the call.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) };
    assert_eq!(rc, 0, "setrlimit: {}", io::Error::last_os_error());
}

/// CPU time (user + system) this process has used.
fn cpu_time() -> Duration {
    // SAFETY: an all-zero rusage is a valid value to overwrite.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    assert_eq!(rc, 0, "getrusage: {}", io::Error::last_os_error());
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// What the exhaustion child prints once it is done.
const SERVED: &str = "child: served every client: ";

#[test]
fn accept_loop_backs_off_when_descriptors_run_out() {
    /// Clients waiting in the backlog: several times what fits.
    const CLIENTS: usize = 40;
    /// Descriptors left free for accepted connections.
    const FREE: usize = 8;
    /// How long the child watches its stuck accept loop.
    const WINDOW: Duration = Duration::from_millis(500);

    if child_mode().as_deref() == Some("emfile") {
        let rt = spindle::Runtime::builder().workers(1).build().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // The clients are plain std sockets connected before the limit is
        // lowered; they wait in the listener's backlog.
        let mut clients: Vec<_> = (0..CLIENTS)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        set_nofile(limit_leaving(FREE));

        // Each handler greets its client, then holds the connection (and
        // its descriptor) until the gate closes.
        let (gate, gate_rx) = spindle::channel::bounded::<()>(0);
        let accepted = Arc::new(AtomicUsize::new(0));
        let server = {
            let accepted = accepted.clone();
            rt.spawn(move || {
                let handlers: Vec<_> = listener
                    .incoming()
                    .take(CLIENTS)
                    .map(|conn| {
                        let mut conn = conn.expect("incoming yields no error");
                        accepted.fetch_add(1, SeqCst);
                        let gate = gate_rx.clone();
                        spindle::spawn(move || {
                            conn.write_all(b"x").unwrap();
                            let _ = gate.recv(); // until the sender is dropped
                        })
                    })
                    .collect();
                for h in handlers {
                    h.join().unwrap();
                }
            })
        };

        // Connections are accepted until descriptors run out (read from
        // the counter, not a client: handlers may never run if the accept
        // loop spins on the only worker).
        while accepted.load(SeqCst) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(50));
        let cpu_before = cpu_time();
        std::thread::sleep(WINDOW);
        let cpu = cpu_time() - cpu_before;
        let stuck_at = accepted.load(SeqCst);
        println!("child: accepted {stuck_at} before running out; {cpu:?} CPU in {WINDOW:?}");
        assert!(
            stuck_at < CLIENTS,
            "all {CLIENTS} accepted: descriptors did not run out"
        );
        // A spinning accept loop would use its worker's whole core, or
        // what a loaded machine leaves of it (and, never yielding, keep
        // the runtime from shutting down: exit without unwinding). Backing
        // off, it retries about ten times in the window: a few ms of CPU.
        if cpu >= WINDOW / 10 {
            eprintln!(
                "child: {cpu:?} of CPU time in {WINDOW:?} while out of descriptors: \
                 the accept loop spins"
            );
            std::process::exit(3);
        }

        // Connections close; every client is served in the end.
        drop(gate);
        for (i, c) in clients.iter_mut().enumerate() {
            let mut got = Vec::new();
            c.read_to_end(&mut got).unwrap();
            assert_eq!(got, b"x", "client {i}");
        }
        server.join().unwrap();
        println!("{SERVED}{}", accepted.load(SeqCst));
        return;
    }

    let out = run_child("accept_loop_backs_off_when_descriptors_run_out", "emfile");
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("{SERVED}{CLIENTS}")),
        "{}",
        describe(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let reports: Vec<_> = stderr
        .lines()
        .filter(|l| l.starts_with("spindle: accept on"))
        .collect();
    assert_eq!(
        reports.len(),
        1,
        "exactly one report per listener: {}",
        describe(&out)
    );
    for want in ["Too many open files", "RLIMIT_NOFILE", "ulimit -n"] {
        assert!(
            reports[0].contains(want),
            "missing {want:?}: {}",
            describe(&out)
        );
    }
}

/// What the SIGPIPE child prints if it lives to the end.
const SURVIVED: &str = "child: every write to a closed peer failed with BrokenPipe";

/// Writes to a TCP and a Unix stream whose peers are gone; each write
/// must fail with `BrokenPipe`.
fn write_to_closed_peers() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    drop(listener.accept().unwrap());
    assert_eq!(client.read(&mut [0; 8]).unwrap(), 0);
    // The first write draws a reset; one of the next fails.
    let err = (0..10_000)
        .find_map(|_| {
            let r = client.write_all(b"anyone?").err();
            if r.is_none() {
                std::thread::sleep(Duration::from_micros(100));
            }
            r
        })
        .expect("writes to a closed peer keep succeeding");
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "tcp: {err}");
    let err = client
        .write_vectored(&[io::IoSlice::new(b"a"), io::IoSlice::new(b"b")])
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "tcp vectored: {err}");

    let (mut a, b) = UnixStream::pair().unwrap();
    drop(b);
    let err = a.write(b"anyone?").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "unix: {err}");
    let err = a.write_vectored(&[io::IoSlice::new(b"a")]).unwrap_err();
    assert_eq!(
        err.kind(),
        io::ErrorKind::BrokenPipe,
        "unix vectored: {err}"
    );
}

#[test]
fn writing_to_a_closed_peer_never_raises_sigpipe() {
    if child_mode().as_deref() == Some("sigpipe") {
        // Rust's `main` ignores SIGPIPE; a C host or a `-Zon-broken-pipe`
        // binary does not. Restore the default action: death.
        // SAFETY: installing the default disposition for SIGPIPE.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
        // From a plain thread, then from a coroutine.
        write_to_closed_peers();
        let rt = spindle::Runtime::builder().workers(1).build().unwrap();
        rt.block_on(write_to_closed_peers);
        println!("{SURVIVED}");
        return;
    }
    let out = run_child("writing_to_a_closed_peer_never_raises_sigpipe", "sigpipe");
    assert_ne!(
        out.status.signal(),
        Some(libc::SIGPIPE),
        "killed by SIGPIPE: {}",
        describe(&out)
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(SURVIVED),
        "{}",
        describe(&out)
    );
}
