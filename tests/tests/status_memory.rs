//! `ferry status` shows memory as passenger-status does: private dirty pages plus swap, not
//! the resident set (which counts shared libraries too); `--json` has both.

use ferry_e2e::Ferry;
use std::time::Duration;

/// Private_Dirty + Swap of `pid` in bytes, read here independently of ferry.
fn private_dirty_and_swap(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap();
    text.lines()
        .filter(|l| l.starts_with("Private_Dirty:") || l.starts_with("Swap:"))
        .map(|l| l.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap())
        .sum::<u64>()
        * 1024
}

#[test]
fn memory_is_private_dirty_plus_swap_and_json_has_rss_too() {
    let ferry = Ferry::start_testapp(&[], &[]);
    let pid = ferry.wait_ready(1, Duration::from_secs(20))[0];
    let process = ferry.processes()[0].clone();
    let memory = process["memory_bytes"].as_u64().unwrap();
    let rss = process["rss_bytes"].as_u64().expect("rss_bytes in --json");
    assert!(memory > 0 && memory < rss, "{process}");
    // The idle test app's private memory hardly moves: within 1 MiB of a fresh reading.
    let now = private_dirty_and_swap(pid);
    assert!(memory.abs_diff(now) < 1024 * 1024, "{memory} vs {now}");
    let text = ferry.ferry_command(&["status"]);
    let text = String::from_utf8_lossy(&text.stdout);
    let shown = format!("Memory  : {}M", memory / (1024 * 1024));
    assert!(text.contains(&shown), "{shown} in: {text}");
}
