//! The Jobs workspace: every sync run with its start, end, result, counts and errors; a failed
//! job's detail names the server and says what to do. Syncs that changes started one after
//! another (live sync) and that went well show as one row, so a day of edits is not a wall of
//! one-object jobs.

use iced::widget::scrollable::Viewport;
use iced::widget::{button, column, container, row, scrollable, space, text};
use iced::{Alignment, Element, Length, Task, Theme};
use uuid::Uuid;

use crate::fabric::model::{Fabric, Id};
use crate::sync::status::{JobRecord, JobResult, JobTrigger, SyncCounts};
use crate::ui::widget::chart;
use crate::ui::widget::grid::{self, ColumnWidths, GridColumn, Sort, col};
use crate::ui::widget::style::{self, Tone};
use crate::ui::widget::virtual_list::{Step, VirtualList};

#[derive(Debug, Clone)]
pub struct JobsWorkspace {
    pub selected: Option<Uuid>,
    sort: Sort,
    /// The service whose recent syncs the chart shows; else the selected job's, else the newest
    /// job's.
    chart_service: Option<Id>,
    /// Where the list is scrolled, so the keys can bring the selected row into view.
    list: VirtualList,
    widths: ColumnWidths,
}

/// Syncs the chart shows.
pub const CHART_JOBS: usize = 60;

impl Default for JobsWorkspace {
    fn default() -> Self {
        JobsWorkspace {
            selected: None,
            chart_service: None,
            // Rows are one grid row apart, 1 px between them.
            list: VirtualList::new(style::ROW_HEIGHT + 1.0),
            widths: ColumnWidths::default(),
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
    /// Show this service's syncs in the chart.
    Chart(Id),
    Scrolled(Viewport),
    Resize(grid::Resize),
}

/// The list's scrollable, for the keys that move the selection.
const LIST_ID: &str = "jobs-rows";

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

/// One row of the list: a job, or a run of adjacent event-driven jobs that went well (newest
/// first).
enum JobRow<'a> {
    One(&'a JobRecord),
    Run(Vec<&'a JobRecord>),
}

/// Started by a change on either side, finished, and without a problem.
fn quiet_live_job(job: &JobRecord) -> bool {
    matches!(
        job.trigger,
        JobTrigger::ServerChange | JobTrigger::ConsoleChange
    ) && job.result == JobResult::Succeeded
        && job.errors.is_empty()
}

/// Joins adjacent quiet live jobs of one service (in the order given) into runs.
fn coalesce<'a>(jobs: Vec<&'a JobRecord>) -> Vec<JobRow<'a>> {
    let mut rows: Vec<JobRow<'a>> = Vec::new();
    for job in jobs {
        if quiet_live_job(job) {
            match rows.last_mut() {
                Some(JobRow::Run(run)) if run[0].service == job.service => {
                    run.push(job);
                    continue;
                }
                Some(JobRow::One(prev)) if quiet_live_job(prev) && prev.service == job.service => {
                    let prev = *prev;
                    *rows.last_mut().expect("a last row") = JobRow::Run(vec![prev, job]);
                    continue;
                }
                _ => {}
            }
        }
        rows.push(JobRow::One(job));
    }
    rows
}

impl<'a> JobRow<'a> {
    /// The newest job: it stands for the row when selected.
    fn head(&self) -> &'a JobRecord {
        match self {
            JobRow::One(j) => j,
            JobRow::Run(run) => run[0],
        }
    }

    fn trigger(&self) -> String {
        match self {
            JobRow::One(j) => j.trigger.label().to_string(),
            JobRow::Run(run) if run.iter().all(|j| j.trigger == run[0].trigger) => {
                format!("{} ×{}", run[0].trigger.label(), run.len())
            }
            JobRow::Run(run) => format!("Changes ×{}", run.len()),
        }
    }

    fn started(&self) -> chrono::DateTime<chrono::Utc> {
        match self {
            JobRow::One(j) => j.started,
            JobRow::Run(run) => run
                .iter()
                .map(|j| j.started)
                .min()
                .unwrap_or(run[0].started),
        }
    }

    fn counts(&self) -> SyncCounts {
        match self {
            JobRow::One(j) => j.counts.clone(),
            JobRow::Run(run) => run[1..].iter().fold(run[0].counts.clone(), |mut sum, j| {
                sum.absorb(&j.counts);
                sum
            }),
        }
    }
}

impl JobsWorkspace {
    pub fn update(&mut self, message: Message) -> (Task<Message>, Option<Event>) {
        match message {
            Message::Select(id) => self.selected = Some(id),
            Message::Chart(service) => self.chart_service = Some(service),
            Message::Scrolled(v) => self.list.scrolled(v),
            Message::Resize(r) => self.widths.update(r),
            Message::Sort(c) => {
                // Newest first is the natural order: the first click on Start keeps it.
                self.sort.click(c)
            }
        }
        (Task::none(), None)
    }

