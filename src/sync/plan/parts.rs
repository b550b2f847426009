//! Incremental planning. A service's objects fall apart into independent parts, one per logical
//! network: the network with its sites, subnets, pools and VM networks, the base entries about
//! them, and the IPAM objects linked to them or named after them. A part is planned from its own
//! objects only, so when both sides agreed and then a few objects changed, planning the parts
//! those objects belong to gives the whole plan.
//!
//! Which part an object belongs to can change with the edit (a VM network moved to another
//! logical network, an IPAM space renamed after another one): every object lists each part it
//! may belong to, before and after, and parts that share an object are planned together.

use std::collections::BTreeMap;

use rustc_hash::{FxHashMap, FxHashSet};

use super::derived_id;
use crate::fabric::model::{Fabric, FabricChange, FabricObject, Id, ObjectKind, PoolScope};
use crate::ipam::model::{AddressSpaceKind, IpamId, IpamKind, IpamOp, IpamSnapshot};
use crate::sync::normal::{BaseState, IpamIds, Normalized};

/// What changed on either side since both agreed.
#[derive(Debug, Clone, Default)]
pub struct Touched {
    /// Console objects written or deleted (from the fabric database's change log).
    pub console: Vec<(ObjectKind, Id)>,
    /// IPAM objects written or deleted (from the server's change feed).
    pub ipam: Vec<(IpamKind, IpamId)>,
    /// The touched IPAM objects as they were before (those the mirror held).
    pub ipam_before: IpamSnapshot,
}

/// A node of the grouping: a console object that can belong to a part (a logical network is
/// a part's key) or an IPAM object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Node<'a> {
    Ln(Id),
    Site(Id),
    Pool(Id),
    Vmn(Id),
    Ipam(IpamKind, &'a str),
}

/// Union-find over nodes: two nodes in one set belong to the same part.
#[derive(Default)]
struct Groups<'a> {
    index: FxHashMap<Node<'a>, u32>,
    nodes: Vec<Node<'a>>,
    parent: Vec<u32>,
}

impl<'a> Groups<'a> {
    fn with_capacity(n: usize) -> Self {
        Groups {
            index: FxHashMap::with_capacity_and_hasher(n, Default::default()),
            nodes: Vec::with_capacity(n),
            parent: Vec::with_capacity(n),
        }
    }

    fn node(&mut self, n: Node<'a>) -> u32 {
        let next = self.parent.len() as u32;
        let i = *self.index.entry(n).or_insert(next);
        if i == next {
            self.parent.push(next);
            self.nodes.push(n);
        }
        i
    }

    fn find(&mut self, mut i: u32) -> u32 {
        while self.parent[i as usize] != i {
            let grand = self.parent[self.parent[i as usize] as usize];
            self.parent[i as usize] = grand;
            i = grand;
        }
        i
    }

    fn join(&mut self, a: u32, b: u32) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.parent[ra.max(rb) as usize] = ra.min(rb);
        }
    }

    /// Puts `first` and all `others` in one set.
    fn join_all(&mut self, first: Node<'a>, others: impl IntoIterator<Item = Node<'a>>) {
        let f = self.node(first);
        for n in others {
            let i = self.node(n);
            self.join(f, i);
        }
    }
}

fn fold(s: &str) -> String {
    s.trim().to_lowercase()
}

/// The node a touched console object is; `None` when its change may touch every part (host
/// groups, network services), and no node for a Run As account (it touches none).
fn console_node(kind: ObjectKind, id: Id) -> Option<Option<Node<'static>>> {
    Some(match kind {
        ObjectKind::LogicalNetwork => Some(Node::Ln(id)),
        ObjectKind::NetworkSite => Some(Node::Site(id)),
        ObjectKind::IpPool => Some(Node::Pool(id)),
        ObjectKind::VmNetwork => Some(Node::Vmn(id)),
        ObjectKind::RunAsAccount => None,
        ObjectKind::HostGroup | ObjectKind::NetworkService | ObjectKind::Subnet => return None,
    })
}

/// Joins every object with what it belongs to, now and as last agreed: one hash lookup per
/// link, whatever the size of the fabric.
struct Places<'a> {
    fabric: &'a Fabric,
    base: &'a BaseState,
    /// Logical networks and VM networks by folded name (every one with that name).
    ln_by_name: FxHashMap<String, Vec<Id>>,
    vmn_by_name: FxHashMap<String, Vec<Id>>,
}

