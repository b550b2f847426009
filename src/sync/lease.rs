//! One sync per network service across every process that opens a data directory: the console,
//! a scheduled `fabric-console sync`, a second console. Before a sync reads or writes anything it
//! takes the service's lease; whoever finds it held waits and says who holds it.
//!
//! [`LeaseProvider`] is the seam: [`FileLeases`] keeps the leases beside the sync database as
//! operating-system file locks (released by the kernel when the holder exits or is killed, so a
//! crash never leaves a service locked); a shared database store can provide the same trait with
//! its own locks (for example PostgreSQL advisory locks, which end with the session).

use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Local, Utc};
use serde::{Deserialize, Serialize};

use crate::fabric::model::Id;

/// Who holds (or asks for) a service's lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// What the process is, as a person would name it: "Fabric Console", "fabric-console sync".
    pub program: String,
    pub pid: u32,
    pub host: String,
    pub since: DateTime<Utc>,
}

impl Holder {
    /// This process, holding from now.
    pub fn this_process(program: &str) -> Self {
        Holder {
            program: program.to_string(),
            pid: std::process::id(),
            host: host_name(),
            since: Utc::now(),
        }
    }
}

impl fmt::Display for Holder {
    /// "another Fabric Console (pid 4242) since 10:02" — the host is named only when it is not
    /// this one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let since = self.since.with_timezone(&Local).format("%H:%M:%S");
        if self.host == host_name() {
            write!(
                f,
                "another {} (pid {}) since {since}",
                self.program, self.pid
            )
        } else {
            write!(
                f,
                "another {} (pid {} on {}) since {since}",
                self.program, self.pid, self.host
            )
        }
    }
}

/// The answer to a request for a lease.
pub enum Acquire {
    /// Held until the [`Lease`] is dropped.
    Granted(Lease),
    /// Someone else holds it; `None` when who is not known (they have only just taken it).
    Held(Option<Holder>),
}

/// A held lease; dropping it releases it.
pub struct Lease {
    _held: Box<dyn Send + Sync>,
    /// Says whether the lease has gone while held (its connection to a shared database dropped).
    lost: Option<LostProbe>,
}

type LostProbe = Box<dyn Fn() -> bool + Send + Sync>;

impl Lease {
    pub fn new(held: impl Send + Sync + 'static) -> Self {
        Lease {
            _held: Box::new(held),
            lost: None,
        }
    }

    /// A lease that can be lost while held; `lost` says when it is.
    pub fn watched(
        held: impl Send + Sync + 'static,
        lost: impl Fn() -> bool + Send + Sync + 'static,
    ) -> Self {
        Lease {
            _held: Box::new(held),
            lost: Some(Box::new(lost)),
        }
    }

    /// Whether someone else may hold it now: its holder must stop (file and in-process leases
    /// are never lost while held).
    pub fn is_lost(&self) -> bool {
        self.lost.as_ref().is_some_and(|lost| lost())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error(
        "The sync lock in {target} could not be taken: {message}. Check that the database server is reachable."
    )]
    Database { target: String, message: String },
    #[error(
        "The sync lock {path} cannot be opened: {source}. Check the data directory is writable."
    )]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Hands out one lease per service at a time, to every process that shares the provider.
pub trait LeaseProvider: Send + Sync {
    /// Takes the service's lease for `holder` if it is free; never waits.
    fn try_acquire(&self, service: Id, holder: &Holder) -> Result<Acquire, LeaseError>;
}

/// Leases as file locks in a folder (`<data dir>/locks/<service>.lock`). Each lock file holds its
/// holder's description so that others can say who it is.
#[derive(Debug, Clone)]
pub struct FileLeases {
    dir: PathBuf,
}

impl FileLeases {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileLeases { dir: dir.into() }
    }

    /// The leases of the data directory whose sync database is `sync_db`.
    pub fn beside(sync_db: &Path) -> Self {
        let parent = sync_db.parent().unwrap_or(Path::new("."));
        FileLeases::new(parent.join("locks"))
    }

    fn path(&self, service: Id) -> PathBuf {
        self.dir.join(format!("{service}.lock"))
    }
}

