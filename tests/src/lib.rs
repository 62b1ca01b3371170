//! Helpers for ferry's end-to-end tests: start the real `ferry` binary on loopback against
//! real app processes, talk HTTP to it, read `ferry status --json`, and clean up.
//!
//! Every wait here polls a condition with a deadline; none sleeps a guessed time.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The workspace's build output directory holding `ferry` and `ferry-testapp`.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>
    exe.parent()
        .and_then(Path::parent)
        .expect("target directory")
        .to_path_buf()
}

pub fn ferry_bin() -> PathBuf {
    std::env::var_os("FERRY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| bin_dir().join("ferry"))
}

pub fn testapp_bin() -> PathBuf {
    std::env::var_os("FERRY_TESTAPP_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| bin_dir().join("ferry-testapp"))
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
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
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `ferry start`, stopped and cleaned up when dropped.
pub struct Ferry {
    pub child: Child,
    pub port: u16,
    /// Shared when several instances run in one registry (see [`Ferry::start_in`]).
    pub registry: Arc<tempdir::TempDir>,
    /// Every line ferry printed (stdout and log), for assertions and for failure reports.
    pub output: Arc<Mutex<Vec<String>>>,
}

/// Temporary directories without an extra crate: a unique path under the system temp dir.
pub mod tempdir {
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    /// A temporary directory (tempfile's), removed when dropped. Mode 0755 rather than
    /// tempfile's 0700, as a plain `mkdir` makes it: some tests run things as another user
    /// (an app under `--user`, `ferry status` as nobody) that must see inside.
    pub struct TempDir(tempfile::TempDir);

    impl TempDir {
        pub fn new(prefix: &str) -> TempDir {
            let dir = tempfile::Builder::new()
                .prefix(&format!("{prefix}-"))
                .tempdir()
                .expect("create a temporary directory");
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
                .expect("make the temporary directory readable");
            TempDir(dir)
        }

        pub fn path(&self) -> &Path {
            self.0.path()
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
        Ferry::start_in(Arc::new(tempdir::TempDir::new("ferry-e2e")), args, envs)
    }

    /// Like [`Ferry::start`], in the given instance registry (which other instances may
    /// share).
    pub fn start_in<S: AsRef<std::ffi::OsStr>>(
        registry: Arc<tempdir::TempDir>,
        args: &[S],
        envs: &[(&str, &str)],
    ) -> Ferry {
        Ferry::start_with(registry, args, envs, None)
    }

    /// Like [`Ferry::start_in`], run from the directory `cwd` when given.
    pub fn start_with<S: AsRef<std::ffi::OsStr>>(
        registry: Arc<tempdir::TempDir>,
        args: &[S],
        envs: &[(&str, &str)],
        cwd: Option<&Path>,
    ) -> Ferry {
        Ferry::start_full(registry, args, envs, cwd, |_| {})
    }

    /// Like [`Ferry::start_in`], with `configure` applied to the command first (to set
    /// resource limits in `pre_exec`, say).
    pub fn start_configured<S: AsRef<std::ffi::OsStr>>(
        registry: Arc<tempdir::TempDir>,
        args: &[S],
        envs: &[(&str, &str)],
        configure: impl FnOnce(&mut Command),
    ) -> Ferry {
        Ferry::start_full(registry, args, envs, None, configure)
    }

    fn start_full<S: AsRef<std::ffi::OsStr>>(
        registry: Arc<tempdir::TempDir>,
        args: &[S],
        envs: &[(&str, &str)],
        cwd: Option<&Path>,
        configure: impl FnOnce(&mut Command),
    ) -> Ferry {
        let port = free_port();
        let mut command = Command::new(ferry_bin());
        if let Some(cwd) = cwd {
            command.current_dir(cwd);
        }
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
        configure(&mut command);
        let mut child = command.spawn().expect("start ferry");
        let output = Arc::new(Mutex::new(Vec::new()));
        pump(child.stdout.take().unwrap(), output.clone());
        pump(child.stderr.take().unwrap(), output.clone());
        let mut ferry = Ferry {
            child,
            port,
            registry,
            output,
        };
        // The port listens a moment before the instance is registered, and the admin socket
        // file exists a moment before it listens: wait until both accept connections, so that
        // `ferry status` reaches the instance from the start.
        let admin_socket = ferry.instance_dir().join("admin.sock");
        wait_for(
            "ferry to accept connections and register",
            Duration::from_secs(20),
            || {
                if let Ok(Some(status)) = ferry.child.try_wait() {
                    panic!("ferry exited early ({status}): {}", ferry.output_text());
                }
                let admin = std::os::unix::net::UnixStream::connect(&admin_socket).is_ok();
                (admin && TcpStream::connect(ferry.addr()).is_ok()).then_some(())
            },
        );
        ferry
    }

    /// `ferry start` with the generic test app.
    pub fn start_testapp(args: &[&str], envs: &[(&str, &str)]) -> Ferry {
        Ferry::start_in(
            Arc::new(tempdir::TempDir::new("ferry-e2e")),
            &testapp_args(args),
            envs,
        )
    }

    /// `ferry start` with the generic test app, in the given instance registry.
    pub fn start_testapp_in(
        registry: Arc<tempdir::TempDir>,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> Ferry {
        Ferry::start_in(registry, &testapp_args(args), envs)
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

    /// Starts `ferry <args>` against this instance's registry without waiting for it (its
    /// output is piped; read it with `wait_with_output`).
    pub fn spawn_command(&self, args: &[&str]) -> Child {
        Command::new(ferry_bin())
            .args(args)
            .arg("--instance-registry-dir")
            .arg(self.registry.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run ferry")
    }

    /// `ferry status --json`, parsed.
    pub fn status(&self) -> Value {
        let out = self.ferry_command(&["status", "--json"]);
        assert!(
            out.status.success(),
            "ferry status failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("status is JSON")
    }

    pub fn processes(&self) -> Vec<Value> {
        self.status()["groups"][0]["processes"]
            .as_array()
            .cloned()
            .unwrap_or_default()
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

    /// PIDs of every app process the status lists, whatever its state.
    pub fn all_pids(&self) -> Vec<u32> {
        self.processes()
            .iter()
            .filter_map(|p| p["pid"].as_u64().map(|pid| pid as u32))
            .collect()
    }

    /// The status's `totals` counter `name` (`spawns`, `crashes`, `idle_shutdowns`, …).
    pub fn total(&self, name: &str) -> u64 {
        let status = self.status();
        status["totals"][name]
            .as_u64()
            .unwrap_or_else(|| panic!("status has no totals.{name}: {status}"))
    }

    /// The first app group of the status.
    pub fn group(&self) -> Value {
        self.status()["groups"][0].clone()
    }

    /// The instance directory this server registered: `<registry>/ferry.<pid>`.
    pub fn instance_dir(&self) -> PathBuf {
        self.registry
            .path()
            .join(format!("ferry.{}", self.child.id()))
    }

    /// Waits (bounded) for ferry to exit on its own; returns its exit status.
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        wait_for("ferry to exit", limit, || {
            self.child.try_wait().ok().flatten()
        })
    }

    /// Waits until ferry has printed a line containing `needle` (its output is read by
    /// background threads, so it can trail the event that caused it).
    pub fn wait_output(&self, needle: &str, limit: Duration) {
        let what = format!("ferry to print {needle:?}");
        wait_for(&what, limit, || {
            self.output
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains(needle))
                .then_some(())
        });
    }

    /// Sends SIGINT (Ctrl-C) and waits for ferry to exit; returns its exit status.
    pub fn interrupt(&mut self) -> std::process::ExitStatus {
        signal(self.child.id(), rustix::process::Signal::INT);
        wait_for("ferry to exit", Duration::from_secs(30), || {
            self.child.try_wait().ok().flatten()
        })
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

pub fn testapp_args(args: &[&str]) -> Vec<String> {
    let mut all = vec![
        repo_root().join("tests").display().to_string(),
        "--app-start-command".to_string(),
        testapp_bin().display().to_string(),
    ];
    all.extend(one_session_unless_given(args));
    all
}

/// `ferry start` arguments serving the stdlib asyncio test app (tests/asyncapp), then `args`:
/// a generic app with ferry's defaults for one (unlimited concurrency) unless `args` say more.
pub fn asyncapp_args(args: &[&str]) -> Vec<String> {
    let app = repo_root().join("tests").join("asyncapp");
    let mut all = vec![
        app.display().to_string(),
        "--app-start-command".to_string(),
        format!("python3 '{}'", app.join("asyncapp.py").display()),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    all
}

/// `args`, with `--concurrency 1` first unless they give one: the tests of a generic app were
/// written for one session per process (a WSGI app's default; a generic app's is unlimited),
/// where a second concurrent request queues or spawns.
pub fn one_session_unless_given(args: &[&str]) -> Vec<String> {
    let given = args.iter().any(|a| {
        a.starts_with("--concurrency") || a.starts_with("--force-max-concurrent-requests")
    });
    let pinned = if given {
        &[][..]
    } else {
        &["--concurrency", "1"][..]
    };
    pinned.iter().chain(args).map(|a| a.to_string()).collect()
}

pub fn signal(pid: u32, signal: rustix::process::Signal) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// Whether `pid` runs (a zombie is dead for our purposes).
pub fn process_alive(pid: u32) -> bool {
    ferry::instance::process_alive(pid)
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
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
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
        Ok(HttpClient {
            stream: BufReader::new(stream),
        })
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.get_mut().write_all(bytes)
    }

    pub fn get(&mut self, path: &str) -> std::io::Result<Response> {
        self.send_raw(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())?;
        self.read_response(false)
    }

    /// One HTTP/1.1 request with extra header lines and a Content-Length body (sent only
    /// when `body` is not empty); reads its response.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<Response> {
        let mut message = format!("{method} {path} HTTP/1.1\r\nHost: test\r\n");
        for (name, value) in headers {
            message.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() {
            message.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        message.push_str("\r\n");
        let mut bytes = message.into_bytes();
        bytes.extend_from_slice(body);
        self.send_raw(&bytes)?;
        self.read_response(method == "HEAD")
    }

    /// Everything the server sends until it closes the connection.
    pub fn read_to_end(&mut self) -> std::io::Result<Vec<u8>> {
        let mut rest = Vec::new();
        self.stream.read_to_end(&mut rest)?;
        Ok(rest)
    }

    pub fn set_read_timeout(&self, timeout: Duration) {
        self.stream
            .get_ref()
            .set_read_timeout(Some(timeout))
            .expect("set read timeout");
    }

    pub fn tcp(&self) -> &TcpStream {
        self.stream.get_ref()
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
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if head_request || status == 204 || status == 304 || status < 200 {
            return Ok(response);
        }
        if response
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
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
            let length: usize = length
                .parse()
                .map_err(|_| std::io::Error::other("bad content-length"))?;
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

/// The outcome of one request a test client sent: a response, or how the exchange broke.
pub type Outcome = Result<Response, String>;

/// The pid in a `/pid` or `/sleep` response body.
pub fn pid_of(response: &Response) -> Option<u32> {
    response.text().trim().parse().ok()
}

/// GETs of `paths`, each on its own connection from its own thread, all released at once.
/// Returns the outcomes in the order of `paths`.
pub fn concurrent_gets(addr: SocketAddr, paths: &[String]) -> Vec<Outcome> {
    let barrier = Arc::new(Barrier::new(paths.len()));
    let handles: Vec<JoinHandle<Outcome>> = paths
        .iter()
        .map(|path| {
            let (barrier, path) = (barrier.clone(), path.clone());
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    barrier.wait();
                    get(addr, &path).map_err(|e| e.to_string())
                })
                .expect("spawn a client thread")
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("client thread"))
        .collect()
}

/// A client thread that keeps sending GET `path` (one at a time, on a keep-alive connection
/// it reopens when it breaks) until stopped, recording every outcome in order.
pub struct Load {
    stop: Arc<AtomicBool>,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    done: Arc<AtomicUsize>,
    handle: Option<JoinHandle<()>>,
}

impl Load {
    pub fn start(addr: SocketAddr, path: &str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let done = Arc::new(AtomicUsize::new(0));
        let (thread_stop, thread_outcomes, thread_done, path) = (
            stop.clone(),
            outcomes.clone(),
            done.clone(),
            path.to_string(),
        );
        let handle = std::thread::spawn(move || {
            let mut client: Option<HttpClient> = None;
            while !thread_stop.load(Ordering::SeqCst) {
                let outcome = match client.as_mut() {
                    Some(c) => c.get(&path).map_err(|e| e.to_string()),
                    None => match HttpClient::connect(addr) {
                        Ok(c) => client.insert(c).get(&path).map_err(|e| e.to_string()),
                        Err(e) => Err(format!("connect: {e}")),
                    },
                };
                let reusable = outcome.as_ref().is_ok_and(|r| {
                    !r.header("connection")
                        .is_some_and(|v| v.eq_ignore_ascii_case("close"))
                });
                if !reusable {
                    client = None;
                }
                thread_outcomes.lock().unwrap().push(outcome);
                thread_done.fetch_add(1, Ordering::SeqCst);
                // Pacing, so that the load stays modest next to tests running in parallel.
                std::thread::sleep(Duration::from_millis(3));
            }
        });
        Load {
            stop,
            outcomes,
            done,
            handle: Some(handle),
        }
    }

    /// Requests completed (answered or failed) so far.
    pub fn completed(&self) -> usize {
        self.done.load(Ordering::SeqCst)
    }

    /// Waits until `more` requests beyond those completed now have completed.
    pub fn wait_more(&self, more: usize, limit: Duration) {
        let target = self.completed() + more;
        wait_for(
            &format!("{target} requests of the client load"),
            limit,
            || (self.completed() >= target).then_some(()),
        )
    }

    /// Stops the client and returns every outcome, in order.
    pub fn stop(mut self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(handle) = self.handle.take() {
            handle.join().expect("load thread");
        }
        std::mem::take(&mut *self.outcomes.lock().unwrap())
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// A finished `ferry` command run without a server of the harness.
pub struct Finished {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `ferry <args>` with `--instance-registry-dir registry`, waiting (bounded) for it to
/// exit. A command that does not exit in `limit` is killed and the test fails.
pub fn run_ferry(args: &[&str], registry: &Path, limit: Duration) -> Finished {
    run_ferry_with_env(args, &[], registry, limit)
}

/// [`run_ferry`] with extra environment variables.
pub fn run_ferry_with_env(
    args: &[&str],
    envs: &[(&str, &str)],
    registry: &Path,
    limit: Duration,
) -> Finished {
    let mut child = Command::new(ferry_bin())
        .args(args)
        .arg("--instance-registry-dir")
        .arg(registry)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ferry");
    let (stdout, stderr) = (
        Arc::new(Mutex::new(Vec::new())),
        Arc::new(Mutex::new(Vec::new())),
    );
    let readers = [
        collect(child.stdout.take().unwrap(), stdout.clone()),
        collect(child.stderr.take().unwrap(), stderr.clone()),
    ];
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for ferry") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`ferry {}` did not exit within {limit:?}; it printed: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&stdout.lock().unwrap()),
                String::from_utf8_lossy(&stderr.lock().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    for reader in readers {
        let _ = reader.join();
    }
    let text =
        |bytes: &Arc<Mutex<Vec<u8>>>| String::from_utf8_lossy(&bytes.lock().unwrap()).into_owned();
    Finished {
        status,
        stdout: text(&stdout),
        stderr: text(&stderr),
    }
}

fn collect(mut stream: impl Read + Send + 'static, sink: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    })
}

/// Standard base64 with padding, to compare with the test app's `body_b64`.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP exchanges and a recording app, for corpus.rs and hardening.rs.

/// A generic app in Python (standard library only) that records every request it receives,
/// whatever its target, as one JSON line in the file named by its first argument:
/// `{"method","target","version","headers":[[name,value],..],"body_b64"}` (raw bytes as latin-1
/// strings), written before it answers. It answers `200 ok`, except on these paths:
/// `/garbage` (bytes that are not HTTP, then close), `/cut` (a head with Content-Length: 100,
/// 10 body bytes, then close), `/upgrade` with `Upgrade: echo` (101, then
/// it echoes what it gets in upper case), `/refuse-upgrade` (200 `not upgraded`, whatever the
/// request asks).
pub const RECORDING_APP_PY: &str = r#"import base64, json, os, socket, sys, threading

RECORDS = sys.argv[1]
LOCK = threading.Lock()


def record(method, target, version, headers, body):
    line = json.dumps({
        "method": method.decode("latin-1"),
        "target": target.decode("latin-1"),
        "version": version.decode("latin-1"),
        "headers": [[n.decode("latin-1"), v.decode("latin-1")] for n, v in headers],
        "body_b64": base64.b64encode(body).decode("ascii"),
    }) + "\n"
    with LOCK:
        fd = os.open(RECORDS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode("ascii"))
        finally:
            os.close(fd)


def respond(conn, status, body):
    head = "HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % (status, len(body))
    conn.sendall(head.encode("ascii") + body)


def serve(conn):
    buf = b""
    while True:
        while b"\r\n\r\n" not in buf:
            data = conn.recv(65536)
            if not data:
                return
            buf += data
        head, buf = buf.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        method, target, version = parts[0], b" ".join(parts[1:-1]), parts[-1]
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            # ferry writes "name: value": drop exactly the space it adds, keep anything else.
            headers.append((name, value[1:] if value.startswith(b" ") else value))
        lower = {n.lower(): v for n, v in headers}
        length = int(lower.get(b"content-length", b"0"))
        while len(buf) < length:
            data = conn.recv(65536)
            if not data:
                return
            buf += data
        body, buf = buf[:length], buf[length:]
        record(method, target, version, headers, body)
        path = target.split(b"?")[0]
        if path == b"/cut":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
            return
        if path == b"/garbage":
            conn.sendall(b"THIS IS NOT HTTP\r\n\r\n")
            return
        if path == b"/upgrade" and lower.get(b"upgrade", b"").lower() == b"echo":
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
            data = buf
            while True:
                if data:
                    conn.sendall(data.upper())
                data = conn.recv(65536)
                if not data:
                    return
        if path == b"/refuse-upgrade":
            respond(conn, "200 OK", b"not upgraded")
        elif b"transfer-encoding" in lower:
            # ferry sends bodies de-chunked: this request cannot be framed; say so and stop.
            respond(conn, "500 Internal Server Error", b"Transfer-Encoding reached the app")
            return
        else:
            respond(conn, "200 OK", b"ok")


def serve_closing(conn):
    try:
        serve(conn)
    except OSError:
        pass
    finally:
        conn.close()


def main():
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", int(os.environ["PORT"])))
    listener.listen(128)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve_closing, args=(conn,), daemon=True).start()


main()
"#;

/// One request as the recording app received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub method: Vec<u8>,
    pub target: Vec<u8>,
    pub version: Vec<u8>,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Record {
    /// The value of the first field named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.as_slice())
    }
}

/// [`RECORDING_APP_PY`] in a directory of its own, with its record file.
pub struct RecordingApp {
    pub dir: tempdir::TempDir,
    pub record_file: PathBuf,
}

impl Default for RecordingApp {
    fn default() -> Self {
        RecordingApp::new()
    }
}

impl RecordingApp {
    pub fn new() -> RecordingApp {
        let dir = tempdir::TempDir::new("ferry-recorder");
        std::fs::write(dir.path().join("recorder.py"), RECORDING_APP_PY)
            .expect("write the recording app");
        let record_file = dir.path().join("records.jsonl");
        std::fs::write(&record_file, "").expect("create the record file");
        RecordingApp { dir, record_file }
    }

    /// `ferry start` arguments that serve this app (APP_DIR, --app-start-command), then `extra`.
    pub fn ferry_args(&self, extra: &[&str]) -> Vec<String> {
        let script = self.dir.path().join("recorder.py");
        let mut args = vec![
            self.dir.path().display().to_string(),
            "--app-start-command".to_string(),
            format!(
                "python3 '{}' '{}'",
                script.display(),
                self.record_file.display()
            ),
        ];
        args.extend(one_session_unless_given(extra));
        args
    }

    /// `ferry start` serving this app, in a registry of its own.
    pub fn start_ferry(&self, extra: &[&str]) -> Ferry {
        Ferry::start_in(
            Arc::new(tempdir::TempDir::new("ferry-e2e")),
            &self.ferry_args(extra),
            &[],
        )
    }

    /// Every request recorded so far, in arrival order.
    pub fn records(&self) -> Vec<Record> {
        let text = std::fs::read_to_string(&self.record_file).expect("read the record file");
        text.lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                let json: Value =
                    serde_json::from_str(line).unwrap_or_else(|e| panic!("record {line:?}: {e}"));
                let text = |key: &str| {
                    latin1_bytes(
                        json[key]
                            .as_str()
                            .unwrap_or_else(|| panic!("{key} in {line}")),
                    )
                };
                Record {
                    method: text("method"),
                    target: text("target"),
                    version: text("version"),
                    headers: json["headers"]
                        .as_array()
                        .expect("headers")
                        .iter()
                        .map(|pair| {
                            (
                                latin1_bytes(pair[0].as_str().unwrap()),
                                latin1_bytes(pair[1].as_str().unwrap()),
                            )
                        })
                        .collect(),
                    body: base64_decode(json["body_b64"].as_str().expect("body_b64")),
                }
            })
            .collect()
    }
}

/// Latin-1 text to bytes and base64 decoding, shared with the corpus support.
pub use ferry_http::corpus::{base64_decode, latin1_bytes};

/// A response as read off a raw connection.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The response says the server closes the connection after it.
    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
    }
}

/// One client connection driven byte by byte: whatever bytes a test wants to send (broken
/// requests included), and responses parsed from what comes back. A reset by the server
/// counts as its close (Linux still delivers what arrived before it).
pub struct RawConn {
    pub stream: TcpStream,
    buf: Vec<u8>,
    /// The server reset the connection (rather than closing it with a FIN).
    pub reset: bool,
}

impl RawConn {
    /// Connects with TCP_NODELAY and a 10 s read timeout (every wait in a test is bounded).
    pub fn connect(addr: SocketAddr) -> RawConn {
        let stream = TcpStream::connect(addr).expect("connect to ferry");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        RawConn {
            stream,
            buf: Vec::new(),
            reset: false,
        }
    }

    pub fn set_read_timeout(&self, timeout: Duration) {
        self.stream
            .set_read_timeout(Some(timeout))
            .expect("read timeout");
    }

    /// Writes `bytes` in one go, as far as the server takes them (it may refuse and close
    /// before the end). Returns how many were written.
    pub fn send(&mut self, bytes: &[u8]) -> usize {
        let mut written = 0;
        while written < bytes.len() {
            match self.stream.write(&bytes[written..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => written += n,
            }
        }
        written
    }

    /// Writes `bytes` one byte per write (TCP_NODELAY, so one segment each), stopping as soon
    /// as the server has answered or closed, or a write fails. Returns how many were written.
    pub fn send_bytewise(&mut self, bytes: &[u8]) -> usize {
        for (i, byte) in bytes.iter().enumerate() {
            if self.server_spoke() || self.stream.write_all(std::slice::from_ref(byte)).is_err() {
                return i;
            }
        }
        bytes.len()
    }

    /// Whether the server has sent something or closed, without waiting.
    pub fn server_spoke(&self) -> bool {
        if !self.buf.is_empty() {
            return true;
        }
        self.stream.set_nonblocking(true).expect("non-blocking");
        let spoke = !matches!(self.stream.peek(&mut [0u8; 1]), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
        self.stream.set_nonblocking(false).expect("blocking");
        spoke
    }

    /// Ends the sending direction (the server reads end of file).
    pub fn half_close(&self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
    }

    /// Reads more into the buffer; `Ok(false)` at the server's close.
    fn fill(&mut self) -> std::io::Result<bool> {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    self.reset = true;
                    return Ok(false);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads until `n` bytes are buffered; false if the server closed first.
    fn fill_to(&mut self, n: usize) -> std::io::Result<bool> {
        while self.buf.len() < n {
            if !self.fill()? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Reads one response (an interim 1xx one too). `Ok(None)`: the server closed before a
    /// response began. A response cut short is an error naming what arrived.
    pub fn read_response(&mut self) -> std::io::Result<Option<RawResponse>> {
        let head_end = loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            if !self.fill()? {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                let partial = String::from_utf8_lossy(&self.buf).into_owned();
                return Err(std::io::Error::other(format!(
                    "closed within a response head: {partial:?}"
                )));
            }
        };
        let head: Vec<u8> = self.buf.drain(..head_end).collect();
        let head = String::from_utf8_lossy(&head).into_owned();
        let mut lines = head.trim_end().split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let status: u16 = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.to_string(), value.trim().to_string()))
            .collect();
        let mut response = RawResponse {
            status,
            headers,
            body: Vec::new(),
        };
        if status < 200 || status == 204 || status == 304 {
            return Ok(Some(response));
        }
        let cut = |what: &str| std::io::Error::other(format!("response {status} cut short {what}"));
        if response
            .header("transfer-encoding")
            .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
        {
            loop {
                let line_end = loop {
                    if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                        break end;
                    }
                    if !self.fill()? {
                        return Err(cut("in a chunk size"));
                    }
                };
                let line = String::from_utf8_lossy(&self.buf[..line_end]).into_owned();
                self.buf.drain(..line_end + 2);
                let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                    .map_err(|_| {
                    std::io::Error::other(format!("bad chunk size line {line:?}"))
                })?;
                if size == 0 {
                    // Trailers, then the empty line.
                    loop {
                        let end = loop {
                            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                                break end;
                            }
                            if !self.fill()? {
                                return Err(cut("in the trailers"));
                            }
                        };
                        self.buf.drain(..end + 2);
                        if end == 0 {
                            return Ok(Some(response));
                        }
                    }
                }
                if !self.fill_to(size + 2)? {
                    return Err(cut("in a chunk"));
                }
                response.body.extend(self.buf.drain(..size));
                self.buf.drain(..2);
            }
        } else if let Some(length) = response.header("content-length") {
            let length: usize = length
                .parse()
                .map_err(|_| std::io::Error::other("bad Content-Length"))?;
            if !self.fill_to(length)? {
                let got = self.buf.len();
                return Err(cut(&format!("after {got} of {length} body bytes")));
            }
            let rest = self.buf.split_off(length);
            response.body = std::mem::replace(&mut self.buf, rest);
        } else {
            while self.fill()? {}
            response.body = std::mem::take(&mut self.buf);
        }
        Ok(Some(response))
    }

    /// Exactly `n` bytes (after any response already read), e.g. from an upgraded connection.
    pub fn read_bytes(&mut self, n: usize) -> std::io::Result<Vec<u8>> {
        if !self.fill_to(n)? {
            let got = String::from_utf8_lossy(&self.buf).into_owned();
            let message = format!("closed after {got:?}, before {n} bytes");
            return Err(std::io::Error::other(message));
        }
        let rest = self.buf.split_off(n);
        Ok(std::mem::replace(&mut self.buf, rest))
    }

    /// Everything the server sends until it closes the connection (an error if the read
    /// timeout passes first).
    pub fn read_to_end(&mut self) -> std::io::Result<Vec<u8>> {
        while self.fill()? {}
        Ok(std::mem::take(&mut self.buf))
    }
}
