//! Host Group page: the host groups this IPAM server integrates, or all of them.

use iced::Element;
use iced::widget::column;

use crate::ui::widget::host_group_tree::{HostGroupTree, Message};
use crate::ui::widget::style;

pub fn view(tree: &HostGroupTree) -> Element<'_, Message> {
    column![
        style::heading("Host Group"),
        style::hint(
            "Select the host groups for which the IPAM server and this console are integrated."
        ),
        tree.checklist(),
    ]
    .spacing(8)
    .into()
}
