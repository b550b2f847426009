//! The preview's counts: how many objects of each type a sync creates, updates and deletes on
//! each side.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::AddAssign;

use serde::{Deserialize, Serialize};

use crate::ipam::model::OpVerb;

/// Which side a planned change lands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Side {
    Console,
    Ipam,
}

/// The object types the plan counts, on either side.
///
/// Variants are in the alphabetical order of their labels: tables list types in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ObjectType {
    CustomerSpace,
    Range,
    Subnet,
    CustomerSubnet,
    LogicalNetwork,
    NetworkSite,
    ProviderSpace,
    IpPool,
    VmNetwork,
}

impl ObjectType {
    pub fn label(self) -> &'static str {
        match self {
            ObjectType::CustomerSpace => "Customer IP address spaces",
            ObjectType::Range => "IP address ranges",
            ObjectType::Subnet => "IP address subnets",
            ObjectType::CustomerSubnet => "IP address subnets (customer)",
            ObjectType::LogicalNetwork => "Logical networks",
            ObjectType::NetworkSite => "Network sites",
            ObjectType::ProviderSpace => "Provider IP address spaces",
            ObjectType::IpPool => "Static IP address pools",
            ObjectType::VmNetwork => "VM networks",
        }
    }
}

impl fmt::Display for ObjectType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad` so that width and alignment in format strings apply to the label.
        f.pad(self.label())
    }
}

/// Creates, updates and deletes of one object type on one side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub create: u32,
    pub update: u32,
    pub delete: u32,
}

impl Counts {
    pub fn add(&mut self, verb: OpVerb) {
        match verb {
            OpVerb::Create => self.create += 1,
            OpVerb::Update => self.update += 1,
            OpVerb::Delete => self.delete += 1,
        }
    }
    pub fn total(&self) -> u32 {
        self.create + self.update + self.delete
    }
    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }
}

impl AddAssign for Counts {
    fn add_assign(&mut self, other: Counts) {
        self.create += other.create;
        self.update += other.update;
        self.delete += other.delete;
    }
}

/// Counts per (side, object type): the preview's table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanSummary {
    pub counts: BTreeMap<(Side, ObjectType), Counts>,
    pub conflicts: u32,
    pub orphans: u32,
}

impl PlanSummary {
    pub fn is_empty(&self) -> bool {
        self.counts.values().all(Counts::is_empty)
    }
    pub fn total(&self, side: Side) -> Counts {
        let mut t = Counts::default();
        for c in self
            .counts
            .iter()
            .filter(|((s, _), _)| *s == side)
            .map(|(_, c)| c)
        {
            t += *c;
        }
        t
    }
    /// Count one planned change.
    pub fn count(&mut self, side: Side, object: ObjectType, verb: OpVerb) {
        self.counts.entry((side, object)).or_default().add(verb);
    }
}
