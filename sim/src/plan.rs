//! `ferry plan`: replays an access log over a sweep of pool settings and recommends the
//! cheapest one (fewest process-hours) that meets a latency target.
//!
//! For each `min_instances` and `pool_idle_time` of the sweep, a binary search finds the
//! smallest `max_pool_size` that meets the target, so each row of the table is the cheapest
//! pool of its kind. A larger pool only queues less and so meets a target at least as well;
//! the search relies on that. Each combination runs on its own thread, as many at once as
//! the machine has cores.

use crate::accesslog::AccessLog;
use crate::duration::{format_latency, SimDuration};
use crate::replay::scenario_of_log;
use crate::scenario::PoolSettings;
use crate::Report;
use std::fmt::Write as _;
use std::sync::Mutex;

/// Largest pool the sweep tries.
const MAX_POOL_SIZE_LIMIT: usize = 256;

/// What `ferry plan` was asked.
#[derive(Clone, Debug)]
pub struct PlanOptions {
    /// Served requests' 99th percentile latency must be at most this.
    pub p99: SimDuration,
    /// 503s over arrived requests must be at most this.
    pub max_503_rate: f64,
    /// Everything the sweep does not vary.
    pub pool: PoolSettings,
    pub app: crate::ReplayApp,
    pub min_instances: Vec<usize>,
    pub pool_idle_times: Vec<SimDuration>,
}

/// One replay of the log with one setting.
#[derive(Clone, Debug, PartialEq)]
pub struct Trial {
    pub min_instances: usize,
    pub max_pool_size: usize,
    pub pool_idle_time: SimDuration,
    pub p99_nanos: Option<u64>,
    pub rejected: u64,
    pub arrived: u64,
    pub processes_avg: f64,
    pub processes_max: u64,
    pub process_hours: f64,
    pub meets: bool,
}

impl Trial {
    pub fn setting(&self) -> String {
        format!(
            "--min-instances {} --max-pool-size {} --pool-idle-time {}",
            self.min_instances,
            self.max_pool_size,
            self.pool_idle_time.as_nanos() / 1_000_000_000
        )
    }

    pub fn rejected_rate(&self) -> f64 {
        if self.arrived == 0 {
            return 0.0;
        }
        self.rejected as f64 / self.arrived as f64
    }
}

/// The sweep's outcome: the best trial of each combination, every trial run, and the pick.
#[derive(Clone, Debug)]
pub struct Plan {
    pub rows: Vec<Trial>,
    pub trials: Vec<Trial>,
    pub recommended: Option<Trial>,
}

/// Process-hours: the time-weighted mean of live processes over the run, times its length.
pub fn process_hours(report: &Report) -> f64 {
    report.pool.processes_avg * report.duration_nanos as f64 / 3.6e12
}

fn trial(
    log: &AccessLog,
    options: &PlanOptions,
    min: usize,
    max: usize,
    idle: SimDuration,
) -> Trial {
    let pool = PoolSettings {
        min_instances: min,
        max_pool_size: max,
        pool_idle_time: idle,
        ..options.pool.clone()
    };
    let scenario = scenario_of_log(log.clone(), pool, &options.app)
        .expect("the sweep keeps min_instances within max_pool_size");
    let report = crate::run(&scenario, 0, None);
    let p99_nanos = report.latency.served.p99_nanos;
    let rejected = report.requests.rejected;
    let arrived = report.requests.arrived;
    let mut trial = Trial {
        min_instances: min,
        max_pool_size: max,
        pool_idle_time: idle,
        p99_nanos,
        rejected,
        arrived,
        processes_avg: report.pool.processes_avg,
        processes_max: report.pool.processes_max,
        process_hours: process_hours(&report),
        meets: false,
    };
    trial.meets = p99_nanos.is_some_and(|p| p <= options.p99.as_nanos())
        && trial.rejected_rate() <= options.max_503_rate;
    trial
}

/// The most requests in flight at once if each were served the moment it arrived: a pool
/// this large never queues once it has grown, so the search starts no higher.
pub fn peak_concurrency(log: &AccessLog) -> usize {
    let mut edges: Vec<(u64, i32)> = Vec::with_capacity(log.requests.len() * 2);
    for r in &log.requests {
        edges.push((r.arrival_nanos, 1));
        edges.push((r.arrival_nanos + r.service_nanos.max(1), -1));
    }
    edges.sort();
    let (mut now, mut most) = (0i64, 0i64);
    for (_, step) in edges {
        now += i64::from(step);
        most = most.max(now);
    }
    most as usize
}

