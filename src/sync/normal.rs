//! The normalised shape both sides are projected into before comparing, and the stored base.
//!
//! Values are normalised so that equal meaning compares equal: CIDRs in canonical form, sets
//! sorted, DNS names lower-cased.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::fabric::model::{Gateway, Id, PoolSettings, pool_settings_wire};
use crate::ipam::model::IpamId;

/// A subnet is identified by its logical network and its canonical CIDR.
pub type SubnetKey = (Id, IpNet);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LnVal {
    pub name: String,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteVal {
    pub ln: Id,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetVal {
    pub site: Id,
    pub vlan: u16,
    pub secondary_vlan: Option<u16>,
}

/// A pool in normalised form. Its JSON (the stored base) spells the settings inline, every field
/// required: see [`pool_settings_wire!`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolVal {
    pub ln: Id,
    pub subnet: IpNet,
    pub name: String,
    pub description: String,
    pub start: IpAddr,
    pub end: IpAddr,
    pub settings: PoolSettings,
}

pool_settings_wire! {
    PoolVal via PoolValWire, PoolValWireRef;
    settings_attrs {}
    before {
        ln: Id,
        subnet: IpNet,
        name: String,
        description: String,
        start: IpAddr,
        end: IpAddr,
    }
    after {}
}

impl PoolSettings {
    /// The settings in normalised form: gateways sorted without duplicates, DNS suffixes
    /// trimmed of their final dot and lower-cased (sets are sorted already).
    pub fn normalized(&self) -> PoolSettings {
        let mut n = self.clone();
        n.gateways = normalize_gateways(&n.gateways);
        n.dns_suffix = normalize_suffix(&n.dns_suffix);
        for s in &mut n.dns_search_suffixes {
            *s = normalize_suffix(s);
        }
        n
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmnVal {
    pub ln: Id,
    pub name: String,
    pub subnets: BTreeSet<IpNet>,
}

/// One side (or the base) in normalised form.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Normalized {
    pub lns: BTreeMap<Id, LnVal>,
    pub sites: BTreeMap<Id, SiteVal>,
    #[serde(with = "subnet_map")]
    pub subnets: BTreeMap<SubnetKey, SubnetVal>,
    pub pools: BTreeMap<Id, PoolVal>,
    pub vmns: BTreeMap<Id, VmnVal>,
    /// Pools on VM subnets: `PoolVal::ln` holds the VM network. Console → IPAM only.
    #[serde(default)]
    pub vm_pools: BTreeMap<Id, PoolVal>,
}

impl Normalized {
    pub fn object_count(&self) -> usize {
        self.lns.len()
            + self.sites.len()
            + self.subnets.len()
            + self.pools.len()
            + self.vmns.len()
            + self.vm_pools.len()
    }

    /// Remove the sites of a logical network with their subnets and pools.
    pub fn remove_sites_of(&mut self, ln: Id) {
        self.sites.retain(|_, s| s.ln != ln);
        self.subnets.retain(|(l, _), _| *l != ln);
        self.pools.retain(|_, p| p.ln != ln);
    }

    /// Remove a logical network and its VM networks.
    pub fn remove_network(&mut self, ln: Id) {
        self.lns.remove(&ln);
        self.vmns.retain(|_, v| v.ln != ln);
    }
}

/// Ids of the IPAM objects linked to console objects.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamIds {
    /// Logical network → provider address space.
    pub spaces: BTreeMap<Id, IpamId>,
    #[serde(with = "subnet_map")]
    pub subnets: BTreeMap<SubnetKey, IpamId>,
    /// Pool → range.
    pub ranges: BTreeMap<Id, IpamId>,
    /// VM network → customer address space.
    pub vmn_spaces: BTreeMap<Id, IpamId>,
    /// (VM network, VM subnet) → customer subnet.
    #[serde(with = "subnet_map")]
    pub vmn_subnets: BTreeMap<SubnetKey, IpamId>,
}

/// What both sides last agreed on, per network service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseState {
    pub values: Normalized,
    pub ids: IpamIds,
}

