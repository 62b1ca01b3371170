//! The report's pool-dynamics section: burst growth and crash replacement, ferry beside
//! Passenger.

use crate::dynamics::BurstApp;
use crate::opts::Opts;
use crate::results::{fmt_opt, target_row};
use crate::servers::{Ctx, Server};
use crate::table::Table;
use crate::{async_app, dynamics, interrupted};
use std::fmt::Write as _;

pub fn dynamics_section(ctx: &Ctx, opts: &Opts, report: &mut String) {
    let _ = writeln!(
        report,
        "\n### Pool dynamics\n\n\
         Burst: testapp with TESTAPP_STARTUP_DELAY_MS={}, `--min-instances 1 --max-pool-size {}`, \
         then `wrk -c{}`; times from the start of wrk; the WSGI row is examples/hello-wsgi \
         through ferry's loader (one session per process, its own startup time). Crash: a pool of {} processes up for more \
         than {} s (before issue 9 ferry replaced a younger one only after backoff), `kill -9` of \
         one per trial, {} trials, medians. ferry is polled through its status (admin socket, as \
         `ferry status --json`) every ~1 ms and cross-checked with its log (ms timestamps); \
         Passenger through /proc (its core's testapp children) and its log (each testapp's \
         startup line, printed once it listens).\n",
        dynamics::STARTUP_DELAY_MS,
        dynamics::BURST_MAX_POOL,
        dynamics::BURST_CONNS,
        dynamics::crash_pool(opts.crash_trials),
        dynamics::STABLE_UPTIME.as_secs(),
        opts.crash_trials
    );
    let passenger = Server::Passenger.missing(ctx).is_none();
    let mut bursts = Vec::new();
    eprintln!("ferry-bench: burst (ferry)");
    bursts.push(("ferry", dynamics::ferry_burst(ctx, BurstApp::Testapp, &[])));
    if !interrupted() {
        eprintln!("ferry-bench: burst (ferry --max-spawn-concurrency 5)");
        let extra = ["--max-spawn-concurrency", "5"];
        bursts.push((
            "ferry --max-spawn-concurrency 5",
            dynamics::ferry_burst(ctx, BurstApp::Testapp, &extra),
        ));
    }
    if !interrupted() {
        eprintln!("ferry-bench: burst (ferry, WSGI)");
        bursts.push((
            "ferry, WSGI (hello-wsgi)",
            dynamics::ferry_burst(ctx, BurstApp::Wsgi, &[]),
        ));
    }
    if passenger && !interrupted() {
        eprintln!("ferry-bench: burst (Passenger)");
        bursts.push((
            "Passenger --force-max-concurrent-requests-per-process 1",
            dynamics::passenger_burst(ctx),
        ));
    }
    let mut t = Table::new(&[
        "server",
        "1 process starts in (ms)",
        "2nd process exists (ms)",
        "6 exist (ms)",
        "6 ready (ms)",
        "6 ready, per log (ms)",
        "polls",
    ])
    .left_align(0);
    let mut ferry_burst = None;
    for (name, b) in &bursts {
        match b {
            Ok(b) => {
                t.row(vec![
                    name.to_string(),
                    fmt_opt(b.startup_ms, 0),
                    fmt_opt(b.first_spawn_ms, 0),
                    fmt_opt(b.all_spawned_ms, 0),
                    fmt_opt(b.all_ready_ms, 0),
                    fmt_opt(b.log_all_ready_ms, 0),
                    b.polls.to_string(),
                ]);
                if *name == "ferry" {
                    ferry_burst = Some(b.clone());
                }
            }
            Err(e) => {
                let _ = writeln!(
                    report,
                    "- burst ({name}) failed: {}",
                    e.lines().next().unwrap_or("")
                );
            }
        }
    }
    report.push('\n');
    report.push_str(&t.render());

    let mut crashes = Vec::new();
    if opts.crash_trials > 0 && !interrupted() {
        eprintln!("ferry-bench: crash (ferry)");
        crashes.push(("ferry", dynamics::ferry_crash(ctx, opts.crash_trials)));
        if passenger && !interrupted() {
            eprintln!("ferry-bench: crash (Passenger)");
            crashes.push((
                "Passenger",
                dynamics::passenger_crash(ctx, opts.crash_trials),
            ));
        }
    }
    let mut t = Table::new(&[
        "server",
        "exit logged (ms)",
        "spawn logged (ms)",
        "replacement exists (ms)",
        "replacement ready (ms)",
        "not replaced",
    ])
    .left_align(0);
    let mut ferry_crash = None;
    for (name, c) in &crashes {
        match c {
            Ok(c) => {
                t.row(vec![
                    name.to_string(),
                    fmt_opt(c.median_log_exit(), 0),
                    fmt_opt(c.median_log_spawn(), 0),
                    fmt_opt(c.median_spawned(), 1),
                    fmt_opt(c.median_ready(), 1),
                    c.missed.to_string(),
                ]);
                if *name == "ferry" {
                    ferry_crash = Some(c.clone());
                }
            }
            Err(e) => {
                let _ = writeln!(
                    report,
                    "- crash ({name}) failed: {}",
                    e.lines().next().unwrap_or("")
                );
            }
        }
    }
    if !t.is_empty() {
        report.push('\n');
        report.push_str(&t.render());
    }

    let mut t = Table::new(&["target", "measured", "verdict"])
        .left_align(1)
        .left_align(2);
    let burst_measured = ferry_burst.as_ref().and_then(|b| {
        let limit = 2.0 * b.startup_ms.unwrap_or(dynamics::STARTUP_DELAY_MS as f64);
        let ready = b.all_ready_ms?;
        Some((
            format!(
                "all {} ready after {ready:.0} ms; limit 2 × {:.0} ms = {limit:.0} ms",
                dynamics::BURST_MAX_POOL,
                limit / 2.0
            ),
            ready <= limit,
        ))
    });
    target_row(
        &mut t,
        "burst: max pool size reached within 2× one process's startup",
        burst_measured,
    );
    let crash_measured = ferry_crash.as_ref().and_then(|c| {
        let ms = c.median_log_spawn().or(c.median_spawned())?;
        Some((
            format!(
                "spawn logged {ms:.0} ms after the kill (seen in status after {})",
                fmt_opt(c.median_spawned(), 1)
            ),
            ms <= 50.0,
        ))
    });
    target_row(
        &mut t,
        "crash: replacement spawned within 50 ms of the exit",
        crash_measured,
    );
    report.push_str("\nTargets:\n\n");
    report.push_str(&t.render());
}

