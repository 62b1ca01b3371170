//! `ferry start`'s flags as a Passenger user types them: values that cannot work are refused
//! naming the flag, a relative --python is found as a shell would find it, errors say where
//! ferry looked, and the environment reaches the app under Passenger's names.

use ferry_e2e::{get, run_ferry, tempdir::TempDir, testapp_bin, Ferry, Finished};
use std::sync::Arc;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

/// `ferry start <args>` with the test app on a free port; expected to exit by itself.
fn start_expecting_exit(args: &[&str]) -> Finished {
    let registry = TempDir::new("ferry-e2e-flags");
    let app = ferry_e2e::repo_root().join("tests");
    let port = ferry_e2e::free_port().to_string();
    let command = testapp_bin().display().to_string();
    let mut all = vec![
        "start",
        app.to_str().unwrap(),
        "--app-start-command",
        &command,
        "--port",
        &port,
        "--address",
        "127.0.0.1",
    ];
    all.extend_from_slice(args);
    run_ferry(&all, registry.path(), LIMIT)
}

#[test]
fn a_negative_number_names_the_flag_and_offers_no_tip_about_the_app_dir() {
    for flag in ["--max-pool-size", "--min-instances", "--pool-idle-time"] {
        let finished = start_expecting_exit(&[flag, "-1"]);
        assert_eq!(
            finished.status.code(),
            Some(2),
            "{flag}: {}",
            finished.stderr
        );
        assert!(
            finished.stderr.contains(flag) && finished.stderr.contains("negative"),
            "{flag}: {}",
            finished.stderr
        );
        assert!(
            !finished.stderr.contains("tip:") && !finished.stderr.contains("-- -1"),
            "no tip to pass -1 as the app directory: {}",
            finished.stderr
        );
    }
}

#[test]
fn values_that_cannot_work_are_refused_at_start_naming_the_flag() {
    for flag in [
        "--start-timeout",
        "--max-pool-size",
        "--max-spawn-concurrency",
        "--header-timeout",
        "--keep-alive-timeout",
    ] {
        let finished = start_expecting_exit(&[flag, "0"]);
        assert_eq!(
            finished.status.code(),
            Some(2),
            "{flag}: {}",
            finished.stderr
        );
        assert!(
            finished.stderr.contains(flag) && finished.stderr.contains("1 or more"),
            "{flag}: {}",
            finished.stderr
        );
        assert!(!finished.stdout.contains("web server started"));
    }
}

/// A WSGI app in a fresh directory.
fn wsgi_app() -> TempDir {
    let dir = TempDir::new("ferry-e2e-wsgi-flags");
    std::fs::copy(
        ferry_e2e::repo_root().join("examples/hello-wsgi/passenger_wsgi.py"),
        dir.path().join("passenger_wsgi.py"),
    )
    .expect("copy the hello-wsgi app");
    dir
}

#[test]
fn a_missing_relative_python_is_named_as_found_from_the_current_directory() {
    let app = wsgi_app();
    let cwd = std::env::current_dir().unwrap();
    let finished = start_expecting_exit_in(&app, &["--python", "no-such-dir/python3"]);
    assert_eq!(finished.status.code(), Some(2), "{}", finished.stderr);
    let expected = cwd.join("no-such-dir/python3");
    assert!(
        finished.stderr.contains(expected.to_str().unwrap()),
        "the error names the file it looked for: {}",
        finished.stderr
    );
    let finished = start_expecting_exit_in(&app, &["--python", "python3-ferry-none"]);
    assert_eq!(finished.status.code(), Some(2), "{}", finished.stderr);
    assert!(
        finished.stderr.contains("python3-ferry-none") && finished.stderr.contains("PATH"),
        "{}",
        finished.stderr
    );
}

fn start_expecting_exit_in(app: &TempDir, args: &[&str]) -> Finished {
    let registry = TempDir::new("ferry-e2e-flags");
    let port = ferry_e2e::free_port().to_string();
    let mut all = vec![
        "start",
        app.path().to_str().unwrap(),
        "--port",
        &port,
        "--address",
        "127.0.0.1",
    ];
    all.extend_from_slice(args);
    run_ferry(&all, registry.path(), LIMIT)
}

