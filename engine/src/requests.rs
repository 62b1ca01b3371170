//! Requests: arrival, routing to the least busy process, queueing, and the end of sessions.

use crate::engine::{Engine, Request};
use crate::ids::{GroupId, ProcessId, RequestId};
use crate::io::{Command, KillMode};
use crate::process::ProcessState;
use crate::reasons::{KillReason, RejectReason};
use crate::timers::Timer;

/// How a session ended, for the totals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SessionEnd {
    Served,
    Cancelled,
    Failed,
}

impl Engine {
    pub(crate) fn request_arrived(&mut self, group_id: GroupId, request: RequestId) {
        if self.requests.contains_key(&request) {
            debug_assert!(false, "{request} arrived twice");
            return;
        }
        self.totals.arrived += 1;
        if !self.has_group(group_id) {
            return self.reject(request, RejectReason::UnknownGroup { group: group_id });
        }
        if self.shutdown.is_some() {
            return self.reject(request, RejectReason::ShuttingDown);
        }
        let now = self.now;
        let fresh_from = self.fresh_from_now(group_id);
        let entry = Request {
            group: group_id,
            process: None,
            queued_at: now,
            started_at: now,
            upgraded: false,
            abandoned: false,
            fresh_from,
        };
        let group = self.group(group_id);
        // In always-restart mode no process that exists now may serve it.
        let process = match fresh_from {
            None => self.pick_process(group_id),
            Some(_) => None,
        };
        if let Some(process) = process {
            self.requests.insert(
                request,
                Request {
                    process: Some(process),
                    ..entry
                },
            );
            self.group_mut(group_id).demand.arrived(now);
            return self.start_session(request, process);
        }
        if group.active() == 0 && group.backing_off(now) && group.starts_failing {
            let error = group.last_spawn_error.clone().unwrap_or_default();
            return self.reject(request, RejectReason::SpawnFailing { error });
        }
        let limit = group.config.max_request_queue_size;
        #[cfg(feature = "sabotage")]
        let limit = if self.sabotage == Some(crate::Sabotage::IgnoreQueueLimit) {
            0
        } else {
            limit
        };
        if limit != 0 && group.queue.len() >= limit {
            return self.reject(request, RejectReason::QueueFull);
        }
        // Only requests the pool takes count toward the arrival rate: a flood turned away
        // with 503s (spawns failing, queue full) held the offered load, and the processes
        // kept for it, long after it ended (the swarm's shrink check, seed 682: 9175 such
        // 503s in 20 s).
        self.group_mut(group_id).demand.arrived(now);
        self.requests.insert(request, entry);
        self.group_mut(group_id).queue.push_back(request);
        let max_queue_time = self.group(group_id).config.max_request_queue_time;
        if !max_queue_time.is_zero() {
            self.timers
                .set(now + max_queue_time, Timer::QueueDeadline(request));
        }
        self.mark_dirty(group_id);
    }

    /// The ready process with room and the fewest sessions, most recently used among equals.
    fn pick_process(&self, group_id: GroupId) -> Option<ProcessId> {
        let routable = &self.group(group_id).routable;
        #[cfg(feature = "sabotage")]
        if self.sabotage == Some(crate::Sabotage::RouteToBusiest) {
            return routable.last().map(|key| key.2);
        }
        routable.first().map(|key| key.2)
    }

    /// Gives queued requests to processes with room, oldest request first.
    pub(crate) fn dispatch(&mut self, group_id: GroupId) {
        while let Some(&head) = self.group(group_id).queue.front() {
            // Only a group that has been in always-restart mode pays for the lookup.
            let fresh_from = match self.group(group_id).fresh_seen {
                true => self.requests.get(&head).and_then(|r| r.fresh_from),
                false => None,
            };
            #[cfg(feature = "sabotage")]
            let fresh_from =
                fresh_from.filter(|_| self.sabotage != Some(crate::Sabotage::RouteFreshToStale));
            let picked = match fresh_from {
                Some(from) => self.pick_fresh(group_id, from),
                None => self.pick_process(group_id),
            };
            let Some(process) = picked else {
                return;
            };
            let request = self
                .group_mut(group_id)
                .queue
                .pop_front()
                .expect("queue is not empty");
            let now = self.now;
            if let Some(entry) = self.requests.get_mut(&request) {
                entry.process = Some(process);
                entry.started_at = now;
            }
            self.start_session(request, process);
        }
    }

