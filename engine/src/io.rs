//! What goes into the engine ([`Input`]) and what comes out ([`Command`]).

use crate::ids::{GroupId, ProcessId, RequestId};
use crate::reasons::{FailReason, KillReason, RejectReason, SpawnReason};
use crate::restart::RestartOutcome;
use alloc::string::String;
use serde::{Deserialize, Serialize};

/// Something that happened, reported by the driver or the simulator.
///
/// Inputs naming a group, process or request the engine does not know (any more, or ever)
/// are ignored: they can arrive legitimately late (a client hanging up on a request that
/// already failed, say). The one exception is a request arriving for an unknown group: it is
/// rejected ([`RejectReason::UnknownGroup`]), since every request must end exactly once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    /// A complete request (head and body) is ready to go to a process of `group`.
    RequestArrived {
        /// One of the groups [`crate::Engine::new`] created.
        group: GroupId,
        /// A new id: not one of a request that has not ended yet.
        request: RequestId,
    },
    /// The process finished answering `request`; its session is free.
    RequestFinished {
        /// A request the engine forwarded.
        request: RequestId,
    },
    /// The exchange with the process broke after the request reached it (the app answered
    /// nonsense, or cut its response short): the session is free, and the request counts as
    /// failed, not served. (If the process died, [`Input::ProcessExited`] fails it instead.)
    RequestFailed {
        /// A request the engine forwarded.
        request: RequestId,
    },
    /// The process answered `request` with 101 and the connection became a tunnel
    /// (WebSocket and the like). Its session lasts until [`Input::RequestFinished`] or
    /// [`Input::ClientGone`], but no longer counts toward routing and scaling: an idle
    /// WebSocket does not make a process look busy. (It still counts toward the hard
    /// `concurrency` cap, and a process with one is never shut down for idleness.)
    SessionUpgraded {
        /// A request the engine forwarded.
        request: RequestId,
    },
    /// The client of a queued or in-flight request went away. A queued request leaves the queue;
    /// an in-flight one ends its session now (the caller has dropped the connection to the app).
    ClientGone {
        /// The request whose client left.
        request: RequestId,
    },
    /// The client of an in-flight request went away while the app still works on it, and the
    /// caller keeps the connection to the app (reading and dropping the rest of the response).
    /// The session lasts until [`Input::RequestFinished`] or [`Input::RequestFailed`] (or the
    /// process exits, or `max_request_time` ends it), so routing, scaling and the status see
    /// the process as busy as it is; the request counts as cancelled when it ends that way.
    /// A queued request leaves the queue at once, as with [`Input::ClientGone`].
    ClientAbandoned {
        /// The request whose client left.
        request: RequestId,
    },
    /// The process an in-flight request was forwarded to refused the connection, so nothing
    /// reached the app: the request goes back to the front of its queue, and the process —
    /// dying, or broken — is stopped and counted as a failure.
    ProcessRefused {
        /// The request whose connection the process refused.
        request: RequestId,
    },
    /// The driver could not hand an in-flight request to its process for a reason of its
    /// own: it is out of file descriptors or memory. Nothing reached the app and the process
    /// is not at fault: it keeps serving, nothing counts as a failure, and the request is
    /// rejected with [`RejectReason::OutOfResources`] (retrying at once would fail the same
    /// way).
    ForwardFailed {
        /// The request that could not be handed over.
        request: RequestId,
        /// What ran out, for the 503's message.
        error: String,
    },
    /// A spawned process accepts requests.
    ProcessReady {
        /// A process the engine spawned.
        process: ProcessId,
    },
    /// A spawn failed before any OS process remained (exec failed, say). For a process that
    /// started and then exited, send [`Input::ProcessExited`] instead.
    SpawnFailed {
        /// The process of the [`Command::Spawn`].
        process: ProcessId,
        /// Why, for the group's last error and the 503s that quote it.
        error: String,
    },
    /// The OS process is gone (reaped).
    ProcessExited {
        /// A process the engine spawned.
        process: ProcessId,
        /// How it ended ("exit status 1", "killed by signal 9"), for error messages.
        description: String,
    },
    /// The driver measured the process's memory (`ferry status`'s measure: private dirty
    /// pages plus swap). Above its group's `memory_limit_bytes`, the process is replaced.
    MemoryMeasured {
        /// The process measured.
        process: ProcessId,
        /// What it uses, in bytes.
        bytes: u64,
    },
    /// Nothing but the passing of time: fires the timers that are due.
    Tick,
    /// Replace every process of the group, one by one, without losing capacity: an old one
    /// goes only after its replacement is ready (a rolling restart, see `restart.rs`).
    RestartGroup {
        /// The group to restart.
        group: GroupId,
    },
    /// Take the process out of rotation; it is shut down once its sessions end.
    DetachProcess {
        /// The process to take out.
        process: ProcessId,
    },
    /// Always-restart mode on or off (Passenger's `tmp/always_restart.txt`): while on, each
    /// request that arrives is served by a process spawned after it arrived, which serves
    /// only that request.
    SetAlwaysRestart {
        /// The group the mode applies to.
        group: GroupId,
        /// The mode's new state.
        on: bool,
    },
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

/// Something the driver must carry out. Every command that starts or stops a process, or
/// answers a request in the engine's place, says why.
#[must_use]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Start an app process for `group`. Report how it goes with [`Input::ProcessReady`],
    /// [`Input::SpawnFailed`] or [`Input::ProcessExited`].
    Spawn {
        /// The group whose app to start.
        group: GroupId,
        /// The id the engine knows it by from now on; new, never reused.
        process: ProcessId,
        /// Why the group needs it.
        reason: SpawnReason,
    },
    /// Send `request` to `process`; report its end with [`Input::RequestFinished`] (or
    /// [`Input::RequestFailed`], [`Input::ProcessRefused`], [`Input::ForwardFailed`]).
    Forward {
        /// A request that arrived and has not ended.
        request: RequestId,
        /// A ready process of the request's group.
        process: ProcessId,
    },
    /// Answer `request` with 503; the request has ended.
    Reject {
        /// The request to answer.
        request: RequestId,
        /// Why it gets no process.
        reason: RejectReason,
    },
    /// Answer `request` with 502: `process` died while handling it; the request has ended.
    Fail {
        /// The request to answer.
        request: RequestId,
        /// The process it was forwarded to, now gone.
        process: ProcessId,
        /// How the process came to be gone.
        reason: FailReason,
    },
    /// Answer `request` with 504: it ran for `max_request_time` on `process`, which the
    /// engine is stopping; the request has ended.
    TimeOut {
        /// The request to answer.
        request: RequestId,
        /// The process it ran on, which gets a [`Command::Kill`] too.
        process: ProcessId,
    },
    /// Stop `process`, then report its exit with [`Input::ProcessExited`]. Until then it
    /// counts toward `max_pool_size`.
    Kill {
        /// A process the engine spawned.
        process: ProcessId,
        /// Ask or force.
        mode: KillMode,
        /// Why it goes.
        reason: KillReason,
    },
    /// Nothing to carry out, something to tell: the group's restart to `generation` failed
    /// (the old generation keeps serving) or is done. Sent once per outcome; a failed
    /// restart may still be reported done later, should the new code start after all.
    RestartReport {
        /// The group restarted.
        group: GroupId,
        /// The generation the restart began.
        generation: u32,
        /// Failed or done.
        outcome: RestartOutcome,
    },
    /// After [`Input::Shutdown`]: no process and no request is left.
    ShutdownComplete,
}
