//! The frame ferry sends its WSGI loader: its bytes, and that it carries what the loader
//! used to derive from the HTTP head (the loader's own check of this is in
//! driver/src/wsgi_loader/frame_check_tests.rs).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::wsgi_frame::{frame_header, frame_variables, FLAG_HEAD, FLAG_HTTP11, FLAG_KEEP_ALIVE};
use super::*;

const CLIENT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));

const DIRECT: Peer = Peer {
    ip: CLIENT_IP,
    tls: false,
    trusted: false,
};

const TRUSTED: Peer = Peer {
    ip: CLIENT_IP,
    tls: false,
    trusted: true,
};

fn frame_from(input: &[u8], body_len_bytes: u64, peer: Peer) -> Vec<u8> {
    let head = parse_request_head(input, &Limits::default())
        .unwrap()
        .unwrap();
    let mut out = Vec::new();
    write_wsgi_frame(&head, input, peer, body_len_bytes, &mut out);
    out
}

fn text(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect() // latin-1, as the loader decodes it
}

/// The frame's variables (each key once: a repeat would be a bug) and its flags.
fn environ_from(input: &[u8], body_len_bytes: u64, peer: Peer) -> (BTreeMap<String, String>, u8) {
    let frame = frame_from(input, body_len_bytes, peer);
    let (len, flags) = frame_header(&frame).expect("a frame");
    assert_eq!(
        frame.len(),
        6 + len,
        "the length counts the flags and variables"
    );
    let mut environ = BTreeMap::new();
    for (key, value) in frame_variables(&frame).expect("whole pairs") {
        let old = environ.insert(text(key), text(value));
        assert!(old.is_none(), "{} twice in the frame", text(key));
    }
    (environ, flags)
}

