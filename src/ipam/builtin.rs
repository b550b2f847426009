//! The built-in provider: the client of the project's own IPAM server (`fabric-console ipam-server`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::model::{
    AddressSpace, ChangeSet, Cursor, IpRange, IpamId, IpamKind, IpamOp, IpamSnapshot, IpamSubnet,
    RangeUsage, SnapshotRead, SnapshotScope,
};
use super::provider::{
    ChangeWait, IpamError, IpamProvider, OpOutcome, ProviderConfig, ProviderDescriptor,
    ProviderFactory, ProviderOperation, TestOutcome, TestReport, TestResult,
};
use super::retry::{RetryPolicy, retry_after};
use super::tls;
use crate::ipam_server::api::PRODUCT;

/// Stable id stored in a network service's `provider` field.
pub const PROVIDER_ID: &str = "fabric-console-ipam";
pub const MANUFACTURER: &str = "Fabric Console";
pub const MODEL: &str = "Fabric Console IPAM Server";
pub const PROVIDER_NAME: &str = "Fabric Console IP Address Management Provider";
pub const DEFAULT_PORT: u16 = crate::ipam_server::DEFAULT_PORT;
/// The built-in server speaks plain HTTP unless started with `--tls`.
pub const DEFAULT_HTTPS: bool = false;
/// Clock skew beyond this is reported as a warning.
pub const SKEW_WARNING_MS: i64 = 5 * 60 * 1000;

pub fn descriptor() -> ProviderDescriptor {
    ProviderDescriptor {
        id: PROVIDER_ID.to_string(),
        manufacturer: MANUFACTURER.to_string(),
        model: MODEL.to_string(),
        provider_name: PROVIDER_NAME.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        default_port: DEFAULT_PORT,
        default_https: DEFAULT_HTTPS,
        operations: ProviderOperation::ALL
            .iter()
            .map(|op| (*op, true))
            .collect(),
    }
}

fn capability_name(op: ProviderOperation) -> &'static str {
    match op {
        ProviderOperation::ReadAddressSpaces => "read_address_spaces",
        ProviderOperation::WriteAddressSpaces => "write_address_spaces",
        ProviderOperation::ReadSubnets => "read_subnets",
        ProviderOperation::WriteSubnets => "write_subnets",
        ProviderOperation::ReadRanges => "read_ranges",
        ProviderOperation::WriteRanges => "write_ranges",
        ProviderOperation::ChangeFeed => "change_feed",
        ProviderOperation::ServerTime => "server_time",
        ProviderOperation::CustomerAddressSpaces => "customer_address_spaces",
    }
}

/// Timeouts, retries and limits of the HTTP client.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of an answer.
    pub read_timeout: Duration,
    /// Longest a whole request may take (large batches included).
    pub request_timeout: Duration,
    /// Extra attempts for idempotent requests after a transient failure.
    pub retries: u32,
    /// First backoff; doubled per attempt, plus up to the same again as jitter.
    pub backoff: Duration,
    /// Larger answers are refused as a protocol error.
    pub max_response_bytes: usize,
    /// Objects per snapshot page and change rows per change-feed page.
    pub page_size: u32,
    /// Operations per batch request; longer batches are sent in order in several requests.
    pub batch_size: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(120),
            retries: 3,
            backoff: Duration::from_millis(200),
            max_response_bytes: 64 * 1024 * 1024,
            page_size: 1000,
            batch_size: 5000,
        }
    }
}

pub struct BuiltinProviderFactory {
    descriptor: ProviderDescriptor,
}

impl BuiltinProviderFactory {
    pub fn new() -> Self {
        BuiltinProviderFactory {
            descriptor: descriptor(),
        }
    }
}

impl Default for BuiltinProviderFactory {
    fn default() -> Self {
        Self::new()
    }
}

impl ProviderFactory for BuiltinProviderFactory {
    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    fn connect(&self, config: ProviderConfig) -> Result<Arc<dyn IpamProvider>, IpamError> {
        Ok(Arc::new(BuiltinProvider::new(
            config,
            ClientOptions::default(),
        )?))
    }
}

