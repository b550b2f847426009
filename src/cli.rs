//! The command line. No subcommand opens the console; subcommands do headless work on the same
//! data directory. Each subcommand is one `Command` variant handled by a function
//! `fn(&DataPaths, Args) -> ExitCode` (in this file or in its own module).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::fabric::demo::demo_fabric;
use crate::fabric::exchange::{export_json, import_into};
use crate::fabric::model::Fabric;
use crate::fabric::store::FabricStore;
use crate::fabric::validate::validate_fabric;
use crate::logging;
use crate::paths::{DATA_DIR_ENV, DataPaths};

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
    Service(crate::admin::ServiceCommand),
    /// Add or list Run As accounts.
    #[command(subcommand)]
    RunAs(crate::admin::RunAsCommand),
    /// Sync now with every network service (or one), printing the plan and progress.
    Sync(crate::admin::SyncArgs),
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The file to write ("-" writes to standard output).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The export file to read ("-" reads standard input).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// About how many objects to create (subnets count), 0 to 200000.
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(0..=200_000))]
    pub size: u32,
    /// Seed: the same size and seed give the same fabric.
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub seed: u64,
    /// Replace a fabric that already holds objects.
    #[arg(long)]
    pub replace: bool,
    /// Also start the built-in IPAM server in-process, add it as a network service and sync.
    #[arg(long = "with-ipam")]
    pub with_ipam: bool,
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
        return open_console(&paths, true);
    }
    run(cli.command, &paths)
}

