//! How full a static IP address pool's range is: granted, reserved and VIP addresses against the
//! range (for the console's usage columns and for the usage reported to IPAM).

use std::net::IpAddr;

use crate::fabric::model::IpPool;
use crate::fabric::store::PoolGrants;

/// What a pool's range holds (or several pools' ranges together): granted addresses, reserved
/// addresses, VIPs and the rest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolUsage {
    pub total: u128,
    /// Granted to VM adapters and hosts.
    pub granted: u128,
    pub reserved: u128,
    /// The VIP set, granted or not.
    pub vips: u128,
    /// Of the VIPs, those granted.
    pub granted_vips: u128,
}

impl PoolUsage {
    /// Counts only the reserved addresses and VIPs inside the range; an address both reserved
    /// and a VIP counts once, as reserved.
    pub fn of(pool: &IpPool, grants: PoolGrants) -> PoolUsage {
        let total = range_size(pool.range_start, pool.range_end);
        let inside = |a: &IpAddr| {
            a.is_ipv4() == pool.range_start.is_ipv4()
                && *a >= pool.range_start
                && *a <= pool.range_end
        };
        let reserved = pool.settings.reserved.iter().filter(|a| inside(a)).count() as u128;
        let vips = pool
            .settings
            .vips
            .iter()
            .filter(|a| inside(a) && !pool.settings.reserved.contains(a))
            .count() as u128;
        PoolUsage {
            total,
            granted: u128::from(grants.plain),
            reserved,
            vips,
            granted_vips: u128::from(grants.vips).min(vips),
        }
    }

    /// Two ranges' use together (a site's pools, a logical network's).
    pub fn plus(self, other: PoolUsage) -> PoolUsage {
        PoolUsage {
            total: self.total.saturating_add(other.total),
            granted: self.granted + other.granted,
            reserved: self.reserved + other.reserved,
            vips: self.vips + other.vips,
            granted_vips: self.granted_vips + other.granted_vips,
        }
    }

    /// Addresses a VM adapter or host could still be granted.
    pub fn free(&self) -> u128 {
        self.total
            .saturating_sub(self.reserved + self.vips + self.granted)
    }

    /// The share of the range that is not free (0 … 1); 0 for an empty range.
    pub fn used(&self) -> f32 {
        if self.total == 0 {
            return 0.0;
        }
        (1.0 - self.free() as f64 / self.total as f64) as f32
    }

    /// " 37 %": padded so the text sorts in order.
    pub fn percent(&self) -> String {
        format!("{:>3} %", (self.used() * 100.0).round() as u32)
    }

    /// "Granted 12 · Reserved 5 · VIPs 1 of 2 · Free 80 of 100".
    pub fn summary(&self) -> String {
        format!(
            "Granted {} · Reserved {} · VIPs {} of {} granted · Free {} of {}",
            self.granted,
            self.reserved,
            self.granted_vips,
            self.vips,
            self.free(),
            self.total
        )
    }
}

pub(crate) fn range_size(start: IpAddr, end: IpAddr) -> u128 {
    let n = address_number;
    if start.is_ipv4() != end.is_ipv4() || n(end) < n(start) {
        return 0;
    }
    (n(end) - n(start)).saturating_add(1)
}

pub(crate) fn address_number(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    }
}
