//! `spindle::net`: TCP, UDP and Unix-domain sockets, each scenario run from
//! coroutines (runtimes with 1, 2 and 4 workers) and from plain OS threads
//! (see `common::each_mode`).
//!
//! Scenarios are re-expressed (not copied) from:
//! - tokio `tokio/tests/tcp_echo.rs`, `tcp_split.rs`, `tcp_into_std.rs`,
//!   `udp.rs` and `uds_stream.rs`;
//! - Rust `library/std/src/net/tcp/tests.rs` (EOF, shutdown, clones,
//!   timeouts, peek, write to a closed peer) and `udp/tests.rs`;
//! - Go `src/net/server_test.go` (stream and datagram servers over TCP,
//!   UDP and Unix sockets), `src/net/timeout_test.go` (read and write
//!   deadlines), `src/net/tcpsock_test.go` (many concurrent clients) and
//!   `src/net/net_test.go` (close and reset).
//!
//! The child-process scenarios (running out of descriptors, `SIGPIPE`) are
//! in `net_child.rs`.
//!
//! Timing is never asserted on, except that a timed-out call returned only
//! after its timeout. Sockets are on the loopback interface (127.0.0.1) or
//! in the temporary directory.

mod common;

use std::collections::BTreeSet;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use common::{Mode, each_mode};
use spindle::WaitReason;
use spindle::net::{TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixListener, UnixStream};
use spindle::runtime::CoroutineState;

/// A hang fails the test instead of stalling CI.
const LIMIT: Duration = Duration::from_secs(60);

/// A timeout short enough to keep the suite fast.
const SHORT: Duration = Duration::from_millis(30);

/// A fresh path for a Unix socket in the temporary directory.
fn sock_path(tag: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let p = std::env::temp_dir().join(format!(
        "spindle-net-{}-{tag}-{}.sock",
        std::process::id(),
        NEXT.fetch_add(1, SeqCst)
    ));
    let _ = std::fs::remove_file(&p);
    p
}

/// Deterministic bytes, different for each `seed`.
fn payload(seed: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + seed * 7 + 1) as u8).collect()
}

/// Echoes what it reads until the end of the stream; returns the bytes
/// echoed.
fn echo(mut s: impl Read + Write) -> io::Result<usize> {
    let mut buf = [0u8; 4096];
    let mut total = 0;
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        s.write_all(&buf[..n])?;
        total += n;
    }
}

/// Lets other units run while polling for a condition.
fn pause(mode: Mode) {
    if mode.is_coroutines() {
        spindle::yield_now();
    } else {
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// Whether a descriptor is in blocking mode.
fn is_blocking(fd: &impl AsRawFd) -> bool {
    // SAFETY: F_GETFL on a descriptor we hold open reads its flags.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    assert!(flags >= 0, "fcntl: {}", io::Error::last_os_error());
    flags & libc::O_NONBLOCK == 0
}

/// Raises the soft descriptor limit to the hard one, for the tests that
/// hold thousands of sockets; returns the limit.
fn raise_nofile_limit() -> u64 {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `rl` is a valid, writable rlimit.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) }, 0);
    rl.rlim_cur = rl.rlim_max;
    // SAFETY: `rl` is a valid rlimit; raising the soft limit up to the
    // hard one is always allowed.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) };
    rl.rlim_cur
}

/// A connected pair of TCP streams: (client, server).
fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, peer) = listener.accept().unwrap();
    assert_eq!(peer, client.local_addr().unwrap());
    (client, server)
}

// tokio tokio/tests/tcp_echo.rs `echo_server`, Go src/net/server_test.go
// TestStreamConnServer: a client streams 1 MiB through an echo server
// while a clone of its socket reads the echo back, so neither side's
// buffers fill up; the bytes come back in order, then the end of stream.
#[test]
fn tcp_echo_full_duplex() {
    each_mode(LIMIT, |mode| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = mode.spawn(move || {
            let (conn, _) = listener.accept().unwrap();
            echo(conn).unwrap()
        });
        let client = TcpStream::connect(addr).unwrap();
        let data = payload(1, 1 << 20);
        let writer = {
            let mut client = client.try_clone().unwrap();
            let data = data.clone();
            mode.spawn(move || {
                for chunk in data.chunks(10_000) {
                    client.write_all(chunk).unwrap();
                }
                client.shutdown(Shutdown::Write).unwrap();
            })
        };
        let mut back = Vec::new();
        (&client).read_to_end(&mut back).unwrap();
        writer.join().unwrap();
        assert_eq!(server.join().unwrap(), data.len());
        assert!(back == data, "the echo differs from what was sent");
    });
}

// A burst of clients connecting before the server accepts any: each
// handshake completes in the kernel's accept queue (1,024 deep, where std's
// listener asks for 128: with a full queue the kernel drops the handshake
// and the client retries only after a second). Needs net.core.somaxconn
// of at least 300 (4,096 by default since Linux 5.4).
#[test]
fn tcp_listener_queues_a_burst_of_connections() {
    let limit = raise_nofile_limit();
    let n = 300.min((limit as usize).saturating_sub(100) / 2);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let clients: Vec<_> = (0..n)
        .map(|i| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500))
                .unwrap_or_else(|e| panic!("client {i} of {n} was not queued: {e}"))
        })
        .collect();
    for _ in 0..n {
        listener.accept().unwrap();
    }
    drop(clients);
}

