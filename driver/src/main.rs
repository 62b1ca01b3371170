//! The `ferry` binary: CLI, mio event loop, HTTP proxy, process spawning, admin socket.
#![allow(dead_code)]

mod cli;
mod http;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.command {
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
        _ => {
            eprintln!("ferry: not implemented yet");
            ExitCode::from(2)
        }
    }
}
