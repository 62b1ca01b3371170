//! Hostile and broken peers, through the real ferry: request smuggling attempts, size limits,
//! slowloris, head deadlines, clients that stop reading, apps that die or answer garbage,
//! `Expect: 100-continue`, protocol upgrades and the admin socket's access control.
//!
//! Requests that must not reach the app go to [`RecordingApp`], which records every request it
//! receives whatever its target: "the app never saw it" is read from its record file.

use ferry_e2e::{get, wait_for, Ferry, RawConn, RawResponse, RecordingApp};
use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(20);

/// How a test client writes a request.
#[derive(Debug, Clone, Copy)]
enum Send {
    Whole,
    /// One byte per write with TCP_NODELAY, until ferry answers.
    Bytewise,
}

/// Sends `bytes` on a fresh connection and reads ferry's answer and the connection's end.
fn refused(addr: SocketAddr, bytes: &[u8], how: Send) -> (RawResponse, Vec<u8>) {
    let mut conn = RawConn::connect(addr);
    match how {
        Send::Whole => conn.send(bytes),
        Send::Bytewise => conn.send_bytewise(bytes),
    };
    let response = conn
        .read_response()
        .unwrap_or_else(|e| panic!("{how:?} {:?}: {e}", bytes.escape_ascii().to_string()))
        .unwrap_or_else(|| {
            panic!(
                "{how:?} {:?}: closed without a response",
                bytes.escape_ascii().to_string()
            )
        });
    let rest = conn.read_to_end().unwrap_or_else(|e| {
        panic!(
            "{how:?} {:?}: the connection stays open after {}: {e}",
            bytes.escape_ascii().to_string(),
            response.status
        )
    });
    (response, rest)
}

/// Asserts ferry answers `bytes` (sent whole, then byte by byte) with one of `statuses`,
/// `Connection: close`, and closes the connection.
fn assert_refused(addr: SocketAddr, what: &str, bytes: &[u8], statuses: &[u16]) {
    for how in [Send::Whole, Send::Bytewise] {
        let (response, rest) = refused(addr, bytes, how);
        assert!(
            statuses.contains(&response.status),
            "{what} ({how:?}): status {} not in {statuses:?}",
            response.status
        );
        assert!(
            response.closes(),
            "{what} ({how:?}): {} without Connection: close: {:?}",
            response.status,
            response.headers
        );
        assert!(
            rest.is_empty(),
            "{what} ({how:?}): more after the refusal: {:?}",
            rest.escape_ascii().to_string()
        );
    }
}

/// Asserts the app got exactly one more request since `before` records: a last one sent now,
/// so anything forwarded earlier would be there too.
fn assert_app_saw_nothing(ferry: &Ferry, app: &RecordingApp, before: usize) {
    let response = get(ferry.addr(), "/sentinel").expect("GET /sentinel");
    assert_eq!(response.status, 200);
    let targets: Vec<String> = app.records()[before..]
        .iter()
        .map(|r| String::from_utf8_lossy(&r.target).into_owned())
        .collect();
    assert_eq!(
        targets,
        ["/sentinel"],
        "the app got requests it must not have"
    );
}

/// A POST with these field lines (each ending in CRLF) after `Host`, then `body`.
fn post(fields: &str, body: &str) -> Vec<u8> {
    format!("POST /a HTTP/1.1\r\nHost: x\r\n{fields}\r\n{body}").into_bytes()
}

/// A chunked POST whose body is `body`.
fn chunked(body: &str) -> Vec<u8> {
    post("Transfer-Encoding: chunked\r\n", body)
}

