//! The wizard's Test page checks against a NetBox.

use chrono::Utc;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::ipam::provider::{IpamError, ProviderOperation, TestReport, TestResult};

use super::*;

impl NetboxProvider {
    /// One step of the write probe; its failure names the permission the step needed.
    async fn probe(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        permission: &str,
    ) -> Result<Reply, (String, IpamError)> {
        self.send_ok(method, path, body)
            .await
            .map_err(|e| (permission.to_string(), e))
    }

    /// A harmless create/change/delete of a scratch VRF, prefix, IP range and IP address.
    async fn write_probe(&self) -> Result<(), (String, IpamError)> {
        let name = format!(
            "{PROBE_PREFIX}{}",
            &Uuid::new_v4().simple().to_string()[..12]
        );
        let vrf = self
            .probe(
                Method::POST,
                VRFS,
                Some(&json!({ "name": name, "description": "Fabric Console permission check; safe to delete" })),
                "add ipam.vrf",
            )
            .await?;
        let vrf_id = id_of(&vrf.body).unwrap_or_default();
        let result = async {
            self.probe(
                Method::PATCH,
                &format!("{VRFS}{vrf_id}/"),
                Some(&json!({ "description": "Fabric Console permission check (changed); safe to delete" })),
                "change ipam.vrf",
            )
            .await?;
            let prefix = self
                .probe(
                    Method::POST,
                    PREFIXES,
                    Some(&json!({ "prefix": "192.0.2.0/24", "vrf": vrf_id.parse::<u64>().unwrap_or(0), "status": "active" })),
                    "add ipam.prefix",
                )
                .await?;
            let prefix_id = id_of(&prefix.body).unwrap_or_default();
            let inner = async {
                self.probe(
                    Method::PATCH,
                    &format!("{PREFIXES}{prefix_id}/"),
                    Some(&json!({ "description": "permission check" })),
                    "change ipam.prefix",
                )
                .await?;
                let range = self
                    .probe(
                        Method::POST,
                        RANGES,
                        Some(&json!({
                            "start_address": "192.0.2.10/24", "end_address": "192.0.2.20/24",
                            "vrf": vrf_id.parse::<u64>().unwrap_or(0), "status": "active",
                        })),
                        "add ipam.iprange",
                    )
                    .await?;
                let range_id = id_of(&range.body).unwrap_or_default();
                // Granted addresses become IP addresses (address usage).
                let address = self
                    .probe(
                        Method::POST,
                        super::usage::IP_ADDRESSES,
                        Some(&json!({
                            "address": "192.0.2.11/24",
                            "vrf": vrf_id.parse::<u64>().unwrap_or(0), "status": "active",
                        })),
                        "add ipam.ipaddress",
                    )
                    .await;
                let address = match address {
                    Ok(reply) => {
                        let id = id_of(&reply.body).unwrap_or_default();
                        let path = format!("{}{id}/", super::usage::IP_ADDRESSES);
                        let changed = self
                            .probe(
                                Method::PATCH,
                                &path,
                                Some(&json!({ "description": "permission check" })),
                                "change ipam.ipaddress",
                            )
                            .await
                            .map(|_| ());
                        let deleted = self
                            .probe(Method::DELETE, &path, None, "delete ipam.ipaddress")
                            .await
                            .map(|_| ());
                        changed.and(deleted)
                    }
                    Err(e) => Err(e),
                };
                let deleted = self
                    .probe(
                        Method::DELETE,
                        &format!("{RANGES}{range_id}/"),
                        None,
                        "delete ipam.iprange",
                    )
                    .await
                    .map(|_| ());
                address.and(deleted)
            }
            .await;
            let deleted = self
                .probe(
                    Method::DELETE,
                    &format!("{PREFIXES}{prefix_id}/"),
                    None,
                    "delete ipam.prefix",
                )
                .await
                .map(|_| ());
            inner.and(deleted)
        }
        .await;
        let deleted = self
            .probe(
                Method::DELETE,
                &format!("{VRFS}{vrf_id}/"),
                None,
                "delete ipam.vrf",
            )
            .await
            .map(|_| ());
        result.and(deleted)
    }

