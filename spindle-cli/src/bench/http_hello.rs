//! `http_hello`: an HTTP/1.1 keep-alive server answering `GET /` with the
//! 13-byte body `Hello, world!`; `wrk -t2 -c256 -d10s --latency` against it
//! gives `req_per_sec` and `p99_latency_us`.
//!
//! Rows ([`server`](super::server) describes both servers): spindle, a
//! coroutine per connection on `--workers` workers; thread, an OS thread
//! per connection restricted to `--workers` CPUs. WORKLOADS.md defines no
//! process row. `wrk` runs as a child process, unrestricted, sharing the
//! machine's cores with the server. One run, no median: wrk's ten seconds
//! are the repetition. `--serve PORT` runs only the server, until killed.
//!
//! The responder is a minimal hand-written one on httparse, as the other
//! systems' minimal responders are, and it handles requests as
//! `spindle/examples/http_hello.rs` does (keep-alive, pipelining, partial
//! heads, 400/404/405/431, `Connection: close`), without the example's
//! timeouts, connection cap and lingering close: a benchmark's load
//! generator is trusted.
//! Both rows run the same code, generic over the stream type.
//!
//! wrk checks no response body, so before the load a client of our own
//! sends two pipelined requests and checks both answers byte for byte
//! ([`check_responses`]); afterwards any non-2xx answer or connection
//! error (connect, read, write) that wrk counted fails the run (exit
//! status 3). Answers slower than wrk's 2 s timeout are only noted on
//! stderr: they are late, not wrong.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::server::{Handler, Server, serve_forever};
use super::{BenchArgs, BenchError, Record, System};

/// Connections wrk keeps open when `--n` is not given.
pub const DEFAULT_CONNS: u64 = 256;
/// wrk's threads.
pub const WRK_THREADS: u64 = 2;
/// Seconds wrk runs.
pub const SECS: u64 = 10;

/// The body of `GET /`.
pub const BODY: &[u8] = b"Hello, world!";

/// The largest request head accepted; a longer one gets 431.
const MAX_HEAD: usize = 8 * 1024;
/// The most header fields accepted; more get 431.
const MAX_HEADERS: usize = 32;

/// The `http_hello` responder.
#[derive(Copy, Clone, Debug, Default)]
pub struct Hello;

impl Handler for Hello {
    fn serve(&self, conn: impl Read + Write) -> io::Result<()> {
        serve_http(conn)
    }
}

/// Serves HTTP/1.1 requests on `conn` until the peer closes it or a
/// request asks (or forces) the connection to close.
///
/// Each read is followed by answering every complete request in the
/// buffer, all in one write: pipelined requests cost one system call per
/// batch, not per request. A head that is not complete yet stays in the
/// buffer and is parsed again, from its start, when more bytes arrive
/// (httparse keeps no state between calls; re-parsing a short head is
/// cheaper than keeping it).
pub fn serve_http(mut conn: impl Read + Write) -> io::Result<()> {
    let mut buf = [0u8; MAX_HEAD];
    let mut filled = 0;
    let mut out = Vec::with_capacity(1024);
    let mut date = DateCache::default();
    loop {
        match conn.read(&mut buf[filled..]) {
            Ok(0) => return Ok(()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        let (used, close) = answer(&buf[..filled], &mut out, date.now());
        if !close && used == 0 && filled == buf.len() {
            // A head longer than the buffer: it can never complete.
            respond(&mut out, Reply::error(431), date.now());
        }
        if !out.is_empty() {
            conn.write_all(&out)?;
            out.clear();
        }
        if close || filled == buf.len() && used == 0 {
            return Ok(());
        }
        buf.copy_within(used..filled, 0);
        filled -= used;
    }
}

/// Answers every complete request at the start of `input`, appending the
/// responses to `out`. Returns the bytes consumed and whether the
/// connection must close once `out` is written (the last request asked
/// for it, or could not be parsed: nothing after it can be trusted to
/// start a request).
pub fn answer(input: &[u8], out: &mut Vec<u8>, date: &str) -> (usize, bool) {
    let mut used = 0;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let reply = match req.parse(&input[used..]) {
            Ok(httparse::Status::Partial) => return (used, false),
            Ok(httparse::Status::Complete(len)) => {
                used += len;
                Reply::for_request(&req)
            }
            Err(httparse::Error::TooManyHeaders) => Reply::error(431),
            Err(_) => Reply::error(400),
        };
        respond(out, reply, date);
        if reply.close {
            return (used, true);
        }
    }
}

/// The response a request gets.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Whether the body is left out (a `HEAD` request).
    pub head_only: bool,
    /// Whether the connection closes after this response.
    pub close: bool,
}

