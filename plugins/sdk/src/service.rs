//! The `mcp.plugin.v1.MailProcessor` service around a plugin: version negotiation, step
//! configs, the request stream's framing, panics, and a check of every reply before it is
//! sent. A request that breaks the contract gets `INVALID_ARGUMENT`, never a verdict.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use bytes::Bytes;
use futures::FutureExt;
use mcp_plugin_api::{Capabilities, PluginError, StepOutput};
use mcp_plugin_proto::client::ChunkAssembler;
use mcp_plugin_proto::convert::{
    body_mode_to_proto, capability_to_proto, context_from_proto, output_to_proto, stage_to_proto,
};
use mcp_plugin_proto::v1::process_message_request::Part;
use mcp_plugin_proto::{negotiate, v1};
use tonic::{Request, Response, Status, Streaming};

use crate::config::ConfigCache;
use crate::info::PluginInfo;

/// The service implementation shared by all connections.
pub(crate) struct Service {
    info: Arc<PluginInfo>,
    declared: Capabilities,
    configs: Arc<ConfigCache>,
}

impl Service {
    pub(crate) fn new(info: Arc<PluginInfo>, configs: Arc<ConfigCache>) -> Self {
        Self {
            declared: info.capability_set(),
            info,
            configs,
        }
    }

    /// Reads the request stream: the context, then (streamed mode, body not withheld) the
    /// chunks up to the `last` one, then the end of the stream.
    async fn read_request(
        &self,
        stream: &mut Streaming<v1::ProcessMessageRequest>,
    ) -> Result<(v1::MessageContext, Option<Bytes>), Status> {
        let first = stream.message().await?.ok_or_else(|| {
            invalid("the request stream is empty: the first request must carry the context")
        })?;
        let ctx = match first.part {
            Some(Part::Context(c)) => c,
            Some(Part::Chunk(_)) => return Err(invalid("a body chunk came before the context")),
            None => {
                return Err(invalid(
                    "the first request carries neither context nor chunk",
                ));
            }
        };
        let streamed = ctx.body_mode == v1::BodyMode::Streamed as i32 && !ctx.body_withheld;
        if !streamed {
            return match stream.message().await? {
                None => Ok((ctx, None)),
                Some(_) => Err(invalid(
                    "a request after the context, but no body is streamed (body mode not \
                     streamed, or body withheld)",
                )),
            };
        }
        // The body is what `size` leaves after the header section, and at most what the
        // plugin declared.
        let body_size = ctx.size.saturating_sub(ctx.header_section.len() as u64);
        let limit = usize::try_from(body_size.min(self.info.max_body_size)).unwrap_or(usize::MAX);
        let mut body = ChunkAssembler::new(limit);
        while let Some(req) = stream.message().await? {
            match req.part {
                Some(Part::Chunk(c)) => body.push(c).map_err(|e| invalid(e.to_string()))?,
                Some(Part::Context(_)) => return Err(invalid("the context was sent twice")),
                None => return Err(invalid("a request carries neither context nor chunk")),
            }
        }
        let body = body.finish().map_err(|e| invalid(e.to_string()))?;
        Ok((ctx, Some(body)))
    }

    /// Checks a plugin's answer against the contract and the declaration.
    fn check_output(&self, output: &StepOutput) -> Result<(), Status> {
        output.verdict.validate().map_err(|e| {
            Status::internal(format!("the plugin returned an invalid verdict: {e}"))
        })?;
        for m in &output.mutations {
            m.validate().map_err(|e| {
                Status::internal(format!("the plugin returned an invalid mutation: {e}"))
            })?;
        }
        if let Some(m) = self.declared.first_undeclared(&output.mutations) {
            return Err(Status::internal(format!(
                "the plugin returned mutation {} without declaring its capability",
                m.kind()
            )));
        }
        Ok(())
    }
}

