//! Pictures drawn on iced's canvas: the recent syncs of a network service (duration and changes
//! per sync, failures marked), a strip of sync outcomes for a service's health, and the use of a
//! static IP address pool's range. The numbers come from plain functions tested on their own;
//! the canvas programs only draw them.

use std::net::IpAddr;

use chrono::{DateTime, Local, Utc};
use iced::widget::canvas::{self, Action, Canvas, Event, Frame, Geometry, Path, Stroke, Text};
use iced::{Color, Element, Length, Point, Rectangle, Renderer, Size, Theme, mouse};
use uuid::Uuid;

use crate::fabric::model::{Id, IpPool};
use crate::fabric::store::PoolGrants;
pub use crate::fabric::usage::PoolUsage;
use crate::fabric::usage::address_number;
use crate::sync::status::{JobRecord, JobResult};
use crate::ui::widget::style::{self, Tone};

/// One finished sync as the charts draw it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobPoint {
    pub id: Uuid,
    pub started: DateTime<Utc>,
    pub millis: u64,
    pub changes: u32,
    pub result: JobResult,
}

/// A job result's colour: failed red, warnings amber, running blue, done green.
pub fn result_tone(r: JobResult) -> Tone {
    match r {
        JobResult::Failed => Tone::Error,
        JobResult::CompletedWithWarnings | JobResult::Canceled => Tone::Warning,
        JobResult::Running => Tone::Info,
        JobResult::Succeeded => Tone::Success,
    }
}

impl JobPoint {
    fn tone(&self) -> Tone {
        result_tone(self.result)
    }

    /// "10:02:03 · 420 ms · 5 changes · Failed".
    pub fn describe(&self) -> String {
        format!(
            "{} · {} · {} change{} · {}",
            self.started.with_timezone(&Local).format("%H:%M:%S"),
            duration_label(self.millis),
            self.changes,
            if self.changes == 1 { "" } else { "s" },
            self.result.label()
        )
    }
}

/// "420 ms", "1.3 s", "2 min 5 s".
pub fn duration_label(millis: u64) -> String {
    match millis {
        0..=999 => format!("{millis} ms"),
        1_000..=59_999 => format!("{:.1} s", millis as f64 / 1000.0),
        _ => format!("{} min {} s", millis / 60_000, (millis % 60_000) / 1000),
    }
}

/// The last `max` finished syncs of one service, oldest first (`jobs` is newest first, as the
/// engine keeps them).
pub fn job_points(jobs: &[JobRecord], service: Id, max: usize) -> Vec<JobPoint> {
    let mut points: Vec<JobPoint> = jobs
        .iter()
        .filter(|j| j.service == service)
        .filter_map(|j| {
            let finished = j.finished?;
            Some(JobPoint {
                id: j.id,
                started: j.started,
                millis: u64::try_from((finished - j.started).num_milliseconds()).unwrap_or(0),
                changes: j.counts.total_changes(),
                result: j.result,
            })
        })
        .take(max)
        .collect();
    points.reverse();
    points
}

/// How a service's recent syncs went.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncHealth {
    pub syncs: usize,
    pub went_well: usize,
    pub failed: usize,
    pub median_ms: u64,
    pub slowest_ms: u64,
    pub last_failure: Option<DateTime<Utc>>,
}

impl SyncHealth {
    pub fn of(points: &[JobPoint]) -> Option<SyncHealth> {
        if points.is_empty() {
            return None;
        }
        let mut millis: Vec<u64> = points.iter().map(|p| p.millis).collect();
        millis.sort_unstable();
        Some(SyncHealth {
            syncs: points.len(),
            went_well: points
                .iter()
                .filter(|p| p.result == JobResult::Succeeded)
                .count(),
            failed: points
                .iter()
                .filter(|p| p.result == JobResult::Failed)
                .count(),
            median_ms: millis[millis.len() / 2],
            slowest_ms: *millis.last().unwrap_or(&0),
            last_failure: points
                .iter()
                .rev()
                .find(|p| p.result == JobResult::Failed)
                .map(|p| p.started),
        })
    }

