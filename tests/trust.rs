//! Trust under concurrency and faults: several processes on one data directory, answers lost
//! between the console and the built-in IPAM server, syncing processes killed at random points.
//! After each run a clean sync must leave no duplicate, lose nothing, and plan nothing more.

#[path = "support/backend.rs"]
mod backend;
#[path = "support/engine.rs"]
mod engine;
#[path = "support/fault_proxy.rs"]
mod fault_proxy;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::engine_over;
use fabric_console::fabric::connection::ConnectionString;
use fabric_console::fabric::demo::demo_fabric;
use fabric_console::fabric::model::*;
use fabric_console::fabric::secrets::{FileSecretStore, SecretStore};
use fabric_console::ipam::builtin::{self, PROVIDER_ID};
use fabric_console::ipam::model::{AddressSpaceKind, IpamSnapshot, SnapshotRead, SnapshotScope};
use fabric_console::ipam::provider::{Credentials, ProviderConfig};
use fabric_console::ipam::registry::ProviderRegistry;
use fabric_console::ipam_server::auth::Role;
use fabric_console::ipam_server::{self as server, RunningServer, ServerConfig};
use fabric_console::ops::service::new_service;
use fabric_console::sync::engine::EngineHandle;
use fabric_console::sync::status::{JobRecord, JobResult, JobTrigger};
use fault_proxy::FaultProxy;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

/// Objects in the demo fabric each run syncs.
const OBJECTS: usize = 5_000;

/// A console's data directory: a demo fabric with one network service.
struct ConsoleDir {
    dir: tempfile::TempDir,
    secrets: Arc<dyn SecretStore>,
    service: Id,
    objects: usize,
}

