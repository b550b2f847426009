//! `service add|list|test|remove`: network services, headless.

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};

use super::{fail, open_store, runtime};
use crate::fabric::connection::ConnectionString;
use crate::fabric::model::NetworkService;
use crate::fabric::secrets::open_secret_store;
use crate::ipam::provider::TestOutcome;
use crate::ipam::registry::ProviderRegistry;
use crate::ipam::tls::{self, TrustProblem};
use crate::ops::boot::{Runner, start_engine};
use crate::ops::service::{self as ops_service, ServiceDraft, ServiceError, ServiceField};
use crate::paths::DataPaths;
use crate::sync::credentials::CredentialsError;
use crate::sync::engine::format_skew;
use crate::sync::journal::SyncDb;
use crate::sync::status::{DEFAULT_SKEW_THRESHOLD_MS, SyncState};

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
    /// Look at a server without sending credentials: whether it offers HTTPS, and its
    /// certificate's subject, issuer, validity and SHA-256 fingerprint (for --tls-fingerprint).
    Certificate {
        /// FQDN or FQDN:port, as for `service add --connection`.
        connection: String,
        /// The model, for its default port when the connection string names none.
        #[arg(long)]
        model: Option<String>,
        /// A PEM file of certificate authorities to check the certificate with, as for `--tls-ca`.
        #[arg(long = "tls-ca", value_name = "FILE")]
        tls_ca: Option<std::path::PathBuf>,
    },
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
    /// Trust exactly the certificate with this SHA-256 fingerprint (a self-signed server);
    /// `service certificate` shows a server's.
    #[arg(long = "tls-fingerprint")]
    pub tls_fingerprint: Option<String>,
    /// A PEM file of certificate authorities to trust besides the system's (a company's own CA).
    #[arg(long = "tls-ca", value_name = "FILE")]
    pub tls_ca: Option<std::path::PathBuf>,
    /// Send the token over plain HTTP to another computer: anyone on the network path can read it.
    #[arg(long = "allow-insecure-http")]
    pub allow_insecure_http: bool,
    /// Listen for the server's changes on this Redis, where Nautobot's event broker publishes
    /// them (redis://host:port); without it a Nautobot service is read every interval.
    #[arg(long = "events", value_name = "URL")]
    pub events: Option<String>,
    /// Sync only every interval, not as soon as either side changes.
    #[arg(long = "no-sync-on-change")]
    pub no_sync_on_change: bool,
}

impl From<ServiceAddArgs> for ServiceDraft {
    fn from(a: ServiceAddArgs) -> Self {
        ServiceDraft {
            name: a.name,
            description: a.description,
            model: a.model,
            connection: a.connection,
            run_as: a.run_as,
            host_groups: a.host_groups,
            all_host_groups: a.all_host_groups,
            interval_secs: a.interval,
            tls_fingerprint: a.tls_fingerprint,
            tls_ca_file: a.tls_ca,
            allow_cleartext: a.allow_insecure_http,
            event_source: a.events,
            sync_on_change: !a.no_sync_on_change,
        }
    }
}

/// A service error as the command line words it: the flag to fix first, then the reason.
pub(super) fn service_error(e: &ServiceError) -> String {
    let flag = match e {
        ServiceError::Security(TrustProblem::Fingerprint(_)) => "--tls-fingerprint",
        ServiceError::Security(TrustProblem::CaFile(_)) => "--tls-ca",
        ServiceError::EventSource(_) => "--events",
        _ => "",
    };
    let flag = match e.field() {
        _ if !flag.is_empty() => flag,
        Some(ServiceField::Service) => "--service",
        Some(ServiceField::Model) => "--model",
        Some(ServiceField::Connection) => "--connection",
        Some(ServiceField::RunAs) if matches!(e, ServiceError::UnknownRunAs(_)) => "--run-as",
        Some(ServiceField::HostGroups) => "--host-group",
        Some(ServiceField::Security) => "--connection",
        _ => "",
    };
    let hint = match e {
        ServiceError::UnknownRunAs(_) => "; add one with `fabric-console run-as add`",
        ServiceError::NoHostGroup => ", or pass --all-host-groups",
        ServiceError::Security(TrustProblem::Cleartext) => {
            "; write https://, or pass --allow-insecure-http to accept that"
        }
        _ => "",
    };
    let reason = match e {
        ServiceError::Credentials(CredentialsError::NoAccount { service }) => {
            format!("network service \"{service}\" has no Run As account")
        }
        ServiceError::Credentials(CredentialsError::NoSecret { account }) => {
            format!("Run As account \"{account}\" has no password or token stored")
        }
        other => other.to_string(),
    };
    if flag.is_empty() {
        format!("{reason}{hint}")
    } else {
        format!("{flag}: {reason}{hint}")
    }
}

