//! What the engine tells the console: per-service status, jobs, events, and the commands it takes.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::plan::{Conflict, PlanSummary, Resolution, SyncPlan};
use crate::fabric::model::{Id, NetworkService};

/// A stage of one sync run, in the order they happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SyncStage {
    Connecting,
    ReadingClock,
    ReadingIpam,
    ReadingConsole,
    Planning,
    ApplyingIpam,
    ApplyingConsole,
    Recording,
}

impl SyncStage {
    pub fn label(self) -> &'static str {
        match self {
            Self::Connecting => "Connecting",
            Self::ReadingClock => "Reading the server's clock",
            Self::ReadingIpam => "Reading the IPAM server",
            Self::ReadingConsole => "Reading the console's fabric",
            Self::Planning => "Planning",
            Self::ApplyingIpam => "Sending changes to the IPAM server",
            Self::ApplyingConsole => "Receiving changes into the console",
            Self::Recording => "Recording the result",
        }
    }
}

/// Create/update/delete counts per side.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncCounts {
    pub ipam_created: u32,
    pub ipam_updated: u32,
    pub ipam_deleted: u32,
    pub console_created: u32,
    pub console_updated: u32,
    pub console_deleted: u32,
    pub conflicts: u32,
    pub failed: u32,
    /// When only the parts that changed since both sides agreed were planned: how many
    /// logical networks those were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_networks: Option<u32>,
}

impl SyncCounts {
    /// "IPAM +1 ~2 -0{separator}console +0 ~0 -1": what a job changed on each side.
    pub fn changes(&self, separator: &str) -> String {
        format!(
            "IPAM +{} ~{} -{}{separator}console +{} ~{} -{}",
            self.ipam_created,
            self.ipam_updated,
            self.ipam_deleted,
            self.console_created,
            self.console_updated,
            self.console_deleted
        )
    }

    /// Adds another job's counts (what a run of jobs changed together).
    pub fn absorb(&mut self, other: &SyncCounts) {
        self.ipam_created += other.ipam_created;
        self.ipam_updated += other.ipam_updated;
        self.ipam_deleted += other.ipam_deleted;
        self.console_created += other.console_created;
        self.console_updated += other.console_updated;
        self.console_deleted += other.console_deleted;
        self.conflicts += other.conflicts;
        self.failed += other.failed;
        self.planned_networks = match (self.planned_networks, other.planned_networks) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
    }

    pub fn total_changes(&self) -> u32 {
        self.ipam_created
            + self.ipam_updated
            + self.ipam_deleted
            + self.console_created
            + self.console_updated
            + self.console_deleted
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobResult {
    Running,
    Succeeded,
    /// Finished, but with conflicts, per-object failures or a clock-skew warning.
    CompletedWithWarnings,
    Failed,
    Canceled,
}

impl JobResult {
    pub fn label(self) -> &'static str {
        match self {
            Self::Running => "Running",
            Self::Succeeded => "Completed",
            Self::CompletedWithWarnings => "Completed w/ Info",
            Self::Failed => "Failed",
            Self::Canceled => "Canceled",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobTrigger {
    /// Right-click ▸ Refresh, F5, or `fabric-console sync`.
    Refresh,
    /// The background interval.
    Periodic,
    /// The wizard's Finish.
    FirstSync,
    /// The IPAM server reported a change.
    ServerChange,
    /// A change was saved in the console.
    ConsoleChange,
}

impl JobTrigger {
    pub fn label(self) -> &'static str {
        match self {
            JobTrigger::Refresh => "Refresh",
            JobTrigger::Periodic => "Periodic sync",
            JobTrigger::FirstSync => "First sync",
            JobTrigger::ServerChange => "IPAM change",
            JobTrigger::ConsoleChange => "Console change",
        }
    }
}

/// One sync run, as the Jobs workspace lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: Uuid,
    pub service: Id,
    pub service_name: String,
    pub trigger: JobTrigger,
    pub started: DateTime<Utc>,
    pub finished: Option<DateTime<Utc>>,
    pub result: JobResult,
    pub counts: SyncCounts,
    /// One sentence each, naming the server or object and what to do.
    pub errors: Vec<String>,
    /// What the job saw that is worth knowing without being a fault (a pool running out of
    /// addresses); it leaves the result as it is.
    #[serde(default)]
    pub notices: Vec<String>,
    /// How long each phase took.
    #[serde(default)]
    pub phases: PhaseTimes,
}

/// How long each phase of a job took, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseTimes {
    /// Connecting, the server's clock, and its change feed (or everything).
    pub read_ms: u32,
    /// The stored state, the console's fabric, and planning.
    pub plan_ms: u32,
    /// Sending operations to the IPAM server.
    pub send_ms: u32,
    /// Saving the IPAM side's changes in the console.
    pub receive_ms: u32,
    /// Recording what both sides now agree on.
    pub record_ms: u32,
    /// Reading and reporting address usage.
    #[serde(default)]
    pub usage_ms: u32,
}

impl PhaseTimes {
    /// "read 12 · plan 3 · send 0 · receive 0 · record 1 · usage 4 ms".
    pub fn summary(&self) -> String {
        format!(
            "read {} · plan {} · send {} · receive {} · record {} · usage {} ms",
            self.read_ms,
            self.plan_ms,
            self.send_ms,
            self.receive_ms,
            self.record_ms,
            self.usage_ms
        )
    }
}

/// The sync status shown in the Network Service tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SyncState {
    NeverSynced,
    Syncing {
        stage: SyncStage,
        done: u64,
        total: u64,
    },
    InSync,
    /// Another process (or engine) is syncing this service: "being synced by another Fabric
    /// Console (pid 4242) since 10:02". This one's sync starts when that one ends.
    Waiting(String),
    Warning(String),
    Error(String),
}

