//! HTTPS end to end (issue 14): `--ssl` with real clients (curl, openssl s_client, a rustls
//! client), the scheme the app sees, both ports at once, the start errors, and the HTTP
//! layer's behaviour over TLS (timeouts, keep-alive, upgrades, static files, error pages,
//! slow readers).

use ferry_e2e::env_app::env_app;
use ferry_e2e::tls::{curl, s_client, TestCert};
use ferry_e2e::*;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

fn start(args: &[String]) -> Ferry {
    Ferry::start_in(Arc::new(tempdir::TempDir::new("ferry-e2e")), args, &[])
}

fn testapp_with(cert: &TestCert, extra: &[&str]) -> Ferry {
    let mut args = testapp_args(extra);
    args.extend(cert.ssl_args());
    start(&args)
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn curl_gets_http_1_1_over_tls_1_3_and_1_2_on_one_kept_connection() {
    let cert = TestCert::new();
    let ferry = testapp_with(&cert, &[]);
    let url = format!("https://localhost:{}/pid", ferry.port);
    for (versions, named) in [
        (&["--tlsv1.3"][..], "TLSv1.3"),
        (&["--tlsv1.2", "--tls-max", "1.2"][..], "TLSv1.2"),
    ] {
        let mut args = vec!["--verbose", "--http1.1", "--write-out", " %{http_code}\n"];
        args.extend_from_slice(versions);
        args.extend_from_slice(&[&url, &url]);
        let out = curl(&cert, ferry.port, &args);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "curl failed: {stderr}");
        assert!(
            stderr.contains(&format!("SSL connection using {named}")),
            "{stderr}"
        );
        assert!(
            stderr.contains("ALPN: server accepted http/1.1"),
            "{stderr}"
        );
        assert!(
            stderr.contains("Re-using existing connection"),
            "the second request did not reuse the connection: {stderr}"
        );
        let answers: Vec<&str> = stdout.lines().collect();
        assert_eq!(answers.len(), 2, "two answers: {stdout}");
        let pid = answers[0].trim_end_matches(" 200");
        assert!(pid.trim().parse::<u32>().is_ok(), "{stdout}");
        assert_eq!(answers[1], answers[0], "{stdout}");
    }
}

#[test]
fn openssl_s_client_negotiates_alpn_http_1_1_on_both_versions() {
    let cert = TestCert::new();
    let ferry = testapp_with(&cert, &[]);
    let request = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    for (version, named) in [("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")] {
        let out = s_client(
            &cert,
            ferry.port,
            &[version, "-alpn", "http/1.1", "-ign_eof"],
            request,
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("ALPN protocol: http/1.1"), "{stdout}");
        assert!(stdout.contains("Verify return code: 0 (ok)"), "{stdout}");
        assert!(stdout.contains(&format!("Protocol  : {named}")), "{stdout}");
        assert!(stdout.contains("HTTP/1.1 200 OK"), "{stdout}");
    }
    // A client offering only a protocol ferry does not speak gets no ALPN agreement.
    let out = s_client(&cert, ferry.port, &["-alpn", "h2", "-ign_eof"], request);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("ALPN protocol: h2"), "{text}");
}

#[test]
fn a_client_stalled_in_the_handshake_is_cut_by_the_header_timeout() {
    let cert = TestCert::new();
    // The keep-alive timeout is far longer than the test waits: only the header timeout can
    // end these connections in time.
    let ferry = testapp_with(
        &cert,
        &["--header-timeout", "1", "--keep-alive-timeout", "300"],
    );
    // The start of a ClientHello record that promises 200 bytes and never sends them.
    let mut stalled = RawConn::connect(ferry.addr());
    stalled.set_read_timeout(Duration::from_secs(20));
    stalled.send(b"\x16\x03\x01\x00\xc8\x01\x00\x00\xc4\x03\x03");
    assert_eq!(
        stalled
            .read_to_end()
            .expect("closed before the read timeout"),
        b"",
        "a stalled handshake gets no answer, only the close"
    );
    let mut silent = RawConn::connect(ferry.addr());
    silent.set_read_timeout(Duration::from_secs(20));
    assert_eq!(silent.read_to_end().expect("closed"), b"");
    // Once the handshake is done, an idle connection is a keep-alive one: it outlives the
    // header timeout.
    let mut idle = cert.connect(ferry.addr());
    std::thread::sleep(Duration::from_millis(2500));
    idle.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(idle.read_response("GET").status, 200);
}

