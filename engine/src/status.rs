//! A snapshot of the pool for `ferry status` and the simulator's reports.

use crate::engine::Engine;
use crate::ids::{GroupId, ProcessId};
use crate::io::Command;
use crate::process::ProcessState;
use crate::restart::RestartStatus;
use crate::time::Instant;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// Counts since the engine started. Every request that arrived ends exactly once, so
/// `arrived` = `served` + `rejected` + `failed` + `cancelled` + the requests still open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Requests handed to the engine ([`crate::Input::RequestArrived`]).
    pub arrived: u64,
    /// Requests whose process finished answering them.
    pub served: u64,
    /// Requests answered 503 without reaching a process ([`crate::Command::Reject`]).
    pub rejected: u64,
    /// Requests that reached a process and got no proper answer: 502s
    /// ([`crate::Command::Fail`]), 504s ([`crate::Command::TimeOut`]) and broken exchanges
    /// ([`crate::Input::RequestFailed`]).
    pub failed: u64,
    /// Requests whose client left before they ended.
    pub cancelled: u64,
    /// Requests that ran for `max_request_time` (counted in `failed` too).
    pub timed_out: u64,
    /// Spawn commands given.
    pub spawns: u64,
    /// Processes that never became ready (exec failed, exited while starting, start timeout).
    pub spawn_failures: u64,
    /// Processes that had become ready and exited without being asked to.
    pub crashes: u64,
    /// Idle processes shut down: idle for `pool_idle_time`, or beyond what the demand needs.
    pub idle_shutdowns: u64,
    /// Processes found above the memory limit (each replaced once its replacement is ready).
    #[serde(default)]
    pub memory_limit_replacements: u64,
}

/// How many of the latest decisions [`PoolStatus::recent_decisions`] keeps.
pub const RECENT_DECISIONS: usize = 10;

/// A command that started or stopped a process or answered a request in the engine's
/// place (spawn, kill, 503, 502, 504), with the instant it was given; the command says why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// When the engine gave the command.
    pub at: Instant,
    /// The command, with its reason.
    pub command: Command,
}

/// The whole pool at one instant ([`Engine::status`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoolStatus {
    /// The instant the snapshot describes: the latest the engine has seen.
    pub now: Instant,
    /// The pool's cap on live processes.
    pub max_pool_size: usize,
    /// Live processes of every state.
    pub process_count: usize,
    /// Requests waiting over all groups.
    pub queued: usize,
    /// A shutdown has begun ([`crate::Input::Shutdown`]).
    pub shutting_down: bool,
    /// Counts since the engine started.
    pub totals: Totals,
    /// Every group, in [`GroupId`] order.
    pub groups: Vec<GroupStatus>,
    /// The latest decisions, oldest first: at most [`RECENT_DECISIONS`].
    pub recent_decisions: Vec<Decision>,
}

/// One app group in a [`PoolStatus`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupStatus {
    /// The group's id.
    pub id: GroupId,
    /// Its [`crate::GroupConfig::name`].
    pub name: String,
    /// Processes it keeps even when idle.
    pub min_instances: usize,
    /// Requests waiting for a process now.
    pub queue: usize,
    /// The queue's limit (0: unlimited).
    pub max_request_queue_size: usize,
    /// Requests one process takes at once (0: unlimited): [`crate::GroupConfig::concurrency`].
    pub concurrency: u32,
    /// Sessions per process the pool is scaled for: [`crate::GroupConfig::target_concurrency`].
    pub target_concurrency: u32,
    /// How many restarts it has had: processes of an older generation are being replaced.
    pub generation: u32,
    /// No spawn before this instant (after failures).
    pub backoff_until: Option<Instant>,
    /// The latest failure of its processes, until the group is healthy again.
    pub last_spawn_error: Option<String>,
    /// Always-restart mode is on (each request gets a new process).
    pub always_restart: bool,
    /// The latest restart and where it is.
    pub restart: Option<RestartStatus>,
    /// Its live processes, by id.
    pub processes: Vec<ProcessStatus>,
}

