//! The sync database: journal of IPAM operations, per-service base and IPAM mirror, status,
//! jobs and conflict resolutions. Separate from the fabric database so the fabric stays the
//! console's own.

use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use super::normal::BaseState;
use super::plan::Resolution;
use super::status::{JobRecord, ServiceStatus};
use crate::fabric::model::Id;
use crate::ipam::model::{Cursor, IpamOp, IpamSnapshot};

#[derive(Debug, thiserror::Error)]
pub enum SyncDbError {
    #[error("The sync database failed: {0}. Check the data directory is writable.")]
    Sql(#[from] rusqlite::Error),
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
    conn: Arc<Mutex<Connection>>,
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
];

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
    c: &Connection,
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
fn put_body(c: &Connection, table: &str, service: &str, body: &str) -> Result<(), SyncDbError> {
    c.execute(
        &format!("INSERT INTO {table}(service, body) VALUES (?1, ?2) ON CONFLICT(service) DO UPDATE SET body = excluded.body"),
        params![service, body],
    )?;
    Ok(())
}

/// Records the fabric revision at which both sides agree, or (`None`) that they may not.
fn put_settled(c: &Connection, service: &str, revision: Option<u64>) -> Result<(), SyncDbError> {
    match revision {
        Some(r) => put_body(c, "settled", service, &r.to_string()),
        None => {
            c.execute("DELETE FROM settled WHERE service = ?1", params![service])?;
            Ok(())
        }
    }
}

impl SyncDb {
    pub fn open(path: &Path) -> Result<Self, SyncDbError> {
        let conn = Connection::open(path)?;
        Self::init(conn)
    }

