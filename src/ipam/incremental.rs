//! What the incremental reads of the REST providers share: the cursor kept between reads (opaque
//! to the rest of the console), the address spaces a scope selects, and when a read must be
//! full again.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ipam::model::{
    AddressSpace, AddressSpaceKind, Cursor, IpRange, IpamId, IpamKind, IpamSnapshot, IpamSubnet,
    SnapshotScope,
};

/// What an incremental read needs from the previous one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CursorState {
    /// Server clock at the start of the previous read.
    pub(crate) read_at: DateTime<Utc>,
    /// Server clock at the start of the last full read.
    pub(crate) full_at: DateTime<Utc>,
    pub(crate) reads_since_full: u32,
    /// Digest of the scope the reads were made for.
    pub(crate) scope: String,
    /// Ids of the address spaces' containers (namespaces, VRFs) in scope at the previous read.
    pub(crate) spaces: BTreeSet<IpamId>,
    /// Console clock when the previous read began: change events that arrived later may not
    /// be in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) read_local: Option<DateTime<Utc>>,
}

/// When an incremental read gives way to a full one, the safety net for changes no list or
/// change log shows (a server edited below its API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FullReads {
    /// How far before the previous read's server time an incremental read looks back (changes
    /// committed late, clocks read to the second).
    pub overlap: chrono::Duration,
    /// Every n-th read is a full read ...
    pub every: u32,
    /// ... unless the last full read is more recent than this (live sync reads often).
    pub gap: chrono::Duration,
    /// A cursor older than this (server clock) gets a full read.
    pub after: chrono::Duration,
}

impl Default for FullReads {
    fn default() -> Self {
        FullReads {
            overlap: chrono::Duration::minutes(2),
            every: 10,
            gap: chrono::Duration::minutes(10),
            after: chrono::Duration::hours(1),
        }
    }
}

impl CursorState {
    /// A fresh cursor after a full read that began at `read_at` (server) / `read_local`.
    pub(crate) fn after_full_read(
        read_at: DateTime<Utc>,
        read_local: DateTime<Utc>,
        scope: &SnapshotScope,
        spaces: impl IntoIterator<Item = IpamId>,
    ) -> Self {
        CursorState {
            read_at,
            full_at: read_at,
            reads_since_full: 0,
            scope: scope_digest(scope),
            spaces: spaces.into_iter().collect(),
            read_local: Some(read_local),
        }
    }

    /// The cursor after an incremental read that began at `now` / `read_local`.
    pub(crate) fn next(
        self,
        now: DateTime<Utc>,
        read_local: DateTime<Utc>,
        spaces: BTreeSet<IpamId>,
    ) -> Self {
        CursorState {
            read_at: now,
            full_at: self.full_at,
            reads_since_full: self.reads_since_full + 1,
            scope: self.scope,
            spaces,
            read_local: Some(read_local),
        }
    }

    pub(crate) fn encode(&self, tag: &str) -> Cursor {
        Cursor(format!(
            "{tag}{}",
            serde_json::to_string(self).unwrap_or_default()
        ))
    }

    /// The state in a cursor this provider (`tag`) issued for `scope`; `None` for anything else.
    pub(crate) fn decode(cursor: &Cursor, tag: &str) -> Option<Self> {
        serde_json::from_str(cursor.0.strip_prefix(tag)?).ok()
    }

    pub(crate) fn decode_for(cursor: &Cursor, tag: &str, scope: &SnapshotScope) -> Option<Self> {
        Self::decode(cursor, tag).filter(|c| c.scope == scope_digest(scope))
    }

    /// Whether the read starting at server time `now` must be full.
    pub(crate) fn full_due(&self, now: DateTime<Utc>, policy: &FullReads) -> bool {
        (self.reads_since_full + 1 >= policy.every && now - self.full_at > policy.gap)
            || now - self.full_at > policy.after
            // The server's clock went back: its timestamps cannot be compared with ours.
            || now < self.read_at
    }

    /// The address spaces among `spaces` (read now, their containers' JSON in `raw`) that are
    /// new since the previous read or were updated at or after `since`; a container whose
    /// update time cannot be read counts as updated.
    pub(crate) fn changed_spaces(
        &self,
        spaces: Vec<AddressSpace>,
        raw: &[serde_json::Value],
        since: DateTime<Utc>,
    ) -> Vec<AddressSpace> {
        let updated: HashMap<String, Option<DateTime<Utc>>> = raw
            .iter()
            .filter_map(|v| {
                let at = crate::ipam::drf::str_of(v, "last_updated")
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&Utc));
                crate::ipam::drf::id_of(v).map(|id| (id, at))
            })
            .collect();
        spaces
            .into_iter()
            .filter(|s| {
                !self.spaces.contains(&s.id)
                    || updated
                        .get(s.id.as_str())
                        .copied()
                        .flatten()
                        .is_none_or(|t| t >= since)
            })
            .collect()
    }

    /// Objects changed at or after this time are read again.
    pub(crate) fn since(&self, policy: &FullReads) -> DateTime<Utc> {
        self.read_at - policy.overlap
    }
}

/// A full read's snapshot with the cursor that later reads start from (`tag`: the provider's).
pub(crate) fn full_snapshot(
    tag: &str,
    read_at: DateTime<Utc>,
    read_local: DateTime<Utc>,
    scope: &SnapshotScope,
    spaces: Vec<AddressSpace>,
    subnets: Vec<IpamSubnet>,
    ranges: Vec<IpRange>,
) -> IpamSnapshot {
    let state = CursorState::after_full_read(
        read_at,
        read_local,
        scope,
        spaces.iter().map(|s| s.id.clone()),
    );
    IpamSnapshot {
        cursor: Some(state.encode(tag)),
        spaces,
        subnets,
        ranges,
    }
}

