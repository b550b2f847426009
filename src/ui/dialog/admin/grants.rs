//! Address grants in the administration: how full each pool, site and logical network is, and in
//! a pool's details its granted addresses with a form to grant one and a Revoke on each.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use iced::widget::{button, column, container, row, text, text_input};
use iced::{Alignment, Element, Length, Task};

use crate::fabric::model::{Fabric, Id, IpPool, PoolScope};
use crate::fabric::store::{Consumer, FabricStore, Grant, GrantCounts, GrantRequest, IpamHeld};
use crate::ui::widget::chart::{self, PoolUsage, UsageLevels, UsageTone};
use crate::ui::widget::style::{self, Tone};

/// The holder field of the grant form.
pub const HOLDER_INPUT: &str = "grant-holder";
/// The address field of the grant form.
pub const ADDRESS_INPUT: &str = "grant-address";

/// The selected pool's grants and the grant form.
#[derive(Debug, Clone, Default)]
pub struct GrantPane {
    /// The pool the list belongs to.
    pub pool: Option<Id>,
    pub list: Arc<Vec<Grant>>,
    /// Addresses of the pool in use on the IPAM side, as the last syncs read them.
    pub held: Arc<Vec<IpamHeld>>,
    pub holder: String,
    pub consumer: Option<Consumer>,
    pub address: String,
    pub error: Option<String>,
    pub done: Option<String>,
    pub busy: bool,
    /// The grants revision the counts were last read at: another process's grants (the
    /// command line, a sync reading what the IPAM server holds) change it.
    pub revision: Option<u64>,
}

/// A pool's grants and the addresses IPAM servers hold in it.
pub type PoolLists = (Arc<Vec<Grant>>, Arc<Vec<IpamHeld>>);

#[derive(Debug, Clone)]
pub enum GrantMessage {
    /// Read the grant counts (and the selected pool's grants) again.
    Refresh,
    /// Look whether grants changed since the counts were read (cheap; on a timer).
    Poll,
    Revision(u64),
    Counts(Result<Arc<GrantCounts>, String>),
    Loaded(Id, Result<PoolLists, String>),
    Holder(String),
    As(Consumer),
    Address(String),
    Grant,
    Granted(Result<Grant, String>),
    Revoke(IpAddr),
    Revoked(Result<Grant, String>),
}

/// The use of each row of a tab: pools, sites (their pools) and logical networks (the pools of
/// their sites and VM networks). Other tabs have none.
pub fn usage_map(fabric: &Fabric, tab: super::Tab, counts: &GrantCounts) -> HashMap<Id, PoolUsage> {
    use super::Tab;
    let of = |p: &IpPool| PoolUsage::of(p, counts.get(&p.id).copied().unwrap_or_default());
    let mut out: HashMap<Id, PoolUsage> = HashMap::new();
    match tab {
        Tab::IpPools => {
            for p in fabric.ip_pools.values() {
                out.insert(p.id, of(p));
            }
        }
        Tab::NetworkSites => {
            for p in fabric.ip_pools.values() {
                if let PoolScope::Site { site, .. } = p.scope {
                    let e = out.entry(site).or_default();
                    *e = e.plus(of(p));
                }
            }
        }
        Tab::LogicalNetworks => {
            for p in fabric.ip_pools.values() {
                if let Some(ln) = fabric.logical_network_of_pool(p) {
                    let e = out.entry(ln).or_default();
                    *e = e.plus(of(p));
                }
            }
        }
        Tab::HostGroups | Tab::VmNetworks => {}
    }
    out
}

/// Reads the counts, and the grants of `pool` when one is selected.
pub fn refresh(store: &FabricStore, pool: Option<Id>) -> Task<GrantMessage> {
    let store_c = store.clone();
    let counts = Task::perform(
        async move { store_c.grant_counts_async().await.map(Arc::new) },
        |r| GrantMessage::Counts(r.map_err(|e| e.to_string())),
    );
    Task::batch([counts, load_pool(store, pool)])
}

/// Reads the grants of `pool` when one is selected.
fn load_pool(store: &FabricStore, pool: Option<Id>) -> Task<GrantMessage> {
    let Some(pool) = pool else {
        return Task::none();
    };
    let store = store.clone();
    Task::perform(
        async move {
            let grants = store.grants_async(Some(pool)).await?;
            let held = store.ipam_held_async(Some(pool)).await?;
            Ok::<_, crate::fabric::store::StoreError>((Arc::new(grants), Arc::new(held)))
        },
        move |r| GrantMessage::Loaded(pool, r.map_err(|e| e.to_string())),
    )
}

