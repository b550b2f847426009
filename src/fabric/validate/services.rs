//! Run As accounts and network services: a user name, a Run As account and provider that exist,
//! a host group scope that is not empty, a sync interval that does not flood the IPAM server.

use super::{Field, Rule, ValidationError, View, names, problem};
use crate::fabric::model::{HostGroup, HostGroupScope, NetworkService, ObjectKind, RunAsAccount};

/// Background syncs closer together than this would load the IPAM server for no gain.
pub const MIN_SYNC_INTERVAL_SECS: u64 = 30;
/// A week: the longest a service may go without a periodic sync.
pub const MAX_SYNC_INTERVAL_SECS: u64 = 7 * 24 * 3600;

pub(super) fn check_user_name(a: &RunAsAccount) -> Option<ValidationError> {
    a.user_name.trim().is_empty().then(|| {
        problem(
            ObjectKind::RunAsAccount,
            a.id,
            &a.name,
            Field::UserName,
            Rule::UserNameEmpty,
            "User name is empty. Type the account's user name, e.g. CONTOSO\\ipam-svc.".to_string(),
        )
    })
}

fn service_problem(
    n: &NetworkService,
    field: Field,
    rule: Rule,
    message: String,
) -> ValidationError {
    problem(
        ObjectKind::NetworkService,
        n.id,
        &n.name,
        field,
        rule,
        message,
    )
}

pub(super) fn check_service(view: &View<'_>, n: &NetworkService, out: &mut Vec<ValidationError>) {
    out.extend(names::check_name(n));
    out.extend(check_service_run_as(view, n));
    out.extend(check_service_provider(n));
    out.extend(check_service_scope(view, n));
    out.extend(check_sync_interval(n));
    out.extend(check_trust(n));
    out.extend(check_event_source(n));
}

