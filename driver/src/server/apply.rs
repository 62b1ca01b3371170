//! Where connections' [`Action`]s take effect, and the client side of the loop: handing each
//! connection its [`Context`] and an empty [`Actions`], then applying what it pushed.

use super::{token_of, Entry, Server};
use crate::actions::{Action, Actions, Context};
use crate::backend::Backend;
use crate::client::Client;
use crate::transport::Transport;
use mio::net::TcpStream;
use mio::Interest;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

impl Server {
    /// Applies `actions` in order. An action that makes a connection act applies that
    /// connection's actions before the next one (depth first), so effects come in the order
    /// direct calls would have made them.
    pub(super) fn apply(&mut self, actions: Actions) {
        for action in actions {
            self.apply_one(action);
        }
    }

    fn apply_one(&mut self, action: Action) {
        match action {
            Action::Flush(conn) => self.pending_flushes.push(conn),
            Action::Deadline { client, at } => self.set_deadline(client, at),
            Action::Engine(input) => self.inputs.push_back(input),
            Action::Log(line) => self.log.line(&line),
            Action::RequestEnded { peer, record } => {
                self.observed(|o| o.request_ended(peer, *record))
            }
            Action::Submit { client, request } => self.submit_request(client, request),
            Action::Forget(request) => {
                self.requests.remove(&request);
            }
            Action::RemoveClient(key) => self.remove_client(key),
            Action::CloseBackend(key) => self.close_backend(key),
            Action::Abandon {
                backend,
                request,
                peer,
                record,
            } => self.abandon(backend, request, peer, record),
            Action::ReadBackend { backend, drain } => self.read_backend(backend, drain),
            Action::ResumeBackend(key) => self.resume_backend(key),
            Action::BackendBroken { backend, why } => self.backend_broken(backend, &why),
            Action::ReturnToPool { backend, process } => self.return_to_pool(backend, process),
            Action::TunnelFromClient {
                client,
                backend,
                more,
            } => self.tunnel_from_client(client, backend, more),
            Action::CloseTunnel {
                request,
                client,
                backend,
            } => self.close_tunnel(request, client, backend),
            Action::AdminCommand { conn, command } => self.admin_command(conn, &command),
            Action::CloseAdmin(key) => self.close_admin(key),
        }
    }

    /// Runs `act` on connection `key` (if it is still open) and applies what it asked for.
    pub(super) fn with_entry(
        &mut self,
        key: usize,
        act: impl FnOnce(&mut Entry, &mut Context, &mut Actions),
    ) {
        let mut out = Actions::default();
        if let Some(entry) = self.entries.get_mut(key) {
            act(entry, &mut self.context, &mut out);
        }
        self.apply(out);
    }

    /// Runs `act` on client `key`, if it is still open.
    pub(super) fn with_client(
        &mut self,
        key: usize,
        act: impl FnOnce(&mut Client, &mut Context, &mut Actions),
    ) {
        self.with_entry(key, |entry, context, out| {
            if let Entry::Client(client) = entry {
                act(client, context, out);
            }
        });
    }

    /// Runs `act` on backend `key`, if it is still open.
    pub(super) fn with_backend(
        &mut self,
        key: usize,
        act: impl FnOnce(&mut Backend, &mut Context, &mut Actions),
    ) {
        self.with_entry(key, |entry, context, out| {
            if let Entry::Backend(backend) = entry {
                act(backend, context, out);
            }
        });
    }

    /// Runs `act` on backend `backend_key` and client `client_key` together; false (and
    /// nothing run) unless both are open.
    pub(super) fn with_pair(
        &mut self,
        backend_key: usize,
        client_key: usize,
        act: impl FnOnce(&mut Backend, &mut Client, &mut Context, &mut Actions),
    ) -> bool {
        let mut out = Actions::default();
        let Some((Entry::Backend(backend), Entry::Client(client))) =
            self.entries.get2_mut(backend_key, client_key)
        else {
            return false;
        };
        act(backend, client, &mut self.context, &mut out);
        self.apply(out);
        true
    }

    pub(super) fn client(&mut self, key: usize) -> Option<&mut Client> {
        match self.entries.get_mut(key) {
            Some(Entry::Client(client)) => Some(client),
            _ => None,
        }
    }

    /// A client accepted on a listener; `tls` for an HTTPS one.
    pub(super) fn add_client(
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
        let settings = &self.context.settings;
        let forwarding = crate::http::Peer {
            ip: peer.ip(),
            tls: stream.is_tls(),
            trusted: settings.trusted_proxies.trusts(peer.ip()),
        };
        // The TLS handshake is part of receiving the request: --header-timeout bounds it.
        let first_deadline = match stream.handshaking() {
            true => settings.head_timeout,
            false => settings.keep_alive_timeout,
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
        let client = Client::new(key, stream, forwarding, &self.context);
        entry.insert(Entry::Client(Box::new(client)));
        self.set_deadline(key, Some(Instant::now() + first_deadline));
    }

    fn set_deadline(&mut self, key: usize, deadline: Option<Instant>) {
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

    pub(super) fn client_event(&mut self, key: usize, event: &mio::event::Event) {
        if event.is_writable() {
            self.flush_client_now(key);
        }
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            let drain = event.is_read_closed() || event.is_error();
            self.with_client(key, |client, context, out| client.read(drain, context, out));
        }
    }

    pub(super) fn flush_client_now(&mut self, key: usize) {
        self.with_client(key, Client::flush_now);
    }

    /// A new request id's client, and the request for the engine.
    fn submit_request(&mut self, key: usize, request: ferry_engine::RequestId) {
        self.requests.insert(request, key);
        self.inputs.push_back(ferry_engine::Input::RequestArrived {
            group: self.group,
            request,
        });
    }

    fn remove_client(&mut self, key: usize) {
        self.set_deadline(key, None);
        if let Some(Entry::Client(mut client)) = self.entries.try_remove(key) {
            client.stream.end();
            let _ = self.poll.registry().deregister(&mut client.stream);
        }
    }

    /// Stopping: connections waiting for a next request are closed now.
    pub(super) fn close_idle_clients(&mut self) {
        let idle: Vec<usize> = self
            .entries
            .iter()
            .filter_map(|(key, entry)| match entry {
                Entry::Client(c) if c.is_idle() => Some(key),
                _ => None,
            })
            .collect();
        for key in idle {
            self.with_client(key, |client, _, out| client.close(out));
        }
    }

    /// The deadline `at` of client `key` passed (it is out of `deadlines` already).
    pub(super) fn client_deadline_passed(&mut self, key: usize, at: Instant) {
        self.with_client(key, |client, _, out| {
            if client.deadline == Some(at) {
                client.deadline = None;
                client.deadline_passed(out);
            }
        });
    }
}
