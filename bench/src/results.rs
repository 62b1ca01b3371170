//! Measuring servers in interleaved rounds of wrk, and the tables made of the results.

use crate::opts::Opts;
use crate::procs;
use crate::servers::{Ctx, Running, Server};
use crate::table::{median, Table};
use crate::{interrupted, rss, wrk};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// The wrk load of one table: threads, and the connection counts every server is measured at.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    pub threads: usize,
    pub conns: &'static [usize],
    /// The request wrk sends.
    pub path: &'static str,
}

/// The proxy table: `wrk -t1 -c20` and `-c200`.
pub const PROXY_LOAD: Load = Load {
    threads: 1,
    conns: &[20, 200],
    path: "/",
};

/// The WSGI tables: `wrk -t2 -c50`, the load issue 15 measured at.
pub const WSGI_LOAD: Load = Load {
    threads: 2,
    conns: &[50],
    path: "/",
};

/// The WSGI table of requests that wait: the hello app's `/slow?ms=20`, 20 ms asleep as a
/// database call would be, at the same `wrk -t2 -c50`.
pub const WSGI_WAIT_LOAD: Load = Load {
    path: "/slow?ms=20",
    ..WSGI_LOAD
};
/// How often the proxy's RSS is sampled during a wrk run.
const RSS_SAMPLE_EVERY: Duration = Duration::from_millis(20);

/// One wrk run's figures.
struct Sample {
    wrk: wrk::WrkResult,
    rss_kb: Option<u64>,
    /// The largest peak RSS (VmHWM) among the app's worker processes (WSGI servers only).
    app_rss_kb: Option<u64>,
}

/// Medians over rounds of one server at one connection count.
pub struct Summary {
    pub rps: f64,
    pub rps_min: f64,
    pub rps_max: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub rss_mb: Option<f64>,
    pub app_rss_mb: Option<f64>,
    pub errors: u64,
    pub rounds: usize,
}

fn summarize(samples: &[Sample]) -> Option<Summary> {
    let of = |f: &dyn Fn(&Sample) -> f64| median(&samples.iter().map(f).collect::<Vec<_>>());
    let rss: Vec<f64> = samples
        .iter()
        .filter_map(|s| s.rss_kb)
        .map(|kb| kb as f64 / 1024.0)
        .collect();
    let app_rss: Vec<f64> = samples
        .iter()
        .filter_map(|s| s.app_rss_kb)
        .map(|kb| kb as f64 / 1024.0)
        .collect();
    let rps: Vec<f64> = samples.iter().map(|s| s.wrk.requests_per_sec).collect();
    Some(Summary {
        rps: of(&|s| s.wrk.requests_per_sec)?,
        rps_min: rps.iter().copied().fold(f64::INFINITY, f64::min),
        rps_max: rps.iter().copied().fold(0.0, f64::max),
        p50_ms: of(&|s| s.wrk.p50_ms)?,
        p99_ms: of(&|s| s.wrk.p99_ms)?,
        rss_mb: median(&rss),
        app_rss_mb: median(&app_rss),
        errors: samples.iter().map(|s| s.wrk.errors()).sum(),
        rounds: samples.len(),
    })
}

pub struct Results {
    pub load: Load,
    samples: BTreeMap<(String, usize), Vec<Sample>>,
    pub failures: Vec<String>,
}

impl Results {
    pub fn summary(&self, server: &Server, conns: usize) -> Option<Summary> {
        summarize(self.samples.get(&(server.key(), conns))?)
    }
}

/// Starts `server`, warms it up, runs wrk at each connection count, stops it.
pub fn measure(ctx: &Ctx, server: &Server, opts: &Opts, round: usize, results: &mut Results) {
    let load = results.load;
    eprintln!("ferry-bench: round {round}: {}", server.label());
    let running = match server.start(ctx) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ferry-bench:   could not start: {e}");
            results.failures.push(format!(
                "round {round}: {} did not start: {e}",
                server.label()
            ));
            return;
        }
    };
    if !opts.warmup.is_zero() {
        if let Err(e) = wrk::run(
            running.scheme,
            running.port,
            load.path,
            load.threads,
            load.conns[0],
            opts.warmup,
        ) {
            eprintln!("ferry-bench:   warm-up failed: {e}");
        }
    }
    for &conns in load.conns {
        if interrupted() {
            return;
        }
        let sampler = (!running.proxy_pids.is_empty())
            .then(|| rss::Sampler::start(running.proxy_pids.clone(), RSS_SAMPLE_EVERY));
        let result = wrk::run(
            running.scheme,
            running.port,
            load.path,
            load.threads,
            conns,
            opts.duration,
        );
        let rss = sampler.map(|s| s.finish().kb());
        let app_rss = server
            .is_wsgi()
            .then(|| app_peak_rss_kb(&running))
            .flatten();
        match result {
            Ok(w) => {
                eprintln!(
                    "ferry-bench:   -c{conns}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, RSS {}, errors {}",
                    w.requests_per_sec,
                    w.p50_ms,
                    w.p99_ms,
                    rss.map_or("-".into(), |kb| format!("{:.1} MB", kb as f64 / 1024.0)),
                    w.errors()
                );
                results
                    .samples
                    .entry((server.key(), conns))
                    .or_default()
                    .push(Sample {
                        wrk: w,
                        rss_kb: rss,
                        app_rss_kb: app_rss,
                    });
            }
            Err(e) => {
                eprintln!("ferry-bench:   wrk -c{conns} failed: {e}");
                results
                    .failures
                    .push(format!("round {round}: {} -c{conns}: {e}", server.label()));
            }
        }
    }
}

