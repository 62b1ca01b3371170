//! The admin socket's side in the server: accepting its connections (with the reserve
//! descriptor at the limit), carrying out their commands, the status report.

use super::{token_of, Entry, Server};
use crate::admin::AdminConn;
use crate::status_report::{GroupReport, ProcessReport, StatusReport};
use ferry_engine::Input;
use mio::Interest;

impl Server {
    pub(super) fn accept_admin(&mut self) {
        loop {
            match self.admin.accept() {
                Ok((stream, _)) => {
                    let entry = self.entries.vacant_entry();
                    let key = entry.key();
                    let mut conn = AdminConn::new(key, stream);
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

    pub(super) fn admin_event(&mut self, key: usize) {
        self.with_entry(key, |entry, _, out| {
            if let Entry::Admin(conn) = entry {
                conn.on_event(out);
            }
        });
    }

    pub(super) fn close_admin(&mut self, key: usize) {
        if let Some(Entry::Admin(mut conn)) = self.entries.try_remove(key) {
            let _ = self.poll.registry().deregister(&mut conn.stream);
            drop(conn);
            // At the limit, the descriptor just freed is the reserve's again before a client
            // connection can take it.
            self.reserve_fd.restore();
        }
    }

    /// Carries out `command` from admin connection `key` and gives it the reply.
    pub(super) fn admin_command(&mut self, key: usize, command: &str) {
        let reply = match command {
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
        };
        self.with_entry(key, |entry, _, out| {
            if let Entry::Admin(conn) = entry {
                conn.answer(&reply, out);
            }
        });
    }

    fn status_report(&self) -> StatusReport {
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
                concurrency: group.concurrency,
                target_concurrency: group.target_concurrency,
                concurrency_model: match &self.app.kind {
                    crate::app::AppKind::Wsgi { model, .. } => Some(model.name().to_string()),
                    crate::app::AppKind::Generic { .. } => None,
                },
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
                            abandoned_sessions: p.abandoned,
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
