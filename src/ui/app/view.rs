//! The shell's layout: ribbon, navigation pane, results and details panes, notices, status bar,
//! and the menus and dialogs layered over them.

use super::menu::{MENU_ITEM_HEIGHT, MENU_WIDTH};
use super::*;
use iced::widget::{
    button, center, column, container, mouse_area, opaque, pin, progress_bar, row, space, stack,
    text,
};

impl App {
    pub fn view(&self) -> Element<'_, Message> {
        let started = Instant::now();
        let view = self.shell();
        self.metrics.view.record(started.elapsed());
        view
    }

    pub(super) fn shell(&self) -> Element<'_, Message> {
        let selection = self
            .fabric_ws
            .current_service(&self.fabric)
            .filter(|_| self.prefs.workspace == Workspace::Fabric)
            .and_then(|id| self.fabric.network_services.get(&id))
            .map(|s| s.name.as_str());
        let ribbon = self
            .ribbon
            .view(selection, self.prefs.theme)
            .map(Message::Ribbon);
        let data = fabric_workspace::Data {
            fabric: &self.fabric,
            statuses: &self.sync.statuses,
            jobs: &self.sync.jobs,
        };
        let (tree, main): (Element<'_, Message>, Element<'_, Message>) = match self.prefs.workspace
        {
            Workspace::Fabric => (
                self.fabric_ws.tree(&data).map(Message::Fabric),
                match &self.compare {
                    Some(c) => container(c.view().map(Message::Compare))
                        .height(Length::Fill)
                        .width(Length::Fill)
                        .into(),
                    None => self.fabric_main(&data),
                },
            ),
            Workspace::Jobs => (
                container(style::hint(
                    "Every sync run of every network service, newest first.",
                ))
                .padding(8)
                .into(),
                self.jobs_ws
                    .view(&self.sync.jobs, &self.fabric)
                    .map(Message::Jobs),
            ),
            Workspace::Settings => (
                self.settings_ws.navigation().map(Message::Settings),
                container(
                    self.settings_ws
                        .view(
                            &self.fabric,
                            &self.providers,
                            self.ctx.embedded_ipam.as_ref(),
                            &self.ctx.secrets.location(),
                            self.ctx.store.describe(),
                        )
                        .map(Message::Settings),
                )
                .style(style::pane)
                .height(Length::Fill)
                .width(Length::Fill)
                .into(),
            ),
        };
        let workspace_buttons = column(Workspace::ALL.iter().map(|ws| {
            let icon = match ws {
                Workspace::Fabric => style::Icon::Network,
                Workspace::Jobs => style::Icon::History,
                Workspace::Settings => style::Icon::Settings,
            };
            button(
                row![
                    style::icon(icon, 15),
                    text(ws.label())
                        .size(style::TEXT)
                        .font(if *ws == self.prefs.workspace {
                            style::bold()
                        } else {
                            iced::Font::DEFAULT
                        })
                ]
                .spacing(8)
                .align_y(iced::Alignment::Center),
            )
            .width(Length::Fill)
            .padding([6, 12])
            .style(style::flat(*ws == self.prefs.workspace))
            .on_press(Message::ShowWorkspace(*ws))
            .into()
        }))
        .spacing(1);
        let nav = container(column![
            container(
                text(self.prefs.workspace.label())
                    .size(style::HEADING)
                    .font(style::bold())
            )
            .padding([6, 10]),
            container(tree).height(Length::Fill),
            iced::widget::rule::horizontal(1),
            container(workspace_buttons).padding(4),
        ])
        .width(250)
        .height(Length::Fill)
        .style(style::pane);

        let mut main_column = column![].spacing(6);
        if let Some((tone, message)) = &self.notice {
            main_column = main_column.push(
                container(
                    row![
                        style::status_dot(*tone),
                        text(message.clone()).size(style::TEXT).width(Length::Fill),
                        button(text("Dismiss").size(style::SMALL))
                            .padding([2, 8])
                            .style(style::flat(false))
                            .on_press(Message::DismissNotice),
                    ]
                    .spacing(8)
                    .align_y(Alignment::Center),
                )
                .padding([4, 10])
                .style(style::notice_box(*tone)),
            );
        }
        main_column = main_column.push(main);
        let body = row![nav, main_column]
            .spacing(6)
            .padding(6)
            .height(Length::Fill);

        let root = column![ribbon, body, self.status_bar()];
        let mut layers = stack![
            mouse_area(container(root).width(Length::Fill).height(Length::Fill))
                .on_move(Message::CursorMoved)
        ]
        .width(Length::Fill)
        .height(Length::Fill);

        if let Some(menu) = &self.context_menu {
            layers = layers.push(opaque(
                mouse_area(space().width(Length::Fill).height(Length::Fill))
                    .on_press(Message::CloseMenu)
                    .on_right_press(Message::CloseMenu),
            ));
            let items = column(menu.items().into_iter().map(|item| {
                button(text(item.label()).size(style::TEXT))
                    .width(Length::Fill)
                    .height(MENU_ITEM_HEIGHT)
                    .padding([4, 12])
                    .style(style::flat(false))
                    .on_press(Message::Menu(item))
                    .into()
            }));
            layers = layers.push(
                pin(opaque(
                    container(items)
                        .padding(5)
                        .width(MENU_WIDTH)
                        .style(style::menu),
                ))
                .x(menu.position.x)
                .y(menu.position.y),
            );
        }
        if let Some(modal) = &self.modal {
            let content: Element<'_, Message> = match modal {
                Modal::Wizard(w) => w.view().map(Message::Wizard),
                Modal::Properties(p) => p
                    .view(self.sync.statuses.get(&p.service_id()))
                    .map(Message::Properties),
                Modal::Preview(p) => p.view().map(Message::Preview),
                Modal::Exchange(x) => x.view().map(Message::Exchange),
                Modal::ConfirmRemove { name, removing, .. } => style::dialog_window(
                    column![
                        style::heading("Remove network service"),
                        text(format!(
                            "Remove the network service \"{name}\"? The console stops syncing with it; nothing is deleted on the IPAM server."
                        ))
                        .size(style::TEXT),
                        row![
                            space().width(Length::Fill),
                            style::default_command("Yes", (!removing).then_some(Message::ConfirmRemove(true))),
                            style::command("No", (!removing).then_some(Message::ConfirmRemove(false))),
                        ]
                        .spacing(8),
                    ]
                    .spacing(12),
                    460,
                )
                .into(),
            };
            layers = layers.push(opaque(
                center(container(content).id(focus::MODAL_ID)).style(style::backdrop),
            ));
        }
        let screen_dialog = self
            .admin
            .modal(&self.fabric)
            .map(|m| m.map(Message::Admin))
            .or_else(|| self.settings_ws.modal().map(|m| m.map(Message::Settings)))
            .or_else(|| {
                self.compare
                    .as_ref()
                    .and_then(|c| c.modal())
                    .map(|m| m.map(Message::Compare))
            });
        if let Some(content) = screen_dialog {
            layers = layers.push(opaque(
                center(container(content).id(focus::MODAL_ID)).style(style::backdrop),
            ));
        }
        layers.into()
    }

    /// The Fabric workspace's results and details panes; the fabric administration's lists for
    /// the nodes that hold host groups, logical networks, sites, pools and VM networks.
    pub(super) fn fabric_main<'a>(
        &'a self,
        data: &fabric_workspace::Data<'a>,
    ) -> Element<'a, Message> {
        let tabs = admin_tabs(self.fabric_ws.node);
        let (results, details): (Element<'a, Message>, Element<'a, Message>) = if tabs.is_empty() {
            (
                self.fabric_ws.results(data).map(Message::Fabric),
                self.fabric_ws.details(data).map(Message::Fabric),
            )
        } else {
            (
                self.admin.list(&self.fabric, tabs).map(Message::Admin),
                self.admin.details(&self.fabric).map(Message::Admin),
            )
        };
        column![
            container(results)
                .height(Length::FillPortion(3))
                .width(Length::Fill)
                .style(style::pane),
            container(details)
                .height(Length::FillPortion(2))
                .width(Length::Fill)
                .style(style::pane),
        ]
        .spacing(6)
        .into()
    }

    pub(super) fn status_bar(&self) -> Element<'_, Message> {
        let (line, fraction) = match &self.activity {
            Some((_, line, fraction)) => (line.clone(), *fraction),
            None => {
                let total = self.fabric.network_services.len();
                let in_sync = self
                    .sync
                    .statuses
                    .values()
                    .filter(|s| s.state == SyncState::InSync)
                    .count();
                (
                    format!("Ready · {total} network services, {in_sync} in sync"),
                    None,
                )
            }
        };
        let mut bar = row![text(line).size(style::SMALL).width(Length::Fill)]
            .spacing(10)
            .align_y(Alignment::Center);
        if self.activity.is_some() {
            bar = bar.push(
                progress_bar(0.0..=1.0, fraction.unwrap_or(0.0))
                    .length(220)
                    .girth(8),
            );
        }
        let last_job = self.sync.jobs.first().map(|j| {
            format!(
                "Last job: {} {} ({})",
                j.service_name,
                j.result.label(),
                style::format_time(j.finished.or(Some(j.started)))
            )
        });
        if let Some(j) = last_job {
            bar = bar.push(style::hint(j));
        }
        container(bar)
            .padding([3, 10])
            .height(26)
            .width(Length::Fill)
            .style(style::band)
            .into()
    }
}
