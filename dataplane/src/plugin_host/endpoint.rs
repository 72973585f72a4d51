//! Where a PluginDeployment is reached, and the gRPC channel to it.
//!
//! | Mode | `mode` / `transport` | Endpoint |
//! |---|---|---|
//! | standalone | sidecar / tcp | `tcp://127.0.0.1:<port>` |
//! | standalone | sidecar / unix | `unix://<data-dir>/plugins/<namespace>.<name>.sock` |
//! | managed | sidecar / tcp | `tcp://127.0.0.1:<port>` |
//! | managed | sidecar / unix | `unix://<socket-dir>/<name>.sock` ([`SIDECAR_SOCKET_DIR`]) |
//! | managed | service | `https://mcp-plugin-<name>.<namespace>.svc:<port>`, mutual TLS with `<client-tls-dir>/<name>/{tls.crt,tls.key,ca.crt}` ([`CLIENT_TLS_DIR`]) |
//!
//! Standalone has no Services: `mode: service` is refused there.
//!
//! [`SIDECAR_SOCKET_DIR`]: mcp_crds::plugin::SIDECAR_SOCKET_DIR
//! [`CLIENT_TLS_DIR`]: mcp_crds::plugin::CLIENT_TLS_DIR

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use mcp_crds::plugin::{PluginDeploymentSpec, PluginMode, PluginTransport, service_name};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// Where the dataplane runs, which decides how endpoints are resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostMode {
    /// `mcp standalone`: plugins are local processes (supervised when they have a
    /// `command`).
    Standalone {
        /// The data directory; Unix sockets live in its `plugins/` subdirectory.
        data_dir: PathBuf,
    },
    /// `mcp dataplane` in a pod: sidecars over loopback or a shared socket directory,
    /// services over mutual TLS.
    Managed {
        /// Directory of sidecar sockets (`pluginSocketDir`).
        socket_dir: PathBuf,
        /// Directory of the client certificates (`pluginClientTlsDir`).
        client_tls_dir: PathBuf,
        /// Connect to this host instead of the Service's DNS name; the plugin's certificate
        /// is still verified against the Service name. For running the rendered
        /// configuration outside a cluster (and for tests).
        service_connect_host: Option<String>,
    },
}

impl HostMode {
    /// The directory holding standalone plugin sockets (`<data-dir>/plugins`), if standalone.
    pub fn standalone_socket_dir(&self) -> Option<PathBuf> {
        match self {
            HostMode::Standalone { data_dir } => Some(data_dir.join("plugins")),
            HostMode::Managed { .. } => None,
        }
    }
}

/// How one plugin is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// Loopback TCP, plain HTTP/2.
    Tcp(SocketAddr),
    /// A Unix domain socket, plain HTTP/2.
    Unix(PathBuf),
    /// HTTPS with a client certificate.
    Tls {
        /// The name the server certificate must carry (the Service's DNS name).
        domain: String,
        /// Where to connect: `domain`, or [`HostMode::Managed::service_connect_host`].
        connect_host: String,
        /// The port.
        port: u16,
        /// Holds `tls.crt`, `tls.key` (the client identity) and `ca.crt` (the CA the
        /// server's certificate must chain to).
        tls_dir: PathBuf,
    },
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp(a) => write!(f, "tcp://{a}"),
            Endpoint::Unix(p) => write!(f, "unix://{}", p.display()),
            Endpoint::Tls { domain, port, .. } => write!(f, "https://{domain}:{port}"),
        }
    }
}

impl Endpoint {
    /// What a supervised plugin is told in `MCP_PLUGIN_LISTEN`: `tcp://127.0.0.1:PORT` or
    /// `unix:///path.sock` (TLS endpoints are never supervised).
    pub fn listen_value(&self) -> String {
        self.to_string()
    }

    /// The socket file, for a Unix endpoint.
    pub fn socket_path(&self) -> Option<&Path> {
        match self {
            Endpoint::Unix(p) => Some(p),
            _ => None,
        }
    }

