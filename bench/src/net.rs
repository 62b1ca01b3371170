//! Loopback helpers: free ports and bounded waits for a server to answer.

use crate::procs::Guard;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

/// A loopback port that was free a moment ago.
pub fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind(("127.0.0.1", 0)).map_err(|e| format!("cannot find a free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// One `GET path` on a fresh connection; the status code, or None if there is no answer yet.
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    http_status_within(port, path, Duration::from_secs(5))
}

/// [`http_status`], waiting up to `limit` for the answer.
pub fn http_status_within(port: u16, path: &str, limit: Duration) -> Option<u16> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(limit)).ok()?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .ok()?;
    let mut head = [0u8; 64];
    let mut len = 0;
    while len < 12 {
        match stream.read(&mut head[len..]) {
            Ok(0) | Err(_) => return None,
            Ok(n) => len += n,
        }
    }
    let line = std::str::from_utf8(&head[..len]).ok()?;
    line.strip_prefix("HTTP/1.")?.get(2..5)?.parse().ok()
}

/// Waits until `GET /` on `port` answers 200, while `owner` keeps running.
pub fn wait_http_ok(port: u16, owner: &mut Guard, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut last = None;
    loop {
        if let Some(status) = owner.exited() {
            return Err(format!(
                "{} exited ({status}) before answering",
                owner.name()
            ));
        }
        match http_status(port, "/") {
            Some(200) => return Ok(()),
            other => last = other.or(last),
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{} did not answer 200 on port {port} within {timeout:?} (last status {last:?})",
                owner.name()
            ));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until something accepts connections on `port`, while `owner` keeps running.
pub fn wait_listening(port: u16, owner: &mut Guard, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    loop {
        if let Some(status) = owner.exited() {
            return Err(format!(
                "{} exited ({status}) before listening",
                owner.name()
            ));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{} did not listen on port {port} within {timeout:?}",
                owner.name()
            ));
        }
        thread::sleep(Duration::from_millis(10));
    }
}
