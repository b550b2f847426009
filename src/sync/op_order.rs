//! What the planner and the applier both know about an IPAM operation: its dependency phase, the
//! parent it refers to, and how its ids follow the ids the server gave to earlier creates.

use std::collections::HashMap;

use crate::ipam::model::{AddressSpaceKind, IpamId, IpamOp};

/// Ordering and reference knowledge of an IPAM operation, kept beside the sync that relies on it.
pub trait OpOrder {
    /// Dependency phase: deletes of ranges, subnets, spaces, then creates/updates of provider
    /// spaces, customer spaces, subnets, ranges.
    fn phase(&self) -> u8;
    /// The id of the parent object the operation refers to, if any.
    fn parent_mut(&mut self) -> Option<&mut IpamId>;
    /// Replace a proposed parent id with the id the server gave the parent when it was created.
    fn remap_ids(&mut self, ids: &HashMap<IpamId, IpamId>);
    /// The operation as the server holds it: its object carrying the server's id.
    fn with_id(&self, id: &IpamId) -> IpamOp;
}

impl OpOrder for IpamOp {
    fn phase(&self) -> u8 {
        match self {
            IpamOp::DeleteRange(_) => 0,
            IpamOp::DeleteSubnet(_) => 1,
            IpamOp::DeleteSpace(_) => 2,
            IpamOp::CreateSpace(s) | IpamOp::UpdateSpace(s) => {
                if s.kind == AddressSpaceKind::Provider {
                    3
                } else {
                    4
                }
            }
            IpamOp::CreateSubnet(_) | IpamOp::UpdateSubnet(_) => 5,
            IpamOp::CreateRange(_) | IpamOp::UpdateRange(_) => 6,
        }
    }

    fn parent_mut(&mut self) -> Option<&mut IpamId> {
        match self {
            IpamOp::CreateSpace(s) | IpamOp::UpdateSpace(s) => s.provider_space.as_mut(),
            IpamOp::CreateSubnet(s) | IpamOp::UpdateSubnet(s) => Some(&mut s.address_space),
            IpamOp::CreateRange(r) | IpamOp::UpdateRange(r) => Some(&mut r.subnet),
            IpamOp::DeleteSpace(_) | IpamOp::DeleteSubnet(_) | IpamOp::DeleteRange(_) => None,
        }
    }

    fn remap_ids(&mut self, ids: &HashMap<IpamId, IpamId>) {
        if let Some(parent) = self.parent_mut()
            && let Some(real) = ids.get(&*parent)
        {
            *parent = real.clone();
        }
    }

    fn with_id(&self, id: &IpamId) -> IpamOp {
        let mut op = self.clone();
        match &mut op {
            IpamOp::CreateSpace(s) | IpamOp::UpdateSpace(s) => s.id = id.clone(),
            IpamOp::CreateSubnet(s) | IpamOp::UpdateSubnet(s) => s.id = id.clone(),
            IpamOp::CreateRange(r) | IpamOp::UpdateRange(r) => r.id = id.clone(),
            IpamOp::DeleteSpace(_) | IpamOp::DeleteSubnet(_) | IpamOp::DeleteRange(_) => {}
        }
        op
    }
}
