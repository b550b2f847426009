//! The desktop keyring through the freedesktop.org Secret Service (GNOME Keyring, KWallet,
//! KeePassXC), over the same D-Bus stack (zbus) as the rest of the console.
//!
//! Each Run As secret is one item in the default collection, found by its attributes
//! `service=fabric-console` and `account=<Run As account id>` and labelled
//! "Fabric Console Run As account <id>" so people can recognise it in their keyring manager.

use std::future::Future;
use std::sync::mpsc;
use std::time::Duration;

use oo7::dbus::{Collection, Item, Service};

use super::{KEYRING_CALL_TIMEOUT, KEYRING_SERVICE, SecretError, SecretLocation, SecretStore};
use crate::fabric::model::Id;

/// What a call reports when its thread ended without an answer (a panic inside the D-Bus client).
pub(crate) const KEYRING_CALL_STOPPED: &str = "the keyring call stopped unexpectedly";

/// Attribute holding [`KEYRING_SERVICE`] on every item the console stores.
pub const SERVICE_ATTRIBUTE: &str = "service";
/// Attribute holding the Run As account id.
pub const ACCOUNT_ATTRIBUTE: &str = "account";
/// Where earlier versions kept the account id (with `service` and `target=default`); such items
/// are still read, moved to [`ACCOUNT_ATTRIBUTE`] on first use, and deleted with the account.
pub const LEGACY_ACCOUNT_ATTRIBUTE: &str = "username";

/// The label people see in their keyring manager.
pub fn item_label(account: Id) -> String {
    format!("Fabric Console Run As account {account}")
}

/// The attributes that find the item of one Run As account.
pub fn item_attributes(account: Id) -> Vec<(&'static str, String)> {
    vec![
        (SERVICE_ATTRIBUTE, KEYRING_SERVICE.to_string()),
        (ACCOUNT_ATTRIBUTE, account.to_string()),
    ]
}

fn legacy_attributes(account: Id) -> Vec<(&'static str, String)> {
    vec![
        (SERVICE_ATTRIBUTE, KEYRING_SERVICE.to_string()),
        (LEGACY_ACCOUNT_ATTRIBUTE, account.to_string()),
    ]
}

/// The desktop's Secret Service keyring. Every call runs on its own thread with a timeout: the
/// keyring may block (a locked collection waiting for its unlock prompt, a D-Bus that does not
/// answer) and must never hold up the UI or run inside a tokio runtime.
#[derive(Debug, Clone)]
pub struct KeyringSecretStore {
    timeout: Duration,
}

impl Default for KeyringSecretStore {
    fn default() -> Self {
        Self::new()
    }
}

impl KeyringSecretStore {
    pub fn new() -> Self {
        KeyringSecretStore {
            timeout: KEYRING_CALL_TIMEOUT,
        }
    }

    /// A store whose calls give up after `timeout`.
    pub fn with_timeout(timeout: Duration) -> Self {
        KeyringSecretStore { timeout }
    }

    /// Opens a Secret Service session and looks up the default collection, which need not exist:
    /// any answer means the keyring works. Never prompts.
    pub fn probe(timeout: Duration) -> Result<(), SecretError> {
        Self::with_timeout(timeout).call(|| async {
            let service = connect().await?;
            service
                .with_alias(Service::DEFAULT_COLLECTION)
                .await
                .map_err(refused)?;
            Ok(())
        })
    }

    /// Runs `work` on a thread of its own, driven by a plain executor (zbus brings its own
    /// reactor), and waits at most `self.timeout` for it.
    fn call<T, F, Fut>(&self, work: F) -> Result<T, SecretError>
    where
        T: Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, SecretError>>,
    {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("keyring".into())
            .spawn(move || {
                let _ = tx.send(futures::executor::block_on(work()));
            })
            .map_err(|e| SecretError::Keyring(e.to_string()))?;
        match rx.recv_timeout(self.timeout) {
            Ok(result) => result,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                Err(SecretError::KeyringTimeout(self.timeout.as_secs().max(1)))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(SecretError::Keyring(KEYRING_CALL_STOPPED.to_string()))
            }
        }
    }
}

