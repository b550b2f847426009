//! Nautobot (Network to Code) as an IPAM server, over its REST API (pinned to API version 2.4).
//!
//! | neutral model          | Nautobot                                                            |
//! |------------------------|---------------------------------------------------------------------|
//! | provider address space | Namespace `vmm-ln-<name>`                                            |
//! | customer address space | Namespace `vmm-vmn-<name>`                                           |
//! | IP address subnet      | Prefix of type `network` in that namespace; name in its description |
//! | IP address range       | IP Address Range (start/end, parent = the subnet's prefix)          |
//!
//! Console identity and the seed's columns live in custom fields (`vmm_id`, `vmm_server`,
//! `vmm_logical_network`, `vmm_network_site`, `vmm_vlan`, …), created on first use. Objects
//! without `vmm_id`/`vmm_server` were made by someone else: they are read, never deleted.
//! Ids are Nautobot's own UUIDs; creates report them in [`OpOutcome::Applied`].

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::ipam::model::{Cursor, IpamOp, SnapshotRead, SnapshotScope};
use crate::ipam::provider::{
    ChangeWait, IpamError, IpamProvider, OpOutcome, ProviderConfig, ProviderDescriptor,
    ProviderFactory, ProviderOperation, TestReport,
};
use crate::ipam::retry::RetryPolicy;
use crate::ipam::tls;

mod batches;
mod cursor;
mod events;
mod mapping;
mod test;
mod usage;

pub use crate::ipam::rest::drf_message as nautobot_message;
pub use mapping::{field, namespace_name};

use crate::ipam::incremental::FullReads;
use crate::ipam::rest::*;

/// What Nautobot's messages name.
pub(crate) const PRODUCT: Product = Product {
    name: "Nautobot",
    permissions: "in Nautobot grant the token's user object permissions on ipam.namespace, \
                  ipam.prefix and ipam.ipaddressrange (view to read; add, change and delete to \
                  write)",
    valid_id: is_uuid,
};

/// Maps an HTTP failure of Nautobot to the console's error, keeping Nautobot's message.
pub fn status_error(server: &str, status: reqwest::StatusCode, body: &Value) -> IpamError {
    crate::ipam::rest::status_error(server, PRODUCT, status, body)
}
use cursor::*;
use mapping::*;

/// Stable id stored in a network service's `provider` field.
pub const PROVIDER_ID: &str = "nautobot";
/// Nautobot's own server speaks plain HTTP; production puts a TLS proxy in front.
pub const DEFAULT_HTTPS: bool = false;
/// The REST API version every request pins in `Accept`.
pub const API_VERSION: &str = "2.4";
/// Namespace name prefix of provider address spaces (logical networks).
pub const PROVIDER_NAMESPACE_PREFIX: &str = crate::ipam::drf::PROVIDER_PREFIX;
/// Namespace name prefix of customer address spaces (VM networks).
pub const CUSTOMER_NAMESPACE_PREFIX: &str = crate::ipam::drf::CUSTOMER_PREFIX;
/// Namespace name prefix of the Test page's scratch objects (never read as address spaces).
const PROBE_NAMESPACE_PREFIX: &str = "fabric-console-permission-check-";
/// Clock skew beyond which the Test page warns (seed: time synchrony).
const SKEW_WARNING_MS: i64 = 5 * 60 * 1000;

const NAMESPACES: &str = "/api/ipam/namespaces/";
const PREFIXES: &str = "/api/ipam/prefixes/";
const RANGES: &str = "/api/ipam/ip-address-ranges/";
const IP_ADDRESSES: &str = "/api/ipam/ip-addresses/";
const CUSTOM_FIELDS: &str = "/api/extras/custom-fields/";
const STATUSES: &str = "/api/extras/statuses/";
const OBJECT_CHANGES: &str = "/api/extras/object-changes/";
const STATUS: &str = "/api/status/";
/// The API root: the cheapest authenticated answer, read for its `Date` (`/api/status/` checks
/// workers and takes about a second on a small server).
const API_ROOT: &str = "/api/";

const CT_NAMESPACE: &str = "ipam.namespace";
const CT_PREFIX: &str = "ipam.prefix";
const CT_RANGE: &str = "ipam.ipaddressrange";
const CT_ADDRESS: &str = "ipam.ipaddress";

/// Knobs of the client; the defaults suit a Nautobot on a small server.
#[derive(Debug, Clone)]
pub struct NautobotTuning {
    /// `limit` of list reads (Nautobot's maximum is 1000).
    pub page_size: usize,
    /// Objects per bulk POST/PATCH/DELETE.
    pub batch_size: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Attempts of an idempotent GET before giving up.
    pub get_attempts: u32,
    /// How far before the previous read's server time an incremental read looks back.
    pub overlap: chrono::Duration,
    /// Every n-th read is a full read, as a safety net, ...
    pub full_read_every: u32,
    /// ... unless the last full read is more recent than this (live sync reads often).
    pub full_read_gap: chrono::Duration,
    /// A cursor older than this (server clock) gets a full read.
    pub full_read_after: chrono::Duration,
}

