//! The command line's answers to bad input. (These tests also make `cargo test` build the
//! `ferry` binary that the end-to-end tests in `tests/` run.)

use std::process::Command;

fn ferry(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .output()
        .expect("run ferry")
}

#[test]
fn version_names_the_package_version() {
    let out = ferry(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("ferry {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn start_in_a_missing_directory_fails_with_one_line_and_code_2() {
    let out = ferry(&["start", "/nonexistent/ferry-app-dir", "--port", "0"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("/nonexistent/ferry-app-dir"),
        "names the directory: {stderr}"
    );
}

#[test]
fn unknown_flag_is_refused() {
    let out = ferry(&["start", "--max-pool-sise", "3"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--max-pool-sise"));
}
