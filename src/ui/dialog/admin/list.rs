//! The list of one kind of fabric object with its toolbar, and the details pane beside it.

use std::collections::HashMap;
use std::sync::Arc;

use iced::widget::{button, column, container, row, scrollable, space, text};
use iced::{Alignment, Element, Length};

use super::grants;
use super::{Admin, LIST_ID, Message, Tab, form};
use crate::fabric::model::{Fabric, Id, PoolScope};
use crate::fabric::store::GrantCounts;
use crate::ui::widget::chart::{self, PoolUsage};
use crate::ui::widget::grid::{self, Sort};
use crate::ui::widget::style;
use crate::ui::widget::virtual_list::Step;

/// Rows of the current tab in display order, kept until the fabric or the sort changes.
#[derive(Debug, Clone)]
pub(super) struct ListCache {
    fabric: Arc<Fabric>,
    tab: Tab,
    sort: Sort,
    rows: Arc<Vec<Id>>,
    /// Sites per host group; sites and VM networks per logical network.
    counts: Arc<HashMap<Id, (usize, usize)>>,
    /// The grant counts the use was computed from, and each row's use.
    grant_counts: Arc<GrantCounts>,
    usage: Arc<HashMap<Id, PoolUsage>>,
    /// Only rows near exhaustion.
    near: bool,
    /// Rows of the tab before the near-exhaustion filter.
    all: usize,
}

