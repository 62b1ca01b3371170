//! Processes: spawn, readiness, exits, failures and their backoff, detaching, idleness and
//! shutdown (restarts are in `restart.rs`).

use crate::engine::{Engine, ShutdownState};
use crate::ids::{GroupId, ProcessId};
use crate::io::{Command, KillMode};
use crate::process::{Process, ProcessState};
use crate::reasons::{FailReason, KillReason, RejectReason, SpawnReason};
use crate::timers::Timer;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

impl Engine {
    pub(crate) fn spawn(&mut self, group_id: GroupId, reason: SpawnReason) {
        let id = ProcessId(self.next_process_id);
        self.next_process_id += 1;
        let now = self.now;
        let group = self.group_mut(group_id);
        let start_timeout = group.config.start_timeout;
        group.spawning += 1;
        group.processes.insert(id);
        let generation = group.generation;
        self.processes
            .insert(id, Process::new(group_id, generation, now));
        self.totals.spawns += 1;
        self.timers
            .set(now + start_timeout, Timer::StartTimeout(id));
        self.push(Command::Spawn {
            group: group_id,
            process: id,
            reason,
        });
    }

    pub(crate) fn process_ready(&mut self, id: ProcessId) {
        match self.processes.get(&id) {
            Some(p) if p.state == ProcessState::Spawning => {}
            _ => return,
        }
        let now = self.now;
        self.update_process(id, |p| {
            p.state = ProcessState::Ready;
            p.ready_at = Some(now);
            p.last_used = now;
        });
        let process = &self.processes[&id];
        let (group_id, spawn_time) = (process.group, now.saturating_since(process.spawned_at));
        self.group_mut(group_id).demand.spawn_took(spawn_time);
        // The app starts: the streak of start failures is over (see `crate::crash_policy`).
        let group = self.group_mut(group_id);
        group.starts_failing = false;
        group.failure_streak = 0;
        group.backoff_until = None;
        self.clear_error_if_healed(group_id);
        self.hand_over(id);
        self.arm_idle_timer(id);
        self.reap_idle(group_id);
        self.dispatch(group_id);
        self.note_maybe_idle(id);
        self.mark_dirty(group_id);
    }

    pub(crate) fn spawn_failed(&mut self, id: ProcessId, error: String) {
        if let Some(process) = self.remove_process(id) {
            self.fail_in_flight(id, &process, &error);
            self.record_start_failure(process.group, process.generation, error);
        }
    }

    pub(crate) fn process_exited(&mut self, id: ProcessId, description: &str) {
        let Some(process) = self.remove_process(id) else {
            return;
        };
        self.fail_in_flight(id, &process, description);
        let group_id = process.group;
        match process.state {
            ProcessState::Spawning => {
                let error = format!("the app exited before it was ready ({description})");
                self.record_start_failure(group_id, process.generation, error);
            }
            ProcessState::Stopping if process.refused => {
                let error =
                    format!("an app process stopped taking connections and exited ({description})");
                self.record_crash(group_id, error);
            }
            ProcessState::Stopping => {
                if let Some(error) = process.start_failure {
                    self.record_start_failure(group_id, process.generation, error);
                }
            }
            ProcessState::Ready | ProcessState::Draining => {
                if process.state == ProcessState::Ready {
                    self.group_mut(group_id).failed_unreplaced += 1;
                }
                let error = format!("an app process exited unexpectedly ({description})");
                self.record_crash(group_id, error);
            }
        }
    }

    /// Fails the requests a process that is gone still held; `description` says how it
    /// ended.
    fn fail_in_flight(&mut self, id: ProcessId, process: &Process, description: &str) {
        let reason = match (process.state, process.stop_reason) {
            (ProcessState::Stopping, Some(reason)) => FailReason::Stopped { reason },
            _ => FailReason::Crashed {
                description: description.into(),
            },
        };
        for request in &process.in_flight {
            self.requests.remove(request);
            self.totals.failed += 1;
            self.push(Command::Fail {
                request: *request,
                process: id,
                reason: reason.clone(),
            });
        }
    }

    /// Takes a ready process out of rotation for `reason`: stopped now if idle, else once its
    /// sessions end.
    pub(crate) fn retire(&mut self, id: ProcessId, reason: KillReason) {
        match self.processes.get(&id).map(|p| (p.state, p.sessions)) {
            Some((ProcessState::Ready, 0)) => self.stop_process(id, KillMode::Graceful, reason),
            Some((ProcessState::Ready, _)) => self.drain(id, reason),
            _ => {}
        }
    }

