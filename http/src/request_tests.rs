//! Request-head rules, one test per rule. Every input goes through
//! [`request_every_way`], which also checks that whole, prefix-by-prefix, byte-by-byte and
//! randomly split feeding all give the same answer.

use super::split_feeding::request_every_way;
use super::*;

pub(super) fn accepted_with(input: &[u8], limits: &Limits) -> RequestHead {
    match request_every_way(input, limits) {
        Ok(Some(head)) => head,
        other => panic!(
            "{:?} should parse, got {other:?}",
            String::from_utf8_lossy(input)
        ),
    }
}

pub(super) fn accepted(input: &[u8]) -> RequestHead {
    accepted_with(input, &Limits::default())
}

/// The refusal of an HTTP/1.1 request without Host (RFC 9112 §3.2), as `request.rs` words it
/// (`a_missing_host_in_http11_is_400` keeps the two equal); [`rejected_with`] insists that the
/// inputs of every other rule are refused for something else.
pub(super) const MISSING_HOST: HttpError = HttpError::bad_request("HTTP/1.1 request without Host");

pub(super) fn rejected_with(input: &[u8], limits: &Limits) -> HttpError {
    match request_every_way(input, limits) {
        Err(error) if error == MISSING_HOST => panic!(
            "{:?} is refused only for its missing Host: give it one, so that the rule under \
             test decides",
            String::from_utf8_lossy(input)
        ),
        Err(error) => error,
        other => panic!(
            "{:?} should be refused, got {other:?}",
            String::from_utf8_lossy(input)
        ),
    }
}

pub(super) fn assert_status(status: u16, inputs: &[&[u8]]) {
    for input in inputs {
        let error = rejected_with(input, &Limits::default());
        assert_eq!(
            error.status,
            status,
            "{:?}: {error}",
            String::from_utf8_lossy(input)
        );
    }
}

/// The field line HTTP/1.1 requests need (RFC 9112 §3.2): 7 bytes, 9 with its CRLF.
pub(super) const HOST: &[u8] = b"Host: a";

/// `GET / HTTP/1.1` with [`HOST`], then the given field lines (each without CRLF).
pub(super) fn get_with(fields: &[&[u8]]) -> Vec<u8> {
    request_with(b"GET / HTTP/1.1", &[&[HOST], fields].concat())
}

