//! What the console works with: the store, the secret store, the provider registry and the
//! engine. The UI reaches the outside world only through these.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::fabric::connection::ConnectionString;
use crate::fabric::model::Id;
use crate::fabric::secrets::SecretStore;
use crate::fabric::store::FabricStore;
use crate::ipam::registry::ProviderRegistry;
use crate::sync::engine::EngineHandle;
use crate::sync::status::{DEFAULT_SKEW_THRESHOLD_MS, EngineCommand};

/// Every command the console sent to the engine, newest last (bounded), so tests and the
/// diagnostics log can see what a click did.
#[derive(Debug, Clone, Default)]
pub struct CommandLog(Arc<Mutex<Vec<EngineCommand>>>);

const COMMAND_LOG_LIMIT: usize = 1000;

impl CommandLog {
    pub fn record(&self, command: &EngineCommand) {
        if let Ok(mut log) = self.0.lock() {
            if log.len() >= COMMAND_LOG_LIMIT {
                log.remove(0);
            }
            log.push(command.clone());
        }
    }

    pub fn snapshot(&self) -> Vec<EngineCommand> {
        self.0.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

/// The embedded built-in IPAM server, shown in Settings so a newcomer can add it in the wizard.
#[derive(Debug, Clone)]
pub struct EmbeddedIpam {
    pub connection: ConnectionString,
    /// The "Embedded IPAM Administrator" Run As account.
    pub run_as: Id,
}

#[derive(Clone)]
pub struct AppContext {
    pub store: FabricStore,
    pub secrets: Arc<dyn SecretStore>,
    pub registry: Arc<ProviderRegistry>,
    pub engine: EngineHandle,
    pub commands: CommandLog,
    /// settings.json; `None` keeps preferences in memory (tests).
    pub preferences_file: Option<PathBuf>,
    pub embedded_ipam: Option<EmbeddedIpam>,
    pub skew_threshold_ms: i64,
}

impl AppContext {
    pub fn new(
        store: FabricStore,
        secrets: Arc<dyn SecretStore>,
        registry: Arc<ProviderRegistry>,
        engine: EngineHandle,
    ) -> Self {
        AppContext {
            store,
            secrets,
            registry,
            engine,
            commands: CommandLog::default(),
            preferences_file: None,
            embedded_ipam: None,
            skew_threshold_ms: DEFAULT_SKEW_THRESHOLD_MS,
        }
    }

    /// Sends a command to the engine and records it.
    pub fn send(&self, command: EngineCommand) {
        tracing::debug!(?command, "engine command");
        self.commands.record(&command);
        self.engine.send(command);
    }
}
