//! Static files from `APP_DIR/public` (or `--static-files-dir`), answered by ferry itself:
//! content types, HEAD, Range, conditional requests, large files streamed, and no path
//! leaving the directory.

use ferry_e2e::{run_ferry, tempdir::TempDir, Ferry, HttpClient, Response};
use std::io::Read;
use std::path::Path;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);
const SECRET: &str = "the-secret-outside-public";

/// An app directory with `public/` and a secret file beside it.
fn app_dir() -> TempDir {
    let dir = TempDir::new("ferry-e2e-static");
    let public = dir.path().join("public");
    std::fs::create_dir_all(public.join("sub")).unwrap();
    std::fs::write(public.join("hello.txt"), "hello, static world\n").unwrap();
    std::fs::write(public.join("style.css"), "body { color: red }\n").unwrap();
    std::fs::write(public.join("sub/page.html"), "<p>page</p>\n").unwrap();
    std::fs::write(dir.path().join("secret.txt"), SECRET).unwrap();
    std::os::unix::fs::symlink("../secret.txt", public.join("link-out.txt")).unwrap();
    std::os::unix::fs::symlink("hello.txt", public.join("link-in.txt")).unwrap();
    dir
}

fn start(app: &Path, extra: &[&str]) -> Ferry {
    let command = ferry_e2e::testapp_bin().display().to_string();
    let mut args = vec![app.to_str().unwrap(), "--app-start-command", &command];
    args.extend_from_slice(extra);
    Ferry::start(&args, &[])
}

fn request(ferry: &Ferry, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut client = HttpClient::connect(ferry.addr()).unwrap();
    client.request(method, path, headers, b"").unwrap()
}

#[test]
fn files_under_public_are_served_by_ferry_with_their_content_type() {
    let app = app_dir();
    let ferry = start(app.path(), &[]);
    let response = request(&ferry, "GET", "/hello.txt", &[]);
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "hello, static world\n");
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    for (path, content_type) in [
        ("/style.css", "text/css; charset=utf-8"),
        ("/sub/page.html", "text/html; charset=utf-8"),
        ("/sub/page.html?v=3", "text/html; charset=utf-8"),
        ("/%68ello.txt", "text/plain; charset=utf-8"),
    ] {
        let response = request(&ferry, "GET", path, &[]);
        assert_eq!(response.status, 200, "{path}");
        assert_eq!(
            response.header("content-type"),
            Some(content_type),
            "{path}"
        );
    }
    // Several on one keep-alive connection, with the app answering in between.
    let mut client = HttpClient::connect(ferry.addr()).unwrap();
    for path in ["/hello.txt", "/", "/hello.txt"] {
        let response = client.get(path).unwrap();
        assert_eq!(response.status, 200, "{path}");
    }
    // No app process was needed for the static ones: the app saw only "/".
    let processed: u64 = ferry
        .processes()
        .iter()
        .map(|p| p["processed"].as_u64().unwrap())
        .sum();
    assert_eq!(processed, 1, "{}", ferry.status());
}

#[test]
fn head_range_and_conditional_requests() {
    let app = app_dir();
    let ferry = start(app.path(), &[]);
    let full = request(&ferry, "GET", "/hello.txt", &[]);
    let etag = full.header("etag").expect("an ETag").to_string();
    let last_modified = full
        .header("last-modified")
        .expect("Last-Modified")
        .to_string();

    let head = request(&ferry, "HEAD", "/hello.txt", &[]);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("20"));
    assert_eq!(head.header("etag"), Some(etag.as_str()));

    let part = request(&ferry, "GET", "/hello.txt", &[("Range", "bytes=0-4")]);
    assert_eq!(part.status, 206);
    assert_eq!(part.text(), "hello");
    assert_eq!(part.header("content-range"), Some("bytes 0-4/20"));
    let tail = request(&ferry, "GET", "/hello.txt", &[("Range", "bytes=-6")]);
    assert_eq!((tail.status, tail.text().as_str()), (206, "world\n"));
    let beyond = request(&ferry, "GET", "/hello.txt", &[("Range", "bytes=50-60")]);
    assert_eq!(beyond.status, 416);
    assert_eq!(beyond.header("content-range"), Some("bytes */20"));

    let cached = request(&ferry, "GET", "/hello.txt", &[("If-None-Match", &etag)]);
    assert_eq!(cached.status, 304);
    assert!(cached.body.is_empty());
    let cached = request(
        &ferry,
        "GET",
        "/hello.txt",
        &[("If-Modified-Since", &last_modified)],
    );
    assert_eq!(cached.status, 304);
    let changed = request(
        &ferry,
        "GET",
        "/hello.txt",
        &[("If-None-Match", "\"other\"")],
    );
    assert_eq!(changed.status, 200);
    let stale_range = request(
        &ferry,
        "GET",
        "/hello.txt",
        &[("Range", "bytes=0-4"), ("If-Range", "\"other\"")],
    );
    assert_eq!(stale_range.status, 200, "If-Range mismatch: the whole file");
    assert_eq!(stale_range.text(), "hello, static world\n");
    let fresh_range = request(
        &ferry,
        "GET",
        "/hello.txt",
        &[("Range", "bytes=0-4"), ("If-Range", &etag)],
    );
    assert_eq!(fresh_range.status, 206);
}

