//! The HTTP/JSON API under `/api/v1`.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::auth::{self, Role};
use super::db::{self, Caller, Database, MAX_BATCH_OPS, Scope, rfc3339};
use super::error::ApiError;
use crate::ipam::model::{AddressSpace, IpRange, IpamId, IpamKind, IpamOp, IpamSubnet};

pub const PRODUCT: &str = "Fabric Console IPAM Server";
pub const API_VERSION: u32 = 1;
/// Largest request body; bigger ones get 413.
pub const BODY_LIMIT: usize = 8 * 1024 * 1024;
pub const MAX_LIST_LIMIT: i64 = 1000;
pub const MAX_FEED_LIMIT: i64 = 5000;
/// The longest a `changes?wait=` request is held open, in seconds (below clients' read timeouts).
pub const MAX_FEED_WAIT_SECS: i64 = 25;
/// Waiting `changes` requests one token may hold open at once, and the server in all.
pub const FEED_WAITERS_PER_TOKEN: usize = 4;
pub const FEED_WAITERS: usize = 256;
/// What the server implements, as listed by `GET status` (capability discovery).
pub const CAPABILITIES: [&str; 9] = [
    "read_address_spaces",
    "write_address_spaces",
    "read_subnets",
    "write_subnets",
    "read_ranges",
    "write_ranges",
    "change_feed",
    "server_time",
    "customer_address_spaces",
];

pub struct AppState {
    pub db: Arc<Mutex<Database>>,
    pub database_id: String,
    pub clock_offset: chrono::Duration,
    pub requests: AtomicU64,
    /// How long a request's body may take to arrive once its headers are in.
    pub body_deadline: std::time::Duration,
    tokens: RwLock<HashMap<String, Role>>,
    /// Requests with unknown tokens per client address, in the current window.
    failures: Mutex<HashMap<std::net::IpAddr, (u32, std::time::Instant)>>,
    /// Counts writes; `changes?wait=` requests wait for it to move.
    feed: tokio::sync::watch::Sender<u64>,
    /// Waiting `changes` requests per token id.
    waiters: Mutex<HashMap<String, usize>>,
    /// Requests, latency, objects and cursor for `GET /metrics`.
    pub metrics: super::metrics::Metrics,
}

/// A waiting `changes` request's place; given back when the request ends.
struct FeedWaiter {
    state: Arc<AppState>,
    token: String,
}

impl Drop for FeedWaiter {
    fn drop(&mut self) {
        let mut w = self.state.waiters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = w.get_mut(&self.token) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                w.remove(&self.token);
            }
        }
    }
}

/// Requests with an unknown token one client address may make per window before it is told
/// to wait (429): guessing tokens is slowed down, and the database is spared.
pub const AUTH_FAILURES_ALLOWED: u32 = 20;
pub const AUTH_FAILURE_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

impl AppState {
    pub fn new(db: Database, clock_offset: chrono::Duration) -> Self {
        AppState {
            database_id: db.database_id().to_string(),
            db: Arc::new(Mutex::new(db)),
            clock_offset,
            requests: AtomicU64::new(0),
            body_deadline: super::guard::RequestDeadlines::default().body,
            tokens: RwLock::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            feed: tokio::sync::watch::Sender::new(0),
            waiters: Mutex::new(HashMap::new()),
            metrics: super::metrics::Metrics::default(),
        }
    }

