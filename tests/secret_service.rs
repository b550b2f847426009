//! Run As secrets in a real Secret Service: scripts/test.sh starts gnome-keyring-daemon in a private
//! D-Bus session (`dbus-run-session`) and runs this file with FABRIC_CONSOLE_TEST_SECRET_SERVICE=1.
//! Without that variable (a plain `cargo test`, which may have no session bus) the tests say they
//! were not run and pass; with it, a missing or broken Secret Service fails them.
#![cfg(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "dragonfly",
    target_os = "netbsd",
    target_os = "openbsd"
))]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use fabric_console::fabric::model::Id;
use fabric_console::fabric::secrets::secret_service::{
    ACCOUNT_ATTRIBUTE, LEGACY_ACCOUNT_ATTRIBUTE, SERVICE_ATTRIBUTE, item_label,
};
use fabric_console::fabric::secrets::{
    BACKEND_ENV, KEYRING_SERVICE, KeyringSecretStore, SECRETS_FILE, SecretLocation, SecretStore,
};
use fabric_console::fabric::store::FabricStore;
use fabric_console::paths::DataPaths;
use oo7::dbus::Service;
use uuid::Uuid;

/// Set to 1 by scripts/test.sh inside its D-Bus session with a running keyring.
const ENABLE_ENV: &str = "FABRIC_CONSOLE_TEST_SECRET_SERVICE";
/// Names the Run As account whose secret the child process reads.
const CHILD_ENV: &str = "FABRIC_CONSOLE_TEST_SECRET_CHILD";
const CHILD_TEST: &str = "child_process_reads_the_secret";
const CHILD_MARK: &str = "CHILD-READ:";

fn enabled(test: &str) -> bool {
    if std::env::var(ENABLE_ENV).as_deref() == Ok("1") {
        return true;
    }
    // Straight to stderr: the test harness would swallow `eprintln!` of a passing test.
    let _ = writeln!(
        std::io::stderr(),
        "NOT RUN: {test} needs a Secret Service. Set {ENABLE_ENV}=1 inside a D-Bus session with an \
         unlocked keyring, as scripts/test.sh does (dbus-run-session + gnome-keyring-daemon)."
    );
    false
}

/// The keyring items of one account, searched directly over the Secret Service (not through the
/// console's store), as (label, attributes).
fn items(attribute: &str, account: Id) -> Vec<(String, std::collections::HashMap<String, String>)> {
    futures::executor::block_on(async {
        let service = Service::new().await.expect("a Secret Service answers");
        let collection = service
            .default_collection()
            .await
            .expect("the default collection");
        let mut found = Vec::new();
        let attributes = vec![
            (SERVICE_ATTRIBUTE, KEYRING_SERVICE.to_string()),
            (attribute, account.to_string()),
        ];
        for item in collection.search_items(&attributes).await.expect("search") {
            found.push((
                item.label().await.expect("label"),
                item.attributes().await.expect("attributes"),
            ));
        }
        found
    })
}

/// Reads the account's secret in a new process: this test binary again, running only
/// [`CHILD_TEST`].
fn read_in_child(account: Id) -> Option<String> {
    let out = Command::new(std::env::current_exe().expect("the test binary"))
        .args([CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, account.to_string())
        .stdin(Stdio::null())
        .output()
        .expect("the test binary runs again");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the child process failed: {:?}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.split_once(CHILD_MARK).map(|(_, answer)| answer))
        .unwrap_or_else(|| panic!("the child process printed no answer:\n{stdout}"));
    serde_json::from_str(line.trim()).expect("the child's answer is JSON")
}

/// Runs only in the child process started by [`read_in_child`]; elsewhere it has nothing to do.
#[test]
fn child_process_reads_the_secret() {
    let Ok(account) = std::env::var(CHILD_ENV) else {
        return;
    };
    let account: Id = account.parse().expect("an account id");
    let secret = KeyringSecretStore::new()
        .get(account)
        .expect("the keyring answers in the child process");
    println!(
        "{CHILD_MARK}{}",
        serde_json::to_string(&secret).expect("JSON")
    );
}

/// Every file under `dir` (recursively) whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read the data folder") {
            let path = entry.expect("a folder entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path)
                && bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
            {
                hits.push(path.display().to_string());
            }
        }
    }
    hits
}

