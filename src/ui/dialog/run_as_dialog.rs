//! The Create / Edit Run As Account dialog. The password or token is typed into a secure input,
//! handed to the secret store once, and never rendered or logged.

use std::collections::BTreeMap;

use iced::widget::{column, row, space, text};
use iced::{Element, Length, Task};
use uuid::Uuid;

use crate::fabric::model::{Id, RunAsAccount};
use crate::ui::dialog::wizard::text_box;
use crate::ui::widget::style;

pub const NAME_INPUT: &str = "run-as-name";
pub const USER_INPUT: &str = "run-as-user";
pub const SECRET_INPUT: &str = "run-as-secret";

#[derive(Clone)]
pub struct RunAsDialog {
    /// `None` when creating.
    editing: Option<Id>,
    pub name: String,
    pub description: String,
    pub user_name: String,
    secret: String,
    /// Other accounts' names (lower case) → id, for uniqueness.
    taken: BTreeMap<String, Id>,
    pub saving: bool,
    pub error: Option<String>,
}

impl std::fmt::Debug for RunAsDialog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunAsDialog")
            .field("editing", &self.editing)
            .field("name", &self.name)
            .field("user_name", &self.user_name)
            .field("secret", &"********")
            .finish()
    }
}

#[derive(Clone)]
pub enum Message {
    Name(String),
    Description(String),
    UserName(String),
    Secret(String),
    Save,
    Cancel,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Message::Secret(_) => f.write_str("Secret(********)"),
            Message::Name(n) => write!(f, "Name({n:?})"),
            Message::Description(d) => write!(f, "Description({d:?})"),
            Message::UserName(u) => write!(f, "UserName({u:?})"),
            Message::Save => f.write_str("Save"),
            Message::Cancel => f.write_str("Cancel"),
        }
    }
}

/// What the dialog asks of its owner.
#[derive(Clone)]
pub enum Event {
    /// Store the account and, when given, put the secret in the secret store.
    Save {
        account: RunAsAccount,
        secret: Option<String>,
    },
    Cancel,
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Save { account, secret } => f
                .debug_struct("Save")
                .field("account", account)
                .field("secret", &secret.as_ref().map(|_| "********"))
                .finish(),
            Event::Cancel => f.write_str("Cancel"),
        }
    }
}

/// Passes `message` to the dialog open in `slot` (the wizard's or the Settings workspace's):
/// Cancel closes it, a save is handed back to the owner.
pub fn update_open(
    slot: &mut Option<RunAsDialog>,
    message: Message,
) -> (Task<Message>, Option<Event>) {
    let Some(dialog) = slot.as_mut() else {
        return (Task::none(), None);
    };
    let (task, event) = dialog.update(message);
    if matches!(event, Some(Event::Cancel)) {
        *slot = None;
        return (task, None);
    }
    (task, event)
}

