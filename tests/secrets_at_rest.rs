//! A Run As secret lives only in the secret store: never in the fabric or sync database (their
//! WAL and journal files included), an export, a log at `RUST_LOG=trace`, or the console's output.
//! Driven through the real binary against a real built-in IPAM server; the secret is the server's
//! real token, so the sync really sends it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use fabric_console::ipam_server::{self as server, Role, ServerConfig};

fn console(data_dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fabric-console"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env("RUST_LOG", "trace")
        .env("FABRIC_CONSOLE_SECRET_BACKEND", "file")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the fabric-console binary runs");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_as_secret_never_reaches_a_database_an_export_or_a_trace_log() {
    let ipam = server::start(ServerConfig::ephemeral()).await.unwrap();
    let token = ipam.issue_token(Role::AsmAdministrator);
    let url = ipam.base_url();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("console");
    let export = dir.path().join("fabric.json");
    let export_arg = export.to_str().unwrap().to_string();
    let token_in = token.clone();
    let outputs = tokio::task::spawn_blocking(move || {
        vec![
            console(&data, &["demo", "--size", "30"], None),
            console(
                &data,
                &[
                    "run-as",
                    "add",
                    "--name",
                    "IPAM admin",
                    "--user",
                    "ipam-svc",
                ],
                Some(&format!("{token_in}\n")),
            ),
            console(
                &data,
                &[
                    "service",
                    "add",
                    "--name",
                    "IPAM1",
                    "--model",
                    "Fabric Console IPAM Server",
                    "--connection",
                    &url,
                    "--run-as",
                    "IPAM admin",
                    "--all-host-groups",
                ],
                None,
            ),
            console(&data, &["sync"], None),
            console(&data, &["service", "test", "IPAM1"], None),
            console(&data, &["export", &export_arg], None),
        ]
    })
    .await
    .unwrap();

    // The sync really sent the token: the server holds the demo's subnets now.
    assert!(ipam.request_count() > 3, "the sync talked to the server");
    let sync_out = String::from_utf8_lossy(&outputs[3].stdout);
    assert!(!sync_out.is_empty());
    let trace = String::from_utf8_lossy(&outputs[3].stderr);
    assert!(
        trace.contains("TRACE") || trace.contains("trace"),
        "trace logging was on: {trace:.300}"
    );

    for (i, out) in outputs.iter().enumerate() {
        assert!(
            !contains(&out.stdout, &token),
            "command {i} printed the secret"
        );
        assert!(
            !contains(&out.stderr, &token),
            "command {i} logged the secret"
        );
    }
    assert!(
        !contains(&std::fs::read(&export).unwrap(), &token),
        "the export holds the secret"
    );
    let data = dir.path().join("console");
    let mut checked = 0;
    for file in files_under(&data) {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let body = std::fs::read(&file).unwrap();
        if name == "secrets.json" {
            // The owner-only file secret store is where the secret belongs.
            assert!(contains(&body, &token));
            continue;
        }
        assert!(
            !contains(&body, &token),
            "{} holds the secret",
            file.display()
        );
        checked += 1;
    }
    let names: Vec<String> = files_under(&data)
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().to_string())
        .collect();
    assert!(
        names.iter().any(|n| n.ends_with(".db")) && checked >= 3,
        "the databases were checked: {names:?}"
    );
}
