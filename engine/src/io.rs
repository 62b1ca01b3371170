//! What goes into the engine ([`Input`]) and what comes out ([`Command`]).

use crate::ids::{GroupId, ProcessId, RequestId};
use alloc::string::String;
use serde::{Deserialize, Serialize};

/// Something that happened, reported by the driver or the simulator.
///
/// Inputs naming a process or request the engine no longer knows are ignored: they can arrive
/// legitimately late (a client hanging up on a request that already failed, say).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    /// A complete request (head and body) is ready to go to a process of `group`.
    /// `request` must not be in use already; `group` must be one that [`crate::Engine::new`]
    /// created.
    RequestArrived { group: GroupId, request: RequestId },
    /// The process finished answering `request`; its session is free.
    RequestFinished { request: RequestId },
    /// The exchange with the process broke after the request reached it (the app answered
    /// nonsense, or cut its response short): the session is free, and the request counts as
    /// failed, not served. (If the process died, [`Input::ProcessExited`] fails it instead.)
    RequestFailed { request: RequestId },
    /// The process answered `request` with 101 and the connection became a tunnel
    /// (WebSocket and the like). Its session lasts until [`Input::RequestFinished`] or
    /// [`Input::ClientGone`], but no longer counts toward routing and scaling: an idle
    /// WebSocket does not make a process look busy. (It still counts toward the hard
    /// `concurrency` cap, and a process with one is never shut down for idleness.)
    SessionUpgraded { request: RequestId },
    /// The client of a queued or in-flight request went away. A queued request leaves the queue;
    /// an in-flight one ends its session now (the caller has dropped the connection to the app).
    ClientGone { request: RequestId },
    /// The process an in-flight request was forwarded to refused the connection, so nothing
    /// reached the app: the request goes back to the front of its queue, and the process —
    /// dying, or broken — is stopped and counted as a failure.
    ProcessRefused { request: RequestId },
    /// The driver could not hand an in-flight request to its process for a reason of its
    /// own: it is out of file descriptors or memory. Nothing reached the app and the process
    /// is not at fault: it keeps serving, nothing counts as a failure, and the request is
    /// rejected with [`RejectReason::OutOfResources`] (retrying at once would fail the same
    /// way). `error` says what ran out.
    ForwardFailed { request: RequestId, error: String },
    /// A spawned process accepts requests.
    ProcessReady { process: ProcessId },
    /// A spawn failed before any OS process remained (exec failed, say). For a process that
    /// started and then exited, send [`Input::ProcessExited`] instead.
    SpawnFailed { process: ProcessId, error: String },
    /// The OS process is gone (reaped). `description` says how, for error messages.
    ProcessExited {
        process: ProcessId,
        description: String,
    },
    /// Nothing but the passing of time: fires the timers that are due.
    Tick,
    /// Replace every process of the group, one by one, without losing capacity where the pool
    /// has room (a rolling restart).
    RestartGroup { group: GroupId },
    /// Take the process out of rotation; it is shut down once its sessions end.
    DetachProcess { process: ProcessId },
    /// Always-restart mode on or off (Passenger's `tmp/always_restart.txt`): while on, each
    /// request that arrives is served by a process spawned after it arrived, which serves
    /// only that request.
    SetAlwaysRestart { group: GroupId, on: bool },
    /// Stop taking requests, let in-flight ones finish (bounded by `shutdown_timeout`), then
    /// stop every process.
    Shutdown,
}

/// How to stop a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum KillMode {
    /// Ask it to exit (SIGTERM). The engine follows up with `Force` after `kill_timeout`.
    Graceful,
    /// Make it exit (SIGKILL).
    Force,
}

/// Why a request is answered 503 without reaching a process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectReason {
    /// The group's queue is at `max_request_queue_size`.
    QueueFull,
    /// The group has no process and its spawns are failing; the last spawn error.
    SpawnFailing { error: String },
    /// The pool is shutting down.
    ShuttingDown,
    /// The server itself is out of resources (file descriptors, memory); what ran out.
    OutOfResources { error: String },
    /// The request waited in the queue for `max_request_queue_time`.
    QueueTimeout,
}

/// Something the driver must carry out.
#[must_use]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Start an app process for `group`, known as `process` from now on.
    Spawn { group: GroupId, process: ProcessId },
    /// Send `request` to `process`.
    Forward {
        request: RequestId,
        process: ProcessId,
    },
    /// Answer `request` with 503; the request has ended.
    Reject {
        request: RequestId,
        reason: RejectReason,
    },
    /// Answer `request` with 502: `process` died while handling it; the request has ended.
    Fail {
        request: RequestId,
        process: ProcessId,
    },
    /// Answer `request` with 504: it ran for `max_request_time` on `process`, which the
    /// engine is stopping; the request has ended.
    TimeOut {
        request: RequestId,
        process: ProcessId,
    },
    /// Stop `process`.
    Kill { process: ProcessId, mode: KillMode },
    /// After [`Input::Shutdown`]: no process and no request is left.
    ShutdownComplete,
}
