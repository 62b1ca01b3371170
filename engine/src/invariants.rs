//! The pool's invariants, each written once, here: the numbered list on
//! [`Engine::check_invariants`] is their one statement, next to the code that checks them
//! (the few checked as a decision is made say so, and point to where). The engine checks them
//! after every input in debug builds; the property tests and the simulator's swarm call the
//! same function.

use crate::engine::Engine;
use crate::ids::{GroupId, ProcessId, RequestId};
use crate::process::ProcessState;
use alloc::format;
use alloc::string::String;
use core::fmt;

/// An invariant that does not hold, with the evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Its number in the list on [`Engine::check_invariants`].
    pub invariant: u8,
    /// What was seen: the ids and counts that break it.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invariant {} broken: {}", self.invariant, self.detail)
    }
}

fn ensure(holds: bool, invariant: u8, detail: impl FnOnce() -> String) -> Result<(), Violation> {
    if holds {
        Ok(())
    } else {
        Err(Violation {
            invariant,
            detail: detail(),
        })
    }
}

impl Engine {
    /// Checks every invariant of the pool at the latest instant seen:
    ///
    /// 1. Live processes (spawning, ready, draining, stopping) never exceed `max_pool_size`,
    ///    but for one more while a restart replaces processes in a full pool (a surge: some
    ///    process of an old generation is still live; see `crate::restart`).
    /// 2. Outside backoff and shutdown, each group has at least `min_instances` live
    ///    processes — unless the pool is full, when it waits for room like any other need,
    ///    or its spawns are failing, when it probes with one spawn at a time.
    /// 3. Every request ends exactly once: each one not yet ended is either in its group's
    ///    queue or in exactly one process's sessions, and
    ///    arrived = served + rejected + failed + cancelled + not yet ended.
    /// 4. A request goes only to a ready process with room, one with the fewest sessions
    ///    (upgraded ones, tunnels, not counted); no request waits while a process has room.
    ///    (The choice itself is checked as it is made.)
    /// 5. No queue is longer than its limit. A busy process is never shut down for idleness
    ///    (checked as the decision is made). No request has waited in its queue for
    ///    `max_request_queue_time`, nor run for `max_request_time`, when those are set: the
    ///    engine asks to be woken at each deadline.
    /// 6. In a group with more ready processes than `min_instances`, no ready process has been
    ///    idle for `pool_idle_time`: the engine asks to be woken at each deadline.
    /// 8. The pool is not empty while requests wait and the app's last start succeeded: a
    ///    group with queued requests has a process ready or spawning — unless its latest start
    ///    failed or is failing (then it backs off), crashes came faster than the spawn-rate
    ///    bound (then it waits for that, at most `crash_respawn_interval` per crash), the
    ///    pool is full (then it waits for room), or the pool shuts down. (See
    ///    `crate::crash_policy`.)
    /// 9. A restart never reduces serving capacity: an outdated process leaves rotation only
    ///    against a new process that became ready since (checked as the handover is
    ///    decided, in `crate::restart`), and a failed restart keeps the old generation.
    /// 10. The pool follows the load: a group with more spawning and ready processes than it
    ///     keeps — the most its measured demand needed at any moment of the last
    ///     `pool_idle_time`, and at least `min_instances` (see `demand.rs`) — has no idle
    ///     ready process left. So once the load drops, the processes beyond what it needs are
    ///     gone within `pool_idle_time` of the drop, plus the averages' time constants.
    /// 11. During a shutdown a request waits only for a process that can still serve it: its
    ///     group has a ready or starting process (for a request waiting for a fresh process,
    ///     invariant 12, one started after it arrived), and `shutdown_timeout` has not run out.
    /// 12. In always-restart mode a request goes only to a process spawned after it arrived
    ///     (stated and checked, as the choice is made, in `always_restart.rs`).
    ///
    /// The seventh, determinism, is a property of the whole engine and is tested by running
    /// the same inputs twice. Number 9 is kept for a rolling restart never lowering serving
    /// capacity, which is not checked yet.
    pub fn check_invariants(&self) -> Result<(), Violation> {
        if let Some(violation) = &self.decision_violation {
            return Err(violation.clone());
        }
        let live = self.processes.len();
        let max = self.pool.max_pool_size;
        let surge = usize::from(self.surging());
        ensure(live <= max + surge, 1, || {
            format!("{live} live processes, max_pool_size {max} (surge {surge})")
        })?;
        self.check_groups()?;
        self.check_requests()
    }

