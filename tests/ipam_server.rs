//! The built-in IPAM server on a loopback ephemeral port, driven through the built-in provider
//! and, for the administrator's API and bad input, with plain HTTP requests.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use fabric_console::fabric::connection::ConnectionString;
use fabric_console::fabric::model::{Gateway, PoolSettings};
use fabric_console::ipam::builtin::{BuiltinProvider, BuiltinProviderFactory, ClientOptions};
use fabric_console::ipam::model::{
    AddressSpace, AddressSpaceKind, Cursor, IpRange, IpamId, IpamKind, IpamOp, IpamSnapshot,
    IpamSubnet, SnapshotRead, SnapshotScope,
};
use fabric_console::ipam::provider::{
    Credentials, IpamError, IpamProvider, OpOutcome, ProviderConfig, ProviderFactory, TestOutcome,
};
use fabric_console::ipam_server::{self as server, Role, RunningServer, ServerConfig};
use serde_json::{Value, json};

async fn start() -> RunningServer {
    server::start(ServerConfig::ephemeral())
        .await
        .expect("server starts")
}

fn config(url: &str, token: &str, fingerprint: Option<String>) -> ProviderConfig {
    ProviderConfig {
        connection: ConnectionString::parse(url).expect("connection string"),
        credentials: Credentials {
            user_name: "ipam-svc".into(),
            secret: token.into(),
        },
        trust: fabric_console::fabric::model::TlsTrust::pinned(fingerprint),
        service_name: "IPAM test".into(),
        event_source: None,
    }
}

fn quick() -> ClientOptions {
    ClientOptions {
        retries: 1,
        backoff: Duration::from_millis(10),
        connect_timeout: Duration::from_secs(2),
        ..Default::default()
    }
}

fn connect(server: &RunningServer, role: Role) -> Arc<dyn IpamProvider> {
    let token = server.issue_token(role);
    BuiltinProviderFactory::new()
        .connect(config(&server.base_url(), &token, server.tls_fingerprint()))
        .expect("provider")
}

fn space(id: &str, logical_network: &str) -> AddressSpace {
    AddressSpace {
        id: id.into(),
        vmm_id: Some(uuid::Uuid::new_v4()),
        name: format!("{logical_network} space"),
        kind: AddressSpaceKind::Provider,
        description: String::new(),
        vmm_logical_network: Some(logical_network.into()),
        vm_network: None,
        provider_space: None,
        tenant: String::new(),
        owner: "VMM".into(),
    }
}

fn subnet(id: &str, space: &str, network: &str) -> IpamSubnet {
    IpamSubnet {
        id: id.into(),
        vmm_id: Some(uuid::Uuid::new_v4()),
        address_space: space.into(),
        network: network.parse().unwrap(),
        name: network.into(),
        network_type: "Provider".into(),
        vmm_logical_network: Some("LN".into()),
        network_site: Some("Site".into()),
        vlan: 10,
        secondary_vlan: None,
        owner: "VMM".into(),
        custom_fields: [("rack".to_string(), "r1".to_string())].into(),
    }
}

fn range(id: &str, subnet: &str, start: &str, end: &str) -> IpRange {
    IpRange {
        id: id.into(),
        vmm_id: Some(uuid::Uuid::new_v4()),
        subnet: subnet.into(),
        name: format!("pool {id}"),
        description: String::new(),
        start: start.parse().unwrap(),
        end: end.parse().unwrap(),
        settings: PoolSettings {
            reserved: BTreeSet::new(),
            vips: BTreeSet::new(),
            gateways: vec![],
            dns_servers: vec!["10.0.0.2".parse().unwrap()],
            dns_suffix: "corp.example".into(),
            dns_search_suffixes: vec!["example".into()],
            wins_servers: vec![],
            netbios_enabled: false,
        },
        managed_by_service: "VMM".into(),
        service_instance: "svc".into(),
    }
}

fn applied(outcomes: &[OpOutcome]) -> bool {
    outcomes
        .iter()
        .all(|o| matches!(o, OpOutcome::Applied { .. }))
}

async fn full(provider: &dyn IpamProvider, scope: &SnapshotScope) -> IpamSnapshot {
    match provider.snapshot(scope, None).await.expect("snapshot") {
        SnapshotRead::Full(s) => s,
        SnapshotRead::Changes(_) => panic!("asked for everything, got changes"),
    }
}

fn sorted(mut s: IpamSnapshot) -> IpamSnapshot {
    s.spaces.sort_by(|a, b| a.id.cmp(&b.id));
    s.subnets.sort_by(|a, b| a.id.cmp(&b.id));
    s.ranges.sort_by(|a, b| a.id.cmp(&b.id));
    s.cursor = None;
    s
}

