//! Restarts never reduce serving capacity (issue 9): a pool of one restarts without a failed
//! request; a restart onto code that cannot start leaves the old process serving, is reported
//! failed in `ferry status` and the log, and `ferry restart` exits non-zero naming the error.

use ferry_e2e::{pid_of, tempdir::TempDir, wait_for, Ferry, Load, Outcome};
use std::path::{Path, PathBuf};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

/// An app directory with `tmp/` whose app is the test app until the file `broken` exists
/// there: from then on a new process prints "new code broken" and exits before it is ready.
struct App {
    dir: TempDir,
}

impl App {
    fn new() -> App {
        let dir = TempDir::new("ferry-e2e-restart-app");
        std::fs::create_dir(dir.path().join("tmp")).unwrap();
        App { dir }
    }

    fn flag(&self) -> PathBuf {
        self.dir.path().join("broken")
    }

    fn start(&self, extra: &[&str]) -> Ferry {
        let command = format!(
            "sh -c 'if [ -e {} ]; then echo new code broken >&2; exit 1; fi; exec {}'",
            self.flag().display(),
            ferry_e2e::testapp_bin().display()
        );
        let mut args = vec![
            self.dir.path().to_str().unwrap(),
            "--app-start-command",
            &command,
        ];
        args.extend_from_slice(extra);
        Ferry::start(&args, &[])
    }

    fn deploy_broken_code(&self) {
        std::fs::write(self.flag(), b"").unwrap();
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

fn failures(outcomes: &[Outcome]) -> Vec<String> {
    outcomes
        .iter()
        .filter_map(|o| match o {
            Ok(response) if response.status == 200 => None,
            Ok(response) => Some(format!("{} {}", response.status, response.text())),
            Err(e) => Some(e.clone()),
        })
        .collect()
}

fn restart_state(ferry: &Ferry) -> Option<String> {
    ferry.group()["restart"]["outcome"]["state"]
        .as_str()
        .map(str::to_string)
}

#[test]
fn a_restart_onto_broken_code_keeps_a_pool_of_one_serving_and_ferry_restart_fails_naming_it() {
    let app = App::new();
    let ferry = app.start(&["--max-pool-size", "1"]);
    let old = ferry.wait_ready(1, LIMIT)[0];
    let load = Load::start(ferry.addr(), "/pid");
    load.wait_more(20, LIMIT);
    app.deploy_broken_code();

    let out = ferry.ferry_command(&["restart", "--port", &ferry.port.to_string()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "ferry restart succeeded: {stderr}");
    assert!(
        stderr.contains("restart failed") && stderr.contains("new code broken"),
        "ferry restart names the error: {stderr}"
    );
    load.wait_more(50, LIMIT);
    let outcomes = load.stop();
    assert_eq!(
        failures(&outcomes),
        Vec::<String>::new(),
        "the old process serves every request ({} in all)\n{}",
        outcomes.len(),
        ferry.output_text()
    );
    assert!(outcomes.iter().flatten().all(|r| pid_of(r) == Some(old)));
    assert_eq!(restart_state(&ferry).as_deref(), Some("failed"));
    let error = ferry.group()["restart"]["outcome"]["error"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(error.contains("new code broken"), "{error}");
    ferry.wait_output("Restart failed", LIMIT);
}

#[test]
fn a_healthy_restart_of_a_pool_of_one_under_load_fails_no_request() {
    let app = App::new();
    let ferry = app.start(&["--max-pool-size", "1"]);
    let old = ferry.wait_ready(1, LIMIT)[0];
    let load = Load::start(ferry.addr(), "/pid");
    load.wait_more(20, LIMIT);

    let out = ferry.ferry_command(&["restart", "--port", &ferry.port.to_string()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ferry restart: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new = wait_for("the new process alone", LIMIT, || {
        let pids = ferry.all_pids();
        (pids.len() == 1 && pids[0] != old).then(|| pids[0])
    });
    load.wait_more(20, LIMIT);
    let outcomes = load.stop();
    assert_eq!(
        failures(&outcomes),
        Vec::<String>::new(),
        "{} requests\n{}",
        outcomes.len(),
        ferry.output_text()
    );
    let served: Vec<u32> = outcomes.iter().flatten().filter_map(pid_of).collect();
    assert!(served.contains(&new), "the new process served");
    assert!(
        stdout.contains("Restart done"),
        "it waited for the outcome: {stdout}"
    );
    assert_eq!(restart_state(&ferry).as_deref(), Some("done"));
}

#[test]
fn ferry_restart_no_wait_returns_before_the_outcome() {
    let app = App::new();
    let ferry = app.start(&["--max-pool-size", "1"]);
    ferry.wait_ready(1, LIMIT);
    app.deploy_broken_code();
    let out = ferry.ferry_command(&["restart", "--no-wait", "--port", &ferry.port.to_string()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for("the restart to be reported failed", LIMIT, || {
        (restart_state(&ferry).as_deref() == Some("failed")).then_some(())
    });
}

#[test]
fn touching_restart_txt_onto_broken_code_is_reported_failed_and_the_old_processes_serve() {
    let app = App::new();
    let ferry = app.start(&["--max-pool-size", "2", "--min-instances", "2"]);
    let old = ferry.wait_ready(2, LIMIT);
    app.deploy_broken_code();
    std::fs::write(app.path().join("tmp/restart.txt"), b"").unwrap();
    wait_for("the restart to be reported failed", LIMIT, || {
        (restart_state(&ferry).as_deref() == Some("failed")).then_some(())
    });
    ferry.wait_output("Restart failed", LIMIT);
    let mut ready = ferry.pids_in("ready");
    ready.sort_unstable();
    let mut expected = old.clone();
    expected.sort_unstable();
    assert_eq!(ready, expected, "both old processes still serve");
    let response = ferry_e2e::get(ferry.addr(), "/pid").expect("GET /pid");
    assert_eq!(response.status, 200, "{}", response.text());
}
