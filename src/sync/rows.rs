//! The stored base and IPAM mirror as one row per entry, so that a sync writes what changed
//! instead of the whole state. Keys are short text: a letter for the kind of entry, then its key
//! (`n/<logical network>/<cidr>`); bodies are the entry's JSON.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::normal::{BaseState, SubnetKey};
use crate::fabric::model::Id;
use crate::ipam::model::{IpamId, IpamKind, IpamSnapshot};

/// Rows to write and keys to delete.
#[derive(Debug, Default)]
pub struct RowChanges {
    pub put: Vec<(String, String)>,
    pub delete: Vec<String>,
}

/// How a map's keys are written.
trait RowKey: Sized + Ord + Clone {
    fn write(&self, letter: char) -> String;
    fn read(rest: &str) -> Option<Self>;
}

impl RowKey for Id {
    fn write(&self, letter: char) -> String {
        format!("{letter}/{self}")
    }
    fn read(rest: &str) -> Option<Self> {
        rest.parse().ok()
    }
}

impl RowKey for SubnetKey {
    fn write(&self, letter: char) -> String {
        format!("{letter}/{}/{}", self.0, self.1)
    }
    fn read(rest: &str) -> Option<Self> {
        let (id, cidr) = rest.split_once('/')?;
        Some((id.parse().ok()?, cidr.parse().ok()?))
    }
}

/// The changes that turn `old` into `new`, for one map (both sorted: one merge pass).
fn diff_map<K: RowKey, V: PartialEq + Serialize>(
    letter: char,
    old: &BTreeMap<K, V>,
    new: &BTreeMap<K, V>,
    out: &mut RowChanges,
) -> Result<(), serde_json::Error> {
    for (k, v) in new {
        if old.get(k) != Some(v) {
            out.put.push((k.write(letter), serde_json::to_string(v)?));
        }
    }
    for k in old.keys() {
        if !new.contains_key(k) {
            out.delete.push(k.write(letter));
        }
    }
    Ok(())
}

/// Every field of the base, with its letter: `$m!(letter, field path)`.
macro_rules! base_fields {
    ($m:ident) => {
        $m!('l', values.lns);
        $m!('s', values.sites);
        $m!('n', values.subnets);
        $m!('p', values.pools);
        $m!('v', values.vmns);
        $m!('q', values.vm_pools);
        $m!('L', ids.spaces);
        $m!('N', ids.subnets);
        $m!('P', ids.ranges);
        $m!('V', ids.vmn_spaces);
        $m!('W', ids.vmn_subnets);
    };
}

/// The rows that turn the stored `old` base into `new`.
pub fn base_changes(old: &BaseState, new: &BaseState) -> Result<RowChanges, serde_json::Error> {
    let mut out = RowChanges::default();
    macro_rules! diff {
        ($letter:literal, $a:ident . $b:ident) => {
            diff_map($letter, &old.$a.$b, &new.$a.$b, &mut out)?;
        };
    }
    base_fields!(diff);
    Ok(out)
}

/// Why a row could not be read.
#[derive(Debug)]
pub struct BadRow {
    pub key: String,
    pub body: String,
    pub error: String,
}

fn read_entry<K: RowKey, V: DeserializeOwned>(
    map: &mut BTreeMap<K, V>,
    key: &str,
    rest: &str,
    body: &str,
) -> Result<(), String> {
    let k = K::read(rest).ok_or_else(|| format!("the key {key} cannot be read"))?;
    let v = serde_json::from_str(body).map_err(|e| e.to_string())?;
    map.insert(k, v);
    Ok(())
}

/// A base from its rows; rows that cannot be read are returned apart.
pub fn base_from_rows(rows: Vec<(String, String)>) -> (BaseState, Vec<BadRow>) {
    let mut base = BaseState::default();
    let mut bad = Vec::new();
    for (key, body) in rows {
        let (letter, rest) = match key.split_once('/') {
            Some((l, r)) if l.chars().count() == 1 => (l.chars().next().unwrap_or(' '), r),
            _ => (' ', ""),
        };
        let mut read = Err(format!("the key {key} is of no known kind"));
        macro_rules! read {
            ($letter:literal, $a:ident . $b:ident) => {
                if letter == $letter {
                    read = read_entry(&mut base.$a.$b, &key, rest, &body);
                }
            };
        }
        base_fields!(read);
        if let Err(error) = read {
            bad.push(BadRow { key, body, error });
        }
    }
    (base, bad)
}