    pub(crate) fn detach_process(&mut self, id: ProcessId) {
        match self.processes.get(&id).map(|p| p.state) {
            Some(ProcessState::Spawning) => {
                self.stop_process(id, KillMode::Graceful, KillReason::Detached)
            }
            Some(ProcessState::Ready) => self.retire(id, KillReason::Detached),
            _ => return,
        }
        let group_id = self.processes[&id].group;
        self.mark_dirty(group_id);
    }

    pub(crate) fn arm_idle_timer(&mut self, id: ProcessId) {
        let idle_time = self.pool.pool_idle_time;
        if idle_time.is_zero() {
            return;
        }
        if let Some(p) = self.processes.get_mut(&id) {
            if !p.idle_timer_armed {
                p.idle_timer_armed = true;
                self.timers.set(p.last_used + idle_time, Timer::Idle(id));
            }
        }
    }

    /// Whether a process has been idle for the whole `pool_idle_time`.
    pub(crate) fn idle_expired(&self, p: &Process) -> bool {
        let idle_time = self.pool.pool_idle_time;
        p.state == ProcessState::Ready
            && p.sessions == 0
            && !idle_time.is_zero()
            && p.last_used + idle_time <= self.now
    }

    /// Shuts down idle-expired processes of the group, oldest use first, down to
    /// `min_instances` ready ones.
    pub(crate) fn reap_idle(&mut self, group_id: GroupId) {
        loop {
            let group = self.group(group_id);
            if group.ready <= group.config.min_instances {
                return;
            }
            let expired = group
                .processes
                .iter()
                .map(|id| (*id, &self.processes[id]))
                .filter(|(_, p)| self.idle_expired(p))
                .min_by_key(|(id, p)| (p.last_used, *id))
                .map(|(id, _)| id);
            let Some(id) = expired else {
                return;
            };
            self.shut_down_idle(id);
        }
    }

    pub(crate) fn shut_down_idle(&mut self, id: ProcessId) {
        if self.processes[&id].sessions != 0 {
            self.decision_violation = Some(crate::invariants::Violation {
                invariant: 5,
                detail: format!("{id} was shut down for idleness while busy"),
            });
        }
        self.totals.idle_shutdowns += 1;
        self.stop_process(id, KillMode::Graceful, KillReason::Idle);
    }

    pub(crate) fn fire(&mut self, timer: Timer) {
        match timer {
            Timer::Idle(id) => {
                let Some(p) = self.processes.get_mut(&id) else {
                    return;
                };
                p.idle_timer_armed = false;
                #[cfg(feature = "sabotage")]
                if self.sabotage == Some(crate::Sabotage::IdleShutdownWhileBusy)
                    && p.state == ProcessState::Ready
                    && p.sessions != 0
                {
                    return self.shut_down_idle(id);
                }
                if p.state != ProcessState::Ready || p.sessions != 0 {
                    return; // re-armed when it next becomes idle
                }
                let group_id = p.group;
                if !self.idle_expired(&self.processes[&id]) {
                    return self.arm_idle_timer(id);
                }
                #[cfg(feature = "sabotage")]
                if self.sabotage == Some(crate::Sabotage::NeverIdleShutdown) {
                    return;
                }
                let group = self.group(group_id);
                if group.ready > group.config.min_instances {
                    self.shut_down_idle(id);
                }
            }
            Timer::StartTimeout(id) => {
                let Some(p) = self.processes.get_mut(&id) else {
                    return;
                };
                if p.state == ProcessState::Spawning {
                    let seconds = self.groups[p.group.0 as usize]
                        .config
                        .start_timeout
                        .as_secs_f64();
                    p.start_failure = Some(format!("the app did not start within {seconds} s"));
                    self.stop_process(id, KillMode::Force, KillReason::StartTimeout);
                }
            }
            Timer::KillTimeout(id) => {
                // Forced for the reason it was asked to stop.
                if let Some(reason) = self.processes.get(&id).and_then(|p| p.stop_reason) {
                    self.stop_process(id, KillMode::Force, reason);
                }
            }
            Timer::BackoffOver(group_id) => self.mark_dirty(group_id),
            Timer::ErrorHealed(group_id) => self.clear_error_if_healed(group_id),
            Timer::RequestDeadline(request) => self.request_deadline(request),
            Timer::QueueDeadline(request) => self.queue_deadline(request),
            Timer::Demand(group_id) => self.demand_check_due(group_id),
            Timer::ShutdownDeadline => {
                // Time is up: waiting requests are told, and every process is asked to stop.
                // The ask is a SIGTERM; a process still there `kill_timeout` later gets the
                // SIGKILL (`Timer::KillTimeout`), so none is killed without a chance to exit.
                self.reject_queued_at_shutdown(None);
                let ids: Vec<ProcessId> = self.processes.keys().copied().collect();
                for id in ids {
                    self.stop_process(id, KillMode::Graceful, KillReason::Shutdown);
                }
            }
        }
    }

