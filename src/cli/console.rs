//! No subcommand: open the console window.

use std::process::ExitCode;

use super::fail;
use crate::paths::DataPaths;

pub(super) fn open(paths: &DataPaths, demo: bool) -> ExitCode {
    match crate::ui::run(paths, demo) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}
