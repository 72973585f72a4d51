//! The template plugin as a process, driven by the SDK's test harness: it tags every message
//! with the configured header and keyword, and refuses an invalid keyword at Initialize.

use std::time::Duration;

use bytes::Bytes;
use mcp_plugin_sdk::Listen;
use mcp_plugin_sdk::api::Mutation;
use mcp_plugin_sdk::testing::{Call, Harness, step_config, temp_socket};

#[tokio::test]
async fn the_template_tags_messages_and_refuses_a_bad_keyword() {
    let listen = Listen::Unix(temp_socket("template"));
    let mut h = Harness::spawn(
        env!("CARGO_BIN_EXE_mcp-plugin-template"),
        &[],
        &listen,
        Duration::from_secs(20),
    )
    .await
    .expect("serving");
    let good = r#"{"keyword": "$Tagged", "value": "yes"}"#;
    let bad = r#"{"keyword": "two words"}"#;
    let init = h
        .initialize(vec![
            step_config("ns/p", "a", good),
            step_config("ns/p", "b", bad),
        ])
        .await
        .expect("initialized");
    let refused: Vec<&str> = init
        .config_errors
        .iter()
        .map(|e| e.field.as_str())
        .collect();
    assert_eq!(refused, ["$.keyword"]);
    let call = Call {
        config_json: good.into(),
        ..Call::default()
    };
    let out = h
        .run(Bytes::from_static(b"Subject: hi\r\n\r\nbody\r\n"), &call)
        .await
        .expect("verdict");
    assert_eq!(
        out.mutations,
        vec![
            Mutation::add_header("X-MCP-Template", "yes").expect("valid"),
            Mutation::AddKeyword {
                keyword: "$Tagged".into()
            },
        ]
    );
    let status = h
        .terminate(Duration::from_secs(20))
        .await
        .expect("waited")
        .expect("spawned");
    assert!(status.success(), "{status}");
}
