//! Fabric administration: lists of host groups, logical networks, network sites, static IP
//! address pools and VM networks, with Create / Properties / Delete. Dialogs check what is typed
//! on every keystroke and show each problem at its field; a save is one store batch, so nothing
//! is saved half-way, and a refused save puts the store's reasons back at the fields.

pub mod delete;
pub mod dialog;
pub mod form;
pub mod grants;
pub mod host_group;
pub mod ip_pool;
mod list;
pub mod logical_network;
pub mod network_site;
pub mod object_form;
pub mod vm_network;

use std::cell::RefCell;
use std::sync::Arc;

use iced::widget::scrollable;
use iced::widget::scrollable::Viewport;
use iced::{Element, Task};

use crate::fabric::model::{Fabric, Id, ObjectKind, PoolScope};
use crate::fabric::store::FabricStore;
use crate::fabric::store::GrantCounts;
use crate::ui::widget::chart::UsageLevels;
use crate::ui::widget::focus::{self, DialogKey};
use crate::ui::widget::grid::{self, ColumnWidths, GridColumn, Sort, col};
use crate::ui::widget::style;
use crate::ui::widget::virtual_list::VirtualList;
use delete::Deletion;
pub use dialog::{DeleteDialog, ObjectDialog, SaveError, apply};
use list::ListCache;
pub use object_form::{Form, FormMessage, ObjectForm};

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
    /// The kind created inside an object of this kind (a site in a logical network, a pool in
    /// a site).
    pub fn inner(self) -> Option<Tab> {
        match self {
            Tab::LogicalNetworks => Some(Tab::NetworkSites),
            Tab::NetworkSites => Some(Tab::IpPools),
            _ => None,
        }
    }

    pub fn create_label(self) -> &'static str {
        match self {
            Tab::HostGroups => "Create Host Group...",
            Tab::LogicalNetworks => "Create Logical Network...",
            Tab::NetworkSites => "Create Network Site...",
            Tab::IpPools => "Create IP Pool...",
            Tab::VmNetworks => "Create VM Network...",
        }
    }
    /// Kinds whose rows show how full their ranges are.
    pub fn has_usage(self) -> bool {
        matches!(
            self,
            Tab::LogicalNetworks | Tab::NetworkSites | Tab::IpPools
        )
    }

    fn columns(self) -> &'static [GridColumn] {
        const HG: [GridColumn; 3] = [col("Name", 3), col("Path", 5), col("Network Sites", 2)];
        const LN: [GridColumn; 5] = [
            col("Name", 4),
            col("Isolation", 5),
            col("Sites / VM Networks", 3),
            col("Description", 4),
            col(USAGE, 3),
        ];
        const NS: [GridColumn; 5] = [
            col("Name", 4),
            col("Logical Network", 3),
            col("Host Groups", 4),
            col("Subnets (VLAN)", 5),
            col(USAGE, 3),
        ];
        const IP: [GridColumn; 6] = [
            col("Name", 4),
            col("Network Site / VM Network", 4),
            col("Subnet", 3),
            col("Range", 5),
            col("Gateways", 3),
            col(USAGE, 3),
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

/// The title of the column of a range's use.
pub const USAGE: &str = "Usage";

/// The administration's dialogs over its lists.
#[derive(Debug, Clone)]
pub enum Dialog {
    Object(ObjectDialog),
    Delete(DeleteDialog),
}

#[derive(Debug, Clone)]
pub struct Admin {
    pub tab: Tab,
    pub selected: Option<Id>,
    sort: Sort,
    list: VirtualList,
    cache: RefCell<Option<ListCache>>,
    /// The open dialog: one at a time.
    pub dialog: Option<Dialog>,
    /// The lists' column widths, per kind.
    widths: ColumnWidths,
    /// The selected pool's grants and the grant form.
    pub grants: grants::GrantPane,
    /// Grants per pool, for the usage column.
    pub grant_counts: Arc<GrantCounts>,
    /// Where a range's use turns to a warning and to critical.
    pub levels: UsageLevels,
    /// Only rows whose use is at the warning level or above.
    pub near_exhaustion: bool,
}

#[derive(Debug, Clone)]
pub enum Message {
    Tab(Tab),
    Select(Id),
    Open(Id),
    /// A right-click on a row: select it and ask for its context menu.
    Menu(Id),
    Sort(usize),
    Resize(grid::Resize),
    /// The grant form, the granted list and the counts.
    Grants(grants::GrantMessage),
    /// Show only rows near exhaustion.
    NearExhaustion(bool),
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
    /// Someone else saved the object: open it again as it is now.
    Reload,
}

/// What the console learns from the administration screen.
#[derive(Debug, Clone)]
pub enum Event {
    /// The store holds a new fabric; the text says what changed.
    FabricChanged(Arc<Fabric>, String),
    /// Open the context menu of the selected row, a row of this list.
    ContextMenu(Tab),
    /// Something to say in the status bar (a pool near exhaustion).
    Notice(style::Tone, String),
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
            widths: ColumnWidths::default(),
            grants: grants::GrantPane::default(),
            grant_counts: Arc::new(GrantCounts::new()),
            levels: UsageLevels::default(),
            near_exhaustion: false,
        }
    }
}

