//! The dataplane's NetworkPolicy: who may connect to which port, and where the dataplane
//! may connect.

use std::collections::BTreeSet;

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use mcp_crds::Tenant;

use super::{
    ADMIN, BuildError, IMAP, IMAPS, LMTP, METRICS, Options, Storage, child_metadata, labels, names,
    storage,
};

/// Port of PostgreSQL. The server's address is inside the Secret's URL, which the operator
/// does not read, so egress is opened to this port on any address.
pub const POSTGRES_PORT: i32 = 5432;
/// Port of DNS, UDP and TCP.
pub const DNS_PORT: i32 = 53;

fn port(protocol: &str, number: i32) -> NetworkPolicyPort {
    NetworkPolicyPort {
        protocol: Some(protocol.to_owned()),
        port: Some(IntOrString::Int(number)),
        ..NetworkPolicyPort::default()
    }
}

/// A TCP port of a NetworkPolicy rule.
pub fn tcp_port(number: i32) -> NetworkPolicyPort {
    port("TCP", number)
}

fn match_labels((key, value): (&str, &str)) -> LabelSelector {
    LabelSelector {
        match_labels: Some([(key.to_owned(), value.to_owned())].into()),
        ..LabelSelector::default()
    }
}

/// The TCP port of a URL: the explicit one, or the scheme's default (`https` 443, `http` 80,
/// `ldaps` 636, `ldap` 389).
///
/// # Errors
/// [`BuildError::Invalid`] naming `field` when the URL has no `scheme://host`, an unknown
/// scheme without a port, or a port that is not 1-65535.
pub fn url_port(url: &str, field: &'static str) -> Result<i32, BuildError> {
    let invalid = |message: String| BuildError::Invalid { field, message };
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| invalid(format!("{url:?} is not a scheme://host URL")))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let explicit = if let Some(bracketed) = host_port.strip_prefix('[') {
        let (_, after) = bracketed
            .split_once(']')
            .ok_or_else(|| invalid(format!("{url:?} has an unclosed IPv6 address")))?;
        after.strip_prefix(':')
    } else {
        host_port.rsplit_once(':').map(|(_, p)| p)
    };
    if host_port.is_empty() {
        return Err(invalid(format!("{url:?} has no host")));
    }
    match explicit {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .map(i32::from)
            .ok_or_else(|| invalid(format!("{url:?} has port {p:?}, not 1-65535"))),
        None => match scheme.to_ascii_lowercase().as_str() {
            "https" => Ok(443),
            "http" => Ok(80),
            "ldaps" => Ok(636),
            "ldap" => Ok(389),
            other => Err(invalid(format!(
                "{url:?}: no default port for scheme {other:?}"
            ))),
        },
    }
}

/// The TCP ports the dataplane connects to, besides DNS: PostgreSQL and S3 with `Postgres`
/// storage, the OIDC issuer (its discovery document and keys) and the LDAP directory when
/// configured. Sorted, each once.
pub fn egress_tcp_ports(tenant: &Tenant) -> Result<BTreeSet<i32>, BuildError> {
    let mut ports = BTreeSet::new();
    if let Storage::Postgres { s3, .. } = storage(tenant)? {
        ports.insert(POSTGRES_PORT);
        ports.insert(match &s3.endpoint {
            Some(endpoint) => url_port(endpoint, "spec.dataplane.storage.s3.endpoint")?,
            None => 443,
        });
    }
    if let Some(auth) = &tenant.spec.auth {
        if let Some(oidc) = &auth.oidc {
            ports.insert(url_port(&oidc.issuer, "spec.auth.oidc.issuer")?);
        }
        if let Some(ldap) = &auth.ldap {
            ports.insert(url_port(&ldap.url, "spec.auth.ldap.url")?);
        }
    }
    Ok(ports)
}

