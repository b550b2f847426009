//! Name page: the service's name (required, ≤ 64 characters, unique) and an optional description.

use std::collections::BTreeSet;

use iced::Element;
use iced::widget::text;

use crate::fabric::model::MAX_NAME_LEN;
use crate::ui::widget::style;

pub const NAME_INPUT: &str = "wizard-name";
pub const DESCRIPTION_INPUT: &str = "wizard-description";

#[derive(Debug, Clone, Default)]
pub struct NamePage {
    pub name: String,
    pub description: String,
    /// Lower-cased names of the existing network services.
    existing: BTreeSet<String>,
}

#[derive(Debug, Clone)]
pub enum Message {
    Name(String),
    Description(String),
}

impl NamePage {
    pub fn new(existing: impl IntoIterator<Item = String>) -> Self {
        NamePage {
            existing: existing
                .into_iter()
                .map(|n| n.trim().to_lowercase())
                .collect(),
            ..Self::default()
        }
    }

    pub fn update(&mut self, message: Message) {
        match message {
            Message::Name(n) => self.name = n,
            Message::Description(d) => self.description = d,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        let name = self.name.trim();
        if name.is_empty() {
            return Err("Type a name for the network service.".into());
        }
        let len = name.chars().count();
        if len > MAX_NAME_LEN {
            return Err(format!(
                "The name has {len} characters: use at most {MAX_NAME_LEN}."
            ));
        }
        if self.existing.contains(&name.to_lowercase()) {
            return Err(format!(
                "A network service named \"{name}\" already exists: choose another name."
            ));
        }
        Ok(())
    }

    pub fn is_dirty(&self) -> bool {
        !self.name.trim().is_empty() || !self.description.trim().is_empty()
    }

    pub fn view(&self) -> Element<'_, Message> {
        super::field_page(
            "Name",
            "Type a name and an optional description for the network service.",
            [
                text("Name:").size(style::TEXT).into(),
                super::text_box("e.g. IPAM server 1", &self.name, Message::Name)
                    .id(NAME_INPUT)
                    .into(),
                text("Description:").size(style::TEXT).into(),
                super::text_box("Optional", &self.description, Message::Description)
                    .id(DESCRIPTION_INPUT)
                    .into(),
                style::hint(format!(
                    "{} of {MAX_NAME_LEN} characters",
                    self.name.trim().chars().count()
                )),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_is_required_bounded_and_unique() {
        let mut page = NamePage::new(["IPAM One".to_string()]);
        assert!(page.validate().unwrap_err().contains("Type a name"));
        page.update(Message::Name("   ".into()));
        assert!(page.validate().is_err());
        page.update(Message::Name("x".repeat(65)));
        assert!(page.validate().unwrap_err().contains("at most 64"));
        page.update(Message::Name("ipam one ".into()));
        assert!(page.validate().unwrap_err().contains("already exists"));
        page.update(Message::Name("IPAM Two".into()));
        assert_eq!(page.validate(), Ok(()));
    }
}
