//! Property tests of the planner: random demo fabrics, random scopes, random edits on either
//! side. After a sync nothing is left to plan, a second sync changes nothing, nothing outside
//! the service's host-group scope is written or deleted, and nothing is deleted on one side
//! unless something was deleted on the other.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;
use crate::fabric::connection::ConnectionString;
use crate::fabric::demo::demo_fabric;
use crate::fabric::model::*;
use crate::ipam::model::{
    AddressSpace, AddressSpaceKind, IpamId, IpamKind, IpamOp, IpamSnapshot, OpVerb,
};
use crate::sync::normal::BaseState;

/// One edit an operator (console) or an IPAM administrator (server) makes between syncs.
/// Indices pick an object modulo how many there are.
#[derive(Debug, Clone)]
enum Edit {
    RenameLogicalNetwork(usize),
    SetPoolDns(usize, u8),
    DeletePool(usize),
    DeleteVmNetwork(usize),
    AddLogicalNetwork(u8),
    SetRangeDns(usize, u8),
    SetSubnetVlan(usize, u16),
    DeleteRange(usize),
    AddHandMadeSpace(u8),
}

impl Edit {
    fn deletes_in_console(&self) -> bool {
        matches!(self, Edit::DeletePool(_) | Edit::DeleteVmNetwork(_))
    }
    fn deletes_in_ipam(&self) -> bool {
        matches!(self, Edit::DeleteRange(_))
    }
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<usize>().prop_map(Edit::RenameLogicalNetwork),
        (any::<usize>(), any::<u8>()).prop_map(|(i, d)| Edit::SetPoolDns(i, d)),
        any::<usize>().prop_map(Edit::DeletePool),
        any::<usize>().prop_map(Edit::DeleteVmNetwork),
        any::<u8>().prop_map(Edit::AddLogicalNetwork),
        (any::<usize>(), any::<u8>()).prop_map(|(i, d)| Edit::SetRangeDns(i, d)),
        (any::<usize>(), 0u16..1000).prop_map(|(i, v)| Edit::SetSubnetVlan(i, v)),
        any::<usize>().prop_map(Edit::DeleteRange),
        any::<u8>().prop_map(Edit::AddHandMadeSpace),
    ]
}

fn nth<K: Clone, V>(map: &std::collections::BTreeMap<K, V>, i: usize) -> Option<K> {
    (!map.is_empty()).then(|| map.keys().nth(i % map.len()).cloned())?
}

struct World {
    fabric: Fabric,
    ipam: IpamSnapshot,
    base: BaseState,
    service: NetworkService,
}

impl World {
    fn new(size: usize, seed: u64, scope_mask: u8) -> Self {
        let fabric = demo_fabric(size, seed);
        let root = fabric.root_host_group().unwrap().id;
        let cities: Vec<Id> = fabric
            .host_groups
            .values()
            .filter(|g| g.parent == Some(root))
            .map(|g| g.id)
            .collect();
        let chosen: BTreeSet<Id> = cities
            .iter()
            .enumerate()
            .filter(|(i, _)| scope_mask & (1 << i) != 0)
            .map(|(_, id)| *id)
            .collect();
        let scope = if chosen.is_empty() {
            HostGroupScope::All
        } else {
            HostGroupScope::Selected(chosen)
        };
        let service = NetworkService {
            id: uuid::Uuid::from_u128(7),
            name: "ipam1".into(),
            description: String::new(),
            category: ServiceCategory::NetworkManager,
            manufacturer: "Fabric Console".into(),
            model: "Fabric Console IPAM Server".into(),
            connection: ConnectionString::parse("127.0.0.1:1").unwrap(),
            run_as: *fabric.run_as_accounts.keys().next().unwrap(),
            provider: "builtin".into(),
            scope,
            sync_interval_secs: 300,
            tls_fingerprint: None,
            tls_ca_file: None,
            allow_cleartext: false,
            event_source: None,
            sync_on_change: true,
        };
        World {
            fabric,
            ipam: IpamSnapshot::default(),
            base: BaseState::default(),
            service,
        }
    }

