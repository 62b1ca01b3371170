//! Builders for the heads ferry writes: the request it sends to the app and the response
//! head it sends to the client. Both append to a caller-owned `Vec<u8>` so a connection can
//! reuse one buffer for every message.
//!
//! Request bodies always reach the app de-chunked and with a Content-Length (ferry buffers
//! them completely first), so the app never has to parse chunked input from a client;
//! request trailers are dropped (nothing in ferry's apps reads them, and merging them into
//! the header section is not allowed in general, RFC 9110 §6.5.2).

use std::io::Write as _;
use std::net::IpAddr;

use super::error_page::{canonical_reason, push_decimal};
use super::fields::{list_elements, Field, FieldKind};
use super::message::Version;
use super::request::{BodyFraming, RequestHead, TargetForm};
use super::response::{ResponseFraming, ResponseHead};

/// Writes the head of the request to send to the app:
/// - `METHOD TARGET HTTP/1.1` (an absolute-form target becomes origin-form, with its
///   authority as Host, since RFC 9112 §3.2.2 says it overrides any Host field);
/// - the client's fields minus hop-by-hop ones (Connection and the fields it lists, Keep-Alive,
///   Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade unless this is an upgrade),
///   minus Expect (ferry answers 100-continue itself and sends the whole body), minus
///   `Proxy`, and minus `X-Forwarded-*`, `Forwarded` and `X-Real-IP` unless the peer is a
///   trusted proxy ([`Peer::trusted`]);
/// - `X-Forwarded-For`: the peer's address, after the trusted peer's own list if it sent one
///   (each proxy appends the address it got the request from);
/// - `X-Forwarded-Proto`: a trusted peer's, else `https` over TLS and `http` otherwise;
/// - `X-Forwarded-Host`: a trusted peer's, else the request's host (if it names one);
/// - `Forwarded` (RFC 7239), only when a trusted peer sent one: its elements and then
///   ferry's, `for=<peer>;proto=<scheme>`;
/// - `Content-Length: <body_len_bytes>` when the request has a body framing (the body is sent
///   de-chunked); `body_len_bytes` is ignored for requests without one.
///
/// No Connection field: the app connection is kept alive (HTTP/1.1 default), except for an
/// upgrade, which gets `Connection: upgrade`.
pub fn write_request_head(
    head: &RequestHead,
    buf: &[u8],
    peer: Peer,
    body_len_bytes: u64,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(head.method(buf));
    out.push(b' ');
    let (target, slash) = app_target(head, buf);
    if slash {
        out.push(b'/');
    }
    out.extend_from_slice(target);
    out.extend_from_slice(b" HTTP/1.1\r\n");
    forwarded_fields(head, buf, peer, body_len_bytes, &mut HeadSink(out));
    out.extend_from_slice(b"\r\n");
}

/// The target the app gets, and whether it must be prefixed by `/`: an absolute-form
/// target becomes origin-form.
pub(crate) fn app_target<'b>(head: &RequestHead, buf: &'b [u8]) -> (&'b [u8], bool) {
    match head.target_form {
        TargetForm::Absolute { path_and_query, .. } => {
            let path_and_query = path_and_query.get(buf);
            (path_and_query, !path_and_query.starts_with(b"/"))
        }
        TargetForm::Origin | TargetForm::Asterisk => (head.target(buf), false),
    }
}

/// Where the fields for the app go, one at a time: the HTTP head ([`write_request_head`])
/// or the WSGI loader's frame (`wsgi_frame`). Both are written by [`forwarded_fields`], so
/// the two can never disagree on which fields the app gets.
pub(crate) trait FieldSink {
    /// A field named `name` begins: its value is appended to the buffer returned.
    fn begin(&mut self, name: &[u8]) -> &mut Vec<u8>;
    /// The field's value is complete.
    fn end(&mut self);
}

struct HeadSink<'o>(&'o mut Vec<u8>);

impl FieldSink for HeadSink<'_> {
    fn begin(&mut self, name: &[u8]) -> &mut Vec<u8> {
        self.0.extend_from_slice(name);
        self.0.extend_from_slice(b": ");
        self.0
    }

    fn end(&mut self) {
        self.0.extend_from_slice(b"\r\n");
    }
}

fn field(sink: &mut impl FieldSink, name: &[u8], value: &[u8]) {
    sink.begin(name).extend_from_slice(value);
    sink.end();
}

