//! Fabric administration: lists of host groups, logical networks, network sites, static IP
//! address pools and VM networks, with Create / Properties / Delete. Dialogs check what is typed
//! on every keystroke and show each problem at its field; a save is one store batch, so nothing
//! is saved half-way, and a refused save puts the store's reasons back at the fields.

pub mod delete;
pub mod form;
pub mod host_group;
pub mod ip_pool;
pub mod logical_network;
pub mod network_site;
pub mod vm_network;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use iced::widget::scrollable::Viewport;
use iced::widget::{button, column, container, row, scrollable, space, text};
use iced::{Alignment, Element, Length, Task};

use crate::fabric::model::{Fabric, FabricChange, FabricObject, Id, ObjectKind, PoolScope};
use crate::fabric::store::{FabricStore, StoreError};
use crate::fabric::validate::{Field, ValidationError};
use crate::ui::focus::{self, DialogKey};
use crate::ui::grid::{self, GridColumn, Sort, col};
use crate::ui::style::{self, Tone};
use crate::ui::virtual_list::VirtualList;
use delete::Deletion;
use form::{FieldErrors, Shown};

/// The container every fabric dialog sits in: Tab moves through its fields only.
pub const DIALOG_ID: &str = "fabric-object-dialog";
pub const LIST_ID: &str = "fabric-admin-list";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tab {
    HostGroups,
    LogicalNetworks,
    NetworkSites,
    IpPools,
    VmNetworks,
}

impl Tab {
    pub const ALL: [Tab; 5] = [
        Tab::HostGroups,
        Tab::LogicalNetworks,
        Tab::NetworkSites,
        Tab::IpPools,
        Tab::VmNetworks,
    ];
    pub fn label(self) -> &'static str {
        match self {
            Tab::HostGroups => "Host Groups",
            Tab::LogicalNetworks => "Logical Networks",
            Tab::NetworkSites => "Network Sites",
            Tab::IpPools => "IP Pools",
            Tab::VmNetworks => "VM Networks",
        }
    }
    pub fn kind(self) -> ObjectKind {
        match self {
            Tab::HostGroups => ObjectKind::HostGroup,
            Tab::LogicalNetworks => ObjectKind::LogicalNetwork,
            Tab::NetworkSites => ObjectKind::NetworkSite,
            Tab::IpPools => ObjectKind::IpPool,
            Tab::VmNetworks => ObjectKind::VmNetwork,
        }
    }
    /// The kind in running text, e.g. "static IP address pools".
    pub fn plural(self) -> &'static str {
        match self {
            Tab::HostGroups => "host groups",
            Tab::LogicalNetworks => "logical networks",
            Tab::NetworkSites => "network sites",
            Tab::IpPools => "static IP address pools",
            Tab::VmNetworks => "VM networks",
        }
    }

    /// The toolbar's create command, as VMM words it.
    pub fn create_label(self) -> &'static str {
        match self {
            Tab::HostGroups => "Create Host Group...",
            Tab::LogicalNetworks => "Create Logical Network...",
            Tab::NetworkSites => "Create Network Site...",
            Tab::IpPools => "Create IP Pool...",
            Tab::VmNetworks => "Create VM Network...",
        }
    }
    fn columns(self) -> &'static [GridColumn] {
        const HG: [GridColumn; 3] = [col("Name", 3), col("Path", 5), col("Network Sites", 2)];
        const LN: [GridColumn; 4] = [
            col("Name", 4),
            col("Isolation", 5),
            col("Sites / VM Networks", 3),
            col("Description", 4),
        ];
        const NS: [GridColumn; 4] = [
            col("Name", 4),
            col("Logical Network", 3),
            col("Host Groups", 4),
            col("Subnets (VLAN)", 5),
        ];
        const IP: [GridColumn; 5] = [
            col("Name", 4),
            col("Network Site / VM Network", 4),
            col("Subnet", 3),
            col("Range", 5),
            col("Gateways", 3),
        ];
        const VM: [GridColumn; 4] = [
            col("Name", 4),
            col("Logical Network", 3),
            col("Isolation", 3),
            col("VM Subnets", 4),
        ];
        match self {
            Tab::HostGroups => &HG,
            Tab::LogicalNetworks => &LN,
            Tab::NetworkSites => &NS,
            Tab::IpPools => &IP,
            Tab::VmNetworks => &VM,
        }
    }
}

