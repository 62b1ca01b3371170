//! Client connections: reading requests, handing them to the engine, writing responses.
//!
//! A request reaches the engine only when its head and whole body are in: a slow client
//! never holds an app process.

use crate::buffers::{read_into, OutBuf, ReadResult};
use crate::exchange::{
    write_error, write_unavailable, Answer, ParsedRequest, ReadOutcome, RequestReader,
};
use crate::observer::RequestRecord;
use crate::server::{token_of, Entry, Flush, Server};
use crate::transport::Transport;
use ferry_engine::{Input, RejectReason, RequestId};
use mio::net::TcpStream;
use mio::Interest;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Bytes buffered from a client beyond the request being handled (pipelining) before ferry
/// stops reading from it.
const PIPELINE_BUFFER_MAX_BYTES: usize = 64 * 1024;

pub enum Phase {
    /// Reading a request head and body.
    Reading,
    /// Handed to the engine: queued, or being served by `backend` once forwarded.
    Submitted {
        request: RequestId,
        backend: Option<usize>,
    },
    /// The app switched protocols: bytes flow both ways between the client and `backend`
    /// until either side closes.
    Tunnel { request: RequestId, backend: usize },
    /// Answering from a static file (`static_serve`): the rest of the file goes out as the
    /// client takes it, then the connection is kept if `keep_alive`.
    Static { keep_alive: bool },
    /// Nothing more to read; close once the output is written.
    Closing,
}

pub struct Client {
    /// Plain TCP or TLS: the code here reads and writes both the same way.
    pub stream: Transport,
    pub inbuf: Vec<u8>,
    pub out: OutBuf,
    pub reader: RequestReader,
    pub phase: Phase,
    /// The request being served, ready to send to the app.
    pub pending: Option<ParsedRequest>,
    /// A response has started to go out: an error can no longer be sent as a page.
    pub response_started: bool,
    pub deadline: Option<Instant>,
    pub eof: bool,
    /// Reading stopped at the pipelining limit: bytes may wait in the socket with no event
    /// to announce them.
    pub stalled: bool,
    /// The part of a static file still to send, in [`Phase::Static`].
    pub static_body: Option<crate::static_files::FileRange>,
    /// The current request was sent once more after the app closed a reused connection
    /// without answering (see `Backend::closed_as_reused`).
    pub retried: bool,
    pub peer: std::net::IpAddr,
    /// The current request, for the access log and the metrics: from its first byte until
    /// its line is written.
    pub record: Option<RequestRecord>,
}

impl Server {
    /// A client accepted on a listener; `tls` for an HTTPS one.
    pub fn add_client(
        &mut self,
        tcp: TcpStream,
        peer: SocketAddr,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) {
        let _ = tcp.set_nodelay(true);
        let mut stream = match &tls {
            None => Transport::plain(tcp),
            Some(config) => match Transport::tls(tcp, config) {
                Ok(stream) => stream,
                Err(e) => return self.log.line(&format!("cannot start a TLS session: {e}")),
            },
        };
        let forwarding = crate::http::Peer {
            ip: peer.ip(),
            tls: stream.is_tls(),
            trusted: self.settings.trusted_proxies.trusts(peer.ip()),
        };
        // The TLS handshake is part of receiving the request: --header-timeout bounds it.
        let first_deadline = match stream.handshaking() {
            true => self.settings.head_timeout,
            false => self.settings.keep_alive_timeout,
        };
        let entry = self.entries.vacant_entry();
        let key = entry.key();
        if self
            .poll
            .registry()
            .register(
                &mut stream,
                token_of(key),
                Interest::READABLE | Interest::WRITABLE,
            )
            .is_err()
        {
            return;
        }
        entry.insert(Entry::Client(Box::new(Client {
            stream,
            inbuf: Vec::new(),
            out: OutBuf::spilling_to(self.spill_dir.clone()),
            reader: RequestReader::new(self.settings.limits, forwarding, self.spill_dir.clone()),
            phase: Phase::Reading,
            pending: None,
            response_started: false,
            deadline: None,
            eof: false,
            stalled: false,
            static_body: None,
            retried: false,
            peer: peer.ip(),
            record: None,
        })));
        self.set_deadline(key, Some(Instant::now() + first_deadline));
    }

    pub fn client(&mut self, key: usize) -> Option<&mut Client> {
        match self.entries.get_mut(key) {
            Some(Entry::Client(client)) => Some(client),
            _ => None,
        }
    }