impl<'a> Places<'a> {
    fn new(fabric: &'a Fabric, base: &'a BaseState) -> Self {
        let mut ln_by_name: FxHashMap<String, Vec<Id>> = FxHashMap::default();
        for l in fabric.logical_networks.values() {
            ln_by_name.entry(fold(&l.name)).or_default().push(l.id);
        }
        let mut vmn_by_name: FxHashMap<String, Vec<Id>> = FxHashMap::default();
        for v in fabric.vm_networks.values() {
            vmn_by_name.entry(fold(&v.name)).or_default().push(v.id);
        }
        Places {
            fabric,
            base,
            ln_by_name,
            vmn_by_name,
        }
    }

    /// Every place an IPAM object of `snap` may belong to.
    fn place_ipam(&self, snap: &'a IpamSnapshot, g: &mut Groups<'a>) {
        for s in &snap.spaces {
            let me = Node::Ipam(IpamKind::AddressSpace, s.id.as_str());
            match s.kind {
                AddressSpaceKind::Provider => {
                    let mut with: Vec<Node> = s.vmm_id.map(Node::Ln).into_iter().collect();
                    let name = s.vmm_logical_network.as_deref().map(str::trim);
                    if let Some(name) = name.filter(|n| !n.is_empty()) {
                        if let Some(lns) = self.ln_by_name.get(&fold(name)) {
                            with.extend(lns.iter().copied().map(Node::Ln));
                        }
                        with.push(Node::Ln(derived_id(&format!("space:{}", s.id))));
                    }
                    g.join_all(me, with);
                }
                AddressSpaceKind::Customer => {
                    let mut with: Vec<Node> = s.vmm_id.map(Node::Vmn).into_iter().collect();
                    if let Some(n) = s.vm_network.as_deref()
                        && let Some(v) = self.vmn_by_name.get(&fold(n))
                    {
                        with.extend(v.iter().copied().map(Node::Vmn));
                    }
                    with.extend(
                        (s.provider_space.as_ref())
                            .map(|p| Node::Ipam(IpamKind::AddressSpace, p.as_str())),
                    );
                    g.join_all(me, with);
                }
            }
        }
        for sn in &snap.subnets {
            let me = Node::Ipam(IpamKind::Subnet, sn.id.as_str());
            let space = Node::Ipam(IpamKind::AddressSpace, sn.address_space.as_str());
            g.join_all(me, std::iter::once(space).chain(sn.vmm_id.map(Node::Site)));
        }
        for r in &snap.ranges {
            let me = Node::Ipam(IpamKind::Range, r.id.as_str());
            let subnet = Node::Ipam(IpamKind::Subnet, r.subnet.as_str());
            g.join_all(me, std::iter::once(subnet).chain(r.vmm_id.map(Node::Pool)));
        }
    }

    /// Every place a console object or a base entry may belong to.
    fn place_console_and_base(&self, g: &mut Groups<'a>) {
        let f = self.fabric;
        for l in f.logical_networks.keys() {
            g.node(Node::Ln(*l));
        }
        for s in f.network_sites.values() {
            g.join_all(Node::Site(s.id), [Node::Ln(s.logical_network)]);
        }
        for p in f.ip_pools.values() {
            let owner = match &p.scope {
                PoolScope::Site { site, .. } => Node::Site(*site),
                PoolScope::VmSubnet { vm_network, .. } => Node::Vmn(*vm_network),
            };
            g.join_all(Node::Pool(p.id), [owner]);
        }
        for v in f.vm_networks.values() {
            g.join_all(Node::Vmn(v.id), [Node::Ln(v.logical_network)]);
        }
        let b = &self.base.values;
        for l in b.lns.keys() {
            g.node(Node::Ln(*l));
        }
        for (k, v) in &b.sites {
            g.join_all(Node::Site(*k), [Node::Ln(v.ln)]);
        }
        for (ln, _) in b.subnets.keys() {
            g.node(Node::Ln(*ln));
        }
        for (k, v) in &b.pools {
            g.join_all(Node::Pool(*k), [Node::Ln(v.ln)]);
        }
        // A pool on a VM subnet names its VM network where a site pool names its network.
        for (k, v) in &b.vm_pools {
            g.join_all(Node::Pool(*k), [Node::Vmn(v.ln)]);
        }
        for (k, v) in &b.vmns {
            g.join_all(Node::Vmn(*k), [Node::Ln(v.ln)]);
        }
        let ids = &self.base.ids;
        for (ln, id) in &ids.spaces {
            g.join_all(
                Node::Ipam(IpamKind::AddressSpace, id.as_str()),
                [Node::Ln(*ln)],
            );
        }
        for ((ln, _), id) in &ids.subnets {
            g.join_all(Node::Ipam(IpamKind::Subnet, id.as_str()), [Node::Ln(*ln)]);
        }
        for (pool, id) in &ids.ranges {
            g.join_all(
                Node::Ipam(IpamKind::Range, id.as_str()),
                [Node::Pool(*pool)],
            );
        }
        for (vmn, id) in &ids.vmn_spaces {
            g.join_all(
                Node::Ipam(IpamKind::AddressSpace, id.as_str()),
                [Node::Vmn(*vmn)],
            );
        }
        for ((vmn, _), id) in &ids.vmn_subnets {
            g.join_all(Node::Ipam(IpamKind::Subnet, id.as_str()), [Node::Vmn(*vmn)]);
        }
    }
}

