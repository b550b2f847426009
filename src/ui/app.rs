//! The console shell: ribbon, navigation pane with workspace buttons, results and details panes,
//! status bar, context menus and modal dialogs. Screens own their state; the shell routes their
//! events to the store and the engine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use iced::widget::{
    button, center, column, container, mouse_area, opaque, pin, progress_bar, row, space, stack,
    text,
};
use iced::{Alignment, Element, Length, Point, Size, Subscription, Task, Theme, keyboard, window};

use crate::fabric::model::{Fabric, Id};
use crate::ipam::provider::{ProviderDescriptor, TestReport};
use crate::ops::run_as::RunAsError;
use crate::ops::service::ServiceError;
use crate::ops::{self, EngineInbox};
use crate::sync::plan::PlanSummary;
use crate::sync::status::{
    EngineCommand, EngineEvent, EngineSnapshot, JobRecord, JobTrigger, StatusMap, SyncState,
};
use crate::ui::admin::{self, Admin};
use crate::ui::compare::{self, CompareScreen};
use crate::ui::context::AppContext;
use crate::ui::engine_events::{EngineNotice, engine_events};
use crate::ui::exchange::{self, Exchange};
use crate::ui::fabric_workspace::{self, FabricWorkspace, Node};
use crate::ui::focus::{self, DialogKey};
use crate::ui::jobs::{self, JobsWorkspace};
use crate::ui::metrics::UiMetrics;
use crate::ui::preferences::{Preferences, ThemeChoice, Workspace};
use crate::ui::preview::{self, Preview, PreviewState};
use crate::ui::properties::{self, Properties};
use crate::ui::ribbon::{self, Action, Ribbon};
use crate::ui::run_as_dialog;
use crate::ui::settings::{self, SettingsWorkspace};
use crate::ui::style::{self, Tone};
use crate::ui::wizard::{self, Wizard};

/// Items of the network service context menu.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MenuItem {
    Refresh,
    Preview,
    /// The side-by-side view of the console and the IPAM server.
    Compare,
    Remove,
    Properties,
    /// Add Resources ▸ Network Service.
    AddNetworkService,
}

impl MenuItem {
    pub const ALL: [MenuItem; 5] = [
        MenuItem::Refresh,
        MenuItem::Preview,
        MenuItem::Compare,
        MenuItem::Remove,
        MenuItem::Properties,
    ];
    pub fn label(self) -> &'static str {
        match self {
            MenuItem::Refresh => "Refresh",
            MenuItem::Preview => "Preview changes",
            MenuItem::Compare => "Side-by-side view",
            MenuItem::Remove => "Remove",
            MenuItem::Properties => "Properties",
            MenuItem::AddNetworkService => "Network Service",
        }
    }
}

const MENU_WIDTH: f32 = 190.0;
const MENU_ITEM_HEIGHT: f32 = 26.0;

/// Keys the console answers when no widget took them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAction {
    RefreshSelected,
    Escape,
    AddNetworkService,
    RemoveSelected,
    PropertiesSelected,
    /// Enter: the open wizard's Next (or Finish on Summary).
    Submit,
}

/// F5 refreshes, Escape closes, Ctrl+N adds a network service, Delete removes, Alt+Enter opens
/// Properties, Enter moves the wizard on.
pub fn key_action(key: &keyboard::Key, modifiers: keyboard::Modifiers) -> Option<KeyAction> {
    use keyboard::key::Named;
    match key {
        keyboard::Key::Named(Named::F5) => Some(KeyAction::RefreshSelected),
        keyboard::Key::Named(Named::Escape) => Some(KeyAction::Escape),
        keyboard::Key::Named(Named::Delete) => Some(KeyAction::RemoveSelected),
        keyboard::Key::Named(Named::Enter) if modifiers.alt() => {
            Some(KeyAction::PropertiesSelected)
        }
        keyboard::Key::Named(Named::Enter) => Some(KeyAction::Submit),
        keyboard::Key::Character(c)
            if modifiers.command() && c.as_str().eq_ignore_ascii_case("n") =>
        {
            Some(KeyAction::AddNetworkService)
        }
        _ => None,
    }
}

fn key_message(event: keyboard::Event) -> Option<Message> {
    match event {
        keyboard::Event::KeyPressed { key, modifiers, .. } => {
            key_action(&key, modifiers).map(Message::Key)
        }
        _ => None,
    }
}

/// Tab, Shift+Tab, Enter, Escape and Ctrl+F for dialogs and the side-by-side view. Escape
/// counts even when a text box took it, so a dialog closes while a field has the focus.
fn dialog_key_event(
    event: iced::Event,
    status: iced::event::Status,
    _window: window::Id,
) -> Option<Message> {
    let iced::Event::Keyboard(keyboard::Event::KeyPressed { key, modifiers, .. }) = event else {
        return None;
    };
    let k = focus::dialog_key(&key, modifiers)?;
    let captured = status == iced::event::Status::Captured;
    (!captured || k == DialogKey::Cancel).then_some(Message::DialogKey(k, captured))
}

/// Which lists of the fabric administration a node of the Fabric pane shows.
pub fn admin_tabs(node: Node) -> &'static [admin::Tab] {
    match node {
        Node::LogicalNetworks => &[
            admin::Tab::LogicalNetworks,
            admin::Tab::NetworkSites,
            admin::Tab::IpPools,
        ],
        Node::VmNetworks => &[admin::Tab::VmNetworks, admin::Tab::IpPools],
        Node::Servers | Node::HostGroup(_) => &[admin::Tab::HostGroups],
        Node::Networking | Node::NetworkService => &[],
    }
}

#[derive(Debug, Clone)]
pub enum Modal {
    Wizard(Box<Wizard>),
    Properties(Box<Properties>),
    Preview(Box<Preview>),
    ConfirmRemove {
        service: Id,
        name: String,
        removing: bool,
    },
}

/// A context menu (a service's actions) or the ribbon's Add Resources dropdown.
#[derive(Debug, Clone, Copy)]
struct ContextMenu {
    service: Option<Id>,
    position: Point,
}

impl ContextMenu {
    fn items(&self) -> &'static [MenuItem] {
        match self.service {
            Some(_) => &MenuItem::ALL,
            None => &[MenuItem::AddNetworkService],
        }
    }
}

/// Who asked to save a Run As account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunAsOrigin {
    Wizard,
    Settings,
}

