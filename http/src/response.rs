//! The app's response head: status line, header fields and body framing.
//!
//! Apps are trusted more than clients but their HTTP servers still have bugs, and a response
//! ferry frames differently from the app would desynchronise the app connection (the next
//! response would be read from the middle of this one). So framing is checked as strictly as
//! for requests, and every defect is an [`HttpError`] with status 502.

use super::error::HttpError;
use super::fields::{self, list_elements, Field, FieldKind, FieldSectionParser};
use super::framing_fields::{FramingRules, FramingSeen, LengthRepeats};
use super::head_parse::{self, HeadParse, Progress};
use super::limits::Limits;
use super::message::{Span, Version};

/// How the response body is delimited on the app connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFraming {
    /// No body: a response to HEAD, 1xx, 204 or 304.
    None,
    Length(u64),
    Chunked,
    /// No Content-Length or Transfer-Encoding: the body ends when the app closes.
    UntilClose,
}

/// A parsed response head; byte strings are [`Span`]s into the buffer it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub version: Version,
    pub status: u16,
    /// The reason phrase as the app sent it (may be empty).
    pub reason: Span,
    pub headers: Vec<Field>,
    pub head_len: usize,
    pub framing: ResponseFraming,
    /// The declared Content-Length, also where it describes no body (HEAD, 304).
    pub content_length: Option<u64>,
    /// The app connection can carry another request after this response's body.
    pub keep_alive: bool,
    /// 101 Switching Protocols (with an Upgrade field): the connection becomes a tunnel.
    pub upgrade: bool,
    /// Connection lists field names that are hop-by-hop for this message.
    pub connection_lists_fields: bool,
}

impl ResponseHead {
    fn empty() -> Self {
        ResponseHead {
            version: Version::Http11,
            status: 0,
            reason: Span::default(),
            headers: Vec::new(),
            head_len: 0,
            framing: ResponseFraming::None,
            content_length: None,
            keep_alive: false,
            upgrade: false,
            connection_lists_fields: false,
        }
    }

    /// 1xx other than 101: an interim response; the final one follows on the same connection.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
    }

    pub fn reason<'b>(&self, buf: &'b [u8]) -> &'b [u8] {
        self.reason.get(buf)
    }

    pub fn headers<'a, 'b: 'a>(
        &'a self,
        buf: &'b [u8],
    ) -> impl Iterator<Item = (&'b [u8], &'b [u8])> + 'a {
        fields::pairs(&self.headers, buf)
    }

    pub fn header<'b>(&self, buf: &'b [u8], name: &[u8]) -> Option<&'b [u8]> {
        fields::first_value(&self.headers, buf, name)
    }
}

mod errors {
    use super::HttpError;

    pub const LINE_TOO_LONG: HttpError = HttpError::new(502, "status line too long");
    pub const BAD_STATUS_LINE: HttpError = HttpError::new(502, "malformed status line");
    pub const BAD_STATUS: HttpError = HttpError::new(502, "invalid status code");
    pub const BARE_LF: HttpError = HttpError::new(502, "bare LF in status line");
    pub const BARE_CR: HttpError = HttpError::new(502, "bare CR in status line");
    pub const BAD_REASON: HttpError = HttpError::new(502, "invalid character in reason phrase");
    pub const CL_AND_TE: HttpError =
        HttpError::new(502, "Content-Length and Transfer-Encoding together");
    pub const CONFLICTING_CL: HttpError =
        HttpError::new(502, "invalid or conflicting Content-Length");
    pub const TE_IN_HTTP10: HttpError =
        HttpError::new(502, "Transfer-Encoding in an HTTP/1.0 response");
    pub const BAD_TE: HttpError =
        HttpError::new(502, "Transfer-Encoding other than a single chunked");
    pub const UPGRADE_WITHOUT_FIELD: HttpError =
        HttpError::new(502, "101 response without an Upgrade field");
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    StatusLine,
    Reason,
    LineLf,
    Fields,
}

/// A response's framing tolerates repeats of one Content-Length value, which many app
/// servers send and which cannot be framed two ways.
const FRAMING_RULES: FramingRules = FramingRules {
    repeats: LengthRepeats::SameValue(errors::CONFLICTING_CL),
    bad_length: errors::CONFLICTING_CL,
    length_and_coding: errors::CL_AND_TE,
    coding_in_http10: errors::TE_IN_HTTP10,
};

/// Checks one complete field line and folds in what it says.
fn check(
    seen: &mut FramingSeen,
    kind: FieldKind,
    value_bytes: &[u8],
    version: Version,
) -> Result<(), HttpError> {
    if let Some(codings) = seen.check(kind, value_bytes, version, &FRAMING_RULES)? {
        // ferry re-frames or passes through chunked only; a compressed transfer coding
        // would have to be decoded, and apps do not send one in practice.
        for coding in list_elements(codings) {
            if seen.coded || !coding.eq_ignore_ascii_case(b"chunked") {
                return Err(errors::BAD_TE);
            }
            seen.coded = true;
        }
    }
    Ok(())
}

/// A resumable response-head parser, the counterpart of [`super::RequestParser`].
#[derive(Debug, Clone)]
pub struct ResponseParser {
    limits: Limits,
    head_request: bool,
    state: State,
    pos: usize,
    fields: FieldSectionParser,
    seen: FramingSeen,
    progress: Progress,
    head: ResponseHead,
}

/// `HTTP/1.x SP DIGIT DIGIT DIGIT`: offsets of the parts of a status line.
const VERSION_LEN: usize = 8;
const STATUS_START: usize = VERSION_LEN + 1;
const STATUS_END: usize = STATUS_START + 3;

