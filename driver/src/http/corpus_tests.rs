//! gunicorn's request corpus (tests/requests, converted to data) run through ferry's parser
//! the way the event loop uses it: a connection's bytes arrive in pieces, heads are parsed
//! with a resumable [`RequestParser`], bodies framed with a [`BodyReader`], and the next
//! pipelined request starts in the leftover bytes.
//!
//! Cases where ferry deliberately differs are listed in `corpus_deviations.txt`, one line
//! each with the reason. The test fails on an unlisted mismatch and on a listed case that now
//! matches, so the list stays honest.
//!
//! gunicorn accepts HTTP/1.1 requests without Host, which ferry refuses (RFC 9112 §3.2). So
//! that this refusal hides nothing a case was written to test, a case with such requests is
//! also run with a Host line added to each of them ([`with_host`]) and judged on that run: a
//! case gunicorn refuses must still be refused, and a case that then matches gunicorn is
//! listed as differing only by the Host rule ([`HOST_RULE`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::split_feeding::split_patterns;
use super::*;

/// The corpus lives outside the repository, next to it: `/work/shared/...` locally and
/// `../shared/...` relative to the repository root in CI.
const CORPUS_DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/corpora/gunicorn-requests"
);
const DEVIATIONS: &str = include_str!("corpus_deviations.txt");