impl ConsoleDir {
    /// A demo fabric of `size` objects and a network service at `connection` with `token`.
    fn new(size: usize, connection: &str, token: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = backend::store(dir.path());
        let mut f = demo_fabric(size, 11);
        let run_as = *f
            .run_as_accounts
            .keys()
            .next()
            .expect("the demo has an account");
        let service = new_service(
            &builtin::descriptor(),
            "ipam1".into(),
            String::new(),
            ConnectionString::parse(connection).unwrap(),
            run_as,
            HostGroupScope::All,
            300,
        );
        let id = service.id;
        f.network_services.insert(id, service);
        let objects = f.object_count();
        let grants = fabric_console::fabric::demo::demo_grants(&f, 11);
        store.replace_all(f).unwrap();
        // Addresses granted from the pools: their usage is reported under the same faults.
        store.grant_batch(&grants).unwrap();
        let secrets: Arc<dyn SecretStore> = Arc::new(FileSecretStore::new(dir.path()));
        secrets.put(run_as, token).unwrap();
        ConsoleDir {
            dir,
            secrets,
            service: id,
            objects,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// An engine of this process over the directory (its own store connection, like a second
    /// process would have).
    fn engine(&self) -> EngineHandle {
        let store = backend::store(self.path());
        engine_over(&store, &self.secrets, self.path())
    }
}

async fn start_server() -> (tempfile::TempDir, RunningServer, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = ServerConfig::ephemeral();
    cfg.data_dir = Some(dir.path().to_path_buf());
    let server = server::start(cfg).await.expect("server starts");
    let token = server.issue_token(Role::AsmAdministrator);
    (dir, server, token)
}

/// Everything the server holds, read directly (not through a proxy).
async fn ipam(server: &RunningServer, token: &str) -> IpamSnapshot {
    match direct(server, token)
        .snapshot(&SnapshotScope::All, None)
        .await
        .unwrap()
    {
        SnapshotRead::Full(s) => s,
        SnapshotRead::Changes(_) => panic!("asked for a full snapshot"),
    }
}

/// Ranges whose usage on the server is not the console's (lost, stale or never sent).
async fn usage_differing(console: &ConsoleDir, server: &RunningServer, token: &str) -> usize {
    let s = ipam(server, token).await;
    let ranges: Vec<(Id, fabric_console::ipam::model::IpamId)> = s
        .ranges
        .iter()
        .filter_map(|r| r.vmm_id.map(|p| (p, r.id.clone())))
        .collect();
    let store = backend::store(console.path());
    let desired = fabric_console::sync::usage::desired(
        &store.full().unwrap(),
        &store.grants(None).unwrap(),
        &ranges,
        &store.grant_counts().unwrap(),
    );
    let held = direct(server, token).range_usages().await.unwrap();
    desired
        .iter()
        .filter(|(range, usage)| held.get(range) != Some(usage))
        .count()
}

/// A provider talking to the server directly.
fn direct(
    server: &RunningServer,
    token: &str,
) -> Arc<dyn fabric_console::ipam::provider::IpamProvider> {
    ProviderRegistry::default_registry()
        .get(PROVIDER_ID)
        .unwrap()
        .connect(ProviderConfig {
            connection: ConnectionString::parse(&server.addr().to_string()).unwrap(),
            credentials: Credentials {
                user_name: "t".into(),
                secret: token.into(),
            },
            trust: fabric_console::fabric::model::TlsTrust::default(),
            service_name: "ipam1".into(),
            event_source: None,
        })
        .unwrap()
}

/// An IPAM administrator's edit of a subnet's VLAN through the server's REST API.
async fn set_vlan(
    server: &RunningServer,
    token: &str,
    subnet: &str,
    vlan: u16,
) -> reqwest::Response {
    reqwest::Client::new()
        .patch(format!("{}/api/v1/subnets/{subnet}", server.base_url()))
        .bearer_auth(token)
        .json(&serde_json::json!({ "vlan": vlan }))
        .send()
        .await
        .unwrap()
}

/// Objects the server holds twice (same console object, same kind of thing).
fn duplicates(s: &IpamSnapshot) -> usize {
    let mut seen = BTreeSet::new();
    let mut twice = 0;
    for sp in &s.spaces {
        twice += usize::from(!seen.insert((
            "space",
            sp.vmm_id,
            sp.kind == AddressSpaceKind::Provider,
            None,
        )));
    }
    for sn in &s.subnets {
        twice += usize::from(!seen.insert(("subnet", sn.vmm_id, true, Some(sn.network))));
    }
    for r in &s.ranges {
        twice += usize::from(!seen.insert(("range", r.vmm_id, true, None)));
    }
    twice
}

fn counts(s: &IpamSnapshot) -> (usize, usize, usize) {
    (s.spaces.len(), s.subnets.len(), s.ranges.len())
}

/// What one run left behind, after its clean sync.
#[derive(Debug)]
struct Outcome {
    duplicated: usize,
    /// Objects the server or the console should hold and does not (or holds in excess).
    lost: usize,
    /// Changes a dry run still plans after the clean sync.
    still_planned: usize,
    /// Ranges whose usage on the server is not the console's after the clean sync.
    usage_differs: usize,
}

/// The clean sync after a faulty run, and what it finds.
async fn settle(
    console: &ConsoleDir,
    server: &RunningServer,
    token: &str,
    expected: (usize, usize, usize),
) -> Outcome {
    let engine = console.engine();
    let job = engine
        .sync_now(console.service, JobTrigger::Refresh)
        .await
        .expect("the clean sync runs");
    assert_ne!(
        job.result,
        JobResult::Failed,
        "clean sync: {:?}",
        job.errors
    );
    let plan = engine.preview(console.service).await.expect("a dry run");
    let s = ipam(server, token).await;
    let (e, g) = (expected, counts(&s));
    let console_objects = backend::store(console.path()).fabric().object_count();
    Outcome {
        duplicated: duplicates(&s),
        lost: e.0.abs_diff(g.0)
            + e.1.abs_diff(g.1)
            + e.2.abs_diff(g.2)
            + console.objects.abs_diff(console_objects),
        still_planned: plan.ipam_ops.len() + plan.console_changes.len(),
        usage_differs: usage_differing(console, server, token).await,
    }
}

/// Every run of a matrix left nothing duplicated, lost or still to plan (each run was printed
/// as it finished).
fn assert_clean(table: &[(u64, Outcome)], what: &str) {
    for (n, o) in table {
        assert_eq!(
            (o.duplicated, o.lost, o.still_planned, o.usage_differs),
            (0, 0, 0, 0),
            "{what} {n}: {o:?}"
        );
    }
}

/// What a fault-free first sync of the demo puts on a server.
async fn reference_counts() -> (usize, usize, usize) {
    let (_dir, server, token) = start_server().await;
    let console = ConsoleDir::new(OBJECTS, &server.addr().to_string(), &token);
    let job = console
        .engine()
        .sync_now(console.service, JobTrigger::Refresh)
        .await
        .unwrap();
    assert_eq!(job.result, JobResult::Succeeded, "{:?}", job.errors);
    let s = ipam(&server, &token).await;
    assert_eq!(duplicates(&s), 0);
    counts(&s)
}

fn summary(job: &JobRecord) -> String {
    format!(
        "{} (+{} ~{} -{}, {} failed)",
        job.result.label(),
        job.counts.ipam_created,
        job.counts.ipam_updated,
        job.counts.ipam_deleted,
        job.counts.failed
    )
}

/// 20 seeded runs of a first sync of 5,000 objects through the fault proxy, then a clean sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_answers_resets_and_gateway_errors_never_duplicate_or_lose() {
    let expected = reference_counts().await;
    let mut table = Vec::new();
    for seed in std::env::var("SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(0..20u64, |n: u64| n..n + 1)
    {
        let (_dir, server, token) = start_server().await;
        let proxy = FaultProxy::start(server.addr(), seed, 20).await;
        let console = ConsoleDir::new(OBJECTS, &proxy.addr().to_string(), &token);
        let t0 = Instant::now();
        let job = console
            .engine()
            .sync_now(console.service, JobTrigger::Refresh)
            .await
            .unwrap();
        let took = t0.elapsed();
        // The job tells the truth: a failed operation is never "Completed".
        if job.counts.failed > 0 {
            assert_eq!(job.result, JobResult::Failed, "{:?}", job.errors);
        }
        // Nothing that took effect was sent again (the server would call it a conflict).
        let resent: Vec<&String> = job
            .errors
            .iter()
            .filter(|e| e.contains("already exists"))
            .collect();
        assert!(resent.is_empty(), "seed {seed}: sent again: {resent:?}");
        proxy.set_enabled(false);
        let outcome = settle(&console, &server, &token, expected).await;
        let injected: u64 = proxy.injected().values().sum();
        eprintln!(
            "seed {seed:>2}: {} requests, {injected} faults {:?}; faulty sync {} in {:.1} s; after the clean sync {outcome:?}",
            proxy.requests(),
            proxy.injected(),
            summary(&job),
            took.as_secs_f64()
        );
        if job.result == JobResult::Failed {
            eprintln!(
                "         errors: {:?}",
                &job.errors[..job.errors.len().min(3)]
            );
        }
        table.push((seed, outcome));
    }
    assert_clean(&table, "seed");
}

/// The command-line binary, as a scheduler would run it.
fn sync_command(dir: &Path) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_fabric-console"));
    c.args(backend::cli_args(dir))
        .arg("sync")
        .env("FABRIC_CONSOLE_SECRET_BACKEND", "file")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

/// 10 runs of `fabric-console sync` killed (SIGKILL) at a random point of a first sync, then
/// a clean sync by another process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_process_killed_anywhere_leaves_nothing_duplicated_or_lost() {
    let expected = reference_counts().await;
    // How long an unhurried sync takes here, to spread the kills over it.
    let whole = {
        let (_dir, server, token) = start_server().await;
        let console = ConsoleDir::new(OBJECTS, &server.addr().to_string(), &token);
        let t0 = Instant::now();
        let out = sync_command(console.path()).output().await.unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        t0.elapsed()
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let mut table = Vec::new();
    for run in 0..10u64 {
        let (_dir, server, token) = start_server().await;
        let console = ConsoleDir::new(OBJECTS, &server.addr().to_string(), &token);
        let at = whole.mul_f64(rng.random_range(0.05..0.95));
        let mut child = sync_command(console.path()).spawn().unwrap();
        let finished = tokio::time::timeout(at, child.wait()).await.is_ok();
        child.kill().await.ok();
        let outcome = settle(&console, &server, &token, expected).await;
        eprintln!(
            "run {run}: killed after {:.2} s of {:.2} s{}; after the clean sync {outcome:?}",
            at.as_secs_f64(),
            whole.as_secs_f64(),
            if finished { " (it had finished)" } else { "" }
        );
        table.push((run, outcome));
    }
    assert_clean(&table, "run");
}

/// Two `fabric-console sync` processes on one data directory at once: one syncs, the other
/// waits for it and then finds nothing to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sync_processes_on_one_data_directory_create_everything_once() {
    let expected = reference_counts().await;
    let (_dir, server, token) = start_server().await;
    let console = ConsoleDir::new(OBJECTS, &server.addr().to_string(), &token);
    let a = sync_command(console.path()).output();
    let b = sync_command(console.path()).output();
    let (a, b) = tokio::join!(a, b);
    let (a, b) = (a.unwrap(), b.unwrap());
    for out in [&a, &b] {
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let s = ipam(&server, &token).await;
    assert_eq!(duplicates(&s), 0);
    assert_eq!(counts(&s), expected);
    // Exactly one of them created the objects.
    let created = |out: &std::process::Output| {
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let n: usize = text
            .split("IPAM ")
            .nth(1)
            .and_then(|t| t.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no summary in {text}"));
        n
    };
    let (ca, cb) = (created(&a), created(&b));
    assert_eq!(
        ca.min(cb),
        0,
        "both processes created objects: {ca} and {cb}"
    );
    let waited = [&a, &b]
        .iter()
        .any(|o| String::from_utf8_lossy(&o.stderr).contains("Waiting: being synced by another"));
    assert!(waited, "neither said it waited for the other");
    let outcome = settle(&console, &server, &token, expected).await;
    assert_clean(&[(0, outcome)], "run");
}

/// Two engines of one process on one data directory (the console and a `sync` started from
/// it): the lease makes one wait for the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_on_one_data_directory_wait_for_each_other() {
    let expected = reference_counts().await;
    let (_dir, server, token) = start_server().await;
    let console = ConsoleDir::new(OBJECTS, &server.addr().to_string(), &token);
    let (e1, e2) = (console.engine(), console.engine());
    let mut watch = e2.watch();
    let s = console.service;
    let j1 = tokio::spawn({
        let e1 = e1.clone();
        async move { e1.sync_now(s, JobTrigger::Refresh).await.unwrap() }
    });
    // Start the second once the first is under way.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let j2 = tokio::spawn({
        let e2 = e2.clone();
        async move { e2.sync_now(s, JobTrigger::Refresh).await.unwrap() }
    });
    let mut saw_waiting = None;
    while !j2.is_finished() {
        if let Ok(Ok(())) = tokio::time::timeout(Duration::from_millis(100), watch.changed()).await
        {
            let snap = watch.borrow_and_update().clone();
            if let Some(fabric_console::sync::status::SyncState::Waiting(w)) =
                snap.statuses.get(&s).map(|st| st.state.clone())
            {
                saw_waiting = Some(w);
            }
        }
    }
    let (j1, j2) = (j1.await.unwrap(), j2.await.unwrap());
    assert_eq!(j1.result, JobResult::Succeeded, "{:?}", j1.errors);
    assert_eq!(j2.result, JobResult::Succeeded, "{:?}", j2.errors);
    assert_eq!(
        j2.counts.ipam_created, 0,
        "the second sync found it all done"
    );
    let waited = saw_waiting.expect("the second engine said it was waiting");
    assert!(
        waited.starts_with("being synced by another Fabric Console (pid"),
        "{waited}"
    );
    let s = ipam(&server, &token).await;
    assert_eq!((duplicates(&s), counts(&s)), (0, expected));
}

