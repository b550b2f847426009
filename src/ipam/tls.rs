//! How the console protects the token it sends to an IPAM server: HTTPS trusting this computer's
//! certificate authorities (plus an optional CA file per service), or exactly one pinned
//! certificate; plain HTTP only to this computer or when the administrator chose it. Also the
//! first-contact look at a server's certificate that lets an administrator pin it, like SSH.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::provider::IpamError;
use crate::fabric::connection::{ConnectionString, Scheme};
use crate::fabric::model::TlsTrust;
use crate::ipam_server::tls::{fingerprint, normalize_fingerprint};

/// How long the first-contact look at a server may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// The scheme a connection uses: the one typed; else HTTPS, except to this computer, where the
/// provider's default applies. A pinned certificate or a CA file means HTTPS.
pub fn effective_scheme(
    connection: &ConnectionString,
    trust: &TlsTrust,
    default_https: bool,
) -> Scheme {
    if let Some(s) = connection.scheme {
        return s;
    }
    if trust.fingerprint.is_some() || trust.ca_file.is_some() || !connection.is_loopback() {
        return Scheme::Https;
    }
    if default_https {
        Scheme::Https
    } else {
        Scheme::Http
    }
}

/// Whether (and how) a service's connection is encrypted, as its details and Test page say it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Encryption {
    /// TLS accepting exactly one certificate, by its SHA-256 fingerprint.
    Pinned,
    /// TLS with a certificate from an authority this computer trusts.
    SystemTrust,
    /// TLS with a certificate from this computer's authorities or those of a CA file.
    CaFile(PathBuf),
    /// Plain HTTP; `loopback` when the server is this computer.
    Cleartext { loopback: bool },
}

impl Encryption {
    pub fn of(connection: &ConnectionString, trust: &TlsTrust, default_https: bool) -> Self {
        match effective_scheme(connection, trust, default_https) {
            Scheme::Http => Encryption::Cleartext {
                loopback: connection.is_loopback(),
            },
            Scheme::Https if trust.fingerprint.is_some() => Encryption::Pinned,
            Scheme::Https => match &trust.ca_file {
                Some(f) => Encryption::CaFile(f.clone()),
                None => Encryption::SystemTrust,
            },
        }
    }

    /// A stored service's encryption, with its provider's default scheme.
    pub fn of_service(service: &crate::fabric::model::NetworkService) -> Self {
        let default_https = match service.provider.as_str() {
            super::builtin::PROVIDER_ID => super::builtin::DEFAULT_HTTPS,
            super::nautobot::PROVIDER_ID => super::nautobot::DEFAULT_HTTPS,
            _ => false,
        };
        Encryption::of(&service.connection, &service.trust(), default_https)
    }

    pub fn is_encrypted(&self) -> bool {
        !matches!(self, Encryption::Cleartext { .. })
    }

    /// "yes (…)" or "no (…)", after "Encrypted:".
    pub fn describe(&self) -> String {
        match self {
            Encryption::Pinned => "yes (TLS; only the pinned certificate is accepted)".into(),
            Encryption::SystemTrust => {
                "yes (TLS; certificate checked against this computer's trusted authorities)".into()
            }
            Encryption::CaFile(f) => format!(
                "yes (TLS; certificate checked against this computer's trusted authorities and {})",
                f.display()
            ),
            Encryption::Cleartext { loopback: true } => {
                "no (plain HTTP to this computer; the token does not cross a network)".into()
            }
            Encryption::Cleartext { loopback: false } => {
                "no (plain HTTP; the token crosses the network unencrypted, as chosen for this service)"
                    .into()
            }
        }
    }
}

/// A service's security settings that cannot work, naming the setting to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustProblem {
    #[error("the pinned fingerprint {0:?} is not a SHA-256 fingerprint (64 hex digits)")]
    Fingerprint(String),
    #[error("{0}")]
    CaFile(String),
    #[error(
        "the connection string says http://, which has no certificate, yet a certificate is pinned or a CA file is set; write https:// in the connection string"
    )]
    HttpWithCertificate,
    #[error(
        "the connection uses plain HTTP to another computer: anyone on the network path could read the token and reuse it"
    )]
    Cleartext,
}

