//! When to spawn and when to shrink (the rule itself, with its constants, is in
//! `demand.rs`), and where capacity comes from when the pool is full.

use crate::demand::{Situation, CHECK_INTERVAL};
use crate::engine::Engine;
use crate::ids::{GroupId, ProcessId};
use crate::io::Command;
use crate::process::ProcessState;
use crate::reasons::{KillReason, SpawnReason};
use crate::time::Instant;
use crate::timers::Timer;
use alloc::vec::Vec;

/// What a group should add now, before any limit (see [`Engine::spawn_need`]).
struct SpawnNeed {
    /// Up to `min_instances`.
    for_min: usize,
    /// For the demand (or the fresh requests of always-restart mode).
    for_demand: usize,
    /// For outdated processes of a restart.
    for_restart: usize,
    /// Everything but `for_min`: the demand, restarts and replacements owed.
    other: usize,
    /// The part of `other` that may take capacity from another group.
    other_blocking: usize,
}

impl Engine {
    /// Runs after every input: spawns what the groups need, frees pool slots for groups that
    /// are blocked by a full pool, and reports the end of a shutdown.
    pub(crate) fn maintain(&mut self) {
        self.wind_down();
        if let Some(shutdown) = &mut self.shutdown {
            if !shutdown.complete_sent && self.processes.is_empty() && self.requests.is_empty() {
                shutdown.complete_sent = true;
                self.push(Command::ShutdownComplete);
            }
            return;
        }
        let everyone = core::mem::take(&mut self.all_dirty);
        if !everyone && self.dirty_groups.is_empty() {
            return;
        }
        let mut groups = core::mem::take(&mut self.dirty_groups);
        for group in &groups {
            self.dirty[group.0 as usize] = false;
        }
        if everyone {
            groups.clear();
            groups.extend((0..self.groups.len()).map(|index| GroupId(index as u32)));
        } else {
            // In group order, as a look at every group would go: the first gets a freed slot.
            groups.sort_unstable();
        }
        let mut blocked_total = 0;
        for &group in &groups {
            blocked_total += self.spawn_for(group);
        }
        // Keep the list's allocation; a group marked meanwhile waits for the next input.
        groups.clear();
        groups.append(&mut self.dirty_groups);
        self.dirty_groups = groups;
        // Groups not looked at keep whatever they wanted: only a full look says none waits.
        self.pool_waiting = blocked_total > 0 || (self.pool_waiting && !everyone);
        if blocked_total > 0 {
            self.free_capacity(blocked_total);
        }
    }

    /// Processes the group should add now, before any limit.
    ///
    /// - up to `min_instances` serving or spawning processes (these ignore
    ///   `max_spawn_concurrency`: the user asked for them to exist);
    /// - up to what the demand needs (`demand.rs`), counting what is already spawning, unless
    ///   nothing waits here while other groups wait for room;
    /// - one per outdated process during a restart, and one per retired process.
    ///
    /// `other_blocking` leaves out, while nothing waits in the group, spawns for the load
    /// alone and the replacements of processes retired at `max_requests`: these never take
    /// capacity from another group (they wait for room like nobody's business). A retired
    /// process's replacement keeps capacity for a load that nobody waits for; were it to
    /// block, a group short of its `min_instances` and a group owing one would each keep the
    /// other from the idle process that could make room, for ever.
    fn spawn_need(&self, group_id: GroupId) -> SpawnNeed {
        let group = self.group(group_id);
        let for_min = group.config.min_instances.saturating_sub(group.active());
        #[cfg(feature = "sabotage")]
        let for_min = if self.sabotage == Some(crate::Sabotage::IgnoreMinInstances) {
            0
        } else {
            for_min
        };
        // Spawns for the load alone (nothing waits here) give way to groups whose requests
        // wait for room in a full pool: else such a spawn could take every slot that frees.
        let for_demand = if group.fresh_seen {
            self.fresh_spawn_need(group_id)
        } else if group.queue.is_empty() && (self.pool_waiting || self.has_idle_ready(group_id)) {
            // Nothing waits and a ready process sits idle: a spawn for the load estimate
            // would only be shut down again for idleness (the estimate lags a load that has
            // just stopped, say after a flood of 503s), so there is none.
            0
        } else {
            self.needed(group_id).saturating_sub(group.active())
        };
        let for_restart = group.outdated_ready.saturating_sub(group.spawning);
        let other = for_demand.max(for_restart).max(group.replacements_owed);
        let other_blocking = if group.queue.is_empty() {
            for_restart
        } else {
            other
        };
        SpawnNeed {
            for_min,
            for_demand,
            for_restart,
            other,
            other_blocking,
        }
    }

