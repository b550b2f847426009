//! Fabric validation. One function per rule, one file per rule family; every problem is a
//! [`ValidationError`] that names the object, the field and what to do. `validate_fabric` checks a
//! whole fabric in O(n log n); `validate_object` runs the same rules over the fabric with one
//! object swapped in, for live dialog errors, so a dialog accepts exactly what the store accepts.

use std::fmt;

use super::model::{
    Fabric, FabricObject, HostGroup, Id, IpPool, LogicalNetwork, NetworkService, NetworkSite,
    ObjectKind, RunAsAccount, VmNetwork,
};

mod field;
#[cfg(test)]
mod fixtures;
mod host_groups;
mod names;
mod overlap;
mod pools;
pub mod services;
mod sites;
mod view;
mod vm_networks;

pub use field::Field;
use view::View;

pub use services::{MAX_SYNC_INTERVAL_SECS, MIN_SYNC_INTERVAL_SECS};

/// Which rule a problem breaks, so callers and tests can tell problems apart without parsing text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    NameEmpty,
    NameTooLong,
    NameDuplicate,
    /// Exactly one parentless host group, named "All Hosts".
    RootHostGroup,
    /// A referenced object (parent, logical network, host group, site, VM network, Run As account) is missing.
    ReferenceMissing,
    ParentCycle,
    SiteWithoutHostGroups,
    VlanRange,
    SecondaryVlan,
    SubnetNotCanonical,
    SubnetOverlap,
    /// A pool's subnet is not one of its site's subnets (or its VM network's VM subnets).
    PoolSubnetUnknown,
    PoolRangeOrder,
    PoolOutsideSubnet,
    PoolOverlap,
    GatewayOutsideSubnet,
    AddressOutsidePool,
    AddressFamily,
    VmNetworkIsolation,
    VmSubnetNotAllowed,
    VmSubnetOverlap,
    UserNameEmpty,
    ProviderEmpty,
    ServiceScope,
    SyncInterval,
    /// A pinned fingerprint that is not one, or a certificate setting with plain HTTP.
    TlsSettings,
    /// An event source that is not a `redis://host:port` without a password.
    EventSource,
    /// A pool edit that would leave an address granted from the pool outside its range or
    /// reserved.
    GrantStranded,
}

/// One problem in the fabric. Displayed as one sentence: what is wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ValidationError {
    pub kind: ObjectKind,
    /// Id of the object that has to change (nil when the object is missing, e.g. no root host group).
    pub object: Id,
    pub name: String,
    /// The field as the dialog shows it; `field.label()` is e.g. "Range end", "Subnet", "VLAN".
    pub field: Field,
    /// Starts with the field label and ends with what to do.
    pub message: String,
    pub rule: Rule,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = self.kind.label();
        let mut chars = label.chars();
        if let Some(first) = chars.next() {
            write!(f, "{}{}", first.to_uppercase(), chars.as_str())?;
        }
        if self.name.trim().is_empty() {
            write!(f, " (unnamed): {}", self.message)
        } else {
            write!(f, " \"{}\": {}", self.name, self.message)
        }
    }
}

impl std::error::Error for ValidationError {}

pub(super) fn problem(
    kind: ObjectKind,
    object: Id,
    name: &str,
    field: Field,
    rule: Rule,
    message: String,
) -> ValidationError {
    ValidationError {
        kind,
        object,
        name: name.to_string(),
        field,
        message,
        rule,
    }
}

/// Runs every rule over the whole fabric and returns every problem found.
pub fn validate_fabric(f: &Fabric) -> Vec<ValidationError> {
    run_rules(&View::whole(f))
}

/// Validates `obj` as if it were put into `f` (replacing the object with the same id), and returns the
/// problems of that object only. The rules are the store's, run over a view of the fabric with the
/// candidate in place; cross-object rules look only at objects that can clash with it, so this stays
/// cheap enough for every keystroke of a dialog.
pub fn validate_object(f: &Fabric, obj: &FabricObject) -> Vec<ValidationError> {
    let (kind, id) = (obj.kind(), obj.id());
    let mut out = run_rules(&View::with_candidate(f, obj));
    out.retain(|e| e.kind == kind && e.object == id);
    out
}

/// Every rule, in the order problems are reported.
fn run_rules(view: &View<'_>) -> Vec<ValidationError> {
    let mut out = Vec::new();
    if view.wants(ObjectKind::HostGroup) {
        host_groups::check_root_host_group(view, &mut out);
        host_groups::check_host_group_cycles(view, &mut out);
    }
    for g in view.subjects::<HostGroup>() {
        out.extend(names::check_name(g));
        out.extend(host_groups::check_parent_exists(view, g));
    }
    for a in view.subjects::<RunAsAccount>() {
        out.extend(names::check_name(a));
        out.extend(services::check_user_name(a));
    }
    for n in view.subjects::<LogicalNetwork>() {
        out.extend(names::check_name(n));
    }
    for s in view.subjects::<NetworkSite>() {
        sites::check_site(view, s, &mut out);
    }
    for p in view.subjects::<IpPool>() {
        pools::check_pool(view, p, &mut out);
    }
    for v in view.subjects::<VmNetwork>() {
        vm_networks::check_vm_network(view, v, &mut out);
    }
    for n in view.subjects::<NetworkService>() {
        services::check_service(view, n, &mut out);
    }
    names::check_unique_names(view, &mut out);
    if view.wants(ObjectKind::NetworkSite) {
        overlap::check_subnet_overlaps(view, &mut out);
    }
    if view.wants(ObjectKind::IpPool) {
        pools::check_pool_overlaps(view, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[test]
    fn base_fabric_is_valid() {
        let f = base();
        clean(&validate_fabric(&f));
        assert_consistent(&f);
    }

    #[test]
    fn display_is_one_sentence_naming_object_and_field() {
        let errors = broken(|f| {
            object_mut(&mut f.ip_pools, POOL).range_end = ip("10.0.1.5");
        });
        let e = errors
            .iter()
            .find(|e| e.rule == Rule::PoolOutsideSubnet)
            .unwrap();
        assert_eq!(
            e.to_string(),
            "Static IP address pool \"Pool A\": Range end 10.0.1.5 is outside subnet 10.0.0.0/24. Choose an address inside the subnet."
        );
        assert_eq!(e.kind, ObjectKind::IpPool);
        assert_eq!(e.field.label(), "Range end");
    }

    #[test]
    fn validate_object_sees_the_candidate_not_the_stored_version() {
        let f = base();
        let mut p = f.ip_pools[&id(POOL)].clone();
        p.range_end = ip("10.0.0.5");
        let errors = validate_object(&f, &FabricObject::IpPool(p.clone()));
        assert!(errors.iter().all(|e| e.object == id(POOL)));
        assert!(has(&errors, Rule::PoolRangeOrder, POOL, "Range end"));
        // A new site that reuses Seattle's subnet under Rack A is caught before it is saved.
        let s = site(
            36,
            "Corp_RackA",
            CORP,
            &[RACK_A],
            vec![pair("10.0.0.0/24", 1)],
        );
        let errors = validate_object(&f, &FabricObject::NetworkSite(s));
        assert!(
            has(&errors, Rule::SubnetOverlap, 36, "Subnet"),
            "{errors:#?}"
        );
        // Renaming a group to its own old name is not a duplicate.
        let g = f.host_groups[&id(SEATTLE)].clone();
        clean(&validate_object(&f, &FabricObject::HostGroup(g)));
    }
}
