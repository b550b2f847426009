//! The fabric database: one table per object kind, in the data directory's SQLite file (WAL) or
//! a team's PostgreSQL database (see `crate::db`).
//! Every write validates the whole resulting fabric first and then changes exactly the touched rows
//! in one transaction, so a refused or failed write changes nothing on disk or in memory.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::db::{Conn, DbError, Location, Role, Tx, params};
use tokio::sync::watch;

use super::model::{
    Fabric, FabricChange, FabricKind, FabricObject, HostGroup, Id, NetworkService, ObjectKind,
    RunAsAccount,
};
use super::validate::{ValidationError, validate_fabric};

mod grants;
pub use grants::{
    Consumer, Grant, GrantCounts, GrantError, GrantRequest, IpamHeld, MAX_HOLDER, PoolGrants,
    Taken, choose as choose_address,
};

/// Schema steps; `PRAGMA user_version` is the number of steps applied. Append only, never edit.
const MIGRATIONS: &[&str] = &["
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE host_groups (id TEXT PRIMARY KEY, name TEXT NOT NULL, body TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE run_as_accounts (id TEXT PRIMARY KEY, name TEXT NOT NULL, body TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE logical_networks (id TEXT PRIMARY KEY, name TEXT NOT NULL, body TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE network_sites (id TEXT PRIMARY KEY, name TEXT NOT NULL, body TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE ip_pools (id TEXT PRIMARY KEY, name TEXT NOT NULL, body TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE vm_networks (id TEXT PRIMARY KEY, name TEXT NOT NULL, body TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE network_services (id TEXT PRIMARY KEY, name TEXT NOT NULL, body TEXT NOT NULL) WITHOUT ROWID;
    INSERT INTO meta (key, value) VALUES ('revision', '0');
", "
    CREATE TABLE changes (revision INTEGER NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL);
    CREATE INDEX changes_by_revision ON changes (revision);
    INSERT INTO meta (key, value)
        SELECT 'changes_from', CAST(value AS INTEGER) + 1 FROM meta WHERE key = 'revision';
", "
    CREATE TABLE address_grants (
        pool TEXT NOT NULL,
        address TEXT NOT NULL,
        holder TEXT NOT NULL,
        consumer TEXT NOT NULL,
        granted_at TEXT NOT NULL,
        PRIMARY KEY (pool, address)
    ) WITHOUT ROWID;
", "
    CREATE TABLE ipam_held_addresses (
        service TEXT NOT NULL,
        pool TEXT NOT NULL,
        address TEXT NOT NULL,
        holder TEXT NOT NULL,
        PRIMARY KEY (pool, address, service)
    ) WITHOUT ROWID;
", "
    ALTER TABLE host_groups ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE run_as_accounts ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE logical_networks ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE network_sites ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE ip_pools ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE vm_networks ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE network_services ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
"];

/// The fabric schema version this Fabric Console writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// How many revisions of the change log are kept; a sync that agreed longer ago plans in full.
const CHANGES_KEPT: u64 = 4096;
/// The change log's mark for a write of the whole fabric (an import).
const EVERYTHING: &str = "*";
/// The PostgreSQL notification channel that carries each new fabric revision.
pub const REVISION_CHANNEL: &str = "fabric_console_revision";

/// The table of a kind stored as rows. Subnets live inside their network site's row.
fn table_of(kind: ObjectKind) -> Option<&'static str> {
    crate::match_kind!(kind, T => Some(T::COLLECTION), subnet => None)
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "The fabric database {path} could not be opened: {source}. Check that it is a Fabric Console database and that its folder is writable."
    )]
    Open { path: String, source: DbError },
    #[error(
        "The folder {path} for the fabric database could not be created: {source}. Check the path and its permissions."
    )]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "The fabric database could not be read or written: {0}. Try again; if it keeps failing, restore the fabric from an export."
    )]
    Database(#[from] DbError),
    #[error(
        "The fabric database has schema version {found}, but this Fabric Console knows versions up to {supported}. Open it with a newer Fabric Console."
    )]
    NewerSchema { found: i64, supported: i64 },
    #[error(
        "The fabric database holds a damaged {kind} row {id}: {message}. Restore the fabric from an export."
    )]
    Damaged {
        kind: ObjectKind,
        id: String,
        message: String,
    },
    #[error("{}", invalid_message(.0))]
    Invalid(Vec<ValidationError>),
    #[error(
        "A subnet cannot be changed on its own. Put the whole network site with its new subnets instead."
    )]
    SubnetChange,
    #[error("The fabric database task stopped unexpectedly: {0}. Try again.")]
    Task(String),
    #[error("{0}")]
    Conflict(Box<Conflict>),
}

/// A save refused because someone else saved (or deleted) the object after the editor opened
/// it: optimistic concurrency, never a silent overwrite.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    pub kind: ObjectKind,
    pub id: Id,
    /// The name the editor knew it by.
    pub name: String,
    /// The revision the editor opened, and the one stored now (`None`: deleted meanwhile).
    pub opened: u64,
    pub stored: Option<u64>,
    /// The object as stored now (`None`: deleted meanwhile).
    pub current: Option<FabricObject>,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = self.kind.label().to_lowercase();
        match &self.current {
            Some(_) => write!(
                f,
                "Someone else saved the {what} \"{}\" after you opened it, so your change was not saved. Reload it to see their change, then make yours again.",
                self.name
            ),
            None => write!(
                f,
                "Someone else deleted the {what} \"{}\" after you opened it, so your change was not saved.",
                self.name
            ),
        }
    }
}

/// What an editor opened: the object's revision then. A save that names it is refused with
/// [`StoreError::Conflict`] when the object was saved or deleted since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    pub kind: ObjectKind,
    pub id: Id,
    pub revision: u64,
}

fn invalid_message(errors: &[ValidationError]) -> String {
    match errors {
        [] => "The change was not saved.".to_string(),
        [one] => format!("The change was not saved: {one}"),
        many => {
            let mut text = format!(
                "The change was not saved because of {} problems:",
                many.len()
            );
            for (i, e) in many.iter().enumerate() {
                text.push_str(&format!(" {}) {e}", i + 1));
            }
            text
        }
    }
}

impl StoreError {
    /// The validation problems when a write was refused, for dialogs that mark fields.
    pub fn validation_errors(&self) -> &[ValidationError] {
        match self {
            StoreError::Invalid(errors) => errors,
            _ => &[],
        }
    }
}

/// The fabric database. Cheap to clone; all clones share one connection and one cached fabric.
#[derive(Clone)]
pub struct FabricStore {
    inner: Arc<StoreInner>,
}

