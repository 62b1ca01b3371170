//! `--access-log`: a line for every request, whoever answered it (the app, ferry's 503, 502
//! and 400, a static file, an upgraded connection once it ends), in the combined format
//! plus the request time and pid or as JSON; reopened on SIGUSR1 so rotation loses nothing;
//! a path that cannot be opened refused at start.

use ferry_e2e::tempdir::TempDir;
use ferry_e2e::{pid_of, run_ferry, wait_for, Ferry, HttpClient, Load, RawConn, RecordingApp};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

/// One combined line, split into its fields.
#[derive(Debug)]
struct Line {
    client: String,
    request: String,
    status: u16,
    body_bytes: u64,
    referer: String,
    user_agent: String,
    request_time_s: f64,
    pid: Option<u32>,
}

fn parse_line(line: &str) -> Line {
    // Quotes inside fields are escaped (\x22): splitting at quotes finds the fields.
    let parts: Vec<&str> = line.split('"').collect();
    assert_eq!(
        parts.len(),
        7,
        "not a combined line with a time and a pid: {line}"
    );
    let prefix: Vec<&str> = parts[0].split_whitespace().collect();
    assert_eq!(&prefix[1..3], ["-", "-"], "{line}");
    assert!(
        prefix[3].starts_with('[') && prefix[4] == "+0000]",
        "a [time] in UTC: {line}"
    );
    let middle: Vec<&str> = parts[2].split_whitespace().collect();
    let tail: Vec<&str> = parts[6].split_whitespace().collect();
    assert_eq!(tail.len(), 2, "{line}");
    let (seconds, millis) = tail[0].split_once('.').expect("seconds.millis");
    assert_eq!(millis.len(), 3, "milliseconds: {line}");
    assert!(seconds.parse::<u64>().is_ok(), "{line}");
    Line {
        client: prefix[0].to_string(),
        request: parts[1].to_string(),
        status: middle[0].parse().unwrap(),
        body_bytes: middle[1].parse().unwrap(),
        referer: parts[3].to_string(),
        user_agent: parts[5].to_string(),
        request_time_s: tail[0].parse().unwrap(),
        pid: (tail[1] != "-").then(|| tail[1].parse().expect("a pid")),
    }
}

fn lines_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Waits until the log holds `count` lines (they are written at the end of a round).
fn wait_lines(path: &Path, count: usize) -> Vec<String> {
    wait_for(
        &format!("{count} lines in {}", path.display()),
        LIMIT,
        || {
            let lines = lines_of(path);
            (lines.len() >= count).then_some(lines)
        },
    )
}

fn curl(args: &[&str]) -> (u16, String) {
    let output = Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl must be installed (apt-get install -y curl)");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').expect("curl printed the status");
    (code.parse().expect("a status"), body.to_string())
}

