//! Connections to app processes: sending a request, relaying the response, keeping the
//! connection alive for the next one.
//!
//! A [`Backend`] acts on its own socket and, while it serves one, on its client's output (the
//! server hands both in); the rest it asks for with [`Action`]s (see [`crate::actions`]):
//! whether a broken connection's request is retried, bounced or failed is the server's to
//! decide, since it knows the process.

use crate::actions::{Action, Actions, Conn, Context};
use crate::app::BackendAddr;
use crate::buffers::{read_into, OutBuf, ReadResult};
use crate::client::{Client, Phase};
use crate::exchange::{RelayOutcome, ResponseRelay};
use crate::observer::RequestRecord;
use ferry_engine::{Input, ProcessId, RequestId};
use mio::net::{TcpStream, UnixStream};

/// Response bytes buffered for a slow client before ferry stops reading from the app: the
/// cap of its spill file. (Beyond the memory window the backlog is on disk, so the app is
/// freed even for slow readers.)
const RESPONSE_BUFFER_MAX_BYTES: usize = 256 * 1024 * 1024;

/// Response bytes held in memory for a client whose backlog cannot go to disk (the spill
/// file could not be made) before ferry stops reading from the app.
const RESPONSE_MEMORY_MAX_BYTES: usize = 4 * 1024 * 1024;

/// Bytes read from an app connection at a time.
const BACKEND_READ_BYTES: usize = 256 * 1024;

pub enum BackendStream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl std::io::Read for BackendStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            BackendStream::Tcp(s) => s.read(buf),
            BackendStream::Unix(s) => s.read(buf),
        }
    }
}

impl std::io::Write for BackendStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            BackendStream::Tcp(s) => s.write(buf),
            BackendStream::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl BackendStream {
    pub fn connect(addr: &BackendAddr) -> std::io::Result<BackendStream> {
        Ok(match addr {
            BackendAddr::Tcp(addr) => {
                let stream = TcpStream::connect(*addr)?;
                let _ = stream.set_nodelay(true);
                BackendStream::Tcp(stream)
            }
            BackendAddr::Unix(path) => BackendStream::Unix(UnixStream::connect(path)?),
        })
    }

    pub fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            BackendStream::Tcp(s) => s,
            BackendStream::Unix(s) => s,
        }
    }

    fn take_error(&self) -> Option<std::io::Error> {
        match self {
            BackendStream::Tcp(s) => s.take_error().ok().flatten(),
            BackendStream::Unix(s) => s.take_error().ok().flatten(),
        }
    }
}

pub struct Backend {
    /// The server's key of this connection, named in the actions it pushes.
    pub key: usize,
    pub stream: BackendStream,
    pub process: ProcessId,
    /// The client and request being served; none while idle.
    pub exchange: Option<(usize, RequestId)>,
    pub out: OutBuf,
    pub inbuf: Vec<u8>,
    pub relay: Option<ResponseRelay>,
    /// Came from the idle pool: a failure before any response byte may be the app having
    /// closed it meanwhile, so the request is retried once on a new connection.
    pub reused: bool,
    pub got_bytes: bool,
    /// Some byte of the current request was written to the app.
    pub sent_bytes: bool,
    /// The connection was reset (or the app closed it as ferry wrote): the app did not read
    /// everything ferry sent, so it did not get the whole request.
    pub reset: bool,
    /// The connection is established: until then a failure means the process refused it,
    /// and nothing of the request reached the app.
    pub connected: bool,
    /// Reading stopped because the client's output buffer is full.
    pub paused: bool,
    /// The exchange became a tunnel (after a 101).
    pub tunnel: bool,
    /// A request body on disk still to send after `out`: the file and the next offset.
    pub body_file: Option<(crate::exchange::SpilledBody, u64)>,
    /// The exchange's client left while the app worked on it (see [`Backend::abandon`]).
    pub abandoned: Option<Abandoned>,
    /// Everything the app sent was read, or will raise a readable event: the last read found
    /// the socket empty (a short read or none) and the event that led to it did not report
    /// the app's end (else it read on to that end). Epoll is edge-triggered, so whatever
    /// arrives after such a read is announced: an idle connection like this is reused
    /// without reading it first to see whether the app closed it. A close that races the
    /// reuse is still caught (`closed_as_reused`: the request is sent again).
    pub quiet: bool,
}

