//! `chan_pingpong`: two units pass a token back and forth over a pair of
//! rendezvous (capacity 0) channels; `ns_per_roundtrip` = total / round
//! trips. Run once with `--workers 1` and once with `--workers 2`.
//!
//! Rows:
//! - spindle: the calling coroutine and one peer coroutine over two
//!   `spindle::channel::bounded(0)` channels, on a runtime with `--workers`
//!   workers (1,000,000 round trips);
//! - thread: this thread and one peer thread over two
//!   `std::sync::mpsc::sync_channel(0)` channels, both restricted to
//!   `--workers` CPUs (100,000 round trips: each costs microseconds);
//! - process: this process and a forked child passing one byte over two
//!   pipes, both restricted to `--workers` CPUs (100,000 round trips). A
//!   pipe is the channel processes have; it has no rendezvous mode, and
//!   with one byte in flight at a time its buffer plays the part of
//!   WORKLOADS.md's "capacity 1" fallback.
//!
//! In the channel rows the token is a counter the peer increments on each
//! pass, so the check covers every round trip (the pipe carries one byte,
//! and its peer counts its echoes instead). One round trip before the clock
//! starts takes the peer's start-up out of the figure. All three rows share
//! one timing loop ([`time_round_trips`]). `yield`'s process row and
//! `spindle lab`'s pipe rows are [`pipes`] pinned to one CPU.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::os::{self, Pinned, Pipe};
use super::{BenchArgs, BenchError, REPS, Record, System, check, median_of, per, runtime};

/// Round trips per repetition of the spindle row.
pub const DEFAULT_N_SPINDLE: u64 = 1_000_000;
/// Round trips per repetition of the OS-thread and OS-process rows.
pub const DEFAULT_N_OS: u64 = 100_000;

/// The peer's side of a channel ping-pong: sends each token it receives
/// back incremented, until its receiver disconnects (or its reply cannot be
/// delivered); returns how many it passed back.
fn echo(tokens: impl IntoIterator<Item = u64>, mut reply: impl FnMut(u64) -> bool) -> u64 {
    let mut passes = 0;
    for token in tokens {
        if !reply(token + 1) {
            break;
        }
        passes += 1;
    }
    passes
}

/// The caller's side: one untimed round trip, then `rounds` timed ones,
/// each sending the token that came back last. Returns the time, the timed
/// round trips completed, and the last token back (`None` once the peer is
/// gone).
fn time_round_trips(
    rounds: u64,
    mut round_trip: impl FnMut(u64) -> Option<u64>,
) -> (Duration, u64, Option<u64>) {
    let mut token = round_trip(0);
    let start = Instant::now();
    let mut done = 0;
    while done < rounds {
        let Some(t) = token else { break };
        token = round_trip(t);
        done += u64::from(token.is_some());
    }
    (start.elapsed(), done, token)
}

/// Checks a channel ping-pong's outcome: every timed round trip completed,
/// the last token came back as `rounds + 1` (the peer incremented it on
/// each pass), and the peer counted as many passes (the untimed first
/// round trip included).
fn check_rounds(rounds: u64, done: u64, token: Option<u64>, echoed: u64) -> Result<(), BenchError> {
    check("round trips", done, rounds)?;
    check(
        "token after the last round trip",
        token.unwrap_or(0),
        rounds + 1,
    )?;
    check("passes the peer made", echoed, rounds + 1)
}

/// One repetition with spindle coroutines: the calling coroutine sends the
/// token on one `bounded(0)` channel, a peer coroutine sends it back
/// incremented on another, `rounds` times. Must run inside a coroutine
/// (`Runtime::block_on`); which workers the two run on is the scheduler's
/// choice, as it is for any pair of coroutines.
pub fn coroutines(rounds: u64) -> Result<Duration, BenchError> {
    let (ping_tx, ping_rx) = spindle::channel::bounded::<u64>(0);
    let (pong_tx, pong_rx) = spindle::channel::bounded::<u64>(0);
    let peer = spindle::spawn(move || echo(ping_rx, |t| pong_tx.send(t).is_ok()));
    let (elapsed, done, token) = time_round_trips(rounds, |t| {
        ping_tx.send(t).ok()?;
        pong_rx.recv().ok()
    });
    // Disconnecting the ping channel ends the peer's loop.
    drop(ping_tx);
    let echoed = peer.join().unwrap_or(0);
    check_rounds(rounds, done, token, echoed)?;
    Ok(elapsed)
}

