//! The seed's deletion rules applied to the merged targets, and keeping each target consistent.

use std::collections::BTreeSet;

use super::conflict::Conflict;
use super::merge::Merged;
use super::projection::{ConsoleView, IpamView};
use crate::fabric::model::{Id, ObjectKind};
use crate::sync::normal::{Normalized, SubnetKey};

/// Apply the deletion rules and make both targets consistent; returns the orphaned networks.
pub(super) fn apply(
    m: &mut Merged,
    cview: &ConsoleView,
    iview: &IpamView,
    b: &Normalized,
    ipam_complete: bool,
) -> Vec<Id> {
    let c = &cview.values;
    if ipam_complete {
        for ln in &lns_deleted_in_ipam(b, c, iview) {
            m.console.remove_sites_of(*ln);
            m.ipam.remove_sites_of(*ln);
            if !cview.partly_out_of_scope.contains(ln) {
                m.console.remove_network(*ln);
                m.ipam.remove_network(*ln);
            }
        }
    }
    let (orphans, frozen) = orphan_broken_links(m, c, iview, b);
    // Keep each side consistent: children follow their parents.
    make_consistent(&mut m.console, &frozen);
    make_consistent(&mut m.ipam, &frozen);
    orphans
}

/// Seed rule 1: every subnet of a logical network deleted in IPAM while its VMM Logical
/// Network name stays → the logical network is deleted in the console.
fn lns_deleted_in_ipam(b: &Normalized, c: &Normalized, iview: &IpamView) -> BTreeSet<Id> {
    let i = &iview.values;
    let base_with_subnets: BTreeSet<Id> = b.subnets.keys().map(|(l, _)| *l).collect();
    let ipam_with_subnets: BTreeSet<Id> = i.subnets.keys().map(|(l, _)| *l).collect();
    b.lns
        .keys()
        .filter(|ln| {
            let had_subnets = base_with_subnets.contains(ln);
            let linked = iview.ids.spaces.contains_key(ln) && i.lns.contains_key(ln);
            let has_now = ipam_with_subnets.contains(ln);
            had_subnets && linked && !has_now && c.lns.contains_key(ln)
        })
        .copied()
        .collect()
}

/// Seed rule 2: the VMM Logical Network name deleted in IPAM → nothing is deleted; the
/// logical network is orphaned until an administrator deletes its sites and the network.
/// Returns the orphans in order and the set of networks left untouched.
fn orphan_broken_links(
    m: &mut Merged,
    c: &Normalized,
    iview: &IpamView,
    b: &Normalized,
) -> (Vec<Id>, BTreeSet<Id>) {
    let i = &iview.values;
    let mut orphans = Vec::new();
    let mut frozen = BTreeSet::new();
    for ln in &iview.broken_links {
        if c.lns.contains_key(ln) {
            orphans.push(*ln);
            frozen.insert(*ln);
        } else {
            // The administrator deleted it in the console: complete the deletion in IPAM.
            m.ipam.remove_sites_of(*ln);
            m.ipam.remove_network(*ln);
        }
    }
    for ln in &frozen {
        // Leave both sides of an orphaned network exactly as they are.
        restore(&mut m.console, c, *ln);
        restore(&mut m.ipam, i, *ln);
        m.conflicts.retain(|x| !conflict_in_ln(x, *ln, c, i, b));
    }
    (orphans, frozen)
}

/// Put back one network's own values and those of its sites as `from` holds them.
fn restore(t: &mut Normalized, from: &Normalized, ln: Id) {
    t.lns.remove(&ln);
    if let Some(v) = from.lns.get(&ln) {
        t.lns.insert(ln, v.clone());
    }
    t.remove_sites_of(ln);
    t.sites.extend(
        from.sites
            .iter()
            .filter(|(_, s)| s.ln == ln)
            .map(|(k, v)| (*k, v.clone())),
    );
    t.subnets.extend(
        from.subnets
            .iter()
            .filter(|((l, _), _)| *l == ln)
            .map(|(k, v)| (*k, v.clone())),
    );
    t.pools.extend(
        from.pools
            .iter()
            .filter(|(_, p)| p.ln == ln)
            .map(|(k, v)| (*k, v.clone())),
    );
}

/// Is the conflict about the network or anything on its sites?
fn conflict_in_ln(x: &Conflict, ln: Id, c: &Normalized, i: &Normalized, b: &Normalized) -> bool {
    let site_ln = |s: &Id| {
        c.sites
            .get(s)
            .or(i.sites.get(s))
            .or(b.sites.get(s))
            .map(|v| v.ln)
    };
    match x.kind {
        ObjectKind::LogicalNetwork => x.object == ln,
        ObjectKind::NetworkSite | ObjectKind::Subnet => {
            site_ln(&x.object) == Some(ln) || x.key.object.contains(&ln.to_string())
        }
        ObjectKind::IpPool => {
            c.pools
                .get(&x.object)
                .or(i.pools.get(&x.object))
                .map(|p| p.ln)
                == Some(ln)
        }
        _ => false,
    }
}

/// Children follow their parents: nothing hangs under an object the target no longer holds.
fn make_consistent(t: &mut Normalized, frozen: &BTreeSet<Id>) {
    let lns: BTreeSet<Id> = t.lns.keys().chain(frozen.iter()).copied().collect();
    t.sites.retain(|_, s| lns.contains(&s.ln));
    let sites = t.sites.clone();
    t.subnets
        .retain(|(ln, _), s| sites.get(&s.site).is_some_and(|site| site.ln == *ln));
    let subnets: BTreeSet<SubnetKey> = t.subnets.keys().copied().collect();
    t.pools.retain(|_, p| subnets.contains(&(p.ln, p.subnet)));
    t.vmns.retain(|_, v| lns.contains(&v.ln));
    let vmns = &t.vmns;
    t.vm_pools.retain(|_, p| {
        vmns.get(&p.ln)
            .is_some_and(|v| v.subnets.contains(&p.subnet))
    });
}
