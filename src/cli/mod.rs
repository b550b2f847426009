//! The command line. No subcommand opens the console; subcommands do headless work on the same
//! data directory. Each command group has its own module with a function
//! `fn(&DataPaths, Args) -> ExitCode`; the work itself is in `crate::ops`.

pub mod address;
mod console;
pub mod db;
pub mod fabric;
pub mod run_as;
pub mod service;
pub mod sync;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::fabric::store::FabricStore;
use crate::logging;
use crate::paths::{DATA_DIR_ENV, DataPaths};

/// The environment's `--database`.
pub const DATABASE_ENV: &str = "FABRIC_CONSOLE_DATABASE";

pub use fabric::{DemoArgs, ExportArgs, ImportArgs};

/// Exit code for a bad command line (clap's convention).
pub const EXIT_USAGE: u8 = 2;

/// Shown after `--help`.
const EXAMPLES: &str = "\
Examples:
  fabric-console                                  open the console
  fabric-console --demo                           open it on a demo fabric synced to the embedded IPAM server
  fabric-console demo --size 1000                 fill an empty fabric with a generated demo
  printf %s \"$TOKEN\" | fabric-console run-as add --name \"IPAM svc\" --user svc-ipam
  fabric-console service add --name ipam1 --model \"Fabric Console IPAM Server\" \\
      --connection ipam1.contoso.com:48885 --run-as \"IPAM svc\" --all-host-groups
  fabric-console sync --service ipam1 --dry-run   print what a sync would change
  fabric-console sync --follow                    keep both sides in sync until interrupted
  fabric-console address grant --pool Web-Pool --to web-01/eth0   hand out the next free address
  fabric-console completions bash > /etc/bash_completion.d/fabric-console
  fabric-console man | man -l -";

#[derive(Debug, Parser)]
#[command(
    name = "fabric-console",
    version,
    about = "A console for a virtualization fabric's networks, kept in two-way sync with IPAM servers",
    long_about = None,
    after_help = EXAMPLES
)]
pub struct Cli {
    /// Folder for the fabric database, secrets file (when no keyring answers), logs and settings.
    #[arg(long, global = true, env = DATA_DIR_ENV, value_name = "PATH")]
    pub data_dir: Option<PathBuf>,

    /// A team's PostgreSQL database for the fabric and the sync state, shared by every console
    /// and `sync --follow` pointed at it: postgres://user@host:port/dbname. The password comes
    /// from `fabric-console db password` or ~/.pgpass, never from the URL. Without it (or with
    /// "sqlite"), the data directory's own files; the Settings file's "database" is used when
    /// neither this nor FABRIC_CONSOLE_DATABASE is given.
    #[arg(long, global = true, env = DATABASE_ENV, value_name = "URL")]
    pub database: Option<String>,

    /// Open the console on a fresh demo fabric (kept in <data dir>/demo, reset at every start)
    /// with the embedded IPAM server added as a network service and syncing.
    #[arg(long)]
    pub demo: bool,

    /// How log lines are written (stderr and the log file): readable text, or one JSON object
    /// per line for a log collector.
    #[arg(long, global = true, value_enum, default_value_t = logging::LogFormat::Text)]
    pub log_format: logging::LogFormat,

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
    /// Grant, revoke or list addresses of the static IP address pools.
    #[command(subcommand)]
    Address(address::AddressCommand),
    /// Where the fabric and sync state are kept: status, schema migration, the database password.
    #[command(subcommand)]
    Db(db::DbCommand),
    /// Print a shell completion script to standard output.
    Completions {
        /// The shell: bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) to standard output: `fabric-console man | man -l -`; with
    /// --dir, write it and one page per subcommand to a folder instead.
    Man {
        /// Write fabric-console.1 and one page per subcommand (fabric-console-sync.1,
        /// fabric-console-service-add.1, …) into this folder, created when missing.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// The completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "fabric-console", &mut out);
    out
}

/// The command line as the manual pages describe it: without the `help` subcommands, which have
/// no page of their own (`--help` is on every page).
fn man_command() -> clap::Command {
    Cli::command().disable_help_subcommand(true)
}

/// The manual page of `cmd`; every page's footer names the program and its version.
fn man_for(cmd: clap::Command) -> clap_mangen::Man {
    clap_mangen::Man::new(cmd).source(concat!("fabric-console ", env!("CARGO_PKG_VERSION")))
}

/// The manual page, in roff.
pub fn man_page() -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    man_for(man_command()).render(&mut out)?;
    Ok(out)
}

/// Writes the manual pages into `dir` (created when missing): fabric-console.1 and one page per
/// subcommand at every level, named after its full command (fabric-console-sync.1,
/// fabric-console-service-add.1). Returns the files written, the top page first.
pub fn write_man_pages(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let failed = |e: std::io::Error| {
        format!(
            "could not write the manual pages to the folder {}: {e}",
            dir.display()
        )
    };
    std::fs::create_dir_all(dir).map_err(failed)?;
    let mut cmd = man_command();
    // Building gives every subcommand its full name (fabric-console-service-add) as its page's
    // title and file name, and its full usage (fabric-console service add) in the synopsis.
    cmd.build();
    let mut written = Vec::new();
    let mut pending = vec![cmd];
    while let Some(cmd) = pending.pop() {
        written.push(man_for(cmd.clone()).generate_to(dir).map_err(failed)?);
        let mut subcommands: Vec<clap::Command> = cmd
            .get_subcommands()
            .filter(|sub| !sub.is_hide_set())
            .cloned()
            .collect();
        subcommands.reverse();
        pending.extend(subcommands);
    }
    Ok(written)
}

/// The `man` command: the top page to standard output, or every page into a folder.
fn man(dir: Option<&Path>) -> ExitCode {
    match dir {
        Some(dir) => match write_man_pages(dir) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => fail(e),
        },
        None => print_bytes(man_page()),
    }
}

