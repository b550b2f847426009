//! A network service's Properties: name, description, Run As account, host groups and sync
//! interval, editable; Save sends the engine UpdateService.

use std::sync::Arc;

use iced::widget::{checkbox, column, container, pick_list, row, text};
use iced::{Element, Length, Task};

use crate::fabric::model::{Fabric, Id, NetworkService};
use crate::sync::status::ServiceStatus;
use crate::ui::dialog::wizard::text_box;
use crate::ui::widget::host_group_tree::{self, HostGroupTree};
use crate::ui::widget::style;

pub const NAME_INPUT: &str = "properties-name";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountChoice {
    pub id: Id,
    pub label: String,
}

impl std::fmt::Display for AccountChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label)
    }
}

#[derive(Debug, Clone)]
pub struct Properties {
    original: NetworkService,
    pub name: String,
    pub description: String,
    pub run_as: Option<Id>,
    pub interval_minutes: String,
    pub sync_on_change: bool,
    /// The IPAM change events address as typed; empty for none.
    pub event_source: String,
    pub host_groups: HostGroupTree,
    accounts: Vec<AccountChoice>,
    other_names: Vec<String>,
    pub saving: bool,
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Message {
    Name(String),
    Description(String),
    RunAs(AccountChoice),
    Interval(String),
    SyncOnChange(bool),
    EventSource(String),
    HostGroup(host_group_tree::Message),
    Save,
    Cancel,
}

#[derive(Debug, Clone)]
pub enum Event {
    Save(Box<NetworkService>),
    Cancel,
}

impl Properties {
    pub fn new(fabric: Arc<Fabric>, service: &NetworkService) -> Self {
        let mut accounts: Vec<AccountChoice> = fabric
            .run_as_accounts
            .values()
            .map(|a| AccountChoice {
                id: a.id,
                label: format!("{} ({})", a.name, a.user_name),
            })
            .collect();
        accounts.sort_by_key(|a| a.label.to_lowercase());
        Properties {
            original: service.clone(),
            name: service.name.clone(),
            description: service.description.clone(),
            run_as: Some(service.run_as),
            interval_minutes: (service.sync_interval_secs / 60).max(1).to_string(),
            sync_on_change: service.sync_on_change,
            event_source: service.event_source.clone().unwrap_or_default(),
            host_groups: HostGroupTree::from_scope(fabric.clone(), &service.scope),
            accounts,
            other_names: fabric
                .network_services
                .values()
                .filter(|s| s.id != service.id)
                .map(|s| s.name.trim().to_lowercase())
                .collect(),
            saving: false,
            error: None,
        }
    }

    pub fn service_id(&self) -> Id {
        self.original.id
    }

    pub fn validate(&self) -> Result<NetworkService, String> {
        let name = super::checked_name(&self.name, "Type a name for the network service.")?;
        if self.other_names.contains(&name.to_lowercase()) {
            return Err(format!(
                "A network service named \"{name}\" already exists: choose another name."
            ));
        }
        let Some(run_as) = self
            .run_as
            .filter(|id| self.accounts.iter().any(|a| a.id == *id))
        else {
            return Err("Select the Run As account used to reach the IPAM server.".into());
        };
        let minutes: u64 = match self.interval_minutes.trim().parse() {
            Ok(m) if (1..=1440).contains(&m) => m,
            _ => {
                return Err(
                    "Sync interval must be a whole number of minutes from 1 to 1440.".into(),
                );
            }
        };
        let event_source = match self.event_source.trim() {
            "" => None,
            typed => Some(crate::fabric::validate::services::parse_event_source(
                typed,
            )?),
        };
        self.host_groups.validate()?;
        Ok(NetworkService {
            sync_on_change: self.sync_on_change,
            event_source,
            name: name.to_string(),
            description: self.description.trim().to_string(),
            run_as,
            scope: self.host_groups.scope(),
            sync_interval_secs: minutes * 60,
            ..self.original.clone()
        })
    }

