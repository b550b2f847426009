//! Run As accounts: an account and its secret are saved and deleted together, never half-way.

use std::sync::Arc;

use crate::fabric::model::{Fabric, FabricChange, FabricObject, Id, ObjectKind, RunAsAccount};
use crate::fabric::secrets::SecretStore;
use crate::fabric::store::FabricStore;

use super::off_thread;

/// The field of the Run As dialog (or command line) an error belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunAsField {
    Secret,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunAsError {
    /// The secret store refused the password or token.
    #[error("{0}")]
    Secret(String),
    /// The fabric store refused the account.
    #[error("{0}")]
    Store(String),
    #[error("This Run As account is used by {}: it was not deleted.", .0.join(", "))]
    InUse(Vec<String>),
}

impl RunAsError {
    pub fn field(&self) -> Option<RunAsField> {
        matches!(self, RunAsError::Secret(_)).then_some(RunAsField::Secret)
    }
}

/// Names of the services that use a Run As account (and so block its deletion).
pub fn services_using(fabric: &Fabric, account: Id) -> Vec<String> {
    fabric
        .dependents(ObjectKind::RunAsAccount, account)
        .into_iter()
        .map(|(_, _, name)| name)
        .collect()
}

/// Secret first, then the account: an account without its secret would be unusable. If the
/// account cannot be stored, a new account's secret is taken back.
pub async fn save(
    store: &FabricStore,
    secrets: &Arc<dyn SecretStore>,
    account: RunAsAccount,
    secret: Option<String>,
) -> Result<Arc<Fabric>, RunAsError> {
    let id = account.id;
    let is_new = !store.fabric().run_as_accounts.contains_key(&id);
    if let Some(secret) = secret {
        let s = secrets.clone();
        off_thread(move || s.put(id, &secret))
            .await
            .map_err(RunAsError::Secret)?
            .map_err(|e| RunAsError::Secret(e.to_string()))?;
    }
    match store
        .apply_async(vec![FabricChange::Put(FabricObject::RunAsAccount(account))])
        .await
    {
        Ok(fabric) => Ok(fabric),
        Err(e) => {
            if is_new {
                let s = secrets.clone();
                let _ = off_thread(move || s.delete(id)).await;
            }
            Err(RunAsError::Store(e.to_string()))
        }
    }
}

/// Deletes an account no service uses, then its secret.
pub async fn delete(
    store: &FabricStore,
    secrets: &Arc<dyn SecretStore>,
    id: Id,
) -> Result<Arc<Fabric>, RunAsError> {
    let users = services_using(&store.fabric(), id);
    if !users.is_empty() {
        return Err(RunAsError::InUse(users));
    }
    let fabric = store
        .apply_async(vec![FabricChange::Delete(ObjectKind::RunAsAccount, id)])
        .await
        .map_err(|e| RunAsError::Store(e.to_string()))?;
    let s = secrets.clone();
    off_thread(move || s.delete(id))
        .await
        .map_err(RunAsError::Secret)?
        .map_err(|e| RunAsError::Secret(e.to_string()))?;
    Ok(fabric)
}
