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
    /// In use on the IPAM side, not granted by the console.
    pub held: u128,
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
            held: u128::from(grants.held),
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
            held: self.held + other.held,
        }
    }

    /// Addresses a VM adapter or host could still be granted.
    pub fn free(&self) -> u128 {
        self.total
            .saturating_sub(self.reserved + self.vips + self.granted + self.held)
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

    /// "Granted 12 · Reserved 5 · VIPs 1 of 2 granted · Free 80 of 100", with "In use on the
    /// IPAM side 3" when there are such.
    pub fn summary(&self) -> String {
        let held = if self.held > 0 {
            format!(" · In use on the IPAM side {}", self.held)
        } else {
            String::new()
        };
        format!(
            "Granted {} · Reserved {} · VIPs {} of {} granted{held} · Free {} of {}",
            self.granted,
            self.reserved,
            self.granted_vips,
            self.vips,
            self.free(),
            self.total
        )
    }
}

/// Where use turns to a warning and to critical, as fractions of a range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UsageLevels {
    pub warning: f32,
    pub critical: f32,
}

impl Default for UsageLevels {
    fn default() -> Self {
        UsageLevels {
            warning: 0.80,
            critical: 0.95,
        }
    }
}

impl UsageLevels {
    /// The levels from percentages: between 1 and 100 %, the warning below the critical one;
    /// `None` otherwise.
    pub fn from_percent(warning: f32, critical: f32) -> Option<UsageLevels> {
        (warning.is_finite()
            && critical.is_finite()
            && 1.0 <= warning
            && warning < critical
            && critical <= 100.0)
            .then_some(UsageLevels {
                warning: warning / 100.0,
                critical: critical / 100.0,
            })
    }

    /// The levels the console's settings file sets (`usage_warning_percent`,
    /// `usage_critical_percent`), for the sync engine's warnings; the defaults when it sets none
    /// or cannot be read.
    pub fn from_settings(path: &std::path::Path) -> UsageLevels {
        let read = || -> Option<UsageLevels> {
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
            let pct = |key: &str| v.get(key).and_then(|x| x.as_f64()).map(|x| x as f32);
            UsageLevels::from_percent(
                pct("usage_warning_percent")?,
                pct("usage_critical_percent")?,
            )
        };
        read().unwrap_or_default()
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
