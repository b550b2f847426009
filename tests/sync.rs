//! The sync core against a real built-in IPAM server on a loopback port.

#[path = "support/backend.rs"]
mod backend;
#[path = "support/engine.rs"]
mod engine;
#[path = "support/tcp_relay.rs"]
mod tcp_relay;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use fabric_console::fabric::connection::ConnectionString;
use fabric_console::fabric::model::*;
use fabric_console::fabric::secrets::{MemorySecretStore, SecretStore};
use fabric_console::fabric::store::FabricStore;
use fabric_console::ipam::builtin::PROVIDER_ID;
use fabric_console::ipam::model::{
    AddressSpaceKind, IpamOp, IpamSnapshot, SnapshotRead, SnapshotScope,
};
use fabric_console::ipam::provider::{Credentials, IpamProvider, ProviderConfig};
use fabric_console::ipam::registry::ProviderRegistry;
use fabric_console::ipam_server::auth::Role;
use fabric_console::ipam_server::{self as server, RunningServer, ServerConfig};
use fabric_console::sync::engine::EngineHandle;
use fabric_console::sync::plan::Resolution;
use fabric_console::sync::status::{EngineCommand, JobResult, JobTrigger};
use ipnet::IpNet;
use serde_json::json;
use uuid::Uuid;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}
fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