fn environ(input: &[u8]) -> BTreeMap<String, String> {
    environ_from(input, 0, DIRECT).0
}

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// bench/loader_micro.py times the loader on these bytes: keep the two the same.
#[test]
fn the_frame_for_wrks_get_is_byte_for_byte_what_the_loader_benchmark_uses() {
    let peer = Peer {
        ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        tls: false,
        trusted: false,
    };
    let frame = frame_from(b"GET / HTTP/1.1\r\nHost: 127.0.0.1:18931\r\n\r\n", 0, peer);
    let fields = [
        "HTTP_HOST",
        "127.0.0.1:18931",
        "HTTP_X_FORWARDED_FOR",
        "127.0.0.1",
        "HTTP_X_FORWARDED_PROTO",
        "http",
        "HTTP_X_FORWARDED_HOST",
        "127.0.0.1:18931",
        "REQUEST_METHOD",
        "GET",
        "SERVER_PROTOCOL",
        "HTTP/1.1",
        "REQUEST_URI",
        "/",
        "PATH_INFO",
        "/",
        "QUERY_STRING",
        "",
        "wsgi.url_scheme",
        "http",
        "SERVER_NAME",
        "127.0.0.1",
        "SERVER_PORT",
        "18931",
        "REMOTE_ADDR",
        "127.0.0.1",
    ];
    let variables = fields.join("\0");
    let mut expected = vec![0u8];
    expected.extend_from_slice(&(variables.len() as u32 + 1).to_be_bytes());
    expected.push(FLAG_HTTP11 | FLAG_KEEP_ALIVE);
    expected.extend_from_slice(variables.as_bytes());
    assert_eq!(text(&frame), text(&expected));
    let micro = include_str!("../../bench/loader_micro.py");
    let quoted: String = fields
        .iter()
        .map(|part| format!("\"{part}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let flat: String = micro.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains(&quoted),
        "bench/loader_micro.py's FRAME_FIELDS must list {quoted}"
    );
}

#[test]
fn fields_become_cgi_variables_and_hop_by_hop_ones_stay_out() {
    let (env, flags) = environ_from(
        b"POST /upload?x=1 HTTP/1.1\r\n\
        Host: example.com\r\n\
        Connection: keep-alive, X-Hop\r\n\
        Keep-Alive: 300\r\n\
        TE: trailers\r\n\
        Transfer-Encoding: chunked\r\n\
        X-Hop: secret\r\n\
        Expect: 100-continue\r\n\
        X-Forwarded-For: 1.2.3.4\r\n\
        X-Real-IP: 1.2.3.4\r\n\
        Proxy: http://evil.example\r\n\
        X_Custom: dropped\r\n\
        Content-Type: text/plain\r\n\
        User-Agent: curl/8\r\n\
        \r\n",
        11,
        DIRECT,
    );
    assert_eq!(
        env,
        vars(&[
            ("HTTP_HOST", "example.com"),
            ("CONTENT_TYPE", "text/plain"),
            ("HTTP_USER_AGENT", "curl/8"),
            ("HTTP_X_FORWARDED_FOR", "203.0.113.7"),
            ("HTTP_X_FORWARDED_PROTO", "http"),
            ("HTTP_X_FORWARDED_HOST", "example.com"),
            ("CONTENT_LENGTH", "11"),
            ("REQUEST_METHOD", "POST"),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("REQUEST_URI", "/upload?x=1"),
            ("PATH_INFO", "/upload"),
            ("QUERY_STRING", "x=1"),
            ("wsgi.url_scheme", "http"),
            ("SERVER_NAME", "example.com"),
            ("SERVER_PORT", "80"),
            ("REMOTE_ADDR", "203.0.113.7"),
        ])
    );
    assert_eq!(flags, FLAG_HTTP11 | FLAG_KEEP_ALIVE);
}

#[test]
fn repeated_fields_are_joined_with_commas_and_cookies_with_semicolons() {
    let env = environ(
        b"GET / HTTP/1.1\r\nHost: h\r\nAccept: a/b\r\nCookie: a=1\r\nX-Trace: 1\r\n\
        accept: c/d\r\nCOOKIE: b=2\r\nAccept:  e/f \t\r\nCookie: c=3\r\n\r\n",
    );
    assert_eq!(env["HTTP_ACCEPT"], "a/b,c/d,e/f");
    assert_eq!(env["HTTP_COOKIE"], "a=1; b=2; c=3");
    // The variables after the joined ones moved along with them.
    assert_eq!(env["HTTP_X_TRACE"], "1");
    assert_eq!(env["HTTP_X_FORWARDED_HOST"], "h");
}

#[test]
fn the_path_goes_raw_and_the_query_string_whole() {
    let env = environ(b"GET /a%20b/%2F%00?q=%41&r=1?2 HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(env["PATH_INFO"], "/a%20b/%2F%00");
    assert_eq!(env["QUERY_STRING"], "q=%41&r=1?2");
    assert_eq!(env["REQUEST_URI"], "/a%20b/%2F%00?q=%41&r=1?2");
    let env = environ(b"GET /? HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!((&*env["PATH_INFO"], &*env["QUERY_STRING"]), ("/", ""));
}

#[test]
fn an_absolute_form_target_is_sent_in_origin_form_with_its_authority_as_host() {
    let env = environ(b"GET http://app.example:8080/p?x HTTP/1.1\r\nHost: other\r\n\r\n");
    assert_eq!(env["REQUEST_URI"], "/p?x");
    assert_eq!(env["PATH_INFO"], "/p");
    assert_eq!(env["HTTP_HOST"], "app.example:8080");
    assert_eq!(env["SERVER_NAME"], "app.example");
    assert_eq!(env["SERVER_PORT"], "8080");
    let env = environ(b"GET http://app.example?x HTTP/1.1\r\nHost: app.example\r\n\r\n");
    assert_eq!(env["REQUEST_URI"], "/?x");
    assert_eq!(env["PATH_INFO"], "/");
    assert_eq!(env["QUERY_STRING"], "x");
}

#[test]
fn server_name_and_port_follow_the_host_and_the_scheme() {
    for (host, name, port) in [
        ("example.com", "example.com", "80"),
        ("example.com:8443", "example.com", "8443"),
        ("[::1]:9000", "[::1]", "9000"),
        ("[::1]", "[::1]", "80"),
        ("[::1]:x", "[::1]", "80"),
        (":81", "localhost", "81"),
        ("h:", "h:", "80"),
    ] {
        let input = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
        let env = environ(input.as_bytes());
        assert_eq!(
            (&*env["SERVER_NAME"], &*env["SERVER_PORT"]),
            (name, port),
            "{host}"
        );
    }
    let env = environ(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(
        (&*env["SERVER_NAME"], &*env["SERVER_PORT"]),
        ("localhost", "80")
    );
    assert!(!env.contains_key("HTTP_HOST"));
    assert_eq!(
        env["SERVER_PROTOCOL"], "HTTP/1.1",
        "what ferry's HTTP head says"
    );
}

#[test]
fn a_trusted_proxys_forwarding_fields_set_the_scheme_and_lead_the_address_list() {
    let input = b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1, 2.2.2.2\r\n\
        X-Forwarded-Proto: HTTPS , http\r\nX-Forwarded-Host: public.example\r\n\r\n";
    let (env, _) = environ_from(input, 0, TRUSTED);
    assert_eq!(env["HTTP_X_FORWARDED_FOR"], "1.1.1.1, 2.2.2.2, 203.0.113.7");
    assert_eq!(env["REMOTE_ADDR"], "203.0.113.7");
    assert_eq!(env["wsgi.url_scheme"], "https");
    assert_eq!(env["HTTPS"], "on");
    assert_eq!(env["SERVER_PORT"], "443");
    assert_eq!(env["HTTP_X_FORWARDED_HOST"], "public.example");
    // The same fields from anyone else are replaced by ferry's own.
    let env = environ(input);
    assert_eq!(env["HTTP_X_FORWARDED_FOR"], "203.0.113.7");
    assert_eq!(env["wsgi.url_scheme"], "http");
    assert!(!env.contains_key("HTTPS"));
    let (env, _) = environ_from(
        b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: gopher\r\n\r\n",
        0,
        TRUSTED,
    );
    assert_eq!(env["wsgi.url_scheme"], "http");
}

#[test]
fn tls_and_ipv6_peers() {
    let peer = Peer {
        ip: IpAddr::V6(Ipv6Addr::LOCALHOST),
        tls: true,
        trusted: false,
    };
    let (env, _) = environ_from(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", 0, peer);
    assert_eq!(env["REMOTE_ADDR"], "::1");
    assert_eq!(env["wsgi.url_scheme"], "https");
    assert_eq!(env["HTTPS"], "on");
    assert_eq!(env["SERVER_PORT"], "443");
}

#[test]
fn flags_say_head_and_keep_alive_and_a_body_has_its_length() {
    let (env, flags) = environ_from(b"HEAD /x HTTP/1.1\r\nHost: h\r\n\r\n", 0, DIRECT);
    assert_eq!(flags, FLAG_HEAD | FLAG_HTTP11 | FLAG_KEEP_ALIVE);
    assert!(!env.contains_key("CONTENT_LENGTH"), "no body framing");
    // ferry keeps its connection to the app whatever the client said: the client's
    // Connection field is hop-by-hop.
    let (env, flags) = environ_from(
        b"POST / HTTP/1.0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        0,
        DIRECT,
    );
    assert_eq!(flags, FLAG_HTTP11 | FLAG_KEEP_ALIVE);
    assert_eq!(env["CONTENT_LENGTH"], "0");
    assert!(!env.contains_key("HTTP_CONNECTION"));
    let (env, flags) = environ_from(
        b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        0,
        DIRECT,
    );
    assert_eq!(env["HTTP_CONNECTION"], "upgrade");
    assert_eq!(env["HTTP_UPGRADE"], "websocket");
    assert_eq!(flags, FLAG_HTTP11 | FLAG_KEEP_ALIVE);
}

/// The fields in the frame are the HTTP head's, however the request mixes them: the two
/// come from one walk, and this keeps it so.
#[test]
fn the_frame_carries_exactly_the_fields_of_the_http_head() {
    let input = b"PATCH http://a.example:81/x?y HTTP/1.1\r\nHost: a.example:81\r\n\
        Connection: X-Hop, keep-alive\r\nX-Hop: 1\r\nX-Keep: 2\r\nForwarded: for=9.9.9.9\r\n\
        X-Forwarded-For: 9.9.9.9\r\nX-Forwarded-Port: 443\r\nX-Real-IP: 9.9.9.9\r\n\
        Transfer-Encoding: chunked\r\nAccept: x\r\naccept: y\r\nCookie: k=v\r\n\r\n";
    for peer in [DIRECT, TRUSTED] {
        let head = parse_request_head(input, &Limits::default())
            .unwrap()
            .unwrap();
        let mut http_head = Vec::new();
        write_request_head(&head, input, peer, 5, &mut http_head);
        let mut expected = BTreeMap::<String, String>::new();
        for line in text(&http_head).split("\r\n").skip(1) {
            let Some((name, value)) = line.split_once(": ") else {
                continue;
            };
            let key = match name.to_ascii_uppercase().replace('-', "_").as_str() {
                "CONTENT_TYPE" => "CONTENT_TYPE".to_string(),
                "CONTENT_LENGTH" => "CONTENT_LENGTH".to_string(),
                other => format!("HTTP_{other}"),
            };
            let separator = if key == "HTTP_COOKIE" { "; " } else { "," };
            expected
                .entry(key)
                .and_modify(|v| *v = format!("{v}{separator}{value}"))
                .or_insert_with(|| value.to_string());
        }
        let (mut env, _) = environ_from(input, 5, peer);
        env.retain(|key, _| key.starts_with("HTTP_") || key.starts_with("CONTENT_"));
        assert_eq!(env, expected, "trusted: {}", peer.trusted);
    }
}
