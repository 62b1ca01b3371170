//! Feeding inputs to the engine and carrying out its commands.

use super::Server;
use crate::actions::{Actions, Context};
use crate::client::Client;
use ferry_engine::{Command, ProcessId, RejectReason, RequestId};

impl Server {
    /// Feeds queued inputs to the engine and carries out every command, until both are empty.
    pub(super) fn run_commands(&mut self) {
        loop {
            while let Some(command) = self.engine.poll_command() {
                self.execute(command);
            }
            match self.inputs.pop_front() {
                Some(input) => self.engine.handle(self.clock.now(), input),
                None => return,
            }
        }
    }

    pub(super) fn execute(&mut self, command: Command) {
        let pid = |process: &ProcessId| self.children.get(process).map(|c| c.process.pid);
        let pid = match &command {
            Command::Kill { process, .. } | Command::Fail { process, .. } => pid(process),
            _ => None,
        };
        // A line held back is not even formatted: in an overload that is time to answer in.
        let admitted = crate::decisions::per_request(&command).is_none_or(|(d, reason)| {
            self.decision_limiter
                .admit(std::time::Instant::now(), d, &reason)
        });
        if let Some((level, line)) = admitted
            .then(|| crate::decisions::log_line(&command, pid))
            .flatten()
        {
            self.log.at(level, &line);
        }
        match command {
            Command::Spawn {
                process, reason, ..
            } => {
                self.observer.spawned(reason);
                self.spawn(process)
            }
            Command::Forward { request, process } => self.forward(request, process),
            Command::Reject { request, reason } => self.reject(request, reason),
            Command::Fail {
                request, reason, ..
            } => {
                self.observer.failed(reason.as_str());
                self.fail_request(request)
            }
            Command::TimeOut { request, .. } => {
                self.observer
                    .failed(ferry_engine::KillReason::RequestTimeout.as_str());
                self.time_out_request(request)
            }
            Command::Kill {
                process,
                mode,
                reason,
            } => {
                self.observer.kill_sent(process, reason);
                if let Some(child) = self.children.get(&process) {
                    child.process.signal(mode == ferry_engine::KillMode::Force);
                } else {
                    self.observer.process_gone(process);
                    self.give_up_spawn(process);
                }
            }
            Command::RestartReport { outcome, .. } => self
                .log
                .line(&crate::status_report::restart_outcome_line(&outcome)),
            Command::ShutdownComplete => self.shutdown_complete = true,
        }
    }

    /// Runs `act` on the client connection of `request`, if it still has one.
    fn with_client_of(
        &mut self,
        request: RequestId,
        act: impl FnOnce(&mut Client, &mut Context, &mut Actions),
    ) {
        if let Some(key) = self.requests.get(&request).copied() {
            self.with_client(key, act);
        }
    }

    /// The engine rejected the request: 503, and the connection stays usable.
    fn reject(&mut self, request: RequestId, reason: RejectReason) {
        if self.requests.contains_key(&request) {
            self.observer.rejected(&reason);
        }
        self.with_client_of(request, |client, context, out| {
            client.reject(&reason, context, out)
        });
    }

    /// The app process died during the request: 502, or a cut connection if the response
    /// had begun.
    fn fail_request(&mut self, request: RequestId) {
        self.close_abandoned(request);
        let reason = "the app process handling this request died";
        self.with_client_of(request, |client, context, out| {
            client.end_with_error(request, 502, reason, context, out)
        });
    }

    /// The request ran for --max-request-time: 504 (or a cut connection if the response had
    /// begun); the engine stops its process.
    fn time_out_request(&mut self, request: RequestId) {
        self.close_abandoned(request);
        let reason = "the app did not answer within --max-request-time";
        self.with_client_of(request, |client, context, out| {
            client.end_with_error(request, 504, reason, context, out)
        });
    }
}
