//! The results pane's grid: a header with sortable columns whose borders drag to resize them,
//! and rows that select on click, open on double-click and offer a context menu on right-click.

use std::cmp::Ordering;
use std::collections::HashMap;

use iced::widget::{button, container, mouse_area, row, rule, text};
use iced::{Alignment, Element, Length, mouse};

use crate::ui::widget::style;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GridColumn {
    pub title: &'static str,
    /// Share of the grid's width.
    pub portion: u16,
}

pub const fn col(title: &'static str, portion: u16) -> GridColumn {
    GridColumn { title, portion }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub column: usize,
    pub ascending: bool,
}

impl Default for Sort {
    fn default() -> Self {
        Sort {
            column: 0,
            ascending: true,
        }
    }
}

impl Sort {
    /// Clicking the sorted column flips the order; another column sorts ascending.
    pub fn click(&mut self, column: usize) {
        if self.column == column {
            self.ascending = !self.ascending;
        } else {
            self.column = column;
            self.ascending = true;
        }
    }

    pub fn apply(&self, ord: Ordering) -> Ordering {
        if self.ascending { ord } else { ord.reverse() }
    }
}

/// Case-insensitive text order, then exact, so sorting is stable for mixed case.
pub fn text_order(a: &str, b: &str) -> Ordering {
    a.to_lowercase()
        .cmp(&b.to_lowercase())
        .then_with(|| a.cmp(b))
}

/// What the pointer does to a grid's column borders.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Resize {
    /// The pointer is over a header, `x` pixels from its left edge.
    Moved(f32),
    /// A press on the border after column `column` of the grid `key` (with these columns).
    Start(&'static str, &'static [GridColumn], usize),
    /// The button was released or the pointer left the header.
    End,
}

#[derive(Debug, Clone, PartialEq)]
struct Drag {
    key: &'static str,
    column: usize,
    from_x: f32,
    start: Vec<f32>,
    px_per_share: f32,
}

/// The column widths of a screen's grids, as shares of each grid's width; a grid nobody resized
/// has its columns' portions. Each grid is known by a key (its name on the screen).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ColumnWidths {
    shares: HashMap<&'static str, Vec<f32>>,
    pointer_x: f32,
    drag: Option<Drag>,
}

/// No column is dragged narrower than this share of its grid.
const MIN_SHARE: f32 = 0.04;

impl ColumnWidths {
    /// The shares of a grid's columns.
    pub fn shares(&self, key: &str, columns: &[GridColumn]) -> Vec<f32> {
        match self.shares.get(key) {
            Some(s) if s.len() == columns.len() => s.clone(),
            _ => columns.iter().map(|c| f32::from(c.portion)).collect(),
        }
    }

    /// Column `i`'s width as a portion for `Length::FillPortion`.
    pub fn portion(&self, key: &str, columns: &[GridColumn], i: usize) -> u16 {
        let shares = self.shares(key, columns);
        let total: f32 = shares.iter().sum();
        shares
            .get(i)
            .map(|s| ((s / total.max(f32::EPSILON)) * 1000.0).round().max(1.0) as u16)
            .unwrap_or(1)
    }

    pub fn update(&mut self, resize: Resize) {
        match resize {
            Resize::Moved(x) => {
                self.pointer_x = x;
                let Some(drag) = &self.drag else {
                    return;
                };
                let i = drag.column;
                let (a, b) = (drag.start[i], drag.start[i + 1]);
                let total: f32 = drag.start.iter().sum();
                let min = total * MIN_SHARE;
                let delta = (x - drag.from_x) / drag.px_per_share;
                if a + b <= 2.0 * min {
                    return;
                }
                let left = (a + delta).clamp(min, a + b - min);
                let mut shares = drag.start.clone();
                shares[i] = left;
                shares[i + 1] = a + b - left;
                self.shares.insert(drag.key, shares);
            }
            Resize::Start(key, columns, column) => {
                let shares = self.shares(key, columns);
                if column + 1 >= shares.len() {
                    return;
                }
                // The pointer is on the border after `column`: the header is as many pixels
                // wide per share as the pointer is from its left edge per share before it.
                let before: f32 = shares[..=column].iter().sum();
                if self.pointer_x <= 0.0 || before <= 0.0 {
                    return;
                }
                self.drag = Some(Drag {
                    key,
                    column,
                    from_x: self.pointer_x,
                    px_per_share: self.pointer_x / before,
                    start: shares,
                });
            }
            Resize::End => self.drag = None,
        }
    }
}