/// The dialog's form, one per kind.
#[derive(Debug, Clone)]
pub enum Form {
    HostGroup(host_group::Form),
    LogicalNetwork(logical_network::Form),
    NetworkSite(network_site::Form),
    IpPool(Box<ip_pool::Form>),
    VmNetwork(vm_network::Form),
}

#[derive(Debug, Clone)]
pub enum FormMessage {
    HostGroup(host_group::Message),
    LogicalNetwork(logical_network::Message),
    NetworkSite(network_site::Message),
    IpPool(ip_pool::Message),
    VmNetwork(vm_network::Message),
}

impl Form {
    pub fn kind(&self) -> ObjectKind {
        match self {
            Form::HostGroup(_) => ObjectKind::HostGroup,
            Form::LogicalNetwork(_) => ObjectKind::LogicalNetwork,
            Form::NetworkSite(_) => ObjectKind::NetworkSite,
            Form::IpPool(_) => ObjectKind::IpPool,
            Form::VmNetwork(_) => ObjectKind::VmNetwork,
        }
    }

    /// The name as typed.
    pub fn name(&self) -> &str {
        match self {
            Form::HostGroup(f) => &f.name,
            Form::LogicalNetwork(f) => &f.name,
            Form::NetworkSite(f) => &f.name,
            Form::IpPool(f) => &f.name,
            Form::VmNetwork(f) => &f.name,
        }
    }

    /// The field that has the focus when the dialog opens.
    pub fn first_input(&self) -> &'static str {
        match self {
            Form::HostGroup(_) => host_group::NAME_INPUT,
            Form::LogicalNetwork(_) => logical_network::NAME_INPUT,
            Form::NetworkSite(_) => network_site::NAME_INPUT,
            Form::IpPool(_) => ip_pool::NAME_INPUT,
            Form::VmNetwork(_) => vm_network::NAME_INPUT,
        }
    }

    fn check(&self, fabric: &Fabric) -> (Option<FabricObject>, FieldErrors) {
        match self {
            Form::HostGroup(f) => f.check(fabric),
            Form::LogicalNetwork(f) => f.check(fabric),
            Form::NetworkSite(f) => f.check(fabric),
            Form::IpPool(f) => f.check(fabric),
            Form::VmNetwork(f) => f.check(fabric),
        }
    }

    fn fields(&self) -> &'static [Field] {
        match self {
            Form::HostGroup(_) => host_group::FIELDS,
            Form::LogicalNetwork(_) => logical_network::FIELDS,
            Form::NetworkSite(_) => network_site::FIELDS,
            Form::IpPool(_) => ip_pool::FIELDS,
            Form::VmNetwork(_) => vm_network::FIELDS,
        }
    }

    fn update(&mut self, message: FormMessage, fabric: &Fabric) -> Option<&'static str> {
        Some(match (self, message) {
            (Form::HostGroup(f), FormMessage::HostGroup(m)) => f.update(m),
            (Form::LogicalNetwork(f), FormMessage::LogicalNetwork(m)) => f.update(m),
            (Form::NetworkSite(f), FormMessage::NetworkSite(m)) => f.update(m),
            (Form::IpPool(f), FormMessage::IpPool(m)) => f.update(m, fabric),
            (Form::VmNetwork(f), FormMessage::VmNetwork(m)) => f.update(m),
            _ => return None,
        })
    }

    fn view<'a>(&'a self, fabric: &'a Fabric, errors: &FieldErrors) -> Element<'a, FormMessage> {
        match self {
            Form::HostGroup(f) => f.view(fabric, errors).map(FormMessage::HostGroup),
            Form::LogicalNetwork(f) => f.view(fabric, errors).map(FormMessage::LogicalNetwork),
            Form::NetworkSite(f) => f.view(fabric, errors).map(FormMessage::NetworkSite),
            Form::IpPool(f) => f.view(fabric, errors).map(FormMessage::IpPool),
            Form::VmNetwork(f) => f.view(fabric, errors).map(FormMessage::VmNetwork),
        }
    }
}

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
        container(body)
            .id(DIALOG_ID)
            .padding(16)
            .width(width)
            .max_height(740)
            .style(style::dialog)
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
        container(body.push(buttons.spacing(8)))
            .id(DIALOG_ID)
            .padding(16)
            .width(560)
            .style(style::dialog)
            .into()
    }
}

