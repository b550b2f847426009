//! Where the fabric and the sync state are kept: an embedded SQLite file per database in the data
//! directory (the default, no setup), or one PostgreSQL database a team's consoles share.
//!
//! The stores above speak one small dialect through [`Conn`] and [`Tx`]: `?1`-style placeholders,
//! `INSERT … ON CONFLICT … DO UPDATE`, `RETURNING`, and integer, text and byte values. Each
//! backend keeps its own transaction rules so the stores behave the same on both:
//! - [`Conn::write`] serializes writers: SQLite's immediate transaction, PostgreSQL's
//!   transaction-scoped advisory lock on the database's [`Role`] (so a writer reads what the
//!   previous one committed, as on SQLite);
//! - [`Conn::read`] is one consistent snapshot: SQLite's read transaction, PostgreSQL's
//!   repeatable-read transaction.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod pgpass;
pub mod postgres;

pub use postgres::{PgConn, PgTarget};

/// How long a SQLite writer waits for another process holding the database.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// One value bound to a placeholder or read from a column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<&i64> for Value {
    fn from(v: &i64) -> Self {
        Value::Int(*v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}
impl From<&Option<String>> for Value {
    fn from(v: &Option<String>) -> Self {
        v.as_deref().map_or(Value::Null, Value::from)
    }
}

/// The values of a statement's placeholders, in order: `params![a, b]`.
#[macro_export]
macro_rules! params {
    () => { &[] as &[$crate::db::Value] };
    ($($v:expr),+ $(,)?) => { &[$($crate::db::Value::from($v)),+] as &[$crate::db::Value] };
}
pub use params;

/// A column value read as a Rust value.
pub trait FromValue: Sized {
    fn from_value(v: &Value) -> Option<Self>;
    const EXPECTED: &'static str;
}
impl FromValue for i64 {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
    const EXPECTED: &'static str = "an integer";
}
impl FromValue for bool {
    fn from_value(v: &Value) -> Option<Self> {
        i64::from_value(v).map(|i| i != 0)
    }
    const EXPECTED: &'static str = "a truth value";
}
impl FromValue for String {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
    const EXPECTED: &'static str = "text";
}
impl FromValue for Vec<u8> {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Bytes(b) => Some(b.clone()),
            _ => None,
        }
    }
    const EXPECTED: &'static str = "bytes";
}
impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Null => Some(None),
            v => T::from_value(v).map(Some),
        }
    }
    const EXPECTED: &'static str = T::EXPECTED;
}

/// One result row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row(pub Vec<Value>);

impl Row {
    /// Column `i` as a `T`; a missing column or another type is an error naming both.
    pub fn get<T: FromValue>(&self, i: usize) -> Result<T, DbError> {
        let v = self.0.get(i).unwrap_or(&Value::Null);
        T::from_value(v).ok_or_else(|| DbError::Type {
            column: i,
            expected: T::EXPECTED,
            found: format!("{v:?}"),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("PostgreSQL: {}", postgres::describe(.0))]
    Postgres(#[from] tokio_postgres::Error),
    #[error("column {column} holds {found}, expected {expected}")]
    Type {
        column: usize,
        expected: &'static str,
        found: String,
    },
    #[error("{0}")]
    Connect(String),
    #[error(
        "schema version {found}, but this Fabric Console knows versions up to {supported}; open it with a newer Fabric Console"
    )]
    NewerSchema { found: i64, supported: i64 },
}

impl DbError {
    /// A unique or primary-key constraint refused the write.
    pub fn is_unique_violation(&self) -> bool {
        match self {
            DbError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                    || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            }
            DbError::Postgres(e) => {
                e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
            }
            _ => false,
        }
    }
}

