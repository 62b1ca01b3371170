//! `--metrics-address`: `/metrics` parsed by the real Prometheus text parser
//! (`prometheus_client`, in the test venv) with values checked against what the test did;
//! `/health` and `/ready`, which turns 503 as soon as a stop begins while in-flight requests
//! still finish.

use ferry_e2e::{free_port, get, repo_root, wait_for, Ferry, HttpClient};
use serde_json::Value;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

/// The venv's Python with `prometheus_client`, or a failure saying how to get it.
fn python() -> std::path::PathBuf {
    let python = repo_root().join(".venv/bin/python");
    let ok = Command::new(&python)
        .args(["-c", "import prometheus_client"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{} cannot `import prometheus_client`: run .ci/run (it installs tests/requirements.txt \
         into .venv), or `.venv/bin/pip install -r tests/requirements.txt`",
        python.display()
    );
    python
}

/// The samples of a `/metrics` text as the Prometheus parser reads them: (name, labels,
/// value) for each.
fn parse_with_prometheus(text: &str) -> Vec<(String, Value, f64)> {
    const PARSE: &str = "import json, sys\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        print(json.dumps([[s.name, s.labels, s.value] \
        for f in text_string_to_metric_families(sys.stdin.read()) for s in f.samples]))";
    let mut child = Command::new(python())
        .args(["-c", PARSE])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the Prometheus parser refused the text: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    let samples: Vec<(String, Value, f64)> = serde_json::from_slice(&output.stdout).unwrap();
    samples
}

fn value(samples: &[(String, Value, f64)], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == name
                && l.as_object().unwrap().len() == labels.len()
                && labels.iter().all(|(k, v)| l[*k] == *v)
        })
        .unwrap_or_else(|| panic!("no sample {name}{labels:?} in {samples:?}"))
        .2
}

/// The sum of a family's samples, whatever their labels.
fn total(samples: &[(String, Value, f64)], name: &str) -> f64 {
    samples
        .iter()
        .filter(|(n, _, _)| n == name)
        .map(|(_, _, v)| v)
        .sum()
}

fn start(extra: &[&str]) -> (Ferry, SocketAddr) {
    let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let address = metrics.to_string();
    let mut args = vec!["--metrics-address", &address];
    args.extend_from_slice(extra);
    let ferry = Ferry::start_testapp(&args, &[]);
    (ferry, metrics)
}

