//! The Settings workspace: Configuration Providers (as the registry reports them) and Run As
//! Accounts (create, edit, delete only when no service uses the account; where their secrets are).

use iced::widget::{button, column, container, row, scrollable, space, table, text, text_input};
use iced::{Element, Length, Task};

use crate::fabric::model::{Fabric, Id};
use crate::fabric::secrets::SecretLocation;
use crate::ipam::provider::ProviderDescriptor;
use crate::ops::run_as::services_using;
use crate::ui::context::EmbeddedIpam;
use crate::ui::dialog::run_as_dialog::{self, RunAsDialog};
use crate::ui::widget::grid::{self, col};
use crate::ui::widget::style::{self, Tone};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Section {
    #[default]
    ConfigurationProviders,
    RunAsAccounts,
    Database,
}

/// The text input of the shared database's URL.
pub const DATABASE_INPUT: &str = "settings-database";

#[derive(Debug, Clone, Default)]
pub struct SettingsWorkspace {
    pub section: Section,
    pub selected_account: Option<Id>,
    pub dialog: Option<RunAsDialog>,
    pub confirm_delete: Option<Id>,
    pub error: Option<String>,
    widths: grid::ColumnWidths,
    /// The Database page: the URL as typed (`None` until the page is first shown), and what
    /// the last Save said.
    pub database: Option<String>,
    pub database_note: Option<(Tone, String)>,
}

#[derive(Debug, Clone)]
pub enum Message {
    Section(Section),
    SelectAccount(Id),
    Create,
    Edit(Id),
    Delete(Id),
    ConfirmDelete(bool),
    Dialog(run_as_dialog::Message),
    Resize(grid::Resize),
    DatabaseText(String),
    SaveDatabase,
    UseLocalFiles,
}

#[derive(Debug, Clone)]
pub enum Event {
    SaveRunAs(run_as_dialog::Event),
    DeleteRunAs(Id),
    /// Keep this database (`None`: the data directory's files) for the next start.
    SaveDatabase(Option<String>),
}

impl SettingsWorkspace {
    pub fn update(&mut self, message: Message, fabric: &Fabric) -> (Task<Message>, Option<Event>) {
        let Message::Dialog(m) = message else {
            return (Task::none(), self.apply(message, fabric));
        };
        let (task, save) = run_as_dialog::update_open(&mut self.dialog, m);
        (task.map(Message::Dialog), save.map(Event::SaveRunAs))
    }

    fn apply(&mut self, message: Message, fabric: &Fabric) -> Option<Event> {
        match message {
            Message::Section(s) => self.section = s,
            Message::Resize(r) => self.widths.update(r),
            Message::SelectAccount(id) => self.selected_account = Some(id),
            Message::Create => {
                self.error = None;
                self.dialog = Some(RunAsDialog::create(fabric.run_as_accounts.values()));
            }
            Message::Edit(id) => {
                if let Some(a) = fabric.run_as_accounts.get(&id) {
                    self.error = None;
                    self.dialog = Some(RunAsDialog::edit(a, fabric.run_as_accounts.values()));
                }
            }
            Message::Delete(id) => {
                let users = services_using(fabric, id);
                if users.is_empty() {
                    self.confirm_delete = Some(id);
                } else {
                    self.error = Some(format!(
                        "This Run As account is used by {}: choose another account in their Properties first.",
                        users.join(", ")
                    ));
                }
            }
            Message::ConfirmDelete(yes) => {
                let id = self.confirm_delete.take()?;
                if yes {
                    return Some(Event::DeleteRunAs(id));
                }
            }
            // Answered in `update`, which passes on the dialog's task.
            Message::Dialog(_) => {}
            Message::DatabaseText(t) => {
                self.database = Some(t);
                self.database_note = None;
            }
            Message::SaveDatabase => {
                let typed = self.database.clone().unwrap_or_default();
                let typed = typed.trim();
                if typed.is_empty() {
                    return Some(Event::SaveDatabase(None));
                }
                match crate::db::Location::parse(typed, std::path::Path::new(".")) {
                    Ok(crate::db::Location::Postgres(t)) => {
                        return Some(Event::SaveDatabase(Some(t.to_string())));
                    }
                    Ok(_) => return Some(Event::SaveDatabase(None)),
                    Err(e) => {
                        self.database_note = Some((Tone::Error, format!("Database: {e}.")));
                    }
                }
            }
            Message::UseLocalFiles => {
                self.database = Some(String::new());
                return Some(Event::SaveDatabase(None));
            }
        }
        None
    }

    /// The Database page opens with what the settings file holds.
    pub fn show_database(&mut self, saved: Option<&str>) {
        if self.database.is_none() {
            self.database = Some(saved.unwrap_or_default().to_string());
        }
    }

