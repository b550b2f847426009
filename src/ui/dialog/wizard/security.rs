//! Security page: before any token is sent, the console connects to the server without
//! credentials and shows what it offers. HTTPS: the certificate's subject, issuer, validity and
//! SHA-256 fingerprint, whether this computer trusts it, and the choice to trust exactly this
//! certificate (pinning, as SSH does on first contact) or to name a certificate authority file.
//! Plain HTTP to another computer: an explicit, explained choice.

use std::path::PathBuf;

use iced::widget::{checkbox, column, container, row, scrollable, text};
use iced::{Element, Length};

use crate::fabric::connection::ConnectionString;
use crate::fabric::model::TlsTrust;
use crate::ipam::tls::{Encryption, Offer, Probe};
use crate::ui::widget::style::{self, Tone};

pub const CA_FILE_INPUT: &str = "wizard-ca-file";

#[derive(Debug, Clone, Default)]
pub enum ProbeState {
    #[default]
    NotRun,
    Running,
    Done(Result<Probe, String>),
}

/// The server a probe looked at: the connection string as typed, the port used and the CA file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub connection: ConnectionString,
    pub default_port: u16,
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default)]
pub struct SecurityPage {
    /// What the last probe looked at (or the one running).
    pub target: Option<Target>,
    pub probe: ProbeState,
    /// Pin the certificate shown.
    pub trust_certificate: bool,
    pub ca_file: String,
    /// Send the token over plain HTTP to another computer.
    pub allow_cleartext: bool,
    /// Whether the provider uses HTTPS when the connection string names no scheme.
    pub default_https: bool,
    /// Why the file chooser could not open, if it could not.
    pub browse_error: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Message {
    CheckAgain,
    TrustCertificate(bool),
    CaFile(String),
    BrowseCaFile,
    AllowCleartext(bool),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Probe(Target),
    BrowseCaFile,
}

impl SecurityPage {
    fn ca_path(&self) -> Option<PathBuf> {
        match self.ca_file.trim() {
            "" => None,
            p => Some(PathBuf::from(p)),
        }
    }

    /// Entering the page: look at the server unless the same one was just looked at.
    pub fn enter(&mut self, connection: ConnectionString, default_port: u16) -> Option<Event> {
        let target = Target {
            connection,
            default_port,
            ca_file: self.ca_path(),
        };
        let fresh = matches!(self.probe, ProbeState::Done(Ok(_)) | ProbeState::Running);
        if fresh && self.target.as_ref() == Some(&target) {
            return None;
        }
        if self
            .target
            .as_ref()
            .is_none_or(|t| t.connection != target.connection || t.default_port != default_port)
        {
            // Another server: nothing chosen for the previous one carries over.
            self.trust_certificate = false;
            self.allow_cleartext = false;
        }
        self.start(target)
    }

    fn start(&mut self, target: Target) -> Option<Event> {
        self.target = Some(target.clone());
        self.probe = ProbeState::Running;
        Some(Event::Probe(target))
    }

    pub fn update(&mut self, message: Message) -> Option<Event> {
        match message {
            Message::CheckAgain => {
                let mut target = self.target.clone()?;
                target.ca_file = self.ca_path();
                return self.start(target);
            }
            Message::TrustCertificate(on) => self.trust_certificate = on,
            Message::CaFile(s) => self.ca_file = s,
            Message::BrowseCaFile => {
                self.browse_error = None;
                return Some(Event::BrowseCaFile);
            }
            Message::AllowCleartext(on) => self.allow_cleartext = on,
        }
        None
    }

    /// A CA file was chosen in the file chooser: look again with it.
    pub fn ca_file_chosen(&mut self, path: PathBuf) -> Option<Event> {
        self.ca_file = path.display().to_string();
        self.update(Message::CheckAgain)
    }

    pub fn probe_finished(&mut self, target: &Target, result: Result<Probe, String>) {
        // An answer for a server no longer on the page is dropped.
        if self.target.as_ref() == Some(target) {
            self.probe = ProbeState::Done(result);
        }
    }

    fn is_loopback(&self) -> bool {
        self.target
            .as_ref()
            .is_some_and(|t| t.connection.is_loopback())
    }

