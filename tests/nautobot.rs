//! Interop tests against a real Nautobot.
//!
//! Start one and export its address and tokens first:
//!   bash scripts/nautobot.sh start && eval "$(bash scripts/nautobot.sh env)"
//! Every test uses names with a random suffix, so they run repeatedly on a kept database.

#[path = "support/engine.rs"]
mod engine_support;
#[path = "support/fault_proxy.rs"]
mod fault_proxy;
#[path = "support/tcp_relay.rs"]
mod tcp_relay;
#[path = "support/tls_proxy.rs"]
mod tls_proxy;

use std::collections::BTreeMap;
use std::sync::Arc;

use fabric_console::fabric::connection::ConnectionString;
use fabric_console::fabric::model::{Gateway, PoolSettings};
use fabric_console::ipam::model::{
    AddressSpace, AddressSpaceKind, Cursor, IpRange, IpamId, IpamKind, IpamOp, IpamSnapshot,
    IpamSubnet, SnapshotRead, SnapshotScope,
};
use fabric_console::ipam::nautobot::NautobotProviderFactory;
use fabric_console::ipam::provider::{
    Credentials, IpamError, IpamProvider, OpOutcome, ProviderConfig, ProviderFactory, TestOutcome,
};
use serde_json::{Value, json};
use uuid::Uuid;

struct Nautobot {
    url: String,
    token: String,
    readonly_token: String,
}

fn nautobot() -> Nautobot {
    let var = |name: &str| match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v,
        _ => panic!(
            "{name} is not set. These tests need a real Nautobot: run `bash scripts/nautobot.sh start` \
             and then `eval \"$(bash scripts/nautobot.sh env)\"` before `cargo test --test nautobot`."
        ),
    };
    Nautobot {
        url: var("NAUTOBOT_URL"),
        token: var("NAUTOBOT_TOKEN"),
        readonly_token: var("NAUTOBOT_READONLY_TOKEN"),
    }
}

fn connect(nb: &Nautobot, token: &str) -> Arc<dyn IpamProvider> {
    connect_listening(nb, token, None)
}

fn connect_listening(nb: &Nautobot, token: &str, events: Option<String>) -> Arc<dyn IpamProvider> {
    let connection = ConnectionString::parse(&nb.url).expect("NAUTOBOT_URL is a connection string");
    NautobotProviderFactory::new()
        .connect(ProviderConfig {
            connection,
            credentials: Credentials {
                user_name: "nautobot-test-account".into(),
                secret: token.to_string(),
            },
            trust: fabric_console::fabric::model::TlsTrust::default(),
            service_name: "interop".into(),
            event_source: events,
        })
        .expect("provider connects")
}

/// Names of test objects carry this marker, so a rig can clear leftovers of interrupted runs.
const MARKER: &str = "fctest";

fn suffix() -> String {
    format!("{MARKER}{}", &Uuid::new_v4().simple().to_string()[..10])
}

