//! Why the engine starts a process, stops one, or answers a request itself (503, 502).
//!
//! Every such command carries its reason, decided where the decision is made, so the driver
//! can log it, `ferry status` can show it and metrics can count by it without re-deriving
//! the engine's rules. `as_str` gives each reason a stable snake_case name for log fields and
//! metric labels; `Display` adds what a reason with details carries.

use crate::ids::GroupId;
use alloc::string::String;
use core::fmt;
use serde::{Deserialize, Serialize};

/// Why a process is spawned ([`crate::Command::Spawn`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpawnReason {
    /// The group has fewer ready and starting processes than its `min_instances` (at start,
    /// or after a process left).
    MinInstances,
    /// The demand needs more processes than the group has: requests wait, or the measured
    /// load is above what its processes are scaled for (`target_concurrency`).
    Demand,
    /// Always-restart mode: a request that arrived in the mode waits for a process spawned
    /// after it.
    AlwaysRestart,
    /// A rolling restart: the new process replaces one of the old generation.
    Restart,
    /// Replaces a process retired after `max_requests`, which drains meanwhile.
    MaxRequests,
    /// Replaces a process that failed while serving: it crashed, refused a connection, or
    /// was stopped because a request ran past `max_request_time`.
    Replacement,
    /// The group's latest start failed: this spawn probes whether the app starts again.
    StartRetry,
    /// Replaces a process measured above `memory_limit_bytes`, which serves until this one
    /// is ready.
    MemoryLimit,
}

impl SpawnReason {
    /// A stable snake_case name, for log fields and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            SpawnReason::MinInstances => "min_instances",
            SpawnReason::Demand => "demand",
            SpawnReason::AlwaysRestart => "always_restart",
            SpawnReason::Restart => "restart",
            SpawnReason::MaxRequests => "max_requests",
            SpawnReason::Replacement => "replacement",
            SpawnReason::StartRetry => "start_retry",
            SpawnReason::MemoryLimit => "memory_limit",
        }
    }
}

/// Why a process is stopped ([`crate::Command::Kill`]). A forced kill that follows a graceful
/// one after `kill_timeout` carries the graceful one's reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KillReason {
    /// Idle and not needed: unused for `pool_idle_time` above `min_instances`, or beyond
    /// what the group's demand needed over the last `pool_idle_time`.
    Idle,
    /// It was given `max_requests` requests (stopped once they end).
    MaxRequests,
    /// Always-restart mode: it served its one request.
    AlwaysRestart,
    /// A rolling restart replaced it (or it was still starting old code).
    Restart,
    /// [`crate::Input::DetachProcess`] took it out of rotation.
    Detached,
    /// The pool is full and another group (or a request needing a fresh process) waits for
    /// its slot.
    MakeRoom,
    /// The pool is shutting down.
    Shutdown,
    /// It was not ready within `start_timeout`.
    StartTimeout,
    /// A request on it ran past `max_request_time`: stuck, or too slow to trust with more.
    RequestTimeout,
    /// It refused a connection: dying, or broken.
    ConnectionRefused,
    /// It was measured above `memory_limit_bytes`; its replacement is ready.
    MemoryLimit,
}

impl KillReason {
    /// A stable snake_case name, for log fields and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            KillReason::Idle => "idle",
            KillReason::MaxRequests => "max_requests",
            KillReason::AlwaysRestart => "always_restart",
            KillReason::Restart => "restart",
            KillReason::Detached => "detached",
            KillReason::MakeRoom => "make_room",
            KillReason::Shutdown => "shutdown",
            KillReason::StartTimeout => "start_timeout",
            KillReason::RequestTimeout => "request_timeout",
            KillReason::ConnectionRefused => "connection_refused",
            KillReason::MemoryLimit => "memory_limit",
        }
    }
}

/// Why a request is answered 503 without reaching a process ([`crate::Command::Reject`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectReason {
    /// The group's queue is at `max_request_queue_size`.
    QueueFull,
    /// The group has no process and its spawns are failing (it backs off).
    SpawnFailing {
        /// The group's last start failure.
        error: String,
    },
    /// The pool is shutting down.
    ShuttingDown,
    /// The server itself is out of resources (file descriptors, memory).
    OutOfResources {
        /// What ran out.
        error: String,
    },
    /// The request waited in the queue for `max_request_queue_time`.
    QueueTimeout,
    /// The request named a group the engine does not have: a caller's mistake, answered
    /// rather than left hanging.
    UnknownGroup {
        /// The group it named.
        group: GroupId,
    },
}

impl RejectReason {
    /// A stable snake_case name, for log fields and metric labels.
    pub const fn as_str(&self) -> &'static str {
        match self {
            RejectReason::QueueFull => "queue_full",
            RejectReason::SpawnFailing { .. } => "spawn_failing",
            RejectReason::ShuttingDown => "shutting_down",
            RejectReason::OutOfResources { .. } => "out_of_resources",
            RejectReason::QueueTimeout => "queue_timeout",
            RejectReason::UnknownGroup { .. } => "unknown_group",
        }
    }
}

/// Why a request that reached a process is answered 502 ([`crate::Command::Fail`]): its
/// process exited before answering.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailReason {
    /// The process exited without being asked to (or its spawn failed).
    Crashed {
        /// How it ended, as [`crate::Input::ProcessExited`] described it.
        description: String,
    },
    /// The engine had stopped the process, for `reason`, and it exited with the request
    /// still on it (the shutdown deadline passed, another request on it timed out, …).
    Stopped {
        /// Why the process was stopped.
        reason: KillReason,
    },
}

impl FailReason {
    /// A stable snake_case name, for log fields and metric labels.
    pub const fn as_str(&self) -> &'static str {
        match self {
            FailReason::Crashed { .. } => "crashed",
            FailReason::Stopped { .. } => "stopped",
        }
    }
}

impl fmt::Display for SpawnReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for KillReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::SpawnFailing { error } | RejectReason::OutOfResources { error } => {
                write!(f, "{} ({error})", self.as_str())
            }
            RejectReason::UnknownGroup { group } => write!(f, "{} ({group})", self.as_str()),
            _ => f.write_str(self.as_str()),
        }
    }
}

impl fmt::Display for FailReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailReason::Crashed { description } => write!(f, "crashed ({description})"),
            FailReason::Stopped { reason } => write!(f, "stopped ({reason})"),
        }
    }
}
