//! The access log (`--access-log PATH`, `-` for standard output): one line per request,
//! whatever answered it (the app, a 503 from the queue, a 502 or 504, a 400 from the parser,
//! a static file, an upgraded connection once it ends).
//!
//! Two formats. `combined` is nginx's and Apache's combined format followed by the request
//! time in seconds with milliseconds and the pid of the app process that served it (`-` when
//! none did):
//!
//! ```text
//! 127.0.0.1 - - [02/Dec/2026:01:00:00 +0000] "GET / HTTP/1.1" 200 13 "-" "curl/8.5.0" 0.012 4242
//! ```
//!
//! `json` is one object a line with the same fields, its `time` to the millisecond
//! (RFC 3339), and `queue_time`, the part of the request time spent waiting for a process
//! (what lets a replay serve a request for its service time alone). Both are what `ferry sim --replay` reads. Times are UTC, and a line's time is
//! when the request ended, as nginx logs it.
//!
//! Lines are buffered and written once per round of the event loop ([`AccessLog::flush`]),
//! so logging costs one write per round, not per request. [`AccessLog::reopen`] (on SIGUSR1)
//! opens the path again, so a rotated file is let go of, as nginx does.

use serde::Serialize;
use std::fs::File;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use time::macros::format_description;
use time::OffsetDateTime;

/// Buffered bytes beyond which lines are written before the round ends.
const BUFFER_MAX_BYTES: usize = 64 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessLogFormat {
    /// The combined format, then the request time in seconds and the pid.
    #[default]
    Combined,
    /// One JSON object a line.
    Json,
}

/// What the log keeps of a request's head, taken when the head has been read (a head that
/// could not be read is logged without one, as `"-"`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestSummary {
    pub method: String,
    pub target: String,
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub protocol: &'static str,
    pub referer: Option<String>,
    pub user_agent: Option<String>,
}

impl RequestSummary {
    pub fn from_head(head: &crate::http::RequestHead, head_bytes: &[u8]) -> RequestSummary {
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        RequestSummary {
            method: text(head.method(head_bytes)),
            target: text(head.target(head_bytes)),
            protocol: match head.version {
                crate::http::Version::Http10 => "HTTP/1.0",
                crate::http::Version::Http11 => "HTTP/1.1",
            },
            referer: head.header(head_bytes, b"referer").map(text),
            user_agent: head.header(head_bytes, b"user-agent").map(text),
        }
    }
}

/// One line: a request and how it ended.
#[derive(Clone, Debug)]
pub struct Entry<'a> {
    pub client: IpAddr,
    pub request: Option<&'a RequestSummary>,
    pub status: u16,
    /// Bytes of the response body sent (as nginx's `$body_bytes_sent`).
    pub body_bytes: u64,
    /// From the first byte of the request to the end of the response.
    pub request_time: Duration,
    /// The app process that served it.
    pub pid: Option<u32>,
    /// How long it waited in the queue for a process (part of `request_time`).
    pub queue_time: Duration,
    /// When the request ended.
    pub time: SystemTime,
}

#[derive(Serialize)]
struct JsonEntry<'a> {
    time: String,
    remote_addr: IpAddr,
    method: Option<&'a str>,
    target: Option<&'a str>,
    protocol: Option<&'a str>,
    status: u16,
    body_bytes: u64,
    referer: Option<&'a str>,
    user_agent: Option<&'a str>,
    /// Seconds, to the millisecond.
    request_time: f64,
    pid: Option<u32>,
    /// Seconds, to the millisecond: the part of `request_time` spent waiting for a process.
    queue_time: f64,
}

enum Sink {
    Stdout,
    File { path: PathBuf, file: File },
}

pub struct AccessLog {
    sink: Sink,
    format: AccessLogFormat,
    buffer: Vec<u8>,
    /// The last second formatted for the combined format, and its text: most lines of a
    /// busy server share their second.
    second_text: Option<(u64, String)>,
    /// A write failed and has been reported; the next failure is not, until one succeeds.
    failing: bool,
}

/// `path` as the error messages name it.
fn shown(path: &Path) -> String {
    path.display().to_string()
}

fn open_append(path: &Path) -> Result<File, String> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|error| {
            format!(
                "--access-log {}: cannot open it for writing: {error} (give a file in a writable directory, or - for standard output)",
                shown(path)
            )
        })
}

impl AccessLog {
    /// Opens `target` for appending (`-`: standard output); the error says why not.
    pub fn open(target: &Path, format: AccessLogFormat) -> Result<AccessLog, String> {
        let sink = if target == Path::new("-") {
            Sink::Stdout
        } else {
            Sink::File {
                path: target.to_path_buf(),
                file: open_append(target)?,
            }
        };
        Ok(AccessLog {
            sink,
            format,
            buffer: Vec::with_capacity(BUFFER_MAX_BYTES),
            second_text: None,
            failing: false,
        })
    }