    fn plan(&self) -> SyncPlan {
        plan(&PlanInput {
            fabric: &self.fabric,
            service: &self.service,
            ipam: &self.ipam,
            ipam_complete: true,
            base: &self.base,
            resolutions: &Default::default(),
        })
    }

    /// Plan, apply both sides, record the agreed base.
    fn sync(&mut self) -> SyncPlan {
        let p = self.plan();
        crate::sync::apply::apply_to_mirror(&mut self.ipam, &p.ipam_ops);
        self.fabric.apply_changes(&p.console_changes);
        self.base = agreed_base(&self.fabric, &self.service, &self.ipam, &self.base);
        p
    }

    /// The console objects this service syncs, as the projection sees them now.
    fn in_scope(&self) -> BTreeSet<Id> {
        let v = project_console(&self.fabric, &self.service.scope, &self.base).values;
        v.lns
            .keys()
            .chain(v.sites.keys())
            .chain(v.pools.keys())
            .chain(v.vmns.keys())
            .chain(v.vm_pools.keys())
            .copied()
            .collect()
    }

    fn apply(&mut self, e: &Edit) {
        match *e {
            Edit::RenameLogicalNetwork(i) => {
                if let Some(id) = nth(&self.fabric.logical_networks, i) {
                    let ln = self.fabric.logical_networks.get_mut(&id).unwrap();
                    ln.name = format!("{} renamed {i}", ln.name);
                }
            }
            Edit::SetPoolDns(i, d) => {
                if let Some(id) = nth(&self.fabric.ip_pools, i) {
                    let pool = self.fabric.ip_pools.get_mut(&id).unwrap();
                    let dns = if pool.range_start.is_ipv4() {
                        format!("10.255.0.{d}")
                    } else {
                        format!("fd00:255::{d:x}")
                    };
                    pool.settings.dns_servers = vec![dns.parse().unwrap()];
                }
            }
            Edit::DeletePool(i) => {
                if let Some(id) = nth(&self.fabric.ip_pools, i) {
                    self.fabric
                        .apply_changes(&[FabricChange::Delete(ObjectKind::IpPool, id)]);
                }
            }
            Edit::DeleteVmNetwork(i) => {
                if let Some(id) = nth(&self.fabric.vm_networks, i) {
                    let pools: Vec<Id> = self
                        .fabric
                        .ip_pools
                        .values()
                        .filter(|p| {
                            matches!(p.scope, PoolScope::VmSubnet { vm_network, .. } if vm_network == id)
                        })
                        .map(|p| p.id)
                        .collect();
                    let mut changes: Vec<FabricChange> = pools
                        .into_iter()
                        .map(|p| FabricChange::Delete(ObjectKind::IpPool, p))
                        .collect();
                    changes.push(FabricChange::Delete(ObjectKind::VmNetwork, id));
                    self.fabric.apply_changes(&changes);
                }
            }
            Edit::AddLogicalNetwork(k) => {
                let id = uuid::Uuid::from_u128(0xadd0_0000 + k as u128);
                if self.fabric.logical_networks.contains_key(&id) {
                    return;
                }
                let group = self.fabric.root_host_group().unwrap().id;
                let ln = LogicalNetwork {
                    id,
                    name: format!("Added {k}"),
                    description: String::new(),
                    isolation: LogicalNetworkIsolation::OneConnected,
                };
                let site = NetworkSite {
                    id: uuid::Uuid::from_u128(0x5173_0000 + k as u128),
                    name: format!("Added {k}_0"),
                    logical_network: id,
                    host_groups: [group].into_iter().collect(),
                    subnets: vec![SubnetVlan {
                        subnet: format!("172.31.{k}.0/24").parse().unwrap(),
                        vlan: 0,
                        secondary_vlan: None,
                    }],
                };
                self.fabric.apply_changes(&[
                    FabricChange::Put(FabricObject::LogicalNetwork(ln)),
                    FabricChange::Put(FabricObject::NetworkSite(site)),
                ]);
            }
            Edit::SetRangeDns(i, d) => {
                if !self.ipam.ranges.is_empty() {
                    // An address of the range's family: the console refuses others (and says
                    // so in the job) until the IPAM administrator corrects them.
                    let n = self.ipam.ranges.len();
                    let range = &mut self.ipam.ranges[i % n];
                    let dns = if range.start.is_ipv4() {
                        format!("10.254.0.{d}")
                    } else {
                        format!("fd00:254::{d:x}")
                    };
                    range.settings.dns_servers = vec![dns.parse().unwrap()];
                }
            }
            Edit::SetSubnetVlan(i, v) => {
                // Provider subnets only: VM subnets are put back, which is tested elsewhere.
                let provider: Vec<usize> = (0..self.ipam.subnets.len())
                    .filter(|&j| self.ipam.subnets[j].network_type == "Provider")
                    .collect();
                if !provider.is_empty() {
                    let j = provider[i % provider.len()];
                    self.ipam.subnets[j].vlan = 3000 + v;
                }
            }
            Edit::DeleteRange(i) => {
                if !self.ipam.ranges.is_empty() {
                    let n = self.ipam.ranges.len();
                    self.ipam.ranges.remove(i % n);
                }
            }
            Edit::AddHandMadeSpace(k) => {
                let id = format!("hand-{k}");
                if !self.ipam.spaces.iter().any(|s| s.id == id) {
                    self.ipam.spaces.push(AddressSpace::new(
                        id.as_str(),
                        format!("Hand made {k}"),
                        AddressSpaceKind::Provider,
                    ));
                }
            }
        }
    }
}

