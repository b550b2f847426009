//! Operations the console, the command line and startup share, each written once with typed
//! errors. Layers point one way: fabric ← ipam ← sync ← ops ← ui / cli; nothing here knows iced.

pub mod boot;
pub mod exchange;
pub mod run_as;
pub mod service;

use crate::sync::engine::EngineHandle;
use crate::sync::status::EngineCommand;

/// Where an operation sends its engine commands: the engine itself, or the console, which also
/// logs every command it sends.
pub trait EngineInbox: Send + Sync {
    fn send(&self, command: EngineCommand);
}

impl EngineInbox for EngineHandle {
    fn send(&self, command: EngineCommand) {
        EngineHandle::send(self, command)
    }
}

/// A blocking call on a thread of its own, so async callers never stall the runtime.
async fn off_thread<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| e.to_string())
}