pub struct BuiltinProvider {
    descriptor: ProviderDescriptor,
    client: reqwest::Client,
    base_url: String,
    /// How the server is named in errors: the network service and its URL.
    server: String,
    token: String,
    user_name: String,
    options: ClientOptions,
    encryption: tls::Encryption,
}

/// A transport failure, and whether the request certainly never reached the server.
struct Failure {
    error: IpamError,
    nothing_sent: bool,
}

/// One answer of the server: status, body, and the wait its `Retry-After` asked for.
struct Answer {
    status: StatusCode,
    body: Vec<u8>,
    retry_after: Option<Duration>,
}

impl BuiltinProvider {
    pub fn new(config: ProviderConfig, options: ClientOptions) -> Result<Self, IpamError> {
        let descriptor = descriptor();
        let scheme =
            tls::effective_scheme(&config.connection, &config.trust, descriptor.default_https);
        let base_url = config.connection.base_url(scheme, DEFAULT_PORT);
        let server = if config.service_name.trim().is_empty() {
            base_url.clone()
        } else {
            format!("{} ({base_url})", config.service_name.trim())
        };
        let builder = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .read_timeout(options.read_timeout)
            .timeout(options.request_timeout)
            .user_agent(concat!("fabric-console/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none());
        let builder = tls::configure(builder, &config.connection, &config.trust, scheme, &server)?;
        let encryption =
            tls::Encryption::of(&config.connection, &config.trust, descriptor.default_https);
        let client = builder.build().map_err(|e| IpamError::Protocol {
            server: server.clone(),
            detail: format!("cannot set up the HTTP client: {}", error_chain(&e)),
        })?;
        Ok(BuiltinProvider {
            descriptor,
            encryption,
            client,
            base_url,
            server,
            token: config.credentials.secret.clone(),
            user_name: config.credentials.user_name.clone(),
            options,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    async fn execute(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Answer, Failure> {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(&self.token)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(b) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b);
        }
        let mut resp = req.send().await.map_err(|e| self.transport_failure(&e))?;
        let status = resp.status();
        let retry_after = retry_after(resp.headers());
        let limit = self.options.max_response_bytes;
        if resp.content_length().is_some_and(|n| n as usize > limit) {
            return Err(Failure {
                error: self.too_large(),
                nothing_sent: false,
            });
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.transport_failure(&e))? {
            if bytes.len() + chunk.len() > limit {
                return Err(Failure {
                    error: self.too_large(),
                    nothing_sent: false,
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status,
            body: bytes,
            retry_after,
        })
    }

    fn too_large(&self) -> IpamError {
        IpamError::Protocol {
            server: self.server.clone(),
            detail: format!(
                "the answer is larger than {} MB",
                self.options.max_response_bytes / (1024 * 1024)
            ),
        }
    }

    fn transport_failure(&self, e: &reqwest::Error) -> Failure {
        let detail = error_chain(e);
        let server = self.server.clone();
        let tls = tls::failure(e);
        let tls_failed = tls.is_some();
        let error = if let Some(detail) = tls {
            IpamError::Tls { server, detail }
        } else if e.is_timeout() {
            IpamError::Timeout { server, detail }
        } else if e.is_connect() {
            IpamError::Unreachable { server, detail }
        } else {
            // Reset, closed or cut short after the request went out (reading the answer's body
            // included: reqwest calls that a body or decode error): the outcome is unknown.
            IpamError::Interrupted { server, detail }
        };
        Failure {
            error,
            nothing_sent: e.is_connect() && !tls_failed,
        }
    }

    /// Maps an error answer to an `IpamError`, keeping the server's own message.
    fn status_error(&self, status: StatusCode, body: &[u8]) -> IpamError {
        let parsed: Option<ErrorWire> = serde_json::from_slice(body).ok();
        let detail = match &parsed {
            Some(e) if !e.error.is_empty() => e.error.clone(),
            _ => {
                let text = String::from_utf8_lossy(body);
                let text = text.trim();
                if text.is_empty() {
                    format!("HTTP {status}")
                } else {
                    format!(
                        "HTTP {status}: {}",
                        text.chars().take(300).collect::<String>()
                    )
                }
            }
        };
        let field = parsed.and_then(|e| e.field);
        error_for(&self.server, status.as_u16(), detail, field)
    }

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            attempts: self.options.retries + 1,
            first_delay: self.options.backoff,
            max_delay: self.options.backoff.saturating_mul(1 << 10),
        }
    }

    /// GET, retried on transient failures; other error answers are left to the caller.
    async fn get_raw(&self, path: &str) -> Result<(StatusCode, Vec<u8>), IpamError> {
        self.retry_policy()
            .idempotent(|| async {
                let answer = self
                    .execute(Method::GET, path, None)
                    .await
                    .map_err(|f| f.error)?;
                let status = answer.status;
                if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                    return Err(self
                        .status_error(status, &answer.body)
                        .with_retry_after(answer.retry_after));
                }
                Ok((status, answer.body))
            })
            .await
    }

    async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, IpamError> {
        let (status, body) = self.get_raw(path).await?;
        self.decode(status, &body)
    }

    fn decode<T: DeserializeOwned>(&self, status: StatusCode, body: &[u8]) -> Result<T, IpamError> {
        if !status.is_success() {
            return Err(self.status_error(status, body));
        }
        serde_json::from_slice(body).map_err(|e| IpamError::Protocol {
            server: self.server.clone(),
            detail: format!("the answer cannot be read: {e}"),
        })
    }

    fn scope_query(scope: &SnapshotScope) -> String {
        match scope {
            SnapshotScope::All => String::new(),
            SnapshotScope::LogicalNetworks(names) => {
                let mut q = String::from("&scope=logical_networks");
                for n in names {
                    q.push_str("&logical_network=");
                    q.push_str(&encode(n));
                }
                q
            }
        }
    }

    async fn full_snapshot(&self, scope: &SnapshotScope) -> Result<IpamSnapshot, IpamError> {
        let scope_q = Self::scope_query(scope);
        let mut snapshot = IpamSnapshot::default();
        let mut first: Option<(String, i64)> = None;
        let mut page: Option<String> = None;
        loop {
            let mut path = format!("/api/v1/snapshot?limit={}{scope_q}", self.options.page_size);
            if let Some(p) = &page {
                path.push_str("&page=");
                path.push_str(&encode(p));
            }
            let wire: SnapshotWire = self.get_json(&path).await?;
            // The first page fixes the cursor; the change feed covers what changed while paging.
            if first.is_none() {
                first = Some((wire.database_id.clone(), wire.cursor));
            }
            snapshot.spaces.extend(wire.spaces);
            snapshot.subnets.extend(wire.subnets);
            snapshot.ranges.extend(wire.ranges);
            match wire.next {
                Some(next) if Some(&next) != page.as_ref() => page = Some(next),
                Some(_) => {
                    return Err(IpamError::Protocol {
                        server: self.server.clone(),
                        detail: "the snapshot's page token did not advance".into(),
                    });
                }
                None => break,
            }
        }
        let Some((database_id, cursor)) = first else {
            return Err(IpamError::Protocol {
                server: self.server.clone(),
                detail: "the snapshot had no pages".into(),
            });
        };
        match self.changes_since(scope, &database_id, cursor).await? {
            Some(changes) => snapshot.apply_changes(changes),
            None => {
                return Err(IpamError::Protocol {
                    server: self.server.clone(),
                    detail: "the snapshot's own cursor was refused by the change feed".into(),
                });
            }
        }
        if snapshot.cursor.is_none() {
            snapshot.cursor = Some(make_cursor(&database_id, cursor));
        }
        Ok(snapshot)
    }

    /// Every change after `since`, merged; `None` when the server no longer serves that cursor.
    async fn changes_since(
        &self,
        scope: &SnapshotScope,
        database_id: &str,
        since: i64,
    ) -> Result<Option<ChangeSet>, IpamError> {
        let scope_q = Self::scope_query(scope);
        let mut merged = MergedChanges::default();
        let mut cursor = since;
        loop {
            let path = format!(
                "/api/v1/changes?since={cursor}&limit={}&database_id={}{scope_q}",
                self.options.page_size,
                encode(database_id)
            );
            let (status, body) = self.get_raw(&path).await?;
            if status == StatusCode::GONE {
                return Ok(None);
            }
            let wire: ChangesWire = self.decode(status, &body)?;
            if wire.more && wire.cursor <= cursor {
                return Err(IpamError::Protocol {
                    server: self.server.clone(),
                    detail: "the change feed's cursor did not advance".into(),
                });
            }
            cursor = wire.cursor;
            merged.add(wire);
            if !merged.more {
                break;
            }
        }
        Ok(Some(
            merged.into_change_set(make_cursor(database_id, cursor)),
        ))
    }

    async fn post_batch(&self, ops: &[IpamOp]) -> Result<(StatusCode, Vec<u8>), IpamError> {
        let body = serde_json::to_vec(&serde_json::json!({ "ops": ops })).map_err(|e| {
            IpamError::Protocol {
                server: self.server.clone(),
                detail: format!("the batch cannot be encoded: {e}"),
            }
        })?;
        // Only a request that never left is sent again; anything else may have been applied,
        // and the sync journal looks it up instead.
        self.retry_policy()
            .unsent(
                || self.execute(Method::POST, "/api/v1/batch", Some(body.clone())),
                |f: &Failure| f.nothing_sent,
            )
            .await
            .map(|answer| (answer.status, answer.body))
            .map_err(|f| f.error)
    }

    async fn apply_chunk(&self, ops: &[IpamOp]) -> Result<Vec<OpOutcome>, IpamError> {
        let (status, body) = self.post_batch(ops).await?;
        let wire: Option<BatchWire> = serde_json::from_slice(&body).ok();
        let Some(wire) = wire.filter(|w| !w.results.is_empty() || ops.is_empty()) else {
            return Err(if status.is_success() {
                IpamError::Protocol {
                    server: self.server.clone(),
                    detail: "the batch answer has no results".into(),
                }
            } else {
                self.status_error(status, &body)
            });
        };
        if wire.results.len() != ops.len() {
            return Err(IpamError::Protocol {
                server: self.server.clone(),
                detail: format!(
                    "the batch answer has {} results for {} operations",
                    wire.results.len(),
                    ops.len()
                ),
            });
        }
        Ok(wire
            .results
            .into_iter()
            .map(|r| match r {
                ResultWire::Applied { id } => OpOutcome::Applied { id },
                ResultWire::NotApplied => OpOutcome::NotApplied,
                ResultWire::Failed { code, error, field } => {
                    OpOutcome::Failed(error_for(&self.server, code, error, field))
                }
            })
            .collect())
    }

    fn report_without_connection(&self, open: TestResult) -> TestReport {
        let not_run = |name: &str| TestResult {
            name: name.to_string(),
            outcome: TestOutcome::Failed,
            detail: "not run: the connection could not be opened".into(),
        };
        TestReport {
            tests: vec![
                open,
                not_run("Capability discovery"),
                not_run("System info"),
                not_run("Permissions"),
            ],
            operations: self.descriptor.operations.clone(),
            server_version: None,
            server_time: None,
            skew_ms: None,
            encryption: Some(self.encryption.clone()),
        }
    }

    fn run_as(&self) -> String {
        if self.user_name.trim().is_empty() {
            "the Run As account".to_string()
        } else {
            format!("the Run As account ({})", self.user_name.trim())
        }
    }
}

fn make_cursor(database_id: &str, seq: i64) -> Cursor {
    Cursor(format!("{database_id}:{seq}"))
}

fn parse_cursor(cursor: &Cursor) -> Option<(&str, i64)> {
    let (db, seq) = cursor.0.rsplit_once(':')?;
    Some((db, seq.parse().ok()?))
}

fn encode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|e| e.trim_start_matches('=').to_string())
        .unwrap_or_default()
}

fn error_for(server: &str, code: u16, detail: String, field: Option<String>) -> IpamError {
    let server = server.to_string();
    match code {
        400 | 413 | 422 => IpamError::Invalid {
            server,
            field: field.unwrap_or_else(|| "request".into()),
            detail,
        },
        401 => IpamError::Unauthorized { server, detail },
        403 => IpamError::Forbidden { server, detail },
        404 | 410 => IpamError::NotFound { server, detail },
        409 => IpamError::Conflict { server, detail },
        429 | 500..=599 => IpamError::Server {
            server,
            detail,
            retry_after: None,
        },
        _ => IpamError::Protocol {
            server,
            detail: format!("HTTP {code}: {detail}"),
        },
    }
}

/// "error: cause: cause" — reqwest's own message hides the interesting part in the sources.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

// ---- wire types -----------------------------------------------------------------------

#[derive(Deserialize)]
struct ErrorWire {
    #[serde(default)]
    error: String,
    #[serde(default)]
    field: Option<String>,
}

#[derive(Deserialize)]
struct StatusWire {
    product: String,
    version: String,
    #[serde(default)]
    capabilities: Vec<String>,
}

#[derive(Deserialize)]
struct TimeWire {
    server_time: DateTime<Utc>,
}

#[derive(Deserialize)]
struct WhoamiWire {
    role: String,
}

#[derive(Deserialize)]
struct SnapshotWire {
    database_id: String,
    cursor: i64,
    spaces: Vec<AddressSpace>,
    subnets: Vec<IpamSubnet>,
    ranges: Vec<IpRange>,
    next: Option<String>,
}

#[derive(Deserialize)]
struct DeletedWire {
    kind: IpamKind,
    id: IpamId,
}

#[derive(Deserialize)]
struct ChangesWire {
    cursor: i64,
    more: bool,
    spaces: Vec<AddressSpace>,
    subnets: Vec<IpamSubnet>,
    ranges: Vec<IpRange>,
    deleted: Vec<DeletedWire>,
}

#[derive(Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum ResultWire {
    Applied {
        id: IpamId,
    },
    Failed {
        code: u16,
        error: String,
        #[serde(default)]
        field: Option<String>,
    },
    NotApplied,
}

