//! The sync database: journal of IPAM operations, per-service base and IPAM mirror, status,
//! jobs and conflict resolutions. Separate from the fabric database so the fabric stays the
//! console's own.

use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::db::{Conn, DbError, Location, Role, Tx, params};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::normal::BaseState;
use super::plan::Resolution;
use super::rows;
use super::status::{JobRecord, ServiceStatus};
use crate::fabric::model::Id;
use crate::ipam::model::{Cursor, IpamId, IpamKind, IpamOp, IpamSnapshot};

#[derive(Debug, thiserror::Error)]
pub enum SyncDbError {
    #[error("The sync database failed: {0}. Check the data directory is writable.")]
    Sql(#[from] DbError),
    #[error("The sync database holds a damaged record: {0}.")]
    Json(#[from] serde_json::Error),
    #[error("The sync database is unavailable (a worker panicked).")]
    Poisoned,
}

/// State of a journalled IPAM operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpState {
    /// Written before sending; if the console stops now, the next run looks it up on the server.
    Sent,
    Confirmed,
    Failed,
    /// Looked up after a crash or timeout and found not applied; the next plan decides again.
    Dropped,
}

impl OpState {
    fn as_str(self) -> &'static str {
        match self {
            OpState::Sent => "sent",
            OpState::Confirmed => "confirmed",
            OpState::Failed => "failed",
            OpState::Dropped => "dropped",
        }
    }
}

/// One journalled operation.
#[derive(Debug, Clone)]
pub struct JournalEntry {
    pub seq: i64,
    pub service: Id,
    pub job: Uuid,
    pub op: IpamOp,
}

#[derive(Clone)]
pub struct SyncDb {
    conn: Arc<Mutex<Conn>>,
}

const SCHEMA: &[&str] = &[
    r#"
CREATE TABLE journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    service TEXT NOT NULL,
    job TEXT NOT NULL,
    op TEXT NOT NULL,
    state TEXT NOT NULL,
    result TEXT,
    updated TEXT NOT NULL
);
CREATE INDEX journal_open ON journal(service, state);
CREATE TABLE base (service TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE mirror (service TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE status (service TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE jobs (id TEXT PRIMARY KEY, service TEXT NOT NULL, started TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX jobs_started ON jobs(started);
CREATE TABLE resolutions (service TEXT NOT NULL, key TEXT NOT NULL, resolution TEXT NOT NULL,
    PRIMARY KEY (service, key));
"#,
    r#"
CREATE TABLE settled (service TEXT PRIMARY KEY, body TEXT NOT NULL);
"#,
    r#"
CREATE TABLE set_aside (seq INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL,
    key TEXT NOT NULL, body TEXT NOT NULL, error TEXT NOT NULL, at TEXT NOT NULL);
CREATE INDEX journal_service_seq ON journal(service, seq);
CREATE INDEX jobs_service_started ON jobs(service, started);
"#,
    // The change-feed cursor apart from the mirror, so that a sync whose feed is empty reads
    // and writes a few bytes instead of the whole mirror.
    r#"
CREATE TABLE cursor (service TEXT PRIMARY KEY, body TEXT NOT NULL);
"#,
    // The base and the mirror as one row per entry (see `rows`), so a sync writes only what
    // changed; `generation` counts the writes, so a process that keeps them in memory knows
    // whether another one wrote since. A service without a generation row still has its base
    // and mirror in the single-row tables above, until its next sync.
    r#"
CREATE TABLE base_entry (service TEXT NOT NULL, key TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (service, key)) WITHOUT ROWID;
CREATE TABLE mirror_object (service TEXT NOT NULL, key TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (service, key)) WITHOUT ROWID;
CREATE TABLE generation (service TEXT PRIMARY KEY, value INTEGER NOT NULL);
"#,
    // Who holds each service's lease, for those who find it held (on PostgreSQL, where the
    // lease itself is an advisory lock; file leases keep this in their lock files).
    r#"
CREATE TABLE lease_holders (service TEXT PRIMARY KEY, body TEXT NOT NULL);
"#,
];

/// The PostgreSQL notification channel on which engines tell each other of their syncs'
/// progress, statuses and jobs (see `sync::engine`).
pub const SYNC_CHANNEL: &str = "fabric_console_sync";

/// The sync schema version this Fabric Console writes.
pub const SCHEMA_VERSION: i64 = SCHEMA.len() as i64;

/// A service's stored base and mirror, and the generation they were read at.
#[derive(Debug, Clone, Default)]
pub struct StoredState {
    /// 0 before the first write.
    pub generation: u64,
    pub base: BaseState,
    pub mirror: Option<IpamSnapshot>,
}

/// What a sync writes of the base and the mirror.
pub struct StateWrite<'a> {
    /// The generation the state was read at: the changes below are written only when the
    /// database still holds it; otherwise (or with `None`) everything is rewritten.
    pub read_at: Option<u64>,
    /// The whole new base.
    pub base: &'a BaseState,
    /// The entries that may differ, as read and as they are now (the whole base, or the part a
    /// sync planned); `None` rewrites the whole base.
    pub base_change: Option<(&'a BaseState, &'a BaseState)>,
    /// The whole new mirror, with its cursor.
    pub mirror: &'a IpamSnapshot,
    /// The objects whose rows may differ; `None` rewrites the whole mirror.
    pub mirror_touched: Option<&'a [(IpamKind, IpamId)]>,
}

/// How much history the sync database keeps per service; older rows are pruned after each sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Jobs listed in the Jobs workspace.
    pub jobs: usize,
    /// Settled journal entries (confirmed, failed, dropped); entries still "sent" are never pruned.
    pub journal: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            jobs: 500,
            journal: 50_000,
        }
    }
}