    /// "18 of 20 went well, 2 failed · median 310 ms · slowest 1.2 s".
    pub fn summary(&self) -> String {
        let mut s = format!("{} of {} went well", self.went_well, self.syncs);
        if self.failed > 0 {
            s += &format!(", {} failed", self.failed);
        }
        let others = self.syncs - self.went_well - self.failed;
        if others > 0 {
            s += &format!(", {others} with warnings");
        }
        s + &format!(
            " · median {} · slowest {}",
            duration_label(self.median_ms),
            duration_label(self.slowest_ms)
        )
    }
}

pub use crate::fabric::usage::UsageLevels;

/// Normal, warning or critical, by the levels.
pub trait UsageTone {
    fn tone(&self, levels: UsageLevels) -> Tone;
}

impl UsageTone for PoolUsage {
    /// Normal, warning or critical.
    fn tone(&self, levels: UsageLevels) -> Tone {
        let used = self.used();
        if used >= levels.critical {
            Tone::Error
        } else if used >= levels.warning {
            Tone::Warning
        } else {
            Tone::Success
        }
    }
}

/// The places (0 … 1) of the reserved addresses and of the VIPs that are not also reserved,
/// inside the range.
fn usage_marks(pool: &IpPool, total: u128) -> (Vec<f64>, Vec<f64>) {
    if total == 0 {
        return (Vec::new(), Vec::new());
    }
    let start = address_number(pool.range_start);
    let place = |a: &IpAddr| {
        (a.is_ipv4() == pool.range_start.is_ipv4())
            .then(|| address_number(*a).checked_sub(start))
            .flatten()
            .filter(|offset| *offset < total)
            .map(|offset| offset as f64 / total as f64)
    };
    let reserved = pool.settings.reserved.iter().filter_map(place).collect();
    let vips = pool
        .settings
        .vips
        .iter()
        .filter(|a| !pool.settings.reserved.contains(a))
        .filter_map(place)
        .collect();
    (reserved, vips)
}

fn text_color(theme: &Theme) -> Color {
    theme.palette().text
}

fn faint(theme: &Theme, alpha: f32) -> Color {
    Color {
        a: alpha,
        ..text_color(theme)
    }
}

fn label(content: impl Into<String>, at: Point, color: Color) -> Text {
    Text {
        content: content.into(),
        position: at,
        color,
        size: iced::Pixels(f32::from(style::SMALL as u16)),
        ..Text::default()
    }
}

/// Bars of the last syncs' durations, a line of their changes, failures marked; hovering a bar
/// tells its sync, clicking selects it.
pub struct JobChart<M> {
    points: Vec<JobPoint>,
    on_select: fn(Uuid) -> M,
}

/// Where the bars go inside the canvas.
const PLOT_LEFT: f32 = 8.0;
const PLOT_TOP: f32 = 18.0;
const PLOT_BOTTOM: f32 = 18.0;

impl<M> JobChart<M> {
    fn bar_at(&self, bounds: Size, x: f32) -> Option<usize> {
        let n = self.points.len();
        if n == 0 {
            return None;
        }
        let slot = (bounds.width - 2.0 * PLOT_LEFT) / n as f32;
        let i = ((x - PLOT_LEFT) / slot).floor();
        (i >= 0.0 && (i as usize) < n).then_some(i as usize)
    }
}

impl<M: Clone> canvas::Program<M> for JobChart<M> {
    type State = Option<usize>;

    fn update(
        &self,
        hovered: &mut Option<usize>,
        event: &Event,
        bounds: Rectangle,
        cursor: mouse::Cursor,
    ) -> Option<Action<M>> {
        let at = cursor
            .position_in(bounds)
            .and_then(|p| self.bar_at(bounds.size(), p.x));
        match event {
            Event::Mouse(mouse::Event::CursorMoved { .. } | mouse::Event::CursorLeft) => {
                if *hovered != at {
                    *hovered = at;
                    return Some(Action::request_redraw());
                }
                None
            }
            Event::Mouse(mouse::Event::ButtonPressed(mouse::Button::Left)) => {
                at.map(|i| Action::publish((self.on_select)(self.points[i].id)).and_capture())
            }
            _ => None,
        }
    }

