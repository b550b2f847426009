//! Both sides projected onto console identities in one normalised shape, so they can be compared
//! field by field.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ipnet::IpNet;
use uuid::Uuid;

use super::derived_id;
use crate::fabric::model::{
    Fabric, FabricKind, HostGroupScope, Id, LogicalNetwork, NetworkSite, PoolScope, VmNetwork,
};
use crate::ipam::model::{AddressSpace, AddressSpaceKind, IpamId, IpamSnapshot, IpamSubnet};
use crate::sync::normal::*;

/// A console pool and an IPAM range carry the same settings under the same names, but for
/// their bounds.
macro_rules! pool_val {
    ($p:expr, $ln:expr, $subnet:expr, $start:ident, $end:ident) => {
        PoolVal {
            ln: $ln,
            subnet: $subnet.trunc(),
            name: $p.name.clone(),
            description: $p.description.clone(),
            start: $p.$start,
            end: $p.$end,
            settings: $p.settings.normalized(),
        }
    };
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
            v.pools.insert(
                p.id,
                pool_val!(p, s.logical_network, *subnet, range_start, range_end),
            );
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
            v.vm_pools.insert(
                p.id,
                pool_val!(p, *vm_network, *subnet, range_start, range_end),
            );
        }
    }
    ConsoleView {
        values: v,
        partly_out_of_scope: partly_out,
    }
}

/// Both sides of one service, the IPAM side linked to the console's identities.
pub fn project_both(
    fabric: &Fabric,
    scope: &HostGroupScope,
    ipam: &IpamSnapshot,
    base: &BaseState,
) -> (ConsoleView, IpamView) {
    let cview = project_console(fabric, scope, base);
    let iview = project_ipam(ipam, fabric, &cview, base);
    (cview, iview)
}

#[derive(Debug, Default)]
pub struct IpamView {
    pub values: Normalized,
    pub ids: IpamIds,
    /// Logical networks whose VMM Logical Network link was deleted on the IPAM server
    /// (space gone, or its VMM Logical Network name cleared).
    pub broken_links: BTreeSet<Id>,
    /// Ids of IPAM objects that carry the console's identity (created or linked by it).
    pub linked: BTreeSet<IpamId>,
}

fn fold(s: &str) -> String {
    s.trim().to_lowercase()
}

/// The console's objects of kind `T` by their folded name, for linking IPAM names to them.
fn ids_by_folded_name<T: FabricKind>(console: &Fabric) -> HashMap<String, Id> {
    T::all(console)
        .values()
        .map(|o| (fold(o.name()), o.id()))
        .collect()
}

/// An id map turned around: the console key of each IPAM id.
fn by_ipam_id<K: Copy>(ids: &BTreeMap<K, IpamId>) -> HashMap<&str, K> {
    ids.iter().map(|(k, id)| (id.as_str(), *k)).collect()
}

/// Counts `id` as linked when its object carries the console's identity.
fn note_linked(linked: &mut BTreeSet<IpamId>, vmm_id: Option<Id>, id: &IpamId) {
    if vmm_id.is_some() {
        linked.insert(id.clone());
    }
}

pub fn project_ipam(
    snap: &IpamSnapshot,
    console: &Fabric,
    console_view: &ConsoleView,
    base: &BaseState,
) -> IpamView {
    let side = IpamSide {
        snap,
        console,
        console_view,
        base,
    };
    let mut out = IpamView::default();
    let space_ln = side.provider_spaces(&mut out);
    let subnet_key_by_id = side.provider_subnets(&space_ln, &mut out);
    side.ranges_to_pools(
        &subnet_key_by_id,
        &console_view.values.pools,
        &mut out.values.pools,
        &mut out.ids.ranges,
        &mut out.linked,
    );
    side.customer_spaces(&space_ln, &mut out);
    out
}

/// What the IPAM projection reads.
#[derive(Clone, Copy)]
struct IpamSide<'a> {
    snap: &'a IpamSnapshot,
    console: &'a Fabric,
    console_view: &'a ConsoleView,
    base: &'a BaseState,
}

