//! The HTTP side of an IPAM server with a Django REST Framework API (Nautobot, NetBox): requests
//! with the API version and token, limit/offset paging that is checked to be complete, bulk
//! answers, and the server's errors mapped to the console's.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use reqwest::header::DATE;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use uuid::Uuid;

use crate::ipam::model::{IpamId, IpamOp, OpVerb};
use crate::ipam::provider::{IpamError, OpOutcome};
use crate::ipam::retry::{RetryPolicy, retry_after};

/// Which server an `Api` talks to, for its messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Product {
    /// "Nautobot", "NetBox".
    pub(crate) name: &'static str,
    /// What to grant when the server answers 403 to a valid token.
    pub(crate) permissions: &'static str,
    /// Whether a string can be one of the server's object ids (a UUID, a number).
    pub(crate) valid_id: fn(&str) -> bool,
}

/// One answer of the server: status, JSON body (Null when empty) and the server's clock.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: Value,
    pub(crate) date: Option<DateTime<Utc>>,
    pub(crate) retry_after: Option<Duration>,
}

pub(crate) struct Api {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) server: String,
    pub(crate) get_retry: RetryPolicy,
    pub(crate) page_size: usize,
    pub(crate) concurrency: usize,
    /// The largest answer read; anything larger is refused.
    pub(crate) max_answer_bytes: usize,
    pub(crate) product: Product,
}

