//! The engine's timers: one heap of deadlines, checked lazily.
//!
//! Entries are never removed early: when one fires, its handler checks that it still applies
//! (the process may be gone, or used since). This keeps every state change O(log n) or O(1),
//! at the cost of an occasional early wake-up for the caller.

use crate::ids::{GroupId, ProcessId, RequestId};
use crate::time::Instant;
use alloc::collections::BinaryHeap;
use core::cmp::Reverse;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    /// The process may have been idle for `pool_idle_time`.
    Idle(ProcessId),
    /// The process may still be spawning after `start_timeout`.
    StartTimeout(ProcessId),
    /// The process may still be alive `kill_timeout` after a graceful kill.
    KillTimeout(ProcessId),
    /// The group's demand may need another look (its averages moved, its oldest queued request
    /// has waited a spawn time, or a past need stopped counting).
    Demand(GroupId),
    /// The group's spawn backoff may be over.
    BackoffOver(GroupId),
    /// The group may be healthy again: no failure for `stable_uptime`.
    ErrorHealed(GroupId),
    /// The request may have run for `max_request_time`.
    RequestDeadline(RequestId),
    /// The request may have waited in the queue for `max_request_queue_time`.
    QueueDeadline(RequestId),
    /// In-flight requests have had `shutdown_timeout` to finish.
    ShutdownDeadline,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, Timer)>>,
}

impl Timers {
    pub fn set(&mut self, at: Instant, timer: Timer) {
        self.heap.push(Reverse((at, timer)));
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Removes and returns the earliest timer due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse((_, t))| t),
            _ => None,
        }
    }
}