/// Rows of the current tab in display order, kept until the fabric or the sort changes.
#[derive(Debug, Clone)]
struct ListCache {
    fabric: Arc<Fabric>,
    tab: Tab,
    sort: Sort,
    rows: Arc<Vec<Id>>,
    /// Sites per host group; sites and VM networks per logical network.
    counts: Arc<HashMap<Id, (usize, usize)>>,
}

#[derive(Debug, Clone)]
pub struct Admin {
    pub tab: Tab,
    pub selected: Option<Id>,
    sort: Sort,
    list: VirtualList,
    cache: RefCell<Option<ListCache>>,
    pub dialog: Option<ObjectDialog>,
    pub delete: Option<DeleteDialog>,
}

#[derive(Debug, Clone)]
pub enum Message {
    Tab(Tab),
    Select(Id),
    Open(Id),
    Sort(usize),
    Create,
    /// Create an object of another kind in the selected one (a pool in a site, a site in a network).
    CreateIn(Tab),
    Properties,
    Delete,
    Scrolled(Viewport),
    Form(FormMessage),
    Save,
    Cancel,
    ConfirmDelete(bool),
    Saved(Result<Arc<Fabric>, SaveError>),
    Deleted(Result<Arc<Fabric>, SaveError>),
}

/// What the console learns from the administration screen.
#[derive(Debug, Clone)]
pub enum Event {
    /// The store holds a new fabric; the text says what changed.
    FabricChanged(Arc<Fabric>, String),
}

impl Default for Admin {
    fn default() -> Self {
        Admin {
            tab: Tab::LogicalNetworks,
            selected: None,
            sort: Sort::default(),
            list: VirtualList::new(style::ROW_HEIGHT + 1.0),
            cache: RefCell::new(None),
            dialog: None,
            delete: None,
        }
    }
}

impl Admin {
    /// A dialog or confirmation is open.
    pub fn is_modal(&self) -> bool {
        self.dialog.is_some() || self.delete.is_some()
    }

    /// The node of the Fabric pane offers these lists: keep the current one if it is among them.
    pub fn show_tabs(&mut self, tabs: &[Tab]) {
        if let Some(first) = tabs.first()
            && !tabs.contains(&self.tab)
        {
            self.tab = *first;
            self.selected = None;
            self.list.reset();
        }
    }

