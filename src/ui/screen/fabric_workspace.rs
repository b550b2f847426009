//! The Fabric workspace: the Fabric pane's tree (Servers ▸ All Hosts …; Networking ▸ Logical
//! Networks, VM Networks, Network Service), the results grid and the details pane below it.

use std::collections::BTreeSet;

use iced::widget::{
    button, column, container, progress_bar, responsive, row, scrollable, space, text, tooltip,
};
use iced::{Alignment, Element, Length, Task, Theme};

use crate::fabric::model::{Fabric, HostGroupScope, Id, NetworkService, ServiceCategory};
use crate::ipam::tls::Encryption;
use crate::sync::status::{JobRecord, JobResult, ServiceStatus, StatusMap, SyncState};
use crate::ui::widget::chart;
use crate::ui::widget::grid::{self, ColumnWidths, GridColumn, Sort, col};
use crate::ui::widget::style::{self, Icon, Tone};
use crate::ui::widget::virtual_list::Step;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Node {
    Servers,
    HostGroup(Id),
    Networking,
    LogicalNetworks,
    VmNetworks,
    NetworkService,
}

/// What the workspace reads from the console to draw itself.
pub struct Data<'a> {
    pub fabric: &'a Fabric,
    pub statuses: &'a StatusMap,
    pub jobs: &'a [JobRecord],
}

#[derive(Debug, Clone)]
pub struct FabricWorkspace {
    pub node: Node,
    expanded: BTreeSet<Node>,
    pub selected_service: Option<Id>,
    pub selected_row: Option<Id>,
    service_sort: Sort,
    row_sort: Sort,
    widths: ColumnWidths,
}

#[derive(Debug, Clone)]
pub enum Message {
    SelectNode(Node),
    Toggle(Node),
    SelectService(Id),
    OpenService(Id),
    ServiceMenu(Id),
    SortServices(usize),
    SelectRow(Id),
    SortRows(usize),
    Resize(grid::Resize),
}

#[derive(Debug, Clone)]
pub enum Event {
    OpenProperties(Id),
    ContextMenu(Id),
}

/// Services one Page Up/Down moves over.
const SERVICE_PAGE: usize = 10;

pub const SERVICE_COLUMNS: [GridColumn; 8] = [
    col("Name", 5),
    col("Category", 6),
    col("Manufacturer", 5),
    col("Model", 7),
    col("Connection String", 7),
    col("Sync Status", 6),
    col("Last Sync", 4),
    col("Skew", 2),
];

impl Default for FabricWorkspace {
    fn default() -> Self {
        FabricWorkspace {
            node: Node::NetworkService,
            expanded: [Node::Servers, Node::Networking, Node::NetworkService]
                .into_iter()
                .collect(),
            selected_service: None,
            selected_row: None,
            service_sort: Sort::default(),
            row_sort: Sort::default(),
            widths: ColumnWidths::default(),
        }
    }
}

impl FabricWorkspace {
    pub fn update(&mut self, message: Message) -> (Task<Message>, Option<Event>) {
        match message {
            Message::SelectNode(node) => {
                if self.node != node {
                    self.selected_row = None;
                }
                self.node = node;
            }
            Message::Toggle(node) => {
                if !self.expanded.remove(&node) {
                    self.expanded.insert(node);
                }
            }
            Message::SelectService(id) => {
                self.node = Node::NetworkService;
                self.selected_service = Some(id);
            }
            Message::OpenService(id) => {
                self.selected_service = Some(id);
                return (Task::none(), Some(Event::OpenProperties(id)));
            }
            Message::ServiceMenu(id) => {
                self.selected_service = Some(id);
                return (Task::none(), Some(Event::ContextMenu(id)));
            }
            Message::SortServices(c) => self.service_sort.click(c),
            Message::SelectRow(id) => self.selected_row = Some(id),
            Message::SortRows(c) => self.row_sort.click(c),
            Message::Resize(r) => self.widths.update(r),
        }
        (Task::none(), None)
    }

