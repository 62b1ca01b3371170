//! ferry's frames against the loader itself: for each request of a varied set and each
//! kind of peer, the loader's Python turns the frame ferry sends now (`write_wsgi_frame`)
//! and the HTTP head ferry sent before (`write_request_head`) into `environ`s, and they
//! must be equal, body and flags included. This is what keeps the frame's Rust copy of the
//! loader's rules (http/src/wsgi_frame.rs) true to request.py.

use crate::http::{
    parse_request_head, write_request_head, write_wsgi_frame, BodyFraming, Limits, Peer,
};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::{Command, Stdio};

/// Reads cases (JSON lines: name, http and frame in hex) and prints one JSON line each:
/// both environs (wsgi.input read into `body`, objects dropped) and whether they match.
const CHECKER: &str = r#"
import json, sys
sys.path.insert(0, sys.argv[1])
from ferry_wsgi.frame import read_frame
from ferry_wsgi.request import read_request
from ferry_wsgi.server import Server

base = Server(None, False).base_environ

def environ(read, raw):
    env, is_head, http11, keep, streaming, rest = read(None, raw, base)
    out = {k: v for k, v in env.items() if isinstance(v, str)}
    out["body"] = env["wsgi.input"].read().hex()
    out["flags"] = [is_head, http11, keep, streaming is None, rest.hex()]
    return out, list(env)

for line in sys.stdin:
    case = json.loads(line)
    http, http_order = environ(read_request, bytes.fromhex(case["http"]))
    frame, frame_order = environ(read_frame, bytes.fromhex(case["frame"]))
    print(json.dumps({"name": case["name"], "same": http == frame and http_order == frame_order,
                      "http": http, "frame": frame, "http_order": http_order,
                      "frame_order": frame_order}), flush=True)
"#;

const V4: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 23));
const V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7));

const PEERS: [(&str, Peer); 4] = [
    (
        "direct",
        Peer {
            ip: V4,
            tls: false,
            trusted: false,
        },
    ),
    (
        "trusted",
        Peer {
            ip: V4,
            tls: false,
            trusted: true,
        },
    ),
    (
        "tls",
        Peer {
            ip: V4,
            tls: true,
            trusted: false,
        },
    ),
    (
        "v6-trusted-tls",
        Peer {
            ip: V6,
            tls: true,
            trusted: true,
        },
    ),
];

