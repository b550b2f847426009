//! Where the console keeps its files: an explicit `--data-dir`, else `FABRIC_CONSOLE_DATA`, else the
//! platform's per-user directories (e.g. `~/.local/share/fabric-console` and `~/.config/fabric-console`,
//! with logs in the XDG state directory `~/.local/state/fabric-console/logs`).

use std::path::{Path, PathBuf};

/// Environment variable naming the data directory (also read by `--data-dir`).
pub const DATA_DIR_ENV: &str = "FABRIC_CONSOLE_DATA";

#[derive(Debug, thiserror::Error)]
pub enum PathsError {
    #[error(
        "No home directory was found for the data directory. Pass --data-dir PATH or set {DATA_DIR_ENV}."
    )]
    NoHome,
    #[error(
        "The folder {path} could not be created: {source}. Check the path and its permissions."
    )]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} exists but is not a folder. Choose another --data-dir.")]
    NotADirectory { path: PathBuf },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPaths {
    /// Databases, secrets file (file backend), logs, the embedded IPAM server's data.
    pub data_dir: PathBuf,
    /// Settings (window, theme, last workspace).
    pub config_dir: PathBuf,
    /// Log files: the XDG state directory's `logs` where the platform has one, else the data
    /// directory's.
    pub logs_dir: PathBuf,
    /// A team's PostgreSQL database holding the fabric and the sync state (`--database`);
    /// `None` keeps both in SQLite files in the data directory.
    pub database: Option<crate::db::PgTarget>,
}

impl DataPaths {
    /// Resolves the directories without touching the disk: `explicit` > `FABRIC_CONSOLE_DATA` > the
    /// platform's project directories. With an explicit or environment data directory, settings go
    /// to `data_dir/config` so one folder holds everything.
    pub fn resolve(explicit: Option<&Path>) -> Result<Self, PathsError> {
        if let Some(dir) = explicit.filter(|p| !p.as_os_str().is_empty()) {
            return Ok(Self::in_dir(dir));
        }
        if let Some(dir) = std::env::var_os(DATA_DIR_ENV).filter(|v| !v.is_empty()) {
            return Ok(Self::in_dir(Path::new(&dir)));
        }
        let dirs = directories::ProjectDirs::from("org", "Fabric Console", "fabric-console")
            .ok_or(PathsError::NoHome)?;
        let data_dir = dirs.data_dir().to_path_buf();
        let logs_dir = dirs.state_dir().unwrap_or(&data_dir).join("logs");
        Ok(DataPaths {
            config_dir: dirs.config_dir().to_path_buf(),
            logs_dir,
            data_dir,
            database: None,
        })
    }

    /// Everything under one folder (tests, portable installs).
    pub fn in_dir(data_dir: &Path) -> Self {
        DataPaths {
            data_dir: data_dir.to_path_buf(),
            config_dir: data_dir.join("config"),
            logs_dir: data_dir.join("logs"),
            database: None,
        }
    }

    /// Creates the data, config, logs and embedded IPAM folders (owner-only on Unix when new).
    pub fn create_dirs(&self) -> Result<(), PathsError> {
        for dir in [
            &self.data_dir,
            &self.config_dir,
            &self.logs_dir(),
            &self.embedded_ipam_dir(),
        ] {
            create_private_dir(dir)?;
        }
        Ok(())
    }

    pub fn fabric_db(&self) -> PathBuf {
        self.data_dir.join("fabric.db")
    }

    pub fn sync_db(&self) -> PathBuf {
        self.data_dir.join("sync.db")
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.logs_dir.clone()
    }

    pub fn embedded_ipam_dir(&self) -> PathBuf {
        self.data_dir.join("embedded-ipam")
    }

    pub fn settings_file(&self) -> PathBuf {
        self.config_dir.join("settings.json")
    }

    /// Where the fabric and the sync state live: the team's PostgreSQL database, or this
    /// directory's SQLite files.
    pub fn location(&self) -> crate::db::Location {
        match &self.database {
            Some(t) => crate::db::Location::Postgres(t.clone()),
            None => crate::db::Location::Sqlite(self.data_dir.clone()),
        }
    }

