//! ferry-sim: the pool engine on a virtual clock.
//!
//! A scenario (TOML) describes the pool settings, the app (spawn, service and shutdown
//! times, crashes, spawn failures), client traffic and faults over a stretch of virtual time.
//! The simulator drives the very engine `ferry start` uses, carrying out its commands as the
//! driver would, on an event queue ordered by (virtual time, scheduling order) with seeded
//! random draws: a day of traffic runs in seconds, the same every time for the same seed.
//!
//! - [`Scenario::load`] / [`Scenario::parse`] read and check a scenario;
//! - [`run`] runs one and returns a [`Report`] (text, JSON, SVG);
//! - [`swarm::run_swarm`] runs random scenarios with every invariant checked after every
//!   event, and shrinks a failing one;
//! - [`run_cli`] is `ferry sim`;
//! - [`fidelity`] sets a replay's time series beside a real server's status polls.

pub mod accesslog;
mod carry_out;
mod checks;
mod clients;
mod dist;
mod duration;
mod events;
mod expect;
pub mod fidelity;
mod locate;
mod model;
pub mod plan;
mod plan_svg;
mod replay;
mod report;
mod requests;
mod scenario;
mod series;
mod sim;
mod stats;
pub mod svg;
pub mod swarm;
mod swarm_scenarios;

pub use checks::ExpectResult;
pub use dist::Dist;
pub use duration::{format_duration, parse_duration, SimDuration};
pub use model::{Ending, ProcessRecord};
pub use replay::{scenario_of_log, ReadSummary, Replay, ReplayApp, REPLAY_SPAWN_TIME_DEFAULT};
pub use report::Report;
pub use scenario::{
    AppModel, Bound, Expect, Fault, PoolSettings, ProcessPick, Scenario, ScenarioError,
    SpawnFailure, SpawnFailures, Spread, StatusAt, Traffic,
};
pub use series::TimeSeries;

use std::io::Write;
use std::path::PathBuf;

/// What `ferry sim` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct SimOptions {
    pub scenario: Option<PathBuf>,
    pub seed: Option<u64>,
    pub json: bool,
    pub svg: Option<PathBuf>,
    pub swarm: Option<u64>,
    /// `--replay LOG`: replay an access log instead of a scenario.
    pub replay: Option<ReplayOptions>,
}

/// An access log to replay and the pool to replay it on (`ferry start`'s flags).
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub log: PathBuf,
    pub pool: PoolSettings,
    pub app: ReplayApp,
}

impl ReplayOptions {
    /// The command that replays the same log with the same settings.
    fn command(&self) -> String {
        let p = &self.pool;
        format!(
            "ferry sim --replay {} --max-pool-size {} --min-instances {} --pool-idle-time {} --max-request-queue-size {} --concurrency {} --spawn-time {} --spawn-contention {} --shutdown-time {}",
            self.log.display(),
            p.max_pool_size,
            p.min_instances,
            p.pool_idle_time.as_nanos() / 1_000_000_000,
            p.max_request_queue_size,
            p.concurrency,
            self.app.spawn_time,
            self.app.spawn_contention,
            self.app.shutdown_time
        )
    }
}

/// Reads a log for a replay; unreadable lines (within the 1% allowed) are reported on `err`.
pub fn load_log(
    path: &std::path::Path,
    err: &mut dyn Write,
) -> Result<accesslog::AccessLog, String> {
    let log = accesslog::AccessLog::load_detected(path).map_err(|error| error.to_string())?;
    if log.unreadable_count > 0 {
        let _ = writeln!(
            err,
            "{}: skipped {} unreadable of {} lines: {}",
            log.file,
            log.unreadable_count,
            log.lines,
            log.unreadable_summary()
        );
    }
    Ok(log)
}

/// Runs `scenario` with `seed` to its end and reports. `file` is the path shown in the
/// command that reproduces the run.
pub fn run(scenario: &Scenario, seed: u64, file: Option<&str>) -> Report {
    if scenario.swarm_checks {
        return Report::from_sim(&swarm::run_checked(scenario, seed), file);
    }
    let mut sim = sim::Simulation::new(scenario, seed, false);
    sim.run_until(scenario.duration.as_nanos());
    Report::from_sim(&sim, file)
}