struct StoreInner {
    state: Mutex<Connected>,
    /// Only the directory (host groups, Run As accounts, network services) is loaded yet; the
    /// rest is read on the first `fabric()` (see `open_lazily`).
    partial: std::sync::atomic::AtomicBool,
    /// The current fabric; `fabric()` reads it without touching the database.
    current: watch::Sender<Arc<Fabric>>,
    path: Option<PathBuf>,
    /// On PostgreSQL: counts the commits other connections announced (`REVISION_CHANNEL`),
    /// with the listener that hears them.
    announced: Option<(watch::Receiver<u64>, crate::db::postgres::Listener)>,
    /// What the store is kept in, for messages.
    shown: String,
}

struct Connected {
    conn: Conn,
    /// The `meta.revision` the cache was loaded at; another process's write bumps it.
    revision: u64,
    /// Each cached object's revision: the fabric revision that last wrote its row.
    rows: Revisions,
}

/// Each object's revision, by kind and id.
type Revisions = std::collections::HashMap<(ObjectKind, Id), u64>;

impl std::fmt::Debug for FabricStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FabricStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl FabricStore {
    /// Opens (or creates, with the root host group "All Hosts") the database file at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_file(path, false)
    }

    /// Opens the database reading only its directory (host groups, Run As accounts, network
    /// services): what a sync needs to find out whether anything changed. The rest of the
    /// fabric is read when first asked for (`fabric()`, `full()`), so a sync with nothing to
    /// do never reads it. For commands; the console opens eagerly.
    pub fn open_lazily(path: &Path) -> Result<Self, StoreError> {
        Self::open_file(path, true)
    }

    fn open_file(path: &Path, lazily: bool) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::Folder {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let conn = Conn::sqlite_file(path, Role::Fabric).map_err(|e| StoreError::Open {
            path: path.display().to_string(),
            source: e.into(),
        })?;
        Self::from_connection(conn, Some(path.to_path_buf()), lazily)
    }

    /// Opens the fabric database at `location` (the data directory's file, or a team's
    /// PostgreSQL database), creating its schema and root host group when new.
    pub fn open_at(location: &Location, lazily: bool) -> Result<Self, StoreError> {
        match location {
            Location::Sqlite(dir) => {
                Self::open_file(&dir.join(crate::db::file_name(Role::Fabric)), lazily)
            }
            Location::Memory => Self::open_in_memory(),
            Location::Postgres(_) => {
                let conn =
                    Conn::open(location, Role::Fabric).map_err(|source| StoreError::Open {
                        path: location.describe(Role::Fabric),
                        source,
                    })?;
                Self::from_connection(conn, None, lazily)
            }
        }
    }

    /// A database that lives only in memory, for tests and previews.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let conn = Conn::sqlite_memory(Role::Fabric).map_err(DbError::from)?;
        Self::from_connection(conn, None, false)
    }

    fn from_connection(
        mut conn: Conn,
        path: Option<PathBuf>,
        lazily: bool,
    ) -> Result<Self, StoreError> {
        conn.migrate(MIGRATIONS).map_err(|e| match e {
            DbError::NewerSchema { found, supported } => {
                StoreError::NewerSchema { found, supported }
            }
            e => StoreError::Database(e),
        })?;
        ensure_root(&mut conn)?;
        let (fabric, revision, rows) = if lazily {
            let tx = conn.read()?;
            let loaded = load_directory(&tx)?;
            tx.commit()?;
            loaded
        } else {
            load_consistent(&mut conn)?
        };
        let (current, _) = watch::channel(Arc::new(fabric));
        let shown = match (&path, conn.pg_target()) {
            (_, Some(t)) => t.to_string(),
            (Some(p), None) => p.display().to_string(),
            (None, None) => "memory".to_string(),
        };
        let announced = conn.pg_target().map(listen_for_commits).transpose()?;
        Ok(FabricStore {
            inner: Arc::new(StoreInner {
                state: Mutex::new(Connected {
                    conn,
                    revision,
                    rows,
                }),
                partial: std::sync::atomic::AtomicBool::new(lazily),
                current,
                path,
                announced,
                shown,
            }),
        })
    }

    fn is_partial(&self) -> bool {
        self.inner
            .partial
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// The published fabric is the whole one from now on.
    fn mark_whole(&self) {
        self.inner
            .partial
            .store(false, std::sync::atomic::Ordering::Release);
    }

    /// The whole fabric, reading what a lazily opened store has not read yet.
    pub fn full(&self) -> Result<Arc<Fabric>, StoreError> {
        if self.is_partial() {
            let mut state = self.lock();
            if self.is_partial() {
                let (fabric, revision, rows) = load_consistent(&mut state.conn)?;
                state.revision = revision;
                state.rows = rows;
                self.publish(fabric);
                self.mark_whole();
            }
        }
        Ok(self.inner.current.borrow().clone())
    }

    /// Host groups, Run As accounts and network services, without reading the rest of a lazily
    /// opened store (other kinds may be missing from what it returns until `full()`).
    pub fn directory(&self) -> Arc<Fabric> {
        self.inner.current.borrow().clone()
    }

    /// The database file, or `None` for an in-memory or PostgreSQL store.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// The team's PostgreSQL database this store is on, if it is.
    pub fn pg_target(&self) -> Option<crate::db::PgTarget> {
        self.lock().conn.pg_target().cloned()
    }

    /// Where the fabric is kept, as a person reads it (a file, or `postgres://user@host/db`).
    pub fn describe(&self) -> &str {
        &self.inner.shown
    }

    /// Whether other processes may write to this store (a file, or PostgreSQL).
    pub fn is_shared(&self) -> bool {
        self.inner.path.is_some() || self.inner.announced.is_some()
    }

    /// On PostgreSQL, changes with every commit another console (or this one) announces, so
    /// a watcher calls `refresh` at once instead of at its next look. `None` elsewhere.
    pub fn commits_announced(&self) -> Option<watch::Receiver<u64>> {
        self.inner.announced.as_ref().map(|(rx, _)| rx.clone())
    }

    /// The current fabric (cached; no database access once read).
    pub fn fabric(&self) -> Arc<Fabric> {
        match self.full() {
            Ok(f) => f,
            Err(e) => {
                // Only a lazily opened store can get here; callers that plan use `full()`.
                tracing::error!(error = %e, "the fabric database could not be read whole");
                self.directory()
            }
        }
    }

    /// A receiver that sees every fabric this store commits or reloads.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Fabric>> {
        self.inner.current.subscribe()
    }

    /// Count of committed writes; grows by one with every apply or replace, from any process.
    pub fn revision(&self) -> u64 {
        self.lock().revision
    }

    /// Makes `fabric` the current one for `fabric()` and every subscriber.
    fn publish(&self, fabric: Fabric) -> Arc<Fabric> {
        let fabric = Arc::new(fabric);
        self.inner.current.send_replace(fabric.clone());
        fabric
    }

    /// Reads the whole fabric from the database again (e.g. after another process wrote to it).
    pub fn reload(&self) -> Result<Arc<Fabric>, StoreError> {
        let mut state = self.lock();
        let (fabric, revision, rows) = load_consistent(&mut state.conn)?;
        state.revision = revision;
        state.rows = rows;
        self.mark_whole();
        Ok(self.publish(fabric))
    }

    /// Reloads only if another process (or store) committed since this one last read: one
    /// small query when nothing changed. True when it reloaded.
    pub fn refresh(&self) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let stored = {
            let Connected {
                conn,
                revision,
                rows,
            } = &mut *state;
            let tx = conn.read()?;
            let stored = read_revision(&tx)?;
            if stored != *revision && !self.is_partial() {
                // Only the rows the change log names, when it reaches back far enough.
                if let Some(changed) = changes_in(&tx, *revision, stored)? {
                    let mut fabric = (*self.inner.current.borrow().clone()).clone();
                    let mut now = rows.clone();
                    for (kind, id) in changed {
                        reload_row(&tx, &mut fabric, &mut now, kind, id)?;
                    }
                    tx.commit()?;
                    *revision = stored;
                    *rows = now;
                    self.publish(fabric);
                    return Ok(true);
                }
            }
            tx.commit()?;
            stored
        };
        if stored == state.revision {
            return Ok(false);
        }
        let (fabric, revision, rows) = if self.is_partial() {
            let tx = state.conn.read()?;
            let loaded = load_directory(&tx)?;
            tx.commit()?;
            loaded
        } else {
            load_consistent(&mut state.conn)?
        };
        state.revision = revision;
        state.rows = rows;
        self.publish(fabric);
        Ok(true)
    }

    /// Applies a batch of changes: all of them, or none when the result breaks a rule.
    /// Refuses with `StoreError::Invalid` listing every problem the batch introduces (problems that were
    /// already in the stored fabric before the batch do not block it).
    pub fn apply(&self, changes: &[FabricChange]) -> Result<Arc<Fabric>, StoreError> {
        self.apply_checked(changes, &[])
    }

    /// The revision of a cached object (0 for rows written before revisions were kept), for an
    /// editor to pass back in [`Opened`] when it saves.
    pub fn object_revision(&self, kind: ObjectKind, id: Id) -> Option<u64> {
        // Subnets live inside their site's row: they have none of their own.
        self.lock().rows.get(&(kind, id)).copied()
    }

    /// What an editor opens now: the object's current revision (see [`Opened`]).
    pub fn opened(&self, kind: ObjectKind, id: Id) -> Option<Opened> {
        self.object_revision(kind, id)
            .map(|revision| Opened { kind, id, revision })
    }

    /// `apply`, refused with [`StoreError::Conflict`] when an object in `opened` was saved or
    /// deleted (by any console) since its editor opened it.
    pub fn apply_checked(
        &self,
        changes: &[FabricChange],
        opened: &[Opened],
    ) -> Result<Arc<Fabric>, StoreError> {
        if changes
            .iter()
            .any(|c| matches!(c, FabricChange::Delete(ObjectKind::Subnet, _)))
        {
            return Err(StoreError::SubnetChange);
        }
        // Changes are validated against the whole fabric.
        self.full()?;
        let mut state = self.lock();
        let Connected {
            conn,
            revision,
            rows,
        } = &mut *state;
        let tx = conn.write()?;
        // Another process may have written since our last read: build on what is on disk.
        let stored_revision = read_revision(&tx)?;
        let base = if stored_revision != *revision {
            let (fabric, rev, now) = load(&tx)?;
            *revision = rev;
            *rows = now;
            self.publish(fabric)
        } else {
            self.fabric()
        };
        for o in opened {
            let stored = rows.get(&(o.kind, o.id)).copied();
            if stored != Some(o.revision) {
                return Err(StoreError::Conflict(Box::new(Conflict {
                    kind: o.kind,
                    id: o.id,
                    name: base
                        .object(o.kind, o.id)
                        .map(|x| x.name().to_string())
                        .unwrap_or_default(),
                    opened: o.revision,
                    stored,
                    current: base.object(o.kind, o.id),
                })));
            }
        }
        let mut next = (*base).clone();
        next.apply_changes(changes);
        let errors = validate_fabric(&next);
        if !errors.is_empty() {
            let known: HashSet<ValidationError> = validate_fabric(&base).into_iter().collect();
            let introduced: Vec<ValidationError> =
                errors.into_iter().filter(|e| !known.contains(e)).collect();
            if !introduced.is_empty() {
                return Err(StoreError::Invalid(introduced));
            }
        }
        let touched: BTreeSet<(ObjectKind, Id)> = changes
            .iter()
            .map(|c| match c {
                FabricChange::Put(o) => (o.kind(), o.id()),
                FabricChange::Delete(kind, id) => (*kind, *id),
            })
            .collect();
        // A pool edit never strands an address granted from it, and a pool that has granted
        // addresses is not deleted (revoke them first).
        let mut refused = Vec::new();
        for &(kind, id) in &touched {
            if kind != ObjectKind::IpPool {
                continue;
            }
            match (next.ip_pools.get(&id), base.ip_pools.get(&id)) {
                (Some(pool), _) => {
                    let stranded = grants::stranded(&tx, pool)?;
                    if !stranded.is_empty() {
                        refused.push(grants::stranded_error(pool, &stranded));
                    }
                }
                (None, Some(gone)) => {
                    if let Some(e) = grants::deletion_refused(&tx, gone)? {
                        refused.push(e);
                    }
                }
                (None, None) => {}
            }
        }
        if !refused.is_empty() {
            return Err(StoreError::Invalid(refused));
        }
        for &(kind, id) in &touched {
            log_change(&tx, stored_revision + 1, Some((kind, id)))?;
        }
        let new_revision = stored_revision + 1;
        let mut written = Vec::new();
        for (kind, id) in touched {
            let Some(table) = table_of(kind) else {
                continue;
            };
            match row_of(&next, kind, id)? {
                Some(row) => {
                    if row_of(&base, kind, id)?.as_ref() != Some(&row) {
                        write_row(&tx, table, &row, new_revision)?;
                        written.push(((kind, id), Some(new_revision)));
                    }
                }
                None => {
                    written.push(((kind, id), None));
                    tx.execute(
                        &format!("DELETE FROM {table} WHERE id = ?1"),
                        params![id.to_string()],
                    )?;
                    // What a removed service's server held, or what was held in a removed
                    // pool, no longer keeps addresses from being granted.
                    let column = match kind {
                        ObjectKind::NetworkService => Some("service"),
                        ObjectKind::IpPool => Some("pool"),
                        _ => None,
                    };
                    if let Some(column) = column {
                        tx.execute(
                            &format!("DELETE FROM ipam_held_addresses WHERE {column} = ?1"),
                            params![id.to_string()],
                        )?;
                    }
                }
            }
        }
        commit_revision(tx, stored_revision, revision)?;
        for (key, rev) in written {
            match rev {
                Some(r) => rows.insert(key, r),
                None => rows.remove(&key),
            };
        }
        Ok(self.publish(next))
    }

    /// Replaces the whole fabric (import): validated first, written in one transaction.
    pub fn replace_all(&self, fabric: Fabric) -> Result<Arc<Fabric>, StoreError> {
        let errors = validate_fabric(&fabric);
        if !errors.is_empty() {
            return Err(StoreError::Invalid(errors));
        }
        let mut state = self.lock();
        let Connected {
            conn,
            revision,
            rows,
        } = &mut *state;
        let tx = conn.write()?;
        let stored_revision = read_revision(&tx)?;
        crate::for_each_kind!(T => {
            tx.execute(&format!("DELETE FROM {}", T::COLLECTION), params![])?;
        });
        let all = all_rows(&fabric)?;
        insert_rows(&tx, &all, stored_revision + 1)?;
        log_change(&tx, stored_revision + 1, None)?;
        grants::forget_orphans(&tx)?;
        commit_revision(tx, stored_revision, revision)?;
        *rows = all
            .iter()
            .filter_map(|r| Some(((r.kind, r.id.parse().ok()?), stored_revision + 1)))
            .collect();
        self.mark_whole();
        Ok(self.publish(fabric))
    }

    /// The objects written or deleted after `revision`, with the current revision (read
    /// together, from the database, so other processes' writes count). `None` when the change
    /// log no longer reaches back that far or the whole fabric was written (an import).
    #[allow(clippy::type_complexity)]
    pub fn changes_since(
        &self,
        revision: u64,
    ) -> Result<Option<(u64, Vec<(ObjectKind, Id)>)>, StoreError> {
        let mut state = self.lock();
        let tx = state.conn.read()?;
        let current = read_revision(&tx)?;
        let changed = changes_in(&tx, revision, current)?;
        tx.commit()?;
        Ok(changed.map(|c| (current, c)))
    }

    /// `apply` on the blocking thread pool, so async callers never stall the runtime.
    pub async fn apply_async(&self, changes: Vec<FabricChange>) -> Result<Arc<Fabric>, StoreError> {
        let store = self.clone();
        spawn_blocking(move || store.apply(&changes)).await
    }

    /// `apply_checked` on the blocking thread pool.
    pub async fn apply_checked_async(
        &self,
        changes: Vec<FabricChange>,
        opened: Vec<Opened>,
    ) -> Result<Arc<Fabric>, StoreError> {
        let store = self.clone();
        spawn_blocking(move || store.apply_checked(&changes, &opened)).await
    }

    /// `reload` on the blocking thread pool.
    pub async fn reload_async(&self) -> Result<Arc<Fabric>, StoreError> {
        let store = self.clone();
        spawn_blocking(move || store.reload()).await
    }

    /// `replace_all` on the blocking thread pool.
    pub async fn replace_all_async(&self, fabric: Fabric) -> Result<Arc<Fabric>, StoreError> {
        let store = self.clone();
        spawn_blocking(move || store.replace_all(fabric)).await
    }

    fn lock(&self) -> MutexGuard<'_, Connected> {
        // A panic while holding the lock left no open transaction (it rolls back on drop).
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