/// Checks a connection's security settings without touching the network or files; gives the
/// pinned fingerprint in its normal form.
pub fn check_trust(
    connection: &ConnectionString,
    trust: &TlsTrust,
    scheme: Scheme,
) -> Result<Option<String>, TrustProblem> {
    let pinned = match trust.fingerprint.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(f) => {
            Some(normalize_fingerprint(f).ok_or_else(|| TrustProblem::Fingerprint(f.to_string()))?)
        }
    };
    if scheme == Scheme::Http {
        if pinned.is_some() || trust.ca_file.is_some() {
            return Err(TrustProblem::HttpWithCertificate);
        }
        if !connection.is_loopback() && !trust.allow_cleartext {
            return Err(TrustProblem::Cleartext);
        }
    }
    Ok(pinned)
}

/// Checks a connection's security settings and gives the TLS configuration for HTTPS (`None`
/// for plain HTTP). Plain HTTP to another computer is refused unless it was chosen.
pub fn client_tls(
    connection: &ConnectionString,
    trust: &TlsTrust,
    scheme: Scheme,
    server: &str,
) -> Result<Option<rustls::ClientConfig>, IpamError> {
    let tls_error = |detail: String| IpamError::Tls {
        server: server.to_string(),
        detail,
    };
    let pinned = check_trust(connection, trust, scheme).map_err(|p| match p {
        TrustProblem::Cleartext => IpamError::Cleartext {
            server: server.to_string(),
            detail: "anyone on the network path could read the token and reuse it".into(),
        },
        other => tls_error(other.to_string()),
    })?;
    if scheme == Scheme::Http {
        return Ok(None);
    }
    let provider = crypto_provider();
    let verifier: Arc<dyn ServerCertVerifier> = match pinned {
        Some(fp) => Arc::new(Verifier {
            mode: Mode::Pinned(fp),
            provider: provider.clone(),
        }),
        None => web_pki(trust.ca_file.as_deref(), &provider).map_err(tls_error)?,
    };
    client_config(provider, verifier, b"http/1.1")
        .map(Some)
        .map_err(tls_error)
}

/// A client configuration for `protocol` (ALPN) that checks server certificates with
/// `verifier`.
fn client_config(
    provider: Arc<CryptoProvider>,
    verifier: Arc<dyn ServerCertVerifier>,
    protocol: &[u8],
) -> Result<rustls::ClientConfig, String> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![protocol.to_vec()];
    Ok(config)
}

/// The TLS of a connection to a team's PostgreSQL database: the server's certificate checked
/// against this computer's authorities (and `ca_file`'s), and its name against the host's.
pub fn database_tls(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    let provider = crypto_provider();
    let verifier = web_pki(ca_file, &provider)?;
    client_config(provider, verifier, b"postgresql")
}

/// Sets up a client for a connection: its TLS, or plain HTTP when that is allowed.
pub fn configure(
    builder: reqwest::ClientBuilder,
    connection: &ConnectionString,
    trust: &TlsTrust,
    scheme: Scheme,
    server: &str,
) -> Result<reqwest::ClientBuilder, IpamError> {
    Ok(match client_tls(connection, trust, scheme, server)? {
        Some(config) => builder.use_preconfigured_tls(config),
        None => builder,
    })
}

fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// This computer's trusted authorities (the platform's store; `SSL_CERT_FILE` and
/// `SSL_CERT_DIR` are honoured), read once. A computer whose store cannot be read falls back
/// to the Mozilla authorities built into the program.
fn system_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::warn!(error = %e, "Part of the system's certificate store could not be read");
        }
        let mut roots = RootCertStore::empty();
        let (added, _) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            tracing::warn!(
                "The system's certificate store is empty or unreadable; trusting the built-in Mozilla authorities"
            );
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        roots
    })
}

/// The certificates of a PEM CA file; an error names the file and says what it must hold.
pub fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let iter = CertificateDer::pem_file_iter(path).map_err(|e| {
        format!(
            "the CA certificate file {} cannot be read ({e}); choose a PEM file holding the certificate authority's certificate",
            path.display()
        )
    })?;
    let certs: Vec<_> = iter.collect::<Result<_, _>>().map_err(|e| {
        format!(
            "the CA certificate file {} is not valid PEM ({e}); choose a PEM file holding the certificate authority's certificate",
            path.display()
        )
    })?;
    if certs.is_empty() {
        return Err(format!(
            "the CA certificate file {} holds no certificate; choose a PEM file with a BEGIN CERTIFICATE block",
            path.display()
        ));
    }
    Ok(certs)
}

fn web_pki(
    ca_file: Option<&Path>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>, String> {
    let mut roots = system_roots().clone();
    if let Some(path) = ca_file {
        let (added, _) = roots.add_parsable_certificates(read_ca_file(path)?);
        if added == 0 {
            return Err(format!(
                "the CA certificate file {} holds no usable certificate authority",
                path.display()
            ));
        }
    }
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| format!("TLS setup failed: {e}"))?;
    Ok(verifier)
}

