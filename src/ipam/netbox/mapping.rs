//! Console ↔ NetBox objects: VRFs, prefixes and IP ranges as the neutral model, the custom fields
//! that carry console identity, and making sure they exist.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::fabric::model::{PoolSettings, pool_settings_wire};
use crate::ipam::model::{AddressSpace, IpRange, IpamId, IpamSubnet};
use crate::ipam::provider::IpamError;

use super::*;

/// Custom field names (the same as Nautobot's, so a team moving between them finds them).
pub mod field {
    pub use crate::ipam::address_usage::field::*;
    pub use crate::ipam::drf::field::*;
}

pub(super) const OT_VRF: &str = "ipam.vrf";
pub(super) const OT_PREFIX: &str = "ipam.prefix";
pub(super) const OT_RANGE: &str = "ipam.iprange";
pub(super) const OT_ADDRESS: &str = "ipam.ipaddress";

pub(super) struct CustomFieldDef {
    pub(super) name: &'static str,
    pub(super) label: &'static str,
    pub(super) kind: &'static str,
    pub(super) object_types: &'static [&'static str],
    pub(super) description: &'static str,
}

pub(super) const CUSTOM_FIELD_DEFS: &[CustomFieldDef] = &[
    CustomFieldDef {
        name: field::VMM_ID,
        label: "VMM ID",
        kind: "text",
        object_types: &[OT_VRF, OT_PREFIX, OT_RANGE],
        description: "Fabric Console identity of the linked console object",
    },
    CustomFieldDef {
        name: field::VMM_SERVER,
        label: "VMM Server",
        kind: "text",
        object_types: &[OT_VRF, OT_PREFIX, OT_RANGE, OT_ADDRESS],
        description: "Fabric Console network service that manages this object",
    },
    CustomFieldDef {
        name: field::LOGICAL_NETWORK,
        label: "VMM Logical Network",
        kind: "text",
        object_types: &[OT_VRF, OT_PREFIX],
        description: "VMM logical network; clearing it on a VRF breaks the link",
    },
    CustomFieldDef {
        name: field::VM_NETWORK,
        label: "VM Network",
        kind: "text",
        object_types: &[OT_VRF],
        description: "VMM VM network of a customer address space",
    },
    CustomFieldDef {
        name: field::PROVIDER_SPACE,
        label: "VMM Provider Address Space",
        kind: "text",
        object_types: &[OT_VRF],
        description: "VRF id of the provider address space of a customer address space",
    },
    CustomFieldDef {
        name: field::TENANT,
        label: "VMM Tenant",
        kind: "text",
        object_types: &[OT_VRF],
        description: "Tenant of a VM network",
    },
    CustomFieldDef {
        name: field::OWNER,
        label: "VMM Owner",
        kind: "text",
        object_types: &[OT_VRF, OT_PREFIX],
        description: "Owner of the address space or subnet",
    },
    CustomFieldDef {
        name: field::NETWORK_SITE,
        label: "Network Site",
        kind: "text",
        object_types: &[OT_PREFIX],
        description: "VMM network site of the subnet",
    },
    CustomFieldDef {
        name: field::NETWORK_TYPE,
        label: "VMM Network Type",
        kind: "text",
        object_types: &[OT_PREFIX],
        description: "Provider or Customer",
    },
    CustomFieldDef {
        name: field::VLAN,
        label: "VMM VLAN",
        kind: "integer",
        object_types: &[OT_PREFIX],
        description: "VLAN id (0-4094) of the subnet in its network site",
    },
    CustomFieldDef {
        name: field::SECONDARY_VLAN,
        label: "VMM Secondary VLAN",
        kind: "integer",
        object_types: &[OT_PREFIX],
        description: "Secondary VLAN id for private VLANs",
    },
    CustomFieldDef {
        name: field::POOL,
        label: "VMM Pool",
        kind: "json",
        object_types: &[OT_RANGE],
        description: "Static IP address pool: name, reserved, VIPs, gateways, DNS, WINS, NetBIOS",
    },
    CustomFieldDef {
        name: field::USAGE,
        label: "VMM Usage",
        kind: "json",
        object_types: &[OT_RANGE],
        description: "Address usage of the pool as the console counts it: granted, reserved, VIPs, free",
    },
    CustomFieldDef {
        name: field::RANGE,
        label: "VMM Range",
        kind: "text",
        object_types: &[OT_ADDRESS],
        description: "IP range id of the static IP address pool the console granted this address from",
    },
    CustomFieldDef {
        name: field::CONSUMER,
        label: "VMM Consumer",
        kind: "text",
        object_types: &[OT_ADDRESS],
        description: "What holds the granted address: vm_adapter, host or vip",
    },
];

pub(super) fn is_console_field(name: &str) -> bool {
    CUSTOM_FIELD_DEFS.iter().any(|d| d.name == name)
}

