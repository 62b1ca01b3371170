//! App processes: spawning them (and retrying spawns ferry had no resources for), probing
//! them until they accept connections, logging their output, reaping them.

use super::{token_of, Child, Entry, OutputStream, Server};
use crate::app::BackendAddr;
use crate::children;
use crate::resources::{describe_exhaustion, is_exhaustion, SPAWN_RETRY_DELAY};
use ferry_engine::{Input, ProcessId};
use mio::unix::SourceFd;
use mio::Interest;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Lines of a starting process's output kept for its spawn error.
const STARTUP_OUTPUT_LINES: usize = 5;

impl Server {
    pub(super) fn spawn(&mut self, id: ProcessId) {
        let spawned = children::spawn(&self.app, &self.process_dir, &self.loader_path, id.0);
        let mut process = match spawned {
            Ok(process) => process,
            Err(e) if is_exhaustion(&e) => return self.spawn_later(id, &e),
            Err(e) => {
                let error = format!("cannot start the app: {e}");
                self.log.line(&error);
                self.inputs
                    .push_back(Input::SpawnFailed { process: id, error });
                return;
            }
        };
        self.log.line(&format!(
            "Spawning app process {} ({})",
            process.pid,
            self.app.type_name()
        ));
        if let Some(watchdog) = &mut self.watchdog {
            watchdog.track(process.pid);
        }
        let exit_key = self.entries.insert(Entry::ProcessExit(id));
        let registry = self.poll.registry();
        let _ = registry.register(
            &mut SourceFd(&process.pidfd_raw()),
            token_of(exit_key),
            Interest::READABLE,
        );
        let mut output_keys = Vec::new();
        for (pipe, stream) in [
            (&mut process.stdout, OutputStream::Stdout),
            (&mut process.stderr, OutputStream::Stderr),
        ] {
            if let Some(pipe) = pipe {
                use std::os::fd::AsRawFd;
                let key = self.entries.insert(Entry::ProcessOutput(id, stream));
                let _ = registry.register(
                    &mut SourceFd(&pipe.fd.as_raw_fd()),
                    token_of(key),
                    Interest::READABLE,
                );
                output_keys.push(key);
            }
        }
        let probe = Some((
            std::time::Instant::now() + Duration::from_millis(2),
            Duration::from_millis(5),
        ));
        self.children.insert(
            id,
            Child {
                process,
                exit_key,
                output_keys,
                probe,
                idle_backends: Vec::new(),
                startup_output: VecDeque::new(),
            },
        );
    }

    /// A spawning process is ready once it accepts a connection.
    pub(super) fn probe(&mut self, id: ProcessId) {
        let Some(child) = self.children.get_mut(&id) else {
            return;
        };
        let accepted = match &child.process.addr {
            BackendAddr::Tcp(addr) => std::net::TcpStream::connect(addr).is_ok(),
            BackendAddr::Unix(path) => std::os::unix::net::UnixStream::connect(path).is_ok(),
        };
        if accepted {
            child.probe = None;
            self.log
                .line(&format!("App process {} is ready", child.process.pid));
            self.inputs.push_back(Input::ProcessReady { process: id });
            self.observed(|o| o.process_ready());
        } else if let Some((_, pause)) = child.probe {
            // Probing often costs one loopback connect; probing late delays the pool's
            // growth by up to the pause.
            child.probe = Some((
                std::time::Instant::now() + pause,
                (pause * 2).min(Duration::from_millis(10)),
            ));
        }
    }

