//! A small valid fabric and assertions shared by the rule families' tests.

use std::collections::BTreeMap;
pub use std::collections::BTreeSet;
pub use std::net::IpAddr;

pub use ipnet::IpNet;
pub use uuid::Uuid;

pub use super::services::MIN_SYNC_INTERVAL_SECS;
pub use super::{Rule, ValidationError, validate_fabric, validate_object};
pub use crate::fabric::connection::ConnectionString;
pub use crate::fabric::model::*;

pub fn id(n: u128) -> Id {
    Uuid::from_u128(n)
}
pub const ROOT: u128 = 1;
pub const SEATTLE: u128 = 2;
pub const RACK_A: u128 = 3;
pub const DUBLIN: u128 = 4;
pub const ACCOUNT: u128 = 10;
pub const CORP: u128 = 20;
pub const PVLAN: u128 = 21;
pub const TENANT: u128 = 22;
pub const SITE: u128 = 30;
pub const PVLAN_SITE: u128 = 31;
pub const POOL: u128 = 40;
pub const VM_POOL: u128 = 41;
pub const VMNET: u128 = 50;
pub const SERVICE: u128 = 60;

/// Object `n` of one of the fixture's collections, for a test to break.
pub fn object_mut<T>(objects: &mut BTreeMap<Id, T>, n: u128) -> &mut T {
    objects.get_mut(&id(n)).unwrap()
}

pub fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}
pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}
pub fn group(n: u128, name: &str, parent: Option<u128>) -> HostGroup {
    HostGroup {
        id: id(n),
        name: name.into(),
        parent: parent.map(id),
    }
}
pub fn pair(subnet: &str, vlan: u16) -> SubnetVlan {
    SubnetVlan {
        subnet: net(subnet),
        vlan,
        secondary_vlan: None,
    }
}
/// A subnet pair of a private VLAN network, with its secondary VLAN.
pub fn pvlan_pair(subnet: &str, vlan: u16, secondary_vlan: u16) -> SubnetVlan {
    SubnetVlan {
        secondary_vlan: Some(secondary_vlan),
        ..pair(subnet, vlan)
    }
}
pub fn pool(n: u128, name: &str, site: u128, subnet: &str, start: &str, end: &str) -> IpPool {
    IpPool {
        id: id(n),
        name: name.into(),
        description: String::new(),
        scope: PoolScope::Site {
            site: id(site),
            subnet: net(subnet),
        },
        range_start: ip(start),
        range_end: ip(end),
        settings: PoolSettings {
            reserved: BTreeSet::new(),
            vips: BTreeSet::new(),
            gateways: Vec::new(),
            dns_servers: Vec::new(),
            dns_suffix: String::new(),
            dns_search_suffixes: Vec::new(),
            wins_servers: Vec::new(),
            netbios_enabled: false,
        },
    }
}
pub fn site(
    n: u128,
    name: &str,
    ln: u128,
    groups: &[u128],
    subnets: Vec<SubnetVlan>,
) -> NetworkSite {
    NetworkSite {
        id: id(n),
        name: name.into(),
        logical_network: id(ln),
        host_groups: groups.iter().copied().map(id).collect(),
        subnets,
    }
}

