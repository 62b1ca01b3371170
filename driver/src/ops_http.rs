//! The `--metrics-address` listener's connections: `GET /metrics`, `GET /health` and
//! `GET /ready`, one request per connection (answered with `Connection: close`), parsed by
//! the same HTTP layer as the proxy.
//!
//! - `/health`: 200 while ferry runs, stopping included: ferry is up.
//! - `/ready`: 200 while ferry takes traffic, 503 before it can serve (no app process has
//!   been ready yet) and from the moment a stop begins, so a balancer drains it before its
//!   in-flight requests end.
//! - `/metrics`: Prometheus' text format (see [`crate::metrics`]).
//!
//! A connection lives at most `--header-timeout` from its accept, answered or not, so a
//! scraper that hangs (sends nothing, or half a request) cannot hold one for ever.

use crate::http::{Limits, Method, RequestParser};
use std::io::{ErrorKind, Read, Write};
use std::time::Instant;

/// The most connections open at once; a new one beyond closes the oldest, so clients that
/// connect and send nothing cannot pile up even before their deadline.
pub const CONNECTIONS_MAX: usize = 32;

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Metrics,
    Health,
    Ready,
}

/// An answer: status and body (text).
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Answer {
    pub fn text(status: u16, body: impl Into<String>) -> Answer {
        Answer {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }
}

/// The content type of Prometheus' text format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub struct OpsConn<S> {
    pub stream: S,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    written: usize,
    answered: bool,
    /// When the connection is closed if still open: its accept plus `--header-timeout`. The
    /// same for all, so the earliest is also the oldest one, closed beyond
    /// [`CONNECTIONS_MAX`].
    pub deadline: Instant,
}

/// What a request becomes: a route to answer, or ferry's own answer (404, 405, 400).
fn route(head: &crate::http::RequestHead, bytes: &[u8]) -> Result<(Route, bool), Answer> {
    let head_only = match head.method_kind {
        Method::Get => false,
        Method::Head => true,
        _ => {
            return Err(Answer::text(
                405,
                "only GET and HEAD are served here (GET /metrics, /health, /ready)\n",
            ))
        }
    };
    let target = head.target(bytes);
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    let route = match path {
        b"/metrics" => Route::Metrics,
        b"/health" => Route::Health,
        b"/ready" => Route::Ready,
        _ => {
            return Err(Answer::text(
                404,
                "not found: this address serves GET /metrics, /health and /ready\n",
            ))
        }
    };
    Ok((route, head_only))
}

impl<S: Read + Write> OpsConn<S> {
    pub fn new(stream: S, deadline: Instant) -> OpsConn<S> {
        OpsConn {
            stream,
            inbuf: Vec::new(),
            out: Vec::new(),
            written: 0,
            answered: false,
            deadline,
        }
    }

    /// Reads what came, answers once a request head is in (`answer` gives the route's
    /// answer), writes what the socket takes. True once the connection is to be closed.
    pub fn on_ready(&mut self, answer: impl FnOnce(Route) -> Answer) -> bool {
        if !self.answered {
            match self.read() {
                Ok(eof) => {
                    if let Some(response) = self.parse(answer) {
                        self.out = response;
                        self.answered = true;
                    } else if eof {
                        return true;
                    }
                }
                Err(()) => return true,
            }
        }
        if self.answered {
            return self.write();
        }
        false
    }

    /// Reads until the socket would block; Ok(true) at end of stream.
    fn read(&mut self) -> Result<bool, ()> {
        let limit =
            Limits::default().max_request_line_bytes + Limits::default().max_field_section_bytes;
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return Ok(true),
                Ok(n) => {
                    self.inbuf.extend_from_slice(&buf[..n]);
                    if self.inbuf.len() > limit {
                        return Ok(false); // the parser refuses it
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return Err(()),
            }
        }
    }

    fn parse(&mut self, answer: impl FnOnce(Route) -> Answer) -> Option<Vec<u8>> {
        let mut parser = RequestParser::new(Limits::default());
        let (response, head_only) = match parser.parse(&self.inbuf) {
            Ok(None) => return None,
            Err(error) => (
                Answer::text(error.status, format!("{}\n", error.reason)),
                false,
            ),
            Ok(Some(head)) => match route(head, &self.inbuf) {
                Ok((route, head_only)) => (answer(route), head_only),
                Err(refused) => (refused, false),
            },
        };
        Some(encode(&response, head_only))
    }

    fn write(&mut self) -> bool {
        while self.written < self.out.len() {
            match self.stream.write(&self.out[self.written..]) {
                Ok(0) => return true,
                Ok(n) => self.written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return true,
            }
        }
        true
    }
}

fn encode(answer: &Answer, head_only: bool) -> Vec<u8> {
    let reason = crate::http::canonical_reason(answer.status);
    let mut out = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        answer.status,
        answer.content_type,
        answer.body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(answer.body.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A socket stand-in: reads `input`, then would block; keeps what is written.
    struct Fake {
        input: Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Read for Fake {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match self.input.read(buf)? {
                0 => Err(ErrorKind::WouldBlock.into()),
                n => Ok(n),
            }
        }
    }

    impl Write for Fake {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.output.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn ask(request: &str) -> (bool, String, Option<Route>) {
        let mut conn = OpsConn::new(
            Fake {
                input: Cursor::new(request.as_bytes().to_vec()),
                output: Vec::new(),
            },
            Instant::now(),
        );
        let mut asked = None;
        let done = conn.on_ready(|route| {
            asked = Some(route);
            Answer::text(200, "ok\n")
        });
        let output = String::from_utf8(conn.stream.output).unwrap();
        (done, output, asked)
    }

    #[test]
    fn each_path_reaches_its_route_and_the_answer_closes() {
        for (path, route) in [
            ("/metrics", Route::Metrics),
            ("/health?x=1", Route::Health),
            ("/ready", Route::Ready),
        ] {
            let (done, output, asked) = ask(&format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"));
            assert!(done);
            assert_eq!(asked, Some(route));
            assert!(output.starts_with("HTTP/1.1 200 OK\r\n"), "{output}");
            assert!(output.contains("Connection: close\r\n"));
            assert!(output.ends_with("\r\n\r\nok\n"), "{output}");
        }
        let (_, head, _) = ask("HEAD /ready HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(
            head.ends_with(
                "Content-Length: 3\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
            ),
            "{head}"
        );
    }

    #[test]
    fn other_paths_methods_and_bad_heads_get_a_clear_answer() {
        let (_, output, asked) = ask("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(output.starts_with("HTTP/1.1 404 "), "{output}");
        assert!(output.contains("serves GET /metrics, /health and /ready"));
        assert_eq!(asked, None);
        let (_, output, _) = ask("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
        assert!(output.starts_with("HTTP/1.1 405 "), "{output}");
        let (_, output, _) = ask("GET /metrics HTTP/1.1\r\nBad Header\r\n\r\n");
        assert!(output.starts_with("HTTP/1.1 400 "), "{output}");
        // Half a head: nothing yet, the connection stays.
        let (done, output, _) = ask("GET /metr");
        assert!(!done && output.is_empty());
    }
}
