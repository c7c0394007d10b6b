//! "Never stricter than the grader" (issue 10): hand-trimmed exports from
//! tests/fixtures/lenient/ (made by xtask/py/make_lenient_fixtures.py from a real Keras export)
//! are scored exactly as the course's template scores them with real NumPy, and fmtool's engine
//! runs every one whose weights make sense.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn variant(name: &str) -> PathBuf {
    fixture(&format!("lenient/{name}"))
}

fn all_variants() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fixture("lenient"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("fashion_mnist.json").is_file())
        .collect();
    v.sort();
    v
}

fn score(model: &Path, grader: &str, extra: &[&str]) -> (Run, serde_json::Value) {
    let mut args = vec!["score", "--model", model.to_str().unwrap(), "--grader", grader, "--format", "json"];
    args.extend_from_slice(extra);
    let run = fmtool(&args);
    let v = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{} {grader}: {e}: {}{}", model.display(), run.stdout, run.stderr));
    (run, v)
}

/// model_test.py's test_inference with the course template, in real NumPy: (accuracy, exception).
fn numpy_model_test(python: &str, model: &Path) -> (Option<f64>, Option<String>) {
    let tmp = tempdir();
    let out = tmp.path().join("result.json");
    let status = Command::new(python)
        .arg(root().join("tests/numpy/course_template.py"))
        .arg(model)
        .arg(root().join("data/fashion"))
        .arg(&out)
        .arg("--model-test")
        .status()
        .expect("python runs");
    assert!(status.success(), "course_template.py --model-test failed on {}", model.display());
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap();
    (v["accuracy"].as_f64(), v["error"].as_str().map(str::to_string))
}

#[test]
fn classic_grader_equals_the_real_template_on_every_variant() {
    let python = require_numpy();
    let variants = all_variants();
    assert!(variants.len() >= 8, "{variants:?}");
    for model in variants {
        let shown = model.display().to_string();
        let (np_acc, np_error) = numpy_model_test(&python, &model);
        let (run, v) = score(&model, "classic", &[]);
        assert_eq!(run.code, 0, "{shown}: {}", run.stderr);
        assert_eq!(crate::score::schema_errors("score-report.schema.json", &v), Vec::<String>::new(), "{shown}");
        match (np_acc, np_error) {
            (Some(acc), None) => {
                assert_eq!(v["accuracy"].as_f64(), Some(acc), "{shown}: {}", v["failure"]);
                assert_eq!(v["failure"], serde_json::Value::Null, "{shown}");
                assert_eq!(
                    v["points"],
                    fmtool::grader::points(&not_run(), &not_run(), true, Some(acc)).total,
                    "{shown}"
                );
            }
            (None, Some(error)) => {
                // The grader computes no accuracy: 0 for the model and every accuracy row, and the
                // exception the student would see.
                assert_eq!(v["accuracy"], serde_json::Value::Null, "{shown}: NumPy raised {error}");
                assert_eq!(v["points"], 0, "{shown}: relu and softmax are not run outside a student repository");
                let failure = v["failure"].as_str().unwrap_or_else(|| panic!("{shown}: no failure"));
                let (kind, detail) = error.split_once(": ").unwrap();
                assert!(failure.contains(kind), "{shown}: NumPy raised {error}; fmtool says {failure}");
                if kind == "KeyError" {
                    assert!(failure.contains(&format!("{kind}: {detail}")), "{shown}: {error} / {failure}");
                }
                assert_eq!(v["per_class"], serde_json::json!([]), "{shown}");
                assert_eq!(v["confusion"], serde_json::json!([]), "{shown}");
            }
            other => panic!("{shown}: {other:?}"),
        }
    }
}

