//! Import and export of the whole fabric as JSON through the desktop's file chooser. When no
//! file chooser answers (no xdg-desktop-portal and no zenity), the dialog says so and takes a
//! typed path instead. An import is all-or-nothing: every problem in the file is listed and
//! nothing changes until the whole file is valid and the replacement is confirmed.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use iced::widget::{column, container, row, scrollable, space, text, text_input};
use iced::{Alignment, Element, Length, Task};

use crate::fabric::exchange::{export_json, import_json};
use crate::fabric::model::Fabric;
use crate::fabric::secrets::SecretStore;
use crate::fabric::store::FabricStore;
use crate::ops::exchange::Imported;
use crate::ui::widget::focus::DialogKey;
use crate::ui::widget::style::{self, Tone};

pub const DIALOG_ID: &str = "exchange-dialog";
pub const PATH_INPUT: &str = "exchange-path";
const PORTAL: &str = "org.freedesktop.portal.Desktop";
/// A person cannot dismiss a file chooser this fast: an answer sooner means none was shown.
const TOO_FAST: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Import,
    Export,
}

impl Direction {
    fn title(self) -> &'static str {
        match self {
            Direction::Import => "Import Fabric",
            Direction::Export => "Export Fabric",
        }
    }
}

/// What the file chooser gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Picked {
    File(PathBuf),
    Cancelled,
    /// No file chooser answered; the reason says which part is missing.
    Unavailable(String),
}

#[derive(Debug, Clone)]
pub enum Stage {
    Choosing,
    TypePath {
        reason: Option<String>,
    },
    Working(String),
    Confirm {
        path: PathBuf,
        fabric: Arc<Fabric>,
    },
    Problems {
        path: PathBuf,
        problems: Vec<String>,
    },
    Failed(String),
}

#[derive(Debug, Clone)]
pub struct Exchange {
    pub direction: Direction,
    pub stage: Stage,
    pub path: String,
}

#[derive(Debug, Clone)]
pub enum Message {
    Picked(Picked),
    Path(String),
    UsePath,
    Read(Result<(PathBuf, Arc<Fabric>), (PathBuf, Vec<String>)>),
    Confirm,
    Imported(Result<Imported, (PathBuf, Vec<String>)>),
    Written(Result<PathBuf, String>),
    Cancel,
}

#[derive(Debug, Clone)]
pub enum Event {
    Close,
    Exported(PathBuf),
    Imported(Imported, PathBuf),
}

/// Is there a file chooser to ask? The desktop portal on the session bus, or zenity (rfd's
/// fallback). `Err` says what is missing.
pub async fn file_chooser_available() -> Result<(), String> {
    if zenity_installed() {
        return Ok(());
    }
    let probe = async {
        let conn = zbus::Connection::session()
            .await
            .map_err(|e| format!("there is no D-Bus session bus ({e})"))?;
        let dbus = zbus::fdo::DBusProxy::new(&conn)
            .await
            .map_err(|e| e.to_string())?;
        let name = zbus::names::BusName::try_from(PORTAL).map_err(|e| e.to_string())?;
        if dbus.name_has_owner(name).await.map_err(|e| e.to_string())? {
            return Ok(());
        }
        let activatable = dbus
            .list_activatable_names()
            .await
            .map_err(|e| e.to_string())?;
        if activatable.iter().any(|n| n.as_str() == PORTAL) {
            Ok(())
        } else {
            Err(
                "the desktop's file chooser service (xdg-desktop-portal) is not running"
                    .to_string(),
            )
        }
    };
    match tokio::time::timeout(Duration::from_secs(3), probe).await {
        Ok(r) => r,
        Err(_) => Err("the desktop's D-Bus session bus did not answer within 3 seconds".into()),
    }
}

fn zenity_installed() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join("zenity").is_file()))
}

/// Opens the desktop's file chooser for an import or an export.
pub async fn pick(direction: Direction) -> Picked {
    let dialog = rfd::AsyncFileDialog::new()
        .set_title(direction.title())
        .add_filter("Fabric export (JSON)", &["json"]);
    match direction {
        Direction::Import => choose(dialog, false).await,
        Direction::Export => choose(dialog.set_file_name("fabric.json"), true).await,
    }
}

