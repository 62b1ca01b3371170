//! Rolling restarts, and the rule that they never reduce serving capacity (invariant 9).
//!
//! A restart bumps the group's generation: every ready process of an older one is *outdated*
//! and is replaced one for one, and processes still spawning the old code are stopped at once
//! (they serve nobody yet). The rule:
//!
//! - **An outdated process goes only after its replacement is ready.** A new process that
//!   becomes ready hands over: the most idle outdated process leaves rotation (stopped if
//!   idle, else it drains). Until then the old generation serves at full size.
//! - **A full pool surges by one.** Where `max_pool_size` leaves no room, a restart may run
//!   one process beyond it — only for a replacement, and one at a time over the whole pool —
//!   so a pool of one restarts without a moment with nothing to serve. No other spawn may use
//!   that slot: the pool is back within `max_pool_size` once the handed-over process exits.
//!   (Freeing room by stopping an old process first, as before, cost a full pool one process
//!   of capacity for as long as the new code took to start, and a pool of one everything.)
//! - **A restart onto code that cannot start fails, and nothing else.** A start failure of a
//!   new-generation process while outdated ones remain marks the restart failed, with the
//!   error, reported once ([`Command::RestartReport`]) and in the status: the old generation
//!   goes on serving at full size, and the start failures back off as any others
//!   (`crate::crash_policy`), one probe at a time. Should a later probe start, the restart
//!   resumes and is reported done when no outdated process is left serving.
//! - A new restart is a new deploy: it ends the backoff of the one before.
//!
//! A process over `memory_limit_bytes` is replaced the same way, one for one, its replacement
//! ready first: to the pool it is outdated (`Process::outdated`).
//!
//! Invariant 9 is checked as the handover is decided: an outdated ready process is retired
//! for a restart only against a new process that became ready since.

use crate::engine::Engine;
use crate::ids::{GroupId, ProcessId};
use crate::io::{Command, KillMode};
use crate::process::ProcessState;
use crate::reasons::KillReason;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// Where a group's latest restart is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum RestartOutcome {
    /// Outdated processes are still being replaced.
    InProgress,
    /// Every outdated process has handed over to a new one.
    Done,
    /// A new process could not start; the old generation keeps serving. `error` is the
    /// start failure.
    Failed {
        /// The start failure, as the status's last error names it.
        error: String,
    },
}

/// A group's latest restart: the generation it started and where it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartStatus {
    /// The group's generation the restart began; processes of older ones are replaced.
    pub generation: u32,
    /// Where it is.
    pub outcome: RestartOutcome,
}

impl Engine {
    /// Replaces every process of the group: ready ones keep serving until a new one is ready
    /// to take over; ones still spawning old code are stopped.
    pub(crate) fn restart_group(&mut self, group_id: GroupId) {
        if self.shutdown.is_some() {
            return;
        }
        let group = self.group_mut(group_id);
        let old_generation = group.generation;
        group.generation += 1;
        group.restart = Some(RestartStatus {
            generation: group.generation,
            outcome: RestartOutcome::InProgress,
        });
        // New code: the failures of the old are no guide to it.
        group.backoff_until = None;
        group.failure_streak = 0;
        group.starts_failing = false;
        let members: Vec<ProcessId> = group.processes.iter().copied().collect();
        for id in members {
            let process = &self.processes[&id];
            match process.state {
                ProcessState::Spawning => {
                    self.stop_process(id, KillMode::Graceful, KillReason::Restart)
                }
                // Ready processes of an even older generation (a restart during a restart),
                // or over the memory limit, are counted already.
                ProcessState::Ready
                    if process.generation == old_generation && !process.over_memory_limit =>
                {
                    self.group_mut(group_id).outdated_ready += 1
                }
                ProcessState::Ready | ProcessState::Draining | ProcessState::Stopping => {}
            }
        }
        #[cfg(feature = "sabotage")]
        if self.sabotage == Some(crate::Sabotage::RetireBeforeReplacement) {
            // The old full-pool behaviour: make room by stopping an old process first.
            self.retire_one_outdated(group_id);
        }
        self.mark_dirty(group_id);
    }

    /// A process became ready: if it runs the current code while outdated ones serve, it is
    /// the replacement one of them was waiting for.
    pub(crate) fn hand_over(&mut self, id: ProcessId) {
        let process = &self.processes[&id];
        let group_id = process.group;
        let group = self.group(group_id);
        if process.generation < group.generation {
            self.group_mut(group_id).outdated_ready += 1;
        } else if group.outdated_ready > 0 {
            self.group_mut(group_id).handovers += 1;
            self.retire_one_outdated(group_id);
        }
    }

