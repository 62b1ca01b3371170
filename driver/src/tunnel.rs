//! Upgraded connections (WebSocket and the like): after the app answers 101, ferry relays
//! bytes both ways untouched. The process session stays taken until either side closes.

use crate::buffers::{read_into, ReadResult};
use crate::client::Phase;
use crate::server::{Entry, Server};
use ferry_engine::{Input, RequestId};

/// Bytes one side may have waiting for the other before the tunnel is closed: an upgraded
/// peer that stops reading must not make ferry buffer without bound.
const TUNNEL_BACKLOG_MAX_BYTES: usize = 4 * 1024 * 1024;

/// Bytes read from one side at a time.
const TUNNEL_READ_BYTES: usize = 64 * 1024;

impl Server {
    /// Moves what the client sent to the app.
    pub fn tunnel_from_client(&mut self, client_key: usize, backend_key: usize, more: bool) {
        let request = match self.client(client_key).map(|c| &c.phase) {
            Some(Phase::Tunnel { request, .. }) => *request,
            _ => return,
        };
        let Some((Entry::Client(client), Entry::Backend(backend))) =
            self.entries.get2_mut(client_key, backend_key)
        else {
            return self.close_tunnel(request, client_key, backend_key);
        };
        let mut result = if more {
            ReadResult::Full
        } else {
            ReadResult::Open
        };
        loop {
            backend.out.buffer().append(&mut client.inbuf);
            if client.eof
                || !matches!(result, ReadResult::Full)
                || backend.out.pending() > TUNNEL_BACKLOG_MAX_BYTES
            {
                break;
            }
            result = read_into(
                &mut client.stream,
                &mut client.inbuf,
                TUNNEL_READ_BYTES,
                true,
            );
            client.eof |= matches!(result, ReadResult::Eof | ReadResult::Failed);
        }
        let done = client.eof || backend.out.pending() > TUNNEL_BACKLOG_MAX_BYTES;
        if backend.out.flush_to(&mut backend.stream).is_err() || done {
            self.close_tunnel(request, client_key, backend_key);
        }
    }

    /// Moves what the app sent to the client.
    pub fn tunnel_from_backend(
        &mut self,
        backend_key: usize,
        client_key: usize,
        request: RequestId,
    ) {
        let Some((Entry::Backend(backend), Entry::Client(client))) =
            self.entries.get2_mut(backend_key, client_key)
        else {
            return self.close_tunnel(request, client_key, backend_key);
        };
        let mut closed = false;
        loop {
            let result = read_into(
                &mut backend.stream,
                &mut backend.inbuf,
                TUNNEL_READ_BYTES,
                true,
            );
            client.out.buffer().append(&mut backend.inbuf);
            closed |= matches!(result, ReadResult::Eof | ReadResult::Failed);
            if !matches!(result, ReadResult::Full)
                || client.out.pending() > TUNNEL_BACKLOG_MAX_BYTES
            {
                break;
            }
        }
        let flushed = client.out.flush_to(&mut client.stream).is_ok();
        if closed || !flushed || client.out.pending() > TUNNEL_BACKLOG_MAX_BYTES {
            self.close_tunnel(request, client_key, backend_key);
        }
    }

    /// Either side closed: the session ends, both connections close once the client has
    /// what the app sent.
    pub fn close_tunnel(&mut self, request: RequestId, client_key: usize, backend_key: usize) {
        if self.requests.remove(&request).is_none() {
            return;
        }
        self.inputs.push_back(Input::RequestFinished { request });
        self.close_backend(backend_key);
        if let Some(client) = self.client(client_key) {
            client.phase = Phase::Closing;
            self.flush_client(client_key);
        }
    }
}
