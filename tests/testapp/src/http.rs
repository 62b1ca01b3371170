//! Minimal HTTP/1.x request parsing for ferry-testapp (std only).
//!
//! * [`parse_head`] parses a complete request head out of a byte slice.
//! * [`Conn`] is a buffered reader over any `Read` that yields request heads and
//!   request bodies (Content-Length or chunked), keeping pipelined bytes.

use std::io::{self, Read};

/// Largest accepted request head (request line + headers).
pub const MAX_HEAD: usize = 64 * 1024;
/// Largest number of header fields in one request.
pub const MAX_HEADERS: usize = 256;
/// Largest accepted chunk-size / trailer line.
const MAX_LINE: usize = 8 * 1024;

/// A byte range inside the head buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn of<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.start..self.end]
    }
}

/// How the request body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    None,
    Length(u64),
    Chunked,
}

/// A parsed request head. All spans index the buffer that was parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Bytes taken by the head, including leading empty lines and the final empty line.
    pub len: usize,
    pub method: Span,
    pub target: Span,
    pub version: Span,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    pub body: BodyKind,
    pub keep_alive: bool,
    pub expect_continue: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    HeadTooLarge,
    TooManyHeaders,
    BadRequestLine,
    BadVersion,
    BadHeader,
    BadContentLength,
    UnsupportedTransferEncoding,
}

impl ParseError {
    /// Status code and reason to answer with.
    pub fn status(self) -> (u16, &'static str) {
        match self {
            ParseError::HeadTooLarge | ParseError::TooManyHeaders => {
                (431, "Request Header Fields Too Large")
            }
            ParseError::BadVersion => (505, "HTTP Version Not Supported"),
            ParseError::UnsupportedTransferEncoding => (501, "Not Implemented"),
            _ => (400, "Bad Request"),
        }
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Strip a trailing `\r` (lines end in CRLF; a bare LF is tolerated).
fn strip_cr(line: &[u8]) -> &[u8] {
    match line.last() {
        Some(b'\r') => &line[..line.len() - 1],
        _ => line,
    }
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Iterate over the comma-separated, trimmed, non-empty elements of a header value.
pub fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|t| !t.is_empty())
}

/// Offset just past the empty line ending the head that starts at `from`, if complete.
fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(p) = buf[i..].iter().position(|&b| b == b'\n') {
        let nl = i + p;
        match &buf[nl + 1..] {
            [b'\n', ..] => return Some(nl + 2),
            [b'\r', b'\n', ..] => return Some(nl + 3),
            _ => i = nl + 1,
        }
    }
    None
}