/// Smuggling attempts: what each is, its bytes, and the statuses ferry may refuse it with.
fn smuggling_attempts() -> Vec<(&'static str, Vec<u8>, &'static [u16])> {
    let cl_te = "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n";
    let te_cl = "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n";
    let smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
    let te_twice = "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n";
    let folded_te = "Transfer-Encoding: x\r\n chunked\r\nContent-Length: 5\r\n";
    vec![
        (
            "Content-Length and Transfer-Encoding",
            post(cl_te, "0\r\n\r\nG"),
            &[400],
        ),
        (
            "Transfer-Encoding and Content-Length",
            post(te_cl, "0\r\n\r\n"),
            &[400],
        ),
        (
            "two different Content-Lengths",
            post("Content-Length: 0\r\nContent-Length: 41\r\n", smuggled),
            &[400],
        ),
        (
            "two equal Content-Lengths",
            post("Content-Length: 5\r\nContent-Length: 5\r\n", "hello"),
            &[400],
        ),
        (
            "a Content-Length list",
            post("Content-Length: 5, 5\r\n", "hello"),
            &[400],
        ),
        (
            "a signed Content-Length",
            post("Content-Length: +5\r\n", "hello"),
            &[400],
        ),
        (
            "a hex Content-Length",
            post("Content-Length: 0x5\r\n", "hello"),
            &[400],
        ),
        (
            "Transfer-Encoding: chunked, chunked",
            post("Transfer-Encoding: chunked, chunked\r\n", "0\r\n\r\n"),
            &[400, 501],
        ),
        (
            "Transfer-Encoding: chunked twice",
            post(te_twice, "0\r\n\r\n"),
            &[400, 501],
        ),
        (
            "Transfer-Encoding: xchunked",
            post("Transfer-Encoding: xchunked\r\n", "0\r\n\r\n"),
            &[400, 501],
        ),
        (
            "Transfer-Encoding: chunked, x",
            post("Transfer-Encoding: chunked, x\r\n", "0\r\n\r\n"),
            &[400, 501],
        ),
        (
            "Transfer-Encoding in HTTP/1.0",
            b"POST /a HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
            &[400, 501],
        ),
        (
            "a negative chunk size",
            chunked("-1\r\nx\r\n0\r\n\r\n"),
            &[400],
        ),
        (
            "a signed chunk size",
            chunked("+1\r\nx\r\n0\r\n\r\n"),
            &[400],
        ),
        ("a 0x chunk size", chunked("0x1\r\nx\r\n0\r\n\r\n"), &[400]),
        (
            "a non-hex chunk size",
            chunked("g\r\nx\r\n0\r\n\r\n"),
            &[400],
        ),
        ("an empty chunk size", chunked("\r\nx\r\n0\r\n\r\n"), &[400]),
        (
            "an overflowing chunk size",
            chunked("10000000000000001\r\nx\r\n0\r\n\r\n"),
            &[400, 413],
        ),
        (
            "chunk data longer than its size",
            chunked("1\r\nxx\r\n0\r\n\r\n"),
            &[400],
        ),
        (
            "a bare LF ending a chunk size",
            chunked("1\nx\r\n0\r\n\r\n"),
            &[400],
        ),
        (
            "a bare LF ending the request line",
            b"GET /a HTTP/1.1\nHost: x\r\n\r\n".to_vec(),
            &[400],
        ),
        (
            "bare LFs ending every line",
            b"GET /a HTTP/1.1\nHost: x\n\n".to_vec(),
            &[400],
        ),
        (
            "a bare LF ending a field line",
            b"GET /a HTTP/1.1\r\nHost: x\nX: y\r\n\r\n".to_vec(),
            &[400],
        ),
        (
            "a bare CR in a field value",
            b"GET /a HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n".to_vec(),
            &[400],
        ),
        (
            "obs-fold",
            b"GET /a HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n".to_vec(),
            &[400],
        ),
        (
            "obs-fold continuing Transfer-Encoding",
            post(folded_te, "hello"),
            &[400],
        ),
        (
            "a space before the colon",
            post("Content-Length : 5\r\n", "hello"),
            &[400],
        ),
        (
            "a tab before the colon",
            post("Transfer-Encoding\t: chunked\r\n", "0\r\n\r\n"),
            &[400],
        ),
        (
            "a space before the first field",
            b"POST /a HTTP/1.1\r\n Content-Length: 5\r\nHost: x\r\n\r\nhello".to_vec(),
            &[400],
        ),
        (
            "a NUL in a field value",
            b"GET /a HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n".to_vec(),
            &[400],
        ),
        (
            "two Hosts",
            b"GET /a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n".to_vec(),
            &[400],
        ),
    ]
}

#[test]
fn smuggling_attempts_are_refused_with_close_and_never_reach_the_app() {
    let app = RecordingApp::new();
    let ferry = app.start_ferry(&["--min-instances", "1"]);
    ferry.wait_ready(1, LIMIT);
    for (what, bytes, statuses) in smuggling_attempts() {
        assert_refused(ferry.addr(), what, &bytes, statuses);
    }
    assert_app_saw_nothing(&ferry, &app, 0);
}