impl ResponseParser {
    /// `request_method` is the method of the request this responds to: a response to HEAD
    /// has no body whatever its fields say.
    pub fn new(limits: Limits, request_method: &[u8]) -> Self {
        ResponseParser {
            limits: limits.clamped(),
            head_request: request_method == b"HEAD",
            state: State::StatusLine,
            pos: 0,
            fields: FieldSectionParser::new(0),
            seen: FramingSeen::default(),
            progress: Progress::Reading,
            head: ResponseHead::empty(),
        }
    }

    /// Ready for the next response (e.g. the final one after a 1xx), keeping allocations.
    pub fn reset(&mut self, request_method: &[u8]) {
        let mut headers = std::mem::take(&mut self.head.headers);
        headers.clear();
        *self = ResponseParser {
            head: ResponseHead {
                headers,
                ..ResponseHead::empty()
            },
            ..ResponseParser::new(self.limits, request_method)
        };
    }

    /// Same contract as [`super::RequestParser::parse`]; errors are 502.
    pub fn parse(&mut self, buf: &[u8]) -> Result<Option<&ResponseHead>, HttpError> {
        if self.progress == Progress::Reading {
            self.progress =
                Progress::after(head_parse::advance(self, buf).map_err(HttpError::to_bad_gateway));
        }
        self.progress.outcome(&self.head)
    }

    pub fn into_head(self) -> Option<ResponseHead> {
        (self.progress == Progress::Done).then_some(self.head)
    }

    fn finish(&mut self, end: usize) -> Result<(), HttpError> {
        let seen = self.seen;
        let status = self.head.status;
        if status == 101 && !seen.upgrade_field {
            return Err(errors::UPGRADE_WITHOUT_FIELD);
        }
        let bodiless =
            self.head_request || (100..200).contains(&status) || status == 204 || status == 304;
        self.head.framing = if bodiless {
            ResponseFraming::None
        } else if seen.coded {
            ResponseFraming::Chunked
        } else if let Some(length) = seen.content_length {
            ResponseFraming::Length(length)
        } else {
            ResponseFraming::UntilClose
        };
        self.head.content_length = seen.content_length;
        let http11 = self.head.version == Version::Http11;
        self.head.upgrade = status == 101;
        self.head.keep_alive = !seen.connection.close
            && (http11 || seen.connection.keep_alive)
            && !self.head.upgrade
            && self.head.framing != ResponseFraming::UntilClose;
        self.head.connection_lists_fields = seen.connection.lists_fields;
        self.head.head_len = end;
        Ok(())
    }
}

impl HeadParse for ResponseParser {
    #[inline]
    fn start_line(&mut self, buf: &[u8]) -> Result<bool, HttpError> {
        let line_limit = self.limits.max_request_line_bytes;
        while let Some(&byte) = buf.get(self.pos) {
            let pos = self.pos;
            match self.state {
                State::Fields => return Ok(true),
                State::StatusLine => {
                    if pos >= line_limit && byte != b'\r' {
                        return Err(errors::LINE_TOO_LONG);
                    }
                    let fits = match pos {
                        0..=6 => byte == b"HTTP/1."[pos],
                        7 => byte == b'0' || byte == b'1',
                        8 => byte == b' ',
                        STATUS_START..STATUS_END => byte.is_ascii_digit(),
                        // RFC 9112 wants a space even before an empty reason; many servers
                        // omit it, which is harmless.
                        _ => byte == b' ' || byte == b'\r',
                    };
                    if !fits {
                        return Err(if byte == b'\n' {
                            errors::BARE_LF
                        } else {
                            errors::BAD_STATUS_LINE
                        });
                    }
                    if pos == STATUS_END {
                        self.head.version = if buf[7] == b'1' {
                            Version::Http11
                        } else {
                            Version::Http10
                        };
                        let status = buf[STATUS_START..STATUS_END]
                            .iter()
                            .fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
                        if !(100..=599).contains(&status) {
                            return Err(errors::BAD_STATUS);
                        }
                        self.head.status = status;
                        self.head.reason = Span::new(pos + 1, pos + 1);
                        self.state = if byte == b' ' {
                            State::Reason
                        } else {
                            State::LineLf
                        };
                    }
                    self.pos += 1;
                }
                State::Reason => {
                    let end = fields::scan_while(
                        buf,
                        pos,
                        buf.len().min(line_limit),
                        super::chars::VALUE,
                    );
                    self.pos = end;
                    let Some(&byte) = buf.get(end) else {
                        return Ok(false);
                    };
                    match byte {
                        b'\r' => {
                            self.head.reason.end = end as u32;
                            self.state = State::LineLf;
                            self.pos += 1;
                        }
                        _ if end >= line_limit => return Err(errors::LINE_TOO_LONG),
                        b'\n' => return Err(errors::BARE_LF),
                        _ => return Err(errors::BAD_REASON),
                    }
                }
                State::LineLf => {
                    if byte != b'\n' {
                        return Err(errors::BARE_CR);
                    }
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
        let check = |kind, value: Span| check(seen, kind, value.get(buf), head.version);
        let Some(end) = self
            .fields
            .read_section(buf, &self.limits, &mut head.headers, check)?
        else {
            return Ok(false);
        };
        self.finish(end).map(|()| true)
    }
}

/// Parses a response head from the start of `buf` in one go; see [`ResponseParser`].
pub fn parse_response_head(
    buf: &[u8],
    limits: &Limits,
    request_method: &[u8],
) -> Result<Option<ResponseHead>, HttpError> {
    let mut parser = ResponseParser::new(*limits, request_method);
    parser.parse(buf)?;
    Ok(parser.into_head())
}
