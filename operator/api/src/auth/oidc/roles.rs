//! From verified claims to a [`Role`] (the rules are on
//! [`RoleMappingConfig`](super::RoleMappingConfig)).

use serde_json::Value;

use super::OidcError;
use super::settings::{RoleMapping, is_tenant_name};
use crate::auth::Role;

/// At most this many groups of a token are looked at.
const MAX_GROUPS: usize = 1000;

/// The role of the caller `subject` with these (verified) claims.
///
/// # Errors
/// The 403 variants of [`OidcError`]: [`OidcError::UnknownRole`] for a role claim that is
/// not `admin`, `tenant-admin` or `viewer`; [`OidcError::MissingTenant`] for a tenant-admin
/// without a valid tenant name; [`OidcError::AmbiguousRole`] for groups giving tenant-admin
/// of several tenants; [`OidcError::NoRole`] when nothing maps.
pub(crate) fn role_of(
    mapping: &RoleMapping,
    claims: &Value,
    subject: &str,
) -> Result<Role, OidcError> {
    if let Some(claim) = &mapping.role_claim
        && let Some(value) = claim.get(claims)
    {
        return match value.as_str() {
            Some("admin") => Ok(Role::Admin),
            Some("viewer") => Ok(Role::Viewer),
            Some("tenant-admin") => {
                match mapping.tenant_claim.get(claims).and_then(Value::as_str) {
                    Some(tenant) if is_tenant_name(tenant) => {
                        Ok(Role::TenantAdmin(tenant.to_owned()))
                    }
                    _ => Err(OidcError::MissingTenant {
                        subject: subject.to_owned(),
                        claim: mapping.tenant_claim.to_string(),
                    }),
                }
            }
            _ => Err(OidcError::UnknownRole {
                subject: subject.to_owned(),
                claim: claim.to_string(),
            }),
        };
    }
    let groups: Vec<&str> = match mapping.groups_claim.as_ref().and_then(|c| c.get(claims)) {
        Some(Value::String(group)) => vec![group.as_str()],
        Some(Value::Array(groups)) => groups
            .iter()
            .take(MAX_GROUPS)
            .filter_map(Value::as_str)
            .collect(),
        _ => Vec::new(),
    };
    let mut admin = false;
    let mut tenants: Vec<&str> = Vec::new();
    let mut viewer = false;
    for role in groups.iter().filter_map(|g| mapping.groups.get(*g)) {
        match role {
            Role::Admin => admin = true,
            Role::TenantAdmin(tenant) => tenants.push(tenant),
            Role::Viewer => viewer = true,
        }
    }
    tenants.sort_unstable();
    tenants.dedup();
    match (admin, tenants.as_slice(), viewer) {
        (true, _, _) => Ok(Role::Admin),
        (false, [tenant], _) => Ok(Role::TenantAdmin((*tenant).to_owned())),
        (false, [], true) => Ok(Role::Viewer),
        (false, [], false) => Err(OidcError::NoRole {
            subject: subject.to_owned(),
        }),
        (false, _, _) => Err(OidcError::AmbiguousRole {
            subject: subject.to_owned(),
        }),
    }
}
