//! NetBox (NetBox Labs) as an IPAM server, over its REST API (pinned to API version 4.7).
//!
//! | neutral model          | NetBox                                                               |
//! |------------------------|----------------------------------------------------------------------|
//! | provider address space | VRF `vmm-ln-<name>`                                                  |
//! | customer address space | VRF `vmm-vmn-<name>` (tenants reuse subnets: one VRF each)           |
//! | IP address subnet      | Prefix in that VRF; name in its description                          |
//! | IP address range       | IP Range in that VRF inside the prefix; name and settings in `vmm_pool` |
//!
//! Console identity and the seed's columns live in custom fields (`vmm_id`, `vmm_server`,
//! `vmm_logical_network`, `vmm_network_site`, `vmm_vlan`, …), created on first use. Objects
//! without `vmm_id`/`vmm_server` were made by someone else: they are read, never deleted.
//! NetBox ignores filters it does not know and answers with everything, so every list read is
//! checked against what it asked for.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::ipam::drf::id_text;
use crate::ipam::incremental::{CursorState, FullReads};
use crate::ipam::model::{Cursor, IpamId, IpamKind, IpamOp, OpVerb, SnapshotRead, SnapshotScope};
use crate::ipam::provider::{
    IpamError, IpamProvider, OpOutcome, ProviderConfig, ProviderDescriptor, ProviderFactory,
    ProviderOperation, TestReport,
};
use crate::ipam::rest::*;
use crate::ipam::retry::RetryPolicy;
use crate::ipam::tls;

mod cursor;
mod mapping;
mod test;
mod usage;

pub use mapping::{field, vrf_name};

use cursor::*;
use mapping::*;

/// Stable id stored in a network service's `provider` field.
pub const PROVIDER_ID: &str = "netbox";
/// NetBox is served over HTTPS in production.
pub const DEFAULT_HTTPS: bool = true;
/// The REST API version every request pins in `Accept`.
pub const API_VERSION: &str = "4.7";
/// VRF name prefix of provider address spaces (logical networks).
pub const PROVIDER_VRF_PREFIX: &str = crate::ipam::drf::PROVIDER_PREFIX;
/// VRF name prefix of customer address spaces (VM networks).
pub const CUSTOMER_VRF_PREFIX: &str = crate::ipam::drf::CUSTOMER_PREFIX;
/// Name prefix of the Test page's scratch VRFs (never read as address spaces).
const PROBE_PREFIX: &str = "fabric-console-permission-check-";
/// Clock skew beyond which the Test page warns (seed: time synchrony).
const SKEW_WARNING_MS: i64 = 5 * 60 * 1000;

const VRFS: &str = "/api/ipam/vrfs/";
const PREFIXES: &str = "/api/ipam/prefixes/";
const RANGES: &str = "/api/ipam/ip-ranges/";
const CUSTOM_FIELDS: &str = "/api/extras/custom-fields/";
const OBJECT_CHANGES: &str = "/api/core/object-changes/";
const STATUS: &str = "/api/status/";
/// Objects per bulk POST/PATCH/DELETE (one transaction each).
const BATCH_SIZE: usize = 200;

/// What the check of the filters found (see `check_filters`).
#[derive(Debug, Clone, Copy)]
struct Filters {
    /// The change log can be read and filtered: incremental reads are possible.
    change_log: bool,
}

/// What NetBox's messages name.
pub(crate) const PRODUCT: Product = Product {
    name: "NetBox",
    permissions: "in NetBox grant the token's user object permissions on ipam.vrf, ipam.prefix, \
                  ipam.iprange and ipam.ipaddress (view to read; add, change and delete to write)",
    valid_id: is_netbox_id,
};

pub fn descriptor() -> ProviderDescriptor {
    ProviderDescriptor {
        id: PROVIDER_ID.to_string(),
        manufacturer: "NetBox Labs".to_string(),
        model: "NetBox".to_string(),
        provider_name: "Fabric Console NetBox Provider".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        default_port: 443,
        default_https: DEFAULT_HTTPS,
        operations: ProviderOperation::ALL
            .iter()
            .map(|op| (*op, true))
            .collect(),
    }
}

/// Builds [`NetboxProvider`]s from network services' settings.
pub struct NetboxProviderFactory {
    descriptor: ProviderDescriptor,
    reads: FullReads,
}