#[derive(Deserialize)]
struct BatchWire {
    results: Vec<ResultWire>,
}

/// Change-feed pages folded together: the last word on each object wins.
#[derive(Default)]
struct MergedChanges {
    spaces: BTreeMap<IpamId, Option<AddressSpace>>,
    subnets: BTreeMap<IpamId, Option<IpamSubnet>>,
    ranges: BTreeMap<IpamId, Option<IpRange>>,
    more: bool,
}

impl MergedChanges {
    fn add(&mut self, page: ChangesWire) {
        for s in page.spaces {
            self.spaces.insert(s.id.clone(), Some(s));
        }
        for s in page.subnets {
            self.subnets.insert(s.id.clone(), Some(s));
        }
        for r in page.ranges {
            self.ranges.insert(r.id.clone(), Some(r));
        }
        for d in page.deleted {
            match d.kind {
                IpamKind::AddressSpace => {
                    self.spaces.insert(d.id, None);
                }
                IpamKind::Subnet => {
                    self.subnets.insert(d.id, None);
                }
                IpamKind::Range => {
                    self.ranges.insert(d.id, None);
                }
            }
        }
        self.more = page.more;
    }

    fn into_change_set(self, cursor: Cursor) -> ChangeSet {
        let mut out = ChangeSet {
            cursor: Some(cursor),
            ..Default::default()
        };
        for (id, v) in self.spaces {
            match v {
                Some(s) => out.spaces.push(s),
                None => out.deleted.push((IpamKind::AddressSpace, id)),
            }
        }
        for (id, v) in self.subnets {
            match v {
                Some(s) => out.subnets.push(s),
                None => out.deleted.push((IpamKind::Subnet, id)),
            }
        }
        for (id, v) in self.ranges {
            match v {
                Some(r) => out.ranges.push(r),
                None => out.deleted.push((IpamKind::Range, id)),
            }
        }
        out
    }
}