/// How many rounds of the async app's concurrent requests.
const ASYNC_TRIALS: usize = 5;

/// The generic async app (tests/asyncapp) through ferry with its default flags.
pub fn async_section(ctx: &Ctx, report: &mut String) {
    let _ = writeln!(
        report,
        "\n### A generic async app\n\n\
         tests/asyncapp/asyncapp.py (stdlib asyncio; `/sleep?ms={ms}` answers after {ms} ms \
         without holding a thread) behind `ferry --app-start-command ...` with no other flag \
         (a generic app's defaults: `--concurrency 0 --target-concurrency 10`, min 1, max 6). \
         {n} concurrent requests, {trials} rounds on one ferry; then {clients} closed-loop \
         clients of the same request for {secs} s on a fresh one. The pool is polled through \
         its status every 20 ms.\n",
        ms = async_app::SLEEP_MS,
        n = async_app::CONCURRENT_REQUESTS,
        trials = ASYNC_TRIALS,
        clients = async_app::HEAVY_CLIENTS,
        secs = async_app::HEAVY_FOR.as_secs(),
    );
    eprintln!("ferry-bench: async app, concurrent requests");
    match async_app::concurrent(ctx, ASYNC_TRIALS) {
        Ok(trials) => {
            let mut t = Table::new(&[
                "round",
                "all answered after (ms)",
                "processes that answered",
                "most at once in one process",
                "pool's most processes",
                "errors",
            ]);
            for (i, c) in trials.iter().enumerate() {
                t.row(vec![
                    (i + 1).to_string(),
                    format!("{:.0}", c.total_ms),
                    c.pids.to_string(),
                    c.peak_in_flight.to_string(),
                    c.pool_max.to_string(),
                    c.errors.to_string(),
                ]);
            }
            report.push('\n');
            report.push_str(&t.render());
        }
        Err(e) => {
            let _ = writeln!(report, "- concurrent requests failed: {e}");
        }
    }
    if interrupted() {
        return;
    }
    eprintln!("ferry-bench: async app, heavier load");
    match async_app::heavy(ctx) {
        Ok(h) => {
            let secs = async_app::HEAVY_FOR.as_secs_f64();
            let mut t = Table::new(&[
                "clients",
                "served",
                "req/s",
                "errors",
                "processes that answered",
                "2nd process after (ms)",
                "most processes",
                "reached after (ms)",
                "processes at 5/10/15/20 s",
            ]);
            t.row(vec![
                async_app::HEAVY_CLIENTS.to_string(),
                h.served.to_string(),
                format!("{:.1}", h.served as f64 / secs),
                h.errors.to_string(),
                h.pids.to_string(),
                fmt_opt(h.second_process_ms, 0),
                h.pool_max.to_string(),
                fmt_opt(h.pool_max_ms, 0),
                h.pool_every_5s
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join("/"),
            ]);
            report.push('\n');
            report.push_str(&t.render());
        }
        Err(e) => {
            let _ = writeln!(report, "- heavier load failed: {e}");
        }
    }
}
