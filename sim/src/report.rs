//! The outcome of a run, as text for people and as one JSON document for tools. Both come
//! from the same [`Report`], and neither holds anything from the wall clock: the same scenario
//! and seed print the same bytes.

use crate::checks::ExpectResult;
use crate::duration::{format_latency, SimDuration};
use crate::model::{Ending, ProcessRecord};
use crate::sim::{Marker, Simulation};
use crate::stats::{Percentiles, Slot, Timeline};
use ferry_engine::PoolStatus;
use serde::Serialize;
use std::fmt::Write as _;

/// Columns of the text timeline.
const TIMELINE_COLUMNS: usize = 60;
/// The text report lists this many processes at most (the first and last halves).
const PROCESS_ROWS_MAX: usize = 40;

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub scenario: String,
    pub description: Option<String>,
    pub file: Option<String>,
    pub seed: u64,
    pub duration: String,
    pub requests: RequestSummary,
    pub latency: LatencySummary,
    pub pool: PoolSummary,
    pub processes: Vec<ProcessRecord>,
    pub status: Vec<Snapshot>,
    pub expectations: Vec<ExpectResult>,
    /// A broken invariant or sim check, if any: the run stopped there.
    pub violation: Option<String>,
    pub passed: bool,
    /// The command that replays this run exactly.
    pub reproduce: String,
    /// How the replayed access log was read, if the run replayed one.
    pub replay: Option<crate::replay::ReadSummary>,
    /// Per virtual second: processes by state, busy sessions, queue, served and rejected.
    pub time_series: crate::series::TimeSeries,
    #[serde(skip)]
    pub duration_nanos: u64,
    #[serde(skip)]
    pub timeline: Timeline,
    #[serde(skip)]
    pub markers: Vec<Marker>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RequestSummary {
    pub arrived: u64,
    pub served: u64,
    /// Answered 503 without reaching a process.
    pub rejected: u64,
    pub rejected_queue_full: u64,
    pub rejected_spawn_failing: u64,
    pub rejected_shutting_down: u64,
    pub rejected_queue_timeout: u64,
    /// Answered 502 (the process died while serving them) or 504 (`timed_out`).
    pub failed: u64,
    /// Ran for `max_request_time`: answered 504, their process killed.
    pub timed_out: u64,
    /// Their client gave up first.
    pub cancelled: u64,
    /// Queued or in flight when the run ended.
    pub open_at_end: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct LatencySummary {
    /// Served requests, from arrival to the end of the response.
    pub served: Percentiles,
    /// Forwarded requests, from arrival to the process taking them.
    pub queue_wait: Percentiles,
    /// Rejected requests, from arrival to the 503.
    pub rejected: Percentiles,
}

#[derive(Clone, Debug, Serialize)]
pub struct PoolSummary {
    pub max_pool_size: usize,
    pub processes_min: u64,
    /// Weighted by virtual time.
    pub processes_avg: f64,
    pub processes_max: u64,
    /// The pool's cost: live processes integrated over the run, in process-seconds.
    pub process_seconds: f64,
    pub spawns: u64,
    pub spawn_failures: u64,
    pub crashes: u64,
    pub idle_shutdowns: u64,
    pub killed_by_faults: u64,
    /// Each character is one slice of the run: the most live processes in it.
    pub timeline_processes: String,
    pub timeline_busy: String,
    pub timeline_queue: String,
    pub timeline_column: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Snapshot {
    pub at: String,
    pub status: PoolStatus,
}

impl Report {
    pub fn from_sim(sim: &Simulation, file: Option<&str>) -> Report {
        let end = sim.now.max(sim.scenario.duration.0);
        let mut timeline = sim.timeline.clone();
        timeline.finish(end);
        let mut processes = sim.finished.clone();
        processes.extend(
            sim.processes
                .values()
                .map(|p| ProcessRecord::of(p, None, Ending::Alive)),
        );
        processes.sort_by_key(|p| p.id);
        let totals = sim.engine.totals();
        let c = &sim.counts;
        let line = |pick: &dyn Fn(&Slot) -> f64| {
            let (text, _) = timeline.sparkline(TIMELINE_COLUMNS, pick);
            text
        };
        let column = instant(sim.scenario.duration.0 / TIMELINE_COLUMNS as u64);
        let expectations = sim.expect_results.clone();
        let passed = sim.violation.is_none() && expectations.iter().all(|e| e.ok);
        let file_shown = file.unwrap_or("SCENARIO.toml");
        Report {
            scenario: sim.scenario.name.clone(),
            description: sim.scenario.description.clone(),
            file: file.map(str::to_string),
            seed: sim.seed,
            duration: sim.scenario.duration.to_string(),
            requests: RequestSummary {
                arrived: c.arrived,
                served: c.served,
                rejected: c.rejected,
                rejected_queue_full: c.rejected_queue_full,
                rejected_spawn_failing: c.rejected_spawn_failing,
                rejected_shutting_down: c.rejected_shutting_down,
                rejected_queue_timeout: c.rejected_queue_timeout,
                failed: c.failed,
                timed_out: c.timed_out,
                cancelled: c.cancelled,
                open_at_end: sim.requests.open() as u64,
            },
            latency: LatencySummary {
                served: Percentiles::of(&sim.latency),
                queue_wait: Percentiles::of(&sim.queue_wait),
                rejected: Percentiles::of(&sim.rejection_latency),
            },
            pool: PoolSummary {
                max_pool_size: sim.scenario.pool.max_pool_size,
                processes_min: sim.pool_size.min,
                processes_avg: (sim.pool_size.mean(end) * 100.0).round() / 100.0,
                processes_max: sim.pool_size.max,
                process_seconds: (sim.pool_size.process_seconds(end) * 10.0).round() / 10.0,
                spawns: totals.spawns,
                spawn_failures: totals.spawn_failures,
                crashes: totals.crashes,
                idle_shutdowns: totals.idle_shutdowns,
                killed_by_faults: c.fault_kills,
                timeline_processes: line(&|s| f64::from(s.processes)),
                timeline_busy: line(&|s| timeline.busy_mean(s)),
                timeline_queue: line(&|s| f64::from(s.queue)),
                timeline_column: column,
            },
            processes,
            status: sim
                .snapshots
                .iter()
                .map(|(at, status)| Snapshot {
                    at: SimDuration(*at).to_string(),
                    status: status.clone(),
                })
                .collect(),
            expectations,
            violation: sim.violation.clone(),
            passed,
            reproduce: format!("ferry sim {file_shown} --seed {}", sim.seed),
            time_series: sim.series.clone(),
            replay: sim
                .scenario
                .replay
                .as_ref()
                .and_then(|r| r.read.as_deref().cloned()),
            duration_nanos: end,
            timeline,
            markers: sim.markers.clone(),
        }
    }

    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a report always serializes");
        text.push('\n');
        text
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "ferry sim: {} (seed {}), {} of virtual time",
            self.scenario, self.seed, self.duration
        );
        if let Some(description) = &self.description {
            let _ = writeln!(out, "{description}");
        }
        if let Some(read) = &self.replay {
            let _ = write!(
                out,
                "replayed    {} requests from {} lines of {}",
                read.requests, read.lines, read.file
            );
            if read.unreadable > 0 {
                let _ = write!(
                    out,
                    "; {} unreadable: {}",
                    read.unreadable, read.unreadable_lines
                );
            }
            out.push('\n');
        }
        out.push('\n');
        self.write_requests(&mut out);
        self.write_pool(&mut out);
        self.write_processes(&mut out);
        for snapshot in &self.status {
            write_status(&mut out, snapshot);
        }
        self.write_verdict(&mut out);
        out
    }

    fn write_requests(&self, out: &mut String) {
        let r = &self.requests;
        let _ = writeln!(
            out,
            "requests    {} arrived: {} served, {} rejected (503), {} failed (502), {} cancelled, {} open at the end",
            r.arrived, r.served, r.rejected, r.failed, r.cancelled, r.open_at_end
        );
        if r.rejected > 0 {
            let _ = writeln!(
                out,
                "            503s: {} queue full, {} spawns failing, {} shutting down",
                r.rejected_queue_full, r.rejected_spawn_failing, r.rejected_shutting_down
            );
        }
        let l = &self.latency;
        let _ = writeln!(out, "latency     served      {}", percentiles(&l.served));
        let _ = writeln!(
            out,
            "            queue wait  {}",
            percentiles(&l.queue_wait)
        );
        let _ = writeln!(out, "            rejected    {}", percentiles(&l.rejected));
    }

    fn write_pool(&self, out: &mut String) {
        let p = &self.pool;
        let _ = writeln!(
            out,
            "pool        processes min {}, avg {:.2}, max {} (max_pool_size {}); {:.1} process-seconds",
            p.processes_min, p.processes_avg, p.processes_max, p.max_pool_size, p.process_seconds
        );
        let _ = writeln!(
            out,
            "            {} spawns, {} spawn failures, {} crashes, {} idle shutdowns, {} killed by faults",
            p.spawns, p.spawn_failures, p.crashes, p.idle_shutdowns, p.killed_by_faults
        );
        let _ = writeln!(
            out,
            "timeline     0s{:>width$}   (one column = {})",
            self.duration,
            p.timeline_column,
            width = TIMELINE_COLUMNS - 2
        );
        let slots = &self.timeline.slots;
        let peak = |pick: fn(&Slot) -> u32| slots.iter().map(pick).max().unwrap_or(0);
        let busy_mean_peak = slots
            .iter()
            .map(|s| self.timeline.busy_mean(s))
            .fold(0.0, f64::max);
        let rows = [
            (
                "processes",
                &p.timeline_processes,
                format!("the most: {}", peak(|s| s.processes)),
            ),
            (
                "busy avg",
                &p.timeline_busy,
                format!(
                    "peak mean {busy_mean_peak:.1}, the most: {}",
                    peak(|s| s.busy)
                ),
            ),
            (
                "queue",
                &p.timeline_queue,
                format!("the most: {}", peak(|s| s.queue)),
            ),
        ];
        for (name, line, note) in rows {
            let _ = writeln!(out, "  {name:<9} |{line}| {note}");
        }
        if !self.markers.is_empty() {
            let faults: Vec<String> = self
                .markers
                .iter()
                .map(|m| format!("{} at {}", m.label, instant(m.at_nanos)))
                .collect();
            let _ = writeln!(out, "faults      {}", faults.join(", "));
        }
        out.push('\n');
    }

    fn write_processes(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "process  spawned      ready        exited       served  ended"
        );
        let rows = &self.processes;
        let skip = rows.len().saturating_sub(PROCESS_ROWS_MAX);
        let first = if skip > 0 {
            PROCESS_ROWS_MAX / 2
        } else {
            rows.len()
        };
        let seconds_text = |s: Option<f64>| match s {
            Some(s) => instant((s * 1e9).round() as u64),
            None => "-".to_string(),
        };
        for (n, row) in rows.iter().enumerate() {
            if n == first && skip > 0 {
                let _ = writeln!(out, "  … {skip} more processes …");
            }
            if n >= first && n < first + skip {
                continue;
            }
            let _ = writeln!(
                out,
                "{:>7}  {:<12} {:<12} {:<12} {:>6}  {}",
                row.id,
                instant((row.spawned_at_s * 1e9).round() as u64),
                seconds_text(row.ready_at_s),
                seconds_text(row.exited_at_s),
                row.served,
                row.ended.describe()
            );
        }
        out.push('\n');
    }

    fn write_verdict(&self, out: &mut String) {
        if !self.expectations.is_empty() {
            let _ = writeln!(out, "expectations");
            for e in &self.expectations {
                let mark = if e.ok { "ok  " } else { "MISS" };
                let _ = writeln!(
                    out,
                    "  {mark}  at {:<8} {} {} (observed {})",
                    e.at,
                    e.key,
                    expected_text(&e.expected),
                    e.observed
                );
            }
            out.push('\n');
        }
        if let Some(violation) = &self.violation {
            let _ = writeln!(out, "VIOLATION   {violation}");
        }
        let missed = self.expectations.iter().filter(|e| !e.ok).count();
        if self.passed {
            let _ = writeln!(
                out,
                "result      PASS ({} expectations met)",
                self.expectations.len()
            );
        } else {
            let _ = writeln!(
                out,
                "result      FAIL ({missed} of {} expectations missed{})",
                self.expectations.len(),
                if self.violation.is_some() {
                    ", and a violation"
                } else {
                    ""
                }
            );
            let _ = writeln!(out, "reproduce   {}", self.reproduce);
        }
    }
}

