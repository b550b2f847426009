//! Reads: full reads, and incremental reads from a cursor and Nautobot's change log.

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::ipam::incremental::full_snapshot;
pub(super) use crate::ipam::incremental::{CursorState, spaces_in_scope, watermark};
use crate::ipam::model::{
    AddressSpace, ChangeSet, IpamId, IpamKind, IpamSnapshot, SnapshotRead, SnapshotScope,
};
use crate::ipam::provider::IpamError;

use super::*;

pub(super) const CURSOR_TAG: &str = "nautobot-v1:";

pub(super) fn namespace_filters(ids: &[String]) -> Vec<Vec<(String, String)>> {
    ids.chunks(60)
        .map(|c| {
            c.iter()
                .map(|id| ("namespace".to_string(), id.clone()))
                .collect()
        })
        .collect()
}

impl NautobotProvider {
    fn full_reads(&self) -> FullReads {
        FullReads {
            overlap: self.tuning.overlap,
            every: self.tuning.full_read_every,
            gap: self.tuning.full_read_gap,
            after: self.tuning.full_read_after,
        }
    }

    /// The address spaces in scope (and their JSON), every namespace id that exists now, and
    /// the server's clock.
    #[allow(clippy::type_complexity)]
    pub(super) async fn read_spaces(
        &self,
        scope: &SnapshotScope,
    ) -> Result<
        (
            Vec<AddressSpace>,
            Vec<Value>,
            HashSet<String>,
            Option<DateTime<Utc>>,
        ),
        IpamError,
    > {
        let (namespaces, date) = self.api.list_all(NAMESPACES, &[]).await?;
        let existing: HashSet<String> = namespaces
            .iter()
            .filter_map(|ns| str_of(ns, "id").map(str::to_string))
            .collect();
        let mut spaces = Vec::new();
        let mut raw = Vec::new();
        for ns in namespaces.into_iter().filter(is_address_space) {
            spaces.push(space_from_json(&self.api.server, &ns)?);
            raw.push(ns);
        }
        let spaces = spaces_in_scope(spaces, scope);
        let keep: HashSet<&str> = spaces.iter().map(|s| s.id.as_str()).collect();
        raw.retain(|ns| str_of(ns, "id").is_some_and(|id| keep.contains(id)));
        Ok((spaces, raw, existing, date))
    }

    pub(super) async fn full_read(&self, scope: &SnapshotScope) -> Result<IpamSnapshot, IpamError> {
        let read_local = Utc::now();
        let (spaces, _, _, date) = self.read_spaces(scope).await?;
        let read_at = date.ok_or_else(|| self.protocol("no Date header in the answer"))?;
        let ns_ids: Vec<String> = spaces.iter().map(|s| s.id.to_string()).collect();
        let network = [("type".to_string(), "network".to_string())];
        let (prefixes, ranges) = tokio::try_join!(
            self.api
                .list_filtered(PREFIXES, &network, namespace_filters(&ns_ids)),
            self.api
                .list_filtered(RANGES, &[], namespace_filters(&ns_ids)),
        )?;
        let subnets = prefixes
            .iter()
            .map(|p| subnet_from_json(&self.api.server, p))
            .collect::<Result<Vec<_>, _>>()?;
        let subnet_ids: HashSet<&str> = subnets.iter().map(|s| s.id.as_str()).collect();
        let mut out_ranges = Vec::new();
        for r in &ranges {
            // Ranges under a container or pool prefix are not pools of a subnet.
            if ref_id(r, "parent").is_some_and(|p| subnet_ids.contains(p.as_str())) {
                out_ranges.push(range_from_json(&self.api.server, r)?);
            }
        }
        Ok(full_snapshot(
            CURSOR_TAG, read_at, read_local, scope, spaces, subnets, out_ranges,
        ))
    }

