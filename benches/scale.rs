//! Scale: the engine as the running console drives it (a file-backed sync database, the built-in
//! IPAM server on loopback), at 1k, 10k and 100k objects: first sync, the sync that reads back its
//! own writes, no-op syncs, and a sync after one change on either side. Prints one table row per
//! size; `scripts/scale.sh` measures the same through the command line.
//!
//! `cargo bench --bench scale` (sizes from `SCALE_SIZES`, default 1000,10000,100000).

use std::time::{Duration, Instant};

#[path = "../tests/support/engine.rs"]
mod engine_support;

use criterion::{Criterion, criterion_group, criterion_main};
use fabric_console::fabric::model::*;
use fabric_console::sync::engine::EngineHandle;
use fabric_console::sync::status::{JobRecord, JobTrigger};

/// `cargo test --all-targets` runs benchmarks once as a smoke test: keep that small.
fn sizes() -> Vec<usize> {
    if !std::env::args().any(|a| a == "--bench") {
        return vec![300];
    }
    std::env::var("SCALE_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 10_000, 100_000])
}

async fn timed(engine: &EngineHandle, service: Id) -> (Duration, JobRecord) {
    let t = Instant::now();
    let job = engine.sync_now(service, JobTrigger::Refresh).await.unwrap();
    (t.elapsed(), job)
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn scale(_c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "| objects | first sync | second sync | no-op sync (requests) | one IPAM change | one console change |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    for size in sizes() {
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let engine_support::DemoOverServer {
                server,
                token,
                store,
                secrets,
                service: svc,
                objects,
            } = engine_support::demo_over_server(dir.path(), size, "scale").await;
            let engine = engine_support::engine_over(&store, &secrets, dir.path());

            let (first, job) = timed(&engine, svc.id).await;
            assert!(job.counts.ipam_created > 0, "{:?}", job.errors);
            let mut phases = vec![("first", job.phases)];
            let (second, job) = timed(&engine, svc.id).await;
            phases.push(("second", job.phases));
            let mut noop = Vec::new();
            let mut requests = 0;
            for _ in 0..3 {
                let r0 = server.request_count();
                let (d, job) = timed(&engine, svc.id).await;
                assert_eq!(job.counts.total_changes(), 0);
                requests = server.request_count() - r0;
                noop.push(d);
            }
            noop.sort();

            // One subnet's VLAN changed on the server by its administrator.
            let http = reqwest::Client::new();
            let list: serde_json::Value = http
                .get(format!("{}/api/v1/subnets?limit=100", server.base_url()))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let items = list.get("items").unwrap_or(&list);
            // A provider subnet: the console puts edits of VM subnets back.
            let subnet = items
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["network_type"] == "Provider")
                .unwrap();
            let vlan = subnet["vlan"].as_u64().unwrap_or(0);
            http.patch(format!(
                "{}/api/v1/subnets/{}",
                server.base_url(),
                subnet["id"].as_str().unwrap()
            ))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "vlan": (vlan % 4000) + 1 }))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
            let (ipam_change, job) = timed(&engine, svc.id).await;
            assert_eq!(job.counts.console_updated, 1, "{:?}", job.counts);
            phases.push(("one IPAM change", job.phases));

            // One pool's DNS suffix changed in the console.
            let mut pool = store.fabric().ip_pools.values().next().unwrap().clone();
            pool.settings.dns_suffix = format!("changed{size}.contoso.com");
            store
                .apply(&[FabricChange::Put(FabricObject::IpPool(pool))])
                .unwrap();
            let (console_change, job) = timed(&engine, svc.id).await;
            assert_eq!(job.counts.ipam_updated, 1, "{:?}", job.counts);
            phases.push(("one console change", job.phases));

            println!(
                "| {objects} | {} | {} | {}–{} ({requests}) | {} | {} |",
                ms(first),
                ms(second),
                ms(noop[0]),
                ms(noop[2]),
                ms(ipam_change),
                ms(console_change)
            );
            for (what, p) in phases {
                eprintln!("{objects} objects, {what}: {}", p.summary());
            }
            server.shutdown().await;
        });
    }
}

criterion_group!(benches, scale);
criterion_main!(benches);