impl Reply {
    /// An error answer to a request that could not be parsed: the
    /// connection closes after it.
    pub fn error(status: u16) -> Reply {
        Reply {
            status,
            head_only: false,
            close: true,
        }
    }

    /// The answer to a parsed request.
    pub fn for_request(req: &httparse::Request<'_, '_>) -> Reply {
        let http10 = req.version == Some(0);
        // HTTP/1.0 closes unless asked to keep alive; HTTP/1.1 keeps alive
        // unless asked to close.
        let mut close = http10;
        let mut host = false;
        let mut body = false;
        for h in req.headers.iter() {
            if h.name.eq_ignore_ascii_case("connection") {
                for token in h.value.split(|&b| b == b',') {
                    let token = token.trim_ascii();
                    if token.eq_ignore_ascii_case(b"close") {
                        close = true;
                    } else if http10 && token.eq_ignore_ascii_case(b"keep-alive") {
                        close = false;
                    }
                }
            } else if h.name.eq_ignore_ascii_case("content-length") {
                match std::str::from_utf8(h.value.trim_ascii()).map(str::parse::<u64>) {
                    Ok(Ok(0)) => {}
                    Ok(Ok(_)) => body = true,
                    _ => return Reply::error(400),
                }
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                body = true;
            } else if h.name.eq_ignore_ascii_case("host") {
                host = true;
            }
        }
        // RFC 9112 §3.2: an HTTP/1.1 request without Host gets 400.
        if !http10 && !host {
            return Reply::error(400);
        }
        let (status, head_only) = match (req.method, req.path) {
            (Some("GET"), Some("/")) => (200, false),
            (Some("HEAD"), Some("/")) => (200, true),
            (Some("GET"), _) => (404, false),
            (Some("HEAD"), _) => (404, true),
            _ => (405, false),
        };
        Reply {
            status,
            head_only,
            // No request body is ever read here: the bytes after a head
            // that announces one are not a request, so answer and close.
            close: close || body,
        }
    }
}

/// Appends the response `reply` describes to `out`.
pub fn respond(out: &mut Vec<u8>, reply: Reply, date: &str) {
    let (reason, body): (&str, &[u8]) = match reply.status {
        200 => ("OK", BODY),
        400 => ("Bad Request", b"bad request\n"),
        404 => ("Not Found", b"not found\n"),
        405 => ("Method Not Allowed", b"only GET and HEAD\n"),
        431 => (
            "Request Header Fields Too Large",
            b"request head too large\n",
        ),
        _ => ("Internal Server Error", b"\n"),
    };
    // Writing to a Vec cannot fail.
    let _ = write!(
        out,
        "HTTP/1.1 {} {reason}\r\nDate: {date}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{}{}\r\n",
        reply.status,
        body.len(),
        if reply.status == 405 {
            "Allow: GET, HEAD\r\n"
        } else {
            ""
        },
        if reply.close {
            "Connection: close\r\n"
        } else {
            ""
        },
    );
    if !reply.head_only {
        out.extend_from_slice(body);
    }
}

/// The `Date` header's value, formatted again only when the second
/// changes.
#[derive(Default)]
struct DateCache {
    secs: u64,
    text: String,
}

impl DateCache {
    /// The current time as an HTTP date.
    fn now(&mut self) -> &str {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if self.text.is_empty() || secs != self.secs {
            self.secs = secs;
            self.text = http_date(secs);
        }
        &self.text
    }
}

/// `secs` after the Unix epoch as an HTTP date (RFC 9110 §5.6.7's
/// IMF-fixdate), e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(secs: u64) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs / 86_400;
    let (hh, mm, ss) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    // Day 0 was a Thursday.
    let weekday = WEEKDAYS[(days % 7) as usize];
    // Howard Hinnant's days-to-civil: eras of 400 years starting on
    // 1 March, so that the leap day ends the year.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    let month = MONTHS[(month - 1) as usize];
    format!("{weekday}, {day:02} {month} {year} {hh:02}:{mm:02}:{ss:02} GMT")
}

