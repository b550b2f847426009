//! Secure by default, end to end: a self-signed server reached after pinning and refused after
//! its certificate changes; a company's internal CA trusted through a CA file and through the
//! system's trust store; plain HTTP to another computer refused without an explicit choice.
//! Real servers on loopback ports, real TLS.

#[path = "support/tls_proxy.rs"]
mod tls_proxy;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use fabric_console::fabric::connection::{ConnectionString, Scheme};
use fabric_console::fabric::model::{Fabric, HostGroupScope, TlsTrust};
use fabric_console::ipam::builtin::BuiltinProviderFactory;
use fabric_console::ipam::nautobot::NautobotProviderFactory;
use fabric_console::ipam::provider::{
    Credentials, IpamError, IpamProvider, ProviderConfig, ProviderFactory, TestReport,
};
use fabric_console::ipam::registry::ProviderRegistry;
use fabric_console::ipam::tls::TrustProblem;
use fabric_console::ipam::tls::{self, Encryption, Offer};
use fabric_console::ipam_server::{self as server, Role, RunningServer, ServerConfig};
use fabric_console::ops::service::{self as ops_service, ServiceDraft, ServiceError, ServiceField};
use tls_proxy::InternalCa;

fn config(url: &str, token: &str, trust: TlsTrust) -> ProviderConfig {
    ProviderConfig {
        connection: ConnectionString::parse(url).expect("connection string"),
        credentials: Credentials {
            user_name: "ipam-svc".into(),
            secret: token.into(),
        },
        trust,
        service_name: "IPAM1".into(),
        event_source: None,
    }
}

fn connect(url: &str, token: &str, trust: TlsTrust) -> Arc<dyn IpamProvider> {
    BuiltinProviderFactory::new()
        .connect(config(url, token, trust))
        .expect("provider")
}

async fn test_of(url: &str, token: &str, trust: TlsTrust) -> TestReport {
    connect(url, token, trust).test().await
}

async fn start_tls(data: &Path, listen: Option<std::net::SocketAddr>) -> RunningServer {
    let mut config = ServerConfig {
        tls: true,
        data_dir: Some(data.to_path_buf()),
        ..ServerConfig::ephemeral()
    };
    if let Some(addr) = listen {
        config.listen = addr;
    }
    server::start(config).await.expect("server starts")
}

/// The connection string without its scheme, as an administrator types it.
fn typed(server: &RunningServer) -> ConnectionString {
    ConnectionString::parse(&server.addr().to_string()).unwrap()
}

