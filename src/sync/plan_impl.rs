//! The planner itself: projections of both sides, per-field three-way merge, the seed's
//! deletion rules, and the operations that bring each side to its target.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Debug;

use ipnet::IpNet;
use uuid::Uuid;

use super::normal::*;
use super::plan::{Conflict, Resolution, Side, SyncPlan};
use crate::fabric::model::{
    Fabric, FabricChange, FabricObject, HostGroupScope, Id, IpPool, LogicalNetwork,
    LogicalNetworkIsolation, NetworkService, NetworkSite, ObjectKind, PoolScope, SubnetVlan,
};
use crate::ipam::model::{
    AddressSpace, AddressSpaceKind, IpRange, IpamOp, IpamSnapshot, IpamSubnet,
};

/// Namespace for ids derived from IPAM objects, so a preview and the following sync agree.
const DERIVED_IDS: Uuid = Uuid::from_u128(0x6f1c_2d7e_8a94_4b1f_9c3e_5d20_71a8_e44b);

pub fn derived_id(what: &str) -> Id {
    Uuid::new_v5(&DERIVED_IDS, what.as_bytes())
}

/// Everything the planner reads.
pub struct PlanInput<'a> {
    pub fabric: &'a Fabric,
    pub service: &'a NetworkService,
    pub ipam: &'a IpamSnapshot,
    /// False when the IPAM side could not be read completely: then nothing is deleted.
    pub ipam_complete: bool,
    pub base: &'a BaseState,
    pub resolutions: &'a BTreeMap<String, Resolution>,
}

/// The console side in the service's scope.
pub struct ConsoleView {
    pub values: Normalized,
    /// Logical networks that have sites outside the scope: never deleted by a sync of this service.
    pub partly_out_of_scope: BTreeSet<Id>,
}

pub fn project_console(fabric: &Fabric, scope: &HostGroupScope, base: &BaseState) -> ConsoleView {
    let mut v = Normalized::default();
    let mut partly_out = BTreeSet::new();
    let mut sites_in = BTreeSet::new();
    let in_scope_cache: HashMap<Id, bool> = match scope {
        HostGroupScope::All => HashMap::new(),
        HostGroupScope::Selected(sel) => {
            let mut m = HashMap::new();
            for g in fabric.host_groups.keys() {
                let inside = fabric
                    .host_group_ancestors(*g)
                    .iter()
                    .any(|a| sel.contains(a));
                m.insert(*g, inside);
            }
            m
        }
    };
    let site_in = |s: &NetworkSite| match scope {
        HostGroupScope::All => true,
        HostGroupScope::Selected(_) => s
            .host_groups
            .iter()
            .any(|g| in_scope_cache.get(g).copied().unwrap_or(false)),
    };
    for s in fabric.network_sites.values() {
        if site_in(s) {
            sites_in.insert(s.id);
            v.sites.insert(
                s.id,
                SiteVal {
                    ln: s.logical_network,
                    name: s.name.clone(),
                },
            );
            for sv in &s.subnets {
                v.subnets.insert(
                    (s.logical_network, sv.subnet.trunc()),
                    SubnetVal {
                        site: s.id,
                        vlan: sv.vlan,
                        secondary_vlan: sv.secondary_vlan,
                    },
                );
            }
        } else {
            partly_out.insert(s.logical_network);
        }
    }
    let lns_with_site_in: BTreeSet<Id> = v.sites.values().map(|s| s.ln).collect();
    for ln in fabric.logical_networks.values() {
        let has_site_in = lns_with_site_in.contains(&ln.id);
        if matches!(scope, HostGroupScope::All)
            || has_site_in
            || base.values.lns.contains_key(&ln.id)
        {
            v.lns.insert(
                ln.id,
                LnVal {
                    name: ln.name.clone(),
                    description: ln.description.clone(),
                },
            );
        }
    }
    for p in fabric.ip_pools.values() {
        if let PoolScope::Site { site, subnet } = &p.scope
            && sites_in.contains(site)
            && let Some(s) = fabric.network_sites.get(site)
        {
            v.pools
                .insert(p.id, pool_val(p, s.logical_network, *subnet));
        }
    }
    for vmn in fabric.vm_networks.values() {
        if v.lns.contains_key(&vmn.logical_network) {
            v.vmns.insert(
                vmn.id,
                VmnVal {
                    ln: vmn.logical_network,
                    name: vmn.name.clone(),
                    subnets: vmn.vm_subnets.iter().map(|n| n.trunc()).collect(),
                },
            );
        }
    }
    for p in fabric.ip_pools.values() {
        if let PoolScope::VmSubnet { vm_network, subnet } = &p.scope
            && v.vmns.contains_key(vm_network)
        {
            v.vm_pools.insert(p.id, pool_val(p, *vm_network, *subnet));
        }
    }
    ConsoleView {
        values: v,
        partly_out_of_scope: partly_out,
    }
}

fn pool_val(p: &IpPool, ln: Id, subnet: IpNet) -> PoolVal {
    PoolVal {
        ln,
        subnet: subnet.trunc(),
        name: p.name.clone(),
        description: p.description.clone(),
        start: p.range_start,
        end: p.range_end,
        reserved: p.reserved.clone(),
        vips: p.vips.clone(),
        gateways: normalize_gateways(&p.gateways),
        dns_servers: p.dns_servers.clone(),
        dns_suffix: normalize_suffix(&p.dns_suffix),
        dns_search_suffixes: p
            .dns_search_suffixes
            .iter()
            .map(|s| normalize_suffix(s))
            .collect(),
        wins_servers: p.wins_servers.clone(),
        netbios_enabled: p.netbios_enabled,
    }
}

fn range_val(r: &IpRange, ln: Id, subnet: IpNet) -> PoolVal {
    PoolVal {
        ln,
        subnet: subnet.trunc(),
        name: r.name.clone(),
        description: r.description.clone(),
        start: r.start,
        end: r.end,
        reserved: r.reserved.clone(),
        vips: r.vips.clone(),
        gateways: normalize_gateways(&r.gateways),
        dns_servers: r.dns_servers.clone(),
        dns_suffix: normalize_suffix(&r.dns_suffix),
        dns_search_suffixes: r
            .dns_search_suffixes
            .iter()
            .map(|s| normalize_suffix(s))
            .collect(),
        wins_servers: r.wins_servers.clone(),
        netbios_enabled: r.netbios_enabled,
    }
}

/// The IPAM side projected onto console identities.
#[derive(Debug, Default)]
pub struct IpamView {
    pub values: Normalized,
    pub ids: IpamIds,
    /// Logical networks whose VMM Logical Network link was deleted on the IPAM server
    /// (space gone, or its VMM Logical Network name cleared).
    pub broken_links: BTreeSet<Id>,
    /// Ids of IPAM objects that carry the console's identity (created or linked by it).
    pub linked: BTreeSet<String>,
}

fn fold(s: &str) -> String {
    s.trim().to_lowercase()
}

