//! The plugin host against real gRPC servers over real sockets (TCP, Unix, mutual TLS).
//!
//! Each fake plugin runs on a runtime of its own, so [`Server::kill`] drops it the way a
//! killed process goes: every connection closes at once, mid-call or not.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use mcp_crds::dataplane::{PluginPhase, PluginState};
use mcp_crds::pipeline::Stage;
use mcp_crds::{Pipeline, PluginDeployment, Resource};
use mcp_plugin_api::{EnhancedStatus, Envelope};
use mcp_plugin_proto::v1;
use mcp_plugin_proto::v1::mail_processor_server::{MailProcessor, MailProcessorServer};
use mcp_plugin_proto::v1::process_message_request::Part;
use prometheus_client::registry::Registry;
use tokio::sync::Notify;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};
use tonic::{Request, Response, Status, Streaming};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use super::*;
use crate::pipeline::compile::compile;
use crate::pipeline::engine::{self, Disposition, Input, Outcome};
use crate::pipeline::{MailboxScope, PipelineMetrics, PipelineSet};

const NS: &str = "mcp-example";

/// How the fake plugin behaves; the test may change it while the plugin runs.
#[derive(Clone)]
struct Script {
    /// Answer this version at Initialize instead of negotiating.
    version: Option<u32>,
    stages: Vec<v1::Stage>,
    capabilities: Vec<v1::Capability>,
    body_mode: v1::BodyMode,
    max_body_size: u64,
    refuse_configs: bool,
    reply: v1::ProcessMessageResponse,
    fail: Option<tonic::Code>,
    delay: Duration,
    /// After the first body chunk, tell the test (`mid_stream`) and never answer.
    stall_on_chunk: bool,
    serving: bool,
}

fn tag_reply() -> v1::ProcessMessageResponse {
    v1::ProcessMessageResponse {
        verdict: Some(v1::Verdict {
            kind: Some(v1::verdict::Kind::Continue(v1::Continue {})),
        }),
        mutations: vec![v1::Mutation {
            kind: Some(v1::mutation::Kind::AddHeader(v1::AddHeader {
                name: "X-Scanned".into(),
                value: "yes".into(),
            })),
        }],
    }
}

impl Default for Script {
    fn default() -> Self {
        Self {
            version: None,
            stages: vec![v1::Stage::Deliver],
            capabilities: vec![v1::Capability::AddHeader, v1::Capability::SetMetadata],
            body_mode: v1::BodyMode::Streamed,
            max_body_size: 0,
            refuse_configs: false,
            reply: tag_reply(),
            fail: None,
            delay: Duration::ZERO,
            stall_on_chunk: false,
            serving: true,
        }
    }
}

/// What the fake plugin saw.
#[derive(Default)]
struct Seen {
    initializes: AtomicU32,
    steps: Mutex<Vec<v1::StepConfig>>,
    calls: Mutex<Vec<(v1::MessageContext, Vec<u8>, usize)>>,
    timeouts: Mutex<Vec<String>>,
    shutdowns: AtomicU32,
}

#[derive(Clone)]
struct Fake {
    script: Arc<Mutex<Script>>,
    seen: Arc<Seen>,
    mid_stream: Arc<Notify>,
}

impl Fake {
    fn new(script: Script) -> Self {
        Self {
            script: Arc::new(Mutex::new(script)),
            seen: Arc::default(),
            mid_stream: Arc::default(),
        }
    }

    fn script(&self) -> Script {
        self.script.lock().expect("lock").clone()
    }

    fn set(&self, f: impl FnOnce(&mut Script)) {
        f(&mut self.script.lock().expect("lock"));
    }

    fn calls(&self) -> usize {
        self.seen.calls.lock().expect("lock").len()
    }
}

