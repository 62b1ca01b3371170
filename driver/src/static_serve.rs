//! Answering static files (see [`crate::static_files`]) on a client connection: the head at
//! once, the body read from the file as the client takes it, so a large file costs at most
//! [`STATIC_CHUNK_BYTES`] of memory per connection beyond the output buffer's own. The client
//! connection calls these and keeps the file's remaining [`FileRange`].

use crate::buffers::OutBuf;
use crate::exchange::{write_error, Answer, ParsedRequest};
use crate::http::{canonical_reason, Version};
use crate::static_files::{FileRange, Lookup, StaticAnswer, StaticDir};
use std::os::unix::fs::FileExt;

/// Bytes of a static file moved into a client's output at a time, and the backlog below
/// which the next part is read.
pub const STATIC_CHUNK_BYTES: usize = 256 * 1024;

/// What became of a request offered to the static files directory.
pub enum Served {
    /// Not a static file: the app answers it.
    App(ParsedRequest),
    /// Answered with an error page (a path that tries to leave the directory, say); the
    /// response's status and body bytes.
    Refused { close: bool, response: (u16, u64) },
    /// A file: its head is out, its body waits in the [`FileRange`] to go out with
    /// [`refill`]; the response's status and body bytes.
    File { close: bool, response: (u16, u64) },
}

/// Answers `parsed` from `dir` if it names a file there (or tries to leave the directory):
/// the head or an error page into `out`, what is to follow of the file into `body`.
pub fn serve(
    dir: Option<&StaticDir>,
    parsed: ParsedRequest,
    keep_alive_allowed: bool,
    out: &mut Vec<u8>,
    body: &mut Option<FileRange>,
) -> Served {
    let lookup = match (dir, &parsed.static_request) {
        (Some(dir), Some(request)) => dir.lookup(request),
        _ => Lookup::App,
    };
    let answer = Answer::to(Some(&parsed), keep_alive_allowed);
    match lookup {
        Lookup::App => Served::App(parsed),
        Lookup::Refuse { status, reason } => {
            let response = write_error(out, status, reason, answer);
            Served::Refused {
                close: answer.close,
                response,
            }
        }
        Lookup::Serve(static_answer) => {
            let http10 = parsed.version == Version::Http10;
            write_head(out, &static_answer, answer.close, http10);
            let body_bytes = static_answer.body.as_ref().map_or(0, |b| b.len);
            *body = static_answer.body;
            Served::File {
                close: answer.close,
                response: (static_answer.status, body_bytes),
            }
        }
    }
}

/// What [`refill`] did.
pub enum Refill {
    /// More of the file waits; `added` says whether some went into the output now.
    Partly { added: bool },
    /// All of the file is in the output.
    Done,
    /// The file shrank or broke after its length went out: the response can only be cut.
    Broken,
}

/// Moves the next part of the file into `out` while the backlog is small.
pub fn refill(out: &mut OutBuf, body: &mut Option<FileRange>) -> Refill {
    let mut added = false;
    while out.pending() < STATIC_CHUNK_BYTES {
        let Some(range) = body.as_mut().filter(|b| b.len > 0) else {
            *body = None;
            break;
        };
        let take = range.len.min(STATIC_CHUNK_BYTES as u64) as usize;
        let buffer = out.buffer();
        let start = buffer.len();
        buffer.resize(start + take, 0);
        match range.file.read_at(&mut buffer[start..], range.offset) {
            Ok(n) if n > 0 => {
                buffer.truncate(start + n);
                range.offset += n as u64;
                range.len -= n as u64;
                added = true;
            }
            _ => {
                buffer.truncate(start);
                *body = None;
                return Refill::Broken;
            }
        }
    }
    if body.is_none() {
        Refill::Done
    } else {
        Refill::Partly { added }
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
