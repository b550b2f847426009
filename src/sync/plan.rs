//! The three-way merge: console fabric (in scope) × IPAM snapshot × stored base → `SyncPlan`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::fabric::model::{FabricChange, Id, ObjectKind};
use crate::ipam::model::IpamOp;

/// How an operator decides a conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Resolution {
    KeepConsole,
    TakeIpam,
}

/// A field changed differently on both sides since the base. Never guessed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// Stable key: "<kind>:<console id or subnet key>:<field>".
    pub key: String,
    pub kind: ObjectKind,
    /// The console object (for subnets: the network site).
    pub object: Id,
    pub object_name: String,
    pub field: String,
    pub base: String,
    pub console: String,
    pub ipam: String,
    /// VM networks are console → IPAM only: an IPAM-side change is reported and put back.
    pub put_back: bool,
}

/// Which side a planned change lands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Side {
    Console,
    Ipam,
}

/// Counts per (side, kind): the preview's table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanSummary {
    /// (side, object kind label) → [create, update, delete]
    pub counts: BTreeMap<(Side, String), [u32; 3]>,
    pub conflicts: u32,
    pub orphans: u32,
}

impl PlanSummary {
    pub fn is_empty(&self) -> bool {
        self.counts.values().all(|c| c.iter().all(|n| *n == 0))
    }
    pub fn total(&self, side: Side) -> [u32; 3] {
        let mut t = [0; 3];
        for ((s, _), c) in &self.counts {
            if *s == side {
                for i in 0..3 {
                    t[i] += c[i];
                }
            }
        }
        t
    }
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
