//! The side-by-side view's rows: the console's fabric on the left, the IPAM server's objects on
//! the right, aligned by identity, each with a status.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::normal::*;
use super::plan::{Conflict, SyncPlan};
use super::plan::{FieldText, project_both};
use crate::fabric::model::{Fabric, Id, NetworkService, ObjectKind, PoolScope};
use crate::ipam::model::IpamSnapshot;

crate::labelled_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    pub enum RowStatus {
        InSync => "In sync",
        OnlyInConsole => "Only in console",
        OnlyInIpam => "Only in IPAM",
        Differs => "Differs",
        Conflict => "Conflict",
        Orphaned => "Orphaned",
        OutOfScope => "Out of scope",
    }
}

/// The kind of a row, headed by the seed's mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RowKind {
    LogicalNetwork,
    NetworkSite,
    Subnet,
    Pool,
    VmNetwork,
    /// A static IP address pool on a VM subnet, under its VM network.
    VmPool,
}

impl RowKind {
    /// (console name, IPAM name) as the seed's table gives them.
    pub fn mapping(self) -> (&'static str, &'static str) {
        match self {
            RowKind::LogicalNetwork => (
                "Logical network",
                "Provider IP Address Space · VMM Logical Network",
            ),
            RowKind::NetworkSite => ("Network site", "Network Site"),
            RowKind::Subnet => ("IP address subnet", "IP Address Subnet"),
            RowKind::Pool | RowKind::VmPool => ("IP address pool", "IP Address Range"),
            RowKind::VmNetwork => ("VM network", "Customer IP Address Space · VM Network"),
        }
    }
    pub fn depth(self) -> u8 {
        match self {
            RowKind::LogicalNetwork | RowKind::VmNetwork => 0,
            RowKind::NetworkSite | RowKind::VmPool => 1,
            RowKind::Subnet => 2,
            RowKind::Pool => 3,
        }
    }
}

/// One side of a row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    pub title: String,
    pub detail: String,
    pub fields: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompareRow {
    pub kind: RowKind,
    /// The console object (for subnets: the site), for dialogs and conflict resolution.
    pub object: Id,
    pub console: Option<Cell>,
    pub ipam: Option<Cell>,
    pub status: RowStatus,
    /// Labels of the fields whose values differ.
    pub changed: Vec<String>,
    pub conflicts: Vec<Conflict>,
    /// Lower-cased text of both sides, for the search box.
    pub search: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompareView {
    pub rows: Vec<CompareRow>,
    pub counts: BTreeMap<RowStatus, usize>,
}

impl CompareView {
    /// Indices of the rows that pass the filters, in order.
    pub fn filter(&self, statuses: &BTreeSet<RowStatus>, text: &str) -> Vec<usize> {
        let t = text.trim().to_lowercase();
        self.rows
            .iter()
            .enumerate()
            .filter(|(_, r)| statuses.is_empty() || statuses.contains(&r.status))
            .filter(|(_, r)| t.is_empty() || r.search.contains(&t))
            .map(|(i, _)| i)
            .collect()
    }
}

/// A cell titled by its name, with one more field that is also its detail line.
fn named_cell(name: &str, label: &str, detail: String) -> Cell {
    Cell {
        title: name.to_string(),
        detail: detail.clone(),
        fields: vec![("Name".into(), name.to_string()), (label.into(), detail)],
    }
}

fn ln_cell(v: &LnVal) -> Cell {
    named_cell(&v.name, "Description", v.description.clone())
}

fn site_cell(v: &SiteVal) -> Cell {
    Cell {
        title: v.name.clone(),
        detail: String::new(),
        fields: vec![("Name".into(), v.name.clone())],
    }
}

fn subnet_cell(net: &ipnet::IpNet, v: &SubnetVal, site_name: &str) -> Cell {
    let mut detail = format!("VLAN {}", v.vlan);
    if let Some(s) = v.secondary_vlan {
        detail.push_str(&format!(", secondary VLAN {s}"));
    }
    Cell {
        title: net.to_string(),
        detail,
        fields: vec![
            ("Network site".into(), site_name.to_string()),
            ("VLAN".into(), v.vlan.text()),
            ("Secondary VLAN".into(), v.secondary_vlan.text()),
        ],
    }
}

fn pool_cell(v: &PoolVal) -> Cell {
    Cell {
        title: v.name.clone(),
        detail: format!("{} – {}", v.start, v.end),
        fields: vec![
            ("Subnet".into(), v.subnet.text()),
            ("Name".into(), v.name.clone()),
            ("Description".into(), v.description.clone()),
            ("Range start".into(), v.start.text()),
            ("Range end".into(), v.end.text()),
            ("Reserved addresses".into(), v.settings.reserved.text()),
            ("VIP addresses".into(), v.settings.vips.text()),
            ("Default gateways".into(), v.settings.gateways.text()),
            ("DNS servers".into(), v.settings.dns_servers.text()),
            ("DNS suffix".into(), v.settings.dns_suffix.clone()),
            (
                "DNS search suffixes".into(),
                v.settings.dns_search_suffixes.text(),
            ),
            ("WINS servers".into(), v.settings.wins_servers.text()),
            (
                "NetBIOS over TCP/IP".into(),
                v.settings.netbios_enabled.text(),
            ),
        ],
    }
}

fn vmn_cell(v: &VmnVal) -> Cell {
    named_cell(&v.name, "VM subnets", v.subnets.text())
}

fn changed(c: Option<&Cell>, i: Option<&Cell>) -> Vec<String> {
    match (c, i) {
        (Some(c), Some(i)) => c
            .fields
            .iter()
            .zip(&i.fields)
            .filter(|(a, b)| a.1 != b.1)
            .map(|(a, _)| a.0.clone())
            .collect(),
        _ => Vec::new(),
    }
}

struct Builder<'a> {
    rows: Vec<CompareRow>,
    conflicts: &'a [Conflict],
    /// The conflicts' keys as text, matched against each row's key part.
    conflict_keys: Vec<String>,
    orphans: &'a BTreeSet<Id>,
}

