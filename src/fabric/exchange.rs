//! Export and import of the whole fabric as one versioned JSON document:
//! `{"format":"fabric-console.fabric","version":1,"exported_at":"…","fabric":{…}}`.
//! Run As accounts carry no secret field, so an export never holds a password or token.
//! Import reports every problem at once and changes nothing unless the whole file is valid.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

use super::model::{Fabric, FabricKind, Id};
use super::store::{FabricStore, StoreError};
use super::validate::{ValidationError, validate_fabric};

/// The document's `format` value.
pub const FORMAT: &str = "fabric-console.fabric";
/// The document version this build writes and reads.
pub const VERSION: u64 = 1;

const COLLECTIONS: [&str; 7] = [
    "host_groups",
    "run_as_accounts",
    "logical_networks",
    "network_sites",
    "ip_pools",
    "vm_networks",
    "network_services",
];

#[derive(Serialize)]
struct Document<'a> {
    format: &'static str,
    version: u64,
    exported_at: String,
    fabric: &'a Fabric,
}

/// The fabric as a pretty-printed export document, stamped with the current time.
pub fn export_json(f: &Fabric) -> String {
    let doc = Document {
        format: FORMAT,
        version: VERSION,
        exported_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        fabric: f,
    };
    // Maps are keyed by UUIDs (strings) and every field is plain data, so this cannot fail.
    let mut text = serde_json::to_string_pretty(&doc).expect("a fabric always serializes to JSON");
    text.push('\n');
    text
}

/// One thing wrong with an import file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportProblem {
    /// The text is not JSON.
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    /// `format` is missing or is not "fabric-console.fabric".
    Format { found: String },
    /// `version` is missing or not one this build reads.
    Version { found: String },
    /// A value has the wrong shape (unknown field, wrong type, bad address, bad connection string…).
    Shape { path: String, message: String },
    /// The fabric parses but breaks a rule.
    Invalid(ValidationError),
    /// The database refused or failed to store it.
    Store(String),
}

impl fmt::Display for ImportProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportProblem::Syntax {
                line,
                column,
                message,
            } => write!(
                f,
                "Line {line}, column {column}: the file is not valid JSON ({message}). Fix the file or export the fabric again."
            ),
            ImportProblem::Format { found } => write!(
                f,
                "The file's format is {found}, not \"{FORMAT}\". Choose a file exported by Fabric Console."
            ),
            ImportProblem::Version { found } => write!(
                f,
                "The file's version is {found}, but this Fabric Console reads version {VERSION}. Export the fabric again with this version."
            ),
            ImportProblem::Shape { path, message } => write!(
                f,
                "{path}: {message}. Correct the value or export the fabric again."
            ),
            ImportProblem::Invalid(e) => write!(f, "{e}"),
            ImportProblem::Store(message) => f.write_str(message),
        }
    }
}