#[test]
fn every_request_gets_a_line_matching_what_the_client_did() {
    let dir = TempDir::new("ferry-e2e-access");
    let log = dir.path().join("access.log");
    let public = dir.path().join("public");
    std::fs::create_dir_all(&public).unwrap();
    std::fs::write(public.join("hello.txt"), "hello, static\n").unwrap();
    let ferry = Ferry::start_testapp(
        &[
            "--max-pool-size",
            "1",
            "--max-request-queue-size",
            "1",
            "--static-files-dir",
            public.to_str().unwrap(),
            "--access-log",
            log.to_str().unwrap(),
        ],
        &[],
    );
    ferry.wait_ready(1, LIMIT);
    let base = format!("http://{}", ferry.addr());
    let (status, pid) = curl(&[
        "-A",
        "ferry-test/1 \"quoted\"",
        "-e",
        "http://ref.example/",
        &format!("{base}/pid?x=1"),
    ]);
    assert_eq!(status, 200);
    assert_eq!(curl(&[&format!("{base}/status/404")]).0, 404);
    assert_eq!(curl(&[&format!("{base}/hello.txt")]).0, 200);
    // A head the parser refuses: 400, no request line to log.
    let mut bad = RawConn::connect(ferry.addr());
    bad.send(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n");
    assert_eq!(bad.read_response().unwrap().unwrap().status, 400);
    // The one process busy, one request queued: the next is refused with 503 at once.
    let addr = ferry.addr();
    let slow = std::thread::spawn(move || ferry_e2e::get(addr, "/sleep?ms=1500"));
    wait_for("the slow request to reach the app", LIMIT, || {
        (ferry.group()["processes"][0]["sessions"] == 1).then_some(())
    });
    let queued = std::thread::spawn(move || ferry_e2e::get(addr, "/pid"));
    wait_for("a request to queue", LIMIT, || {
        (ferry.group()["queue"] == 1).then_some(())
    });
    assert_eq!(curl(&[&format!("{base}/refused")]).0, 503);
    let slow = slow.join().unwrap().unwrap();
    let queued = queued.join().unwrap().unwrap();
    assert_eq!(queued.status, 200);
    // The app process dies during the request: 502.
    let crash_pid = pid_of(&queued).expect("the pid");
    assert_eq!(curl(&[&format!("{base}/crash")]).0, 502);

    let lines: Vec<Line> = wait_lines(&log, 8).iter().map(|l| parse_line(l)).collect();
    assert_eq!(lines.len(), 8, "{lines:#?}");
    let find = |request: &str| -> &Line {
        lines
            .iter()
            .find(|l| l.request == request)
            .unwrap_or_else(|| panic!("no line for {request}: {lines:#?}"))
    };
    let first = find("GET /pid?x=1 HTTP/1.1");
    assert_eq!(first.client, "127.0.0.1");
    assert_eq!((first.status, first.body_bytes), (200, pid.len() as u64));
    assert_eq!(first.pid, Some(pid.parse().unwrap()));
    assert_eq!(first.referer, "http://ref.example/");
    assert_eq!(first.user_agent, r"ferry-test/1 \x22quoted\x22");
    let not_found = find("GET /status/404 HTTP/1.1");
    assert_eq!(not_found.status, 404);
    assert!(not_found.user_agent.starts_with("curl/"), "{not_found:?}");
    let file = find("GET /hello.txt HTTP/1.1");
    assert_eq!((file.status, file.body_bytes, file.pid), (200, 14, None));
    let refused = find("-");
    assert_eq!((refused.status, refused.pid), (400, None));
    let rejected = find("GET /refused HTTP/1.1");
    assert_eq!((rejected.status, rejected.pid), (503, None));
    let sleep = find("GET /sleep?ms=1500 HTTP/1.1");
    assert_eq!((sleep.status, sleep.pid), (200, pid_of(&slow)));
    assert!(
        sleep.request_time_s >= 1.5 && sleep.request_time_s < 10.0,
        "{sleep:?}"
    );
    // The pid is the last process the request went to: ferry may give a request the app
    // dropped unread to a new process, which crashes too.
    let crashed = find("GET /crash HTTP/1.1");
    assert_eq!(crashed.status, 502);
    let crashed_pid = crashed.pid.expect("the pid of the process that crashed");
    let output = ferry.output_text();
    assert!(
        crashed_pid == crash_pid || output.contains(&format!("App process {crash_pid} refused")),
        "{crashed:?}\n{output}"
    );
    // The 502 can go out before ferry sees the process's exit (its socket closed first).
    ferry.wait_output(&format!("App process {crashed_pid} exited"), LIMIT);
}

#[test]
fn an_upgraded_connection_is_logged_when_it_ends() {
    let dir = TempDir::new("ferry-e2e-access");
    let log = dir.path().join("access.log");
    let app = RecordingApp::new();
    let ferry = app.start_ferry(&["--access-log", log.to_str().unwrap()]);
    ferry.wait_ready(1, LIMIT);
    let mut conn = RawConn::connect(ferry.addr());
    conn.send(b"GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n");
    assert_eq!(conn.read_response().unwrap().unwrap().status, 101);
    conn.send(b"hello");
    assert_eq!(conn.read_bytes(5).unwrap(), b"HELLO");
    assert!(
        lines_of(&log).is_empty(),
        "not logged while the tunnel is open"
    );
    conn.half_close();
    assert_eq!(conn.read_to_end().unwrap(), b"");
    let lines = wait_lines(&log, 1);
    let line = parse_line(&lines[0]);
    assert_eq!(
        (line.request.as_str(), line.status),
        ("GET /upgrade HTTP/1.1", 101)
    );
    assert!(line.pid.is_some(), "{line:?}");
}

#[test]
fn sigusr1_reopens_the_log_so_rotation_loses_no_line() {
    let dir = TempDir::new("ferry-e2e-access");
    let log = dir.path().join("access.log");
    let rotated = dir.path().join("access.log.1");
    let ferry = Ferry::start_testapp(&["--access-log", log.to_str().unwrap()], &[]);
    ferry.wait_ready(1, LIMIT);
    let load = Load::start(ferry.addr(), "/pid");
    load.wait_more(50, LIMIT);
    std::fs::rename(&log, &rotated).unwrap();
    load.wait_more(20, LIMIT); // still going to the renamed file
    ferry_e2e::signal(ferry.child.id(), rustix::process::Signal::USR1);
    wait_lines(&log, 20);
    let outcomes = load.stop();
    assert!(outcomes.iter().all(|o| o.is_ok()), "every request answered");
    let total = outcomes.len();
    wait_for("every request logged", LIMIT, || {
        (lines_of(&rotated).len() + lines_of(&log).len() == total).then_some(())
    });
    for line in lines_of(&rotated).iter().chain(&lines_of(&log)) {
        assert_eq!(parse_line(line).status, 200, "{line}");
    }
    assert!(lines_of(&rotated).len() >= 70);
    assert!(
        ferry.output_text().contains("Reopened the access log"),
        "{}",
        ferry.output_text()
    );
}

#[test]
fn json_lines_parse_and_carry_each_field() {
    let dir = TempDir::new("ferry-e2e-access");
    let log = dir.path().join("access.json");
    let ferry = Ferry::start_testapp(
        &[
            "--access-log",
            log.to_str().unwrap(),
            "--access-log-format",
            "json",
        ],
        &[],
    );
    ferry.wait_ready(1, LIMIT);
    let mut client = HttpClient::connect(ferry.addr()).unwrap();
    let response = client
        .request("GET", "/pid", &[("User-Agent", "json-test")], b"")
        .unwrap();
    let lines = wait_lines(&log, 1);
    let json: serde_json::Value = serde_json::from_str(&lines[0]).expect("a JSON line");
    assert_eq!(json["method"], "GET");
    assert_eq!(json["target"], "/pid");
    assert_eq!(json["protocol"], "HTTP/1.1");
    assert_eq!(json["status"], 200);
    assert_eq!(json["body_bytes"], response.body.len() as u64);
    assert_eq!(json["user_agent"], "json-test");
    assert!(json["referer"].is_null());
    assert_eq!(json["remote_addr"], "127.0.0.1");
    assert_eq!(json["pid"].as_u64().map(|p| p as u32), pid_of(&response));
    assert!(json["request_time"].as_f64().unwrap() < 10.0);
    let time = json["time"].as_str().unwrap();
    assert!(
        time.ends_with('Z') && time.len() == "2026-12-02T01:00:00.250Z".len(),
        "{time}"
    );
}

#[test]
fn a_log_path_that_cannot_be_opened_is_refused_at_start() {
    let registry = TempDir::new("ferry-e2e-access");
    // A port of its own: the default one may be taken by another test.
    let port = ferry_e2e::free_port().to_string();
    let args = ferry_e2e::testapp_args(&[
        "--access-log",
        "/nonexistent-dir/access.log",
        "--port",
        &port,
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let finished = run_ferry(&[&["start"], &args[..]].concat(), registry.path(), LIMIT);
    assert!(!finished.status.success());
    assert!(
        finished
            .stderr
            .contains("--access-log /nonexistent-dir/access.log: cannot open it for writing"),
        "{}",
        finished.stderr
    );
}

/// The app still works on the request after its client left: the line is written when the
/// app is done (its request time covers the app's work, as a replay needs), status 499.
#[test]
fn a_client_gone_before_its_answer_is_logged_as_499() {
    let dir = TempDir::new("ferry-e2e-access");
    let log = dir.path().join("access.log");
    let ferry = Ferry::start_testapp(&["--access-log", log.to_str().unwrap()], &[]);
    ferry.wait_ready(1, LIMIT);
    let mut conn = RawConn::connect(ferry.addr());
    conn.send(b"GET /sleep?ms=3000 HTTP/1.1\r\nHost: x\r\n\r\n");
    wait_for("the request to reach the app", LIMIT, || {
        (ferry.group()["processes"][0]["sessions"] == 1).then_some(())
    });
    drop(conn);
    let lines = wait_lines(&log, 1);
    let line = parse_line(&lines[0]);
    assert_eq!(
        (line.request.as_str(), line.status, line.body_bytes),
        ("GET /sleep?ms=3000 HTTP/1.1", 499, 0)
    );
    assert!(line.pid.is_some() && line.request_time_s >= 3.0, "{line:?}");
}

#[test]
fn a_request_cut_by_max_request_time_is_logged_as_504() {
    let dir = TempDir::new("ferry-e2e-access");
    let log = dir.path().join("access.log");
    let ferry = Ferry::start_testapp(
        &[
            "--access-log",
            log.to_str().unwrap(),
            "--max-request-time",
            "1",
        ],
        &[],
    );
    ferry.wait_ready(1, LIMIT);
    assert_eq!(
        ferry_e2e::get(ferry.addr(), "/sleep?ms=5000")
            .unwrap()
            .status,
        504
    );
    let line = parse_line(&wait_lines(&log, 1)[0]);
    assert_eq!(
        (line.request.as_str(), line.status),
        ("GET /sleep?ms=5000 HTTP/1.1", 504)
    );
    assert!(line.pid.is_some() && line.request_time_s >= 1.0, "{line:?}");
}
