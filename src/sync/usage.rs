//! The console's address usage, reported to IPAM servers that keep it (the built-in server):
//! per range its counts and the granted addresses. Console → IPAM only; the server's copy is read
//! first and only ranges whose copy differs are sent, so an unknown outcome is looked up by the
//! next sync, never guessed.

use std::collections::HashMap;
use std::net::IpAddr;

use super::compare::{CompareView, RowKind, RowStatus};
use crate::fabric::model::{Fabric, Id, IpPool};
use crate::fabric::store::{Consumer, Grant, GrantCounts, PoolGrants};
use crate::fabric::usage::{PoolUsage, UsageLevels};
use crate::ipam::model::{Assignments, IpamId, RangeUsage, UsedAddress};
use crate::ipam::provider::{IpamError, IpamProvider};

/// A pool's usage as the console reports it for its range.
pub fn range_usage(pool: &IpPool, grants: &[&Grant], held: u64) -> RangeUsage {
    let counts = PoolGrants {
        held,
        plain: grants
            .iter()
            .filter(|g| g.consumer != Consumer::Vip)
            .count() as u64,
        vips: grants
            .iter()
            .filter(|g| g.consumer == Consumer::Vip)
            .count() as u64,
    };
    let u = PoolUsage::of(pool, counts);
    let mut addresses: Vec<UsedAddress> = grants
        .iter()
        .map(|g| UsedAddress {
            address: g.address,
            holder: g.holder.clone(),
            kind: serde_json::to_value(g.consumer)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        })
        .collect();
    addresses.sort();
    RangeUsage {
        total: u.total,
        granted: u.granted as u64,
        vips: u.vips as u64,
        vips_granted: u.granted_vips as u64,
        reserved: u.reserved as u64,
        held: u.held as u64,
        free: u.free(),
        addresses,
    }
}

/// The usage of each range that stands for a console pool (`ranges`: pool → range); `counts`
/// gives each pool's addresses in use on the IPAM side.
pub fn desired(
    fabric: &Fabric,
    grants: &[Grant],
    ranges: &[(Id, IpamId)],
    counts: &GrantCounts,
) -> Vec<(IpamId, RangeUsage)> {
    let mut by_pool: HashMap<Id, Vec<&Grant>> = HashMap::new();
    for g in grants {
        by_pool.entry(g.pool).or_default().push(g);
    }
    ranges
        .iter()
        .filter_map(|(pool, range)| {
            let p = fabric.ip_pools.get(pool)?;
            let grants = by_pool.get(pool).map(Vec::as_slice).unwrap_or(&[]);
            let held = counts.get(pool).map_or(0, |c| c.held);
            Some((range.clone(), range_usage(p, grants, held)))
        })
        .collect()
}

/// Sends the reports whose server copy differs; the reports sent.
pub async fn report(
    provider: &dyn IpamProvider,
    desired: Vec<(IpamId, RangeUsage)>,
) -> Result<Vec<(IpamId, RangeUsage)>, IpamError> {
    let held = provider.range_usages().await?;
    let differing: Vec<(IpamId, RangeUsage)> = desired
        .into_iter()
        .filter(|(range, usage)| held.get(range) != Some(usage))
        .collect();
    provider.report_usages(&differing).await?;
    Ok(differing)
}

/// The addresses an IPAM server holds in the console's pools, as (pool, address, holder) rows
/// for the console's store (`ranges`: pool → range).
pub fn held_rows(assignments: &Assignments, ranges: &[(Id, IpamId)]) -> Vec<(Id, IpAddr, String)> {
    let mut out = Vec::new();
    for (pool, range) in ranges {
        for a in assignments.get(range).into_iter().flatten() {
            out.push((*pool, a.address, a.holder.clone()));
        }
    }
    out.sort();
    out
}

/// Names at most this many addresses in a warning, then "and n more".
const NAMED: usize = 5;

