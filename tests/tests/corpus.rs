//! gunicorn's request corpus (tests/requests, converted to data) sent through the real ferry, to
//! an app that records every request it receives.
//!
//! Each case goes over a fresh connection: its exact bytes, then as many responses as gunicorn
//! found requests (one for a refused case), then a half-close and whatever else ferry answers
//! until it closes. Every case is sent twice, whole and in pieces (byte by byte at first), and
//! both must give the same answers and the same requests at the app.
//!
//! A case gunicorn refuses must get a 4xx/5xx from ferry with nothing reaching the app; a case
//! gunicorn accepts must reach the app as gunicorn parsed it, up to the transformations ferry
//! documents for the request it forwards (`http::forward`): hop-by-hop fields, Expect and
//! client-sent forwarding fields dropped, `X-Forwarded-For/-Proto/-Host` added, bodies
//! de-chunked with a Content-Length, trailers dropped, an absolute-form target sent in
//! origin-form with its authority as Host, and HTTP/1.1 towards the app.
//!
//! Cases that differ by design are listed with one line of reason each: the parser's list
//! (`http/src/corpus_deviations.txt`, read at run time) and the proxy's own
//! (`tests/corpus_deviations.txt`). The test fails on any other mismatch and on a listed case
//! that now matches.
//!
//! gunicorn accepts HTTP/1.1 requests without Host, which ferry refuses (RFC 9112 §3.2). So
//! that this refusal hides nothing a case was written to test, a case with such requests is
//! also sent with a Host line added to each of them ([`ferry_http::corpus::with_host`]) and
//! judged on that: a case gunicorn refuses must still be refused, and a case that then
//! matches gunicorn is listed as differing only by the Host rule
//! ([`ferry_http::corpus::HOST_RULE`]). The corpus, the lists and that judging are shared
//! with the parser's corpus test (`ferry_http::corpus`, the driver's `corpus` feature).

use ferry_e2e::{repo_root, wait_for, RawConn, Record, RecordingApp};
use ferry_http::corpus::{
    failure, load_cases, read_deviations, unknown_deviations, verdict, Case, Expectation,
    ParsedRequest,
};
use std::net::SocketAddr;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

/// The deviations lists, as failure messages name them.
const DEVIATIONS_LISTS: &str = "http/src/corpus_deviations.txt or tests/corpus_deviations.txt";

/// Fields ferry never forwards (hop-by-hop ones, Expect, forwarding claims, `Proxy`), and the
/// framing fields it replaces with its own Content-Length.
fn dropped_by_ferry(name: &[u8]) -> bool {
    const DROPPED: [&str; 12] = [
        "CONNECTION",
        "KEEP-ALIVE",
        "PROXY-CONNECTION",
        "TE",
        "TRAILER",
        "TRANSFER-ENCODING",
        "UPGRADE",
        "CONTENT-LENGTH",
        "EXPECT",
        "FORWARDED",
        "X-REAL-IP",
        "PROXY",
    ];
    DROPPED
        .iter()
        .any(|d| name.eq_ignore_ascii_case(d.as_bytes()))
        || name.to_ascii_uppercase().starts_with(b"X-FORWARDED-")
}

/// Fields ferry adds to every request it forwards.
fn added_by_ferry(name: &[u8]) -> bool {
    [
        "X-FORWARDED-FOR",
        "X-FORWARDED-PROTO",
        "X-FORWARDED-HOST",
        "CONTENT-LENGTH",
    ]
    .iter()
    .any(|a| name.eq_ignore_ascii_case(a.as_bytes()))
}

/// What the app should receive for a request gunicorn parsed: its fields in order, minus the
/// dropped ones (and those a Connection field lists), plus Host from an absolute-form target.
struct AtTheApp {
    method: Vec<u8>,
    target: Vec<u8>,
    /// Client fields as forwarded, names upper-cased.
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    body: Vec<u8>,
    /// Content-Length ferry adds (a body framing was present), with the de-chunked length.
    content_length: Option<usize>,
    forwarded_host: Option<Vec<u8>>,
}

