//! The TLS transport against a real rustls client over loopback, driven the way the event
//! loop drives a client connection: edge-triggered events, `read_into` and `OutBuf`.

use super::*;
use crate::buffers::{read_into, OutBuf, ReadResult};
use mio::{Events, Poll};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::net::TcpListener;
use std::time::{Duration, Instant};

const TIME_LIMIT: Duration = Duration::from_secs(20);

struct Pki {
    server: Arc<ServerConfig>,
    cert: CertificateDer<'static>,
    _dir: tempfile::TempDir,
}

fn pki() -> Pki {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.key_pair.serialize_pem()).unwrap();
    Pki {
        server: crate::tls_config::load(&cert, &key).unwrap(),
        cert: made.cert.der().clone(),
        _dir: dir,
    }
}

fn client_config(pki: &Pki, version: &'static rustls::SupportedProtocolVersion) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    roots.add(pki.cert.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

type Client = StreamOwned<ClientConnection, std::net::TcpStream>;

/// A connected pair: the rustls client (blocking) and ferry's side (non-blocking,
/// registered for both directions, edge-triggered).
fn connect(pki: &Pki, config: ClientConfig) -> (Client, Transport, Poll) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    tcp.set_read_timeout(Some(TIME_LIMIT)).unwrap();
    tcp.set_write_timeout(Some(TIME_LIMIT)).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let session = ClientConnection::new(Arc::new(config), name).unwrap();
    let (accepted, _) = listener.accept().unwrap();
    accepted.set_nonblocking(true).unwrap();
    let mut transport = Transport::tls(TcpStream::from_std(accepted), &pki.server).unwrap();
    let poll = Poll::new().unwrap();
    poll.registry()
        .register(
            &mut transport,
            Token(0),
            Interest::READABLE | Interest::WRITABLE,
        )
        .unwrap();
    (StreamOwned::new(session, tcp), transport, poll)
}

/// Echoes `total` bytes back as the event loop would: reads only on readable events (with
/// `read_into`'s early stop on a short read), writes through an `OutBuf`.
fn echo(transport: &mut Transport, poll: &mut Poll, total: usize) {
    let started = Instant::now();
    let (mut inbuf, mut out, mut echoed) = (Vec::new(), OutBuf::default(), 0);
    let mut events = Events::with_capacity(16);
    while echoed < total || !out.is_empty() || transport.output_pending() {
        assert!(
            started.elapsed() < TIME_LIMIT,
            "echoed {echoed} of {total} bytes: an event was lost"
        );
        poll.poll(&mut events, Some(Duration::from_millis(200)))
            .unwrap();
        for event in events.iter() {
            if !event.is_readable() {
                continue;
            }
            loop {
                let result = read_into(transport, &mut inbuf, 64 * 1024, false);
                echoed += inbuf.len();
                out.buffer().append(&mut inbuf);
                match result {
                    ReadResult::Failed => panic!("the TLS read failed"),
                    ReadResult::Eof => panic!("the client closed early"),
                    // Stopped at the buffer's size: the socket may hold more.
                    ReadResult::Full => continue,
                    ReadResult::Open => break,
                }
            }
        }
        out.flush_to(transport).unwrap();
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn round_trip(version: &'static rustls::SupportedProtocolVersion) {
    let pki = pki();
    let (mut client, mut transport, mut poll) = connect(&pki, client_config(&pki, version));
    let data = pattern(300 * 1024);
    let sent = data.clone();
    let reader = std::thread::spawn(move || {
        client.write_all(&sent).unwrap();
        let mut back = vec![0u8; sent.len()];
        client.read_exact(&mut back).unwrap();
        let negotiated = client.conn.protocol_version();
        (
            back,
            negotiated,
            client.conn.alpn_protocol().map(<[u8]>::to_vec),
        )
    });
    echo(&mut transport, &mut poll, data.len());
    let (back, negotiated, client_alpn) = reader.join().unwrap();
    assert!(back == data, "the echoed bytes differ");
    assert_eq!(negotiated, Some(version.version));
    assert_eq!(client_alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(transport.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert!(!transport.handshaking());
}

#[test]
fn bytes_cross_tls_1_3_both_ways_with_alpn_http_1_1() {
    round_trip(&rustls::version::TLS13);
}

#[test]
fn bytes_cross_tls_1_2_both_ways_with_alpn_http_1_1() {
    round_trip(&rustls::version::TLS12);
}

#[test]
fn a_client_that_does_not_read_holds_the_backlog_in_the_output_buffer() {
    let pki = pki();
    let config = client_config(&pki, &rustls::version::TLS13);
    let (mut client, mut transport, mut poll) = connect(&pki, config);
    // Loopback autotuning lets a receive buffer grow to net.ipv4.tcp_rmem's maximum (32 MiB on
    // some machines): a fixed small one keeps what the kernel can take well under half of
    // `total`, whatever the machine's settings.
    rustix::net::sockopt::set_socket_recv_buffer_size(&client.sock, 128 * 1024).unwrap();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let total = 16 * 1024 * 1024;
    let reader = std::thread::spawn(move || {
        client.write_all(b"x").unwrap(); // completes the handshake
        let mut echoed = [0u8; 1];
        client.read_exact(&mut echoed).unwrap();
        go_rx.recv().unwrap();
        let mut back = vec![0u8; total];
        client.read_exact(&mut back).unwrap();
        back
    });
    echo(&mut transport, &mut poll, 1);
    let mut out = OutBuf::default();
    out.buffer().extend_from_slice(&pattern(total));
    out.flush_to(&mut transport).unwrap();
    // The socket and rustls took what they could; the rest waits where the spill logic sees it.
    assert!(
        out.pending() > total / 2,
        "only {} bytes left in the output buffer: the transport buffered the rest",
        out.pending()
    );
    go_tx.send(()).unwrap();
    let started = Instant::now();
    let mut events = Events::with_capacity(16);
    while !out.is_empty() || transport.output_pending() {
        assert!(
            started.elapsed() < TIME_LIMIT,
            "{} bytes not sent",
            out.pending()
        );
        poll.poll(&mut events, Some(Duration::from_millis(200)))
            .unwrap();
        out.flush_to(&mut transport).unwrap();
    }
    assert!(reader.join().unwrap() == pattern(total), "bytes differ");
}

#[test]
fn plain_http_on_a_tls_port_is_a_read_error_not_a_request() {
    let pki = pki();
    let config = client_config(&pki, &rustls::version::TLS13);
    let (client, mut transport, mut poll) = connect(&pki, config);
    let mut tcp = client.sock;
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let started = Instant::now();
    let mut events = Events::with_capacity(16);
    let mut inbuf = Vec::new();
    loop {
        assert!(started.elapsed() < TIME_LIMIT, "no error");
        poll.poll(&mut events, Some(Duration::from_millis(200)))
            .unwrap();
        match read_into(&mut transport, &mut inbuf, 64 * 1024, true) {
            ReadResult::Failed => break,
            ReadResult::Open => assert!(inbuf.is_empty()),
            ReadResult::Eof | ReadResult::Full => panic!("plain bytes were taken as TLS"),
        }
    }
    assert!(inbuf.is_empty());
}
