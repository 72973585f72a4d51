//! `clamav`: scans each message with a clamd daemon over its `INSTREAM` command, on TCP or a
//! Unix socket, and quarantines, rejects or tags what it finds.
//!
//! The protocol (clamd(8), "INSTREAM"): the client sends `zINSTREAM\0`, then the message in
//! chunks, each prefixed by its length as a 4-octet big-endian integer, then a zero length.
//! With the `z` prefix clamd ends its one reply with a NUL: `stream: OK`,
//! `stream: <signature> FOUND`, `INSTREAM size limit exceeded. ERROR` (the stream passed
//! clamd's `StreamMaxLength`) or `<reason> ERROR`. Only `stream: OK` is clean: every other
//! reply, and every connection failure, is a [`PluginError`] for the step's `onError`.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration as StdDuration;

use futures::future::BoxFuture;
use mcp_crds::Duration;
use mcp_crds::plugin::Capability;
use mcp_plugin_api::{
    Capabilities, MessageContext, Mutation, Plugin, PluginError, StepOutput, Verdict,
};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::ConfigError;
use crate::config::{Size, invalid, parse};

const NAME: &str = "clamav";

/// The header `action: tag` sets, carrying the signature name.
pub const VIRUS_HEADER: &str = "X-MCP-Virus";
/// The header `onOversize: skip` sets on a message it did not scan.
pub const SCAN_HEADER: &str = "X-MCP-Virus-Scan";
/// The metadata key `onOversize: skip` sets on a message it did not scan.
pub const SCAN_METADATA: &str = "clamav.scan";
/// Longest reply accepted from clamd, in octets (NUL included); a signature name is far
/// shorter. A longer reply is a protocol violation.
pub const MAX_REPLY: usize = 1024;
/// Longest signature name accepted, in characters, so that verdict texts stay within the
/// 200 characters of the contract.
pub const MAX_SIGNATURE: usize = 150;
/// The reply to a stream over clamd's `StreamMaxLength`.
const SIZE_LIMIT_REPLY: &str = "INSTREAM size limit exceeded. ERROR";

/// Where clamd listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClamdAddress {
    /// `tcp://host:port`: a host name, an IPv4 address or a bracketed IPv6 address.
    Tcp {
        /// Host name or address (IPv6 without brackets).
        host: String,
        /// TCP port, 1 to 65535.
        port: u16,
    },
    /// `unix:///path`: an absolute path to clamd's `LocalSocket`.
    Unix(PathBuf),
}

impl fmt::Display for ClamdAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClamdAddress::Tcp { host, port } if host.contains(':') => {
                write!(f, "tcp://[{host}]:{port}")
            }
            ClamdAddress::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
            ClamdAddress::Unix(path) => write!(f, "unix://{}", path.display()),
        }
    }
}

impl std::str::FromStr for ClamdAddress {
    type Err = String;

    /// Parses `tcp://host:port` or `unix:///absolute/path`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("unix://") {
            if !path.starts_with('/') || path.len() < 2 {
                return Err(format!(
                    "{s:?}: a Unix socket address is unix:///absolute/path"
                ));
            }
            if path.contains('\0') {
                return Err(format!("{s:?}: the path has a NUL"));
            }
            return Ok(ClamdAddress::Unix(PathBuf::from(path)));
        }
        let Some(rest) = s.strip_prefix("tcp://") else {
            return Err(format!(
                "{s:?}: use tcp://host:port or unix:///path/to/clamd.ctl"
            ));
        };
        let bad = || format!("{s:?}: a TCP address is tcp://host:port (tcp://[::1]:3310 for IPv6)");
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(bad)?;
            let port = after.strip_prefix(':').ok_or_else(bad)?;
            host.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
            (host, port)
        } else {
            rest.rsplit_once(':').ok_or_else(bad)?
        };
        let host_ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-_:".contains(c));
        if !host_ok || (host.contains(':') && !rest.starts_with('[')) {
            return Err(bad());
        }
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let port: u16 = port.parse().map_err(|_| bad())?;
        if port == 0 {
            return Err(bad());
        }
        Ok(ClamdAddress::Tcp {
            host: host.to_owned(),
            port,
        })
    }
}

