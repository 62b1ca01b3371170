use super::*;
use std::net::Ipv4Addr;

fn summary() -> RequestSummary {
    RequestSummary {
        method: "GET".into(),
        target: "/a?q=\"x\"".into(),
        protocol: "HTTP/1.1",
        referer: Some("http://example.com/".into()),
        user_agent: Some("curl/8.5.0\\evil\n".into()),
    }
}

/// 2026-12-02T01:00:00.250Z
fn at() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(1_796_173_200_250)
}

fn entry(request: Option<&RequestSummary>, pid: Option<u32>) -> Entry<'_> {
    Entry {
        client: IpAddr::V4(Ipv4Addr::LOCALHOST),
        request,
        status: 200,
        body_bytes: 13,
        request_time: Duration::from_micros(12_345),
        pid,
        queue_time: Duration::from_micros(4_321),
        time: at(),
    }
}

fn logged(format: AccessLogFormat, entries: &[Entry]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    let mut log = AccessLog::open(&path, format).unwrap();
    for e in entries {
        log.record(e).unwrap();
    }
    // Buffered until the round ends.
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
    log.flush().unwrap();
    std::fs::read_to_string(&path).unwrap()
}

#[test]
fn combined_lines_carry_the_request_time_and_pid_with_fields_escaped() {
    let request = summary();
    let text = logged(
        AccessLogFormat::Combined,
        &[entry(Some(&request), Some(4242)), entry(None, None)],
    );
    assert_eq!(
        text,
        concat!(
            r#"127.0.0.1 - - [02/Dec/2026:01:00:00 +0000] "GET /a?q=\x22x\x22 HTTP/1.1" 200 13 "http://example.com/" "curl/8.5.0\x5Cevil\x0A" 0.012 4242"#,
            "\n",
            r#"127.0.0.1 - - [02/Dec/2026:01:00:00 +0000] "-" 200 13 "-" "-" 0.012 -"#,
            "\n"
        )
    );
}

#[test]
fn json_lines_parse_with_nulls_for_what_is_missing() {
    let request = summary();
    let text = logged(
        AccessLogFormat::Json,
        &[entry(Some(&request), Some(7)), entry(None, None)],
    );
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["time"], "2026-12-02T01:00:00.250Z");
    assert_eq!(lines[0]["user_agent"], "curl/8.5.0\\evil\n");
    assert_eq!(lines[0]["target"], "/a?q=\"x\"");
    assert_eq!(lines[0]["request_time"], 0.012);
    assert_eq!(lines[0]["pid"], 7);
    assert_eq!(lines[0]["queue_time"], 0.004);
    assert_eq!(lines[0]["status"], 200);
    assert!(lines[1]["method"].is_null() && lines[1]["pid"].is_null());
}

#[test]
fn reopen_moves_to_a_new_file_after_a_rename_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    let rotated = dir.path().join("access.log.1");
    let mut log = AccessLog::open(&path, AccessLogFormat::Combined).unwrap();
    log.record(&entry(None, Some(1))).unwrap();
    log.flush().unwrap();
    std::fs::rename(&path, &rotated).unwrap();
    // Written after the rename but before the reopen: still the old file's.
    log.record(&entry(None, Some(2))).unwrap();
    log.reopen().unwrap();
    log.record(&entry(None, Some(3))).unwrap();
    log.flush().unwrap();
    let pids = |file: &Path| -> Vec<String> {
        let text = std::fs::read_to_string(file).unwrap();
        text.lines()
            .map(|l| l.rsplit(' ').next().unwrap().to_string())
            .collect()
    };
    assert_eq!(pids(&rotated), ["1", "2"]);
    assert_eq!(pids(&path), ["3"]);
}

#[test]
fn a_path_that_cannot_be_opened_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-dir").join("access.log");
    let error = AccessLog::open(&path, AccessLogFormat::Combined)
        .err()
        .expect("no such directory");
    assert!(error.starts_with("--access-log "), "{error}");
    assert!(error.contains("cannot open it for writing"), "{error}");
    assert!(error.contains("No such file or directory"), "{error}");
}

#[test]
fn a_full_buffer_is_written_before_the_round_ends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    let mut log = AccessLog::open(&path, AccessLogFormat::Combined).unwrap();
    let line_bytes = {
        log.record(&entry(None, None)).unwrap();
        log.buffer.len()
    };
    for _ in 0..BUFFER_MAX_BYTES / line_bytes {
        log.record(&entry(None, None)).unwrap();
    }
    let written = std::fs::read_to_string(&path).unwrap();
    assert!(
        written.len() >= BUFFER_MAX_BYTES,
        "{} bytes written",
        written.len()
    );
    assert!(written.ends_with('\n'));
}

#[test]
fn a_failing_write_is_reported_once_until_writing_works_again() {
    // /dev/full takes no byte: every write fails with ENOSPC.
    let mut log = AccessLog::open(Path::new("/dev/full"), AccessLogFormat::Combined).unwrap();
    log.record(&entry(None, None)).unwrap();
    let error = log.flush().unwrap_err();
    assert!(error.contains("/dev/full: cannot write 1 lines"), "{error}");
    assert!(error.contains("No space left on device"), "{error}");
    log.record(&entry(None, None)).unwrap();
    assert_eq!(log.flush(), Ok(()), "reported once");
    assert!(log.buffer.is_empty(), "dropped, not held");
}

#[test]
fn ferry_sim_replays_both_formats_as_written() {
    use ferry_sim::accesslog::{AccessLog as Replayed, LogFormat};
    let request = summary();
    // The combined format has no queue time: a request is served for its 12 ms there; the
    // JSON line's 4 ms in the queue are taken off. The line no process served is served
    // for the served one's time.
    for (format, expected, service_nanos) in [
        (AccessLogFormat::Combined, LogFormat::Ferry, 12_000_000),
        (AccessLogFormat::Json, LogFormat::FerryJson, 8_000_000),
    ] {
        let text = logged(format, &[entry(Some(&request), Some(1)), entry(None, None)]);
        assert_eq!(LogFormat::detect(&text), expected);
        let log = Replayed::parse(&text, "access.log", expected).unwrap();
        assert_eq!((log.lines, log.unreadable_count), (2, 0), "{format:?}");
        assert!(
            log.requests
                .iter()
                .all(|r| r.service_nanos == service_nanos),
            "{format:?}: {:?}",
            log.requests
        );
    }
}
