//! Client connections: reading requests, handing them to the engine, writing responses.
//!
//! A request reaches the engine only when its head and whole body are in: a slow client
//! never holds an app process. A [`Client`] acts on its own socket and buffers; what it needs
//! from the rest of the server it asks for with [`Action`]s (see [`crate::actions`]).

use crate::actions::{Action, Actions, Conn, Context};
use crate::buffers::{read_into, OutBuf, ReadResult};
use crate::exchange::{
    write_error, write_unavailable, Answer, ParsedRequest, ReadOutcome, RequestReader,
};
use crate::observer::RequestRecord;
use crate::static_serve::{self, Refill, Served};
use crate::transport::Transport;
use ferry_engine::{Input, RejectReason, RequestId};
use std::time::{Duration, Instant};

/// Bytes buffered from a client beyond the request being handled (pipelining) before ferry
/// stops reading from it.
const PIPELINE_BUFFER_MAX_BYTES: usize = 64 * 1024;

/// How long a client that does not read its 408 is given before it is dropped.
const TIMEOUT_ANSWER_TIME: Duration = Duration::from_secs(5);

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
    /// The server's key of this connection, named in the actions it pushes.
    pub key: usize,
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
    /// Set by the server when it applies [`Action::Deadline`].
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
    /// The connection asked to be removed: it does nothing more.
    removed: bool,
}

impl Client {
    /// A client on `stream`, from `peer` (whose forwarding fields are trusted or not).
    pub fn new(
        key: usize,
        stream: Transport,
        peer: crate::http::Peer,
        context: &Context,
    ) -> Client {
        let spill_dir = context.spill_dir.clone();
        Client {
            key,
            stream,
            inbuf: Vec::new(),
            out: OutBuf::spilling_to(spill_dir.clone()),
            reader: RequestReader::new(
                context.settings.limits,
                peer,
                context.settings.request_format,
                spill_dir,
            ),
            phase: Phase::Reading,
            pending: None,
            response_started: false,
            deadline: None,
            eof: false,
            stalled: false,
            static_body: None,
            retried: false,
            peer: peer.ip,
            record: None,
            removed: false,
        }
    }

    pub fn arm_deadline(&self, at: Option<Instant>, out: &mut Actions) {
        out.push(Action::Deadline {
            client: self.key,
            at,
        });
    }

    /// Writes the output at the end of this round of events (see `Server::flush_pending`).
    pub fn queue_flush(&self, out: &mut Actions) {
        out.push(Action::Flush(Conn::Client(self.key)));
    }

