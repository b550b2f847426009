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

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use ipnet::IpNet;
use reqwest::header::{ACCEPT, AUTHORIZATION, DATE, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use uuid::Uuid;

use super::model::{
    AddressSpace, AddressSpaceKind, ChangeSet, Cursor, IpRange, IpamKind, IpamOp, IpamSnapshot,
    IpamSubnet, OpVerb, SnapshotRead, SnapshotScope,
};
use super::provider::{
    IpamError, IpamProvider, OpOutcome, ProviderConfig, ProviderDescriptor, ProviderFactory,
    ProviderOperation, TestOutcome, TestReport, TestResult,
};
use super::retry::{RetryPolicy, retry_after};
use crate::fabric::connection::Scheme;
use crate::fabric::model::Gateway;

/// Stable id stored in a network service's `provider` field.
pub const PROVIDER_ID: &str = "nautobot";
/// The REST API version every request pins in `Accept`.
pub const API_VERSION: &str = "2.4";
/// Namespace name prefix of provider address spaces (logical networks).
pub const PROVIDER_NAMESPACE_PREFIX: &str = "vmm-ln-";
/// Namespace name prefix of customer address spaces (VM networks).
pub const CUSTOMER_NAMESPACE_PREFIX: &str = "vmm-vmn-";
/// Namespace name prefix of the Test page's scratch objects (never read as address spaces).
const PROBE_NAMESPACE_PREFIX: &str = "fabric-console-permission-check-";
/// Clock skew beyond which the Test page warns (seed: time synchrony).
const SKEW_WARNING_MS: i64 = 5 * 60 * 1000;

const NAMESPACES: &str = "/api/ipam/namespaces/";
const PREFIXES: &str = "/api/ipam/prefixes/";
const RANGES: &str = "/api/ipam/ip-address-ranges/";
const CUSTOM_FIELDS: &str = "/api/extras/custom-fields/";
const STATUSES: &str = "/api/extras/statuses/";
const OBJECT_CHANGES: &str = "/api/extras/object-changes/";
const STATUS: &str = "/api/status/";

const CT_NAMESPACE: &str = "ipam.namespace";
const CT_PREFIX: &str = "ipam.prefix";
const CT_RANGE: &str = "ipam.ipaddressrange";

/// Custom field keys.
pub mod field {
    pub const VMM_ID: &str = "vmm_id";
    pub const VMM_SERVER: &str = "vmm_server";
    pub const LOGICAL_NETWORK: &str = "vmm_logical_network";
    pub const VM_NETWORK: &str = "vmm_vm_network";
    pub const PROVIDER_SPACE: &str = "vmm_provider_space";
    pub const TENANT: &str = "vmm_tenant";
    pub const OWNER: &str = "vmm_owner";
    pub const NETWORK_SITE: &str = "vmm_network_site";
    pub const NETWORK_TYPE: &str = "vmm_network_type";
    pub const VLAN: &str = "vmm_vlan";
    pub const SECONDARY_VLAN: &str = "vmm_secondary_vlan";
    pub const POOL: &str = "vmm_pool";
}

struct CustomFieldDef {
    key: &'static str,
    label: &'static str,
    kind: &'static str,
    content_types: &'static [&'static str],
    description: &'static str,
}

const CUSTOM_FIELD_DEFS: &[CustomFieldDef] = &[
    CustomFieldDef {
        key: field::VMM_ID,
        label: "VMM ID",
        kind: "text",
        content_types: &[CT_NAMESPACE, CT_PREFIX, CT_RANGE],
        description: "Fabric Console identity of the linked console object",
    },
    CustomFieldDef {
        key: field::VMM_SERVER,
        label: "VMM Server",
        kind: "text",
        content_types: &[CT_NAMESPACE, CT_PREFIX, CT_RANGE],
        description: "Fabric Console network service that manages this object",
    },
    CustomFieldDef {
        key: field::LOGICAL_NETWORK,
        label: "VMM Logical Network",
        kind: "text",
        content_types: &[CT_NAMESPACE, CT_PREFIX],
        description: "VMM logical network; clearing it on a namespace breaks the link",
    },
    CustomFieldDef {
        key: field::VM_NETWORK,
        label: "VM Network",
        kind: "text",
        content_types: &[CT_NAMESPACE],
        description: "VMM VM network of a customer address space",
    },
    CustomFieldDef {
        key: field::PROVIDER_SPACE,
        label: "VMM Provider Address Space",
        kind: "text",
        content_types: &[CT_NAMESPACE],
        description: "Namespace id of the provider address space of a customer address space",
    },
    CustomFieldDef {
        key: field::TENANT,
        label: "VMM Tenant",
        kind: "text",
        content_types: &[CT_NAMESPACE],
        description: "Tenant of the address space",
    },
    CustomFieldDef {
        key: field::OWNER,
        label: "VMM Owner",
        kind: "text",
        content_types: &[CT_NAMESPACE, CT_PREFIX],
        description: "Owner of the address space or subnet",
    },
    CustomFieldDef {
        key: field::NETWORK_SITE,
        label: "Network Site",
        kind: "text",
        content_types: &[CT_PREFIX],
        description: "VMM network site of the subnet",
    },
    CustomFieldDef {
        key: field::NETWORK_TYPE,
        label: "VMM Network Type",
        kind: "text",
        content_types: &[CT_PREFIX],
        description: "Provider or Customer",
    },
    CustomFieldDef {
        key: field::VLAN,
        label: "VMM VLAN",
        kind: "integer",
        content_types: &[CT_PREFIX],
        description: "VLAN id (0-4094) of the subnet in its network site",
    },
    CustomFieldDef {
        key: field::SECONDARY_VLAN,
        label: "VMM Secondary VLAN",
        kind: "integer",
        content_types: &[CT_PREFIX],
        description: "Secondary VLAN id for private VLANs",
    },
    CustomFieldDef {
        key: field::POOL,
        label: "VMM Pool Settings",
        kind: "json",
        content_types: &[CT_RANGE],
        description: "Static IP address pool settings: reserved, VIPs, gateways, DNS, WINS, NetBIOS",
    },
];

fn is_console_field(key: &str) -> bool {
    CUSTOM_FIELD_DEFS.iter().any(|d| d.key == key)
}

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
    /// Every n-th read is a full read, as a safety net.
    pub full_read_every: u32,
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
            overlap: chrono::Duration::minutes(2),
            full_read_every: 10,
            full_read_after: chrono::Duration::hours(1),
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
        default_https: false,
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
// HTTP client
// ---------------------------------------------------------------------------------------------

/// One answer of Nautobot: status, JSON body (Null when empty) and the server's clock.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    body: Value,
    date: Option<DateTime<Utc>>,
    retry_after: Option<Duration>,
}

struct Api {
    http: reqwest::Client,
    base: String,
    server: String,
    get_retry: RetryPolicy,
    page_size: usize,
    concurrency: usize,
}

impl Api {
    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends one request; any HTTP status is an `Ok`, only transport failures are errors.
    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Result<Reply, IpamError> {
        let mut request = self.http.request(method, self.url(path));
        if !query.is_empty() {
            request = request.query(query);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| transport_error(&self.server, &e))?;
        let status = response.status();
        let date = response
            .headers()
            .get(DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .map(DateTime::<Utc>::from);
        let retry_after = retry_after(response.headers());
        let bytes = response
            .bytes()
            .await
            .map_err(|e| transport_error(&self.server, &e))?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            match serde_json::from_slice(&bytes) {
                Ok(v) => v,
                // Error pages of a proxy or Django's debug page are not JSON: keep a short excerpt.
                Err(_) => {
                    Value::String(String::from_utf8_lossy(&bytes).chars().take(300).collect())
                }
            }
        };
        Ok(Reply {
            status,
            body,
            date,
            retry_after,
        })
    }

    /// An idempotent GET, retried with backoff and jitter on timeouts, 429 and 5xx.
    async fn get(&self, path: &str, query: &[(String, String)]) -> Result<Reply, IpamError> {
        self.get_retry
            .idempotent(|| async {
                let reply = self.send(Method::GET, path, query, None).await?;
                if reply.status.is_success() {
                    return Ok(reply);
                }
                Err(status_error(&self.server, reply.status, &reply.body)
                    .with_retry_after(reply.retry_after))
            })
            .await
    }

    /// Every object of a list endpoint, paged with limit/offset; pages after the first are read
    /// concurrently. Returns the objects and the server's clock at the first page.
    async fn list_all(
        &self,
        path: &str,
        query: &[(String, String)],
    ) -> Result<(Vec<Value>, Option<DateTime<Utc>>), IpamError> {
        let page = |offset: usize| {
            let mut q = query.to_vec();
            q.push(("limit".into(), self.page_size.to_string()));
            q.push(("offset".into(), offset.to_string()));
            q
        };
        let first = self.get(path, &page(0)).await?;
        let count = first
            .body
            .get("count")
            .and_then(Value::as_u64)
            .ok_or_else(|| IpamError::Protocol {
                server: self.server.clone(),
                detail: format!("{path} answered without a \"count\" (not a Nautobot list)"),
            })? as usize;
        let mut objects = results_of(&self.server, path, first.body)?;
        if objects.len() < count && !objects.is_empty() {
            let step = objects.len();
            let offsets: Vec<usize> = (step..count).step_by(step).collect();
            let pages: Vec<Result<Vec<Value>, IpamError>> = stream::iter(offsets)
                .map(|offset| {
                    let q = page(offset);
                    async move {
                        let reply = self.get(path, &q).await?;
                        results_of(&self.server, path, reply.body)
                    }
                })
                .buffered(self.concurrency.max(1))
                .collect()
                .await;
            for p in pages {
                objects.extend(p?);
            }
        }
        // Offsets shift when objects are added during the read: drop repeats.
        let mut seen = HashSet::new();
        objects.retain(|o| match o.get("id").and_then(Value::as_str) {
            Some(id) => seen.insert(id.to_string()),
            None => true,
        });
        Ok((objects, first.date))
    }

