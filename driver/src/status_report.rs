//! `ferry status`: the JSON document the admin socket serves and its text rendering.

use ferry_engine::RestartOutcome;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StatusReport {
    pub version: String,
    pub date: String,
    pub instance: String,
    pub pid: u32,
    pub port: u16,
    pub address: String,
    pub max_pool_size: usize,
    pub process_count: usize,
    /// ferry assigns every request to its group on arrival, so this is always 0; the field
    /// is kept for tools written against passenger-status.
    pub top_level_queue: usize,
    pub shutting_down: bool,
    pub totals: ferry_engine::Totals,
    pub groups: Vec<GroupReport>,
    /// The engine's latest decisions (spawns, kills, 503s, 502s, 504s), newest first.
    #[serde(default)]
    pub recent_decisions: Vec<crate::decisions::DecisionReport>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GroupReport {
    pub app_root: String,
    pub app_type: String,
    pub environment: String,
    pub queue: usize,
    pub max_request_queue_size: usize,
    pub min_instances: usize,
    /// Requests one process takes at once (0: unlimited), the pool's scaling target per
    /// process, and how a WSGI process serves them: `process` or `thread` (none for a
    /// generic app, which serves them its own way).
    #[serde(default)]
    pub concurrency: u32,
    #[serde(default)]
    pub target_concurrency: u32,
    #[serde(default)]
    pub concurrency_model: Option<String>,
    pub backoff_remaining_s: Option<f64>,
    pub last_spawn_error: Option<String>,
    /// tmp/always_restart.txt exists: every request gets a newly started process.
    #[serde(default)]
    pub always_restart: bool,
    /// The latest restart (`ferry restart`, tmp/restart.txt) and where it is.
    #[serde(default)]
    pub restart: Option<ferry_engine::RestartStatus>,
    pub processes: Vec<ProcessReport>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProcessReport {
    pub pid: Option<u32>,
    pub id: u64,
    pub state: String,
    pub sessions: u32,
    /// Of its sessions, those whose client left while the app works on them: ferry reads
    /// their responses to the end and drops them.
    #[serde(default)]
    pub abandoned_sessions: u32,
    pub processed: u64,
    pub uptime_s: f64,
    pub cpu_percent: f64,
    /// Private dirty memory plus swap, as passenger-status shows (`proc_stats::memory_bytes`).
    pub memory_bytes: u64,
    /// The resident set, shared pages included.
    #[serde(default)]
    pub rss_bytes: u64,
    pub last_used_s: f64,
    /// How long its oldest request in flight has been running (none while idle).
    #[serde(default)]
    pub oldest_request_age_s: Option<f64>,
}

/// A restart's outcome as `ferry status` and `ferry restart` say it.
pub fn restart_state(outcome: &RestartOutcome) -> String {
    match outcome {
        RestartOutcome::InProgress => "in progress".into(),
        RestartOutcome::Done => "done: every process runs the new code".into(),
        RestartOutcome::Failed { error } => {
            format!("failed: {error}; the old processes keep serving")
        }
    }
}

/// The server log's line for a restart that ended or failed.
pub fn restart_outcome_line(outcome: &RestartOutcome) -> String {
    format!("Restart {}", restart_state(outcome))
}

fn human_duration(seconds: f64) -> String {
    let total = seconds.max(0.0) as u64;
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s}s"),
        _ => format!("{h}h {m}m {s}s"),
    }
}

fn human_bytes(bytes: u64) -> String {
    format!("{}M", bytes / (1024 * 1024))
}

impl StatusReport {
    /// The text `ferry status` prints, laid out like passenger-status.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let line = |out: &mut String, text: String| {
            out.push_str(&text);
            out.push('\n');
        };
        line(&mut out, format!("Version : {}", self.version));
        line(&mut out, format!("Date    : {}", self.date));
        line(
            &mut out,
            format!(
                "Instance: {} (port {}, pid {})",
                self.instance, self.port, self.pid
            ),
        );
        line(
            &mut out,
            "----------- General information -----------".into(),
        );
        line(&mut out, format!("Max pool size : {}", self.max_pool_size));
        line(&mut out, format!("App groups    : {}", self.groups.len()));
        line(&mut out, format!("Processes     : {}", self.process_count));
        line(
            &mut out,
            format!("Requests in top-level queue : {}", self.top_level_queue),
        );
        if self.shutting_down {
            line(&mut out, "Shutting down : yes".into());
        }
        line(&mut out, String::new());
        line(
            &mut out,
            "----------- Application groups -----------".into(),
        );
        for group in &self.groups {
            line(
                &mut out,
                format!(
                    "{} ({}, {}):",
                    group.app_root, group.app_type, group.environment
                ),
            );
            line(&mut out, format!("  App root: {}", group.app_root));
            line(&mut out, format!("  Requests in queue: {}", group.queue));
            if let Some(remaining) = group.backoff_remaining_s {
                line(
                    &mut out,
                    format!("  Spawning paused for {remaining:.1}s after failures"),
                );
            }
            if group.always_restart {
                line(
                    &mut out,
                    "  Always restart: on (tmp/always_restart.txt)".into(),
                );
            }
            if let Some(restart) = &group.restart {
                line(
                    &mut out,
                    format!("  Restart: {}", restart_state(&restart.outcome)),
                );
            }
            if let Some(error) = &group.last_spawn_error {
                line(&mut out, format!("  Last error: {error}"));
            }
            for p in &group.processes {
                let pid = p.pid.map_or("-".to_string(), |pid| pid.to_string());
                line(
                    &mut out,
                    format!(
                        "  * PID: {pid:<7} Sessions: {:<7} Processed: {:<7} Uptime: {}",
                        p.sessions,
                        p.processed,
                        human_duration(p.uptime_s)
                    ),
                );
                line(
                    &mut out,
                    format!(
                        "    CPU: {:<8} Memory  : {:<7} Last used: {} ago   State: {}",
                        format!("{}%", p.cpu_percent),
                        human_bytes(p.memory_bytes),
                        human_duration(p.last_used_s),
                        p.state
                    ),
                );
                if let Some(age) = p.oldest_request_age_s {
                    line(&mut out, format!("    Oldest request: {age:.1}s"));
                }
                if p.abandoned_sessions > 0 {
                    let n = p.abandoned_sessions;
                    line(
                        &mut out,
                        format!("    Clients gone: {n} (the app still works on those requests)"),
                    );
                }
            }
            line(&mut out, String::new());
        }
        if !self.recent_decisions.is_empty() {
            line(&mut out, "----------- Recent decisions -----------".into());
            for d in &self.recent_decisions {
                let process = match (d.process, d.pid) {
                    (Some(id), Some(pid)) => format!("process {id} (pid {pid})"),
                    (Some(id), None) => format!("process {id}"),
                    (None, _) => String::new(),
                };
                line(
                    &mut out,
                    format!(
                        "  {:>8} ago  {:<10} {:<24} {}",
                        human_duration(d.ago_s),
                        d.decision,
                        process,
                        d.reason
                    ),
                );
            }
        }
        out
    }
}
