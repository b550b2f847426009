//! A plan people can review: per object, which side changes, how (create, update, delete), and
//! each field's value before and after; the conflicts and orphans that wait for a decision.
//! `sync --dry-run` prints it, and `--json` gives the same as a stable document
//! (`fabric-console.plan`, version 1).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::compare::{CompareRow, CompareView, RowStatus};
use super::plan::SyncPlan;
use crate::fabric::model::{FabricChange, Id};
use crate::ipam::model::IpamOp;

/// The format name of the JSON document.
pub const PLAN_FORMAT: &str = "fabric-console.plan";
/// Its version; fields are only ever added within a version.
pub const PLAN_VERSION: u32 = 1;

/// Which side a planned change is made on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeSide {
    Console,
    Ipam,
    /// Nothing is changed until the operator decides (a conflict, an orphan).
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeAction {
    Create,
    Update,
    Delete,
    /// Both sides changed the same field: the side-by-side view asks which value wins.
    Conflict,
    /// The logical network's VMM Logical Network name was cleared in IPAM.
    Orphaned,
}

/// One field's value before and after the change (`None`: the object has none on that side).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// One object the plan changes, or that waits for a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectChange {
    pub side: ChangeSide,
    pub action: ChangeAction,
    /// As the console names the object type ("Network site", "IP address pool", …).
    pub kind: String,
    pub name: String,
    /// The console object's id (for a subnet, its network site's).
    pub object: Id,
    pub fields: Vec<FieldChange>,
}

/// The reviewable plan of one network service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanReview {
    pub service: String,
    pub objects: Vec<ObjectChange>,
}

impl PlanReview {
    /// Whether a sync now would change anything or ask for a decision.
    pub fn has_changes(&self) -> bool {
        !self.objects.is_empty()
    }
}

/// The console objects a plan's operations name: what the console side changes, and what the
/// IPAM side creates or updates (by the console id it carries).
fn planned_objects(plan: &SyncPlan) -> (BTreeSet<Id>, BTreeSet<Id>, bool) {
    let console: BTreeSet<Id> = plan
        .console_changes
        .iter()
        .map(|c| match c {
            FabricChange::Put(o) => o.id(),
            FabricChange::Delete(_, id) => *id,
        })
        .collect();
    let mut ipam = BTreeSet::new();
    let mut ipam_deletes = false;
    for op in &plan.ipam_ops {
        let vmm = match op {
            IpamOp::CreateSpace(s) | IpamOp::UpdateSpace(s) => s.vmm_id,
            IpamOp::CreateSubnet(s) | IpamOp::UpdateSubnet(s) => s.vmm_id,
            IpamOp::CreateRange(r) | IpamOp::UpdateRange(r) => r.vmm_id,
            IpamOp::DeleteSpace(_) | IpamOp::DeleteSubnet(_) | IpamOp::DeleteRange(_) => {
                ipam_deletes = true;
                None
            }
        };
        ipam.extend(vmm);
    }
    (console, ipam, ipam_deletes)
}

/// The per-object review of `plan`, from the side-by-side rows it was planned with.
pub fn review(service: &str, view: &CompareView, plan: &SyncPlan) -> PlanReview {
    let (console_ids, ipam_ids, ipam_deletes) = planned_objects(plan);
    let objects = view
        .rows
        .iter()
        .filter_map(|row| {
            let (side, action) = match row.status {
                RowStatus::InSync | RowStatus::OutOfScope => return None,
                RowStatus::Conflict => (ChangeSide::None, ChangeAction::Conflict),
                RowStatus::Orphaned => (ChangeSide::None, ChangeAction::Orphaned),
                RowStatus::OnlyInConsole if console_ids.contains(&row.object) => {
                    (ChangeSide::Console, ChangeAction::Delete)
                }
                RowStatus::OnlyInConsole if ipam_ids.contains(&row.object) => {
                    (ChangeSide::Ipam, ChangeAction::Create)
                }
                RowStatus::OnlyInIpam if console_ids.contains(&row.object) => {
                    (ChangeSide::Console, ChangeAction::Create)
                }
                RowStatus::OnlyInIpam if ipam_deletes => (ChangeSide::Ipam, ChangeAction::Delete),
                RowStatus::Differs if console_ids.contains(&row.object) => {
                    (ChangeSide::Console, ChangeAction::Update)
                }
                RowStatus::Differs if ipam_ids.contains(&row.object) => {
                    (ChangeSide::Ipam, ChangeAction::Update)
                }
                // Not planned (e.g. made in IPAM by hand and kept there): nothing changes.
                _ => return None,
            };
            Some(object_change(row, side, action))
        })
        .collect();
    PlanReview {
        service: service.to_string(),
        objects,
    }
}

