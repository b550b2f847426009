//! The side-by-side view of one IPAM server: the console's fabric on the left (logical network ▸
//! network site ▸ subnet ▸ pool; VM networks), the server's objects on the right (provider
//! address space ▸ subnet ▸ range; customer address spaces), rows aligned by identity under the
//! seed's mapping. Each row has a status badge; changed fields are highlighted. Conflicts are
//! decided here field by field or for a whole object, and an orphaned logical network offers
//! the deletion the seed prescribes. Only the rows in sight are built, so 100 000 rows scroll
//! like 40.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use iced::Task;
use iced::widget::scrollable;
use iced::widget::scrollable::Viewport;

use crate::fabric::model::{Fabric, Id, ObjectKind};
use crate::fabric::store::FabricStore;
use crate::sync::compare::{CompareRow, CompareView, RowKind, RowStatus};
use crate::sync::engine::EngineHandle;
use crate::sync::plan::{Resolution, SyncPlan};
use crate::ui::dialog::admin::delete::Deletion;
use crate::ui::dialog::admin::{self, SaveError};
use crate::ui::widget::style::Tone;
use crate::ui::widget::virtual_list::{Step, VirtualList};

pub const SEARCH_INPUT: &str = "compare-search";
pub const LIST_ID: &str = "compare-rows";
/// The orphan deletion's confirmation, a dialog of its own for Tab.
pub const CONFIRM_ID: &str = "compare-confirm";
/// Every row has this height; the list relies on it to build only what is in sight.
pub const ROW_HEIGHT: f32 = 26.0;
const BADGE_WIDTH: f32 = 124.0;

/// What the seed says about a logical network whose VMM Logical Network name was deleted.
pub const ORPHAN_RULE: &str = "Its VMM Logical Network name was deleted on the IPAM server, so the two servers can no longer match it and nothing was deleted on either side. To complete the deletion, delete the network sites and the logical network here; the next sync completes the deletion on the IPAM server. (To delete a logical network from the IPAM server, delete its IP address subnets there and keep the VMM Logical Network name.)";

/// The comparison and the plan it was computed with.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub view: CompareView,
    pub plan: SyncPlan,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadState {
    Loading,
    Ready,
    Failed(String),
}

/// The deletion an orphaned logical network asks for.
#[derive(Debug, Clone)]
pub struct OrphanDeletion {
    pub deletion: Deletion,
    pub deleting: bool,
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct CompareScreen {
    pub service: Id,
    pub service_name: String,
    pub state: LoadState,
    data: Option<Arc<Loaded>>,
    /// Statuses shown; empty shows every row.
    pub filters: BTreeSet<RowStatus>,
    pub search: String,
    /// Indices of the rows that pass the filters, in order.
    visible: Vec<usize>,
    list: VirtualList,
    /// Index into the comparison's rows.
    pub selected: Option<usize>,
    /// Identity of the selected row, to find it again after a reload.
    selected_identity: Option<(RowKind, Id, String)>,
    /// Decisions sent to the engine, by conflict key; the next sync applies them.
    pub decided: BTreeMap<String, Resolution>,
    pub confirm: Option<OrphanDeletion>,
    pub notice: Option<(Tone, String)>,
}

#[derive(Debug, Clone)]
pub enum Message {
    Loaded(Result<Arc<Loaded>, String>),
    Reload,
    ToggleFilter(RowStatus),
    ShowAll,
    Search(String),
    Scrolled(Viewport),
    Select(usize),
    /// One field's conflict.
    Resolve(String, Resolution),
    /// Every conflict of the selected row.
    ResolveRow(Resolution),
    DeleteOrphan,
    ConfirmDelete(bool),
    Deleted(Result<Arc<Fabric>, SaveError>),
    Preview,
    SyncNow,
    Close,
}

/// What an update reads: the console's fabric, the store for the orphan deletion, and the
/// engine for a fresh comparison.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub fabric: &'a Fabric,
    pub store: &'a FabricStore,
    pub engine: &'a EngineHandle,
}

/// What the side-by-side view asks of the console.
#[derive(Debug, Clone)]
pub enum Event {
    /// Send these decisions to the engine (ResolveConflict), then reload.
    Resolved {
        service: Id,
        decisions: Vec<(String, Resolution)>,
    },
    FabricChanged(Arc<Fabric>, String),
    Preview(Id),
    Sync(Id),
    Close,
}

fn identity(row: &CompareRow) -> (RowKind, Id, String) {
    (row.kind, row.object, title(row))
}

/// A row's title as the console shows it, else as the IPAM server does.
fn title(row: &CompareRow) -> String {
    row.console
        .as_ref()
        .or(row.ipam.as_ref())
        .map(|c| c.title.clone())
        .unwrap_or_default()
}

