//! Run As secrets (passwords, API tokens), kept apart from the fabric database: in the system keyring
//! (the freedesktop.org Secret Service) when it answers, else in an owner-only `secrets.json` in the
//! data directory. Platforms without the Secret Service always use the file. Where the secrets are
//! is shown in Settings ▸ Run As Accounts. No secret is ever logged or shown by `Debug`.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use super::model::Id;

/// The `service` attribute of every keyring item the console stores.
pub const KEYRING_SERVICE: &str = "fabric-console";
/// File backend's file name inside the data directory.
pub const SECRETS_FILE: &str = "secrets.json";
/// Set to `file` or `keyring` to skip probing and use that backend.
pub const BACKEND_ENV: &str = "FABRIC_CONSOLE_SECRET_BACKEND";
/// A keyring that does not answer this fast at startup is treated as absent.
pub const KEYRING_PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Later keyring calls may wait for the user to unlock the keyring.
pub const KEYRING_CALL_TIMEOUT: Duration = Duration::from_secs(30);

pub trait SecretStore: Send + Sync {
    fn put(&self, account: Id, secret: &str) -> Result<(), SecretError>;
    fn get(&self, account: Id) -> Result<Option<String>, SecretError>;
    /// Deleting a secret that is not there succeeds.
    fn delete(&self, account: Id) -> Result<(), SecretError>;
    /// "keyring", "file" or "memory", for logs and the command line.
    fn backend_name(&self) -> &'static str;
    /// Where the secrets are kept, for the Settings screen.
    fn location(&self) -> SecretLocation;
}

/// Where a secret store keeps the Run As secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretLocation {
    /// The system keyring, through the Secret Service.
    Keyring,
    /// The owner-only secrets file.
    File { path: PathBuf, reason: FileReason },
    /// Memory only: gone when the process ends.
    Memory,
}

/// Why the secrets are in the owner-only file rather than the system keyring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileReason {
    /// The Secret Service did not answer (or failed) when the console started.
    NoKeyringAnswered,
    /// This platform has no Secret Service.
    NoSecretService,
    /// `FABRIC_CONSOLE_SECRET_BACKEND=file`.
    Chosen,
    /// The demo fabric keeps its own secrets next to it.
    Demo,
}

impl SecretLocation {
    /// One or two sentences for people: which store holds the secrets and, for the file, who can
    /// read it and why it is used.
    pub fn summary(&self) -> String {
        match self {
            SecretLocation::Keyring => "Run As passwords and tokens are kept in the system keyring \
                 (Secret Service), as items labelled \"Fabric Console Run As account …\"."
                .to_string(),
            SecretLocation::File { path, reason } => {
                let why = match reason {
                    FileReason::NoKeyringAnswered => {
                        "because no system keyring (Secret Service) answered when the console started"
                    }
                    FileReason::NoSecretService => {
                        "because this system has no Secret Service keyring"
                    }
                    FileReason::Chosen => "because FABRIC_CONSOLE_SECRET_BACKEND=file is set",
                    FileReason::Demo => "because this is the demo fabric",
                };
                format!(
                    "Run As passwords and tokens are kept in a file readable only by this user, {why}: {}",
                    path.display()
                )
            }
            SecretLocation::Memory => {
                "Run As passwords and tokens are kept in memory only and are forgotten when the console closes."
                    .to_string()
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("The system keyring refused the request: {0}. Unlock the keyring and try again.")]
    Keyring(String),
    #[error(
        "The system keyring did not answer within {0} seconds. Unlock the keyring and try again."
    )]
    KeyringTimeout(u64),
    #[error(
        "The secrets file {path} could not be {action}: {source}. Check the file and its folder's permissions."
    )]
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
    #[error(
        "The secrets file {path} is damaged ({message}). Move it aside and enter the Run As passwords again."
    )]
    Damaged { path: PathBuf, message: String },
    #[error(
        "The secrets file {path} is readable by other users (mode {mode:o}) and could not be restricted. Run `chmod 600` on it."
    )]
    Permissions { path: PathBuf, mode: u32 },
}

