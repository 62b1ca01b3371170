//! Replaying an access log: the scenario a log makes (for `ferry sim --replay` and
//! `ferry plan`), and a scenario file's `[replay]` table naming a log.

use crate::accesslog::{AccessLog, LoggedRequest};
use crate::duration::SimDuration;
use crate::events::EventKind;
use crate::requests::NO_CLIENT;
use crate::scenario::{AppModel, PoolSettings, Scenario, ScenarioError};
use crate::sim::Simulation;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

/// `[replay]`: requests taken from an access log, each arriving at its logged time with its
/// logged duration as its service time (no `request_overhead` added: a logged duration has
/// it already).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replay {
    /// The log's path, relative to the scenario file.
    pub log: String,
    /// The requests, read when the scenario is loaded.
    #[serde(skip)]
    pub requests: Arc<Vec<LoggedRequest>>,
    /// What the reader made of the log, for the report.
    #[serde(skip)]
    pub read: Option<Arc<ReadSummary>>,
}

/// How a log was read: shown in the report, so that no skipped line goes unseen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReadSummary {
    pub file: String,
    pub lines: usize,
    pub requests: usize,
    pub unreadable: usize,
    /// The first unreadable lines with their line numbers, and how many more.
    pub unreadable_lines: String,
    /// Unix time of the replay's 0 s (the log's first second): what lines its time series
    /// up with the real server's clock.
    pub start_unix_s: i64,
}

impl Replay {
    pub fn of_log(log: AccessLog) -> Replay {
        let read = ReadSummary {
            file: log.file.clone(),
            lines: log.lines,
            requests: log.requests.len(),
            unreadable: log.unreadable_count,
            unreadable_lines: log.unreadable_summary(),
            start_unix_s: log.start_unix_s,
        };
        Replay {
            log: log.file,
            requests: Arc::new(log.requests),
            read: Some(Arc::new(read)),
        }
    }
}

/// Reads the log a loaded scenario's `[replay]` names, relative to the scenario's file.
pub(crate) fn attach_log(
    scenario: &mut Scenario,
    scenario_path: &Path,
) -> Result<(), ScenarioError> {
    let Some(replay) = &scenario.replay else {
        return Ok(());
    };
    let dir = scenario_path.parent().unwrap_or(Path::new("."));
    let log = AccessLog::load_detected(&dir.join(&replay.log)).map_err(|error| ScenarioError {
        file: scenario_path.display().to_string(),
        line: None,
        key: Some("replay.log".into()),
        message: error.to_string(),
    })?;
    let name = replay.log.clone();
    let mut attached = Replay::of_log(log);
    attached.log = name;
    scenario.replay = Some(attached);
    Ok(())
}

/// `--spawn-time` when not given: the simulated app's default.
pub const REPLAY_SPAWN_TIME_DEFAULT: SimDuration = SimDuration::from_millis(500);

/// What a log cannot tell about the app, which a replay takes from flags: how long a
/// process takes to start and to stop. The defaults are the simulated app's (measured with
/// a Python WSGI app); an app that starts without competing for the CPU (one that waits
/// on something else) has a `spawn_contention` of 0.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReplayApp {
    pub spawn_time: SimDuration,
    pub spawn_contention: f64,
    pub shutdown_time: SimDuration,
}

impl Default for ReplayApp {
    fn default() -> Self {
        let app = AppModel::default();
        ReplayApp {
            spawn_time: REPLAY_SPAWN_TIME_DEFAULT,
            spawn_contention: app.spawn_contention,
            shutdown_time: match app.shutdown_time {
                crate::Dist::Fixed(time) => time,
                _ => unreachable!("the default shutdown time is fixed"),
            },
        }
    }
}

impl ReplayApp {
    fn model(&self) -> AppModel {
        AppModel {
            spawn_time: crate::Dist::Fixed(self.spawn_time),
            spawn_contention: self.spawn_contention,
            shutdown_time: crate::Dist::Fixed(self.shutdown_time),
            ..AppModel::default()
        }
    }
}

/// The scenario `ferry sim --replay` runs: the log's requests, the given pool settings and
/// app, and time to the last request's end plus a second, in whole seconds. Settings the
/// engine refuses (`min_instances` above `max_pool_size`, …) are an error saying so.
pub fn scenario_of_log(
    log: AccessLog,
    pool: PoolSettings,
    app: &ReplayApp,
) -> Result<Scenario, String> {
    let name = Path::new(&log.file)
        .file_name()
        .map_or_else(|| log.file.clone(), |n| n.to_string_lossy().into_owned());
    let span_s = log.span_nanos().div_ceil(1_000_000_000) + 1;
    let scenario = Scenario {
        name,
        description: Some(format!("replay of {}", log.file)),
        seed: 0,
        duration: SimDuration::from_secs(span_s),
        swarm_checks: false,
        pool,
        app: app.model(),
        traffic: Vec::new(),
        fault: Vec::new(),
        expect: Vec::new(),
        status: Vec::new(),
        replay: Some(Replay::of_log(log)),
    };
    scenario
        .engine_config()
        .validate()
        .map_err(|error| error.to_string())?;
    Ok(scenario)
}

impl Simulation<'_> {
    /// Schedules the `index`-th replayed request, if the log and the run reach it.
    pub(crate) fn schedule_replay(&mut self, index: usize) {
        let replay = self.scenario.replay.as_ref().expect("replaying");
        if let Some(request) = replay.requests.get(index) {
            if request.arrival_nanos < self.scenario.duration.0 {
                let index = index as u32;
                let kind = EventKind::ReplayArrival { index };
                self.queue.schedule(request.arrival_nanos, kind);
            }
        }
    }

    /// The `index`-th request of the log arrives, served for its logged duration.
    pub(crate) fn replay_arrival(&mut self, index: usize) {
        self.schedule_replay(index + 1);
        let replay = self.scenario.replay.as_ref().expect("replaying");
        let logged = replay.requests[index];
        // The replay's source is the last (see `Simulation::new`).
        let source = (self.sources.len() - 1) as u32;
        let request = self.send_request(source, NO_CLIENT, Some(logged.service_nanos));
        if let Some(after) = logged.gone_after_nanos {
            // It left the real queue then; it leaves the replay's if still there.
            self.queue
                .schedule(self.now + after, EventKind::LeaveQueue { request });
        }
    }
}