impl<'de> Deserialize<'de> for ClamdAddress {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What happens to a message in which clamd finds something.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum VirusAction {
    /// Hold it in the tenant's quarantine, the signature as reason.
    #[default]
    Quarantine,
    /// Refuse it permanently: 5.7.1 with a text naming the signature.
    Reject,
    /// Deliver it with `X-MCP-Virus: <signature>` (any such header the sender wrote is
    /// replaced).
    Tag,
}

/// What happens to a message larger than `maxSize`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OversizeAction {
    /// A plugin failure: the step's `onError` decides (fail closed by default).
    #[default]
    Error,
    /// Let it go on unscanned, marked `X-MCP-Virus-Scan: not scanned ...` and with the
    /// metadata `clamav.scan`.
    Skip,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_connect_timeout() -> Duration {
    Duration::from_secs(2)
}

fn default_max_size() -> Size {
    Size(25 << 20)
}

fn default_chunk_size() -> Size {
    Size(64 << 10)
}

/// Largest `chunkSize` accepted (octets).
pub const MAX_CHUNK_SIZE: u64 = 16 << 20;

/// `clamav` config.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClamavConfig {
    /// clamd's address: `tcp://host:port` (its `TCPSocket`) or `unix:///path` (its
    /// `LocalSocket`). Required.
    pub address: ClamdAddress,
    /// Bound on one whole scan (connect, send, reply); default `10s`. The step's own
    /// `timeout` still applies on top.
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
    /// Bound on connecting to clamd; default `2s`, at most `timeout`.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: Duration,
    /// Largest message sent to clamd, octets or a quantity; default `25Mi`. Keep it at or
    /// below clamd's `StreamMaxLength`: clamd refuses a longer stream, which is a failure.
    #[serde(default = "default_max_size")]
    pub max_size: Size,
    /// What a message over `maxSize` gets: `error` (default) or `skip`.
    #[serde(default)]
    pub on_oversize: OversizeAction,
    /// Size of the INSTREAM chunks, octets or a quantity; default `64Ki`, 1 octet to 16 MiB.
    #[serde(default = "default_chunk_size")]
    pub chunk_size: Size,
    /// What a message with a finding gets: `quarantine` (default), `reject` or `tag`.
    #[serde(default)]
    pub action: VirusAction,
}

/// One reply of clamd to `zINSTREAM`, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClamdReply {
    /// `stream: OK`: nothing found.
    Clean,
    /// `stream: <signature> FOUND`.
    Found(String),
    /// `INSTREAM size limit exceeded. ERROR`: clamd stopped reading at its `StreamMaxLength`.
    SizeLimit,
    /// `<reason> ERROR`: clamd could not scan.
    Error(String),
}

/// Parses one reply of clamd without its NUL terminator.
///
/// # Errors
/// A description of the reply when it is none of the forms of [`ClamdReply`], is not
/// printable ASCII, or names an empty or over-long signature.
pub fn parse_reply(reply: &[u8]) -> Result<ClamdReply, String> {
    let shown = || {
        let text = String::from_utf8_lossy(&reply[..reply.len().min(80)]);
        format!("{text:?}")
    };
    let Ok(text) = std::str::from_utf8(reply) else {
        return Err(format!("a reply that is not text: {}", shown()));
    };
    if text.is_empty() {
        return Err("an empty reply".into());
    }
    if !text.chars().all(|c| (' '..='~').contains(&c)) {
        return Err(format!("a reply with control characters: {}", shown()));
    }
    if text == SIZE_LIMIT_REPLY {
        return Ok(ClamdReply::SizeLimit);
    }
    if let Some(rest) = text.strip_prefix("stream: ") {
        if rest == "OK" {
            return Ok(ClamdReply::Clean);
        }
        if let Some(sig) = rest.strip_suffix(" FOUND") {
            if sig.is_empty() || sig.len() > MAX_SIGNATURE || sig.trim() != sig {
                return Err(format!(
                    "a FOUND reply with an unusable signature: {}",
                    shown()
                ));
            }
            return Ok(ClamdReply::Found(sig.to_owned()));
        }
        if let Some(reason) = rest.strip_suffix(" ERROR") {
            return Ok(ClamdReply::Error(reason.to_owned()));
        }
    }
    if let Some(reason) = text.strip_suffix(" ERROR") {
        return Ok(ClamdReply::Error(reason.to_owned()));
    }
    Err(format!("an unknown reply: {}", shown()))
}