/// The IPAM objects an operation writes or deletes carry console identities: which?
fn op_identity(op: &IpamOp, before: &IpamSnapshot) -> Option<Id> {
    match op {
        IpamOp::CreateSpace(s) | IpamOp::UpdateSpace(s) => s.vmm_id,
        IpamOp::CreateSubnet(s) | IpamOp::UpdateSubnet(s) => s.vmm_id,
        IpamOp::CreateRange(r) | IpamOp::UpdateRange(r) => r.vmm_id,
        IpamOp::DeleteSpace(id) => before.spaces.iter().find(|x| &x.id == id)?.vmm_id,
        IpamOp::DeleteSubnet(id) => before.subnets.iter().find(|x| &x.id == id)?.vmm_id,
        IpamOp::DeleteRange(id) => before.ranges.iter().find(|x| &x.id == id)?.vmm_id,
    }
}

fn console_ids(f: &Fabric) -> BTreeSet<Id> {
    f.logical_networks
        .keys()
        .chain(f.network_sites.keys())
        .chain(f.ip_pools.keys())
        .chain(f.vm_networks.keys())
        .copied()
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn syncs_converge_stay_in_scope_and_delete_only_what_was_deleted(
        size in 20usize..160,
        seed in any::<u64>(),
        scope_mask in any::<u8>(),
        console_edits in prop::collection::vec(edit(), 0..6),
        ipam_edits in prop::collection::vec(edit(), 0..6),
    ) {
        let mut w = World::new(size, seed, scope_mask);
        w.sync();
        prop_assert!(w.plan().is_noop(), "the first sync leaves work: {:?}", w.plan().summary);

        // Edits on either side: console edits only touch the fabric, IPAM edits the server.
        let console_edits: Vec<Edit> = console_edits
            .into_iter()
            .filter(|e| !matches!(e, Edit::SetRangeDns(..) | Edit::SetSubnetVlan(..) | Edit::DeleteRange(_) | Edit::AddHandMadeSpace(_)))
            .collect();
        let ipam_edits: Vec<Edit> = ipam_edits
            .into_iter()
            .filter(|e| matches!(e, Edit::SetRangeDns(..) | Edit::SetSubnetVlan(..) | Edit::DeleteRange(_) | Edit::AddHandMadeSpace(_)))
            .collect();
        for e in &console_edits {
            w.apply(e);
        }
        for e in &ipam_edits {
            w.apply(e);
        }
        // Only edits that leave the console valid are an operator's (the store refuses others).
        prop_assume!(crate::fabric::validate::validate_fabric(&w.fabric).is_empty());

        let in_scope_before = w.in_scope();
        let base_ids: BTreeSet<Id> = {
            let b = &w.base.values;
            b.lns.keys().chain(b.sites.keys()).chain(b.pools.keys()).chain(b.vmns.keys()).chain(b.vm_pools.keys()).copied().collect()
        };
        let fabric_before = w.fabric.clone();
        let ipam_before = w.ipam.clone();
        let p = w.sync();

        // Nothing outside the scope is written or deleted, on either side.
        for op in &p.ipam_ops {
            if let Some(id) = op_identity(op, &ipam_before) {
                prop_assert!(
                    in_scope_before.contains(&id) || base_ids.contains(&id),
                    "an IPAM operation on an object outside the scope: {op:?}"
                );
            }
        }
        for ch in &p.console_changes {
            let (kind, id) = match ch {
                FabricChange::Put(o) => (o.kind(), o.id()),
                FabricChange::Delete(k, id) => (*k, *id),
            };
            let existed = console_ids(&fabric_before).contains(&id);
            prop_assert!(
                !existed || in_scope_before.contains(&id),
                "a console change on an object outside the scope: {kind:?} {id}"
            );
        }
        // Nothing is deleted on one side unless something was deleted on the other.
        if !ipam_edits.iter().any(Edit::deletes_in_ipam) {
            prop_assert!(
                !p.console_changes.iter().any(|c| matches!(c, FabricChange::Delete(..))),
                "a console deletion without an IPAM deletion: {:?}", p.console_changes
            );
        }
        if !console_edits.iter().any(Edit::deletes_in_console) {
            prop_assert!(
                !p.ipam_ops.iter().any(|o| o.verb() == OpVerb::Delete),
                "an IPAM deletion without a console deletion: {:?}", p.ipam_ops
            );
        }
        // The console stays valid, the sync converges, and a second sync changes nothing.
        let errors = crate::fabric::validate::validate_fabric(&w.fabric);
        prop_assert!(errors.is_empty(), "the sync left the console invalid: {errors:?}");
        let again = w.plan();
        prop_assert!(again.is_noop(), "a sync left work: {:?}", again.summary);
        let (fabric, ipam) = (w.fabric.clone(), w.ipam.clone());
        w.sync();
        prop_assert_eq!(&w.fabric, &fabric);
        prop_assert_eq!(&w.ipam, &ipam);
    }
}

