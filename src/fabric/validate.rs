//! Fabric validation. One function per rule; every problem is a [`ValidationError`] that names the
//! object, the field and what to do. `validate_fabric` checks a whole fabric in O(n log n);
//! `validate_object` checks one object as if it were put into a fabric, for live dialog errors.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use uuid::Uuid;

use super::model::{
    Fabric, FabricObject, HostGroup, HostGroupScope, Id, IpPool, LogicalNetwork,
    LogicalNetworkIsolation, MAX_NAME_LEN, MAX_VLAN, NetworkService, NetworkSite, ObjectKind,
    PoolScope, ROOT_HOST_GROUP, RunAsAccount, VmNetwork, VmNetworkIsolation,
};

/// Background syncs closer together than this would load the IPAM server for no gain.
pub const MIN_SYNC_INTERVAL_SECS: u64 = 30;

/// Matches per subnet are capped so a fabric full of one duplicated subnet stays linear.
const MAX_OVERLAPS_PER_SUBNET: usize = 8;

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
}

/// One problem in the fabric. Displayed as one sentence: what is wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ValidationError {
    pub kind: ObjectKind,
    /// Id of the object that has to change (nil when the object is missing, e.g. no root host group).
    pub object: Id,
    pub name: String,
    /// Human field label as the dialog shows it, e.g. "Range end", "Subnet", "VLAN", "Name".
    pub field: &'static str,
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

fn problem(
    kind: ObjectKind,
    object: Id,
    name: &str,
    field: &'static str,
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
    let view = View::whole(f);
    let mut out = Vec::new();
    let children = children_index(f);

    check_root_host_group(f, &mut out);
    check_host_group_cycles(f, &mut out);
    for g in f.host_groups.values() {
        out.extend(check_name(ObjectKind::HostGroup, g.id, &g.name));
        out.extend(check_parent_exists(&view, g));
    }
    for a in f.run_as_accounts.values() {
        out.extend(check_name(ObjectKind::RunAsAccount, a.id, &a.name));
        out.extend(check_user_name(a));
    }
    for n in f.logical_networks.values() {
        out.extend(check_name(ObjectKind::LogicalNetwork, n.id, &n.name));
    }
    for s in f.network_sites.values() {
        check_site(&view, s, &mut out);
    }
    for p in f.ip_pools.values() {
        check_pool(&view, p, &mut out);
    }
    for v in f.vm_networks.values() {
        check_vm_network(&view, v, &mut out);
    }
    for n in f.network_services.values() {
        check_service(&view, n, &mut out);
    }
    check_unique_names(f, &mut out);
    check_subnet_overlaps(f, &children, &mut out);
    check_pool_overlaps(f, &mut out);
    out
}

/// Validates `obj` as if it were put into `f` (replacing the object with the same id), and returns the
/// problems of that object only. Cheap enough to run on every keystroke of a dialog.
pub fn validate_object(f: &Fabric, obj: &FabricObject) -> Vec<ValidationError> {
    let view = View {
        fabric: f,
        candidate: Some(obj),
    };
    let mut out = Vec::new();
    match obj {
        FabricObject::HostGroup(g) => {
            out.extend(check_name(ObjectKind::HostGroup, g.id, &g.name));
            out.extend(check_root_candidate(f, g));
            out.extend(check_parent_exists(&view, g));
            out.extend(check_parent_cycle_candidate(&view, g));
            out.extend(check_unique_candidate(
                ObjectKind::HostGroup,
                g.id,
                &g.name,
                f.host_groups
                    .values()
                    .filter(|o| o.parent == g.parent)
                    .map(|o| (o.id, o.name.as_str())),
                || sibling_scope(&view, g.parent),
            ));
        }
        FabricObject::RunAsAccount(a) => {
            out.extend(check_name(ObjectKind::RunAsAccount, a.id, &a.name));
            out.extend(check_user_name(a));
            out.extend(check_unique_candidate(
                ObjectKind::RunAsAccount,
                a.id,
                &a.name,
                f.run_as_accounts.values().map(|o| (o.id, o.name.as_str())),
                String::new,
            ));
        }
        FabricObject::LogicalNetwork(n) => {
            out.extend(check_name(ObjectKind::LogicalNetwork, n.id, &n.name));
            out.extend(check_unique_candidate(
                ObjectKind::LogicalNetwork,
                n.id,
                &n.name,
                f.logical_networks.values().map(|o| (o.id, o.name.as_str())),
                String::new,
            ));
        }
        FabricObject::NetworkSite(s) => {
            check_site(&view, s, &mut out);
            out.extend(check_unique_candidate(
                ObjectKind::NetworkSite,
                s.id,
                &s.name,
                f.network_sites
                    .values()
                    .filter(|o| o.logical_network == s.logical_network)
                    .map(|o| (o.id, o.name.as_str())),
                || site_scope(&view, s.logical_network),
            ));
            out.extend(check_subnet_overlaps_candidate(&view, s));
        }
        FabricObject::IpPool(p) => {
            check_pool(&view, p, &mut out);
            let key = pool_owner(&p.scope);
            out.extend(check_unique_candidate(
                ObjectKind::IpPool,
                p.id,
                &p.name,
                f.ip_pools
                    .values()
                    .filter(|o| pool_owner(&o.scope) == key)
                    .map(|o| (o.id, o.name.as_str())),
                || pool_scope_label(&view, &p.scope),
            ));
            out.extend(check_pool_overlap_candidate(f, p));
        }
        FabricObject::VmNetwork(v) => {
            check_vm_network(&view, v, &mut out);
            out.extend(check_unique_candidate(
                ObjectKind::VmNetwork,
                v.id,
                &v.name,
                f.vm_networks.values().map(|o| (o.id, o.name.as_str())),
                String::new,
            ));
        }
        FabricObject::NetworkService(n) => {
            check_service(&view, n, &mut out);
            out.extend(check_unique_candidate(
                ObjectKind::NetworkService,
                n.id,
                &n.name,
                f.network_services.values().map(|o| (o.id, o.name.as_str())),
                String::new,
            ));
        }
    }
    out
}

/// The fabric, optionally with one object replaced by a candidate that is being edited.
struct View<'a> {
    fabric: &'a Fabric,
    candidate: Option<&'a FabricObject>,
}

impl<'a> View<'a> {
    fn whole(fabric: &'a Fabric) -> Self {
        View {
            fabric,
            candidate: None,
        }
    }

