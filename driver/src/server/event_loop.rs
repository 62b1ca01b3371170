//! The event loop: poll, dispatch each event by its token, run the timers, write the round's
//! output; and the loop's own sources: the listener, signals, stopping.

use super::{Entry, Server, ADMIN, FIRST_ENTRY, SIGNALS};
use crate::actions::Conn;
use crate::resources::is_exhaustion;
use ferry_engine::{Input, ProcessId};
use mio::{Events, Token};
use std::process::ExitCode;
use std::time::Duration;

/// How long responses already written may take to reach slow clients after shutdown.
const FINAL_FLUSH_TIME: Duration = Duration::from_secs(5);

impl Server {
    /// The event loop. Returns the exit code once shutdown has completed.
    pub(super) fn run(&mut self) -> ExitCode {
        let mut events = Events::with_capacity(1024);
        self.run_commands();
        let mut flush_deadline = None;
        loop {
            if self.shutdown_complete {
                // The last responses may still sit in slow clients' buffers: give them a
                // bounded moment to go out before the process exits.
                let deadline = *flush_deadline
                    .get_or_insert_with(|| std::time::Instant::now() + FINAL_FLUSH_TIME);
                if !self.clients_have_output() || std::time::Instant::now() >= deadline {
                    break;
                }
            }
            let timeout = match flush_deadline {
                Some(deadline) => {
                    Some(deadline.saturating_duration_since(std::time::Instant::now()))
                }
                None => self.next_timeout(),
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    self.log.line(&format!("poll failed: {e}"));
                    return ExitCode::from(1);
                }
            }
            for event in events.iter() {
                match event.token() {
                    token if crate::listeners::TOKENS.contains(&token) => self.accept_clients(),
                    ADMIN => self.accept_admin(),
                    SIGNALS => self.on_signal(),
                    t if crate::observer::Observer::owns(t) => {
                        let (engine, registry) = (&self.engine, self.poll.registry());
                        self.observer.event(t, registry, || engine.status());
                    }
                    Token(t) => self.on_entry_event(t - FIRST_ENTRY, event),
                }
                self.run_commands();
            }
            self.on_timers();
            self.run_commands();
            self.flush_pending();
            self.observed(|o| o.end_of_round());
            // Taken back as soon as a descriptor is free again.
            self.reserve_fd.restore();
        }
        for (level, line) in self.decision_limiter.flush(std::time::Instant::now(), true) {
            self.log.at(level, &line);
        }
        println!("Stopping web server... done!");
        ExitCode::SUCCESS
    }

    /// Writes every output of this round; writing can cause more (a response completing
    /// frees a process for a queued request), so until there is none.
    pub(super) fn flush_pending(&mut self) {
        while !self.pending_flushes.is_empty() {
            let flushes = std::mem::take(&mut self.pending_flushes);
            // Requests to the apps first: a process that waits for its next request is idle
            // capacity, a client that waits for its response is not (under `wrk -c50` on two
            // WSGI processes, 35.8-41.1k req/s against 28.4-37.7k, the CPUs idle 9-12% of
            // the time against 15-16%).
            for flush in &flushes {
                if let Conn::Backend(key) = flush {
                    self.flush_backend_now(*key);
                }
            }
            for flush in flushes {
                if let Conn::Client(key) = flush {
                    self.flush_client_now(key);
                }
            }
            self.run_commands();
        }
    }

    pub(super) fn clients_have_output(&self) -> bool {
        self.entries.iter().any(|(_, entry)| match entry {
            Entry::Client(client) => !client.out.is_empty() || client.stream.output_pending(),
            _ => false,
        })
    }

    pub(super) fn next_timeout(&self) -> Option<Duration> {
        let now = std::time::Instant::now();
        let engine = self.engine.poll_timeout().map(|at| self.clock.until(at));
        let probe = self
            .children
            .values()
            .filter_map(|c| c.probe)
            .map(|(at, _)| at.saturating_duration_since(now))
            .min();
        let deadline = self
            .deadlines
            .first()
            .map(|(at, _)| at.saturating_duration_since(now));
        let watcher = Some(self.watcher.next_check().saturating_duration_since(now));
        let accept_retry = [self.accept_pause.retry_at(), self.next_spawn_retry()]
            .into_iter()
            .flatten()
            .min()
            .map(|at| at.saturating_duration_since(now));
        let ops_deadline = self
            .observer
            .next_deadline()
            .map(|at| at.saturating_duration_since(now));
        let log_summary = self
            .decision_limiter
            .next_deadline()
            .map(|at| at.saturating_duration_since(now));
        // A timer is due "at" an instant: never wake before it, or the loop spins.
        [
            engine,
            probe,
            deadline,
            watcher,
            accept_retry,
            ops_deadline,
            log_summary,
        ]
        .into_iter()
        .flatten()
        .min()
        .map(|d| d + Duration::from_micros(50))
    }

    pub(super) fn on_timers(&mut self) {
        let now = std::time::Instant::now();
        for (level, line) in self.decision_limiter.flush(now, false) {
            self.log.at(level, &line);
        }
        if self
            .engine
            .poll_timeout()
            .is_some_and(|at| at <= self.clock.now())
        {
            self.inputs.push_back(Input::Tick);
        }
        let due: Vec<ProcessId> = self
            .children
            .iter()
            .filter(|(_, c)| c.probe.is_some_and(|(at, _)| at <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.probe(id);
        }
        let due = now >= self.watcher.next_check();
        if let Some(reason) = self.watcher.check(now) {
            if !self.context.stopping {
                self.log
                    .line(&format!("Restarting the app processes: {reason}"));
                self.inputs
                    .push_back(Input::RestartGroup { group: self.group });
            }
        }
        let pids = self.children.iter().map(|(id, c)| (*id, c.process.pid));
        let measured = self.memory_watch.measure(now, pids);
        self.inputs.extend(measured);
        self.retry_spawns(now);
        if self.accept_pause.due(now) {
            // No event announces that descriptors are free again: look.
            self.accept_clients();
            self.accept_admin();
        }
        if let Some(on) = due.then(|| self.watcher.always_restart_changed()).flatten() {
            let what = if on {
                "on: each request gets a newly started process"
            } else {
                "off"
            };
            self.log.line(&format!("always_restart.txt: {what}"));
            self.inputs.push_back(Input::SetAlwaysRestart {
                group: self.group,
                on,
            });
        }
        self.observer.close_expired(now, self.poll.registry());
        while let Some(&(at, key)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.remove(&(at, key));
            self.client_deadline_passed(key, at);
        }
    }

    pub(super) fn on_signal(&mut self) {
        let mut signals: Vec<i32> = self.signals.pending().collect();
        let before = signals.len();
        signals.retain(|&s| s != signal_hook::consts::SIGUSR1);
        if signals.len() < before {
            if let Some(line) = self.observer.reopen_access_log() {
                self.log.line(&line);
            }
        }
        if signals.is_empty() {
            return;
        }
        if self.context.stopping {
            // A second Ctrl-C: do not wait for in-flight requests any longer.
            self.log
                .line("Second stop signal: killing app processes now");
            for child in self.children.values() {
                child.process.signal(true);
            }
            return;
        }
        self.begin_stop();
    }

    /// Stops taking new connections and lets the engine wind the pool down.
    pub(super) fn begin_stop(&mut self) {
        if self.context.stopping {
            return;
        }
        self.context.stopping = true;
        self.observed(|o| o.stop_began());
        println!("Stopping web server...");
        for mut listener in std::mem::take(&mut self.listeners) {
            let _ = self.poll.registry().deregister(&mut listener.socket);
        }
        self.inputs.push_back(Input::Shutdown);
        self.close_after_responses();
        self.close_idle_clients();
    }

    pub(super) fn accept_clients(&mut self) {
        if self.listeners.is_empty() {
            self.accept_pause.resume(); // stopping: nothing to retry
            return;
        }
        let mut index = 0;
        // Each listener until its backlog is empty (edge-triggered: no event repeats it).
        while let Some(listener) = self.listeners.get(index) {
            match listener.socket.accept() {
                // The pause ends once the backlogs are empty: accepting one connection may
                // just take the one descriptor that was free.
                Ok((stream, peer)) => {
                    let tls = listener.tls.clone();
                    self.add_client(stream, peer, tls);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => index += 1,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // A client that gave up while it waited in the backlog.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionAborted => continue,
                Err(e) if is_exhaustion(&e) => return self.pause_accepting(&e),
                Err(e) => {
                    self.log.line(&format!("accept failed: {e}"));
                    index += 1;
                }
            }
        }
        self.accepting_again();
    }

    /// Out of descriptors or memory: new connections wait in the listen backlog, and a timer
    /// tries again (with edge-triggered readiness no event would come for them).
    pub(super) fn pause_accepting(&mut self, error: &std::io::Error) {
        if self.accept_pause.pause(std::time::Instant::now()) {
            self.log.line(&format!(
                "{}: accepting paused, new connections wait in the listen backlog",
                crate::resources::describe_exhaustion(error)
            ));
        }
    }

    pub(super) fn accepting_again(&mut self) {
        if self.accept_pause.resume() {
            self.log.line("Accepting connections again");
        }
    }

    pub(super) fn on_entry_event(&mut self, key: usize, event: &mio::event::Event) {
        match self.entries.get(key) {
            Some(Entry::Client(_)) => self.client_event(key, event),
            Some(Entry::Backend(_)) => self.backend_event(key, event),
            Some(Entry::ProcessExit(id)) => {
                let id = *id;
                self.process_exit_event(id)
            }
            Some(Entry::ProcessOutput(id, stream)) => {
                let (id, stream) = (*id, *stream);
                self.process_output(id, stream);
            }
            Some(Entry::Admin(_)) => self.admin_event(key),
            None => {}
        }
    }

    /// Tells the observer something; what went wrong with it goes to the log.
    pub(super) fn observed(
        &mut self,
        tell: impl FnOnce(&mut crate::observer::Observer) -> Option<String>,
    ) {
        if let Some(error) = tell(&mut self.observer) {
            self.log.warn(&error);
        }
    }
}