    fn check_groups(&self) -> Result<(), Violation> {
        let pool_full = self.processes.len() >= self.pool.max_pool_size;
        for (index, group) in self.groups.iter().enumerate() {
            let name = GroupId(index as u32);
            let min = group.config.min_instances;
            // A probe spawning, or one that failed and is being put down (its exit counts
            // as the failure that decides the next attempt).
            let probing = group.starts_failing && group.spawning + group.stopping > 0;
            let exempt =
                self.shutdown.is_some() || group.backing_off(self.now) || probing || pool_full;
            ensure(exempt || group.live() >= min, 2, || {
                format!(
                    "{name} has {} live processes, min_instances {min} (spawning {}, ready {}, \
                     draining {}, stopping {}, starts failing {}, failure streak {}, \
                     backoff until {:?}, pool {}/{})",
                    group.live(),
                    group.spawning,
                    group.ready,
                    group.draining,
                    group.stopping,
                    group.starts_failing,
                    group.failure_streak,
                    group.backoff_until,
                    self.processes.len(),
                    self.pool.max_pool_size
                )
            })?;
            // A start that failed (start timeout) is being put down: its exit is the start
            // failure that decides the next attempt.
            let start_failing = group.starts_failing
                || group.processes.iter().any(|id| {
                    let p = &self.processes[id];
                    p.state == ProcessState::Stopping && p.start_failure.is_some()
                });
            let excused = self.shutdown.is_some()
                || start_failing
                || group.crash_paused(self.now)
                || pool_full;
            ensure(
                group.queue.is_empty() || excused || group.active() > 0,
                8,
                || {
                    format!(
                        "{name} has {} requests waiting and no process ready or spawning, though \
                     its last start succeeded (draining {}, stopping {}, backoff until {:?}, \
                     pool {}/{})",
                        group.queue.len(),
                        group.draining,
                        group.stopping,
                        group.backoff_until,
                        self.processes.len(),
                        self.pool.max_pool_size
                    )
                },
            )?;
            let limit = group.config.max_request_queue_size;
            ensure(limit == 0 || group.queue.len() <= limit, 5, || {
                format!("{name} queue holds {}, limit {limit}", group.queue.len())
            })?;
            // A request needing a fresh process (invariant 12) waits for one of those only.
            let head_can_go = match group.queue.front() {
                None => false,
                Some(head) => match self.requests.get(head).and_then(|r| r.fresh_from) {
                    Some(from) => self.pick_fresh(name, from).is_some(),
                    None => !group.routable.is_empty(),
                },
            };
            ensure(!head_can_go, 4, || {
                format!("{name} has queued requests while a process has room")
            })?;
            if let Some(shutdown) = &self.shutdown {
                let servable =
                    self.queue_servable_without_spawns(name) && self.now < shutdown.deadline;
                ensure(group.queue.is_empty() || servable, 11, || {
                    format!(
                        "{name} keeps {} requests waiting during shutdown with {} ready and {} \
                         starting processes, {:?} before the deadline",
                        group.queue.len(),
                        group.ready,
                        group.spawning,
                        shutdown.deadline.saturating_since(self.now)
                    )
                })?;
            }
            let (mut counts, mut outdated) = ([0usize; 4], 0);
            for id in &group.processes {
                let p = &self.processes[id];
                counts[p.state as usize] += 1;
                outdated +=
                    usize::from(p.state == ProcessState::Ready && p.outdated(group.generation));
                let routable = group.routable.contains(&p.route_key(*id));
                ensure(routable == p.has_room(group.config.concurrency), 4, || {
                    format!(
                        "{id} routable={routable} disagrees with its state {:?}",
                        p.state
                    )
                })?;
                let idle_limit_applies = group.ready > min && self.shutdown.is_none();
                ensure(!(idle_limit_applies && self.idle_expired(p)), 6, || {
                    format!(
                        "{id} idle since {:?} is still up at {:?}",
                        p.last_used, self.now
                    )
                })?;
            }
            if let Some(kept) = self.kept(name) {
                let idle = group.processes.iter().find(|id| {
                    let p = &self.processes[*id];
                    p.state == ProcessState::Ready && p.sessions == 0
                });
                ensure(group.active() <= kept || idle.is_none(), 10, || {
                    format!(
                        "{name} keeps {kept} processes for its demand, has {} spawning or \
                         ready, and {} is idle",
                        group.active(),
                        idle.expect("an idle process")
                    )
                })?;
            }
            let counted = [group.spawning, group.ready, group.draining, group.stopping];
            ensure(
                counts == counted && outdated == group.outdated_ready,
                3,
                || format!("{name} counts {counted:?} but holds {counts:?}"),
            )?;
            ensure(group.routable.len() <= group.ready, 4, || {
                format!("{name} routes to non-ready processes")
            })?;
        }
        Ok(())
    }

