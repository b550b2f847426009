//! The IPAM operations that bring the IPAM side to its target, in dependency order.

use std::collections::{BTreeMap, HashMap};

use ipnet::IpNet;
use uuid::Uuid;

use super::conflict::{Conflict, ConflictKey};
use super::projection::IpamView;
use super::summary::{ObjectType, PlanSummary, Side};
use crate::fabric::model::{Id, NetworkService, ObjectKind};
use crate::ipam::model::{
    AddressSpace, AddressSpaceKind, IpRange, IpamId, IpamOp, IpamSnapshot, IpamSubnet, OpVerb,
};
use crate::sync::normal::{IpamIds, Normalized, PoolVal, SubnetKey};
use crate::sync::op_order::OpOrder;

fn new_ipam_id() -> IpamId {
    IpamId::from(Uuid::new_v4().to_string())
}

/// A new IPAM id for the object of `key`, remembered in `ids` so the operations after it can
/// refer to it.
fn propose_id<K: Ord>(ids: &mut BTreeMap<K, IpamId>, key: K) -> IpamId {
    let id = new_ipam_id();
    ids.insert(key, id.clone());
    id
}

/// The IPAM object linked to `key`, when the server still has it.
fn linked_object<'a, K: Ord, V>(
    ids: &BTreeMap<K, IpamId>,
    key: &K,
    objects: &HashMap<&str, &'a V>,
) -> Option<&'a V> {
    ids.get(key)
        .and_then(|id| objects.get(id.as_str()))
        .copied()
}

/// The operations from the IPAM side's values to its target `t`, counted. `c` is the console's
/// side: an orphan's space goes only once the administrator deleted the network there.
/// VM subnets edited on the IPAM side are put back, and each edit is added to `put_back`.
pub(super) fn ops(
    snap: &IpamSnapshot,
    iview: &IpamView,
    c: &Normalized,
    t: &Normalized,
    service: &NetworkService,
    summary: &mut PlanSummary,
    put_back: &mut Vec<Conflict>,
) -> Vec<IpamOp> {
    let ids = &iview.ids;
    let mut o = IpamTarget {
        i: &iview.values,
        ids,
        iview,
        c,
        t,
        spaces: snap.spaces.iter().map(|s| (s.id.as_str(), s)).collect(),
        subnets: snap.subnets.iter().map(|s| (s.id.as_str(), s)).collect(),
        ranges: snap.ranges.iter().map(|r| (r.id.as_str(), r)).collect(),
        ops: Ops {
            summary,
            deletes: Vec::new(),
            creates: Vec::new(),
        },
        put_back,
        ln_space: ids.spaces.clone(),
        subnet_ids: ids.subnets.clone(),
        vmn_space: ids.vmn_spaces.clone(),
        vm_subnet_ids: ids.vmn_subnets.clone(),
    };
    o.deletions();
    o.provider_spaces();
    o.customer_spaces();
    o.provider_subnets();
    o.customer_subnets();
    o.ranges(service);
    // Order: deletes (ranges → subnets → spaces), then spaces → subnets → ranges.
    let mut all: Vec<IpamOp> = o.ops.deletes.into_iter().chain(o.ops.creates).collect();
    all.sort_by_key(OpOrder::phase);
    all
}

/// The operations being collected, with what they read.
struct IpamTarget<'a, 's> {
    i: &'a Normalized,
    ids: &'a IpamIds,
    iview: &'a IpamView,
    c: &'a Normalized,
    t: &'a Normalized,
    spaces: HashMap<&'a str, &'a AddressSpace>,
    subnets: HashMap<&'a str, &'a IpamSubnet>,
    ranges: HashMap<&'a str, &'a IpRange>,
    ops: Ops<'s>,
    /// VM subnets edited on the IPAM side, reported as put back.
    put_back: &'s mut Vec<Conflict>,
    /// Logical network → provider space id, proposed ids of new spaces included.
    ln_space: BTreeMap<Id, IpamId>,
    subnet_ids: BTreeMap<SubnetKey, IpamId>,
    vmn_space: BTreeMap<Id, IpamId>,
    vm_subnet_ids: BTreeMap<SubnetKey, IpamId>,
}

