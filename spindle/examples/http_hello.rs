//! An HTTP/1.1 keep-alive server answering `GET /` with `Hello, world!`:
//! one coroutine per connection, plain blocking reads and writes, and
//! httparse for the parsing.
//!
//! ```text
//! cargo run --release --example http_hello                        # 127.0.0.1:8080, at most 10,000 connections
//! cargo run --release --example http_hello -- 127.0.0.1:9000 500  # address, connection cap
//! ```
//!
//! Try it from another terminal:
//!
//! ```text
//! curl -v http://127.0.0.1:8080/
//! printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n' | nc 127.0.0.1 8080
//! wrk -t2 -c256 -d10s http://127.0.0.1:8080/
//! ```
//!
//! # What each connection's coroutine does
//!
//! It reads into an 8 KiB buffer, then answers every complete request in
//! the buffer, in order, with one write: pipelined requests cost one
//! system call per batch, not one per request. A request head that is not
//! complete yet (a partial read) stays in the buffer and is parsed again,
//! from its start, when more bytes arrive: httparse keeps no state between
//! calls, and re-parsing a short head is cheaper than keeping it.
//!
//! - `GET /` and `HEAD /` get 200; another path 404; another method 405.
//!   The connection stays open (HTTP/1.1 keep-alive) unless the client
//!   sends `Connection: close`, or speaks HTTP/1.0 without
//!   `Connection: keep-alive`; then the answer carries
//!   `Connection: close` and the server closes after it.
//! - A malformed request gets 400, a head over 8 KiB or with more than 32
//!   fields 431; then the connection closes, since nothing after a bad
//!   head can be trusted to start a request. This server reads no request
//!   bodies, so a request that announces one is answered and the
//!   connection closed, for the same reason.
//! - Closing is "lingering": after its last answer the server shuts down
//!   its sending side and reads (and discards) what the client still
//!   sends, for at most a second, before closing. Closing a socket with
//!   unread bytes makes the kernel send a reset, which can destroy the
//!   answer before the client has read it.
//!
//! # Timeouts
//!
//! Two are `set_read_timeout` on the stream, which bounds each `read`
//! (the coroutine parks until bytes arrive or the timeout passes):
//!
//! - idle: a kept-alive connection with no request in progress is closed
//!   after 30 s without a byte;
//! - header: a request head must be complete 5 s after its first byte
//!   arrived. Before each read the timeout is set to what is left of
//!   those 5 s, so a client trickling one byte at a time (slowloris)
//!   cannot stretch it; when it passes, the client gets 408 and the
//!   connection closes.
//!
//! A third, `set_write_timeout` of 30 s, drops a client that stops
//! reading its answers (its pipelined requests would otherwise hold the
//! coroutine in `write` for good). A timeout is a setting of the socket:
//! the read timeout is changed only when the phase changes, except while
//! a head is arriving, when what is left of its 5 s shrinks.
//!
//! # The connection cap
//!
//! A `Semaphore` with one permit per connection (10,000 by default, the
//! second argument) bounds the coroutines serving at once. A connection
//! accepted over the cap is answered `503 Service Unavailable` with
//! `Retry-After: 1` and closed, rather than made to wait: a waiting
//! connection holds a descriptor and shows its client nothing but
//! silence, while a 503 tells it at once to come back later, and the
//! server's memory stays bounded. (Waiting instead would be
//! `slots.acquire_owned()` in place of `try_acquire_owned()`; the accept
//! loop would then stop accepting while the cap is reached, and the
//! kernel's listen backlog would queue new connections.) Descriptors are
//! a cap of their own: when the process runs out, `incoming()` backs off
//! until some close; raise the limit with `ulimit -n`.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use spindle::net::{TcpListener, TcpStream};
use spindle::sync::Semaphore;