mod view;

pub use view::{badge, status_tone};

impl CompareScreen {
    pub fn new(service: Id, service_name: String) -> Self {
        CompareScreen {
            service,
            service_name,
            state: LoadState::Loading,
            data: None,
            filters: BTreeSet::new(),
            search: String::new(),
            visible: Vec::new(),
            list: VirtualList::new(ROW_HEIGHT),
            selected: None,
            selected_identity: None,
            decided: BTreeMap::new(),
            confirm: None,
            notice: None,
        }
    }

    /// A screen over a comparison already in hand (benchmarks, tests).
    pub fn ready(service: Id, service_name: String, loaded: Arc<Loaded>) -> Self {
        let mut s = Self::new(service, service_name);
        s.set_loaded(loaded);
        s
    }

    /// Ask the engine for a fresh comparison; the rows on screen stay until it arrives.
    pub fn load(&mut self, engine: &EngineHandle) -> Task<Message> {
        self.state = LoadState::Loading;
        let engine = engine.clone();
        let service = self.service;
        Task::perform(
            async move {
                engine
                    .compare(service)
                    .await
                    .map(|(view, plan)| Arc::new(Loaded { view, plan }))
            },
            Message::Loaded,
        )
    }

    /// Where the list is scrolled to and how tall it is (the scrollable reports both through
    /// `on_scroll`; benchmarks and tests set them directly).
    pub fn set_viewport(&mut self, offset: f32, height: f32) {
        self.list.offset = offset.max(0.0);
        self.list.viewport = Some(height);
    }

    pub fn loaded(&self) -> Option<&Loaded> {
        self.data.as_deref()
    }

    /// Arrow keys, Page Up/Down, Home and End move the selection in the list.
    pub fn step(&mut self, step: Step) -> Task<Message> {
        let total = self.rows().len();
        let (next, task) = self.list.step(LIST_ID, step, self.selected, total);
        if let Some(i) = next {
            self.selected = Some(i);
            self.selected_identity = self.rows().get(i).map(identity);
        }
        task
    }

    pub fn rows(&self) -> &[CompareRow] {
        self.data
            .as_ref()
            .map(|d| d.view.rows.as_slice())
            .unwrap_or(&[])
    }

    /// Rows that pass the filters, in order.
    pub fn visible_rows(&self) -> &[usize] {
        &self.visible
    }

    pub fn selected_row(&self) -> Option<&CompareRow> {
        self.selected.and_then(|i| self.rows().get(i))
    }

    fn set_loaded(&mut self, loaded: Arc<Loaded>) {
        self.data = Some(loaded);
        self.state = LoadState::Ready;
        self.refilter();
        self.selected = self
            .selected_identity
            .as_ref()
            .and_then(|want| self.rows().iter().position(|r| identity(r) == *want));
    }

    fn refilter(&mut self) {
        self.visible = match &self.data {
            Some(d) => d.view.filter(&self.filters, &self.search),
            None => Vec::new(),
        };
    }

    /// After the rows under the list changed: back to the top.
    fn scroll_top(&mut self) -> Task<Message> {
        self.list.reset();
        iced::widget::operation::scroll_to(LIST_ID, scrollable::AbsoluteOffset { x: 0.0, y: 0.0 })
    }

    pub fn focus_search() -> Task<Message> {
        Task::batch([
            iced::widget::operation::focus(SEARCH_INPUT),
            iced::widget::operation::select_all(SEARCH_INPUT),
        ])
    }

