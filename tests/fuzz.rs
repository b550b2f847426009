//! Fuzzed inputs, bounded so they run with every test run: import files, every request body of
//! the built-in server, answers of the built-in server to the console, connection strings, and
//! the address fields of the dialogs. Nothing panics, every refusal is a clear error, and
//! nothing is saved half-way.

use std::sync::Arc;

use fabric_console::fabric::connection::ConnectionString;
use fabric_console::fabric::demo::demo_fabric;
use fabric_console::fabric::exchange::{export_json, import_into, import_json};
use fabric_console::fabric::store::FabricStore;
use fabric_console::ipam::builtin::PROVIDER_ID;
use fabric_console::ipam::model::SnapshotScope;
use fabric_console::ipam::provider::{Credentials, IpamError, ProviderConfig};
use fabric_console::ipam::registry::ProviderRegistry;
use fabric_console::ipam_server::auth::Role;
use fabric_console::ipam_server::{self as server, ServerConfig};
use fabric_console::ui::dialog::admin::form::{parse_cidr, parse_ip, parse_ip_list, parse_number};
use proptest::prelude::*;
use serde_json::Value;

/// Names the console's formats use, so that random objects often get past the first check.
const KEYS: &[&str] = &[
    "id",
    "name",
    "description",
    "vmm_id",
    "kind",
    "address_space",
    "network",
    "subnet",
    "start",
    "end",
    "vlan",
    "secondary_vlan",
    "owner",
    "settings",
    "reserved",
    "gateways",
    "dns_servers",
    "ops",
    "op",
    "object",
    "version",
    "host_groups",
    "logical_networks",
    "network_sites",
    "ip_pools",
    "vm_networks",
    "parent",
    "subnets",
    "scope",
];

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[ -~]{0,24}".prop_map(Value::from),
        prop_oneof![
            Just("10.0.0.0/24"),
            Just("10.0.0.10"),
            Just("fe80::1"),
            Just("00000000-0000-0000-0000-000000000001"),
            Just("Provider"),
            Just("create_subnet")
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..8).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

/// A body: mostly JSON, sometimes any bytes at all.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => json().prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..200),
    ]
}