    /// Wakes every waiting `changes` request: something may have been written.
    pub fn notify_writes(&self) {
        self.feed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A place for one more waiting `changes` request of `token`, or a 429 naming the limit.
    fn enter_feed_wait(self: &Arc<Self>, token: &str) -> Result<FeedWaiter, ApiError> {
        let mut w = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        let total: usize = w.values().sum();
        let mine = w.get(token).copied().unwrap_or(0);
        if mine >= FEED_WAITERS_PER_TOKEN || total >= FEED_WAITERS {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "too many waiting changes requests (at most {FEED_WAITERS_PER_TOKEN} per token, {FEED_WAITERS} in all); ask again without wait, or later"
                ),
                Some("wait"),
            ));
        }
        *w.entry(token.to_string()).or_insert(0) += 1;
        Ok(FeedWaiter {
            state: self.clone(),
            token: token.to_string(),
        })
    }

    /// Forgets every cached token role: the next request of each token is checked again.
    pub fn forget_cached_tokens(&self) {
        if let Ok(mut cache) = self.tokens.write() {
            cache.clear();
        }
    }

    /// Revokes a token at once (cache included); its role, or `None` for an unknown id.
    pub fn revoke_token(&self, id: &str) -> Result<Option<Role>, ApiError> {
        let role = self.lock_db().revoke_token(id)?;
        self.forget_cached_tokens();
        Ok(role)
    }

    /// How long `client` must wait before another unknown token is looked up, if at all.
    fn throttled(&self, client: std::net::IpAddr) -> Option<std::time::Duration> {
        let failures = self.failures.lock().ok()?;
        let (count, since) = failures.get(&client)?;
        let elapsed = since.elapsed();
        (*count >= AUTH_FAILURES_ALLOWED && elapsed < AUTH_FAILURE_WINDOW)
            .then(|| AUTH_FAILURE_WINDOW - elapsed)
    }

    fn count_failure(&self, client: std::net::IpAddr) {
        if let Ok(mut failures) = self.failures.lock() {
            // Bounded: a flood from many addresses cannot grow the map without limit.
            if failures.len() > 10_000 {
                failures.retain(|_, (_, since)| since.elapsed() < AUTH_FAILURE_WINDOW);
            }
            let entry = failures
                .entry(client)
                .or_insert((0, std::time::Instant::now()));
            if entry.1.elapsed() >= AUTH_FAILURE_WINDOW {
                *entry = (0, std::time::Instant::now());
            }
            entry.0 += 1;
        }
    }

    /// The server's clock, shifted by the configured offset.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.clock_offset
    }

    pub fn lock_db(&self) -> std::sync::MutexGuard<'_, Database> {
        // A panic while holding the lock rolled its transaction back, so the data is consistent.
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn issue_token(&self, role: Role) -> Result<String, ApiError> {
        let token = auth::new_token();
        let hash = auth::token_hash(&token);
        self.lock_db().store_token_hash(&hash, role)?;
        if let Ok(mut cache) = self.tokens.write() {
            cache.insert(hash, role);
        }
        Ok(token)
    }
}

async fn with_db<T: Send + 'static>(
    state: &Arc<AppState>,
    f: impl FnOnce(&mut Database) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let mut db = state.lock_db();
        f(&mut db)
    })
    .await
    .map_err(|e| ApiError::internal(format!("request worker failed: {e}")))?
}

/// `with_db` for a request that writes: waiting `changes` requests are woken afterwards.
async fn with_db_write<T: Send + 'static>(
    state: &Arc<AppState>,
    f: impl FnOnce(&mut Database) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let result = with_db(state, f).await;
    state.notify_writes();
    result
}

pub fn router(state: Arc<AppState>) -> Router {
    let protected = Router::new()
        .route("/whoami", get(whoami))
        .route("/audit", get(audit));
    let protected = resource_routes::<AddressSpace>(protected, "/address-spaces");
    let protected = resource_routes::<IpamSubnet>(protected, "/subnets");
    let protected = resource_routes::<IpRange>(protected, "/ranges")
        .route("/ranges/{id}/usage", get(get_usage).put(put_usage))
        .route("/usage", get(all_usage).put(put_all_usage))
        .route("/assignments", get(all_assignments))
        .route(
            "/ranges/{id}/assignments",
            get(range_assignments).post(assign),
        )
        .route(
            "/ranges/{id}/assignments/{address}",
            axum::routing::delete(unassign),
        )
        .route("/batch", axum::routing::post(batch))
        .route("/snapshot", get(snapshot))
        .route("/changes", get(changes))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    let api = Router::new()
        .route("/status", get(status))
        .route("/time", get(time))
        .merge(protected);
    let scraped = Router::new()
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .nest("/api/v1", api)
        .merge(scraped)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(state.clone(), body_deadline))
        .layer(middleware::from_fn_with_state(state.clone(), common))
        .with_state(state)
}

/// A resource's routes: list and create at `path`, one object at `path/{id}`.
fn resource_routes<R: Resource>(
    router: Router<Arc<AppState>>,
    path: &str,
) -> Router<Arc<AppState>> {
    router.route(path, get(list::<R>).post(create::<R>)).route(
        &format!("{path}/{{id}}"),
        get(get_one::<R>)
            .put(replace::<R>)
            .patch(patch::<R>)
            .delete(delete::<R>),
    )
}

/// Every range's usage as the console reported it: `{"ranges": {"<range id>": usage}}`.
async fn all_usage(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let all = with_db(&state, |db| db.all_usage()).await?;
    let ranges: serde_json::Map<String, Value> = all
        .into_iter()
        .filter_map(|(id, u)| serde_json::to_value(u).ok().map(|v| (id, v)))
        .collect();
    Ok(Json(serde_json::json!({ "ranges": ranges })))
}

/// Many ranges' usage reports in one request, `{"ranges": {"<range id>": usage}}`: all stored, or
/// none when one is wrong (the error names its range).
async fn put_all_usage(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Reports {
        ranges: std::collections::BTreeMap<String, crate::ipam::model::RangeUsage>,
    }
    let map = body_object(body)?;
    let reports: Reports = from_value(Value::Object(map))?;
    let reports: Vec<_> = reports.ranges.into_iter().collect();
    let n = reports.len();
    let updated = with_db(&state, move |db| db.put_usages(&reports, &caller)).await?;
    Ok(Json(serde_json::json!({ "updated": updated, "ranges": n })))
}

