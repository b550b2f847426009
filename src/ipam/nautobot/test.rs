//! The wizard's Test page checks against a Nautobot.

use chrono::Utc;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::ipam::provider::{IpamError, ProviderOperation, TestOutcome, TestReport, TestResult};

use super::*;

impl NautobotProvider {
    /// One step of the write probe; its failure names the permission the step needed.
    async fn probe_step(
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

    /// Adds a scratch object at `path`; answers its id.
    async fn probe_add(
        &self,
        path: &str,
        body: Value,
        permission: &str,
    ) -> Result<String, (String, IpamError)> {
        let reply = self
            .probe_step(Method::POST, path, Some(&body), permission)
            .await?;
        Ok(str_of(&reply.body, "id").unwrap_or_default().to_string())
    }

    /// Changes the scratch object `id` at `path`.
    async fn probe_change(
        &self,
        path: &str,
        id: &str,
        body: Value,
        permission: &str,
    ) -> Result<(), (String, IpamError)> {
        let url = format!("{path}{id}/");
        self.probe_step(Method::PATCH, &url, Some(&body), permission)
            .await
            .map(|_| ())
    }

    /// Deletes the scratch object `id` at `path`.
    async fn probe_delete(
        &self,
        path: &str,
        id: &str,
        permission: &str,
    ) -> Result<(), (String, IpamError)> {
        let url = format!("{path}{id}/");
        self.probe_step(Method::DELETE, &url, None, permission)
            .await
            .map(|_| ())
    }

    /// A harmless create/change/delete of scratch objects, proving the token may write.
    pub(super) async fn write_probe(&self, schema: &Schema) -> Result<(), (String, IpamError)> {
        let name = format!(
            "{PROBE_NAMESPACE_PREFIX}{}",
            &Uuid::new_v4().simple().to_string()[..12]
        );
        let ns_id = self
            .probe_add(
                NAMESPACES,
                json!({ "name": name, "description": "Fabric Console permission check; safe to delete" }),
                "add ipam.namespace",
            )
            .await?;
        let result = async {
            self.probe_change(
                NAMESPACES,
                &ns_id,
                json!({ "description": "Fabric Console permission check (changed); safe to delete" }),
                "change ipam.namespace",
            )
            .await?;
            let prefix_id = self
                .probe_add(
                    PREFIXES,
                    json!({
                        "prefix": "192.0.2.0/24", "namespace": ns_id, "type": "network",
                        "status": schema.active_status,
                    }),
                    "add ipam.prefix",
                )
                .await?;
            let inner = async {
                self.probe_change(
                    PREFIXES,
                    &prefix_id,
                    json!({ "description": "permission check" }),
                    "change ipam.prefix",
                )
                .await?;
                let range_id = self
                    .probe_add(
                        RANGES,
                        json!({
                            "start_address": "192.0.2.10", "end_address": "192.0.2.20",
                            "parent": prefix_id, "status": schema.active_status,
                        }),
                        "add ipam.ipaddressrange",
                    )
                    .await?;
                self.probe_delete(RANGES, &range_id, "delete ipam.ipaddressrange")
                    .await
            }
            .await;
            let deleted = self
                .probe_delete(PREFIXES, &prefix_id, "delete ipam.prefix")
                .await;
            inner.and(deleted)
        }
        .await;
        let deleted = self
            .probe_delete(NAMESPACES, &ns_id, "delete ipam.namespace")
            .await;
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
        // Open connection.
        let sent_at = Utc::now();
        let status = self.api.get(STATUS, &[]).await;
        let received_at = Utc::now();
        let status = match status {
            Ok(reply) => {
                let version = str_of(&reply.body, "nautobot-version")
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
            report.tests.push(TestResult::passed(
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
                report.tests.push(TestResult::passed("System info", detail));
            }
            None => report.tests.push(TestResult::failed(
                "System info",
                "Nautobot's answer carried no Date header, so its clock cannot be read".into(),
            )),
        }

        // Permissions.
        let fix = "in Nautobot grant the token's user an object permission with add, change and \
                   delete on ipam.namespace, ipam.prefix and ipam.ipaddressrange (and view, add, \
                   change on extras.customfield for the first sync), and use a write-enabled token";
        let permissions = async {
            match self.ensure_schema(true).await {
                Err(e) => TestResult::failed(
                    "Permissions",
                    format!(
                        "the token of Run As account '{}' cannot prepare the custom fields: {e} Fix: {fix}.",
                        self.account
                    ),
                ),
                Ok(schema) => match self.write_probe(&schema).await {
                    Ok(()) => TestResult::passed(
                        "Permissions",
                        "the token may add, change and delete namespaces, prefixes and IP address ranges"
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
            }
        };
        // With an event source, the permission check's own changes show whether Nautobot
        // publishes them where the console listens.
        match &self.events {
            None => report.tests.push(permissions.await),
            Some(url) => {
                let (result, heard) =
                    events::events_during(url, PROBE_NAMESPACE_PREFIX, permissions).await;
                let wrote = result.outcome == TestOutcome::Passed;
                report.tests.push(result);
                report.tests.push(change_events(url, wrote, heard));
            }
        }
        report
    }
}

/// The "Change events" line: whether the permission check's changes were heard on `url`.
fn change_events(url: &str, wrote: bool, heard: Result<usize, String>) -> TestResult {
    const NAME: &str = "Change events";
    match heard {
        Err(e) => TestResult::failed(
            NAME,
            format!(
                "cannot subscribe to {url}: {e}. Check the service's IPAM change events address and that Redis is running; until then the server is read every sync interval"
            ),
        ),
        Ok(0) if wrote => TestResult::failed(
            NAME,
            format!(
                "subscribed to {url}, but Nautobot published none of the permission check's changes there. Enable its event broker: EVENT_BROKERS in nautobot_config.py with nautobot.core.events.RedisEventBroker publishing to this Redis (topics nautobot.*.ipam.*)"
            ),
        ),
        Ok(0) => TestResult::passed(
            NAME,
            format!(
                "subscribed to {url}; whether Nautobot publishes there is not known, as the permission check could not write"
            ),
        ),
        Ok(n) => TestResult::passed(
            NAME,
            format!(
                "Nautobot published the permission check's {n} changes to {url}: changes made in Nautobot reach the console within seconds"
            ),
        ),
    }
}