fn at_the_app(parsed: &ParsedRequest) -> AtTheApp {
    let connection_options: Vec<Vec<u8>> = parsed
        .headers
        .iter()
        .filter(|(name, _)| name == b"CONNECTION")
        .flat_map(|(_, value)| {
            value
                .split(|b| *b == b',')
                .map(|t| t.trim_ascii().to_ascii_uppercase())
                .collect::<Vec<_>>()
        })
        .collect();
    let mut headers: Vec<(Vec<u8>, Vec<u8>)> = parsed
        .headers
        .iter()
        .filter(|(name, _)| !dropped_by_ferry(name) && !connection_options.contains(name))
        .cloned()
        .collect();
    let mut target = parsed.target.clone();
    let lower = parsed.target.to_ascii_lowercase();
    let scheme_len = [&b"http://"[..], b"https://"]
        .iter()
        .find(|s| lower.starts_with(s))
        .map(|s| s.len());
    if let Some(scheme_len) = scheme_len {
        // Absolute-form: origin-form towards the app, the authority (without userinfo) as Host.
        let rest = &parsed.target[scheme_len..];
        let authority_len = rest
            .iter()
            .position(|b| *b == b'/' || *b == b'?')
            .unwrap_or(rest.len());
        let authority = &rest[..authority_len];
        let host = authority
            .rsplit(|b| *b == b'@')
            .next()
            .unwrap_or(authority)
            .to_vec();
        target = rest[authority_len..].to_vec();
        if !target.starts_with(b"/") {
            target.insert(0, b'/');
        }
        headers.retain(|(name, _)| name != b"HOST");
        headers.insert(0, (b"HOST".to_vec(), host));
    }
    let framed = parsed
        .headers
        .iter()
        .any(|(name, _)| name == b"CONTENT-LENGTH" || name == b"TRANSFER-ENCODING");
    let forwarded_host = headers
        .iter()
        .find(|(name, _)| name == b"HOST")
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty());
    AtTheApp {
        method: parsed.method.clone(),
        target,
        headers,
        body: parsed.body.clone(),
        content_length: framed.then_some(parsed.body.len()),
        forwarded_host,
    }
}

fn show(bytes: &[u8]) -> String {
    ferry_http::corpus::show(bytes, 80)
}

fn show_fields(fields: &[(Vec<u8>, Vec<u8>)]) -> String {
    fields
        .iter()
        .map(|(n, v)| format!("{}: {}", show(n), show(v)))
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Differences between what the app got and what it should have got.
fn compare(expected: &AtTheApp, got: &Record) -> Vec<String> {
    let mut differences = Vec::new();
    let mut differ = |what: &str, want: String, got: String| {
        if want != got {
            differences.push(format!("{what}: expected {want}, app got {got}"));
        }
    };
    differ("method", show(&expected.method), show(&got.method));
    differ("target", show(&expected.target), show(&got.target));
    differ("version", "HTTP/1.1".into(), show(&got.version));
    let client_fields: Vec<(Vec<u8>, Vec<u8>)> = got
        .headers
        .iter()
        .filter(|(name, _)| !added_by_ferry(name))
        .map(|(name, value)| (name.to_ascii_uppercase(), value.clone()))
        .collect();
    differ(
        "fields",
        show_fields(&expected.headers),
        show_fields(&client_fields),
    );
    let all = |name: &str| -> Vec<String> {
        got.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| show(v))
            .collect()
    };
    differ(
        "X-Forwarded-For",
        "[\"127.0.0.1\"]".into(),
        format!("{:?}", all("x-forwarded-for")),
    );
    differ(
        "X-Forwarded-Proto",
        "[\"http\"]".into(),
        format!("{:?}", all("x-forwarded-proto")),
    );
    let host: Vec<String> = expected.forwarded_host.iter().map(|h| show(h)).collect();
    differ(
        "X-Forwarded-Host",
        format!("{host:?}"),
        format!("{:?}", all("x-forwarded-host")),
    );
    let length: Vec<String> = expected
        .content_length
        .iter()
        .map(|l| l.to_string())
        .collect();
    differ(
        "Content-Length",
        format!("{length:?}"),
        format!("{:?}", all("content-length")),
    );
    differ("body", show(&expected.body), show(&got.body));
    differences
}