/// The event source is a `redis://host[:port][/db]` address that holds no password: secrets
/// never lie in the fabric database.
pub fn parse_event_source(text: &str) -> Result<String, String> {
    let text = text.trim();
    let url = reqwest::Url::parse(text).map_err(|e| {
        format!("IPAM change events: the text is not an address ({e}). Write redis://host:port, e.g. redis://nautobot-redis:6379.")
    })?;
    if url.scheme() != "redis" {
        return Err(format!(
            "IPAM change events: the scheme {}:// is not supported. Write redis://host:port (Nautobot's event broker on Redis).",
            url.scheme()
        ));
    }
    if url.password().is_some() || !url.username().is_empty() {
        return Err("IPAM change events: the address holds a user or password, which would be stored in the fabric database. Remove it: only a Redis without a password can be listened to.".to_string());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(
            "IPAM change events: the address names no host. Write redis://host:port.".to_string(),
        );
    }
    let path = url.path().trim_start_matches('/');
    if !path.is_empty() && path.parse::<u16>().is_err() {
        return Err(format!(
            "IPAM change events: \"/{path}\" is not a Redis database number. Write redis://host:port or redis://host:port/2."
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(
            "IPAM change events: remove the ?… or #… part; write redis://host:port.".to_string(),
        );
    }
    Ok(text.to_string())
}

fn check_event_source(n: &NetworkService) -> Option<ValidationError> {
    let source = n.event_source.as_deref()?;
    let message = parse_event_source(source).err()?;
    Some(service_problem(
        n,
        Field::EventSource,
        Rule::EventSource,
        message,
    ))
}

/// The certificate settings can work: a pinned fingerprint is a SHA-256 one, and neither a pin
/// nor a CA file goes with an `http://` connection string (that would silently not be used).
fn check_trust(n: &NetworkService) -> Option<ValidationError> {
    use crate::fabric::connection::Scheme;
    let message = if n
        .tls_fingerprint
        .as_deref()
        .is_some_and(|f| crate::ipam_server::tls::normalize_fingerprint(f).is_none())
    {
        "Certificate: the pinned fingerprint is not a SHA-256 fingerprint (64 hex digits). Check the certificate again on the Security page and trust it.".to_string()
    } else if n.connection.scheme == Some(Scheme::Http)
        && (n.tls_fingerprint.is_some() || n.tls_ca_file.is_some())
    {
        "Certificate: a certificate is pinned or a CA file is set, but the connection string says http://. Write https:// or clear the certificate settings.".to_string()
    } else {
        return None;
    };
    Some(service_problem(
        n,
        Field::Certificate,
        Rule::TlsSettings,
        message,
    ))
}

fn check_service_run_as(view: &View<'_>, n: &NetworkService) -> Option<ValidationError> {
    view.get::<RunAsAccount>(n.run_as).is_none().then(|| {
        service_problem(
            n,
            Field::RunAsAccount,
            Rule::ReferenceMissing,
            format!(
                "Run As account {} does not exist. Browse for an existing Run As account or create one.",
                n.run_as
            ),
        )
    })
}

fn check_service_provider(n: &NetworkService) -> Option<ValidationError> {
    n.provider.trim().is_empty().then(|| {
        service_problem(
            n,
            Field::ConfigurationProvider,
            Rule::ProviderEmpty,
            "Configuration provider is not chosen. Select a configuration provider.".to_string(),
        )
    })
}

fn check_service_scope(view: &View<'_>, n: &NetworkService) -> Vec<ValidationError> {
    match &n.scope {
        HostGroupScope::All => Vec::new(),
        HostGroupScope::Selected(groups) if groups.is_empty() => vec![service_problem(
            n,
            Field::HostGroups,
            Rule::ServiceScope,
            "Host groups: none selected. Select at least one host group or choose all host groups."
                .to_string(),
        )],
        HostGroupScope::Selected(groups) => groups
            .iter()
            .filter(|g| view.get::<HostGroup>(**g).is_none())
            .map(|g| {
                service_problem(
                    n,
                    Field::HostGroups,
                    Rule::ReferenceMissing,
                    format!("Host group {g} does not exist. Remove it from the selection."),
                )
            })
            .collect(),
    }
}

fn check_sync_interval(n: &NetworkService) -> Option<ValidationError> {
    let secs = n.sync_interval_secs;
    let message = if secs < MIN_SYNC_INTERVAL_SECS {
        format!(
            "Sync interval of {secs} seconds is too short. Choose {MIN_SYNC_INTERVAL_SECS} seconds or more."
        )
    } else if secs > MAX_SYNC_INTERVAL_SECS {
        format!(
            "Sync interval of {secs} seconds is too long. Choose {MAX_SYNC_INTERVAL_SECS} seconds (7 days) or fewer."
        )
    } else {
        return None;
    };
    Some(service_problem(
        n,
        Field::SyncInterval,
        Rule::SyncInterval,
        message,
    ))
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;

    #[test]
    fn run_as_needs_user_name() {
        let errors = broken(|f| {
            object_mut(&mut f.run_as_accounts, ACCOUNT)
                .user_name
                .clear()
        });
        expect(&errors, Rule::UserNameEmpty, ACCOUNT, "User name");
    }

    #[test]
    fn service_rules() {
        let errors = broken(|f| object_mut(&mut f.network_services, SERVICE).run_as = id(404));
        expect(&errors, Rule::ReferenceMissing, SERVICE, "Run As account");
        let errors = broken(|f| object_mut(&mut f.network_services, SERVICE).provider = " ".into());
        expect(
            &errors,
            Rule::ProviderEmpty,
            SERVICE,
            "Configuration provider",
        );
        let errors = broken(|f| {
            object_mut(&mut f.network_services, SERVICE).scope =
                HostGroupScope::Selected(BTreeSet::new())
        });
        expect(&errors, Rule::ServiceScope, SERVICE, "Host groups");
        let errors = broken(|f| {
            object_mut(&mut f.network_services, SERVICE).scope =
                HostGroupScope::Selected([id(SEATTLE), id(4040)].into_iter().collect())
        });
        expect(&errors, Rule::ReferenceMissing, SERVICE, "Host groups");
        let errors =
            broken(|f| object_mut(&mut f.network_services, SERVICE).sync_interval_secs = 29);
        let bad_pin = broken(|f| {
            object_mut(&mut f.network_services, SERVICE).tls_fingerprint = Some("ab12".into())
        });
        assert_eq!(bad_pin[0].rule, Rule::TlsSettings, "{bad_pin:?}");
        let downgrade = broken(|f| {
            let s = object_mut(&mut f.network_services, SERVICE);
            s.connection = "http://ipam.contoso.com".parse().unwrap();
            s.tls_fingerprint = Some("ab".repeat(32));
        });
        assert!(downgrade[0].message.contains("https://"), "{downgrade:?}");
        expect(&errors, Rule::SyncInterval, SERVICE, "Sync interval");
        let errors =
            broken(|f| object_mut(&mut f.network_services, SERVICE).sync_interval_secs = u64::MAX);
        expect(&errors, Rule::SyncInterval, SERVICE, "Sync interval");
        clean(&broken(|f| {
            object_mut(&mut f.network_services, SERVICE).sync_interval_secs =
                super::MAX_SYNC_INTERVAL_SECS
        }));
        clean(&broken(|f| {
            let n = object_mut(&mut f.network_services, SERVICE);
            n.sync_interval_secs = MIN_SYNC_INTERVAL_SECS;
            n.scope = HostGroupScope::All;
        }));
    }

    #[test]
    fn an_event_source_is_a_redis_address_without_a_password() {
        for good in [
            "redis://127.0.0.1:6379",
            "redis://nautobot-redis",
            "redis://[::1]:6380/2",
        ] {
            assert_eq!(super::parse_event_source(good).as_deref(), Ok(good));
            clean(&broken(|f| {
                object_mut(&mut f.network_services, SERVICE).event_source = Some(good.into())
            }));
        }
        for (bad, says) in [
            ("nautobot-redis:6379", "scheme"),
            ("127.0.0.1:6379", "not an address"),
            ("rediss://redis:6379", "not supported"),
            ("redis://:s3cret@redis:6379", "password"),
            ("redis://admin@redis:6379", "password"),
            ("redis://redis:6379/cache", "database number"),
            ("redis://redis:6379?x=1", "remove"),
        ] {
            let errors = broken(|f| {
                object_mut(&mut f.network_services, SERVICE).event_source = Some(bad.into())
            });
            expect(&errors, Rule::EventSource, SERVICE, "IPAM change events");
            assert!(errors[0].message.contains(says), "{bad}: {errors:?}");
            assert!(!errors[0].message.contains("s3cret"), "{errors:?}");
        }
    }
}