/// One live process in a [`GroupStatus`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProcessStatus {
    /// The process's id.
    pub id: ProcessId,
    /// Where it is in its life.
    pub state: ProcessState,
    /// Requests it is serving now (upgraded tunnels included).
    pub sessions: u32,
    /// Of those, the ones whose client has left while the app works on them
    /// ([`crate::Input::ClientAbandoned`]).
    #[serde(default)]
    pub abandoned: u32,
    /// Sessions it has ended, whatever their outcome.
    pub processed: u64,
    /// The group's restart generation when it was spawned.
    pub generation: u32,
    /// Measured above the memory limit: it is being replaced.
    #[serde(default)]
    pub over_memory_limit: bool,
    /// When its spawn command was given.
    pub spawned_at: Instant,
    /// When it became ready, if it has.
    pub ready_at: Option<Instant>,
    /// When a session last started or ended on it (or when it became ready).
    pub last_used: Instant,
    /// When its oldest request in flight started, if it has any.
    pub oldest_request_started_at: Option<Instant>,
}

impl Engine {
    /// Everything `ferry status` shows about the pool at the latest instant seen.
    pub fn status(&self) -> PoolStatus {
        let groups = self
            .groups
            .iter()
            .enumerate()
            .map(|(index, group)| GroupStatus {
                id: GroupId(index as u32),
                name: group.config.name.clone(),
                min_instances: group.config.min_instances,
                queue: group.queue.len(),
                max_request_queue_size: group.config.max_request_queue_size,
                concurrency: group.config.concurrency,
                target_concurrency: group.config.target_concurrency,
                generation: group.generation,
                backoff_until: group.backoff_until.filter(|until| *until > self.now),
                last_spawn_error: group.last_spawn_error.clone(),
                always_restart: group.always_restart,
                restart: group.restart.clone(),
                processes: group
                    .processes
                    .iter()
                    .map(|id| {
                        let p = &self.processes[id];
                        ProcessStatus {
                            id: *id,
                            state: p.state,
                            sessions: p.sessions,
                            abandoned: p
                                .in_flight
                                .iter()
                                .filter(|r| self.requests.get(r).is_some_and(|r| r.abandoned))
                                .count() as u32,
                            processed: p.processed,
                            generation: p.generation,
                            over_memory_limit: p.over_memory_limit,
                            spawned_at: p.spawned_at,
                            ready_at: p.ready_at,
                            last_used: p.last_used,
                            oldest_request_started_at: p
                                .in_flight
                                .iter()
                                .filter_map(|r| self.requests.get(r))
                                .map(|r| r.started_at)
                                .min(),
                        }
                    })
                    .collect(),
            })
            .collect();
        PoolStatus {
            now: self.now,
            max_pool_size: self.pool.max_pool_size,
            process_count: self.processes.len(),
            queued: self.groups.iter().map(|g| g.queue.len()).sum(),
            shutting_down: self.shutdown.is_some(),
            totals: self.totals,
            groups,
            recent_decisions: self.recent_decisions.iter().cloned().collect(),
        }
    }

    /// Counts since the engine started (the same as `status().totals`, without the copying).
    pub fn totals(&self) -> Totals {
        self.totals
    }

    /// Live processes over all groups (every state).
    pub fn process_count(&self) -> usize {
        self.processes.len()
    }

    /// Requests waiting in `group`'s queue; 0 for a group the engine does not have.
    pub fn queue_len(&self, group: GroupId) -> usize {
        self.groups
            .get(group.0 as usize)
            .map_or(0, |group| group.queue.len())
    }

    /// Sessions in progress over all groups.
    pub fn busy_sessions(&self) -> usize {
        self.requests
            .values()
            .filter(|r| r.process.is_some())
            .count()
    }
}
