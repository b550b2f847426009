//! The console's look: two palettes (light, dark), pane and row styles, and small shared widgets.

use iced::widget::{button, container, row, space, text};
use iced::{Background, Border, Color, Element, Length, Shadow, Theme, Vector, theme};

use crate::sync::status::SyncState;

/// Body text size; dense like a management console.
pub use lucide_icons::Icon;

pub const TEXT: u32 = 13;
pub const SMALL: u32 = 12;
pub const HEADING: u32 = 15;
/// Height of one grid row.
pub const ROW_HEIGHT: f32 = 24.0;

pub fn light() -> Theme {
    Theme::custom(
        "Fabric Light",
        theme::Palette {
            background: Color::from_rgb8(0xf6, 0xf7, 0xf9),
            text: Color::from_rgb8(0x1f, 0x23, 0x28),
            primary: Color::from_rgb8(0x1a, 0x63, 0xc6),
            success: Color::from_rgb8(0x1e, 0x8e, 0x3e),
            warning: Color::from_rgb8(0xc7, 0x7c, 0x02),
            danger: Color::from_rgb8(0xc5, 0x22, 0x1f),
        },
    )
}

pub fn dark() -> Theme {
    Theme::custom(
        "Fabric Dark",
        theme::Palette {
            background: Color::from_rgb8(0x1e, 0x20, 0x24),
            text: Color::from_rgb8(0xe3, 0xe6, 0xea),
            primary: Color::from_rgb8(0x4c, 0x9a, 0xff),
            success: Color::from_rgb8(0x3f, 0xb9, 0x50),
            warning: Color::from_rgb8(0xe3, 0xa0, 0x08),
            danger: Color::from_rgb8(0xf0, 0x55, 0x4f),
        },
    )
}

/// `a` moved towards `b` by `t` (0 to 1).
pub fn mix(a: Color, b: Color, t: f32) -> Color {
    Color {
        r: a.r + (b.r - a.r) * t,
        g: a.g + (b.g - a.g) * t,
        b: a.b + (b.b - a.b) * t,
        a: 1.0,
    }
}

/// Colour of panes (lists, trees): slightly lighter than the window in light mode.
/// The pane's background tinted `t` of the way toward `toward`.
pub fn pane_mix(theme: &Theme, toward: Color, t: f32) -> Color {
    mix(pane_background(theme), toward, t)
}

pub fn pane_background(theme: &Theme) -> Color {
    let p = theme.extended_palette();
    if p.is_dark {
        mix(p.background.base.color, Color::BLACK, 0.15)
    } else {
        Color::WHITE
    }
}

pub fn separator(theme: &Theme) -> Color {
    let p = theme.extended_palette();
    mix(p.background.base.color, p.background.base.text, 0.16)
}

pub fn muted_text(theme: &Theme) -> Color {
    let p = theme.extended_palette();
    mix(p.background.base.text, p.background.base.color, 0.42)
}

pub fn selection(theme: &Theme) -> Color {
    let p = theme.extended_palette();
    mix(p.primary.base.color, pane_background(theme), 0.78)
}

/// A pane: list, tree or details, with a hairline border.
pub fn pane(theme: &Theme) -> container::Style {
    container::Style {
        background: Some(Background::Color(pane_background(theme))),
        border: Border::default().width(1).color(separator(theme)),
        ..container::Style::default()
    }
}

/// A tooltip's box: the pane's colours with a shadowless border.
pub fn tooltip_box(theme: &Theme) -> container::Style {
    container::Style {
        border: Border::default()
            .width(1)
            .color(separator(theme))
            .rounded(3),
        ..pane(theme)
    }
}

/// The average width of a character of body text, for fitting text to a column.
pub const CHAR_WIDTH: f32 = 7.0;

/// The ribbon band and the status bar.
pub fn band(theme: &Theme) -> container::Style {
    let p = theme.extended_palette();
    container::Style {
        background: Some(Background::Color(if p.is_dark {
            mix(p.background.base.color, Color::WHITE, 0.04)
        } else {
            Color::from_rgb8(0xea, 0xed, 0xf1)
        })),
        border: Border::default().width(1).color(separator(theme)),
        ..container::Style::default()
    }
}

/// Header cells of grids: the pane tinted toward the text colour, with a border.
pub fn grid_header(theme: &Theme) -> container::Style {
    container::Style {
        border: Border::default().width(1).color(separator(theme)),
        ..tinted_pane(theme, theme.extended_palette().background.base.text, 0.05)
    }
}

