//! Byte classes of the HTTP grammar as one lookup table, so each hot scanning loop costs one
//! load and one test per byte.

/// `tchar` (RFC 9110 §5.6.2): the bytes of a token such as a field name or a coding.
pub(crate) const TOKEN: u8 = 1 << 0;
/// Bytes ferry accepts in a method: `tchar` without lowercase letters. Methods are
/// case-sensitive, and an app server that upper-cases `head` would answer without a body while
/// ferry, seeing no HEAD, waits for one; refusing lowercase (as gunicorn does) avoids that.
pub(crate) const METHOD: u8 = 1 << 1;
/// `field-vchar`, SP and HTAB: what a field value (or reason phrase, or chunk extension) may
/// hold. obs-text (0x80..=0xFF) is allowed; every control byte but HTAB is not.
pub(crate) const VALUE: u8 = 1 << 2;
/// Bytes accepted raw in the path of a request target (`?` excluded: it starts the query).
pub(crate) const PATH: u8 = 1 << 3;
/// Bytes accepted raw in the query of a request target.
pub(crate) const QUERY: u8 = 1 << 4;
/// Bytes of an authority (`reg-name`, IP literal, port): what a Host value may hold.
pub(crate) const HOST: u8 = 1 << 5;
pub(crate) const HEX: u8 = 1 << 6;

static CLASSES: [u8; 256] = build_classes();

#[inline(always)]
pub(crate) fn is(byte: u8, class: u8) -> bool {
    CLASSES[byte as usize] & class != 0
}

/// Value of a hex digit; only meaningful when `is(byte, HEX)`.
#[inline(always)]
pub(crate) fn hex_value(byte: u8) -> u64 {
    match byte {
        b'0'..=b'9' => u64::from(byte - b'0'),
        b'a'..=b'f' => u64::from(byte - b'a' + 10),
        _ => u64::from(byte.wrapping_sub(b'A').wrapping_add(10)),
    }
}

const fn build_classes() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let alpha = b.is_ascii_alphabetic();
        let digit = b.is_ascii_digit();
        let mut class = 0;

        if alpha || digit || contains(b"!#$%&'*+-.^_`|~", b) {
            class |= TOKEN;
            if !b.is_ascii_lowercase() && b != b'#' {
                class |= METHOD;
            }
        }
        if (b >= 0x21 && b != 0x7f) || b == b' ' || b == b'\t' {
            class |= VALUE;
        }
        // Targets: visible ASCII only, minus what no browser sends unencoded. Browsers
        // (WHATWG URL) percent-encode `"<>` everywhere and backtick/`{}` in paths, but send
        // `|[]` (and, before a recent spec change, `^`) raw in paths and `\^`{|}` raw in
        // queries; refusing those would break real traffic (Tomcat had to add
        // relaxedQueryChars for this). `#` never belongs in a request: a fragment reaching
        // the server is how `index.html#.png` slipped past suffix-based routing (HAProxy
        // CVE-2023-45539). Raw bytes >= 0x80 are refused because apps disagree on how to
        // decode them (WSGI uses latin-1, others UTF-8).
        if b >= 0x21 && b <= 0x7e && !contains(b"\"#<>", b) {
            class |= QUERY;
            if !contains(b"?\\`{}", b) {
                class |= PATH;
            }
        }
        if alpha || digit || contains(b"-._~!$&'()*+,;=:[]%", b) {
            class |= HOST;
        }
        if b.is_ascii_hexdigit() {
            class |= HEX;
        }
        table[i] = class;
        i += 1;
    }
    table
}

const fn contains(set: &[u8], b: u8) -> bool {
    let mut i = 0;
    while i < set.len() {
        if set[i] == b {
            return true;
        }
        i += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_exactly_rfc9110_tchar() {
        let tchars: Vec<u8> = (0..=255u8).filter(|&b| is(b, TOKEN)).collect();
        let mut expected: Vec<u8> = b"!#$%&'*+-.^_`|~".to_vec();
        expected.extend(b'0'..=b'9');
        expected.extend(b'A'..=b'Z');
        expected.extend(b'a'..=b'z');
        expected.sort_unstable();
        assert_eq!(tchars, expected);
    }

    #[test]
    fn value_excludes_controls_but_htab() {
        for b in 0..=255u8 {
            let control = b < 0x20 || b == 0x7f;
            assert_eq!(is(b, VALUE), !control || b == b'\t', "byte {b:#x}");
        }
    }

    #[test]
    fn hex_values() {
        assert_eq!(hex_value(b'0'), 0);
        assert_eq!(hex_value(b'9'), 9);
        assert_eq!(hex_value(b'a'), 10);
        assert_eq!(hex_value(b'F'), 15);
    }
}
