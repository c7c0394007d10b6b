//! `fmtool score` as a user runs it: the report, the JSON schema, the points, the exit codes.

use crate::common::*;
use std::path::{Path, PathBuf};

/// The first real-Keras fixture whose layers are only those the course template runs.
fn dense_only_fixture() -> PathBuf {
    fixture_models("keras3")
        .into_iter()
        .find(|d| {
            let t = layer_types(d);
            t.contains(&"Dense".to_string())
                && t.iter().all(|t| matches!(t.as_str(), "Dense" | "Flatten" | "InputLayer"))
        })
        .expect("the keras3 fixtures include a Flatten/Dense model")
}

/// A real-Keras fixture with a BatchNormalization layer (the template skips it).
fn batchnorm_fixture() -> PathBuf {
    fixture_models("keras3")
        .into_iter()
        .chain(fixture_models("special"))
        .find(|d| {
            let t = layer_types(d);
            t.contains(&"BatchNormalization".to_string()) && t.iter().all(|t| !t.starts_with("Conv"))
        })
        .expect("the fixtures include a model with BatchNormalization")
}

fn json(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("stdout is JSON ({e}): {}", run.stdout))
}

pub fn schema_errors(schema: &str, value: &serde_json::Value) -> Vec<String> {
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("schemas").join(schema)).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    validator.iter_errors(value).map(|e| format!("{}: {e}", e.instance_path())).collect()
}

