//! Answering static files (see [`crate::static_files`]) on a client connection: the head at
//! once, the body read from the file as the client takes it, so a large file costs at most
//! [`STATIC_CHUNK_BYTES`] of memory per connection beyond the output buffer's own.

use crate::client::Phase;
use crate::exchange::{write_error, Answer, ParsedRequest};
use crate::http::{canonical_reason, Version};
use crate::server::Server;
use crate::static_files::{Lookup, StaticAnswer};
use std::os::unix::fs::FileExt;

/// Bytes of a static file moved into a client's output at a time, and the backlog below
/// which the next part is read.
pub const STATIC_CHUNK_BYTES: usize = 256 * 1024;

impl Server {
    /// Answers `parsed` from the static files directory if it names a file there (or tries
    /// to leave the directory); otherwise gives it back for the app.
    pub fn serve_static(&mut self, key: usize, parsed: ParsedRequest) -> Option<ParsedRequest> {
        let lookup = match (&self.static_dir, &parsed.static_request) {
            (Some(dir), Some(request)) => dir.lookup(request),
            _ => Lookup::App,
        };
        let answer = Answer::to(Some(&parsed), !self.stopping);
        match lookup {
            Lookup::App => return Some(parsed),
            Lookup::Refuse { status, reason } => {
                self.set_deadline(key, None);
                let client = self.client(key)?;
                let written = write_error(client.out.buffer(), status, reason, answer);
                client.responded(written);
                self.finish_exchange(key, !answer.close);
            }
            Lookup::Serve(static_answer) => {
                self.set_deadline(key, None);
                let client = self.client(key)?;
                let http10 = parsed.version == Version::Http10;
                write_head(client.out.buffer(), &static_answer, answer.close, http10);
                let body_bytes = static_answer.body.as_ref().map_or(0, |b| b.len);
                client.responded((static_answer.status, body_bytes));
                client.static_body = static_answer.body;
                client.phase = Phase::Static {
                    keep_alive: !answer.close,
                };
                self.refill_static(key);
            }
        }
        None
    }

    /// Moves the next part of the static file into the output while the backlog is small;
    /// once all of it is queued, the exchange is done.
    pub fn refill_static(&mut self, key: usize) {
        let Some(client) = self.client(key) else {
            return;
        };
        let Phase::Static { keep_alive } = client.phase else {
            return;
        };
        let mut added = false;
        while client.out.pending() < STATIC_CHUNK_BYTES {
            let Some(body) = client.static_body.as_mut().filter(|b| b.len > 0) else {
                client.static_body = None;
                break;
            };
            let take = body.len.min(STATIC_CHUNK_BYTES as u64) as usize;
            let buffer = client.out.buffer();
            let start = buffer.len();
            buffer.resize(start + take, 0);
            match body.file.read_at(&mut buffer[start..], body.offset) {
                Ok(n) if n > 0 => {
                    buffer.truncate(start + n);
                    body.offset += n as u64;
                    body.len -= n as u64;
                    added = true;
                }
                _ => {
                    // The file shrank or broke after its length went out: the close tells
                    // the client its response is cut short.
                    buffer.truncate(start);
                    client.static_body = None;
                    client.phase = Phase::Closing;
                    return self.flush_client(key);
                }
            }
        }
        if client.static_body.is_none() {
            return self.finish_exchange(key, keep_alive);
        }
        if added {
            self.flush_client(key);
        }
    }
}

fn write_head(out: &mut Vec<u8>, answer: &StaticAnswer, close: bool, http10: bool) {
    let status = answer.status;
    out.extend_from_slice(format!("HTTP/1.1 {status} {}\r\n", canonical_reason(status)).as_bytes());
    for (name, value) in &answer.headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
}
