//! The SDK's server against a host: negotiation, configs, body modes, verdicts and mutations,
//! hostile request streams, panics, health, Unix sockets and mutual TLS. Each test serves an
//! in-process probe plugin and talks to it through `mcp_plugin_sdk::testing` (the host-side
//! code of `mcp_plugin_proto::client`). The same contract is run against the example plugins,
//! Rust and Python, by `e2e/plugins_contract`.

use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use mcp_plugin_proto::MAX_CHUNK;
use mcp_plugin_proto::client::CallError;
use mcp_plugin_proto::v1;
use mcp_plugin_proto::v1::process_message_request::Part;
use mcp_plugin_sdk::api::{
    Capabilities, Capability, MessageContext, Mutation, Plugin, PluginError, Stage, StepOutput,
    Verdict,
};
use mcp_plugin_sdk::testing::{Call, Harness, config_id, step_config, temp_socket};
use mcp_plugin_sdk::{BodyMode, ConfigError, FromConfig, Listen, PluginInfo, Server, TlsFiles};
use tokio::sync::oneshot;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

const WAIT: Duration = Duration::from_secs(20);

/// What the probe does, from its step config: `{"action": "..."}`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ProbeConfig {
    #[serde(default = "echo")]
    action: String,
}

fn echo() -> String {
    "echo".into()
}

/// Reports what it received (`echo`), or returns what its config names.
struct Probe(String);

const DECLARED: [Capability; 4] = [
    Capability::AddHeader,
    Capability::AddKeyword,
    Capability::FileInto,
    Capability::SetMetadata,
];

impl Plugin for Probe {
    fn capabilities(&self) -> Capabilities {
        DECLARED.into_iter().collect()
    }

    fn process<'a>(
        &'a self,
        m: &'a MessageContext,
    ) -> BoxFuture<'a, Result<StepOutput, PluginError>> {
        Box::pin(async move {
            let meta = |k: &str, v: String| Mutation::SetMetadata {
                key: k.into(),
                value: v,
            };
            Ok(match self.0.as_str() {
                "echo" => StepOutput::mutate(vec![
                    meta("octets", m.message.len().to_string()),
                    meta("header-octets", m.header_section().len().to_string()),
                    meta("stage", format!("{:?}", m.stage)),
                    meta("rcpt", m.envelope.rcpt_to.clone()),
                ]),
                "accept" => StepOutput::verdict(Verdict::Accept),
                "reject" => StepOutput::verdict(Verdict::reject("no thanks")),
                "tempfail" => StepOutput::verdict(Verdict::temp_fail("later")),
                "discard" => StepOutput::verdict(Verdict::Discard),
                "quarantine" => StepOutput::verdict(Verdict::quarantine("suspicious")),
                "mutate" => StepOutput::mutate(vec![
                    Mutation::add_header("X-Probe", "yes").expect("valid"),
                    Mutation::AddKeyword {
                        keyword: "$Probed".into(),
                    },
                    Mutation::FileInto {
                        folder: "Probed".into(),
                    },
                ]),
                "panic" => panic!("probe panics on purpose"),
                "unavailable" => return Err(PluginError::Unavailable("scanner down".into())),
                "failed" => return Err(PluginError::Failed("cannot decide".into())),
                "undeclared" => StepOutput::mutate(vec![Mutation::ReplaceBody {
                    body: Bytes::from_static(b"x\r\n"),
                }]),
                "bad-verdict" => StepOutput::verdict(Verdict::Reject {
                    status: mcp_plugin_sdk::api::EnhancedStatus::new(4, 7, 1),
                    text: "wrong class".into(),
                }),
                "sleep" => {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    StepOutput::pass()
                }
                other => return Err(PluginError::Failed(format!("unknown action {other}"))),
            })
        })
    }
}

fn info() -> PluginInfo {
    PluginInfo::new("probe", "1.0.0")
        .stages([Stage::Deliver, Stage::Append])
        .capabilities(DECLARED)
        .body_mode(BodyMode::Streamed)
        .max_body_size(1 << 20)
}

struct Running {
    listen: Listen,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), mcp_plugin_sdk::ServeError>>,
}

impl Running {
    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.task.await.expect("joined").expect("served");
    }
}

