//! Schema helpers: the free-form object of plugin configs, and a local check that a CRD
//! schema is structural (the rules the API server applies before it accepts a CRD).

use schemars::{Schema, SchemaGenerator, json_schema};
use serde_json::Value;

/// Schema of a free-form JSON object (a plugin's `config`): any keys and values, kept as
/// written (`x-kubernetes-preserve-unknown-fields: true`).
pub fn free_form_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// Checks the structural-schema rules of the Kubernetes API server
/// (`apiextensions` "Specifying a structural schema") on an `openAPIV3Schema`, and returns
/// one message per violation, each naming the JSON path. Empty means structural.
///
/// Checked: every node has a `type` (or is `x-kubernetes-int-or-string` or
/// `x-kubernetes-preserve-unknown-fields`); objects have `properties`, `additionalProperties`
/// or preserve unknown fields; arrays have `items`; no `$ref`, `definitions` or `$defs`;
/// `allOf`/`anyOf`/`oneOf`/`not` carry no `type`, `default`, `description`, `nullable` or
/// `additionalProperties` of their own; list-map keys are required or defaulted properties
/// of the items; `default` values are not given for `metadata` children.
pub fn structural_violations(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    check_node(schema, "$", false, &mut out);
    out
}

fn check_node(node: &Value, path: &str, in_junctor: bool, out: &mut Vec<String>) {
    let Some(obj) = node.as_object() else {
        out.push(format!("{path}: schema node is not an object"));
        return;
    };
    for bad in ["$ref", "definitions", "$defs", "$schema"] {
        if obj.contains_key(bad) {
            out.push(format!("{path}: `{bad}` is not allowed"));
        }
    }
    let preserve = obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    let int_or_string = obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    if in_junctor {
        for bad in [
            "type",
            "default",
            "description",
            "nullable",
            "additionalProperties",
            "x-kubernetes-preserve-unknown-fields",
        ] {
            if obj.contains_key(bad) {
                out.push(format!(
                    "{path}: `{bad}` is not allowed inside allOf/anyOf/oneOf/not"
                ));
            }
        }
    } else {
        match obj.get("type").and_then(Value::as_str) {
            Some("object") => {
                let has_props = obj.contains_key("properties");
                let has_additional = obj.contains_key("additionalProperties");
                if has_props && has_additional {
                    out.push(format!(
                        "{path}: properties and additionalProperties are mutually exclusive"
                    ));
                }
                if !has_props && !has_additional && !preserve {
                    out.push(format!(
                        "{path}: object without properties, additionalProperties or x-kubernetes-preserve-unknown-fields"
                    ));
                }
            }
            Some("array") => {
                if !obj.contains_key("items") {
                    out.push(format!("{path}: array without items"));
                }
            }
            Some("string" | "integer" | "number" | "boolean") => {}
            Some(other) => out.push(format!("{path}: unknown type {other:?}")),
            None if int_or_string || preserve => {}
            None => out.push(format!("{path}: missing type")),
        }
    }
    if let Some(Value::Object(props)) = obj.get("properties") {
        for (name, child) in props {
            check_node(child, &format!("{path}.{name}"), in_junctor, out);
        }
    }
    if let Some(child @ Value::Object(_)) = obj.get("additionalProperties") {
        check_node(child, &format!("{path}.*"), in_junctor, out);
    }
    if let Some(items) = obj.get("items") {
        check_node(items, &format!("{path}[]"), in_junctor, out);
        check_list_map(obj, items, path, out);
    }
    for junctor in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = obj.get(junctor) {
            for (i, b) in branches.iter().enumerate() {
                check_node(b, &format!("{path}.{junctor}[{i}]"), true, out);
            }
        }
    }
    if let Some(not) = obj.get("not") {
        check_node(not, &format!("{path}.not"), true, out);
    }
}

fn check_list_map(
    list: &serde_json::Map<String, Value>,
    items: &Value,
    path: &str,
    out: &mut Vec<String>,
) {
    if list.get("x-kubernetes-list-type").and_then(Value::as_str) != Some("map") {
        return;
    }
    let keys: Vec<&str> = list
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .map(|k| k.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if keys.is_empty() {
        out.push(format!("{path}: list-type map without list-map-keys"));
    }
    let required: Vec<&str> = items
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for key in keys {
        let prop = items.get("properties").and_then(|p| p.get(key));
        match prop {
            None => out.push(format!("{path}: list-map key {key:?} is not a property")),
            Some(p) if !required.contains(&key) && p.get("default").is_none() => out.push(format!(
                "{path}: list-map key {key:?} must be required or have a default"
            )),
            Some(p) if p.get("nullable") == Some(&Value::Bool(true)) => {
                out.push(format!("{path}: list-map key {key:?} must not be nullable"))
            }
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn typed_schemas_are_structural() {
        let s = json!({"type": "object", "properties": {
            "a": {"type": "string"},
            "b": {"type": "array", "items": {"type": "integer"}},
            "c": {"x-kubernetes-int-or-string": true},
            "d": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "e": {"type": "object", "additionalProperties": {"type": "string"}},
        }});
        assert_eq!(structural_violations(&s), Vec::<String>::new());
    }

    #[test]
    fn untyped_and_referencing_schemas_are_not() {
        let cases = [
            (
                json!({"type": "object", "properties": {"x": {}}}),
                "$.x: missing type",
            ),
            (json!({"type": "object"}), "object without properties"),
            (json!({"type": "array"}), "array without items"),
            (
                json!({"$ref": "#/x", "type": "string"}),
                "`$ref` is not allowed",
            ),
            (
                json!({"type": "string", "oneOf": [{"type": "string"}]}),
                "not allowed inside allOf/anyOf/oneOf/not",
            ),
            (
                json!({"type": "array", "x-kubernetes-list-type": "map",
                       "x-kubernetes-list-map-keys": ["type"],
                       "items": {"type": "object", "properties": {"type": {"type": "string"}}}}),
                "must be required or have a default",
            ),
        ];
        for (schema, want) in cases {
            let v = structural_violations(&schema);
            assert!(v.iter().any(|m| m.contains(want)), "{schema}: {v:?}");
        }
    }
}
