//! Every shipped scenario passes its own expectations.

mod common;

use common::{run_file, scenario_path};
use ferry_sim::{run, Scenario, SimDuration};

fn passes(name: &str) {
    let path = scenario_path(name);
    let (code, out, err) = run_file(path);
    assert_eq!(code, 0, "{name} failed:\n{out}\n{err}");
    assert!(out.contains("result      PASS"), "{out}");
    assert!(err.is_empty(), "{err}");
}

#[test]
fn single_process() {
    passes("single-process.toml");
}

#[test]
fn min_instances() {
    passes("min-instances.toml");
}

#[test]
fn crash() {
    passes("crash.toml");
}

#[test]
fn burst() {
    passes("burst.toml");
}

#[test]
fn burst_fast() {
    passes("burst-fast.toml");
}

#[test]
fn async_app() {
    passes("async-app.toml");
}

#[test]
fn idle_300s() {
    passes("idle-300s.toml");
}

#[test]
fn light_after_burst() {
    passes("light-after-burst.toml");
}

#[test]
fn flood_then_idle() {
    passes("flood-then-idle.toml");
}

#[test]
fn queue_full() {
    passes("queue-full.toml");
}

#[test]
fn crash_loop() {
    passes("crash-loop.toml");
}

/// The whole day is 8.7 M requests: seconds in release, too long for a debug test run. Run
/// it with `cargo test --release -p ferry-sim --test scenarios`.
#[test]
#[cfg_attr(debug_assertions, ignore = "8.7 M requests: run with --release")]
fn day() {
    passes("day.toml");
}

/// The day's first hour, with the day's settings, for debug test runs.
#[test]
fn day_first_hour() {
    let mut scenario = Scenario::load(&scenario_path("day.toml")).expect("day.toml loads");
    let hour = SimDuration::from_secs(3600);
    scenario.duration = hour;
    scenario.traffic.retain(|t| t.start < hour);
    scenario.fault.retain(|f| f.at <= hour);
    scenario.status.clear();
    scenario.expect.clear();
    let report = run(&scenario, scenario.seed, None);
    assert!(report.passed, "{}", report.to_text());
    // 30 requests per second for an hour.
    let served = report.requests.served;
    assert!((104_000..112_000).contains(&served), "{served}");
    assert_eq!(report.requests.rejected + report.requests.failed, 0);
}

/// A shipped scenario's expectations are checked, not decoration: break one and the run
/// fails, naming the key, the observed value and the command that reproduces it.
#[test]
fn a_missed_expectation_fails_and_says_how_to_reproduce() {
    let text = std::fs::read_to_string(scenario_path("crash.toml")).unwrap();
    let text = text.replace("spawns = 3", "spawns = 4");
    let path = common::temp_scenario("crash-broken.toml", &text);
    let (code, out, _) = run_file(path.clone());
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("MISS  at 10s      spawns = 4 (observed 3)"),
        "{out}"
    );
    let reproduce = format!("reproduce   ferry sim {} --seed 7", path.display());
    assert!(out.contains(&reproduce), "{out}");
}