/// Opens the desktop's file chooser for a certificate authority file (PEM).
pub async fn pick_certificate_file() -> Picked {
    let dialog = rfd::AsyncFileDialog::new()
        .set_title("Certificate authority file")
        .add_filter("PEM certificates", &["pem", "crt", "cer"]);
    choose(dialog, false).await
}

async fn choose(dialog: rfd::AsyncFileDialog, save: bool) -> Picked {
    if let Err(reason) = file_chooser_available().await {
        return Picked::Unavailable(reason);
    }
    let started = Instant::now();
    let handle = if save {
        dialog.save_file().await
    } else {
        dialog.pick_file().await
    };
    match handle {
        Some(h) => Picked::File(h.path().to_path_buf()),
        None if started.elapsed() < TOO_FAST => Picked::Unavailable(
            "the file chooser closed at once without showing a window (the desktop portal has no file chooser backend)".into(),
        ),
        None => Picked::Cancelled,
    }
}

/// Reads and checks an export file, listing every problem.
pub async fn read(path: PathBuf) -> Result<(PathBuf, Arc<Fabric>), (PathBuf, Vec<String>)> {
    let p = path.clone();
    let result = tokio::task::spawn_blocking(move || {
        let text = std::fs::read_to_string(&p).map_err(|e| {
            vec![format!(
                "The file {} could not be read: {e}. Check the path and that the file is readable.",
                p.display()
            )]
        })?;
        import_json(&text).map_err(|e| e.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>())
    })
    .await;
    match result {
        Ok(Ok(fabric)) => Ok((path, Arc::new(fabric))),
        Ok(Err(problems)) => Err((path, problems)),
        Err(e) => Err((
            path,
            vec![format!(
                "Reading the file stopped unexpectedly: {e}. Try again."
            )],
        )),
    }
}

async fn replace(
    store: FabricStore,
    secrets: Arc<dyn SecretStore>,
    path: PathBuf,
    fabric: Arc<Fabric>,
) -> Result<Imported, (PathBuf, Vec<String>)> {
    let p = path.clone();
    tokio::task::spawn_blocking(move || {
        crate::ops::exchange::replace_fabric(&store, &secrets, (*fabric).clone())
            .map_err(|e| (p, e.problems.iter().map(|x| x.to_string()).collect()))
    })
    .await
    .unwrap_or_else(|e| {
        Err((
            path,
            vec![format!(
                "Replacing the fabric stopped unexpectedly: {e}. Try again."
            )],
        ))
    })
}

async fn write(path: PathBuf, fabric: Arc<Fabric>) -> Result<PathBuf, String> {
    tokio::task::spawn_blocking(move || {
        let text = export_json(&fabric);
        std::fs::write(&path, text)
            .map(|_| path.clone())
            .map_err(|e| {
                format!(
                    "The fabric could not be written to {}: {e}. Choose a folder you can write to.",
                    path.display()
                )
            })
    })
    .await
    .map_err(|e| format!("Writing the export stopped unexpectedly: {e}. Try again."))?
}

fn counts(f: &Fabric) -> String {
    format!(
        "{} host groups, {} logical networks, {} network sites, {} static IP address pools, {} VM networks, {} Run As accounts and {} network services",
        f.host_groups.len(),
        f.logical_networks.len(),
        f.network_sites.len(),
        f.ip_pools.len(),
        f.vm_networks.len(),
        f.run_as_accounts.len(),
        f.network_services.len()
    )
}

impl Exchange {
    /// Opens the file chooser at once.
    pub fn start(direction: Direction) -> (Self, Task<Message>) {
        (
            Exchange {
                direction,
                stage: Stage::Choosing,
                path: String::new(),
            },
            Task::perform(pick(direction), Message::Picked),
        )
    }

    /// Starts from a typed path, without asking the desktop (tests, the fallback).
    pub fn with_path(direction: Direction) -> Self {
        Exchange {
            direction,
            stage: Stage::TypePath { reason: None },
            path: String::new(),
        }
    }