    fn check_requests(&self) -> Result<(), Violation> {
        let t = &self.totals;
        let ended = t.served + t.rejected + t.failed + t.cancelled;
        let open = self.requests.len() as u64;
        ensure(t.arrived == ended + open, 3, || {
            format!(
                "{} arrived, {ended} ended, {open} open: a request was lost",
                t.arrived
            )
        })?;
        let mut queued = 0;
        for (request, entry) in &self.requests {
            let config = &self.group(entry.group).config;
            let (limit, since, what) = match entry.process {
                None => (config.max_request_queue_time, entry.queued_at, "waited"),
                Some(_) => (config.max_request_time, entry.started_at, "run"),
            };
            ensure(limit.is_zero() || since + limit > self.now, 5, || {
                format!("{request} has {what} since {since:?}, past its limit {limit:?}")
            })?;
            match entry.process {
                // Each queued request is in its group's queue exactly once: every queue entry
                // is checked below to be a queued request of that group, with no repeats,
                // and the counts must match.
                None => queued += 1,
                Some(process) => {
                    let holds = self
                        .processes
                        .get(&process)
                        .is_some_and(|p| p.in_flight.contains(request));
                    ensure(holds, 3, || {
                        format!("{request} is in flight on {process}, which lost it")
                    })?;
                }
            }
        }
        let queue_total: usize = self.groups.iter().map(|g| g.queue.len()).sum();
        ensure(queued == queue_total, 3, || {
            format!("{queue_total} queue entries for {queued} queued requests")
        })?;
        for (index, group) in self.groups.iter().enumerate() {
            let mut entries: alloc::vec::Vec<RequestId> = group.queue.iter().copied().collect();
            entries.sort_unstable();
            let repeated = entries.windows(2).any(|pair| pair[0] == pair[1]);
            ensure(!repeated, 3, || {
                format!("group {index} queues a request twice")
            })?;
            for request in &entries {
                let queued_here = self
                    .requests
                    .get(request)
                    .is_some_and(|r| r.process.is_none() && r.group.0 as usize == index);
                ensure(queued_here, 3, || {
                    format!("group {index} queues {request}, which is not waiting there")
                })?;
            }
        }
        for (id, p) in &self.processes {
            self.check_sessions(*id, p.sessions as usize, p.in_flight.len())?;
        }
        Ok(())
    }

    fn check_sessions(
        &self,
        id: ProcessId,
        sessions: usize,
        in_flight: usize,
    ) -> Result<(), Violation> {
        let p = &self.processes[&id];
        let concurrency = self.group(p.group).config.concurrency as usize;
        ensure(sessions == in_flight, 3, || {
            format!("{id} has {sessions} sessions, {in_flight} requests")
        })?;
        ensure(concurrency == 0 || sessions <= concurrency, 4, || {
            format!("{id} has {sessions} sessions, concurrency {concurrency}")
        })
    }

    /// Records a routing decision that did not pick a process with the fewest sessions.
    pub(crate) fn check_routing_choice(&mut self, chosen: ProcessId) {
        // Off in release builds (routing is the hot path) unless a test broke the engine on
        // purpose: the `sabotage` feature alone is on in every build of the engine's tests and
        // benches, so it must not switch the check on by itself.
        #[cfg(feature = "sabotage")]
        let sabotaged = self.sabotage.is_some();
        #[cfg(not(feature = "sabotage"))]
        let sabotaged = false;
        if !cfg!(debug_assertions) && !sabotaged {
            return;
        }
        let p = &self.processes[&chosen];
        let group = self.group(p.group);
        let fewest = group.routable.first().map(|key| key.0);
        if !p.has_room(group.config.concurrency) || Some(p.load()) != fewest {
            self.decision_violation = Some(Violation {
                invariant: 4,
                detail: format!(
                    "{chosen} got a request with {} sessions; the fewest was {fewest:?}",
                    p.load()
                ),
            });
        }
    }
}
