//! Running a plugin as a host would, for tests and the `mcp-plugin-test` CLI: connect to a
//! running plugin or spawn one (with [`ENV_LISTEN`](crate::ENV_LISTEN) set), wait for its
//! health to say `SERVING`, `Initialize` it with step configs, and send recorded messages
//! through the body mode asked for. The calls go through `mcp_plugin_proto::client`, the
//! code the dataplane's plugin host uses, so replies are checked the same way.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use hyper_util::rt::TokioIo;
use mcp_plugin_api::{Envelope, MessageContext, Mutation, Stage, StepOutput, Verdict};
use mcp_plugin_proto::client::{CallError, Client, client, process_message};
use mcp_plugin_proto::convert::{CallInfo, Outgoing, context_to_proto};
use mcp_plugin_proto::{PROTOCOL_VERSIONS, v1};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::process::{Child, Command};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::{BodyMode, Listen};

/// Largest gRPC message the harness sends or accepts, octets (64 MiB).
pub const MAX_MESSAGE: usize = 64 << 20;

/// Why the harness could not reach a serving plugin.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The plugin process could not be started.
    #[error("cannot start the plugin: {0}")]
    Spawn(std::io::Error),
    /// The plugin process exited before serving.
    #[error("the plugin exited before serving: {0}")]
    Exited(std::process::ExitStatus),
    /// No connection, or health not `SERVING`, before the deadline.
    #[error("the plugin at {target} is not serving after {waited:?}: {last}")]
    NotServing {
        /// Where the harness connected.
        target: String,
        /// How long it tried.
        waited: Duration,
        /// The last error or status seen.
        last: String,
    },
    /// The TLS client configuration was refused.
    #[error("TLS: {0}")]
    Tls(tonic::transport::Error),
}

/// A channel to the plugin at `target`; `tls` for a `service`-mode plugin (TCP only).
///
/// # Errors
/// The transport error of the first connection attempt.
pub async fn channel(
    target: &Listen,
    tls: Option<ClientTlsConfig>,
) -> Result<Channel, tonic::transport::Error> {
    match target {
        Listen::Tcp(addr) => {
            let scheme = if tls.is_some() { "https" } else { "http" };
            let mut endpoint =
                Endpoint::from_shared(format!("{scheme}://{addr}"))?.tcp_nodelay(true);
            if let Some(tls) = tls {
                endpoint = endpoint.tls_config(tls)?;
            }
            endpoint.connect().await
        }
        Listen::Unix(path) => {
            let path = path.clone();
            Endpoint::from_static("http://localhost")
                .connect_with_connector(tower::service_fn(move |_| {
                    let path = path.clone();
                    async move {
                        let stream = tokio::net::UnixStream::connect(path).await?;
                        Ok::<_, std::io::Error>(TokioIo::new(stream))
                    }
                }))
                .await
        }
    }
}

/// `StepConfig.config_id` of `config_json`: lower-case hex SHA-256 of its bytes.
pub fn config_id(config_json: &str) -> String {
    hex::encode(Sha256::digest(config_json.as_bytes()))
}

/// The `StepConfig` of step `step` of `pipeline` (`namespace/name`) with `config_json`.
pub fn step_config(pipeline: &str, step: &str, config_json: &str) -> v1::StepConfig {
    v1::StepConfig {
        pipeline: pipeline.to_owned(),
        step: step.to_owned(),
        config_id: config_id(config_json),
        config_json: config_json.to_owned(),
    }
}

/// How one message is sent: stage, body mode and limit, step config, envelope and the rest of
/// the context. [`Call::default`] is a delivery to `alice@example.com` in `headers` mode with
/// the empty config.
#[derive(Clone, Debug)]
pub struct Call {
    /// The stage.
    pub stage: Stage,
    /// The body mode sent (what a host grants).
    pub body_mode: BodyMode,
    /// Messages larger than this (octets) are sent with `body_withheld`.
    pub max_body_size: u64,
    /// The step config, a JSON object (`config_id` is computed).
    pub config_json: String,
    /// `namespace/pipeline` and step name.
    pub pipeline: String,
    /// The step's name.
    pub step: String,
    /// Sender and recipient.
    pub envelope: Envelope,
    /// Tenant name.
    pub tenant: String,
    /// Mailbox address.
    pub mailbox: String,
    /// Destination folder.
    pub folder: String,
    /// Flags and keywords so far.
    pub flags: Vec<String>,
    /// Metadata so far.
    pub metadata: BTreeMap<String, String>,
    /// Deadline of the call (sent as `grpc-timeout`).
    pub timeout: Duration,
}

impl Default for Call {
    fn default() -> Self {
        Self {
            stage: Stage::Deliver,
            body_mode: BodyMode::Headers,
            max_body_size: crate::DEFAULT_MAX_BODY_SIZE,
            config_json: "{}".into(),
            pipeline: "default/test".into(),
            step: "plugin".into(),
            envelope: Envelope {
                mail_from: "sender@example.net".into(),
                rcpt_to: "alice@example.com".into(),
            },
            tenant: "example".into(),
            mailbox: "alice@example.com".into(),
            folder: "INBOX".into(),
            flags: Vec::new(),
            metadata: BTreeMap::new(),
            timeout: Duration::from_secs(30),
        }
    }
}