    /// The most idle outdated process leaves rotation, against a replacement that is ready.
    fn retire_one_outdated(&mut self, group_id: GroupId) {
        let group = self.group(group_id);
        let generation = group.generation;
        let oldest = group
            .processes
            .iter()
            .map(|id| (*id, &self.processes[id]))
            .filter(|(_, p)| p.state == ProcessState::Ready && p.outdated(generation))
            .min_by_key(|(id, p)| p.idle_key(*id))
            .map(|(id, _)| id);
        let Some(id) = oldest else {
            return;
        };
        let group = self.group_mut(group_id);
        if group.handovers == 0 {
            self.decision_violation = Some(crate::invariants::Violation {
                invariant: 9,
                detail: format!("{id} of an old generation left before a replacement was ready"),
            });
        }
        let group = self.group_mut(group_id);
        group.handovers = group.handovers.saturating_sub(1);
        let reason = match self.processes[&id].generation < generation {
            true => KillReason::Restart,
            false => KillReason::MemoryLimit,
        };
        self.retire(id, reason);
    }

    /// Room for a restart's replacement beyond `max_pool_size`: one process, while no other
    /// replacement uses it.
    pub(crate) fn surge_room(&self, group_id: GroupId) -> usize {
        let group = self.group(group_id);
        let owed = group.outdated_ready.saturating_sub(group.spawning);
        let limit = self.pool.max_pool_size + 1;
        usize::from(owed > 0 && self.processes.len() < limit)
    }

    /// Whether live processes may number `max_pool_size + 1` now: a restart's surge, while
    /// a process of an old generation is still live.
    pub(crate) fn surging(&self) -> bool {
        self.processes
            .values()
            .any(|p| p.outdated(self.group(p.group).generation))
    }

    /// A ready process above its group's memory limit is replaced as an outdated one is: it
    /// serves until its replacement is ready, then finishes its requests and goes.
    pub(crate) fn memory_measured(&mut self, id: ProcessId, bytes: u64) {
        let Some(process) = self.processes.get(&id) else {
            return;
        };
        let group_id = process.group;
        let group = self.group(group_id);
        let limit = group.config.memory_limit_bytes;
        let counted = process.outdated(group.generation);
        if limit == 0 || bytes <= limit || process.state != ProcessState::Ready || counted {
            return;
        }
        self.update_process(id, |p| p.over_memory_limit = true);
        self.group_mut(group_id).outdated_ready += 1;
        self.totals.memory_limit_replacements += 1;
        self.mark_dirty(group_id);
    }

    /// A process of the group never became ready: if it ran the code a restart brought while
    /// outdated processes still serve, the restart has failed.
    pub(crate) fn restart_start_failed(&mut self, group_id: GroupId, generation: u32, error: &str) {
        let group = self.group_mut(group_id);
        let Some(restart) = &mut group.restart else {
            return;
        };
        if restart.generation != generation || restart.outcome != RestartOutcome::InProgress {
            return;
        }
        restart.outcome = RestartOutcome::Failed {
            error: String::from(error),
        };
        let report = Command::RestartReport {
            group: group_id,
            generation,
            outcome: restart.outcome.clone(),
        };
        self.push(report);
    }

    /// Reports the group's restart done once no outdated process serves and the new code is
    /// known to start (a process of it is ready), or nothing was left to replace.
    pub(crate) fn check_restart_done(&mut self, group_id: GroupId) {
        let group = self.group(group_id);
        let Some(restart) = &group.restart else {
            return;
        };
        let replaced = group.outdated_ready == 0
            && match restart.outcome {
                RestartOutcome::Done => return,
                RestartOutcome::InProgress => group.ready > 0 || group.spawning == 0,
                RestartOutcome::Failed { .. } => group.ready > 0,
            };
        if !replaced || self.shutdown.is_some() {
            return;
        }
        let generation = restart.generation;
        let group = self.group_mut(group_id);
        group.handovers = 0;
        group.restart = Some(RestartStatus {
            generation,
            outcome: RestartOutcome::Done,
        });
        self.push(Command::RestartReport {
            group: group_id,
            generation,
            outcome: RestartOutcome::Done,
        });
    }
}