#[tonic::async_trait]
impl MailProcessor for Fake {
    async fn initialize(
        &self,
        request: Request<v1::InitializeRequest>,
    ) -> Result<Response<v1::InitializeResponse>, Status> {
        self.seen.initializes.fetch_add(1, Ordering::SeqCst);
        let r = request.into_inner();
        *self.seen.steps.lock().expect("lock") = r.steps.clone();
        let s = self.script();
        let version = match s.version {
            Some(v) => v,
            None => {
                mcp_plugin_proto::negotiate(r.min_protocol_version..=r.max_protocol_version, 1..=1)
                    .ok_or_else(|| Status::failed_precondition("no common version"))?
            }
        };
        let config_errors = if s.refuse_configs {
            r.steps
                .iter()
                .map(|st| v1::ConfigError {
                    config_id: st.config_id.clone(),
                    field: "$.x".into(),
                    message: "refused by the fake".into(),
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok(Response::new(v1::InitializeResponse {
            protocol_version: version,
            plugin_name: "fake".into(),
            plugin_version: "1".into(),
            stages: s.stages.iter().map(|x| (*x).into()).collect(),
            capabilities: s.capabilities.iter().map(|x| (*x).into()).collect(),
            body_mode: s.body_mode.into(),
            max_body_size: s.max_body_size,
            config_errors,
        }))
    }

    async fn process_message(
        &self,
        request: Request<Streaming<v1::ProcessMessageRequest>>,
    ) -> Result<Response<v1::ProcessMessageResponse>, Status> {
        if let Some(t) = request.metadata().get("grpc-timeout") {
            self.seen
                .timeouts
                .lock()
                .expect("lock")
                .push(t.to_str().unwrap_or("?").to_owned());
        }
        let s = self.script();
        let mut stream = request.into_inner();
        let Some(v1::ProcessMessageRequest {
            part: Some(Part::Context(ctx)),
        }) = stream.message().await?
        else {
            return Err(Status::invalid_argument("context first"));
        };
        let mut body = ctx.body.to_vec();
        let mut chunks = 0;
        if ctx.body_mode == i32::from(v1::BodyMode::Streamed) && !ctx.body_withheld {
            while let Some(v1::ProcessMessageRequest {
                part: Some(Part::Chunk(c)),
            }) = stream.message().await?
            {
                chunks += 1;
                assert!(c.data.len() <= mcp_plugin_proto::MAX_CHUNK);
                body.extend_from_slice(&c.data);
                if s.stall_on_chunk {
                    self.mid_stream.notify_one();
                    futures::future::pending::<()>().await;
                }
                if c.last {
                    break;
                }
            }
        }
        self.seen
            .calls
            .lock()
            .expect("lock")
            .push((ctx, body, chunks));
        tokio::time::sleep(s.delay).await;
        if let Some(code) = s.fail {
            return Err(Status::new(code, "injected failure"));
        }
        Ok(Response::new(s.reply))
    }

    async fn shutdown(
        &self,
        _request: Request<v1::ShutdownRequest>,
    ) -> Result<Response<v1::ShutdownResponse>, Status> {
        self.seen.shutdowns.fetch_add(1, Ordering::SeqCst);
        Ok(Response::new(v1::ShutdownResponse {}))
    }
}

#[derive(Clone)]
enum Listen {
    Tcp(SocketAddr),
    Unix(PathBuf),
    Tls(SocketAddr, ServerTlsConfig),
}

/// A fake plugin serving on a runtime of its own.
struct Server {
    runtime: Option<tokio::runtime::Runtime>,
    health: HealthReporter,
}

impl Server {
    fn start(listen: &Listen, fake: &Fake) -> (Self, Listen) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let (health, health_service) = tonic_health::server::health_reporter();
        let svc = MailProcessorServer::new(fake.clone())
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20);
        let initial = if fake.script().serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        let reporter = health.clone();
        let bound = match listen {
            Listen::Tcp(a) | Listen::Tls(a, _) => {
                let l = std::net::TcpListener::bind(a).expect("bind");
                l.set_nonblocking(true).expect("nonblocking");
                let addr = l.local_addr().expect("addr");
                let tls = match listen {
                    Listen::Tls(_, t) => Some(t.clone()),
                    _ => None,
                };
                runtime.spawn(async move {
                    reporter
                        .set_service_status(HEALTH_SERVICE_NAME, initial)
                        .await;
                    let l = tokio::net::TcpListener::from_std(l).expect("listener");
                    let mut b = tonic::transport::Server::builder();
                    if let Some(t) = tls {
                        b = b.tls_config(t).expect("tls");
                    }
                    let _ = b
                        .add_service(health_service)
                        .add_service(svc)
                        .serve_with_incoming(tonic::transport::server::TcpIncoming::from(l))
                        .await;
                });
                match listen {
                    Listen::Tls(_, t) => Listen::Tls(addr, t.clone()),
                    _ => Listen::Tcp(addr),
                }
            }
            Listen::Unix(path) => {
                let _ = std::fs::remove_file(path);
                std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
                let l = std::os::unix::net::UnixListener::bind(path).expect("bind unix");
                l.set_nonblocking(true).expect("nonblocking");
                runtime.spawn(async move {
                    reporter
                        .set_service_status(HEALTH_SERVICE_NAME, initial)
                        .await;
                    let l = tokio::net::UnixListener::from_std(l).expect("listener");
                    let incoming = futures::stream::unfold(l, |l| async move {
                        let r = l.accept().await.map(|(s, _)| s);
                        Some((r, l))
                    });
                    let _ = tonic::transport::Server::builder()
                        .add_service(health_service)
                        .add_service(svc)
                        .serve_with_incoming(incoming)
                        .await;
                });
                Listen::Unix(path.clone())
            }
        };
        (
            Self {
                runtime: Some(runtime),
                health,
            },
            bound,
        )
    }

    async fn set_serving(&self, serving: bool) {
        let status = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        self.health
            .set_service_status(HEALTH_SERVICE_NAME, status)
            .await;
    }

    /// Drops the server like a killed process: every task and connection at once.
    fn kill(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

const HEALTH_SERVICE_NAME: &str = connection::HEALTH_SERVICE;

fn fast() -> HostSettings {
    HostSettings {
        connect_timeout: Duration::from_secs(2),
        initialize_timeout: Duration::from_secs(2),
        shutdown_timeout: Duration::from_millis(500),
        reconnect_base: Duration::from_millis(20),
        reconnect_max: Duration::from_millis(200),
        breaker_threshold: 3,
        breaker_open: Duration::from_millis(300),
        breaker_open_max: Duration::from_secs(1),
        restart_base: Duration::from_millis(20),
        restart_max: Duration::from_millis(100),
        restart_stable: Duration::from_secs(10),
        stop_grace: Duration::from_secs(1),
        retire_drain: Duration::from_secs(5),
    }
}

fn deployment(spec_yaml: &str) -> PluginDeployment {
    let yaml = format!(
        "apiVersion: mcp.dev/v1alpha1\nkind: PluginDeployment\nmetadata: {{name: scanner, namespace: {NS}}}\nspec:\n  protocol: {{min: 1, max: 1}}\n  stages: [deliver]\n  defaultConfig: {{x: 0, keep: true}}\n{spec_yaml}"
    );
    match Resource::parse_stream(&yaml)
        .expect("PluginDeployment")
        .remove(0)
    {
        Resource::PluginDeployment(d) => *d,
        other => panic!("not a PluginDeployment: {}", other.kind()),
    }
}

fn pipeline(step: &str) -> Pipeline {
    let yaml = format!(
        "apiVersion: mcp.dev/v1alpha1\nkind: Pipeline\nmetadata: {{name: p, namespace: {NS}}}\nspec:\n  scope: {{type: TenantDefault}}\n  stages: [deliver]\n  steps: [{{name: scan, plugin: {{name: scanner}}, config: {{x: 1}}, {step}}}]\n"
    );
    match Resource::parse_stream(&yaml).expect("Pipeline").remove(0) {
        Resource::Pipeline(p) => *p,
        other => panic!("not a Pipeline: {}", other.kind()),
    }
}

fn port_of(listen: &Listen) -> u16 {
    match listen {
        Listen::Tcp(a) | Listen::Tls(a, _) => a.port(),
        Listen::Unix(_) => 50051,
    }
}

struct Rig {
    host: Arc<PluginHost>,
    set: PipelineSet,
    metrics: PipelineMetrics,
    registry: Registry,
}

impl Rig {
    fn new(mode: HostMode, d: PluginDeployment, p: Pipeline) -> Self {
        let host = PluginHost::new(mode, fast());
        let plan = host.plan(&[d], true).expect("plan");
        let set = compile(&[p], &|_| Some("example".into()), &plan).expect("compiles");
        host.commit(plan);
        let mut registry = Registry::default();
        let metrics = PipelineMetrics::register(&mut registry);
        host.metrics().register(&mut registry);
        Self {
            host,
            set,
            metrics,
            registry,
        }
    }

    fn state(&self) -> PluginState {
        self.host.state().plugins.remove(0)
    }

    /// Waits (bounded, so a bug fails instead of hanging) until the phase is `phase`.
    async fn wait_phase(&self, phase: PluginPhase) -> PluginState {
        for _ in 0..500 {
            let s = self.state();
            if s.phase == phase {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("never reached {phase:?}: {:?}", self.state());
    }

    async fn run(&self, message: Bytes) -> Outcome {
        let labels = BTreeMap::new();
        let chosen = self.set.select(
            Stage::Deliver,
            MailboxScope {
                tenant: "example",
                labels: &labels,
                pipeline_ref: None,
            },
        );
        engine::run(
            &chosen,
            Input {
                stage: Stage::Deliver,
                tenant: "example".into(),
                mailbox: "alice@example.com".into(),
                folder: "INBOX".into(),
                envelope: Envelope {
                    mail_from: "bob@example.net".into(),
                    rcpt_to: "alice@example.com".into(),
                },
                message,
                flags: Vec::new(),
            },
            &self.metrics,
        )
        .await
    }

    fn metrics_text(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("encode");
        out
    }
}

const HEADER: &[u8] = b"From: bob@example.net\r\nSubject: hi\r\n\r\n";

fn message(body_len: usize) -> Bytes {
    let mut m = HEADER.to_vec();
    m.extend((0..body_len).map(|i| b'a' + (i % 26) as u8));
    Bytes::from(m)
}

fn standalone(dir: &Path) -> HostMode {
    HostMode::Standalone {
        data_dir: dir.to_owned(),
    }
}

fn tempfail_430(out: &Outcome) -> bool {
    matches!(&out.disposition, Disposition::TempFail { status, .. } if *status == EnhancedStatus::new(4, 3, 0))
}

#[tokio::test]
async fn negotiates_and_serves_over_tcp_and_unix_sockets() {
    for transport in ["tcp", "unix"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let fake = Fake::new(Script::default());
        let listen = match transport {
            "tcp" => Listen::Tcp("127.0.0.1:0".parse().expect("addr")),
            _ => Listen::Unix(
                dir.path()
                    .join("plugins")
                    .join(format!("{NS}.scanner.sock")),
            ),
        };
        let (_server, bound) = Server::start(&listen, &fake);
        let d = deployment(&format!(
            "  capabilities: [addHeader]\n  transport: {transport}\n  port: {}\n",
            port_of(&bound)
        ));
        let rig = Rig::new(standalone(dir.path()), d, pipeline("onError: failClosed"));
        let s = rig.wait_phase(PluginPhase::Serving).await;
        assert_eq!(s.negotiated_version, Some(1), "{transport}");
        assert_eq!(s.plugin.as_deref(), Some("fake 1"));
        assert_eq!(s.last_error, None);
        assert!(
            s.endpoint.starts_with(&format!("{transport}://")),
            "{}",
            s.endpoint
        );

        let out = rig.run(message(10)).await;
        assert_eq!(out.disposition, Disposition::Store, "{transport}");
        assert!(
            out.message.starts_with(b"X-Scanned: yes\r\n"),
            "{transport}"
        );

        let steps = fake.seen.steps.lock().expect("lock").clone();
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].pipeline, format!("{NS}/p"));
        assert_eq!(steps[0].step, "scan");
        assert_eq!(
            steps[0].config_json, r#"{"keep":true,"x":1}"#,
            "merged over defaultConfig"
        );
        let calls = fake.seen.calls.lock().expect("lock").clone();
        assert_eq!(calls[0].0.config_id, steps[0].config_id);
        assert_eq!(
            calls[0].0.body_mode,
            i32::from(v1::BodyMode::Headers),
            "the spec's default, the lesser"
        );
        assert!(
            rig.metrics_text()
                .contains(r#"mcp_plugin_calls_total{plugin="mcp-example/scanner",outcome="ok"} 1"#)
        );
        rig.host.shutdown().await;
        assert_eq!(
            fake.seen.shutdowns.load(Ordering::SeqCst),
            1,
            "Shutdown sent"
        );
    }
}

#[tokio::test]
async fn a_version_outside_the_ranges_is_refused_and_calls_fail_at_once() {
    // (spec protocol, what the plugin answers, expected error)
    let cases = [
        ("{min: 2, max: 3}", None, "no common protocol version"),
        ("{min: 1, max: 1}", Some(7), "outside the offered"),
        ("{min: 1, max: 1}", Some(0), "outside the offered"),
    ];
    for (range, answer, want) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let fake = Fake::new(Script {
            version: answer,
            ..Script::default()
        });
        let (_server, bound) =
            Server::start(&Listen::Tcp("127.0.0.1:0".parse().expect("addr")), &fake);
        let mut d = deployment(&format!("  port: {}\n", port_of(&bound)));
        d.spec.protocol = match range {
            "{min: 2, max: 3}" => mcp_crds::plugin::ProtocolRange { min: 2, max: 3 },
            _ => mcp_crds::plugin::ProtocolRange { min: 1, max: 1 },
        };
        let rig = Rig::new(standalone(dir.path()), d, pipeline("onError: failClosed"));
        let s = rig.wait_phase(PluginPhase::NotServing).await;
        assert!(
            s.last_error.as_deref().is_some_and(|e| e.contains(want)),
            "{range} {answer:?}: {s:?}"
        );
        assert_eq!(s.negotiated_version, None);
        let out = rig.run(message(10)).await;
        assert!(tempfail_430(&out), "{:?}", out.disposition);
        assert_eq!(fake.calls(), 0, "never called");
    }
}

#[tokio::test]
async fn a_mutation_not_both_declared_and_granted_is_a_failure() {
    let set_metadata = v1::ProcessMessageResponse {
        verdict: Some(v1::Verdict {
            kind: Some(v1::verdict::Kind::Continue(v1::Continue {})),
        }),
        mutations: vec![v1::Mutation {
            kind: Some(v1::mutation::Kind::SetMetadata(v1::SetMetadata {
                key: "k".into(),
                value: "v".into(),
            })),
        }],
    };
    // (declared by the plugin, granted by the spec)
    let cases = [
        (vec![v1::Capability::AddHeader], "[addHeader, setMetadata]"),
        (
            vec![v1::Capability::AddHeader, v1::Capability::SetMetadata],
            "[addHeader]",
        ),
    ];
    for (declared, granted) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let fake = Fake::new(Script {
            capabilities: declared.clone(),
            reply: set_metadata.clone(),
            ..Script::default()
        });
        let (_server, bound) =
            Server::start(&Listen::Tcp("127.0.0.1:0".parse().expect("addr")), &fake);
        let d = deployment(&format!(
            "  capabilities: {granted}\n  port: {}\n",
            port_of(&bound)
        ));
        let rig = Rig::new(standalone(dir.path()), d, pipeline("onError: failClosed"));
        rig.wait_phase(PluginPhase::Serving).await;
        let out = rig.run(message(10)).await;
        assert!(
            tempfail_430(&out),
            "{declared:?} {granted}: {:?}",
            out.disposition
        );
        assert!(!out.metadata.contains_key("k"));
        assert_eq!(fake.calls(), 1);
    }
}

#[tokio::test]
async fn a_plugin_not_serving_gets_on_error_at_once_without_a_call() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = Fake::new(Script::default());
    let (server, bound) = Server::start(&Listen::Tcp("127.0.0.1:0".parse().expect("addr")), &fake);
    let d = deployment(&format!(
        "  capabilities: [addHeader]\n  port: {}\n",
        port_of(&bound)
    ));
    let rig = Rig::new(
        standalone(dir.path()),
        d,
        // A long timeout: an answer that waited for it would not be "at once".
        pipeline("onError: quarantine, timeout: 20s"),
    );
    rig.wait_phase(PluginPhase::Serving).await;
    server.set_serving(false).await;
    let s = rig.wait_phase(PluginPhase::NotServing).await;
    assert!(
        s.last_error
            .as_deref()
            .is_some_and(|e| e.contains("NOT_SERVING")),
        "{s:?}"
    );
    let out = rig.run(message(10)).await;
    assert!(
        matches!(out.disposition, Disposition::Quarantine { .. }),
        "{:?}",
        out.disposition
    );
    assert_eq!(fake.calls(), 0);
    assert!(rig.metrics_text().contains(
        r#"mcp_plugin_calls_total{plugin="mcp-example/scanner",outcome="unavailable"} 1"#
    ));
    server.set_serving(true).await;
    rig.wait_phase(PluginPhase::Serving).await;
    assert_eq!(rig.run(message(10)).await.disposition, Disposition::Store);
    assert_eq!(fake.calls(), 1);
}

#[tokio::test]
async fn the_breaker_opens_after_consecutive_failures_and_recovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = Fake::new(Script {
        fail: Some(tonic::Code::Internal),
        ..Script::default()
    });
    let (_server, bound) = Server::start(&Listen::Tcp("127.0.0.1:0".parse().expect("addr")), &fake);
    let d = deployment(&format!(
        "  capabilities: [addHeader]\n  port: {}\n",
        port_of(&bound)
    ));
    let rig = Rig::new(standalone(dir.path()), d, pipeline("onError: failOpen"));
    rig.wait_phase(PluginPhase::Serving).await;
    for _ in 0..3 {
        let out = rig.run(message(10)).await;
        assert_eq!(out.disposition, Disposition::Store, "failOpen");
        assert!(!out.message.starts_with(b"X-Scanned"));
    }
    assert_eq!(fake.calls(), 3);
    assert_eq!(rig.state().phase, PluginPhase::CircuitOpen);
    let out = rig.run(message(10)).await;
    assert_eq!(out.disposition, Disposition::Store);
    assert_eq!(fake.calls(), 3, "refused while open, without a call");
    assert!(rig.metrics_text().contains(r#"outcome="circuit_open"} 1"#));

    fake.set(|s| s.fail = None);
    rig.wait_phase(PluginPhase::Serving).await;
    let out = rig.run(message(10)).await;
    assert!(
        out.message.starts_with(b"X-Scanned: yes"),
        "the probe went through"
    );
    assert_eq!(fake.calls(), 4);
    assert_eq!(rig.state().phase, PluginPhase::Serving, "closed again");
}

#[tokio::test]
async fn the_host_reconnects_and_initializes_again_after_the_plugin_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = Fake::new(Script::default());
    let (mut server, bound) =
        Server::start(&Listen::Tcp("127.0.0.1:0".parse().expect("addr")), &fake);
    let d = deployment(&format!(
        "  capabilities: [addHeader]\n  port: {}\n",
        port_of(&bound)
    ));
    let rig = Rig::new(
        standalone(dir.path()),
        d,
        pipeline("onError: failClosed, timeout: 20s"),
    );
    rig.wait_phase(PluginPhase::Serving).await;
    server.kill();
    let s = rig.wait_phase(PluginPhase::Connecting).await;
    assert!(s.last_error.is_some());
    assert!(
        tempfail_430(&rig.run(message(10)).await),
        "down: failClosed at once"
    );

    let (_again, _) = Server::start(&bound, &fake);
    rig.wait_phase(PluginPhase::Serving).await;
    assert_eq!(
        fake.seen.initializes.load(Ordering::SeqCst),
        2,
        "Initialize again"
    );
    assert!(
        rig.run(message(10))
            .await
            .message
            .starts_with(b"X-Scanned: yes")
    );
}

#[tokio::test]
async fn a_call_past_the_step_timeout_fails_and_the_plugin_sees_the_deadline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = Fake::new(Script {
        delay: Duration::from_secs(30),
        ..Script::default()
    });
    let (_server, bound) = Server::start(&Listen::Tcp("127.0.0.1:0".parse().expect("addr")), &fake);
    let d = deployment(&format!(
        "  capabilities: [addHeader]\n  port: {}\n",
        port_of(&bound)
    ));
    let rig = Rig::new(
        standalone(dir.path()),
        d,
        pipeline("onError: failClosed, timeout: 300ms"),
    );
    rig.wait_phase(PluginPhase::Serving).await;
    let out = rig.run(message(10)).await;
    assert!(tempfail_430(&out), "{:?}", out.disposition);
    let timeouts = fake.seen.timeouts.lock().expect("lock").clone();
    assert_eq!(timeouts.len(), 1, "grpc-timeout sent");
    assert!(
        timeouts[0].ends_with('m') || timeouts[0].ends_with('u') || timeouts[0].ends_with('n'),
        "a sub-second deadline: {}",
        timeouts[0]
    );
}