/// The usage the console reported for a range, with when it did.
async fn get_usage(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let found = {
        let id = id.clone();
        with_db(&state, move |db| {
            if db.get_range(&id)?.is_none() {
                return Err(missing(IpamKind::Range, &id));
            }
            db.get_usage(&id)
        })
        .await?
    };
    match found {
        Some((usage, updated)) => {
            let mut v = serde_json::to_value(usage)
                .map_err(|e| ApiError::internal(format!("usage cannot be answered: {e}")))?;
            if let Value::Object(m) = &mut v {
                m.insert("updated".into(), Value::String(updated));
                m.insert("source".into(), Value::String("VMM".into()));
            }
            Ok(Json(v))
        }
        None => Err(ApiError::not_found(
            "usage",
            format!("The console has not reported the usage of range {id} yet."),
        )),
    }
}

/// The console's report of a range's usage: counts and granted addresses, replacing the last.
/// Not part of the change feed (it is the console's own report, not an IPAM edit).
async fn put_usage(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let map = body_object(body)?;
    let usage: crate::ipam::model::RangeUsage = from_value(Value::Object(map))?;
    let updated = with_db(&state, move |db| db.put_usage(&id, &usage, &caller)).await?;
    Ok(Json(serde_json::json!({ "updated": updated })))
}

/// Every range's addresses assigned on the IPAM side: `{"ranges": {"<range id>": [address]}}`.
async fn all_assignments(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let all = with_db(&state, |db| db.assignments(None)).await?;
    let mut ranges: serde_json::Map<String, Value> = serde_json::Map::new();
    for (range, a) in all {
        let entry = ranges
            .entry(range)
            .or_insert_with(|| Value::Array(Vec::new()));
        if let (Value::Array(list), Ok(v)) = (entry, serde_json::to_value(a)) {
            list.push(v);
        }
    }
    Ok(Json(json!({ "ranges": ranges })))
}

/// The addresses of one range assigned on the IPAM side.
async fn range_assignments(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let list = with_db(&state, move |db| {
        if db.get_range(&id)?.is_none() {
            return Err(missing(IpamKind::Range, &id));
        }
        db.assignments(Some(&id))
    })
    .await?;
    let results: Vec<Value> = list
        .into_iter()
        .filter_map(|(_, a)| serde_json::to_value(a).ok())
        .collect();
    Ok(Json(json!({ "count": results.len(), "results": results })))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignBody {
    address: std::net::IpAddr,
    holder: String,
}

/// Assigns an address of a range on the IPAM side (`{"address", "holder"}`), as an IPAM
/// administrator does for a device the console does not manage.
async fn assign(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let map = body_object(body)?;
    let body: AssignBody = from_value(Value::Object(map))?;
    let made = with_db_write(&state, move |db| {
        db.assign(&id, body.address, &body.holder, &caller)
    })
    .await?;
    let v = serde_json::to_value(made)
        .map_err(|e| ApiError::internal(format!("assignment cannot be answered: {e}")))?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// Releases an address assigned on the IPAM side.
async fn unassign(
    State(state): State<Arc<AppState>>,
    Path((id, address)): Path<(String, String)>,
    Extension(caller): Extension<Caller>,
) -> Result<StatusCode, ApiError> {
    let address: std::net::IpAddr = address.parse().map_err(|_| {
        ApiError::invalid(
            "address",
            format!("address: {address:?} is not an IP address."),
        )
    })?;
    let released = with_db_write(&state, move |db| db.unassign(&id, address, &caller)).await?;
    if released {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(
            "address",
            format!("address: {address} is not assigned on the IPAM side in this range."),
        ))
    }
}

async fn not_found(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "no endpoint {method} {}; the API lives under /api/v1",
            uri.path()
        ),
        None,
    )
}

