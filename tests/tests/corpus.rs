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
//! (`driver/src/http/corpus_deviations.txt`, read at run time) and the proxy's own
//! (`tests/corpus_deviations.txt`). The test fails on any other mismatch and on a listed case
//! that now matches.
//!
//! gunicorn accepts HTTP/1.1 requests without Host, which ferry refuses (RFC 9112 §3.2). So
//! that this refusal hides nothing a case was written to test, a case with such requests is
//! also sent with a Host line added to each of them ([`with_host`]) and judged on that: a case
//! gunicorn refuses must still be refused, and a case that then matches gunicorn is listed as
//! differing only by the Host rule ([`HOST_RULE`]).

use ferry_e2e::{latin1_bytes, repo_root, wait_for, RawConn, Record, RecordingApp};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

/// The corpus sits next to the repository: `<repo>/../shared/corpora/gunicorn-requests`.
fn corpus_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora/gunicorn-requests");
    assert!(
        dir.join("manifest.json").is_file(),
        "gunicorn request corpus not found at {}: this test needs ../shared/corpora/\
         gunicorn-requests (with manifest.json) next to the repository root",
        dir.display()
    );
    dir
}

/// A request as gunicorn parsed it (names upper-cased, as it reports them).
#[derive(Debug, Clone)]
struct Parsed {
    method: Vec<u8>,
    target: Vec<u8>,
    version: (u64, u64),
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    body: Vec<u8>,
}

#[derive(Clone)]
enum Expectation {
    Reject { gunicorn_error: String },
    Forward(Vec<Parsed>),
}

#[derive(Clone)]
struct Case {
    name: String,
    bytes: Vec<u8>,
    expectation: Expectation,
}

fn load_cases() -> Vec<Case> {
    let dir = corpus_dir();
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(dir.join("manifest.json")).expect("read manifest.json"),
    )
    .expect("manifest.json is JSON");
    let text = |value: &Value| latin1_bytes(value.as_str().expect("a string"));
    manifest["cases"]
        .as_array()
        .expect("manifest has a cases array")
        .iter()
        .map(|case| {
            let name = case["name"].as_str().expect("case name").to_string();
            let file = dir.join(case["file"].as_str().expect("case file"));
            let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let expectation = match case["expect"].as_str() {
                Some("reject") => Expectation::Reject {
                    gunicorn_error: case["gunicorn_error"].as_str().unwrap_or("").to_string(),
                },
                Some("forward") => Expectation::Forward(
                    case["requests"]
                        .as_array()
                        .expect("requests")
                        .iter()
                        .map(|request| Parsed {
                            method: text(&request["method"]),
                            target: text(&request["target"]),
                            version: (
                                request["version"][0].as_u64().expect("major version"),
                                request["version"][1].as_u64().expect("minor version"),
                            ),
                            headers: request["headers"]
                                .as_array()
                                .expect("headers")
                                .iter()
                                .map(|pair| (text(&pair[0]).to_ascii_uppercase(), text(&pair[1])))
                                .collect(),
                            body: ferry_e2e::base64_decode(
                                request["body_b64"].as_str().expect("body_b64"),
                            ),
                        })
                        .collect(),
                ),
                other => panic!("{name}: unknown expectation {other:?}"),
            };
            Case {
                name,
                bytes,
                expectation,
            }
        })
        .collect()
}

/// How the deviations list's reason begins for a case that differs only because an HTTP/1.1
/// request of it has no Host.
const HOST_RULE: &str = "HTTP/1.1 request without Host is 400";

/// The Host field line [`with_host`] adds.
const ADDED_HOST: (&[u8], &[u8]) = (b"Host", b"corpus.test");

