//! The simulated app's processes, as the simulator (standing in for the OS) sees them.

use ferry_engine::{KillMode, ProcessId};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppState {
    /// Spawn command carried out; not accepting requests yet.
    Spawning,
    /// Reported ready to the engine.
    Ready,
}

/// A process between its spawn and the moment its exit is reported to the engine.
#[derive(Clone, Debug)]
pub struct AppProcess {
    pub id: ProcessId,
    pub state: AppState,
    pub spawned_at_nanos: u64,
    pub ready_at_nanos: Option<u64>,
    /// The strongest kill the engine has sent it.
    pub kill: Option<KillMode>,
    /// Requests the engine gave it that have not ended.
    pub in_flight: u32,
    pub served: u64,
    /// When a session last started or ended (or it became ready), as the engine counts it.
    pub last_use_nanos: u64,
    pub idle_shutdown: bool,
    /// It hangs (`hang_probability`): it answers nothing and only a forced kill ends it.
    pub hung: bool,
}

impl AppProcess {
    pub fn new(id: ProcessId, now_nanos: u64) -> AppProcess {
        AppProcess {
            id,
            state: AppState::Spawning,
            spawned_at_nanos: now_nanos,
            ready_at_nanos: None,
            kill: None,
            in_flight: 0,
            served: 0,
            last_use_nanos: now_nanos,
            idle_shutdown: false,
            hung: false,
        }
    }
}

/// How a process's life ended, for the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// Shut down by the engine after `pool_idle_time` unused.
    IdleShutdown,
    /// Stopped by the engine for another reason (restart, `max_requests`, shutdown, timeout).
    Stopped,
    /// Crashed while serving (`crash_every`).
    Crashed,
    /// Killed by a `[[fault]]`.
    KilledByFault,
    /// Never became ready (spawn failure injection).
    SpawnFailed,
    /// Still alive when the run ended.
    Alive,
}

impl Ending {
    pub fn describe(self) -> &'static str {
        match self {
            Ending::IdleShutdown => "idle shutdown",
            Ending::Stopped => "stopped",
            Ending::Crashed => "crashed",
            Ending::KilledByFault => "killed (fault)",
            Ending::SpawnFailed => "spawn failed",
            Ending::Alive => "alive",
        }
    }
}

/// One process's life, for the report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProcessRecord {
    pub id: u64,
    pub spawned_at_s: f64,
    pub ready_at_s: Option<f64>,
    pub exited_at_s: Option<f64>,
    pub served: u64,
    pub ended: Ending,
}

pub fn seconds(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}

impl ProcessRecord {
    pub fn of(process: &AppProcess, exited_at_nanos: Option<u64>, ended: Ending) -> ProcessRecord {
        ProcessRecord {
            id: process.id.0,
            spawned_at_s: seconds(process.spawned_at_nanos),
            ready_at_s: process.ready_at_nanos.map(seconds),
            exited_at_s: exited_at_nanos.map(seconds),
            served: process.served,
            ended,
        }
    }
}
