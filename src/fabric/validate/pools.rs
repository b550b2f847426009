//! Static IP address pools: a subnet of their site or VM network, a range in order inside it,
//! gateways, reserved addresses and VIPs inside, servers of the right family, no overlaps.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

use super::names::{self, pool_owner};
use super::overlap::{addr_key, family_name};
use super::sites::check_subnet_canonical;
use super::{Field, Rule, ValidationError, View, problem};
use crate::fabric::model::{Id, IpPool, NetworkSite, ObjectKind, PoolScope, VmNetwork};

fn pool_problem(p: &IpPool, field: Field, rule: Rule, message: String) -> ValidationError {
    problem(ObjectKind::IpPool, p.id, &p.name, field, rule, message)
}

pub(super) fn check_pool(view: &View<'_>, p: &IpPool, out: &mut Vec<ValidationError>) {
    out.extend(names::check_name(p));
    let subnet = p.scope.subnet();
    let field = match p.scope {
        PoolScope::Site { .. } => Field::Subnet,
        PoolScope::VmSubnet { .. } => Field::VmSubnet,
    };
    out.extend(check_subnet_canonical(
        ObjectKind::IpPool,
        p.id,
        &p.name,
        field,
        subnet,
    ));
    out.extend(check_pool_scope(view, p));
    out.extend(check_pool_range(p));
    out.extend(check_pool_gateways(p));
    out.extend(check_pool_addresses(p));
    out.extend(check_pool_server_families(p));
}

fn check_pool_scope(view: &View<'_>, p: &IpPool) -> Option<ValidationError> {
    match &p.scope {
        PoolScope::Site { site, subnet } => match view.get::<NetworkSite>(*site) {
            None => Some(pool_problem(
                p,
                Field::NetworkSite,
                Rule::ReferenceMissing,
                format!("Network site {site} does not exist. Choose an existing network site."),
            )),
            Some(s) if !s.subnets.iter().any(|pair| pair.subnet == *subnet) => Some(pool_problem(
                p,
                Field::Subnet,
                Rule::PoolSubnetUnknown,
                format!(
                    "Subnet {subnet} is not a subnet of network site \"{}\". Choose one of the site's subnets.",
                    s.name
                ),
            )),
            Some(_) => None,
        },
        PoolScope::VmSubnet { vm_network, subnet } => match view.get::<VmNetwork>(*vm_network) {
            None => Some(pool_problem(
                p,
                Field::VmNetwork,
                Rule::ReferenceMissing,
                format!("VM network {vm_network} does not exist. Choose an existing VM network."),
            )),
            Some(v) if !v.vm_subnets.contains(subnet) => Some(pool_problem(
                p,
                Field::VmSubnet,
                Rule::PoolSubnetUnknown,
                format!(
                    "VM subnet {subnet} is not a VM subnet of VM network \"{}\". Choose one of the VM network's VM subnets.",
                    v.name
                ),
            )),
            Some(_) => None,
        },
    }
}

fn check_pool_range(p: &IpPool) -> Vec<ValidationError> {
    let subnet = p.scope.subnet().trunc();
    let (net_fam, _) = addr_key(subnet.network());
    let mut out = Vec::new();
    for (field, addr) in [
        (Field::RangeStart, p.range_start),
        (Field::RangeEnd, p.range_end),
    ] {
        let (fam, _) = addr_key(addr);
        if fam != net_fam {
            out.push(pool_problem(
                p,
                field,
                Rule::AddressFamily,
                format!(
                    "{field} {addr} is an {} address, but subnet {subnet} is {}. Choose an {} address inside the subnet.",
                    family_name(fam),
                    family_name(net_fam),
                    family_name(net_fam)
                ),
            ));
        } else if !subnet.contains(&addr) {
            out.push(pool_problem(
                p,
                field,
                Rule::PoolOutsideSubnet,
                format!(
                    "{field} {addr} is outside subnet {subnet}. Choose an address inside the subnet."
                ),
            ));
        }
    }
    let (start_fam, start) = addr_key(p.range_start);
    let (end_fam, end) = addr_key(p.range_end);
    if start_fam == end_fam && start > end {
        out.push(pool_problem(
            p,
            Field::RangeEnd,
            Rule::PoolRangeOrder,
            format!(
                "Range end {} comes before range start {}. Choose an end address at or after the start.",
                p.range_end, p.range_start
            ),
        ));
    }
    out
}