/// An exchange whose client has gone: the app's response is read to its end and dropped.
pub struct Abandoned {
    pub request: RequestId,
    /// The client's address and its request's record, logged when the exchange ends.
    pub peer: std::net::IpAddr,
    pub record: Option<Box<RequestRecord>>,
    /// Where the relay puts the response bytes before they are dropped.
    sink: Vec<u8>,
}

impl Backend {
    /// Whether the app cannot have acted on the current request: no response byte came, and
    /// the connection never opened, carried nothing of the request yet, or was reset (the app
    /// closed it with request bytes unread — a listener that dies resets the connections it
    /// had not accepted).
    pub fn undelivered(&self) -> bool {
        !self.got_bytes && (!self.connected || !self.sent_bytes || self.reset)
    }

    /// A reused keep-alive connection the app closed cleanly before any response byte: most
    /// likely it closed the idle connection as ferry wrote (an app closes idle connections,
    /// not ones it answers on), but it may have read the request and died.
    pub fn closed_as_reused(&self) -> bool {
        self.reused && !self.got_bytes && !self.undelivered()
    }
}

/// How the app broke off an exchange while its process lives on: the reason a request is
/// logged and counted failed with (`ferry_failed_requests_total`). A process that died under
/// its request is the engine's to report instead ([`ferry_engine::FailReason`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokenExchange {
    /// The connection closed or broke before any byte of a response: 502.
    NoResponse,
    /// The app sent bytes that are not a valid response head: 502.
    InvalidResponse,
    /// The response had begun and broke off (ended early, or its body framing was wrong):
    /// the client sees it cut.
    ResponseCut,
}

impl BrokenExchange {
    /// A stable snake_case name, for the log and the metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            BrokenExchange::NoResponse => "no_response",
            BrokenExchange::InvalidResponse => "invalid_response",
            BrokenExchange::ResponseCut => "response_cut",
        }
    }

    /// An exchange broke after the app sent bytes (`got_bytes`) or none, of which its client
    /// got part (`response_started`) or none.
    pub fn of(got_bytes: bool, response_started: bool) -> BrokenExchange {
        if response_started {
            BrokenExchange::ResponseCut
        } else if got_bytes {
            BrokenExchange::InvalidResponse
        } else {
            BrokenExchange::NoResponse
        }
    }
}

fn is_reset(error: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        error.kind(),
        K::ConnectionReset | K::BrokenPipe | K::ConnectionRefused | K::ConnectionAborted
    )
}

impl Backend {
    /// A new connection to `process` (over a Unix socket it is connected at once).
    pub fn new(key: usize, stream: BackendStream, process: ProcessId, connected: bool) -> Backend {
        Backend {
            key,
            stream,
            process,
            exchange: None,
            out: OutBuf::default(),
            inbuf: Vec::new(),
            relay: None,
            reused: false,
            got_bytes: false,
            sent_bytes: false,
            reset: false,
            connected,
            paused: false,
            tunnel: false,
            body_file: None,
            abandoned: None,
            quiet: true,
        }
    }

    /// Starts sending `client`'s pending request on this connection (`reused`: it came from
    /// the idle pool).
    pub fn start_exchange(
        &mut self,
        client: &mut Client,
        request: RequestId,
        reused: bool,
        context: &Context,
        out: &mut Actions,
    ) {
        let Some(pending) = &client.pending else {
            return;
        };
        let mut relay = ResponseRelay::new(pending, context.settings.limits);
        if context.stopping {
            relay.close_after();
        }
        client.phase = Phase::Submitted {
            request,
            backend: Some(self.key),
        };
        self.out.buffer().extend_from_slice(&pending.forward);
        self.body_file = pending.spilled_body.clone().map(|body| (body, 0));
        self.exchange = Some((client.key, request));
        self.relay = Some(relay);
        self.reused = reused;
        self.got_bytes = false;
        self.sent_bytes = false;
        self.reset = false;
        out.push(Action::Flush(Conn::Backend(self.key)));
    }

    /// An idle connection the app has not closed (reading finds nothing and no end).
    pub fn idle_still_open(&mut self) -> bool {
        let mut probe = Vec::new();
        self.quiet = matches!(
            read_into(&mut self.stream, &mut probe, 1, true),
            ReadResult::Open
        ) && probe.is_empty();
        self.quiet
    }

