//! Console ↔ Nautobot objects: namespaces, prefixes and ranges as the neutral model, the
//! custom fields that carry console identity, and making sure they exist.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::fabric::model::{PoolSettings, pool_settings_wire};
use crate::ipam::model::{AddressSpace, IpRange, IpamSubnet};
use crate::ipam::provider::IpamError;

use super::*;

/// Custom field keys.
pub mod field {
    pub use crate::ipam::address_usage::field::*;
    pub use crate::ipam::drf::field::*;
}

pub(super) struct CustomFieldDef {
    pub(super) key: &'static str,
    pub(super) label: &'static str,
    pub(super) kind: &'static str,
    pub(super) content_types: &'static [&'static str],
    pub(super) description: &'static str,
}

pub(super) const CUSTOM_FIELD_DEFS: &[CustomFieldDef] = &[
    CustomFieldDef {
        key: field::VMM_ID,
        label: "VMM ID",
        kind: "text",
        content_types: &[CT_NAMESPACE, CT_PREFIX, CT_RANGE],
        description: "Fabric Console identity of the linked console object",
    },
    CustomFieldDef {
        key: field::VMM_SERVER,
        label: "VMM Server",
        kind: "text",
        content_types: &[CT_NAMESPACE, CT_PREFIX, CT_RANGE, CT_ADDRESS],
        description: "Fabric Console network service that manages this object",
    },
    CustomFieldDef {
        key: field::LOGICAL_NETWORK,
        label: "VMM Logical Network",
        kind: "text",
        content_types: &[CT_NAMESPACE, CT_PREFIX],
        description: "VMM logical network; clearing it on a namespace breaks the link",
    },
    CustomFieldDef {
        key: field::VM_NETWORK,
        label: "VM Network",
        kind: "text",
        content_types: &[CT_NAMESPACE],
        description: "VMM VM network of a customer address space",
    },
    CustomFieldDef {
        key: field::PROVIDER_SPACE,
        label: "VMM Provider Address Space",
        kind: "text",
        content_types: &[CT_NAMESPACE],
        description: "Namespace id of the provider address space of a customer address space",
    },
    CustomFieldDef {
        key: field::TENANT,
        label: "VMM Tenant",
        kind: "text",
        content_types: &[CT_NAMESPACE],
        description: "Tenant of the address space",
    },
    CustomFieldDef {
        key: field::OWNER,
        label: "VMM Owner",
        kind: "text",
        content_types: &[CT_NAMESPACE, CT_PREFIX],
        description: "Owner of the address space or subnet",
    },
    CustomFieldDef {
        key: field::NETWORK_SITE,
        label: "Network Site",
        kind: "text",
        content_types: &[CT_PREFIX],
        description: "VMM network site of the subnet",
    },
    CustomFieldDef {
        key: field::NETWORK_TYPE,
        label: "VMM Network Type",
        kind: "text",
        content_types: &[CT_PREFIX],
        description: "Provider or Customer",
    },
    CustomFieldDef {
        key: field::VLAN,
        label: "VMM VLAN",
        kind: "integer",
        content_types: &[CT_PREFIX],
        description: "VLAN id (0-4094) of the subnet in its network site",
    },
    CustomFieldDef {
        key: field::SECONDARY_VLAN,
        label: "VMM Secondary VLAN",
        kind: "integer",
        content_types: &[CT_PREFIX],
        description: "Secondary VLAN id for private VLANs",
    },
    CustomFieldDef {
        key: field::POOL,
        label: "VMM Pool Settings",
        kind: "json",
        content_types: &[CT_RANGE],
        description: "Static IP address pool settings: reserved, VIPs, gateways, DNS, WINS, NetBIOS",
    },
    CustomFieldDef {
        key: field::USAGE,
        label: "VMM Address Usage",
        kind: "json",
        content_types: &[CT_RANGE],
        description: "Addresses of the pool granted, reserved, VIPs and free, as the console reports them",
    },
    CustomFieldDef {
        key: field::RANGE,
        label: "VMM Range",
        kind: "text",
        content_types: &[CT_ADDRESS],
        description: "IP address range of the static IP address pool that granted this address",
    },
    CustomFieldDef {
        key: field::CONSUMER,
        label: "VMM Consumer",
        kind: "text",
        content_types: &[CT_ADDRESS],
        description: "What the console granted the address to: vm_adapter, host or vip",
    },
];