#[tokio::test]
async fn good_server_passes_every_test() {
    let server = start().await;
    let provider = connect(&server, Role::AsmAdministrator);
    let report = provider.test().await;
    assert!(report.passed(), "{report:#?}");
    let names: Vec<&str> = report.tests.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Open connection",
            "Capability discovery",
            "System info",
            "Permissions"
        ]
    );
    assert!(
        report
            .operations
            .iter()
            .all(|(_, implemented)| *implemented)
    );
    assert_eq!(
        report.server_version.as_deref(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert!(report.skew_ms.expect("skew").abs() < 2000, "{report:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn wrong_token_fails_open_connection_as_unauthorized() {
    let server = start().await;
    let provider = BuiltinProviderFactory::new()
        .connect(config(&server.base_url(), "not-a-token", None))
        .unwrap();
    let report = provider.test().await;
    assert!(!report.passed());
    let open = &report.tests[0];
    assert_eq!(open.name, "Open connection");
    assert_eq!(open.outcome, TestOutcome::Failed);
    assert!(open.detail.contains("unauthorized"), "{}", open.detail);
    assert!(open.detail.contains("ipam-svc"), "{}", open.detail);
    let err = provider
        .snapshot(&SnapshotScope::All, None)
        .await
        .unwrap_err();
    assert!(matches!(err, IpamError::Unauthorized { .. }), "{err:?}");
}

#[tokio::test]
async fn read_only_token_fails_permissions_naming_the_fix() {
    let server = start().await;
    let provider = connect(&server, Role::ReadOnly);
    let report = provider.test().await;
    let by_name = |n: &str| report.tests.iter().find(|t| t.name == n).unwrap();
    assert_eq!(by_name("Open connection").outcome, TestOutcome::Passed);
    let perms = by_name("Permissions");
    assert_eq!(perms.outcome, TestOutcome::Failed);
    assert!(perms.detail.contains("read-only"), "{}", perms.detail);
    assert!(
        perms.detail.contains("IPAM ASM Administrators"),
        "{}",
        perms.detail
    );
    // Reads work, writes are refused naming the role needed.
    assert!(provider.snapshot(&SnapshotScope::All, None).await.is_ok());
    let err = provider
        .apply(&[IpamOp::CreateSpace(space("s1", "LN1"))])
        .await
        .unwrap_err();
    match err {
        IpamError::Forbidden { detail, .. } => assert!(detail.contains("asm-administrator")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn dead_port_is_unreachable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let provider =
        BuiltinProvider::new(config(&format!("127.0.0.1:{port}"), "t", None), quick()).unwrap();
    let report = provider.test().await;
    assert_eq!(report.tests[0].outcome, TestOutcome::Failed);
    assert!(
        report.tests[0].detail.starts_with("unreachable"),
        "{}",
        report.tests[0].detail
    );
    assert!(
        report
            .tests
            .iter()
            .all(|t| t.outcome == TestOutcome::Failed)
    );
    let err = provider.server_time().await.unwrap_err();
    assert!(matches!(err, IpamError::Unreachable { .. }), "{err:?}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn clock_offset_is_reported_as_skew() {
    let server = server::start(ServerConfig {
        clock_offset: chrono::Duration::minutes(10),
        ..ServerConfig::ephemeral()
    })
    .await
    .unwrap();
    let provider = connect(&server, Role::AsmAdministrator);
    let report = provider.test().await;
    let skew = report.skew_ms.expect("skew");
    assert!((skew - 600_000).abs() < 5_000, "skew {skew}");
    let info = report
        .tests
        .iter()
        .find(|t| t.name == "System info")
        .unwrap();
    assert!(info.detail.contains("warning"), "{}", info.detail);
    let server_time = provider.server_time().await.unwrap();
    assert!((server_time - chrono::Utc::now()).num_seconds() > 590);
    // The Date header carries the shifted clock too.
    let resp = reqwest::get(format!("{}/api/v1/status", server.base_url()))
        .await
        .unwrap();
    let date = resp.headers()["date"].to_str().unwrap().to_string();
    let date = httpdate::parse_http_date(&date).unwrap();
    let ahead = date
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    assert!(ahead.as_secs() > 590, "Date header {ahead:?} ahead");
}

#[tokio::test]
async fn batch_with_one_invalid_range_applies_nothing() {
    let server = start().await;
    let provider = connect(&server, Role::AsmAdministrator);
    let mut bad = range("r2", "n1", "10.0.0.100", "10.0.0.110");
    bad.settings.vips.insert("10.0.0.200".parse().unwrap());
    let outcomes = provider
        .apply(&[
            IpamOp::CreateSpace(space("s1", "LN1")),
            IpamOp::CreateSubnet(subnet("n1", "s1", "10.0.0.0/24")),
            IpamOp::CreateRange(range("r1", "n1", "10.0.0.10", "10.0.0.20")),
            IpamOp::CreateRange(bad),
            IpamOp::CreateRange(range("r3", "n1", "10.0.0.30", "10.0.0.40")),
        ])
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 5);
    for i in [0, 1, 2, 4] {
        assert_eq!(outcomes[i], OpOutcome::NotApplied, "op {i}");
    }
    match &outcomes[3] {
        OpOutcome::Failed(IpamError::Invalid { field, detail, .. }) => {
            assert_eq!(field, "vips");
            assert!(detail.contains("10.0.0.200"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    let snap = full(provider.as_ref(), &SnapshotScope::All).await;
    assert_eq!(snap.object_count(), 0);

    // The same batch without the bad range goes through, keeping the proposed ids.
    let outcomes = provider
        .apply(&[
            IpamOp::CreateSpace(space("s1", "LN1")),
            IpamOp::CreateSubnet(subnet("n1", "s1", "10.0.0.0/24")),
            IpamOp::CreateRange(range("r1", "n1", "10.0.0.10", "10.0.0.20")),
        ])
        .await
        .unwrap();
    assert_eq!(
        outcomes,
        vec![
            OpOutcome::Applied { id: "s1".into() },
            OpOutcome::Applied { id: "n1".into() },
            OpOutcome::Applied { id: "r1".into() },
        ]
    );
    // Creating an existing id is a conflict; deleting a subnet with ranges names the range.
    let outcomes = provider
        .apply(&[IpamOp::CreateSpace(space("s1", "LN1"))])
        .await
        .unwrap();
    assert!(matches!(
        outcomes[0],
        OpOutcome::Failed(IpamError::Conflict { .. })
    ));
    let outcomes = provider
        .apply(&[IpamOp::DeleteSubnet("n1".into())])
        .await
        .unwrap();
    match &outcomes[0] {
        OpOutcome::Failed(IpamError::Conflict { detail, .. }) => assert!(detail.contains("r1")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn change_feed_follows_creates_updates_and_deletes() {
    let server = start().await;
    let provider = connect(&server, Role::AsmAdministrator);
    let all = SnapshotScope::All;
    let mut mirror = full(provider.as_ref(), &all).await;
    let cursor = mirror.cursor.clone().expect("cursor");

    assert!(applied(
        &provider
            .apply(&[
                IpamOp::CreateSpace(space("s1", "LN1")),
                IpamOp::CreateSubnet(subnet("n1", "s1", "10.0.0.0/24")),
                IpamOp::CreateSubnet(subnet("n2", "s1", "10.0.1.0/24")),
                IpamOp::CreateRange(range("r1", "n1", "10.0.0.10", "10.0.0.20")),
            ])
            .await
            .unwrap()
    ));
    let changes = match provider.snapshot(&all, Some(&cursor)).await.unwrap() {
        SnapshotRead::Changes(c) => c,
        SnapshotRead::Full(_) => panic!("expected changes"),
    };
    assert_eq!(
        (
            changes.spaces.len(),
            changes.subnets.len(),
            changes.ranges.len()
        ),
        (1, 2, 1)
    );
    assert!(changes.deleted.is_empty());
    mirror.apply_changes(changes);
    let cursor = mirror.cursor.clone().unwrap();

    let mut r1 = range("r1", "n1", "10.0.0.10", "10.0.0.30");
    r1.settings.gateways = vec![Gateway::Address {
        address: "10.0.0.1".parse().unwrap(),
        metric: 5,
    }];
    assert!(applied(
        &provider
            .apply(&[IpamOp::UpdateRange(r1), IpamOp::DeleteSubnet("n2".into())])
            .await
            .unwrap()
    ));
    let changes = match provider.snapshot(&all, Some(&cursor)).await.unwrap() {
        SnapshotRead::Changes(c) => c,
        SnapshotRead::Full(_) => panic!("expected changes"),
    };
    assert_eq!(changes.ranges.len(), 1);
    assert_eq!(changes.ranges[0].end.to_string(), "10.0.0.30");
    assert_eq!(
        changes.deleted,
        vec![(IpamKind::Subnet, IpamId::from("n2"))]
    );
    mirror.apply_changes(changes);

    // Following the feed gives what a fresh full read gives.
    let fresh = full(provider.as_ref(), &all).await;
    assert_eq!(sorted(mirror.clone()), sorted(fresh));

    // A cursor this server never issued falls back to a full snapshot.
    let foreign = Cursor("another-database:3".into());
    assert!(matches!(
        provider.snapshot(&all, Some(&foreign)).await.unwrap(),
        SnapshotRead::Full(_)
    ));
}

#[tokio::test]
async fn scoped_paged_snapshot_reads_only_the_logical_networks_asked_for() {
    let server = start().await;
    let token = server.issue_token(Role::AsmAdministrator);
    let provider = BuiltinProvider::new(
        config(&server.base_url(), &token, None),
        ClientOptions {
            page_size: 7,
            ..Default::default()
        },
    )
    .unwrap();
    let mut ops = vec![
        IpamOp::CreateSpace(space("a", "LN-A")),
        IpamOp::CreateSpace(space("b", "LN-B")),
    ];
    for i in 0..20 {
        let sp = if i % 2 == 0 { "a" } else { "b" };
        ops.push(IpamOp::CreateSubnet(subnet(
            &format!("n{i:02}"),
            sp,
            &format!("10.{i}.0.0/24"),
        )));
        ops.push(IpamOp::CreateRange(range(
            &format!("r{i:02}"),
            &format!("n{i:02}"),
            &format!("10.{i}.0.10"),
            &format!("10.{i}.0.20"),
        )));
    }
    assert!(applied(&provider.apply(&ops).await.unwrap()));
    let all = full(&provider, &SnapshotScope::All).await;
    assert_eq!(all.object_count(), 42);
    let scope = SnapshotScope::LogicalNetworks(["LN-A".to_string()].into());
    let only_a = full(&provider, &scope).await;
    assert_eq!(
        (
            only_a.spaces.len(),
            only_a.subnets.len(),
            only_a.ranges.len()
        ),
        (1, 10, 10)
    );
    assert!(only_a.subnets.iter().all(|s| s.address_space == "a"));
}

#[tokio::test]
async fn restart_on_the_same_data_dir_keeps_data_tokens_and_cursors() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ServerConfig {
        data_dir: Some(dir.path().to_path_buf()),
        ..ServerConfig::ephemeral()
    };
    let first = server::start(cfg.clone()).await.unwrap();
    let token = first.issue_token(Role::AsmAdministrator);
    let provider = BuiltinProviderFactory::new()
        .connect(config(&first.base_url(), &token, None))
        .unwrap();
    assert!(applied(
        &provider
            .apply(&[
                IpamOp::CreateSpace(space("s1", "LN1")),
                IpamOp::CreateSubnet(subnet("n1", "s1", "10.0.0.0/24")),
            ])
            .await
            .unwrap()
    ));
    let before = full(provider.as_ref(), &SnapshotScope::All).await;
    first.shutdown().await;

    let second = server::start(cfg).await.unwrap();
    let provider = BuiltinProviderFactory::new()
        .connect(config(&second.base_url(), &token, None))
        .unwrap();
    let after = full(provider.as_ref(), &SnapshotScope::All).await;
    assert_eq!(sorted(before.clone()), sorted(after.clone()));
    assert_eq!(before.cursor, after.cursor);
    match provider
        .snapshot(&SnapshotScope::All, before.cursor.as_ref())
        .await
        .unwrap()
    {
        SnapshotRead::Changes(c) => assert_eq!(c.spaces.len() + c.subnets.len(), 0),
        SnapshotRead::Full(_) => panic!("the cursor should survive a restart"),
    }
    second.shutdown().await;
}

async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let resp = client
        .request(method, url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("answer");
    let status = resp.status().as_u16();
    assert!(resp.headers().contains_key("date"));
    let value = resp.json::<Value>().await.unwrap_or(Value::Null);
    (status, value)
}

#[tokio::test]
async fn bad_requests_get_a_reason_and_the_server_keeps_answering() {
    let server = start().await;
    let token = server.issue_token(Role::AsmAdministrator);
    let base = format!("{}/api/v1", server.base_url());
    let client = reqwest::Client::new();
    use reqwest::Method;

    let (status, body) = send(
        &client,
        Method::POST,
        format!("{base}/address-spaces"),
        &token,
        b"{\"name\": ".to_vec(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("not valid JSON"),
        "{body}"
    );

    let (status, body) = send(
        &client,
        Method::POST,
        format!("{base}/address-spaces"),
        &token,
        json!({"name": "A", "kind": "provider", "vmm_logical_network": 7})
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], "vmm_logical_network", "{body}");

    let (status, body) = send(
        &client,
        Method::POST,
        format!("{base}/address-spaces"),
        &token,
        json!({"name": "A", "kind": "provider", "colour": "red"})
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], "colour", "{body}");

    let (status, body) = send(&client, Method::POST, format!("{base}/batch"), &token,
        json!({"ops": [{"op": "create_space", "object": {"id": "x", "name": "X", "kind": "sideways"}}]}).to_string().into_bytes()).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], "ops[0].object.kind", "{body}");

    let mut huge = b"{\"name\": \"".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 10 * 1024 * 1024));
    huge.extend(b"\"}");
    let (status, body) = send(
        &client,
        Method::POST,
        format!("{base}/address-spaces"),
        &token,
        huge,
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("larger than"),
        "{body}"
    );

    let (status, body) = send(
        &client,
        Method::GET,
        format!("{base}/subnets?limit=5000"),
        &token,
        vec![],
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("limit")),
        "{body}"
    );

    let (status, body) = send(
        &client,
        Method::GET,
        format!("{base}/snapshot"),
        "wrong",
        vec![],
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error"].is_string());

    let (status, body) = send(
        &client,
        Method::DELETE,
        format!("{base}/status"),
        &token,
        vec![],
    )
    .await;
    assert_eq!(status, 405, "{body}");
    assert!(body["error"].is_string(), "{body}");

    let (status, body) = send(
        &client,
        Method::GET,
        format!("{base}/nothing-here"),
        &token,
        vec![],
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert!(body["error"].is_string(), "{body}");

    let (status, body) = send(
        &client,
        Method::GET,
        format!("{base}/changes?since=99999"),
        &token,
        vec![],
    )
    .await;
    assert_eq!(status, 410, "{body}");

    // Still answering, and nothing was stored by the bad requests.
    let (status, body) = send(
        &client,
        Method::GET,
        format!("{base}/address-spaces"),
        &token,
        vec![],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["total"], 0, "{body}");
    assert!(server.request_count() >= 11);
}

#[tokio::test]
async fn administrators_use_the_rest_api() {
    let server = start().await;
    let token = server.issue_token(Role::AsmAdministrator);
    let base = format!("{}/api/v1", server.base_url());
    let client = reqwest::Client::new();
    use reqwest::Method;

    // A POST without an id gets one from the server.
    let (status, created) = send(
        &client,
        Method::POST,
        format!("{base}/address-spaces"),
        &token,
        json!({"name": "Provider space", "kind": "provider", "vmm_logical_network": "LN1"})
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let sid = created["id"].as_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&sid).is_ok());

    let (status, body) = send(
        &client,
        Method::POST,
        format!("{base}/subnets"),
        &token,
        json!({"id": "n1", "address_space": sid, "network": "10.1.0.0/24", "name": "10.1.0.0/24"})
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    let (status, body) = send(
        &client,
        Method::PATCH,
        format!("{base}/subnets/n1"),
        &token,
        json!({"network_site": "Seattle", "vlan": 12})
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["network_site"].as_str(), body["vlan"].as_u64()),
        (Some("Seattle"), Some(12))
    );
    assert_eq!(body["name"], "10.1.0.0/24");

    let (status, body) = send(
        &client,
        Method::PUT,
        format!("{base}/subnets/n1"),
        &token,
        json!({"address_space": sid, "network": "10.1.0.0/23"})
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "", "PUT replaces the whole object");

    let (status, body) = send(
        &client,
        Method::PUT,
        format!("{base}/subnets/n1"),
        &token,
        json!({"id": "other", "address_space": sid, "network": "10.1.0.0/23"})
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("id")),
        "{body}"
    );

    let (status, body) = send(
        &client,
        Method::DELETE,
        format!("{base}/address-spaces/{sid}"),
        &token,
        vec![],
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("n1"), "{body}");

    let (status, body) = send(
        &client,
        Method::GET,
        format!("{base}/subnets?address_space={sid}&limit=1&offset=0"),
        &token,
        vec![],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            body["total"].as_i64(),
            body["items"].as_array().map(Vec::len)
        ),
        (Some(1), Some(1))
    );

    let (status, _) = send(
        &client,
        Method::DELETE,
        format!("{base}/subnets/n1"),
        &token,
        vec![],
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = send(
        &client,
        Method::DELETE,
        format!("{base}/address-spaces/{sid}"),
        &token,
        vec![],
    )
    .await;
    assert_eq!(status, 204);
    let (status, body) = send(
        &client,
        Method::GET,
        format!("{base}/address-spaces/{sid}"),
        &token,
        vec![],
    )
    .await;
    assert_eq!((status, body["field"].as_str()), (404, Some("id")));

    let (status, body) = send(
        &client,
        Method::GET,
        format!("{base}/whoami"),
        &token,
        vec![],
    )
    .await;
    assert_eq!(
        (status, body["role"].as_str()),
        (200, Some("asm-administrator"))
    );
}

#[tokio::test]
async fn tls_with_a_pinned_fingerprint() {
    let server = server::start(ServerConfig {
        tls: true,
        ..ServerConfig::ephemeral()
    })
    .await
    .unwrap();
    let fingerprint = server.tls_fingerprint().expect("fingerprint");
    assert_eq!(fingerprint.len(), 64);
    assert!(server.base_url().starts_with("https://"));
    let token = server.issue_token(Role::AsmAdministrator);

    let provider = BuiltinProviderFactory::new()
        .connect(config(
            &server.base_url(),
            &token,
            Some(fingerprint.to_uppercase()),
        ))
        .unwrap();
    let report = provider.test().await;
    assert!(report.passed(), "{report:#?}");

    let wrong = "00".repeat(32);
    let provider =
        BuiltinProvider::new(config(&server.base_url(), &token, Some(wrong)), quick()).unwrap();
    let err = provider.server_time().await.unwrap_err();
    match &err {
        IpamError::Tls { detail, .. } => assert!(detail.contains("fingerprint"), "{detail}"),
        other => panic!("{other:?}"),
    }
    let report = provider.test().await;
    assert!(
        report.tests[0].detail.starts_with("TLS"),
        "{:?}",
        report.tests[0]
    );

    // Without a pin, the self-signed certificate is not trusted.
    let provider = BuiltinProvider::new(config(&server.base_url(), &token, None), quick()).unwrap();
    assert!(matches!(
        provider.server_time().await.unwrap_err(),
        IpamError::Tls { .. }
    ));
}

#[tokio::test]
async fn remote_listen_addresses_need_allow_remote() {
    let err = server::start(ServerConfig {
        listen: "0.0.0.0:0".parse().unwrap(),
        ..ServerConfig::ephemeral()
    })
    .await
    .err()
    .expect("refused");
    assert!(err.to_string().contains("--allow-remote"), "{err}");
}

/// Serving other machines over plain HTTP would send every client's token in cleartext: the
/// server refuses unless TLS is on or the administrator chose `--insecure-http` explicitly.
#[tokio::test]
async fn serving_other_machines_needs_tls_or_an_explicit_insecure_choice() {
    let mut cfg = ServerConfig::ephemeral();
    cfg.listen = "0.0.0.0:0".parse().unwrap();
    cfg.allow_remote = true;
    let refused = server::start(cfg.clone()).await.err().expect("refused");
    assert!(
        matches!(refused, server::ServerError::CleartextRemote(_)),
        "{refused:?}"
    );
    let text = refused.to_string();
    assert!(
        text.contains("--tls") && text.contains("--insecure-http"),
        "{text}"
    );
    cfg.tls = true;
    server::start(cfg.clone())
        .await
        .expect("over TLS")
        .shutdown()
        .await;
    cfg.tls = false;
    cfg.insecure_http = true;
    server::start(cfg)
        .await
        .expect("chosen explicitly")
        .shutdown()
        .await;
}

/// The data directory holds tokens, the database and the TLS key: the owner's only.
#[tokio::test]
async fn the_data_directory_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("ipam");
    let mut cfg = ServerConfig::ephemeral();
    cfg.data_dir = Some(dir.clone());
    cfg.tls = true;
    let s = server::start(cfg).await.unwrap();
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "{mode:o}");
    s.shutdown().await;
}

/// Tokens are listed, revoked and rotated; a revoked token is refused at once in process, and
/// within a second when another process (the `token` command) revokes it.
#[tokio::test]
async fn revoked_and_rotated_tokens_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = ServerConfig::ephemeral();
    cfg.data_dir = Some(dir.path().join("ipam"));
    let s = server::start(cfg).await.unwrap();
    let data = dir.path().join("ipam");
    let (a, b) = (
        s.issue_token(Role::AsmAdministrator),
        s.issue_token(Role::ReadOnly),
    );
    let client = reqwest::Client::new();
    let whoami = |token: String| {
        let client = client.clone();
        let url = format!("{}/api/v1/whoami", s.base_url());
        async move {
            client
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert!(whoami(a.clone()).await.is_success());
    assert!(whoami(b.clone()).await.is_success());
    let listed = server::list_tokens_in(&data).unwrap();
    assert_eq!(listed.len(), 2);
    let id_of =
        |token: &str| fabric_console::ipam_server::auth::token_hash(token)[..12].to_string();
    assert!(
        listed
            .iter()
            .any(|(id, role, _)| *id == id_of(&a) && *role == Role::AsmAdministrator)
    );

    // In process: refused from the very next request.
    assert_eq!(
        s.revoke_token(&id_of(&a)).unwrap(),
        Some(Role::AsmAdministrator)
    );
    assert_eq!(whoami(a.clone()).await, reqwest::StatusCode::UNAUTHORIZED);

    // From another process (the `token revoke` command), while the server holds the token's
    // role in its cache: refused within a second.
    assert!(whoami(b.clone()).await.is_success());
    assert_eq!(
        server::revoke_token_in(&data, &id_of(&b)).unwrap(),
        Some(Role::ReadOnly)
    );
    let started = std::time::Instant::now();
    while whoami(b.clone()).await.is_success() {
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "the revoked token still works"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "refused {} ms after another process revoked it",
        started.elapsed().as_millis()
    );
    assert_eq!(server::revoke_token_in(&data, &id_of(&b)).unwrap(), None);
    assert!(server::revoke_token_in(&data, "not-an-id").is_err());
    s.shutdown().await;
}

/// Guessing tokens is slowed down: after a burst of unknown tokens from one address the server
/// answers 429 with Retry-After, while a known token from the same address still works.
#[tokio::test]
async fn unknown_tokens_from_one_address_are_throttled() {
    let s = start().await;
    let good = s.issue_token(Role::ReadOnly);
    let client = reqwest::Client::new();
    let url = format!("{}/api/v1/whoami", s.base_url());
    let mut statuses = Vec::new();
    for i in 0..25 {
        let r = client
            .get(&url)
            .bearer_auth(format!("guess-{i}"))
            .send()
            .await
            .unwrap();
        statuses.push((r.status(), r.headers().get("retry-after").cloned()));
    }
    let unauthorized = statuses
        .iter()
        .filter(|(s, _)| *s == reqwest::StatusCode::UNAUTHORIZED)
        .count();
    assert_eq!(unauthorized, server::api::AUTH_FAILURES_ALLOWED as usize);
    let (last, retry_after) = statuses.last().unwrap();
    assert_eq!(*last, reqwest::StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after.is_some());
    let ok = client.get(&url).bearer_auth(&good).send().await.unwrap();
    assert!(ok.status().is_success());
    s.shutdown().await;
}

/// Idle and slow clients (connections that send nothing, or a header a byte at a time) from one
/// address cannot starve real requests: that address gets only its share of connections, and the
/// server closes connections that stay idle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_do_not_starve_real_requests() {
    use fabric_console::ipam_server::guard::ConnectionLimits;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut cfg = ServerConfig::ephemeral();
    cfg.connections = ConnectionLimits {
        total: 64,
        per_address: 40,
        idle: Duration::from_secs(1),
    };
    let s = server::start(cfg).await.unwrap();
    let token = s.issue_token(Role::ReadOnly);
    // Another client address on this machine: 127.0.0.2.
    let from_other = || async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        socket.connect(s.addr()).await.unwrap()
    };
    let mut idle = Vec::new();
    for _ in 0..60 {
        idle.push(from_other().await);
    }
    let mut slow = from_other().await;
    slow.write_all(b"GET /api/v1/status HTTP/1.1\r\nHo")
        .await
        .unwrap();
    // A real request from 127.0.0.1 is answered at once.
    let whoami = |client: &reqwest::Client| {
        client
            .get(format!("{}/api/v1/whoami", s.base_url()))
            .bearer_auth(&token)
            .send()
    };
    let started = std::time::Instant::now();
    assert!(
        whoami(&reqwest::Client::new())
            .await
            .unwrap()
            .status()
            .is_success()
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // Past the idle limit the server has closed them (end of file or a reset).
    tokio::time::sleep(Duration::from_secs(2)).await;
    for c in idle.iter_mut().take(5).chain(std::iter::once(&mut slow)) {
        let mut buf = [0u8; 512];
        let read = tokio::time::timeout(Duration::from_secs(2), c.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "a connection is still open past the idle limit: {read:?}"
        );
    }
    // A busy client keeps its connection: requests on one kept-alive connection, 0.5 s apart.
    let busy = reqwest::Client::new();
    for _ in 0..4 {
        assert!(whoami(&busy).await.unwrap().status().is_success());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    s.shutdown().await;
}

/// Reads what the server sends on a raw connection until it closes it (or `within` passes):
/// the text received, and how long it took.
async fn read_until_closed(
    conn: &mut tokio::net::TcpStream,
    within: Duration,
) -> (String, Option<Duration>) {
    use tokio::io::AsyncReadExt;
    let started = std::time::Instant::now();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = within.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, conn.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                return (
                    String::from_utf8_lossy(&received).into_owned(),
                    Some(started.elapsed()),
                );
            }
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&received).into_owned(), None),
        }
    }
}