    pub fn open_in_memory() -> Result<Self, SyncDbError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Self, SyncDbError> {
        // Several processes may open the database at once: wait for each other's locks from the
        // first statement on (switching to WAL takes one too).
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // The journal says what was sent before it is sent: it must survive a power loss.
        conn.pragma_update(None, "synchronous", "FULL")?;
        // The version is read and the schema created inside one write transaction, so two
        // processes starting together do not both create it.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for (i, step) in SCHEMA.iter().enumerate().skip(version.max(0) as usize) {
            tx.execute_batch(step)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        }
        tx.commit()?;
        Ok(SyncDb {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, SyncDbError>,
    ) -> Result<T, SyncDbError> {
        let mut guard = self.conn.lock().map_err(|_| SyncDbError::Poisoned)?;
        f(&mut guard)
    }

    /// Write operations as sent, before they go to the server. Returns their sequence numbers.
    pub fn record_sent(
        &self,
        service: Id,
        job: Uuid,
        ops: &[IpamOp],
    ) -> Result<Vec<i64>, SyncDbError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let now = Utc::now().to_rfc3339();
            let mut seqs = Vec::with_capacity(ops.len());
            {
                let mut st = tx.prepare_cached(
                    "INSERT INTO journal(service, job, op, state, updated) VALUES (?1, ?2, ?3, 'sent', ?4)",
                )?;
                for op in ops {
                    st.execute(params![service.to_string(), job.to_string(), serde_json::to_string(op)?, now])?;
                    seqs.push(tx.last_insert_rowid());
                }
            }
            tx.commit()?;
            Ok(seqs)
        })
    }

    pub fn mark(&self, updates: &[(i64, OpState, Option<String>)]) -> Result<(), SyncDbError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let now = Utc::now().to_rfc3339();
            {
                let mut st = tx.prepare_cached(
                    "UPDATE journal SET state = ?1, result = ?2, updated = ?3 WHERE seq = ?4",
                )?;
                for (seq, state, result) in updates {
                    st.execute(params![state.as_str(), result, now, seq])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// Operations sent but never confirmed or failed: the console stopped or the call timed out.
    pub fn unconfirmed(&self, service: Id) -> Result<Vec<JournalEntry>, SyncDbError> {
        self.with(|c| {
            let mut st = c.prepare("SELECT seq, job, op FROM journal WHERE service = ?1 AND state = 'sent' ORDER BY seq")?;
            let rows = st.query_map(params![service.to_string()], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
            })?;
            let mut out = Vec::new();
            let mut damaged = Vec::new();
            for row in rows {
                let (seq, job, op) = row?;
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
            drop(st);
            for (seq, op, e) in damaged {
                set_aside(c, "journal", "seq", &seq.to_string(), &op, &e)?;
            }
            Ok(out)
        })
    }

    pub fn journal_counts(&self, service: Id) -> Result<Vec<(String, i64)>, SyncDbError> {
        self.with(|c| {
            let mut st = c.prepare("SELECT state, COUNT(*) FROM journal WHERE service = ?1 GROUP BY state ORDER BY state")?;
            let rows = st.query_map(params![service.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        table: &str,
        service: Id,
    ) -> Result<Option<T>, SyncDbError> {
        self.with(|c| {
            let body: Option<String> = c
                .query_row(
                    &format!("SELECT body FROM {table} WHERE service = ?1"),
                    params![service.to_string()],
                    |r| r.get(0),
                )
                .optional()?;
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
        self.with(|c| put_body(c, table, &service.to_string(), &body))
    }

    pub fn base(&self, service: Id) -> Result<BaseState, SyncDbError> {
        Ok(self.get_json("base", service)?.unwrap_or_default())
    }

    pub fn mirror(&self, service: Id) -> Result<Option<IpamSnapshot>, SyncDbError> {
        self.get_json("mirror", service)
    }

    /// Whether the operator decided conflicts the next sync has to apply.
    pub fn has_resolutions(&self, service: Id) -> Result<bool, SyncDbError> {
        self.with(|c| {
            Ok(c.query_row(
                "SELECT EXISTS(SELECT 1 FROM resolutions WHERE service = ?1)",
                params![service.to_string()],
                |r| r.get(0),
            )?)
        })
    }

    /// The change-feed cursor of the stored mirror, without reading the mirror (a database
    /// from before the cursor was kept apart reads it from the mirror once).
    pub fn cursor(&self, service: Id) -> Result<Option<Cursor>, SyncDbError> {
        match self.get_json::<Option<Cursor>>("cursor", service)? {
            Some(cursor) => Ok(cursor),
            None => Ok(self.mirror(service)?.and_then(|m| m.cursor)),
        }
    }

    /// Moves the stored mirror's cursor on when the server reported no change since it.
    pub fn save_cursor(&self, service: Id, cursor: &Option<Cursor>) -> Result<(), SyncDbError> {
        self.put_json("cursor", service, cursor)
    }

    /// Base and mirror are saved together: one describes the other.
    pub fn save_base_and_mirror(
        &self,
        service: Id,
        base: &BaseState,
        mirror: &IpamSnapshot,
    ) -> Result<(), SyncDbError> {
        let b = serde_json::to_string(base)?;
        let m = serde_json::to_string(mirror)?;
        let cursor = serde_json::to_string(&mirror.cursor)?;
        let id = service.to_string();
        self.with(|c| {
            let tx = c.transaction()?;
            put_body(&tx, "base", &id, &b)?;
            put_body(&tx, "mirror", &id, &m)?;
            put_body(&tx, "cursor", &id, &cursor)?;
            tx.commit()?;
            Ok(())
        })
    }

    /// What a sync leaves behind, in one transaction: the new base and mirror, the conflict
    /// decisions it consumed, and whether both sides now agree (`settled`, a fabric revision).
    pub fn record_sync(
        &self,
        service: Id,
        base: &BaseState,
        mirror: &IpamSnapshot,
        consumed: &[String],
        settled: Option<u64>,
    ) -> Result<(), SyncDbError> {
        let b = serde_json::to_string(base)?;
        let m = serde_json::to_string(mirror)?;
        let cursor = serde_json::to_string(&mirror.cursor)?;
        let id = service.to_string();
        self.with(|c| {
            let tx = c.transaction()?;
            put_body(&tx, "base", &id, &b)?;
            put_body(&tx, "mirror", &id, &m)?;
            put_body(&tx, "cursor", &id, &cursor)?;
            for k in consumed {
                tx.execute(
                    "DELETE FROM resolutions WHERE service = ?1 AND key = ?2",
                    params![id, k],
                )?;
            }
            put_settled(&tx, &id, settled)?;
            tx.commit()?;
            Ok(())
        })
    }

    pub fn status(&self, service: Id) -> Result<Option<ServiceStatus>, SyncDbError> {
        self.get_json("status", service)
    }

    pub fn save_status(&self, status: &ServiceStatus) -> Result<(), SyncDbError> {
        self.put_json("status", status.service, status)
    }

    /// The fabric revision at which the last sync (by any process) left both sides agreeing.
    pub fn settled(&self, service: Id) -> Result<Option<u64>, SyncDbError> {
        self.get_json("settled", service)
    }

    /// Records that both sides agree at `revision`, or (`None`) that they may not.
    pub fn set_settled(&self, service: Id, revision: Option<u64>) -> Result<(), SyncDbError> {
        self.with(|c| put_settled(c, &service.to_string(), revision))
    }

    pub fn save_job(&self, job: &JobRecord) -> Result<(), SyncDbError> {
        let body = serde_json::to_string(job)?;
        self.with(|c| {
            c.execute(
                "INSERT INTO jobs(id, service, started, body) VALUES (?1, ?2, ?3, ?4) ON CONFLICT(id) DO UPDATE SET body = excluded.body",
                params![job.id.to_string(), job.service.to_string(), job.started.to_rfc3339(), body],
            )?;
            Ok(())
        })
    }

    /// Newest first.
    pub fn jobs(&self, limit: usize) -> Result<Vec<JobRecord>, SyncDbError> {
        self.with(|c| {
            let mut st = c.prepare("SELECT id, body FROM jobs ORDER BY started DESC LIMIT ?1")?;
            let rows = st.query_map(params![limit as i64], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?;
            let mut out = Vec::new();
            let mut damaged = Vec::new();
            for r in rows {
                let (id, body) = r?;
                match serde_json::from_str(&body) {
                    Ok(job) => out.push(job),
                    Err(e) => damaged.push((id, body, e)),
                }
            }
            drop(st);
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
        self.with(|c| {
            let mut st = c.prepare("SELECT key, resolution FROM resolutions WHERE service = ?1")?;
            let rows = st.query_map(params![service.to_string()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?;
            let mut out = std::collections::BTreeMap::new();
            for r in rows {
                let (k, v) = r?;
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
        self.with(|c| {
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
        self.with(|c| {
            let tx = c.transaction()?;
            let jobs = tx.execute(
                "DELETE FROM jobs WHERE service = ?1 AND id NOT IN
                    (SELECT id FROM jobs WHERE service = ?1 ORDER BY started DESC LIMIT ?2)",
                params![id, keep.jobs as i64],
            )?;
            // Sequence numbers only grow: while the service's span of them is within the limit
            // there is nothing to prune, found in two index lookups whatever the journal's size.
            let (first, last): (Option<i64>, Option<i64>) = tx.query_row(
                "SELECT MIN(seq), MAX(seq) FROM journal WHERE service = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let journal = match (first, last) {
                (Some(first), Some(last)) if last - first >= keep.journal as i64 => {
                    let cutoff: Option<i64> = tx
                        .query_row(
                            "SELECT seq FROM journal WHERE service = ?1 AND state != 'sent'
                             ORDER BY seq DESC LIMIT 1 OFFSET ?2",
                            params![id, keep.journal as i64],
                            |r| r.get(0),
                        )
                        .optional()?;
                    match cutoff {
                        Some(cutoff) => tx.execute(
                            "DELETE FROM journal WHERE service = ?1 AND state != 'sent' AND seq <= ?2",
                            params![id, cutoff],
                        )?,
                        None => 0,
                    }
                }
                _ => 0,
            };
            tx.commit()?;
            Ok((jobs, journal))
        })
    }

    /// Rows set aside because they could not be read: (source, key, error).
    pub fn set_aside_rows(&self) -> Result<Vec<(String, String, String)>, SyncDbError> {
        self.with(|c| {
            let mut st = c.prepare("SELECT source, key, error FROM set_aside ORDER BY seq")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// Forget everything about a removed service (jobs are kept as history).
    pub fn forget_service(&self, service: Id) -> Result<(), SyncDbError> {
        self.with(|c| {
            let tx = c.transaction()?;
            for table in [
                "base",
                "mirror",
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
            tx.commit()?;
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
    use crate::ipam::model::IpamOp;
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
        }
    }

    fn raw(db: &SyncDb, sql: &str) {
        db.with(|c| {
            c.execute_batch(sql)?;
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
        db.save_base_and_mirror(service, &BaseState::default(), &IpamSnapshot::default())
            .unwrap();
        db.record_sent(service, Uuid::new_v4(), &[IpamOp::DeleteRange("r1".into())])
            .unwrap();
        raw(
            &db,
            &format!(
                "INSERT INTO jobs(id, service, started, body) VALUES ('x', '{service}', '2026-01-01T11:00:00Z', '{{not json');
                 UPDATE mirror SET body = '[1,2' WHERE service = '{service}';
                 INSERT INTO journal(service, job, op, state, updated) VALUES ('{service}', 'j', 'garbage', 'sent', 'now');"
            ),
        );
        // Reopening (as the next start does) works, and every read skips what it cannot read.
        drop(db);
        let db = SyncDb::open(&dir.path().join("sync.db")).unwrap();
        assert_eq!(db.jobs(10).unwrap().len(), 2);
        assert_eq!(db.mirror(service).unwrap(), None);
        assert_eq!(db.unconfirmed(service).unwrap().len(), 1);
        let aside: Vec<String> = db
            .set_aside_rows()
            .unwrap()
            .into_iter()
            .map(|(source, _, _)| source)
            .collect();
        assert_eq!(aside, ["jobs", "mirror", "journal"]);
        // Set aside once: the next reads find nothing more to move.
        assert_eq!(db.jobs(10).unwrap().len(), 2);
        assert_eq!(db.unconfirmed(service).unwrap().len(), 1);
        assert_eq!(db.mirror(service).unwrap(), None);
        assert_eq!(db.set_aside_rows().unwrap().len(), 3);
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