    fn host_group(&self, id: Id) -> Option<&'a HostGroup> {
        if let Some(FabricObject::HostGroup(g)) = self.candidate
            && g.id == id
        {
            return Some(g);
        }
        self.fabric.host_groups.get(&id)
    }

    fn logical_network(&self, id: Id) -> Option<&'a LogicalNetwork> {
        if let Some(FabricObject::LogicalNetwork(n)) = self.candidate
            && n.id == id
        {
            return Some(n);
        }
        self.fabric.logical_networks.get(&id)
    }

    fn site(&self, id: Id) -> Option<&'a NetworkSite> {
        if let Some(FabricObject::NetworkSite(s)) = self.candidate
            && s.id == id
        {
            return Some(s);
        }
        self.fabric.network_sites.get(&id)
    }

    fn vm_network(&self, id: Id) -> Option<&'a VmNetwork> {
        if let Some(FabricObject::VmNetwork(v)) = self.candidate
            && v.id == id
        {
            return Some(v);
        }
        self.fabric.vm_networks.get(&id)
    }

    fn run_as(&self, id: Id) -> Option<&'a RunAsAccount> {
        if let Some(FabricObject::RunAsAccount(a)) = self.candidate
            && a.id == id
        {
            return Some(a);
        }
        self.fabric.run_as_accounts.get(&id)
    }

    /// "All Hosts/Seattle/Rack 1", walking parents through the candidate; stops on cycles.
    fn host_group_path(&self, id: Id) -> String {
        let mut names = Vec::new();
        let mut seen = HashSet::new();
        let mut cur = Some(id);
        while let Some(g) = cur {
            if !seen.insert(g) {
                break;
            }
            match self.host_group(g) {
                Some(h) => {
                    names.push(h.name.as_str());
                    cur = h.parent;
                }
                None => break,
            }
        }
        names.reverse();
        names.join("/")
    }
}

fn children_index(f: &Fabric) -> HashMap<Id, Vec<Id>> {
    let mut children: HashMap<Id, Vec<Id>> = HashMap::new();
    for g in f.host_groups.values() {
        if let Some(p) = g.parent {
            children.entry(p).or_default().push(g.id);
        }
    }
    children
}

// ---------------------------------------------------------------- names

fn check_name(kind: ObjectKind, id: Id, name: &str) -> Option<ValidationError> {
    if name.trim().is_empty() {
        return Some(problem(
            kind,
            id,
            name,
            "Name",
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
            "Name",
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

fn duplicate_name_error(kind: ObjectKind, id: Id, name: &str, scope: &str) -> ValidationError {
    problem(
        kind,
        id,
        name,
        "Name",
        Rule::NameDuplicate,
        format!(
            "Name \"{}\" is already used by another {}{scope}. Choose a different name.",
            name.trim(),
            kind.label()
        ),
    )
}

fn sibling_scope(view: &View<'_>, parent: Option<Id>) -> String {
    match parent {
        Some(p) => format!(" under \"{}\"", view.host_group_path(p)),
        None => " at the top of the tree".to_string(),
    }
}

fn site_scope(view: &View<'_>, logical_network: Id) -> String {
    match view.logical_network(logical_network) {
        Some(n) => format!(" of logical network \"{}\"", n.name),
        None => String::new(),
    }
}

fn pool_scope_label(view: &View<'_>, scope: &PoolScope) -> String {
    match scope {
        PoolScope::Site { site, .. } => match view.site(*site) {
            Some(s) => format!(" of network site \"{}\"", s.name),
            None => String::new(),
        },
        PoolScope::VmSubnet { vm_network, .. } => match view.vm_network(*vm_network) {
            Some(v) => format!(" of VM network \"{}\"", v.name),
            None => String::new(),
        },
    }
}

/// The object a pool's name must be unique in: its site or its VM network.
fn pool_owner(scope: &PoolScope) -> Id {
    match scope {
        PoolScope::Site { site, .. } => *site,
        PoolScope::VmSubnet { vm_network, .. } => *vm_network,
    }
}

/// Names are unique per kind (within a scope), ignoring case and surrounding spaces.
fn check_unique_names(f: &Fabric, out: &mut Vec<ValidationError>) {
    let view = View::whole(f);
    /// (scope, object id, name): the scope is the parent, logical network, site or VM network.
    type Named<'a> = (Id, Id, &'a str);
    fn groups<'a>(items: impl Iterator<Item = Named<'a>>) -> Vec<Vec<Named<'a>>> {
        let mut by_key: HashMap<(Id, String), Vec<Named<'a>>> = HashMap::new();
        for (scope, id, name) in items {
            if name.trim().is_empty() {
                continue;
            }
            by_key
                .entry((scope, name_key(name)))
                .or_default()
                .push((scope, id, name));
        }
        let mut dups: Vec<_> = by_key.into_values().filter(|v| v.len() > 1).collect();
        dups.sort_by_key(|v| v[0].1);
        dups
    }
    let nil = Uuid::nil();
    for group in groups(
        f.host_groups
            .values()
            .map(|g| (g.parent.unwrap_or(nil), g.id, g.name.as_str())),
    ) {
        for (_, id, name) in group {
            let parent = f.host_groups.get(&id).and_then(|g| g.parent);
            let scope = sibling_scope(&view, parent);
            out.push(duplicate_name_error(
                ObjectKind::HostGroup,
                id,
                name,
                &scope,
            ));
        }
    }
    for group in groups(
        f.run_as_accounts
            .values()
            .map(|o| (nil, o.id, o.name.as_str())),
    ) {
        for (_, id, name) in group {
            out.push(duplicate_name_error(ObjectKind::RunAsAccount, id, name, ""));
        }
    }
    for group in groups(
        f.logical_networks
            .values()
            .map(|o| (nil, o.id, o.name.as_str())),
    ) {
        for (_, id, name) in group {
            out.push(duplicate_name_error(
                ObjectKind::LogicalNetwork,
                id,
                name,
                "",
            ));
        }
    }
    for group in groups(
        f.network_sites
            .values()
            .map(|o| (o.logical_network, o.id, o.name.as_str())),
    ) {
        for (ln, id, name) in group {
            let scope = site_scope(&view, ln);
            out.push(duplicate_name_error(
                ObjectKind::NetworkSite,
                id,
                name,
                &scope,
            ));
        }
    }
    for group in groups(
        f.ip_pools
            .values()
            .map(|o| (pool_owner(&o.scope), o.id, o.name.as_str())),
    ) {
        for (_, id, name) in group {
            let scope = f
                .ip_pools
                .get(&id)
                .map(|p| pool_scope_label(&view, &p.scope))
                .unwrap_or_default();
            out.push(duplicate_name_error(ObjectKind::IpPool, id, name, &scope));
        }
    }
    for group in groups(f.vm_networks.values().map(|o| (nil, o.id, o.name.as_str()))) {
        for (_, id, name) in group {
            out.push(duplicate_name_error(ObjectKind::VmNetwork, id, name, ""));
        }
    }
    for group in groups(
        f.network_services
            .values()
            .map(|o| (nil, o.id, o.name.as_str())),
    ) {
        for (_, id, name) in group {
            out.push(duplicate_name_error(
                ObjectKind::NetworkService,
                id,
                name,
                "",
            ));
        }
    }
}

fn check_unique_candidate<'a>(
    kind: ObjectKind,
    id: Id,
    name: &str,
    others: impl Iterator<Item = (Id, &'a str)>,
    scope: impl FnOnce() -> String,
) -> Option<ValidationError> {
    if name.trim().is_empty() {
        return None;
    }
    let key = name_key(name);
    let mut others = others;
    others
        .any(|(other, other_name)| other != id && name_key(other_name) == key)
        .then(|| duplicate_name_error(kind, id, name, &scope()))
}

// ---------------------------------------------------------------- host groups

fn missing_root_error() -> ValidationError {
    problem(
        ObjectKind::HostGroup,
        Uuid::nil(),
        ROOT_HOST_GROUP,
        "Parent",
        Rule::RootHostGroup,
        format!(
            "Parent: no host group sits at the top of the tree. Add the root host group \"{ROOT_HOST_GROUP}\"."
        ),
    )
}

fn extra_root_error(g: &HostGroup) -> ValidationError {
    if g.name == ROOT_HOST_GROUP {
        problem(
            ObjectKind::HostGroup,
            g.id,
            &g.name,
            "Parent",
            Rule::RootHostGroup,
            format!(
                "Parent is empty, but another \"{ROOT_HOST_GROUP}\" host group is already the root. Choose a parent host group."
            ),
        )
    } else {
        problem(
            ObjectKind::HostGroup,
            g.id,
            &g.name,
            "Parent",
            Rule::RootHostGroup,
            format!(
                "Parent is empty: only \"{ROOT_HOST_GROUP}\" sits at the top of the tree. Choose a parent host group."
            ),
        )
    }
}

/// Exactly one parentless host group, and it is named "All Hosts".
fn check_root_host_group(f: &Fabric, out: &mut Vec<ValidationError>) {
    let roots: Vec<&HostGroup> = f
        .host_groups
        .values()
        .filter(|g| g.parent.is_none())
        .collect();
    let canonical = roots
        .iter()
        .find(|g| g.name == ROOT_HOST_GROUP)
        .map(|g| g.id);
    if canonical.is_none() {
        out.push(missing_root_error());
    }
    for g in roots {
        if Some(g.id) != canonical {
            out.push(extra_root_error(g));
        }
    }
}

fn check_root_candidate(f: &Fabric, g: &HostGroup) -> Option<ValidationError> {
    if g.parent.is_some() {
        return None;
    }
    if g.name != ROOT_HOST_GROUP {
        return Some(extra_root_error(g));
    }
    // Of several parentless "All Hosts" groups, the one with the lowest id is the root.
    f.host_groups
        .values()
        .any(|o| o.id < g.id && o.parent.is_none() && o.name == ROOT_HOST_GROUP)
        .then(|| extra_root_error(g))
}

fn check_parent_exists(view: &View<'_>, g: &HostGroup) -> Option<ValidationError> {
    let parent = g.parent?;
    if view.host_group(parent).is_some() {
        return None;
    }
    Some(problem(
        ObjectKind::HostGroup,
        g.id,
        &g.name,
        "Parent",
        Rule::ReferenceMissing,
        format!("Parent host group {parent} does not exist. Choose an existing parent host group."),
    ))
}

fn cycle_error(view: &View<'_>, g: &HostGroup) -> ValidationError {
    let parent_name = g
        .parent
        .and_then(|p| view.host_group(p))
        .map(|p| p.name.as_str())
        .unwrap_or("");
    problem(
        ObjectKind::HostGroup,
        g.id,
        &g.name,
        "Parent",
        Rule::ParentCycle,
        format!(
            "Parent \"{parent_name}\" is inside this host group, which makes a loop. Choose a parent that is not below this host group."
        ),
    )
}

/// No host group is its own ancestor. Linear: each group's parent chain is walked once.
fn check_host_group_cycles(f: &Fabric, out: &mut Vec<ValidationError>) {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        OnPath(usize),
        Done,
    }
    let view = View::whole(f);
    let mut state: HashMap<Id, State> = HashMap::with_capacity(f.host_groups.len());
    for start in f.host_groups.keys() {
        if state.contains_key(start) {
            continue;
        }
        let mut path: Vec<Id> = Vec::new();
        let mut cur = Some(*start);
        while let Some(id) = cur {
            match state.get(&id) {
                Some(State::Done) => break,
                Some(State::OnPath(pos)) => {
                    for member in &path[*pos..] {
                        if let Some(g) = f.host_groups.get(member) {
                            out.push(cycle_error(&view, g));
                        }
                    }
                    break;
                }
                None => {}
            }
            let Some(g) = f.host_groups.get(&id) else {
                break;
            };
            state.insert(id, State::OnPath(path.len()));
            path.push(id);
            cur = g.parent;
        }
        for id in path {
            state.insert(id, State::Done);
        }
    }
}