/// Moves a row that cannot be read into `set_aside` (with why), so that one damaged record
/// never stops the console: the row is kept for inspection, and the engine goes on without it.
/// `table`'s row whose `column` is `key` is the one moved.
fn set_aside(
    c: &Tx<'_>,
    table: &str,
    column: &str,
    key: &str,
    body: &str,
    error: &dyn std::fmt::Display,
) -> Result<(), SyncDbError> {
    tracing::warn!(
        table,
        key,
        %error,
        "a record of the sync database could not be read; it was moved to the set_aside table"
    );
    c.execute(
        "INSERT INTO set_aside(source, key, body, error, at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![table, key, body, error.to_string(), Utc::now().to_rfc3339()],
    )?;
    c.execute(
        &format!("DELETE FROM {table} WHERE {column} = ?1"),
        params![key],
    )?;
    Ok(())
}

/// Writes `body` as the service's row of `table` (base, mirror, status, settled).
fn put_body(c: &Tx<'_>, table: &str, service: &str, body: &str) -> Result<(), SyncDbError> {
    c.execute(
        &format!("INSERT INTO {table}(service, body) VALUES (?1, ?2) ON CONFLICT(service) DO UPDATE SET body = excluded.body"),
        params![service, body],
    )?;
    Ok(())
}

fn get_body(c: &Tx<'_>, table: &str, service: &str) -> Result<Option<String>, SyncDbError> {
    Ok(c.value(
        &format!("SELECT body FROM {table} WHERE service = ?1"),
        params![service],
    )?)
}

fn read_generation(c: &Tx<'_>, service: &str) -> Result<u64, SyncDbError> {
    let v: Option<i64> = c.value(
        "SELECT value FROM generation WHERE service = ?1",
        params![service],
    )?;
    Ok(v.unwrap_or(0).max(0) as u64)
}

fn write_generation(c: &Tx<'_>, service: &str, generation: u64) -> Result<(), SyncDbError> {
    c.execute(
        "INSERT INTO generation(service, value) VALUES (?1, ?2)
         ON CONFLICT(service) DO UPDATE SET value = excluded.value",
        params![service, generation as i64],
    )?;
    Ok(())
}

/// A service's rows of `table` (base_entry, mirror_object), in key order.
fn read_rows(c: &Tx<'_>, table: &str, service: &str) -> Result<Vec<(String, String)>, SyncDbError> {
    c.query(
        &format!("SELECT key, body FROM {table} WHERE service = ?1 ORDER BY key"),
        params![service],
    )?
    .iter()
    .map(|r| Ok((r.get(0)?, r.get(1)?)))
    .collect()
}

fn write_rows(
    c: &Tx<'_>,
    table: &str,
    service: &str,
    put: &[(String, String)],
    delete: &[String],
) -> Result<(), SyncDbError> {
    let del = format!("DELETE FROM {table} WHERE service = ?1 AND key = ?2");
    for k in delete {
        c.execute(&del, params![service, k])?;
    }
    let ins = format!(
        "INSERT INTO {table}(service, key, body) VALUES (?1, ?2, ?3)
         ON CONFLICT(service, key) DO UPDATE SET body = excluded.body"
    );
    for (k, body) in put {
        c.execute(&ins, params![service, k, body])?;
    }
    Ok(())
}