/// Which database of the data directory: its SQLite file, and its writers' lock on PostgreSQL
/// (where both share one database).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Fabric,
    Sync,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Fabric => "fabric",
            Role::Sync => "sync",
        }
    }
    /// The advisory-lock key its writers take on PostgreSQL (leases use other keys).
    fn lock_key(self) -> i64 {
        match self {
            Role::Fabric => 0x4643_0001,
            Role::Sync => 0x4643_0002,
        }
    }
}

/// Where a data directory's databases live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// One SQLite file per role in the data directory.
    Sqlite(PathBuf),
    /// One PostgreSQL database for both roles.
    Postgres(PgTarget),
    /// In memory, for tests and previews (each open is a new empty database).
    Memory,
}

impl Location {
    /// `--database`/`FABRIC_CONSOLE_DATABASE`: a `postgres://` or `postgresql://` URL, or
    /// `sqlite` for the data directory's files.
    pub fn parse(text: &str, data_dir: &Path) -> Result<Self, DbError> {
        let text = text.trim();
        if text.is_empty() || text.eq_ignore_ascii_case("sqlite") {
            return Ok(Location::Sqlite(data_dir.to_path_buf()));
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return PgTarget::parse(text).map(Location::Postgres);
        }
        Err(DbError::Connect(format!(
            "the database \"{text}\" is neither \"sqlite\" nor a postgres:// URL; give --database postgres://user@host/dbname (password in ~/.pgpass or the secret store) or leave it out for the data directory's SQLite files"
        )))
    }

    /// What to show a person: the file, or the server and database (never a password).
    pub fn describe(&self, role: Role) -> String {
        match self {
            Location::Sqlite(dir) => dir.join(file_name(role)).display().to_string(),
            Location::Postgres(t) => t.to_string(),
            Location::Memory => "memory".to_string(),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Location::Postgres(_))
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(dir) => write!(f, "SQLite in {}", dir.display()),
            Location::Postgres(t) => write!(f, "PostgreSQL {t} ({})", t.security()),
            Location::Memory => f.write_str("memory"),
        }
    }
}

/// The SQLite file of a role in a data directory.
pub fn file_name(role: Role) -> &'static str {
    match role {
        Role::Fabric => "fabric.db",
        Role::Sync => "sync.db",
    }
}

/// One connection to a role's database.
pub enum Conn {
    Sqlite(rusqlite::Connection, Role),
    Postgres(Box<PgConn>, Role),
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Conn::Sqlite(_, role) => write!(f, "Conn::Sqlite({role:?})"),
            Conn::Postgres(c, role) => write!(f, "Conn::Postgres({}, {role:?})", c.target()),
        }
    }
}

impl Conn {
    /// Opens a SQLite file (creating it and its folder), write-ahead logged and synchronous:
    /// a committed write survives a power loss.
    pub fn sqlite_file(path: &Path, role: Role) -> Result<Self, rusqlite::Error> {
        let conn = rusqlite::Connection::open(path)?;
        configure_sqlite(&conn)?;
        Ok(Conn::Sqlite(conn, role))
    }

    pub fn sqlite_memory(role: Role) -> Result<Self, rusqlite::Error> {
        let conn = rusqlite::Connection::open_in_memory()?;
        configure_sqlite(&conn)?;
        Ok(Conn::Sqlite(conn, role))
    }

    pub fn postgres(target: &PgTarget, role: Role) -> Result<Self, DbError> {
        Ok(Conn::Postgres(Box::new(PgConn::connect(target)?), role))
    }

    /// Opens `role`'s database at `location`.
    pub fn open(location: &Location, role: Role) -> Result<Self, DbError> {
        match location {
            Location::Sqlite(dir) => Ok(Self::sqlite_file(&dir.join(file_name(role)), role)?),
            Location::Postgres(t) => Self::postgres(t, role),
            Location::Memory => Ok(Self::sqlite_memory(role)?),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Conn::Postgres(..))
    }

    /// The PostgreSQL database this connection is to.
    pub fn pg_target(&self) -> Option<&PgTarget> {
        match self {
            Conn::Postgres(c, _) => Some(c.target()),
            Conn::Sqlite(..) => None,
        }
    }

