//! Where the binaries under test and the repository are.

use std::path::{Path, PathBuf};

/// The workspace's build output directory holding `ferry` and `ferry-testapp`.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>
    exe.parent()
        .and_then(Path::parent)
        .expect("target directory")
        .to_path_buf()
}

pub fn ferry_bin() -> PathBuf {
    std::env::var_os("FERRY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| bin_dir().join("ferry"))
}

pub fn testapp_bin() -> PathBuf {
    std::env::var_os("FERRY_TESTAPP_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| bin_dir().join("ferry-testapp"))
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

/// `ferry start` arguments serving the generic test app (tests/testapp), then `args`.
pub fn testapp_args(args: &[&str]) -> Vec<String> {
    let mut all = vec![
        repo_root().join("tests").display().to_string(),
        "--app-start-command".to_string(),
        testapp_bin().display().to_string(),
    ];
    all.extend(one_session_unless_given(args));
    all
}

/// `ferry start` arguments serving the stdlib asyncio test app (tests/asyncapp), then `args`:
/// a generic app with ferry's defaults for one (unlimited concurrency) unless `args` say more.
pub fn asyncapp_args(args: &[&str]) -> Vec<String> {
    let app = repo_root().join("tests").join("asyncapp");
    let mut all = vec![
        app.display().to_string(),
        "--app-start-command".to_string(),
        format!("python3 '{}'", app.join("asyncapp.py").display()),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    all
}

/// `args`, with `--concurrency 1` first unless they give one: the tests of a generic app were
/// written for one session per process (a WSGI app's default; a generic app's is unlimited),
/// where a second concurrent request queues or spawns.
pub fn one_session_unless_given(args: &[&str]) -> Vec<String> {
    let given = args.iter().any(|a| {
        a.starts_with("--concurrency") || a.starts_with("--force-max-concurrent-requests")
    });
    let pinned = if given {
        &[][..]
    } else {
        &["--concurrency", "1"][..]
    };
    pinned.iter().chain(args).map(|a| a.to_string()).collect()
}

/// The Python that has Flask: `$FERRY_TEST_PYTHON`, else `<repo>/.venv/bin/python` (which
/// `.ci/run` creates). Without Flask the test fails: a missing dependency is no pass.
pub fn flask_python() -> PathBuf {
    let python = std::env::var_os("FERRY_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"));
    let has_flask = std::process::Command::new(&python)
        .args(["-c", "import flask"])
        .output()
        .is_ok_and(|out| out.status.success());
    assert!(
        has_flask,
        "{} cannot `import flask`: run .ci/run (it creates .venv with Flask), or \
         `python3 -m venv .venv && .venv/bin/pip install -r examples/flask-app/requirements.txt`, \
         or point FERRY_TEST_PYTHON at a Python that has Flask",
        python.display()
    );
    python
}