/// Why one scan did not produce a reply.
#[derive(Debug, thiserror::Error)]
enum ExchangeError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("clamd {0}")]
    Protocol(String),
}

/// Reads one NUL-terminated reply of at most [`MAX_REPLY`] octets.
async fn read_reply<R: AsyncRead + Unpin>(reader: &mut R) -> Result<Vec<u8>, ExchangeError> {
    let mut reply = Vec::with_capacity(64);
    let mut buf = [0u8; 256];
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            return Err(ExchangeError::Protocol(if reply.is_empty() {
                "closed the connection without a reply".into()
            } else {
                format!(
                    "closed the connection in the middle of its reply {:?}",
                    String::from_utf8_lossy(&reply[..reply.len().min(80)])
                )
            }));
        }
        if let Some(end) = buf[..n].iter().position(|&b| b == 0) {
            reply.extend_from_slice(&buf[..end]);
            if reply.len() >= MAX_REPLY {
                return Err(ExchangeError::Protocol(format!(
                    "sent a reply over {MAX_REPLY} octets"
                )));
            }
            return Ok(reply);
        }
        reply.extend_from_slice(&buf[..n]);
        if reply.len() >= MAX_REPLY {
            return Err(ExchangeError::Protocol(format!(
                "sent a reply over {MAX_REPLY} octets"
            )));
        }
    }
}

/// Sends `zINSTREAM`, the message in chunks of at most `chunk` octets and the terminator.
async fn send_stream<W: AsyncWrite + Unpin>(
    writer: &mut W,
    message: &[u8],
    chunk: usize,
) -> std::io::Result<()> {
    writer.write_all(b"zINSTREAM\0").await?;
    for piece in message.chunks(chunk.max(1)) {
        let len =
            u32::try_from(piece.len()).map_err(|_| std::io::Error::other("chunk over 4 GiB"))?;
        writer.write_all(&len.to_be_bytes()).await?;
        writer.write_all(piece).await?;
    }
    writer.write_all(&0u32.to_be_bytes()).await?;
    writer.flush().await
}

/// One INSTREAM exchange on `stream`. Sending and reading run together: clamd answers a
/// stream over its `StreamMaxLength` before it has read all of it, and then closes.
async fn exchange<S: AsyncRead + AsyncWrite>(
    stream: S,
    message: &[u8],
    chunk: usize,
) -> Result<ClamdReply, ExchangeError> {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let send = send_stream(&mut writer, message, chunk);
    let read = read_reply(&mut reader);
    tokio::pin!(send, read);
    let mut sent: Option<std::io::Result<()>> = None;
    let reply = loop {
        tokio::select! {
            reply = &mut read => break reply,
            result = &mut send, if sent.is_none() => sent = Some(result),
        }
    };
    let sent_all = matches!(sent, Some(Ok(())));
    let reply = match (reply, sent) {
        (Ok(reply), _) => reply,
        // The reply failed after a failed send: the send's error says more.
        (Err(ExchangeError::Protocol(_)), Some(Err(e))) => return Err(ExchangeError::Io(e)),
        (Err(e), _) => return Err(e),
    };
    let parsed = parse_reply(&reply).map_err(|e| ExchangeError::Protocol(format!("sent {e}")))?;
    match parsed {
        // clamd may cut a stream short only to refuse it.
        ClamdReply::SizeLimit | ClamdReply::Error(_) => Ok(parsed),
        _ if sent_all => Ok(parsed),
        _ => Err(ExchangeError::Protocol(format!(
            "answered {:?} before the whole message was sent",
            String::from_utf8_lossy(&reply)
        ))),
    }
}