/// The NetworkPolicy `mcp-<tenant>-dataplane` over the dataplane's pods.
///
/// Ingress: IMAP and IMAPS from anywhere; LMTP only from pods labelled [`labels::MTA`] (in
/// any namespace); metrics only from namespaces labelled [`labels::MONITORING`]; the admin
/// API only from the operator's pods ([`labels::OPERATOR_COMPONENT`]) in
/// [`Options::operator_namespace`].
/// Egress: DNS (UDP and TCP 53), and the TCP ports of [`egress_tcp_ports`], to any address
/// (the operator does not know the servers' addresses, only their URLs).
///
/// # Errors
/// [`BuildError::Missing`] without `metadata.name`/`metadata.uid`; [`BuildError::Invalid`]
/// for an S3 endpoint, OIDC issuer or LDAP URL without a usable port.
pub fn build(tenant: &Tenant, options: &Options) -> Result<NetworkPolicy, BuildError> {
    let ingress = vec![
        NetworkPolicyIngressRule {
            ports: Some(vec![port("TCP", IMAP.number), port("TCP", IMAPS.number)]),
            from: None,
        },
        NetworkPolicyIngressRule {
            ports: Some(vec![port("TCP", LMTP.number)]),
            from: Some(vec![NetworkPolicyPeer {
                namespace_selector: Some(LabelSelector::default()),
                pod_selector: Some(match_labels(labels::MTA)),
                ..NetworkPolicyPeer::default()
            }]),
        },
        NetworkPolicyIngressRule {
            ports: Some(vec![port("TCP", METRICS.number)]),
            from: Some(vec![NetworkPolicyPeer {
                namespace_selector: Some(match_labels(labels::MONITORING)),
                ..NetworkPolicyPeer::default()
            }]),
        },
        NetworkPolicyIngressRule {
            ports: Some(vec![port("TCP", ADMIN.number)]),
            from: Some(vec![NetworkPolicyPeer {
                namespace_selector: Some(match_labels((
                    "kubernetes.io/metadata.name",
                    &options.operator_namespace,
                ))),
                pod_selector: Some(LabelSelector {
                    match_labels: Some(
                        [
                            (labels::NAME.to_owned(), labels::APP.to_owned()),
                            (
                                labels::COMPONENT.to_owned(),
                                labels::OPERATOR_COMPONENT.to_owned(),
                            ),
                        ]
                        .into(),
                    ),
                    ..LabelSelector::default()
                }),
                ..NetworkPolicyPeer::default()
            }]),
        },
    ];
    let mut egress = vec![NetworkPolicyEgressRule {
        ports: Some(vec![port("UDP", DNS_PORT), port("TCP", DNS_PORT)]),
        to: None,
    }];
    let tcp = egress_tcp_ports(tenant)?;
    if !tcp.is_empty() {
        egress.push(NetworkPolicyEgressRule {
            ports: Some(tcp.into_iter().map(|p| port("TCP", p)).collect()),
            to: None,
        });
    }
    Ok(NetworkPolicy {
        metadata: child_metadata(tenant, names::dataplane(tenant)?, labels::DATAPLANE)?,
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(labels::selector(tenant)?),
                ..LabelSelector::default()
            }),
            policy_types: Some(vec!["Ingress".to_owned(), "Egress".to_owned()]),
            ingress: Some(ingress),
            egress: Some(egress),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_ports_explicit_default_and_invalid() {
        let cases: [(&str, Option<i32>); 11] = [
            ("https://s3.storage.svc:9000", Some(9000)),
            ("https://s3.amazonaws.com", Some(443)),
            ("http://minio/path:1", Some(80)),
            ("ldaps://ldap.example", Some(636)),
            ("ldap://ldap.example:1389/", Some(1389)),
            ("https://user:pw@host.example/x", Some(443)),
            ("https://[2001:db8::1]:8443/", Some(8443)),
            ("https://[2001:db8::1]/", Some(443)),
            ("https://host:0", None),
            ("ftp://host", None),
            ("host:443", None),
        ];
        for (url, want) in cases {
            match (url_port(url, "f"), want) {
                (Ok(got), Some(want)) => assert_eq!(got, want, "{url}"),
                (Err(e), None) => assert!(e.to_string().contains("Tenant f:"), "{url}: {e}"),
                (got, want) => panic!("{url}: got {got:?}, want {want:?}"),
            }
        }
    }
}
