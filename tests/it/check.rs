//! `fmtool check`: each finding on a minimal broken copy of a real-Keras fixture, the exit codes,
//! the JSON report against its schema, and the schemas kept in step with the code.

use crate::common::*;
use serde_json::{Value, json};
use std::path::Path;

/// A temporary copy of a real-Keras MLP (Flatten, Dense relu, Dropout, Dense softmax).
fn good_model() -> tempfile::TempDir {
    let tmp = tempdir();
    let src = fixture("keras3/mlp_flatten");
    for f in ["fashion_mnist.json", "fashion_mnist.npz"] {
        std::fs::copy(src.join(f), tmp.path().join(f)).unwrap();
    }
    tmp
}

fn arch(dir: &Path) -> Vec<Value> {
    serde_json::from_str::<Value>(&std::fs::read_to_string(dir.join("fashion_mnist.json")).unwrap())
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn write_arch(dir: &Path, a: &[Value]) {
    std::fs::write(dir.join("fashion_mnist.json"), serde_json::to_string(a).unwrap()).unwrap();
}

/// Rewrites the npz through `edit`, which gets and returns (key, array) pairs.
fn edit_npz(dir: &Path, edit: impl FnOnce(Vec<(String, ndarray::ArrayD<f32>)>) -> Vec<(String, ndarray::ArrayD<f32>)>) {
    let npz = fmtool::model::npz::read_npz(&dir.join("fashion_mnist.npz")).unwrap();
    let arrays = npz.entries.iter().map(|e| (e.key.clone(), e.array.as_ref().unwrap().to_f32())).collect();
    let f = std::fs::File::create(dir.join("fashion_mnist.npz")).unwrap();
    fmtool::model::npz::write_npz(f, &edit(arrays)).unwrap();
}

fn check(dir: &Path, extra: &[&str]) -> (i32, Value, String) {
    let d = dir.to_str().unwrap();
    let mut args = vec!["check", d, "--format", "json"];
    args.extend(extra);
    let run = fmtool(&args);
    let human = fmtool(&[&["check", d][..], extra].concat());
    assert_eq!(run.code, human.code);
    let v: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {} {}", run.stdout, run.stderr));
    (run.code, v, human.stdout)
}

fn codes(v: &Value) -> Vec<String> {
    v["findings"].as_array().unwrap().iter().map(|f| f["code"].as_str().unwrap().to_string()).collect()
}

fn finding<'a>(v: &'a Value, code: &str) -> &'a Value {
    v["findings"].as_array().unwrap().iter().find(|f| f["code"] == code).unwrap_or_else(|| panic!("no {code} in {v}"))
}