#[async_trait::async_trait]
impl IpamProvider for BuiltinProvider {
    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    async fn test(&self) -> TestReport {
        // Open connection: the status endpoint answers as our product and the token is accepted.
        let status: StatusWire = match self.get_json("/api/v1/status").await {
            Ok(s) => s,
            Err(e) => {
                let reason = match &e {
                    IpamError::Unreachable { .. } => "unreachable",
                    IpamError::Timeout { .. } => "timed out",
                    IpamError::Tls { .. } => "TLS failed",
                    _ => "failed",
                };
                return self.report_without_connection(TestResult {
                    name: "Open connection".into(),
                    outcome: TestOutcome::Failed,
                    detail: format!("{reason}: {e}"),
                });
            }
        };
        if status.product != PRODUCT {
            return self.report_without_connection(TestResult {
                name: "Open connection".into(),
                outcome: TestOutcome::Failed,
                detail: format!(
                    "{} answers as {:?}, not as a {PRODUCT}; choose the configuration provider for that product",
                    self.server, status.product
                ),
            });
        }
        let whoami: Result<WhoamiWire, IpamError> = self.get_json("/api/v1/whoami").await;
        let role = match whoami {
            Ok(w) => w.role,
            Err(e) => {
                let detail = match &e {
                    IpamError::Unauthorized { detail, .. } => format!(
                        "unauthorized: IPAM server {} rejected {}: {detail}. Check the Run As account's token (issue one with `fabric-console ipam-server token`).",
                        self.server,
                        self.run_as()
                    ),
                    other => format!("failed: {other}"),
                };
                return self.report_without_connection(TestResult {
                    name: "Open connection".into(),
                    outcome: TestOutcome::Failed,
                    detail,
                });
            }
        };
        let mut tests = vec![TestResult {
            name: "Open connection".into(),
            outcome: TestOutcome::Passed,
            detail: format!(
                "connected to {PRODUCT} {} at {}; {} was accepted",
                status.version,
                self.base_url,
                self.run_as()
            ),
        }];

        // Capability discovery: what the provider implements and the server offers.
        let operations: Vec<(ProviderOperation, bool)> = self
            .descriptor
            .operations
            .iter()
            .map(|(op, ours)| {
                (
                    *op,
                    *ours
                        && status
                            .capabilities
                            .iter()
                            .any(|c| c == capability_name(*op)),
                )
            })
            .collect();
        let missing: Vec<&str> = self
            .descriptor
            .operations
            .iter()
            .zip(&operations)
            .filter(|((_, ours), (_, both))| *ours && !*both)
            .map(|((op, _), _)| op.label())
            .collect();
        let implemented = operations.iter().filter(|(_, y)| *y).count();
        tests.push(if missing.is_empty() {
            TestResult {
                name: "Capability discovery".into(),
                outcome: TestOutcome::Passed,
                detail: format!(
                    "{implemented} of {} operations implemented",
                    operations.len()
                ),
            }
        } else {
            TestResult {
                name: "Capability discovery".into(),
                outcome: TestOutcome::Failed,
                detail: format!(
                    "the server does not offer: {}; upgrade the IPAM server to version {}",
                    missing.join(", "),
                    env!("CARGO_PKG_VERSION")
                ),
            }
        });

        // System info: version and clock.
        let before = Utc::now();
        let time: Result<TimeWire, IpamError> = self.get_json("/api/v1/time").await;
        let after = Utc::now();
        let (server_time, skew_ms) = match time {
            Ok(t) => {
                let local_mid = before + (after - before) / 2;
                let skew = (t.server_time - local_mid).num_milliseconds();
                let mut detail = format!(
                    "version {}, server time {}, clock skew {skew:+} ms",
                    status.version,
                    t.server_time
                        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                );
                if skew.abs() > SKEW_WARNING_MS {
                    detail.push_str(
                        "; warning: more than 5 minutes apart, synchronize both clocks (w32tm /resync or NTP)",
                    );
                }
                tests.push(TestResult {
                    name: "System info".into(),
                    outcome: TestOutcome::Passed,
                    detail,
                });
                (Some(t.server_time), Some(skew))
            }
            Err(e) => {
                tests.push(TestResult {
                    name: "System info".into(),
                    outcome: TestOutcome::Failed,
                    detail: format!("cannot read the server time: {e}"),
                });
                (None, None)
            }
        };

        // Permissions: writing needs the asm-administrator role.
        tests.push(match role.as_str() {
            "asm-administrator" => TestResult {
                name: "Permissions".into(),
                outcome: TestOutcome::Passed,
                detail: format!("{} has the asm-administrator role (read and write)", self.run_as()),
            },
            "read-only" => TestResult {
                name: "Permissions".into(),
                outcome: TestOutcome::Failed,
                detail: format!(
                    "{} is read-only on {}; add it to IPAM ASM Administrators (issue a token with `fabric-console ipam-server token --role asm-administrator`)",
                    self.run_as(),
                    self.server
                ),
            },
            other => TestResult {
                name: "Permissions".into(),
                outcome: TestOutcome::Failed,
                detail: format!(
                    "{} has the unknown role {other:?}; give it the asm-administrator role",
                    self.run_as()
                ),
            },
        });

        TestReport {
            tests,
            operations,
            server_version: Some(status.version),
            server_time,
            skew_ms,
            encryption: Some(self.encryption.clone()),
        }
    }

