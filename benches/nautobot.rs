//! First sync of a demo fabric (a few hundred subnets and pools) into a real Nautobot, against a
//! bare reqwest client that bulk-POSTs the same namespaces, prefixes and ranges with the same
//! batch size and concurrency, in the same run. Prints both rates and their ratio (goal ≥ 0.9).
//!
//!   bash scripts/nautobot.sh start && eval "$(bash scripts/nautobot.sh env)"
//!   cargo bench --bench nautobot
//!
//! Then live sync through Nautobot's event broker (`NAUTOBOT_EVENTS`): how long an edit made in
//! Nautobot takes to reach the console's store and a console save to reach Nautobot (median and
//! 95th percentile), and how many syncs a storm of edits becomes.
//!
//! A plain main with wall-clock timing: one run takes tens of seconds against Nautobot's
//! development server, too long for criterion's repeated sampling.

use std::sync::Arc;
use std::time::Instant;

use fabric_console::fabric::connection::ConnectionString;
use fabric_console::fabric::demo::demo_fabric;
use fabric_console::fabric::model::{HostGroupScope, NetworkService, ServiceCategory};
use fabric_console::fabric::secrets::{MemorySecretStore, SecretStore};
use fabric_console::fabric::store::FabricStore;
use fabric_console::ipam::model::{IpamId, IpamSnapshot, SnapshotRead, SnapshotScope};
use fabric_console::ipam::nautobot::{NautobotProviderFactory, NautobotTuning, PROVIDER_ID};
use fabric_console::ipam::provider::{Credentials, ProviderConfig, ProviderFactory};
use fabric_console::ipam::registry::ProviderRegistry;
use fabric_console::sync::apply::ApplySettings;
use fabric_console::sync::engine::{Engine, EngineContext};
use fabric_console::sync::status::{JobResult, JobTrigger};
use std::time::Duration;

#[path = "../tests/support/engine.rs"]
mod engine_support;
use futures::StreamExt;
use serde_json::{Value, json};
use uuid::Uuid;

const BATCH: usize = 200;
const CONCURRENCY: usize = 4;
/// Demo fabric size (objects); gives a few hundred subnets and pools.
const FABRIC_SIZE: usize = 700;
const MARKER: &str = "fcbench";

struct Rest {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Rest {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .header("Authorization", format!("Token {}", self.token))
            .header("Accept", "application/json; version=2.4");
        if let Some(b) = body {
            req = req.json(b);
        }
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let text = resp.text().await.unwrap_or_default();
                (status, serde_json::from_str(&text).unwrap_or(Value::Null))
            }
            Err(e) => (0, json!(e.to_string())),
        }
    }

    /// Bulk POST in batches with bounded concurrency; returns the created objects in order.
    async fn bulk_post(&self, path: &str, items: Vec<Value>) -> Vec<Value> {
        let chunks: Vec<Vec<Value>> = items.chunks(BATCH).map(|c| c.to_vec()).collect();
        let out: Vec<Vec<Value>> = futures::stream::iter(chunks)
            .map(|chunk| async move {
                let (status, body) = self
                    .call(reqwest::Method::POST, path, Some(&Value::Array(chunk)))
                    .await;
                assert_eq!(status, 201, "bulk POST {path}: {body}");
                body.as_array().cloned().unwrap_or_default()
            })
            .buffered(CONCURRENCY)
            .collect()
            .await;
        out.into_iter().flatten().collect()
    }

    async fn bulk_delete(&self, path: &str, ids: Vec<String>) {
        for chunk in ids.chunks(BATCH) {
            let body = Value::Array(chunk.iter().map(|id| json!({ "id": id })).collect());
            let (status, answer) = self.call(reqwest::Method::DELETE, path, Some(&body)).await;
            assert_eq!(status, 204, "bulk DELETE {path}: {answer}");
        }
    }

    async fn list(&self, path: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut offset = 0;
        loop {
            let sep = if path.contains('?') { '&' } else { '?' };
            let (status, body) = self
                .call(
                    reqwest::Method::GET,
                    &format!("{path}{sep}limit=1000&offset={offset}"),
                    None,
                )
                .await;
            assert_eq!(status, 200, "GET {path}: {body}");
            let page = body["results"].as_array().cloned().unwrap_or_default();
            let n = page.len();
            out.extend(page);
            offset += n;
            if n == 0 || offset as u64 >= body["count"].as_u64().unwrap_or(0) {
                return out;
            }
        }
    }

    /// Removes every namespace whose name contains one of `tags`, with its prefixes and ranges.
    async fn cleanup(&self, tags: &[&str]) {
        let namespaces: Vec<Value> = self
            .list("/api/ipam/namespaces/")
            .await
            .into_iter()
            .filter(|n| {
                tags.iter()
                    .any(|t| n["name"].as_str().unwrap_or("").contains(t))
            })
            .collect();
        for ns in &namespaces {
            let id = ns["id"].as_str().unwrap_or_default();
            let ranges = self
                .list(&format!("/api/ipam/ip-address-ranges/?namespace={id}"))
                .await;
            self.bulk_delete("/api/ipam/ip-address-ranges/", ids(&ranges))
                .await;
            let mut prefixes = self
                .list(&format!("/api/ipam/prefixes/?namespace={id}"))
                .await;
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
        }
        self.bulk_delete("/api/ipam/namespaces/", ids(&namespaces))
            .await;
    }
}