/// The largest VmHWM among the processes running the app: the children (and their
/// children) of Passenger's core, or of the server's own process.
fn app_peak_rss_kb(running: &Running) -> Option<u64> {
    let parent = running
        .passenger_core
        .or_else(|| running.proxy_pids.first().copied())?;
    procs::descendants(&[parent])
        .into_iter()
        .filter_map(|pid| rss::status_kb(pid, "VmHWM"))
        .max()
}

/// Runs `servers` in interleaved rounds under `load`.
pub fn run_rounds(ctx: &Ctx, servers: &[Server], opts: &Opts, load: Load) -> Results {
    let mut results = Results {
        load,
        samples: BTreeMap::new(),
        failures: Vec::new(),
    };
    for round in 1..=opts.rounds {
        for server in servers {
            if interrupted() {
                return results;
            }
            measure(ctx, server, opts, round, &mut results);
        }
    }
    results
}

pub fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("—".into(), |v| format!("{v:.digits$}"))
}

pub fn results_table(servers: &[Server], results: &Results) -> Table {
    let with_app_rss = servers.iter().any(Server::is_wsgi);
    let mut headers = vec![
        "server",
        "conns",
        "req/s",
        "req/s range",
        "p50 ms",
        "p99 ms",
        "peak RSS MB",
        "RSS of",
    ];
    if with_app_rss {
        headers.push("RSS per app process MB");
    }
    headers.extend(["errors", "rounds"]);
    let mut t = Table::new(&headers).left_align(0).left_align(7);
    for server in servers {
        for &conns in results.load.conns {
            let Some(s) = results.summary(server, conns) else {
                continue;
            };
            let mut row = vec![
                server.label(),
                conns.to_string(),
                format!("{:.0}", s.rps),
                format!("{:.0}–{:.0}", s.rps_min, s.rps_max),
                format!("{:.2}", s.p50_ms),
                format!("{:.2}", s.p99_ms),
                fmt_opt(s.rss_mb, 1),
                server.rss_note().into(),
            ];
            if with_app_rss {
                row.push(fmt_opt(s.app_rss_mb, 1));
            }
            row.extend([s.errors.to_string(), s.rounds.to_string()]);
            t.row(row);
        }
    }
    t
}

/// ferry's throughput and p99 relative to each other server.
pub fn ratio_table(ferries: &[Server], others: &[Server], results: &Results) -> Table {
    let mut headers = vec!["ferry ÷ other".to_string()];
    for c in results.load.conns {
        headers.push(format!("req/s @{c}"));
        headers.push(format!("p99 @{c}"));
    }
    let refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    let mut t = Table::new(&refs).left_align(0);
    for ferry in ferries {
        for other in others {
            let mut row = vec![format!("{} ÷ {}", ferry.label(), other.label())];
            let mut any = false;
            for &c in results.load.conns {
                match (results.summary(ferry, c), results.summary(other, c)) {
                    (Some(f), Some(o)) => {
                        any = true;
                        row.push(format!("{:.2}×", f.rps / o.rps));
                        row.push(format!("{:.2}×", f.p99_ms / o.p99_ms));
                    }
                    _ => row.extend(["—".to_string(), "—".to_string()]),
                }
            }
            if any {
                t.row(row);
            }
        }
    }
    t
}

/// A target's row: what it asks, what was measured, whether it is met.
pub fn target_row(t: &mut Table, target: &str, measured: Option<(String, bool)>) {
    let (text, verdict) = match measured {
        Some((text, met)) => (text, if met { "met" } else { "NOT met" }),
        None => ("not measured".into(), "—"),
    };
    t.row(vec![target.into(), text, verdict.into()]);
}

pub fn throughput_target(
    t: &mut Table,
    results: &Results,
    ferry: &Server,
    other: &Server,
    factor: f64,
    check_p99: bool,
) {
    for &c in results.load.conns {
        let target = if check_p99 {
            format!(
                "{} ≥ {factor}× {} req/s @{c}, p99 no higher",
                ferry.label(),
                other.label()
            )
        } else {
            format!("{} ≥ {factor}× {} req/s @{c}", ferry.label(), other.label())
        };
        let measured = match (results.summary(ferry, c), results.summary(other, c)) {
            (Some(f), Some(o)) => {
                let ratio = f.rps / o.rps;
                let p99_ok = !check_p99 || f.p99_ms <= o.p99_ms;
                let mut text = format!("{:.0} vs {:.0} req/s = {ratio:.2}×", f.rps, o.rps);
                if check_p99 {
                    let _ = write!(text, "; p99 {:.2} vs {:.2} ms", f.p99_ms, o.p99_ms);
                }
                Some((text, ratio >= factor && p99_ok))
            }
            _ => None,
        };
        target_row(t, &target, measured);
    }
}
