//! Signals and liveness of processes by pid.

/// Sends `signal` to `pid` (a pid that no longer exists is ignored).
pub fn signal(pid: u32, signal: rustix::process::Signal) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// Whether `pid` runs (a zombie is dead for our purposes).
pub fn process_alive(pid: u32) -> bool {
    ferry::instance::process_alive(pid)
}