#[tokio::test]
async fn a_refused_step_config_fails_that_step() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = Fake::new(Script {
        refuse_configs: true,
        ..Script::default()
    });
    let (_server, bound) = Server::start(&Listen::Tcp("127.0.0.1:0".parse().expect("addr")), &fake);
    let d = deployment(&format!(
        "  capabilities: [addHeader]\n  port: {}\n",
        port_of(&bound)
    ));
    let rig = Rig::new(standalone(dir.path()), d, pipeline("onError: quarantine"));
    rig.wait_phase(PluginPhase::Serving).await;
    let out = rig.run(message(10)).await;
    let Disposition::Quarantine { reason, .. } = &out.disposition else {
        panic!("{:?}", out.disposition)
    };
    assert!(reason.contains("refused this step's config"), "{reason}");
    assert_eq!(fake.calls(), 0);
}

#[tokio::test]
async fn body_modes_send_what_they_promise_and_oversized_bodies_are_withheld_explicitly() {
    let big = 3 * mcp_plugin_proto::MAX_CHUNK + 100;
    // (spec body mode, maxBodySize, body length, plugin wants) → what the plugin gets
    struct Case {
        mode: &'static str,
        max: Option<&'static str>,
        len: usize,
        header: bool,
        body: bool,
        withheld: bool,
        chunks: usize,
    }
    let cases = [
        Case {
            mode: "none",
            max: None,
            len: big,
            header: false,
            body: false,
            withheld: false,
            chunks: 0,
        },
        Case {
            mode: "headers",
            max: None,
            len: big,
            header: true,
            body: false,
            withheld: false,
            chunks: 0,
        },
        Case {
            mode: "buffered",
            max: None,
            len: big,
            header: true,
            body: true,
            withheld: false,
            chunks: 0,
        },
        Case {
            mode: "streamed",
            max: None,
            len: big,
            header: true,
            body: true,
            withheld: false,
            chunks: 4,
        },
        Case {
            mode: "streamed",
            max: None,
            len: 0,
            header: true,
            body: true,
            withheld: false,
            chunks: 1,
        },
        Case {
            mode: "buffered",
            max: Some("1Ki"),
            len: big,
            header: true,
            body: false,
            withheld: true,
            chunks: 0,
        },
        Case {
            mode: "streamed",
            max: Some("1Ki"),
            len: big,
            header: true,
            body: false,
            withheld: true,
            chunks: 0,
        },
    ];
    for c in cases {
        let what = format!("{} max {:?} len {}", c.mode, c.max, c.len);
        let dir = tempfile::tempdir().expect("tempdir");
        let fake = Fake::new(Script::default());
        let (_server, bound) =
            Server::start(&Listen::Tcp("127.0.0.1:0".parse().expect("addr")), &fake);
        let max = c
            .max
            .map(|m| format!("  maxBodySize: {m}\n"))
            .unwrap_or_default();
        let d = deployment(&format!(
            "  capabilities: [addHeader]\n  bodyMode: {}\n{max}  port: {}\n",
            c.mode,
            port_of(&bound)
        ));
        let rig = Rig::new(standalone(dir.path()), d, pipeline("onError: failClosed"));
        rig.wait_phase(PluginPhase::Serving).await;
        let msg = message(c.len);
        let out = rig.run(msg.clone()).await;
        assert_eq!(out.disposition, Disposition::Store, "{what}");
        let calls = fake.seen.calls.lock().expect("lock").clone();
        let (ctx, body, chunks) = &calls[0];
        assert_eq!(
            ctx.size,
            msg.len() as u64,
            "{what}: size is always the whole message"
        );
        assert_eq!(ctx.header_section.as_ref() == HEADER, c.header, "{what}");
        if c.body {
            assert_eq!(body.as_slice(), &msg[HEADER.len()..], "{what}");
        } else {
            assert!(body.is_empty(), "{what}");
        }
        assert_eq!(ctx.body_withheld, c.withheld, "{what}");
        assert_eq!(*chunks, c.chunks, "{what}");
        assert_eq!(
            out.metadata
                .get("plugin.scan.body-withheld")
                .map(String::as_str),
            c.withheld.then_some("true"),
            "{what}: a withheld body is recorded, never a silent pass"
        );
        rig.host.shutdown().await;
    }
}

