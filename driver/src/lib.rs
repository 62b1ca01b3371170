//! ferry: an application server that runs a web app as a managed pool of processes. This
//! crate is the `ferry` binary; it is a library only so that the end-to-end tests and the
//! benchmarks can use [`instance`] (finding running servers) and [`proc_stats`] (the one
//! `/proc/PID/stat` reader). Everything else is private.
//!
//! How the parts fit:
//!
//! - The command line: `cli` (clap), `settings` (flags, then `PASSENGER_*`, then
//!   `passengerfile`), `cli_values`, `cli_replay` (`ferry sim --replay`, `ferry plan`, run by
//!   the `ferry-sim` crate). `control` is `ferry status`/`stop`/`restart`, talking to a server's
//!   admin socket found through `instance`; `status_report` is what that socket answers.
//! - `ferry start` is `server`: a mio event loop that owns all state, turns sockets, pidfds,
//!   signals and timers into inputs for the pool engine (`ferry-engine`, which makes every pool
//!   decision) and carries out its commands. Real time becomes engine time in `clock`.
//! - Connections: `client` (requests in, responses out; `static_serve` and `static_files`
//!   answer files), `backend` (the app process's side), `tunnel` (upgraded connections),
//!   `admin`. They act on their own sockets and buffers and return what they want done as
//!   actions (`actions`), which the server applies; they never reach into it. The HTTP rules
//!   are the `ferry-http` crate (`http` here); `exchange` is one proxied request/response on
//!   top of it, `buffers` the non-blocking output buffers that spill to disk.
//! - App processes: `app` (what to run), `wsgi_loader` (the Python loader's files, written
//!   out at start), `children` (spawning, pidfds, stopping),
//!   `app_user` (`--user`), `reload` (`tmp/restart.txt`, `--reload`), `watchdog` (stops what
//!   they leave if ferry dies), `resources` (running out of descriptors or memory).
//! - Telling the world: `log` (and `decisions`, the engine's decisions with their reasons),
//!   `observer` (the access log in `access_log`, the metrics in
//!   `metrics` served by `ops_http`, systemd's `sd_notify`), `daemon` (`--daemonize`,
//!   `--pid-file`).
//! - HTTPS and proxies in front: `listeners` (`--port`, `--ssl-port`), `tls_config` (the
//!   certificate and key), `transport` (a client's plain or TLS stream), `trusted_proxies`
//!   (`--forwarded-allow-ips`).

mod access_log;
mod actions;
mod admin;
mod app;
mod app_user;
mod backend;
mod buffers;
mod children;
mod cli;
mod cli_replay;
mod cli_values;
mod client;
mod clock;
mod control;
mod daemon;
mod decision_limiter;
mod decisions;
mod exchange;
pub mod instance;
mod listeners;
mod log;
mod memory_watch;
mod metrics;
mod observer;
mod ops_http;
mod passengerfile;
pub mod proc_stats;
mod reload;
mod resources;
mod sd_notify;
mod server;
mod settings;
mod static_files;
mod static_serve;
mod status_report;
mod tls_config;
mod transport;
mod trusted_proxies;
mod tunnel;
mod watchdog;
mod wsgi_loader;

/// The HTTP layer, a crate of its own (`ferry-http`), under the name the driver's modules use.
use ferry_http as http;

use clap::{CommandFactory, FromArgMatches};
use std::process::ExitCode;

/// Runs the `ferry` command line.
pub fn main_entry() -> ExitCode {
    if watchdog::is_watchdog() {
        return watchdog::run();
    }
    let matches = cli::Cli::command().get_matches();
    let cli = cli::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let registry = cli.instance_registry_dir.as_deref();
    match cli.command {
        cli::Command::Start(args) => {
            let start_matches = matches
                .subcommand_matches("start")
                .expect("start was given");
            let env = |name: &str| std::env::var(name).ok();
            match settings::resolve(*args, start_matches, &env) {
                Ok(resolved) => {
                    for warning in &resolved.warnings {
                        eprintln!("ferry: warning: {warning}");
                    }
                    server::start(resolved.args, instance::registry_dir(registry))
                }
                Err(message) => {
                    eprintln!("ferry: {message}");
                    ExitCode::from(2)
                }
            }
        }
        cli::Command::Status(args) => control::status(&args, registry),
        cli::Command::Stop(args) => control::stop(&args, registry),
        cli::Command::Restart(args) => control::restart(&args, registry),
        cli::Command::Sim(args) => {
            let args = *args;
            if args.replay.is_none() && args.pool.given() {
                eprintln!(
                    "ferry sim: pool flags (--max-pool-size, --spawn-time, …) go with --replay LOG; a scenario sets its pool in its [pool] table"
                );
                return ExitCode::from(2);
            }
            let replay = args.replay.map(|log| ferry_sim::ReplayOptions {
                log,
                pool: args.pool.pool(),
                app: args.pool.app(),
            });
            let options = ferry_sim::SimOptions {
                scenario: args.scenario,
                seed: args.seed,
                json: args.json,
                svg: args.svg,
                swarm: args.swarm,
                replay,
            };
            let code = ferry_sim::run_cli(&options, &mut std::io::stdout(), &mut std::io::stderr());
            ExitCode::from(code)
        }
        cli::Command::Plan(args) => {
            let code = ferry_sim::run_plan(
                &args.log,
                &args.options(),
                args.svg.as_deref(),
                &mut std::io::stdout(),
                &mut std::io::stderr(),
            );
            ExitCode::from(code)
        }
    }
}