    /// A server that cannot be reached now may still be added when nothing would be weakened:
    /// it will use HTTPS trusting only this computer's authorities (or plain HTTP to this
    /// computer). Plain HTTP to another computer needs the look first.
    fn may_add_unchecked(&self) -> bool {
        self.target.as_ref().is_some_and(|t| {
            t.connection.scheme != Some(crate::fabric::connection::Scheme::Http)
                || t.connection.is_loopback()
        })
    }

    /// The CA file typed differs from the one the certificate was checked with.
    fn ca_changed(&self) -> bool {
        self.target
            .as_ref()
            .is_some_and(|t| t.ca_file != self.ca_path())
    }

    pub fn validate(&self) -> Result<(), String> {
        match &self.probe {
            ProbeState::NotRun => Err("Check the server's security first.".into()),
            ProbeState::Running => Err("Checking what the server offers...".into()),
            ProbeState::Done(Err(e)) if !self.may_add_unchecked() => {
                Err(format!("{e} Then click Check again."))
            }
            ProbeState::Done(Err(_)) => Ok(()),
            ProbeState::Done(Ok(probe)) => match &probe.offer {
                _ if self.ca_changed() => {
                    Err("Click Check again to check the certificate with the CA file.".into())
                }
                Offer::Tls { trusted: Ok(()), .. } => Ok(()),
                Offer::Tls { .. } if self.trust_certificate => Ok(()),
                Offer::Tls { .. } => Err(
                    "The certificate is not trusted: trust exactly this certificate, or name its authority's CA file."
                        .into(),
                ),
                Offer::Plain if self.is_loopback() || self.allow_cleartext => Ok(()),
                Offer::Plain => Err(
                    "The server offers only plain HTTP: choose to send the token unencrypted, or give the server a certificate."
                        .into(),
                ),
            },
        }
    }

    /// The connection string with its scheme spelled out, and what to trust; `None` until valid.
    pub fn outcome(&self) -> Option<(ConnectionString, TlsTrust)> {
        self.validate().ok()?;
        let probe = match &self.probe {
            ProbeState::Done(Ok(probe)) => probe,
            // Not reached: as typed, trusting this computer's authorities only.
            ProbeState::Done(Err(_)) => {
                return Some((
                    self.target.as_ref()?.connection.clone(),
                    TlsTrust::default(),
                ));
            }
            _ => return None,
        };
        let trust = match &probe.offer {
            Offer::Tls { certificate, .. } if self.trust_certificate => {
                TlsTrust::pinned(Some(certificate.fingerprint.clone()))
            }
            Offer::Tls { .. } => TlsTrust {
                ca_file: self.ca_path().map(|p| std::path::absolute(&p).unwrap_or(p)),
                ..TlsTrust::default()
            },
            Offer::Plain => TlsTrust {
                allow_cleartext: !self.is_loopback(),
                ..TlsTrust::default()
            },
        };
        Some((probe.connection.clone(), trust))
    }

    /// "Encrypted: …" for the Summary, from what the page chose.
    pub fn encryption(&self) -> Option<Encryption> {
        let (connection, trust) = self.outcome()?;
        Some(Encryption::of(&connection, &trust, self.default_https))
    }

