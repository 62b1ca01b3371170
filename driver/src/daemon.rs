//! `--daemonize` and `--pid-file`.
//!
//! ferry daemonizes by starting itself again in a new session with its output going to the
//! log file, rather than by forking a process that may already hold threads; the first
//! process waits (bounded) until the second has registered, then exits, so `ferry start -d`
//! returns only once the server answers, and reports a failure to start itself.

use crate::cli::StartArgs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// Set in the background server's environment: it is the daemon, and must not start again.
const DAEMON_CHILD_VAR: &str = "FERRY_DAEMON_CHILD";

/// How long `ferry start -d` waits for the background server to register.
const START_WAIT: Duration = Duration::from_secs(60);

pub fn is_daemon_child() -> bool {
    std::env::var_os(DAEMON_CHILD_VAR).is_some()
}

/// The log file of a daemonized server: `--log-file`, else APP_DIR/ferry.PORT.log.
pub fn log_file(args: &StartArgs, app_root: &Path) -> PathBuf {
    args.log_file
        .clone()
        .unwrap_or_else(|| app_root.join(format!("ferry.{}.log", args.port)))
}

/// The pid file of a daemonized server: `--pid-file`, else APP_DIR/ferry.PORT.pid.
pub fn pid_file(args: &StartArgs, app_root: &Path) -> PathBuf {
    args.pid_file
        .clone()
        .unwrap_or_else(|| app_root.join(format!("ferry.{}.pid", args.port)))
}

/// Starts the server in the background and waits until it serves; the exit code of
/// `ferry start -d`.
pub fn run_in_background(args: &StartArgs, app_root: &Path, registry: &Path) -> ExitCode {
    let log = log_file(args, app_root);
    let pid_path = pid_file(args, app_root);
    let output = match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
    {
        Ok(file) => file,
        Err(e) => return fail(&format!("cannot open the log file {}: {e}", log.display())),
    };
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return fail(&format!("cannot find ferry's own executable: {e}")),
    };
    let (stdout, stderr) = match (output.try_clone(), output.try_clone()) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return fail(&format!("cannot use {}: {e}", log.display())),
    };
    // The same command line, so the server resolves the same settings; the log and pid
    // files go through the environment layer, which the command line still overrides.
    let mut command = Command::new(exe);
    command
        .args(std::env::args_os().skip(1))
        .env(DAEMON_CHILD_VAR, "1")
        .env("FERRY_LOG_FILE", &log)
        .env("FERRY_PID_FILE", &pid_path)
        .env("FERRY_INSTANCE_REGISTRY_DIR", registry)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    // SAFETY: setsid is async-signal-safe and nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            rustix::process::setsid()?;
            Ok(())
        });
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return fail(&format!("cannot start ferry in the background: {e}")),
    };
    let pid = child.id();
    let admin_socket = registry.join(format!("ferry.{pid}")).join("admin.sock");
    let deadline = Instant::now() + START_WAIT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let tail = log_tail(&log);
            return fail(&format!(
                "ferry exited while starting in the background ({status}); the end of {}:\n{tail}",
                log.display()
            ));
        }
        if std::os::unix::net::UnixStream::connect(&admin_socket).is_ok() {
            break;
        }
        if Instant::now() > deadline {
            return fail(&format!(
                "ferry (pid {pid}) did not start within {} s; see {}",
                START_WAIT.as_secs(),
                log.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("ferry is running in the background (pid {pid}).");
    println!("Log file: {}", log.display());
    println!("PID file: {}", pid_path.display());
    println!("Stop it with: ferry stop --port {}", args.port);
    ExitCode::SUCCESS
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join("\n")
}

fn fail(message: &str) -> ExitCode {
    eprintln!("ferry: {message}");
    ExitCode::from(1)
}

/// `--pid-file`: holds ferry's pid while it runs, removed when it stops.
pub struct PidFile {
    path: PathBuf,
}

impl PidFile {
    pub fn create(path: &Path) -> Result<PidFile, String> {
        std::fs::write(path, format!("{}\n", std::process::id()))
            .map_err(|e| format!("cannot write the pid file {}: {e}", path.display()))?;
        Ok(PidFile {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