/// The console plans against what another process wrote to the store, never against its own
/// stale copy: an object a CLI import added and synced is not deleted by the console's sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_plans_against_what_another_process_wrote() {
    let (_dir, server, token) = start_server().await;
    let console = ConsoleDir::new(300, &server.addr().to_string(), &token);
    // The console: its own store and engine, synced once.
    let gui_store = backend::store(console.path());
    let gui = engine_over(&gui_store, &console.secrets, console.path());
    let first = gui
        .sync_now(console.service, JobTrigger::Refresh)
        .await
        .unwrap();
    assert_eq!(first.result, JobResult::Succeeded, "{:?}", first.errors);
    // Another process adds a logical network with a site and syncs it.
    let cli_store = backend::store(console.path());
    let f = cli_store.fabric();
    let group = f.root_host_group().unwrap().id;
    let ln = LogicalNetwork {
        id: Uuid::new_v4(),
        name: "Added elsewhere".into(),
        description: String::new(),
        isolation: LogicalNetworkIsolation::OneConnected,
    };
    let site = NetworkSite {
        id: Uuid::new_v4(),
        name: "Added elsewhere_0".into(),
        logical_network: ln.id,
        host_groups: [group].into_iter().collect(),
        subnets: vec![SubnetVlan {
            subnet: "192.168.77.0/24".parse().unwrap(),
            vlan: 0,
            secondary_vlan: None,
        }],
    };
    cli_store
        .apply(&[
            FabricChange::Put(FabricObject::LogicalNetwork(ln.clone())),
            FabricChange::Put(FabricObject::NetworkSite(site.clone())),
        ])
        .unwrap();
    let cli = engine_over(&cli_store, &console.secrets, console.path());
    let job = cli
        .sync_now(console.service, JobTrigger::Refresh)
        .await
        .unwrap();
    assert_eq!(job.counts.ipam_created, 2, "{job:?}");
    // The console syncs next: it must not take the new network for one deleted in the console.
    let job = gui
        .sync_now(console.service, JobTrigger::Refresh)
        .await
        .unwrap();
    assert_eq!(job.result, JobResult::Succeeded, "{:?}", job.errors);
    assert_eq!(job.counts.total_changes(), 0, "{job:?}");
    assert!(gui_store.fabric().logical_networks.contains_key(&ln.id));
    let s = ipam(&server, &token).await;
    assert!(s.spaces.iter().any(|x| x.vmm_id == Some(ln.id)));
    // And the console shows it without a sync, too: the engine watches the store.
    let mut fabric = gui_store.subscribe();
    let extra = LogicalNetwork {
        id: Uuid::new_v4(),
        name: "Added later".into(),
        ..ln
    };
    cli_store
        .apply(&[FabricChange::Put(FabricObject::LogicalNetwork(
            extra.clone(),
        ))])
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !fabric.borrow().logical_networks.contains_key(&extra.id) {
            fabric.changed().await.unwrap();
        }
    })
    .await
    .expect("the console's store reloads within a few seconds");
}