    /// Gives `request` (already recorded as served by `process_id`) a session on the process.
    fn start_session(&mut self, request: RequestId, process_id: ProcessId) {
        self.check_routing_choice(process_id);
        let fresh = self.needs_fresh(request, process_id);
        let now = self.now;
        if let Some(entry) = self.requests.get_mut(&request) {
            entry.started_at = now;
            let group = &self.groups[entry.group.0 as usize];
            let max_request_time = group.config.max_request_time;
            if !max_request_time.is_zero() {
                self.timers
                    .set(now + max_request_time, Timer::RequestDeadline(request));
            }
        }
        let Some(process) = self.update_process(process_id, |p| {
            p.sessions += 1;
            p.last_used = now;
            p.in_flight.push(request);
        }) else {
            return;
        };
        let (group_id, assigned, state) = (process.group, process.assigned(), process.state);
        self.mark_dirty(group_id);
        self.push(Command::Forward {
            request,
            process: process_id,
        });
        // During a shutdown a fresh request may be served by any ready process, and every
        // process leaves for the shutdown: none is retired for always-restart mode then.
        if fresh && state == ProcessState::Ready && self.shutdown.is_none() {
            // Its one request: it leaves once that ends, and the next request gets its own.
            self.drain(process_id, KillReason::AlwaysRestart);
            self.mark_dirty(group_id);
            return;
        }
        let max_requests = self.group(group_id).config.max_requests;
        if max_requests != 0 && assigned >= max_requests && state == ProcessState::Ready {
            // Retire it now, not after its last request: its replacement starts while it drains.
            self.drain(process_id, KillReason::MaxRequests);
            self.group_mut(group_id).replacements_owed += 1;
            self.mark_dirty(group_id);
        }
    }

    /// Ends the session of an in-flight request.
    pub(crate) fn end_session(&mut self, request: RequestId, end: SessionEnd) {
        let Some(entry) = self.requests.remove(&request) else {
            return;
        };
        let Some(process_id) = entry.process else {
            // Still queued: it has no session to end (a finish cannot come before a forward).
            self.requests.insert(request, entry);
            return;
        };
        // Whatever the app did, its client had left: nobody was served.
        let end = if entry.abandoned {
            SessionEnd::Cancelled
        } else {
            end
        };
        match end {
            SessionEnd::Served => self.totals.served += 1,
            SessionEnd::Cancelled => self.totals.cancelled += 1,
            SessionEnd::Failed => self.totals.failed += 1,
        }
        let now = self.now;
        if !entry.upgraded {
            let length = now.saturating_since(entry.started_at);
            self.group_mut(entry.group)
                .demand
                .session_ended(now, length);
        }
        self.mark_dirty(entry.group);
        let Some(process) = self.update_process(process_id, |p| {
            p.sessions -= 1;
            p.upgraded -= u32::from(entry.upgraded);
            p.processed += 1;
            p.last_used = now;
            if let Some(at) = p.in_flight.iter().position(|r| *r == request) {
                p.in_flight.swap_remove(at);
            }
        }) else {
            return;
        };
        let (group_id, state, sessions) = (process.group, process.state, process.sessions);
        let idle_timer_armed = process.idle_timer_armed;
        match (state, sessions) {
            (ProcessState::Ready, 0) if !idle_timer_armed => self.arm_idle_timer(process_id),
            (ProcessState::Draining, 0) => self.stop_drained(process_id),
            _ => {}
        }
        self.dispatch(group_id);
        self.note_maybe_idle(process_id);
    }

    pub(crate) fn client_gone(&mut self, request: RequestId) {
        let Some(entry) = self.requests.get(&request).copied() else {
            return;
        };
        if entry.process.is_some() {
            return self.end_session(request, SessionEnd::Cancelled);
        }
        let queue = &mut self.group_mut(entry.group).queue;
        if let Some(at) = queue.iter().position(|r| *r == request) {
            queue.remove(at);
        }
        self.mark_dirty(entry.group);
        #[cfg(feature = "sabotage")]
        if self.sabotage == Some(crate::Sabotage::ForgetCancelledRequest) {
            return;
        }
        self.requests.remove(&request);
        self.totals.cancelled += 1;
        if self.group(entry.group).fresh_seen {
            // A request waiting for a fresh process may have held up others behind it.
            self.dispatch(entry.group);
        }
    }

