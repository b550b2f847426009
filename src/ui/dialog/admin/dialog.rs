//! The create / properties dialog of a fabric object and the delete confirmation.

use std::sync::Arc;

use iced::widget::{column, container, row, scrollable, space};
use iced::{Alignment, Element, Length};

use super::delete::Deletion;
use super::form::{self, FieldErrors, Shown};
use super::{DIALOG_ID, Form, FormMessage, Message};
use crate::fabric::model::{Fabric, FabricChange, FabricObject, ObjectKind};
use crate::fabric::store::{Conflict, FabricStore, Opened, StoreError};
use crate::fabric::validate::ValidationError;
use crate::ui::widget::style::{self, Tone};

/// A refused or failed write, with the store's validation problems for the fields.
#[derive(Debug, Clone)]
pub struct SaveError {
    pub message: String,
    pub problems: Vec<ValidationError>,
    /// Someone else saved or deleted the object after the dialog opened it.
    pub conflict: Option<Box<Conflict>>,
}

impl From<StoreError> for SaveError {
    fn from(e: StoreError) -> Self {
        SaveError {
            problems: e.validation_errors().to_vec(),
            message: e.to_string(),
            conflict: match e {
                StoreError::Conflict(c) => Some(c),
                _ => None,
            },
        }
    }
}

/// Applies one batch off the UI thread.
pub async fn apply(
    store: FabricStore,
    changes: Vec<FabricChange>,
) -> Result<Arc<Fabric>, SaveError> {
    store.apply_async(changes).await.map_err(SaveError::from)
}

/// Applies one batch off the UI thread, refused when an object in `opened` was saved or
/// deleted by someone else since its dialog opened it.
pub async fn apply_checked(
    store: FabricStore,
    changes: Vec<FabricChange>,
    opened: Vec<Opened>,
) -> Result<Arc<Fabric>, SaveError> {
    store
        .apply_checked_async(changes, opened)
        .await
        .map_err(SaveError::from)
}

/// What someone else changed, field by field ("Name: "A" → "B""), between the object as a
/// dialog opened it and as it is stored now.
pub fn changed_fields(opened: &FabricObject, now: &FabricObject) -> Vec<String> {
    // The object's own fields (a `FabricObject` is `{"kind", "object"}`).
    let fields = |o: &FabricObject| match serde_json::to_value(o) {
        Ok(serde_json::Value::Object(mut m)) => match m.remove("object") {
            Some(serde_json::Value::Object(inner)) => Some(inner),
            _ => Some(m),
        },
        _ => None,
    };
    let (Some(a), Some(b)) = (fields(opened), fields(now)) else {
        return Vec::new();
    };
    let text = |v: Option<&serde_json::Value>| match v {
        None | Some(serde_json::Value::Null) => "(none)".to_string(),
        Some(v) => v.to_string(),
    };
    // Long values show from a little before where they start to differ.
    let short = |this: &str, other: &str| {
        let same = this
            .chars()
            .zip(other.chars())
            .take_while(|(x, y)| x == y)
            .count();
        let from = same.saturating_sub(12);
        let tail: String = this.chars().skip(from).collect();
        let tail = if tail.chars().count() > 40 {
            format!("{}…", tail.chars().take(39).collect::<String>())
        } else {
            tail
        };
        if from > 0 { format!("…{tail}") } else { tail }
    };
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            let label = k.replace('_', " ");
            let mut label_chars = label.chars();
            let label = match label_chars.next() {
                Some(c) => c.to_uppercase().collect::<String>() + label_chars.as_str(),
                None => label,
            };
            let (x, y) = (text(a.get(k)), text(b.get(k)));
            format!("{label}: {} → {}", short(&x, &y), short(&y, &x))
        })
        .collect()
}

/// A create or properties dialog.
#[derive(Debug, Clone)]
pub struct ObjectDialog {
    pub form: Form,
    pub editing: bool,
    shown: Shown,
    /// Every problem of what is typed now, shown or not.
    pub errors: FieldErrors,
    /// Why the store refused the last save.
    pub refused: Option<String>,
    pub saving: bool,
    /// A properties dialog: the object as it opened it, with its revision then.
    pub opened: Option<Box<(Opened, FabricObject)>>,
    /// Someone else saved the object since: what they changed (the dialog offers to reload).
    pub conflict: Option<Vec<String>>,
}

