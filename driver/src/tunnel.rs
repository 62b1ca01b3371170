//! Upgraded connections (WebSocket and the like): after the app answers 101, ferry relays
//! bytes both ways untouched. The process session stays taken until either side closes,
//! which ends it with [`Action::CloseTunnel`].

use crate::actions::{Action, Actions};
use crate::backend::Backend;
use crate::buffers::{read_into, ReadResult};
use crate::client::{Client, Phase};
use ferry_engine::RequestId;

/// Bytes one side may have waiting for the other before the tunnel is closed: an upgraded
/// peer that stops reading must not make ferry buffer without bound.
const TUNNEL_BACKLOG_MAX_BYTES: usize = 4 * 1024 * 1024;

/// Bytes read from one side at a time.
const TUNNEL_READ_BYTES: usize = 64 * 1024;

fn close(request: RequestId, client: &Client, backend: &Backend, out: &mut Actions) {
    out.push(Action::CloseTunnel {
        request,
        client: client.key,
        backend: backend.key,
    });
}

/// Moves what the client sent to the app (`more`: bytes may wait in the client's socket).
pub fn from_client(client: &mut Client, backend: &mut Backend, more: bool, out: &mut Actions) {
    let Phase::Tunnel { request, .. } = client.phase else {
        return;
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
        close(request, client, backend, out);
    }
}

/// Moves what the app sent to the client.
pub fn from_backend(
    backend: &mut Backend,
    client: &mut Client,
    request: RequestId,
    out: &mut Actions,
) {
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
        if !matches!(result, ReadResult::Full) || client.out.pending() > TUNNEL_BACKLOG_MAX_BYTES {
            break;
        }
    }
    let flushed = client.out.flush_to(&mut client.stream).is_ok();
    if closed || !flushed || client.out.pending() > TUNNEL_BACKLOG_MAX_BYTES {
        close(request, client, backend, out);
    }
}