    /// Connects (HTTP/2, with TLS for [`Endpoint::Tls`]) within `timeout`.
    ///
    /// # Errors
    /// A message naming the endpoint and the cause (refused, timed out, a certificate file
    /// missing, a handshake refused).
    pub async fn connect(&self, timeout: Duration) -> Result<Channel, String> {
        let fail = |e: &dyn fmt::Display| format!("{self}: {e}");
        let endpoint = match self {
            Endpoint::Tcp(a) => tonic::transport::Endpoint::from_shared(format!("http://{a}"))
                .map_err(|e| fail(&e))?,
            Endpoint::Unix(p) => {
                tonic::transport::Endpoint::from_shared(format!("unix://{}", p.display()))
                    .map_err(|e| fail(&e))?
            }
            Endpoint::Tls {
                domain,
                connect_host,
                port,
                tls_dir,
            } => {
                let read = |file: &str| {
                    let path = tls_dir.join(file);
                    async move {
                        tokio::fs::read(&path)
                            .await
                            .map_err(|e| format!("{}: {e}", path.display()))
                    }
                };
                let cert = read("tls.crt").await.map_err(|e| fail(&e))?;
                let key = read("tls.key").await.map_err(|e| fail(&e))?;
                let ca = read("ca.crt").await.map_err(|e| fail(&e))?;
                let tls = ClientTlsConfig::new()
                    .domain_name(domain.clone())
                    .ca_certificate(Certificate::from_pem(ca))
                    .identity(Identity::from_pem(cert, key));
                tonic::transport::Endpoint::from_shared(format!("https://{connect_host}:{port}"))
                    .map_err(|e| fail(&e))?
                    .tls_config(tls)
                    .map_err(|e| fail(&e))?
            }
        };
        let endpoint = endpoint
            .connect_timeout(timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10));
        match tokio::time::timeout(timeout, endpoint.connect()).await {
            Ok(Ok(channel)) => Ok(channel),
            Ok(Err(e)) => Err(fail(&error_chain(&e))),
            Err(_) => Err(fail(&format!(
                "no connection within {} ms",
                timeout.as_millis()
            ))),
        }
    }
}

pub use mcp_plugin_api::error_chain;

/// Longest Unix socket path, octets: Linux's `sun_path` holds 108, including the terminating
/// NUL.
const MAX_SOCKET_PATH: usize = 107;

/// A Unix endpoint at `path`, refused when the path does not fit in a socket address (the
/// plugin could never listen there).
fn unix(path: PathBuf) -> Result<Endpoint, String> {
    let len = path.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(format!(
            "spec.transport: unix: the socket path {} is {len} octets, longer than the {MAX_SOCKET_PATH} a Unix socket address holds; use a shorter name or data directory, or transport tcp",
            path.display()
        ));
    }
    Ok(Endpoint::Unix(path))
}

