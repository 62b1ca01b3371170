//! The HTTPS comparison: ferry terminating TLS itself (`--ssl`) against HAProxy terminating
//! TLS with the same certificate, each in front of its own testapps (as in the HTTP table).
//! The certificate is made per run with the `openssl` CLI (EC P-256, self-signed); wrk,
//! which speaks https, does not verify it.

use crate::net::{free_port, wait_listening};
use crate::servers::{start_testapps, which, Ctx, Running};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A certificate and its key in PEM files, and both in one file, as HAProxy takes them.
pub struct BenchCert {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub combined: PathBuf,
}

pub fn make_cert(dir: &Path) -> Result<BenchCert, String> {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let openssl = which("openssl").ok_or("openssl not installed")?;
    let out = Command::new(openssl)
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run openssl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "openssl req failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let combined = dir.join("combined.pem");
    let mut both = fs::read(&cert).map_err(|e| e.to_string())?;
    both.extend(fs::read(&key).map_err(|e| e.to_string())?);
    fs::write(&combined, both).map_err(|e| e.to_string())?;
    Ok(BenchCert {
        cert,
        key,
        combined,
    })
}

/// ferry --ssl with --concurrency 0 (as the HTTP table's ferry-c0, like HAProxy without a
/// per-server maxconn).
pub fn start_ferry_tls(ctx: &Ctx, dir: &Path) -> Result<Running, String> {
    let cert = make_cert(dir)?;
    let command = ctx.testapp.to_string_lossy().into_owned();
    let (cert_path, key_path) = (
        cert.cert.display().to_string(),
        cert.key.display().to_string(),
    );
    let extra = [
        "--concurrency",
        "0",
        "--ssl",
        "--ssl-certificate",
        &cert_path,
        "--ssl-certificate-key",
        &key_path,
    ];
    let mut running =
        crate::servers::ferry_generic(ctx, dir, &command, ctx.apps, ctx.apps, &extra)?;
    running.scheme = "https";
    Ok(running)
}

/// HAProxy as in the HTTP table, its frontend binding TLS with ALPN http/1.1.
pub fn start_haproxy_tls(ctx: &Ctx, dir: &Path) -> Result<Running, String> {
    let cert = make_cert(dir)?;
    let mut guards = Vec::new();
    let app_ports = start_testapps(ctx, dir, ctx.apps, &mut guards)?;
    let port = free_port()?;
    let plain = crate::peers::haproxy_config(dir, port, &app_ports);
    let bind = format!("bind 127.0.0.1:{port}");
    let tls_bind = format!("{bind} ssl crt {} alpn http/1.1", cert.combined.display());
    let config = plain.replace(&bind, &tls_bind);
    let mut running = crate::peers::run_haproxy(dir, port, &config, guards, wait_listening)?;
    running.scheme = "https";
    Ok(running)
}
