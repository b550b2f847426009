//! The fabric database: an embedded SQLite file (WAL) with one table per object kind.
//! Every write validates the whole resulting fabric first and then changes exactly the touched rows
//! in one transaction, so a refused or failed write changes nothing on disk or in memory.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
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

/// How long a writer waits for another process holding the database before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

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
"];

/// How many revisions of the change log are kept; a sync that agreed longer ago plans in full.
const CHANGES_KEPT: u64 = 4096;
/// The change log's mark for a write of the whole fabric (an import).
const EVERYTHING: &str = "*";

/// The table of a kind stored as rows. Subnets live inside their network site's row.
fn table_of(kind: ObjectKind) -> Option<&'static str> {
    crate::match_kind!(kind, T => Some(T::COLLECTION), subnet => None)
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "The fabric database {path} could not be opened: {source}. Check that it is a Fabric Console database and that its folder is writable."
    )]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
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
    Sqlite(#[from] rusqlite::Error),
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
}

struct Connected {
    conn: Connection,
    /// The `meta.revision` the cache was loaded at; another process's write bumps it.
    revision: u64,
}

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
        let open_error = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(open_error)?;
        configure(&conn).map_err(open_error)?;
        Self::from_connection(conn, Some(path.to_path_buf()), lazily)
    }

    /// A database that lives only in memory, for tests and previews.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory()?;
        configure(&conn)?;
        Self::from_connection(conn, None, false)
    }

    fn from_connection(
        mut conn: Connection,
        path: Option<PathBuf>,
        lazily: bool,
    ) -> Result<Self, StoreError> {
        migrate(&mut conn)?;
        ensure_root(&mut conn)?;
        let (fabric, revision) = if lazily {
            load_directory(&conn)?
        } else {
            load(&conn)?
        };
        let (current, _) = watch::channel(Arc::new(fabric));
        Ok(FabricStore {
            inner: Arc::new(StoreInner {
                state: Mutex::new(Connected { conn, revision }),
                partial: std::sync::atomic::AtomicBool::new(lazily),
                current,
                path,
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
                let (fabric, revision) = load_consistent(&state.conn)?;
                state.revision = revision;
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

    /// The database file, or `None` for an in-memory store.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
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
        let (fabric, revision) = load_consistent(&state.conn)?;
        state.revision = revision;
        self.mark_whole();
        Ok(self.publish(fabric))
    }

    /// Reloads only if another process (or store) committed since this one last read: one
    /// small query when nothing changed. True when it reloaded.
    pub fn refresh(&self) -> Result<bool, StoreError> {
        let mut state = self.lock();
        if read_revision(&state.conn)? == state.revision {
            return Ok(false);
        }
        let (fabric, revision) = if self.is_partial() {
            let tx = state.conn.unchecked_transaction()?;
            let loaded = load_directory(&tx)?;
            tx.commit()?;
            loaded
        } else {
            load_consistent(&state.conn)?
        };
        state.revision = revision;
        self.publish(fabric);
        Ok(true)
    }

    /// Applies a batch of changes: all of them, or none when the result breaks a rule.
    /// Refuses with `StoreError::Invalid` listing every problem the batch introduces (problems that were
    /// already in the stored fabric before the batch do not block it).
    pub fn apply(&self, changes: &[FabricChange]) -> Result<Arc<Fabric>, StoreError> {
        if changes
            .iter()
            .any(|c| matches!(c, FabricChange::Delete(ObjectKind::Subnet, _)))
        {
            return Err(StoreError::SubnetChange);
        }
        // Changes are validated against the whole fabric.
        self.full()?;
        let mut state = self.lock();
        let Connected { conn, revision } = &mut *state;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Another process may have written since our last read: build on what is on disk.
        let stored_revision = read_revision(&tx)?;
        let base = if stored_revision != *revision {
            let (fabric, rev) = load(&tx)?;
            *revision = rev;
            self.publish(fabric)
        } else {
            self.fabric()
        };
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
        for (kind, id) in touched {
            let Some(table) = table_of(kind) else {
                continue;
            };
            match row_of(&next, kind, id)? {
                Some(row) => {
                    if row_of(&base, kind, id)?.as_ref() != Some(&row) {
                        write_row(&tx, table, &row)?;
                    }
                }
                None => {
                    tx.execute(
                        &format!("DELETE FROM {table} WHERE id = ?1"),
                        [id.to_string()],
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
                            [id.to_string()],
                        )?;
                    }
                }
            }
        }
        commit_revision(tx, stored_revision, revision)?;
        Ok(self.publish(next))
    }

    /// Replaces the whole fabric (import): validated first, written in one transaction.
    pub fn replace_all(&self, fabric: Fabric) -> Result<Arc<Fabric>, StoreError> {
        let errors = validate_fabric(&fabric);
        if !errors.is_empty() {
            return Err(StoreError::Invalid(errors));
        }
        let mut state = self.lock();
        let Connected { conn, revision } = &mut *state;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let stored_revision = read_revision(&tx)?;
        crate::for_each_kind!(T => {
            tx.execute(&format!("DELETE FROM {}", T::COLLECTION), [])?;
        });
        for row in all_rows(&fabric)? {
            write_row(&tx, row.table, &row)?;
        }
        log_change(&tx, stored_revision + 1, None)?;
        grants::forget_orphans(&tx)?;
        commit_revision(tx, stored_revision, revision)?;
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
        let state = self.lock();
        let tx = state.conn.unchecked_transaction()?;
        let current = read_revision(&tx)?;
        let from: u64 = tx
            .query_row(
                "SELECT value FROM meta WHERE key = 'changes_from'",
                [],
                |r| r.get::<_, String>(0),
            )
            .optional()?
            .and_then(|v| v.parse().ok())
            .unwrap_or(u64::MAX);
        if revision > current || revision.saturating_add(1) < from {
            return Ok(None);
        }
        let mut stmt = tx.prepare_cached(
            "SELECT kind, id FROM changes WHERE revision > ?1 AND revision <= ?2",
        )?;
        let rows = stmt.query_map(params![revision as i64, current as i64], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (kind, id) = row?;
            if kind == EVERYTHING {
                return Ok(None);
            }
            let kind: Option<ObjectKind> =
                serde_json::from_value(serde_json::Value::String(kind)).ok();
            match (kind, id.parse::<Id>()) {
                (Some(kind), Ok(id)) => out.push((kind, id)),
                // A row this version cannot read: plan everything.
                _ => return Ok(None),
            }
        }
        Ok(Some((current, out)))
    }

    /// `apply` on the blocking thread pool, so async callers never stall the runtime.
    pub async fn apply_async(&self, changes: Vec<FabricChange>) -> Result<Arc<Fabric>, StoreError> {
        let store = self.clone();
        spawn_blocking(move || store.apply(&changes)).await
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

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // In-memory databases answer "memory"; files switch to write-ahead logging.
    let _mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    // A committed edit (an operator's, or a sync's changes, which the sync database then
    // records as agreed) must survive a power loss, or the next sync would take it as deleted.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(())
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let supported = MIGRATIONS.len() as i64;
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > supported {
            return Err(StoreError::NewerSchema {
                found: version,
                supported,
            });
        }
        if version == supported {
            return Ok(());
        }
        let step = usize::try_from(version).unwrap_or(0);
        tx.execute_batch(MIGRATIONS[step])?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
    }
}

fn ensure_root(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let groups: i64 = tx.query_row("SELECT COUNT(*) FROM host_groups", [], |r| r.get(0))?;
    if groups == 0 {
        let fabric = Fabric::new();
        for row in all_rows(&fabric)? {
            write_row(&tx, row.table, &row)?;
        }
        let revision = read_revision(&tx)?;
        log_change(&tx, revision + 1, None)?;
        write_revision(&tx, revision + 1)?;
    }
    tx.commit()?;
    Ok(())
}

/// `load` inside one read transaction, so a write committed meanwhile is seen whole or not at all.
fn load_consistent(conn: &Connection) -> Result<(Fabric, u64), StoreError> {
    let tx = conn.unchecked_transaction()?;
    let loaded = load(&tx)?;
    tx.commit()?;
    Ok(loaded)
}

/// Notes in the change log that `object` (or, for `None`, everything) changed in `revision`;
/// now and then forgets revisions older than `CHANGES_KEPT`.
fn log_change(
    conn: &Connection,
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
    conn.prepare_cached("INSERT INTO changes (revision, kind, id) VALUES (?1, ?2, ?3)")?
        .execute(params![revision as i64, kind, id])?;
    if revision.is_multiple_of(64) && revision > CHANGES_KEPT {
        let from = revision - CHANGES_KEPT;
        conn.execute("DELETE FROM changes WHERE revision < ?1", [from as i64])?;
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('changes_from', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [from.to_string()],
        )?;
    }
    Ok(())
}

fn read_revision(conn: &Connection) -> Result<u64, StoreError> {
    let value: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'revision'", [], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(value.and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// Commits `tx` as the revision after `stored`, which becomes this store's revision.
fn commit_revision(tx: Transaction<'_>, stored: u64, revision: &mut u64) -> Result<(), StoreError> {
    let new_revision = stored + 1;
    write_revision(&tx, new_revision)?;
    tx.commit()?;
    *revision = new_revision;
    Ok(())
}

fn write_revision(conn: &Connection, revision: u64) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('revision', ?1)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [revision.to_string()],
    )?;
    Ok(())
}

/// One table row: the object's id, name and JSON body.
#[derive(Debug, PartialEq, Eq)]
struct Row {
    table: &'static str,
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

fn write_row(tx: &Transaction<'_>, table: &str, row: &Row) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached(&format!(
        "INSERT INTO {table} (id, name, body) VALUES (?1, ?2, ?3)
         ON CONFLICT(id) DO UPDATE SET name = excluded.name, body = excluded.body"
    ))?;
    stmt.execute(params![row.id, row.name, row.body])?;
    Ok(())
}

