//! The side-by-side view of a 100 000-object fabric: building its element tree for one frame
//! (only the visible slice of rows is built), with and without layout, and the memory the
//! comparison and one frame take. Goal: a frame in well under 16 ms.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use fabric_console::fabric::connection::ConnectionString;
use fabric_console::fabric::demo::demo_fabric;
use fabric_console::fabric::model::*;
use fabric_console::ipam::model::{IpamOp, IpamSnapshot};
use fabric_console::sync::compare::{RowStatus, compare};
use fabric_console::sync::normal::BaseState;
use fabric_console::sync::{PlanInput, agreed_base, plan};
use fabric_console::ui::screen::compare::{CompareScreen, Loaded, Message};
use iced::{Element, Settings, Size};

/// Counts live and peak heap bytes, so memory is measured, not guessed.
struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// `cargo test --all-targets` runs benchmarks once as a smoke test: keep that small.
fn measuring() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / 1048576.0
}

fn service(f: &Fabric) -> NetworkService {
    NetworkService {
        id: uuid::Uuid::new_v4(),
        name: "IPAM Server 1".into(),
        description: String::new(),
        category: ServiceCategory::NetworkManager,
        manufacturer: "Fabric Console".into(),
        model: "Fabric Console IPAM Server".into(),
        connection: ConnectionString::parse("127.0.0.1:1").unwrap(),
        run_as: f.run_as_accounts.keys().next().copied().unwrap_or_default(),
        provider: fabric_console::ipam::builtin::PROVIDER_ID.into(),
        scope: HostGroupScope::All,
        sync_interval_secs: 300,
        tls_fingerprint: None,
        tls_ca_file: None,
        allow_cleartext: false,
        event_source: None,
        sync_on_change: true,
    }
}

/// What the IPAM server holds after a first sync: the plan's creates, applied.
fn simulate(snap: &mut IpamSnapshot, ops: &[IpamOp]) {
    for op in ops {
        match op {
            IpamOp::CreateSpace(s) | IpamOp::UpdateSpace(s) => snap.spaces.push(s.clone()),
            IpamOp::CreateSubnet(s) | IpamOp::UpdateSubnet(s) => snap.subnets.push(s.clone()),
            IpamOp::CreateRange(r) | IpamOp::UpdateRange(r) => snap.ranges.push(r.clone()),
            _ => {}
        }
    }
}

/// A screen over the comparison of a fabric with an IPAM snapshot equal to it.
fn screen(size: usize) -> CompareScreen {
    let fabric = demo_fabric(size, 42);
    let svc = service(&fabric);
    let none = BTreeMap::new();
    let base0 = BaseState::default();
    let empty = IpamSnapshot::default();
    let first = plan(&PlanInput {
        fabric: &fabric,
        service: &svc,
        ipam: &empty,
        ipam_complete: true,
        base: &base0,
        resolutions: &none,
    });
    let mut ipam = IpamSnapshot::default();
    simulate(&mut ipam, &first.ipam_ops);
    let base = agreed_base(&fabric, &svc, &ipam, &base0);
    let steady = plan(&PlanInput {
        fabric: &fabric,
        service: &svc,
        ipam: &ipam,
        ipam_complete: true,
        base: &base,
        resolutions: &none,
    });
    assert!(
        steady.is_noop(),
        "the simulated IPAM server equals the fabric"
    );
    let before = LIVE.load(Ordering::Relaxed);
    let t = Instant::now();
    let view = compare(&fabric, &svc, &ipam, &base, &steady);
    let built = t.elapsed();
    let held = LIVE.load(Ordering::Relaxed).saturating_sub(before);
    // A site without subnets has nothing to carry it on the IPAM server: "Only in console".
    let odd: Vec<_> = view
        .rows
        .iter()
        .filter(|r| r.status != RowStatus::InSync)
        .filter(|r| {
            !fabric
                .network_sites
                .get(&r.object)
                .is_some_and(|s| s.subnets.is_empty())
        })
        .take(3)
        .collect();
    assert!(odd.is_empty(), "{:?} {odd:#?}", view.counts);
    println!(
        "compare_view: {} fabric objects -> {} rows ({:?}); comparison built once in {:?}, holds {:.1} MiB",
        fabric.object_count(),
        view.rows.len(),
        view.counts,
        built,
        mib(held)
    );
    let mut s = CompareScreen::ready(
        svc.id,
        svc.name.clone(),
        Arc::new(Loaded { view, plan: steady }),
    );
    s.set_viewport(0.0, 520.0);
    s
}

