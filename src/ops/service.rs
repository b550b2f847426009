//! Network services: add, update, test and remove, for the wizard, Properties and the command line.

use std::collections::BTreeSet;
use std::sync::Arc;

use uuid::Uuid;

use crate::fabric::connection::ConnectionString;
use crate::fabric::model::{
    Fabric, FabricChange, FabricObject, HostGroupScope, Id, NetworkService, ObjectKind,
    ServiceCategory, TlsTrust,
};
use crate::fabric::secrets::SecretStore;
use crate::fabric::store::FabricStore;
use crate::ipam::provider::{ProviderDescriptor, TestReport};
use crate::ipam::registry::ProviderRegistry;
use crate::ipam::tls::{self, TrustProblem};
use crate::sync::credentials::{CredentialsError, credentials, provider_config};
use crate::sync::engine::EngineHandle;
use crate::sync::status::{EngineCommand, JobTrigger};

use super::EngineInbox;

/// The field of the wizard, the Properties dialog or the command line an error belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceField {
    Service,
    Model,
    Connection,
    RunAs,
    HostGroups,
    /// The certificate to trust (pinned fingerprint, CA file) or the choice of plain HTTP.
    Security,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    #[error("no network service named \"{name}\" (known: {known})")]
    UnknownService { name: String, known: String },
    #[error("no configuration provider for model \"{model}\" (available: {available})")]
    UnknownModel { model: String, available: String },
    #[error("{0}")]
    Connection(String),
    #[error(transparent)]
    Security(#[from] TrustProblem),
    #[error("no Run As account named \"{0}\"")]
    UnknownRunAs(String),
    #[error("choose at least one host group")]
    NoHostGroup,
    #[error("no host group named \"{0}\"")]
    UnknownHostGroup(String),
    #[error("\"{0}\" names several host groups; give its path, e.g. \"All Hosts/.../{0}\"")]
    AmbiguousHostGroup(String),
    #[error("configuration provider \"{0}\" is not installed")]
    ProviderMissing(String),
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The IPAM change events address is not one the console can listen to.
    #[error("{0}")]
    EventSource(String),
    /// The provider refused the settings, or the store refused the change.
    #[error("{0}")]
    Failed(String),
}

impl ServiceError {
    /// Which field to show the error at, when one is to blame.
    pub fn field(&self) -> Option<ServiceField> {
        match self {
            Self::UnknownService { .. } => Some(ServiceField::Service),
            Self::UnknownModel { .. } => Some(ServiceField::Model),
            Self::Connection(_) | Self::EventSource(_) => Some(ServiceField::Connection),
            Self::Security(TrustProblem::HttpWithCertificate) => Some(ServiceField::Connection),
            Self::Security(_) => Some(ServiceField::Security),
            Self::UnknownRunAs(_) | Self::Credentials(_) => Some(ServiceField::RunAs),
            Self::NoHostGroup | Self::UnknownHostGroup(_) | Self::AmbiguousHostGroup(_) => {
                Some(ServiceField::HostGroups)
            }
            Self::ProviderMissing(_) | Self::Failed(_) => None,
        }
    }
}

/// A network service as a script names it: model, account and host groups by name.
#[derive(Debug, Clone)]
pub struct ServiceDraft {
    pub name: String,
    pub description: String,
    pub model: String,
    pub connection: String,
    pub run_as: String,
    /// Names or paths; empty with `all_host_groups` false is an error.
    pub host_groups: Vec<String>,
    pub all_host_groups: bool,
    pub interval_secs: u64,
    pub tls_fingerprint: Option<String>,
    /// A PEM file of certificate authorities to trust besides the system's.
    pub tls_ca_file: Option<std::path::PathBuf>,
    /// Send the token over plain HTTP to another computer.
    pub allow_cleartext: bool,
    /// Nautobot's event broker (`redis://host:port`), for live sync.
    pub event_source: Option<String>,
    /// Sync when either side changes, besides every interval.
    pub sync_on_change: bool,
}

/// A network service by name, ignoring case.
pub fn find(fabric: &Fabric, name: &str) -> Result<NetworkService, ServiceError> {
    fabric
        .network_services
        .values()
        .find(|s| s.name.eq_ignore_ascii_case(name))
        .cloned()
        .ok_or_else(|| {
            let names: Vec<&str> = fabric
                .network_services
                .values()
                .map(|s| s.name.as_str())
                .collect();
            ServiceError::UnknownService {
                name: name.to_string(),
                known: if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                },
            }
        })
}