    pub fn update(&mut self, message: Message) -> (Task<Message>, Option<Event>) {
        match message {
            Message::Name(v) => self.name = v,
            Message::Description(v) => self.description = v,
            Message::RunAs(a) => self.run_as = Some(a.id),
            Message::Interval(v) => self.interval_minutes = v,
            Message::SyncOnChange(v) => self.sync_on_change = v,
            Message::EventSource(v) => self.event_source = v,
            Message::HostGroup(m) => self.host_groups.update(m),
            Message::Cancel => return (Task::none(), Some(Event::Cancel)),
            Message::Save => {
                if self.saving {
                    return (Task::none(), None);
                }
                match self.validate() {
                    Ok(service) if service == self.original => {
                        return (Task::none(), Some(Event::Cancel));
                    }
                    Ok(service) => {
                        self.saving = true;
                        self.error = None;
                        return (Task::none(), Some(Event::Save(Box::new(service))));
                    }
                    Err(e) => self.error = Some(e),
                }
            }
        }
        (Task::none(), None)
    }

    pub fn failed(&mut self, error: String) {
        self.saving = false;
        self.error = Some(error);
    }

    /// `status`: the engine's latest for this service, rendered as it is.
    pub fn view(&self, status: Option<&ServiceStatus>) -> Element<'_, Message> {
        let selected = self
            .run_as
            .and_then(|id| self.accounts.iter().find(|a| a.id == id).cloned());
        let s = &self.original;
        let status_line = status
            .map(|st| {
                format!(
                    "{} · last sync {} · clock skew {}",
                    st.state.label(),
                    style::format_time(st.last_end),
                    style::format_skew(st.skew_ms)
                )
            })
            .unwrap_or_else(|| "Never synced".into());
        let validation = self.validate();
        let mut body = column![
            style::heading(format!("{} Properties", s.name)),
            style::field_line(
                "Manufacturer / model",
                format!("{} / {}", s.manufacturer, s.model)
            ),
            style::field_line("Connection string", s.connection.to_string()),
            style::field_line(
                "Encrypted",
                crate::ipam::tls::Encryption::of_service(s).describe()
            ),
            style::field_line("Status", status_line),
            field(
                "Name:",
                text_box("Name", &self.name, Message::Name)
                    .id(NAME_INPUT)
                    .padding(5)
            ),
            field(
                "Description:",
                text_box("Optional", &self.description, Message::Description).padding(5)
            ),
            field(
                "Run As account:",
                pick_list(self.accounts.as_slice(), selected, Message::RunAs)
                    .text_size(style::TEXT)
                    .width(Length::Fill)
            ),
            field(
                "Sync every (min):",
                text_box("5", &self.interval_minutes, Message::Interval)
                    .padding(5)
                    .width(90)
            ),
            field(
                "",
                checkbox(self.sync_on_change)
                    .label("Sync on change: send console saves within a second and listen for the server's changes")
                    .on_toggle(Message::SyncOnChange)
                    .text_size(style::TEXT)
            ),
            field(
                "IPAM change events:",
                text_box(
                    "None (the built-in server needs none); Nautobot: redis://host:6379",
                    &self.event_source,
                    Message::EventSource
                )
                .padding(5)
            ),
            text("Host groups:").size(style::TEXT),
            container(self.host_groups.checklist().map(Message::HostGroup)).height(170),
        ]
        .spacing(8);
        let invalid = validation.as_ref().err().map(String::as_str);
        body = body.push(style::save_problem(self.error.as_deref(), invalid));
        body = body.push(style::ok_cancel(
            (validation.is_ok() && !self.saving).then_some(Message::Save),
            Message::Cancel,
        ));
        style::dialog_window(body, 640).into()
    }
}

/// A labelled control of the dialog, the labels in one column.
fn field<'a>(
    label: &'static str,
    control: impl Into<Element<'a, Message>>,
) -> Element<'a, Message> {
    row![text(label).size(style::TEXT).width(130), control.into()]
        .spacing(8)
        .align_y(iced::Alignment::Center)
        .into()
}