async fn spawn_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
}

fn ensure_root(conn: &mut Conn) -> Result<(), StoreError> {
    let tx = conn.write()?;
    let groups: i64 = tx
        .value("SELECT COUNT(*) FROM host_groups", params![])?
        .unwrap_or(0);
    if groups == 0 {
        let fabric = Fabric::new();
        let revision = read_revision(&tx)?;
        for row in all_rows(&fabric)? {
            write_row(&tx, row.table, &row, revision + 1)?;
        }
        log_change(&tx, revision + 1, None)?;
        write_revision(&tx, revision + 1)?;
    }
    tx.commit()?;
    Ok(())
}

/// `load` inside one read transaction, so a write committed meanwhile is seen whole or not at all.
/// The objects the change log says were written or deleted after `revision` up to `current`;
/// `None` when it no longer reaches back that far or the whole fabric was written.
fn changes_in(
    tx: &Tx<'_>,
    revision: u64,
    current: u64,
) -> Result<Option<Vec<(ObjectKind, Id)>>, StoreError> {
    let from: u64 = tx
        .value::<String>(
            "SELECT value FROM meta WHERE key = 'changes_from'",
            params![],
        )?
        .and_then(|v| v.parse().ok())
        .unwrap_or(u64::MAX);
    if revision > current || revision.saturating_add(1) < from {
        return Ok(None);
    }
    let rows = tx.query(
        "SELECT kind, id FROM changes WHERE revision > ?1 AND revision <= ?2",
        params![revision as i64, current as i64],
    )?;
    let mut out = Vec::new();
    for row in rows {
        let (kind, id) = (row.get::<String>(0)?, row.get::<String>(1)?);
        if kind == EVERYTHING {
            return Ok(None);
        }
        let kind: Option<ObjectKind> = serde_json::from_value(serde_json::Value::String(kind)).ok();
        match (kind, id.parse::<Id>()) {
            (Some(kind), Ok(id)) => out.push((kind, id)),
            // A row this version cannot read: read everything.
            _ => return Ok(None),
        }
    }
    out.sort();
    out.dedup();
    Ok(Some(out))
}

