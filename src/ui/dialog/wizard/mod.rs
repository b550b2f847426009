//! The Add Network Service wizard: a modal with the page list on the left, one module per page,
//! Previous / Next / Cancel at the bottom right and Finish on the Summary page.

pub mod connection;
pub mod credentials;
pub mod host_group;
pub mod manufacturer;
pub mod name;
pub mod provider;
pub mod security;
pub mod summary;

use std::sync::Arc;
use std::time::Instant;

use iced::widget::{center, column, container, opaque, row, space, stack, text};
use iced::{Element, Length, Task, Theme};
use uuid::Uuid;

use crate::fabric::model::{Fabric, Id, NetworkService, ServiceCategory, default_sync_interval};
use crate::ipam::provider::{ProviderDescriptor, TestReport};
use crate::ops::service::{ServiceField, UnsavedService};
use crate::ui::dialog::run_as_dialog::{self, RunAsDialog};
use crate::ui::widget::host_group_tree::{self, HostGroupTree};
use crate::ui::widget::style;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Page {
    Name,
    ManufacturerModel,
    Credentials,
    ConnectionString,
    Security,
    Provider,
    HostGroup,
    Summary,
}

impl Page {
    pub const ALL: [Page; 8] = [
        Page::Name,
        Page::ManufacturerModel,
        Page::Credentials,
        Page::ConnectionString,
        Page::Security,
        Page::Provider,
        Page::HostGroup,
        Page::Summary,
    ];
    pub fn title(self) -> &'static str {
        match self {
            Page::Name => "Name",
            Page::ManufacturerModel => "Manufacturer and Model",
            Page::Credentials => "Credentials",
            Page::ConnectionString => "Connection String",
            Page::Security => "Security",
            Page::Provider => "Provider",
            Page::HostGroup => "Host Group",
            Page::Summary => "Summary",
        }
    }
    fn index(self) -> usize {
        Page::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }
}

#[derive(Debug, Clone)]
pub struct Wizard {
    pub page: Page,
    pub name: name::NamePage,
    pub manufacturer: manufacturer::ManufacturerPage,
    pub credentials: credentials::CredentialsPage,
    pub connection: connection::ConnectionPage,
    pub security: security::SecurityPage,
    pub provider: provider::ProviderPage,
    pub host_group: HostGroupTree,
    pub summary: summary::SummaryPage,
    pub run_as_dialog: Option<RunAsDialog>,
    pub confirm_cancel: bool,
    pub finishing: bool,
    pub error: Option<String>,
    fabric: Arc<Fabric>,
}

#[derive(Debug, Clone)]
pub enum Message {
    Name(name::Message),
    Manufacturer(manufacturer::Message),
    Credentials(credentials::Message),
    Connection(connection::Message),
    Security(security::Message),
    Provider(provider::Message),
    HostGroup(host_group_tree::Message),
    RunAs(run_as_dialog::Message),
    Next,
    Previous,
    Cancel,
    ConfirmCancel(bool),
    Finish,
    Tick(Instant),
}

/// What the wizard asks of the console.
#[derive(Debug, Clone)]
pub enum Event {
    Cancelled,
    SaveRunAs(run_as_dialog::Event),
    Test(UnsavedService),
    /// Look at the server without credentials (the Security page).
    Probe(security::Target),
    /// Choose a certificate authority file.
    BrowseCaFile,
    Finish(Box<NetworkService>),
}

impl Wizard {
    pub fn new(
        fabric: Arc<Fabric>,
        providers: Vec<ProviderDescriptor>,
        skew_threshold_ms: i64,
    ) -> Self {
        Wizard {
            page: Page::Name,
            name: name::NamePage::new(fabric.network_services.values().map(|s| s.name.clone())),
            manufacturer: manufacturer::ManufacturerPage::new(providers),
            credentials: credentials::CredentialsPage::new(
                fabric.run_as_accounts.values().cloned().collect(),
            ),
            connection: connection::ConnectionPage::default(),
            security: security::SecurityPage::default(),
            provider: provider::ProviderPage {
                skew_threshold_ms,
                ..provider::ProviderPage::default()
            },
            host_group: HostGroupTree::new(fabric.clone()),
            summary: summary::SummaryPage::default(),
            run_as_dialog: None,
            confirm_cancel: false,
            finishing: false,
            error: None,
            fabric,
        }
    }

