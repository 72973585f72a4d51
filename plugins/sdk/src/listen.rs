//! Where a plugin listens: the value of [`ENV_LISTEN`] (`MCP_PLUGIN_LISTEN`), set by the
//! operator (container env) and by the standalone supervisor.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

pub use mcp_crds::plugin::ENV_LISTEN;

/// Where a plugin listens when [`ENV_LISTEN`] is not set: loopback TCP on the
/// PluginDeployment's default port.
pub const DEFAULT_LISTEN: &str = "tcp://127.0.0.1:50051";

/// A listen (or connect) address: `tcp://IP:PORT` or `unix:///absolute/path.sock`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Listen {
    /// TCP on this address (`tcp://127.0.0.1:50051`, `tcp://[::]:50051`).
    Tcp(SocketAddr),
    /// A Unix domain socket at this absolute path.
    Unix(PathBuf),
}

/// A listen address that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid listen address {value:?}: {reason} (expected tcp://IP:PORT or unix:///absolute/path.sock)"
)]
pub struct ListenError {
    /// The address as given.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Listen {
    /// The address in [`ENV_LISTEN`], or [`DEFAULT_LISTEN`] when the variable is not set.
    ///
    /// # Errors
    /// [`ListenError`] when the variable is set but does not parse (or is not UTF-8).
    pub fn from_env() -> Result<Self, ListenError> {
        match std::env::var(ENV_LISTEN) {
            Ok(v) => v.parse(),
            Err(std::env::VarError::NotPresent) => DEFAULT_LISTEN.parse(),
            Err(std::env::VarError::NotUnicode(v)) => Err(ListenError {
                value: v.to_string_lossy().into_owned(),
                reason: format!("{ENV_LISTEN} is not UTF-8"),
            }),
        }
    }
}

impl FromStr for Listen {
    type Err = ListenError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| ListenError {
            value: s.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(addr) = s.strip_prefix("tcp://") {
            addr.parse()
                .map(Listen::Tcp)
                .map_err(|_| err("not an IP:PORT socket address"))
        } else if let Some(path) = s.strip_prefix("unix://") {
            let path = PathBuf::from(path);
            if !path.is_absolute() {
                return Err(err(
                    "the socket path must be absolute (unix:///dir/name.sock)",
                ));
            }
            Ok(Listen::Unix(path))
        } else {
            Err(err("unknown scheme"))
        }
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listen::Tcp(a) => write!(f, "tcp://{a}"),
            Listen::Unix(p) => write!(f, "unix://{}", p.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_parse_and_print_back() {
        for ok in [
            "tcp://127.0.0.1:50051",
            "tcp://[::1]:0",
            "unix:///var/run/mcp/plugins/x.sock",
        ] {
            let l: Listen = ok.parse().expect(ok);
            assert_eq!(l.to_string(), ok);
        }
        for bad in [
            "",
            "127.0.0.1:50051",
            "tcp://localhost:50051",
            "tcp://127.0.0.1",
            "unix://relative.sock",
            "http://127.0.0.1:1",
        ] {
            assert!(bad.parse::<Listen>().is_err(), "{bad}");
        }
    }
}
