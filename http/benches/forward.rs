//! What ferry writes for the app per request: the HTTP head (`write_request_head`, for apps
//! of `--app-start-command`) against the WSGI loader's frame (`write_wsgi_frame`), on the
//! same parsed heads, rounds interleaved.
//!
//! Run with `cargo bench -p ferry-http --bench forward` (release). The machine is noisy: it
//! prints the range over rounds and the ratio of medians.

mod common;

use ferry_http::{parse_request_head, write_request_head, write_wsgi_frame, Limits, Peer};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

const ROUNDS: usize = 7;
const ITERATIONS: usize = 200_000;

const HEADS: [(&str, &[u8]); 3] = [
    (
        "wrk's GET",
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1:18931\r\n\r\n",
    ),
    common::BROWSER_GET,
    common::API_POST,
];

const PEER: Peer = Peer {
    ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
    tls: false,
    trusted: false,
};

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    println!("| head | HTTP head ns | frame ns | frame ÷ head |");
    println!("| --- | ---: | ---: | ---: |");
    for (name, input) in HEADS {
        let head = parse_request_head(input, &Limits::default())
            .unwrap()
            .unwrap();
        let writers = [write_request_head, write_wsgi_frame];
        let mut times = [Vec::new(), Vec::new()];
        // The connection's buffer is reused, as ferry's is.
        let mut out = Vec::with_capacity(4096);
        for _ in 0..ROUNDS {
            for (write, times) in writers.iter().zip(&mut times) {
                let start = Instant::now();
                for _ in 0..ITERATIONS {
                    out.clear();
                    write(black_box(&head), black_box(input), PEER, 512, &mut out);
                    black_box(&out);
                }
                times.push(start.elapsed().as_nanos() as f64 / ITERATIONS as f64);
            }
        }
        let range = |v: &[f64]| {
            let (lo, hi) = v
                .iter()
                .fold((f64::MAX, 0f64), |(l, h), &x| (l.min(x), h.max(x)));
            format!("{lo:.0}–{hi:.0}")
        };
        let [mut h, mut f] = times;
        let (rh, rf) = (range(&h), range(&f));
        let (mh, mf) = (median(&mut h), median(&mut f));
        println!(
            "| {name} | {mh:.0} ({rh}) | {mf:.0} ({rf}) | {:.2}× |",
            mf / mh
        );
    }
}