    fn draw(
        &self,
        hovered: &Option<usize>,
        renderer: &Renderer,
        theme: &Theme,
        bounds: Rectangle,
        _cursor: mouse::Cursor,
    ) -> Vec<Geometry> {
        let mut frame = Frame::new(renderer, bounds.size());
        let w = bounds.width;
        let h = bounds.height;
        let plot_h = (h - PLOT_TOP - PLOT_BOTTOM).max(1.0);
        let base = PLOT_TOP + plot_h;
        frame.stroke(
            &Path::line(Point::new(PLOT_LEFT, base), Point::new(w - PLOT_LEFT, base)),
            Stroke::default()
                .with_color(faint(theme, 0.3))
                .with_width(1.0),
        );
        let n = self.points.len();
        if n == 0 {
            frame.fill_text(label(
                "No finished sync yet.",
                Point::new(PLOT_LEFT, PLOT_TOP),
                faint(theme, 0.6),
            ));
            return vec![frame.into_geometry()];
        }
        let max_ms = self
            .points
            .iter()
            .map(|p| p.millis)
            .max()
            .unwrap_or(1)
            .max(1) as f32;
        let max_changes = self.points.iter().map(|p| p.changes).max().unwrap_or(0);
        let slot = (w - 2.0 * PLOT_LEFT) / n as f32;
        let bar_w = (slot * 0.7).clamp(1.0, 28.0);
        let mut line: Vec<Point> = Vec::with_capacity(n);
        for (i, p) in self.points.iter().enumerate() {
            let x = PLOT_LEFT + slot * i as f32 + (slot - bar_w) / 2.0;
            if *hovered == Some(i) {
                frame.fill_rectangle(
                    Point::new(PLOT_LEFT + slot * i as f32, PLOT_TOP),
                    Size::new(slot, plot_h),
                    faint(theme, 0.08),
                );
            }
            let tone = p.tone();
            let color = style::tone_color(theme, tone);
            if p.result == JobResult::Failed {
                // A failure is marked over the whole height, so a quick failure still shows.
                frame.fill_rectangle(
                    Point::new(x, PLOT_TOP),
                    Size::new(bar_w, plot_h),
                    Color { a: 0.15, ..color },
                );
                frame.fill_text(Text {
                    align_x: iced::Alignment::Center.into(),
                    ..label("✕", Point::new(x + bar_w / 2.0, 2.0), color)
                });
            }
            let bar_h = (p.millis as f32 / max_ms * plot_h).max(2.0);
            frame.fill_rectangle(
                Point::new(x, base - bar_h),
                Size::new(bar_w, bar_h),
                Color { a: 0.85, ..color },
            );
            if max_changes > 0 {
                let y = base - p.changes as f32 / max_changes as f32 * plot_h;
                line.push(Point::new(x + bar_w / 2.0, y));
            }
        }
        if line.len() > 1 {
            let path = Path::new(|b| {
                b.move_to(line[0]);
                for p in &line[1..] {
                    b.line_to(*p);
                }
            });
            frame.stroke(
                &path,
                Stroke::default()
                    .with_color(style::tone_color(theme, Tone::Info))
                    .with_width(1.5),
            );
        }
        for p in &line {
            frame.fill(&Path::circle(*p, 2.5), style::tone_color(theme, Tone::Info));
        }
        // Scales: the longest sync on the left, the most changes on the right.
        frame.fill_text(label(
            format!("▮ duration (max {})", duration_label(max_ms as u64)),
            Point::new(PLOT_LEFT + 14.0, 2.0),
            faint(theme, 0.7),
        ));
        frame.fill_text(Text {
            align_x: iced::Alignment::End.into(),
            ..label(
                format!("● changes (max {max_changes})"),
                Point::new(w - PLOT_LEFT, 2.0),
                style::tone_color(theme, Tone::Info),
            )
        });
        let first = &self.points[0];
        let last = &self.points[n - 1];
        let bottom = base + 3.0;
        frame.fill_text(label(
            first
                .started
                .with_timezone(&Local)
                .format("%H:%M:%S")
                .to_string(),
            Point::new(PLOT_LEFT, bottom),
            faint(theme, 0.6),
        ));
        frame.fill_text(Text {
            align_x: iced::Alignment::End.into(),
            ..label(
                last.started
                    .with_timezone(&Local)
                    .format("%H:%M:%S")
                    .to_string(),
                Point::new(w - PLOT_LEFT, bottom),
                faint(theme, 0.6),
            )
        });
        if let Some(i) = *hovered
            && let Some(p) = self.points.get(i)
        {
            frame.fill_text(Text {
                align_x: iced::Alignment::Center.into(),
                ..label(p.describe(), Point::new(w / 2.0, bottom), text_color(theme))
            });
        }
        vec![frame.into_geometry()]
    }

