//! Fabric Console: a VMM-style fabric workspace kept in two-way sync with IPAM servers.

pub mod cli;
pub mod fabric;
pub mod ipam;
pub mod ipam_server;
pub mod logging;
pub mod ops;
pub mod paths;
pub mod sync;
pub mod ui;