/// Edits for the incremental planner's test: the ones above and some that move objects between
/// parts or break links.
#[derive(Debug, Clone)]
enum WideEdit {
    Plain(Edit),
    /// An IPAM administrator renames a provider space's VMM Logical Network: to another console
    /// network's name (even) or a new name (odd).
    RenameSpace(usize, usize),
    ClearSpaceName(usize),
    /// An IPAM administrator deletes a subnet with its ranges.
    DeleteSubnet(usize),
    /// An operator moves a VM network to another logical network.
    MoveVmNetwork(usize, usize),
}

impl WideEdit {
    fn on_ipam(&self) -> bool {
        match self {
            WideEdit::Plain(e) => matches!(
                e,
                Edit::SetRangeDns(..)
                    | Edit::SetSubnetVlan(..)
                    | Edit::DeleteRange(_)
                    | Edit::AddHandMadeSpace(_)
            ),
            WideEdit::MoveVmNetwork(..) => false,
            _ => true,
        }
    }
}

fn wide_edit() -> impl Strategy<Value = WideEdit> {
    prop_oneof![
        4 => edit().prop_map(WideEdit::Plain),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(i, k)| WideEdit::RenameSpace(i, k)),
        1 => any::<usize>().prop_map(WideEdit::ClearSpaceName),
        1 => any::<usize>().prop_map(WideEdit::DeleteSubnet),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(i, k)| WideEdit::MoveVmNetwork(i, k)),
    ]
}

