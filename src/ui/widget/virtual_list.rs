//! A scrolling list that builds only the rows in sight: fixed row height, a scrollable whose
//! content is a spacer, the visible slice and a spacer, and the viewport tracked through
//! `on_scroll`. A list of 100 000 rows costs what a list of 40 does.

use std::ops::Range;

use iced::widget::scrollable::Viewport;
use iced::widget::{Column, column, scrollable, space};
use iced::{Element, Length};

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