    pub fn set_deadline(&mut self, key: usize, deadline: Option<Instant>) {
        let Some(client) = self.client(key) else {
            return;
        };
        let old = std::mem::replace(&mut client.deadline, deadline);
        if let Some(at) = old {
            self.deadlines.remove(&(at, key));
        }
        if let Some(at) = deadline {
            self.deadlines.insert((at, key));
        }
    }

    pub fn client_event(&mut self, key: usize, event: &mio::event::Event) {
        if event.is_writable() {
            self.flush_client_now(key);
        }
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            self.read_client(key, event.is_read_closed() || event.is_error());
        }
    }

    /// Reads what the client sent and acts on it.
    pub fn read_client(&mut self, key: usize, drain: bool) {
        loop {
            let Some(client) = self.client(key) else {
                return;
            };
            let limit = match client.phase {
                Phase::Reading => client.reader.buffer_limit(),
                _ => PIPELINE_BUFFER_MAX_BYTES,
            };
            let handshaking = client.stream.handshaking();
            let result = read_into(&mut client.stream, &mut client.inbuf, limit, drain);
            if handshaking && !client.stream.handshaking() && client.inbuf.is_empty() {
                // TLS is up and no request has begun: an idle keep-alive connection.
                let idle_until = Instant::now() + self.settings.keep_alive_timeout;
                self.set_deadline(key, Some(idle_until));
            }
            let client = self.client(key).expect("client exists");
            match result {
                ReadResult::Open | ReadResult::Full => {}
                ReadResult::Eof => client.eof = true,
                ReadResult::Failed => return self.client_gone(key),
            }
            if let Phase::Tunnel { backend, .. } = client.phase {
                return self.tunnel_from_client(key, backend, matches!(result, ReadResult::Full));
            }
            if let Phase::Submitted { .. } | Phase::Static { .. } = client.phase {
                client.stalled = matches!(result, ReadResult::Full);
                if client.eof {
                    // Gone while its request waited or ran: free the queue slot or the process.
                    self.client_gone(key);
                }
                // Further pipelined bytes wait in the socket until this exchange is done.
                return;
            }
            if !matches!(client.phase, Phase::Reading) {
                return;
            }
            self.advance_client(key);
            let still_full = self.client(key).is_some_and(|c| c.inbuf.len() >= limit);
            if !matches!(result, ReadResult::Full) {
                return;
            }
            if still_full {
                // The parser refuses heads over the limits before the buffer fills: a full
                // buffer it did not consume means a head that can never be accepted.
                return self.refuse(key, 431, "the request head is too large");
            }
        }
    }

    fn refuse(&mut self, key: usize, status: u16, reason: &str) {
        if let Some(client) = self.client(key) {
            client.phase = Phase::Closing;
            let written = write_error(client.out.buffer(), status, reason, Answer::CLOSING);
            client.responded(written);
            self.flush_client(key);
        }
    }

    /// The current request has ended: its access log line and its counts.
    fn request_ended(&mut self, key: usize) {
        let Some((peer, Some(record))) = self.client(key).map(|c| (c.peer, c.record.take())) else {
            return;
        };
        self.observed(|o| o.request_ended(peer, record));
    }

    /// Parses buffered bytes into a request and submits it, or answers an error.
    pub fn advance_client(&mut self, key: usize) {
        let now = Instant::now();
        let (head_timeout, body_timeout) = (self.settings.head_timeout, self.settings.body_timeout);
        let Some(client) = self.client(key) else {
            return;
        };
        if !matches!(client.phase, Phase::Reading) {
            return;
        }
        let started_before = client.reader.started();
        if client.record.is_none() && !client.inbuf.is_empty() {
            client.record = Some(RequestRecord::new(now));
        }
        match client.reader.feed(&mut client.inbuf, client.out.buffer()) {
            ReadOutcome::NeedMore => {
                if client.eof {
                    // Gone between requests, or mid-request: nothing to answer.
                    return self.close_client(key);
                }
                let started = client.reader.started();
                if started && !started_before {
                    // The head has a total deadline from its first byte: dribbling bytes
                    // cannot keep it alive.
                    self.set_deadline(key, Some(now + head_timeout));
                } else if client.reader.in_body() {
                    self.set_deadline(key, Some(now + body_timeout));
                }
                // A `100 Continue` may wait in the output.
                self.flush_client(key);
            }
            ReadOutcome::Error(error) => self.refuse(key, error.status, error.reason),
            ReadOutcome::Ready(parsed) => {
                if let Some(record) = &mut client.record {
                    record.summary = Some((*parsed.summary).clone());
                    record.queued_at = Some(now);
                }
                let Some(parsed) = self.serve_static(key, parsed) else {
                    return;
                };
                let client = self.client(key).expect("client exists");
                client.pending = Some(parsed);
                client.response_started = false;
                client.retried = false;
                self.set_deadline(key, None);
                let request = self.submit_request(key);
                let client = self.client(key).expect("client exists");
                client.phase = Phase::Submitted {
                    request,
                    backend: None,
                };
            }
        }
    }

    /// Writes the client's output at the end of this round of events (see
    /// `Server::flush_pending`).
    pub fn flush_client(&mut self, key: usize) {
        self.pending_flushes.push(Flush::Client(key));
    }

    pub fn flush_client_now(&mut self, key: usize) {
        let send_timeout = self.settings.send_timeout;
        let Some(client) = self.client(key) else {
            return;
        };
        if client.out.flush_to(&mut client.stream).is_err() {
            return self.client_gone(key);
        }
        let (empty, closing) = (
            client.out.is_empty() && !client.stream.output_pending(),
            matches!(client.phase, Phase::Closing),
        );
        let backend = match client.phase {
            Phase::Submitted { backend, .. } => backend,
            Phase::Tunnel { backend, .. } => Some(backend),
            _ => None,
        };
        if empty && closing {
            return self.close_client(key);
        }
        if !empty && !closing {
            self.set_deadline(key, Some(Instant::now() + send_timeout));
        }
        if let Some(backend) = backend {
            // The client took some output: the app's response may flow again.
            self.resume_backend(backend);
        }
        self.refill_static(key);
    }

    /// The response to the current request is complete: on to the next request, or close.
    pub fn finish_exchange(&mut self, key: usize, keep_alive: bool) {
        self.request_ended(key);
        let keep_alive_timeout = self.settings.keep_alive_timeout;
        let stopping = self.stopping;
        let Some(client) = self.client(key) else {
            return;
        };
        if let Phase::Submitted { request, .. } = client.phase {
            self.requests.remove(&request);
        }
        let client = self.client(key).expect("client exists");
        client.pending = None;
        if !keep_alive || stopping || client.eof && client.inbuf.is_empty() {
            client.phase = Phase::Closing;
            return self.flush_client(key);
        }
        client.phase = Phase::Reading;
        client.reader.reset();
        self.set_deadline(key, Some(Instant::now() + keep_alive_timeout));
        self.flush_client(key);
        // Pipelined bytes may already hold the next request, and reading may have stopped at
        // the pipelining limit.
        let Some(stalled) = self.client(key).map(|c| std::mem::take(&mut c.stalled)) else {
            return; // the flush found it gone
        };
        if stalled {
            self.read_client(key, true);
        } else {
            self.advance_client(key);
        }
    }

    /// The client went away or its connection broke: tell the engine, free everything.
    pub fn client_gone(&mut self, key: usize) {
        let Some(client) = self.client(key) else {
            return;
        };
        if let Phase::Tunnel { request, backend } = client.phase {
            client.phase = Phase::Closing;
            return self.close_tunnel(request, key, backend);
        }
        if let Phase::Submitted { request, backend } = client.phase {
            client.phase = Phase::Closing;
            self.requests.remove(&request);
            if let Some(backend) = backend {
                self.close_backend(backend);
            }
            self.inputs.push_back(Input::ClientGone { request });
        }
        self.close_client(key);
    }

    pub fn close_client(&mut self, key: usize) {
        if let Some(Phase::Submitted { .. } | Phase::Tunnel { .. }) =
            self.client(key).map(|c| &c.phase)
        {
            return self.client_gone(key);
        }
        self.request_ended(key);
        self.set_deadline(key, None);
        if let Some(Entry::Client(mut client)) = self.entries.try_remove(key) {
            client.stream.end();
            let _ = self.poll.registry().deregister(&mut client.stream);
        }
    }

    pub fn close_idle_clients(&mut self) {
        let idle: Vec<usize> = self
            .entries
            .iter()
            .filter_map(|(key, entry)| match entry {
                Entry::Client(c) if matches!(c.phase, Phase::Reading) && !c.reader.started() => {
                    Some(key)
                }
                _ => None,
            })
            .collect();
        for key in idle {
            self.close_client(key);
        }
    }

    pub fn client_deadline_passed(&mut self, key: usize, at: Instant) {
        let Some(client) = self.client(key) else {
            return;
        };
        if client.deadline != Some(at) {
            return;
        }
        client.deadline = None;
        match client.phase {
            Phase::Reading if client.reader.started() => {
                client.phase = Phase::Closing;
                let (status, reason) = (408, "the request was not received in time");
                let written = write_error(client.out.buffer(), status, reason, Answer::CLOSING);
                client.responded(written);
                self.flush_client(key);
                // A client that does not read its 408 is not waited for twice.
                self.set_deadline(
                    key,
                    Some(Instant::now() + std::time::Duration::from_secs(5)),
                );
            }
            // Idle keep-alive, or a client that stopped reading its response.
            _ => self.client_gone(key),
        }
    }

    /// Answers a request the engine rejected: 503, and the connection stays usable.
    pub fn reject(&mut self, request: RequestId, reason: RejectReason) {
        let Some(key) = self.requests.get(&request).copied() else {
            return;
        };
        let error_details = self.settings.error_details;
        let detail = match &reason {
            RejectReason::QueueFull => {
                "every app process is busy and the request queue is full".to_string()
            }
            RejectReason::ShuttingDown => "the server is shutting down".to_string(),
            RejectReason::QueueTimeout => {
                "every app process stayed busy for --max-request-queue-time".to_string()
            }
            RejectReason::SpawnFailing { error } if error_details => {
                format!("the app cannot start: {error}")
            }
            RejectReason::SpawnFailing { .. } => "the app cannot start at the moment".to_string(),
            RejectReason::OutOfResources { error } => {
                format!("ferry is out of resources ({error}); try again shortly")
            }
            RejectReason::UnknownGroup { group } => format!("ferry has no app {group}"),
        };
        let stopping = self.stopping;
        self.observer.rejected(&reason);
        if let Some(client) = self.client(key) {
            let answer = Answer::to(client.pending.as_ref(), !stopping);
            let written = write_unavailable(client.out.buffer(), &detail, answer);
            client.responded(written);
            self.finish_exchange(key, !answer.close);
        }
    }

    /// The app process died during the request: 502, or a cut connection if the response had
    /// begun.
    pub fn fail_request(&mut self, request: RequestId) {
        self.end_with_error(request, 502, "the app process handling this request died");
    }

    /// The request ran for --max-request-time: 504 (or a cut connection if the response had
    /// begun); the engine stops its process.
    pub fn time_out_request(&mut self, request: RequestId) {
        let reason = "the app did not answer within --max-request-time";
        self.end_with_error(request, 504, reason);
    }

    /// Ends a request the engine has ended without a response from the app: an error page,
    /// or a cut connection if the response had begun.
    fn end_with_error(&mut self, request: RequestId, status: u16, reason: &str) {
        let stopping = self.stopping;
        let Some(key) = self.requests.get(&request).copied() else {
            return;
        };
        let Some(client) = self.client(key) else {
            return;
        };
        match client.phase {
            Phase::Submitted {
                backend: Some(backend),
                ..
            } => {
                client.phase = Phase::Submitted {
                    request,
                    backend: None,
                };
                self.close_backend(backend);
            }
            Phase::Tunnel { backend, .. } => {
                client.phase = Phase::Closing;
                client.response_started = true;
                self.close_backend(backend);
            }
            _ => {}
        }
        let client = self.client(key).expect("client exists");
        if client.response_started {
            // What went out so far still goes; then the close tells the client it was cut.
            client.phase = Phase::Closing;
            self.requests.remove(&request);
            return self.flush_client(key);
        }
        let answer = Answer::to(client.pending.as_ref(), !stopping);
        let written = write_error(client.out.buffer(), status, reason, answer);
        client.responded(written);
        self.finish_exchange(key, !answer.close);
    }
}

impl Client {
    /// A response to the current request began: its status and body bytes so far.
    pub fn responded(&mut self, status_and_body_bytes: (u16, u64)) {
        if let Some(record) = &mut self.record {
            record.response = Some(status_and_body_bytes);
        }
    }
}
