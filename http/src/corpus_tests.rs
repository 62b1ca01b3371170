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
//! also run with a Host line added to each of them ([`super::corpus::with_host`]) and judged
//! on that run: a case gunicorn refuses must still be refused, and a case that then matches
//! gunicorn is listed as differing only by the Host rule ([`super::corpus::HOST_RULE`]). The
//! corpus, the list and that judging are shared with the end-to-end corpus test
//! ([`super::corpus`]).

use super::corpus::{
    failure, load_cases, parse_deviations, unknown_deviations, verdict, Case, Expectation,
    ParsedRequest,
};
use super::split_feeding::split_patterns;
use super::*;

const DEVIATIONS: &str = include_str!("corpus_deviations.txt");

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
    received: Vec<ParsedRequest>,
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
                    received.push(ParsedRequest {
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

#[test]
#[ignore = "needs FERRY_GUNICORN_CORPUS, the corpus directory; run with --ignored"]
fn gunicorn_corpus_matches_except_listed_deviations() {
    const LIST: &str = "corpus_deviations.txt";
    let cases = load_cases();
    let deviations = parse_deviations(DEVIATIONS, LIST);
    let mut failures = Vec::new();
    for case in &cases {
        let verdict = verdict(case, |case| check(case, &run_every_way(case)));
        let listed = deviations.get(&case.name).map(String::as_str);
        if let Some(failure) = failure(verdict, listed, LIST) {
            failures.push(format!("{}: {failure}", case.name));
        }
    }
    failures.extend(unknown_deviations(&cases, deviations.keys(), LIST));
    assert!(
        failures.is_empty(),
        "{} corpus failures:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