    pub fn view(&self) -> Element<'_, Message> {
        let target = self
            .target
            .as_ref()
            .map(|t| {
                format!(
                    "{}:{}",
                    t.connection.host,
                    t.connection.port_or(t.default_port)
                )
            })
            .unwrap_or_default();
        let mut page = column![
            style::heading("Security"),
            style::hint(
                "Before the Run As account's token is sent, the console connects to the server without any credential and shows what it offers.",
            ),
        ]
        .spacing(8)
        .width(Length::Fill);
        let check_again = style::command(
            "Check again",
            (!matches!(self.probe, ProbeState::Running)).then_some(Message::CheckAgain),
        );
        match &self.probe {
            ProbeState::NotRun => {}
            ProbeState::Running => {
                page = page.push(style::notice(
                    Tone::Info,
                    format!("Connecting to {target} ..."),
                ));
            }
            ProbeState::Done(Err(e)) => {
                page = page.push(style::notice(Tone::Error, e.clone()));
                if self.may_add_unchecked() {
                    page = page.push(style::hint(
                        "You can still add the service: it will accept only a certificate from an authority this computer trusts. Check again once the server runs to see its certificate.",
                    ));
                }
                page = page.push(row![check_again]);
            }
            ProbeState::Done(Ok(probe)) => {
                match &probe.offer {
                    Offer::Tls {
                        certificate,
                        trusted,
                    } => {
                        page = page.push(match trusted {
                        Ok(()) => style::notice(
                            Tone::Success,
                            format!("{target} offers HTTPS with a certificate this computer trusts."),
                        ),
                        Err(why) => style::notice(
                            Tone::Warning,
                            format!("{target} offers HTTPS, but this computer does not trust its certificate: {why}."),
                        ),
                    });
                        let names = if certificate.names.is_empty() {
                            "(none listed)".to_string()
                        } else {
                            certificate.names.join(", ")
                        };
                        let when = |t: &chrono::DateTime<chrono::Utc>| {
                            t.format("%Y-%m-%d %H:%M UTC").to_string()
                        };
                        page = page.push(
                            container(
                                column![
                                    style::field_line("Subject", certificate.subject.clone()),
                                    style::field_line("Issuer", certificate.issuer.clone()),
                                    style::field_line("Valid from", when(&certificate.not_before)),
                                    style::field_line("Valid until", when(&certificate.not_after)),
                                    style::field_line("Valid for", names),
                                    style::field_line(
                                        "SHA-256 fingerprint",
                                        certificate.fingerprint_two_lines()
                                    ),
                                ]
                                .spacing(4),
                            )
                            .padding(8)
                            .width(Length::Fill)
                            .style(style::pane),
                        );
                        page = page.push(
                        checkbox(self.trust_certificate)
                            .label("Trust exactly this certificate (pin its SHA-256 fingerprint). Compare the fingerprint with the one the server's administrator gives you; a later change of certificate is refused.")
                            .text_size(style::TEXT)
                            .size(14)
                            .on_toggle(Message::TrustCertificate),
                    );
                        page = page.push(text("Or trust a certificate authority file (PEM), e.g. your company's CA:").size(style::TEXT));
                        page = page.push(
                            row![
                                super::text_box(
                                    "/etc/ssl/company-ca.pem",
                                    &self.ca_file,
                                    Message::CaFile
                                )
                                .id(CA_FILE_INPUT)
                                .on_submit(Message::CheckAgain),
                                style::command("Browse...", Some(Message::BrowseCaFile)),
                                check_again,
                            ]
                            .spacing(8)
                            .align_y(iced::Alignment::Center),
                        );
                        if let Some(why) = &self.browse_error {
                            page = page.push(style::notice(
                                Tone::Warning,
                                format!("No file chooser: {why}. Type the file's path instead."),
                            ));
                        }
                    }
                    Offer::Plain if self.is_loopback() => {
                        page = page.push(style::notice(
                        Tone::Info,
                        format!("{target} offers only plain HTTP. It is this computer, so the token does not cross a network."),
                    ));
                    }
                    Offer::Plain => {
                        page = page.push(style::notice(
                        Tone::Warning,
                        format!("{target} offers only plain HTTP: the token would cross the network unencrypted, and anyone on the network path could read it and use it to change the address plan."),
                    ));
                        page = page.push(
                        checkbox(self.allow_cleartext)
                            .label("Send the token to this server without encryption (not recommended; prefer giving the server a certificate)")
                            .text_size(style::TEXT)
                            .size(14)
                            .on_toggle(Message::AllowCleartext),
                    );
                        page = page.push(row![check_again]);
                    }
                }
            }
        }
        if let Some(e) = self.encryption() {
            page = page.push(style::field_line("Encrypted:", e.describe()));
        }
        scrollable(page.padding(iced::Padding {
            right: 14.0,
            ..iced::Padding::ZERO
        }))
        .height(Length::Fill)
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fabric::connection::Scheme;
    use crate::ipam::tls::CertificateInfo;

    fn certificate() -> CertificateInfo {
        CertificateInfo {
            subject: "CN=ipam1".into(),
            issuer: "CN=ipam1".into(),
            not_before: chrono::Utc::now(),
            not_after: chrono::Utc::now(),
            names: vec!["ipam1.contoso.com".into()],
            fingerprint: "ab".repeat(32),
        }
    }

