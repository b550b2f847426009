//! What deleting an object takes with it. Objects that belong to it (a logical network's sites
//! and VM networks, a site's pools, a host group's child groups) go in the same batch; objects
//! that only refer to it (sites and network services using a host group) block the deletion.

use iced::widget::{column, container, row, scrollable, space, text};
use iced::{Element, Length};

use crate::fabric::model::{Fabric, FabricChange, HostGroupScope, Id, ObjectKind};
use crate::ui::widget::style::{self, Tone};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    pub kind: ObjectKind,
    pub id: Id,
    pub name: String,
    /// Objects deleted with it, in the order they are deleted (dependents first).
    pub with: Vec<(ObjectKind, Id, String)>,
    /// Objects that use it and must let go of it first.
    pub blockers: Vec<(ObjectKind, Id, String)>,
}

fn name_of(fabric: &Fabric, kind: ObjectKind, id: Id) -> String {
    crate::fabric::store::object_of(fabric, kind, id)
        .map(|o| match o {
            crate::fabric::model::FabricObject::HostGroup(x) => x.name,
            crate::fabric::model::FabricObject::RunAsAccount(x) => x.name,
            crate::fabric::model::FabricObject::LogicalNetwork(x) => x.name,
            crate::fabric::model::FabricObject::NetworkSite(x) => x.name,
            crate::fabric::model::FabricObject::IpPool(x) => x.name,
            crate::fabric::model::FabricObject::VmNetwork(x) => x.name,
            crate::fabric::model::FabricObject::NetworkService(x) => x.name,
        })
        .unwrap_or_default()
}

impl Deletion {
    pub fn plan(fabric: &Fabric, kind: ObjectKind, id: Id) -> Self {
        let mut with = Vec::new();
        let mut blockers = Vec::new();
        match kind {
            ObjectKind::HostGroup => {
                let subtree = fabric.host_group_subtree(id);
                // Children first so no group is left without its parent.
                let mut groups: Vec<Id> = subtree.iter().copied().filter(|g| *g != id).collect();
                groups.sort_by_key(|g| std::cmp::Reverse(fabric.host_group_ancestors(*g).len()));
                for g in groups {
                    with.push((ObjectKind::HostGroup, g, fabric.host_group_path(g)));
                }
                for s in fabric.network_sites.values() {
                    if s.host_groups.iter().any(|g| subtree.contains(g)) {
                        blockers.push((ObjectKind::NetworkSite, s.id, s.name.clone()));
                    }
                }
                for n in fabric.network_services.values() {
                    if let HostGroupScope::Selected(groups) = &n.scope
                        && groups.iter().any(|g| subtree.contains(g))
                    {
                        blockers.push((ObjectKind::NetworkService, n.id, n.name.clone()));
                    }
                }
                if fabric
                    .host_groups
                    .get(&id)
                    .is_some_and(|g| g.parent.is_none())
                {
                    blockers.push((
                        ObjectKind::HostGroup,
                        id,
                        "the root of the host group tree".into(),
                    ));
                }
            }
            ObjectKind::LogicalNetwork => {
                for v in fabric.vm_networks_of(id) {
                    Self::pools_of(fabric, ObjectKind::VmNetwork, v.id, &mut with);
                    with.push((ObjectKind::VmNetwork, v.id, v.name.clone()));
                }
                for s in fabric.sites_of(id) {
                    Self::pools_of(fabric, ObjectKind::NetworkSite, s.id, &mut with);
                    with.push((ObjectKind::NetworkSite, s.id, s.name.clone()));
                }
            }
            ObjectKind::NetworkSite | ObjectKind::VmNetwork => {
                Self::pools_of(fabric, kind, id, &mut with);
            }
            _ => {
                for d in fabric.dependents(kind, id) {
                    blockers.push(d);
                }
            }
        }
        Deletion {
            kind,
            id,
            name: name_of(fabric, kind, id),
            with,
            blockers,
        }
    }

