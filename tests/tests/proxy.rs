//! The reverse proxy: what a client sends reaches the app, what the app answers reaches the
//! client, with HTTP/1.1 framing kept correct.

use ferry_e2e::{base64, get, pid_of, tempdir::TempDir, wait_for, Ferry, HttpClient, Response};
use serde_json::Value;
use std::io::ErrorKind;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

fn started() -> Ferry {
    let ferry = Ferry::start_testapp(&[], &[]);
    ferry.wait_ready(1, LIMIT);
    ferry
}

/// The test app's `/echo` answer.
fn echoed(response: &Response) -> Value {
    assert_eq!(response.status, 200, "{}", response.text());
    serde_json::from_slice(&response.body).expect("/echo answers JSON")
}

/// Values of header `name` the app received.
fn received_header(echo: &Value, name: &str) -> Vec<String> {
    echo["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .filter(|pair| {
            pair[0]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
        .map(|pair| pair[1].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let ferry = started();
    let mut client = HttpClient::connect(ferry.addr()).unwrap();
    for i in 0..5 {
        let response = client
            .get(&format!("/echo?n={i}"))
            .expect("a response on the same connection");
        assert_eq!(echoed(&response)["target"], format!("/echo?n={i}"));
        let closing = response
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        assert!(!closing, "ferry keeps the connection open");
    }
}

#[test]
fn an_app_closing_idle_keep_alive_connections_loses_no_request() {
    // Apps close idle keep-alive connections on their own timer (Node after 5 s, gunicorn
    // after 2 s). ferry reuses its idle connections to the app without probing one first
    // when all it has read of it left nothing unseen; a request that meets a connection the
    // app is closing just then is sent again on a new one.
    let ferry = Ferry::start_testapp(&[], &[("TESTAPP_KEEP_ALIVE_MS", "30")]);
    ferry.wait_ready(1, LIMIT);
    let mut client = HttpClient::connect(ferry.addr()).unwrap();
    let mut pids = std::collections::BTreeSet::new();
    for i in 0..60u64 {
        // The traffic's gaps, 20 to 40 ms: some requests come before the app closes the
        // idle connection, some after, some just as it does.
        std::thread::sleep(Duration::from_micros(20_000 + 333 * i));
        let response = client
            .get("/pid")
            .unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert_eq!(response.status, 200, "request {i}: {}", response.text());
        pids.insert(response.text());
    }
    assert_eq!(pids.len(), 1, "one process served them all: {pids:?}");
}

#[test]
fn a_post_body_with_content_length_reaches_the_app() {
    let ferry = started();
    let body: Vec<u8> = b"name=ferry&bytes=\x00\x01\xfe\xff\r\n"
        .iter()
        .copied()
        .chain((0..=255u8).cycle().take(100_000))
        .collect();
    let mut client = HttpClient::connect(ferry.addr()).unwrap();
    let echo = echoed(
        &client
            .request(
                "POST",
                "/echo",
                &[("Content-Type", "application/octet-stream")],
                &body,
            )
            .unwrap(),
    );
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["body_b64"], base64(&body));
    assert_eq!(
        received_header(&echo, "content-length"),
        vec![body.len().to_string()]
    );
}

#[test]
fn a_chunked_post_body_reaches_the_app_dechunked() {
    let ferry = started();
    let mut client = HttpClient::connect(ferry.addr()).unwrap();
    client
        .send_raw(
            b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n\
              5\r\nhello\r\n6;ext=1\r\n ferry\r\n0\r\nX-Trailer: t\r\n\r\n",
        )
        .unwrap();
    let echo = echoed(&client.read_response(false).unwrap());
    assert_eq!(echo["body_b64"], base64(b"hello ferry"));
    assert_eq!(received_header(&echo, "content-length"), vec!["11"]);
    assert!(received_header(&echo, "transfer-encoding").is_empty());
    // The connection is still in step for the next request.
    assert_eq!(client.get("/pid").unwrap().status, 200);
}

#[test]
fn x_forwarded_for_is_set_by_ferry_and_a_client_sent_one_is_replaced() {
    // The test's client, on loopback, is not a trusted proxy here (by default it would be:
    // tests/tests/forwarded.rs).
    let ferry = Ferry::start_testapp(&["--forwarded-allow-ips", "192.0.2.1"], &[]);
    ferry.wait_ready(1, LIMIT);
    let mut client = HttpClient::connect(ferry.addr()).unwrap();
    let echo = echoed(&client.get("/echo").unwrap());
    assert_eq!(received_header(&echo, "x-forwarded-for"), vec!["127.0.0.1"]);

    let spoofed = client
        .request("GET", "/echo", &[("X-Forwarded-For", "6.6.6.6")], b"")
        .unwrap();
    let echo = echoed(&spoofed);
    assert_eq!(
        received_header(&echo, "x-forwarded-for"),
        vec!["127.0.0.1"],
        "{echo}"
    );
    assert!(
        !echo.to_string().contains("6.6.6.6"),
        "the client's value is gone: {echo}"
    );
}

#[test]
fn a_head_response_has_no_body() {
    let ferry = started();
    let mut client = HttpClient::connect(ferry.addr()).unwrap();
    let head = client.request("HEAD", "/", &[], b"").unwrap();
    assert_eq!(head.status, 200);
    // Had a body followed, the next status line would be read from it.
    let next = client
        .get("/pid")
        .expect("the next response starts right after the HEAD's head");
    assert_eq!(next.status, 200);
    assert!(pid_of(&next).is_some(), "{}", next.text());
}

#[test]
fn responses_204_and_304_have_no_body() {
    let ferry = started();
    let mut client = HttpClient::connect(ferry.addr()).unwrap();
    for status in [204, 304] {
        let response = client.get(&format!("/status/{status}")).unwrap();
        assert_eq!(response.status, status);
        assert!(
            response.header("transfer-encoding").is_none(),
            "{response:?}"
        );
        let next = client
            .get("/pid")
            .expect("the next response follows at once");
        assert_eq!(next.status, 200, "after {status}");
        assert!(pid_of(&next).is_some(), "after {status}: {}", next.text());
    }
}

#[test]
fn a_chunked_response_is_relayed() {
    let ferry = started();
    let mut client = HttpClient::connect(ferry.addr()).unwrap();
    let response = client.get("/chunked?n=5&delay_ms=20").unwrap();
    assert_eq!(response.status, 200);
    let expected: String = (0..5).map(|i| format!("chunk {i}\n")).collect();
    assert_eq!(response.text(), expected);
    assert_eq!(
        client.get("/pid").unwrap().status,
        200,
        "the connection stays in step"
    );
}

#[test]
fn a_large_response_arrives_complete() {
    let ferry = started();
    let response = get(ferry.addr(), "/big?bytes=5000000").unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body.len(), 5_000_000);
    let wrong = response
        .body
        .iter()
        .enumerate()
        .position(|(i, b)| *b != b'a' + (i % 26) as u8);
    assert_eq!(
        wrong, None,
        "byte at the given offset differs from the pattern"
    );
}

