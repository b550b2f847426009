//! The workspaces the shell shows in its results and details panes.

pub mod compare;
pub mod fabric_workspace;
pub mod jobs;
pub mod settings;