    /// The client left an in-flight request that its process still works on: the session
    /// stays, so that the process is not handed another request while it is busy (a queued
    /// request simply leaves, as with [`Engine::client_gone`]).
    pub(crate) fn client_abandoned(&mut self, request: RequestId) {
        let Some(entry) = self.requests.get_mut(&request) else {
            return;
        };
        if entry.process.is_none() {
            return self.client_gone(request);
        }
        entry.abandoned = true;
    }

    /// The driver could not forward `request` for a reason of its own: its session is
    /// undone (the process never saw it) and it is rejected.
    pub(crate) fn forward_failed(&mut self, request: RequestId, error: alloc::string::String) {
        let Some(Request {
            group: group_id,
            process: Some(process_id),
            upgraded,
            ..
        }) = self.requests.get(&request).copied()
        else {
            return;
        };
        self.requests.remove(&request);
        self.mark_dirty(group_id);
        let now = self.now;
        let Some(process) = self.update_process(process_id, |p| {
            // Idle from now, as after a session that ended.
            p.last_used = now;
            p.sessions -= 1;
            p.upgraded -= u32::from(upgraded);
            if let Some(at) = p.in_flight.iter().position(|r| *r == request) {
                p.in_flight.swap_remove(at);
            }
        }) else {
            return;
        };
        let (state, sessions, idle_timer_armed) =
            (process.state, process.sessions, process.idle_timer_armed);
        self.reject(request, RejectReason::OutOfResources { error });
        match (state, sessions) {
            (ProcessState::Ready, 0) if !idle_timer_armed => self.arm_idle_timer(process_id),
            (ProcessState::Draining, 0) => self.stop_drained(process_id),
            _ => {}
        }
        self.dispatch(group_id);
        self.note_maybe_idle(process_id);
    }

    /// The session became a tunnel: what it took the app to answer counts as its service
    /// time, and from now on it counts neither for routing nor for scaling.
    pub(crate) fn session_upgraded(&mut self, request: RequestId) {
        let now = self.now;
        let Some(entry) = self.requests.get_mut(&request) else {
            return;
        };
        let Some(process_id) = entry.process else {
            return;
        };
        if entry.upgraded {
            return;
        }
        entry.upgraded = true;
        let (group_id, started_at) = (entry.group, entry.started_at);
        self.group_mut(group_id)
            .demand
            .session_ended(now, now.saturating_since(started_at));
        self.update_process(process_id, |p| p.upgraded += 1);
        self.mark_dirty(group_id);
        // Routing ignores the tunnel now: a request waiting may fit on this process.
        self.dispatch(group_id);
    }

    pub(crate) fn process_refused(&mut self, request: RequestId) {
        let Some(Request {
            group: group_id,
            process: Some(process_id),
            upgraded,
            ..
        }) = self.requests.get(&request).copied()
        else {
            return;
        };
        self.update_process(process_id, |p| {
            // The session never started for the app: it is undone, not counted.
            p.sessions -= 1;
            p.upgraded -= u32::from(upgraded);
            if let Some(at) = p.in_flight.iter().position(|r| *r == request) {
                p.in_flight.swap_remove(at);
            }
        });
        let state = self.processes[&process_id].state;
        if matches!(state, ProcessState::Ready | ProcessState::Draining) {
            // No new requests go there; sessions it still has may finish. Its exit, which
            // says what happened to it, is counted as a crash (see `crate::crash_policy`).
            if state == ProcessState::Ready {
                self.group_mut(group_id).failed_unreplaced += 1;
            }
            self.update_process(process_id, |p| p.refused = true);
            self.retire(process_id, KillReason::ConnectionRefused);
            if self.processes[&process_id].state == ProcessState::Draining {
                // Drained for another reason before: the refusal is why it goes now.
                self.drain(process_id, KillReason::ConnectionRefused);
                if self.processes[&process_id].sessions == 0 {
                    self.stop_drained(process_id);
                }
            }
            self.mark_dirty(group_id);
        }
        if self.requests.get(&request).is_some_and(|r| r.abandoned) {
            // Its client has left: nobody waits for another process to serve it.
            self.requests.remove(&request);
            self.totals.cancelled += 1;
            self.dispatch(group_id);
            self.mark_dirty(group_id);
            return;
        }
        // During a shutdown too it waits for another process (`wind_down` rejects it if
        // none is left to serve it).
        let limit = self.group(group_id).config.max_request_queue_size;
        if limit != 0 && self.group(group_id).queue.len() >= limit {
            self.requests.remove(&request);
            return self.reject(request, RejectReason::QueueFull);
        }
        let now = self.now;
        if let Some(entry) = self.requests.get_mut(&request) {
            entry.process = None;
            entry.queued_at = now;
            entry.upgraded = false;
        }
        self.group_mut(group_id).queue.push_front(request);
        let max_queue_time = self.group(group_id).config.max_request_queue_time;
        if !max_queue_time.is_zero() {
            self.timers
                .set(now + max_queue_time, Timer::QueueDeadline(request));
        }
        self.dispatch(group_id);
        self.mark_dirty(group_id);
    }

