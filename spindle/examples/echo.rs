//! A TCP echo server: one coroutine per connection, written as plain
//! blocking code.
//!
//! ```text
//! cargo run --release --example echo            # listens on 127.0.0.1:7878
//! cargo run --release --example echo -- 127.0.0.1:9000
//! ```
//!
//! Try it from another terminal: every line you type comes back.
//!
//! ```text
//! nc 127.0.0.1 7878
//! ```
//!
//! `accept`, `read` and `write` look like `std::net`'s, but each parks the
//! calling coroutine until the socket is ready, and the worker runs other
//! coroutines meanwhile: thousands of connections cost thousands of small
//! stacks, not thousands of OS threads. `incoming()` keeps serving when the
//! process runs out of descriptors: it backs off until connections close
//! (raise the limit with `ulimit -n`).

use std::io::{self, Read, Write};

use spindle::net::{TcpListener, TcpStream};

#[spindle::main]
fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7878".to_string());
    let listener = TcpListener::bind(&addr)?;
    eprintln!("echo: listening on {}", listener.local_addr()?);
    for conn in listener.incoming() {
        match conn {
            Ok(conn) => {
                // Detached: the coroutine ends with its connection.
                spindle::spawn(move || {
                    let peer = conn.peer_addr();
                    if let Err(e) = echo(conn) {
                        eprintln!("echo: {peer:?}: {e}");
                    }
                });
            }
            // A connection that failed before we took it (reset while in
            // the backlog, say) is the client's problem, not the server's.
            Err(e) => eprintln!("echo: accept: {e}"),
        }
    }
    Ok(())
}

/// Writes back every byte read from `conn` until the peer closes it.
fn echo(mut conn: TcpStream) -> io::Result<()> {
    let mut buf = [0u8; 4096];
    loop {
        let n = conn.read(&mut buf)?; // parks until bytes arrive
        if n == 0 {
            return Ok(()); // the peer closed its side
        }
        conn.write_all(&buf[..n])?; // parks while the send buffer is full
    }
}
