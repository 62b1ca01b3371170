//! The client's request head: request line, header fields, and what they mean for framing,
//! connection reuse and forwarding.
//!
//! Policy decisions (each also explained where it is enforced):
//! - Message framing must be unambiguous: Content-Length and Transfer-Encoding together, a
//!   repeated Content-Length (even with the same value) or a list value, anything but digits,
//!   and Transfer-Encoding in HTTP/1.0 are all 400.
//! - Transfer-Encoding must be exactly `chunked`, once, last. `identity` is 400 (obsolete, and
//!   implementations disagree on it). Any other coding before `chunked` (`gzip, chunked`) is
//!   501: ferry re-frames bodies with Content-Length, so it would have to decode the coding,
//!   and forwarding still-compressed bytes without their label would corrupt the body.
//! - CONNECT is 501: ferry is a reverse proxy, not a tunnel to arbitrary hosts.
//! - An HTTP/1.1 request must name its Host exactly once (RFC 9112 §3.2: a server MUST answer
//!   400 otherwise); a missing, repeated or malformed Host is 400. (gunicorn accepts a missing
//!   one; the corpus deviations list those cases.)
//! - Content-Type may appear once, like Host: duplicates let a WAF and an app read different
//!   types.
//! - Fields whose name contains `_` are dropped, as nginx and gunicorn do: CGI-style apps map
//!   `-` and `_` to the same variable, so `Content_Length` could override what ferry checked.

use super::chars::{self, METHOD, PATH, QUERY};
use super::error::HttpError;
use super::fields::{
    self, errors as field_errors, is_token, list_elements, Field, FieldKind, FieldSectionParser,
};
use super::framing_fields::{FramingRules, FramingSeen, LengthRepeats};
use super::head_parse::{self, HeadParse, Progress};
use super::limits::Limits;
use super::message::{Span, Version};
use super::target::target_form;
pub use super::target::TargetForm;

/// How the request body is delimited on the client connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body (no Content-Length, no Transfer-Encoding).
    None,
    /// Exactly this many bytes (may be 0).
    Length(u64),
    /// Chunked; decode with [`super::ChunkedDecoder`].
    Chunked,
}

/// The methods ferry treats specially; the exact bytes are always in [`RequestHead::method`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Patch,
    Trace,
    Other,
}

impl Method {
    fn of(bytes: &[u8]) -> Method {
        match bytes {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"OPTIONS" => Method::Options,
            b"PATCH" => Method::Patch,
            b"TRACE" => Method::Trace,
            _ => Method::Other,
        }
    }
}

/// A parsed request head. Byte strings are [`Span`]s into the buffer it was parsed from;
/// use the accessor methods with that buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: Span,
    pub method_kind: Method,
    pub target: Span,
    pub target_form: TargetForm,
    pub version: Version,
    /// Field lines in the order received, minus dropped ones (names containing `_`).
    pub headers: Vec<Field>,
    /// Bytes of the head, including any empty lines skipped before the request line and the
    /// final CRLF. The body (if any) starts here.
    pub head_len: usize,
    pub framing: BodyFraming,
    /// Whether the client allows another request on this connection after this one.
    pub keep_alive: bool,
    /// The authority the request is for: the absolute-form target's authority if there is
    /// one (RFC 9112 §3.2.2 says it overrides Host), else the Host value, else `None`.
    pub host: Option<Span>,
    /// HTTP/1.1 `Expect: 100-continue` (ignored in HTTP/1.0, as RFC 9110 §10.1.1 requires).
    pub expect_continue: bool,
    /// HTTP/1.1 with an `Upgrade` field and `upgrade` among the Connection options.
    pub upgrade: bool,
    /// Connection lists options other than close/keep-alive/upgrade: field names that are
    /// hop-by-hop for this message and must not be forwarded.
    pub connection_lists_fields: bool,
}