    /// `max_request_time` may be up for an in-flight request: it is answered 504, and its
    /// process — stuck, or too slow to trust with more — is stopped (graceful, then forced
    /// after `kill_timeout`) and replaced. Its other requests fail when it exits.
    pub(crate) fn request_deadline(&mut self, request: RequestId) {
        #[cfg(feature = "sabotage")]
        if self.sabotage == Some(crate::Sabotage::IgnoreRequestDeadlines) {
            return;
        }
        let Some(entry) = self.requests.get(&request).copied() else {
            return;
        };
        let Some(process_id) = entry.process else {
            return;
        };
        let max_request_time = self.group(entry.group).config.max_request_time;
        if max_request_time.is_zero() || entry.started_at + max_request_time > self.now {
            return; // started again since (handed back by a refusal)
        }
        self.requests.remove(&request);
        self.totals.failed += 1;
        self.totals.timed_out += 1;
        self.mark_dirty(entry.group);
        self.update_process(process_id, |p| {
            p.sessions -= 1;
            p.upgraded -= u32::from(entry.upgraded);
            if let Some(at) = p.in_flight.iter().position(|r| *r == request) {
                p.in_flight.swap_remove(at);
            }
        });
        self.push(Command::TimeOut {
            request,
            process: process_id,
        });
        let seconds = max_request_time.as_secs_f64();
        self.note_error(
            entry.group,
            alloc::format!(
                "a request ran longer than max_request_time ({seconds} s); its process was stopped"
            ),
        );
        if self.processes.get(&process_id).map(|p| p.state) == Some(ProcessState::Ready) {
            self.group_mut(entry.group).failed_unreplaced += 1;
        }
        // Asked to stop, a process finishes its requests first, the hung one included, so
        // it would hold its slot until the kill timeout for a request whose client has had
        // its 504. With no other request on it, nothing is lost by killing it at once.
        let mode = match self.processes.get(&process_id) {
            Some(p) if p.sessions == 0 => KillMode::Force,
            _ => KillMode::Graceful,
        };
        self.stop_process(process_id, mode, KillReason::RequestTimeout);
        self.mark_dirty(entry.group);
    }

    /// `max_request_queue_time` may be up for a queued request: it is answered 503.
    pub(crate) fn queue_deadline(&mut self, request: RequestId) {
        #[cfg(feature = "sabotage")]
        if self.sabotage == Some(crate::Sabotage::IgnoreRequestDeadlines) {
            return;
        }
        let Some(entry) = self.requests.get(&request).copied() else {
            return;
        };
        let max_queue_time = self.group(entry.group).config.max_request_queue_time;
        if entry.process.is_some() || entry.queued_at + max_queue_time > self.now {
            return;
        }
        let queue = &mut self.group_mut(entry.group).queue;
        if let Some(at) = queue.iter().position(|r| *r == request) {
            queue.remove(at);
        }
        self.requests.remove(&request);
        self.mark_dirty(entry.group);
        self.reject(request, RejectReason::QueueTimeout);
        if self.group(entry.group).fresh_seen {
            // As for a cancelled one: it may have waited for a fresh process ahead of
            // requests that a process with room can take.
            self.dispatch(entry.group);
        }
    }
}