/// Every row of a base.
pub fn base_rows(base: &BaseState) -> Result<Vec<(String, String)>, serde_json::Error> {
    Ok(base_changes(&BaseState::default(), base)?.put)
}

fn mirror_letter(kind: IpamKind) -> char {
    match kind {
        IpamKind::AddressSpace => 's',
        IpamKind::Subnet => 'n',
        IpamKind::Range => 'r',
    }
}

fn mirror_key(kind: IpamKind, id: &IpamId) -> String {
    format!("{}/{id}", mirror_letter(kind))
}

/// The rows for the listed objects of `mirror`: written when it holds them, else deleted.
pub fn mirror_changes(
    mirror: &IpamSnapshot,
    touched: &[(IpamKind, IpamId)],
) -> Result<RowChanges, serde_json::Error> {
    let wanted: HashSet<(IpamKind, &str)> =
        touched.iter().map(|(k, id)| (*k, id.as_str())).collect();
    let mut out = RowChanges::default();
    let mut found: HashSet<(IpamKind, &str)> = HashSet::new();
    macro_rules! each {
        ($list:expr, $kind:expr) => {
            for x in &$list {
                if wanted.contains(&($kind, x.id.as_str())) {
                    found.insert(($kind, x.id.as_str()));
                    out.put
                        .push((mirror_key($kind, &x.id), serde_json::to_string(x)?));
                }
            }
        };
    }
    each!(mirror.spaces, IpamKind::AddressSpace);
    each!(mirror.subnets, IpamKind::Subnet);
    each!(mirror.ranges, IpamKind::Range);
    for (kind, id) in &wanted {
        if !found.contains(&(*kind, *id)) {
            out.delete
                .push(mirror_key(*kind, &IpamId::from(id.to_string())));
        }
    }
    Ok(out)
}

/// Every row of a mirror (its cursor is stored apart).
pub fn mirror_rows(mirror: &IpamSnapshot) -> Result<Vec<(String, String)>, serde_json::Error> {
    let mut out = Vec::with_capacity(mirror.object_count());
    for s in &mirror.spaces {
        out.push((
            mirror_key(IpamKind::AddressSpace, &s.id),
            serde_json::to_string(s)?,
        ));
    }
    for s in &mirror.subnets {
        out.push((
            mirror_key(IpamKind::Subnet, &s.id),
            serde_json::to_string(s)?,
        ));
    }
    for r in &mirror.ranges {
        out.push((
            mirror_key(IpamKind::Range, &r.id),
            serde_json::to_string(r)?,
        ));
    }
    Ok(out)
}

