//! Randomized inputs built from HTTP-shaped pieces: the parsers must never panic, and every
//! way of splitting an input must give the same answer (checked by the `*_every_way`
//! helpers). Deterministic, so a failure reproduces.

use super::split_feeding::{body_every_way, request_every_way, response_every_way, Lcg};
use super::*;

/// Pieces that put every tricky byte and token next to every rule.
pub(super) const HEAD_FRAGMENTS: &[&[u8]] = &[
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

pub(super) const REQUEST_SEEDS: &[&[u8]] = &[
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /p?q HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: close\r\n\r\n",
    b"PUT /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n",
    b"GET http://h:1/ HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
];

const RESPONSE_SEEDS: &[&[u8]] = &[
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"HTTP/1.0 304 Not Modified\r\nConnection: keep-alive\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
];

const BODY_SEEDS: &[&[u8]] = &[
    b"5\r\nhello\r\n0\r\n\r\n",
    b"a;x=y\r\n0123456789\r\n0\r\nX: y\r\n\r\nrest",
    b"0\r\n\r\n",
];

/// Either pieces strung together, or a valid seed with a few random edits (insert a piece,
/// drop a byte range, cut the end); about a quarter of the seeds stay intact.
pub(super) fn random_input(random: &mut Lcg, seeds: &[&[u8]], fragments: &[&[u8]]) -> Vec<u8> {
    let pick = |random: &mut Lcg| fragments[random.below(fragments.len())];
    if random.below(3) == 0 {
        let count = random.below(20) + 1;
        return (0..count)
            .flat_map(|_| pick(random).iter().copied())
            .collect();
    }
    let mut input = seeds[random.below(seeds.len())].to_vec();
    for _ in 0..random.below(4) {
        let at = random.below(input.len() + 1);
        match random.below(3) {
            0 => {
                let fragment = pick(random);
                input.splice(at..at, fragment.iter().copied());
            }
            1 => {
                let end = (at + random.below(4) + 1).min(input.len());
                input.drain(at..end);
            }
            _ => input.truncate(at),
        }
    }
    input
}

#[test]
fn random_request_heads_never_panic_and_agree_across_splits() {
    // Small enough that edits often cross them; the field section and count leave the HTTP/1.1
    // seeds' `Host: a` line (one field, 9 bytes) room on top of their other fields.
    let small_limits = Limits {
        max_request_line_bytes: 24,
        max_field_line_bytes: 20,
        max_field_section_bytes: 48 + 9,
        max_field_count: 3 + 1,
        max_body_size: 9,
    };
    let mut random = Lcg::new(7);
    let mut complete = 0;
    for _ in 0..4000 {
        let input = random_input(&mut random, REQUEST_SEEDS, HEAD_FRAGMENTS);
        let result = request_every_way(&input, &Limits::default());
        complete += usize::from(matches!(result, Ok(Some(_))));
        let _ = request_every_way(&input, &small_limits);
    }
    assert!(
        complete > 200,
        "inputs should form complete heads often enough: {complete}"
    );
}

#[test]
fn random_response_heads_never_panic_and_agree_across_splits() {
    let mut random = Lcg::new(11);
    let mut complete = 0;
    for _ in 0..4000 {
        let input = random_input(&mut random, RESPONSE_SEEDS, HEAD_FRAGMENTS);
        let method: &[u8] = if random.below(4) == 0 {
            b"HEAD"
        } else {
            b"GET"
        };
        let result = response_every_way(&input, &Limits::default(), method);
        complete += usize::from(matches!(result, Ok(Some(_))));
    }
    assert!(
        complete > 200,
        "inputs should form complete heads often enough: {complete}"
    );
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
    let mut complete = 0;
    for _ in 0..6000 {
        let input = random_input(&mut random, BODY_SEEDS, BODY_FRAGMENTS);
        let request = body_every_way(&input, || {
            BodyReader::for_request(BodyFraming::Chunked, &limits)
        });
        let response = body_every_way(&input, || {
            BodyReader::for_response(ResponseFraming::Chunked, &limits)
        });
        if let Ok(decoded) = &request {
            complete += usize::from(decoded.done);
            assert!(decoded.consumed <= input.len());
        }
        // Requests and responses frame the same bytes the same way; only the error status
        // and the size limit (responses have none) differ.
        if let (Ok(request), Ok(response)) = (&request, &response) {
            assert_eq!(request, response);
        }
    }
    assert!(
        complete > 200,
        "inputs should form complete bodies often enough: {complete}"
    );
}
