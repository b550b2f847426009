//! Names: not empty, not too long, unique per kind within their scope (ignoring case and spaces).

use std::collections::HashMap;

use uuid::Uuid;

use super::{Field, Rule, ValidationError, View, problem};
use crate::fabric::model::{
    FabricKind, HostGroup, Id, IpPool, LogicalNetwork, MAX_NAME_LEN, NetworkService, NetworkSite,
    PoolScope, RunAsAccount, VmNetwork,
};

pub(super) fn check_name<T: FabricKind>(o: &T) -> Option<ValidationError> {
    let (kind, id, name) = (T::KIND, o.id(), o.name());
    if name.trim().is_empty() {
        return Some(problem(
            kind,
            id,
            name,
            Field::Name,
            Rule::NameEmpty,
            "Name is empty. Type a name.".to_string(),
        ));
    }
    let len = name.chars().count();
    if len > MAX_NAME_LEN {
        return Some(problem(
            kind,
            id,
            name,
            Field::Name,
            Rule::NameTooLong,
            format!(
                "Name is {len} characters long. Shorten it to {MAX_NAME_LEN} characters or fewer."
            ),
        ));
    }
    None
}

fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// Where a kind's names must be unique, and how a duplicate message names that place.
pub(super) trait NameScope: FabricKind {
    /// The parent, logical network, site or VM network the name is unique in; nil for the whole fabric.
    fn name_scope(&self) -> Id {
        Uuid::nil()
    }
    /// E.g. ` of network site "Seattle"`; empty for kinds unique in the whole fabric.
    fn scope_label(&self, _view: &View<'_>) -> String {
        String::new()
    }
}

impl NameScope for RunAsAccount {}
impl NameScope for LogicalNetwork {}
impl NameScope for VmNetwork {}
impl NameScope for NetworkService {}

impl NameScope for HostGroup {
    fn name_scope(&self) -> Id {
        self.parent.unwrap_or(Uuid::nil())
    }
    fn scope_label(&self, view: &View<'_>) -> String {
        match self.parent {
            Some(p) => format!(" under \"{}\"", view.host_group_path(p)),
            None => " at the top of the tree".to_string(),
        }
    }
}

impl NameScope for NetworkSite {
    fn name_scope(&self) -> Id {
        self.logical_network
    }
    fn scope_label(&self, view: &View<'_>) -> String {
        match view.get::<LogicalNetwork>(self.logical_network) {
            Some(n) => format!(" of logical network \"{}\"", n.name),
            None => String::new(),
        }
    }
}

impl NameScope for IpPool {
    fn name_scope(&self) -> Id {
        pool_owner(&self.scope)
    }
    fn scope_label(&self, view: &View<'_>) -> String {
        match &self.scope {
            PoolScope::Site { site, .. } => match view.get::<NetworkSite>(*site) {
                Some(s) => format!(" of network site \"{}\"", s.name),
                None => String::new(),
            },
            PoolScope::VmSubnet { vm_network, .. } => match view.get::<VmNetwork>(*vm_network) {
                Some(v) => format!(" of VM network \"{}\"", v.name),
                None => String::new(),
            },
        }
    }
}

/// The object a pool's name must be unique in: its site or its VM network.
pub(super) fn pool_owner(scope: &PoolScope) -> Id {
    match scope {
        PoolScope::Site { site, .. } => *site,
        PoolScope::VmSubnet { vm_network, .. } => *vm_network,
    }
}

/// Names are unique per kind (within a scope), ignoring case and surrounding spaces.
pub(super) fn check_unique_names(view: &View<'_>, out: &mut Vec<ValidationError>) {
    crate::for_each_kind!(T => {
        if view.wants(T::KIND) {
            check_unique::<T>(view, out);
        }
    });
}

