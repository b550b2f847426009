//! The side-by-side view's layout: toolbar, the rows in sight, the selected row's details,
//! its conflicts and the confirmation drawn over it.

use iced::widget::{
    button, column, container, mouse_area, row, scrollable, space, text, text_input,
};
use iced::{Alignment, Background, Border, Element, Length, Theme};

use crate::sync::compare::{Cell, CompareRow, RowKind, RowStatus};
use crate::sync::plan::{Conflict, Resolution};
use crate::ui::widget::style::{self, Tone};

use super::{
    BADGE_WIDTH, CONFIRM_ID, CompareScreen, LIST_ID, LoadState, Message, ORPHAN_RULE, ROW_HEIGHT,
    SEARCH_INPUT,
};

/// The tone of a status: the badge's colour.
pub fn status_tone(status: RowStatus) -> Option<Tone> {
    match status {
        RowStatus::InSync => Some(Tone::Success),
        RowStatus::OnlyInConsole | RowStatus::OnlyInIpam => Some(Tone::Info),
        RowStatus::Differs => Some(Tone::Warning),
        RowStatus::Conflict | RowStatus::Orphaned => Some(Tone::Error),
        RowStatus::OutOfScope => None,
    }
}

/// A coloured badge with the status in words, so colour is never the only cue.
pub fn badge<'a, M: 'a>(status: RowStatus) -> Element<'a, M> {
    let tone = status_tone(status);
    container(
        text(status.label())
            .size(style::SMALL)
            .font(style::bold())
            .style(move |theme: &Theme| text::Style {
                color: Some(match tone {
                    Some(t) => style::mix(style::tone_color(theme, t), theme.palette().text, 0.25),
                    None => style::muted_text(theme),
                }),
            }),
    )
    .padding([1, 8])
    .style(move |theme: &Theme| {
        let base = style::pane_background(theme);
        let c = tone
            .map(|t| style::tone_color(theme, t))
            .unwrap_or(style::muted_text(theme));
        container::Style {
            background: Some(Background::Color(style::mix(base, c, 0.16))),
            border: Border::default()
                .width(1)
                .color(style::mix(base, c, 0.55))
                .rounded(9),
            ..container::Style::default()
        }
    })
    .into()
}

/// A small highlighted field name: amber for a difference, red for a conflict.
fn chip<'a, M: 'a>(label: String, tone: Tone) -> Element<'a, M> {
    container(text(label).size(11).wrapping(text::Wrapping::None))
        .padding([0, 5])
        .style(move |theme: &Theme| {
            let c = style::tone_color(theme, tone);
            container::Style {
                background: Some(Background::Color(style::pane_mix(theme, c, 0.28))),
                border: Border::default().rounded(3),
                ..container::Style::default()
            }
        })
        .into()
}

/// The short kind names each side uses in a row; the full mapping heads the view.
fn side_label(kind: RowKind, ipam: bool) -> &'static str {
    match (kind, ipam) {
        (RowKind::LogicalNetwork, false) => "Logical network",
        (RowKind::LogicalNetwork, true) => "VMM Logical Network",
        (RowKind::NetworkSite, false) => "Network site",
        (RowKind::NetworkSite, true) => "Network Site",
        (RowKind::Subnet, false) => "IP address subnet",
        (RowKind::Subnet, true) => "IP Address Subnet",
        (RowKind::Pool | RowKind::VmPool, false) => "IP address pool",
        (RowKind::Pool | RowKind::VmPool, true) => "IP Address Range",
        (RowKind::VmNetwork, false) => "VM network",
        (RowKind::VmNetwork, true) => "VM Network",
    }
}

