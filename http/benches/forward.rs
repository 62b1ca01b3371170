//! What ferry writes for the app per request: the HTTP head (`write_request_head`, for apps
//! of `--app-start-command`) against the WSGI loader's frame (`write_wsgi_frame`), on the
//! same parsed heads, rounds interleaved.
//!
//! Run with `cargo bench -p ferry-http --bench forward` (release). The machine is noisy: it
//! prints the range over rounds and the ratio of medians.

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