/// An IPAM subnet inside a linked provider space.
struct Seen<'a> {
    subnet: &'a IpamSubnet,
    ln: Id,
    cidr: IpNet,
}

impl<'a> IpamSide<'a> {
    /// Provider spaces → logical networks; returns each linked space's logical network.
    fn provider_spaces(&self, out: &mut IpamView) -> HashMap<&'a str, Id> {
        let ln_by_name = ids_by_folded_name::<LogicalNetwork>(self.console);
        let base_space_owner = by_ipam_id(&self.base.ids.spaces);
        let out_of_scope_ln = |ln: &Id| {
            self.console.logical_networks.contains_key(ln)
                && !self.console_view.values.lns.contains_key(ln)
        };

        // Provider spaces → logical networks.
        let mut space_ln: HashMap<&'a str, Id> = HashMap::new();
        let mut claimed: BTreeSet<Id> = BTreeSet::new();
        let mut providers: Vec<&AddressSpace> = self
            .snap
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
            note_linked(&mut out.linked, s.vmm_id, &s.id);
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
        for ln in self.base.values.lns.keys() {
            if !out.ids.spaces.contains_key(ln) && !out_of_scope_ln(ln) {
                out.broken_links.insert(*ln);
            }
        }
        space_ln
    }

    /// The IPAM subnets of linked provider spaces that are not a console site outside the scope.
    fn seen_subnets(&self, space_ln: &HashMap<&str, Id>) -> Vec<Seen<'a>> {
        let IpamSide {
            snap,
            console,
            console_view,
            ..
        } = *self;
        let console_sites = &console.network_sites;
        let mut seen: Vec<Seen<'a>> = Vec::new();
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
        seen
    }

    /// A site's name as last agreed, else as the console has it.
    fn known_site_name(&self, site: &Id) -> Option<String> {
        self.base
            .values
            .sites
            .get(site)
            .map(|s| s.name.clone())
            .or_else(|| self.console.network_sites.get(site).map(|s| s.name.clone()))
    }

    /// The sites the IPAM subnets link to, with their IPAM-side names, and every site in scope
    /// by (logical network, folded name).
    fn linked_sites(&self, seen: &[Seen]) -> (BTreeMap<Id, SiteVal>, HashMap<(Id, String), Id>) {
        let console_view = self.console_view;
        let site_name_known = |site: &Id| self.known_site_name(site);
        // The IPAM-side name of each linked site: its subnets' Network Site value when they agree.
        let mut names_by_site: HashMap<Id, BTreeSet<String>> = HashMap::new();
        for s in seen {
            if let Some(site) = s.subnet.vmm_id {
                let n = s.subnet.network_site.clone().unwrap_or_default();
                names_by_site
                    .entry(site)
                    .or_default()
                    .insert(n.trim().to_string());
            }
        }
        let mut site_by_name: HashMap<(Id, String), Id> = HashMap::new();
        for s in console_view.values.sites.iter() {
            site_by_name.insert((s.1.ln, fold(&s.1.name)), *s.0);
        }
        let mut site_vals: BTreeMap<Id, SiteVal> = BTreeMap::new();
        let mut ln_of_site: HashMap<Id, Id> = HashMap::new();
        for s in seen {
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
        (site_vals, site_by_name)
    }

    /// Provider subnets → (logical network, cidr), sites by vmm_id or Network Site name;
    /// returns the subnet key of each IPAM subnet id.
    fn provider_subnets(
        &self,
        space_ln: &HashMap<&str, Id>,
        out: &mut IpamView,
    ) -> HashMap<&'a str, SubnetKey> {
        let site_name_known = |site: &Id| self.known_site_name(site);
        let mut subnet_key_by_id: HashMap<&'a str, SubnetKey> = HashMap::new();
        let seen = self.seen_subnets(space_ln);
        let (mut site_vals, mut site_by_name) = self.linked_sites(&seen);
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
                    let key = (s.ln, fold(&wanted));
                    match site_by_name.get(&key) {
                        Some(id) => *id,
                        None => {
                            let id = derived_id(&format!("site:{}:{}", key.0, key.1));
                            site_by_name.insert(key, id);
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
            note_linked(&mut out.linked, s.subnet.vmm_id, &s.subnet.id);
            subnet_key_by_id.insert(s.subnet.id.as_str(), key);
        }
        // Only sites that still hold a subnet exist on the IPAM side.
        let used: BTreeSet<Id> = out.values.subnets.values().map(|s| s.site).collect();
        site_vals.retain(|id, _| used.contains(id));
        out.values.sites = site_vals;
        subnet_key_by_id
    }

    /// Ranges in the given subnets → pools, on the network that owns each subnet; `in_scope`
    /// is the console's pools of that kind in the service's scope.
    fn ranges_to_pools(
        &self,
        subnet_of: &HashMap<&str, SubnetKey>,
        in_scope: &BTreeMap<Id, PoolVal>,
        pools: &mut BTreeMap<Id, PoolVal>,
        ids: &mut BTreeMap<Id, IpamId>,
        linked: &mut BTreeSet<IpamId>,
    ) {
        for r in &self.snap.ranges {
            let Some(&(owner, cidr)) = subnet_of.get(r.subnet.as_str()) else {
                continue;
            };
            let pool = r
                .vmm_id
                .unwrap_or_else(|| derived_id(&format!("range:{}", r.id)));
            if self.console.ip_pools.contains_key(&pool) && !in_scope.contains_key(&pool) {
                // A pool of this console outside the scope.
                continue;
            }
            pools.insert(pool, pool_val!(r, owner, cidr, start, end));
            ids.insert(pool, r.id.clone());
            note_linked(linked, r.vmm_id, &r.id);
        }
    }

    /// Customer spaces → VM networks (console → IPAM only: only ones the console created or
    /// names), their subnets, and their ranges → pools on VM subnets.
    fn customer_spaces(&self, space_ln: &HashMap<&str, Id>, out: &mut IpamView) {
        // Customer spaces → VM networks (console → IPAM only: only ones the console created or names).
        let vmn_by_name = ids_by_folded_name::<VmNetwork>(self.console);
        let mut vmn_space: HashMap<&str, Id> = HashMap::new();
        let base_vmn_of_space = by_ipam_id(&self.base.ids.vmn_spaces);
        for s in self
            .snap
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
            if self.console.vm_networks.contains_key(&vmn)
                && !self.console_view.values.vmns.contains_key(&vmn)
            {
                continue;
            }
            let ln = s
                .provider_space
                .as_ref()
                .and_then(|p| space_ln.get(p.as_str()).copied())
                .or_else(|| {
                    self.console
                        .vm_networks
                        .get(&vmn)
                        .map(|v| v.logical_network)
                })
                .unwrap_or(Uuid::nil());
            vmn_space.insert(s.id.as_str(), vmn);
            out.ids.vmn_spaces.insert(vmn, s.id.clone());
            note_linked(&mut out.linked, s.vmm_id, &s.id);
            out.values.vmns.insert(
                vmn,
                VmnVal {
                    ln,
                    name: s.vm_network.clone().unwrap_or_else(|| s.name.clone()),
                    subnets: BTreeSet::new(),
                },
            );
        }
        for sn in &self.snap.subnets {
            if let Some(&vmn) = vmn_space.get(sn.address_space.as_str())
                && let Some(v) = out.values.vmns.get_mut(&vmn)
            {
                let cidr = sn.network.trunc();
                v.subnets.insert(cidr);
                out.ids.vmn_subnets.insert((vmn, cidr), sn.id.clone());
                note_linked(&mut out.linked, sn.vmm_id, &sn.id);
            }
        }
        // Ranges in customer subnets → pools on VM subnets.
        let vm_subnet_of = by_ipam_id(&out.ids.vmn_subnets);
        self.ranges_to_pools(
            &vm_subnet_of,
            &self.console_view.values.vm_pools,
            &mut out.values.vm_pools,
            &mut out.ids.ranges,
            &mut out.linked,
        );
    }
}
