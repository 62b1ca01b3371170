//! The field-section grammar shared by request heads, response heads and chunked trailers:
//! `*( field-name ":" OWS field-value OWS CRLF ) CRLF`, parsed strictly and resumably.

use super::chars::{self, TOKEN, VALUE};
use super::error::HttpError;
use super::limits::Limits;
use super::message::Span;

/// One field line as received: name and value (OWS trimmed) as spans into the head buffer,
/// plus the name's classification so later stages need not compare strings again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub name: Span,
    pub value: Span,
    pub kind: FieldKind,
}

/// Field names ferry treats specially. Everything else is [`FieldKind::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    Host,
    ContentLength,
    TransferEncoding,
    ContentType,
    Connection,
    KeepAlive,
    ProxyConnection,
    Te,
    Trailer,
    Upgrade,
    Expect,
    /// `X-Forwarded-*`, `Forwarded`, `X-Real-IP`: client-supplied claims about the
    /// connection that ferry never passes on (it sets its own).
    ForwardingInfo,
    /// `Proxy`: dropped so CGI-style apps never see an `HTTP_PROXY` variable ("httpoxy").
    Proxy,
    Other,
}

impl FieldKind {
    pub fn of(name: &[u8]) -> FieldKind {
        let is = |expected: &[u8]| name.eq_ignore_ascii_case(expected);
        let kind = match name.len() {
            2 if is(b"te") => FieldKind::Te,
            4 if is(b"host") => FieldKind::Host,
            5 if is(b"proxy") => FieldKind::Proxy,
            6 if is(b"expect") => FieldKind::Expect,
            7 if is(b"trailer") => FieldKind::Trailer,
            7 if is(b"upgrade") => FieldKind::Upgrade,
            9 if is(b"forwarded") || is(b"x-real-ip") => FieldKind::ForwardingInfo,
            10 if is(b"connection") => FieldKind::Connection,
            10 if is(b"keep-alive") => FieldKind::KeepAlive,
            12 if is(b"content-type") => FieldKind::ContentType,
            14 if is(b"content-length") => FieldKind::ContentLength,
            16 if is(b"proxy-connection") => FieldKind::ProxyConnection,
            17 if is(b"transfer-encoding") => FieldKind::TransferEncoding,
            _ => FieldKind::Other,
        };
        if kind == FieldKind::Other
            && name.len() > 12
            && name[..12].eq_ignore_ascii_case(b"x-forwarded-")
        {
            return FieldKind::ForwardingInfo;
        }
        kind
    }
}

/// `(name, value)` of every field line in `fields`, read from `buf`, in order.
pub(crate) fn pairs<'a, 'b: 'a>(
    fields: &'a [Field],
    buf: &'b [u8],
) -> impl Iterator<Item = (&'b [u8], &'b [u8])> + 'a {
    fields
        .iter()
        .map(move |f| (f.name.get(buf), f.value.get(buf)))
}

/// The first value of a field in `fields`, by case-insensitive name.
pub(crate) fn first_value<'b>(fields: &[Field], buf: &'b [u8], name: &[u8]) -> Option<&'b [u8]> {
    pairs(fields, buf)
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Names with `_` are dropped (never forwarded, never interpreted), as nginx and gunicorn do
/// by default: CGI-style apps (Rack, WSGI, PHP) map `-` and `_` to the same variable, so
/// `Content_Length` or `X_Forwarded_For` could override what ferry checked or set.
pub(crate) fn has_underscore(name: &[u8]) -> bool {
    name.contains(&b'_')
}

/// What the Connection fields of a head say, folded over all of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ConnectionOptions {
    pub close: bool,
    pub keep_alive: bool,
    pub upgrade: bool,
    /// An option other than those: the name of a field that is hop-by-hop.
    pub lists_fields: bool,
}

impl ConnectionOptions {
    /// Folds in the options of one Connection field value.
    pub fn add(&mut self, value: &[u8]) {
        for option in list_elements(value).filter(|o| !o.is_empty()) {
            if option.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else if option.eq_ignore_ascii_case(b"keep-alive") {
                self.keep_alive = true;
            } else if option.eq_ignore_ascii_case(b"upgrade") {
                self.upgrade = true;
            } else {
                self.lists_fields = true;
            }
        }
    }
}

