//! `mcp-operator`: the MCP operator binary. Parses and validates the command line, sets up
//! logging, and hands over to [`mcp_operator::run::run`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};
use mcp_operator::run::{self, Settings};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    /// One JSON object per line (the default in a cluster).
    Json,
    /// Human-readable lines.
    Text,
}

/// The MCP operator: reconciles Tenants and Mailboxes (group mcp.dev/v1alpha1).
#[derive(Debug, Parser)]
#[command(name = "mcp-operator", version)]
struct Args {
    /// Container image of the dataplane workloads: the operator's own image.
    #[arg(long, env = "MCP_OPERATOR_IMAGE")]
    image: String,
    /// imagePullPolicy of the dataplane container (default: Kubernetes' own).
    #[arg(long, env = "MCP_OPERATOR_IMAGE_PULL_POLICY")]
    image_pull_policy: Option<String>,
    /// Namespace the operator runs in (its Lease lives there).
    #[arg(long, env = "POD_NAMESPACE", default_value = mcp_operator::tenant::DEFAULT_OPERATOR_NAMESPACE)]
    namespace: String,
    /// Holder identity in the Lease; default the pod name, else the host name.
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Listen address of /metrics, /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Log format.
    #[arg(long, env = "MCP_LOG_FORMAT", value_enum, default_value = "json")]
    log_format: LogFormat,
    /// Name of the leader-election Lease in --namespace.
    #[arg(long, default_value = "mcp-operator")]
    lease_name: String,
    /// Run without leader election: only when exactly one operator runs.
    #[arg(long)]
    no_leader_election: bool,
    /// Seconds between two provisionings of a Ready Mailbox (usage refresh and repair).
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(10..=86_400))]
    mailbox_resync_secs: u64,
    /// Parallel reconciliations per controller.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    concurrency: u16,
    /// TENANT=URL: reach TENANT's dataplane admin API at URL instead of its Service's DNS
    /// name (an operator running outside the cluster, e.g. through a port-forward).
    /// Repeatable.
    #[arg(long = "dataplane-endpoint", value_name = "TENANT=URL")]
    dataplane_endpoints: Vec<String>,
    /// Serve the REST API (/api/v1, docs/rest-api.md) on this address, e.g. 0.0.0.0:8443
    /// (plain HTTP: terminate TLS in front of it). Default: not served.
    #[arg(long, value_name = "ADDR", requires = "api_store_url")]
    rest: Option<SocketAddr>,
    /// API key database of the REST API: postgres://USER:PASS@HOST/DB (shared by the
    /// replicas; sqlite://PATH for a single replica in development). Needed with --rest.
    #[arg(
        long,
        env = "MCP_API_STORE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    api_store_url: Option<String>,
    /// File holding the bootstrap admin API key (mcp_<8>_<43>; not readable by other
    /// users). Default: when no usable admin key exists, one is generated and printed once
    /// on stdout.
    #[arg(long, value_name = "FILE")]
    bootstrap_key_file: Option<std::path::PathBuf>,
    /// REST requests per second per credential.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    rest_rate: u32,
    /// REST burst per credential.
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u32).range(1..))]
    rest_burst: u32,
    /// OIDC settings of the REST API (YAML or JSON: issuer, audience, roles; see
    /// docs/rest-api.md): bearer tokens of that issuer are accepted besides API keys.
    #[arg(long, value_name = "FILE", env = "MCP_OIDC_CONFIG")]
    oidc_config: Option<std::path::PathBuf>,
}

/// The REST settings of the command line; `None` without `--rest`.
fn rest_settings(args: &Args) -> anyhow::Result<Option<mcp_operator::rest::RestSettings>> {
    let Some(addr) = args.rest else {
        return Ok(None);
    };
    let Some(url) = args.api_store_url.clone() else {
        bail!("--rest needs --api-store-url (the API key database)");
    };
    let nonzero = |flag: &str, n: u32| {
        std::num::NonZeroU32::new(n).with_context(|| format!("{flag} must be at least 1"))
    };
    Ok(Some(mcp_operator::rest::RestSettings {
        addr,
        facade: mcp_api::facade::FacadeSettings {
            api_store_url: url,
            bootstrap_key_file: args.bootstrap_key_file.clone(),
            rate_limit: mcp_api::auth::RateLimit {
                per_second: nonzero("--rest-rate", args.rest_rate)?,
                burst: nonzero("--rest-burst", args.rest_burst)?,
            },
            oidc: args
                .oidc_config
                .as_deref()
                .map(mcp_api::auth::oidc::OidcConfig::from_file)
                .transpose()
                .context("--oidc-config")?,
        },
    }))
}

fn endpoints(pairs: &[String]) -> anyhow::Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for pair in pairs {
        let Some((tenant, url)) = pair.split_once('=') else {
            bail!("--dataplane-endpoint {pair:?}: expected TENANT=URL");
        };
        if tenant.is_empty() || !url.starts_with("https://") {
            bail!("--dataplane-endpoint {pair:?}: expected TENANT=https://HOST:PORT");
        }
        out.insert(tenant.to_owned(), url.to_owned());
    }
    Ok(out)
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logging(args.log_format);
    if rustls::crypto::ring::default_provider()
        .install_default()
        .is_err()
    {
        tracing::debug!("a rustls crypto provider was already installed");
    }
    let rest = rest_settings(&args)?;
    let identity = match args.identity.filter(|i| !i.is_empty()) {
        Some(i) => i,
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .context("--identity not given and the host name cannot be read")?,
    };
    let settings = Settings {
        image: args.image,
        image_pull_policy: args.image_pull_policy,
        namespace: args.namespace,
        identity,
        metrics_addr: args.metrics_addr,
        lease_name: (!args.no_leader_election).then_some(args.lease_name),
        mailbox_resync: Duration::from_secs(args.mailbox_resync_secs),
        concurrency: args.concurrency,
        dataplane_endpoints: endpoints(&args.dataplane_endpoints)?,
        rest,
    };
    run::run(settings).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_flags() {
        let base = ["mcp-operator", "--image=i"];
        let args = Args::try_parse_from(base).expect("args");
        assert_eq!(rest_settings(&args).expect("settings"), None);
        let args = Args::try_parse_from(
            base.iter()
                .copied()
                .chain(["--rest=127.0.0.1:8443", "--api-store-url=postgres://h/db"]),
        )
        .expect("args");
        let rest = rest_settings(&args).expect("settings").expect("rest");
        assert_eq!(rest.addr, "127.0.0.1:8443".parse().expect("addr"));
        assert_eq!(rest.facade.rate_limit, mcp_api::auth::RateLimit::default());
        // --rest without a key database, or a zero rate, is refused.
        assert!(Args::try_parse_from(base.iter().copied().chain(["--rest=127.0.0.1:1"])).is_err());
        assert!(
            Args::try_parse_from(base.iter().copied().chain([
                "--rest=127.0.0.1:1",
                "--api-store-url=x",
                "--rest-rate=0"
            ]))
            .is_err()
        );
    }

    #[test]
    fn endpoint_pairs_are_validated() {
        let ok = endpoints(&["acme=https://127.0.0.1:9443".into()]).expect("ok");
        assert_eq!(ok["acme"], "https://127.0.0.1:9443");
        for bad in ["acme", "=https://x", "acme=http://x"] {
            assert!(endpoints(&[bad.into()]).is_err(), "{bad}");
        }
    }
}
