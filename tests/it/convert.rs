//! `fmtool convert` on files written by real Keras: the result equals the course notebook's own
//! export and predicts what Keras predicted; the refusals are clear; no corrupt file crashes it.

use crate::common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Every fixture model file that holds a full model, with the directory of its notebook export.
fn model_files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for group in ["keras3", "keras2", "special"] {
        for dir in fixture_models(group) {
            for f in ["model.h5", "model.keras"] {
                if dir.join(f).is_file() {
                    out.push(dir.join(f));
                }
            }
        }
    }
    out
}

fn read_json(p: &Path) -> Vec<Value> {
    serde_json::from_str::<Value>(&std::fs::read_to_string(p).unwrap()).unwrap().as_array().unwrap().clone()
}

#[test]
fn converted_files_equal_the_notebook_export_and_predict_like_keras() {
    let files = model_files();
    assert!(files.len() >= 45, "expected keras3 .h5/.keras and keras2 .h5 fixtures, found {}", files.len());
    for file in files {
        let dir = file.parent().unwrap();
        let out = tempdir();
        let run = fmtool(&["convert", file.to_str().unwrap(), "--out", out.path().to_str().unwrap()]);
        assert_eq!(run.code, 0, "{}: {}", file.display(), run.stderr);
        assert!(run.stdout.contains("Total params"), "{}", run.stdout);

        // Same entries as the notebook export (which lacks the InputLayer entries fmtool keeps to
        // preserve the input shape), same configs, same weight names.
        let ours = read_json(&out.path().join("fashion_mnist.json"));
        let theirs = read_json(&dir.join("fashion_mnist.json"));
        let ours_no_input: Vec<&Value> = ours.iter().filter(|e| e["type"] != "InputLayer").collect();
        let theirs_no_input: Vec<&Value> = theirs.iter().filter(|e| e["type"] != "InputLayer").collect();
        assert_eq!(ours_no_input.len(), theirs_no_input.len(), "{}", file.display());
        for (a, b) in ours_no_input.iter().zip(&theirs_no_input) {
            for key in ["name", "type", "config", "weights"] {
                assert_eq!(a[key], b[key], "{}: {key} of {}", file.display(), b["name"]);
            }
            if b.get("inbound").is_some() {
                assert_eq!(a["inbound"], b["inbound"], "{}: inbound of {}", file.display(), b["name"]);
            }
        }

        // Identical arrays, bit for bit.
        let a = fmtool::model::npz::read_npz(&out.path().join("fashion_mnist.npz")).unwrap();
        let b = fmtool::model::npz::read_npz(&dir.join("fashion_mnist.npz")).unwrap();
        let mut ka: Vec<&str> = a.keys().collect();
        let mut kb: Vec<&str> = b.keys().collect();
        ka.sort();
        kb.sort();
        assert_eq!(ka, kb, "{}", file.display());
        for k in ka {
            let (x, y) = (a.array(k).unwrap(), b.array(k).unwrap());
            assert_eq!(x.shape, y.shape, "{}: {k}", file.display());
            assert!(
                x.data.iter().zip(&y.data).all(|(p, q)| p.to_bits() == q.to_bits()),
                "{}: {k} differs",
                file.display()
            );
        }

        // The converted model predicts what Keras predicted.
        let model = fmtool::model::load(out.path()).unwrap();
        let m = fmtool::engine::Model::build(&model.arch, &model.npz).unwrap();
        let (xs, x) = npz_f32(&dir.join("io.npz"), "x");
        let (_, y) = npz_f32(&dir.join("io.npz"), "y");
        let x = ndarray::Array2::from_shape_vec((xs[0], xs[1]), x).unwrap();
        let out = m.predict(x.view(), &|_| {}).unwrap();
        let max = out.iter().zip(&y).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
        assert!(max <= 1e-5, "{}: differs from Keras by {max}", file.display());
    }
}

#[test]
fn conversion_is_deterministic() {
    let file = fixture("keras3/merge/model.keras");
    let (a, b) = (tempdir(), tempdir());
    for d in [&a, &b] {
        assert_eq!(fmtool(&["convert", file.to_str().unwrap(), "--out", d.path().to_str().unwrap()]).code, 0);
    }
    for f in ["fashion_mnist.json", "fashion_mnist.npz"] {
        assert_eq!(std::fs::read(a.path().join(f)).unwrap(), std::fs::read(b.path().join(f)).unwrap(), "{f}");
    }
}

