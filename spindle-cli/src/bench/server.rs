//! The servers behind the socket workloads (`tcp_echo`, `http_hello`) and
//! the lab's idle-connection rows: one unit per connection, serving any
//! [`Handler`], on 127.0.0.1.
//!
//! Rows:
//! - spindle: an accept loop in a coroutine of a runtime with `--workers`
//!   workers hands each connection to a coroutine of its own, on
//!   `spindle::net` (a blocking call parks the coroutine);
//! - thread: an accept loop in an OS thread hands each connection to an OS
//!   thread of its own (std's default stack size), on `std::net`; the
//!   acceptor restricts itself to the first `--workers` CPUs, and the
//!   connection threads inherit its mask. The thread that started the
//!   server is not restricted, so a load generator it starts is not either.
//!
//! Both rows are built alike, so that a difference between them is the
//! unit's:
//! - the listener's backlog is 1,024 ([`BACKLOG`], tokio's default; Go
//!   uses the system's maximum). std's 128 overflows when `wrk` opens its
//!   256 connections at once, and each SYN dropped then costs its
//!   connection a one-second retransmission;
//! - every accepted connection gets `TCP_NODELAY`, Go's default for every
//!   TCP connection: a small reply is sent at once rather than held back
//!   by Nagle's algorithm while an earlier one is unacknowledged;
//! - an accept that fails for want of descriptors (`EMFILE`, `ENFILE`) is
//!   retried after a pause ([`EXHAUSTED_PAUSE`]) rather than ending the
//!   server; `spindle::net`'s `incoming()` backs off by itself, std's does
//!   not, so the thread row pauses here.
//!
//! [`Server::stop`] ends a server: it sets a flag, then connects once so
//! that the accept loop, blocked in `accept`, wakes, sees the flag and
//! returns. Connection units end when their peers close (a load generator
//! has exited by then); a spindle runtime is dropped last, which unwinds
//! any coroutine still parked.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use super::os::Pinned;
use super::{BenchError, System, runtime};

/// The listen backlog of every server here.
pub const BACKLOG: i32 = 1024;

/// How long an accept loop pauses when the process is out of descriptors.
pub const EXHAUSTED_PAUSE: Duration = Duration::from_millis(10);

/// What a server does with each connection.
pub trait Handler: Send + Sync + 'static {
    /// Serves one connection until the peer closes it (or an error); runs
    /// in the connection's own unit. Errors are the connection's business
    /// and end only it (a peer that resets at the end of a run is normal).
    fn serve(&self, conn: impl Read + Write) -> io::Result<()>;
}

/// A listener on `127.0.0.1:port` (`port` 0: an ephemeral one) with a
/// backlog of [`BACKLOG`].
pub fn bind(port: u16) -> io::Result<TcpListener> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))?;
    // std listens with a backlog of 128; on Linux, listen(2) on a socket
    // that already listens changes its backlog.
    // SAFETY: the descriptor is a live socket owned by `listener`.
    if unsafe { libc::listen(listener.as_raw_fd(), BACKLOG) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(listener)
}

/// A server running in the background, until [`Server::stop`].
pub struct Server {
    addr: SocketAddr,
    workers: u64,
    stop: Arc<AtomicBool>,
    acceptor: Acceptor,
}

/// Where a server's accept loop runs.
enum Acceptor {
    /// A coroutine of the server's own runtime.
    Coroutine {
        rt: spindle::Runtime,
        accept: spindle::JoinHandle<io::Result<()>>,
    },
    /// An OS thread.
    Thread(std::thread::JoinHandle<io::Result<()>>),
}

