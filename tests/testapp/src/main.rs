//! ferry-testapp: a small HTTP/1.1 server with knobs, used by ferry's end-to-end
//! tests, benchmarks and README examples. Standard library only.
//!
//! Listens on `127.0.0.1:$PORT` (required; `0` picks a free port, which the
//! startup line reports). One thread per connection, keep-alive, pipelining,
//! Content-Length and chunked request bodies.
//!
//! Environment knobs:
//! * `PORT` — port to listen on (required; missing/invalid → exit 2).
//! * `TESTAPP_STARTUP_DELAY_MS` — sleep this long before binding.
//! * `TESTAPP_FAIL_START` — if set, print its value as an error on stderr and
//!   exit 1 before binding (after the startup delay).
//! * `TESTAPP_CRASH_AFTER` — exit(3) right after writing the N-th response
//!   (process-wide count).
//! * `TESTAPP_REQUEST_DELAY_MS` — sleep this long in every request, after the
//!   request body was read and before answering.
//! * `TESTAPP_RECORD_FILE` — `/echo` appends its JSON, one line per request.
//! * `TESTAPP_HOLD_FILE` — `/hold` answers once this file exists.
//! * `TESTAPP_CONCURRENCY_FILE` — every request appends `<pid> <requests in progress in
//!   this process, itself included>` as it starts (after its body was read); a request is in
//!   progress until its response begins.
//! * `TESTAPP_KEEP_ALIVE_MS` — close a keep-alive connection that stays idle this long
//!   between requests (as Node's `keepAliveTimeout` or gunicorn's `--keep-alive` do).
//!
//! Endpoints (any method unless noted; HEAD gets the head only):
//! * `/` → `Hello from ferry-testapp pid <pid>\n`
//! * `/pid` → the pid (no newline)
//! * `/sleep?ms=N` → sleeps N ms, then answers the pid
//! * `/hold` → waits until the file `TESTAPP_HOLD_FILE` names exists (at most 60 s), then
//!   answers the pid; 500 when the variable is unset
//! * `/echo` → JSON `{"pid","method","target","version","headers":[[n,v],..],"body_b64"}`
//! * `/crash` → exit(3) without answering
//! * `/env/NAME` → the value of the environment variable NAME (404 when unset)
//! * `/status/N` → status N (200..=599); 204/304 without body
//! * `/chunked?n=K[&delay_ms=D]` → chunked response of K chunks `chunk <i>\n`
//!   (D ms between chunks; default K=3)
//! * `/big?bytes=N` → N bytes of body; byte i is `b'a' + i % 26`
//! * `/alloc?mb=N` → takes N MiB (at most 1024) of written memory and keeps it until the
//!   process exits; answers the pid
//! * `/headers-only-then-die` → head with Content-Length: 100, 10 bytes, exit(3)
//! * `/close` → closes the connection without answering (the process lives on)
//! * `/cut` → head with Content-Length: 100, 10 bytes, then closes the connection (the
//!   process lives on)
//! * `/garbage` → a line that is not HTTP, then closes the connection
//! * anything else → 404
//!
//! The startup line `ferry-testapp listening on 127.0.0.1:PORT pid N` is printed
//! to stdout and flushed once the socket listens. SIGTERM exits 0.

mod http;
mod in_progress;
mod util;

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use std::{env, process, thread};

use http::{BodyKind, Conn, ConnError, Head, Span};
use in_progress::{request_answered, InProgress};

/// Largest accepted request body.
const MAX_BODY: u64 = 256 * 1024 * 1024;
/// Size of the /big pattern buffer: a multiple of 26 so the pattern continues across writes.
const BIG_BUF: usize = 26 * 2520;

struct Config {
    pid: u32,
    hello: String,
    pid_str: String,
    crash_after: Option<u64>,
    request_delay: Duration,
    record: Option<Mutex<File>>,
    concurrency: Option<Mutex<File>>,
    hold_file: Option<std::path::PathBuf>,
    keep_alive: Option<Duration>,
    big: Vec<u8>,
}

static CONFIG: OnceLock<Config> = OnceLock::new();
static SERVED: AtomicU64 = AtomicU64::new(0);
/// Memory `/alloc` took and keeps for the life of the process.
static HELD: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
/// The most one `/alloc` takes.
const MAX_ALLOC_MB: u64 = 1024;

