//! HTTPS helpers: a certificate made at test time (no private key is ever committed), the
//! flags that serve it, a rustls client, and the real `curl` and `openssl` command lines.

use crate::tempdir::TempDir;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

/// A self-signed certificate for `localhost` and 127.0.0.1, with its key, in PEM files.
pub struct TestCert {
    pub dir: TempDir,
    pub cert: PathBuf,
    pub key: PathBuf,
    der: CertificateDer<'static>,
}

impl Default for TestCert {
    fn default() -> Self {
        TestCert::new()
    }
}

impl TestCert {
    pub fn new() -> TestCert {
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let made = rcgen::generate_simple_self_signed(names).expect("make a certificate");
        let dir = TempDir::new("ferry-tls");
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, made.cert.pem()).expect("write the certificate");
        std::fs::write(&key, made.key_pair.serialize_pem()).expect("write the key");
        TestCert {
            dir,
            cert,
            key,
            der: made.cert.der().clone(),
        }
    }

    /// `--ssl --ssl-certificate … --ssl-certificate-key …`.
    pub fn ssl_args(&self) -> Vec<String> {
        vec![
            "--ssl".to_string(),
            "--ssl-certificate".to_string(),
            self.cert.display().to_string(),
            "--ssl-certificate-key".to_string(),
            self.key.display().to_string(),
        ]
    }

    /// A rustls client that trusts this certificate only and offers ALPN `http/1.1`.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots
            .add(self.der.clone())
            .expect("trust the test certificate");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }

    /// A TLS connection to `addr`, handshake done, with a 20 s read timeout.
    pub fn connect(&self, addr: SocketAddr) -> TlsConn {
        let tcp = TcpStream::connect(addr).expect("connect to ferry");
        tcp.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("read timeout");
        let name = ServerName::try_from("localhost").expect("server name");
        let session = ClientConnection::new(self.client_config(), name).expect("TLS session");
        let mut stream = StreamOwned::new(session, tcp);
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .expect("the TLS handshake");
        }
        TlsConn {
            stream,
            buf: Vec::new(),
        }
    }
}

pub struct TlsConn {
    pub stream: StreamOwned<ClientConnection, TcpStream>,
    buf: Vec<u8>,
}

/// A response read off a [`TlsConn`].
#[derive(Debug)]
pub struct TlsResponse {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl TlsResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl TlsConn {
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send over TLS");
        self.stream.flush().expect("send over TLS");
    }

    /// Reads until `n` bytes are buffered; false at the server's close.
    fn fill_to(&mut self, n: usize) -> bool {
        let mut chunk = [0u8; 64 * 1024];
        while self.buf.len() < n {
            match self.stream.read(&mut chunk) {
                Ok(0) => return false,
                Ok(got) => self.buf.extend_from_slice(&chunk[..got]),
                Err(e) => panic!("reading over TLS: {e}"),
            }
        }
        true
    }

    /// Exactly `n` bytes (of a tunnel, say).
    pub fn read_bytes(&mut self, n: usize) -> Vec<u8> {
        assert!(self.fill_to(n), "the server closed before {n} bytes");
        self.buf.drain(..n).collect()
    }

    /// One response with a Content-Length body (or none), to a request of `method`.
    pub fn read_response(&mut self, method: &str) -> TlsResponse {
        let limits = ferry_http::Limits::default();
        let head = loop {
            match ferry_http::parse_response_head(&self.buf, &limits, method.as_bytes()) {
                Ok(Some(head)) => break head,
                Ok(None) => {
                    let want = self.buf.len() + 1;
                    assert!(self.fill_to(want), "the server closed before a response");
                }
                Err(e) => panic!("not an HTTP response: {e:?}"),
            }
        };
        let head_text = String::from_utf8_lossy(&self.buf[..head.head_len]).into_owned();
        self.buf.drain(..head.head_len);
        let body_len = match (method, head.status) {
            ("HEAD", _) | (_, 101 | 204 | 304) => 0,
            _ => head.content_length.unwrap_or(0) as usize,
        };
        let body = self.read_bytes(body_len);
        TlsResponse {
            status: head.status,
            head: head_text,
            body,
        }
    }

    /// Whether the server closed the connection (reads end of stream within the timeout).
    pub fn closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.stream.read(&mut byte), Ok(0))
    }
}

/// Fails the test, saying what to install, when `tool` is not on PATH.
pub fn require_tool(tool: &str) {
    let found = Command::new(tool).arg("--version").output().is_ok()
        || Command::new(tool).arg("version").output().is_ok();
    assert!(
        found,
        "`{tool}` is not installed: the HTTPS tests drive ferry with real clients; install \
         it (Debian: apt-get install -y curl openssl; .ci/run does)"
    );
}

/// `curl` trusting `cert`, with `--resolve` so `https://localhost:PORT` reaches 127.0.0.1.
pub fn curl(cert: &TestCert, port: u16, args: &[&str]) -> Output {
    require_tool("curl");
    Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "20", "--cacert"])
        .arg(&cert.cert)
        .arg("--resolve")
        .arg(format!("localhost:{port}:127.0.0.1"))
        .args(args)
        .output()
        .expect("run curl")
}

/// `openssl s_client` to 127.0.0.1:`port`, with `input` on its standard input.
pub fn s_client(cert: &TestCert, port: u16, args: &[&str], input: &[u8]) -> Output {
    require_tool("openssl");
    let mut child = Command::new("timeout")
        .args(["20", "openssl", "s_client", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-servername")
        .arg("localhost")
        .arg("-CAfile")
        .arg(&cert.cert)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run openssl s_client");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write to openssl");
    child.wait_with_output().expect("openssl s_client")
}