/// The content types a custom field or status applies to.
fn content_types(v: &Value) -> BTreeSet<String> {
    v.get("content_types")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn is_console_field(key: &str) -> bool {
    CUSTOM_FIELD_DEFS.iter().any(|d| d.key == key)
}

pub(super) use crate::ipam::drf::{
    address_of, cf_text, describe, is_console_object, ref_id, str_of,
};

/// The product name in the messages of the shared readers.
const NAME: &str = "Nautobot";

pub(super) fn bad_field(
    server: &str,
    what: &str,
    object: &Value,
    field: &str,
    why: &str,
) -> IpamError {
    crate::ipam::drf::bad_field(server, NAME, what, object, field, why)
}

pub(super) fn cf_uuid(server: &str, what: &str, v: &Value) -> Result<Option<Uuid>, IpamError> {
    crate::ipam::drf::cf_uuid(server, NAME, what, v)
}

/// Whether a namespace is an address space of the console's mapping.
pub(super) fn is_address_space(v: &Value) -> bool {
    let name = str_of(v, "name").unwrap_or("");
    if name.starts_with(PROBE_NAMESPACE_PREFIX) {
        return false;
    }
    name.starts_with(PROVIDER_NAMESPACE_PREFIX)
        || name.starts_with(CUSTOMER_NAMESPACE_PREFIX)
        || cf_text(v, field::VMM_ID).is_some()
        || cf_text(v, field::LOGICAL_NETWORK).is_some()
        || cf_text(v, field::VM_NETWORK).is_some()
}

pub fn namespace_name(space: &AddressSpace) -> String {
    crate::ipam::drf::space_container_name(space)
}

pub(super) fn space_from_json(server: &str, v: &Value) -> Result<AddressSpace, IpamError> {
    crate::ipam::drf::space_from_json(server, NAME, "namespace", v)
}

pub(super) fn subnet_from_json(server: &str, v: &Value) -> Result<IpamSubnet, IpamError> {
    crate::ipam::drf::subnet_from_json(server, NAME, v, "namespace", is_console_field)
}

/// The pool settings Nautobot's range has no columns for, kept in the `vmm_pool` JSON field:
/// the settings inline, then the range's management fields, every field optional (see
/// [`pool_settings_wire!`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct VmmPool {
    pub(super) settings: PoolSettings,
    pub(super) managed_by_service: String,
    pub(super) service_instance: String,
}