    /// Show a service: Network Service node, the service selected (e.g. after the wizard's Finish).
    pub fn reveal_service(&mut self, id: Id) {
        self.node = Node::NetworkService;
        self.selected_service = Some(id);
        self.expanded.insert(Node::Networking);
        self.expanded.insert(Node::NetworkService);
    }

    /// The service the ribbon's Refresh/Remove/Properties act on.
    pub fn current_service(&self, fabric: &Fabric) -> Option<Id> {
        (self.node == Node::NetworkService)
            .then_some(self.selected_service)
            .flatten()
            .filter(|id| fabric.network_services.contains_key(id))
    }

    /// Services in display order: grouped by category, sorted by the chosen column.
    /// Arrow keys, Page Up/Down, Home and End move the selection among the network services,
    /// in the order the grid shows them.
    pub fn step_service(&mut self, step: Step, fabric: &Fabric, statuses: &StatusMap) {
        let order: Vec<Id> = ServiceCategory::ALL
            .iter()
            .flat_map(|c| self.sorted_services(fabric, statuses, *c))
            .map(|s| s.id)
            .collect();
        let current = self
            .selected_service
            .and_then(|id| order.iter().position(|s| *s == id));
        if let Some(i) = step.apply(current, order.len(), SERVICE_PAGE) {
            self.selected_service = Some(order[i]);
        }
    }

