//! `ferry sim --replay` and `ferry plan`: the pool flags they share with `ferry start`, and
//! `ferry plan`'s own. The work is the simulator's (`ferry_sim`); this only reads flags.

use crate::cli_values as values;
use clap::Args;
use ferry_sim::{PoolSettings, ReplayApp, SimDuration};
use std::path::PathBuf;

/// `ferry start`'s pool flags, same names, same meaning, same defaults when left out.
#[derive(Args, Debug, Clone, Default)]
pub struct ReplayPoolArgs {
    /// As `ferry start --max-pool-size` (default 6).
    #[arg(long, value_parser = values::at_least_one::<usize>)]
    pub max_pool_size: Option<usize>,
    /// As `ferry start --min-instances` (default 1).
    #[arg(long, value_parser = values::count::<usize>)]
    pub min_instances: Option<usize>,
    /// As `ferry start --pool-idle-time`, in seconds (default 300; 0: never).
    #[arg(long, value_parser = values::count::<u64>)]
    pub pool_idle_time: Option<u64>,
    /// As `ferry start --max-requests` (default 0: never).
    #[arg(long, value_parser = values::count::<u64>)]
    pub max_requests: Option<u64>,
    /// As `ferry start --max-request-queue-size` (default 100; 0: unlimited).
    #[arg(long, value_parser = values::count::<usize>)]
    pub max_request_queue_size: Option<usize>,
    /// As `ferry start --concurrency` (default 1; 0: unlimited).
    #[arg(long, value_parser = values::count::<u32>)]
    pub concurrency: Option<u32>,
    /// As `ferry start --max-spawn-concurrency` (default 6).
    #[arg(long, value_parser = values::at_least_one::<usize>)]
    pub max_spawn_concurrency: Option<usize>,
    /// As `ferry start --max-request-queue-time`, in seconds (default 0: no limit).
    #[arg(long, value_parser = values::count::<u64>)]
    pub max_request_queue_time: Option<u64>,
    /// How long one app process takes to start, e.g. 500ms or 1.5s (default 500ms).
    #[arg(long, value_parser = ferry_sim::parse_duration)]
    pub spawn_time: Option<SimDuration>,
    /// How much each other spawn under way lengthens a start, as a share of the spawn time
    /// (default 0.27, measured with a Python WSGI app; 0 for an app whose start does not
    /// compete for the CPU).
    #[arg(long, value_parser = non_negative)]
    pub spawn_contention: Option<f64>,
    /// How long an app process takes to exit once told to stop (default 100ms).
    #[arg(long, value_parser = ferry_sim::parse_duration)]
    pub shutdown_time: Option<SimDuration>,
}

impl ReplayPoolArgs {
    pub fn given(&self) -> bool {
        self.max_pool_size.is_some()
            || self.min_instances.is_some()
            || self.pool_idle_time.is_some()
            || self.max_requests.is_some()
            || self.max_request_queue_size.is_some()
            || self.concurrency.is_some()
            || self.max_spawn_concurrency.is_some()
            || self.max_request_queue_time.is_some()
            || self.spawn_time.is_some()
            || self.spawn_contention.is_some()
            || self.shutdown_time.is_some()
    }

    pub fn pool(&self) -> PoolSettings {
        let mut p = PoolSettings::default();
        let secs = SimDuration::from_secs;
        p.max_pool_size = self.max_pool_size.unwrap_or(p.max_pool_size);
        p.min_instances = self.min_instances.unwrap_or(p.min_instances);
        p.pool_idle_time = self.pool_idle_time.map_or(p.pool_idle_time, secs);
        p.max_requests = self.max_requests.unwrap_or(p.max_requests);
        p.max_request_queue_size = self
            .max_request_queue_size
            .unwrap_or(p.max_request_queue_size);
        p.concurrency = self.concurrency.unwrap_or(p.concurrency);
        p.max_spawn_concurrency = self
            .max_spawn_concurrency
            .unwrap_or(p.max_spawn_concurrency);
        p.max_request_queue_time = self
            .max_request_queue_time
            .map_or(p.max_request_queue_time, secs);
        p
    }

    pub fn app(&self) -> ReplayApp {
        let default = ReplayApp::default();
        ReplayApp {
            spawn_time: self.spawn_time.unwrap_or(default.spawn_time),
            spawn_contention: self.spawn_contention.unwrap_or(default.spawn_contention),
            shutdown_time: self.shutdown_time.unwrap_or(default.shutdown_time),
        }
    }
}

/// A share of the spawn time, 0 or more.
fn non_negative(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 0.0 => Ok(value),
        _ => Err(format!(
            "'{text}' is not a share of the spawn time, 0 or more (0.27: each other spawn adds 27%)"
        )),
    }
}

/// A share, 0 to 1.
fn fraction(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(value) if (0.0..=1.0).contains(&value) => Ok(value),
        _ => Err(format!(
            "'{text}' is not a share from 0 to 1 (0.001 is one request in a thousand)"
        )),
    }
}

/// `ferry plan LOG --p99 DURATION`.
#[derive(Args, Debug, Clone)]
pub struct PlanArgs {
    /// The access log: ferry's own (--access-log, combined or JSON), or the combined log
    /// format followed by a request time (nginx $request_time in seconds, Apache %D in
    /// microseconds).
    pub log: PathBuf,
    /// The target: served requests' 99th-percentile latency at most this (e.g. 200ms).
    #[arg(long, value_parser = ferry_sim::parse_duration)]
    pub p99: SimDuration,
    /// The target: at most this share of requests answered 503 (0 to 1).
    #[arg(long, default_value_t = 0.001, value_parser = fraction)]
    pub max_503_rate: f64,
    /// The min instances the sweep tries.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 2, 4], value_parser = values::count::<usize>)]
    pub sweep_min_instances: Vec<usize>,
    /// The pool idle times the sweep tries, in seconds.
    #[arg(long, value_delimiter = ',', default_values_t = [60u64, 300, 900], value_parser = values::at_least_one::<u64>)]
    pub sweep_pool_idle_time: Vec<u64>,
    /// Draw the cost/latency frontier into this SVG file.
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// The settings the sweep keeps fixed (--max-pool-size, --min-instances and
    /// --pool-idle-time are what it varies).
    #[command(flatten)]
    pub pool: ReplayPoolArgs,
}

impl PlanArgs {
    pub fn options(&self) -> ferry_sim::plan::PlanOptions {
        ferry_sim::plan::PlanOptions {
            p99: self.p99,
            max_503_rate: self.max_503_rate,
            pool: self.pool.pool(),
            app: self.pool.app(),
            min_instances: self.sweep_min_instances.clone(),
            pool_idle_times: self
                .sweep_pool_idle_time
                .iter()
                .map(|&s| SimDuration::from_secs(s))
                .collect(),
        }
    }
}