fn check_unique<T: NameScope>(view: &View<'_>, out: &mut Vec<ValidationError>) {
    // With a candidate, only its scope can hold a clash.
    let scope = view.candidate::<T>().map(|c| c.name_scope());
    let mut by_key: HashMap<(Id, String), Vec<&T>> = HashMap::new();
    for o in view.all::<T>() {
        if o.name().trim().is_empty() || scope.is_some_and(|s| s != o.name_scope()) {
            continue;
        }
        by_key
            .entry((o.name_scope(), name_key(o.name())))
            .or_default()
            .push(o);
    }
    let mut dups: Vec<_> = by_key.into_values().filter(|v| v.len() > 1).collect();
    dups.sort_by_key(|v| v[0].id());
    for group in dups {
        for o in group {
            out.push(problem(
                T::KIND,
                o.id(),
                o.name(),
                Field::Name,
                Rule::NameDuplicate,
                format!(
                    "Name \"{}\" is already used by another {}{}. Choose a different name.",
                    o.name().trim(),
                    T::KIND.label(),
                    o.scope_label(view)
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;

    #[test]
    fn name_empty_and_too_long() {
        let errors = broken(|f| object_mut(&mut f.logical_networks, CORP).name = "  ".into());
        expect(&errors, Rule::NameEmpty, CORP, "Name");
        let errors = broken(|f| object_mut(&mut f.logical_networks, CORP).name = "x".repeat(65));
        expect(&errors, Rule::NameTooLong, CORP, "Name");
        clean(&broken(|f| {
            object_mut(&mut f.logical_networks, CORP).name = "é".repeat(MAX_NAME_LEN)
        }));
    }

    #[test]
    fn logical_network_names_unique_ignoring_case() {
        let errors = broken(|f| object_mut(&mut f.logical_networks, PVLAN).name = "CORP".into());
        expect(&errors, Rule::NameDuplicate, PVLAN, "Name");
        expect(&errors, Rule::NameDuplicate, CORP, "Name");
        clean(&broken(|f| {
            object_mut(&mut f.logical_networks, PVLAN).name = "Corp 2".into()
        }));
    }

    #[test]
    fn host_group_names_unique_among_siblings_only() {
        let errors = broken(|f| object_mut(&mut f.host_groups, DUBLIN).name = "seattle".into());
        expect(&errors, Rule::NameDuplicate, DUBLIN, "Name");
        // A "Seattle" below Dublin is a different place.
        clean(&broken(|f| {
            let g = group(99, "Seattle", Some(DUBLIN));
            f.host_groups.insert(g.id, g);
        }));
    }

    #[test]
    fn run_as_vm_network_and_service_names_unique() {
        let errors = broken(|f| {
            let mut a = f.run_as_accounts[&id(ACCOUNT)].clone();
            a.id = id(11);
            a.name = "ipam service account".into();
            f.run_as_accounts.insert(a.id, a);
        });
        expect(&errors, Rule::NameDuplicate, 11, "Name");
        let errors = broken(|f| {
            let mut v = f.vm_networks[&id(VMNET)].clone();
            v.id = id(51);
            v.vm_subnets.clear();
            f.vm_networks.insert(v.id, v);
        });
        expect(&errors, Rule::NameDuplicate, 51, "Name");
        let errors = broken(|f| {
            let mut n = f.network_services[&id(SERVICE)].clone();
            n.id = id(61);
            f.network_services.insert(n.id, n);
        });
        expect(&errors, Rule::NameDuplicate, 61, "Name");
        clean(&broken(|f| {
            let mut n = f.network_services[&id(SERVICE)].clone();
            n.id = id(61);
            n.name = "IPAM 2".into();
            f.network_services.insert(n.id, n);
        }));
    }

    #[test]
    fn site_names_unique_within_logical_network() {
        let errors = with_site(site(32, "corp_seattle", CORP, &[DUBLIN], vec![]));
        expect(&errors, Rule::NameDuplicate, 32, "Name");
        clean(&with_site(site(
            32,
            "Corp_Seattle",
            PVLAN,
            &[DUBLIN],
            vec![pvlan_pair("10.9.1.0/24", 5, 6)],
        )));
    }

    #[test]
    fn pool_names_unique_within_site() {
        let errors = with_pool(pool(
            42,
            "pool a",
            SITE,
            "10.0.0.0/24",
            "10.0.0.150",
            "10.0.0.160",
        ));
        expect(&errors, Rule::NameDuplicate, 42, "Name");
        // Same name on the VM network is fine.
        clean(&broken(|f| {
            object_mut(&mut f.ip_pools, VM_POOL).name = "Pool A".into()
        }));
    }
}
