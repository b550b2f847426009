//! An engine over a console's data folder, as a `sync` command starts it (no periodic sync:
//! tests sync when they choose), or as the console runs it (periodic, listening for changes).

use std::path::Path;
use std::sync::Arc;

use fabric_console::fabric::secrets::SecretStore;
use fabric_console::fabric::store::FabricStore;
use fabric_console::ipam::registry::ProviderRegistry;
use fabric_console::sync::engine::{Engine, EngineContext, EngineHandle};

#[allow(dead_code)]
pub fn engine_over(
    store: &FabricStore,
    secrets: &Arc<dyn SecretStore>,
    dir: &Path,
) -> EngineHandle {
    engine_with(store, secrets, dir, false)
}

/// The same engine as the console runs it: periodic syncs, and listening for server changes.
#[allow(dead_code)]
pub fn live_engine_over(
    store: &FabricStore,
    secrets: &Arc<dyn SecretStore>,
    dir: &Path,
) -> EngineHandle {
    engine_with(store, secrets, dir, true)
}

fn engine_with(
    store: &FabricStore,
    secrets: &Arc<dyn SecretStore>,
    dir: &Path,
    periodic: bool,
) -> EngineHandle {
    engine_tuned(store, secrets, dir, |ctx| ctx.periodic = periodic)
}

/// `engine_over` with its context changed by `tune` first.
#[allow(dead_code)]
pub fn engine_tuned(
    store: &FabricStore,
    secrets: &Arc<dyn SecretStore>,
    dir: &Path,
    tune: impl FnOnce(&mut EngineContext),
) -> EngineHandle {
    let mut ctx = EngineContext::new(
        store.clone(),
        secrets.clone(),
        Arc::new(ProviderRegistry::default_registry()),
        Some(dir.join("sync.db")),
    );
    ctx.periodic = false;
    tune(&mut ctx);
    Engine::start(ctx).expect("engine starts")
}

/// A demo fabric of `size` objects in a console data folder, one network service on a built-in
/// server on loopback, and the service's token in the secret store: what the scale benchmarks
/// start from.
#[allow(dead_code)]
pub struct DemoOverServer {
    pub server: fabric_console::ipam_server::RunningServer,
    pub token: String,
    pub store: FabricStore,
    pub secrets: Arc<dyn SecretStore>,
    pub service: fabric_console::fabric::model::NetworkService,
    /// Objects in the demo fabric.
    pub objects: usize,
}

#[allow(dead_code)]
pub async fn demo_over_server(dir: &Path, size: usize, name: &str) -> DemoOverServer {
    use fabric_console::fabric::connection::ConnectionString;
    use fabric_console::fabric::model::*;
    use fabric_console::ipam_server::{self as server, ServerConfig, auth::Role};
    let server = server::start(ServerConfig::ephemeral()).await.unwrap();
    let token = server.issue_token(Role::AsmAdministrator);
    let store = FabricStore::open(&dir.join("fabric.db")).unwrap();
    let mut fabric = fabric_console::fabric::demo::demo_fabric(size, 11);
    let account = *fabric.run_as_accounts.keys().next().unwrap();
    let service = fabric_console::ops::service::new_service(
        &fabric_console::ipam::builtin::descriptor(),
        name.into(),
        String::new(),
        ConnectionString::parse(&server.base_url()).unwrap(),
        account,
        HostGroupScope::All,
        300,
    );
    fabric.network_services.insert(service.id, service.clone());
    let objects = fabric.object_count();
    store.replace_all(fabric).unwrap();
    let secrets: Arc<dyn SecretStore> =
        Arc::new(fabric_console::fabric::secrets::MemorySecretStore::default());
    secrets.put(account, &token).unwrap();
    DemoOverServer {
        server,
        token,
        store,
        secrets,
        service,
        objects,
    }
}

/// Waits until the engine says the service's server tells it of each change (`limit` at most).
#[allow(dead_code)]
pub async fn wait_live(
    engine: &EngineHandle,
    service: fabric_console::fabric::model::Id,
    limit: std::time::Duration,
) {
    use fabric_console::sync::status::Updates;
    let deadline = std::time::Instant::now() + limit;
    while !matches!(
        engine.status(service).map(|s| s.updates),
        Some(Updates::Live { .. })
    ) {
        assert!(
            std::time::Instant::now() < deadline,
            "not live within {limit:?}: {:?}",
            engine.status(service)
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// How many syncs finished after `t`: the ones a burst of edits that began at `t` caused (one
/// running then may have taken some of them).
#[allow(dead_code)]
pub fn syncs_finished_after(engine: &EngineHandle, t: chrono::DateTime<chrono::Utc>) -> usize {
    engine
        .jobs()
        .iter()
        .filter(|j| j.finished.is_some_and(|f| f > t))
        .count()
}

/// Removes a network service from the console and waits until the engine runs no job: its
/// listener and worker stop, so a clean-up of the server afterwards is not synced back.
#[allow(dead_code)]
pub async fn retire_service(
    store: &FabricStore,
    engine: &EngineHandle,
    service: fabric_console::fabric::model::Id,
) {
    use fabric_console::fabric::model::{FabricChange, ObjectKind};
    store
        .apply(&[FabricChange::Delete(ObjectKind::NetworkService, service)])
        .expect("the service is removed");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while engine.jobs().iter().any(|j| j.finished.is_none()) {
        assert!(std::time::Instant::now() < deadline, "a job still runs");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