/// A client that sends its headers and then stalls or dribbles its body gets 408 (with the
/// usual JSON error) within the body deadline, and while several such clients are open a
/// normal request is answered at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_request_bodies_get_408_within_the_deadline() {
    use fabric_console::ipam_server::guard::{ConnectionLimits, RequestDeadlines};
    use tokio::io::AsyncWriteExt;
    let mut cfg = ServerConfig::ephemeral();
    // Idle connections are closed only after 10 s: the body deadline is what ends these.
    cfg.connections = ConnectionLimits {
        idle: Duration::from_secs(10),
        ..ConnectionLimits::default()
    };
    cfg.deadlines = RequestDeadlines {
        headers: Duration::from_secs(5),
        body: Duration::from_secs(1),
    };
    let s = server::start(cfg).await.unwrap();
    let token = s.issue_token(Role::AsmAdministrator);
    let head = format!(
        "POST /api/v1/address-spaces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"name\": \""
    );
    let started = std::time::Instant::now();
    let mut slow = Vec::new();
    for _ in 0..6 {
        let mut c = tokio::net::TcpStream::connect(s.addr()).await.unwrap();
        c.write_all(head.as_bytes()).await.unwrap();
        slow.push(c);
    }
    // One more dribbles its body a byte every 200 ms, which the idle limit alone would allow.
    let mut dribbler = tokio::net::TcpStream::connect(s.addr()).await.unwrap();
    dribbler.write_all(head.as_bytes()).await.unwrap();
    let dribbling = tokio::spawn(async move {
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if dribbler.write_all(b"a").await.is_err() {
                break;
            }
        }
        dribbler
    });

    // Meanwhile an authenticated request (a write) is answered at once.
    let client = reqwest::Client::new();
    let asked = std::time::Instant::now();
    let (status, body) = send(
        &client,
        reqwest::Method::POST,
        format!("{}/api/v1/address-spaces", s.base_url()),
        &token,
        json!({"name": "A", "kind": "provider"})
            .to_string()
            .into_bytes(),
    )
    .await;
    let answered = asked.elapsed();
    assert_eq!(status, 201, "{body}");
    assert!(answered < Duration::from_millis(500), "{answered:?}");

    for c in &mut slow {
        let (text, closed) = read_until_closed(c, Duration::from_secs(4)).await;
        assert!(text.starts_with("HTTP/1.1 408"), "{text:?}");
        assert!(text.contains("\"error\""), "{text:?}");
        assert!(text.contains("within 1 s"), "{text:?}");
        assert!(closed.is_some(), "the connection stayed open after 408");
    }
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    let mut dribbler = dribbling.await.unwrap();
    let (text, _) = read_until_closed(&mut dribbler, Duration::from_secs(2)).await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text:?}");
    eprintln!(
        "normal request answered in {} ms beside 7 stalled bodies; 408s sent within {} ms",
        answered.as_millis(),
        waited.as_millis()
    );
    // Nothing half-sent was stored.
    let (_, list) = send(
        &client,
        reqwest::Method::GET,
        format!("{}/api/v1/address-spaces", s.base_url()),
        &token,
        vec![],
    )
    .await;
    assert_eq!(list["total"], 1, "{list}");
    s.shutdown().await;
}

