//! The JSON of a Django REST Framework IPAM server's objects (Nautobot, NetBox): the fields the
//! console's mappings read and write the same way on both.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::ipam::provider::IpamError;

/// The console's identity fields, the same on every server.
pub(crate) const VMM_ID: &str = "vmm_id";
pub(crate) const VMM_SERVER: &str = "vmm_server";

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