/// Every problem found in an import file; nothing was imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    pub problems: Vec<ImportProblem>,
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problems.as_slice() {
            [one] => write!(f, "The fabric was not imported: {one}"),
            many => {
                write!(
                    f,
                    "The fabric was not imported because of {} problems:",
                    many.len()
                )?;
                for (i, p) in many.iter().enumerate() {
                    write!(f, " {}) {p}", i + 1)?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ImportError {}

/// Parses and validates an export document, reporting every problem found.
pub fn import_json(text: &str) -> Result<Fabric, ImportError> {
    let fail = |problems| Err(ImportError { problems });
    let doc: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return fail(vec![ImportProblem::Syntax {
                line: e.line(),
                column: e.column(),
                message: without_position(&e),
            }]);
        }
    };
    let Value::Object(doc) = doc else {
        return fail(vec![ImportProblem::Shape {
            path: "The file".into(),
            message: "holds no JSON object".into(),
        }]);
    };
    let mut problems = Vec::new();
    match doc.get("format") {
        Some(Value::String(s)) if s == FORMAT => {}
        other => problems.push(ImportProblem::Format {
            found: describe(other),
        }),
    }
    match doc.get("version") {
        Some(Value::Number(n)) if n.as_u64() == Some(VERSION) => {}
        other => problems.push(ImportProblem::Version {
            found: describe(other),
        }),
    }
    for key in doc.keys() {
        if !matches!(
            key.as_str(),
            "format" | "version" | "exported_at" | "fabric"
        ) {
            problems.push(ImportProblem::Shape {
                path: key.clone(),
                message: "is not part of a fabric export; expected format, version, exported_at and fabric".into(),
            });
        }
    }
    let fabric = match doc.get("fabric") {
        Some(Value::Object(body)) => read_fabric(body, &mut problems),
        Some(_) => {
            problems.push(ImportProblem::Shape {
                path: "fabric".into(),
                message: "is not a JSON object".into(),
            });
            None
        }
        None => {
            problems.push(ImportProblem::Shape {
                path: "fabric".into(),
                message: "is missing".into(),
            });
            None
        }
    };
    // Validation is only meaningful when every object was read; otherwise it reports ghosts.
    if let Some(fabric) = fabric {
        problems.extend(
            validate_fabric(&fabric)
                .into_iter()
                .map(ImportProblem::Invalid),
        );
        if problems.is_empty() {
            return Ok(fabric);
        }
    }
    fail(problems)
}

/// Imports an export document into the store, replacing its fabric in one transaction; on any
/// problem nothing changes.
pub fn import_into(store: &FabricStore, text: &str) -> Result<Arc<Fabric>, ImportError> {
    let fabric = import_json(text)?;
    store.replace_all(fabric).map_err(|e| ImportError {
        problems: match e {
            StoreError::Invalid(errors) => errors.into_iter().map(ImportProblem::Invalid).collect(),
            other => vec![ImportProblem::Store(other.to_string())],
        },
    })
}

/// Reads the `fabric` object collection by collection and object by object, so one bad object
/// does not hide problems in the others. `None` when any object could not be read.
fn read_fabric(body: &Map<String, Value>, problems: &mut Vec<ImportProblem>) -> Option<Fabric> {
    let before = problems.len();
    for key in body.keys() {
        if !COLLECTIONS.contains(&key.as_str()) {
            problems.push(ImportProblem::Shape {
                path: format!("fabric.{key}"),
                message: format!(
                    "is not a fabric collection; expected one of {}",
                    COLLECTIONS.join(", ")
                ),
            });
        }
    }
    let mut f = Fabric::default();
    crate::for_each_kind!(T => {
        read_collection::<T>(body, problems, T::all_mut(&mut f));
    });
    (problems.len() == before).then_some(f)
}

/// A missing collection is empty. Each entry's key must be its object's id.
fn read_collection<T: FabricKind>(
    body: &Map<String, Value>,
    problems: &mut Vec<ImportProblem>,
    into: &mut BTreeMap<Id, T>,
) {
    let collection = T::COLLECTION;
    let entries = match body.get(collection) {
        None => return,
        Some(Value::Object(entries)) => entries,
        Some(_) => {
            problems.push(ImportProblem::Shape {
                path: format!("fabric.{collection}"),
                message: "is not a JSON object keyed by object id".into(),
            });
            return;
        }
    };
    for (key, value) in entries {
        let path = match value.get("name").and_then(Value::as_str) {
            Some(name) => format!("fabric.{collection}.{key} (\"{name}\")"),
            None => format!("fabric.{collection}.{key}"),
        };
        match serde_path_to_error::deserialize::<_, T>(value) {
            Ok(object) => {
                let id = object.id();
                into.insert(id, object);
                if id.to_string() != key.to_lowercase() {
                    problems.push(ImportProblem::Shape {
                        path,
                        message: format!("the key does not match the object's id {id}"),
                    });
                }
            }
            Err(e) => {
                // The JSON path of the bad field inside the object, e.g. `subnets[0].vlan`.
                let inner = e.path().to_string();
                let path = if inner.is_empty() || inner == "." {
                    path
                } else {
                    format!("{path}.{inner}")
                };
                problems.push(ImportProblem::Shape {
                    path,
                    message: without_position(e.inner()),
                })
            }
        }
    }
}

/// serde_json appends " at line L column C"; the position is reported separately.
fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) if e.line() > 0 => text[..i].to_string(),
        _ => text,
    }
}