impl Call {
    /// What a host sends for `message` with this call's settings.
    pub fn outgoing(&self, message: Bytes, call_id: &str) -> Outgoing {
        let ctx = MessageContext {
            stage: self.stage,
            tenant: self.tenant.clone(),
            mailbox: self.mailbox.clone(),
            folder: self.folder.clone(),
            envelope: self.envelope.clone(),
            message,
            flags: self.flags.clone(),
            metadata: self.metadata.clone(),
        };
        let call = CallInfo {
            call_id: call_id.to_owned(),
            pipeline: self.pipeline.clone(),
            step: self.step.clone(),
            config_id: config_id(&self.config_json),
            config_json: self.config_json.clone(),
        };
        context_to_proto(&ctx, call, self.body_mode, self.max_body_size)
    }
}

/// A connection to a serving plugin, and the plugin's process when the harness started it
/// (killed when the harness is dropped).
pub struct Harness {
    channel: Channel,
    client: Client,
    child: Option<Child>,
    target: Listen,
    calls: u64,
}

impl Harness {
    /// Connects to the plugin at `target` and waits (up to `wait`) until its health says
    /// `SERVING`.
    ///
    /// # Errors
    /// [`HarnessError::NotServing`] when that does not happen in time.
    pub async fn connect(target: &Listen, wait: Duration) -> Result<Self, HarnessError> {
        Self::connect_inner(target, None, None, wait).await
    }

    /// As [`Harness::connect`], with mutual TLS.
    ///
    /// # Errors
    /// As [`Harness::connect`].
    pub async fn connect_tls(
        target: &Listen,
        tls: ClientTlsConfig,
        wait: Duration,
    ) -> Result<Self, HarnessError> {
        Self::connect_inner(target, Some(tls), None, wait).await
    }

    /// Starts `program` with `args`, [`ENV_LISTEN`](crate::ENV_LISTEN) set to `listen` and
    /// its stdout and stderr on this process's stderr, then connects as [`Harness::connect`].
    ///
    /// # Errors
    /// [`HarnessError::Spawn`], [`HarnessError::Exited`] when it dies before serving, or
    /// [`HarnessError::NotServing`].
    pub async fn spawn(
        program: &str,
        args: &[String],
        listen: &Listen,
        wait: Duration,
    ) -> Result<Self, HarnessError> {
        use std::os::fd::AsFd;
        let stderr = || {
            std::io::stderr()
                .as_fd()
                .try_clone_to_owned()
                .map(Stdio::from)
                .map_err(HarnessError::Spawn)
        };
        let child = Command::new(program)
            .args(args)
            .env(crate::ENV_LISTEN, listen.to_string())
            .stdin(Stdio::null())
            .stdout(stderr()?)
            .stderr(stderr()?)
            .kill_on_drop(true)
            .spawn()
            .map_err(HarnessError::Spawn)?;
        Self::connect_inner(listen, None, Some(child), wait).await
    }