#[test]
fn a_good_model_has_no_findings() {
    let tmp = good_model();
    let (code, v, human) = check(tmp.path(), &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(codes(&v), Vec::<String>::new());
    assert!(human.contains("no problems found"), "{human}");
}

#[test]
fn other_json_layouts_point_to_convert() {
    let tmp = good_model();
    for doc in [
        json!({"class_name": "Sequential", "config": {"name": "s", "layers": []}}),
        json!([{"class_name": "Dense", "config": {"units": 10}}]),
        json!({"layers": [{"name": "d", "type": "Dense", "config": {}, "weights": []}]}),
    ] {
        std::fs::write(tmp.path().join("fashion_mnist.json"), doc.to_string()).unwrap();
        let (code, v, _) = check(tmp.path(), &[]);
        assert_eq!(code, 1);
        let f = finding(&v, "not-course-layout");
        assert!(f["hint"].as_str().unwrap().contains("fmtool convert"), "{f}");
    }
    std::fs::write(tmp.path().join("fashion_mnist.json"), "[{\"name\": ").unwrap();
    let (code, v, _) = check(tmp.path(), &[]);
    assert_eq!((code, codes(&v)), (1, vec!["invalid-json".to_string()]));
}

#[test]
fn schema_violations_carry_json_pointers() {
    let tmp = good_model();
    let mut a = arch(tmp.path());
    a[1].as_object_mut().unwrap().remove("weights");
    write_arch(tmp.path(), &a);
    let (code, v, human) = check(tmp.path(), &[]);
    assert_eq!(code, 1);
    assert_eq!(finding(&v, "schema")["location"]["pointer"], "$[1]");
    assert!(human.contains("fashion_mnist.json::$[1]: error[schema]"), "{human}");
}

#[test]
fn unknown_layers_missing_and_shared_keys_and_unused_arrays_are_all_reported() {
    let tmp = good_model();
    let mut a = arch(tmp.path());
    let dense: Vec<usize> = (0..a.len()).filter(|&i| a[i]["type"] == "Dense").collect();
    let (first, last) = (dense[0], *dense.last().unwrap());
    let first_name = a[first]["name"].as_str().unwrap().to_string();
    // A type fmtool does not run, a weight name that is not in the npz, a key used twice.
    a[2]["type"] = json!("LSTM");
    a[first]["weights"][0] = json!(format!("{first_name}/kernel:0"));
    let shared = a[last]["weights"][1].clone();
    a[first]["weights"][1] = shared;
    write_arch(tmp.path(), &a);
    edit_npz(tmp.path(), |mut v| {
        v.push(("leftover".into(), ndarray::arr1(&[1.0f32]).into_dyn()));
        v
    });
    let (code, v, human) = check(tmp.path(), &[]);
    assert_eq!(code, 1);
    let c = codes(&v);
    for want in ["unsupported-layer", "missing-weight", "shared-weight", "unused-array"] {
        assert!(c.contains(&want.to_string()), "{want} missing from {c:?}");
    }
    let missing = finding(&v, "missing-weight");
    assert_eq!(missing["location"]["pointer"], format!("$[{first}].weights[0]"));
    assert!(missing["message"].as_str().unwrap().contains("is not in fashion_mnist.npz"));
    assert_eq!(finding(&v, "unused-array")["severity"], "warning");
    assert!(human.contains("hint:"), "{human}");
    assert_eq!(v["errors"].as_u64().unwrap() as usize, c.len() - v["warnings"].as_u64().unwrap() as usize);
}

#[test]
fn a_kernel_that_does_not_fit_names_the_layer_and_shapes() {
    let tmp = good_model();
    let a = arch(tmp.path());
    let dense = a.iter().find(|e| e["type"] == "Dense").unwrap();
    let key = dense["weights"][0].as_str().unwrap().to_string();
    edit_npz(tmp.path(), |v| {
        v.into_iter()
            .map(|(k, x)| if k == key { (k, x.reversed_axes().as_standard_layout().into_owned()) } else { (k, x) })
            .collect()
    });
    let (code, v, _) = check(tmp.path(), &[]);
    assert_eq!(code, 1);
    let f = finding(&v, "shape");
    let msg = f["message"].as_str().unwrap();
    assert!(msg.contains("expected shape (784,") && msg.contains("found"), "{msg}");
    assert_eq!(f["location"]["layer"], dense["name"]);
}

#[test]
fn nan_weights_and_a_missing_softmax_are_reported() {
    let tmp = good_model();
    let mut a = arch(tmp.path());
    let last = a.len() - 1;
    a[last]["config"]["activation"] = json!("linear");
    write_arch(tmp.path(), &a);
    edit_npz(tmp.path(), |mut v| {
        v[0].1[[0, 0]] = f32::NAN;
        v
    });
    let (code, v, _) = check(tmp.path(), &[]);
    assert_eq!(code, 1);
    assert!(finding(&v, "non-finite")["message"].as_str().unwrap().contains("1 NaN"));
    assert_eq!(finding(&v, "no-softmax")["severity"], "warning");
}

#[test]
fn numpy_variants_pickles_and_integer_arrays() {
    let python = require_numpy();
    let tmp = good_model();
    let npz = tmp.path().join("fashion_mnist.npz");
    // Rewrite the weights with real NumPy: float64 + Fortran order, plus an integer array and a
    // pickled object array under extra keys.
    let script = format!(
        "import numpy as np\nz = dict(np.load({p:?}))\nz = {{k: np.asfortranarray(v.astype(np.float64)) for k, v in z.items()}}\n\
         z['counts'] = np.arange(3, dtype=np.int64)\nz['objects'] = np.array([{{'a': 1}}], dtype=object)\nnp.savez({p:?}, **z)\n",
        p = npz.to_str().unwrap()
    );
    let ok = std::process::Command::new(&python).args(["-c", &script]).status().unwrap().success();
    assert!(ok, "numpy rewrote the npz");
    let (code, v, _) = check(tmp.path(), &[]);
    assert_eq!(code, 1);
    let c = codes(&v);
    assert!(c.contains(&"float64-weights".to_string()), "{c:?}");
    assert!(c.contains(&"non-float-weights".to_string()), "{c:?}");
    let pickle = finding(&v, "unreadable-array");
    assert!(pickle["message"].as_str().unwrap().contains("never unpickles"), "{pickle}");
    // Float64 and Fortran order alone are only a warning: the model still runs.
    assert!(!c.contains(&"shape".to_string()), "{c:?}");
}

#[test]
fn template_skips_are_warnings_and_errors_under_classic() {
    let dir = fixture_models("keras3")
        .into_iter()
        .chain(fixture_models("special"))
        .find(|d| {
            let t = layer_types(d);
            t.contains(&"BatchNormalization".to_string())
                && t.iter().all(|t| !t.starts_with("Conv") && t != "Normalization" && t != "Rescaling")
        })
        .expect("a Dense + BatchNormalization fixture");
    let (code, v, _) = check(&dir, &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(finding(&v, "template-skips")["severity"], "warning");
    let (code, v, _) = check(&dir, &["--grader", "classic"]);
    assert_eq!(code, 1);
    assert_eq!(finding(&v, "template-skips")["severity"], "error");
}

#[test]
fn conv_models_fed_flat_rows_get_an_input_finding() {
    let dir = fixture_models("keras3").into_iter().find(|d| layer_types(d).iter().any(|t| t == "Conv2D")).unwrap();
    let (_, v, _) = check(&dir, &[]);
    let f = finding(&v, "input-reshape");
    assert_eq!(f["severity"], "warning");
    assert!(f["hint"].as_str().unwrap().contains("Reshape((28, 28, 1))"));
}

#[test]
fn a_stale_h5_beside_the_export_is_an_error_with_the_reexport_command() {
    let tmp = good_model();
    std::fs::copy(fixture("keras3/mlp_flatten/model.h5"), tmp.path().join("fashion_mnist.h5")).unwrap();
    let (code, v, _) = check(tmp.path(), &[]);
    assert_eq!(code, 0, "a matching h5 is fine: {v}");
    edit_npz(tmp.path(), |mut v| {
        v[0].1.mapv_inplace(|x| x * 1.5);
        v
    });
    let (code, v, _) = check(tmp.path(), &[]);
    assert_eq!(code, 1);
    let f = finding(&v, "stale-export");
    assert!(f["hint"].as_str().unwrap().contains("fmtool convert"), "{f}");
    assert!(f["hint"].as_str().unwrap().contains("--force"), "{f}");
}

#[test]
fn json_report_follows_its_schema() {
    let tmp = good_model();
    let mut a = arch(tmp.path());
    a[0]["type"] = json!("Mystery");
    write_arch(tmp.path(), &a);
    let (_, v, _) = check(tmp.path(), &[]);
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("schemas/check-report.schema.json")).unwrap())
            .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
    assert_eq!(errors, Vec::<String>::new());
    assert!(!v["findings"].as_array().unwrap().is_empty());
}

#[test]
fn missing_directory_exits_2() {
    let run = fmtool(&["check", "no/such/model"]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(run.stderr.contains("no/such/model"), "{}", run.stderr);
}

/// The committed schemas are generated from the code (the architecture schema's `type` enum is
/// the layer registry). Regenerate with FMTOOL_UPDATE_SCHEMAS=1 cargo test.
#[test]
fn schemas_are_in_step_with_the_code() {
    for (file, value) in [
        ("model-architecture.schema.json", fmtool::checks::schema::architecture_schema()),
        ("check-report.schema.json", fmtool::checks::schema::check_report_schema()),
    ] {
        let path = root().join("schemas").join(file);
        let want = serde_json::to_string_pretty(&value).unwrap() + "\n";
        if std::env::var_os("FMTOOL_UPDATE_SCHEMAS").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        if have != want {
            let diff: Vec<String> = want
                .lines()
                .zip(have.lines().chain(std::iter::repeat("")))
                .filter(|(a, b)| a != b)
                .take(5)
                .map(|(a, b)| format!("- {b}\n+ {a}"))
                .collect();
            panic!("{file} is out of date (run FMTOOL_UPDATE_SCHEMAS=1 cargo test):\n{}", diff.join("\n"));
        }
    }
}