/// Requests as clients send them; bodies are de-chunked the way ferry does before
/// forwarding (`body` is what the app gets).
fn requests() -> Vec<(&'static str, Vec<u8>, &'static [u8])> {
    let forwarding = b"GET /f HTTP/1.1\r\nHost: h.example\r\nX-Forwarded-For: 10.0.0.1\r\n\
        X-Forwarded-For: 10.0.0.2, 10.0.0.3\r\nX-Forwarded-Proto: HTTPS\xa0, http\r\n\
        X-Forwarded-Host: public.example\r\nForwarded: for=10.0.0.1;proto=https\r\n\
        X-Real-IP: 10.0.0.1\r\nX-Forwarded-Port: 443\r\nX-Forwarded-Ssl: on\r\n\r\n";
    let mut many = b"GET /many HTTP/1.1\r\nHost: h\r\n".to_vec();
    for i in 0..60 {
        many.extend_from_slice(format!("X-Field-{}: value {i}\r\n", i % 7).as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    vec![
        ("get", b"GET / HTTP/1.1\r\nHost: 127.0.0.1:3000\r\n\r\n".to_vec(), b""),
        ("head", b"HEAD /x?y=1 HTTP/1.1\r\nHost: h\r\n\r\n".to_vec(), b""),
        (
            "post",
            b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
                .to_vec(),
            b"hello",
        ),
        (
            "chunked",
            b"PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"
                .to_vec(),
            b"abc",
        ),
        (
            "expect",
            b"POST /e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi".to_vec(),
            b"hi",
        ),
        ("http10", b"GET /old HTTP/1.0\r\n\r\n".to_vec(), b""),
        (
            "http10-keep",
            b"GET /old HTTP/1.0\r\nHost: h:8\r\nConnection: keep-alive\r\n\r\n".to_vec(),
            b"",
        ),
        (
            "absolute",
            b"GET http://a.example:81/p/q?r=s HTTP/1.1\r\nHost: a.example:81\r\n\r\n".to_vec(),
            b"",
        ),
        (
            "absolute-no-path",
            b"GET https://a.example?x HTTP/1.1\r\nHost: a.example\r\n\r\n".to_vec(),
            b"",
        ),
        ("asterisk", b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n".to_vec(), b""),
        (
            "repeats",
            b"GET / HTTP/1.1\r\nHost: h\r\nAccept: a/b\r\nCookie: a=1\r\nX-Trace: t\r\n\
            accept: c/d\r\nCOOKIE: b=2\r\nAccept:  e/f \t\r\nCookie: c=3\r\n\r\n"
                .to_vec(),
            b"",
        ),
        (
            "percent",
            b"GET /a%20b/%2F%zz%00/caf%C3%A9/%?x=%41&y=1?2 HTTP/1.1\r\nHost: h\r\n\r\n".to_vec(),
            b"",
        ),
        ("empty-query", b"GET /p? HTTP/1.1\r\nHost: h\r\n\r\n".to_vec(), b""),
        ("host-v6", b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n".to_vec(), b""),
        ("host-v6-bare", b"GET / HTTP/1.1\r\nHost: [::1]\r\n\r\n".to_vec(), b""),
        ("host-colon", b"GET / HTTP/1.1\r\nHost: h:\r\n\r\n".to_vec(), b""),
        ("host-port-only", b"GET / HTTP/1.1\r\nHost: :81\r\n\r\n".to_vec(), b""),
        ("forwarding", forwarding.to_vec(), b""),
        (
            "odd-proto",
            b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: gopher\r\n\r\n".to_vec(),
            b"",
        ),
        (
            "hop-by-hop",
            b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\n\
            TE: trailers\r\nProxy-Connection: x\r\nProxy: http://p\r\nX-Keep: 2\r\n\r\n"
                .to_vec(),
            b"",
        ),
        (
            "upgrade",
            b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
            Sec-WebSocket-Key: k\r\n\r\n"
                .to_vec(),
            b"",
        ),
        (
            "values",
            b"GET / HTTP/1.1\r\nHost: h\r\nX-Latin: caf\xe9\xa0\r\nX-Empty:\r\nX-Tab: a\tb\r\n\
            X-A.b~c!: odd name\r\nUser-Agent: curl/8.5.0\r\nContent-Type: text/x; q=1\r\n\r\n"
                .to_vec(),
            b"",
        ),
        (
            "underscore",
            b"GET / HTTP/1.1\r\nHost: h\r\nX_Forwarded_For: 6.6.6.6\r\nContent_Length: 9\r\n\r\n"
                .to_vec(),
            b"",
        ),
        ("many", many, b""),
    ]
}

#[test]
fn the_loader_builds_the_same_environ_from_a_frame_as_from_the_http_head() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("wsgi-loader");
    super::write_into(&dir).unwrap();
    let python = std::env::var("FERRY_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut child = Command::new(&python)
        .arg("-c")
        .arg(CHECKER)
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python} (install python3): {e}"));
    let mut input = String::new();
    let mut cases = 0;
    for (name, raw, body) in requests() {
        let head = parse_request_head(&raw, &Limits::default())
            .unwrap_or_else(|e| panic!("{name}: {e:?}"))
            .unwrap_or_else(|| panic!("{name}: incomplete"));
        assert_eq!(
            head.framing == BodyFraming::None,
            body.is_empty() && !raw.starts_with(b"P"),
            "{name}: a test request with a body says so"
        );
        for (peer_name, peer) in PEERS {
            let (mut http, mut frame) = (Vec::new(), Vec::new());
            write_request_head(&head, &raw, peer, body.len() as u64, &mut http);
            write_wsgi_frame(&head, &raw, peer, body.len() as u64, &mut frame);
            http.extend_from_slice(body);
            frame.extend_from_slice(body);
            let case = serde_json::json!({
                "name": format!("{name}/{peer_name}"),
                "http": hex(&http),
                "frame": hex(&frame),
            });
            input.push_str(&format!("{case}\n"));
            cases += 1;
        }
    }
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "the checker failed");
    let results: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(results.len(), cases, "every case was checked");
    let differing: Vec<String> = results
        .iter()
        .filter(|r| r["same"] != true)
        .map(|r| {
            format!(
                "{}:\n  http  {}\n  frame {}",
                r["name"], r["http"], r["frame"]
            )
        })
        .collect();
    assert!(differing.is_empty(), "{}", differing.join("\n"));

    // The cases are not vacuous: some of what they cover, as the app sees it.
    let environ = |name: &str| {
        let r = results.iter().find(|r| r["name"] == name).unwrap();
        r["frame"].clone()
    };
    assert_eq!(environ("repeats/direct")["HTTP_COOKIE"], "a=1; b=2; c=3");
    assert_eq!(environ("repeats/direct")["HTTP_ACCEPT"], "a/b,c/d,e/f");
    assert_eq!(
        environ("percent/direct")["PATH_INFO"],
        "/a b//%zz\u{0}/caf\u{c3}\u{a9}/%"
    );
    assert_eq!(environ("forwarding/trusted")["wsgi.url_scheme"], "https");
    assert_eq!(environ("forwarding/direct")["wsgi.url_scheme"], "http");
    assert_eq!(
        environ("forwarding/v6-trusted-tls")["REMOTE_ADDR"],
        "2001:db8::7"
    );
    assert_eq!(environ("chunked/direct")["body"], hex(b"abc"));
    assert_eq!(environ("chunked/direct")["CONTENT_LENGTH"], "3");
    assert_eq!(
        environ("head/tls")["flags"],
        serde_json::json!([true, true, true, true, ""])
    );
    assert_eq!(environ("host-v6/tls")["SERVER_NAME"], "[::1]");
    assert_eq!(environ("absolute/direct")["REQUEST_URI"], "/p/q?r=s");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
