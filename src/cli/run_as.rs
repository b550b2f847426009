//! `run-as add|list`: Run As accounts, headless; secrets come from standard input or a file.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use uuid::Uuid;

use super::{fail, open_store, runtime};
use crate::fabric::model::RunAsAccount;
use crate::fabric::secrets::open_secret_store;
use crate::paths::DataPaths;

#[derive(Debug, Subcommand)]
pub enum RunAsCommand {
    /// Add a Run As account. The password or token is read from standard input, or from --secret-file.
    Add {
        #[arg(long)]
        name: String,
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "")]
        description: String,
        /// A file holding the password or token (never pass a secret on the command line).
        #[arg(long = "secret-file")]
        secret_file: Option<PathBuf>,
    },
    /// List Run As accounts (never their secrets).
    List,
}

pub(super) fn run(paths: &DataPaths, cmd: RunAsCommand) -> ExitCode {
    let store = match open_store(paths) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match cmd {
        RunAsCommand::List => {
            for r in store.fabric().run_as_accounts.values() {
                println!("{:<32} {:<24} {}", r.name, r.user_name, r.description);
            }
            ExitCode::SUCCESS
        }
        RunAsCommand::Add {
            name,
            user,
            description,
            secret_file,
        } => {
            let secret = match read_secret(secret_file) {
                Ok(s) => s.trim_end_matches(['\r', '\n']).to_string(),
                Err(e) => return fail(e),
            };
            if secret.is_empty() {
                return fail(
                    "the password or token is empty: pipe it on standard input or pass --secret-file",
                );
            }
            let account = RunAsAccount {
                id: Uuid::new_v4(),
                name: name.trim().to_string(),
                description,
                user_name: user,
            };
            let rt = match runtime() {
                Ok(r) => r,
                Err(code) => return code,
            };
            let secrets = open_secret_store(&paths.data_dir);
            let name = account.name.clone();
            match rt.block_on(crate::ops::run_as::save(
                &store,
                &secrets,
                account,
                Some(secret),
            )) {
                Ok(_) => {
                    println!(
                        "Added Run As account \"{name}\" (secret kept in the {} secret store).",
                        secrets.backend_name()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
    }
}

pub(super) fn read_secret(secret_file: Option<PathBuf>) -> Result<String, String> {
    match secret_file {
        Some(p) => {
            std::fs::read_to_string(&p).map_err(|e| format!("--secret-file {}: {e}", p.display()))
        }
        None => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map(|_| s)
                .map_err(|e| format!("standard input: {e}"))
        }
    }
}
