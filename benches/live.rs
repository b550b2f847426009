//! Live sync: the engine as the console runs it (periodic syncs on, listening to the built-in
//! server's change feed). How long an edit on the server takes to reach the console's store, how
//! long a console save takes to reach the server, and how many syncs a storm of edits becomes.
//!
//! `cargo bench --bench live` (fabric size from `LIVE_SIZE`, default 10000).

use std::time::{Duration, Instant};

#[path = "../tests/support/engine.rs"]
mod engine_support;

use criterion::{Criterion, criterion_group, criterion_main};
use fabric_console::fabric::model::*;
use fabric_console::fabric::store::FabricStore;
use fabric_console::sync::status::JobTrigger;
use serde_json::{Value, json};

/// `cargo test --all-targets` runs benchmarks once as a smoke test: keep that small.
fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// The `p`-th quantile (0.5 the median, 0.95 the 95th percentile).
fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

/// "median 218 ms, p95 300 ms" of a series.
fn spread(v: &[Duration]) -> String {
    if v.is_empty() {
        return "n/a".into();
    }
    format!(
        "median {}, p95 {}",
        ms(percentile(v.to_vec(), 0.5)),
        ms(percentile(v.to_vec(), 0.95))
    )
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

async fn wait_until(what: &str, limit: Duration, mut done: impl AsyncFnMut() -> bool) -> Duration {
    let t = Instant::now();
    while !done().await {
        assert!(t.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    t.elapsed()
}

async fn get_json(http: &reqwest::Client, url: &str, token: &str) -> Value {
    http.get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn live(_c: &mut Criterion) {
    let (size, rounds, storm) = if bench_mode() {
        let size = std::env::var("LIVE_SIZE")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(10_000);
        (size, 60, 1000)
    } else {
        (300, 3, 20)
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let engine_support::DemoOverServer {
            server,
            token,
            store,
            secrets,
            service: svc,
            objects,
        } = engine_support::demo_over_server(dir.path(), size, "live").await;
        let engine = engine_support::live_engine_over(&store, &secrets, dir.path());
        engine.sync_now(svc.id, JobTrigger::Refresh).await.unwrap();
        engine.sync_now(svc.id, JobTrigger::Refresh).await.unwrap();
        engine_support::wait_live(&engine, svc.id, Duration::from_secs(30)).await;

        let http = reqwest::Client::new();
        let api = format!("{}/api/v1", server.base_url());
        let list = get_json(&http, &format!("{api}/subnets?limit=200"), &token).await;
        let items = list.get("items").unwrap_or(&list).as_array().unwrap().clone();
        let subnet = items
            .iter()
            .find(|s| s["network_type"] == "Provider" && s["vmm_id"].is_string())
            .unwrap();
        let (subnet_id, site) = (
            subnet["id"].as_str().unwrap().to_string(),
            subnet["vmm_id"].as_str().unwrap().parse::<Id>().unwrap(),
        );
        let cidr: ipnet::IpNet = subnet["network"].as_str().unwrap().parse().unwrap();
        let console_vlan = |store: &FabricStore| {
            store.fabric().network_sites[&site]
                .subnets
                .iter()
                .find(|s| s.subnet.trunc() == cidr.trunc())
                .map(|s| s.vlan)
        };

        // IPAM edit → in the console's store.
        let mut to_console = Vec::new();
        for round in 0..rounds {
            let vlan = 3000 + round as u16;
            http.patch(format!("{api}/subnets/{subnet_id}"))
                .bearer_auth(&token)
                .json(&json!({ "vlan": vlan }))
                .send()
                .await
                .unwrap()
                .error_for_status()
                .unwrap();
            let store = store.clone();
            to_console.push(
                wait_until("IPAM edit in the console", Duration::from_secs(30), async || {
                    console_vlan(&store) == Some(vlan)
                })
                .await,
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }

        // Console save → on the server.
        let ranges = get_json(&http, &format!("{api}/ranges?limit=200"), &token).await;
        // A range of a pool on a site (edits of VM subnets' pools are put back).
        let fabric_now = store.fabric();
        let found = ranges
            .get("items")
            .unwrap_or(&ranges)
            .as_array()
            .unwrap()
            .iter()
            .find_map(|r| {
                let pool: Id = r["vmm_id"].as_str()?.parse().ok()?;
                matches!(fabric_now.ip_pools.get(&pool)?.scope, PoolScope::Site { .. })
                    .then(|| (pool, r["id"].as_str().unwrap().to_string()))
            });
        let (pool_id, range) = match found {
            Some((p, r)) => (p, Some(r)),
            None => (Id::nil(), None),
        };
        let mut to_ipam = Vec::new();
        if let Some(range) = range {
            for round in 0..rounds {
                let suffix = format!("push{round}.contoso.com");
                let mut pool = store.fabric().ip_pools[&pool_id].clone();
                pool.settings.dns_suffix = suffix.clone();
                store
                    .apply(&[FabricChange::Put(FabricObject::IpPool(pool))])
                    .unwrap();
                let (http, url, token) = (&http, format!("{api}/ranges/{range}"), &token);
                to_ipam.push(
                    wait_until("console save on the server", Duration::from_secs(30), async || {
                        let r = get_json(http, &url, token).await;
                        r["dns_suffix"] == json!(suffix)
                    })
                    .await,
                );
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }

        // A storm: `storm` edits as fast as one client sends them.
        let storm_began = chrono::Utc::now();
        let t = Instant::now();
        let last = 1000 + storm as u16;
        for i in 0..storm {
            http.patch(format!("{api}/subnets/{subnet_id}"))
                .bearer_auth(&token)
                .json(&json!({ "vlan": 1001 + i as u16 }))
                .send()
                .await
                .unwrap()
                .error_for_status()
                .unwrap();
        }
        let sent_in = t.elapsed();
        let store2 = store.clone();
        wait_until("the storm's last edit", Duration::from_secs(60), async || {
            console_vlan(&store2) == Some(last)
        })
        .await;
        let applied_in = t.elapsed();
        // Let the last sync finish before counting.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let syncs = engine_support::syncs_finished_after(&engine, storm_began);

        println!(
            "| objects | IPAM edit → console ({rounds} edits) | console save → IPAM ({rounds} saves) | {storm} edits sent in | all applied after | syncs |"
        );
        println!("|---:|---:|---:|---:|---:|---:|");
        println!(
            "| {objects} | {} | {} | {} | {} | {syncs} |",
            spread(&to_console),
            spread(&to_ipam),
            ms(sent_in),
            ms(applied_in),
        );
        server.shutdown().await;
    });
}

criterion_group!(benches, live);
criterion_main!(benches);
