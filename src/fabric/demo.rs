//! A realistic demo fabric of any size, the same for the same seed: host groups per city and rack,
//! logical networks with sites, subnet-VLAN pairs and static IP address pools, VM networks (some with
//! network virtualization and VM subnets), and the Run As account an IPAM integration uses.

use std::collections::{BTreeSet, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::model::{
    Fabric, FabricKind, Gateway, HostGroup, Id, IpPool, LogicalNetwork, LogicalNetworkIsolation,
    NetworkSite, PoolScope, PoolSettings, ROOT_HOST_GROUP, RunAsAccount, SubnetVlan, VmNetwork,
    VmNetworkIsolation,
};

const CITIES: [&str; 6] = [
    "Seattle",
    "Dublin",
    "Tokyo",
    "Sydney",
    "São Paulo",
    "Frankfurt",
];
const NETWORK_PREFIXES: [&str; 8] = [
    "Corp-Backend",
    "Corp-Frontend",
    "Prod-Web",
    "Dev-Test",
    "Backup",
    "DMZ",
    "Storage",
    "Tenant-VNet",
];
const TENANTS: [&str; 8] = [
    "Contoso",
    "Fabrikam",
    "Northwind",
    "Tailspin",
    "Litware",
    "Adatum",
    "Proseware",
    "Woodgrove",
];
/// 10.0.0.0/8 holds this many /24 subnets; later subnets are IPv6 /64s.
const IPV4_SUBNETS: u32 = 1 << 16;

/// Builds a valid fabric of about `size` objects (as `Fabric::object_count` counts them), the same for
/// the same `size` and `seed`. Size 0 or 1 gives only the root host group.
pub fn demo_fabric(size: usize, seed: u64) -> Fabric {
    let mut b = Builder {
        rng: StdRng::seed_from_u64(seed),
        fabric: Fabric::default(),
        size,
        count: 0,
        v4_next: 0,
        v6_next: 0,
        vlan_next: 100,
        subnet_serial: 0,
        groups: Vec::new(),
    };
    b.build();
    b.fabric
}

struct Builder {
    rng: StdRng,
    fabric: Fabric,
    size: usize,
    count: usize,
    v4_next: u32,
    v6_next: u32,
    vlan_next: u16,
    subnet_serial: u64,
    /// Host groups a site may be scoped to (cities and racks).
    groups: Vec<Id>,
}

impl Builder {
    fn full(&self) -> bool {
        self.count >= self.size
    }

    /// Adds an object (its id drawn by the caller, so the random sequence stays the same).
    fn add<T: FabricKind>(&mut self, object: T) {
        self.fabric.put(object);
        self.count += 1;
    }

    fn new_id(&mut self) -> Id {
        uuid::Builder::from_random_bytes(self.rng.random()).into_uuid()
    }

    fn build(&mut self) {
        let root = self.host_group(ROOT_HOST_GROUP, None);
        if self.full() {
            return;
        }
        self.run_as_account();
        let cities = match self.size {
            0..=2_000 => 3,
            2_001..=20_000 => 4,
            _ => CITIES.len(),
        };
        let mut city_ids = Vec::new();
        for city in CITIES.iter().take(cities) {
            if self.full() {
                return;
            }
            let id = self.host_group(city, Some(root));
            city_ids.push(id);
            self.groups.push(id);
        }
        // About one rack per 300 objects, spread over the cities.
        let racks = (self.size / 300).max(2);
        for i in 0..racks {
            if self.full() {
                return;
            }
            let city = city_ids[i % city_ids.len()];
            let id = self.host_group(
                &format!("Rack {}", rack_label(i / city_ids.len())),
                Some(city),
            );
            self.groups.push(id);
        }
        let mut serial = 0usize;
        while !self.full() {
            let prefix = NETWORK_PREFIXES[serial % NETWORK_PREFIXES.len()];
            serial += 1;
            let name = format!("{prefix}-{serial:03}");
            let isolation = match prefix {
                "Tenant-VNet" => LogicalNetworkIsolation::NetworkVirtualization,
                "Storage" | "Backup" => LogicalNetworkIsolation::OneConnected,
                "DMZ" => LogicalNetworkIsolation::PrivateVlan,
                _ => LogicalNetworkIsolation::VlanIndependent,
            };
            self.logical_network(&name, isolation);
        }
    }

    fn host_group(&mut self, name: &str, parent: Option<Id>) -> Id {
        let id = self.new_id();
        self.add(HostGroup {
            id,
            name: name.to_string(),
            parent,
        });
        id
    }

    fn run_as_account(&mut self) {
        let id = self.new_id();
        self.add(RunAsAccount {
            id,
            name: "IPAM Service Account".to_string(),
            description: "Member of IPAM ASM Administrators and Remote Management Users"
                .to_string(),
            user_name: "CONTOSO\\svc-ipam".to_string(),
        });
    }

    fn logical_network(&mut self, name: &str, isolation: LogicalNetworkIsolation) {
        let id = self.new_id();
        self.add(LogicalNetwork {
            id,
            name: name.to_string(),
            description: format!("{} for the {} workloads", isolation.label(), name),
            isolation,
        });
        let sites = self.rng.random_range(1..=3usize);
        let mut site_names = HashSet::new();
        for _ in 0..sites {
            if self.full() {
                return;
            }
            self.site(id, name, isolation, &mut site_names);
        }
        if isolation == LogicalNetworkIsolation::NetworkVirtualization {
            for _ in 0..self.rng.random_range(1..=3usize) {
                if self.full() {
                    return;
                }
                self.virtualized_vm_network(id);
            }
        } else if !self.full() && self.rng.random_bool(0.5) {
            self.plain_vm_network(id, name);
        }
    }

    fn site(
        &mut self,
        logical_network: Id,
        network_name: &str,
        isolation: LogicalNetworkIsolation,
        names: &mut HashSet<String>,
    ) {
        let first = self.groups[self.rng.random_range(0..self.groups.len())];
        let mut host_groups = vec![first];
        if self.rng.random_bool(0.2) {
            let second = self.groups[self.rng.random_range(0..self.groups.len())];
            if second != first {
                host_groups.push(second);
            }
        }
        let place = self
            .fabric
            .host_group_path(first)
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .replace(' ', "-");
        let mut name = format!("{network_name}_{place}");
        let mut n = 2;
        while !names.insert(name.clone()) {
            name = format!("{network_name}_{place}_{n}");
            n += 1;
        }
        let id = self.new_id();
        self.add(NetworkSite {
            id,
            name: name.clone(),
            logical_network,
            host_groups,
            subnets: Vec::new(),
        });
        let primary_vlan = self.next_vlan();
        for k in 0..self.rng.random_range(1..=4usize) {
            if self.full() {
                return;
            }
            let subnet = self.next_subnet();
            let (vlan, secondary_vlan) = match isolation {
                LogicalNetworkIsolation::VlanIndependent => (self.next_vlan(), None),
                LogicalNetworkIsolation::PrivateVlan => (primary_vlan, Some(self.next_vlan())),
                LogicalNetworkIsolation::OneConnected => (primary_vlan, None),
                LogicalNetworkIsolation::NetworkVirtualization => (0, None),
            };
            if let Some(site) = self.fabric.network_sites.get_mut(&id) {
                site.subnets.push(SubnetVlan {
                    subnet,
                    vlan,
                    secondary_vlan,
                });
            }
            self.count += 1;
            let pools = if self.rng.random_bool(0.2) { 2 } else { 1 };
            for part in 0..pools {
                if self.full() {
                    return;
                }
                let scope = PoolScope::Site { site: id, subnet };
                self.pool(
                    &format!("{name}_IPPool_{k}{}", part_suffix(part, pools)),
                    scope,
                    part,
                    pools,
                );
            }
        }
    }

    fn virtualized_vm_network(&mut self, logical_network: Id) {
        let id = self.new_id();
        let tenant = TENANTS[self.rng.random_range(0..TENANTS.len())];
        let name = format!("{tenant}-{:04}", self.fabric.vm_networks.len() + 1);
        let count = self.rng.random_range(1..=3u8);
        let vm_subnets: Vec<IpNet> = (0..count)
            .map(|j| IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(192, 168, j, 0), 24)))
            .collect();
        self.add(VmNetwork {
            id,
            name: name.clone(),
            description: format!("{tenant} tenant network"),
            logical_network,
            isolation: VmNetworkIsolation::NetworkVirtualization,
            vm_subnets: vm_subnets.clone(),
        });
        for (k, subnet) in vm_subnets.into_iter().enumerate() {
            if self.full() {
                return;
            }
            let scope = PoolScope::VmSubnet {
                vm_network: id,
                subnet,
            };
            self.pool(&format!("{name}_IPPool_{k}"), scope, 0, 1);
        }
    }

    fn plain_vm_network(&mut self, logical_network: Id, network_name: &str) {
        let id = self.new_id();
        self.add(VmNetwork {
            id,
            name: format!("{network_name} VM Network"),
            description: String::new(),
            logical_network,
            isolation: VmNetworkIsolation::NoIsolation,
            vm_subnets: Vec::new(),
        });
    }

    /// A pool covering part `part` of `parts` of the subnet's usable addresses.
    fn pool(&mut self, name: &str, scope: PoolScope, part: u32, parts: u32) {
        let subnet = scope.subnet();
        let (first, last, gateway, dns) = match subnet {
            IpNet::V4(n) => {
                let base = u32::from(n.network());
                (
                    IpAddr::V4(Ipv4Addr::from(base + 10)),
                    IpAddr::V4(Ipv4Addr::from(base + 250)),
                    IpAddr::V4(Ipv4Addr::from(base + 1)),
                    vec![
                        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 10)),
                        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 11)),
                    ],
                )
            }
            IpNet::V6(n) => {
                let base = u128::from(n.network());
                (
                    IpAddr::V6(Ipv6Addr::from(base + 0x100)),
                    IpAddr::V6(Ipv6Addr::from(base + 0xffff)),
                    IpAddr::V6(Ipv6Addr::from(base + 1)),
                    vec![IpAddr::V6(Ipv6Addr::new(0xfd42, 0, 0, 0, 0, 0, 0, 0x53))],
                )
            }
        };
        let (start, end) = split_range(first, last, part, parts);
        let mut reserved = BTreeSet::new();
        reserved.insert(offset(start, 1));
        reserved.insert(offset(start, 2));
        let mut vips = BTreeSet::new();
        if self.rng.random_bool(0.5) {
            for k in 0..4 {
                vips.insert(offset(end, -k));
            }
        }
        let gateways = if self.rng.random_bool(0.7) {
            vec![Gateway::Address {
                address: gateway,
                metric: 1,
            }]
        } else {
            vec![Gateway::Automatic { address: gateway }]
        };
        let wins_servers = if subnet.addr().is_ipv4() && self.rng.random_bool(0.1) {
            vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 20))]
        } else {
            Vec::new()
        };
        let id = self.new_id();
        self.add(IpPool {
            id,
            name: name.to_string(),
            description: String::new(),
            scope,
            range_start: start,
            range_end: end,
            settings: PoolSettings {
                reserved,
                vips,
                gateways,
                dns_servers: dns,
                dns_suffix: "corp.contoso.com".to_string(),
                dns_search_suffixes: vec![
                    "corp.contoso.com".to_string(),
                    "contoso.com".to_string(),
                ],
                netbios_enabled: !wins_servers.is_empty(),
                wins_servers,
            },
        });
    }

    fn next_vlan(&mut self) -> u16 {
        let vlan = self.vlan_next;
        self.vlan_next = if self.vlan_next >= 4000 {
            100
        } else {
            self.vlan_next + 1
        };
        vlan
    }

    /// Every subnet of the demo is distinct and non-overlapping, so any host group scoping is valid.
    /// One in six is an IPv6 /64; IPv4 /24s come from 10.0.0.0/8 until it is used up.
    fn next_subnet(&mut self) -> IpNet {
        self.subnet_serial += 1;
        if !self.subnet_serial.is_multiple_of(6) && self.v4_next < IPV4_SUBNETS {
            let i = self.v4_next;
            self.v4_next += 1;
            IpNet::V4(Ipv4Net::new_assert(
                Ipv4Addr::new(10, (i >> 8) as u8, (i & 0xff) as u8, 0),
                24,
            ))
        } else {
            let i = self.v6_next;
            self.v6_next += 1;
            IpNet::V6(Ipv6Net::new_assert(
                Ipv6Addr::new(0xfd42, 0, (i >> 16) as u16, (i & 0xffff) as u16, 0, 0, 0, 0),
                64,
            ))
        }
    }
}

