//! The console shell: ribbon, navigation pane with workspace buttons, results and details panes,
//! status bar, context menus and modal dialogs. Screens own their state; the shell routes their
//! events to the store and the engine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use iced::{Alignment, Element, Length, Point, Size, Subscription, Task, Theme, keyboard, window};

use crate::fabric::model::{Fabric, Id};
use crate::ipam::provider::{ProviderDescriptor, TestReport};
use crate::ipam::tls;
use crate::ops::run_as::RunAsError;
use crate::ops::service::ServiceError;
use crate::ops::{self, EngineInbox};
use crate::sync::plan::PlanSummary;
use crate::sync::review::PlanReview;
use crate::sync::status::{
    EngineCommand, EngineEvent, EngineSnapshot, JobRecord, JobTrigger, StatusMap, SyncState,
};
use crate::ui::context::AppContext;
use crate::ui::dialog::admin::{self, Admin};
use crate::ui::dialog::exchange::{self, Exchange};
use crate::ui::dialog::preview::{self, Preview, PreviewState};
use crate::ui::dialog::properties::{self, Properties};
use crate::ui::dialog::run_as_dialog;
use crate::ui::dialog::wizard::{self, Wizard};
use crate::ui::engine_events::{EngineNotice, engine_events};
use crate::ui::metrics::UiMetrics;
use crate::ui::preferences::{Preferences, ThemeChoice, Workspace};
use crate::ui::screen::compare::{self, CompareScreen};
use crate::ui::screen::fabric_workspace::{self, FabricWorkspace, Node};
use crate::ui::screen::jobs::{self, JobsWorkspace};
use crate::ui::screen::settings::{self, SettingsWorkspace};
use crate::ui::widget::focus::{self, DialogKey};
use crate::ui::widget::ribbon::{self, Action, Ribbon};
use crate::ui::widget::style::{self, Tone};

mod engine_status;
mod keys;
mod menu;
mod view;

pub use keys::{KeyAction, key_action};
use keys::{dialog_key_event, key_message};
pub use menu::MenuItem;
use menu::{ContextMenu, MenuFor};

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

