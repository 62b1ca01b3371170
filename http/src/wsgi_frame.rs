//! The request as ferry's own WSGI loader takes it: one frame holding the PEP 3333
//! `environ` variables already worked out, so the loader's Python builds `environ` with one
//! `split` and never parses HTTP. Apps started with `--app-start-command` still get the
//! HTTP head of [`write_request_head`](super::write_request_head).
//!
//! Layout (read by `driver/src/wsgi_loader/ferry_wsgi/frame.py`):
//!
//! ```text
//! byte 0      0x00 (FRAME_MAGIC): no HTTP request starts with it, so the loader, which
//!             still accepts HTTP, tells the two apart by each request's first byte
//! bytes 1..5  N, a big-endian u32: the length of what follows in the frame
//! byte 5      flags: FLAG_HEAD | FLAG_HTTP11 | FLAG_KEEP_ALIVE
//! N - 1 bytes KEY NUL VALUE NUL ... KEY NUL VALUE, latin-1, no NUL after the last value
//! ```
//!
//! and then the body, `CONTENT_LENGTH` bytes, exactly as after the HTTP head. No key or
//! value can hold a NUL: ferry's parser refuses it in targets and field values. That is
//! why PATH_INFO goes raw (a decoded `%00` would be a NUL): the loader percent-decodes it
//! when it holds a `%`.
//!
//! The variables are those the loader derives from the HTTP head ferry would send, by the
//! loader's rules (`request.py`, `read_request`), so an app sees the same `environ` either
//! way (`driver/src/wsgi_loader/frame_check_tests.rs` checks this against the loader
//! itself):
//! - the fields are exactly the HTTP head's, from the same walk over them
//!   ([`forwarded_fields`]): each becomes `HTTP_` + its name upper-cased with `-` as `_`
//!   (`CONTENT_TYPE` / `CONTENT_LENGTH` without the prefix), names with `_` are dropped,
//!   values are stripped of SP / HTAB, and repeats are joined with `,` (`; ` for Cookie);
//! - REQUEST_METHOD, SERVER_PROTOCOL (`HTTP/1.1`, what the HTTP head says), REQUEST_URI
//!   (the target as forwarded), PATH_INFO (raw), QUERY_STRING;
//! - `wsgi.url_scheme` from the first X-Forwarded-Proto element (`http` unless it is
//!   `http` or `https`), HTTPS=on for https, SERVER_NAME / SERVER_PORT from Host, and
//!   REMOTE_ADDR from the last X-Forwarded-For element (ferry's own: the peer's address).

use std::ops::Range;

use super::forward::{app_target, forwarded_fields, FieldSink, Peer};
use super::request::RequestHead;

/// The first byte of a frame.
pub const FRAME_MAGIC: u8 = 0;
/// The request is HEAD: the response has no body.
pub const FLAG_HEAD: u8 = 1;
/// The request is HTTP/1.1 (chunked responses allowed).
pub const FLAG_HTTP11: u8 = 2;
/// The loader may keep the connection after the response.
pub const FLAG_KEEP_ALIVE: u8 = 4;
/// Bytes before the variables: magic, length, flags.
const PREFIX_BYTES: usize = 6;

