//! Request-head rules for the request target, one test per rule (helpers in `request_tests.rs`; every
//! input is fed whole, prefix by prefix, byte by byte and randomly split).

use super::request_tests::*;
use super::*;

#[test]
fn asterisk_form_is_only_for_options() {
    let input = request_with(b"OPTIONS * HTTP/1.1", &[HOST]);
    assert_eq!(accepted(&input).target_form, TargetForm::Asterisk);
    assert_status(
        400,
        &[
            &request_with(b"GET * HTTP/1.1", &[HOST]),
            &request_with(b"OPTIONS *x HTTP/1.1", &[HOST]),
        ],
    );
}

#[test]
fn authority_form_is_400_outside_connect() {
    assert_status(
        400,
        &[
            &request_with(b"GET example.com:443 HTTP/1.1", &[HOST]),
            &request_with(b"OPTIONS [::1]:443 HTTP/1.1", &[HOST]),
        ],
    );
}

#[test]
fn connect_is_501() {
    assert_status(
        501,
        &[&request_with(
            b"CONNECT example.com:443 HTTP/1.1",
            &[b"Host: example.com:443"],
        )],
    );
}

#[test]
fn relative_targets_are_400() {
    assert_status(
        400,
        &[
            &request_with(b"GET foo/bar HTTP/1.1", &[HOST]),
            &request_with(b"GET ./a HTTP/1.1", &[HOST]),
            &request_with(b"GET ?q HTTP/1.1", &[HOST]),
            &request_with(b"GET  / HTTP/1.1", &[HOST]),
            &request_with(b"GET s://]ufd/: HTTP/1.1", &[HOST]),
            &request_with(b"GET ftp://example.com/ HTTP/1.1", &[HOST]),
        ],
    );
}

#[test]
fn absolute_form_names_the_host() {
    let input = request_with(
        b"GET http://user:pass@example.com:8080/foo?q=1 HTTP/1.1",
        &[b"Host: other.example"],
    );
    let head = accepted(&input);
    let TargetForm::Absolute {
        authority,
        path_and_query,
    } = head.target_form
    else {
        panic!("{:?}", head.target_form)
    };
    assert_eq!(authority.get(&input), b"example.com:8080");
    assert_eq!(path_and_query.get(&input), b"/foo?q=1");
    assert_eq!(head.host(&input), Some(&b"example.com:8080"[..]));
    assert_eq!(
        head.target(&input),
        b"http://user:pass@example.com:8080/foo?q=1"
    );

    for target in [&b"HTTPS://[::1]:8080"[..], b"http://example.com?x"] {
        accepted(&request_with(
            &[b"GET ", target, b" HTTP/1.1"].concat(),
            &[HOST],
        ));
    }
    assert_status(
        400,
        &[
            &request_with(b"GET http:// HTTP/1.1", &[HOST]),
            &request_with(b"GET http:///path HTTP/1.1", &[HOST]),
            &request_with(b"GET http://user@/path HTTP/1.1", &[HOST]),
            &request_with(b"GET http://exa|mple.com/ HTTP/1.1", &[HOST]),
        ],
    );
}

#[test]
fn fragments_in_the_target_are_400() {
    assert_status(
        400,
        &[
            &request_with(b"GET /page#frag HTTP/1.1", &[HOST]),
            &request_with(b"GET /page?q=1#frag HTTP/1.1", &[HOST]),
            &request_with(b"GET /index.html#.png HTTP/1.1", &[HOST]),
        ],
    );
}

#[test]
fn unsafe_target_bytes_are_400() {
    for bad in [
        &b"/caf\xc3\xa9"[..],
        b"/\x80",
        b"/a\"b",
        b"/a<b",
        b"/a>b",
        b"/a\\b",
        b"/a`b",
        b"/a{b",
        b"/a}b",
        b"/?q=\"",
        b"/?q=<",
        b"/a\x00",
        b"/a\x7f",
        b"/a\tb",
        b"/?\x01",
    ] {
        let input = request_with(&[b"GET ", bad, b" HTTP/1.1"].concat(), &[HOST]);
        let error = rejected_with(&input, &Limits::default());
        assert_eq!(error.status, 400, "{:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn targets_keep_what_browsers_send_unencoded() {
    let target = b"/a|b^c[d]%20///x?q={x}|`^\\[]?&a=b";
    let input = request_with(&[b"GET ", &target[..], b" HTTP/1.1"].concat(), &[HOST]);
    assert_eq!(accepted(&input).target(&input), target);
}
