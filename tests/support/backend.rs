//! Which backend a test's fabric and sync state live on: SQLite files in the test's data folder
//! (the default), or, with `FABRIC_CONSOLE_TEST_BACKEND=postgres`, a PostgreSQL database of its
//! own per data folder on the server `FABRIC_CONSOLE_TEST_POSTGRES` names (scripts/test.sh runs
//! the store, sync and trust tests both ways). Every open of one folder reaches the same
//! database, as every open of one data directory reaches the same files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use fabric_console::db::postgres::{self, TestDatabase};
use fabric_console::db::{Conn, Location, Role, Value};
use fabric_console::fabric::store::FabricStore;

/// Whether this run keeps the tests' data on PostgreSQL.
#[allow(dead_code)]
pub fn on_postgres() -> bool {
    std::env::var("FABRIC_CONSOLE_TEST_BACKEND").as_deref() == Ok("postgres")
}

fn databases() -> &'static Mutex<HashMap<PathBuf, TestDatabase>> {
    static DATABASES: OnceLock<Mutex<HashMap<PathBuf, TestDatabase>>> = OnceLock::new();
    DATABASES.get_or_init(Default::default)
}

/// Where the data folder `dir` keeps its fabric and sync state in this run.
#[allow(dead_code)]
pub fn location(dir: &Path) -> Location {
    if !on_postgres() {
        return Location::Sqlite(dir.to_path_buf());
    }
    let target = postgres::test_target().expect("FABRIC_CONSOLE_TEST_POSTGRES names the server");
    let mut dbs = databases().lock().unwrap();
    let db = dbs
        .entry(dir.to_path_buf())
        .or_insert_with(|| TestDatabase::create(&target, "t").expect("a test database"));
    Location::Postgres(db.target().clone())
}

/// The data folder's fabric store.
#[allow(dead_code)]
pub fn store(dir: &Path) -> FabricStore {
    FabricStore::open_at(&location(dir), false).expect("the fabric store opens")
}

/// The command-line arguments that point a `fabric-console` process at the folder's data.
#[allow(dead_code)]
pub fn cli_args(dir: &Path) -> Vec<String> {
    let mut args = vec!["--data-dir".to_string(), dir.display().to_string()];
    if let Location::Postgres(t) = location(dir) {
        args.push("--database".into());
        args.push(t.to_string());
    }
    args
}

/// Runs one statement on the folder's sync state, as another process (or a damaged disk)
/// would; the number of rows it changed.
#[allow(dead_code)]
pub fn sync_sql(dir: &Path, sql: &str, params: &[Value]) -> usize {
    let mut conn = Conn::open(&location(dir), Role::Sync).expect("the sync database opens");
    let tx = conn.write().unwrap();
    let n = tx.execute(sql, params).unwrap();
    tx.commit().unwrap();
    n
}

/// Drops the folder's database (PostgreSQL) at the end of a test that made many.
#[allow(dead_code)]
pub fn forget(dir: &Path) {
    databases().lock().unwrap().remove(dir);
}
