//! The contract between the server and its connections.
//!
//! A connection (a [`Client`](crate::client::Client), a [`Backend`](crate::backend::Backend),
//! an [`AdminConn`](crate::admin::AdminConn), a tunnel joining a client and a backend) owns its
//! socket and buffers and acts on them alone. It reads the server-wide settings it needs from a
//! [`Context`], and whatever it wants done beyond itself (write its output at the end of the
//! round, arm a deadline, tell the engine something, close another connection, …) it pushes
//! onto [`Actions`] as an [`Action`]. The server ([`crate::server`]) hands each connection the
//! context and an empty list, then applies the actions in order, depth first: an action that
//! makes another connection act applies that connection's actions before the next one, so the
//! effects happen in the order a direct call would have made them.
//!
//! Connections never see the server, its engine or its other connections (except the one
//! peer a relay or a tunnel joins them to, handed in by the server); the server alone holds the
//! maps from requests to clients, from processes to their connections, and the deadlines.

use crate::observer::RequestRecord;
use crate::static_files::StaticDir;
use ferry_engine::{Input, ProcessId, RequestId};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Settings of the proxy that are not the engine's.
pub struct ProxySettings {
    pub limits: crate::http::Limits,
    /// Total time a client has to send a request head, from its first byte.
    pub head_timeout: Duration,
    /// How long an idle keep-alive client connection stays open.
    pub keep_alive_timeout: Duration,
    /// How long a request body may stall.
    pub body_timeout: Duration,
    /// How long a response may wait for a client that does not read.
    pub send_timeout: Duration,
    /// Clients see why the app cannot start (friendly error pages).
    pub error_details: bool,
    /// Peers whose forwarding fields are kept (--forwarded-allow-ips).
    pub trusted_proxies: crate::trusted_proxies::TrustedProxies,
    /// How requests are written for the app's processes.
    pub request_format: crate::exchange::RequestFormat,
}

/// What every connection may read of the server, and the one thing it may take from it: a
/// new request id.
pub struct Context {
    pub settings: ProxySettings,
    /// The server is shutting down: no new keep-alive promises.
    pub stopping: bool,
    /// Where request bodies and response backlogs too large for memory go: the instance
    /// directory, private to the server's user and removed at exit.
    pub spill_dir: Arc<Path>,
    /// Files answered by ferry itself: `--static-files-dir`, else `APP_DIR/public`.
    pub static_dir: Option<StaticDir>,
    next_request_id: u64,
}

impl Context {
    pub fn new(
        settings: ProxySettings,
        spill_dir: Arc<Path>,
        static_dir: Option<StaticDir>,
    ) -> Context {
        Context {
            settings,
            stopping: false,
            spill_dir,
            static_dir,
            next_request_id: 1,
        }
    }

    /// A request id the engine has not seen (the request reaches it with [`Action::Submit`]).
    pub fn new_request_id(&mut self) -> RequestId {
        let request = RequestId(self.next_request_id);
        self.next_request_id += 1;
        request
    }
}

/// A connection with output to write, by its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conn {
    Client(usize),
    Backend(usize),
}

/// What a connection wants done beyond itself. Keys are the server's keys of connections.
#[derive(Debug)]
pub enum Action {
    /// Write the connection's output at the end of this round of events: one write per
    /// connection per round, and the app processes it wakes run after ferry has handled
    /// everything that was ready, not in the middle of it.
    Flush(Conn),
    /// Arm the client's deadline at `at`, replacing any other (none: clear it).
    Deadline { client: usize, at: Option<Instant> },
    /// An input for the engine, fed to it in order after this round's events.
    Engine(Input),
    /// A line for the server log.
    Log(String),
    /// The client's current request ended: its access log line and its counts.
    RequestEnded {
        peer: std::net::IpAddr,
        record: Box<RequestRecord>,
    },
    /// The client's complete request, under a new id: the engine queues it.
    Submit { client: usize, request: RequestId },
    /// The request no longer belongs to its client connection (answered, or the client
    /// gone): the engine's later commands about it find nothing to do.
    Forget(RequestId),
    /// Deregister and drop the client connection (its request, if any, already settled).
    RemoveClient(usize),
    /// Close the app connection, whatever it was doing.
    CloseBackend(usize),
    /// The client of the exchange on the app connection left while the app works on it:
    /// the exchange goes on without it (see `Backend::abandon`); `record` is logged when it
    /// ends.
    Abandon {
        backend: usize,
        request: RequestId,
        peer: std::net::IpAddr,
        record: Option<Box<RequestRecord>>,
    },
    /// Read what the app sent on the connection (and relay it).
    ReadBackend { backend: usize, drain: bool },
    /// The client drained its output: read more of the app's response if reading paused.
    ResumeBackend(usize),
    /// The app connection failed or the app answered nonsense: settle its request.
    BackendBroken { backend: usize, why: String },
    /// The exchange on the app connection is over and it can carry another: keep it among
    /// the process's idle connections.
    ReturnToPool { backend: usize, process: ProcessId },
    /// Move what the client sent into its tunnel (`more`: bytes may wait in the socket).
    TunnelFromClient {
        client: usize,
        backend: usize,
        more: bool,
    },
    /// One side of a tunnel closed: end the session, close both once the client has what
    /// the app sent.
    CloseTunnel {
        request: RequestId,
        client: usize,
        backend: usize,
    },
    /// Carry out an admin command and give the connection its reply.
    AdminCommand { conn: usize, command: String },
    /// Deregister and drop the admin connection.
    CloseAdmin(usize),
}

/// The actions of one call, in the order they are to be applied.
#[derive(Default, Debug)]
pub struct Actions(Vec<Action>);

impl Actions {
    pub fn push(&mut self, action: Action) {
        self.0.push(action);
    }

    pub fn log(&mut self, line: impl Into<String>) {
        self.push(Action::Log(line.into()));
    }

    pub fn engine(&mut self, input: Input) {
        self.push(Action::Engine(input));
    }
}

impl IntoIterator for Actions {
    type Item = Action;
    type IntoIter = std::vec::IntoIter<Action>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}