impl SecretStore for KeyringSecretStore {
    fn put(&self, account: Id, secret: &str) -> Result<(), SecretError> {
        let secret = oo7::Secret::text(secret);
        self.call(move || async move {
            let service = connect().await?;
            let collection = service.default_collection().await.map_err(refused)?;
            unlock(&collection).await?;
            collection
                .create_item(
                    &item_label(account),
                    &item_attributes(account),
                    secret,
                    true,
                    None,
                )
                .await
                .map_err(refused)?;
            for old in search(&collection, &legacy_attributes(account)).await? {
                old.delete(None).await.map_err(refused)?;
            }
            Ok(())
        })
    }

    fn get(&self, account: Id) -> Result<Option<String>, SecretError> {
        self.call(move || async move {
            let service = connect().await?;
            let Some(collection) = default_collection(&service).await? else {
                return Ok(None);
            };
            if let Some(item) = search(&collection, &item_attributes(account))
                .await?
                .into_iter()
                .next()
            {
                unlock(&collection).await?;
                return read(&item).await.map(Some);
            }
            let legacy = search(&collection, &legacy_attributes(account)).await?;
            let Some(item) = legacy.first() else {
                return Ok(None);
            };
            unlock(&collection).await?;
            let secret = read(item).await?;
            collection
                .create_item(
                    &item_label(account),
                    &item_attributes(account),
                    oo7::Secret::text(&secret),
                    true,
                    None,
                )
                .await
                .map_err(refused)?;
            for old in &legacy {
                old.delete(None).await.map_err(refused)?;
            }
            tracing::info!(%account, "Moved a Run As secret to this version's keyring item");
            Ok(Some(secret))
        })
    }

    fn delete(&self, account: Id) -> Result<(), SecretError> {
        self.call(move || async move {
            let service = connect().await?;
            let Some(collection) = default_collection(&service).await? else {
                return Ok(());
            };
            let mut items = search(&collection, &item_attributes(account)).await?;
            items.extend(search(&collection, &legacy_attributes(account)).await?);
            if items.is_empty() {
                return Ok(());
            }
            unlock(&collection).await?;
            for item in items {
                item.delete(None).await.map_err(refused)?;
            }
            Ok(())
        })
    }

    fn backend_name(&self) -> &'static str {
        "keyring"
    }

    fn location(&self) -> SecretLocation {
        SecretLocation::Keyring
    }
}

fn refused(e: oo7::dbus::Error) -> SecretError {
    SecretError::Keyring(match e {
        oo7::dbus::Error::Dismissed => "the unlock prompt was dismissed".to_string(),
        e => e.to_string(),
    })
}

async fn connect() -> Result<Service<'static>, SecretError> {
    Service::new().await.map_err(|e| {
        SecretError::Keyring(format!(
            "no Secret Service (desktop keyring) answered on the D-Bus session bus ({e})"
        ))
    })
}

/// The default collection, or `None` when the keyring has none yet (nothing stored).
async fn default_collection(
    service: &Service<'static>,
) -> Result<Option<Collection<'static>>, SecretError> {
    service
        .with_alias(Service::DEFAULT_COLLECTION)
        .await
        .map_err(refused)
}

async fn search(
    collection: &Collection<'static>,
    attributes: &[(&'static str, String)],
) -> Result<Vec<Item<'static>>, SecretError> {
    collection.search_items(&attributes).await.map_err(refused)
}

/// A locked collection is unlocked through the Secret Service's own prompt, which may wait for
/// the user up to the call's timeout.
async fn unlock(collection: &Collection<'static>) -> Result<(), SecretError> {
    if collection.is_locked().await.map_err(refused)? {
        collection.unlock(None).await.map_err(refused)?;
    }
    Ok(())
}

async fn read(item: &Item<'static>) -> Result<String, SecretError> {
    if item.is_locked().await.map_err(refused)? {
        item.unlock(None).await.map_err(refused)?;
    }
    let secret = item.secret().await.map_err(refused)?;
    String::from_utf8(secret.as_bytes().to_vec()).map_err(|_| {
        SecretError::Keyring(
            "the stored Run As secret is not text; enter it again in the account's Properties"
                .to_string(),
        )
    })
}