fn refused(file: &Path, needle: &str) {
    let out = tempdir();
    let run = fmtool(&["convert", file.to_str().unwrap(), "--out", out.path().to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}: {}", file.display(), run.stdout);
    assert!(run.stderr.contains(needle), "{}: {}", file.display(), run.stderr);
    assert!(run.stderr.contains("hint:"), "{}", run.stderr);
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0, "nothing may be left behind");
}

#[test]
fn weights_only_files_are_refused_with_how_to_save() {
    refused(&fixture("special/weights_only_keras3/model.weights.h5"), "model.save(\"fashion_mnist.h5\")");
    refused(&fixture("special/weights_only_keras2/model.h5"), "only weights");
}

#[test]
fn unsupported_and_nested_models_are_refused_naming_the_layers() {
    refused(&fixture("special/unsupported_keras3/model.h5"), "Conv1D");
    refused(&fixture("special/unsupported_keras3/model.h5"), "LSTM");
    refused(&fixture("special/nested_keras3/model.h5"), "nested");
    refused(&fixture("special/nested_keras2/model.h5"), "nested");
}

#[test]
fn files_that_are_not_keras_models_are_refused() {
    // An HDF5 file that is not a Keras model: Keras' fixture io arrays are npz, so use the npz of a
    // fixture for "not HDF5", and a weights file's inner HDF5 for "HDF5 without model_config".
    refused(&fixture("keras3/mlp_784/io.npz"), "not a Keras .keras model archive");
    refused(&root().join("README.md"), "neither an HDF5 file");
    let tmp = tempdir();
    let bytes = std::fs::read(fixture("keras3/mlp_784/model.h5")).unwrap();
    let truncated = tmp.path().join("truncated.h5");
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    refused(&truncated, "truncated.h5");
}

#[test]
fn existing_files_are_kept_without_force() {
    let file = fixture("keras3/mlp_784/model.h5");
    let out = tempdir();
    std::fs::write(out.path().join("fashion_mnist.json"), b"my own file").unwrap();
    let run = fmtool(&["convert", file.to_str().unwrap(), "--out", out.path().to_str().unwrap()]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--force"), "{}", run.stderr);
    assert_eq!(std::fs::read(out.path().join("fashion_mnist.json")).unwrap(), b"my own file");
    assert!(!out.path().join("fashion_mnist.npz").exists());
    let run = fmtool(&["convert", file.to_str().unwrap(), "--out", out.path().to_str().unwrap(), "--force"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_ne!(std::fs::read(out.path().join("fashion_mnist.json")).unwrap(), b"my own file");
    let leftovers: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".fmtool-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn json_summary_lists_layers_and_parameters() {
    let out = tempdir();
    let file = fixture("keras3/conv_basic/model.h5");
    let run = fmtool(&["convert", file.to_str().unwrap(), "--out", out.path().to_str().unwrap(), "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    let npz = fmtool::model::npz::read_npz(&out.path().join("fashion_mnist.npz")).unwrap();
    let total: usize = npz.entries.iter().map(|e| e.array.as_ref().unwrap().data.len()).sum();
    assert_eq!(v["total_params"].as_u64().unwrap() as usize, total);
    assert_eq!(v["layers"].as_array().unwrap().last().unwrap()["output_shape"], serde_json::json!([10]));
}

/// Truncates and bit-flips every fixture model file at many positions: the reader must answer
/// Ok or Err every time, never panic and never hang.
#[test]
fn corrupt_files_never_crash_or_hang() {
    let tmp = tempdir();
    let mut cases = 0;
    for file in model_files().into_iter().step_by(3) {
        let bytes = std::fs::read(&file).unwrap();
        let n = bytes.len();
        for k in 1..24usize {
            let pos = (n * k) / 24;
            let mut flipped = bytes.clone();
            flipped[pos] ^= 0x5a;
            for (i, variant) in [bytes[..pos].to_vec(), flipped].into_iter().enumerate() {
                let path = tmp.path().join(format!("m{cases}-{i}.{}", file.extension().unwrap().to_str().unwrap()));
                std::fs::write(&path, &variant).unwrap();
                let (tx, rx) = std::sync::mpsc::channel();
                let p = path.clone();
                std::thread::spawn(move || {
                    let _ = tx.send(fmtool::commands::convert::convert_model(&p).is_ok());
                });
                assert!(
                    rx.recv_timeout(std::time::Duration::from_secs(20)).is_ok(),
                    "{} cut/flipped at {pos} hangs or panics",
                    file.display()
                );
                cases += 1;
            }
        }
    }
    assert!(cases > 300, "{cases}");
}
