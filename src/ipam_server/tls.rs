//! The server's self-signed certificate (kept in the data directory) and its SHA-256 fingerprint,
//! which the console pins instead of trusting a certificate authority.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

pub const CERT_FILE: &str = "tls-cert.pem";
pub const KEY_FILE: &str = "tls-key.pem";

pub struct ServerCertificate {
    pub cert: CertificateDer<'static>,
    pub key: PrivateKeyDer<'static>,
    pub fingerprint: String,
}

/// Lower-case hex SHA-256 of a DER certificate.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// Accepts `AB:CD:..`, `abcd..`, with or without separators; `None` unless 32 bytes of hex remain.
pub fn normalize_fingerprint(input: &str) -> Option<String> {
    let hex: String = input
        .chars()
        .filter(|c| !matches!(c, ':' | ' ' | '-'))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit())).then_some(hex)
}

/// Loads the certificate from `dir`, or generates one (and saves it there when `dir` is given).
pub fn load_or_create(dir: Option<&Path>, names: &[String]) -> Result<ServerCertificate, String> {
    if let Some(d) = dir {
        let cert_path = d.join(CERT_FILE);
        let key_path = d.join(KEY_FILE);
        if cert_path.exists() && key_path.exists() {
            let cert = CertificateDer::from_pem_file(&cert_path)
                .map_err(|e| format!("cannot read {}: {e}", cert_path.display()))?;
            let key = PrivateKeyDer::from_pem_file(&key_path)
                .map_err(|e| format!("cannot read {}: {e}", key_path.display()))?;
            let fingerprint = fingerprint(&cert);
            return Ok(ServerCertificate {
                cert,
                key,
                fingerprint,
            });
        }
    }
    let generated = self_signed(names)
        .map_err(|e| format!("cannot generate a self-signed certificate: {e}"))?;
    if let Some(d) = dir {
        std::fs::write(d.join(CERT_FILE), generated.cert.pem())
            .map_err(|e| format!("cannot write {}: {e}", d.join(CERT_FILE).display()))?;
        super::write_private_file(&d.join(KEY_FILE), &generated.key_pair.serialize_pem())
            .map_err(|e| format!("cannot write {}: {e}", d.join(KEY_FILE).display()))?;
    }
    let cert: CertificateDer<'static> = generated.cert.der().clone();
    let key = PrivateKeyDer::try_from(generated.key_pair.serialize_der())
        .map_err(|e| format!("generated key is unusable: {e}"))?;
    Ok(ServerCertificate {
        fingerprint: fingerprint(&cert),
        cert,
        key,
    })
}

/// A self-signed certificate for `names`, its subject naming the product, so that an
/// administrator comparing it on first contact sees what it is.
fn self_signed(names: &[String]) -> Result<rcgen::CertifiedKey, rcgen::Error> {
    let mut params = rcgen::CertificateParams::new(names.to_vec())?;
    let mut subject = rcgen::DistinguishedName::new();
    subject.push(rcgen::DnType::CommonName, "Fabric Console IPAM Server");
    params.distinguished_name = subject;
    let key_pair = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key_pair)?;
    Ok(rcgen::CertifiedKey { cert, key_pair })
}

pub fn rustls_config(cert: &ServerCertificate) -> Result<Arc<rustls::ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.clone()], cert.key.clone_key())
        .map_err(|e| format!("TLS certificate rejected: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_normalize() {
        let f = "AB:".repeat(31) + "AB";
        assert_eq!(normalize_fingerprint(&f), Some("ab".repeat(32)));
        assert_eq!(normalize_fingerprint("abc"), None);
    }

    #[test]
    fn certificate_is_kept_in_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(Some(dir.path()), &["localhost".into()]).unwrap();
        let b = load_or_create(Some(dir.path()), &["localhost".into()]).unwrap();
        assert_eq!(a.fingerprint, b.fingerprint);
        assert!(rustls_config(&b).is_ok());
    }
}
