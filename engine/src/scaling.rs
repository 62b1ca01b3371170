//! When to spawn, and where capacity comes from when the pool is full.

use crate::engine::Engine;
use crate::ids::{GroupId, ProcessId};
use crate::io::Command;
use crate::process::ProcessState;

impl Engine {
    /// Runs after every input: spawns what the groups need, frees pool slots for groups that
    /// are blocked by a full pool, and reports the end of a shutdown.
    pub(crate) fn maintain(&mut self) {
        if let Some(shutdown) = &mut self.shutdown {
            if !shutdown.complete_sent && self.processes.is_empty() && self.requests.is_empty() {
                shutdown.complete_sent = true;
                self.push(Command::ShutdownComplete);
            }
            return;
        }
        let everyone = core::mem::take(&mut self.room_freed);
        let mut blocked_total = 0;
        for index in 0..self.groups.len() {
            if everyone || self.dirty[index] {
                self.dirty[index] = false;
                blocked_total += self.spawn_for(GroupId(index as u32));
            }
        }
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
        let for_queue = group.processes_for_queue().saturating_sub(group.spawning);
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
        let wanted = for_min.max(other.min(concurrency_left));
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
    /// are on their way out already. Candidates, best first: an outdated process of a blocked
    /// group (a restart hands over), then an idle process above `min_instances` of a group
    /// that is not blocked, least recently used first.
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
        let outdated = ready
            .clone()
            .filter(|(_, p)| p.generation < self.group(p.group).generation && blocked(p.group))
            .min_by_key(|(id, p)| p.route_key(**id));
        if let Some((id, _)) = outdated {
            return Some(*id);
        }
        ready
            .filter(|(_, p)| {
                let group = self.group(p.group);
                p.sessions == 0 && group.ready > group.config.min_instances && !blocked(p.group)
            })
            .min_by_key(|(id, p)| (p.last_used, **id))
            .map(|(id, _)| *id)
    }
}