#[derive(Debug, Clone)]
pub enum Message {
    Ribbon(ribbon::Message),
    Fabric(fabric_workspace::Message),
    Jobs(jobs::Message),
    Settings(settings::Message),
    Wizard(wizard::Message),
    Properties(properties::Message),
    Preview(preview::Message),
    Admin(admin::Message),
    Compare(compare::Message),
    Exchange(exchange::Message),
    /// A dialog key; `captured` when a text box had already handled it.
    DialogKey(DialogKey, bool),
    ShowWorkspace(Workspace),
    Menu(MenuItem),
    CloseMenu,
    ConfirmRemove(bool),
    DismissNotice,
    Engine(EngineNotice),
    CursorMoved(Point),
    WindowResized(Size),
    CloseRequested(window::Id),
    Key(KeyAction),
    SystemTheme(iced::theme::Mode),
    FabricReloaded(Result<Arc<Fabric>, String>),
    ServiceAdded(Result<(Arc<Fabric>, Id), ServiceError>),
    ServiceUpdated(Result<Arc<Fabric>, ServiceError>),
    ServiceRemoved(Result<(Arc<Fabric>, Id), ServiceError>),
    RunAsSaved {
        origin: RunAsOrigin,
        result: Result<(Arc<Fabric>, Id), RunAsError>,
    },
    RunAsDeleted(Result<Arc<Fabric>, RunAsError>),
    TestFinished(Result<TestReport, ServiceError>),
    PreviewReady(Id, Result<PlanSummary, String>),
    Tick(Instant),
    LogMetrics,
}

pub struct App {
    ctx: AppContext,
    fabric: Arc<Fabric>,
    /// The engine's latest statuses and jobs, rendered as published.
    sync: Arc<EngineSnapshot>,
    providers: Vec<ProviderDescriptor>,
    prefs: Preferences,
    system_mode: iced::theme::Mode,
    light: Theme,
    dark: Theme,
    ribbon: Ribbon,
    fabric_ws: FabricWorkspace,
    jobs_ws: JobsWorkspace,
    settings_ws: SettingsWorkspace,
    admin: Admin,
    compare: Option<Box<CompareScreen>>,
    exchange: Option<Box<Exchange>>,
    modal: Option<Modal>,
    context_menu: Option<ContextMenu>,
    cursor: Point,
    window: Size,
    notice: Option<(Tone, String)>,
    /// The engine's current work, for the status bar: (service, stage text, fraction).
    activity: Option<(Id, String, Option<f32>)>,
    metrics: Arc<UiMetrics>,
}

impl App {
    /// The console on a running engine; the boot task asks the desktop for its light/dark mode.
    pub fn new(ctx: AppContext, prefs: Preferences) -> (Self, Task<Message>) {
        let app = Self::with_context(ctx, prefs);
        (app, iced::system::theme().map(Message::SystemTheme))
    }

    /// The console without boot tasks, for tests.
    pub fn with_context(ctx: AppContext, prefs: Preferences) -> Self {
        let fabric = ctx.store.fabric();
        let sync = ctx.engine.snapshot();
        let providers = ctx.registry.list();
        App {
            window: prefs.window_size(),
            ctx,
            fabric,
            sync,
            providers,
            prefs,
            system_mode: iced::theme::Mode::None,
            light: style::light(),
            dark: style::dark(),
            ribbon: Ribbon::default(),
            fabric_ws: FabricWorkspace::default(),
            jobs_ws: JobsWorkspace::default(),
            settings_ws: SettingsWorkspace::default(),
            admin: Admin::default(),
            compare: None,
            exchange: None,
            modal: None,
            context_menu: None,
            cursor: Point::ORIGIN,
            notice: None,
            activity: None,
            metrics: Arc::new(UiMetrics::default()),
        }
    }

    pub fn title(&self) -> String {
        let ws = self.prefs.workspace.label();
        format!("{ws} - Fabric Console")
    }

    pub fn theme(&self) -> Theme {
        let dark = match self.prefs.theme {
            ThemeChoice::Dark => true,
            ThemeChoice::Light => false,
            ThemeChoice::System => self.system_mode == iced::theme::Mode::Dark,
        };
        if dark {
            self.dark.clone()
        } else {
            self.light.clone()
        }
    }

    // Accessors for tests and diagnostics.
    pub fn fabric(&self) -> &Fabric {
        &self.fabric
    }
    pub fn context(&self) -> &AppContext {
        &self.ctx
    }
    pub fn commands(&self) -> Vec<EngineCommand> {
        self.ctx.commands.snapshot()
    }
    pub fn modal(&self) -> Option<&Modal> {
        self.modal.as_ref()
    }
    pub fn wizard(&self) -> Option<&Wizard> {
        match &self.modal {
            Some(Modal::Wizard(w)) => Some(w),
            _ => None,
        }
    }
    pub fn admin(&self) -> &Admin {
        &self.admin
    }
    pub fn compare(&self) -> Option<&CompareScreen> {
        self.compare.as_deref()
    }
    pub fn exchange(&self) -> Option<&Exchange> {
        self.exchange.as_deref()
    }
    /// A dialog of the fabric administration, import/export or the side-by-side view is open.
    pub fn screen_dialog_open(&self) -> bool {
        self.admin.is_modal()
            || self.exchange.is_some()
            || self.compare.as_ref().is_some_and(|c| c.confirm.is_some())
    }
    pub fn context_menu_open(&self) -> bool {
        self.context_menu.is_some()
    }
    /// Top-left corner of the open menu, in window coordinates.
    pub fn context_menu_position(&self) -> Option<Point> {
        self.context_menu.map(|m| m.position)
    }
    pub fn selected_service(&self) -> Option<Id> {
        self.fabric_ws.current_service(&self.fabric)
    }
    pub fn workspace(&self) -> Workspace {
        self.prefs.workspace
    }
    pub fn preferences(&self) -> &Preferences {
        &self.prefs
    }
    pub fn statuses(&self) -> &StatusMap {
        &self.sync.statuses
    }
    pub fn jobs(&self) -> &[JobRecord] {
        &self.sync.jobs
    }
    pub fn notice(&self) -> Option<&str> {
        self.notice.as_ref().map(|(_, s)| s.as_str())
    }
    pub fn metrics(&self) -> Arc<UiMetrics> {
        self.metrics.clone()
    }
    pub fn set_window_size(&mut self, size: Size) {
        self.window = size;
    }

