//! Preview changes: what the next sync of one service would do, per object type and side,
//! deletions first, then per object and field (before → after) with a filter, before anything
//! is sent.

use iced::widget::{column, container, row, scrollable, space, table, text, text_input};
use iced::{Element, Length, Task};

use crate::fabric::model::Id;
use crate::sync::plan::{Counts, ObjectType, PlanSummary, Side};
use crate::sync::review::{ChangeAction, PlanReview, object_lines};
use crate::ui::widget::style::{self, Tone};

#[derive(Debug, Clone)]
pub enum PreviewState {
    Loading,
    Ready(PlanSummary),
    Failed(String),
}

#[derive(Debug, Clone)]
pub struct Preview {
    pub service: Id,
    pub service_name: String,
    pub state: PreviewState,
    /// Per object and field, when the plan was read with the side-by-side rows.
    pub objects: Option<PlanReview>,
    /// The object filter as typed.
    pub filter: String,
}

/// The id of the object filter's text box.
pub const FILTER_INPUT: &str = "preview-filter";

#[derive(Debug, Clone)]
pub enum Message {
    Close,
    Refresh,
    Filter(String),
}

#[derive(Debug, Clone)]
pub enum Event {
    Close,
    Refresh(Id),
}

/// One line of the preview: side, object type and its counts.
pub type PreviewRow = (Side, ObjectType, Counts);

/// The preview's lines, those with deletions first.
pub fn preview_rows(summary: &PlanSummary) -> Vec<PreviewRow> {
    let mut rows: Vec<PreviewRow> = summary
        .counts
        .iter()
        .filter(|(_, c)| !c.is_empty())
        .map(|(&(side, object), &counts)| (side, object, counts))
        .collect();
    // Deletions first: they are the changes an operator most wants to see before a sync.
    // Object types order as their labels do.
    rows.sort_by(|a, b| {
        b.2.delete
            .cmp(&a.2.delete)
            .then(a.0.cmp(&b.0))
            .then(a.1.cmp(&b.1))
    });
    rows
}

fn side_label(side: Side) -> &'static str {
    match side {
        Side::Ipam => "IPAM server",
        Side::Console => "Console",
    }
}

