//! Headless administration for scripts: network services, Run As accounts, and sync.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use uuid::Uuid;

use crate::fabric::connection::ConnectionString;
use crate::fabric::model::*;
use crate::fabric::secrets::{SecretStore, open_secret_store};
use crate::fabric::store::FabricStore;
use crate::ipam::provider::{Credentials, ProviderConfig, TestOutcome};
use crate::ipam::registry::ProviderRegistry;
use crate::paths::DataPaths;
use crate::sync::engine::{Engine, EngineContext, EngineHandle, format_skew};
use crate::sync::plan::Side;
use crate::sync::status::{EngineEvent, JobResult, JobTrigger, SyncState};

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Add an IPAM server as a network service (the Add Network Service wizard, headless).
    Add(ServiceAddArgs),
    /// List network services with their sync status.
    List,
    /// Run the provider's Test against a network service.
    Test {
        /// The network service's name.
        name: String,
    },
    /// Remove a network service (the fabric is kept).
    Remove { name: String },
}

#[derive(Debug, Args)]
pub struct ServiceAddArgs {
    #[arg(long)]
    pub name: String,
    #[arg(long, default_value = "")]
    pub description: String,
    /// The model, e.g. "Fabric Console IPAM Server" or "Nautobot" (see Settings ▸ Configuration Providers).
    #[arg(long)]
    pub model: String,
    /// FQDN or FQDN:port of the IPAM server (http:// or https:// may prefix it).
    #[arg(long)]
    pub connection: String,
    /// Name of the Run As account whose password or token is used.
    #[arg(long = "run-as")]
    pub run_as: String,
    /// Host group names or paths ("All Hosts/Seattle"); repeat for several.
    #[arg(long = "host-group")]
    pub host_groups: Vec<String>,
    /// Integrate every host group.
    #[arg(long = "all-host-groups", conflicts_with = "host_groups")]
    pub all_host_groups: bool,
    /// Seconds between background syncs.
    #[arg(long, default_value_t = 300)]
    pub interval: u64,
    /// SHA-256 fingerprint of the server's TLS certificate, to accept a self-signed one.
    #[arg(long = "tls-fingerprint")]
    pub tls_fingerprint: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum RunAsCommand {
    /// Add a Run As account. The password or token is read from standard input, or from --secret-file.
    Add {
        #[arg(long)]
        name: String,
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "")]
        description: String,
        /// A file holding the password or token (never pass a secret on the command line).
        #[arg(long = "secret-file")]
        secret_file: Option<PathBuf>,
    },
    /// List Run As accounts (never their secrets).
    List,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Sync only this network service (default: all).
    #[arg(long)]
    pub service: Option<String>,
    /// Print the plan without applying it.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::FAILURE
}

fn open_store(paths: &DataPaths) -> Result<FabricStore, String> {
    FabricStore::open(&paths.fabric_db()).map_err(|e| e.to_string())
}

fn find_service(f: &Fabric, name: &str) -> Result<NetworkService, String> {
    f.network_services
        .values()
        .find(|s| s.name.eq_ignore_ascii_case(name))
        .cloned()
        .ok_or_else(|| {
            let names: Vec<&str> = f
                .network_services
                .values()
                .map(|s| s.name.as_str())
                .collect();
            format!(
                "--service: no network service named \"{name}\" (known: {})",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            )
        })
}

/// A host group by name ("Seattle") or path ("All Hosts/Seattle").
pub fn find_host_group(f: &Fabric, wanted: &str) -> Result<Id, String> {
    let w = wanted.trim().trim_matches('/');
    let by_path: Vec<Id> = f
        .host_groups
        .keys()
        .filter(|id| f.host_group_path(**id).eq_ignore_ascii_case(w))
        .copied()
        .collect();
    if let [one] = by_path.as_slice() {
        return Ok(*one);
    }
    let by_name: Vec<Id> = f
        .host_groups
        .values()
        .filter(|g| g.name.eq_ignore_ascii_case(w))
        .map(|g| g.id)
        .collect();
    match by_name.as_slice() {
        [one] => Ok(*one),
        [] => Err(format!("--host-group: no host group named \"{wanted}\"")),
        _ => Err(format!(
            "--host-group: \"{wanted}\" names several host groups; give its path, e.g. \"All Hosts/.../{wanted}\""
        )),
    }
}