// Go src/net/tcpsock_test.go TestTCPConcurrentAccept (many dials against
// one accept loop), tokio tokio/tests/tcp_echo.rs: 1,000 clients (16 as OS
// threads) connect at once, each has its own echo coroutine; every client
// gets its own bytes back, and the server echoed exactly their sum.
#[test]
fn tcp_many_concurrent_echo_clients() {
    let limit = raise_nofile_limit();
    each_mode(LIMIT, move |mode| {
        let n = mode
            .scale(1000)
            .min((limit as usize).saturating_sub(200) / 2);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = mode.spawn(move || {
            let handlers: Vec<_> = listener
                .incoming()
                .take(n)
                .map(|conn| {
                    let conn = conn.unwrap();
                    mode.spawn(move || echo(conn).unwrap())
                })
                .collect();
            handlers
                .into_iter()
                .map(|h| h.join().unwrap())
                .sum::<usize>()
        });
        let clients: Vec<_> = (0..n)
            .map(|i| {
                mode.spawn(move || {
                    let mut c = TcpStream::connect(addr).unwrap();
                    let msg = payload(i, 100);
                    c.write_all(&msg).unwrap();
                    let mut back = vec![0; msg.len()];
                    c.read_exact(&mut back).unwrap();
                    assert_eq!(back, msg, "client {i}");
                    c.shutdown(Shutdown::Write).unwrap();
                    assert_eq!(c.read(&mut [0; 8]).unwrap(), 0, "client {i}: EOF");
                    1usize
                })
            })
            .collect();
        let done: usize = clients.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(done, n);
        assert_eq!(server.join().unwrap(), n * 100);
    });
}