impl ObjectDialog {
    pub fn new(form: Form, editing: bool, fabric: &Fabric) -> Self {
        let (_, errors) = form.check(fabric);
        ObjectDialog {
            form,
            editing,
            shown: Shown::default(),
            errors,
            refused: None,
            saving: false,
            opened: None,
            conflict: None,
        }
    }

    /// A properties dialog that tells its save when someone else saved the object since.
    /// What the save checks: the object's revision when the dialog opened it.
    pub fn opened_revisions(&self) -> Vec<Opened> {
        self.opened.iter().map(|b| b.0).collect()
    }

    pub fn title(&self) -> String {
        let kind = match self.form.kind() {
            ObjectKind::IpPool => "Static IP Address Pool",
            ObjectKind::HostGroup => "Host Group",
            ObjectKind::LogicalNetwork => "Logical Network",
            ObjectKind::NetworkSite => "Network Site",
            ObjectKind::VmNetwork => "VM Network",
            other => other.label(),
        };
        if self.editing {
            format!("{kind} Properties")
        } else {
            format!("Create {kind}")
        }
    }

    /// The errors the dialog shows now.
    pub fn visible_errors(&self) -> FieldErrors {
        self.shown.visible(&self.errors)
    }

    pub fn update(&mut self, message: FormMessage, fabric: &Fabric) {
        if let Some(field) = self.form.update(message, fabric) {
            self.shown.touch(field);
            self.refused = None;
            self.errors = self.form.check(fabric).1;
        }
    }

    /// OK: the batch to save when everything checks out; otherwise every problem is shown.
    pub fn submit(&mut self, fabric: &Fabric) -> Option<Vec<FabricChange>> {
        if self.saving {
            return None;
        }
        self.shown.reveal_all();
        let (object, errors) = self.form.check(fabric);
        self.errors = errors;
        let object = object.filter(|_| self.errors.is_empty())?;
        self.saving = true;
        Some(vec![FabricChange::Put(object)])
    }

    /// The store refused: its reasons go to the fields they name.
    pub fn refused(&mut self, error: SaveError) {
        self.saving = false;
        if let Some(c) = &error.conflict {
            self.conflict = Some(match (self.opened.as_deref(), &c.current) {
                (Some((_, before)), Some(now)) => changed_fields(before, now),
                _ => Vec::new(),
            });
        }
        let mine: Vec<ValidationError> = error
            .problems
            .iter()
            .filter(|p| p.kind == self.form.kind())
            .cloned()
            .collect();
        self.errors.add_validation(&mine, self.form.fields());
        self.shown.reveal_all();
        self.refused = Some(error.message);
    }

    pub fn view<'a>(&'a self, fabric: &'a Fabric) -> Element<'a, Message> {
        let errors = self.visible_errors();
        let general = errors.get(form::GENERAL).to_vec();
        let mut body = column![
            style::heading(self.title()),
            scrollable(
                container(self.form.view(fabric, &errors).map(Message::Form)).padding([0, 12])
            )
            .height(Length::Shrink),
        ]
        .spacing(12);
        for e in general {
            body = body.push(style::notice(Tone::Error, e));
        }
        if let Some(r) = &self.refused {
            body = body.push(style::notice(Tone::Error, r.clone()));
        }
        if let Some(changed) = &self.conflict {
            let mut said = String::from("Their change: ");
            said.push_str(&if changed.is_empty() {
                "the object is gone.".to_string()
            } else {
                changed.join("; ")
            });
            body = body.push(
                row![
                    container(style::hint(said)).width(Length::Fill),
                    style::command("Reload", Some(Message::Reload)),
                ]
                .spacing(8)
                .align_y(Alignment::Center),
            );
        }
        let summary = if errors.is_empty() {
            style::hint(if self.saving {
                "Saving..."
            } else {
                "Enter saves, Escape cancels, Tab moves to the next field."
            })
        } else {
            style::hint(
                "Correct the fields marked in red; nothing is saved until every field is valid.",
            )
        };
        body = body.push(
            row![
                summary,
                space().width(Length::Fill),
                style::default_command("OK", (!self.saving).then_some(Message::Save)),
                style::command("Cancel", Some(Message::Cancel)),
            ]
            .spacing(8)
            .align_y(Alignment::Center),
        );
        let width = match self.form.kind() {
            ObjectKind::IpPool => 860,
            ObjectKind::NetworkSite => 680,
            _ => 600,
        };
        style::dialog_window(body, width)
            .id(DIALOG_ID)
            .max_height(740)
            .into()
    }
}

