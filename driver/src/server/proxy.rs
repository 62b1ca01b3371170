//! The proxy's side that takes the server's knowledge of processes and requests: which app
//! connection a forwarded request goes on (an idle one, or a new one), what becomes of the
//! request when its connection breaks (retried, bounced to another process, failed), the
//! idle pools, and tunnels' ends. The connections themselves do the reading and writing.

use super::{token_of, Entry, Server};
use crate::app::BackendAddr;
use crate::backend::{Backend, BackendStream, BrokenExchange};
use crate::client::Phase;
use crate::observer::RequestRecord;
use crate::resources::{describe_exhaustion, is_exhaustion};
use ferry_engine::{Input, ProcessId, RequestId};
use mio::Interest;

impl Server {
    fn backend(&mut self, key: usize) -> Option<&mut Backend> {
        match self.entries.get_mut(key) {
            Some(Entry::Backend(backend)) => Some(backend),
            _ => None,
        }
    }

    /// Carries out the engine's Forward: sends the client's request to the process.
    pub(super) fn forward(&mut self, request: RequestId, process: ProcessId) {
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
                Err(e) if is_exhaustion(&e) => return self.cannot_connect(request, process, &e),
                Err(_) => return self.bounce(request, process),
            },
        };
        if let Some(pid) = self.children.get(&process).map(|c| c.process.pid) {
            if let Some(Entry::Client(client)) = self.entries.get_mut(key) {
                if let Some(record) = &mut client.record {
                    self.observer.forwarded(record, pid);
                }
            }
        }
        self.with_pair(backend_key, key, |backend, client, context, out| {
            backend.start_exchange(client, request, reused.is_some(), context, out)
        });
    }

    /// An idle keep-alive connection to the process that the app has not closed meanwhile;
    /// closed ones are dropped. (A process that exits closes them all.)
    fn open_idle_backend(&mut self, process: ProcessId) -> Option<usize> {
        loop {
            let key = self.children.get_mut(&process)?.idle_backends.pop()?;
            let Some(backend) = self.backend(key) else {
                continue;
            };
            if backend.quiet || backend.idle_still_open() {
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
        let connected = matches!(addr, BackendAddr::Unix(_));
        let backend = Backend::new(backend_key, stream, process, connected);
        entry.insert(Entry::Backend(Box::new(backend)));
        Ok(backend_key)
    }

    pub(super) fn backend_event(&mut self, key: usize, event: &mio::event::Event) {
        self.with_backend(key, |backend, _, out| backend.on_event(event, out));
    }

    pub(super) fn flush_backend_now(&mut self, key: usize) {
        self.with_backend(key, |backend, _, out| backend.flush_now(out));
    }

    /// Reads the app's response and relays it to the client (or, idle, sees whether the app
    /// closed the connection).
    pub(super) fn read_backend(&mut self, key: usize, drain: bool) {
        let Some(backend) = self.backend(key) else {
            return;
        };
        if backend.abandoned.is_some() {
            return self.with_backend(key, |backend, _, out| backend.discard_response(drain, out));
        }
        if backend.tunnel {
            if let Some((client_key, request)) = backend.exchange {
                self.tunnel_from_backend(key, client_key, request);
            }
            return;
        }
        let Some((client_key, _)) = backend.exchange else {
            // Idle: the app closing it is the only news there can be.
            if !backend.idle_still_open() {
                self.close_backend(key);
            }
            return;
        };
        let relayed = self.with_pair(key, client_key, |backend, client, context, out| {
            backend.relay_response(client, drain, context, out)
        });
        if !relayed {
            self.close_backend(key);
        }
    }

    /// Ferry is stopping: every response not yet begun tells its client the connection
    /// closes after it.
    pub(super) fn close_after_responses(&mut self) {
        for (_, entry) in self.entries.iter_mut() {
            if let Entry::Backend(backend) = entry {
                backend.close_after_response();
            }
        }
    }

    /// Reads what a process that has exited left in its connections (its child entry is gone
    /// already, so a connection found broken does not look for the exit again).
    pub(super) fn drain_backends_of(&mut self, process: ProcessId) {
        let keys: Vec<usize> = self
            .entries
            .iter()
            .filter_map(|(key, entry)| match entry {
                Entry::Backend(b)
                    if b.process == process && (b.exchange.is_some() || b.abandoned.is_some()) =>
                {
                    Some(key)
                }
                _ => None,
            })
            .collect();
        for key in keys {
            self.read_backend(key, true);
        }
    }

    /// The client drained its output: read more of the app's response.
    pub(super) fn resume_backend(&mut self, key: usize) {
        if self
            .backend(key)
            .is_some_and(|b| b.paused && b.exchange.is_some())
        {
            self.read_backend(key, true);
        }
    }

    /// A connection whose exchange is over joins its process's idle ones, if the process is
    /// still there.
    pub(super) fn return_to_pool(&mut self, key: usize, process: ProcessId) {
        match self.children.get_mut(&process) {
            Some(child) => child.idle_backends.push(key),
            None => self.close_backend(key),
        }
    }

    /// The connection to the app failed or the app answered nonsense.
    pub(super) fn backend_broken(&mut self, key: usize, why: &str) {
        let Some(backend) = self.backend(key) else {
            return;
        };
        let exchange = backend.exchange.take();
        let abandoned = backend.abandoned.as_ref().map(|a| a.request);
        let (reused, process) = (backend.reused, backend.process);
        let (undelivered, closed_as_reused) = (backend.undelivered(), backend.closed_as_reused());
        let (connected, got_bytes) = (backend.connected, backend.got_bytes);
        self.close_backend(key);
        if let Some(request) = abandoned {
            // Nobody waits for this request to be retried or answered. A process that died
            // under it fails it in the engine.
            if !self.reap_if_exited(process) {
                self.inputs.push_back(Input::RequestFailed { request });
            }
            return;
        }
        let Some((client_key, request)) = exchange else {
            return;
        };
        let mut retry = undelivered;
        if let Some(client) = self.client(client_key) {
            client.drop_backend();
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
        let response_started = self.client(client_key).is_some_and(|c| c.response_started);
        let broken = BrokenExchange::of(got_bytes, response_started);
        self.inputs.push_back(Input::RequestFailed { request });
        self.observer.failed(broken.as_str());
        if response_started {
            // Part of a response went out: the client must see it cut, not a complete one.
            self.log.line(&format!(
                "The app broke off its response ({}): {why}",
                broken.as_str()
            ));
            return self.with_client(client_key, |client, _, out| client.cut(request, out));
        }
        self.log.line(&format!(
            "The app gave no valid response ({}): {why}",
            broken.as_str()
        ));
        let detail = "the app did not send a valid response";
        self.with_client(client_key, |client, context, out| {
            client.answer_error(502, detail, context, out)
        });
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
        let what = describe_exhaustion(error);
        self.log.line(&format!(
            "Cannot connect to app process {pid}: {what}; the request gets a 503 (the process \
             is not at fault)"
        ));
        self.inputs.push_back(Input::ForwardFailed {
            request,
            error: error.to_string(),
        });
    }

    pub(super) fn close_backend(&mut self, key: usize) {
        if let Some(Entry::Backend(mut backend)) = self.entries.try_remove(key) {
            let _ = self.poll.registry().deregister(backend.stream.source());
            if let Some(child) = self.children.get_mut(&backend.process) {
                child.idle_backends.retain(|k| *k != key);
            }
            if let Some(abandoned) = backend.abandoned {
                // Its exchange has ended, whichever way: now its line is written.
                self.request_ended(abandoned.peer, abandoned.record);
            }
        }
    }

    /// The client of the exchange on `key` left while the app works on `request`: the
    /// exchange goes on without it, and the engine keeps the session until it ends.
    pub(super) fn abandon(
        &mut self,
        key: usize,
        request: RequestId,
        peer: std::net::IpAddr,
        record: Option<Box<RequestRecord>>,
    ) {
        let serving = self
            .backend(key)
            .is_some_and(|b| b.exchange.is_some_and(|(_, r)| r == request));
        if !serving {
            // Its exchange is over already: only the request is left to end.
            self.request_ended(peer, record);
            return self.inputs.push_back(Input::ClientGone { request });
        }
        self.with_backend(key, |backend, _, out| backend.abandon(peer, record, out));
    }

    /// The access log line and the counts of a request that has ended.
    fn request_ended(&mut self, peer: std::net::IpAddr, record: Option<Box<RequestRecord>>) {
        if let Some(record) = record {
            self.observed(|o| o.request_ended(peer, *record));
        }
    }

    /// The engine ended `request` (a timeout, its process's death) after its client had
    /// left: the exchange still reading its response is closed.
    pub(super) fn close_abandoned(&mut self, request: RequestId) {
        if self.requests.contains_key(&request) {
            return; // its client is still there
        }
        let key = self.entries.iter().find_map(|(key, entry)| match entry {
            Entry::Backend(b) if b.abandoned.as_ref().is_some_and(|a| a.request == request) => {
                Some(key)
            }
            _ => None,
        });
        if let Some(key) = key {
            self.close_backend(key);
        }
    }

    /// Moves what the client sent into its tunnel.
    pub(super) fn tunnel_from_client(&mut self, client_key: usize, backend_key: usize, more: bool) {
        let request = match self.client(client_key).map(|c| &c.phase) {
            Some(Phase::Tunnel { request, .. }) => *request,
            _ => return,
        };
        let moved = self.with_pair(backend_key, client_key, |backend, client, _, out| {
            crate::tunnel::from_client(client, backend, more, out)
        });
        if !moved {
            self.close_tunnel(request, client_key, backend_key);
        }
    }

    /// Moves what the app sent out of its tunnel.
    fn tunnel_from_backend(&mut self, backend_key: usize, client_key: usize, request: RequestId) {
        let moved = self.with_pair(backend_key, client_key, |backend, client, _, out| {
            crate::tunnel::from_backend(backend, client, request, out)
        });
        if !moved {
            self.close_tunnel(request, client_key, backend_key);
        }
    }

    /// Either side closed: the session ends, both connections close once the client has
    /// what the app sent.
    pub(super) fn close_tunnel(
        &mut self,
        request: RequestId,
        client_key: usize,
        backend_key: usize,
    ) {
        if self.requests.remove(&request).is_none() {
            return;
        }
        self.inputs.push_back(Input::RequestFinished { request });
        self.close_backend(backend_key);
        self.with_client(client_key, |client, _, out| {
            client.phase = Phase::Closing;
            client.queue_flush(out);
        });
    }
}