/// Sends two pipelined `GET /` requests in one write and checks both
/// answers: status 200, `Content-Length: 13`, body `Hello, world!`.
pub fn check_responses(addr: SocketAddr) -> Result<(), BenchError> {
    let mut conn = TcpStream::connect(addr)?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let get = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    conn.write_all(&[&get[..], &get[..]].concat())?;
    let mut got = Vec::new();
    let mut answers = 0;
    let mut buf = [0u8; 1024];
    while answers < 2 {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Err(BenchError::Check(format!(
                "the server closed after {answers} of 2 pipelined answers: {:?}",
                String::from_utf8_lossy(&got)
            )));
        }
        got.extend_from_slice(&buf[..n]);
        while let Some(len) = one_response(&got)? {
            got.drain(..len);
            answers += 1;
        }
    }
    Ok(())
}

/// Checks the complete response at the start of `got`, if there is one,
/// and returns its length.
fn one_response(got: &[u8]) -> Result<Option<usize>, BenchError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let bad = |what: &str| {
        BenchError::Check(format!(
            "answer to GET /: {what}: {:?}",
            String::from_utf8_lossy(got)
        ))
    };
    let head = match resp.parse(got) {
        Ok(httparse::Status::Complete(head)) => head,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(bad(&format!("not HTTP ({e})"))),
    };
    if resp.code != Some(200) {
        return Err(bad("status is not 200"));
    }
    let length = resp
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| {
            std::str::from_utf8(h.value)
                .ok()?
                .trim()
                .parse::<usize>()
                .ok()
        });
    if length != Some(BODY.len()) {
        return Err(bad("Content-Length is not 13"));
    }
    if got.len() < head + BODY.len() {
        return Ok(None);
    }
    if &got[head..head + BODY.len()] != BODY {
        return Err(bad("the body is not \"Hello, world!\""));
    }
    Ok(Some(head + BODY.len()))
}

/// `wrk` on the `PATH`; a usage error (exit status 2) saying how to
/// install it if there is none.
pub fn wrk_binary() -> Result<PathBuf, BenchError> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("wrk"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            BenchError::Usage(
                "http_hello needs wrk, which is not installed (not on the PATH); \
                 install it with `apt-get install wrk`"
                    .into(),
            )
        })
}

/// What wrk measured.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Wrk {
    /// Requests answered per second.
    pub req_per_sec: f64,
    /// 99th-percentile latency, µs.
    pub p99_latency_us: f64,
    /// Requests answered in the run.
    pub requests: u64,
}

/// Reads wrk's report (run with `--latency`); a non-2xx answer or a
/// connection error it counted is a failed check.
pub fn parse_wrk(report: &str) -> Result<Wrk, BenchError> {
    let missing = |what: &str| {
        BenchError::Io(io::Error::other(format!(
            "no {what} in wrk's report: {report:?}"
        )))
    };
    let mut req_per_sec = None;
    let mut p99 = None;
    let mut requests = None;
    for line in report.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        if let Some(rate) = line.strip_prefix("Requests/sec:") {
            req_per_sec = rate.trim().parse::<f64>().ok();
        } else if line.starts_with("99%") {
            p99 = words.nth(1).and_then(micros);
        } else if line.contains(" requests in ") {
            requests = words.next().and_then(|w| w.parse::<u64>().ok());
        } else if line.starts_with("Non-2xx or 3xx responses:") {
            return Err(BenchError::Check(format!("wrk: {line}")));
        } else if let Some(errors) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0". A connection that
            // failed or broke is a failed check; a timeout is only an
            // answer slower than wrk's 2 s, which comes all the same (wrk
            // leaves it out of its latencies): a note.
            for error in errors.split(',') {
                let mut words = error.split_whitespace();
                let (Some(kind), Some(count)) = (words.next(), words.next()) else {
                    continue;
                };
                match (kind, count.parse::<u64>()) {
                    (_, Ok(0)) => {}
                    ("timeout", _) => {
                        eprintln!("note: wrk counted {count} answers slower than 2 s");
                    }
                    _ => return Err(BenchError::Check(format!("wrk: {line}"))),
                }
            }
        }
    }
    Ok(Wrk {
        req_per_sec: req_per_sec.ok_or_else(|| missing("Requests/sec line"))?,
        p99_latency_us: p99.ok_or_else(|| missing("99% latency line (run with --latency)"))?,
        requests: requests.ok_or_else(|| missing("\"requests in\" line"))?,
    })
}

/// A wrk duration (`850.00us`, `1.23ms`, `2.00s`, `1.50m`) in µs.
fn micros(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let scale = match unit {
        "us" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "m" => 60e6,
        "h" => 3600e6,
        _ => return None,
    };
    Some(number.parse::<f64>().ok()? * scale)
}

