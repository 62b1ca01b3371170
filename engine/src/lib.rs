//! # ferry-engine
//!
//! ferry's process pool as a sans-IO, deterministic state machine. Events go in
//! ([`Input`]: a request arrived, a process exited, time passed, …) with the current
//! [`Instant`]; commands come out ([`Command`]: spawn, forward, reject, fail, kill). The engine
//! owns every decision about the pool — routing, queueing, scaling up and down, replacing
//! crashed processes, backing off, restarting, shutting down — and nothing else: the driver
//! (`ferry start`) and the simulator (`ferry sim`) only carry its commands out.
//!
//! The crate is `no_std` (with `alloc`): it cannot read a clock, touch the OS, start a thread
//! or draw a random number, so the same inputs always give the same commands.
//!
//! ```
//! use ferry_engine::{Command, Config, Engine, GroupConfig, GroupId, Input, Instant, RequestId};
//!
//! let config = Config { groups: vec![GroupConfig::default()], ..Config::default() };
//! let mut engine = Engine::new(config, Instant::ZERO).unwrap();
//! let Some(Command::Spawn { process, .. }) = engine.poll_command() else { panic!() };
//! engine.handle(Instant::from_nanos(5), Input::ProcessReady { process });
//! engine.handle(Instant::from_nanos(6), Input::RequestArrived { group: GroupId(0), request: RequestId(1) });
//! assert_eq!(engine.poll_command(), Some(Command::Forward { request: RequestId(1), process }));
//! ```
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod always_restart;
mod config;
mod crash_policy;
mod demand;
mod engine;
mod group;
mod ids;
mod invariants;
mod io;
mod lifecycle;
mod process;
mod requests;
mod scaling;
mod status;
mod time;
mod timers;

pub use config::{Config, ConfigError, GroupConfig, PoolConfig};
pub use engine::Engine;
pub use ids::{GroupId, ProcessId, RequestId};
pub use invariants::Violation;
pub use io::{Command, Input, KillMode, RejectReason};
pub use process::ProcessState;
pub use status::{GroupStatus, PoolStatus, ProcessStatus, Totals};
pub use time::Instant;

/// Ways to break the engine on purpose, so tests can show that each invariant check fails
/// when the engine goes wrong. Only with the `sabotage` feature; never in a real build.
#[cfg(feature = "sabotage")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sabotage {
    /// Spawn whatever is wanted, full pool or not (invariant 1).
    IgnoreMaxPoolSize,
    /// Never spawn for `min_instances`, so a crashed process is not replaced (invariant 2).
    IgnoreMinInstances,
    /// Route to the busiest process with room instead of the least busy (invariant 4).
    RouteToBusiest,
    /// Never shut idle processes down (invariant 6).
    NeverIdleShutdown,
    /// Drop a queued request whose client left without ending it (invariant 3).
    ForgetCancelledRequest,
    /// Queue past `max_request_queue_size` (invariant 5).
    IgnoreQueueLimit,
    /// Shut a process down when its idle timer fires even if it is busy (invariant 5).
    IdleShutdownWhileBusy,
    /// Keep queued requests waiting past the shutdown deadline (invariant 11).
    KeepQueueAfterShutdownDeadline,
    /// Back off after crashes of processes that had become ready, as after start failures,
    /// leaving the pool empty while requests wait (invariant 8).
    BackOffAfterCrash,
    /// Let requests run past `max_request_time` and wait past `max_request_queue_time`
    /// (invariant 5).
    IgnoreRequestDeadlines,
    /// In always-restart mode, serve a request with any process with room (invariant 12).
    RouteFreshToStale,
    /// Never shut down processes beyond what the demand needs (invariant 10).
    NeverShrinkToDemand,
}

#[cfg(feature = "sabotage")]
impl Engine {
    pub fn sabotage(&mut self, sabotage: Sabotage) {
        self.sabotage = Some(sabotage);
    }
}
