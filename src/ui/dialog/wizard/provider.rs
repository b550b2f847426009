//! Provider page: the configuration provider for the chosen model, and its Test (Passed/Failed per
//! test, Implemented/Not implemented per API, the server's clock and the skew).

use std::time::{Duration, Instant};

use iced::widget::{button, column, container, progress_bar, row, scrollable, table, text};
use iced::{Element, Length, Theme};

use crate::ipam::provider::{ProviderDescriptor, TestOutcome, TestReport};
use crate::ipam::tls::Encryption;
use crate::ui::widget::style::{self, Tone};

#[derive(Debug, Clone)]
pub enum TestState {
    NotRun,
    Running { started: Instant },
    Done(Result<TestReport, String>),
}

#[derive(Debug, Clone)]
pub struct ProviderPage {
    pub candidates: Vec<ProviderDescriptor>,
    pub selected: Option<String>,
    pub test: TestState,
    /// Names used in the failure hint.
    pub run_as_name: String,
    pub server: String,
    pub skew_threshold_ms: i64,
    pub now: Instant,
}

impl Default for ProviderPage {
    fn default() -> Self {
        ProviderPage {
            candidates: Vec::new(),
            selected: None,
            test: TestState::NotRun,
            run_as_name: String::new(),
            server: String::new(),
            skew_threshold_ms: crate::sync::status::DEFAULT_SKEW_THRESHOLD_MS,
            now: Instant::now(),
        }
    }
}

#[derive(Debug, Clone)]
pub enum Message {
    Select(String),
    Test,
}

#[derive(Debug, Clone)]
pub enum Event {
    Test { provider: String },
}

impl ProviderPage {
    /// The model changed: offer its providers, keep the choice if still offered.
    pub fn set_candidates(&mut self, candidates: Vec<ProviderDescriptor>) {
        if !self
            .selected
            .as_ref()
            .is_some_and(|s| candidates.iter().any(|c| &c.id == s))
        {
            self.selected = (candidates.len() == 1).then(|| candidates[0].id.clone());
            self.test = TestState::NotRun;
        }
        self.candidates = candidates;
    }

    pub fn descriptor(&self) -> Option<&ProviderDescriptor> {
        self.selected
            .as_ref()
            .and_then(|id| self.candidates.iter().find(|c| &c.id == id))
    }

    pub fn is_testing(&self) -> bool {
        matches!(self.test, TestState::Running { .. })
    }

    pub fn update(&mut self, message: Message) -> Option<Event> {
        match message {
            Message::Select(id) => {
                if self.selected.as_ref() != Some(&id) {
                    self.selected = Some(id);
                    self.test = TestState::NotRun;
                }
                None
            }
            Message::Test => {
                if self.is_testing() {
                    return None;
                }
                let provider = self.selected.clone()?;
                self.test = TestState::Running {
                    started: Instant::now(),
                };
                Some(Event::Test { provider })
            }
        }
    }

    pub fn test_finished(&mut self, result: Result<TestReport, String>) {
        self.test = TestState::Done(result);
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.descriptor().is_none() {
            return Err("Select a configuration provider.".into());
        }
        if self.is_testing() {
            return Err("Wait for the test to finish.".into());
        }
        Ok(())
    }