impl NetboxProviderFactory {
    pub fn new() -> Self {
        Self::with_reads(FullReads::default())
    }

    /// A factory whose providers make full reads as `reads` says (tests shorten the look-back).
    pub fn with_reads(reads: FullReads) -> Self {
        NetboxProviderFactory {
            descriptor: descriptor(),
            reads,
        }
    }
}

impl Default for NetboxProviderFactory {
    fn default() -> Self {
        Self::new()
    }
}

impl ProviderFactory for NetboxProviderFactory {
    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    fn connect(&self, config: ProviderConfig) -> Result<Arc<dyn IpamProvider>, IpamError> {
        let mut provider = NetboxProvider::new(config)?;
        provider.reads = self.reads;
        Ok(Arc::new(provider))
    }
}

/// One network service's connection to a NetBox.
pub struct NetboxProvider {
    descriptor: ProviderDescriptor,
    api: Api,
    /// Value of `vmm_server` on objects this console writes.
    manager: String,
    /// Run As account's user name, for messages (never the secret).
    account: String,
    schema_ready: Mutex<bool>,
    /// When reads are full again: the safety net for edits below the API, which neither
    /// `last_updated` nor the change log shows.
    reads: FullReads,
    /// What the check of the filters the reads rely on found on this connection.
    filters: Mutex<Option<Filters>>,
    /// The last read of the address usage (see `usage`).
    usage_read: crate::ipam::address_usage::UsageCache,
    encryption: tls::Encryption,
}

