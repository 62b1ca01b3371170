//! ferry-bench: ferry against talking to the app directly, HAProxy, nginx, Passenger
//! Standalone and gunicorn, on loopback, in front of the same backend; plus ferry's pool
//! dynamics (burst growth, crash replacement). Prints Markdown tables.
//!
//! Usage: `bench/install.sh && cargo run --release -p ferry-bench [-- OPTIONS]`
//! (`--help` lists the options). Not part of `cargo test`.

mod dynamics;
mod net;
mod procs;
mod rss;
mod servers;
mod table;
mod wrk;

use servers::{Ctx, Server};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use table::{median, Table};

/// Connection counts every server is measured at.
const CONNS: [usize; 2] = [20, 200];
/// How often the proxy's RSS is sampled during a wrk run.
const RSS_SAMPLE_EVERY: Duration = Duration::from_millis(20);

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

const USAGE: &str = "\
ferry-bench: ferry vs direct, HAProxy, nginx, Passenger and gunicorn on loopback.

Usage: cargo run --release -p ferry-bench -- [OPTIONS]

Options:
  --duration SECS     length of each wrk run (default 5)
  --warmup SECS       wrk warm-up after each server start, not measured (default 1)
  --rounds N          interleaved rounds, A B C A B C ... (default 5)
  --apps N            app processes behind each server (default 2)
  --servers LIST      only these, comma-separated: direct, ferry-c1, ferry-c0, haproxy,
                      nginx, passenger, ferry-wsgi, passenger-wsgi, gunicorn
  --no-proxies        skip the proxy table
  --no-wsgi           skip the WSGI table
  --no-dynamics       skip the burst and crash measurements
  --crash-trials N    kill -9 trials per server (default 5, at most 8)
  --no-build          do not run `cargo build --release -p ferry -p ferry-testapp` first
  --out FILE          also write the report (Markdown) to FILE
  -h, --help          this text

Environment: FERRY_BENCH_BIN_DIR (where ferry and ferry-testapp are; default: this
program's directory), FERRY_BENCH_KEEP_TMP (keep the run directories and logs).";

struct Opts {
    duration: Duration,
    warmup: Duration,
    rounds: usize,
    apps: usize,
    only: Option<Vec<String>>,
    proxies: bool,
    wsgi: bool,
    dynamics: bool,
    crash_trials: usize,
    build: bool,
    out: Option<PathBuf>,
}

fn parse_opts() -> Result<Opts, String> {
    let mut o = Opts {
        duration: Duration::from_secs(5),
        warmup: Duration::from_secs(1),
        rounds: 5,
        apps: 2,
        only: None,
        proxies: true,
        wsgi: true,
        dynamics: true,
        crash_trials: 5,
        build: true,
        out: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        let number = |v: String, name: &str| -> Result<u64, String> {
            v.parse()
                .map_err(|_| format!("{name} needs a number, got {v:?}"))
        };
        match arg.as_str() {
            "--duration" => o.duration = Duration::from_secs(number(value(&arg)?, &arg)?.max(1)),
            "--warmup" => o.warmup = Duration::from_secs(number(value(&arg)?, &arg)?),
            "--rounds" => o.rounds = number(value(&arg)?, &arg)?.max(1) as usize,
            "--apps" => o.apps = number(value(&arg)?, &arg)?.max(1) as usize,
            "--crash-trials" => o.crash_trials = number(value(&arg)?, &arg)?.min(8) as usize,
            "--servers" => {
                o.only = Some(value(&arg)?.split(',').map(|s| s.trim().into()).collect())
            }
            "--no-proxies" => o.proxies = false,
            "--no-wsgi" => o.wsgi = false,
            "--no-dynamics" => o.dynamics = false,
            "--no-build" => o.build = false,
            "--out" => o.out = Some(PathBuf::from(value(&arg)?)),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown option {other:?}\n\n{USAGE}")),
        }
    }
    Ok(o)
}

/// One wrk run's figures.
struct Sample {
    wrk: wrk::WrkResult,
    rss_kb: Option<u64>,
}

/// Medians over rounds of one server at one connection count.
struct Summary {
    rps: f64,
    rps_min: f64,
    rps_max: f64,
    p50_ms: f64,
    p99_ms: f64,
    rss_mb: Option<f64>,
    errors: u64,
    rounds: usize,
}

fn summarize(samples: &[Sample]) -> Option<Summary> {
    let of = |f: &dyn Fn(&Sample) -> f64| median(&samples.iter().map(f).collect::<Vec<_>>());
    let rss: Vec<f64> = samples
        .iter()
        .filter_map(|s| s.rss_kb)
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
        errors: samples.iter().map(|s| s.wrk.errors()).sum(),
        rounds: samples.len(),
    })
}