#[test]
fn an_http_1_0_request_gets_a_complete_response_and_the_connection_closes() {
    let ferry = started();
    for (path, expected) in [
        ("/pid", None),
        (
            "/chunked?n=3",
            Some("chunk 0\nchunk 1\nchunk 2\n".to_string()),
        ),
    ] {
        let mut client = HttpClient::connect(ferry.addr()).unwrap();
        client.set_read_timeout(Duration::from_secs(10));
        client
            .send_raw(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
            .unwrap();
        let response = client.read_response(false).unwrap();
        assert_eq!(response.status, 200, "{path}");
        assert!(
            response.header("transfer-encoding").is_none(),
            "no chunked framing to an HTTP/1.0 client"
        );
        match &expected {
            Some(body) => assert_eq!(&response.text(), body, "{path}"),
            None => assert!(pid_of(&response).is_some(), "{path}: {}", response.text()),
        }
        let rest = client.read_to_end().expect("ferry closes the connection");
        assert!(
            rest.is_empty(),
            "{path}: nothing after the response: {:?}",
            String::from_utf8_lossy(&rest)
        );
    }
}

#[test]
fn a_client_that_disconnects_while_queued_frees_its_slot_and_never_reaches_the_app() {
    let records = TempDir::new("ferry-e2e-record");
    let record_file = records.path().join("echo.jsonl");
    let ferry = Ferry::start_testapp(
        &["--max-pool-size", "1"],
        &[("TESTAPP_RECORD_FILE", record_file.to_str().unwrap())],
    );
    ferry.wait_ready(1, LIMIT);
    let busy_process = || ferry.group()["processes"][0]["sessions"] == 1;

    let mut busy = HttpClient::connect(ferry.addr()).unwrap();
    busy.send_raw(b"GET /sleep?ms=5000 HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    wait_for("the only process to be busy", LIMIT, || {
        busy_process().then_some(())
    });
    let mut queued = HttpClient::connect(ferry.addr()).unwrap();
    queued
        .send_raw(b"GET /echo?cancelled HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    wait_for("a queued request", LIMIT, || {
        (ferry.group()["queue"] == 1).then_some(())
    });

    drop(queued);
    wait_for(
        "the queue to empty while the process is still busy",
        LIMIT,
        || {
            let group = ferry.group();
            assert_eq!(
                group["processes"][0]["sessions"], 1,
                "the slow request still runs: {group}"
            );
            (group["queue"] == 0).then_some(())
        },
    );
    assert_eq!(ferry.total("cancelled"), 1, "{}", ferry.status());

    // Free the process too, then check what the app was given.
    drop(busy);
    wait_for("the process to be free", LIMIT, || {
        (!busy_process()).then_some(())
    });
    let after = get(ferry.addr(), "/echo?after").unwrap();
    assert_eq!(echoed(&after)["target"], "/echo?after");
    let recorded = std::fs::read_to_string(&record_file).unwrap_or_default();
    let targets: Vec<String> = recorded
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["target"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        targets,
        vec!["/echo?after"],
        "the app never saw the cancelled request"
    );
}

#[test]
fn the_app_dying_mid_request_gives_502_and_a_new_process_takes_over() {
    let ferry = started();
    let old = ferry.wait_ready(1, LIMIT)[0];
    let mut client = HttpClient::connect(ferry.addr()).unwrap();
    let response = client.get("/crash").unwrap();
    assert_eq!(response.status, 502, "{}", response.text());
    wait_for("a new process", LIMIT, || {
        let ready = ferry.pids_in("ready");
        (ready.len() == 1 && ferry.all_pids().len() == 1 && ready[0] != old).then_some(())
    });
    let next = get(ferry.addr(), "/pid").unwrap();
    assert_eq!(next.status, 200, "{}", next.text());
    assert_ne!(pid_of(&next), Some(old));
}

#[test]
fn the_app_dying_mid_response_cuts_the_client_connection() {
    let ferry = started();
    let mut client = HttpClient::connect(ferry.addr()).unwrap();
    client.set_read_timeout(Duration::from_secs(10));
    let error = client
        .get("/headers-only-then-die")
        .expect_err("a cut response cannot look complete");
    assert_eq!(
        error.kind(),
        ErrorKind::UnexpectedEof,
        "the connection is closed, not left hanging: {error}"
    );
}
