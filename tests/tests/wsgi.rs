//! WSGI apps: ferry's own loader runs `passenger_wsgi.py` apps, Flask included.

use ferry_e2e::{flask_python, get, repo_root, tempdir::TempDir, Ferry, HttpClient};
use std::path::Path;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

/// An app directory holding only `passenger_wsgi.py` with `source`.
fn wsgi_app(source: &str) -> TempDir {
    let dir = TempDir::new("ferry-e2e-wsgi");
    std::fs::write(dir.path().join("passenger_wsgi.py"), source).unwrap();
    dir
}

const HELLO: &str = r#"
import os

def application(environ, start_response):
    body = ("Hello from a test WSGI app (pid %d)\n" % os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"#;

#[test]
fn the_hello_wsgi_example_says_hello() {
    let example = repo_root().join("examples/hello-wsgi");
    // Until the example exists, an app of the same kind stands in for it.
    let stand_in;
    let app_dir: &Path = if example.join("passenger_wsgi.py").is_file() {
        &example
    } else {
        stand_in = wsgi_app(HELLO);
        stand_in.path()
    };
    let ferry = Ferry::start(&[app_dir.to_str().unwrap()], &[]);
    let pid = ferry.wait_ready(1, LIMIT)[0];
    let response = get(ferry.addr(), "/").unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(response.text().contains("Hello"), "{}", response.text());
    assert!(
        response.text().contains(&pid.to_string()),
        "served by the pool's process {pid}: {}",
        response.text()
    );
    assert_eq!(ferry.group()["app_type"], "wsgi");
}

const RAISES: &str = r#"
import os

def application(environ, start_response):
    if environ["PATH_INFO"] == "/raise":
        raise RuntimeError("kaboom from the test app")
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
"#;

#[test]
fn a_wsgi_app_that_raises_gives_500_and_ferry_keeps_serving() {
    let app = wsgi_app(RAISES);
    let ferry = Ferry::start(&[app.path().to_str().unwrap()], &[]);
    let pid = ferry.wait_ready(1, LIMIT)[0];
    let mut client = HttpClient::connect(ferry.addr()).unwrap();
    let failed = client.get("/raise").unwrap();
    assert_eq!(failed.status, 500, "{}", failed.text());
    assert!(
        failed.text().contains("kaboom from the test app"),
        "development shows the error: {}",
        failed.text()
    );
    for _ in 0..3 {
        let ok = client.get("/").unwrap();
        assert_eq!(ok.status, 200, "{}", ok.text());
        assert_eq!(ok.text(), pid.to_string(), "the same process keeps serving");
    }
    assert_eq!(ferry.total("crashes"), 0);
}

#[test]
fn the_flask_example_runs_under_ferry() {
    let python = flask_python();
    let app = repo_root().join("examples/flask-app");
    assert!(
        app.join("passenger_wsgi.py").is_file(),
        "the Flask example is missing at {}",
        app.display()
    );
    let ferry = Ferry::start(
        &[app.to_str().unwrap(), "--python", python.to_str().unwrap()],
        &[],
    );
    let pid = ferry.wait_ready(1, LIMIT)[0];
    let mut client = HttpClient::connect(ferry.addr()).unwrap();

    let hello = client.get("/").unwrap();
    assert_eq!(hello.status, 200, "{}", hello.text());
    assert!(
        hello.text().contains("Flask") && hello.text().contains(&pid.to_string()),
        "{}",
        hello.text()
    );

    let json = br#"{"ferry":[1,2,3],"ok":true}"#;
    let echo = client
        .request(
            "POST",
            "/echo",
            &[("Content-Type", "application/json")],
            json,
        )
        .unwrap();
    assert_eq!(echo.status, 200, "{}", echo.text());
    let sent: serde_json::Value = serde_json::from_slice(json).unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&echo.body).unwrap(),
        sent
    );

    let stream = client.get("/stream?n=3").unwrap();
    assert_eq!(stream.status, 200);
    let expected: String = (1..=3)
        .map(|i| format!("line {i} of 3 from pid {pid}\n"))
        .collect();
    assert_eq!(stream.text(), expected);
}
