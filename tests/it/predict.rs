//! `fmtool predict` (the .npy of every output, one picture's class) and `fmtool score --plot`, as a
//! user runs them, checked against the engine, fmtool's npy reader and real NumPy.

use crate::common::*;
use fmtool::dataset::{Dataset, embedded_test_set};
use fmtool::engine::Model;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A real-Keras model of Flatten and Dense layers.
fn keras_model() -> PathBuf {
    fixture("keras3/mlp_flatten")
}

fn engine_outputs(model: &Path, rows: ndarray::ArrayView2<f32>) -> ndarray::Array2<f32> {
    let files = fmtool::model::load(model).unwrap();
    Model::build(&files.arch, &files.npz).unwrap().predict(rows, &|_| {}).unwrap()
}

fn argmax(row: &[f32]) -> usize {
    fmtool::grader::argmax(row.iter().copied())
}

/// Reads a .npy file with fmtool's own reader (wrapped into a one-member npz, which is what an
/// npz is) and returns its shape, dtype name and values.
fn read_npy(path: &Path) -> (Vec<usize>, String, Vec<f32>) {
    use std::io::Write;
    let bytes = std::fs::read(path).unwrap();
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("a.npy", zip::write::SimpleFileOptions::default()).unwrap();
    zip.write_all(&bytes).unwrap();
    let cur = zip.finish().unwrap();
    let npz = fmtool::model::npz::read_npz_bytes(path, cur.get_ref()).unwrap();
    let a = npz.array("a").unwrap();
    (a.shape.clone(), a.dtype.numpy_name().to_string(), a.values().map(|v| v as f32).collect())
}

/// Python with NumPy, or None when the user opted out with FMTOOL_NO_PYTHON=1; without either the
/// test fails (CI installs NumPy, so a silent pass would hide a broken setup).
fn numpy_or_opt_out() -> Option<String> {
    if std::env::var("FMTOOL_NO_PYTHON").is_ok_and(|v| v == "1") {
        eprintln!("FMTOOL_NO_PYTHON=1: not checking with real NumPy");
        return None;
    }
    Some(require_numpy())
}

fn json(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("stdout is JSON ({e}): {}\n{}", run.stdout, run.stderr))
}

/// Where `value` breaks schemas/predict-report.schema.json.
fn schema_errors(value: &serde_json::Value) -> Vec<String> {
    let text = std::fs::read_to_string(root().join("schemas/predict-report.schema.json")).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    validator.iter_errors(value).map(|e| format!("{}: {e}", e.instance_path())).collect()
}

fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".fmtool-"))
        .collect()
}

fn png_bytes(w: u32, h: u32, colour: png::ColorType, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(colour);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header().unwrap().write_image_data(data).unwrap();
    out
}

fn image_of(data: &Dataset, i: usize) -> &[u8] {
    &data.pixels[i * 784..(i + 1) * 784]
}

/// `image` with every pixel as a `k` x `k` block, as `k`-fold RGB or grey bytes.
fn enlarge(image: &[u8], k: usize, rgb: bool) -> Vec<u8> {
    let side = 28 * k;
    (0..side * side)
        .flat_map(|i| {
            let v = image[(i / side / k) * 28 + (i % side) / k];
            if rgb { vec![v, v, v] } else { vec![v] }
        })
        .collect()
}