/// Reads one object's row again into `fabric` (removing it when the row is gone).
fn reload_row(
    tx: &Tx<'_>,
    fabric: &mut Fabric,
    rows: &mut Revisions,
    kind: ObjectKind,
    id: Id,
) -> Result<(), StoreError> {
    crate::match_kind!(kind, T => {
        let found = tx.query_opt(
            &format!("SELECT body, revision FROM {} WHERE id = ?1", T::COLLECTION),
            params![id.to_string()],
        )?;
        match found {
            Some(row) => {
                let body: String = row.get(0)?;
                let revision: i64 = row.get(1)?;
                let object: T = serde_json::from_str(&body).map_err(|e| StoreError::Damaged {
                    kind,
                    id: id.to_string(),
                    message: e.to_string(),
                })?;
                T::all_mut(fabric).insert(id, object);
                rows.insert((kind, id), revision.max(0) as u64);
            }
            None => {
                T::all_mut(fabric).remove(&id);
                rows.remove(&(kind, id));
            }
        }
        Ok(())
    }, subnet => Ok(()))
}

/// Listens for commits announced on PostgreSQL; the count goes up with each one (and when a
/// lost listening connection is opened again, as commits may have been missed meanwhile).
fn listen_for_commits(
    target: &crate::db::PgTarget,
) -> Result<(watch::Receiver<u64>, crate::db::postgres::Listener), StoreError> {
    let (heard, listener) = crate::db::postgres::listen(target, REVISION_CHANNEL)?;
    let (count, rx) = watch::channel(0u64);
    std::thread::Builder::new()
        .name("fabric-console-commits".into())
        .spawn(move || {
            while heard.recv().is_ok() {
                count.send_modify(|n| *n += 1);
            }
        })
        .map_err(|e| StoreError::Task(e.to_string()))?;
    Ok((rx, listener))
}