impl Server {
    /// Starts a `system` server for `handler` on `127.0.0.1:port` (0: an
    /// ephemeral port) with `workers` workers (spindle) or CPUs (thread).
    pub fn start<H: Handler>(
        system: System,
        workers: u64,
        port: u16,
        handler: H,
    ) -> Result<Server, BenchError> {
        let listener = bind(port)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let handler = Arc::new(handler);
        let (acceptor, workers) = match system {
            System::Spindle => {
                let rt = runtime(workers)?;
                let listener = spindle::net::TcpListener::from_std(listener)?;
                let stop = Arc::clone(&stop);
                let accept = rt.spawn(move || accept_coroutines(&listener, &handler, &stop));
                (Acceptor::Coroutine { rt, accept }, workers)
            }
            System::Thread => {
                let stop = Arc::clone(&stop);
                let (thread, cpus) =
                    pinned_thread(workers, move || accept_threads(&listener, &handler, &stop))?;
                (Acceptor::Thread(thread), cpus)
            }
            System::Process => {
                return Err(BenchError::Usage(
                    "no process row: WORKLOADS.md defines none for the socket workloads".into(),
                ));
            }
        };
        Ok(Server {
            addr,
            workers,
            stop,
            acceptor,
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Workers (spindle) or CPUs (thread) the server may use.
    pub fn workers(&self) -> u64 {
        self.workers
    }

    /// Stops accepting and waits for the accept loop to end; a spindle
    /// server's runtime is shut down too. Returns the accept loop's error,
    /// if it failed.
    pub fn stop(self) -> Result<(), BenchError> {
        // Release pairs with the Acquire load in the accept loops: a loop
        // woken by the connection below sees the flag.
        self.stop.store(true, Ordering::Release);
        // Wakes the accept loop if it is blocked in `accept`; if it has
        // already ended (with an error), there is nobody to connect to.
        drop(TcpStream::connect(self.addr));
        let result = match self.acceptor {
            Acceptor::Coroutine { rt, accept } => {
                let r = accept.join();
                drop(rt);
                r
            }
            Acceptor::Thread(thread) => thread.join(),
        };
        match result {
            Ok(r) => Ok(r?),
            Err(_) => Err(io::Error::other("the accept loop panicked").into()),
        }
    }
}

/// Runs `accept` on a new thread restricted to the first `cpus` CPUs (the
/// threads it spawns inherit the mask); returns the thread and how many
/// CPUs it got, the thread row's `workers`.
fn pinned_thread(
    cpus: u64,
    accept: impl FnOnce() -> io::Result<()> + Send + 'static,
) -> io::Result<(std::thread::JoinHandle<io::Result<()>>, u64)> {
    let (got_tx, got_rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("accept".into())
        .spawn(move || {
            let pin = Pinned::first(cpus as usize);
            let _ = got_tx.send(pin.as_ref().map(Pinned::cpus).ok());
            // Held until the accept loop ends: dropping it restores the mask.
            let _pin = pin?;
            accept()
        })?;
    match got_rx.recv() {
        Ok(Some(got)) => Ok((thread, got as u64)),
        // Pinning failed: the thread returns the error.
        _ => Err(thread.join().map_or_else(
            |_| io::Error::other("the accept thread panicked"),
            |r| {
                r.err()
                    .unwrap_or_else(|| io::Error::other("the accept thread ended at once"))
            },
        )),
    }
}

/// Serves `handler` on `127.0.0.1:port` until the process is killed (the
/// `--serve PORT` mode), after a note on stderr saying where.
pub fn serve_forever<H: Handler>(
    workload: &str,
    system: System,
    workers: u64,
    port: u16,
    handler: H,
) -> Result<(), BenchError> {
    let listener = bind(port)?;
    let addr = listener.local_addr()?;
    let note = |unit: &str| {
        eprintln!(
            "spindle bench {workload}: serving on {addr} ({}, {unit}); stop it with Ctrl-C",
            system.id(),
        );
    };
    let never = AtomicBool::new(false);
    let handler = Arc::new(handler);
    match system {
        System::Spindle => {
            let rt = runtime(workers)?;
            let listener = spindle::net::TcpListener::from_std(listener)?;
            note(&format!("{workers} workers"));
            rt.block_on(|| accept_coroutines(&listener, &handler, &never))?;
        }
        System::Thread => {
            let pin = Pinned::first(workers as usize)?;
            note(&format!("{} CPUs", pin.cpus()));
            accept_threads(&listener, &handler, &never)?;
        }
        System::Process => {
            return Err(BenchError::Usage(format!(
                "the `{workload}` workload has no `process` row in WORKLOADS.md"
            )));
        }
    }
    Ok(())
}

/// What an accept loop does after a failed accept.
fn after_accept_error(e: &io::Error) -> io::Result<()> {
    match e.raw_os_error() {
        // Out of descriptors: others free up as connections close.
        Some(libc::EMFILE | libc::ENFILE) => {
            std::thread::sleep(EXHAUSTED_PAUSE);
            Ok(())
        }
        // The connection went away before we took it, or a signal: not the
        // listener's failure.
        Some(libc::ECONNABORTED | libc::EINTR | libc::EPROTO) => Ok(()),
        _ => Err(io::Error::new(e.kind(), format!("accept: {e}"))),
    }
}

/// The spindle accept loop: a coroutine per connection, until `stop`.
fn accept_coroutines<H: Handler>(
    listener: &spindle::net::TcpListener,
    handler: &Arc<H>,
    stop: &AtomicBool,
) -> io::Result<()> {
    for conn in listener.incoming() {
        // Acquire pairs with the Release store in `Server::stop`.
        if stop.load(Ordering::Acquire) {
            return Ok(());
        }
        match conn {
            Ok(conn) => {
                // Only a socket already reset can refuse the option; its
                // handler will see the error.
                let _ = conn.set_nodelay(true);
                let handler = Arc::clone(handler);
                // Detached: the coroutine ends with its connection.
                drop(spindle::spawn(move || handler.serve(conn)));
            }
            // `incoming` has already backed off if descriptors ran out.
            Err(e) => after_accept_error(&e)?,
        }
    }
    Ok(())
}

/// The OS-thread accept loop: a thread per connection, until `stop`.
fn accept_threads<H: Handler>(
    listener: &TcpListener,
    handler: &Arc<H>,
    stop: &AtomicBool,
) -> io::Result<()> {
    for conn in listener.incoming() {
        // Acquire pairs with the Release store in `Server::stop`.
        if stop.load(Ordering::Acquire) {
            return Ok(());
        }
        match conn {
            Ok(conn) => {
                let _ = conn.set_nodelay(true);
                let handler = Arc::clone(handler);
                // Detached: the thread ends with its connection. Failing to
                // create one ends the server: the row cannot go on.
                drop(std::thread::Builder::new().spawn(move || handler.serve(conn))?);
            }
            Err(e) => after_accept_error(&e)?,
        }
    }
    Ok(())
}
