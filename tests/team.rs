//! A team on one PostgreSQL fabric: two consoles' engines (this test binary started again as
//! `--role console`, each with its own store, secret store and engine as the console runs them)
//! and one `fabric-console sync --follow`, all on a 10k-object fabric synced with a built-in IPAM
//! server. The consoles edit the same objects at once with optimistic saves; then the process
//! holding the service's lease is killed in the middle of a sync.
//!
//! Checked: no lost update (every save a console was told succeeded is in the final fabric), no
//! IPAM object created twice, no two syncs' operations interleaved (the shared journal), a
//! takeover after the kill, and every process converging on the same fabric. Measured and
//! printed: the time a change takes to reach another console, and the takeover.
//!
//! Needs PostgreSQL (`FABRIC_CONSOLE_TEST_POSTGRES`, see scripts/test.sh); its own harness, so
//! the same binary can play a console.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fabric_console::db::postgres::{self, TestDatabase};
use fabric_console::db::{Conn, Location, PgTarget, Role, params};
use fabric_console::fabric::connection::ConnectionString;
use fabric_console::fabric::demo::demo_fabric;
use fabric_console::fabric::model::*;
use fabric_console::fabric::secrets::{FileSecretStore, SecretStore};
use fabric_console::fabric::store::{FabricStore, StoreError};
use fabric_console::ipam::builtin::{self, PROVIDER_ID};
use fabric_console::ipam::model::{IpamSnapshot, SnapshotRead, SnapshotScope};
use fabric_console::ipam::provider::{Credentials, ProviderConfig};
use fabric_console::ipam::registry::ProviderRegistry;
use fabric_console::ipam_server::{self as server, ServerConfig, auth};
use fabric_console::ops::boot::{Runner, start_engine};
use fabric_console::ops::service::new_service;
use fabric_console::paths::DataPaths;
use fabric_console::sync::status::{JobResult, JobTrigger};
use rand::{Rng, SeedableRng};

/// Objects in the shared fabric.
const OBJECTS: usize = 10_000;
/// Saves each console makes.
const EDITS: usize = 40;
/// The logical networks both consoles edit (so that they collide).
const HOT: usize = 6;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--role") {
        console_role(&args);
        return;
    }
    // `cargo test` passes its own flags (a filter, --list, …): this harness has one test.
    if args.iter().any(|a| a == "--list") {
        println!("three_processes_share_one_postgres_fabric: test");
        return;
    }
    let Some(admin) = postgres::test_target() else {
        return;
    };
    println!("test three_processes_share_one_postgres_fabric ...");
    three_processes_share_one_postgres_fabric(&admin);
    println!("test three_processes_share_one_postgres_fabric ... ok");
}

fn value_of<'a>(args: &'a [String], name: &str) -> &'a str {
    let i = args.iter().position(|a| a == name).expect(name);
    &args[i + 1]
}

/// One console: its store and engine on the shared database, saving `EDITS` changes to the hot
/// logical networks (each save appends a token to the network's description; a save refused
/// because the other console saved first is reloaded and made again), then answering the
/// parent's questions on standard input until told to stop.
fn console_role(args: &[String]) {
    let name = value_of(args, "--name").to_string();
    let target = PgTarget::parse(value_of(args, "--database")).unwrap();
    let dir = PathBuf::from(value_of(args, "--data-dir"));
    let seed: u64 = value_of(args, "--seed").parse().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _enter = runtime.enter();
    let mut paths = DataPaths::in_dir(&dir);
    paths.database = Some(target.clone());
    let store = FabricStore::open_at(&paths.location(), false).unwrap();
    let secrets: Arc<dyn SecretStore> = Arc::new(FileSecretStore::new(&dir));
    let engine = start_engine(
        &paths,
        &store,
        secrets,
        Arc::new(ProviderRegistry::default_registry()),
        Runner::Console,
    )
    .unwrap();
    let hot = hot_networks(&store.fabric());
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (mut saved, mut conflicts) = (Vec::new(), 0usize);
    for n in 0..EDITS {
        let id = hot[rng.random_range(0..hot.len())];
        let token = format!("{name}{n};");
        loop {
            let opened = store.opened(ObjectKind::LogicalNetwork, id).unwrap();
            let mut ln = store.fabric().logical_networks[&id].clone();
            ln.description.push_str(&token);
            // A moment between opening and saving, as a person takes.
            std::thread::sleep(Duration::from_millis(rng.random_range(5..40)));
            match store.apply_checked(
                &[FabricChange::Put(FabricObject::LogicalNetwork(ln))],
                &[opened],
            ) {
                Ok(_) => break,
                Err(StoreError::Conflict(_)) => {
                    conflicts += 1;
                    store.reload().unwrap();
                }
                Err(e) => panic!("{name}: {e}"),
            }
        }
        saved.push(token);
        // Now and then a change the IPAM server holds too: a subnet's VLAN.
        if n % 8 == 0 {
            let mut site = store
                .fabric()
                .network_sites
                .values()
                .nth(rng.random_range(0..50))
                .unwrap()
                .clone();
            if let Some(s) = site.subnets.first_mut() {
                s.vlan = rng.random_range(1..4000);
            }
            let _ = store.apply(&[FabricChange::Put(FabricObject::NetworkSite(site))]);
        }
    }
    println!(
        "RESULT {}",
        serde_json::json!({ "saved": saved, "conflicts": conflicts })
    );
    std::io::stdout().flush().unwrap();
    // The parent asks for the fabric this console sees, until it closes standard input.
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line.trim() == "digest" {
            let _ = store.refresh();
            println!("DIGEST {}", digest(&store.fabric()));
            std::io::stdout().flush().unwrap();
        }
    }
    drop(engine);
}