// ---------------------------------------------------------------- keyring

/// Whether this platform has the freedesktop.org Secret Service at all (Linux and the BSDs). Elsewhere
/// Run As secrets always go to the owner-only file: no other system keyring is used.
pub const SECRET_SERVICE_PLATFORM: bool = cfg!(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "dragonfly",
    target_os = "netbsd",
    target_os = "openbsd"
));

#[cfg(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "dragonfly",
    target_os = "netbsd",
    target_os = "openbsd"
))]
pub mod secret_service;
#[cfg(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "dragonfly",
    target_os = "netbsd",
    target_os = "openbsd"
))]
pub use secret_service::KeyringSecretStore;

// ---------------------------------------------------------------- file

/// `secrets.json` in the data directory: a JSON map from account id to secret, mode 0600, replaced
/// atomically (temp file + rename) on every change.
pub struct FileSecretStore {
    path: PathBuf,
    reason: FileReason,
    /// Serialises read-modify-write within this process.
    lock: Mutex<()>,
}

impl std::fmt::Debug for FileSecretStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSecretStore")
            .field("path", &self.path)
            .field("reason", &self.reason)
            .finish_non_exhaustive()
    }
}

impl FileSecretStore {
    /// Uses `data_dir/secrets.json`; nothing is created until the first `put`.
    pub fn new(data_dir: &Path) -> Self {
        FileSecretStore {
            path: data_dir.join(SECRETS_FILE),
            reason: FileReason::Chosen,
            lock: Mutex::new(()),
        }
    }

    /// Records why the file is used instead of the system keyring (shown in Settings).
    pub fn because(mut self, reason: FileReason) -> Self {
        self.reason = reason;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io_error(&self, action: &'static str) -> impl FnOnce(std::io::Error) -> SecretError + '_ {
        move |source| SecretError::Io {
            path: self.path.clone(),
            action,
            source,
        }
    }

    fn damaged(&self, e: serde_json::Error) -> SecretError {
        SecretError::Damaged {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// The file's permission bits.
    #[cfg(unix)]
    fn mode(&self) -> Result<u32, SecretError> {
        use std::os::unix::fs::PermissionsExt;
        Ok(fs::metadata(&self.path)
            .map_err(self.io_error("checked"))?
            .permissions()
            .mode())
    }

    fn read(&self) -> Result<BTreeMap<String, String>, SecretError> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(self.io_error("read")(e)),
        };
        self.restrict_permissions()?;
        serde_json::from_slice(&bytes).map_err(|e| self.damaged(e))
    }

    /// A file that others can read (copied, restored from backup) is tightened back to 0600.
    #[cfg(unix)]
    fn restrict_permissions(&self) -> Result<(), SecretError> {
        use std::os::unix::fs::PermissionsExt;
        let mode = self.mode()?;
        if mode & 0o077 == 0 {
            return Ok(());
        }
        tracing::warn!(
            path = %self.path.display(),
            mode = format!("{:o}", mode & 0o777),
            "The secrets file was readable by other users; restricting it to its owner"
        );
        fs::set_permissions(&self.path, fs::Permissions::from_mode(0o600)).map_err(|_| {
            SecretError::Permissions {
                path: self.path.clone(),
                mode: mode & 0o777,
            }
        })
    }

    #[cfg(not(unix))]
    fn restrict_permissions(&self) -> Result<(), SecretError> {
        Ok(())
    }

    fn write(&self, secrets: &BTreeMap<String, String>) -> Result<(), SecretError> {
        let dir = self
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        fs::create_dir_all(&dir).map_err(self.io_error("given a folder"))?;
        let body = serde_json::to_vec_pretty(secrets).map_err(|e| self.damaged(e))?;
        crate::paths::write_atomically(&self.path, &body, crate::paths::Readers::Owner)
            .map_err(self.io_error("written"))?;
        self.check_owner_only()
    }

    #[cfg(unix)]
    fn check_owner_only(&self) -> Result<(), SecretError> {
        let mode = self.mode()?;
        if mode & 0o077 != 0 {
            return Err(SecretError::Permissions {
                path: self.path.clone(),
                mode: mode & 0o777,
            });
        }
        Ok(())
    }

    #[cfg(not(unix))]
    fn check_owner_only(&self) -> Result<(), SecretError> {
        Ok(())
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl SecretStore for FileSecretStore {
    fn put(&self, account: Id, secret: &str) -> Result<(), SecretError> {
        let _guard = self.guard();
        let mut secrets = self.read()?;
        secrets.insert(account.to_string(), secret.to_string());
        self.write(&secrets)
    }

    fn get(&self, account: Id) -> Result<Option<String>, SecretError> {
        let _guard = self.guard();
        Ok(self.read()?.remove(&account.to_string()))
    }

    fn delete(&self, account: Id) -> Result<(), SecretError> {
        let _guard = self.guard();
        let mut secrets = self.read()?;
        if secrets.remove(&account.to_string()).is_some() {
            self.write(&secrets)?;
        }
        Ok(())
    }

    fn backend_name(&self) -> &'static str {
        "file"
    }

    fn location(&self) -> SecretLocation {
        SecretLocation::File {
            path: self.path.clone(),
            reason: self.reason,
        }
    }
}

// ---------------------------------------------------------------- memory

/// Secrets that live only as long as the process, for tests and previews.
#[derive(Default)]
pub struct MemorySecretStore {
    secrets: Mutex<HashMap<Id, String>>,
}

impl MemorySecretStore {
    pub fn new() -> Self {
        Self::default()
    }
}

impl std::fmt::Debug for MemorySecretStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemorySecretStore").finish_non_exhaustive()
    }
}

impl SecretStore for MemorySecretStore {
    fn put(&self, account: Id, secret: &str) -> Result<(), SecretError> {
        self.secrets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(account, secret.to_string());
        Ok(())
    }

