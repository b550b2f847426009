//! The create / properties dialog of a fabric object and the delete confirmation.

use std::sync::Arc;

use iced::widget::{column, container, row, scrollable, space};
use iced::{Alignment, Element, Length};

use super::delete::Deletion;
use super::form::{self, FieldErrors, Shown};
use super::{DIALOG_ID, Form, FormMessage, Message};
use crate::fabric::model::{Fabric, FabricChange, ObjectKind};
use crate::fabric::store::{FabricStore, StoreError};
use crate::fabric::validate::ValidationError;
use crate::ui::widget::style::{self, Tone};

/// A refused or failed write, with the store's validation problems for the fields.
#[derive(Debug, Clone)]
pub struct SaveError {
    pub message: String,
    pub problems: Vec<ValidationError>,
}

impl From<StoreError> for SaveError {
    fn from(e: StoreError) -> Self {
        SaveError {
            problems: e.validation_errors().to_vec(),
            message: e.to_string(),
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
        }
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