/// What the app would receive for one request.
#[derive(Clone, PartialEq, Eq)]
struct Received {
    method: Vec<u8>,
    target: Vec<u8>,
    version: (u64, u64),
    /// Upper-cased names, as gunicorn reports them.
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    body: Vec<u8>,
    trailers: Vec<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for Received {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pairs = |pairs: &[(Vec<u8>, Vec<u8>)]| {
            pairs
                .iter()
                .map(|(n, v)| format!("{}: {}", show(n), show(v)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        write!(
            f,
            "{} {} HTTP/{}.{} [{}] body {} trailers [{}]",
            show(&self.method),
            show(&self.target),
            self.version.0,
            self.version.1,
            pairs(&self.headers),
            show(&self.body),
            pairs(&self.trailers)
        )
    }
}

/// Escaped and shortened, so a failure report stays readable.
fn show(bytes: &[u8]) -> String {
    const MAX_SHOWN_BYTES: usize = 60;
    let escaped = bytes[..bytes.len().min(MAX_SHOWN_BYTES)]
        .escape_ascii()
        .to_string();
    if bytes.len() > MAX_SHOWN_BYTES {
        format!("{escaped}...({} bytes)", bytes.len())
    } else {
        escaped
    }
}

/// How the connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    /// ferry refused a message.
    Refused(HttpError),
    /// No more bytes, at a message boundary, or a request ended the connection.
    Clean,
    /// The client went quiet mid-head; ferry would time out (408) and close.
    MidHead,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Connection {
    received: Vec<Received>,
    end: End,
}

enum Phase {
    Head,
    Body(Box<BodyPhase>),
}

struct BodyPhase {
    head: RequestHead,
    reader: BodyReader,
    body_start: usize,
    body_end: usize,
    data: Vec<u8>,
}

/// Plays `input` into a connection, arriving in `pieces`, then closes it.
fn run_connection(input: &[u8], pieces: &[usize]) -> Connection {
    let limits = Limits::default();
    let mut parser = RequestParser::new(limits);
    let mut received = Vec::new();
    let mut request_start = 0;
    let mut arrived = 0;
    let mut phase = Phase::Head;
    for piece in pieces {
        arrived += piece;
        loop {
            match &mut phase {
                Phase::Head => match parser.parse(&input[request_start..arrived]) {
                    Err(error) => {
                        return Connection {
                            received,
                            end: End::Refused(error),
                        }
                    }
                    Ok(None) => break,
                    Ok(Some(head)) => {
                        let body_start = request_start + head.head_len;
                        phase = Phase::Body(Box::new(BodyPhase {
                            head: head.clone(),
                            reader: BodyReader::for_request(head.framing, &limits),
                            body_start,
                            body_end: body_start,
                            data: Vec::new(),
                        }));
                    }
                },
                Phase::Body(body) => {
                    let BodyPhase {
                        head,
                        reader,
                        body_start,
                        body_end,
                        data,
                    } = &mut **body;
                    let progress = match reader.feed_into(&input[*body_end..arrived], data) {
                        Ok(progress) => progress,
                        Err(error) => {
                            return Connection {
                                received,
                                end: End::Refused(error),
                            }
                        }
                    };
                    *body_end += progress.consumed;
                    if !progress.done {
                        break;
                    }
                    let buf = &input[request_start..*body_start];
                    received.push(Received {
                        method: head.method(buf).to_vec(),
                        target: head.target(buf).to_vec(),
                        version: match head.version {
                            Version::Http10 => (1, 0),
                            Version::Http11 => (1, 1),
                        },
                        headers: head
                            .headers(buf)
                            .map(|(n, v)| (n.to_ascii_uppercase(), v.to_vec()))
                            .collect(),
                        body: std::mem::take(data),
                        trailers: reader
                            .chunked()
                            .map(|d| {
                                d.trailers()
                                    .map(|(n, v)| (n.to_ascii_uppercase(), v.to_vec()))
                                    .collect()
                            })
                            .unwrap_or_default(),
                    });
                    if !head.keep_alive {
                        return Connection {
                            received,
                            end: End::Clean,
                        };
                    }
                    request_start = *body_end;
                    parser.reset();
                    phase = Phase::Head;
                }
            }
        }
    }
    let end = match phase {
        Phase::Head if request_start == arrived => End::Clean,
        Phase::Head => End::MidHead,
        Phase::Body(mut body) => match body.reader.finish_at_eof() {
            Ok(()) => unreachable!("request bodies are never close-delimited"),
            Err(error) => End::Refused(error),
        },
    };
    Connection { received, end }
}

#[derive(Clone)]
struct Case {
    name: String,
    bytes: Vec<u8>,
    expectation: Expectation,
}

#[derive(Clone)]
enum Expectation {
    Reject { gunicorn_error: String },
    Forward(Vec<Received>),
}

fn corpus_dir() -> PathBuf {
    let dir = Path::new(CORPUS_DIR);
    assert!(
        dir.join("manifest.json").is_file(),
        "gunicorn request corpus not found at {} (expected ../shared/corpora/gunicorn-requests \
         next to the repository root, with manifest.json); it is required for this test",
        dir.display()
    );
    dir.to_path_buf()
}

fn load_cases() -> Vec<Case> {
    let dir = corpus_dir();
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap())
            .expect("manifest.json is JSON");
    let cases = manifest["cases"]
        .as_array()
        .expect("manifest has a cases array");
    cases
        .iter()
        .map(|case| {
            let name = case["name"].as_str().unwrap().to_owned();
            let file = dir.join(case["file"].as_str().unwrap());
            let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let expectation = match case["expect"].as_str().unwrap() {
                "reject" => Expectation::Reject {
                    gunicorn_error: case["gunicorn_error"].as_str().unwrap_or("").to_owned(),
                },
                "forward" => Expectation::Forward(
                    case["requests"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(expected_request)
                        .collect(),
                ),
                other => panic!("{name}: unknown expectation {other}"),
            };
            Case {
                name,
                bytes,
                expectation,
            }
        })
        .collect()
}

fn expected_request(request: &Value) -> Received {
    let pairs = |value: &Value| -> Vec<(Vec<u8>, Vec<u8>)> {
        value
            .as_array()
            .map(|pairs| {
                pairs
                    .iter()
                    .map(|pair| (latin1(&pair[0]).to_ascii_uppercase(), latin1(&pair[1])))
                    .collect()
            })
            .unwrap_or_default()
    };
    let version = &request["version"];
    Received {
        method: latin1(&request["method"]),
        target: latin1(&request["target"]),
        version: (version[0].as_u64().unwrap(), version[1].as_u64().unwrap()),
        headers: pairs(&request["headers"]),
        body: base64_decode(request["body_b64"].as_str().unwrap()),
        trailers: pairs(&request["trailers"]),
    }
}

/// The manifest holds byte strings decoded as latin-1 (as gunicorn does); map them back.
fn latin1(value: &Value) -> Vec<u8> {
    value
        .as_str()
        .unwrap()
        .chars()
        .map(|c| u8::try_from(u32::from(c)).expect("latin-1 character"))
        .collect()
}

fn base64_decode(text: &str) -> Vec<u8> {
    let sextet = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let symbols: Vec<u8> = text.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(symbols.len() * 3 / 4);
    for group in symbols.chunks(4) {
        let bits =
            group.iter().fold(0u32, |acc, &c| acc << 6 | sextet(c)) << (6 * (4 - group.len()));
        out.extend_from_slice(&bits.to_be_bytes()[1..group.len()]);
    }
    out
}

/// `Ok` if ferry's behaviour matches the case's expectation, else what differs.
fn check(case: &Case, connection: &Connection) -> Result<(), String> {
    match &case.expectation {
        Expectation::Reject { gunicorn_error } => match &connection.end {
            // Nothing reaches the app: refused, or never complete (ferry buffers every body
            // before forwarding, so a request cut short is never sent on).
            End::Refused(_) | End::MidHead if connection.received.is_empty() => Ok(()),
            _ => Err(format!(
                "gunicorn refuses ({gunicorn_error}) but ferry gave {connection:?}"
            )),
        },
        Expectation::Forward(expected) => {
            if connection.received == *expected && !matches!(connection.end, End::Refused(_)) {
                Ok(())
            } else {
                Err(format!(
                    "expected {expected:?}\n  ferry gave {connection:?}"
                ))
            }
        }
    }
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

/// Runs the case's bytes whole, then in every split pattern, which must agree.
fn run_every_way(case: &Case) -> Connection {
    let whole = run_connection(&case.bytes, &[case.bytes.len()]);
    for pieces in split_patterns(case.bytes.len()) {
        let split = run_connection(&case.bytes, &pieces);
        assert_eq!(
            split, whole,
            "{}: a split feed disagrees with the whole one",
            case.name
        );
    }
    whole
}

/// How a case compares with gunicorn.
enum Verdict {
    Matches,
    /// Only because ferry refuses HTTP/1.1 requests without Host: with one added, it matches.
    DiffersByHostRule,
    Differs(String),
}

fn verdict(case: &Case) -> Verdict {
    let plain = check(case, &run_every_way(case));
    let Some(hosted) = with_host(case) else {
        return plain.map_or_else(Verdict::Differs, |()| Verdict::Matches);
    };
    match (check(&hosted, &run_every_way(&hosted)), plain) {
        (Err(difference), _) => Verdict::Differs(format!("(Host line added) {difference}")),
        (Ok(()), Ok(())) => Verdict::Matches,
        (Ok(()), Err(_)) => Verdict::DiffersByHostRule,
    }
}

fn deviations() -> BTreeMap<&'static str, &'static str> {
    DEVIATIONS
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (name, reason) = line.split_once(' ').unwrap_or((line, ""));
            assert!(
                !reason.trim().is_empty(),
                "deviation {name} needs a one-line reason"
            );
            (name, reason.trim())
        })
        .collect()
}

#[test]
fn gunicorn_corpus_matches_except_listed_deviations() {
    let cases = load_cases();
    assert!(
        cases.len() > 100,
        "the corpus looks truncated: {} cases",
        cases.len()
    );
    let deviations = deviations();
    let mut failures = Vec::new();
    for case in &cases {
        let listed = deviations.get(case.name.as_str());
        let for_host = listed.is_some_and(|reason| reason.starts_with(HOST_RULE));
        let failure = match (verdict(case), listed) {
            (Verdict::Matches, None) => None,
            (Verdict::Matches, Some(_)) => Some(
                "listed in corpus_deviations.txt but now matches gunicorn; remove the line".into(),
            ),
            (Verdict::DiffersByHostRule, _) if for_host => None,
            (Verdict::DiffersByHostRule, _) => Some(format!(
                "differs from gunicorn only by refusing an HTTP/1.1 request without Host; list \
                 it in corpus_deviations.txt as \"{HOST_RULE} (RFC 9112 §3.2)\""
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
    for name in deviations.keys() {
        if !cases.iter().any(|case| case.name == *name) {
            failures.push(format!(
                "{name}: listed in corpus_deviations.txt but not in the corpus"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} corpus failures:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn base64_decoding_works() {
    assert_eq!(base64_decode("eyJub20iOiAibm9tIn0="), br#"{"nom": "nom"}"#);
    assert_eq!(base64_decode(""), b"");
    assert_eq!(base64_decode("YQ=="), b"a");
    assert_eq!(base64_decode("YWI="), b"ab");
}