/// The endpoint of PluginDeployment `namespace/name` with `spec` in `mode`.
///
/// # Errors
/// A message naming the field: a port outside 1..=65535, `mode: service` in standalone, a
/// Unix socket path too long for a socket address.
pub fn resolve(
    mode: &HostMode,
    namespace: &str,
    name: &str,
    spec: &PluginDeploymentSpec,
) -> Result<Endpoint, String> {
    let port = u16::try_from(spec.port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("spec.port: {} is not a port (1 to 65535)", spec.port))?;
    let tcp = Endpoint::Tcp(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    match (mode, spec.mode, spec.transport) {
        (HostMode::Standalone { .. }, PluginMode::Service, _) => Err(
            "spec.mode: service needs Kubernetes (a Deployment and a Service); standalone runs plugins as local sidecars".into(),
        ),
        (HostMode::Managed { .. }, PluginMode::Service, PluginTransport::Unix) => {
            Err("spec.transport: unix is only allowed with mode sidecar".into())
        }
        (_, PluginMode::Sidecar, PluginTransport::Tcp) => Ok(tcp),
        (HostMode::Standalone { data_dir }, PluginMode::Sidecar, PluginTransport::Unix) => {
            unix(data_dir.join("plugins").join(format!("{namespace}.{name}.sock")))
        }
        (HostMode::Managed { socket_dir, .. }, PluginMode::Sidecar, PluginTransport::Unix) => {
            unix(socket_dir.join(format!("{name}.sock")))
        }
        (
            HostMode::Managed {
                client_tls_dir,
                service_connect_host,
                ..
            },
            PluginMode::Service,
            PluginTransport::Tcp,
        ) => {
            let domain = format!("{}.{namespace}.svc", service_name(name));
            Ok(Endpoint::Tls {
                connect_host: service_connect_host.clone().unwrap_or_else(|| domain.clone()),
                domain,
                port,
                tls_dir: client_tls_dir.join(name),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcp_crds::plugin::ProtocolRange;

    fn spec(mode: PluginMode, transport: PluginTransport, port: i32) -> PluginDeploymentSpec {
        PluginDeploymentSpec {
            image: None,
            command: vec![],
            args: vec![],
            env: vec![],
            transport,
            protocol: ProtocolRange { min: 1, max: 1 },
            stages: vec![mcp_crds::pipeline::Stage::Deliver],
            capabilities: vec![],
            body_mode: Default::default(),
            max_body_size: None,
            default_config: None,
            config_schema: None,
            mode,
            port,
            replicas: None,
            tls: None,
            sandbox: None,
            suspend: false,
        }
    }

    #[test]
    fn endpoints_by_mode_mode_and_transport() {
        let standalone = HostMode::Standalone {
            data_dir: "/data".into(),
        };
        let managed = HostMode::Managed {
            socket_dir: "/run/p".into(),
            client_tls_dir: "/etc/c".into(),
            service_connect_host: None,
        };
        use PluginMode::{Service, Sidecar};
        use PluginTransport::{Tcp, Unix};
        let cases: Vec<(&HostMode, PluginMode, PluginTransport, Result<&str, &str>)> = vec![
            (&standalone, Sidecar, Tcp, Ok("tcp://127.0.0.1:50051")),
            (
                &standalone,
                Sidecar,
                Unix,
                Ok("unix:///data/plugins/ns.scan.sock"),
            ),
            (&standalone, Service, Tcp, Err("spec.mode")),
            (&managed, Sidecar, Tcp, Ok("tcp://127.0.0.1:50051")),
            (&managed, Sidecar, Unix, Ok("unix:///run/p/scan.sock")),
            (
                &managed,
                Service,
                Tcp,
                Ok("https://mcp-plugin-scan.ns.svc:50051"),
            ),
            (&managed, Service, Unix, Err("spec.transport")),
        ];
        for (mode, m, t, want) in cases {
            let got = resolve(mode, "ns", "scan", &spec(m, t, 50051)).map(|e| e.to_string());
            match (got, want) {
                (Ok(g), Ok(w)) => assert_eq!(g, w),
                (Err(g), Err(w)) => assert!(g.starts_with(w), "{g}"),
                (g, w) => panic!("{m:?} {t:?}: got {g:?}, want {w:?}"),
            }
        }
        let Ok(Endpoint::Tls { tls_dir, .. }) =
            resolve(&managed, "ns", "scan", &spec(Service, Tcp, 443))
        else {
            panic!("tls")
        };
        assert_eq!(tls_dir, Path::new("/etc/c/scan"));
    }

    #[test]
    fn bad_ports_are_refused() {
        let m = HostMode::Standalone {
            data_dir: "/d".into(),
        };
        for port in [0, -1, 65536] {
            let e = resolve(
                &m,
                "ns",
                "x",
                &spec(PluginMode::Sidecar, PluginTransport::Tcp, port),
            )
            .expect_err("bad port");
            assert!(e.starts_with("spec.port"), "{e}");
        }
    }
}
