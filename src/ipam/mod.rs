//! The IPAM side: the provider trait, the registry of configuration providers, the providers,
//! and the built-in IPAM server.

pub mod builtin;
pub mod model;
pub mod nautobot;
pub mod provider;
pub mod registry;
pub mod server;