    /// The wizard's Test page: open connection, capability discovery, system info, permissions.
    pub(super) async fn run_test(&self) -> TestReport {
        let mut report = TestReport {
            tests: Vec::new(),
            operations: self.descriptor.operations.clone(),
            server_version: None,
            server_time: None,
            skew_ms: None,
            encryption: Some(self.encryption.clone()),
        };
        let sent_at = Utc::now();
        let status = self.api.get(STATUS, &[]).await;
        let received_at = Utc::now();
        let status = match status {
            Ok(reply) => {
                let version = str_of(&reply.body, "netbox-version")
                    .unwrap_or("unknown")
                    .to_string();
                report.tests.push(TestResult::passed(
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
                        "NetBox refused the token of Run As account '{}': {e} Create an API token \
                         in NetBox (user menu > API Tokens) and store it as the account's password \
                         (a v2 token as nbt_<key>.<secret>).",
                        self.account
                    ),
                    _ => e.to_string(),
                };
                report
                    .tests
                    .push(TestResult::failed("Open connection", detail));
                for name in ["Capability discovery", "System info", "Permissions"] {
                    report.tests.push(TestResult::failed(
                        name,
                        "not run: the connection failed".into(),
                    ));
                }
                return report;
            }
        };

        // Capability discovery.
        let mut problems = Vec::new();
        let mut found = Vec::new();
        for (label, path) in [
            ("VRFs", VRFS),
            ("prefixes", PREFIXES),
            ("IP ranges", RANGES),
            ("IP addresses", super::usage::IP_ADDRESSES),
            ("custom fields", CUSTOM_FIELDS),
        ] {
            match self.api.get(path, &[("limit".into(), "1".into())]).await {
                Ok(reply) => found.push(format!(
                    "{label} ({})",
                    reply.body.get("count").and_then(Value::as_u64).unwrap_or(0)
                )),
                Err(e) => problems.push(format!("{label}: {e}")),
            }
        }
        // The filters the reads rely on, and whether the change log can be read.
        let change_log = match self.check_filters().await {
            Ok(filters) => filters.change_log,
            Err(e) => {
                problems.push(format!("filters: {e}"));
                false
            }
        };
        for (op, yes) in report.operations.iter_mut() {
            if *op == ProviderOperation::ChangeFeed {
                *yes = change_log;
            }
        }
        if problems.is_empty() {
            report.tests.push(TestResult::passed(
                "Capability discovery",
                format!(
                    "readable: {}; the filters the reads rely on work; {}",
                    found.join(", "),
                    if change_log {
                        "change log readable: reads after the first are incremental"
                    } else {
                        "change log not readable, so every read is full (grant view on \
                         core.objectchange for incremental reads)"
                    }
                ),
            ));
        } else {
            report.tests.push(TestResult::failed(
                "Capability discovery",
                problems.join("; "),
            ));
        }

        // System info.
        match status.date {
            Some(server_time) => {
                let midpoint = sent_at + (received_at - sent_at) / 2;
                let skew = (server_time - midpoint).num_milliseconds();
                report.server_time = Some(server_time);
                report.skew_ms = Some(skew);
                let mut detail = format!(
                    "NetBox {} (REST API {API_VERSION}), server time {}, clock skew {:+.1} s",
                    report.server_version.as_deref().unwrap_or("unknown"),
                    server_time.to_rfc3339(),
                    skew as f64 / 1000.0
                );
                if skew.abs() > SKEW_WARNING_MS {
                    detail.push_str(
                        "; warning: the clocks differ by more than 5 minutes, synchronise them (NTP)",
                    );
                }
                report.tests.push(TestResult::passed("System info", detail));
            }
            None => report.tests.push(TestResult::failed(
                "System info",
                "NetBox's answer carried no Date header, so its clock cannot be read".into(),
            )),
        }

        // Permissions.
        let fix = "in NetBox grant the token's user an object permission with add, change and \
                   delete on ipam.vrf, ipam.prefix, ipam.iprange and ipam.ipaddress (and view, add, change on \
                   extras.customfield for the first sync), and use a write-enabled token";
        let result = match self.ensure_schema(true).await {
            Err(e) => TestResult::failed(
                "Permissions",
                format!(
                    "the token of Run As account '{}' cannot prepare the custom fields: {e} Fix: {fix}.",
                    self.account
                ),
            ),
            Ok(()) => match self.write_probe().await {
                Ok(()) => TestResult::passed(
                    "Permissions",
                    "the token may add, change and delete VRFs, prefixes, IP ranges and IP addresses"
                        .into(),
                ),
                Err((action, e)) => TestResult::failed(
                    "Permissions",
                    format!(
                        "the token of Run As account '{}' may not {action}: {e} Fix: {fix}.",
                        self.account
                    ),
                ),
            },
        };
        report.tests.push(result);
        report
    }
}
