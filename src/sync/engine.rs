//! The sync engine: a tokio service with one worker per network service. The console sends it
//! commands and renders its events; it never blocks the console.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use uuid::Uuid;

use super::apply::{ApplySettings, apply_console, apply_ipam, apply_to_mirror, recover_journal};
use super::compare::{CompareView, compare};
use super::credentials::provider_config;
use super::journal::{Retention, StateWrite, StoredState, SyncDb, SyncDbError};
use super::lease::{
    DEFAULT_LEASE_WAIT, FileLeases, Lease, LeaseProvider, LeaseWait, ProcessLeases, wait_for_lease,
};
use super::normal::BaseState;
use super::plan::{Parts, Touched, agreed_part, join_base, plan_parts};
use super::plan::{Side, SyncPlan};
use super::status::*;
use super::{PlanInput, agreed_base, plan};
use crate::fabric::model::{Fabric, HostGroupScope, Id, NetworkService, ObjectKind, PoolScope};
use crate::fabric::secrets::SecretStore;
use crate::fabric::store::FabricStore;
use crate::ipam::model::{
    ChangeSet, Cursor, IpamId, IpamKind, IpamSnapshot, OpVerb, SnapshotRead, SnapshotScope,
};
use crate::ipam::provider::{ChangeWait, IpamError, IpamProvider, ProviderConfig, TestReport};
use crate::ipam::registry::ProviderRegistry;
use crate::ipam::retry::RetryPolicy;

/// What the engine needs.
#[derive(Clone)]
pub struct EngineContext {
    pub store: FabricStore,
    pub secrets: Arc<dyn SecretStore>,
    pub registry: Arc<ProviderRegistry>,
    /// `None` keeps the sync database in memory (tests).
    pub sync_db: Option<PathBuf>,
    /// A team's PostgreSQL database: the sync state and the leases live there, beside the
    /// fabric, instead of in `sync_db`.
    pub database: Option<crate::db::PgTarget>,
    pub skew_threshold_ms: i64,
    pub apply: ApplySettings,
    /// Run the background sync every service's interval.
    pub periodic: bool,
    /// How this process names itself to another that finds a service's lease held.
    pub program: String,
    /// How long a sync waits for another process's sync of the same service before it gives up.
    pub lease_wait: Duration,
    /// One sync per service across processes; `None` chooses file locks beside the sync
    /// database (or, for an in-memory one, in-memory locks of this engine alone).
    pub leases: Option<Arc<dyn LeaseProvider>>,
    /// Jobs and journal entries kept per service.
    pub retention: Retention,
    /// Only these network services get a worker (`sync --follow --service`); `None`: all.
    pub only: Option<std::collections::BTreeSet<Id>>,
    /// Where a pool's use raises a notice in the job that reported it.
    pub usage_levels: crate::fabric::usage::UsageLevels,
    /// How long a usage report's look at the server's copy stands before a sync looks again
    /// (a hand edit of the server's copy is put back within this).
    pub usage_recheck: Duration,
}

impl EngineContext {
    pub fn new(
        store: FabricStore,
        secrets: Arc<dyn SecretStore>,
        registry: Arc<ProviderRegistry>,
        sync_db: Option<PathBuf>,
    ) -> Self {
        EngineContext {
            store,
            secrets,
            registry,
            sync_db,
            database: None,
            skew_threshold_ms: DEFAULT_SKEW_THRESHOLD_MS,
            apply: ApplySettings::default(),
            periodic: true,
            program: "Fabric Console".into(),
            lease_wait: DEFAULT_LEASE_WAIT,
            leases: None,
            retention: Retention::default(),
            only: None,
            usage_levels: Default::default(),
            usage_recheck: DEFAULT_USAGE_RECHECK,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Db(#[from] SyncDbError),
    #[error("The sync engine must be started inside a tokio runtime.")]
    NoRuntime,
}

enum WorkerCmd {
    Refresh(JobTrigger, Option<oneshot::Sender<JobRecord>>),
    Preview(Option<oneshot::Sender<Result<SyncPlan, String>>>),
    Compare(oneshot::Sender<Result<(CompareView, SyncPlan), String>>),
    SetInterval(u64),
}

struct Worker {
    tx: mpsc::UnboundedSender<WorkerCmd>,
    cancel: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
    /// Waits for changes on the IPAM server (with periodic syncs on).
    listener: Option<tokio::task::JoinHandle<()>>,
}

struct Shared {
    id: u64,
    ctx: EngineContext,
    db: SyncDb,
    runtime: tokio::runtime::Handle,
    events: broadcast::Sender<EngineEvent>,
    snapshot: watch::Sender<Arc<EngineSnapshot>>,
    workers: Mutex<HashMap<Id, Worker>>,
    /// HTTP-level provider calls made by syncs, for benchmarks and the Jobs view.
    provider_calls: AtomicU64,
    leases: Arc<dyn LeaseProvider>,
    /// Each service's base and mirror as this engine's last sync of it left them, so the next
    /// sync reads them only when another process wrote them since (see `take_state`).
    states: Mutex<HashMap<Id, StoredState>>,
    /// Per service, the (grants revision, fabric revision) its usage was last reported at, and
    /// when.
    usage_reported: Mutex<HashMap<Id, (u64, u64, Instant)>>,
    /// Per service, the ranges that stand for console pools as of a state generation, so a
    /// no-op sync runs the usage step without reading the stored mirror.
    usage_ranges: Mutex<HashMap<Id, (u64, PoolRanges)>>,
    /// Services this engine holds the lease of (syncing them now).
    held: Mutex<std::collections::HashSet<Id>>,
    /// Who this engine is in announcements to the other consoles (process and engine).
    speaker: String,
    /// When each service's progress was last announced (announcements are thinned).
    announced: Mutex<HashMap<Id, Instant>>,
    /// Hears the other consoles' announcements on a shared PostgreSQL database.
    _hearing: Option<crate::db::postgres::Listener>,
}

/// What an engine tells the others sharing its PostgreSQL database about a sync.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Announcement {
    from: String,
    service: Id,
    #[serde(flatten)]
    what: Announced,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Announced {
    Progress {
        stage: SyncStage,
        done: u64,
        total: u64,
    },
    Status,
    Job,
}

/// How long a usage report's look at the server's copy stands before a sync looks again.
pub const DEFAULT_USAGE_RECHECK: Duration = Duration::from_secs(600);

/// (pool, range) pairs of the ranges that stand for console pools.
type PoolRanges = Arc<Vec<(Id, IpamId)>>;

/// The ranges of a mirror that stand for console pools: (pool, range).
fn usage_ranges(mirror: &IpamSnapshot) -> Vec<(Id, IpamId)> {
    mirror
        .ranges
        .iter()
        .filter_map(|r| r.vmm_id.map(|pool| (pool, r.id.clone())))
        .collect()
}

/// A cheap, clonable handle to the running engine.
#[derive(Clone)]
pub struct EngineHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for EngineHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EngineHandle({})", self.shared.id)
    }
}

impl std::hash::Hash for EngineHandle {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.shared.id.hash(state)
    }
}

impl PartialEq for EngineHandle {
    fn eq(&self, other: &Self) -> bool {
        self.shared.id == other.shared.id
    }
}

/// Why a command for a removed network service did nothing.
const GONE: &str = "This network service no longer exists.";
static NEXT_ENGINE: AtomicU64 = AtomicU64::new(1);
const JOBS_KEPT: usize = 500;

/// Why a sync stopped when its lease went while it ran.
const LEASE_LOST: &str = "This console lost its hold on the service's sync (its connection to the shared database dropped), so it stopped; another console or daemon may carry on, and the next sync looks up anything that was in flight instead of sending it again.";

/// How often an engine over a database file looks for another process's writes to the fabric.
const FABRIC_POLL: Duration = Duration::from_secs(2);

pub struct Engine;

impl Engine {
    /// Start the engine and a worker for every network service in the store.
    pub fn start(ctx: EngineContext) -> Result<EngineHandle, EngineError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| EngineError::NoRuntime)?;
        // The sync state lives with the fabric: on a team's PostgreSQL database when the
        // store is there.
        let mut ctx = ctx;
        if ctx.database.is_none() {
            ctx.database = ctx.store.pg_target();
        }
        let db = match (&ctx.database, &ctx.sync_db) {
            (Some(t), _) => SyncDb::open_at(&crate::db::Location::Postgres(t.clone()))?,
            (None, Some(p)) => SyncDb::open(p)?,
            (None, None) => SyncDb::open_in_memory()?,
        };
        let leases: Arc<dyn LeaseProvider> = match (&ctx.leases, &ctx.database, &ctx.sync_db) {
            (Some(l), _, _) => l.clone(),
            (None, Some(t), _) => Arc::new(super::lease::PgLeases::new(t.clone())),
            (None, None, Some(p)) => Arc::new(FileLeases::beside(p)),
            (None, None, None) => Arc::new(ProcessLeases::default()),
        };
        let (events, _) = broadcast::channel(4096);
        let jobs = db.jobs(JOBS_KEPT)?;
        let id = NEXT_ENGINE.fetch_add(1, Ordering::Relaxed);
        let hearing = match &ctx.database {
            Some(t) => match crate::db::postgres::listen(t, super::journal::SYNC_CHANNEL) {
                Ok(h) => Some(h),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot hear the other consoles' syncs; their progress shows at their end");
                    None
                }
            },
            None => None,
        };
        let (heard, hearing) = match hearing {
            Some((rx, listener)) => (Some(rx), Some(listener)),
            None => (None, None),
        };
        let shared = Arc::new(Shared {
            id,
            ctx,
            db,
            runtime,
            events,
            snapshot: watch::Sender::new(Arc::new(EngineSnapshot {
                statuses: BTreeMap::new(),
                jobs: Arc::new(jobs),
            })),
            workers: Mutex::new(HashMap::new()),
            provider_calls: AtomicU64::new(0),
            leases,
            states: Mutex::new(HashMap::new()),
            usage_reported: Mutex::new(HashMap::new()),
            usage_ranges: Mutex::new(HashMap::new()),
            held: Mutex::new(Default::default()),
            speaker: format!("{}-{id}", std::process::id()),
            announced: Mutex::new(HashMap::new()),
            _hearing: hearing,
        });
        let handle = EngineHandle { shared };
        if let Some(heard) = heard {
            handle.hear_others(heard);
        }
        handle.spawn_missing_workers();
        if handle.shared.ctx.periodic {
            handle.push_console_changes();
            handle.push_grants();
        }
        if handle.shared.ctx.store.is_shared() {
            handle.watch_fabric();
        }
        Ok(handle)
    }
}

