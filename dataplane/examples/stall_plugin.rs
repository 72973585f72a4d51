//! `stall_plugin`: a deliberately simple external plugin for the end-to-end tests of the
//! plugin host (e2e/plugins/), written against the raw contract (`mcp_plugin_proto`) so it
//! can stop half way through a streamed body, which an SDK plugin never sees.
//!
//! Listens on `MCP_PLUGIN_LISTEN` (`tcp://IP:PORT` or `unix:///path.sock`), declares every
//! stage, `addHeader` and the streamed body mode. Each call is logged on stderr. With
//! `STALL_PLUGIN_MARKER=/path` set, the first body chunk of a call makes it write its pid to
//! that file and never answer (the test then kills it with SIGKILL); otherwise it reads the
//! whole body and answers `Continue` with `X-Stall-Plugin: <octets received>`.

use std::net::SocketAddr;

use mcp_plugin_proto::v1;
use mcp_plugin_proto::v1::mail_processor_server::{MailProcessor, MailProcessorServer};
use mcp_plugin_proto::v1::process_message_request::Part;
use tonic::{Request, Response, Status, Streaming};

struct Stall {
    marker: Option<std::path::PathBuf>,
}

#[tonic::async_trait]
impl MailProcessor for Stall {
    async fn initialize(
        &self,
        request: Request<v1::InitializeRequest>,
    ) -> Result<Response<v1::InitializeResponse>, Status> {
        let r = request.into_inner();
        let version =
            mcp_plugin_proto::negotiate(r.min_protocol_version..=r.max_protocol_version, 1..=1)
                .ok_or_else(|| Status::failed_precondition("no common protocol version"))?;
        eprintln!(
            "stall-plugin: initialized by {} with {} step(s)",
            r.host,
            r.steps.len()
        );
        Ok(Response::new(v1::InitializeResponse {
            protocol_version: version,
            plugin_name: "stall".into(),
            plugin_version: "1".into(),
            stages: vec![
                v1::Stage::Deliver.into(),
                v1::Stage::Append.into(),
                v1::Stage::PostStore.into(),
            ],
            capabilities: vec![v1::Capability::AddHeader.into()],
            body_mode: v1::BodyMode::Streamed.into(),
            max_body_size: 0,
            config_errors: Vec::new(),
        }))
    }

    async fn process_message(
        &self,
        request: Request<Streaming<v1::ProcessMessageRequest>>,
    ) -> Result<Response<v1::ProcessMessageResponse>, Status> {
        let mut stream = request.into_inner();
        let Some(v1::ProcessMessageRequest {
            part: Some(Part::Context(ctx)),
        }) = stream.message().await?
        else {
            return Err(Status::invalid_argument("the context must come first"));
        };
        eprintln!("stall-plugin: call {} step {}", ctx.call_id, ctx.step);
        let mut received = ctx.header_section.len() + ctx.body.len();
        while let Some(v1::ProcessMessageRequest {
            part: Some(Part::Chunk(chunk)),
        }) = stream.message().await?
        {
            received += chunk.data.len();
            if let Some(marker) = &self.marker {
                let _ = std::fs::write(marker, std::process::id().to_string());
                eprintln!("stall-plugin: stalling mid-stream");
                futures::future::pending::<()>().await;
            }
            if chunk.last {
                break;
            }
        }
        Ok(Response::new(v1::ProcessMessageResponse {
            verdict: Some(v1::Verdict {
                kind: Some(v1::verdict::Kind::Continue(v1::Continue {})),
            }),
            mutations: vec![v1::Mutation {
                kind: Some(v1::mutation::Kind::AddHeader(v1::AddHeader {
                    name: "X-Stall-Plugin".into(),
                    value: received.to_string(),
                })),
            }],
        }))
    }

    async fn shutdown(
        &self,
        request: Request<v1::ShutdownRequest>,
    ) -> Result<Response<v1::ShutdownResponse>, Status> {
        eprintln!("stall-plugin: shutdown ({})", request.into_inner().reason);
        Ok(Response::new(v1::ShutdownResponse {}))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen = std::env::var(mcp_crds::plugin::ENV_LISTEN)?;
    let marker = std::env::var_os("STALL_PLUGIN_MARKER").map(Into::into);
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<MailProcessorServer<Stall>>().await;
    let router = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(MailProcessorServer::new(Stall { marker }));
    println!("stall-plugin: listening on {listen}");
    if let Some(path) = listen.strip_prefix("unix://") {
        let _ = std::fs::remove_file(path);
        let listener = tokio::net::UnixListener::bind(path)?;
        let incoming = futures::stream::unfold(listener, |l| async move {
            Some((l.accept().await.map(|(s, _)| s), l))
        });
        router.serve_with_incoming(incoming).await?;
    } else {
        let addr: SocketAddr = listen
            .strip_prefix("tcp://")
            .ok_or("MCP_PLUGIN_LISTEN must be tcp:// or unix://")?
            .parse()?;
        router.serve(addr).await?;
    }
    Ok(())
}
