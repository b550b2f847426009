//! Subnet overlaps: a site's subnet must not overlap a subnet of any site that shares its host
//! group, an ancestor or a descendant (across logical networks too).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

use ipnet::IpNet;

use super::sites::site_problem;
use super::{Field, Rule, ValidationError, View};
use crate::fabric::model::{HostGroup, Id, LogicalNetwork, NetworkSite};

/// Matches per subnet are capped so a fabric full of one duplicated subnet stays linear.
pub(super) const MAX_OVERLAPS_PER_SUBNET: usize = 8;

/// Address family and position of an address, comparable across the whole u128 range.
pub(super) fn addr_key(ip: IpAddr) -> (u8, u128) {
    match ip {
        IpAddr::V4(a) => (4, u32::from(a) as u128),
        IpAddr::V6(a) => (6, u128::from(a)),
    }
}

/// (family, network address, prefix length) of a subnet, after truncation.
pub(super) fn net_key(net: IpNet) -> (u8, u128, u8) {
    let t = net.trunc();
    let (fam, start) = addr_key(t.network());
    (fam, start, t.prefix_len())
}

pub(super) fn net_end(net: IpNet) -> u128 {
    addr_key(net.trunc().broadcast()).1
}

pub(super) fn family_name(fam: u8) -> &'static str {
    if fam == 4 { "IPv4" } else { "IPv6" }
}

fn overlap_error(
    s: &NetworkSite,
    subnet: IpNet,
    other_site: &NetworkSite,
    other_subnet: IpNet,
    other_network: Option<&LogicalNetwork>,
) -> ValidationError {
    let message = if other_site.id == s.id {
        format!(
            "Subnet {subnet} overlaps subnet {other_subnet} of the same network site. Remove one of them or choose subnets that do not overlap."
        )
    } else {
        let network = other_network
            .map(|n| format!(" (logical network \"{}\")", n.name))
            .unwrap_or_default();
        format!(
            "Subnet {subnet} overlaps subnet {other_subnet} of network site \"{}\"{network}, which is used in the same host group or one above or below it. Choose a subnet that does not overlap.",
            other_site.name
        )
    };
    site_problem(s, Field::Subnet, Rule::SubnetOverlap, message)
}

/// Subnets of the sites visible in one branch of the host group tree, for containment queries.
/// Two CIDR blocks overlap exactly when one contains the other.
#[derive(Default)]
struct SubnetSet {
    by_net: BTreeMap<(u8, u128, u8), Vec<(Id, usize)>>,
    prefix_counts: HashMap<(u8, u8), usize>,
}

impl SubnetSet {
    fn insert(&mut self, net: IpNet, entry: (Id, usize)) {
        let key = net_key(net);
        self.by_net.entry(key).or_default().push(entry);
        *self.prefix_counts.entry((key.0, key.2)).or_default() += 1;
    }

    /// Entries leave in the reverse order they came in (depth-first), so the last one is it.
    fn remove(&mut self, net: IpNet) {
        let key = net_key(net);
        if let Some(v) = self.by_net.get_mut(&key) {
            v.pop();
            if v.is_empty() {
                self.by_net.remove(&key);
            }
        }
        if let Some(c) = self.prefix_counts.get_mut(&(key.0, key.2)) {
            *c = c.saturating_sub(1);
        }
    }

    /// Entries whose subnet contains, equals or lies inside `net`, at most `limit` of them.
    fn overlapping(&self, net: IpNet, limit: usize) -> Vec<(Id, usize)> {
        let (fam, start, prefix) = net_key(net);
        let bits: u8 = if fam == 4 { 32 } else { 128 };
        let mut found = Vec::new();
        for p in 0..=prefix {
            if self.prefix_counts.get(&(fam, p)).copied().unwrap_or(0) == 0 {
                continue;
            }
            let host_bits = u32::from(bits - p);
            let mask = if host_bits >= 128 {
                0
            } else {
                !((1u128 << host_bits) - 1)
            };
            if let Some(v) = self.by_net.get(&(fam, start & mask, p)) {
                found.extend(v.iter().copied());
                if found.len() >= limit {
                    found.truncate(limit);
                    return found;
                }
            }
        }
        if prefix < bits {
            let end = net_end(net);
            for (_, v) in self
                .by_net
                .range((fam, start, prefix + 1)..=(fam, end, u8::MAX))
            {
                found.extend(v.iter().copied());
                if found.len() >= limit {
                    found.truncate(limit);
                    return found;
                }
            }
        }
        found
    }
}

