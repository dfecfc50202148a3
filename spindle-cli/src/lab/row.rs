//! A row of the lab's table: one measured cost, the textbook figure beside
//! it (when there is one), whether that figure held here, and how the row
//! prints as text and as JSON.

use crate::bench::{json_num, json_str};

/// What a row measures, which decides how its value prints and how the
/// verdict is worded.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A time in nanoseconds.
    Time,
    /// An amount of memory in bytes.
    Memory,
}

/// A textbook figure, as a range in the row's unit.
#[derive(Copy, Clone, Debug)]
pub struct Textbook {
    /// Lowest value that counts as "held".
    pub low: f64,
    /// Highest value that counts as "held".
    pub high: f64,
    /// The figure as the textbook states it.
    pub text: &'static str,
    /// Where the figure comes from: the course-material list, or
    /// "commonly cited" (marked with `*` in the table).
    pub source: &'static str,
}

/// Textbook thread switch, as course material gives it.
pub const THREAD_SWITCH: Textbook = Textbook {
    low: 1_000.0,
    high: 5_000.0,
    text: "1–5 µs",
    source: "course material",
};
/// Textbook process switch, as course material gives it.
pub const PROCESS_SWITCH: Textbook = Textbook {
    low: 10_000.0,
    high: 50_000.0,
    text: "10–50 µs",
    source: "course material",
};
/// Textbook goroutine switch, "~100 ns" in course material; "~" is read as within
/// a factor of two.
pub const GOROUTINE_SWITCH: Textbook = Textbook {
    low: 50.0,
    high: 200.0,
    text: "~100 ns (goroutine)",
    source: "course material",
};
/// Textbook goroutine stack, "2 KB" in course material, read as within a factor of
/// two, set beside the resident memory of a parked coroutine.
pub const GOROUTINE_STACK: Textbook = Textbook {
    low: 1_024.0,
    high: 4_096.0,
    text: "2 KB (goroutine stack)",
    source: "course material",
};
/// Creating (and joining) a thread: a commonly cited range, not from the
/// course material.
pub const THREAD_CREATE: Textbook = Textbook {
    low: 10_000.0,
    high: 20_000.0,
    text: "10–20 µs*",
    source: "commonly cited",
};

/// Locking and unlocking a mutex, "25 ns" in the commonly cited latency
/// numbers (Jeff Dean's "Latency numbers every programmer should know"),
/// read as within a factor of two; not from the course material.
pub const MUTEX_LOCK: Textbook = Textbook {
    low: 12.5,
    high: 50.0,
    text: "25 ns* (lock/unlock)",
    source: "commonly cited",
};

/// One measured row.
#[derive(Clone, Debug)]
pub struct Row {
    /// The cost: "create+join", "switch", "keep alive", "serve an idle
    /// connection", "lock+unlock" (take a lock) or "send+reply" (hand a
    /// value to another unit and get one back).
    pub cost: &'static str,
    /// What was measured: "coroutine", "thread" or "process".
    pub unit: &'static str,
    /// How, in a few words (the mechanism and the count).
    pub how: String,
    /// The same measurement's workload id and metric in `spindle bench`.
    pub metric: &'static str,
    /// Units, switches or processes in one repetition.
    pub n: u64,
    /// Time or memory.
    pub kind: Kind,
    /// What was measured here, or why nothing was.
    pub value: Result<f64, String>,
    /// The textbook figure for this row, if there is one.
    pub textbook: Option<Textbook>,
}