impl GrantPane {
    /// A request from the form, or the field to correct.
    fn request(&self, pool: Id) -> Result<GrantRequest, String> {
        let address = match self.address.trim() {
            "" => None,
            a => Some(a.parse::<IpAddr>().map_err(|_| {
                format!("Address: \"{a}\" is not an IP address. Type one, or leave it empty for the next free address.")
            })?),
        };
        Ok(GrantRequest {
            pool,
            address,
            holder: self.holder.clone(),
            consumer: self.consumer.unwrap_or(Consumer::VmAdapter),
        })
    }

    /// Handles a message; the counts come back to the caller. A notice is returned when a
    /// grant left its pool near exhaustion.
    pub fn update(
        &mut self,
        message: GrantMessage,
        store: &FabricStore,
        fabric: &Fabric,
        counts: &mut Arc<GrantCounts>,
        levels: UsageLevels,
    ) -> (Task<GrantMessage>, Option<(Tone, String)>) {
        match message {
            GrantMessage::Refresh => return (refresh(store, self.pool), None),
            GrantMessage::Poll => {
                let store = store.clone();
                return (
                    Task::perform(async move { store.grants_revision_async().await }, |r| {
                        // An unreadable revision reads as "changed": the counts are read again.
                        GrantMessage::Revision(r.unwrap_or(u64::MAX))
                    }),
                    None,
                );
            }
            GrantMessage::Revision(r) => {
                if self.revision != Some(r) {
                    self.revision = Some(r);
                    return (refresh(store, self.pool), None);
                }
            }
            GrantMessage::Counts(Ok(c)) => *counts = c,
            GrantMessage::Counts(Err(e)) | GrantMessage::Loaded(_, Err(e)) => {
                self.error = Some(e);
            }
            GrantMessage::Loaded(pool, Ok((list, held))) => {
                if self.pool == Some(pool) {
                    self.list = list;
                    self.held = held;
                }
            }
            GrantMessage::Holder(h) => {
                self.holder = h;
                self.error = None;
            }
            GrantMessage::As(c) => self.consumer = Some(c),
            GrantMessage::Address(a) => {
                self.address = a;
                self.error = None;
            }
            GrantMessage::Grant => {
                let Some(pool) = self.pool else {
                    return (Task::none(), None);
                };
                if self.busy {
                    return (Task::none(), None);
                }
                match self.request(pool) {
                    Ok(request) => {
                        self.busy = true;
                        self.error = None;
                        self.done = None;
                        let store = store.clone();
                        return (
                            Task::perform(async move { store.grant_async(request).await }, |r| {
                                GrantMessage::Granted(r.map_err(|e| e.to_string()))
                            }),
                            None,
                        );
                    }
                    Err(e) => self.error = Some(e),
                }
            }
            GrantMessage::Granted(result) => {
                self.busy = false;
                match result {
                    Ok(g) => {
                        self.done = Some(format!("Granted {} to {}.", g.address, g.holder));
                        self.holder.clear();
                        self.address.clear();
                        let mut counts_now = (**counts).clone();
                        let entry = counts_now.entry(g.pool).or_default();
                        if g.consumer == Consumer::Vip {
                            entry.vips += 1;
                        } else {
                            entry.plain += 1;
                        }
                        let notice = fabric.ip_pools.get(&g.pool).and_then(|p| {
                            let usage = PoolUsage::of(p, *entry);
                            match usage.tone(levels) {
                                Tone::Error | Tone::Warning => Some((
                                    usage.tone(levels),
                                    format!(
                                        "The pool {} is {} used ({} addresses free). Widen its range or add a pool before it runs out.",
                                        p.name,
                                        usage.percent().trim(),
                                        usage.free()
                                    ),
                                )),
                                _ => None,
                            }
                        });
                        *counts = Arc::new(counts_now);
                        return (refresh(store, self.pool), notice);
                    }
                    Err(e) => self.error = Some(e),
                }
            }
            GrantMessage::Revoke(address) => {
                let Some(pool) = self.pool else {
                    return (Task::none(), None);
                };
                self.done = None;
                let store = store.clone();
                return (
                    Task::perform(
                        async move { store.revoke_async(pool, address).await },
                        |r| GrantMessage::Revoked(r.map_err(|e| e.to_string())),
                    ),
                    None,
                );
            }
            GrantMessage::Revoked(result) => match result {
                Ok(g) => {
                    self.done = Some(format!("Revoked {} from {}.", g.address, g.holder));
                    return (refresh(store, self.pool), None);
                }
                Err(e) => self.error = Some(e),
            },
        }
        (Task::none(), None)
    }

    /// Follows the selection: a new pool clears the form and reads its grants.
    pub fn select(&mut self, pool: Option<Id>, store: &FabricStore) -> Task<GrantMessage> {
        if self.pool == pool {
            return Task::none();
        }
        *self = GrantPane {
            pool,
            ..GrantPane::default()
        };
        // Only the pool's list: the counts do not change with the selection.
        load_pool(store, pool)
    }

