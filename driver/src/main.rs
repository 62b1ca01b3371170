//! The `ferry` binary: CLI, mio event loop, HTTP proxy, process spawning, admin socket.

mod admin;
mod app;
mod backend;
mod buffers;
mod children;
mod cli;
mod client;
mod clock;
mod control;
mod exchange;
mod http;
mod instance;
mod log;
mod proc_stats;
mod server;
mod status_report;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
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