fn load(conn: &Connection) -> Result<(Fabric, u64), StoreError> {
    let mut f = Fabric::default();
    crate::for_each_kind!(T => {
        load_table::<T>(conn, T::all_mut(&mut f))?;
    });
    let revision = read_revision(conn)?;
    Ok((f, revision))
}

/// The directory of a lazily opened store: host groups, Run As accounts, network services.
fn load_directory(conn: &Connection) -> Result<(Fabric, u64), StoreError> {
    let mut f = Fabric::default();
    load_table::<HostGroup>(conn, &mut f.host_groups)?;
    load_table::<RunAsAccount>(conn, &mut f.run_as_accounts)?;
    load_table::<NetworkService>(conn, &mut f.network_services)?;
    let revision = read_revision(conn)?;
    Ok((f, revision))
}

/// Reads every row of a kind's table into `into`, checking each body belongs to its row.
fn load_table<T: FabricKind>(
    conn: &Connection,
    into: &mut BTreeMap<Id, T>,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare(&format!("SELECT id, body FROM {}", T::COLLECTION))?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let id: String = row.get(0)?;
        let body: String = row.get(1)?;
        let object: T = serde_json::from_str(&body).map_err(|e| StoreError::Damaged {
            kind: T::KIND,
            id: id.clone(),
            message: e.to_string(),
        })?;
        let object_id = object.id();
        into.insert(object_id, object);
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
            let state = store.lock();
            let mut svc = store
                .fabric()
                .network_services
                .values()
                .next()
                .unwrap()
                .clone();
            svc.sync_interval_secs = 5;
            state
                .conn
                .execute(
                    "UPDATE network_services SET body = ?1 WHERE id = ?2",
                    params![serde_json::to_string(&svc).unwrap(), svc.id.to_string()],
                )
                .unwrap();
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
