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

mod common;

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
    common::BROWSER_GET,
    common::API_POST,
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
