//! Connections to app processes: sending a request, relaying the response, keeping the
//! connection alive for the next one.

use crate::app::BackendAddr;
use crate::buffers::{read_into, OutBuf, ReadResult};
use crate::client::Phase;
use crate::exchange::{RelayOutcome, ResponseRelay};
use crate::server::{token_of, Entry, Flush, Server};
use ferry_engine::{Input, ProcessId, RequestId};
use mio::net::{TcpStream, UnixStream};
use mio::Interest;

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
    fn connect(addr: &BackendAddr) -> std::io::Result<BackendStream> {
        Ok(match addr {
            BackendAddr::Tcp(addr) => {
                let stream = TcpStream::connect(*addr)?;
                let _ = stream.set_nodelay(true);
                BackendStream::Tcp(stream)
            }
            BackendAddr::Unix(path) => BackendStream::Unix(UnixStream::connect(path)?),
        })
    }

    fn source(&mut self) -> &mut dyn mio::event::Source {
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
}

impl Backend {
    /// Whether the app cannot have acted on the current request: no response byte came, and
    /// the connection never opened, carried nothing of the request yet, or was reset (the app
    /// closed it with request bytes unread — a listener that dies resets the connections it
    /// had not accepted).
    fn undelivered(&self) -> bool {
        !self.got_bytes && (!self.connected || !self.sent_bytes || self.reset)
    }

    /// A reused keep-alive connection the app closed cleanly before any response byte: most
    /// likely it closed the idle connection as ferry wrote (an app closes idle connections,
    /// not ones it answers on), but it may have read the request and died.
    fn closed_as_reused(&self) -> bool {
        self.reused && !self.got_bytes && !self.undelivered()
    }
}

fn is_reset(error: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        error.kind(),
        K::ConnectionReset | K::BrokenPipe | K::ConnectionRefused | K::ConnectionAborted
    )
}

impl Server {
    fn backend(&mut self, key: usize) -> Option<&mut Backend> {
        match self.entries.get_mut(key) {
            Some(Entry::Backend(backend)) => Some(backend),
            _ => None,
        }
    }

    /// Carries out the engine's Forward: sends the client's request to the process.
    pub fn forward(&mut self, request: RequestId, process: ProcessId) {
        let Some(key) = self.requests.get(&request).copied() else {
            return;
        };
        self.send_to_process(key, request, process, true);
    }

    fn send_to_process(
        &mut self,
        key: usize,
        request: RequestId,
        process: ProcessId,
        allow_reuse: bool,
    ) {
        let reused = if allow_reuse {
            self.open_idle_backend(process)
        } else {
            None
        };
        let backend_key = match reused {
            Some(backend_key) => backend_key,
            None => match self.connect_backend(process) {
                Ok(backend_key) => backend_key,
                Err(e) if crate::resources::is_exhaustion(&e) => {
                    return self.cannot_connect(request, process, &e)
                }
                Err(_) => return self.bounce(request, process),
            },
        };
        let Some(Entry::Client(client)) = self.entries.get_mut(key) else {
            return;
        };
        let Some(pending) = &client.pending else {
            return;
        };
        let mut relay = ResponseRelay::new(pending, self.settings.limits);
        if self.stopping {
            relay.close_after();
        }
        client.phase = Phase::Submitted {
            request,
            backend: Some(backend_key),
        };
        let bytes = pending.forward.clone();
        let body_file = pending.spilled_body.clone().map(|body| (body, 0));
        if let Some(pid) = self.children.get(&process).map(|c| c.process.pid) {
            if let Some(Entry::Client(client)) = self.entries.get_mut(key) {
                if let Some(record) = &mut client.record {
                    self.observer.forwarded(record, pid);
                }
            }
        }
        let backend = self.backend(backend_key).expect("backend exists");
        backend.out.buffer().extend_from_slice(&bytes);
        backend.body_file = body_file;
        backend.exchange = Some((key, request));
        backend.relay = Some(relay);
        backend.reused = reused.is_some();
        backend.got_bytes = false;
        backend.sent_bytes = false;
        backend.reset = false;
        self.flush_backend(backend_key);
        // An idle connection gets no new event for bytes the app sent meanwhile (a close).
        self.read_backend(backend_key, false);
    }

