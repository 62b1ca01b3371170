//! Starting the Python WSGI servers: ferry with its loader, and those it is measured against
//! (gunicorn, Granian and uWSGI, each from the bench's virtual environment, bench/install.sh),
//! each with `ctx.apps` worker processes serving the startup file from its own directory.

use crate::net::{free_port, wait_http_ok};
use crate::procs::{self, Guard};
use crate::servers::{ferry_wsgi, log_file, with_log, wsgi_app_dir, Ctx, Running, START_TIMEOUT};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Starts `program` from the venv with `args` (after `{PORT}` and `{APP}` are filled in),
/// waits until it answers 200 and has `ctx.apps` worker processes below it.
fn run_python_server(
    ctx: &Ctx,
    dir: &Path,
    program: &str,
    args: &[&str],
) -> Result<Running, String> {
    let app = wsgi_app_dir(ctx, dir)?;
    let port = free_port()?;
    let bin = ctx
        .venv_bin(program)
        .ok_or_else(|| format!("{program} is not in {}", ctx.venv.display()))?;
    let log = dir.join(format!("{program}.log"));
    let (out, err) = log_file(&log)?;
    let (port_s, app_s) = (port.to_string(), app.to_string_lossy().into_owned());
    let mut cmd = Command::new(bin);
    cmd.args(
        args.iter()
            .map(|a| a.replace("{PORT}", &port_s).replace("{APP}", &app_s)),
    )
    .current_dir(&app)
    .stdin(Stdio::null())
    .stdout(out)
    .stderr(err);
    let mut guard = Guard::spawn(program, &mut cmd)?;
    with_log(wait_http_ok(port, &mut guard, START_TIMEOUT), &log)?;
    let deadline = Instant::now() + START_TIMEOUT;
    while procs::descendants(&[guard.pid()]).len() < ctx.apps {
        if Instant::now() >= deadline {
            return with_log(
                Err(format!("{program} did not start {} workers", ctx.apps)),
                &log,
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
    let pid = guard.pid();
    let mut running = Running::new(port, dir, vec![guard]);
    running.proxy_pids = vec![pid];
    Ok(running)
}

/// gunicorn: sync workers (its default), or gthread workers of `threads` threads.
pub(crate) fn start_gunicorn(ctx: &Ctx, dir: &Path, threads: u32) -> Result<Running, String> {
    let (workers, threads) = (ctx.apps.to_string(), threads.max(1).to_string());
    let class = if threads == "1" { "sync" } else { "gthread" };
    run_python_server(
        ctx,
        dir,
        "gunicorn",
        &[
            "--workers",
            &workers,
            "--worker-class",
            class,
            "--threads",
            &threads,
            "--bind",
            "127.0.0.1:{PORT}",
            "--chdir",
            "{APP}",
            "passenger_wsgi:application",
        ],
    )
}

/// Granian: Rust HTTP server with the app in each worker process (its defaults: one
/// runtime thread, one blocking thread per worker for WSGI; or `threads` blocking threads).
pub(crate) fn start_granian(ctx: &Ctx, dir: &Path, threads: u32) -> Result<Running, String> {
    let (workers, threads) = (ctx.apps.to_string(), threads.max(1).to_string());
    run_python_server(
        ctx,
        dir,
        "granian",
        &[
            "--blocking-threads",
            &threads,
            "--interface",
            "wsgi",
            "--host",
            "127.0.0.1",
            "--port",
            "{PORT}",
            "--workers",
            &workers,
            "--working-dir",
            "{APP}",
            "--no-ws",
            "passenger_wsgi:application",
        ],
    )
}

/// uWSGI (pyuwsgi), a master and `ctx.apps` workers speaking HTTP to wrk directly with
/// `--http-socket`: a response per connection, announced with `Connection: close` (else wrk
/// counts every close as a read error). `--http11-socket` keeps connections alive,
/// but a worker then serves one connection until it closes: 2 of wrk's 50 connections are
/// served and the rest wait, which wrk's figures do not show.
/// With `threads` > 0, each worker runs that many threads (`--threads`).
pub(crate) fn start_uwsgi(ctx: &Ctx, dir: &Path, threads: u32) -> Result<Running, String> {
    let (workers, threads) = (ctx.apps.to_string(), threads.to_string());
    let mut args = vec![
        "--http-socket",
        "127.0.0.1:{PORT}",
        "--master",
        "--processes",
        &workers,
        "--chdir",
        "{APP}",
        "--wsgi-file",
        "passenger_wsgi.py",
        "--callable",
        "application",
        "--need-app",
        "--add-header",
        "Connection: close",
        "--disable-logging",
        "--die-on-term",
    ];
    if threads != "0" {
        args.extend(["--threads", &threads]);
    }
    run_python_server(ctx, dir, "uwsgi", &args)
}

/// ferry's WSGI loader: `--concurrency N`, or the thread model when `threads` > 0.
pub(crate) fn start_ferry_wsgi(
    ctx: &Ctx,
    dir: &Path,
    concurrency: u32,
    threads: u32,
) -> Result<Running, String> {
    let (concurrency, threads) = (concurrency.to_string(), threads.to_string());
    let flags: &[&str] = match threads.as_str() {
        "0" => &["--concurrency", &concurrency],
        _ => &["--concurrency-model", "thread", "--thread-count", &threads],
    };
    ferry_wsgi(ctx, dir, ctx.apps, ctx.apps, flags)
}
