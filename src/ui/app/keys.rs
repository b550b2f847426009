//! The console's keys: F5, Escape, Delete, Alt+Enter, Ctrl+N and Enter for the shell, and
//! Tab, Enter, Escape and Ctrl+F for the dialogs and the side-by-side view.

use super::*;
use crate::ui::widget::virtual_list::Step;

/// Keys the console answers when no widget took them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAction {
    RefreshSelected,
    Escape,
    AddNetworkService,
    RemoveSelected,
    PropertiesSelected,
    /// Enter: the open wizard's Next (or Finish on Summary).
    Submit,
    /// Arrow keys, Page Up/Down, Home, End: move the selection in the list in view.
    Step(Step),
}

/// F5 refreshes, Escape closes, Ctrl+N adds a network service, Delete removes, Alt+Enter opens
/// Properties, Enter moves the wizard on.
pub fn key_action(key: &keyboard::Key, modifiers: keyboard::Modifiers) -> Option<KeyAction> {
    use keyboard::key::Named;
    match key {
        keyboard::Key::Named(Named::F5) => Some(KeyAction::RefreshSelected),
        keyboard::Key::Named(Named::Escape) => Some(KeyAction::Escape),
        keyboard::Key::Named(Named::Delete) => Some(KeyAction::RemoveSelected),
        keyboard::Key::Named(Named::Enter) if modifiers.alt() => {
            Some(KeyAction::PropertiesSelected)
        }
        keyboard::Key::Named(Named::Enter) => Some(KeyAction::Submit),
        _ if Step::of_key(key, modifiers).is_some() => {
            Step::of_key(key, modifiers).map(KeyAction::Step)
        }
        keyboard::Key::Character(c)
            if modifiers.command() && c.as_str().eq_ignore_ascii_case("n") =>
        {
            Some(KeyAction::AddNetworkService)
        }
        _ => None,
    }
}

pub(super) fn key_message(event: keyboard::Event) -> Option<Message> {
    match event {
        keyboard::Event::KeyPressed { key, modifiers, .. } => {
            key_action(&key, modifiers).map(Message::Key)
        }
        _ => None,
    }
}

/// Tab, Shift+Tab, Enter, Escape and Ctrl+F for dialogs and the side-by-side view. Escape
/// counts even when a text box took it, so a dialog closes while a field has the focus.
pub(super) fn dialog_key_event(
    event: iced::Event,
    status: iced::event::Status,
    _window: window::Id,
) -> Option<Message> {
    let iced::Event::Keyboard(keyboard::Event::KeyPressed { key, modifiers, .. }) = event else {
        return None;
    };
    let k = focus::dialog_key(&key, modifiers)?;
    let captured = status == iced::event::Status::Captured;
    (!captured || k == DialogKey::Cancel).then_some(Message::DialogKey(k, captured))
}

impl App {
    pub(super) fn key(&mut self, key: KeyAction) -> Task<Message> {
        // The screens' own dialogs answer their keys through `dialog_key`.
        if self.screen_dialog_open() {
            return Task::none();
        }
        if let KeyAction::Step(step) = key {
            return self.step(step);
        }
        if self.modal.is_none()
            && self.context_menu.is_none()
            && self.prefs.workspace == Workspace::Fabric
            && self.compare.is_none()
            && !admin_tabs(self.fabric_ws.node).is_empty()
            && let Some(id) = self.admin.selected
        {
            let kind = self.admin.tab.kind();
            match key {
                KeyAction::RemoveSelected => {
                    self.admin
                        .ask_delete(kind, id, &self.fabric, &self.ctx.store);
                    return Task::none();
                }
                KeyAction::PropertiesSelected => {
                    return self
                        .admin
                        .edit(kind, id, &self.fabric, &self.ctx.store)
                        .map(Message::Admin);
                }
                _ => {}
            }
        }
        match key {
            KeyAction::Escape => {
                if self.context_menu.take().is_some() {
                    return Task::none();
                }
                match &mut self.modal {
                    Some(Modal::Wizard(_)) => self.wizard_message(wizard::Message::Cancel),
                    Some(Modal::Properties(_)) | Some(Modal::Preview(_)) => {
                        self.modal = None;
                        Task::none()
                    }
                    Some(Modal::ConfirmRemove {
                        removing: false, ..
                    }) => {
                        self.modal = None;
                        Task::none()
                    }
                    _ => Task::none(),
                }
            }
            KeyAction::Submit => match &self.modal {
                Some(Modal::Wizard(w)) if w.run_as_dialog.is_none() && !w.confirm_cancel => {
                    let step = if w.page == wizard::Page::Summary {
                        wizard::Message::Finish
                    } else {
                        wizard::Message::Next
                    };
                    self.wizard_message(step)
                }
                // The other dialogs' default buttons: Save, Yes, Close.
                Some(Modal::Properties(_)) => {
                    self.handle(Message::Properties(properties::Message::Save))
                }
                Some(Modal::ConfirmRemove { .. }) => self.handle(Message::ConfirmRemove(true)),
                Some(Modal::Preview(_)) => self.handle(Message::Preview(preview::Message::Close)),
                _ => Task::none(),
            },
            _ if self.modal.is_some() => Task::none(),
            KeyAction::Step(_) => Task::none(),
            KeyAction::AddNetworkService => self.open_wizard(),
            KeyAction::RefreshSelected
            | KeyAction::RemoveSelected
            | KeyAction::PropertiesSelected => {
                if self.prefs.workspace != Workspace::Fabric {
                    return Task::none();
                }
                let Some(id) = self.fabric_ws.current_service(&self.fabric) else {
                    return Task::none();
                };
                let item = match key {
                    KeyAction::RefreshSelected => MenuItem::Refresh,
                    KeyAction::RemoveSelected => MenuItem::Remove,
                    _ => MenuItem::Properties,
                };
                self.service_action(item, id)
            }
        }
    }

