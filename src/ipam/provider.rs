//! The one async trait every IPAM provider implements, and what it reports.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::model::{Cursor, IpamId, IpamOp, RangeUsage, SnapshotRead, SnapshotScope};
use crate::fabric::connection::ConnectionString;
use crate::fabric::model::TlsTrust;

crate::labelled_enum! {
    /// The APIs a provider may implement, as the Test page and Configuration Providers pane list them.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    pub enum ProviderOperation {
        ReadAddressSpaces => "Get IP address spaces",
        WriteAddressSpaces => "Create/update/delete IP address spaces",
        ReadSubnets => "Get IP address subnets",
        WriteSubnets => "Create/update/delete IP address subnets",
        ReadRanges => "Get IP address ranges",
        WriteRanges => "Create/update/delete IP address ranges",
        ChangeFeed => "Get changes since a cursor",
        ServerTime => "Get server time",
        CustomerAddressSpaces => "Customer IP address spaces (VM networks)",
    }
}

/// What a configuration provider says of itself (Settings ▸ Configuration Providers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderDescriptor {
    /// Stable id stored in a network service's `provider` field.
    pub id: String,
    pub manufacturer: String,
    pub model: String,
    /// The configuration provider's name, e.g. "Microsoft IP Address Management Provider".
    pub provider_name: String,
    pub version: String,
    /// Port used when the connection string names none.
    pub default_port: u16,
    /// Scheme used when the connection string names none.
    pub default_https: bool,
    /// Every operation of `ProviderOperation::ALL`, with whether it is implemented.
    pub operations: Vec<(ProviderOperation, bool)>,
}

impl ProviderDescriptor {
    pub fn implements(&self, op: ProviderOperation) -> bool {
        self.operations.iter().any(|(o, yes)| *o == op && *yes)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TestOutcome {
    Passed,
    Failed,
}

/// One line of the Test page: "Open connection", "Capability discovery", "System info", "Permissions".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestResult {
    pub name: String,
    pub outcome: TestOutcome,
    /// Why it failed (naming the likely cause), or what was found.
    pub detail: String,
}

impl TestResult {
    pub fn passed(name: &str, detail: String) -> TestResult {
        TestResult {
            name: name.to_string(),
            outcome: TestOutcome::Passed,
            detail,
        }
    }

    pub fn failed(name: &str, detail: String) -> TestResult {
        TestResult {
            name: name.to_string(),
            outcome: TestOutcome::Failed,
            detail,
        }
    }
}

/// The Provider page's Test: Passed/Failed per test, Implemented/Not implemented per API, clock skew.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestReport {
    pub tests: Vec<TestResult>,
    pub operations: Vec<(ProviderOperation, bool)>,
    pub server_version: Option<String>,
    pub server_time: Option<DateTime<Utc>>,
    /// Server clock minus console clock, in milliseconds.
    pub skew_ms: Option<i64>,
    /// Whether the connection tested is encrypted, and how its server is trusted.
    #[serde(default)]
    pub encryption: Option<super::tls::Encryption>,
}

impl TestReport {
    pub fn passed(&self) -> bool {
        !self.tests.is_empty() && self.tests.iter().all(|t| t.outcome == TestOutcome::Passed)
    }
}

/// Why a call to an IPAM server failed. Every message names the server and says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum IpamError {
    #[error(
        "Cannot reach IPAM server {server}: {detail}. Check the connection string and that the server is running."
    )]
    Unreachable { server: String, detail: String },
    #[error(
        "TLS with IPAM server {server} failed: {detail}. Check the certificate or its pinned fingerprint."
    )]
    Tls { server: String, detail: String },
    /// Plain HTTP to another computer without the administrator's explicit choice.
    #[error(
        "Refusing to send the token to IPAM server {server} over plain HTTP: {detail}. Write https:// in the connection string, or allow unencrypted HTTP for this service (the wizard's Security page, or `service add --allow-insecure-http`)."
    )]
    Cleartext { server: String, detail: String },
    #[error(
        "IPAM server {server} rejected the credentials: {detail}. Check the Run As account's user name and password or token."
    )]
    Unauthorized { server: String, detail: String },
    #[error(
        "IPAM server {server} refused the operation: {detail}. Give the Run As account write rights (e.g. the IPAM ASM Administrators group)."
    )]
    Forbidden { server: String, detail: String },
    #[error(
        "IPAM server {server} did not answer in time ({detail}). It will be retried; check the server's load and the network."
    )]
    Timeout { server: String, detail: String },
    /// The request may have reached the server, but its answer never arrived (the connection
    /// was reset or closed after sending): what it asked for may or may not have been done.
    #[error(
        "The connection to IPAM server {server} broke before its answer arrived ({detail}). What was sent is looked up on the server before anything is sent again."
    )]
    Interrupted { server: String, detail: String },
    /// A paged read did not add up (objects added or deleted while it was read): it is not
    /// taken as complete, so nothing is inferred deleted from it.
    #[error(
        "IPAM server {server} changed while it was being read ({detail}). Nothing was taken as deleted; the next sync reads again."
    )]
    Incomplete { server: String, detail: String },
    /// The server's change events (a broker beside it) cannot be listened to.
    #[error(
        "Cannot listen for IPAM change events at {broker}: {detail}. Check the service's IPAM change events address and that the broker is running; meanwhile the server is read every sync interval."
    )]
    EventSource { broker: String, detail: String },
    #[error("IPAM server {server} answered something unexpected: {detail}.")]
    Protocol { server: String, detail: String },
    #[error("IPAM server {server} reports a conflict: {detail}.")]
    Conflict { server: String, detail: String },
    #[error("IPAM server {server} has no such object: {detail}.")]
    NotFound { server: String, detail: String },
    #[error("IPAM server {server} rejected field {field}: {detail}.")]
    Invalid {
        server: String,
        field: String,
        detail: String,
    },
    #[error("IPAM server {server} failed with an internal error: {detail}. It will be retried.")]
    Server {
        server: String,
        detail: String,
        /// The wait the server's `Retry-After` asked for, if it sent one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<std::time::Duration>,
    },
}

