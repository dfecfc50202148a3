//! Gantt charts as hand-written SVG: the picture a scheduling textbook
//! draws, one horizontal lane per task, time running left to right, a bar
//! wherever the task held the CPU.
//!
//! A chart is a stack of panels (one per policy in `spindle lab`), each
//! with its own lanes and a time axis from 0 to its window. Turns come in
//! as [`Span`]s; consecutive spans of one lane closer together than half a
//! pixel are drawn as one bar (a coroutine that yields every microsecond
//! and is resumed at once ran the whole time, as far as the eye can tell),
//! and a bar narrower than a pixel is widened to one pixel so that a short
//! turn still shows. The SVG is plain text with no scripts or external
//! references, readable by any browser or image viewer.

use std::fmt::Write;
use std::time::Duration;

/// Width of the whole picture, in pixels.
const WIDTH: f64 = 960.0;
/// Width of the lane labels on the left.
const LABEL_W: f64 = 200.0;
/// Right margin.
const MARGIN: f64 = 20.0;
/// Height of a lane; bars are a little thinner.
const LANE_H: f64 = 20.0;
/// Space for a panel's title above its lanes.
const TITLE_H: f64 = 22.0;
/// Space for the time axis below the lanes.
const AXIS_H: f64 = 22.0;
/// Space between panels.
const GAP: f64 = 16.0;
/// Space for the picture's heading.
const HEADING_H: f64 = 36.0;
/// Bar colours, by lane (colour-blind-safe, from ColorBrewer's Dark2).
const COLOURS: [&str; 4] = ["#d95f02", "#1b9e77", "#7570b3", "#e7298a"];

/// A stretch of time one lane's task ran.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Span {
    /// The lane (index into [`Panel::lanes`]).
    pub lane: usize,
    /// Start, from the panel's time 0.
    pub start: Duration,
    /// End.
    pub end: Duration,
}

/// One chart: a title, lanes and what ran in them.
#[derive(Clone, Debug)]
pub struct Panel {
    /// Shown above the lanes.
    pub title: String,
    /// One label per lane, top to bottom.
    pub lanes: Vec<String>,
    /// What ran, in any order; parts outside `0..window` are cut off.
    pub spans: Vec<Span>,
    /// The time the axis covers.
    pub window: Duration,
}

/// `s` with XML's special characters escaped, for text and attributes.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// A tick spacing of 1, 2 or 5 times a power of ten giving at most 10
/// ticks over `window`.
pub fn tick_step(window: Duration) -> Duration {
    let window = window.as_nanos().max(1);
    let mut unit = 1u128;
    loop {
        for m in [1, 2, 5] {
            if window.div_ceil(m * unit) <= 10 {
                return Duration::from_nanos((m * unit) as u64);
            }
        }
        unit *= 10;
    }
}

/// A duration as an axis label: "0", "500 µs", "10 ms", "1.5 s".
fn label(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        "0".to_string()
    } else if ns < 1_000_000 {
        format!("{} µs", ns as f64 / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{} ms", ns as f64 / 1e6)
    } else {
        format!("{} s", ns as f64 / 1e9)
    }
}

/// The bars to draw for `panel`, as (lane, start, end) in nanoseconds,
/// clipped to the window, sorted, and merged where a gap is below
/// `min_gap_ns`.
pub fn bars(panel: &Panel, min_gap_ns: f64) -> Vec<(usize, f64, f64)> {
    let window = panel.window.as_nanos() as f64;
    let mut spans: Vec<(usize, f64, f64)> = panel
        .spans
        .iter()
        .map(|s| {
            let (a, b) = (s.start.as_nanos() as f64, s.end.as_nanos() as f64);
            (s.lane, a.min(window), b.min(window))
        })
        .filter(|&(lane, a, b)| lane < panel.lanes.len() && b > a)
        .collect();
    spans.sort_by(|x, y| x.0.cmp(&y.0).then(x.1.total_cmp(&y.1)));
    let mut out: Vec<(usize, f64, f64)> = Vec::with_capacity(spans.len());
    for (lane, a, b) in spans {
        match out.last_mut() {
            Some(last) if last.0 == lane && a - last.2 < min_gap_ns => last.2 = last.2.max(b),
            _ => out.push((lane, a, b)),
        }
    }
    out
}