fn check_pool_gateways(p: &IpPool) -> Vec<ValidationError> {
    let subnet = p.scope.subnet().trunc();
    p.settings.gateways
        .iter()
        .filter(|g| !subnet.contains(&g.address()))
        .map(|g| {
            pool_problem(
                p,
                Field::DefaultGateway,
                Rule::GatewayOutsideSubnet,
                format!(
                    "Default gateway {} is outside subnet {subnet}. Choose a gateway address inside the subnet.",
                    g.address()
                ),
            )
        })
        .collect()
}

fn check_pool_addresses(p: &IpPool) -> Vec<ValidationError> {
    let (start_fam, start) = addr_key(p.range_start);
    let (end_fam, end) = addr_key(p.range_end);
    let inside = |a: &IpAddr| {
        let (fam, x) = addr_key(*a);
        fam == start_fam && fam == end_fam && start <= x && x <= end
    };
    let mut out = Vec::new();
    for (field, label, set) in [
        (
            Field::ReservedAddresses,
            "Reserved address",
            &p.settings.reserved,
        ),
        (Field::VipAddresses, "VIP address", &p.settings.vips),
    ] {
        for a in set.iter().filter(|a| !inside(a)) {
            out.push(pool_problem(
                p,
                field,
                Rule::AddressOutsidePool,
                format!(
                    "{label} {a} is outside the pool range {}–{}. Choose an address inside the range or remove it.",
                    p.range_start, p.range_end
                ),
            ));
        }
    }
    out
}

/// DNS servers share the pool's address family; WINS is IPv4 only.
fn check_pool_server_families(p: &IpPool) -> Vec<ValidationError> {
    let (net_fam, _) = addr_key(p.scope.subnet().network());
    let mut out = Vec::new();
    for a in &p.settings.dns_servers {
        let (fam, _) = addr_key(*a);
        if fam != net_fam {
            out.push(pool_problem(
                p,
                Field::DnsServers,
                Rule::AddressFamily,
                format!(
                    "DNS server {a} is an {} address, but the pool's subnet is {}. Enter {} DNS servers.",
                    family_name(fam),
                    family_name(net_fam),
                    family_name(net_fam)
                ),
            ));
        }
    }
    for a in &p.settings.wins_servers {
        if a.is_ipv6() {
            out.push(pool_problem(
                p,
                Field::WinsServers,
                Rule::AddressFamily,
                format!("WINS server {a} is an IPv6 address, but WINS works over IPv4 only. Enter IPv4 WINS servers."),
            ));
        }
    }
    out
}

/// The interval a pool covers, when its range is usable (same family, start ≤ end).
fn pool_interval(p: &IpPool) -> Option<(u8, u128, u128)> {
    let (sf, s) = addr_key(p.range_start);
    let (ef, e) = addr_key(p.range_end);
    (sf == ef && s <= e).then_some((sf, s, e))
}

fn pool_overlap_error(p: &IpPool, other: &IpPool) -> ValidationError {
    pool_problem(
        p,
        Field::RangeStart,
        Rule::PoolOverlap,
        format!(
            "Range {}–{} overlaps pool \"{}\" ({}–{}) on subnet {}. Choose a range that does not overlap.",
            p.range_start,
            p.range_end,
            other.name,
            other.range_start,
            other.range_end,
            p.scope.subnet()
        ),
    )
}