/// Category rows inside a grid ("Network managers (1)"): the pane tinted toward the accent.
pub fn group_row(theme: &Theme) -> container::Style {
    tinted_pane(theme, theme.extended_palette().primary.base.color, 0.06)
}

/// A container in the pane colour moved a share `t` toward `toward`.
fn tinted_pane(theme: &Theme, toward: Color, t: f32) -> container::Style {
    container::Style {
        background: Some(Background::Color(pane_mix(theme, toward, t))),
        ..container::Style::default()
    }
}

pub fn row_style(selected: bool) -> impl Fn(&Theme) -> container::Style {
    move |theme| container::Style {
        background: selected.then(|| Background::Color(selection(theme))),
        ..container::Style::default()
    }
}

/// A modal window over the console.
/// A dialog's window: `content` padded, `width` wide, in the dialog style.
pub fn dialog_window<'a, M: 'a>(
    content: impl Into<Element<'a, M>>,
    width: impl Into<Length>,
) -> container::Container<'a, M> {
    container(content).padding(16).width(width).style(dialog)
}

pub fn dialog(theme: &Theme) -> container::Style {
    let p = theme.extended_palette();
    container::Style {
        background: Some(Background::Color(p.background.base.color)),
        border: Border::default()
            .width(1)
            .color(mix(separator(theme), p.background.base.text, 0.2))
            .rounded(6),
        shadow: Shadow::default(),
        ..container::Style::default()
    }
}

/// The dimmed backdrop under a modal.
pub fn backdrop(_theme: &Theme) -> container::Style {
    container::Style {
        background: Some(Background::Color(Color::from_rgba(0.0, 0.0, 0.0, 0.35))),
        ..container::Style::default()
    }
}

/// A context menu: a small raised list.
pub fn menu(theme: &Theme) -> container::Style {
    container::Style {
        background: Some(Background::Color(pane_background(theme))),
        border: Border::default()
            .width(1)
            .color(separator(theme))
            .rounded(4),
        shadow: Shadow {
            color: Color::from_rgba(0.0, 0.0, 0.0, 0.25),
            offset: Vector::new(0.0, 3.0),
            blur_radius: 10.0,
        },
        ..container::Style::default()
    }
}

/// Notices: errors in red, warnings in amber, information in blue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Info,
    Warning,
    Error,
    Success,
}

pub fn tone_color(theme: &Theme, tone: Tone) -> Color {
    let p = theme.palette();
    match tone {
        Tone::Info => p.primary,
        Tone::Warning => p.warning,
        Tone::Error => p.danger,
        Tone::Success => p.success,
    }
}

pub fn notice_box(tone: Tone) -> impl Fn(&Theme) -> container::Style {
    move |theme| {
        let c = tone_color(theme, tone);
        container::Style {
            background: Some(Background::Color(pane_mix(theme, c, 0.10))),
            border: Border::default()
                .width(1)
                .color(pane_mix(theme, c, 0.5))
                .rounded(3),
            ..container::Style::default()
        }
    }
}

/// A line of text in a tone (an error under a field, a warning on the Test page).
pub fn notice<'a, M: 'a>(tone: Tone, message: impl Into<String>) -> Element<'a, M> {
    let message = message.into();
    container(
        row![
            status_dot(tone),
            text(message).size(TEXT).width(Length::Fill)
        ]
        .spacing(8)
        .align_y(iced::Alignment::Center),
    )
    .padding([6, 10])
    .width(Length::Fill)
    .style(notice_box(tone))
    .into()
}

/// A small coloured disc: sync status, test outcome.
pub fn status_dot<'a, M: 'a>(tone: Tone) -> Element<'a, M> {
    container(text(""))
        .width(10)
        .height(10)
        .style(move |theme: &Theme| container::Style {
            background: Some(Background::Color(tone_color(theme, tone))),
            border: Border::default().rounded(5),
            ..container::Style::default()
        })
        .into()
}

/// The neutral dot for "never synced".
pub fn hollow_dot<'a, M: 'a>() -> Element<'a, M> {
    container(text(""))
        .width(10)
        .height(10)
        .style(move |theme: &Theme| container::Style {
            border: Border::default()
                .width(1.5)
                .color(muted_text(theme))
                .rounded(5),
            ..container::Style::default()
        })
        .into()
}

