//! `idle_conns`: the memory a server spends per idle connection, with a
//! coroutine per connection and with an OS thread per connection. Not a
//! workload of WORKLOADS.md: `spindle lab`'s "serve 10,000 idle
//! connections" rows run it (hidden from `spindle bench --help`), each in a
//! fresh copy of this program, as the other memory rows are.
//!
//! One measurement: an echo server ([`server`](super::server), the
//! `tcp_echo` handler) starts on 127.0.0.1; this thread reads VmRSS, then
//! opens N client connections to it, in batches of [`BATCH`], waiting
//! after each batch until every one of its connections has reached its
//! handler (so the listen backlog never overflows and no connect waits
//! for a SYN retransmission); once all N handlers are blocked reading,
//! VmRSS is read again. `bytes_per_conn` = the growth / N. It counts what
//! the server's units cost in user space (a coroutine's stack and state,
//! or a thread's stack, its kernel-allocated TLS and the allocator's
//! per-thread arena) and the process's share of nothing else: socket
//! buffers are kernel memory, which VmRSS does not include, and the
//! client ends are bare descriptors.
//!
//! Both ends are in this process, so N connections need 2N descriptors.
//! The soft `RLIMIT_NOFILE` is raised to the hard one; if that still does
//! not leave room for 2N plus [`RESERVED_FDS`], fewer connections are
//! opened ([`max_conns`]), and the lab says so in its row.

use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::os::vm_rss;
use super::server::{Handler, Server};
use super::tcp_echo::echo;
use super::{BenchArgs, BenchError, Record, System, check};

/// Connections the lab asks for.
pub const DEFAULT_CONNS: u64 = 10_000;
/// Connections opened before waiting for the server to take them all.
pub const BATCH: u64 = 100;
/// Descriptors left for everything but the connections: stdio, the
/// listener, the runtime's epoll and waker, files the measurement opens.
pub const RESERVED_FDS: u64 = 64;
/// How long one batch may take to reach its handlers before the
/// measurement gives up (a hang would otherwise stall the lab).
const BATCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The echo handler, counting the connections that have reached it.
struct Counted {
    arrived: Arc<AtomicU64>,
}

impl Handler for Counted {
    fn serve(&self, conn: impl std::io::Read + std::io::Write) -> std::io::Result<()> {
        // Relaxed: only a count; the client polls it to pace its batches.
        self.arrived.fetch_add(1, Ordering::Relaxed);
        echo(conn).map(drop)
    }
}

/// `RLIMIT_NOFILE` as (soft, hard).
fn nofile() -> std::io::Result<(u64, u64)> {
    // SAFETY: all zeroes is a valid `rlimit`.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: `lim` is a live, writable `rlimit`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((lim.rlim_cur, lim.rlim_max))
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the new soft
/// limit.
pub fn raise_nofile() -> std::io::Result<u64> {
    let (soft, hard) = nofile()?;
    if soft < hard {
        let lim = libc::rlimit {
            rlim_cur: hard,
            rlim_max: hard,
        };
        // SAFETY: `lim` is a valid `rlimit`; raising the soft limit up to
        // the hard one needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(hard)
}

/// How many of `want` connections fit in the hard descriptor limit (two
/// descriptors each, plus [`RESERVED_FDS`]), and that limit.
pub fn max_conns(want: u64) -> std::io::Result<(u64, u64)> {
    let (_, hard) = nofile()?;
    Ok((want.min(hard.saturating_sub(RESERVED_FDS) / 2), hard))
}

/// One measurement: RSS growth per idle connection of a `system` server
/// holding `n` connections (`workers` workers or CPUs). Raise the
/// descriptor limit first ([`raise_nofile`]).
pub fn measure(system: System, workers: u64, n: u64) -> Result<f64, BenchError> {
    let arrived = Arc::new(AtomicU64::new(0));
    let handler = Counted {
        arrived: Arc::clone(&arrived),
    };
    let server = Server::start(system, workers, 0, handler)?;
    let mut clients = Vec::with_capacity(n as usize);
    let result = (|| {
        let before = vm_rss()?;
        while (clients.len() as u64) < n {
            let batch = BATCH.min(n - clients.len() as u64);
            for _ in 0..batch {
                clients.push(TcpStream::connect(server.addr())?);
            }
            let start = Instant::now();
            while arrived.load(Ordering::Relaxed) < clients.len() as u64 {
                if start.elapsed() > BATCH_TIMEOUT {
                    return Err(BenchError::Check(format!(
                        "only {} of {} connections reached the server within {BATCH_TIMEOUT:?}",
                        arrived.load(Ordering::Relaxed),
                        clients.len()
                    )));
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        // The last handlers have counted themselves but may not be parked
        // in `read` yet: give them a moment (their stacks are touched
        // already; this only settles the count).
        std::thread::sleep(Duration::from_millis(20));
        let after = vm_rss()?;
        Ok(after.saturating_sub(before) as f64 / n as f64)
    })();
    // Closing the clients ends every handler (end of file).
    drop(clients);
    let stopped = server.stop();
    let per_conn = result?;
    stopped?;
    check(
        "connections that reached the server",
        arrived.load(Ordering::Relaxed),
        n,
    )?;
    Ok(per_conn)
}

/// `spindle bench idle_conns` (the lab's child process).
pub fn run(args: &BenchArgs, mut emit: impl FnMut(Record)) -> Result<(), BenchError> {
    if args.system == System::Process {
        return Err(super::no_row(args));
    }
    raise_nofile()?;
    let (n, hard) = max_conns(args.n.unwrap_or(DEFAULT_CONNS))?;
    if n == 0 {
        return Err(BenchError::Usage(format!(
            "RLIMIT_NOFILE's hard limit ({hard}) leaves no room for connections"
        )));
    }
    let value = measure(args.system, args.workers, n)?;
    emit(Record {
        workload: "idle_conns",
        system: args.system.id(),
        n,
        workers: args.workers,
        metric: "bytes_per_conn",
        value,
    });
    Ok(())
}

/// The arguments that make a child measure `system` at `n` connections.
pub fn child_args(system: System, n: u64) -> Vec<String> {
    vec![
        "idle_conns".into(),
        "--system".into(),
        system.id().into(),
        "--workers".into(),
        "1".into(),
        "--n".into(),
        n.to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_rows_measure_at_small_counts() {
        raise_nofile().unwrap();
        for system in [System::Spindle, System::Thread] {
            let per_conn = measure(system, 1, 200).unwrap();
            assert!(per_conn >= 0.0, "{system:?}: {per_conn}");
        }
    }

    #[test]
    fn connections_fit_the_descriptor_limit() {
        let (n, hard) = max_conns(u64::MAX).unwrap();
        assert!(2 * n + RESERVED_FDS <= hard);
        assert_eq!(max_conns(10).unwrap().0, 10.min(n));
    }
}
