//! The JSON of a Django REST Framework IPAM server's objects (Nautobot, NetBox): the fields the
//! console's mappings read and write the same way on both.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use uuid::Uuid;

use ipnet::IpNet;
use serde_json::json;

use crate::ipam::model::{AddressSpace, AddressSpaceKind, IpamId, IpamSubnet};
use crate::ipam::provider::IpamError;

/// Custom field keys the console writes on every DRF server (a team moving between Nautobot and
/// NetBox finds the same ones).
pub mod field {
    pub const VMM_ID: &str = "vmm_id";
    pub const VMM_SERVER: &str = "vmm_server";
    pub const LOGICAL_NETWORK: &str = "vmm_logical_network";
    pub const VM_NETWORK: &str = "vmm_vm_network";
    pub const PROVIDER_SPACE: &str = "vmm_provider_space";
    pub const TENANT: &str = "vmm_tenant";
    pub const OWNER: &str = "vmm_owner";
    pub const NETWORK_SITE: &str = "vmm_network_site";
    pub const NETWORK_TYPE: &str = "vmm_network_type";
    pub const VLAN: &str = "vmm_vlan";
    pub const SECONDARY_VLAN: &str = "vmm_secondary_vlan";
    pub const POOL: &str = "vmm_pool";
}

use field::{VMM_ID, VMM_SERVER};

/// Name prefix of the container (namespace, VRF) of a provider address space.
pub const PROVIDER_PREFIX: &str = "vmm-ln-";
/// Name prefix of the container of a customer address space.
pub const CUSTOMER_PREFIX: &str = "vmm-vmn-";

/// The kind and console name of an address space from its container's name, else from its
/// custom fields.
pub(crate) fn space_kind_and_name(name: &str, v: &Value) -> (AddressSpaceKind, String) {
    if let Some(rest) = name.strip_prefix(CUSTOMER_PREFIX) {
        (AddressSpaceKind::Customer, rest.to_string())
    } else if let Some(rest) = name.strip_prefix(PROVIDER_PREFIX) {
        (AddressSpaceKind::Provider, rest.to_string())
    } else if cf_text(v, field::VM_NETWORK).is_some() {
        (AddressSpaceKind::Customer, name.to_string())
    } else {
        (AddressSpaceKind::Provider, name.to_string())
    }
}

/// The container name of an address space.
pub(crate) fn space_container_name(space: &AddressSpace) -> String {
    let prefix = match space.kind {
        AddressSpaceKind::Provider => PROVIDER_PREFIX,
        AddressSpaceKind::Customer => CUSTOMER_PREFIX,
    };
    format!("{prefix}{}", space.name)
}

/// An address space from its container (`what`: "namespace", "VRF").
pub(crate) fn space_from_json(
    server: &str,
    product: &str,
    what: &str,
    v: &Value,
) -> Result<AddressSpace, IpamError> {
    let id = id_of(v).ok_or_else(|| bad_field(server, product, what, v, "id", "missing"))?;
    let (kind, name) = space_kind_and_name(str_of(v, "name").unwrap_or(""), v);
    Ok(AddressSpace {
        id: id.into(),
        vmm_id: cf_uuid(server, product, what, v)?,
        name,
        kind,
        description: str_of(v, "description").unwrap_or("").to_string(),
        vmm_logical_network: cf_text(v, field::LOGICAL_NETWORK),
        vm_network: cf_text(v, field::VM_NETWORK),
        provider_space: cf_text(v, field::PROVIDER_SPACE).map(IpamId::from),
        tenant: cf_text(v, field::TENANT).unwrap_or_default(),
        owner: cf_text(v, field::OWNER).unwrap_or_default(),
    })
}