/// What happened to one case.
#[derive(Debug)]
struct Outcome {
    /// Status of each response ferry sent, in order.
    statuses: Vec<u16>,
    /// How the exchange ended, when not with a plain close (a reset, a broken response).
    trouble: Option<String>,
    /// Requests the app received meanwhile.
    records: Vec<Record>,
}

/// How a case's bytes are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Feed {
    /// In one write.
    Whole,
    /// One byte per write (TCP_NODELAY: a segment each) for the first KiB, then 1 KiB pieces,
    /// all of it whatever ferry answers meanwhile (pipelined requests follow their first).
    Split,
}

/// Bytes written one at a time at the start of a [`Feed::Split`] case.
const BYTEWISE_PREFIX: usize = 1024;

fn feed(conn: &mut RawConn, bytes: &[u8], how: Feed) {
    if how == Feed::Whole {
        conn.send(bytes);
        return;
    }
    let (prefix, rest) = bytes.split_at(bytes.len().min(BYTEWISE_PREFIX));
    let pieces = prefix.chunks(1).chain(rest.chunks(1024));
    for piece in pieces {
        if conn.send(piece) < piece.len() {
            return; // ferry refused and closed
        }
    }
}

fn run_case(
    addr: SocketAddr,
    app: &RecordingApp,
    seen: &mut usize,
    case: &Case,
    how: Feed,
) -> Outcome {
    let wanted = match &case.expectation {
        Expectation::Forward(requests) => requests.len().max(1),
        Expectation::Reject { .. } => 1,
    };
    let mut conn = RawConn::connect(addr);
    let mut statuses = Vec::new();
    let mut trouble = None;
    feed(&mut conn, &case.bytes, how);
    let mut half_closed = false;
    loop {
        if statuses.len() >= wanted && !half_closed {
            // Anything ferry still holds (a pipelined rest) it answers or drops now; then it
            // closes.
            conn.half_close();
            half_closed = true;
        }
        match conn.read_response() {
            Ok(Some(response)) => statuses.push(response.status),
            Ok(None) => break,
            Err(e) => {
                trouble = Some(e.to_string());
                break;
            }
        }
    }
    if conn.reset {
        trouble.get_or_insert_with(|| "connection reset".into());
    }
    drop(conn);
    let records = app.records();
    let new = records[*seen..].to_vec();
    *seen = records.len();
    Outcome {
        statuses,
        trouble,
        records: new,
    }
}

fn trouble(outcome: &Outcome) -> String {
    outcome
        .trouble
        .as_ref()
        .map_or(String::new(), |t| format!(" ({t})"))
}

/// `Ok` if ferry did what the case expects, else what differs.
fn check(case: &Case, outcome: &Outcome) -> Result<(), String> {
    match &case.expectation {
        Expectation::Reject { gunicorn_error } => {
            let refused = outcome
                .statuses
                .first()
                .is_some_and(|s| (400..600).contains(s));
            if refused && outcome.records.is_empty() {
                return Ok(());
            }
            let first = outcome.records.first();
            let first = first.map_or(String::new(), |r| {
                format!(": {} {}", show(&r.method), show(&r.target))
            });
            Err(format!(
                "gunicorn refuses it ({gunicorn_error}); ferry answered {:?}{}, \
                 the app got {} request(s){first}",
                outcome.statuses,
                trouble(outcome),
                outcome.records.len(),
            ))
        }
        Expectation::Forward(requests) => {
            let mut problems = Vec::new();
            if outcome.statuses != vec![200; requests.len()] {
                problems.push(format!(
                    "ferry answered {:?}{}, expected the app's 200 for each of {} request(s)",
                    outcome.statuses,
                    trouble(outcome),
                    requests.len()
                ));
            }
            if outcome.records.len() != requests.len() {
                problems.push(format!(
                    "the app got {} request(s), gunicorn parsed {}",
                    outcome.records.len(),
                    requests.len()
                ));
            }
            for (i, (parsed, record)) in requests.iter().zip(&outcome.records).enumerate() {
                for difference in compare(&at_the_app(parsed), record) {
                    problems.push(format!("request {i}: {difference}"));
                }
            }
            if problems.is_empty() {
                Ok(())
            } else {
                Err(problems.join("\n    "))
            }
        }
    }
}