    async fn server_time(&self) -> Result<DateTime<Utc>, IpamError> {
        let t: TimeWire = self.get_json("/api/v1/time").await?;
        Ok(t.server_time)
    }

    async fn snapshot(
        &self,
        scope: &SnapshotScope,
        since: Option<&Cursor>,
    ) -> Result<SnapshotRead, IpamError> {
        if let Some((database_id, seq)) = since.and_then(parse_cursor)
            && let Some(changes) = self.changes_since(scope, database_id, seq).await?
        {
            return Ok(SnapshotRead::Changes(changes));
        }
        Ok(SnapshotRead::Full(self.full_snapshot(scope).await?))
    }

    async fn wait_for_change(
        &self,
        cursor: &Cursor,
        timeout: Duration,
    ) -> Result<ChangeWait, IpamError> {
        let Some((database_id, seq)) = parse_cursor(cursor) else {
            return Ok(ChangeWait::Changed);
        };
        // Held open by the server below the client's read timeout.
        let secs = timeout
            .as_secs()
            .clamp(1, crate::ipam_server::api::MAX_FEED_WAIT_SECS as u64);
        let path = format!(
            "/api/v1/changes?since={seq}&limit=1&wait={secs}&database_id={}",
            encode(database_id)
        );
        let (status, body) = self.get_raw(&path).await?;
        if status == StatusCode::GONE {
            return Ok(ChangeWait::Changed);
        }
        let wire: ChangesWire = self.decode(status, &body)?;
        let changed = wire.cursor > seq
            || !wire.spaces.is_empty()
            || !wire.subnets.is_empty()
            || !wire.ranges.is_empty()
            || !wire.deleted.is_empty();
        Ok(if changed {
            ChangeWait::Changed
        } else {
            ChangeWait::Quiet
        })
    }

