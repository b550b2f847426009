//! Starting the console: the back end from `ops::boot`, then the context and preferences the
//! window opens with.

use std::sync::Arc;

use crate::fabric::secrets::SecretStore;
use crate::ipam_server::RunningServer;
use crate::ops::boot;
use crate::paths::DataPaths;
use crate::sync::status::{EngineCommand, JobTrigger};
use crate::ui::context::{AppContext, EmbeddedIpam};
use crate::ui::preferences::Preferences;

pub use crate::ops::boot::{DEMO_SERVICE, DEMO_SIZE, EMBEDDED_ACCOUNT, StartError, demo_paths};

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
    let console = boot::start_console(paths, secrets, demo, preferences.embedded_ipam_port).await?;
    let port = console.server.addr().port();
    if !demo && preferences.embedded_ipam_port != Some(port) {
        preferences.embedded_ipam_port = Some(port);
        if let Err(e) = preferences.save(&settings_file) {
            tracing::warn!(error = %e, "could not save the console's settings");
        }
    }
    let (connection, run_as) = console.embedded;
    let mut context = AppContext::new(
        console.store,
        console.secrets,
        console.registry,
        console.engine,
    );
    context.preferences_file = Some(settings_file);
    context.embedded_ipam = Some(EmbeddedIpam { connection, run_as });
    if let Some(id) = console.demo_service {
        context.send(EngineCommand::RefreshNow {
            service: id,
            trigger: JobTrigger::FirstSync,
        });
    }
    Ok(Started {
        context,
        preferences,
        server: console.server,
    })
}
