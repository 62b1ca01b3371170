//! What `GET /metrics` shows (`--metrics-address`), in Prometheus' text exposition format
//! (version 0.0.4). Counting is the driver's bookkeeping of what happened; the pool's
//! present state (queue, processes by state) is the engine's status at the time of the
//! scrape. The format is a few lines of text, so it is written here rather than with a
//! metrics crate.

use ferry_engine::{PoolStatus, ProcessState, RejectReason};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

/// Bucket bounds, in seconds, of both histograms: 1 ms to 60 s.
const BUCKET_BOUNDS_S: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

/// A Prometheus histogram with [`BUCKET_BOUNDS_S`].
#[derive(Clone, Debug, Default)]
pub struct Histogram {
    /// Observations at most each bound (not cumulative: summed when rendered).
    counts: [u64; BUCKET_BOUNDS_S.len()],
    count: u64,
    sum_s: f64,
}

impl Histogram {
    pub fn observe(&mut self, value: Duration) {
        let seconds = value.as_secs_f64();
        if let Some(bucket) = BUCKET_BOUNDS_S.iter().position(|&bound| seconds <= bound) {
            self.counts[bucket] += 1;
        }
        self.count += 1;
        self.sum_s += seconds;
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        header(out, name, help, "histogram");
        let mut cumulative = 0;
        for (bound, count) in BUCKET_BOUNDS_S.iter().zip(self.counts) {
            cumulative += count;
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}", self.sum_s);
        let _ = writeln!(out, "{name}_count {}", self.count);
    }
}

/// Counts kept since ferry started.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    /// Requests answered, by the first digit of their status (1 to 5).
    requests_by_class: [u64; 5],
    request_duration: Histogram,
    queue_wait: Histogram,
    rejected_by_reason: BTreeMap<&'static str, u64>,
    failed_by_reason: BTreeMap<&'static str, u64>,
    spawns_by_reason: BTreeMap<&'static str, u64>,
    kills_by_reason: BTreeMap<&'static str, u64>,
}

fn state_label(state: ProcessState) -> &'static str {
    match state {
        ProcessState::Spawning => "spawning",
        ProcessState::Ready => "ready",
        ProcessState::Draining => "draining",
        ProcessState::Stopping => "stopping",
    }
}

const STATES: [ProcessState; 4] = [
    ProcessState::Spawning,
    ProcessState::Ready,
    ProcessState::Draining,
    ProcessState::Stopping,
];

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn labelled(out: &mut String, name: &str, label: &str, counts: &BTreeMap<&'static str, u64>) {
    for (value, count) in counts {
        let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {count}");
    }
}

impl Metrics {
    /// A request got its answer, whoever gave it, `duration` after its first byte.
    pub fn request_ended(&mut self, status: u16, duration: Duration) {
        let class = usize::from(status / 100).clamp(1, 5);
        self.requests_by_class[class - 1] += 1;
        self.request_duration.observe(duration);
    }

    /// A request left the queue for a process after waiting `wait`.
    pub fn request_forwarded(&mut self, wait: Duration) {
        self.queue_wait.observe(wait);
    }

    pub fn rejected(&mut self, reason: &RejectReason) {
        *self.rejected_by_reason.entry(reason.as_str()).or_default() += 1;
    }

    /// A request that reached a process got no complete answer (502, 504, a cut response);
    /// `reason` says what happened.
    pub fn failed(&mut self, reason: &'static str) {
        *self.failed_by_reason.entry(reason).or_default() += 1;
    }

    pub fn spawned(&mut self, reason: &'static str) {
        *self.spawns_by_reason.entry(reason).or_default() += 1;
    }

    pub fn killed(&mut self, reason: &'static str) {
        *self.kills_by_reason.entry(reason).or_default() += 1;
    }

    /// The text of `GET /metrics`, with the pool as `pool` shows it and `ready` as
    /// `GET /ready` answers.
    pub fn render(&self, pool: &PoolStatus, ready: bool) -> String {
        let mut out = String::with_capacity(4096);
        header(
            &mut out,
            "ferry_requests_total",
            "Requests answered, by status class.",
            "counter",
        );
        for (class, count) in self.requests_by_class.iter().enumerate() {
            let _ = writeln!(
                out,
                "ferry_requests_total{{code=\"{}xx\"}} {count}",
                class + 1
            );
        }
        self.request_duration.render(
            &mut out,
            "ferry_request_duration_seconds",
            "Time from a request's first byte to the end of its response.",
        );
        self.queue_wait.render(
            &mut out,
            "ferry_request_queue_wait_seconds",
            "Time requests waited for an app process.",
        );
        let name = "ferry_rejected_requests_total";
        header(
            &mut out,
            name,
            "Requests answered 503 by ferry, by reason.",
            "counter",
        );
        labelled(&mut out, name, "reason", &self.rejected_by_reason);
        let name = "ferry_failed_requests_total";
        let help = "Requests that reached an app process and got no complete answer (502, 504, a cut response), by reason.";
        header(&mut out, name, help, "counter");
        labelled(&mut out, name, "reason", &self.failed_by_reason);
        let name = "ferry_spawns_total";
        header(
            &mut out,
            name,
            "App processes started, by reason.",
            "counter",
        );
        labelled(&mut out, name, "reason", &self.spawns_by_reason);
        let name = "ferry_kills_total";
        header(
            &mut out,
            name,
            "App processes stopped by ferry, by reason.",
            "counter",
        );
        labelled(&mut out, name, "reason", &self.kills_by_reason);
        let name = "ferry_request_queue_length";
        header(
            &mut out,
            name,
            "Requests waiting for an app process now.",
            "gauge",
        );
        let _ = writeln!(out, "{name} {}", pool.queued);
        let name = "ferry_processes";
        header(&mut out, name, "App processes now, by state.", "gauge");
        for state in STATES {
            let count = pool
                .groups
                .iter()
                .flat_map(|g| &g.processes)
                .filter(|p| p.state == state)
                .count();
            let _ = writeln!(out, "{name}{{state=\"{}\"}} {count}", state_label(state));
        }
        let name = "ferry_max_pool_size";
        header(
            &mut out,
            name,
            "The most app processes alive at once.",
            "gauge",
        );
        let _ = writeln!(out, "{name} {}", pool.max_pool_size);
        let name = "ferry_ready";
        header(
            &mut out,
            name,
            "1 while ferry takes traffic (GET /ready answers 200).",
            "gauge",
        );
        let _ = writeln!(out, "{name} {}", u8::from(ready));
        out
    }
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
