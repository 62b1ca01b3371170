//! Output buffering for non-blocking sockets.

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// Bytes waiting to be written to a socket, written as far as it accepts them.
///
/// With a spill directory, a backlog beyond [`SPILL_THRESHOLD_BYTES`] moves to an anonymous
/// temporary file there, so a slow reader costs disk, not memory, and the app that produced
/// the bytes is not held up.
#[derive(Default)]
pub struct OutBuf {
    data: Vec<u8>,
    written: usize,
    spill_dir: Option<Arc<Path>>,
    spill: Option<Spill>,
}

/// The part of a backlog that lives on disk: bytes `[read_offset, write_offset)` of `file`.
struct Spill {
    file: File,
    read_offset: u64,
    write_offset: u64,
    /// Appended while the spill is active: they belong after everything in the file.
    tail: Vec<u8>,
}

/// Backlog kept in memory before it spills to disk.
pub const SPILL_THRESHOLD_BYTES: usize = 1024 * 1024;

/// Bytes moved back from the spill file into memory at a time.
const UNSPILL_CHUNK_BYTES: usize = 256 * 1024;

impl OutBuf {
    pub fn spilling_to(dir: Arc<Path>) -> OutBuf {
        OutBuf {
            spill_dir: Some(dir),
            ..OutBuf::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pending() == 0
    }

    /// Bytes not yet written, in memory and on disk.
    pub fn pending(&self) -> usize {
        let on_disk = self.spill.as_ref().map_or(0, |s| {
            (s.write_offset - s.read_offset) as usize + s.tail.len()
        });
        self.data.len() - self.written + on_disk
    }

    /// Where to append bytes to send.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        if let Some(spill) = &mut self.spill {
            return &mut spill.tail;
        }
        if self.written > 0 && self.written == self.data.len() {
            self.data.clear();
            self.written = 0;
        }
        &mut self.data
    }

    /// Moves a large backlog to disk, and appended bytes after it.
    fn settle(&mut self) -> std::io::Result<()> {
        if let Some(spill) = &mut self.spill {
            if !spill.tail.is_empty() {
                spill.file.write_all_at(&spill.tail, spill.write_offset)?;
                spill.write_offset += spill.tail.len() as u64;
                spill.tail.clear();
            }
            return Ok(());
        }
        let Some(dir) = &self.spill_dir else {
            return Ok(());
        };
        if self.data.len() - self.written <= SPILL_THRESHOLD_BYTES {
            return Ok(());
        }
        let file = tempfile::tempfile_in(dir)?;
        let backlog = &self.data[self.written..];
        file.write_all_at(backlog, 0)?;
        self.spill = Some(Spill {
            file,
            read_offset: 0,
            write_offset: backlog.len() as u64,
            tail: Vec::new(),
        });
        self.data.clear();
        self.written = 0;
        Ok(())
    }

    /// Refills memory from the spill file once memory is drained.
    fn unspill(&mut self) -> std::io::Result<()> {
        let Some(spill) = &mut self.spill else {
            return Ok(());
        };
        if self.written < self.data.len() {
            return Ok(());
        }
        self.data.clear();
        self.written = 0;
        let left = spill.write_offset - spill.read_offset;
        if left == 0 {
            // Everything on disk went out: back to memory only.
            let tail = std::mem::take(&mut spill.tail);
            self.spill = None;
            self.data = tail;
            return Ok(());
        }
        let take = left.min(UNSPILL_CHUNK_BYTES as u64) as usize;
        self.data.resize(take, 0);
        spill
            .file
            .read_exact_at(&mut self.data, spill.read_offset)?;
        spill.read_offset += take as u64;
        Ok(())
    }

    /// Writes until done or the socket would block. Err means the peer is gone (or the spill
    /// file failed, which ends the connection the same way).
    pub fn flush_to(&mut self, sink: &mut impl Write) -> std::io::Result<()> {
        self.settle()?;
        loop {
            self.unspill()?;
            if self.written == self.data.len() {
                break;
            }
            match sink.write(&self.data[self.written..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        if self.written == self.data.len() && self.spill.is_none() {
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
///
/// With `drain` false it stops after a read that did not fill the space it was given: the
/// socket is then most likely empty, and edge-triggered readiness reports any byte that
/// arrives later, so the read that would only say "would block" is saved. Pass `drain` true
/// where the end of the stream must be seen now (the event said the peer closed its side)
/// or where no event may follow (reading again after a pause).
pub fn read_into(
    source: &mut impl std::io::Read,
    buf: &mut Vec<u8>,
    max_buffered: usize,
    drain: bool,
) -> ReadResult {
    let mut chunk = [0u8; 16 * 1024];
    while buf.len() < max_buffered {
        let room = chunk.len().min(max_buffered - buf.len());
        match source.read(&mut chunk[..room]) {
            Ok(0) => return ReadResult::Eof,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if n < room && !drain {
                    return ReadResult::Open;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return ReadResult::Open,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return ReadResult::Failed,
        }
    }
    ReadResult::Full
}
