//! Address usage on a Django REST Framework IPAM server (Nautobot, NetBox), the part both share.
//! A console range carries its counts in the `vmm_usage` JSON custom field; each address the
//! console granted is an IP address object marked as the console's (`vmm_server`, `vmm_range`,
//! `vmm_consumer`, the holder in its description). Any other IP address inside a console range
//! was assigned on the IPAM side and is read, never changed.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::ipam::drf::{address_of, cf_text, custom_fields, id_of, ref_id, str_of};
use crate::ipam::model::{ASSIGNED_ON_IPAM, Assignments, IpamId, RangeUsage, UsedAddress};
use crate::ipam::provider::IpamError;

/// Custom field keys of usage.
pub mod field {
    /// On a range: the console's usage counts (granted, reserved, VIPs, free, total).
    pub const USAGE: &str = "vmm_usage";
    /// On an IP address the console granted: the id of its range.
    pub const RANGE: &str = "vmm_range";
    /// On an IP address the console granted: `vm_adapter`, `host` or `vip`.
    pub const CONSUMER: &str = "vmm_consumer";
}

/// A range of this console, as usage needs it.
pub(crate) struct ConsoleRange {
    pub(crate) start: IpAddr,
    pub(crate) end: IpAddr,
    /// What holds the range's addresses on the server: its prefix (Nautobot), its VRF (NetBox).
    pub(crate) container: String,
    /// The prefix length written on the range's start address, when it has one.
    pub(crate) prefix_len: Option<u8>,
    /// The counts last reported, when readable.
    pub(crate) counts: Option<RangeUsage>,
}

impl ConsoleRange {
    /// A range object of the server; `container` names the field holding its container.
    pub(crate) fn from_json(v: &Value, container: &str) -> Option<(String, Self)> {
        let id = id_of(v)?;
        let range = ConsoleRange {
            start: address_of(v, "start_address")?,
            end: address_of(v, "end_address")?,
            container: ref_id(v, container)?,
            prefix_len: str_of(v, "start_address")
                .and_then(|s| s.split_once('/'))
                .and_then(|(_, len)| len.parse().ok()),
            counts: custom_fields(v)
                .and_then(|f| f.get(field::USAGE))
                .and_then(counts_from),
        };
        Some((id, range))
    }

    fn holds(&self, a: IpAddr) -> bool {
        a.is_ipv4() == self.start.is_ipv4() && a >= self.start && a <= self.end
    }
}

/// What the server holds of the console's usage, and the addresses assigned there by hand.
pub(crate) struct UsageRead {
    pub(crate) ranges: HashMap<String, ConsoleRange>,
    /// The console's addresses by range id: (IP address object id, address).
    pub(crate) console: HashMap<String, Vec<(String, UsedAddress)>>,
    /// The console's addresses whose range is gone (deleted on the server): ids to delete.
    pub(crate) orphans: Vec<String>,
    pub(crate) foreign: Assignments,
}

impl UsageRead {
    /// Sorts the server's IP addresses: `ours` are the console's (its `vmm_server`), `all` every
    /// address in the ranges' containers (`container`: the field naming it); the host address is
    /// in `host` (Nautobot) or before the mask in `address` (NetBox).
    pub(crate) fn new(
        ranges: HashMap<String, ConsoleRange>,
        ours: &[Value],
        all: &[Value],
        container: &str,
    ) -> Self {
        let host = |v: &Value| address_of(v, "host").or_else(|| address_of(v, "address"));
        let mut console: HashMap<String, Vec<(String, UsedAddress)>> = HashMap::new();
        let mut orphans = Vec::new();
        let mut our_ids = HashSet::new();
        for v in ours {
            let (Some(id), Some(address)) = (id_of(v), host(v)) else {
                continue;
            };
            our_ids.insert(id.clone());
            match cf_text(v, field::RANGE).filter(|r| ranges.contains_key(r)) {
                Some(range) => console.entry(range).or_default().push((
                    id,
                    UsedAddress {
                        address,
                        holder: str_of(v, "description").unwrap_or_default().to_string(),
                        kind: cf_text(v, field::CONSUMER).unwrap_or_default(),
                    },
                )),
                None => orphans.push(id),
            }
        }
        let mut by_container: HashMap<&str, Vec<&String>> = HashMap::new();
        for (id, r) in &ranges {
            by_container
                .entry(r.container.as_str())
                .or_default()
                .push(id);
        }
        let mut foreign = Assignments::new();
        for v in all {
            let (Some(id), Some(address), Some(held_in)) =
                (id_of(v), host(v), ref_id(v, container))
            else {
                continue;
            };
            if our_ids.contains(&id) {
                continue;
            }
            for range in by_container.get(held_in.as_str()).into_iter().flatten() {
                if ranges[*range].holds(address) {
                    foreign
                        .entry(IpamId::from((*range).clone()))
                        .or_default()
                        .push(UsedAddress {
                            address,
                            holder: holder_of(v),
                            kind: ASSIGNED_ON_IPAM.to_string(),
                        });
                }
            }
        }
        for list in foreign.values_mut() {
            list.sort();
        }
        UsageRead {
            ranges,
            console,
            orphans,
            foreign,
        }
    }

