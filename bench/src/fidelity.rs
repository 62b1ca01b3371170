//! The simulator against the real server, in three cases: the walkthrough's burst (wrk,
//! 200 connections), light traffic under which the pool shrinks, and `kill -9` of a process.
//! Each case runs the real ferry (release) on the hello WSGI app with a JSON access log,
//! polls its status on every second, then replays the log in `ferry sim` with the same pool
//! and the app's start and stop times measured from ferry's own log (the kills as faults at
//! the same instants), and sets the two side by side (`ferry_sim::fidelity`).

use crate::dynamics::{log_events, pid_after};
use crate::procs::{self, Guard};
use crate::servers::{self, Ctx, FerryStatus};
use crate::table::Table;
use ferry_sim::fidelity::{checkpoints, Comparison, Poll};
use ferry_sim::TimeSeries;
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The pool a case runs, as `ferry start` flags and as a scenario's `[pool]`.
struct Pool {
    min: usize,
    max: usize,
    idle_s: u64,
}

/// What a case sends: wrk's closed loop, or requests at fixed times (seconds from 0 s).
enum Load {
    Wrk {
        from_s: f64,
        seconds: u64,
        conns: usize,
    },
    OpenLoop(Vec<f64>),
}

struct Case {
    name: &'static str,
    pool: Pool,
    /// The request every load sends.
    path: &'static str,
    load: Load,
    /// When a process is killed with SIGKILL (the oldest), seconds from 0 s.
    kills_s: Vec<f64>,
    /// Polled from 0 s to here; one request is sent 1.5 s before, so the replay, which ends
    /// with the log's last request, covers the polls.
    run_s: u64,
}

/// What one case measured.
pub struct Measured {
    name: &'static str,
    comparison: Comparison,
    /// Requests of the real log neither served nor 503 (clients gone while queued: the
    /// ones wrk leaves at its end; 502s of killed requests), beside the replay's cancelled
    /// and failed ones.
    real_other: u64,
    sim_other: u64,
    spawn_ms: u64,
    shutdown_ms: Option<u64>,
    lines: usize,
}

/// How long an open-loop client waits for its answer: longer than any case keeps one.
const ANSWER_LIMIT: Duration = Duration::from_secs(60);

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn sleep_until_unix(at: f64) {
    let wait = at - unix_now();
    if wait > 0.0 {
        thread::sleep(Duration::from_secs_f64(wait));
    }
}

fn cases() -> Vec<Case> {
    let every = |from: f64, to: f64, per_s: f64| {
        let n = ((to - from) * per_s).round() as usize;
        (0..n).map(move |i| from + i as f64 / per_s)
    };
    vec![
        Case {
            name: "walkthrough burst: wrk -t2 -c200 -d5s, /slow?ms=100",
            pool: Pool {
                min: 2,
                max: 6,
                idle_s: 10,
            },
            path: "/slow?ms=100",
            load: Load::Wrk {
                from_s: 2.5,
                seconds: 5,
                conns: 200,
            },
            kills_s: Vec::new(),
            run_s: 22,
        },
        Case {
            name: "light traffic: 40/s for 2 s, then 3/s for 18 s, /slow?ms=100",
            pool: Pool {
                min: 1,
                max: 6,
                idle_s: 5,
            },
            path: "/slow?ms=100",
            load: Load::OpenLoop(every(0.5, 2.5, 40.0).chain(every(2.5, 20.5, 3.0)).collect()),
            kills_s: Vec::new(),
            run_s: 24,
        },
        Case {
            name: "crash: 10/s, /slow?ms=50, kill -9 at 6 s and 13 s",
            pool: Pool {
                min: 3,
                max: 3,
                idle_s: 300,
            },
            path: "/slow?ms=50",
            load: Load::OpenLoop(every(0.5, 20.5, 10.0).collect()),
            kills_s: vec![6.0, 13.0],
            run_s: 22,
        },
    ]
}

/// Sends each request on its own connection at its time; returns the threads.
fn open_loop(port: u16, path: &'static str, times: Vec<f64>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let sent: Vec<_> = times
            .into_iter()
            .map(|at| {
                sleep_until_unix(at);
                // Waiting as long as it takes: a client that gave up would change the load.
                thread::spawn(move || crate::net::http_status_within(port, path, ANSWER_LIMIT))
            })
            .collect();
        for request in sent {
            let _ = request.join();
        }
    })
}

fn median(mut times: Vec<f64>) -> Option<f64> {
    times.sort_by(f64::total_cmp);
    times.get(times.len() / 2).copied()
}

/// From each line naming a process (`first` P … or `first` … (pid P)) to the line
/// `then` P `rest`, in ms: spawn → ready, decided kill → exit.
fn process_times(events: &[(f64, String)], first: &str, then: &str, rest: &str) -> Vec<f64> {
    events
        .iter()
        .filter_map(|(t, msg)| {
            let after = msg.strip_prefix(first)?;
            let pid = match after.split_once("(pid ") {
                Some((_, tail)) => tail.split(')').next()?.parse().ok()?,
                None => pid_after(msg, first)?,
            };
            let end = format!("{then}{pid}{rest}");
            let (end_t, _) = events.iter().find(|(_, m)| m.starts_with(&end))?;
            Some(end_t - t)
        })
        .collect()
}

