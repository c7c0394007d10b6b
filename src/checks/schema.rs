//! The JSON Schemas fmtool ships (`schemas/model-architecture.schema.json` for the course's
//! architecture file, `schemas/check-report.schema.json` for `fmtool check --format json`), generated
//! here from the layer registry and the finding codes so they cannot drift (a test compares them
//! with the committed files), and the `schema` finding: violations of the architecture schema.

use super::{Code, Finding, Location, json_path};
use serde_json::{Value, json};
use std::sync::OnceLock;

/// The committed architecture schema, which is what `check` validates against.
pub const ARCHITECTURE_SCHEMA: &str = include_str!("../../schemas/model-architecture.schema.json");

/// The architecture schema as generated from the layer registry (what the committed file must be).
pub fn architecture_schema() -> Value {
    let types: Vec<&str> = crate::layers::registry().iter().map(|s| s.class_name).collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://fmtool.invalid/schemas/model-architecture.schema.json",
        "title": "fashion_mnist.json: the course's model architecture",
        "description": "A JSON list with one entry per Keras layer (model.layers order): its name, its Keras class name, layer.get_config(), and the npz keys of layer.get_weights(). Generated from fmtool's layer registry: `type` lists the layers fmtool runs.",
        "type": "array",
        "minItems": 1,
        "items": {
            "type": "object",
            "required": ["name", "type", "config", "weights"],
            "properties": {
                "name": {"type": "string", "minLength": 1, "description": "layer.name; unique in the model."},
                "type": {"enum": types, "description": "The Keras class name (type(layer).__name__)."},
                "config": {"type": "object", "description": "layer.get_config()."},
                "weights": {
                    "type": "array",
                    "items": {"type": "string", "minLength": 1},
                    "description": "The npz keys of layer.get_weights(), in order; the course notebook names them <name>_<i>."
                },
                "inbound": {
                    "type": "array",
                    "items": {"type": "string", "minLength": 1},
                    "description": "Functional models only: the names of the layers feeding this one, in call order."
                }
            }
        }
    })
}