/// The elements of a comma-separated list value, OWS trimmed; empty elements included.
pub(crate) fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(trim_ows)
}

pub(crate) fn trim_ows(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

pub(crate) fn is_token(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().all(|&b| chars::is(b, TOKEN))
}

/// A Content-Length value: plain ASCII digits, at most 2^63-1 (so it fits every consumer's
/// signed 64-bit integer). No sign, no spaces, no list.
pub(crate) fn parse_content_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in value {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(b - b'0');
    }
    (n <= i64::MAX as u64).then_some(n)
}

pub(crate) mod errors {
    use super::HttpError;

    pub const BARE_LF: HttpError = HttpError::bad_request("bare LF in message head");
    pub const BARE_CR: HttpError = HttpError::bad_request("bare CR in message head");
    pub const OBS_FOLD: HttpError = HttpError::bad_request("obsolete line folding in header");
    pub const SPACE_BEFORE_FIRST_FIELD: HttpError =
        HttpError::bad_request("whitespace before the first header line");
    pub const SPACE_BEFORE_COLON: HttpError =
        HttpError::bad_request("whitespace between header name and colon");
    pub const EMPTY_NAME: HttpError = HttpError::bad_request("empty header name");
    pub const NO_COLON: HttpError = HttpError::bad_request("header line without a colon");
    pub const BAD_NAME: HttpError = HttpError::bad_request("invalid character in header name");
    pub const BAD_VALUE: HttpError = HttpError::bad_request("invalid character in header value");
    pub const FIELD_LINE_TOO_LONG: HttpError = HttpError::new(431, "header line too long");
    pub const SECTION_TOO_LARGE: HttpError = HttpError::new(431, "header section too large");
    pub const TOO_MANY_FIELDS: HttpError = HttpError::new(431, "too many header fields");
}

/// What [`FieldSectionParser::next`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SectionEvent {
    Field {
        name: Span,
        value: Span,
    },
    /// The buffer ended first; call again with more bytes.
    Incomplete,
    /// The empty line was read; `end` is the offset just past its LF.
    End {
        end: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    LineStart,
    Name,
    ValueLeadingSpace,
    Value,
    LineLf,
    FinalLf,
    Done,
}

/// A resumable parser for one field section. It keeps its position, so each byte is
/// examined once however the input is split, and every check is made at a fixed byte
/// position: feeding a section whole or byte by byte gives the same events and errors.
#[derive(Debug, Clone)]
pub(crate) struct FieldSectionParser {
    state: State,
    pos: usize,
    section_start: usize,
    line_start: usize,
    name_end: usize,
    value_start: usize,
    value_end: usize,
    field_count: usize,
}

impl FieldSectionParser {
    /// Reads the field lines of a head that have arrived. Each complete line, but one whose name
    /// has an underscore (dropped, see [`has_underscore`]), is classified, handed to `check` with
    /// its value (so an offending line fails the head before the rest of it arrives) and kept in
    /// `fields`. `Ok(Some(end))` once the empty line ending the section is in (`end` just past
    /// it); `Ok(None)` until then.
    pub(crate) fn read_section(
        &mut self,
        buf: &[u8],
        limits: &Limits,
        fields: &mut Vec<Field>,
        mut check: impl FnMut(FieldKind, Span) -> Result<(), HttpError>,
    ) -> Result<Option<usize>, HttpError> {
        loop {
            match self.next(buf, limits)? {
                SectionEvent::Incomplete => return Ok(None),
                SectionEvent::End { end } => return Ok(Some(end)),
                SectionEvent::Field { name, value } => {
                    let name_bytes = name.get(buf);
                    if has_underscore(name_bytes) {
                        continue;
                    }
                    let kind = FieldKind::of(name_bytes);
                    check(kind, value)?;
                    fields.push(Field { name, value, kind });
                }
            }
        }
    }

    pub(crate) fn new(section_start: usize) -> Self {
        FieldSectionParser {
            state: State::LineStart,
            pos: section_start,
            section_start,
            line_start: section_start,
            name_end: section_start,
            value_start: section_start,
            value_end: section_start,
            field_count: 0,
        }
    }