    pub fn sorted_services<'a>(
        &self,
        fabric: &'a Fabric,
        statuses: &StatusMap,
        category: ServiceCategory,
    ) -> Vec<&'a NetworkService> {
        let mut services: Vec<&NetworkService> = fabric
            .network_services
            .values()
            .filter(|s| s.category == category)
            .collect();
        let sort = self.service_sort;
        services.sort_by(|a, b| {
            let sa = statuses.get(&a.id);
            let sb = statuses.get(&b.id);
            let ord = match sort.column {
                1 => a.category.cmp(&b.category),
                2 => grid::text_order(&a.manufacturer, &b.manufacturer),
                3 => grid::text_order(&a.model, &b.model),
                4 => grid::text_order(&a.connection.to_string(), &b.connection.to_string()),
                5 => status_rank(sa).cmp(&status_rank(sb)),
                6 => sa
                    .and_then(|s| s.last_end)
                    .cmp(&sb.and_then(|s| s.last_end)),
                7 => sa
                    .and_then(|s| s.skew_ms.map(i64::abs))
                    .cmp(&sb.and_then(|s| s.skew_ms.map(i64::abs))),
                _ => std::cmp::Ordering::Equal,
            };
            sort.apply(ord.then_with(|| grid::text_order(&a.name, &b.name)))
        });
        services
    }

    pub fn tree<'a>(&'a self, data: &Data<'a>) -> Element<'a, Message> {
        let mut items: Vec<Element<'a, Message>> = Vec::new();
        items.push(self.tree_item(Node::Servers, Icon::Server, "Servers", 0, true, None));
        if self.expanded.contains(&Node::Servers)
            && let Some(root) = data.fabric.root_host_group()
        {
            self.push_host_group(&mut items, data.fabric, root.id, 1);
        }
        items.push(self.tree_item(Node::Networking, Icon::Network, "Networking", 0, true, None));
        if self.expanded.contains(&Node::Networking) {
            items.push(self.tree_item(
                Node::LogicalNetworks,
                Icon::Waypoints,
                "Logical Networks",
                1,
                false,
                Some(data.fabric.logical_networks.len()),
            ));
            items.push(self.tree_item(
                Node::VmNetworks,
                Icon::Boxes,
                "VM Networks",
                1,
                false,
                Some(data.fabric.vm_networks.len()),
            ));
            let has_services = !data.fabric.network_services.is_empty();
            items.push(self.tree_item(
                Node::NetworkService,
                Icon::ServerCog,
                "Network Service",
                1,
                has_services,
                Some(data.fabric.network_services.len()),
            ));
            if has_services && self.expanded.contains(&Node::NetworkService) {
                let mut services: Vec<&NetworkService> =
                    data.fabric.network_services.values().collect();
                services.sort_by(|a, b| grid::text_order(&a.name, &b.name));
                for s in services {
                    let state = data
                        .statuses
                        .get(&s.id)
                        .map(|st| st.state.clone())
                        .unwrap_or(SyncState::NeverSynced);
                    let selected =
                        self.node == Node::NetworkService && self.selected_service == Some(s.id);
                    items.push(
                        button(
                            row![
                                space().width(2.0 * 16.0 + 18.0),
                                style::sync_dot(&state),
                                style::icon(Icon::Database, 14),
                                text(s.name.clone()).size(style::TEXT),
                            ]
                            .spacing(6)
                            .align_y(Alignment::Center),
                        )
                        .padding([2, 4])
                        .width(Length::Fill)
                        .style(style::flat(selected))
                        .on_press(Message::SelectService(s.id))
                        .into(),
                    );
                }
            }
        }
        scrollable(column(items).spacing(1).padding([6, 4]))
            .height(Length::Fill)
            .into()
    }

    fn tree_item<'a>(
        &self,
        node: Node,
        icon: Icon,
        label: &str,
        depth: u16,
        expandable: bool,
        count: Option<usize>,
    ) -> Element<'a, Message> {
        let expanded = self.expanded.contains(&node);
        let expander = style::expander(expanded, expandable.then_some(Message::Toggle(node)));
        let mut line = row![
            style::icon(icon, 14),
            text(label.to_string()).size(style::TEXT)
        ]
        .spacing(6)
        .align_y(Alignment::Center);
        if let Some(n) = count {
            line = line.push(style::hint(format!("({n})")));
        }
        let selected =
            self.node == node && !(node == Node::NetworkService && self.selected_service.is_some());
        row![
            space().width(f32::from(depth) * 16.0),
            expander,
            button(line)
                .padding([2, 6])
                .width(Length::Fill)
                .style(style::flat(selected))
                .on_press(Message::SelectNode(node)),
        ]
        .align_y(Alignment::Center)
        .into()
    }

    fn push_host_group<'a>(
        &'a self,
        items: &mut Vec<Element<'a, Message>>,
        fabric: &'a Fabric,
        id: Id,
        depth: u16,
    ) {
        let Some(group) = fabric.host_groups.get(&id) else {
            return;
        };
        let children = fabric.host_group_children(id);
        let open = self.expanded.contains(&Node::HostGroup(id)) && !children.is_empty();
        items.push(self.tree_item(
            Node::HostGroup(id),
            if open { Icon::FolderOpen } else { Icon::Folder },
            &group.name,
            depth,
            !children.is_empty(),
            None,
        ));
        if self.expanded.contains(&Node::HostGroup(id)) {
            for c in children {
                self.push_host_group(items, fabric, c.id, depth + 1);
            }
        }
    }

    /// The results grid for the selected node.
    pub fn results<'a>(&'a self, data: &Data<'a>) -> Element<'a, Message> {
        match self.node {
            Node::NetworkService => self.services_grid(data),
            Node::LogicalNetworks => self.logical_networks_grid(data.fabric),
            Node::VmNetworks => self.vm_networks_grid(data.fabric),
            Node::Servers | Node::HostGroup(_) => self.host_groups_grid(data.fabric),
            Node::Networking => column![
                style::heading("Networking"),
                style::field_line(
                    "Logical networks",
                    data.fabric.logical_networks.len().to_string()
                ),
                style::field_line("Network sites", data.fabric.network_sites.len().to_string()),
                style::field_line(
                    "Static IP address pools",
                    data.fabric.ip_pools.len().to_string()
                ),
                style::field_line("VM networks", data.fabric.vm_networks.len().to_string()),
                style::field_line(
                    "Network services",
                    data.fabric.network_services.len().to_string()
                ),
            ]
            .spacing(6)
            .padding(12)
            .into(),
        }
    }

    fn services_grid<'a>(&'a self, data: &Data<'a>) -> Element<'a, Message> {
        let mut rows: Vec<Element<'a, Message>> = Vec::new();
        for category in ServiceCategory::ALL {
            let services = self.sorted_services(data.fabric, data.statuses, category);
            rows.push(
                container(
                    text(format!("{} ({})", category.label(), services.len()))
                        .size(style::SMALL)
                        .font(style::bold()),
                )
                .padding([3, 8])
                .width(Length::Fill)
                .style(style::group_row)
                .into(),
            );
            for s in services {
                rows.push(service_row(
                    &self.widths,
                    s,
                    data.statuses.get(&s.id),
                    self.selected_service == Some(s.id),
                ));
            }
        }
        column![
            grid::header(
                "services",
                &SERVICE_COLUMNS,
                &self.widths,
                self.service_sort,
                Message::SortServices,
                Message::Resize,
            ),
            scrollable(column(rows).spacing(1)).height(Length::Fill),
        ]
        .into()
    }

    fn simple_grid<'a>(
        &'a self,
        key: &'static str,
        columns: &'static [GridColumn],
        mut rows: Vec<(Id, Vec<String>)>,
    ) -> Element<'a, Message> {
        let sort = self.row_sort;
        rows.sort_by(|a, b| {
            let c = sort.column.min(columns.len().saturating_sub(1));
            let (x, y) = (a.1.get(c), b.1.get(c));
            let ord = match (
                x.and_then(|v| v.parse::<i64>().ok()),
                y.and_then(|v| v.parse::<i64>().ok()),
            ) {
                (Some(p), Some(q)) => p.cmp(&q),
                _ => grid::text_order(x.map_or("", |v| v), y.map_or("", |v| v)),
            };
            sort.apply(ord)
        });
        let portions: Vec<u16> = (0..columns.len())
            .map(|i| self.widths.portion(key, columns, i))
            .collect();
        let body = column(rows.into_iter().map(|(id, cells)| {
            let cells = cells
                .into_iter()
                .zip(portions.iter())
                .map(|(v, p)| grid::cell(v, *p))
                .collect();
            grid::grid_row(
                cells,
                self.selected_row == Some(id),
                Message::SelectRow(id),
                None,
                None,
            )
        }))
        .spacing(1);
        column![
            grid::header(
                key,
                columns,
                &self.widths,
                sort,
                Message::SortRows,
                Message::Resize,
            ),
            scrollable(body).height(Length::Fill),
        ]
        .into()
    }

    fn logical_networks_grid<'a>(&'a self, fabric: &'a Fabric) -> Element<'a, Message> {
        const COLUMNS: [GridColumn; 5] = [
            col("Name", 3),
            col("Isolation", 3),
            col("Network Sites", 1),
            col("Subnets", 1),
            col("Description", 3),
        ];
        let rows = fabric
            .logical_networks
            .values()
            .map(|ln| {
                let sites: Vec<_> = fabric.sites_of(ln.id).collect();
                let subnets: usize = sites.iter().map(|s| s.subnets.len()).sum();
                (
                    ln.id,
                    vec![
                        ln.name.clone(),
                        ln.isolation.label().to_string(),
                        sites.len().to_string(),
                        subnets.to_string(),
                        ln.description.clone(),
                    ],
                )
            })
            .collect();
        self.simple_grid("logical-networks", &COLUMNS, rows)
    }

    fn vm_networks_grid<'a>(&'a self, fabric: &'a Fabric) -> Element<'a, Message> {
        const COLUMNS: [GridColumn; 4] = [
            col("Name", 3),
            col("Logical Network", 3),
            col("Isolation", 2),
            col("VM Subnets", 3),
        ];
        let rows = fabric
            .vm_networks
            .values()
            .map(|v| {
                (
                    v.id,
                    vec![
                        v.name.clone(),
                        fabric
                            .logical_networks
                            .get(&v.logical_network)
                            .map(|l| l.name.clone())
                            .unwrap_or_default(),
                        v.isolation.label().to_string(),
                        v.vm_subnets
                            .iter()
                            .map(|s| s.to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                    ],
                )
            })
            .collect();
        self.simple_grid("vm-networks", &COLUMNS, rows)
    }

    fn host_groups_grid<'a>(&'a self, fabric: &'a Fabric) -> Element<'a, Message> {
        const COLUMNS: [GridColumn; 3] = [col("Name", 2), col("Path", 4), col("Network Sites", 1)];
        let scope: BTreeSet<Id> = match self.node {
            Node::HostGroup(id) => fabric.host_group_subtree(id),
            _ => fabric.host_groups.keys().copied().collect(),
        };
        let rows = scope
            .into_iter()
            .filter_map(|id| fabric.host_groups.get(&id))
            .map(|g| {
                let sites = fabric
                    .network_sites
                    .values()
                    .filter(|s| s.host_groups.contains(&g.id))
                    .count();
                (
                    g.id,
                    vec![
                        g.name.clone(),
                        fabric.host_group_path(g.id),
                        sites.to_string(),
                    ],
                )
            })
            .collect();
        self.simple_grid("host-groups", &COLUMNS, rows)
    }

    /// The details pane: the selected object's properties and, for a service, its latest job.
    pub fn details<'a>(&'a self, data: &Data<'a>) -> Element<'a, Message> {
        let body: Element<'a, Message> = match self.node {
            Node::NetworkService => match self
                .selected_service
                .and_then(|id| data.fabric.network_services.get(&id))
            {
                Some(s) => service_details(data, s),
                None => style::hint(
                    "Select a network service to see its properties and its latest job.",
                ),
            },
            Node::LogicalNetworks => match self
                .selected_row
                .and_then(|id| data.fabric.logical_networks.get(&id))
            {
                Some(ln) => {
                    let mut c = column![
                        style::heading(ln.name.clone()),
                        style::field_line("Isolation", ln.isolation.label()),
                        style::field_line("Description", ln.description.clone()),
                    ]
                    .spacing(4);
                    for site in data.fabric.sites_of(ln.id) {
                        let subnets = site
                            .subnets
                            .iter()
                            .map(|s| format!("{} (VLAN {})", s.subnet, s.vlan))
                            .collect::<Vec<_>>()
                            .join(", ");
                        c = c.push(style::field_line(format!("Site {}", site.name), subnets));
                    }
                    c.into()
                }
                None => style::hint("Select a logical network to see its network sites."),
            },
            _ => style::hint("Select an object to see its properties."),
        };
        scrollable(container(body).padding([8, 12]).width(Length::Fill))
            .height(Length::Fill)
            .into()
    }
}

