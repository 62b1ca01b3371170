//! The watchdog: a small process that outlives ferry to stop what ferry's app processes left
//! behind when ferry itself dies (even by SIGKILL).
//!
//! Every app process leads a process group of its own, and what it forks (a shell wrapper's
//! app, a pre-forking server's workers) stays in that group unless it leaves on purpose. The
//! parent-death signal reaches only the direct child; the watchdog reaches the rest. ferry
//! tells it, over a pipe, each group it starts (`+PGID`) and each group that is gone
//! (`-PGID`). When the pipe reaches its end (ferry exited or was killed: the kernel closes
//! the pipe either way), the watchdog sends SIGTERM to every group still listed, waits up to
//! [`GRACE_TIME`] for them to go, sends SIGKILL to what is left, and exits.
//!
//! It runs as ferry's own binary under the name [`WATCHDOG_ARG0`], in a process group of its
//! own, so that a Ctrl-C meant for ferry does not stop it first.
//!
//! What still escapes: a process that leaves its group on purpose (`setsid`, `setpgid`: a
//! daemonizing app), and anything if the watchdog itself is SIGKILLed together with ferry.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// The name (`argv[0]`) that makes the ferry binary run as the watchdog.
pub const WATCHDOG_ARG0: &str = "ferry-watchdog";

/// How long orphaned groups have between SIGTERM and SIGKILL once ferry is gone.
pub const GRACE_TIME: Duration = Duration::from_secs(2);

/// ferry's end of the watchdog.
pub struct Watchdog {
    child: Child,
    /// Closed (`None`) once ferry is done: the end of the pipe is what tells the watchdog.
    pipe: Option<ChildStdin>,
}

impl Watchdog {
    /// Starts the watchdog (ferry's own binary, run as [`WATCHDOG_ARG0`]).
    pub fn start() -> std::io::Result<Watchdog> {
        use std::os::unix::process::CommandExt;
        // The pipe's write end is close-on-exec: app processes never hold it, so it ends
        // exactly when ferry does.
        let mut child = Command::new("/proc/self/exe")
            .arg0(WATCHDOG_ARG0)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()?;
        let pipe = child.stdin.take();
        Ok(Watchdog { child, pipe })
    }

    /// The process group `pgid` is an app's: stop it if ferry dies.
    pub fn track(&mut self, pgid: u32) {
        self.send(&format!("+{pgid}\n"));
    }

    /// The process group `pgid` is gone.
    pub fn untrack(&mut self, pgid: u32) {
        self.send(&format!("-{pgid}\n"));
    }

    fn send(&mut self, line: &str) {
        // A watchdog that died cannot be helped; ferry carries on without it.
        if let Some(pipe) = &mut self.pipe {
            let _ = pipe.write_all(line.as_bytes());
        }
    }
}

impl Drop for Watchdog {
    /// A normal exit: with every group untracked the watchdog ends at once; reaping it here
    /// keeps it from lingering as a zombie.
    fn drop(&mut self) {
        self.pipe = None;
        let _ = self.child.wait();
    }
}

/// Whether this process was started as the watchdog.
pub fn is_watchdog() -> bool {
    std::env::args_os()
        .next()
        .is_some_and(|arg0| arg0 == WATCHDOG_ARG0)
}

/// The watchdog's main: follows the pipe from ferry until it ends, then stops what is left.
pub fn run() -> ExitCode {
    // A hang-up of ferry's terminal is not a reason to go before ferry's processes do.
    let ignored = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGHUP] {
        let _ = signal_hook::flag::register(signal, ignored.clone());
    }
    let mut groups = BTreeSet::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let (sign, number) = line.split_at(line.len().min(1));
        let Ok(pgid) = number.parse::<i32>() else {
            continue;
        };
        match sign {
            "+" => groups.insert(pgid),
            "-" => groups.remove(&pgid),
            _ => false,
        };
    }
    stop_groups(&groups);
    ExitCode::SUCCESS
}

/// SIGTERM to each group, SIGKILL after [`GRACE_TIME`] to those still there.
fn stop_groups(groups: &BTreeSet<i32>) {
    use rustix::process::{kill_process_group, test_kill_process_group, Pid, Signal};
    let pids: Vec<Pid> = groups.iter().filter_map(|g| Pid::from_raw(*g)).collect();
    if pids.is_empty() {
        return;
    }
    eprintln!(
        "ferry-watchdog: ferry is gone; stopping {} app process group(s) it left",
        pids.len()
    );
    for pid in &pids {
        let _ = kill_process_group(*pid, Signal::TERM);
    }
    let deadline = Instant::now() + GRACE_TIME;
    let mut left = pids;
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        left.retain(|pid| test_kill_process_group(*pid).is_ok());
    }
    for pid in &left {
        let _ = kill_process_group(*pid, Signal::KILL);
    }
}