fn object_change(row: &CompareRow, side: ChangeSide, action: ChangeAction) -> ObjectChange {
    let value = |cell: Option<&super::compare::Cell>, field: &str| {
        cell.and_then(|c| c.fields.iter().find(|(f, _)| f == field))
            .map(|(_, v)| v.clone())
    };
    let (console, ipam) = (row.console.as_ref(), row.ipam.as_ref());
    // The side that changes goes from its value to the other side's.
    let (from, to) = match side {
        ChangeSide::Ipam => (ipam, console),
        _ => (console, ipam),
    };
    let labels: Vec<String> = match action {
        ChangeAction::Update => row.changed.clone(),
        ChangeAction::Create | ChangeAction::Delete => from
            .or(to)
            .map(|c| c.fields.iter().map(|(f, _)| f.clone()).collect())
            .unwrap_or_default(),
        ChangeAction::Conflict | ChangeAction::Orphaned => Vec::new(),
    };
    let fields = if action == ChangeAction::Conflict {
        // The conflict's own values: the console's and the IPAM server's.
        row.conflicts
            .iter()
            .map(|c| FieldChange {
                field: c.field.clone(),
                before: Some(c.console.clone()),
                after: Some(c.ipam.clone()),
            })
            .collect()
    } else {
        labels
            .iter()
            .map(|f| FieldChange {
                field: f.clone(),
                before: value(from, f),
                after: value(to, f),
            })
            .collect()
    };
    ObjectChange {
        side,
        action,
        kind: row.kind.mapping().0.to_string(),
        name: console
            .or(ipam)
            .map(|c| c.title.clone())
            .unwrap_or_default(),
        object: row.object,
        fields,
    }
}

/// The JSON document `sync --dry-run --json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanDocument {
    pub format: String,
    pub version: u32,
    pub services: Vec<ServicePlan>,
}

/// One service's entry: its review, or why it could not be planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicePlan {
    pub service: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub objects: Vec<ObjectChange>,
}

impl PlanDocument {
    pub fn new(services: Vec<ServicePlan>) -> Self {
        PlanDocument {
            format: PLAN_FORMAT.to_string(),
            version: PLAN_VERSION,
            services,
        }
    }
}

/// One line per object and one per changed field, as `sync --dry-run` prints them:
/// `~ IPAM      Network site "Seattle"` then `      VLAN: 10 → 77`.
pub fn text_lines(review: &PlanReview) -> Vec<String> {
    review.objects.iter().flat_map(object_lines).collect()
}

impl ObjectChange {
    /// Whether the object's type, name or a changed field's name holds `needle` (lower case).
    pub fn matches(&self, needle: &str) -> bool {
        needle.is_empty()
            || self.kind.to_lowercase().contains(needle)
            || self.name.to_lowercase().contains(needle)
            || self
                .fields
                .iter()
                .any(|f| f.field.to_lowercase().contains(needle))
    }
}

