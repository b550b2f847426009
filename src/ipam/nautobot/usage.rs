//! Address usage in Nautobot. A console range carries its counts in the `vmm_usage` JSON field;
//! each address the console granted is an IP Address object in the range's namespace, marked
//! as the console's (`vmm_server`, `vmm_range`, `vmm_consumer`, the holder in its description).
//! Any other IP address inside a console range was assigned on the IPAM side and is read, never
//! changed.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;

use reqwest::Method;
use serde_json::{Value, json};

use super::*;
use crate::ipam::model::{Assignments, IpamId, RangeUsage, UsedAddress};

/// A range of this console, as usage needs it.
struct ConsoleRange {
    start: IpAddr,
    end: IpAddr,
    /// The prefix the range lies in.
    parent: String,
    /// The counts last reported, when readable.
    counts: Option<RangeUsage>,
}

/// What Nautobot holds of the console's usage, and the addresses assigned there by hand.
pub(super) struct UsageRead {
    ranges: HashMap<String, ConsoleRange>,
    /// The console's addresses by range id: (IP address object id, address).
    console: HashMap<String, Vec<(String, UsedAddress)>>,
    /// The console's addresses whose range is gone (deleted in Nautobot): ids to delete.
    orphans: Vec<String>,
    pub(super) foreign: Assignments,
}

