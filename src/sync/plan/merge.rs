//! The per-field three-way merge: base × console × IPAM → what each side should hold.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use super::conflict::{Conflict, ConflictKey, Resolution};
use super::field_text::FieldText;
use crate::fabric::model::{Id, ObjectKind};
use crate::sync::normal::Normalized;

macro_rules! merge_fields {
    ($ctx:expr, $b:expr, $c:expr, $i:expr, [$($($f:ident).+ : $label:expr),* $(,)?]) => {{
        let mut tc = $c.clone();
        let mut ti = $i.clone();
        $(
            let (x, y) = $ctx.field($label, $b.map(|b| &b.$($f).+), &$c.$($f).+, &$i.$($f).+);
            tc.$($f).+ = x;
            ti.$($f).+ = y;
        )*
        (tc, ti)
    }};
}

/// A pool's fields with the names its dialog gives them, passed to `$m!($args, [fields])`.
macro_rules! pool_fields {
    ($m:ident, $($arg:expr),+) => {
        $m!($($arg),+, [
            subnet: "Subnet",
            name: "Name",
            description: "Description",
            start: "Range start",
            end: "Range end",
            settings.reserved: "Reserved addresses",
            settings.vips: "VIP addresses",
            settings.gateways: "Default gateways",
            settings.dns_servers: "DNS servers",
            settings.dns_suffix: "DNS suffix",
            settings.dns_search_suffixes: "DNS search suffixes",
            settings.wins_servers: "WINS servers",
            settings.netbios_enabled: "NetBIOS over TCP/IP",
        ])
    };
}

/// (label, base, console, IPAM) as text for each listed field.
macro_rules! field_texts {
    ($b:expr, $c:expr, $i:expr, [$($($f:ident).+ : $label:expr),* $(,)?]) => {
        [$(($label, $b.$($f).+.text(), $c.$($f).+.text(), $i.$($f).+.text())),*]
    };
}

/// What each side should hold after the sync, and the conflicts found on the way.
#[derive(Default)]
pub(super) struct Merged {
    pub console: Normalized,
    pub ipam: Normalized,
    pub conflicts: Vec<Conflict>,
}

/// Merge the three views of one service.
pub(super) fn merge(
    b: &Normalized,
    c: &Normalized,
    i: &Normalized,
    resolutions: &BTreeMap<String, Resolution>,
) -> Merged {
    let mut m = Merged::default();
    merge_both_ways(b, c, i, resolutions, &mut m);
    put_back_vm_networks(b, c, i, &mut m);
    put_back_vm_pools(b, c, i, &mut m);
    m
}

/// Logical networks, sites, subnets and pools on sites sync both ways.
fn merge_both_ways(
    b: &Normalized,
    c: &Normalized,
    i: &Normalized,
    resolutions: &BTreeMap<String, Resolution>,
    m: &mut Merged,
) {
    let (tc, ti, conflicts) = (&mut m.console, &mut m.ipam, &mut m.conflicts);

    merge_map(
        (&b.lns, &c.lns, &i.lns),
        (&mut tc.lns, &mut ti.lns),
        conflicts,
        resolutions,
        |id, v| {
            (
                ObjectKind::LogicalNetwork,
                *id,
                v.name.clone(),
                id.to_string(),
            )
        },
        |m, b, c, i| merge_fields!(m, b, c, i, [name: "Name", description: "Description"]),
    );
    merge_map(
        (&b.sites, &c.sites, &i.sites),
        (&mut tc.sites, &mut ti.sites),
        conflicts,
        resolutions,
        |id, v| (ObjectKind::NetworkSite, *id, v.name.clone(), id.to_string()),
        |m, b, c, i| merge_fields!(m, b, c, i, [name: "Name"]),
    );
    merge_map(
        (&b.subnets, &c.subnets, &i.subnets),
        (&mut tc.subnets, &mut ti.subnets),
        conflicts,
        resolutions,
        |key, v| {
            (
                ObjectKind::Subnet,
                v.site,
                key.1.to_string(),
                format!("{}:{}", key.0, key.1),
            )
        },
        |m, b, c, i| merge_fields!(m, b, c, i, [site: "Network site", vlan: "VLAN", secondary_vlan: "Secondary VLAN"]),
    );
    merge_map(
        (&b.pools, &c.pools, &i.pools),
        (&mut tc.pools, &mut ti.pools),
        conflicts,
        resolutions,
        |id, v| (ObjectKind::IpPool, *id, v.name.clone(), id.to_string()),
        |m, b, c, i| pool_fields!(merge_fields, m, b, c, i),
    );
}