    /// Lists objects by id (Nautobot accepts repeated `id=`), in chunks that keep URLs short.
    async fn list_by_ids(
        &self,
        path: &str,
        ids: &[String],
        extra: &[(String, String)],
    ) -> Result<Vec<Value>, IpamError> {
        let mut out = Vec::new();
        for chunk in ids.chunks(80) {
            let mut q: Vec<(String, String)> = extra.to_vec();
            q.extend(
                chunk
                    .iter()
                    .filter(|id| is_uuid(id))
                    .map(|id| ("id".into(), id.clone())),
            );
            if q.len() == extra.len() {
                continue;
            }
            out.extend(self.list_all(path, &q).await?.0);
        }
        Ok(out)
    }
}

fn results_of(server: &str, path: &str, body: Value) -> Result<Vec<Value>, IpamError> {
    match body {
        Value::Object(mut map) => match map.remove("results") {
            Some(Value::Array(items)) => Ok(items),
            _ => Err(IpamError::Protocol {
                server: server.to_string(),
                detail: format!("{path} answered without a \"results\" list"),
            }),
        },
        _ => Err(IpamError::Protocol {
            server: server.to_string(),
            detail: format!("{path} answered something that is not a JSON object"),
        }),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

fn transport_error(server: &str, e: &reqwest::Error) -> IpamError {
    let detail = error_chain(e);
    let lower = detail.to_ascii_lowercase();
    if e.is_timeout() {
        IpamError::Timeout {
            server: server.to_string(),
            detail,
        }
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake")
    {
        IpamError::Tls {
            server: server.to_string(),
            detail,
        }
    } else {
        IpamError::Unreachable {
            server: server.to_string(),
            detail,
        }
    }
}

/// Nautobot's own words from an error body, and the field it names when there is one.
pub fn nautobot_message(body: &Value) -> (Option<String>, String) {
    fn text(v: &Value) -> String {
        match v {
            Value::String(s) => s.clone(),
            Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(" "),
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| format!("{k}: {}", text(v)))
                .collect::<Vec<_>>()
                .join("; "),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }
    match body {
        Value::Object(map) => {
            if let Some(detail) = map.get("detail") {
                return (None, text(detail));
            }
            let field = map
                .keys()
                .find(|k| !matches!(k.as_str(), "__all__" | "non_field_errors"))
                .cloned();
            (field, text(body))
        }
        Value::Array(items) => {
            let parts: Vec<(usize, &Value)> = items
                .iter()
                .enumerate()
                .filter(|(_, v)| !is_empty_error(v))
                .collect();
            let field = parts.iter().find_map(|(_, v)| nautobot_message(v).0);
            let joined = parts
                .iter()
                .map(|(i, v)| format!("object {}: {}", i + 1, nautobot_message(v).1))
                .collect::<Vec<_>>()
                .join("; ");
            (field, joined)
        }
        Value::Null => (None, "no details given".into()),
        other => (None, text(other)),
    }
}

fn is_empty_error(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// Maps an HTTP failure to the console's error, keeping Nautobot's message.
pub fn status_error(server: &str, status: StatusCode, body: &Value) -> IpamError {
    let (field, message) = nautobot_message(body);
    let server = server.to_string();
    let detail = format!("{message} (HTTP {})", status.as_u16());
    let lower = message.to_ascii_lowercase();
    match status {
        StatusCode::UNAUTHORIZED => IpamError::Unauthorized { server, detail },
        StatusCode::FORBIDDEN
            if lower.contains("token")
                || lower.contains("authentication credentials")
                || lower.contains("not authenticated") =>
        {
            IpamError::Unauthorized { server, detail }
        }
        StatusCode::FORBIDDEN => IpamError::Forbidden {
            server,
            detail: format!(
                "{detail}; in Nautobot grant the token's user object permissions on \
                 ipam.namespace, ipam.prefix and ipam.ipaddressrange (view to read; add, change \
                 and delete to write)"
            ),
        },
        StatusCode::INTERNAL_SERVER_ERROR
            if message.contains("IntegrityError") || lower.contains("unique constraint") =>
        {
            IpamError::Conflict { server, detail }
        }
        StatusCode::NOT_FOUND => IpamError::NotFound { server, detail },
        StatusCode::CONFLICT => IpamError::Conflict { server, detail },
        StatusCode::BAD_REQUEST => IpamError::Invalid {
            server,
            field: field.unwrap_or_else(|| "(object)".into()),
            detail,
        },
        StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => {
            IpamError::Timeout { server, detail }
        }
        s if s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error() => IpamError::Server {
            server,
            detail,
            retry_after: None,
        },
        _ => IpamError::Protocol { server, detail },
    }
}

fn is_uuid(s: &str) -> bool {
    Uuid::parse_str(s).is_ok()
}

// ---------------------------------------------------------------------------------------------
// JSON ↔ neutral model
// ---------------------------------------------------------------------------------------------

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The id of a related object, whether Nautobot sent `{"id": …}` or a bare id.
fn ref_id(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Object(m) => m.get("id").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

fn custom_fields(v: &Value) -> Option<&Map<String, Value>> {
    v.get("custom_fields").and_then(Value::as_object)
}

fn cf_text(v: &Value, key: &str) -> Option<String> {
    match custom_fields(v)?.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Whether Fabric Console created or linked this object (it may then delete it).
fn is_console_object(v: &Value) -> bool {
    cf_text(v, field::VMM_ID).is_some() || cf_text(v, field::VMM_SERVER).is_some()
}

fn describe(v: &Value) -> String {
    str_of(v, "display")
        .or_else(|| str_of(v, "name"))
        .or_else(|| str_of(v, "prefix"))
        .unwrap_or("object")
        .to_string()
}

fn bad_field(server: &str, what: &str, object: &Value, field: &str, why: &str) -> IpamError {
    IpamError::Protocol {
        server: server.to_string(),
        detail: format!(
            "{what} {} has an unusable {field}: {why}; correct it in Nautobot",
            describe(object)
        ),
    }
}

fn cf_uuid(server: &str, what: &str, v: &Value) -> Result<Option<Uuid>, IpamError> {
    match cf_text(v, field::VMM_ID) {
        None => Ok(None),
        Some(s) => Uuid::parse_str(&s)
            .map(Some)
            .map_err(|_| bad_field(server, what, v, field::VMM_ID, "not a UUID")),
    }
}

fn cf_vlan(server: &str, v: &Value, key: &str) -> Result<Option<u16>, IpamError> {
    match custom_fields(v).and_then(|m| m.get(key)) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(id) if id <= u64::from(crate::fabric::model::MAX_VLAN) => Ok(Some(id as u16)),
            _ => Err(bad_field(server, "prefix", v, key, "not a VLAN id 0-4094")),
        },
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => match s.trim().parse::<u16>() {
            Ok(id) if id <= crate::fabric::model::MAX_VLAN => Ok(Some(id)),
            _ => Err(bad_field(server, "prefix", v, key, "not a VLAN id 0-4094")),
        },
        Some(_) => Err(bad_field(server, "prefix", v, key, "not a VLAN id 0-4094")),
    }
}

fn space_kind_and_name(name: &str, v: &Value) -> (AddressSpaceKind, String) {
    if let Some(rest) = name.strip_prefix(CUSTOMER_NAMESPACE_PREFIX) {
        (AddressSpaceKind::Customer, rest.to_string())
    } else if let Some(rest) = name.strip_prefix(PROVIDER_NAMESPACE_PREFIX) {
        (AddressSpaceKind::Provider, rest.to_string())
    } else if cf_text(v, field::VM_NETWORK).is_some() {
        (AddressSpaceKind::Customer, name.to_string())
    } else {
        (AddressSpaceKind::Provider, name.to_string())
    }
}

/// Whether a namespace is an address space of the console's mapping.
fn is_address_space(v: &Value) -> bool {
    let name = str_of(v, "name").unwrap_or("");
    if name.starts_with(PROBE_NAMESPACE_PREFIX) {
        return false;
    }
    name.starts_with(PROVIDER_NAMESPACE_PREFIX)
        || name.starts_with(CUSTOMER_NAMESPACE_PREFIX)
        || cf_text(v, field::VMM_ID).is_some()
        || cf_text(v, field::LOGICAL_NETWORK).is_some()
        || cf_text(v, field::VM_NETWORK).is_some()
}

pub fn namespace_name(space: &AddressSpace) -> String {
    let prefix = match space.kind {
        AddressSpaceKind::Provider => PROVIDER_NAMESPACE_PREFIX,
        AddressSpaceKind::Customer => CUSTOMER_NAMESPACE_PREFIX,
    };
    format!("{prefix}{}", space.name)
}

fn space_from_json(server: &str, v: &Value) -> Result<AddressSpace, IpamError> {
    let id = str_of(v, "id").ok_or_else(|| bad_field(server, "namespace", v, "id", "missing"))?;
    let name = str_of(v, "name").unwrap_or("");
    let (kind, name) = space_kind_and_name(name, v);
    Ok(AddressSpace {
        id: id.to_string(),
        vmm_id: cf_uuid(server, "namespace", v)?,
        name,
        kind,
        description: str_of(v, "description").unwrap_or("").to_string(),
        vmm_logical_network: cf_text(v, field::LOGICAL_NETWORK),
        vm_network: cf_text(v, field::VM_NETWORK),
        provider_space: cf_text(v, field::PROVIDER_SPACE),
        tenant: cf_text(v, field::TENANT).unwrap_or_default(),
        owner: cf_text(v, field::OWNER).unwrap_or_default(),
    })
}

fn other_custom_fields(v: &Value) -> BTreeMap<String, String> {
    custom_fields(v)
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !is_console_field(k))
                .filter_map(|(k, v)| match v {
                    Value::Null => None,
                    Value::String(s) if s.is_empty() => None,
                    Value::String(s) => Some((k.clone(), s.clone())),
                    other => Some((k.clone(), other.to_string())),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn subnet_from_json(server: &str, v: &Value) -> Result<IpamSubnet, IpamError> {
    let id = str_of(v, "id").ok_or_else(|| bad_field(server, "prefix", v, "id", "missing"))?;
    let network: IpNet = str_of(v, "prefix")
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| bad_field(server, "prefix", v, "prefix", "not a CIDR"))?;
    let address_space = ref_id(v, "namespace")
        .ok_or_else(|| bad_field(server, "prefix", v, "namespace", "missing"))?;
    Ok(IpamSubnet {
        id: id.to_string(),
        vmm_id: cf_uuid(server, "prefix", v)?,
        address_space,
        network: network.trunc(),
        name: str_of(v, "description").unwrap_or("").to_string(),
        network_type: cf_text(v, field::NETWORK_TYPE).unwrap_or_default(),
        vmm_logical_network: cf_text(v, field::LOGICAL_NETWORK),
        network_site: cf_text(v, field::NETWORK_SITE),
        vlan: cf_vlan(server, v, field::VLAN)?.unwrap_or(0),
        secondary_vlan: cf_vlan(server, v, field::SECONDARY_VLAN)?,
        owner: cf_text(v, field::OWNER).unwrap_or_default(),
        custom_fields: other_custom_fields(v),
    })
}

/// The pool settings Nautobot's range has no columns for, kept in the `vmm_pool` JSON field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
struct PoolSettings {
    reserved: BTreeSet<IpAddr>,
    vips: BTreeSet<IpAddr>,
    gateways: Vec<Gateway>,
    dns_servers: Vec<IpAddr>,
    dns_suffix: String,
    dns_search_suffixes: Vec<String>,
    wins_servers: Vec<IpAddr>,
    netbios_enabled: bool,
    managed_by_service: String,
    service_instance: String,
}

impl PoolSettings {
    fn of(r: &IpRange) -> Self {
        PoolSettings {
            reserved: r.reserved.clone(),
            vips: r.vips.clone(),
            gateways: r.gateways.clone(),
            dns_servers: r.dns_servers.clone(),
            dns_suffix: r.dns_suffix.clone(),
            dns_search_suffixes: r.dns_search_suffixes.clone(),
            wins_servers: r.wins_servers.clone(),
            netbios_enabled: r.netbios_enabled,
            managed_by_service: r.managed_by_service.clone(),
            service_instance: r.service_instance.clone(),
        }
    }
}

fn address_of(v: &Value, key: &str) -> Option<IpAddr> {
    let s = str_of(v, key)?;
    let bare = s.split('/').next().unwrap_or(s);
    bare.parse().ok()
}

fn range_from_json(server: &str, v: &Value) -> Result<IpRange, IpamError> {
    let id = str_of(v, "id").ok_or_else(|| bad_field(server, "range", v, "id", "missing"))?;
    let start = address_of(v, "start_address")
        .ok_or_else(|| bad_field(server, "range", v, "start_address", "not an IP address"))?;
    let end = address_of(v, "end_address")
        .ok_or_else(|| bad_field(server, "range", v, "end_address", "not an IP address"))?;
    let subnet =
        ref_id(v, "parent").ok_or_else(|| bad_field(server, "range", v, "parent", "missing"))?;
    let settings = match custom_fields(v).and_then(|m| m.get(field::POOL)) {
        None | Some(Value::Null) => PoolSettings::default(),
        Some(Value::String(s)) if s.trim().is_empty() => PoolSettings::default(),
        // A text-typed field (made by hand) holds the same JSON as a string.
        Some(Value::String(s)) => serde_json::from_str(s)
            .map_err(|e| bad_field(server, "range", v, field::POOL, &e.to_string()))?,
        Some(other) => serde_json::from_value(other.clone())
            .map_err(|e| bad_field(server, "range", v, field::POOL, &e.to_string()))?,
    };
    Ok(IpRange {
        id: id.to_string(),
        vmm_id: cf_uuid(server, "range", v)?,
        subnet,
        name: str_of(v, "name").unwrap_or("").to_string(),
        description: str_of(v, "description").unwrap_or("").to_string(),
        start,
        end,
        reserved: settings.reserved,
        vips: settings.vips,
        gateways: settings.gateways,
        dns_servers: settings.dns_servers,
        dns_suffix: settings.dns_suffix,
        dns_search_suffixes: settings.dns_search_suffixes,
        wins_servers: settings.wins_servers,
        netbios_enabled: settings.netbios_enabled,
        managed_by_service: settings.managed_by_service,
        service_instance: settings.service_instance,
    })
}

fn opt_text(s: &Option<String>) -> Value {
    match s {
        Some(s) if !s.is_empty() => Value::String(s.clone()),
        _ => Value::Null,
    }
}

fn text_or_null(s: &str) -> Value {
    if s.is_empty() {
        Value::Null
    } else {
        Value::String(s.to_string())
    }
}

fn space_body(space: &AddressSpace, manager: &str) -> Value {
    json!({
        "name": namespace_name(space),
        "description": space.description,
        "custom_fields": {
            field::VMM_ID: space.vmm_id.map(|u| u.to_string()),
            field::VMM_SERVER: manager,
            field::LOGICAL_NETWORK: opt_text(&space.vmm_logical_network),
            field::VM_NETWORK: opt_text(&space.vm_network),
            field::PROVIDER_SPACE: opt_text(&space.provider_space),
            field::TENANT: text_or_null(&space.tenant),
            field::OWNER: text_or_null(&space.owner),
        }
    })
}

fn subnet_body(subnet: &IpamSubnet, manager: &str, status_id: &str) -> Value {
    let mut fields = Map::new();
    for (k, v) in &subnet.custom_fields {
        fields.insert(k.clone(), Value::String(v.clone()));
    }
    fields.insert(
        field::VMM_ID.into(),
        json!(subnet.vmm_id.map(|u| u.to_string())),
    );
    fields.insert(field::VMM_SERVER.into(), json!(manager));
    fields.insert(
        field::LOGICAL_NETWORK.into(),
        opt_text(&subnet.vmm_logical_network),
    );
    fields.insert(field::NETWORK_SITE.into(), opt_text(&subnet.network_site));
    fields.insert(
        field::NETWORK_TYPE.into(),
        text_or_null(&subnet.network_type),
    );
    fields.insert(field::VLAN.into(), json!(subnet.vlan));
    fields.insert(field::SECONDARY_VLAN.into(), json!(subnet.secondary_vlan));
    fields.insert(field::OWNER.into(), text_or_null(&subnet.owner));
    json!({
        "prefix": subnet.network.trunc().to_string(),
        "namespace": subnet.address_space,
        "type": "network",
        "status": status_id,
        "description": subnet.name,
        "custom_fields": fields,
    })
}

fn range_body(range: &IpRange, manager: &str, status_id: &str) -> Value {
    json!({
        "start_address": range.start.to_string(),
        "end_address": range.end.to_string(),
        "parent": range.subnet,
        "status": status_id,
        "name": range.name,
        "description": range.description,
        "custom_fields": {
            field::VMM_ID: range.vmm_id.map(|u| u.to_string()),
            field::VMM_SERVER: manager,
            field::POOL: PoolSettings::of(range),
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Cursor
// ---------------------------------------------------------------------------------------------

const CURSOR_TAG: &str = "nautobot-v1:";

/// What an incremental read needs from the previous one; opaque to the rest of the console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CursorState {
    /// Server clock at the start of the previous read.
    read_at: DateTime<Utc>,
    /// Server clock at the start of the last full read.
    full_at: DateTime<Utc>,
    reads_since_full: u32,
    /// Digest of the scope the reads were made for.
    scope: String,
    /// Namespace ids in scope at the previous read.
    spaces: BTreeSet<String>,
}

impl CursorState {
    fn encode(&self) -> Cursor {
        Cursor(format!(
            "{CURSOR_TAG}{}",
            serde_json::to_string(self).unwrap_or_default()
        ))
    }

    fn decode(cursor: &Cursor) -> Option<Self> {
        serde_json::from_str(cursor.0.strip_prefix(CURSOR_TAG)?).ok()
    }
}

fn scope_digest(scope: &SnapshotScope) -> String {
    let text = serde_json::to_string(scope).unwrap_or_default();
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

fn watermark(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The namespaces of the mapping that a scope selects.
fn spaces_in_scope(spaces: Vec<AddressSpace>, scope: &SnapshotScope) -> Vec<AddressSpace> {
    match scope {
        SnapshotScope::All => spaces,
        SnapshotScope::LogicalNetworks(names) => {
            let provider_ids: HashSet<String> = spaces
                .iter()
                .filter(|s| s.kind == AddressSpaceKind::Provider)
                .filter(|s| match &s.vmm_logical_network {
                    Some(ln) => names.contains(ln),
                    // A cleared VMM Logical Network field keeps the space visible by its name,
                    // so the console can see the broken link.
                    None => names.contains(&s.name),
                })
                .map(|s| s.id.clone())
                .collect();
            spaces
                .into_iter()
                .filter(|s| match s.kind {
                    AddressSpaceKind::Provider => provider_ids.contains(&s.id),
                    AddressSpaceKind::Customer => {
                        s.provider_space
                            .as_ref()
                            .is_some_and(|p| provider_ids.contains(p))
                            || s.vmm_logical_network
                                .as_ref()
                                .is_some_and(|ln| names.contains(ln))
                    }
                })
                .collect()
        }
    }
}

fn namespace_filters(ids: &[String]) -> Vec<Vec<(String, String)>> {
    ids.chunks(60)
        .map(|c| {
            c.iter()
                .map(|id| ("namespace".to_string(), id.clone()))
                .collect()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Apply plumbing
// ---------------------------------------------------------------------------------------------

/// Ids another operation refers to (target of updates/deletes, parents of creates).
fn references(op: &IpamOp) -> Vec<&str> {
    match op {
        IpamOp::CreateSpace(s) => s.provider_space.as_deref().into_iter().collect(),
        IpamOp::UpdateSpace(s) => {
            let mut r = vec![s.id.as_str()];
            r.extend(s.provider_space.as_deref());
            r
        }
        IpamOp::CreateSubnet(s) => vec![s.address_space.as_str()],
        IpamOp::UpdateSubnet(s) => vec![s.id.as_str(), s.address_space.as_str()],
        IpamOp::CreateRange(r) => vec![r.subnet.as_str()],
        IpamOp::UpdateRange(r) => vec![r.id.as_str(), r.subnet.as_str()],
        IpamOp::DeleteSpace(id) | IpamOp::DeleteSubnet(id) | IpamOp::DeleteRange(id) => {
            vec![id.as_str()]
        }
    }
}

/// Replaces ids proposed earlier in the batch by the ids Nautobot assigned.
fn translate(op: &IpamOp, ids: &HashMap<String, String>) -> IpamOp {
    let t = |s: &str| ids.get(s).cloned().unwrap_or_else(|| s.to_string());
    let mut op = op.clone();
    match &mut op {
        IpamOp::CreateSpace(s) => s.provider_space = s.provider_space.as_deref().map(t),
        IpamOp::UpdateSpace(s) => {
            s.id = t(&s.id);
            s.provider_space = s.provider_space.as_deref().map(t);
        }
        IpamOp::CreateSubnet(s) => s.address_space = t(&s.address_space),
        IpamOp::UpdateSubnet(s) => {
            s.id = t(&s.id);
            s.address_space = t(&s.address_space);
        }
        IpamOp::CreateRange(r) => r.subnet = t(&r.subnet),
        IpamOp::UpdateRange(r) => {
            r.id = t(&r.id);
            r.subnet = t(&r.subnet);
        }
        IpamOp::DeleteSpace(id) | IpamOp::DeleteSubnet(id) | IpamOp::DeleteRange(id) => *id = t(id),
    }
    op
}

/// Splits a batch into runs of one kind and verb that can go out as bulk requests; a run ends
/// where an operation refers to an object created within the same run.
fn runs(batch: &[IpamOp]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut proposed: HashSet<&str> = HashSet::new();
    for (i, op) in batch.iter().enumerate() {
        let same_kind =
            i > start && batch[start].kind() == op.kind() && batch[start].verb() == op.verb();
        let depends = references(op).iter().any(|r| proposed.contains(r));
        if i > start && (!same_kind || depends) {
            out.push(start..i);
            start = i;
            proposed.clear();
        }
        if op.verb() == OpVerb::Create {
            proposed.insert(op.target_id());
        }
    }
    if start < batch.len() {
        out.push(start..batch.len());
    }
    out
}

fn path_of(kind: IpamKind) -> &'static str {
    match kind {
        IpamKind::AddressSpace => NAMESPACES,
        IpamKind::Subnet => PREFIXES,
        IpamKind::Range => RANGES,
    }
}

#[derive(Debug, Clone)]
struct Schema {
    active_status: String,
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
}

impl NautobotProvider {
    pub fn new(config: ProviderConfig, tuning: NautobotTuning) -> Result<Self, IpamError> {
        let descriptor = descriptor();
        let base = config
            .connection
            .base_url(Scheme::Http, descriptor.default_port);
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
        if config.tls_fingerprint.is_some() {
            return Err(IpamError::Tls {
                server,
                detail:
                    "the Nautobot provider does not support certificate pinning; give Nautobot a \
                         certificate from a trusted authority and clear the pinned fingerprint"
                        .into(),
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
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(tuning.connect_timeout)
            .timeout(tuning.request_timeout)
            .user_agent(concat!("fabric-console/", env!("CARGO_PKG_VERSION")))
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
        Ok(NautobotProvider {
            descriptor,
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
            },
            tuning,
            manager,
            account,
            schema: Mutex::new(None),
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

    /// Makes sure the custom fields exist on the right content types and finds the Active
    /// status, creating or extending what is missing when `create` is set.
    async fn ensure_schema(&self, create: bool) -> Result<Schema, IpamError> {
        let mut cached = self.schema.lock().await;
        if let Some(schema) = cached.as_ref() {
            return Ok(schema.clone());
        }
        let (fields, _) = self.api.list_all(CUSTOM_FIELDS, &[]).await?;
        let mut missing = Vec::new();
        for def in CUSTOM_FIELD_DEFS {
            let existing = fields.iter().find(|f| str_of(f, "key") == Some(def.key));
            match existing {
                None => {
                    if !create {
                        missing.push(def.key);
                        continue;
                    }
                    let body = json!({
                        "key": def.key,
                        "label": def.label,
                        "type": def.kind,
                        "content_types": def.content_types,
                        "description": def.description,
                        "grouping": "Fabric Console",
                        "filter_logic": "exact",
                    });
                    if let Err(e) = self.send_ok(Method::POST, CUSTOM_FIELDS, Some(&body)).await {
                        // Another console may have created it meanwhile.
                        let (now, _) = self.api.list_all(CUSTOM_FIELDS, &[]).await?;
                        if !now.iter().any(|f| str_of(f, "key") == Some(def.key)) {
                            return Err(e);
                        }
                    }
                }
                Some(f) => {
                    let have: BTreeSet<String> = f
                        .get("content_types")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default();
                    let lacking: Vec<&str> = def
                        .content_types
                        .iter()
                        .copied()
                        .filter(|ct| !have.contains(*ct))
                        .collect();
                    if lacking.is_empty() {
                        continue;
                    }
                    if !create {
                        missing.push(def.key);
                        continue;
                    }
                    let id = str_of(f, "id").unwrap_or_default();
                    let mut all: Vec<String> = have.into_iter().collect();
                    all.extend(lacking.iter().map(|s| s.to_string()));
                    self.send_ok(
                        Method::PATCH,
                        &format!("{CUSTOM_FIELDS}{id}/"),
                        Some(&json!({ "content_types": all })),
                    )
                    .await?;
                }
            }
        }
        let status_reply = self
            .api
            .get(STATUSES, &[("name".into(), "Active".into())])
            .await?;
        let statuses = results_of(&self.api.server, STATUSES, status_reply.body)?;
        let active = statuses.first().ok_or_else(|| {
            self.protocol("Nautobot has no status named \"Active\"; create it for prefixes and IP address ranges")
        })?;
        let active_id = str_of(active, "id").unwrap_or_default().to_string();
        let cts: BTreeSet<String> = active
            .get("content_types")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let needed = [CT_PREFIX, CT_RANGE];
        if needed.iter().any(|ct| !cts.contains(*ct)) {
            if create {
                let mut all: Vec<String> = cts.into_iter().collect();
                all.extend(needed.iter().map(|s| s.to_string()));
                all.sort();
                all.dedup();
                self.send_ok(
                    Method::PATCH,
                    &format!("{STATUSES}{active_id}/"),
                    Some(&json!({ "content_types": all })),
                )
                .await?;
            } else {
                missing.push("status Active for prefixes and ranges");
            }
        }
        let schema = Schema {
            active_status: active_id,
        };
        if missing.is_empty() {
            *cached = Some(schema.clone());
            Ok(schema)
        } else if create {
            Ok(schema)
        } else {
            Err(IpamError::Forbidden {
                server: self.api.server.clone(),
                detail: format!(
                    "missing in Nautobot: {}; they are created on the first sync by a token \
                     allowed to add and change extras.customfield",
                    missing.join(", ")
                ),
            })
        }
    }

    // ----- reads -----------------------------------------------------------------------------

    async fn read_spaces(
        &self,
        scope: &SnapshotScope,
    ) -> Result<(Vec<AddressSpace>, Vec<Value>, Option<DateTime<Utc>>), IpamError> {
        let (namespaces, date) = self.api.list_all(NAMESPACES, &[]).await?;
        let mut spaces = Vec::new();
        let mut raw = Vec::new();
        for ns in namespaces.into_iter().filter(is_address_space) {
            spaces.push(space_from_json(&self.api.server, &ns)?);
            raw.push(ns);
        }
        let spaces = spaces_in_scope(spaces, scope);
        let keep: HashSet<&str> = spaces.iter().map(|s| s.id.as_str()).collect();
        raw.retain(|ns| str_of(ns, "id").is_some_and(|id| keep.contains(id)));
        Ok((spaces, raw, date))
    }

    async fn list_in_namespaces(
        &self,
        path: &str,
        namespaces: &[String],
        extra: &[(String, String)],
    ) -> Result<Vec<Value>, IpamError> {
        let mut out = Vec::new();
        for filter in namespace_filters(namespaces) {
            let mut q = extra.to_vec();
            q.extend(filter);
            out.extend(self.api.list_all(path, &q).await?.0);
        }
        Ok(out)
    }

    async fn full_read(&self, scope: &SnapshotScope) -> Result<IpamSnapshot, IpamError> {
        let (spaces, _, date) = self.read_spaces(scope).await?;
        let read_at = date.ok_or_else(|| self.protocol("no Date header in the answer"))?;
        let ns_ids: Vec<String> = spaces.iter().map(|s| s.id.clone()).collect();
        let network = [("type".to_string(), "network".to_string())];
        let (prefixes, ranges) = tokio::try_join!(
            self.list_in_namespaces(PREFIXES, &ns_ids, &network),
            self.list_in_namespaces(RANGES, &ns_ids, &[]),
        )?;
        let subnets = prefixes
            .iter()
            .map(|p| subnet_from_json(&self.api.server, p))
            .collect::<Result<Vec<_>, _>>()?;
        let subnet_ids: HashSet<&str> = subnets.iter().map(|s| s.id.as_str()).collect();
        let mut out_ranges = Vec::new();
        for r in &ranges {
            // Ranges under a container or pool prefix are not pools of a subnet.
            if ref_id(r, "parent").is_some_and(|p| subnet_ids.contains(p.as_str())) {
                out_ranges.push(range_from_json(&self.api.server, r)?);
            }
        }
        let state = CursorState {
            read_at,
            full_at: read_at,
            reads_since_full: 0,
            scope: scope_digest(scope),
            spaces: ns_ids.into_iter().collect(),
        };
        Ok(IpamSnapshot {
            cursor: Some(state.encode()),
            spaces,
            subnets,
            ranges: out_ranges,
        })
    }

    /// Ids deleted since `since` (with their namespace when the change log records it), from
    /// Nautobot's change log; `None` when the log is not readable.
    async fn deleted_since(
        &self,
        content_type: &str,
        since: &str,
    ) -> Result<Option<Vec<(String, Option<String>)>>, IpamError> {
        let q = [
            ("action".to_string(), "delete".to_string()),
            ("changed_object_type".to_string(), content_type.to_string()),
            ("time__gte".to_string(), since.to_string()),
        ];
        match self.api.list_all(OBJECT_CHANGES, &q).await {
            Ok((changes, _)) => Ok(Some(
                changes
                    .iter()
                    .filter_map(|c| {
                        let id = str_of(c, "changed_object_id")?.to_string();
                        // The deleted object's last state names its namespace, when it had one.
                        let namespace =
                            c.get("object_data").and_then(|d| match d.get("namespace") {
                                Some(Value::String(s)) => Some(s.clone()),
                                Some(Value::Object(m)) => {
                                    m.get("id").and_then(Value::as_str).map(str::to_string)
                                }
                                _ => None,
                            });
                        Some((id, namespace))
                    })
                    .collect(),
            )),
            Err(IpamError::Forbidden { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn incremental_read(
        &self,
        scope: &SnapshotScope,
        previous: CursorState,
    ) -> Result<SnapshotRead, IpamError> {
        let (spaces, raw_spaces, date) = self.read_spaces(scope).await?;
        let now = date.ok_or_else(|| self.protocol("no Date header in the answer"))?;
        let full_due = previous.reads_since_full + 1 >= self.tuning.full_read_every
            || now - previous.full_at > self.tuning.full_read_after
            || now < previous.read_at;
        if full_due {
            return Ok(SnapshotRead::Full(self.full_read(scope).await?));
        }
        let since_time = previous.read_at - self.tuning.overlap;
        let since = watermark(since_time);
        let current: BTreeSet<String> = spaces.iter().map(|s| s.id.clone()).collect();
        // A namespace that entered the scope with old contents (its link changed) needs a full read.
        for ns in &raw_spaces {
            let id = str_of(ns, "id").unwrap_or_default();
            let created = str_of(ns, "created")
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc));
            if !previous.spaces.contains(id) && created.is_none_or(|c| c < since_time) {
                return Ok(SnapshotRead::Full(self.full_read(scope).await?));
            }
        }
        let changed_q = [("last_updated__gte".to_string(), since.clone())];
        // Namespaces in scope now or at the previous read: objects leaving the scope count too.
        let known: Vec<String> = current.union(&previous.spaces).cloned().collect();
        let (prefixes, ranges, deleted_prefixes, deleted_ranges) = tokio::try_join!(
            self.list_in_namespaces(PREFIXES, &known, &changed_q),
            self.list_in_namespaces(RANGES, &known, &changed_q),
            self.deleted_since(CT_PREFIX, &since),
            self.deleted_since(CT_RANGE, &since),
        )?;
        let (Some(deleted_prefixes), Some(deleted_ranges)) = (deleted_prefixes, deleted_ranges)
        else {
            // Without the change log deletions cannot be seen: read everything instead.
            return Ok(SnapshotRead::Full(self.full_read(scope).await?));
        };
        let mut deleted: Vec<(IpamKind, String)> = Vec::new();
        for id in previous.spaces.difference(&current) {
            deleted.push((IpamKind::AddressSpace, id.clone()));
        }
        // Deleted namespaces are the ones missing from the (always complete) namespace list.
        let mut subnets = Vec::new();
        let mut network_ids: HashSet<String> = HashSet::new();
        for p in &prefixes {
            let id = str_of(p, "id").unwrap_or_default().to_string();
            let in_scope = ref_id(p, "namespace").is_some_and(|ns| current.contains(&ns));
            if in_scope
                && str_of(p, "type").or_else(|| p.pointer("/type/value").and_then(Value::as_str))
                    == Some("network")
            {
                subnets.push(subnet_from_json(&self.api.server, p)?);
                network_ids.insert(id);
            } else {
                // Moved out of scope or no longer a network: gone from the console's view.
                deleted.push((IpamKind::Subnet, id));
            }
        }
        for (id, namespace) in deleted_prefixes {
            if namespace.is_none_or(|ns| known.contains(&ns)) {
                deleted.push((IpamKind::Subnet, id));
            }
        }
        // Parents of changed ranges that did not change themselves: are they subnets in scope?
        let unknown_parents: Vec<String> = ranges
            .iter()
            .filter_map(|r| ref_id(r, "parent"))
            .filter(|p| !network_ids.contains(p))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if !unknown_parents.is_empty() {
            let parents = self
                .api
                .list_by_ids(
                    PREFIXES,
                    &unknown_parents,
                    &[("type".to_string(), "network".to_string())],
                )
                .await?;
            for p in parents {
                if ref_id(&p, "namespace").is_some_and(|ns| current.contains(&ns))
                    && let Some(id) = str_of(&p, "id")
                {
                    network_ids.insert(id.to_string());
                }
            }
        }
        let mut out_ranges = Vec::new();
        for r in &ranges {
            if ref_id(r, "parent").is_some_and(|p| network_ids.contains(&p)) {
                out_ranges.push(range_from_json(&self.api.server, r)?);
            } else if let Some(id) = str_of(r, "id") {
                deleted.push((IpamKind::Range, id.to_string()));
            }
        }
        for (id, _) in deleted_ranges {
            deleted.push((IpamKind::Range, id));
        }
        let upserted: HashSet<(IpamKind, String)> = subnets
            .iter()
            .map(|s| (IpamKind::Subnet, s.id.clone()))
            .chain(out_ranges.iter().map(|r| (IpamKind::Range, r.id.clone())))
            .collect();
        // An object deleted and re-read in the overlap window is reported by its latest state.
        deleted.retain(|d| !upserted.contains(d));
        deleted.sort();
        deleted.dedup();
        let changed_spaces: Vec<AddressSpace> = spaces
            .into_iter()
            .zip(raw_spaces.iter())
            .filter(|(s, raw)| {
                !previous.spaces.contains(&s.id)
                    || str_of(raw, "last_updated")
                        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                        .is_none_or(|t| t.with_timezone(&Utc) >= since_time)
            })
            .map(|(s, _)| s)
            .collect();
        let state = CursorState {
            read_at: now,
            full_at: previous.full_at,
            reads_since_full: previous.reads_since_full + 1,
            scope: previous.scope,
            spaces: current,
        };
        Ok(SnapshotRead::Changes(ChangeSet {
            cursor: Some(state.encode()),
            spaces: changed_spaces,
            subnets,
            ranges: out_ranges,
            deleted,
        }))
    }

    // ----- writes ----------------------------------------------------------------------------

    /// Sends objects to a list endpoint in batches with bounded concurrency. Each entry is one
    /// operation's object; the result keeps the entry's tag. Nautobot's bulk calls are
    /// all-or-none: when some objects are rejected, the others are sent again without them.
    async fn bulk(
        &self,
        method: Method,
        path: &str,
        items: Vec<(usize, Value)>,
    ) -> Vec<(usize, Result<Value, IpamError>)> {
        let batch = self.tuning.batch_size.max(1);
        let chunks: Vec<Vec<(usize, Value)>> = items.chunks(batch).map(|c| c.to_vec()).collect();
        let results: Vec<Vec<(usize, Result<Value, IpamError>)>> = stream::iter(chunks)
            .map(|chunk| {
                let method = method.clone();
                async move { self.bulk_chunk(method, path, chunk, true).await }
            })
            .buffer_unordered(self.api.concurrency)
            .collect()
            .await;
        results.into_iter().flatten().collect()
    }

    async fn bulk_chunk(
        &self,
        method: Method,
        path: &str,
        chunk: Vec<(usize, Value)>,
        may_split: bool,
    ) -> Vec<(usize, Result<Value, IpamError>)> {
        let body = Value::Array(chunk.iter().map(|(_, v)| v.clone()).collect());
        let reply = match self.api.send(method.clone(), path, &[], Some(&body)).await {
            Ok(r) => r,
            Err(e) => {
                return chunk
                    .into_iter()
                    .map(|(i, _)| (i, Err(e.clone())))
                    .collect();
            }
        };
        if reply.status.is_success() {
            return match reply.body {
                Value::Array(objects) if objects.len() == chunk.len() => chunk
                    .into_iter()
                    .zip(objects)
                    .map(|((i, _), o)| (i, Ok(o)))
                    .collect(),
                // DELETE answers 204 without a body.
                Value::Null => chunk
                    .into_iter()
                    .map(|(i, _)| (i, Ok(Value::Null)))
                    .collect(),
                _ => {
                    let e = self.protocol(format!(
                        "{path} answered a bulk {method} with something other than one object per item"
                    ));
                    chunk
                        .into_iter()
                        .map(|(i, _)| (i, Err(e.clone())))
                        .collect()
                }
            };
        }
        let error = status_error(&self.api.server, reply.status, &reply.body);
        let per_item = match &reply.body {
            Value::Array(errors) if errors.len() == chunk.len() => Some(errors.clone()),
            _ => None,
        };
        let splittable = may_split
            && chunk.len() > 1
            && matches!(
                reply.status,
                StatusCode::BAD_REQUEST
                    | StatusCode::CONFLICT
                    | StatusCode::NOT_FOUND
                    // Bulk writes run in one transaction: a 500 (e.g. two equal prefixes in
                    // one batch) left nothing behind, so the objects can go one by one.
                    | StatusCode::INTERNAL_SERVER_ERROR
            );
        if !splittable {
            return chunk
                .into_iter()
                .map(|(i, _)| (i, Err(error.clone())))
                .collect();
        }
        let mut out = Vec::new();
        let mut again = Vec::new();
        match per_item {
            Some(errors) => {
                for ((i, v), e) in chunk.into_iter().zip(errors) {
                    if is_empty_error(&e) {
                        again.push((i, v));
                    } else {
                        out.push((i, Err(status_error(&self.api.server, reply.status, &e))));
                    }
                }
            }
            None => again = chunk,
        }
        if per_item_failed(&out) && !again.is_empty() {
            // The rejected objects are known: send the others once more as one batch.
            let retried = Box::pin(self.bulk_chunk(method, path, again, false)).await;
            out.extend(retried);
        } else {
            // The answer does not say which object failed: send them one by one.
            let singles: Vec<Vec<(usize, Result<Value, IpamError>)>> = stream::iter(again)
                .map(|item| {
                    let method = method.clone();
                    async move { Box::pin(self.bulk_chunk(method, path, vec![item], false)).await }
                })
                .buffer_unordered(self.api.concurrency)
                .collect()
                .await;
            out.extend(singles.into_iter().flatten());
        }
        out
    }

    /// Objects by id, keyed by id.
    async fn fetch(
        &self,
        kind: IpamKind,
        ids: &[String],
    ) -> Result<HashMap<String, Value>, IpamError> {
        let objects = self.api.list_by_ids(path_of(kind), ids, &[]).await?;
        Ok(objects
            .into_iter()
            .filter_map(|o| str_of(&o, "id").map(|id| (id.to_string(), o.clone())))
            .collect())
    }

    async fn apply_run(
        &self,
        schema: &Schema,
        ops: &[(usize, IpamOp)],
        outcomes: &mut [Option<OpOutcome>],
    ) {
        let Some((_, first)) = ops.first() else {
            return;
        };
        let kind = first.kind();
        let path = path_of(kind);
        let status = schema.active_status.as_str();
        match first.verb() {
            OpVerb::Create | OpVerb::Update => {
                let is_update = first.verb() == OpVerb::Update;
                let items: Vec<(usize, Value)> = ops
                    .iter()
                    .map(|(i, op)| {
                        let mut body = match op {
                            IpamOp::CreateSpace(s) | IpamOp::UpdateSpace(s) => {
                                space_body(s, &self.manager)
                            }
                            IpamOp::CreateSubnet(s) | IpamOp::UpdateSubnet(s) => {
                                subnet_body(s, &self.manager, status)
                            }
                            IpamOp::CreateRange(r) | IpamOp::UpdateRange(r) => {
                                range_body(r, &self.manager, status)
                            }
                            _ => Value::Null,
                        };
                        if is_update && let Value::Object(m) = &mut body {
                            m.insert("id".into(), json!(op.target_id()));
                            // Moving a prefix between namespaces is refused together with
                            // a network change; a subnet's namespace is fixed after create.
                            if kind == IpamKind::Subnet {
                                m.remove("namespace");
                            }
                            if kind == IpamKind::Range {
                                m.remove("parent");
                            }
                            // Status and type are the operator's to change in Nautobot.
                            m.remove("status");
                            m.remove("type");
                        }
                        (*i, body)
                    })
                    .collect();
                let method = if is_update {
                    Method::PATCH
                } else {
                    Method::POST
                };
                for (i, result) in self.bulk(method, path, items).await {
                    outcomes[i] = Some(match result {
                        Ok(object) => match str_of(&object, "id") {
                            Some(id) => OpOutcome::Applied { id: id.to_string() },
                            None => OpOutcome::Failed(
                                self.protocol(format!("{path} answered an object without an id")),
                            ),
                        },
                        Err(e) => OpOutcome::Failed(e),
                    });
                }
            }
            OpVerb::Delete => {
                let ids: Vec<String> = ops
                    .iter()
                    .map(|(_, op)| op.target_id().to_string())
                    .collect();
                let existing = match self.fetch(kind, &ids).await {
                    Ok(map) => map,
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
                    match existing.get(id) {
                        // Already gone: the wanted state holds.
                        None if is_uuid(id) => {
                            outcomes[*i] = Some(OpOutcome::Applied { id: id.to_string() })
                        }
                        None => {
                            outcomes[*i] = Some(OpOutcome::Failed(IpamError::NotFound {
                                server: self.api.server.clone(),
                                detail: format!(
                                    "{} id \"{id}\" is not a Nautobot id",
                                    kind.label()
                                ),
                            }))
                        }
                        Some(object) if !is_console_object(object) => {
                            outcomes[*i] = Some(OpOutcome::Failed(IpamError::Conflict {
                                server: self.api.server.clone(),
                                detail: format!(
                                    "{} {} was not created by Fabric Console (it has no vmm_id or \
                                     vmm_server custom field), so the console does not delete it; \
                                     delete it in Nautobot if it should go",
                                    kind.label(),
                                    describe(object)
                                ),
                            }))
                        }
                        Some(_) => items.push((*i, json!({ "id": id }))),
                    }
                }
                for (i, result) in self.bulk(Method::DELETE, path, items).await {
                    outcomes[i] = Some(match result {
                        Ok(_) => OpOutcome::Applied {
                            id: ops
                                .iter()
                                .find(|(j, _)| *j == i)
                                .map(|(_, op)| op.target_id().to_string())
                                .unwrap_or_default(),
                        },
                        Err(e) => OpOutcome::Failed(e),
                    });
                }
            }
        }
    }

    /// A harmless create/change/delete of scratch objects, proving the token may write.
    async fn write_probe(&self, schema: &Schema) -> Result<(), (String, IpamError)> {
        let name = format!(
            "{PROBE_NAMESPACE_PREFIX}{}",
            &Uuid::new_v4().simple().to_string()[..12]
        );
        let ns = self
            .send_ok(
                Method::POST,
                NAMESPACES,
                Some(&json!({ "name": name, "description": "Fabric Console permission check; safe to delete" })),
            )
            .await
            .map_err(|e| ("add ipam.namespace".to_string(), e))?;
        let ns_id = str_of(&ns.body, "id").unwrap_or_default().to_string();
        let result = async {
            self.send_ok(
                Method::PATCH,
                &format!("{NAMESPACES}{ns_id}/"),
                Some(&json!({ "description": "Fabric Console permission check (changed); safe to delete" })),
            )
            .await
            .map_err(|e| ("change ipam.namespace".to_string(), e))?;
            let prefix = self
                .send_ok(
                    Method::POST,
                    PREFIXES,
                    Some(&json!({
                        "prefix": "192.0.2.0/24", "namespace": ns_id, "type": "network",
                        "status": schema.active_status,
                    })),
                )
                .await
                .map_err(|e| ("add ipam.prefix".to_string(), e))?;
            let prefix_id = str_of(&prefix.body, "id").unwrap_or_default().to_string();
            let inner = async {
                self.send_ok(
                    Method::PATCH,
                    &format!("{PREFIXES}{prefix_id}/"),
                    Some(&json!({ "description": "permission check" })),
                )
                .await
                .map_err(|e| ("change ipam.prefix".to_string(), e))?;
                let range = self
                    .send_ok(
                        Method::POST,
                        RANGES,
                        Some(&json!({
                            "start_address": "192.0.2.10", "end_address": "192.0.2.20",
                            "parent": prefix_id, "status": schema.active_status,
                        })),
                    )
                    .await
                    .map_err(|e| ("add ipam.ipaddressrange".to_string(), e))?;
                let range_id = str_of(&range.body, "id").unwrap_or_default().to_string();
                self.send_ok(Method::DELETE, &format!("{RANGES}{range_id}/"), None)
                    .await
                    .map_err(|e| ("delete ipam.ipaddressrange".to_string(), e))?;
                Ok(())
            }
            .await;
            let deleted = self
                .send_ok(Method::DELETE, &format!("{PREFIXES}{prefix_id}/"), None)
                .await
                .map_err(|e| ("delete ipam.prefix".to_string(), e));
            inner.and(deleted)
        }
        .await;
        let deleted = self
            .send_ok(Method::DELETE, &format!("{NAMESPACES}{ns_id}/"), None)
            .await
            .map_err(|e| ("delete ipam.namespace".to_string(), e));
        result.and(deleted.map(|_| ()))
    }
}

fn per_item_failed(out: &[(usize, Result<Value, IpamError>)]) -> bool {
    out.iter().any(|(_, r)| r.is_err())
}

fn passed(name: &str, detail: String) -> TestResult {
    TestResult {
        name: name.to_string(),
        outcome: TestOutcome::Passed,
        detail,
    }
}

fn failed(name: &str, detail: String) -> TestResult {
    TestResult {
        name: name.to_string(),
        outcome: TestOutcome::Failed,
        detail,
    }
}

#[async_trait::async_trait]
impl IpamProvider for NautobotProvider {
    fn descriptor(&self) -> &ProviderDescriptor {
        &self.descriptor
    }

    async fn test(&self) -> TestReport {
        let mut report = TestReport {
            tests: Vec::new(),
            operations: self.descriptor.operations.clone(),
            server_version: None,
            server_time: None,
            skew_ms: None,
        };
        // Open connection.
        let sent_at = Utc::now();
        let status = self.api.get(STATUS, &[]).await;
        let received_at = Utc::now();
        let status = match status {
            Ok(reply) => {
                let version = str_of(&reply.body, "nautobot-version")
                    .unwrap_or("unknown")
                    .to_string();
                report.tests.push(passed(
                    "Open connection",
                    format!(
                        "connected to {} as Run As account '{}'",
                        self.api.server, self.account
                    ),
                ));
                report.server_version = Some(version);
                reply
            }
            Err(e) => {
                let detail = match &e {
                    IpamError::Unauthorized { .. } => format!(
                        "Nautobot refused the token of Run As account '{}': {e} Create an API \
                         token in Nautobot (user menu > API Tokens) and store it as the account's password.",
                        self.account
                    ),
                    IpamError::Forbidden { .. } => format!(
                        "the token of Run As account '{}' may not read /api/status/: {e}",
                        self.account
                    ),
                    _ => e.to_string(),
                };
                report.tests.push(failed("Open connection", detail));
                for name in ["Capability discovery", "System info", "Permissions"] {
                    report
                        .tests
                        .push(failed(name, "not run: the connection failed".into()));
                }
                return report;
            }
        };

        // Capability discovery.
        let mut problems = Vec::new();
        let mut found = Vec::new();
        for (label, path) in [
            ("namespaces", NAMESPACES),
            ("prefixes", PREFIXES),
            ("IP address ranges", RANGES),
            ("custom fields", CUSTOM_FIELDS),
        ] {
            match self.api.get(path, &[("limit".into(), "1".into())]).await {
                Ok(reply) => found.push(format!(
                    "{label} ({})",
                    reply.body.get("count").and_then(Value::as_u64).unwrap_or(0)
                )),
                Err(e) => {
                    if label == "IP address ranges" && matches!(e, IpamError::NotFound { .. }) {
                        for (op, yes) in report.operations.iter_mut() {
                            if matches!(
                                op,
                                ProviderOperation::ReadRanges | ProviderOperation::WriteRanges
                            ) {
                                *yes = false;
                            }
                        }
                    }
                    problems.push(format!("{label}: {e}"));
                }
            }
        }
        let change_log = self
            .api
            .get(OBJECT_CHANGES, &[("limit".into(), "1".into())])
            .await
            .is_ok();
        if !change_log {
            for (op, yes) in report.operations.iter_mut() {
                if *op == ProviderOperation::ChangeFeed {
                    *yes = false;
                }
            }
        }
        if problems.is_empty() {
            report.tests.push(passed(
                "Capability discovery",
                format!(
                    "readable: {}; change log {}",
                    found.join(", "),
                    if change_log {
                        "readable (incremental reads)"
                    } else {
                        "not readable (every read is a full read; grant view on extras.objectchange)"
                    }
                ),
            ));
        } else {
            report
                .tests
                .push(failed("Capability discovery", problems.join("; ")));
        }

        // System info.
        match status.date {
            Some(server_time) => {
                let midpoint = sent_at + (received_at - sent_at) / 2;
                let skew = (server_time - midpoint).num_milliseconds();
                report.server_time = Some(server_time);
                report.skew_ms = Some(skew);
                let mut detail = format!(
                    "Nautobot {} (REST API {API_VERSION}), server time {}, clock skew {:+.1} s",
                    report.server_version.as_deref().unwrap_or("unknown"),
                    server_time.to_rfc3339(),
                    skew as f64 / 1000.0
                );
                if skew.abs() > SKEW_WARNING_MS {
                    detail.push_str(
                        "; warning: the clocks differ by more than 5 minutes, synchronise them (NTP)",
                    );
                }
                report.tests.push(passed("System info", detail));
            }
            None => report.tests.push(failed(
                "System info",
                "Nautobot's answer carried no Date header, so its clock cannot be read".into(),
            )),
        }

        // Permissions.
        let fix = "in Nautobot grant the token's user an object permission with add, change and \
                   delete on ipam.namespace, ipam.prefix and ipam.ipaddressrange (and view, add, \
                   change on extras.customfield for the first sync), and use a write-enabled token";
        match self.ensure_schema(true).await {
            Err(e) => report.tests.push(failed(
                "Permissions",
                format!(
                    "the token of Run As account '{}' cannot prepare the custom fields: {e} Fix: {fix}.",
                    self.account
                ),
            )),
            Ok(schema) => match self.write_probe(&schema).await {
                Ok(()) => report.tests.push(passed(
                    "Permissions",
                    "the token may add, change and delete namespaces, prefixes and IP address ranges"
                        .into(),
                )),
                Err((action, e)) => report.tests.push(failed(
                    "Permissions",
                    format!(
                        "the token of Run As account '{}' may not {action}: {e} Fix: {fix}.",
                        self.account
                    ),
                )),
            },
        }
        report
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
        let previous = since
            .and_then(CursorState::decode)
            .filter(|c| c.scope == scope_digest(scope));
        match previous {
            Some(state) => self.incremental_read(scope, state).await,
            None => Ok(SnapshotRead::Full(self.full_read(scope).await?)),
        }
    }

    async fn apply(&self, batch: &[IpamOp]) -> Result<Vec<OpOutcome>, IpamError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let schema = self.ensure_schema(true).await?;
        let mut outcomes: Vec<Option<OpOutcome>> = vec![None; batch.len()];
        let mut ids: HashMap<String, String> = HashMap::new();
        let mut failed_creates: HashSet<String> = HashSet::new();
        for run in runs(batch) {
            let mut ops = Vec::new();
            for i in run {
                let op = &batch[i];
                if references(op).iter().any(|r| failed_creates.contains(*r)) {
                    // Its parent was not created: the engine sends it again with the parent.
                    outcomes[i] = Some(OpOutcome::NotApplied);
                    if op.verb() == OpVerb::Create {
                        failed_creates.insert(op.target_id().to_string());
                    }
                    continue;
                }
                ops.push((i, translate(op, &ids)));
            }
            self.apply_run(&schema, &ops, &mut outcomes).await;
            for (i, _) in &ops {
                let op = &batch[*i];
                if op.verb() != OpVerb::Create {
                    continue;
                }
                match &outcomes[*i] {
                    Some(OpOutcome::Applied { id }) => {
                        ids.insert(op.target_id().to_string(), id.clone());
                    }
                    _ => {
                        failed_creates.insert(op.target_id().to_string());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn space(id: &str, kind: AddressSpaceKind, name: &str) -> AddressSpace {
        AddressSpace {
            id: id.into(),
            vmm_id: None,
            name: name.into(),
            kind,
            description: String::new(),
            vmm_logical_network: None,
            vm_network: None,
            provider_space: None,
            tenant: String::new(),
            owner: String::new(),
        }
    }

    #[test]
    fn messages_keep_nautobot_words_and_field() {
        let (field, text) =
            nautobot_message(&json!({"prefix": ["Enter a valid IPv4 or IPv6 network."]}));
        assert_eq!(field.as_deref(), Some("prefix"));
        assert!(text.contains("Enter a valid IPv4"));
        let (field, text) = nautobot_message(&json!({"detail": "Invalid token"}));
        assert_eq!(field, None);
        assert_eq!(text, "Invalid token");
        let (field, text) = nautobot_message(&json!([{}, {"__all__": ["overlaps"]}]));
        assert_eq!(field, None);
        assert_eq!(text, "object 2: __all__: overlaps");
    }

    #[test]
    fn statuses_map_to_errors() {
        let e = status_error(
            "nb",
            StatusCode::FORBIDDEN,
            &json!({"detail": "Invalid token"}),
        );
        assert!(matches!(e, IpamError::Unauthorized { .. }));
        let e = status_error(
            "nb",
            StatusCode::FORBIDDEN,
            &json!({"detail": "You do not have permission to perform this action."}),
        );
        assert!(
            matches!(e, IpamError::Forbidden { ref detail, .. } if detail.contains("ipam.prefix"))
        );
        let e = status_error("nb", StatusCode::BAD_REQUEST, &json!({"name": ["taken"]}));
        assert!(matches!(e, IpamError::Invalid { ref field, .. } if field == "name"));
        assert!(status_error("nb", StatusCode::BAD_GATEWAY, &Value::Null).is_transient());
        assert!(!status_error("nb", StatusCode::CONFLICT, &Value::Null).is_transient());
    }

    #[test]
    fn namespace_names_carry_the_kind() {
        let p = space("1", AddressSpaceKind::Provider, "Prod");
        let c = space("2", AddressSpaceKind::Customer, "Tenant A");
        assert_eq!(namespace_name(&p), "vmm-ln-Prod");
        assert_eq!(namespace_name(&c), "vmm-vmn-Tenant A");
        let raw = json!({"id": Uuid::new_v4().to_string(), "name": "vmm-vmn-Tenant A", "description": "d",
            "custom_fields": {"vmm_vm_network": "Tenant A", "vmm_id": null}});
        let s = space_from_json("nb", &raw).unwrap();
        assert_eq!(s.kind, AddressSpaceKind::Customer);
        assert_eq!(s.name, "Tenant A");
        assert_eq!(s.vm_network.as_deref(), Some("Tenant A"));
        assert!(is_address_space(&raw));
        assert!(!is_address_space(
            &json!({"name": "Global", "custom_fields": {}})
        ));
        assert!(!is_address_space(
            &json!({"name": "fabric-console-permission-check-1"})
        ));
    }

    #[test]
    fn subnet_round_trips_through_json() {
        let subnet = IpamSubnet {
            id: Uuid::new_v4().to_string(),
            vmm_id: Some(Uuid::new_v4()),
            address_space: Uuid::new_v4().to_string(),
            network: "10.1.2.0/24".parse().unwrap(),
            name: "site A".into(),
            network_type: "Provider".into(),
            vmm_logical_network: Some("Prod".into()),
            network_site: Some("Seattle".into()),
            vlan: 12,
            secondary_vlan: Some(300),
            owner: "ops".into(),
            custom_fields: BTreeMap::new(),
        };
        let mut body = subnet_body(&subnet, "console", "status-id");
        body["id"] = json!(subnet.id);
        assert_eq!(subnet_from_json("nb", &body).unwrap(), subnet);
    }

    #[test]
    fn bad_vlan_names_the_prefix_and_field() {
        let raw = json!({"id": Uuid::new_v4().to_string(), "prefix": "10.0.0.0/24", "display": "10.0.0.0/24",
            "namespace": {"id": "n"}, "custom_fields": {"vmm_vlan": 5000}});
        let e = subnet_from_json("nb", &raw).unwrap_err().to_string();
        assert!(e.contains("10.0.0.0/24") && e.contains("vmm_vlan"), "{e}");
    }

    #[test]
    fn range_round_trips_through_json() {
        let range = IpRange {
            id: Uuid::new_v4().to_string(),
            vmm_id: Some(Uuid::new_v4()),
            subnet: Uuid::new_v4().to_string(),
            name: "pool".into(),
            description: "d".into(),
            start: "10.0.0.10".parse().unwrap(),
            end: "10.0.0.50".parse().unwrap(),
            reserved: ["10.0.0.11".parse().unwrap()].into(),
            vips: ["10.0.0.12".parse().unwrap()].into(),
            gateways: vec![Gateway::Address {
                address: "10.0.0.1".parse().unwrap(),
                metric: 5,
            }],
            dns_servers: vec!["10.0.0.2".parse().unwrap()],
            dns_suffix: "corp.example".into(),
            dns_search_suffixes: vec!["example".into()],
            wins_servers: vec![],
            netbios_enabled: true,
            managed_by_service: "VMM".into(),
            service_instance: "svc".into(),
        };
        let mut body = range_body(&range, "console", "s");
        body["id"] = json!(range.id);
        body["start_address"] = json!("10.0.0.10/24");
        assert_eq!(range_from_json("nb", &body).unwrap(), range);
    }

    #[test]
    fn cursor_round_trips_and_rejects_foreign_strings() {
        let state = CursorState {
            read_at: Utc::now(),
            full_at: Utc::now(),
            reads_since_full: 3,
            scope: scope_digest(&SnapshotScope::All),
            spaces: ["a".to_string()].into(),
        };
        assert_eq!(CursorState::decode(&state.encode()), Some(state));
        assert_eq!(CursorState::decode(&Cursor("42".into())), None);
    }

    #[test]
    fn runs_split_by_kind_verb_and_dependency() {
        let p = space("p", AddressSpaceKind::Provider, "Prod");
        let mut c = space("c", AddressSpaceKind::Customer, "T");
        c.provider_space = Some("p".into());
        let batch = vec![
            IpamOp::CreateSpace(p.clone()),
            IpamOp::CreateSpace(c),
            IpamOp::DeleteSubnet("x".into()),
            IpamOp::DeleteSubnet("y".into()),
            IpamOp::UpdateSpace(p),
        ];
        assert_eq!(runs(&batch), vec![0..1, 1..2, 2..4, 4..5]);
    }

    #[test]
    fn translate_replaces_proposed_ids() {
        let ids: HashMap<String, String> = [("p".to_string(), "real".to_string())].into();
        let op = IpamOp::CreateSubnet(IpamSubnet {
            id: "s".into(),
            vmm_id: None,
            address_space: "p".into(),
            network: "10.0.0.0/24".parse().unwrap(),
            name: String::new(),
            network_type: String::new(),
            vmm_logical_network: None,
            network_site: None,
            vlan: 0,
            secondary_vlan: None,
            owner: String::new(),
            custom_fields: BTreeMap::new(),
        });
        match translate(&op, &ids) {
            IpamOp::CreateSubnet(s) => assert_eq!(s.address_space, "real"),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            translate(&IpamOp::DeleteSpace("p".into()), &ids),
            IpamOp::DeleteSpace("real".into())
        );
    }

    #[test]
    fn scope_keeps_linked_and_broken_link_spaces() {
        let mut prod = space("1", AddressSpaceKind::Provider, "Prod");
        prod.vmm_logical_network = Some("Prod".into());
        let broken = space("2", AddressSpaceKind::Provider, "Dev");
        let other = space("3", AddressSpaceKind::Provider, "Lab");
        let mut tenant = space("4", AddressSpaceKind::Customer, "T");
        tenant.provider_space = Some("1".into());
        let scope = SnapshotScope::LogicalNetworks(["Prod".to_string(), "Dev".to_string()].into());
        let kept: Vec<String> = spaces_in_scope(vec![prod, broken, other, tenant], &scope)
            .into_iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(kept, vec!["1", "2", "4"]);
    }

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