/// A subnet from its prefix; `container` names the field holding its address space
/// ("namespace", "vrf"); `is_console` tells the console's custom fields from others.
pub(crate) fn subnet_from_json(
    server: &str,
    product: &str,
    v: &Value,
    container: &str,
    is_console: fn(&str) -> bool,
) -> Result<IpamSubnet, IpamError> {
    let bad = |field: &str, why: &str| bad_field(server, product, "prefix", v, field, why);
    let id = id_of(v).ok_or_else(|| bad("id", "missing"))?;
    let network: IpNet = str_of(v, "prefix")
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| bad("prefix", "not a CIDR"))?;
    let address_space = ref_id(v, container).ok_or_else(|| bad(container, "missing"))?;
    Ok(IpamSubnet {
        id: id.into(),
        vmm_id: cf_uuid(server, product, "prefix", v)?,
        address_space: address_space.into(),
        network: network.trunc(),
        name: str_of(v, "description").unwrap_or("").to_string(),
        network_type: cf_text(v, field::NETWORK_TYPE).unwrap_or_default(),
        vmm_logical_network: cf_text(v, field::LOGICAL_NETWORK),
        network_site: cf_text(v, field::NETWORK_SITE),
        vlan: cf_vlan(server, product, v, field::VLAN)?.unwrap_or(0),
        secondary_vlan: cf_vlan(server, product, v, field::SECONDARY_VLAN)?,
        owner: cf_text(v, field::OWNER).unwrap_or_default(),
        custom_fields: other_custom_fields(v, is_console),
    })
}

/// The console's custom fields of an address space's container.
pub(crate) fn space_custom_fields(space: &AddressSpace, manager: &str) -> Value {
    json!({
        VMM_ID: space.vmm_id.map(|u| u.to_string()),
        VMM_SERVER: manager,
        field::LOGICAL_NETWORK: opt_text(&space.vmm_logical_network),
        field::VM_NETWORK: opt_text(&space.vm_network),
        field::PROVIDER_SPACE: opt_text(&space.provider_space),
        field::TENANT: text_or_null(&space.tenant),
        field::OWNER: text_or_null(&space.owner),
    })
}

/// The custom fields of a subnet's prefix: its others as read, then the console's.
pub(crate) fn subnet_custom_fields(subnet: &IpamSubnet, manager: &str) -> Map<String, Value> {
    let mut fields = Map::new();
    for (k, v) in &subnet.custom_fields {
        fields.insert(k.clone(), Value::String(v.clone()));
    }
    let console = [
        (VMM_ID, json!(subnet.vmm_id.map(|u| u.to_string()))),
        (VMM_SERVER, json!(manager)),
        (
            field::LOGICAL_NETWORK,
            opt_text(&subnet.vmm_logical_network),
        ),
        (field::NETWORK_SITE, opt_text(&subnet.network_site)),
        (field::NETWORK_TYPE, text_or_null(&subnet.network_type)),
        (field::VLAN, json!(subnet.vlan)),
        (field::SECONDARY_VLAN, json!(subnet.secondary_vlan)),
        (field::OWNER, text_or_null(&subnet.owner)),
    ];
    for (k, v) in console {
        fields.insert(k.into(), v);
    }
    fields
}

pub(crate) fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// An id as text: Nautobot's are UUID strings, NetBox's are numbers.
pub(crate) fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        _ => None,
    }
}

/// An object's own id.
pub(crate) fn id_of(v: &Value) -> Option<String> {
    v.get("id").and_then(id_text)
}

/// The id of a related object, whether the server sent `{"id": …}` or a bare id.
pub(crate) fn ref_id(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::Object(m) => m.get("id").and_then(id_text),
        other => id_text(other),
    }
}

pub(crate) fn custom_fields(v: &Value) -> Option<&Map<String, Value>> {
    v.get("custom_fields").and_then(Value::as_object)
}