impl EngineHandle {
    /// Looks every few seconds for another process's writes to the fabric database (a CLI
    /// import, a second console) and reloads, so the console shows and plans against them.
    /// Ends when the engine is dropped.
    /// Sends changes saved in the console (by this process or, once noticed, another) to the
    /// IPAM servers within a second: a burst of saves becomes one sync per service, and a
    /// service that already agrees with the fabric (a sync's own write) is left alone.
    fn push_console_changes(&self) {
        const SETTLE: Duration = Duration::from_millis(500);
        let weak = Arc::downgrade(&self.shared);
        let mut saved = self.shared.ctx.store.subscribe();
        self.shared.runtime.spawn(async move {
            while saved.changed().await.is_ok() {
                tokio::time::sleep(SETTLE).await;
                saved.borrow_and_update();
                let Some(shared) = weak.upgrade() else {
                    break;
                };
                let engine = EngineHandle { shared };
                let revision = engine.shared.ctx.store.revision();
                let services: Vec<Id> = engine.workers().keys().copied().collect();
                for service in services {
                    if !engine.service(service).is_some_and(|s| s.sync_on_change) {
                        continue;
                    }
                    let settled = engine
                        .with_db(move |db| db.settled(service))
                        .await
                        .ok()
                        .flatten();
                    if settled != Some(revision) && engine.saves_may_touch(service, settled).await {
                        engine.to_worker(
                            service,
                            WorkerCmd::Refresh(JobTrigger::ConsoleChange, None),
                        );
                    }
                }
            }
        });
    }

    /// Sends address usage soon after grants change (in this process or another: the command
    /// line): every two seconds the grants revision is read, and a service that reports usage,
    /// syncs on change and has not reported this revision gets a sync (a no-op one in the
    /// fabric, which runs the usage step).
    fn push_grants(&self) {
        const EVERY: Duration = Duration::from_secs(2);
        let weak = Arc::downgrade(&self.shared);
        self.shared.runtime.spawn(async move {
            let mut seen: Option<u64> = None;
            loop {
                tokio::time::sleep(EVERY).await;
                let Some(shared) = weak.upgrade() else {
                    break;
                };
                let engine = EngineHandle { shared };
                let Ok(now) = engine.shared.ctx.store.grants_revision_async().await else {
                    continue;
                };
                let first = seen.is_none();
                if seen == Some(now) {
                    continue;
                }
                seen = Some(now);
                if first {
                    // What was granted before this engine started goes with its first sync.
                    continue;
                }
                let reported = engine
                    .shared
                    .usage_reported
                    .lock()
                    .map(|m| m.clone())
                    .unwrap_or_default();
                let services: Vec<Id> = engine.workers().keys().copied().collect();
                for service in services {
                    let due = reported.get(&service).is_none_or(|(g, ..)| *g != now);
                    if due && engine.service(service).is_some_and(|s| s.sync_on_change) {
                        engine.to_worker(
                            service,
                            WorkerCmd::Refresh(JobTrigger::ConsoleChange, None),
                        );
                    }
                }
            }
        });
    }

    /// Whether the console saves since both sides of `service` agreed may concern it. Only
    /// when every saved object exists, lies outside the service's host groups, and was never
    /// agreed on with its server is the answer no; anything unknown is a yes.
    async fn saves_may_touch(&self, service: Id, settled: Option<u64>) -> bool {
        let Some(settled) = settled else {
            return true;
        };
        let Some(svc) = self.service(service) else {
            return false;
        };
        if svc.scope == HostGroupScope::All {
            return true;
        }
        let store = self.shared.ctx.store.clone();
        let Ok(Ok(Some((_, touched)))) =
            tokio::task::spawn_blocking(move || store.changes_since(settled)).await
        else {
            return true;
        };
        let kept = self.states().get(&service).map(|s| s.base.clone());
        let base = match kept {
            Some(b) => b,
            None => match self.with_db(move |db| db.base(service)).await {
                Ok(b) => b,
                Err(_) => return true,
            },
        };
        let fabric = self.shared.ctx.store.fabric();
        let scope = &svc.scope;
        let site_in = |site: &Id| {
            fabric
                .network_sites
                .get(site)
                .is_some_and(|s| fabric.site_in_scope(s, scope))
        };
        let ln_in = |ln: &Id| fabric.sites_of(*ln).any(|s| fabric.site_in_scope(s, scope));
        let vmn_in = |vmn: &Id| {
            fabric
                .vm_networks
                .get(vmn)
                .is_none_or(|v| ln_in(&v.logical_network))
        };
        let b = &base.values;
        touched.iter().any(|(kind, id)| {
            let agreed = b.lns.contains_key(id)
                || b.sites.contains_key(id)
                || b.pools.contains_key(id)
                || b.vmns.contains_key(id)
                || b.vm_pools.contains_key(id);
            agreed
                || match kind {
                    ObjectKind::LogicalNetwork => {
                        !fabric.logical_networks.contains_key(id) || ln_in(id)
                    }
                    ObjectKind::NetworkSite => {
                        !fabric.network_sites.contains_key(id) || site_in(id)
                    }
                    ObjectKind::VmNetwork => vmn_in(id),
                    ObjectKind::IpPool => match fabric.ip_pools.get(id).map(|p| &p.scope) {
                        Some(PoolScope::Site { site, .. }) => site_in(site),
                        Some(PoolScope::VmSubnet { vm_network, .. }) => vmn_in(vm_network),
                        None => true,
                    },
                    ObjectKind::RunAsAccount => false,
                    ObjectKind::HostGroup | ObjectKind::NetworkService | ObjectKind::Subnet => true,
                }
        })
    }