/// The report of one field the IPAM side changed on an object managed in the console only:
/// the console's value is put back.
fn put_back(
    kind: ObjectKind,
    id: Id,
    name: &str,
    field: &str,
    base: String,
    console: String,
    ipam: String,
) -> Conflict {
    Conflict {
        key: ConflictKey::new(kind, id, field),
        kind,
        object: id,
        object_name: name.to_string(),
        field: field.into(),
        base,
        console,
        ipam,
        put_back: true,
    }
}

/// VM networks: console → IPAM only; an IPAM-side change is reported and put back.
fn put_back_vm_networks(b: &Normalized, c: &Normalized, i: &Normalized, m: &mut Merged) {
    let (tc, ti, conflicts) = (&mut m.console, &mut m.ipam, &mut m.conflicts);
    for (id, cv) in &c.vmns {
        tc.vmns.insert(*id, cv.clone());
        ti.vmns.insert(*id, cv.clone());
        if let (Some(iv), Some(bv)) = (i.vmns.get(id), b.vmns.get(id))
            && iv != bv
            && iv != cv
        {
            for (field, bt, ct, it) in [
                ("Name", bv.name.text(), cv.name.text(), iv.name.text()),
                (
                    "VM subnets",
                    bv.subnets.text(),
                    cv.subnets.text(),
                    iv.subnets.text(),
                ),
            ] {
                if it != bt {
                    conflicts.push(put_back(
                        ObjectKind::VmNetwork,
                        *id,
                        &cv.name,
                        field,
                        bt,
                        ct,
                        it,
                    ));
                }
            }
        }
    }
}

/// Pools on VM subnets follow their VM network: console → IPAM only.
fn put_back_vm_pools(b: &Normalized, c: &Normalized, i: &Normalized, m: &mut Merged) {
    let (tc, ti, conflicts) = (&mut m.console, &mut m.ipam, &mut m.conflicts);
    for (id, cv) in &c.vm_pools {
        tc.vm_pools.insert(*id, cv.clone());
        ti.vm_pools.insert(*id, cv.clone());
        if let (Some(iv), Some(bv)) = (i.vm_pools.get(id), b.vm_pools.get(id))
            && iv != bv
            && iv != cv
        {
            // Each field the IPAM side changed, by the name the pool's dialog gives it.
            let fields = pool_fields!(field_texts, bv, cv, iv);
            for (field, bt, ct, it) in fields {
                if it != bt {
                    conflicts.push(put_back(
                        ObjectKind::IpPool,
                        *id,
                        &cv.name,
                        field,
                        bt,
                        ct,
                        it,
                    ));
                }
            }
        }
    }
}

/// Where conflicts are collected while merging.
struct MergeCtx<'a> {
    resolutions: &'a BTreeMap<String, Resolution>,
    conflicts: Vec<Conflict>,
    kind: ObjectKind,
    object: Id,
    object_name: String,
    /// The object part of its conflict keys.
    key_object: String,
}

impl MergeCtx<'_> {
    fn field<T: Clone + PartialEq + FieldText + Debug>(
        &mut self,
        field: &str,
        b: Option<&T>,
        c: &T,
        i: &T,
    ) -> (T, T) {
        if c == i {
            return (c.clone(), c.clone());
        }
        if let Some(b) = b {
            if c == b {
                return (i.clone(), i.clone());
            }
            if i == b {
                return (c.clone(), c.clone());
            }
        }
        let key = ConflictKey::new(self.kind, &self.key_object, field);
        match self.resolutions.get(&key.to_string()) {
            Some(Resolution::KeepConsole) => (c.clone(), c.clone()),
            Some(Resolution::TakeIpam) => (i.clone(), i.clone()),
            None => {
                self.conflicts.push(Conflict {
                    key,
                    kind: self.kind,
                    object: self.object,
                    object_name: self.object_name.clone(),
                    field: field.to_string(),
                    base: b
                        .map(|b| b.text())
                        .unwrap_or_else(|| "(not synced yet)".into()),
                    console: c.text(),
                    ipam: i.text(),
                    put_back: false,
                });
                (c.clone(), i.clone())
            }
        }
    }

    /// One side deleted the object, the other changed it.
    fn existence(&mut self, console_deleted: bool) -> Option<Resolution> {
        let key = ConflictKey::new(self.kind, &self.key_object, "exists");
        if let Some(r) = self.resolutions.get(&key.to_string()) {
            return Some(*r);
        }
        let (c, i) = if console_deleted {
            ("Deleted", "Changed")
        } else {
            ("Changed", "Deleted")
        };
        self.conflicts.push(Conflict {
            key,
            kind: self.kind,
            object: self.object,
            object_name: self.object_name.clone(),
            field: "Exists".into(),
            base: "Present".into(),
            console: c.into(),
            ipam: i.into(),
            put_back: false,
        });
        None
    }
}

