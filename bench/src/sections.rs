//! The report's proxy and WSGI sections: which servers run, their tables, ratios and targets.

use crate::opts::Opts;
use crate::results::{
    ratio_table, results_table, run_rounds, target_row, throughput_target, Results, PROXY_LOAD,
    WSGI_LOAD, WSGI_WAIT_LOAD,
};
use crate::servers::{Ctx, Server};
use crate::table::Table;
use std::fmt::Write as _;

/// Which of `wanted` to run: those selected and installed. Says why others are skipped.
pub fn select(wanted: &[Server], ctx: &Ctx, opts: &Opts, report: &mut String) -> Vec<Server> {
    let mut run = Vec::new();
    for s in wanted {
        if let Some(only) = &opts.only {
            if !only.contains(&s.key()) {
                continue;
            }
        }
        match s.missing(ctx) {
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

pub fn failures_section(results: &Results, report: &mut String) {
    if results.failures.is_empty() {
        return;
    }
    report.push_str("\nFailures:\n");
    for f in &results.failures {
        let _ = writeln!(report, "- {}", f.lines().next().unwrap_or(""));
    }
}

pub fn proxies_section(ctx: &Ctx, opts: &Opts, report: &mut String) {
    let ferry = |concurrency, access_log| Server::Ferry {
        concurrency,
        access_log,
    };
    let (ferry_c1, ferry_c0, ferry_c0_log) = (ferry(1, false), ferry(0, false), ferry(0, true));
    let wanted = [
        Server::Direct,
        ferry_c1,
        ferry_c0,
        ferry_c0_log,
        Server::Haproxy,
        Server::Nginx,
        Server::Passenger,
    ];
    let _ = writeln!(
        report,
        "\n### HTTP proxying: {} testapp processes behind each server\n",
        ctx.apps
    );
    let servers = select(&wanted, ctx, opts, report);
    let results = run_rounds(ctx, &servers, opts, PROXY_LOAD);
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
    let with_log = ratio_table(&[ferry_c0_log], &[ferry_c0], &results);
    if !with_log.is_empty() {
        report.push_str(
            "
The access log's cost (ferry writing a combined line per request to a file):

",
        );
        report.push_str(&with_log.render());
    }
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
    throughput_target(&mut t, &results, &ferry_c0_log, &ferry_c0, 0.95, false);
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

pub fn https_section(ctx: &Ctx, opts: &Opts, report: &mut String) {
    let wanted = [Server::FerryTls, Server::HaproxyTls];
    let _ = writeln!(
        report,
        "\n### HTTPS: TLS terminated by ferry or by HAProxy, {} testapp processes behind each\n",
        ctx.apps
    );
    let servers = select(&wanted, ctx, opts, report);
    let results = run_rounds(ctx, &servers, opts, PROXY_LOAD);
    let _ = writeln!(
        report,
        "\nwrk over https (TLS 1.3, keep-alive: one handshake per connection), medians over {} \
         interleaved rounds as above. Both present the same kind of certificate (EC P-256, \
         self-signed, made per run with openssl); HAProxy runs one thread (`nbthread 1`), \
         as ferry does.\n",
        opts.rounds
    );
    report.push_str(&results_table(&servers, &results).render());
    let ratios = ratio_table(&[Server::FerryTls], &[Server::HaproxyTls], &results);
    if !ratios.is_empty() {
        report.push_str("\nRatios (req/s: higher is better for ferry; p99: lower is better):\n\n");
        report.push_str(&ratios.render());
    }
    failures_section(&results, report);
}

/// What a WSGI table runs: the hello app or the Flask one.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum WsgiApp {
    Hello,
    Flask,
}

/// ferry at its WSGI default, one request per process at a time.
const FERRY_WSGI: Server = Server::FerryWsgi {
    concurrency: 1,
    threads: 0,
};
/// ferry handing each process its next request while it serves one.
const FERRY_WSGI_2: Server = Server::FerryWsgi {
    concurrency: 2,
    threads: 0,
};
const GRANIAN: Server = Server::Granian { threads: 0 };
const GUNICORN: Server = Server::Gunicorn { threads: 0 };

const WSGI_SERVERS: [Server; 6] = [
    FERRY_WSGI,
    FERRY_WSGI_2,
    GRANIAN,
    Server::Uwsgi { threads: 0 },
    GUNICORN,
    Server::PassengerWsgi,
];

/// Threads per process in the table of requests that wait.
const WAIT_THREADS: u32 = 8;

const WSGI_WAIT_SERVERS: [Server; 5] = [
    FERRY_WSGI,
    Server::FerryWsgi {
        concurrency: WAIT_THREADS,
        threads: WAIT_THREADS,
    },
    Server::Granian {
        threads: WAIT_THREADS,
    },
    Server::Uwsgi {
        threads: WAIT_THREADS,
    },
    Server::Gunicorn {
        threads: WAIT_THREADS,
    },
];

/// Requests that wait (a 20 ms sleep in the app): threads in each process against one
/// request per process.
pub fn wsgi_wait_section(ctx: &Ctx, opts: &Opts, source: &str, report: &mut String) {
    let _ = writeln!(
        report,
        "\n### Python WSGI: requests that wait, `{}` of {source}, {} processes each\n",
        WSGI_WAIT_LOAD.path, ctx.apps
    );
    let servers = select(&WSGI_WAIT_SERVERS, ctx, opts, report);
    let results = run_rounds(ctx, &servers, opts, WSGI_WAIT_LOAD);
    let _ = writeln!(
        report,
        "\nEach request sleeps 20 ms in the app, as a database call would wait. ferry at its \
         default (one request per process) and with `--concurrency-model thread \
         --thread-count {WAIT_THREADS}`; Granian with `--blocking-threads {WAIT_THREADS}`, uWSGI \
         with `--threads {WAIT_THREADS}`, gunicorn with gthread workers of `--threads \
         {WAIT_THREADS}`, otherwise as in the tables above. With {} processes of one request \
         each, at most {} requests are in the app at once: about {} req/s; with \
         {WAIT_THREADS} threads each, {}: about {} req/s. Medians over {} interleaved rounds \
         of `wrk -t{} -c{} -d{}s --latency`.\n",
        ctx.apps,
        ctx.apps,
        ctx.apps * 50,
        ctx.apps * WAIT_THREADS as usize,
        ctx.apps * WAIT_THREADS as usize * 50,
        opts.rounds,
        WSGI_WAIT_LOAD.threads,
        WSGI_WAIT_LOAD.conns[0],
        opts.duration.as_secs()
    );
    wsgi_tables(&servers, &results, report);
}

/// A WSGI section's results table, ferry's ratios to every other server, and any failures.
fn wsgi_tables(servers: &[Server], results: &Results, report: &mut String) {
    report.push_str(&results_table(servers, results).render());
    let (ferries, others): (Vec<Server>, Vec<Server>) = servers
        .iter()
        .copied()
        .partition(|s| matches!(s, Server::FerryWsgi { .. }));
    let ratios = ratio_table(&ferries, &others, results);
    if !ratios.is_empty() {
        report.push_str("\nRatios (req/s: higher is better for ferry; p99: lower is better):\n\n");
        report.push_str(&ratios.render());
    }
    failures_section(results, report);
}

pub fn wsgi_section(ctx: &Ctx, opts: &Opts, app: WsgiApp, source: &str, report: &mut String) {
    let what = match app {
        WsgiApp::Hello => "the same hello-world app",
        WsgiApp::Flask => "the same Flask JSON endpoint",
    };
    let _ = writeln!(
        report,
        "\n### Python WSGI: {what} ({source}), {} processes each\n",
        ctx.apps
    );
    let servers = select(&WSGI_SERVERS, ctx, opts, report);
    let results = run_rounds(ctx, &servers, opts, WSGI_LOAD);
    let _ = writeln!(
        report,
        "\nAll on the bench venv's Python. ferry: its WSGI loader (one request at a time per \
         process, keep-alive over a Unix socket); ferry --concurrency 2: the same, but ferry \
         hands each process its next request while it serves one (it waits in the loader's \
         socket, behind the first); Granian: its Rust HTTP server with the app in \
         each worker; uWSGI: `--http-socket` (no keep-alive), master + workers; gunicorn: sync \
         workers (no keep-alive, so wrk reconnects for each request); Passenger: its wsgi \
         loader, builtin engine. Medians over {} interleaved rounds of `wrk -t{} -c{} -d{}s \
         --latency`.\n",
        opts.rounds,
        WSGI_LOAD.threads,
        WSGI_LOAD.conns[0],
        opts.duration.as_secs()
    );
    wsgi_tables(&servers, &results, report);
    let mut t = Table::new(&["target", "measured", "verdict"])
        .left_align(1)
        .left_align(2);
    for ferry in [&FERRY_WSGI, &FERRY_WSGI_2] {
        match app {
            WsgiApp::Hello => {
                throughput_target(&mut t, &results, ferry, &GRANIAN, 0.8, true);
                throughput_target(&mut t, &results, ferry, &GUNICORN, 3.0, false);
                throughput_target(&mut t, &results, ferry, &Server::PassengerWsgi, 1.5, false);
            }
            WsgiApp::Flask => {
                throughput_target(&mut t, &results, ferry, &GRANIAN, 1.0, true);
            }
        }
    }
    report.push_str("\nTargets:\n\n");
    report.push_str(&t.render());
}