impl IpamError {
    /// Timeouts, unreachable servers and 5xx are worth retrying; the rest are not.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            IpamError::Unreachable { .. }
                | IpamError::Timeout { .. }
                | IpamError::Interrupted { .. }
                | IpamError::Incomplete { .. }
                | IpamError::Server { .. }
        )
    }

    /// Certainly never reached the server (no connection was made): safe to send again.
    pub fn nothing_sent(&self) -> bool {
        matches!(self, IpamError::Unreachable { .. })
    }

    /// The wait the server asked for before the next attempt.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            IpamError::Server { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Keeps the server's `Retry-After` on a server failure (other errors ignore it).
    pub fn with_retry_after(mut self, wait: Option<std::time::Duration>) -> Self {
        if let IpamError::Server { retry_after, .. } = &mut self {
            *retry_after = wait;
        }
        self
    }
}

/// The result of one operation of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpOutcome {
    /// Applied; `id` is the object's id on the server (for creates, possibly not the proposed one).
    Applied { id: IpamId },
    /// This operation was rejected.
    Failed(IpamError),
    /// Not applied because another operation of the same all-or-none batch failed; send it again.
    NotApplied,
    /// Sent, but its answer was lost (a timeout, a reset, a gateway error): it may or may not
    /// have been applied. Never sent again before it is looked up on the server.
    Unknown(IpamError),
}

/// Credentials from a Run As account: the user name, and the secret from the secret store.
#[derive(Clone)]
pub struct Credentials {
    pub user_name: String,
    pub secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user_name", &self.user_name)
            .field("secret", &"********")
            .finish()
    }
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub connection: ConnectionString,
    pub credentials: Credentials,
    /// Which certificates to accept, and whether plain HTTP to another host was chosen.
    pub trust: TlsTrust,
    /// Name of the network service, used in error messages.
    pub service_name: String,
    /// Where the server publishes its changes, when a separate broker does (see
    /// `NetworkService::event_source`).
    pub event_source: Option<String>,
}

#[async_trait::async_trait]
pub trait IpamProvider: Send + Sync {
    fn descriptor(&self) -> &ProviderDescriptor;

    /// The Provider page's Test.
    async fn test(&self) -> TestReport;

    /// The server's clock.
    async fn server_time(&self) -> Result<DateTime<Utc>, IpamError>;

    /// Everything in scope, or what changed since a cursor this server issued. A provider may
    /// answer `Full` even when asked for changes (e.g. the cursor expired).
    async fn snapshot(
        &self,
        scope: &SnapshotScope,
        since: Option<&Cursor>,
    ) -> Result<SnapshotRead, IpamError>;

    /// Apply a batch in order. `Err` means nothing was sent or the whole call failed; otherwise
    /// one outcome per operation.
    async fn apply(&self, batch: &[IpamOp]) -> Result<Vec<OpOutcome>, IpamError>;

    /// Whether the server is known, without asking it, to hold no change after `cursor`: a live
    /// subscription to its events has heard none since the cursor's read began. `false` when
    /// that is not known; a sync then reads the change feed.
    fn known_unchanged(&self, cursor: &Cursor) -> bool {
        let _ = cursor;
        false
    }

    /// Whether the server keeps the console's reports of range usage (`range_usage`,
    /// `report_usage`).
    fn keeps_usage(&self) -> bool {
        false
    }

    /// The usage the console last reported for each range, as the server holds it.
    async fn range_usages(
        &self,
    ) -> Result<std::collections::HashMap<IpamId, RangeUsage>, IpamError> {
        Ok(Default::default())
    }

    /// Reports ranges' usage (each replacing its last report). Sent only for ranges whose copy
    /// on the server differs; after an unknown outcome the next sync reads the copies again
    /// before sending.
    async fn report_usages(&self, reports: &[(IpamId, RangeUsage)]) -> Result<(), IpamError> {
        let _ = reports;
        Ok(())
    }

    /// Addresses in use on the IPAM side inside ranges that the console did not grant (assigned
    /// there by hand or by another tool), by range. Read on every sync of a server that keeps
    /// usage, so the console never grants an address the IPAM already assigned.
    async fn assignments(&self) -> Result<super::model::Assignments, IpamError> {
        Ok(Default::default())
    }

    /// Waits up to `timeout` for the server to record a change after `cursor`. A provider
    /// whose server cannot be waited on answers `Unsupported` at once: its service is polled.
    async fn wait_for_change(
        &self,
        cursor: &Cursor,
        timeout: std::time::Duration,
    ) -> Result<ChangeWait, IpamError> {
        let _ = (cursor, timeout);
        Ok(ChangeWait::Unsupported(
            "this server cannot tell the console of changes",
        ))
    }
}

/// What waiting for a change on the server found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeWait {
    /// Something changed after the cursor (or the cursor is no longer served).
    Changed,
    /// Nothing changed within the time.
    Quiet,
    /// This server cannot be waited on, and why (said to the operator).
    Unsupported(&'static str),
}

/// Builds providers of one kind from a network service's settings.
pub trait ProviderFactory: Send + Sync {
    fn descriptor(&self) -> &ProviderDescriptor;
    fn connect(&self, config: ProviderConfig) -> Result<Arc<dyn IpamProvider>, IpamError>;
}