pub fn normalize_suffix(s: &str) -> String {
    s.trim().trim_end_matches('.').to_ascii_lowercase()
}

pub fn normalize_gateways(g: &[Gateway]) -> Vec<Gateway> {
    let mut v = g.to_vec();
    v.sort();
    v.dedup();
    v
}

/// JSON maps need string keys: (id, cidr) pairs are stored as a list.
mod subnet_map {
    use super::SubnetKey;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<V: Serialize, S: Serializer>(
        m: &BTreeMap<SubnetKey, V>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let v: Vec<(&SubnetKey, &V)> = m.iter().collect();
        v.serialize(s)
    }

    pub fn deserialize<'de, V: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<SubnetKey, V>, D::Error> {
        let v: Vec<(SubnetKey, V)> = Vec::deserialize(d)?;
        Ok(v.into_iter().collect())
    }
}

#[cfg(test)]
mod pool_val_wire_tests {
    use super::*;
    use crate::fabric::model::full_pool_settings;
    use crate::fabric::model::wire_checks::*;

    /// Written by the code before `PoolSettings` existed (fields spelled out on `PoolVal`).
    const OLD_JSON: &str = r#"{"ln":"33333333-3333-3333-3333-333333333333","subnet":"10.0.0.0/24","name":"pool","description":"d","start":"10.0.0.10","end":"10.0.0.50","reserved":["10.0.0.11","10.0.0.13"],"vips":["10.0.0.12"],"gateways":[{"kind":"address","address":"10.0.0.1","metric":5},{"kind":"automatic","address":"10.0.0.3"}],"dns_servers":["10.0.0.2","fd00::2"],"dns_suffix":"corp.example","dns_search_suffixes":["example","corp.example"],"wins_servers":["10.0.0.4"],"netbios_enabled":true}"#;

    fn full_val() -> PoolVal {
        PoolVal {
            ln: "33333333-3333-3333-3333-333333333333".parse().unwrap(),
            subnet: "10.0.0.0/24".parse().unwrap(),
            name: "pool".into(),
            description: "d".into(),
            start: "10.0.0.10".parse().unwrap(),
            end: "10.0.0.50".parse().unwrap(),
            settings: full_pool_settings(),
        }
    }

    #[test]
    fn json_is_byte_identical_to_before() {
        assert_json_as_before(&full_val(), OLD_JSON);
    }

    #[test]
    fn unknown_fields_are_still_ignored() {
        let json = with_bogus_field(OLD_JSON);
        assert_eq!(serde_json::from_str::<PoolVal>(&json).unwrap(), full_val());
    }

    #[test]
    fn every_field_is_still_required() {
        for field in [
            "name",
            "end",
            "reserved",
            "gateways",
            "dns_suffix",
            "netbios_enabled",
        ] {
            let mut v: serde_json::Value = serde_json::from_str(OLD_JSON).unwrap();
            v.as_object_mut().unwrap().remove(field);
            let e = serde_json::from_value::<PoolVal>(v)
                .unwrap_err()
                .to_string();
            assert_eq!(e, format!("missing field `{field}`"));
        }
    }

    #[test]
    fn normalized_sorts_gateways_and_lower_cases_dns_names() {
        let mut s = full_pool_settings();
        s.gateways.reverse();
        s.gateways.push(s.gateways[0].clone());
        s.dns_suffix = " Corp.Example. ".into();
        s.dns_search_suffixes = vec!["EXAMPLE.".into(), "corp.example".into()];
        let n = s.normalized();
        assert_eq!(
            n.gateways,
            normalize_gateways(&full_pool_settings().gateways)
        );
        assert_eq!(n.gateways.len(), 2);
        assert_eq!(n.dns_suffix, "corp.example");
        assert_eq!(n.dns_search_suffixes, vec!["example", "corp.example"]);
        assert_eq!((n.reserved, n.vips), (s.reserved, s.vips));
        assert_eq!(
            (n.dns_servers, n.wins_servers),
            (s.dns_servers, s.wins_servers)
        );
        assert_eq!(n.netbios_enabled, s.netbios_enabled);
    }
}