    /// What the App says once the choice is saved (or not).
    pub fn database_saved(&mut self, result: Result<Option<String>, String>) {
        self.database_note = Some(match result {
            Ok(Some(url)) => (
                Tone::Info,
                format!("Saved. From its next start this console keeps the fabric in {url}."),
            ),
            Ok(None) => (
                Tone::Info,
                "Saved. From its next start this console keeps the fabric in this computer's data directory.".to_string(),
            ),
            Err(e) => (Tone::Error, format!("The setting was not saved: {e}")),
        });
    }

    pub fn run_as_saved(&mut self, result: Result<Id, String>) {
        match result {
            Ok(id) => {
                self.dialog = None;
                self.selected_account = Some(id);
            }
            Err(e) => {
                if let Some(d) = self.dialog.as_mut() {
                    d.failed(e);
                }
            }
        }
    }

    /// The open Run As dialog, drawn by the console over everything else.
    pub fn modal(&self) -> Option<Element<'_, Message>> {
        self.dialog.as_ref().map(|d| d.view().map(Message::Dialog))
    }

    pub fn navigation(&self) -> Element<'_, Message> {
        let item = |label: &'static str, section: Section| {
            button(text(label).size(style::TEXT))
                .width(Length::Fill)
                .padding([3, 8])
                .style(style::flat(self.section == section))
                .on_press(Message::Section(section))
        };
        column![
            item("Configuration Providers", Section::ConfigurationProviders),
            item("Run As Accounts", Section::RunAsAccounts),
            item("Database", Section::Database),
        ]
        .spacing(1)
        .padding([6, 4])
        .into()
    }

    pub fn view<'a>(
        &'a self,
        fabric: &'a Fabric,
        providers: &'a [ProviderDescriptor],
        embedded: Option<&'a EmbeddedIpam>,
        secrets: &SecretLocation,
        kept_in: &'a str,
    ) -> Element<'a, Message> {
        match self.section {
            Section::ConfigurationProviders => providers_view(providers),
            Section::RunAsAccounts => self.accounts_view(fabric, embedded, secrets),
            Section::Database => self.database_view(kept_in),
        }
    }

    fn database_view<'a>(&'a self, kept_in: &'a str) -> Element<'a, Message> {
        let typed = self.database.as_deref().unwrap_or_default();
        let mut page = column![
            style::heading("Database"),
            style::field_line("This console keeps its fabric in", kept_in.to_string()),
            style::hint(
                "A team shares one fabric by pointing every console (and any `fabric-console sync --follow`) at one PostgreSQL database. Leave it empty to keep the fabric in this computer's data directory. --database or FABRIC_CONSOLE_DATABASE, when given, win over this setting.",
            ),
            text("PostgreSQL database").size(style::TEXT),
            text_input("postgres://user@host:5432/dbname", typed)
                .id(DATABASE_INPUT)
                .on_input(Message::DatabaseText)
                .on_submit(Message::SaveDatabase)
                .size(style::TEXT)
                .padding(5),
            style::hint(
                "No password here: keep it with `fabric-console --database URL db password` (the secret store) or in ~/.pgpass. Another computer is reached over TLS with its certificate checked (add ?sslrootcert=/path/ca.pem for a private authority). Run As passwords stay in each console's own secret store; only a console (or daemon) that holds one runs the automatic syncs of the services that use it.",
            ),
            row![
                style::default_command("Save", Some(Message::SaveDatabase)),
                style::command("Use this computer's files", Some(Message::UseLocalFiles)),
            ]
            .spacing(8),
        ]
        .spacing(8)
        .max_width(760);
        if let Some((tone, note)) = &self.database_note {
            page = page.push(style::notice(*tone, note.clone()));
        }
        container(page).padding(12).height(Length::Fill).into()
    }

    fn accounts_view<'a>(
        &'a self,
        fabric: &'a Fabric,
        embedded: Option<&'a EmbeddedIpam>,
        secrets: &SecretLocation,
    ) -> Element<'a, Message> {
        const COLUMNS: [grid::GridColumn; 4] = [
            col("Name", 3),
            col("User Name", 2),
            col("Description", 3),
            col("Used By", 3),
        ];
        let portion = |i| self.widths.portion("run-as-accounts", &COLUMNS, i);
        let mut accounts: Vec<_> = fabric.run_as_accounts.values().collect();
        accounts.sort_by(|a, b| grid::text_order(&a.name, &b.name));
        let rows = column(accounts.into_iter().map(|a| {
            let users = services_using(fabric, a.id);
            grid::grid_row(
                vec![
                    grid::cell(a.name.clone(), portion(0)),
                    grid::cell(a.user_name.clone(), portion(1)),
                    grid::cell(a.description.clone(), portion(2)),
                    grid::cell(
                        if users.is_empty() {
                            "—".into()
                        } else {
                            users.join(", ")
                        },
                        portion(3),
                    ),
                ],
                self.selected_account == Some(a.id),
                Message::SelectAccount(a.id),
                Some(Message::Edit(a.id)),
                None,
            )
        }))
        .spacing(1);
        let selected = self
            .selected_account
            .filter(|id| fabric.run_as_accounts.contains_key(id));
        let delete_reason = selected.map(|id| services_using(fabric, id));
        let toolbar = row![
            style::command("Create Run As Account...", Some(Message::Create)),
            style::command("Properties", selected.map(Message::Edit)),
            style::command(
                "Delete",
                selected
                    .filter(|_| delete_reason.as_ref().is_some_and(|u| u.is_empty()))
                    .map(Message::Delete)
            ),
        ]
        .spacing(8);
        let store = match secrets {
            SecretLocation::Keyring => style::hint(secrets.summary()),
            SecretLocation::File { .. } | SecretLocation::Memory => {
                style::notice(Tone::Warning, secrets.summary())
            }
        };
        let mut page = column![style::heading("Run As Accounts"), store, toolbar].spacing(8);
        if let Some(users) = delete_reason.filter(|u| !u.is_empty()) {
            page = page.push(style::hint(format!(
                "This account cannot be deleted while {} use it.",
                users.join(", ")
            )));
        }
        if let Some(e) = &self.error {
            page = page.push(style::notice(Tone::Error, e.clone()));
        }
        page = page.push(
            container(column![
                grid::header(
                    "run-as-accounts",
                    &COLUMNS,
                    &self.widths,
                    grid::Sort::default(),
                    |_| Message::Section(Section::RunAsAccounts),
                    Message::Resize,
                ),
                scrollable(rows).height(Length::Fill)
            ])
            .height(Length::Fill)
            .style(style::pane),
        );
        if let Some(e) = embedded {
            let account = fabric
                .run_as_accounts
                .get(&e.run_as)
                .map(|a| a.name.clone())
                .unwrap_or_default();
            page = page.push(
                container(
                    column![
                        style::heading("Embedded IPAM server"),
                        style::hint("A built-in IPAM server runs inside this console. Add it with Add Resources ▸ Network Service:"),
                        style::field_line(
                            "Manufacturer / model",
                            format!("{} / {}", crate::ipam::builtin::MANUFACTURER, crate::ipam::builtin::MODEL)
                        ),
                        style::field_line("Connection string", e.connection.to_string()),
                        style::field_line("Run As account", account),
                    ]
                    .spacing(4),
                )
                .padding(10)
                .width(Length::Fill)
                .style(style::pane),
            );
        }
        if let Some(id) = self.confirm_delete {
            let name = fabric
                .run_as_accounts
                .get(&id)
                .map(|a| a.name.clone())
                .unwrap_or_default();
            page = page.push(
                container(
                    row![
                        text(format!(
                            "Delete the Run As account \"{name}\" and its stored secret?"
                        ))
                        .size(style::TEXT)
                        .width(Length::Fill),
                        style::default_command("Delete", Some(Message::ConfirmDelete(true))),
                        style::command("Cancel", Some(Message::ConfirmDelete(false))),
                    ]
                    .spacing(8)
                    .align_y(iced::Alignment::Center),
                )
                .padding(10)
                .style(style::notice_box(Tone::Warning)),
            );
        }
        container(page).padding(12).height(Length::Fill).into()
    }
}

