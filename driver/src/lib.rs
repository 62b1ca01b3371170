//! ferry: an application server that runs a web app as a managed pool of processes.
//!
//! The binary's pieces: the CLI ([`cli`]), the mio event loop ([`server`]) that feeds real
//! events to the engine (`ferry-engine`) and carries out its commands, the HTTP layer
//! ([`http`], pure) and the proxy exchange built on it ([`exchange`]), app processes
//! ([`children`]), the admin socket ([`admin`]) and the commands that use it ([`control`]).
//! The crate is a library too so that fuzz targets and benchmarks can reach the HTTP layer.

pub mod admin;
pub mod app;
pub mod backend;
pub mod buffers;
pub mod children;
pub mod cli;
pub mod client;
pub mod clock;
pub mod control;
pub mod exchange;
pub mod http;
pub mod instance;
pub mod log;
pub mod proc_stats;
pub mod server;
pub mod status_report;
pub mod tunnel;

use clap::Parser;
use std::process::ExitCode;

/// Runs the `ferry` command line.
pub fn main_entry() -> ExitCode {
    let cli = cli::Cli::parse();
    let registry = cli.instance_registry_dir.as_deref();
    match cli.command {
        cli::Command::Start(args) => server::start(args, instance::registry_dir(registry)),
        cli::Command::Status(args) => control::status(&args, registry),
        cli::Command::Stop(args) => control::stop(&args, registry),
        cli::Command::Restart(args) => control::restart(&args, registry),
        cli::Command::Sim(args) => {
            let options = ferry_sim::SimOptions {
                scenario: args.scenario,
                seed: args.seed,
                json: args.json,
                svg: args.svg,
                swarm: args.swarm,
            };
            let code = ferry_sim::run_cli(&options, &mut std::io::stdout(), &mut std::io::stderr());
            ExitCode::from(code)
        }
    }
}
