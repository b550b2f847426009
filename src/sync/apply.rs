//! Applying a plan: IPAM operations in dependency order, batched with bounded concurrency and
//! journalled; console changes in one store transaction.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use uuid::Uuid;

use super::journal::{OpState, SyncDb};
use super::op_order::OpOrder;
use crate::fabric::model::{FabricChange, FabricObject, Id, ObjectKind};
use crate::fabric::store::{FabricStore, StoreError};
use crate::ipam::model::{IpamId, IpamOp, IpamSnapshot, SnapshotRead, SnapshotScope};
use crate::ipam::provider::{IpamError, IpamProvider, OpOutcome};
use crate::ipam::retry::RetryPolicy;

#[derive(Debug, Clone, Copy)]
pub struct ApplySettings {
    pub batch_size: usize,
    pub concurrency: usize,
    /// Attempts for a batch the server never received (connection refused).
    pub attempts: u32,
}

impl Default for ApplySettings {
    fn default() -> Self {
        ApplySettings {
            batch_size: 250,
            concurrency: 4,
            attempts: 4,
        }
    }
}

/// What happened to the IPAM operations of one sync.
#[derive(Debug, Default)]
pub struct IpamApplyReport {
    /// Applied operations, rewritten with the ids the server holds.
    pub applied: Vec<IpamOp>,
    pub failed: Vec<(IpamOp, IpamError)>,
    /// Sent, result unknown, and the look-up failed too: left in the journal for the next run.
    pub unconfirmed: usize,
    pub canceled: bool,
}

/// Did the operation take effect on the server? `Some(id)` if so.
pub fn took_effect(op: &IpamOp, snap: &IpamSnapshot) -> Option<IpamId> {
    match op {
        IpamOp::CreateSpace(s) => snap
            .spaces
            .iter()
            .find(|x| {
                x.id == s.id || (s.vmm_id.is_some() && x.vmm_id == s.vmm_id && x.kind == s.kind)
            })
            .map(|x| x.id.clone()),
        IpamOp::CreateSubnet(s) => snap
            .subnets
            .iter()
            .find(|x| {
                x.id == s.id
                    || (x.vmm_id == s.vmm_id && x.network == s.network && s.vmm_id.is_some())
            })
            .map(|x| x.id.clone()),
        IpamOp::CreateRange(r) => snap
            .ranges
            .iter()
            .find(|x| x.id == r.id || (r.vmm_id.is_some() && x.vmm_id == r.vmm_id))
            .map(|x| x.id.clone()),
        IpamOp::UpdateSpace(s) => snap.spaces.iter().find(|x| *x == s).map(|x| x.id.clone()),
        IpamOp::UpdateSubnet(s) => snap.subnets.iter().find(|x| *x == s).map(|x| x.id.clone()),
        IpamOp::UpdateRange(r) => snap.ranges.iter().find(|x| *x == r).map(|x| x.id.clone()),
        IpamOp::DeleteSpace(id) => (!snap.spaces.iter().any(|x| &x.id == id)).then(|| id.clone()),
        IpamOp::DeleteSubnet(id) => (!snap.subnets.iter().any(|x| &x.id == id)).then(|| id.clone()),
        IpamOp::DeleteRange(id) => (!snap.ranges.iter().any(|x| &x.id == id)).then(|| id.clone()),
    }
}

async fn full_snapshot(provider: &dyn IpamProvider) -> Result<IpamSnapshot, IpamError> {
    match provider.snapshot(&SnapshotScope::All, None).await? {
        SnapshotRead::Full(s) => Ok(s),
        SnapshotRead::Changes(c) => {
            let mut s = IpamSnapshot::default();
            s.apply_changes(c);
            Ok(s)
        }
    }
}

async fn db_call<T: Send + 'static>(
    db: &SyncDb,
    f: impl FnOnce(&SyncDb) -> Result<T, super::journal::SyncDbError> + Send + 'static,
) -> Result<T, IpamError> {
    let db = db.clone();
    tokio::task::spawn_blocking(move || f(&db))
        .await
        .map_err(|e| IpamError::Protocol {
            server: "sync database".into(),
            detail: e.to_string(),
        })?
        .map_err(|e| IpamError::Protocol {
            server: "sync database".into(),
            detail: e.to_string(),
        })
}

