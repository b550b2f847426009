//! The sync core: plan (three-way merge), apply, journal, and the engine on tokio.

pub mod apply;
pub mod compare;
pub mod engine;
pub mod journal;
pub mod normal;
pub mod plan;
mod plan_impl;
pub mod status;

pub use plan_impl::{
    ConsoleView, FieldText, IpamView, PlanInput, agreed_base, derived_id, plan, project_console,
    project_ipam,
};
