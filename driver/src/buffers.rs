//! Output buffering for non-blocking sockets.

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// Bytes waiting to be written to a socket, written as far as it accepts them.
///
/// With a spill directory, a backlog beyond [`MEMORY_WINDOW_BYTES`] goes to an anonymous
/// temporary file there as it arrives ([`OutBuf::spill_excess`]), so a slow reader costs
/// disk, not memory, and the app that produced the bytes is not held up. Memory beyond the
/// window is given back as the backlog drains.
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

/// Backlog kept in memory per connection; the rest waits on disk. Also the size of the
/// pieces moved back from disk to be written.
pub const MEMORY_WINDOW_BYTES: usize = 256 * 1024;

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

    /// Bytes of the backlog held in memory (not on disk).
    pub fn in_memory(&self) -> usize {
        self.data.len() - self.written + self.spill.as_ref().map_or(0, |s| s.tail.len())
    }

    /// Memory the buffer holds, used or not.
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.data.capacity() + self.spill.as_ref().map_or(0, |s| s.tail.capacity())
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

    /// Moves what is beyond the memory window to the spill file now: call it after
    /// appending much. Without a spill directory, or when the file cannot be made, the bytes
    /// stay in memory (see [`OutBuf::in_memory`]); Err means the spill file failed.
    pub fn spill_excess(&mut self) -> std::io::Result<()> {
        if let Some(spill) = &mut self.spill {
            if !spill.tail.is_empty() {
                spill.file.write_all_at(&spill.tail, spill.write_offset)?;
                spill.write_offset += spill.tail.len() as u64;
                spill.tail.clear();
                spill.tail.shrink_to(MEMORY_WINDOW_BYTES);
            }
            return Ok(());
        }
        let Some(dir) = &self.spill_dir else {
            return Ok(());
        };
        let keep_end = self.written + MEMORY_WINDOW_BYTES;
        if self.data.len() <= keep_end {
            return Ok(());
        }
        let Ok(file) = tempfile::tempfile_in(dir) else {
            return Ok(()); // out of descriptors or disk: memory it is, until the cap
        };
        let excess = &self.data[keep_end..];
        file.write_all_at(excess, 0)?;
        self.spill = Some(Spill {
            file,
            read_offset: 0,
            write_offset: excess.len() as u64,
            tail: Vec::new(),
        });
        self.data.truncate(keep_end);
        self.data.shrink_to(keep_end);
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
        let take = left.min(MEMORY_WINDOW_BYTES as u64) as usize;
        self.data.shrink_to(MEMORY_WINDOW_BYTES);
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
        self.spill_excess()?;
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
        // What the sink itself still holds (a TLS stream's encrypted records) goes too.
        match sink.flush() {
            Err(e) if e.kind() != ErrorKind::WouldBlock => return Err(e),
            _ => {}
        }
        if self.written == self.data.len() && self.spill.is_none() {
            self.data.clear();
            self.written = 0;
            // A burst's worth of memory goes back once it is written.
            self.data.shrink_to(MEMORY_WINDOW_BYTES);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket that takes at most `per_write` bytes per write.
    struct SlowSink {
        got: Vec<u8>,
        per_write: usize,
    }

    impl Write for SlowSink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.per_write);
            self.got.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn pattern(at: usize, len: usize) -> Vec<u8> {
        (at..at + len).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn a_large_backlog_goes_to_disk_as_it_arrives_and_keeps_its_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = OutBuf::spilling_to(Arc::from(dir.path()));
        let mut sink = SlowSink {
            got: Vec::new(),
            per_write: 100_000,
        };
        let (chunk, total) = (256 * 1024, 40 * 1024 * 1024);
        let mut appended = 0;
        while appended < total {
            out.buffer().extend_from_slice(&pattern(appended, chunk));
            appended += chunk;
            out.spill_excess().unwrap();
            assert!(
                out.in_memory() <= MEMORY_WINDOW_BYTES,
                "{} bytes in memory",
                out.in_memory()
            );
            assert!(
                out.capacity() <= 2 * MEMORY_WINDOW_BYTES,
                "{}",
                out.capacity()
            );
            // A reader slower than the app: one write per chunk appended.
            out.flush_to(&mut sink).unwrap();
        }
        assert_eq!(out.pending() + sink.got.len(), total);
        sink.per_write = usize::MAX;
        while !out.is_empty() {
            out.flush_to(&mut sink).unwrap();
            assert!(
                out.capacity() <= 2 * MEMORY_WINDOW_BYTES,
                "{}",
                out.capacity()
            );
        }
        assert!(sink.got == pattern(0, total), "the bytes came out of order");
    }

    #[test]
    fn memory_is_given_back_once_a_burst_is_written() {
        let mut out = OutBuf::default();
        out.buffer().extend_from_slice(&vec![7u8; 8 * 1024 * 1024]);
        let mut sink = SlowSink {
            got: Vec::new(),
            per_write: usize::MAX,
        };
        out.flush_to(&mut sink).unwrap();
        assert!(out.is_empty());
        assert!(out.capacity() <= MEMORY_WINDOW_BYTES, "{}", out.capacity());
    }

    #[test]
    fn without_a_spill_directory_the_backlog_stays_in_memory() {
        let mut out = OutBuf::default();
        out.buffer()
            .extend_from_slice(&vec![1u8; 3 * MEMORY_WINDOW_BYTES]);
        out.spill_excess().unwrap();
        assert_eq!(out.in_memory(), 3 * MEMORY_WINDOW_BYTES);
    }
}