    /// Moves the selection of the list in view: the side-by-side rows, an administration list,
    /// the network services or the jobs.
    fn step(&mut self, step: Step) -> Task<Message> {
        if self.modal.is_some() || self.context_menu.is_some() {
            return Task::none();
        }
        match self.prefs.workspace {
            Workspace::Fabric => {
                if let Some(c) = &mut self.compare {
                    return c.step(step).map(Message::Compare);
                }
                if !admin_tabs(self.fabric_ws.node).is_empty() {
                    return self.admin.step(step, &self.fabric).map(Message::Admin);
                }
                if self.fabric_ws.node == fabric_workspace::Node::NetworkService {
                    self.fabric_ws
                        .step_service(step, &self.fabric, &self.sync.statuses);
                }
                Task::none()
            }
            Workspace::Jobs => self.jobs_ws.step(step, &self.sync.jobs).map(Message::Jobs),
            Workspace::Settings => Task::none(),
        }
    }

    /// Keys of dialogs: Tab moves within the open dialog, Enter and Escape answer the screens'
    /// own dialogs (the shell's dialogs hear them through `key`), Ctrl+F finds in the side-by-side view.
    pub(super) fn dialog_key(&mut self, key: DialogKey, captured: bool) -> Task<Message> {
        let any_modal = self.modal.is_some() || self.screen_dialog_open();
        match key {
            DialogKey::Next if any_modal => focus::next(focus::MODAL_ID),
            DialogKey::Previous if any_modal => focus::previous(focus::MODAL_ID),
            DialogKey::Next => iced::widget::operation::focus_next(),
            DialogKey::Previous => iced::widget::operation::focus_previous(),
            DialogKey::Find => match &self.compare {
                Some(_) if !any_modal && self.prefs.workspace == Workspace::Fabric => {
                    CompareScreen::focus_search().map(Message::Compare)
                }
                _ => Task::none(),
            },
            DialogKey::Submit | DialogKey::Cancel => {
                if let Some(Modal::Exchange(x)) = &self.modal {
                    return match x.key_message(key) {
                        Some(m) => self.exchange_message(m),
                        None => Task::none(),
                    };
                }
                if self.admin.is_modal() {
                    return self
                        .admin
                        .key(key, &self.fabric, &self.ctx.store)
                        .map(Message::Admin);
                }
                if self.settings_ws.dialog.is_some() {
                    let m = if key == DialogKey::Submit {
                        run_as_dialog::Message::Save
                    } else {
                        run_as_dialog::Message::Cancel
                    };
                    return self.handle(Message::Settings(settings::Message::Dialog(m)));
                }
                if let Some(c) = &self.compare
                    && c.confirm.is_some()
                {
                    let m = compare::Message::ConfirmDelete(key == DialogKey::Submit);
                    return self.compare_message(m);
                }
                // A text box of a shell dialog kept Escape to itself: close the dialog anyway.
                if captured && key == DialogKey::Cancel && self.modal.is_some() {
                    return self.key(KeyAction::Escape);
                }
                Task::none()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyboard::key::Named;

    #[test]
    fn keys_map_to_console_actions() {
        let none = keyboard::Modifiers::default();
        assert_eq!(
            key_action(&keyboard::Key::Named(Named::F5), none),
            Some(KeyAction::RefreshSelected)
        );
        assert_eq!(
            key_action(&keyboard::Key::Named(Named::Escape), none),
            Some(KeyAction::Escape)
        );
        assert_eq!(
            key_action(
                &keyboard::Key::Named(Named::Enter),
                keyboard::Modifiers::ALT
            ),
            Some(KeyAction::PropertiesSelected)
        );
        assert_eq!(
            key_action(&keyboard::Key::Named(Named::Enter), none),
            Some(KeyAction::Submit)
        );
        assert_eq!(
            key_action(
                &keyboard::Key::Character("n".into()),
                keyboard::Modifiers::CTRL
            ),
            Some(KeyAction::AddNetworkService)
        );
        assert_eq!(
            key_action(&keyboard::Key::Character("n".into()), none),
            None
        );
    }
}