fn ids(objects: &[Value]) -> Vec<String> {
    objects
        .iter()
        .filter_map(|o| o["id"].as_str().map(str::to_string))
        .collect()
}

fn env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v,
        _ => {
            eprintln!(
                "{name} is not set. This benchmark needs a real Nautobot: run `bash scripts/nautobot.sh start` \
                 and `eval \"$(bash scripts/nautobot.sh env)\"` first."
            );
            std::process::exit(2);
        }
    }
}

/// The same objects the console wrote, as a bare client would send them.
fn bare_bodies(snapshot: &IpamSnapshot, tag: &str) -> (Vec<Value>, Vec<Value>, Vec<Value>) {
    let spaces: Vec<Value> = snapshot
        .spaces
        .iter()
        .map(|s| {
            json!({"name": format!("bare-{tag}-{}", s.name), "description": s.description,
                        "custom_fields": {"vmm_tenant": s.vmm_logical_network}})
        })
        .collect();
    let prefixes: Vec<Value> = snapshot
        .subnets
        .iter()
        .map(|s| json!({"prefix": s.network.to_string(), "type": "network", "status": {"name": "Active"},
                        "description": s.name, "space": s.address_space,
                        "custom_fields": {"vmm_id": s.vmm_id, "vmm_logical_network": s.vmm_logical_network,
                                          "vmm_network_site": s.network_site, "vmm_vlan": s.vlan}}))
        .collect();
    let ranges: Vec<Value> = snapshot
        .ranges
        .iter()
        .map(|r| json!({"start_address": r.start.to_string(), "end_address": r.end.to_string(),
                        "status": {"name": "Active"}, "name": r.name, "subnet": r.subnet,
                        "custom_fields": {"vmm_id": r.vmm_id, "vmm_pool": {"dns_servers": r.settings.dns_servers,
                            "gateways": r.settings.gateways, "dns_suffix": r.settings.dns_suffix}}}))
        .collect();
    (spaces, prefixes, ranges)
}

fn main() {
    let url = env("NAUTOBOT_URL");
    let token = env("NAUTOBOT_TOKEN");
    let events = env("NAUTOBOT_EVENTS");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run(url, token, events));
}

