//! The base after a sync: what both sides now agree on, for the next three-way merge.

use std::collections::BTreeMap;

use super::projection::project_both;
use crate::fabric::model::{Fabric, NetworkService};
use crate::ipam::model::IpamSnapshot;
use crate::sync::normal::BaseState;

pub fn agreed_base(
    fabric: &Fabric,
    service: &NetworkService,
    ipam: &IpamSnapshot,
    old: &BaseState,
) -> BaseState {
    let (cview, iview) = project_both(fabric, &service.scope, ipam, old);
    let c = &cview.values;
    let i = &iview.values;
    let mut base = BaseState::default();
    fn agree<K: Ord + Clone, V: Clone + PartialEq>(
        c: &BTreeMap<K, V>,
        i: &BTreeMap<K, V>,
        old: &BTreeMap<K, V>,
        out: &mut BTreeMap<K, V>,
    ) {
        for (k, cv) in c {
            match i.get(k) {
                Some(iv) if iv == cv => {
                    out.insert(k.clone(), cv.clone());
                }
                Some(_) => {
                    if let Some(o) = old.get(k) {
                        out.insert(k.clone(), o.clone());
                    }
                }
                None => {}
            }
        }
        // Present on one side only: a deletion not yet carried over (it failed, or it waits
        // for the operator's decision against a change on the other side). The base keeps it
        // so the next sync sees the same deletion again, never an object to import afresh.
        for (k, o) in old {
            if !out.contains_key(k) && c.contains_key(k) != i.contains_key(k) {
                out.insert(k.clone(), o.clone());
            }
        }
    }
    macro_rules! agree_each {
        ($($kind:ident),*) => {
            $(agree(&c.$kind, &i.$kind, &old.values.$kind, &mut base.values.$kind);)*
        };
    }
    agree_each!(lns, sites, subnets, pools, vmns, vm_pools);
    // Orphaned networks stay in the base so the next sync still knows the link was broken.
    for ln in &iview.broken_links {
        if let Some(v) = old.values.lns.get(ln)
            && c.lns.contains_key(ln)
        {
            base.values.lns.insert(*ln, v.clone());
            for (k, s) in old.values.subnets.iter().filter(|(k, _)| k.0 == *ln) {
                base.values.subnets.insert(*k, s.clone());
            }
        }
    }
    base.ids = iview.ids;
    base
}
