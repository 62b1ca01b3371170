//! One app process as the engine sees it.

use crate::ids::{GroupId, ProcessId, RequestId};
use crate::reasons::KillReason;
use crate::time::Instant;
use alloc::string::String;
use alloc::vec::Vec;
use core::cmp::Reverse;
use serde::{Deserialize, Serialize};

/// Where a process is in its life. Every state counts toward `max_pool_size`: the OS process
/// exists until [`crate::Input::ProcessExited`] removes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessState {
    /// Spawn command sent; not accepting requests yet.
    Spawning,
    /// Accepting requests.
    Ready,
    /// Finishing its sessions, taking no new ones; stopped when they end.
    Draining,
    /// Kill command sent; waiting for the exit.
    Stopping,
}

#[derive(Clone, Debug)]
pub(crate) struct Process {
    pub group: GroupId,
    pub state: ProcessState,
    /// The group's restart generation when it was spawned; older ones are replaced.
    pub generation: u32,
    pub sessions: u32,
    /// Sessions that became tunnels (WebSocket): they hold a connection, not the app's
    /// attention, so routing and scaling do not count them.
    pub upgraded: u32,
    /// Sessions ended, whatever their outcome.
    pub processed: u64,
    pub spawned_at: Instant,
    pub ready_at: Option<Instant>,
    /// When a session last started or ended (or when the process became ready).
    pub last_used: Instant,
    pub in_flight: Vec<RequestId>,
    /// An idle timer for this process is in the timer heap.
    pub idle_timer_armed: bool,
    /// Why a start was given up (start timeout); the exit then counts as a failed spawn.
    pub start_failure: Option<String>,
    /// A forced kill was sent; nothing more to escalate.
    pub force_killed: bool,
    /// It stopped taking connections while ready: its exit is a crash, not a stop we asked
    /// for.
    pub refused: bool,
    /// Why it was taken out of service (draining or stopping): the reason its kill carries.
    pub stop_reason: Option<KillReason>,
    /// Measured above its group's memory limit: replaced like a process of an old
    /// generation (see `crate::restart`).
    pub over_memory_limit: bool,
}

impl Process {
    /// Whether it is to be replaced: it runs the code of a generation before the group's,
    /// or it uses more memory than the limit.
    pub fn outdated(&self, group_generation: u32) -> bool {
        self.generation < group_generation || self.over_memory_limit
    }

    pub fn new(group: GroupId, generation: u32, now: Instant) -> Process {
        Process {
            group,
            state: ProcessState::Spawning,
            generation,
            sessions: 0,
            upgraded: 0,
            processed: 0,
            spawned_at: now,
            ready_at: None,
            last_used: now,
            in_flight: Vec::new(),
            idle_timer_armed: false,
            start_failure: None,
            force_killed: false,
            refused: false,
            stop_reason: None,
            over_memory_limit: false,
        }
    }

    /// Requests given to it so far, for `max_requests`.
    pub fn assigned(&self) -> u64 {
        self.processed + u64::from(self.sessions)
    }

    /// Sessions that count for routing and scaling: all but upgraded ones.
    pub fn load(&self) -> u32 {
        self.sessions - self.upgraded
    }

    /// Whether it can take one more session under `concurrency` (0 = unlimited).
    pub fn has_room(&self, concurrency: u32) -> bool {
        self.state == ProcessState::Ready && (concurrency == 0 || self.sessions < concurrency)
    }

    /// The routing order: fewest sessions (upgraded ones not counted) first, then the most
    /// recently used, then the oldest
    /// id. This concentrates light load and spreads heavy load: while requests rarely
    /// overlap, they keep going to the process used last, so the others go idle and are shut
    /// down after `pool_idle_time`; once every process is busy, each request goes to one with
    /// the fewest sessions, so load spreads evenly. (Ties to the least recently used would
    /// rotate light traffic through every process and keep all of them alive.)
    pub fn route_key(&self, id: ProcessId) -> RouteKey {
        (self.load(), Reverse(self.last_used), id)
    }

    /// The order in which to give processes up: fewest sessions first, then the longest idle.
    pub fn idle_key(&self, id: ProcessId) -> (u32, Instant, ProcessId) {
        (self.sessions, self.last_used, id)
    }
}

pub(crate) type RouteKey = (u32, Reverse<Instant>, ProcessId);