pub fn project_ipam(
    snap: &IpamSnapshot,
    console: &Fabric,
    console_view: &ConsoleView,
    base: &BaseState,
) -> IpamView {
    let mut out = IpamView::default();
    // Console LNs by folded name, for linking spaces created in IPAM by name.
    let ln_by_name: HashMap<String, Id> = console
        .logical_networks
        .values()
        .map(|l| (fold(&l.name), l.id))
        .collect();
    let base_space_owner: HashMap<&str, Id> = base
        .ids
        .spaces
        .iter()
        .map(|(ln, s)| (s.as_str(), *ln))
        .collect();
    let out_of_scope_ln = |ln: &Id| {
        console.logical_networks.contains_key(ln) && !console_view.values.lns.contains_key(ln)
    };

    // Provider spaces → logical networks.
    let mut space_ln: HashMap<&str, Id> = HashMap::new();
    let mut claimed: BTreeSet<Id> = BTreeSet::new();
    let mut providers: Vec<&AddressSpace> = snap
        .spaces
        .iter()
        .filter(|s| s.kind == AddressSpaceKind::Provider)
        .collect();
    // Linked spaces first, so a name match never steals a linked network.
    providers.sort_by_key(|s| {
        (
            s.vmm_id.is_none() && !base_space_owner.contains_key(s.id.as_str()),
            s.id.clone(),
        )
    });
    for s in providers {
        let name = s
            .vmm_logical_network
            .as_deref()
            .map(str::trim)
            .unwrap_or("");
        let ln = if let Some(id) = s.vmm_id {
            Some(id)
        } else if let Some(id) = base_space_owner.get(s.id.as_str()) {
            Some(*id)
        } else if name.is_empty() {
            None
        } else {
            match ln_by_name.get(&fold(name)) {
                Some(id) if !claimed.contains(id) => Some(*id),
                _ => Some(derived_id(&format!("space:{}", s.id))),
            }
        };
        let Some(ln) = ln else { continue };
        if claimed.contains(&ln) || out_of_scope_ln(&ln) {
            continue;
        }
        claimed.insert(ln);
        space_ln.insert(s.id.as_str(), ln);
        out.ids.spaces.insert(ln, s.id.clone());
        if s.vmm_id.is_some() {
            out.linked.insert(s.id.clone());
        }
        if name.is_empty() {
            out.broken_links.insert(ln);
        } else {
            out.values.lns.insert(
                ln,
                LnVal {
                    name: name.to_string(),
                    description: s.description.clone(),
                },
            );
        }
    }
    for ln in base.values.lns.keys() {
        if !out.ids.spaces.contains_key(ln) && !out_of_scope_ln(ln) {
            out.broken_links.insert(*ln);
        }
    }

    // Subnets → (logical network, cidr), sites by vmm_id or Network Site name.
    let console_sites = &console.network_sites;
    let mut subnet_key_by_id: HashMap<&str, (Id, IpNet)> = HashMap::new();
    // First pass: group by console site id.
    struct Seen<'a> {
        subnet: &'a IpamSubnet,
        ln: Id,
        cidr: IpNet,
    }
    let mut seen: Vec<Seen> = Vec::new();
    for sn in &snap.subnets {
        let Some(&ln) = space_ln.get(sn.address_space.as_str()) else {
            continue;
        };
        if let Some(site) = sn.vmm_id
            && let Some(cs) = console_sites.get(&site)
            && !console_view.values.sites.contains_key(&cs.id)
        {
            // Belongs to a console site outside this service's scope.
            continue;
        }
        seen.push(Seen {
            subnet: sn,
            ln,
            cidr: sn.network.trunc(),
        });
    }
    // The IPAM-side name of each linked site: its subnets' Network Site value when they agree.
    let mut names_by_site: HashMap<Id, BTreeSet<String>> = HashMap::new();
    for s in &seen {
        if let Some(site) = s.subnet.vmm_id {
            let n = s.subnet.network_site.clone().unwrap_or_default();
            names_by_site
                .entry(site)
                .or_default()
                .insert(n.trim().to_string());
        }
    }
    let site_name_known = |site: &Id| -> Option<String> {
        base.values
            .sites
            .get(site)
            .map(|s| s.name.clone())
            .or_else(|| console_sites.get(site).map(|s| s.name.clone()))
    };
    let mut site_by_name: HashMap<(Id, String), Id> = HashMap::new();
    for s in console_view.values.sites.iter() {
        site_by_name.insert((s.1.ln, fold(&s.1.name)), *s.0);
    }
    let mut site_vals: BTreeMap<Id, SiteVal> = BTreeMap::new();
    let mut ln_of_site: HashMap<Id, Id> = HashMap::new();
    for s in &seen {
        if let Some(site) = s.subnet.vmm_id {
            ln_of_site.entry(site).or_insert(s.ln);
        }
    }
    for (site, names) in &names_by_site {
        let known = site_name_known(site);
        let ln = ln_of_site.get(site).copied();
        let Some(ln) = ln else { continue };
        let name = if names.len() == 1 {
            names.iter().next().cloned().unwrap_or_default()
        } else {
            known.clone().unwrap_or_default()
        };
        let name = if name.is_empty() {
            known.unwrap_or_default()
        } else {
            name
        };
        site_by_name.insert((ln, fold(&name)), *site);
        site_vals.insert(*site, SiteVal { ln, name });
    }
    for s in &seen {
        let wanted = s
            .subnet
            .network_site
            .clone()
            .unwrap_or_default()
            .trim()
            .to_string();
        let site = match s.subnet.vmm_id {
            Some(site)
                if site_vals
                    .get(&site)
                    .is_some_and(|v| wanted.is_empty() || fold(&v.name) == fold(&wanted)) =>
            {
                site
            }
            _ => {
                let wanted = if wanted.is_empty() {
                    let ln_name = out
                        .values
                        .lns
                        .get(&s.ln)
                        .map(|l| l.name.clone())
                        .unwrap_or_default();
                    format!("{ln_name}_0")
                } else {
                    wanted
                };
                match site_by_name.get(&(s.ln, fold(&wanted))) {
                    Some(id) => *id,
                    None => {
                        let id = derived_id(&format!("site:{}:{}", s.ln, fold(&wanted)));
                        site_by_name.insert((s.ln, fold(&wanted)), id);
                        site_vals.insert(
                            id,
                            SiteVal {
                                ln: s.ln,
                                name: wanted,
                            },
                        );
                        id
                    }
                }
            }
        };
        if let Some(sv) = site_vals.get(&site)
            && sv.ln != s.ln
        {
            continue;
        }
        site_vals.entry(site).or_insert_with(|| SiteVal {
            ln: s.ln,
            name: site_name_known(&site).unwrap_or_default(),
        });
        let key = (s.ln, s.cidr);
        if out.values.subnets.contains_key(&key) {
            continue;
        }
        out.values.subnets.insert(
            key,
            SubnetVal {
                site,
                vlan: s.subnet.vlan,
                secondary_vlan: s.subnet.secondary_vlan,
            },
        );
        out.ids.subnets.insert(key, s.subnet.id.clone());
        if s.subnet.vmm_id.is_some() {
            out.linked.insert(s.subnet.id.clone());
        }
        subnet_key_by_id.insert(s.subnet.id.as_str(), key);
    }
    // Only sites that still hold a subnet exist on the IPAM side.
    let used: BTreeSet<Id> = out.values.subnets.values().map(|s| s.site).collect();
    site_vals.retain(|id, _| used.contains(id));
    out.values.sites = site_vals;

    // Ranges → pools.
    for r in &snap.ranges {
        let Some(&(ln, cidr)) = subnet_key_by_id.get(r.subnet.as_str()) else {
            continue;
        };
        let pool = r
            .vmm_id
            .unwrap_or_else(|| derived_id(&format!("range:{}", r.id)));
        if console.ip_pools.contains_key(&pool) && !console_view.values.pools.contains_key(&pool) {
            // A pool of this console outside the scope.
            continue;
        }
        out.values.pools.insert(pool, range_val(r, ln, cidr));
        out.ids.ranges.insert(pool, r.id.clone());
        if r.vmm_id.is_some() {
            out.linked.insert(r.id.clone());
        }
    }

    // Customer spaces → VM networks (console → IPAM only: only ones the console created or names).
    let vmn_by_name: HashMap<String, Id> = console
        .vm_networks
        .values()
        .map(|v| (fold(&v.name), v.id))
        .collect();
    let mut vmn_space: HashMap<&str, Id> = HashMap::new();
    let base_vmn_of_space: HashMap<&str, Id> = base
        .ids
        .vmn_spaces
        .iter()
        .map(|(v, s)| (s.as_str(), *v))
        .collect();
    for s in snap
        .spaces
        .iter()
        .filter(|s| s.kind == AddressSpaceKind::Customer)
    {
        let vmn = s.vmm_id.or_else(|| {
            base_vmn_of_space.get(s.id.as_str()).copied().or_else(|| {
                s.vm_network
                    .as_deref()
                    .and_then(|n| vmn_by_name.get(&fold(n)).copied())
            })
        });
        let Some(vmn) = vmn else { continue };
        if out.ids.vmn_spaces.contains_key(&vmn) {
            continue;
        }
        if console.vm_networks.contains_key(&vmn) && !console_view.values.vmns.contains_key(&vmn) {
            continue;
        }
        let ln = s
            .provider_space
            .as_deref()
            .and_then(|p| space_ln.get(p).copied())
            .or_else(|| console.vm_networks.get(&vmn).map(|v| v.logical_network))
            .unwrap_or(Uuid::nil());
        vmn_space.insert(s.id.as_str(), vmn);
        out.ids.vmn_spaces.insert(vmn, s.id.clone());
        if s.vmm_id.is_some() {
            out.linked.insert(s.id.clone());
        }
        out.values.vmns.insert(
            vmn,
            VmnVal {
                ln,
                name: s.vm_network.clone().unwrap_or_else(|| s.name.clone()),
                subnets: BTreeSet::new(),
            },
        );
    }
    for sn in &snap.subnets {
        if let Some(&vmn) = vmn_space.get(sn.address_space.as_str())
            && let Some(v) = out.values.vmns.get_mut(&vmn)
        {
            let cidr = sn.network.trunc();
            v.subnets.insert(cidr);
            out.ids.vmn_subnets.insert((vmn, cidr), sn.id.clone());
            if sn.vmm_id.is_some() {
                out.linked.insert(sn.id.clone());
            }
        }
    }
    // Ranges in customer subnets → pools on VM subnets.
    let vm_subnet_of: HashMap<&str, SubnetKey> = out
        .ids
        .vmn_subnets
        .iter()
        .map(|(k, id)| (id.as_str(), *k))
        .collect();
    for r in &snap.ranges {
        let Some(&(vmn, cidr)) = vm_subnet_of.get(r.subnet.as_str()) else {
            continue;
        };
        let pool = r
            .vmm_id
            .unwrap_or_else(|| derived_id(&format!("range:{}", r.id)));
        if console.ip_pools.contains_key(&pool) && !console_view.values.vm_pools.contains_key(&pool)
        {
            continue;
        }
        out.values.vm_pools.insert(pool, range_val(r, vmn, cidr));
        out.ids.ranges.insert(pool, r.id.clone());
        if r.vmm_id.is_some() {
            out.linked.insert(r.id.clone());
        }
    }
    out
}