fn load_consistent(conn: &mut Conn) -> Result<(Fabric, u64, Revisions), StoreError> {
    let tx = conn.read()?;
    let loaded = load(&tx)?;
    tx.commit()?;
    Ok(loaded)
}

/// Notes in the change log that `object` (or, for `None`, everything) changed in `revision`;
/// now and then forgets revisions older than `CHANGES_KEPT`.
fn log_change(
    conn: &Tx<'_>,
    revision: u64,
    object: Option<(ObjectKind, Id)>,
) -> Result<(), StoreError> {
    let (kind, id) = match object {
        Some((kind, id)) => (
            serde_json::to_value(kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| EVERYTHING.to_string()),
            id.to_string(),
        ),
        None => (EVERYTHING.to_string(), String::new()),
    };
    conn.execute(
        "INSERT INTO changes (revision, kind, id) VALUES (?1, ?2, ?3)",
        params![revision as i64, kind, id],
    )?;
    if revision.is_multiple_of(64) && revision > CHANGES_KEPT {
        let from = revision - CHANGES_KEPT;
        conn.execute(
            "DELETE FROM changes WHERE revision < ?1",
            params![from as i64],
        )?;
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('changes_from', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![from.to_string()],
        )?;
    }
    Ok(())
}

fn read_revision(conn: &Tx<'_>) -> Result<u64, StoreError> {
    let value: Option<String> =
        conn.value("SELECT value FROM meta WHERE key = 'revision'", params![])?;
    Ok(value.and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// Commits `tx` as the revision after `stored`, which becomes this store's revision.
fn commit_revision(tx: Tx<'_>, stored: u64, revision: &mut u64) -> Result<(), StoreError> {
    let new_revision = stored + 1;
    write_revision(&tx, new_revision)?;
    // Other consoles on the same PostgreSQL database reload on this (see `FabricStore::notified`).
    tx.notify(REVISION_CHANNEL, &new_revision.to_string())?;
    tx.commit()?;
    *revision = new_revision;
    Ok(())
}

fn write_revision(conn: &Tx<'_>, revision: u64) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('revision', ?1)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![revision.to_string()],
    )?;
    Ok(())
}

/// One table row: the object's id, name and JSON body.
#[derive(Debug, PartialEq, Eq)]
struct Row {
    table: &'static str,
    kind: ObjectKind,
    id: String,
    name: String,
    body: String,
}

fn to_row<T: FabricKind>(object: &T) -> Result<Row, StoreError> {
    let body = serde_json::to_string(object).map_err(|e| StoreError::Damaged {
        kind: T::KIND,
        id: object.id().to_string(),
        message: e.to_string(),
    })?;
    Ok(Row {
        table: T::COLLECTION,
        kind: T::KIND,
        id: object.id().to_string(),
        name: object.name().to_string(),
        body,
    })
}

fn row_of(f: &Fabric, kind: ObjectKind, id: Id) -> Result<Option<Row>, StoreError> {
    crate::match_kind!(kind, T => T::all(f).get(&id).map(to_row).transpose(), subnet => Ok(None))
}

fn all_rows(f: &Fabric) -> Result<Vec<Row>, StoreError> {
    let mut rows = Vec::new();
    crate::for_each_kind!(T => {
        for o in T::all(f).values() {
            rows.push(to_row(o)?);
        }
    });
    Ok(rows)
}

fn write_row(tx: &Tx<'_>, table: &str, row: &Row, revision: u64) -> Result<(), StoreError> {
    tx.execute(
        &format!(
            "INSERT INTO {table} (id, name, body, revision) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(id) DO UPDATE SET name = excluded.name, body = excluded.body,
                 revision = excluded.revision"
        ),
        params![&row.id, &row.name, &row.body, revision as i64],
    )?;
    Ok(())
}

/// Inserts rows into emptied tables, many to a statement (one round trip per few hundred rows
/// on PostgreSQL, not one per row).
fn insert_rows(tx: &Tx<'_>, rows: &[Row], revision: u64) -> Result<(), StoreError> {
    const PER_STATEMENT: usize = 250;
    let mut by_table: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    for r in rows {
        by_table.entry(r.table).or_default().push(r);
    }
    for (table, rows) in by_table {
        for chunk in rows.chunks(PER_STATEMENT) {
            let mut sql = format!("INSERT INTO {table} (id, name, body, revision) VALUES ");
            let mut values = Vec::with_capacity(chunk.len() * 4);
            for (i, r) in chunk.iter().enumerate() {
                let n = i * 4;
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("(?{}, ?{}, ?{}, ?{})", n + 1, n + 2, n + 3, n + 4));
                values.extend([
                    crate::db::Value::from(&r.id),
                    crate::db::Value::from(&r.name),
                    crate::db::Value::from(&r.body),
                    crate::db::Value::Int(revision as i64),
                ]);
            }
            tx.execute(&sql, &values)?;
        }
    }
    Ok(())
}

fn load(conn: &Tx<'_>) -> Result<(Fabric, u64, Revisions), StoreError> {
    let mut f = Fabric::default();
    let mut rows = Revisions::new();
    crate::for_each_kind!(T => {
        load_table::<T>(conn, T::all_mut(&mut f), &mut rows)?;
    });
    let revision = read_revision(conn)?;
    Ok((f, revision, rows))
}

