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
//!
//! # How it is built
//!
//! [`Engine`] holds the state and the entry points (`engine.rs`); [`Input`] and [`Command`]
//! are in `io.rs`, the reasons commands carry in `reasons.rs`. Each kind of decision has a
//! module of its own: `requests.rs` (arrival, routing, the queue, deadlines), `lifecycle.rs`
//! (spawns, readiness, exits, restarts, idle shutdown, shutting down), `scaling.rs` with
//! `demand.rs` (when to spawn and when to shrink, and why), `crash_policy.rs` (backoff and
//! the spawn-rate bound), `always_restart.rs`.
//! `invariants.rs` states and checks the invariants; `timers.rs` is one heap of deadlines;
//! `status.rs` takes snapshots for `ferry status`.
//!
//! # Run loop
//!
//! A driver owns one [`Engine`] and runs one loop, as with quinn-proto's and str0m's state
//! machines:
//!
//! 1. drain [`Engine::poll_command`] and carry every command out, in order;
//! 2. wait for the next event — a socket, a child's exit, a signal — but no later than
//!    [`Engine::poll_timeout`];
//! 3. feed what happened to [`Engine::handle`] with the current instant ([`Input::Tick`]
//!    when it was only the time), and go back to 1.
//!
//! The clock is the driver's: it converts its own instants into [`Instant`]s in one place.
//! Waking early is harmless; waking late only delays the timers that were due. Here the OS
//! is a queue of events, the app starts at once and answers every request, and the run ends
//! with a shutdown once the first request is served (ferry's driver does the same with mio,
//! pidfds and signals):
//!
//! ```
//! use ferry_engine::{Command, Config, Engine, GroupConfig, GroupId, Input, Instant, RequestId};
//! use std::collections::VecDeque;
//! use std::time::Duration;
//!
//! /// Plays the OS: what it will report next, in order.
//! struct Os {
//!     epoch: std::time::Instant,
//!     events: VecDeque<Input>,
//! }
//!
//! impl Os {
//!     /// The one place where the real clock becomes the engine's.
//!     fn now(&self) -> Instant {
//!         Instant::from_nanos(self.epoch.elapsed().as_nanos() as u64)
//!     }
//!
//!     /// The next event, or `None` once `timeout` has passed without one (a driver's
//!     /// `mio::Poll::poll`).
//!     fn wait(&mut self, timeout: Option<Duration>) -> Option<Input> {
//!         if let Some(event) = self.events.pop_front() {
//!             return Some(event);
//!         }
//!         std::thread::sleep(timeout.expect("this OS has no more events to wait for"));
//!         None
//!     }
//! }
//!
//! let mut os = Os { epoch: std::time::Instant::now(), events: VecDeque::new() };
//! let config = Config { groups: vec![GroupConfig::default()], ..Config::default() };
//! let mut engine = Engine::new(config, os.now()).expect("a valid configuration");
//! os.events.push_back(Input::RequestArrived { group: GroupId(0), request: RequestId(1) });
//! let mut served = Vec::new();
//! 'run: loop {
//!     while let Some(command) = engine.poll_command() {
//!         match command {
//!             // Fork and exec the app; it reports readiness (here at once).
//!             Command::Spawn { process, .. } => os.events.push_back(Input::ProcessReady { process }),
//!             // Connect to the process and send the request; the app answers it.
//!             Command::Forward { request, .. } => {
//!                 served.push(request);
//!                 os.events.push_back(Input::RequestFinished { request });
//!                 os.events.push_back(Input::Shutdown);
//!             }
//!             // Answer 503, 502 or 504 to the client; the request has ended.
//!             Command::Reject { .. } | Command::Fail { .. } | Command::TimeOut { .. } => {}
//!             // Signal the process; the OS reports its exit.
//!             Command::Kill { process, .. } => os.events.push_back(Input::ProcessExited {
//!                 process,
//!                 description: "exit status 0".into(),
//!             }),
//!             // Tell the operator how a restart went.
//!             Command::RestartReport { outcome, .. } => println!("restart: {outcome:?}"),
//!             Command::ShutdownComplete => break 'run,
//!         }
//!     }
//!     let timeout = engine.poll_timeout().map(|at| at.saturating_since(os.now()));
//!     let input = os.wait(timeout).unwrap_or(Input::Tick);
//!     engine.handle(os.now(), input);
//! }
//! assert_eq!(served, [RequestId(1)]);
//! assert_eq!(engine.process_count(), 0);
//! ```
#![no_std]
#![warn(missing_docs)]
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
mod reasons;
mod requests;
mod restart;
mod scaling;
mod status;
mod time;
mod timers;

pub use config::{Config, ConfigError, GroupConfig, PoolConfig};
pub use engine::Engine;
pub use ids::{GroupId, ProcessId, RequestId};
pub use invariants::Violation;
pub use io::{Command, Input, KillMode};
pub use process::ProcessState;
pub use reasons::{FailReason, KillReason, RejectReason, SpawnReason};
pub use restart::{RestartOutcome, RestartStatus};
pub use status::{Decision, GroupStatus, PoolStatus, ProcessStatus, Totals, RECENT_DECISIONS};
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
    /// At a restart, stop an old process before its replacement is ready (invariant 9).
    RetireBeforeReplacement,
}

#[cfg(feature = "sabotage")]
impl Engine {
    /// Breaks the engine from now on, in the one way given.
    pub fn sabotage(&mut self, sabotage: Sabotage) {
        self.sabotage = Some(sabotage);
    }
}