    fn get(&self, account: Id) -> Result<Option<String>, SecretError> {
        Ok(self
            .secrets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&account)
            .cloned())
    }

    fn delete(&self, account: Id) -> Result<(), SecretError> {
        self.secrets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&account);
        Ok(())
    }

    fn backend_name(&self) -> &'static str {
        "memory"
    }

    fn location(&self) -> SecretLocation {
        SecretLocation::Memory
    }
}

// ---------------------------------------------------------------- choosing a backend

/// The keyring when it answers within two seconds, else the file backend in `data_dir`; always
/// the file on platforms without the Secret Service. `FABRIC_CONSOLE_SECRET_BACKEND=file|keyring`
/// skips the probe.
pub fn open_secret_store(data_dir: &Path) -> Arc<dyn SecretStore> {
    open_with_setting(
        std::env::var(BACKEND_ENV).ok().as_deref(),
        data_dir,
        probe_keyring,
    )
}

fn open_with_setting(
    setting: Option<&str>,
    data_dir: &Path,
    probe: impl FnOnce() -> Result<(), SecretError> + Send + 'static,
) -> Arc<dyn SecretStore> {
    let file = |reason| Arc::new(FileSecretStore::new(data_dir).because(reason));
    match setting {
        Some("file") => return file(FileReason::Chosen),
        Some("keyring") => return keyring_store(data_dir),
        Some(other) => tracing::warn!(
            value = other,
            "{BACKEND_ENV} is neither \"file\" nor \"keyring\"; choosing the backend as if it were unset"
        ),
        None => {}
    }
    if !SECRET_SERVICE_PLATFORM {
        return keyring_store(data_dir);
    }
    choose_backend(data_dir, probe, KEYRING_PROBE_TIMEOUT)
}

#[cfg(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "dragonfly",
    target_os = "netbsd",
    target_os = "openbsd"
))]
fn keyring_store(_data_dir: &Path) -> Arc<dyn SecretStore> {
    Arc::new(KeyringSecretStore::new())
}