fn check_parent_cycle_candidate(view: &View<'_>, g: &HostGroup) -> Option<ValidationError> {
    let limit = view.fabric.host_groups.len() + 2;
    let mut cur = g.parent;
    for _ in 0..limit {
        let id = cur?;
        if id == g.id {
            return Some(cycle_error(view, g));
        }
        cur = view.host_group(id)?.parent;
    }
    // The chain above is itself a loop that does not pass through this group.
    None
}

// ---------------------------------------------------------------- Run As accounts

fn check_user_name(a: &RunAsAccount) -> Option<ValidationError> {
    a.user_name.trim().is_empty().then(|| {
        problem(
            ObjectKind::RunAsAccount,
            a.id,
            &a.name,
            "User name",
            Rule::UserNameEmpty,
            "User name is empty. Type the account's user name, e.g. CONTOSO\\ipam-svc.".to_string(),
        )
    })
}

// ---------------------------------------------------------------- network sites

fn site_problem(
    s: &NetworkSite,
    field: &'static str,
    rule: Rule,
    message: String,
) -> ValidationError {
    problem(ObjectKind::NetworkSite, s.id, &s.name, field, rule, message)
}

fn check_site(view: &View<'_>, s: &NetworkSite, out: &mut Vec<ValidationError>) {
    out.extend(check_name(ObjectKind::NetworkSite, s.id, &s.name));
    out.extend(check_site_logical_network(view, s));
    out.extend(check_site_host_groups(view, s));
    let network = view.logical_network(s.logical_network);
    for pair in &s.subnets {
        out.extend(check_subnet_canonical(
            ObjectKind::NetworkSite,
            s.id,
            &s.name,
            "Subnet",
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

fn check_site_logical_network(view: &View<'_>, s: &NetworkSite) -> Option<ValidationError> {
    view.logical_network(s.logical_network).is_none().then(|| {
        site_problem(
            s,
            "Logical network",
            Rule::ReferenceMissing,
            format!(
                "Logical network {} does not exist. Choose an existing logical network.",
                s.logical_network
            ),
        )
    })
}

fn check_site_host_groups(view: &View<'_>, s: &NetworkSite) -> Vec<ValidationError> {
    if s.host_groups.is_empty() {
        return vec![site_problem(
            s,
            "Host groups",
            Rule::SiteWithoutHostGroups,
            "Host groups: none selected. Select at least one host group that can use this network site."
                .to_string(),
        )];
    }
    s.host_groups
        .iter()
        .filter(|g| view.host_group(**g).is_none())
        .map(|g| {
            site_problem(
                s,
                "Host groups",
                Rule::ReferenceMissing,
                format!("Host group {g} does not exist. Remove it from the network site or choose an existing host group."),
            )
        })
        .collect()
}

fn check_subnet_canonical(
    kind: ObjectKind,
    id: Id,
    name: &str,
    field: &'static str,
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

fn check_vlan(s: &NetworkSite, vlan: u16) -> Option<ValidationError> {
    (vlan > MAX_VLAN).then(|| {
        site_problem(
            s,
            "VLAN",
            Rule::VlanRange,
            format!("VLAN {vlan} is out of range. Choose a VLAN ID from 0 to {MAX_VLAN}."),
        )
    })
}

fn check_secondary_vlan(
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
            "Secondary VLAN",
            Rule::SecondaryVlan,
            format!(
                "Secondary VLAN {v} is set for subnet {subnet}, but logical network \"{}\" does not use private VLANs. Clear the secondary VLAN.",
                network.name
            ),
        )),
        Some(v) if v > MAX_VLAN => Some(site_problem(
            s,
            "Secondary VLAN",
            Rule::VlanRange,
            format!("Secondary VLAN {v} is out of range. Choose a VLAN ID from 0 to {MAX_VLAN}."),
        )),
        None if private => Some(site_problem(
            s,
            "Secondary VLAN",
            Rule::SecondaryVlan,
            format!(
                "Secondary VLAN is missing for subnet {subnet}; logical network \"{}\" uses private VLANs. Enter a secondary VLAN ID from 0 to {MAX_VLAN}.",
                network.name
            ),
        )),
        _ => None,
    }
}

/// Address family and position of an address, comparable across the whole u128 range.
fn addr_key(ip: IpAddr) -> (u8, u128) {
    match ip {
        IpAddr::V4(a) => (4, u32::from(a) as u128),
        IpAddr::V6(a) => (6, u128::from(a)),
    }
}

/// (family, network address, prefix length) of a subnet, after truncation.
fn net_key(net: IpNet) -> (u8, u128, u8) {
    let t = net.trunc();
    let (fam, start) = addr_key(t.network());
    (fam, start, t.prefix_len())
}

fn net_end(net: IpNet) -> u128 {
    addr_key(net.trunc().broadcast()).1
}

fn family_name(fam: u8) -> &'static str {
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
    site_problem(s, "Subnet", Rule::SubnetOverlap, message)
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

/// A subnet must not overlap a subnet of any site that shares its host group, an ancestor or a
/// descendant (across logical networks too). A depth-first walk keeps the subnets of the current
/// branch in an ordered set, so each subnet is checked against its branch in O(log n).
fn check_subnet_overlaps(
    f: &Fabric,
    children: &HashMap<Id, Vec<Id>>,
    out: &mut Vec<ValidationError>,
) {
    let mut attached: HashMap<Id, Vec<(Id, usize)>> = HashMap::new();
    for s in f.network_sites.values() {
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
    let subnet_of = |(site, idx): (Id, usize)| -> Option<IpNet> {
        f.network_sites
            .get(&site)
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
    let mut roots: Vec<Id> = f
        .host_groups
        .values()
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
        let (Some(sa), Some(sb)) = (f.network_sites.get(&a.0), f.network_sites.get(&b.0)) else {
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
            f.logical_networks.get(&sb.logical_network),
        ));
        out.push(overlap_error(
            sb,
            nb,
            sa,
            na,
            f.logical_networks.get(&sa.logical_network),
        ));
    }
}

fn nets_overlap(a: IpNet, b: IpNet) -> bool {
    let (a, b) = (a.trunc(), b.trunc());
    a.contains(&b) || b.contains(&a)
}

fn check_subnet_overlaps_candidate(view: &View<'_>, s: &NetworkSite) -> Vec<ValidationError> {
    let mut out = Vec::new();
    for (i, a) in s.subnets.iter().enumerate() {
        for (j, b) in s.subnets.iter().enumerate() {
            if i != j && nets_overlap(a.subnet, b.subnet) {
                out.push(overlap_error(s, a.subnet, s, b.subnet, None));
            }
        }
    }
    if s.subnets.is_empty() || s.host_groups.is_empty() {
        return out;
    }
    // Host groups that share a branch with the site: each group's ancestors and descendants.
    let children = children_index(view.fabric);
    let mut related: HashSet<Id> = HashSet::new();
    let limit = view.fabric.host_groups.len() + 2;
    for g in &s.host_groups {
        let mut cur = Some(*g);
        for _ in 0..limit {
            let Some(id) = cur else { break };
            related.insert(id);
            cur = view.host_group(id).and_then(|h| h.parent);
        }
        let mut stack = vec![*g];
        let mut seen = HashSet::new();
        while let Some(id) = stack.pop() {
            if !seen.insert(id) {
                continue;
            }
            related.insert(id);
            if let Some(kids) = children.get(&id) {
                stack.extend(kids.iter().copied());
            }
        }
    }
    for other in view.fabric.network_sites.values() {
        if other.id == s.id || !other.host_groups.iter().any(|g| related.contains(g)) {
            continue;
        }
        for a in &s.subnets {
            for b in &other.subnets {
                if nets_overlap(a.subnet, b.subnet) {
                    out.push(overlap_error(
                        s,
                        a.subnet,
                        other,
                        b.subnet,
                        view.logical_network(other.logical_network),
                    ));
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------- static IP address pools

fn pool_problem(p: &IpPool, field: &'static str, rule: Rule, message: String) -> ValidationError {
    problem(ObjectKind::IpPool, p.id, &p.name, field, rule, message)
}

fn check_pool(view: &View<'_>, p: &IpPool, out: &mut Vec<ValidationError>) {
    out.extend(check_name(ObjectKind::IpPool, p.id, &p.name));
    let subnet = p.scope.subnet();
    let field = match p.scope {
        PoolScope::Site { .. } => "Subnet",
        PoolScope::VmSubnet { .. } => "VM subnet",
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
        PoolScope::Site { site, subnet } => match view.site(*site) {
            None => Some(pool_problem(
                p,
                "Network site",
                Rule::ReferenceMissing,
                format!("Network site {site} does not exist. Choose an existing network site."),
            )),
            Some(s) if !s.subnets.iter().any(|pair| pair.subnet == *subnet) => Some(pool_problem(
                p,
                "Subnet",
                Rule::PoolSubnetUnknown,
                format!(
                    "Subnet {subnet} is not a subnet of network site \"{}\". Choose one of the site's subnets.",
                    s.name
                ),
            )),
            Some(_) => None,
        },
        PoolScope::VmSubnet { vm_network, subnet } => match view.vm_network(*vm_network) {
            None => Some(pool_problem(
                p,
                "VM network",
                Rule::ReferenceMissing,
                format!("VM network {vm_network} does not exist. Choose an existing VM network."),
            )),
            Some(v) if !v.vm_subnets.contains(subnet) => Some(pool_problem(
                p,
                "VM subnet",
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
    for (field, addr) in [("Range start", p.range_start), ("Range end", p.range_end)] {
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
            "Range end",
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
    p.gateways
        .iter()
        .filter(|g| !subnet.contains(&g.address()))
        .map(|g| {
            pool_problem(
                p,
                "Default gateway",
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
        ("Reserved addresses", "Reserved address", &p.reserved),
        ("VIP addresses", "VIP address", &p.vips),
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
    for a in &p.dns_servers {
        let (fam, _) = addr_key(*a);
        if fam != net_fam {
            out.push(pool_problem(
                p,
                "DNS servers",
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
    for a in &p.wins_servers {
        if a.is_ipv6() {
            out.push(pool_problem(
                p,
                "WINS servers",
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
        "Range start",
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

/// Pools on one subnet (of one site or VM network) never overlap: sort by start, sweep once.
fn check_pool_overlaps(f: &Fabric, out: &mut Vec<ValidationError>) {
    type Interval<'a> = (u128, u128, &'a IpPool);
    let mut groups: HashMap<(Id, IpNet), Vec<Interval<'_>>> = HashMap::new();
    for p in f.ip_pools.values() {
        if let Some((_, s, e)) = pool_interval(p) {
            groups
                .entry((pool_owner(&p.scope), p.scope.subnet()))
                .or_default()
                .push((s, e, p));
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

fn check_pool_overlap_candidate(f: &Fabric, p: &IpPool) -> Vec<ValidationError> {
    let Some((fam, s, e)) = pool_interval(p) else {
        return Vec::new();
    };
    let owner = pool_owner(&p.scope);
    let subnet = p.scope.subnet();
    f.ip_pools
        .values()
        .filter(|o| o.id != p.id && pool_owner(&o.scope) == owner && o.scope.subnet() == subnet)
        .filter(
            |o| matches!(pool_interval(o), Some((of, os, oe)) if of == fam && os <= e && s <= oe),
        )
        .map(|o| pool_overlap_error(p, o))
        .collect()
}

// ---------------------------------------------------------------- VM networks

fn vm_problem(v: &VmNetwork, field: &'static str, rule: Rule, message: String) -> ValidationError {
    problem(ObjectKind::VmNetwork, v.id, &v.name, field, rule, message)
}

fn check_vm_network(view: &View<'_>, v: &VmNetwork, out: &mut Vec<ValidationError>) {
    out.extend(check_name(ObjectKind::VmNetwork, v.id, &v.name));
    let network = view.logical_network(v.logical_network);
    if network.is_none() {
        out.push(vm_problem(
            v,
            "Logical network",
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
            "VM subnets",
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
                "Isolation",
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
            "VM subnets",
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
            "VM subnets",
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
                    "VM subnets",
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

// ---------------------------------------------------------------- network services

fn service_problem(
    n: &NetworkService,
    field: &'static str,
    rule: Rule,
    message: String,
) -> ValidationError {
    problem(
        ObjectKind::NetworkService,
        n.id,
        &n.name,
        field,
        rule,
        message,
    )
}

fn check_service(view: &View<'_>, n: &NetworkService, out: &mut Vec<ValidationError>) {
    out.extend(check_name(ObjectKind::NetworkService, n.id, &n.name));
    out.extend(check_service_run_as(view, n));
    out.extend(check_service_provider(n));
    out.extend(check_service_scope(view, n));
    out.extend(check_sync_interval(n));
}

fn check_service_run_as(view: &View<'_>, n: &NetworkService) -> Option<ValidationError> {
    view.run_as(n.run_as).is_none().then(|| {
        service_problem(
            n,
            "Run As account",
            Rule::ReferenceMissing,
            format!(
                "Run As account {} does not exist. Browse for an existing Run As account or create one.",
                n.run_as
            ),
        )
    })
}

fn check_service_provider(n: &NetworkService) -> Option<ValidationError> {
    n.provider.trim().is_empty().then(|| {
        service_problem(
            n,
            "Configuration provider",
            Rule::ProviderEmpty,
            "Configuration provider is not chosen. Select a configuration provider.".to_string(),
        )
    })
}

fn check_service_scope(view: &View<'_>, n: &NetworkService) -> Vec<ValidationError> {
    match &n.scope {
        HostGroupScope::All => Vec::new(),
        HostGroupScope::Selected(groups) if groups.is_empty() => vec![service_problem(
            n,
            "Host groups",
            Rule::ServiceScope,
            "Host groups: none selected. Select at least one host group or choose all host groups."
                .to_string(),
        )],
        HostGroupScope::Selected(groups) => groups
            .iter()
            .filter(|g| view.host_group(**g).is_none())
            .map(|g| {
                service_problem(
                    n,
                    "Host groups",
                    Rule::ReferenceMissing,
                    format!("Host group {g} does not exist. Remove it from the selection."),
                )
            })
            .collect(),
    }
}

fn check_sync_interval(n: &NetworkService) -> Option<ValidationError> {
    (n.sync_interval_secs < MIN_SYNC_INTERVAL_SECS).then(|| {
        service_problem(
            n,
            "Sync interval",
            Rule::SyncInterval,
            format!(
                "Sync interval of {} seconds is too short. Choose {MIN_SYNC_INTERVAL_SECS} seconds or more.",
                n.sync_interval_secs
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::fabric::connection::ConnectionString;
    use crate::fabric::model::{FabricChange, Gateway, ServiceCategory, SubnetVlan};

    fn id(n: u128) -> Id {
        Uuid::from_u128(n)
    }
    const ROOT: u128 = 1;
    const SEATTLE: u128 = 2;
    const RACK_A: u128 = 3;
    const DUBLIN: u128 = 4;
    const ACCOUNT: u128 = 10;
    const CORP: u128 = 20;
    const PVLAN: u128 = 21;
    const TENANT: u128 = 22;
    const SITE: u128 = 30;
    const PVLAN_SITE: u128 = 31;
    const POOL: u128 = 40;
    const VM_POOL: u128 = 41;
    const VMNET: u128 = 50;
    const SERVICE: u128 = 60;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn group(n: u128, name: &str, parent: Option<u128>) -> HostGroup {
        HostGroup {
            id: id(n),
            name: name.into(),
            parent: parent.map(id),
        }
    }
    fn pair(subnet: &str, vlan: u16) -> SubnetVlan {
        SubnetVlan {
            subnet: net(subnet),
            vlan,
            secondary_vlan: None,
        }
    }
    fn pool(n: u128, name: &str, site: u128, subnet: &str, start: &str, end: &str) -> IpPool {
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
            reserved: BTreeSet::new(),
            vips: BTreeSet::new(),
            gateways: Vec::new(),
            dns_servers: Vec::new(),
            dns_suffix: String::new(),
            dns_search_suffixes: Vec::new(),
            wins_servers: Vec::new(),
            netbios_enabled: false,
        }
    }
    fn site(
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
    fn base() -> Fabric {
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
        let mut pv = site(
            PVLAN_SITE,
            "Isolated_Dublin",
            PVLAN,
            &[DUBLIN],
            vec![pair("10.9.0.0/24", 20)],
        );
        pv.subnets[0].secondary_vlan = Some(21);
        f.network_sites.insert(pv.id, pv);
        let mut p = pool(
            POOL,
            "Pool A",
            SITE,
            "10.0.0.0/24",
            "10.0.0.10",
            "10.0.0.100",
        );
        p.gateways.push(Gateway::Address {
            address: ip("10.0.0.1"),
            metric: 1,
        });
        p.reserved.insert(ip("10.0.0.11"));
        p.vips.insert(ip("10.0.0.90"));
        p.dns_servers.push(ip("10.0.0.53"));
        p.wins_servers.push(ip("10.0.0.54"));
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
            },
        );
        f
    }

    fn objects(f: &Fabric) -> Vec<FabricObject> {
        let mut v: Vec<FabricObject> = Vec::new();
        v.extend(f.host_groups.values().cloned().map(FabricObject::HostGroup));
        v.extend(
            f.run_as_accounts
                .values()
                .cloned()
                .map(FabricObject::RunAsAccount),
        );
        v.extend(
            f.logical_networks
                .values()
                .cloned()
                .map(FabricObject::LogicalNetwork),
        );
        v.extend(
            f.network_sites
                .values()
                .cloned()
                .map(FabricObject::NetworkSite),
        );
        v.extend(f.ip_pools.values().cloned().map(FabricObject::IpPool));
        v.extend(f.vm_networks.values().cloned().map(FabricObject::VmNetwork));
        v.extend(
            f.network_services
                .values()
                .cloned()
                .map(FabricObject::NetworkService),
        );
        v
    }

    /// Every problem the whole-fabric check finds on an object, the per-object check finds too.
    fn assert_consistent(f: &Fabric) {
        let all = validate_fabric(f);
        for obj in objects(f) {
            let whole: BTreeSet<(Rule, &str)> = all
                .iter()
                .filter(|e| e.object == obj.id() && e.kind == obj.kind())
                .map(|e| (e.rule, e.field))
                .collect();
            let single = validate_object(f, &obj);
            let single: BTreeSet<(Rule, &str)> = single.iter().map(|e| (e.rule, e.field)).collect();
            assert_eq!(whole, single, "object {:?} {}", obj.kind(), obj.id());
        }
    }

    /// Applies a mutation and returns the problems, checking both entry points agree.
    fn broken(change: impl FnOnce(&mut Fabric)) -> Vec<ValidationError> {
        let mut f = base();
        change(&mut f);
        assert_consistent(&f);
        validate_fabric(&f)
    }

    fn has(errors: &[ValidationError], rule: Rule, object: u128, field: &str) -> bool {
        errors
            .iter()
            .any(|e| e.rule == rule && e.object == id(object) && e.field == field)
    }

    #[track_caller]
    fn expect(errors: &[ValidationError], rule: Rule, object: u128, field: &str) {
        assert!(
            has(errors, rule, object, field),
            "expected {rule:?} on {object} field {field}, got {errors:#?}"
        );
        for e in errors {
            let text = e.to_string();
            assert!(text.ends_with('.'), "{text}");
            assert!(
                e.message
                    .starts_with(e.field.split(' ').next().unwrap_or(""))
                    || e.message.contains(e.field),
                "{text}"
            );
        }
    }

    #[track_caller]
    fn clean(errors: &[ValidationError]) {
        assert!(errors.is_empty(), "expected no problems, got {errors:#?}");
    }

    #[test]
    fn base_fabric_is_valid() {
        let f = base();
        clean(&validate_fabric(&f));
        assert_consistent(&f);
    }

    #[test]
    fn display_is_one_sentence_naming_object_and_field() {
        let errors = broken(|f| {
            f.ip_pools.get_mut(&id(POOL)).unwrap().range_end = ip("10.0.1.5");
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
        assert_eq!(e.field, "Range end");
    }

    #[test]
    fn name_empty_and_too_long() {
        let errors = broken(|f| f.logical_networks.get_mut(&id(CORP)).unwrap().name = "  ".into());
        expect(&errors, Rule::NameEmpty, CORP, "Name");
        let errors =
            broken(|f| f.logical_networks.get_mut(&id(CORP)).unwrap().name = "x".repeat(65));
        expect(&errors, Rule::NameTooLong, CORP, "Name");
        clean(&broken(|f| {
            f.logical_networks.get_mut(&id(CORP)).unwrap().name = "é".repeat(MAX_NAME_LEN)
        }));
    }

    #[test]
    fn logical_network_names_unique_ignoring_case() {
        let errors =
            broken(|f| f.logical_networks.get_mut(&id(PVLAN)).unwrap().name = "CORP".into());
        expect(&errors, Rule::NameDuplicate, PVLAN, "Name");
        expect(&errors, Rule::NameDuplicate, CORP, "Name");
        clean(&broken(|f| {
            f.logical_networks.get_mut(&id(PVLAN)).unwrap().name = "Corp 2".into()
        }));
    }

    #[test]
    fn host_group_names_unique_among_siblings_only() {
        let errors =
            broken(|f| f.host_groups.get_mut(&id(DUBLIN)).unwrap().name = "seattle".into());
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
        let errors = broken(|f| {
            let s = site(32, "corp_seattle", CORP, &[DUBLIN], vec![]);
            f.network_sites.insert(s.id, s);
        });
        expect(&errors, Rule::NameDuplicate, 32, "Name");
        clean(&broken(|f| {
            let mut s = site(
                32,
                "Corp_Seattle",
                PVLAN,
                &[DUBLIN],
                vec![pair("10.9.1.0/24", 5)],
            );
            s.subnets[0].secondary_vlan = Some(6);
            f.network_sites.insert(s.id, s);
        }));
    }

    #[test]
    fn pool_names_unique_within_site() {
        let errors = broken(|f| {
            let p = pool(
                42,
                "pool a",
                SITE,
                "10.0.0.0/24",
                "10.0.0.150",
                "10.0.0.160",
            );
            f.ip_pools.insert(p.id, p);
        });
        expect(&errors, Rule::NameDuplicate, 42, "Name");
        // Same name on the VM network is fine.
        clean(&broken(|f| {
            f.ip_pools.get_mut(&id(VM_POOL)).unwrap().name = "Pool A".into()
        }));
    }

    #[test]
    fn exactly_one_root_named_all_hosts() {
        let errors =
            broken(|f| f.host_groups.get_mut(&id(ROOT)).unwrap().name = "Everything".into());
        assert!(
            errors
                .iter()
                .any(|e| e.rule == Rule::RootHostGroup && e.object.is_nil())
        );
        expect(&errors, Rule::RootHostGroup, ROOT, "Parent");
        let errors = broken(|f| f.host_groups.get_mut(&id(DUBLIN)).unwrap().parent = None);
        expect(&errors, Rule::RootHostGroup, DUBLIN, "Parent");
        let errors = broken(|f| {
            let g = group(98, ROOT_HOST_GROUP, None);
            f.host_groups.insert(g.id, g);
        });
        expect(&errors, Rule::RootHostGroup, 98, "Parent");
        assert!(!has(&errors, Rule::RootHostGroup, ROOT, "Parent"));
        let errors = validate_fabric(&Fabric::default());
        assert!(errors.iter().any(|e| e.rule == Rule::RootHostGroup));
        clean(&validate_fabric(&Fabric::new()));
    }

    #[test]
    fn parent_must_exist() {
        let errors = broken(|f| f.host_groups.get_mut(&id(RACK_A)).unwrap().parent = Some(id(777)));
        expect(&errors, Rule::ReferenceMissing, RACK_A, "Parent");
        clean(&broken(|f| {
            f.host_groups.get_mut(&id(RACK_A)).unwrap().parent = Some(id(DUBLIN))
        }));
    }

    #[test]
    fn parents_form_no_cycle() {
        let errors =
            broken(|f| f.host_groups.get_mut(&id(SEATTLE)).unwrap().parent = Some(id(RACK_A)));
        expect(&errors, Rule::ParentCycle, SEATTLE, "Parent");
        expect(&errors, Rule::ParentCycle, RACK_A, "Parent");
        let errors =
            broken(|f| f.host_groups.get_mut(&id(DUBLIN)).unwrap().parent = Some(id(DUBLIN)));
        expect(&errors, Rule::ParentCycle, DUBLIN, "Parent");
        // Moving Rack A under Dublin makes no loop.
        clean(&broken(|f| {
            f.host_groups.get_mut(&id(RACK_A)).unwrap().parent = Some(id(DUBLIN))
        }));
    }

    #[test]
    fn run_as_needs_user_name() {
        let errors = broken(|f| {
            f.run_as_accounts
                .get_mut(&id(ACCOUNT))
                .unwrap()
                .user_name
                .clear()
        });
        expect(&errors, Rule::UserNameEmpty, ACCOUNT, "User name");
    }

    #[test]
    fn site_needs_host_groups_that_exist() {
        let errors = broken(|f| {
            f.network_sites
                .get_mut(&id(SITE))
                .unwrap()
                .host_groups
                .clear()
        });
        expect(&errors, Rule::SiteWithoutHostGroups, SITE, "Host groups");
        let errors = broken(|f| {
            f.network_sites
                .get_mut(&id(SITE))
                .unwrap()
                .host_groups
                .push(id(555))
        });
        expect(&errors, Rule::ReferenceMissing, SITE, "Host groups");
        clean(&broken(|f| {
            f.network_sites
                .get_mut(&id(SITE))
                .unwrap()
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
        let errors = broken(|f| f.network_sites.get_mut(&id(SITE)).unwrap().subnets[0].vlan = 4095);
        expect(&errors, Rule::VlanRange, SITE, "VLAN");
        clean(&broken(|f| {
            f.network_sites.get_mut(&id(SITE)).unwrap().subnets[0].vlan = 4094
        }));
        let errors = broken(|f| {
            f.network_sites.get_mut(&id(PVLAN_SITE)).unwrap().subnets[0].secondary_vlan = Some(5000)
        });
        expect(&errors, Rule::VlanRange, PVLAN_SITE, "Secondary VLAN");
    }

    #[test]
    fn secondary_vlan_only_and_always_for_private_vlan() {
        let errors = broken(|f| {
            f.network_sites.get_mut(&id(SITE)).unwrap().subnets[0].secondary_vlan = Some(3)
        });
        expect(&errors, Rule::SecondaryVlan, SITE, "Secondary VLAN");
        let errors = broken(|f| {
            f.network_sites.get_mut(&id(PVLAN_SITE)).unwrap().subnets[0].secondary_vlan = None
        });
        expect(&errors, Rule::SecondaryVlan, PVLAN_SITE, "Secondary VLAN");
    }

    #[test]
    fn subnets_are_canonical() {
        let errors = broken(|f| {
            let s = f.network_sites.get_mut(&id(SITE)).unwrap();
            s.subnets.push(pair("10.0.5.1/24", 0));
        });
        expect(&errors, Rule::SubnetNotCanonical, SITE, "Subnet");
        let e = errors
            .iter()
            .find(|e| e.rule == Rule::SubnetNotCanonical)
            .unwrap();
        assert!(e.message.contains("Use 10.0.5.0/24"), "{e}");
        let errors = broken(|f| {
            f.vm_networks
                .get_mut(&id(VMNET))
                .unwrap()
                .vm_subnets
                .push(net("192.168.7.7/24"))
        });
        expect(&errors, Rule::SubnetNotCanonical, VMNET, "VM subnets");
    }

    #[test]
    fn subnets_do_not_overlap_in_related_host_groups() {
        // Rack A is below Seattle: an overlapping subnet there clashes, even in another logical network.
        let errors = broken(|f| {
            let mut s = site(
                33,
                "Isolated_RackA",
                PVLAN,
                &[RACK_A],
                vec![pair("10.0.0.128/25", 7)],
            );
            s.subnets[0].secondary_vlan = Some(8);
            f.network_sites.insert(s.id, s);
        });
        expect(&errors, Rule::SubnetOverlap, 33, "Subnet");
        expect(&errors, Rule::SubnetOverlap, SITE, "Subnet");
        // An ancestor (All Hosts) clashes too.
        let errors = broken(|f| {
            let s = site(34, "Corp_All", CORP, &[ROOT], vec![pair("10.0.0.0/16", 7)]);
            f.network_sites.insert(s.id, s);
        });
        expect(&errors, Rule::SubnetOverlap, 34, "Subnet");
        // Two subnets of one site.
        let errors = broken(|f| {
            f.network_sites
                .get_mut(&id(SITE))
                .unwrap()
                .subnets
                .push(pair("10.0.0.0/25", 3))
        });
        expect(&errors, Rule::SubnetOverlap, SITE, "Subnet");
        // Dublin is not related to Seattle: the same subnet is allowed there.
        clean(&broken(|f| {
            let s = site(
                35,
                "Corp_Dublin",
                CORP,
                &[DUBLIN],
                vec![pair("10.0.0.0/24", 7)],
            );
            f.network_sites.insert(s.id, s);
        }));
    }

    #[test]
    fn pool_subnet_must_belong_to_its_site_or_vm_network() {
        let errors = broken(|f| {
            let p = pool(43, "Pool B", SITE, "10.0.7.0/24", "10.0.7.1", "10.0.7.9");
            f.ip_pools.insert(p.id, p);
        });
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
        let errors = broken(|f| {
            let p = pool(45, "Pool C", 999, "10.0.0.0/24", "10.0.0.150", "10.0.0.160");
            f.ip_pools.insert(p.id, p);
        });
        expect(&errors, Rule::ReferenceMissing, 45, "Network site");
        let errors = broken(|f| {
            f.apply_changes(&[FabricChange::Delete(ObjectKind::VmNetwork, id(VMNET))]);
        });
        expect(&errors, Rule::ReferenceMissing, VM_POOL, "VM network");
        clean(&broken(|f| {
            let p = pool(
                43,
                "Pool B",
                SITE,
                "fd00:0:0:1::/64",
                "fd00:0:0:1::10",
                "fd00:0:0:1::ff",
            );
            f.ip_pools.insert(p.id, p);
        }));
    }

    #[test]
    fn pool_range_in_order_and_inside_subnet() {
        let errors = broken(|f| {
            let p = f.ip_pools.get_mut(&id(POOL)).unwrap();
            p.range_start = ip("10.0.0.100");
            p.range_end = ip("10.0.0.10");
            p.reserved.clear();
            p.vips.clear();
        });
        expect(&errors, Rule::PoolRangeOrder, POOL, "Range end");
        let errors =
            broken(|f| f.ip_pools.get_mut(&id(POOL)).unwrap().range_start = ip("10.0.1.1"));
        expect(&errors, Rule::PoolOutsideSubnet, POOL, "Range start");
        clean(&broken(|f| {
            let p = f.ip_pools.get_mut(&id(POOL)).unwrap();
            p.range_start = ip("10.0.0.11");
            p.range_end = ip("10.0.0.11");
            p.vips.clear();
        }));
    }

    #[test]
    fn pool_address_families_consistent() {
        let errors = broken(|f| f.ip_pools.get_mut(&id(POOL)).unwrap().range_end = ip("fd00::1"));
        expect(&errors, Rule::AddressFamily, POOL, "Range end");
        let errors = broken(|f| {
            f.ip_pools
                .get_mut(&id(POOL))
                .unwrap()
                .dns_servers
                .push(ip("fd00::53"))
        });
        expect(&errors, Rule::AddressFamily, POOL, "DNS servers");
        let errors = broken(|f| {
            f.ip_pools
                .get_mut(&id(POOL))
                .unwrap()
                .wins_servers
                .push(ip("fd00::54"))
        });
        expect(&errors, Rule::AddressFamily, POOL, "WINS servers");
    }

    #[test]
    fn pools_on_one_subnet_never_overlap() {
        let errors = broken(|f| {
            let p = pool(
                46,
                "Pool D",
                SITE,
                "10.0.0.0/24",
                "10.0.0.100",
                "10.0.0.120",
            );
            f.ip_pools.insert(p.id, p);
        });
        expect(&errors, Rule::PoolOverlap, 46, "Range start");
        expect(&errors, Rule::PoolOverlap, POOL, "Range start");
        clean(&broken(|f| {
            let p = pool(
                46,
                "Pool D",
                SITE,
                "10.0.0.0/24",
                "10.0.0.101",
                "10.0.0.120",
            );
            f.ip_pools.insert(p.id, p);
        }));
    }

    #[test]
    fn gateways_inside_subnet() {
        let errors = broken(|f| {
            f.ip_pools
                .get_mut(&id(POOL))
                .unwrap()
                .gateways
                .push(Gateway::Automatic {
                    address: ip("10.0.1.1"),
                })
        });
        expect(&errors, Rule::GatewayOutsideSubnet, POOL, "Default gateway");
    }

    #[test]
    fn reserved_and_vips_inside_pool_range() {
        let errors = broken(|f| {
            f.ip_pools
                .get_mut(&id(POOL))
                .unwrap()
                .reserved
                .insert(ip("10.0.0.5"));
        });
        expect(
            &errors,
            Rule::AddressOutsidePool,
            POOL,
            "Reserved addresses",
        );
        let errors = broken(|f| {
            f.ip_pools
                .get_mut(&id(POOL))
                .unwrap()
                .vips
                .insert(ip("10.0.0.200"));
        });
        expect(&errors, Rule::AddressOutsidePool, POOL, "VIP addresses");
        clean(&broken(|f| {
            f.ip_pools
                .get_mut(&id(POOL))
                .unwrap()
                .vips
                .insert(ip("10.0.0.100"));
        }));
    }

    #[test]
    fn vm_subnets_only_with_network_virtualization() {
        let errors = broken(|f| {
            let v = f.vm_networks.get_mut(&id(VMNET)).unwrap();
            v.isolation = VmNetworkIsolation::NoIsolation;
        });
        expect(&errors, Rule::VmSubnetNotAllowed, VMNET, "VM subnets");
        let errors = broken(|f| {
            f.vm_networks.get_mut(&id(VMNET)).unwrap().logical_network = id(CORP);
        });
        expect(&errors, Rule::VmSubnetNotAllowed, VMNET, "VM subnets");
        expect(&errors, Rule::VmNetworkIsolation, VMNET, "Isolation");
        let errors = broken(|f| {
            f.vm_networks.get_mut(&id(VMNET)).unwrap().logical_network = id(777);
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
            f.vm_networks
                .get_mut(&id(VMNET))
                .unwrap()
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

    #[test]
    fn service_rules() {
        let errors = broken(|f| f.network_services.get_mut(&id(SERVICE)).unwrap().run_as = id(404));
        expect(&errors, Rule::ReferenceMissing, SERVICE, "Run As account");
        let errors =
            broken(|f| f.network_services.get_mut(&id(SERVICE)).unwrap().provider = " ".into());
        expect(
            &errors,
            Rule::ProviderEmpty,
            SERVICE,
            "Configuration provider",
        );
        let errors = broken(|f| {
            f.network_services.get_mut(&id(SERVICE)).unwrap().scope =
                HostGroupScope::Selected(BTreeSet::new())
        });
        expect(&errors, Rule::ServiceScope, SERVICE, "Host groups");
        let errors = broken(|f| {
            f.network_services.get_mut(&id(SERVICE)).unwrap().scope =
                HostGroupScope::Selected([id(SEATTLE), id(4040)].into_iter().collect())
        });
        expect(&errors, Rule::ReferenceMissing, SERVICE, "Host groups");
        let errors = broken(|f| {
            f.network_services
                .get_mut(&id(SERVICE))
                .unwrap()
                .sync_interval_secs = 29
        });
        expect(&errors, Rule::SyncInterval, SERVICE, "Sync interval");
        clean(&broken(|f| {
            let n = f.network_services.get_mut(&id(SERVICE)).unwrap();
            n.sync_interval_secs = MIN_SYNC_INTERVAL_SECS;
            n.scope = HostGroupScope::All;
        }));
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
