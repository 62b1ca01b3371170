//! ferry: an application server that runs a web app as a managed pool of processes.
//!
//! The binary's pieces: the CLI ([`cli`], [`settings`]), the mio event loop ([`server`])
//! that feeds real events to the engine (`ferry-engine`) and carries out its commands, the
//! HTTP layer ([`http`], the `ferry-http` crate, pure) and the proxy exchange built on it
//! ([`exchange`]), app processes ([`children`]), the admin socket ([`admin`]) and the
//! commands that use it ([`control`]).
//!
//! The server owns all state. Connections ([`client`], [`backend`], [`tunnel`], [`admin`])
//! act on their own sockets and return what they want done as [`actions::Action`]s, which
//! the server applies; they never reach into it (see [`actions`] and [`server`]).

pub mod access_log;
pub mod actions;
pub mod admin;
pub mod app;
pub mod app_user;
pub mod backend;
pub mod buffers;
pub mod children;
pub mod cli;
pub mod cli_replay;
pub mod cli_values;
pub mod client;
pub mod clock;
pub mod control;
pub mod daemon;
pub mod decisions;
pub mod exchange;
pub mod instance;
pub mod listeners;
pub mod log;
pub mod metrics;
pub mod observer;
pub mod ops_http;
pub mod passengerfile;
pub mod proc_stats;
pub mod reload;
pub mod resources;
pub mod sd_notify;
pub mod server;
pub mod settings;
pub mod static_files;
pub mod static_serve;
pub mod status_report;
pub mod tls_config;
pub mod transport;
pub mod trusted_proxies;
pub mod tunnel;
pub mod watchdog;

/// The HTTP layer, a crate of its own (`ferry-http`), under the name the driver's modules use.
pub use ferry_http as http;

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
                spawn_time: args.pool.spawn_time(),
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
