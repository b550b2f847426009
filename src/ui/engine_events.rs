//! The engine's broadcast events as an iced subscription stream, keyed by the engine handle so
//! the worker is not restarted while the same engine runs.

use futures::stream::{BoxStream, StreamExt};
use tokio::sync::broadcast::error::RecvError;

use crate::sync::engine::EngineHandle;
use crate::sync::status::EngineEvent;

#[derive(Debug, Clone)]
pub enum EngineNotice {
    Event(EngineEvent),
    /// The console fell behind by this many events: re-read statuses and jobs.
    Lagged(u64),
}

pub fn engine_events(handle: &EngineHandle) -> BoxStream<'static, EngineNotice> {
    let receiver = handle.subscribe();
    futures::stream::unfold(receiver, |mut receiver| async move {
        match receiver.recv().await {
            Ok(event) => Some((EngineNotice::Event(event), receiver)),
            Err(RecvError::Lagged(n)) => Some((EngineNotice::Lagged(n), receiver)),
            Err(RecvError::Closed) => None,
        }
    })
    .boxed()
}
