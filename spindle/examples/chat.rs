//! A broadcast chat server over TCP, built from coroutines and channels.
//!
//! ```text
//! cargo run --release --example chat            # listens on 127.0.0.1:7879
//! cargo run --release --example chat -- 127.0.0.1:9000
//! ```
//!
//! Try it with two or three terminals: each runs `nc 127.0.0.1 7879`,
//! answers the name prompt, and every line it types reaches the others.
//!
//! # Shape
//!
//! ```text
//!           ┌─ joins    (bounded 16)  ─┐
//! reader ───┼─ messages (bounded 256) ─┼──► hub ───► outbox (bounded 64) ───► writer
//!           └─ leaves   (bounded 64)  ─┘  (select!)
//!
//! one reader, one outbox and one writer per client; one hub
//! ```
//!
//! - Each client has two coroutines. Its *reader* asks for a name, joins,
//!   then turns every line the client sends into a message for the hub,
//!   and says it left at end of file. Its *writer* writes whatever arrives
//!   in the client's outbox.
//! - One *hub* coroutine owns the membership: no lock anywhere, since only
//!   the hub touches it. It waits with `select!` on the join, leave and
//!   message channels and broadcasts each message (or notice) to every
//!   member's outbox.
//!
//! # A slow client is dropped, not waited for
//!
//! Each client's outbox holds 64 lines. The hub offers each line with
//! `send_timeout`: it goes in at once while there is room, and a client
//! whose outbox is still full after `GRACE` (100 ms) is dropped: the hub
//! forgets it, shuts its socket down (which ends its writer's pending
//! write and its reader's read) and tells the others. So a client that
//! reads more slowly than the room talks, or not at all, holds up the
//! room once, for 100 ms, and is gone. Blocking on it for as long as it
//! takes would stall every client behind the slowest one; buffering
//! without bound would let one stalled client grow the server's memory
//! without limit.
//!
//! Why wait at all, rather than drop a client the moment its outbox is
//! full? A burst of lines can fill a healthy client's outbox before its
//! writer, just woken, has been scheduled (on a busy worker it runs only
//! when the hub parks). The grace gives it that turn; the writer then
//! sends everything queued in one write, so it keeps up with the hub
//! however short the lines.
//!
//! The other direction is bounded too: readers `send` to the hub's bounded
//! channels and block when the hub falls behind, which slows down the
//! clients that talk the most rather than growing a queue. Lines are read
//! at most 1 KiB at a time, so a client that never sends a newline cannot
//! grow a buffer either: a longer line arrives in pieces.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::time::Duration;

use spindle::channel::{Receiver, SendTimeoutError, Sender, bounded};
use spindle::net::{TcpListener, TcpStream};

/// Lines an outbox holds.
const OUTBOX: usize = 64;
/// How long the hub waits for room in a full outbox before it drops the
/// client as too slow.
const GRACE: Duration = Duration::from_millis(100);
/// The longest line read at once, in bytes; longer ones come in pieces.
const MAX_LINE: u64 = 1024;
/// The longest name kept, in characters.
const MAX_NAME: usize = 32;

/// A client's number, given by the accept loop.
type ClientId = u64;

/// A client that has chosen a name and wants to join.
struct Join {
    id: ClientId,
    name: String,
    outbox: Sender<Arc<str>>,
    stream: Arc<TcpStream>,
}

/// A line a client said.
struct Message {
    from: ClientId,
    text: String,
}

/// What the hub knows of a member.
struct Member {
    name: String,
    outbox: Sender<Arc<str>>,
    stream: Arc<TcpStream>,
}

/// The sending ends of the hub's three channels, one copy per client.
#[derive(Clone)]
struct Hub {
    joins: Sender<Join>,
    leaves: Sender<ClientId>,
    messages: Sender<Message>,
}

#[spindle::main]
fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7879".to_string());
    let listener = TcpListener::bind(&addr)?;
    eprintln!("chat: listening on {}", listener.local_addr()?);

    let (joins, joins_rx) = bounded(16);
    let (leaves, leaves_rx) = bounded(64);
    let (messages, messages_rx) = bounded(256);
    spindle::spawn(move || hub(joins_rx, leaves_rx, messages_rx));
    let hub = Hub {
        joins,
        leaves,
        messages,
    };

    for (id, conn) in (1..).zip(listener.incoming()) {
        match conn {
            Ok(conn) => {
                let hub = hub.clone();
                spindle::spawn(move || {
                    if let Err(e) = client(id, conn, &hub) {
                        eprintln!("chat: client {id}: {e}");
                    }
                });
            }
            Err(e) => eprintln!("chat: accept: {e}"),
        }
    }
    Ok(())
}