/// Moves one unreadable row of a service's base or mirror into `set_aside`.
fn set_aside_row(
    c: &Tx<'_>,
    table: &str,
    service: &str,
    row: &rows::BadRow,
) -> Result<(), SyncDbError> {
    tracing::warn!(
        table,
        key = %row.key,
        error = %row.error,
        "a row of the sync database could not be read; it was moved to the set_aside table"
    );
    c.execute(
        "INSERT INTO set_aside(source, key, body, error, at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            table,
            format!("{service}/{}", row.key),
            &row.body,
            &row.error,
            Utc::now().to_rfc3339()
        ],
    )?;
    c.execute(
        &format!("DELETE FROM {table} WHERE service = ?1 AND key = ?2"),
        params![service, &row.key],
    )?;
    Ok(())
}

/// Records the fabric revision at which both sides agree, or (`None`) that they may not.
fn put_settled(c: &Tx<'_>, service: &str, revision: Option<u64>) -> Result<(), SyncDbError> {
    match revision {
        Some(r) => put_body(c, "settled", service, &r.to_string()),
        None => {
            c.execute("DELETE FROM settled WHERE service = ?1", params![service])?;
            Ok(())
        }
    }
}

impl SyncDb {
    /// The sync database file (SQLite; write-ahead logged, synchronous: the journal says what
    /// was sent before it is sent, so it must survive a power loss).
    pub fn open(path: &Path) -> Result<Self, SyncDbError> {
        Self::init(Conn::sqlite_file(path, Role::Sync).map_err(DbError::from)?)
    }

    /// The sync state at `location`: beside the fabric, in the same PostgreSQL database when
    /// the fabric is there.
    pub fn open_at(location: &Location) -> Result<Self, SyncDbError> {
        Self::init(Conn::open(location, Role::Sync)?)
    }

    pub fn open_in_memory() -> Result<Self, SyncDbError> {
        Self::init(Conn::sqlite_memory(Role::Sync).map_err(DbError::from)?)
    }