fn expected_text(expected: &str) -> String {
    if expected.starts_with(['<', '>', 'm']) {
        expected.to_string()
    } else {
        format!("= {expected}")
    }
}

fn percentiles(p: &Percentiles) -> String {
    match (p.p50_nanos, p.p99_nanos, p.max_nanos) {
        (Some(p50), Some(p99), Some(max)) => format!(
            "p50 {:<8} p99 {:<8} max {:<8} ({} requests)",
            format_latency(p50),
            format_latency(p99),
            format_latency(max),
            p.count
        ),
        _ => "-".to_string(),
    }
}

/// A virtual instant to the millisecond: "40.712s", "5m40.712s".
pub fn instant(nanos: u64) -> String {
    let millis = (nanos + 500_000) / 1_000_000;
    SimDuration::from_millis(millis).to_string()
}

/// A `ferry status`-style view of the pool at one instant.
fn write_status(out: &mut String, snapshot: &Snapshot) {
    let s = &snapshot.status;
    let now = s.now.as_nanos();
    let _ = writeln!(
        out,
        "status at {}: {}/{} processes, {} queued{}",
        snapshot.at,
        s.process_count,
        s.max_pool_size,
        s.queued,
        if s.shutting_down {
            ", shutting down"
        } else {
            ""
        }
    );
    for group in &s.groups {
        let _ = write!(
            out,
            "  app {}: min_instances {}, queue {}/{}",
            group.name, group.min_instances, group.queue, group.max_request_queue_size
        );
        if let Some(until) = group.backoff_until {
            let _ = write!(out, ", no spawn before {}", instant(until.as_nanos()));
        }
        out.push('\n');
        if let Some(error) = &group.last_spawn_error {
            let _ = writeln!(out, "    last spawn error: {error}");
        }
        for p in &group.processes {
            let uptime = p
                .ready_at
                .map(|at| instant(now.saturating_sub(at.as_nanos())))
                .unwrap_or_else(|| "-".to_string());
            let idle = instant(now.saturating_sub(p.last_used.as_nanos()));
            let _ = writeln!(
                out,
                "    process {:<4} {:<9} sessions {:<3} processed {:<8} uptime {:<12} idle {}",
                p.id.0,
                format!("{:?}", p.state).to_lowercase(),
                p.sessions,
                p.processed,
                uptime,
                idle
            );
        }
    }
    let t = &s.totals;
    let _ = writeln!(
        out,
        "  totals: {} arrived, {} served, {} rejected, {} failed, {} cancelled; {} spawns, {} crashes, {} idle shutdowns\n",
        t.arrived, t.served, t.rejected, t.failed, t.cancelled, t.spawns, t.crashes, t.idle_shutdowns
    );
}
