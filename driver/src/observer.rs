//! What ferry tells the world about its requests and its state: the access log, the metrics
//! and health listener (`--metrics-address`), and systemd's notifications. The server hands
//! it what happened (a request ended, was forwarded or rejected, a process became ready, a
//! stop began); nothing here decides anything.

use crate::access_log::{AccessLog, Entry, RequestSummary};
use crate::cli::StartArgs;
use crate::metrics::Metrics;
use crate::ops_http::{Answer, OpsConn, Route, CONNECTIONS_MAX, METRICS_CONTENT_TYPE};
use crate::sd_notify::Notifier;
use ferry_engine::{KillReason, PoolStatus, ProcessId, RejectReason, SpawnReason};
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use slab::Slab;
use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime};

/// The metrics listener's token.
pub const OPS_LISTENER: Token = Token(3);
/// Tokens from here on are the metrics listener's connections (the server's own entries
/// stay far below).
const FIRST_OPS_CONN: usize = 1 << 40;

/// One request as the access log and the metrics see it, from its first byte to its end.
#[derive(Clone, Debug)]
pub struct RequestRecord {
    pub started: Instant,
    /// The head, once read (a head the parser refused has none).
    pub summary: Option<RequestSummary>,
    /// When it was handed to the engine, until it leaves the queue.
    pub queued_at: Option<Instant>,
    /// The status and body bytes of the response, once one began.
    pub response: Option<(u16, u64)>,
    /// The app process it went to.
    pub pid: Option<u32>,
    /// From being handed to the engine until it went to a process: logged, so that a replay
    /// can tell waiting in the queue from being served.
    pub queue_time: Duration,
}

impl RequestRecord {
    pub fn new(started: Instant) -> RequestRecord {
        RequestRecord {
            started,
            summary: None,
            queued_at: None,
            response: None,
            pid: None,
            queue_time: Duration::ZERO,
        }
    }

    /// The status logged: the response's; a request with no response is 499 when its head
    /// was read (the client went away first, as nginx logs it) and 400 when it was not
    /// (the client closed mid-head).
    fn status_and_bytes(&self) -> (u16, u64) {
        self.response.unwrap_or(if self.summary.is_some() {
            (499, 0)
        } else {
            (400, 0)
        })
    }
}

pub struct Observer {
    access_log: Option<AccessLog>,
    pub metrics: Metrics,
    notifier: Option<Notifier>,
    listener: Option<TcpListener>,
    conns: Slab<OpsConn<TcpStream>>,
    /// How long a metrics connection may stay open (`--header-timeout`).
    ops_conn_time: Duration,
    /// An app process has been ready (or none is needed before requests come).
    serving: bool,
    /// Processes whose stop has been counted: a forced kill after a graceful one is the same
    /// stop.
    kills_counted: std::collections::HashSet<ProcessId>,
    ready_announced: bool,
    stopping: bool,
}

impl Observer {
    /// Opens the access log, binds the metrics address and reads `$NOTIFY_SOCKET`, each as
    /// `args` asks; an error names the flag and what to do.
    pub fn new(args: &StartArgs, registry: &Registry) -> Result<Observer, String> {
        let access_log = match &args.access_log {
            Some(path) => Some(AccessLog::open(path, args.access_log_format)?),
            None => None,
        };
        let listener = match args.metrics_address {
            Some(addr) => {
                let mut listener = TcpListener::bind(addr).map_err(|e| {
                    format!("--metrics-address {addr}: cannot listen there: {e} (choose a free port, or an address of this host)")
                })?;
                registry
                    .register(&mut listener, OPS_LISTENER, Interest::READABLE)
                    .map_err(|e| e.to_string())?;
                Some(listener)
            }
            None => None,
        };
        Ok(Observer {
            access_log,
            metrics: Metrics::default(),
            notifier: Notifier::from_env()?,
            listener,
            conns: Slab::new(),
            ops_conn_time: Duration::from_secs(args.header_timeout),
            serving: args.min_instances == 0,
            kills_counted: Default::default(),
            ready_announced: false,
            stopping: false,
        })
    }

    /// The metrics listener's address, for the banner.
    pub fn metrics_address(&self) -> Option<std::net::SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// `GET /ready` answers 200.
    pub fn ready(&self) -> bool {
        self.serving && !self.stopping
    }

    /// A request ended (answered, or its client gone): its line and its counts. The error,
    /// if any, is for the server's log.
    pub fn request_ended(&mut self, client: IpAddr, record: RequestRecord) -> Option<String> {
        let (status, body_bytes) = record.status_and_bytes();
        let request_time = record.started.elapsed();
        self.metrics.request_ended(status, request_time);
        let log = self.access_log.as_mut()?;
        let entry = Entry {
            client,
            request: record.summary.as_ref(),
            status,
            body_bytes,
            request_time,
            pid: record.pid,
            queue_time: record.queue_time,
            time: SystemTime::now(),
        };
        log.record(&entry).err()
    }

    /// The request went to app process `pid` (again, if the first try bounced).
    pub fn forwarded(&mut self, record: &mut RequestRecord, pid: u32) {
        record.pid = Some(pid);
        if let Some(queued_at) = record.queued_at.take() {
            let waited = queued_at.elapsed();
            record.queue_time += waited;
            self.metrics.request_forwarded(waited);
        }
    }