/// Targets for one entity: what the console and the IPAM side should hold after the sync.
type Targets<V> = (Option<V>, Option<V>);

fn merge_presence<V: Clone + PartialEq>(
    ctx: &mut MergeCtx,
    b: Option<&V>,
    c: Option<&V>,
    i: Option<&V>,
    fields: impl FnOnce(&mut MergeCtx, Option<&V>, &V, &V) -> (V, V),
) -> Targets<V> {
    match (b, c, i) {
        (_, Some(c), Some(i)) => {
            let (tc, ti) = fields(ctx, b, c, i);
            (Some(tc), Some(ti))
        }
        (None, Some(c), None) => (Some(c.clone()), Some(c.clone())),
        (None, None, Some(i)) => (Some(i.clone()), Some(i.clone())),
        (Some(b), None, Some(i)) => {
            if i == b {
                (None, None)
            } else {
                match ctx.existence(true) {
                    Some(Resolution::KeepConsole) => (None, None),
                    Some(Resolution::TakeIpam) => (Some(i.clone()), Some(i.clone())),
                    None => (None, Some(i.clone())),
                }
            }
        }
        (Some(b), Some(c), None) => {
            if c == b {
                (None, None)
            } else {
                match ctx.existence(false) {
                    Some(Resolution::KeepConsole) => (Some(c.clone()), Some(c.clone())),
                    Some(Resolution::TakeIpam) => (None, None),
                    None => (Some(c.clone()), None),
                }
            }
        }
        (_, None, None) => (None, None),
    }
}

/// The base, console and IPAM maps of one kind of entity.
type Sides<'a, K, V> = (&'a BTreeMap<K, V>, &'a BTreeMap<K, V>, &'a BTreeMap<K, V>);

/// Merge one kind of entity of the three views into the two targets.
fn merge_map<K: Ord + Copy, V: Clone + PartialEq>(
    (b, c, i): Sides<K, V>,
    (tc, ti): (&mut BTreeMap<K, V>, &mut BTreeMap<K, V>),
    conflicts: &mut Vec<Conflict>,
    resolutions: &BTreeMap<String, Resolution>,
    identify: impl Fn(&K, &V) -> (ObjectKind, Id, String, String),
    fields: impl Fn(&mut MergeCtx, Option<&V>, &V, &V) -> (V, V),
) {
    let keys: BTreeSet<K> = b.keys().chain(c.keys()).chain(i.keys()).copied().collect();
    for key in &keys {
        let (bv, cv, iv) = (b.get(key), c.get(key), i.get(key));
        // Unchanged on both sides: the common case, kept cheap.
        if let (Some(bv), Some(cv), Some(iv)) = (bv, cv, iv)
            && bv == cv
            && cv == iv
        {
            tc.insert(*key, cv.clone());
            ti.insert(*key, cv.clone());
            continue;
        }
        let Some(any) = cv.or(iv).or(bv) else {
            continue;
        };
        let (kind, object, object_name, key_object) = identify(key, any);
        let mut m = MergeCtx {
            resolutions,
            conflicts: Vec::new(),
            kind,
            object,
            object_name,
            key_object,
        };
        let (x, y) = merge_presence(&mut m, bv, cv, iv, &fields);
        conflicts.extend(m.conflicts);
        if let Some(x) = x {
            tc.insert(*key, x);
        }
        if let Some(y) = y {
            ti.insert(*key, y);
        }
    }
}