/// One service's category, as its row names it.
pub fn category_singular(category: ServiceCategory) -> &'static str {
    match category {
        ServiceCategory::Gateway => "Gateway",
        ServiceCategory::VirtualSwitchExtension => "Virtual switch extension",
        ServiceCategory::NetworkManager => "Network manager",
        ServiceCategory::TopOfRackSwitch => "Top-of-rack switch",
    }
}

fn status_rank(status: Option<&ServiceStatus>) -> u8 {
    match status.map(|s| &s.state) {
        Some(SyncState::Error(_)) => 0,
        Some(SyncState::Warning(_)) => 1,
        Some(SyncState::Syncing { .. } | SyncState::Waiting(_)) => 2,
        None | Some(SyncState::NeverSynced) => 3,
        Some(SyncState::InSync) => 4,
    }
}

/// "Syncing 40%" style progress as a fraction, when known.
pub fn progress_fraction(state: &SyncState) -> Option<f32> {
    match state {
        SyncState::Syncing { done, total, .. } if *total > 0 => {
            Some((*done as f32 / *total as f32).clamp(0.0, 1.0))
        }
        _ => None,
    }
}

/// `text` cut to at most `max` characters at a word boundary, with "…" when anything was cut.
pub fn fit_text(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let keep: String = text.chars().take(max.saturating_sub(1)).collect();
    let cut = match keep.rfind(' ') {
        Some(i) if i > keep.len() / 2 => keep[..i].trim_end_matches([',', ':', ';', ' ']),
        _ => keep.as_str(),
    };
    format!("{cut}…")
}