    fn keeps_usage(&self) -> bool {
        true
    }

    async fn range_usages(
        &self,
    ) -> Result<std::collections::HashMap<IpamId, RangeUsage>, IpamError> {
        #[derive(serde::Deserialize)]
        struct AllUsage {
            ranges: std::collections::HashMap<String, RangeUsage>,
        }
        let all: AllUsage = self.get_json("/api/v1/usage").await?;
        Ok(all
            .ranges
            .into_iter()
            .map(|(id, u)| (IpamId::from(id), u))
            .collect())
    }

    async fn assignments(&self) -> Result<crate::ipam::model::Assignments, IpamError> {
        #[derive(serde::Deserialize)]
        struct All {
            ranges: std::collections::HashMap<String, Vec<crate::ipam::model::UsedAddress>>,
        }
        let all: All = self.get_json("/api/v1/assignments").await?;
        Ok(all
            .ranges
            .into_iter()
            .map(|(id, a)| (IpamId::from(id), a))
            .collect())
    }

    async fn report_usages(&self, reports: &[(IpamId, RangeUsage)]) -> Result<(), IpamError> {
        // Requests stay well under the server's 8 MB body limit.
        const ADDRESSES_PER_REQUEST: usize = 20_000;
        const RANGES_PER_REQUEST: usize = 1_000;
        let mut start = 0;
        while start < reports.len() {
            let mut end = start;
            let mut addresses = 0;
            while end < reports.len()
                && end - start < RANGES_PER_REQUEST
                && (end == start
                    || addresses + reports[end].1.addresses.len() <= ADDRESSES_PER_REQUEST)
            {
                addresses += reports[end].1.addresses.len();
                end += 1;
            }
            let ranges: serde_json::Map<String, serde_json::Value> = reports[start..end]
                .iter()
                .filter_map(|(id, u)| {
                    serde_json::to_value(u)
                        .ok()
                        .map(|v| (id.as_str().to_string(), v))
                })
                .collect();
            let body =
                serde_json::to_vec(&serde_json::json!({ "ranges": ranges })).map_err(|e| {
                    IpamError::Protocol {
                        server: self.server.clone(),
                        detail: format!("the range usage cannot be encoded: {e}"),
                    }
                })?;
            // Sent again only when it never left; any other failure is looked up by the next
            // sync, which reads the server's copies first.
            let answer = self
                .retry_policy()
                .unsent(
                    || self.execute(Method::PUT, "/api/v1/usage", Some(body.clone())),
                    |f: &Failure| f.nothing_sent,
                )
                .await
                .map_err(|f| f.error)?;
            if !answer.status.is_success() {
                return Err(self.status_error(answer.status, &answer.body));
            }
            start = end;
        }
        Ok(())
    }