#[test]
fn metrics_count_what_the_requests_did() {
    let (ferry, metrics) = start(&["--max-pool-size", "1", "--max-request-queue-size", "1"]);
    ferry.wait_ready(1, LIMIT);
    let addr = ferry.addr();
    for _ in 0..3 {
        assert_eq!(get(addr, "/pid").unwrap().status, 200);
    }
    assert_eq!(get(addr, "/status/404").unwrap().status, 404);
    // The one process busy, one request queued: the next is refused with 503.
    let slow = std::thread::spawn(move || get(addr, "/sleep?ms=2000"));
    wait_for("the slow request to reach the app", LIMIT, || {
        (ferry.group()["processes"][0]["sessions"] == 1).then_some(())
    });
    let queued = std::thread::spawn(move || get(addr, "/pid"));
    wait_for("a request to queue", LIMIT, || {
        (ferry.group()["queue"] == 1).then_some(())
    });
    let text = get(metrics, "/metrics").unwrap();
    assert_eq!(
        text.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert_eq!(get(addr, "/refused").unwrap().status, 503);
    // Parsed once the 503 is in: the parser takes a moment to start.
    let during = parse_with_prometheus(&text.text());
    assert_eq!(value(&during, "ferry_request_queue_length", &[]), 1.0);
    assert_eq!(slow.join().unwrap().unwrap().status, 200);
    assert_eq!(queued.join().unwrap().unwrap().status, 200);

    let samples = parse_with_prometheus(&get(metrics, "/metrics").unwrap().text());
    let requests = |code| value(&samples, "ferry_requests_total", &[("code", code)]);
    assert_eq!(
        (requests("2xx"), requests("4xx"), requests("5xx")),
        (5.0, 1.0, 1.0)
    );
    assert_eq!(
        value(
            &samples,
            "ferry_rejected_requests_total",
            &[("reason", "queue_full")]
        ),
        1.0
    );
    let duration = "ferry_request_duration_seconds";
    assert_eq!(value(&samples, &format!("{duration}_count"), &[]), 7.0);
    // The 2 s request and the one queued behind it are the two slower than half a second.
    assert_eq!(
        value(&samples, &format!("{duration}_bucket"), &[("le", "0.5")]),
        5.0
    );
    assert!(value(&samples, &format!("{duration}_sum"), &[]) >= 2.0);
    // Six requests reached the process; the queued one waited for the slow one.
    let wait = "ferry_request_queue_wait_seconds";
    assert_eq!(value(&samples, &format!("{wait}_count"), &[]), 6.0);
    assert_eq!(
        value(&samples, &format!("{wait}_bucket"), &[("le", "0.25")]),
        5.0
    );
    assert_eq!(value(&samples, "ferry_request_queue_length", &[]), 0.0);
    assert_eq!(
        value(&samples, "ferry_processes", &[("state", "ready")]),
        1.0
    );
    assert_eq!(
        value(&samples, "ferry_processes", &[("state", "spawning")]),
        0.0
    );
    assert_eq!(value(&samples, "ferry_max_pool_size", &[]), 1.0);
    assert_eq!(value(&samples, "ferry_ready", &[]), 1.0);
}

#[test]
fn spawns_kills_and_502s_are_counted_by_the_engines_reasons() {
    let (ferry, metrics) = start(&["--max-requests", "2"]);
    let first = ferry.wait_ready(1, LIMIT)[0];
    let addr = ferry.addr();
    assert_eq!(get(addr, "/pid").unwrap().status, 200);
    assert_eq!(get(addr, "/pid").unwrap().status, 200); // its second: retired
    wait_for(
        "the process that served twice to be replaced",
        LIMIT,
        || {
            let ready = ferry.pids_in("ready");
            (ready.len() == 1 && ready[0] != first).then_some(())
        },
    );
    assert_eq!(get(addr, "/crash").unwrap().status, 502);
    let samples = wait_for("the crashed process to be replaced", LIMIT, || {
        let samples = parse_with_prometheus(&get(metrics, "/metrics").ok()?.text());
        let ready = value(&samples, "ferry_processes", &[("state", "ready")]);
        (ready == 1.0).then_some(samples)
    });
    let spawns = |reason| value(&samples, "ferry_spawns_total", &[("reason", reason)]);
    let kills = |reason| value(&samples, "ferry_kills_total", &[("reason", reason)]);
    assert_eq!(spawns("min_instances"), 1.0, "{samples:?}");
    assert_eq!(kills("max_requests"), 1.0, "{samples:?}");
    // The 502 is the engine's when it saw the exit first (counted as failed with reason
    // `crashed`), the driver's when the connection closed first (`no_response`); either way
    // one 5xx and one failed request.
    assert_eq!(
        value(&samples, "ferry_requests_total", &[("code", "5xx")]),
        1.0
    );
    assert_eq!(
        total(&samples, "ferry_failed_requests_total"),
        1.0,
        "{samples:?}"
    );
    let all_spawns = total(&samples, "ferry_spawns_total");
    // Each spawn ferry logged, whatever its reason: the first process, the retired one's
    // replacement, the crashed one's (and one more if ferry gave the crashing request to a
    // fresh process, which crashed too).
    assert!(all_spawns >= 3.0, "{samples:?}");
    wait_for("ferry's log to show each spawn counted", LIMIT, || {
        let logged = ferry.output_text().matches("Spawning app process").count();
        (logged as f64 == all_spawns).then_some(())
    });
}

/// Every request that reached the app and got no complete answer is counted once in
/// `ferry_failed_requests_total`, labelled with what happened, whoever noticed it: the engine
/// (the process died under it, the request ran out of --max-request-time) or the driver (the
/// app closed without answering, answered something that is not HTTP, cut its response).
#[test]
fn every_failed_request_is_counted_once_with_what_happened() {
    let (ferry, metrics) = start(&["--max-request-time", "1"]);
    ferry.wait_ready(1, LIMIT);
    let addr = ferry.addr();
    assert_eq!(get(addr, "/close").unwrap().status, 502);
    assert_eq!(get(addr, "/garbage").unwrap().status, 502);
    let mut client = HttpClient::connect(addr).unwrap();
    client
        .send_raw(b"GET /cut HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let cut = client.read_response(false);
    assert!(cut.is_err(), "the client sees the response cut: {cut:?}");
    assert_eq!(get(addr, "/sleep?ms=5000").unwrap().status, 504);
    assert_eq!(get(addr, "/crash").unwrap().status, 502);
    wait_for("the engine to count five failed requests", LIMIT, || {
        (ferry.status()["totals"]["failed"] == 5).then_some(())
    });
    let samples = parse_with_prometheus(&get(metrics, "/metrics").unwrap().text());
    let failed = |reason| {
        samples
            .iter()
            .filter(|(n, l, _)| n == "ferry_failed_requests_total" && l["reason"] == reason)
            .map(|(_, _, v)| v)
            .sum::<f64>()
    };
    assert_eq!(
        total(&samples, "ferry_failed_requests_total"),
        5.0,
        "each failed request once: {samples:?}"
    );
    assert_eq!(failed("invalid_response"), 1.0, "{samples:?}");
    assert_eq!(failed("response_cut"), 1.0, "{samples:?}");
    assert_eq!(failed("request_timeout"), 1.0, "{samples:?}");
    // The crash is the engine's when it saw the exit first, the driver's (the connection
    // closed without an answer) when it saw the close first.
    assert_eq!(
        failed("no_response") + failed("crashed"),
        2.0,
        "{samples:?}"
    );
    assert!(failed("no_response") >= 1.0, "{samples:?}");
    assert_eq!(
        value(&samples, "ferry_requests_total", &[("code", "5xx")]),
        4.0,
        "three 502s and a 504; the cut response counts under its status, 200"
    );
    let log = ferry.output_text();
    for reason in ["no_response", "invalid_response", "response_cut"] {
        assert!(
            log.contains(&format!("({reason})")),
            "{reason} in the log:\n{log}"
        );
    }
}

#[test]
fn ready_turns_503_when_a_stop_begins_while_in_flight_requests_finish() {
    let (mut ferry, metrics) = start(&[]);
    ferry.wait_ready(1, LIMIT);
    let health = get(metrics, "/health").unwrap();
    assert_eq!((health.status, health.text().as_str()), (200, "ok\n"));
    assert_eq!(get(metrics, "/ready").unwrap().status, 200);
    let addr = ferry.addr();
    let slow = std::thread::spawn(move || get(addr, "/sleep?ms=1500"));
    wait_for("the slow request to reach the app", LIMIT, || {
        (ferry.group()["processes"][0]["sessions"] == 1).then_some(())
    });
    ferry_e2e::signal(ferry.child.id(), rustix::process::Signal::TERM);
    wait_for("/ready to answer 503", LIMIT, || {
        (get(metrics, "/ready").ok()?.status == 503).then_some(())
    });
    assert_eq!(get(metrics, "/health").unwrap().status, 200, "still up");
    assert!(
        !slow.is_finished(),
        "the stop began before the request ended"
    );
    assert_eq!(slow.join().unwrap().unwrap().status, 200);
    assert_eq!(ferry.wait_exit(LIMIT).code(), Some(0));
}

/// A client that opens the metrics listener and sends nothing, or half a request, is cut
/// after --header-timeout: a scraper that hangs cannot hold a connection for ever.
#[test]
fn a_metrics_connection_without_a_whole_request_is_closed() {
    use std::io::{Read, Write};
    let (_ferry, metrics) = start(&["--header-timeout", "1"]);
    let silent = std::net::TcpStream::connect(metrics).unwrap();
    let mut half = std::net::TcpStream::connect(metrics).unwrap();
    half.write_all(b"GET /metr").unwrap();
    for (what, mut stream) in [("sending nothing", silent), ("half a request", half)] {
        stream.set_read_timeout(Some(LIMIT)).unwrap();
        let mut buf = [0u8; 256];
        let read = stream.read(&mut buf);
        assert!(
            matches!(read, Ok(0)),
            "a connection {what} is closed within {LIMIT:?}: {read:?}"
        );
    }
    assert_eq!(get(metrics, "/health").unwrap().status, 200);
}

#[test]
fn other_paths_and_a_taken_address_get_clear_answers() {
    let (_ferry, metrics) = start(&[]);
    let response = get(metrics, "/").unwrap();
    assert_eq!(response.status, 404);
    assert!(response.text().contains("GET /metrics, /health and /ready"));
    // The same address again: refused at start, naming the flag.
    let registry = ferry_e2e::tempdir::TempDir::new("ferry-e2e-metrics");
    let args = ferry_e2e::testapp_args(&["--metrics-address", &metrics.to_string()]);
    let mut all = vec!["start", "--port", "0"];
    all.extend(args.iter().map(String::as_str));
    let finished = ferry_e2e::run_ferry(&all, registry.path(), LIMIT);
    assert!(!finished.status.success());
    assert!(
        finished
            .stderr
            .contains(&format!("--metrics-address {metrics}: cannot listen there")),
        "{}",
        finished.stderr
    );
}