/// The TLS failure somewhere in an error's chain, in words an administrator acts on; `None`
/// when the failure is not TLS.
pub fn failure(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(tls) = s.downcast_ref::<rustls::Error>() {
            return Some(match tls {
                rustls::Error::General(message) => message.clone(),
                rustls::Error::InvalidCertificate(_) => {
                    format!("the server's certificate was refused: {}", describe_rejection(tls, "the server"))
                }
                rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
                    "the server did not answer in TLS; if it offers only plain HTTP, write http:// in the connection string".to_string()
                }
                other => other.to_string(),
            });
        }
        // io::Error::source() skips the error it wraps, so look inside explicitly.
        source = match s
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => s.source(),
        };
    }
    None
}

/// What a certificate problem means to an administrator.
fn describe_rejection(e: &rustls::Error, host: &str) -> String {
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => "it is not issued by an authority this computer trusts (a self-signed certificate, or a company's own certificate authority)".into(),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!("it is not valid for the name {host}")
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => "it has expired".into(),
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => "it is not valid yet (check this computer's clock)".into(),
            CertificateError::Revoked => "it has been revoked".into(),
            other => format!("it was rejected ({other:?})"),
        },
        other => other.to_string(),
    }
}

/// Accepts one pinned certificate, or (for a first look) any certificate while recording it.
/// Handshake signatures are still checked against the certificate's key.
#[derive(Debug)]
struct Verifier {
    mode: Mode,
    provider: Arc<CryptoProvider>,
}

#[derive(Debug)]
enum Mode {
    Pinned(String),
    Record(Mutex<Vec<CertificateDer<'static>>>),
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.mode {
            Mode::Pinned(pinned) => {
                let got = fingerprint(end_entity);
                if &got == pinned {
                    Ok(ServerCertVerified::assertion())
                } else {
                    let begins = |hex: &str| colons(&hex[..hex.len().min(16)]);
                    Err(rustls::Error::General(format!(
                        "the server's certificate has changed: its SHA-256 fingerprint now begins {}, the pinned one {}. \
                         If it was replaced on purpose, compare the new one with the server's administrator (`service certificate`) and trust it again",
                        begins(&got),
                        begins(pinned)
                    )))
                }
            }
            Mode::Record(chain) => {
                let mut chain = chain.lock().unwrap_or_else(|p| p.into_inner());
                chain.clear();
                chain.push(end_entity.clone().into_owned());
                chain.extend(intermediates.iter().map(|c| c.clone().into_owned()));
                Ok(ServerCertVerified::assertion())
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

// ---------------------------------------------------------------- first contact

/// A server certificate as the administrator checks it before trusting it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateInfo {
    pub subject: String,
    pub issuer: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    /// The names and addresses it is valid for.
    pub names: Vec<String>,
    /// Lower-case hex SHA-256 of the certificate.
    pub fingerprint: String,
}

impl CertificateInfo {
    pub fn parse(der: &CertificateDer<'_>) -> Result<Self, String> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| format!("the server's certificate cannot be read: {e}"))?;
        let time = |t: x509_parser::time::ASN1Time| {
            DateTime::from_timestamp(t.timestamp(), 0).unwrap_or_default()
        };
        let mut names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    x509_parser::extensions::GeneralName::DNSName(n) => names.push(n.to_string()),
                    x509_parser::extensions::GeneralName::IPAddress(b) => {
                        let ip = match b.len() {
                            4 => <[u8; 4]>::try_from(*b).ok().map(std::net::IpAddr::from),
                            16 => <[u8; 16]>::try_from(*b).ok().map(std::net::IpAddr::from),
                            _ => None,
                        };
                        names.extend(ip.map(|ip| ip.to_string()));
                    }
                    _ => {}
                }
            }
        }
        let show = |n: &x509_parser::x509::X509Name<'_>| {
            let s = n.to_string();
            if s.is_empty() {
                "(empty)".to_string()
            } else {
                s
            }
        };
        Ok(CertificateInfo {
            subject: show(cert.subject()),
            issuer: show(cert.issuer()),
            not_before: time(cert.validity().not_before),
            not_after: time(cert.validity().not_after),
            names,
            fingerprint: fingerprint(der),
        })
    }

    /// The fingerprint as administrators compare it: upper-case pairs joined by colons.
    pub fn fingerprint_colons(&self) -> String {
        colons(&self.fingerprint)
    }

    /// The same on two lines of 16 pairs, to fit a dialog.
    pub fn fingerprint_two_lines(&self) -> String {
        colons_two_lines(&self.fingerprint)
    }
}

