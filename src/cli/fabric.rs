//! `export`, `import`, `demo` and `check`: the fabric as a whole.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use super::{fail, open_store};
use crate::fabric::demo::{demo_fabric, demo_grants};
use crate::fabric::exchange::{export_json, import_json};
use crate::fabric::model::Fabric;
use crate::fabric::validate::validate_fabric;
use crate::paths::{DataPaths, Readers, write_atomically};

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

pub(super) fn export(paths: &DataPaths, args: ExportArgs) -> ExitCode {
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
    match write_atomically(&args.file, text.as_bytes(), Readers::Anyone) {
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

pub(super) fn import(paths: &DataPaths, args: ImportArgs) -> ExitCode {
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
    let secrets = crate::fabric::secrets::open_secret_store(&paths.data_dir);
    let imported =
        import_json(&text).and_then(|f| crate::ops::exchange::replace_fabric(&store, &secrets, f));
    match imported {
        Ok(imported) => {
            if let Some(sentence) = imported.forgotten_sentence() {
                println!("{sentence}");
            }
            let fabric = imported.fabric;
            println!(
                "Imported {} objects from {} into {}.",
                fabric.object_count(),
                args.file.display(),
                paths.fabric_shown()
            );
            // Exports carry no secrets: name the accounts that have none stored here.
            let missing: Vec<String> = fabric
                .run_as_accounts
                .values()
                .filter(|a| !matches!(secrets.get(a.id), Ok(Some(_))))
                .map(|a| format!("\"{}\"", a.name))
                .collect();
            if !missing.is_empty() {
                println!(
                    "Exports carry no passwords: enter the password or token of Run As account(s) {} in Settings ▸ Run As Accounts.",
                    missing.join(", ")
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

pub(super) fn demo(paths: &DataPaths, args: DemoArgs) -> ExitCode {
    let store = match open_store(paths) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let current = store.fabric();
    // Anything beyond the root host group is someone's work: keep it unless told otherwise.
    if current.object_count() > 1 && !args.replace {
        return fail(format!(
            "The fabric in {} already holds {}. Pass --replace to replace it with the demo, or choose another --data-dir.",
            paths.fabric_shown(),
            describe_contents(&current)
        ));
    }
    let fabric = demo_fabric(args.size as usize, args.seed);
    match store.replace_all(fabric) {
        Ok(f) => {
            // The demo's grants replace any there were.
            if let Err(e) = store.revoke_all() {
                return fail(e);
            }
            let grants = match store.grant_batch(&demo_grants(&f, args.seed)) {
                Ok(g) => g.len(),
                Err(e) => return fail(e),
            };
            println!(
                "Filled {} with a demo fabric (size {}, seed {}): {}, {grants} addresses granted.",
                paths.fabric_shown(),
                args.size,
                args.seed,
                describe_contents(&f)
            );
            if args.with_ipam {
                return super::sync::demo_with_ipam(paths, &store);
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

pub(super) fn check(paths: &DataPaths) -> ExitCode {
    let store = match open_store(paths) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let fabric = store.fabric();
    let problems = validate_fabric(&fabric);
    if problems.is_empty() {
        println!(
            "The fabric in {} is valid: {} objects.",
            paths.fabric_shown(),
            fabric.object_count()
        );
        return ExitCode::SUCCESS;
    }
    eprintln!(
        "error: the fabric in {} has {} problem(s):",
        paths.fabric_shown(),
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
    use crate::fabric::store::FabricStore;

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