    pub fn set_fabric(&mut self, fabric: Arc<Fabric>) {
        let mut accounts: Vec<_> = fabric.run_as_accounts.values().cloned().collect();
        accounts.sort_by_key(|a| a.name.to_lowercase());
        self.credentials.set_accounts(accounts);
        self.host_group.set_fabric(fabric.clone());
        self.fabric = fabric;
    }

    pub fn validate_page(&self, page: Page) -> Result<(), String> {
        match page {
            Page::Name => self.name.validate(),
            Page::ManufacturerModel => self.manufacturer.validate(),
            Page::Credentials => self.credentials.validate(),
            Page::ConnectionString => self.connection.validate(),
            Page::Security => self.security.validate(),
            Page::Provider => self.provider.validate(),
            Page::HostGroup => self.host_group.validate(),
            Page::Summary => self.summary.validate(),
        }
    }

    /// Why Next (or Finish) is disabled, if it is.
    pub fn blocked(&self) -> Option<String> {
        if self.finishing {
            return Some("Adding the network service...".into());
        }
        self.validate_page(self.page).err()
    }

    pub fn is_dirty(&self) -> bool {
        self.name.is_dirty()
            || self.manufacturer.is_dirty()
            || self.credentials.is_dirty()
            || self.connection.is_dirty()
            || self.host_group.is_dirty()
    }

    pub fn is_testing(&self) -> bool {
        self.provider.is_testing()
    }

    /// Next and Previous put the focus in the new page's first box.
    pub fn update(&mut self, message: Message) -> (Task<Message>, Option<Event>) {
        if let Message::RunAs(m) = message {
            return self.run_as_message(m);
        }
        let focus = matches!(&message, Message::Next | Message::Previous);
        let event = self.apply(message);
        let task = match self.page {
            Page::Name if focus => iced::widget::operation::focus(name::NAME_INPUT),
            Page::ConnectionString if focus => {
                iced::widget::operation::focus(connection::CONNECTION_INPUT)
            }
            _ => Task::none(),
        };
        (task, event)
    }

    /// The Run As dialog opened over the wizard from the Credentials page.
    fn run_as_message(&mut self, m: run_as_dialog::Message) -> (Task<Message>, Option<Event>) {
        let (task, save) = run_as_dialog::update_open(&mut self.run_as_dialog, m);
        (task.map(Message::RunAs), save.map(Event::SaveRunAs))
    }

    fn apply(&mut self, message: Message) -> Option<Event> {
        match message {
            Message::Name(m) => self.name.update(m),
            Message::Manufacturer(m) => {
                self.manufacturer.update(m);
                self.on_model_changed();
            }
            Message::Credentials(m) => {
                if let Some(credentials::Event::CreateRunAs) = self.credentials.update(m) {
                    self.run_as_dialog =
                        Some(RunAsDialog::create(self.fabric.run_as_accounts.values()));
                }
            }
            Message::Connection(m) => {
                self.connection.update(m);
                self.provider.test = provider::TestState::NotRun;
            }
            Message::Security(m) => {
                let event = self.security.update(m);
                self.provider.test = provider::TestState::NotRun;
                return event.map(security_event);
            }
            Message::Provider(m) => {
                if let Some(provider::Event::Test { provider }) = self.provider.update(m) {
                    let (Some((connection, trust)), Some(run_as)) =
                        (self.security.outcome(), self.credentials.run_as)
                    else {
                        self.provider.test_finished(Err(
                            "Complete the Credentials, Connection String and Security pages before testing."
                                .into(),
                        ));
                        return None;
                    };
                    self.provider.now = Instant::now();
                    return Some(Event::Test(UnsavedService {
                        provider,
                        connection,
                        trust,
                        run_as,
                        service_name: self.name.name.trim().to_string(),
                    }));
                }
            }
            Message::HostGroup(m) => self.host_group.update(m),
            // Answered in `update`, which passes on the dialog's task.
            Message::RunAs(_) => {}
            Message::Next => {
                if self.validate_page(self.page).is_ok() && self.page != Page::Summary {
                    self.page = Page::ALL[self.page.index() + 1];
                    return self.enter_page();
                }
            }
            Message::Previous => {
                if self.page != Page::Name {
                    self.page = Page::ALL[self.page.index() - 1];
                    return self.enter_page();
                }
            }
            Message::Cancel => {
                if self.is_dirty() {
                    self.confirm_cancel = true;
                } else {
                    return Some(Event::Cancelled);
                }
            }
            Message::ConfirmCancel(true) => return Some(Event::Cancelled),
            Message::ConfirmCancel(false) => self.confirm_cancel = false,
            Message::Finish => {
                if self.page != Page::Summary || self.finishing {
                    return None;
                }
                // Every page is checked again: nothing is saved half-way.
                if let Some(err) = Page::ALL.iter().find_map(|p| self.validate_page(*p).err()) {
                    self.error = Some(err);
                    return None;
                }
                let service = self.service()?;
                self.finishing = true;
                self.error = None;
                return Some(Event::Finish(Box::new(service)));
            }
            Message::Tick(now) => self.provider.now = now,
        }
        None
    }

