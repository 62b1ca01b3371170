//! ferry-bench: ferry against talking to the app directly, HAProxy, nginx, Passenger
//! Standalone, gunicorn, Granian and uWSGI, on loopback, in front of the same backend; plus ferry's pool
//! dynamics (burst growth, crash replacement, a generic async app's pool). Prints Markdown
//! tables.
//!
//! Usage: `bench/install.sh && cargo run --release -p ferry-bench [-- OPTIONS]`
//! (`--help` lists the options). Not part of `cargo test`.
//!
//! How the parts fit: `opts` is the command line; `servers` starts each server under test
//! (`peers` the non-ferry ones from bench/templates/) inside the guards of `procs`, waiting
//! with `net`; `results` measures them in interleaved rounds of `wrk` while `rss` samples
//! their memory; `sections` and `dynamics_report` turn the results (and `dynamics`' pool
//! measurements) into the report's Markdown `table`s, headed by what `machine` says about the
//! machine; `fidelity` runs ferry and replays its access log in `ferry sim`, side by side. `src/bin/slow_readers.rs` is a separate client for the slow-reader benchmark.

mod async_app;
mod dynamics;
mod dynamics_report;
mod fidelity;
mod https;
mod machine;
mod net;
mod opts;
mod peers;
mod procs;
mod results;
mod rss;
mod sections;
mod servers;
mod table;
mod wrk;
mod wsgi_peers;

use clap::Parser;
use opts::Opts;
use sections::WsgiApp;
use servers::Ctx;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};

/// The Flask table's app: one JSON endpoint.
const FLASK_APP: &str = include_str!("../templates/flask_wsgi.py");

/// Set by SIGINT or SIGTERM: the bench stops between steps, so the guards stop every server.
static INTERRUPTED: LazyLock<Arc<AtomicBool>> = LazyLock::new(Arc::default);

fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
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

/// The Flask table, when the bench's Python has Flask (bench/install.sh installs it).
fn flask_section(ctx: &Ctx, opts: &Opts, tmp: &Path, report: &mut String) {
    let has_flask = ctx.python().is_some_and(|python| {
        Command::new(python)
            .args(["-c", "import flask"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if !has_flask {
        let why = format!(
            "Flask is not installed in {} (run bench/install.sh)",
            ctx.venv.display()
        );
        eprintln!("ferry-bench: skipping the Flask table: {why}");
        let _ = writeln!(report, "\n- skipped the Flask table: {why}");
        return;
    }
    let file = tmp.join("flask_wsgi.py");
    let flask_ctx = std::fs::write(&file, FLASK_APP)
        .map_err(|e| e.to_string())
        .and_then(|()| ctx.with_wsgi_file(file, "flask"));
    match flask_ctx {
        Ok(c) => sections::wsgi_section(
            &c,
            opts,
            WsgiApp::Flask,
            "bench/templates/flask_wsgi.py",
            report,
        ),
        Err(e) => {
            eprintln!("ferry-bench: skipping the Flask table: {e}");
            let _ = writeln!(report, "\n- skipped the Flask table: {e}");
        }
    }
}

fn main() -> ExitCode {
    let opts = Opts::parse();
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, Arc::clone(&INTERRUPTED)) {
            eprintln!("ferry-bench: cannot handle signal {signal}: {e}");
            return ExitCode::from(1);
        }
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
    let tmp = match procs::RunDir::new() {
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
        let f = tmp.path().join("passenger_wsgi.py");
        if let Err(e) = std::fs::write(&f, servers::FALLBACK_WSGI_APP) {
            eprintln!("ferry-bench: {e}");
            return ExitCode::from(1);
        }
        (f, "bench/templates/passenger_wsgi.py")
    };
    let ctx = Ctx::new(
        tmp.path().to_path_buf(),
        ferry,
        testapp,
        opts.apps,
        wsgi_file,
        workspace.join("bench/.venv"),
    );

    let mut report = String::new();
    report.push_str(&machine::machine_report(&ctx));
    if opts.proxies && !interrupted() {
        sections::proxies_section(&ctx, &opts, &mut report);
    }
    if opts.https && !interrupted() {
        sections::https_section(&ctx, &opts, &mut report);
    }
    if opts.wsgi && !interrupted() {
        sections::wsgi_section(&ctx, &opts, WsgiApp::Hello, wsgi_source, &mut report);
    }
    if opts.wsgi && opts.flask && !interrupted() {
        flask_section(&ctx, &opts, tmp.path(), &mut report);
    }
    if opts.wsgi && opts.wsgi_wait && !interrupted() {
        sections::wsgi_wait_section(&ctx, &opts, wsgi_source, &mut report);
    }
    if opts.dynamics && !interrupted() {
        dynamics_report::dynamics_section(&ctx, &opts, &mut report);
    }
    if opts.dynamics && opts.async_app && !interrupted() {
        dynamics_report::async_section(&ctx, &mut report);
    }
    if opts.fidelity && !interrupted() {
        fidelity::fidelity_section(&ctx, &mut report);
    }
    let _ = writeln!(
        report,
        "\n- load average at the end: {}",
        machine::loadavg()
    );
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