/// Counts requests, stamps the server clock into `Date`, and gives every error the JSON shape.
async fn common(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    state.requests.fetch_add(1, Ordering::Relaxed);
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let started = std::time::Instant::now();
    let mut resp = next.run(req).await;
    let status = resp.status();
    state
        .metrics
        .observe(method.as_str(), &path, status.as_u16(), started.elapsed());
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if (status.is_client_error() || status.is_server_error()) && !is_json {
        let (parts, body) = resp.into_parts();
        let text = axum::body::to_bytes(body, 64 * 1024)
            .await
            .map(|b| String::from_utf8_lossy(&b).trim().to_string())
            .unwrap_or_default();
        let reason = if status == StatusCode::METHOD_NOT_ALLOWED {
            format!("method {method} is not allowed on this endpoint")
        } else if text.is_empty() {
            status
                .canonical_reason()
                .unwrap_or("request failed")
                .to_string()
        } else {
            text
        };
        let mut rebuilt = ApiError::new(status, reason, None).into_response();
        for (k, v) in parts.headers.iter() {
            if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
                rebuilt.headers_mut().insert(k.clone(), v.clone());
            }
        }
        resp = rebuilt;
    }
    let date = httpdate::fmt_http_date(std::time::SystemTime::from(state.now()));
    if let Ok(v) = HeaderValue::from_str(&date) {
        resp.headers_mut().insert(header::DATE, v);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Answers 408 when a request's body has not arrived within the body deadline: a client that
/// stalls or dribbles its body cannot hold a request (and its database work) forever.
async fn body_deadline(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    use axum::body::{Body, HttpBody};
    use futures::StreamExt;
    if req.body().is_end_stream() {
        return next.run(req).await;
    }
    let limit = state.body_deadline;
    let deadline = tokio::time::Instant::now() + limit;
    let expired = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = expired.clone();
    let req = req.map(|body| {
        let data = body.into_data_stream();
        Body::from_stream(futures::stream::unfold(Some(data), move |data| {
            let flag = flag.clone();
            async move {
                let mut data = data?;
                match tokio::time::timeout_at(deadline, data.next()).await {
                    Ok(Some(chunk)) => Some((chunk, Some(data))),
                    Ok(None) => None,
                    Err(_) => {
                        flag.store(true, Ordering::Relaxed);
                        let e = std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "the request body did not arrive in time",
                        );
                        Some((Err(axum::Error::new(e)), None))
                    }
                }
            }
        }))
    });
    let resp = next.run(req).await;
    if !expired.load(Ordering::Relaxed) {
        return resp;
    }
    let mut resp = ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        format!(
            "the request body did not arrive within {} s; send the whole body at once, or split the work into smaller requests",
            limit.as_secs_f64()
        ),
        None,
    )
    .into_response();
    // The rest of the body is never read: this connection cannot carry another request.
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

async fn require_token(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(token) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(auth::bearer)
    else {
        return unauthorized("send the header Authorization: Bearer <token>");
    };
    let hash = auth::token_hash(token);
    let token_id = db::token_id(&hash);
    let cached = state.tokens.read().ok().and_then(|c| c.get(&hash).copied());
    let client = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let role = match cached {
        Some(r) => Some(r),
        None => {
            if let Some(wait) = client.and_then(|c| state.throttled(c)) {
                let mut resp = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "too many requests with unknown tokens from this address; wait {} s",
                        wait.as_secs().max(1)
                    ),
                    None,
                )
                .into_response();
                if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
                    resp.headers_mut().insert(header::RETRY_AFTER, v);
                }
                return resp;
            }
            let h = hash.clone();
            match with_db(&state, move |db| db.role_for_token_hash(&h)).await {
                Ok(Some(r)) => {
                    if let Ok(mut c) = state.tokens.write() {
                        c.insert(hash, r);
                    }
                    Some(r)
                }
                Ok(None) => None,
                Err(e) => return e.into_response(),
            }
        }
    };
    let Some(role) = role else {
        if let Some(c) = client {
            state.count_failure(c);
        }
        return unauthorized(
            "the token is not known to this server; issue one with `fabric-console ipam-server token`",
        );
    };
    let reads = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !reads && !role.can_write() {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "the token's role {role} may only read; {} needs the asm-administrator role (IPAM ASM Administrators)",
                req.method()
            ),
            None,
        )
        .into_response();
    }
    // Who asks, for the audit trail of writes: the token's public id, never the token.
    let caller = Caller {
        token_id,
        role,
        method: req.method().to_string(),
        at: state.now(),
    };
    req.extensions_mut().insert(role);
    req.extensions_mut().insert(caller);
    next.run(req).await
}

fn unauthorized(reason: &str) -> Response {
    let mut resp = ApiError::new(StatusCode::UNAUTHORIZED, reason, None).into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"ipam\""),
    );
    resp
}

async fn status(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({
        "product": PRODUCT,
        "version": env!("CARGO_PKG_VERSION"),
        "api_version": API_VERSION,
        "server_time": rfc3339(state.now()),
        "database_id": state.database_id,
        "capabilities": CAPABILITIES,
        "max_page": MAX_LIST_LIMIT,
        "max_batch": MAX_BATCH_OPS,
    }))
}

