//! `spindle`: the command-line face of the spindle runtime.
//!
//! - `spindle bench WORKLOAD [--workers N] [--n N] [--system spindle|thread|process]`
//!   runs one workload of `shared/bench/WORKLOADS.md` and prints its JSON
//!   lines on stdout. Exit status 2 for a usage error (including a workload
//!   with no row for the chosen system), 3 when a correctness check fails.
//!   `spindle bench sched_latency [--policy NAME] [--hogs yield|no-yield]
//!   [--interactive N] [--work-us US] [--secs S]` measures a scheduling
//!   policy's wake-up latency under CPU-bound load.
//! - `spindle lab [--json]` measures what a process, a thread and a
//!   coroutine cost here to create, to switch and to keep alive, beside the
//!   textbook figures, and shows the scheduling policies side by side (a
//!   table, and a Gantt chart written to `spindle-lab-policies.svg`).

mod bench;
mod lab;

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser, Subcommand};

use bench::BenchError;

/// Go-style green threads for plain blocking Rust: benchmarks and a lab.
#[derive(Parser, Debug)]
#[command(name = "spindle", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
enum Command {
    /// Run one workload of shared/bench/WORKLOADS.md and print its JSON lines.
    Bench(bench::BenchArgs),
    /// Measure what a process, a thread and a coroutine cost on this machine.
    Lab(lab::LabArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (name, result) = match &cli.command {
        Command::Bench(args) => ("bench", bench::run(args)),
        Command::Lab(args) => ("lab", lab::run(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(BenchError::Usage(msg)) => {
            let mut cmd = Cli::command();
            cmd.build();
            let sub = cmd
                .find_subcommand_mut(name)
                .unwrap_or_else(|| unreachable!());
            // Prints the message with the subcommand's usage; exits with 2.
            sub.error(ErrorKind::ArgumentConflict, msg).exit()
        }
        Err(e @ BenchError::Check(_)) => {
            eprintln!("spindle {name}: {e}");
            ExitCode::from(3)
        }
        Err(e) => {
            eprintln!("spindle {name}: {e}");
            ExitCode::from(1)
        }
    }
}
