//! The IPAM server's SQLite store: address spaces, subnets, ranges, the change feed, tokens and
//! the audit trail of writes.
//!
//! Objects are stored as their JSON form plus the columns the relations and scope filters need.
//! Every mutation runs in one transaction and appends `(seq, kind, id, op)` rows to `changes`.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

mod assignments;
mod audit;
mod checks;

pub use assignments::ASSIGNMENT_KIND;
pub use audit::{AuditEntry, AuditOutcome, Caller, DEFAULT_AUDIT_RETENTION};
pub use checks::check_id;
use checks::{validate_range, validate_space, validate_subnet};

use super::auth::Role;
use super::error::ApiError;
use crate::ipam::model::{
    AddressSpace, AddressSpaceKind, IpRange, IpamId, IpamKind, IpamOp, IpamSubnet, RangeUsage,
};

/// How many change rows are kept; older cursors get 410 Gone and a full snapshot.
pub const DEFAULT_CHANGE_RETENTION: i64 = 200_000;
/// Most operations one batch may carry.
pub const MAX_BATCH_OPS: usize = 10_000;

const MAX_ID: usize = 128;
const MAX_NAME: usize = 256;
const MAX_TEXT: usize = 1024;
const MAX_ADDRESSES: usize = 4096;
const MAX_LIST: usize = 64;
const MAX_CUSTOM_FIELDS: usize = 64;

/// Schema steps; `PRAGMA user_version` is the number of steps applied. Append only, never edit.
/// The first step is the schema from before versioning, so it tolerates existing tables.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS spaces (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, provider_space TEXT,
    vmm_logical_network TEXT, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS spaces_provider_space ON spaces(provider_space);
CREATE INDEX IF NOT EXISTS spaces_logical_network ON spaces(vmm_logical_network);
CREATE TABLE IF NOT EXISTS subnets (
    id TEXT PRIMARY KEY, address_space TEXT NOT NULL, network TEXT NOT NULL, body TEXT NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS subnets_space_network ON subnets(address_space, network);
CREATE TABLE IF NOT EXISTS ranges (
    id TEXT PRIMARY KEY, subnet TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS ranges_subnet ON ranges(subnet);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, id TEXT NOT NULL, op TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    hash TEXT PRIMARY KEY, role TEXT NOT NULL, created TEXT NOT NULL);
",
    "
CREATE TABLE audit (
    seq INTEGER PRIMARY KEY, at TEXT NOT NULL, token_id TEXT NOT NULL, role TEXT NOT NULL,
    method TEXT NOT NULL, action TEXT NOT NULL, kind TEXT NOT NULL, object_id TEXT NOT NULL,
    object_name TEXT NOT NULL, summary TEXT NOT NULL, outcome TEXT NOT NULL, detail TEXT);
",
    "
CREATE TABLE range_usage (
    range_id TEXT PRIMARY KEY, body TEXT NOT NULL, updated TEXT NOT NULL);
",
    "
CREATE TABLE range_assignments (
    range_id TEXT NOT NULL, address TEXT NOT NULL, holder TEXT NOT NULL, created TEXT NOT NULL,
    PRIMARY KEY (range_id, address));
",
];

/// Hex digits of a token's hash that name it in `token list`, `revoke` and `rotate`.
pub const TOKEN_ID_LEN: usize = 12;

/// A token's public id: the start of its hash.
pub fn token_id(hash: &str) -> String {
    hash.chars().take(TOKEN_ID_LEN).collect()
}

/// Provider spaces linked to one of the logical networks in the JSON array `?1`, and the
/// customer spaces associated with them. `?1 IS NULL` means every space.
const SCOPED_SPACES: &str = "SELECT id FROM spaces WHERE \
    (kind = 'provider' AND vmm_logical_network IN (SELECT value FROM json_each(?1))) \
    OR (kind = 'customer' AND provider_space IN (SELECT id FROM spaces WHERE kind = 'provider' \
        AND vmm_logical_network IN (SELECT value FROM json_each(?1))))";

fn kind_name(kind: IpamKind) -> &'static str {
    match kind {
        IpamKind::AddressSpace => "address_space",
        IpamKind::Subnet => "subnet",
        IpamKind::Range => "range",
    }
}

fn kind_from_name(name: &str) -> Option<IpamKind> {
    match name {
        "address_space" => Some(IpamKind::AddressSpace),
        "subnet" => Some(IpamKind::Subnet),
        "range" => Some(IpamKind::Range),
        _ => None,
    }
}

fn table(kind: IpamKind) -> &'static str {
    match kind {
        IpamKind::AddressSpace => "spaces",
        IpamKind::Subnet => "subnets",
        IpamKind::Range => "ranges",
    }
}

fn space_kind_name(kind: AddressSpaceKind) -> &'static str {
    match kind {
        AddressSpaceKind::Provider => "provider",
        AddressSpaceKind::Customer => "customer",
    }
}