/// The lines of one object: its own, then one per field.
pub fn object_lines(o: &ObjectChange) -> Vec<String> {
    let mut out = Vec::new();
    let mark = match o.action {
        ChangeAction::Create => '+',
        ChangeAction::Update => '~',
        ChangeAction::Delete => '-',
        ChangeAction::Conflict | ChangeAction::Orphaned => '!',
    };
    let side = match (o.side, o.action) {
        (ChangeSide::Console, _) => "console ".to_string(),
        (ChangeSide::Ipam, _) => "IPAM    ".to_string(),
        (ChangeSide::None, ChangeAction::Orphaned) => "orphaned".to_string(),
        (ChangeSide::None, _) => "conflict".to_string(),
    };
    out.push(format!("  {mark} {side} {} \"{}\"", o.kind, o.name));
    for f in &o.fields {
        let v = |x: &Option<String>| x.clone().unwrap_or_else(|| "(none)".into());
        let line = match o.action {
            // What is made or removed: its values, those it has.
            ChangeAction::Create | ChangeAction::Delete => {
                let value = if o.action == ChangeAction::Create {
                    &f.after
                } else {
                    &f.before
                };
                match value.as_deref() {
                    None | Some("") | Some("—") => continue,
                    Some(v) => format!("      {}: {v}", f.field),
                }
            }
            ChangeAction::Conflict => {
                format!(
                    "      {}: console {} / IPAM {}",
                    f.field,
                    v(&f.before),
                    v(&f.after)
                )
            }
            _ => format!("      {}: {} → {}", f.field, v(&f.before), v(&f.after)),
        };
        out.push(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fabric::model::ObjectKind;
    use crate::sync::compare::{Cell, RowKind};

    fn cell(title: &str, vlan: &str) -> Option<Cell> {
        Some(Cell {
            title: title.into(),
            detail: String::new(),
            fields: vec![("VLAN".into(), vlan.into())],
        })
    }

    fn row(
        object: u128,
        status: RowStatus,
        console: Option<Cell>,
        ipam: Option<Cell>,
    ) -> CompareRow {
        CompareRow {
            kind: RowKind::Subnet,
            object: Id::from_u128(object),
            console,
            ipam,
            status,
            changed: vec!["VLAN".into()],
            conflicts: Vec::new(),
            search: String::new(),
        }
    }

    #[test]
    fn each_row_gets_the_side_and_action_its_plan_names() {
        let view = CompareView {
            rows: vec![
                row(1, RowStatus::InSync, cell("a", "1"), cell("a", "1")),
                row(2, RowStatus::OnlyInIpam, None, cell("b", "2")),
                row(3, RowStatus::OnlyInConsole, cell("c", "3"), None),
                row(4, RowStatus::Differs, cell("d", "4"), cell("d", "40")),
                row(5, RowStatus::Conflict, cell("e", "5"), cell("e", "50")),
            ],
            counts: Default::default(),
        };
        let plan = SyncPlan {
            ipam_ops: vec![IpamOp::DeleteSubnet("ipam-b".into())],
            console_changes: vec![FabricChange::Delete(
                ObjectKind::NetworkSite,
                Id::from_u128(3),
            )],
            ..Default::default()
        };
        let r = review("ipam1", &view, &plan);
        let shape: Vec<(u128, ChangeSide, ChangeAction)> = r
            .objects
            .iter()
            .map(|o| (o.object.as_u128(), o.side, o.action))
            .collect();
        // Row 4 differs, but this plan changes neither side of it: not listed.
        assert_eq!(
            shape,
            [
                (2, ChangeSide::Ipam, ChangeAction::Delete),
                (3, ChangeSide::Console, ChangeAction::Delete),
                (5, ChangeSide::None, ChangeAction::Conflict),
            ]
        );
        let deleted = &r.objects[0];
        assert_eq!(
            deleted.fields,
            [FieldChange {
                field: "VLAN".into(),
                before: Some("2".into()),
                after: None
            }]
        );
        let lines = text_lines(&r);
        assert_eq!(lines[0], "  - IPAM     IP address subnet \"b\"");
        assert_eq!(lines[1], "      VLAN: 2");
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("  ! conflict IP address subnet \"e\""))
        );
    }
}
