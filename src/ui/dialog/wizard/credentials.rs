//! Credentials page: the Run As account the console uses to reach the IPAM server, chosen with
//! Browse ("Select a Run As Account") or made with Create Run As Account.

use iced::widget::{button, column, container, row, scrollable, space, text};
use iced::{Element, Length};

use crate::fabric::model::{Id, RunAsAccount};
use crate::ui::widget::style;

#[derive(Debug, Clone, Default)]
pub struct CredentialsPage {
    pub run_as: Option<Id>,
    accounts: Vec<RunAsAccount>,
    /// The "Select a Run As Account" list is open, with its pending choice.
    pub browsing: Option<Option<Id>>,
}

#[derive(Debug, Clone)]
pub enum Message {
    Browse,
    BrowsePick(Id),
    BrowseOk,
    BrowseCancel,
    Create,
}

/// What the page asks of the wizard.
#[derive(Debug, Clone)]
pub enum Event {
    CreateRunAs,
}

impl CredentialsPage {
    pub fn new(accounts: Vec<RunAsAccount>) -> Self {
        CredentialsPage {
            accounts,
            ..Self::default()
        }
    }

    /// The fabric changed (e.g. an account was created): keep the list current.
    pub fn set_accounts(&mut self, mut accounts: Vec<RunAsAccount>) {
        accounts.sort_by_key(|a| a.name.to_lowercase());
        if let Some(id) = self.run_as
            && !accounts.iter().any(|a| a.id == id)
        {
            self.run_as = None;
        }
        self.accounts = accounts;
    }

    pub fn select(&mut self, id: Id) {
        self.run_as = Some(id);
        self.browsing = None;
    }

    pub fn account(&self) -> Option<&RunAsAccount> {
        self.run_as
            .and_then(|id| self.accounts.iter().find(|a| a.id == id))
    }

    pub fn update(&mut self, message: Message) -> Option<Event> {
        match message {
            Message::Browse => self.browsing = Some(self.run_as),
            Message::BrowsePick(id) => self.browsing = Some(Some(id)),
            Message::BrowseOk => {
                if let Some(Some(id)) = self.browsing {
                    self.run_as = Some(id);
                }
                self.browsing = None;
            }
            Message::BrowseCancel => self.browsing = None,
            Message::Create => return Some(Event::CreateRunAs),
        }
        None
    }

    pub fn validate(&self) -> Result<(), String> {
        match self.account() {
            Some(_) => Ok(()),
            None => Err(
                "Specify a Run As account: click Browse to select one, or Create Run As Account."
                    .into(),
            ),
        }
    }

    pub fn is_dirty(&self) -> bool {
        self.run_as.is_some()
    }

    pub fn view(&self) -> Element<'_, Message> {
        let current = match self.account() {
            Some(a) => format!("{} ({})", a.name, a.user_name),
            None => "No Run As account selected".to_string(),
        };
        let mut page = column![
            style::heading("Credentials"),
            style::hint(
                "Specify a Run As account with permissions on the IPAM server \
                 (for a Windows IPAM server: members of IPAM ASM Administrators and Remote Management Users)."
            ),
            text("Run As account:").size(style::TEXT),
            row![
                container(text(current).size(style::TEXT))
                    .padding([6, 8])
                    .width(Length::Fill)
                    .style(style::pane),
                style::command("Browse...", Some(Message::Browse)),
            ]
            .spacing(8)
            .align_y(iced::Alignment::Center),
            row![style::command("Create Run As Account...", Some(Message::Create))],
        ]
        .spacing(8);
        if let Some(pending) = self.browsing {
            page = page.push(self.browse_view(pending));
        }
        page.into()
    }

    fn browse_view(&self, pending: Option<Id>) -> Element<'_, Message> {
        let rows = column(self.accounts.iter().map(|a| {
            button(
                row![
                    text(a.name.clone())
                        .size(style::TEXT)
                        .width(Length::FillPortion(3)),
                    text(a.user_name.clone())
                        .size(style::TEXT)
                        .width(Length::FillPortion(2)),
                    text(a.description.clone())
                        .size(style::TEXT)
                        .width(Length::FillPortion(3)),
                ]
                .spacing(8),
            )
            .width(Length::Fill)
            .padding([3, 8])
            .style(style::flat(pending == Some(a.id)))
            .on_press(Message::BrowsePick(a.id))
            .into()
        }));
        let list: Element<'_, Message> = if self.accounts.is_empty() {
            style::hint("There are no Run As accounts yet: click Create Run As Account.")
        } else {
            scrollable(rows).height(Length::Fill).into()
        };
        container(
            column![
                style::heading("Select a Run As Account"),
                row![
                    text("Name")
                        .size(style::SMALL)
                        .font(style::bold())
                        .width(Length::FillPortion(3)),
                    text("User name")
                        .size(style::SMALL)
                        .font(style::bold())
                        .width(Length::FillPortion(2)),
                    text("Description")
                        .size(style::SMALL)
                        .font(style::bold())
                        .width(Length::FillPortion(3)),
                ]
                .spacing(8)
                .padding([0, 8]),
                container(list)
                    .height(130)
                    .width(Length::Fill)
                    .style(style::pane),
                row![
                    space().width(Length::Fill),
                    style::default_command("OK", pending.map(|_| Message::BrowseOk)),
                    style::command("Cancel", Some(Message::BrowseCancel)),
                ]
                .spacing(8),
            ]
            .spacing(6),
        )
        .padding(10)
        .style(style::dialog)
        .into()
    }
}