/// The hub: owns the membership and broadcasts. Ends when every client
/// and the accept loop are gone (all senders dropped).
fn hub(joins: Receiver<Join>, leaves: Receiver<ClientId>, messages: Receiver<Message>) {
    let mut members: HashMap<ClientId, Member> = HashMap::new();
    loop {
        spindle::select! {
            recv(joins) -> join => {
                let Ok(join) = join else { return };
                let others: Vec<&str> = members.values().map(|m| m.name.as_str()).collect();
                let welcome = format!(
                    "* welcome, {}; here: {}\n",
                    join.name,
                    if others.is_empty() { "nobody yet".to_string() } else { others.join(", ") }
                );
                broadcast(&mut members, None, format!("* {} joined\n", join.name));
                // A fresh outbox has room: this does not wait.
                let _ = join.outbox.try_send(welcome.into());
                members.insert(join.id, Member {
                    name: join.name,
                    outbox: join.outbox,
                    stream: join.stream,
                });
            }
            recv(leaves) -> id => {
                let Ok(id) = id else { return };
                // Unknown if the hub dropped it already (too slow).
                if let Some(m) = members.remove(&id) {
                    broadcast(&mut members, None, format!("* {} left\n", m.name));
                }
            }
            recv(messages) -> msg => {
                let Ok(msg) = msg else { return };
                if let Some(m) = members.get(&msg.from) {
                    let line = format!("{}: {}\n", m.name, msg.text);
                    broadcast(&mut members, Some(msg.from), line);
                }
            }
        }
    }
}

/// Offers `line` to every member but `from`, waiting at most [`GRACE`]
/// for room in each outbox; drops the members that cannot take it and
/// tells the others (which may drop more: the notices go round until
/// everyone left has taken them).
fn broadcast(members: &mut HashMap<ClientId, Member>, from: Option<ClientId>, line: String) {
    let mut pending: Vec<(Option<ClientId>, Arc<str>)> = vec![(from, line.into())];
    while let Some((from, line)) = pending.pop() {
        let mut failed = Vec::new();
        for (&id, m) in members.iter() {
            if Some(id) == from {
                continue;
            }
            match m.outbox.send_timeout(Arc::clone(&line), GRACE) {
                Ok(()) => {}
                Err(SendTimeoutError::Timeout(_)) => {
                    failed.push((id, "was too slow and was dropped"));
                }
                // Its writer has ended: the connection broke.
                Err(SendTimeoutError::Disconnected(_)) => failed.push((id, "left")),
            }
        }
        for (id, why) in failed {
            if let Some(m) = members.remove(&id) {
                // Ends its writer's write and its reader's read at once;
                // the reader's `leave` then finds nobody to remove.
                let _ = m.stream.shutdown(Shutdown::Both);
                pending.push((None, format!("* {} {why}\n", m.name).into()));
            }
        }
    }
}

/// One client's reader: asks for a name, joins, forwards lines, leaves.
fn client(id: ClientId, stream: TcpStream, hub: &Hub) -> io::Result<()> {
    let stream = Arc::new(stream);
    (&*stream).write_all(b"name? ")?;
    let mut lines = BufReader::new(&*stream);
    let Some(name) = read_line(&mut lines)? else {
        return Ok(()); // gone before choosing a name
    };
    let mut name: String = name.trim().chars().take(MAX_NAME).collect();
    if name.is_empty() {
        name = format!("guest{id}");
    }

    let (outbox, outbox_rx) = bounded(OUTBOX);
    {
        let stream = Arc::clone(&stream);
        spindle::spawn(move || writer(&stream, &outbox_rx));
    }
    let join = Join {
        id,
        name,
        outbox,
        stream: Arc::clone(&stream),
    };
    if hub.joins.send(join).is_err() {
        return Ok(()); // the hub is gone: the server is stopping
    }
    while let Some(text) = read_line(&mut lines)? {
        let text = text.trim_end().to_string();
        if !text.is_empty() && hub.messages.send(Message { from: id, text }).is_err() {
            break;
        }
    }
    let _ = hub.leaves.send(id);
    Ok(())
}

/// The next line (without its newline), at most [`MAX_LINE`] bytes of it;
/// `None` at end of file. Bytes that are not UTF-8 become U+FFFD. A reset
/// or a socket shut down by the hub counts as end of file.
fn read_line(lines: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut raw = Vec::new();
    match Read::take(&mut *lines, MAX_LINE).read_until(b'\n', &mut raw) {
        Ok(0) => Ok(None),
        Ok(_) => Ok(Some(String::from_utf8_lossy(&raw).into_owned())),
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Ok(None),
        Err(e) => Err(e),
    }
}

/// One client's writer: writes the lines of its outbox, all those queued
/// in one write, until the hub drops the client (or it leaves) or the
/// connection breaks; then shuts the socket down, which ends the reader's
/// read too.
fn writer(stream: &TcpStream, outbox: &Receiver<Arc<str>>) {
    let mut batch = Vec::new();
    while let Ok(line) = outbox.recv() {
        batch.clear();
        batch.extend_from_slice(line.as_bytes());
        for line in outbox.try_iter() {
            batch.extend_from_slice(line.as_bytes());
        }
        if (&*stream).write_all(&batch).is_err() {
            break;
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}
