//! Scenario files: the TOML a user writes, checked before anything runs.
//!
//! Every table refuses unknown keys, so a typo is an error rather than a silently ignored
//! setting. Errors name the file, the line and the key, so a user can fix them without
//! reading this code.

use crate::dist::Dist;
use crate::duration::SimDuration;
pub use crate::expect::{Bound, Expect, Spread, StatusAt};
use crate::locate::{field_named_in, key_at, line_of, line_of_key};
use ferry_engine::{Config, ConfigError, GroupConfig, PoolConfig};
use serde::de;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::path::Path;

/// One simulation: the pool, the app, the traffic, the faults and what must hold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Seeds every random draw of the run; `--seed` overrides it.
    #[serde(default)]
    pub seed: u64,
    /// Virtual time the run covers; traffic, faults and checks must fall inside it.
    pub duration: SimDuration,
    /// Run as the swarm does: the engine's invariants after every event, then (after
    /// `duration`) a quiet phase without traffic or faults that must settle, then a shutdown
    /// that must complete. Shrunk swarm failures carry it, so they replay with `ferry sim`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub swarm_checks: bool,
    #[serde(default)]
    pub pool: PoolSettings,
    #[serde(default)]
    pub app: AppModel,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traffic: Vec<Traffic>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fault: Vec<Fault>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expect: Vec<Expect>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status: Vec<StatusAt>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<crate::replay::Replay>,
}

/// The pool's settings, named and defaulted as `ferry start`'s flags and the engine's
/// `PoolConfig`/`GroupConfig` (durations are strings here, not seconds).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoolSettings {
    pub max_pool_size: usize,
    pub min_instances: usize,
    pub pool_idle_time: SimDuration,
    pub max_requests: u64,
    pub max_request_queue_size: usize,
    pub concurrency: u32,
    pub target_concurrency: u32,
    pub max_spawn_concurrency: usize,
    pub start_timeout: SimDuration,
    pub kill_timeout: SimDuration,
    pub shutdown_timeout: SimDuration,
    pub backoff_initial: SimDuration,
    pub backoff_max: SimDuration,
    pub stable_uptime: SimDuration,
    pub crash_respawn_interval: SimDuration,
    pub max_request_time: SimDuration,
    pub max_request_queue_time: SimDuration,
}

impl Default for PoolSettings {
    /// The engine's own defaults, so the simulator never drifts from `ferry start`.
    fn default() -> Self {
        let pool = PoolConfig::default();
        let group = GroupConfig::default();
        PoolSettings {
            max_pool_size: pool.max_pool_size,
            min_instances: group.min_instances,
            pool_idle_time: SimDuration::from_std(pool.pool_idle_time),
            max_requests: group.max_requests,
            max_request_queue_size: group.max_request_queue_size,
            concurrency: group.concurrency,
            target_concurrency: group.target_concurrency,
            max_spawn_concurrency: group.max_spawn_concurrency,
            start_timeout: SimDuration::from_std(group.start_timeout),
            kill_timeout: SimDuration::from_std(pool.kill_timeout),
            shutdown_timeout: SimDuration::from_std(pool.shutdown_timeout),
            backoff_initial: SimDuration::from_std(pool.backoff_initial),
            backoff_max: SimDuration::from_std(pool.backoff_max),
            stable_uptime: SimDuration::from_std(pool.stable_uptime),
            crash_respawn_interval: SimDuration::from_std(pool.crash_respawn_interval),
            max_request_time: SimDuration::from_std(group.max_request_time),
            max_request_queue_time: SimDuration::from_std(group.max_request_queue_time),
        }
    }
}

/// How the simulated app behaves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppModel {
    /// From the spawn command to the process accepting requests.
    pub spawn_time: Dist,
    /// One request's time inside the app.
    pub service_time: Dist,
    /// From a graceful kill to the exit.
    pub shutdown_time: Dist,
    /// Every N-th request forwarded (counted over the whole app) crashes the process serving
    /// it, failing every request in flight there. 0: never.
    pub crash_every: u64,
    /// Spawns started in this window fail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail_spawns: Option<SpawnFailures>,
    /// Each spawn outside `fail_spawns` fails with this probability.
    pub spawn_failure_probability: f64,
    /// Each process crashes this long after it became ready, serving or not: processes
    /// killed young (a crash storm). None: never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub die_after_ready: Option<Dist>,
    /// Each request forwarded hangs its process with this probability, as a SIGSTOP would:
    /// it answers nothing more and ignores graceful kills; only a forced kill ends it.
    pub hang_probability: f64,
    /// Each other spawn in progress when a process starts lengthens its start by this
    /// fraction of its `spawn_time`: processes starting together compete for the CPU.
    pub spawn_contention: f64,
    /// Added to every request's service time: ferry's proxying and the app's own HTTP
    /// handling, which a service time measured inside the app leaves out.
    pub request_overhead: SimDuration,
}