/// `ab12…` as `AB:12:…`.
pub fn colons(hex: &str) -> String {
    hex.as_bytes()
        .chunks(2)
        .map(|p| String::from_utf8_lossy(p).to_ascii_uppercase())
        .collect::<Vec<_>>()
        .join(":")
}

/// `colons` on two lines of 16 pairs each (a SHA-256 fingerprint), to fit a dialog.
pub fn colons_two_lines(hex: &str) -> String {
    let pairs = colons(hex);
    match pairs.char_indices().filter(|(_, c)| *c == ':').nth(15) {
        Some((i, _)) => format!("{}\n{}", &pairs[..=i], &pairs[i + 1..]),
        None => pairs,
    }
}

/// What a server offers on first contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offer {
    /// HTTPS, with its certificate and whether this computer (with the CA file) trusts it, or why not.
    Tls {
        certificate: CertificateInfo,
        trusted: Result<(), String>,
    },
    /// Plain HTTP only.
    Plain,
}

/// The first-contact look at a server: the connection with its scheme spelled out, and its offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub connection: ConnectionString,
    pub offer: Offer,
}

/// Connects to a server without sending any credential: HTTPS first (unless `http://` was
/// typed), recording its certificate; else checks that it answers plain HTTP.
pub async fn probe(
    connection: &ConnectionString,
    default_port: u16,
    ca_file: Option<&Path>,
    timeout: Duration,
) -> Result<Probe, String> {
    let host = connection.host_name();
    let port = connection.port_or(default_port);
    let target = format!("{}:{port}", connection.host);
    let unreachable = |e: &dyn std::fmt::Display| {
        format!(
            "Cannot reach {target}: {e}. Check the connection string and that the server is running."
        )
    };
    let connect = || async {
        match tokio::time::timeout(timeout, TcpStream::connect((host.as_str(), port))).await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(unreachable(&e)),
            Err(_) => Err(unreachable(&format!(
                "no answer within {} seconds",
                timeout.as_secs()
            ))),
        }
    };
    if connection.scheme != Some(Scheme::Http) {
        let stream = connect().await?;
        match tokio::time::timeout(timeout, handshake(stream, &host)).await {
            Ok(Ok(chain)) => {
                let offer = judge(&chain, &host, ca_file)?;
                return Ok(Probe {
                    connection: connection.with_scheme(Scheme::Https),
                    offer,
                });
            }
            Ok(Err(e)) if connection.scheme == Some(Scheme::Https) => {
                return Err(format!(
                    "{target} does not offer HTTPS ({e}). Check the port, or write http:// if the server only offers plain HTTP."
                ));
            }
            Err(_) => {
                return Err(format!(
                    "{target} accepted a connection but did not complete a TLS handshake within {} seconds. Check the port.",
                    timeout.as_secs()
                ));
            }
            Ok(Err(_)) => {}
        }
    }
    let mut stream = connect().await?;
    let request = format!(
        "HEAD / HTTP/1.1\r\nHost: {target}\r\nUser-Agent: fabric-console\r\nConnection: close\r\n\r\n"
    );
    let mut answer = [0u8; 5];
    let read = async {
        stream.write_all(request.as_bytes()).await?;
        stream.read_exact(&mut answer).await
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(Ok(_)) if &answer == b"HTTP/" => Ok(Probe {
            connection: connection.with_scheme(Scheme::Http),
            offer: Offer::Plain,
        }),
        Ok(Ok(_)) | Ok(Err(_)) => Err(format!(
            "{target} answers neither HTTPS nor HTTP. Check the connection string and its port."
        )),
        Err(_) => Err(format!(
            "{target} did not answer a plain HTTP request within {} seconds. Check the port.",
            timeout.as_secs()
        )),
    }
}

/// A TLS handshake that accepts any certificate and keeps the chain the server sent.
async fn handshake(stream: TcpStream, host: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let provider = crypto_provider();
    let verifier = Arc::new(Verifier {
        mode: Mode::Record(Mutex::new(Vec::new())),
        provider: provider.clone(),
    });
    let config = client_config(provider, verifier.clone(), b"http/1.1")?;
    let name = ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .map_err(|e| e.to_string())?;
    let _ = tls.shutdown().await;
    let Mode::Record(chain) = &verifier.mode else {
        return Err("no certificate was recorded".into());
    };
    let chain = chain.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if chain.is_empty() {
        return Err("the server sent no certificate".into());
    }
    Ok(chain)
}