/// Appends the frame for `head` (parsed from `buf`, sent by `peer`) to `out`; the body
/// (`body_len_bytes` of it, when the request has one) goes after it.
pub fn write_wsgi_frame(
    head: &RequestHead,
    buf: &[u8],
    peer: Peer,
    body_len_bytes: u64,
    out: &mut Vec<u8>,
) {
    let start = out.len();
    out.extend_from_slice(&[FRAME_MAGIC, 0, 0, 0, 0, 0]);
    let mut sink = EnvironSink {
        out,
        entries: Vec::with_capacity(head.headers.len() + 6),
        key: 0..0,
        discard: None,
    };
    forwarded_fields(head, buf, peer, body_len_bytes, &mut sink);

    let (target, slash) = app_target(head, buf);
    let scheme: &[u8] = match sink.value_of(b"HTTP_X_FORWARDED_PROTO") {
        Some(proto) => {
            let first = proto.split(|&b| b == b',').next().unwrap_or_default();
            if py_stripped(first).eq_ignore_ascii_case(b"https") {
                b"https"
            } else {
                b"http"
            }
        }
        None => b"http",
    };
    let (server_name, server_port) =
        server_name_port(sink.out, sink.range_of(b"HTTP_HOST"), scheme);
    let remote = match sink.range_of(b"HTTP_X_FORWARDED_FOR") {
        Some(xff) => {
            let last = xff.start
                + sink.out[xff.clone()]
                    .iter()
                    .rposition(|&b| b == b',')
                    .map_or(0, |i| i + 1);
            let remote = py_strip(sink.out, last..xff.end);
            if remote.is_empty() {
                Text::Literal(b"127.0.0.1")
            } else {
                Text::Frame(remote)
            }
        }
        None => Text::Literal(b"127.0.0.1"),
    };
    // ferry's head says HTTP/1.1 whatever the client spoke; the rule is the loader's.
    let http11 = true;
    let keep_alive = match sink.value_of(b"HTTP_CONNECTION") {
        None => http11,
        Some(options) => {
            let mut options = options.split(|&b| b == b',').map(py_stripped);
            let (mut close, mut keep) = (false, false);
            for option in &mut options {
                close |= option.eq_ignore_ascii_case(b"close");
                keep |= option.eq_ignore_ascii_case(b"keep-alive");
            }
            !close && (http11 || keep)
        }
    };

    let out = sink.out;
    let method = head.method(buf);
    variable(out, b"REQUEST_METHOD", method);
    variable(out, b"SERVER_PROTOCOL", b"HTTP/1.1");
    out.extend_from_slice(b"REQUEST_URI\0");
    if slash {
        out.push(b'/');
    }
    out.extend_from_slice(target);
    out.push(0);
    let (path, query) = match target.iter().position(|&b| b == b'?') {
        Some(i) => (&target[..i], &target[i + 1..]),
        None => (target, &b""[..]),
    };
    out.extend_from_slice(b"PATH_INFO\0");
    if slash {
        out.push(b'/');
    }
    out.extend_from_slice(path);
    out.push(0);
    variable(out, b"QUERY_STRING", query);
    variable(out, b"wsgi.url_scheme", scheme);
    if scheme == b"https" {
        variable(out, b"HTTPS", b"on");
    }
    for (key, text) in [
        (&b"SERVER_NAME"[..], server_name),
        (b"SERVER_PORT", server_port),
        (b"REMOTE_ADDR", remote),
    ] {
        out.extend_from_slice(key);
        out.push(0);
        match text {
            Text::Frame(range) => out.extend_from_within(range),
            Text::Literal(bytes) => out.extend_from_slice(bytes),
        }
        out.push(0);
    }
    out.pop(); // the NUL after the last value

    let len = u32::try_from(out.len() - start - 5).unwrap_or(u32::MAX);
    out[start + 1..start + 5].copy_from_slice(&len.to_be_bytes());
    let mut flags = 0;
    if method == b"HEAD" {
        flags |= FLAG_HEAD;
    }
    if http11 {
        flags |= FLAG_HTTP11;
    }
    if keep_alive {
        flags |= FLAG_KEEP_ALIVE;
    }
    out[start + PREFIX_BYTES - 1] = flags;
}

fn variable(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    out.extend_from_slice(key);
    out.push(0);
    out.extend_from_slice(value);
    out.push(0);
}

/// One variable written into the frame so far: where its key and value are in `out`.
struct Entry {
    key: Range<usize>,
    value: Range<usize>,
}

/// Writes each field as its environ variable, straight into the frame.
struct EnvironSink<'o> {
    out: &'o mut Vec<u8>,
    entries: Vec<Entry>,
    /// The key of the field being written.
    key: Range<usize>,
    /// The field being written is dropped (its name has `_`): its value goes here.
    discard: Option<Vec<u8>>,
}

impl EnvironSink<'_> {
    /// Where the value of `key` is in the frame.
    fn range_of(&self, key: &[u8]) -> Option<Range<usize>> {
        self.entries
            .iter()
            .find(|e| &self.out[e.key.clone()] == key)
            .map(|e| e.value.clone())
    }

    fn value_of(&self, key: &[u8]) -> Option<&[u8]> {
        self.range_of(key).map(|range| &self.out[range])
    }
}

/// A derived variable's value: bytes already in the frame, or a default.
#[derive(Clone)]
enum Text {
    Frame(Range<usize>),
    Literal(&'static [u8]),
}

impl FieldSink for EnvironSink<'_> {
    fn begin(&mut self, name: &[u8]) -> &mut Vec<u8> {
        if name.contains(&b'_') {
            // The loader drops these so that `X_Forwarded_For` cannot pose as
            // X-Forwarded-For (ferry's parser drops them first).
            let discard = self.discard.insert(Vec::new());
            return discard;
        }
        let out = &mut *self.out;
        let start = out.len();
        if name.eq_ignore_ascii_case(b"content-type") {
            out.extend_from_slice(b"CONTENT_TYPE");
        } else if name.eq_ignore_ascii_case(b"content-length") {
            out.extend_from_slice(b"CONTENT_LENGTH");
        } else {
            out.extend_from_slice(b"HTTP_");
            let at = out.len();
            out.resize(at + name.len(), 0);
            for (key, &b) in out[at..].iter_mut().zip(name) {
                *key = KEY_BYTES[usize::from(b)];
            }
        }
        self.key = start..out.len();
        out.push(0);
        out
    }