/// A small fabric that breaks no rule and exercises every kind.
pub fn base() -> Fabric {
    let mut f = Fabric::default();
    for g in [
        group(ROOT, ROOT_HOST_GROUP, None),
        group(SEATTLE, "Seattle", Some(ROOT)),
        group(RACK_A, "Rack A", Some(SEATTLE)),
        group(DUBLIN, "Dublin", Some(ROOT)),
    ] {
        f.host_groups.insert(g.id, g);
    }
    f.run_as_accounts.insert(
        id(ACCOUNT),
        RunAsAccount {
            id: id(ACCOUNT),
            name: "IPAM Service Account".into(),
            description: String::new(),
            user_name: "CONTOSO\\ipam".into(),
        },
    );
    for (n, name, isolation) in [
        (CORP, "Corp", LogicalNetworkIsolation::VlanIndependent),
        (PVLAN, "Isolated", LogicalNetworkIsolation::PrivateVlan),
        (
            TENANT,
            "Tenant",
            LogicalNetworkIsolation::NetworkVirtualization,
        ),
    ] {
        f.logical_networks.insert(
            id(n),
            LogicalNetwork {
                id: id(n),
                name: name.into(),
                description: String::new(),
                isolation,
            },
        );
    }
    let s = site(
        SITE,
        "Corp_Seattle",
        CORP,
        &[SEATTLE],
        vec![pair("10.0.0.0/24", 10), pair("fd00:0:0:1::/64", 11)],
    );
    f.network_sites.insert(s.id, s);
    let pv = site(
        PVLAN_SITE,
        "Isolated_Dublin",
        PVLAN,
        &[DUBLIN],
        vec![pvlan_pair("10.9.0.0/24", 20, 21)],
    );
    f.network_sites.insert(pv.id, pv);
    let mut p = pool(
        POOL,
        "Pool A",
        SITE,
        "10.0.0.0/24",
        "10.0.0.10",
        "10.0.0.100",
    );
    p.settings.gateways.push(Gateway::Address {
        address: ip("10.0.0.1"),
        metric: 1,
    });
    p.settings.reserved.insert(ip("10.0.0.11"));
    p.settings.vips.insert(ip("10.0.0.90"));
    p.settings.dns_servers.push(ip("10.0.0.53"));
    p.settings.wins_servers.push(ip("10.0.0.54"));
    f.ip_pools.insert(p.id, p);
    f.vm_networks.insert(
        id(VMNET),
        VmNetwork {
            id: id(VMNET),
            name: "Contoso".into(),
            description: String::new(),
            logical_network: id(TENANT),
            isolation: VmNetworkIsolation::NetworkVirtualization,
            vm_subnets: vec![net("192.168.0.0/24"), net("192.168.1.0/24")],
        },
    );
    let mut vp = pool(
        VM_POOL,
        "Contoso Pool",
        0,
        "192.168.0.0/24",
        "192.168.0.10",
        "192.168.0.200",
    );
    vp.scope = PoolScope::VmSubnet {
        vm_network: id(VMNET),
        subnet: net("192.168.0.0/24"),
    };
    f.ip_pools.insert(vp.id, vp);
    f.network_services.insert(
        id(SERVICE),
        NetworkService {
            id: id(SERVICE),
            name: "IPAM".into(),
            description: String::new(),
            category: ServiceCategory::NetworkManager,
            manufacturer: "Microsoft".into(),
            model: "Microsoft Windows Server IP Address Management".into(),
            connection: ConnectionString::parse("ipam1.contoso.com:443").unwrap(),
            run_as: id(ACCOUNT),
            provider: "builtin".into(),
            scope: HostGroupScope::Selected([id(SEATTLE)].into_iter().collect()),
            sync_interval_secs: 300,
            tls_fingerprint: None,
            tls_ca_file: None,
            allow_cleartext: false,
            event_source: None,
            sync_on_change: true,
        },
    );
    f
}

pub fn objects(f: &Fabric) -> Vec<FabricObject> {
    let mut v: Vec<FabricObject> = Vec::new();
    crate::for_each_kind!(T => {
        v.extend(T::all(f).values().cloned().map(T::into_object));
    });
    v
}

/// Every problem the whole-fabric check finds on an object, the per-object check finds too.
pub fn assert_consistent(f: &Fabric) {
    let all = validate_fabric(f);
    for obj in objects(f) {
        let whole: BTreeSet<(Rule, &str)> = all
            .iter()
            .filter(|e| e.object == obj.id() && e.kind == obj.kind())
            .map(|e| (e.rule, e.field.label()))
            .collect();
        let single = validate_object(f, &obj);
        let single: BTreeSet<(Rule, &str)> =
            single.iter().map(|e| (e.rule, e.field.label())).collect();
        assert_eq!(whole, single, "object {:?} {}", obj.kind(), obj.id());
    }
}

/// Applies a mutation and returns the problems, checking both entry points agree.
pub fn broken(change: impl FnOnce(&mut Fabric)) -> Vec<ValidationError> {
    let mut f = base();
    change(&mut f);
    assert_consistent(&f);
    validate_fabric(&f)
}

/// The errors once `p` is added to the fixture.
/// The base fabric with the settings of its pool `POOL` changed (what `change` returns is
/// dropped), validated.
pub fn broken_settings<R>(change: impl FnOnce(&mut PoolSettings) -> R) -> Vec<ValidationError> {
    broken(|f| {
        change(&mut object_mut(&mut f.ip_pools, POOL).settings);
    })
}
pub fn with_pool(p: IpPool) -> Vec<ValidationError> {
    broken(|f| {
        f.ip_pools.insert(p.id, p);
    })
}

/// The errors once `s` is added to the fixture.
pub fn with_site(s: NetworkSite) -> Vec<ValidationError> {
    broken(|f| {
        f.network_sites.insert(s.id, s);
    })
}

pub fn has(errors: &[ValidationError], rule: Rule, object: u128, field: &str) -> bool {
    errors
        .iter()
        .any(|e| e.rule == rule && e.object == id(object) && e.field.label() == field)
}

#[track_caller]
pub fn expect(errors: &[ValidationError], rule: Rule, object: u128, field: &str) {
    assert!(
        has(errors, rule, object, field),
        "expected {rule:?} on {object} field {field}, got {errors:#?}"
    );
    for e in errors {
        let text = e.to_string();
        assert!(text.ends_with('.'), "{text}");
        assert!(
            e.message
                .starts_with(e.field.label().split(' ').next().unwrap_or(""))
                || e.message.contains(e.field.label()),
            "{text}"
        );
    }
}

#[track_caller]
pub fn clean(errors: &[ValidationError]) {
    assert!(errors.is_empty(), "expected no problems, got {errors:#?}");
}