    fn on_model_changed(&mut self) {
        let candidates = self.manufacturer.candidates();
        self.connection.default_port = candidates
            .first()
            .map(|c| (c.default_port, c.provider_name.clone()));
        self.security.default_https = candidates.first().is_some_and(|c| c.default_https);
        self.provider.set_candidates(candidates);
    }

    fn enter_page(&mut self) -> Option<Event> {
        match self.page {
            Page::Security => {
                let connection = self.connection.parsed().ok()?;
                let port = self.connection.default_port.as_ref().map_or(443, |p| p.0);
                return self.security.enter(connection, port).map(security_event);
            }
            Page::Provider => {
                self.provider.run_as_name = self
                    .credentials
                    .account()
                    .map(|a| a.name.clone())
                    .unwrap_or_default();
                self.provider.server = self.connection.input.trim().to_string();
            }
            Page::Summary => self.summary.lines = self.summary_lines(),
            _ => {}
        }
        None
    }

    /// The Summary page's lines. The secret is never read here: only a fixed mask is shown.
    pub fn summary_lines(&self) -> Vec<(String, String)> {
        let account = self.credentials.account();
        let outcome = self.security.outcome();
        let connection = match (&outcome, self.connection.parsed()) {
            (Some((c, _)), _) => c.to_string(),
            (None, parsed) => parsed.map(|c| c.to_string()).unwrap_or_else(|e| e),
        };
        let encryption = self
            .security
            .encryption()
            .map(|e| e.describe())
            .unwrap_or_else(|| "Not checked".into());
        let certificate = match outcome.as_ref().and_then(|(_, t)| t.fingerprint.clone()) {
            Some(fp) => format!(
                "pinned, SHA-256\n{}",
                crate::ipam::tls::colons_two_lines(&fp)
            ),
            None => "checked against this computer's trusted authorities".into(),
        };
        let port = self.connection.port_note().unwrap_or_default();
        let provider = self
            .provider
            .descriptor()
            .map(|p| format!("{} (version {})", p.provider_name, p.version))
            .unwrap_or_default();
        let test = match &self.provider.test {
            provider::TestState::Done(Ok(r)) if r.passed() => "Passed".to_string(),
            provider::TestState::Done(Ok(_)) => "Some tests failed".to_string(),
            provider::TestState::Done(Err(e)) => format!("Failed: {e}"),
            _ => "Not run".to_string(),
        };
        vec![
            ("Name".into(), self.name.name.trim().to_string()),
            (
                "Description".into(),
                match self.name.description.trim() {
                    "" => "(none)".to_string(),
                    d => d.to_string(),
                },
            ),
            (
                "Category".into(),
                crate::ui::screen::fabric_workspace::category_singular(
                    ServiceCategory::NetworkManager,
                )
                .to_string(),
            ),
            (
                "Manufacturer".into(),
                self.manufacturer.manufacturer.clone().unwrap_or_default(),
            ),
            (
                "Model".into(),
                self.manufacturer.model.clone().unwrap_or_default(),
            ),
            (
                "Run As account".into(),
                account.map(|a| a.name.clone()).unwrap_or_default(),
            ),
            (
                "User name".into(),
                account.map(|a| a.user_name.clone()).unwrap_or_default(),
            ),
            ("Password / token".into(), summary::SECRET_MASK.to_string()),
            ("Connection string".into(), connection),
            ("Port".into(), port),
            ("Encrypted".into(), encryption),
            ("Certificate".into(), certificate),
            ("Configuration provider".into(), provider),
            ("Test".into(), test),
            ("Host groups".into(), self.host_group.describe()),
            (
                "Sync interval".into(),
                format!("every {} minutes", default_sync_interval() / 60),
            ),
        ]
    }