/// Runs one command against the data directory.
pub fn run(command: Option<Command>, paths: &DataPaths) -> ExitCode {
    match command {
        None => open_console(paths, false),
        Some(Command::Export(args)) => export(paths, args),
        Some(Command::Import(args)) => import(paths, args),
        Some(Command::Demo(args)) => demo(paths, args),
        Some(Command::Check) => check(paths),
        Some(Command::IpamServer(args)) => match crate::ipam_server::cli::run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(e),
        },
        Some(Command::Service(cmd)) => crate::admin::service(paths, cmd),
        Some(Command::RunAs(cmd)) => crate::admin::run_as(paths, cmd),
        Some(Command::Sync(args)) => crate::admin::sync(paths, args),
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

fn open_console(paths: &DataPaths, demo: bool) -> ExitCode {
    match crate::ui::run(paths, demo) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

fn open_store(paths: &DataPaths) -> Result<FabricStore, ExitCode> {
    FabricStore::open(&paths.fabric_db()).map_err(fail)
}

fn export(paths: &DataPaths, args: ExportArgs) -> ExitCode {
    let store = match open_store(paths) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let fabric = store.fabric();
    let text = export_json(&fabric);
    let summary = format!("Exported {} objects", fabric.object_count());
    if args.file == Path::new("-") {
        let mut out = std::io::stdout().lock();
        if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
            return fail(format!("Standard output could not be written: {e}."));
        }
        eprintln!("{summary} to standard output.");
        return ExitCode::SUCCESS;
    }
    match write_atomically(&args.file, text.as_bytes()) {
        Ok(()) => {
            println!("{summary} to {}.", args.file.display());
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!(
            "The export file {} could not be written: {e}. Check the folder exists and is writable.",
            args.file.display()
        )),
    }
}

/// Writes beside the target and renames, so a failed export never leaves half a file.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "export".to_string());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn import(paths: &DataPaths, args: ImportArgs) -> ExitCode {
    let text = if args.file == Path::new("-") {
        let mut text = String::new();
        if let Err(e) = std::io::stdin().read_to_string(&mut text) {
            return fail(format!("Standard input could not be read as text: {e}."));
        }
        text
    } else {
        match std::fs::read_to_string(&args.file) {
            Ok(t) => t,
            Err(e) => {
                return fail(format!(
                    "The import file {} could not be read: {e}. Check the path.",
                    args.file.display()
                ));
            }
        }
    };
    let store = match open_store(paths) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match import_into(&store, &text) {
        Ok(fabric) => {
            println!(
                "Imported {} objects from {} into {}.",
                fabric.object_count(),
                args.file.display(),
                paths.fabric_db().display()
            );
            let accounts = fabric.run_as_accounts.len();
            if accounts > 0 {
                println!(
                    "Exports carry no passwords: enter the secrets of the {accounts} Run As account(s) again."
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "error: {} was not imported because of {} problem(s); the fabric is unchanged:",
                args.file.display(),
                e.problems.len()
            );
            for (i, problem) in e.problems.iter().enumerate() {
                eprintln!("  {}) {problem}", i + 1);
            }
            ExitCode::FAILURE
        }
    }
}

/// "3 host groups, 1 Run As account, …" for the kinds present.
fn describe_contents(f: &Fabric) -> String {
    let subnets: usize = f.network_sites.values().map(|s| s.subnets.len()).sum();
    let parts = [
        (f.host_groups.len(), "host group", "host groups"),
        (f.run_as_accounts.len(), "Run As account", "Run As accounts"),
        (
            f.logical_networks.len(),
            "logical network",
            "logical networks",
        ),
        (f.network_sites.len(), "network site", "network sites"),
        (subnets, "subnet", "subnets"),
        (
            f.ip_pools.len(),
            "static IP address pool",
            "static IP address pools",
        ),
        (f.vm_networks.len(), "VM network", "VM networks"),
        (
            f.network_services.len(),
            "network service",
            "network services",
        ),
    ];
    parts
        .iter()
        .filter(|(n, _, _)| *n > 0)
        .map(|(n, one, many)| format!("{n} {}", if *n == 1 { one } else { many }))
        .collect::<Vec<_>>()
        .join(", ")
}

fn demo(paths: &DataPaths, args: DemoArgs) -> ExitCode {
    let store = match open_store(paths) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let current = store.fabric();
    // Anything beyond the root host group is someone's work: keep it unless told otherwise.
    if current.object_count() > 1 && !args.replace {
        return fail(format!(
            "The fabric in {} already holds {}. Pass --replace to replace it with the demo, or choose another --data-dir.",
            paths.fabric_db().display(),
            describe_contents(&current)
        ));
    }
    let fabric = demo_fabric(args.size as usize, args.seed);
    match store.replace_all(fabric) {
        Ok(f) => {
            println!(
                "Filled {} with a demo fabric (size {}, seed {}): {}.",
                paths.fabric_db().display(),
                args.size,
                args.seed,
                describe_contents(&f)
            );
            if args.with_ipam {
                return crate::admin::demo_with_ipam(paths, &store);
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

fn check(paths: &DataPaths) -> ExitCode {
    let store = match open_store(paths) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let fabric = store.fabric();
    let problems = validate_fabric(&fabric);
    if problems.is_empty() {
        println!(
            "The fabric in {} is valid: {} objects.",
            paths.fabric_db().display(),
            fabric.object_count()
        );
        return ExitCode::SUCCESS;
    }
    eprintln!(
        "error: the fabric in {} has {} problem(s):",
        paths.fabric_db().display(),
        problems.len()
    );
    for (i, p) in problems.iter().enumerate() {
        eprintln!("  {}) {p}", i + 1);
    }
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn demo_refuses_to_overwrite_and_check_passes_on_a_demo() {
        let dir = tempfile::tempdir().unwrap();
        let paths = DataPaths::in_dir(dir.path());
        paths.create_dirs().unwrap();
        let demo_args = |replace| DemoArgs {
            size: 200,
            seed: 4,
            replace,
            with_ipam: false,
        };
        assert_eq!(demo(&paths, demo_args(false)), ExitCode::SUCCESS);
        let before = FabricStore::open(&paths.fabric_db()).unwrap().fabric();
        assert_eq!(*before, demo_fabric(200, 4));
        assert_eq!(
            demo(
                &paths,
                DemoArgs {
                    seed: 5,
                    ..demo_args(false)
                }
            ),
            ExitCode::FAILURE
        );
        assert_eq!(
            FabricStore::open(&paths.fabric_db()).unwrap().fabric(),
            before
        );
        assert_eq!(
            demo(
                &paths,
                DemoArgs {
                    seed: 5,
                    ..demo_args(true)
                }
            ),
            ExitCode::SUCCESS
        );
        assert_eq!(
            *FabricStore::open(&paths.fabric_db()).unwrap().fabric(),
            demo_fabric(200, 5)
        );
        assert_eq!(check(&paths), ExitCode::SUCCESS);
    }
}