pub fn sync_tone(state: &SyncState) -> Option<Tone> {
    match state {
        SyncState::NeverSynced => None,
        SyncState::Syncing { .. } | SyncState::Waiting(_) => Some(Tone::Info),
        SyncState::InSync => Some(Tone::Success),
        SyncState::Warning(_) => Some(Tone::Warning),
        SyncState::Error(_) => Some(Tone::Error),
    }
}

pub fn sync_dot<'a, M: 'a>(state: &SyncState) -> Element<'a, M> {
    match sync_tone(state) {
        Some(t) => status_dot(t),
        None => hollow_dot(),
    }
}

/// Flat buttons of the ribbon, menus, trees and grids: no fill until hovered.
pub fn flat(selected: bool) -> impl Fn(&Theme, button::Status) -> button::Style {
    move |theme, status| {
        let p = theme.extended_palette();
        let base = button::Style {
            background: None,
            text_color: p.background.base.text,
            border: Border::default().rounded(3),
            shadow: Shadow::default(),
            snap: true,
        };
        match status {
            button::Status::Disabled => button::Style {
                text_color: muted_text(theme),
                ..base
            },
            button::Status::Hovered => button::Style {
                background: Some(Background::Color(mix(
                    pane_background(theme),
                    p.primary.base.color,
                    if selected { 0.28 } else { 0.12 },
                ))),
                ..base
            },
            button::Status::Pressed => button::Style {
                background: Some(Background::Color(pane_mix(
                    theme,
                    p.primary.base.color,
                    0.3,
                ))),
                ..base
            },
            button::Status::Active if selected => button::Style {
                background: Some(Background::Color(selection(theme))),
                ..base
            },
            button::Status::Active => base,
        }
    }
}

/// The dialogs' ordinary command buttons (Previous, Cancel, Browse…).
pub fn secondary(theme: &Theme, status: button::Status) -> button::Style {
    let p = theme.extended_palette();
    let base = button::Style {
        background: Some(Background::Color(pane_background(theme))),
        text_color: p.background.base.text,
        border: Border::default()
            .width(1)
            .color(mix(separator(theme), p.background.base.text, 0.15))
            .rounded(3),
        shadow: Shadow::default(),
        snap: true,
    };
    match status {
        button::Status::Hovered | button::Status::Pressed => button::Style {
            border: base.border.color(p.primary.base.color),
            ..base
        },
        button::Status::Disabled => button::Style {
            text_color: muted_text(theme),
            background: Some(Background::Color(p.background.base.color)),
            ..base
        },
        button::Status::Active => base,
    }
}

/// The default action of a dialog (Next, Finish, OK).
pub fn primary(theme: &Theme, status: button::Status) -> button::Style {
    let base = button::primary(theme, status);
    button::Style {
        border: base.border.rounded(3),
        ..base
    }
}

/// A command button of the given label, in the dialog style.
pub fn command<'a, M: Clone + 'a>(label: &'a str, on_press: Option<M>) -> button::Button<'a, M> {
    button(
        text(label)
            .size(TEXT)
            .align_x(iced::alignment::Horizontal::Center),
    )
    .padding([5, 14])
    .width(Length::Shrink)
    .style(secondary)
    .on_press_maybe(on_press)
}

pub fn default_command<'a, M: Clone + 'a>(
    label: &'a str,
    on_press: Option<M>,
) -> button::Button<'a, M> {
    button(
        text(label)
            .size(TEXT)
            .align_x(iced::alignment::Horizontal::Center),
    )
    .padding([5, 14])
    .style(primary)
    .on_press_maybe(on_press)
}

/// The ▸/▾ in front of a tree line that has children (`toggle` says what a click does); a line
/// without children gets the same width of space, so names stay aligned.
pub fn expander<'a, M: Clone + 'a>(expanded: bool, toggle: Option<M>) -> Element<'a, M> {
    match toggle {
        Some(toggle) => button(text(if expanded { "▾" } else { "▸" }).size(TEXT))
            .padding([0, 4])
            .width(18)
            .style(flat(false))
            .on_press(toggle)
            .into(),
        None => space().width(18).into(),
    }
}

/// A label-value line of the details pane and the Summary page.
pub fn field_line<'a, M: 'a>(label: impl Into<String>, value: impl Into<String>) -> Element<'a, M> {
    field_with(label, text(value.into()).size(TEXT).width(Length::Fill))
}

