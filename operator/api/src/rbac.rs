//! Role-based access control: which [`Role`] may do which [`Verb`] on which [`Group`] of
//! which tenant. One table ([`POLICY`]) and one function ([`authorize`]); handlers call it
//! before touching anything and answer its [`Denied`] with 403.
//!
//! The policy (docs/rest-api.md, "Roles"):
//!
//! | Role | May |
//! |---|---|
//! | `admin` | everything, on every tenant |
//! | `tenant-admin` of T | read T's Tenant; read and write T's mailboxes, pipelines, plugins, policies, quarantine, migration jobs and API keys; create API keys only as `tenant-admin` of T. No other tenant, no Tenant create, update or delete |
//! | `viewer` | read every group except API keys, on every tenant |
//!
//! Why: a Tenant's spec holds its quotas and dataplane settings, which the platform's admin
//! sets, so a tenant-admin cannot change its own Tenant. A viewer is not bound to a tenant,
//! so a tenant-admin granting one would let it read other tenants: it may only create keys
//! of its own role and tenant ([`may_grant`]). API keys are credentials' metadata: viewers
//! do not see them.

use crate::auth::Role;

/// What a request does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verb {
    /// List or get.
    Read,
    /// Create.
    Create,
    /// Change (patch, apply over an existing object, release from quarantine).
    Update,
    /// Delete.
    Delete,
}

/// An endpoint group of `/api/v1` (issue 7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Group {
    /// `/tenants`: `Tenant` resources (cluster-scoped).
    Tenants,
    /// `/mailboxes`: `Mailbox` resources.
    Mailboxes,
    /// `/pipelines`: `Pipeline` resources.
    Pipelines,
    /// `/plugins`: `PluginDeployment` resources.
    Plugins,
    /// `/policies`: DLP rules.
    Policies,
    /// `/quarantine`: held messages.
    Quarantine,
    /// `/migrations`: `MigrationJob` resources.
    Migrations,
    /// `/apikeys`: the `api_keys` table.
    ApiKeys,
}

/// Which tenant a request is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target<'a> {
    /// One tenant's objects (for [`Group::Tenants`]: that Tenant itself). A list that a
    /// tenant-admin makes is narrowed by the handler to its own tenant and authorized
    /// with `Tenant(own)`.
    Tenant(&'a str),
    /// Objects of every tenant or of none (a list across tenants, a global key).
    All,
}

/// Which roles a rule is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Admin,
    TenantAdmin,
    Viewer,
}

/// Tenants a rule covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    /// Any target.
    Any,
    /// Only `Target::Tenant` equal to the principal's own tenant.
    Own,
}

const ALL_GROUPS: &[Group] = &[
    Group::Tenants,
    Group::Mailboxes,
    Group::Pipelines,
    Group::Plugins,
    Group::Policies,
    Group::Quarantine,
    Group::Migrations,
    Group::ApiKeys,
];
const TENANT_GROUPS: &[Group] = &[
    Group::Mailboxes,
    Group::Pipelines,
    Group::Plugins,
    Group::Policies,
    Group::Quarantine,
    Group::Migrations,
    Group::ApiKeys,
];
const ALL_VERBS: &[Verb] = &[Verb::Read, Verb::Create, Verb::Update, Verb::Delete];
const READ: &[Verb] = &[Verb::Read];

/// The policy: a request is allowed iff one row covers its role, verb, group and target.
const POLICY: &[(Who, &[Verb], &[Group], Scope)] = &[
    (Who::Admin, ALL_VERBS, ALL_GROUPS, Scope::Any),
    (Who::TenantAdmin, READ, &[Group::Tenants], Scope::Own),
    (Who::TenantAdmin, ALL_VERBS, TENANT_GROUPS, Scope::Own),
    (
        Who::Viewer,
        READ,
        &[
            Group::Tenants,
            Group::Mailboxes,
            Group::Pipelines,
            Group::Plugins,
            Group::Policies,
            Group::Quarantine,
            Group::Migrations,
        ],
        Scope::Any,
    ),
];

/// A refused request: the detail of the 403 answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Denied(pub String);

fn name(verb: Verb) -> &'static str {
    match verb {
        Verb::Read => "read",
        Verb::Create => "create",
        Verb::Update => "update",
        Verb::Delete => "delete",
    }
}

/// Whether `role` may `verb` the `group` objects of `target`.
///
/// # Errors
/// [`Denied`] saying what the role may not do.
pub fn authorize(role: &Role, verb: Verb, group: Group, target: Target<'_>) -> Result<(), Denied> {
    let (who, own) = match role {
        Role::Admin => (Who::Admin, None),
        Role::TenantAdmin(t) => (Who::TenantAdmin, Some(t.as_str())),
        Role::Viewer => (Who::Viewer, None),
    };
    let allowed = POLICY.iter().any(|(w, verbs, groups, scope)| {
        *w == who
            && verbs.contains(&verb)
            && groups.contains(&group)
            && match scope {
                Scope::Any => true,
                Scope::Own => matches!(target, Target::Tenant(t) if Some(t) == own),
            }
    });
    if allowed {
        return Ok(());
    }
    let whom = match role {
        Role::Admin => "admin".to_owned(),
        Role::TenantAdmin(t) => format!("tenant-admin of {t:?}"),
        Role::Viewer => "viewer".to_owned(),
    };
    let group = format!("{group:?}").to_lowercase();
    let what = match target {
        Target::Tenant(t) => format!("{group} of tenant {t:?}"),
        Target::All => format!("{group} of all tenants"),
    };
    Err(Denied(format!("role {whom} may not {} {what}", name(verb))))
}