    /// A write transaction: one writer of this role at a time, across processes.
    pub fn write(&mut self) -> Result<Tx<'_>, DbError> {
        match self {
            Conn::Sqlite(c, _) => Ok(Tx::Sqlite(
                c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?,
            )),
            Conn::Postgres(c, role) => Ok(Tx::Postgres(c.begin(Some(role.lock_key()))?)),
        }
    }

    /// A read transaction: one consistent snapshot (it may also write, as a deferred one).
    pub fn read(&mut self) -> Result<Tx<'_>, DbError> {
        match self {
            Conn::Sqlite(c, _) => Ok(Tx::Sqlite(c.transaction()?)),
            Conn::Postgres(c, _) => Ok(Tx::Postgres(c.begin(None)?)),
        }
    }

    /// Brings the role's schema up to `steps` (each written in SQLite's dialect; append only).
    /// SQLite keeps the count in `PRAGMA user_version`, PostgreSQL in `schema_versions`.
    pub fn migrate(&mut self, steps: &[&str]) -> Result<(), DbError> {
        let supported = steps.len() as i64;
        let role = self.role();
        if let Conn::Postgres(c, _) = self {
            c.batch(
                "CREATE TABLE IF NOT EXISTS schema_versions (role TEXT PRIMARY KEY, version BIGINT NOT NULL)",
            )?;
        }
        let tx = self.write()?;
        let version = tx.schema_version(role)?;
        if version > supported {
            return Err(DbError::NewerSchema {
                found: version,
                supported,
            });
        }
        for (i, step) in steps.iter().enumerate().skip(version.max(0) as usize) {
            tx.batch(step)?;
            tx.set_schema_version(role, i as i64 + 1)?;
        }
        tx.commit()
    }

    /// The role's schema version (0: none yet).
    pub fn schema_version(&mut self) -> Result<i64, DbError> {
        let role = self.role();
        if let Conn::Postgres(c, _) = self {
            let exists =
                c.query_one_value("SELECT to_regclass('schema_versions') IS NOT NULL", &[])?;
            if exists != Value::Int(1) {
                return Ok(0);
            }
        }
        let tx = self.read()?;
        let v = tx.schema_version(role)?;
        tx.commit()?;
        Ok(v)
    }

    pub fn role(&self) -> Role {
        match self {
            Conn::Sqlite(_, r) | Conn::Postgres(_, r) => *r,
        }
    }
}

fn configure_sqlite(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // In-memory databases answer "memory"; files switch to write-ahead logging.
    let _mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    // A committed write (an operator's edit, a journal entry written before its operation is
    // sent) must survive a power loss.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(())
}