/// Measured on a 2-core machine with a Python WSGI app: 205–236 ms to start alone, 476–565 ms
/// with six starting at once, so each of the five others adds about (2.37 − 1) / 5 ≈ 0.27.
pub const SPAWN_CONTENTION_DEFAULT: f64 = 0.27;
/// Measured: a request through the real server costs its service time plus about 0.65 ms.
pub const REQUEST_OVERHEAD_DEFAULT: SimDuration = SimDuration::from_micros(650);

impl Default for AppModel {
    fn default() -> Self {
        AppModel {
            spawn_time: Dist::Fixed(SimDuration::from_millis(500)),
            service_time: Dist::Fixed(SimDuration::from_millis(20)),
            shutdown_time: Dist::Fixed(SimDuration::from_millis(100)),
            crash_every: 0,
            fail_spawns: None,
            spawn_failure_probability: 0.0,
            die_after_ready: None,
            hang_probability: 0.0,
            spawn_contention: SPAWN_CONTENTION_DEFAULT,
            request_overhead: REQUEST_OVERHEAD_DEFAULT,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpawnFailures {
    #[serde(default)]
    pub from: SimDuration,
    pub until: SimDuration,
    /// How a spawn fails.
    #[serde(default)]
    pub how: SpawnFailure,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpawnFailure {
    /// The app starts, then exits with status 1 after `spawn_time`, before it is ready.
    #[default]
    Exit,
    /// The program cannot be started at all (exec fails): reported at once.
    Exec,
}

/// A stretch of client traffic: open-loop Poisson arrivals (`rate`) or closed-loop clients.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Traffic {
    #[serde(default)]
    pub start: SimDuration,
    /// Default: until the end of the scenario.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<SimDuration>,
    /// Poisson arrivals per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// The rate at the end of the stretch; it changes linearly from `rate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp_to: Option<f64>,
    /// Clients each sending one request at a time, like `wrk -c N`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clients: Option<u32>,
    /// A closed-loop client's pause between an answer and its next request (beyond `rtt`).
    #[serde(default = "zero_dist", skip_serializing_if = "Dist::is_zero")]
    pub think_time: Dist,
    /// The client's network round trip: an answered client sends again no sooner.
    #[serde(default = "default_rtt")]
    pub rtt: SimDuration,
    /// A client gives up on a request not answered within this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disconnect_after: Option<SimDuration>,
    /// A closed-loop client answered 503 sends again this long after the 503 (instead of
    /// `rtt` and `think_time`): reading the answer, closing, connecting again.
    #[serde(default = "default_retry_after_503")]
    pub retry_after_503: Dist,
}

/// Measured: a real HTTP client (keep-alive off after a 503) takes 6–8 ms from one 503 to
/// its next request; resending 1 ms after made the simulator predict 6–9× the real 503s.
pub fn default_retry_after_503() -> Dist {
    Dist::Uniform {
        min: SimDuration::from_millis(6),
        max: SimDuration::from_millis(8),
    }
}

fn zero_dist() -> Dist {
    Dist::Fixed(SimDuration::ZERO)
}

fn default_rtt() -> SimDuration {
    SimDuration::from_millis(1)
}

impl Traffic {
    pub fn end(&self, scenario_duration: SimDuration) -> SimDuration {
        match self.duration {
            Some(d) => SimDuration(self.start.0.saturating_add(d.0).min(scenario_duration.0)),
            None => scenario_duration,
        }
    }
}

/// Something done to the pool at a given time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub at: SimDuration,
    /// Kill a process with SIGKILL: it exits at once, failing its in-flight requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill: Option<ProcessPick>,
    /// Take a process out of rotation (`Input::DetachProcess`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detach: Option<ProcessPick>,
    /// Replace every process, one by one (`Input::RestartGroup`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restart: bool,
}

/// Which process a fault hits, among those alive at that moment, oldest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcessPick {
    /// "process N": the N-th (from 1) live process.
    Nth(usize),
    /// "random": any live process, drawn from the seeded generator.
    Random,
}

impl Serialize for ProcessPick {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ProcessPick::Nth(n) => serializer.serialize_str(&format!("process {n}")),
            ProcessPick::Random => serializer.serialize_str("random"),
        }
    }
}