/// The directory of a lazily opened store: host groups, Run As accounts, network services.
fn load_directory(conn: &Tx<'_>) -> Result<(Fabric, u64, Revisions), StoreError> {
    let mut f = Fabric::default();
    let mut rows = Revisions::new();
    load_table::<HostGroup>(conn, &mut f.host_groups, &mut rows)?;
    load_table::<RunAsAccount>(conn, &mut f.run_as_accounts, &mut rows)?;
    load_table::<NetworkService>(conn, &mut f.network_services, &mut rows)?;
    let revision = read_revision(conn)?;
    Ok((f, revision, rows))
}

/// Reads every row of a kind's table into `into`, checking each body belongs to its row.
fn load_table<T: FabricKind>(
    conn: &Tx<'_>,
    into: &mut BTreeMap<Id, T>,
    revisions: &mut Revisions,
) -> Result<(), StoreError> {
    let sql = format!("SELECT id, body, revision FROM {}", T::COLLECTION);
    for row in conn.query(&sql, params![])? {
        let id: String = row.get(0)?;
        let body: String = row.get(1)?;
        let revision: i64 = row.get(2)?;
        let object: T = serde_json::from_str(&body).map_err(|e| StoreError::Damaged {
            kind: T::KIND,
            id: id.clone(),
            message: e.to_string(),
        })?;
        let object_id = object.id();
        into.insert(object_id, object);
        revisions.insert((T::KIND, object_id), revision.max(0) as u64);
        if object_id.to_string() != id {
            return Err(StoreError::Damaged {
                kind: T::KIND,
                id,
                message: format!("the row's body belongs to object {object_id}"),
            });
        }
    }
    Ok(())
}

