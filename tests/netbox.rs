//! Interop tests against a real NetBox.
//!
//! Start one and export its address and tokens first:
//!   bash scripts/netbox.sh start && eval "$(bash scripts/netbox.sh env)"
//! Every test uses names with a random suffix, so they run repeatedly on a kept database.

#[path = "support/engine.rs"]
mod engine_support;
#[path = "support/fault_proxy.rs"]
mod fault_proxy;

use std::collections::BTreeMap;
use std::sync::Arc;

use fabric_console::fabric::connection::ConnectionString;
use fabric_console::fabric::model::{Gateway, PoolSettings};
use fabric_console::ipam::incremental::FullReads;
use fabric_console::ipam::model::{
    AddressSpace, AddressSpaceKind, IpRange, IpamId, IpamKind, IpamOp, IpamSnapshot, IpamSubnet,
    SnapshotRead, SnapshotScope,
};
use fabric_console::ipam::netbox::NetboxProviderFactory;
use fabric_console::ipam::provider::{
    Credentials, IpamError, IpamProvider, OpOutcome, ProviderConfig, ProviderFactory, TestOutcome,
};
use serde_json::{Value, json};
use uuid::Uuid;

struct Netbox {
    url: String,
    token: String,
    token_v1: String,
    readonly_token: String,
}

fn netbox() -> Netbox {
    let var = |name: &str| match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v,
        _ => panic!(
            "{name} is not set. These tests need a real NetBox: run `bash scripts/netbox.sh start` \
             and then `eval \"$(bash scripts/netbox.sh env)\"` before `cargo test --test netbox`."
        ),
    };
    Netbox {
        url: var("NETBOX_URL"),
        token: var("NETBOX_TOKEN"),
        token_v1: var("NETBOX_TOKEN_V1"),
        readonly_token: var("NETBOX_READONLY_TOKEN"),
    }
}

fn connect(nb: &Netbox, token: &str) -> Arc<dyn IpamProvider> {
    connect_with(NetboxProviderFactory::new(), nb, token)
}

fn connect_with(factory: NetboxProviderFactory, nb: &Netbox, token: &str) -> Arc<dyn IpamProvider> {
    factory
        .connect(ProviderConfig {
            connection: ConnectionString::parse(&nb.url).expect("NETBOX_URL"),
            credentials: Credentials {
                user_name: "netbox-test-account".into(),
                secret: token.to_string(),
            },
            trust: fabric_console::fabric::model::TlsTrust::default(),
            service_name: "interop".into(),
            event_source: None,
        })
        .expect("provider connects")
}

const MARKER: &str = "fctest";

