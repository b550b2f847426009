//! A team's PostgreSQL database as its consoles see it: an export from SQLite imported there and
//! exported back is the same document; one console sees another's sync as it runs and ends; a
//! console without the Run As password leaves the automatic syncs to one that has it.
//!
//! Needs `FABRIC_CONSOLE_TEST_POSTGRES` (scripts/postgres.sh); without it each test says it did
//! not run (and fails with `FABRIC_CONSOLE_REQUIRE_POSTGRES=1`, as scripts/test.sh sets).

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use fabric_console::db::Location;
use fabric_console::db::postgres::{self, TestDatabase};
use fabric_console::fabric::connection::ConnectionString;
use fabric_console::fabric::demo::demo_fabric;
use fabric_console::fabric::model::*;
use fabric_console::fabric::secrets::{MemorySecretStore, SecretStore};
use fabric_console::fabric::store::FabricStore;
use fabric_console::ipam::builtin;
use fabric_console::ipam::registry::ProviderRegistry;
use fabric_console::ipam_server::{self as server, ServerConfig, auth};
use fabric_console::ops::service::new_service;
use fabric_console::sync::engine::{Engine, EngineContext, EngineHandle};
use fabric_console::sync::status::{EngineEvent, JobResult, JobTrigger, SyncState};

fn console(data_dir: &Path, database: Option<&str>, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fabric-console"));
    c.arg("--data-dir").arg(data_dir);
    if let Some(url) = database {
        c.args(["--database", url]);
    }
    c.args(args)
        .env_remove("FABRIC_CONSOLE_DATABASE")
        .env("FABRIC_CONSOLE_SECRET_BACKEND", "file")
        .output()
        .expect("the fabric-console binary runs")
}

#[track_caller]
fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The export document without its time stamp.
fn export_body(path: &Path) -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("exported_at");
    v
}

#[test]
fn an_export_from_sqlite_imported_into_postgres_exports_back_the_same() {
    let Some(admin) = postgres::test_target() else {
        return;
    };
    let db = TestDatabase::create(&admin, "exchange").unwrap();
    let url = db.url();
    let (sqlite, pg, files) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let (a, b, c) = (
        files.path().join("a.json"),
        files.path().join("b.json"),
        files.path().join("c.json"),
    );
    ok(&console(
        sqlite.path(),
        None,
        &["demo", "--size", "500", "--seed", "4"],
    ));
    ok(&console(
        sqlite.path(),
        None,
        &["export", a.to_str().unwrap()],
    ));
    let status = ok(&console(pg.path(), Some(&url), &["db", "status"]));
    assert!(status.contains("schema 0 of"), "{status}");
    ok(&console(pg.path(), Some(&url), &["db", "migrate"]));
    let status = ok(&console(pg.path(), Some(&url), &["db", "status"]));
    assert!(status.contains("up to date"), "{status}");
    let text = ok(&console(
        pg.path(),
        Some(&url),
        &["import", a.to_str().unwrap()],
    ));
    assert!(text.contains(&url), "says where it went: {text}");
    ok(&console(
        pg.path(),
        Some(&url),
        &["export", b.to_str().unwrap()],
    ));
    assert_eq!(export_body(&a), export_body(&b));
    // And back into SQLite elsewhere.
    let again = tempfile::tempdir().unwrap();
    ok(&console(
        again.path(),
        None,
        &["import", b.to_str().unwrap()],
    ));
    ok(&console(
        again.path(),
        None,
        &["export", c.to_str().unwrap()],
    ));
    assert_eq!(export_body(&a), export_body(&c));
    // Nothing of it reached the data folder used with --database.
    assert!(!pg.path().join("fabric.db").exists());
}

