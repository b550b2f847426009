//! Writes: a batch split into runs of one kind and verb, sent as bulk requests.

use std::collections::{HashMap, HashSet};

use futures::stream::{self, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::ipam::model::{IpamId, IpamKind, IpamOp, OpVerb};
use crate::ipam::provider::{IpamError, OpOutcome};

use super::*;

/// Ids another operation refers to (target of updates/deletes, parents of creates).
pub(super) fn references(op: &IpamOp) -> Vec<&IpamId> {
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

/// Replaces ids proposed earlier in the batch by the ids Nautobot assigned.
pub(super) fn translate(op: &IpamOp, ids: &HashMap<IpamId, IpamId>) -> IpamOp {
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
pub(super) fn runs(batch: &[IpamOp]) -> Vec<std::ops::Range<usize>> {
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

pub(super) fn path_of(kind: IpamKind) -> &'static str {
    match kind {
        IpamKind::AddressSpace => NAMESPACES,
        IpamKind::Subnet => PREFIXES,
        IpamKind::Range => RANGES,
    }
}

impl NautobotProvider {
    /// Sends objects to a list endpoint in batches with bounded concurrency. Each entry is one
    /// operation's object; the result keeps the entry's tag. Nautobot's bulk calls are
    /// all-or-none: when some objects are rejected, the others are sent again without them.
    pub(super) async fn bulk(
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

    pub(super) async fn bulk_chunk(
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
    pub(super) async fn fetch(
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

    pub(super) async fn apply_run(
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
                    match existing.get(id.as_str()) {
                        // Already gone: the wanted state holds.
                        None if is_uuid(id.as_str()) => {
                            outcomes[*i] = Some(OpOutcome::Applied { id: id.clone() })
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
                if kind == IpamKind::Range {
                    let ranges: Vec<String> = items
                        .iter()
                        .filter_map(|(_, v)| str_of(v, "id").map(str::to_string))
                        .collect();
                    if let Err(e) = self.delete_range_addresses(&ranges).await {
                        for (i, _) in items {
                            outcomes[i] = Some(outcome_of_error(e.clone()));
                        }
                        return;
                    }
                }
                for (i, result) in self.bulk(Method::DELETE, path, items).await {
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
    pub(super) async fn apply_batch(&self, batch: &[IpamOp]) -> Result<Vec<OpOutcome>, IpamError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let schema = self.ensure_schema(true).await?;
        let mut outcomes: Vec<Option<OpOutcome>> = vec![None; batch.len()];
        let mut ids: HashMap<IpamId, IpamId> = HashMap::new();
        let mut failed_creates: HashSet<IpamId> = HashSet::new();
        for run in runs(batch) {
            let mut ops = Vec::new();
            for i in run {
                let op = &batch[i];
                if references(op).iter().any(|r| failed_creates.contains(*r)) {
                    // Its parent was not created: the engine sends it again with the parent.
                    outcomes[i] = Some(OpOutcome::NotApplied);
                    if op.verb() == OpVerb::Create {
                        failed_creates.insert(op.target_id().clone());
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

/// A write that failed after it may have reached Nautobot (timeout, reset, a gateway's 502,
/// a 503 or 429 on the way) has an unknown outcome: the engine looks it up instead of taking
/// it as failed.
fn outcome_of_error(e: IpamError) -> OpOutcome {
    // Any transient failure but a refused connection (nothing sent) may hide a done write;
    // looking it up is always safe, and what was not done is sent again.
    if e.is_transient() && !e.nothing_sent() {
        OpOutcome::Unknown(e)
    } else {
        OpOutcome::Failed(e)
    }
}

pub(super) fn per_item_failed(out: &[(usize, Result<Value, IpamError>)]) -> bool {
    out.iter().any(|(_, r)| r.is_err())
}

#[cfg(test)]
mod tests {
    use super::super::mapping::tests::space;
    use super::*;
    use crate::ipam::model::AddressSpaceKind;
    use crate::ipam::model::IpamSubnet;

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