/// A label and any content beside it, aligned with [`field_line`]s (a chart, a bar).
pub fn field_with<'a, M: 'a>(
    label: impl Into<String>,
    content: impl Into<Element<'a, M>>,
) -> Element<'a, M> {
    row![
        text(label.into())
            .size(TEXT)
            .width(170)
            .style(|theme: &Theme| text::Style {
                color: Some(muted_text(theme))
            }),
        content.into(),
    ]
    .spacing(8)
    .into()
}

/// The icon font (Lucide, ISC licence), loaded with the window.
pub const ICON_FONT: iced::Font = iced::Font::with_name("lucide");

/// An icon of the Lucide set at `size` pixels.
pub fn icon<'a>(icon: Icon, size: u32) -> iced::widget::Text<'a> {
    text(char::from(icon).to_string())
        .font(ICON_FONT)
        .size(size)
        .line_height(1.0)
}

/// A section heading inside a pane or dialog.
pub fn heading<'a, M: 'a>(label: impl Into<String>) -> Element<'a, M> {
    text(label.into())
        .size(HEADING)
        .font(iced::Font {
            weight: iced::font::Weight::Semibold,
            ..iced::Font::DEFAULT
        })
        .into()
}

pub fn bold() -> iced::Font {
    iced::Font {
        weight: iced::font::Weight::Semibold,
        ..iced::Font::DEFAULT
    }
}

/// Muted helper text under a field.
pub fn hint<'a, M: 'a>(message: impl Into<String>) -> Element<'a, M> {
    text(message.into())
        .size(SMALL)
        .style(|theme: &Theme| text::Style {
            color: Some(muted_text(theme)),
        })
        .into()
}

pub fn text_input_style(
    theme: &Theme,
    status: iced::widget::text_input::Status,
) -> iced::widget::text_input::Style {
    let base = iced::widget::text_input::default(theme, status);
    iced::widget::text_input::Style {
        background: Background::Color(pane_background(theme)),
        border: base.border.rounded(3),
        ..base
    }
}

/// "1.2 s" style skew.
pub fn format_skew(skew_ms: Option<i64>) -> String {
    match skew_ms {
        None => "—".into(),
        Some(ms) if ms.abs() < 1000 => format!("{ms} ms"),
        Some(ms) if ms.abs() < 120_000 => format!("{:.1} s", ms as f64 / 1000.0),
        Some(ms) => format!("{:.1} min", ms as f64 / 60_000.0),
    }
}

pub fn format_time(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    match t {
        None => "—".into(),
        Some(t) => t
            .with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
    }
}

/// "14:02:11" today, "11-26 14:02" otherwise: fits a grid column.
pub fn format_short_time(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    match t {
        None => "—".into(),
        Some(t) => {
            let local = t.with_timezone(&chrono::Local);
            if local.date_naive() == chrono::Local::now().date_naive() {
                local.format("%H:%M:%S").to_string()
            } else {
                local.format("%m-%d %H:%M").to_string()
            }
        }
    }
}

/// Under a dialog's fields: why the last save failed, else what still keeps OK disabled.
pub fn save_problem<'a, M: 'a>(
    failed: Option<&str>,
    invalid: Option<&str>,
) -> Option<Element<'a, M>> {
    match (failed, invalid) {
        (Some(e), _) => Some(notice(Tone::Error, e)),
        (None, Some(reason)) => Some(hint(reason)),
        (None, None) => None,
    }
}

/// A dialog's OK and Cancel at its bottom right; OK is the default button.
pub fn ok_cancel<'a, M: Clone + 'a>(ok: Option<M>, cancel: M) -> Element<'a, M> {
    default_and_cancel("OK", ok, cancel)
}

/// A dialog's default command (`label`) and Cancel at its bottom right.
pub fn default_and_cancel<'a, M: Clone + 'a>(
    label: &'a str,
    on_press: Option<M>,
    cancel: M,
) -> Element<'a, M> {
    row![
        space().width(Length::Fill),
        default_command(label, on_press),
        command("Cancel", Some(cancel)),
    ]
    .spacing(8)
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_is_shown_in_a_readable_unit() {
        assert_eq!(format_skew(None), "—");
        assert_eq!(format_skew(Some(250)), "250 ms");
        assert_eq!(format_skew(Some(-1500)), "-1.5 s");
        assert_eq!(format_skew(Some(360_000)), "6.0 min");
    }
}
