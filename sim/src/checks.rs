//! `[[expect]]`: what a scenario says must hold at a virtual time, checked against the run.

use crate::duration::{format_latency, SimDuration};
use crate::scenario::{Bound, Spread};
use crate::sim::Simulation;
use crate::stats::Percentiles;
use ferry_engine::ProcessState;
use hdrhistogram::Histogram;
use serde::Serialize;

/// One key of one expectation, met or missed, with what was seen.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExpectResult {
    pub at: String,
    pub key: String,
    pub expected: String,
    pub observed: String,
    pub ok: bool,
}

struct Checker {
    at: String,
    results: Vec<ExpectResult>,
}

impl Checker {
    fn count(&mut self, key: &str, bound: &Option<Bound<u64>>, observed: impl FnOnce() -> u64) {
        if let Some(bound) = bound {
            let value = observed();
            self.push(
                key,
                bound.to_string(),
                value.to_string(),
                bound.contains(value),
            );
        }
    }

    fn real(&mut self, key: &str, bound: &Option<Bound<f64>>, observed: impl FnOnce() -> f64) {
        if let Some(bound) = bound {
            let value = observed();
            let shown = format!("{value:.2}");
            self.push(key, bound.to_string(), shown, bound.contains(value));
        }
    }

    /// A duration bound over something that may not have happened yet: with no sample, only a
    /// bound without a minimum holds.
    fn duration(&mut self, key: &str, bound: &Option<Bound<SimDuration>>, observed: Option<u64>) {
        if let Some(bound) = bound {
            let (text, ok) = match observed {
                Some(nanos) => (format_latency(nanos), bound.contains(SimDuration(nanos))),
                None => ("none yet".to_string(), bound.min.is_none()),
            };
            self.push(key, bound.to_string(), text, ok);
        }
    }

    fn push(&mut self, key: &str, expected: String, observed: String, ok: bool) {
        self.results.push(ExpectResult {
            at: self.at.clone(),
            key: key.to_string(),
            expected,
            observed,
            ok,
        });
    }
}

fn percentile(histogram: &Histogram<u64>, pick: fn(&Percentiles) -> Option<u64>) -> Option<u64> {
    pick(&Percentiles::of(histogram))
}

pub fn evaluate(sim: &Simulation, index: usize, at_nanos: u64) -> Vec<ExpectResult> {
    let expect = &sim.scenario.expect[index];
    let mut check = Checker {
        at: SimDuration(at_nanos).to_string(),
        results: Vec::new(),
    };
    let totals = sim.engine.totals();
    let c = &sim.counts;
    check.count("processes", &expect.processes, || {
        sim.engine.process_count() as u64
    });
    check.count("ready", &expect.ready, || {
        let status = sim.engine.status();
        let ready = status.groups.iter().flat_map(|g| &g.processes);
        ready.filter(|p| p.state == ProcessState::Ready).count() as u64
    });
    check.real("processes_avg", &expect.processes_avg, || {
        sim.pool_size.mean(at_nanos)
    });
    check.real("process_seconds", &expect.process_seconds, || {
        sim.pool_size.process_seconds(at_nanos)
    });
    check.count("queue", &expect.queue, || sim.requests.queued() as u64);
    check.count("busy", &expect.busy, || sim.requests.in_flight() as u64);
    check.count("arrived", &expect.arrived, || c.arrived);
    check.count("served", &expect.served, || c.served);
    check.count("rejected", &expect.rejected, || c.rejected);
    check.count("failed", &expect.failed, || c.failed);
    check.count("cancelled", &expect.cancelled, || c.cancelled);
    check.count("spawns", &expect.spawns, || totals.spawns);
    check.count("spawn_failures", &expect.spawn_failures, || {
        totals.spawn_failures
    });
    check.count("crashes", &expect.crashes, || totals.crashes);
    check.count("idle_shutdowns", &expect.idle_shutdowns, || {
        totals.idle_shutdowns
    });
    let p50 = |p: &Percentiles| p.p50_nanos;
    let p99 = |p: &Percentiles| p.p99_nanos;
    let max = |p: &Percentiles| p.max_nanos;
    let latency = &sim.latency;
    check.duration("latency_p50", &expect.latency_p50, percentile(latency, p50));
    check.duration("latency_p99", &expect.latency_p99, percentile(latency, p99));
    check.duration("latency_max", &expect.latency_max, percentile(latency, max));
    let wait = &sim.queue_wait;
    check.duration(
        "queue_wait_p50",
        &expect.queue_wait_p50,
        percentile(wait, p50),
    );
    check.duration(
        "queue_wait_p99",
        &expect.queue_wait_p99,
        percentile(wait, p99),
    );
    check.duration(
        "queue_wait_max",
        &expect.queue_wait_max,
        percentile(wait, max),
    );
    let rejection = &sim.rejection_latency;
    let key_p50 = "rejection_latency_p50";
    check.duration(
        key_p50,
        &expect.rejection_latency_p50,
        percentile(rejection, p50),
    );
    let key = "rejection_latency_p99";
    check.duration(
        key,
        &expect.rejection_latency_p99,
        percentile(rejection, p99),
    );
    let key_max = "rejection_latency_max";
    check.duration(
        key_max,
        &expect.rejection_latency_max,
        percentile(rejection, max),
    );
    if let Some(bound) = &expect.idle_shutdown_after {
        let (text, ok) = match sim.idle_after_nanos {
            Some((least, most)) => (
                format!("{}..{}", SimDuration(least), SimDuration(most)),
                bound.contains(SimDuration(least)) && bound.contains(SimDuration(most)),
            ),
            None => ("no idle shutdown yet".to_string(), true),
        };
        check.push("idle_shutdown_after", bound.to_string(), text, ok);
    }
    if let Some(spread) = &expect.spread {
        let (observed, ok) = spread_of(sim, index, spread);
        check.push(
            "spread",
            format!("max/min <= {}", spread.max_ratio),
            observed,
            ok,
        );
    }
    check.results
}

/// Served counts since `spread.from` of the processes that were ready then and are alive now.
fn spread_of(sim: &Simulation, index: usize, spread: &Spread) -> (String, bool) {
    let Some(before) = sim.spread_from.get(&index) else {
        return ("no snapshot at `from`".to_string(), false);
    };
    let served: Vec<u64> = before
        .iter()
        .filter_map(|(id, then)| sim.processes.get(id).map(|p| p.served - then))
        .collect();
    let (Some(&most), Some(&least)) = (served.iter().max(), served.iter().min()) else {
        return ("no process lived through the window".to_string(), false);
    };
    if served.len() < 2 {
        return (
            format!("only one process lived through the window ({most} served)"),
            true,
        );
    }
    let ratio = if least == 0 {
        f64::INFINITY
    } else {
        most as f64 / least as f64
    };
    let text = format!(
        "{most}/{least} = {ratio:.2} over {} processes",
        served.len()
    );
    (text, ratio <= spread.max_ratio)
}
