//! Network sites: logical network and host groups that exist, canonical subnets, VLAN ranges and
//! secondary VLANs only (and always) for private VLAN logical networks.

use ipnet::IpNet;

use super::{Field, Rule, ValidationError, View, names, problem};
use crate::fabric::model::{
    HostGroup, Id, LogicalNetwork, LogicalNetworkIsolation, MAX_VLAN, NetworkSite, ObjectKind,
};

pub(super) fn site_problem(
    s: &NetworkSite,
    field: Field,
    rule: Rule,
    message: String,
) -> ValidationError {
    problem(ObjectKind::NetworkSite, s.id, &s.name, field, rule, message)
}

pub(super) fn check_site(view: &View<'_>, s: &NetworkSite, out: &mut Vec<ValidationError>) {
    out.extend(names::check_name(s));
    out.extend(check_site_logical_network(view, s));
    out.extend(check_site_host_groups(view, s));
    let network = view.get::<LogicalNetwork>(s.logical_network);
    for pair in &s.subnets {
        out.extend(check_subnet_canonical(
            ObjectKind::NetworkSite,
            s.id,
            &s.name,
            Field::Subnet,
            pair.subnet,
        ));
        out.extend(check_vlan(s, pair.vlan));
        out.extend(check_secondary_vlan(
            s,
            network,
            pair.subnet,
            pair.secondary_vlan,
        ));
    }
}

pub(super) fn check_site_logical_network(
    view: &View<'_>,
    s: &NetworkSite,
) -> Option<ValidationError> {
    view.get::<LogicalNetwork>(s.logical_network)
        .is_none()
        .then(|| {
            site_problem(
                s,
                Field::LogicalNetwork,
                Rule::ReferenceMissing,
                format!(
                    "Logical network {} does not exist. Choose an existing logical network.",
                    s.logical_network
                ),
            )
        })
}

pub(super) fn check_site_host_groups(view: &View<'_>, s: &NetworkSite) -> Vec<ValidationError> {
    if s.host_groups.is_empty() {
        return vec![site_problem(
            s,
            Field::HostGroups,
            Rule::SiteWithoutHostGroups,
            "Host groups: none selected. Select at least one host group that can use this network site."
                .to_string(),
        )];
    }
    s.host_groups
        .iter()
        .filter(|g| view.get::<HostGroup>(**g).is_none())
        .map(|g| {
            site_problem(
                s,
                Field::HostGroups,
                Rule::ReferenceMissing,
                format!("Host group {g} does not exist. Remove it from the network site or choose an existing host group."),
            )
        })
        .collect()
}

pub(super) fn check_subnet_canonical(
    kind: ObjectKind,
    id: Id,
    name: &str,
    field: Field,
    subnet: IpNet,
) -> Option<ValidationError> {
    let canonical = subnet.trunc();
    (canonical != subnet).then(|| {
        problem(
            kind,
            id,
            name,
            field,
            Rule::SubnetNotCanonical,
            format!(
                "{field} {subnet} is not a network address: the host bits are set. Use {canonical} instead."
            ),
        )
    })
}

pub(super) fn check_vlan(s: &NetworkSite, vlan: u16) -> Option<ValidationError> {
    (vlan > MAX_VLAN).then(|| {
        site_problem(
            s,
            Field::Vlan,
            Rule::VlanRange,
            format!("VLAN {vlan} is out of range. Choose a VLAN ID from 0 to {MAX_VLAN}."),
        )
    })
}

pub(super) fn check_secondary_vlan(
    s: &NetworkSite,
    network: Option<&LogicalNetwork>,
    subnet: IpNet,
    secondary: Option<u16>,
) -> Option<ValidationError> {
    let network = network?;
    let private = network.isolation == LogicalNetworkIsolation::PrivateVlan;
    match secondary {
        Some(v) if !private => Some(site_problem(
            s,
            Field::SecondaryVlan,
            Rule::SecondaryVlan,
            format!(
                "Secondary VLAN {v} is set for subnet {subnet}, but logical network \"{}\" does not use private VLANs. Clear the secondary VLAN.",
                network.name
            ),
        )),
        Some(v) if v > MAX_VLAN => Some(site_problem(
            s,
            Field::SecondaryVlan,
            Rule::VlanRange,
            format!("Secondary VLAN {v} is out of range. Choose a VLAN ID from 0 to {MAX_VLAN}."),
        )),
        None if private => Some(site_problem(
            s,
            Field::SecondaryVlan,
            Rule::SecondaryVlan,
            format!(
                "Secondary VLAN is missing for subnet {subnet}; logical network \"{}\" uses private VLANs. Enter a secondary VLAN ID from 0 to {MAX_VLAN}.",
                network.name
            ),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;

    #[test]
    fn site_needs_host_groups_that_exist() {
        let errors = broken(|f| object_mut(&mut f.network_sites, SITE).host_groups.clear());
        expect(&errors, Rule::SiteWithoutHostGroups, SITE, "Host groups");
        let errors = broken(|f| {
            object_mut(&mut f.network_sites, SITE)
                .host_groups
                .push(id(555))
        });
        expect(&errors, Rule::ReferenceMissing, SITE, "Host groups");
        clean(&broken(|f| {
            object_mut(&mut f.network_sites, SITE)
                .host_groups
                .push(id(DUBLIN))
        }));
    }

    #[test]
    fn site_logical_network_must_exist() {
        let errors = broken(|f| {
            f.apply_changes(&[FabricChange::Delete(ObjectKind::LogicalNetwork, id(CORP))]);
        });
        expect(&errors, Rule::ReferenceMissing, SITE, "Logical network");
    }

    #[test]
    fn vlan_range() {
        let errors = broken(|f| object_mut(&mut f.network_sites, SITE).subnets[0].vlan = 4095);
        expect(&errors, Rule::VlanRange, SITE, "VLAN");
        clean(&broken(|f| {
            object_mut(&mut f.network_sites, SITE).subnets[0].vlan = 4094
        }));
        let errors = broken(|f| {
            object_mut(&mut f.network_sites, PVLAN_SITE).subnets[0].secondary_vlan = Some(5000)
        });
        expect(&errors, Rule::VlanRange, PVLAN_SITE, "Secondary VLAN");
    }

    #[test]
    fn secondary_vlan_only_and_always_for_private_vlan() {
        let errors =
            broken(|f| object_mut(&mut f.network_sites, SITE).subnets[0].secondary_vlan = Some(3));
        expect(&errors, Rule::SecondaryVlan, SITE, "Secondary VLAN");
        let errors = broken(|f| {
            object_mut(&mut f.network_sites, PVLAN_SITE).subnets[0].secondary_vlan = None
        });
        expect(&errors, Rule::SecondaryVlan, PVLAN_SITE, "Secondary VLAN");
    }

    #[test]
    fn subnets_are_canonical() {
        let errors = broken(|f| {
            let s = object_mut(&mut f.network_sites, SITE);
            s.subnets.push(pair("10.0.5.1/24", 0));
        });
        expect(&errors, Rule::SubnetNotCanonical, SITE, "Subnet");
        let e = errors
            .iter()
            .find(|e| e.rule == Rule::SubnetNotCanonical)
            .unwrap();
        assert!(e.message.contains("Use 10.0.5.0/24"), "{e}");
        let errors = broken(|f| {
            object_mut(&mut f.vm_networks, VMNET)
                .vm_subnets
                .push(net("192.168.7.7/24"))
        });
        expect(&errors, Rule::SubnetNotCanonical, VMNET, "VM subnets");
    }
}