    /// Why each of the next `spawns` spawns of the group happens, most specific cause first:
    /// a failing start is retried; a restart, a `max_requests` retirement or a failed process
    /// is replaced; then `min_instances`; the rest is for the demand.
    fn spawn_reasons(
        &self,
        group_id: GroupId,
        need: &SpawnNeed,
        spawns: usize,
    ) -> Vec<SpawnReason> {
        let group = self.group(group_id);
        if group.starts_failing {
            return alloc::vec![SpawnReason::StartRetry; spawns];
        }
        let replaceable = need.for_min.max(need.for_demand);
        let demand = match group.fresh_seen && self.fresh_waiting(group_id) {
            true => SpawnReason::AlwaysRestart,
            false => SpawnReason::Demand,
        };
        let generation = group.generation;
        let over_memory = group
            .processes
            .iter()
            .map(|id| &self.processes[id])
            .filter(|p| p.state == ProcessState::Ready && p.over_memory_limit)
            .filter(|p| p.generation == generation)
            .count()
            .min(need.for_restart);
        let mut budgets = [
            (SpawnReason::MemoryLimit, over_memory),
            (SpawnReason::Restart, need.for_restart - over_memory),
            (SpawnReason::MaxRequests, group.replacements_owed),
            (
                SpawnReason::Replacement,
                group.failed_unreplaced.min(replaceable),
            ),
            (SpawnReason::MinInstances, need.for_min),
        ];
        (0..spawns)
            .map(|_| {
                let budget = budgets.iter_mut().find(|(_, left)| *left > 0);
                match budget {
                    Some((reason, left)) => {
                        *left -= 1;
                        *reason
                    }
                    None => demand,
                }
            })
            .collect()
    }

    /// Spawns what the group needs within its limits; returns how many more it wanted but the
    /// full pool did not allow.
    fn spawn_for(&mut self, group_id: GroupId) -> usize {
        self.sample_demand(group_id);
        let blocked = self.spawn_within_limits(group_id);
        self.check_restart_done(group_id);
        blocked
    }

    fn spawn_within_limits(&mut self, group_id: GroupId) -> usize {
        if self.group(group_id).backing_off(self.now) {
            return 0;
        }
        let need = self.spawn_need(group_id);
        let (for_min, other, other_blocking) = (need.for_min, need.other, need.other_blocking);
        let group = self.group(group_id);
        let concurrency_left = group
            .config
            .max_spawn_concurrency
            .saturating_sub(group.spawning);
        // While spawns fail, one attempt at a time probes whether the app starts again.
        let wanted_of = |other: usize| {
            if group.starts_failing {
                for_min
                    .max(other)
                    .min(1usize.saturating_sub(group.spawning))
            } else {
                for_min.max(other.min(concurrency_left))
            }
        };
        let (wanted, wanted_blocking) = (wanted_of(other), wanted_of(other_blocking));
        let room = self.pool.max_pool_size.saturating_sub(self.processes.len());
        #[cfg(feature = "sabotage")]
        let room = if self.sabotage == Some(crate::Sabotage::IgnoreMaxPoolSize) {
            wanted
        } else {
            room
        };
        // A restart's replacement may surge beyond a full pool (see `crate::restart`).
        let room = if room == 0 {
            self.surge_room(group_id)
        } else {
            room
        };
        let spawns = wanted.min(room);
        let reasons = self.spawn_reasons(group_id, &need, spawns);
        let replaced = reasons
            .iter()
            .filter(|r| **r == SpawnReason::Replacement)
            .count();
        for reason in reasons {
            self.spawn(group_id, reason);
        }
        let group = self.group_mut(group_id);
        group.replacements_owed = group.replacements_owed.saturating_sub(spawns);
        group.failed_unreplaced = match need.for_min.max(need.for_demand) {
            // Nothing needs the failed processes back: they are not replaced.
            0 => 0,
            _ => group.failed_unreplaced - replaced,
        };
        self.shrink_to_demand(group_id);
        wanted_blocking.saturating_sub(spawns)
    }