fn suffix() -> String {
    format!("{MARKER}{}", &Uuid::new_v4().simple().to_string()[..10])
}

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// NetBox's REST API used directly, as an operator's script would.
struct Operator {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Operator {
    fn new(nb: &Netbox) -> Self {
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
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Accept", "application/json");
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("NetBox answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let (status, body) = self.call(reqwest::Method::POST, path, Some(body)).await;
        assert_eq!(status, 201, "POST {path}: {body}");
        body
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
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

    /// Removes every range, prefix and VRF whose VRF name contains `tag`.
    async fn cleanup(&self, tag: &str) {
        let (_, vrfs) = self.get("/api/ipam/vrfs/?limit=1000").await;
        for v in vrfs["results"].as_array().cloned().unwrap_or_default() {
            if !v["name"].as_str().unwrap_or("").contains(tag) {
                continue;
            }
            let id = v["id"].as_u64().unwrap_or(0);
            for kind in ["ip-addresses", "ip-ranges", "prefixes"] {
                let (_, list) = self
                    .get(&format!("/api/ipam/{kind}/?vrf_id={id}&limit=1000"))
                    .await;
                let ids: Vec<Value> = list["results"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .filter(|o| o["vrf"]["id"].as_u64() == Some(id))
                    .map(|o| json!({ "id": o["id"] }))
                    .collect();
                if !ids.is_empty() {
                    self.call(
                        reqwest::Method::DELETE,
                        &format!("/api/ipam/{kind}/"),
                        Some(Value::Array(ids)),
                    )
                    .await;
                }
            }
            self.call(
                reqwest::Method::DELETE,
                &format!("/api/ipam/vrfs/{id}/"),
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
            dns_search_suffixes: vec!["corp.example".into()],
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
        other => panic!("not applied: {other:?}"),
    }
}

async fn full(provider: &Arc<dyn IpamProvider>, scope: &SnapshotScope) -> IpamSnapshot {
    match provider.snapshot(scope, None).await.expect("snapshot") {
        SnapshotRead::Full(s) => s,
        SnapshotRead::Changes(_) => panic!("a read without a cursor is full"),
    }
}

#[tokio::test]
async fn test_passes_with_v2_and_v1_tokens() {
    let nb = netbox();
    let _serial = SERIAL.lock().await;
    for token in [&nb.token, &nb.token_v1] {
        let report = connect(&nb, token).test().await;
        assert!(report.passed(), "{:#?}", report.tests);
        assert_eq!(report.server_version.as_deref(), Some("4.7.3"));
        assert!(report.skew_ms.is_some());
    }
}

#[tokio::test]
async fn test_fails_with_a_bad_token_and_with_a_read_only_one_naming_the_fix() {
    let nb = netbox();
    let _serial = SERIAL.lock().await;
    let report = connect(
        &nb,
        "nbt_abcdefabcdef.0123456789012345678901234567890123456789",
    )
    .test()
    .await;
    assert_eq!(report.tests[0].outcome, TestOutcome::Failed);
    assert!(
        report.tests[0].detail.contains("refused the token"),
        "{}",
        report.tests[0].detail
    );
    let report = connect(&nb, &nb.readonly_token).test().await;
    let permissions = report
        .tests
        .iter()
        .find(|t| t.name == "Permissions")
        .expect("a Permissions line");
    assert_eq!(permissions.outcome, TestOutcome::Failed, "{report:#?}");
    assert!(
        permissions.detail.contains("Fix: in NetBox grant"),
        "{}",
        permissions.detail
    );
}

#[tokio::test]
async fn apply_creates_in_one_batch_and_the_snapshot_reads_them_back_equal() {
    let nb = netbox();
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
    // Tenants reuse subnets: the same network in the customer's VRF.
    let mut c1 = subnet(&customer.id, "10.10.0.0/24", "", 0);
    c1.network_site = None;
    c1.network_type = "Customer".into();
    let r1 = range(&s1.id, "10.10.0.10", "10.10.0.99");
    let r2 = range(&s2.id, "2001:db8:10::100", "2001:db8:10::1ff");
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
    let ids: Vec<IpamId> = outcomes.iter().map(applied_id).collect();
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
    assert_eq!(spaces, vec![space.clone(), customer.clone()]);
    let find_subnet = |id: &IpamId| snap.subnets.iter().find(|s| &s.id == id).cloned();
    assert_eq!(find_subnet(&s1.id), Some(s1.clone()));
    assert_eq!(find_subnet(&s2.id), Some(s2.clone()));
    assert_eq!(find_subnet(&c1.id), Some(c1.clone()));
    let find_range = |id: &IpamId| snap.ranges.iter().find(|r| &r.id == id).cloned();
    assert_eq!(find_range(&r1.id), Some(r1.clone()));
    assert_eq!(find_range(&r2.id), Some(r2.clone()));

    // Updates come back too.
    let mut r1b = r1.clone();
    r1b.end = "10.10.0.120".parse().expect("ip");
    r1b.name = "renamed".into();
    let mut s1b = s1.clone();
    s1b.vlan = 11;
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

    // Deletes, children first.
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
    assert!(
        out.iter().all(|o| matches!(o, OpOutcome::Applied { .. })),
        "{out:?}"
    );
    assert!(full(&provider, &scope).await.spaces.is_empty());
    Operator::new(&nb).cleanup(&tag).await;
}

#[tokio::test]
async fn objects_made_by_hand_are_read_but_never_deleted() {
    let nb = netbox();
    let _serial = SERIAL.lock().await;
    let provider = connect(&nb, &nb.token);
    let operator = Operator::new(&nb);
    let tag = suffix();
    let vrf = operator
        .post(
            "/api/ipam/vrfs/",
            json!({ "name": format!("vmm-ln-Hand-{tag}") }),
        )
        .await;
    let vrf_id = vrf["id"].as_u64().unwrap();
    let prefix = operator
        .post(
            "/api/ipam/prefixes/",
            json!({ "prefix": "10.40.0.0/24", "vrf": vrf_id, "status": "active" }),
        )
        .await;
    let snap = full(&provider, &SnapshotScope::All).await;
    let space = snap
        .spaces
        .iter()
        .find(|s| s.id.as_str() == vrf_id.to_string())
        .expect("hand-made VRF read");
    assert_eq!(space.name, format!("Hand-{tag}"));
    assert_eq!(space.vmm_id, None);
    let prefix_id = prefix["id"].as_u64().unwrap().to_string();
    assert!(snap.subnets.iter().any(|s| s.id.as_str() == prefix_id));
    let out = provider
        .apply(&[
            IpamOp::DeleteSubnet(prefix_id.as_str().into()),
            IpamOp::DeleteSpace(vrf_id.to_string().into()),
        ])
        .await
        .expect("apply");
    for o in &out {
        match o {
            OpOutcome::Failed(IpamError::Conflict { detail, .. }) => {
                assert!(detail.contains("not created by Fabric Console"), "{detail}");
            }
            other => panic!("a hand-made object must not be deleted: {other:?}"),
        }
    }
    assert_eq!(
        operator
            .get(&format!("/api/ipam/prefixes/{prefix_id}/"))
            .await
            .0,
        200
    );
    operator.cleanup(&tag).await;
}

// ---------------------------------------------------------------------------------------------
// End to end: the sync engine against NetBox
// ---------------------------------------------------------------------------------------------

mod end_to_end {
    use super::*;
    use fabric_console::fabric::model::*;
    use fabric_console::fabric::secrets::{FileSecretStore, SecretStore};
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
    async fn rig(nb: &Netbox, seattle_only: bool) -> Rig {
        rig_with(nb, seattle_only).await
    }

    async fn rig_with(nb: &Netbox, seattle_only: bool) -> Rig {
        let operator = Operator::new(nb);
        // Leftovers of interrupted runs (of these tests and of the benchmark) would be imported
        // as IPAM-made networks.
        operator.cleanup(MARKER).await;
        operator.cleanup("fcbench").await;
        let (_, vrfs) = operator.get("/api/ipam/vrfs/?limit=1000").await;
        let foreign: Vec<String> = vrfs["results"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|n| n["name"].as_str().map(str::to_string))
            .filter(|n| n.starts_with("vmm-"))
            .collect();
        assert!(
            foreign.is_empty(),
            "the end-to-end tests sync every address space of the server, and this NetBox holds \
             VRFs these tests did not make: {foreign:?}; run them against the test NetBox of \
             scripts/netbox.sh or delete those VRFs"
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
            name: format!("netbox-{tag}"),
            description: String::new(),
            category: ServiceCategory::NetworkManager,
            manufacturer: "NetBox Labs".into(),
            model: "NetBox".into(),
            connection: ConnectionString::parse(&nb.url).expect("connection string"),
            run_as,
            provider: fabric_console::ipam::netbox::PROVIDER_ID.into(),
            scope: if seattle_only {
                HostGroupScope::Selected([ids.seattle].into())
            } else {
                HostGroupScope::All
            },
            sync_interval_secs: 300,
            tls_fingerprint: None,
            tls_ca_file: None,
            allow_cleartext: false,
            event_source: None,
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
                name: "NetBox token".into(),
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
        // In the data folder, where a `fabric-console sync` process started on it finds it.
        let secrets: Arc<dyn SecretStore> = Arc::new(FileSecretStore::new(dir.path()));
        secrets.put(run_as, &nb.token).expect("secret stored");
        let mut ctx = EngineContext::new(
            store.clone(),
            secrets,
            Arc::new(ProviderRegistry::default_registry()),
            Some(dir.path().join("sync.db")),
        );
        ctx.periodic = false;
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

        /// This run's part of NetBox, read by the provider.
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

        /// `n` more subnets of the Seattle site with a pool each, as changes to apply.
        fn more_subnets_with_pools(&self, n: usize) -> Vec<FabricChange> {
            let f = self.store.fabric();
            let mut site = f.network_sites[&self.ids.site].clone();
            let mut changes = Vec::new();
            for k in 0..n {
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
                        site: self.ids.site,
                        subnet,
                    },
                    range_start: ip(&format!("10.50.{k}.10")),
                    range_end: ip(&format!("10.50.{k}.20")),
                    settings: PoolSettings::default(),
                })));
            }
            changes.insert(0, FabricChange::Put(FabricObject::NetworkSite(site)));
            changes
        }

        /// After a clean sync of the fixture with `extra` more subnets and pools: nothing in
        /// NetBox twice, nothing missing, nothing left to do. Returns the counts and the plan's
        /// size.
        async fn assert_whole(&self, extra: usize, what: &str) -> (usize, usize, usize, usize) {
            let plan = self.engine.preview(self.service).await.expect("a dry run");
            let s = self.ipam().await;
            let mut keys = std::collections::BTreeSet::new();
            let twice = s
                .subnets
                .iter()
                .filter(|x| !keys.insert((x.address_space.clone(), x.network)))
                .count();
            let ranges: std::collections::BTreeSet<_> =
                s.ranges.iter().map(|x| (x.start, x.end)).collect();
            assert_eq!(twice, 0, "{what}: duplicated prefixes");
            assert_eq!(ranges.len(), s.ranges.len(), "{what}: duplicated ranges");
            assert_eq!(
                (s.spaces.len(), s.subnets.len(), s.ranges.len()),
                (2, 4 + extra, 1 + extra),
                "{what}: lost objects"
            );
            assert!(plan.is_noop(), "{what}: {:?}", plan.summary);
            (
                s.spaces.len(),
                s.subnets.len(),
                s.ranges.len(),
                plan.ipam_ops.len() + plan.console_changes.len(),
            )
        }

        async fn done(self) {
            engine_support::retire_service(&self.store, &self.engine, self.service).await;
            self.operator.cleanup(&self.tag).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn first_sync_creates_vrfs_prefixes_and_ranges_and_a_second_plans_nothing() {
        let nb = netbox();
        let _serial = SERIAL.lock().await;
        let r = rig(&nb, false).await;
        let job = r.sync().await;
        assert_eq!(job.result, JobResult::Succeeded, "{:?}", job.errors);
        let s = r.ipam().await;
        let mut names: Vec<String> = s
            .spaces
            .iter()
            .map(fabric_console::ipam::netbox::vrf_name)
            .collect();
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
        assert_eq!(sn.vlan, 10);
        assert_eq!(sn.vmm_id, Some(r.ids.site));
        assert_eq!(s.ranges.len(), 1);
        assert_eq!(s.ranges[0].subnet, sn.id);
        assert_eq!(
            (s.ranges[0].start, s.ranges[0].end),
            (ip("10.1.0.10"), ip("10.1.0.200"))
        );
        // As NetBox shows it: the seed's columns as custom fields.
        let (_, prefix) = r
            .operator
            .get(&format!("/api/ipam/prefixes/{}/", sn.id))
            .await;
        assert_eq!(prefix["custom_fields"]["vmm_vlan"], json!(10));
        assert_eq!(
            prefix["custom_fields"]["vmm_server"],
            json!(format!("netbox-{}", r.tag))
        );
        r.sync_changes_nothing().await;
        assert!(
            r.engine
                .preview(r.service)
                .await
                .expect("preview")
                .is_noop()
        );
        r.done().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn netbox_edits_arrive_and_vm_network_edits_are_put_back() {
        let nb = netbox();
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
            .get(&format!("/api/ipam/ip-ranges/{}/", range.id))
            .await;
        let mut pool = found["custom_fields"]["vmm_pool"].clone();
        pool["dns_servers"] = json!(["10.9.9.9"]);
        r.operator
            .patch(
                &format!("/api/ipam/ip-ranges/{}/", range.id),
                json!({"end_address": "10.1.0.150/24", "custom_fields": {"vmm_pool": pool}}),
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
                &format!("/api/ipam/vrfs/{}/", customer.id),
                json!({"custom_fields": {"vmm_vm_network": "Renamed in NetBox"}}),
            )
            .await;
        let job = r.sync().await;
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
        assert_eq!(customer.vm_network.as_deref(), Some(r.vmn_name.as_str()));
        r.sync_changes_nothing().await;
        r.done().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn faults_between_the_console_and_netbox_never_duplicate_or_lose() {
        let nb = netbox();
        let _serial = SERIAL.lock().await;
        let upstream: std::net::SocketAddr = nb
            .url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("NETBOX_URL is http://<ip>:<port>");
        const EXTRA: usize = 40;
        for seed in 0..3u64 {
            let r = rig(&nb, false).await;
            let proxy = fault_proxy::FaultProxy::start(upstream, seed, 25).await;
            // Forty more subnets with a pool each, so that writes meet faults too.
            let f = r.store.fabric();
            let mut changes = r.more_subnets_with_pools(EXTRA);
            let mut service = f.network_services[&r.service].clone();
            service.connection = ConnectionString::parse(&format!("http://{}", proxy.addr()))
                .expect("proxy address");
            changes.push(FabricChange::Put(FabricObject::NetworkService(service)));
            r.store.apply(&changes).expect("valid additions");

            let faulty = r.sync().await;
            if faulty.counts.failed > 0 {
                assert_eq!(faulty.result, JobResult::Failed, "{:?}", faulty.errors);
            }
            assert!(
                !faulty
                    .errors
                    .iter()
                    .any(|e| e.contains("already exists") || e.contains("Duplicate")),
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
            let (spaces, subnets, ranges, planned) =
                r.assert_whole(EXTRA, &format!("seed {seed}")).await;
            eprintln!(
                "netbox seed {seed}: {} requests, faults {:?}; faulty sync {} (+{} ~{} -{}, {} failed); after the clean sync {spaces} spaces, {subnets} subnets, {ranges} ranges, {planned} planned",
                proxy.requests(),
                proxy.injected(),
                faulty.result.label(),
                faulty.counts.ipam_created,
                faulty.counts.ipam_updated,
                faulty.counts.ipam_deleted,
                faulty.counts.failed,
            );
            r.done().await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn granted_addresses_become_ip_addresses_and_hand_made_ones_are_never_granted() {
        use fabric_console::fabric::store::{Consumer, GrantError, GrantRequest};
        let nb = netbox();
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
        let vrf: u64 = ipam
            .subnets
            .iter()
            .find(|s| s.id == range.subnet)
            .expect("the range's prefix")
            .address_space
            .as_str()
            .parse()
            .expect("a NetBox id");
        // An IPAM administrator assigns 10.1.0.13 to a printer by hand.
        let printer = r
            .operator
            .post(
                "/api/ipam/ip-addresses/",
                json!({"address": "10.1.0.13/24", "vrf": vrf, "status": "active",
                       "description": "printer-3"}),
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

        // In NetBox: one IP address per grant in the range's VRF, marked as the console's,
        // beside the printer.
        let addresses = async || -> Vec<(String, String, Option<String>)> {
            let (_, body) = r
                .operator
                .get(&format!("/api/ipam/ip-addresses/?vrf_id={vrf}&limit=1000"))
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
            .get(&format!("/api/ipam/ip-ranges/{}/", range.id))
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

        // A revocation and a new grant reach NetBox; the printer is never touched.
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
            .get(&format!("/api/ipam/ip-addresses/{}/", printer["id"]))
            .await;
        assert_eq!(status, 200);
        r.sync_changes_nothing().await;

        // All revoked and the pool deleted: its addresses go with its range.
        for g in r.store.grants(Some(r.ids.pool)).unwrap() {
            r.store.revoke(g.pool, g.address).unwrap();
        }
        r.store
            .apply(&[FabricChange::Delete(ObjectKind::IpPool, r.ids.pool)])
            .unwrap();
        let job = r.sync().await;
        assert_eq!(job.result, JobResult::Succeeded, "{:?}", job.errors);
        assert_eq!(addresses().await, [s("10.1.0.13/24", "printer-3", None)]);
        r.operator
            .delete(&format!("/api/ipam/ip-addresses/{}/", printer["id"]))
            .await;
        r.done().await;
    }

    /// `fabric-console sync`, as a scheduler runs it, on the rig's data folder.
    fn sync_command(r: &Rig) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_fabric-console"));
        c.arg("--data-dir")
            .arg(r._dir.path())
            .arg("sync")
            .env("FABRIC_CONSOLE_SECRET_BACKEND", "file")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        c
    }

    /// Two `sync` processes on one data folder at once, one of them killed (SIGKILL) at a
    /// different point of its writes each run; then a sync of the console's own engine.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sync_processes_racing_and_killed_mid_write_never_duplicate_or_lose_in_netbox() {
        let nb = netbox();
        let _serial = SERIAL.lock().await;
        const EXTRA: usize = 40;
        for (run, kill_after_ms) in [400u64, 1200, 2400].into_iter().enumerate() {
            let r = rig(&nb, false).await;
            let changes = r.more_subnets_with_pools(EXTRA);
            r.store.apply(&changes).expect("valid additions");
            let started = std::time::Instant::now();
            let mut doomed = sync_command(&r).spawn().expect("sync starts");
            let other = async {
                let out = sync_command(&r).output().await;
                (out, started.elapsed())
            };
            let kill = async {
                tokio::time::sleep(std::time::Duration::from_millis(kill_after_ms)).await;
                let finished = doomed.try_wait().ok().flatten().is_some();
                doomed.kill().await.ok();
                finished
            };
            let ((other, other_took), finished) = tokio::join!(other, kill);
            let other = other.expect("the other sync ran");
            // The survivor either synced or waited for the lease the killed one held; never
            // sent anything twice.
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&other.stdout),
                String::from_utf8_lossy(&other.stderr)
            );
            assert!(
                !text.contains("already exists") && !text.contains("Duplicate"),
                "run {run}: something was sent again: {text}"
            );
            let clean = r.sync().await;
            assert_ne!(clean.result, JobResult::Failed, "{:?}", clean.errors);
            let (spaces, subnets, ranges, _) = r.assert_whole(EXTRA, &format!("run {run}")).await;
            eprintln!(
                "netbox run {run}: one sync killed after {kill_after_ms} ms{}, the other exited {} after {:.1} s; after a clean sync {spaces} spaces, {subnets} subnets, {ranges} ranges, nothing planned",
                if finished { " (it had finished)" } else { "" },
                other.status,
                other_took.as_secs_f64()
            );
            r.done().await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deleting_all_subnets_in_netbox_deletes_the_logical_network_and_the_service_goes_on() {
        let nb = netbox();
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
                .delete(&format!("/api/ipam/ip-ranges/{}/", rg.id))
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
        assert!(!f.vm_networks.contains_key(&r.ids.vmn));
        let s = r.ipam().await;
        assert!(s.spaces.is_empty() && s.subnets.is_empty(), "{s:?}");
        assert!(
            r.engine
                .preview(r.service)
                .await
                .expect("preview")
                .is_noop()
        );
        for _ in 0..2 {
            r.sync_changes_nothing().await;
        }
        r.done().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn clearing_the_vmm_logical_network_orphans_until_the_console_deletes() {
        let nb = netbox();
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
                &format!("/api/ipam/vrfs/{space}/"),
                json!({"custom_fields": {"vmm_logical_network": null}}),
            )
            .await;
        let job = r.sync().await;
        assert_ne!(job.result, JobResult::Failed, "{:?}", job.errors);
        assert!(
            r.store.fabric().logical_networks.contains_key(&r.ids.ln),
            "orphaned, not deleted, until the console deletes it"
        );
        // The console deletes the logical network: its VRF and prefixes go.
        let f = r.store.fabric();
        let mut changes: Vec<FabricChange> = f
            .ip_pools
            .keys()
            .map(|p| FabricChange::Delete(ObjectKind::IpPool, *p))
            .collect();
        changes.push(FabricChange::Delete(ObjectKind::VmNetwork, r.ids.vmn));
        changes.extend(
            f.network_sites
                .keys()
                .map(|s| FabricChange::Delete(ObjectKind::NetworkSite, *s)),
        );
        changes.push(FabricChange::Delete(ObjectKind::LogicalNetwork, r.ids.ln));
        r.store.apply(&changes).expect("deleted in the console");
        let job = r.sync().await;
        assert_ne!(job.result, JobResult::Failed, "{:?}", job.errors);
        let s = r.ipam().await;
        assert!(s.spaces.is_empty(), "{:?}", s.spaces);
        r.sync_changes_nothing().await;
        r.done().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn out_of_scope_host_groups_are_untouched() {
        let nb = netbox();
        let _serial = SERIAL.lock().await;
        let r = rig(&nb, true).await;
        let job = r.sync().await;
        assert_eq!(job.result, JobResult::Succeeded, "{:?}", job.errors);
        let s = r.ipam().await;
        assert!(
            !s.subnets.iter().any(|x| x.network == net("10.2.0.0/24")),
            "Dublin's subnet is out of scope: {:?}",
            s.subnets
        );
        r.sync_changes_nothing().await;
        r.done().await;
    }
}

/// Spaces, subnets and ranges sorted by id, to compare two views of the same server.
#[allow(clippy::type_complexity)]
fn sorted(s: &IpamSnapshot) -> (Vec<AddressSpace>, Vec<IpamSubnet>, Vec<IpRange>) {
    let mut spaces = s.spaces.clone();
    spaces.sort_by(|a, b| a.id.cmp(&b.id));
    let mut subnets = s.subnets.clone();
    subnets.sort_by(|a, b| a.id.cmp(&b.id));
    let mut ranges = s.ranges.clone();
    ranges.sort_by(|a, b| a.id.cmp(&b.id));
    (spaces, subnets, ranges)
}

/// Reads incrementally from `base`'s cursor and checks that the changes, applied to `base`,
/// give what a full read gives now; returns the new base and the changes.
async fn incremental_matches_full(
    provider: &Arc<dyn IpamProvider>,
    scope: &SnapshotScope,
    base: IpamSnapshot,
    step: &str,
) -> (IpamSnapshot, fabric_console::ipam::model::ChangeSet) {
    // NetBox's clock is read to the second: edits must be a second older than the read for the
    // next read (which looks back no further) to leave them out.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let cursor = base.cursor.clone().expect("a cursor");
    let changes = match provider
        .snapshot(scope, Some(&cursor))
        .await
        .expect("incremental read")
    {
        SnapshotRead::Changes(c) => c,
        SnapshotRead::Full(_) => panic!("{step}: a fresh cursor must give an incremental read"),
    };
    let mut merged = base;
    merged.apply_changes(changes.clone());
    merged.cursor = changes.cursor.clone();
    let now = full(provider, scope).await;
    assert_eq!(
        sorted(&merged),
        sorted(&now),
        "{step}: the changes applied to the previous read differ from a full read"
    );
    (merged, changes)
}

#[tokio::test]
async fn incremental_reads_see_rest_edits_moves_and_deletions_as_a_full_read_does() {
    let nb = netbox();
    let _serial = SERIAL.lock().await;
    // No look-back, so each step's read shows only that step's edits (the default looks two
    // minutes back, which would hide a step that reads too little behind the steps before it).
    let provider = connect_with(
        NetboxProviderFactory::with_reads(FullReads {
            overlap: chrono::Duration::zero(),
            every: 1000,
            ..FullReads::default()
        }),
        &nb,
        &nb.token,
    );
    let operator = Operator::new(&nb);
    let tag = suffix();
    let ln = format!("Inc-{tag}");
    let ln_b = format!("IncB-{tag}");
    let ln_new = format!("IncNew-{tag}");
    let space = provider_space(&ln);
    let space_b = provider_space(&ln_b);
    let out = provider
        .apply(&[
            IpamOp::CreateSpace(space.clone()),
            IpamOp::CreateSpace(space_b.clone()),
        ])
        .await
        .expect("apply");
    let space_id = applied_id(&out[0]);
    let space_b_id = applied_id(&out[1]);
    let vrf_a: u64 = space_id.as_str().parse().expect("a NetBox id");
    let kept = subnet(&space_id, "10.31.1.0/24", "Site", 5);
    let doomed = subnet(&space_id, "10.31.2.0/24", "Site", 6);
    // NetBox keeps the global table's prefixes unique: a network of its own for the one that
    // moves there.
    let octet = Uuid::new_v4().as_bytes()[0];
    let mover_net = format!("10.33.{octet}.0/24");
    let mover = subnet(&space_b_id, &mover_net, "Site", 7);
    let out = provider
        .apply(&[
            IpamOp::CreateSubnet(kept.clone()),
            IpamOp::CreateSubnet(doomed.clone()),
            IpamOp::CreateSubnet(mover.clone()),
        ])
        .await
        .expect("apply");
    let kept_id = applied_id(&out[0]);
    let doomed_id = applied_id(&out[1]);
    let mover_id = applied_id(&out[2]);
    let pool = range(&kept_id, "10.31.1.10", "10.31.1.20");
    let moved_pool = range(
        &mover_id,
        &format!("10.33.{octet}.10"),
        &format!("10.33.{octet}.20"),
    );
    let out = provider
        .apply(&[
            IpamOp::CreateRange(pool.clone()),
            IpamOp::CreateRange(moved_pool.clone()),
        ])
        .await
        .expect("apply");
    let pool_id = applied_id(&out[0]);
    let moved_pool_id = applied_id(&out[1]);

    let scope = SnapshotScope::LogicalNetworks([ln.clone(), ln_b.clone(), ln_new.clone()].into());
    let base = full(&provider, &scope).await;

    // Edits, a deletion and a prefix made by hand through the REST API.
    operator
        .patch(
            &format!("/api/ipam/prefixes/{kept_id}/"),
            json!({"description": "renamed in NetBox", "custom_fields": {"vmm_network_site": "Moved"}}),
        )
        .await;
    operator
        .delete(&format!("/api/ipam/prefixes/{doomed_id}/"))
        .await;
    let hand = operator
        .post(
            "/api/ipam/prefixes/",
            json!({"prefix": "10.31.4.0/24", "vrf": vrf_a, "status": "active",
                   "description": "made by hand"}),
        )
        .await;
    let hand_id = hand["id"].as_u64().expect("id").to_string();
    let (base, changes) = incremental_matches_full(&provider, &scope, base, "edits").await;
    let edited = changes
        .subnets
        .iter()
        .find(|s| s.id == kept_id)
        .expect("edited subnet reported");
    assert_eq!(edited.name, "renamed in NetBox");
    assert_eq!(edited.network_site.as_deref(), Some("Moved"));
    let made = changes
        .subnets
        .iter()
        .find(|s| s.id.as_str() == hand_id)
        .expect("hand-made subnet reported");
    assert_eq!(made.vmm_id, None, "not linked to the console yet");
    assert!(
        changes
            .deleted
            .contains(&(IpamKind::Subnet, doomed_id.clone())),
        "{:?}",
        changes.deleted
    );

    // A range edited alone: only it is reported, not what changed elsewhere on the server (a
    // prefix made and deleted in a VRF outside the scope).
    operator
        .patch(
            &format!("/api/ipam/ip-ranges/{pool_id}/"),
            json!({"end_address": "10.31.1.40/24"}),
        )
        .await;
    let elsewhere = operator
        .post(
            "/api/ipam/vrfs/",
            json!({ "name": format!("vmm-ln-Elsewhere-{tag}") }),
        )
        .await;
    let stray = operator
        .post(
            "/api/ipam/prefixes/",
            json!({"prefix": "10.34.0.0/24", "vrf": elsewhere["id"], "status": "active"}),
        )
        .await;
    operator
        .delete(&format!("/api/ipam/prefixes/{}/", stray["id"]))
        .await;
    let (base, changes) = incremental_matches_full(&provider, &scope, base, "range edit").await;
    assert_eq!(changes.ranges.len(), 1, "{:?}", changes.ranges);
    assert_eq!(
        changes.ranges[0].end,
        "10.31.1.40".parse::<std::net::IpAddr>().expect("ip")
    );
    assert!(
        changes.subnets.is_empty() && changes.deleted.is_empty(),
        "{changes:?}"
    );

    // A narrower prefix made by hand takes the pool.
    let child = operator
        .post(
            "/api/ipam/prefixes/",
            json!({"prefix": "10.31.1.0/26", "vrf": vrf_a, "status": "active"}),
        )
        .await;
    let child_id = child["id"].as_u64().expect("id").to_string();
    let (base, _) = incremental_matches_full(&provider, &scope, base, "narrower prefix").await;
    assert_eq!(
        base.ranges
            .iter()
            .find(|r| r.id == pool_id)
            .map(|r| r.subnet.to_string()),
        Some(child_id.clone()),
        "the longest prefix holds the pool"
    );

    // A prefix moves to the global table (out of scope): its pool, untouched, leaves the view.
    operator
        .patch(
            &format!("/api/ipam/prefixes/{mover_id}/"),
            json!({"vrf": null}),
        )
        .await;
    let (base, changes) = incremental_matches_full(&provider, &scope, base, "move out").await;
    assert!(
        changes
            .deleted
            .contains(&(IpamKind::Subnet, mover_id.clone()))
            && changes
                .deleted
                .contains(&(IpamKind::Range, moved_pool_id.clone())),
        "{:?}",
        changes.deleted
    );

    // A VRF made by hand enters the scope with a prefix; the narrower prefix goes and the pool
    // falls back to its subnet.
    let vrf_new = operator
        .post(
            "/api/ipam/vrfs/",
            json!({ "name": format!("vmm-ln-{ln_new}") }),
        )
        .await;
    let vrf_new_id = vrf_new["id"].as_u64().expect("id");
    let p_new = operator
        .post(
            "/api/ipam/prefixes/",
            json!({"prefix": "10.32.0.0/24", "vrf": vrf_new_id, "status": "active"}),
        )
        .await;
    operator
        .delete(&format!("/api/ipam/prefixes/{child_id}/"))
        .await;
    let (base, _) = incremental_matches_full(&provider, &scope, base, "new VRF").await;
    assert!(
        base.spaces
            .iter()
            .any(|s| s.id.as_str() == vrf_new_id.to_string())
    );
    assert_eq!(
        base.ranges
            .iter()
            .find(|r| r.id == pool_id)
            .map(|r| r.subnet.clone()),
        Some(kept_id.clone())
    );

    // The hand-made VRF is deleted with its prefix.
    operator
        .delete(&format!("/api/ipam/prefixes/{}/", p_new["id"]))
        .await;
    operator
        .delete(&format!("/api/ipam/vrfs/{vrf_new_id}/"))
        .await;
    let (base, changes) = incremental_matches_full(&provider, &scope, base, "VRF deleted").await;
    assert!(
        changes
            .deleted
            .contains(&(IpamKind::AddressSpace, vrf_new_id.to_string().into())),
        "{:?}",
        changes.deleted
    );

    // Nothing changed: nothing is reported.
    let (_, changes) = incremental_matches_full(&provider, &scope, base, "no change").await;
    assert!(changes.is_empty(), "{changes:?}");

    operator
        .patch(
            &format!("/api/ipam/prefixes/{mover_id}/"),
            json!({"vrf": space_b_id.as_str().parse::<u64>().expect("id")}),
        )
        .await;
    operator.cleanup(&tag).await;
}