    /// The network service the Finish button adds.
    pub fn service(&self) -> Option<NetworkService> {
        let provider = self.provider.descriptor()?;
        let (connection, trust) = self.security.outcome()?;
        let mut service = NetworkService {
            id: Uuid::new_v4(),
            name: self.name.name.trim().to_string(),
            description: self.name.description.trim().to_string(),
            category: ServiceCategory::NetworkManager,
            manufacturer: provider.manufacturer.clone(),
            model: provider.model.clone(),
            connection,
            run_as: self.credentials.run_as?,
            provider: provider.id.clone(),
            scope: self.host_group.scope(),
            sync_interval_secs: default_sync_interval(),
            tls_fingerprint: None,
            tls_ca_file: None,
            allow_cleartext: false,
            event_source: None,
            sync_on_change: true,
        };
        service.set_trust(trust);
        Some(service)
    }

    /// The Security page's look at the server came back.
    pub fn probe_finished(
        &mut self,
        target: &security::Target,
        result: Result<crate::ipam::tls::Probe, String>,
    ) {
        self.security.probe_finished(target, result);
    }

    /// A CA file was chosen in the file chooser: the Security page looks again with it.
    pub fn ca_file_chosen(&mut self, path: std::path::PathBuf) -> Option<Event> {
        self.security.ca_file_chosen(path).map(security_event)
    }

    /// The console saved the Run As account (the secret is in the secret store).
    pub fn run_as_saved(&mut self, result: Result<Id, String>) {
        match result {
            Ok(id) => {
                self.run_as_dialog = None;
                self.credentials.select(id);
            }
            Err(e) => {
                if let Some(d) = self.run_as_dialog.as_mut() {
                    d.failed(e);
                }
            }
        }
    }

    pub fn test_finished(&mut self, result: Result<TestReport, String>) {
        self.provider.test_finished(result);
    }

    /// Finish was refused: the error is shown on the page of the field to blame (the name,
    /// model, account, connection string or host groups), else on the Summary.
    pub fn finish_failed(&mut self, error: String, field: Option<ServiceField>) {
        self.finishing = false;
        if let Some(field) = field {
            self.page = match field {
                ServiceField::Service => Page::Name,
                ServiceField::Model => Page::ManufacturerModel,
                ServiceField::RunAs => Page::Credentials,
                ServiceField::Connection => Page::ConnectionString,
                ServiceField::Security => Page::Security,
                ServiceField::HostGroups => Page::HostGroup,
            };
        }
        self.error = Some(error);
    }

