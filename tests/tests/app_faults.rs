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
