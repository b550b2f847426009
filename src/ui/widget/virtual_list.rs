//! A scrolling list that builds only the rows in sight: fixed row height, a scrollable whose
//! content is a spacer, the visible slice and a spacer, and the viewport tracked through
//! `on_scroll`. A list of 100 000 rows costs what a list of 40 does.

use std::ops::Range;

use iced::widget::scrollable::{AbsoluteOffset, Viewport};
use iced::widget::{Column, column, scrollable, space};
use iced::{Element, Length, Task, keyboard};

/// A move of the selection in a list: arrow keys, Page Up/Down, Home and End.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Up,
    Down,
    PageUp,
    PageDown,
    Home,
    End,
}

impl Step {
    /// The step a key asks for (without Ctrl, Alt or the logo key, which mean something else).
    pub fn of_key(key: &keyboard::Key, modifiers: keyboard::Modifiers) -> Option<Step> {
        use keyboard::key::Named;
        if modifiers.control() || modifiers.alt() || modifiers.logo() {
            return None;
        }
        match key {
            keyboard::Key::Named(Named::ArrowUp) => Some(Step::Up),
            keyboard::Key::Named(Named::ArrowDown) => Some(Step::Down),
            keyboard::Key::Named(Named::PageUp) => Some(Step::PageUp),
            keyboard::Key::Named(Named::PageDown) => Some(Step::PageDown),
            keyboard::Key::Named(Named::Home) => Some(Step::Home),
            keyboard::Key::Named(Named::End) => Some(Step::End),
            _ => None,
        }
    }

    /// The row selected after the step, in a list of `total` rows of which `page` fit in view.
    /// With nothing selected, Down, Page Down and Home go to the first row; Up and End to the last.
    pub fn apply(self, current: Option<usize>, total: usize, page: usize) -> Option<usize> {
        if total == 0 {
            return None;
        }
        let last = total - 1;
        let page = page.max(1);
        Some(match (self, current.map(|c| c.min(last))) {
            (Step::Home, _) => 0,
            (Step::End, _) => last,
            (Step::Up, None) => last,
            (Step::Down | Step::PageDown, None) => 0,
            (Step::PageUp, None) => 0,
            (Step::Up, Some(c)) => c.saturating_sub(1),
            (Step::Down, Some(c)) => (c + 1).min(last),
            (Step::PageUp, Some(c)) => c.saturating_sub(page),
            (Step::PageDown, Some(c)) => (c + page).min(last),
        })
    }
}

/// Rows drawn above and below the viewport so a fast wheel turn never shows a gap.
const OVERSCAN: usize = 4;
/// Height assumed before the scrollable has reported its size (taller than most screens).
const UNKNOWN_VIEWPORT: f32 = 2000.0;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VirtualList {
    pub row_height: f32,
    /// Distance scrolled from the top, in pixels.
    pub offset: f32,
    /// Height of the visible area as last reported; `None` until the first report.
    pub viewport: Option<f32>,
}

impl VirtualList {
    pub fn new(row_height: f32) -> Self {
        VirtualList {
            row_height,
            offset: 0.0,
            viewport: None,
        }
    }

    /// Remember where the scrollable is.
    pub fn scrolled(&mut self, viewport: Viewport) {
        self.offset = viewport.absolute_offset().y.max(0.0);
        self.viewport = Some(viewport.bounds().height);
    }

    /// Back to the top (after the rows changed under the list).
    pub fn reset(&mut self) {
        self.offset = 0.0;
    }

    /// The rows to build for a list of `total` rows. A list that fits never reports its
    /// viewport, so until it does a generous height is assumed.
    pub fn visible(&self, total: usize) -> Range<usize> {
        let height = self
            .viewport
            .unwrap_or(UNKNOWN_VIEWPORT)
            .max(self.row_height);
        let in_view = (height / self.row_height).ceil() as usize + 1;
        let first = ((self.offset / self.row_height).floor() as usize).saturating_sub(OVERSCAN);
        let count = in_view + 2 * OVERSCAN;
        let first = first.min(total.saturating_sub(count.min(total)));
        first..(first + count).min(total)
    }

    /// Scroll offset that brings row `index` into view, if it is not.
    pub fn offset_to_show(&self, index: usize) -> Option<f32> {
        let top = index as f32 * self.row_height;
        let height = self.viewport.unwrap_or(UNKNOWN_VIEWPORT);
        if top < self.offset {
            Some(top)
        } else if top + self.row_height > self.offset + height {
            Some(top + self.row_height - height)
        } else {
            None
        }
    }

    /// Rows that fit in the visible area (at least one).
    pub fn page(&self) -> usize {
        self.viewport
            .map(|h| (h / self.row_height).floor() as usize)
            .unwrap_or(1)
            .saturating_sub(1)
            .max(1)
    }

