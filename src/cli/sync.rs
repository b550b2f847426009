//! `sync` and `demo --with-ipam`: syncs run headless, progress on stderr, summaries on stdout.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use super::service::service_error;
use super::{fail, runtime};
use crate::fabric::model::NetworkService;
use crate::fabric::secrets::open_secret_store;
use crate::fabric::store::FabricStore;
use crate::ipam::registry::ProviderRegistry;
use crate::ops::boot::{Runner, start_demo_ipam, start_engine};
use crate::paths::DataPaths;
use crate::sync::engine::EngineHandle;
use crate::sync::plan::Side;
use crate::sync::status::{EngineEvent, JobResult, JobTrigger, SyncState};

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Sync only this network service (default: all).
    #[arg(long)]
    pub service: Option<String>,
    /// Print the plan without applying it: per object, the side that changes and each field's
    /// value before → after.
    #[arg(long = "dry-run", conflicts_with = "follow")]
    pub dry_run: bool,
    /// With --dry-run: print the plan as a JSON document (format "fabric-console.plan",
    /// version 1) on standard output.
    #[arg(long, requires = "dry_run")]
    pub json: bool,
    /// With --dry-run: exit 0 when nothing would change, 2 when something would (or waits for a
    /// decision), 1 on error.
    #[arg(long = "detailed-exitcode", requires = "dry_run")]
    pub detailed_exitcode: bool,
    /// Keep running without a window: sync each service when its IPAM server reports a change
    /// and at its interval, one line per job, until interrupted (Ctrl+C, SIGTERM).
    #[arg(long)]
    pub follow: bool,
}

pub(super) fn run(paths: &DataPaths, args: SyncArgs) -> ExitCode {
    // Only the directory is read up front: a sync with nothing to do never reads the rest.
    let store = match crate::ops::boot::open_store_lazily(paths) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let rt = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let secrets = open_secret_store(&paths.data_dir);
    rt.block_on(async move {
        let f = store.directory();
        let services: Vec<NetworkService> = match &args.service {
            Some(n) => match crate::ops::service::find(&f, n) {
                Ok(s) => vec![s],
                Err(e) => return fail(service_error(&e)),
            },
            None => f.network_services.values().cloned().collect(),
        };
        if services.is_empty() {
            return fail(
                "there is no network service to sync; add one with `fabric-console service add`",
            );
        }
        let registry = Arc::new(ProviderRegistry::default_registry());
        let runner = if args.follow {
            Runner::Follow(
                args.service
                    .is_some()
                    .then(|| services.iter().map(|s| s.id).collect()),
            )
        } else {
            Runner::Command("fabric-console sync")
        };
        let engine = match start_engine(paths, &store, secrets, registry, runner) {
            Ok(e) => e,
            Err(e) => return fail(e),
        };
        if args.follow {
            return follow(&engine, &services).await;
        }
        if args.dry_run {
            review_services(&engine, &services, args.json, args.detailed_exitcode).await
        } else {
            sync_services(&engine, &services).await
        }
    })
}

