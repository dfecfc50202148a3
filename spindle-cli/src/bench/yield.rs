//! `yield`: two units on ONE worker (one CPU) switching back and forth;
//! `ns_per_switch` = total / number of switches. `n` counts switches in
//! every row (for spindle, each of the two coroutines yields n / 2 times).
//!
//! Rows: two spindle coroutines calling `yield_now` on a 1-worker runtime
//! (2,000,000 switches), two OS threads pinned to one CPU handing a turn
//! over a Mutex + Condvar (a futex underneath; 100,000 switches, because
//! each costs microseconds), and two OS processes pinned to one CPU
//! ping-ponging one byte over two pipes (100,000 switches). The same pipe
//! ping-pong between two threads ([`pipe_pingpong`] with [`Peer::Thread`])
//! is what `spindle lab` sets beside the process one, so that the
//! difference is what switching address spaces costs.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::chan_pingpong::{self, Peer};
use super::os::Pinned;
use super::{BenchArgs, BenchError, REPS, Record, System, check, median_of, per, runtime};

/// Switches per repetition of the spindle row.
pub const DEFAULT_N_SPINDLE: u64 = 2_000_000;
/// Switches per repetition of the OS-thread and OS-process rows.
pub const DEFAULT_N_OS: u64 = 100_000;

/// One repetition with two spindle coroutines, each calling `yield_now`
/// `switches / 2` times. Must run inside a coroutine of a 1-worker runtime;
/// the caller is parked in `join` while the two alternate.
pub fn coroutines(switches: u64) -> Result<Duration, BenchError> {
    let each = switches / 2;
    let unit = move || {
        for _ in 0..each {
            spindle::yield_now();
        }
        each
    };
    let start = Instant::now();
    let a = spindle::spawn(unit);
    let b = spindle::spawn(unit);
    let done = a.join().unwrap_or(0) + b.join().unwrap_or(0);
    let elapsed = start.elapsed();
    check("yields completed", done, 2 * each)?;
    Ok(elapsed)
}

/// One repetition with two OS threads pinned to one CPU taking turns over
/// a Mutex + Condvar: each increments a shared turn counter when it is odd
/// (even) and wakes the other, `switches` increments in all.
pub fn futex_threads(switches: u64) -> Result<Duration, BenchError> {
    let _pin = Pinned::first(1)?;
    let turn = Arc::new((Mutex::new(0u64), Condvar::new()));
    let play = move |turn: &(Mutex<u64>, Condvar), parity: u64| -> u64 {
        let (count, cv) = turn;
        let mut mine = 0;
        let mut c = count.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            while *c < switches && *c % 2 != parity {
                c = cv.wait(c).unwrap_or_else(|e| e.into_inner());
            }
            if *c >= switches {
                cv.notify_one();
                return mine;
            }
            *c += 1;
            mine += 1;
            cv.notify_one();
        }
    };
    // Spawned while pinned, so the peer inherits the one-CPU mask.
    let peer_turn = Arc::clone(&turn);
    let start = Instant::now();
    let peer = std::thread::Builder::new().spawn(move || play(&peer_turn, 1))?;
    let ours = play(&turn, 0);
    let theirs = peer.join().unwrap_or(0);
    let elapsed = start.elapsed();
    check("turns taken", ours + theirs, switches)?;
    Ok(elapsed)
}

/// One repetition of a one-byte ping-pong over two pipes between this
/// thread and a peer, both pinned to one CPU: `switches / 2` round trips,
/// each two switches (the measurement itself is `chan_pingpong`'s process
/// row, [`chan_pingpong::pipes`]).
pub fn pipe_pingpong(switches: u64, peer: Peer) -> Result<Duration, BenchError> {
    let _pin = Pinned::first(1)?;
    chan_pingpong::pipes(switches / 2, peer)
}

/// `spindle bench yield`.
pub fn run(args: &BenchArgs, mut emit: impl FnMut(Record)) -> Result<(), BenchError> {
    if args.workers != 1 {
        eprintln!("note: `yield` always runs its two units on one worker; ignoring --workers");
    }
    let default = match args.system {
        System::Spindle => DEFAULT_N_SPINDLE,
        System::Thread | System::Process => DEFAULT_N_OS,
    };
    // Odd counts round down to whole round trips / yields per unit.
    let switches = args.n.unwrap_or(default) / 2 * 2;
    if switches == 0 {
        return Err(BenchError::Usage(
            "`yield` needs --n of at least 2 switches".into(),
        ));
    }
    let (system, total) = match args.system {
        System::Spindle => {
            let rt = runtime(1)?;
            let total = rt.block_on(move || median_of(REPS, || coroutines(switches)))?;
            ("spindle", total)
        }
        System::Thread => ("thread", median_of(REPS, || futex_threads(switches))?),
        System::Process => (
            "process",
            median_of(REPS, || pipe_pingpong(switches, Peer::Process))?,
        ),
    };
    emit(Record {
        workload: "yield",
        system,
        n: switches,
        workers: 1,
        metric: "ns_per_switch",
        value: per(total, switches),
    });
    Ok(())
}