    pub fn view(&self) -> Element<'_, Message> {
        let pages = column(Page::ALL.iter().map(|p| {
            let current = *p == self.page;
            let label = text(p.title()).size(style::TEXT).font(if current {
                style::bold()
            } else {
                iced::Font::DEFAULT
            });
            container(label)
                .padding([5, 10])
                .width(Length::Fill)
                .style(move |theme: &Theme| {
                    if current {
                        container::Style {
                            background: Some(iced::Background::Color(style::selection(theme))),
                            border: iced::Border::default().rounded(3),
                            ..container::Style::default()
                        }
                    } else {
                        container::Style::default()
                    }
                })
                .into()
        }))
        .spacing(2);
        let page: Element<'_, Message> = match self.page {
            Page::Name => self.name.view().map(Message::Name),
            Page::ManufacturerModel => self.manufacturer.view().map(Message::Manufacturer),
            Page::Credentials => self.credentials.view().map(Message::Credentials),
            Page::ConnectionString => self.connection.view().map(Message::Connection),
            Page::Security => self.security.view().map(Message::Security),
            Page::Provider => self.provider.view().map(Message::Provider),
            Page::HostGroup => host_group::view(&self.host_group).map(Message::HostGroup),
            Page::Summary => self.summary.view(),
        };
        let blocked = self.blocked();
        let reason: Element<'_, Message> = match (&self.error, &blocked) {
            (Some(e), _) => style::notice(style::Tone::Error, e.clone()),
            (None, Some(reason)) if self.page != Page::Summary || self.finishing => {
                text(reason.clone())
                    .size(style::TEXT)
                    .style(|theme: &Theme| text::Style {
                        color: Some(style::tone_color(theme, style::Tone::Warning)),
                    })
                    .into()
            }
            _ => space().into(),
        };
        let can_go_on = blocked.is_none();
        let forward = if self.page == Page::Summary {
            style::default_command("Finish", can_go_on.then_some(Message::Finish))
        } else {
            style::default_command("Next", can_go_on.then_some(Message::Next))
        };
        let buttons = row![
            container(reason).width(Length::Fill),
            style::command(
                "Previous",
                (self.page != Page::Name && !self.finishing).then_some(Message::Previous)
            ),
            forward,
            style::command("Cancel", (!self.finishing).then_some(Message::Cancel)),
        ]
        .spacing(8)
        .align_y(iced::Alignment::Center);
        let title = container(
            text("Add Network Service Wizard")
                .size(style::HEADING)
                .font(style::bold()),
        )
        .padding([10, 16])
        .width(Length::Fill)
        .style(style::band);
        let body = row![
            container(pages)
                .padding(8)
                .width(190)
                .height(Length::Fill)
                .style(style::band),
            container(page)
                .padding([14, 18])
                .width(Length::Fill)
                .height(Length::Fill),
        ];
        let window = container(column![
            title,
            container(body).height(Length::Fill),
            container(buttons).padding([10, 16]),
        ])
        .width(880)
        .height(600)
        .style(style::dialog)
        .clip(true);

        let mut layers = stack![window];
        if let Some(dialog) = &self.run_as_dialog {
            layers = layers.push(opaque(
                center(dialog.view().map(Message::RunAs)).style(style::backdrop),
            ));
        }
        if self.confirm_cancel {
            let confirm = style::dialog_window(
                column![
                    style::heading("Cancel the wizard?"),
                    text("The settings you entered in this wizard will be lost.").size(style::TEXT),
                    row![
                        space().width(Length::Fill),
                        style::default_command("Discard", Some(Message::ConfirmCancel(true))),
                        style::command("Keep editing", Some(Message::ConfirmCancel(false))),
                    ]
                    .spacing(8),
                ]
                .spacing(12),
                420,
            );
            layers = layers.push(opaque(center(confirm).style(style::backdrop)));
        }
        layers.into()
    }
}

fn security_event(event: security::Event) -> Event {
    match event {
        security::Event::Probe(target) => Event::Probe(target),
        security::Event::BrowseCaFile => Event::BrowseCaFile,
    }
}

/// A page of text fields: its heading and hint, then the labelled boxes one under another.
pub fn field_page<'a, M: 'a>(
    heading: &'static str,
    hint: &'static str,
    fields: impl IntoIterator<Item = Element<'a, M>>,
) -> Element<'a, M> {
    column![style::heading(heading), style::hint(hint)]
        .extend(fields)
        .spacing(8)
        .width(Length::Fill)
        .into()
}

/// A text box styled alike in the wizard's pages and the dialogs it opens.
pub fn text_box<'a, M: Clone + 'a>(
    placeholder: &str,
    value: &str,
    on_input: impl Fn(String) -> M + 'a,
) -> iced::widget::TextInput<'a, M> {
    iced::widget::text_input(placeholder, value)
        .on_input(on_input)
        .padding(6)
        .size(style::TEXT)
        .style(style::text_input_style)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_finish_shows_its_error_on_the_page_of_the_field_to_blame() {
        let mut w = Wizard::new(Arc::new(Fabric::new()), Vec::new(), 0);
        w.page = Page::Summary;
        w.finish_failed(
            "the connection string is not valid".into(),
            Some(ServiceField::Connection),
        );
        assert_eq!(w.page, Page::ConnectionString);
        assert_eq!(
            w.error.as_deref(),
            Some("the connection string is not valid")
        );
        // No field to blame: it stays on the Summary.
        w.page = Page::Summary;
        w.finish_failed("the store refused it".into(), None);
        assert_eq!(w.page, Page::Summary);
        assert!(!w.finishing);
    }
}