fn part_suffix(part: u32, parts: u32) -> String {
    if parts > 1 {
        format!("_{}", (b'a' + part as u8) as char)
    } else {
        String::new()
    }
}

/// Spreadsheet-style labels: A..Z, AA, AB, ...
fn rack_label(mut i: usize) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'A' + (i % 26) as u8);
        if i < 26 {
            break;
        }
        i = i / 26 - 1;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

fn offset(addr: IpAddr, by: i64) -> IpAddr {
    match addr {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from((i64::from(u32::from(a)) + by) as u32)),
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from((u128::from(a) as i128 + by as i128) as u128)),
    }
}

/// Part `part` of `parts` equal, non-overlapping slices of first..=last.
fn split_range(first: IpAddr, last: IpAddr, part: u32, parts: u32) -> (IpAddr, IpAddr) {
    let to_u128 = |a: IpAddr| match a {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    };
    let (lo, hi) = (to_u128(first), to_u128(last));
    let width = (hi - lo + 1) / u128::from(parts.max(1));
    let start = lo + width * u128::from(part);
    let end = if part + 1 == parts {
        hi
    } else {
        start + width - 1
    };
    let back = |x: u128| match first {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(x as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(x)),
    };
    (back(start), back(end))
}

/// Addresses the demo grants from its pools: in each pool a share between none and nearly all
/// of its free addresses (so the demo shows every level of use, some pools near exhaustion),
/// to VM network adapters, and one VIP in every third pool that has VIP addresses.
pub fn demo_grants(fabric: &Fabric, seed: u64) -> Vec<crate::fabric::store::GrantRequest> {
    use crate::fabric::store::{Consumer, GrantRequest};
    /// No pool gets more than this many (an IPv6 pool's range is vast).
    const MOST: u128 = 250;
    /// Grants of the whole demo at most.
    const MOST_IN_ALL: u128 = 100_000;
    const SHARES: [f64; 10] = [0.0, 0.08, 0.2, 0.35, 0.5, 0.62, 0.74, 0.83, 0.9, 0.97];
    let mut rng = StdRng::seed_from_u64(seed ^ 0x9e37_79b9);
    let number = |a: IpAddr| match a {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    };
    // First how many each pool would get, then scaled down so a large demo grants at most
    // MOST_IN_ALL addresses in all (a 100,000-object demo would otherwise grant millions).
    let mut plan: Vec<(&IpPool, u128, bool)> = Vec::new();
    for (n, pool) in fabric.ip_pools.values().enumerate() {
        if number(pool.range_end) < number(pool.range_start) {
            continue;
        }
        let inside = |a: &&IpAddr| {
            a.is_ipv4() == pool.range_start.is_ipv4()
                && **a >= pool.range_start
                && **a <= pool.range_end
        };
        let total = number(pool.range_end) - number(pool.range_start) + 1;
        let set_aside = pool
            .settings
            .reserved
            .iter()
            .chain(pool.settings.vips.iter())
            .filter(inside)
            .count() as u128;
        let free = total.saturating_sub(set_aside).min(MOST);
        let share = SHARES[rng.random_range(0..SHARES.len())];
        let count = (free as f64 * share).floor() as u128;
        let vip = n % 3 == 0 && pool.settings.vips.iter().any(|a| inside(&a));
        plan.push((pool, count, vip));
    }
    let wanted: u128 = plan.iter().map(|(_, c, v)| c + u128::from(*v)).sum();
    let scale = if wanted > MOST_IN_ALL {
        MOST_IN_ALL as f64 / wanted as f64
    } else {
        1.0
    };
    let mut out = Vec::new();
    for (pool, count, vip) in plan {
        let count = (count as f64 * scale).floor() as u128;
        let short = pool.name.replace(' ', "-");
        for i in 0..count {
            out.push(GrantRequest {
                pool: pool.id,
                address: None,
                holder: format!("{short}-vm{:03}/eth0", i + 1),
                consumer: Consumer::VmAdapter,
            });
        }
        if vip && out.len() < MOST_IN_ALL as usize {
            out.push(GrantRequest {
                pool: pool.id,
                address: None,
                holder: format!("{short}-lb"),
                consumer: Consumer::Vip,
            });
        }
    }
    out.truncate(MOST_IN_ALL as usize);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fabric::validate::validate_fabric;

    #[test]
    fn same_seed_same_fabric_other_seed_other_fabric() {
        assert_eq!(demo_fabric(500, 7), demo_fabric(500, 7));
        assert_ne!(demo_fabric(500, 7), demo_fabric(500, 8));
    }

    #[test]
    fn small_sizes_are_valid_and_close_to_size() {
        for size in [0usize, 1, 2, 3, 5, 10, 17, 50, 100, 333, 1000] {
            let f = demo_fabric(size, 42);
            let errors = validate_fabric(&f);
            assert!(errors.is_empty(), "size {size}: {errors:#?}");
            let count = f.object_count();
            assert!(
                count >= size.max(1) && count <= size.max(1) + 1,
                "size {size} gave {count}"
            );
        }
    }

    #[test]
    fn thousand_objects_have_every_kind_a_demo_shows() {
        let f = demo_fabric(1000, 1);
        assert!(f.root_host_group().is_some());
        assert_eq!(f.run_as_accounts.len(), 1);
        assert!(
            f.run_as_accounts
                .values()
                .any(|a| a.name == "IPAM Service Account")
        );
        assert!(
            f.logical_networks
                .values()
                .any(|n| n.name.starts_with("Corp-Backend-"))
        );
        assert!(
            f.logical_networks
                .values()
                .any(|n| n.name.starts_with("Storage-"))
        );
        assert!(
            f.logical_networks
                .values()
                .any(|n| n.isolation == LogicalNetworkIsolation::PrivateVlan)
        );
        assert!(f.vm_networks.values().any(|v| !v.vm_subnets.is_empty()));
        assert!(
            f.ip_pools
                .values()
                .any(|p| matches!(p.scope, PoolScope::VmSubnet { .. }))
        );
        assert!(
            f.ip_pools
                .values()
                .any(|p| !p.settings.vips.is_empty() && !p.settings.reserved.is_empty())
        );
        let subnets: Vec<_> = f.network_sites.values().flat_map(|s| &s.subnets).collect();
        assert!(subnets.iter().any(|s| s.subnet.addr().is_ipv6()));
        assert!(subnets.iter().any(|s| s.subnet.addr().is_ipv4()));
        assert!(f.host_groups.values().any(|g| g.name == "Seattle"));
        assert!(f.host_groups.values().any(|g| g.name == "Rack A"));
    }

    #[test]
    fn twenty_thousand_objects_are_valid() {
        let f = demo_fabric(20_000, 3);
        let errors = validate_fabric(&f);
        assert!(errors.is_empty(), "{:#?}", &errors[..errors.len().min(5)]);
        assert!(f.object_count() >= 20_000);
    }

    #[test]
    fn rack_labels_are_unique() {
        let labels: HashSet<String> = (0..2000).map(rack_label).collect();
        assert_eq!(labels.len(), 2000);
        assert_eq!(rack_label(0), "A");
        assert_eq!(rack_label(26), "AA");
    }
}
