//! HTTPS settings: the certificate chain and private key, loaded and checked once at start
//! (before any app process spawns), so a wrong path or a key that does not belong to the
//! certificate is an error naming the file and the fix, not a failure at the first client.
//!
//! rustls with the `ring` provider; TLS 1.2 and 1.3; ALPN offers `http/1.1` only (ferry
//! speaks HTTP/1.1 to clients).

use rustls::crypto::ring;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use std::path::Path;
use std::sync::Arc;

/// The ALPN protocol ferry offers.
pub const ALPN_HTTP_1_1: &[u8] = b"http/1.1";

/// Loads `certificate` (PEM: the server's certificate first, then any intermediates) and
/// `key` (PEM: PKCS#8, PKCS#1 or SEC1), checks that they belong together, and builds the
/// configuration every TLS connection shares.
pub fn load(certificate: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let certificate_pem = read("--ssl-certificate", certificate)?;
    let chain = CertificateDer::pem_slice_iter(&certificate_pem)
        .collect::<Result<Vec<_>, pem::Error>>()
        .map_err(|e| {
            format!(
                "--ssl-certificate {}: not a valid PEM file ({e}); give the certificate in PEM form",
                certificate.display()
            )
        })?;
    if chain.is_empty() {
        return Err(format!(
            "--ssl-certificate {}: no certificate in it (no \"-----BEGIN CERTIFICATE-----\" \
             section); give the certificate chain in PEM form",
            certificate.display()
        ));
    }
    let key_pem = read("--ssl-certificate-key", key)?;
    let private_key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        let why = match e {
            pem::Error::NoItemsFound => {
                "no private key in it (no \"-----BEGIN PRIVATE KEY-----\", \
                                         RSA or EC PRIVATE KEY section)"
                    .to_string()
            }
            other => format!("not a valid PEM file ({other})"),
        };
        format!(
            "--ssl-certificate-key {}: {why}; give the certificate's private key in PEM form",
            key.display()
        )
    })?;
    let provider = Arc::new(ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_no_client_auth();
    let mut config = builder
        .with_single_cert(chain, private_key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => format!(
                "--ssl-certificate-key {} does not belong to the certificate in \
                 --ssl-certificate {}; give the key the certificate was issued for",
                key.display(),
                certificate.display()
            ),
            other => format!(
                "--ssl-certificate {} with --ssl-certificate-key {}: {other}; give a certificate \
                 and its private key in PEM form",
                certificate.display(),
                key.display()
            ),
        })?;
    config.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];
    Ok(Arc::new(config))
}

fn read(flag: &str, path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| {
        let fix = match e.kind() {
            std::io::ErrorKind::NotFound => "give the path of an existing PEM file",
            std::io::ErrorKind::PermissionDenied => {
                "make it readable by the user ferry runs as, or give another file"
            }
            _ => "give a readable PEM file",
        };
        format!("cannot read {flag} {}: {e}; {fix}", path.display())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn certified() -> rcgen::CertifiedKey {
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap()
    }

    #[test]
    fn a_certificate_and_its_key_load_with_alpn_http_1_1() {
        let dir = tempfile::tempdir().unwrap();
        let made = certified();
        let cert = write(dir.path(), "cert.pem", &made.cert.pem());
        let key = write(dir.path(), "key.pem", &made.key_pair.serialize_pem());
        let config = load(&cert, &key).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn a_missing_file_is_named_with_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let made = certified();
        let key = write(dir.path(), "key.pem", &made.key_pair.serialize_pem());
        let missing = dir.path().join("nope.pem");
        let error = load(&missing, &key).unwrap_err();
        assert!(
            error.starts_with(&format!(
                "cannot read --ssl-certificate {}",
                missing.display()
            )),
            "{error}"
        );
        assert!(error.contains("existing PEM file"), "{error}");
    }

    #[test]
    fn garbage_is_refused_as_no_certificate_or_no_key() {
        let dir = tempfile::tempdir().unwrap();
        let made = certified();
        let garbage = write(dir.path(), "garbage.pem", "this is not PEM\n");
        let cert = write(dir.path(), "cert.pem", &made.cert.pem());
        let key = write(dir.path(), "key.pem", &made.key_pair.serialize_pem());
        let error = load(&garbage, &key).unwrap_err();
        assert!(error.contains("no certificate in it"), "{error}");
        let error = load(&cert, &garbage).unwrap_err();
        assert!(error.contains("--ssl-certificate-key"), "{error}");
        assert!(error.contains("no private key in it"), "{error}");
        // The certificate given as the key holds no key either.
        let error = load(&cert, &cert).unwrap_err();
        assert!(error.contains("no private key in it"), "{error}");
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (one, other) = (certified(), certified());
        let cert = write(dir.path(), "cert.pem", &one.cert.pem());
        let key = write(dir.path(), "key.pem", &other.key_pair.serialize_pem());
        let error = load(&cert, &key).unwrap_err();
        assert!(
            error.contains("does not belong to the certificate"),
            "{error}"
        );
    }
}
