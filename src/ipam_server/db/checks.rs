//! The server's own checks of what clients send: ids, lengths, and each object's fields against
//! the objects it refers to, each failure naming the field.

use std::net::IpAddr;

use ipnet::IpNet;
use rusqlite::{OptionalExtension, Transaction, params};

use super::*;

pub fn check_id(id: &str) -> Result<(), ApiError> {
    if id.is_empty() {
        return Err(ApiError::invalid("id", "id must not be empty"));
    }
    if id.len() > MAX_ID {
        return Err(ApiError::invalid(
            "id",
            format!(
                "id is {} characters long; at most {MAX_ID} are allowed",
                id.len()
            ),
        ));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !c.is_ascii_graphic() || matches!(c, '/' | '?' | '#' | '%' | '\\'))
    {
        return Err(ApiError::invalid(
            "id",
            format!("id contains {c:?}; use letters, digits and - _ . : only"),
        ));
    }
    Ok(())
}

fn check_len(field: &str, value: &str, max: usize, required: bool) -> Result<(), ApiError> {
    if required && value.trim().is_empty() {
        return Err(ApiError::invalid(
            field,
            format!("{field} must not be empty"),
        ));
    }
    let n = value.chars().count();
    if n > max {
        return Err(ApiError::invalid(
            field,
            format!("{field} is {n} characters long; at most {max} are allowed"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(ApiError::invalid(
            field,
            format!("{field} contains control characters"),
        ));
    }
    Ok(())
}

fn check_opt(field: &str, value: &Option<String>, max: usize) -> Result<(), ApiError> {
    match value {
        Some(v) => check_len(field, v, max, false),
        None => Ok(()),
    }
}

/// The column `sql` selects of the object `id` that the checked object names in `field`; an
/// error saying the `what` does not exist when there is no such object.
fn referenced(
    tx: &Transaction,
    sql: &str,
    id: &IpamId,
    field: &str,
    what: &str,
) -> Result<String, ApiError> {
    let value: Option<String> = tx
        .query_row(sql, params![id.as_str()], |r| r.get(0))
        .optional()?;
    value.ok_or_else(|| ApiError::invalid(field, format!("{what} {id} does not exist")))
}

pub(super) fn validate_space(tx: &Transaction, s: &AddressSpace) -> Result<(), ApiError> {
    check_id(s.id.as_str())?;
    check_len("name", &s.name, MAX_NAME, true)?;
    check_len("description", &s.description, MAX_TEXT, false)?;
    check_opt("vmm_logical_network", &s.vmm_logical_network, MAX_NAME)?;
    check_opt("vm_network", &s.vm_network, MAX_NAME)?;
    check_len("tenant", &s.tenant, MAX_NAME, false)?;
    check_len("owner", &s.owner, MAX_NAME, false)?;
    match s.kind {
        AddressSpaceKind::Provider => {
            if s.provider_space.is_some() {
                return Err(ApiError::invalid(
                    "provider_space",
                    "a provider IP address space has no associated provider space; leave provider_space empty",
                ));
            }
            if s.vm_network.is_some() {
                return Err(ApiError::invalid(
                    "vm_network",
                    "only customer IP address spaces carry a VM Network",
                ));
            }
        }
        AddressSpaceKind::Customer => {
            let Some(p) = &s.provider_space else {
                return Err(ApiError::invalid(
                    "provider_space",
                    "a customer IP address space needs its associated provider IP address space",
                ));
            };
            if p == &s.id {
                return Err(ApiError::invalid(
                    "provider_space",
                    "an address space cannot be its own provider space",
                ));
            }
            let kind = referenced(
                tx,
                "SELECT kind FROM spaces WHERE id = ?1",
                p,
                "provider_space",
                "provider IP address space",
            )?;
            if kind != "provider" {
                return Err(ApiError::invalid(
                    "provider_space",
                    format!("IP address space {p} is a customer space, not a provider space"),
                ));
            }
        }
    }
    Ok(())
}

pub(super) fn validate_subnet(tx: &Transaction, s: &IpamSubnet) -> Result<(), ApiError> {
    check_id(s.id.as_str())?;
    check_len("name", &s.name, MAX_NAME, false)?;
    check_len("network_type", &s.network_type, 64, false)?;
    check_opt("vmm_logical_network", &s.vmm_logical_network, MAX_NAME)?;
    check_opt("network_site", &s.network_site, MAX_NAME)?;
    check_len("owner", &s.owner, MAX_NAME, false)?;
    if s.network != s.network.trunc() {
        return Err(ApiError::invalid(
            "network",
            format!(
                "{} has host bits set; the network ID is {}",
                s.network,
                s.network.trunc()
            ),
        ));
    }
    if s.vlan > 4094 {
        return Err(ApiError::invalid(
            "vlan",
            format!("VLAN {} is outside 0-4094", s.vlan),
        ));
    }
    if let Some(v) = s.secondary_vlan
        && v > 4094
    {
        return Err(ApiError::invalid(
            "secondary_vlan",
            format!("secondary VLAN {v} is outside 0-4094"),
        ));
    }
    if s.custom_fields.len() > MAX_CUSTOM_FIELDS {
        return Err(ApiError::invalid(
            "custom_fields",
            format!("at most {MAX_CUSTOM_FIELDS} custom fields are allowed"),
        ));
    }
    for (k, v) in &s.custom_fields {
        check_len("custom_fields", k, 64, true)?;
        check_len("custom_fields", v, MAX_TEXT, false)?;
    }
    let kind = referenced(
        tx,
        "SELECT kind FROM spaces WHERE id = ?1",
        &s.address_space,
        "address_space",
        "IP address space",
    )?;
    let wanted = s.network_type.trim().to_ascii_lowercase();
    if (wanted == "customer" || wanted == "provider") && wanted != kind {
        return Err(ApiError::invalid(
            "address_space",
            format!(
                "a {} subnet needs a {wanted} IP address space; {} is a {kind} space",
                s.network_type.trim(),
                s.address_space
            ),
        ));
    }
    let dup: Option<String> = tx
        .query_row(
            "SELECT id FROM subnets WHERE address_space = ?1 AND network = ?2 AND id <> ?3",
            params![
                s.address_space.as_str(),
                s.network.to_string(),
                s.id.as_str()
            ],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(other) = dup {
        return Err(ApiError::conflict(
            "network",
            format!(
                "IP address space {} already has subnet {} ({other})",
                s.address_space, s.network
            ),
        ));
    }
    Ok(())
}

fn inside(net: &IpNet, field: &str, addr: &IpAddr) -> Result<(), ApiError> {
    if net.contains(addr) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            format!("{addr} is outside the range's subnet {net}"),
        ))
    }
}

pub(super) fn validate_range(tx: &Transaction, r: &IpRange) -> Result<(), ApiError> {
    check_id(r.id.as_str())?;
    check_len("name", &r.name, MAX_NAME, false)?;
    check_len("description", &r.description, MAX_TEXT, false)?;
    check_len("dns_suffix", &r.settings.dns_suffix, 255, false)?;
    check_len("managed_by_service", &r.managed_by_service, 64, false)?;
    check_len("service_instance", &r.service_instance, MAX_NAME, false)?;
    for s in &r.settings.dns_search_suffixes {
        check_len("dns_search_suffixes", s, 255, true)?;
    }
    let settings = &r.settings;
    for (field, n, max, what) in [
        (
            "dns_search_suffixes",
            settings.dns_search_suffixes.len(),
            MAX_LIST,
            "entries",
        ),
        (
            "dns_servers",
            settings.dns_servers.len(),
            MAX_LIST,
            "entries",
        ),
        (
            "wins_servers",
            settings.wins_servers.len(),
            MAX_LIST,
            "entries",
        ),
        ("gateways", settings.gateways.len(), MAX_LIST, "entries"),
        (
            "reserved",
            settings.reserved.len(),
            MAX_ADDRESSES,
            "addresses",
        ),
        ("vips", settings.vips.len(), MAX_ADDRESSES, "addresses"),
    ] {
        if n > max {
            return Err(ApiError::invalid(
                field,
                format!("{field} has {n} {what}; at most {max} are allowed"),
            ));
        }
    }
    let network = referenced(
        tx,
        "SELECT network FROM subnets WHERE id = ?1",
        &r.subnet,
        "subnet",
        "IP address subnet",
    )?;
    let net: IpNet = network.parse().map_err(|_| {
        ApiError::internal(format!("stored subnet network {network} is unreadable"))
    })?;
    inside(&net, "start", &r.start)?;
    inside(&net, "end", &r.end)?;
    if r.start > r.end {
        return Err(ApiError::invalid(
            "end",
            format!("range end {} comes before its start {}", r.end, r.start),
        ));
    }
    for (field, set) in [
        ("reserved", &r.settings.reserved),
        ("vips", &r.settings.vips),
    ] {
        if let Some(a) = set.iter().find(|a| **a < r.start || **a > r.end) {
            return Err(ApiError::invalid(
                field,
                format!("{a} is outside the range {}-{}", r.start, r.end),
            ));
        }
    }
    for g in &r.settings.gateways {
        inside(&net, "gateways", &g.address())?;
    }
    for other in ranges_of(tx, r.subnet.as_str())? {
        if other.id != r.id && other.start <= r.end && r.start <= other.end {
            return Err(ApiError::conflict(
                "start",
                format!(
                    "{}-{} overlaps IP address range {} ({}-{}) in the same subnet",
                    r.start, r.end, other.id, other.start, other.end
                ),
            ));
        }
    }
    Ok(())
}
