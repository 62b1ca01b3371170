//! Carrying out the engine's commands as the driver would: a spawn becomes ready after the
//! app's spawn time (or fails), a forward finishes after a service time (or crashes the
//! process), a kill exits after the shutdown time (at once when forced), rejections and
//! failures answer their clients. Nothing here decides anything about the pool.

use crate::events::EventKind;
use crate::model::{AppProcess, AppState, Ending, ProcessRecord};
use crate::scenario::SpawnFailure;
use crate::sim::{quiet_panics, Simulation, GROUP};
use ferry_engine::{
    Command, GroupId, Input, Instant, KillMode, KillReason, ProcessId, RejectReason, RequestId,
};
use rand::Rng;

impl Simulation<'_> {
    /// The OS process is gone: record its life. False if it was gone already.
    pub(crate) fn process_gone(&mut self, id: ProcessId, ending: Ending) -> bool {
        let Some(process) = self.processes.remove(&id) else {
            return false;
        };
        let ending = if process.idle_shutdown && ending == Ending::Stopped {
            Ending::IdleShutdown
        } else {
            ending
        };
        self.finished
            .push(ProcessRecord::of(&process, Some(self.now), ending));
        true
    }

    /// Hands one input to the engine and carries out every command it gives back.
    pub(crate) fn deliver(&mut self, input: Input) {
        if self.violation.is_some() {
            return; // the engine may be broken; the run is over
        }
        let now = Instant::from_nanos(self.now);
        let engine = &mut self.engine;
        let handled = quiet_panics(|| engine.handle(now, input));
        if let Err(message) = handled {
            return self.violate(format!("the engine panicked: {message}"));
        }
        self.drain_commands();
    }

    pub(crate) fn drain_commands(&mut self) {
        let mut commands = std::mem::take(&mut self.commands);
        commands.extend(std::iter::from_fn(|| self.engine.poll_command()));
        for command in commands.drain(..) {
            self.carry_out(command);
        }
        self.commands = commands;
    }

    /// The engine stopped `process` for idleness: its life ends as an idle shutdown, and the
    /// time it sat unused counts toward `idle_shutdown_after`.
    fn note_idle_shutdown(&mut self, process: ProcessId) {
        let Some(p) = self.processes.get_mut(&process) else {
            return;
        };
        p.idle_shutdown = true;
        let idle = self.now - p.last_use_nanos;
        self.idle_after_nanos = Some(match self.idle_after_nanos {
            Some((least, most)) => (least.min(idle), most.max(idle)),
            None => (idle, idle),
        });
    }

    pub(crate) fn carry_out(&mut self, command: Command) {
        match command {
            Command::Spawn { group, process, .. } => self.spawn(group, process),
            Command::Forward { request, process } => self.forward(request, process),
            Command::Reject { request, reason } => {
                let Some(open) = self.requests.end(request) else {
                    return self.violate(format!("rejected {request}, which is not open"));
                };
                if let Some(process) = open.process {
                    self.violate(format!(
                        "rejected {request}, already forwarded to {process}"
                    ));
                }
                self.counts.rejected += 1;
                match reason {
                    RejectReason::QueueFull => self.counts.rejected_queue_full += 1,
                    RejectReason::SpawnFailing { .. } => self.counts.rejected_spawn_failing += 1,
                    RejectReason::ShuttingDown => self.counts.rejected_shutting_down += 1,
                    RejectReason::QueueTimeout => self.counts.rejected_queue_timeout += 1,
                    // The simulated server never runs out of its own resources.
                    RejectReason::OutOfResources { .. } => {}
                    RejectReason::UnknownGroup { group } => {
                        self.violate(format!("{request} arrived for unknown {group}"))
                    }
                }
                self.rejection_latency
                    .saturating_record(self.now - open.sent_at_nanos);
                self.client_answered(&open, true);
            }
            Command::Fail {
                request, process, ..
            } => {
                let Some(open) = self.requests.end(request) else {
                    return self.violate(format!("failed {request}, which is not open"));
                };
                if open.process != Some(process) {
                    self.violate(format!(
                        "failed {request} on {process}, but it was on {:?}",
                        open.process
                    ));
                }
                if let Some(p) = self.processes.get_mut(&process) {
                    p.in_flight -= 1;
                }
                self.counts.failed += 1;
                self.client_answered(&open, false);
            }
            Command::TimeOut { request, process } => {
                let Some(open) = self.requests.end(request) else {
                    return self.violate(format!("timed out {request}, which is not open"));
                };
                if open.process != Some(process) {
                    self.violate(format!(
                        "timed out {request} on {process}, but it was on {:?}",
                        open.process
                    ));
                }
                if let Some(p) = self.processes.get_mut(&process) {
                    p.in_flight -= 1;
                }
                self.counts.failed += 1;
                self.counts.timed_out += 1;
                self.client_answered(&open, false);
            }
            Command::Kill {
                process,
                mode,
                reason,
            } => {
                if reason == KillReason::Idle && mode == KillMode::Graceful {
                    self.note_idle_shutdown(process);
                }
                self.kill(process, mode)
            }
            // A report for the operator; the simulated world has nothing to do.
            Command::RestartReport { .. } => {}
            Command::ShutdownComplete => {
                self.shutdown_completes += 1;
                if self.shutdown_completes > 1 {
                    self.violate("ShutdownComplete was sent twice".into());
                }
            }
        }
    }

    pub(crate) fn spawn(&mut self, group: GroupId, process: ProcessId) {
        if group != GROUP {
            return self.violate(format!("spawn for unknown {group}"));
        }
        // The engine allocates process ids in increasing order and never reuses one.
        if process.0 <= self.last_process_id {
            return self.violate(format!(
                "{process} spawned twice (or its id went backwards)"
            ));
        }
        self.last_process_id = process.0;
        self.processes
            .insert(process, AppProcess::new(process, self.now));
        let app = &self.scenario.app;
        let in_window = app
            .fail_spawns
            .as_ref()
            .filter(|w| w.from.0 <= self.now && self.now < w.until.0);
        let failure = if !self.faults_on {
            None
        } else if let Some(window) = in_window {
            Some(window.how)
        } else if app.spawn_failure_probability > 0.0
            && self.rng_app.random_bool(app.spawn_failure_probability)
        {
            Some(SpawnFailure::Exit)
        } else {
            None
        };
        let alone = self.spawn_time.sample(&mut self.rng_app);
        // Fixed at the start from the spawns already under way: a simplification of CPU
        // sharing that matches the measured start times of a group started together.
        let others = self
            .processes
            .values()
            .filter(|p| p.state == AppState::Spawning && p.id != process)
            .count();
        let slowdown = 1.0 + app.spawn_contention * others as f64;
        let spawn_time = (alone as f64 * slowdown) as u64;
        let (at, kind) = match failure {
            None => (self.now + spawn_time, EventKind::SpawnReady { process }),
            Some(SpawnFailure::Exit) => (self.now + spawn_time, EventKind::SpawnExit { process }),
            Some(SpawnFailure::Exec) => (self.now, EventKind::SpawnExecFailed { process }),
        };
        if failure.is_some() {
            self.counts.injected_spawn_failures += 1;
        }
        self.queue.schedule(at, kind);
    }

    pub(crate) fn forward(&mut self, request: RequestId, process: ProcessId) {
        let fit = match self.processes.get(&process) {
            None => Err("which has exited or never existed"),
            Some(p) if p.state != AppState::Ready => Err("which is not ready"),
            Some(p) if p.kill.is_some() => Err("which was told to stop"),
            Some(_) => Ok(()),
        };
        if let Err(why) = fit {
            return self.violate(format!("forwarded {request} to {process}, {why}"));
        }
        let Some(open) = self.requests.forward(request, process) else {
            return self.violate(format!(
                "forwarded {request}, which is not open or is in flight"
            ));
        };
        self.queue_wait
            .saturating_record(self.now - open.sent_at_nanos);
        let p = self.processes.get_mut(&process).expect("checked above");
        p.in_flight += 1;
        p.last_use_nanos = self.now;
        self.forwarded_total += 1;
        // A logged duration already holds the overhead a drawn service time leaves out.
        let service_time = match open.service_nanos {
            Some(logged) => logged,
            None => {
                self.service_time.sample(&mut self.rng_app)
                    + self.scenario.app.request_overhead.as_nanos()
            }
        };
        let hang_probability = self.scenario.app.hang_probability;
        if self.faults_on && hang_probability > 0.0 && self.rng_app.random_bool(hang_probability) {
            let p = self.processes.get_mut(&process).expect("checked above");
            self.counts.injected_hangs += u64::from(!p.hung);
            p.hung = true;
        }
        let crash_every = self.scenario.app.crash_every;
        let kind = if self.faults_on
            && crash_every > 0
            && self.forwarded_total.is_multiple_of(crash_every)
        {
            EventKind::CrashWhileServing { process }
        } else {
            EventKind::ServiceDone { request, process }
        };
        self.queue.schedule(self.now + service_time, kind);
    }

    pub(crate) fn kill(&mut self, process: ProcessId, mode: KillMode) {
        let now = self.now;
        let Some(p) = self.processes.get_mut(&process) else {
            return self.violate(format!(
                "kill of {process}, which has exited or never existed"
            ));
        };
        let (at, forced) = match mode {
            KillMode::Force => (now, true),
            KillMode::Graceful if p.kill.is_some() => return, // already on its way out
            KillMode::Graceful if p.hung => {
                p.kill = Some(mode);
                return; // a stopped process does not act on SIGTERM
            }
            KillMode::Graceful => (now + self.shutdown_time.sample(&mut self.rng_app), false),
        };
        if p.kill != Some(KillMode::Force) {
            p.kill = Some(mode);
        }
        // The earliest exit wins; a later one finds the process gone.
        self.queue.schedule(at, EventKind::Exit { process, forced });
    }

    pub(crate) fn violate(&mut self, message: String) {
        if self.violation.is_none() {
            let at = crate::duration::SimDuration(self.now);
            self.violation = Some(format!("at {at}: {message}"));
        }
    }
}