impl World {
    fn apply_wide(&mut self, e: &WideEdit) {
        let provider: Vec<usize> = (0..self.ipam.spaces.len())
            .filter(|&j| self.ipam.spaces[j].kind == AddressSpaceKind::Provider)
            .collect();
        match *e {
            WideEdit::Plain(ref e) => self.apply(e),
            WideEdit::RenameSpace(i, k) if !provider.is_empty() => {
                let name = if k % 2 == 0 {
                    nth(&self.fabric.logical_networks, k)
                        .map(|id| self.fabric.logical_networks[&id].name.clone())
                } else {
                    Some(format!("Space {k}"))
                };
                self.ipam.spaces[provider[i % provider.len()]].vmm_logical_network = name;
            }
            WideEdit::ClearSpaceName(i) if !provider.is_empty() => {
                self.ipam.spaces[provider[i % provider.len()]].vmm_logical_network = None;
            }
            WideEdit::DeleteSubnet(i) if !self.ipam.subnets.is_empty() => {
                let gone = self.ipam.subnets.remove(i % self.ipam.subnets.len()).id;
                self.ipam.ranges.retain(|r| r.subnet != gone);
            }
            WideEdit::MoveVmNetwork(i, k) => {
                if let (Some(v), Some(ln)) = (
                    nth(&self.fabric.vm_networks, i),
                    nth(&self.fabric.logical_networks, k),
                ) {
                    self.fabric.vm_networks.get_mut(&v).unwrap().logical_network = ln;
                }
            }
            _ => {}
        }
    }
}

/// What the store's change log would list between two fabrics.
fn console_touched(before: &Fabric, after: &Fabric) -> Vec<(ObjectKind, Id)> {
    fn diff<V: PartialEq>(
        kind: ObjectKind,
        a: &std::collections::BTreeMap<Id, V>,
        b: &std::collections::BTreeMap<Id, V>,
        out: &mut Vec<(ObjectKind, Id)>,
    ) {
        for id in a.keys().chain(b.keys()).collect::<BTreeSet<_>>() {
            if a.get(id) != b.get(id) {
                out.push((kind, *id));
            }
        }
    }
    let mut out = Vec::new();
    diff(
        ObjectKind::HostGroup,
        &before.host_groups,
        &after.host_groups,
        &mut out,
    );
    diff(
        ObjectKind::LogicalNetwork,
        &before.logical_networks,
        &after.logical_networks,
        &mut out,
    );
    diff(
        ObjectKind::NetworkSite,
        &before.network_sites,
        &after.network_sites,
        &mut out,
    );
    diff(
        ObjectKind::IpPool,
        &before.ip_pools,
        &after.ip_pools,
        &mut out,
    );
    diff(
        ObjectKind::VmNetwork,
        &before.vm_networks,
        &after.vm_networks,
        &mut out,
    );
    out
}

/// What the server's change feed would list between two snapshots, and the touched objects as
/// they were.
fn ipam_touched(
    before: &IpamSnapshot,
    after: &IpamSnapshot,
) -> (Vec<(IpamKind, IpamId)>, IpamSnapshot) {
    fn diff<T: PartialEq + Clone>(
        kind: IpamKind,
        a: &[T],
        b: &[T],
        id: impl Fn(&T) -> &IpamId,
        out: &mut Vec<(IpamKind, IpamId)>,
        old: &mut Vec<T>,
    ) {
        let bm: std::collections::HashMap<&IpamId, &T> = b.iter().map(|x| (id(x), x)).collect();
        let am: std::collections::HashMap<&IpamId, &T> = a.iter().map(|x| (id(x), x)).collect();
        for x in a {
            if bm.get(id(x)) != Some(&x) {
                out.push((kind, id(x).clone()));
                old.push(x.clone());
            }
        }
        for x in b {
            if !am.contains_key(id(x)) {
                out.push((kind, id(x).clone()));
            }
        }
    }
    let mut out = Vec::new();
    let mut old = IpamSnapshot::default();
    diff(
        IpamKind::AddressSpace,
        &before.spaces,
        &after.spaces,
        |s| &s.id,
        &mut out,
        &mut old.spaces,
    );
    diff(
        IpamKind::Subnet,
        &before.subnets,
        &after.subnets,
        |s| &s.id,
        &mut out,
        &mut old.subnets,
    );
    diff(
        IpamKind::Range,
        &before.ranges,
        &after.ranges,
        |r| &r.id,
        &mut out,
        &mut old.ranges,
    );
    (out, old)
}

