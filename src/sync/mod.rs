//! The sync core: plan (three-way merge), apply, journal, and the engine on tokio.

pub mod apply;
pub mod compare;
pub mod credentials;
pub mod engine;
pub mod journal;
pub mod lease;
pub mod normal;
pub mod op_order;
pub mod plan;
pub mod review;
pub mod rows;
pub mod status;
pub mod usage;

pub use plan::{
    ConsoleView, FieldText, IpamView, PlanInput, agreed_base, derived_id, plan, project_console,
    project_ipam,
};