struct Rig {
    server: Option<RunningServer>,
    server_dir: tempfile::TempDir,
    console_dir: tempfile::TempDir,
    store: FabricStore,
    secrets: Arc<dyn SecretStore>,
    engine: EngineHandle,
    service: Id,
    token: String,
    ids: Ids,
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

fn fabric(scope_seattle_only: bool) -> (Fabric, Ids, Id) {
    let mut f = Fabric::new();
    let root = f.root_host_group().unwrap().id;
    let ids = Ids {
        seattle: Uuid::new_v4(),
        dublin: Uuid::new_v4(),
        ln: Uuid::new_v4(),
        site: Uuid::new_v4(),
        dublin_site: Uuid::new_v4(),
        pool: Uuid::new_v4(),
        vmn: Uuid::new_v4(),
    };
    f.host_groups.insert(
        ids.seattle,
        HostGroup {
            id: ids.seattle,
            name: "Seattle".into(),
            parent: Some(root),
        },
    );
    f.host_groups.insert(
        ids.dublin,
        HostGroup {
            id: ids.dublin,
            name: "Dublin".into(),
            parent: Some(root),
        },
    );
    f.logical_networks.insert(
        ids.ln,
        LogicalNetwork {
            id: ids.ln,
            name: "Backend".into(),
            description: String::new(),
            isolation: LogicalNetworkIsolation::NetworkVirtualization,
        },
    );
    f.network_sites.insert(
        ids.site,
        NetworkSite {
            id: ids.site,
            name: "Backend_Seattle".into(),
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
        },
    );
    f.network_sites.insert(
        ids.dublin_site,
        NetworkSite {
            id: ids.dublin_site,
            name: "Backend_Dublin".into(),
            logical_network: ids.ln,
            host_groups: vec![ids.dublin],
            subnets: vec![SubnetVlan {
                subnet: net("10.2.0.0/24"),
                vlan: 20,
                secondary_vlan: None,
            }],
        },
    );
    f.ip_pools.insert(
        ids.pool,
        IpPool {
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
        },
    );
    f.vm_networks.insert(
        ids.vmn,
        VmNetwork {
            id: ids.vmn,
            name: "Tenant A".into(),
            description: String::new(),
            logical_network: ids.ln,
            isolation: VmNetworkIsolation::NetworkVirtualization,
            vm_subnets: vec![net("192.168.0.0/24")],
        },
    );
    let run_as = Uuid::new_v4();
    f.run_as_accounts.insert(
        run_as,
        RunAsAccount {
            id: run_as,
            name: "IPAM administrator".into(),
            description: String::new(),
            user_name: "svc-ipam".into(),
        },
    );
    let _ = scope_seattle_only;
    (f, ids, run_as)
}

async fn start_server(dir: &std::path::Path, port: u16) -> RunningServer {
    let mut cfg = ServerConfig::ephemeral();
    cfg.data_dir = Some(dir.to_path_buf());
    cfg.listen.set_port(port);
    // A restarted server may find its port still in TIME_WAIT for a moment.
    for _ in 0..50 {
        match server::start(cfg.clone()).await {
            Ok(s) => return s,
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    server::start(cfg).await.expect("server starts")
}

/// Picks a host group of the fixture for a service's scope.
type ScopePick = fn(&Ids) -> Id;

async fn rig(scope: Option<&[ScopePick]>) -> Rig {
    let server_dir = tempfile::tempdir().unwrap();
    let console_dir = tempfile::tempdir().unwrap();
    let server = start_server(server_dir.path(), 0).await;
    let token = server.issue_token(Role::AsmAdministrator);
    let (f, ids, run_as) = fabric(false);
    let store = backend::store(console_dir.path());
    let mut changes: Vec<FabricChange> = Vec::new();
    let existing_root = store.fabric().root_host_group().unwrap().id;
    let root = f.root_host_group().unwrap().id;
    // Re-parent the fixture onto the store's own root.
    for g in f.host_groups.values().filter(|g| g.parent.is_some()) {
        let mut g = g.clone();
        if g.parent == Some(root) {
            g.parent = Some(existing_root);
        }
        changes.push(FabricChange::Put(FabricObject::HostGroup(g)));
    }
    for x in f.run_as_accounts.values() {
        changes.push(FabricChange::Put(FabricObject::RunAsAccount(x.clone())));
    }
    for x in f.logical_networks.values() {
        changes.push(FabricChange::Put(FabricObject::LogicalNetwork(x.clone())));
    }
    for x in f.network_sites.values() {
        changes.push(FabricChange::Put(FabricObject::NetworkSite(x.clone())));
    }
    for x in f.ip_pools.values() {
        changes.push(FabricChange::Put(FabricObject::IpPool(x.clone())));
    }
    for x in f.vm_networks.values() {
        changes.push(FabricChange::Put(FabricObject::VmNetwork(x.clone())));
    }
    let scope = match scope {
        None => HostGroupScope::All,
        Some(fs) => HostGroupScope::Selected(fs.iter().map(|f| f(&ids)).collect()),
    };
    let service = NetworkService {
        id: Uuid::new_v4(),
        name: "ipam1".into(),
        description: String::new(),
        category: ServiceCategory::NetworkManager,
        manufacturer: "Fabric Console".into(),
        model: "Fabric Console IPAM Server".into(),
        connection: ConnectionString::parse(&server.addr().to_string()).unwrap(),
        run_as,
        provider: PROVIDER_ID.into(),
        scope,
        sync_interval_secs: 300,
        tls_fingerprint: None,
        tls_ca_file: None,
        allow_cleartext: false,
        event_source: None,
        sync_on_change: true,
    };
    changes.push(FabricChange::Put(FabricObject::NetworkService(
        service.clone(),
    )));
    store.apply(&changes).expect("fixture is valid");
    let secrets: Arc<dyn SecretStore> = Arc::new(MemorySecretStore::default());
    secrets.put(run_as, &token).unwrap();
    let engine = start_engine(&store, &secrets, console_dir.path());
    Rig {
        server: Some(server),
        server_dir,
        console_dir,
        store,
        secrets,
        engine,
        service: service.id,
        token,
        ids,
    }
}

fn start_engine(
    store: &FabricStore,
    secrets: &Arc<dyn SecretStore>,
    dir: &std::path::Path,
) -> EngineHandle {
    engine::engine_over(store, secrets, dir)
}

impl Rig {
    fn server(&self) -> &RunningServer {
        self.server.as_ref().unwrap()
    }
    async fn sync(&self) -> fabric_console::sync::status::JobRecord {
        self.engine
            .sync_now(self.service, JobTrigger::Refresh)
            .await
            .expect("sync runs")
    }
    fn provider(&self) -> Arc<dyn IpamProvider> {
        let registry = ProviderRegistry::default_registry();
        registry
            .get(PROVIDER_ID)
            .unwrap()
            .connect(ProviderConfig {
                connection: ConnectionString::parse(&self.server().addr().to_string()).unwrap(),
                credentials: Credentials {
                    user_name: "t".into(),
                    secret: self.token.clone(),
                },
                trust: fabric_console::fabric::model::TlsTrust::default(),
                service_name: "ipam1".into(),
                event_source: None,
            })
            .unwrap()
    }
    async fn ipam(&self) -> IpamSnapshot {
        match self
            .provider()
            .snapshot(&SnapshotScope::All, None)
            .await
            .unwrap()
        {
            SnapshotRead::Full(s) => s,
            SnapshotRead::Changes(_) => panic!("asked for a full snapshot"),
        }
    }
    /// The service reaches its server through a relay the test can take down or slow.
    async fn behind_relay(&self) -> tcp_relay::TcpRelay {
        let relay = tcp_relay::TcpRelay::start(self.server().addr()).await;
        let mut svc = self.store.fabric().network_services[&self.service].clone();
        svc.connection = ConnectionString::parse(&relay.addr().to_string()).unwrap();
        self.store
            .apply(&[FabricChange::Put(FabricObject::NetworkService(svc))])
            .unwrap();
        relay
    }

    /// Grants an address of the fixture's pool (the next free one, or `address`).
    fn grant(
        &self,
        address: Option<&str>,
        holder: &str,
        consumer: fabric_console::fabric::store::Consumer,
    ) -> fabric_console::fabric::store::Grant {
        self.store
            .grant(&fabric_console::fabric::store::GrantRequest {
                pool: self.ids.pool,
                address: address.map(ip),
                holder: holder.into(),
                consumer,
            })
            .expect("granted")
    }

    /// The range of the fixture's pool, as the server holds it.
    async fn pool_range(&self) -> fabric_console::ipam::model::IpRange {
        self.ipam()
            .await
            .ranges
            .into_iter()
            .find(|x| x.vmm_id == Some(self.ids.pool))
            .expect("the pool's range")
    }

    /// An IPAM administrator's edit of the range of the fixture's pool.
    async fn patch_pool_range(&self, body: serde_json::Value) {
        let range = self.pool_range().await;
        self.admin(
            reqwest::Method::PATCH,
            &format!("ranges/{}", range.id),
            Some(body),
        )
        .await;
    }

    /// An IPAM administrator's edit through the server's REST API.
    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<serde_json::Value>) {
        let url = format!("{}/api/v1/{path}", self.server().base_url());
        let mut req = reqwest::Client::new()
            .request(method, &url)
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        assert!(
            status.is_success(),
            "{path}: {status} {}",
            resp.text().await.unwrap_or_default()
        );
    }
}

fn assert_no_duplicates(s: &IpamSnapshot) {
    let mut seen = BTreeSet::new();
    for sp in &s.spaces {
        assert!(
            seen.insert((
                "space",
                sp.vmm_id,
                sp.kind == AddressSpaceKind::Provider,
                None
            )),
            "duplicate space {sp:?}"
        );
    }
    for sn in &s.subnets {
        assert!(
            seen.insert(("subnet", sn.vmm_id, true, Some(sn.network))),
            "duplicate subnet {sn:?}"
        );
    }
    for r in &s.ranges {
        assert!(
            seen.insert(("range", r.vmm_id, true, None)),
            "duplicate range {r:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_sync_pushes_and_a_second_plans_nothing() {
    let r = rig(None).await;
    let job = r.sync().await;
    assert_eq!(job.result, JobResult::Succeeded, "{:?}", job.errors);
    assert_eq!(job.counts.ipam_created, 7, "{:?}", job.counts);
    let s = r.ipam().await;
    assert_eq!(s.spaces.len(), 2);
    assert_eq!(s.subnets.len(), 4);
    assert_eq!(s.ranges.len(), 1);
    let sn = s
        .subnets
        .iter()
        .find(|x| x.network == net("10.1.0.0/24"))
        .unwrap();
    assert_eq!(sn.vmm_logical_network.as_deref(), Some("Backend"));
    assert_eq!(sn.network_site.as_deref(), Some("Backend_Seattle"));
    let requests_before = r.server().request_count();
    let job = r.sync().await;
    assert_eq!(job.result, JobResult::Succeeded);
    assert_eq!(job.counts.total_changes(), 0, "{:?}", job.counts);
    // A no-op refresh reads the change feed and the clock, not every object.
    let used = r.server().request_count() - requests_before;
    assert!(used <= 4, "a no-op refresh made {used} requests");
    let preview = r.engine.preview(r.service).await.unwrap();
    assert!(preview.is_noop());
}

/// A sync with nothing changed on either side reads neither the stored mirror nor the base:
/// its cost does not depend on the size of the fabric. Proven by damaging both rows: the no-op
/// sync never notices, and the next real change still syncs (rebuilding from a full read).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_no_op_sync_reads_neither_the_mirror_nor_the_base() {
    let r = rig(None).await;
    // The first sync writes; the second reads its own writes back from the change feed.
    assert_eq!(r.sync().await.result, JobResult::Succeeded);
    assert_eq!(r.sync().await.result, JobResult::Succeeded);
    let damage = |table: &str| {
        let n = backend::sync_sql(
            r.console_dir.path(),
            &format!("UPDATE {table} SET body = 'not json' WHERE service = ?1"),
            &[r.service.to_string().into()],
        );
        assert!(n > 0, "the {table} rows exist");
    };
    damage("mirror_object");
    damage("base_entry");
    // As another process's write would, so that this engine does not go on with the base and
    // mirror it keeps in memory.
    backend::sync_sql(
        r.console_dir.path(),
        "UPDATE generation SET value = value + 1",
        &[],
    );
    let db = r.engine.sync_db().clone();
    for _ in 0..2 {
        let job = r.sync().await;
        assert_eq!(job.result, JobResult::Succeeded, "{:?}", job.errors);
        assert_eq!(job.counts.total_changes(), 0);
    }
    // The dry run and Preview say the same, reading as little.
    assert!(r.engine.preview(r.service).await.unwrap().is_noop());
    let aside = db.set_aside_rows().unwrap();
    assert!(
        aside.is_empty(),
        "a no-op sync read a stored blob: {aside:?}"
    );
    // A change on the server: now the mirror is needed, found damaged, set aside and rebuilt.
    let s = r.ipam().await;
    let subnet = s
        .subnets
        .iter()
        .find(|x| x.network == net("10.1.0.0/24"))
        .unwrap();
    r.admin(
        reqwest::Method::PATCH,
        &format!("subnets/{}", subnet.id),
        Some(json!({ "vlan": 77 })),
    )
    .await;
    let job = r.sync().await;
    assert_ne!(job.result, JobResult::Failed, "{:?}", job.errors);
    assert!(!db.set_aside_rows().unwrap().is_empty());
    assert_no_duplicates(&r.ipam().await);
}

/// Once both sides agree, a sync plans only the logical networks the edits since touched, and
/// records the base a full sync would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_agreeing_a_sync_plans_only_what_changed_and_records_what_a_full_sync_would() {
    let r = rig(None).await;
    let frontend = Uuid::new_v4();
    r.store
        .apply(&[
            FabricChange::Put(FabricObject::LogicalNetwork(LogicalNetwork {
                id: frontend,
                name: "Frontend".into(),
                description: String::new(),
                isolation: LogicalNetworkIsolation::OneConnected,
            })),
            FabricChange::Put(FabricObject::NetworkSite(NetworkSite {
                id: Uuid::new_v4(),
                name: "Frontend_0".into(),
                logical_network: frontend,
                host_groups: vec![r.ids.seattle],
                subnets: vec![SubnetVlan {
                    subnet: net("10.50.0.0/24"),
                    vlan: 50,
                    secondary_vlan: None,
                }],
            })),
        ])
        .unwrap();
    assert_eq!(r.sync().await.result, JobResult::Succeeded);
    // The second sync reads the first one's writes back from the change feed.
    let second = r.sync().await;
    assert_eq!(second.counts.total_changes(), 0, "{second:?}");

    // One edit on each side, both in "Backend".
    r.patch_pool_range(json!({"dns_servers": ["10.9.9.9"]}))
        .await;
    let mut site = r.store.fabric().network_sites[&r.ids.site].clone();
    site.subnets[0].vlan = 42;
    r.store
        .apply(&[FabricChange::Put(FabricObject::NetworkSite(site))])
        .unwrap();
    // Preview (and `sync --dry-run`) plan the same parts the sync will.
    let preview = r.engine.preview(r.service).await.unwrap();
    assert_eq!(
        (preview.ipam_ops.len(), preview.console_changes.len()),
        (1, 1),
        "{preview:?}"
    );
    let job = r.sync().await;
    assert_eq!(job.result, JobResult::Succeeded, "{:?}", job.errors);
    assert_eq!(job.counts.planned_networks, Some(1), "{job:?}");
    assert_eq!(
        r.store.fabric().ip_pools[&r.ids.pool].settings.dns_servers,
        vec![ip("10.9.9.9")]
    );
    let s = r.ipam().await;
    let subnet = s
        .subnets
        .iter()
        .find(|x| x.network == net("10.1.0.0/24"))
        .unwrap();
    assert_eq!(subnet.vlan, 42);

    // That sync read its own write back: the next one has nothing to read or plan.
    let next = r.sync().await;
    assert_eq!(next.counts.planned_networks, Some(0), "{next:?}");

    // A full plan finds nothing left, and a full sync records the same base.
    assert!(r.engine.preview(r.service).await.unwrap().is_noop());
    let db = r.engine.sync_db().clone();
    let incremental = db.base(r.service).unwrap();
    db.set_settled(r.service, None).unwrap();
    let full = r.sync().await;
    assert_eq!(full.result, JobResult::Succeeded, "{:?}", full.errors);
    assert_eq!(full.counts.planned_networks, None);
    assert_eq!(full.counts.total_changes(), 0, "{full:?}");
    assert_eq!(db.base(r.service).unwrap(), incremental);
    assert_no_duplicates(&r.ipam().await);
}

/// A save made in the console while a sync is sending (another window, another process) is
/// not taken as agreed: the sync agrees on the value it sent, and the next sync sends the new
/// save, with no false conflict between the two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_made_while_a_sync_sends_is_sent_by_the_next_without_a_conflict() {
    let r = rig(None).await;
    let relay = r.behind_relay().await;
    assert_eq!(r.sync().await.result, JobResult::Succeeded);
    let save_suffix = |suffix: &str| {
        let mut pool = r.store.fabric().ip_pools[&r.ids.pool].clone();
        pool.settings.dns_suffix = suffix.into();
        r.store
            .apply(&[FabricChange::Put(FabricObject::IpPool(pool))])
            .unwrap();
    };
    save_suffix("first.contoso.com");
    relay.hold_writes();
    let engine = r.engine.clone();
    let service = r.service;
    let sync = tokio::spawn(async move { engine.sync_now(service, JobTrigger::Refresh).await });
    relay.write_held().await;
    save_suffix("second.contoso.com");
    relay.release();
    let job = sync.await.unwrap().expect("a job");
    assert_eq!(job.result, JobResult::Succeeded, "{:?}", job.errors);
    assert_eq!(job.counts.ipam_updated, 1, "{job:?}");

    let job = r.sync().await;
    assert_eq!(job.result, JobResult::Succeeded, "{:?}", job.errors);
    assert_eq!(
        (job.counts.conflicts, job.counts.ipam_updated),
        (0, 1),
        "{job:?}"
    );
    let range = r.pool_range().await;
    assert_eq!(range.settings.dns_suffix, "second.contoso.com");
    assert_eq!(
        r.store.fabric().ip_pools[&r.ids.pool].settings.dns_suffix,
        "second.contoso.com"
    );
    let job = r.sync().await;
    assert_eq!(job.counts.total_changes(), 0, "{job:?}");
}

/// The wait on the change feed is lost (the network drops, the server restarts): the service
/// says it polls, waits again from its cursor once the server answers, and the edit made
/// meanwhile arrives, long before the 5-minute interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_made_while_the_change_feed_cannot_be_reached_arrives_once_it_can() {
    use fabric_console::sync::status::Updates;
    let r = rig(None).await;
    let relay = r.behind_relay().await;
    assert_eq!(r.sync().await.result, JobResult::Succeeded);
    let live = engine::live_engine_over(&r.store, &r.secrets, r.console_dir.path());
    engine::wait_live(&live, r.service, std::time::Duration::from_secs(15)).await;
    let polling = async || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !matches!(
            live.status(r.service).map(|s| s.updates),
            Some(Updates::Polling(_))
        ) {
            assert!(
                std::time::Instant::now() < deadline,
                "{:?}",
                live.status(r.service)
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };

    // A sync fails while the server cannot be reached; once it answers, a sync catches up
    // at once, not at the interval.
    relay.down();
    polling().await;
    let failed = live
        .sync_now(r.service, JobTrigger::Refresh)
        .await
        .expect("a job");
    assert_eq!(failed.result, JobResult::Failed);
    relay.up().await;
    let t = std::time::Instant::now();
    while live.status(r.service).and_then(|s| s.last_result) != Some(JobResult::Succeeded) {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(30),
            "{:?}",
            live.status(r.service)
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let caught_up = live
        .jobs()
        .into_iter()
        .find(|j| j.result == JobResult::Succeeded)
        .unwrap();
    assert_eq!(
        caught_up.trigger,
        JobTrigger::ServerChange,
        "started when the server answered, not by the retry timer: {:?}",
        live.jobs()
    );
    engine::wait_live(&live, r.service, std::time::Duration::from_secs(15)).await;
    let phase_two = chrono::Utc::now();

    relay.down();
    polling().await;
    // Edited on the server itself, which the console cannot reach now.
    r.patch_pool_range(json!({"dns_servers": ["10.8.8.8"]}))
        .await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(
        r.store.fabric().ip_pools[&r.ids.pool].settings.dns_servers,
        vec![ip("10.0.0.53")]
    );
    relay.up().await;
    let t = std::time::Instant::now();
    while r.store.fabric().ip_pools[&r.ids.pool].settings.dns_servers != vec![ip("10.8.8.8")] {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(30),
            "not applied {:?} after the server answered again: {:?}",
            t.elapsed(),
            live.status(r.service)
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    engine::wait_live(&live, r.service, std::time::Duration::from_secs(15)).await;
    assert!(
        live.jobs()
            .iter()
            .filter(|j| j.started > phase_two)
            .all(|j| j.trigger == JobTrigger::ServerChange),
        "{:?}",
        live.jobs()
    );
}

/// With periodic syncs on (as in the console and `sync --follow`), an edit on the server reaches
/// the console within moments, without anyone asking for a sync, and the service says it is live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ipam_edit_reaches_the_console_within_moments() {
    use fabric_console::sync::status::Updates;
    let r = rig(None).await;
    assert_eq!(r.sync().await.result, JobResult::Succeeded);
    r.sync().await;
    let live = engine::live_engine_over(&r.store, &r.secrets, r.console_dir.path());
    engine::wait_live(&live, r.service, std::time::Duration::from_secs(15)).await;
    let t = std::time::Instant::now();
    r.patch_pool_range(json!({"dns_servers": ["10.7.7.7"]}))
        .await;
    while r.store.fabric().ip_pools[&r.ids.pool].settings.dns_servers != vec![ip("10.7.7.7")] {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "not applied after {:?}",
            t.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The job the change started, once it is recorded as finished.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let job = loop {
        let found = live
            .jobs()
            .into_iter()
            .find(|j| j.trigger == JobTrigger::ServerChange && j.finished.is_some());
        if let Some(j) = found {
            break j;
        }
        assert!(std::time::Instant::now() < deadline, "{:?}", live.jobs());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(job.counts.console_updated, 1, "{job:?}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        if let Some(Updates::Live {
            last_latency_ms: Some(ms),
            ..
        }) = live.status(r.service).map(|s| s.updates)
        {
            assert!(ms < 10_000);
            break;
        }
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // A change saved in the console reaches the server the same way.
    let mut pool = r.store.fabric().ip_pools[&r.ids.pool].clone();
    pool.settings.dns_suffix = "pushed.contoso.com".into();
    let t = std::time::Instant::now();
    r.store
        .apply(&[FabricChange::Put(FabricObject::IpPool(pool))])
        .unwrap();
    loop {
        let s = r.ipam().await;
        let range = s
            .ranges
            .iter()
            .find(|x| x.vmm_id == Some(r.ids.pool))
            .unwrap();
        if range.settings.dns_suffix == "pushed.contoso.com" {
            break;
        }
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "not sent after {:?}",
            t.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        live.jobs()
            .iter()
            .any(|j| j.trigger == JobTrigger::ConsoleChange),
        "{:?}",
        live.jobs()
    );
    // The sync read its own write back: the server's report of it starts no other sync.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let jobs = live.jobs();
    let pushed = jobs
        .iter()
        .position(|j| j.trigger == JobTrigger::ConsoleChange)
        .unwrap();
    assert!(
        jobs[..pushed]
            .iter()
            .all(|j| j.trigger != JobTrigger::ServerChange),
        "{jobs:?}"
    );
    assert_no_duplicates(&r.ipam().await);
}

/// A save outside a service's host groups does not start a sync of it; one inside does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_saves_start_syncs_only_of_the_services_they_concern() {
    let r = rig(Some(&[|ids: &Ids| ids.seattle])).await;
    assert_eq!(r.sync().await.result, JobResult::Succeeded);
    r.sync().await;
    let live = engine::live_engine_over(&r.store, &r.secrets, r.console_dir.path());
    engine::wait_live(&live, r.service, std::time::Duration::from_secs(15)).await;
    // A sync by this engine, so that it knows what both sides agreed on.
    live.sync_now(r.service, JobTrigger::Refresh).await.unwrap();
    let pushed = || {
        live.jobs()
            .iter()
            .filter(|j| j.trigger == JobTrigger::ConsoleChange)
            .count()
    };
    let mut dublin = r.store.fabric().network_sites[&r.ids.dublin_site].clone();
    dublin.name = "Backend_Dublin renamed".into();
    r.store
        .apply(&[FabricChange::Put(FabricObject::NetworkSite(dublin))])
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2000)).await;
    assert_eq!(pushed(), 0, "{:?}", live.jobs());

