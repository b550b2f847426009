//! Where the console keeps its files: an explicit `--data-dir`, else `FABRIC_CONSOLE_DATA`, else the
//! platform's per-user directories (e.g. `~/.local/share/fabric-console` and `~/.config/fabric-console`).

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
        Ok(DataPaths {
            data_dir: dirs.data_dir().to_path_buf(),
            config_dir: dirs.config_dir().to_path_buf(),
        })
    }

    /// Everything under one folder (tests, portable installs).
    pub fn in_dir(data_dir: &Path) -> Self {
        DataPaths {
            data_dir: data_dir.to_path_buf(),
            config_dir: data_dir.join("config"),
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
        self.data_dir.join("logs")
    }

    pub fn embedded_ipam_dir(&self) -> PathBuf {
        self.data_dir.join("embedded-ipam")
    }

    pub fn settings_file(&self) -> PathBuf {
        self.config_dir.join("settings.json")
    }
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
    }
}