    pub(super) fn process_output(&mut self, id: ProcessId, stream: OutputStream) {
        let Some(child) = self.children.get_mut(&id) else {
            return;
        };
        let pid = child.process.pid;
        let pipe = match stream {
            OutputStream::Stdout => child.process.stdout.as_mut(),
            OutputStream::Stderr => child.process.stderr.as_mut(),
        };
        let Some(pipe) = pipe else {
            return;
        };
        let mut lines = Vec::new();
        let open = pipe.drain(|line| lines.push(line.to_string()));
        if !open {
            use std::os::fd::AsRawFd;
            let fd = pipe.fd.as_raw_fd();
            let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
        }
        if child.probe.is_some() {
            for line in lines.iter().filter(|l| !l.trim().is_empty()) {
                if child.startup_output.len() == STARTUP_OUTPUT_LINES {
                    child.startup_output.pop_front();
                }
                child
                    .startup_output
                    .push_back(line.chars().take(300).collect());
            }
        }
        for line in lines {
            self.log.app_output(&format!("App {pid} output: {line}"));
        }
    }

    /// Sees to an exit the pidfd has not reported yet; true if the process is gone.
    pub(super) fn reap_if_exited(&mut self, id: ProcessId) -> bool {
        self.process_exit_event(id);
        !self.children.contains_key(&id)
    }

    pub(super) fn process_exit_event(&mut self, id: ProcessId) {
        let Some(child) = self.children.get_mut(&id) else {
            return;
        };
        let Some(description) = child.process.reap() else {
            return;
        };
        // Whatever it printed last belongs before the news of its exit.
        self.process_output(id, OutputStream::Stdout);
        self.process_output(id, OutputStream::Stderr);
        let child = self.children.remove(&id).expect("child is known");
        self.observer.process_gone(id);
        let pid = child.process.pid;
        // `reap` killed what was left of its group.
        if let Some(watchdog) = &mut self.watchdog {
            watchdog.untrack(pid);
        }
        self.log
            .line(&format!("App process {pid} exited ({description})"));
        let description = if child.probe.is_some() && !child.startup_output.is_empty() {
            let output: Vec<&str> = child.startup_output.iter().map(String::as_str).collect();
            format!("{description}; its last output: {}", output.join(" | "))
        } else {
            description
        };
        let registry = self.poll.registry();
        let _ = registry.deregister(&mut SourceFd(&child.process.pidfd_raw()));
        self.entries.remove(child.exit_key);
        for key in child.output_keys {
            self.entries.remove(key);
        }
        for key in child.idle_backends {
            self.close_backend(key);
        }
        if let BackendAddr::Unix(path) = &child.process.addr {
            let _ = std::fs::remove_file(path);
        }
        // Responses it completed before it exited are in the sockets: they are delivered,
        // and requests it never read are handed back, before the engine fails what is left.
        self.drain_backends_of(id);
        self.inputs.push_back(Input::ProcessExited {
            process: id,
            description,
        });
    }

    /// A spawn failed for want of ferry's own descriptors or memory: the app is not what
    /// failed, so nothing is reported to the engine yet; the process stays "spawning" there
    /// (its start timeout runs) and the spawn is tried again shortly.
    pub(super) fn spawn_later(&mut self, id: ProcessId, error: &std::io::Error) {
        let retry_at = Instant::now() + SPAWN_RETRY_DELAY;
        if self.spawn_retries.insert(id, retry_at).is_none() {
            self.log.line(&format!(
                "{}: cannot start an app process yet; trying again while it lasts",
                describe_exhaustion(error)
            ));
        }
    }

    pub(super) fn next_spawn_retry(&self) -> Option<Instant> {
        self.spawn_retries.values().min().copied()
    }

    pub(super) fn retry_spawns(&mut self, now: Instant) {
        let due: Vec<ProcessId> = self
            .spawn_retries
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.spawn_retries.remove(&id);
            self.spawn(id);
        }
    }

    /// The engine stopped a process whose spawn is still waiting (its start timeout, or a
    /// stop): it never started, which the engine learns as a failed spawn.
    pub(super) fn give_up_spawn(&mut self, id: ProcessId) {
        if self.spawn_retries.remove(&id).is_some() {
            let error = "ferry was out of resources (file descriptors or memory) and could \
                         not start the app process"
                .to_string();
            self.log.line(&error);
            self.inputs
                .push_back(Input::SpawnFailed { process: id, error });
        }
    }
}
