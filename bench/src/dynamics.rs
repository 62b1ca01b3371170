//! Pool dynamics on the real servers: how fast the pool grows under a burst, and how fast a
//! killed app process is replaced.
//!
//! ferry is observed through its status (the admin socket `ferry status --json` reads) and
//! cross-checked against its log, whose lines carry millisecond timestamps. Passenger is
//! observed through /proc (its core's `ferry-testapp` children: spawned) and its log (the
//! testapp's startup line, printed once it listens: ready).

use crate::peers;
use crate::procs::{self, Guard};
use crate::servers::{self, Ctx, FerryStatus};
use crate::table::median;
use std::path::Path;
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The app's simulated startup time in the burst test.
pub const STARTUP_DELAY_MS: u64 = 500;
/// Pool size the burst grows to (from one process).
pub const BURST_MAX_POOL: usize = 6;
/// Connections in the burst.
pub const BURST_CONNS: usize = 200;
/// How long a burst or a replacement may take before the bench gives up waiting.
const DYNAMICS_TIMEOUT: Duration = Duration::from_secs(15);
/// Pause between polls.
const POLL_EVERY: Duration = Duration::from_millis(1);

#[derive(Clone, Debug, Default)]
pub struct Burst {
    /// One process's startup time (spawn → ready) as the server saw it.
    pub startup_ms: Option<f64>,
    /// From the burst's start until a second process exists.
    pub first_spawn_ms: Option<f64>,
    /// Until `BURST_MAX_POOL` processes exist (spawning included).
    pub all_spawned_ms: Option<f64>,
    /// Until `BURST_MAX_POOL` processes are ready to take requests.
    pub all_ready_ms: Option<f64>,
    /// The same from the server's log (ferry only).
    pub log_all_ready_ms: Option<f64>,
    pub polls: usize,
}

#[derive(Clone, Debug, Default)]
pub struct Crash {
    /// `kill -9` → a replacement process exists (seen by polling).
    pub spawned_ms: Vec<f64>,
    /// `kill -9` → the replacement is ready.
    pub ready_ms: Vec<f64>,
    /// `kill -9` → the log says the process exited (ferry only).
    pub log_exit_ms: Vec<f64>,
    /// `kill -9` → the log says the replacement is being spawned (ferry only).
    pub log_spawn_ms: Vec<f64>,
    /// Trials where no replacement came within the timeout.
    pub missed: usize,
}

impl Crash {
    pub fn median_spawned(&self) -> Option<f64> {
        median(&self.spawned_ms)
    }
    pub fn median_ready(&self) -> Option<f64> {
        median(&self.ready_ms)
    }
    pub fn median_log_exit(&self) -> Option<f64> {
        median(&self.log_exit_ms)
    }
    pub fn median_log_spawn(&self) -> Option<f64> {
        median(&self.log_spawn_ms)
    }
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn epoch_ms(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

/// Milliseconds since the epoch of an RFC 3339 UTC timestamp with milliseconds, as ferry's
/// log writes them (`2026-11-27T12:12:51.187Z`).
pub fn parse_log_time(s: &str) -> Option<f64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':');
    let (h, min) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    let sec: f64 = t.next()?.parse().ok()?;
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + min * 60) as f64 + sec) * 1000.0)
}

/// (epoch ms, message) of each line of ferry's log.
pub(crate) fn log_events(log: &Path) -> Vec<(f64, String)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("[ ")?;
            let (ts, msg) = rest.split_once(" ] ")?;
            Some((parse_log_time(ts)?, msg.to_string()))
        })
        .collect()
}

/// The pid in a log line such as `Spawning app process 123 (generic)`.
pub(crate) fn pid_after(msg: &str, prefix: &str) -> Option<u32> {
    msg.strip_prefix(prefix)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn delayed_testapp(ctx: &Ctx, delay_ms: u64) -> String {
    format!(
        "env TESTAPP_STARTUP_DELAY_MS={delay_ms} {}",
        ctx.testapp.display()
    )
}

fn start_burst_load(port: u16) -> Result<Guard, String> {
    let mut cmd = crate::wrk::command("http", port, "/", 1, BURST_CONNS, Duration::from_secs(8));
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    Guard::spawn("wrk (burst)", &mut cmd)
}

/// The app a ferry burst grows a pool of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BurstApp {
    /// The testapp with a [`STARTUP_DELAY_MS`] startup, `--concurrency 1`.
    Testapp,
    /// The WSGI startup file (examples/hello-wsgi) through ferry's loader: one session per
    /// process, its own startup time.
    Wsgi,
}

