//! Helpers shared by the simulator's integration tests.
#![allow(dead_code)]

use ferry_sim::{run_cli, SimOptions};
use std::path::PathBuf;

pub fn scenario_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name)
}

pub fn data_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// `ferry sim` with these options: (exit code, stdout, stderr).
pub fn cli(options: &SimOptions) -> (u8, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_cli(options, &mut out, &mut err);
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).expect("output is UTF-8");
    (code, text(out), text(err))
}

pub fn run_file(path: PathBuf) -> (u8, String, String) {
    cli(&SimOptions {
        scenario: Some(path),
        ..SimOptions::default()
    })
}

/// A scenario file in a fresh temporary directory.
pub fn temp_scenario(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "ferry-sim-test-{}-{}",
        std::process::id(),
        name.replace('.', "-")
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write scenario");
    path
}
