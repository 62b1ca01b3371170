//! Request-head rules for field lines, one test per rule (helpers in `request_tests.rs`; every
//! input is fed whole, prefix by prefix, byte by byte and randomly split).

use super::request_tests::*;
use super::*;

#[test]
fn whitespace_between_header_name_and_colon_is_400() {
    assert_status(
        400,
        &[
            &get_with(&[b"Content-Length : 3"]),
            &request_with(b"GET / HTTP/1.1", &[b"Host\t: a"]),
        ],
    );
}

#[test]
fn obs_fold_is_400() {
    assert_status(
        400,
        &[
            &get_with(&[b"Long: one", b" two"]),
            &get_with(&[b"Long: one", b"\ttwo"]),
        ],
    );
}

#[test]
fn whitespace_before_the_first_header_line_is_400() {
    let input = request_with(b"GET / HTTP/1.1", &[b" Host: a"]);
    let error = rejected_with(&input, &Limits::default());
    assert_eq!(error.status, 400);
    assert_eq!(error.reason, "whitespace before the first header line");
}

#[test]
fn bare_lf_anywhere_in_the_head_is_400() {
    assert_status(
        400,
        &[
            b"GET / HTTP/1.1\n\r\n",
            b"GET / HTTP/1.1\nHost: a\r\n\r\n",
            b"GET\n/ HTTP/1.1\r\n\r\n",
            b"GET /\n HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n\n",
            b"GET / HTTP/1.1\r\nHo\nst: a\r\n\r\n",
            b"GET / HTTP/1.1\r\nNewline: a\nContent-Length: 26\r\n\r\n",
        ],
    );
}

#[test]
fn bare_cr_anywhere_in_the_head_is_400() {
    assert_status(
        400,
        &[
            b"GET / HTTP/1.1\rHost: a\r\n\r\n",
            b"GET /\r HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",
            b"GET / HTTP/1.1\r\nHo\rst: a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\r\n\r\n",
        ],
    );
}

#[test]
fn control_bytes_in_names_or_values_are_400() {
    for control in (0u8..0x20)
        .filter(|&b| !matches!(b, b'\t' | b'\r' | b'\n'))
        .chain([0x7f])
    {
        let value = [&b"X-Value: a"[..], &[control], b"b"].concat();
        assert_eq!(
            rejected_with(&get_with(&[&value]), &Limits::default()).status,
            400
        );
        let name = [&b"X-Na"[..], &[control], b"me: a"].concat();
        assert_eq!(
            rejected_with(&get_with(&[&name]), &Limits::default()).status,
            400
        );
    }
    let input = get_with(&[b"X-Value: a\tb", b"X-Utf8: caf\xc3\xa9"]);
    let head = accepted(&input);
    assert_eq!(head.header(&input, b"x-value"), Some(&b"a\tb"[..]));
    assert_eq!(head.header(&input, b"x-utf8"), Some(&b"caf\xc3\xa9"[..]));
}

#[test]
fn an_empty_header_name_is_400() {
    assert_status(400, &[&get_with(&[b": value"]), &get_with(&[b":"])]);
}

#[test]
fn a_header_line_without_colon_is_400() {
    assert_status(400, &[&get_with(&[b"NoColonHere"]), &get_with(&[b"x"])]);
}

#[test]
fn non_token_bytes_in_a_header_name_are_400() {
    assert_status(
        400,
        &[
            &get_with(&[b"A@B: c"]),
            &get_with(&[b"A(B): c"]),
            &get_with(&[b"A\"B: c"]),
            &get_with(&[b"Content-Length\xc3\x9f: 3"]),
            &get_with(&[b"A/B: c"]),
        ],
    );
    let input = get_with(&[b"X.Custom|Pipe~!#$%&'*+^`: ok"]);
    assert_eq!(
        accepted(&input).header(&input, b"x.custom|pipe~!#$%&'*+^`"),
        Some(&b"ok"[..])
    );
}