    /// Ids deleted since `since` (with their namespace when the change log records it), from
    /// Nautobot's change log; `None` when the log is not readable.
    pub(super) async fn deleted_since(
        &self,
        content_type: &str,
        since: &str,
    ) -> Result<Option<Vec<(String, Option<String>)>>, IpamError> {
        let q = [
            ("action".to_string(), "delete".to_string()),
            ("changed_object_type".to_string(), content_type.to_string()),
            ("time__gte".to_string(), since.to_string()),
        ];
        match self.api.list_all(OBJECT_CHANGES, &q).await {
            Ok((changes, _)) => Ok(Some(
                changes
                    .iter()
                    .filter_map(|c| {
                        let id = str_of(c, "changed_object_id")?.to_string();
                        // The deleted object's last state names its namespace, when it had one.
                        let namespace =
                            c.get("object_data").and_then(|d| match d.get("namespace") {
                                Some(Value::String(s)) => Some(s.clone()),
                                Some(Value::Object(m)) => {
                                    m.get("id").and_then(Value::as_str).map(str::to_string)
                                }
                                _ => None,
                            });
                        Some((id, namespace))
                    })
                    .collect(),
            )),
            Err(IpamError::Forbidden { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn incremental_read(
        &self,
        scope: &SnapshotScope,
        previous: CursorState,
    ) -> Result<SnapshotRead, IpamError> {
        let read_local = Utc::now();
        let (spaces, raw_spaces, existing, date) = self.read_spaces(scope).await?;
        let now = date.ok_or_else(|| self.protocol("no Date header in the answer"))?;
        let policy = self.full_reads();
        if previous.full_due(now, &policy) {
            return Ok(SnapshotRead::Full(self.full_read(scope).await?));
        }
        let since_time = previous.since(&policy);
        let since = watermark(since_time);
        let current: BTreeSet<IpamId> = spaces.iter().map(|s| s.id.clone()).collect();
        // A namespace that entered the scope with old contents (its link changed) needs a full read.
        for ns in &raw_spaces {
            let id = str_of(ns, "id").unwrap_or_default();
            let created = str_of(ns, "created")
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc));
            if !previous.spaces.contains(id) && created.is_none_or(|c| c < since_time) {
                return Ok(SnapshotRead::Full(self.full_read(scope).await?));
            }
        }
        let changed_q = [("last_updated__gte".to_string(), since.clone())];
        // Namespaces in scope now or at the previous read: objects leaving the scope count too.
        let known: Vec<String> = current
            .union(&previous.spaces)
            .map(IpamId::to_string)
            .collect();
        // Only namespaces that still exist can filter a list: Nautobot refuses a deleted one
        // (HTTP 400), and a filter that always fails would stop every later sync.
        let listable: Vec<String> = known
            .iter()
            .filter(|id| existing.contains(id.as_str()))
            .cloned()
            .collect();
        let read = tokio::try_join!(
            self.api
                .list_filtered(PREFIXES, &changed_q, namespace_filters(&listable)),
            self.api
                .list_filtered(RANGES, &changed_q, namespace_filters(&listable)),
            self.deleted_since(CT_PREFIX, &since),
            self.deleted_since(CT_RANGE, &since),
        );
        let (prefixes, ranges, deleted_prefixes, deleted_ranges) = match read {
            Ok(r) => r,
            // A namespace deleted between the two reads: start again from a full read.
            Err(IpamError::Invalid { field, .. }) if field == "namespace" => {
                return Ok(SnapshotRead::Full(self.full_read(scope).await?));
            }
            Err(e) => return Err(e),
        };
        let (Some(deleted_prefixes), Some(deleted_ranges)) = (deleted_prefixes, deleted_ranges)
        else {
            // Without the change log deletions cannot be seen: read everything instead.
            return Ok(SnapshotRead::Full(self.full_read(scope).await?));
        };
        let mut deleted: Vec<(IpamKind, IpamId)> = Vec::new();
        for id in previous.spaces.difference(&current) {
            deleted.push((IpamKind::AddressSpace, id.clone()));
        }
        // Deleted namespaces are the ones missing from the (always complete) namespace list.
        let mut subnets = Vec::new();
        let mut network_ids: HashSet<String> = HashSet::new();
        for p in &prefixes {
            let id = str_of(p, "id").unwrap_or_default().to_string();
            let in_scope = ref_id(p, "namespace").is_some_and(|ns| current.contains(ns.as_str()));
            if in_scope
                && str_of(p, "type").or_else(|| p.pointer("/type/value").and_then(Value::as_str))
                    == Some("network")
            {
                subnets.push(subnet_from_json(&self.api.server, p)?);
                network_ids.insert(id);
            } else {
                // Moved out of scope or no longer a network: gone from the console's view.
                deleted.push((IpamKind::Subnet, id.into()));
            }
        }
        for (id, namespace) in deleted_prefixes {
            if namespace.is_none_or(|ns| known.contains(&ns)) {
                deleted.push((IpamKind::Subnet, id.into()));
            }
        }
        // Parents of changed ranges that did not change themselves: are they subnets in scope?
        let unknown_parents: Vec<String> = ranges
            .iter()
            .filter_map(|r| ref_id(r, "parent"))
            .filter(|p| !network_ids.contains(p))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if !unknown_parents.is_empty() {
            let parents = self
                .api
                .list_by_ids(
                    PREFIXES,
                    &unknown_parents,
                    &[("type".to_string(), "network".to_string())],
                )
                .await?;
            for p in parents {
                if ref_id(&p, "namespace").is_some_and(|ns| current.contains(ns.as_str()))
                    && let Some(id) = str_of(&p, "id")
                {
                    network_ids.insert(id.to_string());
                }
            }
        }
        let mut out_ranges = Vec::new();
        for r in &ranges {
            if ref_id(r, "parent").is_some_and(|p| network_ids.contains(&p)) {
                out_ranges.push(range_from_json(&self.api.server, r)?);
            } else if let Some(id) = str_of(r, "id") {
                deleted.push((IpamKind::Range, id.into()));
            }
        }
        for (id, _) in deleted_ranges {
            deleted.push((IpamKind::Range, id.into()));
        }
        crate::ipam::incremental::settle_deleted(&mut deleted, &subnets, &out_ranges);
        let changed_spaces = previous.changed_spaces(spaces, &raw_spaces, since_time);
        let state = previous.next(now, read_local, current);
        Ok(SnapshotRead::Changes(ChangeSet {
            cursor: Some(state.encode(CURSOR_TAG)),
            spaces: changed_spaces,
            subnets,
            ranges: out_ranges,
            deleted,
        }))
    }
}