    pub fn update(&mut self, message: Message, ctx: Context<'_>) -> (Task<Message>, Option<Event>) {
        let Context {
            fabric,
            store,
            engine,
        } = ctx;
        match message {
            Message::Loaded(Ok(loaded)) => self.set_loaded(loaded),
            Message::Loaded(Err(e)) => self.state = LoadState::Failed(e),
            Message::Reload => return (self.load(engine), None),
            Message::ToggleFilter(s) => {
                if !self.filters.remove(&s) {
                    self.filters.insert(s);
                }
                self.refilter();
                return (self.scroll_top(), None);
            }
            Message::ShowAll => {
                self.filters.clear();
                self.refilter();
                return (self.scroll_top(), None);
            }
            Message::Search(t) => {
                self.search = t;
                self.refilter();
                return (self.scroll_top(), None);
            }
            Message::Scrolled(v) => self.list.scrolled(v),
            Message::Select(i) => {
                self.selected = Some(i);
                self.selected_identity = self.rows().get(i).map(identity);
            }
            Message::Resolve(key, resolution) => {
                self.decided.insert(key.clone(), resolution);
                return (
                    Task::none(),
                    Some(Event::Resolved {
                        service: self.service,
                        decisions: vec![(key, resolution)],
                    }),
                );
            }
            Message::ResolveRow(resolution) => {
                let decisions: Vec<(String, Resolution)> = self
                    .selected_row()
                    .map(|r| {
                        r.conflicts
                            .iter()
                            .map(|c| (c.key.to_string(), resolution))
                            .collect()
                    })
                    .unwrap_or_default();
                if decisions.is_empty() {
                    return (Task::none(), None);
                }
                for (k, r) in &decisions {
                    self.decided.insert(k.clone(), *r);
                }
                return (
                    Task::none(),
                    Some(Event::Resolved {
                        service: self.service,
                        decisions,
                    }),
                );
            }
            Message::DeleteOrphan => {
                if let Some(ln) = self
                    .selected_row()
                    .and_then(|r| logical_network_of(r, fabric))
                    && self.confirm.is_none()
                {
                    self.confirm = Some(OrphanDeletion {
                        deletion: Deletion::plan(fabric, ObjectKind::LogicalNetwork, ln),
                        deleting: false,
                        error: None,
                    });
                    return (
                        iced::advanced::widget::operate(
                            iced::advanced::widget::operation::focusable::unfocus(),
                        ),
                        None,
                    );
                }
            }
            Message::ConfirmDelete(false) => self.confirm = None,
            Message::ConfirmDelete(true) => {
                if let Some(c) = &mut self.confirm
                    && c.deletion.allowed()
                    && !c.deleting
                {
                    c.deleting = true;
                    let changes = c.deletion.changes();
                    return (
                        Task::perform(admin::apply(store.clone(), changes), Message::Deleted),
                        None,
                    );
                }
            }
            Message::Deleted(Ok(fabric)) => {
                if let Some(c) = self.confirm.take() {
                    let text = format!(
                        "The logical network \"{}\" and {} objects that depended on it were deleted here; the next sync of {} completes the deletion.",
                        c.deletion.name,
                        c.deletion.with.len(),
                        self.service_name
                    );
                    self.notice = Some((Tone::Success, text.clone()));
                    return (Task::none(), Some(Event::FabricChanged(fabric, text)));
                }
            }
            Message::Deleted(Err(e)) => {
                if let Some(c) = &mut self.confirm {
                    c.deleting = false;
                    c.error = Some(e.message);
                }
            }
            Message::Preview => return (Task::none(), Some(Event::Preview(self.service))),
            Message::SyncNow => return (Task::none(), Some(Event::Sync(self.service))),
            Message::Close => return (Task::none(), Some(Event::Close)),
        }
        (Task::none(), None)
    }

    /// Decisions sent for this row's fields and waiting for the next sync, as (field, choice).
    /// Conflict keys are "<kind>:<id or logical network:subnet>:<field>".
    pub fn decisions_for(&self, row: &CompareRow) -> Vec<(String, Resolution)> {
        if self.decided.is_empty() {
            return Vec::new();
        }
        let id = row.object.to_string();
        let subnet = match row.kind {
            RowKind::Subnet => row
                .console
                .as_ref()
                .or(row.ipam.as_ref())
                .map(|c| format!(":{}:", c.title)),
            _ => None,
        };
        self.decided
            .iter()
            .filter(|(k, _)| match &subnet {
                Some(net) => k.starts_with("subnet:") && k.contains(net.as_str()),
                None => !k.starts_with("subnet:") && k.contains(&id),
            })
            .map(|(k, r)| (k.rsplit(':').next().unwrap_or(k).to_string(), *r))
            .collect()
    }

    /// A sync ran: the decisions it applied are history.
    pub fn synced(&mut self) {
        self.decided.clear();
    }

    /// The row has decisions waiting for the next sync.
    pub fn row_decided(&self, row: &CompareRow) -> bool {
        !self.decisions_for(row).is_empty()
    }
}

/// The logical network a row belongs to, for the orphan deletion.
pub fn logical_network_of(row: &CompareRow, fabric: &Fabric) -> Option<Id> {
    match row.kind {
        RowKind::LogicalNetwork => Some(row.object),
        RowKind::NetworkSite | RowKind::Subnet => fabric
            .network_sites
            .get(&row.object)
            .map(|s| s.logical_network),
        RowKind::Pool | RowKind::VmPool => fabric
            .ip_pools
            .get(&row.object)
            .and_then(|p| fabric.logical_network_of_pool(p)),
        RowKind::VmNetwork => fabric
            .vm_networks
            .get(&row.object)
            .map(|v| v.logical_network),
    }
    .filter(|ln| fabric.logical_networks.contains_key(ln))
}