/// Look up operations that were sent but never confirmed (the console stopped, or the call timed
/// out) and mark each confirmed or dropped. Never repeats them: the next plan decides afresh.
pub async fn recover_journal(
    provider: &dyn IpamProvider,
    db: &SyncDb,
    service: Id,
) -> Result<(usize, usize), IpamError> {
    let open = db_call(db, move |d| d.unconfirmed(service)).await?;
    if open.is_empty() {
        return Ok((0, 0));
    }
    let snap = full_snapshot(provider).await?;
    let mut marks = Vec::new();
    let (mut confirmed, mut dropped) = (0, 0);
    for e in &open {
        match took_effect(&e.op, &snap) {
            Some(id) => {
                confirmed += 1;
                marks.push((e.seq, OpState::Confirmed, Some(id.into_string())));
            }
            None => {
                dropped += 1;
                marks.push((e.seq, OpState::Dropped, None));
            }
        }
    }
    tracing::info!(%service, confirmed, dropped, "looked up unconfirmed operations after a restart");
    db_call(db, move |d| d.mark(&marks)).await?;
    Ok((confirmed, dropped))
}

struct BatchResult {
    applied: Vec<(IpamOp, IpamId)>,
    failed: Vec<(IpamOp, IpamError)>,
    unconfirmed: usize,
}

async fn send_batch(
    provider: &dyn IpamProvider,
    db: &SyncDb,
    service: Id,
    job: Uuid,
    ops: Vec<IpamOp>,
    settings: ApplySettings,
) -> BatchResult {
    let mut result = BatchResult {
        applied: Vec::new(),
        failed: Vec::new(),
        unconfirmed: 0,
    };
    let ops_for_db = ops.clone();
    let seqs = match db_call(db, move |d| d.record_sent(service, job, &ops_for_db)).await {
        Ok(s) => s,
        Err(e) => {
            // Without a journal entry nothing is sent.
            result.failed = ops.into_iter().map(|o| (o, e.clone())).collect();
            return result;
        }
    };
    let mut pending: Vec<(i64, IpamOp)> = seqs.into_iter().zip(ops).collect();
    let mut attempt = 0;
    while !pending.is_empty() {
        attempt += 1;
        let batch: Vec<IpamOp> = pending.iter().map(|(_, o)| o.clone()).collect();
        match provider.apply(&batch).await {
            Ok(outcomes) => {
                let mut marks = Vec::new();
                let mut next = Vec::new();
                let mut unknown = Vec::new();
                let mut any_failed = false;
                for ((seq, op), outcome) in pending.into_iter().zip(
                    outcomes
                        .into_iter()
                        .map(Some)
                        .chain(std::iter::repeat(None)),
                ) {
                    match outcome {
                        Some(OpOutcome::Applied { id }) => {
                            marks.push((seq, OpState::Confirmed, Some(id.to_string())));
                            result.applied.push((op, id));
                        }
                        Some(OpOutcome::Failed(e)) => {
                            any_failed = true;
                            marks.push((seq, OpState::Failed, Some(e.to_string())));
                            result.failed.push((op, e));
                        }
                        Some(OpOutcome::Unknown(e)) => unknown.push((seq, op, e)),
                        Some(OpOutcome::NotApplied) | None => next.push((seq, op)),
                    }
                }
                let _ = db_call(db, move |d| d.mark(&marks)).await;
                if !unknown.is_empty() {
                    // Look, never repeat blindly: confirmed, or sent again while attempts remain.
                    let e = unknown[0].2.clone();
                    let ops: Vec<(i64, IpamOp)> =
                        unknown.into_iter().map(|(s, o, _)| (s, o)).collect();
                    let again = settle_unknown(
                        provider,
                        db,
                        ops,
                        &e,
                        attempt < settings.attempts,
                        &mut result,
                    )
                    .await;
                    if !again.is_empty() {
                        pause(attempt, e.retry_after()).await;
                        next.extend(again);
                        pending = next;
                        continue;
                    }
                }
                if !any_failed && !next.is_empty() {
                    // The server rolled back without naming a culprit: leave them for the next sync.
                    let marks: Vec<_> = next
                        .iter()
                        .map(|(s, _)| (*s, OpState::Dropped, None))
                        .collect();
                    let _ = db_call(db, move |d| d.mark(&marks)).await;
                    for (_, op) in next {
                        result.failed.push((
                            op,
                            IpamError::Protocol {
                                server: "IPAM server".into(),
                                detail: "the batch was rolled back without a reason".into(),
                            },
                        ));
                    }
                    break;
                }
                pending = next;
            }
            Err(e) if e.nothing_sent() && attempt < settings.attempts => {
                // Nothing reached the server: safe to send again after a pause.
                pause(attempt, e.retry_after()).await;
            }
            Err(e) => {
                // The server may or may not have applied them: look, never repeat blindly.
                let retry = e.is_transient() && attempt < settings.attempts;
                let ops = std::mem::take(&mut pending);
                let again = settle_unknown(provider, db, ops, &e, retry, &mut result).await;
                if !again.is_empty() {
                    pause(attempt, e.retry_after()).await;
                    pending = again;
                }
            }
        }
    }
    result
}

