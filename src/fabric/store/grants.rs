//! Addresses granted from static IP address pools, as the virtual-machine manager hands them out:
//! the next free address of a pool (or a chosen one) to a named consumer — a VM's network
//! adapter, a host, or a load balancer's VIP from the pool's VIP set.
//!
//! Grants live in the fabric database beside the pools (table `address_grants`, one row per
//! pool and address). A grant is chosen and written in one immediate transaction, and the
//! (pool, address) key refuses a second row, so two grants never hand out the same address,
//! also when several processes share the data directory.
//!
//! Addresses an IPAM server holds inside a pool's range that the console did not grant
//! (assigned there by hand) are kept per service in `ipam_held_addresses`, as the last sync read
//! them; a grant never hands one out.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::db::{Row, Tx, params};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{FabricStore, StoreError};
use crate::fabric::model::{Id, IpPool};

crate::labelled_enum! {
    /// What an address is granted to.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Consumer {
        VmAdapter => "VM network adapter",
        Host => "Host",
        Vip => "Load-balancer VIP",
    }
}

/// One address handed out from a pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub pool: Id,
    pub address: IpAddr,
    /// Who holds it: a VM and adapter ("web-01/eth0"), a host name, a VIP's service name.
    pub holder: String,
    pub consumer: Consumer,
    pub granted_at: DateTime<Utc>,
}

/// What a grant asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRequest {
    pub pool: Id,
    /// A specific address, or `None` for the pool's next free one.
    pub address: Option<IpAddr>,
    pub holder: String,
    pub consumer: Consumer,
}

/// Longest holder name kept.
pub const MAX_HOLDER: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error("No static IP address pool has the id {0}. Choose a pool that exists.")]
    NoSuchPool(Id),
    #[error("Holder: name who gets the address (a VM and adapter, a host, a VIP's service).")]
    NoHolder,
    #[error("Holder: at most {MAX_HOLDER} characters.")]
    HolderTooLong,
    #[error(
        "Address: {address} is outside the pool {pool}'s range {start} – {end}. Choose an address in the range or leave it empty for the next free one."
    )]
    OutsideRange {
        address: IpAddr,
        pool: String,
        start: IpAddr,
        end: IpAddr,
    },
    #[error(
        "Address: {address} is reserved in the pool {pool} and is never granted. Choose another address."
    )]
    Reserved { address: IpAddr, pool: String },
    #[error(
        "Address: {address} is one of the pool {pool}'s VIP addresses; only a load-balancer VIP gets it. Choose another address or grant it as a VIP."
    )]
    VipAddress { address: IpAddr, pool: String },
    #[error(
        "Address: {address} is not one of the pool {pool}'s VIP addresses. A load-balancer VIP comes from the pool's VIP set; add the address to it in the pool's properties."
    )]
    NotAVip { address: IpAddr, pool: String },
    #[error(
        "Address: {address} in the pool {pool} is already granted to {holder}. Choose another address or revoke that grant first."
    )]
    Taken {
        address: IpAddr,
        pool: String,
        holder: String,
    },
    #[error(
        "Address: {address} in the pool {pool} is in use on the IPAM side ({holder}). Choose another address; it can be granted once the IPAM server releases it and a sync has read that."
    )]
    HeldOnIpam {
        address: IpAddr,
        pool: String,
        holder: String,
    },
    #[error(
        "The pool {pool} has no free {what} left ({granted} granted, {reserved} reserved, {vips} VIPs, {held} in use on the IPAM side, of {total} addresses). Revoke a grant, widen the range or use another pool."
    )]
    Exhausted {
        pool: String,
        what: &'static str,
        granted: u128,
        reserved: u128,
        vips: u128,
        held: u128,
        total: u128,
    },
    #[error("Address: {address} is not granted from the pool {pool}; nothing was revoked.")]
    NotGranted { address: IpAddr, pool: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<crate::db::DbError> for GrantError {
    fn from(e: crate::db::DbError) -> Self {
        GrantError::Store(StoreError::Database(e))
    }
}

fn number(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    }
}

fn address_of(n: u128, v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4(std::net::Ipv4Addr::from(n as u32))
    } else {
        IpAddr::V6(std::net::Ipv6Addr::from(n))
    }
}

fn in_range(pool: &IpPool, a: &IpAddr) -> bool {
    a.is_ipv4() == pool.range_start.is_ipv4() && *a >= pool.range_start && *a <= pool.range_end
}

