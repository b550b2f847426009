//! Writes: a batch split into runs of one kind and verb, sent as bulk requests.

use std::collections::{HashMap, HashSet};

use reqwest::Method;
use serde_json::{Value, json};

use crate::ipam::model::{IpamId, IpamKind, IpamOp, OpVerb};
use crate::ipam::provider::{IpamError, OpOutcome};

use super::*;

pub(super) fn path_of(kind: IpamKind) -> &'static str {
    match kind {
        IpamKind::AddressSpace => NAMESPACES,
        IpamKind::Subnet => PREFIXES,
        IpamKind::Range => RANGES,
    }
}

impl NautobotProvider {
    /// `Api::bulk` with this provider's batch size.
    pub(super) async fn bulk(
        &self,
        method: Method,
        path: &str,
        items: Vec<(usize, Value)>,
    ) -> Vec<(usize, Result<Value, IpamError>)> {
        self.api
            .bulk(method, path, items, self.tuning.batch_size)
            .await
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
        self.usage_read.forget().await;
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
