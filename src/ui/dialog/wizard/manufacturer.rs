//! Manufacturer and Model page: both lists come from the configuration provider registry.

use iced::widget::{button, column, container, row, scrollable, text};
use iced::{Element, Length};

use crate::ipam::provider::ProviderDescriptor;
use crate::ui::widget::style;

#[derive(Debug, Clone, Default)]
pub struct ManufacturerPage {
    providers: Vec<ProviderDescriptor>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Message {
    Manufacturer(String),
    Model(String),
}

impl ManufacturerPage {
    pub fn new(providers: Vec<ProviderDescriptor>) -> Self {
        ManufacturerPage {
            providers,
            manufacturer: None,
            model: None,
        }
    }

    /// Manufacturers in registry order, without repeats.
    pub fn manufacturers(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for p in &self.providers {
            if !out.contains(&p.manufacturer) {
                out.push(p.manufacturer.clone());
            }
        }
        out
    }

    pub fn models(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for p in &self.providers {
            if Some(&p.manufacturer) == self.manufacturer.as_ref() && !out.contains(&p.model) {
                out.push(p.model.clone());
            }
        }
        out
    }

    /// Configuration providers for the chosen manufacturer and model.
    pub fn candidates(&self) -> Vec<ProviderDescriptor> {
        self.providers
            .iter()
            .filter(|p| {
                Some(&p.manufacturer) == self.manufacturer.as_ref()
                    && Some(&p.model) == self.model.as_ref()
            })
            .cloned()
            .collect()
    }

    pub fn update(&mut self, message: Message) {
        match message {
            Message::Manufacturer(m) => {
                if self.manufacturer.as_ref() != Some(&m) {
                    self.manufacturer = Some(m);
                    self.model = None;
                    // One model only: choose it, as there is nothing to decide.
                    if let [only] = self.models().as_slice() {
                        self.model = Some(only.clone());
                    }
                }
            }
            Message::Model(m) => self.model = Some(m),
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.manufacturer.is_none() {
            return Err("Select a manufacturer.".into());
        }
        if self.model.is_none() {
            return Err("Select a model.".into());
        }
        if self.candidates().is_empty() {
            return Err("No configuration provider is installed for this model.".into());
        }
        Ok(())
    }

    pub fn is_dirty(&self) -> bool {
        self.manufacturer.is_some()
    }

    pub fn view(&self) -> Element<'_, Message> {
        let list = |items: Vec<String>, selected: Option<&String>, on: fn(String) -> Message| {
            let rows = column(items.into_iter().map(|item| {
                let is_selected = selected == Some(&item);
                button(text(item.clone()).size(style::TEXT))
                    .width(Length::Fill)
                    .padding([4, 8])
                    .style(style::flat(is_selected))
                    .on_press(on(item))
                    .into()
            }))
            .spacing(1);
            container(scrollable(rows).height(Length::Fill))
                .padding(2)
                .height(180)
                .width(Length::Fill)
                .style(style::pane)
        };
        column![
            style::heading("Manufacturer and Model"),
            style::hint("Select the manufacturer and the model of the network service."),
            row![
                column![
                    text("Manufacturer:").size(style::TEXT),
                    list(
                        self.manufacturers(),
                        self.manufacturer.as_ref(),
                        Message::Manufacturer
                    )
                ]
                .spacing(6)
                .width(Length::Fill),
                column![
                    text("Model:").size(style::TEXT),
                    list(self.models(), self.model.as_ref(), Message::Model)
                ]
                .spacing(6)
                .width(Length::Fill),
            ]
            .spacing(12),
        ]
        .spacing(8)
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn descriptor(id: &str, manufacturer: &str, model: &str) -> ProviderDescriptor {
        ProviderDescriptor {
            id: id.into(),
            manufacturer: manufacturer.into(),
            model: model.into(),
            provider_name: format!("{model} provider"),
            version: "1.0".into(),
            default_port: 443,
            default_https: true,
            operations: Vec::new(),
        }
    }

    #[test]
    fn choosing_a_manufacturer_narrows_models_and_providers() {
        let mut page = ManufacturerPage::new(vec![
            descriptor("a", "Contoso", "IPAM"),
            descriptor("b", "Fabrikam", "Net 1"),
            descriptor("c", "Fabrikam", "Net 2"),
        ]);
        assert_eq!(page.manufacturers(), vec!["Contoso", "Fabrikam"]);
        assert!(page.validate().is_err());
        page.update(Message::Manufacturer("Contoso".into()));
        assert_eq!(page.model.as_deref(), Some("IPAM"));
        assert!(page.validate().is_ok());
        page.update(Message::Manufacturer("Fabrikam".into()));
        assert_eq!(page.model, None);
        assert_eq!(page.validate(), Err("Select a model.".into()));
        page.update(Message::Model("Net 2".into()));
        assert_eq!(page.candidates()[0].id, "c");
    }
}