/// The delete confirmation.
#[derive(Debug, Clone)]
pub struct DeleteDialog {
    pub deletion: Deletion,
    pub deleting: bool,
    pub error: Option<String>,
    /// The object's revision when the confirmation opened: a delete of what someone else has
    /// saved since is refused.
    pub opened: Option<Opened>,
}

impl DeleteDialog {
    pub fn view(&self) -> Element<'_, Message> {
        let mut body = column![
            style::heading(format!("Delete {}", self.deletion.kind)),
            self.deletion.view(),
        ]
        .spacing(12);
        if let Some(e) = &self.error {
            body = body.push(style::notice(Tone::Error, e.clone()));
        }
        let buttons = if self.deletion.allowed() {
            row![
                space().width(Length::Fill),
                style::default_command(
                    "Delete",
                    (!self.deleting).then_some(Message::ConfirmDelete(true))
                ),
                style::command("Cancel", Some(Message::ConfirmDelete(false))),
            ]
        } else {
            row![
                space().width(Length::Fill),
                style::default_command("Close", Some(Message::ConfirmDelete(false)))
            ]
        };
        style::dialog_window(body.push(buttons.spacing(8)), 560)
            .id(DIALOG_ID)
            .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn their_change_is_shown_field_by_field_from_where_it_differs() {
        use crate::fabric::model::{LogicalNetwork, LogicalNetworkIsolation};
        let ln = LogicalNetwork {
            id: uuid::Uuid::new_v4(),
            name: "Backup-005".into(),
            description: "One connected network for the Backup-005 workloads".into(),
            isolation: LogicalNetworkIsolation::OneConnected,
        };
        let mut theirs = ln.clone();
        theirs.description.push_str(" (edited by B)");
        theirs.name = "Backup-005 North".into();
        let changed = changed_fields(
            &FabricObject::LogicalNetwork(ln),
            &FabricObject::LogicalNetwork(theirs),
        );
        assert_eq!(
            changed,
            vec![
                "Description: …05 workloads\" → …05 workloads (edited by B)\"".to_string(),
                "Name: \"Backup-005\" → \"Backup-005 North\"".to_string(),
            ]
        );
    }
    use crate::ui::dialog::admin::logical_network;

    #[test]
    fn a_refused_save_puts_the_reasons_at_the_fields() {
        let mut fabric = Fabric::new();
        crate::ui::test_fabric::add_backend(
            &mut fabric,
            crate::fabric::model::LogicalNetworkIsolation::OneConnected,
        );
        let mut dialog = ObjectDialog::new(
            Form::LogicalNetwork(logical_network::Form::create()),
            false,
            &fabric,
        );
        assert!(
            dialog.visible_errors().is_empty(),
            "a fresh dialog is not covered in red"
        );
        assert!(
            dialog.submit(&fabric).is_none(),
            "an empty name is not saved"
        );
        assert!(dialog.visible_errors().has("Name"));
        dialog.update(
            FormMessage::LogicalNetwork(logical_network::Message::Name("backend".into())),
            &fabric,
        );
        assert!(dialog.visible_errors().get("Name")[0].contains("already used"));
        dialog.update(
            FormMessage::LogicalNetwork(logical_network::Message::Name("Frontend".into())),
            &fabric,
        );
        let changes = dialog.submit(&fabric).expect("a valid network is saved");
        assert_eq!(changes.len(), 1);
        assert!(dialog.saving);
        assert!(dialog.submit(&fabric).is_none(), "one save at a time");
    }
}
