//! Starting the console: a tokio runtime for the engine and the embedded IPAM server, the store,
//! the secret store, the first-run "Embedded IPAM Administrator" account, and `--demo`.
//!
//! `--demo` keeps its own fabric under `<data dir>/demo/` and starts it afresh from the demo
//! fabric every time, so a demo never touches the administrator's real fabric; the embedded IPAM
//! server is added there as a network service and synced at once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use uuid::Uuid;

use crate::fabric::connection::ConnectionString;
use crate::fabric::model::{
    FabricChange, FabricObject, HostGroupScope, Id, NetworkService, RunAsAccount, ServiceCategory,
};
use crate::fabric::secrets::SecretStore;
use crate::fabric::store::FabricStore;
use crate::ipam::builtin;
use crate::ipam::registry::ProviderRegistry;
use crate::ipam_server::{self as server, RunningServer, ServerConfig};
use crate::paths::DataPaths;
use crate::sync::engine::{Engine, EngineContext};
use crate::sync::status::{EngineCommand, JobTrigger};
use crate::ui::context::{AppContext, EmbeddedIpam};
use crate::ui::preferences::Preferences;

/// Name of the Run As account created on first run for the embedded IPAM server.
pub const EMBEDDED_ACCOUNT: &str = "Embedded IPAM Administrator";
/// Name of the network service `--demo` adds for the embedded IPAM server.
pub const DEMO_SERVICE: &str = "Embedded IPAM";
/// Objects in the demo fabric: enough to look real, small enough to sync in seconds.
pub const DEMO_SIZE: usize = 400;
const DEMO_SEED: u64 = 2016;

/// `FABRIC_CONSOLE_DEMO_SIZE` overrides the demo's size (e.g. 10000 to watch a large sync).
fn demo_size() -> usize {
    std::env::var("FABRIC_CONSOLE_DEMO_SIZE")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| (1..=1_000_000).contains(n))
        .unwrap_or(DEMO_SIZE)
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("Cannot start the console's background runtime: {0}")]
    Runtime(std::io::Error),
    #[error(
        "Cannot open the fabric database {path}: {detail}. Check the data directory's permissions or pass --data-dir."
    )]
    Store { path: PathBuf, detail: String },
    #[error("Cannot start the embedded IPAM server: {0}")]
    Server(String),
    #[error("Cannot prepare the embedded IPAM server's Run As account: {0}")]
    Account(String),
    #[error("Cannot start the sync engine: {0}")]
    Engine(String),
    #[error("The console window failed: {0}")]
    Window(String),
}

/// Where `--demo` keeps its fabric, sync state, secrets and embedded IPAM data.
pub fn demo_paths(paths: &DataPaths) -> DataPaths {
    DataPaths::in_dir(&paths.data_dir.join("demo"))
}

/// What `start` hands to the window: the context, the preferences, and the server to keep alive.
pub struct Started {
    pub context: AppContext,
    pub preferences: Preferences,
    pub server: RunningServer,
}

/// Start everything the console needs on the current tokio runtime.
pub async fn start(
    paths: &DataPaths,
    secrets: Arc<dyn SecretStore>,
    demo: bool,
) -> Result<Started, StartError> {
    let settings_file = paths.settings_file();
    let mut preferences = Preferences::load(&settings_file);
    let fabric_db = paths.fabric_db();
    let store_err = |e: &dyn std::fmt::Display| StartError::Store {
        path: fabric_db.clone(),
        detail: e.to_string(),
    };
    if demo {
        // A fresh demo every time: the previous demo's files go first.
        for p in [paths.fabric_db(), paths.sync_db()] {
            let _ = std::fs::remove_file(&p);
            for suffix in ["-wal", "-shm"] {
                let mut side = p.clone().into_os_string();
                side.push(suffix);
                let _ = std::fs::remove_file(PathBuf::from(side));
            }
        }
        let _ = std::fs::remove_dir_all(paths.embedded_ipam_dir());
    }
    paths.create_dirs().map_err(|e| store_err(&e))?;
    let store = FabricStore::open(&fabric_db).map_err(|e| store_err(&e))?;
    if demo {
        store
            .replace_all_async(crate::fabric::demo::demo_fabric(demo_size(), DEMO_SEED))
            .await
            .map_err(|e| store_err(&e))?;
    }

    // The demo's server gets any free port and never moves the real fabric's services.
    let remembered = if demo {
        None
    } else {
        preferences.embedded_ipam_port
    };
    let server = start_server(paths, remembered).await?;
    let connection = ConnectionString::parse(&server.connection_string())
        .map_err(|e| StartError::Server(e.to_string()))?;
    let run_as = ensure_embedded_account(&store, &secrets, &server).await?;
    move_embedded_services(&store, remembered, &connection).await?;
    if !demo && preferences.embedded_ipam_port != Some(server.addr().port()) {
        preferences.embedded_ipam_port = Some(server.addr().port());
        if let Err(e) = preferences.save(&settings_file) {
            tracing::warn!(error = %e, "could not save the console's settings");
        }
    }
    let demo_service = if demo {
        Some(add_demo_service(&store, &connection, run_as).await?)
    } else {
        None
    };

    let registry = Arc::new(ProviderRegistry::default_registry());
    let mut engine_ctx = EngineContext::new(
        store.clone(),
        secrets.clone(),
        registry.clone(),
        Some(paths.sync_db()),
    );
    engine_ctx.periodic = true;
    let engine = Engine::start(engine_ctx).map_err(|e| StartError::Engine(e.to_string()))?;
    let mut context = AppContext::new(store, secrets, registry, engine);
    context.preferences_file = Some(settings_file);
    context.embedded_ipam = Some(EmbeddedIpam { connection, run_as });
    if let Some(id) = demo_service {
        context.send(EngineCommand::RefreshNow {
            service: id,
            trigger: JobTrigger::FirstSync,
        });
    }
    Ok(Started {
        context,
        preferences,
        server,
    })
}

