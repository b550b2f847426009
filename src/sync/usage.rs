//! The console's address usage, reported to IPAM servers that keep it (the built-in server):
//! per range its counts and the granted addresses. Console → IPAM only; the server's copy is read
//! first and only ranges whose copy differs are sent, so an unknown outcome is looked up by the
//! next sync, never guessed.

use std::collections::HashMap;

use crate::fabric::model::{Fabric, Id, IpPool};
use crate::fabric::store::{Consumer, Grant, PoolGrants};
use crate::fabric::usage::PoolUsage;
use crate::ipam::model::{IpamId, RangeUsage, UsedAddress};
use crate::ipam::provider::{IpamError, IpamProvider};

/// A pool's usage as the console reports it for its range.
pub fn range_usage(pool: &IpPool, grants: &[&Grant]) -> RangeUsage {
    let counts = PoolGrants {
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
        free: u.free(),
        addresses,
    }
}

/// The usage of each range that stands for a console pool (`ranges`: pool → range).
pub fn desired(
    fabric: &Fabric,
    grants: &[Grant],
    ranges: &[(Id, IpamId)],
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
            Some((range.clone(), range_usage(p, grants)))
        })
        .collect()
}

/// Sends the reports whose server copy differs; how many were sent.
pub async fn report(
    provider: &dyn IpamProvider,
    desired: Vec<(IpamId, RangeUsage)>,
) -> Result<usize, IpamError> {
    let held = provider.range_usages().await?;
    let differing: Vec<(IpamId, RangeUsage)> = desired
        .into_iter()
        .filter(|(range, usage)| held.get(range) != Some(usage))
        .collect();
    provider.report_usages(&differing).await?;
    Ok(differing.len())
}
