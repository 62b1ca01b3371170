//! `ferry sim --replay` and `ferry plan` through the real binary: the pool flags reach the
//! simulator, and a flag without its log is refused.

use ferry_e2e::{run_ferry, tempdir::TempDir};
use serde_json::Value;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

/// Three requests a second for a minute, 0.9 s each (Apache %D, logged at their start).
fn steady_log(dir: &TempDir) -> String {
    let mut text = String::new();
    for second in 0..60 {
        for _ in 0..3 {
            text.push_str(&format!(
                "h - - [30/Nov/2026:10:00:{second:02} +0000] \"GET / HTTP/1.1\" 200 5 \"-\" \"-\" 900000\n"
            ));
        }
    }
    let path = dir.path().join("steady.log");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn sim_replay_takes_ferry_starts_pool_flags() {
    let dir = TempDir::new("ferry-e2e-replay");
    let log = steady_log(&dir);
    let args = [
        "sim",
        "--replay",
        &log,
        "--json",
        "--max-pool-size",
        "3",
        "--min-instances",
        "3",
        "--spawn-time",
        "100ms",
    ];
    let finished = run_ferry(&args, dir.path(), LIMIT);
    assert!(finished.status.success(), "{}", finished.stderr);
    let json: Value = serde_json::from_str(&finished.stdout).expect("one JSON document");
    assert_eq!(json["pool"]["max_pool_size"], 3);
    assert_eq!(json["pool"]["processes_min"], 3);
    assert_eq!(json["requests"]["served"], 180);
    assert_eq!(json["replay"]["requests"], 180);
    // A pool flag without a log to replay is refused, naming what it goes with.
    let refused = run_ferry(&["sim", "--max-pool-size", "3"], dir.path(), LIMIT);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        refused.stderr.contains("go with --replay LOG"),
        "{}",
        refused.stderr
    );
}

#[test]
fn plan_prints_its_recommendation_last() {
    let dir = TempDir::new("ferry-e2e-plan");
    let log = steady_log(&dir);
    let args = [
        "plan",
        &log,
        "--p99",
        "1s",
        "--max-503-rate",
        "0",
        "--sweep-min-instances",
        "3",
        "--sweep-pool-idle-time",
        "60",
        "--spawn-time",
        "100ms",
    ];
    let finished = run_ferry(&args, dir.path(), LIMIT);
    assert!(finished.status.success(), "{}", finished.stderr);
    let last = finished.stdout.lines().last().unwrap_or_default();
    assert_eq!(
        last,
        "recommended: --min-instances 3 --max-pool-size 3 --pool-idle-time 60"
    );
    let bad = run_ferry(
        &["plan", &log, "--p99", "1s", "--max-503-rate", "2"],
        dir.path(),
        LIMIT,
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        bad.stderr.contains("not a share from 0 to 1"),
        "{}",
        bad.stderr
    );
}