#[test]
fn the_wsgi_app_sees_https_and_both_ports_serve_at_once() {
    let cert = TestCert::new();
    let app = env_app();
    let ssl_port = free_port();
    let mut args = vec![app.path().display().to_string()];
    args.extend(cert.ssl_args());
    args.extend(["--ssl-port".to_string(), ssl_port.to_string()]);
    // The metrics listener beside both: each socket has an event-loop token of its own.
    let metrics = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    args.extend(["--metrics-address".to_string(), metrics.to_string()]);
    let ferry = start(&args);
    ferry.wait_output(
        &format!("Accessible via: https://127.0.0.1:{ssl_port}/"),
        LIMIT,
    );
    ferry.wait_output(
        &format!("Accessible via: http://127.0.0.1:{}/", ferry.port),
        LIMIT,
    );
    let mut tls = cert.connect(std::net::SocketAddr::from(([127, 0, 0, 1], ssl_port)));
    tls.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let over_tls = json(&tls.read_response("GET").text());
    assert_eq!(over_tls["wsgi.url_scheme"], "https", "{over_tls}");
    assert_eq!(over_tls["HTTPS"], "on", "{over_tls}");
    assert_eq!(over_tls["HTTP_X_FORWARDED_PROTO"], "https", "{over_tls}");
    assert_eq!(over_tls["SERVER_PORT"], "443", "{over_tls}");
    let plain = get(ferry.addr(), "/").expect("plain HTTP on --port");
    let plain = json(&plain.text());
    assert_eq!(plain["wsgi.url_scheme"], "http", "{plain}");
    assert_eq!(plain["HTTPS"], serde_json::Value::Null, "{plain}");
    assert_eq!(plain["HTTP_X_FORWARDED_PROTO"], "http", "{plain}");
    assert_eq!(get(metrics, "/health").expect("/health").status, 200);
    // Plain HTTP to the HTTPS port is no request: the connection just ends.
    let mut wrong = RawConn::connect(std::net::SocketAddr::from(([127, 0, 0, 1], ssl_port)));
    wrong.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let answer = wrong.read_to_end().unwrap_or_default();
    assert!(!answer.starts_with(b"HTTP/"), "{answer:?}");
}

fn start_error(args: &[String]) -> String {
    let registry = tempdir::TempDir::new("ferry-e2e");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let done = run_ferry(&args, registry.path(), LIMIT);
    assert_eq!(
        done.status.code(),
        Some(2),
        "{}{}",
        done.stdout,
        done.stderr
    );
    assert!(
        !done.stdout.contains("Spawning"),
        "an app process started: {}",
        done.stdout
    );
    done.stderr
}

#[test]
fn a_bad_certificate_or_key_stops_ferry_before_anything_spawns() {
    let cert = TestCert::new();
    let other = TestCert::new();
    let garbage = cert.dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let missing = cert.dir.path().join("missing.pem");
    let with = |certificate: &std::path::Path, key: &std::path::Path| {
        let mut args = vec!["start".to_string()];
        args.extend(testapp_args(&["--ssl"]));
        args.extend([
            "--ssl-certificate".to_string(),
            certificate.display().to_string(),
            "--ssl-certificate-key".to_string(),
            key.display().to_string(),
        ]);
        start_error(&args)
    };
    let error = with(&missing, &cert.key);
    assert!(
        error.contains(&format!(
            "cannot read --ssl-certificate {}",
            missing.display()
        )),
        "{error}"
    );
    assert!(error.contains("No such file"), "{error}");
    let error = with(&garbage, &cert.key);
    assert!(error.contains(&garbage.display().to_string()), "{error}");
    assert!(error.contains("no certificate in it"), "{error}");
    let error = with(&cert.cert, &garbage);
    assert!(error.contains("--ssl-certificate-key"), "{error}");
    assert!(error.contains("no private key in it"), "{error}");
    let error = with(&cert.cert, &other.key);
    assert!(
        error.contains("does not belong to the certificate"),
        "{error}"
    );
    let mut args = vec!["start".to_string()];
    args.extend(testapp_args(&["--ssl"]));
    let error = start_error(&args);
    assert!(
        error.contains("--ssl needs --ssl-certificate PATH and --ssl-certificate-key PATH"),
        "{error}"
    );
}