impl Default for NautobotTuning {
    fn default() -> Self {
        NautobotTuning {
            page_size: 1000,
            batch_size: 200,
            concurrency: 4,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(180),
            get_attempts: 4,
            overlap: FullReads::default().overlap,
            full_read_every: FullReads::default().every,
            full_read_gap: FullReads::default().gap,
            full_read_after: FullReads::default().after,
        }
    }
}

pub fn descriptor() -> ProviderDescriptor {
    ProviderDescriptor {
        id: PROVIDER_ID.to_string(),
        manufacturer: "Network to Code".to_string(),
        model: "Nautobot".to_string(),
        provider_name: "Fabric Console Nautobot Provider".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        default_port: 8080,
        default_https: DEFAULT_HTTPS,
        operations: ProviderOperation::ALL
            .iter()
            .map(|op| (*op, true))
            .collect(),
    }
}

/// Builds [`NautobotProvider`]s from network services' settings.
pub struct NautobotProviderFactory {
    descriptor: ProviderDescriptor,
    tuning: NautobotTuning,
}

impl NautobotProviderFactory {
    pub fn new() -> Self {
        Self::with_tuning(NautobotTuning::default())
    }

    pub fn with_tuning(tuning: NautobotTuning) -> Self {
        NautobotProviderFactory {
            descriptor: descriptor(),
            tuning,
        }
    }
}

impl Default for NautobotProviderFactory {
    fn default() -> Self {
        Self::new()
    }
}

impl ProviderFactory for NautobotProviderFactory {
    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    fn connect(&self, config: ProviderConfig) -> Result<Arc<dyn IpamProvider>, IpamError> {
        Ok(Arc::new(NautobotProvider::new(
            config,
            self.tuning.clone(),
        )?))
    }
}

// ---------------------------------------------------------------------------------------------
// Provider
// ---------------------------------------------------------------------------------------------

/// One network service's connection to a Nautobot.
pub struct NautobotProvider {
    descriptor: ProviderDescriptor,
    api: Api,
    tuning: NautobotTuning,
    /// Value of `vmm_server` on objects this console writes.
    manager: String,
    /// Run As account's user name, for messages (never the secret).
    account: String,
    schema: Mutex<Option<Schema>>,
    /// The last read of the address usage (see `UsageCache::get`).
    usage_read: crate::ipam::address_usage::UsageCache,
    /// Whether the connection is encrypted, for the Test page.
    encryption: tls::Encryption,
    /// The Redis Nautobot's event broker publishes to, when the service names one.
    events: Option<String>,
}

impl NautobotProvider {
    pub fn new(config: ProviderConfig, tuning: NautobotTuning) -> Result<Self, IpamError> {
        let descriptor = descriptor();
        let scheme =
            tls::effective_scheme(&config.connection, &config.trust, descriptor.default_https);
        let base = config.connection.base_url(scheme, descriptor.default_port);
        let server = if config.service_name.trim().is_empty() {
            format!("Nautobot {base}")
        } else {
            format!("{} ({base})", config.service_name.trim())
        };
        let account = config.credentials.user_name.clone();
        let token = config.credentials.secret.trim();
        if token.is_empty() {
            return Err(IpamError::Unauthorized {
                server,
                detail: format!(
                    "the Run As account '{account}' has no token; store a Nautobot API token as its password"
                ),
            });
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/json; version=2.4"),
        );
        let mut auth = HeaderValue::from_str(&format!("Token {token}")).map_err(|_| {
            IpamError::Unauthorized {
                server: server.clone(),
                detail: format!(
                    "the token of Run As account '{account}' contains characters not allowed in an HTTP header"
                ),
            }
        })?;
        auth.set_sensitive(true);
        headers.insert(AUTHORIZATION, auth);
        let builder = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(tuning.connect_timeout)
            .timeout(tuning.request_timeout)
            .user_agent(concat!("fabric-console/", env!("CARGO_PKG_VERSION")));
        let http = tls::configure(builder, &config.connection, &config.trust, scheme, &server)?
            .build()
            .map_err(|e| IpamError::Tls {
                server: server.clone(),
                detail: error_chain(&e),
            })?;
        let manager = if config.service_name.trim().is_empty() {
            "Fabric Console".to_string()
        } else {
            config.service_name.trim().to_string()
        };
        let encryption =
            tls::Encryption::of(&config.connection, &config.trust, descriptor.default_https);
        Ok(NautobotProvider {
            descriptor,
            encryption,
            events: config.event_source.clone(),
            api: Api {
                http,
                base,
                server,
                get_retry: RetryPolicy {
                    attempts: tuning.get_attempts.max(1),
                    first_delay: Duration::from_millis(500),
                    max_delay: Duration::from_millis(250 << 6),
                },
                page_size: tuning.page_size.clamp(1, 1000),
                concurrency: tuning.concurrency.max(1),
                max_answer_bytes: MAX_ANSWER_BYTES,
                product: PRODUCT,
            },
            tuning,
            manager,
            account,
            schema: Mutex::new(None),
            usage_read: Default::default(),
        })
    }

