//! Running wrk and reading its report.

use crate::procs::Guard;
use std::process::{Command, Stdio};
use std::time::Duration;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct WrkResult {
    pub requests_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub requests: u64,
    /// Socket errors of every kind (connect, read, write, timeout).
    pub socket_errors: u64,
    pub non_2xx_3xx: u64,
}

impl WrkResult {
    pub fn errors(&self) -> u64 {
        self.socket_errors + self.non_2xx_3xx
    }
}

/// The wrk command line for `conns` connections on `threads` threads for `duration`, to
/// `scheme` (`http` or `https`) on loopback.
pub fn command(
    scheme: &str,
    port: u16,
    path: &str,
    threads: usize,
    conns: usize,
    duration: Duration,
) -> Command {
    let mut cmd = Command::new("wrk");
    cmd.arg(format!("-t{threads}"))
        .arg(format!("-c{conns}"))
        .arg(format!("-d{}s", duration.as_secs().max(1)))
        .arg("--latency")
        .arg(format!("{scheme}://127.0.0.1:{port}{path}"));
    cmd
}

/// Runs wrk to completion and parses its report.
pub fn run(
    scheme: &str,
    port: u16,
    path: &str,
    threads: usize,
    conns: usize,
    duration: Duration,
) -> Result<WrkResult, String> {
    let mut cmd = command(scheme, port, path, threads, conns, duration);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let output = Guard::spawn("wrk", &mut cmd)?
        .output()
        .map_err(|e| format!("waiting for wrk: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "wrk failed ({}): {}{}",
            output.status,
            text.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    parse(&text)
}

/// A wrk duration such as `550.00us`, `1.14ms`, `2.00s` or `1.00m`, in milliseconds.
pub fn parse_duration_ms(s: &str) -> Option<f64> {
    let s = s.trim();
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let factor = match unit {
        "us" => 0.001,
        "ms" => 1.0,
        "s" => 1000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        _ => return None,
    };
    Some(n * factor)
}

/// Parses wrk's report (run with `--latency`).
pub fn parse(text: &str) -> Result<WrkResult, String> {
    let mut r = WrkResult::default();
    let (mut rps, mut p50, mut p99, mut reqs) = (false, false, false, false);
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            r.requests_per_sec = v.trim().parse().map_err(|_| format!("bad line {line:?}"))?;
            rps = true;
        } else if let Some(v) = line.strip_prefix("50%") {
            r.p50_ms = parse_duration_ms(v).ok_or_else(|| format!("bad line {line:?}"))?;
            p50 = true;
        } else if let Some(v) = line.strip_prefix("99%") {
            r.p99_ms = parse_duration_ms(v).ok_or_else(|| format!("bad line {line:?}"))?;
            p99 = true;
        } else if line.contains(" requests in ") {
            r.requests = line
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| format!("bad line {line:?}"))?;
            reqs = true;
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            // connect 0, read 0, write 0, timeout 12
            r.socket_errors = v
                .split(',')
                .filter_map(|part| part.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum();
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            r.non_2xx_3xx = v.trim().parse().map_err(|_| format!("bad line {line:?}"))?;
        }
    }
    if rps && p50 && p99 && reqs {
        Ok(r)
    } else {
        Err(format!("incomplete wrk report:\n{text}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Running 3s test @ http://127.0.0.1:18081/
  1 threads and 20 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   800.11us  822.65us  10.37ms   92.20%
    Req/Sec    30.92k     6.20k   36.17k    80.00%
  Latency Distribution
     50%  550.00us
     75%  594.00us
     90%    1.14ms
     99%    4.66ms
  92228 requests in 3.01s, 8.80MB read
  Socket errors: connect 1, read 2, write 0, timeout 12
  Non-2xx or 3xx responses: 5
Requests/sec:  30677.21
Transfer/sec:      2.93MB
";

    #[test]
    fn parses_a_full_report() {
        let r = parse(SAMPLE).unwrap();
        assert_eq!(r.requests_per_sec, 30677.21);
        assert!((r.p50_ms - 0.55).abs() < 1e-9);
        assert!((r.p99_ms - 4.66).abs() < 1e-9);
        assert_eq!(r.requests, 92228);
        assert_eq!(r.socket_errors, 15);
        assert_eq!(r.non_2xx_3xx, 5);
        assert_eq!(r.errors(), 20);
    }

    #[test]
    fn parses_a_clean_report_without_error_lines() {
        let clean: String = SAMPLE
            .lines()
            .filter(|l| !l.contains("errors") && !l.contains("Non-2xx"))
            .map(|l| format!("{l}\n"))
            .collect();
        let r = parse(&clean).unwrap();
        assert_eq!(r.errors(), 0);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("550.00us"), Some(0.55));
        assert_eq!(parse_duration_ms("1.50ms"), Some(1.5));
        assert_eq!(parse_duration_ms("2.00s"), Some(2000.0));
        assert_eq!(parse_duration_ms("1.00m"), Some(60_000.0));
        assert_eq!(parse_duration_ms("12"), None);
    }

    #[test]
    fn rejects_a_truncated_report() {
        assert!(parse("Running 3s test @ http://x/\n").is_err());
    }
}