/// Connections served at once unless the second argument says otherwise.
const MAX_CONNS: usize = 10_000;
/// How long a kept-alive connection may sit without a request.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a request head may take from its first byte to its last.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a write may wait for the client to read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a closing connection waits for its client to finish sending.
const LINGER: Duration = Duration::from_secs(1);
/// The largest request head accepted.
const MAX_HEAD: usize = 8 * 1024;
/// The most header fields accepted.
const MAX_HEADERS: usize = 32;
/// The body of `GET /`.
const BODY: &[u8] = b"Hello, world!";

#[spindle::main]
fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8080".to_string());
    let max_conns = match args.next() {
        Some(n) => n.parse().map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("connection cap {n:?}: {e}"),
            )
        })?,
        None => MAX_CONNS,
    };
    let listener = TcpListener::bind(&addr)?;
    eprintln!(
        "http_hello: listening on http://{}/ (at most {max_conns} connections)",
        listener.local_addr()?
    );
    let slots = Arc::new(Semaphore::new(max_conns));
    for conn in listener.incoming() {
        let conn = match conn {
            Ok(conn) => conn,
            // A connection that failed before we took it: the client's
            // problem, not the server's.
            Err(e) => {
                eprintln!("http_hello: accept: {e}");
                continue;
            }
        };
        // Answers are small and the next request waits for them: send
        // each at once instead of letting Nagle's algorithm hold it back.
        let _ = conn.set_nodelay(true);
        // Each coroutine is detached: it ends with its connection.
        match Arc::clone(&slots).try_acquire_owned() {
            Some(slot) => {
                spindle::spawn(move || {
                    let _slot = slot; // returned when the connection ends
                    report(Connection::new(conn).serve());
                });
            }
            None => {
                spindle::spawn(move || report(refuse(conn)));
            }
        }
    }
    Ok(())
}

/// Logs a connection's failure, unless it is the client going away.
fn report(result: io::Result<()>) {
    match result {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
            ) => {}
        Err(e) => eprintln!("http_hello: {e}"),
    }
}

/// Answers a connection over the cap with 503 and closes it.
fn refuse(mut conn: TcpStream) -> io::Result<()> {
    conn.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let mut out = Vec::new();
    respond(&mut out, Reply::error(503), DateCache::default().now());
    conn.write_all(&out)?;
    linger(conn)
}

/// Closes `conn` gracefully: no more sending, then what the client still
/// sends is read and dropped until it closes too, or for at most
/// [`LINGER`], so that the kernel does not reset the connection (and
/// destroy our last answer) over unread bytes.
fn linger(mut conn: TcpStream) -> io::Result<()> {
    conn.shutdown(Shutdown::Write)?;
    let deadline = Instant::now() + LINGER;
    let mut sink = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        conn.set_read_timeout(Some(left))?;
        match conn.read(&mut sink) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // Timed out, or reset: either way, done.
            Err(_) => return Ok(()),
        }
    }
}

/// One connection's state.
struct Connection {
    stream: TcpStream,
    /// Bytes read and not yet answered: the start of a request head.
    buf: Box<[u8; MAX_HEAD]>,
    filled: usize,
    /// Answers not yet written.
    out: Vec<u8>,
    date: DateCache,
    /// The read timeout last set on `stream`.
    timeout: Option<Duration>,
}

impl Connection {
    fn new(stream: TcpStream) -> Connection {
        Connection {
            stream,
            buf: Box::new([0; MAX_HEAD]),
            filled: 0,
            out: Vec::with_capacity(1024),
            date: DateCache::default(),
            timeout: None,
        }
    }

