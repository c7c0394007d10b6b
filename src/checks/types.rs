//! Findings about layer types and names: a `type` fmtool's registry does not know
//! (`unsupported-layer`), and two entries with one name (`duplicate-layer-name`), which breaks
//! `inbound` references and the `<name>_<i>` weight keys.

use super::{Finding, Location, ModelView};
use crate::checks::Code;
use crate::layers::{lookup, registry};
use std::collections::HashMap;

pub fn check(view: &ModelView) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut seen: HashMap<&str, &crate::model::ArchEntry> = HashMap::new();
    for e in view.arch {
        if lookup(&e.class_name).is_none() {
            out.push(
                Finding::error(
                    Code::UnsupportedLayer,
                    Location::json(view.json_file, format!("{}.type", e.pointer()), Some(&e.name)),
                    format!("layer {} has type {:?}, which fmtool cannot run", e.name, e.class_name),
                )
                .hint(unknown_hint(&e.class_name)),
            );
        }
        if let Some(first) = seen.get(e.name.as_str()) {
            out.push(
                Finding::error(
                    Code::DuplicateLayerName,
                    Location::json(view.json_file, format!("{}.name", e.pointer()), Some(&e.name)),
                    format!("layer name {:?} is also used by {}", e.name, first.pointer()),
                )
                .hint("Keras layer names are unique within a model; export model.layers of one model"),
            );
        } else {
            seen.insert(&e.name, e);
        }
    }
    out
}

fn unknown_hint(class_name: &str) -> String {
    // A wrong spelling of a known class ("dense", "Conv2d").
    let lower = class_name.to_ascii_lowercase();
    if let Some(s) = registry().iter().find(|s| s.class_name.to_ascii_lowercase() == lower) {
        return format!("\"type\" is the exact Keras class name: {:?}", s.class_name);
    }
    match class_name {
        "Sequential" | "Functional" | "Model" => {
            "a model used as a layer: export the layers inside it instead (`fmtool convert` flattens nested models)"
                .into()
        }
        _ => format!(
            "fmtool cannot score the model, and the course template would silently skip the layer; replace it with a supported layer (`fmtool layers` lists all {})",
            registry().len()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use crate::grader::Grader;
    use serde_json::json;

    #[test]
    fn unknown_and_misspelled_types() {
        let a = arch(json!([
            {"name": "lstm", "type": "LSTM", "config": {}, "weights": []},
            {"name": "d", "type": "dense", "config": {}, "weights": []},
            {"name": "flatten", "type": "Flatten", "config": {}, "weights": []},
        ]));
        let n = npz(&[]);
        let f = check(&view(&a, &n, Grader::Full));
        assert_eq!(codes(&f), ["unsupported-layer", "unsupported-layer"]);
        assert_eq!(f[0].location.pointer.as_deref(), Some("$[0].type"));
        assert!(f[0].message.contains("\"LSTM\""));
        assert!(f[0].hint.as_deref().unwrap().contains("fmtool layers"));
        assert!(f[1].hint.as_deref().unwrap().contains("\"Dense\""));
    }

    #[test]
    fn duplicate_names() {
        let a = arch(json!([dense("dense", 10, "relu"), dense("dense", 10, "softmax")]));
        let n = npz(&[]);
        let f = check(&view(&a, &n, Grader::Full));
        assert_eq!(codes(&f), ["duplicate-layer-name"]);
        assert_eq!(f[0].location.pointer.as_deref(), Some("$[1].name"));
    }
}