    /// Stops taking new requests; queued ones are still served while `shutdown_timeout`
    /// allows, by the processes that are ready or starting (see [`Engine::wind_down`]).
    pub(crate) fn begin_shutdown(&mut self) {
        if self.shutdown.is_some() {
            return;
        }
        let deadline = self.now + self.pool.shutdown_timeout;
        self.shutdown = Some(ShutdownState {
            complete_sent: false,
            deadline,
        });
        self.timers.set(deadline, Timer::ShutdownDeadline);
        for group_id in (0..self.groups.len()).map(|i| GroupId(i as u32)) {
            self.group_mut(group_id).replacements_owed = 0;
        }
        self.wind_down();
    }

    /// During a shutdown, after every input: a group's queued requests keep its ready and
    /// starting processes; once its queue is empty, idle and starting processes stop and
    /// busy ones drain. Requests that can no longer be served (no process left that could
    /// take them, or the deadline passed) are rejected: nothing waits for nothing.
    pub(crate) fn wind_down(&mut self) {
        let Some(shutdown) = self.shutdown else {
            return;
        };
        let deadline_passed = self.now >= shutdown.deadline;
        for group_id in (0..self.groups.len()).map(|i| GroupId(i as u32)) {
            let group = self.group(group_id);
            if group.queue.is_empty() && group.ready + group.spawning == 0 {
                continue;
            }
            if deadline_passed {
                self.reject_queued_at_shutdown(Some(group_id));
            } else if !self.queue_servable_without_spawns(group_id) {
                self.reject_unservable_at_shutdown(group_id);
            }
            if !self.group(group_id).queue.is_empty() {
                continue;
            }
            let members: Vec<ProcessId> = self.group(group_id).processes.iter().copied().collect();
            for id in members {
                match self.processes[&id].state {
                    ProcessState::Spawning => {
                        self.stop_process(id, KillMode::Graceful, KillReason::Shutdown)
                    }
                    ProcessState::Ready => self.retire(id, KillReason::Shutdown),
                    ProcessState::Draining | ProcessState::Stopping => {}
                }
            }
        }
    }

    /// Rejects, as shutting down, the waiting requests of the group that nothing left can
    /// serve: the oldest one that needs a fresh process while none is starting for it, and
    /// so on; or all, once no process is left. The others still wait for a process: a
    /// request refused for want of a fresh process does not take the ones behind it along.
    /// Those are then dispatched, which can use up the last process (`max_requests`): what
    /// is still queued is looked at again (the model test found 8 requests left waiting
    /// for nothing that way).
    fn reject_unservable_at_shutdown(&mut self, group_id: GroupId) {
        loop {
            while !self.queue_servable_without_spawns(group_id) {
                let group = self.group(group_id);
                let oldest_fresh = group
                    .queue
                    .iter()
                    .position(|r| self.requests.get(r).is_some_and(|r| r.fresh_from.is_some()));
                let Some(at) = oldest_fresh else {
                    self.reject_queued_at_shutdown(Some(group_id));
                    return;
                };
                let request = self
                    .group_mut(group_id)
                    .queue
                    .remove(at)
                    .expect("in the queue");
                self.requests.remove(&request);
                self.reject(request, RejectReason::ShuttingDown);
            }
            self.dispatch(group_id);
            if self.queue_servable_without_spawns(group_id) {
                return;
            }
        }
    }

    /// Rejects the queued requests of `group` (of every group with `None`) as shutting down.
    fn reject_queued_at_shutdown(&mut self, group: Option<GroupId>) {
        let groups = match group {
            Some(group) => group.0..group.0 + 1,
            None => 0..self.groups.len() as u32,
        };
        for group_id in groups.map(GroupId) {
            #[cfg(feature = "sabotage")]
            if self.sabotage == Some(crate::Sabotage::KeepQueueAfterShutdownDeadline) {
                return;
            }
            while let Some(request) = self.group_mut(group_id).queue.pop_front() {
                self.requests.remove(&request);
                self.reject(request, RejectReason::ShuttingDown);
            }
        }
    }
}

/// The pause before spawn attempt number `streak + 1`: none after one failure, then
/// `initial`, doubling, capped at `max`.
pub(crate) fn backoff_delay(streak: u32, initial: Duration, max: Duration) -> Duration {
    if streak <= 1 {
        return Duration::ZERO;
    }
    let doublings = (streak - 2).min(32);
    initial.saturating_mul(1u32 << doublings.min(31)).min(max)
}