impl SyncState {
    pub fn label(&self) -> String {
        match self {
            SyncState::NeverSynced => "Never synced".into(),
            SyncState::Syncing { stage, done, total } if *total > 0 => {
                format!("Syncing: {} ({done}/{total})", stage.label())
            }
            SyncState::Syncing { stage, .. } => format!("Syncing: {}", stage.label()),
            SyncState::InSync => "In sync".into(),
            SyncState::Waiting(w) => format!("Waiting: {w}"),
            SyncState::Warning(w) => format!("Warning: {w}"),
            SyncState::Error(e) => format!("Error: {e}"),
        }
    }
}

/// Per-service status, persisted and readable by the UI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub service: Id,
    pub state: SyncState,
    pub last_start: Option<DateTime<Utc>>,
    pub last_end: Option<DateTime<Utc>>,
    pub last_result: Option<JobResult>,
    pub last_counts: SyncCounts,
    /// Server clock minus console clock, milliseconds, from the last reading.
    pub skew_ms: Option<i64>,
    pub next_run: Option<DateTime<Utc>>,
    pub conflicts: Vec<Conflict>,
    /// Logical networks whose VMM Logical Network name was deleted on the IPAM server.
    pub orphans: Vec<Id>,
    pub interval_secs: u64,
    /// How the console learns of changes on the IPAM server.
    #[serde(default)]
    pub updates: Updates,
}

/// How the console learns of changes on a service's IPAM server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Updates {
    /// Not known yet (the first sync has not run, or periodic syncs are off).
    #[default]
    Unknown,
    /// The server tells the console of each change as it is made; with when the last one
    /// reached the console and how long its sync took (milliseconds).
    Live {
        last_event: Option<DateTime<Utc>>,
        last_latency_ms: Option<u64>,
    },
    /// Read at every sync interval only, and why.
    Polling(String),
}

impl Updates {
    /// "Live", "Live (last change applied in 240 ms)", "Polling: …".
    pub fn label(&self) -> String {
        match self {
            Updates::Unknown => "Not known yet".to_string(),
            Updates::Live {
                last_latency_ms: Some(ms),
                ..
            } => format!("Live (last applied {ms} ms after it was seen)"),
            Updates::Live { .. } => "Live".to_string(),
            Updates::Polling(why) => format!("Polling: {why}"),
        }
    }
}

impl ServiceStatus {
    pub fn new(service: Id, interval_secs: u64) -> Self {
        ServiceStatus {
            service,
            state: SyncState::NeverSynced,
            last_start: None,
            last_end: None,
            last_result: None,
            last_counts: SyncCounts::default(),
            skew_ms: None,
            next_run: None,
            conflicts: Vec::new(),
            orphans: Vec::new(),
            interval_secs,
            updates: Updates::Unknown,
        }
    }
}

/// What the console asks of the engine.
#[derive(Debug, Clone)]
pub enum EngineCommand {
    RefreshNow {
        service: Id,
        trigger: JobTrigger,
    },
    /// Compute the plan for the next sync without applying it; answered by `PlanReady`.
    PreviewPlan {
        service: Id,
    },
    /// Decide a conflict; applied by the next sync.
    ResolveConflict {
        service: Id,
        conflict: String,
        resolution: Resolution,
    },
    Cancel {
        service: Id,
    },
    SetInterval {
        service: Id,
        secs: u64,
    },
    AddService(Box<NetworkService>),
    /// The service's settings changed (name, scope, credentials): restart its worker.
    UpdateService(Box<NetworkService>),
    RemoveService {
        service: Id,
    },
}

/// What the engine tells the console, in order per service.
#[derive(Debug, Clone)]
pub enum EngineEvent {
    Started {
        service: Id,
        job: Uuid,
    },
    Progress {
        service: Id,
        stage: SyncStage,
        done: u64,
        total: u64,
    },
    PlanReady {
        service: Id,
        plan: Box<SyncPlan>,
        summary: PlanSummary,
    },
    Finished {
        service: Id,
        job: Box<JobRecord>,
    },
    Failed {
        service: Id,
        reason: String,
    },
    Conflicts {
        service: Id,
        conflicts: Vec<Conflict>,
    },
    SkewMeasured {
        service: Id,
        skew_ms: i64,
        warning: bool,
    },
    /// The console's fabric was changed by a sync: reload it.
    FabricChanged,
    StatusChanged(Box<ServiceStatus>),
}

/// Default skew beyond which a warning is raised (the seed's time-synchrony prerequisite).
pub const DEFAULT_SKEW_THRESHOLD_MS: i64 = 5 * 60 * 1000;

pub type StatusMap = BTreeMap<Id, ServiceStatus>;

/// What the engine publishes after every change, whole and immutable: the one source of each
/// service's sync status and of the Jobs list (newest first).
#[derive(Debug, Clone, Default)]
pub struct EngineSnapshot {
    pub statuses: StatusMap,
    /// Shared so a status change does not copy the job history.
    pub jobs: Arc<Vec<JobRecord>>,
}
