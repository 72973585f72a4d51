//! The plugin container: hardened by default, resources bounded by default.
//!
//! The security context starts from the `restricted` Pod Security Standard: non-root,
//! read-only root filesystem, no privilege escalation, not privileged, every capability
//! dropped, seccomp `RuntimeDefault`. A `spec.sandbox.securityContext` replaces these field by
//! field (`runAsUser`, a writable root filesystem, an SELinux or AppArmor profile, ...), but
//! what the standard forbids is refused ([`super::INSECURE_SANDBOX`]), never rendered: the
//! tenant namespace enforces `restricted`, so such a container would keep the whole dataplane
//! pod from being created.

use k8s_openapi::api::core::v1::{
    Capabilities, Container, EnvVar, ResourceRequirements, SeccompProfile, SecurityContext,
    VolumeMount,
};
use mcp_crds::PluginDeployment;
use mcp_crds::plugin::{ENV_LISTEN, Sandbox};

use super::{INSECURE_SANDBOX, Refusal, refuse};

/// Requests and limits when `spec.sandbox.resources` is absent: (resource, request, limit).
/// No CPU limit: throttling a plugin adds latency to every message.
pub const DEFAULT_RESOURCES: [(&str, &str, Option<&str>); 2] =
    [("cpu", "100m", None), ("memory", "128Mi", Some("256Mi"))];

/// The hardened default security context of a plugin container.
pub fn default_security_context() -> SecurityContext {
    SecurityContext {
        run_as_non_root: Some(true),
        read_only_root_filesystem: Some(true),
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            add: None,
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_owned(),
            localhost_profile: None,
        }),
        ..SecurityContext::default()
    }
}

/// The security context of the plugin container: [`default_security_context`] with each
/// field the sandbox sets replacing the default one.
///
/// # Errors
/// [`INSECURE_SANDBOX`] naming the field, for `privileged: true`,
/// `allowPrivilegeEscalation: true`, added capabilities, dropped capabilities without `ALL`,
/// `runAsNonRoot: false`, `runAsUser: 0`, a seccomp profile other than `RuntimeDefault` or
/// `Localhost`, `procMount: Unmasked` and `windowsOptions.hostProcess: true`.
pub fn security_context(sandbox: Option<&Sandbox>) -> Result<SecurityContext, Refusal> {
    let mut sc = default_security_context();
    let Some(user) = sandbox.and_then(|s| s.security_context.as_ref()) else {
        return Ok(sc);
    };
    let at = "spec.sandbox.securityContext";
    let insecure = |field: &str, why: &str| {
        Err(refuse(
            INSECURE_SANDBOX,
            format!(
                "{at}.{field}: {why}; the tenant namespace enforces the restricted Pod Security Standard"
            ),
        ))
    };
    if user.privileged == Some(true) {
        return insecure("privileged", "a privileged container is refused");
    }
    if user.allow_privilege_escalation == Some(true) {
        return insecure(
            "allowPrivilegeEscalation",
            "privilege escalation is refused",
        );
    }
    if let Some(caps) = &user.capabilities {
        if let Some(add) = caps.add.as_ref().filter(|a| !a.is_empty()) {
            return insecure(
                "capabilities.add",
                &format!("adding capabilities ({}) is refused", add.join(", ")),
            );
        }
        if let Some(drop) = &caps.drop
            && !drop.iter().any(|c| c == "ALL")
        {
            return insecure("capabilities.drop", "must contain ALL");
        }
    }
    if user.run_as_non_root == Some(false) {
        return insecure("runAsNonRoot", "running as root is refused");
    }
    if user.run_as_user == Some(0) {
        return insecure("runAsUser", "UID 0 (root) is refused");
    }
    if let Some(profile) = &user.seccomp_profile
        && profile.type_ != "RuntimeDefault"
        && profile.type_ != "Localhost"
    {
        return insecure(
            "seccompProfile.type",
            &format!(
                "{:?} is refused (RuntimeDefault or Localhost)",
                profile.type_
            ),
        );
    }
    if user.proc_mount.as_deref().is_some_and(|m| m != "Default") {
        return insecure("procMount", "only Default is allowed");
    }
    if user
        .windows_options
        .as_ref()
        .and_then(|w| w.host_process)
        .unwrap_or(false)
    {
        return insecure("windowsOptions.hostProcess", "host processes are refused");
    }
    // Field by field over the defaults.
    macro_rules! over {
        ($($field:ident),*) => {
            $(if user.$field.is_some() { sc.$field = user.$field.clone(); })*
        };
    }
    over!(
        allow_privilege_escalation,
        app_armor_profile,
        capabilities,
        privileged,
        proc_mount,
        read_only_root_filesystem,
        run_as_group,
        run_as_non_root,
        run_as_user,
        se_linux_options,
        seccomp_profile,
        windows_options
    );
    Ok(sc)
}

/// `spec.sandbox.resources`, or [`DEFAULT_RESOURCES`] when it is absent.
pub fn resources(sandbox: Option<&Sandbox>) -> ResourceRequirements {
    if let Some(r) = sandbox.and_then(|s| s.resources.clone()) {
        return r;
    }
    crate::tenant::workload::resource_table(&DEFAULT_RESOURCES)
}

/// An environment variable with a literal value.
pub(crate) fn env(name: &str, value: String) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value),
        ..EnvVar::default()
    }
}

/// The plugin's container named `name`: its image, `command`, `args`, `spec.env` followed by
/// [`ENV_LISTEN`] = `listen` and `extra_env`, the sandbox's security context and resources,
/// and `mounts`.
///
/// # Errors
/// As [`security_context`].
pub fn container(
    plugin: &PluginDeployment,
    name: String,
    listen: String,
    extra_env: Vec<EnvVar>,
    mounts: Vec<VolumeMount>,
) -> Result<Container, Refusal> {
    let spec = &plugin.spec;
    let mut env = spec.env.clone();
    env.push(self::env(ENV_LISTEN, listen));
    env.extend(extra_env);
    Ok(Container {
        name,
        image: spec.image.clone(),
        command: (!spec.command.is_empty()).then(|| spec.command.clone()),
        args: (!spec.args.is_empty()).then(|| spec.args.clone()),
        env: Some(env),
        resources: Some(resources(spec.sandbox.as_ref())),
        security_context: Some(security_context(spec.sandbox.as_ref())?),
        volume_mounts: Some(mounts),
        ..Container::default()
    })
}
