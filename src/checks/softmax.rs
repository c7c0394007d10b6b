//! The `no-softmax` warning: the model's last layer (past layers that are identities at inference,
//! such as a final Dropout) does not apply softmax, so its outputs are not class probabilities.
//! Accuracy is unchanged (argmax), but the assignment asks for a softmax output.

use super::{Finding, Location, ModelView};
use crate::checks::Code;
use crate::layers::{Activation, Family, lookup};
use crate::model::ArchEntry;

pub fn check(view: &ModelView) -> Vec<Finding> {
    if !view.arch_complete {
        return Vec::new();
    }
    let Some(last) =
        view.arch.iter().rev().find(|e| !lookup(&e.class_name).is_some_and(|s| s.family == Family::Identity))
    else {
        return Vec::new();
    };
    match ends_with(last) {
        End::Softmax | End::Unknown => Vec::new(),
        End::Other(what) => vec![
            Finding::warning(Code::NoSoftmax,
                Location::entry(view.json_file, last),
                format!("the last layer {} ({}) {what}, not softmax; the outputs are not class probabilities", last.name, last.class_name),
            )
            .hint("accuracy (argmax) is the same, but the course asks for probabilities: end with Dense(10, activation=\"softmax\")"),
        ],
    }
}

enum End {
    Softmax,
    Other(String),
    /// An activation fmtool does not know: reported by the layer checks.
    Unknown,
}

fn ends_with(e: &ArchEntry) -> End {
    if e.class_name == "Softmax" {
        return End::Softmax;
    }
    match e.config.get("activation") {
        None if e.class_name == "Activation" => End::Unknown,
        None => End::Other("has no activation".into()),
        Some(v) => match Activation::from_json(Some(v)) {
            Ok(a) if a.name() == "softmax" => End::Softmax,
            Ok(a) => End::Other(format!("has activation {}", a.name())),
            Err(_) => End::Unknown,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use crate::grader::Grader;
    use serde_json::json;

    fn last_is(entries: serde_json::Value) -> Vec<&'static str> {
        let a = arch(entries);
        let n = npz(&[]);
        codes(&check(&view(&a, &n, Grader::Full)))
    }

    #[test]
    fn softmax_in_any_form_is_accepted() {
        assert!(last_is(json!([dense("d", 10, "softmax")])).is_empty());
        assert!(
            last_is(json!([dense("d", 10, "linear"), {"name": "s", "type": "Softmax", "config": {}, "weights": []}]))
                .is_empty()
        );
        assert!(
            last_is(json!([dense("d", 10, "linear"), {"name": "a", "type": "Activation", "config": {"activation": "softmax"}, "weights": []}]))
                .is_empty()
        );
        let k3 = json!({"module": "keras.activations", "class_name": "function", "config": "softmax", "registered_name": "function"});
        assert!(
            last_is(json!([{"name": "d", "type": "Dense", "config": {"units": 10, "activation": k3}, "weights": []}]))
                .is_empty()
        );
        // A Dropout after the softmax layer does not hide it.
        assert!(
            last_is(json!([dense("d", 10, "softmax"), {"name": "x", "type": "Dropout", "config": {}, "weights": []}]))
                .is_empty()
        );
    }

    #[test]
    fn linear_logits_warn() {
        let a = arch(json!([dense("d", 10, "linear")]));
        let n = npz(&[]);
        let f = check(&view(&a, &n, Grader::Full));
        assert_eq!(codes(&f), ["no-softmax"]);
        assert_eq!(f[0].severity, crate::checks::Severity::Warning);
        assert!(f[0].message.contains("has activation linear"));
    }
}