/// A valid export with a few bytes changed, cut or inserted.
fn mutated_export() -> impl Strategy<Value = String> {
    let base = export_json(&demo_fabric(40, 3));
    let len = base.len();
    prop::collection::vec((0..len, any::<u8>(), 0u8..3), 1..6).prop_map(move |edits| {
        let mut bytes = base.clone().into_bytes();
        for (at, b, how) in edits {
            let at = at.min(bytes.len());
            match how {
                0 if at < bytes.len() => bytes[at] = b,
                1 => bytes.insert(at, b),
                _ => bytes.truncate(at.max(1)),
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn import_files_never_panic_and_never_save_half(
        text in prop_oneof![mutated_export(), json().prop_map(|v| v.to_string()), "\\PC{0,200}"]
    ) {
        match import_json(&text) {
            Ok(f) => {
                let errors = fabric_console::fabric::validate::validate_fabric(&f);
                prop_assert!(errors.is_empty(), "an import passed with problems: {errors:?}");
            }
            Err(e) => prop_assert!(!e.to_string().trim().is_empty()),
        }
        // Into a store: all of it, or nothing at all.
        let store = FabricStore::open_in_memory().unwrap();
        let before = store.fabric();
        let revision = store.revision();
        if import_into(&store, &text).is_err() {
            prop_assert_eq!(&*store.fabric(), &*before);
            prop_assert_eq!(store.revision(), revision);
        }
    }

    #[test]
    fn connection_strings_never_panic_and_round_trip(text in prop_oneof!["\\PC{0,80}", "[a-z0-9.:/\\[\\]@%-]{0,60}"]) {
        match ConnectionString::parse(&text) {
            Ok(c) => {
                let again = ConnectionString::parse(&c.to_string());
                prop_assert_eq!(again.ok(), Some(c));
            }
            Err(e) => prop_assert!(!e.to_string().trim().is_empty()),
        }
    }

    #[test]
    fn dialog_address_fields_never_panic_and_name_the_field(text in "\\PC{0,60}") {
        for (field, result) in [
            ("Range start", parse_ip("Range start", &text).map(|_| ())),
            ("DNS servers", parse_ip_list("DNS servers", &text).map(|_| ())),
            ("Subnet", parse_cidr("Subnet", &text).map(|_| ())),
            ("VLAN", parse_number("VLAN", &text, 0, 4094).map(|_| ())),
        ] {
            if let Err(e) = result {
                prop_assert!(e.starts_with(field), "the error does not name its field: {e}");
            }
        }
    }
}

/// Every endpoint of the built-in server, given random bodies: answers are 2xx or 4xx with a
/// message, never a 5xx or a dropped connection, and the server keeps answering.
#[test]
fn server_request_bodies_never_break_the_server() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (server, token) = rt.block_on(async {
        let mut cfg = ServerConfig::ephemeral();
        cfg.data_dir = Some(dir.path().to_path_buf());
        let s = server::start(cfg).await.unwrap();
        let t = s.issue_token(Role::AsmAdministrator);
        (s, t)
    });
    let base = format!("{}/api/v1", server.base_url());
    let client = reqwest::Client::new();
    let targets = [
        ("POST", "/batch"),
        ("POST", "/address-spaces"),
        ("POST", "/subnets"),
        ("POST", "/ranges"),
        ("PUT", "/subnets/00000000-0000-0000-0000-000000000001"),
        ("PATCH", "/ranges/x"),
        (
            "PATCH",
            "/address-spaces/00000000-0000-0000-0000-000000000001",
        ),
    ];
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 2000,
        ..ProptestConfig::default()
    });
    runner
        .run(&(0..targets.len(), body()), |(t, body)| {
            let (method, path) = targets[t];
            let status = rt.block_on(async {
                client
                    .request(method.parse().unwrap(), format!("{base}{path}"))
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .map(|r| r.status())
            });
            let status =
                status.map_err(|e| TestCaseError::fail(format!("{method} {path}: {e}")))?;
            prop_assert!(
                !status.is_server_error(),
                "{method} {path} answered {status} to {}",
                String::from_utf8_lossy(&body)
            );
            Ok(())
        })
        .unwrap();
    let alive = rt.block_on(async {
        client
            .get(format!("{base}/status"))
            .send()
            .await
            .map(|r| r.status().is_success())
    });
    assert_eq!(alive.ok(), Some(true));
    eprintln!("the server answered {} requests", server.request_count());
    rt.block_on(server.shutdown());
}

/// Answers a console may get from something that is not (or no longer) a healthy built-in
/// server: the provider refuses them with a clear error and never panics.
#[test]
fn broken_server_answers_are_clear_errors() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let answer: Arc<std::sync::Mutex<Vec<u8>>> = Arc::default();
    let addr = rt.block_on(async {
        let answer = answer.clone();
        let app = axum::Router::new().fallback(move || {
            let body = answer.lock().unwrap().clone();
            async move { ([("content-type", "application/json")], body) }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    });
    let provider = ProviderRegistry::default_registry()
        .get(PROVIDER_ID)
        .unwrap()
        .connect(ProviderConfig {
            connection: ConnectionString::parse(&addr.to_string()).unwrap(),
            credentials: Credentials {
                user_name: "t".into(),
                secret: "token".into(),
            },
            trust: fabric_console::fabric::model::TlsTrust::default(),
            service_name: "ipam1".into(),
            event_source: None,
        })
        .unwrap();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 500,
        ..ProptestConfig::default()
    });
    runner
        .run(&body(), |body| {
            *answer.lock().unwrap() = body;
            let read = rt.block_on(provider.snapshot(&SnapshotScope::All, None));
            if let Err(e) = read {
                prop_assert!(
                    matches!(e, IpamError::Protocol { .. } | IpamError::Invalid { .. }),
                    "unexpected kind of error: {e:?}"
                );
                prop_assert!(
                    e.to_string().contains("ipam1"),
                    "the error does not name the server: {e}"
                );
            }
            Ok(())
        })
        .unwrap();
}