/// The fields the app gets, in order (see [`write_request_head`] for which).
pub(crate) fn forwarded_fields(
    head: &RequestHead,
    buf: &[u8],
    peer: Peer,
    body_len_bytes: u64,
    sink: &mut impl FieldSink,
) {
    let absolute = match head.target_form {
        TargetForm::Absolute { authority, .. } => {
            field(sink, b"Host", authority.get(buf));
            true
        }
        TargetForm::Origin | TargetForm::Asterisk => false,
    };
    for f in &head.headers {
        let forward = match f.kind {
            FieldKind::Connection
            | FieldKind::KeepAlive
            | FieldKind::ProxyConnection
            | FieldKind::Te
            | FieldKind::Trailer
            | FieldKind::TransferEncoding
            | FieldKind::ContentLength
            | FieldKind::Expect
            | FieldKind::Proxy => false,
            FieldKind::ForwardingInfo => {
                peer.trusted && forwarding_field(f.name.get(buf)).is_none()
            }
            FieldKind::Upgrade => head.upgrade,
            FieldKind::Host => !absolute,
            FieldKind::ContentType => true,
            FieldKind::Other => {
                !head.connection_lists_fields || !listed_in_connection(&head.headers, buf, f)
            }
        };
        if forward {
            field(sink, f.name.get(buf), f.value.get(buf));
        }
    }
    if head.upgrade {
        field(sink, b"Connection", b"upgrade");
    }
    write_forwarding_fields(head, buf, peer, sink);
    if head.framing != BodyFraming::None {
        push_decimal(sink.begin(b"Content-Length"), body_len_bytes);
        sink.end();
    }
}

/// Who sent a request, as far as the forwarding fields go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// The address the connection came from.
    pub ip: IpAddr,
    /// The connection is TLS: ferry reports the scheme as `https`.
    pub tls: bool,
    /// A proxy whose forwarding fields are believed (gunicorn's `forwarded_allow_ips`):
    /// they are kept and extended instead of dropped.
    pub trusted: bool,
}

/// The forwarding fields ferry writes itself (after a trusted peer's, for the lists).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Forwarding {
    For,
    Proto,
    Host,
    Forwarded,
}

fn forwarding_field(name: &[u8]) -> Option<Forwarding> {
    let is = |expected: &[u8]| name.eq_ignore_ascii_case(expected);
    if is(b"x-forwarded-for") {
        Some(Forwarding::For)
    } else if is(b"x-forwarded-proto") {
        Some(Forwarding::Proto)
    } else if is(b"x-forwarded-host") {
        Some(Forwarding::Host)
    } else if is(b"forwarded") {
        Some(Forwarding::Forwarded)
    } else {
        None
    }
}

/// Begins the field `name` with a trusted peer's values of it, comma-joined, and returns
/// where the rest of its value goes; `None` (nothing begun) when the peer sent none.
fn begin_trusted_list<'s, S: FieldSink>(
    head: &RequestHead,
    buf: &[u8],
    peer: Peer,
    which: Forwarding,
    name: &[u8],
    sink: &'s mut S,
) -> Option<&'s mut Vec<u8>> {
    let mut values = head.headers.iter().filter(|field| {
        peer.trusted
            && field.kind == FieldKind::ForwardingInfo
            && forwarding_field(field.name.get(buf)) == Some(which)
    });
    let first = values.next()?;
    let out = sink.begin(name);
    out.extend_from_slice(first.value.get(buf));
    for field in values {
        out.extend_from_slice(b", ");
        out.extend_from_slice(field.value.get(buf));
    }
    Some(out)
}

fn write_forwarding_fields(head: &RequestHead, buf: &[u8], peer: Peer, sink: &mut impl FieldSink) {
    let scheme: &[u8] = if peer.tls { b"https" } else { b"http" };
    let name = b"X-Forwarded-For";
    let out = match begin_trusted_list(head, buf, peer, Forwarding::For, name, sink) {
        Some(out) => {
            out.extend_from_slice(b", ");
            out
        }
        None => sink.begin(name),
    };
    push_ip(out, peer.ip);
    sink.end();
    let name = b"X-Forwarded-Proto";
    if begin_trusted_list(head, buf, peer, Forwarding::Proto, name, sink).is_none() {
        sink.begin(name).extend_from_slice(scheme);
    }
    sink.end();
    let name = b"X-Forwarded-Host";
    if begin_trusted_list(head, buf, peer, Forwarding::Host, name, sink).is_some() {
        sink.end();
    } else if let Some(host) = head.host(buf).filter(|host| !host.is_empty()) {
        field(sink, name, host);
    }
    if let Some(out) =
        begin_trusted_list(head, buf, peer, Forwarding::Forwarded, b"Forwarded", sink)
    {
        // RFC 7239 §6: an IPv6 address is bracketed and quoted.
        out.extend_from_slice(b", for=");
        match peer.ip {
            IpAddr::V4(_) => push_ip(out, peer.ip),
            IpAddr::V6(_) => {
                out.extend_from_slice(b"\"[");
                push_ip(out, peer.ip);
                out.extend_from_slice(b"]\"");
            }
        }
        out.extend_from_slice(b";proto=");
        out.extend_from_slice(scheme);
        sink.end();
    }
}

/// What the client connection needs to know about the response being relayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSide {
    pub version: Version,
    /// The client allows reuse ([`RequestHead::keep_alive`]) and ferry wants it (e.g. not
    /// shutting down).
    pub keep_alive: bool,
}