    /// The name used for this server in messages.
    pub fn server_label(&self) -> &str {
        &self.api.server
    }

    fn protocol(&self, detail: impl Into<String>) -> IpamError {
        IpamError::Protocol {
            server: self.api.server.clone(),
            detail: detail.into(),
        }
    }

    async fn send_ok(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, IpamError> {
        let reply = self.api.send(method, path, &[], body).await?;
        if reply.status.is_success() {
            Ok(reply)
        } else {
            Err(status_error(&self.api.server, reply.status, &reply.body))
        }
    }
}

#[async_trait::async_trait]
impl IpamProvider for NautobotProvider {
    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    async fn test(&self) -> TestReport {
        self.run_test().await
    }

    async fn server_time(&self) -> Result<DateTime<Utc>, IpamError> {
        let reply = self.api.get(API_ROOT, &[]).await?;
        reply
            .date
            .ok_or_else(|| self.protocol("no Date header in the answer to /api/"))
    }

    async fn snapshot(
        &self,
        scope: &SnapshotScope,
        since: Option<&Cursor>,
    ) -> Result<SnapshotRead, IpamError> {
        let previous = since.and_then(|c| CursorState::decode_for(c, CURSOR_TAG, scope));
        match previous {
            Some(state) => self.incremental_read(scope, state).await,
            None => Ok(SnapshotRead::Full(self.full_read(scope).await?)),
        }
    }

    async fn apply(&self, batch: &[IpamOp]) -> Result<Vec<OpOutcome>, IpamError> {
        self.apply_batch(batch).await
    }

    fn keeps_usage(&self) -> bool {
        true
    }

    async fn range_usages(
        &self,
    ) -> Result<
        std::collections::HashMap<crate::ipam::model::IpamId, crate::ipam::model::RangeUsage>,
        IpamError,
    > {
        Ok(self.usage(true).await?.reported())
    }

    async fn assignments(&self) -> Result<crate::ipam::model::Assignments, IpamError> {
        Ok(self.usage(true).await?.foreign.clone())
    }

    async fn report_usages(
        &self,
        reports: &[(crate::ipam::model::IpamId, crate::ipam::model::RangeUsage)],
    ) -> Result<(), IpamError> {
        self.write_usage(reports).await
    }

    fn known_unchanged(&self, cursor: &Cursor) -> bool {
        let (Some(source), Some(state)) = (&self.events, CursorState::decode(cursor, CURSOR_TAG))
        else {
            return false;
        };
        state
            .read_local
            .is_some_and(|since| events::heard_nothing_since(source, since, &state.spaces))
    }

    /// Listens on the Redis of Nautobot's event broker, when the service names one: an event
    /// on an object of the cursor's scope that arrived after the cursor's read began, or a
    /// (re)subscription made after it (events may have been dropped before), is a change.
    async fn wait_for_change(
        &self,
        cursor: &Cursor,
        timeout: Duration,
    ) -> Result<ChangeWait, IpamError> {
        let Some(source) = &self.events else {
            return Ok(ChangeWait::Unsupported(
                "no IPAM change events address (the Redis of Nautobot's event broker) is set in the service's properties",
            ));
        };
        let state = CursorState::decode(cursor, CURSOR_TAG);
        let since = state.as_ref().and_then(|s| s.read_local);
        let spaces = state.map(|s| s.spaces).unwrap_or_default();
        events::feed(source)
            .wait(since, &spaces, timeout)
            .await
            .map_err(|detail| IpamError::EventSource {
                broker: source.clone(),
                detail,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_names_nautobot() {
        let d = descriptor();
        assert_eq!(d.manufacturer, "Network to Code");
        assert_eq!(d.model, "Nautobot");
        assert_eq!(d.provider_name, "Fabric Console Nautobot Provider");
        assert_eq!(d.default_port, 8080);
        assert!(!d.default_https);
        assert!(ProviderOperation::ALL.iter().all(|op| d.implements(*op)));
    }
}
