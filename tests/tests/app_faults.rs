//! Faults from the app (issue 9): processes that exit between requests, crash storms, broken
//! restarts, hung and abandoned requests. None of them may take the pool down or lose a request
//! that never reached the app.

use ferry_e2e::{pid_of, Ferry, HttpClient};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

/// The app answers a request completely and exits at once (`TESTAPP_CRASH_AFTER=1`); the
/// request pipelined behind it reaches ferry while the process is going. Nothing of it reached
/// the app, so it must be served by the replacement, never answered 502 — whether ferry sees
/// the exit first, the closed keep-alive connection first, or a connection the dying listener
/// took but never accepted.
#[test]
fn a_request_pipelined_behind_the_last_response_of_an_exiting_process_is_served() {
    let ferry = Ferry::start_testapp(&[], &[("TESTAPP_CRASH_AFTER", "1")]);
    ferry.wait_ready(1, LIMIT);
    let mut client = HttpClient::connect(ferry.addr()).unwrap();
    let mut pids = Vec::new();
    for round in 0..6 {
        client
            .send_raw(b"GET /pid HTTP/1.1\r\nHost: t\r\n\r\nGET /pid HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        for which in ["first", "second"] {
            let response = client.read_response(false).unwrap_or_else(|e| {
                panic!(
                    "round {round}, {which} request: {e}\n{}",
                    ferry.output_text()
                )
            });
            assert_eq!(
                response.status,
                200,
                "round {round}, {which} request: {}",
                response.text()
            );
            pids.push(pid_of(&response).expect("a pid"));
        }
    }
    let mut distinct = pids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        pids.len(),
        "each process served one request, as TESTAPP_CRASH_AFTER=1 says: {pids:?}"
    );
}

/// A server that refuses an admin command (another user's `ferry stop`, say) has not stopped
/// or restarted anything: the command must say so and fail, not report success.
#[test]
fn ferry_stop_and_restart_fail_when_the_server_refuses() {
    use std::io::{BufRead, BufReader, Write};
    let registry = ferry_e2e::tempdir::TempDir::new("ferry-refusal");
    let dir = registry.path().join("ferry.fake");
    std::fs::create_dir_all(&dir).unwrap();
    let info = serde_json::json!({
        "instance": "fake", "pid": std::process::id(), "port": 1, "address": "127.0.0.1",
        "app_root": "/nowhere", "version": "0",
    });
    std::fs::write(dir.join("instance.json"), info.to_string()).unwrap();
    let listener = std::os::unix::net::UnixListener::bind(dir.join("admin.sock")).unwrap();
    let server = std::thread::spawn(move || {
        for _ in 0..2 {
            let (stream, _) = listener.accept().unwrap();
            let mut line = String::new();
            BufReader::new(&stream).read_line(&mut line).unwrap();
            (&stream)
                .write_all(b"refused: only root and the server's user may use this socket\n")
                .unwrap();
        }
    });
    for command in ["stop", "restart"] {
        let out = std::process::Command::new(ferry_e2e::ferry_bin())
            .args([command, "--instance-registry-dir"])
            .arg(registry.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "ferry {command} succeeded: {stderr}");
        assert!(
            stderr.contains("refused: only root and the server's user"),
            "ferry {command} names the refusal: {stderr}"
        );
    }
    server.join().unwrap();
}

/// Passenger issue #1621: a process that stops answering (here SIGSTOP) held its request and
/// its session forever. With --max-request-time the request gets a 504 and the process is
/// killed and replaced; status shows how old each process's oldest request is meanwhile.
#[test]
fn a_hung_process_gets_its_request_answered_504_and_is_killed_and_replaced() {
    use ferry_e2e::{get, process_alive, signal, wait_for};
    use rustix::process::Signal;
    let ferry = Ferry::start_testapp(&["--max-request-time", "2"], &[]);
    let hung = ferry.wait_ready(1, LIMIT)[0];
    signal(hung, Signal::STOP);
    let addr = ferry.addr();
    let waiting = std::thread::spawn(move || get(addr, "/pid"));
    let age = wait_for("status to show the request's age", LIMIT, || {
        ferry.processes()[0]["oldest_request_age_s"].as_f64()
    });
    assert!(age >= 0.0, "{age}");
    let response = waiting.join().unwrap().expect("an answer, not a hang");
    assert_eq!(response.status, 504, "{}", response.text());
    assert!(
        response.text().contains("--max-request-time"),
        "{}",
        response.text()
    );
    // Named until the group has been healthy for 10 s (the engine's stable_uptime).
    let error = ferry.group()["last_spawn_error"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(error.contains("max_request_time"), "{error}");
    let next = get(ferry.addr(), "/pid").expect("GET /pid");
    assert_eq!(next.status, 200, "{}", next.text());
    assert_ne!(pid_of(&next), Some(hung), "served by the replacement");
    assert_eq!(ferry.total("timed_out"), 1);
    // SIGTERM waits while it is stopped; SIGKILL follows after the kill timeout (10 s).
    wait_for("the stopped process to be killed", LIMIT, || {
        (!process_alive(hung)).then_some(())
    });
}

/// --max-request-queue-time: a request that waits that long for a busy process gets a 503.
#[test]
fn a_request_queued_longer_than_max_request_queue_time_gets_a_503() {
    use ferry_e2e::{get, wait_for};
    let ferry = Ferry::start_testapp(
        &["--max-request-queue-time", "1", "--max-pool-size", "1"],
        &[],
    );
    ferry.wait_ready(1, LIMIT);
    let addr = ferry.addr();
    let busy = std::thread::spawn(move || get(addr, "/sleep?ms=4000"));
    wait_for("the slow request to reach the app", LIMIT, || {
        (ferry.processes()[0]["sessions"] == 1).then_some(())
    });
    let queued = get(ferry.addr(), "/pid").expect("GET /pid");
    assert_eq!(queued.status, 503, "{}", queued.text());
    assert!(
        queued.text().contains("--max-request-queue-time"),
        "{}",
        queued.text()
    );
    assert_eq!(busy.join().unwrap().expect("the slow one").status, 200);
}

/// A response the app cut short is a failure, whether ferry sees the broken connection or the
/// exit first: status counts it failed, not served.
#[test]
fn a_cut_response_counts_as_failed_not_served() {
    use ferry_e2e::wait_for;
    let ferry = Ferry::start_testapp(&[], &[]);
    ferry.wait_ready(1, LIMIT);
    let mut client = HttpClient::connect(ferry.addr()).unwrap();
    client
        .send_raw(b"GET /headers-only-then-die HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let cut = client.read_response(false);
    assert!(cut.is_err(), "the client sees the response cut: {cut:?}");
    let status = wait_for("the request to be counted", LIMIT, || {
        let status = ferry.status();
        (status["totals"]["failed"].as_u64() == Some(1)).then_some(status)
    });
    assert_eq!(status["totals"]["served"], 0, "{status}");
}
