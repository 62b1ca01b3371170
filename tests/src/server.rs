//! [`Ferry`]: a running `ferry start` on loopback, started, watched and stopped.

use crate::paths::{ferry_bin, testapp_args};
use crate::processes::signal;
use crate::tempdir;
use crate::wait::wait_for;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A free loopback port for a server under test to listen on.
///
/// Not one the kernel picks (`bind` to port 0): those come from the ephemeral range, where
/// every test's clients get their local ports too, so one of them could take it before the
/// server listens (a CI run lost a test to that: the metrics port, "Address already in
/// use"). A port below that range, found free by binding it, is taken meanwhile only by
/// another test picking the same one among thousands; [`Ferry`] starts again on a new port
/// if its own was taken.
pub fn free_port() -> u16 {
    static PICKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(32768);
    const LOWEST: u64 = 10_000;
    if ephemeral_low > LOWEST + 1000 {
        let span = ephemeral_low - LOWEST;
        let seed = u64::from(std::process::id()) << 20
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::from(d.subsec_nanos()));
        for _ in 0..200 {
            let n = PICKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // Odd multiplier: successive picks spread over the whole span.
            let port = LOWEST + (seed.wrapping_add(n.wrapping_mul(7919))) % span;
            if std::net::TcpListener::bind(("127.0.0.1", port as u16)).is_ok() {
                return port as u16;
            }
        }
    }
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

fn pump(
    stream: impl Read + Send + 'static,
    sink: Arc<Mutex<Vec<String>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    })
}

/// How many times a start is tried again when the free port was taken meanwhile.
const PORT_ATTEMPTS: usize = 5;

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
    /// resource limits in `pre_exec`, say; again for each try, see [`Ferry::start_full`]).
    pub fn start_configured<S: AsRef<std::ffi::OsStr>>(
        registry: Arc<tempdir::TempDir>,
        args: &[S],
        envs: &[(&str, &str)],
        configure: impl Fn(&mut Command),
    ) -> Ferry {
        Ferry::start_full(registry, args, envs, None, configure)
    }

    /// [`free_port`] only finds a port that was free a moment ago: another test's client may
    /// take it as its own local port before ferry listens on it. ferry then exits at once,
    /// saying the port is in use; that start is tried again on another port.
    fn start_full<S: AsRef<std::ffi::OsStr>>(
        registry: Arc<tempdir::TempDir>,
        args: &[S],
        envs: &[(&str, &str)],
        cwd: Option<&Path>,
        configure: impl Fn(&mut Command),
    ) -> Ferry {
        for attempt in 1.. {
            match Ferry::try_start(registry.clone(), args, envs, cwd, &configure) {
                Ok(ferry) => return ferry,
                Err(output)
                    if (output.contains("is already in use")
                        || output.contains("Address already in use"))
                        && attempt < PORT_ATTEMPTS =>
                {
                    eprintln!("ferry's port was taken before it listened; again: {output}");
                }
                Err(output) => panic!("ferry exited early: {output}"),
            }
        }
        unreachable!()
    }

    /// Starts ferry once; on an early exit, returns its exit status and everything it printed.
    fn try_start<S: AsRef<std::ffi::OsStr>>(
        registry: Arc<tempdir::TempDir>,
        args: &[S],
        envs: &[(&str, &str)],
        cwd: Option<&Path>,
        configure: &impl Fn(&mut Command),
    ) -> Result<Ferry, String> {
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
        let pumps = [
            pump(child.stdout.take().unwrap(), output.clone()),
            pump(child.stderr.take().unwrap(), output.clone()),
        ];
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
        let exited = wait_for(
            "ferry to accept connections and register",
            Duration::from_secs(20),
            || {
                if let Ok(Some(status)) = ferry.child.try_wait() {
                    return Some(Some(status));
                }
                let admin = std::os::unix::net::UnixStream::connect(&admin_socket).is_ok();
                (admin && TcpStream::connect(ferry.addr()).is_ok()).then_some(None)
            },
        );
        let Some(status) = exited else {
            return Ok(ferry);
        };
        // What it printed is still in the pipes: read it to the end before telling.
        wait_for("ferry's output to end", Duration::from_secs(5), || {
            pumps.iter().all(|p| p.is_finished()).then_some(())
        });
        Err(format!("({status}): {}", ferry.output_text()))
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
