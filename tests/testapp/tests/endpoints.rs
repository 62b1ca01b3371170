//! Starts the real ferry-testapp binary and talks HTTP/1.1 to it over TCP.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ferry-testapp");
const WAIT: Duration = Duration::from_secs(5);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_exit(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "ferry-testapp did not exit within {WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn stderr_of(child: &mut Child) -> String {
    let mut s = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut s);
    }
    s
}

struct App {
    child: Child,
    port: u16,
}

impl App {
    fn start(env: &[(&str, &str)]) -> App {
        let port = free_port();
        let mut cmd = Command::new(BIN);
        cmd.env("PORT", port.to_string())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "ferry-testapp exited early ({status}): {}",
                    stderr_of(&mut child)
                );
            }
            assert!(
                Instant::now() < deadline,
                "ferry-testapp did not listen within {WAIT:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(
            line,
            format!(
                "ferry-testapp listening on 127.0.0.1:{port} pid {}\n",
                child.id()
            )
        );
        App { child, port }
    }

    fn client(&self) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn send(&mut self, raw: &[u8]) {
        self.writer.write_all(raw).unwrap();
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        line.trim_end_matches(['\r', '\n']).to_string()
    }

    /// Read one response; `head_only` for responses to HEAD.
    fn read(&mut self, head_only: bool) -> Response {
        let status_line = self.line();
        assert!(
            status_line.starts_with("HTTP/1.1 "),
            "status line {status_line:?}"
        );
        let status = status_line[9..12].parse().unwrap();
        let mut headers = Vec::new();
        loop {
            let line = self.line();
            if line.is_empty() {
                break;
            }
            let (n, v) = line.split_once(':').unwrap();
            headers.push((n.to_string(), v.trim().to_string()));
        }
        let mut resp = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if head_only || status == 204 || status == 304 || status / 100 == 1 {
            return resp;
        }
        if resp.header("transfer-encoding") == Some("chunked") {
            loop {
                let size = usize::from_str_radix(&self.line(), 16).unwrap();
                let mut chunk = vec![0; size];
                self.reader.read_exact(&mut chunk).unwrap();
                resp.body.extend(chunk);
                assert_eq!(self.line(), "");
                if size == 0 {
                    break;
                }
            }
        } else if let Some(len) = resp.header("content-length") {
            resp.body = vec![0; len.parse().unwrap()];
            self.reader.read_exact(&mut resp.body).unwrap();
        } else {
            self.reader.read_to_end(&mut resp.body).unwrap();
        }
        resp
    }

    fn get(&mut self, target: &str) -> Response {
        self.send(format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        self.read(false)
    }

    /// True if the server closed the connection (EOF) without sending anything.
    fn at_eof(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.reader.read(&mut b), Ok(0) | Err(_))
    }
}

#[test]
fn hello_pid_and_404_on_one_connection() {
    let app = App::start(&[]);
    let mut c = app.client();
    let r = c.get("/");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.text(),
        format!("Hello from ferry-testapp pid {}\n", app.pid())
    );
    let r = c.get("/pid");
    assert_eq!(r.text(), app.pid().to_string());
    let r = c.get("/nope");
    assert_eq!(r.status, 404);
    // Pipelined requests are answered in order.
    c.send(b"GET /pid HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n");
    assert_eq!(c.read(false).text(), app.pid().to_string());
    assert!(c.read(false).text().starts_with("Hello"));
    // Connection: close is honoured.
    c.send(b"GET /pid HTTP/1.1\r\nConnection: close\r\n\r\n");
    let r = c.read(false);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.at_eof());
}

