//! Randomized inputs built from HTTP-shaped fragments: the parsers must never panic, and
//! every way of splitting an input must give the same answer (checked by the `*_every_way`
//! helpers). Deterministic, so a failure reproduces.

use super::split_feeding::{body_every_way, request_every_way, response_every_way, Lcg};
use super::*;

/// Pieces that make near-valid messages likely and put every tricky byte near every rule.
const HEAD_FRAGMENTS: &[&[u8]] = &[
    b"GET",
    b"POST",
    b"HEAD",
    b"OPTIONS",
    b"CONNECT",
    b"get",
    b" ",
    b"  ",
    b"/",
    b"/a?b=c",
    b"*",
    b"http://h/x",
    b"h:1",
    b"#",
    b"%20",
    b"HTTP/1.1",
    b"HTTP/1.0",
    b"HTTP/2.0",
    b"HTTP/1.",
    b"HTTP/1.1 200 OK",
    b"HTTP/1.0 204 ",
    b"101",
    b"\r\n",
    b"\r\n\r\n",
    b"\r",
    b"\n",
    b":",
    b": ",
    b"Host",
    b"Content-Length",
    b"Transfer-Encoding",
    b"Connection",
    b"Upgrade",
    b"Expect",
    b"X_Y",
    b"chunked",
    b"gzip",
    b"identity",
    b"close",
    b"keep-alive",
    b"100-continue",
    b"0",
    b"5",
    b"18446744073709551616",
    b",",
    b"\t",
    b"\x00",
    b"\x7f",
    b"\xc3\xa9",
    b"a",
    b"\"",
    b";",
];

const BODY_FRAGMENTS: &[&[u8]] = &[
    b"0",
    b"5",
    b"a",
    b"F",
    b"ffffffffffffffff",
    b"\r\n",
    b"\r",
    b"\n",
    b";",
    b";x=y",
    b" ",
    b"\t",
    b"hello",
    b"\x00",
    b"-",
    b"_",
    b"X: y",
    b"Content-Length: 1",
    b":",
    b"\"",
];

fn random_input(random: &mut Lcg, fragments: &[&[u8]], max_fragments: usize) -> Vec<u8> {
    let count = random.below(max_fragments) + 1;
    (0..count)
        .flat_map(|_| fragments[random.below(fragments.len())].iter().copied())
        .collect()
}

#[test]
fn random_request_heads_never_panic_and_agree_across_splits() {
    let small_limits = Limits {
        max_request_line_bytes: 24,
        max_field_line_bytes: 20,
        max_field_section_bytes: 48,
        max_field_count: 3,
        max_body_size: 9,
    };
    let mut random = Lcg::new(7);
    for _ in 0..4000 {
        let input = random_input(&mut random, HEAD_FRAGMENTS, 24);
        let _ = request_every_way(&input, &Limits::default());
        let _ = request_every_way(&input, &small_limits);
    }
}

#[test]
fn random_response_heads_never_panic_and_agree_across_splits() {
    let mut random = Lcg::new(11);
    for _ in 0..4000 {
        let mut input = b"HTTP/1.1 200 OK\r\n".to_vec();
        input.truncate(random.below(input.len() + 1));
        input.extend(random_input(&mut random, HEAD_FRAGMENTS, 16));
        let method: &[u8] = if random.below(4) == 0 {
            b"HEAD"
        } else {
            b"GET"
        };
        let _ = response_every_way(&input, &Limits::default(), method);
    }
}

#[test]
fn random_chunked_bodies_never_panic_and_agree_across_splits() {
    let limits = Limits {
        max_field_line_bytes: 12,
        max_field_section_bytes: 30,
        max_field_count: 2,
        max_body_size: 40,
        ..Limits::default()
    };
    let mut random = Lcg::new(13);
    let mut completed = 0;
    for _ in 0..6000 {
        let input = random_input(&mut random, BODY_FRAGMENTS, 20);
        let request = body_every_way(&input, || {
            BodyReader::for_request(BodyFraming::Chunked, &limits)
        });
        let response = body_every_way(&input, || {
            BodyReader::for_response(ResponseFraming::Chunked, &limits)
        });
        if let Ok(decoded) = &request {
            completed += usize::from(decoded.done);
            assert!(decoded.consumed <= input.len());
        }
        // The same bytes are framed the same way for requests and responses; only the error
        // status (and the size limit, which responses lack) differ.
        if let (Ok(request), Ok(response)) = (&request, &response) {
            assert_eq!(request, response);
        }
    }
    assert!(
        completed > 20,
        "the fragments should form complete bodies sometimes: {completed}"
    );
}
