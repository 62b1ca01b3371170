//! When to spawn, and where capacity comes from when the pool is full.

use crate::engine::Engine;
use crate::ids::{GroupId, ProcessId};
use crate::io::Command;
use crate::process::ProcessState;

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
    /// - enough for the queue, counting what is already spawning;
    /// - one per outdated process during a restart, and one per retired process.
    fn spawn_need(&self, group_id: GroupId) -> (usize, usize) {
        let group = self.group(group_id);
        let for_min = group.config.min_instances.saturating_sub(group.active());
        #[cfg(feature = "sabotage")]
        let for_min = if self.sabotage == Some(crate::Sabotage::IgnoreMinInstances) {
            0
        } else {
            for_min
        };
        let for_queue = if group.fresh_seen {
            self.fresh_spawn_need(group_id)
        } else {
            group.processes_for_queue().saturating_sub(group.spawning)
        };
        let for_restart = group.outdated_ready.saturating_sub(group.spawning);
        let other = for_queue.max(for_restart).max(group.replacements_owed);
        (for_min, other)
    }

    /// Spawns what the group needs within its limits; returns how many more it wanted but the
    /// full pool did not allow.
    fn spawn_for(&mut self, group_id: GroupId) -> usize {
        if self.group(group_id).backing_off(self.now) {
            return 0;
        }
        let (for_min, other) = self.spawn_need(group_id);
        let group = self.group(group_id);
        let concurrency_left = group
            .config
            .max_spawn_concurrency
            .saturating_sub(group.spawning);
        // While spawns fail, one attempt at a time probes whether the app starts again.
        let wanted = if group.starts_failing {
            for_min
                .max(other)
                .min(1usize.saturating_sub(group.spawning))
        } else {
            for_min.max(other.min(concurrency_left))
        };
        let room = self.pool.max_pool_size.saturating_sub(self.processes.len());
        #[cfg(feature = "sabotage")]
        let room = if self.sabotage == Some(crate::Sabotage::IgnoreMaxPoolSize) {
            wanted
        } else {
            room
        };
        let spawns = wanted.min(room);
        for _ in 0..spawns {
            self.spawn(group_id);
        }
        let group = self.group_mut(group_id);
        group.replacements_owed = group.replacements_owed.saturating_sub(spawns);
        wanted - spawns
    }

    /// The pool is full and groups wait for room: stop processes that can go, unless enough
    /// are on their way out already. Candidates, best first:
    /// - an idle process above `min_instances` of a group that does not wait itself, least
    ///   recently used first: it would be shut down for idleness soon anyway;
    /// - a ready process of an old generation of a waiting (restarting) group, most idle first,
    ///   and only while none of that group's processes is spawning or leaving: a rolling
    ///   restart in a full pool gives up one process of capacity at a time, not all at once.
    fn free_capacity(&mut self, blocked_total: usize) {
        let leaving: usize = self.groups.iter().map(|g| g.draining + g.stopping).sum();
        for _ in leaving..blocked_total {
            match self.capacity_candidate() {
                Some(id) => self.retire(id),
                None => return,
            }
        }
    }

    fn capacity_candidate(&self) -> Option<ProcessId> {
        let blocked = |group_id: GroupId| {
            let group = self.group(group_id);
            let (for_min, other) = self.spawn_need(group_id);
            !group.backing_off(self.now) && (for_min > 0 || other > 0)
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
            return Some(*id);
        }
        // A process too old for the fresh requests its group waits with.
        let stale = ready
            .clone()
            .filter(|(id, p)| self.stale_for_fresh(**id) && blocked(p.group))
            .min_by_key(|(id, p)| (p.last_used, **id));
        if let Some((id, _)) = stale {
            return Some(*id);
        }
        ready
            .filter(|(_, p)| {
                let group = self.group(p.group);
                p.generation < group.generation
                    && group.spawning + group.draining + group.stopping == 0
                    && blocked(p.group)
            })
            .min_by_key(|(id, p)| p.idle_key(**id))
            .map(|(id, _)| *id)
    }
}