pub(super) use crate::ipam::drf::{
    address_of, cf_text, describe, id_of, is_console_object, ref_id, str_of,
};

/// An id as NetBox takes it in a body: a number.
pub(super) fn id_json(id: &IpamId) -> Value {
    id.as_str()
        .parse::<u64>()
        .map_or_else(|_| Value::String(id.as_str().to_string()), Value::from)
}

pub(super) fn is_netbox_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit())
}

/// The product name in the messages of the shared readers.
const NAME: &str = "NetBox";

pub(super) fn bad_field(
    server: &str,
    what: &str,
    object: &Value,
    field: &str,
    why: &str,
) -> IpamError {
    crate::ipam::drf::bad_field(server, NAME, what, object, field, why)
}

fn cf_uuid(server: &str, what: &str, v: &Value) -> Result<Option<Uuid>, IpamError> {
    crate::ipam::drf::cf_uuid(server, NAME, what, v)
}

/// Whether a VRF is an address space of the console's mapping.
pub(super) fn is_address_space(v: &Value) -> bool {
    let name = str_of(v, "name").unwrap_or("");
    if name.starts_with(PROBE_PREFIX) {
        return false;
    }
    name.starts_with(PROVIDER_VRF_PREFIX)
        || name.starts_with(CUSTOMER_VRF_PREFIX)
        || cf_text(v, field::VMM_ID).is_some()
        || cf_text(v, field::LOGICAL_NETWORK).is_some()
        || cf_text(v, field::VM_NETWORK).is_some()
}

pub fn vrf_name(space: &AddressSpace) -> String {
    crate::ipam::drf::space_container_name(space)
}

pub(super) fn space_from_json(server: &str, v: &Value) -> Result<AddressSpace, IpamError> {
    crate::ipam::drf::space_from_json(server, NAME, "VRF", v)
}

pub(super) fn subnet_from_json(server: &str, v: &Value) -> Result<IpamSubnet, IpamError> {
    crate::ipam::drf::subnet_from_json(server, NAME, v, "vrf", is_console_field)
}

/// What NetBox's IP range has no columns for, kept in the `vmm_pool` JSON field: the pool's
/// name and settings inline, then its management fields, every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct VmmPool {
    pub(super) name: String,
    pub(super) settings: PoolSettings,
    pub(super) managed_by_service: String,
    pub(super) service_instance: String,
}

pool_settings_wire! {
    VmmPool via VmmPoolWire, VmmPoolWireRef;
    settings_attrs { #[serde(default)] }
    before {
        #[serde(default)]
        name: String,
    }
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
            name: r.name.clone(),
            settings: r.settings.clone(),
            managed_by_service: r.managed_by_service.clone(),
            service_instance: r.service_instance.clone(),
        }
    }
}

/// A range of a VRF, its subnet being the longest prefix of the range's VRF that holds it
/// (`subnets`: the subnets read); `None` for a range outside every subnet read.
pub(super) fn range_from_json(
    server: &str,
    v: &Value,
    subnets: &[IpamSubnet],
) -> Result<Option<IpRange>, IpamError> {
    let id = id_of(v).ok_or_else(|| bad_field(server, "IP range", v, "id", "missing"))?;
    let start = address_of(v, "start_address")
        .ok_or_else(|| bad_field(server, "IP range", v, "start_address", "not an IP address"))?;
    let end = address_of(v, "end_address")
        .ok_or_else(|| bad_field(server, "IP range", v, "end_address", "not an IP address"))?;
    let Some(vrf) = ref_id(v, "vrf") else {
        return Ok(None);
    };
    let Some(subnet) = subnets
        .iter()
        .filter(|s| s.address_space.as_str() == vrf)
        .filter(|s| s.network.contains(&start) && s.network.contains(&end))
        .max_by_key(|s| s.network.prefix_len())
    else {
        return Ok(None);
    };
    let pool: VmmPool = crate::ipam::drf::cf_json(server, NAME, "IP range", v, field::POOL)?;
    Ok(Some(IpRange {
        id: id.into(),
        vmm_id: cf_uuid(server, "IP range", v)?,
        subnet: subnet.id.clone(),
        name: pool.name,
        description: str_of(v, "description").unwrap_or("").to_string(),
        start,
        end,
        settings: pool.settings,
        managed_by_service: pool.managed_by_service,
        service_instance: pool.service_instance,
    }))
}

pub(super) fn space_body(space: &AddressSpace, manager: &str) -> Value {
    json!({
        "name": vrf_name(space),
        "description": space.description,
        "custom_fields": crate::ipam::drf::space_custom_fields(space, manager),
    })
}

pub(super) fn subnet_body(subnet: &IpamSubnet, manager: &str) -> Value {
    json!({
        "prefix": subnet.network.trunc().to_string(),
        "vrf": id_json(&subnet.address_space),
        "status": "active",
        "description": subnet.name,
        "custom_fields": crate::ipam::drf::subnet_custom_fields(subnet, manager),
    })
}