/// What is taken in a pool: addresses granted by the console and addresses in use on the IPAM
/// side, each with who holds it.
#[derive(Debug, Clone, Default)]
pub struct Taken {
    pub granted: HashMap<IpAddr, String>,
    /// In use on an IPAM server: "holder (server)".
    pub held: HashMap<IpAddr, String>,
}

impl Taken {
    fn contains(&self, a: &IpAddr) -> bool {
        self.granted.contains_key(a) || self.held.contains_key(a)
    }
}

/// The address a request gets from `pool` with `taken` already handed out or in use on the IPAM
/// side, or why none. Reserved addresses are never granted; VIP addresses go only to VIPs, and
/// VIPs only get VIP addresses.
pub fn choose(pool: &IpPool, taken: &Taken, request: &GrantRequest) -> Result<IpAddr, GrantError> {
    choose_from(pool, taken, request, None)
}

/// [`choose`], with the next free address searched from `hint` on: every address of the range
/// below it is known to be taken (a batch of grants from one pool walks the range once).
fn choose_from(
    pool: &IpPool,
    taken: &Taken,
    request: &GrantRequest,
    hint: Option<u128>,
) -> Result<IpAddr, GrantError> {
    let granted = &taken.granted;
    let name = || pool.name.clone();
    let reserved = &pool.settings.reserved;
    let vips = &pool.settings.vips;
    if let Some(address) = request.address {
        if !in_range(pool, &address) {
            return Err(GrantError::OutsideRange {
                address,
                pool: name(),
                start: pool.range_start,
                end: pool.range_end,
            });
        }
        if reserved.contains(&address) {
            return Err(GrantError::Reserved {
                address,
                pool: name(),
            });
        }
        match (request.consumer, vips.contains(&address)) {
            (Consumer::Vip, false) => {
                return Err(GrantError::NotAVip {
                    address,
                    pool: name(),
                });
            }
            (Consumer::VmAdapter | Consumer::Host, true) => {
                return Err(GrantError::VipAddress {
                    address,
                    pool: name(),
                });
            }
            _ => {}
        }
        if let Some(holder) = granted.get(&address) {
            return Err(GrantError::Taken {
                address,
                pool: name(),
                holder: holder.clone(),
            });
        }
        if let Some(holder) = taken.held.get(&address) {
            return Err(GrantError::HeldOnIpam {
                address,
                pool: name(),
                holder: holder.clone(),
            });
        }
        return Ok(address);
    }
    let free = |a: &IpAddr| !taken.contains(a) && !reserved.contains(a);
    let found = if request.consumer == Consumer::Vip {
        vips.iter()
            .filter(|a| in_range(pool, a))
            .find(|a| free(a))
            .copied()
    } else {
        // The lowest address that is neither reserved, a VIP nor granted. Each address skipped
        // is one of those, so the walk is at most as long as they are many.
        let v4 = pool.range_start.is_ipv4();
        let (start, end) = (number(pool.range_start), number(pool.range_end));
        let mut n = hint.map_or(start, |h| h.max(start));
        let mut found = None;
        while n <= end {
            let a = address_of(n, v4);
            if free(&a) && !vips.contains(&a) {
                found = Some(a);
                break;
            }
            match n.checked_add(1) {
                Some(next) => n = next,
                None => break,
            }
        }
        found
    };
    found.ok_or_else(|| {
        let total = if pool.range_end >= pool.range_start {
            number(pool.range_end) - number(pool.range_start) + 1
        } else {
            0
        };
        GrantError::Exhausted {
            pool: name(),
            what: if request.consumer == Consumer::Vip {
                "VIP address"
            } else {
                "address"
            },
            granted: granted.len() as u128,
            reserved: reserved.iter().filter(|a| in_range(pool, a)).count() as u128,
            vips: vips.iter().filter(|a| in_range(pool, a)).count() as u128,
            held: taken
                .held
                .keys()
                .filter(|a| !granted.contains_key(a))
                .count() as u128,
            total,
        }
    })
}

fn check_holder(holder: &str) -> Result<String, GrantError> {
    let holder = holder.trim();
    if holder.is_empty() {
        return Err(GrantError::NoHolder);
    }
    if holder.chars().count() > MAX_HOLDER {
        return Err(GrantError::HolderTooLong);
    }
    Ok(holder.to_string())
}

