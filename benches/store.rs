//! Fabric store figures: open + load time and memory for 1k and 100k objects, whole-fabric
//! validation time, and the cost of one small write on a large fabric.
//!
//! Memory is measured in a fresh child process (this binary re-run with `STORE_BENCH_LOAD=<db>`) so
//! the figures cover loading alone, not the demo generation that prepares the database.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group};
use fabric_console::fabric::demo::demo_fabric;
use fabric_console::fabric::model::{FabricChange, FabricObject};
use fabric_console::fabric::store::FabricStore;
use fabric_console::fabric::validate::validate_fabric;

const SIZES: [usize; 2] = [1_000, 100_000];
const LOAD_ENV: &str = "STORE_BENCH_LOAD";

/// (VmRSS, VmHWM) of this process in KiB, from /proc (Linux).
fn memory_kib() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Child side: open and load one database, then report time and memory on stdout.
fn measure_load(path: &Path) {
    let before = memory_kib();
    let started = Instant::now();
    let store = match FabricStore::open(path) {
        Ok(s) => s,
        Err(e) => {
            println!("load failed: {e}");
            return;
        }
    };
    let fabric = store.fabric();
    let elapsed = started.elapsed();
    let after = memory_kib();
    match (before, after) {
        (Some((rss0, _)), Some((rss1, hwm1))) => println!(
            "{} objects: open+load {:.1} ms, RSS {:.1} MiB -> {:.1} MiB (+{:.1} MiB), peak (VmHWM) {:.1} MiB",
            fabric.object_count(),
            elapsed.as_secs_f64() * 1000.0,
            rss0 as f64 / 1024.0,
            rss1 as f64 / 1024.0,
            rss1.saturating_sub(rss0) as f64 / 1024.0,
            hwm1 as f64 / 1024.0
        ),
        _ => println!(
            "{} objects: open+load {:.1} ms (memory figures need /proc)",
            fabric.object_count(),
            elapsed.as_secs_f64() * 1000.0
        ),
    }
}

fn prepare(dir: &Path, size: usize) -> PathBuf {
    let path = dir.join(format!("fabric-{size}.db"));
    let store = FabricStore::open(&path).expect("bench database opens");
    store
        .replace_all(demo_fabric(size, 1))
        .expect("the demo fabric is valid");
    path
}

fn report_memory(databases: &[(usize, PathBuf)]) {
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    for (_, path) in databases {
        match Command::new(&exe).env(LOAD_ENV, path).output() {
            Ok(out) => print!("store memory: {}", String::from_utf8_lossy(&out.stdout)),
            Err(e) => println!("store memory: child failed: {e}"),
        }
    }
}

/// `cargo bench` passes `--bench`; under `cargo test` each benchmark runs once, so keep it small.
fn measuring() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn store_benches(c: &mut Criterion) {
    let sizes: &[usize] = if measuring() { &SIZES } else { &SIZES[..1] };
    let dir = tempfile::tempdir().expect("temp dir");
    let databases: Vec<(usize, PathBuf)> =
        sizes.iter().map(|&n| (n, prepare(dir.path(), n))).collect();
    if !measuring() {
        store_groups(c, &databases, sizes);
        return;
    }
    report_memory(&databases);
    // The demo promises a valid fabric up to 200k objects; check the top end once.
    let started = Instant::now();
    let largest = demo_fabric(200_000, 1);
    let generated = started.elapsed();
    let problems = validate_fabric(&largest);
    assert!(problems.is_empty(), "demo 200k: {:?}", problems.first());
    println!(
        "demo 200000: generated {} objects in {:.0} ms, valid",
        largest.object_count(),
        generated.as_secs_f64() * 1000.0
    );
    drop(largest);
    store_groups(c, &databases, sizes);
}

fn store_groups(c: &mut Criterion, databases: &[(usize, PathBuf)], sizes: &[usize]) {
    let mut group = c.benchmark_group("store_open_load");
    group.sample_size(10);
    for (n, path) in databases {
        group.bench_with_input(BenchmarkId::from_parameter(n), path, |b, path| {
            b.iter(|| {
                let store = FabricStore::open(path).expect("opens");
                black_box(store.fabric().object_count())
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("validate_fabric");
    group.sample_size(10);
    for &n in sizes {
        let fabric = demo_fabric(n, 1);
        group.bench_with_input(BenchmarkId::from_parameter(n), &fabric, |b, f| {
            b.iter(|| {
                let problems = validate_fabric(f);
                assert!(problems.is_empty());
                black_box(problems.len())
            })
        });
    }
    group.finish();

    // One pool description change: clone + validate the whole fabric + one-row transaction.
    let mut group = c.benchmark_group("store_apply_one_change");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    for (n, path) in databases {
        let store = FabricStore::open(path).expect("opens");
        let mut pool = store
            .fabric()
            .ip_pools
            .values()
            .next()
            .cloned()
            .expect("the demo has pools");
        let mut flip = false;
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                flip = !flip;
                pool.description = if flip { "web farm" } else { "" }.to_string();
                store
                    .apply(&[FabricChange::Put(FabricObject::IpPool(pool.clone()))])
                    .expect("a valid change is saved")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, store_benches);

fn main() {
    if let Some(path) = std::env::var_os(LOAD_ENV) {
        measure_load(Path::new(&path));
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