/// The outcome of one operation of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum OpResult {
    Applied {
        id: IpamId,
    },
    Failed {
        code: u16,
        error: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        field: Option<String>,
    },
    NotApplied,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchOutcome {
    pub applied: bool,
    pub results: Vec<OpResult>,
    pub cursor: i64,
    /// The failing operation's error, for callers that only look at the top level.
    #[serde(skip)]
    pub error: Option<(usize, ApiError)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SnapshotPage {
    pub database_id: String,
    pub cursor: i64,
    pub spaces: Vec<AddressSpace>,
    pub subnets: Vec<IpamSubnet>,
    pub ranges: Vec<IpRange>,
    /// Page token for the next page; `None` on the last page.
    pub next: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeletedObject {
    pub kind: IpamKind,
    pub id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ChangesPage {
    pub database_id: String,
    pub cursor: i64,
    pub more: bool,
    pub spaces: Vec<AddressSpace>,
    pub subnets: Vec<IpamSubnet>,
    pub ranges: Vec<IpRange>,
    pub deleted: Vec<DeletedObject>,
}

/// Which logical networks a read is limited to (`None`: everything).
pub type Scope = Option<BTreeSet<String>>;

fn scope_param(scope: &Scope) -> Option<String> {
    scope
        .as_ref()
        .map(|s| serde_json::to_string(s).unwrap_or_else(|_| "[]".to_string()))
}

pub struct Database {
    conn: Connection,
    database_id: String,
    retention: i64,
    audit_retention: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(
        "the IPAM database has schema version {found}, newer than the {supported} this server knows; run a newer fabric-console on this data directory"
    )]
    NewerSchema { found: i64, supported: i64 },
}

/// Brings the schema up to date, one step per transaction.
fn migrate(conn: &mut Connection) -> Result<(), OpenError> {
    let supported = MIGRATIONS.len() as i64;
    loop {
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version == supported {
            return Ok(());
        }
        // Another process may be migrating too: look again under the write lock.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > supported {
            return Err(OpenError::NewerSchema {
                found: version,
                supported,
            });
        }
        if version < supported {
            let step = usize::try_from(version).unwrap_or(0);
            tx.execute_batch(MIGRATIONS[step])?;
            tx.pragma_update(None, "user_version", version + 1)?;
        }
        tx.commit()?;
    }
}

impl Database {
    /// Opens (creating if needed) `DIR/ipam.sqlite3`, or an in-memory database when `dir` is None.
    pub fn open(dir: Option<&Path>) -> Result<Self, OpenError> {
        let mut conn = match dir {
            Some(d) => {
                let conn = Connection::open(d.join("ipam.sqlite3"))?;
                conn.busy_timeout(std::time::Duration::from_secs(5))?;
                conn.pragma_update(None, "journal_mode", "WAL")?;
                // An answered write must survive a power loss: the console takes it as done.
                conn.pragma_update(None, "synchronous", "FULL")?;
                conn
            }
            None => Connection::open_in_memory()?,
        };
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Every per-object statement is prepared once and reused (parsing SQL was the largest
        // cost of a bulk write).
        conn.set_prepared_statement_cache_capacity(128);
        migrate(&mut conn)?;
        let existing: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'database_id'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        let database_id = match existing {
            Some(id) => id,
            None => {
                let id = uuid::Uuid::new_v4().simple().to_string();
                conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('database_id', ?1), \
                     ('last_seq', '0'), ('trimmed_through', '0')",
                    params![id],
                )?;
                conn.query_row(
                    "SELECT value FROM meta WHERE key = 'database_id'",
                    [],
                    |r| r.get(0),
                )?
            }
        };
        Ok(Database {
            conn,
            database_id,
            retention: DEFAULT_CHANGE_RETENTION,
            audit_retention: DEFAULT_AUDIT_RETENTION,
        })
    }

    /// Identifies this database in cursors, so a cursor from another server (or a reset one) is refused.
    pub fn database_id(&self) -> &str {
        &self.database_id
    }

    pub fn set_change_retention(&mut self, rows: i64) {
        self.retention = rows.max(1);
    }

    pub fn set_audit_retention(&mut self, rows: i64) {
        self.audit_retention = rows.max(1);
    }

    /// The newest `limit` audit rows, newest first; only those at or after `since` when given.
    pub fn audit(
        &self,
        limit: i64,
        since: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Vec<AuditEntry>, ApiError> {
        audit::read(&self.conn, limit, since)
    }

    fn meta_i64(conn: &Connection, key: &str) -> Result<i64, ApiError> {
        let v: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    /// How many address spaces, subnets and ranges are held.
    pub fn object_counts(&self) -> Result<Vec<(&'static str, i64)>, ApiError> {
        let mut out = Vec::new();
        for (kind, table) in [
            ("address_space", "spaces"),
            ("subnet", "subnets"),
            ("range", "ranges"),
        ] {
            let n: i64 =
                self.conn
                    .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?;
            out.push((kind, n));
        }
        Ok(out)
    }

    pub fn last_seq(&self) -> Result<i64, ApiError> {
        Self::meta_i64(&self.conn, "last_seq")
    }

    // ---- tokens -------------------------------------------------------------------------

    /// Stores the SHA-256 of a new token with its role.
    pub fn store_token_hash(&mut self, hash: &str, role: Role) -> Result<(), ApiError> {
        self.conn.execute(
            "INSERT INTO tokens (hash, role, created) VALUES (?1, ?2, ?3)",
            params![hash, role.as_str(), chrono::Utc::now().to_rfc3339()],
        )?;
        Ok(())
    }

    pub fn role_for_token_hash(&self, hash: &str) -> Result<Option<Role>, ApiError> {
        let role: Option<String> = self
            .conn
            .query_row(
                "SELECT role FROM tokens WHERE hash = ?1",
                params![hash],
                |r| r.get(0),
            )
            .optional()?;
        Ok(role.and_then(|r| Role::parse(&r)))
    }

    /// Every token as (id, role, created): the id is the first 12 hex digits of the token's
    /// hash, enough to name it and useless to an attacker.
    pub fn list_tokens(&self) -> Result<Vec<(String, Role, String)>, ApiError> {
        let mut st = self
            .conn
            .prepare("SELECT hash, role, created FROM tokens ORDER BY created, hash")?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (hash, role, created) = row?;
            if let Some(role) = Role::parse(&role) {
                out.push((token_id(&hash), role, created));
            }
        }
        Ok(out)
    }

    /// Deletes the token whose id is `id` (see `list_tokens`); its role, or `None` when no
    /// token has that id.
    pub fn revoke_token(&mut self, id: &str) -> Result<Option<Role>, ApiError> {
        let id = id.trim().to_ascii_lowercase();
        if id.len() != TOKEN_ID_LEN || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ApiError::bad_request(
                Some("id"),
                format!("a token id is the {TOKEN_ID_LEN} hex digits `token list` shows"),
            ));
        }
        let tx = self.conn.transaction()?;
        let found: Option<(String, String)> = tx
            .query_row(
                "SELECT hash, role FROM tokens WHERE substr(hash, 1, ?1) = ?2",
                params![TOKEN_ID_LEN as i64, id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((hash, role)) = found else {
            return Ok(None);
        };
        tx.execute("DELETE FROM tokens WHERE hash = ?1", params![hash])?;
        tx.commit()?;
        Ok(Role::parse(&role))
    }

    /// SQLite's `data_version`: changes when another connection (another process: the `token`
    /// command) commits to this database.
    pub fn data_version(&self) -> Result<i64, ApiError> {
        Ok(self
            .conn
            .pragma_query_value(None, "data_version", |r| r.get(0))?)
    }

    pub fn token_count(&self) -> Result<i64, ApiError> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM tokens", [], |r| r.get(0))?)
    }

    // ---- reads --------------------------------------------------------------------------

    pub fn get_space(&self, id: &str) -> Result<Option<AddressSpace>, ApiError> {
        get_body(&self.conn, IpamKind::AddressSpace, id)
    }
    pub fn get_subnet(&self, id: &str) -> Result<Option<IpamSubnet>, ApiError> {
        get_body(&self.conn, IpamKind::Subnet, id)
    }
    pub fn get_range(&self, id: &str) -> Result<Option<IpRange>, ApiError> {
        get_body(&self.conn, IpamKind::Range, id)
    }

    /// The usage the console last reported for a range, and when; `None` when it never did.
    pub fn get_usage(&self, range: &str) -> Result<Option<(RangeUsage, String)>, ApiError> {
        let row: Option<(String, String)> = self
            .conn
            .query_row(
                "SELECT body, updated FROM range_usage WHERE range_id = ?1",
                params![range],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        row.map(|(body, updated)| {
            serde_json::from_str(&body)
                .map(|u| (u, updated))
                .map_err(|e| {
                    ApiError::internal(format!("stored usage of range {range} is damaged: {e}"))
                })
        })
        .transpose()
    }

    /// Every range's reported usage, by range id (reports of ranges deleted since are left out).
    pub fn all_usage(&self) -> Result<Vec<(String, RangeUsage)>, ApiError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT u.range_id, u.body FROM range_usage u JOIN ranges r ON r.id = u.range_id",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, body) = row?;
            let usage = serde_json::from_str(&body).map_err(|e| {
                ApiError::internal(format!("stored usage of range {id} is damaged: {e}"))
            })?;
            out.push((id, usage));
        }
        Ok(out)
    }

    /// Records the usage of a range (replacing what was there). The range must exist, the
    /// counts must add up, and every address must lie in the range, once.
    pub fn put_usage(
        &mut self,
        range_id: &str,
        usage: &RangeUsage,
        caller: &Caller,
    ) -> Result<String, ApiError> {
        self.put_usages(&[(range_id.to_string(), usage.clone())], caller)
            .map_err(|mut e| {
                // One range: the error needs no "Range …:" prefix.
                if let Some(rest) = e.error.strip_prefix(&format!("Range {range_id}: ")) {
                    e.error = rest.to_string();
                }
                e
            })
    }

    /// Records many ranges' usage in one transaction: all of them, or none when one is wrong
    /// (the error names its range).
    pub fn put_usages(
        &mut self,
        reports: &[(String, RangeUsage)],
        caller: &Caller,
    ) -> Result<String, ApiError> {
        let updated = rfc3339(chrono::Utc::now());
        let tx = self.conn.transaction()?;
        for (range_id, usage) in reports {
            let range = write_usage(&tx, range_id, usage, &updated).map_err(|mut e| {
                e.error = format!("Range {range_id}: {}", e.error);
                e
            })?;
            let what = audit::range_write(
                &range,
                format!(
                    "usage reported ({} granted, {} of {} VIPs, {} free of {})",
                    usage.granted, usage.vips_granted, usage.vips, usage.free, usage.total
                ),
            );
            audit::record(&tx, caller, &what, AuditOutcome::Applied, None)?;
        }
        audit::prune(&tx, self.audit_retention)?;
        tx.commit()?;
        Ok(updated)
    }

    /// A page of one kind, ordered by id; `parent` filters subnets by address space and ranges by subnet.
    pub fn list<T: DeserializeOwned>(
        &self,
        kind: IpamKind,
        parent: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<Page<T>, ApiError> {
        let parent_col = match kind {
            IpamKind::AddressSpace => "provider_space",
            IpamKind::Subnet => "address_space",
            IpamKind::Range => "subnet",
        };
        let t = table(kind);
        let filter = format!("(?1 IS NULL OR {parent_col} = ?1)");
        let total: i64 = self.conn.query_row(
            &format!("SELECT COUNT(*) FROM {t} WHERE {filter}"),
            params![parent],
            |r| r.get(0),
        )?;
        let mut stmt = self.conn.prepare(&format!(
            "SELECT body FROM {t} WHERE {filter} ORDER BY id LIMIT ?2 OFFSET ?3"
        ))?;
        let items = stmt
            .query_map(params![parent, limit, offset], |r| r.get::<_, String>(0))?
            .map(|b| parse_body(&b?))
            .collect::<Result<Vec<T>, ApiError>>()?;
        Ok(Page {
            items,
            total,
            limit,
            offset,
        })
    }

    /// One page of a snapshot: spaces, then subnets, then ranges, each in id order, continuing
    /// after `page` ("kind:id"). Keyset paging never skips an unchanged object even while others
    /// are deleted; the change feed from the first page's cursor covers the rest.
    pub fn snapshot_page(
        &self,
        scope: &Scope,
        page: Option<&str>,
        limit: i64,
    ) -> Result<SnapshotPage, ApiError> {
        let (mut kind, mut after) = match page {
            None | Some("") => (IpamKind::AddressSpace, String::new()),
            Some(token) => {
                let (k, id) = token.split_once(':').ok_or_else(|| {
                    ApiError::bad_request(Some("page"), "page token must look like kind:id")
                })?;
                let k = kind_from_name(k).ok_or_else(|| {
                    ApiError::bad_request(Some("page"), "page token names an unknown kind")
                })?;
                (k, id.to_string())
            }
        };
        let tx = self.conn.unchecked_transaction()?;
        let scope_json = scope_param(scope);
        let mut out = SnapshotPage {
            database_id: self.database_id.clone(),
            cursor: Self::meta_i64(&tx, "last_seq")?,
            ..Default::default()
        };
        let mut remaining = limit;
        loop {
            let cond = scope_condition(kind);
            let sql = format!(
                "SELECT id, body FROM {} WHERE id > ?2 AND {cond} ORDER BY id LIMIT ?3",
                table(kind)
            );
            let mut stmt = tx.prepare(&sql)?;
            let rows = stmt
                .query_map(params![scope_json, after, remaining], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let n = rows.len() as i64;
            let last_id = rows.last().map(|(id, _)| id.clone());
            for (_, body) in rows {
                match kind {
                    IpamKind::AddressSpace => out.spaces.push(parse_body(&body)?),
                    IpamKind::Subnet => out.subnets.push(parse_body(&body)?),
                    IpamKind::Range => out.ranges.push(parse_body(&body)?),
                }
            }
            remaining -= n;
            if remaining <= 0 {
                if let Some(id) = last_id {
                    out.next = Some(format!("{}:{id}", kind_name(kind)));
                }
                break;
            }
            match kind {
                IpamKind::AddressSpace => kind = IpamKind::Subnet,
                IpamKind::Subnet => kind = IpamKind::Range,
                IpamKind::Range => break,
            }
            after.clear();
        }
        tx.commit()?;
        Ok(out)
    }

    /// Objects changed after `since` (their current state, or a deletion), at most `limit`
    /// change rows. Objects that left the scope are reported as deleted for this reader.
    pub fn changes(&self, scope: &Scope, since: i64, limit: i64) -> Result<ChangesPage, ApiError> {
        let tx = self.conn.unchecked_transaction()?;
        let last = Self::meta_i64(&tx, "last_seq")?;
        let trimmed = Self::meta_i64(&tx, "trimmed_through")?;
        if since < trimmed || since > last {
            return Err(ApiError::new(
                axum::http::StatusCode::GONE,
                format!(
                    "cursor {since} is no longer served (changes are kept from {trimmed} to {last}); read a full snapshot"
                ),
                Some("since"),
            ));
        }
        let mut stmt =
            tx.prepare("SELECT seq, kind, id FROM changes WHERE seq > ?1 ORDER BY seq LIMIT ?2")?;
        let mut rows = stmt
            .query_map(params![since, limit + 1], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        drop(stmt);
        let more = rows.len() as i64 > limit;
        rows.truncate(limit.max(0) as usize);
        let cursor = rows.last().map(|r| r.0).unwrap_or(last);
        let scope_json = scope_param(scope);
        let mut seen = HashSet::new();
        let mut out = ChangesPage {
            database_id: self.database_id.clone(),
            cursor,
            more,
            ..Default::default()
        };
        for (_, kind, id) in rows {
            let Some(kind) = kind_from_name(&kind) else {
                continue;
            };
            if !seen.insert((kind, id.clone())) {
                continue;
            }
            let sql = format!(
                "SELECT body FROM {} WHERE id = ?2 AND {}",
                table(kind),
                scope_condition(kind)
            );
            let body: Option<String> = tx
                .query_row(&sql, params![scope_json, id], |r| r.get(0))
                .optional()?;
            match body {
                Some(b) => match kind {
                    IpamKind::AddressSpace => out.spaces.push(parse_body(&b)?),
                    IpamKind::Subnet => out.subnets.push(parse_body(&b)?),
                    IpamKind::Range => out.ranges.push(parse_body(&b)?),
                },
                None => out.deleted.push(DeletedObject { kind, id }),
            }
        }
        tx.commit()?;
        Ok(out)
    }

    // ---- writes -------------------------------------------------------------------------

    /// Applies the operations in order, all or none, in one transaction, with an audit row per
    /// operation in the same transaction. When one is refused, nothing is applied and only the
    /// refused operation is audited (as refused, after the rollback).
    pub fn apply_batch(
        &mut self,
        ops: &[IpamOp],
        caller: &Caller,
    ) -> Result<BatchOutcome, ApiError> {
        let retention = self.retention;
        let audit_retention = self.audit_retention;
        let tx = self.conn.transaction()?;
        let start_seq = Self::meta_i64(&tx, "last_seq")?;
        let mut seq = start_seq;
        let mut ids = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            let what = audit::describe(&tx, op)?;
            match apply_op(&tx, &mut seq, op) {
                Ok(id) => {
                    audit::record(&tx, caller, &what, AuditOutcome::Applied, None)?;
                    ids.push(id)
                }
                Err(e) => {
                    drop(tx);
                    self.audit_refusal(caller, &what, i, ops.len(), &e);
                    let results = (0..ops.len())
                        .map(|j| {
                            if j == i {
                                OpResult::Failed {
                                    code: e.status,
                                    error: e.error.clone(),
                                    field: e.field.clone(),
                                }
                            } else {
                                OpResult::NotApplied
                            }
                        })
                        .collect();
                    return Ok(BatchOutcome {
                        applied: false,
                        results,
                        cursor: start_seq,
                        error: Some((i, e)),
                    });
                }
            }
        }
        audit::prune(&tx, audit_retention)?;
        if seq != start_seq {
            tx.execute(
                "UPDATE meta SET value = ?1 WHERE key = 'last_seq'",
                params![seq.to_string()],
            )?;
            let trim_to = seq - retention;
            if trim_to > Self::meta_i64(&tx, "trimmed_through")? {
                tx.execute("DELETE FROM changes WHERE seq <= ?1", params![trim_to])?;
                tx.execute(
                    "UPDATE meta SET value = ?1 WHERE key = 'trimmed_through'",
                    params![trim_to.to_string()],
                )?;
            }
        }
        tx.commit()?;
        Ok(BatchOutcome {
            applied: true,
            results: ids.into_iter().map(|id| OpResult::Applied { id }).collect(),
            cursor: seq,
            error: None,
        })
    }

    /// Records operation `index` of a batch of `count` as refused, after the rollback. The
    /// refusal is worth keeping, but never worth failing the answer for.
    fn audit_refusal(
        &self,
        caller: &Caller,
        what: &audit::Described,
        index: usize,
        count: usize,
        e: &ApiError,
    ) {
        let detail = if count > 1 {
            format!(
                "{} (operation {index} of a batch of {count}; none was applied)",
                e.error
            )
        } else {
            e.error.clone()
        };
        let recorded = audit::record(
            &self.conn,
            caller,
            what,
            AuditOutcome::Refused,
            Some(&detail),
        )
        .and_then(|()| audit::prune(&self.conn, self.audit_retention));
        if let Err(a) = recorded {
            tracing::warn!("cannot audit a refused write: {}", a.error);
        }
    }

    /// One operation on its own; the error of a failed operation is returned as is.
    pub fn apply_one(&mut self, op: IpamOp, caller: &Caller) -> Result<(IpamId, i64), ApiError> {
        let outcome = self.apply_batch(std::slice::from_ref(&op), caller)?;
        if let Some((_, e)) = outcome.error {
            return Err(e);
        }
        let id = match outcome.results.into_iter().next() {
            Some(OpResult::Applied { id }) => id,
            _ => op.target_id().clone(),
        };
        Ok((id, outcome.cursor))
    }
}

fn scope_condition(kind: IpamKind) -> String {
    match kind {
        IpamKind::AddressSpace => format!("(?1 IS NULL OR id IN ({SCOPED_SPACES}))"),
        IpamKind::Subnet => format!("(?1 IS NULL OR address_space IN ({SCOPED_SPACES}))"),
        IpamKind::Range => format!(
            "(?1 IS NULL OR subnet IN (SELECT id FROM subnets WHERE address_space IN ({SCOPED_SPACES})))"
        ),
    }
}

/// RFC 3339, UTC, milliseconds: one text form for every time the server answers or stores, so
/// that stored text order is time order.
pub fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn parse_body<T: DeserializeOwned>(body: &str) -> Result<T, ApiError> {
    serde_json::from_str(body)
        .map_err(|e| ApiError::internal(format!("stored object cannot be read: {e}")))
}

fn to_body<T: Serialize>(value: &T) -> Result<String, ApiError> {
    serde_json::to_string(value)
        .map_err(|e| ApiError::internal(format!("object cannot be stored: {e}")))
}

/// Checks a range's usage report and stores it; the range it is for.
fn write_usage(
    conn: &Connection,
    range_id: &str,
    usage: &RangeUsage,
    updated: &str,
) -> Result<IpRange, ApiError> {
    let range: IpRange = get_body(conn, IpamKind::Range, range_id)?.ok_or_else(|| {
        ApiError::not_found(
            "id",
            format!("No range has the id {range_id}. Read the range list and use one of its ids."),
        )
    })?;
    let invalid =
        |field: &str, message: String| ApiError::invalid(field, format!("{field}: {message}"));
    let used = u128::from(usage.granted)
        + u128::from(usage.reserved)
        + u128::from(usage.vips)
        + u128::from(usage.held);
    if used + usage.free != usage.total {
        return Err(invalid(
            "free",
            format!(
                "granted {} + reserved {} + VIPs {} + held on the IPAM side {} + free {} is not the total {}.",
                usage.granted, usage.reserved, usage.vips, usage.held, usage.free, usage.total
            ),
        ));
    }
    if usage.vips_granted > usage.vips {
        return Err(invalid("vips_granted", "is more than the VIPs.".into()));
    }
    if usage.addresses.len() as u64 != usage.granted + usage.vips_granted {
        return Err(invalid(
            "addresses",
            format!(
                "lists {} addresses, but {} are granted.",
                usage.addresses.len(),
                usage.granted + usage.vips_granted
            ),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for a in &usage.addresses {
        let inside = a.address.is_ipv4() == range.start.is_ipv4()
            && a.address >= range.start
            && a.address <= range.end;
        if !inside {
            return Err(invalid(
                "addresses",
                format!(
                    "{} is outside the range {} – {}.",
                    a.address, range.start, range.end
                ),
            ));
        }
        if !seen.insert(a.address) {
            return Err(invalid(
                "addresses",
                format!("{} is listed twice.", a.address),
            ));
        }
    }
    let body = serde_json::to_string(usage)
        .map_err(|e| ApiError::internal(format!("usage cannot be stored: {e}")))?;
    conn.execute(
        "INSERT INTO range_usage (range_id, body, updated) VALUES (?1, ?2, ?3)
             ON CONFLICT(range_id) DO UPDATE SET body = excluded.body, updated = excluded.updated",
        params![range_id, body, updated],
    )?;
    Ok(range)
}

fn get_body<T: DeserializeOwned>(
    conn: &Connection,
    kind: IpamKind,
    id: &str,
) -> Result<Option<T>, ApiError> {
    let body: Option<String> = conn
        .query_row(
            &format!("SELECT body FROM {} WHERE id = ?1", table(kind)),
            params![id],
            |r| r.get(0),
        )
        .optional()?;
    body.map(|b| parse_body(&b)).transpose()
}

fn exists(tx: &Transaction, kind: IpamKind, id: &str) -> Result<bool, ApiError> {
    Ok(tx
        .query_row(
            &format!("SELECT 1 FROM {} WHERE id = ?1", table(kind)),
            params![id],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// The stored object an update or delete names, or a 404 naming it.
fn existing<T: DeserializeOwned>(
    tx: &Transaction,
    kind: IpamKind,
    id: &IpamId,
) -> Result<T, ApiError> {
    get_body(tx, kind, id.as_str())?.ok_or_else(|| missing(kind, id))
}

fn ensure_exists(tx: &Transaction, kind: IpamKind, id: &IpamId) -> Result<(), ApiError> {
    if exists(tx, kind, id.as_str())? {
        Ok(())
    } else {
        Err(missing(kind, id))
    }
}

fn missing(kind: IpamKind, id: &IpamId) -> ApiError {
    ApiError::not_found("id", format!("{} {id} does not exist", kind.label()))
}

/// A create's id must be well formed and not taken.
fn ensure_new(tx: &Transaction, kind: IpamKind, id: &IpamId) -> Result<(), ApiError> {
    check_id(id.as_str())?;
    if exists(tx, kind, id.as_str())? {
        return Err(ApiError::conflict(
            "id",
            format!("{} {id} already exists", kind.label()),
        ));
    }
    Ok(())
}

fn record(
    tx: &Transaction,
    seq: &mut i64,
    kind: IpamKind,
    id: &str,
    op: &str,
) -> Result<(), ApiError> {
    *seq += 1;
    tx.prepare_cached("INSERT INTO changes (seq, kind, id, op) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![*seq, kind_name(kind), id, op])?;
    Ok(())
}

/// Marks the subnets and ranges below a space (and customer spaces tied to it) as changed,
/// because a scoped reader may now see them differently.
fn touch_below_space(tx: &Transaction, seq: &mut i64, space: &str) -> Result<(), ApiError> {
    let mut spaces = vec![space.to_string()];
    let customers = strings_where(
        tx,
        "SELECT id FROM spaces WHERE provider_space = ?1 ORDER BY id",
        space,
    )?;
    for c in customers {
        record(tx, seq, IpamKind::AddressSpace, &c, "touch")?;
        spaces.push(c);
    }
    for s in spaces {
        let subnets = strings_where(
            tx,
            "SELECT id FROM subnets WHERE address_space = ?1 ORDER BY id",
            &s,
        )?;
        for sub in subnets {
            record(tx, seq, IpamKind::Subnet, &sub, "touch")?;
            touch_below_subnet(tx, seq, &sub)?;
        }
    }
    Ok(())
}

fn touch_below_subnet(tx: &Transaction, seq: &mut i64, subnet: &str) -> Result<(), ApiError> {
    let ranges = strings_where(
        tx,
        "SELECT id FROM ranges WHERE subnet = ?1 ORDER BY id",
        subnet,
    )?;
    for r in ranges {
        record(tx, seq, IpamKind::Range, &r, "touch")?;
    }
    Ok(())
}

fn apply_op(tx: &Transaction, seq: &mut i64, op: &IpamOp) -> Result<IpamId, ApiError> {
    match op {
        IpamOp::CreateSpace(s) => create(tx, seq, s),
        IpamOp::UpdateSpace(s) => {
            let old: AddressSpace = existing(tx, IpamKind::AddressSpace, &s.id)?;
            s.validate(tx)?;
            if s.kind == AddressSpaceKind::Customer
                && old.kind == AddressSpaceKind::Provider
                && let Some(c) = first_id(
                    tx,
                    "SELECT id FROM spaces WHERE provider_space = ?1",
                    s.id.as_str(),
                )?
            {
                return Err(ApiError::conflict(
                    "kind",
                    format!(
                        "IP address space {} is the provider space of customer space {c}; it must stay a provider space",
                        s.id
                    ),
                ));
            }
            let id = update(tx, seq, s)?;
            if old.kind != s.kind
                || old.provider_space != s.provider_space
                || old.vmm_logical_network != s.vmm_logical_network
            {
                touch_below_space(tx, seq, s.id.as_str())?;
            }
            Ok(id)
        }
        IpamOp::DeleteSpace(id) => {
            let space: AddressSpace = existing(tx, IpamKind::AddressSpace, id)?;
            let (subnets, example) = dependents(tx, "subnets", "address_space", id.as_str())?;
            if subnets > 0 {
                return Err(ApiError::conflict(
                    "id",
                    format!(
                        "IP address space {id} ({}) still has {subnets} IP address subnet(s), e.g. {example}; delete them first",
                        space.name
                    ),
                ));
            }
            if let Some(c) = first_id(
                tx,
                "SELECT id FROM spaces WHERE provider_space = ?1 ORDER BY id",
                id.as_str(),
            )? {
                return Err(ApiError::conflict(
                    "id",
                    format!(
                        "IP address space {id} ({}) is the provider space of customer space {c}; delete or move that first",
                        space.name
                    ),
                ));
            }
            delete_row(tx, seq, IpamKind::AddressSpace, id)
        }
        IpamOp::CreateSubnet(s) => create(tx, seq, s),
        IpamOp::UpdateSubnet(s) => {
            let old: IpamSubnet = existing(tx, IpamKind::Subnet, &s.id)?;
            s.validate(tx)?;
            if old.network != s.network {
                for r in ranges_of(tx, s.id.as_str())? {
                    if !s.network.contains(&r.start) || !s.network.contains(&r.end) {
                        return Err(ApiError::conflict(
                            "network",
                            format!(
                                "IP address range {} ({}-{}) would lie outside {}; change or delete the range first",
                                r.id, r.start, r.end, s.network
                            ),
                        ));
                    }
                }
            }
            let id = update(tx, seq, s)?;
            if old.address_space != s.address_space {
                touch_below_subnet(tx, seq, s.id.as_str())?;
            }
            Ok(id)
        }
        IpamOp::DeleteSubnet(id) => {
            ensure_exists(tx, IpamKind::Subnet, id)?;
            let (ranges, example) = dependents(tx, "ranges", "subnet", id.as_str())?;
            if ranges > 0 {
                return Err(ApiError::conflict(
                    "id",
                    format!(
                        "IP address subnet {id} still has {ranges} IP address range(s), e.g. {example}; delete them first"
                    ),
                ));
            }
            delete_row(tx, seq, IpamKind::Subnet, id)
        }
        IpamOp::CreateRange(r) => create(tx, seq, r),
        IpamOp::UpdateRange(r) => {
            ensure_exists(tx, IpamKind::Range, &r.id)?;
            r.validate(tx)?;
            update(tx, seq, r)
        }
        IpamOp::DeleteRange(id) => {
            ensure_exists(tx, IpamKind::Range, id)?;
            delete_row(tx, seq, IpamKind::Range, id)
        }
    }
}

/// How many rows of `table` still point at `id` through `column`, and the first of them by id.
fn dependents(
    tx: &Transaction,
    table: &str,
    column: &str,
    id: &str,
) -> Result<(i64, String), ApiError> {
    let count: i64 = tx
        .prepare_cached(&format!("SELECT COUNT(*) FROM {table} WHERE {column} = ?1"))?
        .query_row(params![id], |r| r.get(0))?;
    if count == 0 {
        return Ok((0, String::new()));
    }
    let example = first_id(
        tx,
        &format!("SELECT id FROM {table} WHERE {column} = ?1 ORDER BY id"),
        id,
    )?
    .unwrap_or_default();
    Ok((count, example))
}

fn first_id(tx: &Transaction, sql: &str, arg: &str) -> Result<Option<String>, ApiError> {
    Ok(tx
        .prepare_cached(sql)?
        .query_row(params![arg], |r| r.get(0))
        .optional()?)
}

fn ranges_of(tx: &Transaction, subnet: &str) -> Result<Vec<IpRange>, ApiError> {
    let bodies = strings_where(tx, "SELECT body FROM ranges WHERE subnet = ?1", subnet)?;
    bodies.iter().map(|b| parse_body(b)).collect()
}

/// The first column of every row `sql` selects with `arg` as ?1.
fn strings_where(tx: &Transaction, sql: &str, arg: &str) -> Result<Vec<String>, ApiError> {
    let mut stmt = tx.prepare_cached(sql)?;
    let rows = stmt
        .query_map(params![arg], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// An object kind's row: how it is checked and written.
trait StoredRow: Serialize {
    const KIND: IpamKind;
    /// The row's insert and update, which take the same parameters.
    const INSERT: &'static str;
    const UPDATE: &'static str;
    fn id(&self) -> &IpamId;
    fn validate(&self, tx: &Transaction) -> Result<(), ApiError>;
    /// Runs the row's insert or update with the row's columns.
    fn execute(&self, tx: &Transaction, sql: &str) -> Result<(), ApiError>;
}

/// Implements [`StoredRow`] for `$ty`: its kind, validation, insert and update, and the row's
/// columns (`$o` is the object) in the order both statements take them.
macro_rules! stored_row {
    (
        $ty:ty, $kind:ident, $validate:ident,
        insert: $insert:literal,
        update: $update:literal,
        columns($o:ident) $columns:expr
    ) => {
        impl StoredRow for $ty {
            const KIND: IpamKind = IpamKind::$kind;
            const INSERT: &'static str = $insert;
            const UPDATE: &'static str = $update;
            fn id(&self) -> &IpamId {
                &self.id
            }
            fn validate(&self, tx: &Transaction) -> Result<(), ApiError> {
                $validate(tx, self)
            }
            fn execute(&self, tx: &Transaction, sql: &str) -> Result<(), ApiError> {
                let $o = self;
                tx.prepare_cached(sql)?.execute($columns)?;
                Ok(())
            }
        }
    };
}

stored_row!(
    AddressSpace, AddressSpace, validate_space,
    insert: "INSERT INTO spaces (id, kind, provider_space, vmm_logical_network, body) VALUES (?1, ?2, ?3, ?4, ?5)",
    update: "UPDATE spaces SET kind = ?2, provider_space = ?3, vmm_logical_network = ?4, body = ?5 WHERE id = ?1",
    columns(s) params![
        s.id.as_str(),
        space_kind_name(s.kind),
        s.provider_space.as_ref().map(IpamId::as_str),
        s.vmm_logical_network,
        to_body(s)?
    ]
);

stored_row!(
    IpamSubnet, Subnet, validate_subnet,
    insert: "INSERT INTO subnets (id, address_space, network, body) VALUES (?1, ?2, ?3, ?4)",
    update: "UPDATE subnets SET address_space = ?2, network = ?3, body = ?4 WHERE id = ?1",
    columns(s) params![
        s.id.as_str(),
        s.address_space.as_str(),
        s.network.to_string(),
        to_body(s)?
    ]
);

stored_row!(
    IpRange, Range, validate_range,
    insert: "INSERT INTO ranges (id, subnet, body) VALUES (?1, ?2, ?3)",
    update: "UPDATE ranges SET subnet = ?2, body = ?3 WHERE id = ?1",
    columns(r) params![r.id.as_str(), r.subnet.as_str(), to_body(r)?]
);

/// A create: a new, well-formed id and a valid object, inserted and recorded.
fn create<T: StoredRow>(tx: &Transaction, seq: &mut i64, o: &T) -> Result<IpamId, ApiError> {
    ensure_new(tx, T::KIND, o.id())?;
    o.validate(tx)?;
    o.execute(tx, T::INSERT)?;
    record(tx, seq, T::KIND, o.id().as_str(), "create")?;
    Ok(o.id().clone())
}

/// An update's write, once its object was found, validated and checked.
fn update<T: StoredRow>(tx: &Transaction, seq: &mut i64, o: &T) -> Result<IpamId, ApiError> {
    o.execute(tx, T::UPDATE)?;
    record(tx, seq, T::KIND, o.id().as_str(), "update")?;
    Ok(o.id().clone())
}

fn delete_row(
    tx: &Transaction,
    seq: &mut i64,
    kind: IpamKind,
    id: &IpamId,
) -> Result<IpamId, ApiError> {
    let sql = format!("DELETE FROM {} WHERE id = ?1", table(kind));
    tx.prepare_cached(&sql)?.execute(params![id.as_str()])?;
    record(tx, seq, kind, id.as_str(), "delete")?;
    Ok(id.clone())
}

/// Ids travel in URL paths: printable ASCII without '/', '?', '#', '%' or spaces.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::fabric::model::PoolSettings;
    use crate::ipam::model::OpVerb;

    fn space(id: &str, ln: &str) -> AddressSpace {
        AddressSpace {
            vmm_logical_network: Some(ln.into()),
            ..AddressSpace::new(id, format!("space {id}"), AddressSpaceKind::Provider)
        }
    }

    fn subnet(id: &str, space: &str, net: &str) -> IpamSubnet {
        IpamSubnet {
            name: net.into(),
            ..IpamSubnet::new(id, space, net.parse().unwrap())
        }
    }

    fn range(id: &str, subnet: &str, start: &str, end: &str) -> IpRange {
        IpRange {
            id: id.into(),
            vmm_id: None,
            subnet: subnet.into(),
            name: String::new(),
            description: String::new(),
            start: start.parse().unwrap(),
            end: end.parse().unwrap(),
            settings: PoolSettings {
                reserved: Default::default(),
                vips: Default::default(),
                gateways: vec![],
                dns_servers: vec![],
                dns_suffix: String::new(),
                dns_search_suffixes: vec![],
                wins_servers: vec![],
                netbios_enabled: false,
            },
            managed_by_service: String::new(),
            service_instance: String::new(),
        }
    }

    /// An administrator's request, as the API describes it to the database.
    fn admin() -> Caller {
        Caller {
            token_id: "0123456789ab".into(),
            role: Role::AsmAdministrator,
            method: "POST".into(),
            at: chrono::Utc::now(),
        }
    }

    fn seeded() -> Database {
        let mut db = Database::open(None).unwrap();
        let out = db
            .apply_batch(
                &[
                    IpamOp::CreateSpace(space("s1", "LN1")),
                    IpamOp::CreateSubnet(subnet("n1", "s1", "10.0.0.0/24")),
                    IpamOp::CreateRange(range("r1", "n1", "10.0.0.10", "10.0.0.20")),
                ],
                &admin(),
            )
            .unwrap();
        assert!(out.applied, "{out:?}");
        db
    }

    #[test]
    fn failing_operation_rolls_back_the_whole_batch() {
        let mut db = seeded();
        let before = db.last_seq().unwrap();
        let out = db
            .apply_batch(
                &[
                    IpamOp::CreateSubnet(subnet("n2", "s1", "10.0.1.0/24")),
                    IpamOp::CreateRange(range("r2", "n2", "10.0.1.10", "10.0.2.20")),
                    IpamOp::DeleteRange("r1".into()),
                ],
                &admin(),
            )
            .unwrap();
        assert!(!out.applied);
        assert_eq!(out.results[0], OpResult::NotApplied);
        match &out.results[1] {
            OpResult::Failed { code, field, .. } => {
                assert_eq!(*code, 422);
                assert_eq!(field.as_deref(), Some("end"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(out.results[2], OpResult::NotApplied);
        assert!(db.get_subnet("n2").unwrap().is_none());
        assert!(db.get_range("r1").unwrap().is_some());
        assert_eq!(db.last_seq().unwrap(), before);
    }

    #[test]
    fn validation_names_the_field() {
        let mut db = seeded();
        let field = |db: &mut Database, op: IpamOp| db.apply_one(op, &admin()).unwrap_err();
        let e = field(
            &mut db,
            IpamOp::CreateRange(range("r2", "n1", "10.0.0.30", "10.0.0.25")),
        );
        assert_eq!(e.field.as_deref(), Some("end"));
        let e = field(
            &mut db,
            IpamOp::CreateRange(range("r2", "n1", "10.0.0.15", "10.0.0.25")),
        );
        assert_eq!((e.status, e.field.as_deref()), (409, Some("start")));
        let mut r = range("r3", "n1", "10.0.0.30", "10.0.0.40");
        r.settings.vips.insert("10.0.0.50".parse().unwrap());
        assert_eq!(
            field(&mut db, IpamOp::CreateRange(r)).field.as_deref(),
            Some("vips")
        );
        let e = field(
            &mut db,
            IpamOp::CreateSubnet(subnet("n9", "nope", "10.9.0.0/24")),
        );
        assert_eq!(e.field.as_deref(), Some("address_space"));
        let e = field(
            &mut db,
            IpamOp::CreateSubnet(subnet("n9", "s1", "10.0.0.0/24")),
        );
        assert_eq!((e.status, e.field.as_deref()), (409, Some("network")));
        let e = field(
            &mut db,
            IpamOp::CreateSubnet(subnet("n9", "s1", "10.0.0.1/24")),
        );
        assert_eq!(e.field.as_deref(), Some("network"));
        let mut customer = subnet("n9", "s1", "10.9.0.0/24");
        customer.network_type = "Customer".into();
        let e = field(&mut db, IpamOp::CreateSubnet(customer));
        assert_eq!(e.field.as_deref(), Some("address_space"));
        let e = field(&mut db, IpamOp::CreateSpace(space("s1", "LN1")));
        assert_eq!((e.status, e.field.as_deref()), (409, Some("id")));
        let mut long = space("s2", "LN2");
        long.name = "x".repeat(300);
        assert_eq!(
            field(&mut db, IpamOp::CreateSpace(long)).field.as_deref(),
            Some("name")
        );
        let e = field(&mut db, IpamOp::DeleteSpace("s1".into()));
        assert_eq!(e.status, 409);
        assert!(e.error.contains("n1"), "{}", e.error);
        let e = field(&mut db, IpamOp::DeleteSubnet("n1".into()));
        assert_eq!(e.status, 409);
        assert!(e.error.contains("r1"), "{}", e.error);
        let mut narrowed = subnet("n1", "s1", "10.0.0.0/28");
        narrowed.name = "narrow".into();
        assert_eq!(field(&mut db, IpamOp::UpdateSubnet(narrowed)).status, 409);
    }

    #[test]
    fn change_feed_reports_current_state_and_deletions() {
        let mut db = seeded();
        let c0 = db.last_seq().unwrap();
        let mut s = space("s1", "LN1");
        s.description = "changed".into();
        db.apply_one(IpamOp::UpdateSpace(s), &admin()).unwrap();
        db.apply_one(IpamOp::DeleteRange("r1".into()), &admin())
            .unwrap();
        let page = db.changes(&None, c0, 100).unwrap();
        assert_eq!(page.spaces.len(), 1);
        assert_eq!(page.spaces[0].description, "changed");
        assert_eq!(
            page.deleted,
            vec![DeletedObject {
                kind: IpamKind::Range,
                id: "r1".into()
            }]
        );
        assert!(!page.more);
        assert_eq!(page.cursor, db.last_seq().unwrap());
        let first = db.changes(&None, c0, 1).unwrap();
        assert!(first.more);
        assert_eq!(first.cursor, c0 + 1);
    }

    #[test]
    fn old_or_foreign_cursors_are_gone() {
        let mut db = seeded();
        db.set_change_retention(2);
        db.apply_one(IpamOp::CreateSpace(space("s2", "LN2")), &admin())
            .unwrap();
        assert_eq!(db.changes(&None, 0, 10).unwrap_err().status, 410);
        let last = db.last_seq().unwrap();
        assert_eq!(db.changes(&None, last + 5, 10).unwrap_err().status, 410);
        assert!(db.changes(&None, last - 2, 10).is_ok());
    }

    #[test]
    fn scoped_reads_follow_the_logical_network() {
        let mut db = seeded();
        db.apply_one(IpamOp::CreateSpace(space("s2", "LN2")), &admin())
            .unwrap();
        let scope: Scope = Some(["LN1".to_string()].into());
        let page = db.snapshot_page(&scope, None, 100).unwrap();
        assert_eq!(page.spaces.len(), 1);
        assert_eq!((page.subnets.len(), page.ranges.len()), (1, 1));
        let c = db.last_seq().unwrap();
        // Unlinking the space takes it and everything below it out of the scoped view.
        let mut s = space("s1", "LN1");
        s.vmm_logical_network = None;
        db.apply_one(IpamOp::UpdateSpace(s), &admin()).unwrap();
        let ch = db.changes(&scope, c, 100).unwrap();
        assert_eq!(ch.deleted.len(), 3, "{ch:?}");
    }

    #[test]
    fn snapshot_pages_cover_everything_once() {
        let mut db = seeded();
        let ops: Vec<IpamOp> = (1..=5)
            .map(|i| {
                IpamOp::CreateSubnet(subnet(&format!("m{i}"), "s1", &format!("10.1.{i}.0/24")))
            })
            .collect();
        db.apply_batch(&ops, &admin()).unwrap();
        let mut token: Option<String> = None;
        let mut seen = 0;
        loop {
            let p = db.snapshot_page(&None, token.as_deref(), 2).unwrap();
            seen += p.spaces.len() + p.subnets.len() + p.ranges.len();
            match p.next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        assert_eq!(seen, 1 + 6 + 1);
    }

    #[test]
    fn every_write_is_audited_with_who_and_what() {
        let mut db = seeded();
        let mut s = space("s1", "LN1");
        s.description = "changed".into();
        let reader = Caller {
            token_id: "ba9876543210".into(),
            method: "PUT".into(),
            ..admin()
        };
        db.apply_one(IpamOp::UpdateSpace(s), &reader).unwrap();
        db.apply_one(IpamOp::DeleteRange("r1".into()), &admin())
            .unwrap();
        let rows = db.audit(100, None).unwrap();
        let lines: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
        assert_eq!(rows.len(), 5, "{lines:#?}");
        // Newest first: the delete, the update, then the seeded batch's three creates.
        let deleted = &rows[0];
        assert_eq!(
            (deleted.action, deleted.kind, deleted.object_id.as_str()),
            (OpVerb::Delete, IpamKind::Range, "r1")
        );
        assert_eq!(deleted.object_name, "10.0.0.10-10.0.0.20");
        assert_eq!(
            deleted.summary,
            "deleted IP address range 10.0.0.10-10.0.0.20 (r1) in subnet 10.0.0.0/24 (n1)"
        );
        assert_eq!(deleted.outcome, AuditOutcome::Applied);
        assert_eq!(deleted.detail, None);
        let updated = &rows[1];
        assert_eq!(
            (updated.token_id.as_str(), updated.method.as_str()),
            ("ba9876543210", "PUT")
        );
        assert_eq!(
            updated.summary,
            "updated IP address space \"space s1\" (s1) for logical network LN1"
        );
        assert_eq!(
            rows[2].summary,
            "created IP address range 10.0.0.10-10.0.0.20 (r1) in subnet 10.0.0.0/24 (n1)"
        );
        assert_eq!(
            rows[3].summary,
            "created IP address subnet 10.0.0.0/24 (n1) in address space s1"
        );
        assert_eq!(rows[4].kind, IpamKind::AddressSpace);
        assert!(rows.iter().all(|r| r.role == Role::AsmAdministrator));
        assert!(rows.windows(2).all(|w| w[0].seq > w[1].seq));
        assert!(
            lines[0].contains("0123456789ab  asm-administrator"),
            "{}",
            lines[0]
        );
        assert!(
            lines[0].ends_with("in subnet 10.0.0.0/24 (n1)"),
            "{}",
            lines[0]
        );
        assert_eq!(db.audit(2, None).unwrap(), rows[..2]);
    }

    #[test]
    fn refused_writes_are_audited_as_refused_and_apply_nothing() {
        let mut db = seeded();
        let before = db.audit(100, None).unwrap().len();
        let out = db
            .apply_batch(
                &[
                    IpamOp::CreateSubnet(subnet("n2", "s1", "10.0.1.0/24")),
                    IpamOp::CreateRange(range("r2", "n2", "10.0.1.10", "10.0.2.20")),
                ],
                &admin(),
            )
            .unwrap();
        assert!(!out.applied);
        let rows = db.audit(100, None).unwrap();
        assert_eq!(rows.len(), before + 1);
        let refused = &rows[0];
        assert_eq!(refused.outcome, AuditOutcome::Refused);
        assert_eq!(refused.object_id, "r2");
        let detail = refused.detail.as_deref().unwrap();
        assert!(detail.contains("operation 1 of a batch of 2"), "{detail}");
        assert!(
            !rows.iter().any(|r| r.object_id == "n2"),
            "an operation of a refused batch is recorded as applied"
        );
        // A single refused operation names its reason alone.
        let e = db
            .apply_one(IpamOp::DeleteSubnet("nope".into()), &admin())
            .unwrap_err();
        let rows = db.audit(1, None).unwrap();
        assert_eq!(
            (rows[0].outcome, rows[0].detail.as_deref()),
            (AuditOutcome::Refused, Some(e.error.as_str()))
        );
        assert_eq!(rows[0].summary, "deleted IP address subnet (nope)");
    }

    #[test]
    fn a_write_and_its_audit_row_commit_together() {
        let mut db = seeded();
        // An audit row that cannot be written takes the change down with it.
        db.conn
            .execute_batch("ALTER TABLE audit RENAME TO audit_elsewhere")
            .unwrap();
        let e = db
            .apply_one(IpamOp::CreateSpace(space("s2", "LN2")), &admin())
            .unwrap_err();
        assert_eq!(e.status, 500);
        assert!(db.get_space("s2").unwrap().is_none());
        db.conn
            .execute_batch("ALTER TABLE audit_elsewhere RENAME TO audit")
            .unwrap();
        db.apply_one(IpamOp::CreateSpace(space("s2", "LN2")), &admin())
            .unwrap();
        assert_eq!(db.audit(1, None).unwrap()[0].object_id, "s2");
    }

    #[test]
    fn audit_rows_are_bounded_and_filtered_by_time() {
        let mut db = seeded();
        db.set_audit_retention(4);
        let early = admin();
        let later = Caller {
            at: early.at + chrono::Duration::hours(1),
            ..admin()
        };
        for i in 0..3 {
            db.apply_one(IpamOp::CreateSpace(space(&format!("x{i}"), "LN9")), &later)
                .unwrap();
        }
        let rows = db.audit(100, None).unwrap();
        let ids: Vec<&str> = rows.iter().map(|r| r.object_id.as_str()).collect();
        assert_eq!(ids, ["x2", "x1", "x0", "r1"]);
        let since = early.at + chrono::Duration::minutes(30);
        assert_eq!(db.audit(100, Some(since)).unwrap().len(), 3);
    }

    #[test]
    fn databases_from_before_schema_versions_are_migrated() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(dir.path().join("ipam.sqlite3")).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('database_id', 'old'), ('last_seq', '0'), \
                 ('trimmed_through', '0')",
                [],
            )
            .unwrap();
        }
        let mut db = Database::open(Some(dir.path())).unwrap();
        assert_eq!(db.database_id(), "old");
        let version: i64 = db
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        db.apply_one(IpamOp::CreateSpace(space("s1", "LN1")), &admin())
            .unwrap();
        assert_eq!(db.audit(10, None).unwrap().len(), 1);
        db.conn.pragma_update(None, "user_version", 99).unwrap();
        drop(db);
        let e = Database::open(Some(dir.path())).err().unwrap();
        assert!(matches!(e, OpenError::NewerSchema { found: 99, .. }), "{e}");
        assert!(e.to_string().contains("newer fabric-console"), "{e}");
    }
}