fn read_pool(conn: &Tx<'_>, pool: Id) -> Result<IpPool, GrantError> {
    let body: Option<String> = conn.value(
        "SELECT body FROM ip_pools WHERE id = ?1",
        params![pool.to_string()],
    )?;
    let body = body.ok_or(GrantError::NoSuchPool(pool))?;
    serde_json::from_str(&body).map_err(|e| {
        GrantError::Store(StoreError::Damaged {
            kind: crate::fabric::model::ObjectKind::IpPool,
            id: pool.to_string(),
            message: e.to_string(),
        })
    })
}

/// A pool's grants and the addresses IPAM servers hold in it.
fn taken_in(conn: &Tx<'_>, pool: Id) -> Result<Taken, GrantError> {
    let rows = conn.query(
        "SELECT h.address, h.holder, s.name FROM ipam_held_addresses h
         LEFT JOIN network_services s ON s.id = h.service WHERE h.pool = ?1",
        params![pool.to_string()],
    )?;
    let mut held = HashMap::new();
    for r in rows {
        let (address, holder, server) = (
            r.get::<String>(0)?,
            r.get::<String>(1)?,
            r.get::<Option<String>>(2)?,
        );
        if let Ok(a) = address.parse() {
            let holder = match server {
                Some(s) => format!("{holder} on {s}"),
                None => holder,
            };
            held.insert(a, holder);
        }
    }
    Ok(Taken {
        granted: granted_in(conn, pool)?,
        held,
    })
}

fn granted_in(conn: &Tx<'_>, pool: Id) -> Result<HashMap<IpAddr, String>, GrantError> {
    let rows = conn.query(
        "SELECT address, holder FROM address_grants WHERE pool = ?1",
        params![pool.to_string()],
    )?;
    let mut out = HashMap::new();
    for r in rows {
        let (address, holder) = (r.get::<String>(0)?, r.get::<String>(1)?);
        if let Ok(a) = address.parse() {
            out.insert(a, holder);
        }
    }
    Ok(out)
}

fn grant_of(row: &Row) -> Result<Option<Grant>, crate::db::DbError> {
    let pool: String = row.get(0)?;
    let address: String = row.get(1)?;
    let consumer: String = row.get(3)?;
    let granted_at: String = row.get(4)?;
    Ok((|| {
        Some(Grant {
            pool: pool.parse().ok()?,
            address: address.parse().ok()?,
            holder: row.get::<String>(2).ok()?,
            consumer: serde_json::from_value(serde_json::Value::String(consumer)).ok()?,
            granted_at: granted_at.parse().ok()?,
        })
    })())
}

/// Counts grant changes (meta `grants_revision`), so a sync can tell whether usage changed.
fn bump(conn: &Tx<'_>) -> Result<(), crate::db::DbError> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('grants_revision', '1')
         ON CONFLICT(key) DO UPDATE SET value = CAST(CAST(meta.value AS INTEGER) + 1 AS TEXT)",
        params![],
    )?;
    // Other consoles on the same PostgreSQL database read usage again.
    conn.notify(super::REVISION_CHANNEL, "grants")?;
    Ok(())
}

fn consumer_text(c: Consumer) -> String {
    serde_json::to_value(c)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// How many addresses of a pool are granted: to VM adapters and hosts, and to VIPs; and how
/// many others IPAM servers hold in use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolGrants {
    pub plain: u64,
    pub vips: u64,
    /// In use on the IPAM side and not granted by the console.
    pub held: u64,
}

/// An address an IPAM server holds in use inside a pool's range that the console did not grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamHeld {
    pub service: Id,
    pub pool: Id,
    pub address: IpAddr,
    pub holder: String,
}

/// Grant counts per pool.
pub type GrantCounts = HashMap<Id, PoolGrants>;