/// How to relay the response body to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyRelay {
    /// Nothing follows the head.
    None,
    /// Forward the app's body bytes unchanged (Content-Length or chunked): feed them to a
    /// [`super::BodyReader`] and forward `input[..consumed]` until it is done.
    Copy,
    /// The app's body is chunked but the client speaks HTTP/1.0: forward only the decoded
    /// data ranges the [`super::BodyReader`] reports; the client connection closes after.
    Dechunk,
    /// The body ends when the app closes: forward everything, then close the client.
    UntilClose,
    /// 101 Switching Protocols: relay bytes both ways until either side closes.
    Tunnel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponsePlan {
    pub relay: BodyRelay,
    /// Close the client connection after this response.
    pub close_client: bool,
}

/// Writes the response head for the client: `HTTP/1.1 <code> <reason>` (the app's reason, or
/// the canonical one if it sent none), the app's fields minus hop-by-hop ones, the framing
/// fields ferry relays the body with, and `Connection: close` when ferry will close
/// (`Connection: keep-alive` for an HTTP/1.0 client it keeps).
///
/// Interim (1xx) responses are written without framing or Connection fields; do not send them
/// to HTTP/1.0 clients, which do not expect them.
pub fn write_response_head(
    resp: &ResponseHead,
    buf: &[u8],
    client: ClientSide,
    out: &mut Vec<u8>,
) -> ResponsePlan {
    let relay = match resp.framing {
        ResponseFraming::None if resp.upgrade => BodyRelay::Tunnel,
        ResponseFraming::None => BodyRelay::None,
        ResponseFraming::Length(_) => BodyRelay::Copy,
        ResponseFraming::Chunked if client.version == Version::Http11 => BodyRelay::Copy,
        ResponseFraming::Chunked => BodyRelay::Dechunk,
        ResponseFraming::UntilClose => BodyRelay::UntilClose,
    };
    let interim = resp.is_interim();
    let passes_chunked = relay == BodyRelay::Copy && resp.framing == ResponseFraming::Chunked;
    let close_client = !interim
        && !resp.upgrade
        && (!client.keep_alive || matches!(relay, BodyRelay::Dechunk | BodyRelay::UntilClose));

    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, u64::from(resp.status));
    out.push(b' ');
    let reason = resp.reason(buf);
    if reason.is_empty() {
        out.extend_from_slice(canonical_reason(resp.status).as_bytes());
    } else {
        out.extend_from_slice(reason);
    }
    out.extend_from_slice(b"\r\n");

    for field in &resp.headers {
        let forward = match field.kind {
            FieldKind::Connection
            | FieldKind::KeepAlive
            | FieldKind::ProxyConnection
            | FieldKind::Te
            | FieldKind::TransferEncoding
            | FieldKind::ContentLength => false,
            FieldKind::Upgrade => resp.upgrade,
            // Announces the trailers of a chunked body; meaningless once they are dropped.
            FieldKind::Trailer => passes_chunked,
            FieldKind::Other => {
                !resp.connection_lists_fields || !listed_in_connection(&resp.headers, buf, field)
            }
            _ => true,
        };
        if forward {
            write_field(out, buf, field);
        }
    }

    if resp.upgrade {
        out.extend_from_slice(b"Connection: upgrade\r\n");
    } else if !interim {
        // 204 must not carry a Content-Length; HEAD and 304 keep it, as metadata.
        if let Some(length) = resp.content_length.filter(|_| resp.status != 204) {
            out.extend_from_slice(b"Content-Length: ");
            push_decimal(out, length);
            out.extend_from_slice(b"\r\n");
        }
        if passes_chunked {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
        }
        if close_client {
            out.extend_from_slice(b"Connection: close\r\n");
        } else if client.version == Version::Http10 {
            out.extend_from_slice(b"Connection: keep-alive\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
    ResponsePlan {
        relay,
        close_client,
    }
}

/// IPv4 by hand: `fmt` costs more than the rest of the request head together.
pub(crate) fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                push_decimal(out, u64::from(octet));
            }
        }
        IpAddr::V6(v6) => {
            // Writing into a Vec cannot fail.
            let _ = write!(out, "{v6}");
        }
    }
}

fn write_field(out: &mut Vec<u8>, buf: &[u8], field: &Field) {
    out.extend_from_slice(field.name.get(buf));
    out.extend_from_slice(b": ");
    out.extend_from_slice(field.value.get(buf));
    out.extend_from_slice(b"\r\n");
}

/// Whether `field`'s name is listed as an option in a Connection field of the same message
/// (RFC 9110 §7.6.1: such fields are hop-by-hop). Only ordinary fields are candidates, so a
/// client cannot use this to strip Host or Content-Type on the way to the app.
fn listed_in_connection(fields: &[Field], buf: &[u8], field: &Field) -> bool {
    let name = field.name.get(buf);
    fields
        .iter()
        .filter(|f| f.kind == FieldKind::Connection)
        .flat_map(|f| list_elements(f.value.get(buf)))
        .any(|option| option.eq_ignore_ascii_case(name))
}
