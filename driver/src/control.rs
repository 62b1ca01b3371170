//! `ferry status`, `ferry stop` and `ferry restart`: talking to a running server over its admin socket.

use crate::cli::{RestartArgs, SelectArgs, StatusArgs};
use crate::instance::{find_instances, registry_dir, Found};
use crate::status_report::{restart_state, StatusReport};
use ferry_engine::RestartOutcome;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Admin requests are tiny; a server that does not answer in this time is stuck.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How long `ferry restart` waits for the outcome at most.
const RESTART_WAIT_MAX: Duration = Duration::from_secs(1800);

/// Picks the instance the user means, or explains why it cannot.
fn select(select: &SelectArgs, registry: &Path) -> Result<Found, (u8, String)> {
    let mut found = find_instances(registry);
    if let Some(port) = select.port {
        found.retain(|f| f.info.port == port);
    }
    if let Some(instance) = &select.instance {
        found.retain(|f| &f.info.instance == instance);
    }
    match found.len() {
        0 if select.port.is_some() || select.instance.is_some() => Err((
            1,
            "no running ferry instance matches --port/--instance".into(),
        )),
        0 => Err((
            1,
            format!(
                "ferry is not running (no instance registered in {}; an instance started \
                 with another --instance-registry-dir or FERRY_INSTANCE_REGISTRY_DIR is found \
                 with the same one)",
                registry.display()
            ),
        )),
        1 => Ok(found.pop().expect("one instance")),
        _ => {
            let mut text = String::from(
                "several ferry instances are running; choose one with --port or --instance:\n",
            );
            for f in &found {
                text.push_str(&format!(
                    "  instance {}  port {}  pid {}  app {}\n",
                    f.info.instance, f.info.port, f.info.pid, f.info.app_root
                ));
            }
            Err((2, text.trim_end().to_string()))
        }
    }
}

/// Sends one admin command and returns the reply.
pub fn admin_request(socket: &Path, command: &str) -> std::io::Result<Vec<u8>> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(ADMIN_TIMEOUT))?;
    stream.set_write_timeout(Some(ADMIN_TIMEOUT))?;
    stream.write_all(format!("{command}\n").as_bytes())?;
    let mut reply = Vec::new();
    // A server that refuses closes at once; what it said before the close is the answer.
    match stream.read_to_end(&mut reply) {
        Err(_) if !reply.is_empty() => Ok(reply),
        Err(e) => Err(e),
        Ok(_) => Ok(reply),
    }
}

/// Whether the server accepted an admin command (`{"ok":true}`); else what it said instead.
fn accepted(reply: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(reply).trim().to_string();
    match serde_json::from_slice::<serde_json::Value>(reply) {
        Ok(value) if value["ok"] == true => Ok(()),
        Ok(value) => match value["error"].as_str() {
            Some(error) => Err(error.to_string()),
            None => Err(text),
        },
        Err(_) if text.is_empty() => {
            Err("the server closed the connection without answering".into())
        }
        Err(_) => Err(text),
    }
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("ferry: {message}");
    ExitCode::from(code)
}

pub fn status(args: &StatusArgs, registry_flag: Option<&Path>) -> ExitCode {
    let found = match select(&args.select, &registry_dir(registry_flag)) {
        Ok(found) => found,
        Err((code, message)) => return fail(code, &message),
    };
    let report = match fetch_status(&found.socket) {
        Ok(report) => report,
        Err(e) => return fail(1, &format!("{e} (port {})", found.info.port)),
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("status serializes")
        );
    } else {
        print!("{}", report.render());
    }
    ExitCode::SUCCESS
}

pub fn stop(args: &SelectArgs, registry_flag: Option<&Path>) -> ExitCode {
    let found = match select(args, &registry_dir(registry_flag)) {
        Ok(found) => found,
        Err((code, message)) => return fail(code, &message),
    };
    match admin_request(&found.socket, "stop") {
        Ok(reply) => {
            if let Err(refusal) = accepted(&reply) {
                return fail(
                    1,
                    &format!(
                        "the instance on port {} refused: {refusal}",
                        found.info.port
                    ),
                );
            }
        }
        Err(e) => {
            return fail(
                1,
                &format!("cannot reach the instance on port {}: {e}", found.info.port),
            )
        }
    }
    // Wait, bounded, for the server to finish in-flight requests and exit. Its instance
    // directory goes just before it exits; a server that died without removing it is seen
    // by its pid (an exited but unreaped process counts as gone).
    let deadline = Instant::now() + Duration::from_secs(120);
    let instance_dir = found.socket.parent().map(Path::to_path_buf);
    while instance_dir.as_ref().is_some_and(|dir| dir.exists())
        && crate::instance::process_alive(found.info.pid)
    {
        if Instant::now() > deadline {
            return fail(
                1,
                &format!(
                    "the instance (pid {}) did not stop within 120 s",
                    found.info.pid
                ),
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    println!(
        "Stopped ferry on port {} (pid {}).",
        found.info.port, found.info.pid
    );
    ExitCode::SUCCESS
}

pub fn restart(args: &RestartArgs, registry_flag: Option<&Path>) -> ExitCode {
    let found = match select(&args.select, &registry_dir(registry_flag)) {
        Ok(found) => found,
        Err((code, message)) => return fail(code, &message),
    };
    let port = found.info.port;
    let reply = match admin_request(&found.socket, "restart") {
        Ok(reply) => reply,
        Err(e) => return fail(1, &format!("cannot reach the instance on port {port}: {e}")),
    };
    if let Err(refusal) = accepted(&reply) {
        return fail(
            1,
            &format!("the instance on port {port} refused: {refusal}"),
        );
    }
    println!("Restarting the app processes of ferry on port {port}, one by one.");
    if args.no_wait {
        return ExitCode::SUCCESS;
    }
    let before = serde_json::from_slice::<serde_json::Value>(&reply)
        .ok()
        .and_then(|value| value["generation"].as_u64());
    let Some(before) = before else {
        return fail(
            1,
            "the instance did not say which restart it began (an older ferry?); use --no-wait",
        );
    };
    match wait_for_restart(&found.socket, before) {
        Ok(outcome @ RestartOutcome::Done) => {
            println!("Restart {}.", restart_state(&outcome));
            ExitCode::SUCCESS
        }
        Ok(outcome) => fail(1, &format!("restart {}", restart_state(&outcome))),
        Err(message) => fail(1, &message),
    }
}

/// Polls the status until the group's restart beyond generation `before` has failed or is
/// done. The engine brings every restart to an outcome (each new process is ready or has
/// failed within `--start-timeout`); the bound is for a server that stops answering sense.
fn wait_for_restart(socket: &Path, before: u64) -> Result<RestartOutcome, String> {
    let deadline = Instant::now() + RESTART_WAIT_MAX;
    loop {
        let report = fetch_status(socket).map_err(|e| format!("{e} during the restart"))?;
        let restart = report
            .groups
            .first()
            .and_then(|group| group.restart.clone());
        if let Some(restart) = restart.filter(|r| u64::from(r.generation) > before) {
            if restart.outcome != RestartOutcome::InProgress {
                return Ok(restart.outcome);
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the restart is still in progress after {} s; see ferry status",
                RESTART_WAIT_MAX.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The server's status document.
fn fetch_status(socket: &Path) -> Result<StatusReport, String> {
    let reply =
        admin_request(socket, "status").map_err(|e| format!("cannot reach the instance: {e}"))?;
    serde_json::from_slice(&reply).map_err(|_| {
        format!(
            "the instance refused: {}",
            String::from_utf8_lossy(&reply).trim()
        )
    })
}