    /// Adds a line; written at the next [`flush`](Self::flush), or now if the buffer is full.
    /// An error is returned once per run of failing writes, for the server's log.
    pub fn record(&mut self, entry: &Entry) -> Result<(), String> {
        match self.format {
            AccessLogFormat::Combined => self.write_combined(entry),
            AccessLogFormat::Json => {
                let json = JsonEntry::of(entry);
                serde_json::to_writer(&mut self.buffer, &json).expect("a Vec takes any JSON");
                self.buffer.push(b'\n');
            }
        }
        if self.buffer.len() >= BUFFER_MAX_BYTES {
            return self.flush();
        }
        Ok(())
    }

    /// Writes the buffered lines. Lines that cannot be written are dropped (the error says
    /// so) rather than held: a full disk must not grow ferry's memory.
    pub fn flush(&mut self) -> Result<(), String> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let result = match &mut self.sink {
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(&self.buffer).and_then(|()| out.flush())
            }
            Sink::File { file, .. } => file.write_all(&self.buffer),
        };
        let lines = self.buffer.iter().filter(|&&b| b == b'\n').count();
        self.buffer.clear();
        match result {
            Ok(()) => {
                self.failing = false;
                Ok(())
            }
            Err(_) if self.failing => Ok(()),
            Err(error) => {
                self.failing = true;
                Err(format!(
                    "access log {}: cannot write {lines} lines: {error}; lines are dropped until writing works again",
                    self.target()
                ))
            }
        }
    }

    /// Writes what is buffered, then opens the path again (after a rotation renamed it).
    /// On failure the old file stays in use and the error says why.
    pub fn reopen(&mut self) -> Result<(), String> {
        let flushed = self.flush();
        if let Sink::File { path, file } = &mut self.sink {
            *file = open_append(path)?;
        }
        flushed
    }

    /// Where the log goes, for messages.
    pub fn target(&self) -> String {
        match &self.sink {
            Sink::Stdout => "standard output".to_string(),
            Sink::File { path, .. } => shown(path),
        }
    }

    fn write_combined(&mut self, entry: &Entry) {
        let unix_s = entry
            .time
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if self.second_text.as_ref().map(|(s, _)| *s) != Some(unix_s) {
            self.second_text = Some((unix_s, combined_time(unix_s)));
        }
        let time = &self.second_text.as_ref().expect("just set").1;
        let out = &mut self.buffer;
        let _ = write!(out, "{} - - [{time}] \"", entry.client);
        match entry.request {
            Some(r) => {
                escape_into(out, &r.method);
                out.push(b' ');
                escape_into(out, &r.target);
                out.push(b' ');
                out.extend_from_slice(r.protocol.as_bytes());
            }
            None => out.push(b'-'),
        }
        let _ = write!(out, "\" {} {} \"", entry.status, entry.body_bytes);
        escape_into(out, field(entry.request.and_then(|r| r.referer.as_deref())));
        out.extend_from_slice(b"\" \"");
        escape_into(
            out,
            field(entry.request.and_then(|r| r.user_agent.as_deref())),
        );
        let millis = entry.request_time.as_millis();
        let _ = write!(out, "\" {}.{:03} ", millis / 1000, millis % 1000);
        match entry.pid {
            Some(pid) => {
                let _ = writeln!(out, "{pid}");
            }
            None => out.extend_from_slice(b"-\n"),
        }
    }
}

impl<'a> JsonEntry<'a> {
    fn of(entry: &'a Entry) -> JsonEntry<'a> {
        let request = entry.request;
        JsonEntry {
            time: humantime::format_rfc3339_millis(entry.time).to_string(),
            remote_addr: entry.client,
            method: request.map(|r| r.method.as_str()),
            target: request.map(|r| r.target.as_str()),
            protocol: request.map(|r| r.protocol),
            status: entry.status,
            body_bytes: entry.body_bytes,
            referer: request.and_then(|r| r.referer.as_deref()),
            user_agent: request.and_then(|r| r.user_agent.as_deref()),
            request_time: seconds_to_the_millisecond(entry.request_time),
            pid: entry.pid,
            queue_time: seconds_to_the_millisecond(entry.queue_time),
        }
    }
}

fn seconds_to_the_millisecond(time: Duration) -> f64 {
    time.as_millis() as f64 / 1000.0
}

/// A header the request did not send is logged as `-`, as nginx does.
fn field(value: Option<&str>) -> &str {
    value.unwrap_or("-")
}

/// `02/Dec/2026:01:00:00 +0000`.
fn combined_time(unix_s: u64) -> String {
    let format =
        format_description!("[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000");
    OffsetDateTime::from_unix_timestamp(unix_s as i64)
        .ok()
        .and_then(|time| time.format(format).ok())
        .unwrap_or_else(|| "01/Jan/1970:00:00:00 +0000".to_string())
}

/// Quotes, backslashes and bytes outside printable ASCII as `\xHH`, as nginx escapes them:
/// a client cannot forge a field or a line.
fn escape_into(out: &mut Vec<u8>, text: &str) {
    for &byte in text.as_bytes() {
        if byte == b'"' || byte == b'\\' || !(0x20..0x7f).contains(&byte) {
            let _ = write!(out, "\\x{byte:02X}");
        } else {
            out.push(byte);
        }
    }
}

#[cfg(test)]
#[path = "access_log_tests.rs"]
mod tests;
