//! The audit trail of writes: who (token id and role), when (UTC), what (method, object and a
//! one-line summary) and the outcome. An applied operation's row is written in the transaction
//! of the change itself, so the two exist together or not at all; a refused operation's row is
//! written after its transaction was rolled back. Tokens and secrets are never recorded.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::*;
use crate::ipam::model::OpVerb;

/// How many audit rows are kept; older ones are deleted as new ones arrive.
pub const DEFAULT_AUDIT_RETENTION: i64 = 100_000;
/// Longest reason kept for a refused operation.
const MAX_DETAIL: usize = 300;

/// Who asks for a write, and how: what the audit trail records about the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's id as `token list` shows it (the start of its hash), never the token.
    pub token_id: String,
    pub role: Role,
    /// The HTTP method of the request (`POST`, `PUT`, `PATCH`, `DELETE`).
    pub method: String,
    /// When the request arrived, by the server's clock.
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    /// The operation's change was committed.
    Applied,
    /// The operation was refused (invalid, conflicting, missing); nothing was changed.
    Refused,
}

impl AuditOutcome {
    fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Applied => "applied",
            AuditOutcome::Refused => "refused",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        match s {
            "applied" => Some(AuditOutcome::Applied),
            "refused" => Some(AuditOutcome::Refused),
            _ => None,
        }
    }
}

/// One operation of one write request, as the audit trail keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub seq: i64,
    /// RFC 3339, UTC, milliseconds.
    pub at: String,
    pub token_id: String,
    pub role: Role,
    pub method: String,
    pub action: OpVerb,
    pub kind: IpamKind,
    pub object_id: String,
    /// The object's name: an address space's name, a subnet's network, a range's start-end.
    pub object_name: String,
    pub summary: String,
    pub outcome: AuditOutcome,
    /// Why a refused operation was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl std::fmt::Display for AuditEntry {
    /// `AT  TOKEN-ID  ROLE  METHOD  OUTCOME  SUMMARY[: DETAIL]`, one line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}  {}  {:<17}  {:<6}  {:<7}  {}",
            self.at,
            self.token_id,
            self.role.as_str(),
            self.method,
            self.outcome.as_str(),
            self.summary
        )?;
        match &self.detail {
            Some(d) => write!(f, ": {d}"),
            None => Ok(()),
        }
    }
}

/// What an operation is about, worked out before it runs (a delete's object is gone after).
pub(super) struct Described {
    action: OpVerb,
    kind: IpamKind,
    object_id: String,
    object_name: String,
    summary: String,
}

/// The object an operation touches and a one-line summary such as
/// `created IP address subnet 10.0.0.0/24 (n1) in address space s1`.
pub(super) fn describe(conn: &Connection, op: &IpamOp) -> Result<Described, ApiError> {
    let action = op.verb();
    let kind = op.kind();
    let id = op.target_id().as_str();
    let past = match action {
        OpVerb::Create => "created",
        OpVerb::Update => "updated",
        OpVerb::Delete => "deleted",
    };
    // A delete names the object as it was; a create or update as it is asked to be.
    let (object_name, whereabouts) = match op {
        IpamOp::CreateSpace(s) | IpamOp::UpdateSpace(s) => space_terms(s),
        IpamOp::CreateSubnet(s) | IpamOp::UpdateSubnet(s) => subnet_terms(s),
        IpamOp::CreateRange(r) | IpamOp::UpdateRange(r) => range_terms(conn, r)?,
        IpamOp::DeleteSpace(_) => get_body::<AddressSpace>(conn, kind, id)?
            .map(|s| space_terms(&s))
            .unwrap_or_default(),
        IpamOp::DeleteSubnet(_) => get_body::<IpamSubnet>(conn, kind, id)?
            .map(|s| subnet_terms(&s))
            .unwrap_or_default(),
        IpamOp::DeleteRange(_) => match get_body::<IpRange>(conn, kind, id)? {
            Some(r) => range_terms(conn, &r)?,
            None => Default::default(),
        },
    };
    let mut summary = format!("{past} {}", kind.label());
    if !object_name.is_empty() {
        summary.push_str(&format!(" {object_name}"));
    }
    summary.push_str(&format!(" ({id})"));
    if !whereabouts.is_empty() {
        summary.push_str(&format!(" {whereabouts}"));
    }
    Ok(Described {
        action,
        kind,
        object_id: id.to_string(),
        object_name,
        summary,
    })
}

/// A write to a range that is not an operation on it (a usage report, an address assigned on
/// the IPAM side): an update of the range, named by its addresses, with `what` said after.
pub(super) fn range_write(range: &IpRange, what: String) -> Described {
    let object_name = format!("{}-{}", range.start, range.end);
    Described {
        action: OpVerb::Update,
        kind: IpamKind::Range,
        object_id: range.id.as_str().to_string(),
        summary: format!("{what} in IP address range {object_name} ({})", range.id),
        object_name,
    }
}

