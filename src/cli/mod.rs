//! The command line. No subcommand opens the console; subcommands do headless work on the same
//! data directory. Each command group has its own module with a function
//! `fn(&DataPaths, Args) -> ExitCode`; the work itself is in `crate::ops`.

mod console;
pub mod fabric;
pub mod run_as;
pub mod service;
pub mod sync;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::fabric::store::FabricStore;
use crate::logging;
use crate::paths::{DATA_DIR_ENV, DataPaths};

pub use fabric::{DemoArgs, ExportArgs, ImportArgs};

/// Exit code for a bad command line (clap's convention).
pub const EXIT_USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "fabric-console",
    version,
    about = "A console for a virtualization fabric's networks, kept in two-way sync with IPAM servers",
    long_about = None
)]
pub struct Cli {
    /// Folder for the fabric database, secrets file (when no keyring answers), logs and settings.
    #[arg(long, global = true, env = DATA_DIR_ENV, value_name = "PATH")]
    pub data_dir: Option<PathBuf>,

    /// Open the console on a fresh demo fabric (kept in <data dir>/demo, reset at every start)
    /// with the embedded IPAM server added as a network service and syncing.
    #[arg(long)]
    pub demo: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write the whole fabric to a JSON file ("-" for standard output). Secrets are never exported.
    Export(ExportArgs),
    /// Replace the fabric with one from an export file; on any problem nothing changes.
    Import(ImportArgs),
    /// Fill the fabric with a generated demo (host groups, logical networks, sites, pools, VM networks).
    Demo(DemoArgs),
    /// Validate the stored fabric and list every problem.
    Check,
    /// Run the built-in IPAM server, or issue one of its tokens (`ipam-server token`).
    IpamServer(crate::ipam_server::cli::IpamServerArgs),
    /// Add, list, test or remove network services (IPAM servers).
    #[command(subcommand)]
    Service(service::ServiceCommand),
    /// Add or list Run As accounts.
    #[command(subcommand)]
    RunAs(run_as::RunAsCommand),
    /// Sync now with every network service (or one), printing the plan and progress.
    Sync(sync::SyncArgs),
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let paths = match DataPaths::resolve(cli.data_dir.as_deref()) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    if let Err(e) = paths.create_dirs() {
        return fail(e);
    }
    // Without a log file the commands still work; `init` itself warns on stderr.
    let _log = logging::init(&paths.logs_dir()).ok();
    if cli.demo && cli.command.is_none() {
        return console::open(&paths, true);
    }
    run(cli.command, &paths)
}

/// Runs one command against the data directory.
pub fn run(command: Option<Command>, paths: &DataPaths) -> ExitCode {
    match command {
        None => console::open(paths, false),
        Some(Command::Export(args)) => fabric::export(paths, args),
        Some(Command::Import(args)) => fabric::import(paths, args),
        Some(Command::Demo(args)) => fabric::demo(paths, args),
        Some(Command::Check) => fabric::check(paths),
        Some(Command::IpamServer(args)) => match crate::ipam_server::cli::run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(e),
        },
        Some(Command::Service(cmd)) => service::run(paths, cmd),
        Some(Command::RunAs(cmd)) => run_as::run(paths, cmd),
        Some(Command::Sync(args)) => sync::run(paths, args),
    }
}

/// Prints `error: <sentence>` and returns a failure code.
pub fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

/// clap's multi-line report folded into one line that names the argument.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        _ => {
            let text = e.render().to_string();
            let mut parts: Vec<&str> = Vec::new();
            for line in text.lines() {
                let line = line.trim();
                if line.starts_with("Usage:") || line.starts_with("For more information") {
                    break;
                }
                if !line.is_empty() && !line.starts_with("tip:") {
                    parts.push(line);
                }
            }
            let mut message = parts.join(" ");
            if message.is_empty() {
                message = "error: the command line is not valid".to_string();
            }
            eprintln!("{message} (see fabric-console --help)");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// The fabric store of the data directory; a failure is already reported.
fn open_store(paths: &DataPaths) -> Result<FabricStore, ExitCode> {
    crate::ops::boot::open_store(paths).map_err(fail)
}

/// A runtime for the async operations of one command; a failure is already reported.
fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Runtime::new().map_err(fail)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_subcommands_and_global_data_dir() {
        let cli = Cli::try_parse_from([
            "fabric-console",
            "demo",
            "--size",
            "50",
            "--data-dir",
            "/tmp/x",
        ])
        .unwrap();
        assert_eq!(cli.data_dir.as_deref(), Some(Path::new("/tmp/x")));
        match cli.command {
            Some(Command::Demo(a)) => {
                assert_eq!(a.size, 50);
                assert_eq!(a.seed, 1);
                assert!(!a.replace);
            }
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from(["fabric-console"]).unwrap();
        assert!(cli.command.is_none());
    }

    #[test]
    fn bad_arguments_are_named() {
        let err = Cli::try_parse_from(["fabric-console", "demo", "--size", "lots"]).unwrap_err();
        assert!(err.to_string().contains("--size"), "{err}");
        let err = Cli::try_parse_from(["fabric-console", "demo", "--size", "300000"]).unwrap_err();
        assert!(err.to_string().contains("--size"), "{err}");
        let err = Cli::try_parse_from(["fabric-console", "import"]).unwrap_err();
        assert!(err.to_string().contains("FILE"), "{err}");
    }
}
