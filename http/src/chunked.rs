//! An incremental, strict decoder for the chunked transfer coding (RFC 9112 §7.1).
//!
//! It is a byte-level state machine that never looks back at earlier input, so it can be fed
//! any split of the body (down to single bytes) and reaches the same verdict. Each call
//! reports how many input bytes belonged to the chunked body, which ranges of the input were
//! chunk data, and whether the body ended. That serves both uses:
//! - decoding a request body (copy the data ranges; [`ChunkedDecoder::feed_into`]), and
//! - passing an app's chunked response through unchanged (forward `input[..consumed]` and
//!   ignore the data ranges), or decoding it for an HTTP/1.0 client.
//!
//! Bytes after the end of the body are never consumed: they belong to the next message.

use std::ops::Range;

use super::chars::{self, HEX, VALUE};
use super::error::HttpError;
use super::fields::{self, FieldSectionParser, SectionEvent};
use super::limits::Limits;
use super::message::Span;

/// Result of one [`ChunkedDecoder::feed`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkProgress {
    /// How many bytes at the front of the input belong to the chunked body.
    pub consumed: usize,
    /// The body ended (last chunk, trailers and final CRLF all read).
    pub done: bool,
}

mod errors {
    use super::HttpError;

    pub const BAD_SIZE: HttpError = HttpError::bad_request("invalid chunk size");
    pub const SIZE_TOO_LONG: HttpError = HttpError::bad_request("chunk size has too many digits");
    pub const SPACE_AFTER_SIZE: HttpError =
        HttpError::bad_request("whitespace after chunk size without an extension");
    pub const BAD_EXTENSION: HttpError =
        HttpError::bad_request("invalid character in chunk extension");
    pub const LINE_TOO_LONG: HttpError = HttpError::bad_request("chunk header line too long");
    pub const BARE_LF: HttpError = HttpError::bad_request("bare LF in chunked body");
    pub const BARE_CR: HttpError = HttpError::bad_request("bare CR in chunked body");
    pub const NO_CRLF_AFTER_DATA: HttpError =
        HttpError::bad_request("chunk data not followed by CRLF");
    pub const FORBIDDEN_TRAILER: HttpError =
        HttpError::bad_request("trailer field not allowed in trailers");
    pub const BODY_TOO_LARGE: HttpError = HttpError::new(413, "request body too large");
}

/// Hex digits in a chunk size: 16 fill a u64, so no overflow check is needed beyond this.
const MAX_SIZE_DIGITS: u32 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    SizeStart,
    Size,
    SpaceAfterSize,
    Extension,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    Trailers,
    Done,
    Failed(HttpError),
}

/// The chunked-body state machine. One per message; [`Self::reset`] reuses it (and its
/// buffers) for the next one.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    limits: Limits,
    state: State,
    /// While reading a size: the size so far. While reading data: bytes left in the chunk.
    chunk_bytes: u64,
    size_digits: u32,
    chunk_line_bytes: usize,
    decoded_bytes: u64,
    /// Allocated only when a body has trailers (rare); kept across [`Self::reset`].
    trailers: Option<Box<TrailerSection>>,
}

/// The trailer section, copied because it may arrive split across calls.
#[derive(Debug, Clone)]
struct TrailerSection {
    buf: Vec<u8>,
    parser: FieldSectionParser,
    fields: Vec<(Span, Span)>,
}

impl ChunkedDecoder {
    /// `limits.max_body_size` bounds the decoded body (413); the field limits bound the
    /// trailer section and `max_field_line_bytes` bounds each chunk-size line. For responses
    /// pass `max_body_size: u64::MAX`.
    pub fn new(limits: Limits) -> Self {
        ChunkedDecoder {
            limits: limits.clamped(),
            state: State::SizeStart,
            chunk_bytes: 0,
            size_digits: 0,
            chunk_line_bytes: 0,
            decoded_bytes: 0,
            trailers: None,
        }
    }