fn config() -> &'static Config {
    CONFIG.get().expect("config initialised in main")
}

fn die(status: i32, msg: &str) -> ! {
    eprintln!("ferry-testapp: {msg}");
    process::exit(status)
}

/// The file the environment variable `name` names, opened for appending (unset or empty:
/// none). One that cannot be opened → exit 2.
fn append_file(name: &str) -> Option<Mutex<File>> {
    let path = env::var_os(name).filter(|p| !p.is_empty())?;
    match OpenOptions::new().create(true).append(true).open(&path) {
        Ok(f) => Some(Mutex::new(f)),
        Err(e) => die(2, &format!("cannot open {name} {path:?}: {e}")),
    }
}

/// Read an optional numeric env var; empty counts as unset. Invalid → exit 2.
fn env_u64(name: &str) -> Option<u64> {
    match env::var(name) {
        Ok(v) if v.is_empty() => None,
        Ok(v) => match v.trim().parse() {
            Ok(n) => Some(n),
            Err(_) => die(
                2,
                &format!("{name} must be a non-negative integer, got {v:?}"),
            ),
        },
        Err(env::VarError::NotPresent) => None,
        Err(env::VarError::NotUnicode(_)) => die(2, &format!("{name} is not valid UTF-8")),
    }
}

#[cfg(unix)]
mod sigterm {
    extern "C" {
        fn signal(signum: i32, handler: usize) -> usize;
        fn _exit(status: i32) -> !;
    }
    const SIGTERM: i32 = 15;

    extern "C" fn on_term(_: i32) {
        // Async-signal-safe: exit at once with status 0.
        unsafe { _exit(0) }
    }

    pub fn install() {
        let handler: extern "C" fn(i32) = on_term;
        unsafe {
            signal(SIGTERM, handler as usize);
        }
    }
}

fn main() {
    let port: u16 = match env::var("PORT") {
        Ok(p) => match p.trim().parse() {
            Ok(n) => n,
            Err(_) => die(
                2,
                &format!("PORT must be a port number (0-65535), got {p:?}"),
            ),
        },
        Err(_) => die(
            2,
            "the PORT environment variable is required (port to listen on)",
        ),
    };
    let startup_delay = env_u64("TESTAPP_STARTUP_DELAY_MS");
    let crash_after = env_u64("TESTAPP_CRASH_AFTER");
    let request_delay = Duration::from_millis(env_u64("TESTAPP_REQUEST_DELAY_MS").unwrap_or(0));
    let record = append_file("TESTAPP_RECORD_FILE");
    let concurrency = append_file("TESTAPP_CONCURRENCY_FILE");

    if let Some(ms) = startup_delay {
        thread::sleep(Duration::from_millis(ms));
    }
    if let Some(msg) = env::var_os("TESTAPP_FAIL_START") {
        die(1, &format!("error: {}", msg.to_string_lossy()));
    }

    #[cfg(unix)]
    sigterm::install();

    let pid = process::id();
    let big = (0..BIG_BUF).map(|i| b'a' + (i % 26) as u8).collect();
    let cfg = Config {
        pid,
        hello: format!("Hello from ferry-testapp pid {pid}\n"),
        pid_str: pid.to_string(),
        crash_after,
        request_delay,
        record,
        concurrency,
        hold_file: env::var_os("TESTAPP_HOLD_FILE")
            .filter(|p| !p.is_empty())
            .map(Into::into),
        keep_alive: env_u64("TESTAPP_KEEP_ALIVE_MS").map(Duration::from_millis),
        big,
    };
    if CONFIG.set(cfg).is_err() {
        unreachable!();
    }

    let listener = match TcpListener::bind(("127.0.0.1", port)) {
        Ok(l) => l,
        Err(e) => die(1, &format!("cannot listen on 127.0.0.1:{port}: {e}")),
    };
    let actual = listener.local_addr().map(|a| a.port()).unwrap_or(port);
    {
        let mut out = io::stdout().lock();
        let _ = writeln!(
            out,
            "ferry-testapp listening on 127.0.0.1:{actual} pid {pid}"
        );
        let _ = out.flush();
    }

    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                let spawned = thread::Builder::new()
                    .name("conn".into())
                    .stack_size(256 * 1024)
                    .spawn(move || serve_conn(stream));
                if let Err(e) = spawned {
                    eprintln!("ferry-testapp: cannot spawn a connection thread: {e}");
                }
            }
            Err(e) => {
                eprintln!("ferry-testapp: accept failed: {e}");
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// One request, borrowed from the connection's buffers.
struct Request<'a> {
    head: &'a Head,
    buf: &'a [u8],
    headers: &'a [(Span, Span)],
    body: &'a [u8],
}