    fn broken(&self, why: impl Into<String>, out: &mut Actions) {
        out.push(Action::BackendBroken {
            backend: self.key,
            why: why.into(),
        });
    }

    pub fn on_event(&mut self, event: &mio::event::Event, out: &mut Actions) {
        if event.is_writable() && !event.is_error() && !self.connected {
            self.connected = self.stream.take_error().is_none();
        }
        if event.is_error() {
            let error = self.stream.take_error();
            self.reset |= error.as_ref().is_some_and(is_reset);
            let text = error.map_or("connection error".to_string(), |e| e.to_string());
            return self.broken(text, out);
        }
        if event.is_writable() {
            self.flush_now(out);
        }
        if event.is_readable() || event.is_read_closed() {
            out.push(Action::ReadBackend {
                backend: self.key,
                drain: event.is_read_closed(),
            });
        }
    }

    /// Writes what it can of the request now (the socket is writable, or the round ends).
    pub fn flush_now(&mut self, out: &mut Actions) {
        loop {
            let before = self.out.pending();
            let flushed = self.out.flush_to(&mut self.stream);
            self.sent_bytes |= self.out.pending() < before;
            if let Err(e) = flushed {
                self.reset |= is_reset(&e);
                return self.broken(e.to_string(), out);
            }
            if !self.out.is_empty() {
                return;
            }
            let Some((body, offset)) = &mut self.body_file else {
                return;
            };
            let left = body.len_bytes - *offset;
            if left == 0 {
                self.body_file = None;
                return;
            }
            let chunk = self.out.buffer();
            chunk.resize(left.min(BACKEND_READ_BYTES as u64) as usize, 0);
            use std::os::unix::fs::FileExt;
            if let Err(e) = body.file.read_exact_at(chunk, *offset) {
                return self.broken(format!("cannot read the buffered request body: {e}"), out);
            }
            *offset += chunk.len() as u64;
        }
    }

    /// Reads the app's response and relays it to `client`, as far as the client's buffer
    /// allows.
    pub fn relay_response(
        &mut self,
        client: &mut Client,
        drain: bool,
        context: &mut Context,
        out: &mut Actions,
    ) {
        loop {
            self.paused = client.out.pending() >= RESPONSE_BUFFER_MAX_BYTES
                || client.out.in_memory() >= RESPONSE_MEMORY_MAX_BYTES;
            if self.paused {
                return; // resumed when the client drains
            }
            let result = read_into(&mut self.stream, &mut self.inbuf, BACKEND_READ_BYTES, drain);
            self.quiet = matches!(result, ReadResult::Open);
            self.got_bytes |= !self.inbuf.is_empty();
            // A socket read fails only on a reset: the app closed with unread request bytes.
            self.reset |= matches!(result, ReadResult::Failed);
            let relay = self.relay.as_mut().expect("an exchange has a relay");
            let mut outcome = relay.feed(&mut self.inbuf, client.out.buffer());
            if let Some(relayed) = relay.relayed() {
                client.responded(relayed);
            }
            // To disk now, not at the end of the round: reads of the whole round would pile
            // up in memory first.
            let spilled = client.out.spill_excess();
            if matches!(outcome, RelayOutcome::NeedMore)
                && matches!(result, ReadResult::Eof | ReadResult::Failed)
            {
                outcome = relay.eof();
            }
            client.response_started |= relay.head_sent();
            let client_keep_alive = relay.client_keep_alive();
            if let Err(e) = spilled {
                out.log(format!("Cannot buffer a response on disk: {e}"));
                return client.gone(out);
            }
            match outcome {
                RelayOutcome::NeedMore => {
                    client.queue_flush(out);
                    if matches!(result, ReadResult::Full) {
                        // Edge-triggered: the app may have more that no new event will
                        // announce.
                        continue;
                    }
                }
                RelayOutcome::Done { reusable } => {
                    self.exchange_done(client, reusable, client_keep_alive, context, out)
                }
                RelayOutcome::Upgraded => self.upgraded(client, out),
                RelayOutcome::Error(error) => self.broken(error.reason, out),
            }
            return;
        }
    }