/// Writes `tls.crt`, `tls.key` and `ca.crt` into `dir`.
fn write_tls(dir: &Path, cert: &str, key: &str, ca: &str) {
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::write(dir.join("tls.crt"), cert).expect("write");
    std::fs::write(dir.join("tls.key"), key).expect("write");
    std::fs::write(dir.join("ca.crt"), ca).expect("write");
}

struct Pki {
    ca: String,
    cert: String,
    key: String,
}

fn pki(ca_name: &str, leaf: &str) -> (Pki, rcgen::CertifiedIssuer<'static, rcgen::KeyPair>) {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, ca_name);
    let ca = rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().expect("key"))
        .expect("ca");
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec![leaf.to_owned()])
        .expect("params")
        .signed_by(&key, &ca)
        .expect("leaf");
    (
        Pki {
            ca: ca.pem(),
            cert: cert.pem(),
            key: key.serialize_pem(),
        },
        ca,
    )
}

fn leaf(ca: &rcgen::CertifiedIssuer<'static, rcgen::KeyPair>, name: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
        .expect("params")
        .signed_by(&key, ca)
        .expect("leaf");
    (cert.pem(), key.serialize_pem())
}

#[tokio::test]
async fn service_mode_uses_mutual_tls_and_refuses_a_wrong_ca() {
    let service = format!("mcp-plugin-scanner.{NS}.svc");
    let (server_pki, ca) = pki("plugin CA", &service);
    let (client_cert, client_key) = leaf(&ca, "dataplane");
    let (other, other_ca) = pki("another CA", &service);
    let (other_client_cert, other_client_key) = leaf(&other_ca, "dataplane");
    // (client identity, CA the client trusts, phase)
    let cases = [
        (
            "right",
            (&client_cert, &client_key),
            &server_pki.ca,
            PluginPhase::Serving,
        ),
        (
            "client trusts another CA",
            (&client_cert, &client_key),
            &other.ca,
            PluginPhase::Connecting,
        ),
        (
            "client certificate from another CA",
            (&other_client_cert, &other_client_key),
            &server_pki.ca,
            PluginPhase::Connecting,
        ),
    ];
    for (what, (cert, key), trusted, want) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let fake = Fake::new(Script::default());
        let tls = ServerTlsConfig::new()
            .identity(Identity::from_pem(&server_pki.cert, &server_pki.key))
            .client_ca_root(Certificate::from_pem(&server_pki.ca));
        let (_server, bound) = Server::start(
            &Listen::Tls("127.0.0.1:0".parse().expect("addr"), tls),
            &fake,
        );
        write_tls(&dir.path().join("tls").join("scanner"), cert, key, trusted);
        let d = deployment(&format!(
            "  capabilities: [addHeader]\n  mode: service\n  port: {}\n  tls: {{serverSecretRef: {{name: s}}, clientSecretRef: {{name: c}}}}\n",
            port_of(&bound)
        ));
        let mode = HostMode::Managed {
            socket_dir: dir.path().join("sockets"),
            client_tls_dir: dir.path().join("tls"),
            service_connect_host: Some("127.0.0.1".into()),
        };
        let rig = Rig::new(mode, d, pipeline("onError: failClosed"));
        let s = rig.wait_phase(want).await;
        assert_eq!(
            s.endpoint,
            format!("https://{service}:{}", port_of(&bound)),
            "{what}"
        );
        if want == PluginPhase::Serving {
            assert!(
                rig.run(message(10))
                    .await
                    .message
                    .starts_with(b"X-Scanned: yes"),
                "{what}"
            );
        } else {
            // Stays refused: give it a few reconnects.
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert_ne!(rig.state().phase, PluginPhase::Serving, "{what}");
            assert!(rig.state().last_error.is_some(), "{what}");
            assert!(tempfail_430(&rig.run(message(10)).await), "{what}");
            assert_eq!(fake.calls(), 0, "{what}");
        }
    }
}