pub(crate) fn cf_text(v: &Value, key: &str) -> Option<String> {
    match custom_fields(v)?.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Whether Fabric Console created or linked this object (it may then delete it).
pub(crate) fn is_console_object(v: &Value) -> bool {
    cf_text(v, VMM_ID).is_some() || cf_text(v, VMM_SERVER).is_some()
}

pub(crate) fn describe(v: &Value) -> String {
    str_of(v, "display")
        .or_else(|| str_of(v, "name"))
        .or_else(|| str_of(v, "prefix"))
        .unwrap_or("object")
        .to_string()
}

/// A field the console cannot use, naming the object and where to correct it.
pub(crate) fn bad_field(
    server: &str,
    product: &str,
    what: &str,
    object: &Value,
    field: &str,
    why: &str,
) -> IpamError {
    IpamError::Protocol {
        server: server.to_string(),
        detail: format!(
            "{what} {} has an unusable {field}: {why}; correct it in {product}",
            describe(object)
        ),
    }
}

/// The console identity (`vmm_id`) of an object, when it has one.
pub(crate) fn cf_uuid(
    server: &str,
    product: &str,
    what: &str,
    v: &Value,
) -> Result<Option<Uuid>, IpamError> {
    match cf_text(v, VMM_ID) {
        None => Ok(None),
        Some(s) => Uuid::parse_str(&s)
            .map(Some)
            .map_err(|_| bad_field(server, product, what, v, VMM_ID, "not a UUID")),
    }
}

/// A VLAN id custom field (a number, or a number in text).
pub(crate) fn cf_vlan(
    server: &str,
    product: &str,
    v: &Value,
    key: &str,
) -> Result<Option<u16>, IpamError> {
    let bad = || bad_field(server, product, "prefix", v, key, "not a VLAN id 0-4094");
    let max = crate::fabric::model::MAX_VLAN;
    match custom_fields(v).and_then(|m| m.get(key)) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(id) if id <= u64::from(max) => Ok(Some(id as u16)),
            _ => Err(bad()),
        },
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => match s.trim().parse::<u16>() {
            Ok(id) if id <= max => Ok(Some(id)),
            _ => Err(bad()),
        },
        Some(_) => Err(bad()),
    }
}

/// A JSON custom field (or the same JSON in a text field made by hand); the default when empty.
pub(crate) fn cf_json<T: DeserializeOwned + Default>(
    server: &str,
    product: &str,
    what: &str,
    v: &Value,
    key: &str,
) -> Result<T, IpamError> {
    match custom_fields(v).and_then(|m| m.get(key)) {
        None | Some(Value::Null) => Ok(T::default()),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(T::default()),
        Some(Value::String(s)) => serde_json::from_str(s)
            .map_err(|e| bad_field(server, product, what, v, key, &e.to_string())),
        Some(other) => serde_json::from_value(other.clone())
            .map_err(|e| bad_field(server, product, what, v, key, &e.to_string())),
    }
}

/// The custom fields that are not the console's, as text (for the side-by-side view).
pub(crate) fn other_custom_fields(
    v: &Value,
    is_console: fn(&str) -> bool,
) -> BTreeMap<String, String> {
    custom_fields(v)
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !is_console(k))
                .filter_map(|(k, v)| match v {
                    Value::Null => None,
                    Value::String(s) if s.is_empty() => None,
                    Value::String(s) => Some((k.clone(), s.clone())),
                    other => Some((k.clone(), other.to_string())),
                })
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn address_of(v: &Value, key: &str) -> Option<IpAddr> {
    let s = str_of(v, key)?;
    s.split('/').next().unwrap_or(s).parse().ok()
}

pub(crate) fn opt_text<S: AsRef<str>>(s: &Option<S>) -> Value {
    match s.as_ref().map(AsRef::as_ref) {
        Some(s) if !s.is_empty() => Value::String(s.to_string()),
        _ => Value::Null,
    }
}

pub(crate) fn text_or_null(s: &str) -> Value {
    if s.is_empty() {
        Value::Null
    } else {
        Value::String(s.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_are_read_as_text_whether_strings_or_numbers() {
        assert_eq!(id_of(&json!({"id": 42})).as_deref(), Some("42"));
        assert_eq!(id_of(&json!({"id": "a-b"})).as_deref(), Some("a-b"));
        assert_eq!(
            ref_id(&json!({"vrf": {"id": 7}}), "vrf").as_deref(),
            Some("7")
        );
        assert_eq!(
            ref_id(&json!({"parent": "p"}), "parent").as_deref(),
            Some("p")
        );
        assert_eq!(ref_id(&json!({"vrf": null}), "vrf"), None);
    }

    #[test]
    fn a_bad_vlan_names_the_object_field_and_server() {
        let v = json!({"display": "10.0.0.0/24", "custom_fields": {"vmm_vlan": 5000}});
        let e = cf_vlan("nb", "NetBox", &v, "vmm_vlan").unwrap_err();
        assert!(e.to_string().contains("10.0.0.0/24"), "{e}");
        assert!(e.to_string().contains("correct it in NetBox"), "{e}");
        assert_eq!(
            cf_vlan(
                "nb",
                "NetBox",
                &json!({"custom_fields": {"vmm_vlan": "12"}}),
                "vmm_vlan"
            )
            .unwrap(),
            Some(12)
        );
    }
}