    async fn apply(&self, batch: &[IpamOp]) -> Result<Vec<OpOutcome>, IpamError> {
        let size = self.options.batch_size.max(1);
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut chunks = batch.chunks(size);
        for chunk in chunks.by_ref() {
            match self.apply_chunk(chunk).await {
                Ok(results) => {
                    let failed = results
                        .iter()
                        .any(|r| !matches!(r, OpOutcome::Applied { .. }));
                    outcomes.extend(results);
                    if failed {
                        break;
                    }
                }
                // Nothing of this call was applied yet: the whole call failed.
                Err(e) if outcomes.is_empty() => return Err(e),
                // Earlier requests were applied; this one's fate is unknown (it may have been
                // applied), so each of its operations carries the error for the journal to check.
                Err(e) => {
                    outcomes.extend(chunk.iter().map(|_| OpOutcome::Failed(e.clone())));
                    break;
                }
            }
        }
        for chunk in chunks {
            outcomes.extend(chunk.iter().map(|_| OpOutcome::NotApplied));
        }
        Ok(outcomes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_names_the_product() {
        let d = descriptor();
        assert_eq!(d.manufacturer, "Fabric Console");
        assert_eq!(d.model, "Fabric Console IPAM Server");
        assert_eq!(
            d.provider_name,
            "Fabric Console IP Address Management Provider"
        );
        assert_eq!(d.default_port, 48885);
        assert!(!d.default_https);
        assert!(ProviderOperation::ALL.iter().all(|op| d.implements(*op)));
    }

    #[test]
    fn cursors_round_trip() {
        let c = make_cursor("abc", 42);
        assert_eq!(parse_cursor(&c), Some(("abc", 42)));
        assert_eq!(parse_cursor(&Cursor("junk".into())), None);
    }

    #[test]
    fn status_codes_map_to_errors() {
        let e = error_for("s", 422, "bad".into(), Some("start".into()));
        assert!(matches!(e, IpamError::Invalid { ref field, .. } if field == "start"));
        assert!(matches!(
            error_for("s", 401, String::new(), None),
            IpamError::Unauthorized { .. }
        ));
        assert!(matches!(
            error_for("s", 403, String::new(), None),
            IpamError::Forbidden { .. }
        ));
        assert!(matches!(
            error_for("s", 409, String::new(), None),
            IpamError::Conflict { .. }
        ));
        assert!(matches!(
            error_for("s", 503, String::new(), None),
            IpamError::Server { .. }
        ));
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(encode("a b&c"), "a+b%26c");
    }

    #[test]
    fn merged_changes_keep_the_last_word() {
        let mut m = MergedChanges::default();
        m.add(ChangesWire {
            cursor: 1,
            more: true,
            spaces: vec![],
            subnets: vec![],
            ranges: vec![],
            deleted: vec![DeletedWire {
                kind: IpamKind::Subnet,
                id: "n1".into(),
            }],
        });
        let set = m.into_change_set(make_cursor("d", 1));
        assert_eq!(set.deleted, vec![(IpamKind::Subnet, IpamId::from("n1"))]);
    }
}