pool_settings_wire! {
    VmmPool via VmmPoolWire, VmmPoolWireRef;
    settings_attrs { #[serde(default)] }
    before {}
    after {
        #[serde(default)]
        managed_by_service: String,
        #[serde(default)]
        service_instance: String,
    }
}

impl VmmPool {
    pub(super) fn of(r: &IpRange) -> Self {
        VmmPool {
            settings: r.settings.clone(),
            managed_by_service: r.managed_by_service.clone(),
            service_instance: r.service_instance.clone(),
        }
    }
}

pub(super) fn range_from_json(server: &str, v: &Value) -> Result<IpRange, IpamError> {
    let id = str_of(v, "id").ok_or_else(|| bad_field(server, "range", v, "id", "missing"))?;
    let start = address_of(v, "start_address")
        .ok_or_else(|| bad_field(server, "range", v, "start_address", "not an IP address"))?;
    let end = address_of(v, "end_address")
        .ok_or_else(|| bad_field(server, "range", v, "end_address", "not an IP address"))?;
    let subnet =
        ref_id(v, "parent").ok_or_else(|| bad_field(server, "range", v, "parent", "missing"))?;
    let settings: VmmPool = crate::ipam::drf::cf_json(server, NAME, "range", v, field::POOL)?;
    Ok(IpRange {
        id: id.into(),
        vmm_id: cf_uuid(server, "range", v)?,
        subnet: subnet.into(),
        name: str_of(v, "name").unwrap_or("").to_string(),
        description: str_of(v, "description").unwrap_or("").to_string(),
        start,
        end,
        settings: settings.settings,
        managed_by_service: settings.managed_by_service,
        service_instance: settings.service_instance,
    })
}

pub(super) fn space_body(space: &AddressSpace, manager: &str) -> Value {
    json!({
        "name": namespace_name(space),
        "description": space.description,
        "custom_fields": crate::ipam::drf::space_custom_fields(space, manager),
    })
}

pub(super) fn subnet_body(subnet: &IpamSubnet, manager: &str, status_id: &str) -> Value {
    json!({
        "prefix": subnet.network.trunc().to_string(),
        "namespace": subnet.address_space,
        "type": "network",
        "status": status_id,
        "description": subnet.name,
        "custom_fields": crate::ipam::drf::subnet_custom_fields(subnet, manager),
    })
}

pub(super) fn range_body(range: &IpRange, manager: &str, status_id: &str) -> Value {
    json!({
        "start_address": range.start.to_string(),
        "end_address": range.end.to_string(),
        "parent": range.subnet,
        "status": status_id,
        "name": range.name,
        "description": range.description,
        "custom_fields": {
            field::VMM_ID: range.vmm_id.map(|u| u.to_string()),
            field::VMM_SERVER: manager,
            field::POOL: VmmPool::of(range),
        }
    })
}

#[derive(Debug, Clone)]
pub(super) struct Schema {
    pub(super) active_status: String,
}

impl NautobotProvider {
    /// Makes sure the custom fields exist on the right content types and finds the Active
    /// status, creating or extending what is missing when `create` is set.
    pub(super) async fn ensure_schema(&self, create: bool) -> Result<Schema, IpamError> {
        let mut cached = self.schema.lock().await;
        if let Some(schema) = cached.as_ref() {
            return Ok(schema.clone());
        }
        let (fields, _) = self.api.list_all(CUSTOM_FIELDS, &[]).await?;
        let mut missing = Vec::new();
        for def in CUSTOM_FIELD_DEFS {
            let existing = fields.iter().find(|f| str_of(f, "key") == Some(def.key));
            match existing {
                None => {
                    if !create {
                        missing.push(def.key);
                        continue;
                    }
                    let body = json!({
                        "key": def.key,
                        "label": def.label,
                        "type": def.kind,
                        "content_types": def.content_types,
                        "description": def.description,
                        "grouping": "Fabric Console",
                        "filter_logic": "exact",
                    });
                    if let Err(e) = self.send_ok(Method::POST, CUSTOM_FIELDS, Some(&body)).await {
                        // Another console may have created it meanwhile.
                        let (now, _) = self.api.list_all(CUSTOM_FIELDS, &[]).await?;
                        if !now.iter().any(|f| str_of(f, "key") == Some(def.key)) {
                            return Err(e);
                        }
                    }
                }
                Some(f) => {
                    let have = content_types(f);
                    let lacking: Vec<&str> = def
                        .content_types
                        .iter()
                        .copied()
                        .filter(|ct| !have.contains(*ct))
                        .collect();
                    if lacking.is_empty() {
                        continue;
                    }
                    if !create {
                        missing.push(def.key);
                        continue;
                    }
                    let id = str_of(f, "id").unwrap_or_default();
                    let mut all: Vec<String> = have.into_iter().collect();
                    all.extend(lacking.iter().map(|s| s.to_string()));
                    self.send_ok(
                        Method::PATCH,
                        &format!("{CUSTOM_FIELDS}{id}/"),
                        Some(&json!({ "content_types": all })),
                    )
                    .await?;
                }
            }
        }
        let status_reply = self
            .api
            .get(STATUSES, &[("name".into(), "Active".into())])
            .await?;
        let statuses = results_of(&self.api.server, STATUSES, status_reply.body)?;
        let active = statuses.first().ok_or_else(|| {
            self.protocol("Nautobot has no status named \"Active\"; create it for prefixes and IP address ranges")
        })?;
        let active_id = str_of(active, "id").unwrap_or_default().to_string();
        let cts = content_types(active);
        let needed = [CT_PREFIX, CT_RANGE, CT_ADDRESS];
        if needed.iter().any(|ct| !cts.contains(*ct)) {
            if create {
                let mut all: Vec<String> = cts.into_iter().collect();
                all.extend(needed.iter().map(|s| s.to_string()));
                all.sort();
                all.dedup();
                self.send_ok(
                    Method::PATCH,
                    &format!("{STATUSES}{active_id}/"),
                    Some(&json!({ "content_types": all })),
                )
                .await?;
            } else {
                missing.push("status Active for prefixes, ranges and IP addresses");
            }
        }
        let schema = Schema {
            active_status: active_id,
        };
        if missing.is_empty() {
            *cached = Some(schema.clone());
            Ok(schema)
        } else if create {
            Ok(schema)
        } else {
            Err(IpamError::Forbidden {
                server: self.api.server.clone(),
                detail: format!(
                    "missing in Nautobot: {}; they are created on the first sync by a token \
                     allowed to add and change extras.customfield",
                    missing.join(", ")
                ),
            })
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::fabric::model::Gateway;
    use crate::fabric::model::wire_checks::*;
    use crate::ipam::model::AddressSpaceKind;
    use std::collections::BTreeMap;

    pub(in crate::ipam::nautobot) fn space(
        id: &str,
        kind: AddressSpaceKind,
        name: &str,
    ) -> AddressSpace {
        AddressSpace::new(id, name, kind)
    }

    #[test]
    fn namespace_names_carry_the_kind() {
        let p = space("1", AddressSpaceKind::Provider, "Prod");
        let c = space("2", AddressSpaceKind::Customer, "Tenant A");
        assert_eq!(namespace_name(&p), "vmm-ln-Prod");
        assert_eq!(namespace_name(&c), "vmm-vmn-Tenant A");
        let raw = json!({"id": Uuid::new_v4().to_string(), "name": "vmm-vmn-Tenant A", "description": "d",
            "custom_fields": {"vmm_vm_network": "Tenant A", "vmm_id": null}});
        let s = space_from_json("nb", &raw).unwrap();
        assert_eq!(s.kind, AddressSpaceKind::Customer);
        assert_eq!(s.name, "Tenant A");
        assert_eq!(s.vm_network.as_deref(), Some("Tenant A"));
        assert!(is_address_space(&raw));
        assert!(!is_address_space(
            &json!({"name": "Global", "custom_fields": {}})
        ));
        assert!(!is_address_space(
            &json!({"name": "fabric-console-permission-check-1"})
        ));
    }

    #[test]
    fn subnet_round_trips_through_json() {
        let subnet = IpamSubnet {
            id: Uuid::new_v4().to_string().into(),
            vmm_id: Some(Uuid::new_v4()),
            address_space: Uuid::new_v4().to_string().into(),
            network: "10.1.2.0/24".parse().unwrap(),
            name: "site A".into(),
            network_type: "Provider".into(),
            vmm_logical_network: Some("Prod".into()),
            network_site: Some("Seattle".into()),
            vlan: 12,
            secondary_vlan: Some(300),
            owner: "ops".into(),
            custom_fields: BTreeMap::new(),
        };
        let mut body = subnet_body(&subnet, "console", "status-id");
        body["id"] = json!(subnet.id);
        assert_eq!(subnet_from_json("nb", &body).unwrap(), subnet);
    }

    #[test]
    fn bad_vlan_names_the_prefix_and_field() {
        let raw = json!({"id": Uuid::new_v4().to_string(), "prefix": "10.0.0.0/24", "display": "10.0.0.0/24",
            "namespace": {"id": "n"}, "custom_fields": {"vmm_vlan": 5000}});
        let e = subnet_from_json("nb", &raw).unwrap_err().to_string();
        assert!(e.contains("10.0.0.0/24") && e.contains("vmm_vlan"), "{e}");
    }

    #[test]
    fn range_round_trips_through_json() {
        let range = IpRange {
            id: Uuid::new_v4().to_string().into(),
            vmm_id: Some(Uuid::new_v4()),
            subnet: Uuid::new_v4().to_string().into(),
            name: "pool".into(),
            description: "d".into(),
            start: "10.0.0.10".parse().unwrap(),
            end: "10.0.0.50".parse().unwrap(),
            settings: PoolSettings {
                reserved: ["10.0.0.11".parse().unwrap()].into(),
                vips: ["10.0.0.12".parse().unwrap()].into(),
                gateways: vec![Gateway::Address {
                    address: "10.0.0.1".parse().unwrap(),
                    metric: 5,
                }],
                dns_servers: vec!["10.0.0.2".parse().unwrap()],
                dns_suffix: "corp.example".into(),
                dns_search_suffixes: vec!["example".into()],
                wins_servers: vec![],
                netbios_enabled: true,
            },
            managed_by_service: "VMM".into(),
            service_instance: "svc".into(),
        };
        let mut body = range_body(&range, "console", "s");
        body["id"] = json!(range.id);
        body["start_address"] = json!("10.0.0.10/24");
        assert_eq!(range_from_json("nb", &body).unwrap(), range);
    }

    /// Written by the code before `PoolSettings` existed, as text and as a JSON value.
    const OLD_VMM_POOL: &str = r#"{"reserved":["10.0.0.11","10.0.0.13"],"vips":["10.0.0.12"],"gateways":[{"kind":"address","address":"10.0.0.1","metric":5},{"kind":"automatic","address":"10.0.0.3"}],"dns_servers":["10.0.0.2","fd00::2"],"dns_suffix":"corp.example","dns_search_suffixes":["example","corp.example"],"wins_servers":["10.0.0.4"],"netbios_enabled":true,"managed_by_service":"VMM","service_instance":"svc"}"#;
    const OLD_VMM_POOL_VALUE: &str = r#"{"dns_search_suffixes":["example","corp.example"],"dns_servers":["10.0.0.2","fd00::2"],"dns_suffix":"corp.example","gateways":[{"address":"10.0.0.1","kind":"address","metric":5},{"address":"10.0.0.3","kind":"automatic"}],"managed_by_service":"VMM","netbios_enabled":true,"reserved":["10.0.0.11","10.0.0.13"],"service_instance":"svc","vips":["10.0.0.12"],"wins_servers":["10.0.0.4"]}"#;

    fn full_vmm_pool() -> VmmPool {
        VmmPool {
            settings: crate::fabric::model::full_pool_settings(),
            managed_by_service: "VMM".into(),
            service_instance: "svc".into(),
        }
    }

    #[test]
    fn vmm_pool_json_is_byte_identical_to_before() {
        assert_json_as_before(&full_vmm_pool(), OLD_VMM_POOL);
        assert_eq!(
            serde_json::to_value(full_vmm_pool()).unwrap().to_string(),
            OLD_VMM_POOL_VALUE
        );
        let value: Value = serde_json::from_str(OLD_VMM_POOL).unwrap();
        assert_eq!(
            serde_json::from_value::<VmmPool>(value).unwrap(),
            full_vmm_pool()
        );
    }

    #[test]
    fn vmm_pool_ignores_unknown_fields_and_defaults_missing_ones() {
        let json = with_bogus_field(OLD_VMM_POOL);
        assert_eq!(
            serde_json::from_str::<VmmPool>(&json).unwrap(),
            full_vmm_pool()
        );
        assert_eq!(
            serde_json::from_str::<VmmPool>("{}").unwrap(),
            VmmPool::default()
        );
        let partial: VmmPool =
            serde_json::from_str(r#"{"dns_suffix":"x","service_instance":"svc"}"#).unwrap();
        assert_eq!(partial.settings.dns_suffix, "x");
        assert_eq!(partial.settings.gateways, vec![]);
        assert_eq!(partial.managed_by_service, "");
        assert_eq!(partial.service_instance, "svc");
    }
}

#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;
    use serde_json::Value;

    use super::*;

    /// Random JSON with the keys Nautobot's objects have, so that many get past the first check.
    fn nautobot_json() -> impl Strategy<Value = Value> {
        const KEYS: &[&str] = &[
            "id",
            "prefix",
            "namespace",
            "parent",
            "type",
            "value",
            "name",
            "description",
            "start_address",
            "end_address",
            "custom_fields",
            "vmm_id",
            "vmm_vlan",
            "vmm_secondary_vlan",
            "vmm_logical_network",
            "vmm_pool",
            "vmm_network_type",
            "dns_servers",
            "gateways",
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "[ -~]{0,20}".prop_map(Value::from),
            prop_oneof![
                Just("10.1.0.0/24"),
                Just("10.1.0.10/24"),
                Just("2001:db8::/64"),
                Just("00000000-0000-0000-0000-000000000001"),
                Just("network"),
            ]
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 40, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(KEYS), inner), 0..10).prop_map(|kv| {
                    Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
                }),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

        /// Whatever Nautobot (or something in its place) answers, reading it never panics, and
        /// a refusal names the server.
        #[test]
        fn any_answer_reads_or_is_refused_clearly(v in nautobot_json()) {
            for e in [
                space_from_json("nb", &v).err(),
                subnet_from_json("nb", &v).err(),
                range_from_json("nb", &v).err(),
            ]
            .into_iter()
            .flatten()
            {
                prop_assert!(e.to_string().contains("nb"), "{e}");
            }
        }
    }
}