    pub fn subscription(&self) -> Subscription<Message> {
        let mut subs = vec![
            Subscription::run_with(self.ctx.engine.clone(), engine_events).map(Message::Engine),
            keyboard::listen().filter_map(key_message),
            iced::event::listen_with(dialog_key_event),
            window::resize_events().map(|(_, size)| Message::WindowResized(size)),
            window::close_requests().map(Message::CloseRequested),
            iced::system::theme_changes().map(Message::SystemTheme),
            iced::time::every(Duration::from_secs(30)).map(|_| Message::LogMetrics),
        ];
        let animating = self.wizard().is_some_and(Wizard::is_testing)
            || matches!(&self.modal, Some(Modal::Preview(p)) if matches!(p.state, PreviewState::Loading));
        if animating {
            subs.push(iced::time::every(wizard::provider::TICK).map(Message::Tick));
        }
        Subscription::batch(subs)
    }

    pub fn update(&mut self, message: Message) -> Task<Message> {
        let started = Instant::now();
        let task = self.handle(message);
        self.metrics.update.record(started.elapsed());
        task
    }

    fn handle(&mut self, message: Message) -> Task<Message> {
        match message {
            Message::Ribbon(m) => match self.ribbon.update(m) {
                Some(action) => self.ribbon_action(action),
                None => Task::none(),
            },
            Message::Fabric(m) => match self.fabric_message(m) {
                Some(fabric_workspace::Event::OpenProperties(id)) => self.open_properties(id),
                Some(fabric_workspace::Event::ContextMenu(id)) => {
                    self.open_menu(Some(id), self.cursor);
                    Task::none()
                }
                None => Task::none(),
            },
            Message::Jobs(m) => {
                self.jobs_ws.update(m);
                Task::none()
            }
            Message::Settings(m) => match self.settings_ws.update(m, &self.fabric) {
                Some(settings::Event::SaveRunAs(save)) => {
                    self.save_run_as(save, RunAsOrigin::Settings)
                }
                Some(settings::Event::DeleteRunAs(id)) => self.delete_run_as(id),
                None => Task::none(),
            },
            Message::Wizard(m) => self.wizard_message(m),
            Message::Properties(m) => {
                let Some(Modal::Properties(p)) = &mut self.modal else {
                    return Task::none();
                };
                match p.update(m) {
                    Some(properties::Event::Cancel) => {
                        self.modal = None;
                        Task::none()
                    }
                    Some(properties::Event::Save(service)) => {
                        let ctx = self.ctx.clone();
                        Task::perform(
                            async move { ops::service::update(&ctx.store, &ctx, *service).await },
                            Message::ServiceUpdated,
                        )
                    }
                    None => Task::none(),
                }
            }
            Message::Preview(m) => {
                let Some(Modal::Preview(p)) = &mut self.modal else {
                    return Task::none();
                };
                match p.update(m) {
                    Some(preview::Event::Close) => self.modal = None,
                    Some(preview::Event::Refresh(id)) => {
                        self.modal = None;
                        self.refresh(id);
                    }
                    None => {}
                }
                Task::none()
            }
            Message::Admin(m) => {
                let (task, event) = self.admin.update(m, &self.fabric, &self.ctx.store);
                if let Some(admin::Event::FabricChanged(fabric, text)) = event {
                    self.set_fabric(fabric);
                    self.notice = Some((Tone::Success, text));
                }
                task.map(Message::Admin)
            }
            Message::Compare(m) => self.compare_message(m),
            Message::Exchange(m) => self.exchange_message(m),
            Message::DialogKey(k, captured) => self.dialog_key(k, captured),
            Message::ShowWorkspace(ws) => self.show_workspace(ws),
            Message::Menu(item) => {
                let Some(menu) = self.context_menu.take() else {
                    return Task::none();
                };
                match menu.service {
                    Some(id) => {
                        self.fabric_ws.selected_service = Some(id);
                        self.service_action(item, id)
                    }
                    None => self.open_wizard(),
                }
            }
            Message::CloseMenu => {
                self.context_menu = None;
                Task::none()
            }
            Message::ConfirmRemove(yes) => {
                let Some(Modal::ConfirmRemove {
                    service, removing, ..
                }) = &mut self.modal
                else {
                    return Task::none();
                };
                if !yes {
                    self.modal = None;
                    return Task::none();
                }
                if *removing {
                    return Task::none();
                }
                *removing = true;
                let id = *service;
                let ctx = self.ctx.clone();
                Task::perform(
                    async move {
                        ops::service::remove(&ctx.store, &ctx, id)
                            .await
                            .map(|f| (f, id))
                    },
                    Message::ServiceRemoved,
                )
            }
            Message::DismissNotice => {
                self.notice = None;
                Task::none()
            }
            Message::Engine(notice) => {
                self.metrics
                    .engine_events
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.engine_notice(notice)
            }
            Message::CursorMoved(p) => {
                self.cursor = p;
                Task::none()
            }
            Message::WindowResized(size) => {
                self.window = size;
                self.prefs.window_width = size.width;
                self.prefs.window_height = size.height;
                Task::none()
            }
            Message::CloseRequested(_) => {
                self.save_preferences_now();
                self.metrics.log();
                iced::exit()
            }
            Message::Key(k) => self.key(k),
            Message::SystemTheme(mode) => {
                self.system_mode = mode;
                Task::none()
            }
            Message::FabricReloaded(Ok(fabric)) => {
                self.set_fabric(fabric);
                Task::none()
            }
            Message::FabricReloaded(Err(e)) => {
                self.notice = Some((Tone::Error, e));
                Task::none()
            }
            Message::ServiceAdded(result) => {
                match result {
                    Ok((fabric, id)) => {
                        self.set_fabric(fabric);
                        self.sync = self.ctx.engine.snapshot();
                        let name = self
                            .fabric
                            .network_services
                            .get(&id)
                            .map(|s| s.name.clone())
                            .unwrap_or_default();
                        self.modal = None;
                        self.fabric_ws.reveal_service(id);
                        self.prefs.workspace = Workspace::Fabric;
                        self.notice = Some((
                            Tone::Success,
                            format!(
                                "Network service \"{name}\" was added; its first sync has started."
                            ),
                        ));
                    }
                    Err(e) => {
                        let e = e.to_string();
                        if let Some(Modal::Wizard(w)) = &mut self.modal {
                            w.finish_failed(e);
                        } else {
                            self.notice = Some((Tone::Error, e));
                        }
                    }
                }
                Task::none()
            }
            Message::ServiceUpdated(result) => {
                match result {
                    Ok(fabric) => {
                        self.set_fabric(fabric);
                        self.modal = None;
                    }
                    Err(e) => {
                        let e = e.to_string();
                        if let Some(Modal::Properties(p)) = &mut self.modal {
                            p.failed(e);
                        } else {
                            self.notice = Some((Tone::Error, e));
                        }
                    }
                }
                Task::none()
            }
            Message::ServiceRemoved(result) => {
                match result {
                    Ok((fabric, id)) => {
                        let name = self
                            .fabric
                            .network_services
                            .get(&id)
                            .map(|s| s.name.clone())
                            .unwrap_or_default();
                        self.set_fabric(fabric);
                        self.sync = self.ctx.engine.snapshot();
                        if self.fabric_ws.selected_service == Some(id) {
                            self.fabric_ws.selected_service = None;
                        }
                        self.modal = None;
                        self.notice = Some((
                            Tone::Info,
                            format!("Network service \"{name}\" was removed."),
                        ));
                    }
                    Err(e) => {
                        self.modal = None;
                        self.notice = Some((Tone::Error, e.to_string()));
                    }
                }
                Task::none()
            }
            Message::RunAsSaved { origin, result } => {
                let id_result = match result {
                    Ok((fabric, id)) => {
                        self.set_fabric(fabric);
                        // Services using an edited account pick up its new credentials.
                        for s in self
                            .fabric
                            .network_services
                            .values()
                            .filter(|s| s.run_as == id)
                        {
                            self.ctx
                                .send(EngineCommand::UpdateService(Box::new(s.clone())));
                        }
                        Ok(id)
                    }
                    Err(e) => Err(e.to_string()),
                };
                match origin {
                    RunAsOrigin::Wizard => {
                        if let Some(Modal::Wizard(w)) = &mut self.modal {
                            w.run_as_saved(id_result);
                        }
                    }
                    RunAsOrigin::Settings => self.settings_ws.run_as_saved(id_result),
                }
                Task::none()
            }
            Message::RunAsDeleted(result) => {
                match result {
                    Ok(fabric) => self.set_fabric(fabric),
                    Err(e) => self.settings_ws.error = Some(e.to_string()),
                }
                Task::none()
            }
            Message::TestFinished(result) => {
                if let Some(Modal::Wizard(w)) = &mut self.modal {
                    w.test_finished(result.map_err(|e| e.to_string()));
                }
                Task::none()
            }
            Message::PreviewReady(id, result) => {
                if let Some(Modal::Preview(p)) = &mut self.modal
                    && p.service == id
                {
                    p.state = match result {
                        Ok(summary) => PreviewState::Ready(summary),
                        Err(e) => PreviewState::Failed(e),
                    };
                }
                Task::none()
            }
            Message::Tick(now) => {
                if let Some(Modal::Wizard(w)) = &mut self.modal {
                    w.update(wizard::Message::Tick(now));
                }
                Task::none()
            }
            Message::LogMetrics => {
                self.metrics.log();
                Task::none()
            }
        }
    }

