//! CPU and memory of an app process, read from /proc.

use std::time::Duration;

/// Resident memory in bytes.
pub fn memory_bytes(pid: u32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let resident_pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(resident_pages * rustix::param::page_size() as u64)
}

/// CPU time used (user + system), the way `ps` reports it.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let ticks_per_second = rustix::param::clock_ticks_per_second().max(1);
    Some(Duration::from_secs_f64(
        (utime + stime) as f64 / ticks_per_second as f64,
    ))
}

/// Average CPU use over the process's life, in percent of one core.
pub fn cpu_percent(pid: u32, uptime: Duration) -> f64 {
    match cpu_time(pid) {
        Some(cpu) if !uptime.is_zero() => {
            (cpu.as_secs_f64() / uptime.as_secs_f64() * 100.0).round()
        }
        _ => 0.0,
    }
}