impl NetboxProvider {
    pub fn new(config: ProviderConfig) -> Result<Self, IpamError> {
        let descriptor = descriptor();
        let scheme =
            tls::effective_scheme(&config.connection, &config.trust, descriptor.default_https);
        let base = config.connection.base_url(scheme, descriptor.default_port);
        let server = if config.service_name.trim().is_empty() {
            format!("NetBox {base}")
        } else {
            format!("{} ({base})", config.service_name.trim())
        };
        let account = config.credentials.user_name.clone();
        let token = config.credentials.secret.trim();
        if token.is_empty() {
            return Err(IpamError::Unauthorized {
                server,
                detail: format!(
                    "the Run As account '{account}' has no token; store a NetBox API token as its password"
                ),
            });
        }
        // v2 tokens (`nbt_<key>.<secret>`) go as Bearer, v1 tokens (40 characters) as Token.
        let scheme_word = if token.starts_with("nbt_") {
            "Bearer"
        } else {
            "Token"
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT,
            HeaderValue::from_str(&format!("application/json; version={API_VERSION}"))
                .expect("static header"),
        );
        let mut auth = HeaderValue::from_str(&format!("{scheme_word} {token}")).map_err(|_| {
            IpamError::Unauthorized {
                server: server.clone(),
                detail: format!(
                    "the token of Run As account '{account}' holds characters a header cannot carry; store the token exactly as NetBox showed it"
                ),
            }
        })?;
        auth.set_sensitive(true);
        headers.insert(AUTHORIZATION, auth);
        let builder = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(180))
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
        Ok(NetboxProvider {
            descriptor,
            encryption,
            api: Api {
                http,
                base,
                server,
                get_retry: RetryPolicy {
                    attempts: 4,
                    first_delay: Duration::from_millis(500),
                    max_delay: Duration::from_millis(250 << 6),
                },
                page_size: 1000,
                concurrency: 4,
                max_answer_bytes: MAX_ANSWER_BYTES,
                product: PRODUCT,
            },
            manager,
            account,
            schema_ready: Mutex::new(false),
            reads: FullReads::default(),
            filters: Mutex::new(None),
            usage_read: Default::default(),
        })
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
            Err(status_error(
                &self.api.server,
                PRODUCT,
                reply.status,
                &reply.body,
            ))
        }
    }

    /// Lists `path` (with `extra`) for each of `ids` in `filter` (repeated, in chunks), keeping
    /// only objects whose `key` object is one of them: NetBox answers with everything when it
    /// ignores a filter.
    async fn list_in(
        &self,
        path: &str,
        extra: &[(String, String)],
        filter: &str,
        key: &str,
        ids: &[String],
    ) -> Result<Vec<Value>, IpamError> {
        let filters = ids
            .chunks(60)
            .map(|c| {
                c.iter()
                    .map(|id| (filter.to_string(), id.clone()))
                    .collect()
            })
            .collect();
        let wanted: HashSet<&str> = ids.iter().map(String::as_str).collect();
        let mut out = self.api.list_filtered(path, extra, filters).await?;
        let before = out.len();
        out.retain(|o| ref_id(o, key).is_some_and(|id| wanted.contains(id.as_str())));
        if out.len() != before {
            tracing::warn!(
                server = %self.api.server,
                path,
                filter,
                dropped = before - out.len(),
                "NetBox answered objects outside the filter; they were left out"
            );
        }
        Ok(out)
    }

    /// Checks, once per connection, that NetBox knows the filters the reads rely on: it ignores
    /// a filter it does not know and answers with everything, which would read or delete the
    /// wrong objects. Each probe asks for something nothing matches (an id no object has, a time
    /// in the future or the distant past, a type or action that does not exist) and must get
    /// nothing back, or a 400 naming the filter. The change log is optional: without the right
    /// to read it, reads are full.
    async fn check_filters(&self) -> Result<Filters, IpamError> {
        let mut checked = self.filters.lock().await;
        if let Some(found) = *checked {
            return Ok(found);
        }
        // The largest 32-bit id: NetBox's ids never get there.
        const NO_SUCH_ID: &str = "2147483647";
        const FUTURE: &str = "2999-01-01T00:00:00.000000Z";
        const PAST: &str = "1971-01-01T00:00:00.000000Z";
        let objects: &[(&str, &str, &str)] = &[
            (PREFIXES, "vrf_id", NO_SUCH_ID),
            (RANGES, "vrf_id", NO_SUCH_ID),
            (PREFIXES, "id", NO_SUCH_ID),
            (RANGES, "id", NO_SUCH_ID),
            (VRFS, "id", NO_SUCH_ID),
            (PREFIXES, "last_updated__gte", FUTURE),
            (RANGES, "last_updated__gte", FUTURE),
        ];
        for (path, filter, value) in objects {
            if !self.filter_probe(path, filter, value).await? {
                return Err(self.ignored(path, filter));
            }
        }
        let log: &[(&str, &str)] = &[
            ("time_after", FUTURE),
            ("time_before", PAST),
            ("changed_object_type", "fabricconsole.nothing"),
            ("action", "fabricconsole-nothing"),
        ];
        let mut change_log = true;
        for (filter, value) in log {
            match self.filter_probe(OBJECT_CHANGES, filter, value).await {
                Ok(true) => {}
                Ok(false) => return Err(self.ignored(OBJECT_CHANGES, filter)),
                Err(IpamError::Forbidden { .. }) => {
                    tracing::info!(
                        server = %self.api.server,
                        "the token cannot read NetBox's change log (core.view_objectchange); every read is full"
                    );
                    change_log = false;
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        let found = Filters { change_log };
        *checked = Some(found);
        Ok(found)
    }

    /// Whether `filter=value` on `path` selects nothing (or is refused by name); retried like
    /// any read when the server or the way to it fails for a moment.
    async fn filter_probe(&self, path: &str, filter: &str, value: &str) -> Result<bool, IpamError> {
        let query = [
            (filter.to_string(), value.to_string()),
            ("limit".to_string(), "1".to_string()),
            ("fields".to_string(), "id".to_string()),
        ];
        self.api
            .get_retry
            .idempotent(|| async {
                let reply = self.api.send(Method::GET, path, &query, None).await?;
                if reply.status == reqwest::StatusCode::BAD_REQUEST
                    && reply.body.get(filter).is_some()
                {
                    return Ok(true);
                }
                if !reply.status.is_success() {
                    return Err(
                        status_error(&self.api.server, PRODUCT, reply.status, &reply.body)
                            .with_retry_after(reply.retry_after),
                    );
                }
                Ok(reply.body.get("count").and_then(Value::as_u64) == Some(0))
            })
            .await
    }

    fn ignored(&self, path: &str, filter: &str) -> IpamError {
        self.protocol(format!(
            "NetBox ignored the filter {filter} on {path} (it answered as if unfiltered); this \
             NetBox version is not one the provider supports (tested with 4.7)"
        ))
    }

    /// The prefix length and VRF of each subnet a range write needs, read from NetBox.
    async fn prefixes_of(&self, ids: &[String]) -> Result<HashMap<String, (u8, Value)>, IpamError> {
        let found = self.api.list_by_ids(PREFIXES, ids, &[]).await?;
        let mut out = HashMap::new();
        for p in &found {
            let (Some(id), Some(net)) = (
                id_of(p),
                str_of(p, "prefix").and_then(|s| s.parse::<ipnet::IpNet>().ok()),
            ) else {
                continue;
            };
            let vrf = ref_id(p, "vrf").map_or(Value::Null, |v| id_json(&IpamId::from(v)));
            out.insert(id, (net.prefix_len(), vrf));
        }
        Ok(out)
    }

    /// One run of operations of one kind and verb, as bulk requests.
    async fn apply_run(&self, ops: &[(usize, IpamOp)], outcomes: &mut [Option<OpOutcome>]) {
        let Some((_, first)) = ops.first() else {
            return;
        };
        let kind = first.kind();
        let path = path_of(kind);
        match first.verb() {
            OpVerb::Create | OpVerb::Update => {
                let is_update = first.verb() == OpVerb::Update;
                // Ranges need their prefix's length and VRF.
                let subnet_ids: Vec<String> = ops
                    .iter()
                    .filter_map(|(_, op)| match op {
                        IpamOp::CreateRange(r) | IpamOp::UpdateRange(r) => {
                            Some(r.subnet.to_string())
                        }
                        _ => None,
                    })
                    .collect();
                let prefixes = if subnet_ids.is_empty() {
                    HashMap::new()
                } else {
                    match self.prefixes_of(&subnet_ids).await {
                        Ok(p) => p,
                        Err(e) => {
                            for (i, _) in ops {
                                outcomes[*i] = Some(outcome_of_error(e.clone()));
                            }
                            return;
                        }
                    }
                };
                let mut items = Vec::new();
                for (i, op) in ops {
                    let mut body = match op {
                        IpamOp::CreateSpace(s) | IpamOp::UpdateSpace(s) => {
                            space_body(s, &self.manager)
                        }
                        IpamOp::CreateSubnet(s) | IpamOp::UpdateSubnet(s) => {
                            subnet_body(s, &self.manager)
                        }
                        IpamOp::CreateRange(r) | IpamOp::UpdateRange(r) => {
                            match prefixes.get(r.subnet.as_str()) {
                                Some((len, vrf)) => range_body(r, &self.manager, *len, vrf),
                                None => {
                                    outcomes[*i] = Some(OpOutcome::Failed(IpamError::NotFound {
                                        server: self.api.server.clone(),
                                        detail: format!(
                                            "the prefix {} of IP range {}-{} is not in NetBox",
                                            r.subnet, r.start, r.end
                                        ),
                                    }));
                                    continue;
                                }
                            }
                        }
                        _ => Value::Null,
                    };
                    if is_update && let Value::Object(m) = &mut body {
                        m.insert("id".into(), id_json(op.target_id()));
                        // A prefix stays in its VRF; status is the operator's to change.
                        if kind == IpamKind::Subnet {
                            m.remove("vrf");
                        }
                        m.remove("status");
                    }
                    items.push((*i, body));
                }
                let method = if is_update {
                    Method::PATCH
                } else {
                    Method::POST
                };
                for (i, result) in self.api.bulk(method, path, items, BATCH_SIZE).await {
                    outcomes[i] = Some(match result {
                        Ok(object) => match id_of(&object) {
                            Some(id) => OpOutcome::Applied { id: id.into() },
                            None => OpOutcome::Failed(
                                self.protocol(format!("{path} answered an object without an id")),
                            ),
                        },
                        Err(e) => outcome_of_error(e),
                    });
                }
            }
            OpVerb::Delete => {
                let ids: Vec<String> = ops
                    .iter()
                    .map(|(_, op)| op.target_id().to_string())
                    .collect();
                let existing: HashMap<String, Value> =
                    match self.api.list_by_ids(path, &ids, &[]).await {
                        Ok(found) => found
                            .into_iter()
                            .filter_map(|o| id_of(&o).map(|id| (id, o)))
                            .collect(),
                        Err(e) => {
                            for (i, _) in ops {
                                outcomes[*i] = Some(OpOutcome::Failed(e.clone()));
                            }
                            return;
                        }
                    };
                let mut items = Vec::new();
                for (i, op) in ops {
                    let id = op.target_id();
                    match existing.get(id.as_str()) {
                        // Already gone: the wanted state holds.
                        None if is_netbox_id(id.as_str()) => {
                            outcomes[*i] = Some(OpOutcome::Applied { id: id.clone() })
                        }
                        None => {
                            outcomes[*i] = Some(OpOutcome::Failed(IpamError::NotFound {
                                server: self.api.server.clone(),
                                detail: format!("{} id \"{id}\" is not a NetBox id", kind.label()),
                            }))
                        }
                        Some(object) if !is_console_object(object) => {
                            outcomes[*i] = Some(OpOutcome::Failed(IpamError::Conflict {
                                server: self.api.server.clone(),
                                detail: format!(
                                    "{} {} was not created by Fabric Console (it has no vmm_id or \
                                     vmm_server custom field), so the console does not delete it; \
                                     delete it in NetBox if it should go",
                                    kind.label(),
                                    describe(object)
                                ),
                            }))
                        }
                        Some(_) => items.push((*i, json!({ "id": id_json(id) }))),
                    }
                }
                if kind == IpamKind::Range {
                    let ranges: Vec<String> = items
                        .iter()
                        .filter_map(|(_, v)| id_text(&v["id"]))
                        .collect();
                    if let Err(e) = self.delete_range_addresses(&ranges).await {
                        for (i, _) in items {
                            outcomes[i] = Some(outcome_of_error(e.clone()));
                        }
                        return;
                    }
                }
                for (i, result) in self.api.bulk(Method::DELETE, path, items, BATCH_SIZE).await {
                    outcomes[i] = Some(match result {
                        Ok(_) => OpOutcome::Applied {
                            id: ops
                                .iter()
                                .find(|(j, _)| *j == i)
                                .map(|(_, op)| op.target_id().clone())
                                .unwrap_or_default(),
                        },
                        Err(e) => outcome_of_error(e),
                    });
                }
            }
        }
    }

    /// Applies a batch in runs that go out as bulk requests, translating proposed ids.
    async fn apply_batch(&self, batch: &[IpamOp]) -> Result<Vec<OpOutcome>, IpamError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        self.ensure_schema(true).await?;
        self.check_filters().await?;
        self.usage_read.forget().await;
        let mut outcomes: Vec<Option<OpOutcome>> = vec![None; batch.len()];
        let mut ids: HashMap<IpamId, IpamId> = HashMap::new();
        let mut failed_creates: HashSet<IpamId> = HashSet::new();
        for run in runs(batch) {
            let mut ops = Vec::new();
            for i in run {
                let op = &batch[i];
                if references(op).iter().any(|r| failed_creates.contains(*r)) {
                    outcomes[i] = Some(OpOutcome::NotApplied);
                    if op.verb() == OpVerb::Create {
                        failed_creates.insert(op.target_id().clone());
                    }
                    continue;
                }
                ops.push((i, translate(op, &ids)));
            }
            self.apply_run(&ops, &mut outcomes).await;
            for (i, _) in &ops {
                let op = &batch[*i];
                if op.verb() != OpVerb::Create {
                    continue;
                }
                match &outcomes[*i] {
                    Some(OpOutcome::Applied { id }) => {
                        ids.insert(op.target_id().clone(), id.clone());
                    }
                    _ => {
                        failed_creates.insert(op.target_id().clone());
                    }
                }
            }
        }
        Ok(outcomes
            .into_iter()
            .map(|o| o.unwrap_or(OpOutcome::NotApplied))
            .collect())
    }
}

fn path_of(kind: IpamKind) -> &'static str {
    match kind {
        IpamKind::AddressSpace => VRFS,
        IpamKind::Subnet => PREFIXES,
        IpamKind::Range => RANGES,
    }
}