    fn mouse_interaction(
        &self,
        _state: &Option<usize>,
        bounds: Rectangle,
        cursor: mouse::Cursor,
    ) -> mouse::Interaction {
        match cursor
            .position_in(bounds)
            .and_then(|p| self.bar_at(bounds.size(), p.x))
        {
            Some(_) => mouse::Interaction::Pointer,
            None => mouse::Interaction::default(),
        }
    }
}

/// The chart of a service's recent syncs; a click on a bar selects its job.
pub fn job_chart<'a, M: Clone + 'a>(
    points: Vec<JobPoint>,
    on_select: fn(Uuid) -> M,
) -> Element<'a, M> {
    Canvas::new(JobChart { points, on_select })
        .width(Length::Fill)
        .height(130)
        .into()
}

/// One square per sync, oldest first, in its outcome's colour.
struct OutcomeStrip {
    results: Vec<JobResult>,
}

const SQUARE: f32 = 10.0;
const GAP: f32 = 3.0;

impl<M> canvas::Program<M> for OutcomeStrip {
    type State = ();

    fn draw(
        &self,
        _state: &(),
        renderer: &Renderer,
        theme: &Theme,
        bounds: Rectangle,
        _cursor: mouse::Cursor,
    ) -> Vec<Geometry> {
        let mut frame = Frame::new(renderer, bounds.size());
        for (i, r) in self.results.iter().enumerate() {
            frame.fill_rectangle(
                Point::new(i as f32 * (SQUARE + GAP), (bounds.height - SQUARE) / 2.0),
                Size::new(SQUARE, SQUARE),
                style::tone_color(theme, result_tone(*r)),
            );
        }
        vec![frame.into_geometry()]
    }
}

/// The outcomes of a service's recent syncs as coloured squares, oldest first.
pub fn outcome_strip<'a, M: 'a>(points: &[JobPoint]) -> Element<'a, M> {
    let results: Vec<JobResult> = points.iter().map(|p| p.result).collect();
    let width = results.len() as f32 * (SQUARE + GAP);
    Canvas::new(OutcomeStrip { results })
        .width(width.max(1.0))
        .height(SQUARE + 4.0)
        .into()
}

/// A bar across the pool's range: granted, reserved, VIPs, free.
struct UsageBar {
    usage: PoolUsage,
    /// Where each reserved address, VIP and granted address lies in the range (0 = start,
    /// 1 = past the end).
    reserved: Vec<f64>,
    vips: Vec<f64>,
    granted: Vec<f64>,
    /// In use on the IPAM side.
    held: Vec<f64>,
}

impl<M> canvas::Program<M> for UsageBar {
    type State = ();

    fn draw(
        &self,
        _state: &(),
        renderer: &Renderer,
        theme: &Theme,
        bounds: Rectangle,
        _cursor: mouse::Cursor,
    ) -> Vec<Geometry> {
        let mut frame = Frame::new(renderer, bounds.size());
        let u = self.usage;
        let bar_h = 14.0;
        let w = bounds.width;
        frame.fill_rectangle(Point::ORIGIN, Size::new(w, bar_h), faint(theme, 0.08));
        if u.total > 0 {
            // Free is the ground; each reserved address and VIP is drawn where it lies in the
            // range, at least 2 px wide so one address in a large range still shows.
            frame.fill_rectangle(
                Point::ORIGIN,
                Size::new(w, bar_h),
                Color {
                    a: 0.35,
                    ..style::tone_color(theme, Tone::Success)
                },
            );
            let slot = (w as f64 / u.total as f64).max(2.0) as f32;
            let granted = style::tone_color(theme, Tone::Success);
            for (marks, color) in [
                (&self.granted, granted),
                (&self.vips, style::tone_color(theme, Tone::Info)),
                (&self.reserved, style::tone_color(theme, Tone::Warning)),
                (&self.held, style::tone_color(theme, Tone::Error)),
            ] {
                for at in marks.iter() {
                    let x = (*at * f64::from(w)) as f32;
                    frame.fill_rectangle(
                        Point::new(x.min(w - slot), 0.0),
                        Size::new(slot, bar_h),
                        color,
                    );
                }
            }
        }
        frame.stroke(
            &Path::rectangle(Point::ORIGIN, Size::new(w, bar_h)),
            Stroke::default()
                .with_color(faint(theme, 0.3))
                .with_width(1.0),
        );
        let mut legend = vec![
            (
                style::tone_color(theme, Tone::Success),
                format!("Granted {}", u.granted),
            ),
            (
                style::tone_color(theme, Tone::Warning),
                format!("Reserved {}", u.reserved),
            ),
            (
                style::tone_color(theme, Tone::Info),
                format!("VIPs {} ({} granted)", u.vips, u.granted_vips),
            ),
            (
                Color {
                    a: 0.35,
                    ..style::tone_color(theme, Tone::Success)
                },
                format!(
                    "Free {} of {} ({:.0} % used)",
                    u.free(),
                    u.total,
                    u.used() * 100.0
                ),
            ),
        ];
        if u.held > 0 {
            legend.insert(
                3,
                (
                    style::tone_color(theme, Tone::Error),
                    format!("In use on the IPAM side {}", u.held),
                ),
            );
        }
        let mut x = 0.0;
        for (color, text) in legend {
            frame.fill_rectangle(Point::new(x, bar_h + 8.0), Size::new(9.0, 9.0), color);
            let width = 16.0 + text.chars().count() as f32 * 6.6;
            frame.fill_text(label(
                text,
                Point::new(x + 13.0, bar_h + 5.0),
                text_color(theme),
            ));
            x += width + 8.0;
        }
        vec![frame.into_geometry()]
    }
}

