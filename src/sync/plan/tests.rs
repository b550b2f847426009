//! The planner end to end: one world, synced and edited on either side.

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;

use super::*;
use crate::fabric::connection::ConnectionString;
use crate::fabric::model::*;
use crate::ipam::model::{
    AddressSpace, AddressSpaceKind, IpRange, IpamId, IpamOp, IpamSnapshot, IpamSubnet,
};
use crate::sync::normal::BaseState;
use std::net::IpAddr;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}
fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// A subnet of the "Backend" network an IPAM administrator made by hand, for `site`.
fn hand_made_subnet(
    id: &str,
    address_space: IpamId,
    network: &str,
    site: &str,
    vlan: u16,
) -> IpamSubnet {
    IpamSubnet {
        vmm_logical_network: Some("Backend".into()),
        network_site: Some(site.into()),
        vlan,
        ..IpamSubnet::new(id, address_space, net(network))
    }
}

/// A provider address space an IPAM administrator made by hand.
fn hand_made_space(id: &str, name: &str, logical_network: Option<&str>) -> AddressSpace {
    AddressSpace {
        vmm_logical_network: logical_network.map(str::to_string),
        ..AddressSpace::new(id, name, AddressSpaceKind::Provider)
    }
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
        settings: PoolSettings {
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
        },
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
        tls_ca_file: None,
        allow_cleartext: false,
        event_source: None,
        sync_on_change: true,
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

/// The world after its first sync.
fn synced_world() -> World {
    let mut w = world();
    w.sync();
    w
}

fn apply_ops(snap: &mut IpamSnapshot, ops: &[IpamOp]) {
    crate::sync::apply::apply_to_mirror(snap, ops);
}

/// The plan's IPAM creates, updates and deletes.
fn assert_ipam_counts(p: &SyncPlan, create: u32, update: u32, delete: u32) {
    assert_eq!(
        p.summary.total(Side::Ipam),
        Counts {
            create,
            update,
            delete
        },
        "{:?}",
        p.summary
    );
}

impl World {
    fn plan(&self) -> SyncPlan {
        self.plan_reading(true)
    }
    /// Plan, with the IPAM read complete or not.
    fn plan_reading(&self, ipam_complete: bool) -> SyncPlan {
        plan(&PlanInput {
            fabric: &self.fabric,
            service: &self.service,
            ipam: &self.ipam,
            ipam_complete,
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
    /// The IPAM range linked to a pool.
    fn range_of(&mut self, pool: Id) -> &mut IpRange {
        self.ipam
            .ranges
            .iter_mut()
            .find(|r| r.vmm_id == Some(pool))
            .unwrap()
    }
    /// The console object of kind `T` named `name`.
    fn console_named<T: FabricKind>(&self, name: &str) -> Option<&T> {
        T::all(&self.fabric).values().find(|o| o.name() == name)
    }
    /// The first IPAM address space that `f` accepts.
    fn ipam_space(&self, f: impl Fn(&&AddressSpace) -> bool) -> Option<&AddressSpace> {
        self.ipam.spaces.iter().find(f)
    }
    /// The first IPAM subnet that `f` accepts.
    fn ipam_subnet(&self, f: impl Fn(&&IpamSubnet) -> bool) -> Option<&IpamSubnet> {
        self.ipam.subnets.iter().find(f)
    }
    /// The settings of the console's pool.
    fn pool_settings_mut(&mut self) -> &mut PoolSettings {
        &mut self.fabric.ip_pools.get_mut(&self.pool).unwrap().settings
    }
    fn range_mut(&mut self) -> &mut IpRange {
        let pool = self.pool;
        self.range_of(pool)
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
    assert_ipam_counts(&p, 6, 0, 0);
    assert!(p.console_changes.is_empty());
    let space = w.provider_space().clone();
    assert_eq!(space.vmm_logical_network.as_deref(), Some("Backend"));
    assert_eq!(space.name, "Backend");
    let sn = w.ipam_subnet(|s| s.network == net("10.1.0.0/24")).unwrap();
    assert_eq!(sn.network_site.as_deref(), Some("Backend_Seattle"));
    assert_eq!(sn.vmm_logical_network.as_deref(), Some("Backend"));
    assert_eq!(sn.vlan, 10);
    let cust = w
        .ipam_space(|s| s.kind == AddressSpaceKind::Customer)
        .unwrap();
    assert_eq!(cust.vm_network.as_deref(), Some("Tenant A"));
    assert_eq!(cust.provider_space.as_ref(), Some(&space.id));
    let again = w.plan();
    assert!(again.is_noop(), "second plan: {:?}", again.summary);
    assert!(again.conflicts.is_empty());
}

#[test]
fn console_edits_reach_ipam() {
    let mut w = synced_world();
    let ln = w.ln;
    w.fabric.logical_networks.get_mut(&ln).unwrap().name = "Backend-Prod".into();
    w.pool_settings_mut().dns_servers = vec![ip("10.0.0.54")];
    let site = w.site;
    w.fabric.network_sites.get_mut(&site).unwrap().subnets[1].vlan = 99;
    let p = w.sync();
    assert_ipam_counts(&p, 0, 4, 0);
    assert_eq!(
        w.provider_space().vmm_logical_network.as_deref(),
        Some("Backend-Prod")
    );
    assert_eq!(w.range_mut().settings.dns_servers, vec![ip("10.0.0.54")]);
    assert!(
        w.ipam_subnet(|s| s.vlan == 99 && s.vmm_logical_network.as_deref() == Some("Backend-Prod"))
            .is_some()
    );
    assert!(w.plan().is_noop());
}

#[test]
fn ipam_edits_reach_the_console() {
    let mut w = synced_world();
    w.range_mut().settings.dns_servers = vec![ip("10.9.9.9")];
    w.range_mut().end = ip("10.1.0.150");
    let space_id = w.provider_space().id.clone();
    // An IPAM administrator adds a subnet to a new network site.
    w.ipam.subnets.push(IpamSubnet {
        name: "10.1.7.0/24".into(),
        ..hand_made_subnet("admin-1", space_id, "10.1.7.0/24", "Backend_Dublin", 70)
    });
    let p = w.sync();
    let pool = &w.fabric.ip_pools[&w.pool];
    assert_eq!(pool.settings.dns_servers, vec![ip("10.9.9.9")]);
    assert_eq!(pool.range_end, ip("10.1.0.150"));
    let dublin = w
        .console_named::<NetworkSite>("Backend_Dublin")
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
    assert_eq!(p.summary.total(Side::Ipam).update, 1);
    assert!(
        w.ipam_subnet(|s| s.id == "admin-1" && s.vmm_id == Some(dublin.id))
            .is_some()
    );
    assert!(w.plan().is_noop(), "{:?}", w.plan().summary);
}

#[test]
fn ipam_space_created_by_name_becomes_a_logical_network() {
    let mut w = synced_world();
    w.ipam
        .spaces
        .push(hand_made_space("space-x", "Storage", Some("Storage")));
    w.sync();
    let ln = w
        .console_named::<LogicalNetwork>("Storage")
        .expect("created");
    assert_eq!(
        w.ipam_space(|s| s.id == "space-x").unwrap().vmm_id,
        Some(ln.id)
    );
    assert!(w.plan().is_noop());
}

#[test]
fn a_pool_deleted_in_the_console_and_changed_in_ipam_stays_a_conflict_until_decided() {
    let mut w = synced_world();
    let pool = w.pool;
    w.fabric
        .apply_changes(&[FabricChange::Delete(ObjectKind::IpPool, pool)]);
    w.range_mut().settings.dns_servers = vec![ip("10.9.9.9")];
    for _ in 0..2 {
        let p = w.sync();
        assert!(
            p.conflicts
                .iter()
                .any(|c| c.object == pool && c.field == "Exists"),
            "{:?}",
            p.conflicts
        );
        // Neither deleted on the server nor imported back into the console while undecided.
        assert!(p.console_changes.is_empty(), "{:?}", p.console_changes);
        assert!(p.ipam_ops.is_empty(), "{:?}", p.ipam_ops);
    }
    assert!(!w.fabric.ip_pools.contains_key(&pool));
    // Keep the console's deletion: the range goes, and both sides agree.
    w.resolutions.insert(
        ConflictKey::new(ObjectKind::IpPool, pool, "exists").to_string(),
        Resolution::KeepConsole,
    );
    let p = w.sync();
    assert_eq!(p.ipam_ops.len(), 1, "{:?}", p.ipam_ops);
    w.resolutions.clear();
    assert!(w.plan().is_noop());
    assert!(w.ipam.ranges.iter().all(|r| r.vmm_id != Some(pool)));
}

#[test]
fn vm_subnet_edits_in_ipam_are_put_back() {
    let mut w = synced_world();
    let vmn = w.vmn;
    let space = w.ipam_space(|s| s.vmm_id == Some(vmn)).unwrap().id.clone();
    let subnet = w
        .ipam
        .subnets
        .iter_mut()
        .find(|s| s.address_space == space)
        .unwrap();
    let before = subnet.clone();
    subnet.name = "edited by hand".into();
    subnet.vlan = 99;
    let p = w.sync();
    let fields: Vec<&str> = p
        .conflicts
        .iter()
        .filter(|c| c.put_back && c.object == vmn)
        .map(|c| c.field.as_str())
        .collect();
    assert_eq!(
        fields,
        [
            "VM subnet 192.168.0.0/24: Description",
            "VM subnet 192.168.0.0/24: VLAN"
        ]
    );
    assert!(p.console_changes.is_empty());
    let after = w.ipam.subnets.iter().find(|s| s.id == before.id).unwrap();
    assert_eq!(*after, before);
    assert!(w.plan().is_noop());
}

#[test]
fn vm_network_changes_in_ipam_are_put_back() {
    let mut w = synced_world();
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
    let space = w.ipam_space(|s| s.vmm_id == Some(vmn)).unwrap();
    assert_eq!(space.vm_network.as_deref(), Some("Tenant A"));
    assert_eq!(w.fabric.vm_networks[&vmn].name, "Tenant A");
    // A VM subnet deleted in IPAM comes back.
    w.ipam.subnets.retain(|s| s.vmm_id != Some(vmn));
    w.sync();
    assert!(
        w.ipam_subnet(|s| s.vmm_id == Some(vmn) && s.network == net("192.168.0.0/24"))
            .is_some()
    );
    assert!(w.plan().is_noop());
}

#[test]
fn deleting_all_subnets_in_ipam_deletes_the_logical_network() {
    let mut w = synced_world();
    let space = w.provider_space().id.clone();
    let ids: BTreeSet<IpamId> = w
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
    let mut w = synced_world();
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
        w.ipam_space(|s| s.vmm_id == Some(ln)).is_none(),
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
        w.ipam_subnet(|s| s.network == net("10.2.0.0/24")).is_none(),
        "Dublin pushed"
    );
    assert!(w.ipam_subnet(|s| s.network == net("10.1.0.0/24")).is_some());
    // Someone else's subnet for the Dublin site in the same space: never touched.
    let space = w.provider_space().id.clone();
    w.ipam.subnets.push(IpamSubnet {
        vmm_id: Some(dublin_site),
        ..hand_made_subnet(
            "other",
            space.clone(),
            "10.2.0.0/24",
            "Backend_Dublin-renamed",
            21,
        )
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
    assert!(w.ipam_subnet(|s| s.id == "other").is_some());
}

#[test]
fn conflicts_are_reported_then_resolved_either_way() {
    for resolution in [Resolution::KeepConsole, Resolution::TakeIpam] {
        let mut w = synced_world();
        let pool = w.pool;
        w.pool_settings_mut().dns_suffix = "console.contoso.com".into();
        w.range_mut().settings.dns_suffix = "ipam.contoso.com".into();
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
        w.resolutions.insert(c.key.to_string(), resolution);
        w.sync();
        let want = match resolution {
            Resolution::KeepConsole => "console.contoso.com",
            Resolution::TakeIpam => "ipam.contoso.com",
        };
        assert_eq!(w.fabric.ip_pools[&pool].settings.dns_suffix, want);
        assert_eq!(w.range_mut().settings.dns_suffix, want);
        w.resolutions.clear();
        assert!(w.plan().is_noop());
    }
}

#[test]
fn same_change_on_both_sides_converges() {
    let mut w = synced_world();
    w.pool_settings_mut().dns_suffix = "NEW.contoso.com.".into();
    w.range_mut().settings.dns_suffix = "new.contoso.com".into();
    let p = w.sync();
    assert!(p.conflicts.is_empty());
    assert!(w.plan().is_noop());
}

#[test]
fn objects_the_console_did_not_create_are_never_deleted() {
    let mut w = synced_world();
    w.ipam
        .spaces
        .push(hand_made_space("hand-made", "Lab", None));
    let p = w.sync();
    assert!(p.is_noop());
    assert!(w.ipam_space(|s| s.id == "hand-made").is_some());
}

#[test]
fn console_deletions_reach_ipam_and_incomplete_reads_delete_nothing() {
    let mut w = synced_world();
    let pool = w.pool;
    w.fabric.ip_pools.remove(&pool);
    let p = w.plan_reading(false);
    assert!(p.ipam_ops.is_empty());
    let p = w.sync();
    assert_ipam_counts(&p, 0, 0, 1);
    assert!(w.ipam.ranges.is_empty());
}

#[test]
fn ipam_range_deleted_deletes_the_pool() {
    let mut w = synced_world();
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
    p.settings.gateways = vec![Gateway::Automatic {
        address: ip("192.168.0.1"),
    }];
    p.settings.reserved.clear();
    w.fabric.ip_pools.insert(id, p);
    w.sync();
    let vmn = w.vmn;
    let customer: Vec<IpamId> = w
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
    w.range_of(id).end = ip("192.168.0.50");
    w.range_of(id).settings.dns_suffix = "edited.example".into();
    let p = w.sync();
    // Each edited field is named, with both values.
    let mut put_back: Vec<(&str, &str, &str)> = p
        .conflicts
        .iter()
        .filter(|c| c.put_back && c.object == id)
        .map(|c| (c.field.as_str(), c.ipam.as_str(), c.console.as_str()))
        .collect();
    put_back.sort();
    assert_eq!(put_back.len(), 2, "{put_back:?}");
    assert_eq!(put_back[0].0, "DNS suffix");
    assert!(put_back[0].1.contains("edited.example"), "{put_back:?}");
    assert_eq!(put_back[1], ("Range end", "192.168.0.50", "192.168.0.100"));
    assert!(p.console_changes.is_empty());
    assert_eq!(w.range_of(id).end, ip("192.168.0.100"));
    // A console edit goes out; a console delete removes the range.
    w.fabric.ip_pools.get_mut(&id).unwrap().range_end = ip("192.168.0.120");
    w.sync();
    assert_eq!(w.range_of(id).end, ip("192.168.0.120"));
    w.fabric.ip_pools.remove(&id);
    w.sync();
    assert!(!w.ipam.ranges.iter().any(|r| r.vmm_id == Some(id)));
    assert!(w.plan().is_noop());
}

#[test]
fn site_rename_in_ipam_renames_the_console_site() {
    let mut w = synced_world();
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