impl Admin {
    /// The administration with these usage levels.
    pub fn with_levels(levels: UsageLevels) -> Self {
        Admin {
            levels,
            ..Admin::default()
        }
    }

    /// A pool selected in the pools list shows its grants; another selection clears them.
    fn follow_selection(&mut self, store: &FabricStore) -> Task<Message> {
        let pool = self.selected.filter(|_| self.tab == Tab::IpPools);
        self.grants.select(pool, store).map(Message::Grants)
    }

    /// A dialog or confirmation is open.
    pub fn is_modal(&self) -> bool {
        self.dialog.is_some()
    }

    /// The open create or properties dialog.
    pub fn object_dialog(&self) -> Option<&ObjectDialog> {
        match &self.dialog {
            Some(Dialog::Object(d)) => Some(d),
            _ => None,
        }
    }

    pub fn object_dialog_mut(&mut self) -> Option<&mut ObjectDialog> {
        match &mut self.dialog {
            Some(Dialog::Object(d)) => Some(d),
            _ => None,
        }
    }

    /// The open delete confirmation.
    pub fn delete_dialog(&self) -> Option<&DeleteDialog> {
        match &self.dialog {
            Some(Dialog::Delete(d)) => Some(d),
            _ => None,
        }
    }

    fn delete_dialog_mut(&mut self) -> Option<&mut DeleteDialog> {
        match &mut self.dialog {
            Some(Dialog::Delete(d)) => Some(d),
            _ => None,
        }
    }

    fn close_object_dialog(&mut self) -> Option<ObjectDialog> {
        match self.dialog.take_if(|d| matches!(d, Dialog::Object(_))) {
            Some(Dialog::Object(d)) => Some(d),
            _ => None,
        }
    }

