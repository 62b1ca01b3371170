//! `Passengerfile.json` and `PASSENGER_*`/`FERRY_*` variables, as Passenger takes them: the
//! command line wins, then the environment, then the file, then the defaults; keys ferry
//! does not use are warned about by name; a malformed file is an error naming its line.

use ferry_e2e::{get, tempdir::TempDir, Ferry};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

fn app_with_file(text: &str) -> TempDir {
    let dir = TempDir::new("ferry-e2e-passengerfile");
    std::fs::write(dir.path().join("Passengerfile.json"), text).unwrap();
    dir
}

#[test]
fn command_line_then_environment_then_file_then_defaults() {
    let command = ferry_e2e::testapp_bin().display().to_string();
    let file = serde_json::json!({
        "app_start_command": command,
        "max_pool_size": 3,
        "min_instances": 2,
        "environment": "staging",
        "max_request_queue_size": 7,
        "envvars": {"FROM_FILE": "file", "OVERRIDDEN": "file"},
        "sticky_sessions": true,
        "colour": "blue"
    });
    let app = app_with_file(&file.to_string());
    let ferry = Ferry::start(
        &[
            app.path().to_str().unwrap(),
            "--min-instances",
            "1",
            "--envvar",
            "OVERRIDDEN=command line",
        ],
        &[
            ("PASSENGER_MAX_POOL_SIZE", "5"),
            ("PASSENGER_MIN_INSTANCES", "4"),
            ("FERRY_MAX_REQUEST_QUEUE_SIZE", "9"),
        ],
    );
    let status = ferry.status();
    let group = &status["groups"][0];
    assert_eq!(status["max_pool_size"], 5, "the environment beats the file");
    assert_eq!(group["min_instances"], 1, "the command line beats both");
    assert_eq!(group["max_request_queue_size"], 9, "FERRY_ as PASSENGER_");
    assert_eq!(
        group["environment"], "staging",
        "the file beats the default"
    );
    assert_eq!(get(ferry.addr(), "/env/FROM_FILE").unwrap().text(), "file");
    assert_eq!(
        get(ferry.addr(), "/env/OVERRIDDEN").unwrap().text(),
        "command line"
    );
    assert_eq!(
        get(ferry.addr(), "/env/RAILS_ENV").unwrap().text(),
        "staging"
    );
    ferry.wait_output("`sticky_sessions` is not supported by ferry", LIMIT);
    ferry.wait_output("unknown key `colour`", LIMIT);
}

fn start_expecting_exit(app: &TempDir, envs: &[(&str, &str)]) -> ferry_e2e::Finished {
    let registry = TempDir::new("ferry-e2e-passengerfile");
    let port = ferry_e2e::free_port().to_string();
    let args = [
        "start",
        app.path().to_str().unwrap(),
        "--port",
        &port,
        "--address",
        "127.0.0.1",
    ];
    ferry_e2e::run_ferry_with_env(&args, envs, registry.path(), LIMIT)
}

#[test]
fn a_malformed_file_is_an_error_naming_the_line() {
    let app = app_with_file("{\n  \"port\": 3000,\n  \"max_pool_size\" 4\n}\n");
    let finished = start_expecting_exit(&app, &[]);
    assert_eq!(finished.status.code(), Some(2), "{}", finished.stdout);
    assert!(
        finished.stderr.contains("Passengerfile.json line 3"),
        "{}",
        finished.stderr
    );
}

#[test]
fn a_bad_value_in_the_file_or_the_environment_names_where_it_came_from() {
    let app = app_with_file(r#"{"start_timeout": 0}"#);
    let finished = start_expecting_exit(&app, &[]);
    assert_eq!(finished.status.code(), Some(2));
    assert!(
        finished.stderr.contains("`start_timeout`") && finished.stderr.contains("1 or more"),
        "{}",
        finished.stderr
    );
    let app = app_with_file("{}");
    let finished = start_expecting_exit(&app, &[("PASSENGER_MAX_POOL_SIZE", "-3")]);
    assert_eq!(finished.status.code(), Some(2));
    assert!(
        finished.stderr.contains("PASSENGER_MAX_POOL_SIZE") && finished.stderr.contains("negative"),
        "{}",
        finished.stderr
    );
}
