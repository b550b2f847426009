//! The Jobs workspace: every sync run with its start, end, result, counts and errors; a failed
//! job's detail names the server and says what to do.

use iced::widget::{column, container, row, scrollable, text};
use iced::{Alignment, Element, Length, Task, Theme};
use uuid::Uuid;

use crate::fabric::model::Fabric;
use crate::sync::status::{JobRecord, JobResult};
use crate::ui::widget::grid::{self, GridColumn, Sort, col};
use crate::ui::widget::style::{self, Tone};

#[derive(Debug, Clone)]
pub struct JobsWorkspace {
    pub selected: Option<Uuid>,
    sort: Sort,
}

impl Default for JobsWorkspace {
    fn default() -> Self {
        JobsWorkspace {
            selected: None,
            // Newest first, as the engine keeps them.
            sort: Sort {
                column: START_COLUMN,
                ascending: true,
            },
        }
    }
}

const START_COLUMN: usize = 3;

#[derive(Debug, Clone)]
pub enum Message {
    Select(Uuid),
    Sort(usize),
}

/// The Jobs workspace asks nothing of the shell; the type keeps every screen's `update` alike.
#[derive(Debug, Clone)]
pub enum Event {}

const COLUMNS: [GridColumn; 7] = [
    col("Name", 3),
    col("Trigger", 3),
    col("Status", 4),
    col("Start Time", 4),
    col("End Time", 4),
    col("Changes", 7),
    col("Errors", 2),
];

fn result_tone(r: JobResult) -> Tone {
    match r {
        JobResult::Running => Tone::Info,
        JobResult::Succeeded => Tone::Success,
        JobResult::CompletedWithWarnings | JobResult::Canceled => Tone::Warning,
        JobResult::Failed => Tone::Error,
    }
}

fn changes(job: &JobRecord) -> String {
    job.counts.changes("  ·  ")
}

impl JobsWorkspace {
    pub fn update(&mut self, message: Message) -> (Task<Message>, Option<Event>) {
        match message {
            Message::Select(id) => self.selected = Some(id),
            Message::Sort(c) => {
                // Newest first is the natural order: the first click on Start keeps it.
                self.sort.click(c)
            }
        }
        (Task::none(), None)
    }

    pub fn view<'a>(&'a self, jobs: &'a [JobRecord], fabric: &'a Fabric) -> Element<'a, Message> {
        let mut sorted: Vec<&JobRecord> = jobs.iter().collect();
        let sort = self.sort;
        sorted.sort_by(|a, b| {
            let ord = match sort.column {
                0 => grid::text_order(&a.service_name, &b.service_name),
                1 => a.trigger.label().cmp(b.trigger.label()),
                2 => a.result.label().cmp(b.result.label()),
                4 => a.finished.cmp(&b.finished),
                6 => a.errors.len().cmp(&b.errors.len()),
                _ => b.started.cmp(&a.started),
            };
            sort.apply(ord).then_with(|| b.started.cmp(&a.started))
        });
        let rows = column(sorted.into_iter().map(|job| {
            let tone = result_tone(job.result);
            let status = row![
                style::status_dot(tone),
                text(job.result.label()).size(style::TEXT),
            ]
            .spacing(6)
            .align_y(Alignment::Center);
            grid::grid_row(
                vec![
                    grid::cell(job.service_name.clone(), COLUMNS[0].portion),
                    grid::cell(job.trigger.label(), COLUMNS[1].portion),
                    grid::cell_with(status, COLUMNS[2].portion),
                    grid::cell(style::format_time(Some(job.started)), COLUMNS[3].portion),
                    grid::cell(style::format_time(job.finished), COLUMNS[4].portion),
                    grid::cell(changes(job), COLUMNS[5].portion),
                    grid::cell(job.errors.len().to_string(), COLUMNS[6].portion),
                ],
                self.selected == Some(job.id),
                Message::Select(job.id),
                None,
                None,
            )
        }))
        .spacing(1);
        let list: Element<'a, Message> = if jobs.is_empty() {
            container(style::hint(
                "No sync has run yet. Right-click a network service and click Refresh.",
            ))
            .padding(12)
            .into()
        } else {
            scrollable(rows).height(Length::Fill).into()
        };
        let detail = match self
            .selected
            .and_then(|id| jobs.iter().find(|j| j.id == id))
        {
            Some(job) => job_detail(job, fabric),
            None => style::hint("Select a job to see its detail."),
        };
        column![
            container(column![
                grid::header(&COLUMNS, self.sort, Message::Sort),
                list
            ])
            .height(Length::FillPortion(3))
            .style(style::pane),
            container(scrollable(
                container(detail).padding([8, 12]).width(Length::Fill)
            ))
            .height(Length::FillPortion(2))
            .width(Length::Fill)
            .style(style::pane),
        ]
        .spacing(6)
        .into()
    }
}

fn job_detail<'a>(job: &'a JobRecord, fabric: &'a Fabric) -> Element<'a, Message> {
    let service = fabric.network_services.get(&job.service);
    let server = service
        .map(|s| format!("{} ({})", s.name, s.connection))
        .unwrap_or_else(|| format!("{} (removed)", job.service_name));
    let c = &job.counts;
    let facts = column![
        style::heading(format!("Sync of {}", job.service_name)),
        style::field_line("IPAM server", server.clone()),
        style::field_line("Trigger", job.trigger.label()),
        style::field_line("Result", job.result.label()),
        style::field_line("Started", style::format_time(Some(job.started))),
        style::field_line("Finished", style::format_time(job.finished)),
        style::field_line(
            "Sent to IPAM",
            format!(
                "{} created, {} updated, {} deleted",
                c.ipam_created, c.ipam_updated, c.ipam_deleted
            )
        ),
        style::field_line(
            "Received into console",
            format!(
                "{} created, {} updated, {} deleted",
                c.console_created, c.console_updated, c.console_deleted
            )
        ),
        style::field_line(
            "Conflicts / failed objects",
            format!("{} / {}", c.conflicts, c.failed)
        ),
        style::field_line(
            "Planned",
            match c.planned_networks {
                Some(0) => "nothing (no change)".to_string(),
                Some(n) => format!("changes only ({n} logical network(s))"),
                None => "everything".to_string(),
            }
        ),
        style::field_line("Time per phase", job.phases.summary()),
    ]
    .spacing(4)
    .width(Length::FillPortion(2));
    let mut out = column![].spacing(6).width(Length::FillPortion(3));
    if job.errors.is_empty() {
        out = out.push(style::hint("No errors."));
    } else {
        out = out.push(
            text(format!("Errors ({})", job.errors.len()))
                .size(style::TEXT)
                .font(style::bold())
                .style(|theme: &Theme| text::Style {
                    color: Some(style::tone_color(theme, Tone::Error)),
                }),
        );
        for e in &job.errors {
            out = out.push(style::notice(Tone::Error, e.clone()));
        }
    }
    if job.result == JobResult::Failed {
        let account = service
            .and_then(|s| fabric.run_as_accounts.get(&s.run_as))
            .map(|a| a.name.clone())
            .unwrap_or_else(|| "its Run As account".into());
        out = out.push(style::notice(
            Tone::Info,
            format!(
                "What to do: check that the IPAM server {server} is running and reachable, that the \
                 Run As account \"{account}\" is valid and has permissions on it, and that both clocks \
                 agree; then right-click the service and click Refresh. This failed run deleted nothing."
            ),
        ));
    }
    row![facts, out].spacing(24).into()
}