#[test]
fn no_path_leaves_the_static_directory() {
    let app = app_dir();
    let ferry = start(app.path(), &[]);
    for path in [
        "/../secret.txt",
        "/sub/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/sub/..%2f..%2fsecret.txt",
        "/sub%2f%2e%2e%2f%2e%2e%2fsecret.txt",
    ] {
        let response = request(&ferry, "GET", path, &[]);
        assert_eq!(response.status, 400, "{path}: {}", response.text());
        assert!(!response.text().contains(SECRET), "{path}");
    }
    // A symlink out of the directory is not followed: the request goes to the app (the test
    // app has no such route).
    let response = request(&ferry, "GET", "/link-out.txt", &[]);
    assert_eq!(response.status, 404, "{}", response.text());
    assert!(!response.text().contains(SECRET));
    let response = request(&ferry, "GET", "/link-in.txt", &[]);
    assert_eq!(
        (response.status, response.text().as_str()),
        (200, "hello, static world\n")
    );
    // Directories and other methods are the app's.
    assert_eq!(request(&ferry, "GET", "/sub", &[]).status, 404);
    assert_eq!(request(&ferry, "POST", "/hello.txt", &[]).status, 404);
}

/// The most memory ferry has had resident at once (VmHWM): a file loaded whole and freed
/// again still shows here.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_large_file_is_streamed_not_loaded_whole() {
    const SIZE: usize = 64 * 1024 * 1024;
    let app = app_dir();
    let pattern: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    std::fs::write(app.path().join("public/big.bin"), &pattern).unwrap();
    let ferry = start(app.path(), &[]);
    let before_kib = peak_rss_kib(ferry.child.id());
    // A client that asks and then reads nothing: ferry must not buffer the file for it.
    let mut slow = HttpClient::connect(ferry.addr()).unwrap();
    slow.send_raw(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut first = vec![0u8; 1024 * 1024];
    let mut tcp = slow.tcp().try_clone().unwrap();
    tcp.read_exact(&mut first).unwrap();
    // Another full download meanwhile, checked byte for byte.
    let mut client = HttpClient::connect(ferry.addr()).unwrap();
    let response = client.get("/big.bin").unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body.len(), SIZE);
    assert!(response.body == pattern, "the bytes are the file's");
    let grown_kib = peak_rss_kib(ferry.child.id()).saturating_sub(before_kib);
    assert!(
        grown_kib < 16 * 1024,
        "ferry's peak memory grew by {grown_kib} KiB serving 64 MiB twice"
    );
    drop(slow);
}

#[test]
fn static_files_dir_serves_another_directory_and_must_exist() {
    let app = app_dir();
    let assets = TempDir::new("ferry-e2e-assets");
    std::fs::write(assets.path().join("app.js"), "let x = 1;\n").unwrap();
    let ferry = start(
        app.path(),
        &["--static-files-dir", assets.path().to_str().unwrap()],
    );
    let response = request(&ferry, "GET", "/app.js", &[]);
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(
        request(&ferry, "GET", "/hello.txt", &[]).status,
        404,
        "public/ is not used then"
    );

    let registry = TempDir::new("ferry-e2e-static");
    let missing = app.path().join("no-such-dir");
    let command = ferry_e2e::testapp_bin().display().to_string();
    let port = ferry_e2e::free_port().to_string();
    let finished = run_ferry(
        &[
            "start",
            app.path().to_str().unwrap(),
            "--app-start-command",
            &command,
            "--port",
            &port,
            "--static-files-dir",
            missing.to_str().unwrap(),
        ],
        registry.path(),
        LIMIT,
    );
    assert_ne!(finished.status.code(), Some(0));
    assert!(
        finished.stderr.contains("--static-files-dir") && finished.stderr.contains("no-such-dir"),
        "{}",
        finished.stderr
    );
}
