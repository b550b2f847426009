//! The modal windows: one is open at a time, drawn over the shell.

pub mod admin;
pub mod exchange;
pub mod preview;
pub mod properties;
pub mod run_as_dialog;
pub mod wizard;

use crate::fabric::model::MAX_NAME_LEN;

/// The trimmed name a Properties or Run As dialog saves, or why it cannot: `missing` when it is
/// empty, the limit when it is too long.
pub fn checked_name<'a>(name: &'a str, missing: &str) -> Result<&'a str, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(missing.into());
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(format!(
            "The name is longer than {MAX_NAME_LEN} characters."
        ));
    }
    Ok(name)
}