    async fn connect_inner(
        target: &Listen,
        tls: Option<ClientTlsConfig>,
        mut child: Option<Child>,
        wait: Duration,
    ) -> Result<Self, HarnessError> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut last: String;
        loop {
            if let Some(c) = child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                return Err(HarnessError::Exited(status));
            }
            match channel(target, tls.clone()).await {
                Ok(ch) => match health(&ch, "").await {
                    Ok(ServingStatus::Serving) => {
                        return Ok(Self {
                            client: client(ch.clone(), MAX_MESSAGE),
                            channel: ch,
                            child,
                            target: target.clone(),
                            calls: 0,
                        });
                    }
                    Ok(other) => last = format!("health {}", other.as_str_name()),
                    Err(e) => last = format!("health check: {}: {}", e.code(), e.message()),
                },
                Err(e) => {
                    if tls.is_some() && matches!(target, Listen::Unix(_)) {
                        return Err(HarnessError::Tls(e));
                    }
                    last = format!("connect: {e}");
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(HarnessError::NotServing {
                    target: target.to_string(),
                    waited: wait,
                    last,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Where the harness is connected.
    pub fn target(&self) -> &Listen {
        &self.target
    }

    /// The channel, for other clients (health, hostile requests).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// The `MailProcessor` client.
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// The health of `service` (`""` for the server, `mcp.plugin.v1.MailProcessor`).
    ///
    /// # Errors
    /// The gRPC status of the check.
    pub async fn health(&self, service: &str) -> Result<ServingStatus, tonic::Status> {
        health(&self.channel, service).await
    }

    /// `Initialize` with the host's range [`PROTOCOL_VERSIONS`] and `steps`.
    ///
    /// # Errors
    /// The gRPC status (`FAILED_PRECONDITION` when no version is common).
    pub async fn initialize(
        &mut self,
        steps: Vec<v1::StepConfig>,
    ) -> Result<v1::InitializeResponse, tonic::Status> {
        let request = v1::InitializeRequest {
            min_protocol_version: *PROTOCOL_VERSIONS.start(),
            max_protocol_version: *PROTOCOL_VERSIONS.end(),
            host: format!("mcp-plugin-test/{}", env!("CARGO_PKG_VERSION")),
            steps,
        };
        Ok(self.client.initialize(request).await?.into_inner())
    }

    /// Sends `message` (RFC 5322 octets) as `call` says and returns the checked reply.
    ///
    /// # Errors
    /// [`CallError::Status`] for a gRPC error, [`CallError::Protocol`] for a reply that breaks
    /// the contract.
    pub async fn run(&mut self, message: Bytes, call: &Call) -> Result<StepOutput, CallError> {
        self.calls += 1;
        let call_id = format!("test-{}", self.calls);
        process_message(
            &mut self.client,
            call.outgoing(message, &call_id),
            call.timeout,
        )
        .await
    }

    /// `Shutdown` with `reason`.
    ///
    /// # Errors
    /// The gRPC status.
    pub async fn shutdown(&mut self, reason: &str) -> Result<(), tonic::Status> {
        self.client
            .shutdown(v1::ShutdownRequest {
                reason: reason.to_owned(),
            })
            .await?;
        Ok(())
    }

    /// Stops a spawned plugin with SIGTERM and waits up to `wait` for it to exit (then kills
    /// it). `None` when the harness did not start the plugin.
    ///
    /// # Errors
    /// The I/O error of waiting for the process.
    pub async fn terminate(
        &mut self,
        wait: Duration,
    ) -> std::io::Result<Option<std::process::ExitStatus>> {
        let Some(child) = self.child.as_mut() else {
            return Ok(None);
        };
        if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
            // SAFETY: kill(2) with a pid this process spawned and has not reaped.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        match tokio::time::timeout(wait, child.wait()).await {
            Ok(status) => status.map(Some),
            Err(_) => {
                child.kill().await?;
                child.wait().await.map(Some)
            }
        }
    }
}

/// The health of `service` on `channel`.
async fn health(channel: &Channel, service: &str) -> Result<ServingStatus, tonic::Status> {
    let reply = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await?
        .into_inner();
    Ok(ServingStatus::try_from(reply.status).unwrap_or(ServingStatus::Unknown))
}

/// A unique Unix socket path in the temporary directory, for a spawned plugin.
pub fn temp_socket(name: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    std::env::temp_dir().join(format!(
        "mcp-{name}-{}-{}.sock",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// The JSON form of a verdict: `{"kind": "reject", "status": "5.7.1", "text": "..."}`
/// (`kind` as [`Verdict::name`]).
pub fn verdict_json(verdict: &Verdict) -> Value {
    match verdict {
        Verdict::Reject { status, text } | Verdict::TempFail { status, text } => {
            json!({"kind": verdict.name(), "status": status.to_string(), "text": text})
        }
        Verdict::Quarantine { reason } => json!({"kind": verdict.name(), "reason": reason}),
        _ => json!({"kind": verdict.name()}),
    }
}

/// The JSON form of a mutation: `{"kind": "addHeader", "name": ..., "value": ...}` (`kind` as
/// [`Mutation::kind`]; a replaced body is given by its length and SHA-256).
pub fn mutation_json(mutation: &Mutation) -> Value {
    let kind = mutation.kind();
    match mutation {
        Mutation::AddHeader { name, value } | Mutation::ChangeHeader { name, value } => {
            json!({"kind": kind, "name": name.as_str(), "value": value})
        }
        Mutation::RemoveHeader { name } => json!({"kind": kind, "name": name.as_str()}),
        Mutation::ReplaceBody { body } => json!({
            "kind": kind,
            "length": body.len(),
            "sha256": hex::encode(Sha256::digest(body)),
        }),
        Mutation::AddKeyword { keyword } => json!({"kind": kind, "keyword": keyword}),
        Mutation::AddFlag { flag } => json!({"kind": kind, "flag": flag.as_imap()}),
        Mutation::FileInto { folder } => json!({"kind": kind, "folder": folder}),
        Mutation::SetMetadata { key, value } => json!({"kind": kind, "key": key, "value": value}),
    }
}

/// The JSON form of a call's result: `{"verdict": {...}, "mutations": [...]}`, or
/// `{"error": {"code": "INVALID_ARGUMENT", "message": "..."}}` (`code` is the gRPC status
/// code name, or `PROTOCOL` for a reply that breaks the contract).
pub fn result_json(result: &Result<StepOutput, CallError>) -> Value {
    match result {
        Ok(out) => json!({
            "verdict": verdict_json(&out.verdict),
            "mutations": out.mutations.iter().map(mutation_json).collect::<Vec<_>>(),
        }),
        Err(CallError::Status(s)) => json!({"error": {
            "code": code_name(s.code()),
            "message": s.message(),
        }}),
        Err(CallError::Protocol(e)) => json!({"error": {"code": "PROTOCOL", "message": e.0}}),
    }
}

/// The upper-case name of a gRPC status code (`INVALID_ARGUMENT`), as in the gRPC spec.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}