    /// Whether a ready process of the group has no session.
    fn has_idle_ready(&self, group_id: GroupId) -> bool {
        self.group(group_id).processes.iter().any(|id| {
            self.processes[id].state == ProcessState::Ready && self.processes[id].sessions == 0
        })
    }

    /// What the group's situation is now, for the demand rule.
    fn situation(&self, group_id: GroupId) -> Situation {
        let situation = self.situation_unsabotaged(group_id);
        #[cfg(feature = "sabotage")]
        match self.sabotage {
            Some(crate::Sabotage::IgnoreMinInstances) => {
                return Situation {
                    min_instances: 0,
                    ..situation
                }
            }
            Some(crate::Sabotage::IgnoreMaxPoolSize) => {
                return Situation {
                    max_pool_size: usize::MAX,
                    ..situation
                }
            }
            _ => {}
        }
        situation
    }

    fn situation_unsabotaged(&self, group_id: GroupId) -> Situation {
        let group = self.group(group_id);
        Situation {
            min_instances: group.config.min_instances,
            max_pool_size: self.pool.max_pool_size,
            target_concurrency: group.config.target_concurrency,
            queued: group.queue.len(),
            // A request queued while no process was ready could not be served before one
            // was: its wait counts from then (see `Situation::oldest_queued_at`).
            oldest_queued_at: group
                .queue
                .front()
                .and_then(|request| self.requests.get(request))
                .map(|request| request.queued_at.max(group.ready_since)),
            ready: group.ready,
        }
    }

    /// Processes the group's demand needs now.
    pub(crate) fn needed(&self, group_id: GroupId) -> usize {
        let situation = self.situation(group_id);
        self.group(group_id).demand.needed(self.now, &situation)
    }

    /// Brings the group's demand up to date with its requests now (every change to its
    /// sessions or queue marks the group, so this runs at each of them), records the need and
    /// asks to be woken when it should be looked at again.
    fn sample_demand(&mut self, group_id: GroupId) {
        let now = self.now;
        let idle_time = self.pool.pool_idle_time;
        let group = self.group(group_id);
        let load = group.load_sessions + group.queue.len() as u32;
        self.group_mut(group_id).demand.set_load(now, load);
        let situation = self.situation(group_id);
        let demand = &mut self.group_mut(group_id).demand;
        let to_keep = demand.to_keep(now, &situation);
        demand.forget_before(now, idle_time);
        demand.record_needed(now, to_keep);
        let mut next = demand.next_expiry(idle_time);
        if demand.moving(now) {
            next = Some(next.map_or(now + CHECK_INTERVAL, |at| at.min(now + CHECK_INTERVAL)));
        }
        // A deadline already passed was taken into account by this very sample.
        let queue_deadline = situation
            .oldest_queued_at
            .map(|oldest| demand.queue_deadline(oldest))
            .filter(|at| *at > now);
        if let Some(at) = queue_deadline {
            next = Some(next.map_or(at, |next| next.min(at)));
        }
        if let Some(at) = next {
            self.arm_demand_check(group_id, at);
        }
    }

    fn arm_demand_check(&mut self, group_id: GroupId, at: Instant) {
        let now = self.now;
        let group = self.group_mut(group_id);
        let armed = group.demand_check_at.filter(|armed| *armed > now);
        if at > now && armed.is_none_or(|armed| at < armed) {
            group.demand_check_at = Some(at);
            self.timers.set(at, Timer::Demand(group_id));
        }
    }