/// Text of a field value for conflicts and previews.
pub trait FieldText {
    fn text(&self) -> String;
}

impl FieldText for String {
    fn text(&self) -> String {
        self.clone()
    }
}
impl FieldText for u16 {
    fn text(&self) -> String {
        self.to_string()
    }
}
impl FieldText for bool {
    fn text(&self) -> String {
        if *self { "Enabled" } else { "Disabled" }.into()
    }
}
impl FieldText for Option<u16> {
    fn text(&self) -> String {
        self.map(|v| v.to_string()).unwrap_or_else(|| "—".into())
    }
}
impl FieldText for std::net::IpAddr {
    fn text(&self) -> String {
        self.to_string()
    }
}
impl FieldText for IpNet {
    fn text(&self) -> String {
        self.to_string()
    }
}
impl FieldText for Uuid {
    fn text(&self) -> String {
        self.to_string()
    }
}
impl<T: std::fmt::Display> FieldText for BTreeSet<T> {
    fn text(&self) -> String {
        join(self.iter())
    }
}
impl FieldText for Vec<std::net::IpAddr> {
    fn text(&self) -> String {
        join(self.iter())
    }
}
impl FieldText for Vec<String> {
    fn text(&self) -> String {
        join(self.iter())
    }
}
impl FieldText for Vec<crate::fabric::model::Gateway> {
    fn text(&self) -> String {
        let parts: Vec<String> = self
            .iter()
            .map(|g| match g.metric() {
                Some(m) => format!("{} (metric {m})", g.address()),
                None => format!("{} (automatic metric)", g.address()),
            })
            .collect();
        if parts.is_empty() {
            "—".into()
        } else {
            parts.join(", ")
        }
    }
}

fn join<T: std::fmt::Display>(it: impl Iterator<Item = T>) -> String {
    let v: Vec<String> = it.map(|x| x.to_string()).collect();
    if v.is_empty() {
        "—".into()
    } else {
        v.join(", ")
    }
}

/// Where conflicts are collected while merging.
struct MergeCtx<'a> {
    resolutions: &'a BTreeMap<String, Resolution>,
    conflicts: Vec<Conflict>,
    kind: ObjectKind,
    object: Id,
    object_name: String,
    key_prefix: String,
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
        let key = format!("{}:{field}", self.key_prefix);
        match self.resolutions.get(&key) {
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
        let key = format!("{}:exists", self.key_prefix);
        if let Some(r) = self.resolutions.get(&key) {
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

macro_rules! merge_fields {
    ($ctx:expr, $b:expr, $c:expr, $i:expr, [$($f:ident : $label:expr),* $(,)?]) => {{
        let mut tc = $c.clone();
        let mut ti = $i.clone();
        $(
            let (x, y) = $ctx.field($label, $b.map(|b| &b.$f), &$c.$f, &$i.$f);
            tc.$f = x;
            ti.$f = y;
        )*
        (tc, ti)
    }};
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
        let (kind, object, object_name, key_prefix) = identify(key, any);
        let mut m = MergeCtx {
            resolutions,
            conflicts: Vec::new(),
            kind,
            object,
            object_name,
            key_prefix,
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

/// Plan one sync of one service.
pub fn plan(input: &PlanInput) -> SyncPlan {
    let PlanInput {
        fabric,
        service,
        ipam,
        ipam_complete,
        base,
        resolutions,
    } = *input;
    let cview = project_console(fabric, &service.scope, base);
    let iview = project_ipam(ipam, fabric, &cview, base);
    let c = &cview.values;
    let i = &iview.values;
    let b = &base.values;

    let mut conflicts = Vec::new();
    let mut tc = Normalized::default();
    let mut ti = Normalized::default();

    merge_map(
        (&b.lns, &c.lns, &i.lns),
        (&mut tc.lns, &mut ti.lns),
        &mut conflicts,
        resolutions,
        |id, v| {
            (
                ObjectKind::LogicalNetwork,
                *id,
                v.name.clone(),
                format!("logical_network:{id}"),
            )
        },
        |m, b, c, i| merge_fields!(m, b, c, i, [name: "Name", description: "Description"]),
    );
    merge_map(
        (&b.sites, &c.sites, &i.sites),
        (&mut tc.sites, &mut ti.sites),
        &mut conflicts,
        resolutions,
        |id, v| {
            (
                ObjectKind::NetworkSite,
                *id,
                v.name.clone(),
                format!("network_site:{id}"),
            )
        },
        |m, b, c, i| merge_fields!(m, b, c, i, [name: "Name"]),
    );
    merge_map(
        (&b.subnets, &c.subnets, &i.subnets),
        (&mut tc.subnets, &mut ti.subnets),
        &mut conflicts,
        resolutions,
        |key, v| {
            (
                ObjectKind::Subnet,
                v.site,
                key.1.to_string(),
                format!("subnet:{}:{}", key.0, key.1),
            )
        },
        |m, b, c, i| merge_fields!(m, b, c, i, [site: "Network site", vlan: "VLAN", secondary_vlan: "Secondary VLAN"]),
    );
    merge_map(
        (&b.pools, &c.pools, &i.pools),
        (&mut tc.pools, &mut ti.pools),
        &mut conflicts,
        resolutions,
        |id, v| {
            (
                ObjectKind::IpPool,
                *id,
                v.name.clone(),
                format!("ip_pool:{id}"),
            )
        },
        |m, b, c, i| {
            merge_fields!(m, b, c, i, [
                subnet: "Subnet",
                name: "Name",
                description: "Description",
                start: "Range start",
                end: "Range end",
                reserved: "Reserved addresses",
                vips: "VIP addresses",
                gateways: "Default gateways",
                dns_servers: "DNS servers",
                dns_suffix: "DNS suffix",
                dns_search_suffixes: "DNS search suffixes",
                wins_servers: "WINS servers",
                netbios_enabled: "NetBIOS over TCP/IP",
            ])
        },
    );
    // VM networks: console → IPAM only; an IPAM-side change is reported and put back.
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
                    conflicts.push(Conflict {
                        key: format!("vm_network:{id}:{field}"),
                        kind: ObjectKind::VmNetwork,
                        object: *id,
                        object_name: cv.name.clone(),
                        field: field.into(),
                        base: bt,
                        console: ct,
                        ipam: it,
                        put_back: true,
                    });
                }
            }
        }
    }
    for (id, bv) in &b.vmns {
        if !c.vmns.contains_key(id) && i.vmns.contains_key(id) {
            // Deleted in the console: removed from IPAM too.
            let _ = bv;
        }
    }

    // Pools on VM subnets follow their VM network: console → IPAM only.
    for (id, cv) in &c.vm_pools {
        tc.vm_pools.insert(*id, cv.clone());
        ti.vm_pools.insert(*id, cv.clone());
        if let (Some(iv), Some(bv)) = (i.vm_pools.get(id), b.vm_pools.get(id))
            && iv != bv
            && iv != cv
        {
            conflicts.push(Conflict {
                key: format!("ip_pool:{id}:range"),
                kind: ObjectKind::IpPool,
                object: *id,
                object_name: cv.name.clone(),
                field: "IP address range".into(),
                base: format!("{} – {}", bv.start, bv.end),
                console: format!("{} – {}", cv.start, cv.end),
                ipam: format!("{} – {}", iv.start, iv.end),
                put_back: true,
            });
        }
    }

    // Seed rule 1: every subnet of a logical network deleted in IPAM while its VMM Logical
    // Network name stays → the logical network is deleted in the console.
    let mut ln_deleted_by_ipam = BTreeSet::new();
    if ipam_complete {
        let base_with_subnets: BTreeSet<Id> = b.subnets.keys().map(|(l, _)| *l).collect();
        let ipam_with_subnets: BTreeSet<Id> = i.subnets.keys().map(|(l, _)| *l).collect();
        for ln in b.lns.keys() {
            let had_subnets = base_with_subnets.contains(ln);
            let linked = iview.ids.spaces.contains_key(ln) && i.lns.contains_key(ln);
            let has_now = ipam_with_subnets.contains(ln);
            if had_subnets && linked && !has_now && c.lns.contains_key(ln) {
                ln_deleted_by_ipam.insert(*ln);
            }
        }
    }
    for ln in &ln_deleted_by_ipam {
        tc.sites.retain(|_, s| s.ln != *ln);
        tc.subnets.retain(|(l, _), _| l != ln);
        tc.pools.retain(|_, p| p.ln != *ln);
        ti.sites.retain(|_, s| s.ln != *ln);
        ti.subnets.retain(|(l, _), _| l != ln);
        ti.pools.retain(|_, p| p.ln != *ln);
        if !cview.partly_out_of_scope.contains(ln) {
            tc.lns.remove(ln);
            ti.lns.remove(ln);
            tc.vmns.retain(|_, v| v.ln != *ln);
            ti.vmns.retain(|_, v| v.ln != *ln);
        }
    }

    // Seed rule 2: the VMM Logical Network name deleted in IPAM → nothing is deleted; the
    // logical network is orphaned until an administrator deletes its sites and the network.
    let mut orphans = Vec::new();
    let mut frozen = BTreeSet::new();
    for ln in &iview.broken_links {
        if c.lns.contains_key(ln) {
            orphans.push(*ln);
            frozen.insert(*ln);
        } else {
            // The administrator deleted it in the console: complete the deletion in IPAM.
            ti.lns.remove(ln);
            ti.sites.retain(|_, s| s.ln != *ln);
            ti.subnets.retain(|(l, _), _| l != ln);
            ti.pools.retain(|_, p| p.ln != *ln);
            ti.vmns.retain(|_, v| v.ln != *ln);
        }
    }
    for ln in &frozen {
        // Leave both sides of an orphaned network exactly as they are.
        restore(&mut tc, c, *ln);
        restore(&mut ti, i, *ln);
        conflicts.retain(|x| !conflict_in_ln(x, *ln, c, i, b));
    }

    // Keep each side consistent: children follow their parents.
    make_consistent(&mut tc, &frozen);
    make_consistent(&mut ti, &frozen);

    let mut plan = SyncPlan {
        conflicts,
        orphans,
        ..SyncPlan::default()
    };
    let scope_groups: Vec<Id> = match &service.scope {
        HostGroupScope::All => fabric
            .root_host_group()
            .map(|g| vec![g.id])
            .unwrap_or_default(),
        HostGroupScope::Selected(s) => s.iter().copied().collect(),
    };
    console_changes(fabric, c, &tc, &scope_groups, &mut plan);
    let console_lns: BTreeSet<Id> = c.lns.keys().copied().collect();
    ipam_ops(ipam, &iview, &console_lns, &ti, service, &mut plan);
    if !ipam_complete {
        plan.ipam_ops
            .retain(|op| op.verb() != crate::ipam::model::OpVerb::Delete);
        plan.console_changes
            .retain(|ch| !matches!(ch, FabricChange::Delete(..)));
    }
    plan.summary.conflicts = plan.conflicts.iter().filter(|c| !c.put_back).count() as u32;
    plan.summary.orphans = plan.orphans.len() as u32;
    plan
}

