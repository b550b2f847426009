//! First sync of a demo fabric (≥ 2,000 objects) into a real NetBox, against a bare reqwest client
//! that bulk-POSTs the same VRFs, prefixes and IP ranges with the same batch size and concurrency,
//! in the same run. Prints both rates and their ratio; then the cost of a full read against an
//! incremental one (nothing changed, one prefix edited) of the same server.
//!
//!   bash scripts/netbox.sh start && eval "$(bash scripts/netbox.sh env)"
//!   cargo bench --bench netbox
//!
//! A plain main with wall-clock timing: one run takes minutes against NetBox on 2 cores.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use fabric_console::fabric::connection::ConnectionString;
use fabric_console::fabric::demo::demo_fabric;
use fabric_console::fabric::model::{HostGroupScope, NetworkService, ServiceCategory};
use fabric_console::fabric::secrets::{MemorySecretStore, SecretStore};
use fabric_console::fabric::store::FabricStore;
use fabric_console::ipam::incremental::FullReads;
use fabric_console::ipam::model::{IpamId, IpamSnapshot, SnapshotRead, SnapshotScope};
use fabric_console::ipam::netbox::{NetboxProviderFactory, PROVIDER_ID};
use fabric_console::ipam::provider::{Credentials, ProviderConfig, ProviderFactory};
use fabric_console::ipam::registry::ProviderRegistry;
use fabric_console::sync::apply::ApplySettings;
use fabric_console::sync::engine::{Engine, EngineContext};
use fabric_console::sync::status::{JobResult, JobTrigger};
use futures::StreamExt;
use serde_json::{Value, json};
use uuid::Uuid;

const BATCH: usize = 200;
const CONCURRENCY: usize = 4;
/// Demo fabric size (objects); its first sync writes a little more than 2,000 objects.
const FABRIC_SIZE: usize = 4_000;
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
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Accept", "application/json; version=4.7");
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

    /// Bulk POST in batches with bounded concurrency; the created objects in order.
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

    /// Removes every VRF whose name contains one of `tags`, with its prefixes and ranges.
    async fn cleanup(&self, tags: &[&str]) {
        let vrfs: Vec<Value> = self
            .list("/api/ipam/vrfs/")
            .await
            .into_iter()
            .filter(|v| {
                tags.iter()
                    .any(|t| v["name"].as_str().unwrap_or("").contains(t))
            })
            .collect();
        for v in &vrfs {
            let id = v["id"].as_u64().unwrap_or(0);
            for kind in ["ip-addresses", "ip-ranges", "prefixes"] {
                let objects: Vec<Value> = self
                    .list(&format!("/api/ipam/{kind}/?vrf_id={id}"))
                    .await
                    .into_iter()
                    .filter(|o| o["vrf"]["id"].as_u64() == Some(id))
                    .collect();
                for chunk in objects.chunks(BATCH) {
                    let body = Value::Array(chunk.iter().map(|o| json!({"id": o["id"]})).collect());
                    self.call(
                        reqwest::Method::DELETE,
                        &format!("/api/ipam/{kind}/"),
                        Some(&body),
                    )
                    .await;
                }
            }
        }
        for chunk in vrfs.chunks(BATCH) {
            let body = Value::Array(chunk.iter().map(|o| json!({"id": o["id"]})).collect());
            self.call(reqwest::Method::DELETE, "/api/ipam/vrfs/", Some(&body))
                .await;
        }
    }
}

fn env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v,
        _ => {
            eprintln!(
                "{name} is not set. This benchmark needs a real NetBox: run `bash scripts/netbox.sh start` \
                 and `eval \"$(bash scripts/netbox.sh env)\"` first."
            );
            std::process::exit(2);
        }
    }
}

fn main() {
    let url = env("NETBOX_URL");
    let token = env("NETBOX_TOKEN");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run(url, token));
}