pub(super) fn request_with(request_line: &[u8], fields: &[&[u8]]) -> Vec<u8> {
    let mut out = request_line.to_vec();
    out.extend_from_slice(b"\r\n");
    for field in fields {
        out.extend_from_slice(field);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

pub(super) fn fields_of(head: &RequestHead, buf: &[u8]) -> Vec<(String, String)> {
    head.headers(buf)
        .map(|(n, v)| {
            (
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect()
}

#[test]
fn parses_a_simple_request() {
    let input = b"GET /a?b=c HTTP/1.1\r\nHost: example.com\r\nAccept:  */* \r\n\r\nleftover";
    let head = accepted(input);
    assert_eq!(head.method(input), b"GET");
    assert_eq!(head.method_kind, Method::Get);
    assert_eq!(head.target(input), b"/a?b=c");
    assert_eq!(head.target_form, TargetForm::Origin);
    assert_eq!(head.version, Version::Http11);
    assert_eq!(
        fields_of(&head, input),
        [
            ("Host".into(), "example.com".into()),
            ("Accept".into(), "*/*".into())
        ]
    );
    assert_eq!(&input[head.head_len..], b"leftover");
    assert_eq!(head.framing, BodyFraming::None);
    assert!(head.keep_alive);
    assert_eq!(head.host(input), Some(&b"example.com"[..]));
    assert!(!head.expect_continue && !head.upgrade);
}

#[test]
fn incomplete_heads_wait_for_more() {
    for input in [
        &b""[..],
        b"G",
        b"GET / HTTP/1.1",
        b"GET / HTTP/1.1\r",
        b"GET / HTTP/1.1\r\nHost: a",
        b"GET / HTTP/1.1\r\nHost: a\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n\r",
    ] {
        assert_eq!(parse_request_head(input, &Limits::default()), Ok(None));
    }
}

#[test]
fn errors_are_reported_before_the_head_is_complete() {
    let limits = Limits::default();
    let early = [
        &b"GET /a\x00"[..],
        b"get ",
        b"GET / HTTPS",
        b"GET / HTTP/1.1\r\nA\x00",
        b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n",
        b"GET / HTTP/1.1\r\nTransfer-Encoding: identity\r\n",
        b"GET / HTTP/1.1\n",
    ];
    for input in early {
        assert!(
            parse_request_head(input, &limits).is_err(),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn empty_lines_before_the_request_line_are_skipped() {
    let input = b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let head = accepted(input);
    assert_eq!(head.method(input), b"GET");
    assert_eq!(head.head_len, input.len());
    assert_status(
        400,
        &[
            b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"\r\rGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        ],
    );
}

#[test]
fn content_length_together_with_transfer_encoding_is_400() {
    assert_status(
        400,
        &[
            &get_with(&[b"Content-Length: 3", b"Transfer-Encoding: chunked"]),
            &get_with(&[b"Transfer-Encoding: chunked", b"Content-Length: 3"]),
            &get_with(&[b"Transfer-Encoding: chunked", b"Content-Length: 0"]),
        ],
    );
}

#[test]
fn repeated_or_list_content_length_is_400_even_when_equal() {
    assert_status(
        400,
        &[
            &get_with(&[b"Content-Length: 1", b"Content-Length: 1"]),
            &get_with(&[b"Content-Length: 1", b"content-length: 2"]),
            &get_with(&[b"Content-Length: 1, 1"]),
            &get_with(&[b"Content-Length: 1,1"]),
        ],
    );
}

#[test]
fn content_length_must_be_plain_digits() {
    for bad in [
        &b"+1"[..],
        b"-0",
        b"-1",
        b"0x10",
        b"1_0",
        b"5.0",
        b"",
        b"1 2",
        b"1e3",
        b"\xd9\xa3",
        b"9223372036854775808",
        b"18446744073709551616",
    ] {
        let field = [&b"Content-Length: "[..], bad].concat();
        let error = rejected_with(&get_with(&[&field]), &Limits::default());
        assert_eq!(error.status, 400, "{:?}", String::from_utf8_lossy(bad));
    }
    let head = accepted(&get_with(&[b"Content-Length:  007 "]));
    assert_eq!(head.framing, BodyFraming::Length(7));
    let unlimited = Limits {
        max_body_size: u64::MAX,
        ..Limits::default()
    };
    let head = accepted_with(
        &get_with(&[b"Content-Length: 9223372036854775807"]),
        &unlimited,
    );
    assert_eq!(head.framing, BodyFraming::Length(i64::MAX as u64));
}

#[test]
fn transfer_encoding_must_be_exactly_chunked_as_the_final_coding() {
    for ok in [&b"chunked"[..], b"Chunked", b"CHUNKED", b"  chunked\t"] {
        let head = accepted(&get_with(&[&[&b"Transfer-Encoding:"[..], ok].concat()]));
        assert_eq!(head.framing, BodyFraming::Chunked);
    }
    for bad in [
        &b"xchunked"[..],
        b"chunkedx",
        b"chunked, chunked",
        b"identity",
        b"identity, chunked",
        b",chunked",
        b"chunked,",
        b"\"chunked\"",
        b"chunked\x0b",
        b"\x0bchunked",
        b"chunked\xa0",
        b"chunked;q=1",
        b"chunked, gzip",
        b"gzip",
        b"",
    ] {
        let input = get_with(&[&[&b"Transfer-Encoding: "[..], bad].concat()]);
        let error = rejected_with(&input, &Limits::default());
        assert_eq!(
            error.status,
            400,
            "{:?}: {error}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn transfer_encoding_lines_combine_into_one_list() {
    assert_status(
        400,
        &[
            &get_with(&[b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked"]),
            &get_with(&[
                b"Transfer-Encoding: chunked",
                b"Transfer-Encoding: identity",
            ]),
            &get_with(&[
                b"Transfer-Encoding: identity",
                b"Transfer-Encoding: chunked",
            ]),
            &get_with(&[b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip"]),
        ],
    );
    assert_status(
        501,
        &[&get_with(&[
            b"Transfer-Encoding: gzip",
            b"Transfer-Encoding: chunked",
        ])],
    );
}

#[test]
fn a_coding_before_chunked_is_501() {
    // ferry would have to decode it: the app receives the body with a Content-Length and no
    // Transfer-Encoding, so still-compressed bytes would arrive unlabelled.
    assert_status(
        501,
        &[
            &get_with(&[b"Transfer-Encoding: gzip, chunked"]),
            &get_with(&[b"Transfer-Encoding: deflate,chunked"]),
            &get_with(&[b"Transfer-Encoding: x-custom, chunked"]),
        ],
    );
}

#[test]
fn transfer_encoding_in_http10_is_400() {
    assert_status(
        400,
        &[&request_with(
            b"POST / HTTP/1.0",
            &[b"Transfer-Encoding: chunked"],
        )],
    );
}

#[test]
fn methods_are_upper_case_tokens_of_3_to_20_bytes() {
    for method in [
        &b"GET"[..],
        b"PROPFIND",
        b"-BLARGH",
        b"M-SEARCH",
        b"ABCDEFGHIJKLMNOPQRST",
    ] {
        let input = request_with(&[method, b" / HTTP/1.1"].concat(), &[HOST]);
        assert_eq!(accepted(&input).method(&input), method);
    }
    for method in [
        &b"get"[..],
        b"Get",
        b"-bl",
        b"GE",
        b"ABCDEFGHIJKLMNOPQRSTU",
        b"GET:",
        b"bla:rgh",
        b"G\xc3\x9fET",
        b"GET\x00",
        b"GE#T",
        b"",
    ] {
        let input = request_with(&[method, b" / HTTP/1.1"].concat(), &[HOST]);
        let error = rejected_with(&input, &Limits::default());
        assert_eq!(
            error.status,
            400,
            "{:?}: {error}",
            String::from_utf8_lossy(method)
        );
    }
}

#[test]
fn names_with_underscores_are_dropped_and_never_frame_the_body() {
    let input = request_with(
        b"GET / HTTP/1.0",
        &[
            b"Transfer_Encoding: tricked",
            b"Content-Length: 7",
            b"Content_Length: -1E23",
        ],
    );
    let head = accepted(&input);
    assert_eq!(head.framing, BodyFraming::Length(7));
    assert_eq!(
        fields_of(&head, &input),
        [("Content-Length".into(), "7".into())]
    );

    let input = get_with(&[b"Transfer_Encoding: gzip", b"Transfer-Encoding: chunked"]);
    assert_eq!(accepted(&input).framing, BodyFraming::Chunked);
    let input = get_with(&[b"Content_Length: 5"]);
    assert_eq!(accepted(&input).framing, BodyFraming::None);
}

#[test]
fn host_may_appear_once_with_an_authority_value() {
    let get = |fields: &[&[u8]]| request_with(b"GET / HTTP/1.1", fields);
    assert_status(
        400,
        &[
            &get(&[b"Host: a", b"Host: b"]),
            &get(&[b"Host: a", b"Host: a"]),
            &get(&[b"Host: a b"]),
            &get(&[b"Host: a/b"]),
            &get(&[b"Host: user@a"]),
            &get(&[b"Host: caf\xc3\xa9"]),
        ],
    );
    for host in [&b"example.com"[..], b"[::1]:8080", b"0.0.0.0=5000", b""] {
        let input = get(&[&[&b"Host: "[..], host].concat()]);
        assert_eq!(accepted(&input).host(&input), Some(host));
    }
}

#[test]
fn a_missing_host_in_http11_is_400() {
    // RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without Host, even
    // one whose absolute-form target names the host.
    for input in [
        request_with(b"GET / HTTP/1.1", &[]),
        request_with(b"POST / HTTP/1.1", &[b"Accept: */*", b"Content-Length: 3"]),
        request_with(b"GET http://example.com/ HTTP/1.1", &[]),
        request_with(b"OPTIONS * HTTP/1.1", &[]),
    ] {
        assert_eq!(
            request_every_way(&input, &Limits::default()),
            Err(MISSING_HOST),
            "{:?}",
            String::from_utf8_lossy(&input)
        );
    }
    // HTTP/1.0 has no such rule.
    let input = request_with(b"GET / HTTP/1.0", &[]);
    assert_eq!(accepted(&input).host, None);
    let input = request_with(b"GET http://example.com/ HTTP/1.0", &[]);
    assert_eq!(accepted(&input).host(&input), Some(&b"example.com"[..]));
}

#[test]
fn content_type_may_appear_once() {
    assert_status(
        400,
        &[&get_with(&[
            b"Content-Type: a/b",
            b"content-type: text/html",
        ])],
    );
}

#[test]
fn only_http_10_and_11_are_supported() {
    assert_eq!(
        accepted(&request_with(b"GET / HTTP/1.0", &[])).version,
        Version::Http10
    );
    assert_eq!(
        accepted(&request_with(b"GET / HTTP/1.1", &[HOST])).version,
        Version::Http11
    );
    for version in [
        &b"HTTP/2.0"[..],
        b"HTTP/1.2",
        b"HTTP/1.9",
        b"HTTP/0.9",
        b"HTTP/3.0",
    ] {
        let input = request_with(&[b"GET / ", version].concat(), &[HOST]);
        assert_eq!(rejected_with(&input, &Limits::default()).status, 505);
    }
    for version in [
        &b"HTTP/1.1.1"[..],
        b"HTTP/01.1",
        b"http/1.1",
        b"HTTP/1.10",
        b"HTTP/1",
        b"HTTP/11",
        b"HTTP/111",
        b"HTTP/0.99",
        b"HTTP/ 1.1",
        b"HTTP/1.1 ",
        b"FTP/1.1",
        b"HTTP/1,1",
        b"",
    ] {
        let input = request_with(&[b"GET / ", version].concat(), &[HOST]);
        let error = rejected_with(&input, &Limits::default());
        assert_eq!(error.status, 400, "{:?}", String::from_utf8_lossy(version));
    }
    assert_status(
        400,
        &[
            b"GET /\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1 extra\r\nHost: a\r\n\r\n",
        ],
    );
}

#[test]
fn a_request_line_over_the_limit_is_414() {
    let limits = Limits::default();
    let line_of = |len: usize| {
        let padding = "a".repeat(len - "GET / HTTP/1.1".len());
        request_with(format!("GET /{padding} HTTP/1.1").as_bytes(), &[HOST])
    };
    accepted(&line_of(limits.max_request_line_bytes));
    assert_eq!(
        rejected_with(&line_of(limits.max_request_line_bytes + 1), &limits).status,
        414
    );

    let small = Limits {
        max_request_line_bytes: 16,
        ..limits
    };
    accepted_with(
        b"GET /23456 HTTP/1.1\r\nHost: a\r\n\r\n",
        &Limits {
            max_request_line_bytes: 19,
            ..small
        },
    );
    for too_long in [
        &b"GET /234567 HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        b"GET /234567890123456789 HTTP/1.1\r\nHost: a\r\n\r\n",
    ] {
        assert_eq!(rejected_with(too_long, &small).status, 414);
    }
    // Empty lines before the request line count, so they cannot be sent forever.
    assert_eq!(rejected_with(&b"\r\n".repeat(10), &small).status, 414);
}

#[test]
fn a_field_line_over_the_limit_is_431() {
    let limits = Limits::default();
    let field_of = |len: usize| format!("X: {}", "v".repeat(len - 3)).into_bytes();
    accepted(&get_with(&[&field_of(limits.max_field_line_bytes)]));
    let error = rejected_with(
        &get_with(&[&field_of(limits.max_field_line_bytes + 1)]),
        &limits,
    );
    assert_eq!(error.status, 431);
    let long_name = format!("{}: v", "N".repeat(limits.max_field_line_bytes)).into_bytes();
    assert_eq!(rejected_with(&get_with(&[&long_name]), &limits).status, 431);
}

#[test]
fn a_field_section_over_the_limit_is_431() {
    // get_with's Host line takes 9 bytes of the section (CRLF included), leaving 64.
    let limits = Limits {
        max_field_section_bytes: 9 + 64,
        ..Limits::default()
    };
    // 5 lines of 12 bytes + CRLF = 70 bytes: over 64.
    let line: &[u8] = b"X-Field: abc";
    let error = rejected_with(&get_with(&[line; 5]), &limits);
    assert_eq!(error.status, 431);
    // 4 lines (56 bytes) + final CRLF = 58: fits; 56 + 6 + 2 = 64: fits exactly.
    accepted_with(&get_with(&[line; 4]), &limits);
    accepted_with(&get_with(&[line, line, line, line, b"X: a"]), &limits);
    assert_eq!(
        rejected_with(&get_with(&[line, line, line, line, b"X: ab"]), &limits).status,
        431
    );
}

#[test]
fn more_than_the_field_count_limit_is_431() {
    let limits = Limits::default();
    // With get_with's Host line, these make one field more than the limit.
    let lines: Vec<Vec<u8>> = (0..limits.max_field_count)
        .map(|i| format!("X-{i}: v").into_bytes())
        .collect();
    let refs: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
    accepted(&get_with(&refs[..limits.max_field_count - 1]));
    assert_eq!(rejected_with(&get_with(&refs), &limits).status, 431);
}

#[test]
fn a_declared_body_over_the_limit_is_413() {
    let limits = Limits::default();
    let max = limits.max_body_size;
    let at_max = get_with(&[format!("Content-Length: {max}").as_bytes()]);
    assert_eq!(accepted(&at_max).framing, BodyFraming::Length(max));
    let over = get_with(&[format!("Content-Length: {}", max + 1).as_bytes()]);
    assert_eq!(rejected_with(&over, &limits).status, 413);
}

#[test]
fn keep_alive_follows_version_and_connection() {
    type Case<'a> = (&'a [u8], &'a [&'a [u8]], bool);
    let cases: [Case; 9] = [
        (b"GET / HTTP/1.1", &[HOST], true),
        (b"GET / HTTP/1.1", &[HOST, b"Connection: close"], false),
        (b"GET / HTTP/1.1", &[HOST, b"Connection: Close"], false),
        (
            b"GET / HTTP/1.1",
            &[HOST, b"Connection: keep-alive", b"Connection: close"],
            false,
        ),
        (b"GET / HTTP/1.1", &[HOST, b"Connection: foo, CLOSE"], false),
        (b"GET / HTTP/1.0", &[], false),
        (b"GET / HTTP/1.0", &[b"Connection: Keep-Alive"], true),
        (
            b"GET / HTTP/1.0",
            &[b"Connection: keep-alive, close"],
            false,
        ),
        (b"GET / HTTP/1.0", &[b"Keep-Alive: 300"], false),
    ];
    for (line, fields, keep_alive) in cases {
        let input = request_with(line, fields);
        assert_eq!(
            accepted(&input).keep_alive,
            keep_alive,
            "{:?}",
            String::from_utf8_lossy(&input)
        );
    }
}

#[test]
fn expect_continue_only_counts_in_http11() {
    assert!(accepted(&get_with(&[b"Expect: 100-Continue"])).expect_continue);
    assert!(!accepted(&get_with(&[b"Expect: something-else"])).expect_continue);
    let input = request_with(
        b"POST / HTTP/1.0",
        &[b"Expect: 100-continue", b"Content-Length: 1"],
    );
    assert!(!accepted(&input).expect_continue);
}

#[test]
fn upgrade_needs_the_field_and_the_connection_option() {
    let both = get_with(&[b"Connection: Upgrade", b"Upgrade: websocket"]);
    assert!(accepted(&both).upgrade);
    assert!(!accepted(&get_with(&[b"Upgrade: websocket"])).upgrade);
    assert!(!accepted(&get_with(&[b"Connection: upgrade"])).upgrade);
    let http10 = request_with(
        b"GET / HTTP/1.0",
        &[b"Connection: upgrade", b"Upgrade: websocket"],
    );
    assert!(!accepted(&http10).upgrade);
}

#[test]
fn connection_options_naming_fields_are_flagged() {
    assert!(accepted(&get_with(&[b"Connection: close, X-Secret"])).connection_lists_fields);
    assert!(
        !accepted(&get_with(&[b"Connection: close, keep-alive, upgrade"])).connection_lists_fields
    );
}

#[test]
fn a_parser_is_reused_for_pipelined_requests() {
    let input =
        b"GET /1 HTTP/1.1\r\nHost: a\r\nA: b\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\nC: d\r\n\r\n";
    let mut parser = RequestParser::new(Limits::default());
    let first = parser.parse(input).unwrap().unwrap();
    assert_eq!(first.target(input), b"/1");
    let first_len = first.head_len;
    parser.reset();
    let rest = &input[first_len..];
    let second = parser.parse(rest).unwrap().unwrap();
    assert_eq!(second.target(rest), b"/2");
    assert_eq!(second.head_len, rest.len());
    assert_eq!(second.headers.len(), 2);
}
