//! `fmtool convert --for-template` on models written by real Keras (tests/fixtures/for_template,
//! `cargo xtask template-fixtures`): after the rewrite, the course template's own NumPy forward
//! pass (real NumPy, tests/numpy/course_template.py, one float64 (1, 784) row at a time) predicts
//! what Keras predicted on all 10,000 test images, and its outputs are within 1e-5 of Keras' own.
//! Layers that have no exact form are refused by name, with the reason, and nothing is written.

use crate::common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn cases() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fixture("for_template"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("model.h5").is_file())
        .collect();
    v.sort();
    v
}

fn rewrite(model: &Path, out: &Path) -> Value {
    let run = fmtool(&[
        "convert",
        model.to_str().unwrap(),
        "--for-template",
        "--out",
        out.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}: {}", model.display(), run.stderr);
    serde_json::from_str(&run.stdout).unwrap()
}

#[test]
fn rewritten_models_run_in_the_template_as_keras_runs_them() {
    let python = require_numpy();
    let cases = cases();
    assert_eq!(cases.len(), 10, "five cases by two Keras writers");
    let data = root().join("data/fashion");
    for case in cases {
        let out = tempdir();
        let report = rewrite(&case.join("model.h5"), out.path());
        assert_eq!(crate::score::schema_errors("convert-report.schema.json", &report), Vec::<String>::new());
        let t = &report["for_template"];
        assert_eq!(t["predictions_changed"], 0, "{}: {t:#}", case.display());
        assert!(t["max_abs_difference"].as_f64().unwrap() < 1e-5, "{}: {t:#}", case.display());
        // Only what the template runs is left.
        let arch: Value =
            serde_json::from_str(&std::fs::read_to_string(out.path().join("fashion_mnist.json")).unwrap()).unwrap();
        let types: Vec<&str> = arch.as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(types[0], "Flatten");
        assert!(types[1..].iter().all(|t| *t == "Dense"), "{types:?}");
        for e in &arch.as_array().unwrap()[1..] {
            assert!(matches!(e["config"]["activation"].as_str(), Some("relu" | "softmax" | "linear")), "{e}");
        }
        // Something the template skips was folded, merged or removed.
        let steps = t["steps"].as_array().unwrap();
        assert!(steps.iter().any(|s| s["action"] != "kept"), "{}", case.display());

        // The course template in real NumPy against Keras' own outputs.
        let npy = out.path().join("numpy.npz");
        let status = std::process::Command::new(&python)
            .arg(root().join("tests/numpy/course_template.py"))
            .args([out.path(), &data, &npy])
            .status()
            .unwrap();
        assert!(status.success());
        let numpy = fmtool::model::npz::read_npz(&npy).unwrap();
        let keras = fmtool::model::npz::read_npz(&case.join("io.npz")).unwrap();
        let np_pred: Vec<f64> = numpy.array("predictions").unwrap().values().collect();
        let k_pred: Vec<f64> = keras.array("predictions").unwrap().values().collect();
        assert_eq!(np_pred.len(), 10_000);
        let differ = np_pred.iter().zip(&k_pred).filter(|(a, b)| a != b).count();
        assert_eq!(differ, 0, "{}: {differ} of 10,000 predictions differ from Keras'", case.display());
        let np_out: Vec<f64> = numpy.array("outputs").unwrap().values().collect();
        let k_out: Vec<f64> = keras.array("outputs").unwrap().values().collect();
        let worst = k_out.iter().zip(&np_out).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        assert!(worst < 1e-5, "{}: the template's outputs differ from Keras' by {worst:e}", case.display());
    }
}

/// The template skips these layers as distributed: graded as is, the model is not the trained one
/// (its accuracy changes); after the rewrite, `score --grader classic` gives the trained model's.
#[test]
fn the_template_grades_the_rewritten_model_as_trained() {
    let case = fixture("for_template/bn_before_dense_keras2");
    let out = tempdir();
    let converted = out.path().join("converted");
    let run = fmtool(&["convert", case.join("model.h5").to_str().unwrap(), "--out", converted.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let acc = |model: &Path, classic: bool| -> f64 {
        let mut args = vec!["score", "--model", model.to_str().unwrap(), "--format", "json"];
        if classic {
            args.extend(["--grader", "classic"]);
        }
        let v: Value = serde_json::from_str(&fmtool(&args).stdout).unwrap();
        v["accuracy"].as_f64().unwrap()
    };
    let trained = acc(&converted, false);
    let skipped = acc(&converted, true);
    assert!((trained - skipped).abs() > 0.01, "the template's skipping changes the grade: {trained} vs {skipped}");
    // A model folder is rewritten too.
    let rewritten = out.path().join("rewritten");
    rewrite(&converted, &rewritten);
    assert_eq!(acc(&rewritten, true), trained);
    // check points to the command.
    let check = fmtool(&["check", converted.to_str().unwrap(), "--grader", "classic"]);
    assert!(check.stdout.contains("--for-template"), "{}", check.stdout);
}

#[test]
fn layers_without_an_exact_form_are_refused_by_name_and_nothing_is_written() {
    let cases = [
        ("keras3/conv_basic", "layer stem (Conv2D): a convolution"),
        ("keras2/normalization", "layer layer_normalization (LayerNormalization): it divides each image"),
        ("keras3/activations", "(AveragePooling2D): pooling"),
    ];
    for (fixture_dir, want) in cases {
        let out = tempdir();
        let target = out.path().join("model");
        let run = fmtool(&[
            "convert",
            fixture(fixture_dir).join("model.h5").to_str().unwrap(),
            "--for-template",
            "--out",
            target.to_str().unwrap(),
        ]);
        assert_eq!(run.code, 2, "{fixture_dir}");
        assert!(
            run.stderr.contains(want) && run.stderr.contains("nothing was written"),
            "{fixture_dir}: {}",
            run.stderr
        );
        assert!(!target.exists(), "{fixture_dir}: {} was created", target.display());
    }
}

/// The other inputs a student has: a Keras 3 `.keras` archive, and a hand-trimmed course export
/// (no `units`, weight names on Flatten, (1, n) float64 biases).
#[test]
fn a_keras_archive_and_a_hand_trimmed_export_are_rewritten() {
    for input in
        [fixture("keras3/mlp_flatten").join("model.keras"), fixture("student/cases/handwritten_json").join("model")]
    {
        let out = tempdir();
        let report = rewrite(&input, out.path());
        let t = &report["for_template"];
        assert_eq!(t["predictions_changed"], 0, "{}: {t:#}", input.display());
        assert!(t["max_abs_difference"].as_f64().unwrap() < 1e-5, "{}: {t:#}", input.display());
        let steps = t["steps"].as_array().unwrap();
        assert!(steps.iter().filter(|s| s["action"] == "kept").count() >= 2, "{}: {t:#}", input.display());
    }
}
