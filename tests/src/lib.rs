//! Helpers for ferry's end-to-end tests: start the real `ferry` binary on loopback against
//! real app processes, talk HTTP to it, read `ferry status --json`, and clean up.
//!
//! Every wait here polls a condition with a deadline; none sleeps a guessed time.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The workspace's build output directory holding `ferry` and `ferry-testapp`.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>
    exe.parent().and_then(Path::parent).expect("target directory").to_path_buf()
}

pub fn ferry_bin() -> PathBuf {
    std::env::var_os("FERRY_BIN").map(PathBuf::from).unwrap_or_else(|| bin_dir().join("ferry"))
}

pub fn testapp_bin() -> PathBuf {
    std::env::var_os("FERRY_TESTAPP_BIN").map(PathBuf::from).unwrap_or_else(|| bin_dir().join("ferry-testapp"))
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repo root").to_path_buf()
}

/// Polls `condition` every few milliseconds until it returns `Some`, or panics naming `what`
/// after `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut condition: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(2);
    loop {
        if let Some(value) = condition() {
            return value;
        }
        if Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// A free loopback port (another process could take it before ferry binds it; tests accept
/// that small race as every port-picking harness does).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running `ferry start`, stopped and cleaned up when dropped.
pub struct Ferry {
    pub child: Child,
    pub port: u16,
    pub registry: tempdir::TempDir,
    /// Every line ferry printed (stdout and log), for assertions and for failure reports.
    pub output: Arc<Mutex<Vec<String>>>,
}

/// Temporary directories without an extra crate: a unique path under the system temp dir.
pub mod tempdir {
    use std::path::{Path, PathBuf};

    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new(prefix: &str) -> TempDir {
            use std::sync::atomic::{AtomicU64, Ordering};
            static COUNTER: AtomicU64 = AtomicU64::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!("{prefix}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).expect("create temp dir");
            TempDir(path)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn pump(stream: impl Read + Send + 'static, sink: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
}

impl Ferry {
    /// Starts `ferry start <args>` on a free port with its own instance registry and waits
    /// until it accepts connections.
    pub fn start(args: &[&str], envs: &[(&str, &str)]) -> Ferry {
        let port = free_port();
        let registry = tempdir::TempDir::new("ferry-e2e");
        let mut command = Command::new(ferry_bin());
        command
            .arg("start")
            .args(args)
            .arg("--port")
            .arg(port.to_string())
            .arg("--address")
            .arg("127.0.0.1")
            .arg("--instance-registry-dir")
            .arg(registry.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in envs {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("start ferry");
        let output = Arc::new(Mutex::new(Vec::new()));
        pump(child.stdout.take().unwrap(), output.clone());
        pump(child.stderr.take().unwrap(), output.clone());
        let mut ferry = Ferry { child, port, registry, output };
        wait_for("ferry to accept connections", Duration::from_secs(20), || {
            if let Ok(Some(status)) = ferry.child.try_wait() {
                panic!("ferry exited early ({status}): {}", ferry.output_text());
            }
            TcpStream::connect(ferry.addr()).ok()
        });
        ferry
    }

    /// `ferry start` with the generic test app.
    pub fn start_testapp(args: &[&str], envs: &[(&str, &str)]) -> Ferry {
        let command = testapp_bin().display().to_string();
        let app_dir = repo_root().join("tests");
        let mut all = vec![app_dir.to_str().unwrap(), "--app-start-command", &command];
        all.extend_from_slice(args);
        Ferry::start(&all, envs)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn output_text(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }

    /// Runs `ferry <args>` against this instance's registry.
    pub fn ferry_command(&self, args: &[&str]) -> std::process::Output {
        Command::new(ferry_bin())
            .args(args)
            .arg("--instance-registry-dir")
            .arg(self.registry.path())
            .output()
            .expect("run ferry")
    }

    /// `ferry status --json`, parsed.
    pub fn status(&self) -> Value {
        let out = self.ferry_command(&["status", "--json"]);
        assert!(out.status.success(), "ferry status failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("status is JSON")
    }

    pub fn processes(&self) -> Vec<Value> {
        self.status()["groups"][0]["processes"].as_array().cloned().unwrap_or_default()
    }

    /// PIDs of processes in the given state ("ready", "spawning", …).
    pub fn pids_in(&self, state: &str) -> Vec<u32> {
        self.processes()
            .iter()
            .filter(|p| p["state"] == state)
            .filter_map(|p| p["pid"].as_u64().map(|pid| pid as u32))
            .collect()
    }

    /// Waits until `count` processes are ready (and none other is alive), returning their
    /// PIDs.
    pub fn wait_ready(&self, count: usize, limit: Duration) -> Vec<u32> {
        wait_for(&format!("{count} ready processes"), limit, || {
            let processes = self.processes();
            let ready = self.pids_in("ready");
            (ready.len() == count && processes.len() == count).then_some(ready)
        })
    }

    /// Sends SIGINT (Ctrl-C) and waits for ferry to exit; returns its exit status.
    pub fn interrupt(&mut self) -> std::process::ExitStatus {
        signal(self.child.id(), rustix::process::Signal::INT);
        wait_for("ferry to exit", Duration::from_secs(30), || self.child.try_wait().ok().flatten())
    }
}

impl Drop for Ferry {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            signal(self.child.id(), rustix::process::Signal::INT);
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn signal(pid: u32, signal: rustix::process::Signal) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

pub fn process_alive(pid: u32) -> bool {
    // A zombie is dead for our purposes: its state letter in /proc is Z.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next()) != Some("Z"),
        Err(_) => false,
    }
}

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A minimal HTTP/1.1 client over one keep-alive connection, for tests. Reads
/// Content-Length and chunked bodies.
pub struct HttpClient {
    stream: BufReader<TcpStream>,
}

impl HttpClient {
    pub fn connect(addr: SocketAddr) -> std::io::Result<HttpClient> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_nodelay(true)?;
        Ok(HttpClient { stream: BufReader::new(stream) })
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.get_mut().write_all(bytes)
    }

    pub fn get(&mut self, path: &str) -> std::io::Result<Response> {
        self.send_raw(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())?;
        self.read_response(false)
    }

    pub fn read_response(&mut self, head_request: bool) -> std::io::Result<Response> {
        let mut line = String::new();
        if self.stream.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.stream.read_line(&mut line)?;
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            if let Some((name, value)) = trimmed.split_once(':') {
                headers.push((name.trim().to_string(), value.trim().to_string()));
            }
        }
        let mut response = Response { status, headers, body: Vec::new() };
        if head_request || status == 204 || status == 304 || status < 200 {
            return Ok(response);
        }
        if response.header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            loop {
                line.clear();
                self.stream.read_line(&mut line)?;
                let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                    .map_err(|_| std::io::Error::other("bad chunk size"))?;
                if size == 0 {
                    loop {
                        line.clear();
                        self.stream.read_line(&mut line)?;
                        if line.trim().is_empty() {
                            break;
                        }
                    }
                    break;
                }
                let mut chunk = vec![0; size + 2];
                self.stream.read_exact(&mut chunk)?;
                response.body.extend_from_slice(&chunk[..size]);
            }
        } else if let Some(length) = response.header("content-length") {
            let length: usize = length.parse().map_err(|_| std::io::Error::other("bad content-length"))?;
            response.body = vec![0; length];
            self.stream.read_exact(&mut response.body)?;
        } else {
            self.stream.read_to_end(&mut response.body)?;
        }
        Ok(response)
    }
}

/// One GET on a fresh connection.
pub fn get(addr: SocketAddr, path: &str) -> std::io::Result<Response> {
    HttpClient::connect(addr)?.get(path)
}