    /// Advances through `buf` (which must extend the bytes seen by earlier calls) to the next
    /// complete field line or the end of the section.
    pub(crate) fn next(&mut self, buf: &[u8], limits: &Limits) -> Result<SectionEvent, HttpError> {
        let section_end = self
            .section_start
            .saturating_add(limits.max_field_section_bytes);
        loop {
            let pos = self.pos;
            if pos >= buf.len() {
                return Ok(SectionEvent::Incomplete);
            }
            if pos >= section_end {
                return Err(errors::SECTION_TOO_LARGE);
            }
            let line_limit = self.line_start.saturating_add(limits.max_field_line_bytes);
            let scan_end = buf.len().min(line_limit).min(section_end);
            match self.state {
                State::LineStart => match buf[pos] {
                    b'\r' => {
                        self.state = State::FinalLf;
                        self.pos = pos + 1;
                    }
                    b'\n' => return Err(errors::BARE_LF),
                    b' ' | b'\t' if pos == self.section_start => {
                        return Err(errors::SPACE_BEFORE_FIRST_FIELD)
                    }
                    b' ' | b'\t' => return Err(errors::OBS_FOLD),
                    _ => {
                        if self.field_count >= limits.max_field_count {
                            return Err(errors::TOO_MANY_FIELDS);
                        }
                        self.line_start = pos;
                        self.state = State::Name;
                    }
                },
                State::Name => {
                    let end = scan_while(buf, pos, scan_end, TOKEN);
                    self.pos = end;
                    let Some(&byte) = buf.get(end) else {
                        return Ok(SectionEvent::Incomplete);
                    };
                    if end >= section_end {
                        return Err(errors::SECTION_TOO_LARGE);
                    }
                    if end >= line_limit {
                        return Err(errors::FIELD_LINE_TOO_LONG);
                    }
                    match byte {
                        b':' if end == self.line_start => return Err(errors::EMPTY_NAME),
                        b':' => {
                            self.name_end = end;
                            self.state = State::ValueLeadingSpace;
                            self.pos = end + 1;
                        }
                        b' ' | b'\t' => return Err(errors::SPACE_BEFORE_COLON),
                        b'\r' | b'\n' => return Err(errors::NO_COLON),
                        _ => return Err(errors::BAD_NAME),
                    }
                }
                State::ValueLeadingSpace => {
                    let mut end = pos;
                    while end < scan_end && matches!(buf[end], b' ' | b'\t') {
                        end += 1;
                    }
                    self.pos = end;
                    if end == buf.len() {
                        return Ok(SectionEvent::Incomplete);
                    }
                    self.value_start = end;
                    self.state = State::Value;
                }
                State::Value => {
                    let end = scan_value(buf, pos, scan_end);
                    self.pos = end;
                    let Some(&byte) = buf.get(end) else {
                        return Ok(SectionEvent::Incomplete);
                    };
                    if end >= section_end {
                        return Err(errors::SECTION_TOO_LARGE);
                    }
                    match byte {
                        b'\r' => {
                            let value = trim_ows(&buf[self.value_start..end]);
                            self.value_end = self.value_start + value.len();
                            self.state = State::LineLf;
                            self.pos = end + 1;
                        }
                        _ if end >= line_limit => return Err(errors::FIELD_LINE_TOO_LONG),
                        b'\n' => return Err(errors::BARE_LF),
                        _ => return Err(errors::BAD_VALUE),
                    }
                }
                State::LineLf => {
                    if buf[pos] != b'\n' {
                        return Err(errors::BARE_CR);
                    }
                    self.pos = pos + 1;
                    self.field_count += 1;
                    self.state = State::LineStart;
                    return Ok(SectionEvent::Field {
                        name: Span::new(self.line_start, self.name_end),
                        value: Span::new(self.value_start, self.value_end),
                    });
                }
                State::FinalLf => {
                    if buf[pos] != b'\n' {
                        return Err(errors::BARE_CR);
                    }
                    self.pos = pos + 1;
                    self.state = State::Done;
                    return Ok(SectionEvent::End { end: pos + 1 });
                }
                State::Done => return Ok(SectionEvent::End { end: pos }),
            }
        }
    }
}

