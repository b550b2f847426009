//! Create Host Group / Host Group Properties: a name and a parent in the host group tree.

use iced::Element;
use iced::widget::column;
use uuid::Uuid;

use super::form::{self, Choice, FieldErrors};
use crate::fabric::model::{Fabric, FabricObject, HostGroup, Id};
use crate::fabric::validate::{Field, validate_object};
use crate::ui::widget::style;

pub const NAME_INPUT: &str = "host-group-name";
pub const PARENT_LIST: &str = "host-group-parent";
pub const FIELDS: &[Field] = &[Field::Name, Field::Parent];

#[derive(Debug, Clone)]
pub struct Form {
    id: Id,
    /// The root has no parent and keeps none.
    is_root: bool,
    pub name: String,
    pub parent: Option<Id>,
}

#[derive(Debug, Clone)]
pub enum Message {
    Name(String),
    Parent(Choice),
}

/// Host groups by path, for the Parent list; a group cannot move under itself.
pub fn parent_choices(fabric: &Fabric, except: Option<Id>) -> Vec<Choice> {
    let below: std::collections::BTreeSet<Id> = except
        .map(|id| fabric.host_group_subtree(id))
        .unwrap_or_default();
    Choice::sorted(
        fabric
            .host_groups
            .keys()
            .filter(|id| !below.contains(id))
            .map(|id| (*id, fabric.host_group_path(*id))),
    )
}

impl Form {
    /// A new group under `parent` (or the root).
    pub fn create(fabric: &Fabric, parent: Option<Id>) -> Self {
        Form {
            id: Uuid::new_v4(),
            is_root: false,
            name: String::new(),
            parent: parent
                .filter(|p| fabric.host_groups.contains_key(p))
                .or_else(|| fabric.root_host_group().map(|r| r.id)),
        }
    }

    pub fn edit(group: &HostGroup) -> Self {
        Form {
            id: group.id,
            is_root: group.parent.is_none(),
            name: group.name.clone(),
            parent: group.parent,
        }
    }

    pub fn update(&mut self, message: Message) -> &'static str {
        match message {
            Message::Name(v) => form::typed(&mut self.name, v, "Name"),
            Message::Parent(c) => {
                self.parent = Some(c.id);
                "Parent"
            }
        }
    }

    pub fn check(&self, fabric: &Fabric) -> (Option<FabricObject>, FieldErrors) {
        let mut errors = FieldErrors::default();
        if !self.is_root {
            form::required(
                self.parent,
                &mut errors,
                "Parent",
                "Choose the host group this one belongs to.",
            );
        }
        let object = FabricObject::HostGroup(HostGroup {
            id: self.id,
            name: self.name.trim().to_string(),
            parent: self.parent,
        });
        errors.add_validation(&validate_object(fabric, &object), FIELDS);
        (Some(object), errors)
    }

    pub fn view<'a>(&'a self, fabric: &Fabric, errors: &FieldErrors) -> Element<'a, Message> {
        let mut c = column![form::text_field(
            "Name",
            NAME_INPUT,
            "e.g. Seattle",
            &self.name,
            Message::Name,
            errors,
        )]
        .spacing(10);
        if self.is_root {
            c = c.push(style::hint(
                "\"All Hosts\" is the root of the tree and has no parent.",
            ));
        } else {
            c = c.push(form::field(
                "Parent",
                form::choice_list(
                    PARENT_LIST,
                    parent_choices(fabric, Some(self.id)),
                    self.parent,
                    Message::Parent,
                    None,
                ),
                errors.get("Parent"),
            ));
        }
        c.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duplicate_sibling_name_is_refused_at_the_name() {
        let (fabric, root, seattle) = crate::ui::test_fabric::with_seattle();
        let mut form = Form::create(&fabric, None);
        form.update(Message::Name("seattle".into()));
        let (_, errors) = form.check(&fabric);
        assert!(errors.get("Name")[0].contains("already used"), "{errors:?}");
        form.update(Message::Name("Dublin".into()));
        let (object, errors) = form.check(&fabric);
        assert!(errors.is_empty(), "{errors:?}");
        assert!(matches!(object, Some(FabricObject::HostGroup(g)) if g.parent == Some(root)));
        // A group cannot become its own descendant's child.
        let choices = parent_choices(&fabric, Some(seattle));
        assert!(!choices.iter().any(|c| c.id == seattle));
    }
}