    /// An idle keep-alive connection, between requests.
    pub fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Reading) && !self.reader.started()
    }

    /// Reads what the client sent and acts on it.
    pub fn read(&mut self, drain: bool, context: &mut Context, out: &mut Actions) {
        loop {
            if self.removed {
                return;
            }
            let limit = match self.phase {
                Phase::Reading => self.reader.buffer_limit(),
                _ => PIPELINE_BUFFER_MAX_BYTES,
            };
            let handshaking = self.stream.handshaking();
            let result = read_into(&mut self.stream, &mut self.inbuf, limit, drain);
            if handshaking && !self.stream.handshaking() && self.inbuf.is_empty() {
                // TLS is up and no request has begun: an idle keep-alive connection.
                let keep_alive_timeout = context.settings.keep_alive_timeout;
                self.arm_deadline(Some(Instant::now() + keep_alive_timeout), out);
            }
            match result {
                ReadResult::Open | ReadResult::Full => {}
                ReadResult::Eof => self.eof = true,
                ReadResult::Failed => return self.gone(out),
            }
            if let Phase::Tunnel { backend, .. } = self.phase {
                return out.push(Action::TunnelFromClient {
                    client: self.key,
                    backend,
                    more: matches!(result, ReadResult::Full),
                });
            }
            if let Phase::Submitted { .. } | Phase::Static { .. } = self.phase {
                self.stalled = matches!(result, ReadResult::Full);
                if self.eof {
                    // Gone while its request waited or ran: free the queue slot or the process.
                    self.gone(out);
                }
                // Further pipelined bytes wait in the socket until this exchange is done.
                return;
            }
            if !matches!(self.phase, Phase::Reading) {
                return;
            }
            self.advance(context, out);
            let still_full = !self.removed && self.inbuf.len() >= limit;
            if !matches!(result, ReadResult::Full) {
                return;
            }
            if still_full {
                // The parser refuses heads over the limits before the buffer fills: a full
                // buffer it did not consume means a head that can never be accepted.
                return self.refuse(431, "the request head is too large", out);
            }
        }
    }

    fn refuse(&mut self, status: u16, reason: &str, out: &mut Actions) {
        self.phase = Phase::Closing;
        let written = write_error(self.out.buffer(), status, reason, Answer::CLOSING);
        self.responded(written);
        self.queue_flush(out);
    }

    /// A response to the current request began: its status and body bytes so far.
    pub fn responded(&mut self, status_and_body_bytes: (u16, u64)) {
        if let Some(record) = &mut self.record {
            record.response = Some(status_and_body_bytes);
        }
    }

    /// The current request has ended: its access log line and its counts.
    fn request_ended(&mut self, out: &mut Actions) {
        if let Some(record) = self.record.take() {
            out.push(Action::RequestEnded {
                peer: self.peer,
                record: Box::new(record),
            });
        }
    }

    /// Parses buffered bytes into a request and submits it, or answers an error.
    pub fn advance(&mut self, context: &mut Context, out: &mut Actions) {
        let now = Instant::now();
        if self.removed || !matches!(self.phase, Phase::Reading) {
            return;
        }
        let settings = &context.settings;
        let started_before = self.reader.started();
        if self.record.is_none() && !self.inbuf.is_empty() {
            self.record = Some(RequestRecord::new(now));
        }
        match self.reader.feed(&mut self.inbuf, self.out.buffer()) {
            ReadOutcome::NeedMore => {
                if self.eof {
                    // Gone between requests, or mid-request: nothing to answer.
                    return self.close(out);
                }
                let started = self.reader.started();
                if started && !started_before {
                    // The head has a total deadline from its first byte: dribbling bytes
                    // cannot keep it alive.
                    self.arm_deadline(Some(now + settings.head_timeout), out);
                } else if self.reader.in_body() {
                    self.arm_deadline(Some(now + settings.body_timeout), out);
                }
                // A `100 Continue` may wait in the output.
                self.queue_flush(out);
            }
            ReadOutcome::Error(error) => self.refuse(error.status, error.reason, out),
            ReadOutcome::Ready(parsed) => {
                if let Some(record) = &mut self.record {
                    record.summary = Some((*parsed.summary).clone());
                    record.queued_at = Some(now);
                }
                let Some(parsed) = self.serve_static(parsed, context, out) else {
                    return;
                };
                self.pending = Some(parsed);
                self.response_started = false;
                self.retried = false;
                self.arm_deadline(None, out);
                let request = context.new_request_id();
                out.push(Action::Submit {
                    client: self.key,
                    request,
                });
                self.phase = Phase::Submitted {
                    request,
                    backend: None,
                };
            }
        }
    }

    /// Writes what it can of the output now (the socket is writable, or the round ends).
    pub fn flush_now(&mut self, context: &mut Context, out: &mut Actions) {
        if self.removed {
            return;
        }
        if self.out.flush_to(&mut self.stream).is_err() {
            return self.gone(out);
        }
        let empty = self.out.is_empty() && !self.stream.output_pending();
        let closing = matches!(self.phase, Phase::Closing);
        let backend = match self.phase {
            Phase::Submitted { backend, .. } => backend,
            Phase::Tunnel { backend, .. } => Some(backend),
            _ => None,
        };
        if empty && closing {
            return self.close(out);
        }
        if !empty && !closing {
            self.arm_deadline(Some(Instant::now() + context.settings.send_timeout), out);
        }
        if let Some(backend) = backend {
            // The client took some output: the app's response may flow again.
            out.push(Action::ResumeBackend(backend));
        }
        self.refill_static(context, out);
    }

    /// The response to the current request is complete: on to the next request, or close.
    pub fn finish_exchange(&mut self, keep_alive: bool, context: &mut Context, out: &mut Actions) {
        if self.removed {
            return;
        }
        self.request_ended(out);
        if let Phase::Submitted { request, .. } = self.phase {
            out.push(Action::Forget(request));
        }
        self.pending = None;
        if !keep_alive || context.stopping || self.eof && self.inbuf.is_empty() {
            self.phase = Phase::Closing;
            return self.queue_flush(out);
        }
        self.phase = Phase::Reading;
        self.reader.reset();
        let keep_alive_timeout = context.settings.keep_alive_timeout;
        self.arm_deadline(Some(Instant::now() + keep_alive_timeout), out);
        self.queue_flush(out);
        // Pipelined bytes may already hold the next request, and reading may have stopped at
        // the pipelining limit.
        if std::mem::take(&mut self.stalled) {
            self.read(true, context, out);
        } else {
            self.advance(context, out);
        }
    }

    /// The client went away or its connection broke: the engine is told, everything freed.
    pub fn gone(&mut self, out: &mut Actions) {
        if self.removed {
            return;
        }
        if let Phase::Tunnel { request, backend } = self.phase {
            self.phase = Phase::Closing;
            return out.push(Action::CloseTunnel {
                request,
                client: self.key,
                backend,
            });
        }
        if let Phase::Submitted { request, backend } = self.phase {
            self.phase = Phase::Closing;
            out.push(Action::Forget(request));
            match backend {
                // The app works on it: the exchange goes on without the client, and its
                // line is logged when the app is done.
                Some(backend) => out.push(Action::Abandon {
                    backend,
                    request,
                    peer: self.peer,
                    record: self.record.take().map(Box::new),
                }),
                None => out.engine(Input::ClientGone { request }),
            }
        }
        self.close(out);
    }

    /// Closes the connection; one with a request in the engine is [`Client::gone`] first.
    pub fn close(&mut self, out: &mut Actions) {
        if self.removed {
            return;
        }
        if let Phase::Submitted { .. } | Phase::Tunnel { .. } = self.phase {
            return self.gone(out);
        }
        self.request_ended(out);
        self.arm_deadline(None, out);
        self.removed = true;
        out.push(Action::RemoveClient(self.key));
    }

    /// The deadline the server had armed passed (it has cleared it).
    pub fn deadline_passed(&mut self, out: &mut Actions) {
        match self.phase {
            Phase::Reading if self.reader.started() => {
                self.phase = Phase::Closing;
                let (status, reason) = (408, "the request was not received in time");
                let written = write_error(self.out.buffer(), status, reason, Answer::CLOSING);
                self.responded(written);
                self.queue_flush(out);
                // A client that does not read its 408 is not waited for twice.
                self.arm_deadline(Some(Instant::now() + TIMEOUT_ANSWER_TIME), out);
            }
            // Idle keep-alive, or a client that stopped reading its response.
            _ => self.gone(out),
        }
    }

    /// Answers an error page to the current request (as its last response if the request
    /// or a stopping server wants), then moves on as [`Client::finish_exchange`] does.
    pub fn answer_error(
        &mut self,
        status: u16,
        detail: &str,
        context: &mut Context,
        out: &mut Actions,
    ) {
        let answer = Answer::to(self.pending.as_ref(), !context.stopping);
        let written = write_error(self.out.buffer(), status, detail, answer);
        self.responded(written);
        self.finish_exchange(!answer.close, context, out);
    }

    /// Answers a request the engine rejected: 503, and the connection stays usable.
    pub fn reject(&mut self, reason: &RejectReason, context: &mut Context, out: &mut Actions) {
        let detail = match reason {
            RejectReason::QueueFull => {
                "every app process is busy and the request queue is full".to_string()
            }
            RejectReason::ShuttingDown => "the server is shutting down".to_string(),
            RejectReason::QueueTimeout => {
                "every app process stayed busy for --max-request-queue-time".to_string()
            }
            RejectReason::SpawnFailing { error } if context.settings.error_details => {
                format!("the app cannot start: {error}")
            }
            RejectReason::SpawnFailing { .. } => "the app cannot start at the moment".to_string(),
            RejectReason::OutOfResources { error } => {
                format!("ferry is out of resources ({error}); try again shortly")
            }
            RejectReason::UnknownGroup { group } => format!("ferry has no app {group}"),
        };
        let answer = Answer::to(self.pending.as_ref(), !context.stopping);
        let written = write_unavailable(self.out.buffer(), &detail, answer);
        self.responded(written);
        self.finish_exchange(!answer.close, context, out);
    }

    /// Ends a request the engine has ended without a response from the app: an error page,
    /// or a cut connection if the response had begun.
    pub fn end_with_error(
        &mut self,
        request: RequestId,
        status: u16,
        reason: &str,
        context: &mut Context,
        out: &mut Actions,
    ) {
        match self.phase {
            Phase::Submitted {
                backend: Some(backend),
                ..
            } => {
                self.phase = Phase::Submitted {
                    request,
                    backend: None,
                };
                out.push(Action::CloseBackend(backend));
            }
            Phase::Tunnel { backend, .. } => {
                self.phase = Phase::Closing;
                self.response_started = true;
                out.push(Action::CloseBackend(backend));
            }
            _ => {}
        }
        if self.response_started {
            self.cut(request, out);
            return;
        }
        self.answer_error(status, reason, context, out);
    }

    /// The response had begun when its request failed: what went out so far still goes, then
    /// the close tells the client it was cut.
    pub fn cut(&mut self, request: RequestId, out: &mut Actions) {
        self.phase = Phase::Closing;
        out.push(Action::Forget(request));
        self.queue_flush(out);
    }

    /// The app connection serving the request is no longer part of it.
    pub fn drop_backend(&mut self) {
        if let Phase::Submitted { backend, .. } = &mut self.phase {
            *backend = None;
        }
    }

    /// Answers `parsed` from the static files directory if it names a file there (or tries
    /// to leave the directory); otherwise gives it back for the app.
    fn serve_static(
        &mut self,
        parsed: ParsedRequest,
        context: &mut Context,
        out: &mut Actions,
    ) -> Option<ParsedRequest> {
        let dir = context.static_dir.as_ref();
        let buffer = self.out.buffer();
        match static_serve::serve(
            dir,
            parsed,
            !context.stopping,
            buffer,
            &mut self.static_body,
        ) {
            Served::App(parsed) => return Some(parsed),
            Served::Refused { close, response } => {
                self.responded(response);
                self.arm_deadline(None, out);
                self.finish_exchange(!close, context, out);
            }
            Served::File { close, response } => {
                self.responded(response);
                self.arm_deadline(None, out);
                self.phase = Phase::Static { keep_alive: !close };
                self.refill_static(context, out);
            }
        }
        None
    }

    /// Moves the next part of the static file into the output while the backlog is small;
    /// once all of it is queued, the exchange is done.
    fn refill_static(&mut self, context: &mut Context, out: &mut Actions) {
        let Phase::Static { keep_alive } = self.phase else {
            return;
        };
        match static_serve::refill(&mut self.out, &mut self.static_body) {
            Refill::Partly { added } => {
                if added {
                    self.queue_flush(out);
                }
            }
            Refill::Done => self.finish_exchange(keep_alive, context, out),
            Refill::Broken => {
                // The close tells the client its response is cut short.
                self.phase = Phase::Closing;
                self.queue_flush(out);
            }
        }
    }
}
