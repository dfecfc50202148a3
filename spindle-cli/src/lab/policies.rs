//! The lab's "scheduling policies" section: every policy runs the same
//! small scenario on one worker, and the lab shows the policies side by
//! side as a table and as a Gantt chart (`spindle-lab-policies.svg`), the
//! picture a scheduling textbook draws.
//!
//! The scenario, [`SCENARIO`] long on a 1-worker runtime that records its
//! turns (`Builder::trace_turns`):
//!
//! | lane        | body                                                 | under `priority` | elsewhere |
//! | ----------- | ---------------------------------------------------- | ---------------- | --------- |
//! | interactive | sleep 2 ms, 100 µs of hashing, repeat                | `Realtime 0`     | nice 0    |
//! | hog A       | 1 µs of hashing, `spindle::checkpoint()`, repeat     | `Normal 0`       | nice 0    |
//! | hog B       | the same                                             | `Idle 0`         | nice 5    |
//!
//! A launcher coroutine spawns them in that order and returns; the lab's
//! own thread keeps time, so the worker runs only these three. The nice
//! values matter only to
//! `fair`, where hog A should get 1024 / 335 ≈ 3.1 times hog B's CPU (the
//! weights of nice 0 and nice 5 in Linux's table); the classes only to
//! `priority`, where hog B, being `Idle`, should not run at all while hog
//! A is ready. The table shows each lane's share of the worker over the
//! window, the interactive coroutine's 99th-percentile wake latency (of
//! about 28 wake-ups, so in effect its worst) and the runtime's count of
//! forced yields; the chart shows when each ran.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use spindle::policy::{Policy, Priority};

use super::gantt::{self, Panel, Span};
use crate::bench::busy::{Busy, spin};
use crate::bench::histogram::Histogram;
use crate::bench::{BenchError, check, json_num, json_str};

/// How long each policy's scenario runs.
pub const SCENARIO: Duration = Duration::from_millis(60);
/// The interactive coroutine's sleep.
const NAP: Duration = Duration::from_millis(2);
/// The interactive coroutine's work after each wake-up.
const BURST: Duration = Duration::from_micros(100);
/// A hog's work between checkpoints.
const HOG_LOOP: Duration = Duration::from_micros(1);
/// Turns recorded per run; far more than 60 ms of any policy needs unless
/// every checkpoint switches.
const MAX_TURNS: usize = 200_000;
/// The file the chart goes to, in the current directory.
pub const SVG_FILE: &str = "spindle-lab-policies.svg";

/// Lanes, top to bottom.
const INTERACTIVE: usize = 0;
const HOG_A: usize = 1;
const HOG_B: usize = 2;

/// What one policy's scenario showed.
#[derive(Clone, Debug)]
pub struct PolicyRun {
    /// The policy's name.
    pub policy: String,
    /// The lane labels (with their class or nice value).
    pub lanes: Vec<String>,
    /// When each lane ran, from the first recorded turn, clipped to the
    /// window.
    pub spans: Vec<Span>,
    /// The time the shares are of: [`SCENARIO`], or less if the trace
    /// filled up first.
    pub window: Duration,
    /// The interactive coroutine's wake latencies, in ns.
    pub wake: Histogram,
    /// The runtime's forced yields.
    pub forced_yields: u64,
    /// Turns recorded.
    pub turns: usize,
}

