//! Connection timeouts (`idle_timeout_secs`, spec section 13): idle keep-alive connections,
//! clients stalled inside their request head or body, and clients that never read their response
//! are closed after the timeout and their threads end; a keep-alive client that makes a request
//! every second keeps its connection.

mod common;

use common::{snapshot_doc, Server};
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const IDLE: u64 = 5;

fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("/proc/PID/task")
        .count()
}

/// The thread count once it has not changed for `IDLE + 1` seconds (tiny_http ends a connection
/// thread that has been idle for 5 s).
fn settled_threads(pid: u32) -> usize {
    let mut last = threads(pid);
    let mut since = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(30);
    while since.elapsed() < Duration::from_secs(IDLE + 1) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        let n = threads(pid);
        if n != last {
            last = n;
            since = Instant::now();
        }
    }
    last
}

/// Reads until the server closes the connection; returns the bytes read and when it closed.
fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (Vec<u8>, Option<Instant>) {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return (got, Some(Instant::now())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return (got, Some(Instant::now())), // reset: closed too
        }
    }
    (got, None)
}

/// A connection whose receive buffer is 4 KiB, set before it connects.
fn connect_small_buffer(addr: &str) -> TcpStream {
    use std::os::fd::FromRawFd;
    let addr: std::net::SocketAddrV4 = addr.parse().unwrap();
    // SAFETY: plain socket calls on a descriptor this function owns until it is wrapped.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let size: libc::c_int = 4096;
        let rc = libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        assert_eq!(rc, 0);
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: addr.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*addr.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        let rc = libc::connect(
            fd,
            (&sin as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(rc, 0, "connect");
        TcpStream::from_raw_fd(fd)
    }
}

/// Reads one response with a Content-Length body from a keep-alive connection.
fn read_one(s: &mut TcpStream) -> (u16, Vec<u8>) {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).expect("response head");
        assert_eq!(
            n,
            1,
            "connection closed before a response: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).expect("response body");
    (status, body)
}

#[test]
fn idle_stalled_and_unread_connections_are_closed_and_free_their_threads() {
    let size: usize = 9_000_000;
    let s = Server::start_with(&[
        ("FLOWSNAP_IDLE_TIMEOUT_SECS", &IDLE.to_string()),
        ("FLOWSNAP_MAX_BODY_BYTES", "9200000"),
        ("FLOWSNAP_MAX_SNAPSHOT_BYTES", "9100000"),
        ("FLOWSNAP_WORKERS", "6"),
    ]);
    let ws = s.workspace(&s.admin, "timeouts");
    let flow = s.flow(&s.admin, &ws, &["big"]);
    s.post(
        &format!("/v2/flows/{flow}/snapshots"),
        &s.admin,
        &snapshot_doc("big", json!("x".repeat(size))),
    )
    .expect(201);
    let big_path = format!("/v2/flows/{flow}/snapshots/big");
    let auth = s.admin.auth();
    // Remembered credentials: no argon2 during the timing below.
    s.get(&big_path, &s.admin).expect(200);

    let pid = s.pid();
    let baseline = settled_threads(pid);

    let connect = || {
        let c = TcpStream::connect(&s.addr).unwrap();
        c.set_nodelay(true).unwrap();
        c
    };
    // tiny_http hands a new connection to an idle thread of its pool by queueing it and waking
    // the thread, and counts that thread as idle until it has woken: a connection that arrives
    // in that window is queued behind busy connections instead of getting a thread of its own
    // (on a loaded machine the window is long). Connections that get no answer are therefore
    // opened one at a time, a pause apart, and each one's clock starts when it was opened.
    let paced = |c: TcpStream| {
        let opened = Instant::now();
        std::thread::sleep(Duration::from_millis(200));
        (c, opened)
    };
    // 1. Idle keep-alive connections after one answered request.
    let mut idle: Vec<(TcpStream, Instant)> = (0..3)
        .map(|_| {
            let mut c = connect();
            c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            assert_eq!(read_one(&mut c).0, 200);
            (c, Instant::now())
        })
        .collect();
    // 2. Stalled inside the request head.
    let mut in_head: Vec<(TcpStream, Instant)> = (0..3)
        .map(|_| {
            let mut c = connect();
            c.write_all(b"GET /v2/users/me HTTP/1.1\r\nHost: x\r\nAuthorization: Ba")
                .unwrap();
            paced(c)
        })
        .collect();
    // 3. Stalled inside a body: a small one (read by tiny_http before the handler) and a large
    //    one (read by the handler on a worker thread).
    let mut in_body: Vec<(TcpStream, Instant)> = [500usize, 100_000]
        .iter()
        .map(|len| {
            let mut c = connect();
            c.write_all(
                format!(
                    "PATCH {big_path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\
                     Content-Type: application/json\r\nContent-Length: {len}\r\n\r\n{{\"data\":"
                )
                .as_bytes(),
            )
            .unwrap();
            paced(c)
        })
        .collect();
    // 4. Never reads a large response (with a small receive buffer, so that the response cannot
    //    sit whole in the kernel's buffers).
    let mut unread: Vec<(TcpStream, Instant)> = (0..2)
        .map(|_| {
            let mut c = connect_small_buffer(&s.addr);
            c.write_all(
                format!("GET {big_path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\r\n")
                    .as_bytes(),
            )
            .unwrap();
            paced(c)
        })
        .collect();

    // 5. Meanwhile a keep-alive client makes a request every second, longer than the timeout.
    let addr = s.addr.clone();
    let steady = std::thread::spawn(move || {
        let mut c = TcpStream::connect(&addr).unwrap();
        let mut answered = 0;
        for _ in 0..(IDLE as usize + 4) {
            c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            let (status, _) = read_one(&mut c);
            assert_eq!(status, 200);
            answered += 1;
            std::thread::sleep(Duration::from_secs(1));
        }
        answered
    });

    // (On a loaded machine tiny_http may take a moment to give every connection its thread.)
    let mut during = threads(pid);
    let rise = Instant::now() + Duration::from_secs(3);
    while during <= baseline && Instant::now() < rise {
        std::thread::sleep(Duration::from_millis(100));
        during = threads(pid);
    }
    // 11 connections, each with a thread of its own; tiny_http keeps idle ones at hand (4, and
    // on a loaded machine a few more from earlier connections), which take some of them: the
    // count must rise, by how much depends on how many were at hand.
    assert!(
        during > baseline,
        "each open connection holds a thread: baseline {baseline}, now {during}"
    );

    let limit = Duration::from_secs(IDLE + 5);
    let early = Duration::from_secs(IDLE) - Duration::from_millis(500);
    for (what, conns) in [
        ("idle keep-alive", &mut idle),
        ("stalled in the head", &mut in_head),
        ("stalled in the body", &mut in_body),
    ] {
        for (c, opened) in conns.iter_mut() {
            let (_, closed) = read_until_closed(c, limit);
            let at =
                closed.unwrap_or_else(|| panic!("{what}: connection not closed after {limit:?}"));
            assert!(
                at - *opened >= early,
                "{what}: closed too early ({:?})",
                at - *opened
            );
        }
    }
    // The send timeout counts from the moment the server's send finds the buffers full, which
    // on a loaded machine can be seconds after the request (a debug build writing 9 MB): wait
    // until the first bytes of each response have arrived (peeked, not read, so that the
    // buffers stay full), then past the timeout from there, and only then read what was left.
    let mut filled = Instant::now();
    for (c, _) in unread.iter() {
        c.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut probe = [0u8; 1];
        while !matches!(c.peek(&mut probe), Ok(n) if n > 0) {
            assert!(
                Instant::now() < deadline,
                "unread response: no byte of it arrived in 60 s"
            );
        }
        filled = filled.max(Instant::now());
    }
    std::thread::sleep(
        (filled + Duration::from_secs(IDLE + 3)).saturating_duration_since(Instant::now()),
    );
    for (c, _) in unread.iter_mut() {
        let (got, closed) = read_until_closed(c, limit);
        assert!(closed.is_some(), "unread response: connection not closed");
        assert!(
            got.len() < size,
            "the response must have been abandoned, yet {} bytes arrived",
            got.len()
        );
    }
    assert_eq!(
        steady.join().unwrap(),
        IDLE as usize + 4,
        "the steady client kept its connection"
    );

    // Every thread those connections held ends: the count returns to its baseline.
    let deadline = Instant::now() + Duration::from_secs(IDLE + 10);
    let mut now = threads(pid);
    while now > baseline && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        now = threads(pid);
    }
    assert!(
        now <= baseline,
        "threads: baseline {baseline}, after the timeouts {now}"
    );
    // And the server still answers, on every worker.
    let answers: Vec<_> = (0..6)
        .map(|_| {
            let a = s.addr.clone();
            std::thread::spawn(move || {
                let mut c = TcpStream::connect(a).unwrap();
                c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    .unwrap();
                read_one(&mut c).0
            })
        })
        .collect();
    for a in answers {
        assert_eq!(a.join().unwrap(), 200);
    }
}