/// The operations collected so far, counted as they come.
struct Ops<'s> {
    summary: &'s mut PlanSummary,
    deletes: Vec<IpamOp>,
    creates: Vec<IpamOp>,
}

impl Ops<'_> {
    /// Adds `op`, counted on the IPAM side under `object` with the operation's verb.
    fn push(&mut self, object: ObjectType, op: IpamOp) {
        self.summary.count(Side::Ipam, object, op.verb());
        if op.verb() == OpVerb::Delete {
            self.deletes.push(op);
        } else {
            self.creates.push(op);
        }
    }
}

impl IpamTarget<'_, '_> {
    /// Deletions, children first; only of objects that carry the console's identity.
    fn deletions(&mut self) {
        let (i, ids, iview, c, t) = (self.i, self.ids, self.iview, self.c, self.t);
        let deletable = |id: &IpamId| iview.linked.contains(id);
        for (pool, rid) in &ids.ranges {
            let gone = !t.pools.contains_key(pool) && !t.vm_pools.contains_key(pool);
            let seen = i.pools.contains_key(pool) || i.vm_pools.contains_key(pool);
            if gone && seen && deletable(rid) {
                self.ops
                    .push(ObjectType::Range, IpamOp::DeleteRange(rid.clone()));
            }
        }
        for (key, sid) in &ids.vmn_subnets {
            let keep = t
                .vmns
                .get(&key.0)
                .is_some_and(|v| v.subnets.contains(&key.1));
            if !keep && deletable(sid) {
                self.ops.push(
                    ObjectType::CustomerSubnet,
                    IpamOp::DeleteSubnet(sid.clone()),
                );
            }
        }
        for (key, sid) in &ids.subnets {
            if !t.subnets.contains_key(key) && deletable(sid) {
                // A range we did not link still inside blocks the delete on the server; it reports so.
                self.ops
                    .push(ObjectType::Subnet, IpamOp::DeleteSubnet(sid.clone()));
            }
        }
        for (vmn, sid) in &ids.vmn_spaces {
            if !t.vmns.contains_key(vmn) && deletable(sid) {
                self.ops
                    .push(ObjectType::CustomerSpace, IpamOp::DeleteSpace(sid.clone()));
            }
        }
        for (ln, sid) in &ids.spaces {
            let gone = if iview.broken_links.contains(ln) {
                // An orphan's space goes only once the administrator deleted the network.
                !c.lns.contains_key(ln)
            } else {
                !t.lns.contains_key(ln)
            };
            if gone && deletable(sid) {
                self.ops
                    .push(ObjectType::ProviderSpace, IpamOp::DeleteSpace(sid.clone()));
            }
        }
    }

    fn provider_spaces(&mut self) {
        let (i, ids, iview, t) = (self.i, self.ids, self.iview, self.t);
        for (ln, v) in &t.lns {
            match linked_object(&ids.spaces, ln, &self.spaces) {
                Some(existing) => {
                    let needs = i.lns.get(ln) != Some(v) || existing.vmm_id != Some(*ln);
                    if needs && !iview.broken_links.contains(ln) {
                        let mut s = (*existing).clone();
                        s.vmm_id = Some(*ln);
                        s.name = v.name.clone();
                        s.vmm_logical_network = Some(v.name.clone());
                        s.description = v.description.clone();
                        self.ops
                            .push(ObjectType::ProviderSpace, IpamOp::UpdateSpace(s));
                    }
                }
                None => {
                    if iview.broken_links.contains(ln) {
                        continue;
                    }
                    let sid = propose_id(&mut self.ln_space, *ln);
                    self.ops.push(
                        ObjectType::ProviderSpace,
                        IpamOp::CreateSpace(AddressSpace {
                            description: v.description.clone(),
                            vmm_logical_network: Some(v.name.clone()),
                            ..console_space(sid, *ln, &v.name, AddressSpaceKind::Provider)
                        }),
                    );
                }
            }
        }
    }

