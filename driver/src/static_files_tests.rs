use super::*;

#[test]
fn ranges() {
    use RangeAnswer::*;
    assert_eq!(parse_range(b"bytes=0-9", 100), Part { start: 0, end: 9 });
    assert_eq!(parse_range(b"bytes=90-", 100), Part { start: 90, end: 99 });
    assert_eq!(parse_range(b"bytes=-10", 100), Part { start: 90, end: 99 });
    assert_eq!(parse_range(b"bytes=-500", 100), Part { start: 0, end: 99 });
    assert_eq!(
        parse_range(b"bytes=50-500", 100),
        Part { start: 50, end: 99 }
    );
    assert_eq!(parse_range(b"bytes=100-200", 100), Unsatisfiable);
    assert_eq!(parse_range(b"bytes=100-", 100), Unsatisfiable);
    assert_eq!(parse_range(b"bytes=-0", 100), Unsatisfiable);
    assert_eq!(
        parse_range(b"bytes=0-1,5-6", 100),
        Whole,
        "several ranges: whole"
    );
    assert_eq!(parse_range(b"bytes=9-1", 100), Whole, "invalid: ignored");
    assert_eq!(parse_range(b"items=0-1", 100), Whole);
}

#[test]
fn paths_that_leave_the_directory_are_refused() {
    assert_eq!(
        decode_segments(b"/a/b.txt"),
        Some(vec!["a".into(), "b.txt".into()])
    );
    assert_eq!(
        decode_segments(b"/a/./b"),
        Some(vec!["a".into(), "b".into()])
    );
    assert_eq!(decode_segments(b"/%68i.txt"), Some(vec!["hi.txt".into()]));
    for bad in [
        &b"/../secret"[..],
        b"/a/../../secret",
        b"/%2e%2e/secret",
        b"/%2E%2E%2Fsecret",
        b"/a%2f..%2f..%2fsecret",
        b"/a%00.txt",
        b"/bad%zz",
        b"/%ff%fe",
    ] {
        assert_eq!(
            decode_segments(bad),
            None,
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn etags_match_weakly_and_star_matches_all() {
    assert!(etag_listed(b"\"a\", W/\"b-1\"", "\"b-1\""));
    assert!(etag_listed(b"*", "\"x\""));
    assert!(!etag_listed(b"\"a\"", "\"b\""));
}

#[test]
fn content_types_by_extension() {
    assert_eq!(
        content_type(Path::new("a/b.CSS")),
        "text/css; charset=utf-8"
    );
    assert_eq!(content_type(Path::new("x.png")), "image/png");
    assert_eq!(content_type(Path::new("noext")), "application/octet-stream");
}