/// A plan's operations as sorted text, ids the plan made up named by what they create.
fn canonical_ops(ops: &[IpamOp]) -> Vec<String> {
    let mut names: Vec<(String, String)> = Vec::new();
    for op in ops {
        match op {
            IpamOp::CreateSpace(s) => names.push((
                s.id.to_string(),
                format!("new-space:{:?}:{}", s.vmm_id, s.name),
            )),
            IpamOp::CreateSubnet(s) => names.push((
                s.id.to_string(),
                format!("new-subnet:{:?}:{}", s.vmm_id, s.network),
            )),
            IpamOp::CreateRange(r) => names.push((
                r.id.to_string(),
                format!("new-range:{:?}:{}", r.vmm_id, r.start),
            )),
            _ => {}
        }
    }
    let mut out: Vec<String> = ops
        .iter()
        .map(|op| {
            let mut text = serde_json::to_string(op).unwrap();
            for (id, name) in &names {
                text = text.replace(id.as_str(), name);
            }
            text
        })
        .collect();
    out.sort();
    out
}

fn sorted_debug<T: std::fmt::Debug>(items: &[T]) -> Vec<String> {
    let mut v: Vec<String> = items.iter().map(|x| format!("{x:?}")).collect();
    v.sort();
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Planning only the parts the edits touched gives the plan of the whole, and recording its
    /// result gives the base a full sync records.
    #[test]
    fn planning_the_touched_parts_gives_the_whole_plan(
        size in 20usize..160,
        seed in any::<u64>(),
        scope_mask in any::<u8>(),
        edits in prop::collection::vec(wide_edit(), 0..6),
    ) {
        let mut w = World::new(size, seed, scope_mask);
        w.sync();
        prop_assume!(w.plan().is_noop());
        let (fabric0, ipam0) = (w.fabric.clone(), w.ipam.clone());
        for e in &edits {
            if e.on_ipam() {
                w.apply_wide(e);
            }
        }
        for e in &edits {
            if !e.on_ipam() {
                w.apply_wide(e);
            }
        }
        prop_assume!(crate::fabric::validate::validate_fabric(&w.fabric).is_empty());

        let (ipam_ids, ipam_before) = ipam_touched(&ipam0, &w.ipam);
        let touched = Touched {
            console: console_touched(&fabric0, &w.fabric),
            ipam: ipam_ids,
            ipam_before,
        };
        let input = PlanInput {
            fabric: &w.fabric,
            service: &w.service,
            ipam: &w.ipam,
            ipam_complete: true,
            base: &w.base,
            resolutions: &Default::default(),
        };
        let whole = plan(&input);
        let mut parts = Parts::touched(&w.fabric, &w.ipam, &w.base, &touched)
            .expect("no host group or service was edited");
        if touched.console.is_empty() && touched.ipam.is_empty() {
            prop_assert!(parts.is_empty());
        }
        let part = plan_parts(&input, w.base.clone(), &parts);
        prop_assert_eq!(canonical_ops(&whole.ipam_ops), canonical_ops(&part.plan.ipam_ops));
        prop_assert_eq!(sorted_debug(&whole.console_changes), sorted_debug(&part.plan.console_changes));
        prop_assert_eq!(sorted_debug(&whole.conflicts), sorted_debug(&part.plan.conflicts));
        prop_assert_eq!(sorted_debug(&whole.orphans), sorted_debug(&part.plan.orphans));
        prop_assert_eq!(&whole.summary, &part.plan.summary);

        // Both sides after the whole plan: the base of the parts joined with the rest is the
        // base a full sync records.
        let base = w.base.clone();
        crate::sync::apply::apply_to_mirror(&mut w.ipam, &whole.ipam_ops);
        w.fabric.apply_changes(&whole.console_changes);
        let full = agreed_base(&w.fabric, &w.service, &w.ipam, &base);
        parts.add_created(&whole.ipam_ops, &whole.console_changes);
        let joined = join_base(part.rest, agreed_part(&parts, &w.fabric, &w.service, &w.ipam, &part.inside));
        prop_assert_eq!(full, joined);
    }
}