/// One test at a time: a sync reads every address space of the server, so tests must not see
/// each other's half-made objects.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Nautobot's REST API used directly, as an operator's script would.
struct Operator {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Operator {
    fn new(nb: &Nautobot) -> Self {
        Operator {
            http: reqwest::Client::new(),
            url: nb.url.trim_end_matches('/').to_string(),
            token: nb.token.clone(),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .header("Authorization", format!("Token {}", self.token))
            .header("Accept", "application/json; version=2.4");
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("Nautobot answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let (status, body) = self.call(reqwest::Method::POST, path, Some(body)).await;
        assert_eq!(status, 201, "POST {path}: {body}");
        body
    }

    async fn patch(&self, path: &str, body: Value) -> Value {
        let (status, body) = self.call(reqwest::Method::PATCH, path, Some(body)).await;
        assert_eq!(status, 200, "PATCH {path}: {body}");
        body
    }

    async fn delete(&self, path: &str) {
        let (status, body) = self.call(reqwest::Method::DELETE, path, None).await;
        assert_eq!(status, 204, "DELETE {path}: {body}");
    }

    async fn active_status(&self) -> String {
        let (_, body) = self.get("/api/extras/statuses/?name=Active").await;
        body["results"][0]["id"]
            .as_str()
            .expect("Active status")
            .to_string()
    }

    /// Removes every range, prefix and namespace whose namespace name contains `tag`.
    async fn cleanup(&self, tag: &str) {
        let (_, namespaces) = self.get("/api/ipam/namespaces/?limit=1000").await;
        for ns in namespaces["results"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let name = ns["name"].as_str().unwrap_or("");
            if !name.contains(tag) {
                continue;
            }
            let id = ns["id"].as_str().unwrap_or("");
            // Addresses first: they keep their prefix from being deleted.
            let (_, addresses) = self
                .get(&format!(
                    "/api/ipam/ip-addresses/?namespace={id}&limit=1000"
                ))
                .await;
            let ids: Vec<Value> = addresses["results"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|a| serde_json::json!({ "id": a["id"] }))
                .collect();
            if !ids.is_empty() {
                let _ = self
                    .call(
                        reqwest::Method::DELETE,
                        "/api/ipam/ip-addresses/",
                        Some(Value::Array(ids)),
                    )
                    .await;
            }
            let (_, ranges) = self
                .get(&format!(
                    "/api/ipam/ip-address-ranges/?namespace={id}&limit=1000"
                ))
                .await;
            for r in ranges["results"].as_array().cloned().unwrap_or_default() {
                let _ = self
                    .call(
                        reqwest::Method::DELETE,
                        &format!(
                            "/api/ipam/ip-address-ranges/{}/",
                            r["id"].as_str().unwrap_or("")
                        ),
                        None,
                    )
                    .await;
            }
            let (_, prefixes) = self
                .get(&format!("/api/ipam/prefixes/?namespace={id}&limit=1000"))
                .await;
            let mut prefixes = prefixes["results"].as_array().cloned().unwrap_or_default();
            // Children first, so no prefix is protected by a child.
            prefixes.sort_by_key(|p| std::cmp::Reverse(p["prefix_length"].as_u64().unwrap_or(0)));
            for p in prefixes {
                let _ = self
                    .call(
                        reqwest::Method::DELETE,
                        &format!("/api/ipam/prefixes/{}/", p["id"].as_str().unwrap_or("")),
                        None,
                    )
                    .await;
            }
            let _ = self
                .call(
                    reqwest::Method::DELETE,
                    &format!("/api/ipam/namespaces/{id}/"),
                    None,
                )
                .await;
        }
    }
}

fn provider_space(name: &str) -> AddressSpace {
    AddressSpace {
        id: Uuid::new_v4().to_string().into(),
        vmm_id: Some(Uuid::new_v4()),
        name: name.to_string(),
        kind: AddressSpaceKind::Provider,
        description: format!("logical network {name}"),
        vmm_logical_network: Some(name.to_string()),
        vm_network: None,
        provider_space: None,
        tenant: String::new(),
        owner: "fabric".into(),
    }
}

fn subnet(space: &IpamId, cidr: &str, site: &str, vlan: u16) -> IpamSubnet {
    IpamSubnet {
        id: Uuid::new_v4().to_string().into(),
        vmm_id: Some(Uuid::new_v4()),
        address_space: space.clone(),
        network: cidr.parse().expect("cidr"),
        name: format!("{site} {cidr}").trim().to_string(),
        network_type: "Provider".into(),
        vmm_logical_network: None,
        network_site: Some(site.to_string()),
        vlan,
        secondary_vlan: None,
        owner: String::new(),
        custom_fields: BTreeMap::new(),
    }
}

fn range(subnet: &IpamId, start: &str, end: &str) -> IpRange {
    IpRange {
        id: Uuid::new_v4().to_string().into(),
        vmm_id: Some(Uuid::new_v4()),
        subnet: subnet.clone(),
        name: format!("pool {start}"),
        description: "static pool".into(),
        start: start.parse().expect("ip"),
        end: end.parse().expect("ip"),
        settings: PoolSettings {
            reserved: [start.parse().expect("ip")].into(),
            vips: Default::default(),
            gateways: vec![Gateway::Automatic {
                address: "10.0.0.1".parse().expect("ip"),
            }],
            dns_servers: vec!["10.0.0.2".parse().expect("ip")],
            dns_suffix: "corp.example".into(),
            dns_search_suffixes: vec!["corp.example".into(), "example".into()],
            wins_servers: vec![],
            netbios_enabled: false,
        },
        managed_by_service: "VMM".into(),
        service_instance: "interop".into(),
    }
}

fn applied_id(outcome: &OpOutcome) -> IpamId {
    match outcome {
        OpOutcome::Applied { id } => id.clone(),
        other => panic!("operation not applied: {other:?}"),
    }
}

async fn full(provider: &Arc<dyn IpamProvider>, scope: &SnapshotScope) -> IpamSnapshot {
    match provider.snapshot(scope, None).await.expect("full read") {
        SnapshotRead::Full(s) => s,
        SnapshotRead::Changes(_) => panic!("a read without a cursor must be full"),
    }
}

#[tokio::test]
async fn test_passes_with_a_good_token() {
    let nb = nautobot();
    let _serial = SERIAL.lock().await;
    let report = connect(&nb, &nb.token).test().await;
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
            .server_version
            .as_deref()
            .is_some_and(|v| v.starts_with('3')),
        "{report:?}"
    );
    let skew = report.skew_ms.expect("skew measured");
    assert!(
        skew.abs() < 5_000,
        "local Nautobot's clock differs by {skew} ms"
    );
    assert!(
        report.operations.iter().all(|(_, yes)| *yes),
        "{:?}",
        report.operations
    );
}

/// With an event source, the Test shows whether Nautobot publishes its changes there: the
/// permission check's changes are listened for.
#[tokio::test]
async fn test_checks_that_nautobot_publishes_changes_where_the_console_listens() {
    let nb = nautobot();
    let _serial = SERIAL.lock().await;
    let events =
        std::env::var("NAUTOBOT_EVENTS").expect("NAUTOBOT_EVENTS (scripts/nautobot.sh env)");
    let report = connect_listening(&nb, &nb.token, Some(events.clone()))
        .test()
        .await;
    assert!(report.passed(), "{report:#?}");
    let line = report.tests.last().expect("lines");
    assert_eq!(line.name, "Change events");
    assert!(
        line.detail.contains("published") && line.detail.contains(&events),
        "{line:?}"
    );

    // Nothing listens on this port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let report = connect_listening(&nb, &nb.token, Some(format!("redis://{closed}")))
        .test()
        .await;
    assert!(!report.passed(), "{report:#?}");
    let line = report.tests.last().expect("lines");
    assert_eq!(
        (line.name.as_str(), line.outcome),
        ("Change events", TestOutcome::Failed),
        "{line:?}"
    );
    assert!(
        line.detail.contains("cannot subscribe") && line.detail.contains(&closed.to_string()),
        "{line:?}"
    );
    assert_eq!(
        report.tests[3].outcome,
        TestOutcome::Passed,
        "the rest still passes"
    );
}

#[tokio::test]
async fn test_fails_with_a_bad_token_and_says_why() {
    let nb = nautobot();
    let _serial = SERIAL.lock().await;
    let report = connect(&nb, "0123456789abcdef0123456789abcdef01234567")
        .test()
        .await;
    assert!(!report.passed());
    let open = &report.tests[0];
    assert_eq!(open.name, "Open connection");
    assert_eq!(open.outcome, TestOutcome::Failed);
    assert!(
        open.detail.contains("nautobot-test-account"),
        "{}",
        open.detail
    );
    assert!(open.detail.contains("Invalid token"), "{}", open.detail);
}

#[tokio::test]
async fn test_fails_with_a_read_only_token_and_names_the_fix() {
    let nb = nautobot();
    let _serial = SERIAL.lock().await;
    let report = connect(&nb, &nb.readonly_token).test().await;
    assert!(!report.passed(), "{report:#?}");
    assert_eq!(report.tests[0].outcome, TestOutcome::Passed, "{report:#?}");
    let permissions = report
        .tests
        .iter()
        .find(|t| t.name == "Permissions")
        .expect("Permissions test");
    assert_eq!(permissions.outcome, TestOutcome::Failed);
    assert!(
        permissions.detail.contains("ipam.prefix"),
        "{}",
        permissions.detail
    );
    assert!(permissions.detail.contains("add"), "{}", permissions.detail);
}

#[tokio::test]
async fn read_only_token_reads_but_cannot_write() {
    let nb = nautobot();
    let _serial = SERIAL.lock().await;
    // The admin provider makes sure the custom fields exist.
    let admin = connect(&nb, &nb.token);
    let tag = suffix();
    let space = provider_space(&format!("ro-{tag}"));
    let out = admin
        .apply(&[IpamOp::CreateSpace(space.clone())])
        .await
        .expect("apply");
    let space_id = applied_id(&out[0]);

    let readonly = connect(&nb, &nb.readonly_token);
    let snap = full(&readonly, &SnapshotScope::All).await;
    assert!(
        snap.spaces.iter().any(|s| s.id == space_id),
        "read-only token reads the spaces"
    );
    // It may not read the change log, so a read with a cursor falls back to a full read.
    let cursor = snap.cursor.clone().expect("cursor");
    let again = readonly
        .snapshot(&SnapshotScope::All, Some(&cursor))
        .await
        .expect("read");
    assert!(
        matches!(again, SnapshotRead::Full(_)),
        "without the change log every read is full"
    );
    let result = readonly
        .apply(&[IpamOp::CreateSpace(provider_space(&format!("ro2-{tag}")))])
        .await;
    let refused = match result {
        Ok(outcomes) => matches!(outcomes[0], OpOutcome::Failed(IpamError::Forbidden { .. })),
        Err(IpamError::Forbidden { .. }) => true,
        Err(_) => false,
    };
    assert!(refused, "a view-only token must be refused with Forbidden");
    Operator::new(&nb).cleanup(&tag).await;
}

#[tokio::test]
async fn apply_creates_in_one_batch_and_the_snapshot_reads_them_back_equal() {
    let nb = nautobot();
    let _serial = SERIAL.lock().await;
    let provider = connect(&nb, &nb.token);
    let tag = suffix();
    let ln = format!("Prod-{tag}");
    let space = provider_space(&ln);
    let mut customer = AddressSpace {
        id: Uuid::new_v4().to_string().into(),
        vmm_id: Some(Uuid::new_v4()),
        name: format!("Tenant-{tag}"),
        kind: AddressSpaceKind::Customer,
        description: "VM network".into(),
        vmm_logical_network: None,
        vm_network: Some(format!("Tenant-{tag}")),
        provider_space: Some(space.id.clone()),
        tenant: "tenant-a".into(),
        owner: String::new(),
    };
    let mut s1 = subnet(&space.id, "10.10.0.0/24", "Seattle", 10);
    s1.vmm_logical_network = Some(ln.clone());
    let mut s2 = subnet(&space.id, "2001:db8:10::/64", "Seattle", 0);
    s2.secondary_vlan = Some(301);
    let mut c1 = subnet(&customer.id, "192.168.0.0/24", "", 0);
    c1.network_site = None;
    c1.network_type = "Customer".into();
    let r1 = range(&s1.id, "10.10.0.10", "10.10.0.99");
    let mut r2 = range(&s2.id, "2001:db8:10::100", "2001:db8:10::1ff");
    r2.settings.gateways = vec![Gateway::Address {
        address: "2001:db8:10::1".parse().expect("ip"),
        metric: 10,
    }];
    let batch = vec![
        IpamOp::CreateSpace(space.clone()),
        IpamOp::CreateSpace(customer.clone()),
        IpamOp::CreateSubnet(s1.clone()),
        IpamOp::CreateSubnet(s2.clone()),
        IpamOp::CreateSubnet(c1.clone()),
        IpamOp::CreateRange(r1.clone()),
        IpamOp::CreateRange(r2.clone()),
    ];
    let outcomes = provider.apply(&batch).await.expect("apply");
    assert_eq!(outcomes.len(), batch.len());
    let ids: Vec<IpamId> = outcomes.iter().map(applied_id).collect();
    for (proposed, real) in batch.iter().zip(&ids) {
        assert_ne!(proposed.target_id(), real, "Nautobot assigns its own ids");
    }

    // What was sent, with Nautobot's ids in place of the proposed ones.
    let mut space = space;
    space.id = ids[0].clone();
    customer.id = ids[1].clone();
    customer.provider_space = Some(ids[0].clone());
    let (mut s1, mut s2, mut c1) = (s1, s2, c1);
    s1.id = ids[2].clone();
    s1.address_space = ids[0].clone();
    s2.id = ids[3].clone();
    s2.address_space = ids[0].clone();
    c1.id = ids[4].clone();
    c1.address_space = ids[1].clone();
    let (mut r1, mut r2) = (r1, r2);
    r1.id = ids[5].clone();
    r1.subnet = ids[2].clone();
    r2.id = ids[6].clone();
    r2.subnet = ids[3].clone();

    let scope = SnapshotScope::LogicalNetworks([ln.clone()].into());
    let snap = full(&provider, &scope).await;
    let mut spaces = snap.spaces.clone();
    spaces.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(
        spaces,
        vec![space.clone(), customer.clone()],
        "scope holds exactly this LN's spaces"
    );
    let find_subnet = |id: &IpamId| snap.subnets.iter().find(|s| &s.id == id).cloned();
    assert_eq!(find_subnet(&s1.id), Some(s1.clone()));
    assert_eq!(find_subnet(&s2.id), Some(s2.clone()));
    assert_eq!(find_subnet(&c1.id), Some(c1.clone()));
    assert_eq!(snap.subnets.len(), 3);
    let find_range = |id: &IpamId| snap.ranges.iter().find(|r| &r.id == id).cloned();
    assert_eq!(find_range(&r1.id), Some(r1.clone()));
    assert_eq!(find_range(&r2.id), Some(r2.clone()));

    // Updates come back too.
    let mut r1b = r1.clone();
    r1b.end = "10.10.0.120".parse().expect("ip");
    r1b.settings.dns_suffix = "other.example".into();
    let mut s1b = s1.clone();
    s1b.vlan = 11;
    s1b.network_site = Some("Portland".into());
    let out = provider
        .apply(&[
            IpamOp::UpdateSubnet(s1b.clone()),
            IpamOp::UpdateRange(r1b.clone()),
        ])
        .await
        .expect("apply updates");
    assert_eq!(applied_id(&out[0]), s1.id);
    assert_eq!(applied_id(&out[1]), r1.id);
    let snap = full(&provider, &scope).await;
    assert_eq!(snap.subnets.iter().find(|s| s.id == s1.id), Some(&s1b));
    assert_eq!(snap.ranges.iter().find(|r| r.id == r1.id), Some(&r1b));

    // And deletes, children first, in one batch.
    let out = provider
        .apply(&[
            IpamOp::DeleteRange(r1.id.clone()),
            IpamOp::DeleteRange(r2.id.clone()),
            IpamOp::DeleteSubnet(s1.id.clone()),
            IpamOp::DeleteSubnet(s2.id.clone()),
            IpamOp::DeleteSubnet(c1.id.clone()),
            IpamOp::DeleteSpace(customer.id.clone()),
            IpamOp::DeleteSpace(space.id.clone()),
        ])
        .await
        .expect("apply deletes");
    for o in &out {
        applied_id(o);
    }
    let snap = full(&provider, &scope).await;
    assert_eq!(snap.object_count(), 0, "{snap:?}");
}

#[tokio::test]
async fn one_rejected_object_does_not_stop_the_rest_of_its_batch() {
    let nb = nautobot();
    let _serial = SERIAL.lock().await;
    let provider = connect(&nb, &nb.token);
    let tag = suffix();
    let space = provider_space(&format!("Partial-{tag}"));
    let out = provider
        .apply(&[IpamOp::CreateSpace(space.clone())])
        .await
        .expect("apply");
    let space_id = applied_id(&out[0]);
    let good1 = subnet(&space_id, "10.20.1.0/24", "A", 1);
    let duplicate = subnet(&space_id, "10.20.1.0/24", "A", 1);
    let good2 = subnet(&space_id, "10.20.2.0/24", "A", 2);
    let out = provider
        .apply(&[
            IpamOp::CreateSubnet(good1),
            IpamOp::CreateSubnet(duplicate),
            IpamOp::CreateSubnet(good2),
        ])
        .await
        .expect("apply");
    let applied = out
        .iter()
        .filter(|o| matches!(o, OpOutcome::Applied { .. }))
        .count();
    let failed: Vec<&OpOutcome> = out
        .iter()
        .filter(|o| matches!(o, OpOutcome::Failed(_)))
        .collect();
    assert_eq!(applied, 2, "{out:?}");
    assert_eq!(failed.len(), 1, "{out:?}");
    let text = match failed[0] {
        OpOutcome::Failed(e) => e.to_string(),
        _ => unreachable!(),
    };
    assert!(
        text.contains("10.20.1.0/24") || text.to_lowercase().contains("already exists"),
        "{text}"
    );
    Operator::new(&nb).cleanup(&tag).await;
}

#[tokio::test]
async fn incremental_read_sees_edits_and_deletions_made_in_nautobot() {
    let nb = nautobot();
    let _serial = SERIAL.lock().await;
    let provider = connect(&nb, &nb.token);
    let operator = Operator::new(&nb);
    let tag = suffix();
    let ln = format!("Inc-{tag}");
    let space = provider_space(&ln);
    let out = provider
        .apply(&[IpamOp::CreateSpace(space.clone())])
        .await
        .expect("apply");
    let space_id = applied_id(&out[0]);
    let kept = subnet(&space_id, "10.30.1.0/24", "Site", 5);
    let doomed = subnet(&space_id, "10.30.2.0/24", "Site", 6);
    let out = provider
        .apply(&[
            IpamOp::CreateSubnet(kept.clone()),
            IpamOp::CreateSubnet(doomed.clone()),
        ])
        .await
        .expect("apply");
    let kept_id = applied_id(&out[0]);
    let doomed_id = applied_id(&out[1]);
    let pool = range(&kept_id, "10.30.1.10", "10.30.1.20");
    let out = provider
        .apply(&[IpamOp::CreateRange(pool.clone())])
        .await
        .expect("apply");
    let pool_id = applied_id(&out[0]);

    let scope = SnapshotScope::LogicalNetworks([ln.clone()].into());
    let base = full(&provider, &scope).await;
    let cursor: Cursor = base.cursor.clone().expect("a full read issues a cursor");

    // An operator edits and deletes in Nautobot's UI or API.
    operator
        .patch(
            &format!("/api/ipam/prefixes/{kept_id}/"),
            json!({"description": "renamed in Nautobot", "custom_fields": {"vmm_network_site": "Moved"}}),
        )
        .await;
    operator
        .patch(
            &format!("/api/ipam/ip-address-ranges/{pool_id}/"),
            json!({"end_address": "10.30.1.40"}),
        )
        .await;
    operator
        .delete(&format!("/api/ipam/prefixes/{doomed_id}/"))
        .await;
    let status = operator.active_status().await;
    let hand = operator
        .post(
            "/api/ipam/prefixes/",
            json!({"prefix": "10.30.3.0/24", "namespace": space_id, "type": "network", "status": status,
                   "description": "made by hand"}),
        )
        .await;
    let hand_id = hand["id"].as_str().expect("id").to_string();

    let read = provider
        .snapshot(&scope, Some(&cursor))
        .await
        .expect("incremental read");
    let changes = match read {
        SnapshotRead::Changes(c) => c,
        SnapshotRead::Full(_) => panic!("a fresh cursor must give an incremental read"),
    };
    let edited = changes
        .subnets
        .iter()
        .find(|s| s.id == kept_id)
        .expect("edited subnet reported");
    assert_eq!(edited.name, "renamed in Nautobot");
    assert_eq!(edited.network_site.as_deref(), Some("Moved"));
    let made = changes
        .subnets
        .iter()
        .find(|s| s.id == hand_id)
        .expect("hand-made subnet reported");
    assert_eq!(made.vmm_id, None, "not linked to the console yet");
    let edited_pool = changes
        .ranges
        .iter()
        .find(|r| r.id == pool_id)
        .expect("edited range reported");
    assert_eq!(
        edited_pool.end,
        "10.30.1.40".parse::<std::net::IpAddr>().expect("ip")
    );
    assert!(
        changes
            .deleted
            .contains(&(IpamKind::Subnet, doomed_id.clone())),
        "{:?}",
        changes.deleted
    );
    assert!(
        !changes
            .deleted
            .iter()
            .any(|(_, id)| id == &kept_id || id == &pool_id)
    );

    // Applying the changes to the base gives what a full read gives now.
    let mut merged = base.clone();
    merged.apply_changes(changes);
    let now = full(&provider, &scope).await;
    let sorted = |s: &IpamSnapshot| {
        let mut subnets = s.subnets.clone();
        subnets.sort_by(|a, b| a.id.cmp(&b.id));
        let mut ranges = s.ranges.clone();
        ranges.sort_by(|a, b| a.id.cmp(&b.id));
        let mut spaces = s.spaces.clone();
        spaces.sort_by(|a, b| a.id.cmp(&b.id));
        (spaces, subnets, ranges)
    };
    assert_eq!(sorted(&merged), sorted(&now));

    operator.cleanup(&tag).await;
}

#[tokio::test]
async fn objects_made_by_hand_are_read_but_never_deleted() {
    let nb = nautobot();
    let _serial = SERIAL.lock().await;
    let provider = connect(&nb, &nb.token);
    let operator = Operator::new(&nb);
    let tag = suffix();
    let status = operator.active_status().await;
    let ns = operator
        .post(
            "/api/ipam/namespaces/",
            json!({"name": format!("vmm-ln-Hand-{tag}")}),
        )
        .await;
    let ns_id = ns["id"].as_str().expect("id").to_string();
    let prefix = operator
        .post(
            "/api/ipam/prefixes/",
            json!({"prefix": "10.40.0.0/24", "namespace": ns_id, "type": "network", "status": status}),
        )
        .await;
    let prefix_id = prefix["id"].as_str().expect("id").to_string();
    let pool = operator
        .post(
            "/api/ipam/ip-address-ranges/",
            json!({"start_address": "10.40.0.10", "end_address": "10.40.0.20", "parent": prefix_id, "status": status}),
        )
        .await;
    let pool_id = pool["id"].as_str().expect("id").to_string();

    let snap = full(&provider, &SnapshotScope::All).await;
    let space = snap
        .spaces
        .iter()
        .find(|s| s.id == ns_id)
        .expect("hand-made namespace read");
    assert_eq!(space.name, format!("Hand-{tag}"));
    assert_eq!(space.vmm_id, None);
    assert!(
        snap.subnets
            .iter()
            .any(|s| s.id == prefix_id && s.vmm_id.is_none())
    );
    assert!(
        snap.ranges
            .iter()
            .any(|r| r.id == pool_id && r.subnet == prefix_id)
    );

    let out = provider
        .apply(&[
            IpamOp::DeleteRange(pool_id.as_str().into()),
            IpamOp::DeleteSubnet(prefix_id.as_str().into()),
            IpamOp::DeleteSpace(ns_id.as_str().into()),
        ])
        .await
        .expect("apply");
    for (o, what) in out.iter().zip(["10.40.0.10", "10.40.0.0/24", "Hand-"]) {
        match o {
            OpOutcome::Failed(IpamError::Conflict { detail, .. }) => {
                assert!(detail.contains(what), "{detail}");
                assert!(detail.contains("not created by Fabric Console"), "{detail}");
            }
            other => panic!("hand-made object must not be deleted: {other:?}"),
        }
    }
    for path in [
        format!("/api/ipam/ip-address-ranges/{pool_id}/"),
        format!("/api/ipam/prefixes/{prefix_id}/"),
        format!("/api/ipam/namespaces/{ns_id}/"),
    ] {
        assert_eq!(operator.get(&path).await.0, 200, "{path} still exists");
    }
    operator.cleanup(&tag).await;
}

// ---------------------------------------------------------------------------------------------
// End to end: the sync engine against Nautobot
// ---------------------------------------------------------------------------------------------

mod end_to_end {
    use super::*;
    use fabric_console::fabric::model::*;
    use fabric_console::fabric::secrets::{MemorySecretStore, SecretStore};
    use fabric_console::fabric::store::FabricStore;
    use fabric_console::ipam::registry::ProviderRegistry;
    use fabric_console::sync::engine::{Engine, EngineContext, EngineHandle};
    use fabric_console::sync::status::{JobRecord, JobResult, JobTrigger};
    use ipnet::IpNet;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }
    fn net(s: &str) -> IpNet {
        s.parse().expect("cidr")
    }

