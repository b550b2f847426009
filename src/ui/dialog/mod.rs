//! The modal windows: one is open at a time, drawn over the shell.

pub mod admin;
pub mod exchange;
pub mod preview;
pub mod properties;
pub mod run_as_dialog;
pub mod wizard;