/// The one dialog the shell shows over everything; the screens' own dialogs (fabric
/// administration, side-by-side confirmations) stay with the screen whose lists they edit.
#[derive(Debug, Clone)]
pub enum Modal {
    Wizard(Box<Wizard>),
    Properties(Box<Properties>),
    Preview(Box<Preview>),
    Exchange(Box<Exchange>),
    ConfirmRemove {
        service: Id,
        name: String,
        removing: bool,
    },
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
    SecurityProbed(wizard::security::Target, Result<tls::Probe, String>),
    CaFilePicked(exchange::Picked),
    PreviewReady(Id, Result<(PlanSummary, PlanReview), String>),
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
        let levels = prefs.usage_levels();
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
            admin: Admin::with_levels(levels),
            compare: None,
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
        match &self.modal {
            Some(Modal::Exchange(x)) => Some(x),
            _ => None,
        }
    }
    /// A dialog of the fabric administration, import/export, the side-by-side view or the
    /// Settings workspace's Run As accounts is open.
    pub fn screen_dialog_open(&self) -> bool {
        self.admin.is_modal()
            || self.settings_ws.dialog.is_some()
            || self.exchange().is_some()
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
        // Grants made by another process (the command line) or IPAM-held addresses a sync read
        // show in the usage columns within seconds.
        if !admin_tabs(self.fabric_ws.node).is_empty() {
            subs.push(iced::time::every(Duration::from_secs(2)).map(|_| {
                Message::Admin(admin::Message::Grants(admin::grants::GrantMessage::Poll))
            }));
        }
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
            Message::Ribbon(m) => {
                let (task, action) = self.ribbon.update(m);
                let follow = match action {
                    Some(action) => self.ribbon_action(action),
                    None => Task::none(),
                };
                Task::batch([task.map(Message::Ribbon), follow])
            }
            Message::Fabric(m) => {
                // A node with administration lists shows how full the ranges are: read the
                // grant counts (another process may have granted since).
                let counts = match &m {
                    fabric_workspace::Message::SelectNode(node)
                        if !admin_tabs(*node).is_empty() =>
                    {
                        Task::done(Message::Admin(admin::Message::Grants(
                            admin::grants::GrantMessage::Refresh,
                        )))
                    }
                    _ => Task::none(),
                };
                let (task, event) = self.fabric_message(m);
                let follow = match event {
                    Some(fabric_workspace::Event::OpenProperties(id)) => self.open_properties(id),
                    Some(fabric_workspace::Event::ContextMenu(id)) => {
                        self.open_menu(MenuFor::Service(id), self.cursor);
                        Task::none()
                    }
                    None => Task::none(),
                };
                Task::batch([task.map(Message::Fabric), follow, counts])
            }
            Message::Jobs(m) => {
                let (task, event) = self.jobs_ws.update(m);
                if let Some(event) = event {
                    match event {}
                }
                task.map(Message::Jobs)
            }
            Message::Settings(m) => {
                let (task, event) = self.settings_ws.update(m, &self.fabric);
                self.settings_ws
                    .show_database(self.prefs.database.as_deref());
                let follow = match event {
                    Some(settings::Event::SaveDatabase(url)) => {
                        self.prefs.database = url.clone();
                        let result = match &self.ctx.preferences_file {
                            Some(path) => self.prefs.save(path).map_err(|e| e.to_string()),
                            None => {
                                Err("this console has no settings file (a preview or test)".into())
                            }
                        };
                        self.settings_ws.database_saved(result.map(|()| url));
                        Task::none()
                    }
                    Some(settings::Event::SaveRunAs(save)) => {
                        self.save_run_as(save, RunAsOrigin::Settings)
                    }
                    Some(settings::Event::DeleteRunAs(id)) => self.delete_run_as(id),
                    None => Task::none(),
                };
                Task::batch([task.map(Message::Settings), follow])
            }
            Message::Wizard(m) => self.wizard_message(m),
            Message::Properties(m) => {
                let Some(Modal::Properties(p)) = &mut self.modal else {
                    return Task::none();
                };
                let (task, event) = p.update(m);
                let task = task.map(Message::Properties);
                let follow = match event {
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
                };
                Task::batch([task, follow])
            }
            Message::Preview(m) => {
                let Some(Modal::Preview(p)) = &mut self.modal else {
                    return Task::none();
                };
                let (task, event) = p.update(m);
                match event {
                    Some(preview::Event::Close) => self.modal = None,
                    Some(preview::Event::Refresh(id)) => {
                        self.modal = None;
                        self.refresh(id);
                    }
                    None => {}
                }
                task.map(Message::Preview)
            }
            Message::Admin(m) => {
                let (task, event) = self.admin.update(m, &self.fabric, &self.ctx.store);
                match event {
                    Some(admin::Event::ContextMenu(tab)) => {
                        self.open_menu(MenuFor::Object(tab), self.cursor)
                    }
                    Some(admin::Event::FabricChanged(fabric, text)) => {
                        self.set_fabric(fabric);
                        self.notice = Some((Tone::Success, text));
                    }
                    Some(admin::Event::Notice(tone, text)) => self.notice = Some((tone, text)),
                    None => {}
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
                match (menu.target, item) {
                    (MenuFor::Object(_), MenuItem::ObjectProperties) => {
                        self.handle(Message::Admin(admin::Message::Properties))
                    }
                    (MenuFor::Object(_), MenuItem::ObjectCreateIn(tab)) => {
                        self.handle(Message::Admin(admin::Message::CreateIn(tab)))
                    }
                    (MenuFor::Object(_), MenuItem::ObjectDelete) => {
                        self.handle(Message::Admin(admin::Message::Delete))
                    }
                    (MenuFor::Service(id), _) => {
                        self.fabric_ws.selected_service = Some(id);
                        self.service_action(item, id)
                    }
                    (MenuFor::AddResources, _) => self.open_wizard(),
                    (MenuFor::Object(_), _) => Task::none(),
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
                        let name = self.service_name(id);
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
                    Err(e) => self.service_failed(e),
                }
                Task::none()
            }
            Message::ServiceUpdated(result) => {
                match result {
                    Ok(fabric) => {
                        self.set_fabric(fabric);
                        self.modal = None;
                    }
                    Err(e) => self.service_failed(e),
                }
                Task::none()
            }
            Message::ServiceRemoved(result) => {
                match result {
                    Ok((fabric, id)) => {
                        let name = self.service_name(id);
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
            Message::SecurityProbed(target, result) => {
                if let Some(Modal::Wizard(w)) = &mut self.modal {
                    w.probe_finished(&target, result);
                }
                Task::none()
            }
            Message::CaFilePicked(picked) => {
                let Some(Modal::Wizard(w)) = &mut self.modal else {
                    return Task::none();
                };
                match picked {
                    exchange::Picked::File(path) => {
                        let event = w.ca_file_chosen(path);
                        self.wizard_event(event)
                    }
                    exchange::Picked::Cancelled => Task::none(),
                    exchange::Picked::Unavailable(why) => {
                        w.security.browse_error = Some(why);
                        Task::none()
                    }
                }
            }
            Message::PreviewReady(id, result) => {
                if let Some(Modal::Preview(p)) = &mut self.modal
                    && p.service == id
                {
                    p.state = match result {
                        Ok((summary, review)) => {
                            p.objects = Some(review);
                            PreviewState::Ready(summary)
                        }
                        Err(e) => PreviewState::Failed(e),
                    };
                }
                Task::none()
            }
            Message::Tick(now) => self.wizard_message(wizard::Message::Tick(now)),
            Message::LogMetrics => {
                self.metrics.log();
                Task::none()
            }
        }
    }

    /// A service could not be saved: the wizard or Properties dialog that asked shows why,
    /// else a notice does.
    fn service_failed(&mut self, e: ServiceError) {
        let field = e.field();
        let e = e.to_string();
        match &mut self.modal {
            Some(Modal::Wizard(w)) => w.finish_failed(e, field),
            Some(Modal::Properties(p)) => p.failed(e),
            _ => self.notice = Some((Tone::Error, e)),
        }
    }

    fn service_name(&self, id: Id) -> String {
        self.fabric
            .network_services
            .get(&id)
            .map(|s| s.name.clone())
            .unwrap_or_default()
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
                let (task, _) = self.fabric_ws.update(fabric_workspace::Message::SelectNode(
                    fabric_workspace::Node::NetworkService,
                ));
                Task::batch([
                    task.map(Message::Fabric),
                    self.show_workspace(Workspace::Fabric),
                ])
            }
            Action::AddResources => {
                if self.modal.is_none() {
                    self.open_menu(
                        MenuFor::AddResources,
                        Point::new(self.cursor.x - 20.0, 104.0),
                    );
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
            // The administration lists' items never reach a service.
            MenuItem::ObjectProperties | MenuItem::ObjectCreateIn(_) | MenuItem::ObjectDelete => {
                Task::none()
            }
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
                let name = service.name.clone();
                Task::perform(
                    async move {
                        let (view, plan) = engine.compare(id).await?;
                        let review = crate::sync::review::review(&name, &view, &plan);
                        Ok((plan.summary, review))
                    },
                    move |r| Message::PreviewReady(id, r),
                )
            }
        }
    }

    fn wizard_message(&mut self, m: wizard::Message) -> Task<Message> {
        let Some(Modal::Wizard(w)) = &mut self.modal else {
            return Task::none();
        };
        let (task, event) = w.update(m);
        let task = task.map(Message::Wizard);
        let follow = self.wizard_event(event);
        Task::batch([task, follow])
    }

    fn wizard_event(&mut self, event: Option<wizard::Event>) -> Task<Message> {
        match event {
            None => Task::none(),
            Some(wizard::Event::Cancelled) => {
                self.modal = None;
                Task::none()
            }
            Some(wizard::Event::SaveRunAs(save)) => self.save_run_as(save, RunAsOrigin::Wizard),
            Some(wizard::Event::Probe(target)) => Task::perform(
                async move {
                    let result = tls::probe(
                        &target.connection,
                        target.default_port,
                        target.ca_file.as_deref(),
                        tls::PROBE_TIMEOUT,
                    )
                    .await;
                    (target, result)
                },
                |(target, result)| Message::SecurityProbed(target, result),
            ),
            Some(wizard::Event::BrowseCaFile) => {
                Task::perform(exchange::pick_certificate_file(), Message::CaFilePicked)
            }
            Some(wizard::Event::Test(unsaved)) => {
                let ctx = self.ctx.clone();
                let fabric = self.fabric.clone();
                Task::perform(
                    async move {
                        ops::service::test_unsaved(&ctx.engine, &fabric, &ctx.secrets, unsaved)
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
        }
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

    fn fabric_message(
        &mut self,
        m: fabric_workspace::Message,
    ) -> (
        Task<fabric_workspace::Message>,
        Option<fabric_workspace::Event>,
    ) {
        if matches!(
            m,
            fabric_workspace::Message::SelectNode(_) | fabric_workspace::Message::SelectService(_)
        ) {
            self.compare = None;
        }
        let result = self.fabric_ws.update(m);
        self.admin.show_tabs(admin_tabs(self.fabric_ws.node));
        result
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
        self.modal = Some(Modal::Exchange(Box::new(dialog)));
        task.map(Message::Exchange)
    }

    fn exchange_message(&mut self, m: exchange::Message) -> Task<Message> {
        let Some(Modal::Exchange(dialog)) = &mut self.modal else {
            return Task::none();
        };
        let (task, event) = dialog.update(m, &self.fabric, &self.ctx.store, &self.ctx.secrets);
        match event {
            None => {}
            Some(exchange::Event::Close) => self.modal = None,
            Some(exchange::Event::Exported(path)) => {
                self.modal = None;
                self.notice = Some((
                    Tone::Success,
                    format!(
                        "The fabric was exported to {}. Run As passwords and tokens are not in the file.",
                        path.display()
                    ),
                ));
            }
            Some(exchange::Event::Imported(fabric, path)) => {
                self.modal = None;
                self.imported(fabric, &path);
            }
        }
        task.map(Message::Exchange)
    }

    /// An import replaced the fabric: the engine follows the network services it now holds.
    fn imported(&mut self, imported: ops::exchange::Imported, path: &std::path::Path) {
        let fabric = imported.fabric.clone();
        ops::service::follow_import(&self.ctx, &self.fabric, &fabric);
        self.compare = None;
        let objects = fabric.object_count();
        let accounts = fabric.run_as_accounts.len();
        self.set_fabric(fabric);
        self.sync = self.ctx.engine.snapshot();
        let forgotten = imported
            .forgotten_sentence()
            .map(|s| format!(" {s}"))
            .unwrap_or_default();
        let text = if accounts > 0 {
            format!(
                "The fabric was imported from {} ({objects} objects). Type the passwords of its {accounts} Run As accounts again in Settings ▸ Run As Accounts.",
                path.display()
            )
        } else {
            format!(
                "The fabric was imported from {} ({objects} objects).",
                path.display()
            )
        };
        self.notice = Some((Tone::Success, text + &forgotten));
    }
}

impl EngineInbox for AppContext {
    fn send(&self, command: EngineCommand) {
        AppContext::send(self, command)
    }
}
