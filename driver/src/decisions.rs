//! The engine's decisions as ferry reports them: one log line for each spawn, kill, 503, 502
//! and 504, with the reason the engine gave, and the latest ones for `ferry status`. Nothing
//! here decides anything: the reasons come with the commands.

use crate::cli::LogLevel;
use ferry_engine::{Command, Decision, Instant, KillMode, KillReason, ProcessId};
use serde::{Deserialize, Serialize};

/// One recent decision in `ferry status`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecisionReport {
    /// How long ago the engine decided it.
    pub ago_s: f64,
    /// `spawn`, `kill`, `force_kill`, `503`, `502` or `504`.
    pub decision: String,
    /// The engine's id of the process it concerns, if one.
    pub process: Option<u64>,
    /// That process's pid, while it is alive.
    pub pid: Option<u32>,
    /// Why, as the engine said (the reason's stable name, with its details).
    pub reason: String,
}

/// What the command decided, its process and its reason; `None` for commands that decide
/// nothing worth reporting (forwards, the end of a shutdown).
fn describe(command: &Command) -> Option<(&'static str, Option<ProcessId>, String)> {
    Some(match command {
        Command::Spawn {
            process, reason, ..
        } => ("spawn", Some(*process), reason.to_string()),
        Command::Kill {
            process,
            mode,
            reason,
        } => {
            let decision = match mode {
                KillMode::Graceful => "kill",
                KillMode::Force => "force_kill",
            };
            (decision, Some(*process), reason.to_string())
        }
        Command::Reject { reason, .. } => ("503", None, reason.to_string()),
        Command::Fail {
            process, reason, ..
        } => ("502", Some(*process), reason.to_string()),
        Command::TimeOut { process, .. } => ("504", Some(*process), "max_request_time".to_string()),
        Command::Forward { .. } | Command::RestartReport { .. } | Command::ShutdownComplete => {
            return None
        }
    })
}

/// The decision and reason of a command that concerns one request (a 503, 502 or 504), which
/// the log may hold back in an overload (`crate::decision_limiter`).
pub fn per_request(command: &Command) -> Option<(&'static str, String)> {
    match command {
        Command::Reject { .. } | Command::Fail { .. } | Command::TimeOut { .. } => {
            describe(command).map(|(decision, _, reason)| (decision, reason))
        }
        _ => None,
    }
}

/// The log line for a command, at its level: what the pool does as it should (spawns, idle
/// and planned stops) at `notice`; what goes wrong for a client or a process (503, 502, 504,
/// forced kills, processes stopped for failing) at `warn`.
pub fn log_line(command: &Command, pid: Option<u32>) -> Option<(LogLevel, String)> {
    let (decision, process, reason) = describe(command)?;
    let trouble = match command {
        Command::Kill { mode, reason, .. } => {
            *mode == KillMode::Force
                || matches!(
                    reason,
                    KillReason::StartTimeout
                        | KillReason::RequestTimeout
                        | KillReason::ConnectionRefused
                )
        }
        Command::Spawn { .. } => false,
        _ => true,
    };
    let level = if trouble {
        LogLevel::Warn
    } else {
        LogLevel::Notice
    };
    let subject = match (command, process, pid) {
        (Command::Reject { request, .. }, _, _) => format!("{request}"),
        (Command::Fail { request, .. } | Command::TimeOut { request, .. }, Some(p), _) => {
            format!("{request} on {p}")
        }
        (_, Some(p), Some(pid)) => format!("{p} (pid {pid})"),
        (_, Some(p), None) => format!("{p}"),
        (_, None, _) => String::new(),
    };
    Some((
        level,
        format!("Decision: {decision} {subject}, reason: {reason}"),
    ))
}

/// The engine's recent decisions for `ferry status`, newest first; `pid` gives the pid of a
/// process still alive.
pub fn reports(
    decisions: &[Decision],
    now: Instant,
    pid: impl Fn(ProcessId) -> Option<u32>,
) -> Vec<DecisionReport> {
    decisions
        .iter()
        .rev()
        .filter_map(|d| {
            let (decision, process, reason) = describe(&d.command)?;
            let ago = now.saturating_since(d.at).as_secs_f64();
            Some(DecisionReport {
                ago_s: (ago * 10.0).round() / 10.0,
                decision: decision.to_string(),
                process: process.map(|p| p.0),
                pid: process.and_then(&pid),
                reason,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_engine::{GroupId, RejectReason, RequestId, SpawnReason};

    #[test]
    fn each_decision_is_one_line_with_its_reason_at_its_level() {
        let spawn = Command::Spawn {
            group: GroupId(0),
            process: ProcessId(3),
            reason: SpawnReason::Demand,
        };
        assert_eq!(
            log_line(&spawn, None),
            Some((
                LogLevel::Notice,
                "Decision: spawn process 3, reason: demand".into()
            ))
        );
        let kill = Command::Kill {
            process: ProcessId(3),
            mode: KillMode::Graceful,
            reason: KillReason::Idle,
        };
        assert_eq!(
            log_line(&kill, Some(4242)),
            Some((
                LogLevel::Notice,
                "Decision: kill process 3 (pid 4242), reason: idle".into()
            ))
        );
        let reject = Command::Reject {
            request: RequestId(9),
            reason: RejectReason::QueueFull,
        };
        assert_eq!(
            log_line(&reject, None),
            Some((
                LogLevel::Warn,
                "Decision: 503 request 9, reason: queue_full".into()
            ))
        );
        let forward = Command::Forward {
            request: RequestId(9),
            process: ProcessId(3),
        };
        assert_eq!(log_line(&forward, None), None);
    }

    #[test]
    fn the_status_lists_recent_decisions_newest_first_with_live_pids() {
        let decisions = [
            Decision {
                at: Instant::from_nanos(1_000_000_000),
                command: Command::Spawn {
                    group: GroupId(0),
                    process: ProcessId(1),
                    reason: SpawnReason::MinInstances,
                },
            },
            Decision {
                at: Instant::from_nanos(3_000_000_000),
                command: Command::Reject {
                    request: RequestId(2),
                    reason: RejectReason::QueueFull,
                },
            },
        ];
        let now = Instant::from_nanos(5_000_000_000);
        let reports = reports(&decisions, now, |p| (p == ProcessId(1)).then_some(77));
        assert_eq!(reports.len(), 2);
        assert_eq!(
            (
                reports[0].decision.as_str(),
                reports[0].ago_s,
                reports[0].reason.as_str()
            ),
            ("503", 2.0, "queue_full")
        );
        assert_eq!(
            (
                reports[1].process,
                reports[1].pid,
                reports[1].reason.as_str()
            ),
            (Some(1), Some(77), "min_instances")
        );
    }
}
