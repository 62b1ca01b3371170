//! The command line: bad input is refused with a clear message and the documented exit code;
//! `ferry status` shows what passenger-status shows.

use ferry_e2e::{run_ferry, tempdir::TempDir, testapp_bin, Ferry, Finished};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

/// `ferry start <args>` on a free port and a fresh registry; it is expected to exit by
/// itself. Returns how it ended and the registry, to check that nothing was registered.
fn start_expecting_exit(args: &[&str]) -> (Finished, TempDir) {
    let registry = TempDir::new("ferry-e2e-cli");
    let port = ferry_e2e::free_port().to_string();
    let mut all = vec!["start"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--port", &port, "--address", "127.0.0.1"]);
    let finished = run_ferry(&all, registry.path(), LIMIT);
    (finished, registry)
}

fn assert_nothing_started(finished: &Finished, registry: &TempDir) {
    assert!(
        !finished.stdout.contains("web server started"),
        "no banner: {}",
        finished.stdout
    );
    let entries: Vec<_> = std::fs::read_dir(registry.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(entries.is_empty(), "nothing registered: {entries:?}");
}

/// The error output is exactly one non-empty line.
fn one_line(finished: &Finished) -> String {
    let lines: Vec<&str> = finished
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "a one-line error, got: {:?}",
        finished.stderr
    );
    lines[0].to_string()
}

#[test]
fn a_nonexistent_app_dir_exits_2_with_a_one_line_error() {
    let missing = std::env::temp_dir().join("ferry-e2e-no-such-dir/app");
    let (finished, registry) = start_expecting_exit(&[missing.to_str().unwrap()]);
    assert_eq!(finished.status.code(), Some(2), "{}", finished.stderr);
    let line = one_line(&finished);
    assert!(
        line.contains(missing.to_str().unwrap()),
        "the error names the directory: {line}"
    );
    assert_nothing_started(&finished, &registry);
}

#[test]
fn a_dir_without_an_app_and_no_start_command_exits_2() {
    let empty = TempDir::new("ferry-e2e-empty-app");
    let (finished, registry) = start_expecting_exit(&[empty.path().to_str().unwrap()]);
    assert_eq!(finished.status.code(), Some(2), "{}", finished.stderr);
    let line = one_line(&finished);
    assert!(
        line.contains("passenger_wsgi.py") && line.contains("--app-start-command"),
        "{line}"
    );
    assert_nothing_started(&finished, &registry);
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let registry = TempDir::new("ferry-e2e-cli");
    let app_dir = ferry_e2e::repo_root().join("tests");
    let command = testapp_bin().display().to_string();
    let args = [
        "start",
        app_dir.to_str().unwrap(),
        "--app-start-command",
        &command,
        "--port",
        &port,
        "--address",
        "127.0.0.1",
    ];
    let finished = run_ferry(&args, registry.path(), LIMIT);
    assert!(!finished.status.success(), "{}", finished.stdout);
    let line = one_line(&finished);
    assert!(line.contains(&port), "the error names the port: {line}");
    assert!(
        line.to_lowercase().contains("in use"),
        "the error says it is in use: {line}"
    );
    assert_nothing_started(&finished, &registry);
}

#[test]
fn status_with_nothing_running_says_so_and_exits_1() {
    let registry = TempDir::new("ferry-e2e-cli");
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["stop"],
        &["restart"],
    ] {
        let finished = run_ferry(args, registry.path(), LIMIT);
        assert_eq!(
            finished.status.code(),
            Some(1),
            "{args:?}: {}",
            finished.stderr
        );
        assert!(
            finished.stderr.contains("not running"),
            "{args:?}: {}",
            finished.stderr
        );
    }
}

