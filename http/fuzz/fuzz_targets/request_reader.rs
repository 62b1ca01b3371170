//! A client connection's bytes, arriving in arbitrary pieces, read the way the proxy reads
//! them: a resumable [`RequestParser`] for each head, a [`BodyReader`] for its body, the next
//! pipelined request from the leftover bytes, and [`write_request_head`] for what goes to the
//! app.
//!
//! Checks: nothing panics; the whole input and the same input in pieces give the same
//! requests and the same ending; and every request ferry would forward parses again (with
//! ferry's own parser) as exactly one request, same method, Content-Length framing of exactly
//! the de-chunked body, and no byte left over: no forwarded request can smuggle another; and
//! httparse reads every head ferry accepts the same way (`ferry_http::oracle`).
#![no_main]

mod common;

use ferry_http::{
    write_request_head, BodyFraming, Peer, BodyReader, HttpError, Limits, RequestHead, RequestParser,
    TargetForm,
};
use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr};

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

#[derive(Debug, PartialEq)]
enum End {
    /// ferry refuses with this error (and closes).
    Refused(HttpError),
    /// The input ended between requests, or after a request that closes the connection.
    Clean,
    /// The input ended inside a head: ferry would time out.
    MidHead,
    /// The input ended inside a body.
    MidBody(Option<HttpError>),
}

#[derive(Debug, PartialEq)]
struct Connection {
    /// Each request as ferry sends it to the app: head and de-chunked body.
    forwarded: Vec<Vec<u8>>,
    end: End,
}

struct Body {
    head: RequestHead,
    head_bytes: Vec<u8>,
    reader: BodyReader,
    payload: Vec<u8>,
}

fn run(input: &[u8], pieces: &[usize], limits: Limits) -> Connection {
    let mut parser = RequestParser::new(limits);
    let mut buf: Vec<u8> = Vec::new();
    let mut body: Option<Body> = None;
    let mut forwarded = Vec::new();
    let mut at = 0;
    for &piece in pieces {
        buf.extend_from_slice(&input[at..at + piece]);
        at += piece;
        loop {
            if body.is_none() {
                if buf.is_empty() {
                    break;
                }
                let head = match parser.parse(&buf) {
                    Err(error) => {
                        return Connection {
                            forwarded,
                            end: End::Refused(error),
                        }
                    }
                    Ok(None) => break,
                    Ok(Some(head)) => head.clone(),
                };
                assert!(
                    head.head_len > 0 && head.head_len <= buf.len(),
                    "head_len {}",
                    head.head_len
                );
                ferry_http::oracle::assert_httparse_agrees(&buf, &head);
                let head_bytes: Vec<u8> = buf.drain(..head.head_len).collect();
                let reader = BodyReader::for_request(head.framing, &limits);
                body = Some(Body {
                    head,
                    head_bytes,
                    reader,
                    payload: Vec::new(),
                });
            }
            let state = body.as_mut().expect("a head is in");
            let progress = match state.reader.feed_into(&buf, &mut state.payload) {
                Err(error) => {
                    return Connection {
                        forwarded,
                        end: End::Refused(error),
                    }
                }
                Ok(progress) => progress,
            };
            assert!(progress.consumed <= buf.len());
            buf.drain(..progress.consumed);
            if !progress.done {
                break;
            }
            let state = body.take().expect("a head is in");
            assert!(
                state.payload.len() as u64 <= limits.max_body_size,
                "body over the limit"
            );
            forwarded.push(forward_checked(&state));
            if !state.head.keep_alive {
                return Connection {
                    forwarded,
                    end: End::Clean,
                };
            }
            parser.reset();
        }
    }
    let end = match body {
        Some(mut state) => End::MidBody(state.reader.finish_at_eof().err()),
        None if buf.is_empty() => End::Clean,
        None => End::MidHead,
    };
    Connection { forwarded, end }
}

/// The request ferry sends to the app, checked to parse again as exactly that one request.
fn forward_checked(state: &Body) -> Vec<u8> {
    let (head, buf) = (&state.head, state.head_bytes.as_slice());
    let mut forward = Vec::new();
    // Both ways of treating forwarding fields: dropped, and kept from a trusted proxy.
    let peer = Peer {
        ip: CLIENT,
        tls: false,
        trusted: buf.len() % 2 == 0,
    };
    write_request_head(head, buf, peer, state.payload.len() as u64, &mut forward);
    forward.extend_from_slice(&state.payload);

    let limits = common::relaxed_limits();
    let mut parser = RequestParser::new(limits);
    let again = match parser.parse(&forward) {
        Ok(Some(again)) => again.clone(),
        other => panic!(
            "ferry forwards a request its own parser gives {other:?}: {:?}",
            String::from_utf8_lossy(&forward)
        ),
    };
    assert_eq!(again.method(&forward), head.method(buf));
    let target = match head.target_form {
        TargetForm::Absolute { path_and_query, .. } => {
            let path = path_and_query.get(buf);
            if path.starts_with(b"/") {
                path.to_vec()
            } else {
                [b"/", path].concat()
            }
        }
        TargetForm::Origin | TargetForm::Asterisk => head.target(buf).to_vec(),
    };
    assert_eq!(again.target(&forward), target.as_slice());
    let expected = match head.framing {
        BodyFraming::None => BodyFraming::None,
        _ => BodyFraming::Length(state.payload.len() as u64),
    };
    assert_eq!(
        again.framing,
        expected,
        "{:?}",
        String::from_utf8_lossy(&forward)
    );
    assert_eq!(again.upgrade, head.upgrade);
    let names: Vec<&[u8]> = again.headers(&forward).map(|(name, _)| name).collect();
    assert!(!names
        .iter()
        .any(|n| n.eq_ignore_ascii_case(b"transfer-encoding")));
    let mut reader = BodyReader::for_request(again.framing, &limits);
    let mut body = Vec::new();
    let progress = reader
        .feed_into(&forward[again.head_len..], &mut body)
        .expect("the body reads");
    assert!(progress.done, "the forwarded body is complete");
    assert_eq!(
        again.head_len + progress.consumed,
        forward.len(),
        "nothing follows the forwarded request"
    );
    assert_eq!(body, state.payload);
    forward
}

fuzz_target!(|data: &[u8]| {
    let Some(plan) = common::plan(data) else {
        return;
    };
    let limits = if plan.flags & 1 == 0 {
        Limits::default()
    } else {
        common::small_limits()
    };
    let whole = run(plan.input, &[plan.input.len()], limits);
    let split = run(plan.input, &plan.pieces, limits);
    assert_eq!(whole, split, "pieces {:?}", plan.pieces);
});
