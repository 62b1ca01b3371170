//! A snapshot of the pool for `ferry status` and the simulator's reports.

use crate::engine::Engine;
use crate::ids::{GroupId, ProcessId};
use crate::process::ProcessState;
use crate::time::Instant;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// Counts since the engine started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub arrived: u64,
    pub served: u64,
    pub rejected: u64,
    pub failed: u64,
    pub cancelled: u64,
    /// Requests that ran for `max_request_time` (counted in `failed` too).
    pub timed_out: u64,
    pub spawns: u64,
    pub spawn_failures: u64,
    pub crashes: u64,
    pub idle_shutdowns: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoolStatus {
    pub now: Instant,
    pub max_pool_size: usize,
    /// Live processes of every state.
    pub process_count: usize,
    /// Requests waiting over all groups.
    pub queued: usize,
    pub shutting_down: bool,
    pub totals: Totals,
    pub groups: Vec<GroupStatus>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupStatus {
    pub id: GroupId,
    pub name: String,
    pub min_instances: usize,
    pub queue: usize,
    pub max_request_queue_size: usize,
    pub generation: u32,
    /// No spawn before this instant (after failures).
    pub backoff_until: Option<Instant>,
    pub last_spawn_error: Option<String>,
    /// Always-restart mode is on (each request gets a new process).
    pub always_restart: bool,
    pub processes: Vec<ProcessStatus>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProcessStatus {
    pub id: ProcessId,
    pub state: ProcessState,
    pub sessions: u32,
    pub processed: u64,
    pub generation: u32,
    pub spawned_at: Instant,
    pub ready_at: Option<Instant>,
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
                generation: group.generation,
                backoff_until: group.backoff_until.filter(|until| *until > self.now),
                last_spawn_error: group.last_spawn_error.clone(),
                always_restart: group.always_restart,
                processes: group
                    .processes
                    .iter()
                    .map(|id| {
                        let p = &self.processes[id];
                        ProcessStatus {
                            id: *id,
                            state: p.state,
                            sessions: p.sessions,
                            processed: p.processed,
                            generation: p.generation,
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
        }
    }

    pub fn totals(&self) -> Totals {
        self.totals
    }

    /// Live processes over all groups (every state).
    pub fn process_count(&self) -> usize {
        self.processes.len()
    }

    /// Requests waiting in `group`'s queue.
    pub fn queue_len(&self, group: GroupId) -> usize {
        self.group(group).queue.len()
    }

    /// Sessions in progress over all groups.
    pub fn busy_sessions(&self) -> usize {
        self.requests
            .values()
            .filter(|r| r.process.is_some())
            .count()
    }
}