/// `GET /metrics`: the Prometheus text exposition.
async fn metrics(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let (objects, cursor) = with_db(&state, |db| Ok((db.object_counts()?, db.last_seq()?))).await?;
    let text = state.metrics.render(&objects, cursor);
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

async fn time(State(state): State<Arc<AppState>>) -> Json<Value> {
    let now = state.now();
    Json(json!({ "server_time": rfc3339(now), "unix_ms": now.timestamp_millis() }))
}

async fn whoami(Extension(role): Extension<Role>) -> Json<Value> {
    Json(json!({ "role": role }))
}

/// `GET audit?limit=N&since=RFC3339`: the newest audit rows, newest first (administrators only).
async fn audit(
    State(state): State<Arc<AppState>>,
    Extension(role): Extension<Role>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    if role != Role::AsmAdministrator {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "the token's role {role} may not read the audit log; it needs the asm-administrator role (IPAM ASM Administrators)"
            ),
            None,
        ));
    }
    let pairs = query_pairs(q)?;
    let limit = query_i64(&pairs, "limit", 100, 1, MAX_LIST_LIMIT)?;
    let since = query_str(&pairs, "since")
        .map(|s| {
            super::parse_utc_time(s)
                .map_err(|e| ApiError::bad_request(Some("since"), format!("since: {e}")))
        })
        .transpose()?;
    let items = with_db(&state, move |db| db.audit(limit, since)).await?;
    Ok(Json(json!({ "items": items, "limit": limit })))
}

// ---- request parsing ------------------------------------------------------------------

fn query_pairs(raw: Option<String>) -> Result<Vec<(String, String)>, ApiError> {
    match raw {
        None => Ok(Vec::new()),
        Some(q) => serde_urlencoded::from_str(&q)
            .map_err(|e| ApiError::bad_request(None, format!("query string cannot be read: {e}"))),
    }
}

fn query_i64(
    pairs: &[(String, String)],
    name: &str,
    default: i64,
    min: i64,
    max: i64,
) -> Result<i64, ApiError> {
    match pairs.iter().rev().find(|(k, _)| k == name) {
        None => Ok(default),
        Some((_, v)) => match v.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::bad_request(
                Some(name),
                format!("{name} must be a whole number from {min} to {max}, not {v:?}"),
            )),
        },
    }
}

fn query_str<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `scope=logical_networks&logical_network=A&logical_network=B`, or everything.
fn query_scope(pairs: &[(String, String)]) -> Result<Scope, ApiError> {
    let names: BTreeSet<String> = pairs
        .iter()
        .filter(|(k, _)| k == "logical_network")
        .map(|(_, v)| v.clone())
        .collect();
    match query_str(pairs, "scope") {
        None | Some("all") if names.is_empty() => Ok(None),
        None | Some("logical_networks") => Ok(Some(names)),
        Some(other) => Err(ApiError::bad_request(
            Some("scope"),
            format!("scope must be all or logical_networks, not {other:?}"),
        )),
    }
}

fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                status,
                format!(
                    "request body is larger than {} MB; send fewer objects per request",
                    BODY_LIMIT / (1024 * 1024)
                ),
                None,
            )
        } else {
            ApiError::new(
                status,
                format!("request body cannot be read: {}", rejection.body_text()),
                None,
            )
        }
    })
}

fn parse_value(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            None,
            "request body is empty; send a JSON object",
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(None, format!("request body is not valid JSON: {e}")))
}

/// Deserializes with the path of the offending field in the error (unknown fields included).
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.inner().to_string();
        let unknown = inner
            .strip_prefix("unknown field `")
            .and_then(|r| r.split_once('`'))
            .map(|(f, _)| f.to_string());
        // The path already ends in an unknown field's name; the message is the fallback.
        let field = match (path.as_str(), unknown) {
            (".", Some(f)) => f,
            (".", None) => String::new(),
            (p, _) => p.to_string(),
        };
        let field = (!field.is_empty()).then_some(field);
        let message = match &field {
            Some(f) => format!("field {f}: {inner}"),
            None => inner,
        };
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message, field.as_deref())
    })
}

/// The request body as a JSON object.
fn body_object(
    body: Result<Bytes, BytesRejection>,
) -> Result<serde_json::Map<String, Value>, ApiError> {
    object(parse_value(&body_bytes(body)?)?)
}

/// The request body as a JSON object for the object `id` of the path (see [`set_id`]).
fn body_object_for(
    body: Result<Bytes, BytesRejection>,
    id: &str,
) -> Result<serde_json::Map<String, Value>, ApiError> {
    let mut map = body_object(body)?;
    set_id(&mut map, id)?;
    Ok(map)
}

