//! Summary page: every setting of the wizard, for review before Finish. Secrets are masked;
//! the page is built from the account's name and user name only, so a secret cannot appear.

use iced::widget::{column, container, scrollable};
use iced::{Element, Length};

use crate::ui::widget::style;

/// What the Summary shows for the Run As account's password or token.
pub const SECRET_MASK: &str = "********";

#[derive(Debug, Clone, Default)]
pub struct SummaryPage {
    pub lines: Vec<(String, String)>,
}

impl SummaryPage {
    pub fn validate(&self) -> Result<(), String> {
        Ok(())
    }

    pub fn view<M: 'static>(&self) -> Element<'_, M> {
        let lines = column(
            self.lines
                .iter()
                .map(|(label, value)| style::field_line(format!("{label}:"), value.clone())),
        )
        .spacing(6);
        column![
            style::heading("Summary"),
            style::hint("Confirm the settings, then click Finish to add the network service."),
            container(scrollable(lines.padding(10)).height(Length::Fill))
                .height(Length::Fill)
                .width(Length::Fill)
                .style(style::pane),
        ]
        .spacing(8)
        .into()
    }
}
