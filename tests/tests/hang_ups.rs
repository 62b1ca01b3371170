//! Clients that hang up while the app works on their request (issue 9). The app process is
//! still busy, so its session stays until the app has finished the response (ferry reads it
//! and drops it): the status shows the process busy, the next request waits in ferry's queue
//! for a free process, and no process is handed more requests than `--concurrency`.

use ferry_e2e::tempdir::TempDir;
use ferry_e2e::{get, process_alive, wait_for, Ferry, RawConn};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

/// Answered once the test creates the test app's `TESTAPP_HOLD_FILE`.
const HELD_REQUEST: &[u8] = b"GET /hold HTTP/1.1\r\nHost: t\r\n\r\n";

/// `field` of each process in the status, in order.
fn per_process(status: &Value, field: &str) -> Vec<u64> {
    let processes = status["groups"][0]["processes"].as_array().unwrap();
    processes
        .iter()
        .map(|p| p[field].as_u64().unwrap())
        .collect()
}

fn sessions(status: &Value) -> Vec<u64> {
    per_process(status, "sessions")
}

/// Of each process's sessions, those whose client has gone.
fn abandoned(status: &Value) -> Vec<u64> {
    per_process(status, "abandoned_sessions")
}

fn queue(status: &Value) -> u64 {
    status["groups"][0]["queue"].as_u64().unwrap()
}

/// The most requests each app process ever ran at once, from `TESTAPP_CONCURRENCY_FILE`.
fn most_at_once(counts: &std::path::Path) -> BTreeMap<u32, u32> {
    let text = std::fs::read_to_string(counts).unwrap_or_default();
    let mut most = BTreeMap::new();
    for line in text.lines() {
        let (pid, now) = line.split_once(' ').expect("`pid count` lines");
        let entry = most.entry(pid.parse().unwrap()).or_insert(0);
        *entry = now.parse::<u32>().unwrap().max(*entry);
    }
    most
}

/// The reproduction: 20 clients on 2 single-threaded processes hang up one after the
/// other. Before, each hang-up freed a process the app was still busy in: the next request
/// went into it, both processes showed idle with an empty queue, and one process ran many
/// requests at once.
#[test]
fn clients_that_hang_up_keep_their_sessions_until_the_app_has_answered() {
    let dir = TempDir::new("ferry-e2e-hangup");
    let counts = dir.path().join("concurrency");
    let release = dir.path().join("release");
    let ferry = Ferry::start_testapp(
        &["--max-pool-size", "2", "--min-instances", "2"],
        &[
            ("TESTAPP_CONCURRENCY_FILE", counts.to_str().unwrap()),
            ("TESTAPP_HOLD_FILE", release.to_str().unwrap()),
        ],
    );
    ferry.wait_ready(2, LIMIT);
    // One after the other, each client hangs up once ferry has its request.
    for arrived in 1..=20 {
        let mut conn = RawConn::connect(ferry.addr());
        conn.send(HELD_REQUEST);
        wait_for("ferry to have the request", LIMIT, || {
            (ferry.status()["totals"]["arrived"] == arrived).then_some(())
        });
    }
    // The queued requests leave at once; the two the app works on keep their sessions.
    let status = wait_for("the queued requests to leave", LIMIT, || {
        let status = ferry.status();
        let cancelled = status["totals"]["cancelled"].as_u64().unwrap();
        (queue(&status) == 0 && cancelled >= 18).then_some(status)
    });
    assert_eq!(sessions(&status), [1, 1], "the app still works: {status}");
    assert_eq!(abandoned(&status), [1, 1], "{status}");
    assert_eq!(status["totals"]["cancelled"], 18, "{status}");
    // The next request waits in ferry's queue, not inside a busy process.
    let addr = ferry.addr();
    let next = std::thread::spawn(move || get(addr, "/pid"));
    let status = wait_for("the next request to reach ferry", LIMIT, || {
        let status = ferry.status();
        (status["totals"]["arrived"] == 21).then_some(status)
    });
    assert_eq!(queue(&status), 1, "{status}");
    assert_eq!(sessions(&status), [1, 1], "{status}");
    // The app finishes the two abandoned requests: a process is free for the next one.
    std::fs::write(&release, "").unwrap();
    let response = next.join().unwrap().expect("GET /pid");
    assert_eq!(response.status, 200, "{}", response.text());
    let status = wait_for("the abandoned requests to end", LIMIT, || {
        let status = ferry.status();
        (status["totals"]["cancelled"] == 20).then_some(status)
    });
    assert_eq!(status["totals"]["served"], 1, "{status}");
    assert_eq!(status["totals"]["failed"], 0, "{status}");
    let most = most_at_once(&counts);
    assert_eq!(most.len(), 2, "both processes ran requests: {most:?}");
    assert!(
        most.values().all(|n| *n == 1),
        "no process ran more than --concurrency 1 request at once: {most:?}"
    );
}