#[test]
fn a_relative_python_is_taken_from_the_current_directory_not_the_app_directory() {
    let app = wsgi_app();
    // `bin/py` exists only under `cwd`, so resolving it against the app directory would fail.
    let cwd = TempDir::new("ferry-e2e-cwd");
    std::fs::create_dir(cwd.path().join("bin")).unwrap();
    // A wrapper script, since python3 on PATH may itself be a shim that goes by its name.
    let wrapper = cwd.path().join("bin/py");
    std::fs::write(&wrapper, "#!/bin/sh\nexec python3 \"$@\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let registry = Arc::new(TempDir::new("ferry-e2e-flags"));
    let ferry = Ferry::start_with(
        registry,
        &[app.path().to_str().unwrap(), "--python", "bin/py"],
        &[],
        Some(cwd.path()),
    );
    let response = get(ferry.addr(), "/").expect("the WSGI app answers");
    assert_eq!(response.status, 200, "{}", ferry.output_text());
}

#[test]
fn a_port_held_by_another_instance_names_that_instance() {
    let registry = Arc::new(TempDir::new("ferry-e2e-flags"));
    let first = Ferry::start_testapp_in(registry.clone(), &[], &[]);
    let port = first.port.to_string();
    let app = ferry_e2e::repo_root().join("tests");
    let command = testapp_bin().display().to_string();
    let args = [
        "start",
        app.to_str().unwrap(),
        "--app-start-command",
        &command,
        "--port",
        &port,
        "--address",
        "127.0.0.1",
    ];
    let finished = run_ferry(&args, registry.path(), LIMIT);
    assert_eq!(finished.status.code(), Some(1), "{}", finished.stderr);
    let pid = first.child.id().to_string();
    assert!(
        finished.stderr.contains("in use by ferry instance")
            && finished.stderr.contains(&pid)
            && finished
                .stderr
                .contains(&format!("ferry stop --port {port}")),
        "names the instance holding the port: {}",
        finished.stderr
    );
}

#[test]
fn not_running_says_where_ferry_looked() {
    let registry = TempDir::new("ferry-e2e-flags");
    let finished = run_ferry(&["status"], registry.path(), LIMIT);
    assert_eq!(finished.status.code(), Some(1));
    assert!(
        finished.stderr.contains(registry.path().to_str().unwrap()),
        "{}",
        finished.stderr
    );
}

fn body(ferry: &Ferry, path: &str) -> (u16, String) {
    let response = get(ferry.addr(), path).expect("request");
    (response.status, response.text())
}

#[test]
fn any_environment_name_reaches_the_app_under_passengers_names() {
    let ferry = Ferry::start_testapp(&["-e", "staging"], &[]);
    for name in [
        "RAILS_ENV",
        "RACK_ENV",
        "WSGI_ENV",
        "NODE_ENV",
        "PASSENGER_APP_ENV",
    ] {
        assert_eq!(
            body(&ferry, &format!("/env/{name}")),
            (200, "staging".to_string()),
            "{name}"
        );
    }
    assert_eq!(ferry.group()["environment"], "staging");
}

#[test]
fn envvar_flags_reach_the_app_and_a_later_one_wins() {
    let ferry = Ferry::start_testapp(
        &[
            "--envvar",
            "GREETING=hello world",
            "--envvar",
            "TWICE=first",
            "--envvar",
            "TWICE=second",
        ],
        &[],
    );
    assert_eq!(body(&ferry, "/env/GREETING"), (200, "hello world".into()));
    assert_eq!(body(&ferry, "/env/TWICE"), (200, "second".into()));
    let finished = start_expecting_exit(&["--envvar", "NOEQUALS"]);
    assert_eq!(finished.status.code(), Some(2));
    assert!(finished.stderr.contains("--envvar") && finished.stderr.contains("NAME=VALUE"));
}

/// Whether a spawn error's details reach the client.
fn spawn_error_shown(args: &[&str]) -> bool {
    let registry = Arc::new(TempDir::new("ferry-e2e-flags"));
    let ferry = Ferry::start_testapp_in(
        registry,
        args,
        &[("TESTAPP_FAIL_START", "the-secret-detail")],
    );
    let response = get(ferry.addr(), "/").expect("request");
    assert_eq!(response.status, 503, "{}", response.text());
    response.text().contains("the-secret-detail")
}

#[test]
fn error_details_show_in_development_or_with_friendly_error_pages_only() {
    assert!(spawn_error_shown(&[]), "development shows them");
    assert!(!spawn_error_shown(&["-e", "staging"]), "staging hides them");
    assert!(!spawn_error_shown(&["-e", "production"]));
    assert!(spawn_error_shown(&[
        "-e",
        "production",
        "--friendly-error-pages"
    ]));
    assert!(!spawn_error_shown(&["--no-friendly-error-pages"]));
}

/// Stops a daemonized server by its pid file when a test ends, passed or not.
struct Daemon {
    pid_file: std::path::PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = std::fs::read_to_string(&self.pid_file)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok());
        if let Some(pid) = pid {
            ferry_e2e::signal(pid, rustix::process::Signal::TERM);
            ferry_e2e::wait_for("the daemon to exit", LIMIT, || {
                (!ferry_e2e::process_alive(pid)).then_some(())
            });
        }
    }
}

