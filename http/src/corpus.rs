//! gunicorn's request corpus (tests/requests, converted to data), as both corpus tests read
//! it: the parser's (`http::corpus_tests`) and the end-to-end one through the real ferry
//! (`tests/tests/corpus.rs`, through the `corpus` feature). Test support only: compiled for
//! this crate's tests and with the `corpus` feature, never into the binary.
//!
//! Here: the cases and what gunicorn made of them ([`load_cases`]), the deviations lists
//! ([`parse_deviations`], [`read_deviations`]), and the judging both tests share. gunicorn
//! accepts HTTP/1.1 requests without Host, which ferry refuses (RFC 9112 §3.2). So that this
//! refusal hides nothing a case was written to test, a case with such requests is also run
//! with a Host line added to each of them ([`with_host`]) and judged on that run
//! ([`verdict`]): a case gunicorn refuses must still be refused, and a case that then matches
//! gunicorn is listed as differing only by the Host rule ([`HOST_RULE`], [`failure`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The environment variable that names the corpus directory. The corpus is not part of the
/// repository, so the corpus tests are `#[ignore]`d by default and run with `--ignored` when
/// this is set (`.ci/run` sets it when `../shared/corpora/gunicorn-requests` exists).
pub const CORPUS_ENV: &str = "FERRY_GUNICORN_CORPUS";

/// A request as parsed: what gunicorn reports for a case, or what ferry's parser made of it.
#[derive(Clone, PartialEq, Eq)]
pub struct ParsedRequest {
    pub method: Vec<u8>,
    pub target: Vec<u8>,
    pub version: (u64, u64),
    /// Upper-cased names, as gunicorn reports them.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub body: Vec<u8>,
    /// Upper-cased names; empty unless the body is chunked and has trailers.
    pub trailers: Vec<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for ParsedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const MAX_SHOWN_BYTES: usize = 60;
        let show = |bytes: &[u8]| show(bytes, MAX_SHOWN_BYTES);
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

/// Escaped, and shortened to `max` bytes, so a failure report stays readable.
pub fn show(bytes: &[u8], max: usize) -> String {
    let escaped = bytes[..bytes.len().min(max)].escape_ascii().to_string();
    if bytes.len() > max {
        format!("{escaped}...({} bytes)", bytes.len())
    } else {
        escaped
    }
}

/// One corpus case: the bytes a client sends on one connection, and what gunicorn made of them.
#[derive(Clone)]
pub struct Case {
    pub name: String,
    pub bytes: Vec<u8>,
    pub expectation: Expectation,
}

#[derive(Clone)]
pub enum Expectation {
    Reject { gunicorn_error: String },
    Forward(Vec<ParsedRequest>),
}

/// The corpus directory named by [`CORPUS_ENV`]; panics, saying what to set, if it is not
/// given or holds no corpus: a corpus test that runs must have its corpus.
pub fn corpus_dir() -> PathBuf {
    let Some(dir) = std::env::var_os(CORPUS_ENV) else {
        panic!(
            "{CORPUS_ENV} is not set: point it at a directory holding gunicorn's request corpus \
             (manifest.json and its cases), e.g. {CORPUS_ENV}=../shared/corpora/gunicorn-requests"
        );
    };
    let dir = PathBuf::from(dir);
    assert!(
        dir.join("manifest.json").is_file(),
        "{CORPUS_ENV}={} holds no gunicorn request corpus (no manifest.json there)",
        dir.display()
    );
    dir
}

/// Every case of the manifest, in its order; panics if the corpus looks truncated.
pub fn load_cases() -> Vec<Case> {
    let dir = corpus_dir();
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(dir.join("manifest.json")).expect("read manifest.json"),
    )
    .expect("manifest.json is JSON");
    let cases: Vec<Case> = manifest["cases"]
        .as_array()
        .expect("manifest has a cases array")
        .iter()
        .map(|case| {
            let name = case["name"].as_str().expect("case name").to_owned();
            let file = dir.join(case["file"].as_str().expect("case file"));
            let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let expectation = match case["expect"].as_str() {
                Some("reject") => Expectation::Reject {
                    gunicorn_error: case["gunicorn_error"].as_str().unwrap_or("").to_owned(),
                },
                Some("forward") => Expectation::Forward(
                    case["requests"]
                        .as_array()
                        .expect("requests")
                        .iter()
                        .map(expected_request)
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
        .collect();
    assert!(
        cases.len() > 100,
        "the corpus looks truncated: {} cases",
        cases.len()
    );
    cases
}

fn expected_request(request: &Value) -> ParsedRequest {
    let text = |value: &Value| latin1_bytes(value.as_str().expect("a string"));
    let pairs = |pairs: &[Value]| -> Vec<(Vec<u8>, Vec<u8>)> {
        pairs
            .iter()
            .map(|pair| (text(&pair[0]).to_ascii_uppercase(), text(&pair[1])))
            .collect()
    };
    let version = &request["version"];
    ParsedRequest {
        method: text(&request["method"]),
        target: text(&request["target"]),
        version: (
            version[0].as_u64().expect("major version"),
            version[1].as_u64().expect("minor version"),
        ),
        headers: pairs(request["headers"].as_array().expect("headers")),
        body: base64_decode(request["body_b64"].as_str().expect("body_b64")),
        trailers: request["trailers"]
            .as_array()
            .map_or_else(Vec::new, |trailers| pairs(trailers)),
    }
}

/// Bytes from a string whose characters stand for bytes (latin-1), as Python's
/// `bytes.decode("latin-1")` makes them (and gunicorn's byte strings are in the manifest).
pub fn latin1_bytes(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).expect("a latin-1 character"))
        .collect()
}

/// Standard base64 (padding optional) to bytes.
pub fn base64_decode(text: &str) -> Vec<u8> {
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
            group.iter().fold(0u32, |acc, &c| (acc << 6) | sextet(c)) << (6 * (4 - group.len()));
        out.extend_from_slice(&bits.to_be_bytes()[1..group.len()]);
    }
    out
}

/// `<case name> <reason>` lines of a deviations list (`source` names it in a panic); `#`
/// comments and blank lines skipped. Every line needs a reason.
pub fn parse_deviations(text: &str, source: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (name, reason) = line.split_once(' ').unwrap_or((line, ""));
            assert!(
                !reason.trim().is_empty(),
                "{source}: deviation {name} needs a one-line reason"
            );
            (name.to_owned(), reason.trim().to_owned())
        })
        .collect()
}

