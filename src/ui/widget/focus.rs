//! Keyboard use of dialogs and screens: Tab and Shift+Tab move through the fields of the open
//! dialog only, Enter presses its default button, Escape cancels, Ctrl+F goes to the search box.

use iced::advanced::widget::{Id, operate, operation};
use iced::{Task, keyboard};

/// The container the console draws every modal dialog in: Tab stays inside it.
pub const MODAL_ID: &str = "console-modal";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogKey {
    Next,
    Previous,
    Submit,
    Cancel,
    Find,
}

/// Tab, Shift+Tab, Enter, Escape and Ctrl+F; everything else is not a dialog key.
pub fn dialog_key(key: &keyboard::Key, modifiers: keyboard::Modifiers) -> Option<DialogKey> {
    use keyboard::key::Named;
    match key {
        keyboard::Key::Named(Named::Tab) if modifiers.shift() => Some(DialogKey::Previous),
        keyboard::Key::Named(Named::Tab) => Some(DialogKey::Next),
        keyboard::Key::Named(Named::Enter) if !modifiers.alt() => Some(DialogKey::Submit),
        keyboard::Key::Named(Named::Escape) => Some(DialogKey::Cancel),
        keyboard::Key::Character(c)
            if modifiers.command() && c.as_str().eq_ignore_ascii_case("f") =>
        {
            Some(DialogKey::Find)
        }
        _ => None,
    }
}

/// Focus the next field inside the container `scope` (wrapping to its first field).
pub fn next<M: Send + 'static>(scope: &'static str) -> Task<M> {
    operate(operation::scope(
        Id::new(scope),
        operation::focusable::focus_next(),
    ))
}

/// Focus the previous field inside the container `scope` (wrapping to its last field).
pub fn previous<M: Send + 'static>(scope: &'static str) -> Task<M> {
    operate(operation::scope(
        Id::new(scope),
        operation::focusable::focus_previous(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyboard::key::Named;

    #[test]
    fn keys_map_to_dialog_actions() {
        let none = keyboard::Modifiers::default();
        let tab = keyboard::Key::Named(Named::Tab);
        assert_eq!(dialog_key(&tab, none), Some(DialogKey::Next));
        assert_eq!(
            dialog_key(&tab, keyboard::Modifiers::SHIFT),
            Some(DialogKey::Previous)
        );
        assert_eq!(
            dialog_key(&keyboard::Key::Named(Named::Enter), none),
            Some(DialogKey::Submit)
        );
        assert_eq!(
            dialog_key(&keyboard::Key::Named(Named::Escape), none),
            Some(DialogKey::Cancel)
        );
        assert_eq!(
            dialog_key(
                &keyboard::Key::Character("f".into()),
                keyboard::Modifiers::CTRL
            ),
            Some(DialogKey::Find)
        );
        assert_eq!(
            dialog_key(&keyboard::Key::Character("f".into()), none),
            None
        );
        assert_eq!(
            dialog_key(
                &keyboard::Key::Named(Named::Enter),
                keyboard::Modifiers::ALT
            ),
            None
        );
    }
}