#[cfg(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "dragonfly",
    target_os = "netbsd",
    target_os = "openbsd"
))]
fn probe_keyring() -> Result<(), SecretError> {
    KeyringSecretStore::probe(KEYRING_PROBE_TIMEOUT)
}

/// No Secret Service here, and no other system keyring is used: the owner-only file, said so.
#[cfg(not(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "dragonfly",
    target_os = "netbsd",
    target_os = "openbsd"
)))]
fn keyring_store(data_dir: &Path) -> Arc<dyn SecretStore> {
    let file = FileSecretStore::new(data_dir).because(FileReason::NoSecretService);
    tracing::info!(
        path = %file.path().display(),
        "This system has no Secret Service keyring; Run As secrets are kept in the file backend, readable only by this user"
    );
    Arc::new(file)
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "dragonfly",
    target_os = "netbsd",
    target_os = "openbsd"
)))]
fn probe_keyring() -> Result<(), SecretError> {
    Err(SecretError::Keyring(
        "this system has no Secret Service".into(),
    ))
}

/// Runs `probe` on its own thread and falls back to the file backend if it fails or takes too long.
fn choose_backend(
    data_dir: &Path,
    probe: impl FnOnce() -> Result<(), SecretError> + Send + 'static,
    timeout: Duration,
) -> Arc<dyn SecretStore> {
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("keyring-probe".into())
        .spawn(move || {
            let _ = tx.send(probe());
        });
    let outcome = match spawned {
        Ok(_) => rx
            .recv_timeout(timeout)
            .unwrap_or(Err(SecretError::KeyringTimeout(timeout.as_secs().max(1)))),
        Err(e) => Err(SecretError::Keyring(e.to_string())),
    };
    match outcome {
        Ok(()) => {
            tracing::info!("Run As secrets are kept in the system keyring");
            keyring_store(data_dir)
        }
        Err(e) => {
            let file = FileSecretStore::new(data_dir).because(FileReason::NoKeyringAnswered);
            tracing::warn!(
                reason = %e,
                path = %file.path().display(),
                "The system keyring did not answer; Run As secrets are kept in the file backend, readable only by this user"
            );
            Arc::new(file)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;
    use uuid::Uuid;

    fn round_trip(store: &dyn SecretStore) {
        let a = Uuid::new_v4();
        let b = Uuid::new_v4();
        assert_eq!(store.get(a).unwrap(), None);
        store.put(a, "P@ssw0rd!").unwrap();
        store.put(b, "token-b").unwrap();
        assert_eq!(store.get(a).unwrap().as_deref(), Some("P@ssw0rd!"));
        store.put(a, "changed").unwrap();
        assert_eq!(store.get(a).unwrap().as_deref(), Some("changed"));
        store.delete(a).unwrap();
        store.delete(a).unwrap();
        assert_eq!(store.get(a).unwrap(), None);
        assert_eq!(store.get(b).unwrap().as_deref(), Some("token-b"));
    }

    #[test]
    fn memory_store_round_trip() {
        let store = MemorySecretStore::new();
        round_trip(&store);
        assert!(!format!("{store:?}").contains("token-b"));
    }

    #[test]
    fn file_store_round_trip_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileSecretStore::new(dir.path());
        round_trip(&store);
        let account = Uuid::new_v4();
        store.put(account, "kept").unwrap();
        let reopened = FileSecretStore::new(dir.path());
        assert_eq!(reopened.get(account).unwrap().as_deref(), Some("kept"));
        // No temp files are left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec![SECRETS_FILE.to_string()]);
    }

    #[cfg(unix)]
    #[test]
    fn file_store_is_owner_only_and_tightens_loose_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = FileSecretStore::new(dir.path());
        store.put(Uuid::new_v4(), "s3cret").unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(store.path()), 0o600);
        fs::set_permissions(store.path(), fs::Permissions::from_mode(0o644)).unwrap();
        store.get(Uuid::new_v4()).unwrap();
        assert_eq!(mode(store.path()), 0o600);
        store.put(Uuid::new_v4(), "again").unwrap();
        assert_eq!(mode(store.path()), 0o600);
    }

    #[test]
    fn damaged_file_is_reported_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileSecretStore::new(dir.path());
        fs::write(store.path(), b"{not json").unwrap();
        let err = store.put(Uuid::new_v4(), "x").unwrap_err();
        assert!(matches!(err, SecretError::Damaged { .. }), "{err}");
        assert!(err.to_string().contains("secrets.json"));
        assert_eq!(fs::read(store.path()).unwrap(), b"{not json");
    }

    #[test]
    fn keyring_that_hangs_falls_back_to_file_within_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let store = choose_backend(
            dir.path(),
            || {
                std::thread::sleep(Duration::from_secs(20));
                Ok(())
            },
            Duration::from_millis(200),
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(store.backend_name(), "file");
        round_trip(store.as_ref());
    }

    #[test]
    fn keyring_that_fails_falls_back_and_one_that_answers_is_used() {
        let dir = tempfile::tempdir().unwrap();
        let store = choose_backend(
            dir.path(),
            || Err(SecretError::Keyring("no D-Bus session".into())),
            Duration::from_secs(2),
        );
        assert_eq!(store.backend_name(), "file");
        match store.location() {
            SecretLocation::File { path, reason } => {
                assert_eq!(path, dir.path().join(SECRETS_FILE));
                assert_eq!(reason, FileReason::NoKeyringAnswered);
            }
            other => panic!("{other:?}"),
        }
        let store = choose_backend(dir.path(), || Ok(()), Duration::from_secs(2));
        let expected = if SECRET_SERVICE_PLATFORM {
            "keyring"
        } else {
            "file"
        };
        assert_eq!(store.backend_name(), expected);
    }

    #[test]
    fn settings_summary_names_the_store_and_for_the_file_its_reader_path_and_reason() {
        let keyring = SecretLocation::Keyring.summary();
        assert!(keyring.contains("system keyring"), "{keyring}");
        let dir = tempfile::tempdir().unwrap();
        let file = FileSecretStore::new(dir.path())
            .because(FileReason::NoKeyringAnswered)
            .location()
            .summary();
        assert!(file.contains("readable only by this user"), "{file}");
        assert!(file.contains("no system keyring"), "{file}");
        assert!(
            file.contains(&dir.path().join(SECRETS_FILE).display().to_string()),
            "{file}"
        );
        let platform = FileSecretStore::new(dir.path())
            .because(FileReason::NoSecretService)
            .location()
            .summary();
        assert!(platform.contains("no Secret Service"), "{platform}");
        assert!(
            MemorySecretStore::new()
                .location()
                .summary()
                .contains("forgotten")
        );
    }

    #[test]
    fn the_setting_chooses_the_file_without_probing() {
        let dir = tempfile::tempdir().unwrap();
        let probed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = probed.clone();
        let store = open_with_setting(Some("file"), dir.path(), move || {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        });
        assert!(!probed.load(std::sync::atomic::Ordering::SeqCst));
        assert_eq!(
            store.location(),
            SecretLocation::File {
                path: dir.path().join(SECRETS_FILE),
                reason: FileReason::Chosen
            }
        );
        // An unknown value probes as if unset.
        let store = open_with_setting(Some("vault"), dir.path(), || {
            Err(SecretError::Keyring("no D-Bus session".into()))
        });
        assert_eq!(store.backend_name(), "file");
    }

    #[cfg(any(
        target_os = "linux",
        target_os = "freebsd",
        target_os = "dragonfly",
        target_os = "netbsd",
        target_os = "openbsd"
    ))]
    #[test]
    fn keyring_calls_never_panic_inside_a_runtime() {
        use secret_service::KEYRING_CALL_STOPPED;
        // Whatever the machine offers (keyring or not), a call from async code answers or errs.
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let store = KeyringSecretStore::with_timeout(Duration::from_secs(3));
            let result = store.get(Uuid::new_v4());
            assert!(
                !matches!(&result, Err(SecretError::Keyring(m)) if m == KEYRING_CALL_STOPPED),
                "{result:?}"
            );
        });
    }
}