    pub fn rejected(&mut self, reason: &RejectReason) {
        self.metrics.rejected(reason);
    }

    /// A request that reached a process got no complete answer, for `reason`: told once per
    /// request, wherever the engine counts it failed (its 502s and 504s, and the exchanges
    /// the driver reports broken with `Input::RequestFailed`).
    pub fn failed(&mut self, reason: &'static str) {
        self.metrics.failed(reason);
    }

    pub fn spawned(&mut self, reason: SpawnReason) {
        self.metrics.spawned(reason.as_str());
    }

    /// The engine stops `process`: counted once per process, under the first kill's reason.
    pub fn kill_sent(&mut self, process: ProcessId, reason: KillReason) {
        if self.kills_counted.insert(process) {
            self.metrics.killed(reason.as_str());
        }
    }

    /// The process is gone (exited, or its spawn given up).
    pub fn process_gone(&mut self, process: ProcessId) {
        self.kills_counted.remove(&process);
    }

    /// An app process became ready: the first one makes ferry ready.
    pub fn process_ready(&mut self) -> Option<String> {
        self.serving = true;
        self.announce_ready()
    }

    /// `READY=1` to systemd, once, as soon as ferry serves (at start when --min-instances
    /// is 0: no process starts before a request comes).
    pub fn announce_ready(&mut self) -> Option<String> {
        if !self.serving || std::mem::replace(&mut self.ready_announced, true) {
            return None;
        }
        self.notify("READY=1")
    }

    /// A stop began: `/ready` answers 503 from now on, and systemd hears `STOPPING=1`.
    pub fn stop_began(&mut self) -> Option<String> {
        self.stopping = true;
        self.notify("STOPPING=1")
    }

    fn notify(&self, state: &str) -> Option<String> {
        self.notifier.as_ref()?.notify(state).err()
    }

    /// The end of a round of events: buffered lines are written.
    pub fn end_of_round(&mut self) -> Option<String> {
        self.access_log.as_mut()?.flush().err()
    }

    /// SIGUSR1: the access log is opened again (after a rotation). What to log about it.
    pub fn reopen_access_log(&mut self) -> Option<String> {
        let log = self.access_log.as_mut()?;
        Some(match log.reopen() {
            Ok(()) => format!("Reopened the access log {}", log.target()),
            Err(error) => format!("Cannot reopen the access log: {error}"),
        })
    }

    /// The token is the metrics listener's or one of its connections'.
    pub fn owns(token: Token) -> bool {
        token == OPS_LISTENER || token.0 >= FIRST_OPS_CONN
    }

    /// An event on one of [`owns`](Self::owns)'s tokens. `pool` gives the engine's status
    /// for `/metrics`.
    pub fn event(&mut self, token: Token, registry: &Registry, pool: impl Fn() -> PoolStatus) {
        if token == OPS_LISTENER {
            return self.accept(registry);
        }
        let key = token.0 - FIRST_OPS_CONN;
        let (ready, metrics) = (self.ready(), &self.metrics);
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let done = conn.on_ready(|route| match route {
            Route::Health => Answer::text(200, "ok\n"),
            Route::Ready if ready => Answer::text(200, "ready\n"),
            Route::Ready => Answer::text(503, "not ready: no app process ready yet, or stopping\n"),
            Route::Metrics => Answer {
                status: 200,
                content_type: METRICS_CONTENT_TYPE,
                body: metrics.render(&pool(), ready),
            },
        });
        if done {
            self.close(key, registry);
        }
    }

    fn accept(&mut self, registry: &Registry) {
        loop {
            let Some(listener) = &self.listener else {
                return;
            };
            let Ok((mut stream, _)) = listener.accept() else {
                // WouldBlock, or out of descriptors: the next event or connection retries.
                return;
            };
            if self.conns.len() >= CONNECTIONS_MAX {
                let oldest = self.oldest().map(|(key, _)| key);
                if let Some(key) = oldest {
                    self.close(key, registry);
                }
            }
            let entry = self.conns.vacant_entry();
            let token = Token(FIRST_OPS_CONN + entry.key());
            if registry
                .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
                .is_ok()
            {
                let deadline = Instant::now() + self.ops_conn_time;
                entry.insert(OpsConn::new(stream, deadline));
            }
        }
    }

    /// The metrics connection with the earliest deadline: the oldest.
    fn oldest(&self) -> Option<(usize, Instant)> {
        self.conns
            .iter()
            .map(|(key, conn)| (key, conn.deadline))
            .min_by_key(|&(_, deadline)| deadline)
    }

    /// When the next metrics connection is due to be closed, for the loop's poll timeout.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.oldest().map(|(_, deadline)| deadline)
    }

    /// Closes the metrics connections whose deadline has passed.
    pub fn close_expired(&mut self, now: Instant, registry: &Registry) {
        while let Some((key, deadline)) = self.oldest() {
            if deadline > now {
                return;
            }
            self.close(key, registry);
        }
    }

    fn close(&mut self, key: usize, registry: &Registry) {
        if let Some(mut conn) = self.conns.try_remove(key) {
            let _ = registry.deregister(&mut conn.stream);
        }
    }
}