/// A mirror from its rows, in the order of their keys (by id within each kind: see
/// [`IpamSnapshot::sort_by_id`]); rows that cannot be read are returned apart.
pub fn mirror_from_rows(rows: Vec<(String, String)>) -> (IpamSnapshot, Vec<BadRow>) {
    let mut m = IpamSnapshot::default();
    let mut bad = Vec::new();
    for (key, body) in rows {
        let read = match key.split_once('/').map(|(l, _)| l) {
            Some("s") => serde_json::from_str(&body).map(|x| m.spaces.push(x)),
            Some("n") => serde_json::from_str(&body).map(|x| m.subnets.push(x)),
            Some("r") => serde_json::from_str(&body).map(|x| m.ranges.push(x)),
            _ => {
                bad.push(BadRow {
                    error: format!("the key {key} is of no known kind"),
                    key,
                    body,
                });
                continue;
            }
        };
        if let Err(e) = read {
            bad.push(BadRow {
                key,
                body,
                error: e.to_string(),
            });
        }
    }
    m.sort_by_id();
    (m, bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fabric::demo::demo_fabric;
    use crate::fabric::model::{HostGroupScope, NetworkService};
    use crate::sync::PlanInput;
    use crate::sync::plan::{agreed_base, plan};

    /// A base and mirror of a demo fabric both sides agree on.
    fn agreed() -> (BaseState, IpamSnapshot) {
        let fabric = demo_fabric(300, 5);
        let service = NetworkService {
            id: uuid::Uuid::from_u128(7),
            name: "ipam1".into(),
            description: String::new(),
            category: crate::fabric::model::ServiceCategory::NetworkManager,
            manufacturer: "Fabric Console".into(),
            model: "Fabric Console IPAM Server".into(),
            connection: crate::fabric::connection::ConnectionString::parse("127.0.0.1:1").unwrap(),
            run_as: *fabric.run_as_accounts.keys().next().unwrap(),
            provider: "builtin".into(),
            scope: HostGroupScope::All,
            sync_interval_secs: 300,
            tls_fingerprint: None,
            tls_ca_file: None,
            allow_cleartext: false,
            event_source: None,
            sync_on_change: true,
        };
        let empty = IpamSnapshot::default();
        let p = plan(&PlanInput {
            fabric: &fabric,
            service: &service,
            ipam: &empty,
            ipam_complete: true,
            base: &BaseState::default(),
            resolutions: &Default::default(),
        });
        let mut mirror = empty;
        crate::sync::apply::apply_to_mirror(&mut mirror, &p.ipam_ops);
        mirror.sort_by_id();
        let base = agreed_base(&fabric, &service, &mirror, &BaseState::default());
        (base, mirror)
    }

    #[test]
    fn a_base_and_a_mirror_read_back_as_written() {
        let (base, mirror) = agreed();
        assert!(base.values.object_count() > 100);
        let (read, bad) = base_from_rows(base_rows(&base).unwrap());
        assert!(bad.is_empty());
        assert_eq!(read, base);
        let (read, bad) = mirror_from_rows(mirror_rows(&mirror).unwrap());
        assert!(bad.is_empty());
        assert_eq!(read, mirror);
    }

    #[test]
    fn changes_write_only_what_differs_and_turn_the_old_rows_into_the_new() {
        let (base, mirror) = agreed();
        let mut new = base.clone();
        let first_pool = *new.values.pools.keys().next().unwrap();
        new.values.pools.get_mut(&first_pool).unwrap().name = "renamed".into();
        let gone = *new.values.sites.keys().next().unwrap();
        new.values.sites.remove(&gone);
        let c = base_changes(&base, &new).unwrap();
        assert_eq!(c.put.len(), 1);
        assert_eq!(c.delete, vec![format!("s/{gone}")]);
        let mut rows: BTreeMap<String, String> = base_rows(&base).unwrap().into_iter().collect();
        for k in &c.delete {
            rows.remove(k);
        }
        rows.extend(c.put);
        assert_eq!(base_from_rows(rows.into_iter().collect()).0, new);

        let mut m = mirror.clone();
        let removed = m.subnets.remove(0).id;
        m.ranges[0].name = "changed".into();
        let touched = vec![
            (IpamKind::Subnet, removed.clone()),
            (IpamKind::Range, m.ranges[0].id.clone()),
        ];
        let c = mirror_changes(&m, &touched).unwrap();
        assert_eq!(c.put.len(), 1);
        assert_eq!(c.delete, vec![format!("n/{removed}")]);
        let mut rows: BTreeMap<String, String> =
            mirror_rows(&mirror).unwrap().into_iter().collect();
        for k in &c.delete {
            rows.remove(k);
        }
        rows.extend(c.put);
        assert_eq!(mirror_from_rows(rows.into_iter().collect()).0, m);
    }

    #[test]
    fn unreadable_rows_are_set_apart_and_the_rest_reads() {
        let (base, _) = agreed();
        let mut rows = base_rows(&base).unwrap();
        rows.push(("x/1".into(), "{}".into()));
        rows[0].1 = "not json".into();
        let (read, bad) = base_from_rows(rows);
        assert_eq!(bad.len(), 2);
        let mut expected = base.clone();
        let first = *expected.values.lns.keys().next().unwrap();
        expected.values.lns.remove(&first);
        assert_eq!(read, expected);
    }
}