impl CompareScreen {
    pub fn view(&self) -> Element<'_, Message> {
        let total = self.rows().len();
        let loading = self.state == LoadState::Loading;
        let toolbar = row![
            button(text("◂ Network Service").size(style::TEXT))
                .padding([4, 8])
                .style(style::flat(false))
                .on_press(Message::Close),
            column![
                text(format!("Side-by-side: console ↔ {}", self.service_name))
                    .size(style::HEADING)
                    .font(style::bold()),
                style::hint(match &self.state {
                    LoadState::Loading if self.data.is_some() =>
                        "Reading both sides again...".to_string(),
                    LoadState::Loading =>
                        "Reading the console's fabric and the IPAM server...".to_string(),
                    LoadState::Failed(_) => "The comparison could not be made.".to_string(),
                    LoadState::Ready => format!(
                        "{total} rows · what each side holds now; nothing changes until a sync"
                    ),
                }),
            ]
            .spacing(1)
            .width(Length::Fill),
            style::command("Reload", (!loading).then_some(Message::Reload)),
            style::command("Preview changes", Some(Message::Preview)),
            style::default_command("Refresh now", Some(Message::SyncNow)),
        ]
        .spacing(8)
        .align_y(Alignment::Center);

        let counts = self
            .data
            .as_ref()
            .map(|d| d.view.counts.clone())
            .unwrap_or_default();
        let mut chips = row![
            button(text(format!("All ({total})")).size(style::SMALL))
                .padding([3, 8])
                .style(style::flat(self.filters.is_empty()))
                .on_press(Message::ShowAll)
        ]
        .spacing(4)
        .align_y(Alignment::Center);
        for status in RowStatus::ALL {
            let n = counts.get(&status).copied().unwrap_or(0);
            let on = self.filters.contains(&status);
            let dot: Element<'_, Message> = match status_tone(status) {
                Some(t) => style::status_dot(t),
                None => style::hollow_dot(),
            };
            chips = chips.push(
                button(
                    row![
                        dot,
                        text(format!("{} ({n})", status.label())).size(style::SMALL)
                    ]
                    .spacing(5)
                    .align_y(Alignment::Center),
                )
                .padding([3, 8])
                .style(style::flat(on))
                .on_press(Message::ToggleFilter(status)),
            );
        }
        let search = text_input("Search names, subnets, addresses (Ctrl+F)", &self.search)
            .id(SEARCH_INPUT)
            .on_input(Message::Search)
            .padding(5)
            .size(style::TEXT)
            .width(300)
            .style(style::text_input_style);
        let filter_bar = row![search, chips.wrap()]
            .spacing(10)
            .align_y(Alignment::Center);

        let mut main = column![toolbar, filter_bar].spacing(8);
        if let Some((tone, n)) = &self.notice {
            main = main.push(style::notice(*tone, n.clone()));
        }
        if let LoadState::Failed(e) = &self.state {
            main = main.push(style::notice(Tone::Error, e.clone()));
        }
        main = main.push(
            container(self.table())
                .height(Length::FillPortion(3))
                .style(style::pane),
        );
        main = main.push(
            container(self.details())
                .height(Length::FillPortion(2))
                .width(Length::Fill)
                .style(style::pane),
        );
        main.padding(6).into()
    }

    /// The seed's mapping across the top, the aligned rows below.
    fn table(&self) -> Element<'_, Message> {
        let heading = |t: String| text(t).size(style::SMALL).font(style::bold());
        let header = container(
            row![
                heading("Console (VMM)".into()).width(Length::FillPortion(1)),
                container(heading("Status".into()))
                    .width(BADGE_WIDTH)
                    .center_x(BADGE_WIDTH),
                heading(format!("IPAM server · {}", self.service_name))
                    .width(Length::FillPortion(1)),
            ]
            .spacing(8)
            .padding([4, 8]),
        )
        .width(Length::Fill)
        .style(style::grid_header);
        let mapping = row([
            RowKind::LogicalNetwork,
            RowKind::NetworkSite,
            RowKind::Subnet,
            RowKind::Pool,
            RowKind::VmNetwork,
        ]
        .map(|k| {
            let (c, i) = k.mapping();
            column![
                text(c).size(11).font(style::bold()),
                text(format!("↔ {i}"))
                    .size(11)
                    .style(|theme: &Theme| text::Style {
                        color: Some(style::muted_text(theme))
                    }),
            ]
            .width(Length::FillPortion(match k {
                RowKind::LogicalNetwork => 5,
                RowKind::VmNetwork => 4,
                _ => 2,
            }))
            .into()
        }))
        .spacing(10)
        .padding([3, 8]);
        let body: Element<'_, Message> = if self.data.is_none() {
            container(style::hint(if matches!(self.state, LoadState::Failed(_)) {
                "Nothing to show. Check the service's connection and Reload."
            } else {
                "Reading both sides..."
            }))
            .padding(12)
            .into()
        } else if self.visible.is_empty() {
            container(style::hint(
                "No row matches the filters. Choose All or clear the search.",
            ))
            .padding(12)
            .into()
        } else {
            self.list.view(
                LIST_ID,
                self.visible.len(),
                |i| self.row(self.visible[i]),
                Message::Scrolled,
            )
        };
        column![
            container(mapping)
                .width(Length::Fill)
                .style(style::group_row),
            header,
            body
        ]
        .into()
    }

    fn row(&self, index: usize) -> Element<'_, Message> {
        let Some(r) = self.rows().get(index) else {
            return space().height(ROW_HEIGHT).into();
        };
        let conflict_fields: Vec<String> = r.conflicts.iter().map(|c| c.field.clone()).collect();
        let side = |cell: Option<&Cell>, ipam: bool| -> Element<'_, Message> {
            let indent = f32::from(r.kind.depth()) * 14.0;
            let mut line = row![
                space().width(indent),
                text(side_label(r.kind, ipam))
                    .size(11)
                    .width(if ipam { 118 } else { 100 })
                    .wrapping(text::Wrapping::None)
                    .style(|theme: &Theme| text::Style {
                        color: Some(style::muted_text(theme))
                    }),
            ]
            .spacing(6)
            .align_y(Alignment::Center);
            match cell {
                Some(c) => {
                    let title = text(c.title.clone())
                        .size(style::TEXT)
                        .wrapping(text::Wrapping::None);
                    line = line.push(if r.kind.depth() == 0 {
                        title.font(style::bold())
                    } else {
                        title
                    });
                    // Changed fields before the detail, so a narrow row still shows them.
                    for f in r.changed.iter().take(3) {
                        let tone = if conflict_fields.contains(f) {
                            Tone::Error
                        } else {
                            Tone::Warning
                        };
                        line = line.push(chip(f.clone(), tone));
                    }
                    if r.changed.len() > 3 {
                        line = line.push(text(format!("+{}", r.changed.len() - 3)).size(11));
                    }
                    if !c.detail.is_empty() {
                        line = line.push(
                            text(c.detail.clone())
                                .size(style::SMALL)
                                .wrapping(text::Wrapping::None)
                                .style(|theme: &Theme| text::Style {
                                    color: Some(style::muted_text(theme)),
                                }),
                        );
                    }
                }
                None => {
                    line = line.push(
                        text(if ipam {
                            "— not on the IPAM server"
                        } else {
                            "— not in the console"
                        })
                        .size(style::SMALL)
                        .style(|theme: &Theme| text::Style {
                            color: Some(style::muted_text(theme)),
                        }),
                    )
                }
            }
            container(line)
                .width(Length::FillPortion(1))
                .clip(true)
                .into()
        };
        let selected = self.selected == Some(index);
        let decided = self.row_decided(r);
        let status: Element<'_, Message> = if decided {
            column![badge(r.status), text("decided").size(10)]
                .align_x(Alignment::Center)
                .into()
        } else {
            badge(r.status)
        };
        let content = row![
            side(r.console.as_ref(), false),
            container(status).width(BADGE_WIDTH).center_x(BADGE_WIDTH),
            side(r.ipam.as_ref(), true),
        ]
        .spacing(8)
        .padding([0, 8])
        .align_y(Alignment::Center);
        mouse_area(
            container(content)
                .height(ROW_HEIGHT)
                .width(Length::Fill)
                .align_y(Alignment::Center)
                .style(move |theme: &Theme| container::Style {
                    background: selected.then(|| Background::Color(style::selection(theme))),
                    border: Border::default().width(0),
                    ..container::Style::default()
                }),
        )
        .on_press(Message::Select(index))
        .into()
    }

    /// The selected row field by field: conflicts with their choices, the seed's rule for an
    /// orphan, and every field of both sides with differences highlighted.
    fn details(&self) -> Element<'_, Message> {
        let Some(r) = self.selected_row() else {
            return container(style::hint(
                "Select a row to see its fields side by side. Conflicts are decided here; the next sync applies the decision.",
            ))
            .padding(12)
            .into();
        };
        let (cname, iname) = r.kind.mapping();
        let title = super::title(r);
        let mut c = column![
            row![
                text(title).size(style::HEADING).font(style::bold()),
                badge(r.status),
                space().width(Length::Fill),
                style::hint(format!("{cname} ↔ {iname}")),
            ]
            .spacing(10)
            .align_y(Alignment::Center)
        ]
        .spacing(8);

        if r.status == RowStatus::Orphaned {
            c = c.push(style::notice(Tone::Error, ORPHAN_RULE));
            c = c.push(row![style::command(
                "Delete network sites and logical network...",
                Some(Message::DeleteOrphan)
            ),]);
        }
        if r.status == RowStatus::OutOfScope {
            c = c.push(style::hint(
                "Outside the host groups this network service integrates: the sync neither reads nor writes it.",
            ));
        }
        if !r.conflicts.is_empty() {
            c = c.push(self.conflicts(r));
        }
        let waiting = self.decisions_for(r);
        if !waiting.is_empty() {
            let list: Vec<String> = waiting
                .iter()
                .map(|(field, choice)| match choice {
                    Resolution::KeepConsole => format!("{field}: keeping the console value"),
                    Resolution::TakeIpam => format!("{field}: taking the IPAM value"),
                })
                .collect();
            c = c.push(style::notice(
                Tone::Info,
                format!("Decided; the next sync applies it. {}.", list.join("; ")),
            ));
        }
        c = c.push(fields_table(r));
        scrollable(container(c).padding([8, 12]).width(Length::Fill))
            .height(Length::Fill)
            .into()
    }

    fn conflicts<'a>(&'a self, r: &'a CompareRow) -> Element<'a, Message> {
        let mut t = column![
            row![
                head("Field", 2),
                head("Base (last agreed)", 3),
                head("Console", 3),
                head("IPAM server", 3),
                space().width(300),
            ]
            .spacing(8)
        ]
        .spacing(4);
        for conflict in &r.conflicts {
            t = t.push(self.conflict_line(conflict));
        }
        let box_ = column![
            text(format!(
                "Both sides changed {} since the last sync. Choose which value wins; nothing is guessed.",
                if r.conflicts.len() == 1 { "this field".to_string() } else { format!("{} fields", r.conflicts.len()) }
            ))
            .size(style::TEXT),
            t,
            row![
                text("Whole object:").size(style::TEXT),
                style::command("Keep console values", Some(Message::ResolveRow(Resolution::KeepConsole))),
                style::command("Take IPAM values", Some(Message::ResolveRow(Resolution::TakeIpam))),
            ]
            .spacing(8)
            .align_y(Alignment::Center),
        ]
        .spacing(8);
        container(box_)
            .padding(8)
            .width(Length::Fill)
            .style(style::notice_box(Tone::Warning))
            .into()
    }

    fn conflict_line<'a>(&'a self, conflict: &'a Conflict) -> Element<'a, Message> {
        let cell = |v: &str, p: u16| {
            text(v.to_string())
                .size(style::TEXT)
                .width(Length::FillPortion(p))
        };
        let decided = self.decided.get(&conflict.key.to_string()).copied();
        let actions: Element<'a, Message> = match decided {
            Some(r) => row![
                text(match r {
                    Resolution::KeepConsole => "Keeping the console value",
                    Resolution::TakeIpam => "Taking the IPAM value",
                })
                .size(style::SMALL)
                .font(style::bold()),
                text("· applied by the next sync").size(style::SMALL),
            ]
            .spacing(4)
            .width(300)
            .into(),
            None => row![
                style::command(
                    "Keep console value",
                    Some(Message::Resolve(
                        conflict.key.to_string(),
                        Resolution::KeepConsole
                    ))
                ),
                style::command(
                    "Take IPAM value",
                    Some(Message::Resolve(
                        conflict.key.to_string(),
                        Resolution::TakeIpam
                    ))
                ),
            ]
            .spacing(4)
            .width(300)
            .into(),
        };
        row![
            cell(&conflict.field, 2),
            cell(&conflict.base, 3),
            cell(&conflict.console, 3),
            cell(&conflict.ipam, 3),
            actions,
        ]
        .spacing(8)
        .align_y(Alignment::Center)
        .into()
    }

    /// The confirmation of the orphan deletion, drawn by the console as a modal.
    pub fn modal(&self) -> Option<Element<'_, Message>> {
        let c = self.confirm.as_ref()?;
        let mut body = column![
            style::heading("Delete network sites and logical network"),
            text("The seed's rule for an orphaned logical network: delete its network sites and the logical network in the console; the next sync completes the deletion.").size(style::TEXT),
            c.deletion.view(),
        ]
        .spacing(12);
        if let Some(e) = &c.error {
            body = body.push(style::notice(Tone::Error, e.clone()));
        }
        body = body.push(
            row![
                space().width(Length::Fill),
                style::default_command(
                    "Delete",
                    (c.deletion.allowed() && !c.deleting).then_some(Message::ConfirmDelete(true))
                ),
                style::command("Cancel", Some(Message::ConfirmDelete(false))),
            ]
            .spacing(8),
        );
        Some(style::dialog_window(body, 600).id(CONFIRM_ID).into())
    }
}

