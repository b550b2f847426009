//! The console's own settings (settings.json in the config directory): window size, theme,
//! last workspace. A damaged file falls back to defaults field by field.

use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize};

use crate::paths::Readers;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Workspace {
    #[default]
    Fabric,
    Jobs,
    Settings,
}

impl Workspace {
    pub const ALL: [Self; 3] = [Self::Fabric, Self::Jobs, Self::Settings];
    pub fn label(self) -> &'static str {
        match self {
            Self::Fabric => "Fabric",
            Self::Jobs => "Jobs",
            Self::Settings => "Settings",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThemeChoice {
    /// Follow the desktop's light/dark setting.
    #[default]
    System,
    Light,
    Dark,
}

impl ThemeChoice {
    pub const ALL: [Self; 3] = [Self::System, Self::Light, Self::Dark];
    pub fn label(self) -> &'static str {
        match self {
            Self::System => "Use system setting",
            Self::Light => "Light",
            Self::Dark => "Dark",
        }
    }
}

impl std::fmt::Display for ThemeChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// Every field is optional in the file, and a field that does not parse keeps its default
/// (`or_default`), so one bad value never costs the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Preferences {
    #[serde(deserialize_with = "or_default")]
    pub window_width: f32,
    #[serde(deserialize_with = "or_default")]
    pub window_height: f32,
    #[serde(deserialize_with = "or_default")]
    pub workspace: Workspace,
    #[serde(deserialize_with = "or_default")]
    pub theme: ThemeChoice,
    /// Last port of the embedded IPAM server, tried first so added services keep their address.
    #[serde(deserialize_with = "or_default")]
    pub embedded_ipam_port: Option<u16>,
    /// A range this full (percent) shows its use as a warning.
    #[serde(deserialize_with = "or_default")]
    pub usage_warning_percent: f32,
    /// A range this full (percent) shows its use as critical.
    #[serde(deserialize_with = "or_default")]
    pub usage_critical_percent: f32,
    /// A team's PostgreSQL database (postgres://user@host:port/dbname, no password), used from
    /// the next start when neither --database nor FABRIC_CONSOLE_DATABASE is given.
    #[serde(
        deserialize_with = "or_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub database: Option<String>,
}

impl Default for Preferences {
    fn default() -> Self {
        Preferences {
            window_width: 1280.0,
            window_height: 800.0,
            workspace: Workspace::Fabric,
            theme: ThemeChoice::System,
            embedded_ipam_port: None,
            usage_warning_percent: 80.0,
            usage_critical_percent: 95.0,
            database: None,
        }
    }
}

/// A field's value, or its default when it does not parse as one.
fn or_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    let value = serde_json::Value::deserialize(deserializer)?;
    Ok(T::deserialize(value).unwrap_or_default())
}

const MIN_WIDTH: f32 = 800.0;
const MIN_HEIGHT: f32 = 560.0;
const MAX_SIDE: f32 = 16_384.0;

impl Preferences {
    /// Reads the file; a missing, unreadable or damaged file (or field) yields the default for it.
    pub fn load(path: &Path) -> Self {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_json(&text),
            Err(_) => Self::default(),
        }
    }

    /// Field by field: every field that is missing or malformed keeps its default, and a window
    /// side outside 800×560 … 16384 is replaced by the default one.
    pub fn from_json(text: &str) -> Self {
        let mut prefs: Self = serde_json::from_str(text).unwrap_or_default();
        let default = Self::default();
        let side = |v: f32, min: f32, fallback: f32| {
            if v.is_finite() && (min..=MAX_SIDE).contains(&v) {
                v
            } else {
                fallback
            }
        };
        prefs.window_width = side(prefs.window_width, MIN_WIDTH, default.window_width);
        prefs.window_height = side(prefs.window_height, MIN_HEIGHT, default.window_height);
        prefs.embedded_ipam_port = prefs.embedded_ipam_port.filter(|p| *p != 0);
        // Levels between 1 and 100 %, the warning below the critical one; else the defaults.
        let (w, c) = (prefs.usage_warning_percent, prefs.usage_critical_percent);
        if crate::fabric::usage::UsageLevels::from_percent(w, c).is_none() {
            prefs.usage_warning_percent = default.usage_warning_percent;
            prefs.usage_critical_percent = default.usage_critical_percent;
        }
        prefs
    }

    /// Where a range's use turns to a warning and to critical.
    pub fn usage_levels(&self) -> crate::ui::widget::chart::UsageLevels {
        crate::fabric::usage::UsageLevels::from_percent(
            self.usage_warning_percent,
            self.usage_critical_percent,
        )
        .unwrap_or_default()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".into())
    }

    /// Writes atomically (temporary file, then rename) so a crash never leaves half a file.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        crate::paths::write_atomically(path, self.to_json().as_bytes(), Readers::Anyone)
    }

    pub fn window_size(&self) -> iced::Size {
        iced::Size::new(self.window_width, self.window_height)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let prefs = Preferences {
            window_width: 1400.0,
            window_height: 900.0,
            workspace: Workspace::Jobs,
            theme: ThemeChoice::Dark,
            embedded_ipam_port: Some(45123),
            usage_warning_percent: 70.0,
            usage_critical_percent: 90.0,
            database: None,
        };
        assert_eq!(Preferences::from_json(&prefs.to_json()), prefs);
    }

    #[test]
    fn damaged_fields_fall_back_one_by_one() {
        let prefs = Preferences::from_json(
            r#"{"window_width": "wide", "window_height": 900, "workspace": "nowhere", "theme": "dark"}"#,
        );
        assert_eq!(prefs.window_width, 1280.0);
        assert_eq!(prefs.window_height, 900.0);
        assert_eq!(prefs.workspace, Workspace::Fabric);
        assert_eq!(prefs.theme, ThemeChoice::Dark);
        let prefs = Preferences::from_json(r#"{"embedded_ipam_port": 70000, "theme": 3}"#);
        assert_eq!(prefs.embedded_ipam_port, None);
        assert_eq!(prefs.theme, ThemeChoice::System);
        let prefs = Preferences::from_json(
            r#"{"usage_warning_percent": 97, "usage_critical_percent": 90}"#,
        );
        assert_eq!(
            prefs.usage_levels().warning,
            0.8,
            "a warning above critical is refused"
        );
    }

    #[test]
    fn garbage_and_absurd_sizes_give_defaults() {
        assert_eq!(Preferences::from_json("{not json"), Preferences::default());
        let prefs = Preferences::from_json(r#"{"window_width": 10, "window_height": 1e9}"#);
        assert_eq!(prefs.window_size(), Preferences::default().window_size());
    }

    #[test]
    fn save_then_load() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("nested").join("settings.json");
        let prefs = Preferences {
            workspace: Workspace::Settings,
            ..Preferences::default()
        };
        prefs.save(&path).expect("save");
        assert_eq!(Preferences::load(&path), prefs);
        assert_eq!(
            Preferences::load(&dir.path().join("missing.json")),
            Preferences::default()
        );
    }
}
