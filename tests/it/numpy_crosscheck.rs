//! Real NumPy against fmtool: the course template's NumPy forward pass (tests/numpy/course_template.py)
//! over the same files must agree with `--grader classic` image for image, and with
//! `fmtool predict` within 1e-5. The NumPy passes run on a sample of the test set (every 5th or
//! 10th image): the full set costs minutes and gigabytes in NumPy and covers no other code.

use crate::common::*;
use std::path::Path;
use std::process::Command;

/// Runs one of tests/numpy/'s scripts (`SCRIPT MODEL_DIR DATA_DIR OUT.npz`) on `model`; returns
/// (predictions, outputs as f32 rows).
fn run_numpy(python: &str, script: &str, model: &Path, data: &Path, out_dir: &Path) -> (Vec<usize>, Vec<f32>) {
    let out = out_dir.join("numpy.npz");
    let status = Command::new(python)
        .arg(root().join("tests/numpy").join(script))
        .arg(model)
        .arg(data)
        .arg(&out)
        .status()
        .expect("python runs");
    assert!(status.success(), "{script} failed on {}", model.display());
    let npz = fmtool::model::npz::read_npz(&out).unwrap();
    let preds = npz.array("predictions").unwrap().values().map(|v| v as usize).collect();
    let outputs = npz.array("outputs").unwrap().values().map(|v| v as f32).collect();
    (preds, outputs)
}

/// The course template in NumPy.
fn numpy_template(python: &str, model: &Path, data: &Path, out_dir: &Path) -> (Vec<usize>, Vec<f32>) {
    run_numpy(python, "course_template.py", model, data, out_dir)
}

/// Models the course template can run exactly: only Flatten, Dense and InputLayer.
fn template_models() -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = ["keras3", "keras2"]
        .iter()
        .flat_map(|g| fixture_models(g))
        .filter(|d| layer_types(d).iter().all(|t| matches!(t.as_str(), "Dense" | "Flatten" | "InputLayer")))
        .collect();
    if root().join("model/classic/fashion_mnist.json").is_file() {
        v.push(root().join("model/classic"));
    }
    v
}

#[test]
fn numpy_template_agrees_with_classic_grader_and_predict() {
    let python = require_numpy();
    let models = template_models();
    assert!(!models.is_empty(), "no Flatten/Dense fixture to compare on");
    let sample_dir = tempdir();
    let data = write_sample(sample_dir.path(), 5);
    let data_arg = sample_dir.path().to_str().unwrap();
    let images = ndarray::Array2::from_shape_fn((data.len(), 784), |(i, j)| data.pixels[i * 784 + j] as f64 / 255.0);
    for model in models {
        let tmp = tempdir();
        let (np_preds, np_out) = numpy_template(&python, &model, sample_dir.path(), tmp.path());

        // Image for image against the classic grader (the code behind `--grader classic`).
        let files = fmtool::model::load(&model).unwrap();
        let plan = fmtool::grader::plan_template(&files.arch, &files.npz).unwrap();
        let out = plan.run(images.view()).unwrap();
        let ours: Vec<usize> = out.rows().into_iter().map(|r| fmtool::grader::argmax(r.iter().copied())).collect();
        let differ: Vec<usize> = (0..ours.len()).filter(|&i| ours[i] != np_preds[i]).collect();
        assert!(differ.is_empty(), "{}: classic grader and NumPy disagree on images {differ:?}", model.display());

        // The CLI's classic accuracy is NumPy's.
        let model_arg = model.to_str().unwrap();
        let run =
            fmtool(&["score", "--model", model_arg, "--data", data_arg, "--grader", "classic", "--format", "json"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        let np_correct = np_preds.iter().zip(&data.labels).filter(|(p, l)| **p == **l as usize).count();
        assert_eq!(v["correct"].as_u64().unwrap() as usize, np_correct, "{}", model.display());

        // fmtool predict (float32 engine) within 1e-5 of NumPy's float64 template outputs.
        let npy = tmp.path().join("pred.npy");
        let run = fmtool(&["predict", "--model", model_arg, "--data", data_arg, "--out", npy.to_str().unwrap()]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let bytes = std::fs::read(&npy).unwrap();
        let pred = read_npy_f32(&bytes);
        assert_eq!(pred.len(), np_out.len());
        let max = pred.iter().zip(&np_out).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(max <= 1e-5, "{}: predict differs from NumPy by {max}", model.display());
    }
}

/// Reads a .npy file's float32 payload by wrapping it in a one-member npz for fmtool's reader.
fn read_npy_f32(bytes: &[u8]) -> Vec<f32> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("a.npy", zip::write::SimpleFileOptions::default()).unwrap();
    zip.write_all(bytes).unwrap();
    let cur = zip.finish().unwrap();
    let npz = fmtool::model::npz::read_npz_bytes(Path::new("pred.npy"), cur.get_ref()).unwrap();
    npz.array("a").unwrap().values().map(|v| v as f32).collect()
}

/// The shipped CNNs (model/, the distilled CNN, and model/ensemble/, its teacher; both written by
/// `fmtool convert`) load with json.load / numpy.load and a plain NumPy pass on every 10th test image
/// (tests/numpy/numpy_forward.py: im2col convolutions, following `inbound` through the ensemble's
/// towers) gives fmtool's predictions: outputs within 1e-5, and the same class for every image
/// whose top two scores are more than 1e-5 apart.
#[test]
fn shipped_cnns_agree_with_a_numpy_forward_pass() {
    for model in ["model", "model/ensemble"] {
        shipped_cnn_agrees_with_a_numpy_forward_pass(&root().join(model));
    }
}

fn shipped_cnn_agrees_with_a_numpy_forward_pass(model: &Path) {
    let python = require_numpy();
    let tmp = tempdir();
    let sample = write_sample(tmp.path(), 10);
    let (_, np_out) = run_numpy(&python, "numpy_forward.py", model, tmp.path(), tmp.path());

    let npy = tmp.path().join("pred.npy");
    let data = tmp.path().to_str().unwrap();
    let run = fmtool(&["predict", "--model", model.to_str().unwrap(), "--data", data, "--out", npy.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let ours = read_npy_f32(&std::fs::read(&npy).unwrap());
    assert_eq!(ours.len(), np_out.len());
    assert_eq!(ours.len(), 1_000 * 10);
    assert_eq!(sample.len(), 1_000);
    let max = ours.iter().zip(&np_out).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(max <= 1e-5, "{}: fmtool predict differs from NumPy by {max}", model.display());
    let argmax = |r: &[f32]| fmtool::grader::argmax(r.iter().map(|&v| v as f64));
    for (i, (a, b)) in ours.chunks(10).zip(np_out.chunks(10)).enumerate() {
        let mut sorted = b.to_vec();
        sorted.sort_by(|x, y| y.total_cmp(x));
        if sorted[0] - sorted[1] > 1e-5 {
            assert_eq!(argmax(a), argmax(b), "image {i}: fmtool {a:?}, NumPy {b:?}");
        }
    }
}