    fn init(mut conn: Conn) -> Result<Self, SyncDbError> {
        // The version is read and the schema created inside one write transaction, so two
        // processes starting together do not both create it.
        conn.migrate(SCHEMA)?;
        Ok(SyncDb {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<T, SyncDbError>,
    ) -> Result<T, SyncDbError> {
        let mut guard = self.conn.lock().map_err(|_| SyncDbError::Poisoned)?;
        f(&mut guard)
    }

    /// `f` in one write transaction (one writer at a time across processes), committed when it
    /// returns Ok.
    fn write<T>(
        &self,
        f: impl FnOnce(&Tx<'_>) -> Result<T, SyncDbError>,
    ) -> Result<T, SyncDbError> {
        self.with(|c| {
            let tx = c.write()?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
    }

    /// `f` on one consistent snapshot.
    fn read<T>(&self, f: impl FnOnce(&Tx<'_>) -> Result<T, SyncDbError>) -> Result<T, SyncDbError> {
        self.with(|c| {
            let tx = c.read()?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
    }

    /// Write operations as sent, before they go to the server. Returns their sequence numbers.
    pub fn record_sent(
        &self,
        service: Id,
        job: Uuid,
        ops: &[IpamOp],
    ) -> Result<Vec<i64>, SyncDbError> {
        self.write(|tx| {
            let now = Utc::now().to_rfc3339();
            let mut seqs = Vec::with_capacity(ops.len());
            for op in ops {
                let seq = tx.value::<i64>(
                    "INSERT INTO journal(service, job, op, state, updated) VALUES (?1, ?2, ?3, 'sent', ?4) RETURNING seq",
                    params![service.to_string(), job.to_string(), serde_json::to_string(op)?, &now],
                )?;
                seqs.push(seq.unwrap_or_default());
            }
            Ok(seqs)
        })
    }

    pub fn mark(&self, updates: &[(i64, OpState, Option<String>)]) -> Result<(), SyncDbError> {
        self.write(|tx| {
            let now = Utc::now().to_rfc3339();
            for (seq, state, result) in updates {
                tx.execute(
                    "UPDATE journal SET state = ?1, result = ?2, updated = ?3 WHERE seq = ?4",
                    params![state.as_str(), result, &now, seq],
                )?;
            }
            Ok(())
        })
    }

    /// Operations sent but never confirmed or failed: the console stopped or the call timed out.
    pub fn unconfirmed(&self, service: Id) -> Result<Vec<JournalEntry>, SyncDbError> {
        self.write(|c| {
            let rows = c.query("SELECT seq, job, op FROM journal WHERE service = ?1 AND state = 'sent' ORDER BY seq", params![service.to_string()])?;
            let mut out = Vec::new();
            let mut damaged = Vec::new();
            for r in rows {
                let (seq, job, op) = (r.get::<i64>(0)?, r.get::<String>(1)?, r.get::<String>(2)?);
                match serde_json::from_str(&op) {
                    Ok(op) => out.push(JournalEntry {
                        seq,
                        service,
                        job: Uuid::parse_str(&job).unwrap_or_default(),
                        op,
                    }),
                    Err(e) => damaged.push((seq, op, e)),
                }
            }
            for (seq, op, e) in damaged {
                set_aside(c, "journal", "seq", &seq.to_string(), &op, &e)?;
            }
            Ok(out)
        })
    }

    pub fn journal_counts(&self, service: Id) -> Result<Vec<(String, i64)>, SyncDbError> {
        self.read(|c| {
            c.query("SELECT state, COUNT(*) FROM journal WHERE service = ?1 GROUP BY state ORDER BY state", params![service.to_string()])?
                .iter()
                .map(|r| Ok((r.get(0)?, r.get(1)?)))
                .collect()
        })
    }

    fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        table: &str,
        service: Id,
    ) -> Result<Option<T>, SyncDbError> {
        self.write(|c| {
            let body: Option<String> = c.value(
                &format!("SELECT body FROM {table} WHERE service = ?1"),
                params![service.to_string()],
            )?;
            let Some(body) = body else {
                return Ok(None);
            };
            match serde_json::from_str(&body) {
                Ok(v) => Ok(Some(v)),
                Err(e) => {
                    // Read as absent: a base or mirror is rebuilt from a full read.
                    set_aside(c, table, "service", &service.to_string(), &body, &e)?;
                    Ok(None)
                }
            }
        })
    }

    fn put_json<T: serde::Serialize>(
        &self,
        table: &str,
        service: Id,
        value: &T,
    ) -> Result<(), SyncDbError> {
        let body = serde_json::to_string(value)?;
        self.write(|c| put_body(c, table, &service.to_string(), &body))
    }

    pub fn base(&self, service: Id) -> Result<BaseState, SyncDbError> {
        Ok(self.state(service)?.base)
    }

    pub fn mirror(&self, service: Id) -> Result<Option<IpamSnapshot>, SyncDbError> {
        Ok(self.state(service)?.mirror)
    }

    /// How many times the service's base and mirror were written (0: never as rows).
    pub fn generation(&self, service: Id) -> Result<u64, SyncDbError> {
        self.read(|c| read_generation(c, &service.to_string()))
    }

    /// The service's base and mirror with their generation, read together.
    pub fn state(&self, service: Id) -> Result<StoredState, SyncDbError> {
        let key = service.to_string();
        let state = self.write(|tx| {
            let generation = read_generation(tx, &key)?;
            if generation == 0 {
                return Ok(None);
            }
            let (base, bad_base) = rows::base_from_rows(read_rows(tx, "base_entry", &key)?);
            let (mut mirror, bad_mirror) =
                rows::mirror_from_rows(read_rows(tx, "mirror_object", &key)?);
            mirror.cursor = get_body(tx, "cursor", &key)?
                .and_then(|b| serde_json::from_str(&b).ok())
                .flatten();
            let damaged = !bad_base.is_empty() || !bad_mirror.is_empty();
            // A mirror missing an object would say the server deleted it: a damaged one is
            // read as absent, and the next sync reads the server whole. A base missing an
            // entry only forgets that both sides once agreed on it.
            let mirror = if bad_mirror.is_empty() {
                Some(mirror)
            } else {
                // Forgotten with its cursor, so that every later read is a whole one too.
                tx.execute(
                    "DELETE FROM mirror_object WHERE service = ?1",
                    params![&key],
                )?;
                tx.execute("DELETE FROM cursor WHERE service = ?1", params![&key])?;
                None
            };
            for (table, bad) in [("base_entry", bad_base), ("mirror_object", bad_mirror)] {
                for row in bad {
                    set_aside_row(tx, table, &key, &row)?;
                }
            }
            if damaged {
                // Whoever kept the state in memory reads it again.
                write_generation(tx, &key, generation + 1)?;
            }
            Ok(Some(StoredState {
                generation: generation + u64::from(damaged),
                base,
                mirror,
            }))
        })?;
        match state {
            Some(s) => Ok(s),
            // Stored before one row per entry: the single-row tables.
            None => Ok(StoredState {
                generation: 0,
                base: self.get_json("base", service)?.unwrap_or_default(),
                mirror: self.get_json("mirror", service)?,
            }),
        }
    }

    /// Whether the operator decided conflicts the next sync has to apply.
    pub fn has_resolutions(&self, service: Id) -> Result<bool, SyncDbError> {
        self.read(|c| {
            Ok(c.value(
                "SELECT EXISTS(SELECT 1 FROM resolutions WHERE service = ?1)",
                params![service.to_string()],
            )?
            .unwrap_or(false))
        })
    }

    /// The change-feed cursor of the stored mirror, without reading the mirror (a database
    /// from before the cursor was kept apart reads it from the mirror once).
    pub fn cursor(&self, service: Id) -> Result<Option<Cursor>, SyncDbError> {
        match self.get_json::<Option<Cursor>>("cursor", service)? {
            Some(cursor) => Ok(cursor),
            None if self.generation(service)? > 0 => Ok(None),
            None => Ok(self
                .get_json::<IpamSnapshot>("mirror", service)?
                .and_then(|m| m.cursor)),
        }
    }

    /// Moves the stored mirror's cursor on when the server reported no change since it.
    pub fn save_cursor(&self, service: Id, cursor: &Option<Cursor>) -> Result<(), SyncDbError> {
        self.put_json("cursor", service, cursor)
    }

    /// What a sync leaves behind, in one transaction: the base and mirror (only the rows that
    /// changed, when the database still holds what was read), the conflict decisions it
    /// consumed, and whether both sides now agree (`settled`, a fabric revision). Returns the
    /// new generation.
    pub fn record_sync(
        &self,
        service: Id,
        write: &StateWrite,
        consumed: &[String],
        settled: Option<u64>,
    ) -> Result<u64, SyncDbError> {
        let id = service.to_string();
        let cursor = serde_json::to_string(&write.mirror.cursor)?;
        // Serialized before the database is locked; the whole state only if needed below.
        let base_change = write
            .base_change
            .map(|(old, new)| rows::base_changes(old, new))
            .transpose()?;
        let mirror_change = write
            .mirror_touched
            .map(|t| rows::mirror_changes(write.mirror, t))
            .transpose()?;
        let current = self.generation(service)?;
        let diffs = match (write.read_at, base_change, mirror_change) {
            (Some(read_at), Some(b), Some(m)) if read_at == current && current > 0 => Some((b, m)),
            _ => None,
        };
        let whole = match diffs {
            Some(_) => None,
            None => Some((
                rows::base_rows(write.base)?,
                rows::mirror_rows(write.mirror)?,
            )),
        };
        self.write(|tx| {
            let generation = read_generation(tx, &id)?;
            match (&diffs, whole) {
                (Some((b, m)), _) if generation == current => {
                    write_rows(tx, "base_entry", &id, &b.put, &b.delete)?;
                    write_rows(tx, "mirror_object", &id, &m.put, &m.delete)?;
                }
                (_, whole) => {
                    let (b, m) = match whole {
                        Some(w) => w,
                        None => (
                            rows::base_rows(write.base)?,
                            rows::mirror_rows(write.mirror)?,
                        ),
                    };
                    for table in ["base_entry", "mirror_object", "base", "mirror"] {
                        tx.execute(
                            &format!("DELETE FROM {table} WHERE service = ?1"),
                            params![&id],
                        )?;
                    }
                    write_rows(tx, "base_entry", &id, &b, &[])?;
                    write_rows(tx, "mirror_object", &id, &m, &[])?;
                }
            }
            put_body(tx, "cursor", &id, &cursor)?;
            for k in consumed {
                tx.execute(
                    "DELETE FROM resolutions WHERE service = ?1 AND key = ?2",
                    params![&id, k],
                )?;
            }
            put_settled(tx, &id, settled)?;
            write_generation(tx, &id, generation + 1)?;
            Ok(generation + 1)
        })
    }

    /// Writes a whole base and mirror (tests, and a service's state set from outside a sync).
    pub fn save_base_and_mirror(
        &self,
        service: Id,
        base: &BaseState,
        mirror: &IpamSnapshot,
    ) -> Result<(), SyncDbError> {
        let write = StateWrite {
            read_at: None,
            base,
            base_change: None,
            mirror,
            mirror_touched: None,
        };
        let settled = self.settled(service)?;
        self.record_sync(service, &write, &[], settled).map(|_| ())
    }

    pub fn status(&self, service: Id) -> Result<Option<ServiceStatus>, SyncDbError> {
        self.get_json("status", service)
    }

    /// Saves a service's status; on PostgreSQL the other consoles hear of it on
    /// [`SYNC_CHANNEL`] (`payload`, when given, says who wrote it).
    pub fn save_status(&self, status: &ServiceStatus) -> Result<(), SyncDbError> {
        self.save_status_from(status, None)
    }

    pub fn save_status_from(
        &self,
        status: &ServiceStatus,
        payload: Option<&str>,
    ) -> Result<(), SyncDbError> {
        let body = serde_json::to_string(status)?;
        self.write(|c| {
            put_body(c, "status", &status.service.to_string(), &body)?;
            if let Some(p) = payload {
                c.notify(SYNC_CHANNEL, p)?;
            }
            Ok(())
        })
    }

    /// Tells the other consoles on PostgreSQL something about a sync (nothing elsewhere).
    pub fn announce(&self, payload: &str) -> Result<(), SyncDbError> {
        self.read(|c| Ok(c.notify(SYNC_CHANNEL, payload)?))
    }

    /// The fabric revision at which the last sync (by any process) left both sides agreeing.
    pub fn settled(&self, service: Id) -> Result<Option<u64>, SyncDbError> {
        self.get_json("settled", service)
    }

    /// Records that both sides agree at `revision`, or (`None`) that they may not.
    pub fn set_settled(&self, service: Id, revision: Option<u64>) -> Result<(), SyncDbError> {
        self.write(|c| put_settled(c, &service.to_string(), revision))
    }

    pub fn save_job(&self, job: &JobRecord) -> Result<(), SyncDbError> {
        self.save_job_from(job, None)
    }

    /// `save_job`, announced on [`SYNC_CHANNEL`] with `payload` on PostgreSQL.
    pub fn save_job_from(&self, job: &JobRecord, payload: Option<&str>) -> Result<(), SyncDbError> {
        let body = serde_json::to_string(job)?;
        self.write(|c| {
            if let Some(p) = payload {
                c.notify(SYNC_CHANNEL, p)?;
            }
            c.execute(
                "INSERT INTO jobs(id, service, started, body) VALUES (?1, ?2, ?3, ?4) ON CONFLICT(id) DO UPDATE SET body = excluded.body",
                params![job.id.to_string(), job.service.to_string(), job.started.to_rfc3339(), body],
            )?;
            Ok(())
        })
    }

    /// Newest first.
    pub fn jobs(&self, limit: usize) -> Result<Vec<JobRecord>, SyncDbError> {
        self.write(|c| {
            let rows = c.query(
                "SELECT id, body FROM jobs ORDER BY started DESC LIMIT ?1",
                params![limit as i64],
            )?;
            let mut out = Vec::new();
            let mut damaged = Vec::new();
            for r in rows {
                let (id, body) = (r.get::<String>(0)?, r.get::<String>(1)?);
                match serde_json::from_str(&body) {
                    Ok(job) => out.push(job),
                    Err(e) => damaged.push((id, body, e)),
                }
            }
            for (id, body, e) in damaged {
                set_aside(c, "jobs", "id", &id, &body, &e)?;
            }
            Ok(out)
        })
    }

    pub fn resolutions(
        &self,
        service: Id,
    ) -> Result<std::collections::BTreeMap<String, Resolution>, SyncDbError> {
        self.read(|c| {
            let rows = c.query(
                "SELECT key, resolution FROM resolutions WHERE service = ?1",
                params![service.to_string()],
            )?;
            let mut out = std::collections::BTreeMap::new();
            for r in rows {
                let (k, v) = (r.get::<String>(0)?, r.get::<String>(1)?);
                let res = if v == "take_ipam" {
                    Resolution::TakeIpam
                } else {
                    Resolution::KeepConsole
                };
                out.insert(k, res);
            }
            Ok(out)
        })
    }

    pub fn put_resolution(&self, service: Id, key: &str, r: Resolution) -> Result<(), SyncDbError> {
        let v = match r {
            Resolution::KeepConsole => "keep_console",
            Resolution::TakeIpam => "take_ipam",
        };
        self.write(|c| {
            c.execute(
                "INSERT INTO resolutions(service, key, resolution) VALUES (?1, ?2, ?3) ON CONFLICT(service, key) DO UPDATE SET resolution = excluded.resolution",
                params![service.to_string(), key, v],
            )?;
            Ok(())
        })
    }

    /// Keeps the newest `keep.jobs` jobs and `keep.journal` settled journal entries of a
    /// service; journal entries still "sent" (outcome unknown) are always kept.
    pub fn prune(&self, service: Id, keep: Retention) -> Result<(usize, usize), SyncDbError> {
        let id = service.to_string();
        self.write(|tx| {
            let jobs = tx.execute(
                "DELETE FROM jobs WHERE service = ?1 AND id NOT IN
                    (SELECT id FROM jobs WHERE service = ?1 ORDER BY started DESC LIMIT ?2)",
                params![&id, keep.jobs as i64],
            )?;
            // Sequence numbers only grow: while the service's span of them is within the limit
            // there is nothing to prune, found in two index lookups whatever the journal's size.
            let (first, last): (Option<i64>, Option<i64>) = match tx.query_opt(
                "SELECT MIN(seq), MAX(seq) FROM journal WHERE service = ?1",
                params![&id],
            )? {
                Some(r) => (r.get(0)?, r.get(1)?),
                None => (None, None),
            };
            let journal = match (first, last) {
                (Some(first), Some(last)) if last - first >= keep.journal as i64 => {
                    let cutoff: Option<i64> = tx.value(
                        "SELECT seq FROM journal WHERE service = ?1 AND state != 'sent'
                         ORDER BY seq DESC LIMIT 1 OFFSET ?2",
                        params![&id, keep.journal as i64],
                    )?;
                    match cutoff {
                        Some(cutoff) => tx.execute(
                            "DELETE FROM journal WHERE service = ?1 AND state != 'sent' AND seq <= ?2",
                            params![&id, cutoff],
                        )?,
                        None => 0,
                    }
                }
                _ => 0,
            };
            Ok((jobs, journal))
        })
    }

    /// Rows set aside because they could not be read: (source, key, error).
    pub fn set_aside_rows(&self) -> Result<Vec<(String, String, String)>, SyncDbError> {
        self.read(|c| {
            c.query(
                "SELECT source, key, error FROM set_aside ORDER BY seq",
                params![],
            )?
            .iter()
            .map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .collect()
        })
    }

    /// Forget everything about a removed service (jobs are kept as history).
    pub fn forget_service(&self, service: Id) -> Result<(), SyncDbError> {
        self.write(|tx| {
            for table in [
                "base",
                "mirror",
                "base_entry",
                "mirror_object",
                "generation",
                "cursor",
                "status",
                "resolutions",
                "settled",
            ] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE service = ?1"),
                    params![service.to_string()],
                )?;
            }
            Ok(())
        })
    }
}

/// When a job started, for ordering.
pub fn now() -> DateTime<Utc> {
    Utc::now()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipam::model::{AddressSpace, AddressSpaceKind, IpamOp};
    use crate::sync::status::{JobResult, JobTrigger, SyncCounts};

    fn job(service: Id, minute: u32) -> JobRecord {
        JobRecord {
            id: Uuid::new_v4(),
            service,
            service_name: "ipam1".into(),
            trigger: JobTrigger::Refresh,
            started: DateTime::parse_from_rfc3339(&format!("2026-01-01T10:{minute:02}:00Z"))
                .unwrap()
                .with_timezone(&Utc),
            finished: None,
            result: JobResult::Succeeded,
            counts: SyncCounts::default(),
            errors: vec![],
            notices: Vec::new(),
            phases: Default::default(),
        }
    }

    fn raw(db: &SyncDb, sql: &str) {
        db.write(|c| {
            c.batch(sql)?;
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn damaged_rows_are_set_aside_and_the_rest_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        let db = SyncDb::open(&dir.path().join("sync.db")).unwrap();
        let service = Uuid::new_v4();
        db.save_job(&job(service, 1)).unwrap();
        db.save_job(&job(service, 2)).unwrap();
        let mirror = IpamSnapshot {
            spaces: vec![
                AddressSpace::new("a", "A", AddressSpaceKind::Provider),
                AddressSpace::new("b", "B", AddressSpaceKind::Provider),
            ],
            ..IpamSnapshot::default()
        };
        db.save_base_and_mirror(service, &BaseState::default(), &mirror)
            .unwrap();
        db.record_sent(service, Uuid::new_v4(), &[IpamOp::DeleteRange("r1".into())])
            .unwrap();
        // A service stored the way older versions did: one row for its whole mirror.
        let older = Uuid::new_v4();
        raw(
            &db,
            &format!(
                "INSERT INTO jobs(id, service, started, body) VALUES ('x', '{service}', '2026-01-01T11:00:00Z', '{{not json');
                 UPDATE mirror_object SET body = '[1,2' WHERE service = '{service}' AND key = 's/a';
                 INSERT INTO mirror(service, body) VALUES ('{older}', '[1,2');
                 INSERT INTO journal(service, job, op, state, updated) VALUES ('{service}', 'j', 'garbage', 'sent', 'now');"
            ),
        );
        // Reopening (as the next start does) works, and every read skips what it cannot read.
        drop(db);
        let db = SyncDb::open(&dir.path().join("sync.db")).unwrap();
        assert_eq!(db.jobs(10).unwrap().len(), 2);
        let generation = db.generation(service).unwrap();
        assert_eq!(
            db.mirror(service).unwrap(),
            None,
            "a mirror missing an object is none"
        );
        assert_eq!(
            db.cursor(service).unwrap(),
            None,
            "the next sync reads the server whole"
        );
        let read = db.mirror(service).unwrap().unwrap();
        assert!(read.spaces.is_empty());
        assert_eq!(
            db.generation(service).unwrap(),
            generation + 1,
            "whoever keeps the mirror in memory reads it again"
        );
        assert_eq!(db.mirror(older).unwrap(), None);
        assert_eq!(db.unconfirmed(service).unwrap().len(), 1);
        let aside: Vec<String> = db
            .set_aside_rows()
            .unwrap()
            .into_iter()
            .map(|(source, _, _)| source)
            .collect();
        assert_eq!(aside, ["jobs", "mirror_object", "mirror", "journal"]);
        // Set aside once: the next reads find nothing more to move.
        assert_eq!(db.jobs(10).unwrap().len(), 2);
        assert_eq!(db.unconfirmed(service).unwrap().len(), 1);
        assert_eq!(db.mirror(service).unwrap().unwrap(), read);
        assert_eq!(db.mirror(older).unwrap(), None);
        assert_eq!(db.set_aside_rows().unwrap().len(), 4);
    }

    /// A sync writes the rows that changed when the database holds what it read, and rewrites
    /// everything when another process wrote meanwhile.
    #[test]
    fn a_sync_writes_changed_rows_only_over_the_state_it_read() {
        let db = SyncDb::open_in_memory().unwrap();
        let service = Uuid::new_v4();
        let mut mirror = IpamSnapshot {
            spaces: vec![
                AddressSpace::new("a", "A", AddressSpaceKind::Provider),
                AddressSpace::new("b", "B", AddressSpaceKind::Provider),
            ],
            ..IpamSnapshot::default()
        };
        db.save_base_and_mirror(service, &BaseState::default(), &mirror)
            .unwrap();
        let read = db.state(service).unwrap();
        mirror.spaces[0].description = "changed".into();
        mirror.spaces.remove(1);
        let touched = [
            (IpamKind::AddressSpace, IpamId::from("a".to_string())),
            (IpamKind::AddressSpace, IpamId::from("b".to_string())),
        ];
        let write = |read_at| StateWrite {
            read_at: Some(read_at),
            base: &read.base,
            base_change: Some((&read.base, &read.base)),
            mirror: &mirror,
            mirror_touched: Some(&touched),
        };
        let g = db
            .record_sync(service, &write(read.generation), &[], Some(3))
            .unwrap();
        assert_eq!(g, read.generation + 1);
        assert_eq!(db.mirror(service).unwrap().unwrap().spaces, mirror.spaces);
        assert_eq!(db.settled(service).unwrap(), Some(3));
        // Written from a stale read: the touched rows alone would leave "c" behind.
        let mut other = mirror.clone();
        other
            .spaces
            .push(AddressSpace::new("c", "C", AddressSpaceKind::Provider));
        db.save_base_and_mirror(service, &BaseState::default(), &other)
            .unwrap();
        db.record_sync(service, &write(g), &[], None).unwrap();
        assert_eq!(db.mirror(service).unwrap().unwrap().spaces, mirror.spaces);
        assert_eq!(db.settled(service).unwrap(), None);
    }

    #[test]
    fn pruning_keeps_the_newest_and_every_unknown_outcome() {
        let db = SyncDb::open_in_memory().unwrap();
        let (service, other) = (Uuid::new_v4(), Uuid::new_v4());
        for m in 0..10 {
            db.save_job(&job(service, m)).unwrap();
        }
        db.save_job(&job(other, 0)).unwrap();
        let ops: Vec<IpamOp> = (0..8)
            .map(|i| IpamOp::DeleteRange(format!("r{i}").into()))
            .collect();
        let seqs = db.record_sent(service, Uuid::new_v4(), &ops).unwrap();
        // The first two stay "sent" (unknown); the rest are settled.
        let marks: Vec<_> = seqs[2..]
            .iter()
            .map(|s| (*s, OpState::Confirmed, None))
            .collect();
        db.mark(&marks).unwrap();
        let (jobs, journal) = db
            .prune(
                service,
                Retention {
                    jobs: 3,
                    journal: 2,
                },
            )
            .unwrap();
        assert_eq!((jobs, journal), (7, 4));
        let kept: Vec<u32> = db
            .jobs(100)
            .unwrap()
            .iter()
            .filter(|j| j.service == service)
            .map(|j| j.started.format("%M").to_string().parse().unwrap())
            .collect();
        assert_eq!(kept, [9, 8, 7]);
        assert_eq!(
            db.jobs(100).unwrap().len(),
            4,
            "another service's jobs stay"
        );
        assert_eq!(db.unconfirmed(service).unwrap().len(), 2);
        let counts: std::collections::BTreeMap<String, i64> =
            db.journal_counts(service).unwrap().into_iter().collect();
        assert_eq!(counts.get("confirmed"), Some(&2));
    }
}