async fn start(listen: Listen, tls: Option<TlsFiles>) -> Running {
    let (stop, stopped) = oneshot::channel::<()>();
    let bound = Server::new(
        info(),
        FromConfig::new(|c: ProbeConfig| {
            if c.action.is_empty() {
                return Err(ConfigError::field("$.action", "must not be empty"));
            }
            Ok(Probe(c.action))
        }),
    )
    .listen(listen)
    .tls(tls)
    .shutdown(async {
        let _ = stopped.await;
    })
    .bind()
    .await
    .expect("bound");
    let listen = bound.local_addr().clone();
    Running {
        listen,
        stop: Some(stop),
        task: tokio::spawn(bound.serve()),
    }
}

async fn tcp() -> (Running, Harness) {
    let r = start("tcp://127.0.0.1:0".parse().expect("addr"), None).await;
    let h = Harness::connect(&r.listen, WAIT).await.expect("serving");
    (r, h)
}

/// A message of `body` octets after a small header section.
fn message(body: usize) -> Bytes {
    let mut m = b"From: a@example.net\r\nSubject: probe\r\n\r\n".to_vec();
    m.extend(std::iter::repeat_n(b'x', body));
    Bytes::from(m)
}

const HEADER_OCTETS: usize = 39;

fn metadata(out: &StepOutput, key: &str) -> String {
    out.mutations
        .iter()
        .find_map(|m| match m {
            Mutation::SetMetadata { key: k, value } if k == key => Some(value.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no metadata {key} in {out:?}"))
}

fn status_code(r: &Result<StepOutput, CallError>) -> Option<Code> {
    match r {
        Err(CallError::Status(s)) => Some(s.code()),
        _ => None,
    }
}

#[tokio::test]
async fn initialize_negotiates_the_highest_common_version_or_refuses() {
    let (r, mut h) = tcp().await;
    let ok = h.initialize(vec![]).await.expect("initialized");
    assert_eq!(ok.protocol_version, 1);
    assert_eq!(ok.plugin_name, "probe");
    assert_eq!(ok.body_mode, v1::BodyMode::Streamed as i32);
    assert_eq!(ok.max_body_size, 1 << 20);
    assert_eq!(
        ok.stages,
        vec![v1::Stage::Deliver as i32, v1::Stage::Append as i32]
    );
    assert_eq!(ok.capabilities.len(), DECLARED.len());
    for (min, max, want) in [
        (1, 5, Ok(1)),
        (0, 1, Ok(1)),
        (2, 3, Err(Code::FailedPrecondition)),
        (3, 2, Err(Code::FailedPrecondition)),
        (0, 0, Err(Code::FailedPrecondition)),
    ] {
        let got = h
            .client()
            .initialize(v1::InitializeRequest {
                min_protocol_version: min,
                max_protocol_version: max,
                host: "test".into(),
                steps: vec![],
            })
            .await
            .map(|r| r.into_inner().protocol_version)
            .map_err(|s| s.code());
        assert_eq!(got, want, "host range {min}..={max}");
    }
    r.stop().await;
}

#[tokio::test]
async fn initialize_reports_refused_configs_by_id_and_field() {
    let (r, mut h) = tcp().await;
    let good = step_config("ns/p", "a", r#"{"action": "echo"}"#);
    let steps = vec![
        good.clone(),
        step_config("ns/p", "b", r#"{"action": ""}"#),
        step_config("ns/p", "c", r#"{"action": 3}"#),
        step_config("ns/p", "d", r#"{"colour": "red"}"#),
        step_config("ns/p", "e", "not json"),
        good,
    ];
    let init = h.initialize(steps.clone()).await.expect("initialized");
    let errors: Vec<(String, String)> = init
        .config_errors
        .iter()
        .map(|e| (e.config_id.clone(), e.field.clone()))
        .collect();
    assert_eq!(
        errors,
        vec![
            (steps[1].config_id.clone(), "$.action".into()),
            (steps[2].config_id.clone(), "$.action".into()),
            (steps[3].config_id.clone(), "$.colour".into()),
            (steps[4].config_id.clone(), String::new()),
        ]
    );
    // A refused config sent with a message is a gRPC error, not a verdict.
    let call = Call {
        config_json: r#"{"action": ""}"#.into(),
        ..Call::default()
    };
    let got = h.run(message(1), &call).await;
    assert_eq!(status_code(&got), Some(Code::InvalidArgument), "{got:?}");
    r.stop().await;
}

#[tokio::test]
async fn each_body_mode_delivers_what_it_promises() {
    let (r, mut h) = tcp().await;
    let big = 3 * MAX_CHUNK + 7;
    for (mode, body, limit, want) in [
        (BodyMode::None, 10, 1 << 20, 0),
        (BodyMode::Headers, 10, 1 << 20, HEADER_OCTETS),
        (BodyMode::Buffered, 10, 1 << 20, HEADER_OCTETS + 10),
        (BodyMode::Buffered, 0, 1 << 20, HEADER_OCTETS),
        (BodyMode::Streamed, 0, 1 << 20, HEADER_OCTETS),
        (BodyMode::Streamed, 10, 1 << 20, HEADER_OCTETS + 10),
        (BodyMode::Streamed, big, 1 << 20, HEADER_OCTETS + big),
        // Over the host's limit: the body is withheld, the header section still sent.
        (BodyMode::Buffered, big, 1000, HEADER_OCTETS),
        (BodyMode::Streamed, big, 1000, HEADER_OCTETS),
    ] {
        let call = Call {
            body_mode: mode,
            max_body_size: limit,
            ..Call::default()
        };
        let out = h.run(message(body), &call).await.expect("a verdict");
        assert_eq!(
            metadata(&out, "octets"),
            want.to_string(),
            "{mode:?} body {body} limit {limit}"
        );
        assert_eq!(metadata(&out, "rcpt"), "alice@example.com");
    }
    r.stop().await;
}

#[tokio::test]
async fn verdicts_and_mutations_cross_the_wire_unchanged() {
    let (r, mut h) = tcp().await;
    let cases: Vec<(&str, Verdict, usize)> = vec![
        ("accept", Verdict::Accept, 0),
        ("reject", Verdict::reject("no thanks"), 0),
        ("tempfail", Verdict::temp_fail("later"), 0),
        ("discard", Verdict::Discard, 0),
        ("quarantine", Verdict::quarantine("suspicious"), 0),
        ("mutate", Verdict::Continue, 3),
    ];
    for (action, verdict, mutations) in cases {
        let call = Call {
            config_json: format!(r#"{{"action": "{action}"}}"#),
            stage: Stage::Append,
            ..Call::default()
        };
        let out = h.run(message(5), &call).await.expect("a verdict");
        assert_eq!(out.verdict, verdict, "{action}");
        assert_eq!(out.mutations.len(), mutations, "{action}");
    }
    r.stop().await;
}

#[tokio::test]
async fn plugin_failures_are_error_statuses_never_verdicts() {
    let (r, mut h) = tcp().await;
    for (action, code) in [
        ("panic", Code::Internal),
        ("unavailable", Code::Unavailable),
        ("failed", Code::Internal),
        ("undeclared", Code::Internal),
        ("bad-verdict", Code::Internal),
    ] {
        let call = Call {
            config_json: format!(r#"{{"action": "{action}"}}"#),
            ..Call::default()
        };
        let got = h.run(message(5), &call).await;
        assert_eq!(status_code(&got), Some(code), "{action}: {got:?}");
    }
    // The server survives a panic.
    let out = h.run(message(5), &Call::default()).await.expect("verdict");
    assert_eq!(out.verdict, Verdict::Continue);
    // The host's deadline (grpc-timeout) ends a slow call with an error, not a verdict.
    let call = Call {
        config_json: r#"{"action": "sleep"}"#.into(),
        timeout: Duration::from_millis(200),
        ..Call::default()
    };
    let got = h.run(message(5), &call).await;
    // The client's own timer may fire first (tonic: CANCELLED "Timeout expired").
    assert!(
        matches!(
            status_code(&got),
            Some(Code::DeadlineExceeded | Code::Cancelled)
        ),
        "{got:?}"
    );
    r.stop().await;
}

fn context(mode: v1::BodyMode, size: u64) -> v1::MessageContext {
    v1::MessageContext {
        call_id: "hostile".into(),
        stage: v1::Stage::Deliver as i32,
        envelope: Some(v1::Envelope {
            mail_from: String::new(),
            rcpt_to: "alice@example.com".into(),
        }),
        config_id: config_id("{}"),
        config_json: "{}".into(),
        body_mode: mode as i32,
        size,
        header_section: Bytes::from_static(b"Subject: x\r\n\r\n"),
        ..Default::default()
    }
}

fn ctx_part(c: v1::MessageContext) -> v1::ProcessMessageRequest {
    v1::ProcessMessageRequest {
        part: Some(Part::Context(c)),
    }
}

fn chunk(n: usize, last: bool) -> v1::ProcessMessageRequest {
    v1::ProcessMessageRequest {
        part: Some(Part::Chunk(v1::BodyChunk {
            data: Bytes::from(vec![b'x'; n]),
            last,
        })),
    }
}

#[tokio::test]
async fn hostile_request_streams_get_invalid_argument() {
    let (r, mut h) = tcp().await;
    let streamed = |size: u64| context(v1::BodyMode::Streamed, 14 + size);
    let with = |f: fn(&mut v1::MessageContext)| {
        let mut c = context(v1::BodyMode::Headers, 14);
        f(&mut c);
        c
    };
    let cases: Vec<(&str, Vec<v1::ProcessMessageRequest>)> = vec![
        ("empty stream", vec![]),
        ("chunk before context", vec![chunk(1, true)]),
        (
            "neither context nor chunk",
            vec![v1::ProcessMessageRequest { part: None }],
        ),
        (
            "context twice",
            vec![ctx_part(streamed(1)), ctx_part(streamed(1))],
        ),
        (
            "oversized chunk",
            vec![ctx_part(streamed(1 << 19)), chunk(MAX_CHUNK + 1, true)],
        ),
        (
            "truncated stream",
            vec![ctx_part(streamed(10)), chunk(5, false)],
        ),
        (
            "chunk after the last",
            vec![ctx_part(streamed(10)), chunk(5, true), chunk(5, true)],
        ),
        (
            "more body than size",
            vec![ctx_part(streamed(10)), chunk(11, true)],
        ),
        (
            "chunks in headers mode",
            vec![
                ctx_part(context(v1::BodyMode::Headers, 24)),
                chunk(10, true),
            ],
        ),
        (
            "chunks although withheld",
            vec![
                ctx_part({
                    let mut c = streamed(10);
                    c.body_withheld = true;
                    c
                }),
                chunk(10, true),
            ],
        ),
        ("unknown stage", vec![ctx_part(with(|c| c.stage = 99))]),
        ("unspecified stage", vec![ctx_part(with(|c| c.stage = 0))]),
        ("undeclared stage", vec![ctx_part(with(|c| c.stage = 3))]),
        (
            "unknown body mode",
            vec![ctx_part(with(|c| c.body_mode = 99))],
        ),
        (
            "missing envelope",
            vec![ctx_part(with(|c| c.envelope = None))],
        ),
        (
            "body in headers mode",
            vec![ctx_part(with(|c| c.body = Bytes::from_static(b"x")))],
        ),
    ];
    for (name, parts) in cases {
        let got = h
            .client()
            .process_message(futures::stream::iter(parts))
            .await;
        match got {
            Err(s) => assert_eq!(s.code(), Code::InvalidArgument, "{name}: {s:?}"),
            Ok(reply) => panic!("{name}: a reply instead of an error: {reply:?}"),
        }
    }
    // The limit the plugin declared holds even when `size` claims more.
    let mut parts = vec![ctx_part(streamed(2 << 20))];
    parts.extend((0..17).map(|_| chunk(MAX_CHUNK, false)));
    let got = h
        .client()
        .process_message(futures::stream::iter(parts))
        .await;
    assert_eq!(
        got.map(|_| ()).map_err(|s| s.code()),
        Err(Code::InvalidArgument)
    );
    r.stop().await;
}

#[tokio::test]
async fn shutdown_is_idempotent_and_health_follows_the_server() {
    let (r, mut h) = tcp().await;
    assert_eq!(h.health("").await.expect("checked"), ServingStatus::Serving);
    assert_eq!(
        h.health("mcp.plugin.v1.MailProcessor")
            .await
            .expect("checked"),
        ServingStatus::Serving
    );
    let mut watch = tonic_health::pb::health_client::HealthClient::new(h.channel())
        .watch(tonic_health::pb::HealthCheckRequest {
            service: "mcp.plugin.v1.MailProcessor".into(),
        })
        .await
        .expect("watching")
        .into_inner();
    let first = watch.message().await.expect("stream").expect("an update");
    assert_eq!(first.status, ServingStatus::Serving as i32);
    h.shutdown("reload").await.expect("first");
    h.shutdown("reload").await.expect("second");
    // Shutdown does not stop the server: the host may reconnect.
    h.run(message(1), &Call::default())
        .await
        .expect("still serving");
    let Running { stop, task, .. } = r;
    stop.expect("sender").send(()).expect("stopping");
    let next = watch.message().await.expect("stream").expect("an update");
    assert_eq!(next.status, ServingStatus::NotServing as i32);
    // The watch ends, so it does not hold the drain open; the server stops with it still held.
    assert!(watch.message().await.map(|m| m.is_none()).unwrap_or(true));
    task.await.expect("joined").expect("served");
    drop(watch);
}

#[tokio::test]
async fn unix_sockets_replace_a_stale_socket_but_never_a_file() {
    let path = temp_socket("sdk-test");
    // A socket file left by a dead process.
    drop(std::os::unix::net::UnixListener::bind(&path).expect("stale socket"));
    let r = start(Listen::Unix(path.clone()), None).await;
    let mut h = Harness::connect(&r.listen, WAIT).await.expect("serving");
    let call = Call {
        body_mode: BodyMode::Streamed,
        ..Call::default()
    };
    let out = h.run(message(2 * MAX_CHUNK), &call).await.expect("verdict");
    assert_eq!(
        metadata(&out, "octets"),
        (HEADER_OCTETS + 2 * MAX_CHUNK).to_string()
    );
    drop(h);
    r.stop().await;
    assert!(!path.exists(), "the socket file is removed at exit");

    std::fs::write(&path, b"not a socket").expect("file");
    let bound = Server::new(info(), mcp_plugin_sdk::Fixed::new(Probe("echo".into())))
        .listen(Listen::Unix(path.clone()))
        .tls(None)
        .bind()
        .await;
    assert!(bound.is_err(), "a regular file is not removed");
    std::fs::remove_file(&path).expect("cleanup");
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate_from_the_ca() {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa,
        KeyPair,
    };
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};

    let dir = tempfile::tempdir().expect("dir");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("ca");
    let leaf = |names: Vec<String>, usage| {
        let mut p = CertificateParams::new(names).expect("params");
        p.extended_key_usages = vec![usage];
        let key = KeyPair::generate().expect("key");
        let cert = p.signed_by(&key, &ca).expect("signed");
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf(
        vec!["localhost".into(), "127.0.0.1".into()],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let (client_cert, client_key) = leaf(
        vec!["dataplane".into()],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let write = |name: &str, pem: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, pem).expect("written");
        p
    };
    let files = TlsFiles {
        cert: write("tls.crt", &server_cert),
        key: write("tls.key", &server_key),
        client_ca: write("ca.crt", &ca.pem()),
    };
    let r = start("tcp://127.0.0.1:0".parse().expect("addr"), Some(files)).await;
    let base = ClientTlsConfig::new()
        .domain_name("localhost")
        .ca_certificate(Certificate::from_pem(ca.pem()));
    let with_cert = base
        .clone()
        .identity(Identity::from_pem(&client_cert, &client_key));
    let mut h = Harness::connect_tls(&r.listen, with_cert, WAIT)
        .await
        .expect("a client with a certificate is served");
    h.initialize(vec![]).await.expect("initialized");
    h.run(message(1), &Call::default()).await.expect("verdict");
    let refused = Harness::connect_tls(&r.listen, base, Duration::from_millis(500)).await;
    assert!(
        refused.is_err(),
        "a client without a certificate is refused"
    );
    let plain = Harness::connect(&r.listen, Duration::from_millis(500)).await;
    assert!(plain.is_err(), "a plaintext client is refused");
    drop(h);
    r.stop().await;
}

#[tokio::test]
async fn the_noop_binary_serves_every_body_mode_and_stops_on_sigterm() {
    for mode in ["none", "headers", "buffered", "streamed"] {
        let listen = Listen::Unix(temp_socket("noop"));
        let mut h = Harness::spawn(
            env!("CARGO_BIN_EXE_mcp-plugin-noop"),
            &["--body-mode".to_owned(), mode.to_owned()],
            &listen,
            WAIT,
        )
        .await
        .expect("serving");
        let init = h.initialize(vec![]).await.expect("initialized");
        let declared = mcp_plugin_proto::convert::body_mode_from_proto("body_mode", init.body_mode)
            .expect("known");
        let call = Call {
            body_mode: declared,
            ..Call::default()
        };
        let out = h.run(message(3 * MAX_CHUNK), &call).await.expect("verdict");
        assert_eq!(out, StepOutput::pass(), "{mode}");
        let status = h.terminate(WAIT).await.expect("waited").expect("spawned");
        assert!(status.success(), "{mode}: graceful exit, got {status}");
    }
}