/// One frame's element tree, built and dropped.
fn frame(screen: &CompareScreen) {
    let element: Element<'_, Message> = screen.view();
    std::hint::black_box(&element);
}

fn view_benches(c: &mut Criterion) {
    let size = if measuring() { 100_000 } else { 2_000 };
    let mut s = screen(size);
    let rows = s.rows().len();
    let row_height = fabric_console::ui::screen::compare::ROW_HEIGHT;

    let mut g = c.benchmark_group("compare_view");
    g.sample_size(if measuring() { 100 } else { 10 })
        .measurement_time(Duration::from_secs(if measuring() { 5 } else { 1 }))
        .warm_up_time(Duration::from_millis(if measuring() { 1000 } else { 100 }));

    for (label, offset) in [
        ("top", 0.0),
        ("middle", rows as f32 / 2.0 * row_height),
        ("end", rows as f32 * row_height),
    ] {
        s.set_viewport(offset, 520.0);
        let before = LIVE.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        let t = Instant::now();
        frame(&s);
        let once = t.elapsed();
        println!(
            "compare_view: {rows} rows, frame scrolled to the {label}: view built in {once:?}, peak heap of the frame {:.1} KiB",
            (PEAK.load(Ordering::Relaxed) - before) as f64 / 1024.0
        );
        g.bench_function(format!("view_{rows}_rows_{label}"), |b| {
            b.iter(|| frame(&s))
        });
    }

    // A row selected (the details pane is built too) and a search that keeps every row.
    s.set_viewport(rows as f32 / 3.0 * row_height, 520.0);
    let pick = s.visible_rows().get(rows / 3 + 2).copied().unwrap_or(0);
    let store = fabric_console::fabric::store::FabricStore::open_in_memory().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let engine = rt.block_on(async {
        let ctx = fabric_console::sync::engine::EngineContext::new(
            store.clone(),
            Arc::new(fabric_console::fabric::secrets::MemorySecretStore::default()),
            Arc::new(fabric_console::ipam::registry::ProviderRegistry::default_registry()),
            None,
        );
        fabric_console::sync::engine::Engine::start(ctx).unwrap()
    });
    let fabric = Fabric::new();
    let ctx = fabric_console::ui::screen::compare::Context {
        fabric: &fabric,
        store: &store,
        engine: &engine,
    };
    let _ = s.update(Message::Select(pick), ctx);
    g.bench_function(format!("view_{rows}_rows_selected"), |b| {
        b.iter(|| frame(&s))
    });
    let t = Instant::now();
    let _ = s.update(Message::Search("10.".into()), ctx);
    println!(
        "compare_view: search over {rows} rows (one keystroke, filter only) took {:?}, {} rows match",
        t.elapsed(),
        s.visible_rows().len()
    );
    g.bench_function(format!("view_{rows}_rows_searched"), |b| {
        b.iter(|| frame(&s))
    });

    // View and layout together, as a redraw does (iced_test's headless renderer).
    let _ = s.update(Message::Search(String::new()), ctx);
    s.set_viewport(rows as f32 / 2.0 * row_height, 520.0);
    let window = Size::new(1030.0, 760.0);
    let t = Instant::now();
    let ui = iced_test::Simulator::with_size(Settings::default(), window, s.view());
    println!(
        "compare_view: first view + layout (fonts loaded) {:?}",
        t.elapsed()
    );
    drop(ui);
    g.bench_function(format!("view_and_layout_{rows}_rows"), |b| {
        b.iter(|| {
            let ui = iced_test::Simulator::with_size(Settings::default(), window, s.view());
            std::hint::black_box(&ui);
        })
    });
    g.finish();
}

criterion_group!(benches, view_benches);
criterion_main!(benches);