    /// Each console range's usage as the server holds it (ranges never reported are left out).
    pub(crate) fn reported(&self) -> HashMap<IpamId, RangeUsage> {
        self.ranges
            .iter()
            .filter_map(|(id, r)| {
                let mut usage = r.counts.clone()?;
                let mut addresses: Vec<UsedAddress> = self
                    .console
                    .get(id)
                    .map(|list| list.iter().map(|(_, a)| a.clone()).collect())
                    .unwrap_or_default();
                addresses.sort();
                usage.addresses = addresses;
                Some((IpamId::from(id.clone()), usage))
            })
            .collect()
    }

    /// What brings the server to `reports`: addresses no longer granted deleted (and those of
    /// ranges that went), changed ones patched, new ones to create (never one assigned on the
    /// IPAM side), and the counts. `Err` names a reported range that is not the console's.
    pub(crate) fn writes<'a>(
        &self,
        reports: &'a [(IpamId, RangeUsage)],
    ) -> Result<UsageWrites<'a>, IpamId> {
        let mut out = UsageWrites {
            deletes: self
                .orphans
                .iter()
                .map(|id| json!({ "id": id_value(id) }))
                .collect(),
            ..UsageWrites::default()
        };
        for (range, usage) in reports {
            if !self.ranges.contains_key(range.as_str()) {
                return Err(range.clone());
            }
            let existing: HashMap<IpAddr, &(String, UsedAddress)> = self
                .console
                .get(range.as_str())
                .into_iter()
                .flatten()
                .map(|e| (e.1.address, e))
                .collect();
            let held: HashSet<IpAddr> = self
                .foreign
                .get(range)
                .into_iter()
                .flatten()
                .map(|a| a.address)
                .collect();
            let want: HashMap<IpAddr, &UsedAddress> =
                usage.addresses.iter().map(|a| (a.address, a)).collect();
            for (address, (id, have)) in &existing {
                match want.get(address) {
                    None => out.deletes.push(json!({ "id": id_value(id) })),
                    Some(w) if *w != have => out.patches.push(json!({
                        "id": id_value(id),
                        "description": w.holder,
                        "custom_fields": { field::CONSUMER: w.kind },
                    })),
                    Some(_) => {}
                }
            }
            for (address, w) in want {
                if !existing.contains_key(&address) && !held.contains(&address) {
                    out.creates.push((range, w));
                }
            }
            out.counts.push(json!({
                "id": id_value(range.as_str()),
                "custom_fields": { field::USAGE: counts_json(usage) },
            }));
        }
        Ok(out)
    }
}

/// How long one read of the usage serves the steps of a sync that follow it (what the IPAM side
/// assigned, what it holds of the reports, the first attempt of the report): the service's lease
/// keeps the console's other syncs out meanwhile, and a write that meets a hand edit made in
/// between fails and is made again from a fresh read.
const REUSE: Duration = Duration::from_secs(5);