impl FabricStore {
    /// Grants an address: the pool's next free one, or the one asked for. Chosen and written
    /// in one immediate transaction, so concurrent grants (in this or another process) never
    /// get the same address.
    pub fn grant(&self, request: &GrantRequest) -> Result<Grant, GrantError> {
        let holder = check_holder(&request.holder)?;
        let mut state = self.lock();
        let tx = state.conn.write()?;
        let pool = read_pool(&tx, request.pool)?;
        let taken = taken_in(&tx, request.pool)?;
        let address = choose(&pool, &taken, request)?;
        let grant = Grant {
            pool: request.pool,
            address,
            holder,
            consumer: request.consumer,
            granted_at: Utc::now(),
        };
        tx.execute(
            "INSERT INTO address_grants (pool, address, holder, consumer, granted_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                grant.pool.to_string(),
                grant.address.to_string(),
                &grant.holder,
                consumer_text(grant.consumer),
                grant.granted_at.to_rfc3339(),
            ],
        )?;
        bump(&tx)?;
        tx.commit()?;
        Ok(grant)
    }

    /// Grants every request in one transaction: all of them, or none when one cannot be
    /// granted (the error says which). For bulk work: the demo, an import of grants.
    pub fn grant_batch(&self, requests: &[GrantRequest]) -> Result<Vec<Grant>, GrantError> {
        let mut state = self.lock();
        let tx = state.conn.write()?;
        // Per pool: the pool, what is granted, and where the next free address search starts.
        struct Walk {
            pool: IpPool,
            taken: Taken,
            hint: Option<u128>,
        }
        let mut pools: HashMap<Id, Walk> = HashMap::new();
        let now = Utc::now();
        let mut out = Vec::with_capacity(requests.len());
        {
            let insert = |values: &[crate::db::Value]| {
                tx.execute(
                    "INSERT INTO address_grants (pool, address, holder, consumer, granted_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    values,
                )
            };
            for request in requests {
                let holder = check_holder(&request.holder)?;
                let walk = match pools.entry(request.pool) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => e.insert(Walk {
                        pool: read_pool(&tx, request.pool)?,
                        taken: taken_in(&tx, request.pool)?,
                        hint: None,
                    }),
                };
                let Walk { pool, taken, hint } = walk;
                let next_free = request.address.is_none() && request.consumer != Consumer::Vip;
                let address =
                    choose_from(pool, taken, request, if next_free { *hint } else { None })?;
                if next_free {
                    *hint = Some(number(address) + 1);
                }
                taken.granted.insert(address, holder.clone());
                let grant = Grant {
                    pool: request.pool,
                    address,
                    holder,
                    consumer: request.consumer,
                    granted_at: now,
                };
                insert(params![
                    grant.pool.to_string(),
                    grant.address.to_string(),
                    &grant.holder,
                    consumer_text(grant.consumer),
                    grant.granted_at.to_rfc3339(),
                ])?;
                out.push(grant);
            }
        }
        bump(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Revokes every grant of every pool (a demo starting over).
    pub fn revoke_all(&self) -> Result<usize, StoreError> {
        let mut state = self.lock();
        let tx = state.conn.write()?;
        let n = tx.execute("DELETE FROM address_grants", params![])?;
        bump(&tx)?;
        tx.commit()?;
        Ok(n)
    }

    /// How many times grants changed in this database (any process): a sync reports usage
    /// again only when this or the fabric changed.
    pub fn grants_revision(&self) -> Result<u64, StoreError> {
        let mut state = self.lock();
        let tx = state.conn.read()?;
        let v: Option<String> = tx.value(
            "SELECT value FROM meta WHERE key = 'grants_revision'",
            params![],
        )?;
        tx.commit()?;
        Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    /// Revokes the grant of `address` from `pool`; says so when there is none.
    pub fn revoke(&self, pool: Id, address: IpAddr) -> Result<Grant, GrantError> {
        let mut state = self.lock();
        let tx = state.conn.write()?;
        let found = tx
            .query_opt(
                "SELECT pool, address, holder, consumer, granted_at FROM address_grants
                 WHERE pool = ?1 AND address = ?2",
                params![pool.to_string(), address.to_string()],
            )?
            .map(|r| grant_of(&r))
            .transpose()?
            .flatten();
        let Some(grant) = found else {
            let name = read_pool(&tx, pool)
                .map(|p| p.name)
                .unwrap_or_else(|_| pool.to_string());
            return Err(GrantError::NotGranted {
                address,
                pool: name,
            });
        };
        tx.execute(
            "DELETE FROM address_grants WHERE pool = ?1 AND address = ?2",
            params![pool.to_string(), address.to_string()],
        )?;
        bump(&tx)?;
        tx.commit()?;
        Ok(grant)
    }

    /// The grants of one pool, or of every pool, in address order.
    pub fn grants(&self, pool: Option<Id>) -> Result<Vec<Grant>, StoreError> {
        let mut state = self.lock();
        let tx = state.conn.read()?;
        let rows = tx.query(
            "SELECT pool, address, holder, consumer, granted_at FROM address_grants
             WHERE CAST(?1 AS TEXT) IS NULL OR pool = ?1",
            params![pool.map(|p| p.to_string())],
        )?;
        tx.commit()?;
        let mut out = Vec::new();
        for row in rows {
            if let Some(g) = grant_of(&row)? {
                out.push(g);
            }
        }
        out.sort_by_key(|g| (g.pool, g.address));
        Ok(out)
    }

    /// How many addresses each pool has granted, VIPs apart.
    pub fn grant_counts(&self) -> Result<GrantCounts, StoreError> {
        let mut state = self.lock();
        let tx = state.conn.read()?;
        let rows = tx.query(
            "SELECT pool, consumer = 'vip', COUNT(*) FROM address_grants GROUP BY pool, consumer = 'vip'",
            params![],
        )?;
        let mut out = GrantCounts::new();
        for r in rows {
            let (pool, vip, n) = (r.get::<String>(0)?, r.get::<bool>(1)?, r.get::<i64>(2)?);
            if let Ok(id) = pool.parse() {
                let entry = out.entry(id).or_default();
                if vip {
                    entry.vips += n.max(0) as u64;
                } else {
                    entry.plain += n.max(0) as u64;
                }
            }
        }
        let rows = tx.query(
            "SELECT h.pool, COUNT(DISTINCT h.address) FROM ipam_held_addresses h
             WHERE NOT EXISTS (SELECT 1 FROM address_grants g
                               WHERE g.pool = h.pool AND g.address = h.address)
             GROUP BY h.pool",
            params![],
        )?;
        tx.commit()?;
        for r in rows {
            let (pool, n) = (r.get::<String>(0)?, r.get::<i64>(1)?);
            if let Ok(id) = pool.parse() {
                out.entry(id).or_default().held = n.max(0) as u64;
            }
        }
        Ok(out)
    }

    /// Replaces what one service's IPAM server holds in use in the console's pools (`held`:
    /// pool, address, holder), as a sync just read it. `true` when it changed; a change counts
    /// as a grants change, so usage is reported again and the views refresh.
    pub fn replace_ipam_held(
        &self,
        service: Id,
        held: &[(Id, IpAddr, String)],
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let tx = state.conn.write()?;
        let sid = service.to_string();
        let mut now: Vec<(String, String, String)> = held
            .iter()
            .map(|(p, a, h)| (p.to_string(), a.to_string(), h.clone()))
            .collect();
        now.sort();
        now.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
        let mut before: Vec<(String, String, String)> = tx
            .query(
                "SELECT pool, address, holder FROM ipam_held_addresses WHERE service = ?1",
                params![&sid],
            )?
            .iter()
            .map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .collect::<Result<_, crate::db::DbError>>()?;
        before.sort();
        if before == now {
            return Ok(false);
        }
        tx.execute(
            "DELETE FROM ipam_held_addresses WHERE service = ?1",
            params![&sid],
        )?;
        for (pool, address, holder) in &now {
            tx.execute(
                "INSERT INTO ipam_held_addresses (service, pool, address, holder)
                 VALUES (?1, ?2, ?3, ?4)",
                params![&sid, pool, address, holder],
            )?;
        }
        bump(&tx)?;
        tx.commit()?;
        Ok(true)
    }

    /// The addresses IPAM servers hold in use in one pool, or in every pool, in address order.
    pub fn ipam_held(&self, pool: Option<Id>) -> Result<Vec<IpamHeld>, StoreError> {
        let mut state = self.lock();
        let tx = state.conn.read()?;
        let rows = tx.query(
            "SELECT service, pool, address, holder FROM ipam_held_addresses
             WHERE CAST(?1 AS TEXT) IS NULL OR pool = ?1",
            params![pool.map(|p| p.to_string())],
        )?;
        tx.commit()?;
        let mut out = Vec::new();
        for r in rows {
            let (service, pool, address, holder) = (
                r.get::<String>(0)?,
                r.get::<String>(1)?,
                r.get::<String>(2)?,
                r.get::<String>(3)?,
            );
            if let (Ok(service), Ok(pool), Ok(address)) =
                (service.parse(), pool.parse(), address.parse())
            {
                out.push(IpamHeld {
                    service,
                    pool,
                    address,
                    holder,
                });
            }
        }
        out.sort_by_key(|h| (h.pool, h.address, h.service));
        Ok(out)
    }

    /// `grant` on the blocking thread pool.
    pub async fn grant_async(&self, request: GrantRequest) -> Result<Grant, GrantError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.grant(&request))
            .await
            .map_err(|e| GrantError::Store(StoreError::Task(e.to_string())))?
    }

    /// `revoke` on the blocking thread pool.
    pub async fn revoke_async(&self, pool: Id, address: IpAddr) -> Result<Grant, GrantError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.revoke(pool, address))
            .await
            .map_err(|e| GrantError::Store(StoreError::Task(e.to_string())))?
    }

    /// `grants` on the blocking thread pool.
    pub async fn grants_async(&self, pool: Option<Id>) -> Result<Vec<Grant>, StoreError> {
        let store = self.clone();
        super::spawn_blocking(move || store.grants(pool)).await
    }

    /// `grants_revision` on the blocking thread pool.
    pub async fn grants_revision_async(&self) -> Result<u64, StoreError> {
        let store = self.clone();
        super::spawn_blocking(move || store.grants_revision()).await
    }

    /// `ipam_held` on the blocking thread pool.
    pub async fn ipam_held_async(&self, pool: Option<Id>) -> Result<Vec<IpamHeld>, StoreError> {
        let store = self.clone();
        super::spawn_blocking(move || store.ipam_held(pool)).await
    }

    /// `replace_ipam_held` on the blocking thread pool.
    pub async fn replace_ipam_held_async(
        &self,
        service: Id,
        held: Vec<(Id, IpAddr, String)>,
    ) -> Result<bool, StoreError> {
        let store = self.clone();
        super::spawn_blocking(move || store.replace_ipam_held(service, &held)).await
    }

    /// `grant_counts` on the blocking thread pool.
    pub async fn grant_counts_async(&self) -> Result<GrantCounts, StoreError> {
        let store = self.clone();
        super::spawn_blocking(move || store.grant_counts()).await
    }
}

