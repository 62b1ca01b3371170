//! ferry's own error responses: small, complete HTML pages with exact framing.

/// The standard reason phrase of a status code (RFC 9110 §15), or `""` if unknown.
pub fn canonical_reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// Appends a complete error response to `out`: status line, `Content-Type: text/html;
/// charset=utf-8`, exact Content-Length, `Cache-Control: no-store` (an error must not be
/// cached in place of the real page), `Retry-After` if given (for 503), `Connection: close`
/// if `close`, and a short HTML page showing `title` and `detail` (both HTML-escaped here).
///
/// Returns the length of the head, so a response to HEAD can be cut to
/// `out.truncate(start + head_len)`.
pub fn error_response(
    status: u16,
    title: &str,
    detail: &str,
    retry_after_secs: Option<u32>,
    close: bool,
    out: &mut Vec<u8>,
) -> usize {
    let start = out.len();
    let mut body_len = ByteCounter(0);
    write_page(&mut body_len, status, title, detail);

    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(canonical_reason(status).as_bytes());
    out.extend_from_slice(b"\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: ");
    push_decimal(out, body_len.0 as u64);
    out.extend_from_slice(b"\r\nCache-Control: no-store\r\n");
    if let Some(seconds) = retry_after_secs {
        out.extend_from_slice(b"Retry-After: ");
        push_decimal(out, u64::from(seconds));
        out.extend_from_slice(b"\r\n");
    }
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    let head_len = out.len() - start;
    write_page(out, status, title, detail);
    debug_assert_eq!(out.len() - start - head_len, body_len.0);
    head_len
}

/// Where the page is written: the output, or a counter that measures it first so the
/// Content-Length is exact without a temporary buffer.
trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

struct ByteCounter(usize);

impl Sink for ByteCounter {
    fn put(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }
}

fn write_page(sink: &mut impl Sink, status: u16, title: &str, detail: &str) {
    let mut digits = [0u8; 20];
    sink.put(b"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>");
    sink.put(decimal(u64::from(status), &mut digits));
    sink.put(b" ");
    sink.put(canonical_reason(status).as_bytes());
    sink.put(b"</title></head>\n<body><h1>");
    put_escaped(sink, title);
    sink.put(b"</h1>\n<p>");
    put_escaped(sink, detail);
    sink.put(b"</p>\n<hr><p>ferry</p></body></html>\n");
}

fn put_escaped(sink: &mut impl Sink, text: &str) {
    let bytes = text.as_bytes();
    let mut plain_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let entity: &[u8] = match b {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            b'"' => b"&quot;",
            b'\'' => b"&#39;",
            _ => continue,
        };
        sink.put(&bytes[plain_start..i]);
        sink.put(entity);
        plain_start = i + 1;
    }
    sink.put(&bytes[plain_start..]);
}

/// Appends `n` in decimal without going through `fmt` (this runs for every message).
pub(crate) fn push_decimal(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    out.extend_from_slice(decimal(n, &mut digits));
}

fn decimal(mut n: u64, digits: &mut [u8; 20]) -> &[u8] {
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &digits[start..]
}