fn space_terms(s: &AddressSpace) -> (String, String) {
    let whereabouts = match (s.kind, &s.vmm_logical_network, &s.vm_network) {
        (AddressSpaceKind::Provider, Some(ln), _) => format!("for logical network {ln}"),
        (AddressSpaceKind::Customer, _, Some(vmn)) => format!("for VM network {vmn}"),
        (AddressSpaceKind::Provider, None, _) => "(provider, no logical network)".to_string(),
        (AddressSpaceKind::Customer, _, None) => "(customer)".to_string(),
    };
    (format!("\"{}\"", s.name), whereabouts)
}

fn subnet_terms(s: &IpamSubnet) -> (String, String) {
    (
        s.network.to_string(),
        format!("in address space {}", s.address_space),
    )
}

fn range_terms(conn: &Connection, r: &IpRange) -> Result<(String, String), ApiError> {
    let network: Option<String> = conn
        .query_row(
            "SELECT network FROM subnets WHERE id = ?1",
            params![r.subnet.as_str()],
            |row| row.get(0),
        )
        .optional()?;
    let whereabouts = match network {
        Some(n) => format!("in subnet {n} ({})", r.subnet),
        None => format!("in subnet {}", r.subnet),
    };
    Ok((format!("{}-{}", r.start, r.end), whereabouts))
}

/// Appends one row.
pub(super) fn record(
    conn: &Connection,
    caller: &Caller,
    what: &Described,
    outcome: AuditOutcome,
    detail: Option<&str>,
) -> Result<(), ApiError> {
    let detail = detail.map(|d| match d.char_indices().nth(MAX_DETAIL) {
        Some((cut, _)) => format!("{}...", &d[..cut]),
        None => d.to_string(),
    });
    conn.prepare_cached(
        "INSERT INTO audit (at, token_id, role, method, action, kind, object_id, object_name, \
         summary, outcome, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        rfc3339(caller.at),
        caller.token_id,
        caller.role.as_str(),
        caller.method,
        verb_name(what.action),
        kind_name(what.kind),
        what.object_id,
        what.object_name,
        what.summary,
        outcome.as_str(),
        detail,
    ])?;
    Ok(())
}

/// Drops the oldest rows beyond the newest `retention`.
pub(super) fn prune(conn: &Connection, retention: i64) -> Result<(), ApiError> {
    conn.execute(
        "DELETE FROM audit WHERE seq <= (SELECT MAX(seq) FROM audit) - ?1",
        params![retention],
    )?;
    Ok(())
}

/// The newest `limit` rows, newest first; only those at or after `since` when given.
pub(super) fn read(
    conn: &Connection,
    limit: i64,
    since: Option<DateTime<Utc>>,
) -> Result<Vec<AuditEntry>, ApiError> {
    let mut stmt = conn.prepare(
        "SELECT seq, at, token_id, role, method, action, kind, object_id, object_name, summary, \
         outcome, detail FROM audit WHERE (?1 IS NULL OR at >= ?1) ORDER BY seq DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![since.map(rfc3339), limit], |r| {
        Ok((
            (
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
            ),
            (
                r.get::<_, String>(6)?,
                r.get::<_, String>(7)?,
                r.get::<_, String>(8)?,
                r.get::<_, String>(9)?,
                r.get::<_, String>(10)?,
                r.get::<_, Option<String>>(11)?,
            ),
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (
            (seq, at, token_id, role, method, action),
            (kind, object_id, object_name, summary, outcome, detail),
        ) = row?;
        let unreadable = |what: &str, value: &str| {
            ApiError::internal(format!(
                "audit row {seq} has an unknown {what} {value:?}; the database was changed by hand or by a newer server"
            ))
        };
        out.push(AuditEntry {
            seq,
            role: Role::parse(&role).ok_or_else(|| unreadable("role", &role))?,
            action: verb_from_name(&action).ok_or_else(|| unreadable("action", &action))?,
            kind: kind_from_name(&kind).ok_or_else(|| unreadable("kind", &kind))?,
            outcome: AuditOutcome::parse(&outcome)
                .ok_or_else(|| unreadable("outcome", &outcome))?,
            at,
            token_id,
            method,
            object_id,
            object_name,
            summary,
            detail,
        });
    }
    Ok(out)
}

fn verb_name(v: OpVerb) -> &'static str {
    match v {
        OpVerb::Create => "create",
        OpVerb::Update => "update",
        OpVerb::Delete => "delete",
    }
}

fn verb_from_name(s: &str) -> Option<OpVerb> {
    match s {
        "create" => Some(OpVerb::Create),
        "update" => Some(OpVerb::Update),
        "delete" => Some(OpVerb::Delete),
        _ => None,
    }
}