/// Looks up operations whose outcome is unknown (`e` is why): what took effect is confirmed;
/// what certainly did not is returned to be sent again when `retry`, else failed. If the
/// look-up fails too they stay "sent" in the journal, for the next sync to look up.
async fn settle_unknown(
    provider: &dyn IpamProvider,
    db: &SyncDb,
    ops: Vec<(i64, IpamOp)>,
    e: &IpamError,
    retry: bool,
    result: &mut BatchResult,
) -> Vec<(i64, IpamOp)> {
    let snap = match full_snapshot(provider).await {
        Ok(snap) => snap,
        Err(_) => {
            result.unconfirmed += ops.len();
            result
                .failed
                .extend(ops.into_iter().map(|(_, op)| (op, e.clone())));
            return Vec::new();
        }
    };
    let mut marks = Vec::new();
    let mut again = Vec::new();
    for (seq, op) in ops {
        match took_effect(&op, &snap) {
            Some(id) => {
                marks.push((seq, OpState::Confirmed, Some(id.to_string())));
                result.applied.push((op, id));
            }
            None if retry => again.push((seq, op)),
            None => {
                marks.push((seq, OpState::Dropped, Some(e.to_string())));
                result.failed.push((op, e.clone()));
            }
        }
    }
    let _ = db_call(db, move |d| d.mark(&marks)).await;
    again
}

/// How a batch is sent again (after a look-up showed it was not applied, or when it never
/// left): the providers' one retry policy.
const BATCH_RETRY: RetryPolicy = RetryPolicy {
    attempts: 4,
    first_delay: Duration::from_millis(400),
    max_delay: Duration::from_secs(10),
};

/// Waits before attempt `attempt + 1`: the one backoff with jitter, or the server's
/// `Retry-After` when it asked for one (bounded).
async fn pause(attempt: u32, retry_after: Option<Duration>) {
    tokio::time::sleep(BATCH_RETRY.wait(attempt, retry_after)).await;
}