    fn entered(page: &mut SecurityPage, connection: &str) -> Target {
        let conn = ConnectionString::parse(connection).unwrap();
        match page.enter(conn, 48885) {
            Some(Event::Probe(t)) => t,
            other => panic!("expected a probe, got {other:?}"),
        }
    }

    #[test]
    fn an_untrusted_certificate_must_be_pinned_or_its_ca_named() {
        let mut page = SecurityPage::default();
        let target = entered(&mut page, "ipam1.contoso.com");
        assert!(page.validate().unwrap_err().contains("Checking"));
        let probe = Probe {
            connection: target.connection.with_scheme(Scheme::Https),
            offer: Offer::Tls {
                certificate: certificate(),
                trusted: Err("it is not issued by an authority this computer trusts".into()),
            },
        };
        page.probe_finished(&target, Ok(probe));
        assert!(page.validate().unwrap_err().contains("not trusted"));
        assert_eq!(page.outcome(), None);
        page.update(Message::TrustCertificate(true));
        let (conn, trust) = page.outcome().unwrap();
        assert_eq!(conn.to_string(), "https://ipam1.contoso.com");
        assert_eq!(trust.fingerprint.as_deref(), Some("ab".repeat(32).as_str()));
        assert_eq!(page.encryption(), Some(Encryption::Pinned));
        // Coming back to the same server keeps the answer and the choice.
        assert_eq!(
            page.enter(target.connection.clone(), 48885),
            None,
            "no second probe"
        );
        assert!(page.trust_certificate);
        // A CA file typed but not checked yet blocks Next until Check again.
        page.update(Message::TrustCertificate(false));
        page.update(Message::CaFile("/tmp/ca.pem".into()));
        assert!(page.validate().unwrap_err().contains("Check again"));
        match page.update(Message::CheckAgain) {
            Some(Event::Probe(t)) => assert_eq!(t.ca_file, Some(PathBuf::from("/tmp/ca.pem"))),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn plain_http_needs_the_choice_except_on_this_computer() {
        let mut page = SecurityPage::default();
        let target = entered(&mut page, "ipam1.contoso.com:8080");
        let plain = |t: &Target| Probe {
            connection: t.connection.with_scheme(Scheme::Http),
            offer: Offer::Plain,
        };
        page.probe_finished(&target, Ok(plain(&target)));
        assert!(page.validate().unwrap_err().contains("plain HTTP"));
        page.update(Message::AllowCleartext(true));
        let (conn, trust) = page.outcome().unwrap();
        assert_eq!(conn.scheme, Some(Scheme::Http));
        assert!(trust.allow_cleartext);
        // Another server: the choice does not carry over.
        let local = entered(&mut page, "127.0.0.1:8080");
        assert!(!page.allow_cleartext);
        page.probe_finished(&local, Ok(plain(&local)));
        let (_, trust) = page.outcome().unwrap();
        assert!(!trust.allow_cleartext, "nothing to allow on this computer");
        assert_eq!(
            page.encryption(),
            Some(Encryption::Cleartext { loopback: true })
        );
    }

    #[test]
    fn a_server_not_reached_may_be_added_only_without_weakening() {
        let mut page = SecurityPage::default();
        let target = entered(&mut page, "ipam1.contoso.com");
        page.probe_finished(&target, Err("Cannot reach ipam1.contoso.com:48885".into()));
        let (conn, trust) = page.outcome().expect("may go on");
        assert_eq!(conn.scheme, None);
        assert_eq!(trust, TlsTrust::default());
        assert_eq!(page.encryption(), Some(Encryption::SystemTrust));
        let target = entered(&mut page, "http://ipam1.contoso.com");
        page.probe_finished(&target, Err("Cannot reach ipam1.contoso.com:48885".into()));
        assert!(page.validate().unwrap_err().contains("Check again"));
    }

    #[test]
    fn a_late_answer_for_another_server_is_dropped() {
        let mut page = SecurityPage::default();
        let old = entered(&mut page, "old.contoso.com");
        let _new = entered(&mut page, "new.contoso.com");
        page.probe_finished(&old, Err("Cannot reach old".into()));
        assert!(matches!(page.probe, ProbeState::Running));
    }
}