    pub(crate) fn demand_check_due(&mut self, group_id: GroupId) {
        let now = self.now;
        let group = self.group_mut(group_id);
        if group.demand_check_at.is_some_and(|at| at <= now) {
            group.demand_check_at = None;
        }
        self.mark_dirty(group_id);
    }

    /// The processes the group keeps: the most its demand needed at any moment of the last
    /// `pool_idle_time` (and `min_instances`); `None` while nothing is shut down for it: no
    /// idle time, shutdown, or a restart or replacement under way (the new processes come on
    /// top of the old ones they replace), or spawning paused by the crash policy: the process
    /// it probes with may well fail to start, so the ready ones it has are kept until the
    /// pause is over (then the group is looked at again).
    pub(crate) fn kept(&self, group_id: GroupId) -> Option<usize> {
        let idle_time = self.pool.pool_idle_time;
        let group = self.group(group_id);
        if idle_time.is_zero()
            || self.shutdown.is_some()
            || group.outdated_ready > 0
            || group.replacements_owed > 0
            || group.backing_off(self.now)
        {
            return None;
        }
        let kept = group.demand.kept(self.now, idle_time);
        Some(kept.max(group.config.min_instances))
    }

    /// Shuts down idle ready processes beyond what the group keeps, least recently used first.
    fn shrink_to_demand(&mut self, group_id: GroupId) {
        #[cfg(feature = "sabotage")]
        if matches!(
            self.sabotage,
            Some(crate::Sabotage::NeverShrinkToDemand | crate::Sabotage::NeverIdleShutdown)
        ) {
            return;
        }
        let Some(kept) = self.kept(group_id) else {
            return;
        };
        while self.group(group_id).active() > kept {
            let group = self.group(group_id);
            let idle = group
                .processes
                .iter()
                .map(|id| (*id, &self.processes[id]))
                .filter(|(_, p)| p.state == ProcessState::Ready && p.sessions == 0)
                .min_by_key(|(id, p)| p.idle_key(*id))
                .map(|(id, _)| id);
            let Some(id) = idle else {
                return;
            };
            self.shut_down_idle(id);
        }
    }

    /// The pool is full and groups wait for room: stop processes that can go, unless enough
    /// are on their way out already. Candidates, best first:
    /// - an idle process above `min_instances` of a group that does not wait itself, least
    ///   recently used first: it would be shut down for idleness soon anyway;
    ///
    /// Never a process of an old generation for its group's restart: that one surges instead,
    /// so that capacity never dips (`crate::restart`).
    fn free_capacity(&mut self, blocked_total: usize) {
        let leaving: usize = self.groups.iter().map(|g| g.draining + g.stopping).sum();
        for _ in leaving..blocked_total {
            let Some((id, reason)) = self.capacity_candidate() else {
                return;
            };
            let group_id = self.processes[&id].group;
            self.retire(id, reason);
            // The last outdated process leaving ends its group's restart: from now on the
            // group keeps only what its demand needs (invariant 10).
            self.shrink_to_demand(group_id);
        }
    }

    /// The process to give up for room, and why it goes.
    fn capacity_candidate(&self) -> Option<(ProcessId, KillReason)> {
        let blocked = |group_id: GroupId| {
            let group = self.group(group_id);
            let need = self.spawn_need(group_id);
            !group.backing_off(self.now) && (need.for_min > 0 || need.other_blocking > 0)
        };
        let ready = self
            .processes
            .iter()
            .filter(|(_, p)| p.state == ProcessState::Ready);
        let idle = ready
            .clone()
            .filter(|(_, p)| {
                let group = self.group(p.group);
                p.sessions == 0 && group.ready > group.config.min_instances && !blocked(p.group)
            })
            .min_by_key(|(id, p)| (p.last_used, **id));
        if let Some((id, _)) = idle {
            return Some((*id, KillReason::MakeRoom));
        }
        // A process too old for the fresh requests its group waits with.
        let stale = ready
            .clone()
            .filter(|(id, p)| self.stale_for_fresh(**id) && blocked(p.group))
            .min_by_key(|(id, p)| (p.last_used, **id));
        stale.map(|(id, _)| (*id, KillReason::MakeRoom))
    }
}
