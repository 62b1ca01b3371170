//! ferry's request-head parser against httparse, the tokenizer hyper uses, on the same heads.
//!
//! This is the measurement behind the choice not to tokenize with httparse (see the crate
//! docs): httparse only splits a head into method, target, version and raw field lines, so
//! ferry would still run every strictness rule of its own (field names and values, framing,
//! Host, Transfer-Encoding/Content-Length, target forms) over its output. The figure to beat is
//! therefore ferry's whole parse against httparse's tokenizing alone.
//!
//! Run with `cargo bench -p ferry-http` (release). Not run in CI; the machine is noisy, so it
//! prints the range over rounds and the ratio of medians.

use ferry_http::{Limits, RequestParser};
use std::hint::black_box;
use std::time::Instant;

const ROUNDS: usize = 7;
const ITERATIONS: usize = 200_000;

/// Heads of the sizes a proxy sees: a bare GET, a browser's GET, an API POST head.
const HEADS: [(&str, &[u8]); 3] = [
    (
        "minimal GET",
        b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
    ),
    (
        "browser GET (12 fields)",
        b"GET /articles/2026/12/how-to-run-python-apps?page=2&sort=new HTTP/1.1\r\n\
Host: www.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: https://www.example.com/articles/2026/12/\r\n\
Connection: keep-alive\r\n\
Cookie: session=3f2a9c0e8b7d4e1fa0c2; theme=dark; consent=1\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Dest: document\r\n\
Sec-Fetch-Mode: navigate\r\n\
Priority: u=0, i\r\n\r\n",
    ),
    (
        "API POST (6 fields)",
        b"POST /api/v1/orders HTTP/1.1\r\n\
Host: api.example.com\r\n\
Content-Type: application/json\r\n\
Content-Length: 512\r\n\
Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl\r\n\
Accept: application/json\r\n\
X-Request-Id: 7b0c3f1e-2d4a-4c8e-9f6b-1a2b3c4d5e6f\r\n\r\n",
    ),
];

/// Nanoseconds per parse, one value per round.
fn rounds(mut parse_once: impl FnMut() -> bool) -> Vec<f64> {
    (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..ITERATIONS {
                assert!(black_box(parse_once()), "a benchmark head failed to parse");
            }
            start.elapsed().as_nanos() as f64 / ITERATIONS as f64
        })
        .collect()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    println!(
        "| head | bytes | ferry (full parse) ns | httparse (tokenize only) ns | ferry ÷ httparse |"
    );
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (name, head) in HEADS {
        let limits = Limits::default();
        let mut ferry = rounds(|| {
            let mut parser = RequestParser::new(limits);
            matches!(parser.parse(black_box(head)), Ok(Some(_)))
        });
        let mut httparse = rounds(|| {
            let mut fields = [httparse::EMPTY_HEADER; 32];
            let mut request = httparse::Request::new(&mut fields);
            matches!(
                request.parse(black_box(head)),
                Ok(httparse::Status::Complete(_))
            )
        });
        let range = |v: &[f64]| format!("{:.0}–{:.0}", v[0], v[v.len() - 1]);
        let (f, h) = (median(&mut ferry), median(&mut httparse));
        println!(
            "| {name} | {} | {f:.0} ({}) | {h:.0} ({}) | {:.2}× |",
            head.len(),
            range(&ferry),
            range(&httparse),
            f / h
        );
    }
}
