//! The engine as an iced subscription stream: its published snapshots and its events, keyed by
//! the engine handle so the worker is not restarted while the same engine runs.

use std::sync::Arc;

use futures::stream::{BoxStream, StreamExt};
use tokio::sync::broadcast::error::RecvError;

use crate::sync::engine::EngineHandle;
use crate::sync::status::{EngineEvent, EngineSnapshot};

#[derive(Debug, Clone)]
pub enum EngineNotice {
    /// The statuses and jobs the engine published last.
    Snapshot(Arc<EngineSnapshot>),
    Event(EngineEvent),
    /// The console fell behind by this many events: re-read the snapshot and the fabric.
    Lagged(u64),
}

pub fn engine_events(handle: &EngineHandle) -> BoxStream<'static, EngineNotice> {
    let events = futures::stream::unfold(handle.subscribe(), |mut receiver| async move {
        match receiver.recv().await {
            Ok(event) => Some((EngineNotice::Event(event), receiver)),
            Err(RecvError::Lagged(n)) => Some((EngineNotice::Lagged(n), receiver)),
            Err(RecvError::Closed) => None,
        }
    });
    let snapshots = futures::stream::unfold(handle.watch(), |mut receiver| async move {
        receiver.changed().await.ok()?;
        let snapshot = receiver.borrow_and_update().clone();
        Some((EngineNotice::Snapshot(snapshot), receiver))
    });
    futures::stream::select(events, snapshots).boxed()
}