#[derive(Default)]
struct Results {
    samples: BTreeMap<(String, usize), Vec<Sample>>,
    failures: Vec<String>,
}

impl Results {
    fn summary(&self, server: &Server, conns: usize) -> Option<Summary> {
        summarize(self.samples.get(&(server.key(), conns))?)
    }
}

/// Starts `server`, warms it up, runs wrk at each connection count, stops it.
fn measure(ctx: &Ctx, server: &Server, opts: &Opts, round: usize, results: &mut Results) {
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
        if let Err(e) = wrk::run(running.port, "/", CONNS[0], opts.warmup) {
            eprintln!("ferry-bench:   warm-up failed: {e}");
        }
    }
    for conns in CONNS {
        if interrupted() {
            return;
        }
        let sampler = (!running.proxy_pids.is_empty())
            .then(|| rss::Sampler::start(running.proxy_pids.clone(), RSS_SAMPLE_EVERY));
        let result = wrk::run(running.port, "/", conns, opts.duration);
        let rss = sampler.map(|s| s.finish().kb());
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

/// Runs `servers` in interleaved rounds.
fn run_rounds(ctx: &Ctx, servers: &[Server], opts: &Opts) -> Results {
    let mut results = Results::default();
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

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("—".into(), |v| format!("{v:.digits$}"))
}

fn results_table(servers: &[Server], results: &Results) -> Table {
    let mut t = Table::new(&[
        "server",
        "conns",
        "req/s",
        "req/s range",
        "p50 ms",
        "p99 ms",
        "peak RSS MB",
        "RSS of",
        "errors",
        "rounds",
    ])
    .left_align(0)
    .left_align(7);
    for server in servers {
        for conns in CONNS {
            let Some(s) = results.summary(server, conns) else {
                continue;
            };
            t.row(vec![
                server.label(),
                conns.to_string(),
                format!("{:.0}", s.rps),
                format!("{:.0}–{:.0}", s.rps_min, s.rps_max),
                format!("{:.2}", s.p50_ms),
                format!("{:.2}", s.p99_ms),
                fmt_opt(s.rss_mb, 1),
                server.rss_note().into(),
                s.errors.to_string(),
                s.rounds.to_string(),
            ]);
        }
    }
    t
}

/// ferry's throughput and p99 relative to each other server.
fn ratio_table(ferries: &[Server], others: &[Server], results: &Results) -> Table {
    let mut headers = vec!["ferry ÷ other".to_string()];
    for c in CONNS {
        headers.push(format!("req/s @{c}"));
        headers.push(format!("p99 @{c}"));
    }
    let refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    let mut t = Table::new(&refs).left_align(0);
    for ferry in ferries {
        for other in others {
            let mut row = vec![format!("{} ÷ {}", ferry.label(), other.label())];
            let mut any = false;
            for c in CONNS {
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
fn target_row(t: &mut Table, target: &str, measured: Option<(String, bool)>) {
    let (text, verdict) = match measured {
        Some((text, met)) => (text, if met { "met" } else { "NOT met" }),
        None => ("not measured".into(), "—"),
    };
    t.row(vec![target.into(), text, verdict.into()]);
}

fn throughput_target(
    t: &mut Table,
    results: &Results,
    ferry: &Server,
    other: &Server,
    factor: f64,
    check_p99: bool,
) {
    for c in CONNS {
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

fn first_line(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(String::from)
}

fn machine_report() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let os = std::fs::read_to_string("/etc/debian_version")
        .map(|v| format!("Debian {}", v.trim()))
        .unwrap_or_else(|_| "unknown OS".into());
    let mut versions = Vec::new();
    for (name, prog, args) in [
        ("wrk", "wrk", &["-v"][..]),
        ("HAProxy", "haproxy", &["-v"][..]),
        ("nginx", "nginx", &["-v"][..]),
        ("Passenger", "passenger", &["--version"][..]),
        ("gunicorn", "gunicorn", &["--version"][..]),
        ("Python", "python3", &["--version"][..]),
    ] {
        if let Some(path) = servers::which(prog) {
            if let Some(line) = first_line(&path.to_string_lossy(), args) {
                versions.push(format!("{name}: `{line}`"));
            }
        }
    }
    format!(
        "- machine: {nproc} CPUs (`nproc`), {cpu}, Linux {kernel}, {os}\n- load average at start: {}\n- {}\n",
        loadavg(),
        versions.join("; ")
    )
}

/// The 1/5/15-minute load averages: other work on the box skews every figure.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Builds ferry and the testapp (release) unless told not to; returns the binaries' dir.
fn binaries(opts: &Opts) -> Result<(PathBuf, PathBuf), String> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ is inside the workspace")
        .to_path_buf();
    if opts.build {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        eprintln!("ferry-bench: cargo build --release -p ferry -p ferry-testapp");
        let status = Command::new(cargo)
            .args(["build", "--release", "-p", "ferry", "-p", "ferry-testapp"])
            .arg("--manifest-path")
            .arg(workspace.join("Cargo.toml"))
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if !status.success() {
            return Err(format!("cargo build failed ({status})"));
        }
    }
    let dir = match std::env::var_os("FERRY_BENCH_BIN_DIR") {
        Some(d) => PathBuf::from(d),
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .parent()
            .ok_or("no executable directory")?
            .to_path_buf(),
    };
    let (ferry, testapp) = (dir.join("ferry"), dir.join("ferry-testapp"));
    for b in [&ferry, &testapp] {
        if !b.is_file() {
            return Err(format!(
                "{} not found: build it (cargo build --release -p ferry -p ferry-testapp) or set FERRY_BENCH_BIN_DIR",
                b.display()
            ));
        }
    }
    Ok((ferry, testapp))
}

/// Which of `wanted` to run: those selected and installed. Says why others are skipped.
fn select(wanted: &[Server], opts: &Opts, report: &mut String) -> Vec<Server> {
    let mut run = Vec::new();
    for s in wanted {
        if let Some(only) = &opts.only {
            if !only.contains(&s.key()) {
                continue;
            }
        }
        match s.missing() {
            Some(why) => {
                eprintln!("ferry-bench: skipping {}: {why}", s.label());
                let _ = writeln!(
                    report,
                    "- skipped {}: {why} (run bench/install.sh)",
                    s.label()
                );
            }
            None => run.push(*s),
        }
    }
    run
}

fn failures_section(results: &Results, report: &mut String) {
    if results.failures.is_empty() {
        return;
    }
    report.push_str("\nFailures:\n");
    for f in &results.failures {
        let _ = writeln!(report, "- {}", f.lines().next().unwrap_or(""));
    }
}

fn proxies_section(ctx: &Ctx, opts: &Opts, report: &mut String) {
    let ferry_c1 = Server::Ferry { concurrency: 1 };
    let ferry_c0 = Server::Ferry { concurrency: 0 };
    let wanted = [
        Server::Direct,
        ferry_c1,
        ferry_c0,
        Server::Haproxy,
        Server::Nginx,
        Server::Passenger,
    ];
    let _ = writeln!(
        report,
        "\n### HTTP proxying: {} testapp processes behind each server\n",
        ctx.apps
    );
    let servers = select(&wanted, opts, report);
    let results = run_rounds(ctx, &servers, opts);
    let _ = writeln!(
        report,
        "\nMedians over {} interleaved rounds of `wrk -t1 -cN -d{}s --latency`; \
         req/s range = slowest–fastest round; errors = socket errors + non-2xx \
         responses, summed over rounds. \
         \"direct\" is wrk against one testapp (wrk has one target, so it cannot spread \
         over {} apps). Passenger lets a generic (--app-start-command) app take unlimited \
         concurrent sessions per process (passenger-status shows 10 per process at -c20), \
         like ferry --concurrency 0 and HAProxy/nginx without a per-server maxconn.\n",
        opts.rounds,
        opts.duration.as_secs(),
        ctx.apps
    );
    report.push_str(&results_table(&servers, &results).render());
    let ferries: Vec<Server> = servers
        .iter()
        .copied()
        .filter(|s| matches!(s, Server::Ferry { .. }))
        .collect();
    let others: Vec<Server> = servers
        .iter()
        .copied()
        .filter(|s| !matches!(s, Server::Ferry { .. }))
        .collect();
    let ratios = ratio_table(&ferries, &others, &results);
    if !ratios.is_empty() {
        report.push_str("\nRatios (req/s: higher is better for ferry; p99: lower is better):\n\n");
        report.push_str(&ratios.render());
    }
    failures_section(&results, report);

    let mut t = Table::new(&["target", "measured", "verdict"])
        .left_align(1)
        .left_align(2);
    throughput_target(&mut t, &results, &ferry_c0, &Server::Haproxy, 1.0, true);
    throughput_target(&mut t, &results, &ferry_c0, &Server::Direct, 0.6, false);
    throughput_target(&mut t, &results, &ferry_c1, &Server::Passenger, 4.0, false);
    throughput_target(&mut t, &results, &ferry_c0, &Server::Passenger, 4.0, false);
    for ferry in [&ferry_c0, &ferry_c1] {
        let rss = results.summary(ferry, 200).and_then(|s| s.rss_mb);
        target_row(
            &mut t,
            &format!("{} peak RSS ≤ 10 MB @200", ferry.label()),
            rss.map(|mb| (format!("{mb:.1} MB"), mb <= 10.0)),
        );
    }
    report.push_str("\nTargets:\n\n");
    report.push_str(&t.render());
}

fn wsgi_section(ctx: &Ctx, opts: &Opts, wsgi_source: &str, report: &mut String) {
    let wanted = [Server::FerryWsgi, Server::PassengerWsgi, Server::Gunicorn];
    let _ = writeln!(
        report,
        "\n### Python WSGI: the same hello-world app ({wsgi_source}), {} processes each\n",
        ctx.apps
    );
    let servers = select(&wanted, opts, report);
    let results = run_rounds(ctx, &servers, opts);
    let _ = writeln!(
        report,
        "\nferry: its WSGI loader (one request at a time per process, keep-alive over a Unix \
         socket); Passenger: its wsgi loader, builtin engine; gunicorn: sync workers (no \
         keep-alive, so wrk reconnects for each request). Medians over {} rounds.\n",
        opts.rounds
    );
    report.push_str(&results_table(&servers, &results).render());
    let others: Vec<Server> = servers
        .iter()
        .copied()
        .filter(|s| *s != Server::FerryWsgi)
        .collect();
    let ratios = ratio_table(&[Server::FerryWsgi], &others, &results);
    if !ratios.is_empty() {
        report.push_str("\nRatios:\n\n");
        report.push_str(&ratios.render());
    }
    failures_section(&results, report);
    let mut t = Table::new(&["target", "measured", "verdict"])
        .left_align(1)
        .left_align(2);
    throughput_target(
        &mut t,
        &results,
        &Server::FerryWsgi,
        &Server::PassengerWsgi,
        1.5,
        false,
    );
    throughput_target(
        &mut t,
        &results,
        &Server::FerryWsgi,
        &Server::Gunicorn,
        1.0,
        false,
    );
    report.push_str("\nTargets:\n\n");
    report.push_str(&t.render());
}

fn dynamics_section(ctx: &Ctx, opts: &Opts, report: &mut String) {
    let _ = writeln!(
        report,
        "\n### Pool dynamics\n\n\
         Burst: testapp with TESTAPP_STARTUP_DELAY_MS={}, `--min-instances 1 --max-pool-size {}`, \
         then `wrk -c{}`; times from the start of wrk. Crash: a pool of {} processes up for more \
         than {} s (ferry replaces a younger one after backoff, as a crash loop), `kill -9` of \
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
    let passenger = Server::Passenger.missing().is_none();
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

fn main() -> ExitCode {
    let opts = match parse_opts() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("ferry-bench: {e}");
            return ExitCode::from(2);
        }
    };
    // Ctrl-C / SIGTERM: stop between steps so the guards stop every server.
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        let handler: extern "C" fn(libc::c_int) = on_signal;
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
        libc::signal(libc::SIGTERM, handler as libc::sighandler_t);
    }
    if servers::which("wrk").is_none() {
        eprintln!("ferry-bench: wrk is not installed: run bench/install.sh first");
        return ExitCode::from(1);
    }
    let (ferry, testapp) = match binaries(&opts) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("ferry-bench: {e}");
            return ExitCode::from(1);
        }
    };
    let tmp = match procs::TempDir::new("ferry-bench") {
        Ok(t) => t,
        Err(e) => {
            eprintln!("ferry-bench: cannot create a temporary directory: {e}");
            return ExitCode::from(1);
        }
    };
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace");
    let example = workspace.join("examples/hello-wsgi/passenger_wsgi.py");
    let (wsgi_file, wsgi_source) = if example.is_file() {
        (example, "examples/hello-wsgi/passenger_wsgi.py")
    } else {
        let f = tmp.path.join("passenger_wsgi.py");
        if let Err(e) = std::fs::write(&f, servers::FALLBACK_WSGI_APP) {
            eprintln!("ferry-bench: {e}");
            return ExitCode::from(1);
        }
        (f, "bench/templates/passenger_wsgi.py")
    };
    let ctx = Ctx::new(tmp.path.clone(), ferry, testapp, opts.apps, wsgi_file);

    let mut report = String::new();
    report.push_str(&machine_report());
    if opts.proxies && !interrupted() {
        proxies_section(&ctx, &opts, &mut report);
    }
    if opts.wsgi && !interrupted() {
        wsgi_section(&ctx, &opts, wsgi_source, &mut report);
    }
    if opts.dynamics && !interrupted() {
        dynamics_section(&ctx, &opts, &mut report);
    }
    let _ = writeln!(report, "\n- load average at the end: {}", loadavg());
    if interrupted() {
        report.push_str("\n(interrupted: the figures above are incomplete)\n");
    }
    println!("{report}");
    if let Some(out) = &opts.out {
        if let Err(e) = std::fs::write(out, &report) {
            eprintln!("ferry-bench: cannot write {}: {e}", out.display());
            return ExitCode::from(1);
        }
    }
    if interrupted() {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    }
}
