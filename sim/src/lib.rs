//! ferry-sim: the pool engine on a virtual clock.

use std::io::Write;
use std::path::PathBuf;

/// What `ferry sim` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct SimOptions {
    pub scenario: Option<PathBuf>,
    pub seed: Option<u64>,
    pub json: bool,
    pub svg: Option<PathBuf>,
    pub swarm: Option<u64>,
}

/// Runs `ferry sim`; returns the process exit code.
pub fn run_cli(_options: &SimOptions, _out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let _ = writeln!(err, "ferry sim: not implemented yet");
    2
}
