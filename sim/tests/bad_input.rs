//! Scenarios that cannot run are refused before anything runs: exit 2, with the file, the
//! line and the key named.

mod common;

use common::{run_file, temp_scenario};

const GOOD: &str = r#"name = "ok"
duration = "10s"

[pool]
max_pool_size = 2
min_instances = 1

[app]
service_time = "20ms"

[[traffic]]
rate = 5
"#;

/// Runs `text` and returns stderr, checking exit 2 and an empty stdout.
fn refused(name: &str, text: &str) -> (String, String) {
    let path = temp_scenario(name, text);
    let (code, out, err) = run_file(path.clone());
    assert_eq!(
        code, 2,
        "{name}: expected exit 2\nstdout: {out}\nstderr: {err}"
    );
    assert!(out.is_empty(), "nothing may run: {out}");
    (err, path.display().to_string())
}

#[test]
fn the_good_scenario_runs() {
    let (code, out, err) = run_file(temp_scenario("good.toml", GOOD));
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn unknown_key() {
    let text = GOOD.replace("max_pool_size = 2", "max_pool_size = 2\nmax_pool_sise = 3");
    let (err, file) = refused("unknown-key.toml", &text);
    assert!(err.contains(&format!("{file}:6:")), "{err}");
    assert!(err.contains("pool.max_pool_sise"), "{err}");
    assert!(err.contains("unknown field"), "{err}");
}

#[test]
fn unknown_top_level_table() {
    let text = format!("{GOOD}\n[[expectt]]\nat = \"5s\"\n");
    let (err, file) = refused("unknown-table.toml", &text);
    assert!(err.contains(&format!("{file}:14:")), "{err}");
    assert!(err.contains("expectt"), "{err}");
}

#[test]
fn wrong_type() {
    let text = GOOD.replace("rate = 5", "rate = \"lots\"");
    let (err, file) = refused("wrong-type.toml", &text);
    assert!(err.contains(&format!("{file}:12:")), "{err}");
    assert!(err.contains("traffic.rate"), "{err}");
    assert!(err.contains("invalid type"), "{err}");
}

#[test]
fn negative_duration() {
    let text = GOOD.replace("service_time = \"20ms\"", "service_time = \"-20ms\"");
    let (err, file) = refused("negative.toml", &text);
    assert!(err.contains(&format!("{file}:9:")), "{err}");
    assert!(err.contains("app.service_time"), "{err}");
    assert!(err.contains("negative"), "{err}");
}

#[test]
fn negative_duration_inside_an_inline_table() {
    let text = GOOD.replace(
        "service_time = \"20ms\"",
        "service_time = { dist = \"exponential\", mean = \"-5ms\" }",
    );
    let (err, file) = refused("negative-inline.toml", &text);
    assert!(err.contains(&format!("{file}:9:")), "{err}");
    assert!(err.contains("negative"), "{err}");
    assert!(err.contains("app.service_time"), "{err}");
}

#[test]
fn min_above_max_uses_the_engines_message() {
    let text = GOOD.replace("min_instances = 1", "min_instances = 3");
    let (err, file) = refused("min-above-max.toml", &text);
    assert!(err.contains(&format!("{file}:6:")), "{err}");
    assert!(err.contains("pool.min_instances"), "{err}");
    assert!(
        err.contains("min_instances (3) of group 'ok' is above max_pool_size (2)"),
        "{err}"
    );
}

#[test]
fn a_check_after_the_end() {
    let text = format!("{GOOD}\n[[expect]]\nat = \"11s\"\nprocesses = 1\n");
    let (err, file) = refused("late-expect.toml", &text);
    assert!(err.contains(&format!("{file}:15:")), "{err}");
    assert!(err.contains("expect.at"), "{err}");
    assert!(err.contains("after the scenario's end"), "{err}");
}

#[test]
fn traffic_without_rate_or_clients() {
    let text = GOOD.replace("rate = 5", "start = \"1s\"");
    let (err, file) = refused("no-rate.toml", &text);
    assert!(err.contains(&format!("{file}:12:")), "{err}");
    assert!(err.contains("`rate`"), "{err}");
}

#[test]
fn missing_file() {
    let (code, out, err) = run_file("/nonexistent/scenario.toml".into());
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(err.contains("/nonexistent/scenario.toml"), "{err}");
}

#[test]
fn no_scenario_and_no_swarm() {
    let (code, _, err) = common::cli(&ferry_sim::SimOptions::default());
    assert_eq!(code, 2);
    assert!(err.contains("SCENARIO"), "{err}");
}