/// Send the IPAM operations of a plan. Phases run in order; batches within a phase run with
/// bounded concurrency. One failed object does not stop the rest.
#[allow(clippy::too_many_arguments)]
pub async fn apply_ipam(
    provider: Arc<dyn IpamProvider>,
    db: &SyncDb,
    service: Id,
    job: Uuid,
    ops: Vec<IpamOp>,
    settings: ApplySettings,
    cancel: &AtomicBool,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> IpamApplyReport {
    let mut report = IpamApplyReport::default();
    let total = ops.len() as u64;
    let done = AtomicU64::new(0);
    let mut ids: HashMap<IpamId, IpamId> = HashMap::new();
    let mut phases: Vec<Vec<IpamOp>> = Vec::new();
    for op in ops {
        match phases.last_mut() {
            Some(p) if p.first().map(OpOrder::phase) == Some(op.phase()) => p.push(op),
            _ => phases.push(vec![op]),
        }
    }
    progress(0, total);
    for ops in phases {
        if cancel.load(Ordering::Relaxed) {
            report.canceled = true;
            break;
        }
        let ops: Vec<IpamOp> = ops
            .into_iter()
            .map(|mut o| {
                o.remap_ids(&ids);
                o
            })
            .collect();
        let chunks: Vec<Vec<IpamOp>> = ops
            .chunks(settings.batch_size.max(1))
            .map(|c| c.to_vec())
            .collect();
        let provider = provider.clone();
        let results: Vec<BatchResult> = futures::stream::iter(chunks)
            .map(|chunk| {
                let provider = provider.clone();
                let db = db.clone();
                let n = chunk.len() as u64;
                let done = &done;
                async move {
                    if cancel.load(Ordering::Relaxed) {
                        return BatchResult {
                            applied: vec![],
                            failed: vec![],
                            unconfirmed: 0,
                        };
                    }
                    let r = send_batch(provider.as_ref(), &db, service, job, chunk, settings).await;
                    let d = done.fetch_add(n, Ordering::Relaxed) + n;
                    progress(d, total);
                    r
                }
            })
            .buffer_unordered(settings.concurrency.max(1))
            .collect()
            .await;
        for r in results {
            for (op, id) in r.applied {
                if *op.target_id() != id {
                    ids.insert(op.target_id().clone(), id.clone());
                }
                report.applied.push(op.with_id(&id));
            }
            report.failed.extend(r.failed);
            report.unconfirmed += r.unconfirmed;
        }
    }
    if cancel.load(Ordering::Relaxed) {
        report.canceled = true;
    }
    report
}

/// Bring the local copy of the IPAM side up to date with what was applied. Exactly as applying
/// the operations one by one (an upsert moves its object to the end, a delete removes it), in
/// time linear in the mirror and the operations.
pub fn apply_to_mirror(mirror: &mut IpamSnapshot, applied: &[IpamOp]) {
    let mut spaces = Vec::new();
    let mut subnets = Vec::new();
    let mut ranges = Vec::new();
    for op in applied {
        match op {
            IpamOp::CreateSpace(s) | IpamOp::UpdateSpace(s) => spaces.push((&s.id, Some(s))),
            IpamOp::CreateSubnet(s) | IpamOp::UpdateSubnet(s) => subnets.push((&s.id, Some(s))),
            IpamOp::CreateRange(r) | IpamOp::UpdateRange(r) => ranges.push((&r.id, Some(r))),
            IpamOp::DeleteSpace(id) => spaces.push((id, None)),
            IpamOp::DeleteSubnet(id) => subnets.push((id, None)),
            IpamOp::DeleteRange(id) => ranges.push((id, None)),
        }
    }
    replay(&mut mirror.spaces, &spaces, |x| &x.id);
    replay(&mut mirror.subnets, &subnets, |x| &x.id);
    replay(&mut mirror.ranges, &ranges, |x| &x.id);
}

/// One kind's operations in order: the objects no operation touched keep their places; each
/// touched object whose last operation is an upsert follows, in the order of those last upserts.
fn replay<T: Clone>(list: &mut Vec<T>, ops: &[(&IpamId, Option<&T>)], id: impl Fn(&T) -> &IpamId) {
    if ops.is_empty() {
        return;
    }
    let mut last: HashMap<&IpamId, usize> = HashMap::with_capacity(ops.len());
    for (i, (key, _)) in ops.iter().enumerate() {
        last.insert(*key, i);
    }
    list.retain(|x| !last.contains_key(id(x)));
    list.extend(
        ops.iter()
            .enumerate()
            .filter(|(i, (key, _))| last.get(key) == Some(i))
            .filter_map(|(_, (_, item))| item.map(|x| (*x).clone())),
    );
}

/// What happened to the console changes of one sync.
#[derive(Debug, Default)]
pub struct ConsoleApplyReport {
    pub applied: usize,
    /// One sentence per object left out, naming it and why.
    pub failed: Vec<String>,
}

fn change_object(c: &FabricChange) -> (ObjectKind, Id) {
    match c {
        FabricChange::Put(o) => (o.kind(), o.id()),
        FabricChange::Delete(k, id) => (*k, *id),
    }
}

fn depends_on(c: &FabricChange, bad: &std::collections::HashSet<Id>) -> bool {
    match c {
        FabricChange::Put(FabricObject::IpPool(p)) => match &p.scope {
            crate::fabric::model::PoolScope::Site { site, .. } => bad.contains(site),
            crate::fabric::model::PoolScope::VmSubnet { vm_network, .. } => {
                bad.contains(vm_network)
            }
        },
        FabricChange::Put(FabricObject::NetworkSite(s)) => bad.contains(&s.logical_network),
        _ => false,
    }
}

/// Apply console changes in one transaction; if some objects are invalid, leave exactly those
/// (and what depends on them) out, report them, and apply the rest.
pub async fn apply_console(
    store: &FabricStore,
    mut changes: Vec<FabricChange>,
) -> ConsoleApplyReport {
    let mut report = ConsoleApplyReport::default();
    for _round in 0..6 {
        if changes.is_empty() {
            return report;
        }
        match store.apply_async(changes.clone()).await {
            Ok(_) => {
                report.applied = changes.len();
                return report;
            }
            Err(StoreError::Invalid(errors)) => {
                let mut bad: std::collections::HashSet<Id> =
                    errors.iter().map(|e| e.object).collect();
                // An error on an object we did not touch is caused by one we did: drop all
                // changes that touch the same logical network is too blunt; drop the named
                // objects when they are ours, else everything (reported).
                let ours: std::collections::HashSet<Id> =
                    changes.iter().map(|c| change_object(c).1).collect();
                if !bad.iter().any(|b| ours.contains(b)) {
                    for e in &errors {
                        report.failed.push(e.to_string());
                    }
                    return report;
                }
                for e in &errors {
                    if ours.contains(&e.object) {
                        report.failed.push(e.to_string());
                    }
                }
                loop {
                    let before = bad.len();
                    for c in &changes {
                        if depends_on(c, &bad) {
                            bad.insert(change_object(c).1);
                        }
                    }
                    if bad.len() == before {
                        break;
                    }
                }
                changes.retain(|c| !bad.contains(&change_object(c).1));
            }
            Err(e) => {
                report.failed.push(e.to_string());
                return report;
            }
        }
    }
    report
        .failed
        .push("The console's changes could not be made valid; nothing was received.".into());
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipam::model::{AddressSpace, AddressSpaceKind, IpamSubnet};
    use proptest::prelude::*;

    /// The operations applied one at a time, as the mirror was once brought up to date.
    fn one_by_one(mirror: &mut IpamSnapshot, applied: &[IpamOp]) {
        for op in applied {
            match op {
                IpamOp::CreateSpace(s) | IpamOp::UpdateSpace(s) => {
                    mirror.spaces.retain(|x| x.id != s.id);
                    mirror.spaces.push(s.clone());
                }
                IpamOp::CreateSubnet(s) | IpamOp::UpdateSubnet(s) => {
                    mirror.subnets.retain(|x| x.id != s.id);
                    mirror.subnets.push(s.clone());
                }
                IpamOp::CreateRange(r) | IpamOp::UpdateRange(r) => {
                    mirror.ranges.retain(|x| x.id != r.id);
                    mirror.ranges.push(r.clone());
                }
                IpamOp::DeleteSpace(id) => mirror.spaces.retain(|x| &x.id != id),
                IpamOp::DeleteSubnet(id) => mirror.subnets.retain(|x| &x.id != id),
                IpamOp::DeleteRange(id) => mirror.ranges.retain(|x| &x.id != id),
            }
        }
    }

    fn op(kind: u8, id: u8, version: u8) -> IpamOp {
        let id = format!("o{id}");
        match kind % 4 {
            0 => IpamOp::UpdateSpace(AddressSpace::new(
                id,
                format!("v{version}"),
                AddressSpaceKind::Provider,
            )),
            1 => IpamOp::DeleteSpace(IpamId::from(id)),
            2 => IpamOp::UpdateSubnet(IpamSubnet::new(
                id,
                format!("v{version}"),
                "10.0.0.0/24".parse().unwrap(),
            )),
            _ => IpamOp::DeleteSubnet(IpamId::from(id)),
        }
    }

    proptest! {
        #[test]
        fn applying_at_once_equals_applying_one_by_one(
            start in proptest::collection::vec((0u8..4, 0u8..12, 0u8..3), 0..20),
            ops in proptest::collection::vec((0u8..4, 0u8..12, 0u8..3), 0..40),
        ) {
            let mut base = IpamSnapshot::default();
            let start: Vec<IpamOp> = start.into_iter().map(|(k, i, v)| op(k, i, v)).collect();
            one_by_one(&mut base, &start);
            let ops: Vec<IpamOp> = ops.into_iter().map(|(k, i, v)| op(k, i, v)).collect();
            let mut expected = base.clone();
            one_by_one(&mut expected, &ops);
            let mut got = base;
            apply_to_mirror(&mut got, &ops);
            prop_assert_eq!(got, expected);
        }
    }
}
