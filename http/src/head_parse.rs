//! What the request and the response head parsers share: resuming where the last call
//! stopped (the start line byte by byte, then the field section), and keeping the outcome
//! once there is one, so that every later call returns it again.

use super::error::HttpError;

/// A head parser's outcome so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    Reading,
    Done,
    /// Kept: the same error on every later call, whatever arrives after it.
    Failed(HttpError),
}

impl Progress {
    /// The outcome after [`advance`] returned `result`.
    pub(crate) fn after(result: Result<bool, HttpError>) -> Progress {
        match result {
            Ok(true) => Progress::Done,
            Ok(false) => Progress::Reading,
            Err(error) => Progress::Failed(error),
        }
    }

    /// What `parse` returns: `Ok(None)` while reading, the head once done, or the error.
    pub(crate) fn outcome<H>(self, head: &H) -> Result<Option<&H>, HttpError> {
        match self {
            Progress::Reading => Ok(None),
            Progress::Done => Ok(Some(head)),
            Progress::Failed(error) => Err(error),
        }
    }
}

/// One parser's start line and field section, driven by [`advance`]. The implementations
/// are `#[inline]`: a call per head part measurably slowed the short heads (callgrind).
pub(crate) trait HeadParse {
    /// Reads on in the start line; `Ok(true)` once it is complete and the field section
    /// is next (at once on later calls), `Ok(false)` when `buf` ends first.
    fn start_line(&mut self, buf: &[u8]) -> Result<bool, HttpError>;
    /// Reads on in the field section; `Ok(true)` once the head is complete.
    fn advance_fields(&mut self, buf: &[u8]) -> Result<bool, HttpError>;
}

/// Runs `parser` as far as `buf` allows; `Ok(true)` once the head is complete.
pub(crate) fn advance<P: HeadParse>(parser: &mut P, buf: &[u8]) -> Result<bool, HttpError> {
    Ok(parser.start_line(buf)? && parser.advance_fields(buf)?)
}