/// A field name with `_` (`Transfer_Encoding`) is dropped, never refused: that is gunicorn's
/// default too (invalid/chunked_07 in the corpus deviations). It must never frame the body nor
/// reach the app, so the app and ferry agree on where the request ends.
#[test]
fn a_transfer_encoding_name_with_an_underscore_is_dropped_and_never_frames_the_body() {
    let app = RecordingApp::new();
    let ferry = app.start_ferry(&["--min-instances", "1"]);
    ferry.wait_ready(1, LIMIT);
    let first =
        "POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer_Encoding: chunked\r\n";
    let pipelined =
        format!("{first}\r\n0\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes();
    let pipelined = pipelined.as_slice();
    for how in [Send::Whole, Send::Bytewise] {
        let before = app.records().len();
        let mut conn = RawConn::connect(ferry.addr());
        match how {
            Send::Whole => conn.send(pipelined),
            // Byte by byte to the end: the first response must not stop the second request.
            Send::Bytewise => pipelined
                .iter()
                .map(|b| conn.send(std::slice::from_ref(b)))
                .sum(),
        };
        let first = conn
            .read_response()
            .expect("first response")
            .expect("a first response");
        let second = conn
            .read_response()
            .expect("second response")
            .expect("a second response");
        assert_eq!((first.status, second.status), (200, 200), "{how:?}");
        let records = app.records()[before..].to_vec();
        assert_eq!(records.len(), 2, "{how:?}: {records:?}");
        assert_eq!(
            (records[0].target.as_slice(), records[0].body.as_slice()),
            (&b"/first"[..], &b"0\r\n\r\n"[..])
        );
        assert_eq!(records[1].target, b"/second");
        for record in &records {
            assert!(
                record.headers.iter().all(|(name, _)| !name.contains(&b'_')),
                "{how:?}: {record:?}"
            );
            assert_eq!(
                record.header("transfer-encoding"),
                None,
                "{how:?}: {record:?}"
            );
        }
    }
}

#[test]
fn over_long_request_lines_and_heads_get_414_and_431_and_never_reach_the_app() {
    let app = RecordingApp::new();
    let ferry = app.start_ferry(&["--min-instances", "1"]);
    ferry.wait_ready(1, LIMIT);
    let long_target = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(9 * 1024));
    assert_refused(
        ferry.addr(),
        "a 9 KiB request line",
        long_target.as_bytes(),
        &[414],
    );
    let long_field = format!(
        "GET /a HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(9 * 1024)
    );
    assert_refused(
        ferry.addr(),
        "a 9 KiB field line",
        long_field.as_bytes(),
        &[431],
    );
    let fields = |count: usize| {
        let mut head = String::from("GET /fields HTTP/1.1\r\nHost: x\r\n");
        for i in 1..count {
            head.push_str(&format!("X-Field-{i}: {i}\r\n"));
        }
        head + "\r\n"
    };
    assert_refused(
        ferry.addr(),
        "101 field lines",
        fields(101).as_bytes(),
        &[431],
    );
    assert_app_saw_nothing(&ferry, &app, 0);

    // Just within the limits: forwarded.
    let mut conn = RawConn::connect(ferry.addr());
    conn.send(fields(100).as_bytes());
    assert_eq!(
        conn.read_response().unwrap().unwrap().status,
        200,
        "100 field lines are allowed"
    );
    let within = format!(
        "GET /{} HTTP/1.1\r\nHost: x\r\n\r\n",
        "a".repeat(8 * 1024 - 20)
    );
    conn.send(within.as_bytes());
    assert_eq!(
        conn.read_response().unwrap().unwrap().status,
        200,
        "an 8 KiB request line is allowed"
    );
}

