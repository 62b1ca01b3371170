//! Static files: `GET` and `HEAD` requests for a file under `APP_DIR/public` (or
//! `--static-files-dir`) are answered by ferry itself, as Passenger does, without an app
//! process. Content types by extension, single byte ranges, `ETag`/`Last-Modified` with
//! `If-None-Match`/`If-Modified-Since`/`If-Range`.
//!
//! What never leaves the directory:
//! - a path with a `..` segment, written plainly or percent-encoded (`%2e%2e`), or holding a
//!   NUL byte, is refused with 400 and reaches neither the file system nor the app;
//! - a symlink is followed only when its target is inside the directory: one that leads out
//!   is not served, and the request goes to the app as for any path without a file;
//! - only regular files are served: a directory (no index files) goes to the app.
//!
//! This module decides and builds heads; the body is read from the open file as the client
//! takes it (`static_serve`), never loaded whole.

use crate::http::RequestHead;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The parts of a request a static answer depends on.
#[derive(Clone, Debug, Default)]
pub struct StaticRequest {
    pub head_only: bool,
    /// The target's path, still percent-encoded, without the query.
    pub path: Vec<u8>,
    pub range: Option<Vec<u8>>,
    pub if_none_match: Option<Vec<u8>>,
    pub if_modified_since: Option<Vec<u8>>,
    pub if_range: Option<Vec<u8>>,
}

impl StaticRequest {
    /// `None` unless the request is a GET or HEAD of an origin-form target (`/path`).
    pub fn from_head(head: &RequestHead, buf: &[u8]) -> Option<StaticRequest> {
        let method = head.method(buf);
        if method != b"GET" && method != b"HEAD" {
            return None;
        }
        let target = head.target(buf);
        if !target.starts_with(b"/") {
            return None;
        }
        let path_end = target.iter().position(|&b| b == b'?' || b == b'#');
        let header = |name: &[u8]| head.header(buf, name).map(<[u8]>::to_vec);
        Some(StaticRequest {
            head_only: method == b"HEAD",
            path: target[..path_end.unwrap_or(target.len())].to_vec(),
            range: header(b"range"),
            if_none_match: header(b"if-none-match"),
            if_modified_since: header(b"if-modified-since"),
            if_range: header(b"if-range"),
        })
    }
}

/// What to do with a request.
#[derive(Debug)]
pub enum Lookup {
    /// No static file for it: the app answers.
    App,
    /// Refused without touching the file system or the app: a path that tries to leave the
    /// directory.
    Refuse {
        status: u16,
        reason: &'static str,
    },
    Serve(StaticAnswer),
}

/// A static response: its head (without `Connection`, which the caller adds), and the bytes
/// of `file` to send after it.
#[derive(Debug)]
pub struct StaticAnswer {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<FileRange>,
}

#[derive(Debug)]
pub struct FileRange {
    pub file: File,
    pub offset: u64,
    pub len: u64,
}

pub struct StaticDir {
    root: PathBuf,
}

impl StaticDir {
    /// The directory, if it exists (resolved once: symlinks in its own path are fine).
    pub fn open(dir: &Path) -> Option<StaticDir> {
        let root = std::fs::canonicalize(dir).ok()?;
        root.is_dir().then_some(StaticDir { root })
    }

    pub fn lookup(&self, request: &StaticRequest) -> Lookup {
        let Some(segments) = decode_segments(&request.path) else {
            return Lookup::Refuse {
                status: 400,
                reason: "the path leaves the static files directory",
            };
        };
        let mut candidate = self.root.clone();
        candidate.extend(&segments);
        // Symlinks resolved: the file must still be inside the directory.
        let Ok(real) = std::fs::canonicalize(&candidate) else {
            return Lookup::App;
        };
        if !real.starts_with(&self.root) {
            return Lookup::App;
        }
        let Ok(file) = File::open(&real) else {
            return Lookup::App;
        };
        // The opened file's own metadata: what is sent is what was checked.
        let Ok(meta) = file.metadata() else {
            return Lookup::App;
        };
        if !meta.is_file() {
            return Lookup::App;
        }
        Lookup::Serve(answer(request, file, &meta, &real))
    }
}

/// The path's segments, percent-decoded; `None` for a `..` segment, a NUL, or bad UTF-8.
fn decode_segments(path: &[u8]) -> Option<Vec<String>> {
    let decoded = percent_decode(path)?;
    let text = String::from_utf8(decoded).ok()?;
    if text.contains('\0') {
        return None;
    }
    let mut segments = Vec::new();
    for segment in text.split('/') {
        match segment {
            "" | "." => {}
            ".." => return None,
            other => segments.push(other.to_string()),
        }
    }
    Some(segments)
}

fn percent_decode(bytes: &[u8]) -> Option<Vec<u8>> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let high = hex(*bytes.get(i + 1)?)?;
            let low = hex(*bytes.get(i + 2)?)?;
            out.push(high << 4 | low);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

