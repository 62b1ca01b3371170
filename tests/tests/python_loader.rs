//! Runs the WSGI loader's own Python unit tests (tests/wsgi/) as part of `cargo test`, with
//! the virtual environment's Python when there is one, so that its Flask test runs too.

use ferry_e2e::repo_root;
use std::process::Command;

fn python() -> String {
    if let Some(python) = std::env::var_os("FERRY_TEST_PYTHON") {
        return python.to_string_lossy().into_owned();
    }
    let venv = repo_root().join(".venv/bin/python");
    if venv.exists() {
        return venv.display().to_string();
    }
    "python3".to_string()
}

#[test]
fn wsgi_loader_unit_tests_pass() {
    let out = Command::new(python())
        .args(["-m", "unittest", "discover", "-s", "tests/wsgi", "-v"])
        .current_dir(repo_root())
        .output()
        .expect("run python3 -m unittest");
    let report = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the loader's unit tests failed:\n{report}"
    );
    // The Flask test among them must really run: a skip for lack of Flask is no pass.
    assert!(
        !report.contains("flask is not installed"),
        "the loader's Flask test was skipped: Flask is missing (run .ci/run, which creates \
         .venv with it, or point FERRY_TEST_PYTHON at a Python that has Flask):\n{report}"
    );
}