#[test]
fn echo_records_headers_and_body_exactly() {
    let dir = std::env::temp_dir().join(format!("ferry-testapp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let record = dir.join("record.jsonl");
    let _ = std::fs::remove_file(&record);
    let app = App::start(&[("TESTAPP_RECORD_FILE", record.to_str().unwrap())]);
    let mut c = app.client();
    c.send(
        b"POST /echo?a=1 HTTP/1.1\r\nHost: example\r\nx-lower: one\r\nX-Dup: 1\r\nX-Dup: 2\r\nX-Latin: caf\xe9\r\nContent-Length: 4\r\n\r\n\x00\xffhi",
    );
    let r = c.read(false);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let expected = format!(
        r#"{{"pid":{},"method":"POST","target":"/echo?a=1","version":"HTTP/1.1","headers":[["Host","example"],["x-lower","one"],["X-Dup","1"],["X-Dup","2"],["X-Latin","caf\u00e9"],["Content-Length","4"]],"body_b64":"AP9oaQ=="}}"#,
        app.pid()
    );
    assert_eq!(r.text(), expected);

    // Chunked request body.
    c.send(b"PUT /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nfoo\r\n3\r\nbar\r\n0\r\n\r\n");
    let r = c.read(false);
    assert!(
        r.text().ends_with(r#""body_b64":"Zm9vYmFy"}"#),
        "{}",
        r.text()
    );

    let recorded = std::fs::read_to_string(&record).unwrap();
    let lines: Vec<&str> = recorded.lines().collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0], expected);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn expect_100_continue() {
    let app = App::start(&[]);
    let mut c = app.client();
    c.send(b"POST /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
    let interim = c.read(false);
    assert_eq!(interim.status, 100);
    c.send(b"ok");
    let r = c.read(false);
    assert!(r.text().ends_with(r#""body_b64":"b2s="}"#), "{}", r.text());
}

#[test]
fn status_head_chunked_big_sleep() {
    let app = App::start(&[]);
    let mut c = app.client();
    let r = c.get("/status/204");
    assert_eq!((r.status, r.header("content-length")), (204, None));
    let r = c.get("/status/304");
    assert_eq!(r.status, 304);
    let r = c.get("/status/503");
    assert_eq!((r.status, r.text().as_str()), (503, "status 503\n"));

    c.send(b"HEAD / HTTP/1.1\r\n\r\n");
    let r = c.read(true);
    let hello_len = format!("Hello from ferry-testapp pid {}\n", app.pid()).len();
    assert_eq!(
        r.header("content-length"),
        Some(hello_len.to_string().as_str())
    );

    let r = c.get("/chunked?n=3");
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.text(), "chunk 0\nchunk 1\nchunk 2\n");
    let r = c.get("/chunked?n=2&delay_ms=20");
    assert_eq!(r.text(), "chunk 0\nchunk 1\n");

    for n in [0usize, 10, 100_000] {
        let r = c.get(&format!("/big?bytes={n}"));
        assert_eq!(r.body.len(), n);
        assert!(r
            .body
            .iter()
            .enumerate()
            .all(|(i, &b)| b == b'a' + (i % 26) as u8));
    }

    let t = Instant::now();
    let r = c.get("/sleep?ms=50");
    assert!(t.elapsed() >= Duration::from_millis(50));
    assert_eq!(r.text(), app.pid().to_string());
}

#[test]
fn http10_and_bad_requests() {
    let app = App::start(&[]);
    let mut c = app.client();
    c.send(b"GET /pid HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let r = c.read(false);
    assert_eq!(r.header("connection"), Some("keep-alive"));
    c.send(b"GET /pid HTTP/1.0\r\n\r\n");
    let r = c.read(false);
    assert_eq!(r.text(), app.pid().to_string());
    assert!(c.at_eof());

    let mut c = app.client();
    c.send(b"GET / HTTP/1.1\r\nBad header\r\n\r\n");
    assert_eq!(c.read(false).status, 400);
    assert!(c.at_eof());
}

#[test]
fn crash_endpoint_exits_3_without_answer() {
    let mut app = App::start(&[]);
    let mut c = app.client();
    c.send(b"GET /crash HTTP/1.1\r\n\r\n");
    assert!(c.at_eof());
    assert_eq!(wait_exit(&mut app.child).code(), Some(3));
}

#[test]
fn crash_after_n_requests() {
    let mut app = App::start(&[("TESTAPP_CRASH_AFTER", "2")]);
    let mut c = app.client();
    assert_eq!(c.get("/pid").status, 200);
    assert_eq!(c.get("/pid").status, 200);
    assert_eq!(wait_exit(&mut app.child).code(), Some(3));
    assert!(c.at_eof());
}

#[test]
fn dies_mid_body() {
    let mut app = App::start(&[]);
    let mut c = app.client();
    c.send(b"GET /headers-only-then-die HTTP/1.1\r\n\r\n");
    let status = c.line();
    assert_eq!(status, "HTTP/1.1 200 OK");
    while !c.line().is_empty() {}
    let mut rest = Vec::new();
    let _ = c.reader.read_to_end(&mut rest);
    assert_eq!(rest, b"0123456789");
    assert_eq!(wait_exit(&mut app.child).code(), Some(3));
}

#[test]
fn request_and_startup_delay() {
    let t = Instant::now();
    let app = App::start(&[
        ("TESTAPP_STARTUP_DELAY_MS", "300"),
        ("TESTAPP_REQUEST_DELAY_MS", "100"),
    ]);
    assert!(t.elapsed() >= Duration::from_millis(300));
    let mut c = app.client();
    let t = Instant::now();
    assert_eq!(c.get("/").status, 200);
    assert!(t.elapsed() >= Duration::from_millis(100));
}

#[test]
fn sigterm_exits_0() {
    let mut app = App::start(&[]);
    let mut c = app.client();
    assert_eq!(c.get("/").status, 200);
    let ok = Command::new("kill")
        .arg("-TERM")
        .arg(app.pid().to_string())
        .status()
        .unwrap();
    assert!(ok.success());
    assert_eq!(wait_exit(&mut app.child).code(), Some(0));
}

fn run_to_exit(env: &[(&str, &str)], port: Option<&str>) -> (ExitStatus, String) {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("PORT")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(p) = port {
        cmd.env("PORT", p);
    }
    let mut child = cmd.spawn().unwrap();
    let status = wait_exit(&mut child);
    (status, stderr_of(&mut child))
}

#[test]
fn startup_failures() {
    let port = free_port().to_string();
    let (status, err) = run_to_exit(&[("TESTAPP_FAIL_START", "database is down")], Some(&port));
    assert_eq!(status.code(), Some(1));
    assert!(err.contains("database is down"), "{err}");

    let (status, err) = run_to_exit(&[], None);
    assert_eq!(status.code(), Some(2));
    assert!(err.contains("PORT"), "{err}");

    let (status, err) = run_to_exit(&[], Some("http"));
    assert_eq!(status.code(), Some(2));
    assert!(err.contains("PORT"), "{err}");

    let (status, err) = run_to_exit(&[("TESTAPP_CRASH_AFTER", "x")], Some(&port));
    assert_eq!(status.code(), Some(2));
    assert!(err.contains("TESTAPP_CRASH_AFTER"), "{err}");
}

#[test]
fn hold_answers_once_its_file_exists_and_requests_in_progress_are_counted() {
    let dir = std::env::temp_dir().join(format!("ferry-testapp-hold-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (release, counts) = (dir.join("release"), dir.join("counts"));
    let _ = std::fs::remove_file(&release);
    let _ = std::fs::remove_file(&counts);
    let app = App::start(&[
        ("TESTAPP_HOLD_FILE", release.to_str().unwrap()),
        ("TESTAPP_CONCURRENCY_FILE", counts.to_str().unwrap()),
    ]);
    let (mut first, mut second) = (app.client(), app.client());
    first.send(b"GET /hold HTTP/1.1\r\nHost: t\r\n\r\n");
    second.send(b"GET /hold HTTP/1.1\r\nHost: t\r\n\r\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&counts)
        .unwrap_or_default()
        .lines()
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "both requests counted");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::fs::write(&release, "").unwrap();
    for client in [&mut first, &mut second] {
        let r = client.read(false);
        assert_eq!((r.status, r.text()), (200, app.pid().to_string()));
    }
    assert_eq!(first.get("/pid").status, 200);
    let pid = app.pid();
    let recorded = std::fs::read_to_string(&counts).unwrap();
    let lines: Vec<&str> = recorded.lines().collect();
    let mut held: Vec<String> = lines[..2].iter().map(|l| l.to_string()).collect();
    held.sort();
    assert_eq!(held, [format!("{pid} 1"), format!("{pid} 2")]);
    assert_eq!(
        lines[2..],
        [format!("{pid} 1")],
        "the answered ones count no more"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