    fn end(&mut self) {
        if self.discard.take().is_some() {
            return;
        }
        let out = &mut *self.out;
        let value_start = self.key.end + 1;
        let trimmed = trim_sp_htab(&out[value_start..]);
        let trimmed = value_start + trimmed.start..value_start + trimmed.end;
        if trimmed.start != value_start || trimmed.end != out.len() {
            out.copy_within(trimmed.clone(), value_start);
            out.truncate(value_start + trimmed.len());
        }
        let key = self.key.clone();
        let earlier = self
            .entries
            .iter()
            .position(|e| out[e.key.clone()] == out[key.clone()]);
        let Some(index) = earlier else {
            self.entries.push(Entry {
                key,
                value: value_start..out.len(),
            });
            out.push(0);
            return;
        };
        // A repeated field (rare): its value joins the earlier one's, as the loader joins
        // repeated header lines.
        let separator: &[u8] = if &out[key.clone()] == b"HTTP_COOKIE" {
            b"; "
        } else {
            b","
        };
        let mut joined = separator.to_vec();
        joined.extend_from_slice(&out[value_start..]);
        out.truncate(key.start);
        let at = self.entries[index].value.end;
        out.splice(at..at, joined.iter().copied());
        self.entries[index].value.end += joined.len();
        for later in &mut self.entries[index + 1..] {
            later.key = later.key.start + joined.len()..later.key.end + joined.len();
            later.value = later.value.start + joined.len()..later.value.end + joined.len();
        }
    }
}

/// A field name's byte as it is in its environ key: upper-cased, `-` as `_`.
static KEY_BYTES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = if b == b'-' {
            b'_'
        } else {
            b.to_ascii_uppercase()
        };
        i += 1;
    }
    table
};

/// Python's `str.strip(" \t")`, as a range of `value`.
fn trim_sp_htab(value: &[u8]) -> Range<usize> {
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !blank(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !blank(b))
        .map_or(start, |i| i + 1);
    start..end
}

/// Python's `str.strip()` on the latin-1 string `text[range]`, as a range of `text`:
/// these are the whitespace characters of latin-1 (`\x85` and `\xa0` are obs-text a field
/// value may hold).
fn py_strip(text: &[u8], range: Range<usize>) -> Range<usize> {
    let space = |b: &u8| matches!(b, b' ' | b'\t'..=b'\r' | 0x1c..=0x1f | 0x85 | 0xa0);
    let value = &text[range.clone()];
    let start = value.iter().position(|b| !space(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !space(b))
        .map_or(start, |i| i + 1);
    range.start + start..range.start + end
}

fn py_stripped(value: &[u8]) -> &[u8] {
    &value[py_strip(value, 0..value.len())]
}

/// Python's `str.isdigit()` on a latin-1 string: `²`, `³` and `¹` are digits too.
fn py_isdigit(value: &[u8]) -> bool {
    !value.is_empty()
        && value
            .iter()
            .all(|b| b.is_ascii_digit() || matches!(b, 0xb2 | 0xb3 | 0xb9))
}

/// (SERVER_NAME, SERVER_PORT) from the Host value at `host` in `frame`, by the loader's
/// `_server_name_port`.
fn server_name_port(frame: &[u8], host: Option<Range<usize>>, scheme: &[u8]) -> (Text, Text) {
    let default_port = Text::Literal(if scheme == b"https" { b"443" } else { b"80" });
    let host = match host {
        Some(host) if !host.is_empty() => host,
        _ => return (Text::Literal(b"localhost"), default_port),
    };
    let value = &frame[host.clone()];
    let at = |range: Range<usize>| Text::Frame(host.start + range.start..host.start + range.end);
    if value.starts_with(b"[") {
        // [v6]:port
        return match value.iter().position(|&b| b == b']') {
            Some(end) => {
                let port = match value[end + 1..].split_first() {
                    Some((b':', port)) if py_isdigit(port) => at(end + 2..value.len()),
                    _ => default_port,
                };
                (at(0..end + 1), port)
            }
            None => (Text::Frame(host), default_port),
        };
    }
    match value.iter().rposition(|&b| b == b':') {
        Some(colon) if py_isdigit(&value[colon + 1..]) => {
            let name = if colon == 0 {
                Text::Literal(b"localhost")
            } else {
                at(0..colon)
            };
            (name, at(colon + 1..value.len()))
        }
        _ => (Text::Frame(host), default_port),
    }
}

/// The length of `frame`'s variables and its flags, or `None` if it is no frame.
pub fn frame_header(frame: &[u8]) -> Option<(usize, u8)> {
    match frame {
        [FRAME_MAGIC, a, b, c, d, flags, ..] => {
            let len = u32::from_be_bytes([*a, *b, *c, *d]) as usize;
            Some((len.checked_sub(1)?, *flags))
        }
        _ => None,
    }
}

/// The variables of a complete frame, in order (for tests and tools; the loader has its
/// own reader).
pub fn frame_variables(frame: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    let (len, _) = frame_header(frame)?;
    let variables = frame.get(PREFIX_BYTES..PREFIX_BYTES + len)?;
    let mut parts = variables.split(|&b| b == 0);
    let mut pairs = Vec::new();
    while let Some(key) = parts.next() {
        pairs.push((key, parts.next()?));
    }
    Some(pairs)
}
