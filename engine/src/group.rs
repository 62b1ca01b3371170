//! One app group: its settings, queue, routing set and counters.

use crate::config::GroupConfig;
use crate::demand::Demand;
use crate::ids::{ProcessId, RequestId};
use crate::process::{ProcessState, RouteKey};
use crate::restart::RestartStatus;
use crate::time::Instant;
use alloc::collections::{BTreeSet, VecDeque};
use alloc::string::String;

#[derive(Clone, Debug)]
pub(crate) struct Group {
    pub config: GroupConfig,
    /// Requests waiting for a session, oldest first.
    pub queue: VecDeque<RequestId>,
    /// Ready processes with room for another session, in routing order. Kept up to date so
    /// that routing costs O(log n) in the group's size, not O(n).
    pub routable: BTreeSet<RouteKey>,
    /// All live processes of the group.
    pub processes: BTreeSet<ProcessId>,
    pub spawning: usize,
    pub ready: usize,
    /// When the group last got a ready process after having none: queued requests wait for
    /// a spawn until then, whatever the demand estimate.
    pub ready_since: Instant,
    pub draining: usize,
    pub stopping: usize,
    /// Ready processes of an older generation than `generation`, still serving until replaced.
    pub outdated_ready: usize,
    /// Bumped by a restart: processes of an older generation are replaced.
    pub generation: u32,
    /// The latest restart, if there was one (see `crate::restart`).
    pub restart: Option<RestartStatus>,
    /// New processes ready during a restart not yet matched by an outdated one leaving.
    pub handovers: usize,
    /// Spawns owed to retired or outdated processes, so capacity is replaced, not lost.
    pub replacements_owed: usize,
    /// Processes that failed while serving (crashed, refused a connection, timed out) and
    /// whose replacement has not been spawned: the next spawns for `min_instances` or the
    /// demand are their replacements. Cleared when the group needs no such spawn.
    pub failed_unreplaced: usize,
    /// Consecutive start failures since a process last became ready.
    pub failure_streak: u32,
    /// No spawn before this instant: the backoff after start failures.
    pub backoff_until: Option<Instant>,
    /// The latest failure, until the group is healthy again (see `crate::crash_policy`).
    pub last_spawn_error: Option<String>,
    /// The latest start failed (no process became ready since): while nothing serves,
    /// waiting requests would likely wait for nothing.
    pub starts_failing: bool,
    /// When the latest failure happened.
    pub last_failure_at: Option<Instant>,
    /// The spawn-rate bound on replacing crashed processes: the virtual instant the next
    /// crash replacement is scheduled at (see `crate::crash_policy`).
    pub crash_schedule: Instant,
    /// No spawn before this instant: crashes came faster than the spawn-rate bound.
    pub crash_pause_until: Option<Instant>,
    /// Always-restart mode (see `always_restart.rs`).
    pub always_restart: bool,
    /// The mode has been on: waiting requests may need fresh processes.
    pub fresh_seen: bool,
    /// What the traffic asks of the group, measured.
    pub demand: Demand,
    /// Sessions of the group's processes that count toward scaling (not upgraded ones).
    pub load_sessions: u32,
    /// The earliest demand check in the timer heap, if one is.
    pub demand_check_at: Option<Instant>,
}

impl Group {
    pub fn new(config: GroupConfig, now: Instant) -> Group {
        Group {
            config,
            queue: VecDeque::new(),
            routable: BTreeSet::new(),
            processes: BTreeSet::new(),
            spawning: 0,
            ready: 0,
            ready_since: now,
            draining: 0,
            stopping: 0,
            outdated_ready: 0,
            generation: 0,
            restart: None,
            handovers: 0,
            replacements_owed: 0,
            failed_unreplaced: 0,
            failure_streak: 0,
            backoff_until: None,
            last_spawn_error: None,
            starts_failing: false,
            last_failure_at: None,
            crash_schedule: Instant::ZERO,
            crash_pause_until: None,
            always_restart: false,
            fresh_seen: false,
            demand: Demand::new(now),
            load_sessions: 0,
            demand_check_at: None,
        }
    }

    pub fn live(&self) -> usize {
        self.spawning + self.ready + self.draining + self.stopping
    }

    /// Processes that serve now or soon: the ones that count toward `min_instances`.
    pub fn active(&self) -> usize {
        self.spawning + self.ready
    }

    pub fn count_mut(&mut self, state: ProcessState) -> &mut usize {
        match state {
            ProcessState::Spawning => &mut self.spawning,
            ProcessState::Ready => &mut self.ready,
            ProcessState::Draining => &mut self.draining,
            ProcessState::Stopping => &mut self.stopping,
        }
    }

    /// Spawning is paused: after start failures, or by the spawn-rate bound on crashes.
    pub fn backing_off(&self, now: Instant) -> bool {
        self.backoff_until.is_some_and(|until| now < until) || self.crash_paused(now)
    }

    /// Spawning waits for the spawn-rate bound on replacing crashed processes.
    pub fn crash_paused(&self, now: Instant) -> bool {
        self.crash_pause_until.is_some_and(|until| now < until)
    }
}