#[tokio::test]
async fn a_self_signed_server_is_pinned_on_first_contact_and_refused_after_its_certificate_changes()
{
    let dir = tempfile::tempdir().unwrap();
    let server = start_tls(dir.path(), None).await;
    let token = server.issue_token(Role::AsmAdministrator);
    let first = server.tls_fingerprint().unwrap();

    // First contact: no credential is sent; the certificate is shown, not trusted.
    let probe = tls::probe(&typed(&server), 1, None, tls::PROBE_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(
        probe.connection.scheme,
        Some(Scheme::Https),
        "HTTPS is offered, so used"
    );
    let Offer::Tls {
        certificate,
        trusted,
    } = &probe.offer
    else {
        panic!("{probe:?}")
    };
    assert_eq!(certificate.fingerprint, first);
    assert!(
        certificate.names.iter().any(|n| n == "localhost"),
        "{certificate:?}"
    );
    assert!(certificate.not_before < certificate.not_after);
    assert!(
        trusted
            .as_ref()
            .unwrap_err()
            .contains("not issued by an authority"),
        "{trusted:?}"
    );

    // Unpinned, the system's authorities refuse it; pinned, it is reached.
    let url = probe.connection.to_string();
    let report = test_of(&url, &token, TlsTrust::default()).await;
    assert!(!report.passed());
    assert!(
        report.tests[0].detail.contains("TLS"),
        "{:?}",
        report.tests[0]
    );
    let pinned = TlsTrust::pinned(Some(tls::colons(&first)));
    let report = test_of(&url, &token, pinned.clone()).await;
    assert!(report.passed(), "{report:#?}");
    assert_eq!(report.encryption, Some(Encryption::Pinned));

    // The server gets a new certificate at the same address: the pin refuses it, clearly.
    let addr = server.addr();
    server.shutdown().await;
    for f in ["tls-cert.pem", "tls-key.pem"] {
        std::fs::remove_file(dir.path().join(f)).unwrap();
    }
    let server = start_tls(dir.path(), Some(addr)).await;
    assert_ne!(server.tls_fingerprint().unwrap(), first);
    let report = test_of(&url, &token, pinned).await;
    assert!(!report.passed());
    let detail = &report.tests[0].detail;
    assert!(
        detail.contains("certificate has changed") && detail.contains(&tls::colons(&first[..16])),
        "{detail}"
    );
    let err = connect(&url, &token, TlsTrust::pinned(Some(first.clone())))
        .server_time()
        .await
        .unwrap_err();
    assert!(matches!(err, IpamError::Tls { .. }), "{err:?}");
    assert!(
        err.to_string().contains("IPAM1"),
        "names the service: {err}"
    );
}

#[tokio::test]
async fn an_internal_ca_is_trusted_through_the_services_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let ca = InternalCa::issue(&["127.0.0.1", "localhost"]);
    std::fs::write(dir.path().join("tls-cert.pem"), &ca.cert_pem).unwrap();
    std::fs::write(dir.path().join("tls-key.pem"), &ca.key_pem).unwrap();
    let ca_file = dir.path().join("contoso-ca.pem");
    std::fs::write(&ca_file, &ca.ca_pem).unwrap();
    let server = start_tls(dir.path(), None).await;
    let token = server.issue_token(Role::AsmAdministrator);
    let url = server.base_url();

    let report = test_of(&url, &token, TlsTrust::default()).await;
    assert!(!report.passed(), "an unknown authority is refused");
    let with_ca = TlsTrust {
        ca_file: Some(ca_file.clone()),
        ..TlsTrust::default()
    };
    let report = test_of(&url, &token, with_ca).await;
    assert!(report.passed(), "{report:#?}");
    assert_eq!(report.encryption, Some(Encryption::CaFile(ca_file.clone())));

    // The first look says the same, with and without the file.
    let conn = typed(&server);
    let without = tls::probe(&conn, 1, None, tls::PROBE_TIMEOUT)
        .await
        .unwrap();
    let with = tls::probe(&conn, 1, Some(&ca_file), tls::PROBE_TIMEOUT)
        .await
        .unwrap();
    match (&without.offer, &with.offer) {
        (
            Offer::Tls {
                trusted: Err(_),
                certificate,
            },
            Offer::Tls {
                trusted: Ok(()), ..
            },
        ) => assert!(
            certificate.issuer.contains("Contoso Internal Root CA"),
            "{certificate:?}"
        ),
        other => panic!("{other:?}"),
    }
}

/// The platform's trust store (here through `SSL_CERT_FILE`, which the store honours) is
/// trusted without any setting of the service. Run in a child process: the store is read once.
#[tokio::test]
async fn the_systems_trust_store_is_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let ca = InternalCa::issue(&["127.0.0.1"]);
    std::fs::write(dir.path().join("tls-cert.pem"), &ca.cert_pem).unwrap();
    std::fs::write(dir.path().join("tls-key.pem"), &ca.key_pem).unwrap();
    let store = dir.path().join("system-store.pem");
    std::fs::write(&store, &ca.ca_pem).unwrap();
    let server = start_tls(dir.path(), None).await;
    let url = server.base_url();
    let look = move |store: Option<&Path>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fabric-console"));
        cmd.args(["service", "certificate", &url])
            .env_remove("SSL_CERT_DIR")
            .env("FABRIC_CONSOLE_DATA", dir.path().join("console"));
        match store {
            Some(s) => cmd.env("SSL_CERT_FILE", s),
            None => cmd.env_remove("SSL_CERT_FILE"),
        };
        cmd.output().unwrap()
    };
    let store2 = store.clone();
    let (trusted, untrusted) =
        tokio::task::spawn_blocking(move || (look(Some(&store2)), look(None)))
            .await
            .unwrap();
    let out = String::from_utf8_lossy(&trusted.stdout);
    assert!(
        trusted.status.success(),
        "{out} {}",
        String::from_utf8_lossy(&trusted.stderr)
    );
    assert!(out.contains("Trusted:      yes"), "{out}");
    assert!(
        out.contains(&tls::colons(&server.tls_fingerprint().unwrap())),
        "{out}"
    );
    let out = String::from_utf8_lossy(&untrusted.stdout);
    assert!(out.contains("Trusted:      no"), "{out}");
    assert!(
        out.contains("--tls-fingerprint"),
        "says how to pin it: {out}"
    );
}

