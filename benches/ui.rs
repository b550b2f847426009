//! How long the console takes to build its view and to handle an engine event, on a 10k-object
//! fabric with the embedded IPAM service: the work done on the UI thread per frame and per event.

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use fabric_console::fabric::connection::ConnectionString;
use fabric_console::fabric::demo::demo_fabric;
use fabric_console::fabric::model::{
    FabricChange, FabricObject, HostGroupScope, NetworkService, ServiceCategory,
};
use fabric_console::fabric::secrets::{MemorySecretStore, SecretStore};
use fabric_console::fabric::store::FabricStore;
use fabric_console::ipam::builtin;
use fabric_console::ipam::registry::ProviderRegistry;
use fabric_console::sync::engine::{Engine, EngineContext};
use fabric_console::sync::status::{EngineEvent, SyncStage};
use fabric_console::ui::engine_events::EngineNotice;
use fabric_console::ui::preferences::Preferences;
use fabric_console::ui::screen::fabric_workspace::{Message as FabricMessage, Node};
use fabric_console::ui::{App, AppContext, Message};
use uuid::Uuid;

fn console(size: usize) -> (tokio::runtime::Runtime, App, uuid::Uuid) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let store = FabricStore::open_in_memory().expect("store");
    let fabric = demo_fabric(size, 1);
    let run_as = fabric
        .run_as_accounts
        .keys()
        .next()
        .copied()
        .expect("account");
    store.replace_all(fabric).expect("fabric");
    let service = NetworkService {
        id: Uuid::new_v4(),
        name: "IPAM".into(),
        description: String::new(),
        category: ServiceCategory::NetworkManager,
        manufacturer: builtin::MANUFACTURER.into(),
        model: builtin::MODEL.into(),
        connection: ConnectionString::parse("127.0.0.1:9").expect("connection"),
        run_as,
        provider: builtin::PROVIDER_ID.into(),
        scope: HostGroupScope::All,
        sync_interval_secs: 3600,
        tls_fingerprint: None,
        tls_ca_file: None,
        allow_cleartext: false,
        event_source: None,
        sync_on_change: true,
    };
    let id = service.id;
    store
        .apply(&[FabricChange::Put(FabricObject::NetworkService(service))])
        .expect("service");
    let secrets: Arc<dyn SecretStore> = Arc::new(MemorySecretStore::new());
    let registry = Arc::new(ProviderRegistry::default_registry());
    let mut ctx = EngineContext::new(store.clone(), secrets.clone(), registry.clone(), None);
    ctx.periodic = false;
    let engine = runtime
        .block_on(async { Engine::start(ctx) })
        .expect("engine");
    let app = App::with_context(
        AppContext::new(store, secrets, registry, engine),
        Preferences::default(),
    );
    (runtime, app, id)
}

fn bench(c: &mut Criterion) {
    let (_runtime, mut app, service) = console(10_000);
    let mut group = c.benchmark_group("ui_10k");
    group.bench_function("view_network_service", |b| b.iter(|| drop(app.view())));
    let _ = app.update(Message::Fabric(FabricMessage::SelectNode(
        Node::LogicalNetworks,
    )));
    group.bench_function("view_logical_networks", |b| b.iter(|| drop(app.view())));
    let _ = app.update(Message::Fabric(FabricMessage::SelectNode(Node::Servers)));
    group.bench_function("view_host_groups", |b| b.iter(|| drop(app.view())));
    let _ = app.update(Message::Fabric(FabricMessage::SelectNode(
        Node::NetworkService,
    )));
    let mut done = 0u64;
    group.bench_function("update_progress_event", |b| {
        b.iter(|| {
            done += 1;
            let _ = app.update(Message::Engine(EngineNotice::Event(
                EngineEvent::Progress {
                    service,
                    stage: SyncStage::ApplyingIpam,
                    done: done % 10_000,
                    total: 10_000,
                },
            )));
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