/// The `clamav` plugin.
#[derive(Debug)]
pub struct Clamav {
    config: ClamavConfig,
}

impl Clamav {
    /// Parses and validates `config`; does not connect.
    ///
    /// # Errors
    /// [`ConfigError`] naming the field: missing or malformed `address`, zero or
    /// inconsistent timeouts, `maxSize` or `chunkSize` out of range, unknown fields.
    pub fn from_config(config: Option<&serde_json::Value>) -> Result<Self, ConfigError> {
        let config: ClamavConfig = parse(NAME, config)?;
        if config.timeout.get().is_zero() {
            return Err(invalid(NAME, "timeout", "must be more than 0"));
        }
        if config.connect_timeout.get().is_zero() {
            return Err(invalid(NAME, "connectTimeout", "must be more than 0"));
        }
        if config.connect_timeout.get() > config.timeout.get() {
            return Err(invalid(
                NAME,
                "connectTimeout",
                format!("must be at most timeout ({})", config.timeout),
            ));
        }
        if config.max_size.octets() == 0 {
            return Err(invalid(NAME, "maxSize", "must be at least 1 octet"));
        }
        let chunk = config.chunk_size.octets();
        if chunk == 0 || chunk > MAX_CHUNK_SIZE {
            return Err(invalid(
                NAME,
                "chunkSize",
                format!("must be 1 octet to 16Mi, got {chunk}"),
            ));
        }
        #[cfg(not(unix))]
        if matches!(config.address, ClamdAddress::Unix(_)) {
            return Err(invalid(NAME, "address", "Unix sockets need a Unix system"));
        }
        Ok(Self { config })
    }

    /// `ChangeHeader` for `action: tag`; `ChangeHeader` and `SetMetadata` for
    /// `onOversize: skip`; nothing otherwise.
    pub fn capabilities(&self) -> Capabilities {
        let mut caps = Vec::new();
        if self.config.action == VirusAction::Tag {
            caps.push(Capability::ChangeHeader);
        }
        if self.config.on_oversize == OversizeAction::Skip {
            caps.extend([Capability::ChangeHeader, Capability::SetMetadata]);
        }
        caps.into_iter().collect()
    }

    /// What a reply of clamd means for the message.
    ///
    /// # Errors
    /// [`PluginError::Failed`] for a size-limit or error reply: never a clean result.
    pub fn decide(&self, reply: ClamdReply) -> Result<StepOutput, PluginError> {
        match reply {
            ClamdReply::Clean => Ok(StepOutput::pass()),
            ClamdReply::Found(sig) => Ok(match self.config.action {
                VirusAction::Quarantine => {
                    StepOutput::verdict(Verdict::quarantine(format!("clamav: {sig}")))
                }
                VirusAction::Reject => {
                    StepOutput::verdict(Verdict::reject(format!("Virus found: {sig}")))
                }
                VirusAction::Tag => StepOutput::mutate(vec![
                    Mutation::change_header(VIRUS_HEADER, sig)
                        .map_err(|e| PluginError::Failed(e.to_string()))?,
                ]),
            }),
            ClamdReply::SizeLimit => Err(PluginError::Failed(format!(
                "clamd at {} refused the message: INSTREAM size limit exceeded (lower maxSize to clamd's StreamMaxLength or raise that)",
                self.config.address
            ))),
            ClamdReply::Error(reason) => Err(PluginError::Failed(format!(
                "clamd at {} could not scan the message: {reason}",
                self.config.address
            ))),
        }
    }

