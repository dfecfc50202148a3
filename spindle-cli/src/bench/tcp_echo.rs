//! `tcp_echo`: an echo server on 127.0.0.1; the shared load generator
//! (`../shared/bench/loadgen`, the same binary for every system compared)
//! opens 1,000 connections, each sending a 64-byte message and waiting for
//! its echo before sending the next, for 10 s after a 1 s warm-up. It
//! checks every echo byte for byte and prints `msgs_per_sec` and the round
//! trip's percentiles; we print `msgs_per_sec` and `p99_rtt_us`.
//!
//! Rows ([`server`](super::server) describes both servers): spindle, a
//! coroutine per connection on `--workers` workers; thread, an OS thread
//! per connection restricted to `--workers` CPUs. WORKLOADS.md defines no
//! process row. The load generator runs in a child process, started from
//! an unrestricted thread, so it shares the machine's cores with the
//! server as it does for every other system measured. One run, no median:
//! the load generator's ten seconds are the repetition, its warm-up second
//! the warm-up.
//!
//! `--serve PORT` runs only the server, until killed, so that the load
//! generator (or anything else) can be pointed at it from outside.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::server::{Handler, Server, serve_forever};
use super::{BenchArgs, BenchError, Record, System, value_of};

/// Connections the load generator opens when `--n` is not given.
pub const DEFAULT_CONNS: u64 = 1_000;
/// Seconds the load generator measures (after its one-second warm-up).
pub const SECS: u64 = 10;

/// Bytes an echo handler reads at a time. The load generator's messages
/// are 64 bytes and one at a time; a larger message takes more rounds.
const ECHO_BUF: usize = 1024;

/// The echo protocol: every byte read is written back.
#[derive(Copy, Clone, Debug, Default)]
pub struct Echo;

impl Handler for Echo {
    fn serve(&self, conn: impl Read + Write) -> io::Result<()> {
        echo(conn).map(drop)
    }
}

/// Writes back everything read from `conn` until end of file; returns the
/// bytes echoed.
pub fn echo(mut conn: impl Read + Write) -> io::Result<u64> {
    let mut buf = [0u8; ECHO_BUF];
    let mut total = 0;
    loop {
        let n = match conn.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        conn.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// The load generator's folder, beside the workspace (`../shared/bench/
/// loadgen` from the workspace root).
pub fn loadgen_dir() -> PathBuf {
    // This crate's manifest sits one level below the workspace root.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = root.join("../shared/bench/loadgen");
    dir.canonicalize().unwrap_or(dir)
}

/// The load generator's binary, where `cargo build --release` in its folder
/// puts it; a usage error (exit status 2) saying how to build it if it is
/// not there.
pub fn loadgen_binary() -> Result<PathBuf, BenchError> {
    loadgen_in(&loadgen_dir())
}

/// The load generator's binary in its folder `dir`, as [`loadgen_binary`].
fn loadgen_in(dir: &Path) -> Result<PathBuf, BenchError> {
    let bin = dir.join("target/release/loadgen");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(BenchError::Usage(format!(
            "the tcp_echo load generator is not built (no {}); build it with \
             `cd {} && cargo build --release`",
            bin.display(),
            dir.display()
        )))
    }
}

/// What the load generator measured.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Load {
    /// Echoes per second over the measured window.
    pub msgs_per_sec: f64,
    /// Median round trip, µs.
    pub p50_rtt_us: f64,
    /// 99th-percentile round trip, µs.
    pub p99_rtt_us: f64,
}

/// Reads the load generator's JSON lines.
pub fn parse_loadgen(stdout: &str) -> Result<Load, BenchError> {
    let get = |metric| {
        value_of(stdout, metric).ok_or_else(|| {
            BenchError::Io(io::Error::other(format!(
                "the load generator printed no {metric} line: {stdout:?}"
            )))
        })
    };
    Ok(Load {
        msgs_per_sec: get("msgs_per_sec")?,
        p50_rtt_us: get("p50_rtt_us")?,
        p99_rtt_us: get("p99_rtt_us")?,
    })
}

/// Runs the load generator `bin` against `server` with `conns` connections
/// for `secs` seconds and returns what it measured. Its progress notes are
/// relayed to stderr; its failed check (exit status 3) is ours.
pub fn run_loadgen(
    bin: &Path,
    server: &Server,
    system: System,
    conns: u64,
    secs: u64,
) -> Result<Load, BenchError> {
    let out = Command::new(bin)
        .arg(server.addr().port().to_string())
        .arg(system.id())
        .arg(server.workers().to_string())
        .arg(conns.to_string())
        .arg(secs.to_string())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprint!("{stderr}");
    match out.status.code() {
        Some(0) => parse_loadgen(&stdout),
        Some(3) => Err(BenchError::Check(format!(
            "load generator: {}",
            stderr.trim()
        ))),
        _ => Err(BenchError::Io(io::Error::other(format!(
            "the load generator exited with {}: {}",
            out.status,
            stderr.trim()
        )))),
    }
}