impl PolicyRun {
    /// The share of the window `lane` ran, from 0 to 1.
    pub fn share(&self, lane: usize) -> f64 {
        let ran: Duration = self
            .spans
            .iter()
            .filter(|s| s.lane == lane)
            .map(|s| s.end.saturating_sub(s.start))
            .sum();
        ran.as_secs_f64() / self.window.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// The interactive coroutine's p99 wake latency in ns, if it woke.
    pub fn p99_wake_ns(&self) -> Option<u64> {
        self.wake.quantile(0.99)
    }

    /// The run as one JSON line of the lab.
    pub fn to_json(&self, svg: &str) -> String {
        let p99 = self.p99_wake_ns().map_or(f64::NAN, |ns| ns as f64 / 1e3);
        format!(
            "{{\"section\":\"scheduling policies\",\"policy\":{},\"p99_wake_us\":{},\
             \"wakes\":{},\"share_interactive\":{},\"share_hog_a\":{},\"share_hog_b\":{},\
             \"lane_hog_a\":{},\"lane_hog_b\":{},\"forced_yields\":{},\"turns\":{},\
             \"window_ms\":{},\"svg\":{}}}",
            json_str(&self.policy),
            json_num(p99),
            self.wake.len(),
            json_num(self.share(INTERACTIVE)),
            json_num(self.share(HOG_A)),
            json_num(self.share(HOG_B)),
            json_str(&self.lanes[HOG_A]),
            json_str(&self.lanes[HOG_B]),
            self.forced_yields,
            self.turns,
            json_num(self.window.as_secs_f64() * 1e3),
            json_str(svg),
        )
    }

    /// The run as a panel of the Gantt chart.
    pub fn panel(&self) -> Panel {
        let wake = self.p99_wake_ns().map_or("never woke".to_string(), |ns| {
            format!("p99 wake {}", super::row::time(ns as f64))
        });
        Panel {
            title: format!(
                "{}: interactive {wake}; CPU {:.0}% / {:.0}% / {:.0}%",
                self.policy,
                100.0 * self.share(INTERACTIVE),
                100.0 * self.share(HOG_A),
                100.0 * self.share(HOG_B),
            ),
            lanes: self.lanes.clone(),
            spans: self.spans.clone(),
            window: self.window,
        }
    }
}

/// The interactive lane's body: nap, record how late it woke, work.
fn interactive(stop: &AtomicBool, rounds: u64) -> Histogram {
    let mut wake = Histogram::new();
    let mut x = 1;
    // Relaxed: the flag publishes no data; `join` returns the results.
    while !stop.load(Ordering::Relaxed) {
        let due = Instant::now() + NAP;
        spindle::sleep(NAP);
        let woke = Instant::now();
        wake.record(woke.saturating_duration_since(due).as_nanos() as u64);
        x = spin(rounds, x);
    }
    wake
}

/// A hog lane's body: short loops with a checkpoint after each.
fn hog(stop: &AtomicBool, rounds: u64) {
    let mut x = 1;
    // Relaxed, as in `interactive`.
    while !stop.load(Ordering::Relaxed) {
        x = spin(rounds, x);
        spindle::checkpoint();
    }
}

/// Runs the scenario under `policy`.
pub fn measure(policy: Policy, busy: Busy) -> Result<PolicyRun, BenchError> {
    let name = policy.name().to_string();
    let is_priority = matches!(policy, Policy::Priority);
    let rt = spindle::Runtime::builder()
        .workers(1)
        .policy(policy)
        .trace_turns(MAX_TURNS)
        .build()?;
    let stop = Arc::new(AtomicBool::new(false));
    let lanes = if is_priority {
        [
            "interactive (Realtime 0)",
            "hog A (Normal 0)",
            "hog B (Idle 0)",
        ]
    } else {
        ["interactive (nice 0)", "hog A (nice 0)", "hog B (nice 5)"]
    };
    let builder = |lane: usize| {
        let b = spindle::Builder::new().name(lanes[lane].to_string());
        match (is_priority, lane) {
            (true, INTERACTIVE) => b.priority(Priority::realtime(0)),
            (true, HOG_A) => b.priority(Priority::normal(0)),
            (true, _) => b.priority(Priority::idle(0)),
            (false, HOG_B) => b.nice(5),
            (false, _) => b.nice(0),
        }
    };
    // A launcher coroutine spawns the three, so they start out in the
    // worker's own queue as a program's spawns do.
    let (a, b, i) = rt.block_on(|| -> std::io::Result<_> {
        let hog_rounds = busy.rounds(HOG_LOOP);
        let a = {
            let stop = Arc::clone(&stop);
            builder(HOG_A).spawn(move || hog(&stop, hog_rounds))?
        };
        let b = {
            let stop = Arc::clone(&stop);
            builder(HOG_B).spawn(move || hog(&stop, hog_rounds))?
        };
        let i = {
            let stop = Arc::clone(&stop);
            let rounds = busy.rounds(BURST);
            builder(INTERACTIVE).spawn(move || interactive(&stop, rounds))?
        };
        Ok((a, b, i))
    })?;
    let ids = [(i.id(), INTERACTIVE), (a.id(), HOG_A), (b.id(), HOG_B)];
    std::thread::sleep(SCENARIO);
    stop.store(true, Ordering::Relaxed);
    let joined = [a.join().is_ok(), b.join().is_ok()];
    let wake = i.join().ok();
    let finished = joined.iter().filter(|&&ok| ok).count() + usize::from(wake.is_some());
    check("scenario coroutines that finished", finished as u64, 3)?;
    let turns = rt.handle().turns();
    let metrics = rt.handle().metrics();
    drop(rt);

    let ours: Vec<(usize, Duration, Duration)> = turns
        .iter()
        .filter_map(|t| {
            let lane = ids.iter().find(|(id, _)| *id == t.coroutine)?.1;
            Some((lane, t.start, t.end))
        })
        .collect();
    let t0 = ours.iter().map(|t| t.1).min().unwrap_or_default();
    let mut window = SCENARIO;
    if turns.len() >= MAX_TURNS {
        // The trace stopped early: the shares are of what it saw.
        window = window.min(ours.iter().map(|t| t.2).max().unwrap_or_default() - t0);
    }
    let spans = ours
        .into_iter()
        .map(|(lane, start, end)| Span {
            lane,
            start: (start - t0).min(window),
            end: (end - t0).min(window),
        })
        .filter(|s| s.end > s.start)
        .collect();
    Ok(PolicyRun {
        policy: name,
        lanes: lanes.map(String::from).to_vec(),
        spans,
        window,
        wake: wake.unwrap_or_default(),
        forced_yields: metrics.forced_yields,
        turns: turns.len(),
    })
}

/// The chart of every run, as SVG text.
pub fn svg(runs: &[PolicyRun]) -> String {
    let panels: Vec<Panel> = runs.iter().map(PolicyRun::panel).collect();
    gantt::svg(
        &format!(
            "Scheduling policies on one worker, {} ms each: an interactive coroutine and two \
             CPU-bound ones",
            SCENARIO.as_millis()
        ),
        &panels,
    )
}

/// Prints the runs as a table, with what the textbook expects beside it.
pub fn print_table(runs: &[Result<PolicyRun, (String, String)>], svg_note: &str) {
    println!(
        "\nScheduling policies: one worker, {} ms each; an interactive coroutine (sleeps 2 ms, \
         works 100 µs) and two CPU-bound ones (1 µs of work, then `checkpoint()`).\n",
        SCENARIO.as_millis()
    );
    let header = [
        "policy",
        "interactive p99 wake",
        "interactive CPU",
        "hog A CPU",
        "hog B CPU",
        "forced yields",
        "turns",
    ];
    let cells: Vec<[String; 7]> = runs
        .iter()
        .map(|r| match r {
            Ok(r) => [
                r.policy.clone(),
                r.p99_wake_ns()
                    .map_or("never woke".into(), |ns| super::row::time(ns as f64)),
                format!("{:.1}%", 100.0 * r.share(INTERACTIVE)),
                format!(
                    "{:.1}% ({})",
                    100.0 * r.share(HOG_A),
                    lane_class(&r.lanes[HOG_A])
                ),
                format!(
                    "{:.1}% ({})",
                    100.0 * r.share(HOG_B),
                    lane_class(&r.lanes[HOG_B])
                ),
                r.forced_yields.to_string(),
                r.turns.to_string(),
            ],
            Err((policy, _)) => [
                policy.clone(),
                "—".into(),
                "—".into(),
                "—".into(),
                "—".into(),
                "—".into(),
                "—".into(),
            ],
        })
        .collect();
    for line in super::row::aligned(&header, &cells) {
        println!("{line}");
    }
    for r in runs {
        if let Err((policy, e)) = r {
            println!("\n{policy} was not measured: {e}");
        }
    }
    if let Some(Ok(fair)) = runs
        .iter()
        .find(|r| matches!(r, Ok(r) if r.policy == "fair"))
    {
        let (a, b) = (fair.share(HOG_A), fair.share(HOG_B));
        if b > 0.0 {
            println!(
                "\nfair: hog A (nice 0) got {:.2}× hog B's (nice 5) CPU; CFS's weights \
                 1024 / 335 give 3.06×.",
                a / b
            );
        }
    }
    println!(
        "The textbook: priority never runs an Idle coroutine while a Normal one is ready \
         (hog B 0%); MLFQ and fair share keep the interactive coroutine's wake latency low \
         beside CPU-bound work; FIFO runs each coroutine until it gives way.\n{svg_note}"
    );
}

/// "nice 0" out of "hog A (nice 0)".
fn lane_class(lane: &str) -> &str {
    lane.split_once('(')
        .map_or(lane, |(_, rest)| rest.trim_end_matches(')'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(spans: Vec<Span>) -> PolicyRun {
        PolicyRun {
            policy: "fair".into(),
            lanes: vec![
                "i (nice 0)".into(),
                "a (nice 0)".into(),
                "b (nice 5)".into(),
            ],
            spans,
            window: Duration::from_millis(10),
            wake: Histogram::new(),
            forced_yields: 3,
            turns: 2,
        }
    }

    #[test]
    fn shares_are_of_the_window() {
        let ms = Duration::from_millis;
        let r = run(vec![
            Span {
                lane: HOG_A,
                start: ms(0),
                end: ms(6),
            },
            Span {
                lane: HOG_B,
                start: ms(6),
                end: ms(8),
            },
        ]);
        assert_eq!(
            (r.share(HOG_A), r.share(HOG_B), r.share(INTERACTIVE)),
            (0.6, 0.2, 0.0)
        );
        assert_eq!(r.p99_wake_ns(), None);
        let line = r.to_json("x.svg");
        assert!(line.contains("\"share_hog_a\":0.6,") && line.contains("\"p99_wake_us\":null"));
        assert!(r.panel().title.contains("never woke"));
        assert_eq!(lane_class("hog B (Idle 0)"), "Idle 0");
    }

    /// The scenario on a real runtime: all three coroutines are traced and
    /// the chart draws them (no assertion on who got how much: that is
    /// the policy's business and the machine's timing).
    #[test]
    fn every_policy_runs_the_scenario_and_draws_it() {
        let busy = Busy::with_rate(100.0);
        let runs: Vec<PolicyRun> = Policy::all()
            .into_iter()
            .map(|p| measure(p, busy).unwrap())
            .collect();
        for r in &runs {
            assert!(r.turns > 0 && r.window > Duration::ZERO, "{}", r.policy);
            assert!(r.spans.iter().any(|s| s.lane == HOG_A), "{}", r.policy);
        }
        let s = svg(&runs);
        assert!(s.starts_with("<svg") && s.ends_with("</svg>\n"));
        for r in &runs {
            assert!(s.contains(&r.policy));
        }
    }
}