/// Request headers sent a byte at a time, each within the idle limit, are cut off at the header
/// deadline instead of holding the connection forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dribbled_request_headers_are_cut_off_at_the_deadline() {
    use fabric_console::ipam_server::guard::{ConnectionLimits, RequestDeadlines};
    use tokio::io::AsyncWriteExt;
    let mut cfg = ServerConfig::ephemeral();
    cfg.connections = ConnectionLimits {
        idle: Duration::from_secs(10),
        ..ConnectionLimits::default()
    };
    cfg.deadlines = RequestDeadlines {
        headers: Duration::from_secs(1),
        body: Duration::from_secs(5),
    };
    let s = server::start(cfg).await.unwrap();
    let mut c = tokio::net::TcpStream::connect(s.addr()).await.unwrap();
    let started = std::time::Instant::now();
    c.write_all(b"GET /api/v1/status HTTP/1.1\r\nX")
        .await
        .unwrap();
    let mut cut_off = None;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if c.write_all(b"x").await.is_err() {
            cut_off = Some(started.elapsed());
            break;
        }
        let (_, closed) = read_until_closed(&mut c, Duration::from_millis(1)).await;
        if closed.is_some() {
            cut_off = Some(started.elapsed());
            break;
        }
    }
    let cut_off = cut_off.expect("the connection is still open after 4 s of dribbled headers");
    assert!(cut_off < Duration::from_secs(2), "{cut_off:?}");
    eprintln!("dribbled headers cut off after {} ms", cut_off.as_millis());
    // A prompt client is served as before.
    let r = reqwest::get(format!("{}/api/v1/status", s.base_url()))
        .await
        .unwrap();
    assert!(r.status().is_success());
    s.shutdown().await;
}