#[test]
fn daemonize_with_short_port_and_address_flags_pid_file_and_log_file() {
    let registry = TempDir::new("ferry-e2e-flags");
    let files = TempDir::new("ferry-e2e-daemon");
    let (pid_file, log_file) = (
        files.path().join("ferry.pid"),
        files.path().join("ferry.log"),
    );
    let app = ferry_e2e::repo_root().join("tests");
    let command = testapp_bin().display().to_string();
    let port = ferry_e2e::free_port();
    let port_text = port.to_string();
    let _daemon = Daemon {
        pid_file: pid_file.clone(),
    };
    let finished = run_ferry(
        &[
            "start",
            app.to_str().unwrap(),
            "--app-start-command",
            &command,
            "-d",
            "-p",
            &port_text,
            "-a",
            "127.0.0.1",
            "--pid-file",
            pid_file.to_str().unwrap(),
            "--log-file",
            log_file.to_str().unwrap(),
        ],
        registry.path(),
        LIMIT,
    );
    assert!(
        finished.status.success(),
        "{}{}",
        finished.stdout,
        finished.stderr
    );
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .expect("the pid file exists once `start -d` returns")
        .trim()
        .parse()
        .expect("the pid file holds a pid");
    assert!(
        finished.stdout.contains(&format!("pid {pid}")),
        "{}",
        finished.stdout
    );
    assert!(ferry_e2e::process_alive(pid));
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let response = get(addr, "/").expect("the daemon serves on -p/-a");
    assert_eq!(response.status, 200);
    let log = std::fs::read_to_string(&log_file).unwrap();
    assert!(
        log.contains("web server started") && log.contains("Spawning app process"),
        "{log}"
    );

    let stopped = run_ferry(&["stop", "--port", &port_text], registry.path(), LIMIT);
    assert!(stopped.status.success(), "{}", stopped.stderr);
    ferry_e2e::wait_for("the daemon to exit", LIMIT, || {
        (!ferry_e2e::process_alive(pid)).then_some(())
    });
    assert!(!pid_file.exists(), "the pid file goes when ferry stops");
}

#[test]
fn a_daemon_that_cannot_start_reports_why_in_the_foreground() {
    let registry = TempDir::new("ferry-e2e-flags");
    let files = TempDir::new("ferry-e2e-daemon");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let log_file = files.path().join("ferry.log");
    let app = ferry_e2e::repo_root().join("tests");
    let command = testapp_bin().display().to_string();
    let finished = run_ferry(
        &[
            "start",
            app.to_str().unwrap(),
            "--app-start-command",
            &command,
            "--daemonize",
            "--port",
            &port,
            "--address",
            "127.0.0.1",
            "--log-file",
            log_file.to_str().unwrap(),
        ],
        registry.path(),
        LIMIT,
    );
    assert_eq!(finished.status.code(), Some(1), "{}", finished.stdout);
    assert!(
        finished.stderr.contains("in use") && finished.stderr.contains(&port),
        "the foreground shows the background's error: {}",
        finished.stderr
    );
}

#[test]
fn log_level_error_hides_ferrys_notices_but_not_the_apps_output() {
    let ferry = Ferry::start_testapp(&["--log-level", "error"], &[]);
    ferry.wait_ready(1, LIMIT);
    ferry.wait_output("ferry-testapp listening", LIMIT);
    assert!(
        !ferry.output_text().contains("Spawning app process"),
        "{}",
        ferry.output_text()
    );
    let ferry = Ferry::start_testapp(&["--log-level", "3"], &[]);
    ferry.wait_output("Spawning app process", LIMIT);
}

fn uid_of(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn user_runs_app_processes_as_that_user_when_ferry_is_root() {
    let root = uid_of(std::process::id()) == 0;
    let ferry = Ferry::start_testapp(&["--user", "nobody"], &[]);
    let pids = ferry.wait_ready(1, LIMIT);
    if root {
        assert_eq!(uid_of(pids[0]), 65534, "nobody's uid");
        assert_eq!(get(ferry.addr(), "/env/USER").unwrap().text(), "nobody");
    } else {
        // Passenger's rule: --user has effect only for root; ferry says it ignored it.
        assert_eq!(uid_of(pids[0]), uid_of(std::process::id()));
        ferry.wait_output("--user nobody is ignored", LIMIT);
    }
    let finished = start_expecting_exit(&["--user", "no-such-user-ferry"]);
    if root {
        assert_eq!(finished.status.code(), Some(2));
        assert!(
            finished.stderr.contains("no-such-user-ferry"),
            "{}",
            finished.stderr
        );
    }
}