/// Writes what a self-describing command prints; nothing touches the data directory.
fn print_bytes(bytes: std::io::Result<Vec<u8>>) -> ExitCode {
    use std::io::Write;
    match bytes.and_then(|b| std::io::stdout().write_all(&b)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(format!("could not write to standard output: {e}")),
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    match cli.command {
        Some(Command::Completions { shell }) => return print_bytes(Ok(completions(shell))),
        Some(Command::Man { dir }) => return man(dir.as_deref()),
        _ => {}
    }
    let mut paths = match DataPaths::resolve(cli.data_dir.as_deref()) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    paths.database = match shared_database(cli.database.as_deref(), &paths) {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    if let Err(e) = paths.create_dirs() {
        return fail(e);
    }
    // Without a log file the commands still work; `init` itself warns on stderr.
    let _log = logging::init(&paths.logs_dir(), cli.log_format).ok();
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
        Some(Command::Address(cmd)) => address::run(paths, cmd),
        Some(Command::Db(cmd)) => db::run(paths, cmd),
        Some(Command::Completions { shell }) => print_bytes(Ok(completions(shell))),
        Some(Command::Man { dir }) => man(dir.as_deref()),
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
            eprintln!("{}", usage_message(&e));
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// clap's report on one line: the error, clap's suggestions ("a similar argument exists"), and
/// where to read more.
fn usage_message(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let mut parts: Vec<&str> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            break;
        }
        if !line.is_empty() {
            parts.push(line);
        }
    }
    // Lines that introduce a list (ending in ':') run on into it; others are separate points.
    let mut message = String::new();
    for part in parts {
        if !message.is_empty() {
            message.push_str(if message.ends_with(':') { " " } else { "; " });
        }
        message.push_str(part);
    }
    if message.is_empty() {
        message = "error: the command line is not valid".to_string();
    }
    format!("{message} (see fabric-console --help)")
}

/// `--database`/`FABRIC_CONSOLE_DATABASE`, else the settings file's `database`: the team's
/// PostgreSQL database (with its password from the secret store when one was kept there), or
/// `None` for the data directory's SQLite files.
fn shared_database(
    given: Option<&str>,
    paths: &DataPaths,
) -> Result<Option<crate::db::PgTarget>, String> {
    let (text, from) = match given {
        Some(t) => (t.to_string(), "--database"),
        None => match database_setting(&paths.settings_file()) {
            Some(t) => (t, "the settings file's \"database\""),
            None => return Ok(None),
        },
    };
    match crate::db::Location::parse(&text, &paths.data_dir) {
        Ok(crate::db::Location::Postgres(target)) => {
            let secrets = crate::fabric::secrets::open_secret_store(&paths.data_dir);
            let password = secrets.get(target.secret_id()).ok().flatten();
            Ok(Some(target.with_password(password)))
        }
        Ok(_) => Ok(None),
        Err(e) => Err(format!("{from}: {e}")),
    }
}

/// The `database` field of settings.json, when set.
pub fn database_setting(settings: &Path) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(settings).ok()?).ok()?;
    v.get("database")
        .and_then(|d| d.as_str())
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_string)
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

    #[test]
    fn a_usage_error_keeps_clap_s_suggestion_on_one_line() {
        let err = Cli::try_parse_from(["fabric-console", "sync", "--folow"]).unwrap_err();
        let message = usage_message(&err);
        assert!(
            message.contains("'--folow'")
                && message.contains("a similar argument exists: '--follow'"),
            "{message}"
        );
        assert!(!message.contains('\n'), "{message}");
        assert!(
            message.ends_with("(see fabric-console --help)"),
            "{message}"
        );
        let err = Cli::try_parse_from(["fabric-console", "servce", "list"]).unwrap_err();
        assert!(
            usage_message(&err).contains("'service'"),
            "{}",
            usage_message(&err)
        );
        // A list of missing arguments runs on from the line that introduces it.
        let err = Cli::try_parse_from(["fabric-console", "service", "add"]).unwrap_err();
        let message = usage_message(&err);
        assert!(message.contains("provided: --name"), "{message}");
    }

    #[test]
    fn completions_cover_every_command_in_each_shell() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let script = String::from_utf8(completions(shell)).unwrap();
            // Long options without their dashes: fish writes `-l follow`.
            for word in [
                "service",
                "sync",
                "run-as",
                "follow",
                "log-format",
                "events",
            ] {
                assert!(script.contains(word), "{shell:?} lacks {word}");
            }
        }
        let cli = Cli::try_parse_from(["fabric-console", "completions", "zsh"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Completions {
                shell: clap_complete::Shell::Zsh
            })
        ));
        assert!(Cli::try_parse_from(["fabric-console", "completions", "tcsh"]).is_err());
    }

    #[test]
    fn the_manual_page_is_roff_with_the_commands_and_examples() {
        let page = String::from_utf8(man_page().unwrap()).unwrap();
        assert!(page.contains(".TH fabric-console"), "{}", &page[..200]);
        // roff escapes every dash.
        for word in [
            "SYNOPSIS",
            "SUBCOMMANDS",
            "service",
            "Examples:",
            "sync \\-\\-follow",
            "\\-\\-log\\-format",
        ] {
            assert!(page.contains(word), "the page lacks {word}");
        }
    }

    #[test]
    fn man_dir_holds_one_roff_page_per_command_and_subcommand() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("man1");
        let written = write_man_pages(&out).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(written.len(), names.len());
        assert_eq!(written[0], out.join("fabric-console.1"));
        for expected in [
            "fabric-console.1",
            "fabric-console-sync.1",
            "fabric-console-man.1",
            "fabric-console-service.1",
            "fabric-console-service-add.1",
            "fabric-console-service-list.1",
            "fabric-console-run-as-add.1",
            "fabric-console-ipam-server.1",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} in {names:?}"
            );
        }
        // No page for clap's `help` subcommands.
        assert!(!names.iter().any(|n| n.contains("help")), "{names:?}");
        for name in &names {
            let page = std::fs::read_to_string(out.join(name)).unwrap();
            let command = name.strip_suffix(".1").unwrap();
            // roff escapes every dash.
            let roff_name = command.replace('-', "\\-");
            assert!(
                page.contains(&format!(
                    ".TH {command} 1  \"fabric-console {}\"",
                    env!("CARGO_PKG_VERSION")
                )),
                "{name}: {}",
                &page[..page.len().min(300)]
            );
            assert!(page.contains(".SH NAME"), "{name}");
            assert!(
                page.contains(&format!("{roff_name} \\-")),
                "{name} does not name its command: {}",
                &page[..page.len().min(400)]
            );
        }
        // A subcommand's synopsis is its full command line; the top page refers to the others.
        let add = std::fs::read_to_string(out.join("fabric-console-service-add.1")).unwrap();
        assert!(add.contains("fabric\\-console service add"), "{add}");
        let top = std::fs::read_to_string(out.join("fabric-console.1")).unwrap();
        assert!(top.contains("fabric\\-console\\-sync(1)"), "{top}");
        assert_eq!(top.as_bytes(), man_page().unwrap().as_slice());
    }

    #[test]
    fn man_dir_that_cannot_be_written_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-folder");
        std::fs::write(&file, b"").unwrap();
        let err = write_man_pages(&file.join("man1")).unwrap_err();
        assert!(
            err.contains("manual pages") && err.contains(&file.join("man1").display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn log_format_is_text_unless_json_is_asked_for() {
        let cli = Cli::try_parse_from(["fabric-console", "check"]).unwrap();
        assert_eq!(cli.log_format, logging::LogFormat::Text);
        let cli = Cli::try_parse_from(["fabric-console", "check", "--log-format", "json"]).unwrap();
        assert_eq!(cli.log_format, logging::LogFormat::Json);
        let err = Cli::try_parse_from(["fabric-console", "--log-format", "xml"]).unwrap_err();
        assert!(usage_message(&err).contains("--log-format"), "{err}");
    }
}