    /// Opens a menu at the cursor, kept inside the window.
    fn open_menu(&mut self, service: Option<Id>, at: Point) {
        let mut menu = ContextMenu {
            service,
            position: at,
        };
        let height = MENU_ITEM_HEIGHT * menu.items().len() as f32 + 10.0;
        let x = at.x.min(self.window.width - MENU_WIDTH - 4.0).max(0.0);
        let y = at.y.min(self.window.height - height - 4.0).max(0.0);
        menu.position = Point::new(x, y);
        self.context_menu = Some(menu);
    }

    fn set_fabric(&mut self, fabric: Arc<Fabric>) {
        if let Some(Modal::Wizard(w)) = &mut self.modal {
            w.set_fabric(fabric.clone());
        }
        self.fabric = fabric;
    }

    fn ribbon_action(&mut self, action: Action) -> Task<Message> {
        let selected = self.fabric_ws.current_service(&self.fabric);
        match action {
            Action::ShowFabricResources => {
                self.fabric_ws.update(fabric_workspace::Message::SelectNode(
                    fabric_workspace::Node::NetworkService,
                ));
                self.show_workspace(Workspace::Fabric)
            }
            Action::AddResources => {
                if self.modal.is_none() {
                    self.open_menu(None, Point::new(self.cursor.x - 20.0, 104.0));
                }
                Task::none()
            }
            Action::AddNetworkService => self.open_wizard(),
            Action::ShowJobs => self.show_workspace(Workspace::Jobs),
            Action::ShowSettings => self.show_workspace(Workspace::Settings),
            Action::Refresh => {
                selected.map_or_else(Task::none, |id| self.service_action(MenuItem::Refresh, id))
            }
            Action::Preview => {
                selected.map_or_else(Task::none, |id| self.service_action(MenuItem::Preview, id))
            }
            Action::Remove => {
                selected.map_or_else(Task::none, |id| self.service_action(MenuItem::Remove, id))
            }
            Action::Properties => selected.map_or_else(Task::none, |id| {
                self.service_action(MenuItem::Properties, id)
            }),
            Action::Compare => {
                selected.map_or_else(Task::none, |id| self.service_action(MenuItem::Compare, id))
            }
            Action::Import => self.open_exchange(exchange::Direction::Import),
            Action::Export => self.open_exchange(exchange::Direction::Export),
            Action::Theme(choice) => {
                self.prefs.theme = choice;
                self.save_preferences()
            }
        }
    }

    fn show_workspace(&mut self, ws: Workspace) -> Task<Message> {
        self.context_menu = None;
        if self.prefs.workspace == ws {
            return Task::none();
        }
        self.prefs.workspace = ws;
        self.save_preferences()
    }

    fn open_wizard(&mut self) -> Task<Message> {
        if self.modal.is_some() {
            return Task::none();
        }
        self.context_menu = None;
        self.modal = Some(Modal::Wizard(Box::new(Wizard::new(
            self.fabric.clone(),
            self.providers.clone(),
            self.ctx.skew_threshold_ms,
        ))));
        iced::widget::operation::focus(wizard::name::NAME_INPUT)
    }

    fn open_properties(&mut self, id: Id) -> Task<Message> {
        if self.modal.is_some() {
            return Task::none();
        }
        if let Some(s) = self.fabric.network_services.get(&id) {
            self.modal = Some(Modal::Properties(Box::new(Properties::new(
                self.fabric.clone(),
                s,
            ))));
        }
        Task::none()
    }

    fn refresh(&mut self, id: Id) {
        let Some(s) = self.fabric.network_services.get(&id) else {
            return;
        };
        self.activity = Some((id, format!("Refresh of {} requested", s.name), None));
        self.ctx.send(EngineCommand::RefreshNow {
            service: id,
            trigger: JobTrigger::Refresh,
        });
    }