/// A pool's grants as (address, holder), in address order.
fn sorted_grants(conn: &Tx<'_>, pool: &IpPool) -> Result<Vec<(IpAddr, String)>, StoreError> {
    let granted = granted_in(conn, pool.id).map_err(|e| match e {
        GrantError::Store(s) => s,
        other => StoreError::Task(other.to_string()),
    })?;
    let mut out: Vec<(IpAddr, String)> = granted.into_iter().collect();
    out.sort();
    Ok(out)
}

/// "10.0.0.5 (web-01/eth0), 10.0.0.6 (web-02/eth0) and 4 more": the first `n` grants.
fn name_some(grants: &[(IpAddr, String)], n: usize) -> String {
    let shown: Vec<String> = grants
        .iter()
        .take(n)
        .map(|(a, holder)| format!("{a} ({holder})"))
        .collect();
    match grants.len().saturating_sub(shown.len()) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

/// Grants a pool edit would strand: addresses outside the new range or now reserved, with
/// their holders. Checked before a pool is saved.
pub(super) fn stranded(conn: &Tx<'_>, pool: &IpPool) -> Result<Vec<(IpAddr, String)>, StoreError> {
    Ok(sorted_grants(conn, pool)?
        .into_iter()
        .filter(|(a, _)| !in_range(pool, a) || pool.settings.reserved.contains(a))
        .collect())
}

/// The refusal of a pool edit that strands grants: on the pool's range (or its reserved list
/// when the range still holds them), naming the addresses and their holders.
pub(super) fn stranded_error(
    pool: &IpPool,
    grants: &[(IpAddr, String)],
) -> crate::fabric::validate::ValidationError {
    use crate::fabric::validate::{Field, Rule, ValidationError};
    let outside = grants.iter().any(|(a, _)| !in_range(pool, a));
    let (field, what) = if outside {
        (Field::RangeEnd, "the new range would leave out")
    } else {
        (Field::ReservedAddresses, "the reserved list would take")
    };
    let them = if grants.len() == 1 { "it" } else { "them" };
    ValidationError {
        kind: crate::fabric::model::ObjectKind::IpPool,
        object: pool.id,
        name: pool.name.clone(),
        field,
        message: format!(
            "{}: {} granted from this pool, which {what}. Revoke {them} first (fabric-console address revoke), or keep {them} available.",
            field.label(),
            name_some(grants, 5),
        ),
        rule: Rule::GrantStranded,
    }
}

/// The refusal to delete a pool that has granted addresses, naming a few.
pub(super) fn deletion_refused(
    conn: &Tx<'_>,
    pool: &IpPool,
) -> Result<Option<crate::fabric::validate::ValidationError>, StoreError> {
    use crate::fabric::validate::{Field, Rule, ValidationError};
    let some = sorted_grants(conn, pool)?;
    if some.is_empty() {
        return Ok(None);
    }
    Ok(Some(ValidationError {
        kind: crate::fabric::model::ObjectKind::IpPool,
        object: pool.id,
        name: pool.name.clone(),
        field: Field::Name,
        message: format!(
            "{} address{} granted from this pool ({}), so it is not deleted. Revoke them first (fabric-console address revoke), then delete it.",
            some.len(),
            if some.len() == 1 { " is" } else { "es are" },
            name_some(&some, 3),
        ),
        rule: Rule::GrantStranded,
    }))
}

/// Forgets the grants of pools that no longer exist (after an import).
pub(super) fn forget_orphans(conn: &Tx<'_>) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM address_grants WHERE pool NOT IN (SELECT id FROM ip_pools)",
        params![],
    )?;
    bump(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fabric::demo::demo_fabric;
    use crate::fabric::model::{FabricChange, FabricObject, ObjectKind};

    /// A store holding a demo fabric whose first pool is 10.9.0.10 – 10.9.0.19 with .10
    /// reserved and .18, .19 VIPs.
    fn store_with_pool() -> (FabricStore, IpPool) {
        let store = FabricStore::open_in_memory().unwrap();
        let fabric = demo_fabric(20, 2);
        store.replace_all(fabric.clone()).unwrap();
        let mut pool = fabric.ip_pools.values().next().unwrap().clone();
        // Keep the range inside the pool's /24 subnet: .10 – .19.
        let base = match pool.range_start {
            IpAddr::V4(v) => u32::from(v) & !0xff,
            IpAddr::V6(_) => unreachable!("demo pools are IPv4"),
        };
        let at = |n: u32| IpAddr::V4(std::net::Ipv4Addr::from(base + n));
        pool.range_start = at(10);
        pool.range_end = at(19);
        pool.settings.reserved = [at(10)].into();
        pool.settings.vips = [at(18), at(19)].into();
        store
            .apply(&[FabricChange::Put(FabricObject::IpPool(pool.clone()))])
            .unwrap();
        (store, pool)
    }

    fn request(pool: &IpPool, address: Option<IpAddr>, consumer: Consumer) -> GrantRequest {
        GrantRequest {
            pool: pool.id,
            address,
            holder: "web-01/eth0".into(),
            consumer,
        }
    }

    #[test]
    fn the_next_free_address_skips_reserved_vips_and_grants() {
        let (store, pool) = store_with_pool();
        let at = |n: u8| {
            let IpAddr::V4(s) = pool.range_start else {
                unreachable!()
            };
            let o = s.octets();
            IpAddr::V4(std::net::Ipv4Addr::new(o[0], o[1], o[2], n))
        };
        let mut got = Vec::new();
        for _ in 0..7 {
            got.push(
                store
                    .grant(&request(&pool, None, Consumer::VmAdapter))
                    .unwrap()
                    .address,
            );
        }
        assert_eq!(got, (11..=17).map(at).collect::<Vec<_>>());
        // The VIPs are left; only a VIP gets them.
        let err = store
            .grant(&request(&pool, None, Consumer::Host))
            .unwrap_err();
        assert!(
            err.to_string().contains(
                "has no free address left (7 granted, 1 reserved, 2 VIPs, 0 in use on the IPAM side, of 10 addresses)"
            ),
            "{err}"
        );
        assert_eq!(
            store
                .grant(&request(&pool, None, Consumer::Vip))
                .unwrap()
                .address,
            at(18)
        );
        assert_eq!(
            store
                .grant(&request(&pool, None, Consumer::Vip))
                .unwrap()
                .address,
            at(19)
        );
        let err = store
            .grant(&request(&pool, None, Consumer::Vip))
            .unwrap_err();
        assert!(
            err.to_string().contains("no free VIP address left"),
            "{err}"
        );
        // Revoking frees the address for the next grant.
        let revoked = store.revoke(pool.id, at(13)).unwrap();
        assert_eq!(revoked.holder, "web-01/eth0");
        assert_eq!(
            store
                .grant(&request(&pool, None, Consumer::Host))
                .unwrap()
                .address,
            at(13)
        );
        let err = store.revoke(pool.id, at(10)).unwrap_err();
        assert!(matches!(err, GrantError::NotGranted { .. }), "{err}");
        assert_eq!(store.grants(Some(pool.id)).unwrap().len(), 9);
        assert_eq!(
            store.grant_counts().unwrap().get(&pool.id),
            Some(&PoolGrants {
                plain: 7,
                vips: 2,
                held: 0
            })
        );
    }

    #[test]
    fn a_specific_address_follows_the_rules() {
        let (store, pool) = store_with_pool();
        let IpAddr::V4(s) = pool.range_start else {
            unreachable!()
        };
        let o = s.octets();
        let at = |n: u8| IpAddr::V4(std::net::Ipv4Addr::new(o[0], o[1], o[2], n));
        let ask = |address: u8, consumer| store.grant(&request(&pool, Some(at(address)), consumer));
        assert!(matches!(
            ask(10, Consumer::Host),
            Err(GrantError::Reserved { .. })
        ));
        assert!(matches!(
            ask(9, Consumer::Host),
            Err(GrantError::OutsideRange { .. })
        ));
        assert!(matches!(
            ask(18, Consumer::Host),
            Err(GrantError::VipAddress { .. })
        ));
        assert!(matches!(
            ask(12, Consumer::Vip),
            Err(GrantError::NotAVip { .. })
        ));
        assert_eq!(ask(15, Consumer::VmAdapter).unwrap().address, at(15));
        let err = ask(15, Consumer::Host).unwrap_err();
        assert!(
            err.to_string().contains("already granted to web-01/eth0"),
            "{err}"
        );
        assert_eq!(ask(18, Consumer::Vip).unwrap().address, at(18));
        let mut blank = request(&pool, None, Consumer::Host);
        blank.holder = "  ".into();
        assert!(matches!(store.grant(&blank), Err(GrantError::NoHolder)));
        let mut missing = request(&pool, None, Consumer::Host);
        missing.pool = uuid::Uuid::new_v4();
        assert!(matches!(
            store.grant(&missing),
            Err(GrantError::NoSuchPool(_))
        ));
    }

    #[test]
    fn a_pool_edit_never_strands_a_grant_and_a_pool_with_grants_is_not_deleted() {
        let (store, pool) = store_with_pool();
        let g = store.grant(&request(&pool, None, Consumer::Host)).unwrap();
        let mut narrower = pool.clone();
        narrower.settings.reserved.insert(g.address);
        let err = store
            .apply(&[FabricChange::Put(FabricObject::IpPool(narrower))])
            .unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("{} (web-01/eth0)", g.address)),
            "{err}"
        );
        assert_eq!(store.fabric().ip_pools[&pool.id], pool, "nothing was saved");
        let err = store
            .apply(&[FabricChange::Delete(ObjectKind::IpPool, pool.id)])
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("1 address is granted from this pool"),
            "{err}"
        );
        assert!(store.fabric().ip_pools.contains_key(&pool.id));
        store.revoke(pool.id, g.address).unwrap();
        store
            .apply(&[FabricChange::Delete(ObjectKind::IpPool, pool.id)])
            .unwrap();
    }

    #[test]
    fn a_batch_grants_all_or_nothing() {
        let (store, pool) = store_with_pool();
        let many = |n: usize| {
            (0..n)
                .map(|i| GrantRequest {
                    holder: format!("vm-{i}"),
                    ..request(&pool, None, Consumer::VmAdapter)
                })
                .collect::<Vec<_>>()
        };
        // Seven plain addresses are free: eight fail as a whole.
        assert!(matches!(
            store.grant_batch(&many(8)),
            Err(GrantError::Exhausted { .. })
        ));
        assert!(
            store.grants(None).unwrap().is_empty(),
            "nothing was granted"
        );
        let granted = store.grant_batch(&many(7)).unwrap();
        let single: Vec<IpAddr> = granted.iter().map(|g| g.address).collect();
        let mut sorted = single.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 7);
        assert!(
            single
                .iter()
                .all(|a| !pool.settings.reserved.contains(a) && !pool.settings.vips.contains(a))
        );
    }

    #[test]
    fn grants_from_two_connections_at_once_never_share_an_address() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fabric.db");
        let first = FabricStore::open(&path).unwrap();
        let fabric = demo_fabric(20, 2);
        first.replace_all(fabric.clone()).unwrap();
        let pool = fabric.ip_pools.values().next().unwrap().clone();
        let second = FabricStore::open(&path).unwrap();
        let grant_many = |store: FabricStore, holder: &'static str| {
            let pool = pool.id;
            std::thread::spawn(move || {
                (0..40)
                    .map(|i| {
                        store
                            .grant(&GrantRequest {
                                pool,
                                address: None,
                                holder: format!("{holder}-{i}"),
                                consumer: Consumer::VmAdapter,
                            })
                            .unwrap()
                            .address
                    })
                    .collect::<Vec<_>>()
            })
        };
        let a = grant_many(first.clone(), "a");
        let b = grant_many(second, "b");
        let mut all = a.join().unwrap();
        all.extend(b.join().unwrap());
        let distinct: std::collections::BTreeSet<_> = all.iter().collect();
        assert_eq!(distinct.len(), 80);
        assert_eq!(first.grants(Some(pool.id)).unwrap().len(), 80);
    }
}
