//! Address usage in NetBox (see `crate::ipam::address_usage`): a granted address is an IP
//! Address object in its range's VRF, with the range's prefix length. NetBox ignores custom
//! field filters it does not know, so what the filters select is checked again here: only
//! objects whose `vmm_server` is this service are ever changed.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};

use super::*;
use crate::ipam::address_usage::{ConsoleRange, UsageRead, address_fields};
use crate::ipam::model::RangeUsage;

pub(super) const IP_ADDRESSES: &str = "/api/ipam/ip-addresses/";
const ADDRESS_FIELDS: &str = "id,display,address,vrf,description,dns_name,custom_fields";
const USAGE_RANGE_FIELDS: &str = "id,start_address,end_address,vrf,custom_fields";
impl NetboxProvider {
    /// `cf_vmm_server=<this service>`, and the check that an object really is this service's.
    fn mine(&self) -> (Vec<(String, String)>, impl Fn(&Value) -> bool + '_) {
        let query = vec![(format!("cf_{}", field::VMM_SERVER), self.manager.clone())];
        let check = move |v: &Value| {
            cf_text(v, field::VMM_SERVER).as_deref() == Some(self.manager.as_str())
        };
        (query, check)
    }

    /// The usage as NetBox holds it (see `UsageCache::get`).
    pub(super) async fn usage(&self, reuse: bool) -> Result<Arc<UsageRead>, IpamError> {
        self.usage_read.get(reuse, self.read_usage()).await
    }

    /// The console's ranges and every IP address in their VRFs.
    async fn read_usage(&self) -> Result<UsageRead, IpamError> {
        self.ensure_schema(true).await?;
        let (query, is_mine) = self.mine();
        let with = |fields: &str| {
            let mut q = query.clone();
            q.push(("fields".to_string(), fields.to_string()));
            q
        };
        let (range_query, address_query) = (with(USAGE_RANGE_FIELDS), with(ADDRESS_FIELDS));
        let (ranges, ours) = tokio::try_join!(
            self.api.list_all(RANGES, &range_query),
            self.api.list_all(IP_ADDRESSES, &address_query),
        )?;
        let ranges: HashMap<String, ConsoleRange> = ranges
            .0
            .iter()
            .filter(|v| is_mine(v))
            .filter_map(|v| ConsoleRange::from_json(v, "vrf"))
            .collect();
        let ours: Vec<Value> = ours.0.into_iter().filter(|v| is_mine(v)).collect();
        let vrfs: Vec<String> = ranges
            .values()
            .map(|r| r.container.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let fields = [("fields".to_string(), ADDRESS_FIELDS.to_string())];
        let all = self
            .list_in(IP_ADDRESSES, &fields, "vrf_id", "vrf", &vrfs)
            .await?;
        Ok(UsageRead::new(ranges, &ours, &all, "vrf"))
    }

    /// Brings the IP addresses and counts of the reported ranges to the reports, from a read
    /// (see `UsageCache::report`), so a write whose answer was lost is found, never repeated.
    pub(super) async fn write_usage(
        &self,
        reports: &[(IpamId, RangeUsage)],
    ) -> Result<(), IpamError> {
        if reports.is_empty() {
            return Ok(());
        }
        self.usage_read
            .report(
                &self.api.get_retry,
                || self.read_usage(),
                |now| self.write_usage_from(now, reports),
            )
            .await
    }

    async fn write_usage_from(
        &self,
        now: Arc<UsageRead>,
        reports: &[(IpamId, RangeUsage)],
    ) -> Result<(), IpamError> {
        let writes = now.writes(reports).map_err(|range| {
            self.protocol(format!(
                "the IP range {range} is not one of this console's; the next sync reads the ranges again"
            ))
        })?;
        let posts: Vec<Value> = writes
            .creates
            .iter()
            .map(|(range, used)| {
                let r = &now.ranges[range.as_str()];
                let len = r
                    .prefix_len
                    .unwrap_or(if used.address.is_ipv4() { 32 } else { 128 });
                json!({
                    "address": format!("{}/{len}", used.address),
                    "vrf": id_json(&IpamId::from(r.container.clone())),
                    "status": "active",
                    "description": used.holder,
                    "custom_fields": address_fields(&self.manager, range, used),
                })
            })
            .collect();
        for (method, path, items) in [
            (Method::DELETE, IP_ADDRESSES, writes.deletes),
            (Method::PATCH, IP_ADDRESSES, writes.patches),
            (Method::POST, IP_ADDRESSES, posts),
            (Method::PATCH, RANGES, writes.counts),
        ] {
            if items.is_empty() {
                continue;
            }
            let tagged = items.into_iter().enumerate().collect();
            for (_, result) in self.api.bulk(method, path, tagged, BATCH_SIZE).await {
                result?;
            }
        }
        Ok(())
    }

    /// Deletes the IP addresses the console granted from these ranges before the ranges go.
    pub(super) async fn delete_range_addresses(&self, ranges: &[String]) -> Result<(), IpamError> {
        if ranges.is_empty() {
            return Ok(());
        }
        let (query, is_mine) = self.mine();
        let filters = ranges
            .iter()
            .map(|r| vec![(format!("cf_{}", field::RANGE), r.clone())])
            .collect();
        let mut extra = query.clone();
        extra.push(("fields".to_string(), ADDRESS_FIELDS.to_string()));
        let found = self
            .api
            .list_filtered(IP_ADDRESSES, &extra, filters)
            .await?;
        let doomed: std::collections::HashSet<&str> = ranges.iter().map(String::as_str).collect();
        let items: Vec<(usize, Value)> = found
            .iter()
            .filter(|v| is_mine(v))
            .filter(|v| cf_text(v, field::RANGE).is_some_and(|r| doomed.contains(r.as_str())))
            .filter_map(id_of)
            .map(|id| json!({ "id": id_json(&IpamId::from(id)) }))
            .enumerate()
            .collect();
        for (_, result) in self
            .api
            .bulk(Method::DELETE, IP_ADDRESSES, items, BATCH_SIZE)
            .await
        {
            result?;
        }
        Ok(())
    }
}