/// The parts to plan: the console and IPAM objects that belong to them.
#[derive(Debug, Default)]
pub struct Parts {
    lns: FxHashSet<Id>,
    sites: FxHashSet<Id>,
    pools: FxHashSet<Id>,
    vmns: FxHashSet<Id>,
    spaces: FxHashSet<IpamId>,
    subnets: FxHashSet<IpamId>,
    ranges: FxHashSet<IpamId>,
}

impl Parts {
    /// The parts `touched` reaches, or `None` when a change may reach every part (a host group
    /// or a network service changed): then plan everything.
    pub fn touched(
        fabric: &Fabric,
        ipam: &IpamSnapshot,
        base: &BaseState,
        touched: &Touched,
    ) -> Option<Parts> {
        let mut seeds: Vec<Node> = Vec::new();
        for (kind, id) in &touched.console {
            seeds.extend(console_node(*kind, *id)?);
        }
        seeds.extend(
            touched
                .ipam
                .iter()
                .map(|(k, id)| Node::Ipam(*k, id.as_str())),
        );
        if seeds.is_empty() {
            return Some(Parts::default());
        }
        let places = Places::new(fabric, base);
        let mut groups =
            Groups::with_capacity(fabric.object_count() + ipam.object_count() + touched.ipam.len());
        places.place_console_and_base(&mut groups);
        places.place_ipam(ipam, &mut groups);
        places.place_ipam(&touched.ipam_before, &mut groups);
        let mut dirty: FxHashSet<u32> = FxHashSet::default();
        for s in seeds {
            let i = groups.node(s);
            dirty.insert(groups.find(i));
        }
        let mut parts = Parts::default();
        for i in 0..groups.nodes.len() as u32 {
            if !dirty.contains(&groups.find(i)) {
                continue;
            }
            match groups.nodes[i as usize] {
                Node::Ln(id) => parts.lns.insert(id),
                Node::Site(id) => parts.sites.insert(id),
                Node::Pool(id) => parts.pools.insert(id),
                Node::Vmn(id) => parts.vmns.insert(id),
                Node::Ipam(kind, id) => parts.set_of(kind).insert(IpamId::from(id)),
            };
        }
        Some(parts)
    }

    fn set_of(&mut self, kind: IpamKind) -> &mut FxHashSet<IpamId> {
        match kind {
            IpamKind::AddressSpace => &mut self.spaces,
            IpamKind::Subnet => &mut self.subnets,
            IpamKind::Range => &mut self.ranges,
        }
    }

    /// Nothing was touched.
    pub fn is_empty(&self) -> bool {
        self.lns.is_empty()
            && self.sites.is_empty()
            && self.pools.is_empty()
            && self.vmns.is_empty()
            && self.spaces.is_empty()
            && self.subnets.is_empty()
            && self.ranges.is_empty()
    }

    /// Adds what a sync of these parts created on either side, so that recording its result
    /// sees them.
    pub fn add_created(&mut self, ipam_ops: &[IpamOp], console: &[FabricChange]) {
        for op in ipam_ops {
            match op {
                IpamOp::CreateSpace(s) => self.spaces.insert(s.id.clone()),
                IpamOp::CreateSubnet(s) => self.subnets.insert(s.id.clone()),
                IpamOp::CreateRange(r) => self.ranges.insert(r.id.clone()),
                _ => false,
            };
        }
        for c in console {
            match c {
                FabricChange::Put(FabricObject::LogicalNetwork(l)) => self.lns.insert(l.id),
                FabricChange::Put(FabricObject::NetworkSite(s)) => self.sites.insert(s.id),
                FabricChange::Put(FabricObject::IpPool(p)) => self.pools.insert(p.id),
                FabricChange::Put(FabricObject::VmNetwork(v)) => self.vmns.insert(v.id),
                _ => false,
            };
        }
    }