    /// Serves requests until the client closes, a timeout passes, or a
    /// request asks (or forces) the connection to close.
    fn serve(mut self) -> io::Result<()> {
        self.stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
        // When the first byte of the head now in `buf` arrived; `None`
        // exactly when `buf` is empty (waiting for a new request).
        let mut head_started: Option<Instant> = None;
        loop {
            // Answer every complete request in the buffer.
            let (used, mut close) =
                answer(&self.buf[..self.filled], &mut self.out, self.date.now());
            if used > 0 {
                self.buf.copy_within(used..self.filled, 0);
                self.filled -= used;
                // What is left is the start of the next head, just seen.
                head_started = (self.filled > 0).then(Instant::now);
            }
            if !close && self.filled == MAX_HEAD {
                // A head longer than the buffer can never complete.
                respond(&mut self.out, Reply::error(431), self.date.now());
                close = true;
            }
            if !self.out.is_empty() {
                self.stream.write_all(&self.out)?;
                self.out.clear();
            }
            if close {
                return linger(self.stream);
            }

            // Wait for more bytes, as long as the phase we are in allows.
            let timeout = match head_started {
                None => IDLE_TIMEOUT,
                Some(started) => match HEADER_TIMEOUT.checked_sub(started.elapsed()) {
                    Some(left) if !left.is_zero() => left,
                    _ => return self.head_timed_out(),
                },
            };
            if self.timeout != Some(timeout) {
                self.stream.set_read_timeout(Some(timeout))?;
                self.timeout = Some(timeout);
            }
            match self.stream.read(&mut self.buf[self.filled..]) {
                Ok(0) => return Ok(()), // the client closed
                Ok(n) => {
                    if self.filled == 0 {
                        head_started = Some(Instant::now());
                    }
                    self.filled += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // spindle's sockets report a read timeout as TimedOut.
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    return match head_started {
                        // Idle too long: closing needs no answer.
                        None => Ok(()),
                        Some(_) => self.head_timed_out(),
                    };
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// A head did not complete in time: 408, then close.
    fn head_timed_out(mut self) -> io::Result<()> {
        respond(&mut self.out, Reply::error(408), self.date.now());
        self.stream.write_all(&self.out)?;
        linger(self.stream)
    }
}

/// Answers every complete request at the start of `input`, appending the
/// responses to `out`. Returns the bytes consumed and whether the
/// connection must close once `out` is written.
fn answer(input: &[u8], out: &mut Vec<u8>, date: &str) -> (usize, bool) {
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

/// The answer a request gets.
#[derive(Copy, Clone)]
struct Reply {
    status: u16,
    /// Whether the body is left out (a `HEAD` request).
    head_only: bool,
    /// Whether the connection closes after this answer.
    close: bool,
}

impl Reply {
    /// An answer after which the connection closes.
    fn error(status: u16) -> Reply {
        Reply {
            status,
            head_only: false,
            close: true,
        }
    }

    /// The answer to a parsed request.
    fn for_request(req: &httparse::Request<'_, '_>) -> Reply {
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
            // Bodies are never read: the bytes after a head announcing one
            // are not a request, so answer and close.
            close: close || body,
        }
    }
}

/// Appends the answer `reply` describes to `out`.
fn respond(out: &mut Vec<u8>, reply: Reply, date: &str) {
    let (reason, body): (&str, &[u8]) = match reply.status {
        200 => ("OK", BODY),
        400 => ("Bad Request", b"bad request\n"),
        404 => ("Not Found", b"not found\n"),
        405 => ("Method Not Allowed", b"only GET and HEAD\n"),
        408 => ("Request Timeout", b"request head too slow\n"),
        431 => (
            "Request Header Fields Too Large",
            b"request head too large\n",
        ),
        503 => ("Service Unavailable", b"too many connections, retry\n"),
        _ => ("Internal Server Error", b"\n"),
    };
    let extra = match reply.status {
        405 => "Allow: GET, HEAD\r\n",
        503 => "Retry-After: 1\r\n",
        _ => "",
    };
    let close = if reply.close {
        "Connection: close\r\n"
    } else {
        ""
    };
    // Writing to a Vec cannot fail.
    let _ = write!(
        out,
        "HTTP/1.1 {} {reason}\r\nDate: {date}\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\n{extra}{close}\r\n",
        reply.status,
        body.len(),
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

/// `secs` after the Unix epoch as an HTTP date (RFC 9110 §5.6.7), e.g.
/// `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(secs: u64) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs / 86_400;
    let (hh, mm, ss) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    // Day 0 was a Thursday.
    let weekday = WEEKDAYS[(days % 7) as usize];
    // Howard Hinnant's days-to-civil: 400-year eras starting on 1 March,
    // so that the leap day ends the year.
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
