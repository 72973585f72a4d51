//! The YAML examples of docs/plugins.md are configs the plugins accept.

use mcp_crds::pipeline::PipelineStep;
use mcp_plugins_builtin::instantiate;

fn yaml_blocks(doc: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match (&mut current, line.trim_start()) {
            (None, "```yaml") => current = Some(String::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            _ => {}
        }
    }
    blocks
}

#[test]
fn every_builtin_step_in_the_docs_instantiates() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/plugins.md"
    ))
    .expect("docs/plugins.md");
    let mut checked = 0;
    for block in yaml_blocks(&doc) {
        let steps: Vec<PipelineStep> = if block.starts_with("apiVersion") {
            let v: serde_json::Value = yaml_serde::from_str(&block).expect("YAML");
            serde_json::from_value(v["spec"]["steps"].clone()).expect("steps")
        } else {
            let dedented: String = block
                .lines()
                .map(|l| l.strip_prefix("    ").unwrap_or(l))
                .collect::<Vec<_>>()
                .join("\n");
            yaml_serde::from_str(&dedented).expect("steps YAML")
        };
        for step in steps {
            let builtin = step.plugin.builtin.expect("a built-in step");
            if let Err(e) = instantiate(builtin, step.config.as_ref()) {
                panic!("step {}: {e}", step.name);
            }
            checked += 1;
        }
    }
    assert!(checked >= 4, "found only {checked} steps");
}