    #[derive(Clone, Copy)]
    struct Ids {
        seattle: Id,
        dublin: Id,
        ln: Id,
        site: Id,
        dublin_site: Id,
        pool: Id,
        vmn: Id,
    }

    struct Rig {
        _dir: tempfile::TempDir,
        store: FabricStore,
        engine: EngineHandle,
        service: Id,
        ids: Ids,
        tag: String,
        provider: Arc<dyn IpamProvider>,
        operator: Operator,
        ln_name: String,
        vmn_name: String,
    }

    /// The sync test fixture: one logical network with a Seattle and a Dublin site, a pool and a
    /// virtualized VM network; every name carries the run's tag.
    async fn rig(nb: &Nautobot, seattle_only: bool) -> Rig {
        rig_with(nb, seattle_only, None).await
    }

    /// The fixture as the console runs it: periodic syncs (every 5 min) and listening on
    /// Nautobot's event broker at `events`.
    async fn rig_live(nb: &Nautobot, events: String) -> Rig {
        rig_with(nb, false, Some(events)).await
    }

    async fn rig_with(nb: &Nautobot, seattle_only: bool, events: Option<String>) -> Rig {
        let live = events.is_some();
        let operator = Operator::new(nb);
        // Leftovers of interrupted runs (of these tests and of the benchmark) would be imported
        // as IPAM-made networks.
        operator.cleanup(MARKER).await;
        operator.cleanup("fcbench").await;
        let (_, namespaces) = operator.get("/api/ipam/namespaces/?limit=1000").await;
        let foreign: Vec<String> = namespaces["results"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|n| n["name"].as_str().map(str::to_string))
            .filter(|n| n.starts_with("vmm-"))
            .collect();
        assert!(
            foreign.is_empty(),
            "the end-to-end tests sync every address space of the server, and this Nautobot holds \
             namespaces these tests did not make: {foreign:?}; run them against the test Nautobot \
             of scripts/nautobot.sh or delete those namespaces"
        );
        let tag = suffix();
        let ln_name = format!("Backend-{tag}");
        let vmn_name = format!("Tenant A-{tag}");
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FabricStore::open(&dir.path().join("fabric.db")).expect("store");
        let root = store.fabric().root_host_group().expect("root").id;
        let ids = Ids {
            seattle: Uuid::new_v4(),
            dublin: Uuid::new_v4(),
            ln: Uuid::new_v4(),
            site: Uuid::new_v4(),
            dublin_site: Uuid::new_v4(),
            pool: Uuid::new_v4(),
            vmn: Uuid::new_v4(),
        };
        let run_as = Uuid::new_v4();
        let service = NetworkService {
            id: Uuid::new_v4(),
            name: format!("nautobot-{tag}"),
            description: String::new(),
            category: ServiceCategory::NetworkManager,
            manufacturer: "Network to Code".into(),
            model: "Nautobot".into(),
            connection: ConnectionString::parse(&nb.url).expect("connection string"),
            run_as,
            provider: fabric_console::ipam::nautobot::PROVIDER_ID.into(),
            scope: if seattle_only {
                HostGroupScope::Selected([ids.seattle].into())
            } else {
                HostGroupScope::All
            },
            sync_interval_secs: 300,
            tls_fingerprint: None,
            tls_ca_file: None,
            allow_cleartext: false,
            event_source: events,
            sync_on_change: true,
        };
        let changes = vec![
            FabricChange::Put(FabricObject::HostGroup(HostGroup {
                id: ids.seattle,
                name: "Seattle".into(),
                parent: Some(root),
            })),
            FabricChange::Put(FabricObject::HostGroup(HostGroup {
                id: ids.dublin,
                name: "Dublin".into(),
                parent: Some(root),
            })),
            FabricChange::Put(FabricObject::RunAsAccount(RunAsAccount {
                id: run_as,
                name: "Nautobot token".into(),
                description: String::new(),
                user_name: "fabric-console-admin".into(),
            })),
            FabricChange::Put(FabricObject::LogicalNetwork(LogicalNetwork {
                id: ids.ln,
                name: ln_name.clone(),
                description: String::new(),
                isolation: LogicalNetworkIsolation::NetworkVirtualization,
            })),
            FabricChange::Put(FabricObject::NetworkSite(NetworkSite {
                id: ids.site,
                name: format!("Backend_Seattle-{tag}"),
                logical_network: ids.ln,
                host_groups: vec![ids.seattle],
                subnets: vec![
                    SubnetVlan {
                        subnet: net("10.1.0.0/24"),
                        vlan: 10,
                        secondary_vlan: None,
                    },
                    SubnetVlan {
                        subnet: net("10.1.1.0/24"),
                        vlan: 11,
                        secondary_vlan: None,
                    },
                ],
            })),
            FabricChange::Put(FabricObject::NetworkSite(NetworkSite {
                id: ids.dublin_site,
                name: format!("Backend_Dublin-{tag}"),
                logical_network: ids.ln,
                host_groups: vec![ids.dublin],
                subnets: vec![SubnetVlan {
                    subnet: net("10.2.0.0/24"),
                    vlan: 20,
                    secondary_vlan: None,
                }],
            })),
            FabricChange::Put(FabricObject::IpPool(IpPool {
                id: ids.pool,
                name: "Backend pool".into(),
                description: String::new(),
                scope: PoolScope::Site {
                    site: ids.site,
                    subnet: net("10.1.0.0/24"),
                },
                range_start: ip("10.1.0.10"),
                range_end: ip("10.1.0.200"),
                settings: PoolSettings {
                    reserved: [ip("10.1.0.11")].into_iter().collect(),
                    vips: [ip("10.1.0.12")].into_iter().collect(),
                    gateways: vec![Gateway::Address {
                        address: ip("10.1.0.1"),
                        metric: 1,
                    }],
                    dns_servers: vec![ip("10.0.0.53")],
                    dns_suffix: "corp.contoso.com".into(),
                    dns_search_suffixes: vec!["contoso.com".into()],
                    wins_servers: vec![],
                    netbios_enabled: false,
                },
            })),
            FabricChange::Put(FabricObject::VmNetwork(VmNetwork {
                id: ids.vmn,
                name: vmn_name.clone(),
                description: String::new(),
                logical_network: ids.ln,
                isolation: VmNetworkIsolation::NetworkVirtualization,
                vm_subnets: vec![net("192.168.0.0/24")],
            })),
            FabricChange::Put(FabricObject::NetworkService(service.clone())),
        ];
        store.apply(&changes).expect("fixture is valid");
        let secrets: Arc<dyn SecretStore> = Arc::new(MemorySecretStore::default());
        secrets.put(run_as, &nb.token).expect("secret stored");
        let mut ctx = EngineContext::new(
            store.clone(),
            secrets,
            Arc::new(ProviderRegistry::default_registry()),
            Some(dir.path().join("sync.db")),
        );
        ctx.periodic = live;
        let engine = Engine::start(ctx).expect("engine starts");
        Rig {
            _dir: dir,
            store,
            engine,
            service: service.id,
            ids,
            provider: connect(nb, &nb.token),
            operator,
            tag,
            ln_name,
            vmn_name,
        }
    }

