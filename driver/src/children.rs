//! App processes at the OS level: starting them, watching them exit, stopping them, and
//! forwarding their output.

use crate::app::{App, AppKind, BackendAddr};
use rustix::process::{Pid, Signal};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// One running app process.
pub struct AppProcess {
    pub child: Child,
    pub pid: u32,
    /// Readable once the process has exited: exits are seen at once, with no polling sweep.
    pub pidfd: OwnedFd,
    pub stdout: Option<OutputPipe>,
    pub stderr: Option<OutputPipe>,
    pub addr: BackendAddr,
}

/// A pipe from the app, forwarded line by line.
pub struct OutputPipe {
    pub fd: OwnedFd,
    pending: Vec<u8>,
}

/// Longest line kept before it is forwarded in pieces.
const OUTPUT_LINE_MAX_BYTES: usize = 16 * 1024;

impl OutputPipe {
    fn new(fd: OwnedFd) -> std::io::Result<OutputPipe> {
        rustix::io::ioctl_fionbio(&fd, true)?;
        Ok(OutputPipe {
            fd,
            pending: Vec::new(),
        })
    }

    /// Reads what is there; calls `line` for each complete line. Returns false at end of file.
    pub fn drain(&mut self, mut line: impl FnMut(&str)) -> bool {
        let mut chunk = [0u8; 8192];
        let open = loop {
            match rustix::io::read(&self.fd, &mut chunk) {
                Ok(0) => break false,
                Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
                Err(rustix::io::Errno::AGAIN) => break true,
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => break false,
            }
        };
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let text = String::from_utf8_lossy(&self.pending[..end]).into_owned();
            line(text.trim_end_matches('\r'));
            self.pending.drain(..=end);
        }
        if self.pending.len() > OUTPUT_LINE_MAX_BYTES || (!open && !self.pending.is_empty()) {
            line(&String::from_utf8_lossy(&self.pending));
            self.pending.clear();
        }
        open
    }
}

/// A free loopback port for a generic app process. Another program could take it before the
/// app binds it; the app then fails to start and the engine retries with backoff.
fn free_loopback_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

/// Starts one process of `app`. `socket_dir` holds WSGI sockets; `tag` names this process's
/// socket uniquely.
pub fn spawn(
    app: &App,
    socket_dir: &Path,
    loader_path: &Path,
    tag: u64,
) -> std::io::Result<AppProcess> {
    // What ferry itself tells the process goes last: no --envvar can break it.
    let mut own_env: Vec<(&str, std::ffi::OsString)> = Vec::new();
    let (mut command, addr) = match &app.kind {
        AppKind::Generic { command: line } => {
            let port = free_loopback_port()?;
            let mut command = Command::new("/bin/sh");
            command.arg("-c").arg(format!("exec {line}"));
            own_env.push(("PORT", port.to_string().into()));
            (
                command,
                BackendAddr::Tcp(std::net::SocketAddr::from(([127, 0, 0, 1], port))),
            )
        }
        AppKind::Wsgi {
            startup_file,
            python,
            model,
        } => {
            let socket = socket_dir.join(format!("app-{tag}.sock"));
            let _ = std::fs::remove_file(&socket);
            let mut command = Command::new(python);
            command.arg("-u").arg(loader_path);
            own_env.extend([
                ("FERRY_SOCKET", socket.clone().into()),
                ("FERRY_APP_ROOT", app.root.clone().into()),
                ("FERRY_STARTUP_FILE", startup_file.into()),
                ("PYTHONUNBUFFERED", "1".into()),
                ("FERRY_CONCURRENCY_MODEL", model.name().into()),
            ]);
            (command, BackendAddr::Unix(socket))
        }
    };
    // The environment's name under every name frameworks look for, as Passenger sets them.
    for name in [
        "FERRY_ENVIRONMENT",
        "PASSENGER_APP_ENV",
        "RAILS_ENV",
        "RACK_ENV",
        "WSGI_ENV",
        "NODE_ENV",
    ] {
        command.env(name, &app.environment);
    }
    command.envs(app.envvars.iter().map(|(k, v)| (k, v)));
    if let Some(user) = &app.user {
        // std drops root's supplementary groups along with the uid.
        command
            .uid(user.uid)
            .gid(user.gid)
            .env("USER", &user.name)
            .env("LOGNAME", &user.name)
            .env("HOME", &user.home);
    }
    command.envs(own_env);
    command
        .current_dir(&app.root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a stop reaches whatever the app started.
        .process_group(0);
    let parent = rustix::process::getpid();
    // SAFETY: between fork and exec only async-signal-safe system calls run here (prctl,
    // getppid), and nothing allocates or takes a lock. An error returned here makes the
    // standard library's child report it to the parent and `_exit`: `std::process::exit`
    // would run exit handlers and flush stdio buffers copied from ferry, unsafe after fork.
    unsafe {
        command.pre_exec(move || {
            // If ferry dies, even by SIGKILL, the app dies with it: no orphaned app processes.
            rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
            if rustix::process::getppid() != Some(parent) {
                // ferry died before the signal was armed: nobody would supervise the app.
                return Err(std::io::Error::from_raw_os_error(
                    rustix::io::Errno::SRCH.raw_os_error(),
                ));
            }
            Ok(())
        });
    }
    let mut child = command.spawn()?;
    let pid = child.id();
    let pidfd = match rustix::process::pidfd_open(pid_of(pid), rustix::process::PidfdFlags::empty())
    {
        Ok(fd) => fd,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e.into());
        }
    };
    let stdout = child
        .stdout
        .take()
        .map(|p| OutputPipe::new(OwnedFd::from(p)))
        .transpose()?;
    let stderr = child
        .stderr
        .take()
        .map(|p| OutputPipe::new(OwnedFd::from(p)))
        .transpose()?;
    Ok(AppProcess {
        child,
        pid,
        pidfd,
        stdout,
        stderr,
        addr,
    })
}

fn pid_of(pid: u32) -> Pid {
    Pid::from_raw(pid as i32).expect("a child's pid is positive")
}

impl AppProcess {
    /// Signals the process's whole group; SIGTERM asks, SIGKILL makes.
    pub fn signal(&self, force: bool) {
        let signal = if force { Signal::KILL } else { Signal::TERM };
        let _ = rustix::process::kill_process_group(pid_of(self.pid), signal);
    }

    /// Reaps the process once its pidfd says it is gone; describes how it ended.
    pub fn reap(&mut self) -> Option<String> {
        let status = self.child.try_wait().ok().flatten()?;
        // The group may hold processes the app started: they go with it.
        let _ = rustix::process::kill_process_group(pid_of(self.pid), Signal::KILL);
        Some(describe_exit(status))
    }

    /// Whether the process has exited (it stays reapable by [`AppProcess::reap`]).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    pub fn pidfd_raw(&self) -> i32 {
        self.pidfd.as_raw_fd()
    }
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => "ended".to_string(),
    }
}