/// Short text of the Sync Status column.
pub fn short_status(state: &SyncState) -> String {
    match state {
        SyncState::NeverSynced => "Never synced".into(),
        SyncState::Syncing { stage, .. } => match progress_fraction(state) {
            Some(f) => format!("Syncing {:.0}% ({})", f * 100.0, stage.label()),
            None => format!("Syncing ({})", stage.label()),
        },
        SyncState::InSync => "In sync".into(),
        SyncState::Waiting(w) => format!("Waiting: {w}"),
        SyncState::Warning(w) => format!("Warning: {w}"),
        SyncState::Error(e) => format!("Error: {e}"),
    }
}

fn service_row<'a>(
    widths: &ColumnWidths,
    s: &'a NetworkService,
    status: Option<&ServiceStatus>,
    selected: bool,
) -> Element<'a, Message> {
    let state = status
        .map(|st| st.state.clone())
        .unwrap_or(SyncState::NeverSynced);
    let tone = style::sync_tone(&state);
    let label = short_status(&state);
    let progress = progress_fraction(&state);
    // The text is fitted to the column's width at a word boundary ("Error: the server…"); the
    // whole of it shows in a tooltip and in the details pane.
    let full = label.clone();
    let fitted = responsive(move |size| {
        let bar = if progress.is_some() { 56.0 } else { 0.0 };
        let chars = ((size.width - 22.0 - bar) / style::CHAR_WIDTH).max(4.0) as usize;
        let shown = fit_text(&label, chars);
        let mut cell = row![
            style::sync_dot(&state),
            text(shown)
                .size(style::TEXT)
                .wrapping(text::Wrapping::None)
                .style(move |theme: &Theme| text::Style {
                    color: tone
                        .filter(|t| matches!(t, Tone::Error | Tone::Warning))
                        .map(|t| style::tone_color(theme, t)),
                }),
        ]
        .spacing(6)
        .align_y(Alignment::Center);
        if let Some(f) = progress {
            cell = cell.push(progress_bar(0.0..=1.0, f).length(50).girth(6));
        }
        container(cell)
            .height(Length::Fill)
            .align_y(Alignment::Center)
            .into()
    });
    let status_cell = tooltip(
        fitted,
        container(text(full).size(style::TEXT))
            .padding([4, 8])
            .max_width(420)
            .style(style::tooltip_box),
        tooltip::Position::Bottom,
    );
    let cells = vec![
        grid::cell(
            s.name.clone(),
            widths.portion("services", &SERVICE_COLUMNS, 0),
        ),
        grid::cell(
            category_singular(s.category),
            widths.portion("services", &SERVICE_COLUMNS, 1),
        ),
        grid::cell(
            s.manufacturer.clone(),
            widths.portion("services", &SERVICE_COLUMNS, 2),
        ),
        grid::cell(
            s.model.clone(),
            widths.portion("services", &SERVICE_COLUMNS, 3),
        ),
        grid::cell(
            s.connection.to_string(),
            widths.portion("services", &SERVICE_COLUMNS, 4),
        ),
        grid::cell_with(status_cell, widths.portion("services", &SERVICE_COLUMNS, 5)),
        grid::cell(
            style::format_short_time(status.and_then(|s| s.last_end)),
            widths.portion("services", &SERVICE_COLUMNS, 6),
        ),
        grid::cell(
            style::format_skew(status.and_then(|s| s.skew_ms)),
            widths.portion("services", &SERVICE_COLUMNS, 7),
        ),
    ];
    grid::grid_row(
        cells,
        selected,
        Message::SelectService(s.id),
        Some(Message::OpenService(s.id)),
        Some(Message::ServiceMenu(s.id)),
    )
}

