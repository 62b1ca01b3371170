//! The crash policy: what a failure of an app process does to its group's spawning.
//!
//! Two kinds of failure tell different stories, and are treated differently:
//!
//! - **A start failure** — a process that never became ready (exec failed, it exited while
//!   starting, it missed `start_timeout`). The app may not start at all (a broken deploy, a
//!   missing dependency): spawning again at once would likely fail again, and at full speed it
//!   would load the machine for nothing. So start failures back off: the first is retried at
//!   once, each further one doubles the pause, from `backoff_initial` up to `backoff_max`,
//!   and while nothing serves, waiting requests are answered 503 naming the error. The streak
//!   ends as soon as a process becomes ready: the app starts again.
//! - **A crash after ready** — a process that had become ready exits (killed, or an app that
//!   dies every N requests). It proved that the app starts, so it is replaced at once: no
//!   backoff, `min_instances` is honoured, and the pool is not left empty while requests wait
//!   (invariant 8). What bounds a crash storm is a spawn-rate limit on these replacements
//!   only: a whole pool (`max_pool_size`) may be replaced at once, and beyond that one
//!   replacement per `crash_respawn_interval`, so an app that dies as soon as it is ready
//!   cannot fork-bomb the machine. The limit is a virtual schedule (the generic cell rate
//!   algorithm): one instant per group, no history.
//!
//! A group's last error stays in its status until the group is healthy again: a process is
//! ready and `stable_uptime` has passed without a failure.

use crate::engine::Engine;
use crate::ids::GroupId;
use crate::lifecycle::backoff_delay;
use crate::reasons::RejectReason;
use crate::time::Instant;
use crate::timers::Timer;
use alloc::string::String;

impl Engine {
    /// A process of the group never became ready.
    pub(crate) fn record_start_failure(
        &mut self,
        group_id: GroupId,
        generation: u32,
        error: String,
    ) {
        self.totals.spawn_failures += 1;
        self.restart_start_failed(group_id, generation, &error);
        self.note_error(group_id, error.clone());
        let now = self.now;
        let (initial, max) = (self.pool.backoff_initial, self.pool.backoff_max);
        let group = self.group_mut(group_id);
        group.starts_failing = true;
        group.failure_streak += 1;
        let delay = backoff_delay(group.failure_streak, initial, max);
        if delay.is_zero() {
            return;
        }
        let until = now + delay;
        group.backoff_until = Some(until);
        let reject_waiting = group.active() == 0;
        self.timers.set(until, Timer::BackoffOver(group_id));
        if reject_waiting {
            // Waiting would mean waiting for the backoff and a spawn that is likely to fail
            // again: say why at once instead.
            while let Some(request) = self.group_mut(group_id).queue.pop_front() {
                self.requests.remove(&request);
                self.reject(
                    request,
                    RejectReason::SpawnFailing {
                        error: error.clone(),
                    },
                );
            }
        }
    }

    /// A process of the group that had become ready exited without being asked to.
    pub(crate) fn record_crash(&mut self, group_id: GroupId, error: String) {
        self.totals.crashes += 1;
        self.note_error(group_id, error);
        #[cfg(feature = "sabotage")]
        if self.sabotage == Some(crate::Sabotage::BackOffAfterCrash) {
            // Roughly the policy this one replaced: a young crash paused spawning.
            let until = self.now + self.pool.backoff_initial;
            self.group_mut(group_id).backoff_until = Some(until);
            self.timers.set(until, Timer::BackoffOver(group_id));
            return;
        }
        let interval = self.pool.crash_respawn_interval;
        if interval.is_zero() {
            return;
        }
        let now = self.now;
        let burst = self.pool.max_pool_size.max(1) as u32;
        let tolerance = interval.saturating_mul(burst - 1);
        let group = self.group_mut(group_id);
        let due = group.crash_schedule.max(now);
        group.crash_schedule = due + interval;
        let allowed_at = Instant::from_nanos(
            due.as_nanos()
                .saturating_sub(tolerance.as_nanos().min(u128::from(u64::MAX)) as u64),
        );
        if allowed_at > now {
            group.crash_pause_until = Some(allowed_at);
            self.timers.set(allowed_at, Timer::BackoffOver(group_id));
        }
    }

    /// Keeps the failure as the group's last error until the group is healthy again.
    pub(crate) fn note_error(&mut self, group_id: GroupId, error: String) {
        let now = self.now;
        let clear_at = now + self.pool.stable_uptime;
        let group = self.group_mut(group_id);
        group.last_spawn_error = Some(error);
        group.last_failure_at = Some(now);
        self.timers.set(clear_at, Timer::ErrorHealed(group_id));
    }

    /// Clears the group's last error if it is healthy: a process is ready and `stable_uptime`
    /// has passed since the last failure. Runs when that time is up and when a process
    /// becomes ready.
    pub(crate) fn clear_error_if_healed(&mut self, group_id: GroupId) {
        let now = self.now;
        let stable_uptime = self.pool.stable_uptime;
        let group = self.group_mut(group_id);
        let quiet = group
            .last_failure_at
            .is_none_or(|at| now.saturating_since(at) >= stable_uptime);
        if quiet && group.ready > 0 && !group.starts_failing {
            group.last_spawn_error = None;
        }
    }
}