    impl Rig {
        async fn sync(&self) -> JobRecord {
            self.engine
                .sync_now(self.service, JobTrigger::Refresh)
                .await
                .expect("sync runs")
        }

        /// This run's part of Nautobot, read by the provider.
        async fn ipam(&self) -> IpamSnapshot {
            let mut s = full(&self.provider, &SnapshotScope::All).await;
            s.spaces.retain(|x| x.name.contains(&self.tag));
            let spaces: Vec<IpamId> = s.spaces.iter().map(|x| x.id.clone()).collect();
            s.subnets.retain(|x| spaces.contains(&x.address_space));
            let subnets: Vec<IpamId> = s.subnets.iter().map(|x| x.id.clone()).collect();
            s.ranges.retain(|x| subnets.contains(&x.subnet));
            s
        }

        /// One more sync: it succeeds and changes nothing on either side.
        async fn sync_changes_nothing(&self) {
            let job = self.sync().await;
            assert_eq!(job.result, JobResult::Succeeded, "{:?}", job.errors);
            assert_eq!(job.counts.total_changes(), 0, "{job:?}");
        }

        async fn done(self) {
            engine_support::retire_service(&self.store, &self.engine, self.service).await;
            self.operator.cleanup(&self.tag).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn granted_addresses_become_ip_addresses_and_hand_made_ones_are_never_granted() {
        use fabric_console::fabric::store::{Consumer, GrantError, GrantRequest};
        let nb = nautobot();
        let _serial = SERIAL.lock().await;
        let r = rig(&nb, false).await;
        let job = r.sync().await;
        assert_eq!(job.result, JobResult::Succeeded, "{:?}", job.errors);
        let ipam = r.ipam().await;
        let range = ipam
            .ranges
            .iter()
            .find(|x| x.vmm_id == Some(r.ids.pool))
            .expect("the pool's range")
            .clone();
        let namespace = ipam
            .subnets
            .iter()
            .find(|s| s.id == range.subnet)
            .expect("the range's prefix")
            .address_space
            .clone();
        // An IPAM administrator assigns 10.1.0.13 to a printer by hand.
        let status = r.operator.active_status().await;
        let printer = r
            .operator
            .post(
                "/api/ipam/ip-addresses/",
                serde_json::json!({
                    "address": "10.1.0.13/24",
                    "namespace": namespace.as_str(),
                    "status": status,
                    "type": "host",
                    "description": "printer-3",
                }),
            )
            .await;
        let grant = |address: Option<&str>, holder: &str, consumer| GrantRequest {
            pool: r.ids.pool,
            address: address.map(ip),
            holder: holder.into(),
            consumer,
        };
        let first = r
            .store
            .grant(&grant(None, "web-01/eth0", Consumer::VmAdapter))
            .unwrap();
        assert_eq!(first.address, ip("10.1.0.10"));
        r.store
            .grant(&grant(Some("10.1.0.77"), "db-01", Consumer::Host))
            .unwrap();
        r.store
            .grant(&grant(None, "lb-web", Consumer::Vip))
            .unwrap();
        let job = r.sync().await;
        assert_eq!(job.result, JobResult::Succeeded, "{:?}", job.errors);

        // In Nautobot: one IP address per grant, marked as the console's, beside the printer.
        let addresses = async || -> Vec<(String, String, Option<String>)> {
            let (_, body) = r
                .operator
                .get(&format!(
                    "/api/ipam/ip-addresses/?namespace={namespace}&limit=1000"
                ))
                .await;
            let mut out: Vec<(String, String, Option<String>)> = body["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    (
                        a["address"].as_str().unwrap().to_string(),
                        a["description"].as_str().unwrap_or("").to_string(),
                        a["custom_fields"]["vmm_consumer"]
                            .as_str()
                            .map(str::to_string),
                    )
                })
                .collect();
            out.sort();
            out
        };
        let s = |a: &str, d: &str, k: Option<&str>| {
            (a.to_string(), d.to_string(), k.map(str::to_string))
        };
        assert_eq!(
            addresses().await,
            [
                s("10.1.0.10/24", "web-01/eth0", Some("vm_adapter")),
                s("10.1.0.12/24", "lb-web", Some("vip")),
                s("10.1.0.13/24", "printer-3", None),
                s("10.1.0.77/24", "db-01", Some("host")),
            ]
        );
        let (_, nb_range) = r
            .operator
            .get(&format!("/api/ipam/ip-address-ranges/{}/", range.id))
            .await;
        let counts = &nb_range["custom_fields"]["vmm_usage"];
        assert_eq!(
            (
                counts["granted"].as_u64(),
                counts["vips_granted"].as_u64(),
                counts["held"].as_u64(),
                counts["total"].as_u64(),
                counts["free"].as_u64()
            ),
            (
                Some(2),
                Some(1),
                Some(1),
                Some(191),
                Some(191 - 2 - 1 - 1 - 1)
            ),
            "{nb_range}"
        );