/// The schema of `fmtool check --format json`.
pub fn check_report_schema() -> Value {
    let codes: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
    let code_doc: Vec<String> = Code::ALL.iter().map(|c| format!("{c}: {}", c.meaning())).collect();
    let opt_string = json!({"type": ["string", "null"]});
    let shape = json!({"type": "array", "items": {"type": "integer", "minimum": 0}});
    let trial = json!({
        "oneOf": [
            {"type": "null"},
            {
                "type": "object",
                "required": ["asked", "classified", "failure", "relu", "softmax", "seconds"],
                "additionalProperties": false,
                "properties": {
                    "asked": {"type": "integer", "minimum": 0},
                    "classified": {"type": "integer", "minimum": 0},
                    "failure": {
                        "oneOf": [
                            {"type": "null"},
                            {
                                "type": "object",
                                "required": ["phase", "exception", "message"],
                                "additionalProperties": false,
                                "properties": {
                                    "phase": {"enum": ["import", "load", "inference", "outputs"]},
                                    "exception": {"type": ["object", "null"], "description": "The student's exception, as their process reported it (messages only)."},
                                    "message": {"type": "string"}
                                }
                            }
                        ]
                    },
                    "relu": {"type": ["object", "null"]},
                    "softmax": {"type": ["object", "null"]},
                    "seconds": {"type": "number", "minimum": 0}
                }
            }
        ]
    });
    let student_code = json!({
        "type": "array",
        "description": "fmtool's runs of a student's own code on the tests' path (model_test.py imported, relu and softmax called as the tests call them, nn_inference on the first test images), one per student repository that needed one.",
        "items": {
            "type": "object",
            "required": ["repo", "own_loader", "python", "numpy", "isolation", "note", "trial"],
            "additionalProperties": false,
            "properties": {
                "repo": {"type": "string"},
                "own_loader": {"type": "array", "items": {"type": "string"}, "description": "The loader functions of nn_predict.py that differ from the course's template (empty: the course's loader)."},
                "python": opt_string,
                "numpy": opt_string,
                "isolation": {"enum": ["bubblewrap", "none", null]},
                "note": {"type": ["string", "null"], "description": "Why the code did not run, or that it ran without a sandbox."},
                "trial": trial
            }
        }
    });
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://fmtool.invalid/schemas/check-report.schema.json",
        "title": "fmtool check --format json",
        "description": "Every finding about the checked models. The exit status is 1 when `errors` > 0, else 0.",
        "type": "object",
        "required": ["grader", "checked", "models", "errors", "warnings", "notes", "findings", "student_code", "seconds"],
        "additionalProperties": false,
        "properties": {
            "grader": {"enum": ["full", "classic"], "description": "classic turns findings about the course template into errors."},
            "checked": {"type": "array", "items": {"type": "string"}, "description": "The files that were read."},
            "models": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["json", "npz", "keras", "layers", "input", "output_shape", "parameters", "flops", "live_bytes"],
                    "additionalProperties": false,
                    "properties": {
                        "json": {"type": "string"},
                        "npz": {"type": "string"},
                        "keras": {"type": ["string", "null"], "description": "The Keras .h5/.keras file beside the export, compared with the npz."},
                        "layers": {"type": "integer", "minimum": 0},
                        "input": {
                            "oneOf": [
                                {"type": "null"},
                                {
                                    "type": "object",
                                    "required": ["shape", "source", "inferred"],
                                    "additionalProperties": false,
                                    "properties": {
                                        "shape": shape,
                                        "source": {"type": "string"},
                                        "inferred": {"type": "boolean"}
                                    }
                                }
                            ]
                        },
                        "output_shape": {"oneOf": [{"type": "null"}, shape], "description": "Per image, without the batch axis; null when the shapes do not flow through."},
                        "parameters": {"type": ["integer", "null"], "minimum": 0},
                        "flops": {"type": ["integer", "null"], "minimum": 0, "description": "Floating-point operations per image, over every layer (at least one per output value); null when the shapes do not flow to the end."},
                        "live_bytes": {"type": ["integer", "null"], "minimum": 0, "description": "The most bytes of layer outputs (float32) alive at once per image."}
                    }
                }
            },
            "errors": {"type": "integer", "minimum": 0},
            "warnings": {"type": "integer", "minimum": 0},
            "notes": {"type": "integer", "minimum": 0, "description": "Findings that the student's own code, run by fmtool, showed to be harmless."},
            "student_code": student_code,
            "findings": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["code", "severity", "location", "message", "hint"],
                    "additionalProperties": false,
                    "properties": {
                        "code": {"enum": codes, "description": code_doc.join("; ")},
                        "severity": {"enum": ["error", "warning", "note"], "description": "note: a finding the student's own code, run by fmtool, showed to be harmless."},
                        "location": {
                            "type": "object",
                            "required": ["file", "pointer", "key", "layer"],
                            "additionalProperties": false,
                            "properties": {
                                "file": {"type": "string"},
                                "pointer": {"type": ["string", "null"], "pattern": "^\\$", "description": "A JSON path into the architecture file, e.g. $[3].weights[0]."},
                                "key": {"type": ["string", "null"], "description": "An npz member key."},
                                "layer": opt_string,
                                "line": {"type": "integer", "minimum": 1, "description": "A 1-based line in a text file (a workflow, nn_predict.py); absent when the location is not a line."}
                            }
                        },
                        "message": {"type": "string", "minLength": 1},
                        "hint": opt_string
                    }
                }
            },
            "seconds": {"type": "number", "minimum": 0}
        }
    })
}

fn validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let schema: Value = serde_json::from_str(ARCHITECTURE_SCHEMA).expect("the committed schema is JSON");
        jsonschema::validator_for(&schema).expect("the committed schema compiles")
    })
}

