//! The request target's form (RFC 9112 §3.2): origin (`/path?query`), absolute
//! (`http://host/path`, whose authority stands in for Host) or asterisk (`*`, OPTIONS only).
//! Its bytes are checked one by one as they arrive (`request.rs`); this classifies the
//! complete target.

use super::chars;
use super::error::HttpError;
use super::message::Span;

mod errors {
    use super::HttpError;

    pub const ASTERISK: HttpError =
        HttpError::bad_request("asterisk-form target is only allowed with OPTIONS");
    pub const NOT_ORIGIN_FORM: HttpError =
        HttpError::bad_request("request target must start with / or http(s)://");
    pub const BAD_AUTHORITY: HttpError =
        HttpError::bad_request("invalid authority in absolute-form target");
}

/// The shape of the request target (RFC 9112 §3.2). Authority-form never parses: it only
/// exists for CONNECT, which ferry refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetForm {
    /// `/path?query`
    Origin,
    /// `http://authority/path?query`. `authority` is the `host[:port]` without userinfo;
    /// `path_and_query` is what follows it (possibly empty).
    Absolute {
        authority: Span,
        path_and_query: Span,
    },
    /// `*`, only with OPTIONS.
    Asterisk,
}

/// Classifies a complete target (its bytes were already checked one by one).
pub(crate) fn target_form(
    buf: &[u8],
    target: Span,
    is_options: bool,
) -> Result<TargetForm, HttpError> {
    let bytes = target.get(buf);
    if bytes == b"*" {
        return if is_options {
            Ok(TargetForm::Asterisk)
        } else {
            Err(errors::ASTERISK)
        };
    }
    if bytes[0] == b'/' {
        return Ok(TargetForm::Origin);
    }
    let scheme_len = if starts_with_ignore_case(bytes, b"http://") {
        7
    } else if starts_with_ignore_case(bytes, b"https://") {
        8
    } else {
        // Covers authority-form (`host:port`, CONNECT only) and relative references.
        return Err(errors::NOT_ORIGIN_FORM);
    };
    let rest = &bytes[scheme_len..];
    let authority_len = rest
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(rest.len());
    let authority = &rest[..authority_len];
    if !authority
        .iter()
        .all(|&b| b == b'@' || chars::is(b, chars::HOST))
    {
        return Err(errors::BAD_AUTHORITY);
    }
    // Userinfo is not part of where the request goes; strip it so only the host reaches the
    // app (RFC 9110 §4.2.4 discourages it for phishing reasons).
    let host_offset = authority
        .iter()
        .rposition(|&b| b == b'@')
        .map_or(0, |at| at + 1);
    if host_offset == authority.len() {
        return Err(errors::BAD_AUTHORITY);
    }
    let start = target.start as usize + scheme_len;
    Ok(TargetForm::Absolute {
        authority: Span::new(start + host_offset, start + authority_len),
        path_and_query: Span::new(start + authority_len, target.end as usize),
    })
}

fn starts_with_ignore_case(bytes: &[u8], prefix: &[u8]) -> bool {
    bytes.len() >= prefix.len() && bytes[..prefix.len()].eq_ignore_ascii_case(prefix)
}