impl UsageRead {
    /// Each console range's usage as Nautobot holds it (ranges never reported are left out).
    pub(super) fn reported(&self) -> HashMap<IpamId, RangeUsage> {
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

fn inside(r: &ConsoleRange, a: IpAddr) -> bool {
    a.is_ipv4() == r.start.is_ipv4() && a >= r.start && a <= r.end
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

impl NautobotProvider {
    /// Reads the console's ranges and every IP address in their prefixes.
    pub(super) async fn read_usage(&self) -> Result<UsageRead, IpamError> {
        self.ensure_schema(true).await?;
        let mine = [(format!("cf_{}", field::VMM_SERVER), self.manager.clone())];
        let (listed, _) = self.api.list_all(RANGES, &mine).await?;
        let mut ranges = HashMap::new();
        for v in &listed {
            let (Some(id), Some(start), Some(end), Some(parent)) = (
                str_of(v, "id"),
                address_of(v, "start_address"),
                address_of(v, "end_address"),
                ref_id(v, "parent"),
            ) else {
                continue;
            };
            let counts = custom_fields(v)
                .and_then(|f| f.get(field::USAGE))
                .and_then(counts_from);
            ranges.insert(
                id.to_string(),
                ConsoleRange {
                    start,
                    end,
                    parent,
                    counts,
                },
            );
        }
        let parents: BTreeSet<&String> = ranges.values().map(|r| &r.parent).collect();
        let filters: Vec<Vec<(String, String)>> = parents
            .into_iter()
            .collect::<Vec<_>>()
            .chunks(40)
            .map(|c| c.iter().map(|p| ("parent".into(), (*p).clone())).collect())
            .collect();
        let (ours, _) = self.api.list_all(IP_ADDRESSES, &mine).await?;
        let mut console: HashMap<String, Vec<(String, UsedAddress)>> = HashMap::new();
        let mut orphans = Vec::new();
        let mut our_ids = HashSet::new();
        for v in &ours {
            let (Some(id), Some(host)) = (str_of(v, "id"), address_of(v, "host")) else {
                continue;
            };
            our_ids.insert(id.to_string());
            match cf_text(v, field::RANGE).filter(|r| ranges.contains_key(r)) {
                Some(range) => console.entry(range).or_default().push((
                    id.to_string(),
                    UsedAddress {
                        address: host,
                        holder: str_of(v, "description").unwrap_or_default().to_string(),
                        kind: cf_text(v, field::CONSUMER).unwrap_or_default(),
                    },
                )),
                None => orphans.push(id.to_string()),
            }
        }
        let addresses = self.api.list_filtered(IP_ADDRESSES, &[], filters).await?;
        let mut by_parent: HashMap<&str, Vec<&String>> = HashMap::new();
        for (id, r) in &ranges {
            by_parent.entry(r.parent.as_str()).or_default().push(id);
        }
        let mut foreign = Assignments::new();
        for v in &addresses {
            let (Some(id), Some(host), Some(parent)) =
                (str_of(v, "id"), address_of(v, "host"), ref_id(v, "parent"))
            else {
                continue;
            };
            if our_ids.contains(id) {
                continue;
            }
            for range in by_parent.get(parent.as_str()).into_iter().flatten() {
                if inside(&ranges[*range], host) {
                    foreign
                        .entry(IpamId::from((*range).clone()))
                        .or_default()
                        .push(UsedAddress {
                            address: host,
                            holder: holder_of(v),
                            kind: crate::ipam::model::ASSIGNED_ON_IPAM.to_string(),
                        });
                }
            }
        }
        for list in foreign.values_mut() {
            list.sort();
        }
        Ok(UsageRead {
            ranges,
            console,
            orphans,
            foreign,
        })
    }

    /// Brings the IP addresses and counts of the reported ranges to the reports: addresses no
    /// longer granted are deleted, changed ones patched, new ones created (never one assigned
    /// on the IPAM side), then the counts written. Reads first, so a report whose answer was
    /// lost is finished, never repeated.
    pub(super) async fn write_usage(
        &self,
        reports: &[(IpamId, RangeUsage)],
    ) -> Result<(), IpamError> {
        if reports.is_empty() {
            return Ok(());
        }
        let schema = self.ensure_schema(true).await?;
        let now = self.read_usage().await?;
        let mut parent_ids = Vec::new();
        for (range, _) in reports {
            let r = now.ranges.get(range.as_str()).ok_or_else(|| {
                self.protocol(format!(
                    "the range {range} is not one of this console's IP address ranges; the next sync reads the ranges again"
                ))
            })?;
            parent_ids.push(r.parent.clone());
        }
        parent_ids.sort();
        parent_ids.dedup();
        let prefixes = self.api.list_by_ids(PREFIXES, &parent_ids, &[]).await?;
        let mut where_: HashMap<String, (u64, String)> = HashMap::new();
        for p in &prefixes {
            if let (Some(id), Some(len), Some(ns)) = (
                str_of(p, "id"),
                p.get("prefix_length").and_then(Value::as_u64),
                ref_id(p, "namespace"),
            ) {
                where_.insert(id.to_string(), (len, ns));
            }
        }
        let (mut deletes, mut patches, mut posts, mut counts) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        deletes.extend(now.orphans.iter().map(|id| json!({ "id": id })));
        for (range, usage) in reports {
            let r = &now.ranges[range.as_str()];
            let (len, namespace) = where_.get(&r.parent).cloned().ok_or_else(|| {
                self.protocol(format!(
                    "the prefix {} of the range {range} could not be read",
                    r.parent
                ))
            })?;
            let existing: HashMap<IpAddr, &(String, UsedAddress)> = now
                .console
                .get(range.as_str())
                .into_iter()
                .flatten()
                .map(|e| (e.1.address, e))
                .collect();
            let held: HashSet<IpAddr> = now
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
                    None => deletes.push(json!({ "id": id })),
                    Some(w) if *w != have => patches.push(json!({
                        "id": id,
                        "description": w.holder,
                        "custom_fields": { field::CONSUMER: w.kind },
                    })),
                    Some(_) => {}
                }
            }
            for (address, w) in &want {
                if existing.contains_key(address) || held.contains(address) {
                    continue;
                }
                posts.push(json!({
                    "address": format!("{address}/{len}"),
                    "namespace": namespace,
                    "status": schema.active_status,
                    "type": "host",
                    "description": w.holder,
                    "custom_fields": {
                        field::VMM_SERVER: self.manager,
                        field::RANGE: range.as_str(),
                        field::CONSUMER: w.kind,
                    },
                }));
            }
            counts.push(json!({
                "id": range.as_str(),
                "custom_fields": { field::USAGE: counts_json(usage) },
            }));
        }
        for (method, path, items) in [
            (Method::DELETE, IP_ADDRESSES, deletes),
            (Method::PATCH, IP_ADDRESSES, patches),
            (Method::POST, IP_ADDRESSES, posts),
            (Method::PATCH, RANGES, counts),
        ] {
            if items.is_empty() {
                continue;
            }
            let tagged = items.into_iter().enumerate().collect();
            for (_, result) in self.bulk(method, path, tagged).await {
                result?;
            }
        }
        Ok(())
    }

    /// Deletes the IP addresses the console granted from these ranges, before the ranges go
    /// (they would otherwise keep the range's prefix from being deleted).
    pub(super) async fn delete_range_addresses(&self, ranges: &[String]) -> Result<(), IpamError> {
        if ranges.is_empty() {
            return Ok(());
        }
        let mine = [(format!("cf_{}", field::VMM_SERVER), self.manager.clone())];
        let filters = ranges
            .iter()
            .map(|r| vec![(format!("cf_{}", field::RANGE), r.clone())])
            .collect();
        let found = self.api.list_filtered(IP_ADDRESSES, &mine, filters).await?;
        let items: Vec<(usize, Value)> = found
            .iter()
            .filter_map(|v| str_of(v, "id"))
            .map(|id| json!({ "id": id }))
            .enumerate()
            .collect();
        for (_, result) in self.bulk(Method::DELETE, IP_ADDRESSES, items).await {
            result?;
        }
        Ok(())
    }
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
}
