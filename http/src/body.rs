//! Where a message body ends: one tracker for every framing (length, chunked, until close),
//! for request bodies from clients and response bodies from apps.

use std::ops::Range;

use super::chunked::ChunkedDecoder;
use super::error::HttpError;
use super::limits::Limits;
use super::request::BodyFraming;
use super::response::ResponseFraming;

/// Result of one [`BodyReader::feed`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyProgress {
    /// Bytes at the front of the input that belong to this body (as framed on the wire).
    pub consumed: usize,
    /// The body is complete; bytes after `consumed` belong to the next message.
    pub done: bool,
}

#[derive(Debug, Clone)]
enum Framing {
    Complete,
    Length { bytes_left: u64 },
    Chunked(ChunkedDecoder),
    UntilClose,
}

/// Tracks one body. Feed it the bytes that follow the head, in any split; it reports how
/// many belong to the body, which ranges are payload, and when the body ends.
#[derive(Debug, Clone)]
pub struct BodyReader {
    framing: Framing,
    /// Errors in an app's response are the app's fault: reported as 502.
    from_app: bool,
}

mod errors {
    use super::HttpError;

    pub const TRUNCATED: HttpError =
        HttpError::bad_request("connection closed before the body was complete");
}

impl BodyReader {
    pub fn for_request(framing: BodyFraming, limits: &Limits) -> Self {
        let framing = match framing {
            BodyFraming::None | BodyFraming::Length(0) => Framing::Complete,
            BodyFraming::Length(bytes) => Framing::Length { bytes_left: bytes },
            BodyFraming::Chunked => Framing::Chunked(ChunkedDecoder::new(*limits)),
        };
        BodyReader {
            framing,
            from_app: false,
        }
    }

    /// Response bodies have no size limit; the field limits still bound chunked trailers.
    pub fn for_response(framing: ResponseFraming, limits: &Limits) -> Self {
        let framing = match framing {
            ResponseFraming::None | ResponseFraming::Length(0) => Framing::Complete,
            ResponseFraming::Length(bytes) => Framing::Length { bytes_left: bytes },
            ResponseFraming::Chunked => Framing::Chunked(ChunkedDecoder::new(Limits {
                max_body_size: u64::MAX,
                ..*limits
            })),
            ResponseFraming::UntilClose => Framing::UntilClose,
        };
        BodyReader {
            framing,
            from_app: true,
        }
    }

    pub fn is_done(&self) -> bool {
        match &self.framing {
            Framing::Complete => true,
            Framing::Chunked(decoder) => decoder.is_done(),
            Framing::Length { .. } | Framing::UntilClose => false,
        }
    }

    /// The chunked decoder, for its trailers once done; `None` for other framings.
    pub fn chunked(&self) -> Option<&ChunkedDecoder> {
        match &self.framing {
            Framing::Chunked(decoder) => Some(decoder),
            _ => None,
        }
    }

    /// Consumes the front of `input` that belongs to the body, calling `on_data` with each
    /// payload range of `input` (de-chunked; never empty).
    pub fn feed(
        &mut self,
        input: &[u8],
        mut on_data: impl FnMut(Range<usize>),
    ) -> Result<BodyProgress, HttpError> {
        let from_app = self.from_app;
        match &mut self.framing {
            Framing::Complete => Ok(BodyProgress {
                consumed: 0,
                done: true,
            }),
            Framing::Length { bytes_left } => {
                let take = (*bytes_left).min(input.len() as u64) as usize;
                if take > 0 {
                    on_data(0..take);
                }
                *bytes_left -= take as u64;
                let done = *bytes_left == 0;
                if done {
                    self.framing = Framing::Complete;
                }
                Ok(BodyProgress {
                    consumed: take,
                    done,
                })
            }
            Framing::Chunked(decoder) => {
                let progress = decoder
                    .feed(input, on_data)
                    .map_err(|e| blame(from_app, e))?;
                Ok(BodyProgress {
                    consumed: progress.consumed,
                    done: progress.done,
                })
            }
            Framing::UntilClose => {
                if !input.is_empty() {
                    on_data(0..input.len());
                }
                Ok(BodyProgress {
                    consumed: input.len(),
                    done: false,
                })
            }
        }
    }

    /// [`Self::feed`], appending the payload to `out`.
    pub fn feed_into(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<BodyProgress, HttpError> {
        self.feed(input, |range| out.extend_from_slice(&input[range]))
    }

    /// The peer closed the connection. `Ok` if that completes the body (it was already done,
    /// or it is delimited by the close); an error if the body was cut short.
    pub fn finish_at_eof(&mut self) -> Result<(), HttpError> {
        match self.framing {
            Framing::UntilClose => {
                self.framing = Framing::Complete;
                Ok(())
            }
            _ if self.is_done() => Ok(()),
            _ => Err(blame(self.from_app, errors::TRUNCATED)),
        }
    }
}

fn blame(from_app: bool, error: HttpError) -> HttpError {
    if from_app {
        error.to_bad_gateway()
    } else {
        error
    }
}
