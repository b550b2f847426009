//! An engine over a console's data folder, as the console or a `sync` command would start it,
//! without the periodic sync (tests sync when they choose).

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
    let mut ctx = EngineContext::new(
        store.clone(),
        secrets.clone(),
        Arc::new(ProviderRegistry::default_registry()),
        Some(dir.join("sync.db")),
    );
    ctx.periodic = false;
    Engine::start(ctx).expect("engine starts")
}

/// The same engine as the console runs it: periodic syncs, and listening for server changes.
#[allow(dead_code)]
pub fn live_engine_over(
    store: &FabricStore,
    secrets: &Arc<dyn SecretStore>,
    dir: &Path,
) -> EngineHandle {
    let mut ctx = EngineContext::new(
        store.clone(),
        secrets.clone(),
        Arc::new(ProviderRegistry::default_registry()),
        Some(dir.join("sync.db")),
    );
    ctx.periodic = true;
    Engine::start(ctx).expect("engine starts")
}
