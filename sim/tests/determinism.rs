//! Same scenario and seed, same bytes: text, JSON and SVG.

mod common;

use common::{cli, scenario_path};
use ferry_sim::SimOptions;

fn options(name: &str, json: bool, seed: Option<u64>) -> SimOptions {
    SimOptions {
        scenario: Some(scenario_path(name)),
        seed,
        json,
        ..SimOptions::default()
    }
}

#[test]
fn text_is_byte_identical_across_runs() {
    // Cheap scenarios: debug builds check every engine invariant on every input.
    for name in ["crash.toml", "crash-loop.toml", "queue-full.toml"] {
        let first = cli(&options(name, false, None));
        let second = cli(&options(name, false, None));
        assert_eq!(first, second, "{name}");
    }
}

#[test]
fn json_is_byte_identical_across_runs_and_parses() {
    let first = cli(&options("crash-loop.toml", true, None));
    let second = cli(&options("crash-loop.toml", true, None));
    assert_eq!(first, second);
    let json: serde_json::Value = serde_json::from_str(&first.1).expect("one JSON document");
    assert_eq!(json["scenario"], "crash-loop");
    assert_eq!(json["seed"], 5);
    assert_eq!(json["passed"], true);
    assert_eq!(json["requests"]["served"], 0);
    assert!(json["requests"]["rejected_spawn_failing"].as_u64().unwrap() > 0);
    assert!(json["processes"].as_array().unwrap().len() >= 5);
    assert!(
        json["status"][0]["status"]["totals"]["arrived"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(json["expectations"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["ok"] == true));
}

#[test]
fn another_seed_gives_another_run_and_says_so() {
    let base = cli(&options("crash.toml", false, None));
    let other = cli(&options("crash.toml", false, Some(8)));
    assert_ne!(base.1, other.1);
    assert!(other.1.contains("(seed 8)"));
    let again = cli(&options("crash.toml", false, Some(8)));
    assert_eq!(other, again);
}

#[test]
fn svg_is_byte_identical_across_runs() {
    let dir = std::env::temp_dir().join(format!("ferry-sim-det-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let draw = |file: &str| {
        let path = dir.join(file);
        let mut options = options("crash.toml", false, None);
        options.svg = Some(path.clone());
        assert_eq!(cli(&options).0, 0);
        std::fs::read(path).unwrap()
    };
    assert_eq!(draw("a.svg"), draw("b.svg"));
}
