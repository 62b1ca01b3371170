//! The byte stream under a client connection: plain TCP, or TLS over TCP. Both are
//! `io::Read + io::Write` with a non-blocking socket's meaning (`WouldBlock` when nothing can
//! move now), so the HTTP code above reads and writes either the same way.
//!
//! TLS is rustls' sans-IO `ServerConnection`: records are read from and written to the
//! socket here, the handshake included. Two promises keep edge-triggered readiness working:
//! - a read that returns fewer bytes than asked for has seen the socket say `WouldBlock` (or
//!   end), exactly as a plain socket's short read would, so no readable event is lost to
//!   plaintext waiting inside rustls;
//! - encrypted bytes rustls could not hand to the socket yet are [`Transport::output_pending`],
//!   and [`io::Write::flush`] sends them (a writable event should call it).

use mio::event::Source;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use rustls::{ServerConfig, ServerConnection};
use std::io::{self, ErrorKind, Read, Write};
use std::sync::Arc;

pub enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

/// A TLS server session over a non-blocking TCP socket.
pub struct TlsStream {
    tcp: TcpStream,
    session: ServerConnection,
}

impl Transport {
    pub fn plain(tcp: TcpStream) -> Transport {
        Transport::Plain(tcp)
    }

    pub fn tls(tcp: TcpStream, config: &Arc<ServerConfig>) -> io::Result<Transport> {
        let session = ServerConnection::new(config.clone()).map_err(io::Error::other)?;
        Ok(Transport::Tls(Box::new(TlsStream { tcp, session })))
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls(_))
    }

    /// The TLS handshake is not complete yet.
    pub fn handshaking(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(tls) => tls.session.is_handshaking(),
        }
    }

    /// Bytes accepted by `write` that have not reached the socket yet (encrypted records).
    pub fn output_pending(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(tls) => tls.session.wants_write(),
        }
    }

    /// The ALPN protocol the client and ferry agreed on, if any.
    #[cfg(test)]
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        match self {
            Transport::Plain(_) => None,
            Transport::Tls(tls) => tls.session.alpn_protocol(),
        }
    }

    /// Before closing: tells a TLS peer the stream ends here (a `close_notify` alert), as far
    /// as the socket takes it now. A handshake that never finished just ends.
    pub fn end(&mut self) {
        if let Transport::Tls(tls) = self {
            if tls.session.is_handshaking() {
                return;
            }
            tls.session.send_close_notify();
            let _ = tls.send_records();
        }
    }
}

impl TlsStream {
    /// Writes encrypted records rustls holds until the socket would block.
    fn send_records(&mut self) -> io::Result<()> {
        while self.session.wants_write() {
            match self.session.write_tls(&mut self.tcp) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads records from the socket and decrypts them; Ok(false) once the socket would
    /// block.
    fn receive_records(&mut self) -> io::Result<bool> {
        loop {
            match self.session.read_tls(&mut self.tcp) {
                // The end of the TCP stream: the plaintext reader reports it below.
                Ok(_) => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        if let Err(error) = self.session.process_new_packets() {
            // rustls has queued an alert saying what was wrong: the peer gets it.
            let _ = self.send_records();
            return Err(io::Error::new(ErrorKind::InvalidData, error));
        }
        // Handshake messages (and key updates) go out as they are made.
        match self.send_records() {
            Err(e) if e.kind() != ErrorKind::WouldBlock => Err(e),
            _ => Ok(true),
        }
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.session.reader().read(&mut buf[filled..]) {
                // The peer's close_notify, after everything it sent before it.
                Ok(0) => return Ok(filled),
                Ok(n) => {
                    filled += n;
                    continue;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                // TCP ended without close_notify, as many HTTP clients end: an end all the
                // same (HTTP framing, not TLS, tells a complete request from a cut one).
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(filled),
                Err(_) if filled > 0 => return Ok(filled),
                Err(e) => return Err(e),
            }
            match self.receive_records() {
                Ok(true) => {}
                Ok(false) if filled > 0 => return Ok(filled),
                Ok(false) => return Err(ErrorKind::WouldBlock.into()),
                Err(_) if filled > 0 => return Ok(filled),
                Err(e) => return Err(e),
            }
        }
        Ok(filled)
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Records still waiting for the socket come first: taking more plaintext now would
        // buffer without bound.
        self.send_records()?;
        let taken = self.session.writer().write(buf)?;
        if taken == 0 && !buf.is_empty() {
            // rustls' own buffer is full (plaintext written during the handshake).
            return Err(ErrorKind::WouldBlock.into());
        }
        match self.send_records() {
            Err(e) if e.kind() != ErrorKind::WouldBlock => Err(e),
            _ => Ok(taken),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_records()
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(tcp) => tcp.read(buf),
            Transport::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(tcp) => tcp.write(buf),
            Transport::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(tcp) => tcp.flush(),
            Transport::Tls(tls) => tls.flush(),
        }
    }
}

impl Source for Transport {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            Transport::Plain(tcp) => tcp.register(registry, token, interests),
            Transport::Tls(tls) => tls.tcp.register(registry, token, interests),
        }
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            Transport::Plain(tcp) => tcp.reregister(registry, token, interests),
            Transport::Tls(tls) => tls.tcp.reregister(registry, token, interests),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Transport::Plain(tcp) => tcp.deregister(registry),
            Transport::Tls(tls) => tls.tcp.deregister(registry),
        }
    }
}

#[cfg(test)]
#[path = "transport_tests.rs"]
mod tests;