    fn upgraded(&mut self, client: &mut Client, out: &mut Actions) {
        self.tunnel = true;
        self.relay = None;
        let Some((_, request)) = self.exchange else {
            return;
        };
        // A tunnel holds a connection, not the app's attention: the engine stops counting it
        // toward routing and scaling.
        out.engine(Input::SessionUpgraded { request });
        client.phase = Phase::Tunnel {
            request,
            backend: self.key,
        };
        client.reader.reset();
        // Bytes the client sent after its request already belong to the tunnel.
        out.push(Action::TunnelFromClient {
            client: client.key,
            backend: self.key,
            more: true,
        });
        client.queue_flush(out);
    }

    fn exchange_done(
        &mut self,
        client: &mut Client,
        reusable: bool,
        client_keep_alive: bool,
        context: &mut Context,
        out: &mut Actions,
    ) {
        let Some((_, request)) = self.exchange.take() else {
            return;
        };
        self.relay = None;
        // An app that answered before reading the whole request body left the connection
        // mid-request: it cannot carry another one.
        let fully_sent = self.out.is_empty() && self.body_file.is_none();
        let reusable = reusable && self.inbuf.is_empty() && fully_sent && !context.stopping;
        out.push(if reusable {
            Action::ReturnToPool {
                backend: self.key,
                process: self.process,
            }
        } else {
            Action::CloseBackend(self.key)
        });
        client.drop_backend();
        out.engine(Input::RequestFinished { request });
        client.finish_exchange(client_keep_alive, context, out);
    }

    /// The client left while the app works on the request. The connection stays and the
    /// rest of the request still goes out; the response is read to its end and dropped, so
    /// that the session, which the engine keeps, ends when the app is really done
    /// ([`Backend::discard_response`]). Closing it instead would free the process in the
    /// engine's eyes while the app still works, and the next request would wait inside it.
    pub fn abandon(
        &mut self,
        peer: std::net::IpAddr,
        record: Option<Box<RequestRecord>>,
        out: &mut Actions,
    ) {
        let Some((_, request)) = self.exchange.take() else {
            return;
        };
        self.abandoned = Some(Abandoned {
            request,
            peer,
            record,
            sink: Vec::new(),
        });
        out.engine(Input::ClientAbandoned { request });
        // Reading may have paused for the client; what the app sent meanwhile is read now.
        self.paused = false;
        out.push(Action::ReadBackend {
            backend: self.key,
            drain: true,
        });
    }

    /// Reads the response of an abandoned exchange and drops it; at its end the session ends
    /// and the connection closes (an abandoned exchange is rare: no need to keep it).
    pub fn discard_response(&mut self, drain: bool, out: &mut Actions) {
        loop {
            let result = read_into(&mut self.stream, &mut self.inbuf, BACKEND_READ_BYTES, drain);
            self.got_bytes |= !self.inbuf.is_empty();
            self.reset |= matches!(result, ReadResult::Failed);
            let (Some(relay), Some(abandoned)) = (self.relay.as_mut(), self.abandoned.as_mut())
            else {
                return;
            };
            let mut outcome = relay.feed(&mut self.inbuf, &mut abandoned.sink);
            abandoned.sink.clear();
            if matches!(outcome, RelayOutcome::NeedMore)
                && matches!(result, ReadResult::Eof | ReadResult::Failed)
            {
                outcome = relay.eof();
            }
            match outcome {
                RelayOutcome::NeedMore if matches!(result, ReadResult::Full) => continue,
                RelayOutcome::NeedMore => {}
                // The app answered (a switch of protocols too: nobody is left to use it).
                RelayOutcome::Done { .. } | RelayOutcome::Upgraded => {
                    let request = abandoned.request;
                    self.relay = None;
                    out.engine(Input::RequestFinished { request });
                    out.push(Action::CloseBackend(self.key));
                }
                RelayOutcome::Error(error) => self.broken(error.reason, out),
            }
            return;
        }
    }

    /// Ferry is stopping: a response not yet begun tells its client the connection closes
    /// after it (a client that found out only from the close would take it for a failure of
    /// its next request).
    pub fn close_after_response(&mut self) {
        if let Some(relay) = &mut self.relay {
            relay.close_after();
        }
    }
}