/// Whether `role` may create an API key with role `granted`: an admin any role; a
/// tenant-admin only `tenant-admin` of its own tenant (a viewer key would read every
/// tenant); a viewer none.
///
/// # Errors
/// [`Denied`].
pub fn may_grant(role: &Role, granted: &Role) -> Result<(), Denied> {
    match (role, granted) {
        (Role::Admin, _) => Ok(()),
        (Role::TenantAdmin(own), Role::TenantAdmin(t)) if own == t => Ok(()),
        (Role::TenantAdmin(own), _) => Err(Denied(format!(
            "a tenant-admin of {own:?} may only create tenant-admin keys of {own:?}"
        ))),
        (Role::Viewer, _) => Err(Denied("a viewer may not create API keys".to_owned())),
    }
}

/// The tenant a key of `role` belongs to, for authorizing operations on that key: its
/// tenant for a tenant-admin key, [`Target::All`] for admin and viewer keys (global).
pub fn key_target(role: &Role) -> Target<'_> {
    match role {
        Role::TenantAdmin(t) => Target::Tenant(t),
        Role::Admin | Role::Viewer => Target::All,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Verb = Verb::Read;
    const C: Verb = Verb::Create;
    const U: Verb = Verb::Update;
    const D: Verb = Verb::Delete;

    fn ta(t: &str) -> Role {
        Role::TenantAdmin(t.to_owned())
    }

    #[test]
    fn policy_table() {
        use Group::*;
        let own = Target::Tenant("t1");
        let other = Target::Tenant("t2");
        let all = Target::All;
        // (role, verb, group, target, allowed)
        let cases: Vec<(Role, Verb, Group, Target<'_>, bool)> = vec![
            // admin: all of it
            (Role::Admin, C, Tenants, own, true),
            (Role::Admin, D, Tenants, other, true),
            (Role::Admin, A, Mailboxes, all, true),
            (Role::Admin, C, ApiKeys, all, true),
            (Role::Admin, D, Quarantine, other, true),
            // tenant-admin: own tenant's resources
            (ta("t1"), A, Tenants, own, true),
            (ta("t1"), U, Tenants, own, false),
            (ta("t1"), C, Tenants, own, false),
            (ta("t1"), D, Tenants, own, false),
            (ta("t1"), A, Tenants, other, false),
            (ta("t1"), A, Tenants, all, false),
            (ta("t1"), C, Mailboxes, own, true),
            (ta("t1"), U, Mailboxes, own, true),
            (ta("t1"), D, Mailboxes, own, true),
            (ta("t1"), A, Mailboxes, other, false),
            (ta("t1"), C, Mailboxes, other, false),
            (ta("t1"), A, Mailboxes, all, false),
            (ta("t1"), C, Pipelines, own, true),
            (ta("t1"), U, Plugins, own, true),
            (ta("t1"), C, Policies, own, true),
            (ta("t1"), U, Quarantine, own, true),
            (ta("t1"), D, Quarantine, other, false),
            (ta("t1"), C, Migrations, own, true),
            (ta("t1"), A, ApiKeys, own, true),
            (ta("t1"), C, ApiKeys, own, true),
            (ta("t1"), D, ApiKeys, own, true),
            (ta("t1"), A, ApiKeys, all, false),
            (ta("t1"), D, ApiKeys, other, false),
            // viewer: reads, no API keys
            (Role::Viewer, A, Tenants, all, true),
            (Role::Viewer, A, Mailboxes, other, true),
            (Role::Viewer, A, Quarantine, all, true),
            (Role::Viewer, A, Migrations, own, true),
            (Role::Viewer, C, Mailboxes, own, false),
            (Role::Viewer, U, Pipelines, own, false),
            (Role::Viewer, D, Tenants, own, false),
            (Role::Viewer, U, Quarantine, own, false),
            (Role::Viewer, A, ApiKeys, all, false),
            (Role::Viewer, C, ApiKeys, all, false),
        ];
        for (role, verb, group, target, want) in cases {
            let got = authorize(&role, verb, group, target);
            assert_eq!(
                got.is_ok(),
                want,
                "{role:?} {verb:?} {group:?} {target:?}: {got:?}"
            );
        }
    }

    #[test]
    fn every_group_is_readable_by_admin_and_writable_only_by_admin_across_tenants() {
        for group in ALL_GROUPS {
            for verb in ALL_VERBS {
                assert!(authorize(&Role::Admin, *verb, *group, Target::All).is_ok());
                assert!(authorize(&ta("t1"), *verb, *group, Target::All).is_err());
                if *verb != Verb::Read {
                    assert!(authorize(&Role::Viewer, *verb, *group, Target::All).is_err());
                }
            }
        }
    }

    #[test]
    fn grant_table() {
        let cases = [
            (Role::Admin, Role::Admin, true),
            (Role::Admin, Role::Viewer, true),
            (Role::Admin, ta("t2"), true),
            (ta("t1"), ta("t1"), true),
            (ta("t1"), ta("t2"), false),
            (ta("t1"), Role::Viewer, false),
            (ta("t1"), Role::Admin, false),
            (Role::Viewer, Role::Viewer, false),
            (Role::Viewer, ta("t1"), false),
        ];
        for (role, granted, want) in cases {
            assert_eq!(
                may_grant(&role, &granted).is_ok(),
                want,
                "{role:?} grants {granted:?}"
            );
        }
    }

    #[test]
    fn denial_names_role_verb_and_target() {
        let e = authorize(
            &ta("t1"),
            Verb::Delete,
            Group::Mailboxes,
            Target::Tenant("t2"),
        )
        .expect_err("denied");
        assert_eq!(
            e.0,
            "role tenant-admin of \"t1\" may not delete mailboxes of tenant \"t2\""
        );
    }
}