fn object(value: Value) -> Result<serde_json::Map<String, Value>, ApiError> {
    match value {
        Value::Object(m) => Ok(m),
        other => Err(ApiError::invalid(
            "body",
            format!(
                "request body must be a JSON object, not {}",
                json_type(&other)
            ),
        )),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The id in a body must be a string equal to the path's id when both are given.
fn set_id(map: &mut serde_json::Map<String, Value>, id: &str) -> Result<(), ApiError> {
    match map.get("id") {
        None | Some(Value::Null) => {
            map.insert("id".into(), Value::String(id.to_string()));
            Ok(())
        }
        Some(Value::String(s)) if s == id => Ok(()),
        Some(Value::String(s)) => Err(ApiError::invalid(
            "id",
            format!("body id {s} differs from the id {id} in the path; ids cannot be changed"),
        )),
        Some(other) => Err(ApiError::invalid(
            "id",
            format!("id must be a string, not {}", json_type(other)),
        )),
    }
}

// ---- resources ------------------------------------------------------------------------

pub trait Resource: Serialize + DeserializeOwned + Send + Sync + 'static {
    const KIND: IpamKind;
    /// The query parameter that filters a list by the parent object.
    const PARENT: &'static str;
    fn create(self) -> IpamOp;
    fn update(self) -> IpamOp;
    fn delete(id: IpamId) -> IpamOp;
    fn load(db: &Database, id: &str) -> Result<Option<Self>, ApiError>;
}

/// A `Resource` impl: its kind, parent filter, the three ops that carry it and its loader.
macro_rules! resource {
    ($t:ty => $kind:ident, $parent:literal, [$create:ident, $update:ident, $delete:ident], $get:ident) => {
        impl Resource for $t {
            const KIND: IpamKind = IpamKind::$kind;
            const PARENT: &'static str = $parent;
            fn create(self) -> IpamOp {
                IpamOp::$create(self)
            }
            fn update(self) -> IpamOp {
                IpamOp::$update(self)
            }
            fn delete(id: IpamId) -> IpamOp {
                IpamOp::$delete(id)
            }
            fn load(db: &Database, id: &str) -> Result<Option<Self>, ApiError> {
                db.$get(id)
            }
        }
    };
}

resource!(AddressSpace => AddressSpace, "provider_space", [CreateSpace, UpdateSpace, DeleteSpace], get_space);
resource!(IpamSubnet => Subnet, "address_space", [CreateSubnet, UpdateSubnet, DeleteSubnet], get_subnet);
resource!(IpRange => Range, "subnet", [CreateRange, UpdateRange, DeleteRange], get_range);

fn missing(kind: IpamKind, id: &str) -> ApiError {
    ApiError::not_found("id", format!("{} {id} does not exist", kind.label()))
}

async fn list<R: Resource>(
    State(state): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
) -> Result<Json<db::Page<R>>, ApiError> {
    let pairs = query_pairs(q)?;
    let limit = query_i64(&pairs, "limit", 100, 1, MAX_LIST_LIMIT)?;
    let offset = query_i64(&pairs, "offset", 0, 0, i64::MAX)?;
    let parent = query_str(&pairs, R::PARENT).map(str::to_string);
    let page = with_db(&state, move |db| {
        db.list::<R>(R::KIND, parent.as_deref(), limit, offset)
    })
    .await?;
    Ok(Json(page))
}

async fn get_one<R: Resource>(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<R>, ApiError> {
    let found = {
        let id = id.clone();
        with_db(&state, move |db| R::load(db, &id)).await?
    };
    found.map(Json).ok_or_else(|| missing(R::KIND, &id))
}

/// Applies one operation and answers the object as stored.
async fn write_one<R: Resource>(
    state: &Arc<AppState>,
    op: IpamOp,
    caller: Caller,
) -> Result<R, ApiError> {
    with_db_write(state, move |db| apply_and_load(db, op, &caller)).await
}

/// Applies one operation and reads back the object it wrote.
fn apply_and_load<R: Resource>(
    db: &mut Database,
    op: IpamOp,
    caller: &Caller,
) -> Result<R, ApiError> {
    let (id, _) = db.apply_one(op, caller)?;
    R::load(db, id.as_str())?.ok_or_else(|| missing(R::KIND, id.as_str()))
}

async fn create<R: Resource>(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let mut map = body_object(body)?;
    if matches!(map.get("id"), None | Some(Value::Null)) {
        map.insert("id".into(), Value::String(uuid::Uuid::new_v4().to_string()));
    }
    let resource: R = from_value(Value::Object(map))?;
    let stored: R = write_one(&state, resource.create(), caller).await?;
    Ok((StatusCode::CREATED, Json(stored)).into_response())
}

async fn replace<R: Resource>(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<R>, ApiError> {
    let resource: R = from_value(Value::Object(body_object_for(body, &id)?))?;
    Ok(Json(write_one(&state, resource.update(), caller).await?))
}

async fn patch<R: Resource>(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<R>, ApiError> {
    let changes = body_object_for(body, &id)?;
    let result = with_db_write(&state, move |db| {
        let current = R::load(db, id.as_str())?.ok_or_else(|| missing(R::KIND, id.as_str()))?;
        let mut merged = match serde_json::to_value(&current) {
            Ok(Value::Object(m)) => m,
            _ => return Err(ApiError::internal("stored object cannot be merged")),
        };
        for (k, v) in changes {
            merged.insert(k, v);
        }
        let resource: R = from_value(Value::Object(merged))?;
        apply_and_load(db, resource.update(), &caller)
    })
    .await?;
    Ok(Json(result))
}

async fn delete<R: Resource>(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    with_db_write(&state, move |db| {
        db.apply_one(R::delete(id.into()), &caller)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn batch(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let value = parse_value(&body_bytes(body)?)?;
    let ops_value = match value {
        Value::Array(_) => value,
        Value::Object(mut m) => {
            if let Some(extra) = m.keys().find(|k| k.as_str() != "ops") {
                return Err(ApiError::invalid(
                    extra,
                    format!("unknown field {extra}; a batch is {{\"ops\": [...]}}"),
                ));
            }
            m.remove("ops")
                .ok_or_else(|| ApiError::invalid("ops", "a batch needs an ops list"))?
        }
        other => {
            return Err(ApiError::invalid(
                "ops",
                format!("a batch is {{\"ops\": [...]}}, not {}", json_type(&other)),
            ));
        }
    };
    if let Value::Array(a) = &ops_value
        && a.len() > MAX_BATCH_OPS
    {
        return Err(ApiError::invalid(
            "ops",
            format!(
                "a batch has at most {MAX_BATCH_OPS} operations, this one has {}; split it",
                a.len()
            ),
        ));
    }
    let Value::Array(items) = ops_value else {
        return Err(ApiError::invalid(
            "ops",
            format!("ops must be a list, not {}", json_type(&ops_value)),
        ));
    };
    let ops = items
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            parse_op(v).map_err(|mut e| {
                let field = match e.field.as_deref() {
                    Some(f) => format!("ops[{i}].{f}"),
                    None => format!("ops[{i}]"),
                };
                e.error = format!("operation {i}: {}", e.error);
                e.field = Some(field);
                e
            })
        })
        .collect::<Result<Vec<IpamOp>, ApiError>>()?;
    let outcome = with_db_write(&state, move |db| db.apply_batch(&ops, &caller)).await?;
    let (status, error) = match &outcome.error {
        None => (StatusCode::OK, None),
        Some((index, e)) => (e.status_code(), Some((*index, e.clone()))),
    };
    let mut body = json!({
        "applied": outcome.applied,
        "results": outcome.results,
        "cursor": outcome.cursor,
    });
    if let (Some((index, e)), Value::Object(m)) = (error, &mut body) {
        m.insert("index".into(), json!(index));
        m.insert(
            "error".into(),
            json!(format!("operation {index} failed: {}", e.error)),
        );
        if let Some(f) = e.field {
            m.insert("field".into(), json!(f));
        }
    }
    Ok((status, Json(body)).into_response())
}

/// One `{"op": "create_subnet", "object": {...}}`, parsed field by field so errors name the field
/// (serde's tagged enums lose the path).
fn parse_op(value: Value) -> Result<IpamOp, ApiError> {
    let mut m = match value {
        Value::Object(m) => m,
        other => {
            return Err(ApiError::invalid(
                "op",
                format!(
                    "an operation is {{\"op\": ..., \"object\": ...}}, not {}",
                    json_type(&other)
                ),
            ));
        }
    };
    if let Some(extra) = m.keys().find(|k| !matches!(k.as_str(), "op" | "object")) {
        return Err(ApiError::invalid(
            extra,
            format!("unknown field {extra}; an operation has op and object"),
        ));
    }
    let op = match m.remove("op") {
        Some(Value::String(s)) => s,
        _ => {
            return Err(ApiError::invalid(
                "op",
                "op must be a string such as create_subnet",
            ));
        }
    };
    let object = m
        .remove("object")
        .ok_or_else(|| ApiError::invalid("object", "the operation has no object"))?;
    let nested = |e: ApiError| ApiError {
        field: Some(match e.field {
            Some(f) => format!("object.{f}"),
            None => "object".to_string(),
        }),
        ..e
    };
    let id = |v: Value| match v {
        Value::String(s) => Ok(IpamId::from(s)),
        other => Err(ApiError::invalid(
            "object",
            format!(
                "a delete names the id as a string, not {}",
                json_type(&other)
            ),
        )),
    };
    Ok(match op.as_str() {
        "create_space" => IpamOp::CreateSpace(from_value(object).map_err(nested)?),
        "update_space" => IpamOp::UpdateSpace(from_value(object).map_err(nested)?),
        "delete_space" => IpamOp::DeleteSpace(id(object)?),
        "create_subnet" => IpamOp::CreateSubnet(from_value(object).map_err(nested)?),
        "update_subnet" => IpamOp::UpdateSubnet(from_value(object).map_err(nested)?),
        "delete_subnet" => IpamOp::DeleteSubnet(id(object)?),
        "create_range" => IpamOp::CreateRange(from_value(object).map_err(nested)?),
        "update_range" => IpamOp::UpdateRange(from_value(object).map_err(nested)?),
        "delete_range" => IpamOp::DeleteRange(id(object)?),
        other => {
            return Err(ApiError::invalid(
                "op",
                format!(
                    "unknown operation {other:?}; use create_/update_/delete_ with space, subnet or range"
                ),
            ));
        }
    })
}

async fn snapshot(
    State(state): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
) -> Result<Json<db::SnapshotPage>, ApiError> {
    let pairs = query_pairs(q)?;
    let limit = query_i64(&pairs, "limit", MAX_LIST_LIMIT, 1, MAX_FEED_LIMIT)?;
    let scope = query_scope(&pairs)?;
    let page = query_str(&pairs, "page").map(str::to_string);
    let result = with_db(&state, move |db| {
        db.snapshot_page(&scope, page.as_deref(), limit)
    })
    .await?;
    Ok(Json(result))
}

/// The changes after `since`. With `wait=N` (seconds, at most `MAX_FEED_WAIT_SECS`), an empty
/// answer is held back until something is written or the time is up: clients learn of a change
/// within moments instead of at their next poll.
async fn changes(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    RawQuery(q): RawQuery,
) -> Result<Json<db::ChangesPage>, ApiError> {
    let pairs = query_pairs(q)?;
    if query_str(&pairs, "since").is_none() {
        return Err(ApiError::bad_request(
            Some("since"),
            "since is required: the cursor of a snapshot or of the previous changes page",
        ));
    }
    let since = query_i64(&pairs, "since", 0, 0, i64::MAX)?;
    let limit = query_i64(&pairs, "limit", MAX_LIST_LIMIT, 1, MAX_FEED_LIMIT)?;
    let wait = query_i64(&pairs, "wait", 0, 0, MAX_FEED_WAIT_SECS)?;
    let scope = query_scope(&pairs)?;
    if let Some(id) = query_str(&pairs, "database_id")
        && id != state.database_id
    {
        return Err(ApiError::new(
            StatusCode::GONE,
            "the cursor belongs to another database of this server; read a full snapshot",
            Some("database_id"),
        ));
    }
    let _place = if wait > 0 {
        Some(state.enter_feed_wait(&caller.token_id)?)
    } else {
        None
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(wait as u64);
    // Subscribed before the first read, so a write between the read and the wait wakes it.
    let mut writes = state.feed.subscribe();
    loop {
        let scope = scope.clone();
        let result = with_db(&state, move |db| db.changes(&scope, since, limit)).await?;
        let nothing = result.cursor <= since
            && result.spaces.is_empty()
            && result.subnets.is_empty()
            && result.ranges.is_empty()
            && result.deleted.is_empty();
        if !nothing || wait == 0 {
            return Ok(Json(result));
        }
        match tokio::time::timeout_at(deadline, writes.changed()).await {
            Ok(Ok(())) => continue,
            _ => return Ok(Json(result)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_and_wrong_types_are_named() {
        let e =
            from_value::<AddressSpace>(json!({"id":"a","name":"n","kind":"provider","colour":1}))
                .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("colour"));
        assert_eq!(e.status, 422);
        let e = from_value::<IpamSubnet>(
            json!({"id":"a","address_space":"s","network":"10.0.0.0/24","vlan":"ten"}),
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("vlan"));
        let e = parse_op(json!({"op":"create_range","object":{"id":"r","subnet":"s","start":"x","end":"10.0.0.1"}}))
            .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("object.start"));
        let op = parse_op(json!({"op":"delete_subnet","object":"n1"})).unwrap();
        assert_eq!(op, IpamOp::DeleteSubnet("n1".into()));
        // The wire form is serde's own, so clients can serialize IpamOp directly.
        let op = IpamOp::DeleteRange("r".into());
        assert_eq!(parse_op(serde_json::to_value(&op).unwrap()).unwrap(), op);
        assert_eq!(
            parse_op(json!({"op":"rename","object":{}}))
                .unwrap_err()
                .field
                .as_deref(),
            Some("op")
        );
    }

    #[test]
    fn scope_query_is_parsed() {
        let pairs = query_pairs(Some("logical_network=A&logical_network=B".into())).unwrap();
        assert_eq!(query_scope(&pairs).unwrap().map(|s| s.len()), Some(2));
        let pairs = query_pairs(Some("scope=logical_networks".into())).unwrap();
        assert_eq!(query_scope(&pairs).unwrap(), Some(BTreeSet::new()));
        assert_eq!(query_scope(&[]).unwrap(), None);
    }
}