fn describe(value: Option<&Value>) -> String {
    match value {
        None => "missing".to_string(),
        Some(v) => {
            let mut s = v.to_string();
            if s.chars().count() > 40 {
                s = s.chars().take(40).collect::<String>() + "…";
            }
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fabric::demo::demo_fabric;
    use crate::fabric::model::{FabricChange, FabricObject, RunAsAccount};
    use crate::fabric::secrets::{FileSecretStore, SecretStore};
    use crate::fabric::validate::Rule;

    #[test]
    fn export_then_import_gives_the_same_fabric() {
        let f = demo_fabric(1000, 5);
        let text = export_json(&f);
        assert!(text.contains("\"format\": \"fabric-console.fabric\""));
        assert!(text.contains("\"version\": 1"));
        assert!(text.contains("\"exported_at\""));
        assert_eq!(import_json(&text).unwrap(), f);
    }

    #[test]
    fn syntax_error_names_line_and_column() {
        let err = import_json(
            "{\n  \"format\": \"fabric-console.fabric\",\n  \"version\": 1,\n  oops\n}",
        )
        .unwrap_err();
        assert_eq!(err.problems.len(), 1);
        match &err.problems[0] {
            ImportProblem::Syntax { line, column, .. } => {
                assert_eq!(*line, 4);
                assert!(*column > 0);
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("Line 4, column"), "{err}");
    }

    #[test]
    fn a_bad_nested_field_is_named_by_its_json_path() {
        let f = demo_fabric(50, 3);
        let mut doc: Value = serde_json::from_str(&export_json(&f)).unwrap();
        let (pool_id, pool) = f.ip_pools.iter().next().unwrap();
        doc["fabric"]["ip_pools"][pool_id.to_string()]["dns_servers"] =
            serde_json::json!(["10.0.0.1", "not-an-address"]);
        let err = import_json(&doc.to_string()).unwrap_err();
        let text = err.to_string();
        let expected = format!(
            "fabric.ip_pools.{pool_id} (\"{}\").dns_servers[1]",
            pool.name
        );
        assert!(text.contains(&expected), "{text}");
    }

    #[test]
    fn every_problem_is_listed() {
        let f = demo_fabric(300, 9);
        let mut doc: Value = serde_json::from_str(&export_json(&f)).unwrap();
        doc["format"] = Value::from("something-else");
        doc["version"] = Value::from(7);
        // Two objects with bad shapes, in different collections.
        let (pool_id, _) = f.ip_pools.iter().next().unwrap();
        doc["fabric"]["ip_pools"][pool_id.to_string()]["range_end"] = Value::from("not-an-ip");
        let (ln_id, _) = f.logical_networks.iter().next().unwrap();
        doc["fabric"]["logical_networks"][ln_id.to_string()]["colour"] = Value::from("blue");
        let err = import_json(&doc.to_string()).unwrap_err();
        let kinds: Vec<_> = err
            .problems
            .iter()
            .map(|p| match p {
                ImportProblem::Format { .. } => "format",
                ImportProblem::Version { .. } => "version",
                ImportProblem::Shape { .. } => "shape",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, vec!["format", "version", "shape", "shape"], "{err}");
        assert!(err.to_string().contains("colour"), "{err}");
        assert!(
            err.to_string().contains("not-an-ip") || err.to_string().contains("IP address"),
            "{err}"
        );
    }

    #[test]
    fn all_validation_errors_are_listed() {
        let f = demo_fabric(300, 9);
        let mut doc: Value = serde_json::from_str(&export_json(&f)).unwrap();
        let mut pools = f.ip_pools.values().filter(|p| p.range_start.is_ipv4());
        let a = pools.next().unwrap();
        let b = pools.next().unwrap();
        for p in [a, b] {
            doc["fabric"]["ip_pools"][p.id.to_string()]["range_end"] = Value::from("203.0.113.9");
        }
        let err = import_json(&doc.to_string()).unwrap_err();
        let invalid: Vec<_> = err
            .problems
            .iter()
            .filter_map(|p| match p {
                ImportProblem::Invalid(e) if e.rule == Rule::PoolOutsideSubnet => Some(e.object),
                _ => None,
            })
            .collect();
        assert!(invalid.contains(&a.id) && invalid.contains(&b.id), "{err}");
    }

    #[test]
    fn bad_import_leaves_the_store_unchanged() {
        let store = FabricStore::open_in_memory().unwrap();
        let before = store.fabric();
        let revision = store.revision();
        let mut doc: Value = serde_json::from_str(&export_json(&demo_fabric(200, 2))).unwrap();
        doc["version"] = Value::from(2);
        assert!(import_into(&store, &doc.to_string()).is_err());
        assert!(import_into(&store, "[]").is_err());
        assert_eq!(store.fabric(), before);
        assert_eq!(store.revision(), revision);
        assert_eq!(store.reload().unwrap(), before);
        let good = demo_fabric(200, 2);
        assert_eq!(*import_into(&store, &export_json(&good)).unwrap(), good);
        assert_eq!(*store.reload().unwrap(), good);
    }

    #[test]
    fn run_as_secret_never_reaches_database_or_export() {
        let dir = tempfile::tempdir().unwrap();
        let store = FabricStore::open(&dir.path().join("fabric.db")).unwrap();
        let secrets = FileSecretStore::new(dir.path());
        let account = RunAsAccount {
            id: uuid::Uuid::new_v4(),
            name: "IPAM Service Account".into(),
            description: String::new(),
            user_name: "CONTOSO\\svc-ipam".into(),
        };
        let secret = "Tr0ub4dor&3-unique-marker";
        secrets.put(account.id, secret).unwrap();
        store
            .apply(&[FabricChange::Put(FabricObject::RunAsAccount(
                account.clone(),
            ))])
            .unwrap();
        let export = export_json(&store.fabric());
        assert!(export.contains("IPAM Service Account"));
        assert!(!export.contains(secret));
        drop(store);
        let mut checked = 0;
        let mut name_found = false;
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if name.starts_with("fabric.db") {
                let bytes = std::fs::read(&path).unwrap();
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "{name} holds the secret"
                );
                let marker = b"IPAM Service Account";
                name_found |= bytes.windows(marker.len()).any(|w| w == marker);
                checked += 1;
            }
        }
        assert!(checked >= 1);
        // The search is meaningful: the account itself is in the database bytes.
        assert!(name_found);
        assert_eq!(secrets.get(account.id).unwrap().as_deref(), Some(secret));
    }
}
