//! `db status|migrate|password`: where the fabric and the sync state are kept (the data
//! directory's SQLite files, or a team's PostgreSQL database given with `--database`), and
//! their schema.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::fail;
use crate::db::{Conn, Location, Role};
use crate::fabric::secrets::open_secret_store;
use crate::paths::DataPaths;

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Say where the fabric and sync state are kept, their schema versions, and whether this
    /// Fabric Console can open them. Changes nothing.
    Status,
    /// Create or bring up to date the schema of the fabric and sync state (a new PostgreSQL
    /// database is made ready here; opening it does the same).
    Migrate,
    /// Keep the password of the --database user in the secret store (read from standard input
    /// or --secret-file, never from the command line); it is tried before ~/.pgpass.
    Password {
        /// A file holding the password.
        #[arg(long = "secret-file")]
        secret_file: Option<PathBuf>,
    },
}

pub fn run(paths: &DataPaths, cmd: DbCommand) -> ExitCode {
    match cmd {
        DbCommand::Status => status(paths),
        DbCommand::Migrate => migrate(paths),
        DbCommand::Password { secret_file } => password(paths, secret_file),
    }
}

/// Schema versions this Fabric Console writes.
fn supported(role: Role) -> i64 {
    match role {
        Role::Fabric => crate::fabric::store::SCHEMA_VERSION,
        Role::Sync => crate::sync::journal::SCHEMA_VERSION,
    }
}

fn status(paths: &DataPaths) -> ExitCode {
    let location = paths.location();
    println!("Kept in:  {location}");
    let mut ok = true;
    for role in [Role::Fabric, Role::Sync] {
        let name = match role {
            Role::Fabric => "fabric",
            Role::Sync => "sync state",
        };
        if let Location::Sqlite(dir) = &location
            && !dir.join(crate::db::file_name(role)).exists()
        {
            println!(
                "{name:<10} {}: not created yet (the first start creates it)",
                location.describe(role)
            );
            continue;
        }
        let version = Conn::open(&location, role).and_then(|mut c| c.schema_version());
        match version {
            Ok(v) => {
                let state = match v.cmp(&supported(role)) {
                    std::cmp::Ordering::Equal => "up to date".to_string(),
                    std::cmp::Ordering::Less if v == 0 => {
                        "empty; `fabric-console db migrate` creates it".to_string()
                    }
                    std::cmp::Ordering::Less => {
                        "older; `fabric-console db migrate` brings it up to date".to_string()
                    }
                    std::cmp::Ordering::Greater => {
                        ok = false;
                        "newer than this Fabric Console; open it with a newer one".to_string()
                    }
                };
                println!(
                    "{name:<10} {}: schema {v} of {} ({state})",
                    location.describe(role),
                    supported(role)
                );
            }
            Err(e) => {
                ok = false;
                println!(
                    "{name:<10} {}: cannot be read: {e}",
                    location.describe(role)
                );
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn migrate(paths: &DataPaths) -> ExitCode {
    let location = paths.location();
    if let Location::Sqlite(dir) = &location
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        return fail(format!("the data directory {}: {e}", dir.display()));
    }
    let before: Vec<i64> = [Role::Fabric, Role::Sync]
        .iter()
        .map(|r| match &location {
            Location::Sqlite(dir) if !dir.join(crate::db::file_name(*r)).exists() => 0,
            _ => Conn::open(&location, *r)
                .and_then(|mut c| c.schema_version())
                .unwrap_or(0),
        })
        .collect();
    // Opening migrates, and puts the root host group into a new fabric.
    if let Err(e) = crate::fabric::store::FabricStore::open_at(&location, true) {
        return fail(e);
    }
    if let Err(e) = crate::sync::journal::SyncDb::open_at(&location) {
        return fail(e);
    }
    for (role, from) in [Role::Fabric, Role::Sync].into_iter().zip(before) {
        let to = supported(role);
        if from == to {
            println!(
                "{}: schema {to}, already up to date",
                location.describe(role)
            );
        } else {
            println!("{}: schema {from} -> {to}", location.describe(role));
        }
    }
    ExitCode::SUCCESS
}

fn password(paths: &DataPaths, secret_file: Option<PathBuf>) -> ExitCode {
    let Some(target) = &paths.database else {
        return fail(
            "no --database was given: the password is that of a PostgreSQL database's user (pass --database postgres://user@host/dbname)",
        );
    };
    let secret = match super::run_as::read_secret(secret_file) {
        Ok(s) => s.trim_end_matches(['\r', '\n']).to_string(),
        Err(e) => return fail(e),
    };
    if secret.is_empty() {
        return fail("the password is empty: pipe it on standard input or pass --secret-file");
    }
    // Checked before it is kept: a wrong password is said now, not at the next start.
    let trial = target.clone().with_password(Some(secret.clone()));
    if let Err(e) = Conn::postgres(&trial, Role::Fabric) {
        return fail(format!("the password was not kept: {e}"));
    }
    let secrets = open_secret_store(&paths.data_dir);
    if let Err(e) = secrets.put(target.secret_id(), &secret) {
        return fail(format!(
            "the password could not be kept in the secret store: {e}"
        ));
    }
    println!(
        "The password of {target} is kept in the {} secret store.",
        secrets.backend_name()
    );
    ExitCode::SUCCESS
}
