//! httparse as a differential oracle, for this crate's tests and the fuzz targets (the
//! `oracle` feature). ferry's request parser is stricter than httparse (the tokenizer hyper
//! uses) by design, so the one direction that must hold is: every head ferry accepts, httparse
//! accepts too, with the same length, method, target, version and fields (ferry drops field
//! names with `_`, so its fields are a subsequence of httparse's). A head where they disagree
//! is one that two real servers would frame differently.
//!
//! Why httparse is not ferry's tokenizer: `cargo bench -p ferry-http` (benches/parse.rs)
//! measures ferry's full parse at 2.2–2.9× httparse's tokenizing alone, but the README's
//! profile puts `RequestParser::parse` at 0.3% of the proxy's CPU, and ferry's strict rules
//! would still have to run over httparse's output: at most a fraction of a percent to win,
//! against re-deriving every smuggling rule over another parser's tokens.

use crate::{RequestHead, Version};

fn trim(value: &[u8]) -> &[u8] {
    let start = value.iter().position(|b| !matches!(b, b' ' | b'\t'));
    let end = value.iter().rposition(|b| !matches!(b, b' ' | b'\t'));
    match (start, end) {
        (Some(start), Some(end)) => &value[start..=end],
        _ => b"",
    }
}

/// Panics, naming the difference, unless httparse reads `input`, whose head ferry parsed as
/// `head`, the same way.
pub fn assert_httparse_agrees(input: &[u8], head: &RequestHead) {
    let mut fields = [httparse::EMPTY_HEADER; 128];
    let mut request = httparse::Request::new(&mut fields);
    let shown = input.escape_ascii().to_string();
    let status = request.parse(input);
    assert!(
        matches!(status, Ok(httparse::Status::Complete(len)) if len == head.head_len),
        "ferry accepts a {}-byte head that httparse reads as {status:?}: {shown}",
        head.head_len
    );
    assert_eq!(
        request.method.map(str::as_bytes),
        Some(head.method(input)),
        "{shown}"
    );
    assert_eq!(
        request.path.map(str::as_bytes),
        Some(head.target(input)),
        "{shown}"
    );
    let minor = match head.version {
        Version::Http10 => 0,
        Version::Http11 => 1,
    };
    assert_eq!(request.version, Some(minor), "{shown}");
    let mut theirs = request
        .headers
        .iter()
        .map(|f| (f.name.as_bytes(), trim(f.value)));
    for (name, value) in head.headers(input) {
        assert!(
            theirs.any(|(n, v)| n == name && v == trim(value)),
            "field {} is not among httparse's, in order: {shown}",
            name.escape_ascii()
        );
    }
}