// Go src/net/server_test.go TestStreamConnServer (unix), tokio
// tokio/tests/uds_stream.rs `accept_read_write`: the same echo over a Unix
// socket bound to a path, and over a `pair()`.
#[test]
fn unix_stream_echo() {
    each_mode(LIMIT, |mode| {
        let path = sock_path("echo");
        let listener = UnixListener::bind(&path).unwrap();
        assert_eq!(
            listener.local_addr().unwrap().as_pathname(),
            Some(path.as_path())
        );
        let n = mode.scale(20);
        let server = mode.spawn(move || {
            let handlers: Vec<_> = listener
                .incoming()
                .take(n)
                .map(|c| {
                    let c = c.unwrap();
                    mode.spawn(move || echo(c).unwrap())
                })
                .collect();
            handlers
                .into_iter()
                .map(|h| h.join().unwrap())
                .sum::<usize>()
        });
        let clients: Vec<_> = (0..n)
            .map(|i| {
                let path = path.clone();
                mode.spawn(move || {
                    let mut c = UnixStream::connect(&path).unwrap();
                    assert_eq!(c.peer_addr().unwrap().as_pathname(), Some(path.as_path()));
                    let msg = payload(i, 5000);
                    c.write_all(&msg).unwrap();
                    c.shutdown(Shutdown::Write).unwrap();
                    let mut back = Vec::new();
                    c.read_to_end(&mut back).unwrap();
                    assert_eq!(back, msg, "client {i}");
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        assert_eq!(server.join().unwrap(), n * 5000);
        std::fs::remove_file(&path).unwrap();

        let (a, b) = UnixStream::pair().unwrap();
        let server = mode.spawn(move || echo(b).unwrap());
        let msg = payload(9, 300_000);
        let writer = {
            let mut a = a.try_clone().unwrap();
            let msg = msg.clone();
            mode.spawn(move || {
                a.write_all(&msg).unwrap();
                a.shutdown(Shutdown::Write).unwrap();
            })
        };
        let mut back = Vec::new();
        (&a).read_to_end(&mut back).unwrap();
        writer.join().unwrap();
        assert_eq!(server.join().unwrap(), msg.len());
        assert!(back == msg);
    });
}

// Go src/net/server_test.go TestPacketConnServer, tokio tokio/tests/udp.rs
// `send_recv`, `send_to_recv_from`, `send_to_peek_from`: a UDP echo server
// answers each datagram to its sender; a connected client and an
// unconnected one exchange datagrams in lockstep (so none is dropped) and
// peek before receiving.
#[test]
fn udp_echo() {
    each_mode(LIMIT, |mode| {
        const ROUNDS: usize = 200;
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let server = mode.spawn(move || {
            let mut buf = [0u8; 1500];
            for _ in 0..2 * ROUNDS {
                let (n, from) = server.recv_from(&mut buf).unwrap();
                assert_eq!(server.send_to(&buf[..n], from).unwrap(), n);
            }
        });
        let connected = mode.spawn(move || {
            let c = UdpSocket::bind("127.0.0.1:0").unwrap();
            c.connect(addr).unwrap();
            assert_eq!(c.peer_addr().unwrap(), addr);
            let mut buf = [0u8; 1500];
            for i in 0..ROUNDS {
                let msg = payload(i, 1 + i % 1000);
                c.send(&msg).unwrap();
                let n = c.peek(&mut buf).unwrap();
                assert_eq!(&buf[..n], &msg[..]);
                let n = c.recv(&mut buf).unwrap();
                assert_eq!(&buf[..n], &msg[..]);
            }
        });
        let unconnected = mode.spawn(move || {
            let c = UdpSocket::bind("127.0.0.1:0").unwrap();
            let mut buf = [0u8; 1500];
            for i in 0..ROUNDS {
                let msg = payload(i + 1000, 1 + i % 700);
                c.send_to(&msg, addr).unwrap();
                let (n, from) = c.peek_from(&mut buf).unwrap();
                assert_eq!((&buf[..n], from), (&msg[..], addr));
                let (n, from) = c.recv_from(&mut buf).unwrap();
                assert_eq!((&buf[..n], from), (&msg[..], addr));
            }
        });
        connected.join().unwrap();
        unconnected.join().unwrap();
        server.join().unwrap();
    });
}

// Go src/net/server_test.go TestPacketConnServer (unixgram), tokio
// tokio/tests/uds_datagram.rs `echo`: a Unix datagram server bound to a
// path answers each datagram to its sender's path; a pair exchanges
// datagrams too.
#[test]
fn unix_datagram_echo() {
    each_mode(LIMIT, |mode| {
        const ROUNDS: usize = 100;
        let server_path = sock_path("dgram-server");
        let server = UnixDatagram::bind(&server_path).unwrap();
        let server = mode.spawn(move || {
            let mut buf = [0u8; 2048];
            for _ in 0..ROUNDS {
                let (n, from) = server.recv_from(&mut buf).unwrap();
                server.send_to_addr(&buf[..n], &from).unwrap();
            }
        });
        let client_path = sock_path("dgram-client");
        let client = UnixDatagram::bind(&client_path).unwrap();
        let mut buf = [0u8; 2048];
        for i in 0..ROUNDS {
            let msg = payload(i, 1 + i * 13);
            assert_eq!(client.send_to(&msg, &server_path).unwrap(), msg.len());
            let (n, from) = client.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], &msg[..]);
            assert_eq!(from.as_pathname(), Some(server_path.as_path()));
        }
        server.join().unwrap();
        std::fs::remove_file(&server_path).unwrap();
        std::fs::remove_file(&client_path).unwrap();

        let (a, b) = UnixDatagram::pair().unwrap();
        let reader = mode.spawn(move || {
            let mut buf = [0u8; 64];
            (0..ROUNDS)
                .map(|_| b.recv(&mut buf).unwrap())
                .collect::<Vec<_>>()
        });
        for i in 0..ROUNDS {
            a.send(&vec![i as u8; 1 + i % 64]).unwrap();
        }
        let lens = reader.join().unwrap();
        assert_eq!(lens, (0..ROUNDS).map(|i| 1 + i % 64).collect::<Vec<_>>());
    });
}

// Linux unix(7): an addressed datagram to a receiver whose queue is full
// fails with EAGAIN and no wake-up is arranged for the sender. The sender
// backs off until the receiver, which starts reading late, drains it; all
// 200 datagrams arrive, in order. A connected sender waits for readiness
// (Linux wakes it), with the same outcome. With a write timeout and a
// receiver that never reads, the send fails with TimedOut after the
// timeout.
#[test]
fn unix_datagram_send_to_waits_for_a_full_receiver() {
    each_mode(LIMIT, |mode| {
        const N: usize = 200; // far more than net.unix.max_dgram_qlen (10)
        let path = sock_path("dgram-full");
        let receiver = UnixDatagram::bind(&path).unwrap();
        let sender = UnixDatagram::unbound().unwrap();
        let started = Arc::new(AtomicUsize::new(0));
        let reader = {
            let started = started.clone();
            mode.spawn(move || {
                // Let the sender fill the queue (10 datagrams by default,
                // 11 fit) and find it full.
                while started.load(SeqCst) < 11 {
                    pause(mode);
                }
                spindle::sleep(SHORT);
                let mut buf = [0u8; 8];
                (0..N)
                    .map(|_| {
                        let n = receiver.recv(&mut buf).unwrap();
                        u32::from_le_bytes(buf[..n].try_into().unwrap()) as usize
                    })
                    .collect::<Vec<_>>()
            })
        };
        for i in 0..N {
            started.store(i, SeqCst);
            sender.send_to(&(i as u32).to_le_bytes(), &path).unwrap();
        }
        assert_eq!(reader.join().unwrap(), (0..N).collect::<Vec<_>>());
        std::fs::remove_file(&path).unwrap();

        // A sender connected to the receiver waits for readiness instead:
        // Linux wakes it when the receiver's queue has room.
        let path = sock_path("dgram-full-connected");
        let receiver = UnixDatagram::bind(&path).unwrap();
        let sender = UnixDatagram::unbound().unwrap();
        sender.connect(&path).unwrap();
        let sent = Arc::new(AtomicUsize::new(0));
        let reader = {
            let sent = sent.clone();
            mode.spawn(move || {
                while sent.load(SeqCst) < 11 {
                    pause(mode);
                }
                spindle::sleep(SHORT);
                let mut buf = [0u8; 8];
                (0..N)
                    .map(|_| {
                        let n = receiver.recv(&mut buf).unwrap();
                        u32::from_le_bytes(buf[..n].try_into().unwrap()) as usize
                    })
                    .collect::<Vec<_>>()
            })
        };
        for i in 0..N {
            sent.store(i, SeqCst);
            sender.send(&(i as u32).to_le_bytes()).unwrap();
        }
        assert_eq!(reader.join().unwrap(), (0..N).collect::<Vec<_>>());
        std::fs::remove_file(&path).unwrap();

        let path = sock_path("dgram-full-timeout");
        let _deaf = UnixDatagram::bind(&path).unwrap();
        sender.set_write_timeout(Some(SHORT)).unwrap();
        let err = loop {
            let start = Instant::now();
            match sender.send_to(b"x", &path) {
                Ok(_) => continue,
                Err(e) => break (e, start.elapsed()),
            }
        };
        assert_eq!(err.0.kind(), io::ErrorKind::TimedOut, "{}", err.0);
        assert!(err.1 >= SHORT, "timed out after {:?}", err.1);
        std::fs::remove_file(&path).unwrap();
    });
}

// Linux unix(7): `connect` to a listener whose backlog is full fails with
// EAGAIN (a blocking connect would wait). The listener's backlog is cut
// to 0 (so a second pending connection is refused); four clients connect
// at once and all get through once the server starts accepting.
#[test]
fn unix_connect_waits_for_a_full_backlog() {
    each_mode(LIMIT, |mode| {
        let path = sock_path("backlog");
        let listener = UnixListener::bind(&path).unwrap();
        // SAFETY: listen(2) on the listening socket we own, again, to
        // shrink its backlog.
        assert_eq!(unsafe { libc::listen(listener.as_raw_fd(), 0) }, 0);
        let connecting = Arc::new(AtomicUsize::new(0));
        let clients: Vec<_> = (0..4u8)
            .map(|i| {
                let path = path.clone();
                let connecting = connecting.clone();
                mode.spawn(move || {
                    connecting.fetch_add(1, SeqCst);
                    let mut c = UnixStream::connect(&path).unwrap();
                    c.write_all(&[i]).unwrap();
                    let mut back = [0u8];
                    c.read_exact(&mut back).unwrap();
                    assert_eq!(back[0], i + 100);
                })
            })
            .collect();
        while connecting.load(SeqCst) < 4 {
            pause(mode);
        }
        for _ in 0..4 {
            let (mut conn, _) = listener.accept().unwrap();
            let mut b = [0u8];
            conn.read_exact(&mut b).unwrap();
            conn.write_all(&[b[0] + 100]).unwrap();
        }
        for c in clients {
            c.join().unwrap();
        }
        std::fs::remove_file(&path).unwrap();
    });
}

// Go src/net/timeout_test.go TestReadTimeout, std net/tcp/tests.rs
// `test_read_timeout`: a read with nothing to read fails with TimedOut
// after at least its timeout, on every kind of socket, and the socket
// still works afterwards.
#[test]
fn read_timeouts_give_timed_out() {
    fn check(what: &str, read: impl FnOnce() -> io::Result<usize>) {
        let start = Instant::now();
        let err = read().expect_err(what);
        let waited = start.elapsed();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{what}: {err}");
        assert!(waited >= SHORT, "{what}: timed out after {waited:?}");
    }
    each_mode(LIMIT, |_mode| {
        let (mut client, mut server) = tcp_pair();
        assert_eq!(client.read_timeout().unwrap(), None);
        client.set_read_timeout(Some(SHORT)).unwrap();
        assert_eq!(client.read_timeout().unwrap(), Some(SHORT));
        check("tcp read", || client.read(&mut [0; 8]));
        check("tcp peek", || client.peek(&mut [0; 8]));
        server.write_all(b"late").unwrap();
        let mut got = [0; 4];
        client.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"late");

        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.set_read_timeout(Some(SHORT)).unwrap();
        assert_eq!(udp.read_timeout().unwrap(), Some(SHORT));
        check("udp recv_from", || udp.recv_from(&mut [0; 8]).map(|r| r.0));

        let (a, _b) = UnixStream::pair().unwrap();
        a.set_read_timeout(Some(SHORT)).unwrap();
        check("unix stream read", || (&a).read(&mut [0; 8]));

        let (a, _b) = UnixDatagram::pair().unwrap();
        a.set_read_timeout(Some(SHORT)).unwrap();
        check("unix datagram recv", || a.recv(&mut [0; 8]));

        // std's rule: a zero timeout is an error, not "never wait".
        let zero = client.set_read_timeout(Some(Duration::ZERO)).unwrap_err();
        assert_eq!(zero.kind(), io::ErrorKind::InvalidInput);
        let zero = TcpStream::connect_timeout(&server.local_addr().unwrap(), Duration::ZERO);
        assert_eq!(zero.unwrap_err().kind(), io::ErrorKind::InvalidInput);
    });
}

// Go src/net/timeout_test.go TestWriteTimeout, std net/tcp/tests.rs
// `test_write_timeout`: writing to a peer that never reads fills the
// buffers; the write that finds no room fails with TimedOut after at
// least its timeout.
#[test]
fn write_timeout_gives_timed_out() {
    each_mode(LIMIT, |_mode| {
        let (mut client, _server) = tcp_pair();
        client.set_write_timeout(Some(SHORT)).unwrap();
        assert_eq!(client.write_timeout().unwrap(), Some(SHORT));
        let chunk = vec![7u8; 64 * 1024];
        let mut written = 0usize;
        let (err, waited) = loop {
            assert!(
                written < 1 << 30,
                "1 GiB written to a peer that never reads"
            );
            let start = Instant::now();
            match client.write(&chunk) {
                Ok(n) => written += n,
                Err(e) => break (e, start.elapsed()),
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(waited >= SHORT, "timed out after {waited:?}");
        assert!(written > 0);
    });
}

// A TCP read that returns fewer bytes than asked lets the next read park
// without trying (the socket's queue was drained), unless an event has
// reported a state that makes reads return without new bytes. Here the
// peer sends bytes, an urgent (out-of-band) byte and more bytes, all in
// the receive queue before the first read, which stops short at the
// urgent mark with bytes left behind: the second read must still get
// them. The reader first waits for a byte on a second connection, sent
// after the others: epoll reports ready sockets in the order they became
// ready, so once that wait is over the reactor has collected the first
// socket's event too, which is the case this test is about. (The end of
// the stream arriving with the last bytes is `peer_close_gives_eof`.)
#[test]
fn a_short_read_before_urgent_data_does_not_strand_the_rest() {
    each_mode(LIMIT, |mode| {
        let (client, mut server) = tcp_pair();
        let (mut barrier_client, mut barrier_server) = tcp_pair();
        let reader = mode.spawn(move || {
            // A first byte, so the socket is registered before the rest.
            server.read_exact(&mut [0u8; 1]).unwrap();
            barrier_server.read_exact(&mut [0u8; 1]).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 64];
            while got.len() < 4 {
                let n = server.read(&mut buf).unwrap();
                assert_ne!(n, 0, "end of stream after {got:?}");
                got.extend_from_slice(&buf[..n]);
            }
            got
        });
        let fd = client.as_raw_fd();
        let sends = [
            (&b"x"[..], 0),
            (b"ab", 0),
            (b"c", libc::MSG_OOB),
            (b"de", 0),
        ];
        for (bytes, flags) in sends {
            // SAFETY: `bytes` is valid for its length; `fd` is the open
            // client socket.
            let n = unsafe { libc::send(fd, bytes.as_ptr().cast(), bytes.len(), flags) };
            assert_eq!(n, bytes.len() as isize, "{}", io::Error::last_os_error());
        }
        barrier_client.write_all(b"!").unwrap();
        // Without SO_OOBINLINE the urgent byte is not in the stream.
        assert_eq!(reader.join().unwrap(), b"abde");
        drop(client);
    });
}

// std net/tcp/tests.rs `read_eof` and `shutdown_smoke`, Go
// src/net/net_test.go TestCloseRead: a peer that closes gives the end of
// the stream (Ok(0)) after its last bytes, every time it is read; a
// half-closed client still reads the reply.
#[test]
fn peer_close_gives_eof() {
    each_mode(LIMIT, |mode| {
        let (mut client, server) = tcp_pair();
        let closer = mode.spawn(move || {
            let mut server = server;
            let mut req = Vec::new();
            server.read_to_end(&mut req).unwrap(); // until the client's shutdown
            assert_eq!(req, b"request");
            server.write_all(b"reply").unwrap();
            // dropped: closed
        });
        client.write_all(b"request").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let mut reply = Vec::new();
        client.read_to_end(&mut reply).unwrap();
        assert_eq!(reply, b"reply");
        assert_eq!(client.read(&mut [0; 8]).unwrap(), 0);
        assert_eq!(client.read(&mut [0; 8]).unwrap(), 0);
        closer.join().unwrap();

        let (mut a, b) = UnixStream::pair().unwrap();
        let closer = mode.spawn(move || drop(b));
        assert_eq!(a.read(&mut [0; 8]).unwrap(), 0);
        closer.join().unwrap();
    });
}

// Go src/net/net_test.go TestCloseWrite (a reset when unread data is
// discarded): the server closes its end with the client's bytes unread,
// so the kernel resets the connection; the client's waiting read fails
// with ConnectionReset.
#[test]
fn reset_gives_connection_reset() {
    each_mode(LIMIT, |mode| {
        let (mut client, server) = tcp_pair();
        let closer = mode.spawn(move || {
            // Wait until the bytes are there, leave them unread, close.
            server.peek(&mut [0; 1]).unwrap();
            drop(server);
        });
        client.write_all(b"never read").unwrap();
        let err = client.read(&mut [0; 8]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
        closer.join().unwrap();
    });
}

// std net/tcp/tests.rs `write_close`: writing to a connection the peer
// has closed fails with BrokenPipe (and never raises SIGPIPE: see
// net_child.rs for the process-level check).
#[test]
fn write_after_peer_close_gives_broken_pipe() {
    each_mode(LIMIT, |mode| {
        let (mut client, server) = tcp_pair();
        drop(server);
        // The FIN arrived: the connection is half-closed on our side.
        assert_eq!(client.read(&mut [0; 8]).unwrap(), 0);
        // The first write is answered with a reset; a later one fails.
        let mut tries = 0;
        let err = loop {
            match client.write_all(b"anyone?") {
                Ok(()) => {
                    tries += 1;
                    assert!(tries < 10_000, "writes to a closed peer keep succeeding");
                    pause(mode);
                }
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err}");

        let (mut a, b) = UnixStream::pair().unwrap();
        drop(b);
        let err = a.write_all(b"anyone?").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err}");
        let err = a.write_vectored(&[io::IoSlice::new(b"x")]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err}");
    });
}

// tokio tokio/tests/tcp_split.rs `split`, std net/tcp/tests.rs
// `tcp_clone_smoke`: one `TcpStream` shared by reference (an Arc), read
// in one unit and written in another at the same time. The stream is an
// accepted one, not yet registered with the reactor, and a barrier lines
// the two units up, so on several workers both make the socket's first
// wait at once (which must register it once, not fail).
#[test]
fn shared_stream_reads_and_writes_concurrently() {
    each_mode(LIMIT, |mode| {
        for round in 0..mode.scale(300) {
            let (client, server) = tcp_pair();
            let echo_unit = mode.spawn(move || echo(&client).unwrap());
            let server = Arc::new(server);
            let start = Arc::new(spindle::sync::Barrier::new(2));
            let data = payload(round, 50_000);
            let writer = {
                let (server, data, start) = (server.clone(), data.clone(), start.clone());
                mode.spawn(move || {
                    start.wait();
                    (&*server).write_all(&data).unwrap();
                    server.shutdown(Shutdown::Write).unwrap();
                })
            };
            let reader = {
                let server = server.clone();
                mode.spawn(move || {
                    start.wait();
                    let mut back = Vec::new();
                    (&*server).read_to_end(&mut back).unwrap();
                    back
                })
            };
            writer.join().unwrap();
            assert!(reader.join().unwrap() == data, "round {round}");
            assert_eq!(echo_unit.join().unwrap(), data.len());
        }
    });
}

// std net/tcp/tests.rs `tcp_clone_two_read`: two clones of one stream
// (two descriptors, two registrations) read in two units at once; each
// byte sent is read by exactly one of them, and both see the end.
#[test]
fn clones_read_in_two_units() {
    each_mode(LIMIT, |mode| {
        let (client, mut server) = tcp_pair();
        let clone = client.try_clone().unwrap();
        assert_ne!(clone.as_raw_fd(), client.as_raw_fd());
        assert_eq!(clone.peer_addr().unwrap(), client.peer_addr().unwrap());
        // A setting made on one is seen by the other.
        clone.set_read_timeout(Some(LIMIT)).unwrap();
        assert_eq!(client.read_timeout().unwrap(), Some(LIMIT));
        let readers: Vec<_> = [client, clone]
            .into_iter()
            .map(|mut s| {
                mode.spawn(move || {
                    let mut got = Vec::new();
                    let mut b = [0u8];
                    while s.read(&mut b).unwrap() == 1 {
                        got.push(b[0]);
                    }
                    got
                })
            })
            .collect();
        for i in 0..=255u8 {
            server.write_all(&[i]).unwrap();
            if i % 16 == 0 {
                pause(mode);
            }
        }
        drop(server);
        let mut all = BTreeSet::new();
        let mut count = 0;
        for r in readers {
            let got = r.join().unwrap();
            count += got.len();
            all.extend(got);
        }
        assert_eq!(count, 256);
        assert_eq!(all, (0..=255u8).collect::<BTreeSet<_>>());
    });
}

// tokio tokio/tests/tcp_into_std.rs: a stream converted into a std stream
// is blocking again, keeps its timeouts and its data; converted back it
// works on the reactor again; the same for a listener, a UDP socket, Unix
// sockets, and through raw descriptors.
#[test]
fn into_std_and_from_std_round_trip() {
    each_mode(LIMIT, |mode| {
        let (client, server) = tcp_pair();
        client.set_read_timeout(Some(LIMIT)).unwrap();
        // A plain thread: the std stream's blocking calls below would hold
        // a lone worker, and with it a coroutine peer.
        let peer = std::thread::spawn(move || echo(server).unwrap());
        let mut std_client = client.into_std().unwrap();
        assert!(is_blocking(&std_client));
        assert_eq!(std_client.read_timeout().unwrap(), Some(LIMIT));
        std_client.write_all(b"std").unwrap();
        let mut got = [0u8; 3];
        std_client.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"std");
        let mut client = TcpStream::from_std(std_client).unwrap();
        assert!(!is_blocking(&client));
        assert_eq!(client.read_timeout().unwrap(), Some(LIMIT));
        client.write_all(b"back").unwrap();
        let mut got = [0u8; 4];
        client.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"back");
        // Through a raw descriptor, and `From`.
        let fd = client.into_raw_fd();
        // SAFETY: `fd` was just given up by the stream; we own it.
        let mut client = unsafe { TcpStream::from_raw_fd(fd) };
        assert!(format!("{client:?}").contains("TcpStream"));
        client.shutdown(Shutdown::Write).unwrap();
        assert_eq!(client.read(&mut [0; 4]).unwrap(), 0);
        assert_eq!(peer.join().unwrap(), 7);

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let std_listener = listener.into_std().unwrap();
        assert!(is_blocking(&std_listener));
        let listener = TcpListener::from(std_listener);
        let c = mode.spawn(move || TcpStream::connect(addr).unwrap());
        let (_conn, _) = listener.accept().unwrap();
        c.join().unwrap();

        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let std_udp = udp.into_std().unwrap();
        assert!(is_blocking(&std_udp));
        let udp = UdpSocket::from_std(std_udp).unwrap();
        udp.send_to(b"me", udp.local_addr().unwrap()).unwrap();
        assert_eq!(udp.recv(&mut [0; 4]).unwrap(), 2);

        let (a, b) = UnixStream::pair().unwrap();
        let mut a = UnixStream::from_std(a.into_std().unwrap()).unwrap();
        let b = b.into_std().unwrap();
        assert!(is_blocking(&b));
        let mut b = UnixStream::from(b);
        a.write_all(b"u").unwrap();
        assert_eq!(b.read(&mut [0; 4]).unwrap(), 1);

        let (a, b) = UnixDatagram::pair().unwrap();
        let a = UnixDatagram::from_std(a.into_std().unwrap()).unwrap();
        a.send(b"d").unwrap();
        assert_eq!(b.recv(&mut [0; 4]).unwrap(), 1);
    });
}

// std net/tcp/tests.rs `peek` and `nonblocking`-style checks: peek waits
// for data and leaves it to read; in non-blocking mode calls fail with
// WouldBlock instead of waiting, and wait again once switched back.
#[test]
fn peek_and_nonblocking_mode() {
    each_mode(LIMIT, |mode| {
        let (mut client, server) = tcp_pair();
        let writer = mode.spawn(move || {
            let mut server = server;
            server.write_all(b"abc").unwrap();
            server
        });
        let mut buf = [0u8; 3];
        let mut peeked = 0;
        while peeked < 3 {
            peeked = client.peek(&mut buf).unwrap();
        }
        assert_eq!(&buf, b"abc");
        client.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"abc");
        let mut server = writer.join().unwrap();

        client.set_nonblocking(true).unwrap();
        let err = client.read(&mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        client.set_nonblocking(false).unwrap();
        client.set_read_timeout(Some(SHORT)).unwrap();
        let err = client.read(&mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        server.write_all(b"x").unwrap();
        assert_eq!(client.read(&mut buf).unwrap(), 1);

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let err = listener.accept().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        let err = listener.incoming().next().unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    });
}

// Go src/net/dial_test.go (dialing a closed port), std net/tcp/tests.rs
// `connect_error`: connecting where nobody listens fails with
// ConnectionRefused; connect_timeout to a live listener connects.
#[test]
fn connect_refused_and_connect_timeout() {
    each_mode(LIMIT, |_mode| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = TcpStream::connect(addr).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
        let err = UnixStream::connect(sock_path("nobody")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let s = TcpStream::connect_timeout(&addr, LIMIT).unwrap();
        assert_eq!(s.peer_addr().unwrap(), addr);
        s.set_nodelay(true).unwrap();
        assert!(s.nodelay().unwrap());
        s.set_ttl(33).unwrap();
        assert_eq!(s.ttl().unwrap(), 33);
        assert!(s.take_error().unwrap().is_none());
        let (conn, _) = listener.accept().unwrap();
        assert_eq!(conn.local_addr().unwrap(), addr);
    });
}

// Spindle's introspection contract (Go's gopark wait reasons: "IO wait"):
// a coroutine parked in a read shows as Blocked(IoRead) in a snapshot,
// one parked in a write on a full buffer as Blocked(IoWrite).
#[test]
fn blocked_io_shows_in_snapshot() {
    each_mode(LIMIT, |mode| {
        if !mode.is_coroutines() {
            return;
        }
        let blocked_on = |reason: WaitReason, id: spindle::CoroutineId| {
            for _ in 0..100_000 {
                let snap = spindle::runtime::snapshot();
                let c = snap.coroutines.iter().find(|c| c.id == id);
                if c.is_some_and(|c| c.state == CoroutineState::Blocked(reason)) {
                    return;
                }
                spindle::sleep(Duration::from_micros(100));
            }
            panic!("coroutine {id:?} never showed as Blocked({reason:?})");
        };

        let (client, mut server) = tcp_pair();
        let reader = spindle::spawn(move || {
            let mut client = client;
            let mut b = [0u8];
            client.read_exact(&mut b).unwrap();
            b[0]
        });
        blocked_on(WaitReason::IoRead, reader.id());
        server.write_all(&[42]).unwrap();
        assert_eq!(reader.join().unwrap(), 42);

        // More than the loopback buffers hold, so the writer must wait.
        const CHUNKS: usize = 1024;
        let (client, server) = tcp_pair();
        let writer = spindle::spawn(move || {
            let mut client = client;
            let chunk = vec![0u8; 64 * 1024];
            for _ in 0..CHUNKS {
                client.write_all(&chunk).unwrap();
            }
        });
        blocked_on(WaitReason::IoWrite, writer.id());
        let drain = spindle::spawn(move || {
            let mut server = server;
            io::copy(&mut server, &mut io::sink()).unwrap()
        });
        writer.join().unwrap();
        assert_eq!(drain.join().unwrap(), (CHUNKS * 64 * 1024) as u64);
    });
}

// Go's netpoller contract (src/runtime/netpoll.go: a goroutine blocked on
// a socket does not hold its thread): with one worker, a coroutine
// blocked in `read` lets the others run, among them the one that
// finally writes what it waits for.
#[test]
fn blocked_reader_does_not_block_its_worker() {
    each_mode(LIMIT, |mode| {
        let (mut client, mut server) = tcp_pair();
        let reader = mode.spawn(move || {
            let mut b = [0u8; 4];
            client.read_exact(&mut b).unwrap();
            b
        });
        // Other units make progress meanwhile (with one worker: on the
        // worker the reader is parked on).
        let progress = Arc::new(AtomicUsize::new(0));
        let busy: Vec<_> = (0..4)
            .map(|_| {
                let progress = progress.clone();
                mode.spawn(move || {
                    for _ in 0..100 {
                        progress.fetch_add(1, SeqCst);
                        pause(mode);
                    }
                })
            })
            .collect();
        for b in busy {
            b.join().unwrap();
        }
        assert_eq!(progress.load(SeqCst), 400);
        let writer = mode.spawn(move || server.write_all(b"done").unwrap());
        assert_eq!(&reader.join().unwrap(), b"done");
        writer.join().unwrap();
    });
}

// Slowloris (a client that sends its request a byte at a time and then
// stalls): it holds only its own handler. The server answers 50 fast
// clients (16 as threads) while the slow one's request is unfinished;
// only then does the slow client finish and get its answer.
#[test]
fn slow_client_holds_only_its_own_coroutine() {
    each_mode(LIMIT, |mode| {
        let fast = mode.scale(50);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // Answers one line per connection.
        let server = mode.spawn(move || {
            let handlers: Vec<_> = listener
                .incoming()
                .take(fast + 1)
                .map(|conn| {
                    let mut conn = conn.unwrap();
                    mode.spawn(move || {
                        let mut line = Vec::new();
                        let mut b = [0u8];
                        while conn.read(&mut b).unwrap() == 1 && b[0] != b'\n' {
                            line.push(b[0]);
                        }
                        conn.write_all(&line).unwrap();
                    })
                })
                .collect();
            for h in handlers {
                h.join().unwrap();
            }
        });
        let mut slow = TcpStream::connect(addr).unwrap();
        for &b in b"sl" {
            slow.write_all(&[b]).unwrap();
            pause(mode);
        }
        let fast_clients: Vec<_> = (0..fast)
            .map(|i| {
                mode.spawn(move || {
                    let mut c = TcpStream::connect(addr).unwrap();
                    let req = format!("fast {i}\n");
                    c.write_all(req.as_bytes()).unwrap();
                    let mut back = String::new();
                    c.read_to_string(&mut back).unwrap();
                    assert_eq!(back, req.trim_end());
                })
            })
            .collect();
        for c in fast_clients {
            c.join().unwrap();
        }
        // Every fast client was served while the slow request is open.
        slow.write_all(b"ow\n").unwrap();
        let mut back = String::new();
        slow.read_to_string(&mut back).unwrap();
        assert_eq!(back, "slow");
        server.join().unwrap();
    });
}

/// `spindle::time::timeout` bounds socket calls inside it (the
/// `current_deadline` docs): a read that would wait forever fails with
/// `TimedOut` once the scope's deadline passes.
#[test]
fn deadline_scope_bounds_socket_reads() {
    common::each_mode(LIMIT, |_| {
        let listener = spindle::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = spindle::net::TcpStream::connect(addr).unwrap();
        let (_server, _) = listener.accept().unwrap();
        let start = std::time::Instant::now();
        let err = spindle::time::timeout(Duration::from_millis(20), || {
            let mut buf = [0u8; 8];
            std::io::Read::read(&mut &client, &mut buf)
        })
        .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert!(start.elapsed() >= Duration::from_millis(20));
    });
}