#[test]
#[ignore = "needs FERRY_GUNICORN_CORPUS, the corpus directory; run with --ignored"]
fn gunicorn_corpus_through_ferry_reaches_the_app_as_gunicorn_parses_it() {
    let cases = load_cases();
    let parser_deviations = read_deviations(&repo_root().join("http/src/corpus_deviations.txt"));
    let proxy_deviations = read_deviations(&repo_root().join("tests/corpus_deviations.txt"));
    let mut failures = Vec::new();
    for name in proxy_deviations
        .keys()
        .filter(|name| parser_deviations.contains_key(*name))
    {
        failures.push(format!(
            "{name}: listed in tests/corpus_deviations.txt and in the parser's list; keep one"
        ));
    }
    failures.extend(unknown_deviations(
        &cases,
        parser_deviations.keys(),
        "http/src/corpus_deviations.txt",
    ));
    failures.extend(unknown_deviations(
        &cases,
        proxy_deviations.keys(),
        "tests/corpus_deviations.txt",
    ));

    let app = RecordingApp::new();
    // Short head and body timeouts: a case that leaves a request unfinished gets its 408 soon.
    let ferry = app.start_ferry(&[
        "--min-instances",
        "1",
        "--concurrency",
        "1",
        "--header-timeout",
        "1",
        "--body-timeout",
        "1",
    ]);
    ferry.wait_ready(1, LIMIT);
    let mut seen = 0;
    // Sends the case whole and in pieces, which must agree, and checks the answer.
    let mut run = |case: &Case, failures: &mut Vec<String>| -> Result<(), String> {
        let outcome = run_case(ferry.addr(), &app, &mut seen, case, Feed::Whole);
        let split = run_case(ferry.addr(), &app, &mut seen, case, Feed::Split);
        if (&split.statuses, &split.records) != (&outcome.statuses, &outcome.records) {
            failures.push(format!(
                "{}: fed in pieces, ferry answered {:?}{} and the app got {:?}; \
                 fed whole, {:?}{} and {:?}",
                case.name,
                split.statuses,
                trouble(&split),
                split
                    .records
                    .iter()
                    .map(|r| show(&r.target))
                    .collect::<Vec<_>>(),
                outcome.statuses,
                trouble(&outcome),
                outcome
                    .records
                    .iter()
                    .map(|r| show(&r.target))
                    .collect::<Vec<_>>(),
            ));
        }
        check(case, &outcome)
    };
    for case in &cases {
        let verdict = verdict(case, |case| run(case, &mut failures));
        let listed = parser_deviations
            .get(&case.name)
            .or_else(|| proxy_deviations.get(&case.name));
        if let Some(failure) = failure(verdict, listed.map(String::as_str), DEVIATIONS_LISTS) {
            failures.push(format!("{}: {failure}", case.name));
        }
    }

    // Nothing is left over: a last request is the only one the app gets after the corpus.
    let mut conn = RawConn::connect(ferry.addr());
    conn.send(b"GET /sentinel HTTP/1.1\r\nHost: corpus\r\n\r\n");
    let response = conn
        .read_response()
        .expect("the sentinel's response")
        .expect("a response");
    assert_eq!(response.status, 200);
    let late: Vec<Vec<u8>> = wait_for("the sentinel recorded", LIMIT, || {
        let records = app.records();
        (records.len() > seen).then(|| records[seen..].iter().map(|r| r.target.clone()).collect())
    });
    if late != [b"/sentinel".to_vec()] {
        failures.push(format!(
            "requests reached the app after their case was over: {:?}",
            late.iter().map(|t| show(t)).collect::<Vec<_>>()
        ));
    }

    assert!(
        failures.is_empty(),
        "{} corpus failures through ferry:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