    fn begin(&mut self, path: PathBuf, fabric: &Arc<Fabric>) -> Task<Message> {
        self.path = path.display().to_string();
        match self.direction {
            Direction::Import => {
                self.stage = Stage::Working(format!("Reading and checking {}...", path.display()));
                Task::perform(read(path), Message::Read)
            }
            Direction::Export => {
                self.stage = Stage::Working(format!("Writing {}...", path.display()));
                Task::perform(write(path, fabric.clone()), Message::Written)
            }
        }
    }

    pub fn update(
        &mut self,
        message: Message,
        fabric: &Arc<Fabric>,
        store: &FabricStore,
        secrets: &Arc<dyn SecretStore>,
    ) -> (Task<Message>, Option<Event>) {
        match message {
            Message::Picked(Picked::File(path)) => return (self.begin(path, fabric), None),
            Message::Picked(Picked::Cancelled) => return (Task::none(), Some(Event::Close)),
            Message::Picked(Picked::Unavailable(reason)) => {
                self.stage = Stage::TypePath {
                    reason: Some(reason),
                };
                return (iced::widget::operation::focus(PATH_INPUT), None);
            }
            Message::Path(p) => self.path = p,
            Message::UsePath => {
                let t = self.path.trim();
                if !t.is_empty()
                    && matches!(
                        self.stage,
                        Stage::TypePath { .. } | Stage::Failed(_) | Stage::Problems { .. }
                    )
                {
                    let path = PathBuf::from(t);
                    return (self.begin(path, fabric), None);
                }
            }
            Message::Read(Ok((path, parsed))) => {
                self.stage = Stage::Confirm {
                    path,
                    fabric: parsed,
                }
            }
            Message::Read(Err((path, problems))) | Message::Imported(Err((path, problems))) => {
                self.stage = Stage::Problems { path, problems }
            }
            Message::Confirm => {
                if let Stage::Confirm {
                    path,
                    fabric: parsed,
                } = &self.stage
                {
                    let task = Task::perform(
                        replace(store.clone(), secrets.clone(), path.clone(), parsed.clone()),
                        Message::Imported,
                    );
                    self.stage = Stage::Working("Replacing the fabric...".into());
                    return (task, None);
                }
            }
            Message::Imported(Ok(new)) => {
                return (
                    Task::none(),
                    Some(Event::Imported(new, PathBuf::from(self.path.trim()))),
                );
            }
            Message::Written(Ok(path)) => return (Task::none(), Some(Event::Exported(path))),
            Message::Written(Err(e)) => self.stage = Stage::Failed(e),
            Message::Cancel => {
                if !matches!(self.stage, Stage::Working(_)) {
                    return (Task::none(), Some(Event::Close));
                }
            }
        }
        (Task::none(), None)
    }

    /// What Enter or Escape means in the dialog's present stage, if anything.
    pub fn key_message(&self, key: DialogKey) -> Option<Message> {
        match key {
            DialogKey::Cancel => Some(Message::Cancel),
            DialogKey::Submit => match self.stage {
                Stage::TypePath { .. } | Stage::Failed(_) => Some(Message::UsePath),
                Stage::Confirm { .. } => Some(Message::Confirm),
                Stage::Problems { .. } => Some(Message::Cancel),
                _ => None,
            },
            DialogKey::Next | DialogKey::Previous | DialogKey::Find => None,
        }
    }

