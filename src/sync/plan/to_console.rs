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
    let mut changes = Vec::new();
    deletions(c, t, &mut changes, summary);
    logical_networks(fabric, c, t, &mut changes, summary);
    count_subnets(c, t, summary);
    sites(fabric, c, t, scope_groups, &mut changes, summary);
    pools(fabric, c, t, &mut changes, summary);
    changes
}

/// Deletions first: pools, sites, VM networks, logical networks.
fn deletions(
    c: &Normalized,
    t: &Normalized,
    changes: &mut Vec<FabricChange>,
    summary: &mut PlanSummary,
) {
    for id in c
        .pools
        .keys()
        .filter(|k| !t.pools.contains_key(k))
        .chain(c.vm_pools.keys().filter(|k| !t.vm_pools.contains_key(k)))
    {
        changes.push(FabricChange::Delete(ObjectKind::IpPool, *id));
        summary.count(Side::Console, ObjectType::IpPool, OpVerb::Delete);
    }
    for id in c.sites.keys().filter(|k| !t.sites.contains_key(k)) {
        changes.push(FabricChange::Delete(ObjectKind::NetworkSite, *id));
        summary.count(Side::Console, ObjectType::NetworkSite, OpVerb::Delete);
    }
    for id in c.vmns.keys().filter(|k| !t.vmns.contains_key(k)) {
        changes.push(FabricChange::Delete(ObjectKind::VmNetwork, *id));
        summary.count(Side::Console, ObjectType::VmNetwork, OpVerb::Delete);
    }
    for id in c.lns.keys().filter(|k| !t.lns.contains_key(k)) {
        changes.push(FabricChange::Delete(ObjectKind::LogicalNetwork, *id));
        summary.count(Side::Console, ObjectType::LogicalNetwork, OpVerb::Delete);
    }
}

fn logical_networks(
    fabric: &Fabric,
    c: &Normalized,
    t: &Normalized,
    changes: &mut Vec<FabricChange>,
    summary: &mut PlanSummary,
) {
    for (id, v) in &t.lns {
        match (c.lns.get(id), fabric.logical_networks.get(id)) {
            (Some(cv), Some(existing)) if cv != v => {
                let mut ln = existing.clone();
                ln.name = v.name.clone();
                ln.description = v.description.clone();
                changes.push(FabricChange::Put(FabricObject::LogicalNetwork(ln)));
                summary.count(Side::Console, ObjectType::LogicalNetwork, OpVerb::Update);
            }
            (None, None) => {
                changes.push(FabricChange::Put(FabricObject::LogicalNetwork(
                    LogicalNetwork {
                        id: *id,
                        name: v.name.clone(),
                        description: v.description.clone(),
                        isolation: LogicalNetworkIsolation::OneConnected,
                    },
                )));
                summary.count(Side::Console, ObjectType::LogicalNetwork, OpVerb::Create);
            }
            _ => {}
        }
    }
}

/// Subnets are counted on their own though they are stored in their sites.
fn count_subnets(c: &Normalized, t: &Normalized, summary: &mut PlanSummary) {
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
        summary.count(Side::Console, ObjectType::Subnet, verb);
    }
    for _ in c.subnets.keys().filter(|k| !t.subnets.contains_key(k)) {
        summary.count(Side::Console, ObjectType::Subnet, OpVerb::Delete);
    }
}

/// Sites whose name or subnets change, written whole with their subnets.
fn sites(
    fabric: &Fabric,
    c: &Normalized,
    t: &Normalized,
    scope_groups: &[Id],
    changes: &mut Vec<FabricChange>,
    summary: &mut PlanSummary,
) {
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
        changes.push(FabricChange::Put(FabricObject::NetworkSite(site)));
        if new {
            summary.count(Side::Console, ObjectType::NetworkSite, OpVerb::Create);
        } else if changed_name {
            summary.count(Side::Console, ObjectType::NetworkSite, OpVerb::Update);
        }
    }
}

fn pools(
    fabric: &Fabric,
    c: &Normalized,
    t: &Normalized,
    changes: &mut Vec<FabricChange>,
    summary: &mut PlanSummary,
) {
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
        changes.push(FabricChange::Put(FabricObject::IpPool(p)));
        summary.count(Side::Console, ObjectType::IpPool, verb);
    }
}