    fn service_action(&mut self, item: MenuItem, id: Id) -> Task<Message> {
        let Some(service) = self.fabric.network_services.get(&id) else {
            return Task::none();
        };
        match item {
            MenuItem::Refresh => {
                self.refresh(id);
                Task::none()
            }
            MenuItem::Properties => self.open_properties(id),
            MenuItem::Remove => {
                if self.modal.is_none() {
                    self.modal = Some(Modal::ConfirmRemove {
                        service: id,
                        name: service.name.clone(),
                        removing: false,
                    });
                }
                Task::none()
            }
            MenuItem::AddNetworkService => self.open_wizard(),
            MenuItem::Compare => self.open_compare(id),
            MenuItem::Preview => {
                if self.modal.is_some() {
                    return Task::none();
                }
                self.modal = Some(Modal::Preview(Box::new(Preview::new(
                    id,
                    service.name.clone(),
                ))));
                let engine = self.ctx.engine.clone();
                Task::perform(
                    async move { engine.preview(id).await.map(|plan| plan.summary) },
                    move |r| Message::PreviewReady(id, r),
                )
            }
        }
    }

    fn key(&mut self, key: KeyAction) -> Task<Message> {
        // The screens' own dialogs answer their keys through `dialog_key`.
        if self.screen_dialog_open() {
            return Task::none();
        }
        if self.modal.is_none()
            && self.context_menu.is_none()
            && self.prefs.workspace == Workspace::Fabric
            && self.compare.is_none()
            && !admin_tabs(self.fabric_ws.node).is_empty()
            && let Some(id) = self.admin.selected
        {
            let kind = self.admin.tab.kind();
            match key {
                KeyAction::RemoveSelected => {
                    self.admin.ask_delete(kind, id, &self.fabric);
                    return Task::none();
                }
                KeyAction::PropertiesSelected => {
                    return self.admin.edit(kind, id, &self.fabric).map(Message::Admin);
                }
                _ => {}
            }
        }
        match key {
            KeyAction::Escape => {
                if self.context_menu.take().is_some() {
                    return Task::none();
                }
                match &mut self.modal {
                    Some(Modal::Wizard(_)) => self.wizard_message(wizard::Message::Cancel),
                    Some(Modal::Properties(_)) | Some(Modal::Preview(_)) => {
                        self.modal = None;
                        Task::none()
                    }
                    Some(Modal::ConfirmRemove {
                        removing: false, ..
                    }) => {
                        self.modal = None;
                        Task::none()
                    }
                    _ => Task::none(),
                }
            }
            KeyAction::Submit => match &self.modal {
                Some(Modal::Wizard(w)) if w.run_as_dialog.is_none() && !w.confirm_cancel => {
                    let step = if w.page == wizard::Page::Summary {
                        wizard::Message::Finish
                    } else {
                        wizard::Message::Next
                    };
                    self.wizard_message(step)
                }
                // The other dialogs' default buttons: Save, Yes, Close.
                Some(Modal::Properties(_)) => {
                    self.handle(Message::Properties(properties::Message::Save))
                }
                Some(Modal::ConfirmRemove { .. }) => self.handle(Message::ConfirmRemove(true)),
                Some(Modal::Preview(_)) => self.handle(Message::Preview(preview::Message::Close)),
                _ => Task::none(),
            },
            _ if self.modal.is_some() => Task::none(),
            KeyAction::AddNetworkService => self.open_wizard(),
            KeyAction::RefreshSelected
            | KeyAction::RemoveSelected
            | KeyAction::PropertiesSelected => {
                if self.prefs.workspace != Workspace::Fabric {
                    return Task::none();
                }
                let Some(id) = self.fabric_ws.current_service(&self.fabric) else {
                    return Task::none();
                };
                let item = match key {
                    KeyAction::RefreshSelected => MenuItem::Refresh,
                    KeyAction::RemoveSelected => MenuItem::Remove,
                    _ => MenuItem::Properties,
                };
                self.service_action(item, id)
            }
        }
    }

    fn wizard_message(&mut self, m: wizard::Message) -> Task<Message> {
        let Some(Modal::Wizard(w)) = &mut self.modal else {
            return Task::none();
        };
        let focus = matches!(&m, wizard::Message::Next | wizard::Message::Previous);
        let event = w.update(m);
        let focus_task = if focus {
            match w.page {
                wizard::Page::Name => iced::widget::operation::focus(wizard::name::NAME_INPUT),
                wizard::Page::ConnectionString => {
                    iced::widget::operation::focus(wizard::connection::CONNECTION_INPUT)
                }
                _ => Task::none(),
            }
        } else {
            Task::none()
        };
        let task = match event {
            None => Task::none(),
            Some(wizard::Event::Cancelled) => {
                self.modal = None;
                Task::none()
            }
            Some(wizard::Event::SaveRunAs(save)) => self.save_run_as(save, RunAsOrigin::Wizard),
            Some(wizard::Event::Test {
                provider,
                connection,
                run_as,
                service_name,
            }) => {
                let ctx = self.ctx.clone();
                let fabric = self.fabric.clone();
                Task::perform(
                    async move {
                        ops::service::test_unsaved(
                            &ctx.engine,
                            &fabric,
                            &ctx.secrets,
                            &provider,
                            connection,
                            run_as,
                            service_name,
                        )
                        .await
                    },
                    Message::TestFinished,
                )
            }
            Some(wizard::Event::Finish(service)) => {
                let ctx = self.ctx.clone();
                let id = service.id;
                Task::perform(
                    async move {
                        ops::service::add(&ctx.store, &ctx, *service)
                            .await
                            .map(|f| (f, id))
                    },
                    Message::ServiceAdded,
                )
            }
        };
        Task::batch([task, focus_task])
    }

    /// The account and its secret are saved together (see `ops::run_as::save`).
    fn save_run_as(&mut self, save: run_as_dialog::Event, origin: RunAsOrigin) -> Task<Message> {
        let run_as_dialog::Event::Save { account, secret } = save else {
            return Task::none();
        };
        let ctx = self.ctx.clone();
        let id = account.id;
        Task::perform(
            async move {
                ops::run_as::save(&ctx.store, &ctx.secrets, account, secret)
                    .await
                    .map(|f| (f, id))
            },
            move |result| Message::RunAsSaved { origin, result },
        )
    }

    fn delete_run_as(&mut self, id: Id) -> Task<Message> {
        let ctx = self.ctx.clone();
        Task::perform(
            async move { ops::run_as::delete(&ctx.store, &ctx.secrets, id).await },
            Message::RunAsDeleted,
        )
    }