fn restore(t: &mut Normalized, from: &Normalized, ln: Id) {
    t.lns.remove(&ln);
    if let Some(v) = from.lns.get(&ln) {
        t.lns.insert(ln, v.clone());
    }
    t.sites.retain(|_, s| s.ln != ln);
    t.sites.extend(
        from.sites
            .iter()
            .filter(|(_, s)| s.ln == ln)
            .map(|(k, v)| (*k, v.clone())),
    );
    t.subnets.retain(|(l, _), _| *l != ln);
    t.subnets.extend(
        from.subnets
            .iter()
            .filter(|((l, _), _)| *l == ln)
            .map(|(k, v)| (*k, v.clone())),
    );
    t.pools.retain(|_, p| p.ln != ln);
    t.pools.extend(
        from.pools
            .iter()
            .filter(|(_, p)| p.ln == ln)
            .map(|(k, v)| (*k, v.clone())),
    );
}

fn conflict_in_ln(x: &Conflict, ln: Id, c: &Normalized, i: &Normalized, b: &Normalized) -> bool {
    let site_ln = |s: &Id| {
        c.sites
            .get(s)
            .or(i.sites.get(s))
            .or(b.sites.get(s))
            .map(|v| v.ln)
    };
    match x.kind {
        ObjectKind::LogicalNetwork => x.object == ln,
        ObjectKind::NetworkSite | ObjectKind::Subnet => {
            site_ln(&x.object) == Some(ln) || x.key.contains(&ln.to_string())
        }
        ObjectKind::IpPool => {
            c.pools
                .get(&x.object)
                .or(i.pools.get(&x.object))
                .map(|p| p.ln)
                == Some(ln)
        }
        _ => false,
    }
}

fn make_consistent(t: &mut Normalized, frozen: &BTreeSet<Id>) {
    let lns: BTreeSet<Id> = t.lns.keys().chain(frozen.iter()).copied().collect();
    t.sites.retain(|_, s| lns.contains(&s.ln));
    let sites = t.sites.clone();
    t.subnets
        .retain(|(ln, _), s| sites.get(&s.site).is_some_and(|site| site.ln == *ln));
    let subnets: BTreeSet<SubnetKey> = t.subnets.keys().copied().collect();
    t.pools.retain(|_, p| subnets.contains(&(p.ln, p.subnet)));
    t.vmns.retain(|_, v| lns.contains(&v.ln));
    let vmns = &t.vmns;
    t.vm_pools.retain(|_, p| {
        vmns.get(&p.ln)
            .is_some_and(|v| v.subnets.contains(&p.subnet))
    });
}

fn count(plan: &mut SyncPlan, side: Side, kind: &str, verb: usize) {
    plan.summary
        .counts
        .entry((side, kind.to_string()))
        .or_insert([0; 3])[verb] += 1;
}

const CREATE: usize = 0;
const UPDATE: usize = 1;
const DELETE: usize = 2;

fn console_changes(
    fabric: &Fabric,
    c: &Normalized,
    t: &Normalized,
    scope_groups: &[Id],
    plan: &mut SyncPlan,
) {
    let mut changes = Vec::new();
    // Deletions first: pools, sites, VM networks, logical networks.
    for id in c
        .pools
        .keys()
        .filter(|k| !t.pools.contains_key(k))
        .chain(c.vm_pools.keys().filter(|k| !t.vm_pools.contains_key(k)))
    {
        changes.push(FabricChange::Delete(ObjectKind::IpPool, *id));
        count(plan, Side::Console, "Static IP address pools", DELETE);
    }
    for id in c.sites.keys().filter(|k| !t.sites.contains_key(k)) {
        changes.push(FabricChange::Delete(ObjectKind::NetworkSite, *id));
        count(plan, Side::Console, "Network sites", DELETE);
    }
    for id in c.vmns.keys().filter(|k| !t.vmns.contains_key(k)) {
        changes.push(FabricChange::Delete(ObjectKind::VmNetwork, *id));
        count(plan, Side::Console, "VM networks", DELETE);
    }
    for id in c.lns.keys().filter(|k| !t.lns.contains_key(k)) {
        changes.push(FabricChange::Delete(ObjectKind::LogicalNetwork, *id));
        count(plan, Side::Console, "Logical networks", DELETE);
    }
    for (id, v) in &t.lns {
        match (c.lns.get(id), fabric.logical_networks.get(id)) {
            (Some(cv), Some(existing)) if cv != v => {
                let mut ln = existing.clone();
                ln.name = v.name.clone();
                ln.description = v.description.clone();
                changes.push(FabricChange::Put(FabricObject::LogicalNetwork(ln)));
                count(plan, Side::Console, "Logical networks", UPDATE);
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
                count(plan, Side::Console, "Logical networks", CREATE);
            }
            _ => {}
        }
    }
    // Subnets per site in the target and now.
    let mut target_subnets: BTreeMap<Id, Vec<(IpNet, &SubnetVal)>> = BTreeMap::new();
    for ((_, net), s) in &t.subnets {
        target_subnets.entry(s.site).or_default().push((*net, s));
    }
    let mut current_subnets: BTreeMap<Id, Vec<(IpNet, &SubnetVal)>> = BTreeMap::new();
    for ((_, net), s) in &c.subnets {
        current_subnets.entry(s.site).or_default().push((*net, s));
    }
    for (key, _) in t
        .subnets
        .iter()
        .filter(|(k, v)| c.subnets.get(k) != Some(v))
    {
        let verb = if c.subnets.contains_key(key) {
            UPDATE
        } else {
            CREATE
        };
        count(plan, Side::Console, "IP address subnets", verb);
    }
    for key in c.subnets.keys().filter(|k| !t.subnets.contains_key(k)) {
        let _ = key;
        count(plan, Side::Console, "IP address subnets", DELETE);
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
            count(plan, Side::Console, "Network sites", CREATE);
        } else if changed_name {
            count(plan, Side::Console, "Network sites", UPDATE);
        }
    }
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
            reserved: v.reserved.clone(),
            vips: v.vips.clone(),
            gateways: v.gateways.clone(),
            dns_servers: v.dns_servers.clone(),
            dns_suffix: v.dns_suffix.clone(),
            dns_search_suffixes: v.dns_search_suffixes.clone(),
            wins_servers: v.wins_servers.clone(),
            netbios_enabled: v.netbios_enabled,
        };
        let verb = if existing.is_some() { UPDATE } else { CREATE };
        changes.push(FabricChange::Put(FabricObject::IpPool(p)));
        count(plan, Side::Console, "Static IP address pools", verb);
    }
    plan.console_changes = changes;
}