fn invalid(message: impl Into<String>) -> Status {
    Status::invalid_argument(format!("plugin protocol violation: {}", message.into()))
}

/// The text of a panic payload.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(non-text panic payload)")
}

#[tonic::async_trait]
impl v1::mail_processor_server::MailProcessor for Service {
    async fn initialize(
        &self,
        request: Request<v1::InitializeRequest>,
    ) -> Result<Response<v1::InitializeResponse>, Status> {
        let req = request.into_inner();
        let host = req.min_protocol_version..=req.max_protocol_version;
        let Some(version) = negotiate(self.info.protocol.clone(), host.clone()) else {
            return Err(Status::failed_precondition(format!(
                "no common protocol version: the host speaks {host:?}, the plugin {:?}",
                self.info.protocol
            )));
        };
        let mut config_errors = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for step in &req.steps {
            if !seen.insert(step.config_id.as_str()) {
                continue;
            }
            if let Err(e) = self.configs.get(&step.config_id, &step.config_json) {
                tracing::warn!(pipeline = %step.pipeline, step = %step.step, error = %e, "step config refused");
                config_errors.push(v1::ConfigError {
                    config_id: step.config_id.clone(),
                    field: e.field,
                    message: e.message,
                });
            }
        }
        tracing::info!(host = %req.host, protocol_version = version, steps = req.steps.len(), "initialized");
        Ok(Response::new(v1::InitializeResponse {
            protocol_version: version,
            plugin_name: self.info.name.clone(),
            plugin_version: self.info.version.clone(),
            stages: self
                .info
                .stages
                .iter()
                .map(|s| stage_to_proto(*s).into())
                .collect(),
            capabilities: self
                .info
                .capabilities
                .iter()
                .map(|c| capability_to_proto(*c).into())
                .collect(),
            body_mode: body_mode_to_proto(self.info.body_mode).into(),
            max_body_size: self.info.max_body_size,
            config_errors,
        }))
    }

    async fn process_message(
        &self,
        request: Request<Streaming<v1::ProcessMessageRequest>>,
    ) -> Result<Response<v1::ProcessMessageResponse>, Status> {
        let mut stream = request.into_inner();
        let (ctx, streamed) = self.read_request(&mut stream).await?;
        let (message, meta) = context_from_proto(ctx, streamed).map_err(|e| invalid(e.0))?;
        if !self.info.stages.contains(&message.stage) {
            return Err(invalid(format!(
                "context.stage: {:?} is not a stage the plugin declared",
                message.stage
            )));
        }
        let plugin = self
            .configs
            .get(&meta.call.config_id, &meta.call.config_json)
            .map_err(|e| {
                Status::invalid_argument(format!(
                    "step config {} refused: {e}",
                    meta.call.config_id
                ))
            })?;
        let outcome = AssertUnwindSafe(async { plugin.process(&message).await })
            .catch_unwind()
            .await;
        let output = match outcome {
            Err(payload) => {
                let text = panic_text(payload.as_ref());
                tracing::error!(call_id = %meta.call.call_id, panic = text, "the plugin panicked");
                return Err(Status::internal(format!("the plugin panicked: {text}")));
            }
            Ok(Err(PluginError::Unavailable(e))) => return Err(Status::unavailable(e)),
            Ok(Err(e)) => return Err(Status::internal(e.to_string())),
            Ok(Ok(output)) => output,
        };
        self.check_output(&output)?;
        tracing::debug!(call_id = %meta.call.call_id, verdict = output.verdict.name(), mutations = output.mutations.len(), "processed");
        Ok(Response::new(output_to_proto(&output)))
    }

    async fn shutdown(
        &self,
        request: Request<v1::ShutdownRequest>,
    ) -> Result<Response<v1::ShutdownResponse>, Status> {
        tracing::info!(reason = %request.get_ref().reason, "the host is done with a connection");
        Ok(Response::new(v1::ShutdownResponse {}))
    }
}