/// The header of the grid `key`: a click on a title sorts by it; the border after a column drags
/// to resize it against the next one.
pub fn header<'a, M: Clone + 'a>(
    key: &'static str,
    columns: &'static [GridColumn],
    widths: &ColumnWidths,
    sort: Sort,
    on_sort: impl Fn(usize) -> M,
    on_resize: fn(Resize) -> M,
) -> Element<'a, M> {
    let last = columns.len().saturating_sub(1);
    let cells = columns.iter().enumerate().map(|(i, c)| {
        let arrow = if sort.column == i {
            if sort.ascending { " ▲" } else { " ▼" }
        } else {
            ""
        };
        let title = button(
            text(format!("{}{arrow}", c.title))
                .size(style::SMALL)
                .font(style::bold())
                .wrapping(text::Wrapping::None),
        )
        .padding([4, 6])
        .width(Length::Fill)
        .clip(true)
        .style(style::flat(false))
        .on_press(on_sort(i));
        let mut cell = row![title].align_y(Alignment::Center);
        if i < last {
            cell = cell.push(
                mouse_area(
                    container(rule::vertical(1))
                        .width(7)
                        .height(18)
                        .align_x(Alignment::Center),
                )
                .interaction(mouse::Interaction::ResizingHorizontally)
                .on_press(on_resize(Resize::Start(key, columns, i))),
            );
        }
        container(cell)
            .width(Length::FillPortion(widths.portion(key, columns, i)))
            .into()
    });
    mouse_area(
        container(row(cells).spacing(0))
            .width(Length::Fill)
            .style(style::grid_header),
    )
    .on_move(move |p| on_resize(Resize::Moved(p.x)))
    .on_release(on_resize(Resize::End))
    .on_exit(on_resize(Resize::End))
    .into()
}

/// A text cell, clipped to one line.
pub fn cell<'a, M: 'a>(value: impl Into<String>, portion: u16) -> Element<'a, M> {
    container(
        text(value.into())
            .size(style::TEXT)
            .wrapping(text::Wrapping::None),
    )
    .padding([0, 6])
    .width(Length::FillPortion(portion))
    .clip(true)
    .into()
}

/// A cell holding any element.
pub fn cell_with<'a, M: 'a>(content: impl Into<Element<'a, M>>, portion: u16) -> Element<'a, M> {
    container(content)
        .padding([0, 6])
        .width(Length::FillPortion(portion))
        .clip(true)
        .into()
}

/// One row: selection highlight, click, double-click and right-click.
pub fn grid_row<'a, M: Clone + 'a>(
    cells: Vec<Element<'a, M>>,
    selected: bool,
    on_select: M,
    on_open: Option<M>,
    on_menu: Option<M>,
) -> Element<'a, M> {
    let content = container(row(cells).align_y(Alignment::Center))
        .height(style::ROW_HEIGHT)
        .align_y(Alignment::Center)
        .width(Length::Fill)
        .style(style::row_style(selected));
    let mut area = mouse_area(content).on_press(on_select);
    if let Some(open) = on_open {
        area = area.on_double_click(open);
    }
    if let Some(menu) = on_menu {
        area = area.on_right_press(menu);
    }
    area.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clicking_a_column_sorts_then_flips() {
        let mut sort = Sort::default();
        sort.click(0);
        assert!(!sort.ascending);
        sort.click(3);
        assert_eq!(
            sort,
            Sort {
                column: 3,
                ascending: true
            }
        );
        assert_eq!(sort.apply(Ordering::Less), Ordering::Less);
        sort.click(3);
        assert_eq!(sort.apply(Ordering::Less), Ordering::Greater);
        assert_eq!(text_order("abc", "ABD"), Ordering::Less);
    }

    #[test]
    fn dragging_a_border_moves_width_between_its_two_columns() {
        static COLUMNS: [GridColumn; 3] = [col("A", 2), col("B", 2), col("C", 4)];
        let mut w = ColumnWidths::default();
        assert_eq!(w.shares("g", &COLUMNS), vec![2.0, 2.0, 4.0]);
        // A header 800 px wide: the border after A is at 200 px (100 px per share).
        w.update(Resize::Moved(200.0));
        w.update(Resize::Start("g", &COLUMNS, 0));
        w.update(Resize::Moved(300.0));
        assert_eq!(w.shares("g", &COLUMNS), vec![3.0, 1.0, 4.0]);
        // Never past the next column's minimum, whatever the pointer does.
        w.update(Resize::Moved(5000.0));
        let s = w.shares("g", &COLUMNS);
        assert!((s[1] - 8.0 * MIN_SHARE).abs() < 1e-4, "{s:?}");
        assert!((s[0] + s[1] - 4.0).abs() < 1e-4);
        w.update(Resize::End);
        // Moving without a drag changes nothing; other grids keep their own widths.
        w.update(Resize::Moved(10.0));
        assert_eq!(w.shares("g", &COLUMNS)[2], 4.0);
        assert_eq!(w.shares("other", &COLUMNS), vec![2.0, 2.0, 4.0]);
        assert!(w.portion("g", &COLUMNS, 0) > w.portion("other", &COLUMNS, 0));
        // The last column has no border after it.
        w.update(Resize::Start("g", &COLUMNS, 2));
        assert_eq!(w.drag, None);
    }
}
