//! Fabric Console: a VMM-style fabric workspace kept in two-way sync with IPAM servers.
//!
//! Layers point one way: `fabric` ← `ipam` ← `sync` ← `ops` ← `ui` / `cli`; nothing below knows
//! what is above it. The built-in IPAM server (`ipam_server`) sits beside the providers that talk
//! to it and shares only the IPAM model with them.
//!
//! # Code map
//! - `main.rs`: the allocator and the entry point (`cli::main`).
//! - `paths`: where the data, settings and logs live (`--data-dir`, XDG directories).
//! - `logging`: tracing to stderr and a daily file.
//! - `labelled`: `labelled_enum!`, enums with a label per variant (`ALL`, `label()`, `Display`).
//! - `fabric::model`: the console's objects, one `PoolSettings` shape, `FabricKind` over the kinds.
//! - `fabric::connection`: parsing and checking a network service's connection string.
//! - `fabric::validate`: every rule once (one file per rule family), run over the whole fabric
//!   or with a dialog's candidate swapped in (`view`); `Field` names the field a problem is on.
//! - `fabric::store`: the SQLite store: validate, write in one transaction, publish through a watch.
//! - `fabric::secrets`: Run As secrets in the keyring or an owner-only file, never in the store.
//! - `fabric::exchange`: JSON export and all-or-nothing import.
//! - `fabric::demo`: the deterministic demo fabric generator.
//! - `ipam::provider`: the `IpamProvider` trait, its typed errors and `is_transient`.
//! - `ipam::model`: the IPAM side's objects (address spaces, subnets, ranges) and operations.
//! - `ipam::registry`: the configuration providers the wizard offers.
//! - `ipam::retry`: the one retry policy (backoff with jitter, `Retry-After`) for every provider.
//! - `ipam::builtin`: the provider for the built-in IPAM server (HTTP, TLS pinning).
//! - `ipam::nautobot`: the Nautobot provider: `client` (HTTP, paging), `mapping` (objects ↔
//!   Nautobot), `cursor` (incremental reads, change log), `batches` (bulk writes), `test`.
//! - `ipam_server`: the built-in IPAM server (axum + SQLite): `api`, `db` (storage and change
//!   feed; `db::checks`, its own validation; `db::audit`, the audit trail of writes), `auth`
//!   (tokens, roles), `tls`, `guard` (connection limits, idle clients closed, request deadlines),
//!   `cli` (`ipam-server`, `token list|revoke|rotate`, `audit`).
//! - `sync::normal`: the normalised shape both sides are projected into, and the stored base.
//! - `sync::plan`: the three-way merge: `projection`, `merge`, `deletion_rules`, `to_console`,
//!   `to_ipam`, `base`, `conflict` (`ConflictKey`), `summary` (typed counts), `field_text`;
//!   `tests` and `proptests` (random fabrics and edits).
//! - `sync::op_order`: an IPAM operation's phase, references and id remapping (plan and apply).
//! - `sync::apply`: sending a plan in dependency order, with the journal; unknown outcomes looked up.
//! - `sync::journal`: the sync database: journal, base, jobs, statuses, pruning, rows set aside.
//! - `sync::lease`: one sync per service across processes (`LeaseProvider`; file locks here).
//! - `sync::compare`: the side-by-side rows.
//! - `sync::status`: engine commands, events, jobs and the one place sync status is derived.
//! - `sync::engine`: one worker per service; publishes one snapshot of statuses and jobs.
//! - `ops`: the operations the GUI, the CLI and startup all call: `boot`, `service`, `run_as`.
//! - `cli`: the command line, one file per command group (`fabric`, `service`, `run_as`, `sync`,
//!   `console`).
//! - `ui::app`: the console's shell (layout, routing, keys, menus, the one `Modal`).
//! - `ui::screen`: the workspaces: `fabric_workspace`, `compare` (side by side), `jobs`,
//!   `settings`.
//! - `ui::dialog`: modal windows: `wizard` (Add Network Service), `admin` (fabric objects),
//!   `properties`, `run_as_dialog`, `exchange` (import/export), `preview`.
//! - `ui::widget`: `grid`, `virtual_list`, `ribbon`, `focus`, `host_group_tree`, `style`.
//! - `ui::startup`, `ui::context`, `ui::preferences`, `ui::engine_events`, `ui::metrics`: boot
//!   glue, the context screens borrow, saved window settings, the engine subscription, timings.

pub mod cli;
pub mod db;
pub mod fabric;
pub mod ipam;
pub mod ipam_server;
pub mod labelled;
pub mod logging;
pub mod ops;
pub mod paths;
pub mod sync;
pub mod ui;
