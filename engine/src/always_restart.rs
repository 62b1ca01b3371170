//! Always-restart mode, Passenger's `tmp/always_restart.txt`: while it is on for a group,
//! every request that arrives is served by a process spawned after it arrived, so each one
//! runs code loaded after it was sent (development: edit, reload the page, see the change).
//!
//! The engine allocates process ids in spawn order, so "spawned after the request arrived"
//! is "an id at least the next id at arrival" ([`crate::engine::Request::fresh_from`]),
//! exact even when a spawn and an arrival share an instant. A fresh process serves that one
//! request and is retired as it takes it; processes that are too old for the requests
//! waiting keep serving requests that arrived before the mode was on, count toward
//! `min_instances`, and give up their slot when the full pool needs room.
//!
//! Invariant 12 (checked as the choice is made, see `check_fresh_choice`): a request that
//! arrived in this mode goes only to a process spawned after its arrival that has served
//! nothing before.

use crate::engine::Engine;
use crate::ids::{GroupId, ProcessId, RequestId};
use crate::process::ProcessState;

impl Engine {
    pub(crate) fn set_always_restart(&mut self, group_id: GroupId, on: bool) {
        let group = self.group_mut(group_id);
        group.always_restart = on;
        group.fresh_seen |= on;
        self.mark_dirty(group_id);
    }

    /// What a request arriving now must be served by: `Some(first id allowed)` in the mode.
    pub(crate) fn fresh_from_now(&self, group_id: GroupId) -> Option<ProcessId> {
        self.group(group_id)
            .always_restart
            .then_some(ProcessId(self.next_process_id))
    }

    /// A ready process that can serve a request needing `fresh_from`: spawned at or after it,
    /// never used, so its only session will be this one.
    pub(crate) fn pick_fresh(&self, group_id: GroupId, fresh_from: ProcessId) -> Option<ProcessId> {
        self.group(group_id)
            .routable
            .iter()
            .map(|key| key.2)
            .find(|id| *id >= fresh_from && self.processes[id].assigned() == 0)
    }

    /// Whether a waiting request of the group needs a fresh process.
    pub(crate) fn fresh_waiting(&self, group_id: GroupId) -> bool {
        self.oldest_fresh(group_id).is_some()
    }

    /// The oldest waiting request's `fresh_from`, if it needs a fresh process.
    fn oldest_fresh(&self, group_id: GroupId) -> Option<ProcessId> {
        let group = self.group(group_id);
        group
            .queue
            .iter()
            .find_map(|request| self.requests.get(request).and_then(|r| r.fresh_from))
    }

    /// Processes to spawn for the queue of a group that has been in the mode: one per
    /// waiting fresh request not covered by a process spawning since that request's
    /// arrival, plus what the other waiting requests need as usual.
    pub(crate) fn fresh_spawn_need(&self, group_id: GroupId) -> usize {
        let group = self.group(group_id);
        let fresh = group
            .queue
            .iter()
            .filter(|r| self.requests.get(r).is_some_and(|r| r.fresh_from.is_some()))
            .count();
        let others = group.queue.len() - fresh;
        let on_their_way = match self.oldest_fresh(group_id) {
            Some(from) => group
                .processes
                .iter()
                .filter(|id| **id >= from && self.processes[id].state == ProcessState::Spawning)
                .count(),
            None => 0,
        };
        let for_others = match group.config.concurrency {
            0 => usize::from(others > 0),
            c => others.div_ceil(c as usize),
        };
        let spawning_for_others = group.spawning - on_their_way.min(group.spawning);
        fresh.saturating_sub(on_their_way) + for_others.saturating_sub(spawning_for_others)
    }

    /// Whether the group's waiting requests can still be served once nothing new spawns
    /// (during a shutdown): a ready or starting process, and for a request that needs a
    /// fresh process, one spawned after it arrived that has served nothing.
    pub(crate) fn queue_servable_without_spawns(&self, group_id: GroupId) -> bool {
        let group = self.group(group_id);
        let Some(from) = group
            .fresh_seen
            .then(|| self.oldest_fresh(group_id))
            .flatten()
        else {
            return group.ready + group.spawning > 0;
        };
        group.processes.range(from..).any(|id| {
            let p = &self.processes[id];
            p.state == ProcessState::Spawning
                || (p.state == ProcessState::Ready && p.assigned() == 0)
        })
    }

    /// Whether `id` is an idle ready process of a group waiting for fresh processes: it
    /// cannot serve them, so its slot is worth more to a new one.
    pub(crate) fn stale_for_fresh(&self, id: ProcessId) -> bool {
        let p = &self.processes[&id];
        p.state == ProcessState::Ready
            && p.sessions == 0
            && self
                .oldest_fresh(p.group)
                .is_some_and(|from| id < from || p.assigned() > 0)
    }

    /// Whether `request`, about to go to `chosen`, arrived in always-restart mode (then
    /// `chosen` serves it alone). Checks invariant 12 on the way.
    pub(crate) fn needs_fresh(&mut self, request: RequestId, chosen: ProcessId) -> bool {
        let group = self.processes.get(&chosen).map(|p| p.group);
        if !group.is_some_and(|g| self.group(g).fresh_seen) {
            return false;
        }
        let Some(from) = self.requests.get(&request).and_then(|r| r.fresh_from) else {
            return false;
        };
        self.check_fresh_choice(request, chosen, from);
        true
    }

    /// Invariant 12: records a request that arrived in always-restart mode going to a process
    /// spawned before it arrived, or one that served before.
    fn check_fresh_choice(&mut self, request: RequestId, chosen: ProcessId, from: ProcessId) {
        let p = &self.processes[&chosen];
        if chosen < from || p.assigned() > 0 {
            self.decision_violation = Some(crate::invariants::Violation {
                invariant: 12,
                detail: alloc::format!(
                    "{request} arrived in always-restart mode (needs a process from {from}) \
                     but went to {chosen}, which has served {} requests",
                    p.assigned()
                ),
            });
        }
    }
}