/// The real log's counts: (served, 503s, others) and its lines. Served is what an app
/// process took (a pid logged), whatever the client saw: a client that left while its
/// request was being served (a 499) still had it served, as in the replay.
fn real_counts(log: &Path) -> Result<(u64, u64, u64, usize), String> {
    let text = std::fs::read_to_string(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let (mut served, mut rejected, mut other, mut lines) = (0, 0, 0, 0);
    for line in text.lines() {
        lines += 1;
        let json: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
        if json["pid"].is_u64() && json["status"] != 502 {
            served += 1;
        } else if json["status"] == 503 {
            rejected += 1;
        } else {
            other += 1;
        }
    }
    Ok((served, rejected, other, lines))
}

fn scenario_toml(case: &Case, spawn_ms: u64, shutdown_ms: Option<u64>, kills: &[f64]) -> String {
    let p = &case.pool;
    let mut toml = format!(
        "name = \"fidelity\"\nduration = \"{}s\"\n[pool]\nmin_instances = {}\nmax_pool_size = {}\npool_idle_time = \"{}s\"\n[app]\nspawn_time = \"{spawn_ms}ms\"\nspawn_contention = 0.0\n",
        case.run_s + 2,
        p.min,
        p.max,
        p.idle_s
    );
    if let Some(ms) = shutdown_ms {
        let _ = writeln!(toml, "shutdown_time = \"{ms}ms\"");
    }
    toml.push_str("[replay]\nlog = \"access.json\"\n");
    for at in kills {
        let _ = write!(toml, "[[fault]]\nat = \"{at:.3}s\"\nkill = \"process 1\"\n");
    }
    toml
}

fn run_case(ctx: &Ctx, case: &Case) -> Result<Measured, String> {
    let dir = ctx.run_dir("fidelity")?;
    let app = servers::wsgi_app_dir(ctx, &dir)?;
    let python = ctx.python().ok_or("python3 not found")?;
    let log = dir.join("access.json");
    let p = &case.pool;
    let args: Vec<String> = [
        "--python",
        &python.to_string_lossy(),
        "--min-instances",
        &p.min.to_string(),
        "--max-pool-size",
        &p.max.to_string(),
        "--pool-idle-time",
        &p.idle_s.to_string(),
        "--access-log",
        &log.to_string_lossy(),
        "--access-log-format",
        "json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let running = servers::run_ferry(ctx, &dir, &app, &args, p.min)?;
    let registry = dir.join("registry");
    let port = running.port;
    let start = unix_now().floor() + 2.0;
    let poller = {
        let (registry, run_s) = (registry.clone(), case.run_s);
        thread::spawn(move || {
            (0..=run_s)
                .filter_map(|k| {
                    sleep_until_unix(start + k as f64);
                    let unix_s = unix_now();
                    let status = FerryStatus::query(&registry).ok()?;
                    Some(Poll {
                        unix_s,
                        processes: status.processes as u32,
                    })
                })
                .collect::<Vec<Poll>>()
        })
    };
    let mut wrk: Option<Guard> = None;
    let mut senders = Vec::new();
    match &case.load {
        Load::Wrk {
            from_s,
            seconds,
            conns,
        } => {
            sleep_until_unix(start + from_s);
            let duration = Duration::from_secs(*seconds);
            let mut cmd = crate::wrk::command("http", port, case.path, 2, *conns, duration);
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
            wrk = Some(Guard::spawn("wrk (fidelity)", &mut cmd)?);
        }
        Load::OpenLoop(times) => {
            let times = times.iter().map(|t| start + t).collect();
            senders.push(open_loop(port, case.path, times));
        }
    }
    let mut killed_at = Vec::new();
    for at in &case.kills_s {
        sleep_until_unix(start + at);
        let status = FerryStatus::query(&registry)?;
        let (oldest, _) = status
            .pids
            .iter()
            .find(|(_, state)| state == "ready")
            .ok_or("no ready process to kill")?;
        killed_at.push(unix_now());
        procs::signal(*oldest, rustix::process::Signal::KILL);
    }
    senders.push(open_loop(
        port,
        case.path,
        vec![start + case.run_s as f64 - 1.5],
    ));
    let polls = poller.join().map_err(|_| "the poller panicked")?;
    for sender in senders {
        let _ = sender.join();
    }
    if let Some(mut wrk) = wrk {
        wrk.wait_timeout(Duration::from_secs(10));
    }
    drop(running);

    let events = log_events(&dir.join("ferry.log"));
    let spawn_ms = median(process_times(
        &events,
        "Spawning app process ",
        "App process ",
        " is ready",
    ))
    .ok_or("ferry's log shows no spawn")?
    .round() as u64;
    let shutdown_ms = median(process_times(
        &events,
        "Decision: kill process ",
        "App process ",
        " exited",
    ))
    .map(|ms| ms.round() as u64);
    let replay_log =
        ferry_sim::accesslog::AccessLog::load_detected(&log).map_err(|e| e.to_string())?;
    let zero = replay_log.start_unix_s;
    let kills: Vec<f64> = killed_at.iter().map(|t| t - zero as f64).collect();
    let scenario = dir.join("fidelity.toml");
    std::fs::write(
        &scenario,
        scenario_toml(case, spawn_ms, shutdown_ms, &kills),
    )
    .map_err(|e| e.to_string())?;
    let out = Command::new(&ctx.ferry)
        .arg("sim")
        .arg(&scenario)
        .arg("--json")
        .output()
        .map_err(|e| format!("ferry sim: {e}"))?;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "ferry sim: {e}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })?;
    let series: TimeSeries =
        serde_json::from_value(json["time_series"].clone()).map_err(|e| e.to_string())?;
    let (served, rejected, real_other, lines) = real_counts(&log)?;
    let count = |key: &str| json["requests"][key].as_u64().unwrap_or(0);
    Ok(Measured {
        name: case.name,
        comparison: Comparison {
            checkpoints: checkpoints(&polls, zero, &series),
            served: (served, count("served")),
            rejected: (rejected, count("rejected")),
        },
        real_other,
        sim_other: count("failed") + count("cancelled"),
        spawn_ms,
        shutdown_ms,
        lines,
    })
}

/// The section: a row a case, then each case's two series.
pub fn fidelity_section(ctx: &Ctx, report: &mut String) {
    let _ = writeln!(
        report,
        "\n### Fidelity: the simulator against the real server\n\n\
         ferry (release) on the hello WSGI app, its status polled on every second; then \
         `ferry sim` replays its JSON access log with the same pool, the app's measured start \
         and stop times (median spawn → ready and kill → exit in ferry's log; \
         `spawn_contention` 0, the median holding the run's contention), and the kills as \
         faults. A checkpoint agrees when the process counts are within ±1.\n"
    );
    let mut t = Table::new(&[
        "case",
        "checkpoints agreeing",
        "equal",
        "served real / sim",
        "503s real / sim",
        "gone or failed real / sim",
        "log lines",
        "spawn, shutdown (ms)",
    ])
    .left_align(0);
    let mut series = String::new();
    for case in cases() {
        if crate::interrupted() {
            break;
        }
        eprintln!("ferry-bench: fidelity: {}", case.name);
        match run_case(ctx, &case) {
            Ok(m) => {
                let c = &m.comparison;
                let equal = c.checkpoints.iter().filter(|c| c.real == c.sim).count();
                t.row(vec![
                    m.name.to_string(),
                    format!(
                        "{} of {} ({:.0}%)",
                        c.agreeing(),
                        c.checkpoints.len(),
                        c.agreeing_share() * 100.0
                    ),
                    equal.to_string(),
                    format!("{} / {}", c.served.0, c.served.1),
                    format!("{} / {}", c.rejected.0, c.rejected.1),
                    format!("{} / {}", m.real_other, m.sim_other),
                    m.lines.to_string(),
                    format!(
                        "{}, {}",
                        m.spawn_ms,
                        m.shutdown_ms.map_or("-".into(), |ms| ms.to_string())
                    ),
                ]);
                let row = |pick: fn(&ferry_sim::fidelity::Checkpoint) -> u32| {
                    c.checkpoints
                        .iter()
                        .map(|c| pick(c).to_string())
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                let _ = writeln!(
                    series,
                    "- {}: processes each second, real `{}`, sim `{}`",
                    m.name,
                    row(|c| c.real),
                    row(|c| c.sim)
                );
            }
            Err(e) => {
                eprintln!("ferry-bench: fidelity: {}: {e}", case.name);
                let _ = writeln!(series, "- {}: failed: {e}", case.name);
            }
        }
    }
    report.push_str(&t.render());
    report.push('\n');
    report.push_str(&series);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_times_pair_each_pid_with_its_later_line() {
        let events: Vec<(f64, String)> = [
            (1000.0, "Spawning app process 7 (wsgi)"),
            (1100.0, "Decision: kill process 2 (pid 8), reason: idle"),
            (1150.0, "App process 7 is ready"),
            (1103.0, "App process 8 exited (exit status 0)"),
            (1200.0, "Spawning app process 9 (wsgi)"),
        ]
        .iter()
        .map(|(t, m)| (*t, m.to_string()))
        .collect();
        let spawns = process_times(
            &events,
            "Spawning app process ",
            "App process ",
            " is ready",
        );
        assert_eq!(spawns, [150.0]);
        let stops = process_times(
            &events,
            "Decision: kill process ",
            "App process ",
            " exited",
        );
        assert_eq!(stops, [3.0]);
    }
}