/// The case with a Host line added right after the request line of each HTTP/1.1 request
/// that has none (for a refused case, its first request, if that head has no Host line), and
/// the app expected to see that Host; `None` if there is no such request, or a request line
/// gunicorn reports is not found in the bytes as such.
fn with_host(case: &Case) -> Option<Case> {
    let (name, value) = ADDED_HOST;
    let line = [name, b": ", value, b"\r\n"].concat();
    let mut bytes = case.bytes.clone();
    let mut expectation = case.expectation.clone();
    // Offsets just after the CRLF of each request line that gets the Host line.
    let mut sites = Vec::new();
    match &mut expectation {
        Expectation::Forward(requests) => {
            let mut pos = 0;
            for request in requests.iter_mut() {
                let (major, minor) = request.version;
                let request_line = [
                    &request.method[..],
                    b" ",
                    &request.target,
                    format!(" HTTP/{major}.{minor}\r\n").as_bytes(),
                ]
                .concat();
                let at = pos + find(&bytes[pos..], &request_line)?;
                pos = at + request_line.len();
                if request.version == (1, 1) && !request.headers.iter().any(|(n, _)| n == b"HOST") {
                    sites.push(pos);
                    request
                        .headers
                        .insert(0, (name.to_ascii_uppercase(), value.to_vec()));
                }
            }
        }
        Expectation::Reject { .. } => {
            let start = bytes.iter().position(|&b| b != b'\r' && b != b'\n')?;
            let head = &bytes[start..];
            let head = &head[..find(head, b"\r\n\r\n").map_or(head.len(), |end| end + 2)];
            let line_end = find(head, b"\r\n")?;
            let names_host = head
                .split(|&b| b == b'\n')
                .any(|l| l.len() >= 5 && l[..5].eq_ignore_ascii_case(b"host:"));
            if head[..line_end].ends_with(b" HTTP/1.1") && !names_host {
                sites.push(start + line_end + 2);
            }
        }
    }
    for site in sites.iter().rev() {
        bytes.splice(site..site, line.iter().copied());
    }
    (!sites.is_empty()).then(|| Case {
        name: case.name.clone(),
        bytes,
        expectation,
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// How a case compares with gunicorn.
enum Verdict {
    Matches,
    /// Only because ferry refuses HTTP/1.1 requests without Host: with one added, it matches.
    DiffersByHostRule,
    Differs(String),
}

/// `<case name> <reason>` lines; `#` comments and blank lines skipped.
fn read_deviations(path: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (name, reason) = line.split_once(' ').unwrap_or((line, ""));
            assert!(
                !reason.trim().is_empty(),
                "{}: deviation {name} needs a one-line reason",
                path.display()
            );
            (name.to_string(), reason.trim().to_string())
        })
        .collect()
}

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

fn at_the_app(parsed: &Parsed) -> AtTheApp {
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
    const SHOWN: usize = 80;
    let escaped = bytes[..bytes.len().min(SHOWN)].escape_ascii().to_string();
    if bytes.len() > SHOWN {
        format!("{escaped}...({} bytes)", bytes.len())
    } else {
        escaped
    }
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
fn gunicorn_corpus_through_ferry_reaches_the_app_as_gunicorn_parses_it() {
    let cases = load_cases();
    assert!(
        cases.len() > 100,
        "the corpus looks truncated: {} cases",
        cases.len()
    );
    let parser_deviations =
        read_deviations(&repo_root().join("driver/src/http/corpus_deviations.txt"));
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
    for name in parser_deviations.keys().chain(proxy_deviations.keys()) {
        if !cases.iter().any(|case| &case.name == name) {
            failures.push(format!(
                "{name}: listed as a deviation but not in the corpus"
            ));
        }
    }

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
        let plain = run(case, &mut failures);
        let verdict = match with_host(case) {
            None => plain.map_or_else(Verdict::Differs, |()| Verdict::Matches),
            Some(hosted) => match (run(&hosted, &mut failures), plain) {
                (Err(difference), _) => Verdict::Differs(format!("(Host line added) {difference}")),
                (Ok(()), Ok(())) => Verdict::Matches,
                (Ok(()), Err(_)) => Verdict::DiffersByHostRule,
            },
        };
        let listed = parser_deviations
            .get(&case.name)
            .or_else(|| proxy_deviations.get(&case.name));
        let for_host = listed.is_some_and(|reason| reason.starts_with(HOST_RULE));
        let failure = match (verdict, listed) {
            (Verdict::Matches, None) => None,
            (Verdict::Matches, Some(_)) => {
                Some("listed as a deviation but matches gunicorn now; remove the line".into())
            }
            (Verdict::DiffersByHostRule, _) if for_host => None,
            (Verdict::DiffersByHostRule, _) => Some(format!(
                "differs from gunicorn only by refusing an HTTP/1.1 request without Host; list \
                 it as \"{HOST_RULE} (RFC 9112 §3.2)\""
            )),
            (Verdict::Differs(difference), _) if for_host => Some(format!(
                "listed for the Host rule, but differs with a Host line too: {difference}"
            )),
            (Verdict::Differs(_), Some(_)) => None,
            (Verdict::Differs(difference), None) => Some(difference),
        };
        if let Some(failure) = failure {
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
