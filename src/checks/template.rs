//! Findings about the unmodified course template's forward pass (`grader::plan_template`): layers
//! it silently skips although they change the result (`template-skips`), Dense activations it
//! ignores (`template-ignores-activation`), and models it crashes on (`template-crash`: a Dense
//! without bias, or shapes that no longer fit once skipped layers are gone). Warnings for the full
//! grader, errors under `--grader classic`.

use super::{Finding, Location, ModelView};
use crate::checks::Code;
use crate::grader::{Action, template_step};
use crate::layers::{Family, fmt_dims, lookup};
use crate::model::ArchEntry;

pub fn check(view: &ModelView) -> Vec<Finding> {
    let Some(keys) = &view.keys else { return Vec::new() };
    let sev = view.template_severity();
    let mut out = Vec::new();
    let mut crashed = false;
    let mut skipped: Vec<&str> = Vec::new();
    for e in view.arch {
        let Some(spec) = lookup(&e.class_name) else { continue };
        // One entry at a time, so that one crash does not hide the findings after it.
        match template_step(e, keys) {
            Err(err) => {
                if view.weights_readable(e) {
                    crashed = true;
                    out.push(
                        Finding::new(Code::TemplateCrash, sev, Location::entry(view.json_file, e), err.message)
                            .maybe_hint(err.hint),
                    );
                }
            }
            Ok(step) => {
                if step.action == Action::Skipped && step.changes_result {
                    skipped.push(&e.name);
                    out.push(
                        Finding::new(Code::TemplateSkips,
                            sev,
                            Location::entry(view.json_file, e),
                            format!(
                                "the course template skips layer {} ({}), so it grades a different model than the trained one",
                                e.name, e.class_name
                            ),
                        )
                        .hint(skip_hint(spec.family, &e.class_name)),
                    );
                } else if step.action == Action::Ran && step.changes_result {
                    out.push(
                        Finding::new(Code::TemplateIgnoresActivation,
                            sev,
                            Location::json(view.json_file, format!("{}.config.activation", e.pointer()), Some(&e.name)),
                            format!(
                                "the course template applies only relu and softmax; it ignores activation {} of layer {} and computes x @ W + b",
                                activation_name(e),
                                e.name
                            ),
                        )
                        .hint("use activation=\"relu\" (\"softmax\" on the last layer), or add this activation to your forward pass"),
                    );
                }
            }
        }
    }
    if !crashed && view.arch_complete {
        out.extend(template_shapes(view, &skipped));
    }
    out
}

/// Follows the number of columns through the template's pass: it starts from the (1, 784) row,
/// Flatten changes nothing and every Dense needs `x.shape[1] == W.shape[0]`.
fn template_shapes(view: &ModelView, skipped: &[&str]) -> Option<Finding> {
    let mut cols = crate::engine::IMAGE_VALUES;
    let mut last_dense: Option<&ArchEntry> = None;
    for e in view.arch {
        if e.class_name != "Dense" {
            continue;
        }
        let w = view.array(e.weights.first()?)?;
        let [rows, units] = w.shape[..] else { return None };
        if rows != cols {
            let why =
                if skipped.is_empty() { String::new() } else { format!(" (after skipping {})", skipped.join(", ")) };
            return Some(
                Finding::new(Code::TemplateCrash,
                    view.template_severity(),
                    Location::weight(view.json_file, e, 0),
                    format!(
                        "the course template computes x @ W at layer {} with x of shape (1, {cols}){why} and W of shape {}; NumPy raises ValueError",
                        e.name,
                        fmt_dims(&w.shape)
                    ),
                )
                .hint("the template runs only Flatten and Dense on the flat (1, 784) row: for the unmodified template the model must be an MLP (Flatten, Dense relu, ..., Dense softmax)"),
            );
        }
        cols = units;
        last_dense = Some(e);
    }
    match last_dense {
        Some(e) if cols != 10 => Some(
            Finding::new(
                Code::TemplateCrash,
                view.template_severity(),
                Location::entry(view.json_file, e),
                format!(
                    "the course template's pass ends at layer {} with {cols} values per image, not 10 class scores",
                    e.name
                ),
            )
            .hint("end the model with Dense(10, activation=\"softmax\")"),
        ),
        _ => None,
    }
}

fn activation_name(e: &ArchEntry) -> String {
    match crate::layers::Activation::from_json(e.config.get("activation")) {
        Ok(a) => a.name().to_string(),
        Err(_) => e.config.get("activation").map(|v| v.to_string()).unwrap_or_default(),
    }
}

