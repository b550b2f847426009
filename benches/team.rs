//! A team's shared fabric, PostgreSQL against SQLite: the time to import and to open (load) a
//! fabric of 100k objects, the time a save takes to reach another console's store, and a lease
//! takeover after its holder's process is killed.
//!
//! `cargo bench --bench team` (needs `FABRIC_CONSOLE_TEST_POSTGRES`, see scripts/postgres.sh);
//! `cargo test --all-targets` runs it once on 1k objects.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fabric_console::db::postgres::{self, TestDatabase};
use fabric_console::db::{Location, PgTarget};
use fabric_console::fabric::demo::demo_fabric;
use fabric_console::fabric::model::{FabricChange, FabricObject};
use fabric_console::fabric::store::FabricStore;
use fabric_console::sync::lease::{Acquire, Holder, LeaseProvider, PgLeases};

const HOLD_ENV: &str = "TEAM_BENCH_HOLD";

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    // Child side of the takeover: hold a service's lease until killed.
    if let Ok(spec) = std::env::var(HOLD_ENV) {
        let (url, service) = spec.split_once(' ').unwrap();
        let leases = PgLeases::new(PgTarget::parse(url).unwrap());
        let service = service.parse().unwrap();
        let Ok(Acquire::Granted(_lease)) =
            leases.try_acquire(service, &Holder::this_process("team bench"))
        else {
            panic!("the lease was not free (the parent released it before starting this)");
        };
        println!("held");
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    let full = std::env::args().any(|a| a == "--bench");
    let size = if full { 100_000 } else { 1_000 };
    let Some(admin) = postgres::test_target() else {
        return;
    };
    let fabric = demo_fabric(size, 1);
    let objects = fabric.object_count();
    println!("team: a fabric of {objects} objects");

    // Import, then open (load) in a fresh store, three times.
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::create(&admin, "bench").unwrap();
    let places = [
        ("SQLite", Location::Sqlite(dir.path().to_path_buf())),
        ("PostgreSQL", Location::Postgres(db.target().clone())),
    ];
    for (name, location) in &places {
        let store = FabricStore::open_at(location, false).unwrap();
        let t = Instant::now();
        store.replace_all(fabric.clone()).unwrap();
        let import = t.elapsed();
        drop(store);
        let loads: Vec<Duration> = (0..3)
            .map(|_| {
                let t = Instant::now();
                let store = FabricStore::open_at(location, false).unwrap();
                assert_eq!(store.fabric().object_count(), objects);
                t.elapsed()
            })
            .collect();
        println!(
            "  {name:<10} import {}, open+load median {} (of 3)",
            ms(import),
            ms(median(loads))
        );
    }

    // A save in one console's store, seen by another's (LISTEN/NOTIFY, then its refresh).
    let location = &places[1].1;
    let a = FabricStore::open_at(location, false).unwrap();
    let b = FabricStore::open_at(location, false).unwrap();
    let mut heard = b.commits_announced().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (mut saved, mut seen, mut reached) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..10 {
        heard.borrow_and_update();
        let mut g = a
            .fabric()
            .host_groups
            .values()
            .find(|g| g.parent.is_some())
            .unwrap()
            .clone();
        g.name = format!("Renamed {i}");
        let t = Instant::now();
        a.apply(&[FabricChange::Put(FabricObject::HostGroup(g.clone()))])
            .unwrap();
        saved.push(t.elapsed());
        runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), heard.changed())
                .await
                .expect("announced")
                .unwrap()
        });
        seen.push(t.elapsed());
        b.refresh().unwrap();
        reached.push(t.elapsed());
        assert_eq!(b.fabric().host_groups[&g.id].name, g.name);
    }
    println!(
        "  a save on PostgreSQL: saved {}, heard by the other console {}, its fabric reloaded {} (medians of 10, from OK)",
        ms(median(saved)),
        ms(median(seen)),
        ms(median(reached))
    );

    // Takeover: a process holding a service's lease is killed; how soon another gets it.
    let leases = PgLeases::new(db.target().clone());
    let service = uuid::Uuid::new_v4();
    let mut times = Vec::new();
    for _ in 0..5 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(HOLD_ENV, format!("{} {service}", db.target()))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "held");
        let me = Holder::this_process("team bench");
        assert!(matches!(
            leases.try_acquire(service, &me).unwrap(),
            Acquire::Held(Some(_))
        ));
        let t = Instant::now();
        child.kill().unwrap();
        let _ = child.wait();
        let lease = loop {
            if let Acquire::Granted(l) = leases.try_acquire(service, &me).unwrap() {
                break l;
            }
            assert!(t.elapsed() < Duration::from_secs(30), "no takeover");
            std::thread::sleep(Duration::from_millis(5));
        };
        times.push(t.elapsed());
        drop(lease);
    }
    println!(
        "  takeover after the holder is killed: the lease is free again after median {} (of 5); an engine waiting for it looks every 250 ms",
        ms(median(times))
    );
}