    fn path_field(&self) -> Element<'_, Message> {
        row![
            text("File:").size(style::TEXT).width(50),
            text_input(
                match self.direction {
                    Direction::Import => "/home/you/fabric.json",
                    Direction::Export => "/home/you/fabric.json (created or replaced)",
                },
                &self.path
            )
            .id(PATH_INPUT)
            .on_input(Message::Path)
            .on_submit(Message::UsePath)
            .padding(6)
            .size(style::TEXT)
            .style(style::text_input_style),
        ]
        .spacing(8)
        .align_y(Alignment::Center)
        .into()
    }

    pub fn view(&self) -> Element<'_, Message> {
        let go = match self.direction {
            Direction::Import => "Import",
            Direction::Export => "Export",
        };
        let (body, buttons): (Element<'_, Message>, Element<'_, Message>) = match &self.stage {
            Stage::Choosing => (
                style::hint("Choose the file in the desktop's file chooser..."),
                row![space().width(Length::Fill), style::command("Cancel", Some(Message::Cancel))].into(),
            ),
            Stage::TypePath { reason } => {
                let mut c = column![].spacing(10);
                if let Some(r) = reason {
                    c = c.push(style::notice(
                        Tone::Warning,
                        format!("No file chooser answered: {r}. Type the file's full path instead."),
                    ));
                }
                c = c.push(self.path_field());
                (
                    c.into(),
                    style::default_and_cancel(go, (!self.path.trim().is_empty()).then_some(Message::UsePath), Message::Cancel),
                )
            }
            Stage::Working(what) => (
                column![text(what.clone()).size(style::TEXT), iced::widget::progress_bar(0.0..=1.0, 0.5).girth(6)]
                    .spacing(8)
                    .into(),
                space().height(0).into(),
            ),
            Stage::Confirm { path, fabric } => (
                column![
                    text(format!("{} is a valid fabric export with {}.", path.display(), counts(fabric))).size(style::TEXT),
                    style::notice(
                        Tone::Warning,
                        "Importing replaces the console's whole fabric in one step. Passwords of imported Run As accounts are not in the file: type them again in Settings ▸ Run As Accounts.",
                    ),
                ]
                .spacing(10)
                .into(),
                style::default_and_cancel("Replace the fabric", Some(Message::Confirm), Message::Cancel),
            ),
            Stage::Problems { path, problems } => {
                let list = column(problems.iter().enumerate().map(|(i, p)| {
                    row![
                        text(format!("{}.", i + 1)).size(style::TEXT).width(34),
                        text(p.clone()).size(style::TEXT).width(Length::Fill),
                    ]
                    .spacing(4)
                    .into()
                }))
                .spacing(4)
                .padding(8);
                (
                    column![
                        style::notice(
                            Tone::Error,
                            format!(
                                "The fabric was not imported: {} {} in {}. Nothing was changed.",
                                problems.len(),
                                if problems.len() == 1 { "problem" } else { "problems" },
                                path.display()
                            ),
                        ),
                        container(scrollable(list).height(Length::Fill)).height(300).width(Length::Fill).style(style::pane),
                        self.path_field(),
                    ]
                    .spacing(10)
                    .into(),
                    row![
                        space().width(Length::Fill),
                        style::command("Try again", (!self.path.trim().is_empty()).then_some(Message::UsePath)),
                        style::default_command("Close", Some(Message::Cancel)),
                    ]
                    .spacing(8)
                    .into(),
                )
            }
            Stage::Failed(e) => (
                column![style::notice(Tone::Error, e.clone()), self.path_field()].spacing(10).into(),
                style::default_and_cancel(go, (!self.path.trim().is_empty()).then_some(Message::UsePath), Message::Cancel),
            ),
        };
        style::dialog_window(
            column![
                style::heading(self.direction.title()),
                style::hint(match self.direction {
                    Direction::Import => "Replace the console's fabric with a file exported by Fabric Console.",
                    Direction::Export => "Write the whole fabric as JSON. Run As passwords and tokens are never exported.",
                }),
                body,
                buttons,
            ]
            .spacing(12),
            640,
        )
        .id(DIALOG_ID)
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn a_bad_file_lists_every_problem_and_a_good_one_reads() {
        let dir = tempfile::tempdir().expect("dir");
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, r#"{"format":"something","version":9,"fabric":{}}"#).expect("write");
        let (_, problems) = run(read(bad)).expect_err("refused");
        assert!(problems.len() >= 2, "{problems:?}");
        let missing = dir.path().join("missing.json");
        let (_, problems) = run(read(missing)).expect_err("refused");
        assert!(problems[0].contains("could not be read"), "{problems:?}");
        let good = dir.path().join("good.json");
        let fabric = crate::fabric::demo::demo_fabric(50, 1);
        std::fs::write(&good, export_json(&fabric)).expect("write");
        let (_, read_back) = run(read(good)).expect("valid");
        assert_eq!(*read_back, fabric);
    }
}