    /// Customer spaces (VM networks).
    fn customer_spaces(&mut self) {
        let (i, ids, t) = (self.i, self.ids, self.t);
        for (vmn, v) in &t.vmns {
            let provider_space = self.ln_space.get(&v.ln).cloned();
            match linked_object(&ids.vmn_spaces, vmn, &self.spaces) {
                Some(existing) => {
                    let cur = i.vmns.get(vmn);
                    let needs = cur.map(|c| &c.name) != Some(&v.name)
                        || existing.vmm_id != Some(*vmn)
                        || existing.provider_space != provider_space;
                    if needs {
                        let mut s = (*existing).clone();
                        s.vmm_id = Some(*vmn);
                        s.name = v.name.clone();
                        s.vm_network = Some(v.name.clone());
                        s.provider_space = provider_space;
                        self.ops
                            .push(ObjectType::CustomerSpace, IpamOp::UpdateSpace(s));
                    }
                }
                None => {
                    let sid = propose_id(&mut self.vmn_space, *vmn);
                    self.ops.push(
                        ObjectType::CustomerSpace,
                        IpamOp::CreateSpace(AddressSpace {
                            vm_network: Some(v.name.clone()),
                            provider_space,
                            ..console_space(sid, *vmn, &v.name, AddressSpaceKind::Customer)
                        }),
                    );
                }
            }
        }
    }

    fn provider_subnets(&mut self) {
        let (i, ids, t) = (self.i, self.ids, self.t);
        for (key, v) in &t.subnets {
            let Some(space) = self.ln_space.get(&key.0) else {
                continue;
            };
            let ln_name = t.lns.get(&key.0).map(|l| l.name.clone());
            let site_name = t.sites.get(&v.site).map(|s| s.name.clone());
            match linked_object(&ids.subnets, key, &self.subnets) {
                Some(existing) => {
                    let needs = i.subnets.get(key) != Some(v)
                        || existing.vmm_id != Some(v.site)
                        || existing.network_site != site_name
                        || existing.vmm_logical_network != ln_name
                        || &existing.address_space != space;
                    if needs {
                        let mut s = (*existing).clone();
                        s.vmm_id = Some(v.site);
                        s.address_space = space.clone();
                        s.network_site = site_name;
                        s.vmm_logical_network = ln_name;
                        s.vlan = v.vlan;
                        s.secondary_vlan = v.secondary_vlan;
                        self.ops.push(ObjectType::Subnet, IpamOp::UpdateSubnet(s));
                    }
                }
                None => {
                    let sid = propose_id(&mut self.subnet_ids, *key);
                    self.ops.push(
                        ObjectType::Subnet,
                        IpamOp::CreateSubnet(IpamSubnet {
                            vmm_logical_network: ln_name,
                            network_site: site_name,
                            vlan: v.vlan,
                            secondary_vlan: v.secondary_vlan,
                            ..console_subnet(sid, v.site, space, key.1, "Provider")
                        }),
                    );
                }
            }
        }
    }

    fn customer_subnets(&mut self) {
        let (ids, t) = (self.ids, self.t);
        for (vmn, v) in &t.vmns {
            let Some(space) = self.vmn_space.get(vmn) else {
                continue;
            };
            for net in &v.subnets {
                if let Some(existing) =
                    linked_object(&ids.vmn_subnets, &(*vmn, *net), &self.subnets)
                {
                    // VM networks are the console's: a VM subnet edited on the IPAM side is
                    // put back as the console made it.
                    let wanted = console_subnet(existing.id.clone(), *vmn, space, *net, "Customer");
                    let edits = vm_subnet_edits(existing, &wanted);
                    if edits.is_empty() {
                        continue;
                    }
                    for (field, ipam, console) in edits {
                        let field = format!("VM subnet {net}: {field}");
                        self.put_back.push(Conflict {
                            key: ConflictKey::new(ObjectKind::VmNetwork, vmn, field.clone()),
                            kind: ObjectKind::VmNetwork,
                            object: *vmn,
                            object_name: v.name.clone(),
                            field,
                            base: console.clone(),
                            console,
                            ipam,
                            put_back: true,
                        });
                    }
                    self.ops.push(
                        ObjectType::CustomerSubnet,
                        IpamOp::UpdateSubnet(IpamSubnet {
                            custom_fields: existing.custom_fields.clone(),
                            ..wanted
                        }),
                    );
                } else if !ids.vmn_subnets.contains_key(&(*vmn, *net)) {
                    let sid = propose_id(&mut self.vm_subnet_ids, (*vmn, *net));
                    self.ops.push(
                        ObjectType::CustomerSubnet,
                        IpamOp::CreateSubnet(console_subnet(sid, *vmn, space, *net, "Customer")),
                    );
                }
            }
        }
    }

