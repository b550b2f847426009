//! Starting the back end on a data directory: the fabric store, the secret store, the provider
//! registry, the sync engine, the embedded built-in IPAM server and the demos.
//!
//! The console's `--demo` keeps its own fabric under `<data dir>/demo/` and starts it afresh from
//! the demo fabric every time, so a demo never touches the administrator's real fabric; the
//! embedded IPAM server is added there as a network service and synced at once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use uuid::Uuid;

use crate::fabric::connection::ConnectionString;
use crate::fabric::model::{
    FabricChange, FabricObject, HostGroupScope, Id, NetworkService, RunAsAccount,
};
use crate::fabric::secrets::SecretStore;
use crate::fabric::store::{FabricStore, StoreError};
use crate::ipam::builtin;
use crate::ipam::registry::ProviderRegistry;
use crate::ipam_server::{self as server, RunningServer, ServerConfig};
use crate::paths::DataPaths;
use crate::sync::engine::{Engine, EngineContext, EngineError, EngineHandle};

use super::off_thread;
use super::service::new_service;

/// Name of the Run As account created on first run for the embedded IPAM server.
pub const EMBEDDED_ACCOUNT: &str = "Embedded IPAM Administrator";
/// Name of the network service `--demo` adds for the embedded IPAM server.
pub const DEMO_SERVICE: &str = "Embedded IPAM";
/// Objects in the demo fabric: enough to look real, small enough to sync in seconds.
pub const DEMO_SIZE: usize = 400;
const DEMO_SEED: u64 = 2016;
/// Name of the Run As account `demo --with-ipam` keeps the in-process server's token in.
pub const DEMO_IPAM_ACCOUNT: &str = "Demo IPAM Administrator";

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
    Store { path: String, detail: String },
    #[error("Cannot start the embedded IPAM server: {0}")]
    Server(String),
    #[error("Cannot prepare the embedded IPAM server's Run As account: {0}")]
    Account(String),
    #[error("Cannot start the sync engine: {0}")]
    Engine(String),
    #[error("The console window failed: {0}")]
    Window(String),
}

impl StartError {
    /// The underlying reason alone, as the command line prints it.
    pub fn detail(&self) -> String {
        match self {
            Self::Runtime(e) => e.to_string(),
            Self::Store { detail, .. } => detail.clone(),
            Self::Server(d) | Self::Account(d) | Self::Engine(d) | Self::Window(d) => d.clone(),
        }
    }
}

/// Where `--demo` keeps its fabric, sync state, secrets and embedded IPAM data.
pub fn demo_paths(paths: &DataPaths) -> DataPaths {
    DataPaths::in_dir(&paths.data_dir.join("demo"))
}

pub fn open_store(paths: &DataPaths) -> Result<FabricStore, StoreError> {
    FabricStore::open_at(&paths.location(), false)
}

/// The store for a command that may have nothing to do (`sync`): the rest of the fabric is read
/// only when a sync needs it.
pub fn open_store_lazily(paths: &DataPaths) -> Result<FabricStore, StoreError> {
    FabricStore::open_at(&paths.location(), true)
}

/// Who runs an engine: the console (background syncs on) or a command (syncs only when asked).
/// The name is what another process shows while it waits for this one's sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runner {
    Console,
    Command(&'static str),
    /// `sync --follow`: the engine without a window, syncing on changes and at the interval,
    /// for these services (`None`: all).
    Follow(Option<std::collections::BTreeSet<crate::fabric::model::Id>>),
}

/// The sync engine on the caller's tokio runtime, its state kept in the data directory.
pub fn start_engine(
    paths: &DataPaths,
    store: &FabricStore,
    secrets: Arc<dyn SecretStore>,
    registry: Arc<ProviderRegistry>,
    runner: Runner,
) -> Result<EngineHandle, EngineError> {
    let mut ctx = EngineContext::new(store.clone(), secrets, registry, Some(paths.sync_db()));
    ctx.database = paths.database.clone();
    ctx.periodic = matches!(runner, Runner::Console | Runner::Follow(_));
    ctx.usage_levels = crate::fabric::usage::UsageLevels::from_settings(&paths.settings_file());
    match runner {
        Runner::Command(name) => ctx.program = name.to_string(),
        Runner::Follow(only) => {
            ctx.program = "fabric-console sync --follow".to_string();
            ctx.only = only;
        }
        Runner::Console => {}
    }
    Engine::start(ctx)
}

/// What the console runs on: the back end, and the embedded server to keep alive.
pub struct Console {
    pub store: FabricStore,
    pub secrets: Arc<dyn SecretStore>,
    pub registry: Arc<ProviderRegistry>,
    pub engine: EngineHandle,
    pub server: RunningServer,
    /// The embedded server's connection string and its administrator account.
    pub embedded: (ConnectionString, Id),
    /// `--demo`'s service, to be synced at once.
    pub demo_service: Option<Id>,
}

