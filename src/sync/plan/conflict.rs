//! Conflicts: a field changed differently on both sides, and the operator's decisions on them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::fabric::model::{Id, ObjectKind};

/// How an operator decides a conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Resolution {
    KeepConsole,
    TakeIpam,
}

/// A field changed differently on both sides since the base. Never guessed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub key: ConflictKey,
    pub kind: ObjectKind,
    /// The console object (for subnets: the network site).
    pub object: Id,
    pub object_name: String,
    pub field: String,
    pub base: String,
    pub console: String,
    pub ipam: String,
    /// VM networks are console → IPAM only: an IPAM-side change is reported and put back.
    pub put_back: bool,
}

/// Stable identity of a conflict, "<kind>:<console id or subnet key>:<field>" as text: the
/// text is what resolutions are stored and decided under.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct ConflictKey {
    pub kind: ObjectKind,
    /// The console id, or "<logical network>:<cidr>" for a subnet.
    pub object: String,
    /// The field's key: its label, or "exists" / "range".
    pub field: String,
}

impl ConflictKey {
    pub fn new(kind: ObjectKind, object: impl fmt::Display, field: impl Into<String>) -> Self {
        ConflictKey {
            kind,
            object: object.to_string(),
            field: field.into(),
        }
    }
}

/// The kind's name in keys, fixed because keys are stored.
fn kind_name(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::HostGroup => "host_group",
        ObjectKind::RunAsAccount => "run_as_account",
        ObjectKind::LogicalNetwork => "logical_network",
        ObjectKind::NetworkSite => "network_site",
        ObjectKind::Subnet => "subnet",
        ObjectKind::IpPool => "ip_pool",
        ObjectKind::VmNetwork => "vm_network",
        ObjectKind::NetworkService => "network_service",
    }
}

fn kind_of_name(name: &str) -> Option<ObjectKind> {
    [
        ObjectKind::HostGroup,
        ObjectKind::RunAsAccount,
        ObjectKind::LogicalNetwork,
        ObjectKind::NetworkSite,
        ObjectKind::Subnet,
        ObjectKind::IpPool,
        ObjectKind::VmNetwork,
        ObjectKind::NetworkService,
    ]
    .into_iter()
    .find(|k| kind_name(*k) == name)
}

impl fmt::Display for ConflictKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", kind_name(self.kind), self.object, self.field)
    }
}

impl FromStr for ConflictKey {
    type Err = String;

    /// The object may hold colons (IPv6 subnets); kind names and fields never do.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("not a conflict key: {s:?}");
        let (kind, rest) = s.split_once(':').ok_or_else(bad)?;
        let (object, field) = rest.rsplit_once(':').ok_or_else(bad)?;
        Ok(ConflictKey {
            kind: kind_of_name(kind).ok_or_else(bad)?,
            object: object.to_string(),
            field: field.to_string(),
        })
    }
}

impl From<ConflictKey> for String {
    fn from(k: ConflictKey) -> String {
        k.to_string()
    }
}

impl TryFrom<String> for ConflictKey {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl PartialEq<str> for ConflictKey {
    fn eq(&self, other: &str) -> bool {
        other.parse::<ConflictKey>().is_ok_and(|k| k == *self)
    }
}

impl PartialEq<String> for ConflictKey {
    fn eq(&self, other: &String) -> bool {
        *self == *other.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_back_as_written() {
        let ln = Id::from_u128(7);
        for text in [
            format!("logical_network:{ln}:Name"),
            format!("subnet:{ln}:fd00::/64:VLAN"),
            format!("ip_pool:{ln}:range"),
        ] {
            let key: ConflictKey = text.parse().unwrap();
            assert_eq!(key.to_string(), text);
            assert!(key == text);
        }
        let key = ConflictKey::new(ObjectKind::Subnet, format!("{ln}:10.0.0.0/24"), "exists");
        assert_eq!(key.object, format!("{ln}:10.0.0.0/24"));
        assert_eq!(key.field, "exists");
        assert!("nonsense".parse::<ConflictKey>().is_err());
    }
}
