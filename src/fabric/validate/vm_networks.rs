//! VM networks: a logical network that exists and allows their isolation, VM subnets only with
//! network virtualization, canonical and not overlapping each other.

use ipnet::IpNet;

use super::overlap::{net_end, net_key};
use super::sites::check_subnet_canonical;
use super::{Field, Rule, ValidationError, View, names, problem};
use crate::fabric::model::{
    LogicalNetwork, LogicalNetworkIsolation, ObjectKind, VmNetwork, VmNetworkIsolation,
};

fn vm_problem(v: &VmNetwork, field: Field, rule: Rule, message: String) -> ValidationError {
    problem(ObjectKind::VmNetwork, v.id, &v.name, field, rule, message)
}

pub(super) fn check_vm_network(view: &View<'_>, v: &VmNetwork, out: &mut Vec<ValidationError>) {
    out.extend(names::check_name(v));
    let network = view.get::<LogicalNetwork>(v.logical_network);
    if network.is_none() {
        out.push(vm_problem(
            v,
            Field::LogicalNetwork,
            Rule::ReferenceMissing,
            format!(
                "Logical network {} does not exist. Choose an existing logical network.",
                v.logical_network
            ),
        ));
    }
    out.extend(check_vm_network_isolation(v, network));
    out.extend(check_vm_subnets_allowed(v, network));
    for subnet in &v.vm_subnets {
        out.extend(check_subnet_canonical(
            ObjectKind::VmNetwork,
            v.id,
            &v.name,
            Field::VmSubnets,
            *subnet,
        ));
    }
    out.extend(check_vm_subnet_overlaps(v));
}

fn allows_virtualization(network: Option<&LogicalNetwork>) -> bool {
    network.is_some_and(|n| n.isolation == LogicalNetworkIsolation::NetworkVirtualization)
}

fn check_vm_network_isolation(
    v: &VmNetwork,
    network: Option<&LogicalNetwork>,
) -> Option<ValidationError> {
    let n = network?;
    (v.isolation == VmNetworkIsolation::NetworkVirtualization && !allows_virtualization(network))
        .then(|| {
            vm_problem(
                v,
                Field::Isolation,
                Rule::VmNetworkIsolation,
                format!(
                    "Isolation is network virtualization, but logical network \"{}\" does not allow network virtualization. Choose another isolation or a logical network that allows it.",
                    n.name
                ),
            )
        })
}

fn check_vm_subnets_allowed(
    v: &VmNetwork,
    network: Option<&LogicalNetwork>,
) -> Option<ValidationError> {
    if v.vm_subnets.is_empty() {
        return None;
    }
    if v.isolation != VmNetworkIsolation::NetworkVirtualization {
        return Some(vm_problem(
            v,
            Field::VmSubnets,
            Rule::VmSubnetNotAllowed,
            format!(
                "VM subnets are set, but the VM network's isolation is \"{}\". Remove the VM subnets or choose network virtualization.",
                v.isolation
            ),
        ));
    }
    match network {
        Some(n) if !allows_virtualization(network) => Some(vm_problem(
            v,
            Field::VmSubnets,
            Rule::VmSubnetNotAllowed,
            format!(
                "VM subnets are set, but logical network \"{}\" does not allow network virtualization. Remove the VM subnets or choose a logical network that allows it.",
                n.name
            ),
        )),
        _ => None,
    }
}

fn check_vm_subnet_overlaps(v: &VmNetwork) -> Vec<ValidationError> {
    let mut nets: Vec<(u8, u128, u128, IpNet)> = v
        .vm_subnets
        .iter()
        .map(|n| {
            let (fam, start, _) = net_key(*n);
            (fam, start, net_end(*n), *n)
        })
        .collect();
    nets.sort();
    let mut out = Vec::new();
    let mut reach: Option<(u8, u128, IpNet)> = None;
    for &(fam, start, end, net) in &nets {
        match reach {
            Some((rf, max_end, widest)) if rf == fam && start <= max_end => {
                out.push(vm_problem(
                    v,
                    Field::VmSubnets,
                    Rule::VmSubnetOverlap,
                    format!(
                        "VM subnet {net} overlaps VM subnet {widest} of the same VM network. Remove one of them or choose VM subnets that do not overlap."
                    ),
                ));
                if end > max_end {
                    reach = Some((fam, end, net));
                }
            }
            _ => reach = Some((fam, end, net)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;

    #[test]
    fn vm_subnets_only_with_network_virtualization() {
        let errors = broken(|f| {
            let v = object_mut(&mut f.vm_networks, VMNET);
            v.isolation = VmNetworkIsolation::NoIsolation;
        });
        expect(&errors, Rule::VmSubnetNotAllowed, VMNET, "VM subnets");
        let errors = broken(|f| {
            object_mut(&mut f.vm_networks, VMNET).logical_network = id(CORP);
        });
        expect(&errors, Rule::VmSubnetNotAllowed, VMNET, "VM subnets");
        expect(&errors, Rule::VmNetworkIsolation, VMNET, "Isolation");
        let errors = broken(|f| {
            object_mut(&mut f.vm_networks, VMNET).logical_network = id(777);
        });
        expect(&errors, Rule::ReferenceMissing, VMNET, "Logical network");
        clean(&broken(|f| {
            let v = VmNetwork {
                id: id(52),
                name: "Corp VM Network".into(),
                description: String::new(),
                logical_network: id(CORP),
                isolation: VmNetworkIsolation::NoIsolation,
                vm_subnets: Vec::new(),
            };
            f.vm_networks.insert(v.id, v);
        }));
    }

    #[test]
    fn vm_subnets_of_one_vm_network_do_not_overlap() {
        let errors = broken(|f| {
            object_mut(&mut f.vm_networks, VMNET)
                .vm_subnets
                .push(net("192.168.0.0/16"))
        });
        expect(&errors, Rule::VmSubnetOverlap, VMNET, "VM subnets");
        // Another tenant may reuse the same customer addresses.
        clean(&broken(|f| {
            let mut v = f.vm_networks[&id(VMNET)].clone();
            v.id = id(53);
            v.name = "Fabrikam".into();
            f.vm_networks.insert(v.id, v);
        }));
    }
}