    /// The fabric database as a person reads it: the file, or `postgres://user@host/db`.
    pub fn fabric_shown(&self) -> String {
        self.location().describe(crate::db::Role::Fabric)
    }
}

/// Who may read a file written by [`write_atomically`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readers {
    /// Owner only (0600 on Unix): secrets.
    Owner,
    /// As the umask allows (0644 before the umask on Unix): exports, settings.
    Anyone,
}

/// Writes `bytes` to a temporary file beside `path`, flushes it to disk and renames it over `path`,
/// so a crash or a full disk never leaves half a file and readers see the old or the new one whole.
/// The folder must exist. The temporary file is removed when anything fails.
pub fn write_atomically(path: &Path, bytes: &[u8], readers: Readers) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".fabric-console-").suffix(".tmp");
    #[cfg(unix)]
    if readers == Readers::Anyone {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o644));
    }
    #[cfg(not(unix))]
    let _ = readers;
    let mut file = builder.tempfile_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

fn create_private_dir(dir: &Path) -> Result<(), PathsError> {
    if dir.exists() {
        return if dir.is_dir() {
            Ok(())
        } else {
            Err(PathsError::NotADirectory {
                path: dir.to_path_buf(),
            })
        };
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|source| PathsError::Create {
        path: dir.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_the_whole_file_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        std::fs::write(&path, "old contents that are longer").unwrap();
        write_atomically(&path, b"new", Readers::Owner).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "only the target is left");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        // A folder that does not exist fails and writes nothing.
        let missing = dir.path().join("no/such/out.json");
        assert!(write_atomically(&missing, b"x", Readers::Anyone).is_err());
        assert!(!missing.exists());
    }

    #[test]
    fn explicit_dir_holds_everything() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("console");
        let paths = DataPaths::resolve(Some(&root)).unwrap();
        assert_eq!(paths.data_dir, root);
        assert_eq!(paths.config_dir, root.join("config"));
        assert_eq!(paths.fabric_db(), root.join("fabric.db"));
        assert_eq!(paths.sync_db(), root.join("sync.db"));
        assert_eq!(paths.logs_dir(), root.join("logs"));
        assert_eq!(paths.embedded_ipam_dir(), root.join("embedded-ipam"));
        assert_eq!(
            paths.settings_file(),
            root.join("config").join("settings.json")
        );
        assert!(!root.exists());
        paths.create_dirs().unwrap();
        for d in [
            &paths.data_dir,
            &paths.config_dir,
            &paths.logs_dir(),
            &paths.embedded_ipam_dir(),
        ] {
            assert!(d.is_dir(), "{}", d.display());
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&root).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700);
        }
        // Creating again is fine.
        paths.create_dirs().unwrap();
    }

    #[test]
    fn a_file_in_the_way_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("taken");
        std::fs::write(&file, b"x").unwrap();
        let err = DataPaths::in_dir(&file).create_dirs().unwrap_err();
        assert!(err.to_string().contains("taken"), "{err}");
    }

    #[test]
    fn without_explicit_dir_something_is_resolved() {
        // Either the environment variable or the platform directories; both name a data folder.
        let paths = DataPaths::resolve(None).unwrap();
        assert!(!paths.data_dir.as_os_str().is_empty());
        assert!(paths.settings_file().ends_with("settings.json"));
        assert!(paths.logs_dir().ends_with("logs"));
        // On Linux without FABRIC_CONSOLE_DATA, logs go to the XDG state directory.
        #[cfg(target_os = "linux")]
        if std::env::var_os(DATA_DIR_ENV).is_none_or(|v| v.is_empty()) {
            let state = directories::BaseDirs::new()
                .unwrap()
                .state_dir()
                .unwrap()
                .to_path_buf();
            assert!(
                paths.logs_dir().starts_with(&state),
                "{}",
                paths.logs_dir().display()
            );
            assert!(!paths.logs_dir().starts_with(&paths.data_dir));
        }
    }
}
