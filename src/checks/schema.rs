//! The JSON Schema of the course's architecture file, generated from the layer registry, and
//! validation against it with pointers in the `$[3].weights[0]` style.

use serde_json::{Value, json};

/// The schema of `fashion_mnist.json` (draft 2020-12). The `type` enum is the layer registry; a
/// test keeps `schemas/model-architecture.schema.json` equal to this.
pub fn architecture_schema() -> Value {
    let types: Vec<&str> = crate::layers::registry().iter().map(|s| s.class_name).collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://fmtool.invalid/schemas/model-architecture.schema.json",
        "title": "fashion_mnist.json (course format)",
        "description": "A JSON list with one entry per layer of model.layers, in order. Generated from fmtool's layer registry: `type` lists the layer classes fmtool runs.",
        "type": "array",
        "minItems": 1,
        "items": {
            "type": "object",
            "required": ["name", "type", "config", "weights"],
            "properties": {
                "name": {"type": "string", "minLength": 1, "description": "layer.name"},
                "type": {"enum": types, "description": "type(layer).__name__"},
                "config": {"type": "object", "description": "layer.get_config()"},
                "weights": {
                    "type": "array",
                    "items": {"type": "string", "minLength": 1},
                    "description": "npz keys of layer.get_weights(), in order: <name>_0, <name>_1, ..."
                },
                "inbound": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "fmtool's extension for functional models: names of the layers feeding this one"
                }
            }
        }
    })
}

/// Converts a JSON Pointer (`/3/weights/0`) into the `$[3].weights[0]` style.
pub fn pointer_to_path(pointer: &str) -> String {
    let mut out = String::from("$");
    for part in pointer.split('/').skip(1) {
        if part.parse::<usize>().is_ok() {
            out.push_str(&format!("[{part}]"));
        } else {
            out.push('.');
            out.push_str(&part.replace("~1", "/").replace("~0", "~"));
        }
    }
    out
}

/// Validates an architecture document; returns (pointer, message) for every violation. Unknown
/// layer types are left to the `unsupported-layer` finding, which says more.
pub fn validate_architecture(value: &Value) -> Vec<(String, String)> {
    let schema = architecture_schema();
    let validator = jsonschema::validator_for(&schema).expect("the generated schema is valid");
    validator
        .iter_errors(value)
        .map(|e| (pointer_to_path(&e.instance_path().to_string()), e.to_string()))
        .filter(|(p, _)| !p.ends_with(".type"))
        .collect()
}

/// The schema of `fmtool check --format json`.
pub fn check_report_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://fmtool.invalid/schemas/check-report.schema.json",
        "title": "fmtool check --format json",
        "type": "object",
        "required": ["findings", "errors", "warnings", "files"],
        "additionalProperties": false,
        "properties": {
            "files": {"type": "array", "items": {"type": "string"}},
            "errors": {"type": "integer", "minimum": 0},
            "warnings": {"type": "integer", "minimum": 0},
            "findings": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["code", "severity", "location", "message"],
                    "additionalProperties": false,
                    "properties": {
                        "code": {"type": "string"},
                        "severity": {"enum": ["error", "warning"]},
                        "message": {"type": "string"},
                        "hint": {"type": "string"},
                        "location": {
                            "type": "object",
                            "required": ["file"],
                            "additionalProperties": false,
                            "properties": {
                                "file": {"type": "string"},
                                "pointer": {"type": "string"},
                                "key": {"type": "string"},
                                "layer": {"type": "string"}
                            }
                        }
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_read_like_check_jsonschema() {
        assert_eq!(pointer_to_path("/3/weights/0"), "$[3].weights[0]");
        assert_eq!(pointer_to_path(""), "$");
    }

    #[test]
    fn schema_catches_a_missing_key() {
        let errs = validate_architecture(&json!([{"name": "d", "type": "Dense", "config": {}}]));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].0, "$[0]");
        assert!(errs[0].1.contains("weights"), "{errs:?}");
    }
}