/// Every write through the API leaves one audit row per operation naming the token (by its
/// public id), its role, the method and the object; a refused write leaves no applied row; only
/// administrators read the audit log.
#[tokio::test]
async fn writes_are_audited_and_only_administrators_read_the_audit_log() {
    let s = start().await;
    let admin = s.issue_token(Role::AsmAdministrator);
    let other_admin = s.issue_token(Role::AsmAdministrator);
    let reader = s.issue_token(Role::ReadOnly);
    let id_of = |token: &str| server::auth::token_hash(token)[..12].to_string();
    let base = format!("{}/api/v1", s.base_url());
    let client = reqwest::Client::new();
    use reqwest::Method;
    let write = |method: Method, path: &str, token: &str, body: Value| {
        let (client, url, token) = (client.clone(), format!("{base}{path}"), token.to_string());
        let body = if body.is_null() {
            vec![]
        } else {
            body.to_string().into_bytes()
        };
        async move { send(&client, method, url, &token, body).await }
    };
    let ok = |(status, body): (u16, Value)| {
        assert!((200..300).contains(&status), "{status} {body}");
    };
    ok(write(
        Method::POST,
        "/address-spaces",
        &admin,
        serde_json::to_value(space("s1", "LN1")).unwrap(),
    )
    .await);
    ok(write(
        Method::POST,
        "/subnets",
        &admin,
        serde_json::to_value(subnet("n1", "s1", "10.0.0.0/24")).unwrap(),
    )
    .await);
    ok(write(
        Method::POST,
        "/ranges",
        &other_admin,
        serde_json::to_value(range("r1", "n1", "10.0.0.10", "10.0.0.20")).unwrap(),
    )
    .await);
    ok(write(
        Method::PATCH,
        "/ranges/r1",
        &admin,
        json!({"end": "10.0.0.30"}),
    )
    .await);
    ok(write(
        Method::PUT,
        "/subnets/n1",
        &admin,
        serde_json::to_value(subnet("n1", "s1", "10.0.0.0/24")).unwrap(),
    )
    .await);
    ok(write(Method::POST, "/batch", &admin, json!({"ops": [
        {"op": "delete_range", "object": "r1"},
        {"op": "create_subnet", "object": serde_json::to_value(subnet("n2", "s1", "10.0.1.0/24")).unwrap()},
    ]})).await);
    ok(write(Method::DELETE, "/subnets/n2", &admin, Value::Null).await);
    // Refused: a range outside its subnet (422), alone and inside a batch.
    let (status, _) = write(
        Method::POST,
        "/ranges",
        &admin,
        serde_json::to_value(range("r9", "n1", "10.0.0.10", "10.0.5.1")).unwrap(),
    )
    .await;
    assert_eq!(status, 422);
    let (status, _) = write(Method::POST, "/batch", &admin, json!({"ops": [
        {"op": "create_subnet", "object": serde_json::to_value(subnet("n3", "s1", "10.0.3.0/24")).unwrap()},
        {"op": "create_range", "object": serde_json::to_value(range("r8", "n3", "10.0.3.10", "10.0.9.1")).unwrap()},
    ]})).await;
    assert_eq!(status, 422);

    // The read-only token may not read the audit log; nor may a request without a token.
    let (status, body) = write(Method::GET, "/audit", &reader, Value::Null).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("asm-administrator"),
        "{body}"
    );
    let (status, _) = write(Method::GET, "/audit", "guess", Value::Null).await;
    assert_eq!(status, 401);

    let (status, body) = write(Method::GET, "/audit?limit=50", &admin, Value::Null).await;
    assert_eq!(status, 200, "{body}");
    let rows = body["items"].as_array().unwrap().clone();
    let summary = |r: &Value| {
        format!(
            "{} {} {} {} {} {} {}",
            r["token_id"].as_str().unwrap(),
            r["method"].as_str().unwrap(),
            r["action"].as_str().unwrap(),
            r["kind"].as_str().unwrap(),
            r["object_id"].as_str().unwrap(),
            r["outcome"].as_str().unwrap(),
            r["summary"].as_str().unwrap(),
        )
    };
    let got: Vec<String> = rows.iter().map(summary).collect();
    let (a, o) = (id_of(&admin), id_of(&other_admin));
    let expected = [
        format!(
            "{a} POST create range r8 refused created IP address range 10.0.3.10-10.0.9.1 (r8) in subnet 10.0.3.0/24 (n3)"
        ),
        format!(
            "{a} POST create range r9 refused created IP address range 10.0.0.10-10.0.5.1 (r9) in subnet 10.0.0.0/24 (n1)"
        ),
        format!(
            "{a} DELETE delete subnet n2 applied deleted IP address subnet 10.0.1.0/24 (n2) in address space s1"
        ),
        format!(
            "{a} POST create subnet n2 applied created IP address subnet 10.0.1.0/24 (n2) in address space s1"
        ),
        format!(
            "{a} POST delete range r1 applied deleted IP address range 10.0.0.10-10.0.0.30 (r1) in subnet 10.0.0.0/24 (n1)"
        ),
        format!(
            "{a} PUT update subnet n1 applied updated IP address subnet 10.0.0.0/24 (n1) in address space s1"
        ),
        format!(
            "{a} PATCH update range r1 applied updated IP address range 10.0.0.10-10.0.0.30 (r1) in subnet 10.0.0.0/24 (n1)"
        ),
        format!(
            "{o} POST create range r1 applied created IP address range 10.0.0.10-10.0.0.20 (r1) in subnet 10.0.0.0/24 (n1)"
        ),
        format!(
            "{a} POST create subnet n1 applied created IP address subnet 10.0.0.0/24 (n1) in address space s1"
        ),
        format!(
            "{a} POST create address_space s1 applied created IP address space \"LN1 space\" (s1) for logical network LN1"
        ),
    ];
    assert_eq!(got, expected);
    assert!(rows.iter().all(|r| r["role"] == "asm-administrator"));
    // A refused operation's row says why; the refused batch's subnet has no row at all.
    assert!(
        rows[0]["detail"]
            .as_str()
            .unwrap()
            .contains("operation 1 of a batch of 2"),
        "{}",
        rows[0]
    );
    assert!(!rows.iter().any(|r| r["object_id"] == "n3"));
    // Times are UTC, and no token appears anywhere.
    assert!(
        rows.iter()
            .all(|r| r["at"].as_str().unwrap().ends_with('Z'))
    );
    let text = body.to_string();
    for token in [&admin, &other_admin, &reader] {
        assert!(!text.contains(token.as_str()));
    }
    let (_, body) = write(Method::GET, "/audit?limit=3", &admin, Value::Null).await;
    assert_eq!(body["items"].as_array().unwrap().len(), 3);
    let (status, body) = write(Method::GET, "/audit?since=yesterday", &admin, Value::Null).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("since")),
        "{body}"
    );
    s.shutdown().await;
}