/// A connection's last usage read, and when it was made.
#[derive(Default)]
pub(crate) struct UsageCache(tokio::sync::Mutex<Option<(Instant, Arc<UsageRead>)>>);

impl UsageCache {
    /// The read of a moment ago when `reuse` and there is one, else what `read` reads now.
    pub(crate) async fn get(
        &self,
        reuse: bool,
        read: impl std::future::Future<Output = Result<UsageRead, IpamError>>,
    ) -> Result<Arc<UsageRead>, IpamError> {
        let mut cache = self.0.lock().await;
        if reuse
            && let Some((at, last)) = cache.as_ref()
            && at.elapsed() < REUSE
        {
            return Ok(last.clone());
        }
        let fresh = Arc::new(read.await?);
        *cache = Some((Instant::now(), fresh.clone()));
        Ok(fresh)
    }

    /// Forgets the last read: something was written.
    pub(crate) async fn forget(&self) {
        *self.0.lock().await = None;
    }

    /// Writes a usage report from what `read` reads: the first attempt uses the read a sync's
    /// earlier steps made a moment ago; an attempt that met a passing fault (a lost answer, a
    /// gateway error) is made again from a fresh read, so what took effect is found and never
    /// sent twice. The last read is forgotten afterwards.
    pub(crate) async fn report<RF, WF>(
        &self,
        retry: &crate::ipam::retry::RetryPolicy,
        read: impl Fn() -> RF,
        write: impl Fn(Arc<UsageRead>) -> WF,
    ) -> Result<(), IpamError>
    where
        RF: std::future::Future<Output = Result<UsageRead, IpamError>>,
        WF: std::future::Future<Output = Result<(), IpamError>>,
    {
        let first = std::sync::atomic::AtomicBool::new(true);
        let result = retry
            .idempotent(|| async {
                let reuse = first.swap(false, std::sync::atomic::Ordering::Relaxed);
                let now = self.get(reuse, read()).await?;
                write(now).await
            })
            .await;
        self.forget().await;
        result
    }
}

/// The writes that bring the server's usage to the reports.
#[derive(Default)]
pub(crate) struct UsageWrites<'a> {
    /// `{id}` of IP address objects to delete.
    pub(crate) deletes: Vec<Value>,
    /// `{id, description, custom_fields}` of IP address objects to patch.
    pub(crate) patches: Vec<Value>,
    /// Addresses to create, with their range (the body is the server's own).
    pub(crate) creates: Vec<(&'a IpamId, &'a UsedAddress)>,
    /// `{id, custom_fields: {vmm_usage}}` of the ranges.
    pub(crate) counts: Vec<Value>,
}

/// The custom fields of an IP address object the console creates.
pub(crate) fn address_fields(manager: &str, range: &IpamId, used: &UsedAddress) -> Value {
    json!({
        crate::ipam::drf::field::VMM_SERVER: manager,
        field::RANGE: range.as_str(),
        field::CONSUMER: used.kind,
    })
}

/// An id as a body takes it: NetBox's are numbers, Nautobot's UUIDs.
fn id_value(id: &str) -> Value {
    id.parse::<u64>()
        .map_or_else(|_| Value::String(id.to_string()), Value::from)
}

/// A count as JSON: a number when it fits, else its digits (IPv6 ranges).
fn count_json(n: u128) -> Value {
    u64::try_from(n).map_or_else(|_| Value::String(n.to_string()), Value::from)
}