impl RunAsDialog {
    pub fn create<'a>(existing: impl IntoIterator<Item = &'a RunAsAccount>) -> Self {
        RunAsDialog {
            editing: None,
            name: String::new(),
            description: String::new(),
            user_name: String::new(),
            secret: String::new(),
            taken: existing
                .into_iter()
                .map(|a| (a.name.trim().to_lowercase(), a.id))
                .collect(),
            saving: false,
            error: None,
        }
    }

    pub fn edit<'a>(
        account: &RunAsAccount,
        existing: impl IntoIterator<Item = &'a RunAsAccount>,
    ) -> Self {
        RunAsDialog {
            editing: Some(account.id),
            name: account.name.clone(),
            description: account.description.clone(),
            user_name: account.user_name.clone(),
            ..Self::create(existing)
        }
    }

    pub fn is_edit(&self) -> bool {
        self.editing.is_some()
    }

    pub fn is_dirty(&self) -> bool {
        !self.name.is_empty() || !self.user_name.is_empty() || !self.secret.is_empty()
    }

    pub fn validate(&self) -> Result<(), String> {
        let name = super::checked_name(&self.name, "Type a name for the Run As account.")?;
        if let Some(other) = self.taken.get(&name.to_lowercase())
            && Some(*other) != self.editing
        {
            return Err(format!(
                "A Run As account named \"{name}\" already exists: choose another name."
            ));
        }
        if self.user_name.trim().is_empty() {
            return Err("Type the user name the IPAM server knows this account by.".into());
        }
        if self.editing.is_none() && self.secret.is_empty() {
            return Err("Type the account's password or API token.".into());
        }
        Ok(())
    }

    pub fn update(&mut self, message: Message) -> (Task<Message>, Option<Event>) {
        match message {
            Message::Name(v) => self.name = v,
            Message::Description(v) => self.description = v,
            Message::UserName(v) => self.user_name = v,
            Message::Secret(v) => self.secret = v,
            Message::Cancel => return (Task::none(), Some(Event::Cancel)),
            Message::Save => {
                if self.saving || self.validate().is_err() {
                    return (Task::none(), None);
                }
                self.saving = true;
                self.error = None;
                let account = RunAsAccount {
                    id: self.editing.unwrap_or_else(Uuid::new_v4),
                    name: self.name.trim().to_string(),
                    description: self.description.trim().to_string(),
                    user_name: self.user_name.trim().to_string(),
                };
                // The secret leaves the dialog exactly once.
                let secret = std::mem::take(&mut self.secret);
                return (
                    Task::none(),
                    Some(Event::Save {
                        account,
                        secret: (!secret.is_empty()).then_some(secret),
                    }),
                );
            }
        }
        (Task::none(), None)
    }

    /// The owner reports a failed save; the secret must be typed again.
    pub fn failed(&mut self, error: String) {
        self.saving = false;
        self.error = Some(error);
    }

    pub fn view(&self) -> Element<'_, Message> {
        let title = if self.is_edit() {
            "Run As Account Properties"
        } else {
            "Create Run As Account"
        };
        let field =
            |label: &'static str, input: Element<'static, Message>| -> Element<'_, Message> {
                row![text(label).size(style::TEXT).width(130), input]
                    .spacing(8)
                    .align_y(iced::Alignment::Center)
                    .into()
            };
        let validation = self.validate();
        let mut body = column![
            style::heading(title),
            style::hint(
                "The password or token is kept in the secret store; the console's database never holds it."
            ),
            field(
                "Name:",
                text_box("e.g. IPAM service account", &self.name, Message::Name)
                    .id(NAME_INPUT)
                    .into()
            ),
            field(
                "Description:",
                text_box("Optional", &self.description, Message::Description).into()
            ),
            field(
                "User name:",
                text_box(
                    "e.g. CONTOSO\\ipam-svc or admin",
                    &self.user_name,
                    Message::UserName
                )
                .id(USER_INPUT)
                .into()
            ),
            field(
                "Password / token:",
                text_box(
                    if self.is_edit() {
                        "Leave empty to keep the stored secret"
                    } else {
                        "Password or API token"
                    },
                    &self.secret,
                    Message::Secret
                )
                .id(SECRET_INPUT)
                .secure(true)
                .into()
            ),
        ]
        .spacing(10);
        let invalid = validation.as_ref().err().map(String::as_str);
        body = body.push(style::save_problem(self.error.as_deref(), invalid));
        body = body.push(space().height(Length::Fill));
        body = body.push(style::ok_cancel(
            (validation.is_ok() && !self.saving).then_some(Message::Save),
            Message::Cancel,
        ));
        style::dialog_window(body, 520).height(380).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_requires_every_field_and_hands_the_secret_out_once() {
        let existing = RunAsAccount {
            id: Uuid::new_v4(),
            name: "Admin".into(),
            description: String::new(),
            user_name: "admin".into(),
        };
        let mut dialog = RunAsDialog::create([&existing]);
        assert!(dialog.update(Message::Save).1.is_none());
        let _ = dialog.update(Message::Name("admin".into()));
        assert!(dialog.validate().unwrap_err().contains("already exists"));
        let _ = dialog.update(Message::Name("IPAM svc".into()));
        let _ = dialog.update(Message::UserName("svc".into()));
        assert!(dialog.validate().unwrap_err().contains("password"));
        let _ = dialog.update(Message::Secret("s3cret-token".into()));
        let (_, Some(Event::Save { account, secret })) = dialog.update(Message::Save) else {
            panic!("expected a save");
        };
        assert_eq!(account.name, "IPAM svc");
        assert_eq!(secret.as_deref(), Some("s3cret-token"));
        assert!(!format!("{dialog:?}").contains("s3cret"));
        assert!(dialog.secret.is_empty());
    }

    #[test]
    fn edit_keeps_the_secret_when_left_empty() {
        let account = RunAsAccount {
            id: Uuid::new_v4(),
            name: "Admin".into(),
            description: String::new(),
            user_name: "admin".into(),
        };
        let mut dialog = RunAsDialog::edit(&account, [&account]);
        assert_eq!(dialog.validate(), Ok(()));
        let (
            _,
            Some(Event::Save {
                account: saved,
                secret,
            }),
        ) = dialog.update(Message::Save)
        else {
            panic!("expected a save");
        };
        assert_eq!(saved.id, account.id);
        assert!(secret.is_none());
    }
}
