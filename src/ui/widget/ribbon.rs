//! The ribbon: Home (Show, Add, Window, and the selected network service's actions) and View.

use iced::widget::{button, column, container, row, rule, text};
use iced::{Alignment, Element, Length};

use crate::ui::preferences::ThemeChoice;
use crate::ui::widget::style;

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
    pub fn update(&mut self, message: Message) -> Option<Action> {
        match message {
            Message::Tab(t) => {
                self.tab = t;
                None
            }
            Message::Action(a) => Some(a),
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
                let selected = selection.is_some();
                let act = |a: Action| selected.then_some(Message::Action(a));
                row![
                    group(
                        "Show",
                        row![big(
                            "▤",
                            "Fabric Resources",
                            Some(Message::Action(Action::ShowFabricResources))
                        )]
                    ),
                    separator(),
                    group(
                        "Add",
                        row![big(
                            "+",
                            "Add Resources ▾",
                            Some(Message::Action(Action::AddResources))
                        )]
                    ),
                    separator(),
                    group(
                        "Window",
                        row![
                            big("≣", "Jobs", Some(Message::Action(Action::ShowJobs))),
                            big("⚙", "Settings", Some(Message::Action(Action::ShowSettings))),
                        ]
                        .spacing(2)
                    ),
                    separator(),
                    group(
                        "Fabric",
                        row![
                            big("↓", "Import...", Some(Message::Action(Action::Import))),
                            big("↑", "Export...", Some(Message::Action(Action::Export))),
                        ]
                        .spacing(2)
                    ),
                    separator(),
                    group(
                        selection.unwrap_or("Network Service"),
                        row![
                            big("⟳", "Refresh", act(Action::Refresh)),
                            big("⇄", "Preview", act(Action::Preview)),
                            big("◫", "Side-by-side", act(Action::Compare)),
                            big("✕", "Remove", act(Action::Remove)),
                            big("☰", "Properties", act(Action::Properties)),
                        ]
                        .spacing(2)
                    ),
                ]
                .spacing(6)
                .height(Length::Fill)
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

fn big<'a>(glyph: &'a str, label: &'a str, on_press: Option<Message>) -> Element<'a, Message> {
    button(
        column![text(glyph).size(18), text(label).size(style::SMALL)]
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