/// An abandoned request that runs into --max-request-time is still cut: its process is
/// stopped and replaced, as when its client waits, and its access log line says 499.
#[test]
fn an_abandoned_request_still_runs_into_max_request_time() {
    let dir = TempDir::new("ferry-e2e-hangup");
    let log = dir.path().join("access.log");
    let ferry = Ferry::start_testapp(
        &[
            "--max-request-time",
            "2",
            "--access-log",
            log.to_str().unwrap(),
        ],
        &[],
    );
    let busy = ferry.wait_ready(1, LIMIT)[0];
    let mut conn = RawConn::connect(ferry.addr());
    conn.send(b"GET /sleep?ms=60000 HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_for("the request to reach the app", LIMIT, || {
        (sessions(&ferry.status()) == [1]).then_some(())
    });
    drop(conn);
    let status = wait_for("the request to be timed out", LIMIT, || {
        let status = ferry.status();
        (status["totals"]["timed_out"] == 1).then_some(status)
    });
    assert_eq!(status["totals"]["cancelled"], 0, "{status}");
    let line = wait_for("the request's access log line", LIMIT, || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.lines().next().map(str::to_string)
    });
    assert!(
        line.contains("\"GET /sleep?ms=60000 HTTP/1.1\" 499 0 "),
        "{line}"
    );
    wait_for("the process to be stopped", LIMIT, || {
        (!process_alive(busy)).then_some(())
    });
    let next = get(ferry.addr(), "/pid").expect("GET /pid");
    assert_eq!(next.status, 200, "{}", next.text());
}

/// A client that leaves in the middle of a streamed response: the app goes on producing it,
/// so the session lasts until its last chunk (read and dropped).
#[test]
fn a_client_gone_mid_response_keeps_the_session_until_the_last_chunk() {
    let ferry = Ferry::start_testapp(&[], &[]);
    ferry.wait_ready(1, LIMIT);
    let mut conn = RawConn::connect(ferry.addr());
    conn.send(b"GET /chunked?n=20&delay_ms=300 HTTP/1.1\r\nHost: t\r\n\r\n");
    let head = conn.read_bytes(b"HTTP/1.1 200".len()).expect("the head");
    assert_eq!(head, b"HTTP/1.1 200");
    drop(conn);
    let status = wait_for("ferry to see the client gone", LIMIT, || {
        let status = ferry.status();
        (abandoned(&status) == [1]).then_some(status)
    });
    assert_eq!(sessions(&status), [1], "{status}");
    let text = String::from_utf8(ferry.ferry_command(&["status"]).stdout).unwrap();
    assert!(
        text.contains("Clients gone: 1 (the app still works on those requests)"),
        "{text}"
    );
    let status = wait_for("the app to finish the response", LIMIT, || {
        let status = ferry.status();
        (sessions(&status) == [0]).then_some(status)
    });
    assert_eq!(status["totals"]["cancelled"], 1, "{status}");
    assert_eq!(status["totals"]["failed"], 0, "{status}");
    let next = get(ferry.addr(), "/pid").expect("GET /pid");
    assert_eq!(next.status, 200, "{}", next.text());
}