impl Admin {
    /// The details pane: the selected object's properties.
    pub fn details<'a>(&'a self, fabric: &'a Fabric) -> Element<'a, Message> {
        // The list's counts when it is current; counting again only when it is not.
        let cached = self
            .cache
            .borrow()
            .as_ref()
            .filter(|c| {
                c.tab == self.tab
                    && std::ptr::eq(Arc::as_ptr(&c.fabric), fabric)
                    && Arc::ptr_eq(&c.grant_counts, &self.grant_counts)
            })
            .map(|c| (c.counts.clone(), c.usage.clone()));
        let (counts, usage) = cached.unwrap_or_else(|| {
            (
                Arc::new(object_counts(fabric, self.tab)),
                Arc::new(grants::usage_map(fabric, self.tab, &self.grant_counts)),
            )
        });
        let lines = self
            .selected
            .map(|id| detail_lines(fabric, self.tab, id, &counts, &usage))
            .unwrap_or_default();
        let body: Element<'a, Message> = match lines.split_first() {
            Some(((_, title), rest)) => {
                let mut c = column![style::heading(title.clone())].spacing(4);
                if self.tab == Tab::IpPools
                    && let Some(pool) = self.selected.and_then(|id| fabric.ip_pools.get(&id))
                {
                    c = c.push(
                        self.grants
                            .view(pool, &self.grant_counts, fabric)
                            .map(Message::Grants),
                    );
                }
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

    /// Arrow keys, Page Up/Down, Home and End move the selection in the list.
    pub fn step(&mut self, step: Step, fabric: &Arc<Fabric>) -> iced::Task<Message> {
        let rows = self.rows(fabric).rows;
        let current = self
            .selected
            .and_then(|id| rows.iter().position(|r| *r == id));
        let (next, task) = self.list.step(LIST_ID, step, current, rows.len());
        match next {
            // Through Select, so a pool's grants follow the selection.
            Some(i) if self.selected != Some(rows[i]) => {
                iced::Task::batch([task, iced::Task::done(Message::Select(rows[i]))])
            }
            _ => task,
        }
    }

    fn rows(&self, fabric: &Arc<Fabric>) -> ListCache {
        if let Some(c) = self.cache.borrow().as_ref()
            && Arc::ptr_eq(&c.fabric, fabric)
            && c.tab == self.tab
            && c.sort == self.sort
            && Arc::ptr_eq(&c.grant_counts, &self.grant_counts)
            && c.near == self.near_exhaustion
        {
            return c.clone();
        }
        let counts = Arc::new(object_counts(fabric, self.tab));
        let usage = Arc::new(grants::usage_map(fabric, self.tab, &self.grant_counts));
        let mut keyed: Vec<(String, Id)> = match self.tab {
            Tab::HostGroups => unkeyed(&fabric.host_groups),
            Tab::LogicalNetworks => unkeyed(&fabric.logical_networks),
            Tab::NetworkSites => unkeyed(&fabric.network_sites),
            Tab::IpPools => unkeyed(&fabric.ip_pools),
            Tab::VmNetworks => unkeyed(&fabric.vm_networks),
        };
        for (key, id) in keyed.iter_mut() {
            *key = if self.sort.column == 0 {
                name_of(fabric, self.tab, *id)
            } else {
                row_cells(fabric, self.tab, *id, &counts, &usage)
                    .get(self.sort.column)
                    .cloned()
                    .unwrap_or_default()
            }
            .to_lowercase();
        }
        keyed.sort_by(|a, b| self.sort.apply(a.0.cmp(&b.0)));
        let all = keyed.len();
        let near = self.near_exhaustion && self.tab.has_usage();
        if near {
            let warning = self.levels.warning;
            keyed.retain(|(_, id)| usage.get(id).is_some_and(|u| u.used() >= warning));
        }
        let cache = ListCache {
            fabric: fabric.clone(),
            tab: self.tab,
            sort: self.sort,
            rows: Arc::new(keyed.into_iter().map(|(_, id)| id).collect()),
            counts,
            grant_counts: self.grant_counts.clone(),
            usage,
            near: self.near_exhaustion,
            all,
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
        let inside = tab.inner();
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
        // The near-exhaustion filter sits under the list, beside the count it changes.
        let near_filter: Element<'a, Message> = if tab.has_usage() {
            button(
                row![
                    style::icon(style::Icon::Gauge, 13),
                    text("Near exhaustion").size(style::SMALL)
                ]
                .spacing(5)
                .align_y(Alignment::Center),
            )
            .padding([2, 8])
            .style(style::flat(self.near_exhaustion))
            .on_press(Message::NearExhaustion(!self.near_exhaustion))
            .into()
        } else {
            space().width(0).into()
        };
        let columns = tab.columns();
        let rows = cache.rows.clone();
        let counts = cache.counts.clone();
        let usage = cache.usage.clone();
        let levels = self.levels;
        let fabric_ref: &'a Fabric = fabric;
        let body: Element<'a, Message> = if rows.is_empty() && cache.near {
            container(style::hint(format!(
                "None of the {} is {:.0} % used or more.",
                tab.plural(),
                self.levels.warning * 100.0
            )))
            .padding(12)
            .into()
        } else if rows.is_empty() {
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
                    let values = row_cells(fabric_ref, tab, id, &counts, &usage);
                    let cells = values
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| {
                            let portion = self.widths.portion(tab.label(), columns, i);
                            if columns[i].title == super::USAGE {
                                let u = usage.get(&id).copied().unwrap_or_default();
                                grid::cell_with(chart::usage_meter(u, levels), portion)
                            } else {
                                grid::cell(v, portion)
                            }
                        })
                        .collect();
                    container(grid::grid_row(
                        cells,
                        self.selected == Some(id),
                        Message::Select(id),
                        Some(Message::Open(id)),
                        Some(Message::Menu(id)),
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
            grid::header(
                tab.label(),
                columns,
                &self.widths,
                self.sort,
                Message::Sort,
                Message::Resize
            ),
            body,
            container(
                row![
                    near_filter,
                    style::hint(if cache.near {
                        format!(
                            "{} of {} {} near exhaustion (≥ {:.0} % used)",
                            cache.rows.len(),
                            cache.all,
                            tab.plural(),
                            self.levels.warning * 100.0
                        )
                    } else {
                        format!("{} {}", cache.rows.len(), tab.plural())
                    }),
                ]
                .spacing(10)
                .align_y(Alignment::Center),
            )
            .padding([2, 8]),
        ]
        .into()
    }
}

/// (label, value) lines of the details pane; the first is the object's name.
/// Every id of one kind, its sort key still to fill in.
fn unkeyed<T>(objects: &std::collections::BTreeMap<Id, T>) -> Vec<(String, Id)> {
    objects.keys().map(|id| (String::new(), *id)).collect()
}

fn detail_lines(
    fabric: &Fabric,
    tab: Tab,
    id: Id,
    counts: &HashMap<Id, (usize, usize)>,
    usage: &HashMap<Id, PoolUsage>,
) -> Vec<(&'static str, String)> {
    let mut cells = row_cells(fabric, tab, id, counts, usage);
    if let Some(u) = usage.get(&id)
        && let Some(last) = cells.last_mut()
        && tab.has_usage()
    {
        *last = format!("{} ({})", last.trim(), u.summary());
    }
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

/// The cells of one row with its use, in the tab's column order.
fn row_cells(
    fabric: &Fabric,
    tab: Tab,
    id: Id,
    counts: &HashMap<Id, (usize, usize)>,
    usage: &HashMap<Id, PoolUsage>,
) -> Vec<String> {
    let mut out = cells(fabric, tab, id, counts);
    if tab.has_usage() && !out.is_empty() {
        out.push(usage.get(&id).copied().unwrap_or_default().percent());
    }
    out
}

/// The cells of one row without its use, in the tab's column order.
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