/// Start everything the console needs on the current tokio runtime. `remembered_port` is the
/// embedded server's port from the last run, so services added earlier keep their address.
pub async fn start_console(
    paths: &DataPaths,
    secrets: Arc<dyn SecretStore>,
    demo: bool,
    remembered_port: Option<u16>,
) -> Result<Console, StartError> {
    let fabric_db = paths.fabric_shown();
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
    let store = open_store(paths).map_err(|e| store_err(&e))?;
    if demo {
        let fabric = store
            .replace_all_async(crate::fabric::demo::demo_fabric(demo_size(), DEMO_SEED))
            .await
            .map_err(|e| store_err(&e))?;
        let requests = crate::fabric::demo::demo_grants(&fabric, DEMO_SEED);
        let granting = store.clone();
        tokio::task::spawn_blocking(move || granting.grant_batch(&requests))
            .await
            .map_err(|e| store_err(&e))?
            .map_err(|e| store_err(&e))?;
    }
    // The demo's server gets any free port and never moves the real fabric's services.
    let remembered = remembered_port.filter(|_| !demo);
    let server = start_embedded_server(paths, remembered).await?;
    let connection = ConnectionString::parse(&server.connection_string())
        .map_err(|e| StartError::Server(e.to_string()))?;
    let account = (
        EMBEDDED_ACCOUNT,
        "Administrator of the IPAM server built into this console",
        "administrator",
    );
    let run_as = server_account(&store, &secrets, &server, account, false).await?;
    move_embedded_services(&store, remembered, &connection).await?;
    let demo_service = if demo {
        Some(add_demo_service(&store, &connection, run_as).await?)
    } else {
        None
    };
    let registry = Arc::new(ProviderRegistry::default_registry());
    let engine = start_engine(
        paths,
        &store,
        secrets.clone(),
        registry.clone(),
        Runner::Console,
    )
    .map_err(|e| StartError::Engine(e.to_string()))?;
    Ok(Console {
        store,
        secrets,
        registry,
        engine,
        server,
        embedded: (connection, run_as),
        demo_service,
    })
}

/// Loopback only; the last port first so services added earlier keep their address.
async fn start_embedded_server(
    paths: &DataPaths,
    port: Option<u16>,
) -> Result<RunningServer, StartError> {
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

/// The account `(name, description, user name)` holding an administrator token of `server`:
/// reused when it exists, created otherwise. A new token is issued when `fresh_token` asks or
/// none is stored.
async fn server_account(
    store: &FabricStore,
    secrets: &Arc<dyn SecretStore>,
    server: &RunningServer,
    (name, description, user_name): (&str, &str, &str),
    fresh_token: bool,
) -> Result<Id, StartError> {
    let account_err = |e: &dyn std::fmt::Display| StartError::Account(e.to_string());
    let existing = store
        .fabric()
        .run_as_accounts
        .values()
        .find(|a| a.name == name)
        .cloned();
    let account = existing.clone().unwrap_or_else(|| RunAsAccount {
        id: Uuid::new_v4(),
        name: name.to_string(),
        description: description.to_string(),
        user_name: user_name.to_string(),
    });
    let id = account.id;
    let s = secrets.clone();
    let has_secret = !fresh_token
        && off_thread(move || s.get(id))
            .await
            .map_err(|e| account_err(&e))?
            .map_err(|e| account_err(&e))?
            .is_some();
    if !has_secret {
        let token = server
            .try_issue_token(server::Role::AsmAdministrator)
            .map_err(|e| account_err(&e))?;
        let s = secrets.clone();
        off_thread(move || s.put(id, &token))
            .await
            .map_err(|e| account_err(&e))?
            .map_err(|e| account_err(&e))?;
    }
    if existing.is_none() {
        store
            .apply_async(vec![FabricChange::Put(FabricObject::RunAsAccount(account))])
            .await
            .map_err(|e| account_err(&e))?;
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

/// A network service of the built-in provider over every host group.
fn builtin_service(
    name: String,
    description: &str,
    connection: ConnectionString,
    run_as: Id,
    sync_interval_secs: u64,
) -> NetworkService {
    new_service(
        &builtin::descriptor(),
        name,
        description.to_string(),
        connection,
        run_as,
        HostGroupScope::All,
        sync_interval_secs,
    )
}

async fn put_service(store: &FabricStore, service: NetworkService) -> Result<(), StoreError> {
    store
        .apply_async(vec![FabricChange::Put(FabricObject::NetworkService(
            service,
        ))])
        .await
        .map(|_| ())
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
    let service = builtin_service(
        DEMO_SERVICE.to_string(),
        "The IPAM server built into this console",
        connection.clone(),
        run_as,
        60,
    );
    let id = service.id;
    put_service(store, service)
        .await
        .map_err(|e| StartError::Store {
            path: store.describe().to_string(),
            detail: e.to_string(),
        })?;
    Ok(id)
}

/// `demo --with-ipam`: the built-in IPAM server in-process, added as a network service with a
/// fresh token, and an engine that syncs only when asked.
pub struct DemoIpam {
    pub server: RunningServer,
    pub service: NetworkService,
    pub engine: EngineHandle,
}

pub async fn start_demo_ipam(
    paths: &DataPaths,
    store: &FabricStore,
    secrets: Arc<dyn SecretStore>,
) -> Result<DemoIpam, StartError> {
    let server = server::start(ServerConfig::ephemeral())
        .await
        .map_err(|e| StartError::Server(e.to_string()))?;
    let account = (
        DEMO_IPAM_ACCOUNT,
        "Token of the in-process IPAM server started by `demo --with-ipam`",
        "asm-administrator",
    );
    let run_as = server_account(store, &secrets, &server, account, true).await?;
    let connection = ConnectionString::parse(&server.addr().to_string())
        .map_err(|e| StartError::Server(e.to_string()))?;
    let service = builtin_service(
        format!("Demo IPAM ({})", server.addr()),
        "In-process built-in IPAM server; it stops when the command ends",
        connection,
        run_as,
        300,
    );
    put_service(store, service.clone())
        .await
        .map_err(|e| StartError::Store {
            path: paths.fabric_shown(),
            detail: e.to_string(),
        })?;
    let registry = Arc::new(ProviderRegistry::default_registry());
    let engine = start_engine(
        paths,
        store,
        secrets,
        registry,
        Runner::Command("fabric-console demo"),
    )
    .map_err(|e| StartError::Engine(e.to_string()))?;
    Ok(DemoIpam {
        server,
        service,
        engine,
    })
}