/// An open transaction; dropped without `commit`, it rolls back. A statement that fails leaves
/// it good only for dropping (PostgreSQL's rule, kept on SQLite by the callers).
pub enum Tx<'a> {
    Sqlite(rusqlite::Transaction<'a>),
    Postgres(postgres::PgTx<'a>),
}

impl Tx<'_> {
    /// Runs a statement; the number of rows it changed.
    pub fn execute(&self, sql: &str, params: &[Value]) -> Result<usize, DbError> {
        match self {
            Tx::Sqlite(tx) => {
                let mut st = tx.prepare_cached(sql)?;
                Ok(st.execute(rusqlite::params_from_iter(params.iter().map(SqliteValue)))?)
            }
            Tx::Postgres(tx) => tx.execute(sql, params),
        }
    }

    /// Every row a query returns.
    pub fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        match self {
            Tx::Sqlite(tx) => {
                let mut st = tx.prepare_cached(sql)?;
                let columns = st.column_count();
                let mut rows =
                    st.query(rusqlite::params_from_iter(params.iter().map(SqliteValue)))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    let mut values = Vec::with_capacity(columns);
                    for i in 0..columns {
                        values.push(from_sqlite(r.get_ref(i)?));
                    }
                    out.push(Row(values));
                }
                Ok(out)
            }
            Tx::Postgres(tx) => tx.query(sql, params),
        }
    }

    /// The first row, if any.
    pub fn query_opt(&self, sql: &str, params: &[Value]) -> Result<Option<Row>, DbError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The first column of the first row, if any.
    pub fn value<T: FromValue>(&self, sql: &str, params: &[Value]) -> Result<Option<T>, DbError> {
        self.query_opt(sql, params)?.map(|r| r.get(0)).transpose()
    }

    /// Several statements without parameters (schema steps).
    pub fn batch(&self, sql: &str) -> Result<(), DbError> {
        match self {
            Tx::Sqlite(tx) => Ok(tx.execute_batch(sql)?),
            Tx::Postgres(tx) => tx.batch(&postgres::schema_dialect(sql)),
        }
    }

    /// Tells every connection listening on `channel` (PostgreSQL only; on commit).
    pub fn notify(&self, channel: &str, payload: &str) -> Result<(), DbError> {
        match self {
            Tx::Sqlite(_) => Ok(()),
            Tx::Postgres(tx) => {
                tx.query("SELECT pg_notify(?1, ?2)", params![channel, payload])?;
                Ok(())
            }
        }
    }

    pub fn commit(self) -> Result<(), DbError> {
        match self {
            Tx::Sqlite(tx) => Ok(tx.commit()?),
            Tx::Postgres(tx) => tx.commit(),
        }
    }

    fn schema_version(&self, role: Role) -> Result<i64, DbError> {
        match self {
            Tx::Sqlite(tx) => Ok(tx.query_row("PRAGMA user_version", [], |r| r.get(0))?),
            Tx::Postgres(_) => Ok(self
                .value::<i64>(
                    "SELECT version FROM schema_versions WHERE role = ?1",
                    params![role.name()],
                )?
                .unwrap_or(0)),
        }
    }

    fn set_schema_version(&self, role: Role, version: i64) -> Result<(), DbError> {
        match self {
            Tx::Sqlite(tx) => Ok(tx.pragma_update(None, "user_version", version)?),
            Tx::Postgres(_) => {
                self.execute(
                    "INSERT INTO schema_versions (role, version) VALUES (?1, ?2)
                     ON CONFLICT (role) DO UPDATE SET version = excluded.version",
                    params![role.name(), version],
                )?;
                Ok(())
            }
        }
    }
}

struct SqliteValue<'a>(&'a Value);

impl rusqlite::ToSql for SqliteValue<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self.0 {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Integer(*i),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Bytes(b) => ValueRef::Blob(b),
        }))
    }
}