    fn close_delete_dialog(&mut self) -> Option<DeleteDialog> {
        match self.dialog.take_if(|d| matches!(d, Dialog::Delete(_))) {
            Some(Dialog::Delete(d)) => Some(d),
            _ => None,
        }
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
    pub fn edit(
        &mut self,
        kind: ObjectKind,
        id: Id,
        fabric: &Fabric,
        store: &FabricStore,
    ) -> Task<Message> {
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
        let Some(form) = form else {
            return Task::none();
        };
        let task = self.open(form, true, fabric);
        // The save is refused if someone else saves the object meanwhile (another console).
        let opened = store
            .opened(kind, id)
            .zip(fabric.object(kind, id))
            .map(Box::new);
        if let Some(Dialog::Object(d)) = self.dialog.as_mut() {
            d.opened = opened;
        }
        task
    }

    /// Asks before deleting, listing what goes with the object.
    pub fn ask_delete(&mut self, kind: ObjectKind, id: Id, fabric: &Fabric, store: &FabricStore) {
        if self.is_modal() {
            return;
        }
        self.dialog = Some(Dialog::Delete(DeleteDialog {
            deletion: Deletion::plan(fabric, kind, id),
            deleting: false,
            error: None,
            opened: store.opened(kind, id),
        }));
    }

    fn open(&mut self, form: Form, editing: bool, fabric: &Fabric) -> Task<Message> {
        if self.is_modal() {
            return Task::none();
        }
        let first = form.first_input();
        self.dialog = Some(Dialog::Object(ObjectDialog::new(form, editing, fabric)));
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
                        Task::batch([
                            iced::widget::operation::scroll_to(
                                LIST_ID,
                                scrollable::AbsoluteOffset { x: 0.0, y: 0.0 },
                            ),
                            self.follow_selection(store),
                            grants::refresh(store, None).map(Message::Grants),
                        ]),
                        None,
                    );
                }
            }
            Message::Select(id) => {
                self.selected = Some(id);
                return (self.follow_selection(store), None);
            }
            Message::Menu(id) => {
                self.selected = Some(id);
                return (
                    self.follow_selection(store),
                    Some(Event::ContextMenu(self.tab)),
                );
            }
            Message::Grants(m) => {
                let (task, notice) =
                    self.grants
                        .update(m, store, fabric, &mut self.grant_counts, self.levels);
                return (
                    task.map(Message::Grants),
                    notice.map(|(tone, text)| Event::Notice(tone, text)),
                );
            }
            Message::NearExhaustion(on) => self.near_exhaustion = on,
            Message::Open(id) => {
                self.selected = Some(id);
                return (self.edit(self.tab.kind(), id, fabric, store), None);
            }
            Message::Sort(c) => self.sort.click(c),
            Message::Resize(r) => self.widths.update(r),
            Message::Create => return (self.create(self.tab, fabric), None),
            Message::CreateIn(tab) => return (self.create(tab, fabric), None),
            Message::Properties => {
                if let Some(id) = self.selected {
                    return (self.edit(self.tab.kind(), id, fabric, store), None);
                }
            }
            Message::Delete => {
                if let Some(id) = self.selected {
                    self.ask_delete(self.tab.kind(), id, fabric, store);
                }
            }
            Message::Scrolled(v) => self.list.scrolled(v),
            Message::Form(m) => {
                if let Some(d) = self.object_dialog_mut() {
                    d.update(m, fabric);
                }
            }
            Message::Save => {
                if let Some(d) = self.object_dialog_mut()
                    && let Some(changes) = d.submit(fabric)
                {
                    let opened = d.opened_revisions();
                    return (
                        Task::perform(
                            dialog::apply_checked(store.clone(), changes, opened),
                            Message::Saved,
                        ),
                        None,
                    );
                }
            }
            Message::Cancel => {
                self.close_object_dialog();
            }
            Message::Reload => {
                if let Some(d) = self.close_object_dialog()
                    && let Some(o) = d.opened.map(|b| b.0)
                {
                    // The store read their save when it refused this one.
                    let now = store.fabric();
                    return (self.edit(o.kind, o.id, &now, store), None);
                }
            }
            Message::Saved(Ok(new)) => {
                let Some(d) = self.close_object_dialog() else {
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
                if let Some(d) = self.object_dialog_mut() {
                    d.refused(e);
                }
            }
            Message::ConfirmDelete(false) => {
                self.close_delete_dialog();
            }
            Message::ConfirmDelete(true) => {
                if let Some(d) = self.delete_dialog_mut()
                    && d.deletion.allowed()
                    && !d.deleting
                {
                    d.deleting = true;
                    let changes = d.deletion.changes();
                    let opened = d.opened.into_iter().collect();
                    return (
                        Task::perform(
                            dialog::apply_checked(store.clone(), changes, opened),
                            Message::Deleted,
                        ),
                        None,
                    );
                }
            }
            Message::Deleted(Ok(new)) => {
                let Some(d) = self.close_delete_dialog() else {
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
                if let Some(d) = self.delete_dialog_mut() {
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
            DialogKey::Submit if self.object_dialog().is_some() => {
                self.update(Message::Save, fabric, store).0
            }
            DialogKey::Submit if self.delete_dialog().is_some() => {
                self.update(Message::ConfirmDelete(true), fabric, store).0
            }
            DialogKey::Cancel if self.object_dialog().is_some() => {
                self.update(Message::Cancel, fabric, store).0
            }
            DialogKey::Cancel if self.delete_dialog().is_some() => {
                self.update(Message::ConfirmDelete(false), fabric, store).0
            }
            _ => Task::none(),
        }
    }

    /// The open dialog, drawn by the console over everything else.
    pub fn modal<'a>(&'a self, fabric: &'a Fabric) -> Option<Element<'a, Message>> {
        match self.dialog.as_ref()? {
            Dialog::Object(d) => Some(d.view(fabric)),
            Dialog::Delete(d) => Some(d.view()),
        }
    }
}