/// Pools on one subnet (of one site or VM network) never overlap: sort by start, sweep once. With a
/// candidate pool, only the pools on its subnet take part.
pub(super) fn check_pool_overlaps(view: &View<'_>, out: &mut Vec<ValidationError>) {
    type Interval<'a> = (u128, u128, &'a IpPool);
    let only = view
        .candidate::<IpPool>()
        .map(|c| (pool_owner(&c.scope), c.scope.subnet()));
    let mut groups: HashMap<(Id, IpNet), Vec<Interval<'_>>> = HashMap::new();
    for p in view.all::<IpPool>() {
        let key = (pool_owner(&p.scope), p.scope.subnet());
        if only.is_some_and(|k| k != key) {
            continue;
        }
        if let Some((_, s, e)) = pool_interval(p) {
            groups.entry(key).or_default().push((s, e, p));
        }
    }
    let mut keys: Vec<_> = groups.keys().copied().collect();
    keys.sort();
    for key in keys {
        let Some(list) = groups.get_mut(&key) else {
            continue;
        };
        list.sort_by_key(|(s, e, p)| (*s, *e, p.id));
        let mut reach: Option<(u128, &IpPool)> = None;
        for &(s, e, p) in list.iter() {
            if let Some((max_end, widest)) = reach {
                if s <= max_end {
                    out.push(pool_overlap_error(p, widest));
                    out.push(pool_overlap_error(widest, p));
                }
                if e > max_end {
                    reach = Some((e, p));
                }
            } else {
                reach = Some((e, p));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;

    #[test]
    fn pool_subnet_must_belong_to_its_site_or_vm_network() {
        let errors = with_pool(pool(
            43,
            "Pool B",
            SITE,
            "10.0.7.0/24",
            "10.0.7.1",
            "10.0.7.9",
        ));
        expect(&errors, Rule::PoolSubnetUnknown, 43, "Subnet");
        let errors = broken(|f| {
            let mut p = f.ip_pools[&id(VM_POOL)].clone();
            p.id = id(44);
            p.name = "Other".into();
            p.scope = PoolScope::VmSubnet {
                vm_network: id(VMNET),
                subnet: net("192.168.9.0/24"),
            };
            p.range_start = ip("192.168.9.1");
            p.range_end = ip("192.168.9.2");
            f.ip_pools.insert(p.id, p);
        });
        expect(&errors, Rule::PoolSubnetUnknown, 44, "VM subnet");
        let errors = with_pool(pool(
            45,
            "Pool C",
            999,
            "10.0.0.0/24",
            "10.0.0.150",
            "10.0.0.160",
        ));
        expect(&errors, Rule::ReferenceMissing, 45, "Network site");
        let errors = broken(|f| {
            f.apply_changes(&[FabricChange::Delete(ObjectKind::VmNetwork, id(VMNET))]);
        });
        expect(&errors, Rule::ReferenceMissing, VM_POOL, "VM network");
        clean(&with_pool(pool(
            43,
            "Pool B",
            SITE,
            "fd00:0:0:1::/64",
            "fd00:0:0:1::10",
            "fd00:0:0:1::ff",
        )));
    }

    #[test]
    fn pool_range_in_order_and_inside_subnet() {
        let errors = broken(|f| {
            let p = object_mut(&mut f.ip_pools, POOL);
            p.range_start = ip("10.0.0.100");
            p.range_end = ip("10.0.0.10");
            p.settings.reserved.clear();
            p.settings.vips.clear();
        });
        expect(&errors, Rule::PoolRangeOrder, POOL, "Range end");
        let errors = broken(|f| object_mut(&mut f.ip_pools, POOL).range_start = ip("10.0.1.1"));
        expect(&errors, Rule::PoolOutsideSubnet, POOL, "Range start");
        clean(&broken(|f| {
            let p = object_mut(&mut f.ip_pools, POOL);
            p.range_start = ip("10.0.0.11");
            p.range_end = ip("10.0.0.11");
            p.settings.vips.clear();
        }));
    }

    #[test]
    fn pool_address_families_consistent() {
        let errors = broken(|f| object_mut(&mut f.ip_pools, POOL).range_end = ip("fd00::1"));
        expect(&errors, Rule::AddressFamily, POOL, "Range end");
        let errors = broken_settings(|s| s.dns_servers.push(ip("fd00::53")));
        expect(&errors, Rule::AddressFamily, POOL, "DNS servers");
        let errors = broken_settings(|s| s.wins_servers.push(ip("fd00::54")));
        expect(&errors, Rule::AddressFamily, POOL, "WINS servers");
    }

    #[test]
    fn pools_on_one_subnet_never_overlap() {
        let errors = with_pool(pool(
            46,
            "Pool D",
            SITE,
            "10.0.0.0/24",
            "10.0.0.100",
            "10.0.0.120",
        ));
        expect(&errors, Rule::PoolOverlap, 46, "Range start");
        expect(&errors, Rule::PoolOverlap, POOL, "Range start");
        clean(&with_pool(pool(
            46,
            "Pool D",
            SITE,
            "10.0.0.0/24",
            "10.0.0.101",
            "10.0.0.120",
        )));
    }

    #[test]
    fn gateways_inside_subnet() {
        let errors = broken_settings(|s| {
            s.gateways.push(Gateway::Automatic {
                address: ip("10.0.1.1"),
            })
        });
        expect(&errors, Rule::GatewayOutsideSubnet, POOL, "Default gateway");
    }

    #[test]
    fn reserved_and_vips_inside_pool_range() {
        let errors = broken_settings(|s| s.reserved.insert(ip("10.0.0.5")));
        expect(
            &errors,
            Rule::AddressOutsidePool,
            POOL,
            "Reserved addresses",
        );
        let errors = broken_settings(|s| s.vips.insert(ip("10.0.0.200")));
        expect(&errors, Rule::AddressOutsidePool, POOL, "VIP addresses");
        clean(&broken_settings(|s| s.vips.insert(ip("10.0.0.100"))));
    }
}
