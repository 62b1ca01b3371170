//! An app connection's bytes, arriving in arbitrary pieces, relayed the way the proxy relays a
//! response: a resumable [`ResponseParser`] (interim 1xx responses skipped), then
//! [`write_response_head`] for the client and a [`BodyReader`] for the body, copied or
//! de-chunked as the plan says.
//!
//! Checks: nothing panics; whole and split input relay the same bytes with the same ending;
//! and a complete relayed response, parsed again as a client would (with ferry's own parser),
//! delimits exactly the body bytes relayed: no response can run into the next one.
#![no_main]

mod common;

use ferry_http::{
    write_response_head, BodyReader, BodyRelay, ClientSide, HttpError, Limits, ResponseFraming,
    ResponseParser, Version,
};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, PartialEq)]
enum End {
    /// The response is complete; `close` if ferry closes the client connection after it.
    Done { close: bool },
    /// 101: the connection became a tunnel (`out` holds the rest of the input after the head).
    Upgraded,
    /// The response is broken (a 502 if nothing went out yet, else a cut connection).
    Broken(HttpError),
    /// The input ended before the response head did.
    NoResponse,
}

#[derive(Debug, PartialEq)]
struct Relayed {
    /// Bytes for the client.
    out: Vec<u8>,
    end: End,
}

struct Body {
    reader: BodyReader,
    relay: BodyRelay,
    close: bool,
}

fn run(
    input: &[u8],
    pieces: &[usize],
    method: &[u8],
    client: ClientSide,
    limits: Limits,
) -> Relayed {
    let mut parser = ResponseParser::new(limits, method);
    let mut buf: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    let mut body: Option<Body> = None;
    let mut at = 0;
    for &piece in pieces {
        buf.extend_from_slice(&input[at..at + piece]);
        at += piece;
        while body.is_none() {
            let head = match parser.parse(&buf) {
                Err(error) => {
                    return Relayed {
                        out,
                        end: End::Broken(error),
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
            if head.is_interim() {
                buf.drain(..head.head_len);
                parser.reset(method);
                continue;
            }
            let plan = write_response_head(&head, &buf, client, &mut out);
            buf.drain(..head.head_len);
            if plan.relay == BodyRelay::Tunnel {
                // Everything after the head, now and later, goes through the tunnel.
                out.append(&mut buf);
                out.extend_from_slice(&input[at..]);
                return Relayed {
                    out,
                    end: End::Upgraded,
                };
            }
            let reader = BodyReader::for_response(head.framing, &limits);
            body = Some(Body {
                reader,
                relay: plan.relay,
                close: plan.close_client,
            });
        }
        let Some(state) = body.as_mut() else {
            continue;
        };
        let progress = match state.relay {
            BodyRelay::Dechunk => state.reader.feed_into(&buf, &mut out),
            _ => state
                .reader
                .feed(&buf, |_| {})
                .inspect(|p| out.extend_from_slice(&buf[..p.consumed])),
        };
        match progress {
            Err(error) => {
                return Relayed {
                    out,
                    end: End::Broken(error),
                }
            }
            Ok(progress) => {
                assert!(progress.consumed <= buf.len());
                buf.drain(..progress.consumed);
                if progress.done || state.reader.is_done() {
                    return Relayed {
                        out,
                        end: End::Done { close: state.close },
                    };
                }
            }
        }
    }
    let end = match body {
        None => End::NoResponse,
        Some(mut state) => match state.reader.finish_at_eof() {
            Ok(()) => End::Done { close: state.close },
            Err(error) => End::Broken(error),
        },
    };
    Relayed { out, end }
}

/// A complete relayed response, read back as the client reads it: its framing must end
/// exactly where the relayed bytes end.
fn check_client_view(relayed: &Relayed, method: &[u8]) {
    let End::Done { close } = relayed.end else {
        return;
    };
    let out = &relayed.out;
    let limits = common::relaxed_limits();
    let mut parser = ResponseParser::new(limits, method);
    let head = match parser.parse(out) {
        Ok(Some(head)) => head.clone(),
        other => panic!(
            "the client gets a head ferry's parser gives {other:?}: {:?}",
            String::from_utf8_lossy(out)
        ),
    };
    assert!(!head.is_interim(), "only the final response is relayed");
    if head.framing == ResponseFraming::UntilClose {
        assert!(
            close,
            "a body delimited by the close needs the close: {:?}",
            String::from_utf8_lossy(out)
        );
        return;
    }
    let mut reader = BodyReader::for_response(head.framing, &limits);
    let progress = reader
        .feed(&out[head.head_len..], |_| {})
        .expect("the relayed body reads");
    assert!(
        progress.done || reader.is_done(),
        "the relayed body is complete: {:?}",
        String::from_utf8_lossy(out)
    );
    assert_eq!(
        head.head_len + progress.consumed,
        out.len(),
        "nothing follows the relayed response"
    );
    if !close {
        assert!(
            head.keep_alive,
            "kept open, so the client must be told it may reuse it"
        );
    }
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
    let method: &[u8] = match (plan.flags >> 1) & 3 {
        0 => b"GET",
        1 => b"HEAD",
        2 => b"POST",
        _ => b"OPTIONS",
    };
    let version = if plan.flags & 8 == 0 {
        Version::Http11
    } else {
        Version::Http10
    };
    // HTTP/1.0 clients here ask for keep-alive; HTTP/1.1 ones keep it by default.
    let client = ClientSide {
        version,
        keep_alive: true,
    };
    let whole = run(plan.input, &[plan.input.len()], method, client, limits);
    let split = run(plan.input, &plan.pieces, method, client, limits);
    if let (End::Broken(_), End::Broken(_)) = (&whole.end, &split.end) {
        // A broken body cuts the client's connection; how much went out before depends on
        // how the bytes arrived (one relay is a prefix of the other), the verdict does not.
        assert_eq!(whole.end, split.end, "pieces {:?}", plan.pieces);
        let shorter = whole.out.len().min(split.out.len());
        assert_eq!(
            whole.out[..shorter],
            split.out[..shorter],
            "pieces {:?}",
            plan.pieces
        );
    } else {
        assert_eq!(whole, split, "pieces {:?}", plan.pieces);
    }
    check_client_view(&whole, method);
});