#[test]
fn upgrades_static_files_and_error_pages_work_over_tls() {
    let cert = TestCert::new();
    let app = RecordingApp::new();
    std::fs::create_dir(app.dir.path().join("public")).unwrap();
    std::fs::write(app.dir.path().join("public/hello.txt"), "static over tls\n").unwrap();
    let mut extra = cert.ssl_args();
    extra.extend(["--min-instances".to_string(), "1".to_string()]);
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let ferry = app.start_ferry(&extra);
    ferry.wait_ready(1, LIMIT);

    let mut conn = cert.connect(ferry.addr());
    conn.send(b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let file = conn.read_response("GET");
    assert_eq!(
        (file.status, file.text().as_str()),
        (200, "static over tls\n")
    );
    // The same connection, kept alive, becomes a tunnel once the app answers 101.
    conn.send(b"GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n");
    let switched = conn.read_response("GET");
    assert_eq!(switched.status, 101, "{}", switched.head);
    conn.send(b"hello tunnel");
    assert_eq!(conn.read_bytes(12), b"HELLO TUNNEL");

    // ferry's own error pages: 502 when the app process dies mid-request.
    let cert2 = TestCert::new();
    let crashing = testapp_with(&cert2, &[]);
    let mut conn = cert2.connect(crashing.addr());
    conn.send(b"GET /crash HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let page = conn.read_response("GET");
    assert_eq!(page.status, 502, "{}", page.head);
    // ferry's page, whether it saw the connection or the process end first.
    assert!(
        page.text().contains("<title>502 Bad Gateway</title>"),
        "{}",
        page.text()
    );
}

#[test]
fn a_503_page_goes_out_over_tls_when_the_app_cannot_start() {
    let cert = TestCert::new();
    let dir = tempdir::TempDir::new("ferry-broken-app");
    let mut args = vec![
        dir.path().display().to_string(),
        "--app-start-command".to_string(),
        "sh -c 'exit 3'".to_string(),
    ];
    args.extend(cert.ssl_args());
    let ferry = start(&args);
    let mut conn = cert.connect(ferry.addr());
    conn.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let page = conn.read_response("GET");
    assert_eq!(page.status, 503, "{}", page.head);
    assert!(page.text().contains("cannot start"), "{}", page.text());
}

#[test]
fn a_slow_reader_over_tls_gets_a_large_response_whole() {
    let cert = TestCert::new();
    let ssl_port = free_port();
    let mut extra = cert.ssl_args();
    extra.extend(["--ssl-port".to_string(), ssl_port.to_string()]);
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let ferry = start(&testapp_args(&extra));
    let bytes = 48 * 1024 * 1024;
    let path = format!("/big?bytes={bytes}");
    let plain = get(ferry.addr(), &path).expect("the same body over plain HTTP");
    assert_eq!(plain.body.len(), bytes);

    let mut conn = cert.connect(std::net::SocketAddr::from(([127, 0, 0, 1], ssl_port)));
    conn.send(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes());
    // Not reading: the response backs up into ferry (its spill file), not the app, whose
    // process is free again once ferry has taken all of it.
    wait_for(
        "ferry to take the whole response from the app",
        LIMIT,
        || {
            let processes = ferry.processes();
            let idle = processes.iter().all(|p| p["sessions"] == 0);
            (ferry.total("served") == 2 && idle).then_some(())
        },
    );
    let head = conn.read_response("HEAD"); // the head only; the body follows
    assert_eq!(head.status, 200, "{}", head.head);
    let body = conn.read_bytes(bytes);
    assert!(body == plain.body, "the body over TLS differs");
    // The connection is still usable.
    conn.stream
        .write_all(b"GET /pid HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    assert_eq!(conn.read_response("GET").status, 200);
}