impl Request<'_> {
    fn method(&self) -> &[u8] {
        self.head.method.of(self.buf)
    }
    fn target(&self) -> &[u8] {
        self.head.target.of(self.buf)
    }
    fn head_only(&self) -> bool {
        self.method() == b"HEAD"
    }
}

/// Per-connection output buffers, reused across requests.
struct Out<'a> {
    stream: &'a TcpStream,
    buf: Vec<u8>,
    json: Vec<u8>,
}

fn serve_conn(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let cfg = config();
    let mut conn = Conn::new(&stream);
    let mut head_buf = Vec::with_capacity(1024);
    let mut headers = Vec::with_capacity(32);
    let mut body = Vec::new();
    let mut out = Out {
        stream: &stream,
        buf: Vec::with_capacity(4096),
        json: Vec::new(),
    };
    loop {
        // Idle between requests: a timed-out read closes the connection.
        let idle = cfg.keep_alive.filter(|_| conn.buffered().is_empty());
        if stream.set_read_timeout(idle).is_err() {
            return;
        }
        let head = conn.read_head(&mut head_buf, &mut headers);
        if idle.is_some() && stream.set_read_timeout(None).is_err() {
            return;
        }
        let head = match head {
            Ok(Some(head)) => head,
            Ok(None) => return,
            Err(ConnError::Parse(e)) => {
                let (code, reason) = e.status();
                return error_and_close(&mut out, code, reason);
            }
            Err(_) => return,
        };
        if head.expect_continue
            && head.minor == 1
            && head.body != BodyKind::None
            && conn.buffered().is_empty()
            && (&stream)
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .is_err()
        {
            return;
        }
        match conn.read_body(head.body, &mut body, MAX_BODY) {
            Ok(()) => {}
            Err(ConnError::BodyTooLarge) => {
                return error_and_close(&mut out, 413, "Content Too Large")
            }
            Err(ConnError::BadChunk) => return error_and_close(&mut out, 400, "Bad Request"),
            Err(_) => return,
        }
        let in_progress = InProgress::start(cfg.pid, cfg.concurrency.as_ref());
        if !cfg.request_delay.is_zero() {
            thread::sleep(cfg.request_delay);
        }
        let req = Request {
            head: &head,
            buf: &head_buf,
            headers: &headers,
            body: &body,
        };
        let keep = match route(&req, &mut out) {
            Ok(keep) => keep,
            Err(_) => return,
        };
        drop(in_progress);
        let served = SERVED.fetch_add(1, Ordering::SeqCst) + 1;
        if cfg.crash_after.is_some_and(|n| served >= n) {
            eprintln!("ferry-testapp: exiting after {served} requests (TESTAPP_CRASH_AFTER)");
            process::exit(3);
        }
        if !keep {
            let _ = stream.shutdown(Shutdown::Write);
            return;
        }
    }
}

/// Answer a malformed request and close, draining a little input first so the
/// answer is not lost to a TCP reset.
fn error_and_close(out: &mut Out, code: u16, reason: &str) {
    out.buf.clear();
    let body = format!("{code} {reason}\n");
    let _ = write!(
        out.buf,
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = out.stream;
    if stream.write_all(&out.buf).is_err() {
        return;
    }
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut sink = [0u8; 8192];
    let mut drained = 0;
    while drained < 1 << 20 {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Value of query parameter `name` in `query` (no percent-decoding).
fn query_param<'a>(query: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    query.split(|&b| b == b'&').find_map(|kv| {
        let (k, v) = match kv.iter().position(|&b| b == b'=') {
            Some(p) => (&kv[..p], &kv[p + 1..]),
            None => (kv, &b""[..]),
        };
        (k == name).then_some(v)
    })
}

fn query_u64(query: &[u8], name: &[u8]) -> Option<u64> {
    std::str::from_utf8(query_param(query, name)?)
        .ok()?
        .parse()
        .ok()
}

