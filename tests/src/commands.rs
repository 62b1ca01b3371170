//! One-shot `ferry` commands run to their exit, with a bound.

use crate::paths::ferry_bin;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A finished `ferry` command run without a server of the harness.
pub struct Finished {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `ferry <args>` with `--instance-registry-dir registry`, waiting (bounded) for it to
/// exit. A command that does not exit in `limit` is killed and the test fails.
pub fn run_ferry(args: &[&str], registry: &Path, limit: Duration) -> Finished {
    run_ferry_with_env(args, &[], registry, limit)
}

/// [`run_ferry`] with extra environment variables.
pub fn run_ferry_with_env(
    args: &[&str],
    envs: &[(&str, &str)],
    registry: &Path,
    limit: Duration,
) -> Finished {
    let mut child = Command::new(ferry_bin())
        .args(args)
        .arg("--instance-registry-dir")
        .arg(registry)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ferry");
    let (stdout, stderr) = (
        Arc::new(Mutex::new(Vec::new())),
        Arc::new(Mutex::new(Vec::new())),
    );
    let readers = [
        collect(child.stdout.take().unwrap(), stdout.clone()),
        collect(child.stderr.take().unwrap(), stderr.clone()),
    ];
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for ferry") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`ferry {}` did not exit within {limit:?}; it printed: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&stdout.lock().unwrap()),
                String::from_utf8_lossy(&stderr.lock().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    for reader in readers {
        let _ = reader.join();
    }
    let text =
        |bytes: &Arc<Mutex<Vec<u8>>>| String::from_utf8_lossy(&bytes.lock().unwrap()).into_owned();
    Finished {
        status,
        stdout: text(&stdout),
        stderr: text(&stderr),
    }
}

fn collect(mut stream: impl Read + Send + 'static, sink: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    })
}