/// The use of a pool's range as a bar with a legend: each granted address, reserved address,
/// VIP and address in use on the IPAM side where it lies.
pub fn usage_bar<'a, M: 'a>(
    pool: &IpPool,
    granted: &[IpAddr],
    held: &[IpAddr],
    counts: PoolGrants,
) -> Element<'a, M> {
    let usage = PoolUsage::of(pool, counts);
    let (reserved, vips) = usage_marks(pool, usage.total);
    let start = address_number(pool.range_start);
    let marks = |addresses: &[IpAddr]| -> Vec<f64> {
        addresses
            .iter()
            .filter(|a| a.is_ipv4() == pool.range_start.is_ipv4())
            .filter_map(|a| address_number(*a).checked_sub(start))
            .filter(|offset| *offset < usage.total)
            .map(|offset| offset as f64 / usage.total as f64)
            .collect()
    };
    Canvas::new(UsageBar {
        usage,
        reserved,
        vips,
        granted: marks(granted),
        held: marks(held),
    })
    .width(Length::Fill)
    .height(36)
    .into()
}

/// A small bar of how full a range is, coloured by level, for a grid row.
struct UsageMeter {
    used: f32,
    tone: Tone,
}

impl<M> canvas::Program<M> for UsageMeter {
    type State = ();

    fn draw(
        &self,
        _state: &(),
        renderer: &Renderer,
        theme: &Theme,
        bounds: Rectangle,
        _cursor: mouse::Cursor,
    ) -> Vec<Geometry> {
        let mut frame = Frame::new(renderer, bounds.size());
        let h = 8.0;
        let y = (bounds.height - h) / 2.0;
        frame.fill_rectangle(
            Point::new(0.0, y),
            Size::new(bounds.width, h),
            faint(theme, 0.12),
        );
        frame.fill_rectangle(
            Point::new(0.0, y),
            Size::new(bounds.width * self.used.clamp(0.0, 1.0), h),
            style::tone_color(theme, self.tone),
        );
        vec![frame.into_geometry()]
    }
}