/// [`parse_deviations`] of the file at `path`, read at run time.
pub fn read_deviations(path: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse_deviations(&text, &path.display().to_string())
}

/// How the deviations list's reason begins for a case that differs only because an HTTP/1.1
/// request of it has no Host.
pub const HOST_RULE: &str = "HTTP/1.1 request without Host is 400";

/// The Host field line [`with_host`] adds.
pub const ADDED_HOST: (&[u8], &[u8]) = (b"Host", b"corpus.test");

/// The case with a Host line added right after the request line of each HTTP/1.1 request
/// that has none (for a refused case, its first request, if that head has no Host line), and
/// the app expected to see that Host; `None` if there is no such request, or a request line
/// gunicorn reports is not found in the bytes as such.
pub fn with_host(case: &Case) -> Option<Case> {
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

/// Where `needle` first stands in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// How a case compares with gunicorn.
pub enum Verdict {
    Matches,
    /// Only because ferry refuses HTTP/1.1 requests without Host: with one added, it matches.
    DiffersByHostRule,
    Differs(String),
}

/// Runs the case with `run` (`Ok` if ferry did what the case expects, else what differs),
/// and again with [`with_host`]'s Host lines if it has requests without Host, and judges.
pub fn verdict(case: &Case, mut run: impl FnMut(&Case) -> Result<(), String>) -> Verdict {
    let plain = run(case);
    let Some(hosted) = with_host(case) else {
        return plain.map_or_else(Verdict::Differs, |()| Verdict::Matches);
    };
    match (run(&hosted), plain) {
        (Err(difference), _) => Verdict::Differs(format!("(Host line added) {difference}")),
        (Ok(()), Ok(())) => Verdict::Matches,
        (Ok(()), Err(_)) => Verdict::DiffersByHostRule,
    }
}

/// What is wrong with a case's verdict given its deviations-list reason (`listed`), if
/// anything; `list` names the list(s) in the message.
pub fn failure(verdict: Verdict, listed: Option<&str>, list: &str) -> Option<String> {
    let for_host = listed.is_some_and(|reason| reason.starts_with(HOST_RULE));
    match (verdict, listed) {
        (Verdict::Matches, None) => None,
        (Verdict::Matches, Some(_)) => Some(format!(
            "listed in {list} but now matches gunicorn; remove the line"
        )),
        (Verdict::DiffersByHostRule, _) if for_host => None,
        (Verdict::DiffersByHostRule, _) => Some(format!(
            "differs from gunicorn only by refusing an HTTP/1.1 request without Host; list it in \
             {list} as \"{HOST_RULE} (RFC 9112 §3.2)\""
        )),
        (Verdict::Differs(difference), _) if for_host => Some(format!(
            "listed for the Host rule, but differs with a Host line too: {difference}"
        )),
        (Verdict::Differs(_), Some(_)) => None,
        (Verdict::Differs(difference), None) => Some(difference),
    }
}

/// A failure for each listed name that is no case of the corpus.
pub fn unknown_deviations<'a>(
    cases: &[Case],
    listed: impl IntoIterator<Item = &'a String>,
    list: &str,
) -> Vec<String> {
    listed
        .into_iter()
        .filter(|name| !cases.iter().any(|case| case.name == **name))
        .map(|name| format!("{name}: listed in {list} but not in the corpus"))
        .collect()
}

#[test]
fn base64_decoding_works() {
    assert_eq!(base64_decode("eyJub20iOiAibm9tIn0="), br#"{"nom": "nom"}"#);
    assert_eq!(base64_decode(""), b"");
    assert_eq!(base64_decode("YQ=="), b"a");
    assert_eq!(base64_decode("YWI="), b"ab");
}