fn new_ipam_id() -> String {
    Uuid::new_v4().to_string()
}

fn ipam_ops(
    snap: &IpamSnapshot,
    iview: &IpamView,
    console_lns: &BTreeSet<Id>,
    t: &Normalized,
    service: &NetworkService,
    plan: &mut SyncPlan,
) {
    let i = &iview.values;
    let ids = &iview.ids;
    let spaces: HashMap<&str, &AddressSpace> =
        snap.spaces.iter().map(|s| (s.id.as_str(), s)).collect();
    let subnets: HashMap<&str, &IpamSubnet> =
        snap.subnets.iter().map(|s| (s.id.as_str(), s)).collect();
    let ranges: HashMap<&str, &IpRange> = snap.ranges.iter().map(|r| (r.id.as_str(), r)).collect();
    let deletable = |id: &str| iview.linked.contains(id);

    let mut deletes = Vec::new();
    let mut creates = Vec::new();
    let mut ln_space: BTreeMap<Id, String> = ids.spaces.clone();
    let mut subnet_ids: BTreeMap<SubnetKey, String> = ids.subnets.clone();

    // Deletions, children first.
    for (pool, rid) in &ids.ranges {
        let gone = !t.pools.contains_key(pool) && !t.vm_pools.contains_key(pool);
        let seen = i.pools.contains_key(pool) || i.vm_pools.contains_key(pool);
        if gone && seen && deletable(rid) {
            deletes.push(IpamOp::DeleteRange(rid.clone()));
            count(plan, Side::Ipam, "IP address ranges", DELETE);
        }
    }
    for (key, sid) in &ids.vmn_subnets {
        let keep = t
            .vmns
            .get(&key.0)
            .is_some_and(|v| v.subnets.contains(&key.1));
        if !keep && deletable(sid) {
            deletes.push(IpamOp::DeleteSubnet(sid.clone()));
            count(plan, Side::Ipam, "IP address subnets (customer)", DELETE);
        }
    }
    for (key, sid) in &ids.subnets {
        if !t.subnets.contains_key(key) && deletable(sid) {
            // A range we did not link still inside blocks the delete on the server; it reports so.
            deletes.push(IpamOp::DeleteSubnet(sid.clone()));
            count(plan, Side::Ipam, "IP address subnets", DELETE);
        }
    }
    for (vmn, sid) in &ids.vmn_spaces {
        if !t.vmns.contains_key(vmn) && deletable(sid) {
            deletes.push(IpamOp::DeleteSpace(sid.clone()));
            count(plan, Side::Ipam, "Customer IP address spaces", DELETE);
        }
    }
    for (ln, sid) in &ids.spaces {
        let gone = if iview.broken_links.contains(ln) {
            // An orphan's space goes only once the administrator deleted the network.
            !console_lns.contains(ln)
        } else {
            !t.lns.contains_key(ln)
        };
        if gone && deletable(sid) {
            deletes.push(IpamOp::DeleteSpace(sid.clone()));
            count(plan, Side::Ipam, "Provider IP address spaces", DELETE);
        }
    }

    // Provider spaces.
    for (ln, v) in &t.lns {
        match ids.spaces.get(ln).and_then(|sid| spaces.get(sid.as_str())) {
            Some(existing) => {
                let needs = i.lns.get(ln) != Some(v) || existing.vmm_id != Some(*ln);
                if needs && !iview.broken_links.contains(ln) {
                    let mut s = (*existing).clone();
                    s.vmm_id = Some(*ln);
                    s.name = v.name.clone();
                    s.vmm_logical_network = Some(v.name.clone());
                    s.description = v.description.clone();
                    creates.push(IpamOp::UpdateSpace(s));
                    count(plan, Side::Ipam, "Provider IP address spaces", UPDATE);
                }
            }
            None => {
                if iview.broken_links.contains(ln) {
                    continue;
                }
                let sid = new_ipam_id();
                ln_space.insert(*ln, sid.clone());
                creates.push(IpamOp::CreateSpace(AddressSpace {
                    id: sid,
                    vmm_id: Some(*ln),
                    name: v.name.clone(),
                    kind: AddressSpaceKind::Provider,
                    description: v.description.clone(),
                    vmm_logical_network: Some(v.name.clone()),
                    vm_network: None,
                    provider_space: None,
                    tenant: String::new(),
                    owner: "VMM".into(),
                }));
                count(plan, Side::Ipam, "Provider IP address spaces", CREATE);
            }
        }
    }
    // Customer spaces (VM networks).
    let mut vmn_space: BTreeMap<Id, String> = ids.vmn_spaces.clone();
    for (vmn, v) in &t.vmns {
        let provider_space = ln_space.get(&v.ln).cloned();
        match ids
            .vmn_spaces
            .get(vmn)
            .and_then(|sid| spaces.get(sid.as_str()))
        {
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
                    creates.push(IpamOp::UpdateSpace(s));
                    count(plan, Side::Ipam, "Customer IP address spaces", UPDATE);
                }
            }
            None => {
                let sid = new_ipam_id();
                vmn_space.insert(*vmn, sid.clone());
                creates.push(IpamOp::CreateSpace(AddressSpace {
                    id: sid,
                    vmm_id: Some(*vmn),
                    name: v.name.clone(),
                    kind: AddressSpaceKind::Customer,
                    description: String::new(),
                    vmm_logical_network: None,
                    vm_network: Some(v.name.clone()),
                    provider_space,
                    tenant: String::new(),
                    owner: "VMM".into(),
                }));
                count(plan, Side::Ipam, "Customer IP address spaces", CREATE);
            }
        }
    }
    // Provider subnets.
    for (key, v) in &t.subnets {
        let Some(space) = ln_space.get(&key.0) else {
            continue;
        };
        let ln_name = t.lns.get(&key.0).map(|l| l.name.clone());
        let site_name = t.sites.get(&v.site).map(|s| s.name.clone());
        match ids
            .subnets
            .get(key)
            .and_then(|sid| subnets.get(sid.as_str()))
        {
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
                    creates.push(IpamOp::UpdateSubnet(s));
                    count(plan, Side::Ipam, "IP address subnets", UPDATE);
                }
            }
            None => {
                let sid = new_ipam_id();
                subnet_ids.insert(*key, sid.clone());
                creates.push(IpamOp::CreateSubnet(IpamSubnet {
                    id: sid,
                    vmm_id: Some(v.site),
                    address_space: space.clone(),
                    network: key.1,
                    name: key.1.to_string(),
                    network_type: "Provider".into(),
                    vmm_logical_network: ln_name,
                    network_site: site_name,
                    vlan: v.vlan,
                    secondary_vlan: v.secondary_vlan,
                    owner: "VMM".into(),
                    custom_fields: BTreeMap::new(),
                }));
                count(plan, Side::Ipam, "IP address subnets", CREATE);
            }
        }
    }
    // Customer subnets.
    let mut vm_subnet_ids: BTreeMap<SubnetKey, String> = ids.vmn_subnets.clone();
    for (vmn, v) in &t.vmns {
        let Some(space) = vmn_space.get(vmn) else {
            continue;
        };
        for net in &v.subnets {
            if !ids.vmn_subnets.contains_key(&(*vmn, *net)) {
                let sid = new_ipam_id();
                vm_subnet_ids.insert((*vmn, *net), sid.clone());
                creates.push(IpamOp::CreateSubnet(IpamSubnet {
                    id: sid,
                    vmm_id: Some(*vmn),
                    address_space: space.clone(),
                    network: *net,
                    name: net.to_string(),
                    network_type: "Customer".into(),
                    vmm_logical_network: None,
                    network_site: None,
                    vlan: 0,
                    secondary_vlan: None,
                    owner: "VMM".into(),
                    custom_fields: BTreeMap::new(),
                }));
                count(plan, Side::Ipam, "IP address subnets (customer)", CREATE);
            }
        }
    }
    // Ranges: pools on site subnets, then pools on VM subnets.
    for (targets, seen, subnet_of) in [
        (&t.pools, &i.pools, &subnet_ids),
        (&t.vm_pools, &i.vm_pools, &vm_subnet_ids),
    ] {
        for (pool, v) in targets {
            let Some(subnet) = subnet_of.get(&(v.ln, v.subnet)) else {
                continue;
            };
            let existing = ids
                .ranges
                .get(pool)
                .and_then(|rid| ranges.get(rid.as_str()))
                .copied();
            let needs = match existing {
                Some(r) => {
                    seen.get(pool) != Some(v) || r.vmm_id != Some(*pool) || &r.subnet != subnet
                }
                None => true,
            };
            if needs {
                creates.push(range_op(existing, *pool, v, subnet, service));
                let verb = if existing.is_some() { UPDATE } else { CREATE };
                count(plan, Side::Ipam, "IP address ranges", verb);
            }
        }
    }
    // Order: deletes (ranges → subnets → spaces), then spaces → subnets → ranges.
    let rank = |op: &IpamOp| match op {
        IpamOp::DeleteRange(_) => 0,
        IpamOp::DeleteSubnet(_) => 1,
        IpamOp::DeleteSpace(_) => 2,
        IpamOp::CreateSpace(s) | IpamOp::UpdateSpace(s) => {
            if s.kind == AddressSpaceKind::Provider {
                3
            } else {
                4
            }
        }
        IpamOp::CreateSubnet(_) | IpamOp::UpdateSubnet(_) => 5,
        IpamOp::CreateRange(_) | IpamOp::UpdateRange(_) => 6,
    };
    let mut all: Vec<IpamOp> = deletes.into_iter().chain(creates).collect();
    all.sort_by_key(|op| rank(op));
    plan.ipam_ops = all;
}

