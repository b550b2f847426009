//! Reads: full reads, and incremental reads from a cursor, NetBox's `last_updated` and its
//! change log (`/api/core/object-changes/`).
//!
//! An IP range belongs to the longest prefix of its VRF that holds it, so a prefix that is
//! created, resized, moved or deleted can move ranges it never touched to another subnet: every
//! VRF with such a prefix change (before or after the change) has its prefixes and ranges read
//! again. An edited range needs only the prefixes of its VRF. The cost of an incremental read
//! follows the VRFs that changed, not the whole server.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::ipam::drf::id_text;
use crate::ipam::incremental::{CursorState, full_snapshot, watermark};
use crate::ipam::model::{
    AddressSpace, ChangeSet, IpRange, IpamId, IpamKind, IpamSnapshot, IpamSubnet, SnapshotRead,
    SnapshotScope,
};
use crate::ipam::provider::IpamError;

use super::*;

pub(super) const CURSOR_TAG: &str = "netbox-v1:";

/// The fields the mapping reads (`?fields=`): a tenth of a whole object's size.
const VRF_FIELDS: &str = "id,display,name,description,custom_fields,created,last_updated";
const PREFIX_FIELDS: &str = "id,display,prefix,vrf,description,custom_fields,last_updated";
const RANGE_FIELDS: &str =
    "id,display,start_address,end_address,vrf,description,custom_fields,last_updated";
const CHANGE_FIELDS: &str = "id,time,action,changed_object_id,prechange_data,postchange_data";

fn fields(list: &str) -> Vec<(String, String)> {
    vec![("fields".to_string(), list.to_string())]
}

/// A VRF id in a change log record's data (`{"vrf": 12}`); `None` for the global table.
fn vrf_in(data: &Value) -> Option<String> {
    match data.get("vrf")? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Object(_) => ref_id(data, "vrf"),
        _ => None,
    }
}

/// What NetBox's change log recorded of one object within the read's window.
#[derive(Default)]
pub(super) struct Change {
    pub(super) deleted: bool,
    /// The VRFs the object was in before and after each change.
    pub(super) vrfs: BTreeSet<String>,
    /// Whether the records say which VRF it was in (null for the global table); a record that
    /// does not is taken as possibly in scope.
    pub(super) vrf_recorded: bool,
}

impl Change {
    /// Whether the object may have been in one of `known` VRFs.
    fn touches(&self, known: &BTreeSet<IpamId>) -> bool {
        !self.vrf_recorded || self.vrfs.iter().any(|v| known.contains(v.as_str()))
    }
}

/// Whether the object `id` may have been in one of `known` VRFs: an object the log does not
/// mention (edited below the change log) is taken as possibly so.
fn may_have_been_in(log: &HashMap<String, Change>, id: &str, known: &BTreeSet<IpamId>) -> bool {
    log.get(id).is_none_or(|c| c.touches(known))
}

/// The ranges among `ranges` that map to one of `subnets`, and the ids of those that map to none
/// (outside every subnet read: not a pool of the mapping now).
fn map_ranges(
    server: &str,
    ranges: &[Value],
    subnets: &[IpamSubnet],
) -> Result<(Vec<IpRange>, Vec<String>), IpamError> {
    let mut mapped = Vec::new();
    let mut unmapped = Vec::new();
    for r in ranges {
        match range_from_json(server, r, subnets)? {
            Some(range) => mapped.push(range),
            None => unmapped.extend(id_of(r)),
        }
    }
    Ok((mapped, unmapped))
}

impl NetboxProvider {
    /// The VRFs that are address spaces in scope, every VRF id that exists, and the server's
    /// clock.
    #[allow(clippy::type_complexity)]
    async fn read_spaces(
        &self,
        scope: &SnapshotScope,
    ) -> Result<
        (
            Vec<AddressSpace>,
            Vec<Value>,
            HashSet<String>,
            DateTime<Utc>,
        ),
        IpamError,
    > {
        let (vrfs, date) = self.api.list_all(VRFS, &fields(VRF_FIELDS)).await?;
        let read_at = date.ok_or_else(|| self.protocol("no Date header in the answer"))?;
        let existing: HashSet<String> = vrfs.iter().filter_map(id_of).collect();
        let mut spaces = Vec::new();
        let mut raw = Vec::new();
        for v in vrfs.into_iter().filter(is_address_space) {
            spaces.push(space_from_json(&self.api.server, &v)?);
            raw.push(v);
        }
        let spaces = crate::ipam::incremental::spaces_in_scope(spaces, scope);
        let keep: HashSet<&str> = spaces.iter().map(|s| s.id.as_str()).collect();
        raw.retain(|v| id_of(v).is_some_and(|id| keep.contains(id.as_str())));
        Ok((spaces, raw, existing, read_at))
    }

