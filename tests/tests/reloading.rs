//! Code reloading as Passenger does it: touching `tmp/restart.txt` (or the file in
//! `--restart-dir`) replaces every app process without a failed request; `--reload` does the
//! same when a Python file of the app changes.

use ferry_e2e::{tempdir::TempDir, wait_for, Ferry, Load};
use std::path::Path;
use std::time::{Duration, SystemTime};

const LIMIT: Duration = Duration::from_secs(30);

/// An app directory of the generic test app, with `tmp/`, so touching files there affects
/// only this test's server.
fn app_dir() -> TempDir {
    let dir = TempDir::new("ferry-e2e-reload-app");
    std::fs::create_dir(dir.path().join("tmp")).unwrap();
    dir
}

fn start(app: &Path, extra: &[&str]) -> Ferry {
    let command = ferry_e2e::testapp_bin().display().to_string();
    let mut args = vec![
        app.to_str().unwrap(),
        "--app-start-command",
        &command,
        "--min-instances",
        "2",
    ];
    args.extend_from_slice(extra);
    Ferry::start(&args, &[])
}

/// Creates `path` or moves its mtime forward, as `touch` does.
fn touch(path: &Path) {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap();
    let later = std::fs::metadata(path)
        .unwrap()
        .modified()
        .unwrap()
        .max(SystemTime::now())
        + Duration::from_secs(1);
    file.set_modified(later).unwrap();
}

/// Waits until none of `old` is alive in the pool and `count` new processes are ready.
fn wait_replaced(ferry: &Ferry, old: &[u32], count: usize) -> Vec<u32> {
    wait_for("every process to be replaced", LIMIT, || {
        let ready = ferry.pids_in("ready");
        let all = ferry.all_pids();
        (ready.len() == count && all.iter().all(|pid| !old.contains(pid))).then_some(ready)
    })
}

fn assert_all_served(outcomes: &[ferry_e2e::Outcome]) {
    assert!(!outcomes.is_empty());
    for (i, outcome) in outcomes.iter().enumerate() {
        match outcome {
            Ok(response) => assert_eq!(response.status, 200, "request {i}: {}", response.text()),
            Err(e) => panic!("request {i} of {} failed: {e}", outcomes.len()),
        }
    }
}

#[test]
fn touching_restart_txt_under_load_replaces_every_process_with_no_failed_request() {
    let app = app_dir();
    let ferry = start(app.path(), &[]);
    let old = ferry.wait_ready(2, LIMIT);
    let load = Load::start(ferry.addr(), "/");
    load.wait_more(20, LIMIT);
    touch(&app.path().join("tmp/restart.txt"));
    wait_replaced(&ferry, &old, 2);
    ferry.wait_output("restart.txt changed", LIMIT);
    load.wait_more(20, LIMIT);
    assert_all_served(&load.stop());

    // Once more: a second touch is a second restart.
    let second = ferry.wait_ready(2, LIMIT);
    touch(&app.path().join("tmp/restart.txt"));
    wait_replaced(&ferry, &second, 2);
}

#[test]
fn a_restart_txt_present_at_start_restarts_nothing_until_touched() {
    let app = app_dir();
    touch(&app.path().join("tmp/restart.txt"));
    let ferry = start(app.path(), &[]);
    let first = ferry.wait_ready(2, LIMIT);
    // The check runs every 250 ms: after a few of them the same processes still serve.
    let spawns = ferry.total("spawns");
    ferry.wait_output("is ready", LIMIT);
    let load = Load::start(ferry.addr(), "/");
    load.wait_more(200, LIMIT);
    assert_all_served(&load.stop());
    assert_eq!(ferry.total("spawns"), spawns, "{}", ferry.status());
    assert_eq!(ferry.pids_in("ready").len(), first.len());
}

#[test]
fn restart_dir_moves_the_watched_file() {
    let app = app_dir();
    let elsewhere = TempDir::new("ferry-e2e-restart-dir");
    let ferry = start(
        app.path(),
        &["--restart-dir", elsewhere.path().to_str().unwrap()],
    );
    let old = ferry.wait_ready(2, LIMIT);
    touch(&elsewhere.path().join("restart.txt"));
    wait_replaced(&ferry, &old, 2);
}

#[test]
fn reload_restarts_when_a_python_file_changes() {
    let app = app_dir();
    std::fs::write(app.path().join("views.py"), "x = 1\n").unwrap();
    let ferry = start(app.path(), &["--reload"]);
    let old = ferry.wait_ready(2, LIMIT);
    touch(&app.path().join("views.py"));
    wait_replaced(&ferry, &old, 2);
    ferry.wait_output("--reload", LIMIT);
}

#[test]
fn while_always_restart_txt_exists_each_request_gets_a_process_started_after_it() {
    let app = app_dir();
    let flag = app.path().join("tmp/always_restart.txt");
    touch(&flag);
    let ferry = start(app.path(), &[]);
    ferry.wait_output("always_restart.txt: on", LIMIT);
    assert_eq!(ferry.group()["always_restart"], true);
    let mut served = Vec::new();
    for _ in 0..3 {
        let before = ferry.all_pids();
        let response = ferry_e2e::get(ferry.addr(), "/pid").expect("GET /pid");
        assert_eq!(response.status, 200, "{}", response.text());
        let pid = ferry_e2e::pid_of(&response).expect("a pid");
        assert!(
            !before.contains(&pid) && !served.contains(&pid),
            "{pid} was started for this request (alive before: {before:?}, served: {served:?})"
        );
        served.push(pid);
    }
    std::fs::remove_file(&flag).unwrap();
    ferry.wait_output("always_restart.txt: off", LIMIT);
    // Back to reusing processes: a request goes to one that was there before it.
    ferry.wait_ready(2, LIMIT);
    for _ in 0..3 {
        let before = ferry.all_pids();
        let response = ferry_e2e::get(ferry.addr(), "/pid").unwrap();
        let pid = ferry_e2e::pid_of(&response).expect("a pid");
        assert!(before.contains(&pid), "{pid} among {before:?}");
    }
}