    /// The pool's details: the range's use, the grant form and the granted addresses.
    pub fn view<'a>(
        &'a self,
        pool: &'a IpPool,
        counts: &GrantCounts,
        fabric: &Fabric,
    ) -> Element<'a, GrantMessage> {
        let granted: Vec<IpAddr> = self.list.iter().map(|g| g.address).collect();
        let held: Vec<IpAddr> = self.held.iter().map(|h| h.address).collect();
        let pool_counts = counts.get(&pool.id).copied().unwrap_or_default();
        let consumer = self.consumer.unwrap_or(Consumer::VmAdapter);
        let kinds = row(Consumer::ALL.iter().map(|c| {
            button(text(c.label()).size(style::SMALL))
                .padding([3, 8])
                .style(style::flat(*c == consumer))
                .on_press(GrantMessage::As(*c))
                .into()
        }))
        .spacing(2);
        let form = column![
            row![
                text_input("Holder: VM and adapter, host, or VIP service", &self.holder)
                    .id(HOLDER_INPUT)
                    .on_input(GrantMessage::Holder)
                    .on_submit(GrantMessage::Grant)
                    .size(style::TEXT)
                    .width(Length::FillPortion(3)),
                text_input("Next free address", &self.address)
                    .id(ADDRESS_INPUT)
                    .on_input(GrantMessage::Address)
                    .on_submit(GrantMessage::Grant)
                    .size(style::TEXT)
                    .width(Length::FillPortion(2)),
                style::command(
                    if self.busy { "Granting..." } else { "Grant" },
                    (!self.busy).then_some(GrantMessage::Grant)
                ),
            ]
            .spacing(6)
            .align_y(Alignment::Center),
            kinds,
        ]
        .spacing(4);
        let mut out = column![
            style::field_with(
                "Use of the range",
                chart::usage_bar(pool, &granted, &held, pool_counts)
            ),
            style::field_with("Grant an address", form),
        ]
        .spacing(6);
        if let Some(e) = &self.error {
            out = out.push(style::notice(Tone::Error, e.clone()));
        } else if let Some(d) = &self.done {
            out = out.push(style::notice(Tone::Success, d.clone()));
        }
        let title = format!("Granted addresses ({})", self.list.len());
        let list: Element<'a, GrantMessage> = if self.list.is_empty() {
            style::hint("None yet.")
        } else {
            column(self.list.iter().map(|g| {
                row![
                    text(g.address.to_string())
                        .size(style::TEXT)
                        .width(Length::FillPortion(2)),
                    text(g.holder.clone())
                        .size(style::TEXT)
                        .width(Length::FillPortion(3)),
                    text(g.consumer.label())
                        .size(style::SMALL)
                        .width(Length::FillPortion(2)),
                    text(style::format_time(Some(g.granted_at)))
                        .size(style::SMALL)
                        .width(Length::FillPortion(2)),
                    button(text("Revoke").size(style::SMALL))
                        .padding([2, 8])
                        .style(style::flat(false))
                        .on_press(GrantMessage::Revoke(g.address)),
                ]
                .spacing(8)
                .align_y(Alignment::Center)
                .into()
            }))
            .spacing(2)
            .into()
        };
        // The IPAM side's few first: the granted list can be long.
        if !self.held.is_empty() {
            let server = |id: &Id| {
                fabric
                    .network_services
                    .get(id)
                    .map(|s| s.name.clone())
                    .unwrap_or_else(|| "a removed network service".to_string())
            };
            let rows = column(self.held.iter().map(|h| {
                let granted_too = self.list.iter().any(|g| g.address == h.address);
                row![
                    text(h.address.to_string())
                        .size(style::TEXT)
                        .width(Length::FillPortion(2)),
                    text(h.holder.clone())
                        .size(style::TEXT)
                        .width(Length::FillPortion(3)),
                    text(server(&h.service))
                        .size(style::SMALL)
                        .width(Length::FillPortion(2)),
                    text(if granted_too {
                        "Also granted by the console: revoke one"
                    } else {
                        "Never granted by the console"
                    })
                    .size(style::SMALL)
                    .style(move |t: &iced::Theme| text::Style {
                        color: granted_too.then(|| style::tone_color(t, Tone::Error)),
                    })
                    .width(Length::FillPortion(3)),
                ]
                .spacing(8)
                .align_y(Alignment::Center)
                .into()
            }))
            .spacing(2);
            out = out.push(style::field_with(
                format!("In use on the IPAM side ({})", self.held.len()),
                container(rows).width(Length::Fill),
            ));
        }
        out = out.push(style::field_with(
            title,
            container(list).width(Length::Fill),
        ));
        out.into()
    }
}