/// Every field of both sides; fields that differ are highlighted.
fn fields_table(r: &CompareRow) -> Element<'_, Message> {
    let empty = Vec::new();
    let cf = r.console.as_ref().map(|c| &c.fields).unwrap_or(&empty);
    let ipf = r.ipam.as_ref().map(|c| &c.fields).unwrap_or(&empty);
    let labels: Vec<&String> = if cf.len() >= ipf.len() {
        cf.iter().map(|f| &f.0).collect()
    } else {
        ipf.iter().map(|f| &f.0).collect()
    };
    let value = |fields: &Vec<(String, String)>, label: &str| {
        fields.iter().find(|f| f.0 == label).map(|f| f.1.clone())
    };
    let mut t = column![
        row![head("Field", 2), head("Console", 4), head("IPAM server", 4)]
            .spacing(8)
            .padding([0, 6])
    ]
    .spacing(1);
    for label in labels {
        let changed = r.changed.contains(label);
        let show = |v: Option<String>, present: bool| {
            v.unwrap_or_else(|| if present { "—".into() } else { String::new() })
        };
        let line = row![
            text(label.clone())
                .size(style::TEXT)
                .width(Length::FillPortion(2)),
            text(show(value(cf, label), r.console.is_some()))
                .size(style::TEXT)
                .width(Length::FillPortion(4)),
            text(show(value(ipf, label), r.ipam.is_some()))
                .size(style::TEXT)
                .width(Length::FillPortion(4)),
        ]
        .spacing(8)
        .padding([2, 6]);
        t = t.push(
            container(line)
                .width(Length::Fill)
                .style(move |theme: &Theme| container::Style {
                    background: changed.then(|| {
                        Background::Color(style::pane_mix(
                            theme,
                            style::tone_color(theme, Tone::Warning),
                            0.22,
                        ))
                    }),
                    ..container::Style::default()
                }),
        );
    }
    if r.console.is_none() || r.ipam.is_none() {
        t = t.push(style::hint(if r.console.is_none() {
            "Only on the IPAM server: the next sync brings it into the console, or deletes it there if the console deleted it."
        } else {
            "Only in the console: the next sync creates it on the IPAM server, or deletes it here if the IPAM server deleted it."
        }));
    }
    t.into()
}

/// A column heading of the field tables, `portion` of the row wide.
fn head<'a>(title: &'static str, portion: u16) -> iced::widget::Text<'a> {
    text(title)
        .size(style::SMALL)
        .font(style::bold())
        .width(Length::FillPortion(portion))
}
