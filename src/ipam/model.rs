//! The IPAM side of the seed's mapping table, provider-neutral.
//!
//! | console (VMM)      | IPAM                                                            |
//! |--------------------|-----------------------------------------------------------------|
//! | Logical network    | Provider IP address space; its **VMM Logical Network** field    |
//! | Network site       | **Network Site** field of the provider space's subnets          |
//! | IP address subnet  | IP address subnet (same name)                                   |
//! | IP address pool    | IP address range                                                |
//! | VM network         | Customer IP address space, **VM Network** field                 |
//!
//! Ids are strings chosen by whoever creates the object: the sync core proposes a fresh UUID
//! string for each object it creates; a provider whose server assigns its own ids reports the
//! real id in the operation's result. `vmm_id` is the console identity the object is linked to
//! (`None` for objects an IPAM administrator created and the console has not linked yet).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::fabric::model::{PoolSettings, pool_settings_wire};

/// The id of an IPAM object (address space, subnet or range), as its server or the sync core
/// chose it. On the wire and in storage it is a plain string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IpamId(String);

impl IpamId {
    pub fn new(id: impl Into<String>) -> Self {
        IpamId(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Display for IpamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for IpamId {
    fn from(id: String) -> Self {
        IpamId(id)
    }
}

impl From<&str> for IpamId {
    fn from(id: &str) -> Self {
        IpamId(id.to_string())
    }
}

impl From<&String> for IpamId {
    fn from(id: &String) -> Self {
        IpamId(id.clone())
    }
}

impl From<IpamId> for String {
    fn from(id: IpamId) -> Self {
        id.0
    }
}

impl std::borrow::Borrow<str> for IpamId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for IpamId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for IpamId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for IpamId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for IpamId {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl PartialEq<IpamId> for str {
    fn eq(&self, other: &IpamId) -> bool {
        self == other.0
    }
}

impl PartialEq<IpamId> for &str {
    fn eq(&self, other: &IpamId) -> bool {
        *self == other.0
    }
}

impl PartialEq<IpamId> for String {
    fn eq(&self, other: &IpamId) -> bool {
        *self == other.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressSpaceKind {
    /// VIRTUALIZED IP ADDRESS SPACE ▸ Provider IP Address Space.
    Provider,
    /// VIRTUALIZED IP ADDRESS SPACE ▸ Customer IP Address Space.
    Customer,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressSpace {
    pub id: IpamId,
    #[serde(default)]
    pub vmm_id: Option<Uuid>,
    pub name: String,
    pub kind: AddressSpaceKind,
    #[serde(default)]
    pub description: String,
    /// Provider spaces: the **VMM Logical Network** name. Clearing it breaks the link (seed rule).
    #[serde(default)]
    pub vmm_logical_network: Option<String>,
    /// Customer spaces: the **VM Network** name.
    #[serde(default)]
    pub vm_network: Option<String>,
    /// Customer spaces: id of the associated provider address space.
    #[serde(default)]
    pub provider_space: Option<IpamId>,
    #[serde(default)]
    pub tenant: String,
    #[serde(default)]
    pub owner: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpamSubnet {
    pub id: IpamId,
    /// Console identity: the network site (provider subnets) or VM network (customer subnets).
    #[serde(default)]
    pub vmm_id: Option<Uuid>,
    pub address_space: IpamId,
    /// Network ID in CIDR form.
    pub network: IpNet,
    #[serde(default)]
    pub name: String,
    /// "Provider" or "Customer" etc., informational.
    #[serde(default)]
    pub network_type: String,
    /// **VMM Logical Network** field.
    #[serde(default)]
    pub vmm_logical_network: Option<String>,
    /// **Network Site** field.
    #[serde(default)]
    pub network_site: Option<String>,
    #[serde(default)]
    pub vlan: u16,
    #[serde(default)]
    pub secondary_vlan: Option<u16>,
    #[serde(default)]
    pub owner: String,
    #[serde(default)]
    pub custom_fields: BTreeMap<String, String>,
}

impl AddressSpace {
    /// A space with its id, name and kind and every other field empty.
    pub fn new(id: impl Into<IpamId>, name: impl Into<String>, kind: AddressSpaceKind) -> Self {
        AddressSpace {
            id: id.into(),
            vmm_id: None,
            name: name.into(),
            kind,
            description: String::new(),
            vmm_logical_network: None,
            vm_network: None,
            provider_space: None,
            tenant: String::new(),
            owner: String::new(),
        }
    }
}

impl IpamSubnet {
    /// A subnet of `address_space` with its id and network and every other field empty (no name,
    /// VLAN 0).
    pub fn new(id: impl Into<IpamId>, address_space: impl Into<IpamId>, network: IpNet) -> Self {
        IpamSubnet {
            id: id.into(),
            vmm_id: None,
            address_space: address_space.into(),
            network,
            name: String::new(),
            network_type: String::new(),
            vmm_logical_network: None,
            network_site: None,
            vlan: 0,
            secondary_vlan: None,
            owner: String::new(),
            custom_fields: BTreeMap::new(),
        }
    }
}

/// How much of a range the console has handed out, as it reports it to the IPAM server:
/// counts, and the granted addresses themselves (marked as the console's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeUsage {
    /// Addresses in the range.
    pub total: u128,
    /// Granted to VM adapters and hosts.
    pub granted: u64,
    /// VIP addresses of the range, and how many of them are granted.
    pub vips: u64,
    pub vips_granted: u64,
    /// Reserved addresses in the range (never granted).
    pub reserved: u64,
    /// Addresses in use on the IPAM side that the console did not grant (assigned there by hand),
    /// as the console last read them.
    #[serde(default)]
    pub held: u64,
    /// Addresses a VM adapter or host could still be granted.
    pub free: u128,
    /// The granted addresses.
    #[serde(default)]
    pub addresses: Vec<UsedAddress>,
}

/// The `kind` of an address assigned on the IPAM side.
pub const ASSIGNED_ON_IPAM: &str = "ipam";

/// Per range, the addresses in use on the IPAM side that the console did not grant.
pub type Assignments = std::collections::HashMap<IpamId, Vec<UsedAddress>>;

/// One address in use in a range: granted by the console, or assigned on the IPAM side.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsedAddress {
    pub address: IpAddr,
    pub holder: String,
    /// `vm_adapter`, `host` or `vip` for the console's grants; `ipam` for an assignment made on
    /// the IPAM side.
    pub kind: String,
}

/// An IP address range. Its JSON (the built-in server's API and rows, the plan journal) spells the
/// settings inline: see [`pool_settings_wire!`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpRange {
    pub id: IpamId,
    /// Console identity: the static IP address pool.
    pub vmm_id: Option<Uuid>,
    pub subnet: IpamId,
    pub name: String,
    pub description: String,
    pub start: IpAddr,
    pub end: IpAddr,
    pub settings: PoolSettings,
    /// "VMM" for ranges the console manages.
    pub managed_by_service: String,
    /// The console's service instance (its network service id), for ranges it manages.
    pub service_instance: String,
}

pool_settings_wire! {
    IpRange via IpRangeWire, IpRangeWireRef;
    #[serde(deny_unknown_fields)]
    settings_attrs { #[serde(default)] }
    before {
        id: IpamId,
        #[serde(default)]
        vmm_id: Option<Uuid>,
        subnet: IpamId,
        #[serde(default)]
        name: String,
        #[serde(default)]
        description: String,
        start: IpAddr,
        end: IpAddr,
    }
    after {
        #[serde(default)]
        managed_by_service: String,
        #[serde(default)]
        service_instance: String,
    }
}

/// An opaque position in a server's change feed, issued by that server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Cursor(pub String);

/// Everything of the managed kinds the server holds (in the requested scope).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamSnapshot {
    pub cursor: Option<Cursor>,
    pub spaces: Vec<AddressSpace>,
    pub subnets: Vec<IpamSubnet>,
    pub ranges: Vec<IpRange>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IpamKind {
    AddressSpace,
    Subnet,
    Range,
}

impl IpamKind {
    pub fn label(self) -> &'static str {
        match self {
            IpamKind::AddressSpace => "IP address space",
            IpamKind::Subnet => "IP address subnet",
            IpamKind::Range => "IP address range",
        }
    }
}

/// What changed since a cursor: upserted objects in full, deletions by id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeSet {
    pub cursor: Option<Cursor>,
    pub spaces: Vec<AddressSpace>,
    pub subnets: Vec<IpamSubnet>,
    pub ranges: Vec<IpRange>,
    pub deleted: Vec<(IpamKind, IpamId)>,
}

/// A provider answers a snapshot request with everything, or (given a cursor it issued) the changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SnapshotRead {
    Full(IpamSnapshot),
    Changes(ChangeSet),
}

impl IpamSnapshot {
    /// Apply a change set in place: upserts replace by id, deletions remove.
    pub fn apply_changes(&mut self, changes: ChangeSet) {
        fn upsert<T: Clone>(list: &mut Vec<T>, new: Vec<T>, id: impl Fn(&T) -> &IpamId) {
            if new.is_empty() {
                return;
            }
            let mut index: std::collections::HashMap<IpamId, usize> = list
                .iter()
                .enumerate()
                .map(|(i, x)| (id(x).clone(), i))
                .collect();
            for item in new {
                match index.get(id(&item)) {
                    Some(&i) => list[i] = item,
                    None => {
                        index.insert(id(&item).clone(), list.len());
                        list.push(item);
                    }
                }
            }
        }
        upsert(&mut self.spaces, changes.spaces, |s| &s.id);
        upsert(&mut self.subnets, changes.subnets, |s| &s.id);
        upsert(&mut self.ranges, changes.ranges, |r| &r.id);
        if !changes.deleted.is_empty() {
            let gone: std::collections::HashSet<(IpamKind, &str)> = changes
                .deleted
                .iter()
                .map(|(k, id)| (*k, id.as_str()))
                .collect();
            self.spaces
                .retain(|s| !gone.contains(&(IpamKind::AddressSpace, s.id.as_str())));
            self.subnets
                .retain(|s| !gone.contains(&(IpamKind::Subnet, s.id.as_str())));
            self.ranges
                .retain(|r| !gone.contains(&(IpamKind::Range, r.id.as_str())));
        }
        if changes.cursor.is_some() {
            self.cursor = changes.cursor;
        }
    }

    pub fn object_count(&self) -> usize {
        self.spaces.len() + self.subnets.len() + self.ranges.len()
    }

    /// Puts each kind in the order of its ids: the order the sync database reads a mirror back
    /// in, so a mirror plans the same whether it was kept in memory or read. Cheap when the
    /// objects are mostly in order already.
    pub fn sort_by_id(&mut self) {
        self.spaces.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        self.subnets
            .sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        self.ranges.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    }

    /// Whether applying `changes` would leave this snapshot as it is: every written object is
    /// here exactly so, and every deleted one is gone.
    pub fn holds(&self, changes: &ChangeSet) -> bool {
        fn all_held<T: PartialEq>(list: &[T], new: &[T], id: impl Fn(&T) -> &str) -> bool {
            if new.is_empty() {
                return true;
            }
            let by_id: std::collections::HashMap<&str, &T> =
                list.iter().map(|x| (id(x), x)).collect();
            new.iter().all(|x| by_id.get(id(x)) == Some(&x))
        }
        // One pass over what is held, whatever the number of deletions.
        let deleted: std::collections::HashSet<(IpamKind, &str)> = changes
            .deleted
            .iter()
            .map(|(k, id)| (*k, id.as_str()))
            .collect();
        let still_held = |kind: IpamKind, id: &IpamId| deleted.contains(&(kind, id.as_str()));
        all_held(&self.spaces, &changes.spaces, |s| s.id.as_str())
            && all_held(&self.subnets, &changes.subnets, |s| s.id.as_str())
            && all_held(&self.ranges, &changes.ranges, |r| r.id.as_str())
            && (deleted.is_empty()
                || !(self
                    .spaces
                    .iter()
                    .any(|s| still_held(IpamKind::AddressSpace, &s.id))
                    || self
                        .subnets
                        .iter()
                        .any(|s| still_held(IpamKind::Subnet, &s.id))
                    || self
                        .ranges
                        .iter()
                        .any(|r| still_held(IpamKind::Range, &r.id))))
    }

    /// Copies of the listed objects this snapshot holds (one pass over it).
    pub fn only(&self, ids: &[(IpamKind, IpamId)]) -> IpamSnapshot {
        let wanted: std::collections::HashSet<(IpamKind, &str)> =
            ids.iter().map(|(k, id)| (*k, id.as_str())).collect();
        let has = |k: IpamKind, id: &IpamId| wanted.contains(&(k, id.as_str()));
        IpamSnapshot {
            cursor: None,
            spaces: (self.spaces.iter())
                .filter(|s| has(IpamKind::AddressSpace, &s.id))
                .cloned()
                .collect(),
            subnets: (self.subnets.iter())
                .filter(|s| has(IpamKind::Subnet, &s.id))
                .cloned()
                .collect(),
            ranges: (self.ranges.iter())
                .filter(|r| has(IpamKind::Range, &r.id))
                .cloned()
                .collect(),
        }
    }
}

impl ChangeSet {
    /// Every object this change set writes or deletes.
    pub fn touched(&self) -> Vec<(IpamKind, IpamId)> {
        let spaces = self
            .spaces
            .iter()
            .map(|s| (IpamKind::AddressSpace, s.id.clone()));
        let subnets = self
            .subnets
            .iter()
            .map(|s| (IpamKind::Subnet, s.id.clone()));
        let ranges = self.ranges.iter().map(|r| (IpamKind::Range, r.id.clone()));
        spaces
            .chain(subnets)
            .chain(ranges)
            .chain(self.deleted.iter().cloned())
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.spaces.is_empty()
            && self.subnets.is_empty()
            && self.ranges.is_empty()
            && self.deleted.is_empty()
    }
}

/// Which part of the server a snapshot reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SnapshotScope {
    /// Every address space, subnet and range.
    #[default]
    All,
    /// Only provider spaces whose VMM Logical Network (or customer spaces whose provider space)
    /// is one of these logical networks, with their subnets and ranges.
    LogicalNetworks(BTreeSet<String>),
}

/// One change to the IPAM side. Operations in a batch are applied in order; a later operation
/// may refer to an object created earlier in the same batch by the id proposed for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "op", content = "object")]
pub enum IpamOp {
    CreateSpace(AddressSpace),
    UpdateSpace(AddressSpace),
    DeleteSpace(IpamId),
    CreateSubnet(IpamSubnet),
    UpdateSubnet(IpamSubnet),
    DeleteSubnet(IpamId),
    CreateRange(IpRange),
    UpdateRange(IpRange),
    DeleteRange(IpamId),
}

impl IpamOp {
    pub fn kind(&self) -> IpamKind {
        match self {
            IpamOp::CreateSpace(_) | IpamOp::UpdateSpace(_) | IpamOp::DeleteSpace(_) => {
                IpamKind::AddressSpace
            }
            IpamOp::CreateSubnet(_) | IpamOp::UpdateSubnet(_) | IpamOp::DeleteSubnet(_) => {
                IpamKind::Subnet
            }
            IpamOp::CreateRange(_) | IpamOp::UpdateRange(_) | IpamOp::DeleteRange(_) => {
                IpamKind::Range
            }
        }
    }

    /// The id of the object the operation touches (the proposed id for a create).
    pub fn target_id(&self) -> &IpamId {
        match self {
            IpamOp::CreateSpace(s) | IpamOp::UpdateSpace(s) => &s.id,
            IpamOp::CreateSubnet(s) | IpamOp::UpdateSubnet(s) => &s.id,
            IpamOp::CreateRange(r) | IpamOp::UpdateRange(r) => &r.id,
            IpamOp::DeleteSpace(id) | IpamOp::DeleteSubnet(id) | IpamOp::DeleteRange(id) => id,
        }
    }

    pub fn verb(&self) -> OpVerb {
        match self {
            IpamOp::CreateSpace(_) | IpamOp::CreateSubnet(_) | IpamOp::CreateRange(_) => {
                OpVerb::Create
            }
            IpamOp::UpdateSpace(_) | IpamOp::UpdateSubnet(_) | IpamOp::UpdateRange(_) => {
                OpVerb::Update
            }
            IpamOp::DeleteSpace(_) | IpamOp::DeleteSubnet(_) | IpamOp::DeleteRange(_) => {
                OpVerb::Delete
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpVerb {
    Create,
    Update,
    Delete,
}

#[cfg(test)]
mod range_wire_tests {
    use super::*;
    use crate::fabric::model::full_pool_settings;
    use crate::fabric::model::wire_checks::*;

    /// Written by the code before `PoolSettings` existed (fields spelled out on `IpRange`).
    const OLD_JSON: &str = r#"{"id":"r-1","vmm_id":"11111111-1111-1111-1111-111111111111","subnet":"s-1","name":"pool","description":"d","start":"10.0.0.10","end":"10.0.0.50","reserved":["10.0.0.11","10.0.0.13"],"vips":["10.0.0.12"],"gateways":[{"kind":"address","address":"10.0.0.1","metric":5},{"kind":"automatic","address":"10.0.0.3"}],"dns_servers":["10.0.0.2","fd00::2"],"dns_suffix":"corp.example","dns_search_suffixes":["example","corp.example"],"wins_servers":["10.0.0.4"],"netbios_enabled":true,"managed_by_service":"VMM","service_instance":"svc"}"#;

    fn full_range() -> IpRange {
        IpRange {
            id: "r-1".into(),
            vmm_id: Some("11111111-1111-1111-1111-111111111111".parse().unwrap()),
            subnet: "s-1".into(),
            name: "pool".into(),
            description: "d".into(),
            start: "10.0.0.10".parse().unwrap(),
            end: "10.0.0.50".parse().unwrap(),
            settings: full_pool_settings(),
            managed_by_service: "VMM".into(),
            service_instance: "svc".into(),
        }
    }

    #[test]
    fn json_is_byte_identical_to_before() {
        assert_json_as_before(&full_range(), OLD_JSON);
        // Inside an operation (the plan journal, the server's change feed).
        let op = serde_json::to_string(&IpamOp::CreateRange(full_range())).unwrap();
        assert_eq!(
            op,
            format!(r#"{{"op":"create_range","object":{OLD_JSON}}}"#)
        );
        assert_eq!(
            serde_json::from_str::<IpamOp>(&op).unwrap(),
            IpamOp::CreateRange(full_range())
        );
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert_unknown_fields_rejected::<IpRange>(
            OLD_JSON,
            "expected one of `id`, `vmm_id`, `subnet`, `name`, `description`, `start`, `end`, `reserved`, `vips`, `gateways`, `dns_servers`, `dns_suffix`, `dns_search_suffixes`, `wins_servers`, `netbios_enabled`, `managed_by_service`, `service_instance`",
        );
    }

    #[test]
    fn missing_optional_fields_default_and_required_ones_do_not() {
        let minimal = r#"{"id":"r-1","subnet":"s-1","start":"10.0.0.10","end":"10.0.0.50"}"#;
        let r: IpRange = serde_json::from_str(minimal).unwrap();
        assert_eq!(r.vmm_id, None);
        assert_eq!((r.name.as_str(), r.description.as_str()), ("", ""));
        assert_eq!(r.settings, PoolSettings::default());
        assert_eq!(
            (r.managed_by_service.as_str(), r.service_instance.as_str()),
            ("", "")
        );
        read_error::<IpRange>(
            &minimal.replace(r#","end":"10.0.0.50""#, ""),
            "missing field `end`",
        );
    }
}

#[cfg(test)]
mod ipam_id_tests {
    use super::*;

    fn ops() -> Vec<IpamOp> {
        vec![
            IpamOp::CreateSpace(AddressSpace {
                vm_network: Some("vmn".into()),
                provider_space: Some("sp-p".into()),
                ..AddressSpace::new("sp-c", "cust", AddressSpaceKind::Customer)
            }),
            IpamOp::UpdateSubnet(IpamSubnet {
                name: "net".into(),
                ..IpamSubnet::new("sn-1", "sp-p", "10.0.0.0/24".parse().unwrap())
            }),
            IpamOp::DeleteSpace("sp-x".into()),
            IpamOp::DeleteSubnet("sn-x".into()),
            IpamOp::DeleteRange("r-x".into()),
        ]
    }

    /// Written by the code before `IpamId` existed (ids were bare `String`s).
    const OLD_OPS_JSON: &str = r#"[{"op":"create_space","object":{"id":"sp-c","vmm_id":null,"name":"cust","kind":"customer","description":"","vmm_logical_network":null,"vm_network":"vmn","provider_space":"sp-p","tenant":"","owner":""}},{"op":"update_subnet","object":{"id":"sn-1","vmm_id":null,"address_space":"sp-p","network":"10.0.0.0/24","name":"net","network_type":"","vmm_logical_network":null,"network_site":null,"vlan":0,"secondary_vlan":null,"owner":"","custom_fields":{}}},{"op":"delete_space","object":"sp-x"},{"op":"delete_subnet","object":"sn-x"},{"op":"delete_range","object":"r-x"}]"#;
    const OLD_CHANGES_JSON: &str =
        r#"{"cursor":null,"spaces":[],"subnets":[],"ranges":[],"deleted":[["range","r-9"]]}"#;

    #[test]
    fn ops_with_ids_serialise_as_before() {
        assert_eq!(serde_json::to_string(&ops()).unwrap(), OLD_OPS_JSON);
        assert_eq!(
            serde_json::from_str::<Vec<IpamOp>>(OLD_OPS_JSON).unwrap(),
            ops()
        );
        let cs = ChangeSet {
            deleted: vec![(IpamKind::Range, "r-9".into())],
            ..Default::default()
        };
        assert_eq!(serde_json::to_string(&cs).unwrap(), OLD_CHANGES_JSON);
        assert_eq!(
            serde_json::from_str::<ChangeSet>(OLD_CHANGES_JSON).unwrap(),
            cs
        );
    }

    #[test]
    fn ipam_id_is_a_plain_json_string() {
        let id = IpamId::new("a-1");
        assert_eq!(serde_json::to_string(&id).unwrap(), r#""a-1""#);
        assert_eq!(serde_json::from_str::<IpamId>(r#""a-1""#).unwrap(), id);
        assert_eq!(
            serde_json::from_str::<IpamId>(&serde_json::to_string(&id).unwrap()).unwrap(),
            id
        );
        assert!(serde_json::from_str::<IpamId>("1").is_err());
        let map: std::collections::HashMap<IpamId, u8> = [(id.clone(), 1)].into();
        assert_eq!(map.get("a-1"), Some(&1));
        assert_eq!(id.to_string(), "a-1");
    }
}

#[cfg(test)]
mod holds_tests {
    use super::*;

    #[test]
    fn a_change_set_is_held_only_when_it_would_change_nothing() {
        let a = AddressSpace::new("a", "A", AddressSpaceKind::Provider);
        let snap = IpamSnapshot {
            spaces: vec![a.clone()],
            ..IpamSnapshot::default()
        };
        let same = ChangeSet {
            spaces: vec![a.clone()],
            deleted: vec![(IpamKind::Subnet, "gone".into())],
            ..ChangeSet::default()
        };
        assert!(snap.holds(&same));
        // Another writer's edit of the same object, a new object, or a deletion of one held.
        let mut edited = a.clone();
        edited.description = "edited by hand".into();
        for other in [
            ChangeSet {
                spaces: vec![edited],
                ..ChangeSet::default()
            },
            ChangeSet {
                spaces: vec![AddressSpace::new("b", "B", AddressSpaceKind::Provider)],
                ..ChangeSet::default()
            },
            ChangeSet {
                deleted: vec![(IpamKind::AddressSpace, "a".into())],
                ..ChangeSet::default()
            },
        ] {
            assert!(!snap.holds(&other), "{other:?}");
        }
    }
}