#[test]
fn bodies_over_max_body_size_get_413_declared_at_once_chunked_once_crossed() {
    let app = RecordingApp::new();
    let ferry = app.start_ferry(&["--min-instances", "1", "--max-body-size", "1000"]);
    ferry.wait_ready(1, LIMIT);

    // Declared too large: refused on the head alone, the body never sent.
    let head = b"POST /declared HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n";
    let (response, rest) = refused(ferry.addr(), head, Send::Whole);
    assert_eq!(response.status, 413);
    assert!(response.closes(), "{:?}", response.headers);
    assert_eq!(rest, b"");

    // Chunked: refused once the decoded body crosses the limit, before its last chunk.
    let mut conn = RawConn::connect(ferry.addr());
    conn.send(b"POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    let chunk = format!("12c\r\n{}\r\n", "c".repeat(300));
    for _ in 0..4 {
        conn.send(chunk.as_bytes());
    }
    let response = conn
        .read_response()
        .expect("a response once over the limit")
        .expect("a response");
    assert_eq!(response.status, 413);
    assert!(response.closes(), "{:?}", response.headers);
    conn.read_to_end().expect("ferry closes");
    assert_app_saw_nothing(&ferry, &app, 0);

    // Exactly the limit, either way: forwarded whole.
    let mut conn = RawConn::connect(ferry.addr());
    let body = "d".repeat(1000);
    conn.send(
        format!("POST /cl HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{body}").as_bytes(),
    );
    assert_eq!(conn.read_response().unwrap().unwrap().status, 200);
    let te = "POST /te HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n";
    conn.send(format!("{te}\r\n3e8\r\n{body}\r\n0\r\n\r\n").as_bytes());
    assert_eq!(conn.read_response().unwrap().unwrap().status, 200);
    let records = app.records();
    let last_two: Vec<(&[u8], usize)> = records[records.len() - 2..]
        .iter()
        .map(|r| (&r.target[..], r.body.len()))
        .collect();
    assert_eq!(last_two, [(&b"/cl"[..], 1000), (&b"/te"[..], 1000)]);
}

/// Client connections process `pid` holds open: its sockets whose local end is `port` (as
/// /proc/net/tcp lists them), the listening one aside.
fn client_connections(pid: u32, port: u16) -> usize {
    let held: std::collections::HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.flatten()
                .filter_map(|entry| std::fs::read_link(entry.path()).ok())
                .filter_map(|link| {
                    let link = link.to_string_lossy().into_owned();
                    link.strip_prefix("socket:[")
                        .and_then(|rest| rest.strip_suffix(']'))
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    let local_port = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        // sl, local address, remote address, state, ..., inode (the 10th column)
        .filter(|columns| {
            columns.len() > 9 && columns[1].ends_with(&local_port) && columns[3] != "0A"
        })
        .filter(|columns| held.contains(columns[9]))
        .count()
}

/// Raises this process's open-file limit (inherited by ferry) to at least `needed`, or panics
/// saying why it cannot.
fn ensure_open_file_limit(needed: u64) {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_none_or(|current| current >= needed) {
        return;
    }
    assert!(
        limit.maximum.is_none_or(|max| max >= needed),
        "this test needs {needed} open files per process; the hard limit (ulimit -Hn) is {:?}",
        limit.maximum
    );
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(needed),
            maximum: limit.maximum,
        },
    )
    .expect("raise ulimit -n");
}

#[test]
fn slowloris_connections_hold_no_app_process_and_do_not_slow_other_clients() {
    const SLOW_CLIENTS: usize = 500;
    const SENDER_THREADS: usize = 4;
    // 500 sockets here and 500 in ferry (which inherits the limit), with room for the rest.
    ensure_open_file_limit(2 * SLOW_CLIENTS as u64 + 200);
    let ferry = Ferry::start_testapp(&["--min-instances", "1"], &[]);
    ferry.wait_ready(1, LIMIT);
    let (ferry_pid, port) = (ferry.child.id(), ferry.port);
    let held = || client_connections(ferry_pid, port);
    assert_eq!(get(ferry.addr(), "/").expect("GET /").status, 200);
    wait_for(
        "ferry to close the first client's connection",
        LIMIT,
        || (held() == 0).then_some(()),
    );

    // A head that never ends: a long field value, a byte at a time.
    let mut head = b"GET / HTTP/1.1\r\nHost: slow\r\nX-Slow: ".to_vec();
    head.resize(4096, b'z');
    let head = Arc::new(head);
    let conns: Vec<RawConn> = (0..SLOW_CLIENTS)
        .map(|_| RawConn::connect(ferry.addr()))
        .collect();
    let rounds = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut groups: Vec<Vec<RawConn>> = (0..SENDER_THREADS).map(|_| Vec::new()).collect();
    for (i, conn) in conns.into_iter().enumerate() {
        groups[i % SENDER_THREADS].push(conn);
    }
    let senders: Vec<_> = groups
        .into_iter()
        .enumerate()
        .map(|(thread, mut conns)| {
            let (head, rounds, stop) = (head.clone(), rounds.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut sent = 0;
                while !stop.load(Ordering::SeqCst) && sent < head.len() {
                    for conn in &mut conns {
                        assert_eq!(
                            conn.send(&head[sent..sent + 1]),
                            1,
                            "ferry dropped a slow client"
                        );
                    }
                    sent += 1;
                    if thread == 0 {
                        rounds.fetch_add(1, Ordering::SeqCst);
                    }
                    // A byte now and then, per connection.
                    std::thread::sleep(Duration::from_millis(20));
                }
                conns
            })
        })
        .collect();

    wait_for("ferry to hold every slow connection", LIMIT, || {
        (held() == SLOW_CLIENTS).then_some(())
    });
    let mut slowest = Duration::ZERO;
    for _ in 0..10 {
        let started = Instant::now();
        let response = get(ferry.addr(), "/").expect("a normal GET among slow clients");
        slowest = slowest.max(started.elapsed());
        assert_eq!(response.status, 200);
    }
    wait_for("a few bytes sent on every slow connection", LIMIT, || {
        (rounds.load(Ordering::SeqCst) >= 10).then_some(())
    });
    assert!(
        slowest < Duration::from_secs(1),
        "a normal GET took {slowest:?} among {SLOW_CLIENTS} slow clients"
    );
    let status = ferry.status();
    let processes = status["groups"][0]["processes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!processes.is_empty(), "{status}");
    for process in &processes {
        assert_eq!(
            process["sessions"], 0,
            "a slow client holds an app process: {status}"
        );
    }
    assert_eq!(status["groups"][0]["queue"], 0, "{status}");

    stop.store(true, Ordering::SeqCst);
    let conns: Vec<RawConn> = senders
        .into_iter()
        .flat_map(|s| s.join().expect("sender thread"))
        .collect();
    assert_eq!(conns.len(), SLOW_CLIENTS);
    assert!(
        conns.iter().all(|conn| !conn.server_spoke()),
        "ferry answered or closed a slow client within its head deadline"
    );
    drop(conns);
    wait_for("ferry to close every slow connection", LIMIT, || {
        (held() == 0).then_some(())
    });
}

#[test]
fn a_head_not_complete_by_the_header_timeout_gets_408_even_when_dribbled() {
    let ferry = Ferry::start_testapp(&["--min-instances", "1", "--header-timeout", "1"], &[]);
    ferry.wait_ready(1, LIMIT);

    // A partial head, then nothing.
    let (response, rest) = refused(ferry.addr(), b"GET / HTTP/1.1\r\nHost: x\r\n", Send::Whole);
    assert_eq!(response.status, 408);
    assert!(response.closes(), "{:?}", response.headers);
    assert_eq!(rest, b"");

    // A head dribbled a byte at a time: the deadline counts from its first byte.
    let mut conn = RawConn::connect(ferry.addr());
    conn.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Dribble: ");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !conn.server_spoke() {
        assert!(
            Instant::now() < deadline,
            "dribbling kept a head alive for 10 s past a 1 s header timeout"
        );
        if conn.send(b"z") == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let response = conn.read_response().expect("a 408").expect("a response");
    assert_eq!(response.status, 408);
    assert!(response.closes(), "{:?}", response.headers);
}

#[test]
fn a_client_that_stops_reading_a_large_response_does_not_hold_the_app_process() {
    const BYTES: usize = 50_000_000;
    let ferry = Ferry::start_testapp(&["--min-instances", "1"], &[]);
    ferry.wait_ready(1, LIMIT);
    let mut conn = RawConn::connect(ferry.addr());
    conn.send(format!("GET /big?bytes={BYTES} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
    // The client reads nothing; the app finishes anyway and its process is free.
    wait_for(
        "the app process to be free while the client does not read",
        LIMIT,
        || {
            let processes = ferry.processes();
            let free = !processes.is_empty()
                && processes
                    .iter()
                    .all(|p| p["sessions"] == 0 && p["processed"] == 1);
            free.then_some(())
        },
    );
    let response = conn
        .read_response()
        .expect("the whole response, later")
        .expect("a response");
    assert_eq!(response.status, 200);
    assert_eq!(response.body.len(), BYTES);
    // Byte i is b'a' + i % 26: compare in pieces of whole periods (fast even unoptimised).
    let period: Vec<u8> = (b'a'..=b'z').collect::<Vec<u8>>().repeat(1000);
    let intact = response
        .body
        .chunks(period.len())
        .all(|piece| piece == &period[..piece.len()]);
    assert!(intact, "the body arrived intact");
}

#[test]
fn an_app_that_dies_before_its_response_head_gives_502() {
    let ferry = Ferry::start_testapp(&["--min-instances", "1"], &[]);
    ferry.wait_ready(1, LIMIT);
    let response = get(ferry.addr(), "/crash").expect("GET /crash");
    assert_eq!(response.status, 502, "{}", response.text());
}

/// What a client got for a response cut short by the app, read until ferry closes: the head
/// and the body bytes after it, or `None` if nothing at all arrived.
fn cut_response(addr: SocketAddr, target: &str) -> Option<(String, Vec<u8>)> {
    let mut conn = RawConn::connect(addr);
    conn.send(format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
    let everything = conn.read_to_end().expect("ferry closes the connection");
    if everything.is_empty() {
        return None;
    }
    let head_end = everything
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head")
        + 4;
    let head = String::from_utf8_lossy(&everything[..head_end]).to_ascii_lowercase();
    Some((head, everything[head_end..].to_vec()))
}

#[test]
fn an_app_that_dies_mid_body_gets_the_client_connection_cut() {
    let ferry = Ferry::start_testapp(&["--min-instances", "1"], &[]);
    ferry.wait_ready(1, LIMIT);
    // The testapp sends a head with Content-Length: 100 and 10 bytes, then exits. ferry may
    // notice the exit before reading them (then nothing went out yet: a 502 is right), but the
    // client never gets an empty reply.
    let (head, body) = cut_response(ferry.addr(), "/headers-only-then-die")
        .expect("something: a 502, or the response cut short; not an empty reply");
    if head.starts_with("http/1.1 502") {
        return;
    }
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-length: 100\r\n"), "{head}");
    assert_eq!(
        body,
        b"0123456789"[..body.len()],
        "what the app sent before dying, then the cut"
    );
}

/// The app closes its connection 10 bytes into a 100-byte body: the client must get the head
/// and those bytes, then the cut — also when the app's EOF arrives in the same read as the
/// head (an earlier build dropped the client's pending output then, so it got nothing).
#[test]
fn an_app_connection_closed_mid_body_gets_the_head_and_bytes_then_the_cut() {
    let app = RecordingApp::new();
    let ferry = app.start_ferry(&["--min-instances", "1"]);
    ferry.wait_ready(1, LIMIT);
    for attempt in 0..20 {
        let (head, body) = cut_response(ferry.addr(), "/cut").unwrap_or_else(|| {
            panic!("attempt {attempt}: an empty reply, not the head and 10 bytes then a cut")
        });
        assert!(
            head.starts_with("http/1.1 200"),
            "attempt {attempt}: {head}"
        );
        assert!(
            head.contains("content-length: 100\r\n"),
            "attempt {attempt}: {head}"
        );
        assert_eq!(
            body, b"0123456789",
            "attempt {attempt}: the bytes the app sent, then the cut"
        );
    }
}

#[test]
fn an_app_that_answers_garbage_gives_502() {
    let app = RecordingApp::new();
    let ferry = app.start_ferry(&["--min-instances", "1"]);
    ferry.wait_ready(1, LIMIT);
    let response = get(ferry.addr(), "/garbage").expect("GET /garbage");
    assert_eq!(response.status, 502, "{}", response.text());
}

/// A client that sends `Expect: 100-continue` waits for the 100 before sending its body
/// (curl for a second, others for ever): ferry must send it at once, not with the next event
/// on the connection (an earlier build queued it without flushing).
#[test]
fn expect_100_continue_gets_100_then_the_final_response() {
    let app = RecordingApp::new();
    let ferry = app.start_ferry(&["--min-instances", "1"]);
    ferry.wait_ready(1, LIMIT);
    let mut conn = RawConn::connect(ferry.addr());
    conn.send(
        b"POST /expect HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    );
    // ferry sends the 100 itself at once; 3 s only bounds the wait for a broken one.
    conn.set_read_timeout(Duration::from_secs(3));
    let interim = conn
        .read_response()
        .unwrap_or_else(|e| panic!("no 100 Continue within 3 s of the head: {e}"))
        .expect("a response");
    conn.set_read_timeout(Duration::from_secs(10));
    assert_eq!(interim.status, 100);
    assert!(
        app.records().is_empty(),
        "nothing goes to the app before the body is in"
    );
    conn.send(b"hello");
    let response = conn
        .read_response()
        .expect("the final response")
        .expect("a response");
    assert_eq!(
        (response.status, response.body.as_slice()),
        (200, &b"ok"[..])
    );
    let records = app.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].body, b"hello");
    assert_eq!(
        records[0].header("expect"),
        None,
        "ferry answered the expectation itself"
    );
}

const UPGRADE_THEN_PIPELINED: &str =
    "Host: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n";

#[test]
fn an_upgrade_is_tunnelled_once_the_app_answers_101() {
    let app = RecordingApp::new();
    let ferry = app.start_ferry(&["--min-instances", "1"]);
    ferry.wait_ready(1, LIMIT);
    let mut conn = RawConn::connect(ferry.addr());
    // Bytes after the upgrade request belong to the tunnel once the app agrees.
    conn.send(format!("GET /upgrade HTTP/1.1\r\n{UPGRADE_THEN_PIPELINED}").as_bytes());
    let response = conn.read_response().expect("101").expect("a response");
    assert_eq!(response.status, 101);
    assert_eq!(response.header("upgrade"), Some("echo"));
    let early = b"GET /AFTER HTTP/1.1\r\nHOST: X\r\n\r\n";
    assert_eq!(
        conn.read_bytes(early.len())
            .expect("the early bytes echoed"),
        early
    );
    conn.send(b"hello tunnel");
    assert_eq!(
        conn.read_bytes(12).expect("echoed through the tunnel"),
        b"HELLO TUNNEL"
    );
    conn.half_close();
    assert_eq!(conn.read_to_end().expect("the tunnel closes"), b"");
    let targets: Vec<Vec<u8>> = app.records().into_iter().map(|r| r.target).collect();
    assert_eq!(
        targets,
        [b"/upgrade".to_vec()],
        "tunnelled bytes are not requests"
    );
}

#[test]
fn an_upgrade_the_app_declines_stays_plain_http() {
    let app = RecordingApp::new();
    let ferry = app.start_ferry(&["--min-instances", "1"]);
    ferry.wait_ready(1, LIMIT);
    let mut conn = RawConn::connect(ferry.addr());
    conn.send(format!("GET /refuse-upgrade HTTP/1.1\r\n{UPGRADE_THEN_PIPELINED}").as_bytes());
    let response = conn.read_response().expect("200").expect("a response");
    assert_eq!(
        (response.status, response.body.as_slice()),
        (200, &b"not upgraded"[..])
    );
    let next = conn
        .read_response()
        .expect("the pipelined request's response")
        .expect("a response");
    assert_eq!((next.status, next.body.as_slice()), (200, &b"ok"[..]));
    let targets: Vec<Vec<u8>> = app.records().into_iter().map(|r| r.target).collect();
    assert_eq!(targets, [b"/refuse-upgrade".to_vec(), b"/after".to_vec()]);
}

const NOBODY: [&str; 3] = ["--reuid=65534", "--regid=65534", "--clear-groups"];

/// What the other-user checks need: root (to switch to `nobody`), a copy of `ferry` that
/// `nobody` can run, and a registry it can read. Without root the checks fail, saying so: a
/// check that cannot run is not a pass.
fn as_nobody_setup(ferry: &Ferry) -> (ferry_e2e::tempdir::TempDir, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    assert!(
        rustix::process::geteuid().is_root(),
        "the other-user checks need root (to run a command as nobody): run the tests as root"
    );
    let bin = ferry_e2e::tempdir::TempDir::new("ferry-bin");
    std::fs::set_permissions(bin.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        ferry.registry.path(),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let copy = bin.path().join("ferry");
    std::fs::copy(ferry_e2e::ferry_bin(), &copy).expect("copy ferry");
    // A child that another test thread forks while the copy is still open for writing holds
    // that descriptor until it execs, and exec of the copy fails with ETXTBSY meanwhile.
    let version = wait_for("the copy of ferry to be free to run", LIMIT, || {
        let output = Command::new("setpriv")
            .args(NOBODY)
            .arg(&copy)
            .arg("--version")
            .output()
            .expect("setpriv (util-linux) is needed to run a command as another user");
        (!String::from_utf8_lossy(&output.stderr).contains("Text file busy")).then_some(output)
    });
    assert!(
        version.status.success(),
        "nobody cannot run ferry: {}",
        String::from_utf8_lossy(&version.stderr)
    );
    (bin, copy)
}

/// `ferry status --json` run as `nobody`.
fn status_as_nobody(
    ferry_copy: &std::path::Path,
    registry: &std::path::Path,
) -> std::process::Output {
    Command::new("setpriv")
        .args(NOBODY)
        .arg(ferry_copy)
        .args(["status", "--json", "--instance-registry-dir"])
        .arg(registry)
        .output()
        .expect("run setpriv")
}

/// Opens the instance directory and admin socket to everyone for the duration of `f`.
fn opened_up<T>(ferry: &Ferry, f: impl FnOnce() -> T) -> T {
    use std::os::unix::fs::PermissionsExt;
    let (dir, socket) = (
        ferry.instance_dir(),
        ferry.instance_dir().join("admin.sock"),
    );
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let result = f();
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    result
}

/// Connects to the admin socket as `nobody`, optionally sends `command`, and returns what the
/// server sent until it closed (a system Python: the one on the test's PATH may live in a
/// directory `nobody` cannot enter).
fn admin_socket_as_nobody(socket: &std::path::Path, command: &str) -> String {
    const PROBE: &str = r#"import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
try:
    s.sendall(sys.argv[2].encode())
except OSError:
    pass
data = b""
while True:
    try:
        chunk = s.recv(4096)
    except ConnectionResetError:
        break
    if not chunk:
        break
    data += chunk
sys.stdout.write(data.decode("latin-1"))
"#;
    let python = ["/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("a system python3 (/usr/bin/python3) to connect as nobody");
    let out = Command::new("setpriv")
        .args(NOBODY)
        .args([python, "-c", PROBE])
        .arg(socket)
        .arg(command)
        .output()
        .expect("run setpriv");
    assert!(
        out.status.success(),
        "the probe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_admin_socket_is_private_and_refuses_other_users() {
    use std::os::unix::fs::PermissionsExt;
    let ferry = Ferry::start_testapp(&["--min-instances", "1"], &[]);
    ferry.wait_ready(1, LIMIT);
    let dir = ferry.instance_dir();
    let socket = dir.join("admin.sock");
    let mode = |path: &std::path::Path| {
        std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
    };
    assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    assert_eq!(mode(&socket), 0o600, "{}", socket.display());
    let (_bin, copy) = as_nobody_setup(&ferry);

    // The 0700 instance directory hides the server from other users.
    let out = status_as_nobody(&copy, ferry.registry.path());
    assert!(
        !out.status.success(),
        "nobody got a status: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // With the directory and socket opened up, the server itself refuses the other user: a
    // refusal line, never a status, whether or not a command was sent.
    let (silent, asking) = opened_up(&ferry, || {
        (
            admin_socket_as_nobody(&socket, ""),
            admin_socket_as_nobody(&socket, "status\n"),
        )
    });
    assert!(silent.starts_with("refused"), "a refusal reply: {silent:?}");
    assert!(!asking.contains('{'), "nobody got a status: {asking:?}");
    ferry.wait_output("Refused an admin connection from another user", LIMIT);
    // The server's own user still gets its status.
    assert_eq!(
        ferry.status()["groups"][0]["processes"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

/// `ferry status` run by another user says it was refused, not "cannot reach the instance":
/// the server must let the caller's command go through before it closes (an earlier build
/// closed at once, so the caller's write failed with EPIPE).
#[test]
fn ferry_status_run_by_another_user_reports_the_refusal() {
    let ferry = Ferry::start_testapp(&["--min-instances", "1"], &[]);
    ferry.wait_ready(1, LIMIT);
    let (_bin, copy) = as_nobody_setup(&ferry);
    let out = opened_up(&ferry, || status_as_nobody(&copy, ferry.registry.path()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "nobody got a status: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.contains("refused"),
        "the refusal reaches the other user, not a connection error: {stderr}"
    );
}
