//! Trusted proxies (issue 14): behind an HTTPS proxy on the same host, the app must learn
//! that the request was HTTPS. `--forwarded-allow-ips` (default 127.0.0.1,::1) says whose
//! X-Forwarded-* and Forwarded fields are kept; from any other peer they are dropped.

use ferry_e2e::env_app::env_app;
use ferry_e2e::*;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// What an HTTPS proxy in front of ferry (nginx, HAProxy) sends along.
const PROXY_FIELDS: &[(&str, &str)] = &[
    ("X-Forwarded-Proto", "https"),
    ("X-Forwarded-For", "198.51.100.7"),
    ("X-Forwarded-Host", "shop.example"),
    (
        "Forwarded",
        "for=198.51.100.7;proto=https;host=shop.example",
    ),
];

fn start(extra: &[&str]) -> (Ferry, tempdir::TempDir) {
    let app = env_app();
    let mut args = vec![app.path().display().to_string()];
    args.extend(extra.iter().map(|a| a.to_string()));
    let ferry = Ferry::start_in(Arc::new(tempdir::TempDir::new("ferry-e2e")), &args, &[]);
    (ferry, app)
}

fn environ_seen(ferry: &Ferry) -> Value {
    let mut client = HttpClient::connect(ferry.addr()).expect("connect");
    let response = client
        .request("POST", "/login", PROXY_FIELDS, b"csrf=1")
        .expect("a response");
    assert_eq!(response.status, 200, "{}", response.text());
    serde_json::from_str(&response.text()).expect("the app's JSON")
}

#[test]
fn behind_a_trusted_https_proxy_the_app_sees_https_and_the_proxys_fields() {
    // The test's client connects from 127.0.0.1: trusted by default, as gunicorn trusts it.
    let (ferry, _app) = start(&[]);
    let environ = environ_seen(&ferry);
    assert_eq!(environ["wsgi.url_scheme"], "https", "{environ}");
    assert_eq!(environ["HTTPS"], "on", "{environ}");
    assert_eq!(environ["HTTP_X_FORWARDED_PROTO"], "https", "{environ}");
    assert_eq!(
        environ["HTTP_X_FORWARDED_HOST"], "shop.example",
        "{environ}"
    );
    // The lists get the hop ferry saw: the proxy's address.
    assert_eq!(
        environ["HTTP_X_FORWARDED_FOR"], "198.51.100.7, 127.0.0.1",
        "{environ}"
    );
    assert_eq!(
        environ["HTTP_FORWARDED"],
        "for=198.51.100.7;proto=https;host=shop.example, for=127.0.0.1;proto=http",
        "{environ}"
    );
    assert_eq!(environ["REMOTE_ADDR"], "127.0.0.1", "{environ}");
}

#[test]
fn from_an_untrusted_peer_the_forwarding_fields_are_dropped() {
    // Only a proxy at 192.0.2.1 is trusted: the test's 127.0.0.1 is not.
    let (ferry, _app) = start(&["--forwarded-allow-ips", "192.0.2.1, 10.0.0.0/8"]);
    let environ = environ_seen(&ferry);
    assert_eq!(environ["wsgi.url_scheme"], "http", "{environ}");
    assert_eq!(environ["HTTPS"], Value::Null, "{environ}");
    assert_eq!(environ["HTTP_X_FORWARDED_PROTO"], "http", "{environ}");
    assert_eq!(environ["HTTP_X_FORWARDED_FOR"], "127.0.0.1", "{environ}");
    assert_eq!(environ["HTTP_X_FORWARDED_HOST"], "test", "{environ}");
    assert_eq!(environ["HTTP_FORWARDED"], Value::Null, "{environ}");
}

#[test]
fn every_peer_is_trusted_with_a_star_and_a_bad_list_is_refused() {
    let (ferry, _app) = start(&["--forwarded-allow-ips", "*"]);
    assert_eq!(environ_seen(&ferry)["wsgi.url_scheme"], "https");
    let registry = tempdir::TempDir::new("ferry-e2e");
    let app = env_app();
    let path = app.path().display().to_string();
    let done = run_ferry(
        &[
            "start",
            &path,
            "--forwarded-allow-ips",
            "127.0.0.1,localhost",
        ],
        registry.path(),
        Duration::from_secs(30),
    );
    assert_eq!(done.status.code(), Some(2), "{}", done.stderr);
    assert!(
        done.stderr
            .contains("'localhost' is not an IP address or a CIDR network"),
        "{}",
        done.stderr
    );
    assert!(!done.stdout.contains("Spawning"), "{}", done.stdout);
}

/// The case with a real framework: Flask's `request.is_secure` and `request.url`
/// (what a CSRF origin check compares) behind a trusted HTTPS proxy, and from an untrusted
/// peer.
#[test]
fn flask_sees_a_secure_request_only_from_a_trusted_proxy() {
    let python = flask_python();
    let app = repo_root().join("examples/flask-app");
    let (app, python) = (app.to_str().unwrap(), python.to_str().unwrap());
    for (allow, secure, url) in [
        ("127.0.0.1,::1", true, "https://test/whoami"),
        ("192.0.2.1", false, "http://test/whoami"),
    ] {
        let args = [app, "--python", python, "--forwarded-allow-ips", allow];
        let ferry = Ferry::start(&args, &[]);
        let mut client = HttpClient::connect(ferry.addr()).expect("connect");
        let response = client
            .request("GET", "/whoami", PROXY_FIELDS, b"")
            .expect("a response");
        assert_eq!(response.status, 200, "{}", response.text());
        let seen: Value = serde_json::from_str(&response.text()).expect("JSON");
        assert_eq!(seen["is_secure"], secure, "trusting {allow}: {seen}");
        assert_eq!(seen["url"], url, "trusting {allow}: {seen}");
    }
}
