//! The console's fabric: the VMM side of every sync.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::connection::ConnectionString;

/// Every fabric object is identified by a UUID; it is the sync key.
pub type Id = Uuid;

/// Name of the root host group, as VMM names it.
pub const ROOT_HOST_GROUP: &str = "All Hosts";
/// VMM limits object names to 64 characters.
pub const MAX_NAME_LEN: usize = 64;
/// VLAN ids are 0 (untagged) to 4094.
pub const MAX_VLAN: u16 = 4094;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostGroup {
    pub id: Id,
    pub name: String,
    /// `None` only for the root, "All Hosts".
    pub parent: Option<Id>,
}

/// A Run As account. The password or token lives in the secret store under `id`; it is never a field here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunAsAccount {
    pub id: Id,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub user_name: String,
}

crate::labelled_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum LogicalNetworkIsolation {
        /// One connected network.
        OneConnected => "One connected network",
        /// Network virtualization (allows VM networks with VM subnets).
        NetworkVirtualization => "One connected network, network virtualization allowed",
        /// VLAN-based independent networks.
        VlanIndependent => "VLAN-based independent networks",
        /// Private VLAN (PVLAN) networks: subnet pairs carry a secondary VLAN.
        PrivateVlan => "Private VLAN (PVLAN) networks",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogicalNetwork {
    pub id: Id,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub isolation: LogicalNetworkIsolation,
}

/// One subnet-VLAN pair of a network site.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubnetVlan {
    pub subnet: IpNet,
    #[serde(default)]
    pub vlan: u16,
    /// Only for private VLAN logical networks.
    #[serde(default)]
    pub secondary_vlan: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSite {
    pub id: Id,
    pub name: String,
    pub logical_network: Id,
    /// At least one.
    pub host_groups: Vec<Id>,
    pub subnets: Vec<SubnetVlan>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Gateway {
    /// A gateway address with an explicit metric.
    Address { address: IpAddr, metric: u32 },
    /// A gateway address whose metric is chosen automatically.
    Automatic { address: IpAddr },
}

impl Gateway {
    pub fn address(&self) -> IpAddr {
        match self {
            Gateway::Address { address, .. } | Gateway::Automatic { address } => *address,
        }
    }
    pub fn metric(&self) -> Option<u32> {
        match self {
            Gateway::Address { metric, .. } => Some(*metric),
            Gateway::Automatic { .. } => None,
        }
    }
}

/// Where a static IP address pool takes its addresses from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum PoolScope {
    /// A subnet of a network site (logical network pool).
    Site { site: Id, subnet: IpNet },
    /// A VM subnet of a VM network that uses network virtualization.
    VmSubnet { vm_network: Id, subnet: IpNet },
}

impl PoolScope {
    pub fn subnet(&self) -> IpNet {
        match self {
            PoolScope::Site { subnet, .. } | PoolScope::VmSubnet { subnet, .. } => *subnet,
        }
    }
}

/// The settings of a static IP address pool, named alike in every format that carries them: the
/// console pool, the normalised sync value, the IPAM range and Nautobot's `vmm_pool` field.
///
/// Adding a setting: add it here and to [`pool_settings_wire!`] (the compiler points at the
/// latter), plus any format that maps it explicitly (Nautobot keeps these in one JSON field, so
/// it needs nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolSettings {
    #[serde(default)]
    pub reserved: BTreeSet<IpAddr>,
    /// Addresses reserved for load-balancer virtual IPs.
    #[serde(default)]
    pub vips: BTreeSet<IpAddr>,
    #[serde(default)]
    pub gateways: Vec<Gateway>,
    #[serde(default)]
    pub dns_servers: Vec<IpAddr>,
    /// Connection-specific DNS suffix.
    #[serde(default)]
    pub dns_suffix: String,
    /// DNS search suffixes.
    #[serde(default)]
    pub dns_search_suffixes: Vec<String>,
    #[serde(default)]
    pub wins_servers: Vec<IpAddr>,
    #[serde(default)]
    pub netbios_enabled: bool,
}

