//! The recording app (recording_app.py): a Python app that writes down every request it
//! receives, exactly as it arrived, for tests of what ferry forwards.

use crate::paths::one_session_unless_given;
use crate::server::Ferry;
use crate::tempdir;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;

/// A generic app in Python (standard library only) that records every request it receives,
/// whatever its target, as one JSON line in the file named by its first argument:
/// `{"method","target","version","headers":[[name,value],..],"body_b64"}` (raw bytes as latin-1
/// strings), written before it answers. It answers `200 ok`, except on these paths:
/// `/garbage` (bytes that are not HTTP, then close), `/cut` (a head with Content-Length: 100,
/// 10 body bytes, then close), `/upgrade` with `Upgrade: echo` (101, then
/// it echoes what it gets in upper case), `/refuse-upgrade` (200 `not upgraded`, whatever the
/// request asks).
pub const RECORDING_APP_PY: &str = include_str!("recording_app.py");

/// One request as the recording app received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub method: Vec<u8>,
    pub target: Vec<u8>,
    pub version: Vec<u8>,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Record {
    /// The value of the first field named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.as_slice())
    }
}

/// [`RECORDING_APP_PY`] in a directory of its own, with its record file.
pub struct RecordingApp {
    pub dir: tempdir::TempDir,
    pub record_file: PathBuf,
}

impl Default for RecordingApp {
    fn default() -> Self {
        RecordingApp::new()
    }
}

impl RecordingApp {
    pub fn new() -> RecordingApp {
        let dir = tempdir::TempDir::new("ferry-recorder");
        std::fs::write(dir.path().join("recorder.py"), RECORDING_APP_PY)
            .expect("write the recording app");
        let record_file = dir.path().join("records.jsonl");
        std::fs::write(&record_file, "").expect("create the record file");
        RecordingApp { dir, record_file }
    }

    /// `ferry start` arguments that serve this app (APP_DIR, --app-start-command), then `extra`.
    pub fn ferry_args(&self, extra: &[&str]) -> Vec<String> {
        let script = self.dir.path().join("recorder.py");
        let mut args = vec![
            self.dir.path().display().to_string(),
            "--app-start-command".to_string(),
            format!(
                "python3 '{}' '{}'",
                script.display(),
                self.record_file.display()
            ),
        ];
        args.extend(one_session_unless_given(extra));
        args
    }

    /// `ferry start` serving this app, in a registry of its own.
    pub fn start_ferry(&self, extra: &[&str]) -> Ferry {
        Ferry::start_in(
            Arc::new(tempdir::TempDir::new("ferry-e2e")),
            &self.ferry_args(extra),
            &[],
        )
    }

    /// Every request recorded so far, in arrival order.
    pub fn records(&self) -> Vec<Record> {
        let text = std::fs::read_to_string(&self.record_file).expect("read the record file");
        text.lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                let json: Value =
                    serde_json::from_str(line).unwrap_or_else(|e| panic!("record {line:?}: {e}"));
                let text = |key: &str| {
                    latin1_bytes(
                        json[key]
                            .as_str()
                            .unwrap_or_else(|| panic!("{key} in {line}")),
                    )
                };
                Record {
                    method: text("method"),
                    target: text("target"),
                    version: text("version"),
                    headers: json["headers"]
                        .as_array()
                        .expect("headers")
                        .iter()
                        .map(|pair| {
                            (
                                latin1_bytes(pair[0].as_str().unwrap()),
                                latin1_bytes(pair[1].as_str().unwrap()),
                            )
                        })
                        .collect(),
                    body: base64_decode(json["body_b64"].as_str().expect("body_b64")),
                }
            })
            .collect()
    }
}

/// Latin-1 text to bytes and base64 decoding, shared with the corpus support.
pub use ferry_http::corpus::{base64_decode, latin1_bytes};

/// Standard base64 with padding, to compare with the test app's `body_b64`.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
