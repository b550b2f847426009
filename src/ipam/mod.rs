//! The IPAM side: the provider trait, the registry of configuration providers, the providers,
//! and the retry policy they share. The built-in IPAM server lives in `crate::ipam_server`.

pub(crate) mod address_usage;
pub mod builtin;
pub(crate) mod drf;
pub mod incremental;
pub mod model;
pub mod nautobot;
pub mod netbox;
pub mod provider;
pub mod registry;
pub(crate) mod rest;
pub mod retry;
pub mod tls;