#[test]
fn a_password_in_the_database_url_is_refused_and_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let out = console(
        dir.path(),
        Some("postgres://fabric:hunter2@db.example/fabric"),
        &["db", "status"],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("pgpass") && stderr.contains("--database"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

struct Team {
    _db: TestDatabase,
    server: server::RunningServer,
    location: Location,
    service: Id,
    run_as: Id,
    token: String,
}

/// A small fabric on its own PostgreSQL database with one service on a built-in server.
async fn team(admin: &fabric_console::db::PgTarget) -> Team {
    team_of(admin, 300).await
}

async fn team_of(admin: &fabric_console::db::PgTarget, size: usize) -> Team {
    let db = TestDatabase::create(admin, "team").unwrap();
    let server = server::start(ServerConfig::ephemeral()).await.unwrap();
    let token = server.issue_token(auth::Role::AsmAdministrator);
    let location = Location::Postgres(db.target().clone());
    let store = FabricStore::open_at(&location, false).unwrap();
    let mut f = demo_fabric(size, 9);
    let run_as = *f.run_as_accounts.keys().next().unwrap();
    let service = new_service(
        &builtin::descriptor(),
        "ipam1".into(),
        String::new(),
        ConnectionString::parse(&server.addr().to_string()).unwrap(),
        run_as,
        HostGroupScope::All,
        30,
    );
    let id = service.id;
    f.network_services.insert(id, service);
    store.replace_all(f).unwrap();
    Team {
        _db: db,
        server,
        location,
        service: id,
        run_as,
        token,
    }
}

/// A console's engine on the team's database, with (or without) the Run As password.
fn engine(team: &Team, password: bool, periodic: bool) -> (FabricStore, EngineHandle) {
    let store = FabricStore::open_at(&team.location, false).unwrap();
    let secrets: Arc<dyn SecretStore> = Arc::new(MemorySecretStore::new());
    if password {
        secrets.put(team.run_as, &team.token).unwrap();
    }
    let mut ctx = EngineContext::new(
        store.clone(),
        secrets,
        Arc::new(ProviderRegistry::default_registry()),
        None,
    );
    ctx.periodic = periodic;
    (store, Engine::start(ctx).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_console_sees_a_sync_as_it_runs_and_its_outcome() {
    let Some(admin) = postgres::test_target() else {
        return;
    };
    let t = team(&admin).await;
    let (_a_store, a) = engine(&t, true, false);
    let (_b_store, b) = engine(&t, true, false);
    let mut heard = b.subscribe();
    let job = a.sync_now(t.service, JobTrigger::Refresh).await.unwrap();
    assert_eq!(job.result, JobResult::Succeeded, "{:?}", job.errors);
    // B ran nothing, yet it heard A's progress, then A's status and job.
    let (mut progress, mut finished) = (false, None);
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    while finished.is_none() {
        let e = tokio::time::timeout_at(until, heard.recv())
            .await
            .expect("B hears A's sync")
            .unwrap();
        match e {
            EngineEvent::Progress { service, .. } if service == t.service => progress = true,
            EngineEvent::Finished { job, .. } => finished = Some(job),
            _ => {}
        }
    }
    assert!(progress, "B saw the sync's progress");
    assert_eq!(finished.unwrap().id, job.id, "B shows A's job");
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let s = b.status(t.service).unwrap();
        if s.state == SyncState::InSync && s.last_result == Some(JobResult::Succeeded) {
            break;
        }
        assert!(tokio::time::Instant::now() < until, "B's status: {s:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        b.jobs().iter().any(|j| j.id == job.id),
        "B's job list has it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_without_the_run_as_password_leaves_the_automatic_syncs_to_one_with_it() {
    let Some(admin) = postgres::test_target() else {
        return;
    };
    let t = team(&admin).await;
    // Only B runs as a console does (syncing on saves); it holds no password. A save would
    // start a sync.
    let (b_store, b) = engine(&t, false, true);
    let mut group = b_store
        .fabric()
        .host_groups
        .values()
        .find(|g| g.parent.is_some())
        .unwrap()
        .clone();
    group.name.push_str(" renamed");
    b_store
        .apply(&[FabricChange::Put(FabricObject::HostGroup(group))])
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(b.jobs().is_empty(), "B ran a sync: {:?}", b.jobs());
    let s = b.status(t.service).unwrap();
    assert!(
        matches!(&s.state, SyncState::Waiting(w) if w.contains("holds the password")),
        "{s:?}"
    );
    // A person's Refresh there runs, and says what is missing.
    let job = b.sync_now(t.service, JobTrigger::Refresh).await.unwrap();
    assert_eq!(job.result, JobResult::Failed);
    // A console with the password syncs; B then shows that.
    let (_a_store, a) = engine(&t, true, false);
    let job = a.sync_now(t.service, JobTrigger::Refresh).await.unwrap();
    assert_eq!(job.result, JobResult::Succeeded, "{:?}", job.errors);
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    while b.status(t.service).unwrap().state != SyncState::InSync {
        assert!(
            tokio::time::Instant::now() < until,
            "{:?}",
            b.status(t.service)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A connection to another computer is TLS with the server's certificate checked: here the test
/// server's certificate for localhost, signed by the test authority `scripts/postgres.sh` made.
#[test]
fn tls_to_postgres_checks_the_server_certificate() {
    use fabric_console::db::postgres::Tls;
    use fabric_console::db::{Conn, PgTarget, Role, params};
    let Some(admin) = postgres::test_target() else {
        return;
    };
    let ca = std::env::var("FABRIC_CONSOLE_TEST_POSTGRES_CA").expect(
        "FABRIC_CONSOLE_TEST_POSTGRES_CA names the test authority (scripts/postgres.sh env)",
    );
    let url = |query: &str| {
        format!(
            "postgres://{}@localhost:5432/{}?{query}",
            admin.user(),
            admin.dbname()
        )
    };
    let checked = PgTarget::parse(&url(&format!("sslrootcert={ca}"))).unwrap();
    assert!(matches!(checked.tls(), Tls::Verified { .. }));
    let mut conn = Conn::postgres(&checked, Role::Fabric).expect("a checked TLS connection");
    let tx = conn.read().unwrap();
    let encrypted: bool = tx
        .value(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            params![],
        )
        .unwrap()
        .unwrap();
    assert!(encrypted, "the connection is encrypted");
    drop(tx);
    // Without the authority the certificate is not trusted: refused, and said why.
    let unknown = PgTarget::parse(&url("sslmode=require")).unwrap();
    let err = Conn::postgres(&unknown, Role::Fabric)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("certificate") && err.contains("sslrootcert"),
        "{err}"
    );
}

/// A worker whose connection to the database drops in the middle of sending loses its lease
/// and stops, as a crash would; another console's sync then finishes the job, creating nothing
/// twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_that_loses_its_lease_stops_and_another_finishes_it_without_duplicates() {
    use fabric_console::db::{Conn, Role, params};
    use fabric_console::ipam::model::{SnapshotRead, SnapshotScope};
    use fabric_console::sync::status::SyncStage;
    let Some(admin) = postgres::test_target() else {
        return;
    };
    let t = team_of(&admin, 3000).await;
    let (_a_store, a) = engine(&t, true, false);
    let mut events = a.subscribe();
    let service = t.service;
    let running = tokio::spawn({
        let a = a.clone();
        async move { a.sync_now(service, JobTrigger::Refresh).await }
    });
    // Once it sends, the server ends the connection that holds its lease.
    let until = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match tokio::time::timeout_at(until, events.recv()).await {
            Ok(Ok(EngineEvent::Progress {
                stage: SyncStage::ApplyingIpam,
                done,
                ..
            })) if done > 0 => break,
            Ok(Ok(_)) => {}
            other => panic!("no sending seen: {other:?}"),
        }
    }
    let key = fabric_console::sync::lease::PgLeases::key(service);
    let Location::Postgres(target) = &t.location else {
        unreachable!()
    };
    let mut conn = Conn::postgres(target, Role::Sync).unwrap();
    let tx = conn.write().unwrap();
    let ended: Option<bool> = tx
        .value(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted
               AND ((classid::bigint << 32) | objid::bigint) = ?1",
            params![key],
        )
        .unwrap();
    tx.commit().unwrap();
    assert_eq!(
        ended,
        Some(true),
        "the lease's connection was found and ended"
    );
    let job = running.await.unwrap().unwrap();
    assert_eq!(job.result, JobResult::Failed, "{job:?}");
    assert!(job.errors[0].contains("lost its hold"), "{:?}", job.errors);
    // Another console finishes it; a further sync has nothing to do; nothing was made twice.
    let (_b_store, b) = engine(&t, true, false);
    let done = b.sync_now(service, JobTrigger::Refresh).await.unwrap();
    assert_ne!(done.result, JobResult::Failed, "{:?}", done.errors);
    let again = b.sync_now(service, JobTrigger::Refresh).await.unwrap();
    assert_eq!(again.counts.total_changes(), 0, "{:?}", again.counts);
    let provider = ProviderRegistry::default_registry()
        .get(builtin::PROVIDER_ID)
        .unwrap()
        .connect(fabric_console::ipam::provider::ProviderConfig {
            connection: ConnectionString::parse(&t.server.addr().to_string()).unwrap(),
            credentials: fabric_console::ipam::provider::Credentials {
                user_name: "t".into(),
                secret: t.token.clone(),
            },
            trust: TlsTrust::default(),
            service_name: "ipam1".into(),
            event_source: None,
        })
        .unwrap();
    let SnapshotRead::Full(s) = provider.snapshot(&SnapshotScope::All, None).await.unwrap() else {
        panic!("asked for a full snapshot")
    };
    let mut seen = std::collections::BTreeSet::new();
    for sn in &s.subnets {
        assert!(
            seen.insert((sn.vmm_id, sn.network)),
            "a subnet twice: {sn:?}"
        );
    }
    let mut ranges = std::collections::BTreeSet::new();
    for r in &s.ranges {
        assert!(ranges.insert(r.vmm_id), "a range twice: {r:?}");
    }
}