/// A host group by name ("Seattle") or path ("All Hosts/Seattle").
pub fn find_host_group(fabric: &Fabric, wanted: &str) -> Result<Id, ServiceError> {
    let w = wanted.trim().trim_matches('/');
    let by_path: Vec<Id> = fabric
        .host_groups
        .keys()
        .filter(|id| fabric.host_group_path(**id).eq_ignore_ascii_case(w))
        .copied()
        .collect();
    if let [one] = by_path.as_slice() {
        return Ok(*one);
    }
    let by_name: Vec<Id> = fabric
        .host_groups
        .values()
        .filter(|g| g.name.eq_ignore_ascii_case(w))
        .map(|g| g.id)
        .collect();
    match by_name.as_slice() {
        [one] => Ok(*one),
        [] => Err(ServiceError::UnknownHostGroup(wanted.to_string())),
        _ => Err(ServiceError::AmbiguousHostGroup(wanted.to_string())),
    }
}

/// A network service of a provider, scoped and named; `run_as` holds its password or token.
pub fn new_service(
    descriptor: &ProviderDescriptor,
    name: String,
    description: String,
    connection: ConnectionString,
    run_as: Id,
    scope: HostGroupScope,
    sync_interval_secs: u64,
) -> NetworkService {
    NetworkService {
        id: Uuid::new_v4(),
        name,
        description,
        category: ServiceCategory::NetworkManager,
        manufacturer: descriptor.manufacturer.clone(),
        model: descriptor.model.clone(),
        connection,
        run_as,
        provider: descriptor.id.clone(),
        scope,
        sync_interval_secs,
        tls_fingerprint: None,
        tls_ca_file: None,
        allow_cleartext: false,
        event_source: None,
        sync_on_change: true,
    }
}

/// Resolves a draft's names against the fabric and the installed providers.
pub fn resolve(
    fabric: &Fabric,
    registry: &ProviderRegistry,
    draft: ServiceDraft,
) -> Result<NetworkService, ServiceError> {
    let descriptor = registry
        .list()
        .into_iter()
        .find(|d| {
            d.model.eq_ignore_ascii_case(&draft.model) || d.id.eq_ignore_ascii_case(&draft.model)
        })
        .ok_or_else(|| {
            let models: Vec<String> = registry
                .list()
                .into_iter()
                .map(|d| format!("\"{}\"", d.model))
                .collect();
            ServiceError::UnknownModel {
                model: draft.model.clone(),
                available: models.join(", "),
            }
        })?;
    let connection = ConnectionString::parse(&draft.connection)
        .map_err(|e| ServiceError::Connection(e.to_string()))?;
    let run_as = fabric
        .run_as_accounts
        .values()
        .find(|r| r.name.eq_ignore_ascii_case(&draft.run_as))
        .ok_or_else(|| ServiceError::UnknownRunAs(draft.run_as.clone()))?
        .id;
    let scope = if draft.all_host_groups {
        HostGroupScope::All
    } else if draft.host_groups.is_empty() {
        return Err(ServiceError::NoHostGroup);
    } else {
        let mut set = BTreeSet::new();
        for g in &draft.host_groups {
            set.insert(find_host_group(fabric, g)?);
        }
        HostGroupScope::Selected(set)
    };
    let trust = checked_trust(
        &descriptor,
        &connection,
        TlsTrust {
            fingerprint: draft.tls_fingerprint,
            ca_file: draft.tls_ca_file,
            allow_cleartext: draft.allow_cleartext,
        },
    )?;
    let event_source = draft
        .event_source
        .as_deref()
        .map(crate::fabric::validate::services::parse_event_source)
        .transpose()
        .map_err(ServiceError::EventSource)?;
    Ok(NetworkService {
        event_source,
        sync_on_change: draft.sync_on_change,
        tls_fingerprint: trust.fingerprint,
        tls_ca_file: trust.ca_file,
        allow_cleartext: trust.allow_cleartext,
        ..new_service(
            &descriptor,
            draft.name.trim().to_string(),
            draft.description,
            connection,
            run_as,
            scope,
            draft.interval_secs,
        )
    })
}

/// A service's security settings, checked: the fingerprint in its normal form, the CA file
/// readable and absolute (the console and a scheduled sync may run in different folders), and
/// plain HTTP to another computer only when chosen.
pub fn checked_trust(
    descriptor: &ProviderDescriptor,
    connection: &ConnectionString,
    trust: TlsTrust,
) -> Result<TlsTrust, ServiceError> {
    let scheme = tls::effective_scheme(connection, &trust, descriptor.default_https);
    let fingerprint = tls::check_trust(connection, &trust, scheme)?;
    let ca_file = match trust.ca_file {
        None => None,
        Some(path) => {
            tls::read_ca_file(&path).map_err(TrustProblem::CaFile)?;
            Some(std::path::absolute(&path).unwrap_or(path))
        }
    };
    Ok(TlsTrust {
        fingerprint,
        ca_file,
        allow_cleartext: trust.allow_cleartext && scheme == crate::fabric::connection::Scheme::Http,
    })
}