/// A warning when the console granted addresses the IPAM server holds for something else.
pub fn clashes(fabric: &Fabric, grants: &[Grant], held: &[(Id, IpAddr, String)]) -> Option<String> {
    let granted: HashMap<(Id, IpAddr), &Grant> =
        grants.iter().map(|g| ((g.pool, g.address), g)).collect();
    let found: Vec<String> = held
        .iter()
        .filter_map(|(pool, address, holder)| {
            let g = granted.get(&(*pool, *address))?;
            let name = fabric
                .ip_pools
                .get(pool)
                .map_or_else(|| pool.to_string(), |p| p.name.clone());
            Some(format!(
                "{address} in the pool {name} (granted to {}, in use on the IPAM side by {holder})",
                g.holder
            ))
        })
        .collect();
    if found.is_empty() {
        return None;
    }
    let more = found.len().saturating_sub(NAMED);
    let mut list = found[..found.len().min(NAMED)].join("; ");
    if more > 0 {
        list.push_str(&format!("; and {more} more"));
    }
    Some(format!(
        "{} address{} granted by the console {} in use on the IPAM side for something else: {list}. Revoke the console's grant, or release the address on the IPAM server.",
        found.len(),
        if found.len() == 1 { "" } else { "es" },
        if found.len() == 1 { "is" } else { "are" },
    ))
}

/// A notice for each reported pool at or above the warning level.
pub fn level_notices(
    fabric: &Fabric,
    sent: &[(IpamId, RangeUsage)],
    ranges: &[(Id, IpamId)],
    levels: UsageLevels,
) -> Vec<String> {
    let pool_of: HashMap<&IpamId, Id> = ranges.iter().map(|(p, r)| (r, *p)).collect();
    let mut out = Vec::new();
    for (range, usage) in sent {
        let Some(pool) = pool_of.get(range).and_then(|p| fabric.ip_pools.get(p)) else {
            continue;
        };
        if usage.total == 0 {
            continue;
        }
        let used = 1.0 - usage.free as f64 / usage.total as f64;
        let (level, what) = if used >= f64::from(levels.critical) {
            (levels.critical, "critical")
        } else if used >= f64::from(levels.warning) {
            (levels.warning, "warning")
        } else {
            continue;
        };
        out.push(format!(
            "The pool {} is {:.0} % used ({what} at {:.0} %): {} addresses free. Widen its range or add a pool before it runs out.",
            pool.name,
            used * 100.0,
            level * 100.0,
            usage.free
        ));
    }
    out.sort();
    out
}

/// The label of the utilization field in the side-by-side view.
pub const UTILIZATION: &str = "Utilization";

/// "14 of 191 in use (7 %): 10 granted, 1 of 1 VIPs, 1 reserved, 2 in use on the IPAM side".
pub fn usage_text(u: &RangeUsage) -> String {
    let used = u.total.saturating_sub(u.free);
    let pct = if u.total == 0 {
        0.0
    } else {
        used as f64 * 100.0 / u.total as f64
    };
    let mut text = format!(
        "{used} of {} in use ({pct:.0} %): {} granted, {} of {} VIPs, {} reserved",
        u.total, u.granted, u.vips_granted, u.vips, u.reserved
    );
    if u.held > 0 {
        text.push_str(&format!(", {} in use on the IPAM side", u.held));
    }
    text
}

/// Adds each pool's utilization to its side-by-side row: the console's (`desired`) and the
/// copy the IPAM server holds (`held`). When they disagree the row differs on "Utilization"
/// (the next sync that reports usage sends the console's).
pub fn annotate(
    view: &mut CompareView,
    ranges: &[(Id, IpamId)],
    desired: &[(IpamId, RangeUsage)],
    held: &HashMap<IpamId, RangeUsage>,
) {
    let range_of: HashMap<Id, &IpamId> = ranges.iter().map(|(p, r)| (*p, r)).collect();
    let console: HashMap<&IpamId, &RangeUsage> = desired.iter().map(|(r, u)| (r, u)).collect();
    for row in &mut view.rows {
        if !matches!(row.kind, RowKind::Pool | RowKind::VmPool) {
            continue;
        }
        let Some(range) = range_of.get(&row.object) else {
            continue;
        };
        let mine = console.get(range).copied();
        let theirs = held.get(*range);
        if let (Some(cell), Some(u)) = (row.console.as_mut(), mine) {
            cell.fields.push((UTILIZATION.to_string(), usage_text(u)));
        }
        if let Some(cell) = row.ipam.as_mut() {
            cell.fields.push((
                UTILIZATION.to_string(),
                theirs.map_or_else(|| "Not reported yet".to_string(), usage_text),
            ));
        }
        if mine.is_some() && row.ipam.is_some() && mine != theirs {
            row.changed.push(UTILIZATION.to_string());
            if row.status == RowStatus::InSync {
                row.status = RowStatus::Differs;
            }
        }
    }
    view.counts.clear();
    for row in &view.rows {
        *view.counts.entry(row.status).or_default() += 1;
    }
}