/// One repetition with OS threads: this thread and a peer thread over two
/// `std::sync::mpsc::sync_channel(0)` channels, `rounds` round trips. Runs
/// on the CPUs the calling thread may use (the peer inherits its mask).
pub fn threads(rounds: u64) -> Result<Duration, BenchError> {
    let (ping_tx, ping_rx) = mpsc::sync_channel::<u64>(0);
    let (pong_tx, pong_rx) = mpsc::sync_channel::<u64>(0);
    let peer =
        std::thread::Builder::new().spawn(move || echo(ping_rx, |t| pong_tx.send(t).is_ok()))?;
    let (elapsed, done, token) = time_round_trips(rounds, |t| {
        ping_tx.send(t).ok()?;
        pong_rx.recv().ok()
    });
    // Disconnecting the ping channel ends the peer's loop.
    drop(ping_tx);
    let echoed = peer.join().unwrap_or(0);
    check_rounds(rounds, done, token, echoed)?;
    Ok(elapsed)
}

/// What runs the other end of a pipe ping-pong.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    /// A thread of this process.
    Thread,
    /// A forked child process.
    Process,
}

/// One repetition of a one-byte ping-pong over two pipes between this
/// thread and a peer: `rounds` round trips. Runs on the CPUs the calling
/// thread may use (a peer thread or child process inherits its mask);
/// callers that want one CPU pin first.
///
/// The byte carries no count, so instead of checking a token the peer
/// counts its echoes, and a child reports whether the count was right in
/// its exit status.
pub fn pipes(rounds: u64, peer: Peer) -> Result<Duration, BenchError> {
    let mut ping = Pipe::new()?;
    let mut pong = Pipe::new()?;
    let (ping_r, ping_w, pong_w) = (ping.read, ping.write, pong.write);
    // Echoes until end of file; returns the number of round trips.
    let echo = move || -> u64 {
        let mut n = 0;
        while os::get_byte(ping_r) && os::put_byte(pong_w) {
            n += 1;
        }
        n
    };
    let mut child = None;
    let mut thread = None;
    match peer {
        Peer::Process => {
            // The child makes only close/read/write calls, which are safe
            // in a forked child of a multi-threaded process.
            child = Some(os::fork_run(move || {
                // SAFETY: the child's copy of the ping write end is its
                // own; closing it lets its reads see our close as EOF.
                unsafe { libc::close(ping_w) };
                // Exit status 0 if the child echoed every round trip.
                i32::from(echo() != rounds + 1)
            })?);
            // Our copies of the peer's ends: closed, so that a dead child
            // shows up as end of file instead of a hang.
            ping.close_read();
            pong.close_write();
        }
        Peer::Thread => thread = Some(std::thread::Builder::new().spawn(echo)?),
    }
    // The byte carries no count: here the caller increments the token.
    let (elapsed, done, _) = time_round_trips(rounds, |t| {
        (os::put_byte(ping_w) && os::get_byte(pong.read)).then_some(t + 1)
    });
    // End of file on the ping pipe ends the peer's loop.
    ping.close_write();
    let peer_ok = match (child, thread) {
        (Some(pid), _) => os::wait_ok(pid)?,
        (_, Some(t)) => t.join().is_ok_and(|n| n == rounds + 1),
        _ => false,
    };
    check("round trips", done, rounds)?;
    check("peer echoed every round trip", u64::from(peer_ok), 1)?;
    Ok(elapsed)
}

/// `spindle bench chan_pingpong`.
pub fn run(args: &BenchArgs, mut emit: impl FnMut(Record)) -> Result<(), BenchError> {
    let default = match args.system {
        System::Spindle => DEFAULT_N_SPINDLE,
        System::Thread | System::Process => DEFAULT_N_OS,
    };
    let rounds = args.n.unwrap_or(default);
    let (system, workers, total) = match args.system {
        System::Spindle => {
            let rt = runtime(args.workers)?;
            let total = rt.block_on(move || median_of(REPS, || coroutines(rounds)))?;
            ("spindle", args.workers, total)
        }
        System::Thread => {
            let pin = Pinned::first(args.workers as usize)?;
            let total = median_of(REPS, || threads(rounds))?;
            ("thread", pin.cpus() as u64, total)
        }
        System::Process => {
            let pin = Pinned::first(args.workers as usize)?;
            let total = median_of(REPS, || pipes(rounds, Peer::Process))?;
            ("process", pin.cpus() as u64, total)
        }
    };
    emit(Record {
        workload: "chan_pingpong",
        system,
        n: rounds,
        workers,
        metric: "ns_per_roundtrip",
        value: per(total, rounds),
    });
    Ok(())
}