fn console(data_dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fabric-console"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("RUST_LOG")
        // No setting: the console probes the keyring as on a desktop.
        .env_remove(BACKEND_ENV)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the fabric-console binary runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write the secret");
    child.wait_with_output().expect("fabric-console ends")
}

#[test]
fn run_as_secret_lives_in_the_keyring_and_another_process_reads_it() {
    if !enabled("run_as_secret_lives_in_the_keyring_and_another_process_reads_it") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = format!("kr-{}-P@ss", Uuid::new_v4().simple());

    // The real command line stores the secret; with a keyring answering, the probe picks it.
    let out = console(
        dir.path(),
        &[
            "run-as",
            "add",
            "--name",
            "Keyring Test",
            "--user",
            "svc-ipam",
        ],
        &format!("{secret}\n"),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "run-as add failed: {:?}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("keyring secret store"), "{stdout}");

    let store = FabricStore::open(&DataPaths::in_dir(dir.path()).fabric_db()).expect("fabric.db");
    let account = store
        .fabric()
        .run_as_accounts
        .values()
        .find(|a| a.name == "Keyring Test")
        .map(|a| a.id)
        .expect("the Run As account was saved");
    drop(store);

    // The item is findable by the documented attributes and readably labelled.
    let found = items(ACCOUNT_ATTRIBUTE, account);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, item_label(account));
    assert_eq!(
        found[0].0,
        format!("Fabric Console Run As account {account}")
    );

    // Read back from processes other than the one that stored it.
    let keyring = KeyringSecretStore::new();
    assert_eq!(keyring.location(), SecretLocation::Keyring);
    assert_eq!(keyring.get(account).expect("get"), Some(secret.clone()));
    assert_eq!(read_in_child(account), Some(secret.clone()));

    // Nothing of it on disk: no secrets file, and no file in the data folder holds it.
    assert!(!dir.path().join(SECRETS_FILE).exists());
    assert_eq!(files_containing(dir.path(), &secret), Vec::<String>::new());

    keyring.delete(account).expect("delete");
    assert_eq!(keyring.get(account).expect("get after delete"), None);
    assert_eq!(read_in_child(account), None);
    assert!(items(ACCOUNT_ATTRIBUTE, account).is_empty());
}

#[test]
fn keyring_store_replaces_moves_earlier_items_and_deletes() {
    if !enabled("keyring_store_replaces_moves_earlier_items_and_deletes") {
        return;
    }
    let keyring = KeyringSecretStore::with_timeout(Duration::from_secs(10));
    let account = Uuid::new_v4();
    assert_eq!(keyring.get(account).expect("get"), None);
    keyring.delete(account).expect("deleting nothing succeeds");
    keyring.put(account, "first").expect("put");
    keyring.put(account, "second").expect("put again");
    assert_eq!(keyring.get(account).expect("get"), Some("second".into()));
    assert_eq!(
        items(ACCOUNT_ATTRIBUTE, account).len(),
        1,
        "replaced, not added"
    );
    keyring.delete(account).expect("delete");
    assert_eq!(keyring.get(account).expect("get"), None);

    // An item as earlier versions stored it is read, moved to the current attributes, and gone
    // once the account is deleted.
    let earlier = Uuid::new_v4();
    futures::executor::block_on(async {
        let service = Service::new().await.expect("a Secret Service answers");
        let collection = service.default_collection().await.expect("collection");
        collection
            .create_item(
                "earlier item",
                &vec![
                    (SERVICE_ATTRIBUTE, KEYRING_SERVICE.to_string()),
                    (LEGACY_ACCOUNT_ATTRIBUTE, earlier.to_string()),
                    ("target", "default".to_string()),
                ],
                oo7::Secret::text("kept from before"),
                true,
                None,
            )
            .await
            .expect("create an earlier item");
    });
    assert_eq!(
        keyring.get(earlier).expect("get"),
        Some("kept from before".into())
    );
    assert!(items(LEGACY_ACCOUNT_ATTRIBUTE, earlier).is_empty());
    assert_eq!(items(ACCOUNT_ATTRIBUTE, earlier).len(), 1);
    assert_eq!(read_in_child(earlier), Some("kept from before".into()));
    keyring.delete(earlier).expect("delete");
    assert_eq!(keyring.get(earlier).expect("get"), None);
}
