//! A WSGI app that answers with how the request reached it: the scheme and forwarding
//! fields in its environ, as JSON.

use crate::tempdir::TempDir;

/// A WSGI app answering with the parts of its environ that tell how the request came.
pub const ENV_APP: &str = r#"
import json

KEYS = ["wsgi.url_scheme", "HTTPS", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_FOR",
        "HTTP_X_FORWARDED_HOST", "HTTP_FORWARDED", "REMOTE_ADDR", "SERVER_PORT"]

def application(environ, start_response):
    body = json.dumps({key: environ.get(key) for key in KEYS}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
"#;

/// [`ENV_APP`] in a directory of its own, as a WSGI app directory.
pub fn env_app() -> TempDir {
    let dir = TempDir::new("ferry-env-app");
    std::fs::write(dir.path().join("passenger_wsgi.py"), ENV_APP).expect("write the app");
    dir
}
