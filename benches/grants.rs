//! Addresses granted from pools at scale: a demo fabric of `GRANTS_SIZE` objects (default
//! 100000) in a fabric database on disk, the demo's grants (100,000 at that size) in one batch,
//! then single grants of the next free address, the per-pool counts the usage columns read, and
//! the whole list. Prints a markdown table with the peak memory of the process.
//!
//! Then their usage through the engine: the same size as a demo over the built-in IPAM server,
//! a first sync, 100,000 grants, the sync that reports their usage (wall time, requests, peak
//! memory), a sync after one more grant, and a no-op sync.
//!
//! `cargo bench --bench grants` (`cargo test --all-targets` runs it once, small).

use std::time::{Duration, Instant};

#[path = "../tests/support/engine.rs"]
mod engine_support;

use criterion::{Criterion, criterion_group, criterion_main};
use fabric_console::fabric::demo::{demo_fabric, demo_grants};
use fabric_console::fabric::store::{Consumer, FabricStore, GrantRequest, PoolGrants};
use fabric_console::ui::widget::chart::PoolUsage;

/// `cargo test --all-targets` runs benchmarks once as a smoke test: keep that small.
fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// The process's peak resident memory (VmHWM), in MiB.
fn peak_mib() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| format!("{:.0} MiB", kb / 1024.0))
        .unwrap_or_else(|| "n/a".into())
}

fn grants(_c: &mut Criterion) {
    let size: usize = std::env::var("GRANTS_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if bench_mode() { 100_000 } else { 500 });
    let dir = tempfile::tempdir().unwrap();
    let store = FabricStore::open(&dir.path().join("fabric.db")).unwrap();
    let fabric = store.replace_all(demo_fabric(size, 1)).unwrap();
    let objects = fabric.object_count();
    // 100,000 grants at the default size: the next free addresses of the pools in turn.
    let target = if bench_mode() { 100_000 } else { 2_000 };
    let requests = spread(&fabric, target);
    // The demo's own grants are what the window shows; they are counted, not granted here.
    let demo_share = demo_grants(&fabric, 1).len();

    let t = Instant::now();
    let granted = store.grant_batch(&requests).unwrap();
    let batch = t.elapsed();

    // Single grants, each its own transaction, from pools with room.
    let counts = store.grant_counts().unwrap();
    let roomy: Vec<_> = fabric
        .ip_pools
        .values()
        .filter(|p| counts.get(&p.id).is_none_or(|c| c.plain < 100))
        .take(100)
        .map(|p| p.id)
        .collect();
    let singles = 1000.min(roomy.len() * 10);
    let t = Instant::now();
    for i in 0..singles {
        store
            .grant(&GrantRequest {
                pool: roomy[i % roomy.len()],
                address: None,
                holder: format!("bench-{i}/eth0"),
                consumer: Consumer::VmAdapter,
            })
            .unwrap();
    }
    let single = t.elapsed();

    let t = Instant::now();
    let counts = store.grant_counts().unwrap();
    let count_time = t.elapsed();
    let t = Instant::now();
    let all = store.grants(None).unwrap();
    let list_time = t.elapsed();

    println!(
        "| objects | pools | demo grants | grants in one batch | batch | single grants | per single grant | counts of {} pools | list of {} grants | peak memory |",
        counts.len(),
        all.len()
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {objects} | {} | {demo_share} | {} | {} | {singles} in {} | {:.2} ms | {} | {} | {} |",
        fabric.ip_pools.len(),
        granted.len(),
        ms(batch),
        ms(single),
        single.as_secs_f64() * 1000.0 / singles.max(1) as f64,
        ms(count_time),
        ms(list_time),
        peak_mib(),
    );
}

/// `target` next free addresses across the pools, at most 250 from each.
fn spread(fabric: &fabric_console::fabric::model::Fabric, target: usize) -> Vec<GrantRequest> {
    let mut requests: Vec<GrantRequest> = Vec::with_capacity(target);
    for p in fabric.ip_pools.values() {
        let room = PoolUsage::of(p, PoolGrants::default()).free().min(250) as usize;
        for i in 0..room.min(target - requests.len()) {
            requests.push(GrantRequest {
                pool: p.id,
                address: None,
                holder: format!("{}-vm{i:03}/eth0", p.name),
                consumer: Consumer::VmAdapter,
            });
        }
        if requests.len() == target {
            break;
        }
    }
    requests
}

fn usage_sync(_c: &mut Criterion) {
    use fabric_console::sync::status::JobTrigger;
    let size: usize = std::env::var("GRANTS_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if bench_mode() { 100_000 } else { 500 });
    let target = if bench_mode() { 100_000 } else { 2_000 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let demo = engine_support::demo_over_server(dir.path(), size, "usage").await;
        let engine = engine_support::engine_over(&demo.store, &demo.secrets, dir.path());
        let sync = async || {
            let r0 = demo.server.request_count();
            let t = Instant::now();
            let job = engine
                .sync_now(demo.service.id, JobTrigger::Refresh)
                .await
                .unwrap();
            assert!(job.errors.is_empty(), "{:?}", job.errors);
            (t.elapsed(), demo.server.request_count() - r0, job)
        };
        let (first, first_requests, _) = sync().await;
        let (settle, _, _) = sync().await;
        let requests = spread(&demo.store.fabric(), target);
        let t = Instant::now();
        let granted = demo.store.grant_batch(&requests).unwrap().len();
        let grant_time = t.elapsed();
        let (report, report_requests, job) = sync().await;
        assert_eq!(job.counts.total_changes(), 0);
        let counts = demo.store.grant_counts().unwrap();
        let ranges = counts.len();
        // A pool with room for one more.
        let pool = demo
            .store
            .fabric()
            .ip_pools
            .values()
            .find(|p| {
                let c = counts.get(&p.id).copied().unwrap_or_default();
                c.plain > 0 && PoolUsage::of(p, c).free() > 0
            })
            .expect("a pool with room")
            .id;
        demo.store
            .grant(&GrantRequest {
                pool,
                address: None,
                holder: "one-more/eth0".into(),
                consumer: Consumer::VmAdapter,
            })
            .unwrap();
        let (one, one_requests, _) = sync().await;
        let (noop, noop_requests, _) = sync().await;
        println!();
        println!(
            "| objects | first sync (requests) | grants | granting | the sync that reports them, {ranges} ranges changed (requests) | after one more grant (requests) | no-op sync (requests) | peak memory |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
        println!(
            "| {} | {} ({first_requests}); then {} | {granted} | {} | {} ({report_requests}) | {} ({one_requests}) | {} ({noop_requests}) | {} |",
            demo.objects,
            ms(first),
            ms(settle),
            ms(grant_time),
            ms(report),
            ms(one),
            ms(noop),
            peak_mib(),
        );
    });
}

criterion_group!(benches, grants, usage_sync);
criterion_main!(benches);