/// The logical networks the consoles collide on.
fn hot_networks(f: &Fabric) -> Vec<Id> {
    let mut lns: Vec<&LogicalNetwork> = f.logical_networks.values().collect();
    lns.sort_by(|a, b| a.name.cmp(&b.name));
    lns.iter().take(HOT).map(|l| l.id).collect()
}

/// A fabric as a short text: equal fabrics, equal digests.
fn digest(f: &Fabric) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(serde_json::to_vec(f).unwrap()))
}

struct Console {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Console {
    fn start(name: &str, target: &PgTarget, dir: &Path, seed: u64) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--role", "console", "--name", name, "--database"])
            .arg(target.to_string())
            .arg("--data-dir")
            .arg(dir)
            .args(["--seed", &seed.to_string()])
            .env("FABRIC_CONSOLE_SECRET_BACKEND", "file")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Console { child, lines }
    }

    /// The next line starting with `tag`, without it.
    fn expect(&self, tag: &str, within: Duration) -> String {
        let until = Instant::now() + within;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {tag} line within {within:?}"));
            if let Some(rest) = line.strip_prefix(tag) {
                return rest.trim().to_string();
            }
        }
    }

    fn digest(&mut self) -> String {
        writeln!(self.child.stdin.as_mut().unwrap(), "digest").unwrap();
        self.expect("DIGEST", Duration::from_secs(60))
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `sync --follow` daemon's data directory and process.
fn follow(target: &PgTarget, dir: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_fabric-console"))
        .arg("--data-dir")
        .arg(dir)
        .arg("--database")
        .arg(target.to_string())
        .args(["sync", "--follow"])
        .env("FABRIC_CONSOLE_SECRET_BACKEND", "file")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Who holds the service's lease now, by process id (from the holders table and the lock).
fn lease_holder(target: &PgTarget, service: Id) -> Option<u32> {
    let mut conn = Conn::postgres(target, Role::Sync).ok()?;
    let key = fabric_console::sync::lease::PgLeases::key(service);
    let tx = conn.read().ok()?;
    let held: bool = tx
        .value(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
               AND ((classid::bigint << 32) | objid::bigint) = ?1)",
            params![key],
        )
        .ok()??;
    if !held {
        return None;
    }
    let body: String = tx
        .value(
            "SELECT body FROM lease_holders WHERE service = ?1",
            params![service.to_string()],
        )
        .ok()??;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["pid"].as_u64().map(|p| p as u32)
}

/// Pairs of jobs whose journalled operations interleave in time.
fn interleaved_jobs(target: &PgTarget) -> Vec<(String, String)> {
    let mut conn = Conn::postgres(target, Role::Sync).unwrap();
    let tx = conn.read().unwrap();
    let rows = tx
        .query(
            "SELECT job, MIN(seq), MAX(seq) FROM journal GROUP BY job ORDER BY MIN(seq)",
            params![],
        )
        .unwrap();
    let spans: Vec<(String, i64, i64)> = rows
        .iter()
        .map(|r| (r.get(0).unwrap(), r.get(1).unwrap(), r.get(2).unwrap()))
        .collect();
    let mut out = Vec::new();
    for w in spans.windows(2) {
        if w[1].1 < w[0].2 {
            out.push((w[0].0.clone(), w[1].0.clone()));
        }
    }
    out
}

fn ipam(server: &server::RunningServer, token: &str) -> IpamSnapshot {
    let provider = ProviderRegistry::default_registry()
        .get(PROVIDER_ID)
        .unwrap()
        .connect(ProviderConfig {
            connection: ConnectionString::parse(&server.addr().to_string()).unwrap(),
            credentials: Credentials {
                user_name: "t".into(),
                secret: token.into(),
            },
            trust: TlsTrust::default(),
            service_name: "ipam1".into(),
            event_source: None,
        })
        .unwrap();
    let rt = tokio::runtime::Handle::current();
    match rt
        .block_on(provider.snapshot(&SnapshotScope::All, None))
        .unwrap()
    {
        SnapshotRead::Full(s) => s,
        SnapshotRead::Changes(_) => panic!("asked for a full snapshot"),
    }
}

fn duplicates(s: &IpamSnapshot) -> usize {
    let mut seen = BTreeSet::new();
    let mut twice = 0;
    for sn in &s.subnets {
        twice += usize::from(!seen.insert(("subnet", sn.vmm_id, Some(sn.network))));
    }
    for r in &s.ranges {
        twice += usize::from(!seen.insert(("range", r.vmm_id, None)));
    }
    twice
}

fn three_processes_share_one_postgres_fabric(admin: &PgTarget) {
    let db = TestDatabase::create(admin, "team").unwrap();
    let target = db.target().clone();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _enter = runtime.enter();
    let server_dir = tempfile::tempdir().unwrap();
    let mut cfg = ServerConfig::ephemeral();
    cfg.data_dir = Some(server_dir.path().to_path_buf());
    let server = runtime.block_on(server::start(cfg)).unwrap();
    let token = server.issue_token(auth::Role::AsmAdministrator);

    // The fabric, one network service, and each process's own copy of the secret.
    let location = Location::Postgres(target.clone());
    let store = FabricStore::open_at(&location, false).unwrap();
    let mut f = demo_fabric(OBJECTS, 5);
    let run_as = *f.run_as_accounts.keys().next().unwrap();
    let service = new_service(
        &builtin::descriptor(),
        "ipam1".into(),
        String::new(),
        ConnectionString::parse(&server.addr().to_string()).unwrap(),
        run_as,
        HostGroupScope::All,
        60,
    );
    let service_id = service.id;
    f.network_services.insert(service_id, service);
    let objects = f.object_count();
    store.replace_all(f).unwrap();
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    for d in &dirs {
        FileSecretStore::new(d.path()).put(run_as, &token).unwrap();
    }
    // This process looks on as a fourth console would: its own store and engine.
    let mut paths = DataPaths::in_dir(dirs[3].path());
    paths.database = Some(target.clone());
    let watcher = start_engine(
        &paths,
        &store,
        Arc::new(FileSecretStore::new(dirs[3].path())),
        Arc::new(ProviderRegistry::default_registry()),
        Runner::Command("team test"),
    )
    .unwrap();
    let t = Instant::now();
    let first = runtime
        .block_on(watcher.sync_now(service_id, JobTrigger::FirstSync))
        .unwrap();
    assert_eq!(first.result, JobResult::Succeeded, "{:?}", first.errors);
    println!(
        "first sync of {objects} objects: {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // A change saved here reaches another process's store within moments (LISTEN/NOTIFY).
    let other = FabricStore::open_at(&location, false).unwrap();
    let mut heard = other
        .commits_announced()
        .expect("PostgreSQL announces commits");
    heard.borrow_and_update();
    let (mut latencies, mut saves) = (Vec::new(), Vec::new());
    for i in 0..10 {
        let mut g = store
            .fabric()
            .host_groups
            .values()
            .find(|g| g.parent.is_some())
            .unwrap()
            .clone();
        g.name = format!("Renamed {i}");
        let t = Instant::now();
        store
            .apply(&[FabricChange::Put(FabricObject::HostGroup(g.clone()))])
            .unwrap();
        saves.push(t.elapsed());
        runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), heard.changed())
                .await
                .expect("announced")
                .unwrap()
        });
        other.refresh().unwrap();
        latencies.push(t.elapsed());
        assert_eq!(other.fabric().host_groups[&g.id].name, g.name);
    }
    latencies.sort();
    saves.sort();
    println!(
        "a save reaches another console's store: median {:.1} ms, max {:.1} ms from OK (of which the save itself: median {:.1} ms), 10 saves",
        latencies[5].as_secs_f64() * 1e3,
        latencies[9].as_secs_f64() * 1e3,
        saves[5].as_secs_f64() * 1e3
    );

    // Three processes at once: two consoles editing, one daemon following.
    let before = store.fabric();
    let originals: BTreeMap<Id, String> = hot_networks(&before)
        .into_iter()
        .map(|id| (id, before.logical_networks[&id].description.clone()))
        .collect();
    let mut daemon = follow(&target, dirs[2].path());
    let mut a = Console::start("A", &target, dirs[0].path(), 1);
    let mut b = Console::start("B", &target, dirs[1].path(), 2);
    let mut saved = BTreeSet::new();
    let mut conflicts = 0;
    for c in [&a, &b] {
        let r: serde_json::Value =
            serde_json::from_str(&c.expect("RESULT", Duration::from_secs(600))).unwrap();
        for t in r["saved"].as_array().unwrap() {
            assert!(
                saved.insert(t.as_str().unwrap().to_string()),
                "a token twice"
            );
        }
        conflicts += r["conflicts"].as_u64().unwrap();
    }
    assert_eq!(saved.len(), 2 * EDITS);
    println!(
        "{} saves by two consoles, {conflicts} refused as conflicts and made again",
        saved.len()
    );

    // Kill whoever syncs in the middle of a sync: a change to many subnets makes one long.
    let mut sites: Vec<NetworkSite> = store
        .fabric()
        .network_sites
        .values()
        .take(400)
        .cloned()
        .collect();
    for s in &mut sites {
        for sn in &mut s.subnets {
            sn.vlan = (sn.vlan % 4000) + 1;
        }
    }
    store
        .apply(
            &sites
                .into_iter()
                .map(|s| FabricChange::Put(FabricObject::NetworkSite(s)))
                .collect::<Vec<_>>(),
        )
        .unwrap();
    let children: BTreeMap<u32, &str> = [
        (a.child.id(), "console A"),
        (b.child.id(), "console B"),
        (daemon.id(), "sync --follow"),
    ]
    .into_iter()
    .collect();
    let until = Instant::now() + Duration::from_secs(120);
    let victim = loop {
        if let Some(pid) = lease_holder(&target, service_id)
            && children.contains_key(&pid)
        {
            break pid;
        }
        assert!(Instant::now() < until, "no child took the lease");
        std::thread::sleep(Duration::from_millis(20));
    };
    let killed_at = Instant::now();
    let _ = Command::new("kill")
        .args(["-9", &victim.to_string()])
        .status();
    println!(
        "killed {} (pid {victim}) holding the lease",
        children[&victim]
    );
    let until = Instant::now() + Duration::from_secs(120);
    let successor = loop {
        if let Some(pid) = lease_holder(&target, service_id)
            && pid != victim
        {
            break pid;
        }
        assert!(Instant::now() < until, "nobody took over");
        std::thread::sleep(Duration::from_millis(10));
    };
    println!(
        "takeover by {} after {:.0} ms",
        children.get(&successor).copied().unwrap_or("this process"),
        killed_at.elapsed().as_secs_f64() * 1e3
    );

    // Converged: a sync here finds nothing left to do, and every process sees one fabric.
    let until = Instant::now() + Duration::from_secs(300);
    loop {
        let job = runtime
            .block_on(watcher.sync_now(service_id, JobTrigger::Refresh))
            .unwrap();
        if job.result == JobResult::Succeeded && job.counts.total_changes() == 0 {
            break;
        }
        assert!(Instant::now() < until, "no convergence: {:?}", job.errors);
        std::thread::sleep(Duration::from_secs(1));
    }
    let fabric = store.reload().unwrap();
    for id in hot_networks(&fabric) {
        let d = fabric.logical_networks[&id]
            .description
            .strip_prefix(originals[&id].as_str())
            .expect("the description as it was, then the tokens");
        for token in d.split(';').filter(|t| !t.is_empty()) {
            assert!(
                saved.remove(&format!("{token};")),
                "a token nobody saved: {token}"
            );
        }
    }
    assert!(saved.is_empty(), "lost updates: {saved:?}");
    let s = ipam(&server, &token);
    assert_eq!(duplicates(&s), 0, "an IPAM object created twice");
    assert_eq!(interleaved_jobs(&target), Vec::new(), "two syncs at once");
    let want = digest(&fabric);
    for c in [&mut a, &mut b] {
        if c.child.id() != victim {
            assert_eq!(c.digest(), want, "a console sees another fabric");
        }
    }
    let _ = daemon.kill();
    let _ = daemon.wait();
    drop(watcher);
}