#[test]
fn json_report_is_valid_and_consistent() {
    let dir = dense_only_fixture();
    let run = fmtool(&["score", "--model", dir.to_str().unwrap(), "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = json(&run);
    assert_eq!(schema_errors("score-report.schema.json", &v), Vec::<String>::new());
    let accuracy = v["accuracy"].as_f64().unwrap();
    let correct = v["correct"].as_u64().unwrap();
    assert_eq!(v["images"], 10_000);
    assert!((accuracy - correct as f64 / 10_000.0).abs() < 1e-12);
    // The confusion matrix covers every image and its diagonal is the correct count.
    let conf: Vec<Vec<u64>> = serde_json::from_value(v["confusion"].clone()).unwrap();
    assert_eq!(conf.iter().flatten().sum::<u64>(), 10_000);
    assert_eq!((0..10).map(|i| conf[i][i]).sum::<u64>(), correct);
    // Points follow the course sheet for this accuracy.
    let expected = fmtool::grader::points(&not_run(), &not_run(), true, Some(accuracy)).total;
    assert_eq!(v["points"].as_u64().unwrap(), expected as u64);
}

#[test]
fn accuracy_matches_keras_on_the_fixture_inputs() {
    // io.npz holds Keras' own outputs for the first 64 test images: fmtool's argmax must agree.
    let dir = dense_only_fixture();
    let (_, y) = npz_f32(&dir.join("io.npz"), "y");
    let keras_preds: Vec<usize> = y.chunks(10).map(|r| fmtool::grader::argmax(r.iter().copied())).collect();
    let files = fmtool::model::load(&dir).unwrap();
    let model = fmtool::engine::Model::build(&files.arch, &files.npz).unwrap();
    let data = fmtool::dataset::embedded_test_set();
    let images = data.images_f32();
    let out = model.predict(images.slice(ndarray::s![..keras_preds.len(), ..]), &|_| {}).unwrap();
    let ours: Vec<usize> = out.rows().into_iter().map(|r| fmtool::grader::argmax(r.iter().copied())).collect();
    assert_eq!(ours, keras_preds);
}

#[test]
fn min_accuracy_sets_the_exit_code() {
    let dir = dense_only_fixture();
    let d = dir.to_str().unwrap();
    let pass = fmtool(&["score", "--model", d, "--min-accuracy", "0.05"]);
    assert_eq!(pass.code, 0, "{}", pass.stderr);
    let fail = fmtool(&["score", "--model", d, "--min-accuracy", "0.999"]);
    assert_eq!(fail.code, 1, "{}{}", fail.stdout, fail.stderr);
    assert!(fail.stdout.contains("below --min-accuracy 0.999"), "{}", fail.stdout);
    let bad = fmtool(&["score", "--model", d, "--min-accuracy", "92"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("not between 0 and 1"), "{}", bad.stderr);
}

#[test]
fn classic_grader_lists_what_the_template_skips() {
    let dir = batchnorm_fixture();
    let run = fmtool(&["score", "--model", dir.to_str().unwrap(), "--grader", "classic", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = json(&run);
    assert_eq!(schema_errors("score-report.schema.json", &v), Vec::<String>::new());
    let steps = v["template_steps"].as_array().unwrap();
    let bn = steps.iter().find(|s| s["type"] == "BatchNormalization").expect("the BN layer is listed");
    assert_eq!(bn["action"], "skipped");
    assert_eq!(bn["changes_result"], true);
    assert!(v["notes"].as_array().unwrap().iter().any(|n| n.as_str().unwrap().contains("as trained")));
}

#[test]
fn missing_model_directory_exits_2_and_says_where() {
    let run = fmtool(&["score", "--model", "no/such/dir"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("no/such/dir"), "{}", run.stderr);
    assert!(run.stderr.contains("hint:"), "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"));
}

fn copy_model(from: &Path, to: &Path) {
    for f in ["fashion_mnist.json", "fashion_mnist.npz"] {
        std::fs::copy(from.join(f), to.join(f)).unwrap();
    }
}

#[test]
fn truncated_npz_exits_2_naming_the_file() {
    let tmp = tempdir();
    copy_model(&dense_only_fixture(), tmp.path());
    let npz = tmp.path().join("fashion_mnist.npz");
    let bytes = std::fs::read(&npz).unwrap();
    std::fs::write(&npz, &bytes[..bytes.len() / 2]).unwrap();
    let run = fmtool(&["score", "--model", tmp.path().to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(run.stderr.contains("fashion_mnist.npz"), "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

#[test]
fn nan_weights_are_refused_with_the_layer_named() {
    let tmp = tempdir();
    let src = dense_only_fixture();
    std::fs::copy(src.join("fashion_mnist.json"), tmp.path().join("fashion_mnist.json")).unwrap();
    let npz = fmtool::model::npz::read_npz(&src.join("fashion_mnist.npz")).unwrap();
    let arrays: Vec<(String, ndarray::ArrayD<f32>)> = npz
        .entries
        .iter()
        .map(|e| {
            let mut a = e.array.as_ref().unwrap().to_f32();
            a.mapv_inplace(|_| f32::NAN);
            (e.key.clone(), a)
        })
        .collect();
    let f = std::fs::File::create(tmp.path().join("fashion_mnist.npz")).unwrap();
    fmtool::model::npz::write_npz(f, &arrays).unwrap();
    let run = fmtool(&["score", "--model", tmp.path().to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(run.stderr.contains("not finite") || run.stderr.contains("NaN"), "{}", run.stderr);
}

#[test]
fn data_flag_reads_idx_files_and_refuses_broken_ones() {
    let dir = dense_only_fixture();
    let d = dir.to_str().unwrap();
    // The committed copy of the course's data gives the same result as the embedded one.
    let a = json(&fmtool(&["score", "--model", d, "--format", "json"]));
    let b = json(&fmtool(&["score", "--model", d, "--format", "json", "--data", "data/fashion"]));
    assert_eq!(a["accuracy"], b["accuracy"]);
    assert_eq!(a["confusion"], b["confusion"]);

    let tmp = tempdir();
    let labels = std::fs::read(root().join("data/fashion/t10k-labels-idx1-ubyte.gz")).unwrap();
    std::fs::write(tmp.path().join("t10k-labels-idx1-ubyte.gz"), &labels).unwrap();
    let images = std::fs::read(root().join("data/fashion/t10k-images-idx3-ubyte.gz")).unwrap();
    std::fs::write(tmp.path().join("t10k-images-idx3-ubyte.gz"), &images[..1000]).unwrap();
    let run = fmtool(&["score", "--model", d, "--data", tmp.path().to_str().unwrap()]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("t10k-images-idx3-ubyte.gz"), "{}", run.stderr);
    assert!(run.stderr.contains("gzip"), "{}", run.stderr);
}

#[test]
fn committed_data_is_the_course_data() {
    // The files under data/fashion are the ones Debian's dataset-fashion-mnist ships; when that
    // package is installed, compare byte for byte.
    let system = Path::new("/usr/share/datasets/fashion-mnist");
    for f in ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
        let ours = std::fs::read(root().join("data/fashion").join(f)).unwrap();
        if system.join(f).is_file() {
            assert_eq!(ours, std::fs::read(system.join(f)).unwrap(), "{f} differs from the system copy");
        }
        assert!(ours.starts_with(&[0x1f, 0x8b]), "{f} is gzip");
    }
    let d = fmtool::dataset::load_dir(&root().join("data/fashion"), "t10k").unwrap();
    let e = fmtool::dataset::embedded_test_set();
    assert_eq!((d.pixels, d.labels), (e.pixels, e.labels));
}

#[test]
fn classic_grader_reports_a_template_crash_as_lost_points() {
    // A CNN: the template skips the convolutions and then multiplies the raw (1, 784) row by the
    // first Dense kernel, which does not fit. The autograder gives only the relu/softmax points,
    // and outside a student repository fmtool does not run those: nothing is claimed.
    let dir = fixture_models("keras3")
        .into_iter()
        .find(|d| layer_types(d).iter().any(|t| t == "Conv2D"))
        .expect("a keras3 CNN fixture");
    let run = fmtool(&["score", "--model", dir.to_str().unwrap(), "--grader", "classic", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = json(&run);
    assert_eq!(schema_errors("score-report.schema.json", &v), Vec::<String>::new());
    assert_eq!(v["points"], 0);
    assert!(v["failure"].as_str().unwrap().contains("matmul shapes do not match"), "{}", v["failure"]);
    let human = fmtool(&["score", "--model", dir.to_str().unwrap(), "--grader", "classic"]);
    assert!(human.stdout.contains("THE MODEL DOES NOT RUN"), "{}", human.stdout);
}

/// What the README promises for a fresh clone: model/classic reaches 0.90 in the unmodified course
/// template. (The committed model/'s targets are checked with the README's sample report, in
/// `snapshots::readme_sample_report_is_what_score_prints`.) Guards against committing a retrained
/// or re-exported model that falls short.
#[test]
fn shipped_models_meet_their_targets() {
    let run = fmtool(&["score", "--model", "model/classic", "--grader", "classic", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = json(&run);
    assert!(v["accuracy"].as_f64().unwrap() >= 0.90, "model/classic: {}", v["accuracy"]);
    // Only layers whose skipping changes nothing (InputLayer, Dropout) may be skipped.
    let steps = v["template_steps"].as_array().unwrap();
    assert!(steps.iter().all(|s| s["changes_result"] == false), "{}", v["template_steps"]);
}

/// `--timings` prints where the time went; the JSON report always carries the phases, the engine's
/// pass is among them, and no phase is longer than the whole run.
#[test]
fn timings_split_the_run_into_phases() {
    let dir = dense_only_fixture();
    let run = fmtool(&["score", "--model", dir.to_str().unwrap(), "--timings"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let line = run.stdout.lines().find(|l| l.starts_with("timings: ")).unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(line.contains("engine") && line.contains("(10000 images)"), "{line}");
    let plain = fmtool(&["score", "--model", dir.to_str().unwrap()]);
    assert!(!plain.stdout.contains("timings: "), "{}", plain.stdout);

    let v = json(&fmtool(&["score", "--model", dir.to_str().unwrap(), "--format", "json"]));
    let t = &v["timings"];
    let phases: Vec<f64> =
        ["read_model", "read_data", "build", "engine"].iter().map(|k| t[k].as_f64().unwrap()).collect();
    assert!(phases[3] > 0.0, "the engine ran: {t}");
    assert!(phases.iter().sum::<f64>() <= v["seconds"].as_f64().unwrap(), "{t} within {}", v["seconds"]);
}