/// `sync --follow` as a team's sync worker runs it: it syncs at once, again moments after an
/// edit on the server, prints one line per job, and SIGTERM stops it cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_follow_syncs_on_server_changes_and_stops_on_sigterm() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let (_dir, server, token) = start_server().await;
    let console = ConsoleDir::new(300, &server.addr().to_string(), &token);
    let mut cmd = sync_command(console.path());
    cmd.arg("--follow");
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let next_line = async |lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>| {
        tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("a job line in time")
            .unwrap()
            .expect("the command still runs")
    };
    let first = next_line(&mut lines).await;
    assert!(first.contains("Refresh: Completed"), "{first}");

    // An administrator's edit on the server: the worker hears of it and syncs.
    let s = ipam(&server, &token).await;
    let subnet = s
        .subnets
        .iter()
        .find(|x| x.network_type == "Provider")
        .unwrap();
    let resp = set_vlan(&server, &token, subnet.id.as_ref(), 3999).await;
    assert!(resp.status().is_success());
    let line = loop {
        let l = next_line(&mut lines).await;
        if l.contains("IPAM change") {
            break l;
        }
    };
    assert!(line.contains("console +0 ~1 -0"), "{line}");

    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("stops in time")
        .unwrap();
    assert!(status.success(), "{status:?}");
    let mut err = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stderr.take().unwrap(), &mut err)
        .await
        .unwrap();
    assert!(
        err.contains("terminated: stopping after the current batch"),
        "{err}"
    );
}