        // The console read the printer's address: never granted.
        let held = r.store.ipam_held(Some(r.ids.pool)).unwrap();
        assert_eq!(
            held.iter()
                .map(|h| (h.address.to_string(), h.holder.clone()))
                .collect::<Vec<_>>(),
            [("10.1.0.13".to_string(), "printer-3".to_string())]
        );
        let next = r
            .store
            .grant(&grant(None, "web-02/eth0", Consumer::VmAdapter))
            .unwrap();
        assert_eq!(
            next.address,
            ip("10.1.0.14"),
            "10.1.0.11 reserved, .12 a VIP, .13 the printer's"
        );
        let err = r
            .store
            .grant(&grant(
                Some("10.1.0.13"),
                "web-03/eth0",
                Consumer::VmAdapter,
            ))
            .unwrap_err();
        assert!(matches!(err, GrantError::HeldOnIpam { .. }), "{err}");

        // A revocation and a holder change reach Nautobot; the printer is never touched.
        r.store.revoke(r.ids.pool, ip("10.1.0.77")).unwrap();
        let job = r.sync().await;
        assert_eq!(job.result, JobResult::Succeeded, "{:?}", job.errors);
        assert_eq!(
            addresses().await,
            [
                s("10.1.0.10/24", "web-01/eth0", Some("vm_adapter")),
                s("10.1.0.12/24", "lb-web", Some("vip")),
                s("10.1.0.13/24", "printer-3", None),
                s("10.1.0.14/24", "web-02/eth0", Some("vm_adapter")),
            ]
        );
        let (status, _) = r
            .operator
            .get(&format!(
                "/api/ipam/ip-addresses/{}/",
                printer["id"].as_str().unwrap()
            ))
            .await;
        assert_eq!(status, 200);
        r.sync_changes_nothing().await;

        // All revoked and the pool deleted: its addresses go with its range, so the prefix can
        // go too when its site loses the subnet.
        for g in r.store.grants(Some(r.ids.pool)).unwrap() {
            r.store.revoke(g.pool, g.address).unwrap();
        }
        r.store
            .apply(&[FabricChange::Delete(ObjectKind::IpPool, r.ids.pool)])
            .unwrap();
        let job = r.sync().await;
        assert_eq!(job.result, JobResult::Succeeded, "{:?}", job.errors);
        assert_eq!(addresses().await, [s("10.1.0.13/24", "printer-3", None)]);
        r.done().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn first_sync_creates_namespaces_and_prefixes_and_a_second_plans_nothing() {
        let nb = nautobot();
        let _serial = SERIAL.lock().await;
        let r = rig(&nb, false).await;
        let job = r.sync().await;
        assert_eq!(job.result, JobResult::Succeeded, "{:?}", job.errors);
        let s = r.ipam().await;
        let mut names: Vec<String> = s.spaces.iter().map(namespace).collect();
        names.sort();
        assert_eq!(
            names,
            vec![
                format!("vmm-ln-{}", r.ln_name),
                format!("vmm-vmn-{}", r.vmn_name)
            ]
        );
        let mut cidrs: Vec<String> = s.subnets.iter().map(|x| x.network.to_string()).collect();
        cidrs.sort();
        assert_eq!(
            cidrs,
            [
                "10.1.0.0/24",
                "10.1.1.0/24",
                "10.2.0.0/24",
                "192.168.0.0/24"
            ]
        );
        let sn = s
            .subnets
            .iter()
            .find(|x| x.network == net("10.1.0.0/24"))
            .expect("subnet");
        assert_eq!(sn.vmm_logical_network.as_deref(), Some(r.ln_name.as_str()));
        assert_eq!(
            sn.network_site.as_deref(),
            Some(format!("Backend_Seattle-{}", r.tag).as_str())
        );
        assert_eq!(sn.vlan, 10);
        assert_eq!(sn.vmm_id, Some(r.ids.site));
        assert_eq!(s.ranges.len(), 1);
        let range = &s.ranges[0];
        assert_eq!(
            (range.start, range.end),
            (ip("10.1.0.10"), ip("10.1.0.200"))
        );
        assert_eq!(range.subnet, sn.id);
        assert_eq!(range.settings.dns_servers, vec![ip("10.0.0.53")]);

        // As Nautobot shows it: a namespace, a network prefix with the seed's columns, a range.
        let (_, found) = r
            .operator
            .get(&format!("/api/ipam/prefixes/?id={}", sn.id))
            .await;
        let prefix = &found["results"][0];
        assert_eq!(
            prefix["type"]["value"].as_str().or(prefix["type"].as_str()),
            Some("network")
        );
        assert_eq!(prefix["custom_fields"]["vmm_vlan"], json!(10));
        assert_eq!(
            prefix["custom_fields"]["vmm_server"],
            json!(format!("nautobot-{}", r.tag))
        );

        let job = r.sync().await;
        assert_eq!(job.result, JobResult::Succeeded, "{:?}", job.errors);
        assert_eq!(job.counts.total_changes(), 0, "{:?}", job.counts);
        assert!(
            r.engine
                .preview(r.service)
                .await
                .expect("preview")
                .is_noop()
        );
        r.done().await;
    }