impl RequestHead {
    fn empty() -> Self {
        RequestHead {
            method: Span::default(),
            method_kind: Method::Other,
            target: Span::default(),
            target_form: TargetForm::Origin,
            version: Version::Http11,
            headers: Vec::new(),
            head_len: 0,
            framing: BodyFraming::None,
            keep_alive: false,
            host: None,
            expect_continue: false,
            upgrade: false,
            connection_lists_fields: false,
        }
    }

    pub fn method<'b>(&self, buf: &'b [u8]) -> &'b [u8] {
        self.method.get(buf)
    }

    pub fn target<'b>(&self, buf: &'b [u8]) -> &'b [u8] {
        self.target.get(buf)
    }

    pub fn host<'b>(&self, buf: &'b [u8]) -> Option<&'b [u8]> {
        self.host.map(|span| span.get(buf))
    }

    /// `(name, value)` of every kept field line, in order.
    pub fn headers<'a, 'b: 'a>(
        &'a self,
        buf: &'b [u8],
    ) -> impl Iterator<Item = (&'b [u8], &'b [u8])> + 'a {
        fields::pairs(&self.headers, buf)
    }

    /// The first value of a field, by case-insensitive name.
    pub fn header<'b>(&self, buf: &'b [u8], name: &[u8]) -> Option<&'b [u8]> {
        fields::first_value(&self.headers, buf, name)
    }
}

mod errors {
    use super::HttpError;

    pub const LINE_TOO_LONG: HttpError = HttpError::new(414, "request line too long");
    pub const BAD_METHOD: HttpError = HttpError::bad_request("invalid request method");
    pub const CONNECT: HttpError = HttpError::new(501, "CONNECT is not supported");
    pub const EMPTY_TARGET: HttpError = HttpError::bad_request("empty request target");
    pub const FRAGMENT: HttpError = HttpError::bad_request("fragment in request target");
    pub const NON_ASCII_TARGET: HttpError =
        HttpError::bad_request("non-ASCII byte in request target");
    pub const BAD_TARGET_BYTE: HttpError =
        HttpError::bad_request("invalid character in request target");
    pub const BAD_VERSION: HttpError = HttpError::bad_request("malformed HTTP version");
    pub const UNSUPPORTED_VERSION: HttpError = HttpError::new(505, "HTTP version not supported");
    pub const CL_AND_TE: HttpError =
        HttpError::bad_request("Content-Length and Transfer-Encoding together");
    pub const DUPLICATE_CL: HttpError = HttpError::bad_request("more than one Content-Length");
    pub const BAD_CL: HttpError = HttpError::bad_request("invalid Content-Length");
    pub const TE_IN_HTTP10: HttpError =
        HttpError::bad_request("Transfer-Encoding in an HTTP/1.0 request");
    pub const BAD_TE: HttpError = HttpError::bad_request("invalid Transfer-Encoding");
    pub const IDENTITY_TE: HttpError =
        HttpError::bad_request("Transfer-Encoding identity is not allowed");
    pub const CHUNKED_NOT_LAST: HttpError =
        HttpError::bad_request("chunked must be the final transfer coding, applied once");
    pub const UNSUPPORTED_TE: HttpError = HttpError::new(501, "unsupported transfer coding");
    pub const DUPLICATE_HOST: HttpError = HttpError::bad_request("more than one Host");
    pub const MISSING_HOST: HttpError = HttpError::bad_request("HTTP/1.1 request without Host");
    pub const BAD_HOST: HttpError = HttpError::bad_request("invalid Host");
    pub const DUPLICATE_CONTENT_TYPE: HttpError =
        HttpError::bad_request("more than one Content-Type");
    pub const BODY_TOO_LARGE: HttpError = HttpError::new(413, "request body too large");
}

