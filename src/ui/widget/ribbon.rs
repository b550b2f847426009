//! The ribbon: Home (Show, Add, Window, and the selected network service's actions) and View.

use iced::widget::{button, column, container, row, rule, text};
use iced::{Alignment, Element, Length, Task};

use crate::ui::preferences::ThemeChoice;
use crate::ui::widget::style::{self, Icon};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tab {
    #[default]
    Home,
    View,
}

/// What a ribbon command asks of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    ShowFabricResources,
    /// Open the Add Resources dropdown.
    AddResources,
    AddNetworkService,
    ShowJobs,
    ShowSettings,
    Refresh,
    Preview,
    Remove,
    Properties,
    /// The selected service's side-by-side view.
    Compare,
    /// Import / export the whole fabric through a file.
    Import,
    Export,
    Theme(ThemeChoice),
}

#[derive(Debug, Clone, Default)]
pub struct Ribbon {
    pub tab: Tab,
}

#[derive(Debug, Clone)]
pub enum Message {
    Tab(Tab),
    Action(Action),
}

impl Ribbon {
    /// The update contract of every screen and dialog: a task, and an event for the shell
    /// (here the action a button asked for).
    pub fn update(&mut self, message: Message) -> (Task<Message>, Option<Action>) {
        match message {
            Message::Tab(t) => {
                self.tab = t;
                (Task::none(), None)
            }
            Message::Action(a) => (Task::none(), Some(a)),
        }
    }

    /// `selection`: the selected network service's name, which enables its actions.
    pub fn view<'a>(
        &'a self,
        selection: Option<&'a str>,
        theme: ThemeChoice,
    ) -> Element<'a, Message> {
        let tab = |label: &'static str, t: Tab| {
            button(text(label).size(style::TEXT).font(if self.tab == t {
                style::bold()
            } else {
                iced::Font::DEFAULT
            }))
            .padding([4, 14])
            .style(style::flat(self.tab == t))
            .on_press(Message::Tab(t))
        };
        let tabs = row![tab("Home", Tab::Home), tab("View", Tab::View)].spacing(2);
        let groups: Element<'a, Message> = match self.tab {
            Tab::Home => {
                let mut home = row![].spacing(6).height(Length::Fill);
                for (label, buttons) in HOME_GROUPS {
                    home = home.push(big_group(label, buttons, true)).push(separator());
                }
                // The selected network service's actions, named after it.
                home.push(big_group(
                    selection.unwrap_or("Network Service"),
                    &SERVICE_BUTTONS,
                    selection.is_some(),
                ))
                .into()
            }
            Tab::View => row![group(
                "Theme",
                row(ThemeChoice::ALL.iter().map(|c| {
                    button(text(c.label()).size(style::TEXT))
                        .padding([6, 10])
                        .style(style::flat(*c == theme))
                        .on_press(Message::Action(Action::Theme(*c)))
                        .into()
                }))
                .spacing(2)
            )]
            .height(Length::Fill)
            .into(),
        };
        column![
            container(tabs).padding([2, 6]),
            container(groups)
                .padding([4, 8])
                .height(80)
                .width(Length::Fill)
                .style(style::band),
        ]
        .into()
    }
}

/// A ribbon button: its icon, its label and what it asks of the console.
type BigButton = (Icon, &'static str, Action);

/// The Home tab's groups before the selected service's.
const HOME_GROUPS: [(&str, &[BigButton]); 4] = [
    (
        "Show",
        &[(
            Icon::LayoutList,
            "Fabric Resources",
            Action::ShowFabricResources,
        )],
    ),
    (
        "Add",
        &[(Icon::Plus, "Add Resources ▾", Action::AddResources)],
    ),
    (
        "Window",
        &[
            (Icon::History, "Jobs", Action::ShowJobs),
            (Icon::Settings, "Settings", Action::ShowSettings),
        ],
    ),
    (
        "Fabric",
        &[
            (Icon::Download, "Import...", Action::Import),
            (Icon::Upload, "Export...", Action::Export),
        ],
    ),
];

/// The selected network service's actions.
const SERVICE_BUTTONS: [BigButton; 5] = [
    (Icon::RefreshCw, "Refresh", Action::Refresh),
    (Icon::FileDiff, "Preview", Action::Preview),
    (Icon::Columns2, "Side-by-side", Action::Compare),
    (Icon::Trash2, "Remove", Action::Remove),
    (Icon::SlidersHorizontal, "Properties", Action::Properties),
];

/// A labelled group of big buttons, all enabled or all disabled.
fn big_group<'a>(label: &'a str, buttons: &'a [BigButton], enabled: bool) -> Element<'a, Message> {
    group(
        label,
        row(buttons.iter().map(|(icon, label, action)| {
            big(*icon, label, enabled.then_some(Message::Action(*action)))
        }))
        .spacing(2),
    )
}

fn big<'a>(icon: Icon, label: &'a str, on_press: Option<Message>) -> Element<'a, Message> {
    button(
        column![style::icon(icon, 20), text(label).size(style::SMALL)]
            .align_x(Alignment::Center)
            .spacing(1),
    )
    .padding([3, 8])
    .style(style::flat(false))
    .on_press_maybe(on_press)
    .into()
}

fn group<'a>(label: &'a str, content: impl Into<Element<'a, Message>>) -> Element<'a, Message> {
    column![
        container(content).height(52).align_y(Alignment::Center),
        text(label.to_string())
            .size(11)
            .style(|theme: &iced::Theme| text::Style {
                color: Some(style::muted_text(theme))
            }),
    ]
    .align_x(Alignment::Center)
    .spacing(2)
    .into()
}

fn separator<'a>() -> Element<'a, Message> {
    rule::vertical(1).into()
}