/// Stores a new service; the engine starts syncing it with a first sync.
pub async fn add(
    store: &FabricStore,
    engine: &dyn EngineInbox,
    service: NetworkService,
) -> Result<Arc<Fabric>, ServiceError> {
    let id = service.id;
    let fabric = put_and_send(store, engine, service, EngineCommand::AddService).await?;
    engine.send(EngineCommand::RefreshNow {
        service: id,
        trigger: JobTrigger::FirstSync,
    });
    Ok(fabric)
}

/// Stores a service's new settings; its worker picks them up.
pub async fn update(
    store: &FabricStore,
    engine: &dyn EngineInbox,
    service: NetworkService,
) -> Result<Arc<Fabric>, ServiceError> {
    put_and_send(store, engine, service, EngineCommand::UpdateService).await
}

/// Stores the service, then hands it to the engine in `command`.
async fn put_and_send(
    store: &FabricStore,
    engine: &dyn EngineInbox,
    service: NetworkService,
    command: fn(Box<NetworkService>) -> EngineCommand,
) -> Result<Arc<Fabric>, ServiceError> {
    let fabric = put(store, &service).await?;
    engine.send(command(Box::new(service)));
    Ok(fabric)
}

/// Stores a service without telling an engine: the command line's `service add`.
pub async fn put(
    store: &FabricStore,
    service: &NetworkService,
) -> Result<Arc<Fabric>, ServiceError> {
    store
        .apply_async(vec![FabricChange::Put(FabricObject::NetworkService(
            service.clone(),
        ))])
        .await
        .map_err(|e| ServiceError::Failed(e.to_string()))
}

/// Removes a service from the fabric; the engine stops its worker and forgets its sync state.
pub async fn remove(
    store: &FabricStore,
    engine: &dyn EngineInbox,
    id: Id,
) -> Result<Arc<Fabric>, ServiceError> {
    let fabric = store
        .apply_async(vec![FabricChange::Delete(ObjectKind::NetworkService, id)])
        .await
        .map_err(|e| ServiceError::Failed(e.to_string()))?;
    engine.send(EngineCommand::RemoveService { service: id });
    Ok(fabric)
}

/// An import replaced the fabric: the engine follows the network services it now holds.
pub fn follow_import(engine: &dyn EngineInbox, old: &Fabric, new: &Fabric) {
    for id in old.network_services.keys() {
        if !new.network_services.contains_key(id) {
            engine.send(EngineCommand::RemoveService { service: *id });
        }
    }
    for s in new.network_services.values() {
        let command = if old.network_services.contains_key(&s.id) {
            EngineCommand::UpdateService(Box::new(s.clone()))
        } else {
            EngineCommand::AddService(Box::new(s.clone()))
        };
        engine.send(command);
    }
}

/// The provider's Test against a stored service.
pub async fn test(
    fabric: &Fabric,
    secrets: &Arc<dyn SecretStore>,
    registry: &ProviderRegistry,
    service: &NetworkService,
) -> Result<TestReport, ServiceError> {
    let config = provider_config(fabric, secrets, service).await?;
    let factory = registry
        .get(&service.provider)
        .ok_or_else(|| ServiceError::ProviderMissing(service.provider.clone()))?;
    let provider = factory
        .connect(config)
        .map_err(|e| ServiceError::Failed(e.to_string()))?;
    Ok(provider.test().await)
}

/// Settings of a service not saved yet, for the wizard's Test.
#[derive(Debug, Clone)]
pub struct UnsavedService {
    pub provider: String,
    pub connection: ConnectionString,
    pub trust: TlsTrust,
    pub run_as: Id,
    pub service_name: String,
}

/// The wizard's Test, for settings not saved yet.
pub async fn test_unsaved(
    engine: &EngineHandle,
    fabric: &Fabric,
    secrets: &Arc<dyn SecretStore>,
    unsaved: UnsavedService,
) -> Result<TestReport, ServiceError> {
    let credentials = credentials(fabric, secrets, &unsaved.service_name, unsaved.run_as).await?;
    let config = crate::ipam::provider::ProviderConfig {
        connection: unsaved.connection,
        credentials,
        trust: unsaved.trust,
        service_name: unsaved.service_name,
        event_source: None,
    };
    engine
        .test_connection(&unsaved.provider, config)
        .await
        .map_err(|e| ServiceError::Failed(e.to_string()))
}