/// Loopback only; the last port first so services added earlier keep their address.
async fn start_server(paths: &DataPaths, port: Option<u16>) -> Result<RunningServer, StartError> {
    let config = |port: u16| ServerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], port)),
        data_dir: Some(paths.embedded_ipam_dir()),
        ..ServerConfig::ephemeral()
    };
    if let Some(p) = port {
        match server::start(config(p)).await {
            Ok(s) => return Ok(s),
            Err(e) => {
                tracing::info!(error = %e, "embedded IPAM server's last port is taken; using another")
            }
        }
    }
    server::start(config(0))
        .await
        .map_err(|e| StartError::Server(e.to_string()))
}

/// First run: the account and a fresh administrator token in the secret store.
/// Later runs: reuse both; a lost secret gets a new token.
async fn ensure_embedded_account(
    store: &FabricStore,
    secrets: &Arc<dyn SecretStore>,
    server: &RunningServer,
) -> Result<Id, StartError> {
    let fabric = store.fabric();
    let existing = fabric
        .run_as_accounts
        .values()
        .find(|a| a.name == EMBEDDED_ACCOUNT)
        .cloned();
    let account = existing.clone().unwrap_or_else(|| RunAsAccount {
        id: Uuid::new_v4(),
        name: EMBEDDED_ACCOUNT.to_string(),
        description: "Administrator of the IPAM server built into this console".to_string(),
        user_name: "administrator".to_string(),
    });
    let id = account.id;
    let s = secrets.clone();
    let has_secret = tokio::task::spawn_blocking(move || s.get(id))
        .await
        .map_err(|e| StartError::Account(e.to_string()))?
        .map_err(|e| StartError::Account(e.to_string()))?
        .is_some();
    if !has_secret {
        let token = server
            .try_issue_token(server::Role::AsmAdministrator)
            .map_err(|e| StartError::Account(e.to_string()))?;
        let s = secrets.clone();
        tokio::task::spawn_blocking(move || s.put(id, &token))
            .await
            .map_err(|e| StartError::Account(e.to_string()))?
            .map_err(|e| StartError::Account(e.to_string()))?;
    }
    if existing.is_none() {
        store
            .apply_async(vec![FabricChange::Put(FabricObject::RunAsAccount(account))])
            .await
            .map_err(|e| StartError::Account(e.to_string()))?;
    }
    Ok(id)
}

/// The embedded server moved to another port: point the services that used it at the new one.
async fn move_embedded_services(
    store: &FabricStore,
    old_port: Option<u16>,
    connection: &ConnectionString,
) -> Result<(), StartError> {
    let Some(old_port) = old_port.filter(|p| Some(*p) != connection.port) else {
        return Ok(());
    };
    let changes: Vec<FabricChange> = store
        .fabric()
        .network_services
        .values()
        .filter(|s| {
            s.provider == builtin::PROVIDER_ID
                && s.connection.host == connection.host
                && s.connection.port == Some(old_port)
        })
        .map(|s| {
            FabricChange::Put(FabricObject::NetworkService(NetworkService {
                connection: connection.clone(),
                ..s.clone()
            }))
        })
        .collect();
    if changes.is_empty() {
        return Ok(());
    }
    store
        .apply_async(changes)
        .await
        .map(|_| ())
        .map_err(|e| StartError::Server(format!("cannot move services to the new port: {e}")))
}

async fn add_demo_service(
    store: &FabricStore,
    connection: &ConnectionString,
    run_as: Id,
) -> Result<Id, StartError> {
    if let Some(s) = store
        .fabric()
        .network_services
        .values()
        .find(|s| s.name == DEMO_SERVICE)
    {
        return Ok(s.id);
    }
    let service = NetworkService {
        id: Uuid::new_v4(),
        name: DEMO_SERVICE.to_string(),
        description: "The IPAM server built into this console".to_string(),
        category: ServiceCategory::NetworkManager,
        manufacturer: builtin::MANUFACTURER.to_string(),
        model: builtin::MODEL.to_string(),
        connection: connection.clone(),
        run_as,
        provider: builtin::PROVIDER_ID.to_string(),
        scope: HostGroupScope::All,
        sync_interval_secs: 60,
        tls_fingerprint: None,
    };
    let id = service.id;
    store
        .apply_async(vec![FabricChange::Put(FabricObject::NetworkService(
            service,
        ))])
        .await
        .map_err(|e| StartError::Store {
            path: store.path().map(PathBuf::from).unwrap_or_default(),
            detail: e.to_string(),
        })?;
    Ok(id)
}