impl<'de> Deserialize<'de> for ProcessPick {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let bad = || {
            de::Error::custom(format!(
                "\"{text}\" names no process: write \"process 2\" (the second live process) or \"random\""
            ))
        };
        if text.trim() == "random" {
            return Ok(ProcessPick::Random);
        }
        let number = text.trim().strip_prefix("process").ok_or_else(bad)?;
        match number.trim().parse::<usize>() {
            Ok(n) if n >= 1 => Ok(ProcessPick::Nth(n)),
            _ => Err(bad()),
        }
    }
}

/// A scenario that cannot run, located for the user: `file:line: key: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    pub file: String,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ScenarioError {}

/// A setting that cannot work, before it is placed in the file.
struct Invalid {
    /// Where to look: (section, index among `[[section]]`s, key); section "" is the top.
    section: &'static str,
    index: Option<usize>,
    key: &'static str,
    message: String,
}

fn invalid(
    section: &'static str,
    index: Option<usize>,
    key: &'static str,
    message: String,
) -> Invalid {
    Invalid {
        section,
        index,
        key,
        message,
    }
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let file = path.display().to_string();
        let source = std::fs::read_to_string(path).map_err(|error| ScenarioError {
            file: file.clone(),
            line: None,
            key: None,
            message: format!("cannot read the scenario: {error}"),
        })?;
        let mut scenario = Scenario::parse(&source, &file)?;
        crate::replay::attach_log(&mut scenario, path)?;
        Ok(scenario)
    }

    /// Parses and checks scenario text; `file` is only for error messages.
    pub fn parse(source: &str, file: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = toml::from_str(source).map_err(|error| {
            let span = error.span();
            let message = error.message().trim().to_string();
            let offset = span.as_ref().map(|s| s.start);
            let key = offset.and_then(|at| key_at(source, at));
            let key = key.or_else(|| field_named_in(&message));
            ScenarioError {
                file: file.to_string(),
                line: offset.map(|at| line_of(source, at)).or(Some(1)),
                key,
                message,
            }
        })?;
        scenario.validate().map_err(|bad| {
            let key = if bad.section.is_empty() {
                bad.key.to_string()
            } else {
                format!("{}.{}", bad.section, bad.key)
            };
            ScenarioError {
                file: file.to_string(),
                line: line_of_key(source, bad.section, bad.index, bad.key),
                key: Some(key),
                message: bad.message,
            }
        })?;
        Ok(scenario)
    }

    /// The scenario as TOML that [`Scenario::parse`] reads back to an equal scenario.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a scenario always serializes")
    }

    pub fn engine_config(&self) -> Config {
        let p = &self.pool;
        Config {
            pool: PoolConfig {
                max_pool_size: p.max_pool_size,
                pool_idle_time: p.pool_idle_time.to_std(),
                kill_timeout: p.kill_timeout.to_std(),
                shutdown_timeout: p.shutdown_timeout.to_std(),
                backoff_initial: p.backoff_initial.to_std(),
                backoff_max: p.backoff_max.to_std(),
                stable_uptime: p.stable_uptime.to_std(),
                crash_respawn_interval: p.crash_respawn_interval.to_std(),
            },
            groups: vec![GroupConfig {
                name: self.name.clone(),
                min_instances: p.min_instances,
                concurrency: p.concurrency,
                target_concurrency: p.target_concurrency,
                max_request_queue_size: p.max_request_queue_size,
                max_requests: p.max_requests,
                max_spawn_concurrency: p.max_spawn_concurrency,
                start_timeout: p.start_timeout.to_std(),
                max_request_time: p.max_request_time.to_std(),
                max_request_queue_time: p.max_request_queue_time.to_std(),
                // Simulated processes have no memory to measure.
                memory_limit_bytes: 0,
            }],
        }
    }

    fn validate(&self) -> Result<(), Invalid> {
        let end = self.duration;
        if end.0 == 0 {
            return Err(invalid(
                "",
                None,
                "duration",
                "the scenario's duration must be above zero".into(),
            ));
        }
        if let Err(error) = self.engine_config().validate() {
            let key = match error {
                ConfigError::NoGroups => "max_pool_size",
                ConfigError::ZeroMaxPoolSize => "max_pool_size",
                ConfigError::ZeroSpawnConcurrency { .. } => "max_spawn_concurrency",
                ConfigError::MinAboveMax { .. } | ConfigError::MinSumAboveMax { .. } => {
                    "min_instances"
                }
                ConfigError::BackoffMaxBelowInitial => "backoff_max",
                ConfigError::ZeroTargetConcurrency { .. }
                | ConfigError::TargetAboveConcurrency { .. } => "target_concurrency",
            };
            return Err(invalid("pool", None, key, error.to_string()));
        }
        self.validate_app()?;
        for (index, traffic) in self.traffic.iter().enumerate() {
            validate_traffic(traffic, index, end)?;
        }
        for (index, fault) in self.fault.iter().enumerate() {
            let actions = usize::from(fault.kill.is_some())
                + usize::from(fault.detach.is_some())
                + usize::from(fault.restart);
            if actions != 1 {
                return Err(invalid(
                    "fault",
                    Some(index),
                    "at",
                    "a fault needs exactly one of `kill`, `detach` or `restart = true`".into(),
                ));
            }
            within(fault.at, end, "fault", index, "at")?;
        }
        for (index, expect) in self.expect.iter().enumerate() {
            if let Some(at) = expect.at {
                within(at, end, "expect", index, "at")?;
            }
            if let Some(spread) = &expect.spread {
                if spread.max_ratio.is_nan() || spread.max_ratio < 1.0 {
                    return Err(invalid(
                        "expect",
                        Some(index),
                        "spread",
                        format!("max_ratio must be at least 1, not {}", spread.max_ratio),
                    ));
                }
                if spread.from > expect.at.unwrap_or(end) {
                    return Err(invalid(
                        "expect",
                        Some(index),
                        "spread",
                        "`from` must not be after the check's `at`".into(),
                    ));
                }
            }
        }
        for (index, status) in self.status.iter().enumerate() {
            within(status.at, end, "status", index, "at")?;
        }
        Ok(())
    }

    fn validate_app(&self) -> Result<(), Invalid> {
        let app = &self.app;
        for (key, dist) in [
            ("spawn_time", &app.spawn_time),
            ("service_time", &app.service_time),
            ("shutdown_time", &app.shutdown_time),
        ] {
            dist.validate()
                .map_err(|message| invalid("app", None, key, message))?;
        }
        if let Some(window) = &app.fail_spawns {
            if window.from > window.until {
                return Err(invalid(
                    "app",
                    None,
                    "fail_spawns",
                    "`from` is after `until`".into(),
                ));
            }
        }
        let c = app.spawn_contention;
        if !(c.is_finite() && c >= 0.0) {
            return Err(invalid(
                "app",
                None,
                "spawn_contention",
                format!("a fraction of the spawn time, at least 0, not {c}"),
            ));
        }
        let p = app.spawn_failure_probability;
        if !(0.0..=1.0).contains(&p) {
            return Err(invalid(
                "app",
                None,
                "spawn_failure_probability",
                format!("a probability is between 0 and 1, not {p}"),
            ));
        }
        Ok(())
    }
}