/// Runs `wrk -t2 -c<conns> -d<secs>s --latency` against `server` and
/// returns what it measured.
pub fn run_wrk(bin: &Path, server: &Server, conns: u64, secs: u64) -> Result<Wrk, BenchError> {
    let url = format!("http://{}/", server.addr());
    let out = Command::new(bin)
        .arg(format!("-t{WRK_THREADS}"))
        .arg(format!("-c{conns}"))
        .arg(format!("-d{secs}s"))
        .arg("--latency")
        .arg(&url)
        .output()?;
    let report = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(BenchError::Io(io::Error::other(format!(
            "wrk exited with {}: {}{}",
            out.status,
            report.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))));
    }
    // wrk's report is progress for a person: stderr.
    eprint!("{report}");
    parse_wrk(&report)
}

/// `spindle bench http_hello`.
pub fn run(args: &BenchArgs, mut emit: impl FnMut(Record)) -> Result<(), BenchError> {
    if args.system == System::Process {
        return Err(super::no_row(args));
    }
    if let Some(port) = args.serve {
        if args.n.is_some() {
            return Err(BenchError::Usage(
                "--n sets wrk's connections; with --serve there is no load".into(),
            ));
        }
        return serve_forever("http_hello", args.system, args.workers, port, Hello);
    }
    let conns = args.n.unwrap_or(DEFAULT_CONNS);
    if conns < WRK_THREADS {
        return Err(BenchError::Usage(format!(
            "wrk needs at least {WRK_THREADS} connections (one per thread)"
        )));
    }
    // Before the server starts: a missing wrk is a usage error.
    let bin = wrk_binary()?;
    let server = Server::start(args.system, args.workers, 0, Hello)?;
    let load = check_responses(server.addr()).and_then(|()| run_wrk(&bin, &server, conns, SECS));
    let workers = server.workers();
    // Stopped whatever the load's outcome; the load's error comes first.
    let stopped = server.stop();
    let load = load?;
    stopped?;
    super::check("requests answered", u64::from(load.requests > 0), 1)?;
    for (metric, value) in [
        ("req_per_sec", load.req_per_sec),
        ("p99_latency_us", load.p99_latency_us),
    ] {
        emit(Record {
            workload: "http_hello",
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
    use super::*;

    const DATE: &str = "Thu, 01 Jan 1970 00:00:00 GMT";

    fn answered(input: &[u8]) -> (usize, bool, String) {
        let mut out = Vec::new();
        let (used, close) = answer(input, &mut out, DATE);
        (used, close, String::from_utf8(out).unwrap())
    }

    #[test]
    fn http_dates() {
        assert_eq!(http_date(0), DATE);
        // RFC 9110's example.
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        // A leap day.
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(http_date(1_767_225_599), "Wed, 31 Dec 2025 23:59:59 GMT");
    }

    #[test]
    fn pipelined_requests_are_answered_in_order_in_one_batch() {
        let get = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
        let other = "GET /x HTTP/1.1\r\nHost: h\r\n\r\n";
        let partial = "GET / HTTP/1.1\r\nHo";
        let input = format!("{get}{other}{get}{partial}");
        let (used, close, out) = answered(input.as_bytes());
        assert_eq!(used, input.len() - partial.len());
        assert!(!close);
        let statuses: Vec<_> = out.split("HTTP/1.1 ").skip(1).map(|r| &r[..3]).collect();
        assert_eq!(statuses, ["200", "404", "200"]);
        assert_eq!(out.matches("\r\n\r\nHello, world!").count(), 2);
        assert!(out.contains(&format!("Date: {DATE}\r\n")));
        assert!(!out.contains("Connection: close"));
    }

    #[test]
    fn a_head_split_across_reads_is_answered_once_complete() {
        let req = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
        for cut in 1..req.len() {
            assert_eq!(answered(&req[..cut]), (0, false, String::new()), "{cut}");
        }
        let (used, close, out) = answered(req);
        assert_eq!((used, close), (req.len(), false));
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n") && out.ends_with("Hello, world!"));
    }

    #[test]
    fn malformed_and_unsupported_requests() {
        // Malformed: 400, and nothing after it is read.
        let (_, close, out) =
            answered(b"GET / HTTP/1.1\r\nHost: h\r\n\r\nBLAH\x01 / HTTP/1.1\r\n\r\n");
        assert!(close);
        assert!(out.contains("HTTP/1.1 200 OK") && out.contains("HTTP/1.1 400 Bad Request"));
        assert!(
            out.ends_with("Connection: close\r\n\r\nbad request\n"),
            "{out}"
        );
        // HTTP/1.1 without Host.
        assert!(
            answered(b"GET / HTTP/1.1\r\n\r\n")
                .2
                .starts_with("HTTP/1.1 400")
        );
        // Another method: 405 with Allow, and the connection stays open.
        let (_, close, out) = answered(b"DELETE / HTTP/1.1\r\nHost: h\r\n\r\n");
        assert!(
            !close && out.contains("405 Method Not Allowed") && out.contains("Allow: GET, HEAD")
        );
        // HEAD: the headers of GET without the body.
        let (_, _, out) = answered(b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n");
        assert!(out.contains("Content-Length: 13\r\n") && out.ends_with("\r\n\r\n"));
        // Too many headers: 431.
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("X-{i}: y\r\n"))
            .collect();
        let (_, close, out) = answered(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes());
        assert!(close && out.starts_with("HTTP/1.1 431"));
        // A body is never read: answered, then the connection closes.
        let (_, close, out) =
            answered(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc");
        assert!(close && out.starts_with("HTTP/1.1 405"));
        assert!(
            answered(b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: x\r\n\r\n")
                .2
                .contains(" 400 ")
        );
    }

    #[test]
    fn connection_close_and_http10() {
        let (_, close, out) =
            answered(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n");
        assert!(close && out.contains("Connection: close\r\n"));
        assert_eq!(out.matches("HTTP/1.1 200").count(), 1);
        assert!(
            answered(b"GET / HTTP/1.0\r\n\r\n").1,
            "1.0 closes by default"
        );
        assert!(!answered(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").1);
    }

    #[test]
    fn wrk_reports() {
        let report = "Running 10s test @ http://127.0.0.1:8080/
  2 threads and 256 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.21ms    1.02ms  31.20ms   88.00%
    Req/Sec    40.12k     2.10k   45.00k    70.00%
  Latency Distribution
     50%    3.01ms
     75%    3.50ms
     90%    4.20ms
     99%  850.00us
  798765 requests in 10.00s, 95.21MB read
Requests/sec:  79876.50
Transfer/sec:      9.52MB
";
        let wrk = parse_wrk(report).unwrap();
        assert_eq!(
            wrk,
            Wrk {
                req_per_sec: 79876.5,
                p99_latency_us: 850.0,
                requests: 798_765
            }
        );
        assert_eq!(micros("1.50ms"), Some(1500.0));
        assert_eq!(micros("2.00s"), Some(2e6));
        let errors = report.replace(
            "Requests/sec",
            "  Socket errors: connect 0, read 3, write 0, timeout 0\nRequests/sec",
        );
        assert!(matches!(parse_wrk(&errors), Err(BenchError::Check(_))));
        let slow = report.replace(
            "Requests/sec",
            "  Socket errors: connect 0, read 0, write 0, timeout 7\nRequests/sec",
        );
        assert_eq!(parse_wrk(&slow).unwrap(), wrk);
        let non2xx = report.replace(
            "Requests/sec",
            "  Non-2xx or 3xx responses: 12\nRequests/sec",
        );
        assert!(matches!(parse_wrk(&non2xx), Err(BenchError::Check(_))));
        assert!(parse_wrk("").is_err());
    }

    /// wrk, briefly, where it is installed: no errors, and its report
    /// parses.
    #[test]
    fn wrk_runs_against_both_servers() {
        let Ok(bin) = wrk_binary() else {
            eprintln!("skipped: wrk is not installed");
            return;
        };
        for system in [System::Spindle, System::Thread] {
            let server = Server::start(system, 1, 0, Hello).unwrap();
            let load = run_wrk(&bin, &server, 8, 1);
            server.stop().unwrap();
            let load = load.unwrap();
            assert!(
                load.requests > 0 && load.req_per_sec > 0.0,
                "{system:?}: {load:?}"
            );
        }
    }

    /// Both servers pass the pipelined check and stop cleanly.
    #[test]
    fn both_servers_answer() {
        for system in [System::Spindle, System::Thread] {
            for workers in [1, 2] {
                let server = Server::start(system, workers, 0, Hello).unwrap();
                for _ in 0..10 {
                    check_responses(server.addr()).unwrap();
                }
                server.stop().unwrap();
            }
        }
    }
}