impl LeaseProvider for FileLeases {
    fn try_acquire(&self, service: Id, holder: &Holder) -> Result<Acquire, LeaseError> {
        let path = self.path(service);
        let io = |source| LeaseError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {
                let body = serde_json::to_vec(holder).unwrap_or_default();
                file.set_len(0).map_err(io)?;
                file.seek(SeekFrom::Start(0)).map_err(io)?;
                file.write_all(&body).map_err(io)?;
                Ok(Acquire::Granted(Lease::new(LockedFile(file))))
            }
            Err(TryLockError::WouldBlock) => {
                let mut body = Vec::new();
                let _ = file.take(4096).read_to_end(&mut body);
                Ok(Acquire::Held(serde_json::from_slice(&body).ok()))
            }
            Err(TryLockError::Error(e)) => Err(io(e)),
        }
    }
}

/// Leases as PostgreSQL session-level advisory locks, for consoles and `sync --follow` daemons
/// sharing one database: each held lease keeps a connection of its own, and the lock ends with
/// it — released on drop, and by the server when the holder's process dies (its connection
/// closes) — so another process takes over at its next try. The holder is written to
/// `lease_holders` so that others can say who it is.
#[derive(Debug, Clone)]
pub struct PgLeases {
    target: crate::db::PgTarget,
    /// The sync schema (with `lease_holders`) is there.
    ready: Arc<std::sync::OnceLock<()>>,
}

impl PgLeases {
    pub fn new(target: crate::db::PgTarget) -> Self {
        PgLeases {
            target,
            ready: Default::default(),
        }
    }

    /// The advisory-lock key of a service's lease (in `pg_locks`, `classid << 32 | objid`).
    pub fn key(service: Id) -> i64 {
        let b = service.as_bytes();
        i64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    }
}

impl LeaseProvider for PgLeases {
    fn try_acquire(&self, service: Id, holder: &Holder) -> Result<Acquire, LeaseError> {
        use crate::db::{Conn, Role, params};
        let db = |e: crate::db::DbError| LeaseError::Database {
            target: self.target.to_string(),
            message: e.to_string(),
        };
        if self.ready.get().is_none() {
            crate::sync::journal::SyncDb::open_at(&crate::db::Location::Postgres(
                self.target.clone(),
            ))
            .map_err(|e| LeaseError::Database {
                target: self.target.to_string(),
                message: e.to_string(),
            })?;
            let _ = self.ready.set(());
        }
        let mut conn = Conn::postgres(&self.target, Role::Sync).map_err(db)?;
        let granted = match &mut conn {
            Conn::Postgres(pg, _) => {
                // A holder whose computer vanishes (power, network) closes nothing: the server
                // probes the connection and drops it, and the lock, within about 25 s.
                pg.set_keepalives(10, 5, 3).map_err(db)?;
                pg.try_lock(Self::key(service)).map_err(db)?
            }
            Conn::Sqlite(..) => false,
        };
        let tx = conn.write().map_err(db)?;
        if granted {
            let body = serde_json::to_string(holder).unwrap_or_default();
            tx.execute(
                "INSERT INTO lease_holders (service, body) VALUES (?1, ?2)
                 ON CONFLICT (service) DO UPDATE SET body = excluded.body",
                params![service.to_string(), body],
            )
            .map_err(db)?;
            tx.commit().map_err(db)?;
            let held = Arc::new(HeldConnection {
                conn: std::sync::Mutex::new(conn),
                key: Self::key(service),
            });
            let probe = held.clone();
            return Ok(Acquire::Granted(Lease::watched(held, move || {
                probe.closed()
            })));
        }
        let body: Option<String> = tx
            .value(
                "SELECT body FROM lease_holders WHERE service = ?1",
                params![service.to_string()],
            )
            .map_err(db)?;
        Ok(Acquire::Held(
            body.and_then(|b| serde_json::from_str(&b).ok()),
        ))
    }
}

/// The connection that holds an advisory lock. Dropped, it unlocks before it closes, so the
/// next holder need not wait for the server to notice the connection gone.
struct HeldConnection {
    conn: std::sync::Mutex<crate::db::Conn>,
    key: i64,
}

impl HeldConnection {
    /// The connection (and with it the lock) is gone.
    fn closed(&self) -> bool {
        match &*self.conn.lock().unwrap_or_else(|p| p.into_inner()) {
            crate::db::Conn::Postgres(pg, _) => pg.is_closed(),
            crate::db::Conn::Sqlite(..) => false,
        }
    }
}

