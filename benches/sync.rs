//! Sync core benchmarks: plan time and peak memory for 1k/10k/100k-object fabrics; first sync
//! and no-op refresh of a 10k-object fabric against the built-in IPAM server on loopback.

use std::alloc::{GlobalAlloc, Layout};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use fabric_console::fabric::connection::ConnectionString;
use fabric_console::fabric::demo::demo_fabric;
use fabric_console::fabric::model::*;
use fabric_console::fabric::secrets::{MemorySecretStore, SecretStore};
use fabric_console::fabric::store::FabricStore;
use fabric_console::ipam::model::IpamSnapshot;
use fabric_console::ipam::registry::ProviderRegistry;
use fabric_console::ipam_server::{self as server, ServerConfig, auth::Role};
use fabric_console::sync::engine::{Engine, EngineContext};
use fabric_console::sync::normal::BaseState;
use fabric_console::sync::status::JobTrigger;
use fabric_console::sync::{PlanInput, agreed_base, plan};

/// Counts live and peak heap bytes over mimalloc (the binary's allocator), so a plan's memory is measured, not guessed.
struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { mimalloc::MiMalloc.alloc(l) };
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { mimalloc::MiMalloc.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn service(f: &Fabric) -> NetworkService {
    NetworkService {
        id: uuid::Uuid::new_v4(),
        name: "bench".into(),
        description: String::new(),
        category: ServiceCategory::NetworkManager,
        manufacturer: "Fabric Console".into(),
        model: "Fabric Console IPAM Server".into(),
        connection: ConnectionString::parse("127.0.0.1:1").unwrap(),
        run_as: f.run_as_accounts.keys().next().copied().unwrap_or_default(),
        provider: fabric_console::ipam::builtin::PROVIDER_ID.into(),
        scope: HostGroupScope::All,
        sync_interval_secs: 300,
        tls_fingerprint: None,
        tls_ca_file: None,
        allow_cleartext: false,
        event_source: None,
        sync_on_change: true,
    }
}

/// `cargo test --all-targets` runs benchmarks once as a smoke test: keep that small.
fn measuring() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn plan_benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("plan");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    let none = BTreeMap::new();
    let sizes: &[usize] = if measuring() {
        &[1_000, 10_000, 100_000]
    } else {
        &[1_000]
    };
    for &size in sizes {
        let fabric = demo_fabric(size, 7);
        let svc = service(&fabric);
        let empty = IpamSnapshot::default();
        let base0 = BaseState::default();
        let first = plan(&PlanInput {
            fabric: &fabric,
            service: &svc,
            ipam: &empty,
            ipam_complete: true,
            base: &base0,
            resolutions: &none,
        });
        let mut ipam = IpamSnapshot::default();
        fabric_console::sync::apply::apply_to_mirror(&mut ipam, &first.ipam_ops);
        let base = agreed_base(&fabric, &svc, &ipam, &base0);
        let before = LIVE.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        let t = Instant::now();
        let p = plan(&PlanInput {
            fabric: &fabric,
            service: &svc,
            ipam: &ipam,
            ipam_complete: true,
            base: &base,
            resolutions: &none,
        });
        let once = t.elapsed();
        let peak = PEAK.load(Ordering::Relaxed) - before;
        assert!(p.is_noop());
        println!(
            "plan {size} objects (fabric count {}, IPAM {} objects): first plan {} ops; steady plan one run {:?}, peak extra heap {:.1} MiB",
            fabric.object_count(),
            ipam.object_count(),
            first.ipam_ops.len(),
            once,
            peak as f64 / 1048576.0
        );
        g.bench_function(format!("steady_{size}"), |b| {
            b.iter(|| {
                plan(&PlanInput {
                    fabric: &fabric,
                    service: &svc,
                    ipam: &ipam,
                    ipam_complete: true,
                    base: &base,
                    resolutions: &none,
                })
            })
        });
        g.bench_function(format!("first_{size}"), |b| {
            b.iter(|| {
                plan(&PlanInput {
                    fabric: &fabric,
                    service: &svc,
                    ipam: &empty,
                    ipam_complete: true,
                    base: &base0,
                    resolutions: &none,
                })
            })
        });
    }
    g.finish();
}

fn end_to_end(_c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = server::start(ServerConfig::ephemeral()).await.unwrap();
        let token = server.issue_token(Role::AsmAdministrator);
        let store = FabricStore::open_in_memory().unwrap();
        let demo = demo_fabric(if measuring() { 10_000 } else { 500 }, 11);
        let mut fabric = demo.clone();
        let mut svc = service(&fabric);
        svc.connection = ConnectionString::parse(&server.addr().to_string()).unwrap();
        fabric.network_services.insert(svc.id, svc.clone());
        store.replace_all(fabric.clone()).unwrap();
        let secrets: Arc<dyn SecretStore> = Arc::new(MemorySecretStore::default());
        secrets.put(svc.run_as, &token).unwrap();
        let mut ctx = EngineContext::new(store.clone(), secrets, Arc::new(ProviderRegistry::default_registry()), None);
        ctx.periodic = false;
        let engine = Engine::start(ctx).unwrap();
        let r0 = server.request_count();
        let t = Instant::now();
        let job = engine.sync_now(svc.id, JobTrigger::Refresh).await.unwrap();
        let first = t.elapsed();
        let r1 = server.request_count();
        println!(
            "first sync of a {}-object fabric: {:?}, {} HTTP requests, result {:?}, {} IPAM objects created, errors {}",
            fabric.object_count(), first, r1 - r0, job.result, job.counts.ipam_created, job.errors.len()
        );
        for _ in 0..3 {
            let t = Instant::now();
            let r0 = server.request_count();
            let job = engine.sync_now(svc.id, JobTrigger::Refresh).await.unwrap();
            println!(
                "no-op refresh: {:?}, {} HTTP requests, {} changes",
                t.elapsed(), server.request_count() - r0, job.counts.total_changes()
            );
        }
        server.shutdown().await;
    });
}

criterion_group!(benches, plan_benches, end_to_end);
criterion_main!(benches);