/// The picture: `heading` above `panels` stacked top to bottom.
pub fn svg(heading: &str, panels: &[Panel]) -> String {
    let plot_w = WIDTH - LABEL_W - MARGIN;
    let height = HEADING_H
        + panels
            .iter()
            .map(|p| TITLE_H + LANE_H * p.lanes.len() as f64 + AXIS_H + GAP)
            .sum::<f64>();
    let mut s = String::new();
    // Writing to a String cannot fail; the results are ignored.
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
         viewBox=\"0 0 {WIDTH} {height}\" font-family=\"sans-serif\" font-size=\"12\">"
    );
    let _ = writeln!(s, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
    let _ = writeln!(
        s,
        "<text x=\"10\" y=\"22\" font-size=\"15\" font-weight=\"bold\">{}</text>",
        escape(heading)
    );
    let mut y = HEADING_H;
    for panel in panels {
        let ns_per_px = panel.window.as_nanos().max(1) as f64 / plot_w;
        let x_of = |ns: f64| LABEL_W + ns / ns_per_px;
        let _ = writeln!(
            s,
            "<text x=\"10\" y=\"{:.1}\" font-weight=\"bold\">{}</text>",
            y + 15.0,
            escape(&panel.title)
        );
        let top = y + TITLE_H;
        for (i, lane) in panel.lanes.iter().enumerate() {
            let ly = top + LANE_H * i as f64;
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n\
                 <rect x=\"{LABEL_W}\" y=\"{:.1}\" width=\"{plot_w:.1}\" height=\"{:.1}\" \
                 fill=\"#f2f2f2\"/>",
                LABEL_W - 8.0,
                ly + LANE_H * 0.7,
                escape(lane),
                ly + 2.0,
                LANE_H - 4.0,
            );
        }
        let bottom = top + LANE_H * panel.lanes.len() as f64;
        let step = tick_step(panel.window);
        let mut t = Duration::ZERO;
        while t <= panel.window {
            let x = x_of(t.as_nanos() as f64);
            let _ = writeln!(
                s,
                "<line x1=\"{x:.1}\" y1=\"{top:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#bbb\" \
                 stroke-width=\"0.5\"/>\n<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" \
                 font-size=\"10\" fill=\"#555\">{}</text>",
                bottom + 4.0,
                bottom + 15.0,
                escape(&label(t)),
            );
            t += step;
        }
        for (lane, a, b) in bars(panel, ns_per_px / 2.0) {
            let x = x_of(a);
            let w = ((b - a) / ns_per_px).max(1.0);
            let _ = writeln!(
                s,
                "<rect x=\"{x:.2}\" y=\"{:.1}\" width=\"{w:.2}\" height=\"{:.1}\" fill=\"{}\"/>",
                top + LANE_H * lane as f64 + 3.0,
                LANE_H - 6.0,
                COLOURS[lane % COLOURS.len()],
            );
        }
        y = bottom + AXIS_H + GAP;
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    fn panel(spans: Vec<Span>) -> Panel {
        Panel {
            title: "fifo <1 & 2>".into(),
            lanes: vec!["a".into(), "b".into()],
            spans,
            window: us(1_000),
        }
    }

    #[test]
    fn ticks_are_round_and_few() {
        assert_eq!(
            tick_step(Duration::from_millis(60)),
            Duration::from_millis(10)
        );
        assert_eq!(
            tick_step(Duration::from_millis(100)),
            Duration::from_millis(10)
        );
        assert_eq!(
            tick_step(Duration::from_millis(101)),
            Duration::from_millis(20)
        );
        assert_eq!(tick_step(us(3)), Duration::from_nanos(500));
        assert_eq!(label(Duration::from_millis(10)), "10 ms");
        assert_eq!(label(us(500)), "500 µs");
        assert_eq!(label(Duration::ZERO), "0");
    }

    #[test]
    fn close_spans_merge_and_the_window_clips() {
        let span = |lane, a, b| Span {
            lane,
            start: us(a),
            end: us(b),
        };
        let p = panel(vec![
            span(0, 10, 20),
            span(1, 20, 30),
            span(0, 21, 40),       // 1 µs after the first: merged
            span(0, 100, 110),     // far: a bar of its own
            span(1, 990, 2_000),   // cut at the window's end
            span(1, 1_500, 1_600), // wholly outside: dropped
            span(7, 0, 10),        // no such lane: dropped
        ]);
        let b = bars(&p, 2_000.0);
        assert_eq!(
            b,
            [
                (0, 10_000.0, 40_000.0),
                (0, 100_000.0, 110_000.0),
                (1, 20_000.0, 30_000.0),
                (1, 990_000.0, 1_000_000.0)
            ]
        );
    }

    #[test]
    fn the_svg_has_a_bar_per_merged_span_and_escaped_text() {
        let p = panel(vec![
            Span {
                lane: 0,
                start: us(0),
                end: us(100),
            },
            Span {
                lane: 1,
                start: us(100),
                end: us(1_000),
            },
        ]);
        let s = svg("policies", &[p.clone(), p]);
        assert!(s.starts_with("<svg ") && s.ends_with("</svg>\n"));
        assert!(s.contains("fifo &lt;1 &amp; 2&gt;") && !s.contains("<1 &"));
        // Per panel: 2 lane backgrounds and 2 bars; plus the page.
        assert_eq!(s.matches("<rect").count(), 1 + 2 * (2 + 2));
        assert_eq!(s.matches("#d95f02").count(), 2);
        // Ticks at 0, 100, ..., 1,000 µs in each panel.
        assert_eq!(s.matches("<line").count(), 2 * 11);
    }
}
