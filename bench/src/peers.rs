//! Starting the peers ferry is measured against: HAProxy, nginx and Passenger Standalone, each in its own directory with its config written from bench/templates/.

use crate::net::{free_port, wait_http_ok};
use crate::procs::{self, Guard, ProcId};
use crate::servers::{
    log_file, start_testapps, which, with_log, wsgi_app_dir, Ctx, Running, START_TIMEOUT,
};
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const HAPROXY_CFG: &str = include_str!("../templates/haproxy.cfg");
const NGINX_CONF: &str = include_str!("../templates/nginx.conf");

fn fill(template: &str, dir: &Path, port: u16, servers: &str) -> String {
    template
        .replace("{{DIR}}", &dir.to_string_lossy())
        .replace("{{PORT}}", &port.to_string())
        .replace("{{SERVERS}}", servers)
}

/// The bench's HAProxy configuration: listening on `port`, balancing over `app_ports`.
pub(crate) fn haproxy_config(dir: &Path, port: u16, app_ports: &[u16]) -> String {
    let servers: String = app_ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("    server app{i} 127.0.0.1:{p}\n"))
        .collect();
    fill(HAPROXY_CFG, dir, port, &servers)
}

pub(crate) fn start_haproxy(ctx: &Ctx, dir: &Path) -> Result<Running, String> {
    let mut guards = Vec::new();
    let app_ports = start_testapps(ctx, dir, ctx.apps, &mut guards)?;
    let port = free_port()?;
    let config = haproxy_config(dir, port, &app_ports);
    run_haproxy(dir, port, &config, guards, wait_http_ok)
}

/// How a started server is known to be up: it answers on `port` within the timeout.
pub(crate) type WaitUp = fn(u16, &mut Guard, Duration) -> Result<(), String>;

/// Runs HAProxy on `config` (listening on `port`) in front of the servers `guards` hold, and
/// waits for it with `wait_up`.
pub(crate) fn run_haproxy(
    dir: &Path,
    port: u16,
    config: &str,
    mut guards: Vec<Guard>,
    wait_up: WaitUp,
) -> Result<Running, String> {
    let cfg = dir.join("haproxy.cfg");
    fs::write(&cfg, config).map_err(|e| e.to_string())?;
    let log = dir.join("haproxy.log");
    let (out, err) = log_file(&log)?;
    let mut cmd = Command::new(which("haproxy").ok_or("haproxy not found")?);
    cmd.arg("-db")
        .arg("-f")
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    let mut guard = Guard::spawn("haproxy", &mut cmd)?;
    with_log(wait_up(port, &mut guard, START_TIMEOUT), &log)?;
    let pid = guard.pid();
    guards.push(guard);
    let mut running = Running::new(port, dir, guards);
    running.proxy_pids = vec![pid];
    Ok(running)
}

pub(crate) fn start_nginx(ctx: &Ctx, dir: &Path) -> Result<Running, String> {
    let mut guards = Vec::new();
    let app_ports = start_testapps(ctx, dir, ctx.apps, &mut guards)?;
    let servers: String = app_ports
        .iter()
        .map(|p| format!("        server 127.0.0.1:{p};\n"))
        .collect();
    let port = free_port()?;
    let conf = dir.join("nginx.conf");
    fs::write(&conf, fill(NGINX_CONF, dir, port, &servers)).map_err(|e| e.to_string())?;
    let log = dir.join("nginx.out");
    let (out, err) = log_file(&log)?;
    let mut cmd = Command::new(which("nginx").ok_or("nginx not found")?);
    cmd.arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&conf)
        .arg("-e")
        .arg(dir.join("nginx-error.log"))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    let mut guard = Guard::spawn("nginx", &mut cmd)?;
    with_log(wait_http_ok(port, &mut guard, START_TIMEOUT), &log)?;
    let master = guard.pid();
    guards.push(guard);
    let mut running = Running::new(port, dir, guards);
    running.proxy_pids = vec![master];
    running
        .proxy_pids
        .extend(procs::descendants_named(&[master], "nginx"));
    Ok(running)
}