    pub fn reset(&mut self) {
        self.state = State::SizeStart;
        self.chunk_bytes = 0;
        self.size_digits = 0;
        self.chunk_line_bytes = 0;
        self.decoded_bytes = 0;
        if let Some(trailers) = &mut self.trailers {
            trailers.buf.clear();
            trailers.parser = FieldSectionParser::new(0);
            trailers.fields.clear();
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The trailer fields, once [`ChunkProgress::done`]; names containing `_` are dropped.
    pub fn trailers(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.trailers.iter().flat_map(|section| {
            let buf = &section.buf;
            section
                .fields
                .iter()
                .map(move |&(name, value)| (name.get(buf), value.get(buf)))
        })
    }

    /// Decodes as much of `input` as possible, calling `on_data` with each range of `input`
    /// that is chunk data (never empty). After an error every later call fails the same way.
    pub fn feed(
        &mut self,
        input: &[u8],
        on_data: impl FnMut(Range<usize>),
    ) -> Result<ChunkProgress, HttpError> {
        if let State::Failed(error) = self.state {
            return Err(error);
        }
        let result = self.run(input, on_data);
        if let Err(error) = result {
            self.state = State::Failed(error);
        }
        result
    }

    /// [`Self::feed`], appending the decoded data to `out`.
    pub fn feed_into(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<ChunkProgress, HttpError> {
        self.feed(input, |range| out.extend_from_slice(&input[range]))
    }

    fn run(
        &mut self,
        input: &[u8],
        mut on_data: impl FnMut(Range<usize>),
    ) -> Result<ChunkProgress, HttpError> {
        let max_line_bytes = self.limits.max_field_line_bytes;
        let mut pos = 0;
        while pos < input.len() {
            let byte = input[pos];
            match self.state {
                State::SizeStart => {
                    if !chars::is(byte, HEX) {
                        return Err(if byte == b'\n' {
                            errors::BARE_LF
                        } else {
                            errors::BAD_SIZE
                        });
                    }
                    self.chunk_bytes = chars::hex_value(byte);
                    self.size_digits = 1;
                    self.chunk_line_bytes = 1;
                    self.check_body_size()?;
                    self.state = State::Size;
                    pos += 1;
                }
                State::Size | State::SpaceAfterSize => {
                    if byte != b'\r' && self.chunk_line_bytes >= max_line_bytes {
                        return Err(errors::LINE_TOO_LONG);
                    }
                    let in_size = self.state == State::Size;
                    match byte {
                        _ if in_size && chars::is(byte, HEX) => {
                            self.size_digits += 1;
                            if self.size_digits > MAX_SIZE_DIGITS {
                                return Err(errors::SIZE_TOO_LONG);
                            }
                            self.chunk_bytes = self.chunk_bytes << 4 | chars::hex_value(byte);
                            self.check_body_size()?;
                        }
                        // RFC 9112 allows whitespace before an extension's `;`, and only there.
                        b' ' | b'\t' => self.state = State::SpaceAfterSize,
                        b';' => self.state = State::Extension,
                        b'\r' if in_size => self.state = State::SizeLf,
                        _ if !in_size => return Err(errors::SPACE_AFTER_SIZE),
                        b'\n' => return Err(errors::BARE_LF),
                        _ => return Err(errors::BAD_SIZE),
                    }
                    self.chunk_line_bytes += 1;
                    pos += 1;
                }
                State::Extension => {
                    // Extensions carry nothing ferry uses; they are skipped, but only if they
                    // hold field-value bytes, so no CR, LF or NUL can hide in them.
                    let line_room = max_line_bytes.saturating_sub(self.chunk_line_bytes);
                    let scan_end = input.len().min(pos.saturating_add(line_room));
                    let end = fields::scan_while(input, pos, scan_end, VALUE);
                    self.chunk_line_bytes += end - pos;
                    pos = end;
                    let Some(&byte) = input.get(end) else { break };
                    match byte {
                        b'\r' => {
                            self.state = State::SizeLf;
                            pos += 1;
                        }
                        _ if self.chunk_line_bytes >= max_line_bytes => {
                            return Err(errors::LINE_TOO_LONG)
                        }
                        b'\n' => return Err(errors::BARE_LF),
                        _ => return Err(errors::BAD_EXTENSION),
                    }
                }
                State::SizeLf => {
                    if byte != b'\n' {
                        return Err(errors::BARE_CR);
                    }
                    self.state = if self.chunk_bytes == 0 {
                        State::Trailers
                    } else {
                        State::Data
                    };
                    pos += 1;
                }
                State::Data => {
                    let available = (input.len() - pos) as u64;
                    let take = self.chunk_bytes.min(available) as usize;
                    on_data(pos..pos + take);
                    pos += take;
                    self.chunk_bytes -= take as u64;
                    self.decoded_bytes += take as u64;
                    if self.chunk_bytes == 0 {
                        self.state = State::DataCr;
                    }
                }
                State::DataCr | State::DataLf => {
                    let expected = if self.state == State::DataCr {
                        b'\r'
                    } else {
                        b'\n'
                    };
                    if byte != expected {
                        return Err(errors::NO_CRLF_AFTER_DATA);
                    }
                    self.state = if self.state == State::DataCr {
                        State::DataLf
                    } else {
                        State::SizeStart
                    };
                    pos += 1;
                }
                State::Trailers => return self.feed_trailers(input, pos),
                State::Done => break,
                State::Failed(error) => return Err(error),
            }
        }
        Ok(ChunkProgress {
            consumed: pos,
            done: self.state == State::Done,
        })
    }

    fn check_body_size(&self) -> Result<(), HttpError> {
        // Checked against the declared size, so an oversized body fails before its data is
        // sent, not after ferry has buffered a gigabyte of it.
        if self.decoded_bytes.saturating_add(self.chunk_bytes) > self.limits.max_body_size {
            return Err(errors::BODY_TOO_LARGE);
        }
        Ok(())
    }

    fn feed_trailers(&mut self, input: &[u8], pos: usize) -> Result<ChunkProgress, HttpError> {
        let section = match &mut self.trailers {
            None if input[pos..].starts_with(b"\r\n") => {
                // The usual case, no trailers: nothing to copy.
                self.state = State::Done;
                return Ok(ChunkProgress {
                    consumed: pos + 2,
                    done: true,
                });
            }
            None => self.trailers.insert(Box::new(TrailerSection {
                buf: Vec::new(),
                parser: FieldSectionParser::new(0),
                fields: Vec::new(),
            })),
            Some(section) => section,
        };
        let buffered_before = section.buf.len();
        // One byte past the section limit is enough for the parser to refuse an oversize
        // section, so never copy more than that.
        let room = (self.limits.max_field_section_bytes + 1).saturating_sub(buffered_before);
        let copied = (input.len() - pos).min(room);
        section.buf.extend_from_slice(&input[pos..pos + copied]);
        loop {
            match section.parser.next(&section.buf, &self.limits)? {
                SectionEvent::Incomplete => {
                    return Ok(ChunkProgress {
                        consumed: pos + copied,
                        done: false,
                    })
                }
                SectionEvent::Field { name, value } => {
                    let name_bytes = name.get(&section.buf);
                    if is_forbidden_trailer(name_bytes) {
                        return Err(errors::FORBIDDEN_TRAILER);
                    }
                    if !fields::has_underscore(name_bytes) {
                        section.fields.push((name, value));
                    }
                }
                SectionEvent::End { end } => {
                    section.buf.truncate(end);
                    self.state = State::Done;
                    return Ok(ChunkProgress {
                        consumed: pos + (end - buffered_before),
                        done: true,
                    });
                }
            }
        }
    }
}

/// Fields that must not arrive as trailers (RFC 9110 §6.5.1): framing (a late Content-Length
/// or Transfer-Encoding must not re-frame anything), routing (Host), and Authorization.
fn is_forbidden_trailer(name: &[u8]) -> bool {
    [
        &b"content-length"[..],
        b"transfer-encoding",
        b"host",
        b"trailer",
        b"te",
        b"authorization",
    ]
    .iter()
    .any(|forbidden| name.eq_ignore_ascii_case(forbidden))
}
