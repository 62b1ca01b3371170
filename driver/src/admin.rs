//! The admin socket: `ferry status` and `ferry stop` talk to the server here.
//!
//! One command per connection, a line (`status`, `stop`, `restart`), answered and closed.
//! Callers are checked by their peer credentials: only root and the user running the server
//! get an answer; a caller whose identity cannot be read is refused, never trusted.

use crate::buffers::{read_into, OutBuf, ReadResult};
use crate::server::{token_of, Entry, Server};
use crate::status_report::{GroupReport, ProcessReport, StatusReport};
use ferry_engine::Input;
use mio::net::UnixStream;
use mio::Interest;

const ADMIN_REQUEST_MAX_BYTES: usize = 256;

pub struct AdminConn {
    stream: UnixStream,
    inbuf: Vec<u8>,
    out: OutBuf,
    answered: bool,
    /// The caller is root or the server's user. Others get a refusal once they have sent
    /// their command (answering earlier would make their write fail and hide the refusal).
    allowed: bool,
}

fn caller_allowed(stream: &UnixStream) -> bool {
    match rustix::net::sockopt::socket_peercred(stream) {
        Ok(cred) => {
            let uid = cred.uid.as_raw();
            uid == 0 || uid == rustix::process::geteuid().as_raw()
        }
        Err(_) => false,
    }
}