    /// An idle keep-alive connection to the process that the app has not closed meanwhile;
    /// closed ones are dropped. (A process that exits closes them all.)
    fn open_idle_backend(&mut self, process: ProcessId) -> Option<usize> {
        loop {
            let key = self.children.get_mut(&process)?.idle_backends.pop()?;
            let Some(backend) = self.backend(key) else {
                continue;
            };
            let mut probe = Vec::new();
            let open = matches!(
                read_into(&mut backend.stream, &mut probe, 1, true),
                ReadResult::Open
            ) && probe.is_empty();
            if open {
                return Some(key);
            }
            self.close_backend(key);
        }
    }

    fn connect_backend(&mut self, process: ProcessId) -> std::io::Result<usize> {
        let addr = match self.children.get(&process) {
            Some(child) => child.process.addr.clone(),
            None => return Err(std::io::Error::other("the process is gone")),
        };
        let mut stream = BackendStream::connect(&addr)?;
        let entry = self.entries.vacant_entry();
        let backend_key = entry.key();
        self.poll.registry().register(
            stream.source(),
            token_of(backend_key),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        entry.insert(Entry::Backend(Box::new(Backend {
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
            connected: matches!(addr, BackendAddr::Unix(_)),
            paused: false,
            tunnel: false,
            body_file: None,
        })));
        Ok(backend_key)
    }

    pub fn backend_event(&mut self, key: usize, event: &mio::event::Event) {
        if let Some(backend) = self.backend(key) {
            if event.is_writable() && !event.is_error() && !backend.connected {
                backend.connected = backend.stream.take_error().is_none();
            }
        }
        if event.is_error() {
            let Some(backend) = self.backend(key) else {
                return;
            };
            let error = backend.stream.take_error();
            backend.reset |= error.as_ref().is_some_and(is_reset);
            let text = error.map_or("connection error".to_string(), |e| e.to_string());
            return self.backend_broken(key, &text);
        }
        if event.is_writable() {
            self.flush_backend_now(key);
        }
        if event.is_readable() || event.is_read_closed() {
            self.read_backend(key, event.is_read_closed());
        }
    }

    /// Writes the request to the app at the end of this round of events (see
    /// `Server::flush_pending`).
    fn flush_backend(&mut self, key: usize) {
        self.pending_flushes.push(Flush::Backend(key));
    }

    pub fn flush_backend_now(&mut self, key: usize) {
        let Some(backend) = self.backend(key) else {
            return;
        };
        loop {
            let before = backend.out.pending();
            let flushed = backend.out.flush_to(&mut backend.stream);
            backend.sent_bytes |= backend.out.pending() < before;
            if let Err(e) = flushed {
                backend.reset |= is_reset(&e);
                return self.backend_broken(key, &e.to_string());
            }
            if !backend.out.is_empty() {
                return;
            }
            let Some((body, offset)) = &mut backend.body_file else {
                return;
            };
            let left = body.len_bytes - *offset;
            if left == 0 {
                backend.body_file = None;
                return;
            }
            let chunk = backend.out.buffer();
            chunk.resize(left.min(BACKEND_READ_BYTES as u64) as usize, 0);
            use std::os::unix::fs::FileExt;
            if let Err(e) = body.file.read_exact_at(chunk, *offset) {
                return self
                    .backend_broken(key, &format!("cannot read the buffered request body: {e}"));
            }
            *offset += chunk.len() as u64;
        }
    }

    /// Reads the app's response and relays it to the client, as far as the client's buffer
    /// allows.
    fn read_backend(&mut self, key: usize, drain: bool) {
        let Some(Entry::Backend(backend)) = self.entries.get_mut(key) else {
            return;
        };
        if backend.tunnel {
            if let Some((client_key, request)) = backend.exchange {
                self.tunnel_from_backend(key, client_key, request);
            }
            return;
        }
        let Some((client_key, _)) = backend.exchange else {
            // Idle: the app closing it is the only news there can be.
            let mut probe = Vec::new();
            if !matches!(
                read_into(&mut backend.stream, &mut probe, 1, true),
                ReadResult::Open
            ) || !probe.is_empty()
            {
                self.close_backend(key);
            }
            return;
        };
        let (client_backlog, in_memory) = match self.entries.get(client_key) {
            Some(Entry::Client(client)) => (client.out.pending(), client.out.in_memory()),
            _ => return self.close_backend(key),
        };
        let Some(Entry::Backend(backend)) = self.entries.get_mut(key) else {
            return;
        };
        backend.paused =
            client_backlog >= RESPONSE_BUFFER_MAX_BYTES || in_memory >= RESPONSE_MEMORY_MAX_BYTES;
        if backend.paused {
            return; // resumed when the client drains
        }
        let result = read_into(
            &mut backend.stream,
            &mut backend.inbuf,
            BACKEND_READ_BYTES,
            drain,
        );
        backend.got_bytes |= !backend.inbuf.is_empty();
        // A socket read fails only on a reset: the app closed with unread request bytes.
        backend.reset |= matches!(result, ReadResult::Failed);
        let (backend_entry, client_entry) = match self.entries.get2_mut(key, client_key) {
            Some((Entry::Backend(b), Entry::Client(c))) => (b, c),
            _ => return,
        };
        let relay = backend_entry
            .relay
            .as_mut()
            .expect("an exchange has a relay");
        let mut outcome = relay.feed(&mut backend_entry.inbuf, client_entry.out.buffer());
        if let Some(relayed) = relay.relayed() {
            client_entry.responded(relayed);
        }
        // To disk now, not at the end of the round: reads of the whole round would pile up in
        // memory first.
        let spilled = client_entry.out.spill_excess();
        if matches!(outcome, RelayOutcome::NeedMore)
            && matches!(result, ReadResult::Eof | ReadResult::Failed)
        {
            outcome = relay.eof();
        }
        client_entry.response_started |= relay.head_sent();
        let client_keep_alive = relay.client_keep_alive();
        if let Err(e) = spilled {
            self.log
                .line(&format!("Cannot buffer a response on disk: {e}"));
            return self.client_gone(client_key);
        }
        match outcome {
            RelayOutcome::NeedMore => {
                self.flush_client(client_key);
                if matches!(result, ReadResult::Full) {
                    // Edge-triggered: the app may have more that no new event will announce.
                    self.read_backend(key, drain);
                }
            }
            RelayOutcome::Done { reusable } => {
                self.exchange_done(key, client_key, reusable, client_keep_alive)
            }
            RelayOutcome::Upgraded => {
                let request = match self.backend(key) {
                    Some(backend) => {
                        backend.tunnel = true;
                        backend.relay = None;
                        backend.exchange.map(|(_, request)| request)
                    }
                    None => None,
                };
                if let Some(request) = request {
                    // A tunnel holds a connection, not the app's attention: the engine stops
                    // counting it toward routing and scaling.
                    self.inputs.push_back(Input::SessionUpgraded { request });
                }
                if let (Some(request), Some(client)) = (request, self.client(client_key)) {
                    client.phase = Phase::Tunnel {
                        request,
                        backend: key,
                    };
                    client.reader.reset();
                    // Bytes the client sent after its request already belong to the tunnel.
                    self.tunnel_from_client(client_key, key, true);
                    self.flush_client(client_key);
                }
            }
            RelayOutcome::Error(error) => self.backend_broken(key, error.reason),
        }
    }

    /// Ferry is stopping: every response not yet begun tells its client the connection
    /// closes after it (a client that found out only from the close would take it for a
    /// failure of its next request).
    pub fn close_after_responses(&mut self) {
        for (_, entry) in self.entries.iter_mut() {
            if let Entry::Backend(backend) = entry {
                if let Some(relay) = &mut backend.relay {
                    relay.close_after();
                }
            }
        }
    }

    /// Reads what a process that has exited left in its connections (its child entry is gone
    /// already, so a connection found broken does not look for the exit again).
    pub fn drain_backends_of(&mut self, process: ProcessId) {
        let keys: Vec<usize> = self
            .entries
            .iter()
            .filter_map(|(key, entry)| match entry {
                Entry::Backend(b) if b.process == process && b.exchange.is_some() => Some(key),
                _ => None,
            })
            .collect();
        for key in keys {
            self.read_backend(key, true);
        }
    }

    /// The client drained its output: read more of the app's response.
    pub fn resume_backend(&mut self, key: usize) {
        if self
            .backend(key)
            .is_some_and(|b| b.paused && b.exchange.is_some())
        {
            self.read_backend(key, true);
        }
    }

    fn exchange_done(
        &mut self,
        key: usize,
        client_key: usize,
        reusable: bool,
        client_keep_alive: bool,
    ) {
        let Some(backend) = self.backend(key) else {
            return;
        };
        let Some((_, request)) = backend.exchange.take() else {
            return;
        };
        backend.relay = None;
        let process = backend.process;
        // An app that answered before reading the whole request body left the connection
        // mid-request: it cannot carry another one.
        let fully_sent = backend.out.is_empty() && backend.body_file.is_none();
        let reusable = reusable && backend.inbuf.is_empty() && fully_sent && !self.stopping;
        match self.children.get_mut(&process) {
            Some(child) if reusable => child.idle_backends.push(key),
            _ => self.close_backend(key),
        }
        if let Some(client) = self.client(client_key) {
            if let Phase::Submitted { backend, .. } = &mut client.phase {
                *backend = None;
            }
        }
        self.inputs.push_back(Input::RequestFinished { request });
        self.finish_exchange(client_key, client_keep_alive);
    }

    /// The connection to the app failed or the app answered nonsense.
    fn backend_broken(&mut self, key: usize, why: &str) {
        let Some(backend) = self.backend(key) else {
            return;
        };
        let exchange = backend.exchange.take();
        let (reused, process) = (backend.reused, backend.process);
        let (undelivered, closed_as_reused) = (backend.undelivered(), backend.closed_as_reused());
        let connected = backend.connected;
        self.close_backend(key);
        let Some((client_key, request)) = exchange else {
            return;
        };
        let mut retry = undelivered;
        if let Some(client) = self.client(client_key) {
            if let Phase::Submitted { backend, .. } = &mut client.phase {
                *backend = None;
            }
            // Once per request: a request that kills the app on every try costs one more
            // process, not the pool.
            retry |= closed_as_reused && !std::mem::replace(&mut client.retried, true);
        }
        if retry {
            let alive = self
                .children
                .get_mut(&process)
                .is_some_and(|c| !c.process.has_exited());
            if reused && connected && alive {
                // The app may have closed an idle keep-alive connection as ferry reused it
                // (its keep-alive timeout): a fresh connection tells whether it still serves.
                return self.send_to_process(client_key, request, process, false);
            }
            // Dying or broken: the engine gives the request to another process, and hears of
            // the refusal before the exit, so that the exit does not fail the request.
            return self.bounce(request, process);
        }
        if self.reap_if_exited(process) {
            // The process died under the request: the engine fails it (502 or a cut
            // connection) and sends no more requests there.
            return;
        }
        if self.client(client_key).is_some_and(|c| c.response_started) {
            // Part of a response went out: the client must see it cut, not a complete one.
            self.inputs.push_back(Input::RequestFailed { request });
            self.requests.remove(&request);
            if let Some(client) = self.client(client_key) {
                // What went out so far still goes; then the close tells the client it was cut.
                client.phase = Phase::Closing;
            }
            return self.flush_client(client_key);
        }
        self.backend_failed_before_response(client_key, request, why);
    }

    /// The connection failed before the app could have acted on the request: nothing reached
    /// it, so the request can go elsewhere.
    fn bounce(&mut self, request: RequestId, process: ProcessId) {
        let pid = self.children.get(&process).map_or(0, |c| c.process.pid);
        self.log.line(&format!(
            "App process {pid} refused or dropped a connection before reading its request; \
             the request goes to another process"
        ));
        self.inputs.push_back(Input::ProcessRefused { request });
        self.reap_if_exited(process);
    }

    /// ferry could not open a connection to the process for want of its own descriptors
    /// or memory: the process is not at fault; the engine answers the request 503.
    fn cannot_connect(&mut self, request: RequestId, process: ProcessId, error: &std::io::Error) {
        let pid = self.children.get(&process).map_or(0, |c| c.process.pid);
        let what = crate::resources::describe_exhaustion(error);
        self.log.line(&format!(
            "Cannot connect to app process {pid}: {what}; the request gets a 503 (the process \
             is not at fault)"
        ));
        self.inputs.push_back(Input::ForwardFailed {
            request,
            error: error.to_string(),
        });
    }

    fn backend_failed_before_response(&mut self, client_key: usize, request: RequestId, why: &str) {
        self.log
            .line(&format!("The app gave no valid response: {why}"));
        self.inputs.push_back(Input::RequestFailed { request });
        let stopping = self.stopping;
        if let Some(client) = self.client(client_key) {
            let answer = crate::exchange::Answer::to(client.pending.as_ref(), !stopping);
            let detail = "the app did not send a valid response";
            let written = crate::exchange::write_error(client.out.buffer(), 502, detail, answer);
            client.responded(written);
            self.finish_exchange(client_key, !answer.close);
        }
    }

    pub fn close_backend(&mut self, key: usize) {
        if let Some(Entry::Backend(mut backend)) = self.entries.try_remove(key) {
            let _ = self.poll.registry().deregister(backend.stream.source());
            if let Some(child) = self.children.get_mut(&backend.process) {
                child.idle_backends.retain(|k| *k != key);
            }
        }
    }
}
