//! Started processes and temporary directories, each owned by a guard that cleans up on drop
//! (also while unwinding from a panic), plus small /proc helpers.

use rustix::process::Signal;
use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command};
use std::thread;
use std::time::{Duration, Instant};

/// How long a process gets to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A child process that is stopped (SIGTERM, then SIGKILL) when the guard is dropped.
pub struct Guard {
    name: String,
    child: Child,
    done: bool,
}

impl Guard {
    /// Starts `cmd`. The child also gets SIGTERM if the bench itself dies (PR_SET_PDEATHSIG),
    /// so even a `kill -9` of the bench leaves no server behind.
    pub fn spawn(name: &str, cmd: &mut Command) -> Result<Guard, String> {
        let parent = rustix::process::getpid();
        // SAFETY: only async-signal-safe calls (prctl, getppid, kill) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                rustix::process::set_parent_process_death_signal(Some(Signal::TERM))?;
                // The bench died before the prctl took effect: nobody would stop this child.
                if rustix::process::getppid() != Some(parent) {
                    let _ = rustix::process::kill_process(rustix::process::getpid(), Signal::TERM);
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {name} ({:?}): {e}", cmd.get_program()))?;
        Ok(Guard {
            name: name.to_string(),
            child,
            done: false,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The exit status if the process has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        match self.child.try_wait() {
            Ok(Some(status)) => {
                self.done = true;
                Some(status)
            }
            _ => None,
        }
    }

    /// Waits up to `timeout` for the process to exit by itself.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Reads the child's piped stdout and stderr to the end and reaps it.
    pub fn output(mut self) -> io::Result<std::process::Output> {
        use std::io::Read;
        let err_pipe = self.child.stderr.take();
        let err_reader = thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = err_pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            buf
        });
        let mut stdout = Vec::new();
        if let Some(mut pipe) = self.child.stdout.take() {
            pipe.read_to_end(&mut stdout)?;
        }
        let stderr = err_reader.join().unwrap_or_default();
        let status = self.child.wait()?;
        self.done = true;
        Ok(std::process::Output {
            status,
            stdout,
            stderr,
        })
    }

    /// SIGTERM, a grace period, then SIGKILL; always reaps.
    pub fn stop(&mut self) {
        if self.done || self.exited().is_some() {
            return;
        }
        signal(self.pid(), Signal::TERM);
        if self.wait_timeout(STOP_GRACE).is_none() {
            eprintln!(
                "ferry-bench: {} did not stop after SIGTERM; killing it",
                self.name
            );
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.done = true;
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends `signal` to `pid`; false if there is no such process (or no right to signal it).
pub fn signal(pid: u32, signal: Signal) -> bool {
    rustix::process::Pid::from_raw(pid as i32)
        .is_some_and(|pid| rustix::process::kill_process(pid, signal).is_ok())
}

/// The run's temporary directory, removed when dropped unless FERRY_BENCH_KEEP_TMP is set.
pub struct RunDir(tempfile::TempDir);

impl RunDir {
    pub fn new() -> io::Result<RunDir> {
        tempfile::Builder::new()
            .prefix("ferry-bench.")
            .tempdir()
            .map(RunDir)
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if std::env::var_os("FERRY_BENCH_KEEP_TMP").is_some() {
            eprintln!("ferry-bench: keeping {}", self.path().display());
            self.0.disable_cleanup(true);
        }
    }
}

/// A process identified by pid and start time, so a recycled pid is never mistaken for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcId {
    pub pid: u32,
    pub start: u64,
}

impl ProcId {
    pub fn of(pid: u32) -> Option<ProcId> {
        Some(ProcId {
            pid,
            start: stat(pid)?.start_ticks,
        })
    }

    pub fn alive(&self) -> bool {
        stat(self.pid).is_some_and(|s| s.start_ticks == self.start && s.is_alive())
    }

    /// SIGKILL if it is still this process.
    pub fn kill(&self) {
        if self.alive() {
            signal(self.pid, Signal::KILL);
        }
    }
}

pub use ferry::proc_stats::stat;

fn all_pids() -> Vec<u32> {
    fs::read_dir("/proc")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Every live descendant of `roots` (not the roots themselves).
pub fn descendants(roots: &[u32]) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for pid in all_pids() {
        if let Some(s) = stat(pid) {
            if s.is_alive() {
                children.entry(s.ppid).or_default().push(pid);
            }
        }
    }
    let mut out = Vec::new();
    let mut stack: Vec<u32> = roots.to_vec();
    while let Some(pid) = stack.pop() {
        for &child in children.get(&pid).map(Vec::as_slice).unwrap_or(&[]) {
            out.push(child);
            stack.push(child);
        }
    }
    out
}

/// Live descendants of `roots` whose command name is `comm`.
pub fn descendants_named(roots: &[u32], comm: &str) -> Vec<u32> {
    descendants(roots)
        .into_iter()
        .filter(|&pid| stat(pid).is_some_and(|s| s.comm == comm))
        .collect()
}

/// Processes whose command line mentions `needle` (e.g. a run directory).
pub fn mentioning(needle: &Path) -> Vec<u32> {
    let needle = needle.to_string_lossy().into_owned();
    let me = std::process::id();
    all_pids()
        .into_iter()
        .filter(|&pid| pid != me)
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .map(|raw| String::from_utf8_lossy(&raw).contains(&needle))
                .unwrap_or(false)
        })
        .collect()
}
