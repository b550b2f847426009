//! Addresses assigned on the IPAM side inside a range: made by an IPAM administrator by hand (a
//! printer, a router interface), not granted by the console. The console reads them so it never
//! grants an address the IPAM already assigned.

use std::net::IpAddr;

use rusqlite::params;

use super::{AuditOutcome, Caller, Database, audit, get_body, rfc3339};
use crate::ipam::model::{IpRange, IpamKind, RangeUsage, UsedAddress};
use crate::ipam_server::error::ApiError;

/// Longest holder name an assignment keeps.
pub const MAX_HOLDER: usize = 200;

pub use crate::ipam::model::ASSIGNED_ON_IPAM as ASSIGNMENT_KIND;

impl Database {
    /// The assignments of one range, or of every range, by address.
    pub fn assignments(&self, range: Option<&str>) -> Result<Vec<(String, UsedAddress)>, ApiError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT a.range_id, a.address, a.holder FROM range_assignments a
             JOIN ranges r ON r.id = a.range_id
             WHERE ?1 IS NULL OR a.range_id = ?1 ORDER BY a.range_id, a.address",
        )?;
        let rows = stmt.query_map(params![range], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (range_id, address, holder) = row?;
            let address: IpAddr = address.parse().map_err(|_| {
                ApiError::internal(format!(
                    "a stored assignment of range {range_id} is damaged: {address:?} is not an address"
                ))
            })?;
            out.push((
                range_id,
                UsedAddress {
                    address,
                    holder,
                    kind: ASSIGNMENT_KIND.to_string(),
                },
            ));
        }
        out.sort_by(|a, b| (&a.0, a.1.address).cmp(&(&b.0, b.1.address)));
        Ok(out)
    }

    /// Assigns an address of a range on the IPAM side. Refused when it lies outside the range,
    /// is assigned already, or is one the console reported as granted.
    pub fn assign(
        &mut self,
        range_id: &str,
        address: IpAddr,
        holder: &str,
        caller: &Caller,
    ) -> Result<UsedAddress, ApiError> {
        let holder = holder.trim();
        if holder.is_empty() {
            return Err(ApiError::invalid(
                "holder",
                "holder: name what uses the address (a device, an interface).",
            ));
        }
        if holder.chars().count() > MAX_HOLDER {
            return Err(ApiError::invalid(
                "holder",
                format!("holder: at most {MAX_HOLDER} characters."),
            ));
        }
        let tx = self.conn.transaction()?;
        let range: IpRange = get_body(&tx, IpamKind::Range, range_id)?.ok_or_else(|| {
            ApiError::not_found(
                "id",
                format!(
                    "No range has the id {range_id}. Read the range list and use one of its ids."
                ),
            )
        })?;
        let inside = address.is_ipv4() == range.start.is_ipv4()
            && address >= range.start
            && address <= range.end;
        if !inside {
            return Err(ApiError::invalid(
                "address",
                format!(
                    "address: {address} is outside the range {} – {}.",
                    range.start, range.end
                ),
            ));
        }
        let reported: Option<String> = tx
            .query_row(
                "SELECT body FROM range_usage WHERE range_id = ?1",
                params![range_id],
                |r| r.get(0),
            )
            .ok();
        if let Some(usage) = reported.and_then(|b| serde_json::from_str::<RangeUsage>(&b).ok())
            && let Some(granted) = usage.addresses.iter().find(|a| a.address == address)
        {
            return Err(ApiError::conflict(
                "address",
                format!(
                    "address: {address} is granted by the console to {}. Choose another address, or revoke the grant in the console first.",
                    granted.holder
                ),
            ));
        }
        let held: Option<String> = tx
            .query_row(
                "SELECT holder FROM range_assignments WHERE range_id = ?1 AND address = ?2",
                params![range_id, address.to_string()],
                |r| r.get(0),
            )
            .ok();
        if let Some(held) = held {
            return Err(ApiError::conflict(
                "address",
                format!("address: {address} is already assigned to {held}."),
            ));
        }
        tx.execute(
            "INSERT INTO range_assignments (range_id, address, holder, created) VALUES (?1, ?2, ?3, ?4)",
            params![range_id, address.to_string(), holder, rfc3339(chrono::Utc::now())],
        )?;
        let what = audit::range_write(&range, format!("address {address} assigned to {holder}"));
        audit::record(&tx, caller, &what, AuditOutcome::Applied, None)?;
        audit::prune(&tx, self.audit_retention)?;
        tx.commit()?;
        Ok(UsedAddress {
            address,
            holder: holder.to_string(),
            kind: ASSIGNMENT_KIND.to_string(),
        })
    }

    /// Releases an address assigned on the IPAM side; `false` when it was not assigned.
    pub fn unassign(
        &mut self,
        range_id: &str,
        address: IpAddr,
        caller: &Caller,
    ) -> Result<bool, ApiError> {
        let tx = self.conn.transaction()?;
        let n = tx.execute(
            "DELETE FROM range_assignments WHERE range_id = ?1 AND address = ?2",
            params![range_id, address.to_string()],
        )?;
        if n > 0
            && let Some(range) = get_body::<IpRange>(&tx, IpamKind::Range, range_id)?
        {
            let what = audit::range_write(&range, format!("address {address} released"));
            audit::record(&tx, caller, &what, AuditOutcome::Applied, None)?;
            audit::prune(&tx, self.audit_retention)?;
        }
        tx.commit()?;
        Ok(n > 0)
    }
}
