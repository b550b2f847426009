//! The three-way merge: console fabric (in scope) × IPAM snapshot × stored base → `SyncPlan`.

mod base;
mod conflict;
mod deletion_rules;
mod field_text;
mod merge;
mod parts;
mod projection;
mod summary;
mod to_console;
mod to_ipam;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::normal::BaseState;
use crate::fabric::model::{Fabric, FabricChange, HostGroupScope, Id, NetworkService};
use crate::ipam::model::{IpamOp, IpamSnapshot, OpVerb};

pub use base::agreed_base;
pub use conflict::{Conflict, ConflictKey, Resolution};
pub use field_text::FieldText;
pub use parts::{Parts, Touched, join_base};
pub use projection::{ConsoleView, IpamView, project_both, project_console, project_ipam};
pub use summary::{Counts, ObjectType, PlanSummary, Side};

/// Namespace for ids derived from IPAM objects, so a preview and the following sync agree.
const DERIVED_IDS: Uuid = Uuid::from_u128(0x6f1c_2d7e_8a94_4b1f_9c3e_5d20_71a8_e44b);

pub fn derived_id(what: &str) -> Id {
    Uuid::new_v5(&DERIVED_IDS, what.as_bytes())
}

/// Everything the planner reads.
pub struct PlanInput<'a> {
    pub fabric: &'a Fabric,
    pub service: &'a NetworkService,
    pub ipam: &'a IpamSnapshot,
    /// False when the IPAM side could not be read completely: then nothing is deleted.
    pub ipam_complete: bool,
    pub base: &'a BaseState,
    /// Decisions keyed by the text of their `ConflictKey`, as stored.
    pub resolutions: &'a BTreeMap<String, Resolution>,
}

/// What one sync will do.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncPlan {
    /// In dependency order: deletes (ranges → subnets → spaces), then creates/updates
    /// (spaces → subnets → ranges).
    pub ipam_ops: Vec<IpamOp>,
    /// One store transaction.
    pub console_changes: Vec<FabricChange>,
    pub conflicts: Vec<Conflict>,
    /// Logical networks whose VMM Logical Network name was deleted in IPAM.
    pub orphans: Vec<Id>,
    pub summary: PlanSummary,
}

impl SyncPlan {
    pub fn is_noop(&self) -> bool {
        self.ipam_ops.is_empty() && self.console_changes.is_empty()
    }
}

/// Plan one sync of one service.
pub fn plan(input: &PlanInput) -> SyncPlan {
    let PlanInput {
        fabric,
        service,
        ipam,
        ipam_complete,
        base,
        resolutions,
    } = *input;
    let (cview, iview) = projection::project_both(fabric, &service.scope, ipam, base);
    let c = &cview.values;
    let i = &iview.values;

    let mut merged = merge::merge(&base.values, c, i, resolutions);
    let orphans = deletion_rules::apply(&mut merged, &cview, &iview, &base.values, ipam_complete);

    let mut plan = SyncPlan {
        conflicts: merged.conflicts,
        orphans,
        ..SyncPlan::default()
    };
    let scope_groups: Vec<Id> = match &service.scope {
        HostGroupScope::All => fabric
            .root_host_group()
            .map(|g| vec![g.id])
            .unwrap_or_default(),
        HostGroupScope::Selected(s) => s.iter().copied().collect(),
    };
    plan.console_changes =
        to_console::changes(fabric, c, &merged.console, &scope_groups, &mut plan.summary);
    plan.ipam_ops = to_ipam::ops(
        ipam,
        &iview,
        c,
        &merged.ipam,
        service,
        &mut plan.summary,
        &mut plan.conflicts,
    );
    if !ipam_complete {
        plan.ipam_ops.retain(|op| op.verb() != OpVerb::Delete);
        plan.console_changes
            .retain(|ch| !matches!(ch, FabricChange::Delete(..)));
    }
    plan.summary.conflicts = plan.conflicts.iter().filter(|c| !c.put_back).count() as u32;
    plan.summary.orphans = plan.orphans.len() as u32;
    plan
}

/// The plan of the touched parts only, with what recording its result needs.
pub struct PartPlan {
    pub plan: SyncPlan,
    /// The base of the touched parts, and of the rest (kept as it is).
    pub inside: BaseState,
    pub rest: BaseState,
}

/// Plans only the parts `parts` holds: when both sides agreed before the touched objects
/// changed, this is the plan of the whole (see `parts`). `input.base` is not read: `base` is
/// the stored base, split into the touched parts and the rest without copying the rest.
pub fn plan_parts(input: &PlanInput, mut base: BaseState, parts: &Parts) -> PartPlan {
    let fabric = parts.fabric(input.fabric);
    let ipam = parts.ipam(input.ipam);
    let inside = parts.split_base(&mut base);
    let plan = plan(&PlanInput {
        fabric: &fabric,
        ipam: &ipam,
        base: &inside,
        ..*input
    });
    PartPlan {
        plan,
        inside,
        rest: base,
    }
}

/// What both sides now agree on in the parts a sync planned, after it carried out its plan
/// (whose creations `parts` must hold: see [`Parts::add_created`]).
pub fn agreed_part(
    parts: &Parts,
    fabric: &Fabric,
    service: &NetworkService,
    ipam: &IpamSnapshot,
    inside: &BaseState,
) -> BaseState {
    agreed_base(&parts.fabric(fabric), service, &parts.ipam(ipam), inside)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod proptests;