#[test]
fn the_engine_runs_every_variant_whose_weights_fit() {
    let base = score(&fixture("keras3/mlp_flatten"), "full", &[]).1["accuracy"].as_f64().unwrap();
    for name in ["no_units", "bias_1n_float64", "config_empty", "bias_n1", "no_config_key", "no_weights_key"] {
        let (run, v) = score(&variant(name), "full", &[]);
        assert_eq!(run.code, 0, "{name}: {}", run.stderr);
        assert_eq!(v["failure"], serde_json::Value::Null, "{name}");
        assert_eq!(v["accuracy"].as_f64(), Some(base), "{name}: the same weights give the same accuracy");
        assert_eq!(v["points"], 50, "{name}: relu and softmax are not run outside a student repository");
    }
    // Without its bias the last layer scores differently, but it runs.
    let (run, v) = score(&variant("dense_no_bias"), "full", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(v["accuracy"].as_f64().is_some(), "{}", v["failure"]);
}

#[test]
fn a_model_the_template_crashes_on_reports_the_engines_accuracy_with_the_fix() {
    let full = score(&variant("bias_n1"), "full", &[]).1["accuracy"].as_f64().unwrap();
    let (run, v) = score(&variant("bias_n1"), "classic", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(v["accuracy"], serde_json::Value::Null);
    assert_eq!(v["model_accuracy"].as_f64(), Some(full));
    assert!(v["failure"].as_str().unwrap().contains("squeeze"), "{}", v["failure"]);
    assert!(
        v["notes"].as_array().unwrap().iter().any(|n| n.as_str().unwrap().contains("fmtool convert")),
        "{}",
        v["notes"]
    );
    // --min-accuracy: a model that does not run reaches no accuracy.
    let (run, _) = score(&variant("bias_n1"), "classic", &["--min-accuracy", "0.1"]);
    assert_eq!(run.code, 1);
    // The human report has no table of zeros.
    let human = fmtool(&["score", "--model", variant("bias_n1").to_str().unwrap(), "--grader", "classic"]);
    assert_eq!(human.code, 0, "{}", human.stderr);
    assert!(human.stdout.contains("THE MODEL DOES NOT RUN"), "{}", human.stdout);
    assert!(human.stdout.contains("accuracy: none"), "{}", human.stdout);
    assert!(!human.stdout.contains("per class:") && !human.stdout.contains("confusion matrix"), "{}", human.stdout);
}

#[test]
fn an_engine_that_cannot_build_the_model_is_graded_not_an_error() {
    // Neither the template nor the engine can add a (2, 8) bias to 16 outputs.
    let (run, v) = score(&variant("bias_mismatch"), "full", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(v["accuracy"], serde_json::Value::Null);
    assert_eq!(v["points"], 0);
    assert!(v["failure"].as_str().unwrap().contains("(2, 8)"), "{}", v["failure"]);
    let (run, _) = score(&variant("bias_mismatch"), "full", &["--min-accuracy", "0.5"]);
    assert_eq!(run.code, 1);

    // Another JSON layout: the grader cannot read it either.
    let tmp = tempdir();
    std::fs::copy(variant("no_units").join("fashion_mnist.npz"), tmp.path().join("fashion_mnist.npz")).unwrap();
    std::fs::write(tmp.path().join("fashion_mnist.json"), r#"{"class_name": "Sequential", "config": {"layers": []}}"#)
        .unwrap();
    for grader in ["full", "classic"] {
        let (run, v) = score(tmp.path(), grader, &[]);
        assert_eq!(run.code, 0, "{grader}: {}", run.stderr);
        assert_eq!(v["accuracy"], serde_json::Value::Null, "{grader}");
        assert!(v["failure"].as_str().unwrap().contains("fmtool convert"), "{grader}: {}", v["failure"]);
    }
}

#[test]
fn check_reports_no_error_on_what_the_template_runs() {
    for name in ["no_units", "bias_1n_float64", "config_empty"] {
        for grader in ["full", "classic"] {
            let run = fmtool(&["check", variant(name).to_str().unwrap(), "--grader", grader, "--format", "json"]);
            let v: serde_json::Value =
                serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stderr));
            let errors: Vec<&serde_json::Value> =
                v["findings"].as_array().unwrap().iter().filter(|f| f["severity"] == "error").collect();
            assert!(errors.is_empty(), "{name} --grader {grader}: {errors:?}");
            assert_eq!(run.code, 0, "{name} --grader {grader}: {}", run.stdout);
        }
    }
}