    let mut pool = r.store.fabric().ip_pools[&r.ids.pool].clone();
    pool.settings.dns_suffix = "seattle.contoso.com".into();
    r.store
        .apply(&[FabricChange::Put(FabricObject::IpPool(pool))])
        .unwrap();
    let t = std::time::Instant::now();
    while pushed() == 0 {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            live.jobs()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipam_edits_arrive_and_vm_network_edits_are_put_back() {
    let r = rig(None).await;
    r.sync().await;
    let s = r.ipam().await;
    let range = s
        .ranges
        .iter()
        .find(|x| x.vmm_id == Some(r.ids.pool))
        .unwrap();
    r.admin(
        reqwest::Method::PATCH,
        &format!("ranges/{}", range.id),
        Some(json!({"dns_servers": ["10.9.9.9"], "end": "10.1.0.150"})),
    )
    .await;
    let cust = s
        .spaces
        .iter()
        .find(|x| x.vmm_id == Some(r.ids.vmn))
        .unwrap();
    r.admin(
        reqwest::Method::PATCH,
        &format!("address-spaces/{}", cust.id),
        Some(json!({"vm_network": "Renamed in IPAM"})),
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
    assert_eq!(f.vm_networks[&r.ids.vmn].name, "Tenant A");
    let s = r.ipam().await;
    assert_eq!(
        s.spaces
            .iter()
            .find(|x| x.vmm_id == Some(r.ids.vmn))
            .unwrap()
            .vm_network
            .as_deref(),
        Some("Tenant A")
    );
    let job = r.sync().await;
    assert_eq!(job.counts.total_changes(), 0, "{:?}", job);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_all_subnets_in_ipam_deletes_the_logical_network() {
    let r = rig(None).await;
    r.sync().await;
    let s = r.ipam().await;
    let space = s
        .spaces
        .iter()
        .find(|x| x.vmm_id == Some(r.ids.ln))
        .unwrap()
        .id
        .clone();
    for rg in &s.ranges {
        r.admin(reqwest::Method::DELETE, &format!("ranges/{}", rg.id), None)
            .await;
    }
    for sn in s.subnets.iter().filter(|x| x.address_space == space) {
        r.admin(reqwest::Method::DELETE, &format!("subnets/{}", sn.id), None)
            .await;
    }
    let job = r.sync().await;
    assert!(
        matches!(
            job.result,
            JobResult::Succeeded | JobResult::CompletedWithWarnings
        ),
        "{:?}",
        job
    );
    let f = r.store.fabric();
    assert!(!f.logical_networks.contains_key(&r.ids.ln));
    assert!(f.network_sites.is_empty() && f.ip_pools.is_empty() && f.vm_networks.is_empty());
    let s = r.ipam().await;
    assert!(s.spaces.is_empty() && s.subnets.is_empty(), "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_vmm_logical_network_name_orphans_until_the_console_deletes() {
    let r = rig(None).await;
    r.sync().await;
    let s = r.ipam().await;
    let space = s
        .spaces
        .iter()
        .find(|x| x.vmm_id == Some(r.ids.ln))
        .unwrap()
        .id
        .clone();
    r.admin(
        reqwest::Method::PATCH,
        &format!("address-spaces/{space}"),
        Some(json!({"vmm_logical_network": null})),
    )
    .await;
    let before = r.store.fabric();
    let job = r.sync().await;
    assert!(
        job.errors.iter().any(|e| e.contains("orphaned")),
        "{:?}",
        job.errors
    );
    assert_eq!(r.engine.status(r.service).unwrap().orphans, vec![r.ids.ln]);
    assert_eq!(*r.store.fabric(), *before, "nothing deleted in the console");
    let after = r.ipam().await;
    assert_eq!(
        after.subnets.len(),
        4,
        "nothing deleted in IPAM: {job:?} {after:?}"
    );
    // The administrator deletes the sites, pools, VM network and the logical network.
    let f = r.store.fabric();
    let mut changes = vec![
        FabricChange::Delete(ObjectKind::IpPool, r.ids.pool),
        FabricChange::Delete(ObjectKind::VmNetwork, r.ids.vmn),
    ];
    for s in f.sites_of(r.ids.ln) {
        changes.push(FabricChange::Delete(ObjectKind::NetworkSite, s.id));
    }
    changes.push(FabricChange::Delete(ObjectKind::LogicalNetwork, r.ids.ln));
    r.store.apply(&changes).unwrap();
    let job = r.sync().await;
    assert_eq!(job.result, JobResult::Succeeded, "{:?}", job.errors);
    let s = r.ipam().await;
    assert!(
        s.spaces.is_empty() && s.subnets.is_empty() && s.ranges.is_empty(),
        "{s:?}"
    );
    assert!(r.engine.status(r.service).unwrap().orphans.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_scope_host_groups_are_untouched() {
    let r = rig(Some(&[|ids: &Ids| ids.seattle])).await;
    let job = r.sync().await;
    assert_eq!(job.result, JobResult::Succeeded, "{:?}", job.errors);
    let s = r.ipam().await;
    assert!(!s.subnets.iter().any(|x| x.network == net("10.2.0.0/24")));
    assert!(s.subnets.iter().any(|x| x.network == net("10.1.0.0/24")));
    // Another administrator's subnet for the Dublin site: read neither into the plan nor deleted.
    let space = s
        .spaces
        .iter()
        .find(|x| x.vmm_id == Some(r.ids.ln))
        .unwrap()
        .id
        .clone();
    r.admin(
        reqwest::Method::POST,
        "subnets",
        Some(json!({
            "address_space": space, "network": "10.2.0.0/24", "vmm_id": r.ids.dublin_site,
            "network_site": "Somewhere else", "vlan": 99
        })),
    )
    .await;
    let job = r.sync().await;
    assert_eq!(job.counts.total_changes(), 0, "{:?}", job.counts);
    assert_eq!(
        r.store.fabric().network_sites[&r.ids.dublin_site].subnets[0].vlan,
        20
    );
    assert!(
        r.ipam()
            .await
            .subnets
            .iter()
            .any(|x| x.network == net("10.2.0.0/24") && x.vlan == 99)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_is_reported_and_resolved_either_way() {
    for (resolution, want) in [
        (Resolution::KeepConsole, "console.contoso.com"),
        (Resolution::TakeIpam, "ipam.contoso.com"),
    ] {
        let r = rig(None).await;
        r.sync().await;
        let mut pool = r.store.fabric().ip_pools[&r.ids.pool].clone();
        pool.settings.dns_suffix = "console.contoso.com".into();
        r.store
            .apply(&[FabricChange::Put(FabricObject::IpPool(pool))])
            .unwrap();
        let range = r.pool_range().await;
        r.admin(
            reqwest::Method::PATCH,
            &format!("ranges/{}", range.id),
            Some(json!({"dns_suffix": "ipam.contoso.com"})),
        )
        .await;
        let job = r.sync().await;
        assert_eq!(job.counts.conflicts, 1, "{job:?}");
        let status = r.engine.status(r.service).unwrap();
        assert_eq!(status.conflicts.len(), 1);
        let c = status.conflicts[0].clone();
        assert_eq!(c.field, "DNS suffix");
        r.engine.send(EngineCommand::ResolveConflict {
            service: r.service,
            conflict: c.key.to_string(),
            resolution,
        });
        let job = r.sync().await;
        assert_eq!(job.result, JobResult::Succeeded, "{:?}", job.errors);
        assert_eq!(
            r.store.fabric().ip_pools[&r.ids.pool].settings.dns_suffix,
            want
        );
        let range = r.pool_range().await;
        assert_eq!(range.settings.dns_suffix, want);
        assert_eq!(r.sync().await.counts.total_changes(), 0);
    }
}

/// Add many pools so an apply takes long enough to be interrupted.
fn bulk_changes(f: &Fabric, ids: &Ids, n: usize) -> Vec<FabricChange> {
    let mut site = f.network_sites[&ids.site].clone();
    let mut out = Vec::new();
    for k in 0..n {
        let subnet: IpNet = format!("10.{}.{}.0/24", 100 + k / 256, k % 256)
            .parse()
            .unwrap();
        site.subnets.push(SubnetVlan {
            subnet,
            vlan: 100,
            secondary_vlan: None,
        });
        let h = subnet.hosts().collect::<Vec<_>>();
        let id = Uuid::new_v4();
        out.push(FabricChange::Put(FabricObject::IpPool(IpPool {
            id,
            name: format!("Pool {k}"),
            description: String::new(),
            scope: PoolScope::Site {
                site: ids.site,
                subnet,
            },
            range_start: h[9],
            range_end: h[99],
            settings: PoolSettings {
                reserved: BTreeSet::new(),
                vips: BTreeSet::new(),
                gateways: vec![Gateway::Automatic { address: h[0] }],
                dns_servers: vec![],
                dns_suffix: String::new(),
                dns_search_suffixes: vec![],
                wins_servers: vec![],
                netbios_enabled: false,
            },
        })));
    }
    out.insert(0, FabricChange::Put(FabricObject::NetworkSite(site)));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_mid_apply_then_restarted_leaves_no_duplicates() {
    let mut r = rig(None).await;
    r.store
        .apply(&bulk_changes(&r.store.fabric(), &r.ids, 600))
        .unwrap();
    let port = r.server().addr().port();
    let mut events = r.engine.subscribe();
    let engine = r.engine.clone();
    let service = r.service;
    let sync = tokio::spawn(async move { engine.sync_now(service, JobTrigger::Refresh).await });
    // Kill the server as soon as the first batch has gone through.
    loop {
        match events.recv().await {
            Ok(fabric_console::sync::status::EngineEvent::Progress {
                stage: fabric_console::sync::status::SyncStage::ApplyingIpam,
                done,
                ..
            }) if done > 0 => break,
            Ok(_) => {}
            Err(e) => panic!("event stream ended: {e}"),
        }
    }
    r.server.take().unwrap().shutdown().await;
    let job = sync.await.unwrap().unwrap();
    assert_ne!(
        job.result,
        JobResult::Succeeded,
        "the sync cannot have finished cleanly"
    );
    r.server = Some(start_server(r.server_dir.path(), port).await);
    let job = r.sync().await;
    assert_eq!(job.result, JobResult::Succeeded, "{:?}", job.errors);
    let s = r.ipam().await;
    assert_no_duplicates(&s);
    assert_eq!(s.ranges.len(), 601);
    assert_eq!(s.subnets.len(), 604);
    assert_eq!(r.sync().await.counts.total_changes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_stopped_between_journal_and_confirmation_is_recovered() {
    let r = rig(None).await;
    // What a first sync would send, journalled, and half of it really sent: then the console
    // "stops" (the engine is dropped) before confirming anything.
    let plan = r.engine.preview(r.service).await.unwrap();
    assert!(!plan.ipam_ops.is_empty());
    let db = r.engine.sync_db().clone();
    let job = Uuid::new_v4();
    db.record_sent(r.service, job, &plan.ipam_ops).unwrap();
    let sent: Vec<IpamOp> = plan
        .ipam_ops
        .iter()
        .take(plan.ipam_ops.len() / 2)
        .cloned()
        .collect();
    r.provider().apply(&sent).await.unwrap();
    drop(r.engine.clone());
    let engine = start_engine(&r.store, &r.secrets, r.console_dir.path());
    let job = engine
        .sync_now(r.service, JobTrigger::Refresh)
        .await
        .unwrap();
    assert_eq!(job.result, JobResult::Succeeded, "{:?}", job.errors);
    assert!(db.unconfirmed(r.service).unwrap().is_empty());
    let s = r.ipam().await;
    assert_no_duplicates(&s);
    assert_eq!(s.spaces.len(), 2);
    assert_eq!(s.subnets.len(), 4);
    assert_eq!(s.ranges.len(), 1);
    let counts: BTreeMap<String, i64> = db.journal_counts(r.service).unwrap().into_iter().collect();
    assert!(
        counts.get("confirmed").copied().unwrap_or(0) >= sent.len() as i64,
        "{counts:?}"
    );
    assert_eq!(
        engine
            .sync_now(r.service, JobTrigger::Refresh)
            .await
            .unwrap()
            .counts
            .total_changes(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn side_by_side_rows_show_in_sync_differs_conflict_and_out_of_scope() {
    use fabric_console::sync::compare::{RowKind, RowStatus};
    let r = rig(Some(&[|ids: &Ids| ids.seattle])).await;
    // A pool on the VM network's VM subnet: console → IPAM only, shown under its VM network.
    let vm_pool = Uuid::new_v4();
    r.store
        .apply(&[FabricChange::Put(FabricObject::IpPool(IpPool {
            id: vm_pool,
            name: "Tenant A pool".into(),
            description: String::new(),
            scope: PoolScope::VmSubnet {
                vm_network: r.ids.vmn,
                subnet: net("192.168.0.0/24"),
            },
            range_start: ip("192.168.0.10"),
            range_end: ip("192.168.0.99"),
            settings: PoolSettings {
                reserved: BTreeSet::new(),
                vips: BTreeSet::new(),
                gateways: vec![],
                dns_servers: vec![],
                dns_suffix: String::new(),
                dns_search_suffixes: vec![],
                wins_servers: vec![],
                netbios_enabled: false,
            },
        }))])
        .unwrap();
    let (view, plan) = r.engine.compare(r.service).await.unwrap();
    assert!(view.rows.iter().any(|x| x.kind == RowKind::VmPool
        && x.object == vm_pool
        && x.status == RowStatus::OnlyInConsole));
    assert!(!plan.is_noop());
    assert!(
        view.rows
            .iter()
            .any(|x| x.kind == RowKind::Pool && x.status == RowStatus::OnlyInConsole)
    );
    assert!(view.rows.iter().any(|x| x.kind == RowKind::NetworkSite
        && x.status == RowStatus::OutOfScope
        && x.object == r.ids.dublin_site));
    r.sync().await;
    let s = r.ipam().await;
    let sn = s
        .subnets
        .iter()
        .find(|x| x.network == net("10.1.1.0/24"))
        .unwrap();
    r.admin(
        reqwest::Method::PATCH,
        &format!("subnets/{}", sn.id),
        Some(json!({"vlan": 111})),
    )
    .await;
    let range = s
        .ranges
        .iter()
        .find(|x| x.vmm_id == Some(r.ids.pool))
        .unwrap();
    r.admin(
        reqwest::Method::PATCH,
        &format!("ranges/{}", range.id),
        Some(json!({"dns_suffix": "ipam.contoso.com"})),
    )
    .await;
    let mut pool = r.store.fabric().ip_pools[&r.ids.pool].clone();
    pool.settings.dns_suffix = "console.contoso.com".into();
    r.store
        .apply(&[FabricChange::Put(FabricObject::IpPool(pool))])
        .unwrap();
    let (view, plan) = r.engine.compare(r.service).await.unwrap();
    let subnet = view
        .rows
        .iter()
        .find(|x| {
            x.kind == RowKind::Subnet
                && x.console.as_ref().is_some_and(|c| c.title == "10.1.1.0/24")
        })
        .unwrap();
    assert_eq!(subnet.status, RowStatus::Differs);
    assert_eq!(subnet.changed, vec!["VLAN".to_string()]);
    let pool_row = view
        .rows
        .iter()
        .find(|x| x.kind == RowKind::Pool && x.object == r.ids.pool)
        .unwrap();
    assert_eq!(pool_row.status, RowStatus::Conflict);
    assert_eq!(pool_row.conflicts.len(), 1);
    assert!(
        view.rows
            .iter()
            .any(|x| x.status == RowStatus::InSync && x.kind == RowKind::LogicalNetwork)
    );
    assert!(view.rows.iter().any(|x| x.kind == RowKind::VmPool
        && x.object == vm_pool
        && x.status == RowStatus::InSync));
    assert!(
        r.ipam()
            .await
            .ranges
            .iter()
            .any(|x| x.vmm_id == Some(vm_pool))
    );
    assert_eq!(plan.conflicts.len(), 1);
    let filtered = view.filter(&[RowStatus::Conflict].into_iter().collect(), "");
    assert_eq!(filtered.len(), 1);
    assert!(!view.filter(&BTreeSet::new(), "10.1.1").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ipam_range_edit_that_would_strand_a_grant_waits_until_it_is_revoked() {
    use fabric_console::fabric::store::Consumer;
    let r = rig(None).await;
    r.sync().await;
    let grant = r.grant(Some("10.1.0.180"), "vm-9/eth0", Consumer::VmAdapter);
    // An IPAM administrator shrinks the range past the granted address.
    r.patch_pool_range(json!({"end": "10.1.0.150", "dns_servers": ["10.9.9.9"]}))
        .await;
    let job = r.sync().await;
    assert!(
        job.errors
            .iter()
            .any(|e| e.contains("10.1.0.180 (vm-9/eth0)")),
        "the job names the stranded grant: {:?}",
        job.errors
    );
    let f = r.store.fabric();
    assert_eq!(
        f.ip_pools[&r.ids.pool].range_end,
        ip("10.1.0.200"),
        "the console keeps the range that holds the grant"
    );
    assert_eq!(
        r.pool_range().await.end,
        ip("10.1.0.150"),
        "the IPAM edit is not undone"
    );
    // Once the address is revoked, the edit arrives.
    r.store.revoke(r.ids.pool, grant.address).unwrap();
    let job = r.sync().await;
    let f = r.store.fabric();
    assert_eq!(
        f.ip_pools[&r.ids.pool].range_end,
        ip("10.1.0.150"),
        "{job:?}"
    );
    assert_eq!(
        f.ip_pools[&r.ids.pool].settings.dns_servers,
        vec![ip("10.9.9.9")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_deleted_in_ipam_keeps_its_pool_while_addresses_are_granted() {
    use fabric_console::fabric::store::Consumer;
    let r = rig(None).await;
    r.sync().await;
    let grant = r.grant(None, "db-01/eth0", Consumer::VmAdapter);
    let range = r.pool_range().await;
    r.admin(
        reqwest::Method::DELETE,
        &format!("ranges/{}", range.id),
        None,
    )
    .await;
    let job = r.sync().await;
    assert!(
        job.errors
            .iter()
            .any(|e| e.contains("1 address is granted from this pool")),
        "the job says why the pool stays: {:?}",
        job.errors
    );
    assert!(r.store.fabric().ip_pools.contains_key(&r.ids.pool));
    r.store.revoke(r.ids.pool, grant.address).unwrap();
    let job = r.sync().await;
    assert!(
        !r.store.fabric().ip_pools.contains_key(&r.ids.pool),
        "once revoked, the deletion arrives: {job:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn granted_addresses_reach_the_range_on_the_built_in_server() {
    use fabric_console::fabric::store::Consumer;
    let r = rig(None).await;
    r.sync().await;
    let usage = async |r: &Rig| -> serde_json::Value {
        let range = r.pool_range().await;
        let url = format!("{}/api/v1/ranges/{}/usage", r.server().base_url(), range.id);
        let resp = reqwest::Client::new()
            .get(&url)
            .bearer_auth(&r.token)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
        resp.json().await.unwrap()
    };
    let first = r.grant(None, "web-01/eth0", Consumer::VmAdapter);
    r.grant(Some("10.1.0.77"), "db-01/eth0", Consumer::Host);
    let job = r.sync().await;
    assert!(job.errors.is_empty(), "{:?}", job.errors);
    let u = usage(&r).await;
    assert_eq!(u["granted"], 2, "{u}");
    assert_eq!(u["source"], "VMM");
    let addresses: Vec<&str> = u["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["address"].as_str().unwrap())
        .collect();
    assert_eq!(addresses, [first.address.to_string().as_str(), "10.1.0.77"]);
    let n = |k: &str| u[k].as_u64().unwrap();
    assert_eq!(
        n("free") + n("granted") + n("reserved") + n("vips"),
        n("total"),
        "{u}"
    );
    // A revocation reaches it with the next sync.
    r.store.revoke(r.ids.pool, ip("10.1.0.77")).unwrap();
    r.sync().await;
    let u = usage(&r).await;
    assert_eq!(u["granted"], 1, "{u}");
    assert_eq!(u["addresses"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_side_by_side_view_shows_utilization_on_both_sides_and_differs_when_they_disagree() {
    use fabric_console::fabric::store::Consumer;
    use fabric_console::sync::compare::{RowKind, RowStatus};
    let r = rig(None).await;
    r.sync().await;
    let pool_row = async |r: &Rig| {
        let (view, _) = r.engine.compare(r.service).await.unwrap();
        view.rows
            .into_iter()
            .find(|row| row.kind == RowKind::Pool && row.object == r.ids.pool)
            .expect("the pool's row")
    };
    let field = |cell: &Option<fabric_console::sync::compare::Cell>| {
        cell.as_ref()
            .unwrap()
            .fields
            .iter()
            .find(|(k, _)| k == "Utilization")
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    // Reported and unchanged: both sides say the same.
    let row = pool_row(&r).await;
    assert_eq!(row.status, RowStatus::InSync, "{row:?}");
    assert_eq!(field(&row.console), field(&row.ipam));
    assert!(
        field(&row.console).starts_with("2 of 191 in use"),
        "{}",
        field(&row.console)
    );
    // Granted in the console, not yet reported: the row differs on utilization alone.
    r.grant(None, "web-01/eth0", Consumer::VmAdapter);
    let row = pool_row(&r).await;
    assert_eq!(row.status, RowStatus::Differs, "{row:?}");
    assert_eq!(row.changed, ["Utilization"]);
    assert!(
        field(&row.console).contains("1 granted"),
        "{}",
        field(&row.console)
    );
    assert!(
        field(&row.ipam).contains("0 granted"),
        "{}",
        field(&row.ipam)
    );
    // The sync reports it: in sync again.
    r.sync().await;
    assert_eq!(pool_row(&r).await.status, RowStatus::InSync);
    // Someone edits the server's copy by hand: the row differs.
    let range = r.pool_range().await;
    let hand_edit = async || {
        let mut usage = r.provider().range_usages().await.unwrap()[&range.id].clone();
        usage.addresses.clear();
        usage.free += u128::from(usage.granted);
        usage.granted = 0;
        r.provider()
            .report_usages(&[(range.id.clone(), usage)])
            .await
            .unwrap();
    };
    hand_edit().await;
    let row = pool_row(&r).await;
    assert_eq!(row.status, RowStatus::Differs, "{row:?}");
    // Within the recheck time (10 minutes) a sync does not read the server's copy again: it
    // costs as much as the fabric is large.
    r.sync().await;
    assert_eq!(pool_row(&r).await.status, RowStatus::Differs);
    // Past it, the sync reads the copy and puts the console's back.
    let rechecking = engine::engine_tuned(&r.store, &r.secrets, r.console_dir.path(), |ctx| {
        ctx.usage_recheck = std::time::Duration::ZERO
    });
    let sync = async || {
        rechecking
            .sync_now(r.service, JobTrigger::Refresh)
            .await
            .unwrap()
    };
    sync().await;
    assert_eq!(pool_row(&r).await.status, RowStatus::InSync);
    hand_edit().await;
    sync().await;
    assert_eq!(pool_row(&r).await.status, RowStatus::InSync);
}

#[tokio::test]
async fn a_pool_past_the_warning_level_is_a_notice_of_the_sync_that_reports_it() {
    use fabric_console::fabric::store::{Consumer, GrantRequest};
    use fabric_console::sync::status::JobResult;
    let r = rig(None).await;
    r.sync().await;
    let requests = |n: usize| -> Vec<GrantRequest> {
        (0..n)
            .map(|i| GrantRequest {
                pool: r.ids.pool,
                address: None,
                holder: format!("vm-{i}/eth0"),
                consumer: Consumer::VmAdapter,
            })
            .collect()
    };
    // 155 of 191 granted, with 1 reserved and 1 VIP: 157 in use, 82 %.
    r.store.grant_batch(&requests(155)).unwrap();
    let job = r.sync().await;
    assert_eq!(job.result, JobResult::Succeeded, "{:?}", job.errors);
    assert_eq!(job.notices.len(), 1, "{:?}", job.notices);
    let n = &job.notices[0];
    assert!(
        n.contains("Backend pool") && n.contains("82 % used") && n.contains("warning at 80 %"),
        "{n}"
    );
    // Nothing new to report: no notice.
    assert!(r.sync().await.notices.is_empty());
    // Past the critical level: 184 in use, 96 %.
    r.store.grant_batch(&requests(27)).unwrap();
    let job = r.sync().await;
    assert!(
        job.notices[0].contains("critical at 95 %"),
        "{:?}",
        job.notices
    );
}

#[tokio::test]
async fn an_address_assigned_on_the_ipam_side_is_never_granted() {
    use fabric_console::fabric::store::{Consumer, GrantError, GrantRequest};
    let r = rig(None).await;
    r.sync().await;
    let range = r.pool_range().await;
    let client = reqwest::Client::new();
    let assign = async |address: &str, holder: &str| {
        let resp = client
            .post(format!(
                "{}/api/v1/ranges/{}/assignments",
                r.server().base_url(),
                range.id
            ))
            .bearer_auth(&r.token)
            .json(&serde_json::json!({"address": address, "holder": holder}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    };
    // An IPAM administrator assigns the pool's first address and one in the middle by hand.
    assign("10.1.0.10", "printer-3").await;
    assign("10.1.0.50", "router-a/ge-0/0/1").await;
    let job = r.sync().await;
    assert!(job.errors.is_empty(), "{:?}", job.errors);
    let held = r.store.ipam_held(Some(r.ids.pool)).unwrap();
    assert_eq!(
        held.iter()
            .map(|h| (h.address.to_string(), h.holder.as_str(), h.service))
            .collect::<Vec<_>>(),
        [
            ("10.1.0.10".to_string(), "printer-3", r.service),
            ("10.1.0.50".to_string(), "router-a/ge-0/0/1", r.service)
        ]
    );
    let request = |address: Option<&str>| GrantRequest {
        pool: r.ids.pool,
        address: address.map(ip),
        holder: "web-01/eth0".into(),
        consumer: Consumer::VmAdapter,
    };
    // The next free address skips it (10.1.0.11 is reserved, 10.1.0.12 a VIP); asking for it
    // is refused, naming the holder and server.
    let g = r.store.grant(&request(None)).unwrap();
    assert_eq!(g.address, ip("10.1.0.13"));
    let err = r.store.grant(&request(Some("10.1.0.50"))).unwrap_err();
    assert!(matches!(err, GrantError::HeldOnIpam { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("10.1.0.50") && text.contains("router-a/ge-0/0/1 on ipam1"),
        "{text}"
    );
    // The usage the server keeps counts them as in use.
    let job = r.sync().await;
    assert!(job.errors.is_empty(), "{:?}", job.errors);
    let usage = r.provider().range_usages().await.unwrap();
    let u = &usage[&range.id];
    assert_eq!((u.granted, u.held), (1, 2), "{u:?}");
    assert_eq!(
        u.free,
        u.total - 5,
        "1 granted, 1 reserved, 1 VIP, 2 in use on the IPAM side"
    );
    // Released on the IPAM side: the next sync frees it for grants.
    let resp = client
        .delete(format!(
            "{}/api/v1/ranges/{}/assignments/10.1.0.50",
            r.server().base_url(),
            range.id
        ))
        .bearer_auth(&r.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    r.sync().await;
    assert_eq!(r.store.ipam_held(Some(r.ids.pool)).unwrap().len(), 1);
    assert_eq!(
        r.store.grant(&request(Some("10.1.0.50"))).unwrap().address,
        ip("10.1.0.50")
    );
}

#[tokio::test]
async fn a_grant_that_clashes_with_an_ipam_assignment_is_a_warning_naming_both() {
    use fabric_console::fabric::store::Consumer;
    let r = rig(None).await;
    r.sync().await;
    let range = r.pool_range().await;
    // The IPAM side assigns 10.1.0.60 before the console has read it, and the console grants
    // the same address meanwhile.
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/ranges/{}/assignments",
            r.server().base_url(),
            range.id
        ))
        .bearer_auth(&r.token)
        .json(&serde_json::json!({"address": "10.1.0.60", "holder": "camera-7"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    r.grant(Some("10.1.0.60"), "app-02/eth0", Consumer::VmAdapter);
    let job = r.sync().await;
    let warning = job
        .errors
        .iter()
        .find(|e| e.contains("10.1.0.60"))
        .unwrap_or_else(|| panic!("{:?}", job.errors));
    assert!(
        warning.contains("app-02/eth0") && warning.contains("camera-7"),
        "{warning}"
    );
    // Revoking the console's grant ends the warning.
    r.store.revoke(r.ids.pool, ip("10.1.0.60")).unwrap();
    let job = r.sync().await;
    assert!(job.errors.is_empty(), "{:?}", job.errors);
}
