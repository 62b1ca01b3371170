//! Small types shared by requests and responses.

use std::ops::Range;

/// A byte range inside the buffer a head was parsed from. Heads store spans instead of
/// slices so that a parser can be resumed after the caller's buffer grew (and moved), and so
/// parsing allocates nothing per field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    /// Callers guarantee `start <= end` and both fit in `u32` (the limits are clamped so).
    pub(crate) fn new(start: usize, end: usize) -> Self {
        debug_assert!(start <= end && end <= u32::MAX as usize);
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    pub fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }

    /// The bytes this span covers. Panics if `buf` is not (a prefix-extension of) the buffer
    /// the span came from.
    pub fn get(self, buf: &[u8]) -> &[u8] {
        &buf[self.range()]
    }
}

/// The HTTP versions ferry speaks. Anything else is refused while parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    Http10,
    Http11,
}