fn from_sqlite(v: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Text(f.to_string()),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEPS: &[&str] = &[
        "CREATE TABLE t (seq INTEGER PRIMARY KEY AUTOINCREMENT, k TEXT NOT NULL UNIQUE, n INTEGER, b BLOB) ;",
        "CREATE TABLE u (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID;",
    ];

    /// The dialect's statements give the same answers on every backend this run has.
    fn exercise(mut conn: Conn) {
        conn.migrate(STEPS).unwrap();
        conn.migrate(STEPS).unwrap();
        assert_eq!(conn.schema_version().unwrap(), 2);
        let tx = conn.write().unwrap();
        tx.batch("DELETE FROM t; DELETE FROM u;").unwrap();
        let seq: i64 = tx
            .value(
                "INSERT INTO t (k, n, b) VALUES (?1, ?2, ?3) RETURNING seq",
                &[Value::from("a"), Value::Int(7), Value::Bytes(vec![1, 2])],
            )
            .unwrap()
            .unwrap();
        tx.commit().unwrap();
        // A failed statement fails its transaction (PostgreSQL's rule): dropped, nothing of it
        // is kept.
        let tx = conn.write().unwrap();
        tx.execute("INSERT INTO u (k, v) VALUES (?1, ?2)", params!["lost", "1"])
            .unwrap();
        let err = tx
            .execute("INSERT INTO t (k, n) VALUES (?1, ?2)", params!["a", 8])
            .unwrap_err();
        assert!(err.is_unique_violation(), "{err}");
        drop(tx);
        let tx = conn.write().unwrap();
        for v in ["one", "two"] {
            tx.execute(
                "INSERT INTO u (k, v) VALUES (?1, ?2) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
                params!["x", v],
            )
            .unwrap();
        }
        tx.execute(
            "INSERT INTO t (k, n) VALUES (?1, ?2)",
            params!["b", None::<i64>],
        )
        .unwrap();
        tx.commit().unwrap();
        let tx = conn.read().unwrap();
        let rows = tx
            .query(
                "SELECT seq, k, n, b FROM t WHERE seq >= ?1 ORDER BY seq",
                params![seq],
            )
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].get::<String>(1).unwrap(), "a");
        assert_eq!(rows[0].get::<Option<i64>>(2).unwrap(), Some(7));
        assert_eq!(rows[0].get::<Vec<u8>>(3).unwrap(), vec![1, 2]);
        assert_eq!(rows[1].get::<Option<i64>>(2).unwrap(), None);
        assert!(rows[1].get::<i64>(1).is_err());
        let v: Option<String> = tx
            .value("SELECT v FROM u WHERE k = ?1", params!["x"])
            .unwrap();
        assert_eq!(v.as_deref(), Some("two"));
        assert_eq!(
            tx.value::<i64>("SELECT COUNT(*) FROM u", params![])
                .unwrap(),
            Some(1)
        );
        let exists: bool = tx
            .value("SELECT EXISTS(SELECT 1 FROM u WHERE k = ?1)", params!["x"])
            .unwrap()
            .unwrap();
        assert!(exists);
        let count: i64 = tx
            .value("SELECT COUNT(*) FROM t", params![])
            .unwrap()
            .unwrap();
        assert_eq!(count, 2);
        // Dropped without commit: rolled back.
        drop(tx);
        {
            let tx = conn.write().unwrap();
            tx.execute("DELETE FROM u", params![]).unwrap();
        }
        let tx = conn.read().unwrap();
        assert_eq!(
            tx.value::<i64>("SELECT COUNT(*) FROM u", params![])
                .unwrap(),
            Some(1)
        );
    }

    #[test]
    fn the_dialect_works_on_sqlite() {
        exercise(Conn::sqlite_memory(Role::Fabric).unwrap());
    }

    #[test]
    fn the_dialect_works_on_postgres() {
        let Some(target) = postgres::test_target() else {
            return;
        };
        let db = postgres::TestDatabase::create(&target, "dialect").unwrap();
        exercise(Conn::postgres(db.target(), Role::Fabric).unwrap());
    }

    #[test]
    fn a_newer_schema_is_refused_and_names_both_versions() {
        let mut conn = Conn::sqlite_memory(Role::Sync).unwrap();
        conn.migrate(STEPS).unwrap();
        let err = conn.migrate(&STEPS[..1]).unwrap_err();
        assert!(err.to_string().contains("version 2"), "{err}");
    }

    #[test]
    fn locations_parse_and_never_show_a_password() {
        let dir = Path::new("/tmp/x");
        assert_eq!(
            Location::parse("sqlite", dir).unwrap(),
            Location::Sqlite(dir.into())
        );
        let err = Location::parse("mysql://h/db", dir)
            .unwrap_err()
            .to_string();
        assert!(err.contains("postgres://"), "{err}");
        let err = Location::parse("postgres://u:secret@h/db", dir)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("secret") && err.contains("pgpass"), "{err}");
        let pg = Location::parse("postgres://fc@db.example:5433/fabric", dir).unwrap();
        assert_eq!(
            pg.describe(Role::Fabric),
            "postgres://fc@db.example:5433/fabric"
        );
    }
}