/// Parse a request head at the start of `buf`.
///
/// Returns `Ok(None)` if the head is not complete yet. `headers` is cleared and
/// filled with (name, value) spans, in order, as received (values trimmed of
/// surrounding whitespace).
pub fn parse_head(buf: &[u8], headers: &mut Vec<(Span, Span)>) -> Result<Option<Head>, ParseError> {
    headers.clear();
    // RFC 9112 2.2: ignore at least one empty line before the request line.
    let mut skip = 0;
    loop {
        match &buf[skip..] {
            [b'\r', b'\n', ..] => skip += 2,
            [b'\n', ..] => skip += 1,
            _ => break,
        }
    }
    let end = match find_head_end(buf, skip) {
        Some(end) => end,
        None if buf.len() - skip >= MAX_HEAD => return Err(ParseError::HeadTooLarge),
        None => return Ok(None),
    };
    if end - skip > MAX_HEAD {
        return Err(ParseError::HeadTooLarge);
    }

    // Request line.
    let rl_end = skip + buf[skip..].iter().position(|&b| b == b'\n').unwrap();
    let line = strip_cr(&buf[skip..rl_end]);
    let sp1 = line
        .iter()
        .position(|&b| b == b' ')
        .ok_or(ParseError::BadRequestLine)?;
    let sp2 = sp1
        + 1
        + line[sp1 + 1..]
            .iter()
            .position(|&b| b == b' ')
            .ok_or(ParseError::BadRequestLine)?;
    let method = Span {
        start: skip,
        end: skip + sp1,
    };
    let target = Span {
        start: skip + sp1 + 1,
        end: skip + sp2,
    };
    let version = Span {
        start: skip + sp2 + 1,
        end: skip + line.len(),
    };
    if method.start == method.end || !method.of(buf).iter().all(|&b| is_tchar(b)) {
        return Err(ParseError::BadRequestLine);
    }
    if target.start == target.end || target.of(buf).iter().any(|&b| b <= b' ' || b == 0x7f) {
        return Err(ParseError::BadRequestLine);
    }
    let minor = match version.of(buf) {
        b"HTTP/1.1" => 1,
        b"HTTP/1.0" => 0,
        v if v.starts_with(b"HTTP/") => return Err(ParseError::BadVersion),
        _ => return Err(ParseError::BadRequestLine),
    };

    // Header fields.
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut has_te = false;
    let mut close = false;
    let mut keep_alive_token = false;
    let mut expect_continue = false;
    let mut pos = rl_end + 1;
    loop {
        let nl = pos + buf[pos..end].iter().position(|&b| b == b'\n').unwrap();
        let line = strip_cr(&buf[pos..nl]);
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            return Err(ParseError::BadHeader); // obsolete line folding
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(ParseError::BadHeader)?;
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(ParseError::BadHeader);
        }
        let raw_value = &line[colon + 1..];
        if raw_value.iter().any(|&b| b == b'\r' || b == 0) {
            return Err(ParseError::BadHeader);
        }
        let value = trim_ows(raw_value);
        let vstart = pos + colon + 1 + (value.as_ptr() as usize - raw_value.as_ptr() as usize);
        if headers.len() >= MAX_HEADERS {
            return Err(ParseError::TooManyHeaders);
        }
        headers.push((
            Span {
                start: pos,
                end: pos + colon,
            },
            Span {
                start: vstart,
                end: vstart + value.len(),
            },
        ));

        if name.eq_ignore_ascii_case(b"content-length") {
            if value.is_empty() || value.len() > 18 || !value.iter().all(u8::is_ascii_digit) {
                return Err(ParseError::BadContentLength);
            }
            let n = value
                .iter()
                .fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0'));
            if content_length.is_some_and(|old| old != n) {
                return Err(ParseError::BadContentLength);
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            has_te = true;
            // The last coding decides; anything but a final "chunked" is unsupported.
            chunked = false;
            for t in tokens(value) {
                chunked = t.eq_ignore_ascii_case(b"chunked");
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            for t in tokens(value) {
                close |= t.eq_ignore_ascii_case(b"close");
                keep_alive_token |= t.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case(b"expect") {
            expect_continue |= value.eq_ignore_ascii_case(b"100-continue");
        }
        pos = nl + 1;
    }

    let body = if has_te {
        if !chunked {
            return Err(ParseError::UnsupportedTransferEncoding);
        }
        BodyKind::Chunked
    } else {
        match content_length {
            None | Some(0) => BodyKind::None,
            Some(n) => BodyKind::Length(n),
        }
    };
    let keep_alive = !close && (minor == 1 || keep_alive_token);
    Ok(Some(Head {
        len: end,
        method,
        target,
        version,
        minor,
        body,
        keep_alive,
        expect_continue,
    }))
}

#[derive(Debug)]
pub enum ConnError {
    Io(#[allow(dead_code)] io::Error),
    Parse(ParseError),
    /// The peer closed the connection in the middle of a request.
    UnexpectedEof,
    BodyTooLarge,
    BadChunk,
}

impl From<io::Error> for ConnError {
    fn from(e: io::Error) -> Self {
        ConnError::Io(e)
    }
}

/// A buffered request reader over a byte stream.
pub struct Conn<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl<R: Read> Conn<R> {
    pub fn new(inner: R) -> Self {
        Conn {
            inner,
            buf: vec![0; 16 * 1024],
            start: 0,
            end: 0,
        }
    }

    /// Bytes received but not consumed yet.
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Read more bytes from the stream; returns 0 at end of stream.
    fn fill(&mut self) -> io::Result<usize> {
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                let len = self.buf.len();
                self.buf.resize(len * 2, 0);
            }
        }
        loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Read the next request head. Its bytes are copied into `head_buf` (spans in
    /// the returned [`Head`] and in `headers` index `head_buf`) and consumed.
    ///
    /// Returns `Ok(None)` when the stream ends cleanly between requests.
    pub fn read_head(
        &mut self,
        head_buf: &mut Vec<u8>,
        headers: &mut Vec<(Span, Span)>,
    ) -> Result<Option<Head>, ConnError> {
        loop {
            if self.start < self.end {
                if let Some(head) =
                    parse_head(self.buffered(), headers).map_err(ConnError::Parse)?
                {
                    head_buf.clear();
                    head_buf.extend_from_slice(&self.buffered()[..head.len]);
                    self.consume(head.len);
                    return Ok(Some(head));
                }
            }
            if self.fill()? == 0 {
                let only_blank = self.buffered().iter().all(|&b| b == b'\r' || b == b'\n');
                return if only_blank {
                    Ok(None)
                } else {
                    Err(ConnError::UnexpectedEof)
                };
            }
        }
    }

    /// Read a request body framed as `kind` into `out` (cleared first).
    pub fn read_body(
        &mut self,
        kind: BodyKind,
        out: &mut Vec<u8>,
        limit: u64,
    ) -> Result<(), ConnError> {
        out.clear();
        match kind {
            BodyKind::None => Ok(()),
            BodyKind::Length(n) => {
                if n > limit {
                    return Err(ConnError::BodyTooLarge);
                }
                self.read_exact_into(n as usize, out)
            }
            BodyKind::Chunked => self.read_chunked(out, limit),
        }
    }

    fn read_exact_into(&mut self, n: usize, out: &mut Vec<u8>) -> Result<(), ConnError> {
        let want = out.len() + n;
        out.reserve(n);
        while out.len() < want {
            if self.start == self.end && self.fill()? == 0 {
                return Err(ConnError::UnexpectedEof);
            }
            let take = (want - out.len()).min(self.end - self.start);
            out.extend_from_slice(&self.buf[self.start..self.start + take]);
            self.consume(take);
        }
        Ok(())
    }

    /// Ensure a whole line is buffered; returns its length including the `\n`.
    fn line_len(&mut self) -> Result<usize, ConnError> {
        let mut scanned = 0;
        loop {
            if let Some(p) = self.buffered()[scanned..].iter().position(|&b| b == b'\n') {
                return Ok(scanned + p + 1);
            }
            scanned = self.end - self.start;
            if scanned > MAX_LINE {
                return Err(ConnError::BadChunk);
            }
            if self.fill()? == 0 {
                return Err(ConnError::UnexpectedEof);
            }
        }
    }

    fn read_chunked(&mut self, out: &mut Vec<u8>, limit: u64) -> Result<(), ConnError> {
        loop {
            let len = self.line_len()?;
            let line = strip_cr(&self.buffered()[..len - 1]);
            let size_part = match line.iter().position(|&b| b == b';') {
                Some(p) => &line[..p],
                None => line,
            };
            let size_part = trim_ows(size_part);
            if size_part.is_empty() || size_part.len() > 15 {
                return Err(ConnError::BadChunk);
            }
            let mut size: u64 = 0;
            for &b in size_part {
                let d = (b as char).to_digit(16).ok_or(ConnError::BadChunk)?;
                size = size * 16 + u64::from(d);
            }
            self.consume(len);
            if size == 0 {
                // Trailer section: skip fields up to the empty line.
                loop {
                    let len = self.line_len()?;
                    let empty = strip_cr(&self.buffered()[..len - 1]).is_empty();
                    self.consume(len);
                    if empty {
                        return Ok(());
                    }
                }
            }
            if out.len() as u64 + size > limit {
                return Err(ConnError::BodyTooLarge);
            }
            self.read_exact_into(size as usize, out)?;
            let len = self.line_len()?;
            if !strip_cr(&self.buffered()[..len - 1]).is_empty() {
                return Err(ConnError::BadChunk);
            }
            self.consume(len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

    fn parse(s: &[u8]) -> (Result<Option<Head>, ParseError>, Pairs) {
        let mut hs = Vec::new();
        let r = parse_head(s, &mut hs);
        let named = hs
            .iter()
            .map(|(n, v)| (n.of(s).to_vec(), v.of(s).to_vec()))
            .collect();
        (r, named)
    }

    #[test]
    fn simple_get() {
        let req = b"GET /pid?x=1 HTTP/1.1\r\nHost: a\r\nX-Foo:  bar baz \r\n\r\nrest";
        let (r, hs) = parse(req);
        let h = r.unwrap().unwrap();
        assert_eq!(h.method.of(req), b"GET");
        assert_eq!(h.target.of(req), b"/pid?x=1");
        assert_eq!(h.version.of(req), b"HTTP/1.1");
        assert_eq!(h.minor, 1);
        assert_eq!(h.len, req.len() - 4);
        assert_eq!(h.body, BodyKind::None);
        assert!(h.keep_alive);
        assert_eq!(
            hs,
            vec![
                (b"Host".to_vec(), b"a".to_vec()),
                (b"X-Foo".to_vec(), b"bar baz".to_vec())
            ]
        );
    }

    #[test]
    fn incomplete_head() {
        for req in [
            &b""[..],
            b"GET / HTTP/1.1\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n\r",
        ] {
            assert_eq!(parse(req).0, Ok(None), "{:?}", String::from_utf8_lossy(req));
        }
    }

    #[test]
    fn bare_lf_and_leading_blank_lines() {
        let req = b"\r\n\nPOST /echo HTTP/1.0\nContent-Length: 5\n\nhello";
        let h = parse(req).0.unwrap().unwrap();
        assert_eq!(h.method.of(req), b"POST");
        assert_eq!(h.minor, 0);
        assert_eq!(h.body, BodyKind::Length(5));
        assert!(!h.keep_alive);
        assert_eq!(&req[h.len..], b"hello");
    }

    #[test]
    fn case_and_order_preserved() {
        let req = b"GET / HTTP/1.1\r\nx-lower: 1\r\nX-UPPER: 2\r\nx-lower: 3\r\n\r\n";
        let (_, hs) = parse(req);
        let names: Vec<_> = hs.iter().map(|(n, _)| n.as_slice()).collect();
        assert_eq!(names, vec![&b"x-lower"[..], b"X-UPPER", b"x-lower"]);
        assert_eq!(hs[2].1, b"3");
    }

    #[test]
    fn keep_alive_rules() {
        let ka = |s: &[u8]| parse(s).0.unwrap().unwrap().keep_alive;
        assert!(!ka(b"GET / HTTP/1.1\r\nConnection: Close\r\n\r\n"));
        assert!(!ka(b"GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n"));
        assert!(ka(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
        assert!(!ka(b"GET / HTTP/1.0\r\n\r\n"));
    }

    #[test]
    fn body_framing() {
        let kind = |s: &[u8]| parse(s).0.map(|h| h.unwrap().body);
        assert_eq!(
            kind(b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
            Ok(BodyKind::None)
        );
        assert_eq!(
            kind(b"POST / HTTP/1.1\r\ncontent-length: 12\r\n\r\n"),
            Ok(BodyKind::Length(12))
        );
        assert_eq!(
            kind(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n"),
            Ok(BodyKind::Length(3))
        );
        assert_eq!(
            kind(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n"),
            Ok(BodyKind::Chunked)
        );
        assert_eq!(
            kind(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"),
            Ok(BodyKind::Chunked)
        );
        assert_eq!(
            kind(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"),
            Err(ParseError::BadContentLength)
        );
        assert_eq!(
            kind(b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"),
            Err(ParseError::BadContentLength)
        );
        assert_eq!(
            kind(b"POST / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n"),
            Err(ParseError::BadContentLength)
        );
        assert_eq!(
            kind(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"),
            Err(ParseError::UnsupportedTransferEncoding)
        );
    }

    #[test]
    fn expect_continue() {
        let h = parse(b"PUT / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n").0;
        assert!(h.unwrap().unwrap().expect_continue);
    }

    #[test]
    fn malformed() {
        let err = |s: &[u8]| parse(s).0.unwrap_err();
        assert_eq!(err(b"GET\r\n\r\n"), ParseError::BadRequestLine);
        assert_eq!(err(b"GET /\r\n\r\n"), ParseError::BadRequestLine);
        assert_eq!(err(b"GET  / HTTP/1.1\r\n\r\n"), ParseError::BadRequestLine);
        assert_eq!(err(b"G(T / HTTP/1.1\r\n\r\n"), ParseError::BadRequestLine);
        assert_eq!(err(b"GET / HTTP/2.0\r\n\r\n"), ParseError::BadVersion);
        assert_eq!(err(b"GET / FOO\r\n\r\n"), ParseError::BadRequestLine);
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nNo colon\r\n\r\n"),
            ParseError::BadHeader
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nName : v\r\n\r\n"),
            ParseError::BadHeader
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n"),
            ParseError::BadHeader
        );
        assert_eq!(
            err(b"GET / HTTP/1.1\r\n: empty\r\n\r\n"),
            ParseError::BadHeader
        );
    }

    #[test]
    fn head_too_large() {
        let mut req = b"GET / HTTP/1.1\r\nX: ".to_vec();
        req.resize(MAX_HEAD + 10, b'a');
        assert_eq!(parse(&req).0, Err(ParseError::HeadTooLarge));
    }

    #[test]
    fn latin1_header_value_kept() {
        let req = b"GET / HTTP/1.1\r\nX-Name: caf\xe9\r\n\r\n";
        let (_, hs) = parse(req);
        assert_eq!(hs[0].1, b"caf\xe9");
    }

    /// A reader that hands out at most `step` bytes per read, to exercise buffering.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(self.data.len()).min(out.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn read_all(data: &[u8], step: usize) -> Result<Pairs, ConnError> {
        let mut conn = Conn::new(Trickle { data, step });
        let (mut hb, mut hs, mut body) = (Vec::new(), Vec::new(), Vec::new());
        let mut got = Vec::new();
        while let Some(head) = conn.read_head(&mut hb, &mut hs)? {
            conn.read_body(head.body, &mut body, 1 << 20)?;
            got.push((head.target.of(&hb).to_vec(), body.clone()));
        }
        Ok(got)
    }

    #[test]
    fn pipelined_requests_with_bodies() {
        let data = b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello\
POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n\
GET /c HTTP/1.1\r\n\r\n";
        for step in [1, 2, 7, 1000] {
            let got = read_all(data, step).unwrap();
            assert_eq!(
                got,
                vec![
                    (b"/a".to_vec(), b"hello".to_vec()),
                    (b"/b".to_vec(), b"abc0123456789".to_vec()),
                    (b"/c".to_vec(), Vec::new()),
                ],
                "step {step}"
            );
        }
    }

    #[test]
    fn large_body_grows_buffer() {
        let mut data = b"PUT /big HTTP/1.1\r\nContent-Length: 100000\r\n\r\n".to_vec();
        data.extend_from_slice(&[b'z'; 100_000]);
        let got = read_all(&data, 4096).unwrap();
        assert_eq!(got[0].1.len(), 100_000);
    }

    #[test]
    fn eof_handling() {
        assert!(read_all(b"", 10).unwrap().is_empty());
        assert!(read_all(b"\r\n", 10).unwrap().is_empty());
        assert!(matches!(
            read_all(b"GET / HTTP/1.1\r\n", 10),
            Err(ConnError::UnexpectedEof)
        ));
        assert!(matches!(
            read_all(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc", 10),
            Err(ConnError::UnexpectedEof)
        ));
        assert!(matches!(
            read_all(
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
                10
            ),
            Err(ConnError::UnexpectedEof)
        ));
    }

    #[test]
    fn bad_chunks_and_limits() {
        assert!(matches!(
            read_all(
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                10
            ),
            Err(ConnError::BadChunk)
        ));
        assert!(matches!(
            read_all(
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
                10
            ),
            Err(ConnError::BadChunk)
        ));
        let mut conn = Conn::new(&b"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world"[..]);
        let (mut hb, mut hs, mut body) = (Vec::new(), Vec::new(), Vec::new());
        let head = conn.read_head(&mut hb, &mut hs).unwrap().unwrap();
        assert!(matches!(
            conn.read_body(head.body, &mut body, 10),
            Err(ConnError::BodyTooLarge)
        ));
    }
}
