//! The sockets ferry accepts clients on: `--port`, plain HTTP or (with `--ssl` and no
//! `--ssl-port`) HTTPS, and with `--ssl --ssl-port N` HTTPS on N as well.

use crate::cli::StartArgs;
use mio::net::TcpListener;
use mio::Token;
use rustls::ServerConfig;
use std::sync::Arc;

/// The event-loop tokens of the listeners, in the order of [`Listener`]s (1 and 2 are the
/// admin socket and signals, 3 the metrics listener: see `server` and `observer`).
pub const TOKENS: [Token; 2] = [Token(0), Token(4)];

pub struct Listener {
    pub socket: TcpListener,
    /// Clients on this socket speak TLS.
    pub tls: Option<Arc<ServerConfig>>,
    pub port: u16,
}

/// A socket to listen on, before the event loop takes it.
pub struct Planned {
    pub socket: std::net::TcpListener,
    pub tls: Option<Arc<ServerConfig>>,
    pub port: u16,
}

/// Checks the HTTPS flags and loads the certificate and key: at start, before anything
/// spawns. `None` without `--ssl`.
pub fn tls_config(args: &StartArgs) -> Result<Option<Arc<ServerConfig>>, String> {
    if !args.ssl {
        let stray = [
            (args.ssl_certificate.is_some(), "--ssl-certificate"),
            (args.ssl_certificate_key.is_some(), "--ssl-certificate-key"),
            (args.ssl_port.is_some(), "--ssl-port"),
        ];
        if let Some((_, flag)) = stray.iter().find(|(given, _)| *given) {
            return Err(format!(
                "{flag} is given without --ssl; add --ssl to serve HTTPS"
            ));
        }
        return Ok(None);
    }
    let (Some(certificate), Some(key)) = (&args.ssl_certificate, &args.ssl_certificate_key) else {
        return Err(
            "--ssl needs --ssl-certificate PATH and --ssl-certificate-key PATH (PEM \
                    files: the certificate chain and its private key)"
                .to_string(),
        );
    };
    if args
        .ssl_port
        .is_some_and(|ssl_port| ssl_port == args.port && ssl_port != 0)
    {
        return Err(format!(
            "--ssl-port {} is --port too; give another port for HTTPS, or leave out \
             --ssl-port to serve HTTPS on --port",
            args.port
        ));
    }
    crate::tls_config::load(certificate, key).map(Some)
}

/// Where to listen and how: `--port` (HTTPS with `--ssl` alone), then `--ssl-port`.
pub fn plan(
    args: &StartArgs,
    tls: Option<Arc<ServerConfig>>,
) -> Vec<(u16, Option<Arc<ServerConfig>>)> {
    match (tls, args.ssl_port) {
        (Some(tls), Some(ssl_port)) => vec![(args.port, None), (ssl_port, Some(tls))],
        (tls, _) => vec![(args.port, tls)],
    }
}