/// Syncs the health summary covers.
const HEALTH_JOBS: usize = 20;

fn service_details<'a>(data: &Data<'a>, s: &'a NetworkService) -> Element<'a, Message> {
    let status = data.statuses.get(&s.id);
    let state = status
        .map(|st| st.state.clone())
        .unwrap_or(SyncState::NeverSynced);
    let run_as = data
        .fabric
        .run_as_accounts
        .get(&s.run_as)
        .map(|a| format!("{} ({})", a.name, a.user_name))
        .unwrap_or_else(|| "missing: choose one in Properties".into());
    let scope = match &s.scope {
        HostGroupScope::All => "All host groups".to_string(),
        HostGroupScope::Selected(g) => g
            .iter()
            .map(|id| data.fabric.host_group_path(*id))
            .collect::<Vec<_>>()
            .join("; "),
    };
    let left = column![
        style::heading(s.name.clone()),
        style::field_line("Description", s.description.clone()),
        style::field_line(
            "Manufacturer / model",
            format!("{} / {}", s.manufacturer, s.model)
        ),
        style::field_line("Connection string", s.connection.to_string()),
        style::field_line("Encrypted", Encryption::of_service(s).describe()),
        style::field_line("Run As account", run_as),
        style::field_line("Host groups", scope),
        style::field_line("Sync interval", format!("{} s", s.sync_interval_secs)),
        style::field_line(
            "Sync on change",
            if s.sync_on_change { "On" } else { "Off" }
        ),
        style::field_line(
            "IPAM change events",
            s.event_source.clone().unwrap_or_else(|| "None".into())
        ),
    ]
    .spacing(4)
    .width(Length::FillPortion(1));
    let mut right = column![
        style::heading("Sync"),
        row![
            style::sync_dot(&state),
            text(state.label()).size(style::TEXT)
        ]
        .spacing(6)
        .align_y(Alignment::Center),
        style::field_line(
            "Last sync",
            style::format_time(status.and_then(|s| s.last_end))
        ),
        style::field_line(
            "Next sync",
            style::format_time(status.and_then(|s| s.next_run))
        ),
        style::field_line(
            "Clock skew",
            style::format_skew(status.and_then(|s| s.skew_ms))
        ),
        style::field_line(
            "IPAM changes",
            status
                .map(|s| s.updates.label())
                .unwrap_or_else(|| "Not known yet".to_string())
        ),
    ]
    .spacing(4)
    .width(Length::FillPortion(1));
    if let Some(st) = status
        && !st.conflicts.is_empty()
    {
        right = right.push(style::notice(
            Tone::Warning,
            format!("{} conflicts wait for a decision.", st.conflicts.len()),
        ));
    }
    let points = chart::job_points(data.jobs, s.id, HEALTH_JOBS);
    if let Some(health) = chart::SyncHealth::of(&points) {
        right = right.push(style::field_with(
            "Sync health",
            column![
                chart::outcome_strip(&points),
                text(format!("Last {}: {}", health.syncs, health.summary())).size(style::TEXT),
            ]
            .spacing(2),
        ));
        if let Some(at) = health.last_failure {
            right = right.push(style::field_line(
                "Last failure",
                style::format_time(Some(at)),
            ));
        }
    }
    match data.jobs.iter().find(|j| j.service == s.id) {
        Some(job) => {
            let c = &job.counts;
            right = right.push(style::field_line(
                "Latest job",
                format!(
                    "{} · started {} · {}",
                    job.result.label(),
                    style::format_time(Some(job.started)),
                    c.changes(" · ")
                ),
            ));
            if job.result == JobResult::Failed
                && let Some(e) = job.errors.first()
            {
                right = right.push(style::notice(Tone::Error, e.clone()));
            }
        }
        None => right = right.push(style::field_line("Latest job", "none yet")),
    }
    row![left, right].spacing(24).into()
}

#[cfg(test)]
mod tests {
    use super::fit_text;

    #[test]
    fn status_text_is_cut_at_a_word_with_an_ellipsis() {
        assert_eq!(fit_text("In sync", 20), "In sync");
        assert_eq!(
            fit_text("Error: the IPAM server rejected the credentials", 24),
            "Error: the IPAM server…"
        );
        assert_eq!(fit_text("Error:Unbroken-long-word", 10), "Error:Unb…");
        assert_eq!(fit_text("abc", 0), "…");
    }
}
