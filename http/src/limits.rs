//! Size limits for message heads and bodies.

/// Limits applied while parsing. The defaults match what nginx and HAProxy accept out of the
/// box, so real clients never hit them while a slow or hostile sender cannot make ferry buffer
/// without bound.
///
/// The same field limits apply to request headers, response headers and chunked trailers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest request line (and response status line), CRLF excluded, counting any empty
    /// lines skipped before it. Over it: 414 (502 for a response).
    pub max_request_line_bytes: usize,
    /// Longest single field line (`name: value`), CRLF excluded. Over it: 431.
    pub max_field_line_bytes: usize,
    /// Longest field section: every field line with its CRLF plus the final empty line.
    /// Over it: 431.
    pub max_field_section_bytes: usize,
    /// Most field lines in one section. Over it: 431.
    pub max_field_count: usize,
    /// Largest request body ferry accepts, after de-chunking. Over it: 413.
    pub max_body_size: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_line_bytes: 8 * 1024,
            max_field_line_bytes: 8 * 1024,
            max_field_section_bytes: 32 * 1024,
            max_field_count: 100,
            max_body_size: 1024 * 1024 * 1024,
        }
    }
}

impl Limits {
    /// Heads are addressed with `u32` offsets ([`crate::Span`]); clamping keeps any
    /// configured limit inside that range instead of overflowing silently.
    pub(crate) fn clamped(self) -> Self {
        const MAX_HEAD_PART_BYTES: usize = (u32::MAX / 4) as usize;
        Limits {
            max_request_line_bytes: self.max_request_line_bytes.min(MAX_HEAD_PART_BYTES),
            max_field_line_bytes: self.max_field_line_bytes.min(MAX_HEAD_PART_BYTES),
            max_field_section_bytes: self.max_field_section_bytes.min(MAX_HEAD_PART_BYTES),
            ..self
        }
    }
}
