//! The console's fabric: model, validation, storage, secrets, import/export, demo data.

pub mod connection;
pub mod demo;
pub mod exchange;
pub mod model;
pub mod secrets;
pub mod store;
pub mod usage;
pub mod validate;
