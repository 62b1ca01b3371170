//! WSGI apps: ferry's own loader runs `passenger_wsgi.py` apps, Flask included.

use ferry_e2e::{flask_python, get, repo_root, tempdir::TempDir, wait_for, Ferry, HttpClient};
use std::path::Path;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

/// An app directory holding only `passenger_wsgi.py` with `source`.
fn wsgi_app(source: &str) -> TempDir {
    let dir = TempDir::new("ferry-e2e-wsgi");
    std::fs::write(dir.path().join("passenger_wsgi.py"), source).unwrap();
    dir
}

const HELLO: &str = r#"
import os

def application(environ, start_response):
    body = ("Hello from a test WSGI app (pid %d)\n" % os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"#;

#[test]
fn the_hello_wsgi_example_says_hello() {
    let example = repo_root().join("examples/hello-wsgi");
    // Until the example exists, an app of the same kind stands in for it.
    let stand_in;
    let app_dir: &Path = if example.join("passenger_wsgi.py").is_file() {
        &example
    } else {
        stand_in = wsgi_app(HELLO);
        stand_in.path()
    };
    let ferry = Ferry::start(&[app_dir.to_str().unwrap()], &[]);
    let pid = ferry.wait_ready(1, LIMIT)[0];
    let response = get(ferry.addr(), "/").unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(response.text().contains("Hello"), "{}", response.text());
    assert!(
        response.text().contains(&pid.to_string()),
        "served by the pool's process {pid}: {}",
        response.text()
    );
    assert_eq!(ferry.group()["app_type"], "wsgi");
}

const FILE_WRAPPER: &str = r#"
import io, os

class NoPythonReads(io.FileIO):
    def read(self, size=-1):
        raise AssertionError("the file was read through Python")
    readinto = readall = read

def application(environ, start_response):
    name = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data.bin")
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](NoPythonReads(name, "rb"))
"#;

/// `wsgi.file_wrapper` over a real file: the loader sends it with os.sendfile (the app's
/// file cannot be read through Python) and ferry relays every byte.
#[test]
fn a_file_from_wsgi_file_wrapper_reaches_the_client_whole() {
    let app = wsgi_app(FILE_WRAPPER);
    let data: Vec<u8> = (0..5 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(app.path().join("data.bin"), &data).unwrap();
    let ferry = Ferry::start(&[app.path().to_str().unwrap()], &[]);
    ferry.wait_ready(1, LIMIT);
    let mut client = HttpClient::connect(ferry.addr()).unwrap();
    for _ in 0..2 {
        let response = client.get("/").unwrap();
        assert_eq!(
            response.status,
            200,
            "{}",
            String::from_utf8_lossy(&response.body[..response.body.len().min(2000)])
        );
        assert_eq!(response.header("content-length"), Some("5242880"));
        assert!(
            response.body == data,
            "{} bytes, not the file's",
            response.body.len()
        );
    }
}

const RAISES: &str = r#"
import os

def application(environ, start_response):
    if environ["PATH_INFO"] == "/raise":
        raise RuntimeError("kaboom from the test app")
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
"#;

#[test]
fn a_wsgi_app_that_raises_gives_500_and_ferry_keeps_serving() {
    let app = wsgi_app(RAISES);
    let ferry = Ferry::start(&[app.path().to_str().unwrap()], &[]);
    let pid = ferry.wait_ready(1, LIMIT)[0];
    let mut client = HttpClient::connect(ferry.addr()).unwrap();
    let failed = client.get("/raise").unwrap();
    assert_eq!(failed.status, 500, "{}", failed.text());
    assert!(
        failed.text().contains("kaboom from the test app"),
        "development shows the error: {}",
        failed.text()
    );
    for _ in 0..3 {
        let ok = client.get("/").unwrap();
        assert_eq!(ok.status, 200, "{}", ok.text());
        assert_eq!(ok.text(), pid.to_string(), "the same process keeps serving");
    }
    assert_eq!(ferry.total("crashes"), 0);
}

#[test]
fn the_flask_example_runs_under_ferry() {
    let python = flask_python();
    let app = repo_root().join("examples/flask-app");
    assert!(
        app.join("passenger_wsgi.py").is_file(),
        "the Flask example is missing at {}",
        app.display()
    );
    let ferry = Ferry::start(
        &[app.to_str().unwrap(), "--python", python.to_str().unwrap()],
        &[],
    );
    let pid = ferry.wait_ready(1, LIMIT)[0];
    let mut client = HttpClient::connect(ferry.addr()).unwrap();

    let hello = client.get("/").unwrap();
    assert_eq!(hello.status, 200, "{}", hello.text());
    assert!(
        hello.text().contains("Flask") && hello.text().contains(&pid.to_string()),
        "{}",
        hello.text()
    );

    let json = br#"{"ferry":[1,2,3],"ok":true}"#;
    let echo = client
        .request(
            "POST",
            "/echo",
            &[("Content-Type", "application/json")],
            json,
        )
        .unwrap();
    assert_eq!(echo.status, 200, "{}", echo.text());
    let sent: serde_json::Value = serde_json::from_slice(json).unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&echo.body).unwrap(),
        sent
    );

    let stream = client.get("/stream?n=3").unwrap();
    assert_eq!(stream.status, 200);
    let expected: String = (1..=3)
        .map(|i| format!("line {i} of 3 from pid {pid}\n"))
        .collect();
    assert_eq!(stream.text(), expected);
}