pub fn service(paths: &DataPaths, cmd: ServiceCommand) -> ExitCode {
    let store = match open_store(paths) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let registry = ProviderRegistry::default_registry();
    match cmd {
        ServiceCommand::Add(a) => match service_add(&store, &registry, a) {
            Ok(s) => {
                println!("Added network service \"{}\" ({}).", s.name, s.connection);
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
        ServiceCommand::List => {
            let f = store.fabric();
            let db = crate::sync::journal::SyncDb::open(&paths.sync_db()).ok();
            println!(
                "{:<24} {:<30} {:<32} {:<14} {:<26} SKEW",
                "NAME", "MODEL", "CONNECTION STRING", "STATUS", "LAST SYNC"
            );
            for s in f.network_services.values() {
                let st = db.as_ref().and_then(|d| d.status(s.id).ok().flatten());
                let state = st
                    .as_ref()
                    .map(|x| short_state(&x.state))
                    .unwrap_or("Never synced");
                let last = st
                    .as_ref()
                    .and_then(|x| x.last_end)
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_else(|| "—".into());
                let skew = st
                    .as_ref()
                    .and_then(|x| x.skew_ms)
                    .map(format_skew)
                    .unwrap_or_else(|| "—".into());
                println!(
                    "{:<24} {:<30} {:<32} {:<14} {:<26} {skew}",
                    s.name,
                    s.model,
                    s.connection.to_string(),
                    state,
                    last
                );
            }
            ExitCode::SUCCESS
        }
        ServiceCommand::Test { name } => {
            let f = store.fabric();
            let s = match find_service(&f, &name) {
                Ok(s) => s,
                Err(e) => return fail(e),
            };
            let secrets = open_secret_store(&paths.data_dir);
            let rt = match tokio::runtime::Runtime::new() {
                Ok(r) => r,
                Err(e) => return fail(e),
            };
            rt.block_on(async move {
                let config = match provider_config(&f, &s, secrets.as_ref()) {
                    Ok(c) => c,
                    Err(e) => return fail(e),
                };
                let Some(factory) = registry.get(&s.provider) else {
                    return fail(format!(
                        "configuration provider \"{}\" is not installed",
                        s.provider
                    ));
                };
                let provider = match factory.connect(config) {
                    Ok(p) => p,
                    Err(e) => return fail(e),
                };
                let report = provider.test().await;
                for t in &report.tests {
                    let o = if t.outcome == TestOutcome::Passed {
                        "Passed"
                    } else {
                        "Failed"
                    };
                    println!("{:<24} {o:<7} {}", t.name, t.detail);
                }
                for (op, yes) in &report.operations {
                    println!(
                        "{:<48} {}",
                        op.label(),
                        if *yes {
                            "Implemented"
                        } else {
                            "Not implemented"
                        }
                    );
                }
                if let Some(skew) = report.skew_ms {
                    println!(
                        "Clock skew: {}{}",
                        format_skew(skew),
                        if skew.abs() > crate::sync::status::DEFAULT_SKEW_THRESHOLD_MS {
                            " (warning: beyond 5 minutes)"
                        } else {
                            ""
                        }
                    );
                }
                if report.passed() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            })
        }
        ServiceCommand::Remove { name } => {
            let f = store.fabric();
            let s = match find_service(&f, &name) {
                Ok(s) => s,
                Err(e) => return fail(e),
            };
            match store.apply(&[FabricChange::Delete(ObjectKind::NetworkService, s.id)]) {
                Ok(_) => {
                    if let Ok(db) = crate::sync::journal::SyncDb::open(&paths.sync_db()) {
                        let _ = db.forget_service(s.id);
                    }
                    println!("Removed network service \"{}\".", s.name);
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
    }
}

fn short_state(s: &SyncState) -> &'static str {
    match s {
        SyncState::NeverSynced => "Never synced",
        SyncState::Syncing { .. } => "Syncing",
        SyncState::InSync => "In sync",
        SyncState::Warning(_) => "Warning",
        SyncState::Error(_) => "Error",
    }
}

pub fn service_add(
    store: &FabricStore,
    registry: &ProviderRegistry,
    a: ServiceAddArgs,
) -> Result<NetworkService, String> {
    let f = store.fabric();
    let descriptor = registry
        .list()
        .into_iter()
        .find(|d| d.model.eq_ignore_ascii_case(&a.model) || d.id.eq_ignore_ascii_case(&a.model))
        .ok_or_else(|| {
            let models: Vec<String> = registry
                .list()
                .into_iter()
                .map(|d| format!("\"{}\"", d.model))
                .collect();
            format!(
                "--model: no configuration provider for model \"{}\" (available: {})",
                a.model,
                models.join(", ")
            )
        })?;
    let connection =
        ConnectionString::parse(&a.connection).map_err(|e| format!("--connection: {e}"))?;
    let run_as = f
        .run_as_accounts
        .values()
        .find(|r| r.name.eq_ignore_ascii_case(&a.run_as))
        .ok_or_else(|| format!("--run-as: no Run As account named \"{}\"; add one with `fabric-console run-as add`", a.run_as))?
        .id;
    let scope = if a.all_host_groups {
        HostGroupScope::All
    } else if a.host_groups.is_empty() {
        return Err(
            "--host-group: choose at least one host group, or pass --all-host-groups".into(),
        );
    } else {
        let mut set = BTreeSet::new();
        for g in &a.host_groups {
            set.insert(find_host_group(&f, g)?);
        }
        HostGroupScope::Selected(set)
    };
    let service = NetworkService {
        id: Uuid::new_v4(),
        name: a.name.trim().to_string(),
        description: a.description,
        category: ServiceCategory::NetworkManager,
        manufacturer: descriptor.manufacturer.clone(),
        model: descriptor.model.clone(),
        connection,
        run_as,
        provider: descriptor.id.clone(),
        scope,
        sync_interval_secs: a.interval,
        tls_fingerprint: a.tls_fingerprint,
    };
    store
        .apply(&[FabricChange::Put(FabricObject::NetworkService(
            service.clone(),
        ))])
        .map_err(|e| e.to_string())?;
    Ok(service)
}

pub fn provider_config(
    f: &Fabric,
    s: &NetworkService,
    secrets: &dyn SecretStore,
) -> Result<ProviderConfig, String> {
    let account = f
        .run_as_accounts
        .get(&s.run_as)
        .ok_or_else(|| format!("network service \"{}\" has no Run As account", s.name))?;
    let secret = secrets
        .get(account.id)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| {
            format!(
                "Run As account \"{}\" has no password or token stored",
                account.name
            )
        })?;
    Ok(ProviderConfig {
        connection: s.connection.clone(),
        credentials: Credentials {
            user_name: account.user_name.clone(),
            secret,
        },
        tls_fingerprint: s.tls_fingerprint.clone(),
        service_name: s.name.clone(),
    })
}

pub fn run_as(paths: &DataPaths, cmd: RunAsCommand) -> ExitCode {
    let store = match open_store(paths) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    match cmd {
        RunAsCommand::List => {
            for r in store.fabric().run_as_accounts.values() {
                println!("{:<32} {:<24} {}", r.name, r.user_name, r.description);
            }
            ExitCode::SUCCESS
        }
        RunAsCommand::Add {
            name,
            user,
            description,
            secret_file,
        } => {
            let secret = match secret_file {
                Some(p) => std::fs::read_to_string(&p)
                    .map_err(|e| format!("--secret-file {}: {e}", p.display())),
                None => {
                    let mut s = String::new();
                    std::io::stdin()
                        .read_to_string(&mut s)
                        .map(|_| s)
                        .map_err(|e| format!("standard input: {e}"))
                }
            };
            let secret = match secret {
                Ok(s) => s.trim_end_matches(['\r', '\n']).to_string(),
                Err(e) => return fail(e),
            };
            if secret.is_empty() {
                return fail(
                    "the password or token is empty: pipe it on standard input or pass --secret-file",
                );
            }
            let account = RunAsAccount {
                id: Uuid::new_v4(),
                name: name.trim().to_string(),
                description,
                user_name: user,
            };
            let secrets = open_secret_store(&paths.data_dir);
            // The secret first: an account without its secret would be unusable.
            if let Err(e) = secrets.put(account.id, &secret) {
                return fail(e);
            }
            match store.apply(&[FabricChange::Put(FabricObject::RunAsAccount(
                account.clone(),
            ))]) {
                Ok(_) => {
                    println!(
                        "Added Run As account \"{}\" (secret kept in the {} secret store).",
                        account.name,
                        secrets.backend_name()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    let _ = secrets.delete(account.id);
                    fail(e)
                }
            }
        }
    }
}

/// Start the engine on the caller's runtime.
pub fn start_engine(
    paths: &DataPaths,
    store: &FabricStore,
    secrets: Arc<dyn SecretStore>,
    periodic: bool,
) -> Result<EngineHandle, String> {
    let mut ctx = EngineContext::new(
        store.clone(),
        secrets,
        Arc::new(ProviderRegistry::default_registry()),
        Some(paths.sync_db()),
    );
    ctx.periodic = periodic;
    Engine::start(ctx).map_err(|e| e.to_string())
}

pub fn sync(paths: &DataPaths, args: SyncArgs) -> ExitCode {
    let store = match open_store(paths) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let secrets = open_secret_store(&paths.data_dir);
    rt.block_on(async move {
        let f = store.fabric();
        let services: Vec<NetworkService> = match &args.service {
            Some(n) => match find_service(&f, n) {
                Ok(s) => vec![s],
                Err(e) => return fail(e),
            },
            None => f.network_services.values().cloned().collect(),
        };
        if services.is_empty() {
            return fail(
                "there is no network service to sync; add one with `fabric-console service add`",
            );
        }
        let engine = match start_engine(paths, &store, secrets, false) {
            Ok(e) => e,
            Err(e) => return fail(e),
        };
        sync_services(&engine, &services, args.dry_run).await
    })
}

/// Sync (or preview) each service, printing progress to stderr and a summary to stdout.
pub async fn sync_services(
    engine: &EngineHandle,
    services: &[NetworkService],
    dry_run: bool,
) -> ExitCode {
    let mut ok = true;
    for s in services {
        if dry_run {
            match engine.preview(s.id).await {
                Ok(plan) => {
                    println!("Plan for \"{}\":", s.name);
                    print_summary(&plan.summary);
                    for c in &plan.conflicts {
                        println!(
                            "  conflict: {} \"{}\" {}: console {}, IPAM {}",
                            c.kind, c.object_name, c.field, c.console, c.ipam
                        );
                    }
                }
                Err(e) => {
                    ok = false;
                    eprintln!("error: {}: {e}", s.name);
                }
            }
            continue;
        }
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

pub fn print_summary(summary: &crate::sync::plan::PlanSummary) {
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
pub fn demo_with_ipam(paths: &DataPaths, store: &FabricStore) -> ExitCode {
    use crate::ipam::server::{self, ServerConfig, auth::Role};
    let rt = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let secrets = open_secret_store(&paths.data_dir);
    rt.block_on(async move {
        let server = match server::start(ServerConfig::ephemeral()).await {
            Ok(s) => s,
            Err(e) => return fail(e),
        };
        let token = match server.try_issue_token(Role::AsmAdministrator) {
            Ok(t) => t,
            Err(e) => return fail(e),
        };
        let f = store.fabric();
        let account = f
            .run_as_accounts
            .values()
            .find(|r| r.name == "Demo IPAM Administrator")
            .cloned()
            .unwrap_or_else(|| RunAsAccount {
                id: Uuid::new_v4(),
                name: "Demo IPAM Administrator".into(),
                description: "Token of the in-process IPAM server started by `demo --with-ipam`"
                    .into(),
                user_name: "asm-administrator".into(),
            });
        if let Err(e) = secrets.put(account.id, &token) {
            return fail(e);
        }
        let descriptor = crate::ipam::builtin::descriptor();
        let service = NetworkService {
            id: Uuid::new_v4(),
            name: format!("Demo IPAM ({})", server.addr()),
            description: "In-process built-in IPAM server; it stops when the command ends".into(),
            category: ServiceCategory::NetworkManager,
            manufacturer: descriptor.manufacturer.clone(),
            model: descriptor.model.clone(),
            connection: match ConnectionString::parse(&server.addr().to_string()) {
                Ok(c) => c,
                Err(e) => return fail(e),
            },
            run_as: account.id,
            provider: descriptor.id.clone(),
            scope: HostGroupScope::All,
            sync_interval_secs: 300,
            tls_fingerprint: None,
        };
        let changes = vec![
            FabricChange::Put(FabricObject::RunAsAccount(account)),
            FabricChange::Put(FabricObject::NetworkService(service.clone())),
        ];
        if let Err(e) = store.apply(&changes) {
            return fail(e);
        }
        let engine = match start_engine(paths, store, secrets, false) {
            Ok(e) => e,
            Err(e) => return fail(e),
        };
        println!(
            "Built-in IPAM server running in-process at {}.",
            server.base_url()
        );
        let code = sync_services(&engine, std::slice::from_ref(&service), false).await;
        let before = server.request_count();
        let code2 = sync_services(&engine, std::slice::from_ref(&service), false).await;
        println!(
            "The refresh after it made {} HTTP request(s).",
            server.request_count() - before
        );
        server.shutdown().await;
        // The server is gone with this process: remove the service that pointed at it.
        let _ = store.apply(&[FabricChange::Delete(ObjectKind::NetworkService, service.id)]);
        if code == ExitCode::SUCCESS && code2 == ExitCode::SUCCESS {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    })
}