/// `sync --dry-run` as a reviewer reads it: per object, the side that changes and each field
/// before → after; `--json` the same as a versioned document; `--detailed-exitcode` 2 while
/// anything would change and 0 once nothing would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_dry_run_lists_each_object_and_says_whether_anything_would_change() {
    let (_dir, server, token) = start_server().await;
    let console = ConsoleDir::new(60, &server.addr().to_string(), &token);
    let run = |args: &'static [&'static str]| {
        let mut c = sync_command(console.path());
        c.args(args);
        async move { c.output().await.unwrap() }
    };
    let plan_of = |out: &std::process::Output| -> serde_json::Value {
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
    };

    // Everything is still to be created on the server.
    let out = run(&["--dry-run", "--detailed-exitcode"]).await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("+ IPAM     Logical network \""), "{text}");
    let out = run(&["--dry-run", "--json", "--detailed-exitcode"]).await;
    assert_eq!(out.status.code(), Some(2));
    let doc = plan_of(&out);
    assert_eq!(doc["format"], "fabric-console.plan");
    assert_eq!(doc["version"], 1);
    let objects = doc["services"][0]["objects"].as_array().unwrap();
    assert!(!objects.is_empty());
    assert!(
        objects
            .iter()
            .all(|o| o["side"] == "ipam" && o["action"] == "create"),
        "{objects:?}"
    );
    // Nothing was sent by the previews.
    assert_eq!(ipam(&server, &token).await.subnets.len(), 0);

    let out = run(&[]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["--dry-run", "--json", "--detailed-exitcode"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        plan_of(&out)["services"][0]["objects"],
        serde_json::json!([])
    );

    // A VLAN edited on the server: the console's subnet changes, from its value to the server's.
    let subnet = ipam(&server, &token)
        .await
        .subnets
        .into_iter()
        .find(|s| s.vmm_id.is_some() && s.vlan != 3999)
        .expect("a site subnet with a VLAN");
    let before = subnet.vlan;
    let resp = set_vlan(&server, &token, subnet.id.as_ref(), 3999).await;
    assert!(resp.status().is_success());
    let out = run(&["--dry-run", "--json", "--detailed-exitcode"]).await;
    assert_eq!(out.status.code(), Some(2));
    let doc = plan_of(&out);
    let objects = doc["services"][0]["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 1, "{objects:?}");
    assert_eq!(objects[0]["side"], "console");
    assert_eq!(objects[0]["action"], "update");
    assert_eq!(
        objects[0]["fields"],
        serde_json::json!([{ "field": "VLAN", "before": before.to_string(), "after": "3999" }])
    );
    let out = run(&["--dry-run"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("      VLAN: {before} → 3999")),
        "{text}"
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "no --detailed-exitcode: success"
    );

    // The review flags need --dry-run.
    assert_eq!(run(&["--json"]).await.status.code(), Some(2));
}
