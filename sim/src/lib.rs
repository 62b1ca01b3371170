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
//! - [`run_cli`] is `ferry sim`.

mod carry_out;
mod checks;
mod clients;
mod dist;
mod duration;
mod events;
mod expect;
mod locate;
mod model;
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
    let text = if options.json {
        report.to_json()
    } else {
        report.to_text()
    };
    if out.write_all(text.as_bytes()).is_err() {
        return 2;
    }
    if let Some(svg_path) = &options.svg {
        if let Err(error) = svg::write_svg(&report, svg_path) {
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
