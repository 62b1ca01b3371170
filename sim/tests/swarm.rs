//! A bounded swarm: random scenarios with every invariant checked after every event.

mod common;

use common::{cli, data_path, run_file};
use ferry_sim::{run, swarm, SimOptions};

#[test]
fn fifty_random_scenarios_run_clean() {
    for seed in 0..50 {
        let scenario = swarm::generate(seed);
        let report = run(&scenario, seed, None);
        if let Some(v) = &report.violation {
            panic!(
                "swarm seed {seed} broke: {v}\nreproduce: ferry sim --swarm 1 --seed {seed}\n{}",
                scenario.to_toml()
            );
        }
    }
}

/// The first engine bug the swarm found, shrunk: while an old process had been up for
/// `stable_uptime`, every spawn failure counted as the first of a streak, so an exec failure
/// was retried at once, forever ("virtual time does not advance"). It must back off now.
#[test]
fn spawn_failures_next_to_a_stable_process_back_off() {
    let (code, out, _) = run_file(data_path(
        "regression-backoff-next-to-a-stable-process.toml",
    ));
    assert_eq!(code, 0, "{out}");
}

/// The swarm's shrink check (issue 11) failed here: 9175 requests turned away while spawns
/// failed counted toward the arrival rate, and after the load dropped 2 requests a second
/// kept 2.23 processes on average where min_instances 1, plus one, is allowed.
#[test]
fn the_pool_shrinks_after_the_load_drops() {
    let (code, out, _) = run_file(data_path("regression-shrink-after-load-drops.toml"));
    assert_eq!(code, 0, "{out}");
}

#[test]
fn swarm_cli_reports_in_one_line() {
    let options = SimOptions {
        swarm: Some(10),
        seed: Some(0),
        ..SimOptions::default()
    };
    let (code, out, err) = cli(&options);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.starts_with("swarm: 10 scenarios (seeds 0..10) clean"),
        "{out}"
    );
}
