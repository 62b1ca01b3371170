//! Chunked-body rules, one test per rule. Every input goes through [`chunked_every_way`],
//! which feeds it whole, byte by byte and in pseudo-random pieces and checks the answers
//! agree (same data, same consumed count, same trailers, same error).

use super::split_feeding::{body_every_way, chunked_every_way, Decoded};
use super::*;

fn decoded(input: &[u8]) -> Decoded {
    decoded_with(input, &Limits::default())
}

fn decoded_with(input: &[u8], limits: &Limits) -> Decoded {
    match chunked_every_way(input, limits) {
        Ok(decoded) => decoded,
        Err(error) => panic!(
            "{:?} should decode: {error}",
            String::from_utf8_lossy(input)
        ),
    }
}

fn refused_with(input: &[u8], limits: &Limits) -> HttpError {
    match chunked_every_way(input, limits) {
        Err(error) => error,
        Ok(decoded) => panic!(
            "{:?} should be refused: {decoded:?}",
            String::from_utf8_lossy(input)
        ),
    }
}

fn assert_refused(status: u16, inputs: &[&[u8]]) {
    for input in inputs {
        let error = refused_with(input, &Limits::default());
        assert_eq!(
            error.status,
            status,
            "{:?}: {error}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn decodes_chunks_and_stops_where_the_body_ends() {
    let input = b"5\r\nhello\r\n6\r\n world\r\n000\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n";
    let result = decoded(input);
    assert_eq!(result.data, b"hello world");
    assert!(result.done);
    assert_eq!(
        &input[result.consumed..],
        b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n"
    );
    assert!(result.trailers.is_empty());
}

#[test]
fn hex_sizes_may_be_upper_case_or_zero_padded() {
    assert_eq!(decoded(b"A\r\n0123456789\r\n0\r\n\r\n").data, b"0123456789");
    assert_eq!(decoded(b"0005\r\nhello\r\n0\r\n\r\n").data, b"hello");
    assert_eq!(
        decoded(b"000000000000000a\r\n0123456789\r\n0\r\n\r\n").data,
        b"0123456789"
    );
}

#[test]
fn an_incomplete_body_is_not_done() {
    for input in [
        &b""[..],
        b"5",
        b"5\r\nhel",
        b"5\r\nhello\r\n",
        b"0\r\n",
        b"0\r\n\r",
        b"0\r\nA: b\r\n",
    ] {
        let result = decoded(input);
        assert!(!result.done, "{:?}", String::from_utf8_lossy(input));
        assert_eq!(result.consumed, input.len());
    }
    let mut reader = BodyReader::for_request(BodyFraming::Chunked, &Limits::default());
    reader.feed(b"0\r\n", |_| {}).unwrap();
    assert_eq!(reader.finish_at_eof().unwrap_err().status, 400);
}

#[test]
fn chunk_size_must_be_hex_digits_only() {
    assert_refused(
        400,
        &[
            b"g\r\n",
            b"-5\r\nhello\r\n0\r\n\r\n",
            b"+5\r\nhello\r\n0\r\n\r\n",
            b"0x5\r\nhello\r\n0\r\n\r\n",
            b"5\r\nhello\r\n6_0\r\n world\r\n0\r\n\r\n",
            b"5_\r\nhello\r\n",
            b" 5\r\nhello\r\n0\r\n\r\n",
            b"\t5\r\nhello\r\n0\r\n\r\n",
            b"\r\nhello\r\n0\r\n\r\n",
            b";foo=bar\r\nhello\r\n0\r\n\r\n",
            b" ;foo=bar\r\nhello\r\n0\r\n\r\n",
            b"5\x00\r\nhello\r\n",
        ],
    );
}

#[test]
fn whitespace_after_a_size_is_only_allowed_before_an_extension() {
    assert_refused(
        400,
        &[
            b"5\r\nhello\r\n0 \r\n\r\n",
            b"5 \r\nhello\r\n0\r\n\r\n",
            b"5 5\r\n",
        ],
    );
    assert_eq!(
        decoded(b"5 ;ext\r\nhello\r\n0\t ;a=b\r\n\r\n").data,
        b"hello"
    );
}

#[test]
fn a_size_of_more_than_16_hex_digits_is_400() {
    let limits = Limits {
        max_body_size: u64::MAX,
        ..Limits::default()
    };
    assert_eq!(
        refused_with(b"00000000000000005\r\nhello\r\n", &limits).status,
        400
    );
    assert_eq!(refused_with(b"10000000000000000\r\n", &limits).status, 400);
    let largest = decoded_with(b"ffffffffffffffff\r\nab", &limits);
    assert_eq!(largest.data, b"ab");
    assert!(!largest.done);
}

#[test]
fn extensions_are_skipped() {
    let input =
        b"5; some; parameters=stuff\r\nhello\r\n6; blahblah; blah\r\n world\r\n0;last\r\n\r\n";
    assert_eq!(decoded(input).data, b"hello world");
    assert_eq!(
        decoded(b"5;foo=\"bar baz\"\r\nhello\r\n0\r\n\r\n").data,
        b"hello"
    );
    assert_eq!(
        decoded(b"5;x=caf\xc3\xa9\r\nhello\r\n0\r\n\r\n").data,
        b"hello"
    );
}

#[test]
fn an_extension_with_bare_cr_lf_or_control_bytes_is_400() {
    assert_refused(
        400,
        &[
            b"5;ext=val\rue\r\nhello\r\n0\r\n\r\n",
            b"5;ext=val\nhello\r\n0\r\n\r\n",
            b"5;ext=\x00\r\nhello\r\n0\r\n\r\n",
            b"5;ext=\x7f\r\nhello\r\n0\r\n\r\n",
            b"5;ext=\"a\rb\"\r\nhello\r\n0\r\n\r\n",
        ],
    );
}

#[test]
fn a_chunk_header_line_over_the_field_line_limit_is_400() {
    let limits = Limits {
        max_field_line_bytes: 16,
        ..Limits::default()
    };
    // 16 bytes before the CRLF: fits exactly.
    assert_eq!(
        decoded_with(b"5;abcdefghijklmn\r\nhello\r\n0\r\n\r\n", &limits).data,
        b"hello"
    );
    assert_eq!(
        refused_with(b"5;abcdefghijklmno\r\nhello\r\n0\r\n\r\n", &limits).status,
        400
    );
    assert_eq!(refused_with(b"5                ;\r\n", &limits).status, 400);
}

#[test]
fn chunk_data_must_be_followed_by_exactly_crlf() {
    assert_refused(
        400,
        &[
            b"5\r\nhelloX\r\n0\r\n\r\n",
            b"5\r\nhello\n0\r\n\r\n",
            b"5\r\nhello\r0\r\n\r\n",
            b"5\r\nhello world\r\n0\r\n\r\n",
            b"5\r\nhello\r\n\r\n",
        ],
    );
}

#[test]
fn bare_lf_line_endings_are_400() {
    assert_refused(
        400,
        &[
            b"5\nhello\r\n0\r\n\r\n",
            b"5\n;\r\nhello\r\n0\r\n\r\n",
            b"5\r\nhello\r\n0\n\r\n",
            b"5\r\nhello\r\n0\r\n\n",
            b"0\r\nA: b\n\r\n",
            b"\n",
        ],
    );
}

#[test]
fn trailers_are_returned_as_parsed() {
    let input =
        b"5\r\nhello\r\n0\r\nVary: *\r\nContent-Type:  text/plain \r\nX_Dropped: 1\r\n\r\nnext";
    let result = decoded(input);
    assert_eq!(result.data, b"hello");
    assert_eq!(
        result.trailers,
        [
            (b"Vary".to_vec(), b"*".to_vec()),
            (b"Content-Type".to_vec(), b"text/plain".to_vec())
        ]
    );
    assert_eq!(&input[result.consumed..], b"next");
}

#[test]
fn framing_and_routing_fields_are_forbidden_as_trailers() {
    for name in [
        "Content-Length",
        "transfer-encoding",
        "Host",
        "Trailer",
        "TE",
        "Authorization",
    ] {
        let input = format!("5\r\nhello\r\n0\r\n{name}: x\r\n\r\n");
        assert_eq!(
            refused_with(input.as_bytes(), &Limits::default()).status,
            400,
            "{name}"
        );
    }
}

#[test]
fn malformed_trailer_lines_are_400() {
    assert_refused(
        400,
        &[
            b"0\r\nA : b\r\n\r\n",
            b"0\r\n A: b\r\n\r\n",
            b"0\r\nA: b\r\n c\r\n\r\n",
            b"0\r\nNoColon\r\n\r\n",
            b"0\r\n: b\r\n\r\n",
            b"0\r\nA: b\x00\r\n\r\n",
            b"0\r\nA: b\rc\r\n\r\n",
            b"0\r\n\rX",
        ],
    );
}

#[test]
fn trailers_over_the_field_limits_are_431() {
    let limits = Limits {
        max_field_line_bytes: 10,
        max_field_section_bytes: 30,
        max_field_count: 3,
        ..Limits::default()
    };
    assert_eq!(
        refused_with(b"0\r\nA: 12345678\r\n\r\n", &limits).status,
        431
    );
    assert_eq!(
        refused_with(b"0\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", &limits).status,
        431
    );
    assert_eq!(
        refused_with(
            b"0\r\nA: 1234567\r\nB: 1234567\r\nC: 1234567\r\n\r\n",
            &limits
        )
        .status,
        431
    );
    let ok = decoded_with(b"0\r\nA: 1234567\r\nB: 1\r\nC: 1\r\n\r\n", &limits);
    assert_eq!(ok.trailers.len(), 3);
}

#[test]
fn a_body_over_the_limit_is_413_as_soon_as_declared() {
    let limits = Limits {
        max_body_size: 10,
        ..Limits::default()
    };
    assert_eq!(
        decoded_with(b"5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", &limits).data,
        b"helloworld"
    );
    // The size line alone is enough: no need to wait for the data.
    for input in [&b"b\r\n"[..], b"5\r\nhello\r\n6", b"ffffffffffffffff"] {
        assert_eq!(
            refused_with(input, &limits).status,
            413,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn errors_are_sticky() {
    let mut decoder = ChunkedDecoder::new(Limits::default());
    let error = decoder.feed(b"x", |_| {}).unwrap_err();
    assert_eq!(decoder.feed(b"0\r\n\r\n", |_| {}), Err(error));
}

#[test]
fn a_reset_decoder_decodes_the_next_body() {
    let mut decoder = ChunkedDecoder::new(Limits::default());
    let mut out = Vec::new();
    decoder
        .feed_into(b"3\r\nabc\r\n0\r\nX: y\r\n\r\n", &mut out)
        .unwrap();
    assert!(decoder.is_done());
    decoder.reset();
    out.clear();
    let progress = decoder
        .feed_into(b"2\r\nde\r\n0\r\n\r\n", &mut out)
        .unwrap();
    assert!(progress.done);
    assert_eq!(out, b"de");
    assert_eq!(decoder.trailers().count(), 0);
}

#[test]
fn pass_through_consumes_exactly_the_wire_bytes_of_a_response_body() {
    let body = b"4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\nExpires: never\r\n\r\n";
    let input = [&body[..], b"HTTP/1.1 200 OK\r\n"].concat();
    let result = body_every_way(&input, || {
        BodyReader::for_response(ResponseFraming::Chunked, &Limits::default())
    })
    .unwrap();
    assert!(result.done);
    assert_eq!(result.consumed, body.len());
    assert_eq!(result.data, b"Wikipedia");

    let broken = body_every_way(b"4\r\nWikiX", || {
        BodyReader::for_response(ResponseFraming::Chunked, &Limits::default())
    });
    assert_eq!(broken.unwrap_err().status, 502);
}

#[test]
fn response_bodies_have_no_size_limit() {
    let limits = Limits {
        max_body_size: 1,
        ..Limits::default()
    };
    let result = body_every_way(b"5\r\nhello\r\n0\r\n\r\n", || {
        BodyReader::for_response(ResponseFraming::Chunked, &limits)
    });
    assert_eq!(result.unwrap().data, b"hello");
}