fn providers_view(providers: &[ProviderDescriptor]) -> Element<'_, Message> {
    let bold = |s: &'static str| text(s).size(style::SMALL).font(style::bold());
    // A column of one plain text value a provider.
    let plain = |title: &'static str, portion: u16, value: fn(&ProviderDescriptor) -> String| {
        table::column(bold(title), move |p: &ProviderDescriptor| {
            text(value(p)).size(style::TEXT)
        })
        .width(Length::FillPortion(portion))
    };
    let grid = table(
        [
            plain("Manufacturer", 2, |p| p.manufacturer.clone()),
            plain("Model", 3, |p| p.model.clone()),
            plain("Provider", 3, |p| p.provider_name.clone()),
            plain("Version", 1, |p| p.version.clone()),
            plain("Default port", 1, |p| p.default_port.to_string()),
            table::column(bold("Implemented operations"), |p: &ProviderDescriptor| {
                let implemented: Vec<&str> = p
                    .operations
                    .iter()
                    .filter(|(_, yes)| *yes)
                    .map(|(op, _)| op.label())
                    .collect();
                let missing = p.operations.iter().filter(|(_, yes)| !*yes).count();
                let mut line = implemented.join("; ");
                if missing > 0 {
                    line.push_str(&format!(" ({missing} not implemented)"));
                }
                text(line).size(style::SMALL)
            })
            .width(Length::FillPortion(6)),
        ],
        providers.iter(),
    )
    .padding_x(8)
    .padding_y(4)
    .width(Length::Fill);
    container(
        column![
            style::heading("Configuration Providers"),
            style::hint("The providers installed in this console. A network service's model selects its provider."),
            container(scrollable(grid).height(Length::Fill)).style(style::pane),
            space().height(4),
        ]
        .spacing(8),
    )
    .padding(12)
    .height(Length::Fill)
    .into()
}