#[async_trait::async_trait]
impl IpamProvider for NetboxProvider {
    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    async fn test(&self) -> TestReport {
        self.run_test().await
    }

    async fn server_time(&self) -> Result<DateTime<Utc>, IpamError> {
        let reply = self.api.get(STATUS, &[]).await?;
        reply
            .date
            .ok_or_else(|| self.protocol("no Date header in the answer to /api/status/"))
    }

    async fn snapshot(
        &self,
        scope: &SnapshotScope,
        since: Option<&Cursor>,
    ) -> Result<SnapshotRead, IpamError> {
        self.check_filters().await?;
        match since.and_then(|c| CursorState::decode_for(c, CURSOR_TAG, scope)) {
            Some(previous) => self.incremental_read(scope, previous).await,
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
    ) -> Result<HashMap<IpamId, crate::ipam::model::RangeUsage>, IpamError> {
        Ok(self.usage(true).await?.reported())
    }

    async fn assignments(&self) -> Result<crate::ipam::model::Assignments, IpamError> {
        Ok(self.usage(true).await?.foreign.clone())
    }

    async fn report_usages(
        &self,
        reports: &[(IpamId, crate::ipam::model::RangeUsage)],
    ) -> Result<(), IpamError> {
        self.write_usage(reports).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A NetBox that answers every list with nothing, except that it ignores the filter
    /// `ignored` (answering as if unfiltered) and, when `log_forbidden`, refuses its change log.
    async fn netbox_that(
        ignored: &'static str,
        log_forbidden: bool,
    ) -> (NetboxProvider, tokio::task::JoinHandle<()>) {
        let app = axum::Router::new().fallback(
            move |uri: axum::http::Uri,
                  axum::extract::Query(q): axum::extract::Query<Vec<(String, String)>>| async move {
                use axum::response::IntoResponse;
                if uri.path() == OBJECT_CHANGES && log_forbidden {
                    return (
                        axum::http::StatusCode::FORBIDDEN,
                        axum::Json(json!({"detail": "You do not have permission to perform this action."})),
                    )
                        .into_response();
                }
                let all = json!({"count": 2, "results": [{"id": 1}, {"id": 2}]});
                let none = json!({"count": 0, "results": []});
                let body = if q.iter().any(|(k, _)| k == ignored) { all } else { none };
                axum::Json(body).into_response()
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        let provider = NetboxProvider::new(ProviderConfig {
            connection: crate::fabric::connection::ConnectionString::parse(&format!(
                "http://{addr}"
            ))
            .unwrap(),
            credentials: crate::ipam::provider::Credentials {
                user_name: "t".into(),
                secret: "nbt_abcdefabcdef.secret".into(),
            },
            trust: crate::fabric::model::TlsTrust::default(),
            service_name: "nb".into(),
            event_source: None,
        })
        .unwrap();
        (provider, task)
    }

    #[tokio::test]
    async fn every_filter_the_reads_rely_on_is_checked_before_reading() {
        for filter in [
            "last_updated__gte",
            "id",
            "time_after",
            "changed_object_type",
        ] {
            let (provider, task) = netbox_that(filter, false).await;
            let err = provider
                .snapshot(&SnapshotScope::All, None)
                .await
                .expect_err("refused");
            assert!(
                err.to_string()
                    .contains(&format!("ignored the filter {filter}")),
                "{filter}: {err}"
            );
            task.abort();
        }
    }

    #[tokio::test]
    async fn without_the_change_log_every_read_is_full_and_the_test_says_so() {
        let (provider, task) = netbox_that("none", true).await;
        let first = match provider.snapshot(&SnapshotScope::All, None).await {
            Ok(SnapshotRead::Full(s)) => s,
            other => panic!("a first read is full: {other:?}"),
        };
        let cursor = first.cursor.expect("a cursor");
        assert!(matches!(
            provider.snapshot(&SnapshotScope::All, Some(&cursor)).await,
            Ok(SnapshotRead::Full(_))
        ));
        let report = provider.test().await;
        let discovery = report
            .tests
            .iter()
            .find(|t| t.name == "Capability discovery")
            .expect("a discovery line");
        assert!(
            discovery.detail.contains("change log not readable"),
            "{}",
            discovery.detail
        );
        assert!(
            report
                .operations
                .iter()
                .any(|(op, yes)| *op == ProviderOperation::ChangeFeed && !yes)
        );
        task.abort();
    }

    #[test]
    fn descriptor_names_netbox() {
        let d = descriptor();
        assert_eq!(d.manufacturer, "NetBox Labs");
        assert_eq!(d.model, "NetBox");
        assert_eq!(d.provider_name, "Fabric Console NetBox Provider");
        assert!(d.default_https);
    }
}
