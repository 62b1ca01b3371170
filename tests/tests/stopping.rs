//! Stops: what a client sees while ferry stops, and how app processes are told to go.

use ferry_e2e::{get, wait_for, Ferry, HttpClient};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

fn signal_stop(ferry: &Ferry) {
    ferry_e2e::signal(ferry.child.id(), rustix::process::Signal::TERM);
}

#[test]
fn a_request_queued_when_the_stop_begins_is_served() {
    let mut ferry = Ferry::start_testapp(&["--max-pool-size", "1", "--concurrency", "1"], &[]);
    ferry.wait_ready(1, LIMIT);
    let addr = ferry.addr();
    let first = std::thread::spawn(move || get(addr, "/sleep?ms=1500"));
    wait_for("the first request to reach the app", LIMIT, || {
        (ferry.group()["processes"][0]["sessions"] == 1).then_some(())
    });
    let second = std::thread::spawn(move || get(addr, "/pid"));
    wait_for("the second request to queue", LIMIT, || {
        (ferry.group()["queue"] == 1).then_some(())
    });
    signal_stop(&ferry);
    let first = first
        .join()
        .unwrap()
        .expect("the first request is answered");
    let second = second
        .join()
        .unwrap()
        .expect("the second request is answered");
    assert_eq!(first.status, 200);
    assert_eq!(
        second.status,
        200,
        "the queued request is served within --shutdown-timeout: {}",
        second.text()
    );
    let status = ferry.wait_exit(LIMIT);
    assert_eq!(status.code(), Some(0), "{}", ferry.output_text());
}

#[test]
fn a_keep_alive_response_finished_during_a_stop_says_connection_close() {
    let mut ferry = Ferry::start_testapp(&[], &[]);
    ferry.wait_ready(1, LIMIT);
    let mut client = HttpClient::connect(ferry.addr()).unwrap();
    assert_eq!(client.get("/pid").unwrap().status, 200);
    client
        .send_raw(b"GET /sleep?ms=1500 HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    wait_for("the request to reach the app", LIMIT, || {
        (ferry.group()["processes"][0]["sessions"] == 1).then_some(())
    });
    signal_stop(&ferry);
    let response = client.read_response(false).unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("connection").map(str::to_ascii_lowercase),
        Some("close".to_string()),
        "the client must learn the connection ends: {:?}",
        response.headers
    );
    ferry.wait_exit(LIMIT);
}

#[test]
fn processes_still_busy_at_the_shutdown_timeout_get_sigterm_before_sigkill() {
    // The test app exits 0 on SIGTERM, even mid-request: an exit status 0 shows the SIGTERM
    // came first; a SIGKILL would show as "killed by signal 9".
    let mut ferry = Ferry::start_testapp(&["--shutdown-timeout", "1"], &[]);
    let pid = ferry.wait_ready(1, LIMIT)[0];
    let addr = ferry.addr();
    let slow = std::thread::spawn(move || get(addr, "/sleep?ms=15000"));
    wait_for("the request to reach the app", LIMIT, || {
        (ferry.group()["processes"][0]["sessions"] == 1).then_some(())
    });
    signal_stop(&ferry);
    ferry.wait_exit(LIMIT);
    let _ = slow.join();
    ferry.wait_output(&format!("App process {pid} exited"), LIMIT);
    let output = ferry.output_text();
    assert!(
        output.contains(&format!("App process {pid} exited (exit status 0)")),
        "{output}"
    );
}