    /// Shows what the other consoles' engines announce: a service one of them syncs shows its
    /// progress and, when it ends, its status and job here too.
    fn hear_others(&self, heard: std::sync::mpsc::Receiver<String>) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        // The listener's channel blocks: a thread hands its messages to the runtime.
        let _ = std::thread::Builder::new()
            .name("fabric-console-hear".into())
            .spawn(move || {
                while let Ok(m) = heard.recv() {
                    if tx.send(m).is_err() {
                        break;
                    }
                }
            });
        let weak = Arc::downgrade(&self.shared);
        self.shared.runtime.spawn(async move {
            while let Some(text) = rx.recv().await {
                let Some(shared) = weak.upgrade() else {
                    break;
                };
                let engine = EngineHandle { shared };
                let Ok(a) = serde_json::from_str::<Announcement>(&text) else {
                    continue;
                };
                if a.from == engine.shared.speaker || engine.holds(a.service) {
                    continue;
                }
                engine.heard(a).await;
            }
        });
    }

    /// On a shared database: why this console leaves the service's syncs to another (it holds
    /// no Run As secret for it); `None` when it may sync.
    async fn secret_missing(&self, service: Id) -> Option<String> {
        self.shared.ctx.database.as_ref()?;
        let s = self.service(service)?;
        let account = self
            .shared
            .ctx
            .store
            .directory()
            .run_as_accounts
            .get(&s.run_as)?
            .name
            .clone();
        let secrets = self.shared.ctx.secrets.clone();
        let run_as = s.run_as;
        let held = tokio::task::spawn_blocking(move || secrets.get(run_as))
            .await
            .ok()?
            .ok()
            .flatten()
            .is_some();
        (!held).then(|| {
            format!(
                "synced by a console or `sync --follow` that holds the password of Run As account \"{account}\"; this console holds none"
            )
        })
    }

    fn holds(&self, service: Id) -> bool {
        self.shared
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&service)
    }

    async fn heard(&self, a: Announcement) {
        let service = a.service;
        match a.what {
            Announced::Progress { stage, done, total } => {
                self.show_progress(service, stage, done, total)
            }
            Announced::Status => {
                let Ok(Some(stored)) = self.with_db(move |db| db.status(service)).await else {
                    return;
                };
                let Some(snapshot) = self.publish(|snap| {
                    let s = snap.statuses.get_mut(&service)?;
                    // Their run's outcome; this engine's own schedule stays.
                    let next_run = s.next_run;
                    *s = stored;
                    s.next_run = next_run;
                    Some(s.clone())
                }) else {
                    return;
                };
                self.emit(EngineEvent::StatusChanged(Box::new(snapshot)));
            }
            Announced::Job => {
                let Ok(jobs) = self.with_db(|db| db.jobs(JOBS_KEPT)).await else {
                    return;
                };
                let newest = jobs.iter().find(|j| j.service == service).cloned();
                self.publish(|snap| {
                    snap.jobs = Arc::new(jobs);
                    Some(())
                });
                if let Some(job) = newest.filter(|j| j.finished.is_some()) {
                    self.emit(EngineEvent::Finished {
                        service,
                        job: Box::new(job),
                    });
                }
            }
        }
    }

    /// The announcement of `what` about `service`, when the engine shares a PostgreSQL database.
    fn announcement(&self, service: Id, what: Announced) -> Option<String> {
        self.shared.ctx.database.as_ref()?;
        serde_json::to_string(&Announcement {
            from: self.shared.speaker.clone(),
            service,
            what,
        })
        .ok()
    }

    fn watch_fabric(&self) {
        let weak = Arc::downgrade(&self.shared);
        // On PostgreSQL every commit is announced: look at once rather than at the next poll.
        let mut announced = self.shared.ctx.store.commits_announced();
        self.shared.runtime.spawn(async move {
            loop {
                match announced.as_mut() {
                    Some(rx) => {
                        tokio::select! {
                            changed = rx.changed() => if changed.is_err() { announced = None },
                            () = tokio::time::sleep(FABRIC_POLL) => {}
                        }
                    }
                    None => tokio::time::sleep(FABRIC_POLL).await,
                }
                let Some(shared) = weak.upgrade() else {
                    break;
                };
                let engine = EngineHandle { shared };
                if let Err(e) = engine.refresh_fabric().await {
                    tracing::warn!(error = %e, "could not look for changes to the fabric database");
                }
            }
        });
    }

    pub fn id(&self) -> u64 {
        self.shared.id
    }

    pub fn send(&self, cmd: EngineCommand) {
        match cmd {
            EngineCommand::RefreshNow { service, trigger } => {
                self.to_worker(service, WorkerCmd::Refresh(trigger, None))
            }
            EngineCommand::PreviewPlan { service } => {
                self.to_worker(service, WorkerCmd::Preview(None))
            }
            EngineCommand::ResolveConflict {
                service,
                conflict,
                resolution,
            } => {
                if let Err(e) = self
                    .shared
                    .db
                    .put_resolution(service, &conflict, resolution)
                {
                    tracing::error!(%service, error = %e, "could not record a conflict resolution");
                    return;
                }
                self.update_status(service, |s| s.conflicts.retain(|c| c.key != conflict));
            }
            EngineCommand::Cancel { service } => {
                if let Some(w) = self.workers().get(&service) {
                    w.cancel.store(true, Ordering::Relaxed);
                }
            }
            EngineCommand::SetInterval { service, secs } => {
                self.to_worker(service, WorkerCmd::SetInterval(secs.max(30)))
            }
            EngineCommand::AddService(s) | EngineCommand::UpdateService(s) => {
                if self.has_worker(s.id) {
                    self.to_worker(s.id, WorkerCmd::SetInterval(s.sync_interval_secs));
                } else {
                    self.spawn_worker(&s);
                }
            }
            EngineCommand::RemoveService { service } => {
                let removed = self.workers().remove(&service);
                if let Some(w) = removed {
                    w.cancel.store(true, Ordering::Relaxed);
                    w.task.abort();
                    if let Some(l) = &w.listener {
                        l.abort();
                    }
                }
                self.publish(|snap| snap.statuses.remove(&service).map(|_| ()));
                if let Err(e) = self.shared.db.forget_service(service) {
                    tracing::warn!(%service, error = %e, "could not forget a removed service's sync state");
                }
            }
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.shared.events.subscribe()
    }

    /// The latest statuses and jobs.
    pub fn snapshot(&self) -> Arc<EngineSnapshot> {
        self.shared.snapshot.borrow().clone()
    }

    /// Every new snapshot, as the engine publishes it.
    pub fn watch(&self) -> watch::Receiver<Arc<EngineSnapshot>> {
        self.shared.snapshot.subscribe()
    }

    pub fn statuses(&self) -> StatusMap {
        self.snapshot().statuses.clone()
    }

    pub fn status(&self, service: Id) -> Option<ServiceStatus> {
        self.snapshot().statuses.get(&service).cloned()
    }

    /// Newest first.
    pub fn jobs(&self) -> Vec<JobRecord> {
        self.snapshot().jobs.as_ref().clone()
    }

    /// Changes the published snapshot when `change` returns `Some`; readers see it whole.
    fn publish<R>(&self, change: impl FnOnce(&mut EngineSnapshot) -> Option<R>) -> Option<R> {
        let mut out = None;
        self.shared.snapshot.send_if_modified(|snap| {
            out = change(Arc::make_mut(snap));
            out.is_some()
        });
        out
    }

    pub fn sync_db(&self) -> &SyncDb {
        &self.shared.db
    }

    /// Provider calls made by syncs so far (snapshot reads, batches, clock readings).
    pub fn provider_calls(&self) -> u64 {
        self.shared.provider_calls.load(Ordering::Relaxed)
    }

    /// The wizard's Test, for settings not saved yet.
    pub async fn test_connection(
        &self,
        provider_id: &str,
        config: ProviderConfig,
    ) -> Result<TestReport, IpamError> {
        let factory =
            self.shared
                .ctx
                .registry
                .get(provider_id)
                .ok_or_else(|| IpamError::Protocol {
                    server: config.connection.to_string(),
                    detail: format!("no configuration provider \"{provider_id}\" is installed"),
                })?;
        let provider = factory.connect(config)?;
        Ok(provider.test().await)
    }

    /// Run one sync now and wait for its job record.
    pub async fn sync_now(&self, service: Id, trigger: JobTrigger) -> Result<JobRecord, String> {
        let (tx, rx) = oneshot::channel();
        if !self.ensure_worker(service) {
            return Err(format!("There is no network service with id {service}."));
        }
        self.to_worker(service, WorkerCmd::Refresh(trigger, Some(tx)));
        rx.await
            .map_err(|_| "The sync was stopped before it finished.".to_string())
    }

    /// The plan for the next sync, not applied.
    pub async fn preview(&self, service: Id) -> Result<SyncPlan, String> {
        let (tx, rx) = oneshot::channel();
        if !self.ensure_worker(service) {
            return Err(format!("There is no network service with id {service}."));
        }
        self.to_worker(service, WorkerCmd::Preview(Some(tx)));
        rx.await
            .map_err(|_| "The preview was stopped before it finished.".to_string())?
    }

    /// The side-by-side view: the console's fabric against what the IPAM server holds now,
    /// with the plan the next sync would carry out.
    pub async fn compare(&self, service: Id) -> Result<(CompareView, SyncPlan), String> {
        let (tx, rx) = oneshot::channel();
        if !self.ensure_worker(service) {
            return Err(format!("There is no network service with id {service}."));
        }
        self.to_worker(service, WorkerCmd::Compare(tx));
        rx.await
            .map_err(|_| "The comparison was stopped before it finished.".to_string())?
    }

    /// A worker for every network service of the fabric that has none yet.
    fn spawn_missing_workers(&self) {
        let fabric = self.shared.ctx.store.directory();
        let only = &self.shared.ctx.only;
        for s in fabric.network_services.values() {
            if only.as_ref().is_none_or(|o| o.contains(&s.id)) && !self.has_worker(s.id) {
                self.spawn_worker(s);
            }
        }
    }

    /// The workers; a panic elsewhere while holding the lock left the map itself whole.
    fn workers(&self) -> std::sync::MutexGuard<'_, HashMap<Id, Worker>> {
        self.shared
            .workers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn has_worker(&self, service: Id) -> bool {
        self.workers().contains_key(&service)
    }

    fn ensure_worker(&self, service: Id) -> bool {
        if self.has_worker(service) {
            return true;
        }
        match self.service(service) {
            Some(s) => {
                self.spawn_worker(&s);
                true
            }
            None => false,
        }
    }

    /// The service as the fabric holds it now.
    fn service(&self, id: Id) -> Option<NetworkService> {
        self.shared
            .ctx
            .store
            .directory()
            .network_services
            .get(&id)
            .cloned()
    }

    fn to_worker(&self, service: Id, cmd: WorkerCmd) {
        if !self.ensure_worker(service) {
            let _ = self.shared.events.send(EngineEvent::Failed {
                service,
                reason: GONE.into(),
            });
            return;
        }
        if let Some(w) = self.workers().get(&service) {
            if matches!(cmd, WorkerCmd::Refresh(..)) {
                w.cancel.store(false, Ordering::Relaxed);
            }
            let _ = w.tx.send(cmd);
        }
    }

    fn spawn_worker(&self, service: &NetworkService) {
        let status = self
            .shared
            .db
            .status(service.id)
            .ok()
            .flatten()
            .map(|mut s| {
                // A sync that was running when the console stopped did not finish.
                if matches!(s.state, SyncState::Syncing { .. } | SyncState::Waiting(_)) {
                    s.state = SyncState::Warning("the last sync was interrupted".into());
                }
                s.interval_secs = service.sync_interval_secs;
                s
            })
            .unwrap_or_else(|| ServiceStatus::new(service.id, service.sync_interval_secs));
        self.publish(|snap| {
            snap.statuses.insert(service.id, status);
            Some(())
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let handle = self.clone();
        let id = service.id;
        let interval = service.sync_interval_secs;
        let c = cancel.clone();
        let task = self
            .shared
            .runtime
            .spawn(async move { handle.worker(id, interval, rx, c).await });
        let listener = self.shared.ctx.periodic.then(|| {
            let handle = self.clone();
            self.shared
                .runtime
                .spawn(async move { handle.listen(id).await })
        });
        self.workers().insert(
            id,
            Worker {
                tx,
                cancel,
                task,
                listener,
            },
        );
    }

    fn emit(&self, e: EngineEvent) {
        let _ = self.shared.events.send(e);
    }

    fn update_status(&self, service: Id, f: impl FnOnce(&mut ServiceStatus)) {
        let Some(snapshot) = self.publish(|snap| {
            let s = snap.statuses.get_mut(&service)?;
            f(s);
            Some(s.clone())
        }) else {
            return;
        };
        let db = self.shared.db.clone();
        let persisted = snapshot.clone();
        let said = self.announcement(service, Announced::Status);
        self.shared.runtime.spawn_blocking(move || {
            if let Err(e) = db.save_status_from(&persisted, said.as_deref()) {
                tracing::warn!(error = %e, "could not save a service's sync status");
            }
        });
        self.emit(EngineEvent::StatusChanged(Box::new(snapshot)));
    }

    async fn worker(
        self,
        service: Id,
        mut interval: u64,
        mut rx: mpsc::UnboundedReceiver<WorkerCmd>,
        cancel: Arc<AtomicBool>,
    ) {
        // Stored services may predate the bound; a huge interval would overflow the timer.
        interval = bounded_interval(interval);
        let mut failures: u32 = 0;
        let first = self
            .status(service)
            .and_then(|s| s.last_end)
            .map(|end| {
                let due = end + chrono::Duration::seconds(interval as i64);
                (due - Utc::now())
                    .to_std()
                    .unwrap_or(Duration::from_secs(5))
            })
            .unwrap_or(Duration::from_secs(interval));
        let mut next = tokio::time::Instant::now() + first;
        self.set_next_run(service, next);
        loop {
            let periodic = self.shared.ctx.periodic;
            let cmd = tokio::select! {
                c = rx.recv() => match c {
                    Some(c) => c,
                    None => break,
                },
                _ = tokio::time::sleep_until(next), if periodic => WorkerCmd::Refresh(JobTrigger::Periodic, None),
            };
            match cmd {
                WorkerCmd::SetInterval(s) => {
                    interval = bounded_interval(s);
                    self.update_status(service, |st| st.interval_secs = s);
                    next = tokio::time::Instant::now() + Duration::from_secs(interval);
                    self.set_next_run(service, next);
                }
                WorkerCmd::Compare(reply) => {
                    let _ = reply.send(self.compare_once(service).await);
                }
                WorkerCmd::Preview(reply) => {
                    let r = self.preview_once(service).await;
                    if let Ok(p) = &r {
                        self.emit(EngineEvent::PlanReady {
                            service,
                            plan: Box::new(p.clone()),
                            summary: p.summary.clone(),
                        });
                    } else if let Err(e) = &r {
                        self.emit(EngineEvent::Failed {
                            service,
                            reason: e.clone(),
                        });
                    }
                    if let Some(reply) = reply {
                        let _ = reply.send(r);
                    }
                }
                WorkerCmd::Refresh(trigger, reply) => {
                    let mut replies = vec![reply];
                    // Refreshes asked for while this one waits are the same refresh.
                    while let Ok(WorkerCmd::Refresh(_, r)) = rx.try_recv() {
                        replies.push(r);
                    }
                    // On a team's database, a console that holds no Run As secret for the
                    // service leaves the automatic syncs to one that does (a person's Refresh
                    // still runs, and says what is missing).
                    let asked =
                        replies.iter().any(Option::is_some) || trigger == JobTrigger::Refresh;
                    if !asked && let Some(why) = self.secret_missing(service).await {
                        // Another console's recent run shows as it is; with none, why not here.
                        let recent =
                            self.status(service)
                                .and_then(|s| s.last_end)
                                .is_some_and(|end| {
                                    Utc::now() - end
                                        < chrono::Duration::seconds(2 * interval as i64)
                                });
                        if !recent {
                            self.update_status(service, |s| s.state = SyncState::Waiting(why));
                        }
                        next = tokio::time::Instant::now() + Duration::from_secs(interval);
                        self.set_next_run(service, next);
                        continue;
                    }
                    let (job, transient) = self.run_sync(service, trigger, &cancel).await;
                    cancel.store(false, Ordering::Relaxed);
                    if job.result == JobResult::Failed && transient {
                        // A server that is down is tried again soon, then less and less often
                        // (never later than the service's interval): the one retry policy.
                        failures += 1;
                        let soon = RetryPolicy {
                            attempts: u32::MAX,
                            first_delay: Duration::from_secs(15),
                            max_delay: Duration::from_secs(interval.max(15)),
                        };
                        next = tokio::time::Instant::now() + soon.wait(failures, None);
                    } else {
                        failures = 0;
                        next = tokio::time::Instant::now() + Duration::from_secs(interval);
                    }
                    self.set_next_run(service, next);
                    for r in replies.into_iter().flatten() {
                        let _ = r.send(job.clone());
                    }
                }
            }
        }
    }

    /// Waits for changes on the service's IPAM server and syncs soon after each, so an edit
    /// there reaches the console within moments. A burst of edits becomes one sync: the first
    /// change waits `SETTLE` for the rest, and changes during a sync wait for it to end.
    /// A server that cannot be waited on is polled at the interval, and its status says so.
    async fn listen(self, service: Id) {
        const WAIT: Duration = Duration::from_secs(20);
        const SETTLE: Duration = Duration::from_millis(200);
        let mut failures: u32 = 0;
        // The first wait is short: it finds out at once whether the server can be waited on.
        let mut wait = Duration::from_secs(1);
        loop {
            let Some(svc) = self.service(service) else {
                return;
            };
            if !svc.sync_on_change {
                self.update_status(service, |s| {
                    s.updates = Updates::Polling(format!(
                        "sync on change is off; the server is read every {}",
                        interval_text(svc.sync_interval_secs)
                    ))
                });
                self.until_settings_change(&svc, Duration::from_secs(300))
                    .await;
                continue;
            }
            let cursor = self.stored_cursor(service).await;
            let asked = wait;
            let waited_from = cursor.clone();
            let waited = match (self.connect(&svc).await, cursor) {
                (Ok(provider), Some(cursor)) => {
                    let t = Instant::now();
                    wait = WAIT;
                    provider
                        .wait_for_change(&cursor, asked)
                        .await
                        .map(|w| (w, t.elapsed()))
                        .map_err(|e| e.to_string())
                }
                // Nothing to wait from until the first sync read the server.
                (Ok(_), None) => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                (Err(e), _) => Err(e),
            };
            match waited {
                Ok((ChangeWait::Unsupported(reason), _)) => {
                    let why = format!(
                        "{reason}; it is read every {}",
                        interval_text(svc.sync_interval_secs)
                    );
                    self.update_status(service, |s| s.updates = Updates::Polling(why));
                    self.until_settings_change(&svc, Duration::from_secs(300))
                        .await;
                }
                Ok((ChangeWait::Quiet, took)) => {
                    self.after_recovery(service, &mut failures);
                    self.set_live(service, None);
                    // An answer well before the time (a server that does not hold requests
                    // open, or no cursor yet) is not asked again at once.
                    if took < asked / 2 {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                    }
                }
                Ok((ChangeWait::Changed, _)) => {
                    failures = 0;
                    let seen = Instant::now();
                    tokio::time::sleep(SETTLE).await;
                    // A sync meanwhile (this one's own writes, read back) moved the cursor on:
                    // wait again from there, which answers at once if anything else changed.
                    let now = self.stored_cursor(service).await;
                    if now != waited_from {
                        continue;
                    }
                    let (tx, rx) = oneshot::channel();
                    self.to_worker(
                        service,
                        WorkerCmd::Refresh(JobTrigger::ServerChange, Some(tx)),
                    );
                    if let Ok(job) = rx.await
                        && job.result != JobResult::Failed
                    {
                        self.set_live(service, Some(seen.elapsed()));
                    } else {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                    }
                }
                Err(e) => {
                    failures += 1;
                    let why = format!(
                        "waiting for changes failed ({e}); it is read at every sync until the server answers again"
                    );
                    self.update_status(service, |s| s.updates = Updates::Polling(why));
                    let backoff = RetryPolicy {
                        attempts: u32::MAX,
                        first_delay: Duration::from_secs(2),
                        max_delay: Duration::from_secs(15),
                    };
                    self.backoff_unless_synced(&svc, backoff.wait(failures, None))
                        .await;
                    // A short wait first: it tells at once whether the server answers again.
                    wait = Duration::from_secs(1);
                }
            }
        }
    }

    /// The server answers again after failed waits: when the service's last sync failed too
    /// (it could not reach the server either), a sync now catches up instead of at the interval.
    fn after_recovery(&self, service: Id, failures: &mut u32) {
        if std::mem::take(failures) > 0
            && self
                .status(service)
                .is_some_and(|s| s.last_result == Some(JobResult::Failed))
        {
            self.to_worker(service, WorkerCmd::Refresh(JobTrigger::ServerChange, None));
        }
    }

    /// Sleeps `wait` after a failed wait, less when a sync of the service succeeds meanwhile (the
    /// server answers again) or its settings change.
    async fn backoff_unless_synced(&self, svc: &NetworkService, wait: Duration) {
        let from = Utc::now();
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let synced = self.status(svc.id).is_some_and(|s| {
                s.last_end.is_some_and(|e| e > from) && s.last_result != Some(JobResult::Failed)
            });
            if synced || self.service(svc.id).as_ref() != Some(svc) {
                return;
            }
        }
    }

    /// The service's stored change-feed cursor; none when it has none or it cannot be read
    /// (then the server is read from the start).
    async fn stored_cursor(&self, service: Id) -> Option<Cursor> {
        self.with_db(move |db| db.cursor(service))
            .await
            .ok()
            .flatten()
    }

    /// Sleeps until the service's settings differ from `svc` (or it is removed), `limit` at most.
    async fn until_settings_change(&self, svc: &NetworkService, limit: Duration) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline && self.service(svc.id).as_ref() == Some(svc) {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// The service is live; with the time from a change seen to its sync's end, when one ran.
    fn set_live(&self, service: Id, latency: Option<Duration>) {
        let already = self
            .status(service)
            .is_some_and(|s| matches!(s.updates, Updates::Live { .. }));
        if latency.is_none() && already {
            return;
        }
        self.update_status(service, |s| {
            let (last_event, last_latency_ms) = match (&s.updates, latency) {
                (_, Some(l)) => (Some(Utc::now()), Some(l.as_millis() as u64)),
                (
                    Updates::Live {
                        last_event,
                        last_latency_ms,
                    },
                    None,
                ) => (*last_event, *last_latency_ms),
                _ => (None, None),
            };
            s.updates = Updates::Live {
                last_event,
                last_latency_ms,
            };
        });
    }

    fn set_next_run(&self, service: Id, next: tokio::time::Instant) {
        let wait = next.saturating_duration_since(tokio::time::Instant::now());
        let at = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
        let periodic = self.shared.ctx.periodic;
        self.update_status(service, |s| s.next_run = periodic.then_some(at));
    }

    /// Shows a sync's progress (this engine's or, heard, another console's).
    fn show_progress(&self, service: Id, stage: SyncStage, done: u64, total: u64) {
        // Published before the event, so whoever hears the event reads a snapshot that has it.
        self.publish(|snap| {
            snap.statuses.get_mut(&service)?.state = SyncState::Syncing { stage, done, total };
            Some(())
        });
        self.emit(EngineEvent::Progress {
            service,
            stage,
            done,
            total,
        });
    }

    fn progress(&self, service: Id, stage: SyncStage, done: u64, total: u64) {
        self.show_progress(service, stage, done, total);
        // The other consoles see it too, a few times a second at most.
        const EVERY: Duration = Duration::from_millis(250);
        let due = {
            let mut last = self
                .shared
                .announced
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let due = last.get(&service).is_none_or(|t| t.elapsed() >= EVERY)
                || (total > 0 && done >= total);
            if due {
                last.insert(service, Instant::now());
            }
            due
        };
        if due
            && let Some(said) =
                self.announcement(service, Announced::Progress { stage, done, total })
        {
            let db = self.shared.db.clone();
            self.shared.runtime.spawn_blocking(move || {
                if let Err(e) = db.announce(&said) {
                    tracing::debug!(error = %e, "could not announce a sync's progress");
                }
            });
        }
    }

    async fn connect(&self, service: &NetworkService) -> Result<Arc<dyn IpamProvider>, String> {
        let fabric = self.shared.ctx.store.directory();
        let config = provider_config(&fabric, &self.shared.ctx.secrets, service)
            .await
            .map_err(|e| e.to_string())?;
        let factory = self.shared.ctx.registry.get(&service.provider).ok_or_else(|| {
            format!(
                "Network service \"{}\" uses configuration provider \"{}\", which is not installed.",
                service.name, service.provider
            )
        })?;
        factory.connect(config).map_err(|e| e.to_string())
    }

    /// Reads the IPAM side: the change feed since the stored cursor, or everything. Nothing
    /// else is read: an empty feed costs one request and one row. With `trust_events` (a sync
    /// of a console save), a server whose live events say nothing changed is not asked; other
    /// syncs always read, as the safety net for changes that publish no event.
    async fn read_ipam(
        &self,
        service: Id,
        provider: &dyn IpamProvider,
        trust_events: bool,
    ) -> Result<IpamRead, IpamError> {
        let since = self.stored_cursor(service).await;
        // Its events say nothing changed since the cursor: the stored mirror holds.
        if let Some(cursor) = &since
            && trust_events
            && provider.known_unchanged(cursor)
        {
            return Ok(IpamRead::Unchanged(Some(cursor.clone())));
        }
        self.shared.provider_calls.fetch_add(1, Ordering::Relaxed);
        match provider
            .snapshot(&SnapshotScope::All, since.as_ref())
            .await?
        {
            SnapshotRead::Full(s) => Ok(IpamRead::Full(s)),
            SnapshotRead::Changes(c) if c.is_empty() => Ok(IpamRead::Unchanged(c.cursor)),
            SnapshotRead::Changes(c) => Ok(IpamRead::Changes(c)),
        }
    }

    /// The IPAM side's state after `read`: the stored mirror with the changes applied, or what
    /// a full read found; with the objects the changes touched (`None` after a full read).
    async fn ipam_state(
        &self,
        provider: &dyn IpamProvider,
        read: IpamRead,
        stored: Option<IpamSnapshot>,
    ) -> Result<(IpamSnapshot, Option<IpamTouched>), IpamError> {
        let (mut mirror, touched) = match (read, stored) {
            (IpamRead::Full(s), _) => (s, None),
            (IpamRead::Unchanged(cursor), Some(mut m)) => {
                m.cursor = cursor;
                return Ok((m, Some((Vec::new(), IpamSnapshot::default()))));
            }
            (IpamRead::Changes(c), Some(mut m)) => {
                let ids = c.touched();
                let before = m.only(&ids);
                m.apply_changes(c);
                (m, Some((ids, before)))
            }
            // Changes need the state they apply to; without it, read everything.
            (IpamRead::Unchanged(_) | IpamRead::Changes(_), None) => {
                self.shared.provider_calls.fetch_add(1, Ordering::Relaxed);
                let m = match provider.snapshot(&SnapshotScope::All, None).await? {
                    SnapshotRead::Full(s) => s,
                    SnapshotRead::Changes(c) => {
                        let mut m = IpamSnapshot::default();
                        m.apply_changes(c);
                        m
                    }
                };
                (m, None)
            }
        };
        mirror.sort_by_id();
        Ok((mirror, touched))
    }

    /// The grants and fabric revisions to report a service's usage at, when they changed
    /// since this engine last reported it or that was longer than `usage_recheck` ago (a hand
    /// edit of the server's copy is put back); `None` when nothing is due. Reading the server's
    /// copy costs about as much as the fabric is large, so a no-op sync does not do it each time.
    fn usage_due(&self, service_id: Id) -> Option<(u64, u64)> {
        let store = &self.shared.ctx.store;
        // An unreadable revision never counts as reported: the usage is due.
        let mark = (
            store.grants_revision().unwrap_or(u64::MAX),
            store.revision(),
        );
        let reported = self
            .shared
            .usage_reported
            .lock()
            .ok()
            .and_then(|m| m.get(&service_id).copied());
        let recheck = self.shared.ctx.usage_recheck;
        let fresh = reported.is_some_and(|(g, f, at)| (g, f) == mark && at.elapsed() < recheck);
        (!fresh).then_some(mark)
    }

    /// The side-by-side view of a service. It needs both sides whole: no shortcut. With a server
    /// that keeps usage, each pool row shows the utilization on both sides too.
    async fn compare_once(&self, service: Id) -> Result<(CompareView, SyncPlan), String> {
        let (plan, fabric, svc, mirror, base) = self.read_and_plan(service).await?;
        let mut view = compare(&fabric, &svc, &mirror, &base, &plan);
        let provider = self.connect(&svc).await?;
        if provider.keeps_usage() {
            let ranges = usage_ranges(&mirror);
            let store = &self.shared.ctx.store;
            let grants = store.grants_async(None).await.map_err(|e| e.to_string())?;
            let counts = store
                .grant_counts_async()
                .await
                .map_err(|e| e.to_string())?;
            let desired = super::usage::desired(&fabric, &grants, &ranges, &counts);
            let held = provider.range_usages().await.map_err(|e| e.to_string())?;
            super::usage::annotate(&mut view, &ranges, &desired, &held);
        }
        Ok((view, plan))
    }

    /// The pool ranges for a no-op sync's usage step: those this engine knows as of the stored
    /// state's generation; else, when usage is due, read from the stored mirror; else none (the
    /// process that wrote the state ran the step, and this one's next full sync will).
    async fn noop_usage_ranges(&self, service_id: Id) -> Option<PoolRanges> {
        let generation = self
            .with_db(move |db| db.generation(service_id))
            .await
            .ok()?;
        let known = self
            .shared
            .usage_ranges
            .lock()
            .ok()
            .and_then(|m| m.get(&service_id).cloned())
            .filter(|(g, _)| *g == generation)
            .map(|(_, r)| r);
        if known.is_some() {
            return known;
        }
        self.usage_due(service_id)?;
        let state = self.peek_state(service_id).await.ok()?;
        let ranges = Arc::new(usage_ranges(state.mirror.as_ref()?));
        if let Ok(mut m) = self.shared.usage_ranges.lock() {
            m.insert(service_id, (state.generation, ranges.clone()));
        }
        Some(ranges)
    }

    /// The usage step of a sync with a server that keeps usage: reads the addresses the server
    /// holds in the console's pools (every sync, so grants avoid them), warns of console grants
    /// on them, and reports usage when grants or the fabric changed since this engine last did.
    /// Failures are warnings: the next sync reads the server's copy and sends what still
    /// differs. Pools the report finds near exhaustion become notices.
    async fn sync_usage(
        &self,
        service_id: Id,
        provider: &dyn IpamProvider,
        fabric: &Fabric,
        ranges: &[(Id, IpamId)],
        job: &mut JobRecord,
    ) {
        let store = &self.shared.ctx.store;
        match provider.assignments().await {
            Ok(assignments) => {
                let rows = super::usage::held_rows(&assignments, ranges);
                if !rows.is_empty()
                    && let Ok(grants) = store.grants_async(None).await
                    && let Some(w) = super::usage::clashes(fabric, &grants, &rows)
                {
                    job.errors.push(w);
                }
                if let Err(e) = store.replace_ipam_held_async(service_id, rows).await {
                    job.errors.push(format!(
                        "The addresses in use on the IPAM side were not saved in the console: {e}"
                    ));
                }
            }
            Err(e) => job.errors.push(format!(
                "The addresses in use on the IPAM side were not read: {e} Grants still avoid the ones the last sync read."
            )),
        }
        let Some(mark) = self.usage_due(service_id) else {
            return;
        };
        let read = async {
            let grants = store.grants_async(None).await?;
            let counts = store.grant_counts_async().await?;
            Ok::<_, crate::fabric::store::StoreError>((grants, counts))
        };
        let (grants, counts) = match read.await {
            Ok(r) => r,
            Err(e) => {
                job.errors
                    .push(format!("Address usage was not reported: {e}"));
                return;
            }
        };
        let desired = super::usage::desired(fabric, &grants, ranges, &counts);
        match super::usage::report(provider, desired).await {
            Ok(sent) => {
                tracing::info!(service = %service_id, ranges = sent.len(), "address usage reported");
                if let Ok(mut m) = self.shared.usage_reported.lock() {
                    m.insert(service_id, (mark.0, mark.1, Instant::now()));
                }
                job.notices.extend(super::usage::level_notices(
                    fabric,
                    &sent,
                    ranges,
                    self.shared.ctx.usage_levels,
                ));
            }
            Err(e) => job.errors.push(format!(
                "Address usage was not reported to the IPAM server: {e} The next sync reads what the server holds and sends what still differs."
            )),
        }
    }

    /// Reads the change feed once more after a sync's writes: when it holds nothing but those
    /// writes, exactly as the mirror now has them, the mirror's cursor moves past them, so the
    /// next sync (and a listener waiting on the server) does not take the sync's own writes for
    /// news. Anything else in the feed (another writer's edit) leaves the cursor where it was,
    /// for the next sync to plan.
    async fn read_back_own_writes(&self, provider: &dyn IpamProvider, mirror: &mut IpamSnapshot) {
        let Some(since) = mirror.cursor.clone() else {
            return;
        };
        self.shared.provider_calls.fetch_add(1, Ordering::Relaxed);
        if let Ok(SnapshotRead::Changes(c)) =
            provider.snapshot(&SnapshotScope::All, Some(&since)).await
            && c.cursor.is_some()
            && mirror.holds(&c)
        {
            mirror.cursor = c.cursor;
        }
    }

    /// The service's stored base and mirror: as this engine's last sync left them when no
    /// other process wrote them since (one small query), else read from the sync database.
    async fn take_state(&self, service: Id) -> Result<StoredState, String> {
        let kept = self.states().remove(&service);
        let generation = self.with_db(move |db| db.generation(service)).await?;
        match kept {
            Some(s) if generation > 0 && s.generation == generation => Ok(s),
            _ => self.with_db(move |db| db.state(service)).await,
        }
    }

    /// A copy of the service's stored base and mirror (see `take_state`), leaving them kept.
    async fn peek_state(&self, service: Id) -> Result<StoredState, String> {
        let generation = self.with_db(move |db| db.generation(service)).await?;
        let kept = self
            .states()
            .get(&service)
            .filter(|s| generation > 0 && s.generation == generation)
            .cloned();
        match kept {
            Some(s) => Ok(s),
            None => self.with_db(move |db| db.state(service)).await,
        }
    }

    fn states(&self) -> std::sync::MutexGuard<'_, HashMap<Id, StoredState>> {
        self.shared
            .states
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The operator's pending conflict decisions for a service.
    async fn resolutions(
        &self,
        service_id: Id,
    ) -> Result<BTreeMap<String, super::plan::Resolution>, String> {
        self.with_db(move |db| db.resolutions(service_id)).await
    }

    /// The whole fabric, read on the blocking pool when a lazily opened store has not read it.
    async fn full_fabric(&self) -> Result<Arc<crate::fabric::model::Fabric>, String> {
        let store = self.shared.ctx.store.clone();
        tokio::task::spawn_blocking(move || store.full())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    /// Runs `f` on the sync database on the blocking pool.
    async fn with_db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&SyncDb) -> Result<T, SyncDbError> + Send + 'static,
    ) -> Result<T, String> {
        let db = self.shared.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    /// The plan a sync would carry out now. When neither side changed since both agreed, the
    /// plan is empty and nothing but the change feed is read.
    async fn preview_once(&self, service_id: Id) -> Result<SyncPlan, String> {
        let service = self.service(service_id).ok_or(GONE)?;
        let provider = self.connect(&service).await?;
        let read = self
            .read_ipam(service_id, provider.as_ref(), false)
            .await
            .map_err(|e| e.to_string())?;
        if matches!(read, IpamRead::Unchanged(_)) && self.agreed_now(service_id).await? {
            return Ok(SyncPlan::default());
        }
        let state = self.peek_state(service_id).await?;
        let (mirror, ipam_touched) = self
            .ipam_state(provider.as_ref(), read, state.mirror)
            .await
            .map_err(|e| e.to_string())?;
        let fabric = self.full_fabric().await?;
        let resolutions = self.resolutions(service_id).await?;
        // What a sync now would plan: only the parts touched since both sides agreed.
        let console_touched = self
            .console_changes_since_agreed(service_id, ipam_touched.is_some(), &resolutions)
            .await?;
        let base = state.base;
        tokio::task::spawn_blocking(move || {
            plan_touched(
                &fabric,
                &service,
                &mirror,
                base,
                &resolutions,
                console_touched,
                ipam_touched,
            )
            .0
        })
        .await
        .map_err(|e| e.to_string())
    }

    /// The console objects written since both sides last agreed, or `None` when only a plan of
    /// everything will do: the IPAM side's changes are not known (`ipam_known` false), conflict
    /// decisions wait, the sides did not agree, or the change log no longer reaches back that far.
    async fn console_changes_since_agreed(
        &self,
        service_id: Id,
        ipam_known: bool,
        resolutions: &BTreeMap<String, super::plan::Resolution>,
    ) -> Result<Option<Vec<(ObjectKind, Id)>>, String> {
        if !ipam_known || !resolutions.is_empty() {
            return Ok(None);
        }
        let Some(settled) = self.with_db(move |db| db.settled(service_id)).await? else {
            return Ok(None);
        };
        let store = self.shared.ctx.store.clone();
        let changes = tokio::task::spawn_blocking(move || store.changes_since(settled))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        Ok(changes.map(|(_, touched)| touched))
    }

    /// Both sides agreed at the fabric's current revision, and no conflict decision waits.
    async fn agreed_now(&self, service_id: Id) -> Result<bool, String> {
        self.refresh_fabric().await?;
        let revision = self.shared.ctx.store.revision();
        let (settled, pending) = self
            .with_db(move |db| Ok((db.settled(service_id)?, db.has_resolutions(service_id)?)))
            .await?;
        Ok(!pending && settled == Some(revision))
    }

    /// Reads both sides whole and plans everything.
    #[allow(clippy::type_complexity)]
    async fn read_and_plan(
        &self,
        service_id: Id,
    ) -> Result<
        (
            SyncPlan,
            Arc<crate::fabric::model::Fabric>,
            NetworkService,
            IpamSnapshot,
            super::normal::BaseState,
        ),
        String,
    > {
        let service = self.service(service_id).ok_or(GONE)?;
        let provider = self.connect(&service).await?;
        let read = self
            .read_ipam(service_id, provider.as_ref(), false)
            .await
            .map_err(|e| e.to_string())?;
        let state = self.peek_state(service_id).await?;
        let (mirror, _) = self
            .ipam_state(provider.as_ref(), read, state.mirror)
            .await
            .map_err(|e| e.to_string())?;
        let base = state.base;
        let fabric = self.full_fabric().await?;
        let resolutions = self.resolutions(service_id).await?;
        tokio::task::spawn_blocking(move || {
            let p = plan(&PlanInput {
                fabric: &fabric,
                service: &service,
                ipam: &mirror,
                ipam_complete: true,
                base: &base,
                resolutions: &resolutions,
            });
            (p, fabric, service, mirror, base)
        })
        .await
        .map_err(|e| e.to_string())
    }

    /// One sync of one service. Returns the job and whether a failure is worth retrying soon.
    async fn run_sync(
        &self,
        service_id: Id,
        trigger: JobTrigger,
        cancel: &AtomicBool,
    ) -> (JobRecord, bool) {
        let started = Utc::now();
        let t0 = Instant::now();
        let fabric = self.shared.ctx.store.directory();
        let service_name = fabric
            .network_services
            .get(&service_id)
            .map(|s| s.name.clone())
            .unwrap_or_else(|| service_id.to_string());
        let mut job = JobRecord {
            id: Uuid::new_v4(),
            service: service_id,
            service_name: service_name.clone(),
            trigger,
            started,
            finished: None,
            result: JobResult::Running,
            counts: SyncCounts::default(),
            errors: Vec::new(),
            notices: Vec::new(),
            phases: PhaseTimes::default(),
        };
        self.record_job(&job);
        self.update_status(service_id, |s| {
            s.state = SyncState::Syncing {
                stage: SyncStage::Connecting,
                done: 0,
                total: 0,
            };
            s.last_start = Some(started);
        });
        self.emit(EngineEvent::Started {
            service: service_id,
            job: job.id,
        });
        let outcome = self.sync_steps(service_id, &mut job, cancel).await;
        let (transient, skew) = match &outcome {
            Ok(skew) => (false, *skew),
            Err((_, transient, skew)) => (*transient, *skew),
        };
        if let Err((reason, _, _)) = &outcome {
            job.result = if cancel.load(Ordering::Relaxed) {
                JobResult::Canceled
            } else {
                JobResult::Failed
            };
            job.errors.insert(0, reason.clone());
            self.emit(EngineEvent::Failed {
                service: service_id,
                reason: reason.clone(),
            });
        }
        job.finished = Some(Utc::now());
        self.record_job(&job);
        let keep = self.shared.ctx.retention;
        if let Err(e) = self.with_db(move |db| db.prune(service_id, keep)).await {
            tracing::warn!(error = %e, "could not prune old jobs and journal entries");
        }
        let threshold = self.shared.ctx.skew_threshold_ms;
        let skew_warning = skew.filter(|s| s.abs() > threshold).map(|s| {
            format!(
                "the IPAM server's clock is {} {} the console's; synchronize the clocks (w32tm /resync) or grant the provider access to the server time",
                format_skew(s.abs()),
                if s > 0 { "ahead of" } else { "behind" }
            )
        });
        let conflicts = self
            .status(service_id)
            .map(|s| s.conflicts.len())
            .unwrap_or(0);
        let job_c = job.clone();
        self.update_status(service_id, |s| {
            s.last_end = job_c.finished;
            s.last_result = Some(job_c.result);
            s.last_counts = job_c.counts.clone();
            if skew.is_some() {
                s.skew_ms = skew;
            }
            s.state = match job_c.result {
                JobResult::Failed => {
                    SyncState::Error(job_c.errors.first().cloned().unwrap_or_default())
                }
                JobResult::Canceled => SyncState::Warning("the last sync was canceled".into()),
                _ => {
                    if let Some(w) = &skew_warning {
                        SyncState::Warning(w.clone())
                    } else if conflicts > 0 {
                        SyncState::Warning(format!("{conflicts} conflict(s) need a decision"))
                    } else if !job_c.errors.is_empty() {
                        SyncState::Warning(format!(
                            "{} object(s) could not be synced",
                            job_c.errors.len()
                        ))
                    } else {
                        SyncState::InSync
                    }
                }
            };
        });
        tracing::info!(
            service = %service_name,
            result = job.result.label(),
            ms = t0.elapsed().as_millis() as u64,
            changes = job.counts.total_changes(),
            phases = %job.phases.summary(),
            planned_networks = job.counts.planned_networks,
            "sync finished"
        );
        self.emit(EngineEvent::Finished {
            service: service_id,
            job: Box::new(job.clone()),
        });
        (job, transient)
    }

    fn record_job(&self, job: &JobRecord) {
        self.publish(|snap| {
            let jobs = Arc::make_mut(&mut snap.jobs);
            match jobs.iter_mut().find(|j| j.id == job.id) {
                Some(j) => *j = job.clone(),
                None => {
                    jobs.insert(0, job.clone());
                    jobs.truncate(JOBS_KEPT);
                }
            }
            Some(())
        });
        let db = self.shared.db.clone();
        let said = self.announcement(job.service, Announced::Job);
        let job = job.clone();
        self.shared.runtime.spawn_blocking(move || {
            if let Err(e) = db.save_job_from(&job, said.as_deref()) {
                tracing::warn!(error = %e, "could not save a job record");
            }
        });
    }

    /// Takes the service's lease, waiting (and saying for whom, in its status) while another
    /// process or engine syncs it. Err((reason, transient)) when canceled or the wait runs out.
    async fn take_lease(&self, service: Id, cancel: &AtomicBool) -> Result<Lease, (String, bool)> {
        let name = self
            .service(service)
            .map(|s| s.name)
            .unwrap_or_else(|| service.to_string());
        let waited = wait_for_lease(
            self.shared.leases.clone(),
            service,
            &self.shared.ctx.program,
            cancel,
            self.shared.ctx.lease_wait,
            |by| {
                tracing::info!(service = %name, "waiting: \"{name}\" is {by}");
                self.update_status(service, |s| s.state = SyncState::Waiting(by.to_string()));
            },
        )
        .await;
        waited.map_err(|e| match e {
            LeaseWait::Canceled => ("The sync was canceled.".into(), false),
            LeaseWait::TimedOut { by, waited } => (
                format!("\"{name}\" is {by}, and that sync did not finish within {waited}; try again later."),
                true,
            ),
            LeaseWait::Failed(e) => (e, false),
        })
    }

    /// Reloads the fabric if another process committed to the store since this one read it, and
    /// tells the console.
    async fn refresh_fabric(&self) -> Result<(), String> {
        let store = self.shared.ctx.store.clone();
        let changed = tokio::task::spawn_blocking(move || store.refresh())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        if changed {
            // A service another process added gets its worker (and its status) here too.
            self.spawn_missing_workers();
            self.emit(EngineEvent::FabricChanged);
        }
        Ok(())
    }

    /// Ok(skew) or Err((reason, transient, skew)).
    async fn sync_steps(
        &self,
        service_id: Id,
        job: &mut JobRecord,
        cancel: &AtomicBool,
    ) -> Result<Option<i64>, (String, bool, Option<i64>)> {
        // One sync per service across processes; then plan against what they wrote, not against
        // what this process read earlier.
        let lease = self
            .take_lease(service_id, cancel)
            .await
            .map_err(|(reason, transient)| (reason, transient, None))?;
        // A lease lost while held (its connection to the shared database dropped) stops the sync
        // as a crash would: another worker may hold it now, and the journal covers what was sent.
        let canceled = || cancel.load(Ordering::Relaxed) || lease.is_lost();
        let stop = |skew| {
            if lease.is_lost() {
                (LEASE_LOST.to_string(), true, skew)
            } else {
                ("The sync was canceled.".to_string(), false, skew)
            }
        };
        let _held = Held::new(&self.shared, service_id);
        self.refresh_fabric()
            .await
            .map_err(|reason| (reason, false, None))?;
        let service = self
            .service(service_id)
            .ok_or((GONE.to_string(), false, None))?;
        let mut phase = Instant::now();
        let mut lap = |into: &mut u32| {
            *into = phase.elapsed().as_millis().min(u128::from(u32::MAX)) as u32;
            phase = Instant::now();
        };
        self.progress(service_id, SyncStage::Connecting, 0, 0);
        let provider = self.connect(&service).await.map_err(|e| (e, false, None))?;
        let ipam_err = |e: IpamError, skew| {
            let t = e.is_transient();
            (e.to_string(), t, skew)
        };
        recover_journal(provider.as_ref(), &self.shared.db, service_id)
            .await
            .map_err(|e| ipam_err(e, None))?;

        self.progress(service_id, SyncStage::ReadingClock, 0, 0);
        let before = Utc::now();
        self.shared.provider_calls.fetch_add(1, Ordering::Relaxed);
        let server_time = provider
            .server_time()
            .await
            .map_err(|e| ipam_err(e, None))?;
        let after = Utc::now();
        let mid = before + (after - before) / 2;
        let skew = (server_time - mid).num_milliseconds();
        let warn = skew.abs() > self.shared.ctx.skew_threshold_ms;
        self.emit(EngineEvent::SkewMeasured {
            service: service_id,
            skew_ms: skew,
            warning: warn,
        });
        if warn {
            tracing::warn!(service = %service.name, skew_ms = skew, "IPAM server clock skew beyond the threshold");
        }
        self.update_status(service_id, |s| s.skew_ms = Some(skew));
        let skew = Some(skew);
        if canceled() {
            return Err(stop(skew));
        }

        self.progress(service_id, SyncStage::ReadingIpam, 0, 0);
        let read = self
            .read_ipam(
                service_id,
                provider.as_ref(),
                job.trigger == JobTrigger::ConsoleChange,
            )
            .await
            .map_err(|e| ipam_err(e, skew))?;
        if canceled() {
            return Err(stop(skew));
        }

        lap(&mut job.phases.read_ms);
        self.progress(service_id, SyncStage::ReadingConsole, 0, 0);
        if let IpamRead::Unchanged(cursor) = &read
            && self
                .agreed_now(service_id)
                .await
                .map_err(|e| (e, false, skew))?
        {
            // Neither side changed since both agreed: nothing to read, plan or send; only the
            // cursor moves on. The cost does not depend on the size of the fabric.
            let cursor = cursor.clone();
            self.with_db(move |db| db.save_cursor(service_id, &cursor))
                .await
                .map_err(|e| (e, false, skew))?;
            self.update_status(service_id, |s| {
                s.conflicts.clear();
                s.orphans.clear();
            });
            job.counts.planned_networks = Some(0);
            // Grants change without the fabric, and the server's assignments without its
            // change feed: the usage step runs still.
            if provider.keeps_usage()
                && let Some(ranges) = self.noop_usage_ranges(service_id).await
                && !ranges.is_empty()
            {
                let fabric = self.full_fabric().await.map_err(|e| (e, false, skew))?;
                self.sync_usage(service_id, provider.as_ref(), &fabric, &ranges, job)
                    .await;
            }
            job.result = if !job.errors.is_empty()
                || skew.is_some_and(|s| s.abs() > self.shared.ctx.skew_threshold_ms)
            {
                JobResult::CompletedWithWarnings
            } else {
                JobResult::Succeeded
            };
            return Ok(skew);
        }
        let state = self
            .take_state(service_id)
            .await
            .map_err(|e| (e, false, skew))?;
        let read_at = state.generation;
        let (mut mirror, ipam_touched) = self
            .ipam_state(provider.as_ref(), read, state.mirror)
            .await
            .map_err(|e| ipam_err(e, skew))?;
        let base = state.base;
        // The objects whose mirror rows this sync may change: what the feed touched, then what
        // it applies (`None` after a full read: all of them).
        let mut mirror_touched: Option<Vec<(IpamKind, IpamId)>> =
            ipam_touched.as_ref().map(|(ids, _)| ids.clone());
        // The revision before the fabric: the fabric planned from is at least this new.
        let planned_revision = self.shared.ctx.store.revision();
        let fabric = self.full_fabric().await.map_err(|e| (e, false, skew))?;
        let resolutions = self
            .resolutions(service_id)
            .await
            .map_err(|e| (e, false, skew))?;
        let console_touched = self
            .console_changes_since_agreed(service_id, ipam_touched.is_some(), &resolutions)
            .await
            .map_err(|e| (e, false, skew))?;

        self.progress(service_id, SyncStage::Planning, 0, 0);
        let (plan, base_before, mirror_for_plan, parts) = {
            let fabric = fabric.clone();
            let service = service.clone();
            let resolutions = resolutions.clone();
            let m = mirror;
            tokio::task::spawn_blocking(move || {
                let (plan, base_before, parts) = plan_touched(
                    &fabric,
                    &service,
                    &m,
                    base,
                    &resolutions,
                    console_touched,
                    ipam_touched,
                );
                (plan, base_before, m, parts)
            })
            .await
            .map_err(|e| (e.to_string(), false, skew))?
        };
        mirror = mirror_for_plan;
        job.counts.planned_networks = parts.as_ref().map(|p| p.3);
        let open_conflicts: Vec<_> = plan
            .conflicts
            .iter()
            .filter(|c| !c.put_back)
            .cloned()
            .collect();
        if !plan.conflicts.is_empty() {
            self.emit(EngineEvent::Conflicts {
                service: service_id,
                conflicts: plan.conflicts.clone(),
            });
        }
        let orphans = plan.orphans.clone();
        self.update_status(service_id, |s| {
            s.conflicts = open_conflicts.clone();
            s.orphans = orphans.clone();
        });
        for c in plan.conflicts.iter().filter(|c| c.put_back) {
            let what = match c.kind {
                ObjectKind::IpPool => "Static IP address pool",
                _ => "VM network",
            };
            job.errors.push(format!(
                "{what} \"{}\": {} was changed on the IPAM server ({}) and was put back to the console's value ({}); VM networks and their pools are managed in the console.",
                c.object_name, c.field, c.ipam, c.console
            ));
        }
        for c in &open_conflicts {
            job.errors.push(format!(
                "Conflict on {} \"{}\", {}: console has {}, IPAM server has {}. Choose a value in the side-by-side view.",
                c.kind, c.object_name, c.field, c.console, c.ipam
            ));
        }
        for ln in &plan.orphans {
            let name = fabric
                .logical_networks
                .get(ln)
                .map(|l| l.name.clone())
                .unwrap_or_default();
            job.errors.push(format!(
                "Logical network \"{name}\" is orphaned: its VMM Logical Network name was deleted on the IPAM server. Delete its network sites and the logical network in the console to complete the deletion."
            ));
        }
        job.counts.conflicts = open_conflicts.len() as u32;
        self.emit(EngineEvent::PlanReady {
            service: service_id,
            plan: Box::new(plan.clone()),
            summary: plan.summary.clone(),
        });
        if canceled() {
            return Err(stop(skew));
        }

        // From here on either side may change: both no longer known to agree until recorded.
        self.with_db(move |db| db.set_settled(service_id, None))
            .await
            .map_err(|e| (e, false, skew))?;
        lap(&mut job.phases.plan_ms);
        let total = plan.ipam_ops.len() as u64;
        self.progress(service_id, SyncStage::ApplyingIpam, 0, total);
        let batches = total.div_ceil(self.shared.ctx.apply.batch_size.max(1) as u64);
        self.shared
            .provider_calls
            .fetch_add(batches, Ordering::Relaxed);
        let this = self.clone();
        // Between batches the sending stops when canceled or when the lease is lost.
        let halt = AtomicBool::new(false);
        let watch = async {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if canceled() {
                    halt.store(true, Ordering::Relaxed);
                }
            }
        };
        let progress =
            move |done, total| this.progress(service_id, SyncStage::ApplyingIpam, done, total);
        let send = apply_ipam(
            provider.clone(),
            &self.shared.db,
            service_id,
            job.id,
            plan.ipam_ops.clone(),
            self.shared.ctx.apply,
            &halt,
            &progress,
        );
        let report = tokio::select! {
            report = send => report,
            () = watch => unreachable!("the watch never ends"),
        };
        if lease.is_lost() {
            return Err(stop(skew));
        }
        apply_to_mirror(&mut mirror, &report.applied);
        if !report.applied.is_empty() {
            mirror.sort_by_id();
        }
        if let Some(t) = &mut mirror_touched {
            t.extend(
                report
                    .applied
                    .iter()
                    .map(|op| (op.kind(), op.target_id().clone())),
            );
        }
        // Only after an incremental read: a server whose feed this sync could not use would be
        // read whole again.
        if mirror_touched.is_some()
            && !report.applied.is_empty()
            && report.applied.len() <= ECHO_READ_MAX
            && report.failed.is_empty()
            && !report.canceled
        {
            self.read_back_own_writes(provider.as_ref(), &mut mirror)
                .await;
        }
        for op in &report.applied {
            match op.verb() {
                OpVerb::Create => job.counts.ipam_created += 1,
                OpVerb::Update => job.counts.ipam_updated += 1,
                OpVerb::Delete => job.counts.ipam_deleted += 1,
            }
        }
        for (op, e) in &report.failed {
            job.errors
                .push(format!("{} {}: {e}", op.kind().label(), op.target_id()));
        }
        job.counts.failed += report.failed.len() as u32;

        lap(&mut job.phases.send_ms);
        self.progress(
            service_id,
            SyncStage::ApplyingConsole,
            0,
            plan.console_changes.len() as u64,
        );
        let console_report = if plan.console_changes.is_empty() || report.canceled {
            Default::default()
        } else {
            apply_console(&self.shared.ctx.store, plan.console_changes.clone()).await
        };
        if console_report.applied > 0 {
            let t = plan.summary.total(Side::Console);
            if console_report.failed.is_empty() {
                job.counts.console_created = t.create;
                job.counts.console_updated = t.update;
                job.counts.console_deleted = t.delete;
            } else {
                job.counts.console_updated = console_report.applied as u32;
            }
            self.emit(EngineEvent::FabricChanged);
        }
        job.counts.failed += console_report.failed.len() as u32;
        job.errors.extend(console_report.failed.iter().cloned());

        lap(&mut job.phases.receive_ms);
        self.progress(service_id, SyncStage::Recording, 0, 0);
        let fabric_after = self.full_fabric().await.map_err(|e| (e, false, skew))?;
        let fully =
            report.failed.is_empty() && console_report.failed.is_empty() && !report.canceled;
        let consumed: Vec<String> = if fully {
            resolutions.keys().cloned().collect()
        } else {
            Vec::new()
        };
        let agreed = fully && plan.conflicts.is_empty() && plan.orphans.is_empty();
        // Agreed at the revision planned from, or at this sync's own write when nothing else
        // was written meanwhile; another process's edit must stay "changed since" for the next.
        let now = self.shared.ctx.store.revision();
        let own_write = console_report.applied > 0;
        let foreign_write = now != planned_revision + u64::from(own_write);
        let settled = agreed.then_some(if foreign_write { planned_revision } else { now });
        // The sides agree on what this sync read and did. A save another writer made meanwhile
        // (read into `fabric_after`) is not agreed on: it stays a console change for the next
        // sync, never a false conflict against the value this sync just sent.
        let fabric_after = if foreign_write && console_report.failed.is_empty() {
            let mut seen = (*fabric).clone();
            seen.apply_changes(&plan.console_changes);
            Arc::new(seen)
        } else {
            fabric_after
        };
        // The ranges that stand for console pools, for the usage report after recording.
        let usage_ranges: Vec<(Id, IpamId)> = if provider.keeps_usage() {
            usage_ranges(&mirror)
        } else {
            Vec::new()
        };
        let usage_fabric = fabric_after.clone();
        let service_c = service.clone();
        // The base this sync planned from: the lease kept every other sync of this service
        // from writing another since it was read. Only the rows that changed are written.
        let mut parts = parts;
        if let Some((p, ..)) = &mut parts {
            p.add_created(&report.applied, &plan.console_changes);
        }
        let kept = self
            .with_db(move |db| {
                // The entries that may have changed, before and after, and the whole new base
                // when that is more than the entries (only the parts were planned).
                let (old, new, whole) = match (parts, base_before) {
                    (Some((parts, inside, rest, _)), _) => {
                        let part = agreed_part(&parts, &fabric_after, &service_c, &mirror, &inside);
                        let whole = join_base(rest, part.clone());
                        (inside, part, Some(whole))
                    }
                    (None, before) => {
                        let before = before.unwrap_or_default();
                        let new = agreed_base(&fabric_after, &service_c, &mirror, &before);
                        (before, new, None)
                    }
                };
                let write = StateWrite {
                    read_at: Some(read_at),
                    base: whole.as_ref().unwrap_or(&new),
                    base_change: Some((&old, &new)),
                    mirror: &mirror,
                    mirror_touched: mirror_touched.as_deref(),
                };
                let generation = db.record_sync(service_id, &write, &consumed, settled)?;
                let new_base = whole.unwrap_or(new);
                Ok(StoredState {
                    generation,
                    base: new_base,
                    mirror: Some(mirror),
                })
            })
            .await
            .map_err(|e| (e, false, skew))?;
        if let Ok(mut m) = self.shared.usage_ranges.lock() {
            m.insert(
                service_id,
                (kept.generation, Arc::new(usage_ranges.clone())),
            );
        }
        self.states().insert(service_id, kept);
        lap(&mut job.phases.record_ms);
        if !usage_ranges.is_empty() {
            self.sync_usage(
                service_id,
                provider.as_ref(),
                &usage_fabric,
                &usage_ranges,
                job,
            )
            .await;
        }
        lap(&mut job.phases.usage_ms);
        if report.canceled {
            return Err(stop(skew));
        }
        let warn_skew = skew.is_some_and(|s| s.abs() > self.shared.ctx.skew_threshold_ms);
        job.result = if job.counts.failed > 0 {
            // Completed with info only when every operation went through.
            let unknown = if report.unconfirmed > 0 {
                format!(
                    " The outcome of {} is not known yet: the next sync looks them up on the server before it sends anything.",
                    report.unconfirmed
                )
            } else {
                String::new()
            };
            job.errors.insert(
                0,
                format!(
                    "{} operation(s) could not be applied; the next sync tries them again.{unknown}",
                    job.counts.failed
                ),
            );
            JobResult::Failed
        } else if job.errors.is_empty() && !warn_skew {
            JobResult::Succeeded
        } else {
            JobResult::CompletedWithWarnings
        };
        Ok(skew)
    }
}

/// The parts a sync planned (when it planned only those): which, the base entries it planned
/// from, the rest of the base, and how many logical networks that was.
type PlannedParts = (Parts, BaseState, BaseState, u32);

/// Plans the parts the changes on either side touched when both are known (both sides agreed
/// before them), else everything. Returns the plan, and the base it planned from (everything)
/// or the parts.
fn plan_touched(
    fabric: &Fabric,
    service: &NetworkService,
    mirror: &IpamSnapshot,
    base: BaseState,
    resolutions: &BTreeMap<String, super::plan::Resolution>,
    console_touched: Option<Vec<(ObjectKind, Id)>>,
    ipam_touched: Option<IpamTouched>,
) -> (SyncPlan, Option<BaseState>, Option<PlannedParts>) {
    let parts = match (console_touched, ipam_touched) {
        (Some(console), Some((ipam, ipam_before))) => {
            let touched = Touched {
                console,
                ipam,
                ipam_before,
            };
            Parts::touched(fabric, mirror, &base, &touched)
        }
        _ => None,
    };
    let input = |base| PlanInput {
        fabric,
        service,
        ipam: mirror,
        ipam_complete: true,
        base,
        resolutions,
    };
    match parts {
        Some(parts) => {
            let empty = BaseState::default();
            let p = plan_parts(&input(&empty), base, &parts);
            let networks = parts.logical_network_count(fabric) as u32;
            (p.plan, None, Some((parts, p.inside, p.rest, networks)))
        }
        None => {
            let p = plan(&input(&base));
            (p, Some(base), None)
        }
    }
}

/// A sync interval as people say it: "5 min", "90 s".
fn interval_text(secs: u64) -> String {
    if secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

/// Syncs that wrote at most this many operations read their own writes back at once (see
/// `read_back_own_writes`); a larger one leaves that to the next sync, which plans only the
/// parts the writes touched.
const ECHO_READ_MAX: usize = 2000;

/// What a read of the IPAM side found.
enum IpamRead {
    /// The change feed since the stored cursor is empty: the stored mirror still holds, at
    /// this new cursor.
    Unchanged(Option<Cursor>),
    /// What changed since the stored cursor.
    Changes(ChangeSet),
    /// Everything (the server issued no feed, or the cursor was too old).
    Full(IpamSnapshot),
}

/// The IPAM objects a change feed wrote or deleted, and those objects as the mirror held them.
type IpamTouched = (Vec<(IpamKind, IpamId)>, IpamSnapshot);

/// "10 min 3 s", "42 s", "850 ms".
pub fn format_skew(ms: i64) -> String {
    let ms = ms.abs();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{} s", ms / 1000)
    } else if ms < 3_600_000 {
        format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000)
    } else {
        format!("{} h {} min", ms / 3_600_000, (ms % 3_600_000) / 60_000)
    }
}

/// The periodic interval the engine uses: never longer than validation allows, so timers and
/// date arithmetic cannot overflow whatever the stored value.
fn bounded_interval(secs: u64) -> u64 {
    secs.min(crate::fabric::validate::MAX_SYNC_INTERVAL_SECS)
}

/// Marks a service as synced by this engine while the lease is held: the other consoles'
/// announcements about it are not this engine's business meanwhile.
struct Held {
    shared: Arc<Shared>,
    service: Id,
}

impl Held {
    fn new(shared: &Arc<Shared>, service: Id) -> Self {
        shared
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(service);
        Held {
            shared: shared.clone(),
            service,
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.shared
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.service);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_stored_interval_still_makes_a_valid_timer() {
        let secs = bounded_interval(u64::MAX);
        assert_eq!(secs, crate::fabric::validate::MAX_SYNC_INTERVAL_SECS);
        // What the worker computes for its next run and its first due time must not overflow.
        let _ = tokio::time::Instant::now() + Duration::from_secs(secs);
        let _ = Utc::now() + chrono::Duration::seconds(secs as i64);
        assert_eq!(bounded_interval(60), 60);
    }
}