const WAITS_FOR_A_FILE: &str = r#"
import os, time

def application(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        release = os.path.join(os.path.dirname(os.path.abspath(__file__)), "release")
        deadline = time.monotonic() + 30
        while not os.path.exists(release) and time.monotonic() < deadline:
            time.sleep(0.01)
    body = ("%s from %d" % (environ["PATH_INFO"], os.getpid())).encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
"#;

/// One WSGI process (`--max-pool-size 1` and `flags`) of WAITS_FOR_A_FILE, with a request to
/// `/slow` in the app; writing the file `release` in the app directory lets it finish.
struct OneHeldRequest {
    app: TempDir,
    ferry: Ferry,
    pid: u32,
    slow: std::thread::JoinHandle<std::io::Result<ferry_e2e::Response>>,
}

impl OneHeldRequest {
    fn start(flags: &[&str]) -> OneHeldRequest {
        let app = wsgi_app(WAITS_FOR_A_FILE);
        let mut args = vec![app.path().to_str().unwrap(), "--max-pool-size", "1"];
        args.extend_from_slice(flags);
        let ferry = Ferry::start(&args, &[]);
        let pid = ferry.wait_ready(1, LIMIT)[0];
        let addr = ferry.addr();
        let slow = std::thread::spawn(move || get(addr, "/slow"));
        let held = OneHeldRequest {
            app,
            ferry,
            pid,
            slow,
        };
        held.wait_sessions(1, "the slow request in the app");
        held
    }

    /// The process's status group once it has `sessions` sessions.
    fn wait_sessions(&self, sessions: u64, what: &str) -> serde_json::Value {
        wait_for(what, LIMIT, || {
            let group = self.ferry.group();
            (group["processes"][0]["sessions"].as_u64() == Some(sessions)).then_some(group)
        })
    }

    /// Lets the slow request finish and checks its answer; returns the server, still running.
    fn release(self) -> Ferry {
        std::fs::write(self.app.path().join("release"), b"").unwrap();
        let slow = self.slow.join().unwrap().unwrap();
        assert_eq!(
            (slow.status, slow.text()),
            (200, format!("/slow from {}", self.pid))
        );
        assert_eq!(self.ferry.total("crashes"), 0);
        self.ferry
    }
}

/// `--concurrency 2` on a WSGI app: ferry hands a process a second request while its first
/// runs, and the loader (one request at a time) starts it as soon as the first is answered;
/// the second waits behind the first inside the process, which is what the option trades
/// for keeping the loader busy (README, "Python WSGI").
#[test]
fn a_wsgi_process_at_concurrency_2_holds_the_next_request_and_serves_both() {
    let held = OneHeldRequest::start(&["--concurrency", "2"]);
    let (addr, pid) = (held.ferry.addr(), held.pid);
    let fast = std::thread::spawn(move || get(addr, "/fast"));
    let group = held.wait_sessions(2, "a second session on the one process");
    assert_eq!(group["queue"], 0, "nothing waits in ferry's queue: {group}");
    assert_eq!(
        (&group["concurrency"], &group["concurrency_model"]),
        (&serde_json::json!(2), &serde_json::json!("process")),
        "{group}"
    );
    assert!(
        !fast.is_finished(),
        "the loader cannot answer the second request while the first holds it"
    );
    let _ferry = held.release(); // serving until the fast answer is in
    let fast = fast.join().unwrap().unwrap();
    assert_eq!(
        (fast.status, fast.text()),
        (200, format!("/fast from {pid}"))
    );
}

/// `--concurrency-model thread`: each request in a thread of its own, so a request waiting
/// in the app does not hold up the next one, on the same process.
#[test]
fn a_threaded_wsgi_process_serves_a_request_while_another_waits_in_the_app() {
    let held = OneHeldRequest::start(&["--concurrency-model", "thread", "--thread-count", "2"]);
    for _ in 0..3 {
        let fast = get(held.ferry.addr(), "/fast").unwrap();
        assert_eq!(fast.status, 200, "{}", fast.text());
        assert_eq!(fast.text(), format!("/fast from {}", held.pid));
    }
    assert!(
        !held.slow.is_finished(),
        "the slow request is still in the app"
    );
    let group = held.ferry.group();
    assert_eq!(
        (&group["concurrency"], &group["concurrency_model"]),
        (&serde_json::json!(2), &serde_json::json!("thread")),
        "{group}"
    );
    held.release();
}
