//! Connection String page: the IPAM server's FQDN with an optional :port, validated as it is typed.

use iced::Element;
use iced::widget::text;

use crate::fabric::connection::ConnectionString;
use crate::ui::widget::style;

pub const CONNECTION_INPUT: &str = "wizard-connection-string";

#[derive(Debug, Clone, Default)]
pub struct ConnectionPage {
    pub input: String,
    /// The chosen model's default port and provider name.
    pub default_port: Option<(u16, String)>,
}

#[derive(Debug, Clone)]
pub enum Message {
    Input(String),
}

impl ConnectionPage {
    pub fn update(&mut self, message: Message) {
        match message {
            Message::Input(s) => self.input = s,
        }
    }

    pub fn parsed(&self) -> Result<ConnectionString, String> {
        ConnectionString::parse(&self.input).map_err(|e| e.to_string())
    }

    pub fn validate(&self) -> Result<(), String> {
        self.parsed().map(|_| ())
    }

    /// What the page says under the box: the reason it is invalid, or the port that will be used.
    pub fn port_note(&self) -> Option<String> {
        let parsed = self.parsed().ok()?;
        match (parsed.port, &self.default_port) {
            (Some(p), _) => Some(format!("Port {p} will be used.")),
            (None, Some((port, provider))) => Some(format!(
                "The default port {port} of {provider} will be used."
            )),
            (None, None) => Some("The provider's default port will be used.".into()),
        }
    }

    pub fn is_dirty(&self) -> bool {
        !self.input.trim().is_empty()
    }

    pub fn view(&self) -> Element<'_, Message> {
        let status: Element<'_, Message> = if self.input.trim().is_empty() {
            style::hint(
                "Type the fully qualified domain name (FQDN) of the IPAM server, e.g. IPAMserver1.contoso.com or IPAMserver1.contoso.com:443.",
            )
        } else {
            match self.parsed() {
                Err(reason) => style::notice(style::Tone::Error, reason),
                Ok(_) => style::notice(style::Tone::Success, self.port_note().unwrap_or_default()),
            }
        };
        super::field_page(
            "Connection String",
            "If the IPAM server listens on a specific port, end the string with a colon and the port number (for example :443).",
            [
                text("Connection string:").size(style::TEXT).into(),
                super::text_box("IPAMserver1.contoso.com", &self.input, Message::Input)
                    .id(CONNECTION_INPUT)
                    .into(),
                status,
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_validation_names_the_reason_and_the_default_port() {
        let mut page = ConnectionPage {
            default_port: Some((8443, "Built-in IPAM Provider".into())),
            ..ConnectionPage::default()
        };
        assert!(page.validate().unwrap_err().contains("empty"));
        page.update(Message::Input("ipam1.contoso.com:99999".into()));
        assert!(page.validate().unwrap_err().contains("port"));
        page.update(Message::Input("ipam1.contoso.com".into()));
        assert_eq!(page.validate(), Ok(()));
        assert_eq!(
            page.port_note().as_deref(),
            Some("The default port 8443 of Built-in IPAM Provider will be used.")
        );
        page.update(Message::Input("ipam1.contoso.com:443".into()));
        assert_eq!(page.port_note().as_deref(), Some("Port 443 will be used."));
    }
}