#[test]
fn min_instances_above_max_pool_size_exits_2_naming_both() {
    let (finished, registry) = start_expecting_exit(&[
        ferry_e2e::repo_root().join("tests").to_str().unwrap(),
        "--app-start-command",
        &testapp_bin().display().to_string(),
        "--min-instances",
        "7",
        "--max-pool-size",
        "6",
    ]);
    assert_eq!(finished.status.code(), Some(2), "{}", finished.stderr);
    let line = one_line(&finished);
    assert!(
        line.contains("min-instances") && line.contains("max-pool-size"),
        "{line}"
    );
    assert!(line.contains('7') && line.contains('6'), "{line}");
    assert_nothing_started(&finished, &registry);
}

const TEXT_FIELDS: [&str; 15] = [
    "Version",
    "Date",
    "Instance",
    "Max pool size",
    "Processes",
    "Requests in top-level queue",
    "App root",
    "Requests in queue",
    "PID",
    "Sessions",
    "Processed",
    "Uptime",
    "CPU",
    "Memory",
    "Last used",
];

#[test]
fn status_text_shows_every_passenger_status_field() {
    let ferry = Ferry::start_testapp(&["--min-instances", "2"], &[]);
    let pids = ferry.wait_ready(2, LIMIT);
    let out = ferry.ferry_command(&["status"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for field in TEXT_FIELDS {
        assert!(
            text.contains(&format!("{field}:")) || text.contains(&format!("{field} ")),
            "no {field:?} in:\n{text}"
        );
    }
    for pid in pids {
        assert!(
            text.contains(&format!("PID: {pid}")),
            "process {pid} is listed:\n{text}"
        );
    }
    let root = ferry_e2e::repo_root().join("tests").canonicalize().unwrap();
    assert!(
        text.contains(&format!("App root: {}", root.display())),
        "{text}"
    );
}

#[test]
fn status_json_has_every_field() {
    let ferry = Ferry::start_testapp(&["--max-pool-size", "4"], &[]);
    let pid = ferry.wait_ready(1, LIMIT)[0];
    assert_eq!(ferry_e2e::get(ferry.addr(), "/").unwrap().status, 200);
    let status = ferry.status();
    assert!(status["version"].is_string(), "{status}");
    assert_eq!(status["instance"], ferry.child.id().to_string(), "{status}");
    assert_eq!(status["max_pool_size"], 4);
    assert_eq!(status["process_count"], 1);
    assert_eq!(status["top_level_queue"], 0);
    let group = &status["groups"][0];
    let root = ferry_e2e::repo_root().join("tests").canonicalize().unwrap();
    assert_eq!(group["app_root"], root.display().to_string());
    assert_eq!(group["queue"], 0);
    let process = &group["processes"][0];
    assert_eq!(process["pid"], pid);
    assert_eq!(process["state"], "ready");
    assert_eq!(process["sessions"], 0);
    assert_eq!(process["processed"], 1, "{process}");
    for number in ["uptime_s", "cpu_percent", "last_used_s"] {
        assert!(
            process[number].as_f64().is_some_and(|v| v >= 0.0),
            "{number}: {process}"
        );
    }
    assert!(
        process["memory_bytes"].as_u64().is_some_and(|m| m > 0),
        "{process}"
    );
}

#[test]
fn with_two_instances_status_lists_them_unless_a_port_picks_one() {
    let registry = Arc::new(TempDir::new("ferry-e2e-two"));
    let first = Ferry::start_testapp_in(registry.clone(), &[], &[]);
    let second = Ferry::start_testapp_in(registry.clone(), &[], &[]);

    let out = first.ferry_command(&["status"]);
    assert!(!out.status.success(), "ambiguous without --port");
    let listing =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    for ferry in [&first, &second] {
        assert!(
            listing.contains(&format!("port {}", ferry.port)),
            "port {} is listed: {listing}",
            ferry.port
        );
        assert!(listing.contains(&ferry.child.id().to_string()), "{listing}");
    }

    for ferry in [&first, &second] {
        let out = ferry.ferry_command(&["status", "--json", "--port", &ferry.port.to_string()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let status: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(status["port"], ferry.port);
        assert_eq!(status["instance"], ferry.child.id().to_string());
    }
}
