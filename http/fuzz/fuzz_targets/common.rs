//! Shared by the fuzz targets: the input's first byte says how to cut the rest into the
//! pieces a connection would deliver, and which settings to use.

/// A fuzz input taken apart.
pub struct Plan<'a> {
    /// The high nibble of the first byte: settings for the target to interpret.
    pub flags: u8,
    /// The bytes the peer sends.
    pub input: &'a [u8],
    /// How the bytes arrive: lengths of consecutive reads, summing to `input.len()`.
    pub pieces: Vec<usize>,
}

/// First byte: low 3 bits = how many piece-length bytes follow (0: one byte per read), high
/// nibble = flags. Then the piece-length bytes (each 1..=32 bytes, cycled), then the input.
pub fn plan(data: &[u8]) -> Option<Plan<'_>> {
    let (&control, rest) = data.split_first()?;
    let cut_bytes = usize::from(control & 0x07).min(rest.len());
    let (cuts, input) = rest.split_at(cut_bytes);
    let mut pieces = Vec::new();
    let mut left = input.len();
    let mut i = 0;
    while left > 0 {
        let size = if cuts.is_empty() {
            1
        } else {
            usize::from(cuts[i % cuts.len()] % 32) + 1
        };
        let size = size.min(left);
        pieces.push(size);
        left -= size;
        i += 1;
    }
    Some(Plan {
        flags: control >> 4,
        input,
        pieces,
    })
}

/// Limits generous enough for anything ferry itself writes (it adds a few fields to what it
/// accepted), for parsing ferry's output again.
pub fn relaxed_limits() -> ferry_http::Limits {
    ferry_http::Limits {
        max_request_line_bytes: 1 << 20,
        max_field_line_bytes: 1 << 20,
        max_field_section_bytes: 1 << 22,
        max_field_count: 100_000,
        max_body_size: u64::MAX,
    }
}

/// Small limits, so that short inputs reach every limit.
pub fn small_limits() -> ferry_http::Limits {
    ferry_http::Limits {
        max_request_line_bytes: 64,
        max_field_line_bytes: 48,
        max_field_section_bytes: 160,
        max_field_count: 6,
        max_body_size: 40,
    }
}