    /// The details pane: the selected object's properties.
    pub fn details<'a>(&'a self, fabric: &'a Fabric) -> Element<'a, Message> {
        // The list's counts when it is current; counting again only when it is not.
        let cached = self
            .cache
            .borrow()
            .as_ref()
            .filter(|c| c.tab == self.tab && std::ptr::eq(Arc::as_ptr(&c.fabric), fabric))
            .map(|c| c.counts.clone());
        let counts = cached.unwrap_or_else(|| Arc::new(object_counts(fabric, self.tab)));
        let lines = self
            .selected
            .map(|id| detail_lines(fabric, self.tab, id, &counts))
            .unwrap_or_default();
        let body: Element<'a, Message> = match lines.split_first() {
            Some(((_, title), rest)) => {
                let mut c = column![style::heading(title.clone())].spacing(4);
                for (label, value) in rest {
                    c = c.push(style::field_line(*label, value.clone()));
                }
                c = c.push(style::hint("Double-click a row or press Alt+Enter for its properties; Delete asks before deleting."));
                c.into()
            }
            None => style::hint(format!(
                "Select one of the {} to see its properties.",
                self.tab.plural()
            )),
        };
        scrollable(container(body).padding([8, 12]).width(Length::Fill))
            .height(Length::Fill)
            .into()
    }

    /// Opens the create dialog of a kind; returns the task that focuses its first field.
    pub fn create(&mut self, tab: Tab, fabric: &Fabric) -> Task<Message> {
        let ln = self.context_logical_network(fabric);
        let form = match tab {
            Tab::HostGroups => Form::HostGroup(host_group::Form::create(
                fabric,
                self.selected.filter(|_| self.tab == Tab::HostGroups),
            )),
            Tab::LogicalNetworks => Form::LogicalNetwork(logical_network::Form::create()),
            Tab::NetworkSites => Form::NetworkSite(network_site::Form::create(fabric, ln)),
            Tab::IpPools => Form::IpPool(Box::new(ip_pool::Form::create(
                fabric,
                match self.tab {
                    Tab::NetworkSites => self.selected,
                    Tab::IpPools => self
                        .selected
                        .and_then(|p| fabric.ip_pools.get(&p))
                        .and_then(|p| match p.scope {
                            PoolScope::Site { site, .. } => Some(site),
                            PoolScope::VmSubnet { .. } => None,
                        }),
                    _ => None,
                },
            ))),
            Tab::VmNetworks => Form::VmNetwork(vm_network::Form::create(fabric, ln)),
        };
        self.open(form, false, fabric)
    }

    /// The logical network the selection points at, to preselect it in a new site or VM network.
    fn context_logical_network(&self, fabric: &Fabric) -> Option<Id> {
        let id = self.selected?;
        match self.tab {
            Tab::LogicalNetworks => Some(id),
            Tab::NetworkSites => fabric.network_sites.get(&id).map(|s| s.logical_network),
            Tab::VmNetworks => fabric.vm_networks.get(&id).map(|v| v.logical_network),
            _ => None,
        }
    }

    /// Opens the properties dialog of an object.
    pub fn edit(&mut self, kind: ObjectKind, id: Id, fabric: &Fabric) -> Task<Message> {
        let form = match kind {
            ObjectKind::HostGroup => fabric
                .host_groups
                .get(&id)
                .map(|g| Form::HostGroup(host_group::Form::edit(g))),
            ObjectKind::LogicalNetwork => fabric
                .logical_networks
                .get(&id)
                .map(|l| Form::LogicalNetwork(logical_network::Form::edit(l))),
            ObjectKind::NetworkSite => fabric
                .network_sites
                .get(&id)
                .map(|s| Form::NetworkSite(network_site::Form::edit(s))),
            ObjectKind::IpPool => fabric
                .ip_pools
                .get(&id)
                .map(|p| Form::IpPool(Box::new(ip_pool::Form::edit(p)))),
            ObjectKind::VmNetwork => fabric
                .vm_networks
                .get(&id)
                .map(|v| Form::VmNetwork(vm_network::Form::edit(v))),
            _ => None,
        };
        match form {
            Some(f) => self.open(f, true, fabric),
            None => Task::none(),
        }
    }

    /// Asks before deleting, listing what goes with the object.
    pub fn ask_delete(&mut self, kind: ObjectKind, id: Id, fabric: &Fabric) {
        if self.is_modal() {
            return;
        }
        self.delete = Some(DeleteDialog {
            deletion: Deletion::plan(fabric, kind, id),
            deleting: false,
            error: None,
        });
    }

    fn open(&mut self, form: Form, editing: bool, fabric: &Fabric) -> Task<Message> {
        if self.is_modal() {
            return Task::none();
        }
        let first = form.first_input();
        self.dialog = Some(ObjectDialog::new(form, editing, fabric));
        iced::widget::operation::focus(first)
    }

    pub fn update(
        &mut self,
        message: Message,
        fabric: &Fabric,
        store: &FabricStore,
    ) -> (Task<Message>, Option<Event>) {
        match message {
            Message::Tab(tab) => {
                if self.tab != tab {
                    self.tab = tab;
                    self.selected = None;
                    self.list.reset();
                    return (
                        iced::widget::operation::scroll_to(
                            LIST_ID,
                            scrollable::AbsoluteOffset { x: 0.0, y: 0.0 },
                        ),
                        None,
                    );
                }
            }
            Message::Select(id) => self.selected = Some(id),
            Message::Open(id) => {
                self.selected = Some(id);
                return (self.edit(self.tab.kind(), id, fabric), None);
            }
            Message::Sort(c) => self.sort.click(c),
            Message::Create => return (self.create(self.tab, fabric), None),
            Message::CreateIn(tab) => return (self.create(tab, fabric), None),
            Message::Properties => {
                if let Some(id) = self.selected {
                    return (self.edit(self.tab.kind(), id, fabric), None);
                }
            }
            Message::Delete => {
                if let Some(id) = self.selected {
                    self.ask_delete(self.tab.kind(), id, fabric);
                }
            }
            Message::Scrolled(v) => self.list.scrolled(v),
            Message::Form(m) => {
                if let Some(d) = &mut self.dialog {
                    d.update(m, fabric);
                }
            }
            Message::Save => {
                if let Some(d) = &mut self.dialog
                    && let Some(changes) = d.submit(fabric)
                {
                    return (
                        Task::perform(apply(store.clone(), changes), Message::Saved),
                        None,
                    );
                }
            }
            Message::Cancel => self.dialog = None,
            Message::Saved(Ok(new)) => {
                let Some(d) = self.dialog.take() else {
                    return (Task::none(), None);
                };
                let text = format!(
                    "{} \"{}\" was {}.",
                    delete::capitalized(d.form.kind().label()),
                    d.form.name().trim(),
                    if d.editing { "saved" } else { "created" }
                );
                return (Task::none(), Some(Event::FabricChanged(new, text)));
            }
            Message::Saved(Err(e)) => {
                if let Some(d) = &mut self.dialog {
                    d.refused(e);
                }
            }
            Message::ConfirmDelete(false) => self.delete = None,
            Message::ConfirmDelete(true) => {
                if let Some(d) = &mut self.delete
                    && d.deletion.allowed()
                    && !d.deleting
                {
                    d.deleting = true;
                    let changes = d.deletion.changes();
                    return (
                        Task::perform(apply(store.clone(), changes), Message::Deleted),
                        None,
                    );
                }
            }
            Message::Deleted(Ok(new)) => {
                let Some(d) = self.delete.take() else {
                    return (Task::none(), None);
                };
                if self.selected == Some(d.deletion.id) {
                    self.selected = None;
                }
                let extra = match d.deletion.with.len() {
                    0 => String::new(),
                    n => format!(" with {n} dependent objects"),
                };
                let text = format!(
                    "The {} \"{}\" was deleted{extra}.",
                    d.deletion.kind, d.deletion.name
                );
                return (Task::none(), Some(Event::FabricChanged(new, text)));
            }
            Message::Deleted(Err(e)) => {
                if let Some(d) = &mut self.delete {
                    d.deleting = false;
                    d.error = Some(e.message);
                }
            }
        }
        (Task::none(), None)
    }

    /// Tab, Shift+Tab, Enter and Escape while a dialog is open.
    pub fn key(&mut self, key: DialogKey, fabric: &Fabric, store: &FabricStore) -> Task<Message> {
        match key {
            DialogKey::Next => focus::next(DIALOG_ID),
            DialogKey::Previous => focus::previous(DIALOG_ID),
            DialogKey::Submit if self.dialog.is_some() => {
                self.update(Message::Save, fabric, store).0
            }
            DialogKey::Submit if self.delete.is_some() => {
                self.update(Message::ConfirmDelete(true), fabric, store).0
            }
            DialogKey::Cancel if self.dialog.is_some() => {
                self.update(Message::Cancel, fabric, store).0
            }
            DialogKey::Cancel if self.delete.is_some() => {
                self.update(Message::ConfirmDelete(false), fabric, store).0
            }
            _ => Task::none(),
        }
    }

    /// The open dialog, drawn by the console over everything else.
    pub fn modal<'a>(&'a self, fabric: &'a Fabric) -> Option<Element<'a, Message>> {
        if let Some(d) = &self.delete {
            return Some(d.view());
        }
        self.dialog.as_ref().map(|d| d.view(fabric))
    }

    fn rows(&self, fabric: &Arc<Fabric>) -> ListCache {
        if let Some(c) = self.cache.borrow().as_ref()
            && Arc::ptr_eq(&c.fabric, fabric)
            && c.tab == self.tab
            && c.sort == self.sort
        {
            return c.clone();
        }
        let counts = Arc::new(object_counts(fabric, self.tab));
        let mut keyed: Vec<(String, Id)> = match self.tab {
            Tab::HostGroups => fabric
                .host_groups
                .keys()
                .map(|id| (String::new(), *id))
                .collect(),
            Tab::LogicalNetworks => fabric
                .logical_networks
                .keys()
                .map(|id| (String::new(), *id))
                .collect(),
            Tab::NetworkSites => fabric
                .network_sites
                .keys()
                .map(|id| (String::new(), *id))
                .collect(),
            Tab::IpPools => fabric
                .ip_pools
                .keys()
                .map(|id| (String::new(), *id))
                .collect(),
            Tab::VmNetworks => fabric
                .vm_networks
                .keys()
                .map(|id| (String::new(), *id))
                .collect(),
        };
        for (key, id) in keyed.iter_mut() {
            *key = if self.sort.column == 0 {
                name_of(fabric, self.tab, *id)
            } else {
                cells(fabric, self.tab, *id, &counts)
                    .get(self.sort.column)
                    .cloned()
                    .unwrap_or_default()
            }
            .to_lowercase();
        }
        keyed.sort_by(|a, b| self.sort.apply(a.0.cmp(&b.0)));
        let cache = ListCache {
            fabric: fabric.clone(),
            tab: self.tab,
            sort: self.sort,
            rows: Arc::new(keyed.into_iter().map(|(_, id)| id).collect()),
            counts,
        };
        *self.cache.borrow_mut() = Some(cache.clone());
        cache
    }

    /// The list of one kind with its toolbar; `tabs` are the kinds offered above it.
    pub fn list<'a>(&'a self, fabric: &'a Arc<Fabric>, tabs: &[Tab]) -> Element<'a, Message> {
        let cache = self.rows(fabric);
        let tab = self.tab;
        let tab_bar = row(tabs.iter().map(|t| {
            button(text(t.label()).size(style::TEXT).font(if *t == tab {
                style::bold()
            } else {
                iced::Font::DEFAULT
            }))
            .padding([4, 12])
            .style(style::flat(*t == tab))
            .on_press(Message::Tab(*t))
            .into()
        }))
        .spacing(2);
        let selected = self.selected.filter(|id| cache.rows.contains(id));
        let inside = match tab {
            Tab::LogicalNetworks => Some(Tab::NetworkSites),
            Tab::NetworkSites => Some(Tab::IpPools),
            _ => None,
        };
        let mut toolbar = row![tab_bar, space().width(Length::Fill)]
            .spacing(6)
            .align_y(Alignment::Center);
        if let Some(inner) = inside {
            toolbar = toolbar.push(style::command(
                inner.create_label(),
                selected.map(|_| Message::CreateIn(inner)),
            ));
        }
        let toolbar = toolbar.push(
            row![
                style::command(tab.create_label(), Some(Message::Create)),
                style::command("Properties", selected.map(|_| Message::Properties)),
                style::command("Delete", selected.map(|_| Message::Delete)),
            ]
            .spacing(6),
        );
        let columns = tab.columns();
        let rows = cache.rows.clone();
        let counts = cache.counts.clone();
        let fabric_ref: &'a Fabric = fabric;
        let body: Element<'a, Message> = if rows.is_empty() {
            container(style::hint(format!(
                "No {} yet. Use \"{}\" to add one.",
                tab.plural(),
                tab.create_label().trim_end_matches("...")
            )))
            .padding(12)
            .into()
        } else {
            self.list.view(
                LIST_ID,
                rows.len(),
                move |i| {
                    let id = rows[i];
                    let values = cells(fabric_ref, tab, id, &counts);
                    let cells = values
                        .into_iter()
                        .zip(columns.iter())
                        .map(|(v, c)| grid::cell(v, c.portion))
                        .collect();
                    container(grid::grid_row(
                        cells,
                        self.selected == Some(id),
                        Message::Select(id),
                        Some(Message::Open(id)),
                        None,
                    ))
                    .height(self.list.row_height)
                    .padding(iced::Padding {
                        bottom: 1.0,
                        ..iced::Padding::ZERO
                    })
                    .into()
                },
                Message::Scrolled,
            )
        };
        column![
            container(toolbar).padding([4, 6]),
            grid::header(columns, self.sort, Message::Sort),
            body,
            container(style::hint(format!(
                "{} {}",
                cache.rows.len(),
                tab.plural()
            )))
            .padding([2, 8]),
        ]
        .into()
    }
}