    /// Ranges: pools on site subnets, then pools on VM subnets.
    fn ranges(&mut self, service: &NetworkService) {
        let (i, ids, t) = (self.i, self.ids, self.t);
        for (targets, seen, subnet_of) in [
            (&t.pools, &i.pools, &self.subnet_ids),
            (&t.vm_pools, &i.vm_pools, &self.vm_subnet_ids),
        ] {
            for (pool, v) in targets {
                let Some(subnet) = subnet_of.get(&(v.ln, v.subnet)) else {
                    continue;
                };
                let existing = linked_object(&ids.ranges, pool, &self.ranges);
                let needs = match existing {
                    Some(r) => {
                        seen.get(pool) != Some(v) || r.vmm_id != Some(*pool) || &r.subnet != subnet
                    }
                    None => true,
                };
                if needs {
                    self.ops.push(
                        ObjectType::Range,
                        range_op(existing, *pool, v, subnet, service),
                    );
                }
            }
        }
    }
}

/// A space the console creates, before its kind's own settings.
fn console_space(id: IpamId, vmm_id: Id, name: &str, kind: AddressSpaceKind) -> AddressSpace {
    AddressSpace {
        vmm_id: Some(vmm_id),
        owner: "VMM".into(),
        ..AddressSpace::new(id, name, kind)
    }
}

/// A subnet the console creates, named by its network, before its kind's own settings.
/// The fields of a VM subnet that differ from what the console makes: (label, IPAM, console).
fn vm_subnet_edits(ipam: &IpamSubnet, console: &IpamSubnet) -> Vec<(&'static str, String, String)> {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let vlan = |v: &Option<u16>| v.map(|x| x.to_string()).unwrap_or_default();
    [
        ("Description", ipam.name.clone(), console.name.clone()),
        (
            "Type",
            ipam.network_type.clone(),
            console.network_type.clone(),
        ),
        ("VLAN", ipam.vlan.to_string(), console.vlan.to_string()),
        (
            "Secondary VLAN",
            vlan(&ipam.secondary_vlan),
            vlan(&console.secondary_vlan),
        ),
        (
            "VMM logical network",
            text(&ipam.vmm_logical_network),
            text(&console.vmm_logical_network),
        ),
        (
            "Network site",
            text(&ipam.network_site),
            text(&console.network_site),
        ),
        ("Owner", ipam.owner.clone(), console.owner.clone()),
    ]
    .into_iter()
    .filter(|(_, i, c)| i != c)
    .collect()
}

fn console_subnet(
    id: IpamId,
    vmm_id: Id,
    space: &IpamId,
    network: IpNet,
    network_type: &str,
) -> IpamSubnet {
    IpamSubnet {
        vmm_id: Some(vmm_id),
        name: network.to_string(),
        network_type: network_type.into(),
        owner: "VMM".into(),
        ..IpamSubnet::new(id, space.clone(), network)
    }
}

/// The create or update that makes an IPAM range carry a pool's settings.
fn range_op(
    existing: Option<&IpRange>,
    pool: Id,
    v: &PoolVal,
    subnet: &IpamId,
    service: &NetworkService,
) -> IpamOp {
    // Every field but the server's id is the console's, so the range is built whole.
    let r = IpRange {
        id: existing.map(|r| r.id.clone()).unwrap_or_else(new_ipam_id),
        vmm_id: Some(pool),
        subnet: subnet.clone(),
        name: v.name.clone(),
        description: v.description.clone(),
        start: v.start,
        end: v.end,
        settings: v.settings.clone(),
        managed_by_service: "VMM".into(),
        service_instance: service.id.to_string(),
    };
    if existing.is_some() {
        IpamOp::UpdateRange(r)
    } else {
        IpamOp::CreateRange(r)
    }
}