/// Serde for a type that embeds [`PoolSettings`] as `settings`, with the settings' fields inline
/// in its JSON object between the type's own `before` and `after` fields.
///
/// `#[serde(flatten)]` would give the same JSON, but it buffers every field (measured 1.65x
/// slower to deserialise a full pool, 1.23x a minimal one, which the store's load and the IPAM
/// server's body parsing feel) and its unknown-field errors differ. This macro generates a plain
/// derived wire struct instead (owned for deserialising, borrowed for serialising, so no clone).
/// `settings_attrs` are put on every settings field (`#[serde(default)]` where they may be
/// missing).
macro_rules! pool_settings_wire {
    (
        $host:ident via $wire:ident, $wire_ref:ident;
        $(#[$container:meta])*
        settings_attrs { $(#[$sa:meta])* }
        before { $( $(#[$bm:meta])* $bf:ident : $bt:ty ),* $(,)? }
        after { $( $(#[$am:meta])* $af:ident : $at:ty ),* $(,)? }
    ) => {
        #[derive(serde::Deserialize)]
        $(#[$container])*
        struct $wire {
            $( $(#[$bm])* $bf: $bt, )*
            $(#[$sa])* reserved: ::std::collections::BTreeSet<::std::net::IpAddr>,
            $(#[$sa])* vips: ::std::collections::BTreeSet<::std::net::IpAddr>,
            $(#[$sa])* gateways: Vec<$crate::fabric::model::Gateway>,
            $(#[$sa])* dns_servers: Vec<::std::net::IpAddr>,
            $(#[$sa])* dns_suffix: String,
            $(#[$sa])* dns_search_suffixes: Vec<String>,
            $(#[$sa])* wins_servers: Vec<::std::net::IpAddr>,
            $(#[$sa])* netbios_enabled: bool,
            $( $(#[$am])* $af: $at, )*
        }

        #[derive(serde::Serialize)]
        struct $wire_ref<'a> {
            $( $bf: &'a $bt, )*
            reserved: &'a ::std::collections::BTreeSet<::std::net::IpAddr>,
            vips: &'a ::std::collections::BTreeSet<::std::net::IpAddr>,
            gateways: &'a Vec<$crate::fabric::model::Gateway>,
            dns_servers: &'a Vec<::std::net::IpAddr>,
            dns_suffix: &'a String,
            dns_search_suffixes: &'a Vec<String>,
            wins_servers: &'a Vec<::std::net::IpAddr>,
            netbios_enabled: &'a bool,
            $( $af: &'a $at, )*
        }

        impl serde::Serialize for $host {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let $crate::fabric::model::PoolSettings {
                    reserved,
                    vips,
                    gateways,
                    dns_servers,
                    dns_suffix,
                    dns_search_suffixes,
                    wins_servers,
                    netbios_enabled,
                } = &self.settings;
                let wire = $wire_ref {
                    $( $bf: &self.$bf, )*
                    reserved,
                    vips,
                    gateways,
                    dns_servers,
                    dns_suffix,
                    dns_search_suffixes,
                    wins_servers,
                    netbios_enabled,
                    $( $af: &self.$af, )*
                };
                serde::Serialize::serialize(&wire, serializer)
            }
        }

        impl<'de> serde::Deserialize<'de> for $host {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let w = <$wire as serde::Deserialize>::deserialize(deserializer)?;
                Ok($host {
                    $( $bf: w.$bf, )*
                    settings: $crate::fabric::model::PoolSettings {
                        reserved: w.reserved,
                        vips: w.vips,
                        gateways: w.gateways,
                        dns_servers: w.dns_servers,
                        dns_suffix: w.dns_suffix,
                        dns_search_suffixes: w.dns_search_suffixes,
                        wins_servers: w.wins_servers,
                        netbios_enabled: w.netbios_enabled,
                    },
                    $( $af: w.$af, )*
                })
            }
        }
    };
}
pub(crate) use pool_settings_wire;

/// A static IP address pool. Its JSON (fabric store rows, the exchange file) spells the settings
/// inline: see [`pool_settings_wire!`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpPool {
    pub id: Id,
    pub name: String,
    pub description: String,
    pub scope: PoolScope,
    pub range_start: IpAddr,
    pub range_end: IpAddr,
    pub settings: PoolSettings,
}

pool_settings_wire! {
    IpPool via IpPoolWire, IpPoolWireRef;
    #[serde(deny_unknown_fields)]
    settings_attrs { #[serde(default)] }
    before {
        id: Id,
        name: String,
        #[serde(default)]
        description: String,
        scope: PoolScope,
        range_start: IpAddr,
        range_end: IpAddr,
    }
    after {}
}

crate::labelled_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum VmNetworkIsolation {
        NoIsolation => "No isolation",
        NetworkVirtualization => "Network virtualization",
        Vlan => "VLAN",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmNetwork {
    pub id: Id,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub logical_network: Id,
    pub isolation: VmNetworkIsolation,
    /// Only for network virtualization.
    #[serde(default)]
    pub vm_subnets: Vec<IpNet>,
}

crate::labelled_enum! {
    /// Category of a network service, as the Network Service node groups them.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum ServiceCategory {
        Gateway => "Gateways",
        VirtualSwitchExtension => "Virtual switch extensions",
        /// Network managers, where IPAM servers sit.
        NetworkManager => "Network managers",
        TopOfRackSwitch => "Top-of-rack switches",
    }
}

/// Which host groups a network service integrates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "host_groups")]
pub enum HostGroupScope {
    All,
    Selected(BTreeSet<Id>),
}

/// An IPAM server (or other network service) added through the Add Network Service wizard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkService {
    pub id: Id,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub category: ServiceCategory,
    pub manufacturer: String,
    pub model: String,
    pub connection: ConnectionString,
    pub run_as: Id,
    /// Id of the configuration provider in the registry.
    pub provider: String,
    pub scope: HostGroupScope,
    /// Seconds between background syncs.
    #[serde(default = "default_sync_interval")]
    pub sync_interval_secs: u64,
    /// SHA-256 fingerprint of the server's TLS certificate, when pinned.
    #[serde(default)]
    pub tls_fingerprint: Option<String>,
    /// A PEM file of certificate authorities trusted for this service besides the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca_file: Option<std::path::PathBuf>,
    /// The administrator chose to send the token over plain HTTP to a host that is not this
    /// computer. Without it such a connection is refused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_cleartext: bool,
    /// Where the IPAM server publishes its changes, when it does through a separate broker:
    /// the `redis://host:port` of Nautobot's event broker. The built-in server needs none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_source: Option<String>,
    /// Sync as soon as either side changes (the console's saves sent within a second, the
    /// server's changes listened for), besides every interval. On unless turned off.
    #[serde(default = "sync_on_change_default", skip_serializing_if = "is_on")]
    pub sync_on_change: bool,
}

fn sync_on_change_default() -> bool {
    true
}

fn is_on(v: &bool) -> bool {
    *v
}

impl NetworkService {
    /// How the console decides to trust this service's server.
    pub fn trust(&self) -> TlsTrust {
        TlsTrust {
            fingerprint: self.tls_fingerprint.clone(),
            ca_file: self.tls_ca_file.clone(),
            allow_cleartext: self.allow_cleartext,
        }
    }

    pub fn set_trust(&mut self, trust: TlsTrust) {
        self.tls_fingerprint = trust.fingerprint;
        self.tls_ca_file = trust.ca_file;
        self.allow_cleartext = trust.allow_cleartext;
    }
}

/// What a connection to an IPAM server trusts: the system's certificate authorities, plus a
/// CA file, or exactly one pinned certificate; and whether plain HTTP to another host was chosen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TlsTrust {
    /// SHA-256 of the one certificate to accept (any spelling `normalize_fingerprint` takes).
    pub fingerprint: Option<String>,
    pub ca_file: Option<std::path::PathBuf>,
    pub allow_cleartext: bool,
}

impl TlsTrust {
    /// Trusts exactly the certificate with this fingerprint.
    pub fn pinned(fingerprint: Option<String>) -> Self {
        TlsTrust {
            fingerprint,
            ..TlsTrust::default()
        }
    }
}

pub fn default_sync_interval() -> u64 {
    300
}

crate::labelled_enum! {
    /// The kinds of fabric object, for errors, counts and the UI.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum ObjectKind {
        HostGroup => "host group",
        RunAsAccount => "Run As account",
        LogicalNetwork => "logical network",
        NetworkSite => "network site",
        Subnet => "IP address subnet",
        IpPool => "static IP address pool",
        VmNetwork => "VM network",
        NetworkService => "network service",
    }
}

/// The whole fabric, in memory. Maps are ordered so exports and plans are deterministic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fabric {
    pub host_groups: BTreeMap<Id, HostGroup>,
    pub run_as_accounts: BTreeMap<Id, RunAsAccount>,
    pub logical_networks: BTreeMap<Id, LogicalNetwork>,
    pub network_sites: BTreeMap<Id, NetworkSite>,
    pub ip_pools: BTreeMap<Id, IpPool>,
    pub vm_networks: BTreeMap<Id, VmNetwork>,
    pub network_services: BTreeMap<Id, NetworkService>,
}

impl Fabric {
    /// An empty fabric holding only the root host group.
    pub fn new() -> Self {
        let mut fabric = Fabric::default();
        let root = HostGroup {
            id: Uuid::new_v4(),
            name: ROOT_HOST_GROUP.to_string(),
            parent: None,
        };
        fabric.host_groups.insert(root.id, root);
        fabric
    }

    pub fn root_host_group(&self) -> Option<&HostGroup> {
        self.host_groups.values().find(|g| g.parent.is_none())
    }

    /// Children of a host group, sorted by name.
    pub fn host_group_children(&self, parent: Id) -> Vec<&HostGroup> {
        let mut children: Vec<_> = self
            .host_groups
            .values()
            .filter(|g| g.parent == Some(parent))
            .collect();
        children.sort_by_key(|g| g.name.to_lowercase());
        children
    }

    /// The host group and every group below it.
    pub fn host_group_subtree(&self, id: Id) -> BTreeSet<Id> {
        let mut out = BTreeSet::new();
        let mut stack = vec![id];
        while let Some(g) = stack.pop() {
            if out.insert(g) {
                stack.extend(
                    self.host_groups
                        .values()
                        .filter(|c| c.parent == Some(g))
                        .map(|c| c.id),
                );
            }
        }
        out
    }

    /// The host group and its ancestors up to the root.
    pub fn host_group_ancestors(&self, id: Id) -> Vec<Id> {
        let mut out = Vec::new();
        let mut cur = Some(id);
        while let Some(g) = cur {
            if out.contains(&g) {
                break;
            }
            out.push(g);
            cur = self.host_groups.get(&g).and_then(|h| h.parent);
        }
        out
    }

    /// Slash-separated path of a host group, e.g. "All Hosts/Seattle/Rack 1".
    pub fn host_group_path(&self, id: Id) -> String {
        let mut names: Vec<&str> = self
            .host_group_ancestors(id)
            .iter()
            .filter_map(|g| self.host_groups.get(g).map(|h| h.name.as_str()))
            .collect();
        names.reverse();
        names.join("/")
    }

    /// The logical network a pool belongs to: its site's, or its VM network's.
    pub fn logical_network_of_pool(&self, pool: &IpPool) -> Option<Id> {
        match pool.scope {
            PoolScope::Site { site, .. } => {
                self.network_sites.get(&site).map(|s| s.logical_network)
            }
            PoolScope::VmSubnet { vm_network, .. } => {
                self.vm_networks.get(&vm_network).map(|v| v.logical_network)
            }
        }
    }

    pub fn sites_of(&self, logical_network: Id) -> impl Iterator<Item = &NetworkSite> {
        self.network_sites
            .values()
            .filter(move |s| s.logical_network == logical_network)
    }

    pub fn pools_of_site(&self, site: Id) -> impl Iterator<Item = &IpPool> {
        self.ip_pools
            .values()
            .filter(move |p| matches!(p.scope, PoolScope::Site { site: s, .. } if s == site))
    }

    pub fn vm_networks_of(&self, logical_network: Id) -> impl Iterator<Item = &VmNetwork> {
        self.vm_networks
            .values()
            .filter(move |v| v.logical_network == logical_network)
    }

    /// Number of objects of every kind, subnets counted one by one.
    pub fn object_count(&self) -> usize {
        self.host_groups.len()
            + self.run_as_accounts.len()
            + self.logical_networks.len()
            + self.network_sites.len()
            + self
                .network_sites
                .values()
                .map(|s| s.subnets.len())
                .sum::<usize>()
            + self.ip_pools.len()
            + self.vm_networks.len()
            + self.network_services.len()
    }

    /// Does this service's scope include the site (any of its host groups inside a selected group's subtree)?
    pub fn site_in_scope(&self, site: &NetworkSite, scope: &HostGroupScope) -> bool {
        match scope {
            HostGroupScope::All => true,
            HostGroupScope::Selected(groups) => site.host_groups.iter().any(|hg| {
                self.host_group_ancestors(*hg)
                    .iter()
                    .any(|a| groups.contains(a))
            }),
        }
    }
}

/// Any fabric object, for change batches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "object")]
pub enum FabricObject {
    HostGroup(HostGroup),
    RunAsAccount(RunAsAccount),
    LogicalNetwork(LogicalNetwork),
    NetworkSite(NetworkSite),
    IpPool(IpPool),
    VmNetwork(VmNetwork),
    NetworkService(NetworkService),
}

impl FabricObject {
    pub fn kind(&self) -> ObjectKind {
        crate::match_object!(self, o => kind_of(o))
    }
    pub fn id(&self) -> Id {
        crate::match_object!(self, o => o.id)
    }
    pub fn name(&self) -> &str {
        crate::match_object!(self, o => o.name.as_str())
    }
}

fn kind_of<T: FabricKind>(_: &T) -> ObjectKind {
    T::KIND
}

/// What the store, the export and validation need of each of the seven stored kinds, so code
/// over "every kind" is written once. Subnets are not a kind here: they live inside their site.
pub trait FabricKind: Clone + Serialize + serde::de::DeserializeOwned + 'static {
    const KIND: ObjectKind;
    /// The SQLite table and the export collection, e.g. "ip_pools".
    const COLLECTION: &'static str;
    fn id(&self) -> Id;
    fn name(&self) -> &str;
    fn all(f: &Fabric) -> &BTreeMap<Id, Self>;
    fn all_mut(f: &mut Fabric) -> &mut BTreeMap<Id, Self>;
    fn into_object(self) -> FabricObject;
    fn of_object(o: &FabricObject) -> Option<&Self>;
}

/// The seven stored kinds, in table order, each with its `Fabric` collection: the one list every
/// "per kind" macro below expands from. Calls `$crate::$callback!` with `{ $($args)* }` followed by
/// `Type collection,` for each kind.
#[doc(hidden)]
#[macro_export]
macro_rules! with_fabric_kinds {
    ($callback:ident { $($args:tt)* }) => {
        $crate::$callback! {
            { $($args)* }
            HostGroup host_groups,
            RunAsAccount run_as_accounts,
            LogicalNetwork logical_networks,
            NetworkSite network_sites,
            IpPool ip_pools,
            VmNetwork vm_networks,
            NetworkService network_services,
        }
    };
}

/// The [`FabricKind`] impls; expanded here only, so it names this module's items directly.
#[doc(hidden)]
#[macro_export]
macro_rules! __fabric_kind_impls {
    ({} $($ty:ident $collection:ident,)*) => {
        $(
            impl FabricKind for $ty {
                const KIND: ObjectKind = ObjectKind::$ty;
                const COLLECTION: &'static str = stringify!($collection);
                fn id(&self) -> Id {
                    self.id
                }
                fn name(&self) -> &str {
                    &self.name
                }
                fn all(f: &Fabric) -> &BTreeMap<Id, Self> {
                    &f.$collection
                }
                fn all_mut(f: &mut Fabric) -> &mut BTreeMap<Id, Self> {
                    &mut f.$collection
                }
                fn into_object(self) -> FabricObject {
                    FabricObject::$ty(self)
                }
                fn of_object(o: &FabricObject) -> Option<&Self> {
                    match o {
                        FabricObject::$ty(x) => Some(x),
                        _ => None,
                    }
                }
            }
        )*
    };
}

crate::with_fabric_kinds!(__fabric_kind_impls {});

/// Runs `$body` once per stored kind, in table order, with `$t` naming the kind's type.
#[macro_export]
macro_rules! for_each_kind {
    ($t:ident => $body:block) => {
        $crate::with_fabric_kinds!(__for_each_kind { $t => $body })
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __for_each_kind {
    ({ $t:ident => $body:block } $($ty:ident $collection:ident,)*) => {{
        $(
            {
                type $t = $crate::fabric::model::$ty;
                $body
            }
        )*
    }};
}

/// Evaluates `$body` with `$t` naming the type of the stored kind `$kind`; `$subnet` for subnets.
#[macro_export]
macro_rules! match_kind {
    ($kind:expr, $t:ident => $body:expr, subnet => $subnet:expr) => {
        $crate::with_fabric_kinds!(__match_kind { $kind, $t => $body, subnet => $subnet })
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __match_kind {
    ({ $kind:expr, $t:ident => $body:expr, subnet => $subnet:expr } $($ty:ident $collection:ident,)*) => {
        match $kind {
            $(
                $crate::fabric::model::ObjectKind::$ty => {
                    type $t = $crate::fabric::model::$ty;
                    $body
                }
            )*
            $crate::fabric::model::ObjectKind::Subnet => $subnet,
        }
    };
}

/// Evaluates `$body` with `$o` bound to the object inside a [`FabricObject`], whatever its kind.
#[macro_export]
macro_rules! match_object {
    ($object:expr, $o:ident => $body:expr) => {
        $crate::with_fabric_kinds!(__match_object { $object, $o => $body })
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __match_object {
    ({ $object:expr, $o:ident => $body:expr } $($ty:ident $collection:ident,)*) => {
        match $object {
            $($crate::fabric::model::FabricObject::$ty($o) => $body,)*
        }
    };
}

/// One change of a batch: the store applies a whole batch or nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)] // Batches are short-lived; boxing every object costs more.
pub enum FabricChange {
    /// Create or replace the object with this id.
    Put(FabricObject),
    Delete(ObjectKind, Id),
}

impl Fabric {
    /// Apply changes in memory (no validation). Deleting a missing object is a no-op.
    pub fn apply_changes(&mut self, changes: &[FabricChange]) {
        for change in changes {
            match change {
                FabricChange::Put(o) => crate::match_object!(o, x => self.put(x.clone())),
                FabricChange::Delete(kind, id) => {
                    crate::match_kind!(kind, T => { T::all_mut(self).remove(id); }, subnet => {});
                }
            }
        }
    }

    /// Creates or replaces the object with its id.
    pub fn put<T: FabricKind>(&mut self, object: T) {
        T::all_mut(self).insert(object.id(), object);
    }

    /// The object of `kind` with `id`, cloned; `None` when missing (and for subnets, which live in sites).
    pub fn object(&self, kind: ObjectKind, id: Id) -> Option<FabricObject> {
        crate::match_kind!(kind, T => T::all(self).get(&id).cloned().map(T::into_object), subnet => None)
    }

    /// Objects that refer to this one (and so block its deletion), as (kind, id, name).
    pub fn dependents(&self, kind: ObjectKind, id: Id) -> Vec<(ObjectKind, Id, String)> {
        let mut out = Vec::new();
        match kind {
            ObjectKind::HostGroup => {
                for g in self.host_groups.values().filter(|g| g.parent == Some(id)) {
                    out.push((ObjectKind::HostGroup, g.id, g.name.clone()));
                }
                for s in self
                    .network_sites
                    .values()
                    .filter(|s| s.host_groups.contains(&id))
                {
                    out.push((ObjectKind::NetworkSite, s.id, s.name.clone()));
                }
                for n in self.network_services.values() {
                    if let HostGroupScope::Selected(g) = &n.scope
                        && g.contains(&id)
                    {
                        out.push((ObjectKind::NetworkService, n.id, n.name.clone()));
                    }
                }
            }
            ObjectKind::RunAsAccount => {
                for n in self.network_services.values().filter(|n| n.run_as == id) {
                    out.push((ObjectKind::NetworkService, n.id, n.name.clone()));
                }
            }
            ObjectKind::LogicalNetwork => {
                for s in self.sites_of(id) {
                    out.push((ObjectKind::NetworkSite, s.id, s.name.clone()));
                }
                for v in self.vm_networks_of(id) {
                    out.push((ObjectKind::VmNetwork, v.id, v.name.clone()));
                }
            }
            ObjectKind::NetworkSite => {
                for p in self.pools_of_site(id) {
                    out.push((ObjectKind::IpPool, p.id, p.name.clone()));
                }
            }
            ObjectKind::VmNetwork => {
                for p in self.ip_pools.values().filter(
                    |p| matches!(p.scope, PoolScope::VmSubnet { vm_network, .. } if vm_network == id),
                ) {
                    out.push((ObjectKind::IpPool, p.id, p.name.clone()));
                }
            }
            ObjectKind::IpPool | ObjectKind::NetworkService | ObjectKind::Subnet => {}
        }
        out
    }
}

/// A pool's settings with every field set, for the wire-format tests.
#[cfg(test)]
pub(crate) fn full_pool_settings() -> PoolSettings {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    PoolSettings {
        reserved: [ip("10.0.0.11"), ip("10.0.0.13")].into(),
        vips: [ip("10.0.0.12")].into(),
        gateways: vec![
            Gateway::Address {
                address: ip("10.0.0.1"),
                metric: 5,
            },
            Gateway::Automatic {
                address: ip("10.0.0.3"),
            },
        ],
        dns_servers: vec![ip("10.0.0.2"), ip("fd00::2")],
        dns_suffix: "corp.example".into(),
        dns_search_suffixes: vec!["example".into(), "corp.example".into()],
        wins_servers: vec![ip("10.0.0.4")],
        netbios_enabled: true,
    }
}

/// Checks of a type's JSON against what older code wrote, for the wire-format tests of the types
/// that carry [`PoolSettings`].
#[cfg(test)]
pub(crate) mod wire_checks {
    use serde::Serialize;
    use serde::de::DeserializeOwned;
    use std::fmt::Debug;

    /// `value` is written exactly as `old_json`, and `old_json` reads back as `value`.
    pub(crate) fn assert_json_as_before<T>(value: &T, old_json: &str)
    where
        T: Serialize + DeserializeOwned + PartialEq + Debug,
    {
        assert_eq!(serde_json::to_string(value).unwrap(), old_json);
        assert_eq!(&serde_json::from_str::<T>(old_json).unwrap(), value);
    }

    /// `json` with an unknown field `bogus` before `netbios_enabled`.
    pub(crate) fn with_bogus_field(json: &str) -> String {
        json.replace(r#""netbios_enabled""#, r#""bogus":1,"netbios_enabled""#)
    }

    /// Reading `json` as `T` fails with an error that starts with `start`.
    pub(crate) fn read_error<T: DeserializeOwned + Debug>(json: &str, start: &str) -> String {
        let e = serde_json::from_str::<T>(json).unwrap_err().to_string();
        assert!(e.starts_with(start), "{e}");
        e
    }

    /// Unknown fields in `old_json` (a `bogus` one, or a nested `settings`) are refused with
    /// serde's error listing `expected` (the "expected one of ..." part).
    pub(crate) fn assert_unknown_fields_rejected<T: DeserializeOwned + Debug>(
        old_json: &str,
        expected: &str,
    ) {
        for json in [
            with_bogus_field(old_json),
            old_json.replace(r#""id""#, r#""settings":{},"id""#),
        ] {
            let e = read_error::<T>(&json, "unknown field `");
            assert!(e.contains(expected), "{e}");
        }
    }
}

#[cfg(test)]
mod pool_wire_tests {
    use super::wire_checks::*;
    use super::*;

    /// Written by the code before `PoolSettings` existed (fields spelled out on `IpPool`).
    const OLD_JSON: &str = r#"{"id":"11111111-1111-1111-1111-111111111111","name":"pool","description":"d","scope":{"kind":"site","site":"22222222-2222-2222-2222-222222222222","subnet":"10.0.0.0/24"},"range_start":"10.0.0.10","range_end":"10.0.0.50","reserved":["10.0.0.11","10.0.0.13"],"vips":["10.0.0.12"],"gateways":[{"kind":"address","address":"10.0.0.1","metric":5},{"kind":"automatic","address":"10.0.0.3"}],"dns_servers":["10.0.0.2","fd00::2"],"dns_suffix":"corp.example","dns_search_suffixes":["example","corp.example"],"wins_servers":["10.0.0.4"],"netbios_enabled":true}"#;

    fn full_pool() -> IpPool {
        IpPool {
            id: "11111111-1111-1111-1111-111111111111".parse().unwrap(),
            name: "pool".into(),
            description: "d".into(),
            scope: PoolScope::Site {
                site: "22222222-2222-2222-2222-222222222222".parse().unwrap(),
                subnet: "10.0.0.0/24".parse().unwrap(),
            },
            range_start: "10.0.0.10".parse().unwrap(),
            range_end: "10.0.0.50".parse().unwrap(),
            settings: full_pool_settings(),
        }
    }

    #[test]
    fn json_is_byte_identical_to_before() {
        assert_json_as_before(&full_pool(), OLD_JSON);
        let pretty = serde_json::to_string_pretty(&full_pool()).unwrap();
        assert_eq!(
            serde_json::from_str::<IpPool>(&pretty).unwrap(),
            full_pool()
        );
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert_unknown_fields_rejected::<IpPool>(
            OLD_JSON,
            "expected one of `id`, `name`, `description`, `scope`, `range_start`, `range_end`, `reserved`, `vips`, `gateways`, `dns_servers`, `dns_suffix`, `dns_search_suffixes`, `wins_servers`, `netbios_enabled`",
        );
    }

    #[test]
    fn missing_optional_fields_default_and_required_ones_do_not() {
        let minimal = r#"{"id":"11111111-1111-1111-1111-111111111111","name":"pool","scope":{"kind":"site","site":"22222222-2222-2222-2222-222222222222","subnet":"10.0.0.0/24"},"range_start":"10.0.0.10","range_end":"10.0.0.50"}"#;
        let p: IpPool = serde_json::from_str(minimal).unwrap();
        assert_eq!(p.description, "");
        assert_eq!(p.settings, PoolSettings::default());
        read_error::<IpPool>(
            &minimal.replace(r#","range_end":"10.0.0.50""#, ""),
            "missing field `range_end`",
        );
    }
}
