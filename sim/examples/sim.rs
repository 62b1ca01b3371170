//! `ferry sim` without building the whole `ferry` binary (handy while profiling the simulator):
//! `cargo run --release -p ferry-sim --example sim -- SCENARIO.toml [--seed N] [--json]
//! [--svg FILE] [--swarm N]`.

use ferry_sim::{run_cli, SimOptions};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut options = SimOptions::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Option<u64> {
            let value = args.next().and_then(|v| v.parse().ok());
            if value.is_none() {
                eprintln!("{name} needs a number");
            }
            value
        };
        match arg.as_str() {
            "--seed" => options.seed = Some(number("--seed").unwrap_or(0)),
            "--swarm" => options.swarm = Some(number("--swarm").unwrap_or(0)),
            "--json" => options.json = true,
            "--svg" => options.svg = args.next().map(Into::into),
            _ => options.scenario = Some(arg.into()),
        }
    }
    let code = run_cli(&options, &mut std::io::stdout(), &mut std::io::stderr());
    ExitCode::from(code)
}
