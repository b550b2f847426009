//! The results pane's grid: a header with sortable columns and rows that select on click,
//! open on double-click and offer a context menu on right-click.

use std::cmp::Ordering;

use iced::widget::{button, container, mouse_area, row, text};
use iced::{Alignment, Element, Length};

use crate::ui::widget::style;

#[derive(Debug, Clone, Copy)]
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

pub fn header<'a, M: Clone + 'a>(
    columns: &[GridColumn],
    sort: Sort,
    on_sort: impl Fn(usize) -> M,
) -> Element<'a, M> {
    let cells = columns.iter().enumerate().map(|(i, c)| {
        let arrow = if sort.column == i {
            if sort.ascending { " ▲" } else { " ▼" }
        } else {
            ""
        };
        button(
            text(format!("{}{arrow}", c.title))
                .size(style::SMALL)
                .font(style::bold()),
        )
        .padding([4, 6])
        .width(Length::FillPortion(c.portion))
        .style(style::flat(false))
        .on_press(on_sort(i))
        .into()
    });
    container(row(cells).spacing(0))
        .width(Length::Fill)
        .style(style::grid_header)
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
}