impl Drop for HeldConnection {
    fn drop(&mut self) {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if let crate::db::Conn::Postgres(pg, _) = &mut *conn
            && let Err(e) = pg.unlock(self.key)
        {
            tracing::debug!(error = %e, "a lease's unlock failed; closing its connection ends it");
        }
    }
}

/// The open lock file; closing it (on drop, or when the process ends) releases the lock.
struct LockedFile(#[allow(dead_code)] File);

/// Leases kept in memory, shared by whoever shares this value: an engine whose sync database
/// lives in memory (tests, previews) gets its own, as no other process can see its state.
#[derive(Debug, Default, Clone)]
pub struct ProcessLeases {
    held: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<Id, Holder>>>,
}

struct ProcessLease {
    held: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<Id, Holder>>>,
    service: Id,
}

impl Drop for ProcessLease {
    fn drop(&mut self) {
        if let Ok(mut held) = self.held.lock() {
            held.remove(&self.service);
        }
    }
}

impl LeaseProvider for ProcessLeases {
    fn try_acquire(&self, service: Id, holder: &Holder) -> Result<Acquire, LeaseError> {
        let mut held = self
            .held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(h) = held.get(&service) {
            return Ok(Acquire::Held(Some(h.clone())));
        }
        held.insert(service, holder.clone());
        Ok(Acquire::Granted(Lease::new(ProcessLease {
            held: self.held.clone(),
            service,
        })))
    }
}

/// How long a sync waits by default for another process's sync of the same service.
pub const DEFAULT_LEASE_WAIT: Duration = Duration::from_secs(30 * 60);
/// How often a waiting sync asks for the lease again.
const LEASE_POLL: Duration = Duration::from_millis(250);

/// Why waiting for a lease ended without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseWait {
    Canceled,
    /// Still held after `waited` ("30 minutes"); `by` says by whom.
    TimedOut {
        by: String,
        waited: String,
    },
    Failed(String),
}

/// Takes `service`'s lease for this process (`program` names it to others), asking again while
/// someone else holds it, until `cancel` is set or `wait` has passed. `busy` hears "being synced
/// by another Fabric Console (pid 4242) since 10:02" each time the holder changes.
pub async fn wait_for_lease(
    leases: Arc<dyn LeaseProvider>,
    service: Id,
    program: &str,
    cancel: &AtomicBool,
    wait: Duration,
    mut busy: impl FnMut(&str),
) -> Result<Lease, LeaseWait> {
    let deadline = std::time::Instant::now() + wait;
    let mut told: Option<String> = None;
    loop {
        let leases = leases.clone();
        let holder = Holder::this_process(program);
        let answer = tokio::task::spawn_blocking(move || leases.try_acquire(service, &holder))
            .await
            .map_err(|e| LeaseWait::Failed(e.to_string()))?
            .map_err(|e| LeaseWait::Failed(e.to_string()))?;
        let by = match answer {
            Acquire::Granted(lease) => return Ok(lease),
            Acquire::Held(Some(h)) => format!("being synced by {h}"),
            Acquire::Held(None) => "being synced by another Fabric Console".to_string(),
        };
        if told.as_ref() != Some(&by) {
            busy(&by);
            told = Some(by.clone());
        }
        if cancel.load(Ordering::Relaxed) {
            return Err(LeaseWait::Canceled);
        }
        if std::time::Instant::now() >= deadline {
            return Err(LeaseWait::TimedOut {
                by,
                waited: wait_text(wait),
            });
        }
        tokio::time::sleep(LEASE_POLL.min(wait)).await;
    }
}

/// "30 minutes", "45 seconds".
fn wait_text(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 120 {
        format!("{} minutes", secs / 60)
    } else {
        format!("{secs} seconds")
    }
}

