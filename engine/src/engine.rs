//! The engine: state, the input entry point and the output queue.

use crate::config::{Config, ConfigError, PoolConfig};
use crate::group::Group;
use crate::ids::{GroupId, ProcessId, RequestId};
use crate::io::{Command, Input, KillMode};
use crate::process::{Process, ProcessState};
use crate::reasons::{KillReason, RejectReason};
use crate::requests::SessionEnd;
use crate::status::{Decision, Totals, RECENT_DECISIONS};
use crate::time::Instant;
use crate::timers::{Timer, Timers};
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

/// The process pool as a pure state machine.
///
/// # Contract
/// - **Inputs**: [`Engine::handle`] with the current instant. Instants must not go backwards;
///   an earlier one is treated as the latest seen.
/// - **Outputs**: after every `handle`, drain [`Engine::poll_command`] until it returns `None`
///   and carry the commands out in order; then wake the engine with [`Input::Tick`] at
///   [`Engine::poll_timeout`] (or earlier: early wake-ups are harmless).
/// - **Getters**: [`Engine::status`] for a snapshot; [`Engine::check_invariants`] for tests.
///
/// Nothing here reads a clock, does I/O, spawns threads or draws random numbers: the same
/// inputs at the same instants give the same commands.
#[derive(Clone, Debug)]
pub struct Engine {
    pub(crate) pool: PoolConfig,
    pub(crate) groups: Vec<Group>,
    pub(crate) processes: BTreeMap<ProcessId, Process>,
    /// Requests not yet ended: `None` while queued, else the process serving it.
    pub(crate) requests: BTreeMap<RequestId, Request>,
    pub(crate) timers: Timers,
    pub(crate) commands: VecDeque<Command>,
    pub(crate) now: Instant,
    pub(crate) next_process_id: u64,
    pub(crate) shutdown: Option<ShutdownState>,
    pub(crate) totals: Totals,
    /// The latest decisions with a reason, oldest first, at most `RECENT_DECISIONS`.
    pub(crate) recent_decisions: VecDeque<Decision>,
    /// Groups whose spawning needs a look after this input: a flag per group, and the same
    /// groups as a list so that an input touching one group costs O(1), not O(groups).
    pub(crate) dirty: Vec<bool>,
    pub(crate) dirty_groups: Vec<GroupId>,
    /// Every group's spawning needs a look: a slot in the pool was freed, or a process went
    /// idle while some group waits for room (its capacity can be taken).
    pub(crate) all_dirty: bool,
    /// Some group wanted a spawn that the full pool did not allow, when last looked at.
    pub(crate) pool_waiting: bool,
    /// A routing or idle-kill decision that broke an invariant, kept for `check_invariants`.
    pub(crate) decision_violation: Option<crate::invariants::Violation>,
    #[cfg(feature = "sabotage")]
    pub(crate) sabotage: Option<crate::Sabotage>,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Request {
    pub group: GroupId,
    pub process: Option<ProcessId>,
    /// When it arrived, or went back to the queue after a refusal: `max_request_queue_time`
    /// counts from here.
    pub queued_at: Instant,
    /// When its current session started: `max_request_time` counts from here.
    pub started_at: Instant,
    /// Arrived in always-restart mode: only a process with this id or a later one (spawned
    /// after the arrival) may serve it.
    pub fresh_from: Option<ProcessId>,
    /// The session became a tunnel (WebSocket): it no longer counts toward scaling.
    pub upgraded: bool,
    /// Its client left while the app worked on it ([`Input::ClientAbandoned`]): the session
    /// goes on until the app is done, and its end counts as cancelled.
    pub abandoned: bool,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct ShutdownState {
    pub complete_sent: bool,
    /// When waiting requests are rejected and every process is asked to stop.
    pub deadline: Instant,
}

impl Engine {
    /// Builds the pool and asks for its `min_instances` processes. Groups get ids
    /// `GroupId(0)`, `GroupId(1)`, … in the order of `config.groups`.
    pub fn new(config: Config, now: Instant) -> Result<Engine, ConfigError> {
        config.validate()?;
        let group_count = config.groups.len();
        let mut engine = Engine {
            pool: config.pool,
            groups: config
                .groups
                .into_iter()
                .map(|group| Group::new(group, now))
                .collect(),
            processes: BTreeMap::new(),
            requests: BTreeMap::new(),
            timers: Timers::default(),
            commands: VecDeque::new(),
            now,
            next_process_id: 1,
            shutdown: None,
            totals: Totals::default(),
            recent_decisions: VecDeque::with_capacity(RECENT_DECISIONS),
            dirty: alloc::vec![false; group_count],
            dirty_groups: Vec::with_capacity(group_count),
            all_dirty: true,
            pool_waiting: false,
            decision_violation: None,
            #[cfg(feature = "sabotage")]
            sabotage: None,
        };
        engine.maintain();
        Ok(engine)
    }

    /// Feeds one input at `now`. Timers due at `now` fire first.
    pub fn handle(&mut self, now: Instant, input: Input) {
        if now > self.now {
            self.now = now;
        }
        while let Some(timer) = self.timers.pop_due(self.now) {
            self.fire(timer);
        }
        match input {
            Input::RequestArrived { group, request } => self.request_arrived(group, request),
            Input::RequestFinished { request } => self.end_session(request, SessionEnd::Served),
            Input::RequestFailed { request } => self.end_session(request, SessionEnd::Failed),
            Input::SessionUpgraded { request } => self.session_upgraded(request),
            Input::ClientGone { request } => self.client_gone(request),
            Input::ClientAbandoned { request } => self.client_abandoned(request),
            Input::ProcessRefused { request } => self.process_refused(request),
            Input::ForwardFailed { request, error } => self.forward_failed(request, error),
            Input::ProcessReady { process } => self.process_ready(process),
            Input::SpawnFailed { process, error } => self.spawn_failed(process, error),
            Input::ProcessExited {
                process,
                description,
            } => self.process_exited(process, &description),
            Input::MemoryMeasured { process, bytes } => self.memory_measured(process, bytes),
            Input::Tick => {}
            Input::RestartGroup { group } if self.has_group(group) => self.restart_group(group),
            Input::DetachProcess { process } => self.detach_process(process),
            Input::SetAlwaysRestart { group, on } if self.has_group(group) => {
                self.set_always_restart(group, on)
            }
            Input::RestartGroup { .. } | Input::SetAlwaysRestart { .. } => {}
            Input::Shutdown => self.begin_shutdown(),
        }
        self.maintain();
        #[cfg(debug_assertions)]
        if !self.sabotaged() {
            if let Err(violation) = self.check_invariants() {
                panic!("ferry engine invariant broken: {violation}");
            }
        }
    }

    /// Whether a test broke the engine on purpose: its violations are then for the test to find.
    #[cfg(debug_assertions)]
    fn sabotaged(&self) -> bool {
        #[cfg(feature = "sabotage")]
        return self.sabotage.is_some();
        #[cfg(not(feature = "sabotage"))]
        return false;
    }

    /// The next command to carry out, in order.
    #[must_use]
    pub fn poll_command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    /// When the engine must next be woken with [`Input::Tick`], if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// The latest instant the engine has seen.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The pool settings it was built with (the groups' are in [`Engine::status`]).
    pub fn config(&self) -> &PoolConfig {
        &self.pool
    }

    /// The group a process belongs to, while it is live.
    pub fn process_group(&self, process: ProcessId) -> Option<GroupId> {
        self.processes.get(&process).map(|p| p.group)
    }

    /// Whether `id` is one of the groups `new` created: the only ids `group` may be given.
    pub(crate) fn has_group(&self, id: GroupId) -> bool {
        (id.0 as usize) < self.groups.len()
    }

    pub(crate) fn group(&self, id: GroupId) -> &Group {
        &self.groups[id.0 as usize]
    }

    pub(crate) fn group_mut(&mut self, id: GroupId) -> &mut Group {
        &mut self.groups[id.0 as usize]
    }

    pub(crate) fn mark_dirty(&mut self, group: GroupId) {
        let flag = &mut self.dirty[group.0 as usize];
        if !*flag {
            *flag = true;
            self.dirty_groups.push(group);
        }
    }

    /// A process may have become idle: while a group waits for room in a full pool, its
    /// capacity may be what that group needs, and nothing else would make the group look again.
    /// Only a process above its group's `min_instances` can be taken, and only that one is
    /// worth a look at every group (a pool full of minimums would otherwise pay for a look at
    /// every request's end).
    pub(crate) fn note_maybe_idle(&mut self, id: ProcessId) {
        if !self.pool_waiting {
            return;
        }
        let Some(p) = self.processes.get(&id) else {
            return;
        };
        let group = &self.groups[p.group.0 as usize];
        let takeable = group.ready > group.config.min_instances
            // An old process is no use to the fresh requests its group waits with.
            || group.fresh_seen && self.stale_for_fresh(id);
        if p.state == ProcessState::Ready && p.sessions == 0 && takeable {
            self.all_dirty = true;
        }
    }

    pub(crate) fn push(&mut self, command: Command) {
        let decided = match command {
            Command::Spawn { .. }
            | Command::Kill { .. }
            | Command::Reject { .. }
            | Command::Fail { .. }
            | Command::TimeOut { .. }
            | Command::RestartReport { .. } => true,
            Command::Forward { .. } | Command::ShutdownComplete => false,
        };
        if decided {
            if self.recent_decisions.len() == RECENT_DECISIONS {
                self.recent_decisions.pop_front();
            }
            self.recent_decisions.push_back(Decision {
                at: self.now,
                command: command.clone(),
            });
        }
        self.commands.push_back(command);
    }

    /// Changes a process while keeping its group's routing set and state counters in step:
    /// every mutation of a process that can change its state, sessions or last use goes
    /// through here. Returns the process as changed (saving callers a second lookup).
    pub(crate) fn update_process(
        &mut self,
        id: ProcessId,
        change: impl FnOnce(&mut Process),
    ) -> Option<&Process> {
        let now = self.now;
        let process = self.processes.get_mut(&id)?;
        let group = &mut self.groups[process.group.0 as usize];
        let concurrency = group.config.concurrency;
        let old_key = process.has_room(concurrency).then(|| process.route_key(id));
        let old_state = process.state;
        let old_load = process.load();
        let was_outdated = process.outdated(group.generation);
        change(process);
        group.load_sessions = group.load_sessions - old_load + process.load();
        if let Some(key) = old_key {
            group.routable.remove(&key);
        }
        if process.has_room(concurrency) {
            group.routable.insert(process.route_key(id));
        }
        if old_state != process.state {
            *group.count_mut(old_state) -= 1;
            *group.count_mut(process.state) += 1;
            if process.state == ProcessState::Ready && group.ready == 1 {
                group.ready_since = now;
            }
            if was_outdated && old_state == ProcessState::Ready {
                group.outdated_ready -= 1;
            }
        }
        Some(process)
    }

    pub(crate) fn remove_process(&mut self, id: ProcessId) -> Option<Process> {
        let process = self.processes.remove(&id)?;
        let group = &mut self.groups[process.group.0 as usize];
        if process.has_room(group.config.concurrency) {
            group.routable.remove(&process.route_key(id));
        }
        *group.count_mut(process.state) -= 1;
        group.load_sessions -= process.load();
        if process.state == ProcessState::Ready && process.outdated(group.generation) {
            group.outdated_ready -= 1;
        }
        group.processes.remove(&id);
        self.all_dirty = true;
        let group_id = process.group;
        self.mark_dirty(group_id);
        Some(process)
    }

    /// Sends a kill and waits for the exit; escalates to a forced kill after `kill_timeout`.
    /// A process already stopping keeps the reason it was stopped for.
    pub(crate) fn stop_process(&mut self, id: ProcessId, mode: KillMode, reason: KillReason) {
        let Some(process) = self.processes.get(&id) else {
            return;
        };
        if process.force_killed
            || (process.state == ProcessState::Stopping && mode == KillMode::Graceful)
        {
            return;
        }
        let reason = match process.state {
            ProcessState::Stopping => process.stop_reason.unwrap_or(reason),
            _ => reason,
        };
        self.update_process(id, |p| {
            p.state = ProcessState::Stopping;
            p.force_killed |= mode == KillMode::Force;
            p.stop_reason = Some(reason);
        });
        self.push(Command::Kill {
            process: id,
            mode,
            reason,
        });
        if mode == KillMode::Graceful {
            self.timers
                .set(self.now + self.pool.kill_timeout, Timer::KillTimeout(id));
        }
    }

    /// Takes a ready process out of rotation for `reason`: it stops once its sessions end
    /// ([`Engine::stop_drained`]).
    pub(crate) fn drain(&mut self, id: ProcessId, reason: KillReason) {
        self.update_process(id, |p| {
            p.state = ProcessState::Draining;
            p.stop_reason = Some(reason);
        });
    }

    /// Stops a draining process whose sessions have ended, for the reason it was drained.
    pub(crate) fn stop_drained(&mut self, id: ProcessId) {
        let Some(process) = self.processes.get(&id) else {
            return;
        };
        // Every way into draining goes through `drain`, which sets the reason.
        debug_assert!(
            process.stop_reason.is_some(),
            "{id} drained without a reason"
        );
        let reason = process.stop_reason.unwrap_or(KillReason::Detached);
        self.stop_process(id, KillMode::Graceful, reason);
    }

    /// Ends a request without a process session: answered 503 by the caller.
    pub(crate) fn reject(&mut self, request: RequestId, reason: RejectReason) {
        self.totals.rejected += 1;
        self.push(Command::Reject { request, reason });
    }
}