    /// The logical networks of the touched parts that the fabric holds.
    pub fn logical_network_count(&self, fabric: &Fabric) -> usize {
        self.lns
            .iter()
            .filter(|l| fabric.logical_networks.contains_key(*l))
            .count()
    }

    /// The fabric restricted to the touched parts (host groups, Run As accounts and network
    /// services whole).
    pub fn fabric(&self, f: &Fabric) -> Fabric {
        let mut out = Fabric {
            host_groups: f.host_groups.clone(),
            run_as_accounts: f.run_as_accounts.clone(),
            network_services: f.network_services.clone(),
            ..Fabric::default()
        };
        let pick = |set: &FxHashSet<Id>, id: &Id| set.contains(id);
        macro_rules! restrict {
            ($map:ident, $set:ident) => {
                out.$map = (f.$map.iter())
                    .filter(|(id, _)| pick(&self.$set, id))
                    .map(|(id, x)| (*id, x.clone()))
                    .collect();
            };
        }
        restrict!(logical_networks, lns);
        restrict!(network_sites, sites);
        restrict!(ip_pools, pools);
        restrict!(vm_networks, vmns);
        out
    }

    /// The IPAM side restricted to the touched parts. Objects no part claims (a space without a
    /// VMM Logical Network name, say) are never planned and are left out.
    pub fn ipam(&self, snap: &IpamSnapshot) -> IpamSnapshot {
        IpamSnapshot {
            cursor: snap.cursor.clone(),
            spaces: (snap.spaces.iter())
                .filter(|s| self.spaces.contains(s.id.as_str()))
                .cloned()
                .collect(),
            subnets: (snap.subnets.iter())
                .filter(|s| self.subnets.contains(s.id.as_str()))
                .cloned()
                .collect(),
            ranges: (snap.ranges.iter())
                .filter(|r| self.ranges.contains(r.id.as_str()))
                .cloned()
                .collect(),
        }
    }

    /// Takes the entries of the touched parts out of `base`, which keeps the rest. An entry
    /// belongs where the grouping put it; one no part claims stays with the rest.
    pub fn split_base(&self, base: &mut BaseState) -> BaseState {
        let mut inside = BaseState::default();
        macro_rules! take {
            ($field:ident . $map:ident, |$k:ident, $v:ident| $inside:expr) => {{
                let keys: Vec<_> = (base.$field.$map.iter())
                    .filter(|entry| {
                        #[allow(unused_variables)]
                        let ($k, $v) = *entry;
                        $inside
                    })
                    .map(|(k, _)| *k)
                    .collect();
                for k in keys {
                    if let Some(v) = base.$field.$map.remove(&k) {
                        inside.$field.$map.insert(k, v);
                    }
                }
            }};
        }
        take!(values.lns, |k, v| self.lns.contains(k));
        take!(values.sites, |k, v| self.sites.contains(k));
        take!(values.subnets, |k, v| self.lns.contains(&k.0));
        take!(values.pools, |k, v| self.pools.contains(k));
        take!(values.vm_pools, |k, v| self.pools.contains(k));
        take!(values.vmns, |k, v| self.vmns.contains(k));
        take!(ids.spaces, |k, v| self.lns.contains(k));
        take!(ids.subnets, |k, v| self.lns.contains(&k.0));
        take!(ids.ranges, |k, v| self.pools.contains(k));
        take!(ids.vmn_spaces, |k, v| self.vmns.contains(k));
        take!(ids.vmn_subnets, |k, v| self.vmns.contains(&k.0));
        inside
    }
}

/// `rest` (the untouched parts of a base) joined with the new base of the touched parts.
pub fn join_base(mut rest: BaseState, part: BaseState) -> BaseState {
    fn extend<K: Ord, V>(into: &mut BTreeMap<K, V>, from: BTreeMap<K, V>) {
        into.extend(from);
    }
    let Normalized {
        lns,
        sites,
        subnets,
        pools,
        vmns,
        vm_pools,
    } = part.values;
    let v = &mut rest.values;
    extend(&mut v.lns, lns);
    extend(&mut v.sites, sites);
    extend(&mut v.subnets, subnets);
    extend(&mut v.pools, pools);
    extend(&mut v.vmns, vmns);
    extend(&mut v.vm_pools, vm_pools);
    let IpamIds {
        spaces,
        subnets,
        ranges,
        vmn_spaces,
        vmn_subnets,
    } = part.ids;
    let i = &mut rest.ids;
    extend(&mut i.spaces, spaces);
    extend(&mut i.subnets, subnets);
    extend(&mut i.ranges, ranges);
    extend(&mut i.vmn_spaces, vmn_spaces);
    extend(&mut i.vmn_subnets, vmn_subnets);
    rest
}