    pub fn view(&self) -> Element<'_, Message> {
        let providers = column(self.candidates.iter().map(|p| {
            let selected = self.selected.as_ref() == Some(&p.id);
            button(
                row![
                    text(p.provider_name.clone())
                        .size(style::TEXT)
                        .width(Length::Fill),
                    text(format!("version {}", p.version)).size(style::SMALL),
                ]
                .spacing(8),
            )
            .width(Length::Fill)
            .padding([4, 8])
            .style(style::flat(selected))
            .on_press(Message::Select(p.id.clone()))
            .into()
        }))
        .spacing(1);
        let test_button = style::command(
            "Test",
            (self.selected.is_some() && !self.is_testing()).then_some(Message::Test),
        );
        let mut page = column![
            style::heading("Provider"),
            style::hint("Select the configuration provider, then click Test to run basic validation tests with the provider."),
            text("Configuration provider:").size(style::TEXT),
            container(providers).padding(2).width(Length::Fill).style(style::pane),
            row![test_button].spacing(8),
        ]
        .spacing(8);
        page = page.push(match &self.test {
            TestState::NotRun => style::hint(
                "Test results say Passed or Failed; Implemented and Not implemented are informational only.",
            ),
            TestState::Running { started } => {
                // Indeterminate progress: a bar that fills every two seconds while the test runs.
                let elapsed = self.now.saturating_duration_since(*started);
                let phase = (elapsed.as_millis() % 2000) as f32 / 2000.0;
                column![
                    text(format!(
                        "Testing {} ... ({:.0} s)",
                        self.server,
                        elapsed.as_secs_f32().floor()
                    ))
                    .size(style::TEXT),
                    progress_bar(0.0..=1.0, phase).girth(6),
                ]
                .spacing(6)
                .into()
            }
            TestState::Done(Err(reason)) => style::notice(Tone::Error, reason.clone()),
            TestState::Done(Ok(report)) => self.report_view(report),
        });
        page.into()
    }

    fn report_view<'a>(&'a self, report: &'a TestReport) -> Element<'a, Message> {
        let bold = |s: &'static str| text(s).size(style::SMALL).font(style::bold());
        let tests = table(
            [
                table::column(bold("Test"), |t: &crate::ipam::provider::TestResult| {
                    text(t.name.clone()).size(style::TEXT)
                })
                .width(Length::FillPortion(2)),
                table::column(bold("Result"), |t: &crate::ipam::provider::TestResult| {
                    let (label, tone) = match t.outcome {
                        TestOutcome::Passed => ("Passed", Tone::Success),
                        TestOutcome::Failed => ("Failed", Tone::Error),
                    };
                    row![
                        style::status_dot(tone),
                        text(label)
                            .size(style::TEXT)
                            .style(move |theme: &Theme| text::Style {
                                color: Some(style::tone_color(theme, tone))
                            })
                    ]
                    .spacing(6)
                    .align_y(iced::Alignment::Center)
                })
                .width(Length::FillPortion(1)),
                table::column(bold("Detail"), |t: &crate::ipam::provider::TestResult| {
                    text(t.detail.clone()).size(style::TEXT)
                })
                .width(Length::FillPortion(5)),
            ],
            report.tests.iter(),
        )
        .padding_y(3)
        .padding_x(8)
        .width(Length::Fill);
        let apis = table(
            [
                table::column(
                    bold("API"),
                    |(op, _): (crate::ipam::provider::ProviderOperation, bool)| {
                        text(op.label()).size(style::TEXT)
                    },
                )
                .width(Length::FillPortion(3)),
                table::column(
                    bold("Status"),
                    |(_, yes): (crate::ipam::provider::ProviderOperation, bool)| {
                        text(if yes {
                            "Implemented"
                        } else {
                            "Not implemented"
                        })
                        .size(style::TEXT)
                    },
                )
                .width(Length::FillPortion(1)),
            ],
            report.operations.iter().copied(),
        )
        .padding_y(3)
        .padding_x(8)
        .width(Length::Fill);

        let mut out = column![].spacing(8);
        if report.passed() {
            out = out.push(style::notice(
                Tone::Success,
                "All tests passed: the provider works as expected with the IPAM server.",
            ));
        } else {
            out = out.push(style::notice(
                Tone::Error,
                format!(
                    "Some tests failed. One possible cause is insufficient permissions of the Run As account \"{}\" on {}: check its user name, secret and group membership.",
                    self.run_as_name, self.server
                ),
            ));
        }
        out = out.push(container(tests).style(style::pane).width(Length::Fill));
        if let Some(e) = &report.encryption {
            let line = format!("Encrypted: {}", e.describe());
            out = out.push(match e {
                Encryption::Cleartext { loopback: false } => style::notice(Tone::Warning, line),
                _ => style::notice(Tone::Info, line),
            });
        }
        let time_line = match (report.server_time, report.skew_ms) {
            (Some(t), Some(skew)) => {
                let line = format!(
                    "Server time {} (clock skew {}).",
                    t.format("%Y-%m-%d %H:%M:%S UTC"),
                    style::format_skew(Some(skew))
                );
                if skew.abs() > self.skew_threshold_ms {
                    style::notice(
                        Tone::Warning,
                        format!(
                            "{line} The clocks differ by more than {} minutes: keep the IPAM server and this console in time synchrony (e.g. w32tm /resync or NTP).",
                            self.skew_threshold_ms / 60_000
                        ),
                    )
                } else {
                    style::notice(Tone::Info, line)
                }
            }
            _ => style::notice(
                Tone::Warning,
                "The server's time could not be read, so the clock skew is unknown.",
            ),
        };
        out = out.push(time_line);
        if let Some(v) = &report.server_version {
            out = out.push(style::field_line("Server version:", v.clone()));
        }
        out = out.push(container(apis).style(style::pane).width(Length::Fill));
        // Room on the right so the scrollbar never covers the tables.
        scrollable(out.padding(iced::Padding {
            right: 14.0,
            ..iced::Padding::ZERO
        }))
        .height(Length::Fill)
        .into()
    }
}

/// How often the test's progress bar moves.
pub const TICK: Duration = Duration::from_millis(120);