impl Preview {
    /// The per-object list: a filter, then each object's lines, coloured by what happens to it.
    fn object_list(&self, total: usize) -> Element<'_, Message> {
        let shown = self.shown_objects();
        let count = if shown.len() == total {
            format!("{total} objects")
        } else {
            format!("{} of {total} objects", shown.len())
        };
        let lines = column(shown.into_iter().flat_map(|(action, lines)| {
            let tone = match action {
                ChangeAction::Delete => Some(Tone::Error),
                ChangeAction::Conflict | ChangeAction::Orphaned => Some(Tone::Warning),
                _ => None,
            };
            lines.into_iter().enumerate().map(move |(i, line)| {
                text(line)
                    .size(style::SMALL)
                    .font(iced::Font::MONOSPACE)
                    .style(move |theme: &iced::Theme| text::Style {
                        color: tone.filter(|_| i == 0).map(|t| style::tone_color(theme, t)),
                    })
                    .into()
            })
        }))
        .spacing(1);
        column![
            row![
                text_input("Filter objects by type, name or field", &self.filter)
                    .id(FILTER_INPUT)
                    .on_input(Message::Filter)
                    .size(style::TEXT)
                    .padding(4),
                text(count).size(style::SMALL),
            ]
            .spacing(8)
            .align_y(iced::Alignment::Center),
            container(scrollable(container(lines).padding([4, 8])).height(220))
                .style(style::pane)
                .width(Length::Fill),
        ]
        .spacing(6)
        .into()
    }

    pub fn new(service: Id, service_name: String) -> Self {
        Preview {
            service,
            service_name,
            state: PreviewState::Loading,
            objects: None,
            filter: String::new(),
        }
    }

    /// The objects that pass the filter, each as its lines.
    pub fn shown_objects(&self) -> Vec<(ChangeAction, Vec<String>)> {
        let needle = self.filter.trim().to_lowercase();
        self.objects
            .iter()
            .flat_map(|r| &r.objects)
            .filter(|o| o.matches(&needle))
            .map(|o| (o.action, object_lines(o)))
            .collect()
    }

    /// The update contract of every screen and dialog: a task, and an event for the shell.
    pub fn update(&mut self, message: Message) -> (Task<Message>, Option<Event>) {
        let event = match message {
            Message::Close => Event::Close,
            Message::Refresh => Event::Refresh(self.service),
            Message::Filter(f) => {
                self.filter = f;
                return (Task::none(), None);
            }
        };
        (Task::none(), Some(event))
    }

    pub fn view(&self) -> Element<'_, Message> {
        let body: Element<'_, Message> = match &self.state {
            PreviewState::Loading => column![
                text(format!(
                    "Reading {} and the console's fabric...",
                    self.service_name
                ))
                .size(style::TEXT),
                iced::widget::progress_bar(0.0..=1.0, 0.5).girth(6),
            ]
            .spacing(8)
            .into(),
            PreviewState::Failed(e) => style::notice(Tone::Error, e.clone()),
            PreviewState::Ready(summary) if summary.is_empty() && summary.conflicts == 0 => {
                style::notice(
                    Tone::Success,
                    "Nothing to do: the console and the IPAM server are in sync.",
                )
            }
            PreviewState::Ready(summary) => {
                let bold = |s: &'static str| text(s).size(style::SMALL).font(style::bold());
                let rows = preview_rows(summary);
                let grid = table(
                    [
                        table::column(bold("Changes on"), |r: PreviewRow| {
                            text(side_label(r.0)).size(style::TEXT)
                        })
                        .width(Length::FillPortion(2)),
                        table::column(bold("Object type"), |r: PreviewRow| {
                            text(r.1.label()).size(style::TEXT)
                        })
                        .width(Length::FillPortion(3)),
                        table::column(bold("Delete"), |r: PreviewRow| {
                            text(r.2.delete.to_string()).size(style::TEXT).style(
                                move |theme: &iced::Theme| text::Style {
                                    color: (r.2.delete > 0)
                                        .then(|| style::tone_color(theme, Tone::Error)),
                                },
                            )
                        })
                        .width(Length::FillPortion(1)),
                        table::column(bold("Create"), |r: PreviewRow| {
                            text(r.2.create.to_string()).size(style::TEXT)
                        })
                        .width(Length::FillPortion(1)),
                        table::column(bold("Update"), |r: PreviewRow| {
                            text(r.2.update.to_string()).size(style::TEXT)
                        })
                        .width(Length::FillPortion(1)),
                    ],
                    rows,
                )
                .padding_x(8)
                .padding_y(3)
                .width(Length::Fill);
                let mut c = column![container(grid).style(style::pane)].spacing(8);
                // A warning for each kind of trouble there is, worded for one or for several.
                let warnings = [
                    (
                        summary.conflicts,
                        "1 conflict: both sides changed the same field differently. It is shown in the side-by-side view and never guessed.",
                        "conflicts: both sides changed the same fields differently. They are shown in the side-by-side view and never guessed.",
                    ),
                    (
                        summary.orphans,
                        "1 logical network lost its VMM Logical Network name on the IPAM server: delete its sites and the network here to complete the deletion.",
                        "logical networks lost their VMM Logical Network name on the IPAM server: delete their sites and the networks here to complete the deletion.",
                    ),
                ];
                for (count, one, several) in warnings {
                    if count > 0 {
                        let message = match count {
                            1 => one.to_string(),
                            n => format!("{n} {several}"),
                        };
                        c = c.push(style::notice(Tone::Warning, message));
                    }
                }
                if let Some(review) = &self.objects {
                    c = c.push(self.object_list(review.objects.len()));
                }
                c.into()
            }
        };
        style::dialog_window(
            column![
                style::heading(format!("Preview changes: {}", self.service_name)),
                style::hint(
                    "What the next Refresh would send and receive. Nothing has been changed yet."
                ),
                body,
                row![
                    space().width(Length::Fill),
                    style::command(
                        "Refresh now",
                        matches!(self.state, PreviewState::Ready(_)).then_some(Message::Refresh)
                    ),
                    style::default_command("Close", Some(Message::Close)),
                ]
                .spacing(8),
            ]
            .spacing(10),
            640,
        )
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletions_come_first() {
        let mut summary = PlanSummary::default();
        let counts = |create, update, delete| Counts {
            create,
            update,
            delete,
        };
        summary
            .counts
            .insert((Side::Ipam, ObjectType::Range), counts(3, 0, 0));
        summary
            .counts
            .insert((Side::Console, ObjectType::LogicalNetwork), counts(0, 1, 2));
        summary
            .counts
            .insert((Side::Ipam, ObjectType::Subnet), counts(0, 0, 0));
        let rows = preview_rows(&summary);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].1, ObjectType::LogicalNetwork);
        assert_eq!(rows[0].2, counts(0, 1, 2));
    }
}