/// Write the status line plus the headers every response shares.
fn start_head(buf: &mut Vec<u8>, code: u16, ctype: &str, req: &Request, keep: bool) {
    request_answered();
    buf.clear();
    let _ = write!(buf, "HTTP/1.1 {code} {}\r\n", reason(code));
    if !ctype.is_empty() {
        buf.extend_from_slice(b"Content-Type: ");
        buf.extend_from_slice(ctype.as_bytes());
        buf.extend_from_slice(b"\r\n");
    }
    if !keep {
        buf.extend_from_slice(b"Connection: close\r\n");
    } else if req.head.minor == 0 {
        buf.extend_from_slice(b"Connection: keep-alive\r\n");
    }
}

/// Send a complete response with a Content-Length body in one write.
fn respond(out: &mut Out, req: &Request, code: u16, ctype: &str, body: &[u8]) -> io::Result<bool> {
    let keep = req.head.keep_alive;
    let no_body = code == 204 || code == 304;
    start_head(
        &mut out.buf,
        code,
        if no_body { "" } else { ctype },
        req,
        keep,
    );
    if !no_body {
        let _ = write!(out.buf, "Content-Length: {}\r\n", body.len());
    }
    out.buf.extend_from_slice(b"\r\n");
    if !no_body && !req.head_only() {
        out.buf.extend_from_slice(body);
    }
    out.stream.write_all(&out.buf)?;
    Ok(keep)
}

const TEXT: &str = "text/plain";

fn route(req: &Request, out: &mut Out) -> io::Result<bool> {
    let cfg = config();
    let mut target = req.target();
    // Absolute-form (http://host/path): keep only the path and query.
    if let Some(rest) = target
        .strip_prefix(b"http://")
        .or_else(|| target.strip_prefix(b"https://"))
    {
        target = rest
            .iter()
            .position(|&b| b == b'/')
            .map_or(b"/", |p| &rest[p..]);
    }
    let (path, query) = match target.iter().position(|&b| b == b'?') {
        Some(p) => (&target[..p], &target[p + 1..]),
        None => (target, &b""[..]),
    };
    match path {
        b"/" => respond(out, req, 200, TEXT, cfg.hello.as_bytes()),
        b"/pid" => respond(out, req, 200, TEXT, cfg.pid_str.as_bytes()),
        b"/sleep" => {
            let ms = query_u64(query, b"ms").unwrap_or(0);
            thread::sleep(Duration::from_millis(ms));
            respond(out, req, 200, TEXT, cfg.pid_str.as_bytes())
        }
        b"/hold" => {
            let Some(path) = &cfg.hold_file else {
                return respond(out, req, 500, TEXT, b"TESTAPP_HOLD_FILE is not set\n");
            };
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while !path.exists() && std::time::Instant::now() < deadline {
                thread::sleep(Duration::from_millis(10));
            }
            respond(out, req, 200, TEXT, cfg.pid_str.as_bytes())
        }
        b"/echo" => echo(req, out),
        b"/alloc" => {
            // Filled, not zeroed: the pages are written, so they count as private dirty
            // memory (what ferry status and --memory-limit measure).
            let mb = query_u64(query, b"mb").unwrap_or(0).min(MAX_ALLOC_MB);
            HELD.lock().unwrap().push(vec![1u8; (mb as usize) << 20]);
            respond(out, req, 200, TEXT, cfg.pid_str.as_bytes())
        }
        b"/crash" => {
            eprintln!("ferry-testapp: exiting on /crash");
            process::exit(3)
        }
        b"/chunked" => chunked(req, out, query),
        b"/big" => big(req, out, query_u64(query, b"bytes").unwrap_or(0)),
        b"/headers-only-then-die" => {
            out.stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n0123456789",
            )?;
            eprintln!("ferry-testapp: exiting in the middle of a response body");
            process::exit(3)
        }
        b"/close" => Ok(false),
        b"/cut" => {
            out.stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n0123456789",
            )?;
            Ok(false)
        }
        b"/garbage" => {
            out.stream.write_all(b"this is not HTTP\r\n\r\n")?;
            Ok(false)
        }
        _ => {
            if let Some(name) = path.strip_prefix(b"/env/") {
                let value = std::str::from_utf8(name)
                    .ok()
                    .and_then(|n| env::var(n).ok());
                return match value {
                    Some(value) => respond(out, req, 200, TEXT, value.as_bytes()),
                    None => respond(out, req, 404, TEXT, b"unset\n"),
                };
            }
            if let Some(code) = path.strip_prefix(b"/status/") {
                let code = std::str::from_utf8(code)
                    .ok()
                    .and_then(|s| s.parse::<u16>().ok());
                return match code {
                    Some(code @ 200..=599) => {
                        let body = format!("status {code}\n");
                        respond(out, req, code, TEXT, body.as_bytes())
                    }
                    _ => respond(out, req, 400, TEXT, b"/status/N needs N in 200..=599\n"),
                };
            }
            respond(out, req, 404, TEXT, b"Not Found\n")
        }
    }
}