/// `passenger start` with the builtin engine; waits until its core has `apps` listening
/// children (counted by `ready`).
fn run_passenger(
    dir: &Path,
    app: &Path,
    (min, max): (usize, usize),
    args: &[&str],
    ready: impl Fn(u32, &Path) -> usize,
) -> Result<Running, String> {
    let port = free_port()?;
    let registry = dir.join("registry");
    fs::create_dir_all(&registry).map_err(|e| e.to_string())?;
    let out_log = dir.join("passenger.out");
    let log = dir.join("passenger.log");
    let (out, err) = log_file(&out_log)?;
    let mut cmd = Command::new(which("passenger").ok_or("passenger not found")?);
    cmd.arg("start")
        .arg(app)
        .args(["--engine", "builtin", "--address", "127.0.0.1"])
        .args(["--port", &port.to_string()])
        .args(["--max-pool-size", &max.to_string()])
        .args(["--min-instances", &min.to_string()])
        .args(["--max-request-queue-size", "0"])
        .args(["--environment", "production"])
        .arg("--instance-registry-dir")
        .arg(&registry)
        .arg("--log-file")
        .arg(&log)
        .arg("--pid-file")
        .arg(dir.join("passenger.pid"))
        .args([
            "--disable-security-update-check",
            "--disable-anonymous-telemetry",
            "--no-install-runtime",
            "--no-compile-runtime",
        ])
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    let mut guard = Guard::spawn("passenger", &mut cmd)?;
    let mut running = Running::new(port, dir, Vec::new());
    // The daemons are recorded as soon as they are known, so a failure below still stops them.
    let result = (|| {
        with_log(wait_http_ok(port, &mut guard, START_TIMEOUT), &log)?;
        let (watchdog, core) = passenger_pids(&registry)?;
        running.extra = [watchdog, core]
            .into_iter()
            .filter_map(ProcId::of)
            .collect();
        running.proxy_pids = vec![core, watchdog];
        running.passenger_core = Some(core);
        let deadline = Instant::now() + START_TIMEOUT;
        while ready(core, &log) < min {
            if Instant::now() >= deadline {
                return with_log(
                    Err(format!("Passenger did not start {min} app processes")),
                    &log,
                );
            }
            // Passenger spawns up to --min-instances only once traffic arrives.
            let _ = crate::net::http_status(port, "/");
            thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    })();
    running.guards.push(guard);
    result.map(|()| running)
}

/// Passenger's watchdog and core pids from its instance registry directory.
pub fn passenger_pids(registry: &Path) -> Result<(u32, u32), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = fs::read_dir(registry).ok().and_then(|dir| {
            dir.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.join("core.pid").is_file())
                .find_map(|p| {
                    let read = |name: &str| -> Option<u32> {
                        fs::read_to_string(p.join(name)).ok()?.trim().parse().ok()
                    };
                    Some((read("watchdog.pid")?, read("core.pid")?))
                })
        });
        if let Some(pids) = found {
            return Ok(pids);
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "no Passenger instance found in {}",
                registry.display()
            ));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

pub(crate) fn start_passenger(ctx: &Ctx, dir: &Path) -> Result<Running, String> {
    let command = ctx.testapp.to_string_lossy().into_owned();
    passenger_generic(dir, &command, ctx.apps, ctx.apps, &[])
}

/// Passenger's testapps: (spawned, ready) pids. Spawned: `ferry-testapp` children of its
/// core. Ready: those whose startup line (`ferry-testapp listening on ...`, printed once the
/// socket listens) Passenger has copied into its log. (Scanning /proc/net/tcp instead is too
/// slow once tens of thousands of TIME_WAIT sockets pile up during a run.)
pub fn passenger_testapps(core: u32, log: &Path) -> (Vec<u32>, Vec<u32>) {
    let spawned = procs::descendants_named(&[core], "ferry-testapp");
    let text = fs::read_to_string(log).unwrap_or_default();
    let ready = spawned
        .iter()
        .copied()
        .filter(|pid| text.contains(&format!("App {pid} output: ferry-testapp listening on")))
        .collect();
    (spawned, ready)
}

/// Passenger (builtin engine) serving the generic app `command` with a pool of
/// `min`..=`max` processes; returns once `min` testapps listen.
pub fn passenger_generic(
    dir: &Path,
    command: &str,
    min: usize,
    max: usize,
    extra: &[&str],
) -> Result<Running, String> {
    let app = dir.join("app");
    fs::create_dir_all(&app).map_err(|e| e.to_string())?;
    let mut args = vec!["--app-start-command", command];
    args.extend_from_slice(extra);
    run_passenger(dir, &app, (min, max), &args, |core, log| {
        passenger_testapps(core, log).1.len()
    })
}

pub(crate) fn start_passenger_wsgi(ctx: &Ctx, dir: &Path) -> Result<Running, String> {
    let app = wsgi_app_dir(ctx, dir)?;
    let python = ctx.python().ok_or("python3 not found")?;
    let python = python.to_string_lossy().into_owned();
    run_passenger(
        dir,
        &app,
        (ctx.apps, ctx.apps),
        &["--app-type", "wsgi", "--python", &python],
        |core, _| procs::descendants(&[core]).len(),
    )
}