    /// The output for a message of `size` octets over `maxSize`.
    fn oversize(&self, size: usize) -> Result<StepOutput, PluginError> {
        let max = self.config.max_size.octets();
        match self.config.on_oversize {
            OversizeAction::Error => Err(PluginError::Failed(format!(
                "message of {size} octets is over maxSize {max}: not scanned"
            ))),
            OversizeAction::Skip => {
                let note = format!("not scanned: {size} octets over maxSize {max}");
                let header = Mutation::change_header(SCAN_HEADER, note.clone())
                    .map_err(|e| PluginError::Failed(e.to_string()))?;
                Ok(StepOutput::mutate(vec![
                    header,
                    Mutation::SetMetadata {
                        key: SCAN_METADATA.into(),
                        value: note,
                    },
                ]))
            }
        }
    }

    /// Connects and runs one INSTREAM exchange, within `timeout`.
    async fn scan(&self, message: &[u8]) -> Result<ClamdReply, PluginError> {
        let address = &self.config.address;
        let chunk = usize::try_from(self.config.chunk_size.octets()).unwrap_or(usize::MAX);
        let connect_timeout = self.config.connect_timeout.get();
        let work = async {
            let result = match address {
                ClamdAddress::Tcp { host, port } => {
                    let stream = connect(
                        address,
                        connect_timeout,
                        tokio::net::TcpStream::connect((host.as_str(), *port)),
                    )
                    .await?;
                    // Nagle would hold back the small length prefixes.
                    let _ = stream.set_nodelay(true);
                    exchange(stream, message, chunk).await
                }
                #[cfg(unix)]
                ClamdAddress::Unix(path) => {
                    let stream = connect(
                        address,
                        connect_timeout,
                        tokio::net::UnixStream::connect(path),
                    )
                    .await?;
                    exchange(stream, message, chunk).await
                }
                #[cfg(not(unix))]
                ClamdAddress::Unix(_) => {
                    return Err(PluginError::Unavailable(
                        "Unix sockets need a Unix system".into(),
                    ));
                }
            };
            result.map_err(|e| match e {
                ExchangeError::Io(e) => PluginError::Unavailable(format!(
                    "clamd at {address}: connection failed during the scan: {e}"
                )),
                ExchangeError::Protocol(e) => {
                    PluginError::Protocol(format!("clamd at {address} {e}"))
                }
            })
        };
        let timeout = self.config.timeout.get();
        tokio::time::timeout(timeout, work).await.map_err(|_| {
            PluginError::Unavailable(format!(
                "clamd at {address} did not answer within {}",
                self.config.timeout
            ))
        })?
    }
}

async fn connect<S>(
    address: &ClamdAddress,
    timeout: StdDuration,
    connecting: impl std::future::Future<Output = std::io::Result<S>>,
) -> Result<S, PluginError> {
    match tokio::time::timeout(timeout, connecting).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(PluginError::Unavailable(format!(
            "cannot connect to clamd at {address}: {e}"
        ))),
        Err(_) => Err(PluginError::Unavailable(format!(
            "cannot connect to clamd at {address}: no connection within {timeout:?}"
        ))),
    }
}

impl Plugin for Clamav {
    fn capabilities(&self) -> Capabilities {
        Clamav::capabilities(self)
    }

    fn process<'a>(
        &'a self,
        message: &'a MessageContext,
    ) -> BoxFuture<'a, Result<StepOutput, PluginError>> {
        Box::pin(async move {
            let size = message.size();
            if u64::try_from(size).unwrap_or(u64::MAX) > self.config.max_size.octets() {
                return self.oversize(size);
            }
            let reply = self.scan(&message.message).await?;
            tracing::debug!(plugin = NAME, reply = ?reply, "clamd answered");
            self.decide(reply)
        })
    }
}

#[cfg(test)]
mod tests;