/// "▬▬▬▭▭  37 %": a range's use at a glance.
pub fn usage_meter<'a, M: 'a>(usage: PoolUsage, levels: UsageLevels) -> Element<'a, M> {
    iced::widget::row![
        Canvas::new(UsageMeter {
            used: usage.used(),
            tone: usage.tone(levels),
        })
        .width(56)
        .height(14),
        iced::widget::text(usage.percent()).size(style::SMALL),
    ]
    .spacing(6)
    .align_y(iced::Alignment::Center)
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::status::{JobTrigger, SyncCounts};

    fn job(service: u128, second: i64, millis: i64, result: JobResult, changes: u32) -> JobRecord {
        let started = DateTime::from_timestamp(1_800_000_000 + second, 0).unwrap();
        JobRecord {
            id: Uuid::new_v4(),
            service: Uuid::from_u128(service),
            service_name: format!("ipam{service}"),
            trigger: JobTrigger::Refresh,
            started,
            finished: Some(started + chrono::Duration::milliseconds(millis)),
            result,
            counts: SyncCounts {
                ipam_created: changes,
                ..Default::default()
            },
            errors: Vec::new(),
            notices: Vec::new(),
            phases: Default::default(),
        }
    }

    #[test]
    fn points_are_one_services_finished_syncs_oldest_first() {
        use JobResult::*;
        // Newest first, as the engine keeps them.
        let mut running = job(1, 50, 0, Running, 0);
        running.finished = None;
        let jobs = [
            running,
            job(1, 40, 300, Succeeded, 2),
            job(2, 30, 100, Succeeded, 1),
            job(1, 20, 1500, Failed, 0),
            job(1, 10, 200, Succeeded, 7),
        ];
        let points = job_points(&jobs, Uuid::from_u128(1), 10);
        let shape: Vec<(u64, u32, JobResult)> = points
            .iter()
            .map(|p| (p.millis, p.changes, p.result))
            .collect();
        assert_eq!(
            shape,
            [(200, 7, Succeeded), (1500, 0, Failed), (300, 2, Succeeded)]
        );
        // Only the newest `max`.
        let last_two = job_points(&jobs, Uuid::from_u128(1), 2);
        assert_eq!(last_two[1].millis, 300);
        assert_eq!(last_two[0].millis, 1500);

        let health = SyncHealth::of(&points).unwrap();
        assert_eq!(health.syncs, 3);
        assert_eq!(health.went_well, 2);
        assert_eq!(health.failed, 1);
        assert_eq!(health.median_ms, 300);
        assert_eq!(health.slowest_ms, 1500);
        assert_eq!(health.last_failure, Some(jobs[3].started));
        assert_eq!(
            health.summary(),
            "2 of 3 went well, 1 failed · median 300 ms · slowest 1.5 s"
        );
        assert_eq!(SyncHealth::of(&[]), None);
    }

    #[test]
    fn pool_usage_counts_what_lies_in_the_range() {
        let mut pool = crate::fabric::demo::demo_fabric(50, 3)
            .ip_pools
            .into_values()
            .next()
            .unwrap();
        pool.range_start = "10.0.0.10".parse().unwrap();
        pool.range_end = "10.0.0.109".parse().unwrap();
        pool.settings.reserved = ["10.0.0.10", "10.0.0.11", "10.0.0.200"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        pool.settings.vips = ["10.0.0.11", "10.0.0.50", "fd00::1"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let u = PoolUsage::of(
            &pool,
            PoolGrants {
                plain: 7,
                vips: 1,
                held: 0,
            },
        );
        assert_eq!(
            u,
            PoolUsage {
                total: 100,
                granted: 7,
                reserved: 2,
                vips: 1,
                granted_vips: 1,
                held: 0,
            }
        );
        assert_eq!(u.free(), 90);
        assert_eq!(u.percent(), " 10 %");
        assert_eq!(u.tone(UsageLevels::default()), Tone::Success);
        assert_eq!(
            u.summary(),
            "Granted 7 · Reserved 2 · VIPs 1 of 1 granted · Free 90 of 100"
        );
        let full = PoolUsage { granted: 83, ..u };
        assert_eq!(full.tone(UsageLevels::default()), Tone::Warning);
        let both = full.plus(PoolUsage { granted: 10, ..u });
        assert_eq!((both.total, both.free()), (200, 101));
        assert_eq!(
            PoolUsage { granted: 95, ..u }.tone(UsageLevels::default()),
            Tone::Error
        );
        // .10 and .11 are the first two of 100; .50 is the 41st; the rest lie outside.
        assert_eq!(usage_marks(&pool, u.total), (vec![0.0, 0.01], vec![0.4]));
        pool.range_start = "fd00::".parse().unwrap();
        pool.range_end = "fd00::ffff:ffff:ffff:ffff".parse().unwrap();
        assert_eq!(PoolUsage::of(&pool, PoolGrants::default()).total, 1 << 64);
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration_label(420), "420 ms");
        assert_eq!(duration_label(1_260), "1.3 s");
        assert_eq!(duration_label(125_000), "2 min 5 s");
    }
}
