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
}