/// (label, value) lines of the details pane; the first is the object's name.
fn detail_lines(
    fabric: &Fabric,
    tab: Tab,
    id: Id,
    counts: &HashMap<Id, (usize, usize)>,
) -> Vec<(&'static str, String)> {
    let cells = cells(fabric, tab, id, counts);
    if cells.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<(&'static str, String)> = vec![("Name", cells[0].clone())];
    for (column, value) in tab.columns().iter().zip(cells).skip(1) {
        out.push((column.title, value));
    }
    match tab {
        Tab::LogicalNetworks => {
            let sites: Vec<String> = fabric.sites_of(id).map(|s| s.name.clone()).collect();
            out.push(("Network sites", form::join(sites)));
        }
        Tab::IpPools => {
            if let Some(p) = fabric.ip_pools.get(&id) {
                out.push(("Reserved addresses", form::join(&p.settings.reserved)));
                out.push(("VIP addresses", form::join(&p.settings.vips)));
                out.push(("DNS servers", form::join(&p.settings.dns_servers)));
                out.push(("DNS suffix", p.settings.dns_suffix.clone()));
                out.push((
                    "DNS search suffixes",
                    p.settings.dns_search_suffixes.join(", "),
                ));
                out.push(("WINS servers", form::join(&p.settings.wins_servers)));
                out.push((
                    "NetBIOS over TCP/IP",
                    if p.settings.netbios_enabled {
                        "Enabled"
                    } else {
                        "Disabled"
                    }
                    .into(),
                ));
            }
        }
        _ => {}
    }
    out
}

fn name_of(fabric: &Fabric, tab: Tab, id: Id) -> String {
    match tab {
        Tab::HostGroups => fabric.host_groups.get(&id).map(|x| x.name.clone()),
        Tab::LogicalNetworks => fabric.logical_networks.get(&id).map(|x| x.name.clone()),
        Tab::NetworkSites => fabric.network_sites.get(&id).map(|x| x.name.clone()),
        Tab::IpPools => fabric.ip_pools.get(&id).map(|x| x.name.clone()),
        Tab::VmNetworks => fabric.vm_networks.get(&id).map(|x| x.name.clone()),
    }
    .unwrap_or_default()
}

fn object_counts(fabric: &Fabric, tab: Tab) -> HashMap<Id, (usize, usize)> {
    let mut counts: HashMap<Id, (usize, usize)> = HashMap::new();
    match tab {
        Tab::HostGroups => {
            for s in fabric.network_sites.values() {
                for g in &s.host_groups {
                    counts.entry(*g).or_default().0 += 1;
                }
            }
        }
        Tab::LogicalNetworks => {
            for s in fabric.network_sites.values() {
                counts.entry(s.logical_network).or_default().0 += 1;
            }
            for v in fabric.vm_networks.values() {
                counts.entry(v.logical_network).or_default().1 += 1;
            }
        }
        _ => {}
    }
    counts
}

/// The cells of one row, in the tab's column order.
fn cells(fabric: &Fabric, tab: Tab, id: Id, counts: &HashMap<Id, (usize, usize)>) -> Vec<String> {
    let ln_name = |l: &Id| {
        fabric
            .logical_networks
            .get(l)
            .map(|l| l.name.clone())
            .unwrap_or_default()
    };
    let count = |id: &Id| counts.get(id).copied().unwrap_or_default();
    match tab {
        Tab::HostGroups => fabric
            .host_groups
            .get(&id)
            .map(|g| {
                vec![
                    g.name.clone(),
                    fabric.host_group_path(g.id),
                    count(&g.id).0.to_string(),
                ]
            })
            .unwrap_or_default(),
        Tab::LogicalNetworks => fabric
            .logical_networks
            .get(&id)
            .map(|l| {
                let (sites, vmns) = count(&l.id);
                vec![
                    l.name.clone(),
                    l.isolation.label().to_string(),
                    format!("{sites} / {vmns}"),
                    l.description.clone(),
                ]
            })
            .unwrap_or_default(),
        Tab::NetworkSites => fabric
            .network_sites
            .get(&id)
            .map(|s| {
                vec![
                    s.name.clone(),
                    ln_name(&s.logical_network),
                    form::join(s.host_groups.iter().map(|g| fabric.host_group_path(*g))),
                    form::join(s.subnets.iter().map(|p| match p.secondary_vlan {
                        Some(v) => format!("{} ({}, {v})", p.subnet, p.vlan),
                        None => format!("{} ({})", p.subnet, p.vlan),
                    })),
                ]
            })
            .unwrap_or_default(),
        Tab::IpPools => fabric
            .ip_pools
            .get(&id)
            .map(|p| {
                let owner = match &p.scope {
                    PoolScope::Site { site, .. } => {
                        fabric.network_sites.get(site).map(|s| s.name.clone())
                    }
                    PoolScope::VmSubnet { vm_network, .. } => fabric
                        .vm_networks
                        .get(vm_network)
                        .map(|v| format!("{} (VM network)", v.name)),
                };
                vec![
                    p.name.clone(),
                    owner.unwrap_or_default(),
                    p.scope.subnet().to_string(),
                    format!("{} – {}", p.range_start, p.range_end),
                    form::join(p.settings.gateways.iter().map(|g| g.address())),
                ]
            })
            .unwrap_or_default(),
        Tab::VmNetworks => fabric
            .vm_networks
            .get(&id)
            .map(|v| {
                vec![
                    v.name.clone(),
                    ln_name(&v.logical_network),
                    v.isolation.label().to_string(),
                    form::join(&v.vm_subnets),
                ]
            })
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_save_puts_the_reasons_at_the_fields() {
        let mut fabric = Fabric::new();
        let ln = crate::fabric::model::LogicalNetwork {
            id: uuid::Uuid::new_v4(),
            name: "Backend".into(),
            description: String::new(),
            isolation: crate::fabric::model::LogicalNetworkIsolation::OneConnected,
        };
        fabric.logical_networks.insert(ln.id, ln);
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