/// `sync --follow`: one line per job on stdout, until SIGINT or SIGTERM; then running syncs
/// stop after their current batch and the command exits.
async fn follow(engine: &EngineHandle, services: &[NetworkService]) -> ExitCode {
    let names: std::collections::BTreeMap<_, _> =
        services.iter().map(|s| (s.id, s.name.clone())).collect();
    let mut events = engine.subscribe();
    eprintln!(
        "Following {} network service(s): {}. Stop with Ctrl+C.",
        names.len(),
        names.values().cloned().collect::<Vec<_>>().join(", ")
    );
    for s in services {
        engine.send(crate::sync::status::EngineCommand::RefreshNow {
            service: s.id,
            trigger: JobTrigger::Refresh,
        });
    }
    let printer_names = names.clone();
    let printer = tokio::spawn(async move {
        let names = printer_names;
        let mut updates: std::collections::HashMap<_, String> = Default::default();
        loop {
            match events.recv().await {
                Ok(EngineEvent::Finished { job, .. }) => println!("{}", job_line(&job)),
                Ok(EngineEvent::StatusChanged(s)) => {
                    let label = match &s.updates {
                        crate::sync::status::Updates::Live { .. } => {
                            "live: the server reports each change".to_string()
                        }
                        crate::sync::status::Updates::Polling(why) => format!("polling: {why}"),
                        crate::sync::status::Updates::Unknown => continue,
                    };
                    if updates.get(&s.service) != Some(&label) {
                        let name = names.get(&s.service).cloned().unwrap_or_default();
                        eprintln!("{name}: {label}");
                        updates.insert(s.service, label);
                    }
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => break,
            }
        }
    });
    let signal = stop_signal().await;
    eprintln!("{signal}: stopping after the current batch…");
    for s in services {
        engine.send(crate::sync::status::EngineCommand::Cancel { service: s.id });
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while tokio::time::Instant::now() < deadline
        && engine
            .statuses()
            .values()
            .any(|s| matches!(s.state, SyncState::Syncing { .. } | SyncState::Waiting(_)))
    {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    printer.abort();
    ExitCode::SUCCESS
}

/// Waits for SIGINT or SIGTERM and names it.
async fn stop_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return "interrupted",
                _ = term.recv() => return "terminated",
            }
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    "interrupted"
}

/// "2026-12-03 23:30:01 ipam1 IPAM change: Completed — IPAM +0 ~0 -0 · console +0 ~1 -0 (42 ms)".
fn job_line(job: &crate::sync::status::JobRecord) -> String {
    let ms = job
        .finished
        .map(|f| (f - job.started).num_milliseconds().max(0))
        .unwrap_or(0);
    let mut line = format!(
        "{} {} {}: {} — {} ({ms} ms)",
        job.started
            .with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M:%S"),
        job.service_name,
        job.trigger.label(),
        job.result.label(),
        job.counts.changes(" · "),
    );
    if let Some(e) = job.errors.first() {
        line.push_str(&format!("; {e}"));
    }
    line
}

/// The plan of each service without applying it: per object and field as text, or as the JSON
/// document. With `detailed`, the exit code says whether anything would change (2) or not (0).
async fn review_services(
    engine: &EngineHandle,
    services: &[NetworkService],
    json: bool,
    detailed: bool,
) -> ExitCode {
    use crate::sync::review::{PlanDocument, ServicePlan, review, text_lines};
    let mut failed = false;
    let mut changes = false;
    let mut entries = Vec::new();
    for s in services {
        match engine.compare(s.id).await {
            Ok((view, plan)) => {
                let r = review(&s.name, &view, &plan);
                changes |= r.has_changes();
                if !json {
                    println!("Plan for \"{}\":", s.name);
                    print_summary(&plan.summary);
                    for line in text_lines(&r) {
                        println!("{line}");
                    }
                }
                entries.push(ServicePlan {
                    service: s.name.clone(),
                    error: None,
                    objects: r.objects,
                });
            }
            Err(e) => {
                failed = true;
                eprintln!("error: {}: {e}", s.name);
                entries.push(ServicePlan {
                    service: s.name.clone(),
                    error: Some(e),
                    objects: Vec::new(),
                });
            }
        }
    }
    if json {
        match serde_json::to_string_pretty(&PlanDocument::new(entries)) {
            Ok(text) => println!("{text}"),
            Err(e) => return fail(format!("the plan could not be written as JSON: {e}")),
        }
    }
    match (failed, detailed && changes) {
        (true, _) => ExitCode::FAILURE,
        (false, true) => ExitCode::from(2),
        (false, false) => ExitCode::SUCCESS,
    }
}

/// Sync each service, printing progress to stderr and a summary to stdout.
async fn sync_services(engine: &EngineHandle, services: &[NetworkService]) -> ExitCode {
    let mut ok = true;
    for s in services {
        let mut events = engine.subscribe();
        let id = s.id;
        let printer = tokio::spawn(async move {
            let mut last = String::new();
            while let Ok(e) = events.recv().await {
                match e {
                    EngineEvent::Progress {
                        service,
                        stage,
                        done,
                        total,
                    } if service == id => {
                        let line = if total > 0 {
                            format!("{}: {done}/{total}", stage.label())
                        } else {
                            stage.label().to_string()
                        };
                        if line != last {
                            eprintln!("  {line}");
                            last = line;
                        }
                    }
                    EngineEvent::StatusChanged(status) if status.service == id => {
                        if let SyncState::Waiting(who) = &status.state {
                            let line = format!("Waiting: {who}");
                            if line != last {
                                eprintln!("  {line}");
                                last = line;
                            }
                        }
                    }
                    EngineEvent::Finished { service, .. } if service == id => break,
                    _ => {}
                }
            }
        });
        eprintln!("Syncing \"{}\" ({})…", s.name, s.connection);
        let job = engine.sync_now(s.id, JobTrigger::Refresh).await;
        let _ = printer.await;
        match job {
            Ok(job) => {
                let c = &job.counts;
                println!(
                    "{}: {} — IPAM {} created, {} updated, {} deleted; console {} created, {} updated, {} deleted; {} conflict(s), {} failed",
                    s.name,
                    job.result.label(),
                    c.ipam_created,
                    c.ipam_updated,
                    c.ipam_deleted,
                    c.console_created,
                    c.console_updated,
                    c.console_deleted,
                    c.conflicts,
                    c.failed
                );
                for e in &job.errors {
                    println!("  {e}");
                }
                for n in &job.notices {
                    println!("  note: {n}");
                }
                if job.result == JobResult::Failed || job.result == JobResult::Canceled {
                    ok = false;
                }
            }
            Err(e) => {
                ok = false;
                eprintln!("error: {}: {e}", s.name);
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_summary(summary: &crate::sync::plan::PlanSummary) {
    if summary.is_empty() {
        println!("  nothing to change");
    }
    for side in [Side::Ipam, Side::Console] {
        for (
            (s, kind),
            crate::sync::plan::Counts {
                create: c,
                update: u,
                delete: d,
            },
        ) in &summary.counts
        {
            if *s == side {
                let where_ = if side == Side::Ipam {
                    "IPAM"
                } else {
                    "console"
                };
                println!("  {where_:<8} {kind:<32} create {c:>6}  update {u:>6}  delete {d:>6}");
            }
        }
    }
    if summary.conflicts > 0 {
        println!("  {} conflict(s) need a decision", summary.conflicts);
    }
    if summary.orphans > 0 {
        println!("  {} orphaned logical network(s)", summary.orphans);
    }
}

/// `demo --with-ipam`: start the built-in IPAM server in-process, add it as a network service,
/// sync the demo fabric to it, refresh once more, and stop.
pub(super) fn demo_with_ipam(paths: &DataPaths, store: &FabricStore) -> ExitCode {
    let rt = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let secrets = open_secret_store(&paths.data_dir);
    rt.block_on(async move {
        let demo = match start_demo_ipam(paths, store, secrets).await {
            Ok(d) => d,
            Err(e) => return fail(e.detail()),
        };
        let (server, service, engine) = (demo.server, demo.service, demo.engine);
        println!(
            "Built-in IPAM server running in-process at {}.",
            server.base_url()
        );
        let code = sync_services(&engine, std::slice::from_ref(&service)).await;
        let before = server.request_count();
        let code2 = sync_services(&engine, std::slice::from_ref(&service)).await;
        println!(
            "The refresh after it made {} HTTP request(s).",
            server.request_count() - before
        );
        server.shutdown().await;
        // The server is gone with this process: remove the service that pointed at it.
        let _ = crate::ops::service::remove(store, &engine, service.id).await;
        if code == ExitCode::SUCCESS && code2 == ExitCode::SUCCESS {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    })
}