impl Builder<'_> {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        kind: RowKind,
        object: Id,
        key_part: &str,
        ln: Option<Id>,
        console: Option<Cell>,
        ipam: Option<Cell>,
        out_of_scope: bool,
    ) {
        let conflicts: Vec<Conflict> = self
            .conflicts
            .iter()
            .zip(&self.conflict_keys)
            .filter(|(c, key)| !c.put_back && key.contains(key_part))
            .map(|(c, _)| c.clone())
            .collect();
        let changed = changed(console.as_ref(), ipam.as_ref());
        let status = if out_of_scope {
            RowStatus::OutOfScope
        } else if ln.is_some_and(|l| self.orphans.contains(&l)) {
            RowStatus::Orphaned
        } else if !conflicts.is_empty() {
            RowStatus::Conflict
        } else {
            match (&console, &ipam) {
                (Some(_), None) => RowStatus::OnlyInConsole,
                (None, Some(_)) => RowStatus::OnlyInIpam,
                _ if changed.is_empty() => RowStatus::InSync,
                _ => RowStatus::Differs,
            }
        };
        let mut search = String::new();
        for c in [&console, &ipam].into_iter().flatten() {
            search.push_str(&c.title.to_lowercase());
            search.push(' ');
            search.push_str(&c.detail.to_lowercase());
            search.push(' ');
        }
        self.rows.push(CompareRow {
            kind,
            object,
            console,
            ipam,
            status,
            changed,
            conflicts,
            search,
        });
    }
}