/// The create or update that makes an IPAM range carry a pool's settings.
fn range_op(
    existing: Option<&IpRange>,
    pool: Id,
    v: &PoolVal,
    subnet: &str,
    service: &NetworkService,
) -> IpamOp {
    // Every field but the server's id is the console's, so the range is built whole.
    let r = IpRange {
        id: existing.map(|r| r.id.clone()).unwrap_or_else(new_ipam_id),
        vmm_id: Some(pool),
        subnet: subnet.to_string(),
        name: v.name.clone(),
        description: v.description.clone(),
        start: v.start,
        end: v.end,
        reserved: v.reserved.clone(),
        vips: v.vips.clone(),
        gateways: v.gateways.clone(),
        dns_servers: v.dns_servers.clone(),
        dns_suffix: v.dns_suffix.clone(),
        dns_search_suffixes: v.dns_search_suffixes.clone(),
        wins_servers: v.wins_servers.clone(),
        netbios_enabled: v.netbios_enabled,
        managed_by_service: "VMM".into(),
        service_instance: service.id.to_string(),
    };
    if existing.is_some() {
        IpamOp::UpdateRange(r)
    } else {
        IpamOp::CreateRange(r)
    }
}

/// The new base after a sync: every entity on which both sides now agree.
pub fn agreed_base(
    fabric: &Fabric,
    service: &NetworkService,
    ipam: &IpamSnapshot,
    old: &BaseState,
) -> BaseState {
    let cview = project_console(fabric, &service.scope, old);
    let iview = project_ipam(ipam, fabric, &cview, old);
    let c = &cview.values;
    let i = &iview.values;
    let mut base = BaseState::default();
    fn agree<K: Ord + Clone, V: Clone + PartialEq>(
        c: &BTreeMap<K, V>,
        i: &BTreeMap<K, V>,
        old: &BTreeMap<K, V>,
        out: &mut BTreeMap<K, V>,
    ) {
        for (k, cv) in c {
            match i.get(k) {
                Some(iv) if iv == cv => {
                    out.insert(k.clone(), cv.clone());
                }
                Some(_) => {
                    if let Some(o) = old.get(k) {
                        out.insert(k.clone(), o.clone());
                    }
                }
                None => {}
            }
        }
    }
    agree(&c.lns, &i.lns, &old.values.lns, &mut base.values.lns);
    agree(
        &c.sites,
        &i.sites,
        &old.values.sites,
        &mut base.values.sites,
    );
    agree(
        &c.subnets,
        &i.subnets,
        &old.values.subnets,
        &mut base.values.subnets,
    );
    agree(
        &c.pools,
        &i.pools,
        &old.values.pools,
        &mut base.values.pools,
    );
    agree(&c.vmns, &i.vmns, &old.values.vmns, &mut base.values.vmns);
    agree(
        &c.vm_pools,
        &i.vm_pools,
        &old.values.vm_pools,
        &mut base.values.vm_pools,
    );
    // Orphaned networks stay in the base so the next sync still knows the link was broken.
    for ln in &iview.broken_links {
        if let Some(v) = old.values.lns.get(ln)
            && c.lns.contains_key(ln)
        {
            base.values.lns.insert(*ln, v.clone());
            for (k, s) in old.values.subnets.iter().filter(|(k, _)| k.0 == *ln) {
                base.values.subnets.insert(*k, s.clone());
            }
        }
    }
    base.ids = iview.ids;
    base
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fabric::connection::ConnectionString;
    use crate::fabric::model::*;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    struct World {
        fabric: Fabric,
        ipam: IpamSnapshot,
        base: BaseState,
        service: NetworkService,
        resolutions: BTreeMap<String, Resolution>,
        root: Id,
        seattle: Id,
        dublin: Id,
        ln: Id,
        site: Id,
        pool: Id,
        vmn: Id,
    }

    fn pool(id: Id, site: Id, subnet: &str, start: &str, end: &str) -> IpPool {
        IpPool {
            id,
            name: format!("Pool {}", &id.to_string()[..4]),
            description: String::new(),
            scope: PoolScope::Site {
                site,
                subnet: net(subnet),
            },
            range_start: ip(start),
            range_end: ip(end),
            reserved: [ip(&start.replace(".10", ".11"))].into_iter().collect(),
            vips: BTreeSet::new(),
            gateways: vec![Gateway::Address {
                address: ip(&subnet.replace(".0/24", ".1")),
                metric: 1,
            }],
            dns_servers: vec![ip("10.0.0.53")],
            dns_suffix: "corp.contoso.com".into(),
            dns_search_suffixes: vec![],
            wins_servers: vec![],
            netbios_enabled: false,
        }
    }

    fn world() -> World {
        let mut f = Fabric::new();
        let root = f.root_host_group().unwrap().id;
        let seattle = Uuid::new_v4();
        let dublin = Uuid::new_v4();
        f.host_groups.insert(
            seattle,
            HostGroup {
                id: seattle,
                name: "Seattle".into(),
                parent: Some(root),
            },
        );
        f.host_groups.insert(
            dublin,
            HostGroup {
                id: dublin,
                name: "Dublin".into(),
                parent: Some(root),
            },
        );
        let ln = Uuid::new_v4();
        f.logical_networks.insert(
            ln,
            LogicalNetwork {
                id: ln,
                name: "Backend".into(),
                description: "Backend servers".into(),
                isolation: LogicalNetworkIsolation::NetworkVirtualization,
            },
        );
        let site = Uuid::new_v4();
        f.network_sites.insert(
            site,
            NetworkSite {
                id: site,
                name: "Backend_Seattle".into(),
                logical_network: ln,
                host_groups: vec![seattle],
                subnets: vec![
                    SubnetVlan {
                        subnet: net("10.1.0.0/24"),
                        vlan: 10,
                        secondary_vlan: None,
                    },
                    SubnetVlan {
                        subnet: net("10.1.1.0/24"),
                        vlan: 11,
                        secondary_vlan: None,
                    },
                ],
            },
        );
        let pid = Uuid::new_v4();
        f.ip_pools.insert(
            pid,
            pool(pid, site, "10.1.0.0/24", "10.1.0.10", "10.1.0.200"),
        );
        let vmn = Uuid::new_v4();
        f.vm_networks.insert(
            vmn,
            VmNetwork {
                id: vmn,
                name: "Tenant A".into(),
                description: String::new(),
                logical_network: ln,
                isolation: VmNetworkIsolation::NetworkVirtualization,
                vm_subnets: vec![net("192.168.0.0/24")],
            },
        );
        let ra = Uuid::new_v4();
        f.run_as_accounts.insert(
            ra,
            RunAsAccount {
                id: ra,
                name: "IPAM".into(),
                description: String::new(),
                user_name: "svc".into(),
            },
        );
        let service = NetworkService {
            id: Uuid::new_v4(),
            name: "ipam1".into(),
            description: String::new(),
            category: ServiceCategory::NetworkManager,
            manufacturer: "m".into(),
            model: "m".into(),
            connection: ConnectionString::parse("ipam1.contoso.com").unwrap(),
            run_as: ra,
            provider: "builtin".into(),
            scope: HostGroupScope::All,
            sync_interval_secs: 300,
            tls_fingerprint: None,
        };
        World {
            fabric: f,
            ipam: IpamSnapshot::default(),
            base: BaseState::default(),
            service,
            resolutions: BTreeMap::new(),
            root,
            seattle,
            dublin,
            ln,
            site,
            pool: pid,
            vmn,
        }
    }

    fn apply_ops(snap: &mut IpamSnapshot, ops: &[IpamOp]) {
        crate::sync::apply::apply_to_mirror(snap, ops);
    }

    impl World {
        fn plan(&self) -> SyncPlan {
            plan(&PlanInput {
                fabric: &self.fabric,
                service: &self.service,
                ipam: &self.ipam,
                ipam_complete: true,
                base: &self.base,
                resolutions: &self.resolutions,
            })
        }
        /// Plan, apply both sides, record the agreed base.
        fn sync(&mut self) -> SyncPlan {
            let p = self.plan();
            apply_ops(&mut self.ipam, &p.ipam_ops);
            self.fabric.apply_changes(&p.console_changes);
            let errors = crate::fabric::validate::validate_fabric(&self.fabric);
            assert!(errors.is_empty(), "console invalid after sync: {errors:?}");
            self.base = agreed_base(&self.fabric, &self.service, &self.ipam, &self.base);
            p
        }
        fn range_mut(&mut self) -> &mut IpRange {
            let pool = self.pool;
            self.ipam
                .ranges
                .iter_mut()
                .find(|r| r.vmm_id == Some(pool))
                .unwrap()
        }
        fn provider_space(&mut self) -> &mut AddressSpace {
            let ln = self.ln;
            self.ipam
                .spaces
                .iter_mut()
                .find(|s| s.vmm_id == Some(ln))
                .unwrap()
        }
    }

    #[test]
    fn first_sync_pushes_everything_and_second_plans_nothing() {
        let mut w = world();
        let p = w.sync();
        assert_eq!(p.summary.total(Side::Ipam), [6, 0, 0], "{:?}", p.summary);
        assert!(p.console_changes.is_empty());
        let space = w.provider_space().clone();
        assert_eq!(space.vmm_logical_network.as_deref(), Some("Backend"));
        assert_eq!(space.name, "Backend");
        let sn = w
            .ipam
            .subnets
            .iter()
            .find(|s| s.network == net("10.1.0.0/24"))
            .unwrap();
        assert_eq!(sn.network_site.as_deref(), Some("Backend_Seattle"));
        assert_eq!(sn.vmm_logical_network.as_deref(), Some("Backend"));
        assert_eq!(sn.vlan, 10);
        let cust = w
            .ipam
            .spaces
            .iter()
            .find(|s| s.kind == AddressSpaceKind::Customer)
            .unwrap();
        assert_eq!(cust.vm_network.as_deref(), Some("Tenant A"));
        assert_eq!(cust.provider_space.as_deref(), Some(space.id.as_str()));
        let again = w.plan();
        assert!(again.is_noop(), "second plan: {:?}", again.summary);
        assert!(again.conflicts.is_empty());
    }

    #[test]
    fn console_edits_reach_ipam() {
        let mut w = world();
        w.sync();
        let ln = w.ln;
        w.fabric.logical_networks.get_mut(&ln).unwrap().name = "Backend-Prod".into();
        let pool = w.pool;
        w.fabric.ip_pools.get_mut(&pool).unwrap().dns_servers = vec![ip("10.0.0.54")];
        let site = w.site;
        w.fabric.network_sites.get_mut(&site).unwrap().subnets[1].vlan = 99;
        let p = w.sync();
        assert_eq!(p.summary.total(Side::Ipam), [0, 4, 0], "{:?}", p.summary);
        assert_eq!(
            w.provider_space().vmm_logical_network.as_deref(),
            Some("Backend-Prod")
        );
        assert_eq!(w.range_mut().dns_servers, vec![ip("10.0.0.54")]);
        assert!(
            w.ipam
                .subnets
                .iter()
                .any(|s| s.vlan == 99 && s.vmm_logical_network.as_deref() == Some("Backend-Prod"))
        );
        assert!(w.plan().is_noop());
    }

    #[test]
    fn ipam_edits_reach_the_console() {
        let mut w = world();
        w.sync();
        w.range_mut().dns_servers = vec![ip("10.9.9.9")];
        w.range_mut().end = ip("10.1.0.150");
        let space_id = w.provider_space().id.clone();
        // An IPAM administrator adds a subnet to a new network site.
        w.ipam.subnets.push(IpamSubnet {
            id: "admin-1".into(),
            vmm_id: None,
            address_space: space_id,
            network: net("10.1.7.0/24"),
            name: "10.1.7.0/24".into(),
            network_type: String::new(),
            vmm_logical_network: Some("Backend".into()),
            network_site: Some("Backend_Dublin".into()),
            vlan: 70,
            secondary_vlan: None,
            owner: String::new(),
            custom_fields: BTreeMap::new(),
        });
        let p = w.sync();
        let pool = &w.fabric.ip_pools[&w.pool];
        assert_eq!(pool.dns_servers, vec![ip("10.9.9.9")]);
        assert_eq!(pool.range_end, ip("10.1.0.150"));
        let dublin = w
            .fabric
            .network_sites
            .values()
            .find(|s| s.name == "Backend_Dublin")
            .expect("site created");
        assert_eq!(
            dublin.subnets,
            vec![SubnetVlan {
                subnet: net("10.1.7.0/24"),
                vlan: 70,
                secondary_vlan: None
            }]
        );
        assert_eq!(dublin.host_groups, vec![w.root]);
        // The new subnet is linked so the next sync knows it.
        assert_eq!(p.summary.total(Side::Ipam)[1], 1);
        assert!(
            w.ipam
                .subnets
                .iter()
                .any(|s| s.id == "admin-1" && s.vmm_id == Some(dublin.id))
        );
        assert!(w.plan().is_noop(), "{:?}", w.plan().summary);
    }

    #[test]
    fn ipam_space_created_by_name_becomes_a_logical_network() {
        let mut w = world();
        w.sync();
        w.ipam.spaces.push(AddressSpace {
            id: "space-x".into(),
            vmm_id: None,
            name: "Storage".into(),
            kind: AddressSpaceKind::Provider,
            description: String::new(),
            vmm_logical_network: Some("Storage".into()),
            vm_network: None,
            provider_space: None,
            tenant: String::new(),
            owner: String::new(),
        });
        w.sync();
        let ln = w
            .fabric
            .logical_networks
            .values()
            .find(|l| l.name == "Storage")
            .expect("created");
        assert_eq!(
            w.ipam
                .spaces
                .iter()
                .find(|s| s.id == "space-x")
                .unwrap()
                .vmm_id,
            Some(ln.id)
        );
        assert!(w.plan().is_noop());
    }

    #[test]
    fn vm_network_changes_in_ipam_are_put_back() {
        let mut w = world();
        w.sync();
        let vmn = w.vmn;
        let space = w
            .ipam
            .spaces
            .iter_mut()
            .find(|s| s.vmm_id == Some(vmn))
            .unwrap();
        space.vm_network = Some("Hacked".into());
        let p = w.sync();
        assert!(
            p.conflicts
                .iter()
                .any(|c| c.put_back && c.kind == ObjectKind::VmNetwork && c.ipam == "Hacked")
        );
        assert!(p.console_changes.is_empty());
        let space = w
            .ipam
            .spaces
            .iter()
            .find(|s| s.vmm_id == Some(vmn))
            .unwrap();
        assert_eq!(space.vm_network.as_deref(), Some("Tenant A"));
        assert_eq!(w.fabric.vm_networks[&vmn].name, "Tenant A");
        // A VM subnet deleted in IPAM comes back.
        w.ipam.subnets.retain(|s| s.vmm_id != Some(vmn));
        w.sync();
        assert!(
            w.ipam
                .subnets
                .iter()
                .any(|s| s.vmm_id == Some(vmn) && s.network == net("192.168.0.0/24"))
        );
        assert!(w.plan().is_noop());
    }

    #[test]
    fn deleting_all_subnets_in_ipam_deletes_the_logical_network() {
        let mut w = world();
        w.sync();
        let space = w.provider_space().id.clone();
        let ids: BTreeSet<String> = w
            .ipam
            .subnets
            .iter()
            .filter(|s| s.address_space == space)
            .map(|s| s.id.clone())
            .collect();
        w.ipam.ranges.retain(|r| !ids.contains(&r.subnet));
        w.ipam.subnets.retain(|s| s.address_space != space);
        let p = w.sync();
        assert!(
            !w.fabric.logical_networks.contains_key(&w.ln),
            "{:?}",
            p.summary
        );
        assert!(w.fabric.network_sites.is_empty());
        assert!(w.fabric.ip_pools.is_empty());
        assert!(w.fabric.vm_networks.is_empty());
        assert!(w.ipam.spaces.is_empty(), "spaces left: {:?}", w.ipam.spaces);
        assert!(w.plan().is_noop());
    }

    #[test]
    fn deleting_the_vmm_logical_network_name_orphans_and_deletes_nothing() {
        let mut w = world();
        w.sync();
        w.provider_space().vmm_logical_network = None;
        let before = w.fabric.clone();
        let p = w.sync();
        assert_eq!(p.orphans, vec![w.ln]);
        assert!(p.console_changes.is_empty());
        assert!(
            p.ipam_ops
                .iter()
                .all(|o| o.verb() != crate::ipam::model::OpVerb::Delete)
        );
        assert_eq!(w.fabric, before);
        assert_eq!(w.ipam.subnets.len(), 3, "nothing deleted in IPAM");
        assert_eq!(w.ipam.ranges.len(), 1);
        // Still orphaned on the next sync, still nothing deleted.
        let p = w.sync();
        assert_eq!(p.orphans, vec![w.ln]);
        assert!(p.is_noop(), "{:?}", p.summary);
        // The administrator deletes the sites, pools, VM network and logical network in the console.
        let ln = w.ln;
        w.fabric.ip_pools.clear();
        w.fabric.network_sites.clear();
        w.fabric.vm_networks.clear();
        w.fabric.logical_networks.remove(&ln);
        let p = w.sync();
        assert!(p.orphans.is_empty());
        assert!(
            !w.ipam.spaces.iter().any(|s| s.vmm_id == Some(ln)),
            "space deleted: {:?}",
            p.summary
        );
        assert!(w.ipam.subnets.is_empty() && w.ipam.ranges.is_empty());
        assert!(w.plan().is_noop());
    }

    #[test]
    fn scope_limits_what_is_read_written_and_deleted() {
        let mut w = world();
        // A second site in Dublin on the same logical network.
        let dublin_site = Uuid::new_v4();
        w.fabric.network_sites.insert(
            dublin_site,
            NetworkSite {
                id: dublin_site,
                name: "Backend_Dublin".into(),
                logical_network: w.ln,
                host_groups: vec![w.dublin],
                subnets: vec![SubnetVlan {
                    subnet: net("10.2.0.0/24"),
                    vlan: 20,
                    secondary_vlan: None,
                }],
            },
        );
        w.service.scope = HostGroupScope::Selected([w.seattle].into_iter().collect());
        w.sync();
        assert!(
            !w.ipam
                .subnets
                .iter()
                .any(|s| s.network == net("10.2.0.0/24")),
            "Dublin pushed"
        );
        assert!(
            w.ipam
                .subnets
                .iter()
                .any(|s| s.network == net("10.1.0.0/24"))
        );
        // Someone else's subnet for the Dublin site in the same space: never touched.
        let space = w.provider_space().id.clone();
        w.ipam.subnets.push(IpamSubnet {
            id: "other".into(),
            vmm_id: Some(dublin_site),
            address_space: space.clone(),
            network: net("10.2.0.0/24"),
            name: String::new(),
            network_type: String::new(),
            vmm_logical_network: Some("Backend".into()),
            network_site: Some("Backend_Dublin-renamed".into()),
            vlan: 21,
            secondary_vlan: None,
            owner: String::new(),
            custom_fields: BTreeMap::new(),
        });
        let p = w.sync();
        assert!(p.is_noop(), "{:?}", p.summary);
        assert_eq!(w.fabric.network_sites[&dublin_site].subnets[0].vlan, 20);
        // Deleting every in-scope subnet in IPAM deletes only the in-scope site, not the network.
        w.ipam.ranges.clear();
        w.ipam.subnets.retain(|s| s.id == "other");
        w.sync();
        assert!(w.fabric.logical_networks.contains_key(&w.ln));
        assert!(w.fabric.network_sites.contains_key(&dublin_site));
        assert!(!w.fabric.network_sites.contains_key(&w.site));
        assert!(w.ipam.subnets.iter().any(|s| s.id == "other"));
    }

    #[test]
    fn conflicts_are_reported_then_resolved_either_way() {
        for resolution in [Resolution::KeepConsole, Resolution::TakeIpam] {
            let mut w = world();
            w.sync();
            let pool = w.pool;
            w.fabric.ip_pools.get_mut(&pool).unwrap().dns_suffix = "console.contoso.com".into();
            w.range_mut().dns_suffix = "ipam.contoso.com".into();
            let p = w.sync();
            assert_eq!(p.conflicts.len(), 1);
            let c = &p.conflicts[0];
            assert_eq!(c.field, "DNS suffix");
            assert_eq!(
                (c.base.as_str(), c.console.as_str(), c.ipam.as_str()),
                (
                    "corp.contoso.com",
                    "console.contoso.com",
                    "ipam.contoso.com"
                )
            );
            // Unresolved: each side keeps its value, and it is reported again.
            assert_eq!(w.plan().conflicts.len(), 1);
            w.resolutions.insert(c.key.clone(), resolution);
            w.sync();
            let want = match resolution {
                Resolution::KeepConsole => "console.contoso.com",
                Resolution::TakeIpam => "ipam.contoso.com",
            };
            assert_eq!(w.fabric.ip_pools[&pool].dns_suffix, want);
            assert_eq!(w.range_mut().dns_suffix, want);
            w.resolutions.clear();
            assert!(w.plan().is_noop());
        }
    }

    #[test]
    fn same_change_on_both_sides_converges() {
        let mut w = world();
        w.sync();
        let pool = w.pool;
        w.fabric.ip_pools.get_mut(&pool).unwrap().dns_suffix = "NEW.contoso.com.".into();
        w.range_mut().dns_suffix = "new.contoso.com".into();
        let p = w.sync();
        assert!(p.conflicts.is_empty());
        assert!(w.plan().is_noop());
    }

    #[test]
    fn objects_the_console_did_not_create_are_never_deleted() {
        let mut w = world();
        w.sync();
        w.ipam.spaces.push(AddressSpace {
            id: "hand-made".into(),
            vmm_id: None,
            name: "Lab".into(),
            kind: AddressSpaceKind::Provider,
            description: String::new(),
            vmm_logical_network: None,
            vm_network: None,
            provider_space: None,
            tenant: String::new(),
            owner: String::new(),
        });
        let p = w.sync();
        assert!(p.is_noop());
        assert!(w.ipam.spaces.iter().any(|s| s.id == "hand-made"));
    }

    #[test]
    fn console_deletions_reach_ipam_and_incomplete_reads_delete_nothing() {
        let mut w = world();
        w.sync();
        let pool = w.pool;
        w.fabric.ip_pools.remove(&pool);
        let p = plan(&PlanInput {
            fabric: &w.fabric,
            service: &w.service,
            ipam: &w.ipam,
            ipam_complete: false,
            base: &w.base,
            resolutions: &w.resolutions,
        });
        assert!(p.ipam_ops.is_empty());
        let p = w.sync();
        assert_eq!(p.summary.total(Side::Ipam), [0, 0, 1]);
        assert!(w.ipam.ranges.is_empty());
    }

    #[test]
    fn ipam_range_deleted_deletes_the_pool() {
        let mut w = world();
        w.sync();
        w.ipam.ranges.clear();
        w.sync();
        assert!(w.fabric.ip_pools.is_empty());
        assert!(w.plan().is_noop());
    }

    #[test]
    fn pools_on_vm_subnets_go_to_ipam_only() {
        let mut w = world();
        let id = Uuid::new_v4();
        let mut p = pool(
            id,
            w.site,
            "192.168.0.0/24",
            "192.168.0.10",
            "192.168.0.100",
        );
        p.scope = PoolScope::VmSubnet {
            vm_network: w.vmn,
            subnet: net("192.168.0.0/24"),
        };
        p.gateways = vec![Gateway::Automatic {
            address: ip("192.168.0.1"),
        }];
        p.reserved.clear();
        w.fabric.ip_pools.insert(id, p);
        w.sync();
        let vmn = w.vmn;
        let customer: Vec<String> = w
            .ipam
            .subnets
            .iter()
            .filter(|s| s.vmm_id == Some(vmn))
            .map(|s| s.id.clone())
            .collect();
        let range = w
            .ipam
            .ranges
            .iter()
            .find(|r| r.vmm_id == Some(id))
            .expect("range created")
            .clone();
        assert!(customer.contains(&range.subnet));
        assert_eq!(range.end, ip("192.168.0.100"));
        assert!(w.plan().is_noop(), "{:?}", w.plan().summary);
        // An IPAM-side edit is reported and put back.
        w.ipam
            .ranges
            .iter_mut()
            .find(|r| r.vmm_id == Some(id))
            .unwrap()
            .end = ip("192.168.0.50");
        let p = w.sync();
        assert!(p.conflicts.iter().any(|c| c.put_back && c.object == id));
        assert!(p.console_changes.is_empty());
        assert_eq!(
            w.ipam
                .ranges
                .iter()
                .find(|r| r.vmm_id == Some(id))
                .unwrap()
                .end,
            ip("192.168.0.100")
        );
        // A console edit goes out; a console delete removes the range.
        w.fabric.ip_pools.get_mut(&id).unwrap().range_end = ip("192.168.0.120");
        w.sync();
        assert_eq!(
            w.ipam
                .ranges
                .iter()
                .find(|r| r.vmm_id == Some(id))
                .unwrap()
                .end,
            ip("192.168.0.120")
        );
        w.fabric.ip_pools.remove(&id);
        w.sync();
        assert!(!w.ipam.ranges.iter().any(|r| r.vmm_id == Some(id)));
        assert!(w.plan().is_noop());
    }

    #[test]
    fn site_rename_in_ipam_renames_the_console_site() {
        let mut w = world();
        w.sync();
        for s in w
            .ipam
            .subnets
            .iter_mut()
            .filter(|s| s.network_site.as_deref() == Some("Backend_Seattle"))
        {
            s.network_site = Some("Backend_SEA".into());
        }
        w.sync();
        assert_eq!(w.fabric.network_sites[&w.site].name, "Backend_SEA");
        assert!(w.plan().is_noop());
    }
}
