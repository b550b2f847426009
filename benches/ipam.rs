//! Bulk writes and full reads through the built-in provider against the built-in IPAM server
//! over loopback: 10k subnets + 10k ranges applied in batches of 1000, then one full snapshot.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fabric_console::fabric::connection::ConnectionString;
use fabric_console::fabric::model::PoolSettings;
use fabric_console::ipam::builtin::BuiltinProviderFactory;
use fabric_console::ipam::model::{
    AddressSpace, AddressSpaceKind, IpRange, IpamOp, IpamSubnet, SnapshotRead, SnapshotScope,
};
use fabric_console::ipam::provider::{
    Credentials, IpamProvider, OpOutcome, ProviderConfig, ProviderFactory,
};
use fabric_console::ipam_server::{self as server, Role, RunningServer, ServerConfig};

const SPACES: usize = 10;
const SUBNETS: usize = 10_000;
const BATCH: usize = 1000;

fn operations() -> Vec<IpamOp> {
    let mut ops = Vec::with_capacity(SPACES + 2 * SUBNETS);
    for s in 0..SPACES {
        ops.push(IpamOp::CreateSpace(AddressSpace {
            id: format!("space-{s}").into(),
            vmm_id: None,
            name: format!("LN{s}"),
            kind: AddressSpaceKind::Provider,
            description: String::new(),
            vmm_logical_network: Some(format!("LN{s}")),
            vm_network: None,
            provider_space: None,
            tenant: String::new(),
            owner: "VMM".into(),
        }));
    }
    for i in 0..SUBNETS {
        let (a, b) = (i / 256, i % 256);
        let subnet = format!("subnet-{i}");
        ops.push(IpamOp::CreateSubnet(IpamSubnet {
            id: subnet.clone().into(),
            vmm_id: Some(uuid::Uuid::new_v4()),
            address_space: format!("space-{}", i % SPACES).into(),
            network: format!("10.{a}.{b}.0/24").parse().unwrap(),
            name: format!("10.{a}.{b}.0/24"),
            network_type: "Provider".into(),
            vmm_logical_network: Some(format!("LN{}", i % SPACES)),
            network_site: Some(format!("site-{}", i % 100)),
            vlan: (i % 4000) as u16,
            secondary_vlan: None,
            owner: "VMM".into(),
            custom_fields: Default::default(),
        }));
        ops.push(IpamOp::CreateRange(IpRange {
            id: format!("range-{i}").into(),
            vmm_id: Some(uuid::Uuid::new_v4()),
            subnet: subnet.into(),
            name: format!("pool-{i}"),
            description: String::new(),
            start: format!("10.{a}.{b}.10").parse().unwrap(),
            end: format!("10.{a}.{b}.200").parse().unwrap(),
            settings: PoolSettings {
                reserved: [format!("10.{a}.{b}.11").parse().unwrap()].into(),
                vips: Default::default(),
                gateways: vec![],
                dns_servers: vec![format!("10.{a}.{b}.2").parse().unwrap()],
                dns_suffix: "corp.example".into(),
                dns_search_suffixes: vec![],
                wins_servers: vec![],
                netbios_enabled: false,
            },
            managed_by_service: "VMM".into(),
            service_instance: "bench".into(),
        }));
    }
    ops
}

async fn connect(server: &RunningServer) -> Arc<dyn IpamProvider> {
    let token = server.issue_token(Role::AsmAdministrator);
    BuiltinProviderFactory::new()
        .connect(ProviderConfig {
            connection: ConnectionString::parse(&server.base_url()).unwrap(),
            credentials: Credentials {
                user_name: "bench".into(),
                secret: token,
            },
            trust: fabric_console::fabric::model::TlsTrust::default(),
            service_name: "bench".into(),
            event_source: None,
        })
        .unwrap()
}

async fn apply_all(provider: &dyn IpamProvider, ops: &[IpamOp]) {
    for chunk in ops.chunks(BATCH) {
        let outcomes = provider.apply(chunk).await.expect("batch");
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, OpOutcome::Applied { .. }))
        );
    }
}

fn ipam(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ops = operations();
    let objects = ops.len() as u64;

    // One measured pass for the request counts.
    rt.block_on(async {
        let server = server::start(ServerConfig::ephemeral()).await.unwrap();
        let provider = connect(&server).await;
        let r0 = server.request_count();
        let t = Instant::now();
        apply_all(provider.as_ref(), &ops).await;
        let write = t.elapsed();
        let r1 = server.request_count();
        let t = Instant::now();
        let snap = provider.snapshot(&SnapshotScope::All, None).await.unwrap();
        let read = t.elapsed();
        let r2 = server.request_count();
        let SnapshotRead::Full(snap) = snap else {
            panic!("full snapshot expected")
        };
        assert_eq!(snap.object_count() as u64, objects);
        println!(
            "ipam: {objects} objects; bulk create {} HTTP requests, {:.0} objects/s; full snapshot {} HTTP requests, {:.0} objects/s",
            r1 - r0,
            objects as f64 / write.as_secs_f64(),
            r2 - r1,
            objects as f64 / read.as_secs_f64()
        );
        server.shutdown().await;
    });

    let mut group = c.benchmark_group("ipam");
    group.sample_size(10);
    group.throughput(Throughput::Elements(objects));
    group.bench_function("bulk_create_10k_subnets_10k_ranges", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let server = server::start(ServerConfig::ephemeral()).await.unwrap();
                    let provider = connect(&server).await;
                    let t = Instant::now();
                    apply_all(provider.as_ref(), &ops).await;
                    total += t.elapsed();
                    server.shutdown().await;
                }
                total
            })
        })
    });

    let (server, provider) = rt.block_on(async {
        let server = server::start(ServerConfig::ephemeral()).await.unwrap();
        let provider = connect(&server).await;
        apply_all(provider.as_ref(), &ops).await;
        (server, provider)
    });
    group.bench_function("full_snapshot_20k", |b| {
        b.iter(|| {
            rt.block_on(async {
                black_box(provider.snapshot(&SnapshotScope::All, None).await.unwrap())
            })
        })
    });
    group.finish();
    rt.block_on(server.shutdown());
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(10)).warm_up_time(Duration::from_secs(1));
    targets = ipam
}
criterion_main!(benches);
