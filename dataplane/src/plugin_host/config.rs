//! The config a step sends to its plugin: the step's `config` merged over the
//! PluginDeployment's `defaultConfig` (RFC 7386 JSON merge patch), and its identifier.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// One step's merged config, ready for `StepConfig` and `MessageContext`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepConfig {
    /// The merged config, compact JSON of an object.
    pub json: String,
    /// Lower-case hex SHA-256 of `json` (64 characters).
    pub id: String,
}

/// Merges `step` over `default` as RFC 7386 says: members of `step` replace those of
/// `default`, recursively for objects; a `null` member removes one. Absent configs count as
/// `{}`. The JSON is canonical (members in key order, compact), so its id only changes when
/// the config does.
///
/// # Errors
/// A message when the result is not a JSON object (a plugin config is always one).
pub fn merged(default: Option<&Value>, step: Option<&Value>) -> Result<StepConfig, String> {
    let mut doc = default
        .cloned()
        .unwrap_or_else(|| Value::Object(Default::default()));
    if let Some(patch) = step {
        json_patch::merge(&mut doc, patch);
    }
    if !doc.is_object() {
        return Err(format!(
            "the merged config must be a JSON object, not {}",
            kind(&doc)
        ));
    }
    let json =
        serde_json::to_string(&canonical(doc)).map_err(|e| format!("cannot be serialised: {e}"))?;
    Ok(StepConfig {
        id: hex::encode(Sha256::digest(json.as_bytes())),
        json,
    })
}

/// `v` with every object's members in key order, so equal configs serialise (and hash) to
/// the same bytes whatever order they were written in.
fn canonical(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut members: Vec<(String, Value)> = map.into_iter().collect();
            members.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                members
                    .into_iter()
                    .map(|(k, v)| (k, canonical(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn step_config_is_merged_over_the_default_per_rfc_7386() {
        let cases = [
            ("absent both", None, None, json!({})),
            ("default only", Some(json!({"a": 1})), None, json!({"a": 1})),
            ("step only", None, Some(json!({"b": 2})), json!({"b": 2})),
            (
                "replace and add",
                Some(json!({"a": 1, "b": {"c": 1, "d": 2}})),
                Some(json!({"a": 9, "b": {"d": 3, "e": 4}})),
                json!({"a": 9, "b": {"c": 1, "d": 3, "e": 4}}),
            ),
            (
                "null removes",
                Some(json!({"a": 1, "b": 2})),
                Some(json!({"a": null})),
                json!({"b": 2}),
            ),
            (
                "arrays are replaced, not merged",
                Some(json!({"l": [1, 2]})),
                Some(json!({"l": [3]})),
                json!({"l": [3]}),
            ),
        ];
        for (name, default, step, want) in cases {
            let got = merged(default.as_ref(), step.as_ref()).expect(name);
            assert_eq!(
                serde_json::from_str::<Value>(&got.json).expect("json"),
                want,
                "{name}"
            );
            assert_eq!(got.id.len(), 64, "{name}");
            assert_eq!(
                got.id,
                hex::encode(Sha256::digest(got.json.as_bytes())),
                "{name}"
            );
        }
    }

    #[test]
    fn a_config_that_is_not_an_object_is_refused() {
        for step in [json!(1), json!("x"), json!([1]), json!(null)] {
            let e = merged(Some(&json!({"a": 1})), Some(&step)).expect_err("not an object");
            assert!(e.contains("must be a JSON object"), "{e}");
        }
    }

    #[test]
    fn equal_configs_have_equal_ids() {
        let a = merged(Some(&json!({"x": 1, "y": 2})), None).expect("ok");
        let b = merged(Some(&json!({"y": 2})), Some(&json!({"x": 1}))).expect("ok");
        assert_eq!(a, b);
    }
}