impl Row {
    /// Whether the textbook figure held here, in words.
    pub fn verdict(&self) -> &'static str {
        let (Ok(v), Some(t)) = (&self.value, &self.textbook) else {
            return if self.value.is_err() {
                "not measured"
            } else {
                "no textbook figure"
            };
        };
        match (self.kind, *v < t.low, *v > t.high) {
            (_, false, false) => "held",
            (Kind::Time, true, _) => "faster than the textbook here",
            (Kind::Time, _, true) => "slower than the textbook here",
            (Kind::Memory, true, _) => "smaller than the textbook here",
            (Kind::Memory, _, true) => "larger than the textbook here",
        }
    }

    /// The measured value for the table.
    pub fn shown(&self) -> String {
        match (&self.value, self.kind) {
            (Ok(v), Kind::Time) => time(*v),
            (Ok(v), Kind::Memory) => bytes(*v),
            (Err(_), _) => "—".to_string(),
        }
    }

    /// The row as one JSON line.
    pub fn to_json(&self) -> String {
        let value = match &self.value {
            Ok(v) => json_num(*v),
            Err(_) => "null".to_string(),
        };
        let mut s = format!(
            "{{\"cost\":{},\"system\":{},\"how\":{},\"n\":{},\"metric\":{},\"value\":{}",
            json_str(self.cost),
            json_str(self.unit),
            json_str(&self.how),
            self.n,
            json_str(self.metric),
            value,
        );
        if let Err(e) = &self.value {
            s += &format!(",\"error\":{}", json_str(e));
        }
        match &self.textbook {
            Some(t) => {
                s += &format!(
                    ",\"textbook_low\":{},\"textbook_high\":{},\"textbook\":{},\"textbook_source\":{}",
                    json_num(t.low),
                    json_num(t.high),
                    json_str(t.text),
                    json_str(t.source),
                )
            }
            None => s += ",\"textbook_low\":null,\"textbook_high\":null",
        }
        s += &format!(",\"verdict\":{}}}", json_str(self.verdict()));
        s
    }
}

/// Nanoseconds in the most readable unit.
pub fn time(ns: f64) -> String {
    if ns < 1_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{:.1} ms", ns / 1e6)
    }
}

/// Bytes in the most readable unit.
pub fn bytes(b: f64) -> String {
    if b < 1_024.0 {
        format!("{b:.0} B")
    } else {
        format!("{:.1} KiB", b / 1024.0)
    }
}

/// Prints `rows` as an aligned table, with the verdict on every row.
pub fn print_table(rows: &[Row]) {
    let header = [
        "cost",
        "of a",
        "measured here",
        "textbook",
        "verdict",
        "how",
    ];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.cost.to_string(),
                r.unit.to_string(),
                r.shown(),
                r.textbook.map_or("—".to_string(), |t| t.text.to_string()),
                r.verdict().to_string(),
                r.how.clone(),
            ]
        })
        .collect();
    let lines = aligned(&header, &cells);
    let (head, body) = lines.split_at(2);
    head.iter().for_each(|l| println!("{l}"));
    let mut last_cost = "";
    for (r, l) in rows.iter().zip(body) {
        if !last_cost.is_empty() && r.cost != last_cost {
            println!();
        }
        last_cost = r.cost;
        println!("{l}");
    }
    for r in rows {
        if let Err(e) = &r.value {
            println!("\n{} of a {} was not measured: {e}", r.cost, r.unit);
        }
    }
}

/// `header`, a rule under it, and `cells`, as lines with every column but
/// the last padded to its widest cell (no trailing spaces).
pub fn aligned<const N: usize>(header: &[&str; N], cells: &[[String; N]]) -> Vec<String> {
    let mut widths = header.map(|h| h.chars().count());
    for row in cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cols: [&str; N]| {
        let mut s = String::new();
        for (i, c) in cols.iter().enumerate() {
            if i + 1 == N {
                s += c;
            } else {
                s += &format!("{c}{}  ", " ".repeat(widths[i] - c.chars().count()));
            }
        }
        s.trim_end().to_string()
    };
    let rule = widths.map(|w| "─".repeat(w));
    let mut out = vec![line(*header), line(rule.each_ref().map(String::as_str))];
    out.extend(cells.iter().map(|c| line(c.each_ref().map(String::as_str))));
    out
}