/// A depth-first walk of the host group tree keeps the subnets of the current branch in an ordered
/// set, so each subnet is checked against its branch in O(log n). With a candidate site, only it
/// and the sites with a subnet overlapping one of its subnets take part.
pub(super) fn check_subnet_overlaps(view: &View<'_>, out: &mut Vec<ValidationError>) {
    let candidate = view.candidate::<NetworkSite>();
    let could_clash = |s: &NetworkSite| match candidate {
        None => true,
        Some(c) => {
            s.id == c.id
                || s.subnets
                    .iter()
                    .any(|a| c.subnets.iter().any(|b| nets_overlap(a.subnet, b.subnet)))
        }
    };
    let mut attached: HashMap<Id, Vec<(Id, usize)>> = HashMap::new();
    for s in view.all::<NetworkSite>().filter(|s| could_clash(s)) {
        let mut groups = s.host_groups.clone();
        groups.sort();
        groups.dedup();
        for g in groups {
            let list = attached.entry(g).or_default();
            list.extend((0..s.subnets.len()).map(|i| (s.id, i)));
        }
    }
    if attached.is_empty() {
        return;
    }
    let mut children: HashMap<Id, Vec<Id>> = HashMap::new();
    for g in view.all::<HostGroup>() {
        if let Some(p) = g.parent {
            children.entry(p).or_default().push(g.id);
        }
    }
    let subnet_of = |(site, idx): (Id, usize)| -> Option<IpNet> {
        view.get::<NetworkSite>(site)
            .and_then(|s| s.subnets.get(idx))
            .map(|p| p.subnet)
    };

    enum Step {
        Enter(Id),
        Exit(Id),
    }
    let mut set = SubnetSet::default();
    let mut pairs: HashSet<((Id, usize), (Id, usize))> = HashSet::new();
    let mut visited: HashSet<Id> = HashSet::new();
    let mut roots: Vec<Id> = view
        .all::<HostGroup>()
        .filter(|g| g.parent.is_none())
        .map(|g| g.id)
        .collect();
    roots.reverse();
    let mut stack: Vec<Step> = roots.into_iter().map(Step::Enter).collect();
    while let Some(step) = stack.pop() {
        match step {
            Step::Enter(g) => {
                if !visited.insert(g) {
                    continue;
                }
                if let Some(entries) = attached.get(&g) {
                    for &entry in entries {
                        let Some(net) = subnet_of(entry) else {
                            continue;
                        };
                        for other in set.overlapping(net, MAX_OVERLAPS_PER_SUBNET + 1) {
                            if other == entry {
                                continue;
                            }
                            let pair = if entry < other {
                                (entry, other)
                            } else {
                                (other, entry)
                            };
                            pairs.insert(pair);
                        }
                        set.insert(net, entry);
                    }
                }
                stack.push(Step::Exit(g));
                if let Some(kids) = children.get(&g) {
                    stack.extend(kids.iter().rev().map(|k| Step::Enter(*k)));
                }
            }
            Step::Exit(g) => {
                if let Some(entries) = attached.get(&g) {
                    for &entry in entries.iter().rev() {
                        if let Some(net) = subnet_of(entry) {
                            set.remove(net);
                        }
                    }
                }
            }
        }
    }
    let mut pairs: Vec<_> = pairs.into_iter().collect();
    pairs.sort();
    for (a, b) in pairs {
        let (Some(sa), Some(sb)) = (view.get::<NetworkSite>(a.0), view.get::<NetworkSite>(b.0))
        else {
            continue;
        };
        let (Some(na), Some(nb)) = (subnet_of(a), subnet_of(b)) else {
            continue;
        };
        out.push(overlap_error(
            sa,
            na,
            sb,
            nb,
            view.get::<LogicalNetwork>(sb.logical_network),
        ));
        out.push(overlap_error(
            sb,
            nb,
            sa,
            na,
            view.get::<LogicalNetwork>(sa.logical_network),
        ));
    }
}

fn nets_overlap(a: IpNet, b: IpNet) -> bool {
    let (a, b) = (a.trunc(), b.trunc());
    a.contains(&b) || b.contains(&a)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::MAX_OVERLAPS_PER_SUBNET;

    #[test]
    fn subnets_do_not_overlap_in_related_host_groups() {
        // Rack A is below Seattle: an overlapping subnet there clashes, even in another logical network.
        let errors = with_site(site(
            33,
            "Isolated_RackA",
            PVLAN,
            &[RACK_A],
            vec![pvlan_pair("10.0.0.128/25", 7, 8)],
        ));
        expect(&errors, Rule::SubnetOverlap, 33, "Subnet");
        expect(&errors, Rule::SubnetOverlap, SITE, "Subnet");
        // An ancestor (All Hosts) clashes too.
        let errors = with_site(site(
            34,
            "Corp_All",
            CORP,
            &[ROOT],
            vec![pair("10.0.0.0/16", 7)],
        ));
        expect(&errors, Rule::SubnetOverlap, 34, "Subnet");
        // Two subnets of one site.
        let errors = broken(|f| {
            object_mut(&mut f.network_sites, SITE)
                .subnets
                .push(pair("10.0.0.0/25", 3))
        });
        expect(&errors, Rule::SubnetOverlap, SITE, "Subnet");
        // Dublin is not related to Seattle: the same subnet is allowed there.
        clean(&with_site(site(
            35,
            "Corp_Dublin",
            CORP,
            &[DUBLIN],
            vec![pair("10.0.0.0/24", 7)],
        )));
    }

    #[test]
    fn many_identical_subnets_stay_linear_and_all_reported() {
        let mut f = base();
        for i in 0..2000u128 {
            let s = site(
                10_000 + i,
                &format!("S{i}"),
                CORP,
                &[RACK_A],
                vec![pair("172.16.0.0/24", 1)],
            );
            f.network_sites.insert(s.id, s);
        }
        let errors = validate_fabric(&f);
        for i in 0..2000u128 {
            assert!(
                has(&errors, Rule::SubnetOverlap, 10_000 + i, "Subnet"),
                "site {i}"
            );
        }
        assert!(errors.len() < 2000 * 2 * (MAX_OVERLAPS_PER_SUBNET + 1));
    }
}
