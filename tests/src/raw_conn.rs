//! A raw client connection: any bytes out, responses parsed byte-exactly from what comes back.

use crate::http_client::Response;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A response as read off a raw connection: the same type as [`HttpClient`]'s.
///
/// [`HttpClient`]: crate::HttpClient
pub type RawResponse = Response;

/// One client connection driven byte by byte: whatever bytes a test wants to send (broken
/// requests included), and responses parsed from what comes back. A reset by the server
/// counts as its close (Linux still delivers what arrived before it).
pub struct RawConn {
    pub stream: TcpStream,
    buf: Vec<u8>,
    /// The server reset the connection (rather than closing it with a FIN).
    pub reset: bool,
}

impl RawConn {
    /// Connects with TCP_NODELAY and a 10 s read timeout (every wait in a test is bounded).
    pub fn connect(addr: SocketAddr) -> RawConn {
        let stream = TcpStream::connect(addr).expect("connect to ferry");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        RawConn {
            stream,
            buf: Vec::new(),
            reset: false,
        }
    }

    pub fn set_read_timeout(&self, timeout: Duration) {
        self.stream
            .set_read_timeout(Some(timeout))
            .expect("read timeout");
    }

    /// Writes `bytes` in one go, as far as the server takes them (it may refuse and close
    /// before the end). Returns how many were written.
    pub fn send(&mut self, bytes: &[u8]) -> usize {
        let mut written = 0;
        while written < bytes.len() {
            match self.stream.write(&bytes[written..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => written += n,
            }
        }
        written
    }

    /// Writes `bytes` one byte per write (TCP_NODELAY, so one segment each), stopping as soon
    /// as the server has answered or closed, or a write fails. Returns how many were written.
    pub fn send_bytewise(&mut self, bytes: &[u8]) -> usize {
        for (i, byte) in bytes.iter().enumerate() {
            if self.server_spoke() || self.stream.write_all(std::slice::from_ref(byte)).is_err() {
                return i;
            }
        }
        bytes.len()
    }

    /// Whether the server has sent something or closed, without waiting.
    pub fn server_spoke(&self) -> bool {
        if !self.buf.is_empty() {
            return true;
        }
        self.stream.set_nonblocking(true).expect("non-blocking");
        let spoke = !matches!(self.stream.peek(&mut [0u8; 1]), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
        self.stream.set_nonblocking(false).expect("blocking");
        spoke
    }

    /// Ends the sending direction (the server reads end of file).
    pub fn half_close(&self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
    }

    /// Reads more into the buffer; `Ok(false)` at the server's close.
    fn fill(&mut self) -> std::io::Result<bool> {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    self.reset = true;
                    return Ok(false);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads until `n` bytes are buffered; false if the server closed first.
    fn fill_to(&mut self, n: usize) -> std::io::Result<bool> {
        while self.buf.len() < n {
            if !self.fill()? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The next line without its CRLF, reading as needed; `None` if the server closed first.
    fn take_line(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let mut line: Vec<u8> = self.buf.drain(..end + 2).collect();
                line.truncate(end);
                return Ok(Some(line));
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    /// Reads one response (an interim 1xx one too). `Ok(None)`: the server closed before a
    /// response began. A response cut short is an error naming what arrived.
    pub fn read_response(&mut self) -> std::io::Result<Option<RawResponse>> {
        let head_end = loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            if !self.fill()? {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                let partial = String::from_utf8_lossy(&self.buf).into_owned();
                return Err(std::io::Error::other(format!(
                    "closed within a response head: {partial:?}"
                )));
            }
        };
        let head: Vec<u8> = self.buf.drain(..head_end).collect();
        let head = String::from_utf8_lossy(&head).into_owned();
        let mut lines = head.trim_end().split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let status: u16 = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.to_string(), value.trim().to_string()))
            .collect();
        let mut response = RawResponse {
            status,
            headers,
            body: Vec::new(),
        };
        if status < 200 || status == 204 || status == 304 {
            return Ok(Some(response));
        }
        let cut = |what: &str| std::io::Error::other(format!("response {status} cut short {what}"));
        if response
            .header("transfer-encoding")
            .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
        {
            loop {
                let Some(line) = self.take_line()? else {
                    return Err(cut("in a chunk size"));
                };
                let line = String::from_utf8_lossy(&line).into_owned();
                let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                    .map_err(|_| {
                    std::io::Error::other(format!("bad chunk size line {line:?}"))
                })?;
                if size == 0 {
                    // Trailers, then the empty line.
                    loop {
                        match self.take_line()? {
                            None => return Err(cut("in the trailers")),
                            Some(line) if line.is_empty() => return Ok(Some(response)),
                            Some(_) => {}
                        }
                    }
                }
                if !self.fill_to(size + 2)? {
                    return Err(cut("in a chunk"));
                }
                response.body.extend(self.buf.drain(..size));
                self.buf.drain(..2);
            }
        } else if let Some(length) = response.header("content-length") {
            let length: usize = length
                .parse()
                .map_err(|_| std::io::Error::other("bad Content-Length"))?;
            if !self.fill_to(length)? {
                let got = self.buf.len();
                return Err(cut(&format!("after {got} of {length} body bytes")));
            }
            let rest = self.buf.split_off(length);
            response.body = std::mem::replace(&mut self.buf, rest);
        } else {
            while self.fill()? {}
            response.body = std::mem::take(&mut self.buf);
        }
        Ok(Some(response))
    }

    /// Exactly `n` bytes (after any response already read), e.g. from an upgraded connection.
    pub fn read_bytes(&mut self, n: usize) -> std::io::Result<Vec<u8>> {
        if !self.fill_to(n)? {
            let got = String::from_utf8_lossy(&self.buf).into_owned();
            let message = format!("closed after {got:?}, before {n} bytes");
            return Err(std::io::Error::other(message));
        }
        let rest = self.buf.split_off(n);
        Ok(std::mem::replace(&mut self.buf, rest))
    }

    /// Everything the server sends until it closes the connection (an error if the read
    /// timeout passes first).
    pub fn read_to_end(&mut self) -> std::io::Result<Vec<u8>> {
        while self.fill()? {}
        Ok(std::mem::take(&mut self.buf))
    }
}
