//! CPU and memory of an app process, read from /proc.

use std::time::Duration;

/// The process's memory, as Passenger measures it: its private dirty pages plus its swap,
/// in bytes. This is what the process alone costs the machine; its resident set also counts
/// shared libraries and clean file pages the system can drop. The one measure of "how much
/// memory an app process uses": `ferry status` shows it, and limits on it use it too.
pub fn memory_bytes(pid: u32) -> Option<u64> {
    // smaps_rollup (Linux 4.14+) sums every mapping; smaps is the same per mapping.
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .or_else(|_| std::fs::read_to_string(format!("/proc/{pid}/smaps")))
        .ok()?;
    private_dirty_and_swap_bytes(&text)
}

/// Sums the `Private_Dirty:` and `Swap:` lines (in kB) of smaps text.
fn private_dirty_and_swap_bytes(smaps: &str) -> Option<u64> {
    let mut total_kib = 0u64;
    let mut seen = false;
    for line in smaps.lines() {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        if name == "Private_Dirty" || name == "Swap" {
            let kib: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
            total_kib += kib;
            seen = true;
        }
    }
    seen.then_some(total_kib * 1024)
}

/// Resident memory (RSS) in bytes: shared pages included.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let resident_pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(resident_pages * rustix::param::page_size() as u64)
}

/// The fields of /proc/PID/stat that ferry, its tests and its benchmark read: the one parser
/// of that file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcStat {
    pub comm: String,
    /// `R`, `S`, `D`, `Z` (a zombie, not yet reaped), `X` (dead), …
    pub state: char,
    pub ppid: u32,
    pub pgrp: u32,
    pub utime_ticks: u64,
    pub stime_ticks: u64,
    /// When it started, in clock ticks after boot: with the pid, names one process for good.
    pub start_ticks: u64,
}

impl ProcStat {
    /// Running, not a zombie waiting to be reaped.
    pub fn is_alive(&self) -> bool {
        !matches!(self.state, 'Z' | 'X')
    }
}

/// /proc/PID/stat, parsed; `None` if there is no such process.
pub fn stat(pid: u32) -> Option<ProcStat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn parse_stat(text: &str) -> Option<ProcStat> {
    // The command name may hold spaces and parentheses: it runs to the last ')'.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let fields: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // fields[0] is the file's field 3 (state); utime, stime and starttime are 14, 15, 22.
    let number = |index: usize| fields.get(index)?.parse().ok();
    Some(ProcStat {
        comm: text.get(open + 1..close)?.to_string(),
        state: fields.first()?.chars().next()?,
        ppid: number(1)? as u32,
        pgrp: number(2)? as u32,
        utime_ticks: number(11)?,
        stime_ticks: number(12)?,
        start_ticks: number(19)?,
    })
}

/// CPU time used (user + system), the way `ps` reports it.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = stat(pid)?;
    let ticks_per_second = rustix::param::clock_ticks_per_second().max(1);
    Some(Duration::from_secs_f64(
        (stat.utime_ticks + stat.stime_ticks) as f64 / ticks_per_second as f64,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_a_command_name_with_parentheses() {
        let text = "4242 (my (odd) app) S 1 4242 4242 0 -1 4194560 120 0 0 0 7 3 0 0 20 0 1 0 \
                    98765 12345678 300 18446744073709551615\n";
        let stat = parse_stat(text).unwrap();
        assert_eq!(stat.comm, "my (odd) app");
        assert_eq!((stat.state, stat.ppid, stat.pgrp), ('S', 1, 4242));
        assert_eq!((stat.utime_ticks, stat.stime_ticks), (7, 3));
        assert_eq!(stat.start_ticks, 98765);
        assert!(stat.is_alive());
        assert!(parse_stat("4242 (cut").is_none());
    }

    #[test]
    fn private_dirty_plus_swap_from_smaps_text() {
        let rollup = "55fa7d072000-7ffcb68d9000 ---p 00000000 00:00 0   [rollup]\n\
                      Rss:                1764 kB\n\
                      Private_Clean:        40 kB\n\
                      Private_Dirty:       116 kB\n\
                      Swap:                 10 kB\n\
                      SwapPss:               4 kB\n";
        assert_eq!(private_dirty_and_swap_bytes(rollup), Some(126 * 1024));
        let two_mappings = "Private_Dirty: 1 kB\nSwap: 0 kB\nPrivate_Dirty: 2 kB\nSwap: 3 kB\n";
        assert_eq!(private_dirty_and_swap_bytes(two_mappings), Some(6 * 1024));
        assert_eq!(private_dirty_and_swap_bytes("Rss: 5 kB\n"), None);
    }

    #[test]
    fn this_process_uses_less_private_memory_than_its_resident_set() {
        let pid = std::process::id();
        let (memory, rss) = (memory_bytes(pid).unwrap(), rss_bytes(pid).unwrap());
        assert!(memory > 0 && memory < rss, "{memory} vs {rss}");
    }
}