/// Reads the server's certificate and checks it as a connection without a pin would.
fn judge(
    chain: &[CertificateDer<'static>],
    host: &str,
    ca_file: Option<&Path>,
) -> Result<Offer, String> {
    let certificate = CertificateInfo::parse(&chain[0])?;
    let verifier = web_pki(ca_file, &crypto_provider())?;
    let name = ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
    let trusted = verifier
        .verify_server_cert(&chain[0], &chain[1..], &name, &[], UnixTime::now())
        .map(|_| ())
        .map_err(|e| describe_rejection(&e, host));
    Ok(Offer::Tls {
        certificate,
        trusted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(s: &str) -> ConnectionString {
        ConnectionString::parse(s).unwrap()
    }

    #[test]
    fn https_is_the_default_except_to_this_computer() {
        let none = TlsTrust::default();
        assert_eq!(
            effective_scheme(&conn("ipam.contoso.com"), &none, false),
            Scheme::Https
        );
        assert_eq!(
            effective_scheme(&conn("127.0.0.1:1"), &none, false),
            Scheme::Http
        );
        assert_eq!(
            effective_scheme(&conn("127.0.0.1:1"), &none, true),
            Scheme::Https
        );
        assert_eq!(
            effective_scheme(&conn("http://ipam.contoso.com"), &none, true),
            Scheme::Http
        );
        let pinned = TlsTrust::pinned(Some("ab".repeat(32)));
        assert_eq!(
            effective_scheme(&conn("localhost:5"), &pinned, false),
            Scheme::Https
        );
    }

    #[test]
    fn plain_http_to_another_host_needs_an_explicit_choice() {
        let remote = conn("http://ipam.contoso.com");
        let err = client_tls(&remote, &TlsTrust::default(), Scheme::Http, "IPAM1").unwrap_err();
        assert!(matches!(err, IpamError::Cleartext { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("IPAM1") && msg.contains("--allow-insecure-http"),
            "{msg}"
        );
        let chosen = TlsTrust {
            allow_cleartext: true,
            ..TlsTrust::default()
        };
        assert!(
            client_tls(&remote, &chosen, Scheme::Http, "IPAM1")
                .unwrap()
                .is_none()
        );
        // This computer needs no choice.
        let local = conn("http://localhost:8080");
        assert!(
            client_tls(&local, &TlsTrust::default(), Scheme::Http, "x")
                .unwrap()
                .is_none()
        );
        assert_eq!(
            Encryption::of(&remote, &chosen, false),
            Encryption::Cleartext { loopback: false }
        );
        assert!(
            Encryption::of(&remote, &chosen, false)
                .describe()
                .starts_with("no")
        );
    }

    #[test]
    fn http_with_a_pinned_certificate_is_an_error_not_a_silent_downgrade() {
        let pinned = TlsTrust::pinned(Some("ab".repeat(32)));
        let err = client_tls(&conn("http://localhost:1"), &pinned, Scheme::Http, "S").unwrap_err();
        assert!(err.to_string().contains("https://"), "{err}");
        let bad = TlsTrust::pinned(Some("xyz".into()));
        let err = client_tls(&conn("https://a.b"), &bad, Scheme::Https, "S").unwrap_err();
        assert!(err.to_string().contains("64 hex digits"), "{err}");
    }

    #[test]
    fn a_bad_ca_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = read_ca_file(&missing).unwrap_err();
        assert!(err.contains("missing.pem") && err.contains("PEM"), "{err}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = read_ca_file(&empty).unwrap_err();
        assert!(err.contains("no certificate"), "{err}");
        let trust = TlsTrust {
            ca_file: Some(empty),
            ..TlsTrust::default()
        };
        let err = client_tls(&conn("https://a.b"), &trust, Scheme::Https, "S").unwrap_err();
        assert!(matches!(err, IpamError::Tls { .. }), "{err}");
    }

    #[test]
    fn fingerprints_show_as_colon_pairs() {
        assert_eq!(colons("ab01ff"), "AB:01:FF");
        let info = CertificateInfo {
            subject: String::new(),
            issuer: String::new(),
            not_before: Utc::now(),
            not_after: Utc::now(),
            names: Vec::new(),
            fingerprint: "ab".repeat(32),
        };
        let lines: Vec<_> = info
            .fingerprint_two_lines()
            .lines()
            .map(String::from)
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), 16 * 3);
        assert_eq!(lines.concat(), info.fingerprint_colons());
    }
}