fn skip_hint(family: Family, class_name: &str) -> String {
    match (family, class_name) {
        (_, "BatchNormalization") => format!("the template has no branch for it: {}; by hand: W' = W·γ/√(σ²+ε), b' = (b−μ)·γ/√(σ²+ε)+β, or train without it", crate::fold::HINT),
        (_, "Rescaling" | "Normalization") => format!("the grader already scales pixels to [0, 1]: {}; or drop the layer", crate::fold::HINT),
        (Family::Activation, "Activation" | "ReLU" | "Softmax") => format!("put the activation on the Dense layer instead (activation=\"relu\" or \"softmax\", the two the template applies); {}", crate::fold::HINT),
        (Family::Activation, _) => "put the activation on the Dense layer instead (activation=\"relu\" or \"softmax\", the two the template applies)".into(),
        _ => "the template runs only Flatten and Dense; for the unmodified template the model must be an MLP (or extend your forward pass and grade with `fmtool score`)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use crate::checks::Severity;
    use crate::grader::Grader;
    use serde_json::json;

    #[test]
    fn batchnorm_is_skipped_and_severity_follows_the_grader() {
        let a = arch(json!([
            {"name": "flatten", "type": "Flatten", "config": {}, "weights": []},
            dense("dense", 128, "relu"),
            {"name": "bn", "type": "BatchNormalization", "config": {"epsilon": 0.001},
             "weights": ["bn_0", "bn_1", "bn_2", "bn_3"]},
            {"name": "dropout", "type": "Dropout", "config": {"rate": 0.2}, "weights": []},
            dense("dense_1", 10, "softmax"),
        ]));
        let n = npz(&[
            ("dense_0", &[784, 128]),
            ("dense_1", &[128]),
            ("bn_0", &[128]),
            ("bn_1", &[128]),
            ("bn_2", &[128]),
            ("bn_3", &[128]),
            ("dense_1_0", &[128, 10]),
            ("dense_1_1", &[10]),
        ]);
        let f = check(&view(&a, &n, Grader::Full));
        assert_eq!(codes(&f), ["template-skips"], "Dropout is harmless: {f:?}");
        assert_eq!(f[0].severity, Severity::Warning);
        assert_eq!(f[0].location.pointer.as_deref(), Some("$[2]"));
        assert!(f[0].hint.as_deref().unwrap().contains("fold"));
        let f = check(&view(&a, &n, Grader::Classic));
        assert_eq!(f[0].severity, Severity::Error);
    }

    #[test]
    fn elu_is_ignored_and_use_bias_false_crashes() {
        let a = arch(json!([
            {"name": "flatten", "type": "Flatten", "config": {}, "weights": []},
            dense("dense", 128, "elu"),
            {"name": "dense_1", "type": "Dense", "config": {"units": 10, "activation": "softmax", "use_bias": false}, "weights": ["dense_1_0"]},
        ]));
        let n = npz(&[("dense_0", &[784, 128]), ("dense_1", &[128]), ("dense_1_0", &[128, 10])]);
        let f = check(&view(&a, &n, Grader::Classic));
        assert_eq!(codes(&f), ["template-ignores-activation", "template-crash"]);
        assert_eq!(f[0].location.pointer.as_deref(), Some("$[1].config.activation"));
        assert!(f[0].message.contains("ignores activation elu"), "{}", f[0].message);
        assert!(f[1].message.contains("IndexError"), "{}", f[1].message);
        assert!(f.iter().all(|f| f.severity == Severity::Error));
    }

    #[test]
    fn conv_model_crashes_the_template_at_the_first_dense() {
        let a = arch(json!([
            {"name": "conv2d", "type": "Conv2D", "config": {"filters": 4, "kernel_size": 3, "batch_input_shape": [null, 28, 28, 1]},
             "weights": ["conv2d_0", "conv2d_1"]},
            {"name": "flatten", "type": "Flatten", "config": {}, "weights": []},
            dense("dense", 10, "softmax"),
        ]));
        let n = npz(&[("conv2d_0", &[3, 3, 1, 4]), ("conv2d_1", &[4]), ("dense_0", &[2704, 10]), ("dense_1", &[10])]);
        let f = check(&view(&a, &n, Grader::Full));
        assert_eq!(codes(&f), ["template-skips", "template-crash"]);
        assert!(
            f[1].message.contains("x of shape (1, 784) (after skipping conv2d) and W of shape (2704, 10)"),
            "{}",
            f[1].message
        );
        assert_eq!(f[1].location.pointer.as_deref(), Some("$[2].weights[0]"));
    }

    #[test]
    fn missing_weights_are_not_reported_again() {
        let (a, mut n) = mlp();
        n.entries.retain(|e| e.key != "dense_1_1");
        assert_eq!(check(&view(&a, &n, Grader::Classic)), vec![]);
    }
}
