//! Address usage in Nautobot (see `crate::ipam::address_usage`): a granted address is an IP
//! Address object in its range's namespace, found through the range's parent prefix.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};

use super::*;
use crate::ipam::address_usage::{ConsoleRange, UsageRead, address_fields};
use crate::ipam::model::{IpamId, RangeUsage};

impl NautobotProvider {
    /// The usage as Nautobot holds it (see `UsageCache::get`).
    pub(super) async fn usage(&self, reuse: bool) -> Result<Arc<UsageRead>, IpamError> {
        self.usage_read.get(reuse, self.read_usage()).await
    }

    /// Reads the console's ranges and every IP address in their prefixes.
    async fn read_usage(&self) -> Result<UsageRead, IpamError> {
        self.ensure_schema(true).await?;
        let mine = [(format!("cf_{}", field::VMM_SERVER), self.manager.clone())];
        let (listed, _) = self.api.list_all(RANGES, &mine).await?;
        let ranges: HashMap<String, ConsoleRange> = listed
            .iter()
            .filter_map(|v| ConsoleRange::from_json(v, "parent"))
            .collect();
        let parents: BTreeSet<&String> = ranges.values().map(|r| &r.container).collect();
        let filters: Vec<Vec<(String, String)>> = parents
            .into_iter()
            .collect::<Vec<_>>()
            .chunks(40)
            .map(|c| c.iter().map(|p| ("parent".into(), (*p).clone())).collect())
            .collect();
        let (ours, _) = self.api.list_all(IP_ADDRESSES, &mine).await?;
        let addresses = self.api.list_filtered(IP_ADDRESSES, &[], filters).await?;
        Ok(UsageRead::new(ranges, &ours, &addresses, "parent"))
    }

    /// Brings the IP addresses and counts of the reported ranges to the reports: addresses no
    /// longer granted are deleted, changed ones patched, new ones created (never one assigned
    /// on the IPAM side), then the counts written. Reads first (see `UsageCache::report`), so
    /// a report whose answer was lost is finished, never repeated.
    pub(super) async fn write_usage(
        &self,
        reports: &[(IpamId, RangeUsage)],
    ) -> Result<(), IpamError> {
        if reports.is_empty() {
            return Ok(());
        }
        let schema = self.ensure_schema(true).await?;
        self.usage_read
            .report(
                &self.api.get_retry,
                || self.read_usage(),
                |now| self.write_usage_from(now, reports, &schema),
            )
            .await
    }

    async fn write_usage_from(
        &self,
        now: Arc<UsageRead>,
        reports: &[(IpamId, RangeUsage)],
        schema: &Schema,
    ) -> Result<(), IpamError> {
        let writes = now.writes(reports).map_err(|range| {
            self.protocol(format!(
                "the range {range} is not one of this console's IP address ranges; the next sync reads the ranges again"
            ))
        })?;
        let mut parent_ids: Vec<String> = reports
            .iter()
            .map(|(range, _)| now.ranges[range.as_str()].container.clone())
            .collect();
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
        let mut posts = Vec::new();
        for (range, used) in &writes.creates {
            let parent = &now.ranges[range.as_str()].container;
            let (len, namespace) = where_.get(parent).cloned().ok_or_else(|| {
                self.protocol(format!(
                    "the prefix {parent} of the range {range} could not be read"
                ))
            })?;
            posts.push(json!({
                "address": format!("{}/{len}", used.address),
                "namespace": namespace,
                "status": schema.active_status,
                "type": "host",
                "description": used.holder,
                "custom_fields": address_fields(&self.manager, range, used),
            }));
        }
        let (deletes, patches, counts) = (writes.deletes, writes.patches, writes.counts);
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