impl Api {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends one request; any HTTP status is an `Ok`, only transport failures are errors.
    pub(crate) async fn send(
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
        let bytes = self.body_of(response, path).await?;
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

    /// The answer's body, refused beyond `max_answer_bytes` (a page of a thousand objects is a
    /// few megabytes; anything far larger is not the server it should be, or is broken).
    async fn body_of(
        &self,
        mut response: reqwest::Response,
        path: &str,
    ) -> Result<Vec<u8>, IpamError> {
        let too_large = || IpamError::Protocol {
            server: self.server.clone(),
            detail: format!(
                "{path} answered more than {} MB; check that the connection string points at {}",
                (self.max_answer_bytes >> 20).max(1),
                self.product.name
            ),
        };
        if response
            .content_length()
            .is_some_and(|n| n > self.max_answer_bytes as u64)
        {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| transport_error(&self.server, &e))?
        {
            if bytes.len() + chunk.len() > self.max_answer_bytes {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }

    /// An idempotent GET, retried with backoff and jitter on timeouts, 429 and 5xx.
    pub(crate) async fn get(
        &self,
        path: &str,
        query: &[(String, String)],
    ) -> Result<Reply, IpamError> {
        self.get_retry
            .idempotent(|| async {
                let reply = self.send(Method::GET, path, query, None).await?;
                if reply.status.is_success() {
                    return Ok(reply);
                }
                Err(
                    status_error(&self.server, self.product, reply.status, &reply.body)
                        .with_retry_after(reply.retry_after),
                )
            })
            .await
    }

    /// Every object of a list endpoint, paged with limit/offset; pages after the first are read
    /// concurrently. Returns the objects and the server's clock at the first page.
    ///
    /// Offset paging skips an object when another is deleted during the read (and repeats one
    /// when another is added), so a read counts only when every page reports the same total
    /// and exactly that many distinct objects arrived; otherwise it is read again, and after a
    /// few tries it fails as `Incomplete` rather than pass for complete.
    pub(crate) async fn list_all(
        &self,
        path: &str,
        query: &[(String, String)],
    ) -> Result<(Vec<Value>, Option<DateTime<Utc>>), IpamError> {
        const TRIES: usize = 4;
        let mut last = String::new();
        for _ in 0..TRIES {
            match self.list_once(path, query).await? {
                Listed::Complete(objects, date) => return Ok((objects, date)),
                Listed::Changed(why) => last = why,
            }
        }
        Err(IpamError::Incomplete {
            server: self.server.clone(),
            detail: format!("{path}: {last}, {TRIES} reads in a row"),
        })
    }

    async fn list_once(&self, path: &str, query: &[(String, String)]) -> Result<Listed, IpamError> {
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
                detail: format!(
                    "{path} answered without a \"count\" (not a {} list)",
                    self.product.name
                ),
            })? as usize;
        let mut objects = results_of(&self.server, path, first.body)?;
        let mut totals_agree = true;
        if objects.len() < count && !objects.is_empty() {
            let offsets = page_offsets(&self.server, path, objects.len(), count)?;
            let pages: Vec<Result<Page, IpamError>> = stream::iter(offsets)
                .map(|offset| {
                    let q = page(offset);
                    async move {
                        let reply = self.get(path, &q).await?;
                        let total = reply.body.get("count").and_then(Value::as_u64);
                        Ok((total, results_of(&self.server, path, reply.body)?))
                    }
                })
                .buffered(self.concurrency.max(1))
                .collect()
                .await;
            for p in pages {
                let (total, items) = p?;
                totals_agree &= total == Some(count as u64);
                objects.extend(items);
            }
        }
        let read = objects.len();
        // Offsets shift when objects are added during the read: drop repeats.
        let mut seen = HashSet::new();
        objects.retain(|o| match o.get("id").and_then(crate::ipam::drf::id_text) {
            Some(id) => seen.insert(id),
            None => true,
        });
        if !totals_agree || objects.len() != count {
            return Ok(Listed::Changed(format!(
                "{count} objects at the first page, {read} read, {} distinct",
                objects.len()
            )));
        }
        Ok(Listed::Complete(objects, first.date))
    }

    /// Lists objects by id (repeated `id=` is accepted), in chunks that keep URLs short; ids
    /// that cannot be the server's (`valid`) are left out.
    pub(crate) async fn list_by_ids(
        &self,
        path: &str,
        ids: &[String],
        extra: &[(String, String)],
    ) -> Result<Vec<Value>, IpamError> {
        let filters = ids
            .chunks(80)
            .map(|chunk| {
                chunk
                    .iter()
                    .filter(|id| (self.product.valid_id)(id))
                    .map(|id| ("id".into(), id.clone()))
                    .collect()
            })
            .collect();
        self.list_filtered(path, extra, filters).await
    }

    /// Lists the objects each filter (query pairs added to `extra`) selects, one listing per
    /// filter, all in one list; an empty filter selects nothing and is skipped.
    pub(crate) async fn list_filtered(
        &self,
        path: &str,
        extra: &[(String, String)],
        filters: Vec<Vec<(String, String)>>,
    ) -> Result<Vec<Value>, IpamError> {
        let mut out = Vec::new();
        for filter in filters {
            if filter.is_empty() {
                continue;
            }
            let mut q = extra.to_vec();
            q.extend(filter);
            out.extend(self.list_all(path, &q).await?.0);
        }
        Ok(out)
    }
}

/// One page of a list: the total it reports, and its objects.
type Page = (Option<u64>, Vec<Value>);

/// One paged read: whole, or changed while it was read (and why).
enum Listed {
    Complete(Vec<Value>, Option<DateTime<Utc>>),
    Changed(String),
}

pub(crate) fn results_of(server: &str, path: &str, body: Value) -> Result<Vec<Value>, IpamError> {
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

pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
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

pub(crate) fn transport_error(server: &str, e: &reqwest::Error) -> IpamError {
    let detail = error_chain(e);
    let lower = detail.to_ascii_lowercase();
    if e.is_timeout() {
        IpamError::Timeout {
            server: server.to_string(),
            detail,
        }
    } else if let Some(detail) = crate::ipam::tls::failure(e) {
        IpamError::Tls {
            server: server.to_string(),
            detail,
        }
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake")
    {
        IpamError::Tls {
            server: server.to_string(),
            detail,
        }
    } else if e.is_connect() {
        IpamError::Unreachable {
            server: server.to_string(),
            detail,
        }
    } else {
        // Reset, closed or cut short after the request went out: the outcome is unknown.
        IpamError::Interrupted {
            server: server.to_string(),
            detail,
        }
    }
}

/// The server's own words from an error body, and the field it names when there is one.
pub fn drf_message(body: &Value) -> (Option<String>, String) {
    pub(crate) fn text(v: &Value) -> String {
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
            // NetBox's bulk writes: a summary and the errors of the objects that failed.
            if let Some(items) = indexed_errors(body) {
                let summary = map.get("detail").map(text).unwrap_or_default();
                let (field, detail) = drf_message(&Value::Array(items));
                return (field, format!("{summary} {detail}").trim().to_string());
            }
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
            let field = parts.iter().find_map(|(_, v)| drf_message(v).0);
            let joined = parts
                .iter()
                .map(|(i, v)| format!("object {}: {}", i + 1, drf_message(v).1))
                .collect::<Vec<_>>()
                .join("; ");
            (field, joined)
        }
        Value::Null => (None, "no details given".into()),
        other => (None, text(other)),
    }
}

/// The per-object errors of a bulk write answered as `{"errors": [{"index", "errors"}]}`
/// (NetBox 4.7), laid out by index with nulls for the objects that had none.
fn indexed_errors(body: &Value) -> Option<Vec<Value>> {
    let entries = body.get("errors")?.as_array()?;
    let mut out: Vec<Value> = Vec::new();
    for e in entries {
        let index = e.get("index")?.as_u64()? as usize;
        if index >= 10_000 {
            return None;
        }
        if out.len() <= index {
            out.resize(index + 1, Value::Null);
        }
        out[index] = e.get("errors")?.clone();
    }
    Some(out)
}

pub(crate) fn is_empty_error(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// Maps an HTTP failure to the console's error, keeping the server's message.
pub(crate) fn status_error(
    server: &str,
    product: Product,
    status: StatusCode,
    body: &Value,
) -> IpamError {
    let (field, message) = drf_message(body);
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
            detail: format!("{detail}; {}", product.permissions),
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

pub(crate) fn is_uuid(s: &str) -> bool {
    Uuid::parse_str(s).is_ok()
}

/// The largest answer read from the server.
pub(crate) const MAX_ANSWER_BYTES: usize = 64 << 20;

/// More objects than any list endpoint may claim: a larger `count` is a broken or hostile answer,
/// refused before it can drive the number of requests or allocations.
const MAX_LISTED_OBJECTS: usize = 10_000_000;

/// The offsets of the pages after the first, which held `step` objects of `count`.
fn page_offsets(
    server: &str,
    path: &str,
    step: usize,
    count: usize,
) -> Result<std::iter::StepBy<std::ops::Range<usize>>, IpamError> {
    if count > MAX_LISTED_OBJECTS {
        return Err(IpamError::Protocol {
            server: server.to_string(),
            detail: format!(
                "{path} claims {count} objects, more than the {MAX_LISTED_OBJECTS} a list may hold; check that the connection string points at the IPAM server"
            ),
        });
    }
    Ok((step..count).step_by(step.max(1)))
}

// ---------------------------------------------------------------------------------------------
// Bulk writes
// ---------------------------------------------------------------------------------------------

impl Api {
    /// Sends objects to a list endpoint in batches with bounded concurrency. Each entry is one
    /// operation's object; the result keeps the entry's tag. DRF bulk calls are
    /// all-or-none: when some objects are rejected, the others are sent again without them.
    pub(crate) async fn bulk(
        &self,
        method: Method,
        path: &str,
        items: Vec<(usize, Value)>,
        batch_size: usize,
    ) -> Vec<(usize, Result<Value, IpamError>)> {
        let batch = batch_size.max(1);
        let chunks: Vec<Vec<(usize, Value)>> = items.chunks(batch).map(|c| c.to_vec()).collect();
        let results: Vec<Vec<(usize, Result<Value, IpamError>)>> = stream::iter(chunks)
            .map(|chunk| {
                let method = method.clone();
                async move { self.bulk_chunk(method, path, chunk, true).await }
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        results.into_iter().flatten().collect()
    }

    pub(crate) async fn bulk_chunk(
        &self,
        method: Method,
        path: &str,
        chunk: Vec<(usize, Value)>,
        may_split: bool,
    ) -> Vec<(usize, Result<Value, IpamError>)> {
        let body = Value::Array(chunk.iter().map(|(_, v)| v.clone()).collect());
        let reply = match self.send(method.clone(), path, &[], Some(&body)).await {
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
                    let e = IpamError::Protocol {
                        server: self.server.clone(),
                        detail: format!(
                            "{path} answered a bulk {method} with something other than one object per item"
                        ),
                    };
                    chunk
                        .into_iter()
                        .map(|(i, _)| (i, Err(e.clone())))
                        .collect()
                }
            };
        }
        let error = status_error(&self.server, self.product, reply.status, &reply.body);
        let per_item = match &reply.body {
            Value::Array(errors) if errors.len() == chunk.len() => Some(errors.clone()),
            body => indexed_errors(body)
                .filter(|errors| errors.len() <= chunk.len())
                .map(|mut errors| {
                    errors.resize(chunk.len(), Value::Null);
                    errors
                }),
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
                        out.push((
                            i,
                            Err(status_error(&self.server, self.product, reply.status, &e)),
                        ));
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
                .buffer_unordered(self.concurrency)
                .collect()
                .await;
            out.extend(singles.into_iter().flatten());
        }
        out
    }
}

/// Ids another operation refers to (target of updates/deletes, parents of creates).
pub(crate) fn references(op: &IpamOp) -> Vec<&IpamId> {
    match op {
        IpamOp::CreateSpace(s) => s.provider_space.iter().collect(),
        IpamOp::UpdateSpace(s) => {
            let mut r = vec![&s.id];
            r.extend(s.provider_space.as_ref());
            r
        }
        IpamOp::CreateSubnet(s) => vec![&s.address_space],
        IpamOp::UpdateSubnet(s) => vec![&s.id, &s.address_space],
        IpamOp::CreateRange(r) => vec![&r.subnet],
        IpamOp::UpdateRange(r) => vec![&r.id, &r.subnet],
        IpamOp::DeleteSpace(id) | IpamOp::DeleteSubnet(id) | IpamOp::DeleteRange(id) => {
            vec![id]
        }
    }
}

/// Replaces ids proposed earlier in the batch by the ids the server assigned.
pub(crate) fn translate(op: &IpamOp, ids: &HashMap<IpamId, IpamId>) -> IpamOp {
    let t = |s: &IpamId| ids.get(s).cloned().unwrap_or_else(|| s.clone());
    let mut op = op.clone();
    match &mut op {
        IpamOp::CreateSpace(s) => s.provider_space = s.provider_space.as_ref().map(t),
        IpamOp::UpdateSpace(s) => {
            s.id = t(&s.id);
            s.provider_space = s.provider_space.as_ref().map(t);
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
pub(crate) fn runs(batch: &[IpamOp]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut proposed: HashSet<&IpamId> = HashSet::new();
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

/// A write that failed after it may have reached the server (timeout, reset, a gateway's 502,
/// a 503 or 429 on the way) has an unknown outcome: the engine looks it up instead of taking
/// it as failed.
pub(crate) fn outcome_of_error(e: IpamError) -> OpOutcome {
    // Any transient failure but a refused connection (nothing sent) may hide a done write;
    // looking it up is always safe, and what was not done is sent again.
    if e.is_transient() && !e.nothing_sent() {
        OpOutcome::Unknown(e)
    } else {
        OpOutcome::Failed(e)
    }
}

pub(crate) fn per_item_failed(out: &[(usize, Result<Value, IpamError>)]) -> bool {
    out.iter().any(|(_, r)| r.is_err())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TEST_PRODUCT: Product = Product {
        name: "the test server",
        permissions: "grant the rights",
        valid_id: is_uuid,
    };

    /// A list endpoint on a loopback port whose objects change as it is read: `ids_at(n)`
    /// are the objects when the n-th request arrives.
    async fn changing_list(ids_at: fn(usize) -> Vec<u32>) -> (Api, tokio::task::JoinHandle<()>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let calls = std::sync::Arc::new(AtomicUsize::new(0));
        let app = axum::Router::new().route(
            "/api/ipam/prefixes/",
            axum::routing::get(
                move |axum::extract::Query(q): axum::extract::Query<
                    std::collections::HashMap<String, String>,
                >| {
                    let n = calls.fetch_add(1, Ordering::SeqCst);
                    async move {
                        let ids = ids_at(n);
                        let offset: usize = q["offset"].parse().unwrap();
                        let limit: usize = q["limit"].parse().unwrap();
                        let page: Vec<Value> = ids
                            .iter()
                            .skip(offset)
                            .take(limit)
                            .map(|i| json!({"id": format!("00000000-0000-0000-0000-{i:012}")}))
                            .collect();
                        axum::Json(json!({"count": ids.len(), "results": page}))
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        let api = Api {
            http: reqwest::Client::new(),
            base: format!("http://{addr}"),
            server: "nb".into(),
            get_retry: RetryPolicy {
                attempts: 1,
                first_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(1),
            },
            page_size: 2,
            concurrency: 1,
            max_answer_bytes: MAX_ANSWER_BYTES,
            product: TEST_PRODUCT,
        };
        (api, task)
    }

    #[tokio::test]
    async fn an_answer_beyond_the_size_limit_is_refused_before_it_is_all_read() {
        // Five objects of about 50 bytes each, against a limit of 128 bytes.
        let (mut api, task) = changing_list(|_| (0..5).collect()).await;
        api.page_size = 5;
        api.max_answer_bytes = 128;
        let e = api.list_all("/api/ipam/prefixes/", &[]).await.unwrap_err();
        assert!(matches!(e, IpamError::Protocol { .. }), "{e:?}");
        assert!(e.to_string().contains("answered more than"), "{e}");
        api.max_answer_bytes = MAX_ANSWER_BYTES;
        assert_eq!(
            api.list_all("/api/ipam/prefixes/", &[])
                .await
                .unwrap()
                .0
                .len(),
            5
        );
        task.abort();
    }

    #[tokio::test]
    async fn a_list_that_changes_while_read_is_read_again_never_taken_as_complete() {
        // Object 0 is deleted after the first page: offsets shift and object 2 would be skipped.
        let (api, task) = changing_list(|n| {
            if n == 0 {
                vec![0, 1, 2, 3, 4]
            } else {
                vec![1, 2, 3, 4]
            }
        })
        .await;
        let (objects, _) = api.list_all("/api/ipam/prefixes/", &[]).await.unwrap();
        let ids: Vec<&str> = objects.iter().filter_map(|o| o["id"].as_str()).collect();
        assert_eq!(
            ids,
            [
                "00000000-0000-0000-0000-000000000001",
                "00000000-0000-0000-0000-000000000002",
                "00000000-0000-0000-0000-000000000003",
                "00000000-0000-0000-0000-000000000004"
            ]
        );
        task.abort();

        // A list that never holds still fails as incomplete (nothing may be inferred deleted).
        let (api, task) = changing_list(|n| (n as u32 % 2..6).collect()).await;
        let e = api.list_all("/api/ipam/prefixes/", &[]).await.unwrap_err();
        assert!(matches!(e, IpamError::Incomplete { .. }), "{e:?}");
        assert!(
            e.to_string().contains("Nothing was taken as deleted"),
            "{e}"
        );
        task.abort();
    }

    #[test]
    fn page_offsets_follow_the_count_and_refuse_an_absurd_one() {
        let offsets: Vec<usize> = page_offsets("nb", "/api/ipam/prefixes/", 1000, 2500)
            .unwrap()
            .collect();
        assert_eq!(offsets, vec![1000, 2000]);
        let e = page_offsets("nb", "/api/ipam/prefixes/", 1, usize::MAX).unwrap_err();
        assert!(matches!(e, IpamError::Protocol { .. }), "{e:?}");
        assert!(e.to_string().contains("/api/ipam/prefixes/"), "{e}");
    }

    #[test]
    fn netbox_bulk_errors_name_the_object_and_field() {
        let body = json!({"detail": "1 of 2 objects could not be created.",
                          "errors": [{"index": 1, "errors": {"vrf": ["Related object not found"]}}]});
        let (field, message) = drf_message(&body);
        assert_eq!(field.as_deref(), Some("vrf"));
        assert!(
            message.contains("object 2: vrf: Related object not found"),
            "{message}"
        );
        assert_eq!(
            indexed_errors(&body),
            Some(vec![
                Value::Null,
                json!({"vrf": ["Related object not found"]})
            ])
        );
    }

    #[test]
    fn messages_keep_the_servers_words_and_field() {
        let (field, text) =
            drf_message(&json!({"prefix": ["Enter a valid IPv4 or IPv6 network."]}));
        assert_eq!(field.as_deref(), Some("prefix"));
        assert!(text.contains("Enter a valid IPv4"));
        let (field, text) = drf_message(&json!({"detail": "Invalid token"}));
        assert_eq!(field, None);
        assert_eq!(text, "Invalid token");
        let (field, text) = drf_message(&json!([{}, {"__all__": ["overlaps"]}]));
        assert_eq!(field, None);
        assert_eq!(text, "object 2: __all__: overlaps");
    }

    #[test]
    fn statuses_map_to_errors() {
        let e = status_error(
            "nb",
            TEST_PRODUCT,
            StatusCode::FORBIDDEN,
            &json!({"detail": "Invalid token"}),
        );
        assert!(matches!(e, IpamError::Unauthorized { .. }));
        let e = status_error(
            "nb",
            TEST_PRODUCT,
            StatusCode::FORBIDDEN,
            &json!({"detail": "You do not have permission to perform this action."}),
        );
        assert!(
            matches!(e, IpamError::Forbidden { ref detail, .. } if detail.contains("grant the rights"))
        );
        let e = status_error(
            "nb",
            TEST_PRODUCT,
            StatusCode::BAD_REQUEST,
            &json!({"name": ["taken"]}),
        );
        assert!(matches!(e, IpamError::Invalid { ref field, .. } if field == "name"));
        assert!(
            status_error("nb", TEST_PRODUCT, StatusCode::BAD_GATEWAY, &Value::Null).is_transient()
        );
        assert!(
            !status_error("nb", TEST_PRODUCT, StatusCode::CONFLICT, &Value::Null).is_transient()
        );
    }

    #[test]
    fn runs_split_by_kind_verb_and_dependency() {
        use crate::ipam::model::{AddressSpace, AddressSpaceKind};
        let p = AddressSpace::new("p", "Prod", AddressSpaceKind::Provider);
        let mut c = AddressSpace::new("c", "T", AddressSpaceKind::Customer);
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
        use crate::ipam::model::IpamSubnet;
        let ids: HashMap<IpamId, IpamId> = [("p".into(), "real".into())].into();
        let op = IpamOp::CreateSubnet(IpamSubnet::new("s", "p", "10.0.0.0/24".parse().unwrap()));
        match translate(&op, &ids) {
            IpamOp::CreateSubnet(s) => assert_eq!(s.address_space, "real"),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            translate(&IpamOp::DeleteSpace("p".into()), &ids),
            IpamOp::DeleteSpace("real".into())
        );
    }
}
