//! Response-head and body-framing rules. Inputs go through [`response_every_way`] /
//! [`body_every_way`], so every split must agree.

use super::split_feeding::{body_every_way, response_every_way};
use super::*;

fn parsed_for(method: &[u8], input: &[u8]) -> ResponseHead {
    match response_every_way(input, &Limits::default(), method) {
        Ok(Some(head)) => head,
        other => panic!(
            "{:?} should parse, got {other:?}",
            String::from_utf8_lossy(input)
        ),
    }
}

fn parsed(input: &[u8]) -> ResponseHead {
    parsed_for(b"GET", input)
}

fn refused(input: &[u8]) -> HttpError {
    match response_every_way(input, &Limits::default(), b"GET") {
        Err(error) => error,
        other => panic!(
            "{:?} should be refused, got {other:?}",
            String::from_utf8_lossy(input)
        ),
    }
}

#[test]
fn parses_a_status_line_and_fields() {
    let input = b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\nX-A:  b \r\n\r\nabc";
    let head = parsed(input);
    assert_eq!(head.version, Version::Http11);
    assert_eq!(head.status, 404);
    assert_eq!(head.reason(input), b"Not Found");
    assert_eq!(head.header(input, b"x-a"), Some(&b"b"[..]));
    assert_eq!(head.framing, ResponseFraming::Length(3));
    assert_eq!(&input[head.head_len..], b"abc");
    assert!(head.keep_alive);
}

#[test]
fn the_reason_phrase_may_be_empty_or_missing() {
    assert_eq!(
        parsed(b"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n")
            .reason
            .range()
            .len(),
        0
    );
    assert_eq!(
        parsed(b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n")
            .reason
            .range()
            .len(),
        0
    );
}

#[test]
fn framing_depends_on_method_status_and_fields() {
    let cases: [(&[u8], &[u8], ResponseFraming); 9] = [
        (
            b"GET",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
            ResponseFraming::Length(5),
        ),
        (
            b"HEAD",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
            ResponseFraming::None,
        ),
        (
            b"HEAD",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            ResponseFraming::None,
        ),
        (
            b"GET",
            b"HTTP/1.1 204 No Content\r\n\r\n",
            ResponseFraming::None,
        ),
        (
            b"GET",
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
            ResponseFraming::None,
        ),
        (
            b"GET",
            b"HTTP/1.1 100 Continue\r\n\r\n",
            ResponseFraming::None,
        ),
        (
            b"GET",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n",
            ResponseFraming::Chunked,
        ),
        (
            b"GET",
            b"HTTP/1.1 200 OK\r\n\r\n",
            ResponseFraming::UntilClose,
        ),
        (
            b"GET",
            b"HTTP/1.0 200 OK\r\n\r\n",
            ResponseFraming::UntilClose,
        ),
    ];
    for (method, input, framing) in cases {
        let head = parsed_for(method, input);
        assert_eq!(
            head.framing,
            framing,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
    assert_eq!(
        parsed_for(b"HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n").content_length,
        Some(5)
    );
    assert!(parsed(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n").is_interim());
}

#[test]
fn app_keep_alive_follows_version_connection_and_framing() {
    let cases: [(&[u8], bool); 6] = [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", false),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n", true),
        (b"HTTP/1.1 200 OK\r\n\r\n", false),
        (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n", false),
    ];
    for (input, keep_alive) in cases {
        assert_eq!(
            parsed(input).keep_alive,
            keep_alive,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn repeated_identical_content_lengths_are_tolerated() {
    let head = parsed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5, 5\r\n\r\n");
    assert_eq!(head.framing, ResponseFraming::Length(5));
}

#[test]
fn ambiguous_or_broken_responses_are_502() {
    for input in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
        b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nA: b\n\r\n",
        b"HTTP/1.1 200 OK\r\nA : b\r\n\r\n",
        b"HTTP/1.1 200 O\x00K\r\n\r\n",
        b"HTTP/1.1 20 OK\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 099 OK\r\n\r\n",
        b"HTTP/1.1 600 OK\r\n\r\n",
        b"HTTP/1.1 200OK\r\n\r\n",
        b"HTTP/2 200 OK\r\n\r\n",
        b"HTTP/1.2 200 OK\r\n\r\n",
        b"http/1.1 200 OK\r\n\r\n",
        b"<html>garbage</html>",
        b"\r\nHTTP/1.1 200 OK\r\n\r\n",
    ] {
        let error = refused(input);
        assert_eq!(
            error.status,
            502,
            "{:?}: {error}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn an_oversized_response_head_is_502() {
    let limits = Limits::default();
    let big = format!(
        "HTTP/1.1 200 OK\r\nX: {}\r\n\r\n",
        "v".repeat(limits.max_field_line_bytes)
    );
    assert_eq!(refused(big.as_bytes()).status, 502);
    let long_reason = format!(
        "HTTP/1.1 200 {}\r\n\r\n",
        "R".repeat(limits.max_request_line_bytes)
    );
    assert_eq!(refused(long_reason.as_bytes()).status, 502);
}

#[test]
fn a_101_is_an_upgrade() {
    let head = parsed(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    );
    assert!(head.upgrade);
    assert_eq!(head.framing, ResponseFraming::None);
    assert!(!head.is_interim());
}

#[test]
fn a_length_body_ends_after_its_length() {
    let input = b"helloHTTP/1.1 200 OK";
    let result = body_every_way(input, || {
        BodyReader::for_response(ResponseFraming::Length(5), &Limits::default())
    })
    .unwrap();
    assert!(result.done);
    assert_eq!(result.consumed, 5);
    assert_eq!(result.data, b"hello");

    let mut reader = BodyReader::for_response(ResponseFraming::Length(5), &Limits::default());
    reader.feed(b"hel", |_| {}).unwrap();
    assert_eq!(reader.finish_at_eof().unwrap_err().status, 502);
}

#[test]
fn a_close_delimited_body_ends_at_eof() {
    let mut reader = BodyReader::for_response(ResponseFraming::UntilClose, &Limits::default());
    let mut data = Vec::new();
    let progress = reader.feed_into(b"anything at all", &mut data).unwrap();
    assert_eq!(
        progress,
        BodyProgress {
            consumed: 15,
            done: false
        }
    );
    assert_eq!(data, b"anything at all");
    assert!(reader.finish_at_eof().is_ok());
    assert!(reader.is_done());
}

#[test]
fn no_body_is_done_at_once() {
    let mut reader = BodyReader::for_request(BodyFraming::None, &Limits::default());
    assert!(reader.is_done());
    assert_eq!(
        reader.feed(b"GET /", |_| {}).unwrap(),
        BodyProgress {
            consumed: 0,
            done: true
        }
    );
    let reader = BodyReader::for_request(BodyFraming::Length(0), &Limits::default());
    assert!(reader.is_done());
}

#[test]
fn a_parser_is_reset_for_the_final_response_after_an_interim_one() {
    let input = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let mut parser = ResponseParser::new(Limits::default(), b"POST");
    let interim_len = parser.parse(input).unwrap().unwrap().head_len;
    parser.reset(b"POST");
    let rest = &input[interim_len..];
    let head = parser.parse(rest).unwrap().unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(head.framing, ResponseFraming::Length(2));
}