    /// Moves a selection of `current` among `total` rows by `step`: the new row, and the task
    /// that scrolls the list with `id` so the row is in view.
    pub fn step<M: Send + 'static>(
        &mut self,
        id: &'static str,
        step: Step,
        current: Option<usize>,
        total: usize,
    ) -> (Option<usize>, Task<M>) {
        let next = step.apply(current, total, self.page());
        let task = match next.and_then(|i| self.offset_to_show(i)) {
            Some(y) => {
                // Known at once, so the rows built next already include the selected one.
                self.offset = y;
                iced::widget::operation::scroll_to(id, AbsoluteOffset { x: 0.0, y })
            }
            None => Task::none(),
        };
        (next, task)
    }

    /// The scrollable: a spacer for the rows above, the visible rows, a spacer for those below.
    pub fn view<'a, M: 'a>(
        &self,
        id: &'static str,
        total: usize,
        row: impl Fn(usize) -> Element<'a, M>,
        on_scroll: impl Fn(Viewport) -> M + 'a,
    ) -> Element<'a, M> {
        let range = self.visible(total);
        let above = range.start as f32 * self.row_height;
        let below = (total - range.end) as f32 * self.row_height;
        let mut content: Column<'a, M> = column![space().height(above)].width(Length::Fill);
        for i in range {
            content = content.push(row(i));
        }
        content = content.push(space().height(below));
        scrollable(content)
            .id(id)
            .on_scroll(on_scroll)
            .height(Length::Fill)
            .width(Length::Fill)
            .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_move_the_selection_within_the_list() {
        use Step::*;
        assert_eq!(Down.apply(None, 10, 4), Some(0));
        assert_eq!(Up.apply(None, 10, 4), Some(9));
        assert_eq!(Down.apply(Some(3), 10, 4), Some(4));
        assert_eq!(Down.apply(Some(9), 10, 4), Some(9));
        assert_eq!(Up.apply(Some(0), 10, 4), Some(0));
        assert_eq!(PageDown.apply(Some(3), 10, 4), Some(7));
        assert_eq!(PageDown.apply(Some(8), 10, 4), Some(9));
        assert_eq!(PageUp.apply(Some(3), 10, 4), Some(0));
        assert_eq!(Home.apply(Some(5), 10, 4), Some(0));
        assert_eq!(End.apply(Some(5), 10, 4), Some(9));
        // A selection past the end (rows were removed) counts from the last row.
        assert_eq!(Up.apply(Some(40), 10, 4), Some(8));
        assert_eq!(Down.apply(None, 0, 4), None);
        let none = keyboard::Modifiers::default();
        let key = |n| keyboard::Key::Named(n);
        use keyboard::key::Named;
        assert_eq!(Step::of_key(&key(Named::PageDown), none), Some(PageDown));
        assert_eq!(
            Step::of_key(&key(Named::Home), keyboard::Modifiers::CTRL),
            None
        );
        assert_eq!(Step::of_key(&key(Named::F5), none), None);
    }

    #[test]
    fn a_step_scrolls_the_row_into_view() {
        let mut list = VirtualList::new(20.0);
        list.viewport = Some(200.0);
        assert_eq!(list.page(), 9);
        let (next, _) = list.step::<()>("rows", Step::End, Some(0), 100);
        assert_eq!(next, Some(99));
        assert_eq!(list.offset, 100.0 * 20.0 - 200.0);
        let (next, _) = list.step::<()>("rows", Step::Home, next, 100);
        assert_eq!(next, Some(0));
        assert_eq!(list.offset, 0.0);
    }

    #[test]
    fn only_the_rows_in_sight_are_built() {
        let mut list = VirtualList::new(20.0);
        list.viewport = Some(200.0);
        assert_eq!(list.visible(100_000), 0..19);
        list.offset = 20_000.0;
        let r = list.visible(100_000);
        assert_eq!(r.start, 1000 - OVERSCAN);
        assert!(r.len() <= 11 + 2 * OVERSCAN);
        list.offset = 20.0 * 100_000.0;
        let r = list.visible(100_000);
        assert_eq!(r.end, 100_000, "the end of the list is reachable");
        assert!(list.visible(5) == (0..5));
        assert!(list.visible(0).is_empty());
    }

    #[test]
    fn a_row_out_of_view_is_scrolled_to() {
        let mut list = VirtualList::new(20.0);
        list.viewport = Some(200.0);
        assert_eq!(list.offset_to_show(3), None);
        assert_eq!(list.offset_to_show(50), Some(51.0 * 20.0 - 200.0));
        list.offset = 400.0;
        assert_eq!(list.offset_to_show(2), Some(40.0));
    }
}