/// This machine's name, read once (a waiting sync asks for its lease every 250 ms).
fn host_name() -> String {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .or_else(|| std::env::var("COMPUTERNAME").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "this computer".into())
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn granted(a: Acquire) -> Lease {
        match a {
            Acquire::Granted(l) => l,
            Acquire::Held(h) => panic!("expected the lease, held by {h:?}"),
        }
    }

    #[test]
    fn a_file_lease_is_exclusive_says_who_holds_it_and_frees_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        // Two providers over one folder stand for two processes: file locks from two opens
        // exclude each other even inside one process.
        let a = FileLeases::new(dir.path());
        let b = FileLeases::new(dir.path());
        let service = uuid::Uuid::new_v4();
        let other = uuid::Uuid::new_v4();
        let console = Holder::this_process("Fabric Console");
        let lease = granted(a.try_acquire(service, &console).unwrap());
        match b
            .try_acquire(service, &Holder::this_process("fabric-console sync"))
            .unwrap()
        {
            Acquire::Held(Some(h)) => {
                assert_eq!(h, console);
                let text = h.to_string();
                assert!(
                    text.starts_with(&format!(
                        "another Fabric Console (pid {})",
                        std::process::id()
                    )),
                    "{text}"
                );
            }
            Acquire::Held(None) => panic!("the holder should be known"),
            Acquire::Granted(_) => panic!("two holders at once"),
        }
        // Another service is independent.
        let _other = granted(b.try_acquire(other, &console).unwrap());
        drop(lease);
        let _again = granted(b.try_acquire(service, &console).unwrap());
    }

    #[test]
    fn a_killed_holder_frees_its_lease() {
        // A child process takes the lock and is killed: the kernel releases it.
        let dir = tempfile::tempdir().unwrap();
        let service = uuid::Uuid::new_v4();
        let leases = FileLeases::new(dir.path());
        let path = leases.path(service);
        std::fs::create_dir_all(dir.path()).unwrap();
        std::fs::write(&path, b"").unwrap();
        // flock(1) comes with util-linux, which every Debian machine has; `-o` keeps the lock in
        // flock itself, not in the command it runs.
        let mut child = std::process::Command::new("flock")
            .arg("-o")
            .arg(&path)
            .arg("sleep")
            .arg("30")
            .spawn()
            .expect("flock(1) runs");
        let holder = Holder::this_process("test");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match leases.try_acquire(service, &holder).unwrap() {
                Acquire::Held(_) => break,
                Acquire::Granted(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                Acquire::Granted(_) => panic!("the child never took the lock"),
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        // flock(1)'s own child holds a copy of the descriptor from its fork until it closes it
        // (`-o`) before running `sleep`: the lock is free once that copy is closed too.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match leases.try_acquire(service, &holder).unwrap() {
                Acquire::Granted(_lease) => break,
                Acquire::Held(by) if std::time::Instant::now() >= deadline => {
                    panic!("the killed holder's lease was never freed: {by:?}")
                }
                Acquire::Held(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
    }

    #[tokio::test]
    async fn a_waiter_says_who_holds_the_lease_and_gets_it_when_freed() {
        let leases: Arc<dyn LeaseProvider> = Arc::new(ProcessLeases::default());
        let service = uuid::Uuid::new_v4();
        let sync = Holder::this_process("fabric-console sync");
        let held = granted(leases.try_acquire(service, &sync).unwrap());
        let cancel = AtomicBool::new(false);
        let heard = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let console = |limit: u64| {
            let heard = heard.clone();
            wait_for_lease(
                leases.clone(),
                service,
                "Fabric Console",
                &cancel,
                Duration::from_millis(limit),
                move |by: &str| heard.lock().unwrap().push(by.to_string()),
            )
        };
        // Held throughout: the wait runs out and says by whom, once (not at every poll).
        let e = console(50).await.err().unwrap();
        let by = format!(
            "being synced by another fabric-console sync (pid {})",
            sync.pid
        );
        assert!(
            matches!(&e, LeaseWait::TimedOut { by: b, .. } if b.starts_with(&by)),
            "{e:?}"
        );
        assert_eq!(heard.lock().unwrap().len(), 1, "{heard:?}");
        // Freed while waiting: the waiter gets it.
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            drop(held);
        });
        assert!(console(10_000).await.is_ok());
        release.await.unwrap();
    }

    #[test]
    fn process_leases_are_exclusive_per_service() {
        let leases = ProcessLeases::default();
        let service = uuid::Uuid::new_v4();
        let holder = Holder::this_process("Fabric Console");
        let lease = granted(leases.try_acquire(service, &holder).unwrap());
        assert!(matches!(
            leases.try_acquire(service, &holder).unwrap(),
            Acquire::Held(Some(_))
        ));
        drop(lease);
        let _lease = granted(leases.try_acquire(service, &holder).unwrap());
    }
}