/// gunicorn's bounds, which cover every registered method; anything outside is a typo or an
/// attack, and bounding it lets a bad method fail fast.
const METHOD_LEN_BYTES: std::ops::RangeInclusive<usize> = 3..=20;
const VERSION_PATTERN: &[u8; 8] = b"HTTP/1.1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Skipping empty lines before the request line (RFC 9112 §2.2 SHOULD).
    Leading,
    LeadingLf,
    Method,
    Target,
    Version,
    LineLf,
    Fields,
}

/// What the field lines said so far, folded as they arrive.
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    framing: FramingSeen,
    chunked_last: bool,
    unsupported_coding: bool,
    host: bool,
    content_type: bool,
    expect_continue: bool,
}

/// A request's framing is strict: one Content-Length line of one value.
const FRAMING_RULES: FramingRules = FramingRules {
    repeats: LengthRepeats::Refused(errors::DUPLICATE_CL),
    bad_length: errors::BAD_CL,
    length_and_coding: errors::CL_AND_TE,
    coding_in_http10: errors::TE_IN_HTTP10,
};

impl Seen {
    /// Checks one complete field line and folds in what it says.
    fn check(
        &mut self,
        kind: FieldKind,
        value_bytes: &[u8],
        version: Version,
    ) -> Result<(), HttpError> {
        let seen = self;
        match kind {
            FieldKind::Host => {
                if seen.host {
                    return Err(errors::DUPLICATE_HOST);
                }
                if !value_bytes.iter().all(|&b| chars::is(b, chars::HOST)) {
                    return Err(errors::BAD_HOST);
                }
                seen.host = true;
            }
            FieldKind::ContentType => {
                if seen.content_type {
                    return Err(errors::DUPLICATE_CONTENT_TYPE);
                }
                seen.content_type = true;
            }
            FieldKind::Expect if value_bytes.eq_ignore_ascii_case(b"100-continue") => {
                seen.expect_continue = true;
            }
            FieldKind::ContentLength
            | FieldKind::TransferEncoding
            | FieldKind::Connection
            | FieldKind::Upgrade => {
                let framing = seen
                    .framing
                    .check(kind, value_bytes, version, &FRAMING_RULES)?;
                if let Some(codings) = framing {
                    seen.framing.coded = true;
                    for coding in list_elements(codings) {
                        if !is_token(coding) {
                            return Err(errors::BAD_TE);
                        }
                        if seen.chunked_last {
                            return Err(errors::CHUNKED_NOT_LAST);
                        }
                        if coding.eq_ignore_ascii_case(b"chunked") {
                            seen.chunked_last = true;
                        } else if coding.eq_ignore_ascii_case(b"identity") {
                            return Err(errors::IDENTITY_TE);
                        } else {
                            seen.unsupported_coding = true;
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// A resumable request-head parser. Give it the connection's buffer, starting at the
/// request's first byte, each time more bytes arrive: it carries on where it stopped, so a
/// head dripped in byte by byte costs no more than one arriving whole. [`Self::reset`] makes
/// it ready for the next request and keeps its allocations.
#[derive(Debug, Clone)]
pub struct RequestParser {
    limits: Limits,
    state: State,
    pos: usize,
    token_start: usize,
    in_query: bool,
    fields: FieldSectionParser,
    seen: Seen,
    progress: Progress,
    head: RequestHead,
}

impl RequestParser {
    pub fn new(limits: Limits) -> Self {
        RequestParser {
            limits: limits.clamped(),
            state: State::Leading,
            pos: 0,
            token_start: 0,
            in_query: false,
            fields: FieldSectionParser::new(0),
            seen: Seen::default(),
            progress: Progress::Reading,
            head: RequestHead::empty(),
        }
    }

    pub fn reset(&mut self) {
        let mut headers = std::mem::take(&mut self.head.headers);
        headers.clear();
        *self = RequestParser {
            head: RequestHead {
                headers,
                ..RequestHead::empty()
            },
            ..RequestParser::new(self.limits)
        };
    }

    /// `Ok(None)`: the head is incomplete and nothing seen so far is wrong. `Err`: the bytes
    /// so far already break a rule or a limit (the same error whatever the split, and again
    /// on every later call). `Ok(Some)`: the complete head, also on later calls until reset.
    pub fn parse(&mut self, buf: &[u8]) -> Result<Option<&RequestHead>, HttpError> {
        if self.progress == Progress::Reading {
            self.progress = Progress::after(head_parse::advance(self, buf));
        }
        self.progress.outcome(&self.head)
    }

    pub fn into_head(self) -> Option<RequestHead> {
        (self.progress == Progress::Done).then_some(self.head)
    }

    /// Scans target bytes from `self.pos`, switching to the query alphabet at the first `?`.
    fn scan_target(&mut self, buf: &[u8], line_limit: usize) -> usize {
        let scan_end = buf.len().min(line_limit);
        let mut pos = self.pos;
        if !self.in_query {
            pos = fields::scan_while(buf, pos, scan_end, PATH);
            if pos < scan_end && buf[pos] == b'?' {
                self.in_query = true;
                pos += 1;
            }
        }
        if self.in_query {
            pos = fields::scan_while(buf, pos, scan_end, QUERY);
        }
        pos
    }

    fn finish(&mut self, end: usize) -> Result<(), HttpError> {
        let seen = self.seen;
        let http11 = self.head.version == Version::Http11;
        if http11 && !seen.host {
            return Err(errors::MISSING_HOST);
        }
        self.head.framing = if seen.framing.coded {
            if !seen.chunked_last {
                return Err(errors::CHUNKED_NOT_LAST);
            }
            if seen.unsupported_coding {
                return Err(errors::UNSUPPORTED_TE);
            }
            BodyFraming::Chunked
        } else if let Some(length) = seen.framing.content_length {
            if length > self.limits.max_body_size {
                return Err(errors::BODY_TOO_LARGE);
            }
            BodyFraming::Length(length)
        } else {
            BodyFraming::None
        };
        let connection = seen.framing.connection;
        self.head.keep_alive = !connection.close && (http11 || connection.keep_alive);
        self.head.expect_continue = http11 && seen.expect_continue;
        self.head.upgrade = http11 && seen.framing.upgrade_field && connection.upgrade;
        self.head.connection_lists_fields = connection.lists_fields;
        if let TargetForm::Absolute { authority, .. } = self.head.target_form {
            self.head.host = Some(authority);
        }
        self.head.head_len = end;
        Ok(())
    }
}

impl HeadParse for RequestParser {
    #[inline]
    fn start_line(&mut self, buf: &[u8]) -> Result<bool, HttpError> {
        let line_limit = self.limits.max_request_line_bytes;
        while let Some(&byte) = buf.get(self.pos) {
            let pos = self.pos;
            match self.state {
                State::Fields => return Ok(true),
                State::Leading => match byte {
                    _ if pos >= line_limit => return Err(errors::LINE_TOO_LONG),
                    b'\r' => {
                        self.state = State::LeadingLf;
                        self.pos += 1;
                    }
                    b'\n' => return Err(field_errors::BARE_LF),
                    _ => {
                        self.token_start = pos;
                        self.state = State::Method;
                    }
                },
                State::LeadingLf => {
                    if byte != b'\n' {
                        return Err(field_errors::BARE_CR);
                    }
                    self.state = State::Leading;
                    self.pos += 1;
                }
                State::Method => {
                    let start = self.token_start;
                    let scan_end = buf
                        .len()
                        .min(line_limit)
                        .min(start + METHOD_LEN_BYTES.end() + 1);
                    let end = fields::scan_while(buf, pos, scan_end, METHOD);
                    self.pos = end;
                    let Some(&byte) = buf.get(end) else {
                        return Ok(false);
                    };
                    if byte != b' ' || !METHOD_LEN_BYTES.contains(&(end - start)) {
                        return Err(match byte {
                            _ if end >= line_limit => errors::LINE_TOO_LONG,
                            b'\n' => field_errors::BARE_LF,
                            _ => errors::BAD_METHOD,
                        });
                    }
                    let method = &buf[start..end];
                    if method == b"CONNECT" {
                        return Err(errors::CONNECT);
                    }
                    self.head.method = Span::new(start, end);
                    self.head.method_kind = Method::of(method);
                    self.token_start = end + 1;
                    self.pos = end + 1;
                    self.state = State::Target;
                }
                State::Target => {
                    let end = self.scan_target(buf, line_limit);
                    self.pos = end;
                    let Some(&byte) = buf.get(end) else {
                        return Ok(false);
                    };
                    if end >= line_limit {
                        return Err(errors::LINE_TOO_LONG);
                    }
                    match byte {
                        b' ' if end == self.token_start => return Err(errors::EMPTY_TARGET),
                        b' ' => {
                            let target = Span::new(self.token_start, end);
                            self.head.target = target;
                            self.head.target_form =
                                target_form(buf, target, self.head.method_kind == Method::Options)?;
                            self.token_start = end + 1;
                            self.pos = end + 1;
                            self.state = State::Version;
                        }
                        b'#' => return Err(errors::FRAGMENT),
                        0x80.. => return Err(errors::NON_ASCII_TARGET),
                        b'\n' => return Err(field_errors::BARE_LF),
                        _ => return Err(errors::BAD_TARGET_BYTE),
                    }
                }
                State::Version => {
                    // `HTTP/` DIGIT `.` DIGIT, then CR; checked byte by byte so garbage fails
                    // at once. Which versions are supported is decided at the LF (505).
                    if pos >= line_limit && byte != b'\r' {
                        return Err(errors::LINE_TOO_LONG);
                    }
                    let index = pos - self.token_start;
                    let fits = match index {
                        0..=4 => byte == VERSION_PATTERN[index],
                        5 | 7 => byte.is_ascii_digit(),
                        6 => byte == b'.',
                        _ => byte == b'\r',
                    };
                    if !fits {
                        return Err(match byte {
                            b'\n' => field_errors::BARE_LF,
                            _ => errors::BAD_VERSION,
                        });
                    }
                    if index == 8 {
                        self.state = State::LineLf;
                    }
                    self.pos += 1;
                }
                State::LineLf => {
                    if byte != b'\n' {
                        return Err(field_errors::BARE_CR);
                    }
                    let version = &buf[self.token_start..self.token_start + 8];
                    self.head.version = match version {
                        b"HTTP/1.1" => Version::Http11,
                        b"HTTP/1.0" => Version::Http10,
                        _ => return Err(errors::UNSUPPORTED_VERSION),
                    };
                    self.pos += 1;
                    self.fields = FieldSectionParser::new(self.pos);
                    self.state = State::Fields;
                }
            }
        }
        Ok(false)
    }

    #[inline]
    fn advance_fields(&mut self, buf: &[u8]) -> Result<bool, HttpError> {
        let (seen, head) = (&mut self.seen, &mut self.head);
        let check = |kind, value: Span| {
            seen.check(kind, value.get(buf), head.version)?;
            if kind == FieldKind::Host && !matches!(head.target_form, TargetForm::Absolute { .. }) {
                head.host = Some(value);
            }
            Ok(())
        };
        let Some(end) = self
            .fields
            .read_section(buf, &self.limits, &mut head.headers, check)?
        else {
            return Ok(false);
        };
        self.finish(end).map(|()| true)
    }
}

/// Parses a request head from the start of `buf` in one go. See [`RequestParser::parse`] for
/// the meaning of the result; prefer a long-lived [`RequestParser`] on a connection, which
/// resumes instead of re-scanning and reuses its field vector.
pub fn parse_request_head(buf: &[u8], limits: &Limits) -> Result<Option<RequestHead>, HttpError> {
    let mut parser = RequestParser::new(*limits);
    parser.parse(buf)?;
    Ok(parser.into_head())
}