#[tokio::test]
async fn plain_http_to_another_computer_needs_an_explicit_choice() {
    // Refused before anything is sent, by both providers.
    let remote = "http://ipam1.contoso.invalid:8080";
    for factory in [
        Arc::new(BuiltinProviderFactory::new()) as Arc<dyn ProviderFactory>,
        Arc::new(NautobotProviderFactory::new()),
    ] {
        let err = factory
            .connect(config(remote, "token", TlsTrust::default()))
            .err()
            .expect("refused");
        assert!(matches!(err, IpamError::Cleartext { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("IPAM1") && msg.contains("https://"), "{msg}");
        let chosen = TlsTrust {
            allow_cleartext: true,
            ..TlsTrust::default()
        };
        assert!(factory.connect(config(remote, "token", chosen)).is_ok());
        // A pinned certificate with http:// is an error, never a silent downgrade.
        let err = factory
            .connect(config(
                remote,
                "token",
                TlsTrust::pinned(Some("ab".repeat(32))),
            ))
            .err()
            .expect("refused");
        assert!(matches!(err, IpamError::Tls { .. }), "{err:?}");
    }

    // The command line's `service add` refuses it too and names the flag.
    let mut fabric = Fabric::new();
    let account = fabric_console::fabric::model::RunAsAccount {
        id: uuid::Uuid::new_v4(),
        name: "IPAM svc".into(),
        user_name: "svc".into(),
        description: String::new(),
    };
    fabric.run_as_accounts.insert(account.id, account);
    let registry = ProviderRegistry::default_registry();
    let draft = |connection: &str, allow: bool| ServiceDraft {
        name: "IPAM1".into(),
        description: String::new(),
        model: "Fabric Console IPAM Server".into(),
        connection: connection.into(),
        run_as: "IPAM svc".into(),
        host_groups: Vec::new(),
        all_host_groups: true,
        interval_secs: 300,
        tls_fingerprint: None,
        tls_ca_file: None,
        allow_cleartext: allow,
        event_source: None,
        sync_on_change: true,
    };
    let err = ops_service::resolve(&fabric, &registry, draft(remote, false)).unwrap_err();
    assert_eq!(err, ServiceError::Security(TrustProblem::Cleartext));
    assert_eq!(err.field(), Some(ServiceField::Security));
    let service = ops_service::resolve(&fabric, &registry, draft(remote, true)).unwrap();
    assert!(service.allow_cleartext);
    assert_eq!(service.scope, HostGroupScope::All);
    assert_eq!(
        Encryption::of_service(&service),
        Encryption::Cleartext { loopback: false }
    );
    // No scheme typed: HTTPS, nothing to allow.
    let service =
        ops_service::resolve(&fabric, &registry, draft("ipam1.contoso.com", true)).unwrap();
    assert!(!service.allow_cleartext);
    assert_eq!(Encryption::of_service(&service), Encryption::SystemTrust);

    // A plain server on this computer: the first look says so, and no choice is needed.
    let plain = server::start(ServerConfig::ephemeral()).await.unwrap();
    let probe = tls::probe(&typed(&plain), 1, None, tls::PROBE_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(probe.offer, Offer::Plain);
    assert_eq!(probe.connection.scheme, Some(Scheme::Http));
    let token = plain.issue_token(Role::AsmAdministrator);
    let report = test_of(&probe.connection.to_string(), &token, TlsTrust::default()).await;
    assert!(report.passed(), "{report:#?}");
    assert_eq!(
        report.encryption,
        Some(Encryption::Cleartext { loopback: true })
    );
}

#[tokio::test]
async fn a_server_that_is_not_there_is_named_on_first_contact() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let conn = ConnectionString::parse(&addr.to_string()).unwrap();
    let err = tls::probe(&conn, 1, None, tls::PROBE_TIMEOUT)
        .await
        .unwrap_err();
    assert!(
        err.contains(&addr.to_string()) && err.contains("Check"),
        "{err}"
    );
}