fn echo(req: &Request, out: &mut Out) -> io::Result<bool> {
    let json = &mut out.json;
    json.clear();
    let _ = write!(json, "{{\"pid\":{},\"method\":", config().pid);
    util::json_latin1(req.method(), json);
    json.extend_from_slice(b",\"target\":");
    util::json_latin1(req.target(), json);
    json.extend_from_slice(b",\"version\":");
    util::json_latin1(req.head.version.of(req.buf), json);
    json.extend_from_slice(b",\"headers\":[");
    for (i, (name, value)) in req.headers.iter().enumerate() {
        if i > 0 {
            json.push(b',');
        }
        json.push(b'[');
        util::json_latin1(name.of(req.buf), json);
        json.push(b',');
        util::json_latin1(value.of(req.buf), json);
        json.push(b']');
    }
    json.extend_from_slice(b"],\"body_b64\":\"");
    util::base64_encode(req.body, json);
    json.extend_from_slice(b"\"}");
    if let Some(record) = &config().record {
        json.push(b'\n');
        let mut file = record.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = file.write_all(json) {
            eprintln!("ferry-testapp: cannot append to TESTAPP_RECORD_FILE: {e}");
        }
        drop(file);
        json.pop();
    }
    let json = std::mem::take(&mut out.json);
    let r = respond(out, req, 200, "application/json", &json);
    out.json = json;
    r
}

fn chunked(req: &Request, out: &mut Out, query: &[u8]) -> io::Result<bool> {
    let n = query_u64(query, b"n").unwrap_or(3);
    let delay = Duration::from_millis(query_u64(query, b"delay_ms").unwrap_or(0));
    // HTTP/1.0 clients do not know chunked: delimit the body by closing instead.
    let framed = req.head.minor == 1;
    let keep = req.head.keep_alive && framed;
    start_head(&mut out.buf, 200, TEXT, req, keep);
    if framed {
        out.buf.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
    }
    out.buf.extend_from_slice(b"\r\n");
    if req.head_only() {
        out.stream.write_all(&out.buf)?;
        return Ok(keep);
    }
    for i in 0..n {
        if i > 0 && !delay.is_zero() {
            out.stream.write_all(&out.buf)?;
            out.buf.clear();
            thread::sleep(delay);
        }
        let len = format!("chunk {i}\n").len();
        if framed {
            let _ = write!(out.buf, "{len:x}\r\nchunk {i}\n\r\n");
        } else {
            let _ = writeln!(out.buf, "chunk {i}");
        }
    }
    if framed {
        out.buf.extend_from_slice(b"0\r\n\r\n");
    }
    out.stream.write_all(&out.buf)?;
    Ok(keep)
}

fn big(req: &Request, out: &mut Out, bytes: u64) -> io::Result<bool> {
    let keep = req.head.keep_alive;
    start_head(&mut out.buf, 200, "application/octet-stream", req, keep);
    let _ = write!(out.buf, "Content-Length: {bytes}\r\n\r\n");
    if req.head_only() {
        out.stream.write_all(&out.buf)?;
        return Ok(keep);
    }
    let pattern = &config().big;
    let mut left = bytes;
    // Small bodies go out with the head in one write.
    if bytes <= 16 * 1024 {
        out.buf.extend_from_slice(&pattern[..bytes as usize]);
        left = 0;
    }
    out.stream.write_all(&out.buf)?;
    while left > 0 {
        let n = left.min(pattern.len() as u64) as usize;
        out.stream.write_all(&pattern[..n])?;
        left -= n as u64;
    }
    Ok(keep)
}
