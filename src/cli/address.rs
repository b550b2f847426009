//! `address grant|revoke|list`: addresses handed out from static IP address pools.

use std::net::IpAddr;
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};

use super::{fail, open_store};
use crate::fabric::model::{Fabric, Id, IpPool};
use crate::fabric::store::{Consumer, Grant, GrantRequest};
use crate::paths::DataPaths;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConsumerArg {
    /// A virtual machine's network adapter.
    Vm,
    /// A host.
    Host,
    /// A load balancer's VIP (from the pool's VIP addresses).
    Vip,
}

impl From<ConsumerArg> for Consumer {
    fn from(c: ConsumerArg) -> Self {
        match c {
            ConsumerArg::Vm => Consumer::VmAdapter,
            ConsumerArg::Host => Consumer::Host,
            ConsumerArg::Vip => Consumer::Vip,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum AddressCommand {
    /// Grant an address from a pool: its next free one, or --address. Prints the address.
    Grant {
        /// The static IP address pool (name or id).
        #[arg(long)]
        pool: String,
        /// Who gets it: a VM and adapter ("web-01/eth0"), a host, a VIP's service.
        #[arg(long)]
        to: String,
        /// What the holder is.
        #[arg(long = "as", value_enum, default_value_t = ConsumerArg::Vm)]
        consumer: ConsumerArg,
        /// A specific address instead of the next free one.
        #[arg(long)]
        address: Option<IpAddr>,
    },
    /// Give an address back to its pool.
    Revoke {
        /// The static IP address pool (name or id).
        #[arg(long)]
        pool: String,
        #[arg(long)]
        address: IpAddr,
    },
    /// List granted addresses, of one pool or of all.
    List {
        /// Only this pool (name or id).
        #[arg(long)]
        pool: Option<String>,
        /// One JSON document instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// The pool a name or id names; an unknown or ambiguous name says how to fix it.
fn find_pool<'a>(fabric: &'a Fabric, wanted: &str) -> Result<&'a IpPool, String> {
    if let Ok(id) = wanted.parse::<Id>()
        && let Some(p) = fabric.ip_pools.get(&id)
    {
        return Ok(p);
    }
    let matches: Vec<&IpPool> = fabric
        .ip_pools
        .values()
        .filter(|p| p.name.eq_ignore_ascii_case(wanted))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(format!(
            "--pool: no static IP address pool is named \"{wanted}\". `fabric-console address list` shows the pools with grants; the console's Fabric ▸ Logical Networks ▸ IP Pools lists them all."
        )),
        many => Err(format!(
            "--pool: {} pools are named \"{wanted}\"; pass one of their ids: {}.",
            many.len(),
            many.iter()
                .map(|p| p.id.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The table of grants. A reader that stops early (`| head`) ends the listing quietly.
fn print_grants(fabric: &Fabric, grants: &[Grant]) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    writeln!(
        out,
        "{:<40} {:<39} {:<20} {:<32} GRANTED",
        "POOL", "ADDRESS", "AS", "HOLDER"
    )?;
    for g in grants {
        let pool = fabric
            .ip_pools
            .get(&g.pool)
            .map(|p| p.name.as_str())
            .unwrap_or("(removed)");
        writeln!(
            out,
            "{:<40} {:<39} {:<20} {:<32} {}",
            pool,
            g.address,
            g.consumer.label(),
            g.holder,
            g.granted_at.format("%Y-%m-%d %H:%M:%S")
        )?;
    }
    out.flush()
}

pub(super) fn run(paths: &DataPaths, cmd: AddressCommand) -> ExitCode {
    let store = match open_store(paths) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let fabric = store.fabric();
    match cmd {
        AddressCommand::Grant {
            pool,
            to,
            consumer,
            address,
        } => {
            let pool = match find_pool(&fabric, &pool) {
                Ok(p) => p,
                Err(e) => return fail(e),
            };
            let request = GrantRequest {
                pool: pool.id,
                address,
                holder: to,
                consumer: consumer.into(),
            };
            match store.grant(&request) {
                Ok(g) => {
                    println!("{}", g.address);
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        AddressCommand::Revoke { pool, address } => {
            let pool = match find_pool(&fabric, &pool) {
                Ok(p) => p,
                Err(e) => return fail(e),
            };
            match store.revoke(pool.id, address) {
                Ok(g) => {
                    println!("revoked {} from {} ({})", g.address, pool.name, g.holder);
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        AddressCommand::List { pool, json } => {
            let pool = match pool.as_deref().map(|p| find_pool(&fabric, p)).transpose() {
                Ok(p) => p.map(|p| p.id),
                Err(e) => return fail(e),
            };
            let grants = match store.grants(pool) {
                Ok(g) => g,
                Err(e) => return fail(e),
            };
            if json {
                let doc = serde_json::json!({ "grants": grants });
                println!(
                    "{}",
                    serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".into())
                );
            } else if let Err(e) = print_grants(&fabric, &grants)
                && e.kind() != std::io::ErrorKind::BrokenPipe
            {
                return fail(format!("could not write to standard output: {e}"));
            }
            ExitCode::SUCCESS
        }
    }
}