    /// The engine published a snapshot or told of an event: render the latest snapshot (the
    /// engine publishes before it tells), and follow up in the dialogs and the status bar.
    fn engine_notice(&mut self, notice: EngineNotice) -> Task<Message> {
        let event = match notice {
            EngineNotice::Snapshot(snapshot) => {
                self.sync = snapshot;
                return Task::none();
            }
            EngineNotice::Lagged(_) => {
                self.sync = self.ctx.engine.snapshot();
                self.set_fabric(self.ctx.store.fabric());
                return Task::none();
            }
            EngineNotice::Event(e) => e,
        };
        self.sync = self.ctx.engine.snapshot();
        match event {
            EngineEvent::Started { service, .. } | EngineEvent::Progress { service, .. } => {
                self.set_activity(service)
            }
            EngineEvent::StatusChanged(status) => {
                if matches!(status.state, SyncState::Syncing { .. }) {
                    self.set_activity(status.service);
                } else {
                    self.end_activity(status.service);
                }
            }
            EngineEvent::Failed { service, .. } => self.end_activity(service),
            EngineEvent::PlanReady {
                service, summary, ..
            } => {
                if let Some(Modal::Preview(p)) = &mut self.modal
                    && p.service == service
                {
                    p.state = PreviewState::Ready(summary);
                }
            }
            EngineEvent::FabricChanged => self.set_fabric(self.ctx.store.fabric()),
            EngineEvent::Finished { service, .. } => {
                self.end_activity(service);
                if let Some(c) = self.compare.as_mut().filter(|c| c.service == service) {
                    c.synced();
                    return self.reload_compare();
                }
            }
            EngineEvent::Conflicts { .. } | EngineEvent::SkewMeasured { .. } => {}
        }
        Task::none()
    }

    fn end_activity(&mut self, service: Id) {
        if self.activity.as_ref().is_some_and(|a| a.0 == service) {
            self.activity = None;
        }
    }

    fn set_activity(&mut self, service: Id) {
        let name = self
            .fabric
            .network_services
            .get(&service)
            .map(|s| s.name.clone())
            .unwrap_or_else(|| "network service".into());
        if let Some(st) = self.sync.statuses.get(&service) {
            let fraction = fabric_workspace::progress_fraction(&st.state);
            let line = match &st.state {
                SyncState::Syncing { stage, done, total } if *total > 0 => {
                    format!("Syncing {name}: {} ({done} of {total})", stage.label())
                }
                SyncState::Syncing { stage, .. } => format!("Syncing {name}: {}", stage.label()),
                other => format!("{name}: {}", other.label()),
            };
            self.activity = Some((service, line, fraction));
        }
    }

    fn save_preferences(&self) -> Task<Message> {
        let Some(path) = self.ctx.preferences_file.clone() else {
            return Task::none();
        };
        let prefs = self.prefs.clone();
        Task::future(async move {
            let result = tokio::task::spawn_blocking(move || prefs.save(&path)).await;
            if let Ok(Err(e)) | Err(e) = result.map_err(std::io::Error::other) {
                tracing::warn!(error = %e, "could not save the console's settings");
            }
        })
        .discard()
    }

    fn save_preferences_now(&self) {
        if let Some(path) = &self.ctx.preferences_file
            && let Err(e) = self.prefs.save(path)
        {
            tracing::warn!(error = %e, "could not save the console's settings");
        }
    }