pub(super) fn run(paths: &DataPaths, cmd: ServiceCommand) -> ExitCode {
    if let ServiceCommand::Certificate {
        connection,
        model,
        tls_ca,
    } = cmd
    {
        return certificate(&connection, model.as_deref(), tls_ca.as_deref());
    }
    let store = match open_store(paths) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let registry = ProviderRegistry::default_registry();
    let f = store.fabric();
    match cmd {
        ServiceCommand::Add(a) => {
            let service = match ops_service::resolve(&f, &registry, a.into()) {
                Ok(s) => s,
                Err(e) => return fail(service_error(&e)),
            };
            let rt = match runtime() {
                Ok(r) => r,
                Err(code) => return code,
            };
            // No engine runs here: the console's engine picks the service up when it starts.
            match rt.block_on(ops_service::put(&store, &service)) {
                Ok(_) => {
                    println!(
                        "Added network service \"{}\" ({}).",
                        service.name, service.connection
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        ServiceCommand::List => {
            list(paths, f.network_services.values());
            ExitCode::SUCCESS
        }
        ServiceCommand::Test { name } => {
            let s = match ops_service::find(&f, &name) {
                Ok(s) => s,
                Err(e) => return fail(service_error(&e)),
            };
            let secrets = open_secret_store(&paths.data_dir);
            let rt = match runtime() {
                Ok(r) => r,
                Err(code) => return code,
            };
            match rt.block_on(ops_service::test(&f, &secrets, &registry, &s)) {
                Ok(report) => print_test(&report),
                Err(e) => fail(service_error(&e)),
            }
        }
        ServiceCommand::Certificate { .. } => ExitCode::SUCCESS,
        ServiceCommand::Remove { name } => {
            let s = match ops_service::find(&f, &name) {
                Ok(s) => s,
                Err(e) => return fail(service_error(&e)),
            };
            let rt = match runtime() {
                Ok(r) => r,
                Err(code) => return code,
            };
            let secrets = open_secret_store(&paths.data_dir);
            let removed = rt.block_on(async {
                // The engine's path, as in the console: it forgets the service's sync state.
                let engine = start_engine(
                    paths,
                    &store,
                    secrets,
                    Arc::new(ProviderRegistry::default_registry()),
                    Runner::Command("fabric-console service remove"),
                )
                .map_err(|e| e.to_string())?;
                ops_service::remove(&store, &engine, s.id)
                    .await
                    .map_err(|e| e.to_string())
            });
            match removed {
                Ok(_) => {
                    println!("Removed network service \"{}\".", s.name);
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
    }
}

/// `service certificate`: what a server offers, without credentials.
fn certificate(
    connection: &str,
    model: Option<&str>,
    ca_file: Option<&std::path::Path>,
) -> ExitCode {
    let parsed = match ConnectionString::parse(connection) {
        Ok(c) => c,
        Err(e) => return fail(format!("--connection: {e}")),
    };
    let registry = ProviderRegistry::default_registry();
    let default_port = match (parsed.port, model) {
        (Some(p), _) => p,
        (None, Some(m)) => match registry
            .list()
            .into_iter()
            .find(|d| d.model.eq_ignore_ascii_case(m) || d.id.eq_ignore_ascii_case(m))
        {
            Some(d) => d.default_port,
            None => {
                return fail(format!(
                    "--model: no configuration provider for model \"{m}\""
                ));
            }
        },
        (None, None) => 443,
    };
    let rt = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let probe = match rt.block_on(tls::probe(
        &parsed,
        default_port,
        ca_file,
        tls::PROBE_TIMEOUT,
    )) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let target = format!("{}:{}", parsed.host, parsed.port_or(default_port));
    match probe.offer {
        tls::Offer::Plain => {
            println!("{target} offers only plain HTTP: a token sent to it is not encrypted.");
            if !parsed.is_loopback() {
                println!(
                    "To use it anyway, add the service with --allow-insecure-http; better, give the server a certificate."
                );
            }
        }
        tls::Offer::Tls {
            certificate: c,
            trusted,
        } => {
            println!("{target} offers HTTPS.");
            println!("Subject:      {}", c.subject);
            println!("Issuer:       {}", c.issuer);
            println!(
                "Valid from:   {}",
                c.not_before.format("%Y-%m-%d %H:%M UTC")
            );
            println!("Valid until:  {}", c.not_after.format("%Y-%m-%d %H:%M UTC"));
            println!("Valid for:    {}", c.names.join(", "));
            println!("SHA-256:      {}", c.fingerprint_colons());
            match trusted {
                Ok(()) => println!("Trusted:      yes, by this computer's certificate authorities"),
                Err(why) => {
                    println!("Trusted:      no: {why}");
                    println!(
                        "Compare the fingerprint with the one the server's administrator gives you; to trust exactly this certificate, add the service with --tls-fingerprint {}",
                        c.fingerprint
                    );
                }
            }
        }
    }
    ExitCode::SUCCESS
}

fn list<'a>(paths: &DataPaths, services: impl Iterator<Item = &'a NetworkService>) {
    let db = SyncDb::open_at(&paths.location()).ok();
    println!(
        "{:<24} {:<30} {:<32} {:<14} {:<26} SKEW",
        "NAME", "MODEL", "CONNECTION STRING", "STATUS", "LAST SYNC"
    );
    for s in services {
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
}

fn short_state(s: &SyncState) -> &'static str {
    match s {
        SyncState::NeverSynced => "Never synced",
        SyncState::Syncing { .. } => "Syncing",
        SyncState::Waiting(_) => "Waiting",
        SyncState::InSync => "In sync",
        SyncState::Warning(_) => "Warning",
        SyncState::Error(_) => "Error",
    }
}

fn print_test(report: &crate::ipam::provider::TestReport) -> ExitCode {
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
    if let Some(e) = &report.encryption {
        println!("Encrypted: {}", e.describe());
    }
    if let Some(skew) = report.skew_ms {
        println!(
            "Clock skew: {}{}",
            format_skew(skew),
            if skew.abs() > DEFAULT_SKEW_THRESHOLD_MS {
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
}