/// A range's body; `prefix_len` and `vrf` are those of its subnet's prefix.
pub(super) fn range_body(range: &IpRange, manager: &str, prefix_len: u8, vrf: &Value) -> Value {
    json!({
        "start_address": format!("{}/{prefix_len}", range.start),
        "end_address": format!("{}/{prefix_len}", range.end),
        "vrf": vrf,
        "status": "active",
        "description": range.description,
        "custom_fields": {
            field::VMM_ID: range.vmm_id.map(|u| u.to_string()),
            field::VMM_SERVER: manager,
            field::POOL: VmmPool::of(range),
        }
    })
}

impl NetboxProvider {
    /// Makes sure the custom fields exist on the right object types, creating or extending
    /// what is missing when `create` is set; the names of those missing otherwise.
    pub(super) async fn ensure_schema(&self, create: bool) -> Result<(), IpamError> {
        let mut done = self.schema_ready.lock().await;
        if *done {
            return Ok(());
        }
        let (fields, _) = self.api.list_all(CUSTOM_FIELDS, &[]).await?;
        let mut missing = Vec::new();
        for def in CUSTOM_FIELD_DEFS {
            let existing = fields.iter().find(|f| str_of(f, "name") == Some(def.name));
            match existing {
                None => {
                    if !create {
                        missing.push(def.name);
                        continue;
                    }
                    let body = json!({
                        "name": def.name,
                        "label": def.label,
                        "type": def.kind,
                        "object_types": def.object_types,
                        "description": def.description,
                        "group_name": "Fabric Console",
                        "filter_logic": "exact",
                    });
                    if let Err(e) = self.send_ok(Method::POST, CUSTOM_FIELDS, Some(&body)).await {
                        // Another console may have created it meanwhile.
                        let (now, _) = self.api.list_all(CUSTOM_FIELDS, &[]).await?;
                        if !now.iter().any(|f| str_of(f, "name") == Some(def.name)) {
                            return Err(e);
                        }
                    }
                }
                Some(f) => {
                    let have: BTreeSet<String> = f
                        .get("object_types")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default();
                    let lacking: Vec<&str> = def
                        .object_types
                        .iter()
                        .copied()
                        .filter(|t| !have.contains(*t))
                        .collect();
                    if lacking.is_empty() {
                        continue;
                    }
                    if !create {
                        missing.push(def.name);
                        continue;
                    }
                    let id = id_of(f).unwrap_or_default();
                    let mut all: Vec<String> = have.into_iter().collect();
                    all.extend(lacking.iter().map(|s| s.to_string()));
                    self.send_ok(
                        Method::PATCH,
                        &format!("{CUSTOM_FIELDS}{id}/"),
                        Some(&json!({ "object_types": all })),
                    )
                    .await?;
                }
            }
        }
        if !missing.is_empty() {
            return Err(IpamError::Forbidden {
                server: self.api.server.clone(),
                detail: format!(
                    "NetBox lacks the console's custom fields {}; a sync with a token that may add custom fields creates them",
                    missing.join(", ")
                ),
            });
        }
        *done = true;
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn ids_are_numbers_in_bodies_and_text_in_the_model() {
        assert_eq!(id_of(&json!({"id": 42})).as_deref(), Some("42"));
        assert_eq!(
            ref_id(&json!({"vrf": {"id": 7}}), "vrf").as_deref(),
            Some("7")
        );
        assert_eq!(ref_id(&json!({"vrf": null}), "vrf"), None);
        assert_eq!(id_json(&IpamId::from("7")), json!(7));
    }

    #[test]
    fn a_range_belongs_to_the_longest_prefix_of_its_vrf() {
        let wide = IpamSubnet::new("1", "9", "10.0.0.0/16".parse().unwrap());
        let narrow = IpamSubnet::new("2", "9", "10.0.1.0/24".parse().unwrap());
        let other_vrf = IpamSubnet::new("3", "8", "10.0.1.0/25".parse().unwrap());
        let v = json!({
            "id": 5, "start_address": "10.0.1.10/24", "end_address": "10.0.1.20/24",
            "vrf": {"id": 9}, "description": "",
            "custom_fields": {"vmm_pool": {"name": "Web", "reserved": ["10.0.1.11"]}},
        });
        let r = range_from_json("nb", &v, &[wide, narrow, other_vrf])
            .unwrap()
            .unwrap();
        assert_eq!(r.subnet, IpamId::from("2"));
        assert_eq!(r.name, "Web");
        assert_eq!(r.settings.reserved.len(), 1);
        let body = range_body(&r, "ipam1", 24, &json!(9));
        assert_eq!(body["start_address"], "10.0.1.10/24");
        assert_eq!(body["custom_fields"]["vmm_pool"]["name"], "Web");
    }
}