    /// The rows in the order shown: sorted, and in time order adjacent live syncs joined.
    fn rows<'a>(&self, jobs: &'a [JobRecord]) -> Vec<JobRow<'a>> {
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
        // Runs are joined only in time order, where they are adjacent.
        if sort.column == START_COLUMN {
            coalesce(sorted)
        } else {
            sorted.into_iter().map(JobRow::One).collect()
        }
    }

    /// Arrow keys, Page Up/Down, Home and End move the selection in the list.
    pub fn step(&mut self, step: Step, jobs: &[JobRecord]) -> Task<Message> {
        let heads: Vec<Uuid> = self.rows(jobs).iter().map(|r| r.head().id).collect();
        let current = self
            .selected
            .and_then(|id| heads.iter().position(|h| *h == id));
        let (next, task) = self.list.step(LIST_ID, step, current, heads.len());
        if let Some(i) = next {
            self.selected = Some(heads[i]);
        }
        task
    }

    pub fn view<'a>(&'a self, jobs: &'a [JobRecord], fabric: &'a Fabric) -> Element<'a, Message> {
        let rows = self.rows(jobs);
        let selected_run = rows.iter().find_map(|r| match r {
            JobRow::Run(run) if self.selected == Some(run[0].id) => Some(run.clone()),
            _ => None,
        });
        let rows = column(rows.into_iter().map(|r| {
            let job = r.head();
            let tone = chart::result_tone(job.result);
            let status = row![
                style::status_dot(tone),
                text(job.result.label()).size(style::TEXT),
            ]
            .spacing(6)
            .align_y(Alignment::Center);
            grid::grid_row(
                vec![
                    grid::cell(
                        job.service_name.clone(),
                        self.widths.portion("jobs", &COLUMNS, 0),
                    ),
                    grid::cell(r.trigger(), self.widths.portion("jobs", &COLUMNS, 1)),
                    grid::cell_with(status, self.widths.portion("jobs", &COLUMNS, 2)),
                    grid::cell(
                        style::format_time(Some(r.started())),
                        self.widths.portion("jobs", &COLUMNS, 3),
                    ),
                    grid::cell(
                        style::format_time(job.finished),
                        self.widths.portion("jobs", &COLUMNS, 4),
                    ),
                    grid::cell(
                        r.counts().changes("  ·  "),
                        self.widths.portion("jobs", &COLUMNS, 5),
                    ),
                    grid::cell(
                        job.errors.len().to_string(),
                        self.widths.portion("jobs", &COLUMNS, 6),
                    ),
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
            scrollable(rows)
                .id(LIST_ID)
                .on_scroll(Message::Scrolled)
                .height(Length::Fill)
                .into()
        };
        let detail = match (
            selected_run,
            self.selected
                .and_then(|id| jobs.iter().find(|j| j.id == id)),
        ) {
            (Some(run), _) => run_detail(run),
            (None, Some(job)) => job_detail(job, fabric),
            (None, None) => style::hint("Select a job to see its detail."),
        };
        column![
            self.chart(jobs),
            container(column![
                grid::header(
                    "jobs",
                    &COLUMNS,
                    &self.widths,
                    self.sort,
                    Message::Sort,
                    Message::Resize
                ),
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

impl JobsWorkspace {
    /// The service the chart shows.
    fn chart_service(&self, jobs: &[JobRecord]) -> Option<Id> {
        let selected = self
            .selected
            .and_then(|id| jobs.iter().find(|j| j.id == id))
            .map(|j| j.service);
        self.chart_service
            .filter(|s| jobs.iter().any(|j| j.service == *s))
            .or(selected)
            .or_else(|| jobs.first().map(|j| j.service))
    }

    /// Per service, the last syncs: duration bars, a line of changes, failures marked. One
    /// button per service with jobs picks which.
    fn chart<'a>(&'a self, jobs: &'a [JobRecord]) -> Element<'a, Message> {
        let Some(service) = self.chart_service(jobs) else {
            return space().height(0).into();
        };
        let mut services: Vec<(Id, &str)> = Vec::new();
        for j in jobs {
            if !services.iter().any(|(id, _)| *id == j.service) {
                services.push((j.service, &j.service_name));
            }
        }
        services.sort_by(|a, b| grid::text_order(a.1, b.1));
        let points = chart::job_points(jobs, service, CHART_JOBS);
        let name = services
            .iter()
            .find(|(id, _)| *id == service)
            .map(|(_, n)| *n)
            .unwrap_or_default();
        let mut header = row![
            text(format!("Recent syncs of {name}"))
                .size(style::TEXT)
                .font(style::bold()),
            style::hint(match chart::SyncHealth::of(&points) {
                Some(h) => format!("{} · click a bar to see its job", h.summary()),
                None => "none finished yet".into(),
            }),
            space().width(Length::Fill),
        ]
        .spacing(12)
        .align_y(Alignment::Center);
        if services.len() > 1 {
            for (id, n) in services {
                header = header.push(
                    button(text(n.to_string()).size(style::SMALL))
                        .padding([2, 8])
                        .style(style::flat(id == service))
                        .on_press(Message::Chart(id)),
                );
            }
        }
        container(column![header, chart::job_chart(points, Message::Select)].spacing(4))
            .padding([6, 10])
            .width(Length::Fill)
            .style(style::pane)
            .into()
    }
}

/// "Sent to IPAM" and "Received into console": what a side got.
fn side_lines<'a>(c: &SyncCounts) -> [Element<'a, Message>; 2] {
    let line = |label: &str, (created, updated, deleted): (u32, u32, u32)| {
        style::field_line(
            label,
            format!("{created} created, {updated} updated, {deleted} deleted"),
        )
    };
    [
        line(
            "Sent to IPAM",
            (c.ipam_created, c.ipam_updated, c.ipam_deleted),
        ),
        line(
            "Received into console",
            (c.console_created, c.console_updated, c.console_deleted),
        ),
    ]
}

/// A run of live syncs: what they changed together, and each one.
fn run_detail(run: Vec<&JobRecord>) -> Element<'_, Message> {
    let row = JobRow::Run(run.clone());
    let c = row.counts();
    let first = run.last().expect("a run holds jobs");
    let facts = column![
        style::heading(format!(
            "{} syncs of {} started by changes",
            run.len(),
            first.service_name
        )),
        style::field_line(
            "Between",
            format!(
                "{} and {}",
                style::format_time(Some(row.started())),
                style::format_time(run[0].finished)
            )
        ),
    ]
    .extend(side_lines(&c))
    .spacing(4)
    .width(Length::FillPortion(2));
    let each = column(run.iter().map(|j| {
        text(format!(
            "{}  {}  {}",
            style::format_time(Some(j.started)),
            j.trigger.label(),
            j.counts.changes(" · ")
        ))
        .size(style::TEXT)
        .into()
    }))
    .spacing(2)
    .width(Length::FillPortion(3));
    row![facts, each].spacing(24).into()
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
    ]
    .extend(side_lines(c))
    .push(style::field_line(
        "Conflicts / failed objects",
        format!("{} / {}", c.conflicts, c.failed),
    ))
    .push(style::field_line(
        "Planned",
        match c.planned_networks {
            Some(0) => "nothing (no change)".to_string(),
            Some(n) => format!("changes only ({n} logical network(s))"),
            None => "everything".to_string(),
        },
    ))
    .push(style::field_line("Time per phase", job.phases.summary()))
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
    for n in &job.notices {
        out = out.push(style::notice(Tone::Warning, n.clone()));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn job(service: u128, minute: i64, trigger: JobTrigger, result: JobResult) -> JobRecord {
        let started = chrono::DateTime::from_timestamp(1_800_000_000 + minute * 60, 0).unwrap();
        JobRecord {
            id: Uuid::new_v4(),
            service: Uuid::from_u128(service),
            service_name: format!("ipam{service}"),
            trigger,
            started,
            finished: Some(started),
            result,
            counts: SyncCounts {
                console_updated: 1,
                planned_networks: Some(1),
                ..Default::default()
            },
            errors: Vec::new(),
            notices: Vec::new(),
            phases: Default::default(),
        }
    }

    #[test]
    fn adjacent_live_syncs_that_went_well_are_one_row() {
        use JobResult::*;
        use JobTrigger::*;
        // Newest first, as the list shows them.
        let jobs = [
            job(1, 9, ServerChange, Succeeded),
            job(1, 8, ConsoleChange, Succeeded),
            job(1, 7, ServerChange, Succeeded),
            job(1, 6, Refresh, Succeeded),
            job(1, 5, ServerChange, Succeeded),
            job(1, 4, ServerChange, Failed),
            job(2, 3, ServerChange, Succeeded),
            job(1, 2, ServerChange, Succeeded),
        ];
        let rows = coalesce(jobs.iter().collect());
        let shape: Vec<String> = rows
            .iter()
            .map(|r| match r {
                JobRow::One(j) => format!("{} {}", j.trigger.label(), j.result.label()),
                JobRow::Run(run) => format!("run of {}", run.len()),
            })
            .collect();
        assert_eq!(
            shape,
            [
                "run of 3",
                "Refresh Completed",
                "IPAM change Completed",
                "IPAM change Failed",
                "IPAM change Completed",
                "IPAM change Completed",
            ]
        );
        let run = &rows[0];
        assert_eq!(run.trigger(), "Changes ×3");
        assert_eq!(run.head().id, jobs[0].id, "the newest stands for the run");
        assert_eq!(run.started(), jobs[2].started);
        assert_eq!(run.counts().console_updated, 3);
        assert_eq!(run.counts().planned_networks, Some(3));
    }
}
