//! The fabric store through the real binary: demo → export → import elsewhere → export again, and a
//! bad import that must change nothing and list every problem.

use std::net::IpAddr;
use std::path::Path;
use std::process::{Command, Output};

use fabric_console::fabric::exchange::import_json;
use fabric_console::fabric::model::Fabric;
use serde_json::Value;

#[path = "support/backend.rs"]
mod backend;

fn console(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fabric-console"))
        .args(backend::cli_args(data_dir))
        .args(args)
        .env_remove("RUST_LOG")
        .env("FABRIC_CONSOLE_SECRET_BACKEND", "file")
        .output()
        .expect("the fabric-console binary runs")
}

#[track_caller]
fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn read_export(path: &Path) -> Fabric {
    import_json(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn demo_export_import_export_round_trip() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let export_a = files.path().join("a.json");
    let export_b = files.path().join("b.json");

    let text = ok(&console(
        first.path(),
        &["demo", "--size", "1000", "--seed", "3"],
    ));
    assert!(text.contains("logical networks"), "{text}");
    ok(&console(
        first.path(),
        &["export", export_a.to_str().unwrap()],
    ));
    let text = ok(&console(
        second.path(),
        &["import", export_a.to_str().unwrap()],
    ));
    assert!(text.contains("Imported"), "{text}");
    ok(&console(
        second.path(),
        &["export", export_b.to_str().unwrap()],
    ));
    ok(&console(second.path(), &["check"]));

    let a = read_export(&export_a);
    let b = read_export(&export_b);
    assert!(a.object_count() >= 1000);
    assert_eq!(a, b);
    // The second data directory's database holds exactly the imported fabric.
    let stored = backend::store(second.path()).fabric();
    assert_eq!(*stored, a);
    // Export to standard output is the same document.
    let stdout = ok(&console(second.path(), &["export", "-"]));
    assert_eq!(import_json(&stdout).unwrap(), a);
}

#[test]
fn bad_import_changes_nothing_and_lists_every_problem() {
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    ok(&console(data.path(), &["demo", "--size", "300"]));
    let good = files.path().join("good.json");
    ok(&console(data.path(), &["export", good.to_str().unwrap()]));
    let before = read_export(&good);

    // Three different problems: a wrong version, a pool range outside its subnet, a duplicate name.
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&good).unwrap()).unwrap();
    doc["version"] = Value::from(9);
    let pool = before
        .ip_pools
        .values()
        .find(|p| p.range_start.is_ipv4())
        .unwrap();
    doc["fabric"]["ip_pools"][pool.id.to_string()]["range_end"] = Value::from("198.51.100.7");
    let mut networks = before.logical_networks.values();
    let (first, second) = (networks.next().unwrap(), networks.next().unwrap());
    doc["fabric"]["logical_networks"][second.id.to_string()]["name"] =
        Value::from(first.name.to_uppercase());
    let bad = files.path().join("bad.json");
    std::fs::write(&bad, doc.to_string()).unwrap();

    let out = console(data.path(), &["import", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("version is 9"), "{stderr}");
    assert!(
        stderr.contains("198.51.100.7") && stderr.contains(&pool.name),
        "{stderr}"
    );
    assert!(
        stderr.contains("already used by another logical network"),
        "{stderr}"
    );
    assert!(stderr.contains("the fabric is unchanged"), "{stderr}");

    // A file that is not JSON names the line.
    std::fs::write(&bad, "{\n\"format\": \"fabric-console.fabric\",\n}").unwrap();
    let out = console(data.path(), &["import", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Line 3"));

    let after = files.path().join("after.json");
    ok(&console(data.path(), &["export", after.to_str().unwrap()]));
    assert_eq!(read_export(&after), before);
}

#[test]
fn command_line_errors_are_one_line_and_name_the_argument() {
    let data = tempfile::tempdir().unwrap();
    let out = console(data.path(), &["demo", "--size", "many"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--size"), "{stderr}");

    let out = console(data.path(), &["import", "/nonexistent/fabric.json"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/fabric.json"), "{stderr}");

    // A demo over an existing fabric is refused without --replace.
    ok(&console(data.path(), &["demo", "--size", "50"]));
    let out = console(data.path(), &["demo", "--size", "60"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--replace"));
    ok(&console(
        data.path(),
        &["demo", "--size", "60", "--replace"],
    ));
}

/// Completion scripts and the manual page describe the program: they print and touch no data
/// directory. A mistyped command line gets clap's suggestion, on one line.
#[test]
fn completions_and_the_manual_page_print_without_a_data_directory() {
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("never-made");
    let script = ok(&console(&data, &["completions", "bash"]));
    assert!(script.contains("complete -F") && script.contains("fabric-console"));
    let page = ok(&console(&data, &["man"]));
    assert!(
        page.contains(".TH fabric-console"),
        "{}",
        &page[..page.len().min(300)]
    );
    assert!(!data.exists(), "the data directory was created");

    let out = console(parent.path(), &["sync", "--folow"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("a similar argument exists: '--follow'"),
        "{stderr}"
    );

    // Log lines as JSON objects, on stderr as in the log file: here the warning that no
    // keyring answers (the session bus points nowhere).
    let mut child = Command::new(env!("CARGO_BIN_EXE_fabric-console"))
        .args(["--data-dir"])
        .arg(parent.path())
        .args([
            "--log-format",
            "json",
            "run-as",
            "add",
            "--name",
            "svc",
            "--user",
            "svc",
        ])
        .env_remove("RUST_LOG")
        .env_remove("FABRIC_CONSOLE_SECRET_BACKEND")
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"s3cret-token")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line: Value = serde_json::from_str(
        stderr
            .lines()
            .find(|l| l.contains("keyring"))
            .unwrap_or_else(|| panic!("no keyring warning: {stderr}")),
    )
    .expect("a JSON log line");
    assert_eq!(line["level"], "WARN", "{line}");
    assert!(!stderr.contains("s3cret-token"));
    let help = ok(&console(parent.path(), &["--help"]));
    assert!(
        help.contains("Examples:") && help.contains("sync --follow"),
        "{help}"
    );
}

#[test]
fn address_grants_from_processes_at_once_never_share_an_address() {
    let dir = tempfile::tempdir().unwrap();
    ok(&console(dir.path(), &["demo", "--size", "20"]));
    let store = backend::store(dir.path());
    // The demo granted addresses already: take an IPv4 pool with room for 40 more.
    let counts = store.grant_counts().unwrap();
    let already = store.grants(None).unwrap();
    let pool = store
        .fabric()
        .ip_pools
        .values()
        .find(|p| {
            let (IpAddr::V4(a), IpAddr::V4(b)) = (p.range_start, p.range_end) else {
                return false;
            };
            let total = u64::from(u32::from(b) - u32::from(a) + 1);
            let set_aside = (p.settings.reserved.len() + p.settings.vips.len()) as u64;
            let granted = counts.get(&p.id).map_or(0, |c| c.plain + c.vips);
            total.saturating_sub(set_aside + granted) >= 40
        })
        .expect("a demo pool with 40 free addresses")
        .clone();
    let demo_granted = already.iter().filter(|g| g.pool == pool.id).count();
    drop(store);
    let pool_id = pool.id.to_string();
    // Eight processes, five grants each, all at once.
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let data = dir.path().to_path_buf();
            let pool = pool_id.clone();
            std::thread::spawn(move || {
                (0..5)
                    .map(|i| {
                        let holder = format!("vm-{w}-{i}/eth0");
                        let out = console(
                            &data,
                            &["address", "grant", "--pool", &pool, "--to", &holder],
                        );
                        ok(&out).trim().to_string()
                    })
                    .collect::<Vec<String>>()
            })
        })
        .collect();
    let mut granted: Vec<String> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    granted.sort();
    let before = granted.len();
    granted.dedup();
    assert_eq!(before, 40);
    assert_eq!(granted.len(), 40, "every process got a different address");
    for a in &granted {
        let a: IpAddr = a.parse().expect("an address is printed");
        assert!(
            !already.iter().any(|g| g.pool == pool.id && g.address == a),
            "never an address the demo granted"
        );
        assert!(a >= pool.range_start && a <= pool.range_end);
        assert!(!pool.settings.reserved.contains(&a) && !pool.settings.vips.contains(&a));
    }

    // The list shows them; revoking one gives it back; bad input names the field.
    let list = ok(&console(
        dir.path(),
        &["address", "list", "--pool", &pool_id, "--json"],
    ));
    let doc: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(doc["grants"].as_array().unwrap().len(), demo_granted + 40);
    let first = granted[0].clone();
    ok(&console(
        dir.path(),
        &[
            "address",
            "revoke",
            "--pool",
            &pool.name,
            "--address",
            &first,
        ],
    ));
    let out = console(
        dir.path(),
        &[
            "address",
            "revoke",
            "--pool",
            &pool.name,
            "--address",
            &first,
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not granted"));
    let out = console(
        dir.path(),
        &["address", "grant", "--pool", "No such pool", "--to", "x"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--pool: no static IP address pool"));
    let out = console(
        dir.path(),
        &[
            "address",
            "grant",
            "--pool",
            &pool_id,
            "--to",
            "x",
            "--address",
            &granted[1],
        ],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("is already granted to"));
}