/// The first sync's objects of this run (names carry `tag`).
fn mine(snapshot: &IpamSnapshot, tag: &str) -> IpamSnapshot {
    let mut mine = snapshot.clone();
    mine.spaces.retain(|s| s.name.contains(tag));
    let spaces: Vec<IpamId> = mine.spaces.iter().map(|s| s.id.clone()).collect();
    mine.subnets.retain(|s| spaces.contains(&s.address_space));
    let subnets: Vec<IpamId> = mine.subnets.iter().map(|s| s.id.clone()).collect();
    mine.ranges.retain(|r| subnets.contains(&r.subnet));
    mine
}

async fn run(url: String, token: String) {
    let rest = Rest {
        http: reqwest::Client::new(),
        url: url.trim_end_matches('/').to_string(),
        token: token.clone(),
    };
    rest.cleanup(&[MARKER, "fctest"]).await;
    let tag = format!("{MARKER}{}", &Uuid::new_v4().simple().to_string()[..8]);
    // `cargo test --all-targets` runs this once as a smoke test: keep that run small.
    let size = if std::env::args().any(|a| a == "--bench") {
        std::env::var("NETBOX_BENCH_SIZE")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(FABRIC_SIZE)
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
    let run_as = *fabric.run_as_accounts.keys().next().expect("an account");
    let service = NetworkService {
        id: Uuid::new_v4(),
        name: format!("netbox-{tag}"),
        description: String::new(),
        category: ServiceCategory::NetworkManager,
        manufacturer: "NetBox Labs".into(),
        model: "NetBox".into(),
        connection: ConnectionString::parse(&url).expect("NETBOX_URL"),
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
    let mut ctx = EngineContext::new(
        store.clone(),
        secrets,
        Arc::new(ProviderRegistry::default_registry()),
        Some(dir.path().join("sync.db")),
    );
    ctx.periodic = false;
    ctx.apply = ApplySettings {
        batch_size: BATCH,
        concurrency: CONCURRENCY,
        ..ApplySettings::default()
    };
    let engine = Engine::start(ctx).expect("engine");
    let config = ProviderConfig {
        connection: service.connection.clone(),
        credentials: Credentials {
            user_name: "bench".into(),
            secret: token.clone(),
        },
        trust: fabric_console::fabric::model::TlsTrust::default(),
        service_name: service.name.clone(),
        event_source: None,
    };
    let provider = NetboxProviderFactory::new()
        .connect(config.clone())
        .expect("provider");
    // Custom fields exist before either side is timed.
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
    let mine = mine(&snapshot, &tag);

    // The bare client: the same VRFs, prefixes and ranges, bulk-POSTed.
    let bare = format!("bare-{tag}");
    let started = Instant::now();
    let made_vrfs = rest
        .bulk_post(
            "/api/ipam/vrfs/",
            mine.spaces
                .iter()
                .map(|s| {
                    json!({"name": format!("{bare}-{}", s.name), "description": s.description,
                                "custom_fields": {"vmm_logical_network": s.vmm_logical_network}})
                })
                .collect(),
        )
        .await;
    let vrf_of: HashMap<&IpamId, Value> = mine
        .spaces
        .iter()
        .zip(&made_vrfs)
        .map(|(s, m)| (&s.id, m["id"].clone()))
        .collect();
    let made_prefixes = rest
        .bulk_post(
            "/api/ipam/prefixes/",
            mine.subnets
                .iter()
                .map(|s| json!({"prefix": s.network.to_string(), "vrf": vrf_of[&s.address_space],
                                "status": "active", "description": s.name,
                                "custom_fields": {"vmm_id": s.vmm_id, "vmm_network_site": s.network_site,
                                                  "vmm_vlan": s.vlan}}))
                .collect(),
        )
        .await;
    let subnet_of: HashMap<&IpamId, &fabric_console::ipam::model::IpamSubnet> =
        mine.subnets.iter().map(|s| (&s.id, s)).collect();
    let made_ranges = rest
        .bulk_post(
            "/api/ipam/ip-ranges/",
            mine.ranges
                .iter()
                .map(|r| {
                    let s = subnet_of[&r.subnet];
                    let len = s.network.prefix_len();
                    json!({"start_address": format!("{}/{len}", r.start),
                           "end_address": format!("{}/{len}", r.end),
                           "vrf": vrf_of[&s.address_space], "status": "active",
                           "custom_fields": {"vmm_id": r.vmm_id, "vmm_pool": {"name": r.name,
                               "dns_servers": r.settings.dns_servers, "gateways": r.settings.gateways}}})
                })
                .collect(),
        )
        .await;
    let bare_secs = started.elapsed().as_secs_f64();
    let bare_objects = (made_vrfs.len() + made_prefixes.len() + made_ranges.len()) as f64;
    // The first sync ends with the address usage report (counts on every new range), which
    // the bare client does not write: its time is reported apart.
    let usage_secs = f64::from(job.phases.usage_ms) / 1000.0;
    let objects_secs = console_secs - usage_secs;
    let console_rate = console_objects / objects_secs;
    let whole_rate = console_objects / console_secs;
    let bare_rate = bare_objects / bare_secs;
    println!(
        "netbox first sync: {} VRFs, {} prefixes, {} IP ranges",
        mine.spaces.len(),
        mine.subnets.len(),
        mine.ranges.len()
    );
    println!(
        "console (engine + provider, incl. clock, full read, plan, journal): {console_objects} objects in {objects_secs:.1} s = {console_rate:.1} objects/s"
    );
    println!(
        "then the address usage report of {} ranges: {usage_secs:.1} s (whole first sync {console_secs:.1} s = {whole_rate:.1} objects/s, ratio {:.2})",
        mine.ranges.len(),
        whole_rate / bare_rate
    );
    println!(
        "bare reqwest bulk POST (batch {BATCH}, {CONCURRENCY} in flight): {bare_objects} objects in {bare_secs:.1} s = {bare_rate:.1} objects/s"
    );
    println!("ratio console/bare = {:.2}", console_rate / bare_rate);
    reads(&rest, &config, mine.subnets.first().map(|s| s.id.clone())).await;
    drop(engine);
    rest.cleanup(&[&tag]).await;
}

/// A full read of the whole server, then incremental reads from its cursor: with nothing changed,
/// and after one prefix was edited through the REST API. No look-back, so each incremental read
/// shows what a read long after the previous sync costs (the default looks two minutes back).
async fn reads(rest: &Rest, config: &ProviderConfig, edited: Option<IpamId>) {
    let provider = NetboxProviderFactory::with_reads(FullReads {
        overlap: chrono::Duration::zero(),
        every: 1000,
        ..FullReads::default()
    })
    .connect(config.clone())
    .expect("provider");
    let started = Instant::now();
    let base = match provider
        .snapshot(&SnapshotScope::All, None)
        .await
        .expect("full read")
    {
        SnapshotRead::Full(s) => s,
        SnapshotRead::Changes(_) => unreachable!("a read without a cursor is full"),
    };
    let full_ms = started.elapsed().as_secs_f64() * 1000.0;
    let objects = base.spaces.len() + base.subnets.len() + base.ranges.len();
    let incremental = |cursor| {
        let provider = provider.clone();
        async move {
            // NetBox's clock is read to the second.
            tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
            let started = Instant::now();
            let read = provider
                .snapshot(&SnapshotScope::All, Some(&cursor))
                .await
                .expect("incremental read");
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            match read {
                SnapshotRead::Changes(c) => (ms, c.subnets.len() + c.ranges.len(), c.cursor),
                SnapshotRead::Full(_) => panic!("a fresh cursor gives an incremental read"),
            }
        }
    };
    let cursor = base.cursor.clone().expect("cursor");
    let (quiet_ms, quiet_objects, cursor) = incremental(cursor).await;
    let mut edit = (0.0, 0);
    if let Some(id) = edited {
        rest.call(
            reqwest::Method::PATCH,
            &format!("/api/ipam/prefixes/{id}/"),
            Some(&json!({"description": "edited by the bench"})),
        )
        .await;
        let (ms, n, _) = incremental(cursor.expect("cursor")).await;
        edit = (ms, n);
    }
    println!("full read of the server: {objects} objects in {full_ms:.0} ms");
    println!(
        "incremental read, nothing changed: {quiet_ms:.0} ms ({quiet_objects} objects read back)"
    );
    println!(
        "incremental read, one prefix edited: {:.0} ms ({} subnets and ranges of its VRF read back)",
        edit.0, edit.1
    );
}