    /// The prefixes (as subnets) and raw ranges of `vrfs`.
    async fn read_vrfs(
        &self,
        vrfs: &[String],
        with_ranges: bool,
    ) -> Result<(Vec<IpamSubnet>, Vec<Value>), IpamError> {
        let prefix_fields = fields(PREFIX_FIELDS);
        let range_fields = fields(RANGE_FIELDS);
        let no_ranges: &[String] = &[];
        let (prefixes, ranges) = tokio::try_join!(
            self.list_in(PREFIXES, &prefix_fields, "vrf_id", "vrf", vrfs),
            self.list_in(
                RANGES,
                &range_fields,
                "vrf_id",
                "vrf",
                if with_ranges { vrfs } else { no_ranges }
            ),
        )?;
        let subnets = prefixes
            .iter()
            .map(|p| subnet_from_json(&self.api.server, p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((subnets, ranges))
    }

    /// Everything in scope, read whole.
    pub(super) async fn full_read(&self, scope: &SnapshotScope) -> Result<IpamSnapshot, IpamError> {
        let read_local = Utc::now();
        let (spaces, _, _, read_at) = self.read_spaces(scope).await?;
        let ids: Vec<String> = spaces.iter().map(|s| s.id.to_string()).collect();
        let (subnets, ranges) = self.read_vrfs(&ids, true).await?;
        let (ranges, _) = map_ranges(&self.api.server, &ranges, &subnets)?;
        Ok(full_snapshot(
            CURSOR_TAG, read_at, read_local, scope, spaces, subnets, ranges,
        ))
    }

    /// The change log's records of `object_type` between `since` and `until`, by object id.
    async fn changes(
        &self,
        object_type: &str,
        since: &str,
        until: &str,
    ) -> Result<HashMap<String, Change>, IpamError> {
        let q = vec![
            ("changed_object_type".to_string(), object_type.to_string()),
            ("time_after".to_string(), since.to_string()),
            ("time_before".to_string(), until.to_string()),
            ("fields".to_string(), CHANGE_FIELDS.to_string()),
        ];
        let (records, _) = self.api.list_all(OBJECT_CHANGES, &q).await?;
        let mut out: HashMap<String, Change> = HashMap::new();
        for c in &records {
            let Some(id) = c.get("changed_object_id").and_then(id_text) else {
                continue;
            };
            let action =
                str_of(c, "action").or_else(|| c.pointer("/action/value").and_then(Value::as_str));
            let entry = out.entry(id).or_default();
            entry.deleted |= action == Some("delete");
            for key in ["prechange_data", "postchange_data"] {
                if let Some(data) = c.get(key).filter(|d| d.is_object()) {
                    entry.vrf_recorded |= data.get("vrf").is_some();
                    entry.vrfs.extend(vrf_in(data));
                }
            }
        }
        Ok(out)
    }

    pub(super) async fn incremental_read(
        &self,
        scope: &SnapshotScope,
        previous: CursorState,
    ) -> Result<SnapshotRead, IpamError> {
        let filters = self.check_filters().await?;
        let read_local = Utc::now();
        let (spaces, raw_spaces, existing, now) = self.read_spaces(scope).await?;
        if !filters.change_log || previous.full_due(now, &self.reads) {
            return Ok(SnapshotRead::Full(self.full_read(scope).await?));
        }
        let since_time = previous.since(&self.reads);
        let since = watermark(since_time);
        let until = watermark(now + chrono::Duration::seconds(1));
        let current: BTreeSet<IpamId> = spaces.iter().map(|s| s.id.clone()).collect();
        let in_scope =
            |vrf: &Option<String>| vrf.as_ref().is_some_and(|v| current.contains(v.as_str()));
        // VRFs in scope now or at the previous read: objects that left them count as deleted;
        // changes elsewhere on the server are none of this read's business.
        let known: BTreeSet<IpamId> = current.union(&previous.spaces).cloned().collect();

        // What changed anywhere since the watermark: objects that left the scope count too.
        let changed = |path: &'static str, list: &'static str| {
            let mut q = fields(list);
            q.push(("last_updated__gte".to_string(), since.clone()));
            async move { self.api.list_all(path, &q).await.map(|(o, _)| o) }
        };
        let (prefixes, ranges, prefix_log, range_log) = tokio::try_join!(
            changed(PREFIXES, PREFIX_FIELDS),
            changed(RANGES, RANGE_FIELDS),
            self.changes(OT_PREFIX, &since, &until),
            self.changes(OT_RANGE, &since, &until),
        )?;

        let mut deleted: Vec<(IpamKind, IpamId)> = previous
            .spaces
            .difference(&current)
            .map(|id| (IpamKind::AddressSpace, id.clone()))
            .collect();
        // VRFs whose prefixes changed (their ranges may belong to another prefix now), and VRFs
        // that entered the scope: read whole.
        let mut dirty: BTreeSet<String> = current
            .difference(&previous.spaces)
            .map(IpamId::to_string)
            .collect();
        for p in &prefixes {
            let vrf = ref_id(p, "vrf");
            if in_scope(&vrf) {
                dirty.extend(vrf);
            } else if let Some(id) = id_of(p)
                && may_have_been_in(&prefix_log, &id, &known)
            {
                // Moved out of scope: gone from the console's view.
                deleted.push((IpamKind::Subnet, id.into()));
            }
        }
        for (id, change) in &prefix_log {
            dirty.extend(
                change
                    .vrfs
                    .iter()
                    .filter(|v| current.contains(v.as_str()))
                    .cloned(),
            );
            if change.deleted && change.touches(&known) {
                deleted.push((IpamKind::Subnet, id.clone().into()));
            }
        }
        // Edited ranges in VRFs that are not read whole need their VRF's prefixes to be mapped.
        let mut edited_ranges = Vec::new();
        let mut mapping_only: BTreeSet<String> = BTreeSet::new();
        for r in ranges {
            let vrf = ref_id(&r, "vrf");
            if !in_scope(&vrf) {
                deleted.extend(
                    id_of(&r)
                        .filter(|id| may_have_been_in(&range_log, id, &known))
                        .map(|id| (IpamKind::Range, id.into())),
                );
            } else if !vrf.as_ref().is_some_and(|v| dirty.contains(v)) {
                mapping_only.extend(vrf);
                edited_ranges.push(r);
            }
        }
        for (id, change) in &range_log {
            if change.deleted && change.touches(&known) {
                deleted.push((IpamKind::Range, id.clone().into()));
            }
        }
        // Only VRFs that still exist can filter a list: NetBox refuses a deleted one (HTTP 400).
        let dirty: Vec<String> = dirty.into_iter().filter(|v| existing.contains(v)).collect();
        let mapping_only: Vec<String> = mapping_only
            .into_iter()
            .filter(|v| existing.contains(v))
            .collect();
        let read = tokio::try_join!(
            self.read_vrfs(&dirty, true),
            self.read_vrfs(&mapping_only, false),
        );
        let ((subnets, dirty_ranges), (mapping_subnets, _)) = match read {
            Ok(r) => r,
            // A VRF deleted since the VRFs were listed: start again from a full read.
            Err(IpamError::Invalid { field, .. }) if field == "vrf_id" => {
                return Ok(SnapshotRead::Full(self.full_read(scope).await?));
            }
            Err(e) => return Err(e),
        };
        let (mut out_ranges, unmapped) = map_ranges(&self.api.server, &dirty_ranges, &subnets)?;
        let (edited, edited_unmapped) =
            map_ranges(&self.api.server, &edited_ranges, &mapping_subnets)?;
        out_ranges.extend(edited);
        deleted.extend(
            unmapped
                .into_iter()
                .chain(edited_unmapped)
                .map(|id| (IpamKind::Range, id.into())),
        );

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_changes_in_known_vrfs_or_not_recorded_count() {
        let known: BTreeSet<IpamId> = [IpamId::from("5")].into();
        let mut log = HashMap::new();
        log.insert(
            "1".to_string(),
            Change {
                deleted: true,
                vrfs: ["5".to_string()].into(),
                vrf_recorded: true,
            },
        );
        log.insert(
            "2".to_string(),
            Change {
                deleted: true,
                vrfs: BTreeSet::new(),
                vrf_recorded: true,
            },
        );
        log.insert(
            "3".to_string(),
            Change {
                deleted: true,
                ..Change::default()
            },
        );
        assert!(may_have_been_in(&log, "1", &known));
        assert!(!may_have_been_in(&log, "2", &known), "the global table");
        assert!(may_have_been_in(&log, "3", &known), "no VRF recorded");
        assert!(may_have_been_in(&log, "4", &known), "not in the log");
    }

    #[test]
    fn change_log_records_name_the_vrfs_before_and_after() {
        assert_eq!(vrf_in(&json!({"vrf": 12})), Some("12".into()));
        assert_eq!(vrf_in(&json!({"vrf": {"id": 7}})), Some("7".into()));
        assert_eq!(vrf_in(&json!({"vrf": null})), None);
        assert_eq!(vrf_in(&json!({})), None);
    }
}