    fn namespace(space: &AddressSpace) -> String {
        fabric_console::ipam::nautobot::namespace_name(space)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nautobot_edits_arrive_and_vm_network_edits_are_put_back() {
        let nb = nautobot();
        let _serial = SERIAL.lock().await;
        let r = rig(&nb, false).await;
        r.sync().await;
        let s = r.ipam().await;
        let range = s
            .ranges
            .iter()
            .find(|x| x.vmm_id == Some(r.ids.pool))
            .expect("range");
        let (_, found) = r
            .operator
            .get(&format!("/api/ipam/ip-address-ranges/?id={}", range.id))
            .await;
        let mut pool = found["results"][0]["custom_fields"]["vmm_pool"].clone();
        pool["dns_servers"] = json!(["10.9.9.9"]);
        r.operator
            .patch(
                &format!("/api/ipam/ip-address-ranges/{}/", range.id),
                json!({"end_address": "10.1.0.150", "custom_fields": {"vmm_pool": pool}}),
            )
            .await;
        let subnet = s
            .subnets
            .iter()
            .find(|x| x.network == net("10.1.1.0/24"))
            .expect("subnet");
        r.operator
            .patch(
                &format!("/api/ipam/prefixes/{}/", subnet.id),
                json!({"custom_fields": {"vmm_vlan": 77}}),
            )
            .await;
        let customer = s
            .spaces
            .iter()
            .find(|x| x.vmm_id == Some(r.ids.vmn))
            .expect("customer space");
        r.operator
            .patch(
                &format!("/api/ipam/namespaces/{}/", customer.id),
                json!({"custom_fields": {"vmm_vm_network": "Renamed in Nautobot"}}),
            )
            .await;

        let job = r.sync().await;
        assert_eq!(
            job.result,
            JobResult::CompletedWithWarnings,
            "{:?}",
            job.errors
        );
        assert!(
            job.errors.iter().any(|e| e.contains("put back")),
            "{:?}",
            job.errors
        );
        let f = r.store.fabric();
        assert_eq!(
            f.ip_pools[&r.ids.pool].settings.dns_servers,
            vec![ip("10.9.9.9")]
        );
        assert_eq!(f.ip_pools[&r.ids.pool].range_end, ip("10.1.0.150"));
        let vlan = f.network_sites[&r.ids.site]
            .subnets
            .iter()
            .find(|x| x.subnet == net("10.1.1.0/24"))
            .expect("pair")
            .vlan;
        assert_eq!(vlan, 77);
        assert_eq!(f.vm_networks[&r.ids.vmn].name, r.vmn_name);
        let s = r.ipam().await;
        let customer = s
            .spaces
            .iter()
            .find(|x| x.vmm_id == Some(r.ids.vmn))
            .expect("customer space");
        assert_eq!(
            customer.vm_network.as_deref(),
            Some(r.vmn_name.as_str()),
            "put back in Nautobot"
        );
        let job = r.sync().await;
        assert_eq!(job.counts.total_changes(), 0, "{job:?}");
        r.done().await;
    }

    /// The Redis address of the harness's event broker, behind a relay the test can take down.
    async fn events_relay() -> tcp_relay::TcpRelay {
        let url = std::env::var("NAUTOBOT_EVENTS").expect(
            "NAUTOBOT_EVENTS is not set: run `eval \"$(bash scripts/nautobot.sh env)\"` (the harness enables Nautobot's event broker)",
        );
        let authority = url
            .trim_start_matches("redis://")
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let upstream = tokio::net::lookup_host(authority)
            .await
            .expect("NAUTOBOT_EVENTS names a host:port")
            .next()
            .expect("an address");
        tcp_relay::TcpRelay::start(upstream).await
    }

    /// Waits until `pred` holds for the console's fabric; the time it took.
    async fn until_console(
        r: &Rig,
        limit: std::time::Duration,
        what: &str,
        pred: impl Fn(&Fabric) -> bool,
    ) -> std::time::Duration {
        let t = std::time::Instant::now();
        while !pred(&r.store.fabric()) {
            assert!(
                t.elapsed() < limit,
                "{what}: not in the console after {:?}; status {:?}; jobs {:?}",
                t.elapsed(),
                r.engine.status(r.service),
                r.engine.jobs()
            );
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        t.elapsed()
    }

    fn vlan_of(f: &Fabric, site: Id, subnet: &str) -> u16 {
        f.network_sites[&site]
            .subnets
            .iter()
            .find(|x| x.subnet == net(subnet))
            .map(|x| x.vlan)
            .unwrap_or_default()
    }

    /// Live sync with Nautobot: an edit made in Nautobot reaches the console through the event
    /// broker long before the 5-minute interval, and when the subscription is lost (Redis
    /// restarting, the network dropping) the service says it polls, subscribes again, and the
    /// catch-up read brings what was edited meanwhile.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nautobot_edits_arrive_through_its_event_broker_and_after_a_lost_subscription() {
        use fabric_console::sync::status::Updates;
        let nb = nautobot();
        let _serial = SERIAL.lock().await;
        let relay = events_relay().await;
        let r = rig_live(&nb, format!("redis://{}", relay.addr())).await;
        let job = r.sync().await;
        assert_eq!(job.result, JobResult::Succeeded, "{:?}", job.errors);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !matches!(
            r.engine.status(r.service).map(|s| s.updates),
            Some(Updates::Live { .. })
        ) {
            assert!(
                std::time::Instant::now() < deadline,
                "not live: {:?}",
                r.engine.status(r.service)
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let subnet = r
            .ipam()
            .await
            .subnets
            .into_iter()
            .find(|x| x.network == net("10.1.1.0/24"))
            .expect("subnet");
        let prefix = format!("/api/ipam/prefixes/{}/", subnet.id);

        r.operator
            .patch(&prefix, json!({"custom_fields": {"vmm_vlan": 71}}))
            .await;
        let took = until_console(&r, std::time::Duration::from_secs(20), "VLAN 71", |f| {
            vlan_of(f, r.ids.site, "10.1.1.0/24") == 71
        })
        .await;
        eprintln!("Nautobot edit → console: {took:?}");
        assert!(
            r.engine
                .jobs()
                .iter()
                .any(|j| j.trigger == JobTrigger::ServerChange),
            "{:?}",
            r.engine.jobs()
        );

        // The subscription is lost: the service says it polls, and why.
        relay.down();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Some(Updates::Polling(why)) = r.engine.status(r.service).map(|s| s.updates) {
                assert!(why.contains("IPAM change events"), "{why}");
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "still {:?}",
                r.engine.status(r.service)
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        // Edited while nobody listens: Pub/Sub drops the event.
        r.operator
            .patch(&prefix, json!({"custom_fields": {"vmm_vlan": 72}}))
            .await;
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        assert_eq!(vlan_of(&r.store.fabric(), r.ids.site, "10.1.1.0/24"), 71);
        relay.up().await;
        until_console(
            &r,
            std::time::Duration::from_secs(40),
            "VLAN 72 after resubscribing",
            |f| vlan_of(f, r.ids.site, "10.1.1.0/24") == 72,
        )
        .await;
        // Live again, and the next edit arrives by its event.
        r.operator
            .patch(&prefix, json!({"custom_fields": {"vmm_vlan": 73}}))
            .await;
        until_console(&r, std::time::Duration::from_secs(20), "VLAN 73", |f| {
            vlan_of(f, r.ids.site, "10.1.1.0/24") == 73
        })
        .await;
        assert!(matches!(
            r.engine.status(r.service).map(|s| s.updates),
            Some(Updates::Live { .. })
        ));
        // A console save reaches Nautobot the same way (its events say nothing else changed,
        // so the sync sends without reading first).
        let mut pool = r.store.fabric().ip_pools[&r.ids.pool].clone();
        pool.settings.dns_suffix = "pushed.contoso.com".into();
        r.store
            .apply(&[FabricChange::Put(FabricObject::IpPool(pool))])
            .expect("pool saved");
        let t = std::time::Instant::now();
        loop {
            let range = r
                .ipam()
                .await
                .ranges
                .into_iter()
                .find(|x| x.vmm_id == Some(r.ids.pool))
                .expect("range");
            if range.settings.dns_suffix == "pushed.contoso.com" {
                break;
            }
            assert!(
                t.elapsed() < std::time::Duration::from_secs(20),
                "console save not in Nautobot: {:?}",
                r.engine.jobs()
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        eprintln!("console save → Nautobot: {:?}", t.elapsed());
        // Brought by the catch-up and the event, not by the 5-minute interval.
        let jobs = r.engine.jobs();
        let periodic = jobs
            .iter()
            .filter(|j| j.trigger == JobTrigger::Periodic)
            .count();
        assert!(
            periodic <= 1,
            "only the start-up sync may be periodic: {jobs:?}"
        );
        r.done().await;
    }

    /// A VM network's subnet (a prefix in its `vmm-vmn-…` namespace) edited in Nautobot is put
    /// back: VM networks are managed in the console only.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_vm_subnet_edited_in_nautobot_is_put_back() {
        let nb = nautobot();
        let _serial = SERIAL.lock().await;
        let r = rig(&nb, false).await;
        r.sync().await;
        let s = r.ipam().await;
        let customer = s
            .spaces
            .iter()
            .find(|x| x.vmm_id == Some(r.ids.vmn))
            .expect("customer space");
        let vm_subnet = s
            .subnets
            .iter()
            .find(|x| x.address_space == customer.id)
            .expect("the VM subnet's prefix")
            .clone();
        let (_, before) = r
            .operator
            .get(&format!("/api/ipam/prefixes/?id={}", vm_subnet.id))
            .await;
        let before = before["results"][0].clone();
        r.operator
            .patch(
                &format!("/api/ipam/prefixes/{}/", vm_subnet.id),
                json!({"description": "edited by hand", "custom_fields": {"vmm_vlan": 99}}),
            )
            .await;
        let job = r.sync().await;
        assert!(job.errors.iter().any(|e| e.contains("put back")), "{job:?}");
        let (_, after) = r
            .operator
            .get(&format!("/api/ipam/prefixes/?id={}", vm_subnet.id))
            .await;
        let after = &after["results"][0];
        assert_eq!(after["description"], before["description"], "{after}");
        assert_eq!(
            after["custom_fields"]["vmm_vlan"], before["custom_fields"]["vmm_vlan"],
            "{after}"
        );
        r.sync_changes_nothing().await;
        r.done().await;
    }

    /// Three seeded runs of a first sync through the fault-injecting proxy in front of the real
    /// Nautobot (resets before and after forwarding, lost answers, 502/503/429, cut bodies),
    /// each followed by a clean sync: nothing duplicated, nothing lost, nothing left to plan.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn faults_between_the_console_and_nautobot_never_duplicate_or_lose() {
        let nb = nautobot();
        let _serial = SERIAL.lock().await;
        let upstream: std::net::SocketAddr = nb
            .url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("NAUTOBOT_URL is http://<ip>:<port>");
        const EXTRA: usize = 40;
        for seed in 0..3u64 {
            let r = rig(&nb, false).await;
            let proxy = fault_proxy::FaultProxy::start(upstream, seed, 25).await;
            // Forty more subnets with a pool each, so that writes meet faults too.
            let f = r.store.fabric();
            let mut site = f.network_sites[&r.ids.site].clone();
            let mut changes = Vec::new();
            for k in 0..EXTRA {
                let subnet = net(&format!("10.50.{k}.0/24"));
                site.subnets.push(SubnetVlan {
                    subnet,
                    vlan: 300 + k as u16,
                    secondary_vlan: None,
                });
                changes.push(FabricChange::Put(FabricObject::IpPool(IpPool {
                    id: Uuid::new_v4(),
                    name: format!("Pool {k}"),
                    description: String::new(),
                    scope: PoolScope::Site {
                        site: r.ids.site,
                        subnet,
                    },
                    range_start: ip(&format!("10.50.{k}.10")),
                    range_end: ip(&format!("10.50.{k}.20")),
                    settings: PoolSettings::default(),
                })));
            }
            changes.insert(0, FabricChange::Put(FabricObject::NetworkSite(site)));
            let mut service = f.network_services[&r.service].clone();
            service.connection =
                ConnectionString::parse(&proxy.addr().to_string()).expect("proxy address");
            changes.push(FabricChange::Put(FabricObject::NetworkService(service)));
            r.store.apply(&changes).expect("valid additions");

            let faulty = r.sync().await;
            if faulty.counts.failed > 0 {
                assert_eq!(faulty.result, JobResult::Failed, "{:?}", faulty.errors);
            }
            assert!(
                !faulty.errors.iter().any(|e| e.contains("already exists")),
                "seed {seed}: something was sent again: {:?}",
                faulty.errors
            );
            // A write whose answer was lost is looked up, not reported failed on the spot.
            assert!(
                !faulty
                    .errors
                    .iter()
                    .any(|e| e.contains("did not answer in time")
                        || e.contains("broke before its answer arrived")
                        || e.contains("HTTP 502")),
                "seed {seed}: an unknown outcome was taken as a failure: {:?}",
                faulty.errors
            );
            if faulty.result == JobResult::Failed {
                eprintln!(
                    "  errors: {:?}",
                    &faulty.errors[..faulty.errors.len().min(3)]
                );
            }
            proxy.set_enabled(false);
            let clean = r.sync().await;
            assert_ne!(clean.result, JobResult::Failed, "{:?}", clean.errors);
            let plan = r.engine.preview(r.service).await.expect("a dry run");
            let s = r.ipam().await;
            let mut keys = std::collections::BTreeSet::new();
            let twice = s
                .subnets
                .iter()
                .filter(|x| !keys.insert((x.address_space.clone(), x.network)))
                .count();
            let ranges: std::collections::BTreeSet<_> =
                s.ranges.iter().map(|x| (x.start, x.end)).collect();
            eprintln!(
                "nautobot seed {seed}: {} requests, faults {:?}; faulty sync {} (+{} ~{} -{}, {} failed); after the clean sync {} spaces, {} subnets, {} ranges, {} planned",
                proxy.requests(),
                proxy.injected(),
                faulty.result.label(),
                faulty.counts.ipam_created,
                faulty.counts.ipam_updated,
                faulty.counts.ipam_deleted,
                faulty.counts.failed,
                s.spaces.len(),
                s.subnets.len(),
                s.ranges.len(),
                plan.ipam_ops.len() + plan.console_changes.len()
            );
            assert_eq!(twice, 0, "seed {seed}: duplicated prefixes");
            assert_eq!(
                ranges.len(),
                s.ranges.len(),
                "seed {seed}: duplicated ranges"
            );
            assert_eq!(
                (s.spaces.len(), s.subnets.len(), s.ranges.len()),
                (2, 4 + EXTRA, 1 + EXTRA),
                "seed {seed}: lost objects"
            );
            assert!(plan.is_noop(), "seed {seed}: {:?}", plan.summary);
            r.done().await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deleting_all_subnets_in_nautobot_deletes_the_logical_network() {
        let nb = nautobot();
        let _serial = SERIAL.lock().await;
        let r = rig(&nb, false).await;
        r.sync().await;
        let s = r.ipam().await;
        let space = s
            .spaces
            .iter()
            .find(|x| x.vmm_id == Some(r.ids.ln))
            .expect("space")
            .id
            .clone();
        for rg in &s.ranges {
            r.operator
                .delete(&format!("/api/ipam/ip-address-ranges/{}/", rg.id))
                .await;
        }
        for sn in s.subnets.iter().filter(|x| x.address_space == space) {
            r.operator
                .delete(&format!("/api/ipam/prefixes/{}/", sn.id))
                .await;
        }
        let job = r.sync().await;
        assert!(
            matches!(
                job.result,
                JobResult::Succeeded | JobResult::CompletedWithWarnings
            ),
            "{job:?}"
        );
        let f = r.store.fabric();
        assert!(!f.logical_networks.contains_key(&r.ids.ln));
        assert!(
            !f.network_sites.contains_key(&r.ids.site) && !f.ip_pools.contains_key(&r.ids.pool)
        );
        assert!(!f.vm_networks.contains_key(&r.ids.vmn));
        let s = r.ipam().await;
        assert!(s.spaces.is_empty() && s.subnets.is_empty(), "{s:?}");
        // The service never wedges on its own earlier work: the namespace it deleted is not
        // asked for again, by a dry run or by the next syncs.
        let plan = r
            .engine
            .preview(r.service)
            .await
            .expect("a dry run after the deletion");
        assert!(plan.is_noop(), "{:?}", plan.summary);
        for _ in 0..2 {
            r.sync_changes_nothing().await;
        }
        r.done().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn clearing_the_vmm_logical_network_orphans_until_the_console_deletes() {
        let nb = nautobot();
        let _serial = SERIAL.lock().await;
        let r = rig(&nb, false).await;
        r.sync().await;
        let s = r.ipam().await;
        let space = s
            .spaces
            .iter()
            .find(|x| x.vmm_id == Some(r.ids.ln))
            .expect("space")
            .id
            .clone();
        r.operator
            .patch(
                &format!("/api/ipam/namespaces/{space}/"),
                json!({"custom_fields": {"vmm_logical_network": null}}),
            )
            .await;
        let before = r.store.fabric();
        let job = r.sync().await;
        assert!(
            job.errors.iter().any(|e| e.contains("orphaned")),
            "{:?}",
            job.errors
        );
        assert_eq!(
            r.engine.status(r.service).expect("status").orphans,
            vec![r.ids.ln]
        );
        assert_eq!(*r.store.fabric(), *before, "nothing deleted in the console");
        assert_eq!(
            r.ipam().await.subnets.len(),
            4,
            "nothing deleted in Nautobot"
        );
        // The administrator deletes the sites, pool, VM network and logical network in the console.
        let f = r.store.fabric();
        let mut changes = vec![
            FabricChange::Delete(ObjectKind::IpPool, r.ids.pool),
            FabricChange::Delete(ObjectKind::VmNetwork, r.ids.vmn),
        ];
        for site in f.sites_of(r.ids.ln) {
            changes.push(FabricChange::Delete(ObjectKind::NetworkSite, site.id));
        }
        changes.push(FabricChange::Delete(ObjectKind::LogicalNetwork, r.ids.ln));
        r.store.apply(&changes).expect("console deletes");
        let job = r.sync().await;
        assert_eq!(job.result, JobResult::Succeeded, "{:?}", job.errors);
        let s = r.ipam().await;
        assert!(
            s.spaces.is_empty() && s.subnets.is_empty() && s.ranges.is_empty(),
            "{s:?}"
        );
        assert!(
            r.engine
                .status(r.service)
                .expect("status")
                .orphans
                .is_empty()
        );
        r.done().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn out_of_scope_host_groups_are_untouched() {
        let nb = nautobot();
        let _serial = SERIAL.lock().await;
        let r = rig(&nb, true).await;
        let job = r.sync().await;
        assert_eq!(job.result, JobResult::Succeeded, "{:?}", job.errors);
        let s = r.ipam().await;
        assert!(!s.subnets.iter().any(|x| x.network == net("10.2.0.0/24")));
        assert!(s.subnets.iter().any(|x| x.network == net("10.1.0.0/24")));
        // Another administrator's subnet for the Dublin site.
        let space = s
            .spaces
            .iter()
            .find(|x| x.vmm_id == Some(r.ids.ln))
            .expect("space")
            .id
            .clone();
        let status = r.operator.active_status().await;
        let made = r
            .operator
            .post(
                "/api/ipam/prefixes/",
                json!({"prefix": "10.2.0.0/24", "namespace": space, "type": "network", "status": status,
                       "custom_fields": {"vmm_id": r.ids.dublin_site.to_string(),
                                         "vmm_network_site": "Somewhere else", "vmm_vlan": 99}}),
            )
            .await;
        let job = r.sync().await;
        assert_eq!(job.counts.total_changes(), 0, "{:?}", job.counts);
        assert_eq!(
            r.store.fabric().network_sites[&r.ids.dublin_site].subnets[0].vlan,
            20
        );
        let (code, still) = r
            .operator
            .get(&format!(
                "/api/ipam/prefixes/{}/",
                made["id"].as_str().expect("id")
            ))
            .await;
        assert_eq!(code, 200);
        assert_eq!(still["custom_fields"]["vmm_vlan"], json!(99));
        r.done().await;
    }
}

mod demo_fabric_sync {
    use super::*;
    use fabric_console::fabric::demo::demo_fabric;
    use fabric_console::fabric::model::*;
    use fabric_console::fabric::secrets::{MemorySecretStore, SecretStore};
    use fabric_console::fabric::store::FabricStore;
    use fabric_console::ipam::registry::ProviderRegistry;
    use fabric_console::sync::engine::{Engine, EngineContext};
    use fabric_console::sync::status::{JobResult, JobTrigger};
    use std::collections::BTreeSet;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_demo_fabric_first_sync_creates_the_right_namespaces_prefixes_and_ranges() {
        let nb = nautobot();
        let _serial = SERIAL.lock().await;
        let operator = Operator::new(&nb);
        operator.cleanup(MARKER).await;
        let tag = suffix();
        let mut fabric = demo_fabric(120, 11);
        for ln in fabric.logical_networks.values_mut() {
            ln.name = format!("{}-{tag}", ln.name);
        }
        for vmn in fabric.vm_networks.values_mut() {
            vmn.name = format!("{}-{tag}", vmn.name);
        }
        let run_as = *fabric
            .run_as_accounts
            .keys()
            .next()
            .expect("demo Run As account");
        let service = NetworkService {
            id: Uuid::new_v4(),
            name: format!("nautobot-{tag}"),
            description: String::new(),
            category: ServiceCategory::NetworkManager,
            manufacturer: "Network to Code".into(),
            model: "Nautobot".into(),
            connection: ConnectionString::parse(&nb.url).expect("connection string"),
            run_as,
            provider: fabric_console::ipam::nautobot::PROVIDER_ID.into(),
            scope: HostGroupScope::All,
            sync_interval_secs: 300,
            tls_fingerprint: None,
            tls_ca_file: None,
            allow_cleartext: false,
            event_source: None,
            sync_on_change: true,
        };
        fabric.network_services.insert(service.id, service.clone());
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FabricStore::open(&dir.path().join("fabric.db")).expect("store");
        store.replace_all(fabric).expect("demo fabric is valid");
        let fabric = store.fabric();
        let secrets: Arc<dyn SecretStore> = Arc::new(MemorySecretStore::default());
        secrets.put(run_as, &nb.token).expect("secret");
        let mut ctx = EngineContext::new(
            store.clone(),
            secrets,
            Arc::new(ProviderRegistry::default_registry()),
            Some(dir.path().join("sync.db")),
        );
        ctx.periodic = false;
        let engine = Engine::start(ctx).expect("engine");

        let job = engine
            .sync_now(service.id, JobTrigger::Refresh)
            .await
            .expect("sync");
        assert_eq!(job.result, JobResult::Succeeded, "{:?}", job.errors);

        let provider = connect(&nb, &nb.token);
        let mut s = full(&provider, &SnapshotScope::All).await;
        s.spaces.retain(|x| x.name.contains(&tag));
        let ids: BTreeSet<IpamId> = s.spaces.iter().map(|x| x.id.clone()).collect();
        s.subnets.retain(|x| ids.contains(&x.address_space));
        let subnet_ids: BTreeSet<IpamId> = s.subnets.iter().map(|x| x.id.clone()).collect();
        s.ranges.retain(|x| subnet_ids.contains(&x.subnet));

        let provider_spaces: BTreeSet<String> = s
            .spaces
            .iter()
            .filter(|x| x.kind == AddressSpaceKind::Provider)
            .map(fabric_console::ipam::nautobot::namespace_name)
            .collect();
        let wanted: BTreeSet<String> = fabric
            .logical_networks
            .values()
            .map(|l| format!("vmm-ln-{}", l.name))
            .collect();
        assert_eq!(provider_spaces, wanted);
        let site_subnets: BTreeSet<String> = fabric
            .network_sites
            .values()
            .flat_map(|site| site.subnets.iter().map(|p| p.subnet.to_string()))
            .collect();
        let provider_ids: BTreeSet<&str> = s
            .spaces
            .iter()
            .filter(|x| x.kind == AddressSpaceKind::Provider)
            .map(|x| x.id.as_str())
            .collect();
        let got_site_subnets: BTreeSet<String> = s
            .subnets
            .iter()
            .filter(|x| provider_ids.contains(x.address_space.as_str()))
            .map(|x| x.network.to_string())
            .collect();
        assert_eq!(got_site_subnets, site_subnets);
        let vm_subnets: BTreeSet<String> = fabric
            .vm_networks
            .values()
            .flat_map(|v| v.vm_subnets.iter().map(|n| n.to_string()))
            .collect();
        let got_vm_subnets: BTreeSet<String> = s
            .subnets
            .iter()
            .filter(|x| !provider_ids.contains(x.address_space.as_str()))
            .map(|x| x.network.to_string())
            .collect();
        assert_eq!(got_vm_subnets, vm_subnets);
        let pools: BTreeSet<(String, String)> = fabric
            .ip_pools
            .values()
            .map(|p| (p.range_start.to_string(), p.range_end.to_string()))
            .collect();
        let got_pools: BTreeSet<(String, String)> = s
            .ranges
            .iter()
            .map(|r| (r.start.to_string(), r.end.to_string()))
            .collect();
        assert_eq!(got_pools, pools);
        assert!(!pools.is_empty() && !site_subnets.is_empty());

        let job = engine
            .sync_now(service.id, JobTrigger::Refresh)
            .await
            .expect("sync");
        assert_eq!(job.result, JobResult::Succeeded, "{:?}", job.errors);
        assert_eq!(job.counts.total_changes(), 0, "{:?}", job.counts);
        operator.cleanup(&tag).await;
    }
}

/// Nautobot behind a company's TLS front (its own certificate authority, or a self-signed
/// certificate): refused until trusted, then reached through the CA file or by pinning.
#[tokio::test]
async fn nautobot_behind_tls_is_trusted_through_a_ca_file_or_a_pinned_certificate() {
    use fabric_console::fabric::model::TlsTrust;
    use fabric_console::ipam::tls::Encryption;
    let nb = nautobot();
    let upstream = nb
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse::<std::net::SocketAddr>()
        .expect("NAUTOBOT_URL is http://IP:PORT");
    let ca = tls_proxy::InternalCa::issue(&["127.0.0.1"]);
    let proxy = tls_proxy::TlsProxy::start(upstream, ca.cert.clone(), ca.key.clone_key()).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("contoso-ca.pem");
    std::fs::write(&ca_file, &ca.ca_pem).unwrap();
    let url = format!("https://{}", proxy.addr());
    let test_with = |trust: TlsTrust| {
        let url = url.clone();
        let token = nb.token.clone();
        async move {
            NautobotProviderFactory::new()
                .connect(ProviderConfig {
                    connection: ConnectionString::parse(&url).unwrap(),
                    credentials: Credentials {
                        user_name: "nautobot-test-account".into(),
                        secret: token,
                    },
                    trust,
                    service_name: "interop over TLS".into(),
                    event_source: None,
                })
                .expect("provider")
                .test()
                .await
        }
    };
    let refused = test_with(TlsTrust::default()).await;
    assert!(!refused.passed(), "an unknown authority is refused");
    assert!(
        refused.tests[0].detail.contains("TLS"),
        "{:?}",
        refused.tests[0]
    );
    let report = test_with(TlsTrust {
        ca_file: Some(ca_file.clone()),
        ..TlsTrust::default()
    })
    .await;
    assert!(report.passed(), "{report:#?}");
    assert_eq!(report.encryption, Some(Encryption::CaFile(ca_file)));
    let fingerprint = fabric_console::ipam_server::tls::fingerprint(&ca.cert);
    let report = test_with(TlsTrust::pinned(Some(fingerprint))).await;
    assert!(report.passed(), "{report:#?}");
    assert_eq!(report.encryption, Some(Encryption::Pinned));
    // Another certificate: the pin refuses it.
    let (other, key) = tls_proxy::InternalCa::self_signed(&["127.0.0.1"]);
    let other_proxy = tls_proxy::TlsProxy::start(upstream, other, key).await;
    let report = NautobotProviderFactory::new()
        .connect(ProviderConfig {
            connection: ConnectionString::parse(&format!("https://{}", other_proxy.addr()))
                .unwrap(),
            credentials: Credentials {
                user_name: "nautobot-test-account".into(),
                secret: nb.token.clone(),
            },
            trust: TlsTrust::pinned(Some(fabric_console::ipam_server::tls::fingerprint(
                &ca.cert,
            ))),
            service_name: "interop over TLS".into(),
            event_source: None,
        })
        .expect("provider")
        .test()
        .await;
    assert!(!report.passed());
    assert!(
        report.tests[0].detail.contains("certificate has changed"),
        "{:?}",
        report.tests[0]
    );
    drop(proxy);
}