/// ferry: `--min-instances 1 --max-pool-size 6` (plus `extra`), a 200-connection burst,
/// polled status. One session per process (a WSGI app's default; the testapp is told
/// `--concurrency 1`, a generic app's being unlimited) keeps the figures comparable with
/// Passenger's and earlier runs.
pub fn ferry_burst(ctx: &Ctx, app: BurstApp, extra: &[&str]) -> Result<Burst, String> {
    let dir = ctx.run_dir("ferry-burst")?;
    let running = match app {
        BurstApp::Testapp => {
            let mut args = vec!["--concurrency", "1"];
            args.extend_from_slice(extra);
            let command = delayed_testapp(ctx, STARTUP_DELAY_MS);
            servers::ferry_generic(ctx, &dir, &command, 1, BURST_MAX_POOL, &args)?
        }
        BurstApp::Wsgi => servers::ferry_wsgi(ctx, &dir, 1, BURST_MAX_POOL, extra)?,
    };
    let registry = dir.join("registry");
    let log = dir.join("ferry.log");
    let mut burst = Burst::default();
    // One process's startup, spawn → ready, from the log.
    let events = log_events(&log);
    if let Some((t0, pid)) = events
        .iter()
        .find_map(|(t, m)| Some((*t, pid_after(m, "Spawning app process ")?)))
    {
        burst.startup_ms = events
            .iter()
            .find(|(_, m)| *m == format!("App process {pid} is ready"))
            .map(|(t, _)| t - t0);
    }
    thread::sleep(Duration::from_millis(300));

    let wall0 = epoch_ms(SystemTime::now());
    let t0 = Instant::now();
    let load = start_burst_load(running.port)?;
    while t0.elapsed() < DYNAMICS_TIMEOUT {
        let Ok(s) = FerryStatus::query(&registry) else {
            thread::sleep(POLL_EVERY);
            continue;
        };
        burst.polls += 1;
        let now = ms_since(t0);
        if s.processes > 1 && burst.first_spawn_ms.is_none() {
            burst.first_spawn_ms = Some(now);
        }
        if s.processes >= BURST_MAX_POOL && burst.all_spawned_ms.is_none() {
            burst.all_spawned_ms = Some(now);
        }
        if s.ready >= BURST_MAX_POOL {
            burst.all_ready_ms = Some(now);
            break;
        }
        thread::sleep(POLL_EVERY);
    }
    drop(load);
    // The log's view: when the last of the new processes became ready.
    let readies: Vec<f64> = log_events(&log)
        .into_iter()
        .filter(|(t, m)| *t >= wall0.floor() && m.ends_with(" is ready"))
        .map(|(t, _)| t - wall0)
        .collect();
    if readies.len() + 1 >= BURST_MAX_POOL {
        burst.log_all_ready_ms = readies.get(BURST_MAX_POOL - 2).copied();
    }
    drop(running);
    Ok(burst)
}

/// Passenger: the same burst, observed through /proc. Passenger lets a generic app take
/// unlimited concurrent sessions and then never grows the pool, so it is told one session
/// per process, as ferry's burst is.
pub fn passenger_burst(ctx: &Ctx) -> Result<Burst, String> {
    let dir = ctx.run_dir("passenger-burst")?;
    let running = peers::passenger_generic(
        &dir,
        &delayed_testapp(ctx, STARTUP_DELAY_MS),
        1,
        BURST_MAX_POOL,
        &["--force-max-concurrent-requests-per-process", "1"],
    )?;
    let core = running
        .passenger_core
        .ok_or("Passenger's core pid unknown")?;
    let log = dir.join("passenger.log");
    let mut burst = Burst::default();
    thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    let load = start_burst_load(running.port)?;
    while t0.elapsed() < DYNAMICS_TIMEOUT {
        let (spawned, ready) = peers::passenger_testapps(core, &log);
        burst.polls += 1;
        let now = ms_since(t0);
        if spawned.len() > 1 && burst.first_spawn_ms.is_none() {
            burst.first_spawn_ms = Some(now);
        }
        if spawned.len() >= BURST_MAX_POOL && burst.all_spawned_ms.is_none() {
            burst.all_spawned_ms = Some(now);
        }
        if ready.len() >= BURST_MAX_POOL {
            burst.all_ready_ms = Some(now);
            break;
        }
        thread::sleep(POLL_EVERY);
    }
    drop(load);
    drop(running);
    Ok(burst)
}

/// How long the crash trial's processes are up before the first kill. Before issue 9, ferry
/// backed off after crashes of processes younger than this (the engine's `stable_uptime`);
/// now any process that had become ready is replaced at once, and the wait only keeps the
/// figures comparable with earlier runs.
pub const STABLE_UPTIME: Duration = Duration::from_secs(10);

/// Pool size of the crash test: one established process to kill per trial, and one more.
pub fn crash_pool(trials: usize) -> usize {
    trials + 1
}

