//! Output buffering for non-blocking sockets.

use std::io::{ErrorKind, Write};

/// Bytes waiting to be written to a socket, written as far as it accepts them.
#[derive(Default)]
pub struct OutBuf {
    data: Vec<u8>,
    written: usize,
}

impl OutBuf {
    pub fn is_empty(&self) -> bool {
        self.written == self.data.len()
    }

    pub fn pending(&self) -> usize {
        self.data.len() - self.written
    }

    /// Where to append bytes to send.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        if self.written > 0 && self.written == self.data.len() {
            self.data.clear();
            self.written = 0;
        }
        &mut self.data
    }

    /// Writes until done or the socket would block. Err means the peer is gone.
    pub fn flush_to(&mut self, sink: &mut impl Write) -> std::io::Result<()> {
        while self.written < self.data.len() {
            match sink.write(&self.data[self.written..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        if self.written == self.data.len() {
            self.data.clear();
            self.written = 0;
        } else if self.written > 64 * 1024 && self.written * 2 > self.data.len() {
            self.data.drain(..self.written);
            self.written = 0;
        }
        Ok(())
    }
}

pub enum ReadResult {
    /// Got bytes (or none yet); the socket has nothing more for now.
    Open,
    /// Stopped at `max_buffered`: the socket may hold more, and with edge-triggered readiness
    /// no new event will say so: read again once the buffer has room.
    Full,
    /// The peer closed its side.
    Eof,
    Failed,
}

/// Reads what the socket has, up to `max_buffered` bytes in `buf`.
pub fn read_into(source: &mut impl std::io::Read, buf: &mut Vec<u8>, max_buffered: usize) -> ReadResult {
    let mut chunk = [0u8; 16 * 1024];
    while buf.len() < max_buffered {
        let room = chunk.len().min(max_buffered - buf.len());
        match source.read(&mut chunk[..room]) {
            Ok(0) => return ReadResult::Eof,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return ReadResult::Open,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return ReadResult::Failed,
        }
    }
    ReadResult::Full
}