/// Every violation of the architecture schema, with its JSON path. A `type` that is a string but
/// not a registry class is left to the `unsupported-layer` finding, which says more.
pub fn validate(value: &Value, shown: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    for e in validator().iter_errors(value) {
        let ptr = e.instance_path().as_str().to_string();
        if ptr.ends_with("/type") && e.instance().is_string() {
            continue;
        }
        let path = json_path(&ptr);
        let layer = layer_name_at(value, &ptr);
        let hint = hint_for(&ptr, &e.to_string());
        out.push(
            Finding::error(Code::Schema, Location::json(shown, path, layer.as_deref()), e.to_string()).maybe_hint(hint),
        );
    }
    out
}

/// The `name` of the entry a pointer points into (`/3/...` → entry 3's name).
fn layer_name_at(value: &Value, ptr: &str) -> Option<String> {
    let i: usize = ptr.split('/').nth(1)?.parse().ok()?;
    value.get(i)?.get("name")?.as_str().map(str::to_string)
}

fn hint_for(ptr: &str, msg: &str) -> Option<String> {
    let depth = ptr.split('/').count() - 1;
    if depth == 1 && msg.contains("required") {
        Some("each entry needs \"name\", \"type\", \"config\" (layer.get_config()) and \"weights\" (a list of npz keys, [] for none)".into())
    } else if ptr.contains("/weights") {
        Some("\"weights\" lists the npz keys of the layer's arrays as strings, e.g. [\"dense_0\", \"dense_1\"]".into())
    } else if depth == 0 {
        Some("the file must list the model's layers: export [entry for each layer in model.layers]".into())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_carry_json_paths_and_layers() {
        let v = json!([
            {"name": "d", "type": "Dense", "config": {}, "weights": ["d_0", 3]},
            {"name": "e", "type": "Dense", "weights": []},
            {"name": "f", "type": "NoSuchLayer", "config": {}, "weights": []},
        ]);
        let f = validate(&v, "m.json");
        let at: Vec<(&str, &str)> =
            f.iter().map(|f| (f.location.pointer.as_deref().unwrap(), f.location.layer.as_deref().unwrap())).collect();
        assert_eq!(at, [("$[0].weights[1]", "d"), ("$[1]", "e")], "{f:?}");
        assert!(f[1].message.contains("config"), "{}", f[1].message);
        assert!(f.iter().all(|f| f.code == "schema"));
    }

    #[test]
    fn type_enum_is_the_registry() {
        let s = architecture_schema();
        let types = s["items"]["properties"]["type"]["enum"].as_array().unwrap();
        assert_eq!(types.len(), crate::layers::registry().len());
        assert!(types.contains(&json!("Dense")));
    }

    #[test]
    fn empty_list_is_refused() {
        let f = validate(&json!([]), "m.json");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].location.pointer.as_deref(), Some("$"));
    }

    #[test]
    fn findings_with_a_line_fit_the_report_schema() {
        let with_line =
            Finding::error(Code::WorkflowCommandNotFound, Location::line(".github/workflows/classroom.yml", 32), "m");
        let without = Finding::error(Code::MissingFile, Location::file("model/fashion_mnist.json"), "m");
        let v = serde_json::to_value([&with_line, &without]).unwrap();
        assert_eq!(v[0]["location"]["line"], json!(32));
        assert!(v[1]["location"].get("line").is_none(), "{v}");
        let report = json!({"grader": "full", "checked": [], "models": [], "errors": 2, "warnings": 0, "notes": 0, "findings": v, "student_code": [], "seconds": 0.0});
        let validator = jsonschema::validator_for(&check_report_schema()).unwrap();
        let errors: Vec<String> = validator.iter_errors(&report).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:?}");
        let mut bad = report.clone();
        bad["findings"][0]["location"]["line"] = json!(0);
        assert!(!validator.is_valid(&bad));
    }
}