#[test]
fn npy_holds_the_engines_outputs_and_numpy_reads_it() {
    let model = keras_model();
    let tmp = tempdir();
    let out = tmp.path().join("pred.npy");
    let run = fmtool(&["predict", "--model", model.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("shape (10000, 10), float32"), "{}", run.stdout);

    let data = embedded_test_set();
    let expected = engine_outputs(&model, data.images_f32().view());
    let (shape, dtype, values) = read_npy(&out);
    assert_eq!((shape, dtype.as_str()), (vec![10_000, 10], "float32"));
    assert_eq!(values, expected.iter().copied().collect::<Vec<_>>(), "the file differs from Model::predict");

    // The accuracy line is the argmax of the rows against the labels.
    let correct = (0..data.len()).filter(|&i| argmax(&values[i * 10..(i + 1) * 10]) == data.labels[i] as usize).count();
    let line = format!("({correct} / 10000 correct");
    assert!(run.stdout.contains(&line), "expected {line:?} in\n{}", run.stdout);

    let Some(python) = numpy_or_opt_out() else { return };
    let script = "import json, sys, numpy as np\n\
                  a = np.load(sys.argv[1])\n\
                  print(json.dumps({'shape': list(a.shape), 'dtype': str(a.dtype), \
                  'rows': a[[0, 1, 9999]].tolist(), 'sum': float(a.astype(np.float64).sum())}))";
    let o = Command::new(&python).args(["-c", script, out.to_str().unwrap()]).output().expect("python runs");
    assert!(o.status.success(), "numpy.load failed: {}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["shape"], serde_json::json!([10_000, 10]));
    assert_eq!(v["dtype"], "float32");
    for (k, &i) in [0usize, 1, 9999].iter().enumerate() {
        let row: Vec<f32> = serde_json::from_value(v["rows"][k].clone()).unwrap();
        assert_eq!(row, values[i * 10..(i + 1) * 10], "row {i} as NumPy reads it");
    }
    let sum: f64 = values.iter().map(|&x| x as f64).sum();
    assert!((v["sum"].as_f64().unwrap() - sum).abs() < 1e-6, "NumPy sums to {}, fmtool to {sum}", v["sum"]);
}

#[test]
fn out_is_never_overwritten_without_force_nor_left_half_written() {
    let model = keras_model();
    let m = model.to_str().unwrap();
    let tmp = tempdir();
    let out = tmp.path().join("pred.npy");
    std::fs::write(&out, b"keep me").unwrap();
    let run = fmtool(&["predict", "--model", m, "--out", out.to_str().unwrap()]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("pred.npy already exists") && run.stderr.contains("--force"), "{}", run.stderr);
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");

    let run = fmtool(&["predict", "--model", m, "--out", out.to_str().unwrap(), "--force", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = json(&run);
    assert_eq!(schema_errors(&v), Vec::<String>::new());
    assert_eq!((v["mode"].as_str(), &v["shape"]), (Some("outputs"), &serde_json::json!([10_000, 10])));
    let mut wrong = v.clone();
    wrong["shape"] = serde_json::json!([10_000, 9]);
    assert!(!schema_errors(&wrong).is_empty(), "the schema checks the shape");
    assert_eq!(read_npy(&out).0, [10_000, 10]);
    assert!(temp_files(tmp.path()).is_empty());

    // A model that cannot be read: nothing is written.
    let missing = tmp.path().join("new.npy");
    let run = fmtool(&["predict", "--model", "no/such/model", "--out", missing.to_str().unwrap()]);
    assert_eq!(run.code, 2);
    assert!(!missing.exists());
    assert!(temp_files(tmp.path()).is_empty());

    // A directory that does not exist is named.
    let run = fmtool(&["predict", "--model", m, "--out", tmp.path().join("nope/p.npy").to_str().unwrap()]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("does not exist"), "{}", run.stderr);
}

#[test]
fn predict_needs_out_or_a_picture() {
    let run = fmtool(&["predict", "--model", keras_model().to_str().unwrap()]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--out FILE.npy") && run.stderr.contains("picture"), "{}", run.stderr);
}

#[test]
fn a_picture_of_a_test_image_gets_the_engines_class() {
    let model = keras_model();
    let data = embedded_test_set();
    // One image of each class.
    let picks: Vec<usize> = (0..10).map(|c| data.labels.iter().position(|&l| l as usize == c).unwrap()).collect();
    let rows =
        ndarray::Array2::from_shape_fn((picks.len(), 784), |(k, j)| data.pixels[picks[k] * 784 + j] as f32 / 255.0);
    let expected = engine_outputs(&model, rows.view());
    let tmp = tempdir();
    for (k, &i) in picks.iter().enumerate() {
        // As stored (grey 28x28), as RGB, and as RGB at three times the size: the same input each time.
        let variants = [
            ("grey", png_bytes(28, 28, png::ColorType::Grayscale, image_of(&data, i))),
            ("rgb", png_bytes(28, 28, png::ColorType::Rgb, &enlarge(image_of(&data, i), 1, true))),
            ("rgb84", png_bytes(84, 84, png::ColorType::Rgb, &enlarge(image_of(&data, i), 3, true))),
        ];
        for (what, bytes) in variants {
            let path = tmp.path().join(format!("{i}-{what}.png"));
            std::fs::write(&path, bytes).unwrap();
            let run =
                fmtool(&["predict", path.to_str().unwrap(), "--model", model.to_str().unwrap(), "--format", "json"]);
            assert_eq!(run.code, 0, "{}", run.stderr);
            let v = json(&run);
            assert_eq!(schema_errors(&v), Vec::<String>::new());
            let want = argmax(expected.row(k).as_slice().unwrap());
            assert_eq!(v["class"].as_u64().unwrap() as usize, want, "image {i} as {what}");
            assert_eq!(v["class_name"], fmtool::dataset::CLASS_NAMES[want]);
            assert_eq!(v["picture"]["inverted"], false);
            let outputs: Vec<f32> = serde_json::from_value(v["outputs"].clone()).unwrap();
            assert_eq!(outputs, expected.row(k).to_vec(), "image {i} as {what}: outputs");
            // Probabilities: all ten, most probable first, summing to 1.
            let probs: Vec<f64> =
                v["probabilities"].as_array().unwrap().iter().map(|p| p["probability"].as_f64().unwrap()).collect();
            assert_eq!(probs.len(), 10);
            assert!(probs.windows(2).all(|w| w[0] >= w[1]));
            assert!((probs.iter().sum::<f64>() - 1.0).abs() < 1e-5);
            assert_eq!(v["probabilities"][0]["label"].as_u64().unwrap() as usize, want);
        }
    }

    // The human form names the class and draws a bar for each of the ten.
    let path = tmp.path().join(format!("{}-grey.png", picks[0]));
    let run = fmtool(&["predict", path.to_str().unwrap(), "--model", model.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let want = fmtool::dataset::CLASS_NAMES[argmax(expected.row(0).as_slice().unwrap())];
    assert!(
        run.stdout.contains(&format!("class:    {} {want}", argmax(expected.row(0).as_slice().unwrap()))),
        "{}",
        run.stdout
    );
    for name in fmtool::dataset::CLASS_NAMES {
        assert!(run.stdout.lines().any(|l| l.contains(name) && l.trim_start().starts_with(char::is_numeric)), "{name}");
    }
}

#[test]
fn a_dark_item_on_white_is_inverted_and_says_so() {
    let model = keras_model();
    let data = embedded_test_set();
    let i = 42;
    let negative: Vec<u8> = image_of(&data, i).iter().map(|&v| 255 - v).collect();
    let tmp = tempdir();
    let path = tmp.path().join("on-white.png");
    std::fs::write(&path, png_bytes(56, 56, png::ColorType::Rgb, &enlarge(&negative, 2, true))).unwrap();

    let rows = ndarray::Array2::from_shape_fn((1, 784), |(_, j)| data.pixels[i * 784 + j] as f32 / 255.0);
    let want = argmax(engine_outputs(&model, rows.view()).row(0).as_slice().unwrap());
    let run = fmtool(&["predict", path.to_str().unwrap(), "--model", model.to_str().unwrap(), "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = json(&run);
    assert_eq!(schema_errors(&v), Vec::<String>::new());
    assert_eq!(v["picture"]["inverted"], true);
    assert!(v["picture"]["border_light"].as_f64().unwrap() > 0.9);
    assert_eq!(v["class"].as_u64().unwrap() as usize, want, "inverting gives back the test image");

    let run = fmtool(&["predict", path.to_str().unwrap(), "--model", model.to_str().unwrap()]);
    assert!(run.stdout.contains("INVERTED"), "{}", run.stdout);
}

#[test]
fn bad_pictures_exit_2_naming_the_file() {
    let model = keras_model();
    let m = model.to_str().unwrap();
    let tmp = tempdir();
    let good = png_bytes(28, 28, png::ColorType::Grayscale, &[0; 784]);
    let cut = tmp.path().join("cut.png");
    std::fs::write(&cut, &good[..good.len() - 20]).unwrap();
    let text = tmp.path().join("notes.png");
    std::fs::write(&text, "not a picture at all").unwrap();
    for (path, says) in [
        (&cut, "is cut short"),
        (&text, "is not a PNG or JPEG picture"),
        (&tmp.path().join("missing.png"), "no such file"),
    ] {
        let run = fmtool(&["predict", path.to_str().unwrap(), "--model", m]);
        assert_eq!(run.code, 2, "{}", path.display());
        assert!(run.stderr.contains(path.to_str().unwrap()) && run.stderr.contains(says), "{}", run.stderr);
        assert!(run.stdout.is_empty());
    }
}

/// A one-layer linear model (no softmax), its kernel the class means minus the overall mean.
fn linear_model(dir: &Path) {
    let data = embedded_test_set();
    let mut sums = vec![[0f64; 10]; 784];
    let mut counts = [0f64; 10];
    for i in 0..data.len() {
        let c = data.labels[i] as usize;
        counts[c] += 1.0;
        for (s, &p) in sums.iter_mut().zip(image_of(&data, i)) {
            s[c] += p as f64 / 255.0;
        }
    }
    let kernel = ndarray::Array2::from_shape_fn((784, 10), |(j, c)| {
        let mean: f64 = sums[j].iter().sum::<f64>() / data.len() as f64;
        (sums[j][c] / counts[c] - mean) as f32
    });
    let bias = ndarray::Array1::<f32>::zeros(10);
    let f = std::fs::File::create(dir.join("fashion_mnist.npz")).unwrap();
    fmtool::model::npz::write_npz(f, &[("dense_0".into(), kernel.into_dyn()), ("dense_1".into(), bias.into_dyn())])
        .unwrap();
    let arch = serde_json::json!([{"name": "dense", "type": "Dense",
        "config": {"name": "dense", "units": 10, "activation": "linear", "use_bias": true},
        "weights": ["dense_0", "dense_1"]}]);
    std::fs::write(dir.join("fashion_mnist.json"), arch.to_string()).unwrap();
}

#[test]
fn outputs_without_softmax_are_shown_as_probabilities_and_said_so() {
    let tmp = tempdir();
    linear_model(tmp.path());
    let data = embedded_test_set();
    let pic = tmp.path().join("x.png");
    std::fs::write(&pic, png_bytes(28, 28, png::ColorType::Grayscale, image_of(&data, 0))).unwrap();
    let run = fmtool(&["predict", pic.to_str().unwrap(), "--model", tmp.path().to_str().unwrap(), "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v = json(&run);
    assert_eq!(schema_errors(&v), Vec::<String>::new());
    assert_eq!(v["outputs_are_probabilities"], false);
    assert!(v["notes"].to_string().contains("not probabilities"), "{}", v["notes"]);
    let outputs: Vec<f64> = serde_json::from_value(v["outputs"].clone()).unwrap();
    let top = v["probabilities"][0]["label"].as_u64().unwrap() as usize;
    assert_eq!(top, v["class"].as_u64().unwrap() as usize);
    // The softmax of the outputs.
    let max = outputs.iter().cloned().fold(f64::MIN, f64::max);
    let z: f64 = outputs.iter().map(|o| (o - max).exp()).sum();
    assert!((v["probability"].as_f64().unwrap() - (outputs[top] - max).exp() / z).abs() < 1e-6);
}

#[test]
fn plot_writes_a_confusion_matrix_and_a_gallery() {
    let model = keras_model();
    let tmp = tempdir();
    let dir = tmp.path().join("plots/new");
    std::fs::create_dir_all(tmp.path().join("plots")).unwrap();
    std::fs::write(tmp.path().join("plots/mine.txt"), "untouched").unwrap();
    for _ in 0..2 {
        // The second run overwrites the two files fmtool names.
        let run =
            fmtool(&["score", "--model", model.to_str().unwrap(), "--plot", dir.to_str().unwrap(), "--format", "json"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let plots: Vec<String> = serde_json::from_value(json(&run)["plots"].clone()).unwrap();
        assert_eq!(plots.len(), 2);
        assert!(plots[0].ends_with("confusion-matrix.png") && plots[1].ends_with("misclassified.png"), "{plots:?}");
    }
    assert_eq!(std::fs::read_to_string(tmp.path().join("plots/mine.txt")).unwrap(), "untouched");
    assert!(temp_files(&dir).is_empty());

    let decode = |name: &str| {
        let img = image::open(dir.join(name)).unwrap_or_else(|e| panic!("{name} decodes: {e}")).to_rgb8();
        assert_eq!(img.dimensions(), image::image_dimensions(dir.join(name)).unwrap());
        img
    };
    let cm = decode("confusion-matrix.png");
    let (w, h) = cm.dimensions();
    // Ten 64-pixel cells each way plus labels.
    assert!((700..1400).contains(&w) && (700..1400).contains(&h), "{w}x{h}");
    // The heat map is coloured: blue cells on the diagonal of a model this good.
    assert!(cm.pixels().any(|p| p[2] > 150 && p[0] < 60), "no dark blue cell");
    let gallery = decode("misclassified.png");
    let (w, h) = gallery.dimensions();
    assert!(w >= 10 * 56, "ten images of 56 pixels fit in a row: {w}");
    // 100 mistakes: ten rows of tiles at least 56 pixels high.
    assert!(h >= 10 * 56, "{h}");
    // The images themselves (light items on black) are in it.
    let black = gallery.pixels().filter(|p| p.0 == [0, 0, 0]).count();
    assert!(black > 100 * 56 * 56 / 4, "{black} black pixels");

    // A file of the user's by a plot's name is kept (exit 2, nothing written) unless --force.
    let mine = tmp.path().join("mine");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(mine.join("misclassified.png"), b"my own picture").unwrap();
    let args = ["score", "--model", model.to_str().unwrap(), "--plot", mine.to_str().unwrap()];
    let run = fmtool(&args);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("misclassified.png already exists") && run.stderr.contains("--force"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read(mine.join("misclassified.png")).unwrap(), b"my own picture");
    assert!(!mine.join("confusion-matrix.png").exists(), "nothing is written when one file is refused");
    let run = fmtool(&[&args[..], &["--force"]].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(image::open(mine.join("misclassified.png")).is_ok());

    // A file where the directory should be: exit 2 with the path named.
    let file = tmp.path().join("plots/mine.txt");
    let run = fmtool(&["score", "--model", model.to_str().unwrap(), "--plot", file.to_str().unwrap()]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("mine.txt") && run.stderr.contains("not a directory"), "{}", run.stderr);
}

/// `--split train` reads the train-* files of --data (a teacher's outputs on the training images):
/// the outputs are those of the train files' images, not the t10k files' beside them; without
/// --data the option is refused.
#[test]
fn split_train_reads_the_training_files() {
    let dir = tempdir();
    let every_100th = write_sample(dir.path(), 100);
    for stem in ["images-idx3-ubyte.gz", "labels-idx1-ubyte.gz"] {
        std::fs::rename(dir.path().join(format!("t10k-{stem}")), dir.path().join(format!("train-{stem}"))).unwrap();
    }
    write_sample(dir.path(), 50);
    let model = keras_model();
    let out = dir.path().join("train.npy");
    let data = dir.path().to_str().unwrap();
    let args = ["predict", "--model", model.to_str().unwrap(), "--data", data, "--split", "train"];
    let run = fmtool(&[&args[..], &["--out", out.to_str().unwrap()]].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (shape, _, values) = read_npy(&out);
    assert_eq!(shape, vec![every_100th.len(), 10]);
    let rows = every_100th.pixel_rows().mapv(|p| p as f32 / 255.0);
    let want = engine_outputs(&model, rows.view());
    assert!(values.iter().zip(want.iter()).all(|(a, b)| a.to_bits() == b.to_bits()));

    let refused = fmtool(&["predict", "--split", "train", "--out", out.to_str().unwrap(), "--force"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("--data"), "{}", refused.stderr);
}