/// Leaves out of `deleted` what the same read found again (an object deleted and made again, or
/// re-read, within the look-back is reported by its latest state), sorted and once each.
pub(crate) fn settle_deleted(
    deleted: &mut Vec<(IpamKind, IpamId)>,
    subnets: &[IpamSubnet],
    ranges: &[IpRange],
) {
    let upserted: HashSet<(IpamKind, &IpamId)> = subnets
        .iter()
        .map(|s| (IpamKind::Subnet, &s.id))
        .chain(ranges.iter().map(|r| (IpamKind::Range, &r.id)))
        .collect();
    deleted.retain(|(kind, id)| !upserted.contains(&(*kind, id)));
    deleted.sort();
    deleted.dedup();
}

pub(crate) fn scope_digest(scope: &SnapshotScope) -> String {
    let text = serde_json::to_string(scope).unwrap_or_default();
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

/// A server time as the list filters take it (microseconds, UTC).
pub(crate) fn watermark(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The address spaces of the mapping that a scope selects.
pub(crate) fn spaces_in_scope(
    spaces: Vec<AddressSpace>,
    scope: &SnapshotScope,
) -> Vec<AddressSpace> {
    match scope {
        SnapshotScope::All => spaces,
        SnapshotScope::LogicalNetworks(names) => {
            let provider_ids: HashSet<IpamId> = spaces
                .iter()
                .filter(|s| s.kind == AddressSpaceKind::Provider)
                .filter(|s| match &s.vmm_logical_network {
                    Some(ln) => names.contains(ln),
                    // A cleared VMM Logical Network field keeps the space visible by its name,
                    // so the console can see the broken link.
                    None => names.contains(&s.name),
                })
                .map(|s| s.id.clone())
                .collect();
            spaces
                .into_iter()
                .filter(|s| match s.kind {
                    AddressSpaceKind::Provider => provider_ids.contains(&s.id),
                    AddressSpaceKind::Customer => {
                        s.provider_space
                            .as_ref()
                            .is_some_and(|p| provider_ids.contains(p))
                            || s.vmm_logical_network
                                .as_ref()
                                .is_some_and(|ln| names.contains(ln))
                    }
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(id: &str, kind: AddressSpaceKind, name: &str) -> AddressSpace {
        AddressSpace::new(id, name, kind)
    }

    #[test]
    fn cursor_round_trips_and_rejects_foreign_strings() {
        let state = CursorState {
            read_at: Utc::now(),
            full_at: Utc::now(),
            reads_since_full: 3,
            scope: scope_digest(&SnapshotScope::All),
            spaces: [IpamId::from("a")].into(),
            read_local: Some(Utc::now()),
        };
        assert_eq!(
            CursorState::decode(&state.encode("x:"), "x:"),
            Some(state.clone())
        );
        assert_eq!(CursorState::decode(&state.encode("x:"), "y:"), None);
        assert_eq!(CursorState::decode(&Cursor("42".into()), "x:"), None);
        let other = SnapshotScope::LogicalNetworks(["Prod".to_string()].into());
        assert_eq!(
            CursorState::decode_for(&state.encode("x:"), "x:", &other),
            None
        );
    }

    #[test]
    fn a_full_read_is_due_every_nth_read_when_old_and_when_the_clock_went_back() {
        let policy = FullReads {
            overlap: chrono::Duration::minutes(2),
            every: 3,
            gap: chrono::Duration::minutes(10),
            after: chrono::Duration::hours(1),
        };
        let t0 = Utc::now();
        let mut c = CursorState::after_full_read(t0, t0, &SnapshotScope::All, []);
        assert!(!c.full_due(t0 + chrono::Duration::seconds(5), &policy));
        c = c.next(t0 + chrono::Duration::seconds(5), t0, BTreeSet::new());
        c = c.next(t0 + chrono::Duration::seconds(10), t0, BTreeSet::new());
        // The third read since the full one, but the full read is recent.
        assert!(!c.full_due(t0 + chrono::Duration::seconds(15), &policy));
        assert!(c.full_due(t0 + chrono::Duration::minutes(11), &policy));
        assert!(c.full_due(t0 + chrono::Duration::minutes(61), &policy));
        assert!(c.full_due(t0, &policy), "the server's clock went back");
        assert_eq!(
            c.since(&policy),
            t0 + chrono::Duration::seconds(10) - chrono::Duration::minutes(2)
        );
    }

    #[test]
    fn scope_keeps_linked_and_broken_link_spaces() {
        let mut prod = space("1", AddressSpaceKind::Provider, "Prod");
        prod.vmm_logical_network = Some("Prod".into());
        let broken = space("2", AddressSpaceKind::Provider, "Dev");
        let other = space("3", AddressSpaceKind::Provider, "Lab");
        let mut tenant = space("4", AddressSpaceKind::Customer, "T");
        tenant.provider_space = Some("1".into());
        let scope = SnapshotScope::LogicalNetworks(["Prod".to_string(), "Dev".to_string()].into());
        let kept: Vec<IpamId> = spaces_in_scope(vec![prod, broken, other, tenant], &scope)
            .into_iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(kept, vec!["1", "2", "4"]);
    }
}