/// Runs `ferry sim`; returns the process exit code: 0 when every expectation holds, 1 when
/// one misses (or an invariant breaks), 2 when the scenario or the arguments are wrong.
pub fn run_cli(options: &SimOptions, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    if let Some(count) = options.swarm {
        if options.scenario.is_some() {
            let _ = writeln!(
                err,
                "ferry sim: --swarm generates its own scenarios; give no SCENARIO"
            );
            return 2;
        }
        return swarm::run_swarm(count, options.seed.unwrap_or(0), out, err);
    }
    if let Some(replay) = &options.replay {
        if options.scenario.is_some() {
            let _ = writeln!(
                err,
                "ferry sim: --replay takes its requests from the log; give no SCENARIO (a scenario can name a log in its [replay] table)"
            );
            return 2;
        }
        let log = match load_log(&replay.log, err) {
            Ok(log) => log,
            Err(error) => {
                let _ = writeln!(err, "ferry sim: {error}");
                return 2;
            }
        };
        let scenario = match scenario_of_log(log, replay.pool.clone(), &replay.app) {
            Ok(scenario) => scenario,
            Err(error) => {
                let _ = writeln!(err, "ferry sim: {error}");
                return 2;
            }
        };
        let file = replay.log.display().to_string();
        let mut report = run(&scenario, options.seed.unwrap_or(0), Some(&file));
        report.reproduce = replay.command();
        return emit(&report, options, out, err);
    }
    let Some(path) = &options.scenario else {
        let _ = writeln!(err, "ferry sim: give a SCENARIO.toml to run, or --swarm N");
        return 2;
    };
    let scenario = match Scenario::load(path) {
        Ok(scenario) => scenario,
        Err(error) => {
            let _ = writeln!(err, "ferry sim: {error}");
            return 2;
        }
    };
    let seed = options.seed.unwrap_or(scenario.seed);
    let file = path.display().to_string();
    let report = run(&scenario, seed, Some(&file));
    emit(&report, options, out, err)
}

/// Prints a report as asked and returns the exit code.
fn emit(report: &Report, options: &SimOptions, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let text = if options.json {
        report.to_json()
    } else {
        report.to_text()
    };
    if out.write_all(text.as_bytes()).is_err() {
        return 2;
    }
    if let Some(svg_path) = &options.svg {
        if let Err(error) = svg::write_svg(report, svg_path) {
            let _ = writeln!(
                err,
                "ferry sim: cannot write {}: {error}",
                svg_path.display()
            );
            return 2;
        }
    }
    if report.passed {
        0
    } else {
        if options.json {
            // The text report prints the command itself; JSON readers get it on stderr too.
            let _ = writeln!(
                err,
                "ferry sim: failed; reproduce with: {}",
                report.reproduce
            );
        }
        1
    }
}

/// Runs `ferry plan LOG`: the table and the recommendation on `out`, the picture into `svg`.
/// Exit code 0 with a recommendation, 1 when no setting meets the target, 2 on bad input.
pub fn run_plan(
    log_path: &std::path::Path,
    options: &plan::PlanOptions,
    svg_path: Option<&std::path::Path>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let log = match load_log(log_path, err) {
        Ok(log) => log,
        Err(error) => {
            let _ = writeln!(err, "ferry plan: {error}");
            return 2;
        }
    };
    let result = plan::plan(&log, options);
    if out
        .write_all(result.to_text(options, &log).as_bytes())
        .is_err()
    {
        return 2;
    }
    if let Some(path) = svg_path {
        let written = plan_svg::render(&result, options)
            .and_then(|svg| std::fs::write(path, svg).map_err(|e| e.to_string()));
        if let Err(error) = written {
            let _ = writeln!(err, "ferry plan: cannot write {}: {error}", path.display());
            return 2;
        }
    }
    if result.recommended.is_some() {
        0
    } else {
        1
    }
}

/// Test-only: runs every simulation of this process on an engine broken on purpose, so that
/// tests can watch the swarm catch, shrink and replay a real violation.
#[cfg(feature = "sabotage")]
pub mod sabotage {
    use std::sync::Mutex;

    static CURRENT: Mutex<Option<ferry_engine::Sabotage>> = Mutex::new(None);

    pub fn set(sabotage: Option<ferry_engine::Sabotage>) {
        *CURRENT.lock().unwrap() = sabotage;
    }

    pub fn current() -> Option<ferry_engine::Sabotage> {
        *CURRENT.lock().unwrap()
    }
}