/// Build the side-by-side rows for one service.
pub fn compare(
    fabric: &Fabric,
    service: &NetworkService,
    ipam: &IpamSnapshot,
    base: &BaseState,
    plan: &SyncPlan,
) -> CompareView {
    let (cview, iview) = project_both(fabric, &service.scope, ipam, base);
    let c = &cview.values;
    let i = &iview.values;
    let orphans: BTreeSet<Id> = plan.orphans.iter().copied().collect();
    let mut b = Builder {
        rows: Vec::new(),
        conflicts: &plan.conflicts,
        conflict_keys: plan.conflicts.iter().map(|c| c.key.to_string()).collect(),
        orphans: &orphans,
    };

    let name_of = |id: &Id| {
        c.lns
            .get(id)
            .or(i.lns.get(id))
            .map(|l| l.name.to_lowercase())
            .or_else(|| {
                fabric
                    .logical_networks
                    .get(id)
                    .map(|l| l.name.to_lowercase())
            })
            .unwrap_or_default()
    };
    let mut lns: Vec<Id> = c
        .lns
        .keys()
        .chain(i.lns.keys())
        .chain(iview.broken_links.iter())
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    // Logical networks outside the scope are listed too, marked so.
    let out_lns: BTreeSet<Id> = fabric
        .logical_networks
        .keys()
        .filter(|id| !c.lns.contains_key(id) && !i.lns.contains_key(id))
        .copied()
        .collect();
    lns.extend(out_lns.iter().copied());
    // Children by parent, built once, so each network, site and subnet finds its own rows
    // without scanning every object (the view of a 100k-object fabric stays linear).
    let mut sites_by_ln: HashMap<Id, Vec<(Id, &SiteVal)>> = HashMap::new();
    for (id, s) in c.sites.iter().chain(i.sites.iter()) {
        sites_by_ln.entry(s.ln).or_default().push((*id, s));
    }
    let mut fabric_sites_by_ln: HashMap<Id, Vec<&crate::fabric::model::NetworkSite>> =
        HashMap::new();
    for s in fabric.network_sites.values() {
        fabric_sites_by_ln
            .entry(s.logical_network)
            .or_default()
            .push(s);
    }
    let mut nets_by_site: HashMap<Id, Vec<ipnet::IpNet>> = HashMap::new();
    for ((_, net), v) in c.subnets.iter().chain(i.subnets.iter()) {
        nets_by_site.entry(v.site).or_default().push(*net);
    }
    let mut pools_by_subnet: HashMap<(Id, ipnet::IpNet), Vec<(Id, &PoolVal)>> = HashMap::new();
    for (id, p) in c.pools.iter().chain(i.pools.iter()) {
        pools_by_subnet
            .entry((p.ln, p.subnet))
            .or_default()
            .push((*id, p));
    }
    let mut fabric_pools_by_site: HashMap<Id, Vec<&crate::fabric::model::IpPool>> = HashMap::new();
    for p in fabric.ip_pools.values() {
        if let PoolScope::Site { site, .. } = p.scope {
            fabric_pools_by_site.entry(site).or_default().push(p);
        }
    }
    lns.sort_by_key(|id| (out_lns.contains(id), name_of(id)));
    for ln in lns {
        let out = out_lns.contains(&ln);
        let cc = c.lns.get(&ln).map(ln_cell).or_else(|| {
            out.then(|| {
                fabric.logical_networks.get(&ln).map(|l| {
                    ln_cell(&LnVal {
                        name: l.name.clone(),
                        description: l.description.clone(),
                    })
                })
            })
            .flatten()
        });
        let ic = i.lns.get(&ln).map(ln_cell);
        b.push(
            RowKind::LogicalNetwork,
            ln,
            &format!("logical_network:{ln}"),
            Some(ln),
            cc,
            ic,
            out,
        );
        // Sites of this network: in scope from both sides, and the console's out-of-scope ones.
        let mut sites: BTreeMap<String, (Id, bool)> = BTreeMap::new();
        for (id, s) in sites_by_ln.get(&ln).into_iter().flatten() {
            sites
                .entry(format!("{}{id}", s.name.to_lowercase()))
                .or_insert((*id, false));
        }
        for s in fabric_sites_by_ln
            .get(&ln)
            .into_iter()
            .flatten()
            .filter(|s| !c.sites.contains_key(&s.id) && !i.sites.contains_key(&s.id))
        {
            sites.insert(format!("~{}{}", s.name.to_lowercase(), s.id), (s.id, true));
        }
        for (_, (site, site_out)) in sites {
            let out = out || site_out;
            let site_name = c
                .sites
                .get(&site)
                .or(i.sites.get(&site))
                .map(|s| s.name.clone())
                .or_else(|| fabric.network_sites.get(&site).map(|s| s.name.clone()))
                .unwrap_or_default();
            let cc = c.sites.get(&site).map(site_cell).or_else(|| {
                out.then(|| {
                    site_cell(&SiteVal {
                        ln,
                        name: site_name.clone(),
                    })
                })
            });
            let ic = i.sites.get(&site).map(site_cell);
            b.push(
                RowKind::NetworkSite,
                site,
                &format!("network_site:{site}"),
                Some(ln),
                cc,
                ic,
                out,
            );
            let mut nets: BTreeSet<ipnet::IpNet> = BTreeSet::new();
            nets.extend(nets_by_site.get(&site).into_iter().flatten().copied());
            if out && let Some(fs) = fabric.network_sites.get(&site) {
                nets.extend(fs.subnets.iter().map(|s| s.subnet));
            }
            for net in nets {
                let key = (ln, net);
                let cs = c.subnets.get(&key).filter(|v| v.site == site);
                let is = i.subnets.get(&key).filter(|v| v.site == site);
                let site_of = |v: &SubnetVal| {
                    c.sites
                        .get(&v.site)
                        .or(i.sites.get(&v.site))
                        .map(|s| s.name.clone())
                        .unwrap_or_default()
                };
                let cc = cs.map(|v| subnet_cell(&net, v, &site_of(v))).or_else(|| {
                    out.then(|| {
                        fabric
                            .network_sites
                            .get(&site)
                            .and_then(|fs| fs.subnets.iter().find(|s| s.subnet == net))
                            .map(|s| {
                                subnet_cell(
                                    &net,
                                    &SubnetVal {
                                        site,
                                        vlan: s.vlan,
                                        secondary_vlan: s.secondary_vlan,
                                    },
                                    &site_name,
                                )
                            })
                    })
                    .flatten()
                });
                let ic = is.map(|v| subnet_cell(&net, v, &site_of(v)));
                b.push(
                    RowKind::Subnet,
                    site,
                    &format!("subnet:{ln}:{net}"),
                    Some(ln),
                    cc,
                    ic,
                    out,
                );
                let mut pools: BTreeMap<String, Id> = BTreeMap::new();
                for (id, p) in pools_by_subnet.get(&(ln, net)).into_iter().flatten() {
                    pools
                        .entry(format!("{}{id}", p.name.to_lowercase()))
                        .or_insert(*id);
                }
                if out {
                    for p in fabric_pools_by_site
                        .get(&site)
                        .into_iter()
                        .flatten()
                        .filter(
                            |p| matches!(p.scope, PoolScope::Site { subnet, .. } if subnet == net),
                        )
                    {
                        pools
                            .entry(format!("{}{}", p.name.to_lowercase(), p.id))
                            .or_insert(p.id);
                    }
                }
                for (_, pool) in pools {
                    let cc = c.pools.get(&pool).map(pool_cell).or_else(|| {
                        out.then(|| {
                            fabric.ip_pools.get(&pool).map(|p| Cell {
                                title: p.name.clone(),
                                detail: format!("{} – {}", p.range_start, p.range_end),
                                fields: vec![],
                            })
                        })
                        .flatten()
                    });
                    let ic = i.pools.get(&pool).map(pool_cell);
                    b.push(
                        RowKind::Pool,
                        pool,
                        &format!("ip_pool:{pool}"),
                        Some(ln),
                        cc,
                        ic,
                        out,
                    );
                }
            }
        }
    }
    let mut vmns: Vec<Id> = c
        .vmns
        .keys()
        .chain(i.vmns.keys())
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    vmns.sort_by_key(|id| {
        c.vmns
            .get(id)
            .or(i.vmns.get(id))
            .map(|v| v.name.to_lowercase())
            .unwrap_or_default()
    });
    let mut vm_pools: HashMap<Id, BTreeMap<String, Id>> = HashMap::new();
    for (id, p) in c.vm_pools.iter().chain(i.vm_pools.iter()) {
        vm_pools
            .entry(p.ln)
            .or_default()
            .entry(format!("{}{id}", p.name.to_lowercase()))
            .or_insert(*id);
    }
    for vmn in vmns {
        let cc = c.vmns.get(&vmn).map(vmn_cell);
        let ic = i.vmns.get(&vmn).map(vmn_cell);
        let ln = c.vmns.get(&vmn).map(|v| v.ln);
        b.push(
            RowKind::VmNetwork,
            vmn,
            &format!("vm_network:{vmn}"),
            ln,
            cc,
            ic,
            false,
        );
        for pool in vm_pools.get(&vmn).into_iter().flat_map(|m| m.values()) {
            let cc = c.vm_pools.get(pool).map(pool_cell);
            let ic = i.vm_pools.get(pool).map(pool_cell);
            b.push(
                RowKind::VmPool,
                *pool,
                &format!("ip_pool:{pool}"),
                ln,
                cc,
                ic,
                false,
            );
        }
    }
    let mut counts = BTreeMap::new();
    for r in &b.rows {
        *counts.entry(r.status).or_insert(0) += 1;
    }
    let _ = ObjectKind::Subnet;
    CompareView {
        rows: b.rows,
        counts,
    }
}