fn validate_traffic(traffic: &Traffic, index: usize, end: SimDuration) -> Result<(), Invalid> {
    let here = |key, message: String| invalid("traffic", Some(index), key, message);
    match (traffic.rate, traffic.clients) {
        (Some(_), Some(_)) => {
            return Err(here(
                "clients",
                "give `rate` (open loop) or `clients` (closed loop), not both".into(),
            ))
        }
        (None, None) => {
            return Err(here(
                "start",
                "a traffic stretch needs `rate` (requests per second) or `clients`".into(),
            ))
        }
        _ => {}
    }
    for (key, rate) in [("rate", traffic.rate), ("ramp_to", traffic.ramp_to)] {
        if let Some(rate) = rate {
            if !(rate.is_finite() && rate >= 0.0) {
                return Err(here(
                    key,
                    format!("a rate is a number of requests per second, at least 0, not {rate}"),
                ));
            }
        }
    }
    if traffic.ramp_to.is_some() && traffic.rate.is_none() {
        return Err(here("ramp_to", "`ramp_to` goes with `rate`".into()));
    }
    if traffic.duration == Some(SimDuration::ZERO) {
        return Err(here(
            "duration",
            "a traffic stretch lasts more than zero".into(),
        ));
    }
    if traffic.start >= end {
        return Err(here(
            "start",
            format!("starts at or after the scenario's end ({end})"),
        ));
    }
    traffic
        .think_time
        .validate()
        .map_err(|message| here("think_time", message))?;
    traffic
        .retry_after_503
        .validate()
        .map_err(|message| here("retry_after_503", message))
}

fn within(
    at: SimDuration,
    end: SimDuration,
    section: &'static str,
    index: usize,
    key: &'static str,
) -> Result<(), Invalid> {
    if at > end {
        return Err(invalid(
            section,
            Some(index),
            key,
            format!("{at} is after the scenario's end ({end})"),
        ));
    }
    Ok(())
}