/// The object of `kind` with `id` in `f`, cloned; `None` when missing (and for subnets, which live in sites).
pub fn object_of(f: &Fabric, kind: ObjectKind, id: Id) -> Option<FabricObject> {
    f.object(kind, id)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::fabric::connection::ConnectionString;
    use crate::fabric::demo::demo_fabric;
    use crate::fabric::model::{
        HostGroup, HostGroupScope, NetworkService, RunAsAccount, ServiceCategory,
    };
    use crate::fabric::validate::Rule;
    use rusqlite::Connection;

    /// A demo fabric plus the kinds the demo leaves out (a network service).
    fn every_kind() -> Fabric {
        let mut f = demo_fabric(400, 11);
        let account = f.run_as_accounts.values().next().unwrap().id;
        let seattle = f
            .host_groups
            .values()
            .find(|g| g.name == "Seattle")
            .unwrap()
            .id;
        let service = NetworkService {
            id: uuid::Uuid::new_v4(),
            name: "ipam01".into(),
            description: "Built-in IPAM".into(),
            category: ServiceCategory::NetworkManager,
            manufacturer: "Fabric Console".into(),
            model: "Built-in IPAM".into(),
            connection: ConnectionString::parse("https://ipam01.contoso.com:8443").unwrap(),
            run_as: account,
            provider: "builtin".into(),
            scope: HostGroupScope::Selected(BTreeSet::from([seattle])),
            sync_interval_secs: 120,
            tls_fingerprint: Some("ab".repeat(32)),
            tls_ca_file: None,
            allow_cleartext: false,
            event_source: None,
            sync_on_change: true,
        };
        f.network_services.insert(service.id, service);
        f
    }

    fn file_store() -> (tempfile::TempDir, PathBuf, FabricStore) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data").join("fabric.db");
        let store = FabricStore::open(&path).unwrap();
        (dir, path, store)
    }

    #[test]
    fn new_database_has_root_host_group_wal_and_schema_version() {
        let (_dir, path, store) = file_store();
        let f = store.fabric();
        assert_eq!(f.host_groups.len(), 1);
        assert_eq!(f.root_host_group().unwrap().name, "All Hosts");
        assert!(validate_fabric(&f).is_empty());
        drop(store);
        let conn = Connection::open(&path).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        // Reopening keeps the same root rather than adding another.
        let again = FabricStore::open(&path).unwrap();
        assert_eq!(again.fabric(), f);
    }

    #[test]
    fn the_change_log_lists_what_each_write_touched_since_a_revision() {
        let (_dir, path, store) = file_store();
        store.replace_all(every_kind()).unwrap();
        let after_import = store.revision();
        assert_eq!(
            store.changes_since(after_import - 1).unwrap(),
            None,
            "an import touches everything"
        );
        assert_eq!(
            store.changes_since(after_import).unwrap(),
            Some((after_import, vec![]))
        );
        let f = store.fabric();
        let mut ln = f.logical_networks.values().next().unwrap().clone();
        ln.description = "edited".into();
        let vmn = *f.vm_networks.keys().next().unwrap();
        store
            .apply(&[FabricChange::Put(FabricObject::LogicalNetwork(ln.clone()))])
            .unwrap();
        // Another process's write counts too.
        let other = FabricStore::open(&path).unwrap();
        let pools: Vec<FabricChange> = f
            .ip_pools
            .values()
            .filter(|p| matches!(p.scope, crate::fabric::model::PoolScope::VmSubnet { vm_network, .. } if vm_network == vmn))
            .map(|p| FabricChange::Delete(ObjectKind::IpPool, p.id))
            .chain([FabricChange::Delete(ObjectKind::VmNetwork, vmn)])
            .collect();
        other.apply(&pools).unwrap();
        let (now, mut touched) = store.changes_since(after_import).unwrap().unwrap();
        assert_eq!(now, after_import + 2);
        touched.sort();
        let mut expected: Vec<(ObjectKind, Id)> = pools
            .iter()
            .map(|c| match c {
                FabricChange::Delete(k, id) => (*k, *id),
                FabricChange::Put(o) => (o.kind(), o.id()),
            })
            .chain([(ObjectKind::LogicalNetwork, ln.id)])
            .collect();
        expected.sort();
        assert_eq!(touched, expected);
        assert_eq!(
            store
                .changes_since(after_import + 1)
                .unwrap()
                .unwrap()
                .1
                .len(),
            pools.len()
        );
        assert_eq!(
            store.changes_since(now + 5).unwrap(),
            None,
            "a revision from the future"
        );
        // A database from before the change log knows nothing earlier than its upgrade.
        let conn = Connection::open(&path).unwrap();
        conn.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'changes_from'",
            [(now + 1).to_string()],
        )
        .unwrap();
        assert_eq!(store.changes_since(now - 1).unwrap(), None);
        assert_eq!(store.changes_since(now).unwrap(), Some((now, vec![])));
    }

    #[test]
    fn every_kind_round_trips_through_the_file() {
        let (_dir, path, store) = file_store();
        let f = every_kind();
        store.replace_all(f.clone()).unwrap();
        assert_eq!(*store.fabric(), f);
        drop(store);
        let reopened = FabricStore::open(&path).unwrap();
        assert_eq!(*reopened.fabric(), f);
        assert!(!f.network_services.is_empty() && !f.vm_networks.is_empty());
    }

    #[test]
    fn apply_puts_updates_and_deletes_exactly_the_changed_rows() {
        let (_dir, path, store) = file_store();
        store.replace_all(every_kind()).unwrap();
        let f = store.fabric();
        let revision = store.revision();
        // Update a pool, add a host group, delete a service.
        let mut pool = f.ip_pools.values().next().unwrap().clone();
        pool.description = "Reserved for the web farm".into();
        let root = f.root_host_group().unwrap().id;
        let group = HostGroup {
            id: uuid::Uuid::new_v4(),
            name: "Amsterdam".into(),
            parent: Some(root),
        };
        let service = f.network_services.keys().next().copied().unwrap();
        let after = store
            .apply(&[
                FabricChange::Put(FabricObject::IpPool(pool.clone())),
                FabricChange::Put(FabricObject::HostGroup(group.clone())),
                FabricChange::Delete(ObjectKind::NetworkService, service),
            ])
            .unwrap();
        assert_eq!(after.ip_pools[&pool.id], pool);
        assert_eq!(after.host_groups[&group.id], group);
        assert!(after.network_services.is_empty());
        assert_eq!(store.revision(), revision + 1);
        drop(store);
        let reopened = FabricStore::open(&path).unwrap();
        assert_eq!(reopened.fabric(), after);
        let conn = Connection::open(&path).unwrap();
        let name: String = conn
            .query_row(
                "SELECT name FROM host_groups WHERE id = ?1",
                [group.id.to_string()],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(name, "Amsterdam");
    }

    #[test]
    fn a_lazily_opened_store_reads_the_rest_only_when_asked() {
        let (_dir, path, store) = file_store();
        store.replace_all(every_kind()).unwrap();
        let whole = store.fabric();
        drop(store);
        // A damaged pool row: the directory still reads, the whole fabric does not.
        let pool = *whole.ip_pools.keys().next().unwrap();
        let conn = Connection::open(&path).unwrap();
        conn.execute(
            "UPDATE ip_pools SET body = 'damaged' WHERE id = ?1",
            [pool.to_string()],
        )
        .unwrap();
        let lazy = FabricStore::open_lazily(&path).unwrap();
        let directory = lazy.directory();
        assert_eq!(directory.network_services, whole.network_services);
        assert_eq!(directory.run_as_accounts, whole.run_as_accounts);
        assert_eq!(directory.host_groups, whole.host_groups);
        assert!(directory.ip_pools.is_empty(), "nothing else was read");
        assert!(matches!(lazy.full(), Err(StoreError::Damaged { .. })));
        assert!(
            lazy.apply(&[FabricChange::Delete(ObjectKind::IpPool, pool)])
                .is_err(),
            "changes are validated against the whole fabric, so none is taken"
        );
        // Mended, the whole fabric reads and changes apply to it.
        conn.execute("DELETE FROM ip_pools WHERE id = ?1", [pool.to_string()])
            .unwrap();
        let mut expected = (*whole).clone();
        expected.ip_pools.remove(&pool);
        assert_eq!(*lazy.full().unwrap(), expected);
        assert_eq!(lazy.fabric(), lazy.directory(), "read once, then cached");
    }

    #[test]
    fn rejected_write_leaves_database_and_cache_unchanged() {
        let (_dir, path, store) = file_store();
        store.replace_all(every_kind()).unwrap();
        let before = store.fabric();
        let revision = store.revision();
        // A valid change and an invalid one in the same batch: neither is saved.
        let root = before.root_host_group().unwrap().id;
        let fine = HostGroup {
            id: uuid::Uuid::new_v4(),
            name: "Oslo".into(),
            parent: Some(root),
        };
        let mut pool = before
            .ip_pools
            .values()
            .find(|p| p.range_start.is_ipv4())
            .unwrap()
            .clone();
        pool.range_end = "203.0.113.200".parse().unwrap();
        let err = store
            .apply(&[
                FabricChange::Put(FabricObject::HostGroup(fine)),
                FabricChange::Put(FabricObject::IpPool(pool.clone())),
            ])
            .unwrap_err();
        let errors = err.validation_errors();
        assert!(
            errors
                .iter()
                .any(|e| e.object == pool.id && e.rule == Rule::PoolOutsideSubnet)
        );
        assert!(
            err.to_string().starts_with("The change was not saved"),
            "{err}"
        );
        // Deleting a logical network that still has sites is refused, naming the sites.
        let ln = before
            .network_sites
            .values()
            .next()
            .unwrap()
            .logical_network;
        let err = store
            .apply(&[FabricChange::Delete(ObjectKind::LogicalNetwork, ln)])
            .unwrap_err();
        assert!(
            err.validation_errors()
                .iter()
                .any(|e| e.kind == ObjectKind::NetworkSite
                    && e.field == crate::fabric::validate::Field::LogicalNetwork)
        );
        assert!(matches!(
            store.apply(&[FabricChange::Delete(ObjectKind::Subnet, ln)]),
            Err(StoreError::SubnetChange)
        ));
        assert_eq!(store.fabric(), before);
        assert_eq!(store.revision(), revision);
        drop(store);
        let reopened = FabricStore::open(&path).unwrap();
        assert_eq!(reopened.fabric(), before);
        assert_eq!(reopened.revision(), revision);
    }

    #[test]
    fn invalid_replace_all_changes_nothing() {
        let (_dir, path, store) = file_store();
        let before = store.fabric();
        let mut bad = every_kind();
        bad.host_groups.retain(|_, g| g.parent.is_some());
        let err = store.replace_all(bad).unwrap_err();
        assert!(!err.validation_errors().is_empty());
        assert_eq!(store.fabric(), before);
        drop(store);
        assert_eq!(FabricStore::open(&path).unwrap().fabric(), before);
    }

    #[test]
    fn existing_problems_do_not_block_unrelated_changes() {
        let store = FabricStore::open_in_memory().unwrap();
        let mut f = every_kind();
        let service = f.network_services.values_mut().next().unwrap();
        service.sync_interval_secs = 120;
        store.replace_all(f).unwrap();
        // Break a row behind the store's back, as an older version with looser rules might have left it.
        {
            let mut state = store.lock();
            let mut svc = store
                .fabric()
                .network_services
                .values()
                .next()
                .unwrap()
                .clone();
            svc.sync_interval_secs = 5;
            let tx = state.conn.write().unwrap();
            tx.execute(
                "UPDATE network_services SET body = ?1 WHERE id = ?2",
                params![serde_json::to_string(&svc).unwrap(), svc.id.to_string()],
            )
            .unwrap();
            tx.commit().unwrap();
        }
        let f = store.reload().unwrap();
        assert_eq!(validate_fabric(&f).len(), 1);
        let root = f.root_host_group().unwrap().id;
        let group = HostGroup {
            id: uuid::Uuid::new_v4(),
            name: "Lisbon".into(),
            parent: Some(root),
        };
        store
            .apply(&[FabricChange::Put(FabricObject::HostGroup(group))])
            .unwrap();
    }

    #[test]
    fn a_second_store_on_the_same_file_sees_the_first_ones_writes() {
        let (_dir, path, first) = file_store();
        let second = FabricStore::open(&path).unwrap();
        let root = first.fabric().root_host_group().unwrap().id;
        let a = HostGroup {
            id: uuid::Uuid::new_v4(),
            name: "Paris".into(),
            parent: Some(root),
        };
        first
            .apply(&[FabricChange::Put(FabricObject::HostGroup(a.clone()))])
            .unwrap();
        // The second store's cache is stale; its write builds on the file, so a duplicate is caught.
        let mut dup = a.clone();
        dup.id = uuid::Uuid::new_v4();
        dup.name = "paris".into();
        assert!(
            second
                .apply(&[FabricChange::Put(FabricObject::HostGroup(dup))])
                .is_err()
        );
        assert!(second.fabric().host_groups.contains_key(&a.id));
        let b = HostGroup {
            id: uuid::Uuid::new_v4(),
            name: "Rome".into(),
            parent: Some(root),
        };
        second
            .apply(&[FabricChange::Put(FabricObject::HostGroup(b.clone()))])
            .unwrap();
        let f = first.reload().unwrap();
        assert!(f.host_groups.contains_key(&a.id) && f.host_groups.contains_key(&b.id));
    }

    /// A refresh reads only the rows the change log names, and ends where a whole reload
    /// would: same fabric, same revisions; an import is read whole.
    #[test]
    fn a_refresh_reads_what_changed_and_matches_a_whole_reload() {
        let (_dir, path, first) = file_store();
        first.replace_all(every_kind()).unwrap();
        let second = FabricStore::open(&path).unwrap();
        let f = first.fabric();
        let mut site = f.network_sites.values().next().unwrap().clone();
        site.name.push_str(" renamed");
        let pool = *f.ip_pools.keys().next().unwrap();
        let vm = *f.vm_networks.keys().next().unwrap();
        first
            .apply(&[
                FabricChange::Put(FabricObject::NetworkSite(site.clone())),
                FabricChange::Delete(ObjectKind::VmNetwork, vm),
            ])
            .unwrap();
        let mut group = f
            .host_groups
            .values()
            .find(|g| g.parent.is_some())
            .unwrap()
            .clone();
        group.name = "Renamed group".into();
        first
            .apply(&[FabricChange::Put(FabricObject::HostGroup(group.clone()))])
            .unwrap();
        assert!(second.refresh().unwrap());
        assert!(!second.refresh().unwrap(), "nothing more to read");
        let whole = FabricStore::open(&path).unwrap();
        assert_eq!(*second.fabric(), *whole.fabric());
        assert_eq!(second.fabric().network_sites[&site.id].name, site.name);
        assert!(!second.fabric().vm_networks.contains_key(&vm));
        for (kind, id) in [
            (ObjectKind::NetworkSite, site.id),
            (ObjectKind::HostGroup, group.id),
            (ObjectKind::IpPool, pool),
        ] {
            assert_eq!(
                second.object_revision(kind, id),
                whole.object_revision(kind, id),
                "{kind:?}"
            );
        }
        assert_eq!(second.object_revision(ObjectKind::VmNetwork, vm), None);
        // An import is read whole.
        first.replace_all(Fabric::new()).unwrap();
        assert!(second.refresh().unwrap());
        assert_eq!(*second.fabric(), *first.fabric());
    }

    #[test]
    fn newer_schema_and_damaged_rows_are_reported() {
        let (_dir, path, store) = file_store();
        drop(store);
        let conn = Connection::open(&path).unwrap();
        conn.execute(
            "INSERT INTO logical_networks (id, name, body) VALUES ('x', 'Broken', '{\"id\":1}')",
            [],
        )
        .unwrap();
        drop(conn);
        let err = FabricStore::open(&path).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Damaged {
                    kind: ObjectKind::LogicalNetwork,
                    ..
                }
            ),
            "{err}"
        );
        let conn = Connection::open(&path).unwrap();
        conn.execute("DELETE FROM logical_networks", []).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = FabricStore::open(&path).unwrap_err();
        assert!(
            matches!(err, StoreError::NewerSchema { found: 99, .. }),
            "{err}"
        );
    }

    #[test]
    fn a_file_that_is_not_a_database_is_reported_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fabric.db");
        std::fs::write(
            &path,
            b"this is not sqlite, just some text that is long enough",
        )
        .unwrap();
        let err = FabricStore::open(&path).unwrap_err();
        assert!(err.to_string().contains("fabric.db"), "{err}");
    }

    #[test]
    fn async_calls_run_off_the_runtime_and_notify_subscribers() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let store = FabricStore::open_in_memory().unwrap();
            let mut rx = store.subscribe();
            let root = store.fabric().root_host_group().unwrap().id;
            let account = RunAsAccount {
                id: uuid::Uuid::new_v4(),
                name: "IPAM Service Account".into(),
                description: String::new(),
                user_name: "svc".into(),
            };
            let group = HostGroup {
                id: uuid::Uuid::new_v4(),
                name: "Madrid".into(),
                parent: Some(root),
            };
            let f = store
                .apply_async(vec![
                    FabricChange::Put(FabricObject::RunAsAccount(account.clone())),
                    FabricChange::Put(FabricObject::HostGroup(group)),
                ])
                .await
                .unwrap();
            assert!(f.run_as_accounts.contains_key(&account.id));
            rx.changed().await.unwrap();
            assert_eq!(*rx.borrow_and_update(), f);
            let reloaded = store.reload_async().await.unwrap();
            assert_eq!(reloaded, f);
        });
    }
}