impl Server {
    pub fn accept_admin(&mut self) {
        loop {
            match self.admin.accept() {
                Ok((stream, _)) => {
                    let entry = self.entries.vacant_entry();
                    let key = entry.key();
                    let allowed = caller_allowed(&stream);
                    let mut conn = AdminConn {
                        stream,
                        inbuf: Vec::new(),
                        out: OutBuf::default(),
                        answered: false,
                        allowed,
                    };
                    if self
                        .poll
                        .registry()
                        .register(
                            &mut conn.stream,
                            token_of(key),
                            Interest::READABLE | Interest::WRITABLE,
                        )
                        .is_ok()
                    {
                        entry.insert(Entry::Admin(conn));
                        self.admin_event(key);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if crate::resources::is_exhaustion(&e) => {
                    // The reserve descriptor makes room for this one connection; the next
                    // round of events takes the reserve back once a descriptor is free.
                    if !self.reserve_fd.release() {
                        return self.pause_accepting(&e);
                    }
                }
                Err(_) => return,
            }
        }
    }

    pub fn admin_event(&mut self, key: usize) {
        let Some(Entry::Admin(conn)) = self.entries.get_mut(key) else {
            return;
        };
        if !conn.allowed {
            return self.refuse_admin(key);
        }
        let mut gone = false;
        if !conn.answered {
            match read_into(
                &mut conn.stream,
                &mut conn.inbuf,
                ADMIN_REQUEST_MAX_BYTES,
                true,
            ) {
                ReadResult::Open | ReadResult::Full => {}
                ReadResult::Eof | ReadResult::Failed => gone = true,
            }
            if let Some(end) = conn.inbuf.iter().position(|b| *b == b'\n') {
                let command = String::from_utf8_lossy(&conn.inbuf[..end])
                    .trim()
                    .to_string();
                conn.answered = true;
                let reply = self.admin_command(&command);
                if let Some(Entry::Admin(conn)) = self.entries.get_mut(key) {
                    conn.out.buffer().extend_from_slice(reply.as_bytes());
                }
            } else if conn.inbuf.len() >= ADMIN_REQUEST_MAX_BYTES || gone {
                return self.close_admin(key);
            }
        }
        let Some(Entry::Admin(conn)) = self.entries.get_mut(key) else {
            return;
        };
        if conn.answered && (conn.out.flush_to(&mut conn.stream).is_err() || conn.out.is_empty()) {
            self.close_admin(key);
        }
    }

    /// Another user's connection: the refusal goes out at once and the write side closes, so
    /// the caller reads the refusal and an end; whatever it sends is read and dropped until
    /// it hangs up, so its own write does not fail before it can read the answer.
    fn refuse_admin(&mut self, key: usize) {
        let Some(Entry::Admin(conn)) = self.entries.get_mut(key) else {
            return;
        };
        if !conn.answered {
            conn.answered = true;
            conn.out.buffer().extend_from_slice(
                b"refused: only root and the server's user may use this socket\n",
            );
            self.log
                .line("Refused an admin connection from another user");
        }
        let Some(Entry::Admin(conn)) = self.entries.get_mut(key) else {
            return;
        };
        if conn.out.flush_to(&mut conn.stream).is_err() {
            return self.close_admin(key);
        }
        if conn.out.is_empty() {
            let _ = conn.stream.shutdown(std::net::Shutdown::Write);
        }
        conn.inbuf.clear();
        let ended = matches!(
            read_into(
                &mut conn.stream,
                &mut conn.inbuf,
                ADMIN_REQUEST_MAX_BYTES,
                true
            ),
            ReadResult::Eof | ReadResult::Failed
        );
        if ended || conn.inbuf.contains(&b'\n') {
            self.close_admin(key);
        }
    }

    fn close_admin(&mut self, key: usize) {
        if let Some(Entry::Admin(mut conn)) = self.entries.try_remove(key) {
            let _ = self.poll.registry().deregister(&mut conn.stream);
            drop(conn);
            // At the limit, the descriptor just freed is the reserve's again before a client
            // connection can take it.
            self.reserve_fd.restore();
        }
    }

    fn admin_command(&mut self, command: &str) -> String {
        match command {
            "status" => serde_json::to_string(&self.status_report()).expect("status serializes"),
            "stop" => {
                self.log.line("Stop requested through the admin socket");
                self.begin_stop();
                "{\"ok\":true}\n".to_string()
            }
            "restart" => {
                self.log
                    .line("Rolling restart requested through the admin socket");
                // The caller waits for the first restart beyond this generation.
                let generation = self.engine.status().groups[self.group.0 as usize].generation;
                self.inputs
                    .push_back(Input::RestartGroup { group: self.group });
                format!("{{\"ok\":true,\"generation\":{generation}}}\n")
            }
            other => format!(
                "{{\"error\":\"unknown admin command '{}'\"}}\n",
                other.escape_default()
            ),
        }
    }

    pub fn status_report(&self) -> StatusReport {
        let status = self.engine.status();
        let now = self.clock.now();
        let secs = |d: std::time::Duration| (d.as_secs_f64() * 10.0).round() / 10.0;
        let groups = status
            .groups
            .iter()
            .map(|group| GroupReport {
                app_root: self.app.root.display().to_string(),
                app_type: self.app.type_name().to_string(),
                environment: self.app.environment.clone(),
                queue: group.queue,
                max_request_queue_size: group.max_request_queue_size,
                min_instances: group.min_instances,
                backoff_remaining_s: group
                    .backoff_until
                    .map(|until| secs(until.saturating_since(now))),
                last_spawn_error: group.last_spawn_error.clone(),
                always_restart: group.always_restart,
                restart: group.restart.clone(),
                processes: group
                    .processes
                    .iter()
                    .map(|p| {
                        let pid = self.children.get(&p.id).map(|c| c.process.pid);
                        let uptime = now.saturating_since(p.spawned_at);
                        ProcessReport {
                            pid,
                            id: p.id.0,
                            state: format!("{:?}", p.state).to_lowercase(),
                            sessions: p.sessions,
                            processed: p.processed,
                            uptime_s: secs(uptime),
                            cpu_percent: pid
                                .map_or(0.0, |pid| crate::proc_stats::cpu_percent(pid, uptime)),
                            memory_bytes: pid
                                .and_then(crate::proc_stats::memory_bytes)
                                .unwrap_or(0),
                            rss_bytes: pid.and_then(crate::proc_stats::rss_bytes).unwrap_or(0),
                            last_used_s: secs(now.saturating_since(p.last_used)),
                            oldest_request_age_s: p
                                .oldest_request_started_at
                                .map(|at| secs(now.saturating_since(at))),
                        }
                    })
                    .collect(),
            })
            .collect();
        StatusReport {
            version: env!("CARGO_PKG_VERSION").to_string(),
            date: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            instance: self.info.instance.clone(),
            pid: self.info.pid,
            port: self.info.port,
            address: self.info.address.clone(),
            max_pool_size: status.max_pool_size,
            process_count: status.process_count,
            top_level_queue: 0,
            shutting_down: status.shutting_down,
            totals: status.totals,
            groups,
            recent_decisions: crate::decisions::reports(&status.recent_decisions, now, |p| {
                self.children.get(&p).map(|c| c.process.pid)
            }),
        }
    }
}