/// `spindle bench tcp_echo`.
pub fn run(args: &BenchArgs, mut emit: impl FnMut(Record)) -> Result<(), BenchError> {
    if args.system == System::Process {
        return Err(super::no_row(args));
    }
    if let Some(port) = args.serve {
        if args.n.is_some() {
            return Err(BenchError::Usage(
                "--n sets the load generator's connections; with --serve there is no load".into(),
            ));
        }
        return serve_forever("tcp_echo", args.system, args.workers, port, Echo);
    }
    let conns = args.n.unwrap_or(DEFAULT_CONNS);
    // Before the server starts: a missing load generator is a usage error.
    let bin = loadgen_binary()?;
    let server = Server::start(args.system, args.workers, 0, Echo)?;
    let load = run_loadgen(&bin, &server, args.system, conns, SECS);
    let workers = server.workers();
    // Stopped whatever the load's outcome; the load's error comes first.
    let stopped = server.stop();
    let load = load?;
    stopped?;
    eprintln!(
        "note: {} tcp_echo: median round trip {} µs",
        args.system.id(),
        load.p50_rtt_us
    );
    super::check(
        "some echoes in the measured window",
        u64::from(load.msgs_per_sec > 0.0),
        1,
    )?;
    for (metric, value) in [
        ("msgs_per_sec", load.msgs_per_sec),
        ("p99_rtt_us", load.p99_rtt_us),
    ] {
        emit(Record {
            workload: "tcp_echo",
            system: args.system.id(),
            n: conns,
            workers,
            metric,
            value,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use super::*;

    #[test]
    fn parses_the_load_generators_lines() {
        let out = "{\"workload\":\"tcp_echo\",\"system\":\"spindle\",\"n\":1000,\"workers\":1,\"metric\":\"msgs_per_sec\",\"value\":81234.5}\n\
                   {\"workload\":\"tcp_echo\",\"system\":\"spindle\",\"n\":1000,\"workers\":1,\"metric\":\"p50_rtt_us\",\"value\":11.2}\n\
                   {\"workload\":\"tcp_echo\",\"system\":\"spindle\",\"n\":1000,\"workers\":1,\"metric\":\"p99_rtt_us\",\"value\":30}\n";
        let load = parse_loadgen(out).unwrap();
        assert_eq!(
            load,
            Load {
                msgs_per_sec: 81234.5,
                p50_rtt_us: 11.2,
                p99_rtt_us: 30.0
            }
        );
        assert!(parse_loadgen("").is_err());
    }

    /// Both servers echo every byte of several connections, in order, and
    /// stop cleanly.
    #[test]
    fn both_servers_echo_and_stop() {
        for system in [System::Spindle, System::Thread] {
            for workers in [1, 2] {
                let server = Server::start(system, workers, 0, Echo).unwrap();
                let clients: Vec<_> = (0..20u8)
                    .map(|i| {
                        let addr = server.addr();
                        std::thread::spawn(move || {
                            let mut c = TcpStream::connect(addr).unwrap();
                            for round in 0..50u8 {
                                let msg = [i ^ round; 64];
                                c.write_all(&msg).unwrap();
                                let mut got = [0u8; 64];
                                c.read_exact(&mut got).unwrap();
                                assert_eq!(got, msg, "{system:?} connection {i} round {round}");
                            }
                        })
                    })
                    .collect();
                for c in clients {
                    c.join().unwrap();
                }
                server.stop().unwrap();
            }
        }
    }

    /// The whole path, briefly, where the load generator is built: its
    /// echoes are checked byte for byte, and its lines parse.
    #[test]
    fn load_generator_runs_against_both_servers() {
        let Ok(bin) = loadgen_binary() else {
            eprintln!("skipped: the load generator is not built");
            return;
        };
        for system in [System::Spindle, System::Thread] {
            let server = Server::start(system, 1, 0, Echo).unwrap();
            let load = run_loadgen(&bin, &server, system, 20, 1);
            server.stop().unwrap();
            let load = load.unwrap();
            assert!(load.msgs_per_sec > 0.0, "{system:?}: {load:?}");
            assert!(load.p99_rtt_us >= load.p50_rtt_us, "{system:?}: {load:?}");
        }
    }

    /// A missing load generator is a usage error (exit status 2) naming
    /// the command that builds it.
    #[test]
    fn missing_load_generator_says_how_to_build_it() {
        assert!(loadgen_dir().ends_with("shared/bench/loadgen"));
        match loadgen_in(Path::new("/nonexistent/loadgen")) {
            Err(BenchError::Usage(m)) => {
                assert!(
                    m.contains("cd /nonexistent/loadgen && cargo build --release"),
                    "{m}"
                );
            }
            r => panic!("{:?}", r.map_err(|e| e.to_string())),
        }
    }
}