    fn pools_of(
        fabric: &Fabric,
        kind: ObjectKind,
        id: Id,
        out: &mut Vec<(ObjectKind, Id, String)>,
    ) {
        out.extend(
            fabric
                .dependents(kind, id)
                .into_iter()
                .filter(|d| d.0 == ObjectKind::IpPool),
        );
    }

    pub fn allowed(&self) -> bool {
        self.blockers.is_empty()
    }

    /// One batch: dependents first, then the object.
    pub fn changes(&self) -> Vec<FabricChange> {
        self.with
            .iter()
            .map(|(k, id, _)| FabricChange::Delete(*k, *id))
            .chain(std::iter::once(FabricChange::Delete(self.kind, self.id)))
            .collect()
    }

    /// The confirmation's text: what goes, or what stands in the way.
    pub fn view<'a, M: 'a>(&'a self) -> Element<'a, M> {
        let mut c = column![].spacing(8);
        if !self.allowed() {
            c = c.push(style::notice(
                Tone::Error,
                format!(
                    "The {} \"{}\" cannot be deleted while these use it. Remove it from them first:",
                    self.kind, self.name
                ),
            ));
            c = c.push(list(&self.blockers));
            return c.into();
        }
        if self.with.is_empty() {
            c = c.push(
                text(format!(
                    "Delete the {} \"{}\"? Nothing else depends on it.",
                    self.kind, self.name
                ))
                .size(style::TEXT),
            );
        } else {
            c = c.push(
                text(format!(
                    "Delete the {} \"{}\"? These depend on it and are deleted with it ({}):",
                    self.kind,
                    self.name,
                    self.with.len()
                ))
                .size(style::TEXT),
            );
            c = c.push(list(&self.with));
        }
        c = c.push(style::hint(
            "Network services in sync with this fabric delete the matching IPAM objects at their next sync.",
        ));
        c.into()
    }
}

fn list<'a, M: 'a>(items: &'a [(ObjectKind, Id, String)]) -> Element<'a, M> {
    let rows = column(items.iter().map(|(k, _, name)| {
        row![
            text(capitalized(k.label())).size(style::SMALL).width(170),
            text(name.clone()).size(style::TEXT),
            space().width(Length::Fill),
        ]
        .spacing(8)
        .into()
    }))
    .spacing(2)
    .padding(6);
    container(scrollable(rows).height(Length::Shrink))
        .max_height(220)
        .width(Length::Fill)
        .style(style::pane)
        .into()
}

pub fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fabric::demo::demo_fabric;
    use crate::fabric::store::FabricStore;

    #[test]
    fn a_logical_network_goes_with_everything_it_holds_in_one_valid_batch() {
        let fabric = demo_fabric(300, 3);
        let store = FabricStore::open_in_memory().expect("store");
        store
            .replace_all(fabric.clone())
            .expect("demo fabric is valid");
        let ln = fabric
            .logical_networks
            .values()
            .max_by_key(|l| fabric.dependents(ObjectKind::LogicalNetwork, l.id).len())
            .expect("a logical network")
            .id;
        let d = Deletion::plan(&fabric, ObjectKind::LogicalNetwork, ln);
        assert!(d.allowed());
        assert!(d.with.iter().any(|w| w.0 == ObjectKind::NetworkSite));
        let after = store
            .apply(&d.changes())
            .expect("the batch keeps the fabric valid");
        assert!(!after.logical_networks.contains_key(&ln));
        assert!(
            after
                .network_sites
                .values()
                .all(|s| s.logical_network != ln)
        );
    }

    #[test]
    fn a_host_group_used_by_a_site_is_blocked() {
        let fabric = demo_fabric(300, 3);
        let site = fabric.network_sites.values().next().expect("a site");
        let group = site.host_groups[0];
        let d = Deletion::plan(&fabric, ObjectKind::HostGroup, group);
        assert!(!d.allowed());
        assert!(d.blockers.iter().any(|b| b.1 == site.id));
        let root = fabric.root_host_group().expect("root").id;
        assert!(!Deletion::plan(&fabric, ObjectKind::HostGroup, root).allowed());
    }
}