/// The 99th percentile of the logged durations (nearest rank).
pub fn logged_p99_nanos(log: &AccessLog) -> u64 {
    let mut durations: Vec<u64> = log.requests.iter().map(|r| r.service_nanos).collect();
    durations.sort_unstable();
    let rank = (durations.len() * 99).div_ceil(100).max(1);
    durations.get(rank - 1).copied().unwrap_or(0)
}

/// Runs the sweep.
pub fn plan(log: &AccessLog, options: &PlanOptions) -> Plan {
    let upper = (peak_concurrency(log) + 1).clamp(1, MAX_POOL_SIZE_LIMIT);
    let mut combos = Vec::new();
    for &min in &options.min_instances {
        for &idle in &options.pool_idle_times {
            combos.push((min, idle));
        }
    }
    let next = Mutex::new(0usize);
    let results = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..threads.min(combos.len()) {
            scope.spawn(|| loop {
                let index = {
                    let mut next = next.lock().expect("no panic holds it");
                    *next += 1;
                    *next - 1
                };
                let Some(&(min, idle)) = combos.get(index) else {
                    return;
                };
                let found = search(log, options, min, idle, upper.max(min));
                results
                    .lock()
                    .expect("no panic holds it")
                    .push((index, found));
            });
        }
    });
    let mut results = results.into_inner().expect("threads done");
    results.sort_by_key(|(index, _)| *index);
    let mut rows = Vec::new();
    let mut trials = Vec::new();
    for (_, (row, tried)) in results {
        rows.push(row);
        trials.extend(tried);
    }
    let recommended = rows
        .iter()
        .filter(|t| t.meets)
        .min_by(|a, b| {
            a.process_hours
                .total_cmp(&b.process_hours)
                .then(a.max_pool_size.cmp(&b.max_pool_size))
        })
        .cloned();
    Plan {
        rows,
        trials,
        recommended,
    }
}

/// The smallest max pool size in `min.max(1)..=upper` that meets the target (or the
/// largest, failing), and every trial run on the way.
fn search(
    log: &AccessLog,
    options: &PlanOptions,
    min: usize,
    idle: SimDuration,
    upper: usize,
) -> (Trial, Vec<Trial>) {
    let mut tried = Vec::new();
    let top = trial(log, options, min, upper, idle);
    tried.push(top.clone());
    if !top.meets {
        return (top, tried);
    }
    let (mut lo, mut best) = (min.max(1), top);
    let mut hi = upper; // meets
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let t = trial(log, options, min, mid, idle);
        tried.push(t.clone());
        if t.meets {
            hi = mid;
            best = t;
        } else {
            lo = mid + 1;
        }
    }
    (best, tried)
}

impl Plan {
    /// The table and the last line, `recommended: …`.
    pub fn to_text(&self, options: &PlanOptions, log: &AccessLog) -> String {
        let mut out = String::new();
        let span_s = log.span_nanos().div_ceil(1_000_000_000);
        let _ = writeln!(
            out,
            "ferry plan: {} ({} requests over {}), target p99 <= {}, 503s <= {}%",
            log.file,
            log.requests.len(),
            SimDuration::from_secs(span_s),
            options.p99,
            options.max_503_rate * 100.0
        );
        let _ = writeln!(
            out,
            "the logged durations alone: p99 {} (no pool does better: a replay serves each request for its logged duration)",
            format_latency(logged_p99_nanos(log))
        );
        if log.unreadable_count > 0 {
            let _ = writeln!(
                out,
                "skipped {} unreadable of {} lines: {}",
                log.unreadable_count,
                log.lines,
                log.unreadable_summary()
            );
        }
        let _ = writeln!(
            out,
            "{} replays; each row: the smallest max pool size meeting the target for its min instances and idle time\n",
            self.trials.len()
        );
        let _ = writeln!(
            out,
            "{:<58} {:>9} {:>8} {:>8} {:>6} {:>8}  meets",
            "setting", "p99", "503s", "avg", "peak", "proc-h"
        );
        for t in &self.rows {
            let p99 = t.p99_nanos.map_or("-".to_string(), format_latency);
            let _ = writeln!(
                out,
                "{:<58} {:>9} {:>8} {:>8.2} {:>6} {:>8.2}  {}",
                t.setting(),
                p99,
                t.rejected,
                t.processes_avg,
                t.processes_max,
                t.process_hours,
                if t.meets { "yes" } else { "no" }
            );
        }
        out.push('\n');
        match &self.recommended {
            Some(t) => {
                let _ = writeln!(out, "recommended: {}", t.setting());
            }
            None => {
                let _ = writeln!(
                    out,
                    "recommended: none: no setting tried meets the target (up to --max-pool-size {MAX_POOL_SIZE_LIMIT}); raise --p99 or --max-503-rate"
                );
            }
        }
        out
    }
}