    pub fn view(&self) -> Element<'_, Message> {
        let started = Instant::now();
        let view = self.shell();
        self.metrics.view.record(started.elapsed());
        view
    }

    fn shell(&self) -> Element<'_, Message> {
        let selection = self
            .fabric_ws
            .current_service(&self.fabric)
            .filter(|_| self.prefs.workspace == Workspace::Fabric)
            .and_then(|id| self.fabric.network_services.get(&id))
            .map(|s| s.name.as_str());
        let ribbon = self
            .ribbon
            .view(selection, self.prefs.theme)
            .map(Message::Ribbon);
        let data = fabric_workspace::Data {
            fabric: &self.fabric,
            statuses: &self.sync.statuses,
            jobs: &self.sync.jobs,
        };
        let (tree, main): (Element<'_, Message>, Element<'_, Message>) = match self.prefs.workspace
        {
            Workspace::Fabric => (
                self.fabric_ws.tree(&data).map(Message::Fabric),
                match &self.compare {
                    Some(c) => container(c.view().map(Message::Compare))
                        .height(Length::Fill)
                        .width(Length::Fill)
                        .into(),
                    None => self.fabric_main(&data),
                },
            ),
            Workspace::Jobs => (
                container(style::hint(
                    "Every sync run of every network service, newest first.",
                ))
                .padding(8)
                .into(),
                self.jobs_ws
                    .view(&self.sync.jobs, &self.fabric)
                    .map(Message::Jobs),
            ),
            Workspace::Settings => (
                self.settings_ws.navigation().map(Message::Settings),
                container(
                    self.settings_ws
                        .view(
                            &self.fabric,
                            &self.providers,
                            self.ctx.embedded_ipam.as_ref(),
                        )
                        .map(Message::Settings),
                )
                .style(style::pane)
                .height(Length::Fill)
                .width(Length::Fill)
                .into(),
            ),
        };
        let workspace_buttons = column(Workspace::ALL.iter().map(|ws| {
            button(
                text(ws.label())
                    .size(style::TEXT)
                    .font(if *ws == self.prefs.workspace {
                        style::bold()
                    } else {
                        iced::Font::DEFAULT
                    }),
            )
            .width(Length::Fill)
            .padding([6, 12])
            .style(style::flat(*ws == self.prefs.workspace))
            .on_press(Message::ShowWorkspace(*ws))
            .into()
        }))
        .spacing(1);
        let nav = container(column![
            container(
                text(self.prefs.workspace.label())
                    .size(style::HEADING)
                    .font(style::bold())
            )
            .padding([6, 10]),
            container(tree).height(Length::Fill),
            iced::widget::rule::horizontal(1),
            container(workspace_buttons).padding(4),
        ])
        .width(250)
        .height(Length::Fill)
        .style(style::pane);

        let mut main_column = column![].spacing(6);
        if let Some((tone, message)) = &self.notice {
            main_column = main_column.push(
                container(
                    row![
                        style::status_dot(*tone),
                        text(message.clone()).size(style::TEXT).width(Length::Fill),
                        button(text("Dismiss").size(style::SMALL))
                            .padding([2, 8])
                            .style(style::flat(false))
                            .on_press(Message::DismissNotice),
                    ]
                    .spacing(8)
                    .align_y(Alignment::Center),
                )
                .padding([4, 10])
                .style(style::notice_box(*tone)),
            );
        }
        main_column = main_column.push(main);
        let body = row![nav, main_column]
            .spacing(6)
            .padding(6)
            .height(Length::Fill);

        let root = column![ribbon, body, self.status_bar()];
        let mut layers = stack![
            mouse_area(container(root).width(Length::Fill).height(Length::Fill))
                .on_move(Message::CursorMoved)
        ]
        .width(Length::Fill)
        .height(Length::Fill);

        if let Some(menu) = &self.context_menu {
            layers = layers.push(opaque(
                mouse_area(space().width(Length::Fill).height(Length::Fill))
                    .on_press(Message::CloseMenu)
                    .on_right_press(Message::CloseMenu),
            ));
            let items = column(menu.items().iter().map(|item| {
                button(text(item.label()).size(style::TEXT))
                    .width(Length::Fill)
                    .height(MENU_ITEM_HEIGHT)
                    .padding([4, 12])
                    .style(style::flat(false))
                    .on_press(Message::Menu(*item))
                    .into()
            }));
            layers = layers.push(
                pin(opaque(
                    container(items)
                        .padding(5)
                        .width(MENU_WIDTH)
                        .style(style::menu),
                ))
                .x(menu.position.x)
                .y(menu.position.y),
            );
        }
        if let Some(modal) = &self.modal {
            let content: Element<'_, Message> = match modal {
                Modal::Wizard(w) => w.view().map(Message::Wizard),
                Modal::Properties(p) => p
                    .view(self.sync.statuses.get(&p.service_id()))
                    .map(Message::Properties),
                Modal::Preview(p) => p.view().map(Message::Preview),
                Modal::ConfirmRemove { name, removing, .. } => container(
                    column![
                        style::heading("Remove network service"),
                        text(format!(
                            "Remove the network service \"{name}\"? The console stops syncing with it; nothing is deleted on the IPAM server."
                        ))
                        .size(style::TEXT),
                        row![
                            space().width(Length::Fill),
                            style::default_command("Yes", (!removing).then_some(Message::ConfirmRemove(true))),
                            style::command("No", (!removing).then_some(Message::ConfirmRemove(false))),
                        ]
                        .spacing(8),
                    ]
                    .spacing(12),
                )
                .padding(16)
                .width(460)
                .style(style::dialog)
                .into(),
            };
            layers = layers.push(opaque(
                center(container(content).id(focus::MODAL_ID)).style(style::backdrop),
            ));
        }
        let screen_dialog = self
            .exchange
            .as_ref()
            .map(|x| x.view().map(Message::Exchange))
            .or_else(|| {
                self.admin
                    .modal(&self.fabric)
                    .map(|m| m.map(Message::Admin))
            })
            .or_else(|| {
                self.compare
                    .as_ref()
                    .and_then(|c| c.modal())
                    .map(|m| m.map(Message::Compare))
            });
        if let Some(content) = screen_dialog {
            layers = layers.push(opaque(
                center(container(content).id(focus::MODAL_ID)).style(style::backdrop),
            ));
        }
        layers.into()
    }

    /// The Fabric workspace's results and details panes; the fabric administration's lists for
    /// the nodes that hold host groups, logical networks, sites, pools and VM networks.
    fn fabric_main<'a>(&'a self, data: &fabric_workspace::Data<'a>) -> Element<'a, Message> {
        let tabs = admin_tabs(self.fabric_ws.node);
        let (results, details): (Element<'a, Message>, Element<'a, Message>) = if tabs.is_empty() {
            (
                self.fabric_ws.results(data).map(Message::Fabric),
                self.fabric_ws.details(data).map(Message::Fabric),
            )
        } else {
            (
                self.admin.list(&self.fabric, tabs).map(Message::Admin),
                self.admin.details(&self.fabric).map(Message::Admin),
            )
        };
        column![
            container(results)
                .height(Length::FillPortion(3))
                .width(Length::Fill)
                .style(style::pane),
            container(details)
                .height(Length::FillPortion(2))
                .width(Length::Fill)
                .style(style::pane),
        ]
        .spacing(6)
        .into()
    }

    fn fabric_message(&mut self, m: fabric_workspace::Message) -> Option<fabric_workspace::Event> {
        if matches!(
            m,
            fabric_workspace::Message::SelectNode(_) | fabric_workspace::Message::SelectService(_)
        ) {
            self.compare = None;
        }
        let event = self.fabric_ws.update(m);
        self.admin.show_tabs(admin_tabs(self.fabric_ws.node));
        event
    }

    fn open_compare(&mut self, id: Id) -> Task<Message> {
        let Some(service) = self.fabric.network_services.get(&id) else {
            return Task::none();
        };
        self.context_menu = None;
        let mut screen = CompareScreen::new(id, service.name.clone());
        let load = screen.load(&self.ctx.engine).map(Message::Compare);
        self.compare = Some(Box::new(screen));
        Task::batch([load, self.show_workspace(Workspace::Fabric)])
    }

    fn reload_compare(&mut self) -> Task<Message> {
        match &mut self.compare {
            Some(c) => c.load(&self.ctx.engine).map(Message::Compare),
            None => Task::none(),
        }
    }

    fn compare_message(&mut self, m: compare::Message) -> Task<Message> {
        let Some(screen) = &mut self.compare else {
            return Task::none();
        };
        let ctx = compare::Context {
            fabric: &self.fabric,
            store: &self.ctx.store,
            engine: &self.ctx.engine,
        };
        let (task, event) = screen.update(m, ctx);
        let task = task.map(Message::Compare);
        let follow = match event {
            None => Task::none(),
            Some(compare::Event::Resolved { service, decisions }) => {
                for (conflict, resolution) in decisions {
                    self.ctx.send(EngineCommand::ResolveConflict {
                        service,
                        conflict,
                        resolution,
                    });
                }
                self.reload_compare()
            }
            Some(compare::Event::FabricChanged(fabric, text)) => {
                self.set_fabric(fabric);
                self.notice = Some((Tone::Success, text));
                self.reload_compare()
            }
            Some(compare::Event::Preview(id)) => self.service_action(MenuItem::Preview, id),
            Some(compare::Event::Sync(id)) => {
                self.refresh(id);
                Task::none()
            }
            Some(compare::Event::Close) => {
                self.compare = None;
                Task::none()
            }
        };
        Task::batch([task, follow])
    }

    fn open_exchange(&mut self, direction: exchange::Direction) -> Task<Message> {
        if self.modal.is_some() || self.screen_dialog_open() {
            return Task::none();
        }
        self.context_menu = None;
        let (dialog, task) = Exchange::start(direction);
        self.exchange = Some(Box::new(dialog));
        task.map(Message::Exchange)
    }

    fn exchange_message(&mut self, m: exchange::Message) -> Task<Message> {
        let Some(dialog) = &mut self.exchange else {
            return Task::none();
        };
        let (task, event) = dialog.update(m, &self.fabric, &self.ctx.store);
        match event {
            None => {}
            Some(exchange::Event::Close) => self.exchange = None,
            Some(exchange::Event::Exported(path)) => {
                self.exchange = None;
                self.notice = Some((
                    Tone::Success,
                    format!(
                        "The fabric was exported to {}. Run As passwords and tokens are not in the file.",
                        path.display()
                    ),
                ));
            }
            Some(exchange::Event::Imported(fabric, path)) => {
                self.exchange = None;
                self.imported(fabric, &path);
            }
        }
        task.map(Message::Exchange)
    }

    /// An import replaced the fabric: the engine follows the network services it now holds.
    fn imported(&mut self, fabric: Arc<Fabric>, path: &std::path::Path) {
        let old = self.fabric.clone();
        for id in old.network_services.keys() {
            if !fabric.network_services.contains_key(id) {
                self.ctx.send(EngineCommand::RemoveService { service: *id });
            }
        }
        for s in fabric.network_services.values() {
            let command = if old.network_services.contains_key(&s.id) {
                EngineCommand::UpdateService(Box::new(s.clone()))
            } else {
                EngineCommand::AddService(Box::new(s.clone()))
            };
            self.ctx.send(command);
        }
        self.compare = None;
        let objects = fabric.object_count();
        let accounts = fabric.run_as_accounts.len();
        self.set_fabric(fabric);
        self.sync = self.ctx.engine.snapshot();
        self.notice = Some((
            Tone::Success,
            if accounts > 0 {
                format!(
                    "The fabric was imported from {} ({objects} objects). Type the passwords of its {accounts} Run As accounts again in Settings ▸ Run As Accounts.",
                    path.display()
                )
            } else {
                format!(
                    "The fabric was imported from {} ({objects} objects).",
                    path.display()
                )
            },
        ));
    }

    /// Keys of dialogs: Tab moves within the open dialog, Enter and Escape answer the screens'
    /// own dialogs (the shell's dialogs hear them through `key`), Ctrl+F finds in the side-by-side view.
    fn dialog_key(&mut self, key: DialogKey, captured: bool) -> Task<Message> {
        let any_modal = self.modal.is_some() || self.screen_dialog_open();
        match key {
            DialogKey::Next if any_modal => focus::next(focus::MODAL_ID),
            DialogKey::Previous if any_modal => focus::previous(focus::MODAL_ID),
            DialogKey::Next => iced::widget::operation::focus_next(),
            DialogKey::Previous => iced::widget::operation::focus_previous(),
            DialogKey::Find => match &self.compare {
                Some(_) if !any_modal && self.prefs.workspace == Workspace::Fabric => {
                    CompareScreen::focus_search().map(Message::Compare)
                }
                _ => Task::none(),
            },
            DialogKey::Submit | DialogKey::Cancel => {
                if let Some(x) = &mut self.exchange {
                    let (task, event) = x.key(key, &self.fabric, &self.ctx.store);
                    let task = task.map(Message::Exchange);
                    if matches!(event, Some(exchange::Event::Close)) {
                        self.exchange = None;
                    }
                    return task;
                }
                if self.admin.is_modal() {
                    return self
                        .admin
                        .key(key, &self.fabric, &self.ctx.store)
                        .map(Message::Admin);
                }
                if let Some(c) = &self.compare
                    && c.confirm.is_some()
                {
                    let m = compare::Message::ConfirmDelete(key == DialogKey::Submit);
                    return self.compare_message(m);
                }
                // A text box of a shell dialog kept Escape to itself: close the dialog anyway.
                if captured && key == DialogKey::Cancel && self.modal.is_some() {
                    return self.key(KeyAction::Escape);
                }
                Task::none()
            }
        }
    }

    fn status_bar(&self) -> Element<'_, Message> {
        let (line, fraction) = match &self.activity {
            Some((_, line, fraction)) => (line.clone(), *fraction),
            None => {
                let total = self.fabric.network_services.len();
                let in_sync = self
                    .sync
                    .statuses
                    .values()
                    .filter(|s| s.state == SyncState::InSync)
                    .count();
                (
                    format!("Ready · {total} network services, {in_sync} in sync"),
                    None,
                )
            }
        };
        let mut bar = row![text(line).size(style::SMALL).width(Length::Fill)]
            .spacing(10)
            .align_y(Alignment::Center);
        if self.activity.is_some() {
            bar = bar.push(
                progress_bar(0.0..=1.0, fraction.unwrap_or(0.0))
                    .length(220)
                    .girth(8),
            );
        }
        let last_job = self.sync.jobs.first().map(|j| {
            format!(
                "Last job: {} {} ({})",
                j.service_name,
                j.result.label(),
                style::format_time(j.finished.or(Some(j.started)))
            )
        });
        if let Some(j) = last_job {
            bar = bar.push(style::hint(j));
        }
        container(bar)
            .padding([3, 10])
            .height(26)
            .width(Length::Fill)
            .style(style::band)
            .into()
    }
}

impl EngineInbox for AppContext {
    fn send(&self, command: EngineCommand) {
        AppContext::send(self, command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyboard::key::Named;

    #[test]
    fn keys_map_to_console_actions() {
        let none = keyboard::Modifiers::default();
        assert_eq!(
            key_action(&keyboard::Key::Named(Named::F5), none),
            Some(KeyAction::RefreshSelected)
        );
        assert_eq!(
            key_action(&keyboard::Key::Named(Named::Escape), none),
            Some(KeyAction::Escape)
        );
        assert_eq!(
            key_action(
                &keyboard::Key::Named(Named::Enter),
                keyboard::Modifiers::ALT
            ),
            Some(KeyAction::PropertiesSelected)
        );
        assert_eq!(
            key_action(&keyboard::Key::Named(Named::Enter), none),
            Some(KeyAction::Submit)
        );
        assert_eq!(
            key_action(
                &keyboard::Key::Character("n".into()),
                keyboard::Modifiers::CTRL
            ),
            Some(KeyAction::AddNetworkService)
        );
        assert_eq!(
            key_action(&keyboard::Key::Character("n".into()), none),
            None
        );
    }
}
