//! What the engine publishes, as the shell follows it: the snapshot it renders, the status bar's
//! activity line, and the dialogs and views an event concerns.

use super::*;

impl App {
    /// The engine published a snapshot or told of an event: render the latest snapshot (the
    /// engine publishes before it tells), and follow up in the dialogs and the status bar.
    pub(super) fn engine_notice(&mut self, notice: EngineNotice) -> Task<Message> {
        let event = match notice {
            EngineNotice::Snapshot(snapshot) => {
                self.sync = snapshot;
                return Task::none();
            }
            EngineNotice::Lagged(_) => {
                self.sync = self.ctx.engine.snapshot();
                self.set_fabric(self.ctx.store.fabric());
                return Task::none();
            }
            EngineNotice::Event(e) => e,
        };
        self.sync = self.ctx.engine.snapshot();
        match event {
            EngineEvent::Started { service, .. } | EngineEvent::Progress { service, .. } => {
                self.set_activity(service)
            }
            EngineEvent::StatusChanged(status) => {
                if matches!(
                    status.state,
                    SyncState::Syncing { .. } | SyncState::Waiting(_)
                ) {
                    self.set_activity(status.service);
                } else {
                    self.end_activity(status.service);
                }
            }
            EngineEvent::Failed { service, .. } => self.end_activity(service),
            EngineEvent::PlanReady {
                service, summary, ..
            } => {
                if let Some(Modal::Preview(p)) = &mut self.modal
                    && p.service == service
                {
                    p.state = PreviewState::Ready(summary);
                }
            }
            EngineEvent::FabricChanged => self.set_fabric(self.ctx.store.fabric()),
            EngineEvent::Finished { service, job } => {
                self.end_activity(service);
                // A pool near exhaustion, seen by the sync that reported its usage.
                if let Some(first) = job.notices.first() {
                    let more = match job.notices.len() {
                        1 => String::new(),
                        n => format!(" ({} more in the job's details under Jobs)", n - 1),
                    };
                    self.notice = Some((Tone::Warning, format!("{first}{more}")));
                }
                if let Some(c) = self.compare.as_mut().filter(|c| c.service == service) {
                    c.synced();
                    return self.reload_compare();
                }
            }
            EngineEvent::Conflicts { .. } | EngineEvent::SkewMeasured { .. } => {}
        }
        Task::none()
    }

    pub(super) fn end_activity(&mut self, service: Id) {
        if self.activity.as_ref().is_some_and(|a| a.0 == service) {
            self.activity = None;
        }
    }

    pub(super) fn set_activity(&mut self, service: Id) {
        let name = self
            .fabric
            .network_services
            .get(&service)
            .map(|s| s.name.clone())
            .unwrap_or_else(|| "network service".into());
        if let Some(st) = self.sync.statuses.get(&service) {
            let fraction = fabric_workspace::progress_fraction(&st.state);
            let line = match &st.state {
                SyncState::Syncing { stage, done, total } if *total > 0 => {
                    format!("Syncing {name}: {} ({done} of {total})", stage.label())
                }
                SyncState::Syncing { stage, .. } => format!("Syncing {name}: {}", stage.label()),
                other => format!("{name}: {}", other.label()),
            };
            self.activity = Some((service, line, fraction));
        }
    }
}
