//! Replacing the fabric with an imported one without moving a stored secret to another server:
//! exports carry no secrets, but an import may reuse a Run As account's id for a service that
//! points somewhere else, and the next sync would send the stored password or token there.

use std::collections::HashSet;
use std::sync::Arc;

use crate::fabric::connection::ConnectionString;
use crate::fabric::exchange::{ImportError, ImportProblem};
use crate::fabric::model::{Fabric, Id, TlsTrust};
use crate::fabric::secrets::SecretStore;
use crate::fabric::store::{FabricStore, StoreError};

/// A finished import: the new fabric, and the Run As accounts whose secret must be entered again.
#[derive(Debug, Clone)]
pub struct Imported {
    pub fabric: Arc<Fabric>,
    pub secrets_forgotten: Vec<String>,
}

impl Imported {
    /// "The stored secret of X was forgotten: …", when the import forgot any.
    pub fn forgotten_sentence(&self) -> Option<String> {
        match self.secrets_forgotten.as_slice() {
            [] => None,
            [one] => Some(format!(
                "The stored secret of Run As account \"{one}\" was forgotten: an imported network service points at another server. Enter it again in Settings ▸ Run As Accounts."
            )),
            many => Some(format!(
                "The stored secrets of Run As accounts {} were forgotten: imported network services point at other servers. Enter them again in Settings ▸ Run As Accounts.",
                many.iter()
                    .map(|n| format!("\"{n}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

/// Run As accounts (id, name) of `imported` that some imported network service would use
/// against a server (connection string) that no current service reached with that account, or
/// reach with other trust (another pinned certificate or CA file, or plain HTTP newly allowed):
/// their stored secret was not entered for that.
pub fn secrets_that_would_move(current: &Fabric, imported: &Fabric) -> Vec<(Id, String)> {
    let reached = |f: &Fabric, account: Id| -> HashSet<(ConnectionString, TlsTrust)> {
        f.network_services
            .values()
            .filter(|s| s.run_as == account)
            .map(|s| (s.connection.clone(), s.trust()))
            .collect()
    };
    imported
        .run_as_accounts
        .values()
        .filter(|a| !reached(imported, a.id).is_subset(&reached(current, a.id)))
        .map(|a| (a.id, a.name.clone()))
        .collect()
}

/// Replaces the store's fabric with `imported` (already read and checked), first forgetting the
/// secrets that would otherwise go to another server. Blocking: call it off the async threads.
/// If a secret cannot be forgotten, nothing is imported.
pub fn replace_fabric(
    store: &FabricStore,
    secrets: &Arc<dyn SecretStore>,
    imported: Fabric,
) -> Result<Imported, ImportError> {
    let moved = secrets_that_would_move(&store.fabric(), &imported);
    for (id, name) in &moved {
        secrets.delete(*id).map_err(|e| ImportError {
            problems: vec![ImportProblem::Store(format!(
                "the stored secret of Run As account \"{name}\" could not be forgotten ({e}); an imported network service would send it to another server, so nothing was imported"
            ))],
        })?;
        tracing::info!(account = %name, "forgot a Run As secret: an imported service points at another server");
    }
    let fabric = store.replace_all(imported).map_err(|e| ImportError {
        problems: match e {
            StoreError::Invalid(errors) => errors.into_iter().map(ImportProblem::Invalid).collect(),
            other => vec![ImportProblem::Store(other.to_string())],
        },
    })?;
    Ok(Imported {
        fabric,
        secrets_forgotten: moved.into_iter().map(|(_, name)| name).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fabric::model::*;
    use crate::fabric::secrets::MemorySecretStore;

    fn service(name: &str, run_as: Id, connection: &str) -> NetworkService {
        crate::ops::service::new_service(
            &crate::ipam::builtin::descriptor(),
            name.into(),
            String::new(),
            ConnectionString::parse(connection).unwrap(),
            run_as,
            HostGroupScope::All,
            300,
        )
    }

    #[test]
    fn an_import_that_points_a_service_elsewhere_never_takes_the_secret_along() {
        let store = FabricStore::open_in_memory().unwrap();
        let account = RunAsAccount {
            id: uuid::Uuid::new_v4(),
            name: "IPAM account".into(),
            description: String::new(),
            user_name: "svc-ipam".into(),
        };
        let ipam1 = service("ipam1", account.id, "ipam1.contoso.com");
        store
            .apply(&[
                FabricChange::Put(FabricObject::RunAsAccount(account.clone())),
                FabricChange::Put(FabricObject::NetworkService(ipam1.clone())),
            ])
            .unwrap();
        let secrets: Arc<dyn SecretStore> = Arc::new(MemorySecretStore::default());
        secrets.put(account.id, "token-for-ipam1").unwrap();

        // The same fabric again: the secret stays where it was entered.
        let same = (*store.fabric()).clone();
        let done = replace_fabric(&store, &secrets, same).unwrap();
        assert!(done.secrets_forgotten.is_empty());
        assert_eq!(
            secrets.get(account.id).unwrap().as_deref(),
            Some("token-for-ipam1")
        );

        // Same host, but plain HTTP newly allowed, or another certificate pinned: the secret
        // was not entered for that either.
        for weaken in [
            |s: &mut NetworkService| s.allow_cleartext = true,
            |s: &mut NetworkService| s.tls_fingerprint = Some("cd".repeat(32)),
        ] {
            secrets.put(account.id, "token-for-ipam1").unwrap();
            let mut imported = (*store.fabric()).clone();
            let s = imported.network_services.get_mut(&ipam1.id).unwrap();
            weaken(s);
            let done = replace_fabric(&store, &secrets, imported).unwrap();
            assert_eq!(done.secrets_forgotten, ["IPAM account"]);
            assert_eq!(secrets.get(account.id).unwrap(), None);
            let back = (*store.fabric()).clone();
            let mut restored = back.clone();
            restored.network_services.insert(ipam1.id, ipam1.clone());
            replace_fabric(&store, &secrets, restored).unwrap();
        }
        secrets.put(account.id, "token-for-ipam1").unwrap();

        // The service now points at another host: the secret is forgotten and must be entered.
        let mut moved = (*store.fabric()).clone();
        let mut s = ipam1.clone();
        s.connection = ConnectionString::parse("attacker.example.net").unwrap();
        moved.network_services.insert(s.id, s);
        let done = replace_fabric(&store, &secrets, moved).unwrap();
        assert_eq!(done.secrets_forgotten, ["IPAM account"]);
        assert_eq!(
            done.forgotten_sentence().as_deref(),
            Some(
                "The stored secret of Run As account \"IPAM account\" was forgotten: an imported network service points at another server. Enter it again in Settings ▸ Run As Accounts."
            )
        );
        assert_eq!(secrets.get(account.id).unwrap(), None);
        assert_eq!(
            store.fabric().network_services[&ipam1.id]
                .connection
                .to_string(),
            ConnectionString::parse("attacker.example.net")
                .unwrap()
                .to_string()
        );
    }
}
