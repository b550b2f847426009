//! The host-group tree picker: the host groups a network service integrates, or all of them.
//! The wizard's Host Group page and the service's Properties both show it.

use std::collections::BTreeSet;
use std::sync::Arc;

use iced::widget::{checkbox, column, container, row, scrollable, space};
use iced::{Element, Length};

use crate::fabric::model::{Fabric, HostGroupScope, Id};
use crate::ui::widget::style;

#[derive(Debug, Clone)]
pub struct HostGroupTree {
    pub all: bool,
    pub selected: BTreeSet<Id>,
    expanded: BTreeSet<Id>,
    fabric: Arc<Fabric>,
}

#[derive(Debug, Clone)]
pub enum Message {
    All(bool),
    Toggle(Id, bool),
    Expand(Id),
}

impl HostGroupTree {
    pub fn new(fabric: Arc<Fabric>) -> Self {
        let expanded = fabric.root_host_group().map(|r| r.id).into_iter().collect();
        HostGroupTree {
            all: false,
            selected: BTreeSet::new(),
            expanded,
            fabric,
        }
    }

    pub fn from_scope(fabric: Arc<Fabric>, scope: &HostGroupScope) -> Self {
        let mut page = Self::new(fabric);
        match scope {
            HostGroupScope::All => page.all = true,
            HostGroupScope::Selected(groups) => {
                page.selected = groups.clone();
                for g in groups {
                    for a in page.fabric.host_group_ancestors(*g).into_iter().skip(1) {
                        page.expanded.insert(a);
                    }
                }
            }
        }
        page
    }

    pub fn set_fabric(&mut self, fabric: Arc<Fabric>) {
        self.selected.retain(|g| fabric.host_groups.contains_key(g));
        self.fabric = fabric;
    }

    pub fn scope(&self) -> HostGroupScope {
        if self.all {
            HostGroupScope::All
        } else {
            HostGroupScope::Selected(self.selected.clone())
        }
    }

    /// "All host groups", or the selected groups' paths.
    pub fn describe(&self) -> String {
        if self.all {
            return "All host groups".into();
        }
        let mut paths: Vec<String> = self
            .selected
            .iter()
            .map(|g| self.fabric.host_group_path(*g))
            .collect();
        paths.sort();
        paths.join("; ")
    }

    pub fn update(&mut self, message: Message) {
        match message {
            Message::All(on) => self.all = on,
            Message::Toggle(id, on) => {
                if on {
                    self.selected.insert(id);
                } else {
                    self.selected.remove(&id);
                }
            }
            Message::Expand(id) => {
                if !self.expanded.remove(&id) {
                    self.expanded.insert(id);
                }
            }
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.all || !self.selected.is_empty() {
            Ok(())
        } else {
            Err("Select at least one host group, or All host groups.".into())
        }
    }

    pub fn is_dirty(&self) -> bool {
        self.all || !self.selected.is_empty()
    }

    /// The checkbox tree with "All host groups" above it.
    pub fn checklist(&self) -> Element<'_, Message> {
        let mut rows = column![
            checkbox(self.all)
                .label("All host groups")
                .text_size(style::TEXT)
                .on_toggle(Message::All)
        ]
        .spacing(2);
        if let Some(root) = self.fabric.root_host_group() {
            self.push_group(&mut rows, root.id, 0);
        }
        container(scrollable(rows.padding(6)).height(Length::Fill))
            .height(Length::Fill)
            .width(Length::Fill)
            .style(style::pane)
            .into()
    }

    fn push_group<'a>(&'a self, rows: &mut iced::widget::Column<'a, Message>, id: Id, depth: u16) {
        let Some(group) = self.fabric.host_groups.get(&id) else {
            return;
        };
        let children = self.fabric.host_group_children(id);
        let expanded = self.expanded.contains(&id);
        let expander = style::expander(
            expanded,
            (!children.is_empty()).then_some(Message::Expand(id)),
        );
        let on_toggle = (!self.all).then_some(move |on| Message::Toggle(id, on));
        let line = row![
            space().width(f32::from(depth) * 16.0),
            expander,
            checkbox(self.all || self.selected.contains(&id))
                .label(group.name.clone())
                .text_size(style::TEXT)
                .on_toggle_maybe(on_toggle),
        ]
        .spacing(2)
        .align_y(iced::Alignment::Center);
        // `rows` is rebuilt by value since Column::push consumes it.
        let taken = std::mem::replace(rows, column![]);
        *rows = taken.push(line);
        if expanded {
            for child in children {
                self.push_group(rows, child.id, depth + 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::test_fabric::with_seattle;

    #[test]
    fn needs_a_group_or_all() {
        let (fabric, _, child) = with_seattle();
        let mut page = HostGroupTree::new(Arc::new(fabric));
        assert!(
            page.validate()
                .unwrap_err()
                .contains("at least one host group")
        );
        page.update(Message::Toggle(child, true));
        assert_eq!(page.validate(), Ok(()));
        assert_eq!(page.describe(), "All Hosts/Seattle");
        page.update(Message::Toggle(child, false));
        page.update(Message::All(true));
        assert_eq!(page.scope(), HostGroupScope::All);
    }
}