async fn run(url: String, token: String, events: String) {
    let rest = Rest {
        http: reqwest::Client::new(),
        url: url.trim_end_matches('/').to_string(),
        token: token.clone(),
    };
    // Leftovers of interrupted runs and tests would be imported into the console as IPAM-made.
    rest.cleanup(&[MARKER, "fctest"]).await;
    let tag = format!("{MARKER}{}", &Uuid::new_v4().simple().to_string()[..8]);

    // The console side: a demo fabric whose network names carry the run's tag.
    // `cargo test --all-targets` runs this once as a smoke test: keep that run small.
    let size = if std::env::args().any(|a| a == "--bench") {
        FABRIC_SIZE
    } else {
        60
    };
    let mut fabric = demo_fabric(size, 7);
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
        .expect("the demo has a Run As account");
    let service = NetworkService {
        id: Uuid::new_v4(),
        name: format!("nautobot-{tag}"),
        description: String::new(),
        category: ServiceCategory::NetworkManager,
        manufacturer: "Network to Code".into(),
        model: "Nautobot".into(),
        connection: ConnectionString::parse(&url).expect("NAUTOBOT_URL is a connection string"),
        run_as,
        provider: PROVIDER_ID.into(),
        scope: HostGroupScope::All,
        sync_interval_secs: 3600,
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
    let secrets: Arc<dyn SecretStore> = Arc::new(MemorySecretStore::default());
    secrets.put(run_as, &token).expect("secret");
    let secrets_clone = secrets.clone();
    let tuning = NautobotTuning {
        batch_size: BATCH,
        concurrency: 1,
        ..NautobotTuning::default()
    };
    let mut registry = ProviderRegistry::default_registry();
    registry.register(Arc::new(NautobotProviderFactory::with_tuning(
        tuning.clone(),
    )));
    let mut ctx = EngineContext::new(
        store.clone(),
        secrets,
        Arc::new(registry),
        Some(dir.path().join("sync.db")),
    );
    ctx.periodic = false;
    ctx.apply = ApplySettings {
        batch_size: BATCH,
        concurrency: CONCURRENCY,
        ..ApplySettings::default()
    };
    let engine = Engine::start(ctx).expect("engine");
    let secrets_again = secrets_clone.clone();

    // Custom fields exist before either side is timed.
    let provider = NautobotProviderFactory::with_tuning(tuning)
        .connect(ProviderConfig {
            connection: service.connection.clone(),
            credentials: Credentials {
                user_name: "bench".into(),
                secret: token.clone(),
            },
            trust: fabric_console::fabric::model::TlsTrust::default(),
            service_name: service.name.clone(),
            event_source: None,
        })
        .expect("provider");
    provider.apply(&[]).await.expect("nothing to apply");
    let _ = provider.test().await;

    let started = Instant::now();
    let job = engine
        .sync_now(service.id, JobTrigger::Refresh)
        .await
        .expect("sync runs");
    let console_secs = started.elapsed().as_secs_f64();
    assert_eq!(
        job.result,
        JobResult::Succeeded,
        "first sync: {:?}",
        job.errors
    );
    let console_objects = job.counts.ipam_created as f64;

    let snapshot = match provider
        .snapshot(&SnapshotScope::All, None)
        .await
        .expect("read back")
    {
        SnapshotRead::Full(s) => s,
        SnapshotRead::Changes(_) => unreachable!("a read without a cursor is full"),
    };
    let mut mine = snapshot.clone();
    mine.spaces.retain(|s| s.name.contains(&tag));
    let space_ids: Vec<IpamId> = mine.spaces.iter().map(|s| s.id.clone()).collect();
    mine.subnets
        .retain(|s| space_ids.contains(&s.address_space));
    let subnet_ids: Vec<IpamId> = mine.subnets.iter().map(|s| s.id.clone()).collect();
    mine.ranges.retain(|r| subnet_ids.contains(&r.subnet));

    // The bare client: the same namespaces, prefixes and ranges, bulk-POSTed.
    let (spaces, mut prefixes, mut ranges) = bare_bodies(&mine, &tag);
    let started = Instant::now();
    let made_spaces = rest.bulk_post("/api/ipam/namespaces/", spaces).await;
    let space_map: std::collections::HashMap<IpamId, String> = mine
        .spaces
        .iter()
        .zip(&made_spaces)
        .map(|(s, m)| {
            (
                s.id.clone(),
                m["id"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    for p in prefixes.iter_mut() {
        let space = p["space"].as_str().unwrap_or_default().to_string();
        p["namespace"] = json!(space_map.get(space.as_str()));
        if let Some(m) = p.as_object_mut() {
            m.remove("space");
        }
    }
    let made_prefixes = rest.bulk_post("/api/ipam/prefixes/", prefixes).await;
    let prefix_map: std::collections::HashMap<IpamId, String> = mine
        .subnets
        .iter()
        .zip(&made_prefixes)
        .map(|(s, m)| {
            (
                s.id.clone(),
                m["id"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    for r in ranges.iter_mut() {
        let subnet = r["subnet"].as_str().unwrap_or_default().to_string();
        r["parent"] = json!(prefix_map.get(subnet.as_str()));
        if let Some(m) = r.as_object_mut() {
            m.remove("subnet");
        }
    }
    let made_ranges = rest.bulk_post("/api/ipam/ip-address-ranges/", ranges).await;
    let bare_secs = started.elapsed().as_secs_f64();
    let bare_objects = (made_spaces.len() + made_prefixes.len() + made_ranges.len()) as f64;

    let console_rate = console_objects / console_secs;
    let bare_rate = bare_objects / bare_secs;
    println!(
        "nautobot first sync: {} namespaces, {} prefixes, {} ranges",
        mine.spaces.len(),
        mine.subnets.len(),
        mine.ranges.len()
    );
    println!(
        "console (engine + provider, incl. clock, full read, plan, journal): {console_objects} objects in {console_secs:.1} s = {console_rate:.1} objects/s"
    );
    println!(
        "bare reqwest bulk POST (batch {BATCH}, {CONCURRENCY} in flight): {bare_objects} objects in {bare_secs:.1} s = {bare_rate:.1} objects/s"
    );
    println!(
        "ratio console/bare = {:.2} (goal >= 0.9)",
        console_rate / bare_rate
    );
    drop(engine);

    let bench = std::env::args().any(|a| a == "--bench");
    let live_run = LiveRun {
        store: &store,
        secrets: &secrets_again,
        dir: dir.path(),
        provider: &provider,
        rest: &rest,
    };
    // Edits timed per direction: `LIVE_ROUNDS`, default 60 (3 in the smoke run).
    let rounds = std::env::var("LIVE_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(if bench { 60 } else { 3 });
    let mut live_service = service.clone();
    live_service.event_source = Some(events);
    live_run
        .measure(&live_service, rounds, if bench { 1000 } else { 20 })
        .await;

    rest.cleanup(&[&tag]).await;
}

/// What the live part of the benchmark works on.
struct LiveRun<'a> {
    store: &'a FabricStore,
    secrets: &'a Arc<dyn SecretStore>,
    dir: &'a std::path::Path,
    provider: &'a Arc<dyn fabric_console::ipam::provider::IpamProvider>,
    rest: &'a Rest,
}

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

async fn until(
    what: &str,
    limit: Duration,
    engine: &fabric_console::sync::engine::EngineHandle,
    mut done: impl AsyncFnMut() -> bool,
) -> Duration {
    let t = Instant::now();
    while !done().await {
        assert!(
            t.elapsed() < limit,
            "{what}: not within {limit:?}; latest jobs {:#?}; status {:#?}",
            engine.jobs().iter().take(3).collect::<Vec<_>>(),
            engine.statuses()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    t.elapsed()
}

impl LiveRun<'_> {
    async fn measure(&self, service: &NetworkService, rounds: usize, storm: usize) {
        use fabric_console::fabric::model::{FabricChange, FabricObject, PoolScope};
        self.store
            .apply(&[FabricChange::Put(FabricObject::NetworkService(
                service.clone(),
            ))])
            .expect("service with its event source");
        let engine = engine_support::live_engine_over(self.store, self.secrets, self.dir);
        let job = engine
            .sync_now(service.id, JobTrigger::Refresh)
            .await
            .expect("sync");
        assert_eq!(job.result, JobResult::Succeeded, "{:?}", job.errors);
        engine_support::wait_live(&engine, service.id, Duration::from_secs(60)).await;

        let snapshot = match self
            .provider
            .snapshot(&SnapshotScope::All, None)
            .await
            .expect("read")
        {
            SnapshotRead::Full(s) => s,
            SnapshotRead::Changes(_) => unreachable!("a read without a cursor is full"),
        };
        let fabric = self.store.fabric();
        // Subnets of network sites (a VM network's edited subnet would be put back).
        let subnets: Vec<(String, fabric_console::fabric::model::Id, ipnet::IpNet)> = snapshot
            .subnets
            .iter()
            .filter_map(|s| {
                let site = s.vmm_id?;
                fabric
                    .network_sites
                    .contains_key(&site)
                    .then(|| (s.id.to_string(), site, s.network))
            })
            .collect();
        assert!(!subnets.is_empty(), "no site subnet in Nautobot");
        let vlan_in_console = |site: fabric_console::fabric::model::Id, net: ipnet::IpNet| {
            self.store.fabric().network_sites[&site]
                .subnets
                .iter()
                .find(|x| x.subnet == net)
                .map(|x| x.vlan)
        };

        // Nautobot edit → console store.
        let mut to_console = Vec::new();
        for round in 0..rounds {
            let (id, site, net) = &subnets[round % subnets.len()];
            let vlan = 3000 + round as u16;
            let (status, body) = self
                .rest
                .call(
                    reqwest::Method::PATCH,
                    &format!("/api/ipam/prefixes/{id}/"),
                    Some(&json!({"custom_fields": {"vmm_vlan": vlan}})),
                )
                .await;
            assert_eq!(status, 200, "{body}");
            to_console.push(
                until(
                    "Nautobot edit in the console",
                    Duration::from_secs(60),
                    &engine,
                    async || vlan_in_console(*site, *net) == Some(vlan),
                )
                .await,
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }

        // Console save → Nautobot.
        let (pool, range) = snapshot
            .ranges
            .iter()
            .find_map(|r| {
                let pool = r.vmm_id?;
                matches!(fabric.ip_pools.get(&pool)?.scope, PoolScope::Site { .. })
                    .then(|| (pool, r.id.to_string()))
            })
            .expect("a site pool's range");
        let mut to_ipam = Vec::new();
        for round in 0..rounds {
            let suffix = format!("push{round}.contoso.com");
            let mut p = self.store.fabric().ip_pools[&pool].clone();
            p.settings.dns_suffix = suffix.clone();
            self.store
                .apply(&[FabricChange::Put(FabricObject::IpPool(p))])
                .expect("pool saved");
            let path = format!("/api/ipam/ip-address-ranges/{range}/");
            to_ipam.push(
                until(
                    "console save in Nautobot",
                    Duration::from_secs(60),
                    &engine,
                    async || {
                        let (_, r) = self.rest.call(reqwest::Method::GET, &path, None).await;
                        r["custom_fields"]["vmm_pool"]["dns_suffix"] == json!(suffix)
                    },
                )
                .await,
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }

        // A storm: `storm` prefix edits in bulk PATCHes of 100, as fast as Nautobot takes them.
        let storm_began = chrono::Utc::now();
        let mut last = std::collections::HashMap::new();
        let edits: Vec<Value> = (0..storm)
            .map(|i| {
                let (id, site, net) = &subnets[i % subnets.len()];
                let vlan = 1000 + (i % 2000) as u16;
                last.insert((*site, *net), vlan);
                json!({"id": id, "custom_fields": {"vmm_vlan": vlan}})
            })
            .collect();
        let t = Instant::now();
        for chunk in edits.chunks(100) {
            let (status, body) = self
                .rest
                .call(
                    reqwest::Method::PATCH,
                    "/api/ipam/prefixes/",
                    Some(&Value::Array(chunk.to_vec())),
                )
                .await;
            assert_eq!(status, 200, "{body}");
        }
        let sent_in = t.elapsed();
        until(
            "the storm's edits",
            Duration::from_secs(120),
            &engine,
            async || {
                last.iter()
                    .all(|((site, net), vlan)| vlan_in_console(*site, *net) == Some(*vlan))
            },
        )
        .await;
        let applied_in = t.elapsed();
        tokio::time::sleep(Duration::from_secs(3)).await;
        let syncs = engine_support::syncs_finished_after(&engine, storm_began);
        println!(
            "live (Nautobot event broker): Nautobot edit → console median {} p95 {} max {} over {rounds}; console save → Nautobot median {} p95 {} max {} over {rounds}",
            ms(percentile(to_console.clone(), 0.5)),
            ms(percentile(to_console.clone(), 0.95)),
            ms(percentile(to_console, 1.0)),
            ms(percentile(to_ipam.clone(), 0.5)),
            ms(percentile(to_ipam.clone(), 0.95)),
            ms(percentile(to_ipam, 1.0)),
        );
        // No sync may follow the clean-up of Nautobot.
        engine_support::retire_service(self.store, &engine, service.id).await;
        println!(
            "storm: {storm} edits of {} prefixes sent in {} (bulk PATCH of 100), all in the console after {}, {syncs} syncs",
            subnets.len().min(storm),
            ms(sent_in),
            ms(applied_in)
        );
    }
}
