//! The console changes that bring the console to its target: one store transaction.

use std::collections::BTreeMap;

use ipnet::IpNet;

use super::summary::{ObjectType, PlanSummary, Side};
use crate::fabric::model::{
    Fabric, FabricChange, FabricObject, Id, IpPool, LogicalNetwork, LogicalNetworkIsolation,
    NetworkSite, ObjectKind, PoolScope, SubnetVlan,
};
use crate::ipam::model::OpVerb;
use crate::sync::normal::{Normalized, SubnetVal};

/// The changes from the console's values `c` to its target `t`, deletions first, counted.
pub(super) fn changes(
    fabric: &Fabric,
    c: &Normalized,
    t: &Normalized,
    scope_groups: &[Id],
    summary: &mut PlanSummary,
) -> Vec<FabricChange> {
    let mut o = ConsoleTarget {
        fabric,
        c,
        t,
        changes: Vec::new(),
        summary,
    };
    o.deletions();
    o.logical_networks();
    o.count_subnets();
    o.sites(scope_groups);
    o.pools();
    o.changes
}

/// The changes being collected, with what they read.
struct ConsoleTarget<'a> {
    fabric: &'a Fabric,
    c: &'a Normalized,
    t: &'a Normalized,
    changes: Vec<FabricChange>,
    summary: &'a mut PlanSummary,
}

impl ConsoleTarget<'_> {
    fn count(&mut self, object: ObjectType, verb: OpVerb) {
        self.summary.count(Side::Console, object, verb);
    }

    /// Creates or replaces `o`, counted under `object` as `verb`.
    fn put(&mut self, object: ObjectType, verb: OpVerb, o: FabricObject) {
        self.count(object, verb);
        self.changes.push(FabricChange::Put(o));
    }

    fn delete(&mut self, kind: ObjectKind, object: ObjectType, id: Id) {
        self.count(object, OpVerb::Delete);
        self.changes.push(FabricChange::Delete(kind, id));
    }

    /// Deletions first: pools, sites, VM networks, logical networks.
    fn deletions(&mut self) {
        let (c, t) = (self.c, self.t);
        for id in c
            .pools
            .keys()
            .filter(|k| !t.pools.contains_key(k))
            .chain(c.vm_pools.keys().filter(|k| !t.vm_pools.contains_key(k)))
        {
            self.delete(ObjectKind::IpPool, ObjectType::IpPool, *id);
        }
        for id in c.sites.keys().filter(|k| !t.sites.contains_key(k)) {
            self.delete(ObjectKind::NetworkSite, ObjectType::NetworkSite, *id);
        }
        for id in c.vmns.keys().filter(|k| !t.vmns.contains_key(k)) {
            self.delete(ObjectKind::VmNetwork, ObjectType::VmNetwork, *id);
        }
        for id in c.lns.keys().filter(|k| !t.lns.contains_key(k)) {
            self.delete(ObjectKind::LogicalNetwork, ObjectType::LogicalNetwork, *id);
        }
    }

    fn logical_networks(&mut self) {
        let (fabric, c, t) = (self.fabric, self.c, self.t);
        for (id, v) in &t.lns {
            match (c.lns.get(id), fabric.logical_networks.get(id)) {
                (Some(cv), Some(existing)) if cv != v => {
                    let mut ln = existing.clone();
                    ln.name = v.name.clone();
                    ln.description = v.description.clone();
                    self.put(
                        ObjectType::LogicalNetwork,
                        OpVerb::Update,
                        FabricObject::LogicalNetwork(ln),
                    );
                }
                (None, None) => {
                    let ln = LogicalNetwork {
                        id: *id,
                        name: v.name.clone(),
                        description: v.description.clone(),
                        isolation: LogicalNetworkIsolation::OneConnected,
                    };
                    self.put(
                        ObjectType::LogicalNetwork,
                        OpVerb::Create,
                        FabricObject::LogicalNetwork(ln),
                    );
                }
                _ => {}
            }
        }
    }

    /// Subnets are counted on their own though they are stored in their sites.
    fn count_subnets(&mut self) {
        let (c, t) = (self.c, self.t);
        for (key, _) in t
            .subnets
            .iter()
            .filter(|(k, v)| c.subnets.get(k) != Some(v))
        {
            let verb = if c.subnets.contains_key(key) {
                OpVerb::Update
            } else {
                OpVerb::Create
            };
            self.count(ObjectType::Subnet, verb);
        }
        for _ in c.subnets.keys().filter(|k| !t.subnets.contains_key(k)) {
            self.count(ObjectType::Subnet, OpVerb::Delete);
        }
    }

    /// Sites whose name or subnets change, written whole with their subnets.
    fn sites(&mut self, scope_groups: &[Id]) {
        let (fabric, c, t) = (self.fabric, self.c, self.t);
        // Subnets per site in the target and now.
        let mut target_subnets: BTreeMap<Id, Vec<(IpNet, &SubnetVal)>> = BTreeMap::new();
        for ((_, net), s) in &t.subnets {
            target_subnets.entry(s.site).or_default().push((*net, s));
        }
        let mut current_subnets: BTreeMap<Id, Vec<(IpNet, &SubnetVal)>> = BTreeMap::new();
        for ((_, net), s) in &c.subnets {
            current_subnets.entry(s.site).or_default().push((*net, s));
        }
        for (id, v) in &t.sites {
            let want = target_subnets.get(id).cloned().unwrap_or_default();
            let have = current_subnets.get(id).cloned().unwrap_or_default();
            let existing = fabric.network_sites.get(id);
            let changed_name = c.sites.get(id).is_some_and(|cv| cv.name != v.name);
            let changed_subnets = want != have;
            let new = existing.is_none();
            if !(new || changed_name || changed_subnets) {
                continue;
            }
            let mut site = existing.cloned().unwrap_or_else(|| NetworkSite {
                id: *id,
                name: v.name.clone(),
                logical_network: v.ln,
                host_groups: scope_groups.to_vec(),
                subnets: Vec::new(),
            });
            site.name = v.name.clone();
            site.subnets = want
                .iter()
                .map(|(net, s)| SubnetVlan {
                    subnet: *net,
                    vlan: s.vlan,
                    secondary_vlan: s.secondary_vlan,
                })
                .collect();
            // A site whose only change is its subnets is not counted: its subnets are.
            let site = FabricObject::NetworkSite(site);
            if new {
                self.put(ObjectType::NetworkSite, OpVerb::Create, site);
            } else if changed_name {
                self.put(ObjectType::NetworkSite, OpVerb::Update, site);
            } else {
                self.changes.push(FabricChange::Put(site));
            }
        }
    }

    fn pools(&mut self) {
        let (fabric, c, t) = (self.fabric, self.c, self.t);
        for (id, v) in &t.pools {
            let existing = fabric.ip_pools.get(id);
            if c.pools.get(id) == Some(v) {
                continue;
            }
            let Some(site) = t.subnets.get(&(v.ln, v.subnet)).map(|s| s.site) else {
                continue;
            };
            // Every field of a pool is synced, so the target value describes it whole.
            let p = IpPool {
                id: *id,
                name: v.name.clone(),
                description: v.description.clone(),
                scope: PoolScope::Site {
                    site,
                    subnet: v.subnet,
                },
                range_start: v.start,
                range_end: v.end,
                settings: v.settings.clone(),
            };
            let verb = if existing.is_some() {
                OpVerb::Update
            } else {
                OpVerb::Create
            };
            self.put(ObjectType::IpPool, verb, FabricObject::IpPool(p));
        }
    }
}