fn count_of(v: &Value) -> Option<u128> {
    match v {
        Value::Number(n) => n.as_u64().map(u128::from),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// The `vmm_usage` value of a report: its counts.
fn counts_json(u: &RangeUsage) -> Value {
    json!({
        "total": count_json(u.total),
        "granted": u.granted,
        "vips": u.vips,
        "vips_granted": u.vips_granted,
        "reserved": u.reserved,
        "held": u.held,
        "free": count_json(u.free),
    })
}

/// The counts of a `vmm_usage` value (addresses empty); `None` when it is not one.
fn counts_from(v: &Value) -> Option<RangeUsage> {
    let n = |k: &str| v.get(k).and_then(Value::as_u64);
    Some(RangeUsage {
        total: count_of(v.get("total")?)?,
        granted: n("granted")?,
        vips: n("vips")?,
        vips_granted: n("vips_granted")?,
        reserved: n("reserved")?,
        held: n("held").unwrap_or(0),
        free: count_of(v.get("free")?)?,
        addresses: Vec::new(),
    })
}

/// Who holds an address assigned on the IPAM side: its description, DNS name or display.
fn holder_of(v: &Value) -> String {
    ["description", "dns_name", "display"]
        .iter()
        .filter_map(|k| str_of(v, k))
        .map(str::trim)
        .find(|s| !s.is_empty())
        .unwrap_or("an IP address")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_round_trip_also_beyond_64_bits() {
        let u = RangeUsage {
            total: 1 << 70,
            granted: 3,
            vips: 2,
            vips_granted: 1,
            reserved: 4,
            held: 1,
            free: (1 << 70) - 10,
            addresses: Vec::new(),
        };
        let v = counts_json(&u);
        assert!(v["total"].is_string());
        assert_eq!(v["granted"], 3);
        assert_eq!(counts_from(&v), Some(u));
        assert_eq!(counts_from(&json!({"total": 5})), None);
    }

    #[test]
    fn the_holder_of_a_hand_made_address_is_its_description_or_name() {
        assert_eq!(
            holder_of(&json!({"description": " printer ", "display": "10.0.0.5/24"})),
            "printer"
        );
        assert_eq!(
            holder_of(&json!({"description": "", "dns_name": "", "display": "10.0.0.5/24"})),
            "10.0.0.5/24"
        );
    }

    #[test]
    fn addresses_are_sorted_into_the_consoles_orphans_and_assigned_on_the_ipam_side() {
        let (id, range) = ConsoleRange::from_json(
            &json!({"id": 7, "start_address": "10.0.0.10/24", "end_address": "10.0.0.20/24",
                    "vrf": {"id": 3}, "custom_fields": {}}),
            "vrf",
        )
        .expect("a range");
        assert_eq!((id.as_str(), range.prefix_len), ("7", Some(24)));
        let ours = vec![
            json!({"id": 1, "address": "10.0.0.11/24", "vrf": {"id": 3}, "description": "vm1",
                   "custom_fields": {"vmm_range": "7", "vmm_consumer": "vm_adapter"}}),
            json!({"id": 2, "address": "10.0.0.12/24", "vrf": {"id": 3},
                   "custom_fields": {"vmm_range": "99"}}),
        ];
        let mut all = ours.clone();
        all.push(
            json!({"id": 5, "address": "10.0.0.15/24", "vrf": {"id": 3}, "dns_name": "printer"}),
        );
        all.push(json!({"id": 6, "address": "10.0.0.50/24", "vrf": {"id": 3}}));
        let read = UsageRead::new([(id, range)].into(), &ours, &all, "vrf");
        assert_eq!(read.orphans, vec!["2"]);
        assert_eq!(read.console["7"][0].1.holder, "vm1");
        let foreign = &read.foreign[&IpamId::from("7")];
        assert_eq!(foreign.len(), 1, "only what lies inside the range");
        assert_eq!(foreign[0].holder, "printer");
        // A report that grants the foreign address never creates it; the old one goes.
        let report = RangeUsage {
            addresses: vec![UsedAddress {
                address: "10.0.0.15".parse().unwrap(),
                holder: "vm2".into(),
                kind: "vm_adapter".into(),
            }],
            total: 11,
            granted: 1,
            vips: 0,
            vips_granted: 0,
            reserved: 0,
            held: 1,
            free: 9,
        };
        let reports = vec![(IpamId::from("7"), report)];
        let writes = read.writes(&reports).expect("a console range");
        assert!(writes.creates.is_empty());
        assert_eq!(
            writes.deletes.len(),
            2,
            "the orphan and the address no longer granted"
        );
        assert_eq!(writes.counts.len(), 1);
        assert!(
            read.writes(&[(IpamId::from("8"), reports[0].1.clone())])
                .is_err()
        );
    }
}
