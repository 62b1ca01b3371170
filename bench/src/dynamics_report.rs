//! The report's pool-dynamics section: burst growth and crash replacement, ferry beside
//! Passenger.

use crate::opts::Opts;
use crate::results::{fmt_opt, target_row};
use crate::servers::{Ctx, Server};
use crate::table::Table;
use crate::{dynamics, interrupted};
use std::fmt::Write as _;

pub fn dynamics_section(ctx: &Ctx, opts: &Opts, report: &mut String) {
    let _ = writeln!(
        report,
        "\n### Pool dynamics\n\n\
         Burst: testapp with TESTAPP_STARTUP_DELAY_MS={}, `--min-instances 1 --max-pool-size {}`, \
         then `wrk -c{}`; times from the start of wrk. Crash: a pool of {} processes up for more \
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
    bursts.push(("ferry", dynamics::ferry_burst(ctx, &[])));
    if !interrupted() {
        eprintln!("ferry-bench: burst (ferry --max-spawn-concurrency 5)");
        bursts.push((
            "ferry --max-spawn-concurrency 5",
            dynamics::ferry_burst(ctx, &["--max-spawn-concurrency", "5"]),
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