#[tokio::test]
async fn killing_the_plugin_mid_stream_applies_on_error_once() {
    for on_error in ["failClosed", "failOpen", "quarantine"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let fake = Fake::new(Script {
            stall_on_chunk: true,
            ..Script::default()
        });
        let (mut server, bound) =
            Server::start(&Listen::Tcp("127.0.0.1:0".parse().expect("addr")), &fake);
        let d = deployment(&format!(
            "  capabilities: [addHeader]\n  bodyMode: streamed\n  port: {}\n",
            port_of(&bound)
        ));
        let rig = Arc::new(Rig::new(
            standalone(dir.path()),
            d,
            pipeline(&format!("onError: {on_error}, timeout: 25s")),
        ));
        rig.wait_phase(PluginPhase::Serving).await;
        let r = Arc::clone(&rig);
        let msg = message(3 * mcp_plugin_proto::MAX_CHUNK + 1);
        let run = tokio::spawn({
            let msg = msg.clone();
            async move { r.run(msg).await }
        });
        fake.mid_stream.notified().await;
        server.kill();
        let out = run.await.expect("join");
        match on_error {
            "failClosed" => assert!(tempfail_430(&out), "{on_error}: {:?}", out.disposition),
            "failOpen" => {
                assert_eq!(out.disposition, Disposition::Store, "{on_error}");
                assert_eq!(out.message, msg, "{on_error}: unchanged");
            }
            _ => assert!(
                matches!(out.disposition, Disposition::Quarantine { .. }),
                "{on_error}: {:?}",
                out.disposition
            ),
        }
        let text = rig.metrics_text();
        assert!(
            text.contains(r#"outcome="unavailable"} 1"#),
            "{on_error}: the broken connection is reported as such, not as a timeout\n{text}"
        );
        assert!(!text.contains(r#"outcome="timeout""#), "{on_error}");
    }
}

#[test]
fn unknown_deployments_and_undeclared_stages_do_not_compile() {
    let host = PluginHost::new(
        HostMode::Standalone {
            data_dir: "/nonexistent".into(),
        },
        fast(),
    );
    let tenant_of = |_: &str| Some("example".to_owned());
    let strict = host.plan(&[], true).expect("plan");
    let e = compile(&[pipeline("onError: failClosed")], &tenant_of, &strict).expect_err("unknown");
    assert_eq!(e.field, "spec.steps[0].plugin.name");
    assert!(e.message.contains("no PluginDeployment \"scanner\""), "{e}");

    let lenient = host.plan(&[], false).expect("plan");
    assert!(
        compile(&[pipeline("onError: failClosed")], &tenant_of, &lenient).is_ok(),
        "managed: fails at call time"
    );

    let mut d = deployment("  port: 50051\n");
    d.spec.stages = vec![Stage::Append];
    let plan = host.plan(&[d], true).expect("plan");
    let e = compile(&[pipeline("onError: failClosed")], &tenant_of, &plan).expect_err("stage");
    assert!(e.message.contains("does not declare stage deliver"), "{e}");

    let plan = host
        .plan(&[deployment("  port: 50051\n")], true)
        .expect("plan");
    let bad = pipeline("onError: failClosed").spec.steps[0].clone();
    let mut p = pipeline("onError: failClosed");
    p.spec.steps[0] = mcp_crds::pipeline::PipelineStep {
        config: Some(serde_json::json!([1])),
        ..bad
    };
    let e = compile(&[p], &tenant_of, &plan).expect_err("config");
    assert_eq!(e.field, "spec.steps[0].config");
}

#[test]
fn invalid_plugin_deployments_are_refused_naming_the_field() {
    let host = PluginHost::new(
        HostMode::Standalone {
            data_dir: "/nonexistent".into(),
        },
        fast(),
    );
    let cases: Vec<(&str, &str)> = vec![
        ("  port: 0\n", "spec.port"),
        ("  port: 1\n  mode: service\n", "spec.mode"),
        (
            "  port: 1\n  maxBodySize: 1Mi\n",
            "spec.maxBodySize: only allowed",
        ),
        (
            "  port: 1\n  bodyMode: buffered\n  maxBodySize: lots\n",
            "spec.maxBodySize",
        ),
        (
            "  port: 1\n  env: [{name: A, valueFrom: {secretKeyRef: {name: s, key: k}}}]\n",
            "spec.env[0].valueFrom",
        ),
    ];
    for (yaml, want) in cases {
        let e = host.plan(&[deployment(yaml)], true).expect_err(yaml);
        assert!(e.message.starts_with(want), "{yaml}: {e}");
        assert_eq!(
            e.to_string(),
            format!("PluginDeployment {NS}/scanner: {}", e.message)
        );
    }
    let d = deployment("  port: 1\n");
    let e = host.plan(&[d.clone(), d], true).expect_err("twice");
    assert!(e.message.contains("defined twice"));
}

#[test]
fn two_sidecars_on_one_port_are_refused() {
    let host = PluginHost::new(
        HostMode::Standalone {
            data_dir: "/nonexistent".into(),
        },
        fast(),
    );
    let a = deployment("  port: 50051\n");
    let mut b = deployment("  port: 50051\n");
    b.metadata.name = Some("other".into());
    let e = host.plan(&[a.clone(), b.clone()], true).expect_err("clash");
    assert_eq!(e.name, "other");
    assert!(
        e.message.starts_with(
            "spec.port: 50051 is already the port of PluginDeployment mcp-example/scanner"
        ),
        "{e}"
    );
    b.spec.port = 50052;
    host.plan(&[a.clone(), b.clone()], true)
        .expect("distinct ports");
    // A Unix socket does not take the TCP port.
    b.spec.port = 50051;
    b.spec.transport = mcp_crds::plugin::PluginTransport::Unix;
    host.plan(&[a, b], true).expect("unix");
}

#[test]
fn a_socket_path_too_long_for_a_socket_address_is_refused() {
    let cases = [
        ("short", "/tmp/d".to_owned(), "scanner".to_owned(), true),
        ("long name", "/tmp/d".to_owned(), "n".repeat(100), false),
        (
            "long data dir",
            format!("/{}", "d".repeat(90)),
            "scanner".to_owned(),
            false,
        ),
    ];
    for (what, data_dir, name, ok) in cases {
        let host = PluginHost::new(
            HostMode::Standalone {
                data_dir: data_dir.into(),
            },
            fast(),
        );
        let mut d = deployment("  transport: unix\n");
        d.metadata.name = Some(name);
        match host.plan(&[d], true) {
            Ok(_) => assert!(ok, "{what}: accepted"),
            Err(e) => {
                assert!(!ok, "{what}: {e}");
                assert!(
                    e.message
                        .starts_with("spec.transport: unix: the socket path"),
                    "{what}: {e}"
                );
                assert!(e.message.contains("longer than the 107"), "{what}: {e}");
            }
        }
    }
}

#[tokio::test]
async fn an_unchanged_deployment_keeps_its_connection_across_reloads_and_a_changed_one_is_replaced()
{
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = Fake::new(Script::default());
    let (_server, bound) = Server::start(&Listen::Tcp("127.0.0.1:0".parse().expect("addr")), &fake);
    let d = deployment(&format!(
        "  capabilities: [addHeader]\n  port: {}\n",
        port_of(&bound)
    ));
    let mut rig = Rig::new(
        standalone(dir.path()),
        d.clone(),
        pipeline("onError: failClosed"),
    );
    rig.wait_phase(PluginPhase::Serving).await;
    assert_eq!(fake.seen.initializes.load(Ordering::SeqCst), 1);

    // Same spec, another step config: same connection, Initialize re-sent with the new one.
    let plan = rig.host.plan(std::slice::from_ref(&d), true).expect("plan");
    let mut p = pipeline("onError: failClosed");
    p.spec.steps[0].config = Some(serde_json::json!({"x": 2}));
    let set = compile(&[p], &|_| Some("example".into()), &plan).expect("compiles");
    rig.host.commit(plan);
    for _ in 0..250 {
        if fake.seen.initializes.load(Ordering::SeqCst) == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(fake.seen.initializes.load(Ordering::SeqCst), 2);
    assert_eq!(
        fake.seen.steps.lock().expect("lock")[0].config_json,
        r#"{"keep":true,"x":2}"#
    );
    assert_eq!(
        fake.seen.shutdowns.load(Ordering::SeqCst),
        0,
        "kept, not retired"
    );
    drop(set);

    // A changed spec: a new connection, and the old one is told to shut down once the
    // previous pipeline set (messages still running it) no longer calls it.
    let mut changed = d;
    changed.spec.capabilities.clear();
    let plan = rig.host.plan(&[changed], true).expect("plan");
    rig.host.commit(plan);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        fake.seen.shutdowns.load(Ordering::SeqCst),
        0,
        "the previous set still calls the old connection: not retired yet"
    );
    drop(std::mem::take(&mut rig.set));
    for _ in 0..250 {
        if fake.seen.shutdowns.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(fake.seen.shutdowns.load(Ordering::SeqCst), 1);
    rig.wait_phase(PluginPhase::Serving).await;
    let plan = rig.host.plan(&[], true).expect("plan");
    rig.host.commit(plan);
    assert!(rig.host.state().plugins.is_empty(), "removed");
}

#[tokio::test]
async fn a_supervised_process_is_restarted_and_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("runs");
    let script = format!(
        "echo run >> {}; echo \"listen=$MCP_PLUGIN_LISTEN\"; exit 3",
        marker.display()
    );
    let mut d = deployment("  port: 1\n");
    d.spec.command = vec!["/bin/sh".into(), "-c".into()];
    d.spec.args = vec![script];
    let host = PluginHost::new(standalone(dir.path()), fast());
    let plan = host.plan(&[d], true).expect("plan");
    host.commit(plan);
    let mut state = host.state().plugins.remove(0);
    for _ in 0..500 {
        state = host.state().plugins.remove(0);
        if state.restarts >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(state.restarts >= 2, "{state:?}");
    let runs = std::fs::read_to_string(&marker)
        .expect("ran")
        .lines()
        .count();
    assert!(runs >= 2, "{runs}");
    host.shutdown().await;
    assert!(host.state().plugins.is_empty());
}

#[tokio::test]
async fn the_managed_pipelines_file_carries_plugin_deployments_before_pipelines() {
    use crate::pipeline::reload::Source;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = "apiVersion: mcp.dev/v1alpha1\nkind: PluginDeployment\nmetadata: {name: scanner, namespace: mcp-example}\nspec:\n  image: registry.example/scanner:1\n  protocol: {min: 1, max: 1}\n  stages: [deliver]\n  transport: unix\n";
    let p = "apiVersion: mcp.dev/v1alpha1\nkind: Pipeline\nmetadata: {name: p, namespace: mcp-example}\nspec:\n  scope: {type: TenantDefault}\n  stages: [deliver]\n  steps: [{name: scan, plugin: {name: scanner}}, {name: other, plugin: {name: missing}}]\n";
    let path = dir.path().join("pipelines.yaml");
    std::fs::write(&path, format!("{d}---\n{p}")).expect("write");
    let host = PluginHost::new(
        HostMode::Managed {
            socket_dir: dir.path().join("sockets"),
            client_tls_dir: dir.path().join("tls"),
            service_connect_host: None,
        },
        fast(),
    );
    let source = Source::File {
        path: path.clone(),
        tenant: "example".into(),
    };
    let (set, plan) = source.load(&host).expect("loads");
    assert_eq!(
        set.loaded().len(),
        1,
        "a missing PluginDeployment is not a load error here"
    );
    host.commit(plan);
    let state = host.state();
    assert_eq!(state.plugins.len(), 1);
    assert_eq!(
        state.plugins[0].endpoint,
        format!(
            "unix://{}",
            dir.path().join("sockets/scanner.sock").display()
        )
    );
    assert_eq!(
        state.plugins[0].phase,
        PluginPhase::Connecting,
        "nobody listens"
    );

    let mailbox = "apiVersion: mcp.dev/v1alpha1\nkind: Tenant\nmetadata: {name: t}\nspec: {domains: [example.com]}\n";
    std::fs::write(&path, format!("{d}---\n{mailbox}")).expect("write");
    let e = source.load(&host).expect_err("a Tenant does not belong");
    assert!(
        e.0.contains("only PluginDeployments and Pipelines belong here"),
        "{e}"
    );
    host.shutdown().await;
}

/// Suspending a serving PluginDeployment retires its connection (Shutdown once the previous
/// pipeline set is done with it), lists it as `suspended`, and its step is skipped without
/// a call; resuming it connects and initializes again and the step runs again. A suspended
/// one is still checked: a step on a stage it does not declare does not compile.
#[tokio::test]
async fn suspending_a_plugin_retires_it_and_skips_its_steps_and_resuming_brings_it_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = Fake::new(Script::default());
    let (_server, bound) = Server::start(&Listen::Tcp("127.0.0.1:0".parse().expect("addr")), &fake);
    let d = deployment(&format!(
        "  capabilities: [addHeader]\n  port: {}\n",
        port_of(&bound)
    ));
    let mut rig = Rig::new(
        standalone(dir.path()),
        d.clone(),
        pipeline("onError: failClosed"),
    );
    rig.wait_phase(PluginPhase::Serving).await;
    assert!(
        rig.run(message(10))
            .await
            .message
            .starts_with(b"X-Scanned: yes\r\n")
    );
    let calls = || fake.seen.calls.lock().expect("lock").len();
    assert_eq!(calls(), 1);

    let tenant_of = |_: &str| Some("example".to_owned());
    let mut suspended = d.clone();
    suspended.spec.suspend = true;
    let mut undeclared = suspended.clone();
    undeclared.spec.stages = vec![Stage::Append];
    let plan = rig.host.plan(&[undeclared], true).expect("plan");
    let e = compile(&[pipeline("onError: failClosed")], &tenant_of, &plan)
        .expect_err("a suspended plugin's steps are still checked");
    assert!(e.message.contains("does not declare stage deliver"), "{e}");

    let plan = rig
        .host
        .plan(std::slice::from_ref(&suspended), true)
        .expect("plan");
    let set = compile(&[pipeline("onError: failClosed")], &tenant_of, &plan).expect("compiles");
    assert_eq!(set.loaded()[0].skipped_steps, ["scan"]);
    rig.host.commit(plan);
    rig.set = set;
    for _ in 0..250 {
        if fake.seen.shutdowns.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(fake.seen.shutdowns.load(Ordering::SeqCst), 1, "retired");
    let s = rig.state();
    assert_eq!(s.phase, PluginPhase::Suspended);
    assert_eq!(s.endpoint, format!("tcp://127.0.0.1:{}", port_of(&bound)));
    assert_eq!(
        (s.negotiated_version, s.last_error.as_deref()),
        (None, None)
    );
    assert_eq!(
        serde_json::to_value(&s).expect("json")["phase"],
        "suspended"
    );

    let out = rig.run(message(10)).await;
    assert_eq!(out.disposition, Disposition::Store);
    assert!(out.message.starts_with(HEADER), "unchanged");
    assert_eq!(
        out.metadata.get(engine::SKIPPED_KEY).map(String::as_str),
        Some("mcp-example/p/scan")
    );
    assert_eq!(calls(), 1, "no call");
    let text = rig.metrics_text();
    assert!(
        text.contains(r#"mcp_pipeline_step_skipped_total{stage="deliver",plugin="deployment/scanner",reason="suspended"} 1"#),
        "{text}"
    );

    let plan = rig.host.plan(std::slice::from_ref(&d), true).expect("plan");
    let set = compile(&[pipeline("onError: failClosed")], &tenant_of, &plan).expect("compiles");
    assert!(set.loaded()[0].skipped_steps.is_empty());
    rig.host.commit(plan);
    rig.set = set;
    rig.wait_phase(PluginPhase::Serving).await;
    assert_eq!(fake.seen.initializes.load(Ordering::SeqCst), 2);
    let out = rig.run(message(10)).await;
    assert!(out.message.starts_with(b"X-Scanned: yes\r\n"));
    assert!(!out.metadata.contains_key(engine::SKIPPED_KEY));
    assert_eq!(calls(), 2);
    rig.host.shutdown().await;
}