fn answer(
    request: &StaticRequest,
    file: File,
    meta: &std::fs::Metadata,
    path: &Path,
) -> StaticAnswer {
    let len = meta.len();
    let mtime_secs = meta.mtime().max(0) as u64;
    let modified = SystemTime::UNIX_EPOCH + Duration::from_secs(mtime_secs);
    let etag = format!("\"{mtime_secs:x}-{len:x}\"");
    let last_modified = httpdate::fmt_http_date(modified);
    let mut headers = vec![
        ("ETag", etag.clone()),
        ("Last-Modified", last_modified),
        ("Accept-Ranges", "bytes".to_string()),
    ];
    let not_modified = match (&request.if_none_match, &request.if_modified_since) {
        (Some(tags), _) => etag_listed(tags, &etag),
        (None, Some(since)) => parse_date(since).is_some_and(|since| mtime_secs <= since),
        (None, None) => false,
    };
    if not_modified {
        return StaticAnswer {
            status: 304,
            headers,
            body: None,
        };
    }
    headers.insert(0, ("Content-Type", content_type(path).to_string()));
    // If-Range: a strong ETag match, or the exact date, means the client's copy is current.
    let range_applies = match request.if_range.as_deref() {
        None => true,
        Some(condition) => {
            condition == etag.as_bytes()
                || parse_date(condition).is_some_and(|date| date == mtime_secs)
        }
    };
    let range = match &request.range {
        Some(range) if range_applies => parse_range(range, len),
        _ => RangeAnswer::Whole,
    };
    let (status, offset, body_len) = match range {
        RangeAnswer::Whole => (200, 0, len),
        RangeAnswer::Part { start, end } => {
            headers.push(("Content-Range", format!("bytes {start}-{end}/{len}")));
            (206, start, end - start + 1)
        }
        RangeAnswer::Unsatisfiable => {
            headers.push(("Content-Range", format!("bytes */{len}")));
            headers.retain(|(name, _)| *name != "Content-Type");
            headers.push(("Content-Type", "text/plain".to_string()));
            headers.push(("Content-Length", "0".to_string()));
            return StaticAnswer {
                status: 416,
                headers,
                body: None,
            };
        }
    };
    headers.push(("Content-Length", body_len.to_string()));
    let body = (!request.head_only && body_len > 0).then_some(FileRange {
        file,
        offset,
        len: body_len,
    });
    StaticAnswer {
        status,
        headers,
        body,
    }
}

/// Whether `If-None-Match` lists `etag` (weak comparison, as RFC 9110 §13.1.2 asks) or is `*`.
fn etag_listed(list: &[u8], etag: &str) -> bool {
    let text = String::from_utf8_lossy(list);
    text.split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

fn parse_date(value: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(value).ok()?;
    let time = httpdate::parse_http_date(text.trim()).ok()?;
    Some(time.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs())
}

#[derive(Debug, PartialEq, Eq)]
enum RangeAnswer {
    Whole,
    /// Bytes `start..=end`.
    Part {
        start: u64,
        end: u64,
    },
    Unsatisfiable,
}

/// One `bytes=` range (RFC 9110 §14.1.2). Several ranges, or a form ferry does not parse,
/// get the whole file, which the RFC allows.
fn parse_range(value: &[u8], len: u64) -> RangeAnswer {
    let Some(spec) = std::str::from_utf8(value)
        .ok()
        .and_then(|t| t.trim().strip_prefix("bytes="))
    else {
        return RangeAnswer::Whole;
    };
    if spec.contains(',') {
        return RangeAnswer::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeAnswer::Whole;
    };
    let number = |t: &str| -> Option<u64> {
        (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    };
    match (number(first), number(last), last.is_empty()) {
        // bytes=-N: the last N bytes.
        (None, Some(suffix), _) if first.is_empty() => {
            if suffix == 0 || len == 0 {
                return RangeAnswer::Unsatisfiable;
            }
            RangeAnswer::Part {
                start: len.saturating_sub(suffix),
                end: len - 1,
            }
        }
        (Some(start), None, true) if start < len => RangeAnswer::Part {
            start,
            end: len - 1,
        },
        (Some(start), Some(end), _) if start <= end && start < len => RangeAnswer::Part {
            start,
            end: end.min(len - 1),
        },
        (Some(start), Some(end), _) if start <= end => RangeAnswer::Unsatisfiable,
        (Some(_), None, true) => RangeAnswer::Unsatisfiable,
        _ => RangeAnswer::Whole,
    }
}

/// The content type of a file by its extension; `application/octet-stream` when unknown.
pub fn content_type(path: &Path) -> &'static str {
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" | "map" => "application/json",
        "txt" | "text" => "text/plain; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/vnd.microsoft.icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "wasm" => "application/wasm",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "wav" => "audio/wav",
        "webmanifest" => "application/manifest+json",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
#[path = "static_files_tests.rs"]
mod tests;
