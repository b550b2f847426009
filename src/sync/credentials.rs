//! A network service's provider configuration: its connection, and its Run As account's user
//! name with the secret from the secret store (read off the async threads). Built here once for
//! the engine, the operations layer and the command line.

use std::sync::Arc;

use crate::fabric::model::{Fabric, Id, NetworkService};
use crate::fabric::secrets::SecretStore;
use crate::ipam::provider::{Credentials, ProviderConfig};

/// Why a network service's credentials cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    #[error(
        "Network service \"{service}\" has no Run As account; open its Properties and choose one."
    )]
    NoAccount { service: String },
    #[error(
        "Run As account \"{account}\" has no password or token stored; set it in Settings ▸ Run As Accounts."
    )]
    NoSecret { account: String },
    #[error("{0}")]
    SecretStore(String),
}

/// The user name and secret of a Run As account, read off the async threads.
pub async fn credentials(
    fabric: &Fabric,
    secrets: &Arc<dyn SecretStore>,
    service_name: &str,
    run_as: Id,
) -> Result<Credentials, CredentialsError> {
    let account = fabric
        .run_as_accounts
        .get(&run_as)
        .cloned()
        .ok_or_else(|| CredentialsError::NoAccount {
            service: service_name.to_string(),
        })?;
    let store = secrets.clone();
    let secret = tokio::task::spawn_blocking(move || store.get(run_as))
        .await
        .map_err(|e| CredentialsError::SecretStore(e.to_string()))?
        .map_err(|e| CredentialsError::SecretStore(e.to_string()))?
        .ok_or(CredentialsError::NoSecret {
            account: account.name,
        })?;
    Ok(Credentials {
        user_name: account.user_name,
        secret,
    })
}

/// How to reach a network service's provider: its connection and its Run As account's secret.
pub async fn provider_config(
    fabric: &Fabric,
    secrets: &Arc<dyn SecretStore>,
    service: &NetworkService,
) -> Result<ProviderConfig, CredentialsError> {
    Ok(ProviderConfig {
        connection: service.connection.clone(),
        credentials: credentials(fabric, secrets, &service.name, service.run_as).await?,
        trust: service.trust(),
        service_name: service.name.clone(),
        event_source: service.event_source.clone(),
    })
}