/// A client waiting on the change feed hears of a write within moments, hears nothing (after
/// the time it asked for) when nothing is written, and cannot hold more than its share of
/// waiting requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_change_feed_can_be_waited_on() {
    use fabric_console::ipam::provider::ChangeWait;
    let server = start().await;
    let provider = connect(&server, Role::AsmAdministrator);
    let all = SnapshotScope::All;
    provider
        .apply(&[IpamOp::CreateSpace(space("a", "LN-A"))])
        .await
        .unwrap();
    let cursor = full(provider.as_ref(), &all)
        .await
        .cursor
        .expect("a cursor");

    // Nothing written: the answer comes when the time is up, saying so.
    let t = std::time::Instant::now();
    let quiet = provider
        .wait_for_change(&cursor, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(quiet, ChangeWait::Quiet);
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );

    // A write while waiting: the answer comes at once.
    let waiter = {
        let provider = provider.clone();
        let cursor = cursor.clone();
        tokio::spawn(async move {
            let t = std::time::Instant::now();
            let w = provider
                .wait_for_change(&cursor, Duration::from_secs(20))
                .await
                .unwrap();
            (w, t.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    provider
        .apply(&[IpamOp::CreateSpace(space("b", "LN-B"))])
        .await
        .unwrap();
    let (w, took) = waiter.await.unwrap();
    assert_eq!(w, ChangeWait::Changed);
    assert!(took < Duration::from_secs(5), "woke after {took:?}");
    // Asked from the old cursor again: changed at once.
    assert_eq!(
        provider
            .wait_for_change(&cursor, Duration::from_secs(20))
            .await
            .unwrap(),
        ChangeWait::Changed
    );

    // One token holds at most four waiting requests; a fifth is told to come back later.
    let token = server.issue_token(Role::AsmAdministrator);
    let last = match provider.snapshot(&all, None).await.unwrap() {
        SnapshotRead::Full(s) => s.cursor.unwrap(),
        SnapshotRead::Changes(_) => unreachable!(),
    };
    let (db, now) = last.0.rsplit_once(':').unwrap();
    let url = format!(
        "{}/api/v1/changes?since={now}&wait=3&database_id={db}",
        server.base_url()
    );
    let client = reqwest::Client::new();
    let mut held = Vec::new();
    for _ in 0..4 {
        let req = client.get(&url).bearer_auth(&token).send();
        held.push(tokio::spawn(req));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fifth = client.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(fifth.status(), 429);
    let body: Value = fifth.json().await.unwrap();
    assert_eq!(body["field"], "wait", "{body}");
    for h in held {
        assert_eq!(h.await.unwrap().unwrap().status(), 200);
    }
    // Their places were given back.
    let again = client.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(again.status(), 200);
}

/// `GET /metrics`: refused without a token; with one, the Prometheus exposition counts requests
/// by route (ids folded away) and status, and shows the objects held and the feed's cursor.
#[tokio::test]
async fn metrics_count_requests_by_route_and_show_objects_and_the_cursor() {
    let server = start().await;
    let token = server.issue_token(Role::ReadOnly);
    let http = reqwest::Client::new();
    let url = format!("{}/metrics", server.base_url());
    assert_eq!(http.get(&url).send().await.unwrap().status(), 401);

    let provider = connect(&server, Role::AsmAdministrator);
    let outcomes = provider
        .apply(&[
            IpamOp::CreateSpace(space("s1", "Backend")),
            IpamOp::CreateSubnet(subnet("n1", "s1", "10.4.0.0/24")),
        ])
        .await
        .unwrap();
    assert!(applied(&outcomes));
    for id in ["n1", "no-such-subnet"] {
        http.get(format!("{}/api/v1/subnets/{id}", server.base_url()))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
    }
    let resp = http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = resp.text().await.unwrap();
    for line in [
        "fabric_ipam_http_requests_total{method=\"GET\",route=\"/api/v1/subnets/{id}\",status=\"200\"} 1",
        "fabric_ipam_http_requests_total{method=\"GET\",route=\"/api/v1/subnets/{id}\",status=\"404\"} 1",
        "fabric_ipam_http_requests_total{method=\"GET\",route=\"/metrics\",status=\"401\"} 1",
        "fabric_ipam_objects{kind=\"address_space\"} 1",
        "fabric_ipam_objects{kind=\"subnet\"} 1",
        "fabric_ipam_objects{kind=\"range\"} 0",
        "fabric_ipam_change_feed_cursor 2",
    ] {
        assert!(text.contains(line), "missing {line}:\n{text}");
    }
    assert!(text.contains("fabric_ipam_http_request_duration_seconds_bucket{"));
    assert!(!text.contains(&token), "no token in the metrics");
}

/// A server holding range r1 (10.0.0.10 – 10.0.0.19) in subnet n1 of space s1, and an
/// administrator's provider.
async fn one_range() -> (RunningServer, Arc<dyn IpamProvider>) {
    let server = start().await;
    let provider = connect(&server, Role::AsmAdministrator);
    provider
        .apply(&[
            IpamOp::CreateSpace(space("s1", "LN1")),
            IpamOp::CreateSubnet(subnet("n1", "s1", "10.0.0.0/24")),
            IpamOp::CreateRange(range("r1", "n1", "10.0.0.10", "10.0.0.19")),
        ])
        .await
        .unwrap();
    (server, provider)
}

#[tokio::test]
async fn range_usage_is_checked_kept_and_read_back() {
    use fabric_console::ipam::model::{IpamId, RangeUsage, UsedAddress};
    let (server, provider) = one_range().await;
    let r1 = IpamId::from("r1");
    assert!(provider.range_usages().await.unwrap().is_empty());
    let used = |a: &str| UsedAddress {
        address: a.parse().unwrap(),
        holder: format!("vm-{a}"),
        kind: "vm_adapter".into(),
    };
    let good = RangeUsage {
        total: 10,
        granted: 2,
        vips: 0,
        vips_granted: 0,
        reserved: 1,
        held: 0,
        free: 7,
        addresses: vec![used("10.0.0.11"), used("10.0.0.12")],
    };
    provider
        .report_usages(&[(r1.clone(), good.clone())])
        .await
        .unwrap();
    assert_eq!(provider.range_usages().await.unwrap().get(&r1), Some(&good));
    // Several in one request: all or none; the error names the range.
    let mut one_more = good.clone();
    one_more.granted = 3;
    one_more.free = 6;
    one_more.addresses.push(used("10.0.0.13"));
    let err = provider
        .report_usages(&[(r1.clone(), one_more), (IpamId::from("nope"), good.clone())])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Range nope"), "{err}");
    assert_eq!(provider.range_usages().await.unwrap().get(&r1), Some(&good));

    // Counts that do not add up, an address outside the range, a range that does not exist:
    // refused, naming the field; the kept report stays.
    let token = server.issue_token(Role::AsmAdministrator);
    let client = reqwest::Client::new();
    let url = |id: &str| format!("{}/api/v1/ranges/{id}/usage", server.base_url());
    let mut wrong = serde_json::to_value(&good).unwrap();
    wrong["free"] = 8.into();
    let (status, body) = send(
        &client,
        reqwest::Method::PUT,
        url("r1"),
        &token,
        serde_json::to_vec(&wrong).unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("free")),
        "{body}"
    );
    let mut outside = good.clone();
    outside.addresses[1] = used("10.0.0.99");
    let (status, body) = send(
        &client,
        reqwest::Method::PUT,
        url("r1"),
        &token,
        serde_json::to_vec(&outside).unwrap(),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("10.0.0.99 is outside the range")
    );
    let (status, _) = send(
        &client,
        reqwest::Method::PUT,
        url("nope"),
        &token,
        serde_json::to_vec(&good).unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    // A read-only token reads it but cannot report.
    let reader = server.issue_token(Role::ReadOnly);
    let (status, body) = send(
        &client,
        reqwest::Method::GET,
        url("r1"),
        &reader,
        Vec::new(),
    )
    .await;
    assert_eq!((status, body["granted"].as_u64()), (200, Some(2)));
    let (status, _) = send(
        &client,
        reqwest::Method::PUT,
        url("r1"),
        &reader,
        serde_json::to_vec(&good).unwrap(),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(provider.range_usages().await.unwrap().get(&r1), Some(&good));
}

#[tokio::test]
async fn addresses_assigned_on_the_ipam_side_are_checked_listed_and_released() {
    use fabric_console::ipam::model::{IpamId, RangeUsage, UsedAddress};
    let (server, provider) = one_range().await;
    assert!(provider.assignments().await.unwrap().is_empty());
    // The console granted 10.0.0.11.
    let granted = RangeUsage {
        total: 10,
        granted: 1,
        vips: 0,
        vips_granted: 0,
        reserved: 0,
        held: 0,
        free: 9,
        addresses: vec![UsedAddress {
            address: "10.0.0.11".parse().unwrap(),
            holder: "web-01/eth0".into(),
            kind: "vm_adapter".into(),
        }],
    };
    provider
        .report_usages(&[(IpamId::from("r1"), granted)])
        .await
        .unwrap();
    let token = server.issue_token(Role::AsmAdministrator);
    let client = reqwest::Client::new();
    let url = format!("{}/api/v1/ranges/r1/assignments", server.base_url());
    let assign = |address: &str, holder: &str| {
        serde_json::to_vec(&serde_json::json!({"address": address, "holder": holder})).unwrap()
    };
    let post = |body: Vec<u8>| send(&client, reqwest::Method::POST, url.clone(), &token, body);
    let (status, body) = post(assign("10.0.0.15", "printer-3")).await;
    assert_eq!(
        (status, body["kind"].as_str()),
        (201, Some("ipam")),
        "{body}"
    );
    // Refused, naming the field: outside the range, granted by the console, taken, no holder.
    let (status, body) = post(assign("10.0.0.99", "x")).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("address")),
        "{body}"
    );
    let (status, body) = post(assign("10.0.0.11", "router")).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("web-01/eth0"),
        "{body}"
    );
    let (status, body) = post(assign("10.0.0.15", "other")).await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = post(assign("10.0.0.16", "  ")).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("holder")),
        "{body}"
    );
    let (status, _) = send(
        &client,
        reqwest::Method::POST,
        format!("{}/api/v1/ranges/nope/assignments", server.base_url()),
        &token,
        assign("10.0.0.15", "x"),
    )
    .await;
    assert_eq!(status, 404);
    // A reader lists them and cannot assign.
    let reader = server.issue_token(Role::ReadOnly);
    let (status, body) = send(
        &client,
        reqwest::Method::GET,
        url.clone(),
        &reader,
        Vec::new(),
    )
    .await;
    assert_eq!((status, body["count"].as_u64()), (200, Some(1)), "{body}");
    let (status, _) = send(
        &client,
        reqwest::Method::POST,
        url.clone(),
        &reader,
        assign("10.0.0.17", "x"),
    )
    .await;
    assert_eq!(status, 403);
    let all = provider.assignments().await.unwrap();
    assert_eq!(
        all.get(&IpamId::from("r1")).map(|l| l
            .iter()
            .map(|a| (a.address.to_string(), a.holder.clone()))
            .collect::<Vec<_>>()),
        Some(vec![("10.0.0.15".to_string(), "printer-3".to_string())])
    );
    // Released: gone; releasing again says it was not assigned.
    let one = format!("{url}/10.0.0.15");
    let (status, _) = send(
        &client,
        reqwest::Method::DELETE,
        one.clone(),
        &token,
        Vec::new(),
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = send(&client, reqwest::Method::DELETE, one, &token, Vec::new()).await;
    assert_eq!(status, 404);
    assert!(provider.assignments().await.unwrap().is_empty());
    // The audit trail names each write: the report, the assignment, the release.
    let (_, audit) = send(
        &client,
        reqwest::Method::GET,
        format!("{}/api/v1/audit?limit=10", server.base_url()),
        &token,
        Vec::new(),
    )
    .await;
    let summaries: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["summary"].as_str().unwrap())
        .collect();
    for what in [
        "usage reported (1 granted, 0 of 0 VIPs, 9 free of 10) in IP address range 10.0.0.10-10.0.0.19 (r1)",
        "address 10.0.0.15 assigned to printer-3 in IP address range 10.0.0.10-10.0.0.19 (r1)",
        "address 10.0.0.15 released in IP address range 10.0.0.10-10.0.0.19 (r1)",
    ] {
        assert!(summaries.contains(&what), "{what} not in {summaries:#?}");
    }
}