/// ferry: a pool of `trials + 1` processes up for more than [`STABLE_UPTIME`]; each trial
/// `kill -9`s one of them.
pub fn ferry_crash(ctx: &Ctx, trials: usize) -> Result<Crash, String> {
    let dir = ctx.run_dir("ferry-crash")?;
    let command = ctx.testapp.to_string_lossy().into_owned();
    let pool = crash_pool(trials);
    let running = servers::ferry_generic(ctx, &dir, &command, pool, pool, &[])?;
    let registry = dir.join("registry");
    let log = dir.join("ferry.log");
    thread::sleep(STABLE_UPTIME + Duration::from_millis(500));
    let originals: Vec<u32> = FerryStatus::query(&registry)?
        .pids
        .iter()
        .filter(|(_, state)| state == "ready")
        .map(|(p, _)| *p)
        .collect();
    let mut crash = Crash::default();
    for &victim in originals.iter().take(trials) {
        let known: Vec<u32> = FerryStatus::query(&registry)?
            .pids
            .iter()
            .map(|(p, _)| *p)
            .collect();
        let wall0 = epoch_ms(SystemTime::now());
        let t0 = Instant::now();
        procs::signal(victim, rustix::process::Signal::KILL);
        let (mut spawned, mut ready) = (None, None);
        while t0.elapsed() < DYNAMICS_TIMEOUT && ready.is_none() {
            if let Ok(s) = FerryStatus::query(&registry) {
                for (pid, state) in s.pids.iter().filter(|(p, _)| !known.contains(p)) {
                    let now = ms_since(t0);
                    spawned.get_or_insert((*pid, now));
                    if state == "ready" {
                        ready = Some(now);
                    }
                }
            }
            thread::sleep(POLL_EVERY);
        }
        let Some((new_pid, spawned_ms)) = spawned else {
            crash.missed += 1;
            continue;
        };
        crash.spawned_ms.push(spawned_ms);
        crash.ready_ms.extend(ready);
        // The log has millisecond timestamps; the kill happened at wall0 (±1 ms).
        thread::sleep(Duration::from_millis(50));
        for (t, msg) in log_events(&log) {
            if msg.starts_with(&format!("App process {victim} exited")) {
                crash.log_exit_ms.push((t - wall0).max(0.0));
            }
            if pid_after(&msg, "Spawning app process ") == Some(new_pid) {
                crash.log_spawn_ms.push((t - wall0).max(0.0));
            }
        }
        thread::sleep(Duration::from_millis(200));
    }
    drop(running);
    Ok(crash)
}

/// Passenger: the same crash test, observed through /proc.
pub fn passenger_crash(ctx: &Ctx, trials: usize) -> Result<Crash, String> {
    let dir = ctx.run_dir("passenger-crash")?;
    let command = ctx.testapp.to_string_lossy().into_owned();
    let pool = crash_pool(trials);
    let running = peers::passenger_generic(&dir, &command, pool, pool, &[])?;
    let core = running
        .passenger_core
        .ok_or("Passenger's core pid unknown")?;
    let log = dir.join("passenger.log");
    thread::sleep(STABLE_UPTIME + Duration::from_millis(500));
    let originals = peers::passenger_testapps(core, &log).1;
    let mut crash = Crash::default();
    for &victim in originals.iter().take(trials) {
        let known = peers::passenger_testapps(core, &log).0;
        let t0 = Instant::now();
        procs::signal(victim, rustix::process::Signal::KILL);
        let (mut spawned, mut ready) = (None, None);
        while t0.elapsed() < DYNAMICS_TIMEOUT && ready.is_none() {
            let (now_spawned, now_listening) = peers::passenger_testapps(core, &log);
            let now = ms_since(t0);
            if now_spawned.iter().any(|p| !known.contains(p)) {
                spawned.get_or_insert(now);
            }
            if now_listening.iter().any(|p| !known.contains(p)) {
                ready = Some(now);
            }
            thread::sleep(POLL_EVERY);
        }
        match spawned {
            Some(ms) => crash.spawned_ms.push(ms),
            None => crash.missed += 1,
        }
        crash.ready_ms.extend(ready);
        thread::sleep(Duration::from_millis(200));
    }
    drop(running);
    Ok(crash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_timestamps() {
        assert_eq!(parse_log_time("1970-01-01T00:00:01.250Z"), Some(1250.0));
        // 2026-11-27T12:12:51.187Z
        let t = parse_log_time("2026-11-27T12:12:51.187Z").unwrap();
        assert_eq!(t, 1_795_781_571_187.0);
    }

    #[test]
    fn pids_in_log_lines() {
        assert_eq!(
            pid_after(
                "Spawning app process 123 (generic)",
                "Spawning app process "
            ),
            Some(123)
        );
        assert_eq!(
            pid_after("App process 9 is ready", "Spawning app process "),
            None
        );
    }
}
