//! A generic async app (tests/asyncapp: stdlib asyncio, answering slowly without holding a
//! thread) under ferry's defaults for generic apps: unlimited concurrency per process, a soft
//! scaling target of 10 sessions (issue 11). The overlap is read from what the app and
//! `ferry status` report, never from wall-clock time.

use ferry_e2e::tempdir::TempDir;
use ferry_e2e::{asyncapp_args, concurrent_gets, wait_for, Ferry, Load};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(30);

fn start(extra: &[&str]) -> Ferry {
    let registry = Arc::new(TempDir::new("ferry-e2e"));
    let ferry = Ferry::start_in(registry, &asyncapp_args(extra), &[]);
    ferry.wait_ready(1, LIMIT);
    ferry
}

/// The app's JSON report in a 200 response.
fn report(outcome: &Result<ferry_e2e::Response, String>) -> Value {
    let response = outcome.as_ref().expect("a response");
    assert_eq!(response.status, 200, "{}", response.text());
    serde_json::from_slice(&response.body).expect("the app answers JSON")
}

/// The most sessions any process of the pool has at once, as `ferry status` shows them.
fn most_sessions(ferry: &Ferry) -> u64 {
    ferry
        .processes()
        .iter()
        .filter_map(|p| p["sessions"].as_u64())
        .max()
        .unwrap_or(0)
}

#[test]
fn twelve_slow_requests_are_all_in_flight_at_once_on_one_process() {
    let ferry = start(&["--max-pool-size", "4"]);
    let addr = ferry.addr();
    let paths = vec!["/sleep?ms=1000".to_string(); 12];
    let clients = std::thread::spawn(move || concurrent_gets(addr, &paths));
    // ferry's own view while they run: one process carrying all twelve.
    wait_for("a process with 12 sessions in ferry status", LIMIT, || {
        (most_sessions(&ferry) >= 12).then_some(())
    });
    let reports: Vec<Value> = clients.join().unwrap().iter().map(report).collect();
    let pids: Vec<u64> = reports.iter().map(|r| r["pid"].as_u64().unwrap()).collect();
    assert!(
        pids.iter().all(|pid| *pid == pids[0]),
        "every request on one process: {pids:?}"
    );
    let peak = reports
        .iter()
        .map(|r| r["peak_in_flight"].as_u64().unwrap())
        .max();
    assert_eq!(
        peak,
        Some(12),
        "the app had all twelve at once: {reports:?}"
    );
    assert_eq!(ferry.total("rejected"), 0);
}

#[test]
fn a_pool_of_async_processes_grows_once_its_sessions_pass_the_target() {
    let ferry = start(&["--max-pool-size", "3"]);
    // 40 clients of 200 ms requests keep about 40 sessions open: four times the default
    // target of 10 per process.
    let loads: Vec<Load> = (0..40)
        .map(|_| Load::start(ferry.addr(), "/sleep?ms=200"))
        .collect();
    let served_by_new = wait_for("a second process serving part of the load", LIMIT, || {
        let processes = ferry.processes();
        let busy = processes
            .iter()
            .filter(|p| p["processed"].as_u64().unwrap_or(0) > 0)
            .count();
        (busy >= 2).then_some(busy)
    });
    let outcomes: Vec<_> = loads.into_iter().flat_map(Load::stop).collect();
    assert!(served_by_new >= 2);
    for outcome in &outcomes {
        let response = outcome.as_ref().expect("every request answered");
        assert_eq!(response.status, 200, "{}", response.text());
    }
    assert_eq!(ferry.total("rejected"), 0);
}

/// Opens a WebSocket-like tunnel (`Upgrade: echo`) and checks that it echoes.
fn open_tunnel(ferry: &Ferry) -> TcpStream {
    let mut stream = TcpStream::connect(ferry.addr()).expect("connect");
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    stream
        .write_all(
            b"GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
        )
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("the 101 head");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    stream.write_all(b"ping").unwrap();
    let mut echo = [0u8; 4];
    stream.read_exact(&mut echo).expect("the echo");
    assert_eq!(&echo, b"ping");
    stream
}

#[test]
fn idle_tunnels_and_long_requests_do_not_make_the_pool_look_full() {
    let ferry = start(&["--max-pool-size", "4"]);
    let tunnels: Vec<TcpStream> = (0..30).map(|_| open_tunnel(&ferry)).collect();
    let addr = ferry.addr();
    let long =
        std::thread::spawn(move || concurrent_gets(addr, &vec!["/sleep?ms=15000".to_string(); 12]));
    wait_for("12 long requests in ferry status", LIMIT, || {
        (most_sessions(&ferry) >= 12).then_some(())
    });
    // Quick requests are answered by the same process, beside the 12 long ones (once the
    // app has them all: ferry counts a session when it forwards) and the 30 tunnels.
    let quick = wait_for(
        "the app to report 12 long requests and 30 tunnels",
        LIMIT,
        || {
            let quick = report(&ferry_e2e::get(ferry.addr(), "/stats").map_err(|e| e.to_string()));
            (quick["in_flight"] == 13).then_some(quick)
        },
    );
    assert_eq!(quick["tunnels"], 30, "{quick}");
    // Tunnels count for neither routing nor scaling. Counted, their 30 beside the 12 long
    // requests would be four processes' worth at the target of 10, and the engine's averaged
    // load (time constant 2 s, engine/src/demand.rs) would pass two processes' worth within
    // 2 s: watching for three time constants shows whether the pool grows.
    let watched_since = Instant::now();
    while watched_since.elapsed() < Duration::from_secs(6) {
        let processes = ferry.processes();
        assert_eq!(processes.len(), 1, "the pool grew: {processes:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(ferry.total("spawns"), 1);
    drop(tunnels);
    for outcome in long.join().unwrap() {
        assert_eq!(report(&outcome)["pid"], quick["pid"]);
    }
}