/// [`scan_while`] for [`VALUE`] bytes, eight at a time while no byte in the word can end or
/// break the value: field values (cookies, user agents) are most of a head's bytes.
#[inline(always)]
pub(crate) fn scan_value(buf: &[u8], start: usize, end: usize) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH_BITS: u64 = u64::from_ne_bytes([0x80; 8]);
    let mut pos = start;
    while pos + 8 <= end {
        let word = u64::from_ne_bytes(buf[pos..pos + 8].try_into().expect("8 bytes"));
        // Some byte < 0x20 (controls, CR, LF, but also HTAB), or some byte == 0x7f: let the
        // exact per-byte loop sort it out. Bytes >= 0x80 are valid and never flagged.
        let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGH_BITS;
        let del = word ^ (ONES * 0x7f);
        let has_del = del.wrapping_sub(ONES) & !del & HIGH_BITS;
        if below_space | has_del != 0 {
            break;
        }
        pos += 8;
    }
    scan_while(buf, pos, end, VALUE)
}

/// The first offset in `start..end` whose byte is not in `class` (or `end`).
#[inline(always)]
pub(crate) fn scan_while(buf: &[u8], start: usize, end: usize, class: u8) -> usize {
    let mut pos = start;
    while pos < end && chars::is(buf[pos], class) {
        pos += 1;
    }
    pos
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_names_case_insensitively() {
        assert_eq!(FieldKind::of(b"content-LENGTH"), FieldKind::ContentLength);
        assert_eq!(
            FieldKind::of(b"Transfer-Encoding"),
            FieldKind::TransferEncoding
        );
        assert_eq!(FieldKind::of(b"TE"), FieldKind::Te);
        assert_eq!(FieldKind::of(b"X-Forwarded-Ssl"), FieldKind::ForwardingInfo);
        assert_eq!(FieldKind::of(b"x-forwarded-"), FieldKind::Other);
        assert_eq!(FieldKind::of(b"Transfer_Encoding"), FieldKind::Other);
        assert_eq!(FieldKind::of(b"Content-Lengths"), FieldKind::Other);
    }

    #[test]
    fn content_length_is_plain_digits_up_to_i64_max() {
        assert_eq!(parse_content_length(b"0"), Some(0));
        assert_eq!(parse_content_length(b"007"), Some(7));
        assert_eq!(
            parse_content_length(b"9223372036854775807"),
            Some(i64::MAX as u64)
        );
        for bad in [
            &b""[..],
            b"+1",
            b"-0",
            b"0x10",
            b"1_0",
            b"5.0",
            b"1 1",
            b"1,1",
            b"9223372036854775808",
            b"99999999999999999999",
        ] {
            assert_eq!(
                parse_content_length(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn value_scan_stops_exactly_where_the_byte_loop_does() {
        let mut input: Vec<u8> = (0x20..=0xff).filter(|&b| b != 0x7f).collect();
        for stop in [0x00u8, b'\t', b'\r', b'\n', 0x1f, 0x7f] {
            for at in 0..40 {
                let mut bytes = input.clone();
                bytes.insert(at, stop);
                for start in 0..9 {
                    let expected = scan_while(&bytes, start, bytes.len(), VALUE);
                    assert_eq!(scan_value(&bytes, start, bytes.len()), expected);
                    assert_eq!(
                        scan_value(&bytes, start, at.max(start)),
                        expected.min(at.max(start))
                    );
                }
            }
        }
        input.reverse();
        assert_eq!(scan_value(&input, 0, input.len()), input.len());
    }

    #[test]
    fn trims_only_sp_and_htab() {
        assert_eq!(trim_ows(b" \t a b \t"), b"a b");
        assert_eq!(trim_ows(b"\x0ba\x0b"), b"\x0ba\x0b");
        assert_eq!(
            list_elements(b"a, b ,,c").collect::<Vec<_>>(),
            [&b"a"[..], b"b", b"", b"c"]
        );
    }
}
