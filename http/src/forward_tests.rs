//! The heads ferry writes to the app and to the client, and its error pages.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;

const CLIENT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));

/// A client connecting directly, over plain TCP.
const DIRECT: Peer = Peer {
    ip: CLIENT_IP,
    tls: false,
    trusted: false,
};

fn request(input: &[u8]) -> RequestHead {
    parse_request_head(input, &Limits::default())
        .unwrap()
        .unwrap()
}

fn forwarded(input: &[u8], body_len_bytes: u64) -> String {
    forwarded_from(input, body_len_bytes, DIRECT)
}

fn forwarded_from(input: &[u8], body_len_bytes: u64, peer: Peer) -> String {
    let head = request(input);
    let mut out = Vec::new();
    write_request_head(&head, input, peer, body_len_bytes, &mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn the_app_gets_the_end_to_end_fields_and_ferrys_forwarding_fields() {
    let input = b"POST /upload?x=1 HTTP/1.1\r\n\
        Host: example.com\r\n\
        Connection: keep-alive, X-Hop\r\n\
        Keep-Alive: 300\r\n\
        Proxy-Connection: keep-alive\r\n\
        TE: trailers\r\n\
        Trailer: X-Checksum\r\n\
        Transfer-Encoding: chunked\r\n\
        Upgrade: websocket\r\n\
        X-Hop: secret\r\n\
        Expect: 100-continue\r\n\
        X-Forwarded-For: 1.2.3.4\r\n\
        X-Forwarded-Proto: https\r\n\
        X-Forwarded-Host: evil.example\r\n\
        X-Forwarded-Ssl: on\r\n\
        Forwarded: for=1.2.3.4\r\n\
        X-Real-IP: 1.2.3.4\r\n\
        Proxy: http://evil.example\r\n\
        X_Custom: dropped\r\n\
        Cookie: a=b\r\n\
        Content-Type: text/plain\r\n\
        \r\n";
    assert_eq!(
        forwarded(input, 11),
        "POST /upload?x=1 HTTP/1.1\r\n\
         Host: example.com\r\n\
         Cookie: a=b\r\n\
         Content-Type: text/plain\r\n\
         X-Forwarded-For: 203.0.113.7\r\n\
         X-Forwarded-Proto: http\r\n\
         X-Forwarded-Host: example.com\r\n\
         Content-Length: 11\r\n\
         \r\n"
    );
}

#[test]
fn a_request_without_body_gets_no_content_length() {
    let out = forwarded(b"GET / HTTP/1.0\r\n\r\n", 0);
    assert_eq!(
        out,
        "GET / HTTP/1.1\r\nX-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: http\r\n\r\n"
    );
    let out = forwarded(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
        0,
    );
    assert!(out.ends_with("Content-Length: 0\r\n\r\n"), "{out}");
}

#[test]
fn an_absolute_form_target_becomes_origin_form_with_its_host() {
    let out = forwarded(
        b"GET http://user:pw@example.com:8080?q=1 HTTP/1.1\r\nHost: other\r\n\r\n",
        0,
    );
    assert_eq!(
        out,
        "GET /?q=1 HTTP/1.1\r\nHost: example.com:8080\r\nX-Forwarded-For: 203.0.113.7\r\n\
         X-Forwarded-Proto: http\r\nX-Forwarded-Host: example.com:8080\r\n\r\n"
    );
}

#[test]
fn an_upgrade_keeps_its_upgrade_fields() {
    let input = b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
    let out = forwarded(input, 0);
    assert!(
        out.contains("\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"),
        "{out}"
    );
}

#[test]
fn the_client_ip_may_be_ipv6() {
    let input = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let head = request(input);
    let mut out = Vec::new();
    let peer = Peer {
        ip: IpAddr::V6(Ipv6Addr::LOCALHOST),
        ..DIRECT
    };
    write_request_head(&head, input, peer, 0, &mut out);
    assert!(String::from_utf8(out)
        .unwrap()
        .contains("X-Forwarded-For: ::1\r\n"));
}

const PROXIED: &[u8] = b"POST /login HTTP/1.1\r\n\
    Host: app.internal:8000\r\n\
    X-Forwarded-For: 198.51.100.1\r\n\
    X-Forwarded-For: 10.0.0.2\r\n\
    X-Forwarded-Proto: https\r\n\
    X-Forwarded-Host: example.com\r\n\
    X-Forwarded-Port: 443\r\n\
    Forwarded: for=198.51.100.1;proto=https\r\n\
    X-Real-IP: 198.51.100.1\r\n\
    Content-Length: 0\r\n\
    \r\n";

#[test]
fn a_trusted_proxys_forwarding_fields_are_kept_and_the_lists_extended() {
    let trusted = Peer {
        trusted: true,
        ..DIRECT
    };
    assert_eq!(
        forwarded_from(PROXIED, 0, trusted),
        "POST /login HTTP/1.1\r\n\
         Host: app.internal:8000\r\n\
         X-Forwarded-Port: 443\r\n\
         X-Real-IP: 198.51.100.1\r\n\
         X-Forwarded-For: 198.51.100.1, 10.0.0.2, 203.0.113.7\r\n\
         X-Forwarded-Proto: https\r\n\
         X-Forwarded-Host: example.com\r\n\
         Forwarded: for=198.51.100.1;proto=https, for=203.0.113.7;proto=http\r\n\
         Content-Length: 0\r\n\
         \r\n"
    );
}

#[test]
fn an_untrusted_peers_forwarding_fields_are_replaced_by_ferrys() {
    assert_eq!(
        forwarded_from(PROXIED, 0, DIRECT),
        "POST /login HTTP/1.1\r\n\
         Host: app.internal:8000\r\n\
         X-Forwarded-For: 203.0.113.7\r\n\
         X-Forwarded-Proto: http\r\n\
         X-Forwarded-Host: app.internal:8000\r\n\
         Content-Length: 0\r\n\
         \r\n"
    );
}

#[test]
fn over_tls_the_scheme_is_https_unless_a_trusted_proxy_says_otherwise() {
    let input = b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-Proto: http\r\n\r\n";
    let tls = Peer {
        tls: true,
        ..DIRECT
    };
    let out = forwarded_from(input, 0, tls);
    assert!(out.contains("X-Forwarded-Proto: https\r\n"), "{out}");
    assert!(!out.contains("X-Forwarded-Proto: http\r\n"), "{out}");
    let out = forwarded_from(
        input,
        0,
        Peer {
            trusted: true,
            ..tls
        },
    );
    assert!(out.contains("X-Forwarded-Proto: http\r\n"), "{out}");
    // A trusted Forwarded list gets ferry's own scheme, and IPv6 in RFC 7239's form.
    let input = b"GET / HTTP/1.1\r\nHost: a\r\nForwarded: for=192.0.2.9\r\n\r\n";
    let v6 = Peer {
        ip: IpAddr::V6(Ipv6Addr::LOCALHOST),
        tls: true,
        trusted: true,
    };
    let out = forwarded_from(input, 0, v6);
    assert!(
        out.contains("Forwarded: for=192.0.2.9, for=\"[::1]\";proto=https\r\n"),
        "{out}"
    );
}

#[test]
fn the_forwarded_head_parses_back_to_the_same_request() {
    let input = b"PUT /a%20b?c HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
    let out = forwarded(input, 5);
    let back = request(out.as_bytes());
    assert_eq!(back.method(out.as_bytes()), b"PUT");
    assert_eq!(back.target(out.as_bytes()), b"/a%20b?c");
    assert_eq!(back.framing, BodyFraming::Length(5));
    assert_eq!(back.header(out.as_bytes(), b"x-a"), Some(&b"1"[..]));
}

fn relayed(method: &[u8], input: &[u8], client: ClientSide) -> (String, ResponsePlan) {
    let head = parse_response_head(input, &Limits::default(), method)
        .unwrap()
        .unwrap();
    let mut out = Vec::new();
    let plan = write_response_head(&head, input, client, &mut out);
    (String::from_utf8(out).unwrap(), plan)
}

const HTTP11_CLIENT: ClientSide = ClientSide {
    version: Version::Http11,
    keep_alive: true,
};
const HTTP10_CLIENT: ClientSide = ClientSide {
    version: Version::Http10,
    keep_alive: true,
};

#[test]
fn a_length_response_to_a_keep_alive_client() {
    let input = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive, X-Hop\r\nKeep-Alive: 5\r\nX-Hop: 1\r\nSet-Cookie: a=b\r\n\r\nok";
    let (out, plan) = relayed(b"GET", input, HTTP11_CLIENT);
    assert_eq!(
        out,
        "HTTP/1.1 200 OK\r\nSet-Cookie: a=b\r\nContent-Length: 2\r\n\r\n"
    );
    assert_eq!(
        plan,
        ResponsePlan {
            relay: BodyRelay::Copy,
            close_client: false
        }
    );

    let (out, plan) = relayed(b"GET", input, HTTP10_CLIENT);
    assert!(
        out.ends_with("Content-Length: 2\r\nConnection: keep-alive\r\n\r\n"),
        "{out}"
    );
    assert!(!plan.close_client);

    let closing = ClientSide {
        keep_alive: false,
        ..HTTP11_CLIENT
    };
    let (out, plan) = relayed(b"GET", input, closing);
    assert!(
        out.ends_with("Content-Length: 2\r\nConnection: close\r\n\r\n"),
        "{out}"
    );
    assert!(plan.close_client);
}

#[test]
fn a_chunked_response_passes_through_to_http11_and_is_decoded_for_http10() {
    let input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n";
    let (out, plan) = relayed(b"GET", input, HTTP11_CLIENT);
    assert_eq!(
        out,
        "HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    assert_eq!(
        plan,
        ResponsePlan {
            relay: BodyRelay::Copy,
            close_client: false
        }
    );

    let (out, plan) = relayed(b"GET", input, HTTP10_CLIENT);
    assert_eq!(out, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
    assert_eq!(
        plan,
        ResponsePlan {
            relay: BodyRelay::Dechunk,
            close_client: true
        }
    );
}

#[test]
fn a_close_delimited_response_closes_the_client() {
    let (out, plan) = relayed(b"GET", b"HTTP/1.0 200 OK\r\nX: y\r\n\r\n", HTTP11_CLIENT);
    assert_eq!(out, "HTTP/1.1 200 OK\r\nX: y\r\nConnection: close\r\n\r\n");
    assert_eq!(
        plan,
        ResponsePlan {
            relay: BodyRelay::UntilClose,
            close_client: true
        }
    );
}

#[test]
fn bodiless_responses_keep_or_drop_content_length_as_the_rfc_says() {
    let (out, plan) = relayed(
        b"HEAD",
        b"HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n",
        HTTP11_CLIENT,
    );
    assert_eq!(out, "HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n");
    assert_eq!(plan.relay, BodyRelay::None);
    let (out, _) = relayed(
        b"GET",
        b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
        HTTP11_CLIENT,
    );
    assert_eq!(out, "HTTP/1.1 204 No Content\r\n\r\n");
    let (out, _) = relayed(
        b"GET",
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 42\r\n\r\n",
        HTTP11_CLIENT,
    );
    assert_eq!(
        out,
        "HTTP/1.1 304 Not Modified\r\nContent-Length: 42\r\n\r\n"
    );
}

#[test]
fn an_empty_reason_gets_the_canonical_one() {
    let (out, _) = relayed(
        b"GET",
        b"HTTP/1.1 503\r\nContent-Length: 0\r\n\r\n",
        HTTP11_CLIENT,
    );
    assert!(
        out.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{out}"
    );
    let (out, _) = relayed(
        b"GET",
        b"HTTP/1.1 299 \r\nContent-Length: 0\r\n\r\n",
        HTTP11_CLIENT,
    );
    assert!(out.starts_with("HTTP/1.1 299 \r\n"), "{out}");
}

#[test]
fn interim_and_upgrade_responses() {
    let (out, plan) = relayed(
        b"GET",
        b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n",
        HTTP11_CLIENT,
    );
    assert_eq!(out, "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n");
    assert_eq!(
        plan,
        ResponsePlan {
            relay: BodyRelay::None,
            close_client: false
        }
    );

    let input = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n";
    let (out, plan) = relayed(b"GET", input, HTTP11_CLIENT);
    assert_eq!(
        out,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: x\r\nConnection: upgrade\r\n\r\n"
    );
    assert_eq!(
        plan,
        ResponsePlan {
            relay: BodyRelay::Tunnel,
            close_client: false
        }
    );
}

#[test]
fn an_error_response_is_complete_and_escaped() {
    let mut out = b"previous".to_vec();
    let head_len = error_response(
        503,
        "Busy <now>",
        "Try \"again\" & again's <script>",
        Some(5),
        true,
        &mut out,
    );
    let response = &out[b"previous".len()..];
    let text = String::from_utf8(response.to_vec()).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert_eq!(head.len() + 4, head_len);
    assert_eq!(
        head,
        format!(
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html; charset=utf-8\r\n\
             Content-Length: {}\r\nCache-Control: no-store\r\nRetry-After: 5\r\nConnection: close",
            body.len()
        )
    );
    assert!(
        body.contains("<title>503 Service Unavailable</title>"),
        "{body}"
    );
    assert!(body.contains("<h1>Busy &lt;now&gt;</h1>"), "{body}");
    assert!(
        body.contains("Try &quot;again&quot; &amp; again&#39;s &lt;script&gt;"),
        "{body}"
    );

    // The response parses as a well-framed response.
    let parsed = parse_response_head(response, &Limits::default(), b"GET")
        .unwrap()
        .unwrap();
    assert_eq!(parsed.framing, ResponseFraming::Length(body.len() as u64));
}

#[test]
fn error_responses_for_every_status_ferry_sends() {
    for status in [400, 408, 413, 414, 431, 501, 502, 503, 504, 505] {
        let mut out = Vec::new();
        error_response(status, "Title", "Detail", None, false, &mut out);
        let head = parse_response_head(&out, &Limits::default(), b"GET")
            .unwrap()
            .unwrap();
        assert_eq!(head.status, status);
        assert!(!head.reason(&out).is_empty(), "{status}");
        assert!(head.header(&out, b"retry-after").is_none());
        assert!(head.header(&out, b"connection").is_none());
        let ResponseFraming::Length(len) = head.framing else {
            panic!()
        };
        assert_eq!(out.len() - head.head_len, len as usize);
    }
}
